"""Integration methods as registered objects (as Brian2's state updaters are).

Each :class:`Method` says whether it applies to a group of ODEs, and why not, and
integrates the group over a step ``h`` into IR statements.  ``auto`` tries
:data:`AUTO_ORDER` on each *coupled group* (ODEs of a run that read each other's
states) and integrates the whole group with the first method that applies, so a
coupled system is never split silently; a spec can still choose per equation.
"""

from dataclasses import dataclass

import sympy as sp

from . import analysis
from .errors import SpecError
from .ir import Assign, Propagator, temporary
from .symbolic import evaluated


@dataclass(frozen=True)
class Context:
    """What a method may use: the step length, parameter bounds, parameter symbols."""

    h: sp.Expr
    bounds: dict
    params: frozenset
    #: the simulator step the model is expected to run at (s): ``auto`` takes
    #: ``implicit`` where an explicit step of this length would be unstable
    dt: float = 0.001
    #: ``eigenvalues(rhs, xs)``: Jacobian eigenvalues of a group sampled along
    #: simulated trajectories (:class:`neurogen.diagnostics.Sampler`), or None
    eigenvalues: object = None


class Method:
    name = None
    #: whether the method integrates several ODEs jointly (else one at a time,
    #: each holding the others fixed: only where a spec asks for it explicitly)
    joint = True
    #: one line for ``neurogen show``
    summary = ""

    def check(self, group, ctx):
        """None if the method applies to ``group`` (Updates), else the reason why not."""
        return None

    def integrate(self, group, ctx):
        """``(helpers, [(state, op, value)])``: local statements and new values."""
        raise NotImplementedError


class Exact(Method):
    name = "exact"
    summary = "linear: exact solution"

    def check(self, group, ctx):
        xs = [u.target for u in group]
        for u in group:
            if not analysis.is_linear(u.expr, xs):
                return f"needs an ODE that is linear in the states; d{u.target}/dt is not"
        if len(group) > 1:
            matrix = analysis.jacobian([u.expr for u in group], xs)
            extra = set().union(*(e.free_symbols for e in matrix)) - ctx.params
            if extra:
                names = ", ".join(sorted(map(str, extra)))
                return f"needs a coupling matrix of parameters only; it reads {names}"
        return None

    def integrate(self, group, ctx):
        if len(group) == 1:
            (u,) = group
            return [], [(u.target, "+", analysis.exact_increment(u.expr, u.target, ctx.h, ctx.bounds))]
        return _propagate(group, ctx)


def _propagate(group, ctx):
    """``x(h) = Phi x + Gamma b`` for ``dx/dt = A x + b`` (A of parameters), with
    ``[[Phi, Gamma], [0, I]] = expm([[A, I], [0, 0]] h)`` evaluated numerically at
    run time (:func:`neurogen.propagators.linear_propagator`): no symbolic matrix
    exponential, exact for equal time constants too."""
    xs = [u.target for u in group]
    matrix = analysis.jacobian([u.expr for u in group], xs)
    offsets = [evaluated(u.expr).xreplace({x: 0 for x in xs}) for u in group]
    stem = str(xs[0])
    step = Propagator(temporary(f"phi_{stem}"), temporary(f"gamma_{stem}"), tuple(map(tuple, matrix.tolist())), ctx.h)
    helpers = [step]
    b = []
    for x, offset in zip(xs, offsets):
        if offset == 0:
            b.append(None)
            continue
        b.append(temporary(f"b_{x}"))
        helpers.append(Assign(b[-1], offset))
    values = []
    for i, x in enumerate(xs):
        terms = [sp.Mul(step.entry("phi", i, j), y, evaluate=False) for j, y in enumerate(xs)]
        terms += [sp.Mul(step.entry("gamma", i, j), bj, evaluate=False) for j, bj in enumerate(b) if bj is not None]
        values.append((x, "=", sp.Add(*terms, evaluate=False)))
    return helpers, values


class ExponentialEuler(Method):
    name = "exponential_euler"
    joint = False
    summary = "linear in its own state: exponential Euler"

    def check(self, group, ctx):
        if len(group) > 1:
            return "needs a single ODE (it would split the coupled group)"
        (u,) = group
        if not analysis.is_conditionally_linear(u.expr, u.target):
            return f"needs d{u.target}/dt to be linear in {u.target}"
        return None

    def integrate(self, group, ctx):
        return [], [(u.target, "+", analysis.exact_increment(u.expr, u.target, ctx.h, ctx.bounds)) for u in group]


class Euler(Method):
    name = "euler"
    summary = "forward Euler"

    def integrate(self, group, ctx):  # written as is: x + h*f(x), f as in the spec
        return [], [(u.target, "+", sp.Mul(ctx.h, u.expr, evaluate=False)) for u in group]


