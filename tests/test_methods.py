"""Discretization methods, checked through the whole compiler.

Small rate-model specs (states, ODEs and an ``[output]``) are compiled with
``build_module`` and the generated NumPy ``step`` is compared with SciPy's
high-accuracy ODE solvers.
"""

import textwrap

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from conftest import build_spec, builder_registrations_kept
from neurogen.build import compile_spec
from neurogen.errors import SpecError


def spec(equations, states, parameters="", name="Test"):
    """A rate-model spec with the given ``[dynamics] equations`` and states."""
    state_lines = "\n".join(f"{s} = 0" for s in states)
    return textwrap.dedent(
        f'''\
        [neuron]
        name = "{name}"

        [parameters]
        {{parameters}}

        [state]
        {{states}}

        [dynamics]
        equations = """
        {{equations}}
        """

        [output]
        expression = "{states[0]}"
        '''
    ).format(parameters=parameters, states=state_lines, equations=equations)


def simulate(neuron_type, states0, J, dt, n_steps):
    """Run the NumPy step; return {state: array (n_steps + 1, n)} including t = 0."""
    n = len(J)
    state = {k: np.array(v, dtype=np.float64) for k, v in states0.items()}
    output = np.zeros(n)
    J = np.asarray(J, dtype=np.float64)
    trace = {k: [v.copy()] for k, v in state.items()}
    for _ in range(n_steps):
        neuron_type.step(dt, J.copy(), output, **state)
        for k, v in state.items():
            trace[k].append(v.copy())
    return {k: np.array(v) for k, v in trace.items()}


def reference(rhs, y0, t_eval, method="DOP853"):
    """High-accuracy solution of ``dy/dt = rhs(t, y)`` sampled at ``t_eval``."""
    sol = solve_ivp(rhs, (0, t_eval[-1]), y0, method=method, t_eval=t_eval, rtol=1e-12, atol=1e-13)
    assert sol.success, sol.message
    return sol.y


# ----------------------------------------------------------------------------
# (a) exact integration of linear ODEs


def test_exact_scalar_linear(tmp_path, build_module):
    mod = build_module(
        tmp_path,
        spec("dx/dt = (J - x) / tau : exact", ["x"], "tau = 0.03"),
    )
    nt = mod.NEURON_TYPE(tau=0.05)
    J = np.array([-2.0, 0.0, 0.7, 1.0, 3.5, 100.0])
    x0 = np.linspace(-1, 2, J.size)
    dt, n_steps = 0.001, 500
    trace = simulate(nt, {"x": x0}, J, dt, n_steps)["x"]
    t = dt * np.arange(n_steps + 1)
    for i in range(J.size):
        want = reference(lambda t, y: (J[i] - y) / 0.05, [x0[i]], t)[0]
        np.testing.assert_allclose(trace[:, i], want, rtol=0, atol=1e-9 * max(1, abs(J[i])))
        # and the closed form
        closed = J[i] + (x0[i] - J[i]) * np.exp(-t / 0.05)
        np.testing.assert_allclose(trace[:, i], closed, rtol=0, atol=1e-12 * max(1, abs(J[i])))


COUPLED = """\
dx/dt = (J - x) / tau1 + y : exact
dy/dt = -y / tau2 : exact"""


def test_exact_coupled_linear(tmp_path, build_module):
    mod = build_module(
        tmp_path,
        spec(COUPLED, ["x", "y"], "tau1 = 0.05\ntau2 = 0.02"),
    )
    tau1, tau2 = 0.03, 0.011
    nt = mod.NEURON_TYPE(tau1=tau1, tau2=tau2)
    J = np.array([-1.0, 0.0, 0.5, 2.0, 20.0])
    x0 = np.array([0.0, 1.0, -0.5, 0.3, 2.0])
    y0 = np.array([1.0, -3.0, 0.0, 10.0, 0.5])
    dt, n_steps = 0.001, 300
    trace = simulate(nt, {"x": x0, "y": y0}, J, dt, n_steps)
    t = dt * np.arange(n_steps + 1)
    for i in range(J.size):

        def rhs(t, s, j=J[i]):
            x, y = s
            return [(j - x) / tau1 + y, -y / tau2]

        want = reference(rhs, [x0[i], y0[i]], t, method="Radau")
        np.testing.assert_allclose(trace["x"][:, i], want[0], rtol=0, atol=1e-9)
        np.testing.assert_allclose(trace["y"][:, i], want[1], rtol=0, atol=1e-9)


