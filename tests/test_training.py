"""Training through the generated NengoDL builders: gradients, fits, rate approximations.

Covered, for every generated spiking type (LIF, AdaptiveLIF, Izhikevich, FastLIF,
SpikingRectifiedLinear, ALIFThreshold, AdEx, QIF, ExpIF):

1. gradients on the training path, in both training modes (``test_rate_gradients``,
   ``test_surrogate_*``);
2. ``sim.fit`` makes the loss fall on a tiny regression (x -> x**2): every type in
   ``"rate"`` mode, a subset (LIF, AdaptiveLIF, Izhikevich, ALIFThreshold) in
   ``"surrogate"`` mode with several timesteps per example;
3. what happens without the generated builder (NengoDL's Python fallback);
4. the closed-form LIF rate and its derivative against SymPy, and the smoothed rate;
5. the accuracy of the tabulated rate approximations.

All networks are small (Node -> Ensemble(16) -> Node, minibatch 2, float64) and shared
between tests through a module cache; the module runs in ~75 s on 2 cores.

Bugs found here, each fixed and guarded by a plain test:

* (fixed) surrogate gradients vanished after the first build: ``build_pre`` set
  ``self.spiking = False`` on the builder instance and NengoDL calls ``build_pre`` again
  on it whenever it rebuilds its Keras model; ``test_surrogate_gradients_as_shipped``
  guards it.  ``surrogate_rebuild_workaround`` is now a no-op safety net.
* (fixed) SpikingRectifiedLinear's reset was differentiated through the
  straight-through spike count; resets now read ``tf.stop_gradient(spikes)``.
* (fixed) the smoothed rate lost its gradient well before NengoDL's SoftLIF did: the
  builder smoothed the *current* (``J' = 1 + s softplus((J - 1) / s)``) and the rate
  recomputed ``J' - 1``, which rounds to 0 far below threshold; closed-form rates now
  read the smoothed excess ``s softplus((J - 1) / s)`` directly
  (``test_lif_smoothing_gradient_far_below_threshold``).
"""

import contextlib
import functools
import importlib
import warnings
from types import SimpleNamespace
from typing import NamedTuple

import nengo
import numpy as np
import pytest
import sympy as sp

from conftest import REPO, nengo_precision_kept  # (also puts the repository root on sys.path)

pytestmark = pytest.mark.slow

nengo_dl = pytest.importorskip("nengo_dl")
tf = pytest.importorskip("tensorflow")

import generated  # noqa: E402, F401  (registers every generated builder)
from nengo_dl.neuron_builders import SimNeuronsBuilder  # noqa: E402

from neurogen import runtime, tf_runtime  # noqa: E402
from neurogen.build import compile_spec  # noqa: E402
from neurogen.model import J as J_SYMBOL  # noqa: E402
from neurogen.symbolic import evaluated  # noqa: E402
from neurogen.tf_builder import GeneratedBuilder  # noqa: E402

N = 16  # neurons per ensemble
MINIBATCH = 2
SEED = 0

# Izhikevich at rest (v = c = -65 mV, u = b v) instead of nengo's default v in [0, 1] mV
IZH_REST = {"voltage": nengo.dists.Choice([-65.0]), "recovery": nengo.dists.Choice([-13.0])}


class Case(NamedTuple):
    """One generated spiking type and the currents it is driven with."""

    module: str
    j_th: float  # about where firing starts
    j_100: float  # about where it fires at 100 Hz
    surrogate_scale: float  # sharpness for the surrogate: ~1 / (typical distance to threshold)
    kwargs: dict = {}  # constructor arguments used everywhere
    state: str = "voltage"  # state probed for the BPTT gradient check
    state_check: dict = {}  # constructor overrides for that check (see test)


CASES = {
    "LIF": Case("lif", 1.0, 3.0, 10.0),
    "AdaptiveLIF": Case("adaptive_lif", 1.0, 4.0, 10.0, state_check=dict(inc_n=0)),
    "Izhikevich": Case("izhikevich", 3.8, 50.0, 0.2, dict(initial_state=IZH_REST)),
    "FastLIF": Case("fast_lif", 1.0, 3.0, 10.0),
    "SpikingRectifiedLinear": Case("spiking_rectified_linear", 0.0, 100.0, 10.0),
    "ALIFThreshold": Case("alif_threshold", 1.0, 7.2, 10.0),
    "AdEx": Case("adex", 0.63, 2.4, 0.2),
    "QIF": Case("qif", 1.0, 12.4, 1.0),
    "ExpIF": Case("exp_if", 13.0, 63.0, 0.2),
}
NAMES = list(CASES)
SURROGATE_FIT = ["LIF", "AdaptiveLIF", "Izhikevich", "ALIFThreshold"]



