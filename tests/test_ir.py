"""The step IR and its backends: freed names, masked work, NumPy and TensorFlow
printing the same arithmetic, and the package's import structure."""

import ast
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from neurogen import ir
from neurogen.build import compile_spec

PACKAGE = Path(__file__).resolve().parent.parent / "neurogen"

# a spiking model with RK4 on two states (stages), a refractory period with linear
# spike time (value before the update, delta_t, t_spike) and a reset reading the
# other state (values written through temporaries)
TEMPLATE = textwrap.dedent(
    '''\
    [neuron]
    name = "Names"

    [parameters]
    tau = 0.02
    tau_ref = 0.002

    [state]
    {v} = 0
    {w} = 0
    {rt} = 0

    [dynamics]
    equations = """
    d{v}/dt = (J - {v} - {w} + 0.1 * {v} * {v}) / tau : rk4
    d{w}/dt = ({v} - {w}) / 0.1 : rk4
    """

    [spike]
    condition = "{v} > 1"
    reset = ["{v} = {w} * 0.1", "{w} = {w} + 0.5 + {v}"]
    refractory = {{ period = "tau_ref", state = "{rt}" }}
    spike_time = "linear"
    '''
)


def _run(module, names, steps=400):
    rng = np.random.RandomState(3)
    n = 16
    neuron = module.NEURON_TYPE()
    state = {names[0]: rng.uniform(0, 1, n), names[1]: rng.uniform(0, 0.2, n), names[2]: np.zeros(n)}
    J = np.linspace(0.5, 4, n)
    output = np.zeros(n)
    rows = []
    for _ in range(steps):
        neuron.step(0.001, J.copy(), output, **state)
        rows.append(np.concatenate([output] + [state[k] for k in names]))
    return np.array(rows)


@pytest.mark.parametrize(
    "names",
    [("spiked", "t_spike", "delta_t"), ("k1_v", "v_next", "v_start"), ("k2_spiked", "spikes_held", "k1_v")],
    ids=lambda n: "-".join(n),
)
def test_former_temporary_names_are_free(tmp_path, build_module, names):
    """States named like the compiler's old temporaries build and simulate exactly
    like the same spec with plain names (a collision would change the results)."""
    ref = build_module(tmp_path / "a", TEMPLATE.format(v="v", w="w", rt="rt"), "ref")
    other = build_module(tmp_path / "b", TEMPLATE.format(v=names[0], w=names[1], rt=names[2]), "other")
    got, want = _run(other, names), _run(ref, ("v", "w", "rt"))
    assert want[:, :16].sum() > 0  # it spikes
    np.testing.assert_array_equal(got, want)


def test_spike_time_is_computed_only_for_spiking_neurons():
    """nengo computes t_spike for the neurons that spiked: a neuron at J == 1 that
    does not spike must not divide by zero (no errstate hides it)."""
    import generated.lif as lif

    neuron = lif.NEURON_TYPE()
    J = np.array([1.0, 5.0])
    voltage, refractory = np.array([0.5, 0.999]), np.zeros(2)
    output = np.zeros(2)
    with np.errstate(all="raise"):
        neuron.step(0.001, J, output, voltage=voltage, refractory_time=refractory)
    assert output[1] > 0 and output[0] == 0
    assert refractory[1] > 0.002 - 0.001 and refractory[0] == -0.001


def _arithmetic(line):
    """A printed statement without its backend's module prefixes."""
    return re.sub(r"\b(np|tf\.math|tf)\.", "", line)


@pytest.mark.parametrize("spec", ["adex", "exp_if", "alif_threshold"])
def test_numpy_and_tensorflow_print_the_same_arithmetic(spec):
    compiled = compile_spec(Path("specs") / f"{spec}.toml")
    text = compiled.text
    numpy_body = text.split("def step(self, dt, J, output")[1].split("\n    def ")[0]
    tf_body = text.split("def step(self, J, dt")[1].split("\n        def ")[0]

    def locals_(body):
        found = {}
        for line in body.splitlines():
            m = re.match(r"\s+(_k\d_\w+|_\w+_\d|_c\d+|_t_spike) = (.*)$", line)
            if m:  # (TensorFlow reads parameters in masked values through self.guarded)
                value = re.sub(r"self\.guarded\((\w+), J\)", r"\1", m.group(2))
                found[m.group(1)] = _arithmetic(value)
        return found

    numpy_locals, tf_locals = locals_(numpy_body), locals_(tf_body)
    assert numpy_locals
    for name, value in numpy_locals.items():
        if name == "_t_spike":  # NumPy reads the spiking neurons only
            value = value.replace("[_spiked]", "")
        assert tf_locals[name] == value, name


