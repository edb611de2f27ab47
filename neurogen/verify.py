"""``neurogen verify``: check a generated module against its spec.

For each spec, on a battery of inputs (steps, a ramp, noise):

* NumPy vs NengoDL: the generated ``step`` and the generated builder, float64;
* spike times vs :mod:`neurogen.reference` (``solve_ivp`` with event detection);
* the convergence order of the chosen methods, measured as ``dt`` halves.
"""

import importlib.util
import math
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .model import representative_value
from .reference import Reference, Unsupported

#: pass/fail tolerances
TF_TOLERANCE = 1e-6  # max |NumPy - NengoDL| state/output error, relative to scale
SPIKE_TIME_DT = 1e-4  # dt of the spike-time comparison
ORDER_SLACK = 0.3  # measured order may fall this far below the expected one
REFERENCE_FLOOR = 1e-9  # errors below this are at the reference's accuracy
ORDERS = {"euler": 1, "exponential_euler": 1, "rk4": 4, "exact": math.inf}


@dataclass
class Row:
    spec: str
    tf_error: float = math.nan
    spike_error: float = math.nan
    spike_tolerance: float = math.nan
    order: float = math.nan
    expected_order: float = math.nan
    notes: list = field(default_factory=list)
    failures: list = field(default_factory=list)

    @property
    def passed(self):
        return not self.failures


def load_module(path, name=None):
    """Import a generated module from a file path."""
    name = name or f"_neurogen_verify_{Path(path).stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


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


def threshold_current(model, neuron):
    """The current at which ``neuron`` starts to fire (or None for rate types)."""
    if not model.spiking:
        return None
    if model.rate_table is not None:
        return neuron.rate_table().threshold
    if model.rate_threshold is not None:
        values = {model.symbols[p.name]: getattr(neuron, p.name) for p in model.parameters}
        return float(model.rate_threshold.subs(values))
    J = np.linspace(-10, 10, 2001)
    rates = neuron.rates(J, np.ones(1), np.zeros(1)).ravel()
    return float(J[np.argmax(rates > 0)])


def battery(threshold, duration, seed=0):
    """Named input functions ``J(t)``: steps, a ramp and noise."""
    scale = abs(threshold) if threshold else 1.0
    base = threshold if threshold is not None else 0.0
    noise = np.random.RandomState(seed).randn(int(duration / 1e-3) + 2)
    return {
        "step 1.2x": lambda t: base + 0.2 * scale,
        "step 2x": lambda t: base + 1.0 * scale,
        "step 5x": lambda t: base + 4.0 * scale,
        "ramp": lambda t: base + (-0.5 + 4.0 * t / duration) * scale,
        "noise": lambda t: base + (1.0 + 0.5 * noise[int(t / 1e-3)]) * scale,
    }


def simulate_numpy(neuron, model, current, dt, duration, state0):
    """Run the generated NumPy step; returns (output, states) histories."""
    steps = int(round(duration / dt))
    n = len(current)
    state = {k: np.full(n, v) for k, v in state0.items()}
    output = np.zeros(n)
    outputs, states = [], []
    for i in range(steps):
        J = np.array([f(i * dt) for f in current])
        neuron.step(dt, J, output, **state)
        outputs.append(output.copy())
        states.append({k: v.copy() for k, v in state.items()})
    return np.array(outputs), states