def neuron_class(name):
    return getattr(importlib.import_module(f"generated.{CASES[name].module}"), name)


def is_tabulated(name):
    return neuron_class(name).rate_table_options is not None


# --------------------------------------------------------------------------------------
# networks and simulators


class Net(NamedTuple):
    net: nengo.Network
    inp: nengo.Node
    ens: nengo.Ensemble
    out: nengo.Probe  # decoded output (synapse None)
    state: nengo.Probe  # one neuron state


def make_network(name, neuron_type):
    """Node -> Ensemble(N) -> Node, currents from below threshold to ~100-200 Hz."""
    case = CASES[name] if name in CASES else None
    j_th, j_100 = (case.j_th, case.j_100) if case else (1.0, 4.0)
    rng = np.random.RandomState(SEED)
    span = j_100 - j_th
    with nengo.Network(seed=SEED) as net:
        # learning_phase=True: sim.evaluate runs the training path too, so the loss
        # before and after sim.fit is the loss that fit minimizes
        nengo_dl.configure_settings(dtype="float64", stateful=False, learning_phase=True)
        inp = nengo.Node(np.zeros(1))
        ens = nengo.Ensemble(
            N,
            1,
            neuron_type=neuron_type,
            gain=rng.uniform(0.5, 1.0, N) * span,
            bias=j_th + rng.uniform(-0.2, 1.0, N) * span,
        )
        out = nengo.Node(size_in=1)
        nengo.Connection(inp, ens, synapse=None)
        nengo.Connection(ens, out, synapse=None)
        state = case.state if case else "voltage"
        return Net(net, inp, ens, nengo.Probe(out), nengo.Probe(ens.neurons, state))


def make_neuron(name, mode, **overrides):
    case = CASES[name]
    kwargs = dict(case.kwargs, training=mode)
    if mode == "surrogate":
        kwargs["surrogate_scale"] = case.surrogate_scale
    kwargs.update(overrides)
    return neuron_class(name)(**kwargs)


_SIMS = {}


def get_sim(name, mode, **overrides):
    """A cached ``(Simulator, Net)`` (minibatch 2, float64) for one type and mode.

    Gradient checks are valid at any weights, and fits measure the loss before and
    after themselves, so the tests sharing a simulator do not depend on their order.
    """
    key = (name, mode, tuple(sorted(overrides.items())))
    if key not in _SIMS:
        handles = make_network(name, make_neuron(name, mode, **overrides))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sim = nengo_dl.Simulator(
                handles.net, minibatch_size=MINIBATCH, seed=SEED, progress_bar=False
            )
        assert not [w for w in caught if "falling back" in str(w.message)]
        _SIMS[key] = (sim, handles)
    return _SIMS[key]


@pytest.fixture(scope="module", autouse=True)
def _close_sims():
    with nengo_precision_kept():  # NengoDL sets nengo.rc's float precision while building
        yield
        for sim, _ in _SIMS.values():
            sim.close()
        _SIMS.clear()


@contextlib.contextmanager
def surrogate_rebuild_workaround():
    """Undo the builder-instance ``spiking = False`` before every ``build_pre``.

    Works around the surrogate-rebuild bug (see the module docstring) so that the
    rest of the surrogate path can be tested; a no-op once the bug is fixed.
    """
    original = GeneratedBuilder.build_pre

    def build_pre(self, signals, config):
        self.__dict__.pop("spiking", None)
        return original(self, signals, config)

    GeneratedBuilder.build_pre = build_pre
    try:
        yield
    finally:
        GeneratedBuilder.build_pre = original


def check_inputs(steps=3):
    return [np.random.RandomState(1).uniform(-1, 1, (MINIBATCH, steps, 1))]


