"""Property-based tests of the compiler (hypothesis, derandomized).

(a) mutations of the bundled specs: compiling any of them either works or raises a
    located :class:`SpecError`, never anything else, and a failing build writes
    nothing;
(b) random valid specs (rate and 1-state spiking models from a small grammar): the
    generated NumPy ``step`` and NengoDL builder agree (``slow``);
(c) the expression translator alone, on random expressions including forbidden
    constructs: a SymPy expression or a SpecError.

A per-example time limit turns a hanging compile into a failure instead of a hung
test run.
"""

import contextlib
import copy
import itertools
import math
import re
import signal
import string
import tempfile
import textwrap
import threading
import tomllib
import warnings
from pathlib import Path

import nengo
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from conftest import REPO, builder_registrations_kept, import_file, line_of, nengo_precision_kept, toml_string
from neurogen.build import build, compile_spec
from neurogen.errors import SpecError
from neurogen.spec import Text
from neurogen.symbolic import FUNCTIONS, parse_expression

SPECS_DIR = REPO / "specs"
SPEC_TEXTS = {p.stem: p.read_text(encoding="utf-8") for p in sorted(SPECS_DIR.glob("*.toml"))}
SPEC_DATA = {name: tomllib.loads(text) for name, text in SPEC_TEXTS.items()}
SPEC_NAMES = sorted(SPEC_TEXTS)

#: seconds one example may take before it counts as a hang
TIME_LIMIT = 60  # generous: a guard against hangs, not a speed test (CI machines are slow)

FUZZ = dict(deadline=None, derandomize=True, database=None, print_blob=True)


def say(message):
    """``hypothesis.note`` inside a property test, nothing outside one."""
    try:
        note(message)
    except InvalidArgument:
        pass


@contextlib.contextmanager
def time_limit(seconds=TIME_LIMIT, what="example"):
    """Fail (instead of hanging) when the body runs longer than ``seconds``."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expired(signum, frame):
        raise TimeoutError(f"{what} took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ----------------------------------------------------------------------------
# writing TOML (tomllib only reads it)




def toml_key(key):
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(type(value))


def dump_toml(data):
    """TOML text for ``data``: plain values first, then one [section] per table."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section, table in data.items():
        if isinstance(table, dict):
            lines.append(f"\n[{toml_key(section)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def test_dump_toml_round_trips():
    for name, data in SPEC_DATA.items():
        assert tomllib.loads(dump_toml(data)) == data, name


# ----------------------------------------------------------------------------
# (a) mutations of the bundled specs

_workdirs = itertools.count()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def paths_of(data, prefix=()):
    """Every (path, value) in nested dicts/lists."""
    found = []
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return found
    for key, value in items:
        found.append((prefix + (key,), value))
        found += paths_of(value, prefix + (key,))
    return found


def _parent(data, path):
    for key in path[:-1]:
        data = data[key]
    return data


# garbage for expressions: printable, unicode, long, huge numbers, deep nesting
NUMBER_TEXT = st.sampled_from(
    ["1e400", "-1e400", "10**400", "9" * 400, "1e-400", "10**-400", "1e308*10", "0x10", "1_000", "0b101",
     "1.5e+308", "nan", "inf", "-inf", "1/0", "0/0", "log(0)", "sqrt(-1)", "0**-1", "(-8)**0.5"]
)
LONG_TEXT = st.builds(
    lambda unit, n: (unit * n)[:20000],
    st.sampled_from(["J + ", "(", ")", "-", "J*", "exp(", "x", "é", "\\", '"', "'", "# ", "\n"]),
    st.integers(1, 20000),
)
NESTED = st.builds(
    lambda open_, close, n: open_ * n + "J" + close * n,
    st.sampled_from(["(", "tanh(", "-(", "max(1, ", "where(J > 0, 1, ", "[", "{"]),
    st.sampled_from([")", "]", ""]),
    # deeper nesting is test_deep_expressions_are_spec_errors
    st.integers(1, 150),
)
PAYLOADS = st.sampled_from(
    ["__import__('os').system('touch PWNED')", "open('PWNED', 'w')", "J.real", "J[0]", "lambda: J",
     "(x := 1)", "[x for x in J]", "f'{J}'", "max(J, key=1)", "J ^ 2", "exec('1')", "().__class__",
     "import os", "J if J else J", "*J", "J; J", "J\nJ", "", " ", "#", "J = 1", "dv/dt = 1", "v > 1 > J"]
)
GARBAGE = st.one_of(
    st.text(string.printable, max_size=60),
    st.text(max_size=40),  # any unicode (no surrogates)
    NUMBER_TEXT,
    LONG_TEXT,
    NESTED,
    PAYLOADS,
    st.builds(lambda a, b: f"{a} {b}", PAYLOADS, st.text(string.printable, max_size=10)),
)
ANY_VALUE = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=30),
        GARBAGE,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(string.ascii_letters + "_-", min_size=1, max_size=8), inner, max_size=3),
    ),
    max_leaves=6,
)


