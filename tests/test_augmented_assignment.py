"""``x += expr`` (and ``-=``, ``*=``, ``/=``) in resets and assignments, as Brian2 users
write them: the same update as ``x = x + (expr)``."""

import numpy as np
import pytest

from neurogen.build import compile_spec

SPEC = """\
[neuron]
name = "Adapting"

[parameters]
tau = 0.02
b = 0.3
c = 0.5

[state]
v = 0
w = 1

[dynamics]
equations = '''
dv/dt = (J - v - w) / tau : exact
dw/dt = -w / 0.1 : exact
'''

[spike]
condition = "v > 1"
reset = ["v = 0", "{reset}"]
"""


def _run(module, steps=300):
    neuron = module.NEURON_TYPE()
    J = np.linspace(0.0, 6.0, 7)
    state = {"v": np.zeros(7), "w": np.ones(7)}
    out = np.zeros(7)
    outputs, ws = [], []
    for _ in range(steps):
        neuron.step(0.001, J, out, **state)
        outputs.append(out.copy())
        ws.append(state["w"].copy())
    return np.array(outputs), np.array(ws)


@pytest.mark.parametrize(
    "augmented, plain",
    [("w += b", "w = w + b"), ("w -= b - c", "w = w - (b - c)"), ("w *= c + b", "w = w * (c + b)"), ("w /= c", "w = w / c")],
)
def test_augmented_reset_is_the_plain_assignment(tmp_path, build_module, augmented, plain):
    ours = build_module(tmp_path / "a", SPEC.replace("{reset}", augmented), name="aug")
    theirs = build_module(tmp_path / "b", SPEC.replace("{reset}", plain), name="plain")
    out_a, w_a = _run(ours)
    out_b, w_b = _run(theirs)
    assert out_a.sum() > 0, "no neuron spiked: the reset was never exercised"
    np.testing.assert_array_equal(out_a, out_b)
    np.testing.assert_array_equal(w_a, w_b)


def test_increment_applies_only_to_spiking_neurons(tmp_path, build_module):
    module = build_module(tmp_path, SPEC.replace("{reset}", "w += b"), name="inc")
    neuron = module.NEURON_TYPE()
    state = {"v": np.array([0.0, 0.999]), "w": np.array([1.0, 1.0])}
    out = np.zeros(2)
    neuron.step(0.001, np.array([0.0, 200.0]), out, **state)
    decay = np.exp(-0.001 / 0.1)
    assert out[0] == 0 and out[1] > 0
    np.testing.assert_allclose(state["w"], [decay, decay + 0.3], rtol=1e-12)


@pytest.mark.parametrize("line", ["w **= 2", "w + = b", "w //= 2"])
def test_unknown_operators_are_errors_with_the_line(tmp_path, line):
    from neurogen.errors import SpecError

    path = tmp_path / "bad.toml"
    path.write_text(SPEC.replace("{reset}", line))
    with pytest.raises(SpecError) as info:
        compile_spec(path)
    assert f"{path}:21:" in str(info.value) and "not a name" in str(info.value)
