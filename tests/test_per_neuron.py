"""Per-neuron parameters: scalars, arrays of one value per neuron, distributions.

The reference for a per-neuron ensemble is a set of scalar ensembles, one per
neuron value: same seed, so the same max_rates / intercepts / encoders, and neuron
``i`` of the per-neuron ensemble must equal neuron ``i`` of scalar ensemble ``i``
(spikes, gain, bias, tuning curves), in nengo core and in NengoDL.
"""

import numpy as np
import nengo
import pytest
from nengo.exceptions import ValidationError

from generated.adaptive_lif import AdaptiveLIF
from generated.exp_if import ExpIF
from generated.lif import LIF
from neurogen.parameters import PerNeuronParam, groups

STEPS = 200


def _network(types, n, seed=3):
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: np.sin(8 * t))
        ensembles = []
        for neuron_type in types:
            ens = nengo.Ensemble(n, 1, neuron_type=neuron_type, seed=seed,
                                 max_rates=nengo.dists.Uniform(60, 120))
            nengo.Connection(stim, ens, synapse=None)
            ensembles.append(ens)
        probes = [nengo.Probe(e.neurons) for e in ensembles]
    return net, ensembles, probes


def _run(types, n, simulator):
    net, ensembles, probes = _network(types, n)
    with simulator(net, progress_bar=False) as sim:
        sim.run_steps(STEPS)
        spikes = [sim.data[p] for p in probes]
        built = [sim.data[e] for e in ensembles]
        curves = [nengo.utils.ensemble.tuning_curves(e, sim, inputs=np.linspace(-1, 1, 21)[:, None])[1]
                  for e in ensembles] if simulator is nengo.Simulator else None
    return spikes, built, curves


def _assert_as_separate(per_type, scalar_types, simulator):
    n = len(scalar_types)
    (spikes,), (built,), curves = _run([per_type], n, simulator)
    sep_spikes, sep_built, sep_curves = _run(scalar_types, n, simulator)
    diagonal = np.stack([sep_spikes[i][:, i] for i in range(n)], axis=1)
    assert spikes.any()
    np.testing.assert_array_equal(spikes, diagonal)
    for attr in ("gain", "bias", "max_rates", "intercepts"):
        np.testing.assert_array_equal(getattr(built, attr), [getattr(sep_built[i], attr)[i] for i in range(n)])
    if curves is not None:
        np.testing.assert_array_equal(curves[0], np.stack([sep_curves[i][:, i] for i in range(n)], axis=1))


TAU = np.linspace(0.01, 0.05, 20)


def test_lif_array_is_separate_scalar_lifs():
    """``LIF(tau_rc=linspace)``: closed-form rates; tau_ref per neuron too (it is
    read for the spiking neurons only: masked work indexes the parameter)."""
    tau_ref = np.linspace(0.001, 0.004, 20)
    _assert_as_separate(LIF(tau_rc=TAU, tau_ref=tau_ref),
                        [LIF(tau_rc=t, tau_ref=r) for t, r in zip(TAU, tau_ref)], nengo.Simulator)


@pytest.mark.slow
def test_tabulated_rates_per_parameter_set():
    """ExpIF's rates are a simulated table: one table per distinct parameter set."""
    tau_m = np.array([0.01, 0.02, 0.01, 0.03])
    _assert_as_separate(ExpIF(tau_m=tau_m), [ExpIF(tau_m=t) for t in tau_m], nengo.Simulator)


@pytest.mark.slow
def test_bound_type_per_neuron():
    """Generated AdaptiveLIF (bound to nengo.AdaptiveLIF, tabulated) per neuron."""
    inc_n = np.array([0.01, 0.05, 0.01])
    _assert_as_separate(AdaptiveLIF(inc_n=inc_n), [AdaptiveLIF(inc_n=v) for v in inc_n], nengo.Simulator)


def test_nengo_dl_per_neuron_constants():
    """NengoDL merges the operators of all ensembles of one type: per-neuron arrays,
    scalars and a bound class's instances (nengo.LIF) in one group."""
    nengo_dl = pytest.importorskip("nengo_dl")
    import generated.lif  # noqa: F401  (registers the builder)

    tau_ref = np.linspace(0.001, 0.004, 20)
    per = LIF(tau_rc=TAU, tau_ref=tau_ref)
    scalars = [LIF(tau_rc=t, tau_ref=r) for t, r in zip(TAU, tau_ref)]
    _assert_as_separate(per, scalars, nengo_dl.Simulator)
    # one merged group: a per-neuron LIF, scalar LIFs; each as in its own simulator
    (mixed, alone_per, alone_scalar) = (
        _run([per, scalars[3]], 20, nengo_dl.Simulator)[0],
        _run([per], 20, nengo_dl.Simulator)[0][0],
        _run([scalars[3]], 20, nengo_dl.Simulator)[0][0])
    np.testing.assert_array_equal(mixed[0], alone_per)
    np.testing.assert_array_equal(mixed[1], alone_scalar)


