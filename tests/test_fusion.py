"""The fused (XLA-compiled) generated step against the plain TensorFlow ops of the same
``step``: values over many steps, surrogate gradients, parameters as arguments (not
constants baked into the compiled function), and the ``fuse`` switch."""

import importlib
import inspect

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import generated  # noqa: E402
from neurogen.tf_builder import GeneratedBuilder  # noqa: E402

def bundled():
    from pathlib import Path

    root = Path(generated.__file__).parent
    return sorted(p.stem for p in root.glob("*.py") if p.stem != "__init__")


def make_builder(name, dtype, training="rate", **params):
    """The generated builder of ``name`` with what ``step`` reads (as in build_pre)."""
    mod = importlib.import_module(f"generated.{name}")
    neuron = mod.NEURON_TYPE(**params)
    builder = object.__new__(mod.BUILDER)
    builder.params = {k: tf.constant(getattr(neuron, k), dtype) for k in mod.BUILDER.parameters}
    builder.dtype, builder.training, builder.smoothing = dtype, training, None
    builder.surrogate, builder.scale = "fast_sigmoid", tf.constant(5.0, dtype)
    builder.fuse_min_size = 0  # fuse the small test groups too
    builder.dt_value = 0.001  # the simulator step (sub-stepped specs read it)
    if getattr(mod.BUILDER, "draws", 0):  # a stochastic spec: seeds as build_random makes them
        builder.op_seeds = tf.constant(np.arange(1, mod.BUILDER.draws + 1) * 7919, tf.int64)
    return mod, neuron, builder


def run_steps(builder, neuron, J, dtype, steps, fused):
    """Outputs and states of ``steps`` steps (each step compiled on its own when fused)."""
    state = {k: tf.constant(np.asarray(v, dtype.as_numpy_dtype)[None, :])
             for k, v in neuron.make_state(J.shape[1], np.random.RandomState(0)).items() if k != "rng"}
    state = {k: v + tf.zeros_like(J) for k, v in state.items()}
    history = []
    call = builder.fused_step if fused else builder.step
    for i in range(steps):
        if getattr(builder, "draws", 0):  # this step's position, as build_step sets it
            builder.step_now, builder.pass_now = tf.constant(i, tf.int64), tf.constant(0, tf.int64)
            builder.calls = [0] * builder.draws
        out = tf.nest.flatten(call(J, tf.constant(0.001, dtype), **state))
        state = dict(zip(state, out[1:]))
        history.append(np.stack([o.numpy() for o in out]))
    return np.array(history)


def stochastic(name):
    return bool(getattr(importlib.import_module(f"generated.{name}").BUILDER, "draws", 0))


@pytest.mark.parametrize("name", [n for n in bundled() if not stochastic(n)])
def test_fused_step_matches_plain_step(name):
    """float64, 60 steps over a range of currents that makes every spiking model fire:
    the XLA-compiled step gives the plain step's outputs and states."""
    dtype = tf.float64
    _, neuron, builder = make_builder(name, dtype)
    J = tf.constant(np.linspace(-2, 40, 48)[None, :], dtype)
    steps = 12 if "substep_loop" in inspect.getsource(type(builder).step) else 60  # 20 sub-steps each
    plain = run_steps(builder, neuron, J, dtype, steps, fused=False)
    fused = run_steps(builder, neuron, J, dtype, steps, fused=True)
    # XLA may reassociate float64 sums: 1e-12 per step grows over the 20-sub-step
    # conductance models (seen: 7e-12 relative after 60 steps)
    np.testing.assert_allclose(fused, plain, rtol=1e-10, atol=1e-9)
    assert np.ptp(plain) > 0  # outputs or states change (a test that can fail)


def step_graph_ops(builder, shape):
    """The ops of a graph that calls ``fused_step`` on Izhikevich tensors of ``shape``."""
    J = tf.zeros(shape)
    fn = tf.function(lambda J: builder.fused_step(J, 0.001, voltage=J, recovery=J), autograph=False)
    return fn.get_concrete_function(J).graph.get_operations()


def is_fused(ops):
    calls = [op for op in ops if op.type in ("PartitionedCall", "StatefulPartitionedCall")]
    if calls:  # the step's ops are inside the one call, compiled by XLA
        assert len(calls) == 1 and calls[0].get_attr("_XlaMustCompile")
        assert not any(op.type == "Maximum" for op in ops)
        return True
    assert any(op.type == "Maximum" for op in ops)  # the step's ops are in the caller's graph
    return False


def test_fused_step_is_compiled_and_switchable(monkeypatch):
    """Fused: ``step`` runs inside one function call marked for XLA compilation; with
    ``fuse = False`` (set before the builder's first step) the ops are in the caller's
    graph.  Groups below ``fuse_min_size`` elements are not fused."""
    assert is_fused(step_graph_ops(make_builder("izhikevich", tf.float32)[2], (2, 5)))
    monkeypatch.setattr(GeneratedBuilder, "fuse", False)
    assert not is_fused(step_graph_ops(make_builder("izhikevich", tf.float32)[2], (2, 5)))
    monkeypatch.setattr(GeneratedBuilder, "fuse", True)
    builder = make_builder("izhikevich", tf.float32)[2]
    builder.fuse_min_size = 11
    assert not is_fused(step_graph_ops(builder, (2, 5)))
    builder = make_builder("izhikevich", tf.float32)[2]
    builder.fuse_min_size = 10
    assert is_fused(step_graph_ops(builder, (2, 5)))


