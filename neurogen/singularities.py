"""Removable singularities: 0/0 points of a model's expressions, guarded.

A quotient whose denominator vanishes where its numerator does too, such as the
Hodgkin-Huxley rate ``0.1*(v + 40)/(1 - exp(-(v + 40)/10))`` at ``v = -40``, evaluates
to NaN there (and loses digits near it).  :func:`guard` finds such points with SymPy
(roots of the denominator in one variable, at which the numerator vanishes) and
rewrites the quotient ``q(s)`` as ::

    where(|s - r| < eps, taylor(q, r)(s - r), q(where(|s - r| < eps, r + 2 eps, s)))

The Taylor polynomial (degree :data:`ORDER`) is accurate to float64 precision inside
the neighbourhood, where the quotient itself loses digits to cancellation; the
inner ``where`` makes the unselected branch finite too, so TensorFlow's gradient of
``tf.where`` (which multiplies both branches' gradients) stays finite.  The
neighbourhood ``eps`` is 1e-3 of the quotient's length scale at the point (from the
series coefficients at the default parameters): the series' truncation error is then
about 1e-15 and the direct form's cancellation error about 1e-13, relative.
"""

import sympy as sp

from .symbolic import evaluated
from .symbols import DT

#: degree of the Taylor polynomial used near a removable singularity
ORDER = 4
#: half-width of the neighbourhood, relative to the quotient's length scale there
WIDTH = 1e-3
#: functions a denominator may not contain (no clean roots)
_SKIP = (sp.Piecewise, sp.Min, sp.Max, sp.floor, sp.ceiling, sp.Abs, sp.sign)


def guard(expr, variables, values=None):
    """``expr`` with every removable 0/0 point of its quotients guarded.

    ``variables``: the symbols a singular point may be in (states, input,
    parameters); ``values``: symbol -> default number, for the neighbourhood's size.
    An expression without such a point comes back unchanged (the same object)."""
    if expr is None or not isinstance(expr, sp.Basic) or not expr.has(sp.Pow):
        return expr
    values = dict(values or {})
    values.setdefault(DT, 0.001)
    variables = set(variables)
    found = {}

    def visit(node):
        if node in found:
            return found[node]
        if node.is_Atom:
            return node
        new = node.func(*[visit(a) for a in node.args], evaluate=False) if node.args else node
        if any(a is not b for a, b in zip(new.args, node.args)):
            node = new
        if node.is_Mul:
            node = _guard_quotient(node, variables, values) or node
        found[node] = node
        return node

    try:
        result = visit(expr)
    except (TypeError, ValueError, NotImplementedError):  # pragma: no cover - keep as is
        return expr
    return expr if result == expr else result


def _guard_quotient(mul, variables, values):
    """The guarded form of the first removable 0/0 point of ``mul``, or None."""
    for factor in mul.args:
        if not (factor.is_Pow and factor.exp.is_negative and not factor.base.is_number):
            continue
        den = factor.base
        if den.has(*_SKIP):
            continue
        for s in sorted(den.free_symbols & variables, key=str):
            rest = sp.Mul(*[f for f in mul.args if not f.has(s)])
            numerator = sp.Mul(*[f for f in mul.args if f.has(s) and f is not factor])
            if not numerator.has(s):
                continue  # a constant numerator: a pole, not 0/0
            for root in _roots(den, s):
                if _vanishes(numerator, s, root):
                    guarded = _guarded(numerator, den, -factor.exp, s, root, values)
                    if guarded is not None:
                        return sp.Mul(rest, guarded, evaluate=False) if rest != 1 else guarded
    return None


def _roots(den, s):
    """Real roots of ``den`` in ``s`` (expressions free of ``s``)."""
    den = evaluated(den)
    real = {x: sp.Symbol(x.name, real=True) for x in den.free_symbols}  # simpler roots
    back = {v: k for k, v in real.items()}
    try:
        roots = [sp.simplify(sp.expand_log(r, force=True)).xreplace(back) for r in sp.solve(den.xreplace(real), real[s], dict=False)]
    except (NotImplementedError, TypeError, ValueError):
        return []
    return [r for r in roots if not r.has(s) and r.is_real is not False and not r.has(sp.I, sp.zoo, sp.oo)]


