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
    SPIKE_TOTAL,
    SPIKED,
    SUB_DT,
    Assign,
    Guarded,
    MaskedAssign,
    Output,
    Spike,
    SpikeCount,
    StepProgram,
    Store,
    SubstepLoop,
    Update,
    substitute,
    temporary,
)
from .cse import eliminate
from . import noise
from .diagnostics import Sampler
from .methods import Context, choose, coupled_groups
from .symbolic import Crosses
from .symbols import DT, SPIKES, J

DELTA_T = temporary("delta_t")  # the part of the step outside the refractory period
T_SPIKE = temporary("t_spike")  # when in the step the neuron spiked
START = temporary("start")  # the spiking state before the update (linear spike time)


def integrate(odes, ctx, path, chosen):
    """Statements advancing a run of ODEs over ``ctx.h``: each coupled group with
    one method (see :mod:`neurogen.methods`); all read the run's start values.
    Records ``state name -> (method, reason)`` in ``chosen``."""
    helpers, values = [], {}
    split = [noise.split(u, path) for u in odes]  # white noise apart from the drift
    odes, diffusion = [d for d, _ in split], {d.target: g for d, g in split if g is not None}
    for group in coupled_groups(odes):
        for method, members, reason in choose(group, ctx, path):
            for u in members:
                chosen[str(u.target)] = (method.name, reason)
            stages, new = method.integrate(members, ctx)
            helpers += stages
            values.update({x: (op, value) for x, op, value in new})
            for u in members:
                if u.target in diffusion:
                    op, value = values[u.target]
                    dW = noise.increment(u, diffusion[u.target], method.name, len(group), ctx.h)
                    values[u.target] = (op, sp.Add(value, dW, evaluate=False))
    return helpers, [(u.target, *values[u.target]) for u in odes]


def _block(out, updates, ctx, path, chosen, comment):
    """Emit a block of update lines in order; runs of ODE lines integrate together."""
    run = []

    def flush():
        if run:
            helpers, values = integrate(run, ctx, path, chosen)
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
    out, chosen = [], {}

    if model.input is not None:
        out.append(Assign(J, model.input, "effective input current"))
    for symbol, value in model.step_values:
        out.append(Assign(symbol, value))

    loop_start = len(out)  # with sub-steps, what follows (to the output) is the loop body
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
    params = frozenset(model.param_symbols)
    eigenvalues = Sampler(model)  # lazy: simulates only if `auto` needs a stability test
    at = model.sub_step(Context.dt)  # the step the methods run at, at nengo's default dt
    _block(out, model.dynamics, Context(h, bounds, params, dt=at, eigenvalues=eigenvalues), path, chosen, "integrate the dynamics")
    methods = {name: method for name, (method, _) in chosen.items()}

    if model.spiking:
        _crossings(out, model, start_index)
        _spikes(out, model, path)
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
        if model.substepped:
            _substep_loop(out, model, loop_start, path)
            out.append(Output(model.spike_output))
    elif model.substepped:
        _clamps(out, model)
        _substep_loop(out, model, loop_start, path)
        out.append(Output(model.output))
    else:
        out.append(Output(model.output))
        _clamps(out, model)

    _block(out, model.after_output, Context(DT, bounds, params, eigenvalues=eigenvalues), path, chosen, "updates that see this step's output")
    out.extend(_masked(model.after_reset, "reset after the update"))
    methods = {name: method for name, (method, _) in chosen.items()}
    stability = analysis.stability_limits(model.dynamics + model.after_output, methods, model.state_symbols)
    reasons = {name: reason for name, (_, reason) in chosen.items()}
    statements = eliminate(_prune(noise.extract_draws(out), path))  # repeated subexpressions computed once
    return StepProgram(tuple(statements), methods, tuple(stability), reasons)


def _spikes(out, model, path):
    """Spikes and output: a condition (with its distance to threshold) or a count.
    With sub-steps the output comes after the loop (see :func:`_substep_loop`)."""
    if model.spike_condition is not None:
        distance = analysis.spike_distance(model.spike_condition)
        if distance is None and (model.training or {}).get("mode") == "surrogate":
            raise SpecError(
                "[training] mode = \"surrogate\" needs a spike condition with a distance to "
                "threshold: 'x > threshold', 'x >= threshold' or 'crosses(x, threshold)' "
                "(not a combination with and/or)",
                path,
                model.lines.get("condition") or model.lines.get("spike"),
            )
        out.append(Spike(SPIKED, _lowered_condition(model), distance))
    else:
        count = model.spike_count
        proxy = count.args[0] if isinstance(count, sp.floor) else count
        out.append(SpikeCount(SPIKED, count, proxy))
    if not model.substepped:
        out.append(Output(model.spike_output))