def retyped(value):
    """A strategy for a value of another type than ``value``."""
    options = [
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(),
        st.text(max_size=20),
        st.lists(st.integers(0, 3), max_size=2),
        st.dictionaries(st.sampled_from(["value", "low", "x"]), st.integers(0, 3), max_size=2),
    ]
    kinds = [bool, int, float, str, list, dict]
    return st.one_of([o for o, k in zip(options, kinds) if type(value) is not k])


@st.composite
def structural_mutation(draw):
    """A bundled spec with a key/section deleted, a value retyped or garbage in a string."""
    name = draw(st.sampled_from(SPEC_NAMES))
    data = copy.deepcopy(SPEC_DATA[name])
    paths = paths_of(data)
    kind = draw(st.sampled_from(["delete", "retype", "garbage", "garbage", "any"]))
    if kind == "garbage":
        strings = [p for p, v in paths if isinstance(v, str)]
        path = draw(st.sampled_from(strings))
        value = draw(GARBAGE)
        # sometimes keep the original and append/prepend the garbage
        original = _parent(data, path)[path[-1]]
        how = draw(st.sampled_from(["replace", "append", "prepend"]))
        value = {"replace": value, "append": original + value, "prepend": value + original}[how]
        _parent(data, path)[path[-1]] = value
    else:
        path, old = draw(st.sampled_from(paths))
        parent = _parent(data, path)
        if kind == "delete":
            del parent[path[-1]]
        elif kind == "retype":
            parent[path[-1]] = draw(retyped(old))
        else:
            parent[path[-1]] = draw(ANY_VALUE)
    say(f"{name}: {kind} at {path}")
    return name, dump_toml(data).encode("utf-8")


TOML_VALUES = [
    "1", "-1", "1e400", "inf", "nan", "true", "[]", "{}", '""', '"J"', '[1, "a"]', '{ value = "x" }',
    "10000000000000000000000", '"""', "'''", '"\\\\"',
]


@st.composite
def text_mutation(draw):
    """A bundled spec's text truncated, with random bytes inserted, or lines changed."""
    name = draw(st.sampled_from(SPEC_NAMES))
    text = SPEC_TEXTS[name]
    kind = draw(st.sampled_from(["truncate", "insert-bytes", "insert-text", "delete-line", "duplicate-line", "swap-value"]))
    raw = text.encode("utf-8")
    if kind == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif kind == "insert-bytes":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    elif kind == "insert-text":
        at = draw(st.integers(0, len(text)))
        raw = (text[:at] + draw(st.one_of(st.text(max_size=10), PAYLOADS, NUMBER_TEXT)) + text[at:]).encode("utf-8")
    else:
        lines = text.splitlines(keepends=True)
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "delete-line":
            del lines[i]
        elif kind == "duplicate-line":
            lines.insert(i, lines[i])
        else:  # the text after the first '=' of a line becomes another TOML value
            head, sep, _ = lines[i].partition("=")
            if sep:
                lines[i] = f"{head}= {draw(st.sampled_from(TOML_VALUES))}\n"
        raw = "".join(lines).encode("utf-8")
    say(f"{name}: {kind}")
    return name, raw


