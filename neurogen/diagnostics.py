"""Step-size diagnostics for non-linear models, and checks for plausible mistakes.

:class:`Sampler` simulates the continuous ODEs (``scipy.integrate.solve_ivp`` through
:class:`neurogen.reference.Reference`, spikes and resets included) at a few input
currents and keeps the states the solver visited; the Jacobian eigenvalues of each
coupled group at those states, against each method's stability region
(:func:`neurogen.analysis.largest_stable_step`), give the largest stable step.
"""

import math
import warnings

import numpy as np
import sympy as sp

from . import analysis
from .errors import NeurogenWarning
from .symbolic import evaluated
from .symbols import DT, OUTPUT, J, representative_value

#: seconds simulated per current, and the most states kept for eigenvalues
DURATION = 0.1
MAX_SAMPLES = 400
#: right-hand side evaluations per current, at most (bounds the time `check` takes)
MAX_EVALUATIONS = 1500
EXPLICIT = ("euler", "rk4")
#: the step ``build`` checks against (nengo's default)
DEFAULT_DT = 0.001
#: how a sampled limit is marked in ``StepProgram.stability`` (after the method)
SAMPLED = "sampled"


def defaults(model):
    """Parameter symbol -> default value (the mean where a value is per neuron)."""
    return {model.symbols[p.name]: float(np.mean(p.value)) for p in model.parameters}


def currents(model):
    """Input currents to sample at: the rate table's search range, else 0 to 10."""
    table = model.rate_table or {}
    low, high = float(table.get("low", 0.0)), float(table.get("high", 10.0))
    return np.linspace(low, high, 3)


class Sampler:
    """States visited by the continuous model, and a group's eigenvalues at them.

    Simulates lazily (on the first call), once per model."""

    def __init__(self, model):
        self.model = model
        self._samples = None
        self._reference = None
        self.spikes = None  # current -> spikes in DURATION (None: not simulated)

    @property
    def samples(self):
        """Array ``(n, 1 + states)``: current and reference states per visited point."""
        if self._samples is None:
            self._samples = self._simulate()
        return self._samples

    def _simulate(self):
        from .reference import Reference, Unsupported

        model = self.model
        params = {p.name: float(np.mean(p.value)) for p in model.parameters}
        try:
            ref = Reference(model, params, drift=True)
        except Unsupported:
            return np.zeros((0, 1))
        self._reference = ref
        initial = {s: float(representative_value(init)) for _, s, init in model.states}
        y0 = [initial.get(x, 0.0) for x in ref.states]
        visited = []
        derivative = ref._derivative

        budget = []

        def record(t, y, current, refractory):
            if len(budget) >= MAX_EVALUATIONS:
                return np.zeros_like(y)  # enough seen: let the solver run out
            budget.append(None)
            visited.append(np.concatenate([[current(t)], y]))
            return derivative(t, y, current, refractory)

        ref._derivative = record
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            self.spikes = {}
            for value in currents(model):
                budget.clear()
                try:
                    times, _ = ref.simulate(lambda t, v=value: v, y0, DURATION, rtol=1e-4, atol=1e-6)
                    self.spikes[float(value)] = len(times)
                except Exception:  # a diverging model: keep what was visited
                    self.spikes[float(value)] = 1
        ref._derivative = derivative
        samples = np.array(visited) if visited else np.zeros((0, 1 + len(y0)))
        samples = samples[np.all(np.isfinite(samples), axis=1)]
        if len(samples) > MAX_SAMPLES:
            samples = samples[np.linspace(0, len(samples) - 1, MAX_SAMPLES).astype(int)]
        return samples

    def __call__(self, rhs, xs):
        """Eigenvalues of the Jacobian of ``rhs`` (in ``xs``) at every sample."""
        samples = self.samples
        if not len(samples) or self._reference is None:
            return np.zeros(0)
        model, ref = self.model, self._reference
        names = {s: v for s, v in model.step_values}
        effective = model.input if model.input is not None else J
        values = defaults(model)

        def prepare(expr):
            expr = evaluated(expr).xreplace(names).xreplace({J: effective})
            return evaluated(expr).subs(values).subs({OUTPUT: 0, DT: 0.001})

        jac = analysis.jacobian([prepare(r) for r in rhs], xs)
        symbols = [J] + list(ref.states)
        if jac.free_symbols - set(symbols):
            return np.zeros(0)  # reads something not simulated (a local): no estimate
        from .reference import MODULES

        k, n = jac.shape[0], len(samples)
        mats = np.zeros((n, k, k))
        with np.errstate(all="ignore"):  # one vectorized call per entry
            for (i, j), entry in np.ndenumerate(np.array(jac.tolist(), dtype=object)):
                if entry != 0:
                    value = sp.lambdify(symbols, entry, modules=MODULES)(*samples.T)
                    mats[:, i, j] = np.broadcast_to(np.asarray(value, dtype=float), n)
        mats = mats[np.all(np.isfinite(mats), axis=(1, 2))]
        return np.linalg.eigvals(mats).ravel() if len(mats) else np.zeros(0)


