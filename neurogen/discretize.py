"""Turn a :class:`~neurogen.model.Model` into a :class:`~neurogen.ir.StepProgram`.

The program is the one target-neutral description of a simulation step: typed
statements (:mod:`neurogen.ir`) that the backends print directly.

Step order (matching nengo's hand-written neurons)::

    J = input                          [dynamics] input
    refractory countdown, delta_t      [spike] refractory
    ODE updates over delta_t (or dt)   [dynamics] equations
    spikes, output                     [spike] condition/count, or [output]
    spike time, clamps, resets,        [spike]
    refractory period
    updates over dt that see output    [after_output]

Lines of a block run in order; a run of consecutive ODE lines is integrated
together, each ODE reading the values from the start of the run.
"""

import sympy as sp

from . import analysis
from .errors import SpecError
from .ir import (
    LOCALS,
    SPIKED,
    Assign,
    Guarded,
    MaskedAssign,
    Output,
    Spike,
    SpikeCount,
    StepProgram,
    Store,
    Update,
    temporary,
)
from .symbols import DT, J

DELTA_T = temporary("delta_t")  # the part of the step outside the refractory period
T_SPIKE = temporary("t_spike")  # when in the step the neuron spiked
START = temporary("start")  # the spiking state before the update (linear spike time)


def choose_method(update, block_states, path):
    """Resolve ``auto`` and check that an explicit method fits the equation."""
    rhs, x, method = update.expr, update.target, update.method
    linear = analysis.is_linear(rhs, block_states)
    cond_linear = analysis.is_conditionally_linear(rhs, x)
    if method == "auto":
        if linear:
            return "exact"
        return "exponential_euler" if cond_linear else "rk4"
    if method == "exact" and not linear:
        raise SpecError(
            f"method 'exact' needs an ODE that is linear in the states; d{x}/dt is not", path, update.line
        )
    if method == "exponential_euler" and not cond_linear:
        raise SpecError(
            f"method 'exponential_euler' needs d{x}/dt to be linear in {x}", path, update.line
        )
    return method


def integrate(updates, h, path, methods, bounds=None):
    """Statements advancing a run of ODEs over a step ``h``: local stages (RK4)
    and the states' new values.  ODEs with the same method are integrated
    together; each group holds the other groups' states fixed over the step."""
    odes = updates
    block_states = [u.target for u in odes]
    chosen = {u.target: choose_method(u, block_states, path) for u in odes}
    for u in odes:
        methods[str(u.target)] = chosen[u.target]
    new, helpers = {}, []  # new[x] = ("+", increment) or ("=", value)

    exact = [u for u in odes if chosen[u.target] == "exact"]
    if len(exact) > 1 and not _well_defined(exact, h, bounds):
        if any(u.method == "exact" for u in exact):
            raise SpecError(
                "method 'exact' gives no real closed form for this coupled linear system "
                "at the default parameters (complex eigenvalues); use 'rk4'",
                path,
                exact[0].line,
            )
        for u in exact:  # auto: integrate the coupled system numerically instead
            chosen[u.target] = methods[str(u.target)] = "rk4"
        exact = []
    if len(exact) == 1:
        (u,) = exact
        new[u.target] = ("+", analysis.exact_increment(u.expr, u.target, h, bounds))
    elif exact:
        xs = [u.target for u in exact]
        if any(analysis.is_linear(u.expr, xs) is False for u in exact):
            raise SpecError("exact ODEs must be jointly linear", path, exact[0].line)
        try:
            values = analysis.exact_system([u.expr for u in exact], xs, h, bounds)
        except NotImplementedError:
            raise SpecError(
                "method 'exact' cannot write this coupled linear system in real arithmetic "
                "(complex eigenvalues); use 'rk4'",
                path,
                exact[0].line,
            ) from None
        for u, value in zip(exact, values):
            new[u.target] = ("=", value)
    for u in odes:
        method = chosen[u.target]
        if method == "euler":  # written as is: x + h*f(x), f as in the spec
            new[u.target] = ("+", sp.Mul(h, u.expr, evaluate=False))
        elif method == "exponential_euler":
            new[u.target] = ("+", analysis.exact_increment(u.expr, u.target, h, bounds))
    rk4 = [u for u in odes if chosen[u.target] == "rk4"]
    if rk4:
        helpers, increments = _rk4([u.target for u in rk4], [u.expr for u in rk4], h)
        new.update({x: ("+", inc) for x, inc in increments.items()})
    return helpers, [(u.target, *new[u.target]) for u in odes]


