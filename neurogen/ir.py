"""The step IR: one simulation step as a list of typed statements.

:func:`neurogen.discretize.discretize` produces a :class:`StepProgram`; the NumPy and
TensorFlow backends (:mod:`neurogen.codegen`) print each statement kind directly, so
no stage lowers a construct and another recovers it.  Temporaries the compiler
introduces are ``_``-prefixed (see :func:`temporary`): a spec's names never start
with ``_``, so they cannot collide.

Statement kinds:

``Assign(target, value)``            a step-local value (per neuron or scalar)
``Store(target, value)``             a state takes a new value
``Update(target, op, value)``        ``state += value`` or ``state -= value``
``Spike(mask, condition, distance)`` spikes from a condition; ``distance`` is the
                                     signed distance to threshold (surrogate gradient)
``SpikeCount(mask, count, proxy)``   integer spike counts; ``proxy`` is differentiable
``Output(value)``                    the step's output
``Guarded(mask, target, value)``     a local computed only for the neurons in ``mask``
``MaskedAssign(mask, target, value)`` a state written only for the neurons in ``mask``
``Propagator(phi, gamma, matrix, h)`` the exact propagator of a linear system
``Draw(target, kind)``               a fresh random number per neuron: ``kind`` is
                                     ``"uniform"`` ([0, 1)) or ``"normal"`` (standard)
``SubstepLoop(substeps, max_step, body, carried)``  ``body`` run ``n`` times with the
                                     step ``_h = dt / n``; sums the body's spikes
"""

from dataclasses import dataclass, field

import sympy as sp

from .symbols import DT, OUTPUT, SPIKES, J


def temporary(name, boolean=False):
    """A compiler temporary: ``_`` + name (spec names never start with ``_``)."""
    return sp.Symbol("_" + name) if boolean else sp.Symbol("_" + name, real=True)


#: the boolean mask of the neurons that spiked this step
SPIKED = temporary("spiked", boolean=True)


def _reads(*exprs):
    out = set()
    for e in exprs:
        if e is not None:
            out |= e.free_symbols
    return out


@dataclass(frozen=True)
class Assign:
    target: sp.Symbol
    value: sp.Basic
    comment: str = ""
    line: int = None  # spec line of a user-defined local value

    def reads(self):
        return _reads(self.value)

    def writes(self):
        return {self.target}

    def describe(self):
        return f"{self.target} = {sp.sstr(self.value)}"


@dataclass(frozen=True)
class Store:
    target: sp.Symbol
    value: sp.Basic
    comment: str = ""

    def reads(self):
        return _reads(self.value)

    def writes(self):
        return {self.target}

    def describe(self):
        return f"{self.target} <- {sp.sstr(self.value)}"


@dataclass(frozen=True)
class Update:
    target: sp.Symbol
    op: str  # "+" or "-"
    value: sp.Basic
    comment: str = ""

    def reads(self):
        return _reads(self.value) | {self.target}

    def writes(self):
        return {self.target}

    def describe(self):
        return f"{self.target} <- {self.target} {self.op} {sp.sstr(self.value)}"


@dataclass(frozen=True)
class Spike:
    mask: sp.Symbol
    condition: sp.Basic
    distance: sp.Basic = None  # None: the condition has no single threshold
    comment: str = "spikes this step"

    def reads(self):
        return _reads(self.condition, self.distance)

    def writes(self):
        return {self.mask, SPIKES}

    def describe(self):
        return f"{self.mask} = {sp.sstr(self.condition)}; spikes = where({self.mask}, 1, 0)"


@dataclass(frozen=True)
class SpikeCount:
    mask: sp.Symbol
    count: sp.Basic
    proxy: sp.Basic
    comment: str = "spikes this step"

    def reads(self):
        return _reads(self.count, self.proxy)

    def writes(self):
        return {self.mask, SPIKES}

    def describe(self):
        return f"spikes = {sp.sstr(self.count)}; {self.mask} = spikes > 0"


@dataclass(frozen=True)
class Output:
    value: sp.Basic
    comment: str = ""

    def reads(self):
        return _reads(self.value)

    def writes(self):
        return {OUTPUT}

    def describe(self):
        return f"output = {sp.sstr(self.value)}"


@dataclass(frozen=True)
class Guarded:
    mask: sp.Symbol
    target: sp.Symbol
    value: sp.Basic
    comment: str = ""

    def reads(self):
        return _reads(self.value) | {self.mask}

    def writes(self):
        return {self.target}

    def describe(self):
        return f"{self.target} = {sp.sstr(self.value)}  where {self.mask}"


@dataclass(frozen=True)
class MaskedAssign:
    mask: sp.Symbol
    target: sp.Symbol
    value: sp.Basic
    comment: str = ""

    def reads(self):
        return _reads(self.value) | {self.mask, self.target}

    def writes(self):
        return {self.target}

    def describe(self):
        return f"{self.target} <- {sp.sstr(self.value)}  where {self.mask}"


