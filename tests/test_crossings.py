"""Threshold crossings (issue 12 item 2): ``crosses(x, threshold)`` in spike conditions."""

from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from conftest import line_of
from neurogen.analysis import spike_distance
from neurogen.build import compile_spec
from neurogen.errors import SpecError
from neurogen.reference import Reference

RAMP = """
[neuron]
name = "Ramp"

[parameters]
slope = { value = 1.0 }

[state]
x = 0

[dynamics]
equations = \"\"\"
dx/dt = slope * J : euler
\"\"\"

[spike]
condition = "crosses(x, 1)"
"""

# a sine wave: x = sin(2 pi f t) crosses 0.5 upward once per period
SINE = """
[neuron]
name = "Sine"

[parameters]
freq = { value = 10.0 }

[state]
x = 0
y = 1

[dynamics]
max_step = 1e-4
equations = \"\"\"
dx/dt = 2 * pi * freq * y
dy/dt = -2 * pi * freq * x
\"\"\"

[spike]
condition = "crosses(x, 0.5)"
"""


def _steps(neuron, J, steps, dt=1e-3, **state):
    out, spikes = np.zeros(J.size), []
    for _ in range(steps):
        neuron.step(dt, J, out, **state)
        spikes.append(out * dt)
    return np.array(spikes)


def test_crossing_fires_once_without_reset(tmp_path, build_module):
    neuron = build_module(tmp_path, RAMP).NEURON_TYPE()
    J = np.array([0.0, 100.0, 300.0, -100.0])
    spikes = _steps(neuron, J, 50, x=np.zeros(4))
    # x = 0.1 per step at J = 100: crosses 1 at step 11 (x = 1.1), once
    assert spikes.sum(axis=0).tolist() == [0, 1, 1, 0]
    assert spikes[10, 1] == 1 and spikes[3, 2] == 1


def test_crossing_combines_with_and(tmp_path, build_module):
    text = RAMP.replace('"crosses(x, 1)"', '"crosses(x, 1) and J < 200"')
    neuron = build_module(tmp_path, text).NEURON_TYPE()
    spikes = _steps(neuron, np.array([100.0, 300.0]), 50, x=np.zeros(2))
    assert spikes.sum(axis=0).tolist() == [1, 0]


def test_crossing_with_substeps_counts_each_period(tmp_path, build_module):
    neuron = build_module(tmp_path, SINE).NEURON_TYPE()
    spikes = _steps(neuron, np.zeros(3), 1000, x=np.zeros(3), y=np.ones(3))
    assert spikes.sum(axis=0).tolist() == [10, 10, 10]


def test_distance_and_reference_events(tmp_path):
    spec = tmp_path / "sine.toml"
    spec.write_text(SINE)
    model = compile_spec(spec).model
    x = model.symbols["x"]
    assert sp.simplify(spike_distance(model.spike_condition) - (x - 0.5)) == 0
    spikes, _ = Reference(model, {"freq": 10.0}).simulate(lambda t: 0.0, [0.0, 1.0], 1.0)
    expected = (np.arcsin(0.5) / (2 * np.pi) + np.arange(10)) / 10
    np.testing.assert_allclose(spikes, expected, atol=1e-7)


@pytest.mark.parametrize(
    "edit, message",
    [
        (("dx/dt = slope * J : euler", "dx/dt = slope * J * where(crosses(x, 1), 1, 0) : euler"), "only allowed in a spike condition"),
        (('"crosses(x, 1)"', '"where(crosses(x, 1), 1, 0) > 0"'), "only allowed in a spike condition"),
        (('"crosses(x, 1)"', '"crosses(x)"'), "takes 2 arguments"),
        (('"crosses(x, 1)"', '"crosses(x, 1) + 1 > 0"'), "a condition is used where a number is expected"),
    ],
)
def test_bad_crossings(tmp_path, edit, message):
    text = RAMP.replace(*edit)
    spec = tmp_path / "ramp.toml"
    spec.write_text(text)
    with pytest.raises(SpecError, match=message) as e:
        compile_spec(spec)
    assert e.value.line == line_of(text, edit[1])


def test_surrogate_needs_a_distance_at_build_time(tmp_path):
    text = RAMP.replace('"crosses(x, 1)"', '"x > 1 and J < 200"') + '\n[training]\nmode = "surrogate"\n'
    spec = tmp_path / "ramp.toml"
    spec.write_text(text)
    with pytest.raises(SpecError, match="surrogate.*needs a spike condition with a distance") as e:
        compile_spec(spec)
    assert e.value.line == line_of(text, "condition =")
    # any single comparison of expressions, or a crossing, qualifies
    for condition in ('"crosses(x, 1)"', '"2 * x >= 1 + J"'):
        spec.write_text(RAMP.replace('"crosses(x, 1)"', condition) + '\n[training]\nmode = "surrogate"\n')
        assert compile_spec(spec).program is not None


@pytest.mark.slow
def test_crossing_surrogate_gradient(tmp_path, build_module):
    """NengoDL's surrogate spike reads the distance x - threshold."""
    import tensorflow as tf

    module = build_module(tmp_path, RAMP + '\n[training]\nmode = "surrogate"\n')
    builder = module.BUILDER.__new__(module.BUILDER)
    builder.training, builder.surrogate, builder.scale = "surrogate", "fast_sigmoid", 10.0
    builder.dtype, builder.params = tf.float64, {"slope": tf.constant(1.0, tf.float64)}
    x = tf.constant([0.95, 0.5], tf.float64)
    J = tf.Variable([1.0, 1.0], dtype=tf.float64)
    with tf.GradientTape() as tape:
        out, _ = builder.step(J, tf.constant(0.1, tf.float64), x)
    grad = tape.gradient(out, J).numpy()
    assert out.numpy().tolist() == [10.0, 0.0]
    assert grad[0] > grad[1] > 0  # closer to threshold, larger surrogate derivative
