"""Read a neuron spec (TOML) into plain dataclasses, keeping line numbers.

This stage checks structure only: which sections and keys exist, their types, and
that names are usable; one function per section.  Expressions stay strings here;
:mod:`neurogen.symbolic` parses them.  The dataclasses, constants and value readers
live in :mod:`neurogen.spec_types` (re-exported here).
"""

import keyword
import re
import tomllib
from pathlib import Path

from .errors import SpecError
from .spec_types import (  # noqa: F401 (re-exported)
    METHODS,
    PARAMETER_KEYS,
    REFRACTORY_KEYS,
    RESERVED,
    SECTIONS,
    SPIKE_TIMES,
    SURROGATES,
    TABLE_DEFAULTS,
    TRAINING_DEFAULTS,
    Clamp,
    Equation,
    LineIndex,
    NeuronSpec,
    Parameter,
    Spike,
    State,
    Text,
    _equation_block,
    _number,
    _string,
    _table,
    _unknown_keys,
    check_name,
    parse_equation,
)


def load(path):
    """Read and structurally check the spec at ``path``."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"spec is not valid UTF-8 ({e.reason})", path) from None
    except OSError as e:
        raise SpecError(f"cannot read spec: {e.strerror}", path) from None
    return parse(source, path)


def parse(source, path=Path("<spec>.toml")):
    """Parse spec text; ``path`` is used for messages and the module name."""
    path = Path(path)
    data, index = _toml(source, path)
    _check_sections(data, index, path)
    spec = _neuron(data["neuron"], source, index, path)
    declare = _namespace(path)
    spec.parameters = _parameters(data.get("parameters", {}), index, path, declare)
    spec.states = _states(data.get("state", {}), index, path, declare)
    spec.expressions = _expressions(data.get("expressions", {}), index, path, declare)
    _dynamics(spec, data.get("dynamics", {}), index, path)
    _spike_or_output(spec, data, index, path)
    _after_output(spec, data.get("after_output", {}), index, path)
    if "rate" in data:
        _rate(spec, data["rate"], index, path)
    if "training" in data:
        if spec.spike is None:
            raise SpecError("[training] is for spiking neurons", path, index.section("training"))
        spec.training = _training(data["training"], index, path)
    return spec


def _toml(source, path):
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)", str(e))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise SpecError(f"invalid TOML: {msg}", path, int(m.group(1)) if m else None) from None
    return data, LineIndex(source)


def _check_sections(data, index, path):
    """Known sections only, each a table with known keys; [neuron] is required."""
    for section in data:
        if section not in SECTIONS:
            known = ", ".join(f"[{s}]" for s in SECTIONS)
            raise SpecError(
                f"unknown section [{section}] (known: {known})", path, index.section(section)
            )
    for section, allowed in SECTIONS.items():
        if section in data:
            _table(data[section], f"[{section}]", path, index.section(section))
            if allowed is not None:
                _unknown_keys(data[section], allowed, section, index, path)
    if "neuron" not in data:
        raise SpecError("missing section [neuron]", path, 1)


def _neuron(neuron, source, index, path):
    """[neuron]: the class name, what it binds, its documentation."""
    if "name" not in neuron:
        raise SpecError("missing key 'name' in [neuron]", path, index.section("neuron"))
    name_line = index.key("neuron", "name")
    name = _string(neuron["name"], "[neuron] name", path, name_line)
    check_name(name, "neuron", name_line, path)
    if not name[0].isupper():
        raise SpecError(f"neuron name {name!r} should be a CamelCase class name", path, name_line)
    if not path.stem.isidentifier() or keyword.iskeyword(path.stem) or path.stem.startswith("_"):
        raise SpecError(f"spec file name {path.stem!r} is not a valid module name", path, 1)

    spec = NeuronSpec(path=path, source=source, name=name, lines=index)
    if "binds" in neuron:
        line = index.key("neuron", "binds")
        spec.binds = _class_path(neuron["binds"], "binds", path, line)
    if "also_binds" in neuron:
        line = index.key("neuron", "also_binds")
        if not isinstance(neuron["also_binds"], list) or spec.binds is None:
            raise SpecError("also_binds must be a list of class paths, next to binds", path, line)
        spec.also_binds = [_class_path(c, "also_binds", path, line) for c in neuron["also_binds"]]
    spec.doc = _string(neuron.get("doc", ""), "[neuron] doc", path, index.key("neuron", "doc"), True)
    refs = neuron.get("references", [])
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise SpecError("[neuron] references must be a list of strings", path, index.key("neuron", "references"))
    spec.references = refs
    if "negative" in neuron:
        if not isinstance(neuron["negative"], bool):
            raise SpecError("[neuron] negative must be true or false", path, index.key("neuron", "negative"))
        spec.negative = neuron["negative"]
    return spec


def _namespace(path):
    """``declare(name, what, line)``: parameters, states and expressions share one
    namespace, each name declared once."""
    seen = {}

    def declare(n, what, line):
        check_name(n, what, line, path)
        if n in seen:
            raise SpecError(f"{what} {n!r} is already declared as a {seen[n]}", path, line)
        seen[n] = what

    return declare


def _parameters(table, index, path, declare):
    """[parameters]: ``name = value``, ``name = {...}`` or a [parameters.name] table."""
    return [_parameter(pname, value, index, path, declare) for pname, value in table.items()]


def _parameter(pname, value, index, path, declare):
    sub = f"parameters.{pname}" if index.section(f"parameters.{pname}") else None
    line = index.section(sub) if sub else index.key("parameters", pname)

    def at(key):
        return (index.key(sub, key) if sub else None) or line

    declare(pname, "parameter", line)
    if not isinstance(value, dict):
        value = {"value": value}
    for key in value:
        if key not in PARAMETER_KEYS:
            _unknown_keys({key: 0}, PARAMETER_KEYS, sub or "parameters", index, path, at(key))
    if "value" not in value:
        raise SpecError(f"parameter {pname!r} has no 'value'", path, line)
    p = Parameter(pname, _number(value["value"], f"parameter {pname!r} value", path, at("value")), line)
    for bound in ("low", "high"):
        if bound in value:
            setattr(p, bound, _number(value[bound], f"parameter {pname!r} {bound}", path, at(bound)))
    for flag in ("low_open", "high_open"):
        if flag in value:
            if not isinstance(value[flag], bool):
                raise SpecError(f"parameter {pname!r} {flag} must be true or false", path, at(flag))
            setattr(p, flag, value[flag])
    p.doc = _string(value.get("doc", ""), f"parameter {pname!r} doc", path, at("doc"), True)
    _check_bounds(p, path)
    return p


def _states(table, index, path, declare):
    """[state]: initial values, numbers or distributions (parsed later)."""
    states = []
    for sname, value in table.items():
        line = index.key("state", sname)
        declare(sname, "state", line)
        if isinstance(value, str):
            initial = Text(_string(value, f"state {sname!r}", path, line), line, f"state {sname}")
        else:
            initial = _number(value, f"initial value of state {sname!r}", path, line, allow_inf=False)
        states.append(State(sname, initial, line))
    return states


def _expressions(table, index, path, declare):
    """[expressions]: named expressions, in order."""
    expressions = []
    for ename, value in table.items():
        line = index.key("expressions", ename)
        declare(ename, "expression", line)
        expressions.append((ename, Text(_string(value, f"expression {ename!r}", path, line), line, ename)))
    return expressions


def _dynamics(spec, dynamics, index, path):
    """[dynamics]: the effective input and the update lines."""
    if "input" in dynamics:
        line = index.key("dynamics", "input")
        spec.input = Text(_string(dynamics["input"], "[dynamics] input", path, line), line, "input")
    if "equations" in dynamics:
        spec.dynamics = _equation_block(dynamics["equations"], "dynamics", "equations", index, path)
    _substeps(spec, dynamics, index, path)


#: most sub-steps per simulator step (a larger count is almost surely a unit mistake)
MAX_SUBSTEPS = 10000


def _substeps(spec, dynamics, index, path):
    """[dynamics] substeps (an integer) and max_step (seconds): integrate each
    simulator step in sub-steps (``ceil(dt / max_step)`` of them, or ``substeps``,
    whichever is more)."""
    if "substeps" in dynamics:
        line = index.key("dynamics", "substeps")
        n = dynamics["substeps"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SUBSTEPS:
            raise SpecError(f"[dynamics] substeps must be an integer from 1 to {MAX_SUBSTEPS}, got {n!r}", path, line)
        spec.substeps = n
    if "max_step" in dynamics:
        line = index.key("dynamics", "max_step")
        value = _number(dynamics["max_step"], "[dynamics] max_step", path, line, allow_inf=False)
        if value <= 0:
            raise SpecError(f"[dynamics] max_step must be > 0 (seconds), got {value!r}", path, line)
        spec.max_step = float(value)


def _spike_or_output(spec, data, index, path):
    """Exactly one of [spike] (a spiking neuron) and [output] (a rate neuron)."""
    if "spike" in data:
        spec.spike = _spike(data["spike"], index, path)
    if "output" in data:
        if "expression" not in data["output"]:
            raise SpecError("missing key 'expression' in [output]", path, index.section("output"))
        line = index.key("output", "expression")
        spec.output = Text(_string(data["output"]["expression"], "[output] expression", path, line), line, "output")
    if spec.spike is None and spec.output is None:
        raise SpecError(
            "missing section [spike] or [output]: a neuron must say what it outputs", path, 1
        )
    if spec.spike is not None and spec.output is not None:
        raise SpecError(
            "a spec has either [spike] (spiking) or [output] (rate), not both",
            path,
            index.section("output"),
        )


def _after_output(spec, after, index, path):
    """[after_output]: updates that see this step's output, and late resets."""
    if "equations" in after:
        spec.after_output = _equation_block(after["equations"], "after_output", "equations", index, path)
    if "reset" in after:
        if spec.spike is None:
            raise SpecError("[after_output] reset needs a [spike] section", path, index.key("after_output", "reset"))
        spec.after_reset = _equation_block(after["reset"], "after_output", "reset", index, path)


