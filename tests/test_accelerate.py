"""Issue 3: one import runs nengo's and nengo_extras' own classes natively in NengoDL,
spiking wrappers work around generated rate types, and rates are fast."""

import warnings

import nengo
import nengo_dl
import nengo_extras.neurons
import numpy as np
import pytest
from nengo_dl.neuron_builders import SimNeuronsBuilder

import generated  # noqa: F401 - registers every generated builder
from conftest import counted_rates

pytestmark = pytest.mark.slow

BOUND = [
    (nengo.AdaptiveLIF, generated.adaptive_lif.BUILDER),
    (nengo.AdaptiveLIFRate, generated.adaptive_lif_rate.BUILDER),
    (nengo.Izhikevich, generated.izhikevich.BUILDER),
    (nengo_extras.neurons.FastLIF, generated.fast_lif.BUILDER),
    (nengo_extras.neurons.SoftLIFRate, generated.soft_lif_rate.BUILDER),
    (nengo_extras.neurons.NumbaLIF, generated.lif.BUILDER),
]


def _run_dl(neuron_type, n=20, steps=100, seed=0, **kwargs):
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: np.sin(10 * t))
        ens = nengo.Ensemble(n, 1, neuron_type=neuron_type, **kwargs)
        nengo.Connection(stim, ens, synapse=None)
        probe = nengo.Probe(ens.neurons)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with nengo_dl.Simulator(net, progress_bar=False, seed=seed) as sim:
            sim.run_steps(steps)
    assert not [w for w in caught if "falling back" in str(w.message)]
    return sim.data[probe]


@pytest.mark.parametrize("cls, builder", BOUND, ids=[c.__name__ for c, _ in BOUND])
def test_plain_classes_get_generated_builders(cls, builder):
    assert SimNeuronsBuilder.TF_NEURON_IMPL[cls] is builder


@pytest.mark.parametrize("neuron_type", [nengo.AdaptiveLIF(), nengo.Izhikevich(), nengo.AdaptiveLIFRate()])
def test_plain_classes_run_natively(neuron_type):
    out = _run_dl(neuron_type)
    assert np.all(np.isfinite(out)) and out.any()


WRAPPERS = [nengo.RegularSpiking, nengo.StochasticSpiking, nengo.PoissonSpiking]
RATE_TYPES = [generated.lif_rate.LIFRate, generated.sigmoid.Sigmoid, generated.adaptive_lif_rate.AdaptiveLIFRate]


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=[w.__name__ for w in WRAPPERS])
@pytest.mark.parametrize("base", RATE_TYPES, ids=[b.__name__ for b in RATE_TYPES])
def test_spiking_wrappers_run_natively(wrapper, base):
    nt = wrapper(base())
    out = _run_dl(nt, max_rates=nengo.dists.Uniform(100, 200)) if base is not generated.sigmoid.Sigmoid else _run_dl(nt)
    assert out.any()
    # spikes: integer multiples of 1 / dt
    counts = out * 0.001
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-4)


@pytest.mark.parametrize("wrapper", [nengo.StochasticSpiking, nengo.PoissonSpiking])
def test_stochastic_wrappers_are_seeded(wrapper):
    nt = wrapper(generated.lif_rate.LIFRate())
    a = _run_dl(nt, seed=1)
    b = _run_dl(nt, seed=1)
    c = _run_dl(nt, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "neuron_type, n",
    [(generated.izhikevich.Izhikevich(), 1000), (generated.adaptive_lif.AdaptiveLIF(), 10000)],
    ids=["Izhikevich-1000", "AdaptiveLIF-10000"],
)
def test_ensembles_build_from_the_table(neuron_type, n, monkeypatch):
    """Default max_rates/intercepts: gains and biases come from the rate table, never
    from simulating every neuron (nengo's Izhikevich takes ~100 s that way for 1000
    neurons; build times are printed by ``benchmarks/bench_build.py``)."""

    def per_neuron(*args, **kwargs):
        raise AssertionError("simulated each neuron to find its rate")

    monkeypatch.setattr(nengo.neurons, "settled_firingrate", per_neuron)
    with nengo.Network(seed=0) as net:
        ens = nengo.Ensemble(n, 1, neuron_type=neuron_type)
    with nengo.Simulator(net, progress_bar=False) as sim:
        built = sim.data[ens]
    assert built.gain.shape == (n,) and np.all(built.gain > 0)
    gain, bias = neuron_type.gain_bias(built.max_rates, built.intercepts)
    np.testing.assert_allclose(built.gain, gain)
    np.testing.assert_allclose(built.bias, bias)


@pytest.mark.parametrize(
    "neuron_type",
    [generated.izhikevich.Izhikevich(), generated.alif_threshold.ALIFThreshold(), generated.qif.QIF()],
    ids=["Izhikevich", "ALIFThreshold", "QIF"],
)
def test_gain_bias_gives_the_requested_tuning(neuron_type):
    """The tabulated curve puts the threshold at the intercept and max_rates at x = 1."""
    max_rates = np.array([50.0, 100.0, 200.0])
    intercepts = np.array([-0.5, 0.0, 0.5])
    gain, bias = neuron_type.gain_bias(max_rates, intercepts)
    # spikes counted over a long run of the step, not the table's own simulate_rates
    settle = neuron_type.rate_table_options["settle"]
    np.testing.assert_allclose(counted_rates(neuron_type, gain + bias, settle=settle), max_rates, rtol=0.03)
    below = counted_rates(neuron_type, gain * (intercepts - 0.02) + bias, settle=settle, duration=1.0)
    assert np.all(below == 0)