def check_spec_bytes(workdir, raw):
    """Compile ``raw`` as a spec: success or a located SpecError; a failed build writes nothing."""
    path = workdir / "fuzzed.toml"
    path.write_bytes(raw)
    n_lines = raw.count(b"\n") + 1
    try:
        with time_limit(what="compile_spec"):
            compile_spec(path)
    except SpecError as e:
        say(str(e))
        event("SpecError")
        assert str(e).startswith(str(path)), str(e)
        assert e.line is None or 1 <= e.line <= n_lines, (e.line, n_lines, str(e))
        assert e.message and "Traceback" not in e.message
        out = workdir / f"out{next(_workdirs)}"
        with time_limit(what="build"):
            results = build([path], out)
        assert [r.status for r in results] == ["error"]
        assert not out.exists(), sorted(p.name for p in out.iterdir())
        return False
    event("compiled")
    return True


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], **FUZZ)
@given(case=structural_mutation())
def test_structural_mutations(workdir, case):
    name, raw = case
    check_spec_bytes(workdir, raw)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], **FUZZ)
@given(case=text_mutation())
def test_text_mutations(workdir, case):
    name, raw = case
    check_spec_bytes(workdir, raw)


EXPRESSION_SECTIONS = ("state", "expressions", "dynamics", "spike", "output", "after_output", "rate")
#: (spec, path) of every string in a bundled spec that holds an expression or equation
EXPRESSION_SLOTS = [
    (name, path)
    for name in SPEC_NAMES
    for path, value in paths_of(SPEC_DATA[name])
    if isinstance(value, str) and path[0] in EXPRESSION_SECTIONS and path[-1] != "spike_time"
]
EQUATION_KEYS = ("equations", "reset")


def put_garbage(original, path, garbage):
    """``garbage`` in place of an expression; for equations, in place of the first right-hand side."""
    if any(key in path for key in EQUATION_KEYS) and "=" in original:
        lines = original.strip().split("\n")
        i = next(i for i, line in enumerate(lines) if "=" in line)
        lines[i] = lines[i].split("=", 1)[0] + "= " + garbage
        return "\n".join(lines)
    return garbage


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], **FUZZ)
@given(slot=st.sampled_from(EXPRESSION_SLOTS), garbage=GARBAGE)
@example(slot=("sigmoid", ("output", "expression")), garbage="1" + "0" * 400)
@example(slot=("sigmoid", ("output", "expression")), garbage="(" * 300 + "J" + ")" * 300)
@example(slot=("sigmoid", ("output", "expression")), garbage="J" + " " * 19999)
def test_garbage_in_expressions(workdir, slot, garbage):
    name, path = slot
    data = copy.deepcopy(SPEC_DATA[name])
    parent = _parent(data, path)
    parent[path[-1]] = put_garbage(parent[path[-1]], path, garbage)
    check_spec_bytes(workdir, dump_toml(data).encode("utf-8"))


# Deep expressions that the parser accepts but later stages recurse too deeply into;
# each must be a SpecError like the deeper ones the parser rejects itself.
DEEP = [
    "+".join(["J"] * 300),
    "*".join(["(J+1)"] * 300),
    "-" * 400 + "J",
    "**".join(["J"] * 300),
    "where(J > 0, " * 200 + "J" + ", 1)" * 200,
]


@pytest.mark.parametrize("expr", DEEP, ids=["sum", "product", "negations", "powers", "where"])
def test_deep_expressions_are_spec_errors(workdir, expr):
    data = copy.deepcopy(SPEC_DATA["sigmoid"])
    data["output"]["expression"] = expr
    path = workdir / "deep.toml"
    path.write_text(dump_toml(data))
    with time_limit(), pytest.raises(SpecError, match=r"expression in output is too large") as info:
        compile_spec(path)
    assert info.value.line == line_of(path.read_text(), "expression =")


# Constant expressions SymPy evaluates exactly: the compiler must stay fast
@pytest.mark.parametrize("expr", ["10**10**10", "9**9**9"])
def test_power_towers_compile_quickly(workdir, expr):
    data = copy.deepcopy(SPEC_DATA["sigmoid"])
    data["output"]["expression"] = f"J + {expr}"
    path = workdir / "tower.toml"
    path.write_text(dump_toml(data))
    with time_limit(20, "compiling a power tower"), pytest.raises(SpecError) as info:
        compile_spec(path)
    assert str(info.value) == f"{path}:{line_of(path.read_text(), 'expression =')}: constant power out of range in output"


# ----------------------------------------------------------------------------
# (c) the expression translator alone

