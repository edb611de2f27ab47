"""Shared helpers for the neurogen test suite.

* puts the repository root on ``sys.path`` so ``import neurogen`` and
  ``import generated.lif`` work without installing anything;
* ``build_module`` fixture: compile a spec written inline in a test and import it;
* ``SPECS``: the bundled specs and the nengo classes they must reproduce.  Add a
  spec to every parity / NengoDL test by appending one row;
* rate tables are cached in a temporary folder of the test session (never in the
  user's cache directory).
* ``built_specs``: the one build of ``specs/`` per session;
* shared helpers (one copy each): ``REPO``, ``line_of``, ``import_file``,
  ``build_spec``, ``toml_string``, ``counted_rates``, ``nengo_precision_kept``,
  ``builder_registrations_kept``, ``files_of``.
"""

import contextlib
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


def build_spec(directory, toml_text, name="m"):
    """Write ``directory/specs/<name>.toml``, build it into ``directory/out`` and
    import the result as ``_neurogen_test_<name>_<n>`` (left in ``sys.modules``)."""
    spec_dir = Path(directory) / "specs"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = spec_dir / f"{name}.toml"
    spec.write_text(toml_text, encoding="utf-8")
    results = build([spec], Path(directory) / "out", force=True)
    assert len(results) == 1
    result = results[0]
    assert result.status == "built", f"{spec}: {result.status}: {result.error}"
    return _import_file(result.module_path, f"_neurogen_test_{name}_{next(_counter)}")


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
        module = build_spec(tmp_path, toml_text, name)
        imported.append(module.__name__)
        return module

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


# ----------------------------------------------------------------------------
# shared helpers (issue 16): one copy each, imported by the test modules


def line_of(text, fragment):
    """1-based number of the first line of ``text`` containing ``fragment``."""
    for i, line in enumerate(text.splitlines(), start=1):
        if fragment in line:
            return i
    raise AssertionError(f"{fragment!r} not in spec:\n{text}")


def import_file(path, prefix="_neurogen_test_mod"):
    """Import a generated module from ``path`` under a fresh name.

    The module is removed from ``sys.modules`` again; it stays usable.
    """
    name = f"{prefix}_{next(_counter)}"
    module = _import_file(path, name)
    sys.modules.pop(name, None)
    return module


@contextlib.contextmanager
def nengo_precision_kept():
    """NengoDL sets ``nengo.rc``'s float precision while building and does not
    restore it; restore it whatever happens."""
    bits = nengo.rc.get("precision", "bits")
    try:
        yield
    finally:
        nengo.rc.set("precision", "bits", bits)


@pytest.fixture
def keep_nengo_precision():
    """Fixture form of :func:`nengo_precision_kept`."""
    with nengo_precision_kept():
        yield


@contextlib.contextmanager
def builder_registrations_kept():
    """Generated modules register their builders with NengoDL on import; undo that."""
    try:
        from nengo_dl.neuron_builders import SimNeuronsBuilder
    except ImportError:  # pragma: no cover
        yield
        return
    impl = SimNeuronsBuilder.TF_NEURON_IMPL
    saved = dict(impl)
    try:
        yield
    finally:
        impl.clear()
        impl.update(saved)


# ----------------------------------------------------------------------------
# one build of the bundled specs per test session (issue 16)


class SpecsBuild(NamedTuple):
    """A forced build of ``specs/`` (from the repository root, as documented)."""

    out: Path  # the output directory
    results: list  # neurogen.build.BuildResult per spec


@pytest.fixture(scope="session")
def built_specs(tmp_path_factory):
    """``neurogen build specs -o <tmp> --force``, once per session.

    Tests that only need the generated modules import the committed ``generated/``
    package (the golden test checks it equals this build); tests about the build
    itself read this one instead of building ``specs/`` again.
    """
    out = tmp_path_factory.mktemp("built_specs") / "out"
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        results = build(["specs"], out, force=True)
    finally:
        os.chdir(cwd)
    return SpecsBuild(out, results)


def files_of(directory):
    """``{relative posix path: bytes}`` of the files under ``directory`` (no caches)."""
    directory = Path(directory)
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def counted_rates(neuron_type, J, dt=0.001, settle=0.5, duration=4.0, step="step"):
    """Mean output (amplitude x spikes per second for a spiking type) of
    ``neuron_type``'s own ``step`` at constant currents ``J``, over a long direct
    simulation after ``settle`` seconds: a reference for rates and rate tables that
    shares no code with ``neurogen.runtime``."""
    import numpy as np

    J = np.asarray(J, dtype=float)
    state = neuron_type.make_state(J.size, rng=np.random.RandomState(1), dtype=np.float64)
    output, total = np.zeros(J.size), np.zeros(J.size)
    run = getattr(neuron_type, step)
    for _ in range(int(round(settle / dt))):
        run(dt, J, output, **state)
    for _ in range(int(round(duration / dt))):
        run(dt, J, output, **state)
        total += output
    return total * dt / duration
