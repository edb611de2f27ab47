"""Random numbers (rand(), randn()) and white noise (xi) in specs: the IR, the
integration of the noise, seeding in nengo and NengoDL, and verify's statistical
checks (see neurogen/noise.py)."""

import warnings

import nengo
import numpy as np
import pytest
import sympy as sp

from conftest import REPO, generated_module
from neurogen import noise, verify
from neurogen.build import compile_spec
from neurogen.crosscheck import rate_statistics
from neurogen.defaults import compiled_module
from neurogen.errors import SpecError
from neurogen.ir import Draw

STOCHASTIC = ["noisy_lif", "escape_noise_lif"]

OU = """
[neuron]
name = "OU"
[parameters]
tau = 0.02
sigma = 0.1
[state]
v = 0
[dynamics]
equations = "dv/dt = (J - v) / tau + sigma * sqrt(2 / tau) * xi : METHOD"
[output]
expression = "v"
"""


def write(tmp_path, text, name="m"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def compiled(tmp_path, text):
    c = compile_spec(write(tmp_path, text))
    return c, compiled_module(c)


def test_each_call_is_its_own_draw(tmp_path):
    text = OU.replace("dv/dt = (J - v) / tau + sigma * sqrt(2 / tau) * xi : METHOD", "v = rand() - rand() + 0 * randn()")
    c, _ = compiled(tmp_path, text)
    draws = [s for s in c.program.statements if isinstance(s, Draw)]
    assert [d.kind for d in draws] == ["uniform", "uniform", "normal"]
    assert len({d.target for d in draws}) == 3
    assert "rng.uniform(size=J.shape)" in c.text and "self.rand(0, J)" in c.text and "self.randn(2, J)" in c.text


def test_deterministic_specs_draw_nothing():
    text = (REPO / "generated" / "lif.py").read_text()
    assert "rng" not in text and "draws" not in text


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("* xi : METHOD", "* xi**2 : METHOD", "linear in the white noise"),
        ('[output]\nexpression = "v"', '[output]\nexpression = "v + xi"', "only in an ODE"),
        ('[output]\nexpression = "v"', '[output]\nexpression = "v + rand(1)"', r"rand\(\) takes no arguments"),
        ('[output]\nexpression = "v"', '[output]\nexpression = "v"\n[rate]\nexpression = "J + randn()"', "cannot draw random numbers"),
    ],
)
def test_bad_noise_is_a_spec_error(tmp_path, old, new, message):
    path = write(tmp_path, OU.replace(old, new).replace("METHOD", "exact"))
    with pytest.raises(SpecError, match=message) as e:
        compile_spec(path)
    assert str(path) in str(e.value)


def test_ou_variance_is_the_integral_of_the_propagator():
    a, h, s = sp.symbols("a h s", real=True)
    integral = sp.integrate(sp.exp(2 * a * (h - s)), (s, 0, h), conds="none")
    ours = noise.ou_variance(a, h)
    for a_value, h_value in [(-50, 1e-3), (-3, 0.1), (2, 0.01)]:
        values = {a: a_value, h: h_value}
        assert float(ours.subs(values)) == pytest.approx(float(integral.subs(values)), rel=1e-12)
    assert noise.ou_variance(0, h) == h


def stationary_variance(module, dt, n=4000, steps=400, J=0.0):
    neuron = module.NEURON_TYPE()
    state = {"v": np.zeros(n), "rng": np.random.RandomState(1)}
    out = np.zeros(n)
    for _ in range(steps):
        neuron.step(dt, np.full(n, J), out, **state)
    return np.var(state["v"])


@pytest.mark.parametrize("dt", [1e-3, 1e-2])
def test_exact_ou_has_the_analytic_stationary_variance_at_any_step(tmp_path, dt):
    _, module = compiled(tmp_path, OU.replace("METHOD", "exact"))
    # sigma^2 exactly (Euler-Maruyama would give sigma^2 / (1 - dt / (2 tau)): +33% at 10 ms)
    assert stationary_variance(module, dt, steps=int(0.4 / dt) + 20) == pytest.approx(0.01, rel=0.06)


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_euler_maruyama_scales_the_noise_with_sqrt_dt(tmp_path, method):
    _, module = compiled(tmp_path, OU.replace("METHOD", method))
    dt, tau, g2 = 5e-3, 0.02, 0.01 * 2 / 0.02
    # x' = (1 - dt/tau) x + g sqrt(dt) N (Euler) has variance g^2 dt / (1 - (1 - dt/tau)^2);
    # RK4's drift factor differs, to 3rd order in dt/tau
    factor = 1 - dt / tau if method == "euler" else 1 - dt / tau + (dt / tau) ** 2 / 2 - (dt / tau) ** 3 / 6 + (dt / tau) ** 4 / 24
    expected = g2 * dt / (1 - factor**2)
    assert stationary_variance(module, dt) == pytest.approx(expected, rel=0.06)


