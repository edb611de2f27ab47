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
from .cse import eliminate
from . import noise
from .diagnostics import Sampler
from .methods import Context, choose, coupled_groups
from .symbols import DT, J

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
    _block(out, model.dynamics, Context(h, bounds, params, eigenvalues=eigenvalues), path, chosen, "integrate the dynamics")
    methods = {name: method for name, (method, _) in chosen.items()}

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

    _block(out, model.after_output, Context(DT, bounds, params, eigenvalues=eigenvalues), path, chosen, "updates that see this step's output")
    out.extend(_masked(model.after_reset, "reset after the update"))
    methods = {name: method for name, (method, _) in chosen.items()}
    stability = analysis.stability_limits(model.dynamics + model.after_output, methods, model.state_symbols)
    reasons = {name: reason for name, (_, reason) in chosen.items()}
    statements = eliminate(_prune(noise.extract_draws(out), path))  # repeated subexpressions computed once
    return StepProgram(tuple(statements), methods, tuple(stability), reasons)


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
