"""Settings read off a built model, shared by ``neurogen plot`` and ``neurogen verify``:
the time step it needs, its firing threshold and a range of input currents.

Nothing here assumes LIF-like units: the step is found by halving ``dt`` until a
short simulation agrees with one at ``dt / 2``, and the threshold by a bracket
search on simulations at that step.
"""

import hashlib
import importlib.util
import inspect
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from .model import representative_value

LARGEST_DT = 1e-3  # nengo's default step: the largest one we try
SMALLEST_DT = 1e-6  # the smallest step tried
PROBE_DURATION = 0.05  # seconds simulated per trial step ...
PROBE_STEPS = 5000  # ... or this many steps, if fewer


def load_module(path, name=None):
    """Import a generated module from a file path (recording the hash of its source,
    which keys its rate tables on disk after a temporary file is gone)."""
    from . import table_cache

    name = name or f"_neurogen_verify_{Path(path).stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    setattr(module, table_cache.SOURCE_HASH, hashlib.sha256(Path(path).read_bytes()).hexdigest())
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def compiled_module(compiled, module_path=None):
    """Import ``module_path``, or the freshly compiled text of ``compiled``."""
    with tempfile.TemporaryDirectory() as tmp:
        if module_path is None:
            module_path = Path(tmp) / f"{compiled.model.module}.py"
            module_path.write_text(compiled.text, encoding="utf-8")
        return load_module(module_path)


def initial_state(model):
    """A deterministic starting state: the spiking state at its reset value (where
    that is a constant), the others at the low end of their initial distribution."""
    defaults = {model.symbols[p.name]: p.value for p in model.parameters}
    resets = {str(u.target): u.expr.subs(defaults) for u in model.resets}
    state = {name: representative_value(init) for name, _, init in model.states}
    for name, value in resets.items():
        if value.is_number:
            state[name] = float(value)
    return state


def is_stochastic(neuron):
    """True when the neuron type's ``step`` draws random numbers (takes an ``rng``)."""
    return "rng" in inspect.signature(neuron.step).parameters


def table_range(model):
    """The currents the spec's rate table searches (or the table defaults)."""
    from .spec import TABLE_DEFAULTS

    options = model.rate_table or TABLE_DEFAULTS
    return float(options["low"]), float(options["high"])


def run(neuron, model, J, dt, duration, state0=None, settle=0.0):
    """Simulate constant currents ``J``; returns (spike counts after ``settle``
    seconds, final output, final states)."""
    J = np.asarray(J, dtype=float)
    state0 = initial_state(model) if state0 is None else state0
    state = {k: np.full(J.size, float(v)) for k, v in state0.items()}
    if is_stochastic(neuron):  # a fixed seed: the same draws at every call
        state["rng"] = np.random.RandomState(0)
    output = np.zeros(J.size)
    counts = np.zeros(J.size)
    with np.errstate(all="ignore"):
        for i in range(max(1, int(round(duration / dt)))):
            neuron.step(dt, J, output, **state)
            if i * dt >= settle:
                counts += output != 0
    state.pop("rng", None)
    return counts, output.copy(), state


def _agree(a, b, spiking):
    (counts_a, out_a, states_a), (counts_b, out_b, states_b) = a, b
    finite = all(np.isfinite(v).all() for v in [out_a, out_b, *states_a.values(), *states_b.values()])
    if not finite:
        return False
    if spiking:
        return bool(np.all(np.abs(counts_a - counts_b) <= 1 + 0.1 * np.maximum(counts_a, counts_b)))
    return bool(np.all(np.abs(out_a - out_b) <= 1e-2 * np.maximum(1.0, np.abs(out_b))))


def step_needed(neuron, model, start=LARGEST_DT, duration=PROBE_DURATION):
    """The largest ``dt`` (``start`` halved as needed, and at most half the type's
    ``max_dt()``) at which a short simulation over the model's current range agrees
    with one at ``dt / 2``: the same spike counts within 10 % (spiking models) or
    outputs within 1 % (rate models), everything finite."""
    if not model.states:
        return start
    dt = min(start, model.rate_table["dt"]) if model.rate_table else start
    if hasattr(neuron, "max_dt"):  # the halving below finds what sampled limits suggest
        from .runtime import hard_max_dt

        dt = min(dt, hard_max_dt(neuron) / 2)
    J = np.linspace(*table_range(model), 9)
    while dt / 2 >= SMALLEST_DT:
        window = min(duration, PROBE_STEPS * dt)  # bounds the cost of small steps
        if _agree(run(neuron, model, J, dt, window), run(neuron, model, J, dt / 2, window), model.spiking):
            return dt
        dt /= 2
    return dt


def threshold_current(model, neuron, dt=None):
    """The current at which ``neuron`` starts to fire at step ``dt`` (None for rate
    types): from the closed-form threshold or rate where there is one, the rate
    table's where the table is simulated at ``dt``, else a bracket search."""
    if not model.spiking:
        return None
    if model.rate_threshold is not None:
        values = {model.symbols[p.name]: getattr(neuron, p.name) for p in model.parameters}
        return float(model.rate_threshold.subs(values))
    if model.rate is not None:  # a closed form holds at every dt
        J = np.linspace(*table_range(model), 2001)
        rates = neuron.rates(J, np.ones(1), np.zeros(1)).ravel()
        return float(J[np.argmax(rates > 0)])
    if model.rate_table is not None and (dt is None or math.isclose(dt, table_dt(model, neuron))):
        return neuron.rate_table().threshold
    return bracket_threshold(neuron, model, dt or LARGEST_DT)


def table_dt(model, neuron):
    """The step the type's rate table is simulated at (see ``runtime.rate_table``)."""
    from .runtime import hard_max_dt

    dt = model.rate_table["dt"]
    return min(dt, hard_max_dt(neuron) / 2) if hasattr(neuron, "max_dt") else dt


def bracket_threshold(neuron, model, dt, duration=0.2, points=17, rounds=1):
    """The lowest current of the model's range that keeps firing (spikes in the
    second half of ``duration``, so not only an onset transient), refined ``rounds``
    times on a grid between the last silent and the first firing current."""
    low, high = table_range(model)
    for _ in range(rounds + 1):
        J = np.linspace(low, high, points)
        counts, _, _ = run(neuron, model, J, dt, duration, settle=duration / 2)
        firing = counts > 0
        if not firing.any():
            return None if high == table_range(model)[1] else float(high)
        k = int(np.argmax(firing))
        if k == 0:
            return float(J[0])
        low, high = J[k - 1], J[k]
    return float(high)


def current_range(threshold, low=None, high=None):
    """Default currents for an f-I curve: from one threshold below it to four
    above it (a unit scale where the threshold is 0 or unknown)."""
    base = threshold if threshold is not None else 0.0
    scale = abs(base) if base else 1.0
    return (base - 1.0 * scale if low is None else low), (base + 4.0 * scale if high is None else high)