def classify_weights(sim):
    """The trainable variables by role: ``{"bias", "encoders", "decoders"}``."""
    roles = {(N,): "bias", (N, 1): "encoders", (1, N): "decoders"}
    weights = {roles[tuple(w.shape)]: w for w in sim.keras_model.trainable_weights}
    assert sorted(weights) == ["bias", "decoders", "encoders"], weights
    return weights


def weight_gradients(sim, handles, steps=5):
    """Gradient of the mean decoded output (training path) w.r.t. each trainable."""
    weights = classify_weights(sim)
    x = np.random.RandomState(2).uniform(-1, 1, (MINIBATCH, steps, 1))
    inputs = {
        sim.get_name(handles.inp): tf.constant(x),
        "n_steps": tf.fill((MINIBATCH, 1), steps),
    }

    @tf.function(autograph=False)
    def gradients():
        with tf.GradientTape() as tape:
            outputs = sim.keras_model(inputs, training=True)
            loss = tf.reduce_mean(outputs[sim.model.probes.index(handles.out)])
        return tape.gradient(loss, list(weights.values()))

    grads = gradients()
    return {k: (None if g is None else g.numpy()) for k, g in zip(weights, grads)}


def regression_data(steps, n=32):
    x = np.random.RandomState(3).uniform(-1, 1, (n, 1, 1))
    return np.tile(x, (1, steps, 1)), np.tile(x**2, (1, steps, 1))


def time_mean_mse(y_true, y_pred):
    """MSE of the output averaged over the example's timesteps (spike counts)."""
    return tf.reduce_mean(tf.square(tf.reduce_mean(y_pred, axis=1) - y_true[:, 0]))


def fit(sim, handles, steps, epochs, lr, loss):
    """Loss before and after ``sim.fit``, and the weights before and after."""
    x, y = regression_data(steps)
    sim.compile(optimizer=tf.optimizers.Adam(lr), loss={handles.out: loss})
    weights = classify_weights(sim)
    before = {k: w.numpy().copy() for k, w in weights.items()}
    loss0 = sim.evaluate(x, {handles.out: y}, verbose=0)["loss"]
    sim.fit(x, {handles.out: y}, epochs=epochs, verbose=0)
    loss1 = sim.evaluate(x, {handles.out: y}, verbose=0)["loss"]
    after = {k: w.numpy() for k, w in weights.items()}
    return loss0, loss1, before, after


# --------------------------------------------------------------------------------------
# 1. gradients on the training path


@pytest.mark.parametrize("name", NAMES)
def test_rate_gradients(name, monkeypatch):
    """``training="rate"``: ``sim.check_gradients`` of the decoded output w.r.t. the input.

    The analytic (TensorFlow) gradient of the steady-state rate must match central
    differences of the same forward pass.  Closed-form rates (LIF, FastLIF,
    SpikingRectifiedLinear) are smooth, so TensorFlow's default step (1/1024) is used.
    A tabulated rate is piecewise linear in ``sqrt(J - J_th)``, and between adjacent
    nodes of a step-based model's staircase f-I curve its slope can jump a lot: with a
    step of 1/1024 in the input (gain/1024 in J), central differences straddle a kink
    for some neuron and the check fails (Izhikevich, AdEx, QIF, ExpIF: by 0.2-18 %;
    AdaptiveLIF and ALIFThreshold happen to pass).  That is the function, not a wrong
    gradient, so for tabulated types the check uses a step of 2**-20, which tests
    exactly that TensorFlow differentiates the interpolant correctly.
    """
    sim, handles = get_sim(name, "rate")
    if is_tabulated(name):
        monkeypatch.setattr(
            tf.test, "compute_gradient", functools.partial(tf.test.compute_gradient, delta=2.0**-20)
        )
    grads = sim.check_gradients(inputs=check_inputs(), outputs=[handles.out])
    analytic = grads[handles.out]["analytic"][0]
    assert np.all(np.isfinite(analytic))
    assert np.abs(analytic).max() > 0.1  # the output depends on the input


def _state_check_sim(name):
    overrides = CASES[name].state_check
    return get_sim(name, "surrogate", **overrides)


