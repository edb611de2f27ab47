"""Runtime support of stochastic neuron types in nengo core (NumPy only).

nengo passes a neuron type's ``rng`` state to its ``step`` (as for
``nengo.PoissonSpiking``), but builds that generator from the ensemble's seed, once:
``nengo.Simulator(seed=s)`` and ``sim.reset()`` would not change or repeat the
numbers.  Generated stochastic types are built with :class:`SimStochasticNeurons`
instead, whose generator is drawn from the simulator's ``rng`` each time the
simulator makes its steps: the same simulator seed repeats spike for spike (after
a reset too), another seed differs.
"""

import numpy as np
from nengo.builder.neurons import SimNeurons, build_neurons


class SimStochasticNeurons(SimNeurons):
    """``SimNeurons`` whose random generators are seeded by the simulator's seed."""

    def make_step(self, signals, dt, rng):
        self.state_extra = {k: np.random.RandomState(rng.randint(np.iinfo(np.int32).max)) for k in self.state_extra}
        return super().make_step(signals, dt, rng)


def build_stochastic_neurons(model, neuron_type, neurons, **kwargs):
    """Build like any neuron type, with a :class:`SimStochasticNeurons` operator."""
    build_neurons(model, neuron_type, neurons, **kwargs)
    op = model.operators[-1]
    assert type(op) is SimNeurons, op
    state = {**op.state, **op.state_extra}
    model.operators[-1] = SimStochasticNeurons(neuron_type, op.J, op.output, state=state, tag=op.tag)
    return model.operators[-1]
