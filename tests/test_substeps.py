"""Sub-stepping (issue 11 item 1): ``[dynamics] substeps`` / ``max_step`` integrate each
simulator step in ``n`` sub-steps with spikes, resets and refractoriness inside them."""

from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, line_of
from neurogen.errors import SpecError
from neurogen.runtime import substep_count
from neurogen.spec import parse

LIF = (REPO / "specs" / "lif.toml").read_text()


def _with(keys, text=LIF):
    return text.replace("[dynamics]\n", "[dynamics]\n" + keys + "\n", 1)


def _run(neuron, dt, steps, J, repeat=1):
    """Spike counts and final states after ``steps`` steps of ``dt`` (each made of
    ``repeat`` calls of ``step`` with ``dt / repeat``)."""
    state = {"voltage": np.linspace(0, 0.9, J.size), "refractory_time": np.zeros(J.size)}
    out, counts = np.zeros(J.size), np.zeros(J.size)
    for _ in range(steps * repeat):
        neuron.step(dt / repeat, J, out, **state)
        counts += out * (dt / repeat)
    return counts, state


J = np.array([-1.0, 0.5, 1.01, 1.5, 3.0, 10.0, 50.0, 400.0])


@pytest.mark.parametrize("keys, dt, n", [("substeps = 4", 1e-3, 4), ("max_step = 2.5e-4", 1e-3, 4), ("max_step = 2.5e-4", 5e-4, 2), ("substeps = 3\nmax_step = 5e-4", 1e-3, 3)])
def test_substeps_equal_smaller_steps(tmp_path, build_module, keys, dt, n):
    """n sub-steps of one step == n steps of dt / n of the same model without them:
    spikes (several per step at high rates), resets, refractory periods, clamps."""
    sub = build_module(tmp_path / "a", _with(keys)).NEURON_TYPE(tau_ref=2e-4)
    plain = build_module(tmp_path / "b", LIF).NEURON_TYPE(tau_ref=2e-4)
    counts, state = _run(sub, dt, 300, J)
    ref_counts, ref_state = _run(plain, dt, 300, J, repeat=n)
    np.testing.assert_allclose(counts, ref_counts, atol=1e-9)
    assert counts[-1] > 300 * 1.2  # more than one spike per step: counts, not flags
    for k in state:
        np.testing.assert_allclose(state[k], ref_state[k], rtol=1e-12, atol=1e-12)


def test_substep_count():
    assert substep_count(1e-3, 1e-4) == 10  # 10.000000000000002 is 10
    assert substep_count(1e-3, 3e-4) == 4
    assert substep_count(1e-3, 1e-2) == 1
    assert substep_count(1e-3, 1e-2, 5) == 5


def test_spec_without_keys_has_no_loop():
    text = (REPO / "generated" / "lif.py").read_text()
    assert "for _ in range" not in text and "substep" not in text


@pytest.mark.parametrize(
    "keys, message",
    [
        ("substeps = 0", "substeps must be an integer from 1"),
        ("substeps = 2.5", "substeps must be an integer from 1"),
        ("substeps = true", "substeps must be an integer from 1"),
        ("max_step = 0", "max_step must be > 0"),
        ("max_step = -1e-3", "max_step must be > 0"),
        ('max_step = "1ms"', "max_step must be a number"),
    ],
)
def test_bad_substep_keys(keys, message):
    text = _with(keys)
    with pytest.raises(SpecError, match=message) as e:
        parse(text, Path("lif.toml"))
    assert e.value.line == line_of(text, keys.split("\n")[0])


def test_show_mentions_substeps(tmp_path):
    from neurogen.build import compile_spec
    from neurogen.show import describe

    spec = tmp_path / "s.toml"
    spec.write_text(_with("max_step = 1e-4"))
    compiled = compile_spec(spec)
    text = describe(compiled.model, compiled.program)
    assert "sub-steps: max(1, ceil(dt / 0.0001))" in text
    assert "repeat _substeps times" in text


@pytest.mark.slow
@pytest.mark.parametrize("keys, unrolled", [("substeps = 3", True), ("max_step = 1e-4", False)])
def test_numpy_matches_nengo_dl(tmp_path, build_module, keys, unrolled, monkeypatch):
    """The TF loop (unrolled, or a tf.while_loop) computes what the NumPy loop does."""
    from neurogen.crosscheck import numpy_vs_tf
    from neurogen.tf_builder import GeneratedBuilder

    module = build_module(tmp_path, _with(keys))
    monkeypatch.setattr(GeneratedBuilder, "unroll_substeps", 8 if unrolled else 1)
    state = {"voltage": np.linspace(0, 0.99, J.size), "refractory_time": np.linspace(0, 0.003, J.size)}
    assert numpy_vs_tf(module, J, state, 1e-3, steps=5) < 1e-9
