"""Step-size diagnostics for non-linear models and warnings for plausible mistakes
(neurogen.diagnostics, ``neurogen check``): each warning is triggered by a spec that
deserves it, and a correct spec stays quiet."""

import textwrap
import warnings

import nengo
import numpy as np
import pytest

from neurogen import cli, diagnostics
from neurogen.build import analyse_spec
from neurogen.errors import NeurogenWarning

SPIKING = textwrap.dedent(
    '''\
    [neuron]
    name = "Probe"

    [parameters]
    tau = {tau}
    k = {k}

    [state]
    voltage = 0

    [dynamics]
    equations = """
    dvoltage/dt = (J - voltage - k * voltage**3) / tau : {method}
    """

    [spike]
    condition = "voltage > {threshold}"
    reset = ["voltage = {reset}"]

    [rate]
    table = {{ low = 0, high = 20, dt = {table_dt} }}
    '''
)


def _spec(tmp_path, **changes):
    options = dict(tau=0.02, k=0.1, method="euler", threshold=1, reset=0, table_dt=0.001)
    options.update(changes)
    path = tmp_path / "probe.toml"
    path.write_text(SPIKING.format(**options), encoding="utf-8")
    return path


def _messages(path, dt=0.001):
    c = analyse_spec(path)
    return diagnostics.step_warnings(c.model, c.program, dt, c.sampler) + diagnostics.mistakes(
        c.model, c.program, c.sampler, dt
    )


def test_a_correct_spec_is_quiet(tmp_path):
    assert _messages(_spec(tmp_path)) == []


def test_unstable_nonlinear_update_names_the_step_and_substeps(tmp_path):
    # dv/dt = -(v + k v^3) / tau: eigenvalue -(1 + 3 k v^2) / tau, |.| > 2 / dt
    path = _spec(tmp_path, tau=0.0004, k=1.0)
    (message,) = [m for m in _messages(path) if "unstable" in m]
    assert "method 'euler' is unstable at dt = 0.001 s" in message
    limit = float(message.split("largest stable step is ")[1].split(" s")[0])
    assert 0.0001 < limit < 0.0008  # <= 2 tau = 0.0008 at v = 0, less where v != 0
    assert f"`substeps = {int(np.ceil(0.001 / limit))}`" in message
    assert not any("unstable" in m for m in _messages(path, dt=limit / 2))


def test_noisy_model_is_judged_by_its_drift(tmp_path):
    # the same unstable update with white noise added: the noise-free drift is sampled
    path = _spec(tmp_path, tau=0.0004, k=1.0)
    text = path.read_text().replace("/ tau : euler", "/ tau + 0.1 * xi : euler")
    assert "xi" in text
    path.write_text(text)
    (message,) = [m for m in _messages(path) if "unstable" in m]
    assert "method 'euler' is unstable at dt = 0.001 s" in message


def test_sampled_limit_is_baked_into_max_dt(tmp_path, build_module):
    mod = build_module(tmp_path, _spec(tmp_path, tau=0.0004, k=1.0).read_text())
    nt = mod.NEURON_TYPE()
    assert 0.0001 < nt.sampled_max_dt < 0.0008
    assert nt.max_dt() == nt.sampled_max_dt
    assert nt.max_dt(sampled=False) == np.inf
    with nengo.Network() as net:
        nengo.Ensemble(2, 1, neuron_type=nt, gain=np.ones(2), bias=np.ones(2))
    with pytest.warns(NeurogenWarning, match="beyond the largest stable step"):
        nengo.Simulator(net, dt=0.001, progress_bar=False).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NeurogenWarning)
        nengo.Simulator(net, dt=nt.sampled_max_dt / 2, progress_bar=False).close()


def test_izhikevich_warning_is_right():
    """The bundled Izhikevich spec warns at 1 ms, and nengo's own Izhikevich does
    oscillate there: at its input floor J = -30 the 1 ms Euler step swings between
    about -97 and -77 mV where the resting voltage is -89.2 mV."""
    from conftest import generated_module

    nt = generated_module("izhikevich").NEURON_TYPE()
    assert nt.max_dt(sampled=False) > 0.002 and nt.sampled_max_dt < 0.001
    ranges = {}
    for dt in (0.001, nt.sampled_max_dt / 2):
        v, u, out = np.zeros(1), np.zeros(1), np.zeros(1)
        trace = []
        for _ in range(int(0.3 / dt)):
            nengo.Izhikevich().step(dt, np.array([-30.0]), out, v, u)
            trace.append(v[0])
        ranges[dt] = np.ptp(trace[-int(0.05 / dt):])
    coarse, fine = ranges.values()
    assert coarse > 10 and fine < 0.1


def test_spike_condition_true_after_reset(tmp_path):
    messages = _messages(_spec(tmp_path, reset=2))
    assert any("still holds after the reset (voltage = 2)" in m and "fires every step" in m for m in messages)


def test_time_constant_in_ms(tmp_path):
    messages = _messages(_spec(tmp_path, tau=20))
    assert any("tau = 20 is 20 s; did you mean 0.02 s?" in m for m in messages)


def test_time_constant_in_model_units_is_not_read_as_ms(tmp_path):
    """``tau = 20`` model units of ``time_scale = 1 ms``: the equation's time scale
    is 20 ms, so no warning (FitzHugh-Nagumo's ``tau_w``)."""
    path = _spec(tmp_path, tau=20)
    text = path.read_text().replace("k = 0.1", "k = 0.1\ntime_scale = 0.001")
    path.write_text(text.replace("/ tau :", "/ (tau * time_scale) :"))
    assert not any("did you mean" in m for m in _messages(path))


def test_never_fires_over_the_table_range(tmp_path):
    messages = _messages(_spec(tmp_path, threshold=1000))
    assert any("never fires for J from 0 to 20" in m for m in messages)


def test_rate_table_at_an_unresolvable_step(tmp_path):
    path = _spec(tmp_path, tau=0.004, k=1.0, table_dt=0.01)
    assert any("rate table is simulated at dt = 0.01 s" in m for m in _messages(path))
    assert not any("rate table" in m for m in _messages(_spec(tmp_path, tau=0.004, k=1.0)))


def test_cli_check_prints_the_warnings(tmp_path, capsys):
    path = _spec(tmp_path, tau=20)
    assert cli.main(["check", str(path)]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "did you mean 0.02 s?" in err


@pytest.mark.slow
def test_bundled_specs_are_quiet_except_izhikevich():
    from pathlib import Path

    for path in sorted(Path(__file__).parent.parent.joinpath("specs").glob("*.toml")):
        messages = _messages(path)
        if path.stem == "izhikevich":  # right: see test_izhikevich_warning_is_right
            assert len(messages) == 1 and "substeps = 2" in messages[0]
        else:
            assert messages == [], path.name
