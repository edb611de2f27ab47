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
