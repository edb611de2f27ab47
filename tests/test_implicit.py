"""The ``implicit`` method (backward Euler, Newton iterations on the Jacobian).

Checked through the whole compiler against ``scipy.integrate.solve_ivp``: first-order
convergence on a non-stiff and a stiff system, stability where RK4 diverges, what
``auto`` chooses, and the TensorFlow step against the NumPy one.
"""

import numpy as np
import pytest

from test_methods import SYSTEMS, _errors, reference, simulate, spec

# a fast, non-linear gate driven by a slow variable: stiff at dt = 1 ms (tau = 0.1 ms)
STIFF = """\
dm/dt = (1 / (1 + exp(-(y - J))) - m) / tau - m**3 : {method}
dy/dt = (2 * m - y) / 0.05 : {method}"""


def _stiff(t, s, J, tau=1e-4):
    m, y = s
    return [(1 / (1 + np.exp(-(y - J))) - m) / tau - m**3, (2 * m - y) / 0.05]


SYSTEMS["stiff"] = (STIFF, ["m", "y"], _stiff, {"m": [0.0, 0.9, 0.3], "y": [0.0, 1.0, -2.0]}, [0.0, 1.0, -1.0])


@pytest.mark.parametrize("system, dt0", [("cubic", 0.02), ("pendulum", 0.02), ("stiff", 0.004)])
def test_implicit_is_first_order(tmp_path, build_module, system, dt0):
    """Backward Euler's error halves with the step, stiff (h / tau = 40 to 10) or not."""
    equations, states, _, _, _ = SYSTEMS[system]
    parameters = "tau = 0.0001" if system == "stiff" else ""
    mod = build_module(tmp_path, spec(equations.format(method="implicit"), states, parameters))
    errors = _errors(mod, system, dt0)
    observed = np.log2(errors[:-1] / errors[1:])
    assert np.all(errors > 1e-9), errors
    np.testing.assert_allclose(observed, 1, atol=0.25, err_msg=f"errors {errors}")


def test_implicit_is_exact_for_a_linear_decay_after_one_newton_step(tmp_path, build_module):
    """dx/dt = (J - x) / tau: backward Euler is x' = (x + h J / tau) / (1 + h / tau)."""
    mod = build_module(tmp_path, spec("dx/dt = (J - x) / tau : implicit", ["x"], "tau = 0.0002"))
    J, x0, h, tau = np.array([1.0, -3.0]), np.array([0.0, 2.0]), 0.001, 0.0002
    trace = simulate(mod.NEURON_TYPE(), {"x": x0}, J, h, 1)["x"]
    np.testing.assert_allclose(trace[-1], (x0 + h * J / tau) / (1 + h / tau), rtol=1e-14)


def test_stable_where_rk4_diverges(tmp_path, build_module):
    """At dt = 1 ms (h / tau = 10) RK4 blows up; implicit tracks the reference."""
    states, x0, J = ["m", "y"], {"m": [0.0, 0.9], "y": [0.0, 1.0]}, np.array([0.0, 1.0])
    runs = {}
    for method in ("rk4", "implicit"):
        mod = build_module(tmp_path / method, spec(STIFF.format(method=method), states, "tau = 0.0001"), name=method)
        with np.errstate(all="ignore"):
            runs[method] = simulate(mod.NEURON_TYPE(), x0, J, 0.001, 200)
    assert not np.all(np.isfinite(runs["rk4"]["m"][-1]) & (np.abs(runs["rk4"]["m"][-1]) < 10))
    for i, j in enumerate(J):
        want = reference(lambda t, s: _stiff(t, s, j), [x0["m"][i], x0["y"][i]], [0.2], method="Radau")[:, -1]
        got = np.array([runs["implicit"]["m"][-1, i], runs["implicit"]["y"][-1, i]])
        np.testing.assert_allclose(got, want, atol=2e-2)


def test_auto_takes_implicit_where_rk4_is_unstable_at_dt(tmp_path):
    from neurogen.build import compile_spec

    for tau, expected in [("0.0001", "implicit"), ("0.01", "rk4")]:
        path = tmp_path / f"auto_{expected}.toml"
        path.write_text(spec(STIFF.replace(" : {method}", ""), ["m", "y"], f"tau = {tau}"), encoding="utf-8")
        program = compile_spec(path).program
        assert program.methods == {"m": expected, "y": expected}
        if expected == "implicit":
            assert "not rk4 (unstable for dt >" in program.reasons["m"]


def test_numpy_and_tensorflow_agree(tmp_path, build_module):
    tf = pytest.importorskip("tensorflow")
    mod = build_module(tmp_path, spec(STIFF.format(method="implicit"), ["m", "y"], "tau = 0.0001"))
    J = np.array([-1.0, 0.0, 0.5, 3.0])
    state = {"m": np.array([0.0, 0.9, 0.3, 1.0]), "y": np.array([0.0, 1.0, -2.0, 0.5])}
    builder = mod.BUILDER.__new__(mod.BUILDER)
    builder.params, builder.dtype = {"tau": tf.constant(1e-4, tf.float64)}, tf.float64
    tf_state = {k: tf.constant(v[None, :].copy()) for k, v in state.items()}  # no aliasing
    out = np.zeros_like(J)
    for _ in range(20):
        mod.NEURON_TYPE().step(0.001, J, out, **state)
        _, m, y = builder.step(tf.constant(J[None, :]), 0.001, **tf_state)
        tf_state = {"m": m, "y": y}
    np.testing.assert_allclose(np.asarray(tf_state["m"])[0], state["m"], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(tf_state["y"])[0], state["y"], rtol=1e-12)


def test_gradient_through_the_newton_iterations(tmp_path, build_module):
    """TensorFlow differentiates the unrolled step; the gradient matches finite differences."""
    tf = pytest.importorskip("tensorflow")
    mod = build_module(tmp_path, spec(STIFF.format(method="implicit"), ["m", "y"], "tau = 0.0001"))
    builder = mod.BUILDER.__new__(mod.BUILDER)
    builder.params, builder.dtype = {"tau": tf.constant(1e-4, tf.float64)}, tf.float64
    J = tf.constant([[0.3, -0.7]], tf.float64)
    m, y = tf.constant([[0.2, 0.6]], tf.float64), tf.constant([[0.5, -1.0]], tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(J)
        _, m1, _ = builder.step(J, 0.001, m=m, y=y)
    grad = tape.gradient(m1, J).numpy()
    eps = 1e-6
    plus = builder.step(J + eps, 0.001, m=m, y=y)[1].numpy()
    minus = builder.step(J - eps, 0.001, m=m, y=y)[1].numpy()
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, (plus - minus) / (2 * eps), rtol=1e-5)