def _vanishes(numerator, s, root):
    try:
        value = evaluated(numerator).subs(s, root)
        if value.is_number:
            return abs(complex(value.evalf())) < 1e-12
        return sp.simplify(value) == 0
    except (TypeError, ValueError, NotImplementedError):
        return False


def _guarded(numerator, den, power, s, root, values):
    """``where(|s - root| < eps, series, quotient at a safe s)`` for the quotient
    ``numerator / den**power``, or None where the 0/0 is not removable."""
    coefficients = _quotient_series(numerator, den**power, s, root, values)
    if coefficients is None:
        return None
    quotient = sp.Mul(numerator, sp.Pow(den, -power))
    eps = sp.Float(float(f"{WIDTH * _length_scale(coefficients, root, values):.3g}"))
    offset = sp.Add(s, -root) if root != 0 else s
    near = sp.StrictLessThan(sp.Abs(offset), eps)
    safe = sp.Piecewise((root + 2 * eps, near), (s, True))
    terms = [sp.Mul(c, offset**k, evaluate=False) if k else c for k, c in enumerate(coefficients) if c != 0]
    taylor = sp.Add(*terms, evaluate=False)  # in powers of the offset, as a series
    with sp.evaluate(False):  # SymPy would fold 1/where(...) into where(..., 1/s)
        far = quotient.xreplace({s: safe})
    return sp.Piecewise((taylor, near), (far, True), evaluate=False)


def _quotient_series(numerator, den, s, root, values):
    """Taylor coefficients ``c_0 .. c_ORDER`` of ``numerator / den`` at ``s = root``
    (both sides' Taylor series, the common zero cancelled, divided as power
    series); None where the denominator vanishes to a higher order."""
    def taylor(expr, n):
        out, d = [], evaluated(expr)
        for k in range(n):
            out.append(sp.expand(d.subs(s, root)) / sp.factorial(k))
            d = sp.diff(d, s)
        return out

    n = ORDER + 4
    a, b = taylor(numerator, n), taylor(den, n)
    order = next((k for k, c in enumerate(b) if not _is_zero(c, values)), None)
    if order is None or order == 0 or order > 3 or any(not _is_zero(c, values) for c in a[:order]):
        return None
    a, b = a[order:], b[order:]
    c = []
    for k in range(ORDER + 1):
        value = (a[k] - sum(b[j] * c[k - j] for j in range(1, k + 1))) / b[0]
        value = sp.nsimplify(value, rational=False) if value.is_number else sp.factor_terms(sp.simplify(value))
        c.append(value)
    return c


def _is_zero(value, values):
    """True when ``value`` is zero (symbolically, or numerically at ``values``)."""
    if value == 0:
        return True
    try:
        return abs(complex(sp.sympify(value).subs(values).evalf())) < 1e-14 and sp.simplify(value) == 0
    except (TypeError, ValueError):
        return False


def _length_scale(coefficients, root, values):
    """The smallest ``(|c0| / |ck|)^(1/k)`` at the default values, the distance over
    which the quotient changes by about its own size, and ``|root|`` where the root
    is a parameter (``tau1 = tau2``); 1 where neither is known."""
    scales = []
    try:
        r = abs(complex(sp.sympify(root).subs(values).evalf()))
        if r > 0:
            scales.append(r)
    except (TypeError, ValueError):
        pass
    try:
        c = [abs(complex(sp.sympify(k).subs(values).evalf())) for k in coefficients]
        if c[0] > 0:
            scales += [(c[0] / ck) ** (1 / k) for k, ck in enumerate(c) if k > 0 and ck > 0]
    except (TypeError, ValueError):
        pass
    return min(scales) if scales else 1.0


def guard_model(model):
    """Guard every expression of ``model`` that reaches the step or the rate, in place."""
    variables = set(model.param_symbols) | set(model.state_symbols)
    from .symbols import J

    variables.add(J)
    variables |= {s for s, _ in model.step_values}
    values = {model.symbols[p.name]: p.value for p in model.parameters if isinstance(p.value, (int, float))}

    def g(expr):
        return guard(expr, variables, values)

    model.input = g(model.input)
    model.step_values = [(s, g(e)) for s, e in model.step_values]
    for u in model.dynamics + model.resets + model.after_output + model.after_reset:
        u.expr = g(u.expr)
    model.output = g(model.output)
    model.spike_output = g(model.spike_output)
    model.rate = g(model.rate)
    return model