@dataclass(frozen=True)
class Propagator:
    """``phi, gamma = expm([[A, I], [0, 0]] h)`` blocks, for ``x(h) = phi x + gamma b``;
    ``matrix`` (rows of ``A``) reads parameters only.  Entries are read as
    :meth:`entry` symbols (scalars, or per neuron where ``h`` is)."""

    phi: sp.Symbol
    gamma: sp.Symbol
    matrix: tuple
    h: sp.Basic
    comment: str = "propagator of the coupled linear system"

    def entry(self, which, i, j):
        base = self.phi if which == "phi" else self.gamma
        return sp.Symbol(f"{base}[{i}, {j}]", real=True)

    def reads(self):
        return _reads(self.h, *[e for row in self.matrix for e in row])

    def writes(self):
        k = len(self.matrix)
        return {self.entry(w, i, j) for w in ("phi", "gamma") for i in range(k) for j in range(k)}

    def describe(self):
        rows = [[sp.sstr(e) for e in row] for row in self.matrix]
        return f"{self.phi}, {self.gamma} = expm([[A, I], [0, 0]] * {self.h}) with A = {rows}"


@dataclass(frozen=True)
class Draw:
    """``target``: one random number per neuron, drawn anew each time the statement
    runs (per step, per sub-step inside a loop); see :mod:`neurogen.noise`."""

    target: sp.Symbol
    kind: str  # "uniform" or "normal"
    comment: str = ""

    def reads(self):
        return set()

    def writes(self):
        return {self.target}

    def describe(self):
        return f"{self.target} = random {self.kind}"


@dataclass(frozen=True)
class SubstepLoop:
    """Sub-stepping: ``n = max(substeps, ceil(dt / max_step))`` (``max_step`` None:
    ``n = substeps``), then ``body`` ``n`` times, reading :data:`SUB_DT` (``dt / n``)
    as its step.  The body's ``spikes`` are summed into :data:`SPIKE_TOTAL`.
    ``carried``: the states the body changes, in the neuron's state order (what a
    TensorFlow loop passes from one sub-step to the next, after the total)."""

    substeps: int
    max_step: float
    body: tuple
    carried: tuple
    comment: str = "integrate in sub-steps"

    def reads(self):
        inner = set().union(*(s.reads() for s in self.body))
        return (inner - {SUB_DT, SUBSTEPS, SPIKE_TOTAL}) | {DT}

    def writes(self):
        out = {SUB_DT, SUBSTEPS, SPIKE_TOTAL}
        for s in self.body:
            out |= s.writes()
        return out

    def describe(self):
        n = f"max({self.substeps}, ceil(dt / {self.max_step!r}))" if self.max_step else str(self.substeps)
        inner = "\n".join("    " + line for s in self.body for line in s.describe().splitlines())
        return f"{SUBSTEPS} = {n}; {SUB_DT} = dt / {SUBSTEPS}; repeat {SUBSTEPS} times:\n{inner}\n  spikes = sum over sub-steps"


#: the sub-step count and length, and the spikes summed over the sub-steps
SUBSTEPS = temporary("substeps")
SUB_DT = temporary("h")
SPIKE_TOTAL = temporary("spike_total")


def substitute(statement, mapping):
    """``statement`` with ``mapping`` (symbol -> expression) applied to every
    expression it holds (nested statements and matrices included)."""

    def visit(value):
        if isinstance(value, sp.Basic):
            with sp.evaluate(False):
                return value.xreplace(mapping)
        if isinstance(value, tuple):
            return tuple(visit(v) for v in value)
        if hasattr(value, "__dataclass_fields__"):
            return type(value)(**{k: visit(v) for k, v in value.__dict__.items()})
        return value

    return visit(statement)


def walk(statements):
    """Every statement, those inside sub-step loops included (after their loop)."""
    for s in statements:
        yield s
        if isinstance(s, SubstepLoop):
            yield from walk(s.body)


LOCALS = (Assign, Guarded)


@dataclass(frozen=True)
class StepProgram:
    """One simulation step: statements in order, and what the analysis decided."""

    statements: tuple
    methods: dict = field(default_factory=dict)  # state name -> method used
    stability: tuple = ()  # (state, method, max_dt expression)
    reasons: dict = field(default_factory=dict)  # state name -> why the method was chosen

    def free_parameters(self, model):
        """Parameters the program reads, in declaration order."""
        used = set()
        for s in walk(self.statements):
            used |= s.reads()
        return [p for p in model.parameters if model.symbols[p.name] in used]

    def per_neuron(self, model):
        """Symbols that hold one value per neuron (the others are scalars: parameters,
        ``dt`` and locals computed from them alone)."""
        scalars = set(model.param_symbols) | {DT, SUB_DT, SUBSTEPS}
        arrays = set()
        for s in walk(self.statements):
            if isinstance(s, SubstepLoop):
                arrays.add(SPIKE_TOTAL)
            elif isinstance(s, LOCALS) and s.reads() <= scalars:
                scalars.add(s.target)
            else:
                arrays |= s.writes()
        return (arrays | set(model.state_symbols) | {J}) - scalars
