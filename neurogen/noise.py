"""Random numbers and white noise in the step.

Two constructs make a model stochastic:

* ``rand()`` / ``randn()`` anywhere in a step expression: each occurrence is one
  independent draw per neuron per step (:class:`~neurogen.symbolic.RandomDraw`);
  :func:`extract_draws` turns them into :class:`~neurogen.ir.Draw` statements
  placed just before the first statement that reads them;
* white noise ``xi`` (units 1/sqrt(s), as Brian2's) in an ODE
  ``dx/dt = f + g*xi``: :func:`split` separates the drift ``f`` (integrated by the
  ODE's method) from the diffusion ``g``, and :func:`increment` adds the noise over
  the step ``h``: ``g * sqrt(h) * randn()`` (Euler-Maruyama), or, where the drift is
  linear in ``x`` with a rate ``a`` free of ``x`` and ``g`` free of ``x``
  (Ornstein-Uhlenbeck) and the method is exact, the exact increment
  ``g * sqrt(expm1(2 a h) / (2 a)) * randn()`` (see :func:`ou_variance`).
"""

import dataclasses

import sympy as sp
from sympy.codegen.cfunctions import expm1

from .errors import SpecError
from .ir import Draw, temporary
from .symbolic import XI, RandomDraw, evaluated, randn
from .symbols import DT

#: methods after which the linear (Ornstein-Uhlenbeck) noise increment is exact
EXACT_METHODS = ("exact", "exponential_euler")


def has_noise(expr):
    return isinstance(expr, sp.Basic) and (expr.has(XI) or expr.has(RandomDraw))


def split(update, path):
    """``(drift update, diffusion g or None)`` of an ODE ``dx/dt = f + g*xi``."""
    if not update.expr.has(XI):
        return update, None
    full = evaluated(update.expr)
    g = sp.diff(full, XI)
    if g.has(XI):
        raise SpecError(f"d{update.target}/dt must be linear in the white noise xi (f + g*xi)", path, update.line)
    with sp.evaluate(False):
        drift = update.expr.xreplace({XI: sp.Integer(0)})
    return dataclasses.replace(update, expr=drift), g


def ou_variance(a, h):
    """Variance over ``h`` of ``dx = a x dt + dW`` (unit noise): the integral of
    ``exp(2 a (h - s))`` over ``[0, h]``, written with ``expm1``; ``h`` where ``a = 0``."""
    if a == 0:
        return h
    two_a = sp.Mul(2, a, evaluate=False)
    return sp.Mul(expm1(sp.Mul(two_a, h, evaluate=False)), sp.Pow(two_a, -1, evaluate=False), evaluate=False)


def increment(update, g, method, group_size, h):
    """The noise added to ``update.target`` over ``h`` (reads start-of-step values)."""
    x = update.target
    drift = evaluated(update.expr)
    a = sp.diff(drift, x)
    linear = method in EXACT_METHODS and group_size == 1 and not a.has(x) and not g.has(x)
    variance = ou_variance(a, h) if linear else h
    sd = sp.sqrt(variance, evaluate=False)
    if h != DT:  # h may be 0 (refractory): no noise, and no infinite d sqrt / dh
        positive = sp.StrictGreaterThan(h, 0, evaluate=False)
        safe = sp.Piecewise((variance, positive), (1, True), evaluate=False)
        sd = sp.Piecewise((sp.sqrt(safe, evaluate=False), positive), (0, True), evaluate=False)
    return sp.Mul(g, sd, randn(sp.Dummy("xi")), evaluate=False)


def extract_draws(statements):
    """Replace each ``rand()`` / ``randn()`` by a ``_``-temporary, drawn by a
    :class:`~neurogen.ir.Draw` just before the first statement that reads it (a
    draw read by several statements, such as RK4's stages, is drawn once).  A
    statement holding a body of statements (a loop) gets its draws inside the
    body, so they are drawn anew on each pass."""
    names = {}

    def extract(items):
        out = []
        for s in items:
            fields = {f.name: getattr(s, f.name) for f in dataclasses.fields(s)}
            bodies = {k: type(v)(extract(v)) for k, v in fields.items() if _is_body(v)}
            exprs = {k: v for k, v in fields.items() if isinstance(v, sp.Basic)}
            found = []
            for value in exprs.values():
                found += [d for d in sp.preorder_traversal(value) if isinstance(d, RandomDraw) and d not in found]
            for d in found:
                if d not in names:
                    names[d] = temporary(f"{type(d).__name__}{len(names)}")
                    out.append(Draw(names[d], d.kind))
            if found or bodies:
                with sp.evaluate(False):
                    s = dataclasses.replace(s, **{k: v.xreplace(names) for k, v in exprs.items()}, **bodies)
            out.append(s)
        return out

    return extract(statements)


def _is_body(value):
    return isinstance(value, (tuple, list)) and value and all(dataclasses.is_dataclass(v) for v in value)


def is_stochastic(program):
    return any(isinstance(s, Draw) for s in program.statements)
