"""Render a model and its update program into a Python module (Jinja2 templates).

The printers turn each :class:`~neurogen.discretize.Statement` into one line of
NumPy or TensorFlow; the templates in ``templates/`` only lay those lines out.
"""

import json
import math
from pathlib import Path

import jinja2
import sympy as sp

from . import __version__
from .cache import TEMPLATES, cache_key
from .spec import SURROGATES
from .discretize import SPIKED, T_SPIKE
from .symbols import OUTPUT, SPIKES
from .printers import numpy_printer, tensorflow_printer

def _environment():
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    env.filters["pystr"] = python_string
    env.filters["number"] = number_literal
    env.filters["comment"] = comment_text
    return env


def number_literal(value):
    """A Python literal for a parameter value or bound, infinities included."""
    value = float(value) if isinstance(value, float) else value
    if isinstance(value, float) and not math.isfinite(value):
        return 'float("inf")' if value > 0 else '-float("inf")'
    return repr(value)


def comment_text(text):
    """``text`` for a ``#`` comment: control characters escaped, so it stays one line."""
    text = str(text)
    return text if text.isprintable() else repr(text)[1:-1]


def python_string(text):
    """A double-quoted Python string literal for any text."""
    return json.dumps(str(text))


def docstring(text, indent):
    """Escape ``text`` for use inside a triple-quoted docstring."""
    text = str(text).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    pad = " " * indent
    return "\n".join((pad + line) if line.strip() else "" for line in text.splitlines())


def _increment(target, expr, printer):
    """``x += rest`` when ``expr`` is ``x + rest``, else None."""
    if isinstance(expr, sp.Add) and target in expr.args:
        rest = expr - target
        if isinstance(rest, sp.Mul) and rest.could_extract_minus_sign():
            return f"{target} -= {printer.doprint(-rest)}"
        return f"{target} += {printer.doprint(rest)}"
    return None


def _numpy_state(s, printer):
    target, expr = s.target, s.expr
    if isinstance(expr, sp.Piecewise) and len(expr.args) == 2 and expr.args[1].expr == target:
        value, mask = expr.args[0]
        if value.free_symbols <= printer.scalars:  # e.g. voltage[spikes > 0] = 0
            return f"{target}[{printer.doprint(mask)}] = {printer.doprint(value)}"
    return _increment(target, expr, printer) or f"{target}[...] = {printer.doprint(expr)}"


def tensorflow_lines(program):
    """The NengoDL ``step`` body: every assignment rebinds a tensor."""
    printer = tensorflow_printer()
    lines = []
    detached = False
    condition = None
    for s in program.statements:
        if s.comment:
            lines.append(f"# {s.comment}")
        if s.target == SPIKED and isinstance(s.expr, (sp.core.relational.Relational, sp.And, sp.Or, sp.Not)):
            condition = s.expr
        if s.target == SPIKES:
            lines.append(f"spikes = {_tf_spikes(s.expr, condition, printer)}")
            continue
        expr = s.expr
        if s.kind == "state" and expr.has(SPIKED) and expr.has(SPIKES):
            # resets are not differentiated through the spike (surrogate training)
            if not detached:
                lines.append(f"{HELD} = tf.stop_gradient(spikes)")
                detached = True
            expr = expr.xreplace({SPIKES: HELD})
        target = "output" if s.kind == "output" else str(s.target)
        lines.append(_increment(s.target, expr, printer) or f"{target} = {printer.doprint(expr)}")
    return lines


HELD = sp.Symbol("spikes_held", real=True)  # spikes with no gradient, for resets


def _tf_spikes(expr, cond, printer):
    """``self.spike(spiked, distance)`` or ``self.spike_count(count, proxy)``: the
    builder decides whether spikes get a surrogate gradient."""
    if isinstance(expr, sp.Piecewise):  # 0/1 from the spike condition `cond`
        if isinstance(cond, (sp.StrictGreaterThan, sp.GreaterThan)):
            distance = printer.doprint(sp.Add(cond.lhs, -cond.rhs))
        elif isinstance(cond, (sp.StrictLessThan, sp.LessThan)):
            distance = printer.doprint(sp.Add(cond.rhs, -cond.lhs))
        else:
            distance = "None"
        return f"self.spike({printer.doprint(expr.args[0].cond)}, {distance})"
    proxy = expr.args[0] if isinstance(expr, sp.floor) else expr
    return f"self.spike_count({printer.doprint(expr)}, {printer.doprint(proxy)})"


def distribution_code(initial):
    """Code for a state's initial value: ``Choice([0])`` or ``Uniform(low=0, high=1)``."""
    if isinstance(initial, (int, float)):
        return f"Choice([{initial!r}])"
    cls, kwargs = initial
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"{cls}({args})"


