"""The solve_ivp reference evaluates its equations with Python's ``math`` (fast on the
scalars solve_ivp passes) and falls back on NumPy where ``math`` raises: both must give
the same numbers, and an overflow must give inf, not an exception."""

import math

import numpy as np
import pytest

from conftest import REPO, generated_module
from neurogen.build import compile_spec
from neurogen.defaults import initial_state
from neurogen.reference import Reference, Unsupported

SPECS = sorted(p.stem for p in (REPO / "specs").glob("*.toml"))


def _references(name):
    model = compile_spec(REPO / "specs" / f"{name}.toml").model
    neuron = generated_module(name).NEURON_TYPE()
    params = {p.name: getattr(neuron, p.name) for p in model.parameters}
    try:
        return model, Reference(model, params), Reference(model, params, scalar=False)
    except Unsupported:
        pytest.skip(f"{name}: no continuous-time reference")


@pytest.mark.parametrize("name", SPECS)
def test_scalar_and_numpy_equations_agree(name):
    model, fast, slow = _references(name)
    if not fast.states:
        pytest.skip(f"{name}: no ODE states")
    state0 = initial_state(model)
    y0 = np.array([state0[str(s)] for s in fast.states], dtype=float)
    rng = np.random.RandomState(0)
    for _ in range(50):
        y = y0 + rng.randn(y0.size) * np.maximum(1.0, np.abs(y0)) * 0.3
        J = rng.uniform(-10, 100)
        np.testing.assert_allclose(fast.rhs(y, J), slow.rhs(y, J), rtol=1e-12, atol=1e-12)
        if model.spiking:
            np.testing.assert_allclose(fast.distance(y, J), slow.distance(y, J), rtol=1e-12, atol=1e-12)
            for (_, a), (_, b) in zip(fast.resets, slow.resets):
                np.testing.assert_allclose(a(y, J), b(y, J), rtol=1e-12, atol=1e-12)


def test_overflow_and_domain_errors_fall_back_on_numpy(tmp_path):
    spec = tmp_path / "grow.toml"
    spec.write_text(
        '[neuron]\nname = "Grow"\n\n[state]\nx = 0\n\n[dynamics]\nequations = """\n'
        'dx/dt = exp(x) + log(J) : euler\n"""\n\n[output]\nexpression = "x"\n'
    )
    model = compile_spec(spec).model
    reference = Reference(model, {})
    with np.errstate(all="ignore"):
        assert reference.rhs(np.array([1000.0]), 1.0)[0] == math.inf  # math.exp overflows
        assert math.isnan(reference.rhs(np.array([0.0]), -1.0)[0])  # math.log(-1) is a domain error
        assert reference.rhs(np.array([0.0]), 0.0)[0] == -math.inf  # math.log(0) too
    np.testing.assert_allclose(reference.rhs(np.array([1.0]), 2.0), [math.e + math.log(2)], rtol=1e-15)


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "expm1", "log1p"])
def test_scalar_functions_match_numpys(name):
    from neurogen.reference import MODULES, SCALAR_MODULES

    fast, slow = SCALAR_MODULES[0][name], MODULES[0][name]
    xs = np.concatenate([np.linspace(-30, 30, 601), [-700.0, -1e-12, 0.0, 1e-12, 700.0]])
    if name == "log1p":
        xs = xs[xs > -1]
    np.testing.assert_allclose([fast(float(x)) for x in xs], slow(xs), rtol=1e-13, atol=1e-300)
