"""Trainable neuron parameters in NengoDL (``trainable=("tau_rc", ...)``)."""

import numpy as np
import nengo
import pytest
from nengo.exceptions import ValidationError

import neurogen
from generated.exp_if import ExpIF
from generated.lif import LIF
from neurogen.trainable import PREFIX, from_raw, to_raw

nengo_dl = pytest.importorskip("nengo_dl")
tf = pytest.importorskip("tensorflow")

N = 6
TAU = np.linspace(0.01, 0.03, N)


def _network(*types, training_steps_input=0.6):
    with nengo.Network(seed=0) as net:
        nengo_dl.configure_settings(stateful=False)
        inp = nengo.Node([training_steps_input])
        ensembles = [nengo.Ensemble(N, 1, neuron_type=t, max_rates=nengo.dists.Uniform(80, 150),
                                    intercepts=nengo.dists.Uniform(-0.5, 0.2)) for t in types]
        out = nengo.Node(size_in=1)
        for ens in ensembles:
            nengo.Connection(inp, ens, synapse=None)
            nengo.Connection(ens, out, synapse=None, transform=0.01)
        probe = nengo.Probe(out)
        spikes = [nengo.Probe(e.neurons) for e in ensembles]
    return net, inp, ensembles, probe, spikes


def _raw_location(sim, ens, name):
    """(variable, indices) of the raw values of ``ens``'s parameter ``name``."""
    sig = sim.model.sig[ens.neurons][PREFIX + name]
    tensor_sig = sim.tensor_graph.signals[sig]
    variable = sim.tensor_graph.base_params[tensor_sig.key]
    return variable, np.concatenate([np.arange(start, stop) for start, stop in tensor_sig.slices])


def test_names_are_checked():
    assert LIF(trainable="tau_rc").trainable == ("tau_rc",)
    with pytest.raises(ValidationError, match="cannot train 'tau'.*tau_rc, tau_ref"):
        LIF(trainable=("tau",))


@pytest.mark.parametrize("low, high", [(0, None), (None, 0), (-1, 2), (None, None)])
def test_reparametrisation_round_trip_and_bounds(low, high):
    values = np.array([-0.5, 0.001, 0.3, 1.5]) + (low or 0) - (0 if high is None else 2)
    values = values[((low is None) | (values > (low or 0))) & ((high is None) | (values < (high or 0)))]
    raw = to_raw(values, low, high)
    np.testing.assert_allclose(from_raw(raw, low, high), values, rtol=1e-9, atol=1e-12)
    extreme = tf.constant([-1e4, -50.0, 0.0, 50.0, 1e4], tf.float64)
    mapped = from_raw(extreme, low, high, ops=tf.math).numpy()
    assert np.all(np.isfinite(mapped))
    if low is not None:
        assert np.all(mapped >= low)
    if high is not None:
        assert np.all(mapped <= high)


def test_rate_gradient_matches_finite_differences():
    """Rate training (closed form): d loss / d raw tau_rc and tau_ref from TensorFlow
    vs central differences of the same (float64) training forward pass."""
    net, inp, (ens,), probe, _ = _network(LIF(tau_rc=TAU, trainable=("tau_rc", "tau_ref")))
    with net:
        nengo_dl.configure_settings(dtype="float64")
    steps = 3
    with nengo_dl.Simulator(net, minibatch_size=1, progress_bar=False) as sim:
        inputs = {sim.get_name(inp): tf.constant(np.full((1, steps, 1), 0.6)),
                  "n_steps": tf.fill((1, 1), steps)}
        index = sim.model.probes.index(probe)

        def loss():
            return tf.reduce_sum(sim.keras_model(inputs, training=True)[index] ** 2)

        for name in ("tau_rc", "tau_ref"):
            variable, idx = _raw_location(sim, ens, name)
            with tf.GradientTape() as tape:
                value = loss()
            grad = tape.gradient(value, variable).numpy()[idx]
            assert np.abs(grad).max() > 0
            start = variable.numpy()
            numeric = []
            eps = 1e-6
            for i in idx:
                for sign in (1, -1):
                    shifted = start.copy()
                    shifted[i] += sign * eps
                    variable.assign(shifted)
                    numeric.append(loss().numpy())
                variable.assign(start)
            numeric = (np.array(numeric[::2]) - np.array(numeric[1::2])) / (2 * eps)
            np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9 * np.abs(numeric).max())