def _rate(spec, rate, index, path):
    """[rate]: a closed-form expression (and threshold), or a table's options."""
    if ("expression" in rate) == ("table" in rate):
        raise SpecError("[rate] needs exactly one of 'expression' or 'table'", path, index.section("rate"))
    if "expression" in rate:
        line = index.key("rate", "expression")
        spec.rate = Text(_string(rate["expression"], "[rate] expression", path, line), line, "rate")
        if "threshold" in rate:
            line = index.key("rate", "threshold")
            value = rate["threshold"]
            value = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
            spec.rate_threshold = Text(_string(value, "[rate] threshold", path, line), line, "rate threshold")
    else:
        if spec.spike is None:
            raise SpecError("[rate] table is for spiking neurons", path, index.key("rate", "table"))
        spec.rate_table = _rate_table(rate["table"], path, index.key("rate", "table"))
    if "threshold" in rate and spec.rate is None:
        raise SpecError("[rate] threshold goes with a rate expression", path, index.key("rate", "threshold"))


def _training(table, index, path):
    """Default training options of a spiking neuron type."""
    options = dict(TRAINING_DEFAULTS)
    for key, value in table.items():
        line = index.key("training", key)
        if key == "mode":
            if value not in ("rate", "surrogate"):
                raise SpecError(f"[training] mode must be 'rate' or 'surrogate', got {value!r}", path, line)
        elif key == "surrogate":
            if value not in SURROGATES:
                raise SpecError(f"unknown surrogate {value!r} (known: {', '.join(SURROGATES)})", path, line)
        else:
            value = float(_number(value, f"[training] {key}", path, line, allow_inf=False))
            if value < 0 or (key == "scale" and value == 0):
                raise SpecError(f"[training] {key} must be {'> 0' if key == 'scale' else '>= 0'}", path, line)
        options[key] = value
    return options


