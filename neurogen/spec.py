"""Read a neuron spec (TOML) into plain dataclasses, keeping line numbers.

This stage checks structure only: which sections and keys exist, their types, and
that names are usable.  Expressions stay strings here; :mod:`neurogen.symbolic`
parses them.
"""

import keyword
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SpecError

METHODS = ("auto", "exact", "exponential_euler", "euler", "rk4")
SPIKE_TIMES = ("auto", "exact", "linear", "end")

#: Names a spec may not declare: the step's own inputs, attributes that every nengo
#: NeuronType already has, and the generated module's globals.  The compiler's own
#: temporaries start with ``_`` (see neurogen.ir), which spec names never do.
RESERVED = frozenset(
    """J dt output spikes self np tf nengo dtype signals state
    probeable spiking negative initial_state step rates gain_bias current make_state
    max_rates_intercepts params training_step training surrogate surrogate_scale
    smoothing training_defaults rate_table rate_table_options pi inf
    BUILDER NEURON_TYPE GeneratedBuilder NumberParam EnumParam Choice Uniform Gaussian
    Exponential nengo_dl register check_dt settled_output linear_propagator""".split()
)

SECTIONS = {
    "neuron": {"name", "binds", "also_binds", "doc", "negative", "references"},
    "parameters": None,
    "state": None,
    "expressions": None,
    "dynamics": {"input", "equations"},
    "spike": {"condition", "count", "reset", "clamp", "refractory", "spike_time", "output"},
    "output": {"expression"},
    "after_output": {"equations", "reset"},
    "rate": {"expression", "table", "threshold"},
    "training": {"mode", "surrogate", "scale", "smoothing"},
}
PARAMETER_KEYS = {"value", "low", "high", "low_open", "high_open", "doc"}
REFRACTORY_KEYS = {"period", "state"}


@dataclass
class Text:
    """A piece of spec text (an expression or equation) and where it came from."""

    text: str
    line: int
    where: str  # e.g. "dvoltage/dt", "spike condition"


@dataclass
class Parameter:
    name: str
    value: float
    line: int
    low: float = None
    high: float = None
    low_open: bool = False
    high_open: bool = False
    doc: str = ""


@dataclass
class State:
    name: str
    initial: object  # a number, or a Text holding a nengo distribution
    line: int


@dataclass
class Equation:
    """``dx/dt = rhs : method`` (``ode=True``) or ``x = rhs`` (an assignment)."""

    target: str
    rhs: Text
    ode: bool
    method: str = "auto"


@dataclass
class Clamp:
    state: str
    low: Text = None
    high: Text = None
    line: int = 0


@dataclass
class Spike:
    line: int
    condition: Text = None
    count: Text = None
    reset: list = field(default_factory=list)
    clamp: list = field(default_factory=list)
    refractory_period: Text = None
    refractory_state: str = None
    spike_time: str = "auto"
    spike_time_line: int = 0
    output: Text = None


@dataclass
class NeuronSpec:
    path: Path
    source: str
    name: str
    binds: str = None
    also_binds: list = field(default_factory=list)
    doc: str = ""
    references: list = field(default_factory=list)
    negative: bool = None
    parameters: list = field(default_factory=list)
    states: list = field(default_factory=list)
    expressions: list = field(default_factory=list)  # list of (name, Text)
    input: Text = None
    dynamics: list = field(default_factory=list)
    spike: Spike = None
    output: Text = None
    after_output: list = field(default_factory=list)
    after_reset: list = field(default_factory=list)
    rate: Text = None
    rate_table: dict = None
    rate_threshold: Text = None
    training: dict = None
    lines: "LineIndex" = None

    @property
    def spiking(self):
        return self.spike is not None

    @property
    def module_name(self):
        return self.path.stem