SYMBOLS = {name: sp.Symbol(name, real=True) for name in ("J", "v", "tau", "a")}
NAMES = st.sampled_from(
    ["J", "v", "tau", "a", "pi", "inf", "unknown", "x", "__class__", "_x", "__builtins__", "exp", "where",
     "None", "True", "False", "self", "os", "np"]
)
NUMBERS = st.one_of(
    st.integers(0, 10**6).map(str),
    st.floats(0, 1e6, allow_nan=False).map(repr),
    st.sampled_from(["0", "1", "0.5", "1e400", "1e-400", "9" * 320, "0x1F", "1_0", "1j", "1e308", "0.0", "00"]),
)
ATOMS = st.one_of(
    NAMES,
    NUMBERS,
    st.sampled_from(["'s'", 'b"x"', "f'{J}'", "...", "[]", "()", "{}", "[J]", "(J,)", "{J}", "{J: 1}"]),
)
ALLOWED_FUNCS = sorted(FUNCTIONS)
OTHER_FUNCS = ["eval", "exec", "open", "__import__", "getattr", "print", "sum", "float", "tau", "J", "pi"]
BINOPS = ["+", "-", "*", "/", "%", "//", "^", "@", "<<", ">>", "&", "|"]
COMPARES = ["<", "<=", ">", ">=", "==", "!=", " is ", " in ", " not in "]


def _compound(inner):
    funcs = st.sampled_from(ALLOWED_FUNCS * 3 + OTHER_FUNCS)
    args = st.lists(inner, min_size=0, max_size=4)
    return st.one_of(
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(BINOPS), inner),
        # powers only to small exponents (power towers: see test_power_towers_compile_quickly)
        st.builds(lambda a, e: f"({a})**{e}", inner, st.sampled_from(["2", "3", "-1", "0.5", "-2", "J", "a", "(-1)"])),
        st.builds(lambda op, a: f"{op}{a}", st.sampled_from(["-", "+", "~", "not "]), inner),
        st.builds(lambda a, op, b: f"{a}{op}{b}", inner, st.sampled_from(COMPARES), inner),
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(["and", "or"]), inner),
        st.builds(lambda f, xs: f"{f}({', '.join(xs)})", funcs, args),
        st.builds(lambda f, a: f"{f}({a}, key={a})", funcs, inner),
        st.builds(lambda f, a: f"{f}(*{a})", funcs, inner),
        st.builds(lambda a: f"({a})", inner),
        st.builds(lambda a, attr: f"{a}.{attr}", inner, st.sampled_from(["real", "__class__", "x", "exp"])),
        st.builds(lambda a, b: f"{a}[{b}]", inner, inner),
        st.builds(lambda a: f"lambda: {a}", inner),
        st.builds(lambda a, b, c: f"{a} if {b} else {c}", inner, inner, inner),
        st.builds(lambda a: f"(x := {a})", inner),
        st.builds(lambda a: f"[x for x in {a}]", inner),
        st.builds(lambda a, b, c: f"where({a}, {b}, {c})", inner, inner, inner),
        st.builds(lambda a, b, c: f"clip({a}, {b}, {c})", inner, inner, inner),
    )


EXPRESSIONS = st.recursive(ATOMS, _compound, max_leaves=12)

# the whitelist only, with the right number of arguments: mostly accepted
VALID_ATOMS = st.one_of(
    st.sampled_from(["J", "v", "tau", "a", "pi", "inf"]),
    st.integers(0, 100).map(str),
    st.floats(0, 100, allow_nan=False).map(lambda x: repr(round(x, 4))),
)
ARITY = {name: n for name, (_, n, _) in FUNCTIONS.items()}


def _valid_compound(inner):
    condition = st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(["<", "<=", ">", ">="]), inner)
    conditions = st.one_of(
        condition,
        st.builds(lambda a, op, b: f"({a}) {op} ({b})", condition, st.sampled_from(["and", "or"]), condition),
        st.builds(lambda a: f"not ({a})", condition),
    )
    return st.one_of(
        st.builds(lambda a, op, b: f"({a}) {op} ({b})", inner, st.sampled_from("+-*/"), inner),
        st.builds(lambda a, e: f"({a})**{e}", inner, st.sampled_from(["2", "3", "0.5", "-1", "a", "J"])),
        st.builds(lambda a: f"-({a})", inner),
        st.builds(
            lambda f, xs: f"{f}({', '.join(xs)})",
            st.sampled_from(sorted(n for n in ARITY if n != "where")),
            st.lists(inner, min_size=3, max_size=3),
        ).map(lambda t: _fix_arity(t)),
        st.builds(lambda c, a, b: f"where({c}, {a}, {b})", conditions, inner, inner),
    )


