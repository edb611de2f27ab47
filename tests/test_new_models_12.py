"""The deterministic models of issue 12: NIR's CubaLIF, Izhikevich's
resonate-and-fire and the MAT2 model, against closed forms of their equations."""

import numpy as np
import pytest

from conftest import generated_module
from neurogen.crosscheck import numpy_vs_tf


def run(name, J, steps, dt=1e-3, **state0):
    neuron = generated_module(name).NEURON_TYPE()
    n = len(J)
    state = neuron.make_state(n, rng=np.random.RandomState(0), dtype=np.float64)
    for k, v in state0.items():
        state[k][...] = v
    out, spikes, history = np.zeros(n), [], []
    for _ in range(steps):
        neuron.step(dt, np.asarray(J, float), out, **state)
        spikes.append(out.copy())
        history.append({k: v.copy() for k, v in state.items()})
    return neuron, np.array(spikes), history


def test_cuba_lif_follows_nirs_equations_below_threshold():
    J = np.array([0.2, 0.5, 0.9])
    neuron, spikes, history = run("cuba_lif", J, 50, voltage=0.0, i_syn=0.0)
    assert not spikes.any()
    t = 0.05
    ts, tm, w, r = neuron.tau_syn, neuron.tau_mem, neuron.w_in, neuron.r
    i_syn = w * J * (1 - np.exp(-t / ts))
    v = r * w * J * (1 + (ts * np.exp(-t / ts) - tm * np.exp(-t / tm)) / (tm - ts))
    np.testing.assert_allclose(history[-1]["i_syn"], i_syn, rtol=1e-12)
    np.testing.assert_allclose(history[-1]["voltage"], v, rtol=1e-12)


def test_cuba_lif_resets_the_voltage_only():
    _, spikes, history = run("cuba_lif", [5.0], 40, voltage=0.0, i_syn=0.0)
    k = int(np.argmax(spikes[:, 0] > 0))
    assert spikes[k, 0] > 0 and history[k]["voltage"][0] == 0.0 and history[k]["i_syn"][0] > 1.0


def test_resonate_and_fire_is_a_damped_oscillator():
    J = np.array([5.0, 20.0])
    neuron, spikes, history = run("resonate_and_fire", J, 80, x=0.0, y=0.0)
    assert not spikes.any()
    lam = neuron.b + 1j * neuron.omega
    rest = -J / lam  # dz/dt = lam z + J
    z = rest + (0 - rest) * np.exp(lam * 0.08)
    np.testing.assert_allclose(history[-1]["x"], z.real, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(history[-1]["y"], z.imag, rtol=1e-10, atol=1e-12)


def test_resonate_and_fire_fires_on_overshoot_and_resets():
    # the steady y = J omega / (b^2 + omega^2) stays below a_th = 1 at J = 60, but the
    # damped oscillation overshoots it
    neuron, spikes, history = run("resonate_and_fire", [60.0], 200, x=0.0, y=0.0)
    steady = 60.0 * neuron.omega / (neuron.b**2 + neuron.omega**2)
    assert steady < neuron.a_th and spikes.any()
    k = int(np.argmax(spikes[:, 0] > 0))
    assert history[k]["x"][0] == neuron.x_reset and history[k]["y"][0] == neuron.y_reset


def test_mat2_threshold_jumps_and_voltage_is_not_reset():
    neuron, spikes, history = run("mat2", [3.0], 300, voltage=0.0, theta1=0.0, theta2=0.0, refractory_time=0.0)
    times = np.nonzero(spikes[:, 0])[0]
    assert len(times) > 3
    k = times[0]
    assert history[k]["theta1"][0] == pytest.approx(history[k - 1]["theta1"][0] * np.exp(-1e-3 / neuron.tau_1) + neuron.alpha1)
    assert history[k]["theta2"][0] == pytest.approx(history[k - 1]["theta2"][0] * np.exp(-1e-3 / neuron.tau_2) + neuron.alpha2)
    assert history[k]["voltage"][0] > neuron.omega  # no reset
    assert np.diff(times).min() == round(neuron.tau_ref / 1e-3)  # none within tau_ref (at dt = 1 ms)
    assert np.diff(times)[-1] > np.diff(times)[0]  # the slow threshold adapts the rate


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cuba_lif", "resonate_and_fire", "mat2"])
def test_numpy_and_nengo_dl_agree(name):
    module = generated_module(name)
    rng = np.random.RandomState(0)
    states = list(module.NEURON_TYPE.state)
    J = rng.uniform(-2, 80 if name == "resonate_and_fire" else 5, 64)
    state = {s: rng.uniform(0, 1, 64) for s in states}
    assert numpy_vs_tf(module, J, state, 1e-3, steps=20) < 1e-9
