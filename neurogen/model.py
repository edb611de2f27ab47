"""The symbolic model: a checked spec with every expression in SymPy.

:func:`build_model` turns a :class:`~neurogen.spec.NeuronSpec` into a :class:`Model`.
Each expression is parsed with exactly the names that make sense where it appears
(an ODE cannot see ``output``; a rate cannot see states), and named expressions are
substituted, so later stages only see parameters, states and the step's inputs.
"""

from dataclasses import dataclass, field

import sympy as sp

from .errors import SpecError
from .spec import TRAINING_DEFAULTS, check_name
from .symbolic import XI, RandomDraw, parse_distribution, parse_expression
from .symbols import DT, OUTPUT, SPIKES, J, representative_value  # noqa: F401 (re-exported)

#: Classes a spec may bind: only these packages are imported by the compiler.
BINDABLE_PACKAGES = ("nengo", "nengo_extras", "nengo_dl")


@dataclass
class Update:
    """``target`` gets ``expr``: an ODE right-hand side (``ode=True``) or a value."""

    target: sp.Symbol
    expr: sp.Expr
    ode: bool
    method: str
    line: int
    local: bool = False  # an assignment to a step-local name rather than a state


@dataclass
class Model:
    name: str
    module: str
    source_path: str
    doc: str
    references: list
    binds: str
    also_binds: list
    negative: bool
    parameters: list  # spec.Parameter
    states: list  # (name, symbol, initial) with initial a number or (cls, kwargs)
    symbols: dict
    input: sp.Expr = None
    step_values: list = field(default_factory=list)  # (symbol, expr) of named expressions
    dynamics: list = field(default_factory=list)
    substeps: int = None  # sub-steps per simulator step ([dynamics] substeps)
    max_step: float = None  # longest sub-step in seconds ([dynamics] max_step)
    spike_condition: sp.Basic = None
    spike_count: sp.Expr = None
    spike_output: sp.Expr = None
    clamps: list = field(default_factory=list)  # (symbol, low, high)
    resets: list = field(default_factory=list)  # Update
    refractory_period: sp.Expr = None
    refractory_state: sp.Symbol = None
    spike_time: str = "auto"
    output: sp.Expr = None
    after_output: list = field(default_factory=list)
    after_reset: list = field(default_factory=list)
    rate: sp.Expr = None
    rate_table: dict = None
    rate_threshold: sp.Expr = None
    training: dict = None
    rate_derived: bool = False
    lines: dict = field(default_factory=dict)

    @property
    def spiking(self):
        return self.spike_condition is not None or self.spike_count is not None

    @property
    def substepped(self):
        """True when each simulator step is integrated in sub-steps."""
        return self.substeps is not None or self.max_step is not None

    def sub_step(self, dt):
        """The length of one (sub-)step when the simulator steps by ``dt``."""
        if not self.substepped:
            return dt
        from .runtime import substep_count

        return dt / substep_count(dt, self.max_step or float("inf"), self.substeps or 1)

    def dt_limit(self, limit):
        """The largest simulator ``dt`` whose sub-steps stay within ``limit`` (a number):
        with ``max_step <= limit`` any ``dt``, else ``limit`` times the fixed sub-steps."""
        if not self.substepped:
            return limit
        if self.max_step is not None and self.max_step <= limit:
            return float("inf")
        return limit * (self.substeps or 1)

    @property
    def param_symbols(self):
        return [self.symbols[p.name] for p in self.parameters]

    @property
    def state_symbols(self):
        return [s for _, s, _ in self.states]

    @property
    def bound_classes(self):
        return ([self.binds] if self.binds else []) + list(self.also_binds)


def build_model(spec):
    """Parse every expression of ``spec`` and check how names are used."""
    _check_binds(spec)
    names = _Names(spec)
    scope, step_values = _named_expressions(names)
    model = Model(
        name=spec.name,
        module=spec.module_name,
        source_path=str(spec.path),
        doc=spec.doc,
        references=spec.references,
        binds=spec.binds,
        also_binds=spec.also_binds,
        negative=spec.negative,
        parameters=spec.parameters,
        states=[(s.name, names.states[s.name], names.initial(s)) for s in spec.states],
        symbols={**names.params, **names.states},
        step_values=step_values,
        substeps=spec.substeps,
        max_step=spec.max_step,
    )
    if spec.input is not None:  # computed first: it cannot read step values
        step_names = {str(symbol) for symbol, _ in step_values}
        model.input = names.parse(spec.input, {k: v for k, v in scope.items() if k not in step_names})
    model.dynamics = names.updates(spec.dynamics, {**scope, "dt": DT}, "[dynamics]", locals_allowed=True)
    scope.update({str(u.target): u.target for u in model.dynamics if u.local})
    if spec.spike is not None:
        _spike_rule(model, spec.spike, names, scope)
    else:
        model.output = names.parse(spec.output, {**scope, "dt": DT})
    _after_output(model, spec, names, scope)
    return model


def _check_binds(spec):
    for key, bound in [("binds", spec.binds)] + [("also_binds", c) for c in spec.also_binds]:
        if bound and bound.split(".")[0] not in BINDABLE_PACKAGES:
            raise SpecError(
                f"{key} may only name classes in {', '.join(BINDABLE_PACKAGES)}, got {bound!r}",
                spec.path,
                spec.lines.key("neuron", key),
            )


