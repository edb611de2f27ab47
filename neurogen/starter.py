"""The commented starter spec written by ``neurogen new``."""

import re

#: word boundaries of a CamelCase name; a run of capitals is one word (an acronym)
_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")

TEMPLATE = '''# {name}: a neuron model for nengo and NengoDL, compiled by neurogen.
# Build it into your own package with `neurogen build specs -o mypkg`, then
# `from mypkg.{module} import {name}` and use `{name}()` as the neuron_type of any
# nengo.Ensemble. Reference: docs/spec-format.md

[neuron]
name = "{name}"
doc = "A leaky integrate-and-fire neuron with an adaptive threshold (edit me)."
negative = false        # does the neuron ever output negative values?

[parameters]
# name = {{ value = default, low = ..., high = ..., doc = "..." }}; bounds become nengo Params checks
tau_m = {{ value = 0.02, low = 0, low_open = true, doc = "Membrane time constant (s)." }}
tau_ref = {{ value = 0.002, low = 0, doc = "Refractory period (s)." }}
tau_th = {{ value = 0.1, low = 0, low_open = true, doc = "Threshold adaptation time constant (s)." }}
inc_th = {{ value = 0.05, low = 0, doc = "Threshold increase per spike." }}
amplitude = {{ value = 1, low = 0, low_open = true, doc = "Scaling factor on the output." }}

[state]
# a number or a nengo distribution: Uniform(low, high), Gaussian(mean, std), Choice([...])
voltage = "Uniform(low=0, high=1)"
threshold = 1
refractory_time = 0

[dynamics]
# one ODE per line: d<state>/dt = expression : method (auto, exact, exponential_euler, euler, rk4)
# J is the input current; these integrate only outside the refractory period
equations = """
dvoltage/dt = (J - voltage) / tau_m : exact
"""

[spike]
condition = "voltage > threshold"
reset = ["voltage = 0"]                # applied to neurons that spiked
refractory = {{ period = "tau_ref", state = "refractory_time" }}

[after_output]
# runs after the output: sees this step's `output` (amplitude / dt per spike) and `spikes`
equations = """
dthreshold/dt = (1 - threshold) / tau_th : exact
"""
reset = ["threshold = threshold + inc_th"]

[training]
# NengoDL training: "rate" (steady-state rate, tabulated from simulation) or
# "surrogate" (spikes with a surrogate gradient, through time)
mode = "rate"
surrogate = "fast_sigmoid"
scale = 10.0
'''


def starter_spec(name):
    """Starter spec text for a neuron class called ``name``."""
    return TEMPLATE.format(name=name, module=snake_case(name))


def snake_case(name):
    """Module name of a class name: ``CubaLIF`` -> ``cuba_lif``, ``HHNeuron`` -> ``hh_neuron``."""
    return _WORD_BOUNDARY.sub("_", name).lower()