class RK4(Method):
    name = "rk4"
    summary = "nonlinear: classic Runge-Kutta, the whole group jointly"

    def integrate(self, group, ctx):
        helpers, increments = _rk4([u.target for u in group], [u.expr for u in group], ctx.h)
        return helpers, [(x, "+", increments[x]) for x in increments]


def _half(h, k):
    """``h*k/2``, as written (SymPy would print (1/2)*h*k)."""
    return sp.Mul(sp.Mul(h, k, evaluate=False), sp.Pow(2, -1, evaluate=False), evaluate=False)


def _at(exprs, point):
    """``exprs`` with states replaced by other symbols, keeping the written order."""
    with sp.evaluate(False):
        return [e.xreplace(point) for e in exprs]


def _rk4(xs, rhs, h):
    """Classic RK4: stages as ``_``-prefixed locals, each the right-hand side as
    written, read at an intermediate state; J and other states held fixed."""
    helpers, ks = [], []

    def stage(n, point):
        syms = [temporary(f"k{n}_{x}") for x in xs]
        for sym, value in zip(syms, _at(rhs, point) if point else rhs):
            helpers.append(Assign(sym, value))
        ks.append(dict(zip(xs, syms)))

    def intermediate(n, shift):
        point = {}
        for x in xs:
            point[x] = temporary(f"{x}_{n}")
            helpers.append(Assign(point[x], sp.Add(x, shift(ks[-1][x]), evaluate=False)))
        return point

    stage(1, None)
    stage(2, intermediate(2, lambda k: _half(h, k)))
    stage(3, intermediate(3, lambda k: _half(h, k)))
    stage(4, intermediate(4, lambda k: sp.Mul(h, k, evaluate=False)))
    increments = {}
    for x in xs:
        k1, k2, k3, k4 = (k[x] for k in ks)
        total = sp.Add(k1, sp.Mul(2, k2, evaluate=False), sp.Mul(2, k3, evaluate=False), k4, evaluate=False)
        weighted = sp.Mul(h, total, evaluate=False)
        increments[x] = sp.Mul(weighted, sp.Pow(6, -1, evaluate=False), evaluate=False)
    return helpers, increments


class Implicit(Method):
    """Backward Euler ``y = x + h f(y)``, solved with :data:`NEWTON_ITERATIONS`
    Newton steps from ``y = x`` on the SymPy Jacobian of the whole group (as NMODL's
    ``derivimplicit``).  The iterations are unrolled into plain assignments and the
    ``k x k`` Newton system is solved symbolically (LU), so NumPy and TensorFlow
    print it like any other update and TensorFlow differentiates through it.

    Backward Euler rather than trapezoidal: it is L-stable (a fast gate relaxes in
    one step, with no sign-flipping oscillation at ``h lambda << -1``), which is
    what a stiff model at nengo's step needs; it is first order."""

    name = "implicit"
    summary = "stiff: backward Euler, Newton iterations on the Jacobian"
    stiff = True

    def integrate(self, group, ctx):
        xs = [u.target for u in group]
        rhs = [_smooth_derivatives(evaluated(u.expr)) for u in group]
        jac = analysis.jacobian(rhs, xs).applyfunc(_smooth_derivatives)
        k = len(xs)
        helpers, current = [], list(xs)
        for n in range(1, NEWTON_ITERATIONS + 1):
            at = dict(zip(xs, current))
            f = [temporary(f"f{n}_{x}") for x in xs]
            helpers += [Assign(sym, r.xreplace(at)) for sym, r in zip(f, rhs)]
            # residual G = y - x - h f(y); Newton matrix M = I - h J(y)
            residual = [sp.Add(y, -x, -ctx.h * fi) if n > 1 else -ctx.h * fi for y, x, fi in zip(current, xs, f)]
            matrix = [[(1 if i == j else 0) - ctx.h * jac[i, j].xreplace(at) for j in range(k)] for i in range(k)]
            delta = _solve(matrix, residual, helpers, f"{n}_{xs[0]}")
            nxt = [temporary(f"{x}_{n}") for x in xs]
            helpers += [Assign(y, sp.Add(c, -d)) for y, c, d in zip(nxt, current, delta)]
            current = nxt
        return helpers, [(x, "=", y) for x, y in zip(xs, current)]