@pytest.mark.parametrize("name", NAMES)
def test_surrogate_bptt_through_states(name):
    """``training="surrogate"``: ``sim.check_gradients`` on a *state* probe over 3 steps.

    The spike output itself cannot be checked this way: the forward pass is spiking
    (piecewise constant: its numeric gradient is 0 almost everywhere), while the
    analytic gradient is the surrogate.  But a state such as the voltage only depends
    on the spike through the reset condition (``tf.where(spiked, ...)``, not
    differentiated), so its BPTT gradient through ``step`` must equal the numeric
    gradient wherever no spike flips under the perturbation.  This checks the
    differentiation of the integration, refractory and reset code through time.
    AdaptiveLIF runs with ``inc_n = 0``: otherwise its adaptation integrates the spike
    output, whose surrogate derivative then (by design) enters the voltage's gradient.
    """
    sim, handles = _state_check_sim(name)
    with surrogate_rebuild_workaround():
        grads = sim.check_gradients(inputs=check_inputs(), outputs=[handles.state])
    analytic = grads[handles.state]["analytic"][0]
    assert np.all(np.isfinite(analytic))
    assert np.abs(analytic).max() > 0


@pytest.mark.parametrize("name", NAMES)
def test_surrogate_gradients_reach_inputs(name):
    """``training="surrogate"``: the surrogate derivative carries the gradient of the
    (spiking) output back to the encoders and biases, finite and nonzero.

    (With the surrogate-rebuild bug worked around; see the next test for the
    generated code as shipped.)  Whether the values are *right* is checked exactly for
    LIF in ``test_lif_surrogate_derivative``; that they are *useful* by the fits.
    """
    sim, handles = get_sim(name, "surrogate")
    with surrogate_rebuild_workaround():
        grads = weight_gradients(sim, handles)
    for role in ("encoders", "bias", "decoders"):
        assert grads[role] is not None, role
        assert np.all(np.isfinite(grads[role])), role
    # (the decoders' gradient is the spike output: 0 where nothing spiked yet, as for
    # QIF, which needs ~20 ms from its initial state to its first spike)
    for role in ("encoders", "bias"):
        assert np.abs(grads[role]).max() > 0, role


@pytest.mark.parametrize("name", NAMES)
def test_surrogate_gradients_as_shipped(name):
    """Without the workaround, the spike output has no gradient w.r.t. anything before
    the neurons once the Keras model has been rebuilt (every fit/evaluate call)."""
    sim, handles = get_sim(name, "surrogate")
    grads = weight_gradients(sim, handles)
    for role in ("encoders", "bias"):
        assert grads[role] is not None and np.abs(grads[role]).max() > 0, role


def test_lif_surrogate_derivative():
    """One LIF ``step`` in surrogate mode: d output / d J is exactly
    ``amplitude / dt * surrogate(v' - 1) * dv'/dJ`` with ``v' = v + (v - J) expm1(-dt/tau_rc)``
    (``dv'/dJ = -expm1(-dt/tau_rc)``), for every surrogate; the forward pass is the
    plain spike."""
    from generated.lif import BUILDER as LIFBuilder
    from generated.lif import LIF

    dtype, dt = tf.float64, 0.001
    neuron = LIF(amplitude=0.5)
    builder = object.__new__(LIFBuilder)  # the step needs only these attributes
    builder.params = {k: tf.constant(getattr(neuron, k), dtype) for k in LIFBuilder.parameters}
    builder.dtype = dtype
    J = tf.constant(np.linspace(-1, 30, 40)[None, :], dtype)
    v0 = tf.constant(np.random.RandomState(0).uniform(0, 1, (1, 40)), dtype)
    ref0 = tf.zeros_like(v0)
    v1 = (v0 + (v0 - J) * np.expm1(-dt / neuron.tau_rc)).numpy()
    for kind in tf_runtime.SURROGATES:
        builder.training, builder.surrogate, builder.scale = "surrogate", kind, 7.0
        with tf.GradientTape() as tape:
            tape.watch(J)
            out, _, _ = builder.step(J, dt, v0, ref0)
        grad = tape.gradient(out, J).numpy()
        assert np.array_equal(out.numpy(), np.where(v1 > 1, neuron.amplitude / dt, 0)), kind
        expected = (
            neuron.amplitude
            / dt
            * tf_runtime.surrogate_derivative(kind, tf.constant(v1 - 1), 7.0).numpy()
            * -np.expm1(-dt / neuron.tau_rc)
        )
        np.testing.assert_allclose(grad, expected, rtol=1e-12, err_msg=kind)