def _rate_table(table, path, line):
    """Options for a simulated, tabulated f-I curve."""
    table = _table(table, "[rate] table", path, line)
    for key in table:
        if key not in TABLE_DEFAULTS:
            known = ", ".join(TABLE_DEFAULTS)
            raise SpecError(f"unknown [rate] table key {key!r} (known: {known})", path, line)
    options = dict(TABLE_DEFAULTS)
    for key, value in table.items():
        options[key] = _number(value, f"[rate] table {key}", path, line, allow_inf=False)
    if not isinstance(options["points"], int) or not 16 <= options["points"] <= 100000:
        raise SpecError("[rate] table points must be an integer from 16 to 100000", path, line)
    if options["low"] >= options["high"]:
        raise SpecError("[rate] table needs low < high", path, line)
    if options["settle"] < 0 or options["duration"] <= 0 or options["dt"] <= 0:
        raise SpecError("[rate] table needs settle >= 0, duration > 0 and dt > 0", path, line)
    if (options["settle"] + options["duration"]) / options["dt"] > 1e6:
        raise SpecError("[rate] table simulation is too long (over 1e6 steps)", path, line)
    return options


def _class_path(value, key, path, line):
    value = _string(value, f"[neuron] {key}", path, line)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+", value):
        raise SpecError(f"{key} must be a dotted class path, got {value!r}", path, line)
    return value


