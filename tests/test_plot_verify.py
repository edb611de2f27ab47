"""Issue 14: `neurogen plot` and `neurogen verify` that a user can read and steer."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from neurogen import verify
from neurogen.build import compile_spec
from neurogen.cli import main
from neurogen.defaults import (
    bracket_threshold, compiled_module, is_stochastic, run, step_needed,
)
from neurogen.plot import parse_currents, plot_spec, scale_groups
from neurogen.verify_report import as_json, text

REPO = Path(__file__).resolve().parent.parent

# exact LIF-like: closed-form rate and threshold (J = 1), so plots are quick
LEAKY = """
[neuron]
name = "Leaky"
[parameters]
tau = 0.02
[state]
v = 0
[dynamics]
equations = "dv/dt = (J - v) / tau"
[spike]
condition = "v > 1"
reset = ["v = 0"]
"""

# a fast quadratic integrate-and-fire with euler: wrong at dt = 1 ms, fine well below
FAST_QIF = """
[neuron]
name = "FastQIF"
[parameters]
tau = 0.002
[state]
v = -1
[dynamics]
equations = "dv/dt = (v * v + J) / tau : euler"
[spike]
condition = "v > 10"
reset = ["v = -10"]
[rate]
table = { low = -2, high = 20, points = 32, settle = 0.05, duration = 0.2 }
"""


def write(tmp_path, text, name="m"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def load(path):
    compiled = compile_spec(path)
    return compiled.model, compiled_module(compiled).NEURON_TYPE()


def test_plot_uses_the_requested_step_currents_and_duration(tmp_path):
    spec = write(tmp_path, LEAKY)
    currents = np.linspace(0.5, 3.0, 12)
    fig = plot_spec(spec, tmp_path / "x.svg", duration=0.1, dt=5e-4, currents=currents)
    fi, trace = fig.axes  # one state: the f-I panel and one trace panel
    assert fi.get_xlabel() == "input current J" and fi.get_ylabel() == "rate (Hz)"
    simulated, approx = fi.get_lines()
    np.testing.assert_array_equal(simulated.get_xdata(), currents)
    np.testing.assert_array_equal(approx.get_xdata(), currents)
    # the approximation is the type's rates(), and it lies near the simulated curve
    # (which quantizes each interspike interval to whole steps)
    _, neuron = load(spec)
    np.testing.assert_array_equal(approx.get_ydata(), neuron.rates(currents, 1, 0).ravel())
    np.testing.assert_allclose(simulated.get_ydata(), approx.get_ydata(), rtol=0.06, atol=1e-9)
    assert simulated.get_ydata()[0] == 0 and simulated.get_ydata()[-1] > 100
    (v,) = [line for line in trace.get_lines() if line.get_label() == "v"]
    assert len(v.get_xdata()) == 200  # duration / dt
    assert trace.get_ylabel() == "v" and "spikes" in trace.get_title()
    assert "Leaky" in fig._suptitle.get_text() and "dt = 0.0005 s (given step)" in fig._suptitle.get_text()
    assert "exact: v" in fig._suptitle.get_text()
    assert (tmp_path / "x.svg").read_text().lstrip().startswith("<?xml")


def test_spikes_are_marked_at_the_spike_steps(tmp_path):
    fig = plot_spec(write(tmp_path, LEAKY), duration=0.1, dt=1e-3, currents=[0.0, 5.0])  # J 0.5 -> 2
    trace = fig.axes[1]
    v = [line for line in trace.get_lines() if line.get_label() == "v"][0].get_ydata()
    marks = [line.get_xdata()[0] for line in trace.get_lines() if line.get_label().startswith("_")]
    # a spike resets v to 0 in its step: the marks sit one step after those times
    resets = np.flatnonzero((v[1:] == 0) & (v[:-1] > 0)) + 1
    assert len(marks) == len(resets) > 0
    np.testing.assert_allclose(marks, (resets + 1) * 1e-3)


def test_states_of_different_scales_get_their_own_panels(tmp_path):
    fig = plot_spec(REPO / "specs" / "lif.toml", duration=0.05, currents=[0.0, 2.0])
    assert [ax.get_ylabel() for ax in fig.axes[1:]] == ["voltage", "refractory_time"]
    fig = plot_spec(REPO / "specs" / "lif.toml", duration=0.05, currents=[0.0, 2.0], states=["voltage"])
    assert [ax.get_ylabel() for ax in fig.axes[1:]] == ["voltage"]


def test_scale_groups():
    t = np.linspace(0, 1, 50)
    traces = {"voltage": -65 + 100 * t, "m": t, "h": 1 - t, "w": 1e-4 * t, "zero": 0 * t}
    assert scale_groups(traces) == [["voltage"], ["m", "h"], ["w"], ["zero"]]
    assert scale_groups({"a": t, "b": 5 * t}) == [["a", "b"]]


def test_parse_currents():
    J = parse_currents("-1:3")
    assert J[0] == -1 and J[-1] == 3 and len(J) == 200
    np.testing.assert_array_equal(parse_currents("2,0.5,1"), [0.5, 1, 2])
    for bad in ("3:1", "a:b", "1,x", "1:2:3"):
        with pytest.raises(ValueError):
            parse_currents(bad)


def test_plot_cli_rejects_bad_options(tmp_path, capsys):
    spec = str(write(tmp_path, LEAKY))
    cases = [(["--state", "nope"], "y.png"), (["--currents", "2:1"], "z.png"), ([], "x.jpg"), (["--dt", "0"], "d.png")]
    for args, name in cases:
        out = tmp_path / name
        assert main(["plot", spec, "-o", str(out), *args]) == 2
        assert not out.exists()
    err = capsys.readouterr().err
    assert "unknown state 'nope' (states: v)" in err and "unsupported figure type '.jpg'" in err
    assert "--dt must be positive" in err


def test_the_default_step_is_the_one_the_model_needs(tmp_path):
    model, neuron = load(write(tmp_path, FAST_QIF))
    dt = step_needed(neuron, model)
    assert dt < 1e-3  # euler at 1 ms misses spikes of this model
    J = np.linspace(-2, 20, 9)

    def counts(h):
        return run(neuron, model, J, h, 0.05)[0]

    # the chosen step agrees with half of it, and twice it does not
    assert np.all(np.abs(counts(dt) - counts(dt / 2)) <= 1 + 0.1 * counts(dt / 2))
    assert not np.all(np.abs(counts(2 * dt) - counts(dt)) <= 1 + 0.1 * counts(dt))
    # a QIF fires for every J > 0: the bracket search finds that
    threshold = bracket_threshold(neuron, model, dt)
    assert 0 < threshold < 1.5
    fig = plot_spec(write(tmp_path, FAST_QIF), duration=0.02)
    assert f"dt = {dt:g} s (the model's step)" in fig._suptitle.get_text()
    assert fig.axes[0].get_xlim()[0] == pytest.approx(0.0, abs=1.5)  # one threshold below it
    # rates() is a table simulated at 1 ms: the legend says so
    assert fig.axes[0].get_lines()[1].get_label() == "rate approximation, rates(), tabulated at dt = 0.001 s"


def test_stability_limit_caps_the_default_step(tmp_path):
    stiff = LEAKY.replace("tau = 0.02", "tau = 0.0002").replace('(J - v) / tau"', '(J - v) / tau : euler"')
    model, neuron = load(write(tmp_path, stiff))
    assert neuron.max_dt() == pytest.approx(4e-4)
    assert step_needed(neuron, model) <= 2e-4


def test_stochastic_models_get_statistical_checks_only(monkeypatch):
    import nengo

    assert is_stochastic(nengo.PoissonSpiking(nengo.LIFRate()))
    assert not is_stochastic(nengo.LIF())
    monkeypatch.setattr(verify, "is_stochastic", lambda neuron: True)
    report = verify.verify_spec(REPO / "specs" / "lif.toml", quick=True)
    assert [c.name for c in report.checks] == ["rate-statistics", "spike-times", "convergence-order"]
    assert [c.status for c in report.checks] == ["PASS", "N/A", "N/A"]
    assert report.checks[0].compares.startswith("statistical")
    assert all("stochastic" in c.reason for c in report.checks[1:])
    assert report.passed
    assert text([report]).count("does not apply: stochastic model") == 2


def _report(status):
    check = verify.Check("spike-times", "a vs b", "1 s", "error 2 s", status, value=math.inf, hint="do this", detail="worst input 'ramp'")
    na = verify.Check("convergence-order", "c vs d", status="N/A", reason="no ODE states")
    return verify.Report("specs/x.toml", "X", 1e-3, 1.0, 2.5, [check, na])


def test_report_text_puts_the_verdict_first_and_hints_after_failures():
    lines = text([_report("FAIL"), _report("PASS")]).splitlines()
    assert lines[0] == "verify: FAIL (1 of 2 specs)"
    assert lines[1].startswith("slowest: specs/x.toml")
    body = "\n".join(lines)
    assert "  FAIL  spike-times        a vs b: error 2 s (tolerance 1 s)\n" + " " * 27 + "worst input 'ramp'\n" in body
    assert "  N/A   convergence-order  does not apply: no ODE states" in body
    assert body.count("what to do:") == 1 and "    - spike-times: do this" in body
    assert text([_report("PASS")]).splitlines()[0] == "verify: PASS (1 spec)"


def test_report_json_has_stable_keys():
    data = json.loads(as_json([_report("FAIL")]))
    assert data["verdict"] == "FAIL"
    (spec,) = data["specs"]
    assert set(spec) == {"spec", "model", "verdict", "dt", "threshold", "seconds", "checks"}
    first, second = spec["checks"]
    assert set(first) == {"name", "status", "compares", "tolerance", "measured", "value", "reason", "detail", "hint"}
    assert first["value"] == "inf" and first["status"] == "FAIL" and second["status"] == "N/A"


@pytest.mark.slow
def test_verify_quick_json_on_a_spike_count_model(capsys):
    # spike counts have no continuous-time reference: those checks do not apply
    assert main(["verify", "specs/spiking_rectified_linear.toml", "--quick", "--json", "-q"]) == 0
    data = json.loads(capsys.readouterr().out)
    checks = {c["name"]: c for c in data["specs"][0]["checks"]}
    assert checks["numpy-vs-nengodl"]["status"] == "PASS"
    assert checks["numpy-vs-nengodl"]["value"] <= verify.TF_TOLERANCE
    assert checks["spike-times"]["status"] == "N/A" and "spike counts" in checks["spike-times"]["reason"]
    assert checks["convergence-order"]["status"] == "N/A"


def test_a_nan_in_nengos_simulator_is_a_failed_check(monkeypatch):
    model, neuron = load(REPO / "specs" / "lif.toml")

    def raises(*args, **kwargs):
        raise FloatingPointError("invalid value encountered in multiply")

    monkeypatch.setattr(verify, "numpy_vs_tf", raises)
    inputs = verify.battery(1.0, 0.01, quick=True)
    check = verify.check_tf(None, model, neuron, inputs, 0.01, {"voltage": 0.0, "refractory_time": 0.0}, 1e-3)
    assert check.status == "FAIL" and check.value == math.inf
    assert "invalid value" in check.measured and "NaN" in check.hint


@pytest.mark.slow
def test_verify_quick_leaves_out_the_convergence_order(capsys):
    assert main(["verify", "specs/lif.toml", "--quick", "--json", "-q"]) == 0
    (spec,) = json.loads(capsys.readouterr().out)["specs"]
    checks = {c["name"]: c for c in spec["checks"]}
    assert checks["convergence-order"]["status"] == "SKIP"
    assert checks["spike-times"]["status"] == "PASS" and "2 inputs x 0.2 s" in checks["spike-times"]["compares"]
    assert 0 <= checks["spike-times"]["value"] <= 5e-4


def test_parse_currents_messages():
    with pytest.raises(ValueError, match="LOW must be below HIGH"):
        parse_currents("3:1")
    with pytest.raises(ValueError, match="expected LOW:HIGH or a comma list"):
        parse_currents("1:2:3")


def test_a_rate_model_traces_its_output(tmp_path):
    fig = plot_spec(REPO / "specs" / "sigmoid.toml", duration=0.06, currents=np.linspace(-2, 8, 11))
    fi, trace = fig.axes
    assert fi.get_ylabel() == "output" and trace.get_ylabel() == "output"
    assert "rate model: no spikes" in trace.get_title()
    (line,) = trace.get_lines()
    _, neuron = load(REPO / "specs" / "sigmoid.toml")
    # the step goes from 10 % to 40 % of the currents, at a sixth of the duration
    np.testing.assert_allclose(line.get_ydata()[[0, -1]], neuron.rates(np.array([-1.0, 2.0]), 1, 0).ravel())
    assert "J = -1 -> 2 at t = 0.01 s" in trace.get_title()


def test_spike_hint_tells_a_large_step_from_a_wrong_step():
    miscounted = verify.SpikeErrors(math.inf, 1e-3, "step 2x", (69, 65))
    fewer = verify.SpikeErrors(math.inf, 1e-3, "step 2x", (69, 67))
    same = verify.SpikeErrors(math.inf, 1e-3, "step 2x", (69, 65))
    slow = verify.SpikeErrors(2e-3, 1e-3, "ramp", (10, 10))
    assert "too large" in verify._spike_hint(miscounted, fewer, 1e-4)
    assert "does not follow the spec" in verify._spike_hint(miscounted, same, 1e-4)
    assert "does not follow the spec" in verify._spike_hint(slow, slow, 1e-4)


def test_rate_onset():
    from neurogen.plot import rate_onset

    assert rate_onset(*reversed(load(REPO / "specs" / "lif_rate.toml"))) == pytest.approx(1.0, abs=1e-6)
    assert rate_onset(*reversed(load(REPO / "specs" / "sigmoid.toml"))) is None  # never zero


# a non-linear leak integrated by euler in sub-steps of at most 0.2 ms
SUBSTEPPED = """
[neuron]
name = "Cubic"
[parameters]
tau = 0.01
[state]
v = 0
[dynamics]
max_step = 0.0002
equations = "dv/dt = (J - v - v**3) / tau : euler"
[spike]
condition = "v > 1"
reset = ["v = 0"]
"""


def _order_check(tmp_path, text):
    path = write(tmp_path, text)
    compiled = compile_spec(path)
    model, neuron = compiled.model, compiled_module(compiled).NEURON_TYPE()
    reference = verify.Reference(model, {p.name: getattr(neuron, p.name) for p in model.parameters})
    state0 = verify.initial_state(model)
    return verify.check_order(model, compiled.program, neuron, reference, 2.0, state0, 1e-3)


def test_convergence_order_halves_the_sub_steps_of_a_max_step_model(tmp_path):
    # halving nengo's dt keeps sub-steps of max_step: the check halves the sub-step
    check = _order_check(tmp_path, SUBSTEPPED)
    assert check.status == verify.PASS, check
    assert "dt = 0.0002, 0.0001, 5e-05 s" in check.detail
    assert 0.8 < check.value < 1.3  # euler


def test_convergence_order_uses_an_input_that_moves_the_state(tmp_path):
    # levels tried for threshold 2: J = 1 spikes (at v = 0.05), J = 0 leaves v at rest
    # (any method is exact there), J = -2 moves v: that one is used
    check = _order_check(tmp_path, SUBSTEPPED.replace('"v > 1"', '"v > 0.05"'))
    assert "at J = -2 " in check.compares, check
    assert math.isfinite(check.value) and check.value > 0.8