def groups(model, program):
    """``[(block, [Update], method)]``: coupled ODE groups integrated with one method."""
    from .methods import coupled_groups

    out = []
    for block in (model.dynamics, model.after_output):
        odes = [u for u in block if u.ode]
        for group in coupled_groups(odes) if odes else []:
            by_method = {}
            for u in group:
                by_method.setdefault(program.methods.get(str(u.target)), []).append(u)
            out += [(group, members, method) for method, members in by_method.items()]
    return out


def sampled_limits(model, program, sampler=None):
    """``[(state, method, max_dt)]`` for explicit updates of ODEs not affine in their
    state (:func:`neurogen.analysis.stability_limits` covers those): the largest
    stable step along sampled trajectories, at the default parameters."""
    covered = {str(x) for x, m, _ in program.stability if not m.endswith(SAMPLED)}
    sampler = sampler or Sampler(model)
    limits = []
    for group, members, method in groups(model, program):
        if method not in EXPLICIT or all(str(u.target) in covered for u in members):
            continue
        xs = [u.target for u in group]
        limit = analysis.largest_stable_step(sampler([u.expr for u in group], xs), method)
        if math.isfinite(limit):
            limits.append((members[0].target, f"{method}, {SAMPLED}", sp.Float(limit, 4)))
    return limits


def step_warnings(model, program, dt, sampler=None):
    """Messages for explicit updates unstable at ``dt`` along sampled trajectories,
    naming the largest stable step and the ``substeps`` that would fix it."""
    sampler = sampler or Sampler(model)
    covered = {str(x) for x, m, _ in program.stability if not m.endswith(SAMPLED)}
    messages = []
    for group, members, method in groups(model, program):
        if method not in EXPLICIT or all(str(u.target) in covered for u in members):
            continue  # affine with a parameter-only limit: analysis.stability_warnings
        xs = [u.target for u in group]
        eig = sampler([u.expr for u in group], xs)
        limit = analysis.largest_stable_step(eig, method)
        if limit >= model.sub_step(dt):
            continue
        worst = eig[eig.real < 0][np.argmax(np.abs(eig[eig.real < 0]))]
        names = ", ".join(f"d{u.target}/dt" for u in members)
        J_low, J_high = currents(model)[[0, -1]]
        messages.append(
            f"{names} with method {method!r} is unstable at dt = {dt:g} s: Jacobian "
            f"eigenvalues sampled along trajectories (J = {J_low:g} to {J_high:g}) reach "
            f"{_complex(worst)} /s, so the largest stable step is {limit:.3g} s; set "
            f"`substeps = {math.ceil(dt / limit)}` in [dynamics] (or `max_step = {limit:.2g}`), or use "
            f"method 'implicit'"
        )
    return messages


def _complex(value):
    if abs(value.imag) < 1e-9 * abs(value):
        return f"{value.real:.4g}"
    return f"{value.real:.4g}{value.imag:+.4g}j"


def warn(messages, path):
    for message in messages:
        warnings.warn(f"{path}: {message}", NeurogenWarning, stacklevel=3)