# --------------------------------------------------------------------------------------
# 2. sim.fit


@pytest.mark.parametrize("name", NAMES)
def test_rate_fit(name):
    """``training="rate"``: 1 step per example, x -> x**2; the training-path MSE (initially
    ~0.5: the decoders compute x) falls below half."""
    sim, handles = get_sim(name, "rate")
    loss0, loss1, before, after = fit(
        sim, handles, steps=1, epochs=8, lr=1e-3, loss=tf.losses.mse
    )
    print(f"\n{name} rate fit: loss {loss0:.4f} -> {loss1:.4f}")
    assert np.isfinite(loss1)
    assert loss1 < 0.5 * loss0
    assert not np.array_equal(before["bias"], after["bias"])


@pytest.mark.parametrize("name", SURROGATE_FIT)
def test_surrogate_fit(name):
    """``training="surrogate"``: 10 steps per example (BPTT), loss on the output averaged
    over the steps; the loss falls below half, and the encoders and biases -- reached
    only through the surrogate derivative -- are trained too (bug worked around; as
    shipped only the decoders change, see ``test_surrogate_gradients_as_shipped``)."""
    sim, handles = get_sim(name, "surrogate")
    with surrogate_rebuild_workaround():
        loss0, loss1, before, after = fit(
            sim, handles, steps=10, epochs=4, lr=2e-3, loss=time_mean_mse
        )
    print(f"\n{name} surrogate fit: loss {loss0:.4f} -> {loss1:.4f}")
    assert np.isfinite(loss1)
    assert loss1 < 0.5 * loss0
    for role in ("encoders", "bias", "decoders"):
        assert not np.array_equal(before[role], after[role]), role


# --------------------------------------------------------------------------------------
# 3. NengoDL's fallback


def test_fallback_cannot_train_adaptive_lif():
    """Without the generated builder, NengoDL runs ``nengo.AdaptiveLIF`` through its
    generic Python fallback (``tf.numpy_function``): it warns, the forward pass is the
    spiking step even while training, and nothing before the neurons gets a gradient
    (zero or None: ``tf.numpy_function`` is not differentiable).  ``sim.fit`` does not
    raise; it leaves the encoders and biases bitwise unchanged and trains only the
    decoders, on single-step spikes (the loss still falls, ~0.78 -> ~0.28, as the
    decoders learn which neurons spike in the first step).  With the registration
    restored, the same model trains through the rate (encoders and biases included)."""
    impl = SimNeuronsBuilder.TF_NEURON_IMPL
    assert impl.get(nengo.AdaptiveLIF) is generated.adaptive_lif.BUILDER
    saved = impl.pop(nengo.AdaptiveLIF)
    try:
        handles = make_network("AdaptiveLIF", nengo.AdaptiveLIF())
        with pytest.warns(UserWarning, match="AdaptiveLIF.*falling back"):
            sim = nengo_dl.Simulator(
                handles.net, minibatch_size=MINIBATCH, seed=SEED, progress_bar=False
            )
        with sim:
            grads = weight_gradients(sim, handles)
            for role in ("encoders", "bias"):  # None, or zeros through the while loop
                assert grads[role] is None or not np.any(grads[role]), role
            assert grads["decoders"] is not None and np.any(grads["decoders"])
            loss0, loss1, before, after = fit(
                sim, handles, steps=1, epochs=2, lr=1e-3, loss=tf.losses.mse
            )
            assert np.array_equal(before["encoders"], after["encoders"])
            assert np.array_equal(before["bias"], after["bias"])
            assert not np.array_equal(before["decoders"], after["decoders"])
            print(f"\nfallback AdaptiveLIF fit: loss {loss0:.4f} -> {loss1:.4f}")
    finally:
        impl[nengo.AdaptiveLIF] = saved

    handles = make_network("AdaptiveLIF", nengo.AdaptiveLIF())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim = nengo_dl.Simulator(
            handles.net, minibatch_size=MINIBATCH, seed=SEED, progress_bar=False
        )
    assert not [w for w in caught if "falling back" in str(w.message)]
    with sim:
        grads = weight_gradients(sim, handles)
        for role in ("encoders", "bias"):
            assert grads[role] is not None and np.abs(grads[role]).max() > 0, role
        loss0, loss1, _, _ = fit(sim, handles, steps=1, epochs=8, lr=1e-3, loss=tf.losses.mse)
        print(f"registered nengo.AdaptiveLIF fit: loss {loss0:.4f} -> {loss1:.4f}")
        assert loss1 < 0.5 * loss0


