"""The bundled conductance-based and relaxation oscillators (issues 11 and 12, item 6):
spike counts at nengo's dt = 1 ms, in nengo core and NengoDL, against an accurate
solve_ivp reference with crossing events; rate tables and gain_bias of type II models."""

import sys
import warnings

import nengo
import numpy as np
import pytest
from nengo.exceptions import ValidationError

from conftest import REPO, generated_module
from neurogen.build import compile_spec
from neurogen.reference import Reference

#: spec -> currents across its firing range (type II models: at and above the jump)
CURRENTS = {
    "fitzhugh_nagumo": [0.2, 0.5, 1.0, 1.4],
    "hodgkin_huxley": [5.0, 7.0, 50.0],
    "morris_lecar": [50.0, 95.0, 200.0],
    "wang_buzsaki": [0.1, 3.0, 10.0],
}


def _reference_counts(name, currents, duration=1.0):
    model = compile_spec(REPO / "specs" / f"{name}.toml").model
    neuron = generated_module(name).NEURON_TYPE()
    reference = Reference(model, {p.name: getattr(neuron, p.name) for p in model.parameters})
    y0 = [float(init) for _, _, init in model.states]
    return [len(reference.simulate(lambda t, j=j: j, y0, duration, rtol=1e-8, atol=1e-10)[0]) for j in currents]


def _network(neuron_type, currents):
    n = len(currents)
    with nengo.Network() as net:
        if "nengo_dl" in sys.modules:  # no rate table: NengoDL only runs the step here
            sys.modules["nengo_dl"].configure_settings(inference_only=True)
        stim = nengo.Node(np.asarray(currents, dtype=float))
        ens = nengo.Ensemble(n, 1, neuron_type=neuron_type, gain=np.ones(n), bias=np.zeros(n))
        nengo.Connection(stim, ens.neurons, synapse=None)
        probe = nengo.Probe(ens.neurons)
    return net, probe


def _counts(simulator, neuron_type, currents, duration=1.0, **kwargs):
    net, probe = _network(neuron_type, currents)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gain = 1, bias = 0 are unusual tuning curves
        with simulator(net, dt=0.001, progress_bar=False, **kwargs) as sim:
            sim.run(duration)
    return np.round(sim.data[probe].sum(axis=0) * sim.dt).astype(int).ravel()


def test_fitzhugh_nagumo_counts_in_nengo():
    """Fast check of one model: nengo core at dt = 1 ms against solve_ivp."""
    currents = CURRENTS["fitzhugh_nagumo"]
    ours = _counts(nengo.Simulator, generated_module("fitzhugh_nagumo").NEURON_TYPE(), currents)
    reference = _reference_counts("fitzhugh_nagumo", currents)
    assert np.all(np.abs(ours - reference) <= 1), (ours, reference)
    assert min(reference[1:]) > 20  # firing, not a quiet model passing trivially


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CURRENTS))
def test_counts_match_solve_ivp_in_nengo_and_nengo_dl(name):
    import nengo_dl
    from nengo_dl.neuron_builders import SimNeuronsBuilder

    module = generated_module(name)
    currents = CURRENTS[name]
    reference = np.array(_reference_counts(name, currents))
    core = _counts(nengo.Simulator, module.NEURON_TYPE(), currents)
    dl = _counts(nengo_dl.Simulator, module.NEURON_TYPE(), currents)
    assert SimNeuronsBuilder.TF_NEURON_IMPL[type(module.NEURON_TYPE())] is module.BUILDER  # native
    assert np.all(np.abs(core - reference) <= 1), (name, core, reference)
    assert np.all(np.abs(dl - reference) <= 1), (name, dl, reference)
    assert reference.max() >= 10


@pytest.mark.slow
def test_hodgkin_huxley_rate_table_and_gain_bias():
    """A type II f-I curve: rates below the jump get a clear error; rates above work
    in gain_bias, max_rates_intercepts and an ensemble."""
    neuron = generated_module("hodgkin_huxley").NEURON_TYPE()
    table = neuron.rate_table()
    assert 6.0 < table.threshold < 6.6  # repetitive firing starts near 6.3 uA/cm^2
    assert 45 < table.jump < 60
    with pytest.raises(ValidationError, match="jumps from 0 Hz to"):
        neuron.gain_bias(np.array([30.0, 80.0]), np.array([0.0, 0.0]))
    max_rates, intercepts = np.array([70.0, 100.0]), np.array([-0.5, 0.2])
    gain, bias = neuron.gain_bias(max_rates, intercepts)
    rates, icpts = neuron.max_rates_intercepts(gain, bias)
    np.testing.assert_allclose(rates, max_rates, rtol=1e-3)
    np.testing.assert_allclose(icpts, intercepts, atol=1e-9)
    with nengo.Network() as net:
        ens = nengo.Ensemble(2, 1, neuron_type=neuron, max_rates=max_rates, intercepts=intercepts)
    with nengo.Simulator(net, progress_bar=False) as sim:
        np.testing.assert_allclose(sim.data[ens].gain, gain)


@pytest.mark.slow
def test_hodgkin_huxley_digits(keep_nengo_precision):
    """examples/spiking_digits.py's recipe with Hodgkin-Huxley neurons: rate training
    (from the rate table), then a spiking test at dt = 1 ms (20 sub-steps each)."""
    pytest.importorskip("sklearn")
    import importlib.util

    path = REPO / "examples" / "spiking_digits.py"
    spec = importlib.util.spec_from_file_location("_example_digits_hh", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    x_tr, y_tr, x_te, y_te = example.load_data()
    data = (*example.trim(x_tr, y_tr, 240), *example.trim(x_te, y_te, 120))
    neuron = generated_module("hodgkin_huxley").NEURON_TYPE()
    result = example.run("HodgkinHuxley", neuron, 100, data, epochs=3, steps=20)
    assert result["rate_acc"] > 0.5
    assert result["spike_acc"][-1] > 0.5  # chance is 0.1
    assert 1 < result["mean_rate"] < 200