OSCILLATOR = """\
dx/dt = -x / tau + omega * y + J : exact
dy/dt = -omega * x - y / tau : exact"""


@pytest.fixture(scope="module")
def oscillator(tmp_path_factory):
    """The damped oscillator, built once for the tests below."""
    directory = tmp_path_factory.mktemp("oscillator")
    with builder_registrations_kept():
        module = build_spec(directory, spec(OSCILLATOR, ["x", "y"], "tau = 0.1\nomega = 30"))
    return module, (directory / "out" / "m.py").read_text()


@pytest.mark.filterwarnings("error::numpy.ComplexWarning")  # the propagator is real code
def test_exact_damped_oscillator(oscillator):
    """Complex eigenvalues: the propagator must still be exact."""
    mod, _ = oscillator
    nt = mod.NEURON_TYPE(tau=0.2, omega=50.0)
    J = np.array([0.0, 1.0, -4.0])
    x0, y0 = np.array([1.0, 0.0, 0.5]), np.array([0.0, 1.0, -0.5])
    dt, n_steps = 0.002, 250
    trace = simulate(nt, {"x": x0, "y": y0}, J, dt, n_steps)
    t = dt * np.arange(n_steps + 1)
    for i in range(J.size):

        def rhs(t, s, j=J[i]):
            x, y = s
            return [-x / 0.2 + 50 * y + j, -50 * x - y / 0.2]

        want = reference(rhs, [x0[i], y0[i]], t)
        np.testing.assert_allclose(trace["x"][:, i], want[0], rtol=0, atol=1e-9)
        np.testing.assert_allclose(trace["y"][:, i], want[1], rtol=0, atol=1e-9)


def test_exact_damped_oscillator_is_real_code(oscillator):
    import warnings

    mod, text = oscillator
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ComplexWarning fails the test
        simulate(mod.NEURON_TYPE(), {"x": [1.0], "y": [0.0]}, np.array([0.5]), 0.001, 3)
    assert "1j" not in text