# --------------------------------------------------------------------------------------
# 4. the closed-form LIF rate against SymPy


@pytest.fixture(scope="module")
def lif_rate():
    """The derived rate of specs/lif.toml (SymPy), its symbols and the default values."""
    model = compile_spec(REPO / "specs" / "lif.toml").model
    assert model.rate_derived
    symbols = model.symbols
    defaults = {symbols[p.name]: p.value for p in model.parameters}
    return SimpleNamespace(rate=evaluated(model.rate), symbols=symbols, defaults=defaults)


def lif_training_builder(smoothing, dtype=tf.float64, **params):
    """A LIFBuilder set up for rate training by its own ``_build_rate``."""
    from generated.lif import BUILDER as LIFBuilder
    from generated.lif import LIF

    neuron = LIF(smoothing=smoothing, **params)
    builder = object.__new__(LIFBuilder)
    builder.params = {k: tf.constant(getattr(neuron, k), dtype) for k in LIFBuilder.parameters}
    builder.dtype, builder.training = dtype, "rate"
    builder._build_rate([neuron], [1], SimpleNamespace(dtype=dtype), smoothing)
    return builder


def tf_rate_and_gradient(builder, J, dtype=tf.float64):
    J = tf.constant(np.asarray(J, dtype=dtype.as_numpy_dtype)[None, :])
    with tf.GradientTape() as tape:
        tape.watch(J)
        rate = builder.training_step(J, 0.001)
    return rate.numpy()[0], tape.gradient(rate, J).numpy()[0]


def test_lif_rate_is_nengo_lif_rate(lif_rate):
    """For J > 1 the derived rate is nengo's LIFRate formula, symbolically."""
    s = lif_rate.symbols
    d = sp.Symbol("d", positive=True)  # J = 1 + d
    above = lif_rate.rate.rewrite(sp.log).subs(J_SYMBOL, 1 + d)
    nengo_rate = s["amplitude"] / (s["tau_ref"] + s["tau_rc"] * sp.log(1 + 1 / d))
    assert sp.simplify(above - nengo_rate) == 0
    # and it is 0 below threshold
    below = lif_rate.rate.subs(J_SYMBOL, 1 - d)
    assert sp.simplify(below) == 0


@pytest.mark.parametrize("params", [{}, dict(tau_rc=0.05, tau_ref=0.005, amplitude=0.5)])
def test_lif_training_step_derivative(lif_rate, params):
    """The TensorFlow gradient of ``LIFBuilder.training_step`` equals
    ``sympy.diff(rate, J)`` (evaluated with mpmath at 30 digits) at 60 currents
    J > 1 (from just above threshold to 1e3), rtol 1e-6 in float64."""
    s = lif_rate.symbols
    values = {**lif_rate.defaults, **{s[k]: v for k, v in params.items()}}
    rate = lif_rate.rate.rewrite(sp.log).subs(values)
    derivative = sp.lambdify(J_SYMBOL, sp.diff(rate, J_SYMBOL), modules="mpmath")
    value = sp.lambdify(J_SYMBOL, rate, modules="mpmath")
    J = 1 + np.geomspace(1e-4, 1e3, 60)
    tf_rate, tf_grad = tf_rate_and_gradient(lif_training_builder(0.0, **params), J)
    import mpmath

    with mpmath.workdps(30):
        expected_rate = np.array([float(value(mpmath.mpf(j))) for j in J])
        expected = np.array([float(derivative(mpmath.mpf(j))) for j in J])
    np.testing.assert_allclose(tf_rate, expected_rate, rtol=1e-9)
    np.testing.assert_allclose(tf_grad, expected, rtol=1e-6)
    # below threshold: rate and gradient 0 (and finite)
    tf_rate, tf_grad = tf_rate_and_gradient(lif_training_builder(0.0, **params), [-1.0, 0.5, 1.0])
    assert np.array_equal(tf_rate, [0, 0, 0]) and np.array_equal(tf_grad, [0, 0, 0])