def _check_bounds(p, path):
    def below(bound, is_open):
        return p.value <= bound if is_open else p.value < bound

    def above(bound, is_open):
        return p.value >= bound if is_open else p.value > bound

    if p.low is not None and p.high is not None and p.low > p.high:
        raise SpecError(f"parameter {p.name!r} has low > high", path, p.line)
    if p.low is not None and below(p.low, p.low_open):
        op = ">" if p.low_open else ">="
        raise SpecError(f"default of parameter {p.name!r} must be {op} {p.low}", path, p.line)
    if p.high is not None and above(p.high, p.high_open):
        op = "<" if p.high_open else "<="
        raise SpecError(f"default of parameter {p.name!r} must be {op} {p.high}", path, p.line)


def _spike(table, index, path):
    line = index.section("spike")
    spike = Spike(line=line)
    has_condition, has_count = "condition" in table, "count" in table
    if has_condition == has_count:
        raise SpecError("[spike] needs exactly one of 'condition' or 'count'", path, line)
    key = "condition" if has_condition else "count"
    kline = index.key("spike", key)
    setattr(spike, key, Text(_string(table[key], f"[spike] {key}", path, kline), kline, f"spike {key}"))
    if "reset" in table:
        spike.reset = _equation_block(table["reset"], "spike", "reset", index, path)
        for eq in spike.reset:
            if eq.ode:
                raise SpecError("a reset is an assignment 'x = expression', not an ODE", path, eq.rhs.line)
    if "clamp" in table:
        cline = index.key("spike", "clamp")
        for state, bounds in _table(table["clamp"], "[spike] clamp", path, cline).items():
            if isinstance(bounds, str):
                bounds = {"low": bounds}
            bounds = _table(bounds, f"clamp of {state!r}", path, cline)
            for k in bounds:
                if k not in ("low", "high"):
                    raise SpecError(f"unknown clamp key {k!r} (known: high, low)", path, cline)
            texts = {
                k: Text(str(v) if not isinstance(v, str) else v, cline, f"clamp of {state}")
                for k, v in bounds.items()
                if isinstance(v, (str, int, float)) and not isinstance(v, bool)
            }
            if len(texts) != len(bounds) or not texts:
                raise SpecError(f"clamp of {state!r} needs 'low' and/or 'high' expressions", path, cline)
            spike.clamp.append(Clamp(state, texts.get("low"), texts.get("high"), cline))
    if "refractory" in table:
        rline = index.key("spike", "refractory")
        ref = _table(table["refractory"], "[spike] refractory", path, rline)
        for k in ref:
            if k not in REFRACTORY_KEYS:
                raise SpecError(f"unknown refractory key {k!r} (known: period, state)", path, rline)
        if set(ref) != REFRACTORY_KEYS:
            raise SpecError("[spike] refractory needs 'period' and 'state'", path, rline)
        period = ref["period"]
        if isinstance(period, (int, float)) and not isinstance(period, bool):
            period = str(period)
        spike.refractory_period = Text(_string(period, "refractory period", path, rline), rline, "refractory period")
        spike.refractory_state = _string(ref["state"], "refractory state", path, rline)
    if "spike_time" in table:
        spike.spike_time_line = index.key("spike", "spike_time")
        if "refractory" not in table:
            raise SpecError(
                "spike_time sets when a refractory period starts: it needs 'refractory'",
                path,
                spike.spike_time_line,
            )
        value = _string(table["spike_time"], "[spike] spike_time", path, spike.spike_time_line)
        if value not in SPIKE_TIMES:
            raise SpecError(
                f"unknown spike_time {value!r} (known: {', '.join(SPIKE_TIMES)})",
                path,
                spike.spike_time_line,
            )
        spike.spike_time = value
    if "output" in table:
        oline = index.key("spike", "output")
        spike.output = Text(_string(table["output"], "[spike] output", path, oline), oline, "spike output")
    return spike