def test_parameters_are_arguments():
    """A parameter held in a variable: the compiled step reads its current value (no
    constant baked in at tracing), and the surrogate gradients (w.r.t. J and the
    variable) are the plain step's."""
    dtype = tf.float64
    _, neuron, builder = make_builder("adaptive_lif", dtype, training="surrogate")
    tau_n = tf.Variable(1.0, dtype=dtype)
    builder.params["tau_n"] = tau_n
    J = tf.constant(np.linspace(0, 8, 16)[None, :], dtype)
    v = tf.constant(np.linspace(0.45, 0.98, 16)[None, :], dtype)
    adaptation = tf.fill(J.shape, tf.constant(0.5, dtype))

    def outputs(fused):
        call = builder.fused_step if fused else builder.step
        with tf.GradientTape() as tape:
            tape.watch(J)
            out = call(J, tf.constant(0.001, dtype), voltage=v, refractory_time=0 * J, adaptation=adaptation)
            loss = sum(tf.reduce_sum(x ** 2) for x in out)
        grads = tape.gradient(loss, [J, tau_n])
        return [t.numpy() for t in (*out, *grads)]

    adapted = []
    for value in (1.0, 0.1):
        tau_n.assign(value)
        plain, fused = outputs(False), outputs(True)
        adapted.append(fused[3])
        for a, b in zip(fused, plain):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-300)
        assert np.abs(plain[-2]).max() > 0 and plain[-1] != 0  # surrogate gradients flow
    assert not np.allclose(adapted[0], adapted[1])  # the compiled step saw the new value


@pytest.mark.slow
@pytest.mark.parametrize("training", ["rate", "surrogate"])
def test_simulator_fused_and_unfused(monkeypatch, training):
    """In NengoDL (float64): the same spikes with and without fusion, and the same
    gradient of a loss on the neurons' output w.r.t. the encoders (surrogate: through
    the fused step, backpropagated over the steps; rate: ``training_step``)."""
    import nengo
    import nengo_dl

    from generated.adaptive_lif import AdaptiveLIF

    x = np.random.RandomState(0).uniform(-1, 1, (2, 20, 1))

    monkeypatch.setattr(GeneratedBuilder, "fuse_min_size", 0)

    def run(fuse):
        monkeypatch.setattr(GeneratedBuilder, "fuse", fuse)
        with nengo.Network(seed=1) as net:
            nengo_dl.configure_settings(dtype="float64", trainable=True)
            stim = nengo.Node([0.0])
            ens = nengo.Ensemble(40, 1, neuron_type=AdaptiveLIF(training=training))
            nengo.Connection(stim, ens, synapse=None)
            probe = nengo.Probe(ens.neurons)
        with nengo_dl.Simulator(net, minibatch_size=2, progress_bar=False) as sim:
            spikes = sim.predict({stim: x})[probe]
            inputs = {sim.get_name(stim): tf.constant(x), "n_steps": tf.fill((2, 1), 20)}
            weights = sim.keras_model.trainable_weights
            with tf.GradientTape() as tape:
                outputs = sim.keras_model(inputs, training=True)
                loss = tf.reduce_mean(outputs[sim.model.probes.index(probe)] ** 2)
            grads = [g for g in tape.gradient(loss, weights) if g is not None]
            return spikes, [g.numpy() for g in grads]

    (fused, fused_grads), (plain, plain_grads) = run(True), run(False)
    np.testing.assert_allclose(fused, plain, rtol=1e-12)
    assert fused.max() > 0
    assert len(fused_grads) == len(plain_grads) > 0
    for a, b in zip(fused_grads, plain_grads):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert any(np.abs(g).max() > 0 for g in plain_grads)


@pytest.mark.parametrize("name", [n for n in bundled() if stochastic(n)])
def test_fused_stochastic_step_in_distribution(name):
    """XLA's stateless random kernels give other numbers than TensorFlow's own for the
    same seed, so a fused stochastic step is compared in distribution: the same seeds
    repeat exactly, and the mean output over 2000 neurons x 40 steps equals the plain
    step's within 5 standard errors (a wrong noise scale or a reused seed fails)."""
    dtype = tf.float64
    _, neuron, builder = make_builder(name, dtype)
    J = tf.constant(np.full((1, 2000), 1.2), dtype)
    plain = run_steps(builder, neuron, J, dtype, 40, fused=False)[:, 0]
    fused = run_steps(builder, neuron, J, dtype, 40, fused=True)[:, 0]
    again = run_steps(builder, neuron, J, dtype, 40, fused=True)[:, 0]
    np.testing.assert_array_equal(fused, again)
    assert not np.array_equal(fused[-1], fused[-2])  # new numbers every step
    se = np.hypot(plain.std(), fused.std()) / np.sqrt(plain.size)
    assert plain.mean() > 0 and abs(fused.mean() - plain.mean()) < 5 * se
