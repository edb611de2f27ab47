"""Plain-text description of an analysed model (``neurogen show``)."""

import sympy as sp

from .analysis import jacobian


def _math(expr):
    return sp.sstr(expr)


def describe(model, program):
    """Methods chosen per equation and the discretized update, in plain math."""
    kind = "spiking" if model.spiking else "rate"
    lines = [f"{model.name} ({kind})" + (f", binds {model.binds}" if model.binds else "")]
    lines.append("parameters: " + ", ".join(f"{p.name}={p.value}" for p in model.parameters))
    lines.append("states: " + ", ".join(name for name, _, _ in model.states))
    odes = [u for u in model.dynamics + model.after_output if u.ode]
    if odes:
        lines.append("")
        lines.append("equations:")
        xs = [u.target for u in odes]
        for u in odes:
            lines.append(f"  d{u.target}/dt = {_math(u.expr)}")
            method = program.methods.get(str(u.target), u.method)
            reason = program.reasons.get(str(u.target))
            lines.append(f"    method: {method}" + (f" ({reason})" if reason else ""))
        lines.append(f"  jacobian: {_math(jacobian([u.expr for u in odes], xs).tolist())}")
    lines.append("")
    if model.substepped:
        n = f"max({model.substeps or 1}, ceil(dt / {model.max_step!r}))" if model.max_step else str(model.substeps)
        lines.append(f"sub-steps: {n} per simulator step (spikes counted over the sub-steps)")
    lines.append("update per step:")
    for s in program.statements:
        if s.comment:
            lines.append(f"  # {s.comment}")
        lines.append(f"  {s.describe()}")
    if model.rate is not None:
        lines.append("")
        how = "derived in closed form" if model.rate_derived else "from the spec"
        lines.append(f"rate ({how}): {_math(model.rate)}")
    elif model.rate_table is not None:
        options = ", ".join(f"{k}={v}" for k, v in model.rate_table.items())
        lines.append("")
        lines.append(f"rate: simulated f-I curve, tabulated once per parameter set ({options})")
    for _, method, limit in program.stability:
        lines.append(f"stable for dt <= {_math(limit)} ({method})")
    return "\n".join(lines)