def _fix_arity(call):
    """Keep only as many arguments as the function takes (split at top-level commas)."""
    name, _, rest = call.partition("(")
    args, depth, current = [], 0, ""
    for ch in rest[:-1]:
        if ch == "," and depth == 0:
            args.append(current.strip())
            current = ""
            continue
        depth += ch in "(["
        depth -= ch in ")]"
        current += ch
    args.append(current.strip())
    return f"{name}({', '.join(args[: ARITY[name]])})"


VALID_EXPRESSIONS = st.recursive(VALID_ATOMS, _valid_compound, max_leaves=10)
MUTATED_EXPRESSIONS = st.builds(
    lambda e, at, junk: e[:at] + junk + e[at:],
    EXPRESSIONS,
    st.integers(0, 200),
    st.sampled_from(["(", ")", ",", ":", "'", '"', "\\", "\n", "#", "=", "**", ".", "[", "]", "é", "\x00", "lambda"]),
)


def check_translation(source, boolean):
    text = Text(source, 7, "fuzz")
    try:
        with time_limit(30, "parse_expression"):
            value = parse_expression(text, dict(SYMBOLS), Path("fuzz.toml"), boolean=boolean)
    except SpecError as e:
        assert str(e).startswith("fuzz.toml:7: "), str(e)
        event("SpecError")
        return None
    event("parsed")
    assert isinstance(value, sp.Basic), value
    assert value.free_symbols <= set(SYMBOLS.values()), value
    return value


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], **FUZZ)
@given(
    source=st.one_of(EXPRESSIONS, VALID_EXPRESSIONS, VALID_EXPRESSIONS, MUTATED_EXPRESSIONS, st.text(max_size=40)),
    boolean=st.booleans(),
)
@example(source="__import__('os').system('touch PWNED')", boolean=False)
@example(source="J > 0", boolean=True)
def test_translator_returns_sympy_or_spec_error(source, boolean):
    say(repr(source))
    check_translation(source, boolean)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], **FUZZ)
@given(source=st.one_of(EXPRESSIONS, VALID_EXPRESSIONS))
def test_translator_accepts_only_whitelisted_syntax(source):
    """Whatever parses has only whitelisted names, calls and operators in its source."""
    import ast

    value = check_translation(source, False)
    if value is None:
        return
    tree = ast.parse(source.strip(), mode="eval")
    for node in ast.walk(tree):
        assert not isinstance(
            node,
            (ast.Attribute, ast.Subscript, ast.Lambda, ast.NamedExpr, ast.ListComp, ast.IfExp, ast.JoinedStr, ast.Starred, ast.keyword),
        ), ast.dump(node)
        if isinstance(node, ast.Name):
            assert node.id in SYMBOLS or node.id in FUNCTIONS or node.id in ("pi", "inf"), node.id
        if isinstance(node, ast.Constant):
            assert type(node.value) in (int, float), node.value
        if isinstance(node, ast.BinOp):
            assert isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)), ast.dump(node)


# Numbers used as conditions: SymPy symbols are Booleans, so where(J, ...) slips
# through, and the NengoDL builder then fails (tf.where on a float tensor).
@pytest.mark.parametrize("source", ["where(J, 1, 2)", "J and J", "where(tau, 1, 2)", "where(J and J > 0, 1, 2)"])
def test_number_as_condition_is_rejected(source):
    with pytest.raises(SpecError, match="condition"):
        parse_expression(Text(source, 1, "output"), dict(SYMBOLS), Path("x.toml"))


@pytest.mark.parametrize("source", ["J + 10**400", "J + (10**300)**2", "J + 1e308*10", "J + (-8)**(1/3)", "J + exp(1000)"])
def test_non_finite_constants_are_rejected(source):
    with pytest.raises(SpecError):
        parse_expression(Text(source, 1, "output"), dict(SYMBOLS), Path("x.toml"))