def test_noisy_lif_membrane_variance_without_spikes():
    """The bundled NoisyLIF below threshold: mean J, standard deviation sigma."""
    neuron = generated_module("noisy_lif").NEURON_TYPE(sigma=0.1)
    n = 4000
    state = neuron.make_state(n, rng=np.random.RandomState(3), dtype=np.float64)
    state["voltage"][...] = 0.5
    out = np.zeros(n)
    for _ in range(200):
        neuron.step(1e-3, np.full(n, 0.5), out, **state)
    assert not out.any()
    assert np.mean(state["voltage"]) == pytest.approx(0.5, abs=0.01)
    assert np.var(state["voltage"]) == pytest.approx(0.01, rel=0.06)


def test_escape_noise_fires_with_the_hazard_probability():
    module = generated_module("escape_noise_lif")
    neuron = module.NEURON_TYPE()
    n, dt = 20000, 1e-3
    for v in (0.8, 1.0, 1.2, 1.5):
        state = neuron.make_state(n, rng=np.random.RandomState(5), dtype=np.float64)
        state["voltage"][...] = v
        state["refractory_time"][...] = 0
        out = np.zeros(n)
        neuron.step(dt, np.full(n, v), out, **state)  # J = v: the voltage stays at v
        p = 1 - np.exp(-dt * neuron.rho_0 * np.exp((v - neuron.v_th) / neuron.delta_v))
        se = np.sqrt(p * (1 - p) / n)
        assert abs(np.mean(out > 0) - p) < 5 * se + 1e-4, v


def network(module, n=40, J=1.5, seed=None):
    with nengo.Network(seed=seed) as net:
        ens = nengo.Ensemble(n, 1, neuron_type=module.NEURON_TYPE(), gain=np.ones(n), bias=np.full(n, J))
        probe = nengo.Probe(ens.neurons)
    return net, probe


@pytest.mark.parametrize("name", STOCHASTIC)
def test_nengo_simulator_seed_repeats_and_differs(name):
    net, probe = network(generated_module(name), seed=0)
    runs = []
    for seed in (1, 1, 2):
        with nengo.Simulator(net, seed=seed, progress_bar=False) as sim:
            sim.run_steps(300)
            runs.append(sim.data[probe].copy())
            if len(runs) == 1:  # a reset repeats the run too
                sim.reset()
                sim.run_steps(300)
                np.testing.assert_array_equal(sim.data[probe], runs[0])
    assert runs[0].any()
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


@pytest.mark.slow
@pytest.mark.parametrize("name", STOCHASTIC)
def test_nengo_dl_seed_repeats_and_differs(name):
    import nengo_dl

    net, probe = network(generated_module(name), seed=0)
    runs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in (1, 1, 2):
            with nengo_dl.Simulator(net, seed=seed, progress_bar=False, minibatch_size=2) as sim:
                sim.run_steps(200)
                runs.append(sim.data[probe].copy())
    assert runs[0].any()
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    assert not np.array_equal(runs[0][0], runs[0][1])  # minibatch items draw their own numbers


@pytest.mark.slow
@pytest.mark.parametrize("name", STOCHASTIC)
def test_numpy_and_nengo_dl_rates_agree_within_standard_errors(name):
    currents = [0.5, 1.5, 4.0]
    m1, s1, m2, s2 = rate_statistics(generated_module(name), currents, 200, 0.5, 1e-3, seed=3)
    z = np.abs(m1 - m2) / np.sqrt(s1**2 + s2**2)
    assert np.all(m1[1:] > 0) and np.all(np.diff(m1) > 0)
    assert np.all(z < 4), (m1, m2, z)