def test_statements_are_typed_and_temporaries_prefixed():
    program = compile_spec(Path("specs") / "lif.toml").program
    kinds = [type(s).__name__ for s in program.statements]
    assert "Spike" in kinds and "MaskedAssign" in kinds and "Guarded" in kinds
    spike = next(s for s in program.statements if isinstance(s, ir.Spike))
    assert str(spike.distance) == "voltage - 1"
    for s in program.statements:
        if isinstance(s, ir.LOCALS) and s.target.name != "J":
            assert s.target.name.startswith("_"), s


def _imports(path):
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [a.name for a in node.names]
            deps |= {n.split(".")[0] for n in names}
    return deps


def test_no_import_cycle_in_the_package():
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py")}
    visiting, done = [], set()

    def visit(module):
        if module in done or module not in graph:
            return
        assert module not in visiting, f"import cycle: {' -> '.join(visiting + [module])}"
        visiting.append(module)
        for dep in graph[module]:
            visit(dep)
        visiting.pop()
        done.add(module)

    for module in graph:
        visit(module)


COUPLED_REFRACTORY = textwrap.dedent(
    '''\
    [neuron]
    name = "CoupledRef"

    [parameters]
    tau1 = 0.05
    tau2 = 0.02
    tau_ref = 0.002

    [state]
    x = 0
    y = 0
    rt = 0

    [dynamics]
    equations = """
    dx/dt = (J - x + y) / tau1
    dy/dt = -y / tau2
    """

    [spike]
    condition = "x > 1"
    reset = ["x = 0", "y = y + 1"]
    refractory = { period = "tau_ref", state = "rt" }

    [rate]  # not tabulated: keeps the test fast
    expression = "max(J, 0)"
    '''
)


def test_coupled_propagator_numpy_matches_nengo_dl(tmp_path, build_module):
    """The numeric propagator with a step length per neuron (after a refractory
    period): NumPy (scipy expm) and NengoDL (tf.linalg.expm) agree."""
    from neurogen.crosscheck import numpy_vs_tf

    module = build_module(tmp_path, COUPLED_REFRACTORY, "coupled")
    assert "linear_propagator(" in (tmp_path / "out" / "coupled.py").read_text()
    J = [0.5, 1.5, 3.0, 8.0]
    state = {name: [0.0] * len(J) for name in ("x", "y", "rt")}
    error = numpy_vs_tf(module, J, state, 1e-3, steps=200)
    assert error < 1e-9


def test_cse_shares_repeated_subexpressions_as_written():
    """A subexpression computed twice becomes one ``_c`` local; substituting it back
    gives the statement exactly as written (same operations, same order), and the
    local is defined before the statement that reads it."""
    import sympy as sp

    from neurogen.cse import eliminate

    v, w, p = sp.symbols("v w p", real=True)
    inner = sp.Min(p, v, evaluate=False)
    value = sp.Add(sp.Mul(w, sp.exp(sp.Add(inner, -1, evaluate=False), evaluate=False), evaluate=False),
                   sp.Mul(3, inner, evaluate=False), evaluate=False)
    out = eliminate([ir.Update(v, "+", value)])
    assert [type(s).__name__ for s in out] == ["Assign", "Update"]
    local, update = out
    assert local.target.name.startswith("_c") and local.value == inner
    with sp.evaluate(False):
        restored = update.value.xreplace({local.target: local.value})
    assert sp.srepr(restored) == sp.srepr(value)
    assert not update.value.has(inner)


def test_adex_evaluates_its_clipped_voltage_once_per_stage():
    import sympy as sp

    program = compile_spec(Path("specs") / "adex.toml").program
    shared = [s for s in program.statements if isinstance(s, ir.Assign) and s.target.name.startswith("_c")]
    assert sum(isinstance(s.value, sp.Min) for s in shared) == 4  # one per RK4 stage
    stages = [s for s in program.statements if isinstance(s, ir.Assign) and s.target.name.startswith("_k")]
    assert len(stages) == 8 and not any(s.value.has(sp.Min) for s in stages)