# ----------------------------------------------------------------------------
# (b) random valid specs: the NumPy step and the NengoDL builder agree

PARAM_NAMES = ["alpha", "beta", "kappa"]
# functions only of subexpressions that read J or a parameter (constant-only calls:
# see test_constant_function_calls_in_nengo_dl)
UNARY = [
    "exp(min({}, 20))",
    "exp(clip({}, -20, 3))",
    "tanh({})",
    "sigmoid({})",
    "softplus({})",
    "abs({})",
    "-({})",
    "log1p(abs({}))",
    "sqrt(abs({}) + 1)",
    "({})**2",
    "clip({}, -10, 10)**2",
    "heaviside({})",
]


def rate_expressions(params):
    """Random expressions over J and ``params``, built as ``(text, reads_a_variable)``."""
    variables = st.sampled_from(["J"] + list(params)).map(lambda x: (x, True))
    constants = st.one_of(
        st.floats(-3, 3, allow_nan=False).map(lambda x: repr(round(x, 3))),
        st.integers(1, 4).map(str),
    ).map(lambda x: (x, False))
    leaves = st.one_of(variables, variables, constants)

    def extend(inner):
        variable = inner.filter(lambda t: t[1])
        return st.one_of(
            st.builds(lambda f, a: (f.format(a[0]), True), st.sampled_from(UNARY), variable),
            st.builds(lambda op, a, b: (f"({a[0]}) {op} ({b[0]})", a[1] or b[1]), st.sampled_from("+-*"), inner, inner),
            st.builds(lambda a, b: (f"({a[0]}) / (abs({b[0]}) + 1)", True), inner, variable),
            st.builds(lambda f, a, b: (f"{f}({a[0]}, {b[0]})", True), st.sampled_from(["max", "min"]), variable, inner),
            st.builds(
                lambda c, a, b, op: (f"where(J {op} {c}, {a[0]}, {b[0]})", True),
                st.floats(-2, 2, allow_nan=False).map(lambda x: repr(round(x, 2))),
                inner,
                inner,
                st.sampled_from([">", ">=", "<", "<="]),
            ),
        )

    expr = st.recursive(leaves, extend, max_leaves=6).filter(lambda t: re.search(r"\bJ\b", t[0]))
    # clip the result so products of exponentials stay finite
    return expr.map(lambda t: f"clip({t[0]}, -1e6, 1e6)")


@st.composite
def rate_spec(draw):
    params = PARAM_NAMES[: draw(st.integers(1, 3))]
    values = [draw(st.floats(0.1, 2.0).map(lambda x: round(x, 3))) for _ in params]
    expr = draw(rate_expressions(params))
    lines = ["[neuron]", 'name = "Fuzzed"', "", "[parameters]"]
    lines += [f"{p} = {v!r}" for p, v in zip(params, values)]
    lines += ["", "[output]", f"expression = {toml_string(expr)}", ""]
    return "\n".join(lines)


#: leaks that pull v back for either sign (a plain v*v leak lets negative drives
#: run v to -inf in finite time: a true blow-up of the ODE, not a compiler bug)
LEAKS = {"v": True, "0.5 * v": True, "v*abs(v)": False, "tanh(v)": False, "v - 0.1 * v*v": False}
#: drives affine in J: with a linear leak solved exactly, neurogen derives a closed-form
#: rate with sympy.solve, which cannot invert clip/min/max/where (see
#: test_closed_form_rate_of_a_clipped_drive)
AFFINE_DRIVES = ["J", "J * {p}", "{p} * J + 0.5", "(J - {p}) * 2", "J / {p} - 0.25"]