def numpy_vs_tf(module, model, inputs, duration, state0, dt=1e-3):
    """Largest scaled difference between the NumPy and NengoDL runs (float64)."""
    import nengo
    import nengo_dl

    steps = int(round(duration / dt))
    J = np.array([[f(i * dt) for f in inputs] for i in range(steps)])
    n = J.shape[1]
    neuron = module.NEURON_TYPE(initial_state={k: nengo.dists.Choice([v]) for k, v in state0.items()})
    with nengo.Network() as net:
        nengo_dl.configure_settings(dtype="float64")
        stim = nengo.Node(nengo.processes.PresentInput(J, dt))
        ens = nengo.Ensemble(n, 1, neuron_type=neuron, gain=np.ones(n), bias=np.zeros(n))
        nengo.Connection(stim, ens.neurons, synapse=None)
        probes = [nengo.Probe(ens.neurons, "output")] + [nengo.Probe(ens.neurons, s) for s in state0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gain = 1, bias = 0 are unusual tuning curves
        with nengo.Simulator(net, dt=dt, progress_bar=False) as sim:
            sim.run_steps(steps)
        with nengo_dl.Simulator(net, dt=dt, progress_bar=False) as dl:
            dl.run_steps(steps)
    error = 0.0
    for p in probes:
        a, b = sim.data[p], dl.data[p]
        ok = np.isfinite(a)
        scale = max(1.0, float(np.abs(a[ok]).max())) if ok.any() else 1.0
        error = max(error, float(np.abs(a - b)[ok].max()) / scale if ok.any() else 0.0)
    return error


def spike_errors(model, neuron, reference, inputs, state0, duration, dt=SPIKE_TIME_DT):
    """Spike-time error against the reference, and the tolerance for it."""
    y0 = [state0[str(s)] for s in reference.states]
    outputs, _ = simulate_numpy(neuron, model, list(inputs.values()), dt, duration, state0)
    errors, isis = [], []
    for k, f in enumerate(inputs.values()):
        ref, _ = reference.simulate(f, y0, duration)
        ours = (np.nonzero(outputs[:, k])[0] + 1) * dt
        m = min(len(ref), len(ours), 20)
        if len(ref) > 1:
            isis.append(np.mean(np.diff(ref)))
        if abs(len(ref) - len(ours)) > max(1, 0.02 * len(ref)):
            errors.append(math.inf)
        elif m:
            # the first spike's time, and the interspike intervals after it (errors
            # in those would otherwise add up along the train)
            isi_error = np.mean(np.abs(np.diff(ref[:m]) - np.diff(ours[:m]))) if m > 1 else 0.0
            errors.append(float(max(abs(ref[0] - ours[0]), isi_error)))
    tolerance = max(5 * dt, 0.02 * (min(isis) if isis else duration))
    return (max(errors) if errors else math.nan), tolerance


def convergence_order(model, neuron, reference, threshold, state0):
    """Measured order of the state error at a fixed time as dt halves."""
    level = (0.5 * threshold if threshold and threshold > 0 else threshold - 1.0) if model.spiking and threshold is not None else 0.5
    current = lambda t: level  # noqa: E731
    y0 = [state0[str(s)] for s in reference.states]
    duration = 0.02
    _, exact = reference.simulate(current, y0, duration)
    errs = []
    for dt in (1e-3, 5e-4, 2.5e-4):
        _, states = simulate_numpy(neuron, model, [current], dt, duration, state0)
        final = np.array([states[-1][str(s)][0] for s in reference.states])
        errs.append(float(np.max(np.abs(final - exact) / np.maximum(1.0, np.abs(exact)))))
    if max(errs) < 1e-9:
        return math.inf, errs
    # errors near the reference's own accuracy (rtol 1e-10) say nothing about order
    orders = [math.log2(a / b) for a, b in zip(errs, errs[1:]) if b > REFERENCE_FLOOR]
    return (float(np.mean(orders)) if orders else math.nan), errs


def expected_order(model, program):
    methods = [program.methods[str(u.target)] for u in model.dynamics + model.after_output if u.ode]
    if not methods:
        return math.nan
    order = min(ORDERS[m] for m in methods)
    groups = {(m, u in model.dynamics) for m, u in zip(methods, [u for u in model.dynamics + model.after_output if u.ode])}
    return min(order, 1) if len(groups) > 1 else order


def verify_spec(spec_path, module_path=None, duration=0.5):
    """Verify one spec; ``module_path`` selects an existing generated module."""
    from .build import compile_spec

    compiled = compile_spec(spec_path)
    model = compiled.model
    row = Row(str(spec_path))
    with tempfile.TemporaryDirectory() as tmp:
        if module_path is None:
            module_path = Path(tmp) / f"{model.module}.py"
            module_path.write_text(compiled.text, encoding="utf-8")
        module = load_module(module_path)
    neuron = module.NEURON_TYPE()
    state0 = initial_state(model)
    threshold = threshold_current(model, neuron)
    inputs = battery(threshold, duration)

    row.tf_error = numpy_vs_tf(module, model, list(inputs.values()), duration, state0)
    if not row.tf_error <= TF_TOLERANCE:
        row.failures.append(f"NumPy and NengoDL differ by {row.tf_error:.2g}")

    try:
        params = {p.name: getattr(neuron, p.name) for p in model.parameters}
        reference = Reference(model, params)
    except Unsupported as e:
        row.notes.append(f"no continuous reference ({e})")
        return row
    if model.spiking:
        row.spike_error, row.spike_tolerance = spike_errors(model, neuron, reference, inputs, state0, duration)
        if not row.spike_error <= row.spike_tolerance:
            # a low-order method may need a smaller dt: then the error must shrink with it
            finer, _ = spike_errors(model, neuron, reference, inputs, state0, duration, SPIKE_TIME_DT / 2)
            if finer <= 0.7 * row.spike_error:
                row.notes.append(
                    f"spike-time error {row.spike_error:.2g} s at dt={SPIKE_TIME_DT:g} s, "
                    f"{finer:.2g} s at dt={SPIKE_TIME_DT / 2:g} s: converging"
                )
            else:
                row.failures.append(f"spike times off by {row.spike_error:.3g} s (> {row.spike_tolerance:.3g}) and not converging")
    if reference.states:
        row.expected_order = expected_order(model, compiled.program)
        row.order, errs = convergence_order(model, neuron, reference, threshold, state0)
        if math.isnan(row.order) and max(errs) < 100 * REFERENCE_FLOOR:
            row.notes.append(f"state errors {max(errs):.1g} already at the reference's accuracy")
        elif not (row.order >= row.expected_order - ORDER_SLACK):
            row.failures.append(f"convergence order {row.order:.2f} < {row.expected_order} (errors {errs})")
    return row


def _fmt(x, unit=""):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == math.inf:
        return "exact"
    return f"{x:.2g}{unit}"


def table(rows):
    """The verification table as text."""
    head = f"{'spec':34} {'numpy-vs-tf':>11} {'spike-time err':>15} {'tolerance':>10} {'order':>6} {'expected':>8}  result"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.spec:34} {_fmt(r.tf_error):>11} {_fmt(r.spike_error, ' s'):>15} {_fmt(r.spike_tolerance, ' s'):>10} "
            f"{_fmt(r.order):>6} {_fmt(r.expected_order):>8}  {'PASS' if r.passed else 'FAIL'}"
        )
        lines += [f"    note: {n}" for n in r.notes] + [f"    FAIL: {f}" for f in r.failures]
    return "\n".join(lines)