def mistakes(model, program, sampler=None, dt=DEFAULT_DT):
    """Warnings for plausible mistakes: a spike condition still true after its reset,
    a time constant that reads like ms, a model that never fires over its rate
    table's range, a rate table at a step the model cannot resolve."""
    sampler = sampler or Sampler(model)
    messages = _refires(model) + _units(model)
    if model.spiking and model.rate_table is not None:
        messages += _silent(model, sampler) + _table_step(model, program, sampler, dt)
    return messages


def _state_after_reset(model):
    """States at their initial values (J = 0), with the resets applied."""
    values = defaults(model)
    state = {s: float(representative_value(init)) for _, s, init in model.states}
    point = {**values, **state, J: 0.0, DT: DEFAULT_DT}
    names = {s: v for s, v in model.step_values}
    after = dict(point)
    for u in model.resets:
        after[u.target] = float(evaluated(u.expr).xreplace(names).subs(point))
    return after


def _refires(model):
    """A spike condition that holds right after the reset fires every step."""
    if model.spike_condition is None or not model.resets:
        return []
    try:
        after = _state_after_reset(model)
        names = {s: v for s, v in model.step_values}
        holds = evaluated(model.spike_condition).xreplace(names).subs(after)
    except (TypeError, ValueError):
        return []
    if holds is not sp.true:
        return []
    shown = ", ".join(f"{u.target} = {after[u.target]:g}" for u in model.resets)
    return [
        f"the spike condition {model.spike_condition} still holds after the reset "
        f"({shown}): the neuron fires every step; reset below the threshold"
    ]


def _units(model):
    """A time constant named ``tau*`` of more than a second reads like milliseconds,
    where the equations it enters also run on a scale of seconds (a ``tau`` in model
    time units, multiplied by a time scale, does not)."""
    messages = []
    for p in model.parameters:
        value = float(np.max(p.value))
        if p.name.lower().startswith("tau") and value > 1 and "ms" not in (p.doc or "").split():
            if _time_scale(model, model.symbols[p.name]) > 1:
                messages.append(
                    f"parameter {p.name} = {value:g} is {value:g} s; did you mean "
                    f"{value / 1000:g} s? (time constants are in seconds)"
                )
    return messages


def _time_scale(model, parameter):
    """The slowest time scale, ``1/|df/dx|`` at the initial state and the default
    parameters, of the ODEs ``dx/dt = f`` that read ``parameter`` (its own value where
    ``df/dx`` vanishes there)."""
    values = defaults(model)
    point = {**values, J: 0.0, DT: DEFAULT_DT, OUTPUT: 0.0}
    point.update({s: float(representative_value(init)) for _, s, init in model.states})
    names = {s: v for s, v in model.step_values}
    scales = []
    for u in model.dynamics + model.after_output:
        expr = evaluated(u.expr).xreplace(names)
        if not u.ode or parameter not in expr.free_symbols:
            continue
        try:
            rate = abs(float(sp.diff(expr, u.target).subs(point)))
        except (TypeError, ValueError):
            rate = 0.0
        scales.append(1 / rate if math.isfinite(rate) and rate > 0 else values[parameter])
    return max(scales, default=values[parameter])


def _silent(model, sampler):
    """A model with no spike at any sampled current of its rate table's range."""
    sampler.samples  # simulates
    if sampler.spikes is None or any(sampler.spikes.values()):
        return []
    low, high = currents(model)[[0, -1]]
    return [
        f"the model never fires for J from {low:g} to {high:g} (its rate table's range, "
        f"{DURATION:g} s simulated at each): check the spike condition, or move the range "
        f"with `[rate] table = {{ low = ..., high = ... }}`"
    ]


def _table_step(model, program, sampler, dt):
    """A rate table simulated at a step beyond the largest stable step."""
    table_dt = float(model.rate_table.get("dt", DEFAULT_DT))
    if table_dt == dt:
        return []  # step_warnings already names the step
    for group, members, method in groups(model, program):
        if method not in EXPLICIT:
            continue
        limit = analysis.largest_stable_step(sampler([u.expr for u in group], [u.target for u in group]), method)
        if table_dt > limit:
            return [
                f"the rate table is simulated at dt = {table_dt:g} s, beyond the largest "
                f"stable step of d{members[0].target}/dt ({method}), {limit:.3g} s: set "
                f"`[rate] table = {{ dt = {limit / 2:.2g} }}`"
            ]
    return []
