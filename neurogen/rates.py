"""Steady-state rates of spiking models: the spec's, a closed form derived by SymPy,
or else a tabulated f-I curve (simulated at run time by :mod:`neurogen.runtime`).

Runs after discretization and reads the methods it chose: a closed form is only
the step's rate when the spiking state is integrated exactly.
"""

import sympy as sp
from sympy.codegen.cfunctions import log1p

from .analysis import affine_parts, is_linear, threshold_of
from .spec import TABLE_DEFAULTS
from .symbolic import evaluated
from .symbols import DT, SPIKES, J


def complete_rates(model, program=None):
    """Give every spiking model a steady-state rate: the spec's, a closed form
    derived by SymPy, or else a simulated, tabulated f-I curve."""
    if not model.spiking or model.rate is not None or model.rate_table is not None:
        return model
    derived = derive_rate(model, program)
    if derived is not None:
        model.rate, model.rate_threshold = derived
        model.rate_derived = True
    else:
        model.rate_table = dict(TABLE_DEFAULTS)
    return model


def derive_rate(model, program=None):
    """See :func:`_derive_rate`; None also where SymPy gives up."""
    try:
        return _derive_rate(model, program)
    except (NotImplementedError, ValueError, TypeError):
        return None


def _derive_rate(model, program=None):
    """Closed-form steady-state rate of a LIF-like model, or None.

    Applies when the spiking state ``x`` follows one affine ODE ``dx/dt = a x + b``
    solved exactly, with ``a``, ``b`` and the threshold free of other states, and a
    reset to a constant ``x_r``.  SymPy solves ``x(T) = threshold`` from ``x(0) = x_r``
    for the interspike interval ``T``; the rate is the output per spike over
    ``period + T``.  Returns ``(rate, threshold_current)``.
    """
    if model.spike_condition is None or len(model.dynamics) != 1:
        return None
    if _stochastic(model):  # the mean rate of a noisy model: tabulated by simulation
        return None
    (ode,) = model.dynamics
    method = program.methods.get(str(ode.target)) if program is not None else ode.method
    if method not in ("exact", "auto"):
        return None  # the step's rate is that of its (inexact) method: tabulate it
    states = model.state_symbols
    found = threshold_of(model.spike_condition, states, [ode.target])
    if found is None or not ode.ode or found[0] != ode.target or found[1].has(*states):
        return None
    x, theta = found
    theta = evaluated(theta)
    if not is_linear(ode.expr, [x]):
        return None
    a, b = affine_parts(ode.expr, x)
    if a.has(*states) or b.has(*states) or a == 0:
        return None
    resets = [u for u in model.resets if u.target == x]
    if len(resets) != 1 or resets[0].expr.has(*states, SPIKES):
        return None
    x_reset = evaluated(resets[0].expr)
    per_spike = sp.simplify(evaluated(model.spike_output).subs(SPIKES, 1) * DT)
    if per_spike.has(DT, *states):
        return None
    if model.input is not None:
        if model.input.has(*states):
            return None
    # ISI from the exact trajectory x(t) = c + (x_r - c) exp(a t)
    t = sp.Symbol("t", positive=True)
    c = -b / a
    solutions = sp.solve(sp.Eq(c + (x_reset - c) * sp.exp(a * t), theta), t)
    if len(solutions) != 1:
        return None
    # log(z) / -a with z > 1 is written log1p(z - 1) / -a, accurate for large J
    z_minus_1 = sp.cancel((x_reset - theta) / (theta - c))
    isi = log1p(z_minus_1) / (-a)
    firing = sp.Gt(c, theta)
    defaults = {model.symbols[p.name]: p.value for p in model.parameters}
    for scale in (1.001, 1.5, 10, 1000):  # the rewrite agrees with SymPy's solution
        point = {**defaults, J: sp.solve(sp.Eq(c, theta), J)[0] * scale} if c.has(J) else defaults
        if abs(sp.N((isi - solutions[0]).subs(point))) > 1e-9 * abs(sp.N(isi.subs(point))):
            return None  # pragma: no cover
    if not (a.subs(defaults).subs(J, 2).is_negative and (x_reset - theta).subs(defaults).is_negative):
        return None  # only the leaky case with a reset below threshold is handled
    period = model.refractory_period if model.refractory_period is not None else 0
    # z - 1 with its denominator guarded, so no branch divides by zero (nor has an
    # infinite gradient in TensorFlow) where the neuron does not fire
    numerator, denominator = sp.fraction(z_minus_1)
    safe = sp.Piecewise((denominator, firing), (1, True), evaluate=False)
    guarded = sp.Mul(numerator, sp.Pow(safe, -1, evaluate=False), evaluate=False)
    rate = sp.Piecewise(
        (per_spike / (period + log1p(guarded) / (-a)), firing), (0, True), evaluate=False
    )
    threshold_current = sp.solve(sp.Eq(c, theta), J)
    if model.input is not None:
        rate = rate.subs(J, model.input)
    return rate, (threshold_current[0] if len(threshold_current) == 1 else None)


def _stochastic(model):
    """Whether any step expression draws random numbers or has white noise."""
    from .noise import has_noise

    exprs = [model.input, model.spike_condition, model.spike_count, model.output, model.refractory_period]
    exprs += [u.expr for u in model.dynamics + model.resets + model.after_output + model.after_reset]
    exprs += [v for _, v in model.step_values] + [e for c in model.clamps for e in c[1:]]
    return any(has_noise(e) for e in exprs if e is not None)