@st.composite
def spiking_spec(draw):
    params = PARAM_NAMES[: draw(st.integers(1, 2))]
    values = [draw(st.floats(0.1, 2.0).map(lambda x: round(x, 3))) for _ in params]
    leak = draw(st.sampled_from(sorted(LEAKS)))
    linear = LEAKS[leak]
    method = draw(st.sampled_from(["exact", "exponential_euler", "euler", "rk4", "auto"] if linear else ["euler", "rk4", "auto"]))
    if linear and method in ("exact", "auto"):
        drive = draw(st.sampled_from(AFFINE_DRIVES)).format(p=draw(st.sampled_from(params)))
    else:
        # 2 J dominates at large currents, so the neuron fires somewhere (a neuron that
        # never fires: test_neuron_that_never_fires_can_be_simulated)
        drive = "2 * J + " + draw(rate_expressions(params)).replace("-1e6, 1e6", "-20, 20")
    tau = draw(st.sampled_from([0.01, 0.02, 0.05]))
    refractory = draw(st.booleans())
    lines = ["[neuron]", 'name = "FuzzedSpiking"', "", "[parameters]"]
    lines += [f"{p} = {v!r}" for p, v in zip(params, values)]
    lines += [f"tau = {tau!r}"]
    if refractory:
        lines += ["tau_ref = 0.002"]
    lines += ["", "[state]", "v = 0"]
    if refractory:
        lines += ["ref = 0"]
    lines += ["", "[dynamics]", f'equations = "dv/dt = (({drive}) - {leak}) / tau : {method}"']
    lines += ["", "[spike]", 'condition = "v > 1"', 'reset = ["v = 0"]']
    if refractory:
        lines += ['refractory = { period = "tau_ref", state = "ref" }']
    lines.append("")
    return "\n".join(lines)


N_NEURONS, N_STEPS, DT = 8, 20, 0.001


def _compare_numpy_and_nengo_dl(text, inference_only=True):
    nengo_dl = pytest.importorskip("nengo_dl")
    say(text)
    with nengo_precision_kept(), tempfile.TemporaryDirectory() as tmp, builder_registrations_kept():
        path = Path(tmp) / "fuzzed.toml"
        path.write_text(text, encoding="utf-8")
        with time_limit(60, "building a random valid spec"):
            result = build([path], Path(tmp) / "out", force=True)[0]
        assert result.status == "built", f"{result.error}\n{text}"
        module = import_file(result.module_path)
        neuron_type = module.NEURON_TYPE()
        inputs = np.linspace(-2, 4, N_NEURONS)
        with nengo.Network(seed=0) as net:
            # inference only: the parity of `step` is under test, not the training rate
            nengo_dl.configure_settings(dtype="float64", inference_only=inference_only)
            stim = nengo.Node(lambda t: inputs * (1 + 0.5 * np.sin(2 * np.pi * 25 * t)))
            ens = nengo.Ensemble(
                N_NEURONS, 1, neuron_type=neuron_type, gain=nengo.dists.Choice([1]), bias=nengo.dists.Choice([0])
            )
            nengo.Connection(stim, ens.neurons, synapse=None)
            probes = {"output": nengo.Probe(ens.neurons)}
            probes.update({s: nengo.Probe(ens.neurons, s) for s in type(neuron_type).state})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with nengo.Simulator(net, dt=DT, progress_bar=False) as ref:
                ref.run_steps(N_STEPS)
            with nengo_dl.Simulator(net, dt=DT, progress_bar=False) as sim:
                sim.run_steps(N_STEPS)
        for key, probe in probes.items():
            expected, actual = ref.data[probe], sim.data[probe]
            assert np.all(np.isfinite(expected)), (key, expected)
            np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-8, err_msg=f"{key}\n{text}")


@pytest.mark.slow
@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow], **FUZZ)
@given(text=rate_spec())
def test_random_rate_models_agree(text):
    _compare_numpy_and_nengo_dl(text)


@pytest.mark.slow
@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow], **FUZZ)
@given(text=spiking_spec())
def test_random_spiking_models_agree(text):
    _compare_numpy_and_nengo_dl(text)


# Constant-only function calls and powers print as tf.math.exp(1), tf.math.square(2),
# tf.maximum(1, 2)...: TensorFlow makes int32/float32 tensors of them, which do not
# mix with the float64 (or, for ints, float32) signals.
CONSTANT_CALLS = ["J * exp(1)", "J * sqrt(2)", "J + max(1, 2)", "J * 2**2", "J + tanh(0.5)", "J / (abs(-2) + 1)"]


@pytest.mark.parametrize("expr", CONSTANT_CALLS)
def test_constant_function_calls_in_nengo_dl(expr):
    text = f'[neuron]\nname = "Const"\n\n[output]\nexpression = {toml_string(expr)}\n'
    _compare_numpy_and_nengo_dl(text)