def _crossing_nodes(condition):
    """The ``crosses(x, threshold)`` parts of a spike condition, in a stable order."""
    found = [n for n in sp.preorder_traversal(condition) if isinstance(n, Crosses)]
    return list(dict.fromkeys(found))


def _before(i, node):
    x = node.args[0]
    return temporary(f"{x}_before" if x.is_Symbol else f"crossing{i}_before")


def _crossings(out, model, start_index):
    """Store ``x - threshold`` before the update for each ``crosses(x, threshold)``."""
    nodes = _crossing_nodes(model.spike_condition)
    for i, node in reversed(list(enumerate(nodes))):
        x, threshold = node.args
        value = x if threshold == 0 else analysis.spike_distance(node)
        out.insert(start_index, Assign(_before(i, node), value, "distance to threshold before the update"))


def _lowered_condition(model):
    """The spike condition with each ``crosses(x, threshold)`` written out:
    ``x > threshold`` now, ``x - threshold <= 0`` before the update."""
    condition = model.spike_condition
    nodes = _crossing_nodes(condition)
    if not nodes:
        return condition
    lowered = {
        node: sp.And(sp.StrictGreaterThan(*node.args, evaluate=False), sp.LessThan(_before(i, node), 0, evaluate=False))
        for i, node in enumerate(nodes)
    }
    return condition.xreplace(lowered)


def _substep_loop(out, model, loop_start, path):
    """Move ``out[loop_start:]`` into a :class:`SubstepLoop` (its ``dt`` becomes the
    sub-step ``_h``), then ``spikes`` = the sub-steps' spike count."""
    body = [substitute(s, {DT: SUB_DT}) for s in out[loop_start:]]
    del out[loop_start:]
    written = set().union(*(s.writes() for s in body))
    later = set().union(*(u.expr.free_symbols for u in model.after_output + model.after_reset))
    local = sorted(str(x) for x in (written & later) - set(model.state_symbols) - {SPIKES, SPIKED})
    if local:
        raise SpecError(
            f"with sub-steps, [after_output] cannot read {', '.join(local)} (a value of one sub-step)",
            path,
            model.lines.get("substeps"),
        )
    carried = tuple(x for x in model.state_symbols if x in written)
    out.append(SubstepLoop(model.substeps or 1, model.max_step, tuple(body), carried))
    if model.spiking:
        out.append(Assign(SPIKES, SPIKE_TOTAL, "spikes summed over the sub-steps"))
        out.append(Assign(SPIKED, sp.StrictGreaterThan(SPIKE_TOTAL, 0, evaluate=False)))


def _masked(resets, comment):
    """Resets for the neurons that spiked; all read the values before any is written.

    A reset is written after every other reset that reads its state; only where
    resets read each other in a cycle do values go through ``_``-temporaries."""
    out, pending = [], list(resets)
    while pending:
        free = next((u for u in pending if not any(v is not u and v.expr.has(u.target) for v in pending)), None)
        if free is None:  # a cycle: compute the rest first, then write them
            for u in pending:
                out.append(Guarded(SPIKED, temporary(f"{u.target}_next"), u.expr, comment))
                comment = ""
            for u in pending:
                out.append(MaskedAssign(SPIKED, u.target, temporary(f"{u.target}_next")))
            return out
        out.append(MaskedAssign(SPIKED, free.target, free.expr, comment))
        comment = ""
        pending.remove(free)
    return out


def _prune(statements, path, used=None):
    """Drop local values that no later statement reads (an unused value the spec
    defined itself is an error: most likely a misspelled state)."""
    kept, used = [], set(used or ())
    for s in reversed(statements):
        if isinstance(s, SubstepLoop):  # the body runs again: its own reads count too
            body = _prune(s.body, path, used | s.reads() | set(s.carried) | {SPIKES})
            s = SubstepLoop(s.substeps, s.max_step, tuple(_eliminate_inner(body)), s.carried, s.comment)
            used |= s.reads()
            kept.append(s)
            continue
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


def _eliminate_inner(body):
    """Shared subexpressions of a loop body, named ``_sN`` (apart from the outer ``_cN``)."""
    body = eliminate(body)
    names = {}
    for st in body:
        if isinstance(st, Assign) and st.target.name.startswith("_c"):
            names[st.target] = temporary("s" + st.target.name[2:])
    return [substitute(st, names) for st in body] if names else body


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
    if ode is not None and noise.has_noise(ode.expr):
        if mode in ("exact", "linear"):
            raise SpecError(f"spike_time {mode!r} needs a deterministic d{x}/dt (it has noise)", path, model.lines.get("spike_time"))
        return DT  # a noisy path has no interpolated crossing: the end of the step
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
