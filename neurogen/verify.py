"""``neurogen verify``: check a generated module against its spec.

Three checks, each a :class:`Check` with what it compares, its tolerance, the
measured figure and PASS / FAIL / N/A (does not apply) / SKIP (left out by ``--quick``):

* ``numpy-vs-nengodl``: the generated NumPy ``step`` against the generated NengoDL
  builder, float64, for two steps from states along runs of a battery of inputs
  (steps, a ramp, noise);
* ``spike-times``: spike times of the NumPy ``step`` against :mod:`neurogen.reference`
  (``solve_ivp`` with event detection), halving ``dt`` once where they are off;
* ``convergence-order``: the order at which the state error at a fixed time shrinks
  as ``dt`` halves, against the order the chosen methods promise.

A stochastic model (its ``step`` takes an ``rng``) gets statistical checks instead,
named as such in the report: ``rate-statistics`` (mean rates of nengo and NengoDL,
same seed, different random numbers, z-test per current) and ``noise-variance``
(per ODE with white noise ``xi``: the variance one step adds vs Euler-Maruyama on
the spec's SDE at ``dt / 64``); the deterministic references do not apply.

The step and the input currents come from the model (:mod:`neurogen.defaults`).
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .crosscheck import numpy_vs_tf, one_step_variance, rate_statistics, sampled_states, sde_variance, simulate_numpy
from .defaults import compiled_module, initial_state, is_stochastic, step_needed, threshold_current
from .reference import Reference, Unsupported
from .symbols import DT as DT_

#: pass/fail tolerances
TF_TOLERANCE = 1e-6  # max |NumPy - NengoDL| state/output difference, relative to scale
SPIKE_TIME_DT = 1e-4  # largest dt of the spike-time comparison
COUNT_SLACK = 0.05  # spike counts may differ by this fraction (or 1): a model near its
# firing onset (a slow ramp, noise near threshold) can gain or lose a spike from rounding
ORDER_SLACK = 0.3  # measured order may fall this far below the expected one
REFERENCE_FLOOR = 1e-9  # errors below this are at the reference's accuracy
RATE_Z = 4.0  # stochastic specs: largest |NumPy - NengoDL| mean rate in standard errors
VARIANCE_TOLERANCE = 0.08  # relative one-step variance error vs the fine SDE reference
VARIANCE_SAMPLES = 20000
ORDERS = {"euler": 1, "exponential_euler": 1, "rk4": 4, "exact": math.inf}
SPEC_DOC = "docs/spec-format.md"

PASS, FAIL, NA, SKIP = "PASS", "FAIL", "N/A", "SKIP"


@dataclass
class Check:
    """One line of the report."""

    name: str
    compares: str  # what is compared with what
    tolerance: str = ""
    measured: str = ""
    status: str = PASS
    value: float = None  # the measured figure as a number (None where not one)
    reason: str = ""  # why it does not apply, or why a figure over the tolerance passes
    detail: str = ""  # more figures: the worst input, the errors at each dt
    hint: str = ""  # what to do, for a failure


@dataclass
class Report:
    spec: str
    model: str = ""
    dt: float = None  # the step the model needs (see defaults.step_needed)
    threshold: float = None
    seconds: float = 0.0
    checks: list = field(default_factory=list)

    @property
    def passed(self):
        return all(c.status != FAIL for c in self.checks)

    @property
    def verdict(self):
        return PASS if self.passed else FAIL


def battery(threshold, duration, seed=0, quick=False):
    """Named input functions ``J(t)``: steps, a ramp and noise around the threshold."""
    scale = abs(threshold) if threshold else 1.0
    base = threshold if threshold is not None else 0.0
    noise = np.random.RandomState(seed).randn(int(duration / 1e-3) + 2)
    inputs = {
        "step 1.2x": lambda t: base + 0.2 * scale,
        "step 2x": lambda t: base + 1.0 * scale,
        "step 5x": lambda t: base + 4.0 * scale,
        "ramp": lambda t: base + (-0.5 + 4.0 * t / duration) * scale,
        "noise": lambda t: base + (1.0 + 0.5 * noise[int(t / 1e-3)]) * scale,
    }
    return {k: inputs[k] for k in ("step 2x", "ramp")} if quick else inputs


@dataclass
class SpikeErrors:
    error: float  # worst first-spike / mean-ISI error over the inputs (inf: counts differ)
    tolerance: float
    worst: str = ""  # the input with the worst error
    counts: tuple = ()  # (reference, ours) spike counts on that input


def spike_errors(model, neuron, reference, inputs, state0, duration, dt):
    """Spike-time error of the NumPy step at ``dt`` against the reference."""
    y0 = [state0[str(s)] for s in reference.states]
    with np.errstate(all="ignore"):
        outputs, _ = simulate_numpy(neuron, model, list(inputs.values()), dt, duration, state0)
    worst, isis = SpikeErrors(0.0, math.nan), []
    for k, (name, f) in enumerate(inputs.items()):
        ref, _ = reference.simulate(f, y0, duration)
        ours = (np.nonzero(outputs[:, k])[0] + 1) * dt
        m = min(len(ref), len(ours), 20)
        if len(ref) > 1:
            isis.append(np.mean(np.diff(ref)))
        if abs(len(ref) - len(ours)) > max(1, COUNT_SLACK * len(ref)):
            error = math.inf
        elif m:
            # the first spike's time, and the interspike intervals after it (errors
            # in those would otherwise add up along the train)
            isi_error = np.mean(np.abs(np.diff(ref[:m]) - np.diff(ours[:m]))) if m > 1 else 0.0
            error = float(max(abs(ref[0] - ours[0]), isi_error))
        else:
            continue
        if error >= worst.error:
            worst = SpikeErrors(error, math.nan, name, (len(ref), len(ours)))
    worst.tolerance = max(5 * dt, 0.02 * (min(isis) if isis else duration))
    return worst


def check_tf(module, model, neuron, inputs, duration, state0, dt):
    J, state = sampled_states(neuron, model, inputs, dt, duration, state0)
    check = Check(
        "numpy-vs-nengodl",
        f"NumPy step vs NengoDL (float64, 2 steps of {dt:g} s from {len(J)} states)",
        f"{TF_TOLERANCE:g} relative",
    )
    try:
        check.value = numpy_vs_tf(module, J, state, dt)
    except FloatingPointError as e:  # nengo's simulator raises on NaN
        check.value, check.status, check.measured = math.inf, FAIL, f"nengo's simulator stopped: {e}"
        check.hint = (
            "the step gives NaN or overflows from a finite state: guard the division or the "
            "exponential in the spec (e.g. cap the exponent with min()), or use a smaller dt"
        )
        return check
    check.measured = f"max difference {_num(check.value)}"
    if not check.value <= TF_TOLERANCE:
        check.status = FAIL
        check.hint = (
            "the NumPy and TensorFlow versions of the step compute different things: rebuild "
            "(`neurogen build --force`); if it persists, compare both updates with `neurogen show` "
            "and report it (a function printed differently for NumPy and TensorFlow)"
        )
    return check


def check_spike_times(model, neuron, reference, inputs, state0, duration, dt):
    check = Check(
        "spike-times",
        f"spike times at dt = {dt:g} s vs solve_ivp ({len(inputs)} inputs x {duration:g} s)",
    )
    result = spike_errors(model, neuron, reference, inputs, state0, duration, dt)
    if not result.worst:
        check.status, check.reason = NA, "no spikes on these inputs, in the reference or the step: nothing to compare"
        return check
    check.tolerance = f"{result.tolerance:.2g} s, counts {COUNT_SLACK:.0%}"
    check.value = result.error
    check.measured = _spike_figure(result)
    check.detail = f"worst input '{result.worst}'"
    if result.error <= result.tolerance:
        return check
    # a low-order method may need a smaller dt: then the error must shrink with it
    finer = spike_errors(model, neuron, reference, inputs, state0, duration, dt / 2)
    check.detail += f"; at dt = {dt / 2:g} s: {_spike_figure(finer)} on '{finer.worst}' (tolerance {finer.tolerance:.2g} s)"
    if finer.error <= finer.tolerance:
        check.reason = "over the tolerance at dt, within it at dt / 2"
        return check
    if math.isfinite(result.error) and finer.error <= 0.7 * result.error:
        check.reason = "over the tolerance, but converging as dt halves"
        return check
    check.status = FAIL
    check.hint = _spike_hint(result, finer, dt)
    return check


def _spike_hint(result, finer, dt):
    if math.isinf(result.error) and _miscount(finer) < _miscount(result):
        return (
            f"the step misses or adds spikes (input '{result.worst}'), fewer at dt / 2: dt = {dt:g} s "
            "is too large for the model's spike times; use a smaller dt, or a method with a smaller "
            f"error (`neurogen show`); see {SPEC_DOC}#equations-and-methods"
        )
    return (
        "spike times do not converge as dt shrinks: the step does not follow the spec's equations "
        "(see numpy-vs-nengodl and `neurogen show`), or the spike condition or reset is not "
        f"continuous in time, or the spike time within the step is wrong; see {SPEC_DOC}#spike"
    )


def _miscount(result):
    return abs(result.counts[0] - result.counts[1]) if math.isinf(result.error) else 0


def _spike_figure(result):
    if math.isinf(result.error):
        ref, ours = result.counts
        return f"{ours} spikes vs {ref} in the reference"
    return f"error {result.error:.2g} s"


ORDER_DURATION = 0.02  # the state error is measured at this time


def spike_free_level(model, reference, threshold, state0):
    """A constant input below the threshold at which the reference does not spike
    within ``ORDER_DURATION`` (a spike's reset lands on the step grid, which makes
    any method first order), preferably one that moves the state (a model resting
    at its equilibrium would pass as exact); None where every level tried spikes."""
    if not model.spiking or threshold is None:
        return 0.5
    scale = abs(threshold) if threshold else 1.0
    y0 = np.array([state0[str(s)] for s in reference.states], dtype=float)
    quiet = []
    for level in (threshold - 0.5 * scale, threshold - 1.0 * scale, threshold - 2.0 * scale):
        spikes, final = reference.simulate(lambda t: level, y0, ORDER_DURATION)
        if not len(spikes):
            if np.max(np.abs(final - y0) / np.maximum(1.0, np.abs(y0)), initial=0.0) > 1e-3:
                return level
            quiet.append(level)
    return quiet[0] if quiet else None


def convergence_order(model, neuron, reference, level, state0, dts):
    """Measured order of the state error at a fixed time as dt halves."""
    current = lambda t: level  # noqa: E731
    y0 = [state0[str(s)] for s in reference.states]
    duration = ORDER_DURATION
    _, exact = reference.simulate(current, y0, duration)
    errs = []
    for dt in dts:
        with np.errstate(all="ignore"):
            _, states = simulate_numpy(neuron, model, [current], dt, duration, state0)
        final = np.array([states[-1][str(s)][0] for s in reference.states])
        err = float(np.max(np.abs(final - exact) / np.maximum(1.0, np.abs(exact))))
        errs.append(err if math.isfinite(err) else math.inf)
    if max(errs) < REFERENCE_FLOOR:
        return math.inf, errs, duration
    # errors near the reference's own accuracy (rtol 1e-10) say nothing about order
    orders = [math.log2(a / b) for a, b in zip(errs, errs[1:]) if b > REFERENCE_FLOOR and math.isfinite(a)]
    return (float(np.mean(orders)) if orders else math.nan), errs, duration


def expected_order(model, program):
    odes = [u for u in model.dynamics + model.after_output if u.ode]
    if not odes:
        return math.nan
    methods = [program.methods[str(u.target)] for u in odes]
    order = min(ORDERS[m] for m in methods)
    groups = {(m, u in model.dynamics) for m, u in zip(methods, odes)}
    return min(order, 1) if len(groups) > 1 else order  # splitting is first order


def check_order(model, program, neuron, reference, threshold, state0, dt):
    if model.max_step is not None:  # halving dt would keep sub-steps of max_step: halve those
        dt = model.sub_step(dt) * (model.substeps or 1)
    dts = (dt, dt / 2, dt / 4)
    level = spike_free_level(model, reference, threshold, state0)
    if level is None:
        return Check(
            "convergence-order", "state error vs solve_ivp as dt halves", status=NA,
            reason=f"the reference spikes within {ORDER_DURATION:g} s at every input tried, and a reset on the step grid is first order",
        )
    expected = expected_order(model, program)
    check = Check(
        "convergence-order",
        f"state error vs solve_ivp at J = {level:.3g} as dt halves from {dt:g} s",
        f"order >= {expected - ORDER_SLACK:.2g}" if math.isfinite(expected) else f"exact: errors < {REFERENCE_FLOOR:g}",
    )
    order, errs, duration = convergence_order(model, neuron, reference, level, state0, dts)
    check.value = order
    check.measured = f"order {_order(order)}"
    check.detail = f"errors {', '.join(f'{e:.2g}' for e in errs)} at t = {duration:g} s for dt = {', '.join(f'{d:g}' for d in dts)} s"
    if math.isnan(order) and max(errs) < 100 * REFERENCE_FLOOR:
        check.reason = "errors already at the reference's accuracy"
    elif not order >= expected - ORDER_SLACK:
        check.status = FAIL
        if min(errs) > 0.1:
            check.hint = (
                "the state is off by O(1) at every dt: the step is unstable or the model stiff at "
                "these steps; use 'exact' or 'exponential_euler', or a smaller dt (`neurogen check --dt`)"
            )
        else:
            check.hint = (
                "the error shrinks more slowly than the methods promise: an update reads a value "
                "from the wrong time, or a method does not fit its equation; compare `neurogen show` "
                f"with {SPEC_DOC}#equations-and-methods"
            )
    return check


def verify_spec(spec_path, module_path=None, duration=0.5, quick=False):
    """Verify one spec; ``module_path`` selects an existing generated module."""
    from .build import compile_spec

    start = time.perf_counter()
    compiled = compile_spec(spec_path)
    model = compiled.model
    module = compiled_module(compiled, module_path)
    neuron = module.NEURON_TYPE()
    report = Report(str(spec_path), model.name)
    report.dt = step_needed(neuron, model)
    report.threshold = threshold_current(model, neuron, report.dt)
    if quick:
        duration = min(duration, 0.2)
    state0 = initial_state(model)
    inputs = battery(report.threshold, duration, quick=quick)
    report.checks = list(_checks(model, compiled.program, module, neuron, report, inputs, state0, duration, quick))
    report.seconds = time.perf_counter() - start
    return report


def _checks(model, program, module, neuron, report, inputs, state0, duration, quick):
    names = ("spike-times", "convergence-order")
    stochastic = is_stochastic(neuron)
    if stochastic:
        yield check_rate_statistics(module, neuron, report, quick)
        yield from check_noise_variance(model, neuron, state0, report.dt)
    else:
        yield check_tf(module, model, neuron, inputs, 0.1 if quick else duration, state0, report.dt)
    why = "stochastic model: no deterministic reference" if stochastic else None
    if why is None:
        try:
            params = {p.name: getattr(neuron, p.name) for p in model.parameters}
            reference = Reference(model, params)
        except Unsupported as e:
            why = f"no continuous-time reference ({e})"
    if why is not None:
        yield from (Check(n, "vs solve_ivp", status=NA, reason=why) for n in names)
        return
    if not model.spiking:
        yield Check(names[0], "spike times vs solve_ivp", status=NA, reason="rate model: no spikes")
    else:
        yield check_spike_times(model, neuron, reference, inputs, state0, duration, min(SPIKE_TIME_DT, report.dt))
    if not reference.states:
        yield Check(names[1], "state error vs solve_ivp as dt halves", status=NA, reason="no ODE states")
    elif quick:
        yield Check(names[1], "state error vs solve_ivp as dt halves", status=SKIP, reason="left out by --quick")
    else:
        yield check_order(model, program, neuron, reference, report.threshold, state0, report.dt)


def check_rate_statistics(module, neuron, report, quick):
    """Stochastic specs: mean rates of NumPy and NengoDL (different random numbers)
    agree within their standard errors (a z-test per current)."""
    currents = _rate_levels(neuron, report.threshold)
    n, duration = (50, 0.2) if quick else (200, 0.5)
    check = Check(
        "rate-statistics",
        f"statistical: mean rate NumPy vs NengoDL ({n} neurons x {duration:g} s at {len(currents)} currents, z-test)",
        f"|z| <= {RATE_Z:g}",
    )
    m1, s1, m2, s2 = rate_statistics(module, currents, n, duration, report.dt)
    se = np.sqrt(s1**2 + s2**2)
    z = np.where(se > 0, np.abs(m1 - m2) / np.where(se > 0, se, 1), np.where(m1 == m2, 0.0, np.inf))
    worst = int(np.argmax(z))
    check.value = float(z[worst])
    check.measured = f"max |z| {check.value:.2g} (at J = {currents[worst]:.3g}: {m1[worst]:.4g} +- {s1[worst]:.2g} Hz vs {m2[worst]:.4g} +- {s2[worst]:.2g} Hz)"
    check.detail = "rates " + ", ".join(f"{a:.4g}/{b:.4g}" for a, b in zip(m1, m2)) + " Hz (NumPy/NengoDL)"
    if not check.value <= RATE_Z:
        check.status = FAIL
        check.hint = (
            "NumPy and NengoDL fire at different mean rates: the two versions of the step draw or "
            "scale their random numbers differently; compare both with `neurogen show`"
        )
    return check


def _rate_levels(neuron, threshold, fractions=(0.05, 0.25, 0.6)):
    """Currents at which the tabulated mean rate reaches ``fractions`` of its top (a
    noisy neuron's mean rate creeps up from far below its deterministic threshold, so
    steps above the threshold would test near-silent neurons), else steps above the
    threshold."""
    if getattr(neuron, "rate_table_options", None):
        table = neuron.rate_table()
        top = float(np.max(table.values))
        if top > 0:
            return [float(table.currents[np.argmax(table.values >= f * top)]) for f in fractions]
    scale = abs(threshold) if threshold else 1.0
    base = threshold if threshold is not None else 0.0
    return [base + f * scale for f in (0.2, 1.0, 4.0)]


def check_noise_variance(model, neuron, state0, dt):
    """Stochastic specs with white noise ``xi``: the variance one step adds to each
    noisy state, against Euler-Maruyama on the spec's SDE at ``dt / 64``."""
    import sympy as sp

    from .noise import split
    from .symbols import J as J_

    params = {model.symbols[p.name]: getattr(neuron, p.name) for p in model.parameters}
    names = [str(s) for s in model.state_symbols]
    for u in model.dynamics:
        if not u.ode or not u.expr.has(sp.Symbol("xi", real=True)):
            continue
        drift, g = split(u, model.source_path)
        args = [J_, DT_] + model.state_symbols
        f = sp.lambdify(args, drift.expr.subs(params), modules="numpy")
        gf = sp.lambdify(args, g.subs(params), modules="numpy")

        def call(fn, values, current):
            return fn(current, dt, *[values[k] for k in names]) + 0 * values[names[0]]

        x = str(u.target)
        start, current = _quiet_point(model, drift, params, state0, u.target)
        ours = one_step_variance(neuron, model, start, current, x, VARIANCE_SAMPLES, dt)
        ref = sde_variance(lambda v, c: call(f, v, c), lambda v, c: call(gf, v, c), start, current, x, VARIANCE_SAMPLES, dt)
        error = abs(ours / ref - 1) if ref > 0 else (0.0 if ours == 0 else math.inf)
        check = Check(
            "noise-variance",
            f"statistical: variance of {x} after one step from {x} = {start[x]:.3g} at J = {current:.3g} vs Euler-Maruyama at dt/64 ({VARIANCE_SAMPLES} samples)",
            f"{VARIANCE_TOLERANCE:.0%} relative",
            f"{ours:.4g} vs {ref:.4g} (error {error:.2g})",
            value=error,
        )
        if not error <= VARIANCE_TOLERANCE:
            check.status = FAIL
            check.hint = "the step adds noise of the wrong size: white noise xi must scale with sqrt(dt) (Euler-Maruyama)"
        yield check


def _quiet_point(model, drift, params, state0, x):
    """A start state and input away from clamps and threshold: ``x`` halfway from
    its initial value to the spike threshold (where that is a number), at the
    current that holds its drift at zero (0 where none is found)."""
    import sympy as sp

    from . import analysis
    from .symbols import J as J_

    start = dict(state0)
    found = analysis.threshold_of(model.spike_condition, model.state_symbols) if model.spike_condition is not None else None
    if found is not None and found[0] == x:
        threshold = sp.sympify(found[1]).subs(params)
        if threshold.is_number:
            start[str(x)] = 0.5 * (float(start[str(x)]) + float(threshold))
    values = {**params, **{s: start[str(s)] for s in model.state_symbols}}
    try:
        roots = sp.solve(sp.sympify(drift.expr).subs(values), J_)
        current = float(roots[0]) if roots else 0.0
    except (NotImplementedError, TypeError, ValueError, IndexError):
        current = 0.0
    return start, current


def _num(x):
    return "inf" if x == math.inf else f"{x:.2g}"


def _order(x):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return "exact" if x == math.inf else f"{x:.2g}"