def _well_defined(exact, h, bounds):
    """Whether the coupled propagator is real and finite at the default parameters."""
    xs = [u.target for u in exact]
    try:
        values = analysis.exact_system([u.expr for u in exact], xs, h, bounds)
    except NotImplementedError:
        return False
    point = {symbol: default for symbol, (_, _, _, default) in (bounds or {}).items()}
    point.update({x: 0.5 + 0.1 * i for i, x in enumerate(xs)})
    point.update({h: 0.001, J: 1.5})
    for value in values:
        value = value.subs(point)
        value = value.subs({s: 0.7 for s in value.free_symbols})  # other states, held fixed
        number = complex(sp.N(value))
        if not (abs(number.imag) < 1e-9 * max(1.0, abs(number.real)) and abs(number.real) < 1e300):
            return False
    return True


def _block(out, updates, h, path, methods, comment, bounds):
    """Emit a block of update lines in order; runs of ODE lines integrate together."""
    run = []

    def flush():
        if run:
            helpers, values = integrate(run, h, path, methods, bounds)
            out.extend(helpers)
            out.extend(_write(values, comment))
            run.clear()

    for u in updates:
        if u.ode:
            run.append(u)
            continue
        flush()
        if u.local:
            out.append(Assign(u.target, u.expr, line=u.line))
        else:
            out.append(Store(u.target, u.expr))
    flush()


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


def _write(values, comment):
    """Statements giving states their new values ``(state, op, value)``: an
    :class:`Update` for increments, through ``_``-temporaries where a value reads
    a state written before it in the same run."""
    out, targets = [], [x for x, _, _ in values]
    conflict = any(value.has(*targets[:i]) for i, (_, _, value) in enumerate(values))
    if conflict:
        for x, op, value in values:
            full = value if op == "=" else sp.Add(x, value, evaluate=False)
            out.append(Assign(temporary(f"{x}_next"), full, comment))
            comment = ""
        for x, _, _ in values:
            out.append(Store(x, temporary(f"{x}_next")))
        return out
    for x, op, value in values:
        if op == "=" and value == x:
            continue
        if op == "=":
            out.append(Store(x, value, comment))
        elif isinstance(value, sp.Mul) and value.could_extract_minus_sign():
            out.append(Update(x, "-", -value, comment))
        else:
            out.append(Update(x, "+", value, comment))
        comment = ""
    return out


def discretize(model, path=None):
    """Build the :class:`~neurogen.ir.StepProgram` of one simulation step."""
    path = path or model.source_path
    out, methods = [], {}

    if model.input is not None:
        out.append(Assign(J, model.input, "effective input current"))
    for symbol, value in model.step_values:
        out.append(Assign(symbol, value))

    h = DT
    if model.refractory_state is not None:
        rt = model.refractory_state
        out.append(Update(rt, "-", DT, "count down the refractory period"))
        out.append(Assign(DELTA_T, sp.Min(sp.Max(DT - rt, 0), DT), "time left to integrate"))
        h = DELTA_T

    spike_var = None
    if model.spike_condition is not None:
        changing = [u.target for u in model.dynamics]
        spike_var = analysis.threshold_of(model.spike_condition, model.state_symbols, changing)
    start_index = len(out)

    bounds = {model.symbols[p.name]: (p.low, p.high, p.low_open, p.value) for p in model.parameters}
    _block(out, model.dynamics, h, path, methods, "integrate the dynamics", bounds)

    if model.spiking:
        _spikes(out, model)
        if model.refractory_state is not None:
            t_spike = _spike_time(model, spike_var, h, methods, path)
            if t_spike.has(START):
                x = spike_var[0]
                out.insert(start_index, Assign(START, x, "value before the update"))
            out.append(Guarded(SPIKED, T_SPIKE, t_spike, "spike time within the step"))
        _clamps(out, model)
        out.extend(_masked(model.resets, "reset"))
        if model.refractory_state is not None:
            rt = model.refractory_state
            value = sp.Add(T_SPIKE, model.refractory_period, evaluate=False)
            out.append(MaskedAssign(SPIKED, rt, value, "refractory period from the spike time"))
    else:
        out.append(Output(model.output))
        _clamps(out, model)

    _block(out, model.after_output, DT, path, methods, "updates that see this step's output", bounds)
    out.extend(_masked(model.after_reset, "reset after the update"))
    stability = analysis.stability_limits(model.dynamics + model.after_output, methods, model.state_symbols)
    statements = _prune(out, path)
    return StepProgram(tuple(statements), methods, tuple(stability))