def render(model, program, source, spec_path):
    """The generated module's text (deterministic: same inputs, same bytes)."""
    numpy_printer_ = numpy_printer()
    numpy_printer_.scalars = set(model.param_symbols)
    params = program.free_parameters(model)
    states = [s for s, _, _ in model.states]
    rate = model.rate
    context = dict(
        version=__version__,
        spec_path=spec_path,
        cache_key=cache_key(source),
        model=model,
        doc=docstring(_class_doc(model), 4),
        params=model.parameters,
        step_params=[p.name for p in params],
        states=states,
        state_inits=[(n, distribution_code(i)) for n, _, i in model.states],
        base=model.binds or "nengo.neurons.NeuronType",
        imports=sorted({c.rsplit(".", 1)[0] for c in model.bound_classes} - {"nengo"}),
        numpy_step=numpy_lines(model, program, numpy_printer_),
        tf_step=tensorflow_lines(program),
        rate_params=sorted(str(s) for s in rate.free_symbols if str(s) != "J") if rate is not None else [],
        numpy_rate=numpy_printer_.doprint(rate) if rate is not None else None,
        rate_table_options=_literal(model.rate_table),
        surrogates=repr(SURROGATES),
        training_defaults=_literal(
            {"training": t["mode"], "surrogate": t["surrogate"], "surrogate_scale": t["scale"], "smoothing": t["smoothing"]}
        ) if (t := model.training) else None,
        tf_threshold=tensorflow_printer().doprint(model.rate_threshold) if model.rate_threshold is not None else None,
        threshold_params=sorted(str(s) for s in model.rate_threshold.free_symbols) if model.rate_threshold is not None else [],
        tf_rate=tensorflow_printer().doprint(rate) if rate is not None else None,
        max_dt=_max_dt(program.stability, numpy_printer_),
        runtime_imports=sorted(_runtime_imports(model, program)),
        stability_params=sorted({str(x) for _, _, e in program.stability for x in e.free_symbols}),
        stateless_output=(
            numpy_printer_.doprint(model.output)
            if model.output is not None and not model.states and OUTPUT not in model.output.free_symbols
            else None
        ),
    )
    return _environment().get_template("module.py.j2").render(**context)


def numpy_lines(model, program, printer):
    """The NumPy ``step`` body: states are updated in place, as nengo does."""
    state_symbols = set(model.state_symbols)
    lines = []
    for s in program.statements:
        if s.comment:
            lines.append(f"# {s.comment}")
        if s.kind == "local":
            if s.expr in state_symbols:
                text = f"{s.target} = {s.expr}.copy()"
            else:
                text = f"{s.target} = {printer.doprint(s.expr)}"
            if s.target == T_SPIKE:
                lines.append('with np.errstate(divide="ignore", invalid="ignore"):')
                text = "    " + text
            lines.append(text)
        elif s.kind == "output":
            lines.append(f"output[...] = {printer.doprint(s.expr)}")
        else:
            lines.append(_numpy_state(s, printer))
    return lines


def _runtime_imports(model, program):
    """Names the module needs from neurogen.runtime."""
    names = {"check_dt"} if program.stability else set()
    if model.rate_table:
        names.add("rate_table")
    stateless = model.output is not None and not model.states
    if not model.spiking and not model.binds and model.rate is None and not stateless:
        names.add("settled_output")
    return names


def _max_dt(stability, printer):
    """Code for the largest stable dt: min over the explicit updates' limits."""
    if not stability:
        return None
    terms = [printer.doprint(expr) for _, _, expr in stability]
    return terms[0] if len(terms) == 1 else f"min({', '.join(terms)})"


def _literal(options):
    """A dict literal of numbers, in a stable order."""
    if options is None:
        return None
    return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in options.items()) + "}"


def _class_doc(model):
    lines = [model.doc.strip() or f"{model.name} neuron model."]
    lines.append("")
    lines.append(f"Generated by neurogen from ``{Path(model.source_path).name}``.")
    if model.parameters:
        lines += ["", "Parameters", "----------"]
        for p in model.parameters:
            lines.append(f"{p.name} : float")
            if p.doc:
                lines.append(f"    {p.doc}")
        lines.append("initial_state : {str: Distribution or array_like}")
        lines.append("    Mapping from state variables names to their desired initial value.")
    if model.references:
        lines += ["", "References", "----------"]
        lines += [f".. [{i}] {ref}" for i, ref in enumerate(model.references, start=1)]
    return "\n".join(lines)
