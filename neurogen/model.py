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
from .symbolic import parse_distribution, parse_expression
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
    path = spec.path
    for key, bound in [("binds", spec.binds)] + [("also_binds", c) for c in spec.also_binds]:
        if bound and bound.split(".")[0] not in BINDABLE_PACKAGES:
            raise SpecError(
                f"{key} may only name classes in {', '.join(BINDABLE_PACKAGES)}, got {bound!r}",
                path,
                spec.lines.key("neuron", key),
            )

    params = {p.name: sp.Symbol(p.name, real=True) for p in spec.parameters}
    states = {s.name: sp.Symbol(s.name, real=True) for s in spec.states}
    base = {**params, **states, "J": J}

    def parse(text, names, boolean=False):
        return parse_expression(text, names, path, boolean=boolean)

    # Named expressions see parameters, states, J and earlier expressions.  Those
    # that read a state are substituted where used (so they see its current value);
    # the others become values computed once per step, after the input.
    expressions, step_values = {}, []
    for name, text in spec.expressions:
        value = parse(text, {**base, **expressions})
        if value.has(*states.values()):
            expressions[name] = value
        else:
            expressions[name] = sp.Symbol(name, real=True)
            step_values.append((expressions[name], value))
    scope = {**base, **expressions}
    step_names = {str(symbol) for symbol, _ in step_values}

    model_states = []
    for s in spec.states:
        if isinstance(s.initial, (int, float)):
            initial = s.initial
        else:
            initial = parse_distribution(s.initial, path)
        model_states.append((s.name, states[s.name], initial))

    model = Model(
        name=spec.name,
        module=spec.module_name,
        source_path=str(path),
        doc=spec.doc,
        references=spec.references,
        binds=spec.binds,
        also_binds=spec.also_binds,
        negative=spec.negative,
        parameters=spec.parameters,
        states=model_states,
        symbols={**params, **states},
        step_values=step_values,
    )

    if spec.input is not None:  # computed first: it cannot read step values
        model.input = parse(spec.input, {k: v for k, v in scope.items() if k not in step_names})

    def updates(equations, names, section, locals_allowed=False):
        """Parse update lines; assignments to new names define step-local values."""
        result = []
        for eq in equations:
            if eq.target in states:
                target = states[eq.target]
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
            update = Update(target, parse(eq.rhs, names), eq.ode, eq.method, eq.rhs.line)
            update.local = eq.target not in states
            if update.local:
                names[eq.target] = target
            result.append(update)
        _check_unique(result, path, section)
        return result

    model.dynamics = updates(spec.dynamics, {**scope, "dt": DT}, "[dynamics]", locals_allowed=True)
    scope.update({str(u.target): u.target for u in model.dynamics if u.local})

    spike = spec.spike
    if spike is not None:
        if spike.condition is not None:
            model.spike_condition = parse(spike.condition, scope, boolean=True)
        else:
            model.spike_count = parse(spike.count, scope)
        after_spike = {**scope, "spikes": SPIKES, "dt": DT}
        model.resets = updates(spike.reset, after_spike, "[spike] reset")
        for c in spike.clamp:
            if c.state not in states:
                raise SpecError(f"clamp of {c.state!r}, which is not a declared state", path, c.line)
            low = parse(c.low, scope) if c.low else None
            high = parse(c.high, scope) if c.high else None
            model.clamps.append((states[c.state], low, high))
        if spike.refractory_state is not None:
            if spike.refractory_state not in states:
                raise SpecError(
                    f"refractory state {spike.refractory_state!r} is not a declared state",
                    path,
                    spec.lines.key("spike", "refractory"),
                )
            model.refractory_state = states[spike.refractory_state]
            model.refractory_period = parse(spike.refractory_period, params)
        model.spike_time = spike.spike_time
        if spike.output is not None:
            model.spike_output = parse(spike.output, {**params, "spikes": SPIKES, "dt": DT})
        elif "amplitude" in params:  # spikes * (amplitude / dt), as nengo writes it
            model.spike_output = sp.Mul(SPIKES, params["amplitude"] / DT, evaluate=False)
        else:
            model.spike_output = SPIKES / DT
    else:
        model.output = parse(spec.output, {**scope, "dt": DT})

    late = {**scope, "output": OUTPUT, "dt": DT}
    if spike is not None:
        late["spikes"] = SPIKES
    model.after_output = updates(spec.after_output, late, "[after_output]", locals_allowed=True)
    model.after_reset = updates(spec.after_reset, late, "[after_output] reset")
    if spec.rate is not None:
        model.rate = parse(spec.rate, {**params, "J": J})
    model.rate_table = spec.rate_table
    if spec.rate_threshold is not None:
        model.rate_threshold = parse(spec.rate_threshold, params)
    if model.spiking:
        model.training = spec.training or dict(TRAINING_DEFAULTS)
    model.lines = {
        "spike": spike.line if spike else None,
        "spike_time": spike.spike_time_line if spike else None,
        "refractory": spec.lines.key("spike", "refractory") if spike else None,
    }
    return model


def _check_unique(updates, path, section):
    """Each state has at most one ODE per block."""
    seen = set()
    for u in updates:
        if u.ode and u.target in seen:
            raise SpecError(f"{section} integrates {u.target} twice", path, u.line)
        if u.ode:
            seen.add(u.target)
