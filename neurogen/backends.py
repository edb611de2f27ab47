"""Print a :class:`~neurogen.ir.StepProgram` as the body of a NumPy ``step`` (nengo)
or of a TensorFlow ``step`` (NengoDL).

Each statement kind has one printing rule per backend, and both backends print
arithmetic through one shared printer (:mod:`neurogen.printers`), so they perform
the same operations in the same order.  NumPy updates states in place and does
masked work only for the neurons in the mask, as nengo's neurons do
(``voltage[spiked] = 0``); TensorFlow rebinds tensors and selects with ``tf.where``.
"""

import sympy as sp

from .ir import (
    LOCALS,
    SPIKE_TOTAL,
    SUB_DT,
    SUBSTEPS,
    Assign,
    Draw,
    Guarded,
    MaskedAssign,
    Output,
    Propagator,
    Spike,
    SpikeCount,
    Store,
    SubstepLoop,
    Update,
    temporary,
    walk,
)
from .printers import numpy_printer, tensorflow_printer
from .symbols import DT, SPIKES

#: spikes with no gradient: resets are not differentiated through the spike
HELD = temporary("spikes_held")


def numpy_lines(program, model):
    """The NumPy ``step`` body."""
    printer = numpy_printer()
    # parameters may hold one value per neuron, so masked work indexes them too
    per_neuron = program.per_neuron(model)
    arrays = per_neuron | _parameter_locals(program, model)
    guarded = set()  # locals that hold values for the masked neurons only

    def masked(expr, mask):
        """``expr`` evaluated for the neurons in ``mask`` only."""
        names = {s: sp.Symbol(f"{s}[{mask}]", real=True) for s in expr.free_symbols & arrays - guarded}
        with sp.evaluate(False):
            expr = expr.xreplace(names)
        return printer.doprint(expr)

    lines = []
    _numpy_block(program.statements, lines, printer, per_neuron, guarded, masked)
    return lines


def _substep_header(s, dt):
    """Lines defining the sub-step count and length of a :class:`SubstepLoop`."""
    if s.max_step is None:
        count = str(s.substeps)
    else:
        count = f"substep_count({dt}, {s.max_step!r}, {s.substeps})"
    return [f"{SUBSTEPS} = {count}", f"{SUB_DT} = dt/{SUBSTEPS}"]


def _spiking(body):
    return any(isinstance(s, (Spike, SpikeCount)) for s in body)


def _numpy_block(statements, lines, printer, per_neuron, guarded, masked):
    for s in statements:
        if s.comment:
            lines.append(f"# {s.comment}")
        p = printer.doprint
        if isinstance(s, SubstepLoop):  # states change in place; spikes are summed
            lines.extend(_substep_header(s, "dt"))
            inner = []
            _numpy_block(s.body, inner, printer, per_neuron, guarded, masked)
            if _spiking(s.body):
                lines.append(f"{SPIKE_TOTAL} = np.zeros_like(J)")
                inner.append(f"{SPIKE_TOTAL} += spikes")
            lines.append(f"for _ in range({SUBSTEPS}):")
            lines.extend("    " + line for line in inner)
        elif isinstance(s, Assign):
            copy = s.value.is_Symbol and s.value in per_neuron  # states change in place
            lines.append(f"{s.target} = {s.value}.copy()" if copy else f"{s.target} = {p(s.value)}")
        elif isinstance(s, Store):
            lines.append(f"{s.target}[...] = {p(s.value)}")
        elif isinstance(s, Update):
            lines.append(f"{s.target} {s.op}= {p(s.value)}")
        elif isinstance(s, Spike):
            lines.append(f"{s.mask} = {p(s.condition)}")
            lines.append(f"spikes = np.where({s.mask}, 1.0, 0.0)")
        elif isinstance(s, SpikeCount):
            lines.append(f"spikes = {p(s.count)}")
            lines.append(f"{s.mask} = spikes > 0")
        elif isinstance(s, Output):
            lines.append(f"output[...] = {p(s.value)}")
        elif isinstance(s, Guarded):
            lines.append(f"{s.target} = {masked(s.value, s.mask)}")
            guarded.add(s.target)
        elif isinstance(s, MaskedAssign):
            lines.append(f"{s.target}[{s.mask}] = {masked(s.value, s.mask)}")
        elif isinstance(s, Propagator):
            lines.append(f"{s.phi}, {s.gamma} = linear_propagator({_matrix(s.matrix, p)}, {p(s.h)})")
        elif isinstance(s, Draw):  # from the ensemble's rng, which nengo passes to step
            draw = "rng.uniform(size=J.shape)" if s.kind == "uniform" else "rng.standard_normal(J.shape)"
            lines.append(f"{s.target} = {draw}")
        else:  # pragma: no cover - a new statement kind needs a printing rule
            raise TypeError(f"no NumPy printing rule for {type(s).__name__}")


def tensorflow_lines(program, model=None):
    """The NengoDL ``step`` body: every statement rebinds a tensor."""
    lines = []
    _tensorflow_block(program.statements, lines, tensorflow_printer(), _guard(program, model), [0])
    return lines


