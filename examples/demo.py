"""Demo: a sine wave represented by 100 generated LIF neurons, simulated in NengoDL.

Run from the repository root after ``neurogen build``:  python examples/demo.py
"""

import importlib
import os
import pkgutil
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quiet TensorFlow's C++ logging
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", message="(This version of NengoDL|No GPU support)")

import nengo  # noqa: E402
import nengo_dl  # noqa: E402
import numpy as np  # noqa: E402
from nengo_dl.neuron_builders import SimNeuronsBuilder  # noqa: E402

import generated  # noqa: E402
import generated.lif  # noqa: E402

# Every generated module registers its NengoDL builder when imported.
print("generated neuron types:")
for info in pkgutil.iter_modules(generated.__path__):
    module = importlib.import_module(f"generated.{info.name}")
    registered = SimNeuronsBuilder.TF_NEURON_IMPL.get(module.NEURON_TYPE)
    print(f"  {module.NEURON_TYPE.__name__:24} builder: {getattr(registered, '__name__', None)}")

n_neurons, duration, dt, tau = 100, 1.0, 0.001, 0.01
neuron_type = generated.lif.LIF()
with nengo.Network(seed=0) as net:
    stim = nengo.Node(lambda t: np.sin(2 * np.pi * t))
    ens = nengo.Ensemble(n_neurons, 1, neuron_type=neuron_type)
    nengo.Connection(stim, ens, synapse=None)
    p_target = nengo.Probe(stim, synapse=tau)  # the input, filtered like the decoded output
    p_decoded = nengo.Probe(ens, synapse=tau)
    p_spikes = nengo.Probe(ens.neurons)

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with nengo_dl.Simulator(net, dt=dt, progress_bar=False) as sim:
        sim.run(duration)
        builders = [
            b.built_neurons
            for b in sim.tensor_graph.op_builder.op_builds.values()
            if hasattr(b, "built_neurons")
        ]
fallback = [str(w.message) for w in caught if "falling back" in str(w.message)]

spikes = sim.data[p_spikes] * dt / neuron_type.amplitude  # spikes per neuron per step
total = int(round(spikes.sum()))
rmse = np.sqrt(np.mean((sim.data[p_decoded] - sim.data[p_target]) ** 2))

print(f"\nsimulated {duration} s (dt = {dt}) in nengo_dl.Simulator")
print(f"neuron type:        {type(neuron_type).__module__}.{type(neuron_type).__name__}")
print(f"number of neurons:  {n_neurons}")
print(f"total spikes:       {total}")
print(f"mean firing rate:   {total / (n_neurons * duration):.1f} Hz")
print(f"decoding RMSE:      {rmse:.4f} (sine of amplitude 1, both filtered with tau = {tau})")

expected = generated.lif.BUILDER
assert SimNeuronsBuilder.TF_NEURON_IMPL[type(neuron_type)] is expected, "builder not registered"
assert [type(b) for b in builders] == [expected], f"simulator used {builders}"
assert not fallback, f"NengoDL fell back to the Python step: {fallback}"
assert total > 0 and rmse < 0.1, "the ensemble does not represent the sine"
print(f"NengoDL builder:    {expected.__module__}.{expected.__name__} (no fallback warning)")
