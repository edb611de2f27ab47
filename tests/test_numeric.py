"""Issue 6: no NaN or inf for inputs in [-1e6, 1e6], in NumPy and NengoDL, float32
and float64; unstable time steps are refused at build time."""

import warnings

import nengo
import nengo_dl
import numpy as np
import pytest
from nengo.exceptions import BuildError

from conftest import REPO, generated_module

MODULES = sorted(p.stem for p in (REPO / "generated").glob("*.py") if p.stem != "__init__")
J = np.concatenate([-np.logspace(6, -3, 20), [0.0], np.logspace(-3, 6, 20)])


module = generated_module


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", MODULES)
def test_numpy_step_stays_finite(name, dtype):
    neuron = module(name).NEURON_TYPE()
    state = neuron.make_state(J.size, rng=np.random.RandomState(0), dtype=dtype)
    output = np.zeros(J.size, dtype)
    current = J.astype(dtype)
    with np.errstate(all="ignore"):  # finite results are what matters, not warnings
        for _ in range(200):
            neuron.step(dtype(0.001), current, output, **state)
            assert np.all(np.isfinite(output)), name
            for key, value in state.items():
                if key != "rng":  # a stochastic type's random generator
                    assert np.all(np.isfinite(value)), (name, key)


def _small_rate_table(monkeypatch, cls):
    """``cls`` with a small, quick rate table (where it tabulates one): nengo tabulates
    max_rates even for given gains and biases, which these tests do not read."""
    if getattr(cls, "rate_table_options", None):
        small = dict(cls.rate_table_options, points=16, settle=0.01, duration=0.05)
        monkeypatch.setattr(cls, "rate_table_options", small)
    return cls


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", MODULES)
def test_nengo_dl_step_stays_finite(name, dtype, monkeypatch):
    neuron_type = _small_rate_table(monkeypatch, module(name).NEURON_TYPE)()
    with nengo.Network() as net:
        # inference only: the training-mode rate table is not what this test is about
        nengo_dl.configure_settings(dtype=dtype, inference_only=True)
        stim = nengo.Node(J)
        ens = nengo.Ensemble(J.size, 1, neuron_type=neuron_type, gain=np.ones(J.size), bias=np.zeros(J.size))
        nengo.Connection(stim, ens.neurons, synapse=None)
        probes = [nengo.Probe(ens.neurons)] + [nengo.Probe(ens.neurons, s) for s in neuron_type.state]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with nengo_dl.Simulator(net, progress_bar=False) as sim:
            sim.run_steps(100)
    for probe in probes:
        assert np.all(np.isfinite(sim.data[probe])), (name, probe)


def test_unstable_time_step_is_refused_at_build(monkeypatch):
    from generated.adaptive_lif import AdaptiveLIF

    neuron_type = _small_rate_table(monkeypatch, AdaptiveLIF)(tau_n=1e-4)  # explicit Euler needs dt <= 2 tau_n
    assert neuron_type.max_dt() == pytest.approx(2e-4)
    with nengo.Network() as net:  # (gain and bias given: no f-I curve at the bad dt)
        nengo.Ensemble(5, 1, neuron_type=neuron_type, gain=np.ones(5), bias=np.ones(5))
    with pytest.raises(BuildError, match="dt = 0.001 s is too large"):
        nengo.Simulator(net, progress_bar=False)
    with nengo.Simulator(net, dt=1e-4, progress_bar=False) as sim:  # a stable dt builds
        sim.run_steps(3)