def test_check_gradients_with_trainable_parameters():
    net, inp, ens, probe, _ = _network(LIF(tau_rc=TAU, trainable="tau_rc"))
    with nengo_dl.Simulator(net, minibatch_size=1, progress_bar=False) as sim:
        grads = sim.check_gradients(inputs=[np.full((1, 3, 1), 0.4)], outputs=[probe])
    assert np.abs(grads[probe]["analytic"][0]).max() > 0


def _fit(sim, inp, probe, lr, epochs=3, steps=4):
    sim.compile(optimizer=tf.optimizers.SGD(lr), loss="mse")
    sim.fit({inp: np.full((4, steps, 1), 0.6)}, {probe: np.full((4, steps, 1), 3.0)},
            epochs=epochs, verbose=0)


@pytest.mark.slow
def test_mixed_group_trains_each_ensembles_own_parameters():
    """Ensembles of one type training tau_rc, tau_ref, one switched off with
    NengoDL's config and one without ``trainable`` are mergeable into one operator
    group (NengoDL's own test); each changes only what it trains."""
    from nengo_dl.graph_optimizer import mergeable

    types = (LIF(tau_rc=TAU, trainable=("tau_rc",)), LIF(trainable=("tau_ref",)),
             LIF(trainable=("tau_rc",)), LIF())
    net, inp, ensembles, probe, _ = _network(*types)
    a, b, c, d = ensembles
    with net:
        nengo_dl.configure_settings(trainable=None)
        net.config[c.neurons].trainable = False
    with nengo_dl.Simulator(net, minibatch_size=4, progress_bar=False) as sim:
        ops = [op for op in sim.tensor_graph.model.operators if type(op).__name__ == "SimNeurons"]
        assert all(mergeable(op, [ops[0]]) for op in ops[1:])
        assert max(len(g) for g in sim.tensor_graph.plan if g[0] in ops) >= 3
        before = {e: neurogen.learned_parameters(sim, e) for e in ensembles}
        _fit(sim, inp, probe, lr=1e-3)
        after = {e: neurogen.learned_parameters(sim, e) for e in ensembles}
    changed = {(e, k) for e in ensembles for k in before[e] if not np.array_equal(before[e][k], after[e][k])}
    assert changed == {(a, "tau_rc"), (b, "tau_ref")}
    np.testing.assert_allclose(before[a]["tau_rc"], TAU, rtol=1e-6)
    assert np.all(after[d]["tau_rc"] == LIF().tau_rc)


def test_no_parameter_signals_where_nothing_learns():
    """``inference_only`` (or every ensemble switched off): the operators read no
    parameter signals, so they merge with untrained ones and use constants."""
    net, *_ = _network(LIF(trainable=("tau_rc",)), LIF())
    with net:
        nengo_dl.configure_settings(inference_only=True)
    with nengo_dl.Simulator(net, progress_bar=False) as sim:
        ops = [op for op in sim.tensor_graph.model.operators if type(op).__name__ == "SimNeurons"]
        assert [len(op.reads) for op in ops] == [1, 1]
        assert not any(op.learned for op in ops)
        assert [len(g) for g in sim.tensor_graph.plan if g[0] in ops] == [2]


@pytest.mark.slow
def test_bounds_hold_after_aggressive_training():
    """Adam with learning rate 100 on the raw values (rate training, pushing the
    rates up): softplus saturates, and the parameters stay inside their (open or
    closed) bounds, in float32."""
    net, inp, (ens,), probe, _ = _network(LIF(tau_rc=TAU, trainable=("tau_rc", "tau_ref", "amplitude")))
    with nengo_dl.Simulator(net, minibatch_size=4, progress_bar=False) as sim:
        sim.compile(optimizer=tf.optimizers.Adam(100.0), loss="mse")
        sim.fit({inp: np.full((4, 4, 1), 0.6)}, {probe: np.full((4, 4, 1), 10.0)}, epochs=3, verbose=0)
        values = neurogen.learned_parameters(sim, ens)
    LIF(**values)  # nengo's own checks of the bounds accept them
    assert all(np.all(np.isfinite(v)) for v in values.values()), {k: list(v) for k, v in values.items()}
    assert np.all(values["tau_rc"] > 0) and np.all(values["tau_ref"] >= 0)
    assert np.all(values["amplitude"] > 0)
    assert not np.allclose(values["tau_rc"], TAU)