def _spikes(out, model):
    """Spikes and output: a condition (with its distance to threshold) or a count."""
    if model.spike_condition is not None:
        distance = analysis.spike_distance(model.spike_condition)
        out.append(Spike(SPIKED, model.spike_condition, distance))
    else:
        count = model.spike_count
        proxy = count.args[0] if isinstance(count, sp.floor) else count
        out.append(SpikeCount(SPIKED, count, proxy))
    out.append(Output(model.spike_output))


def _masked(resets, comment):
    """Resets for the neurons that spiked; all read the values before any is written."""
    out, targets = [], [u.target for u in resets]
    if any(u.expr.has(*targets[:i]) for i, u in enumerate(resets)):
        for u in resets:
            out.append(Guarded(SPIKED, temporary(f"{u.target}_next"), u.expr, comment))
            comment = ""
        resets = [type(u)(u.target, temporary(f"{u.target}_next"), u.ode, u.method, u.line) for u in resets]
    for u in resets:
        out.append(MaskedAssign(SPIKED, u.target, u.expr, comment))
        comment = ""
    return out


def _prune(statements, path):
    """Drop local values that no later statement reads (an unused value the spec
    defined itself is an error: most likely a misspelled state)."""
    kept, used = [], set()
    for s in reversed(statements):
        if isinstance(s, LOCALS) and s.target not in used:
            if getattr(s, "line", None) is not None:
                raise SpecError(
                    f"{s.target!s} is assigned but never used: not a declared state (misspelled?)",
                    path,
                    s.line,
                )
            continue
        used |= s.reads()
        kept.append(s)
    return kept[::-1]


def _clamps(out, model):
    for x, low, high in model.clamps:
        value = x
        if low is not None:
            value = sp.Max(value, low)
        if high is not None:
            value = sp.Min(value, high)
        out.append(Store(x, value, "clamp"))


def _spike_time(model, spike_var, h, methods, path):
    """``t_spike``: when in the step the threshold was crossed (from its start)."""
    mode = model.spike_time
    if mode == "end":
        return DT
    if spike_var is None:
        if mode in ("exact", "linear"):
            raise SpecError(
                f"spike_time {mode!r} needs a condition of the form 'state > threshold'",
                path,
                model.lines.get("spike_time") or model.lines.get("spike"),
            )
        return DT
    x, threshold = spike_var
    distance = analysis.spike_distance(model.spike_condition)
    ode = next((u for u in model.dynamics if u.target == x and u.ode), None)
    exact = (
        ode is not None
        and methods.get(str(x)) == "exact"
        and sum(1 for u in model.dynamics if methods.get(str(u.target)) == "exact") == 1
    )
    if mode == "exact" and not exact:
        raise SpecError(
            f"spike_time 'exact' needs d{x}/dt to be linear and solved with method 'exact'",
            path,
            model.lines.get("spike_time"),
        )
    if mode in ("auto", "exact") and exact:
        return DT - analysis.exact_time_since_crossing(ode.expr, x, threshold, distance)
    # linear interpolation between the values before and after the update
    return DT - h * distance / (x - START)
