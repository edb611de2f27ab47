"""TensorFlow run-time support against independent NumPy formulas, and NengoDL's
training step against ``rates`` (fast; the end-to-end training tests are slow)."""

import nengo
import numpy as np
import pytest

from conftest import builder_registrations_kept, generated_module, nengo_precision_kept
from neurogen import tf_runtime as runtime

tf = pytest.importorskip("tensorflow")
nengo_dl = pytest.importorskip("nengo_dl")

X = np.linspace(-2, 2, 41)
SCALE = 3.0
#: the documented formulas (runtime.SURROGATES), written again in NumPy
FORMULAS = {
    "fast_sigmoid": lambda x, a: 1 / (1 + a * np.abs(x)) ** 2,
    "arctan": lambda x, a: 1 / (1 + (np.pi * a * x) ** 2),
    "sigmoid": lambda x, a: 4 / (1 + np.exp(-a * x)) * (1 - 1 / (1 + np.exp(-a * x))),
    "triangle": lambda x, a: np.maximum(0, 1 - a * np.abs(x)),
    "exponential": lambda x, a: np.exp(-a * np.abs(x)),
    "gaussian": lambda x, a: np.exp(-((a * x) ** 2) / 2),
    "straight_through": lambda x, a: np.ones_like(x),
}


def test_every_surrogate_has_a_formula():
    assert set(FORMULAS) == set(runtime.SURROGATES)
    with pytest.raises(ValueError, match="unknown surrogate 'nope'"):
        runtime.surrogate_derivative("nope", tf.constant(X), SCALE)


@pytest.mark.parametrize("kind", sorted(FORMULAS))
def test_surrogate_derivatives_match_their_formulas(kind):
    got = runtime.surrogate_derivative(kind, tf.constant(X), SCALE).numpy()
    np.testing.assert_allclose(got, FORMULAS[kind](X, SCALE), rtol=1e-12, atol=1e-15)
    assert runtime.surrogate_derivative(kind, tf.constant(0.0, tf.float64), SCALE).numpy() == 1.0


@pytest.mark.parametrize("kind", ["fast_sigmoid", "triangle"])
def test_surrogate_spikes_forward_and_gradient(kind):
    distance = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(distance)
        spikes = runtime.surrogate_spikes(distance > 0, distance, kind, SCALE)
        loss = tf.reduce_sum(spikes * tf.constant(np.arange(X.size, dtype=float)))
    np.testing.assert_array_equal(spikes.numpy(), (X > 0).astype(float))
    grad = tape.gradient(loss, distance).numpy()
    np.testing.assert_allclose(grad, np.arange(X.size) * FORMULAS[kind](X, SCALE), rtol=1e-12)


def test_straight_through_and_smooth_threshold():
    x = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = runtime.straight_through(tf.floor(x), 3 * x)
    np.testing.assert_array_equal(y.numpy(), np.floor(X))
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), 3.0)
    J = np.array([-50.0, 0.0, 1.0, 2.0, 50.0])
    from neurogen.tf_builder import GeneratedBuilder

    builder = GeneratedBuilder.__new__(GeneratedBuilder)  # only its smoothing is used
    builder.smoothing = (tf.constant(1.0, tf.float64), tf.constant(0.1, tf.float64))
    got = builder.smooth(tf.constant(J)).numpy()
    np.testing.assert_allclose(got, 1 + 0.1 * np.log1p(np.exp((J - 1) / 0.1)), rtol=1e-12)
    assert got[0] == pytest.approx(1.0) and got[-1] == pytest.approx(50.0)  # threshold below, J above


# ----------------------------------------------------------------------------
# NengoDL's training step (learning_phase=True) is the neuron type's rates


@pytest.mark.parametrize(
    "name, kwargs",
    [("lif", dict(tau_rc=0.05, tau_ref=0.005, amplitude=0.5)), ("qif", dict(tau_m=0.02, v_peak=20.0))],
)
def test_training_step_is_the_rate_per_parameter_set(name, kwargs):
    """Two ensembles with different parameters, merged by NengoDL into one operator
    group: each must get its own rate (its own table, for a tabulated type)."""
    cls = generated_module(name).NEURON_TYPE
    types = [cls(), cls(**kwargs)]
    with nengo.Network(seed=0) as net:
        nengo_dl.configure_settings(dtype="float64", learning_phase=True)
        stim = nengo.Node(lambda t: np.sin(2 * np.pi * t))
        probes = []
        for nt in types:
            ens = nengo.Ensemble(10, 1, neuron_type=nt, gain=np.linspace(1, 30, 10), bias=np.linspace(-2, 40, 10))
            nengo.Connection(stim, ens, synapse=None)
            probes.append((nt, nengo.Probe(ens.neurons), nengo.Probe(ens.neurons, "input")))
    with builder_registrations_kept(), nengo_precision_kept():
        with nengo_dl.Simulator(net, progress_bar=False) as sim:
            sim.run_steps(20)
    for nt, out, inp in probes:
        J = sim.data[inp]
        want = nt.rates(J.ravel(), 1.0, 0.0).reshape(J.shape)
        assert np.any(want > 0)
        np.testing.assert_allclose(sim.data[out], want, rtol=1e-9, atol=1e-9)