class _Names:
    """A spec's parameter and state symbols, and parsing within a given scope."""

    def __init__(self, spec):
        self.spec, self.path = spec, spec.path
        self.params = {p.name: sp.Symbol(p.name, real=True) for p in spec.parameters}
        self.states = {s.name: sp.Symbol(s.name, real=True) for s in spec.states}

    def parse(self, text, names, boolean=False):
        return parse_expression(text, names, self.path, boolean=boolean)

    def initial(self, state):
        """A state's initial value: a number or ``(distribution, kwargs)``."""
        if isinstance(state.initial, (int, float)):
            return state.initial
        return parse_distribution(state.initial, self.path)

    def updates(self, equations, names, section, locals_allowed=False):
        """Parse update lines; assignments to new names define step-local values."""
        path, result = self.path, []
        for eq in equations:
            if eq.target in self.states:
                target = self.states[eq.target]
            elif locals_allowed and not eq.ode:
                check_name(eq.target, "local value", eq.rhs.line, path)
                if eq.target in names:
                    raise SpecError(f"{section} redefines {eq.target!r}", path, eq.rhs.line)
                target = sp.Symbol(eq.target, real=True)
            else:
                raise SpecError(
                    f"{section} assigns to {eq.target!r}, which is not a declared state",
                    path,
                    eq.rhs.line,
                )
            scope = {"xi": XI, **names} if eq.ode else names  # white noise: in ODEs only
            update = Update(target, self.parse(eq.rhs, scope), eq.ode, eq.method, eq.rhs.line)
            update.local = eq.target not in self.states
            if update.local:
                names[eq.target] = target
            result.append(update)
        _check_unique(result, path, section)
        return result


def _named_expressions(names):
    """``(scope, step_values)``.  Named expressions see parameters, states, J and
    earlier expressions.  Those that read a state are substituted where used (so
    they see its current value); the others become values computed once per step,
    after the input."""
    base = {**names.params, **names.states, "J": J}
    expressions, step_values = {}, []
    for name, text in names.spec.expressions:
        value = names.parse(text, {**base, **expressions})
        if value.has(*names.states.values()):
            expressions[name] = value
        else:
            expressions[name] = sp.Symbol(name, real=True)
            step_values.append((expressions[name], value))
    return {**base, **expressions}, step_values


def _spike_rule(model, spike, names, scope):
    """[spike]: condition or count, resets, clamps, refractoriness, output."""
    path, params, states = names.path, names.params, names.states
    if spike.condition is not None:
        model.spike_condition = names.parse(spike.condition, {**scope, "dt": DT}, boolean=True)
    else:
        model.spike_count = names.parse(spike.count, scope)
    model.resets = names.updates(spike.reset, {**scope, "spikes": SPIKES, "dt": DT}, "[spike] reset")
    for c in spike.clamp:
        if c.state not in states:
            raise SpecError(f"clamp of {c.state!r}, which is not a declared state", path, c.line)
        low = names.parse(c.low, scope) if c.low else None
        high = names.parse(c.high, scope) if c.high else None
        model.clamps.append((states[c.state], low, high))
    if spike.refractory_state is not None:
        if spike.refractory_state not in states:
            raise SpecError(
                f"refractory state {spike.refractory_state!r} is not a declared state",
                path,
                names.spec.lines.key("spike", "refractory"),
            )
        model.refractory_state = states[spike.refractory_state]
        model.refractory_period = names.parse(spike.refractory_period, params)
    model.spike_time = spike.spike_time
    if spike.output is not None:
        model.spike_output = names.parse(spike.output, {**params, "spikes": SPIKES, "dt": DT})
    elif "amplitude" in params:  # spikes * (amplitude / dt), as nengo writes it
        model.spike_output = sp.Mul(SPIKES, params["amplitude"] / DT, evaluate=False)
    else:
        model.spike_output = SPIKES / DT


def _after_output(model, spec, names, scope):
    """[after_output], [rate] and [training], and the lines later stages cite."""
    spike, params = spec.spike, names.params
    late = {**scope, "output": OUTPUT, "dt": DT}
    if spike is not None:
        late["spikes"] = SPIKES
    model.after_output = names.updates(spec.after_output, late, "[after_output]", locals_allowed=True)
    model.after_reset = names.updates(spec.after_reset, late, "[after_output] reset")
    if spec.rate is not None:
        model.rate = _deterministic(names.parse(spec.rate, {**params, "J": J}), "[rate] rate", spec.rate, names.path)
    model.rate_table = spec.rate_table
    if spec.rate_threshold is not None:
        threshold = names.parse(spec.rate_threshold, params)
        model.rate_threshold = _deterministic(threshold, "[rate] threshold", spec.rate_threshold, names.path)
    if model.spiking:
        model.training = spec.training or dict(TRAINING_DEFAULTS)
    model.lines = {
        "spike": spike.line if spike else None,
        "spike_time": spike.spike_time_line if spike else None,
        "refractory": spec.lines.key("spike", "refractory") if spike else None,
        "condition": spike.condition.line if spike and spike.condition is not None else None,
        "training": spec.lines.key("training", "mode") if spec.training else None,
        "substeps": spec.lines.keys.get(("dynamics", "substeps")) or spec.lines.key("dynamics", "max_step"),
    }


def _deterministic(expr, where, text, path):
    """``expr``, refused where it draws random numbers (a rate is a mean)."""
    if expr.has(RandomDraw):
        raise SpecError(
            f"{where} cannot draw random numbers (rand(), randn()): it is the mean rate; "
            "leave it out to tabulate the mean rate by simulation",
            path,
            getattr(text, "line", None),
        )
    return expr


def _check_unique(updates, path, section):
    """Each state has at most one ODE per block."""
    seen = set()
    for u in updates:
        if u.ode and u.target in seen:
            raise SpecError(f"{section} integrates {u.target} twice", path, u.line)
        if u.ode:
            seen.add(u.target)
