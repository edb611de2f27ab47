"""Render a model and its update program into a Python module (Jinja2 templates).

:mod:`neurogen.backends` prints each statement of the step IR as NumPy or
TensorFlow; the templates in ``templates/`` only lay those lines out.
"""

import json
import math
from pathlib import Path

import jinja2
import sympy as sp

from . import __version__
from .cache import cache_key, read_template
from .backends import masked_parameters, numpy_lines, tensorflow_lines
from .ir import Draw, Propagator, SubstepLoop, temporary, walk
from .printers import numpy_printer, tensorflow_printer
from .spec import SURROGATES
from .symbolic import evaluated
from .symbols import OUTPUT, J

def _environment():
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(read_template),  # package data of neurogen.templates
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
    params = program.free_parameters(model)
    smoothed = smoothed_rate(model)
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
        masked_params=masked_parameters(program, model),
        states=states,
        state_inits=[(n, distribution_code(i)) for n, _, i in model.states],
        base=model.binds or "nengo.neurons.NeuronType",
        imports=sorted({c.rsplit(".", 1)[0] for c in model.bound_classes} - {"nengo"}),
        numpy_step=numpy_lines(program, model),
        tf_step=tensorflow_lines(program, model),
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
        tf_smoothed_rate=tensorflow_printer().doprint(smoothed) if smoothed is not None else None,
        tf_rate_params=_reads_params(rate, smoothed),
        max_dt=_max_dt(program.stability, numpy_printer_, model),
        sampled_max_dt=_sampled_max_dt(program.stability, model),
        runtime_imports=sorted(_runtime_imports(model, program)),
        stability_params=sorted({str(x) for _, _, e in program.stability for x in e.free_symbols}),
        rates_kind=rates_kind(model),
        uses_propagator=any(isinstance(s, Propagator) for s in walk(program.statements)),
        draws=sum(isinstance(s, Draw) for s in walk(program.statements)),
    )
    return _environment().get_template("module.py.j2").render(**context)


#: ``J - threshold`` with the threshold smoothed (see GeneratedBuilder.excess)
EXCESS = temporary("excess")


def smoothed_rate(model):
    """The closed-form rate with ``J - threshold`` read from :data:`EXCESS`, so that a
    smoothed excess keeps its precision (and gradient) far below threshold; None
    where the rate is not a function of ``J - threshold`` alone.  The rate keeps its
    written form (guards stay guards); only sums and comparisons are rewritten."""
    if model.rate is None or model.rate_threshold is None or not model.spiking:
        return None
    shifted = evaluated(model.rate_threshold) + EXCESS

    def rewrite(expr):
        if expr == J:
            return shifted
        if not isinstance(expr, sp.Basic) or expr.is_Atom:
            return expr
        args = [rewrite(a) for a in expr.args]
        if isinstance(expr, sp.Add):  # threshold + excess - threshold is excess
            return sp.Add(*args)
        if isinstance(expr, sp.core.relational.Relational):
            return expr.func(sp.Add(args[0], -args[1]), 0)
        with sp.evaluate(False):
            return expr.func(*args)

    rate = rewrite(model.rate)
    return None if rate.has(J) else rate


def _reads_params(*exprs):
    """Names of the parameters the given rate expressions read, sorted."""
    names = {str(s) for e in exprs if e is not None for s in e.free_symbols}
    return sorted(names - {"J", str(EXCESS)})


def rates_kind(model):
    """How the generated class gets its rates: ``formula`` (closed form), ``table``
    (tabulated f-I curve), ``stateless`` (the output itself), ``settled``
    (simulated until the states settle) or None (inherited from the bound class).
    The template and the runtime imports both follow this one decision."""
    if model.rate is not None:
        return "formula"
    if model.rate_table:
        return "table"
    if model.binds:
        return None
    stateless = model.output is not None and not model.states and OUTPUT not in model.output.free_symbols
    return "stateless" if stateless else "settled"


def _runtime_imports(model, program):
    """Names the module needs from neurogen.runtime."""
    names = {"check_dt"} if program.stability else set()
    if any(isinstance(s, SubstepLoop) and s.max_step is not None for s in program.statements):
        names.add("substep_count")
    helper = {"table": "rate_table", "settled": "settled_output"}.get(rates_kind(model))
    return names | ({helper} if helper else set())


def _max_dt(stability, printer, model):
    """Code for the largest stable dt: min over the explicit updates' limits (each a
    limit on the sub-step where the model is sub-stepped, see ``Model.dt_limit``)."""
    if not stability:
        return None
    terms = [_per_dt(printer.doprint(expr), model) for _, method, expr in stability if not method.endswith(", sampled")]
    if not terms:
        return 'float("inf")'
    nested = terms[-1]  # elementwise, for per-neuron parameters
    for term in reversed(terms[:-1]):
        nested = f"np.minimum({term}, {nested})"
    return nested


def _per_dt(limit, model):
    """``limit`` on the (sub-)step as code for a limit on the simulator's dt."""
    if not model.substepped:
        return limit
    n = model.substeps or 1
    if model.max_step is None:
        return f"{n} * ({limit})"
    return f"np.where({model.max_step!r} <= ({limit}), np.inf, {n} * ({limit}))"


def _sampled_max_dt(stability, model):
    """The least sampled (non-linear) limit on dt, as a number, or None."""
    limits = [float(e) for _, method, e in stability if method.endswith(", sampled")]
    limit = model.dt_limit(min(limits)) if limits else float("inf")
    return repr(float(f"{limit:.4g}")) if limit < float("inf") else None


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