def test_exact_coupled_equal_time_constants(tmp_path, build_module):
    """``tau1 == tau2`` is a valid parameter choice (a removable singularity of a
    symbolic propagator); the solution is ``x = J + (x0 - J + y0 t) exp(-t / tau)``."""
    mod = build_module(tmp_path, spec(COUPLED, ["x", "y"], "tau1 = 0.05\ntau2 = 0.02"))
    tau = 0.02
    nt = mod.NEURON_TYPE(tau1=tau, tau2=tau)
    J, x0, y0 = np.array([1.0]), np.array([0.0]), np.array([5.0])
    dt, n_steps = 0.001, 100
    with np.errstate(all="raise"):
        trace = simulate(nt, {"x": x0, "y": y0}, J, dt, n_steps)
    t = dt * np.arange(n_steps + 1)
    closed = J[0] + (x0[0] - J[0] + y0[0] * t) * np.exp(-t / tau)
    np.testing.assert_allclose(trace["x"][:, 0], closed, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------
# (b) convergence order of the approximate methods

CUBIC = "dx/dt = -x**3 + J : {method}"
PENDULUM = """\
dx/dt = y : {method}
dy/dt = -sin(x) - 0.5 * y + J : {method}"""
# affine in each state with the other held fixed: exponential Euler applies
COND_LINEAR = """\
dx/dt = -(1 + y**2) * x + J : {method}
dy/dt = -y + sin(x) : {method}"""


def _cubic(t, s, J):
    return [-s[0] ** 3 + J]


def _pendulum(t, s, J):
    x, y = s
    return [y, -np.sin(x) - 0.5 * y + J]


def _cond_linear(t, s, J):
    x, y = s
    return [-(1 + y**2) * x + J, -y + np.sin(x)]


SYSTEMS = {
    "cubic": (CUBIC, ["x"], _cubic, {"x": [1.5, -0.5, 0.2]}, [0.5, 2.0, -1.0]),
    "pendulum": (PENDULUM, ["x", "y"], _pendulum, {"x": [1.0, 2.5, -0.3], "y": [0.0, -1.0, 2.0]}, [0.0, 0.3, -0.8]),
    "cond_linear": (COND_LINEAR, ["x", "y"], _cond_linear, {"x": [1.0, -2.0, 0.4], "y": [0.5, 1.5, -1.0]}, [0.0, 1.0, -3.0]),
}

CASES = [
    # method, system, coarsest dt, expected order
    ("euler", "cubic", 0.02, 1),
    ("euler", "pendulum", 0.02, 1),
    ("rk4", "cubic", 0.05, 4),
    ("rk4", "pendulum", 0.05, 4),
    ("rk4", "cond_linear", 0.05, 4),
    ("exponential_euler", "cond_linear", 0.02, 1),
]


def _errors(mod, system, dt0, T=1.0):
    _, states, rhs, x0, J = SYSTEMS[system]
    J = np.array(J)
    nt = mod.NEURON_TYPE()
    want = np.array(
        [reference(lambda t, s, j=j: rhs(t, s, j), [x0[k][i] for k in states], [T])[:, -1] for i, j in enumerate(J)]
    )  # (n, n_states)
    errors = []
    for dt in (dt0, dt0 / 2, dt0 / 4):
        n_steps = int(round(T / dt))
        trace = simulate(nt, x0, J, dt, n_steps)
        got = np.stack([trace[k][-1] for k in states], axis=1)
        errors.append(np.abs(got - want).max())
    return np.array(errors)


@pytest.mark.parametrize("method, system, dt0, order", CASES, ids=[f"{m}-{s}" for m, s, _, _ in CASES])
def test_convergence_order(tmp_path, build_module, method, system, dt0, order):
    equations, states, _, _, _ = SYSTEMS[system]
    mod = build_module(tmp_path, spec(equations.format(method=method), states))
    errors = _errors(mod, system, dt0)
    observed = np.log2(errors[:-1] / errors[1:])
    assert np.all(errors > 1e-12), errors  # not at round-off level
    np.testing.assert_allclose(observed, order, atol=0.3, err_msg=f"errors {errors}")


def test_exponential_euler_is_exact_for_linear_odes(tmp_path, build_module):
    """With the rate held fixed (a linear ODE) exponential Euler is the exact solution."""
    mod = build_module(tmp_path, spec("dx/dt = (J - x) / tau : exponential_euler", ["x"], "tau = 0.05"))
    J = np.array([-1.0, 0.5, 4.0])
    trace = simulate(mod.NEURON_TYPE(), {"x": [0.0, 1.0, 2.0]}, J, 0.05, 20)["x"]
    t = 0.05 * np.arange(21)
    closed = J + (np.array([0.0, 1.0, 2.0]) - J) * np.exp(-t[:, None] / 0.05)
    np.testing.assert_allclose(trace, closed, rtol=0, atol=1e-12)


def test_exponential_euler_with_vanishing_rate(tmp_path, build_module):
    mod = build_module(
        tmp_path,
        spec("dx/dt = -y * x + J : exponential_euler\ndy/dt = -y / tau : exact", ["x", "y"], "tau = 1"),
    )
    J = np.array([1.0, 2.0])
    with np.errstate(all="ignore"):
        trace = simulate(mod.NEURON_TYPE(), {"x": [0.5, 0.5], "y": [0.0, 0.0]}, J, 0.001, 10)
    np.testing.assert_allclose(trace["x"][-1], 0.5 + J * 0.01, rtol=1e-12)


def test_exact_with_zero_rate_parameter(tmp_path, build_module):
    mod = build_module(
        tmp_path,
        spec("dx/dt = -k * x + J : exact", ["x"], "k = { value = 1, low = 0 }"),
    )
    J = np.array([1.0, -2.0])
    with np.errstate(all="ignore"):
        trace = simulate(mod.NEURON_TYPE(k=0), {"x": [0.5, 0.5]}, J, 0.001, 10)
    np.testing.assert_allclose(trace["x"][-1], 0.5 + J * 0.01, rtol=1e-12)


# ----------------------------------------------------------------------------
# (c) what "auto" chooses


def _methods(tmp_path, equations, states, parameters=""):
    path = tmp_path / "auto.toml"
    path.write_text(spec(equations, states, parameters), encoding="utf-8")
    return compile_spec(path).program.methods


@pytest.mark.parametrize(
    "equations, states, parameters, expected",
    [
        ("dx/dt = (J - x) / tau", ["x"], "tau = 0.02", {"x": "exact"}),
        ("dx/dt = (J - x) / tau : auto", ["x"], "tau = 0.02", {"x": "exact"}),
        (COUPLED.replace(" : exact", ""), ["x", "y"], "tau1 = 0.05\ntau2 = 0.02", {"x": "exact", "y": "exact"}),
        # a coupled group gets one method: never split into per-equation methods
        ("dx/dt = -(1 + y**2) * x + J\ndy/dt = -y**3", ["x", "y"], "", {"x": "rk4", "y": "rk4"}),
        ("dx/dt = -(1 + x**2) * x + J\ndy/dt = -y", ["x", "y"], "", {"x": "rk4", "y": "exact"}),  # uncoupled
        ("dx/dt = -x * exp(J) + sin(J)", ["x"], "", {"x": "exact"}),
        ("dx/dt = -x**3 + J", ["x"], "", {"x": "rk4"}),
        ("dx/dt = -max(x, 0) + J", ["x"], "", {"x": "rk4"}),
        ("dx/dt = -abs(x) + J", ["x"], "", {"x": "rk4"}),
        ("dx/dt = y - x\ndy/dt = -x * y", ["x", "y"], "", {"x": "rk4", "y": "rk4"}),
        ("dx/dt = y - x * J\ndy/dt = -y", ["x", "y"], "", {"x": "rk4", "y": "rk4"}),  # A reads J
        ("dx/dt = -x**3 + J : euler", ["x"], "", {"x": "euler"}),
        ("dx/dt = (J - x) / tau : rk4", ["x"], "tau = 0.02", {"x": "rk4"}),
    ],
)
def test_auto_method_choice(tmp_path, equations, states, parameters, expected):
    assert _methods(tmp_path, equations, states, parameters) == expected


@pytest.mark.parametrize(
    "equation, message",
    [
        ("dx/dt = -x**3 + J : exact", "method 'exact' needs"),
        ("dx/dt = -x**3 + J : exponential_euler", "method 'exponential_euler' needs"),
        ("dx/dt = -max(x, 0) + J : exact", "method 'exact' needs"),
    ],
)
def test_method_that_does_not_fit_is_an_error(tmp_path, equation, message):
    path = tmp_path / "bad.toml"
    text = spec(equation, ["x"])
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match=message) as info:
        compile_spec(path)
    assert info.value.line == text.splitlines().index(equation) + 1  # the equation's line


