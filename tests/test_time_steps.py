"""Time steps other than 1 ms: NengoDL and nengo core agree spike for spike (fast;
the 1 ms comparisons of every row are in the slow ``test_nengo_dl.py``)."""

import nengo
import numpy as np
import pytest

from neurogen.runtime import hard_max_dt

from conftest import builder_registrations_kept, generated_module, nengo_precision_kept, spec_rows

nengo_dl = pytest.importorskip("nengo_dl")

SPIKING = [pytest.param(n, id=n) for n, r in spec_rows() if r.reference.spiking]


@pytest.mark.parametrize("dt", [0.0005, 0.002], ids=["dt0.5ms", "dt2ms"])
@pytest.mark.parametrize("name", SPIKING)
def test_spike_counts_match_nengo_at_other_time_steps(name, dt):
    neuron_type = generated_module(name).NEURON_TYPE()
    # hard limits only: a limit sampled along trajectories (Izhikevich's) warns
    assert not hasattr(neuron_type, "max_dt") or dt <= hard_max_dt(neuron_type)
    with nengo.Network(seed=2) as net:
        nengo_dl.configure_settings(dtype="float64")
        stim = nengo.Node(lambda t: 0.8 * np.sin(2 * np.pi * 3 * t) + 0.2)
        ens = nengo.Ensemble(20, 1, neuron_type=neuron_type, max_rates=nengo.dists.Uniform(80, 200))
        nengo.Connection(stim, ens, synapse=None)
        probe = nengo.Probe(ens.neurons)
    steps = int(round(0.5 / dt))
    with builder_registrations_kept(), nengo_precision_kept():
        with nengo_dl.Simulator(net, dt=dt, progress_bar=False) as sim:
            sim.run_steps(steps)
    with nengo.Simulator(net, dt=dt, progress_bar=False) as ref:
        ref.run_steps(steps)
    amplitude = getattr(neuron_type, "amplitude", 1)
    counts_dl = np.rint(sim.data[probe] * dt / amplitude).sum(axis=0)
    counts_ref = np.rint(ref.data[probe] * dt / amplitude).sum(axis=0)
    assert counts_ref.sum() > 0
    np.testing.assert_array_equal(counts_dl, counts_ref)
