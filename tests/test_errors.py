"""Bad specs: a ``path:line: message`` on stderr, exit code 2, nothing written.

Also hostile specs: nothing in a spec may run code at build time or at import time.
"""

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, import_file, line_of
from neurogen.build import build
from neurogen.cli import main

BASE = textwrap.dedent(
    '''\
    [neuron]
    name = "Foo"

    [parameters]
    tau = 0.02

    [state]
    voltage = 0

    [dynamics]
    equations = """
    dvoltage/dt = (J - voltage) / tau
    """

    [spike]
    condition = "voltage > 1"
    reset = ["voltage = 0"]
    '''
)

TWO_STATES = BASE.replace("voltage = 0\n\n[dyn", "voltage = 0\nw = 0\n\n[dyn").replace(
    "dvoltage/dt = (J - voltage) / tau\n",
    "dvoltage/dt = (J - voltage) / tau\n# the adaptation\n\ndw/dt = -w / tau_w\n",
)


def _edit(old, new, text=BASE):
    assert old in text, old
    return text.replace(old, new, 1)


# id -> (spec text, message fragment, line: a fragment of the offending line, or an int)
CASES = {
    "unknown-symbol": (_edit("/ tau\n", "/ tau_m\n"), "unknown symbol 'tau_m' in dvoltage/dt", "dvoltage/dt"),
    "unknown-symbol-later-line": (TWO_STATES, "unknown symbol 'tau_w' in dw/dt", "dw/dt"),
    "unknown-symbol-list-reset": (
        _edit('reset = ["voltage = 0"]', 'reset = [\n  "voltage = v_reset",\n]'),
        "unknown symbol 'v_reset'",
        "v_reset",
    ),
    "unknown-symbol-condition": (_edit('"voltage > 1"', '"voltage > theta"'), "unknown symbol 'theta' in spike condition", "theta"),
    "unknown-function": (_edit("(J - voltage)", "(foo(J) - voltage)"), "unknown function 'foo'", "dvoltage/dt"),
    "bad-toml": (_edit('name = "Foo"', 'name = "Foo'), "invalid TOML", 'name = "Foo'),
    "bad-toml-later": (_edit("tau = 0.02", "tau = 0.02 0.03"), "invalid TOML", "tau = 0.02 0.03"),
    "missing-neuron": (_edit('[neuron]\nname = "Foo"\n', ""), "missing section [neuron]", 1),
    "unknown-method": (_edit("/ tau\n", "/ tau : rk5\n"), "unknown method 'rk5'", "dvoltage/dt"),
    "parameter-not-identifier": (_edit("tau = 0.02", 'tau = 0.02\n"2x" = 1'), "parameter name '2x' is not a valid identifier", '"2x"'),
    "parameter-keyword": (_edit("tau = 0.02", "tau = 0.02\nlambda = 1"), "parameter name 'lambda' is a Python keyword", "lambda"),
    "state-keyword": (_edit("voltage = 0\n", "voltage = 0\nclass = 0\n"), "'class' is a Python keyword", "class = 0"),
    "unknown-section": (BASE + "\n[foo]\nx = 1\n", "unknown section [foo]", "[foo]"),
    "import": (
        _edit("/ tau\n", "/ tau + __import__('os').system('touch PWNED')\n"),
        "only calls of plain function names are allowed in dvoltage/dt",
        "dvoltage/dt",
    ),
    "import-name": (_edit("(J - voltage)", "(__import__('os') - voltage)"), "'__import__'", "dvoltage/dt"),
    "dunder-name": (_edit("(J - voltage)", "(__builtins__ - voltage)"), "name '__builtins__' not allowed", "dvoltage/dt"),
    "eval": (_edit('"voltage > 1"', '''"voltage > eval('1')"'''), "unknown function 'eval'", "eval"),
    "attribute": (_edit("(J - voltage)", "(J.real - voltage)"), "attribute access not allowed in dvoltage/dt", "dvoltage/dt"),
    "subscript": (_edit("(J - voltage)", "(J[0] - voltage)"), "subscripts not allowed in dvoltage/dt", "dvoltage/dt"),
    "lambda": (
        _edit("[dynamics]", '[expressions]\nf = "lambda: J"\n\n[dynamics]'),
        "lambdas not allowed in f",
        'f = "lambda',
    ),
    # the ':' of a lambda reads as the method separator; rejected all the same
    "lambda-in-equation": (
        _edit("(J - voltage)", "((lambda: 1)() - voltage)"),
        "unknown method '1)() - voltage) / tau'",
        "dvoltage/dt",
    ),
    "string": (_edit('"voltage > 1"', '''"voltage > 'a'"'''), "strings not allowed in spike condition", "condition"),
    "xor": (_edit("(J - voltage)", "(J ^ 2 - voltage)"), "use ** for powers", "dvoltage/dt"),
    "keyword-argument": (_edit("(J - voltage)", "(max(J, x=0) - voltage)"), "keyword arguments not allowed in max()", "dvoltage/dt"),
    "comprehension": (_edit("(J - voltage)", "(max([x for x in J], 0) - voltage)"), "comprehensions not allowed", "dvoltage/dt"),
    "not-a-state": (_edit("dvoltage/dt", "du/dt"), "'u', which is not a declared state", "du/dt"),
    "distribution-code": (
        _edit("voltage = 0\n", "voltage = \"__import__('os').system('touch PWNED')\"\n"),
        "initial value of state voltage",
        "voltage = \"__import__",
    ),
    "binds-elsewhere": (_edit('name = "Foo"', 'name = "Foo"\nbinds = "os.system"'), "binds may only name classes in", "binds"),
    "duplicate-name": (_edit("voltage = 0\n", "voltage = 0\ntau = 1\n"), "'tau' is already declared", "tau = 1"),
    "no-output": (BASE.split("[spike]")[0], "missing section [spike] or [output]", 1),
}


