"""Symbolic analysis of a model's ODEs: linearity, exact scalar updates, spike distance and time, stability.

Everything here is a pure function of SymPy expressions.
"""

import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from .symbolic import Crosses, evaluated
from .symbols import J, representative_value


def jacobian(rhs, xs):
    """Jacobian matrix of the right-hand sides ``rhs`` with respect to ``xs``."""
    return sp.Matrix([evaluated(r) for r in rhs]).jacobian(sp.Matrix(xs))


def is_linear(rhs, xs):
    """True when ``rhs`` is affine in all of ``xs`` (coefficients free of ``xs``)."""
    jac = jacobian([rhs], xs)
    return not any(entry.has(*xs) for entry in jac) and _smooth(evaluated(rhs), xs)


def is_conditionally_linear(rhs, x):
    """True when ``rhs`` is affine in its own state ``x`` (others held fixed)."""
    return is_linear(rhs, [x])


def _smooth(rhs, xs):
    """Piecewise, min/max and rounding are not linear even where derivatives vanish."""
    for node in sp.preorder_traversal(rhs):
        if isinstance(node, (sp.Piecewise, sp.Min, sp.Max, sp.floor, sp.ceiling, sp.Abs, sp.sign)):
            if node.has(*xs):
                return False
    return True


def affine_parts(rhs, x):
    """``(a, b)`` with ``rhs == a * x + b``; requires :func:`is_conditionally_linear`."""
    rhs = evaluated(rhs)
    a = sp.diff(rhs, x)
    b = rhs.subs(x, 0)
    return a, b


def exact_scalar(rhs, x, h, bounds=None):
    """Exact solution of ``dx/dt = a x + b`` over ``h`` with ``a``, ``b`` held fixed."""
    return sp.Add(x, exact_increment(rhs, x, h, bounds), evaluate=False)


def exact_increment(rhs, x, h, bounds=None):
    """``x(h) - x`` for ``dx/dt = a x + b`` with ``a``, ``b`` held fixed.

    Written ``(x + b / a) * expm1(a h)``, the form nengo's LIF uses, which is
    accurate for small ``a h``; ``a == 0`` gives ``b h`` (checked at run time
    unless the parameters' ``bounds`` rule it out).
    """
    a, b = affine_parts(rhs, x)
    if a == 0:
        return b * h
    if nonzero(a, bounds):
        return (x + b / a) * expm1(a * h)
    # `a` may vanish at run time: divide by a safe value and take b h there
    vanishes = sp.Eq(a, 0)
    safe_a = sp.Piecewise((1, vanishes), (a, True), evaluate=False)
    shift = sp.Mul(b, sp.Pow(safe_a, -1, evaluate=False), evaluate=False)  # unevaluated:
    step = sp.Mul(sp.Add(x, shift, evaluate=False), expm1(a * h), evaluate=False)  # SymPy
    return sp.Piecewise((b * h, vanishes), (step, True), evaluate=False)  # would move the
    # division back inside the guard


def nonzero(expr, bounds):
    """True when ``expr`` cannot be zero, given parameters' ``bounds``
    (symbol -> (low, high, low_open, default)), e.g. ``-1/tau`` with ``tau > 0``."""
    replacements = {}
    for symbol, (low, high, low_open, _) in (bounds or {}).items():
        if low is not None and (low > 0 or (low == 0 and low_open)):
            replacements[symbol] = sp.Symbol(symbol.name, positive=True)
        elif high is not None and high < 0:
            replacements[symbol] = sp.Symbol(symbol.name, negative=True)
    return bool(sp.simplify(expr.xreplace(replacements)).is_nonzero)


def exact_time_since_crossing(rhs, x, threshold, distance):
    """Time since ``x`` crossed ``threshold``, for an affine ODE solved exactly.

    Inverts ``x(t) = x_inf + (x0 - x_inf) exp(a t)`` backwards from the current ``x``:
    ``s = log1p(distance / (threshold - x_inf)) / a`` with ``distance = x - threshold``
    (from :func:`spike_distance`).
    """
    a, b = affine_parts(rhs, x)
    if a == 0:
        return distance / b
    x_inf = -b / a
    return log1p(distance / (threshold - x_inf)) / a


def spike_distance(condition):
    """Signed distance to threshold of a spike condition (positive once it holds):
    ``lhs - rhs`` for ``lhs > rhs``; None for conditions of another form.

    The one definition used by the step (surrogate gradients, spike times) and by
    the continuous-time reference's event detection.
    """
    sides = _upper_and_lower(condition)
    if sides is None:
        return None
    high, low = sides
    negated = -low if low.is_Number else sp.Mul(-1, low, evaluate=False)
    return sp.Add(high, negated, evaluate=False)