# ----------------------------------------------------------------------------
# a stateful rate model is usable in a nengo Ensemble


def test_stateful_rate_model_in_an_ensemble(tmp_path, build_module):
    """A leaky rate neuron: its output in a simulated Ensemble is the closed-form
    low-pass of its input current, and ``rates`` is the settled output (x -> J)."""
    import nengo

    mod = build_module(tmp_path, spec("dx/dt = (J - x) / tau", ["x"], "tau = 0.05"), name="leaky")
    bias = np.linspace(-1.0, 2.0, 5)
    with nengo.Network() as net:
        ens = nengo.Ensemble(5, 1, neuron_type=mod.NEURON_TYPE(), gain=np.ones(5), bias=bias)
        probe = nengo.Probe(ens.neurons)
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(100)
    t = sim.dt * np.arange(1, 101)[:, None]
    np.testing.assert_allclose(sim.data[probe], bias * -np.expm1(-t / 0.05), rtol=1e-9, atol=1e-12)
    J = np.array([-1.0, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(mod.NEURON_TYPE().rates(J, 1.0, 0.0)[:, 0], J, rtol=1e-6)



# ----------------------------------------------------------------------------
# (d) auto integrates a coupled nonlinear group jointly

FITZHUGH_NAGUMO = """\
dv/dt = (v - v**3 / 3 - w + J) / tau
dw/dt = (v + a - b * w) / tau_w"""


def test_auto_integrates_a_coupled_group_jointly_at_fourth_order(tmp_path, build_module):
    """A FitzHugh-Nagumo pair: dv/dt is nonlinear, dw/dt linear.  Splitting them
    (rk4 for v, exact for w holding v fixed) is first order; one joint method
    converges at its own order (rk4: error / 16 per halving of dt)."""
    params = "tau = 0.01\ntau_w = 0.1\na = 0.7\nb = 0.8"
    mod = build_module(tmp_path, spec(FITZHUGH_NAGUMO, ["v", "w"], params))
    program_methods = _methods(tmp_path, FITZHUGH_NAGUMO, ["v", "w"], params)
    assert program_methods == {"v": "rk4", "w": "rk4"}
    J, v0, w0, t_end = 0.5, -1.0, 0.5, 0.1

    def rhs(t, y):
        v, w = y
        return [(v - v**3 / 3 - w + J) / 0.01, (v + 0.7 - 0.8 * w) / 0.1]

    want = reference(rhs, [v0, w0], np.array([0.0, t_end]))[:, -1]
    errors = []
    for dt in (0.002, 0.001, 0.0005):
        n = int(round(t_end / dt))
        trace = simulate(mod.NEURON_TYPE(), {"v": [v0], "w": [w0]}, np.array([J]), dt, n)
        errors.append(max(abs(trace["v"][-1, 0] - want[0]), abs(trace["w"][-1, 0] - want[1])))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 3.5), (errors, orders)


def test_show_says_why_auto_chose_a_method(tmp_path):
    from neurogen.show import describe

    path = tmp_path / "fhn.toml"
    path.write_text(spec(FITZHUGH_NAGUMO, ["v", "w"], "tau = 0.01\ntau_w = 0.1\na = 0.7\nb = 0.8"))
    compiled = compile_spec(path)
    text = describe(compiled.model, compiled.program)
    assert "method: rk4" in text and "not exact (needs an ODE that is linear in the states; dv/dt is not)" in text


@pytest.mark.parametrize("n_states", [2, 4, 6])
def test_linear_chain_is_exact(tmp_path, build_module, n_states):
    """A chain of n coupled linear states (a filter cascade) is solved exactly by
    the numeric propagator, for any number of states (compile time: benchmarks/)."""
    names = [f"x{i}" for i in range(n_states)]
    lines = ["dx0/dt = (J - x0) / tau"] + [f"d{b}/dt = ({a} - {b}) / tau + 0.1 * x0" for a, b in zip(names, names[1:])]
    mod = build_module(tmp_path, spec("\n".join(lines), names, "tau = 0.02"))
    A = -np.eye(n_states) / 0.02
    for i in range(1, n_states):
        A[i, i - 1] += 1 / 0.02
        A[i, 0] += 0.1
    b = np.zeros(n_states)
    b[0] = 1.5 / 0.02
    t_end = 0.05
    want = reference(lambda t, y: A @ y + b, np.zeros(n_states), np.array([0.0, t_end]))[:, -1]
    trace = simulate(mod.NEURON_TYPE(), {x: [0.0] for x in names}, np.array([1.5]), 0.001, 50)
    got = np.array([trace[x][-1, 0] for x in names])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)


