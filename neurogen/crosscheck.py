"""The generated NumPy ``step`` against the generated NengoDL builder, in float64,
for ``neurogen verify``."""

import contextlib
import math
import warnings

import numpy as np

MAX_STEPS = 2000  # the states compared come from this many steps at most


def simulate_numpy(neuron, model, current, dt, duration, state0):
    """Run the generated NumPy step; returns (output, states) histories."""
    steps = int(round(duration / dt))
    n = len(current)
    state = {k: np.full(n, v) for k, v in state0.items()}
    output = np.zeros(n)
    outputs, states = [], []
    for i in range(steps):
        J = np.array([f(i * dt) for f in current])
        neuron.step(dt, J, output, **state)
        outputs.append(output.copy())
        states.append({k: v.copy() for k, v in state.items()})
    return np.array(outputs), states


def sampled_states(neuron, model, inputs, dt, duration, state0, per_input=100):
    """States along the NumPy runs of ``inputs`` (about ``per_input`` each, and the
    start) with the input current of the step that follows each; finite ones only."""
    steps = max(2, min(int(round(duration / dt)), MAX_STEPS))
    with np.errstate(all="ignore"):
        _, states = simulate_numpy(neuron, model, list(inputs.values()), dt, steps * dt, state0)
    picks = np.unique(np.linspace(0, steps - 2, per_input).astype(int))
    J = np.concatenate([[f(0.0) for f in inputs.values()]] + [[f((i + 1) * dt) for f in inputs.values()] for i in picks])
    n = len(inputs)
    state = {k: np.concatenate([np.full(n, float(v))] + [states[i][k] for i in picks]) for k, v in state0.items()}
    finite = np.isfinite(J) & np.all([np.isfinite(v) for v in state.values()] or [True], axis=0)
    return J[finite], {k: v[finite] for k, v in state.items()}


def numpy_vs_tf(module, J, state, dt, steps=2):
    """Largest scaled difference between ``steps`` steps of nengo's simulator (the
    NumPy ``step``) and of NengoDL (float64), one neuron per (``J``, ``state``) pair.

    Short runs from many states rather than one long run: rounding differences
    between NumPy and TensorFlow grow along the trajectory of an excitable model
    until a spike moves by a step, which is no error of either."""
    import nengo
    import nengo_dl

    n = len(J)
    neuron = module.NEURON_TYPE(initial_state={k: nengo.dists.Samples(v) for k, v in state.items()})
    with nengo.Network() as net:
        nengo_dl.configure_settings(dtype="float64", inference_only=True)
        stim = nengo.Node(np.asarray(J, dtype=float))
        ens = nengo.Ensemble(n, 1, neuron_type=neuron, gain=np.ones(n), bias=np.zeros(n))
        nengo.Connection(stim, ens.neurons, synapse=None)
        probes = [nengo.Probe(ens.neurons, "output")] + [nengo.Probe(ens.neurons, s) for s in state]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gain = 1, bias = 0 are unusual tuning curves
        with _no_tuning_curves(type(neuron)):
            with nengo.Simulator(net, dt=dt, progress_bar=False) as sim:
                sim.run_steps(steps)
            with nengo_dl.Simulator(net, dt=dt, progress_bar=False) as dl:
                dl.run_steps(steps)
    error = 0.0
    for p in probes:
        a, b = sim.data[p], dl.data[p]
        if not np.array_equal(np.isfinite(a), np.isfinite(b)):
            return math.inf  # one of them overflows where the other does not
        ok = np.isfinite(a)
        scale = max(1.0, float(np.abs(a[ok]).max())) if ok.any() else 1.0
        error = max(error, float(np.abs(a - b)[ok].max()) / scale if ok.any() else 0.0)
    return error


@contextlib.contextmanager
def _no_tuning_curves(cls):
    """nengo computes the max rates and intercepts of given gains and biases (for
    ``sim.data`` only); a tabulated type would simulate an f-I curve for them, from
    these per-neuron initial states, that nothing here reads."""
    saved = cls.__dict__.get("max_rates_intercepts")
    cls.max_rates_intercepts = lambda self, gain, bias: (np.full_like(gain, np.nan), np.full_like(gain, np.nan))
    try:
        yield
    finally:
        if saved is None:
            del cls.max_rates_intercepts
        else:
            cls.max_rates_intercepts = saved


def rate_statistics(module, currents, n, duration, dt, seed=0):
    """Mean rate per current and its standard error over ``n`` neurons, in nengo's
    simulator (NumPy ``step``) and in NengoDL (float64), both seeded with ``seed``.
    Returns ``(numpy_mean, numpy_se, dl_mean, dl_se)``, arrays over ``currents``."""
    import nengo
    import nengo_dl

    J = np.repeat(np.asarray(currents, dtype=float), n)
    with nengo.Network(seed=seed) as net:
        nengo_dl.configure_settings(dtype="float64")
        stim = nengo.Node(J)
        ens = nengo.Ensemble(J.size, 1, neuron_type=module.NEURON_TYPE(), gain=np.ones(J.size), bias=np.zeros(J.size))
        nengo.Connection(stim, ens.neurons, synapse=None)
        probe = nengo.Probe(ens.neurons, "output")
    steps = int(round(duration / dt))
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with nengo.Simulator(net, dt=dt, seed=seed, progress_bar=False) as sim:
            sim.run_steps(steps)
            results.append(sim.data[probe])
        with nengo_dl.Simulator(net, dt=dt, seed=seed, progress_bar=False) as dl:
            dl.run_steps(steps)
            results.append(dl.data[probe])
    out = []
    for data in results:
        rates = (data.sum(axis=0) * dt / duration).reshape(len(currents), n)
        out += [rates.mean(axis=1), rates.std(axis=1, ddof=1) / np.sqrt(n)]
    return tuple(out)


def one_step_variance(neuron, model, state0, J, x, n, dt, seed=0):
    """Variance of state ``x`` after one NumPy step from ``state0`` at input ``J``,
    over ``n`` neurons (independent draws)."""
    state = {k: np.full(n, float(v)) for k, v in state0.items()}
    state["rng"] = np.random.RandomState(seed)
    neuron.step(dt, np.full(n, float(J)), np.zeros(n), **state)
    return float(np.var(state[x], ddof=1))


def sde_variance(drift, diffusion, state0, J, x, n, dt, substeps=64, seed=1):
    """Reference: variance of ``x`` after ``dt`` by Euler-Maruyama at ``dt / substeps``
    on the spec's SDE ``dx = drift dt + diffusion dW`` (other states held)."""
    rng = np.random.RandomState(seed)
    values = {k: np.full(n, float(v)) for k, v in state0.items()}
    h = dt / substeps
    for _ in range(substeps):
        f, g = drift(values, J), diffusion(values, J)
        values[x] = values[x] + f * h + g * np.sqrt(h) * rng.standard_normal(n)
    return float(np.var(values[x], ddof=1))