def threshold_of(condition, states, changing=()):
    """``(state, threshold)`` for a condition ``state > threshold`` (or ``>=``).

    The threshold may read other states, except those in ``changing`` (the ones
    integrated during the step).  Returns None when the condition has another form.
    """
    sides = _upper_and_lower(condition)
    if sides is None:
        return None
    lhs, rhs = sides
    if lhs in states and not rhs.has(lhs, *changing):
        return lhs, rhs
    return None


def _upper_and_lower(condition):
    """``(a, b)`` for a condition ``a > b`` (or ``>=``, ``b < a``, ``b <= a``,
    ``crosses(a, b)``), else None."""
    if isinstance(condition, Crosses):
        return condition.args[0], condition.args[1]
    if isinstance(condition, (sp.StrictGreaterThan, sp.GreaterThan)):
        return condition.lhs, condition.rhs
    if isinstance(condition, (sp.StrictLessThan, sp.LessThan)):
        return condition.rhs, condition.lhs
    return None


def eigenvalues(rhs, xs, values):
    """Eigenvalues of the Jacobian at numeric ``values`` (a dict of symbol -> number)."""
    jac = jacobian(rhs, xs).subs(values)
    return np.linalg.eigvals(np.array(jac.evalf(), dtype=float))


#: stability interval on the negative real axis: |h * lambda| <= bound
STABILITY_BOUNDS = {"euler": 2.0, "rk4": 2.785293563405282}

#: stability functions R(z) of the explicit methods (|R(h lambda)| <= 1 is stable)
STABILITY_FUNCTIONS = {
    "euler": lambda z: 1 + z,
    "rk4": lambda z: 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24,
}


def largest_stable_step(eigenvalues, method):
    """The largest ``h`` with every decaying eigenvalue's ``h lambda`` inside the
    stability region of ``method`` (walked out along each ray from 0); ``inf`` for
    methods with no step limit (exact, exponential_euler, implicit) and for growing
    modes (``Re lambda >= 0``: the solution itself grows there)."""
    R = STABILITY_FUNCTIONS.get(method)
    lam = np.asarray(eigenvalues, dtype=complex).ravel()
    lam = lam[np.isfinite(lam) & (lam.real < -1e-9 * np.abs(lam))]
    if R is None or lam.size == 0:
        return np.inf
    lam = np.unique(lam)
    radius = np.linspace(0, 3.2, 3201)[1:]
    z = radius[None, :] * (lam / np.abs(lam))[:, None]
    outside = np.abs(R(z)) > 1 + 1e-12
    first = np.where(outside.any(axis=1), np.argmax(outside, axis=1), radius.size - 1)
    reach = radius[np.maximum(first - 1, 0)]
    return float(np.min(reach / np.abs(lam)))


def stability_limits(updates, methods, states):
    """``(state, method, max_dt)`` for explicit updates of ODEs affine in their state.

    For ``dx/dt = a x + b`` with ``a < 0`` free of states and input, explicit Euler is
    stable for ``dt <= 2 / -a`` and RK4 for ``dt <= 2.785 / -a``.
    """
    limits = []
    for u in updates:
        method = methods.get(str(u.target))
        if not u.ode or method not in STABILITY_BOUNDS or not is_conditionally_linear(u.expr, u.target):
            continue
        a, _ = affine_parts(u.expr, u.target)
        if a == 0 or a.has(J, *states):
            continue
        limits.append((u.target, method, sp.Float(STABILITY_BOUNDS[method]) / (-a)))
    return limits


def stability_warnings(model, program, dt=0.001):
    """Messages for explicit updates that are unstable at ``dt`` (at default
    parameters; nonlinear ODEs linearized at the initial state with J = 0)."""
    defaults = {model.symbols[p.name]: p.value for p in model.parameters}
    initial = {symbol: representative_value(init) for _, symbol, init in model.states}
    messages = []
    for u in model.dynamics + model.after_output:
        method = program.methods.get(str(u.target))
        if not u.ode or method not in STABILITY_BOUNDS:
            continue
        a = sp.diff(evaluated(u.expr), u.target).subs(defaults).subs(initial).subs(J, 0)
        try:
            a = float(a)
        except (TypeError, ValueError):
            continue
        if np.isfinite(a) and a < 0 and dt * -a > STABILITY_BOUNDS[method]:
            limit = STABILITY_BOUNDS[method] / -a
            messages.append(
                f"d{u.target}/dt with method {method!r} is unstable for dt > {limit:.3g} s "
                f"(eigenvalue {a:.3g} at the default parameters); use 'exact', "
                f"'exponential_euler' or a smaller dt"
            )
    return messages