# ----------------------------------------------------------------------------
# max_dt is the explicit method's real stability limit


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_max_dt_is_where_the_method_turns_unstable(tmp_path, build_module, method):
    """Just below ``max_dt`` the explicit update of ``dx/dt = -x / tau`` decays, just
    above it grows: the limit is the method's, not a constant copied from it."""
    mod = build_module(tmp_path, spec(f"dx/dt = -x / tau : {method}", ["x"], "tau = { value = 0.01, low = 0, low_open = true }"))
    nt = mod.NEURON_TYPE(tau=0.003)
    limit = nt.max_dt()
    # the real root of the amplification factor R(z) = +-1 on the negative axis
    poly = {"euler": [1, 2], "rk4": [1 / 24, 1 / 6, 1 / 2, 1]}[method]  # R(z) - 1 = 0 / R(z) + 1 = 0
    root = min(r.real for r in np.roots(poly) if abs(r.imag) < 1e-12)
    assert limit == pytest.approx(-root * 0.003, rel=1e-9)
    for factor, grows in [(0.99, False), (1.01, True)]:
        x, out = np.array([1.0]), np.zeros(1)
        for _ in range(3000):
            nt.step(factor * limit, np.zeros(1), out, x=x)
        assert (abs(x[0]) > 1) == grows, (factor, x)


def test_max_dt_is_the_smallest_limit(tmp_path, build_module):
    """Two explicit updates: the stable step is the smaller of their limits."""
    text = spec(
        "dx/dt = -x / tau1 + y : euler\ndy/dt = -y / tau2 : rk4", ["x", "y"], "tau1 = 0.01\ntau2 = 0.01"
    )
    nt = build_module(tmp_path, text).NEURON_TYPE
    assert nt(tau1=0.001, tau2=0.01).max_dt() == pytest.approx(2 * 0.001)
    assert nt(tau1=0.01, tau2=0.0005).max_dt() == pytest.approx(2.785293563405282 * 0.0005)
