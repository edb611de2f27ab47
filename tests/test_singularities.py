"""Removable singularities (neurogen.singularities): guarded 0/0 points.

Values at and near the point against mpmath's limit (float64, ~1e-12 relative), no
NumPy warnings, finite TensorFlow values and gradients, and expressions without a
0/0 point left as they are.
"""

import mpmath
import numpy as np
import pytest
import sympy as sp

from neurogen.singularities import guard

RATE = """
[neuron]
name = "Singular"

[parameters]
tau = 0.02

[output]
expression = "{expr}"
"""

CASES = {
    # spec expression, mpmath function of J (mp numbers), singular point
    "x_over_expm": ("J / (1 - exp(-J))", lambda J: J / (1 - mpmath.exp(-J)), 0.0),
    "hh_alpha_m": ("0.1 * (J + 40) / (1 - exp(-(J + 40) / 10))", lambda J: mpmath.mpf("0.1") * (J + 40) / (1 - mpmath.exp(-(J + 40) / 10)), -40.0),
    "sinc": ("sin(J) / J", lambda J: mpmath.sin(J) / J, 0.0),
    "param_scale": ("(J - 1) / (exp((J - 1) / tau) - 1)", lambda J: (J - 1) / (mpmath.exp((J - 1) / mpmath.mpf("0.02")) - 1), 1.0),
}


def _limit(f, point, J):
    """f at ``J`` with 40 digits; its limit (two-sided mean) at the point itself."""
    with mpmath.workdps(40):
        J = mpmath.mpf(float(J))
        if J == point:
            h = mpmath.mpf("1e-25")
            return float((f(J + h) + f(J - h)) / 2)
        return float(f(J))


def _inputs(point):
    offsets = np.array([0.0, 1e-12, -1e-9, 1e-6, -1e-5, 1e-4, -3e-4, 1e-3, -2e-3, 0.01, -0.05, 0.5, -2.0])
    return point + offsets * max(1.0, abs(point) / 10)


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_match_the_limit_in_numpy(tmp_path, build_module, name):
    expr, f, point = CASES[name]
    mod = build_module(tmp_path, RATE.format(expr=expr), name=f"s_{name}")
    J = _inputs(point)
    out = np.zeros_like(J)
    with np.errstate(all="raise"):  # no warning, even for the branch not taken
        mod.NEURON_TYPE().step(0.001, J, out)
    want = np.array([_limit(f, point, j) for j in J])
    np.testing.assert_allclose(out, want, rtol=2e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_tensorflow_values_and_gradients_are_finite(tmp_path, build_module, name):
    tf = pytest.importorskip("tensorflow")
    expr, f, point = CASES[name]
    mod = build_module(tmp_path, RATE.format(expr=expr), name=f"t_{name}")
    builder = mod.BUILDER.__new__(mod.BUILDER)
    builder.params, builder.dtype = {"tau": tf.constant(0.02, tf.float64)}, tf.float64
    J = tf.constant(_inputs(point)[None, :])
    with tf.GradientTape() as tape:
        tape.watch(J)
        out = builder.step(J, 0.001)
        out = out[0] if isinstance(out, (tuple, list)) else out
    grad = tape.gradient(out, J).numpy()[0]
    want = np.array([_limit(f, point, j) for j in _inputs(point)])
    np.testing.assert_allclose(np.asarray(out).reshape(-1), want, rtol=2e-12)
    assert np.all(np.isfinite(grad)), grad
    # the derivative at the point itself: mpmath's, from the smooth function
    with mpmath.workdps(40):
        slope = float(mpmath.diff(lambda x: f(x) if x != point else _limit(f, point, x), mpmath.mpf(point) + mpmath.mpf("1e-15")))
    np.testing.assert_allclose(grad[0], slope, rtol=1e-6, atol=1e-9)


def test_parameter_difference_in_a_closed_form():
    """``(exp(-t/tau1) - exp(-t/tau2)) / (tau1 - tau2)`` at ``tau1 == tau2``."""
    t, tau1, tau2 = sp.symbols("t tau1 tau2", positive=True)
    expr = (sp.exp(-t / tau1) - sp.exp(-t / tau2)) / (tau1 - tau2)
    guarded = guard(expr, {tau1, tau2}, {tau1: 0.02, tau2: 0.01})
    assert guarded != expr
    f = sp.lambdify([t, tau1, tau2], guarded, "numpy")
    with np.errstate(all="raise"):
        for a, b in [(0.01, 0.01), (0.01, 0.01 + 1e-12), (0.01, 0.0101), (0.02, 0.01)]:
            with mpmath.workdps(40):
                a_, b_ = mpmath.mpf(a), mpmath.mpf(b) if a != b else mpmath.mpf(b) + mpmath.mpf("1e-30")
                want = float((mpmath.exp(-mpmath.mpf("0.005") / a_) - mpmath.exp(-mpmath.mpf("0.005") / b_)) / (a_ - b_))
            np.testing.assert_allclose(f(0.005, a, b), want, rtol=1e-12)


@pytest.mark.parametrize(
    "text",
    ["1 / (1 + exp(-x))", "x**2 / (x - 1)", "1 / (tau_ref + tau_rc * log1p(1 / (x - 1)))", "(x - 1) / (x + 2)", "exp(x) / x"],
)
def test_expressions_without_a_removable_point_are_unchanged(text):
    symbols = {n: sp.Symbol(n) for n in ("x", "tau_ref", "tau_rc")}
    expr = sp.sympify(text, locals=symbols)
    assert guard(expr, set(symbols.values()), {}) is expr


#: bundled specs with removable 0/0 points: the textbook rate functions x/(1 - exp(-x))
GUARDED_SPECS = {"hodgkin_huxley", "wang_buzsaki"}


def test_only_specs_with_zero_over_zero_points_change():
    """The pass changes exactly the bundled specs that have a 0/0 point (their rate
    functions); the others' expressions are left as they are (golden)."""
    from pathlib import Path

    from neurogen import model, spec
    from neurogen.singularities import guard_model

    for path in sorted(Path(__file__).parent.parent.joinpath("specs").glob("*.toml")):
        m = model.build_model(spec.load(path))
        before = [u.expr for u in m.dynamics + m.resets + m.after_output] + [m.output, m.rate]
        guard_model(m)
        after = [u.expr for u in m.dynamics + m.resets + m.after_output] + [m.output, m.rate]
        unchanged = all(a is b for a, b in zip(before, after))
        assert unchanged == (path.stem not in GUARDED_SPECS), path.name
