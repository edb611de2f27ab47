"""An accurate continuous-time reference for a model: ``scipy.integrate.solve_ivp``
with event detection for spikes, resets applied at the event, and refractory
periods that freeze the ``[dynamics]`` states.

``output`` in ``[after_output]`` ODEs becomes an impulse of ``output * dt`` per spike
(what a spike's ``amplitude / dt`` for one step amounts to as ``dt -> 0``).
"""

import math

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from .analysis import spike_distance
from .noise import has_noise
from .symbols import DT, OUTPUT, SPIKES, J
from .symbolic import XI, evaluated

MODULES = [
    {
        "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "softplus": lambda x: np.logaddexp(0, x),
        "expm1": np.expm1,
        "log1p": np.log1p,
    },
    "numpy",
]
#: scalar versions: solve_ivp calls the right-hand side one state at a time, where
#: Python's ``math`` is about ten times faster than NumPy's ufuncs
SCALAR_MODULES = [
    {
        "sigmoid": lambda x: 1 / (1 + math.exp(-x)),
        "softplus": lambda x: max(x, 0.0) + math.log1p(math.exp(-abs(x))),
        "expm1": math.expm1,
        "log1p": math.log1p,
    },
    "math",
]


class Unsupported(Exception):
    """The model has discrete-time parts with no continuous-time counterpart."""


class Reference:
    """Continuous-time version of ``model`` with numeric ``params`` (name -> value).

    ``scalar=False`` evaluates the equations with NumPy only (slower, same values);
    ``drift=True`` drops white noise ``xi`` (the deterministic drift of a noisy model,
    for the step-size diagnostics); other random draws have no reference."""

    def __init__(self, model, params, scalar=True, drift=False):
        dyn = model.dynamics
        post = model.after_output
        if any(not u.ode for u in dyn + post):
            raise Unsupported("assignments in [dynamics] or [after_output]")
        if model.spike_count is not None:
            raise Unsupported("spike counts")
        quiet = {XI: sp.Integer(0)} if drift else {}
        exprs = [u.expr for u in dyn + post + model.resets + model.after_reset]
        exprs += [e for _, e in model.step_values] + [model.input, model.spike_condition, model.spike_output]
        if any(has_noise(e.xreplace(quiet)) for e in exprs if e is not None):
            raise Unsupported("noise: a stochastic model has no deterministic reference")
        self.model = model
        self.scalar = scalar
        values = {model.symbols[k]: v for k, v in params.items()}
        names = {s: v for s, v in model.step_values}
        effective = model.input if model.input is not None else J

        def prepare(expr):
            expr = evaluated(expr).xreplace(names).xreplace({J: effective, **quiet})
            return evaluated(expr).subs(values)

        self.states = [u.target for u in dyn + post]
        self.frozen = np.array([u in dyn for u in dyn + post])  # frozen when refractory
        rhs = [prepare(u.expr) for u in dyn + post]
        if model.spiking:
            per_spike = prepare(model.spike_output.subs(SPIKES, 1) * DT)
            jumps = [sp.diff(r, OUTPUT) * per_spike for r in rhs]
            self.has_jump = any(j != 0 for j in jumps)
            rhs = [r.subs(OUTPUT, 0) for r in rhs]
            self.jump = self._fn(jumps)
        else:
            rhs = [r.subs(OUTPUT, prepare(model.output)) for r in rhs]
        self.rhs = self._fn(rhs)
        self.clamps = [(self.states.index(x), prepare(lo) if lo is not None else None, prepare(hi) if hi is not None else None) for x, lo, hi in model.clamps if x in self.states]
        if model.spiking:
            distance = spike_distance(model.spike_condition)
            if distance is None:
                raise Unsupported("compound spike condition")
            self.distance = self._fn([prepare(distance)])
            self.resets = [(self.states.index(u.target), self._fn([prepare(u.expr)])) for u in model.resets if u.target in self.states]
            self.after_resets = [(self.states.index(u.target), self._fn([prepare(u.expr)])) for u in model.after_reset if u.target in self.states]
            self.period = float(prepare(model.refractory_period)) if model.refractory_period is not None else 0.0
            # a spike that changes nothing (a crossing with no reset) need not stop the
            # integration; restarting exactly on the threshold would confuse the root finder
            self.terminal = bool(self.resets or self.after_resets or self.period or self.has_jump)

    def _fn(self, exprs):
        """``exprs`` as a function of ``(y, current)``: Python's ``math`` on scalars,
        NumPy where ``math`` raises (an overflow, a log of a negative: inf or NaN)."""
        args = [J] + self.states
        vector = sp.lambdify(args, exprs, modules=MODULES)

        def numpy(y, current):
            with np.errstate(all="ignore"):
                return np.array(vector(current, *y), dtype=float).ravel()

        if not self.scalar:
            return numpy
        try:
            scalar = sp.lambdify(args, exprs, modules=SCALAR_MODULES)
        except Exception:  # a function that ``math`` has no counterpart for
            return numpy

        def fn(y, current):
            try:
                return np.array(scalar(current, *y.tolist()), dtype=float).ravel()
            except (OverflowError, ValueError, ZeroDivisionError, TypeError):
                return numpy(y, current)

        return fn

    def _derivative(self, t, y, current, refractory):
        d = self.rhs(y, current(t))
        if refractory:
            d[self.frozen] = 0.0
        for i, lo, hi in self.clamps:
            if (lo is not None and y[i] <= lo and d[i] < 0) or (hi is not None and y[i] >= hi and d[i] > 0):
                d[i] = 0.0
        return d

    def simulate(self, current, y0, t_end, rtol=1e-10, atol=1e-12, max_step=np.inf):
        """Integrate from ``y0`` to ``t_end`` with input ``current(t)``.

        Returns ``(spike_times, final_state)``.
        """
        t, y = 0.0, np.asarray(y0, dtype=float).copy()
        spikes = []
        refractory_until = -1.0
        while t < t_end:
            refractory = t < refractory_until
            stop = min(refractory_until, t_end) if refractory else t_end
            events = None
            if self.model.spiking and not refractory:
                events = lambda t_, y_, *args: self.distance(y_, current(t_))[0]  # noqa: E731
                events.terminal, events.direction = self.terminal, 1
            sol = solve_ivp(
                self._derivative, (t, stop), y, args=(current, refractory), method="LSODA",
                rtol=rtol, atol=atol, events=events, max_step=max_step,
            )
            if not sol.success:  # pragma: no cover
                raise RuntimeError(sol.message)
            t, y = sol.t[-1], sol.y[:, -1].copy()
            if events is not None and not self.terminal:
                spikes.extend(sol.t_events[0])
            elif events is not None and sol.t_events[0].size:
                t = sol.t_events[0][0]
                y = sol.y_events[0][0].copy()
                spikes.append(t)
                y = self._spike(y, current(t))
                refractory_until = t + self.period
        return np.array(spikes), y

    def _spike(self, y, current):
        start = y.copy()
        for i, f in self.resets:
            y[i] = f(start, current)[0]
        y = y + self.jump(y, current)
        after = y.copy()
        for i, f in self.after_resets:
            y[i] = f(after, current)[0]
        return y