@pytest.mark.slow
def test_verify_is_statistical_and_catches_a_wrong_noise_scale(monkeypatch):
    spec = REPO / "specs" / "noisy_lif.toml"
    report = verify.verify_spec(spec, quick=True)
    assert report.passed
    names = [c.name for c in report.checks]
    assert names[:2] == ["rate-statistics", "noise-variance"]
    assert all(c.compares.startswith("statistical") for c in report.checks[:2])
    assert "numpy-vs-nengodl" not in names  # never a "0 difference" for random numbers
    # the currents are where the noisy neurons fire (5-60 % of the table's top rate),
    # not steps above a threshold the mean rate creeps up from
    pairs = report.checks[0].detail.removeprefix("rates ").removesuffix(" Hz (NumPy/NengoDL)").split(", ")
    assert min(float(pair.split("/")[0]) for pair in pairs) > 5, report.checks[0].detail

    real = noise.increment  # planted bug: twice the noise, in NumPy and NengoDL alike
    monkeypatch.setattr(noise, "increment", lambda *a: real(*a) * 2)
    bad = verify.verify_spec(spec, quick=True)
    assert not bad.passed
    assert {c.name for c in bad.checks if c.status == "FAIL"} == {"noise-variance"}


@pytest.mark.slow
def test_verify_catches_tensorflow_drawing_differently(monkeypatch):
    from neurogen.tf_builder import GeneratedBuilder

    real = GeneratedBuilder.rand
    monkeypatch.setattr(GeneratedBuilder, "rand", lambda self, i, like: real(self, i, like) ** 2)
    bad = verify.verify_spec(REPO / "specs" / "escape_noise_lif.toml", quick=True)
    assert [c.status for c in bad.checks if c.name == "rate-statistics"] == ["FAIL"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["noisy_lif"])  # escape noise: tests/test_digits_12.py
def test_surrogate_training_flows_through_noise(name):
    import nengo_dl
    import tensorflow as tf

    module = generated_module(name)
    with nengo.Network(seed=0) as net:
        inp = nengo.Node([0.0])
        # (spikes come at the end of a step here: at most 1 / (tau_ref + dt) = 333 Hz)
        ens = nengo.Ensemble(20, 1, neuron_type=module.NEURON_TYPE(training="surrogate"), max_rates=nengo.dists.Uniform(100, 200))
        conn = nengo.Connection(inp, ens.neurons, transform=np.ones((20, 1)), synapse=None)
        out = nengo.Node(size_in=1)
        nengo.Connection(ens.neurons, out, transform=np.full((1, 20), 0.01), synapse=0.01)
        probe = nengo.Probe(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with nengo_dl.Simulator(net, minibatch_size=4, progress_bar=False, seed=1) as sim:
            x = np.ones((4, 50, 1))
            sim.compile(optimizer=tf.optimizers.SGD(0.1), loss=tf.losses.mse)
            before = sim.data[conn].weights.copy()
            history = sim.fit({inp: x}, {probe: np.full((4, 50, 1), 2.0)}, epochs=2, verbose=0)
            after = sim.data[conn].weights
    assert np.all(np.isfinite(history.history["loss"]))
    assert not np.array_equal(before, after)


def test_draws_in_a_loop_body_stay_in_the_body():
    """A statement with a body (sub-step loop) draws inside it: anew on each pass."""
    from dataclasses import dataclass

    from neurogen.ir import Assign
    from neurogen.symbolic import rand

    @dataclass(frozen=True)
    class Loop:
        n: int
        body: tuple
        comment: str = ""

    x, y = sp.symbols("x y", real=True)
    r = rand(sp.Dummy())
    out = noise.extract_draws([Assign(y, r), Loop(4, (Assign(x, sp.Add(x, rand(sp.Dummy()), evaluate=False)),))])
    assert isinstance(out[0], Draw) and isinstance(out[1], Assign) and isinstance(out[2], Loop)
    body = out[2].body
    assert isinstance(body, tuple) and isinstance(body[0], Draw) and body[0].target != out[0].target
    assert body[1].value.has(body[0].target) and not body[1].value.has(noise.RandomDraw)


def test_plot_draws_a_stochastic_spec(tmp_path):
    from neurogen.plot import plot_spec

    plot_spec(REPO / "specs" / "escape_noise_lif.toml", tmp_path / "x.svg", duration=0.1, dt=1e-3, currents=np.linspace(0, 3, 8))
    assert (tmp_path / "x.svg").stat().st_size > 1000