class LineIndex:
    """Finds the line of a section, key or text fragment in TOML source."""

    _header = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\s*(#.*)?$")
    _key = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')\s*=")

    def __init__(self, source):
        self.lines = source.splitlines()
        self.keys = {}
        self.sections = {}
        section = ""
        for i, raw in enumerate(self.lines, start=1):
            m = self._header.match(raw)
            if m and not raw.lstrip().startswith("[["):
                section = m.group(1).replace(" ", "")
                self.sections.setdefault(section, i)
                continue
            m = self._key.match(raw)
            if m:
                self.keys.setdefault((section, m.group(1).strip("\"'")), i)

    def section(self, name):
        return self.sections.get(name)

    def key(self, section, key):
        line = self.keys.get((section, key))
        return line if line is not None else self.section(section)

    def find(self, fragment, start=1):
        """First line at or after ``start`` containing ``fragment``."""
        for i in range(max(start, 1), len(self.lines) + 1):
            if fragment in self.lines[i - 1]:
                return i
        return start

    def string_lines(self, section, key):
        """Line of each line of a multi-line string value."""
        start = self.key(section, key) or 1
        raw = self.lines[start - 1] if start <= len(self.lines) else ""
        after = re.split(r'"""|\'\'\'', raw, maxsplit=1)
        first = start + 1 if len(after) == 2 and not after[1].strip() else start
        return first


def check_name(name, what, line, path):
    """A name must be a non-keyword identifier that does not shadow nengo's own."""
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
        raise SpecError(f"{what} name {name!r} is not a valid identifier", path, line)
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise SpecError(f"{what} name {name!r} is a Python keyword", path, line)
    if name.startswith("_"):
        raise SpecError(f"{what} name {name!r} may not start with an underscore", path, line)
    if name in RESERVED:
        raise SpecError(f"{what} name {name!r} is reserved", path, line)
    from .symbolic import FUNCTIONS

    if name in FUNCTIONS:
        raise SpecError(f"{what} name {name!r} shadows the function {name}()", path, line)


def _number(value, what, path, line, allow_inf=True):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{what} must be a number, got {type(value).__name__}", path, line)
    if math.isnan(value) or (not allow_inf and math.isinf(value)):
        raise SpecError(f"{what} must be a finite number, got {value}", path, line)
    if abs(value) > 1e300 and not math.isinf(value):
        raise SpecError(f"{what} is too large: {value}", path, line)
    return float(value) if isinstance(value, float) else value


def _string(value, what, path, line, allow_empty=False):
    if not isinstance(value, str):
        raise SpecError(f"{what} must be a string, got {type(value).__name__}", path, line)
    if not allow_empty and not value.strip():
        raise SpecError(f"{what} must not be empty", path, line)
    if len(value) > 10000:
        raise SpecError(f"{what} is too long ({len(value)} characters)", path, line)
    if "\x00" in value:
        raise SpecError(f"{what} contains a NUL character", path, line)
    return value


def _table(value, what, path, line):
    if not isinstance(value, dict):
        raise SpecError(f"{what} must be a table, got {type(value).__name__}", path, line)
    return value


def _unknown_keys(table, allowed, section, index, path, line=None):
    for key in table:
        if key not in allowed:
            at = index.key(section, key) if line is None else line
            known = ", ".join(sorted(allowed))
            raise SpecError(f"unknown key {key!r} in [{section}] (known: {known})", path, at)


_EQUATION = re.compile(
    r"^\s*(?:d\s*(?P<ode>[A-Za-z_][A-Za-z0-9_]*)\s*/\s*dt|(?P<var>[^=:]+?))\s*=\s*"
    r"(?P<rhs>[^:]+?)\s*(?::\s*(?P<method>[^:]*?)\s*)?$"
)


def parse_equation(line_text, line, path, where):
    """Parse one ``dx/dt = expr : method`` or ``x = expr`` line."""
    m = _EQUATION.match(line_text)
    if not m or not m.group("rhs").strip():
        raise SpecError(
            f"cannot read {where} {line_text.strip()!r}: expected 'dx/dt = expression"
            " [: method]' or 'x = expression'",
            path,
            line,
        )
    method = m.group("method")
    target = m.group("ode") or m.group("var").strip()
    if not target.isidentifier():
        raise SpecError(f"{where} assigns to {target!r}, which is not a name", path, line)
    if method is not None:
        method = method.strip()
        if m.group("ode") is None:
            raise SpecError(f"method {method!r} given for an assignment", path, line)
        if method not in METHODS:
            raise SpecError(
                f"unknown method {method!r} (known: {', '.join(METHODS)})", path, line
            )
    label = f"d{target}/dt" if m.group("ode") else target
    return Equation(
        target=target,
        rhs=Text(m.group("rhs").strip(), line, label),
        ode=m.group("ode") is not None,
        method=method or "auto",
    )


def _equation_block(value, section, key, index, path):
    """Equations given as a multi-line string or as a list of strings."""
    if isinstance(value, str):
        _string(value, f"[{section}] {key}", path, index.key(section, key))
        first = index.string_lines(section, key)
        items = [(text, first + i) for i, text in enumerate(value.split("\n"))]
    elif isinstance(value, list):
        start = index.key(section, key)
        items = []
        for text in value:
            _string(text, f"[{section}] {key} entry", path, start)
            items.append((text, index.find(text.strip(), start)))
    else:
        raise SpecError(
            f"[{section}] {key} must be a string or a list of strings", path, index.key(section, key)
        )
    equations = []
    for text, line in items:
        text = text.split("#", 1)[0]
        if text.strip():
            equations.append(parse_equation(text, line, path, f"[{section}] {key}"))
    return equations


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
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)", str(e))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise SpecError(f"invalid TOML: {msg}", path, int(m.group(1)) if m else None) from None
    index = LineIndex(source)

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

    neuron = data["neuron"]
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

    seen = {}

    def declare(n, what, line):
        check_name(n, what, line, path)
        if n in seen:
            raise SpecError(f"{what} {n!r} is already declared as a {seen[n]}", path, line)
        seen[n] = what

    for pname, value in data.get("parameters", {}).items():
        # `name = value`, `name = {...}` on one line, or a [parameters.name] table
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
        spec.parameters.append(p)

    for sname, value in data.get("state", {}).items():
        line = index.key("state", sname)
        declare(sname, "state", line)
        if isinstance(value, str):
            initial = Text(_string(value, f"state {sname!r}", path, line), line, f"state {sname}")
        else:
            initial = _number(value, f"initial value of state {sname!r}", path, line, allow_inf=False)
        spec.states.append(State(sname, initial, line))

    for ename, value in data.get("expressions", {}).items():
        line = index.key("expressions", ename)
        declare(ename, "expression", line)
        spec.expressions.append((ename, Text(_string(value, f"expression {ename!r}", path, line), line, ename)))

    dynamics = data.get("dynamics", {})
    if "input" in dynamics:
        line = index.key("dynamics", "input")
        spec.input = Text(_string(dynamics["input"], "[dynamics] input", path, line), line, "input")
    if "equations" in dynamics:
        spec.dynamics = _equation_block(dynamics["equations"], "dynamics", "equations", index, path)

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

    after = data.get("after_output", {})
    if "equations" in after:
        spec.after_output = _equation_block(after["equations"], "after_output", "equations", index, path)
    if "reset" in after:
        if spec.spike is None:
            raise SpecError("[after_output] reset needs a [spike] section", path, index.key("after_output", "reset"))
        spec.after_reset = _equation_block(after["reset"], "after_output", "reset", index, path)
    if "rate" in data:
        rate = data["rate"]
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
    if "training" in data:
        if spec.spike is None:
            raise SpecError("[training] is for spiking neurons", path, index.section("training"))
        spec.training = _training(data["training"], index, path)
    return spec


SURROGATES = ("fast_sigmoid", "arctan", "sigmoid", "triangle", "exponential", "gaussian", "straight_through")
TRAINING_DEFAULTS = {"mode": "rate", "surrogate": "fast_sigmoid", "scale": 10.0, "smoothing": 0.0}


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


TABLE_DEFAULTS = {"low": -10.0, "high": 100.0, "points": 256, "settle": 0.2, "duration": 1.0, "dt": 0.001}


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
