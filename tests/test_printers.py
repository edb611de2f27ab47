"""Printed arithmetic keeps full double precision (constants fold to 17 digits)."""

import numpy as np
import pytest

RATE = """
[neuron]
name = "Constants"

[output]
expression = "{expr}"
"""


@pytest.mark.parametrize(
    "expr, want",
    [
        ("J * exp(1)", lambda J: J * np.e),
        ("J + sqrt(2) + log(3)", lambda J: J + np.sqrt(2) + np.log(3)),
        ("J / 3 + 2**-2 + max(1, pi)", lambda J: J / 3 + 0.25 + np.pi),
        ("J - 1e-300 * exp(-1)", lambda J: J - 1e-300 * np.exp(-1)),
    ],
)
def test_constant_subexpressions_keep_double_precision(tmp_path, build_module, expr, want):
    nt = build_module(tmp_path, RATE.format(expr=expr)).NEURON_TYPE()
    J = np.array([-7.0, 0.0, 1.0, 123.456])
    out = np.zeros_like(J)
    nt.step(0.001, J, out)
    np.testing.assert_allclose(out, want(J), rtol=4e-16, atol=0)


#: every function of the expression language, as NumPy computes it
REFERENCE = {
    "exp": np.exp,
    "expm1": np.expm1,
    "log": np.log,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sign": np.sign,
    "floor": np.floor,
    "ceil": np.ceil,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "heaviside": lambda x: (x > 0).astype(float),
    "min": lambda x: np.minimum(x, 0.5),
    "max": lambda x: np.maximum(x, 0.5),
    "clip": lambda x: np.clip(x, -0.5, 0.75),
    "where": lambda x: np.where(x > 0.25, x, -x),
}
CALLS = {"min": "min(J, 0.5)", "max": "max(J, 0.5)", "clip": "clip(J, -0.5, 0.75)", "where": "where(J > 0.25, J, -J)"}


def test_every_function_has_a_reference():
    from neurogen.symbolic import FUNCTIONS

    assert set(REFERENCE) == set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_functions_in_numpy_and_tensorflow(tmp_path, build_module, name):
    """Each function, printed for the NumPy step and for TensorFlow, against NumPy's."""
    tf = pytest.importorskip("tensorflow")
    domain = name in ("log", "sqrt", "log1p")
    J = np.array([0.3, 0.5, 1.0, 2.5, 7.0]) if domain else np.array([-3.2, -0.5, 0.0, 0.25, 0.7, 1.5, 3.0])
    mod = build_module(tmp_path, RATE.format(expr=CALLS.get(name, f"{name}(J)")), name=f"f_{name}")
    out = np.zeros_like(J)
    mod.NEURON_TYPE().step(0.001, J, out)
    np.testing.assert_allclose(out, REFERENCE[name](J), rtol=1e-15, atol=1e-300)
    # the TensorFlow step of the generated builder, called directly
    builder = mod.BUILDER.__new__(mod.BUILDER)
    builder.params, builder.dtype = {}, tf.float64
    got = builder.step(tf.constant(J[None, :]), 0.001)
    got = got[0] if isinstance(got, (tuple, list)) else got
    np.testing.assert_allclose(np.asarray(got).reshape(-1), REFERENCE[name](J), rtol=1e-15, atol=1e-300)
