"""Symbolic analysis of a model's ODEs: linearity, propagators, spike-time inversion.

Everything here is a pure function of SymPy expressions.
"""

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from .symbolic import evaluated


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


def exact_scalar(rhs, x, h):
    """Exact solution of ``dx/dt = a x + b`` over ``h`` with ``a``, ``b`` held fixed.

    Written as ``x + (x - x_inf) * expm1(a h)`` with ``x_inf = -b / a``, the form
    nengo's LIF uses, which is accurate for small ``a h``.  ``a == 0`` gives
    ``x + b h``.
    """
    a, b = affine_parts(rhs, x)
    if a == 0:
        return x + b * h
    x_inf = -b / a
    return x + (x - x_inf) * expm1(a * h)


def exact_system(rhs, xs, h):
    """Exact propagator for the affine system ``dx/dt = A x + b`` over ``h``.

    Uses the matrix exponential of the augmented matrix ``[[A, b], [0, 0]]``.
    Returns the list of updated values.
    """
    if len(xs) == 1:
        return [exact_scalar(rhs[0], xs[0], h)]
    A = jacobian(rhs, xs)
    b = sp.Matrix([evaluated(r).subs({x: 0 for x in xs}) for r in rhs])
    n = len(xs)
    aug = sp.zeros(n + 1, n + 1)
    aug[:n, :n] = A
    aug[:n, n] = b
    prop = sp.simplify((aug * h).exp())
    state = sp.Matrix(list(xs) + [1])
    return [sp.simplify(e) for e in (prop * state)[:n]]


def steady_state(rhs, x):
    """Fixed point ``x_inf = -b / a`` of an affine scalar ODE (None where ``a == 0``)."""
    a, b = affine_parts(rhs, x)
    return None if a == 0 else -b / a


def exact_time_since_crossing(rhs, x, threshold):
    """Time since ``x`` crossed ``threshold``, for an affine ODE solved exactly.

    Inverts ``x(t) = x_inf + (x0 - x_inf) exp(a t)`` backwards from the current ``x``:
    ``s = log1p((x - threshold) / (threshold - x_inf)) / a``.
    """
    a, b = affine_parts(rhs, x)
    if a == 0:
        return (x - threshold) / b
    x_inf = -b / a
    return log1p((x - threshold) / (threshold - x_inf)) / a


def threshold_of(condition, states):
    """``(state, threshold)`` for a condition ``state > threshold`` (or ``>=``).

    Returns None when the condition has another form.
    """
    if isinstance(condition, (sp.StrictGreaterThan, sp.GreaterThan)):
        lhs, rhs = condition.lhs, condition.rhs
    elif isinstance(condition, (sp.StrictLessThan, sp.LessThan)):
        lhs, rhs = condition.rhs, condition.lhs
    else:
        return None
    if lhs in states and not rhs.has(*states):
        return lhs, rhs
    return None


def eigenvalues(rhs, xs, values):
    """Eigenvalues of the Jacobian at numeric ``values`` (a dict of symbol -> number)."""
    import numpy as np

    jac = jacobian(rhs, xs).subs(values)
    return np.linalg.eigvals(np.array(jac.evalf(), dtype=float))