def _tensorflow_loop(s, lines, printer, guard, draws):
    """A :class:`SubstepLoop` as a function of the carried values, run by
    ``GeneratedBuilder.substep_loop`` (unrolled or a ``tf.while_loop``)."""
    lines.extend(_substep_header(s, "self.dt_value"))
    spiking = _spiking(s.body)
    carried = ([str(SPIKE_TOTAL)] if spiking else []) + [str(x) for x in s.carried]
    names = ", ".join(carried)
    lines.append(f"def _substep({names}):")
    inner = []
    _tensorflow_block(s.body, inner, printer, guard, draws)
    results = ([f"{SPIKE_TOTAL} + spikes"] if spiking else []) + carried[1 if spiking else 0:]
    inner.append(f"return {', '.join(results)}{',' if len(results) == 1 else ''}")
    lines.extend("    " + line for line in inner)
    start = (["tf.zeros_like(J)"] if spiking else []) + carried[1 if spiking else 0:]
    lines.append(f"{names}{',' if len(carried) == 1 else ''} = self.substep_loop({SUBSTEPS}, _substep, ({', '.join(start)},))")


def _tensorflow_block(statements, lines, printer, guard, draws):
    """Print ``statements``; ``guard`` wraps masked values (see :func:`_guard`),
    ``draws`` (a one-item list) numbers the random draws across nested blocks."""
    p = printer.doprint
    held = False
    for s in statements:
        if s.comment:
            lines.append(f"# {s.comment}")
        if isinstance(s, SubstepLoop):
            _tensorflow_loop(s, lines, printer, guard, draws)
        elif isinstance(s, (Assign, Store)):
            lines.append(f"{s.target} = {p(s.value)}")
        elif isinstance(s, Guarded):  # computed for all neurons, selected by the masked writes
            lines.append(f"{s.target} = {printer._branch(guard(s.value))}")
        elif isinstance(s, Update):
            lines.append(f"{s.target} {s.op}= {p(s.value)}")
        elif isinstance(s, Spike):
            distance = "None" if s.distance is None else p(s.distance)
            lines.append(f"{s.mask} = {p(s.condition)}")
            lines.append(f"spikes = self.spike({s.mask}, {distance})")
        elif isinstance(s, SpikeCount):
            lines.append(f"spikes = self.spike_count({p(s.count)}, {p(s.proxy)})")
            lines.append(f"{s.mask} = spikes > 0")
        elif isinstance(s, Output):
            lines.append(f"output = {p(s.value)}")
        elif isinstance(s, MaskedAssign):
            value = s.value
            if value.has(SPIKES):
                if not held:
                    lines.append(f"{HELD} = tf.stop_gradient(spikes)")
                    held = True
                value = value.xreplace({SPIKES: HELD})
            select = sp.Piecewise((guard(value), s.mask), (s.target, True), evaluate=False)
            lines.append(f"{s.target} = {p(select)}")
        elif isinstance(s, Propagator):
            lines.append(f"{s.phi}, {s.gamma} = self.propagator({_matrix(s.matrix, p)}, {p(s.h)})")
        elif isinstance(s, Draw):  # stateless: seeded by the simulator's seed and step
            lines.append(f"{s.target} = self.{'rand' if s.kind == 'uniform' else 'randn'}({draws[0]}, J)")
            draws[0] += 1
        else:  # pragma: no cover
            raise TypeError(f"no TensorFlow printing rule for {type(s).__name__}")


def _guard(program, model):
    """Masked values are computed for all neurons in TensorFlow, and may be
    non-finite where the mask drops them (``log1p`` of a negative); their gradient
    there is ``0 * nan``.  Parameters (and locals computed from them), which may be
    trained, are read there through ``self.guarded(x, J)``: per neuron, with the
    non-finite gradients of the dropped neurons set to their true value, 0."""
    if model is None:
        return lambda expr: expr
    names = _parameter_locals(program, model)

    def guard(expr):
        swap = {x: sp.Symbol(f"self.guarded({x}, J)", real=True) for x in expr.free_symbols & names}
        with sp.evaluate(False):
            return expr.xreplace(swap)
    return guard


def _parameter_locals(program, model):
    """The parameters and the locals computed from parameters (and ``dt``) alone."""
    found, scalars = set(model.param_symbols), set(model.param_symbols) | {DT, SUB_DT, SUBSTEPS}
    for s in walk(program.statements):
        if isinstance(s, LOCALS) and s.reads() <= scalars:
            scalars.add(s.target)
            if s.reads() & found:
                found.add(s.target)
    return found


def masked_parameters(program, model):
    """Names of the parameters that masked NumPy work reads (directly or through a
    local): the NumPy ``step`` broadcasts them to one value per neuron, so that
    ``tau_rc[spiked]`` works for scalar and per-neuron values alike."""
    derived = _parameter_locals(program, model)
    reads = {}
    for s in walk(program.statements):
        if isinstance(s, LOCALS) and s.target in derived:
            reads[s.target] = s.value.free_symbols & derived
    used = set()
    for s in walk(program.statements):
        if isinstance(s, (Guarded, MaskedAssign)):
            used |= s.value.free_symbols & derived
    while True:  # the parameters behind the masked locals
        more = set().union(*(reads.get(x, set()) for x in used)) - used
        if not more:
            break
        used |= more
    return sorted(str(p) for p in model.param_symbols if p in used)


def _matrix(rows, p):
    return "[" + ", ".join("[" + ", ".join(p(e) for e in row) + "]" for row in rows) + "]"
