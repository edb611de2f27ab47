"""The symbolic model: a checked spec with every expression in SymPy.

:func:`build_model` turns a :class:`~neurogen.spec.NeuronSpec` into a :class:`Model`.
Each expression is parsed with exactly the names that make sense where it appears
(an ODE cannot see ``output``; a rate cannot see states), and named expressions are
substituted, so later stages only see parameters, states and the step's inputs.
"""

from dataclasses import dataclass, field

import sympy as sp

from .errors import SpecError
from .symbolic import FUNCTIONS, parse_distribution, parse_expression

J, DT, OUTPUT, SPIKES = sp.symbols("J dt output spikes", real=True)

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


@dataclass
class Model:
    name: str
    module: str
    source_path: str
    doc: str
    references: list
    binds: str
    negative: bool
    parameters: list  # spec.Parameter
    states: list  # (name, symbol, initial) with initial a number or (cls, kwargs)
    symbols: dict
    input: sp.Expr = None
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
    def has_amplitude(self):
        return any(p.name == "amplitude" for p in self.parameters)


def build_model(spec):
    """Parse every expression of ``spec`` and check how names are used."""
    path = spec.path
    for name, _ in [(p.name, p) for p in spec.parameters] + [(s.name, s) for s in spec.states]:
        if name in FUNCTIONS:
            raise SpecError(f"name {name!r} shadows the function {name}()", path, spec.lines.key("parameters", name) or spec.lines.key("state", name))
    if spec.binds and spec.binds.split(".")[0] not in BINDABLE_PACKAGES:
        raise SpecError(
            f"binds may only name classes in {', '.join(BINDABLE_PACKAGES)}, got {spec.binds!r}",
            path,
            spec.lines.key("neuron", "binds"),
        )

    params = {p.name: sp.Symbol(p.name, real=True) for p in spec.parameters}
    states = {s.name: sp.Symbol(s.name, real=True) for s in spec.states}
    base = {**params, **states, "J": J}

    def parse(text, names, boolean=False):
        return parse_expression(text, names, path, boolean=boolean)

    # named expressions see parameters, states, J and earlier expressions
    expressions = {}
    for name, text in spec.expressions:
        expressions[name] = parse(text, {**base, **expressions})
    scope = {**base, **expressions}

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
        negative=spec.negative,
        parameters=spec.parameters,
        states=model_states,
        symbols={**params, **states},
    )

    if spec.input is not None:
        model.input = parse(spec.input, scope)

    def updates(equations, names, section):
        result = []
        for eq in equations:
            if eq.target not in states:
                raise SpecError(
                    f"{section} assigns to {eq.target!r}, which is not a declared state",
                    path,
                    eq.rhs.line,
                )
            result.append(
                Update(states[eq.target], parse(eq.rhs, names), eq.ode, eq.method, eq.rhs.line)
            )
        return result

    model.dynamics = updates(spec.dynamics, scope, "[dynamics]")
    _check_unique(model.dynamics, path, "[dynamics]")

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
        elif "amplitude" in params:
            model.spike_output = params["amplitude"] / DT * SPIKES
        else:
            model.spike_output = SPIKES / DT
    else:
        model.output = parse(spec.output, {**scope, "dt": DT})

    late = {**scope, "output": OUTPUT, "dt": DT}
    if spike is not None:
        late["spikes"] = SPIKES
    model.after_output = updates(spec.after_output, late, "[after_output]")
    _check_unique(model.after_output, path, "[after_output]")
    model.after_reset = updates(spec.after_reset, late, "[after_output] reset")
    if spec.rate is not None:
        model.rate = parse(spec.rate, {**params, "J": J})
    model.lines = {
        "spike": spike.line if spike else None,
        "spike_time": spike.spike_time_line if spike else None,
        "refractory": spec.lines.key("spike", "refractory") if spike else None,
    }
    return model


def _check_unique(updates, path, section):
    seen = set()
    for u in updates:
        if u.target in seen:
            raise SpecError(f"{section} updates {u.target} twice", path, u.line)
        seen.add(u.target)