@pytest.mark.parametrize("module, cls, names", [
    ("izhikevich", "Izhikevich", ("tau_recovery", "coupling")),
    ("adaptive_lif", "AdaptiveLIF", ("tau_rc", "tau_n", "inc_n")),
])
def test_parameters_stay_finite_under_aggressive_surrogate_training(module, cls, names):
    """Adam with learning rate 100 through time: states masked out by a reset (or
    exp of a large number) are non-finite in the unused branch; their 0 * inf
    gradients must not reach the parameters (they did, as NaN, before the
    builder zeroed non-finite gradients at the step's inputs)."""
    import importlib

    neuron_type = getattr(importlib.import_module(f"generated.{module}"), cls)
    net, inp, (ens,), probe, _ = _network(neuron_type(trainable=names, training="surrogate"))
    with nengo_dl.Simulator(net, minibatch_size=4, progress_bar=False) as sim:
        sim.compile(optimizer=tf.optimizers.Adam(100.0), loss="mse")
        sim.fit({inp: np.full((4, 20, 1), 0.6)}, {probe: np.full((4, 20, 1), 10.0)}, epochs=5, verbose=0)
        values = neurogen.learned_parameters(sim, ens)
    assert all(np.all(np.isfinite(values[n])) for n in names), values
    neuron_type(**{n: values[n] for n in names})  # inside their bounds


@pytest.mark.slow
def test_freeze_round_trip_and_saved_params(tmp_path):
    """Trained in NengoDL (surrogate BPTT), frozen into the network: nengo core
    reproduces NengoDL's spikes; save_params / load_params keep the parameters."""
    net, inp, (ens,), probe, (spikes,) = _network(LIF(tau_rc=TAU, trainable="tau_rc", training="surrogate"))
    with net:
        nengo_dl.configure_settings(dtype="float64")
    with nengo_dl.Simulator(net, minibatch_size=4, progress_bar=False) as sim:
        _fit(sim, inp, probe, lr=1e-2)
        learned = neurogen.learned_parameters(sim, ens)
        sim.save_params(str(tmp_path / "params"))
        sim.freeze_params(net)
        neurogen.freeze_parameters(sim, net)
    assert not np.allclose(learned["tau_rc"], TAU)
    np.testing.assert_array_equal(ens.neuron_type.tau_rc, learned["tau_rc"])
    with nengo_dl.Simulator(net, progress_bar=False) as sim_dl:
        sim_dl.run_steps(300)
        dl_spikes = sim_dl.data[spikes]
    with nengo.Simulator(net, progress_bar=False) as sim_core:
        sim_core.run_steps(300)
    assert dl_spikes.any()
    np.testing.assert_array_equal(sim_core.data[spikes], dl_spikes)

    net2, _, (ens2,), _, _ = _network(LIF(tau_rc=TAU, trainable="tau_rc", training="surrogate"))
    with net2:
        nengo_dl.configure_settings(dtype="float64")
    with nengo_dl.Simulator(net2, minibatch_size=4, progress_bar=False) as sim2:
        sim2.load_params(str(tmp_path / "params"))
        np.testing.assert_allclose(neurogen.learned_parameters(sim2, ens2)["tau_rc"], learned["tau_rc"], rtol=1e-12)


def test_tabulated_rate_mode_is_a_clear_error():
    net, *_ = _network(ExpIF(trainable="tau_m"))
    with pytest.raises(Exception, match="simulated table.*training='surrogate'"):
        with nengo_dl.Simulator(net, progress_bar=False):
            pass