def _smoothed_reference(lif_rate, sigma, J):
    """SymPy rate and derivative of the smoothed rate r(1 + sigma softplus((J - 1)/sigma))."""
    import mpmath

    rate = lif_rate.rate.rewrite(sp.log).subs(lif_rate.defaults)
    smoothed = rate.subs(J_SYMBOL, 1 + sigma * sp.log(1 + sp.exp((J_SYMBOL - 1) / sigma)))
    value = sp.lambdify(J_SYMBOL, smoothed, modules="mpmath")
    derivative = sp.lambdify(J_SYMBOL, sp.diff(smoothed, J_SYMBOL), modules="mpmath")
    with mpmath.workdps(40):
        return (
            np.array([float(value(mpmath.mpf(j))) for j in J]),
            np.array([float(derivative(mpmath.mpf(j))) for j in J]),
        )


def test_lif_smoothing_gradient_below_threshold(lif_rate):
    """``smoothing=0.05`` (SoftLIF construction): below threshold (0 <= J < 1) the
    float64 gradient is finite, positive and equals the SymPy derivative of the
    smoothed rate (rtol 1e-5: the smoothing's J - 1 loses a few digits near 0)."""
    sigma = 0.05
    J = np.linspace(0.0, 0.99, 40)
    rate, grad = tf_rate_and_gradient(lif_training_builder(sigma), J)
    assert np.all(np.isfinite(grad)) and np.all(grad > 0)
    expected_rate, expected = _smoothed_reference(lif_rate, sigma, J)
    np.testing.assert_allclose(rate, expected_rate, rtol=1e-5)
    np.testing.assert_allclose(grad, expected, rtol=1e-5)
    # above threshold the smoothing converges to the plain rate
    rate_hi, _ = tf_rate_and_gradient(lif_training_builder(sigma), [3.0, 10.0])
    plain, _ = tf_rate_and_gradient(lif_training_builder(0.0), [3.0, 10.0])
    np.testing.assert_allclose(rate_hi, plain, rtol=1e-6)


def test_lif_smoothing_gradient_far_below_threshold(lif_rate):
    """NengoDL's default float32 at J = 0, and float64 at J = -1 (``smoothing=0.05``):
    the SoftLIF gradient is small but nonzero there (NengoDL's own ``lif_smoothing``
    formulation gives 1.87 and 0.54).  Smoothing ``J`` and then subtracting the
    threshold again (the old builder) gave exactly 0: the rate now reads the smoothed
    excess ``s * softplus((J - 1) / s)`` itself."""
    _, grad32 = tf_rate_and_gradient(lif_training_builder(0.05, tf.float32), [0.0], tf.float32)
    _, grad64 = tf_rate_and_gradient(lif_training_builder(0.05), [-1.0])
    assert grad32[0] > 0 and grad64[0] > 0
    # and it is the SoftLIF gradient (the derivative of the smoothed rate)
    _, expected32 = _smoothed_reference(lif_rate, 0.05, np.array([0.0]))
    _, expected64 = _smoothed_reference(lif_rate, 0.05, np.array([-1.0]))
    np.testing.assert_allclose(grad32, expected32, rtol=1e-3)
    np.testing.assert_allclose(grad64, expected64, rtol=1e-6)


# --------------------------------------------------------------------------------------
# 5. tabulated rates


TABULATED = ["Izhikevich", "ALIFThreshold", "QIF", "AdaptiveLIF"]


