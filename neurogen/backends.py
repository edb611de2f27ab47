"""Print a :class:`~neurogen.ir.StepProgram` as the body of a NumPy ``step`` (nengo)
or of a TensorFlow ``step`` (NengoDL).

Each statement kind has one printing rule per backend, and both backends print
arithmetic through one shared printer (:mod:`neurogen.printers`), so they perform
the same operations in the same order.  NumPy updates states in place and does
masked work only for the neurons in the mask, as nengo's neurons do
(``voltage[spiked] = 0``); TensorFlow rebinds tensors and selects with ``tf.where``.
"""

import sympy as sp

from .ir import LOCALS, Assign, Draw, Guarded, MaskedAssign, Output, Propagator, Spike, SpikeCount, Store, Update, temporary
from .printers import numpy_printer, tensorflow_printer
from .symbols import DT, SPIKES

#: spikes with no gradient: resets are not differentiated through the spike
HELD = temporary("spikes_held")


def numpy_lines(program, model):
    """The NumPy ``step`` body."""
    printer = numpy_printer()
    # parameters may hold one value per neuron, so masked work indexes them too
    arrays = program.per_neuron(model) | _parameter_locals(program, model)
    guarded = set()  # locals that hold values for the masked neurons only

    def masked(expr, mask):
        """``expr`` evaluated for the neurons in ``mask`` only."""
        names = {s: sp.Symbol(f"{s}[{mask}]", real=True) for s in expr.free_symbols & arrays - guarded}
        with sp.evaluate(False):
            expr = expr.xreplace(names)
        return printer.doprint(expr)

    lines = []
    for s in program.statements:
        if s.comment:
            lines.append(f"# {s.comment}")
        p = printer.doprint
        if isinstance(s, Assign):
            copy = s.value.is_Symbol and s.value in arrays  # states change in place
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
    return lines


def tensorflow_lines(program, model=None):
    """The NengoDL ``step`` body: every statement rebinds a tensor."""
    printer = tensorflow_printer()
    p = printer.doprint
    guard = _guard(program, model)
    lines, held, draws = [], False, 0
    for s in program.statements:
        if s.comment:
            lines.append(f"# {s.comment}")
        if isinstance(s, (Assign, Store)):
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
            lines.append(f"{s.target} = self.{'rand' if s.kind == 'uniform' else 'randn'}({draws}, J)")
            draws += 1
        else:  # pragma: no cover
            raise TypeError(f"no TensorFlow printing rule for {type(s).__name__}")
    return lines


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
    found, scalars = set(model.param_symbols), set(model.param_symbols) | {DT}
    for s in program.statements:
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
    for s in program.statements:
        if isinstance(s, LOCALS) and s.target in derived:
            reads[s.target] = s.value.free_symbols & derived
    used = set()
    for s in program.statements:
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
