"""The parsed spec's dataclasses and vocabulary: sections, keys, methods, reserved
names, and the readers of single values (names, numbers, strings, equations) that
:mod:`neurogen.spec` applies section by section.
"""

import keyword
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SpecError

METHODS = ("auto", "exact", "exponential_euler", "euler", "rk4", "implicit")
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
    Exponential nengo_dl register check_dt settled_output linear_propagator rng substep_count crosses""".split()
)

SECTIONS = {
    "neuron": {"name", "binds", "also_binds", "doc", "negative", "references"},
    "parameters": None,
    "state": None,
    "expressions": None,
    "dynamics": {"input", "equations", "substeps", "max_step"},
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
    substeps: int = None  # [dynamics] substeps: sub-steps per simulator step
    max_step: float = None  # [dynamics] max_step: sub-steps of at most this many seconds
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
    from .symbolic import FUNCTIONS, RANDOM

    if name in FUNCTIONS or name in RANDOM:
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
    r"^\s*(?:d\s*(?P<ode>[A-Za-z_][A-Za-z0-9_]*)\s*/\s*dt\s*=|(?P<var>[^=:]+?)\s*(?P<op>[-+*/])?=)\s*"
    r"(?P<rhs>[^:]+?)\s*(?::\s*(?P<method>[^:]*?)\s*)?$"
)


def parse_equation(line_text, line, path, where):
    """Parse one ``dx/dt = expr : method``, ``x = expr`` or ``x += expr`` line
    (also ``-=``, ``*=``, ``/=``)."""
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
    rhs = m.group("rhs").strip()
    if m.group("op"):  # Brian2's `w += b`: the same as `w = w + (b)`
        rhs = f"{target} {m.group('op')} ({rhs})"
    return Equation(
        target=target,
        rhs=Text(rhs, line, label),
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


SURROGATES = ("fast_sigmoid", "arctan", "sigmoid", "triangle", "exponential", "gaussian", "straight_through")
TRAINING_DEFAULTS = {"mode": "rate", "surrogate": "fast_sigmoid", "scale": 10.0, "smoothing": 0.0}
TABLE_DEFAULTS = {"low": -10.0, "high": 100.0, "points": 256, "settle": 0.2, "duration": 1.0, "dt": 0.001}
