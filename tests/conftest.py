"""Shared helpers for the neurogen test suite.

* puts the repository root on ``sys.path`` so ``import neurogen`` and
  ``import generated.lif`` work without installing anything;
* ``build_module`` fixture: compile a spec written inline in a test and import it;
* ``SPECS``: the bundled specs and the nengo classes they must reproduce.  Add a
  spec to every parity / NengoDL test by appending one row;
* rate tables are cached in a temporary folder of the test session (never in the
  user's cache directory).
"""

import importlib
import importlib.util
import itertools
import os
import sys
from pathlib import Path
from typing import NamedTuple

import nengo
import nengo_extras.neurons
import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from neurogen.build import build  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def rate_table_cache(tmp_path_factory):
    """Rate tables of this test session (and its subprocesses) go to a temporary folder."""
    saved = os.environ.get("NEUROGEN_CACHE_DIR")
    os.environ["NEUROGEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("neurogen-cache"))
    yield os.environ["NEUROGEN_CACHE_DIR"]
    if saved is None:
        os.environ.pop("NEUROGEN_CACHE_DIR", None)
    else:
        os.environ["NEUROGEN_CACHE_DIR"] = saved


class Row(NamedTuple):
    """One bundled spec and the nengo class it reproduces.

    ``reference``: the nengo class whose ``step``/``rates``/... the generated class
    must match.  ``params``: non-default keyword sets to test besides the defaults.
    ``inputs``: optional currents of interest (thresholds) for the parity inputs;
    ``None`` uses the generic mix in :func:`parity_currents`.
    """

    reference: type
    params: list
    inputs: tuple = None
    #: the reference's method to compare ``step`` with (nengo_extras 0.5 still
    #: implements its neurons in ``step_math``, which nengo >= 4 no longer calls)
    step: str = "step"
    #: whether ``rates`` (and NengoDL's training rate) match the reference's; False
    #: where neurogen's are intentionally different (adaptation-aware, tabulated)
    same_rates: bool = True
    #: ``mask(reference_states) -> bool per neuron``: neurons whose states may be
    #: compared across simulators; None compares all
    comparable: object = None


def izhikevich_stable(states):
    """Neurons that stay where nengo's forward Euler at dt = 1 ms is stable.

    Inputs below the -30 clip pull the voltage under about -100 mV, where the
    linearized rate (0.08 v + 5) * 1000 exceeds 2 / dt: Euler oscillates there and
    amplifies the last-bit differences between NumPy and TensorFlow arithmetic.
    """
    return states["voltage"].min(axis=0) > -100


#: module name in ``generated/`` -> Row(reference class, [non-default kwargs, ...]).
#: A plain ``(reference, [kwargs, ...])`` tuple works too.
SPECS = {
    "lif": Row(
        nengo.LIF,
        [
            dict(tau_rc=0.05, tau_ref=0.005, min_voltage=-1, amplitude=0.5),
            dict(tau_rc=0.01, tau_ref=0.0, min_voltage=-0.5),
        ],
    ),
    "lif_rate": Row(nengo.LIFRate, [dict(tau_rc=0.05, tau_ref=0.005, amplitude=0.5)]),
    "spiking_rectified_linear": Row(nengo.SpikingRectifiedLinear, [dict(amplitude=0.3)]),
    "rectified_linear": Row(nengo.RectifiedLinear, [dict(amplitude=0.3)]),
    "sigmoid": Row(nengo.Sigmoid, [dict(tau_ref=0.01)]),
    "tanh": Row(nengo.Tanh, [dict(tau_ref=0.01)]),
    "adaptive_lif": Row(
        nengo.AdaptiveLIF,
        [dict(tau_n=0.1, inc_n=0.5, tau_rc=0.05, tau_ref=0.005, min_voltage=-1, amplitude=0.5)],
        same_rates=False,
    ),
    "adaptive_lif_rate": Row(
        nengo.AdaptiveLIFRate, [dict(tau_n=0.1, inc_n=0.5, tau_rc=0.05, amplitude=0.5)]
    ),
    "izhikevich": Row(
        nengo.Izhikevich,
        [  # the presets of nengo's docs: IB, CH, FS, LTS
            dict(reset_voltage=-55, reset_recovery=4),
            dict(reset_voltage=-50, reset_recovery=2),
            dict(tau_recovery=0.1),
            dict(coupling=0.25),
        ],
        inputs=(0.0, 3.8, 10.0),
        same_rates=False,
        comparable=izhikevich_stable,
    ),
    "fast_lif": Row(
        nengo_extras.neurons.FastLIF,
        [dict(tau_rc=0.05, tau_ref=0.005, min_voltage=-1)],
        step="step_math",
    ),
    "soft_lif_rate": Row(
        nengo_extras.neurons.SoftLIFRate,
        [dict(sigma=0.3, tau_rc=0.05, tau_ref=0.005, amplitude=0.5)],
        step="step_math",
    ),
}


def spec_rows():
    """``(module name, Row)`` for every entry of :data:`SPECS`."""
    return [(name, Row(*row)) for name, row in SPECS.items()]


def param_cases():
    """``(module name, Row, kwargs)`` for the defaults and every non-default set."""
    cases = []
    for name, row in spec_rows():
        for i, kwargs in enumerate([{}] + list(row.params)):
            cases.append(pytest.param(name, row, kwargs, id=f"{name}-{'default' if i == 0 else f'p{i}'}"))
    return cases


def generated_module(name):
    """The bundled generated module ``generated.<name>``."""
    return importlib.import_module(f"generated.{name}")


_counter = itertools.count()


def _import_file(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


@pytest.fixture
def build_module():
    """``build_module(tmp_path, toml_text, name="m")`` -> the imported module.

    Writes ``tmp_path/specs/<name>.toml``, builds it into ``tmp_path/out`` and imports
    the result under a unique module name.  NengoDL builder registrations made by the
    import and the ``sys.modules`` entries are undone after the test.
    """
    try:
        from nengo_dl.neuron_builders import SimNeuronsBuilder

        impl = SimNeuronsBuilder.TF_NEURON_IMPL
        saved = dict(impl)
    except ImportError:  # pragma: no cover
        impl = saved = None
    imported = []

    def _build(tmp_path, toml_text, name="m"):
        spec_dir = Path(tmp_path) / "specs"
        spec_dir.mkdir(parents=True, exist_ok=True)
        spec = spec_dir / f"{name}.toml"
        spec.write_text(toml_text, encoding="utf-8")
        results = build([spec], Path(tmp_path) / "out", force=True)
        assert len(results) == 1
        result = results[0]
        assert result.status == "built", f"{spec}: {result.status}: {result.error}"
        module_name = f"_neurogen_test_{name}_{next(_counter)}"
        imported.append(module_name)
        return _import_file(result.module_path, module_name)

    yield _build

    for module_name in imported:
        sys.modules.pop(module_name, None)
    if impl is not None:
        impl.clear()
        impl.update(saved)


def toml_string(text):
    """A TOML basic string holding ``text`` exactly."""
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