def test_nengo_dl_tabulated_per_neuron():
    """A tabulated type in NengoDL: per-neuron constants and one table per neuron
    (built for training) give the separate scalar ensembles' spikes."""
    nengo_dl = pytest.importorskip("nengo_dl")
    import generated.exp_if  # noqa: F401

    tau_m = np.array([0.01, 0.02, 0.01, 0.03])
    _assert_as_separate(ExpIF(tau_m=tau_m), [ExpIF(tau_m=t) for t in tau_m], nengo_dl.Simulator)


def test_distribution_sampled_with_the_ensemble_seed():
    """A Distribution is sampled at build, from the ensemble's seed: the same seed
    gives the same values (in nengo core and NengoDL), another seed others."""
    dist_type = LIF(tau_rc=nengo.dists.Uniform(0.01, 0.05))

    def built_tau(seed, simulator=nengo.Simulator):
        with nengo.Network() as net:
            ens = nengo.Ensemble(10, 1, neuron_type=dist_type, seed=seed)
        with simulator(net, progress_bar=False) as sim:
            op = next(op for op in sim.model.operators if isinstance(op, nengo.builder.neurons.SimNeurons))
            return np.array(op.neurons.tau_rc), sim.data[ens].max_rates

    a, rates_a = built_tau(1)
    b, _ = built_tau(1)
    c, _ = built_tau(2)
    assert a.shape == (10,) and np.all((a >= 0.01) & (a <= 0.05))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert isinstance(dist_type.tau_rc, nengo.dists.Uniform)  # the network is unchanged
    # the built values give the ensemble's max_rates (default Uniform(200, 400))
    assert np.all((rates_a > 199) & (rates_a < 401))
    nengo_dl = pytest.importorskip("nengo_dl")
    d, rates_d = built_tau(1, nengo_dl.Simulator)
    np.testing.assert_array_equal(a, d)
    np.testing.assert_allclose(rates_a, rates_d, rtol=1e-5)


def test_param_accepts_scalar_array_distribution():
    assert LIF(tau_rc=0.03).tau_rc == 0.03
    assert isinstance(LIF(tau_rc=[0.01, 0.02]).tau_rc, np.ndarray)
    assert isinstance(LIF(tau_rc=nengo.dists.Uniform(0.01, 0.02)).tau_rc, nengo.dists.Uniform)
    assert isinstance(LIF.tau_rc, PerNeuronParam)
    with pytest.raises(ValidationError, match="tau_rc.*greater than 0"):
        LIF(tau_rc=[0.01, 0.0])  # low is open: checked per element
    with pytest.raises(ValidationError, match="1-D array"):
        LIF(tau_rc=np.ones((2, 2)))
    with pytest.raises(ValidationError, match="Must be a number"):
        LIF(tau_rc="fast")
    lif = LIF(tau_rc=[0.01, 0.02])
    with pytest.raises(ValueError):  # read-only: the neuron type stays frozen
        lif.tau_rc[0] = 1
    assert LIF(tau_rc=[0.01, 0.02]) == lif and hash(LIF(tau_rc=[0.01, 0.02])) == hash(lif)
    assert LIF(tau_rc=[0.01, 0.03]) != lif


def test_wrong_length_is_a_clear_error():
    with nengo.Network() as net:
        nengo.Ensemble(5, 1, neuron_type=LIF(tau_rc=[0.01, 0.02, 0.03]))
    with pytest.raises(ValidationError, match=r"LIF.tau_rc has 3 values, but the ensemble has 5 neurons"):
        nengo.Simulator(net, progress_bar=False)


def test_groups_in_order_of_first_appearance():
    lif = LIF(tau_rc=[0.02, 0.01, 0.02, 0.03], tau_ref=0.001)
    found = [(g.tau_rc, g.tau_ref, list(idx)) for g, idx in groups(lif)]
    assert found == [(0.02, 0.001, [0, 2]), (0.01, 0.001, [1]), (0.03, 0.001, [3])]
    assert all(type(g.tau_rc) is float for g, _ in groups(lif))  # same cache key as a scalar


def test_numpy_step_matches_scalar_steps():
    """Every state of the NumPy step, per neuron vs one scalar type per neuron."""
    rng = np.random.RandomState(0)
    n = 6
    params = dict(tau_rc=rng.uniform(0.01, 0.05, n), tau_ref=rng.uniform(0, 0.004, n),
                  min_voltage=-rng.uniform(0, 1, n), amplitude=rng.uniform(0.5, 2, n))
    per = LIF(**params)
    state = per.make_state(n, rng=np.random.RandomState(1), dtype=np.float64)
    scalar_states = [{k: v[i:i + 1].copy() for k, v in state.items()} for i in range(n)]
    out = np.zeros(n)
    for _ in range(300):
        J = rng.uniform(-2, 6, n)
        per.step(0.001, J, out, **state)
        for i in range(n):
            single = LIF(**{k: float(v[i]) for k, v in params.items()})
            o = np.zeros(1)
            single.step(0.001, J[i:i + 1], o, **scalar_states[i])
            assert o[0] == out[i]
    for k in state:
        np.testing.assert_array_equal(state[k], np.concatenate([s[k] for s in scalar_states]))