def _solve(matrix, rhs, helpers, tag):
    """Solve ``matrix @ delta = rhs`` by Gaussian elimination without pivoting (the
    Newton matrix ``I - h J`` is diagonally dominant for small ``h``), one small
    statement per entry (appended to ``helpers``): no symbolic fill-in blow-up."""
    k = len(rhs)
    a = [list(row) for row in matrix]
    b = list(rhs)

    def named(value, name):
        if value.is_Atom or value.is_number:
            return value
        sym = temporary(f"{name}_{tag}")
        helpers.append(Assign(sym, value))
        return sym

    for p in range(k):
        a[p][p] = named(a[p][p], f"pivot{p}")
        for i in range(p + 1, k):
            if a[i][p] == 0:
                continue
            factor = named(a[i][p] / a[p][p], f"l{i}{p}")
            for j in range(p + 1, k):
                if a[p][j] != 0:
                    a[i][j] = named(a[i][j] - factor * a[p][j], f"u{i}{j}_{p}")
            b[i] = named(b[i] - factor * b[p], f"r{i}_{p}")
    delta = [None] * k
    for i in reversed(range(k)):
        total = b[i] - sp.Add(*[a[i][j] * delta[j] for j in range(i + 1, k) if a[i][j] != 0])
        delta[i] = named(total / a[i][i], f"d{i}")
    return delta


#: Newton iterations of :class:`Implicit` (from ``y = x``: exact for linear ODEs
#: after one; the error falls quadratically, ``O(h^4)`` after two)
NEWTON_ITERATIONS = 3


def _smooth_derivatives(expr):
    """Derivatives of min/max/abs print as ``where``: Heaviside and sign become Piecewise."""
    return expr.replace(
        lambda e: isinstance(e, sp.Heaviside),
        lambda e: sp.Piecewise((1, e.args[0] > 0), (0, True)),
    ).replace(
        lambda e: isinstance(e, sp.sign),
        lambda e: sp.Piecewise((1, e.args[0] > 0), (-1, e.args[0] < 0), (0, True)),
    )


def unstable_at(group, method, ctx):
    """A reason string when ``method`` (euler or rk4) is unstable for ``group`` at
    ``ctx.dt`` (Jacobian eigenvalues at the default parameters, sampled along
    simulated trajectories), else None."""
    if ctx.eigenvalues is None:
        return None
    xs = [u.target for u in group]
    limit = analysis.largest_stable_step(ctx.eigenvalues([u.expr for u in group], xs), method)
    if limit < ctx.dt:
        return f"unstable for dt > {limit:.3g} s along sampled trajectories, dt = {ctx.dt:g} s"
    return None


class AutoRK4(RK4):
    """RK4 as ``auto`` tries it: only where it is stable at the step in use."""

    def check(self, group, ctx):
        return unstable_at(group, "rk4", ctx)


#: every method a spec may name, by name
METHODS = {m.name: m for m in (Exact(), ExponentialEuler(), Euler(), RK4(), Implicit())}
#: what ``auto`` tries, in order, on each coupled group (implicit always applies)
AUTO_ORDER = ("exact", "exponential_euler", "rk4", "implicit")
_AUTO = {"rk4": AutoRK4()}


def coupled_groups(odes):
    """The ODEs of a run split into groups that read each other's states (connected
    components of the dependency graph), in the order of their first line."""
    targets = [u.target for u in odes]
    group_of = {x: i for i, x in enumerate(targets)}

    def find(i):
        while group_of[targets[i]] != i:
            i = group_of[targets[i]]
        return i

    for u in odes:
        for y in evaluated(u.expr).free_symbols & set(targets):
            a, b = find(targets.index(u.target)), find(targets.index(y))
            if a != b:
                group_of[targets[max(a, b)]] = min(a, b)
    groups = {}
    for i, u in enumerate(odes):
        groups.setdefault(find(i), []).append(u)
    return list(groups.values())


def choose(group, ctx, path):
    """``[(method, members, reason)]`` for one coupled group: the spec's explicit
    methods (checked), and one method for all of the group's ``auto`` ODEs."""
    plan = {}
    for u in group:
        if u.method != "auto":
            plan.setdefault(u.method, []).append(u)
    chosen = []
    for name, members in plan.items():
        method = METHODS[name]
        for part in [members] if method.joint else [[u] for u in members]:
            reason = method.check(part, ctx)
            if reason is not None:
                raise SpecError(f"method {name!r} {reason}", path, part[0].line)
        chosen.append((method, members, "chosen in the spec"))
    auto = [u for u in group if u.method == "auto"]
    if auto:
        refusals = []
        for name in AUTO_ORDER:
            reason = _AUTO.get(name, METHODS[name]).check(auto, ctx)
            if reason is None:
                why = "; ".join(refusals + [METHODS[name].summary])
                chosen.append((METHODS[name], auto, f"auto: {why}"))
                break
            refusals.append(f"not {name} ({reason})")
    return chosen