@pytest.mark.parametrize("name", TABULATED)
def test_rate_table_accuracy(name):
    """``rate_table()`` vs ``simulate_rates`` (the table's dt and settle time, twice its
    measuring window) at 60 random currents in the firing range (uniform in
    ``sqrt(J - J_th)``, the table's own spacing, so the steep part near threshold is
    sampled): relative error of the rates above 5 Hz.

    The median must be below 1 %, and every error within one step of the staircase
    (plus 0.1 %): the f-I curve of a model stepped with a fixed dt is a staircase (the
    interspike interval is measured in whole steps unless the model interpolates spike
    times), rates 1/(k dt) and 1/((k + 1) dt) differ by about ``rate * dt``, and linear
    interpolation between table nodes can cut across one such step (QIF, whose spikes
    are not interpolated, shows this most).  AdaptiveLIF's table is adaptation-aware:
    it is simulated after a 5 s settle (tau_n = 1 s).
    """
    neuron = neuron_class(name)()
    options = neuron.rate_table_options
    table = neuron.rate_table()
    rng = np.random.RandomState(4)
    J = table.threshold + (table.high - table.threshold) * rng.uniform(0, 1, 60) ** 2
    reference = runtime.simulate_rates(
        neuron, J, dt=options["dt"], settle=options["settle"], duration=2 * options["duration"]
    )
    approx = table(J)
    firing = reference > 5
    assert firing.sum() >= 50
    rel = np.abs(approx[firing] - reference[firing]) / reference[firing]
    worst = np.argmax(rel)
    print(
        f"\n{name} rate table: {firing.sum()} currents in "
        f"[{table.threshold:.3g}, {table.high:.3g}]: "
        f"median rel. error {np.median(rel):.2e}, max {rel[worst]:.2e} "
        f"(J = {J[firing][worst]:.4g}: table {approx[firing][worst]:.2f} Hz, "
        f"simulated {reference[firing][worst]:.2f} Hz)"
    )
    assert np.median(rel) < 0.01
    stair = reference[firing] * options["dt"]
    assert np.all(rel <= stair + 1e-3), (rel - stair).max()
    assert np.all(np.isfinite(approx))


# --------------------------------------------------------------------------------------
# training options per ensemble, in one Simulator


def test_two_ensembles_with_different_training_options_in_one_simulator():
    """Two LIF ensembles, one trained on rates (with smoothing), one with surrogate
    gradients (another surrogate and scale): NengoDL merges their operators into one
    builder, which handles the options per neuron.  Inference spikes like nengo;
    while training the rate ensemble outputs its smoothed rate (states held) and the
    surrogate ensemble spikes; both get gradients, and ``sim.fit`` trains both."""
    from generated.lif import LIF

    rate_type = LIF(training="rate", smoothing=0.05)
    surrogate_type = LIF(training="surrogate", surrogate="arctan", surrogate_scale=5.0)
    rng = np.random.RandomState(SEED)
    gain, bias = rng.uniform(1, 3, N), rng.uniform(0.5, 2, N)
    with nengo.Network(seed=SEED) as net:
        nengo_dl.configure_settings(dtype="float64", stateful=False, learning_phase=True)
        inp = nengo.Node(np.zeros(1))
        ens = [nengo.Ensemble(N, 1, neuron_type=t, gain=gain, bias=bias) for t in (rate_type, surrogate_type)]
        out = nengo.Node(size_in=1)
        for e in ens:
            nengo.Connection(inp, e, synapse=None)
            nengo.Connection(e, out, synapse=None)
        probes = [nengo.Probe(e.neurons) for e in ens]
        p_out = nengo.Probe(out)
    x = np.full((MINIBATCH, 20, 1), 0.5)
    with nengo_dl.Simulator(net, minibatch_size=MINIBATCH, progress_bar=False) as sim:
        trained = sim.predict({inp: x})  # learning_phase=True: the training path
        rate, spikes = trained[probes[0]], trained[probes[1]]
        # rate ensemble: a steady rate, the same at every step; surrogate: spikes
        np.testing.assert_allclose(rate[:, 0], rate[:, -1])
        assert np.all(np.isin(np.round(spikes * 0.001, 9), [0.0, 1.0])) and spikes.max() > 0
        assert not np.all(np.isin(np.round(rate * 0.001, 9), [0.0, 1.0]))
        # one fit step trains the encoders of both ensembles
        sim.compile(optimizer=tf.optimizers.Adam(1e-2), loss={p_out: tf.losses.mse})
        # (NengoDL may merge the two ensembles' encoders into one variable)
        encoders = [w for w in sim.keras_model.trainable_weights if len(w.shape) == 2 and w.shape[1] == 1]
        before = np.concatenate([w.numpy().ravel() for w in encoders])
        sim.fit({inp: x}, {p_out: np.full((MINIBATCH, 20, 1), 0.25)}, epochs=2, verbose=0)
        after = np.concatenate([w.numpy().ravel() for w in encoders])
        assert before.shape == (2 * N,)
        assert np.any(before[:N] != after[:N]) and np.any(before[N:] != after[N:])