def _write(tmp_path, text, name="bad"):
    spec = tmp_path / f"{name}.toml"
    spec.write_text(text, encoding="utf-8")
    return spec


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_spec(tmp_path, capsys, monkeypatch, case):
    text, message, where = CASES[case]
    monkeypatch.chdir(tmp_path)  # anything a spec managed to run would land here
    spec = _write(tmp_path, text)
    out = tmp_path / "out"
    assert main(["build", str(spec), "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = _error_lines(captured.err)
    assert len(lines) == 1, captured.err
    line = where if isinstance(where, int) else line_of(text, where)
    m = re.fullmatch(r"error: (.+):(\d+): (.+)", lines[0])
    assert m, lines[0]
    assert m.group(1) == str(spec)
    assert int(m.group(2)) == line, lines[0]
    assert message in m.group(3)
    assert not out.exists()  # nothing written, not even the package
    assert not (tmp_path / "PWNED").exists()


def test_bad_spec_into_existing_output_dir(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    spec = _write(tmp_path, CASES["unknown-symbol"][0])
    assert main(["build", str(spec), "-o", str(out), "--force"]) == 2
    assert "unknown symbol 'tau_m'" in capsys.readouterr().err
    assert not (out / "bad.py").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files


def test_code_in_expressions_never_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    payloads = [
        "__import__('os').system('touch PWNED')",
        "().__class__.__bases__[0].__subclasses__()",
        "exec('open(\"PWNED\", \"w\")')",
        "open('PWNED', 'w')",
        "[open('PWNED', 'w') for _ in J]",
    ]
    for i, payload in enumerate(payloads):
        text = _edit("(J - voltage)", f"(J - voltage + {payload})")
        spec = _write(tmp_path, text, name=f"bad{i}")
        for argv in (["build", str(spec), "-o", "out"], ["check", str(spec)], ["show", str(spec)]):
            assert main(argv) == 2, (payload, argv)
            err = capsys.readouterr().err
            assert err.startswith(f"error: {spec}:"), err
            assert "Traceback" not in err
    assert not (tmp_path / "PWNED").exists()
    assert not (tmp_path / "out").exists()


def test_python_m_neurogen_build(tmp_path):
    """The real command line: exit code 2, a clean message, no module."""
    spec = _write(tmp_path, CASES["import"][0])
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "neurogen", "build", "bad.toml", "-o", "out"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"error: bad.toml:{line_of(CASES['import'][0], 'dvoltage/dt')}:" in proc.stderr
    assert not list(tmp_path.glob("out/*.py"))
    assert not (tmp_path / "PWNED").exists()


def test_check_command(tmp_path, capsys, monkeypatch):
    spec = _write(tmp_path, CASES["unknown-symbol"][0])
    assert main(["check", str(spec)]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:{line_of(CASES['unknown-symbol'][0], 'dvoltage/dt')}: unknown symbol 'tau_m'" in err
    assert not list(tmp_path.glob("*.py"))

    monkeypatch.chdir(REPO)
    assert main(["check", "-q", "specs"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == "" or "error" not in captured.err


def test_no_specs_found(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["check", str(empty)]) == 2
    assert "no specs found" in capsys.readouterr().err
    assert main(["build", str(empty), "-o", str(tmp_path / "out")]) == 2
    assert "no specs found" in capsys.readouterr().err


GOOD_RELU = textwrap.dedent(
    """\
    [neuron]
    name = "Relu"

    [parameters]
    amplitude = { value = 1, low = 0, low_open = true }

    [output]
    expression = "amplitude * max(J, 0)"
    """
)
GOOD_SIG = textwrap.dedent(
    """\
    [neuron]
    name = "Sig"

    [output]
    expression = "sigmoid(J)"
    """
)


def test_bad_spec_among_good_ones(tmp_path, capsys):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a_relu.toml").write_text(GOOD_RELU)
    (specs / "b_bad.toml").write_text(CASES["unknown-symbol"][0])
    (specs / "c_sig.toml").write_text(GOOD_SIG)
    out = tmp_path / "out"
    assert main(["build", str(specs), "-o", str(out)]) == 2
    captured = capsys.readouterr()
    errors = _error_lines(captured.err)
    assert len(errors) == 1 and "b_bad.toml" in errors[0] and "unknown symbol 'tau_m'" in errors[0]
    assert "a_relu.toml" in captured.out and "c_sig.toml" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["__init__.py", "a_relu.py", "c_sig.py"]
    init = (out / "__init__.py").read_text()
    assert "a_relu" in init and "c_sig" in init and "b_bad" not in init
    # the good ones are real modules
    for name in ("a_relu", "c_sig"):
        assert import_file(out / f"{name}.py").NEURON_TYPE.__name__ == {"a_relu": "Relu", "c_sig": "Sig"}[name]


# ----------------------------------------------------------------------------
# text that reaches the generated module verbatim


def test_doc_text_cannot_escape_the_docstring(tmp_path, build_module, monkeypatch):
    monkeypatch.chdir(tmp_path)
    payload = '""" + __import__("os").system("touch PWNED") + """ \\\\ \\" \'\'\''
    text = textwrap.dedent(
        """\
        [neuron]
        name = "Doc"
        doc = '''Nice.
        \"\"\"
        import os; os.system("touch PWNED")
        \"\"\"'''
        references = [{ref}]

        [parameters]
        amplitude = {{ value = 1, doc = {ref} }}

        [output]
        expression = "amplitude * J"
        """
    ).format(ref=_toml_string(payload))
    mod = build_module(tmp_path, text)
    assert not (tmp_path / "PWNED").exists()
    doc = mod.NEURON_TYPE.__doc__
    assert 'import os; os.system("touch PWNED")' in doc
    assert '__import__("os")' in doc


def _toml_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_spec_path_cannot_inject_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = Path("a\nimport sys; sys.exit('injected') #")
    evil.mkdir()
    (evil / "m.toml").write_text(GOOD_RELU)
    results = build([evil / "m.toml"], "out", force=True)
    assert results[0].status == "built"
    source = (tmp_path / "out" / "m.py").read_text()
    tree = ast.parse(source)
    # nothing but the docstring and imports may come first; no injected statement
    assert ast.get_docstring(tree) is not None
    assert "sys.exit" not in ast.unparse(tree)


@pytest.mark.parametrize(
    "parameter, default",
    [("big = inf", np.inf), ("big = { value = 1, high = inf }", 1.0), ("big = { value = -inf }", -np.inf)],
)
def test_infinite_parameter(tmp_path, parameter, default):
    """Infinite values are allowed (docs/spec-format.md) and reach the generated class."""
    text = textwrap.dedent(
        f"""\
        [neuron]
        name = "Inf"

        [parameters]
        {parameter}

        [output]
        expression = "max(J, 0) + 0 * big"
        """
    )
    spec = _write(tmp_path, text, name="inf_param")
    results = build([spec], tmp_path / "out", force=True)
    assert results[0].status == "built", results[0].error
    cls = import_file(results[0].module_path).NEURON_TYPE
    assert cls().big == default
    assert cls(big=1e300).big == 1e300  # an infinite bound does not reject finite values


@pytest.mark.parametrize(
    "old, new, where",
    [
        ("tau = 0.02", "tau = { value = 0.02, foo = 1 }", "foo = 1"),
        ("[parameters]\ntau = 0.02", "[parameters.tau]\nvalue = 0.02\nfoo = 1", "foo = 1"),
        ("[parameters]\ntau = 0.02", "[parameters.tau]\nvalue = \"fast\"", "value ="),
    ],
    ids=["inline-table", "sub-table", "sub-table-value"],
)
def test_errors_in_parameter_tables_have_lines(tmp_path, capsys, old, new, where):
    text = _edit(old, new)
    spec = _write(tmp_path, text)
    assert main(["check", str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    m = re.fullmatch(r"error: (.+?):(\d+): (.+)", err)
    assert m, err
    assert int(m.group(2)) == line_of(text, where), err


# ----------------------------------------------------------------------------
# expressions that are undefined, or that SymPy cannot compare


def _rate_spec(equation, output):
    return textwrap.dedent(
        f"""\
        [neuron]
        name = "C"

        [state]
        x = 0

        [dynamics]
        equations = "{equation}"

        [output]
        expression = "{output}"
        """
    )


@pytest.mark.parametrize(
    "equation, output, where",
    [
        ("dx/dt = x / 0", "x", "equations"),
        ("dx/dt = -x + 1 / 0.0", "x", "equations"),
        ("dx/dt = -x", "J / 0", "expression"),
        ("dx/dt = -x + log(0)", "x", "equations"),
    ],
    ids=["ode-int-zero", "ode-float-zero", "output", "log-zero"],
)
def test_undefined_expression_is_an_error(tmp_path, capsys, equation, output, where):
    text = _rate_spec(equation, output)
    spec = _write(tmp_path, text)
    out = tmp_path / "out"
    assert main(["build", str(spec), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:{line_of(text, where)}:" in err and "undefined" in err, err
    assert not out.exists()


def test_uncomparable_constants_give_no_traceback(tmp_path, capsys):
    """``sqrt(-1)`` is imaginary: ``max`` of it is a clear error at the equation's line."""
    text = _rate_spec("dx/dt = -x * max(sqrt(-1), 1)", "x")
    spec = _write(tmp_path, text)
    assert main(["check", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {spec}:{line_of(text, 'equations')}: cannot use expression in dx/dt"), err