CLIPPED_DRIVE = textwrap.dedent(
    """\
    [neuron]
    name = "Clipped"

    [parameters]
    tau = 0.01

    [state]
    v = 0

    [dynamics]
    equations = "dv/dt = (clip(J, -20, 50) - 0.5 * v) / tau : exact"

    [spike]
    condition = "v > 1"
    reset = ["v = 0"]
    """
)


@pytest.mark.parametrize(
    "drive, D, J, rtol",
    [
        ("clip(J, -20, 50)", lambda J: np.clip(J, -20, 50), [-30.0, 0.0, 0.4, 0.6, 1.0, 3.0, 30.0, 80.0], 0.03),
        # steep: the staircase's edges are closer than the table's nodes above J = 0.7
        ("J * exp(J) + tanh(J)", lambda J: J * np.exp(J) + np.tanh(J), [-30.0, 0.0, 0.3, 0.45, 0.6], 0.06),
    ],
    ids=["clip(J, -20, 50)", "J * exp(J) + tanh(J)"],
)
def test_closed_form_rate_of_a_clipped_drive(tmp_path, build_module, drive, D, J, rtol):
    """``dv/dt = (D(J) - v / 2) / tau``, reset to 0 at 1, no refractory period: the
    voltage first exceeds 1 after ``T = 2 tau log(2D / (2D - 1))`` (for ``D > 1/2``),
    so the step fires every ``ceil(T / dt)`` steps."""
    with time_limit():
        mod = build_module(tmp_path, CLIPPED_DRIVE.replace("clip(J, -20, 50)", drive), "clipped")
    J = np.array(J)
    d = D(J)
    with np.errstate(divide="ignore", invalid="ignore"):
        T = 2 * 0.01 * np.log(2 * d / np.where(d > 0.5, 2 * d - 1, 1))
        want = np.where(d > 0.5, 1 / (np.ceil(T / 0.001) * 0.001), 0.0)
    got = mod.NEURON_TYPE().rates(J, 1.0, 0.0)[:, 0]
    assert np.any(want > 0) and np.any(want == 0)
    # a tabulated staircase: interpolation between its nodes is off by a few percent
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-9)


SILENT = textwrap.dedent(
    """\
    [neuron]
    name = "Silent"

    [parameters]
    tau = 0.02

    [state]
    v = 0

    [dynamics]
    equations = "dv/dt = (min(J**2, 0.311) - v*abs(v)) / tau : euler"

    [spike]
    condition = "v > 1"
    reset = ["v = 0"]
    """
)


def test_neuron_that_never_fires_can_be_simulated():
    _compare_numpy_and_nengo_dl(SILENT, inference_only=False)


# Constant powers with a negative integer exponent print as np.power(10, -3) /
# tf.math.pow(10, -3): NumPy refuses integer bases with negative integer powers.
@pytest.mark.parametrize("expr", ["J + 10**-3", "J + 2**-2", "where(J > 10**-3, J, 0)"])
def test_negative_integer_power_of_a_constant(workdir, expr):
    path = workdir / "negpow.toml"
    path.write_text(f'[neuron]\nname = "NegPow"\n\n[output]\nexpression = {toml_string(expr)}\n')
    result = build([path], workdir / "out_negpow", force=True)[0]
    assert result.status == "built", result.error
    with builder_registrations_kept():
        module = import_file(result.module_path)
    J = np.array([-1.0, 0.5, 2.0])
    output = np.zeros(3)
    module.NEURON_TYPE().step(0.001, J, output)
    assert np.all(np.isfinite(output))


COUPLED_EXACT = textwrap.dedent(
    '''\
    [neuron]
    name = "Coupled"

    [parameters]
    tau = 0.02

    [state]
    v = 0
    w = 0

    [dynamics]
    equations = """
    dv/dt = (J - v + 0.5 * w) / tau : exact
    dw/dt = (v - w) / 0.1 : exact
    """

    [spike]
    condition = "v > 1"
    reset = ["v = 0"]
    '''
)


@pytest.mark.slow
def test_coupled_exact_system_compiles_quickly(workdir):
    path = workdir / "coupled.toml"
    path.write_text(COUPLED_EXACT)
    with time_limit(15, "compiling a coupled 2-state exact system"):
        compiled = compile_spec(path)
    assert compiled.program.methods == {"v": "exact", "w": "exact"}
