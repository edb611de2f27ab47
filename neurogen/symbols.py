"""Symbols shared by every stage: the step's inputs and outputs.

A leaf module (it imports only SymPy), so that any stage can name ``J`` or ``dt``
without importing another stage.
"""

import sympy as sp

#: input current, time step, the step's output, and spikes (0/1 or a count) this step
J, DT, OUTPUT, SPIKES = sp.symbols("J dt output spikes", real=True)


def representative_value(initial):
    """One number for a state's initial value: the number itself, or the low end of
    its distribution (Uniform's low, Gaussian's mean, Choice's first option)."""
    if isinstance(initial, (int, float)):
        return float(initial)
    cls, kwargs = initial
    value = {"Uniform": kwargs.get("low", 0), "Gaussian": kwargs.get("mean", 0)}.get(
        cls, (kwargs.get("options") or [0])[0]
    )
    return float(value)
