"""Turn a :class:`~neurogen.model.Model` into an :class:`UpdateProgram`.

The program is the one target-neutral description of a simulation step: an ordered
list of assignments.  Printers render it as NumPy (nengo) and TensorFlow (NengoDL).

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

from dataclasses import dataclass, field

import sympy as sp

from . import analysis
from .errors import SpecError
from .symbols import DT, OUTPUT, SPIKES, J

DELTA_T = sp.Symbol("delta_t", real=True)
T_SPIKE = sp.Symbol("t_spike", real=True)
SPIKED = sp.Symbol("spiked")  # boolean mask of the neurons that spiked


@dataclass
class Statement:
    """``target = expr``.  ``kind``: ``local``, ``state`` (written back), or ``output``."""

    target: sp.Symbol
    expr: sp.Basic
    kind: str
    comment: str = ""
    line: int = None  # spec line of a user-defined local value


@dataclass
class UpdateProgram:
    statements: list
    methods: dict = field(default_factory=dict)  # state name -> method used
    stability: list = field(default_factory=list)  # (state, method, max_dt expression)

    def free_parameters(self, model):
        """Parameters the program reads, in declaration order."""
        used = set()
        for s in self.statements:
            used |= s.expr.free_symbols
        return [p for p in model.parameters if model.symbols[p.name] in used]


def _masked(target, value, mask):
    return sp.Piecewise((value, mask), (target, True), evaluate=False)


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
    """New values for a run of ODEs over a step ``h``.

    Returns ``(helpers, new_values)``: local statements (RK4 stages) and a list of
    ``(state, expr)``.  ODEs with the same method are integrated together; each
    group holds the other groups' states fixed over the step.
    """
    odes = updates
    block_states = [u.target for u in odes]
    chosen = {u.target: choose_method(u, block_states, path) for u in odes}
    for u in odes:
        methods[str(u.target)] = chosen[u.target]
    new, helpers = {}, []

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
    if exact:
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
            new[u.target] = value
    for u in odes:
        method = chosen[u.target]
        if method == "euler":  # written as is: x + h*f(x), f as in the spec
            new[u.target] = sp.Add(u.target, sp.Mul(h, u.expr, evaluate=False), evaluate=False)
        elif method == "exponential_euler":
            new[u.target] = analysis.exact_scalar(u.expr, u.target, h, bounds)
    rk4 = [u for u in odes if chosen[u.target] == "rk4"]
    if rk4:
        helpers, values = _rk4([u.target for u in rk4], [u.expr for u in rk4], h)
        new.update(values)
    return helpers, [(u.target, new[u.target]) for u in odes]


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
            _write(out, values, comment)
            run.clear()

    for u in updates:
        if u.ode:
            run.append(u)
            continue
        flush()
        out.append(Statement(u.target, u.expr, "local" if u.local else "state", line=u.line if u.local else None))
    flush()


def _rk4(xs, rhs, h):
    """Classic RK4 stages as local statements; J and other states held fixed."""
    helpers = []

    def stage(k, shift):
        syms = []
        for x, f in zip(xs, rhs):
            sym = sp.Symbol(f"{k}_{x}", real=True)
            value = f.subs({y: y + shift[y] for y in xs}, simultaneous=True) if shift else f
            helpers.append(Statement(sym, value, "local"))
            syms.append(sym)
        return dict(zip(xs, syms))

    k1 = stage("k1", None)
    k2 = stage("k2", {x: h / 2 * k1[x] for x in xs})
    k3 = stage("k3", {x: h / 2 * k2[x] for x in xs})
    k4 = stage("k4", {x: h * k3[x] for x in xs})
    values = {x: x + h / 6 * (k1[x] + 2 * k2[x] + 2 * k3[x] + k4[x]) for x in xs}
    return helpers, values


def _write(statements, values, comment):
    """Assign new state values, through temporaries when they read each other."""
    targets = [x for x, _ in values]
    reads_other = any(
        expr.has(*[t for t in targets[:i]]) for i, (_, expr) in enumerate(values) if i > 0
    )
    if reads_other:
        temps = []
        for x, expr in values:
            tmp = sp.Symbol(f"{x}_next", real=True)
            statements.append(Statement(tmp, expr, "local", comment))
            temps.append((x, tmp))
            comment = ""
        values = temps
        comment = ""
    for x, expr in values:
        if expr != x:
            statements.append(Statement(x, expr, "state", comment))
            comment = ""


def discretize(model, path=None):
    """Build the :class:`UpdateProgram` of one simulation step."""
    path = path or model.source_path
    out, methods = [], {}

    if model.input is not None:
        out.append(Statement(J, model.input, "local", "effective input current"))
    for symbol, value in model.step_values:
        out.append(Statement(symbol, value, "local"))

    h = DT
    if model.refractory_state is not None:
        rt = model.refractory_state
        out.append(Statement(rt, rt - DT, "state", "count down the refractory period"))
        out.append(
            Statement(DELTA_T, sp.Min(sp.Max(DT - rt, 0), DT), "local", "time left to integrate")
        )
        h = DELTA_T

    spike_var = None
    if model.spike_condition is not None:
        changing = [u.target for u in model.dynamics]
        spike_var = analysis.threshold_of(model.spike_condition, model.state_symbols, changing)
    start, start_index = None, len(out)
    if spike_var is not None:
        start = sp.Symbol(f"{spike_var[0]}_start", real=True)

    bounds = {model.symbols[p.name]: (p.low, p.high, p.low_open, p.value) for p in model.parameters}
    _block(out, model.dynamics, h, path, methods, "integrate the dynamics", bounds)

    if model.spiking:
        if model.spike_condition is not None:
            out.append(Statement(SPIKED, model.spike_condition, "local", "spikes this step"))
            indicator = sp.Piecewise((1, SPIKED), (0, True), evaluate=False)
            out.append(Statement(SPIKES, indicator, "local"))
            out.append(Statement(OUTPUT, model.spike_output, "output"))
        else:
            out.append(Statement(SPIKES, model.spike_count, "local", "spikes this step"))
            out.append(Statement(OUTPUT, model.spike_output, "output"))
            out.append(Statement(SPIKED, sp.Gt(SPIKES, 0), "local"))
        mask = SPIKED
        if model.refractory_state is not None:
            t_spike = _spike_time(model, spike_var, start, h, methods, path)
            if start is not None and t_spike.has(start):
                saved = Statement(start, spike_var[0], "local", "value before the update")
                out.insert(start_index, saved)
            out.append(Statement(T_SPIKE, t_spike, "local", "spike time within the step"))
        _clamps(out, model)
        _write(out, [(u.target, _masked(u.target, u.expr, mask)) for u in model.resets], "reset")
        if model.refractory_state is not None:
            rt = model.refractory_state
            value = _masked(rt, model.refractory_period + T_SPIKE, mask)
            out.append(Statement(rt, value, "state", "refractory period from the spike time"))
    else:
        out.append(Statement(OUTPUT, model.output, "output"))
        _clamps(out, model)

    _block(out, model.after_output, DT, path, methods, "updates that see this step's output", bounds)
    if model.after_reset:
        mask = SPIKED
        _write(out, [(u.target, _masked(u.target, u.expr, mask)) for u in model.after_reset], "reset after the update")
    stability = analysis.stability_limits(
        model.dynamics + model.after_output, methods, model.state_symbols
    )
    return UpdateProgram(_prune(out, path), methods, stability)


def _prune(statements, path):
    """Drop local values that no later statement reads (an unused value the spec
    defined itself is an error: most likely a misspelled state)."""
    kept, used = [], set()
    for s in reversed(statements):
        if s.kind == "local" and s.target not in used:
            if s.line is not None:
                raise SpecError(
                    f"{s.target!s} is assigned but never used: not a declared state (misspelled?)",
                    path,
                    s.line,
                )
            continue
        used |= s.expr.free_symbols
        kept.append(s)
    return kept[::-1]


def _clamps(out, model):
    for x, low, high in model.clamps:
        value = x
        if low is not None:
            value = sp.Max(value, low)
        if high is not None:
            value = sp.Min(value, high)
        out.append(Statement(x, value, "state", "clamp"))


def _spike_time(model, spike_var, start, h, methods, path):
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
        return DT - analysis.exact_time_since_crossing(ode.expr, x, threshold)
    # linear interpolation between the values before and after the update
    return DT - h * (x - threshold) / (x - start)
