"""Tabulated f-I curves against independent references (issue 16).

Every check compares ``neurogen.runtime``'s tables with something the table does
not compute itself: nengo's closed-form ``LIFRate`` rates, spikes counted over a
long direct simulation of the ``step``, or the other backend (NumPy against
TensorFlow).  Each test here fails for one of these planted bugs:
``span = last + first`` in ``simulate_rates``, ``frac = idx + i0`` in
``RateTable.__call__`` and a flipped sign of TensorFlow's extrapolation slope.
"""

from pathlib import Path

import nengo
import numpy as np
import pytest

from conftest import build_spec, counted_rates
from neurogen.runtime import RateTable, rate_table, simulate_rates, stacked_tables


def tf_table_rate(*args):
    """The TensorFlow lookup (the one import of it here: it may move to a TF module)."""
    from neurogen.tf_runtime import tf_table_rate as lookup

    return lookup(*args)


#: a LIF neuron (nengo's LIF step) whose rate neurogen must tabulate
TABLE_LIF = """
[neuron]
name = "TableLIF"

[parameters]
tau_rc = {{ value = 0.02, low = 0, low_open = true }}
tau_ref = {{ value = 0.002, low = 0 }}

[state]
voltage = "Uniform(low=0, high=1)"
refractory_time = 0

[dynamics]
equations = "dvoltage/dt = (J - voltage) / tau_rc : exact"

[spike]
condition = "voltage > 1"
reset = ["voltage = 0"]
refractory = {{ period = "tau_ref", state = "refractory_time" }}

[rate]
table = {{ low = -2.0, high = 40.0, points = {points}, settle = 0.1, duration = 1.0, dt = {dt} }}
"""


def lif_rates(J, tau_rc=0.02, tau_ref=0.002):
    """nengo's closed-form LIF rate at currents ``J`` (gain 1, bias 0)."""
    J = np.asarray(J, dtype=float)
    out = np.zeros_like(J)
    nengo.LIFRate(tau_rc=tau_rc, tau_ref=tau_ref).step(1.0, J, out)  # the rate, whatever dt
    return out


@pytest.fixture(scope="module")
def table_lif(tmp_path_factory):
    """The LIF spec with a forced table, built once for this module (dt = 1 ms)."""
    return build_spec(tmp_path_factory.mktemp("table_lif"), TABLE_LIF.format(points=256, dt=0.001), "table_lif")


# ----------------------------------------------------------------------------
# simulate_rates: spike timing against the closed form and against counting


@pytest.mark.parametrize("dt", [0.001, 0.0005, 0.002])
def test_simulate_rates_match_lif_closed_form(dt):
    J = np.array([1.05, 1.3, 2.0, 5.0, 20.0, 60.0])
    got = simulate_rates(nengo.LIF(), J, dt=dt, settle=0.05, duration=1.0)
    # first-to-last spike timing is exact up to the step at which spikes are seen
    np.testing.assert_allclose(got, lif_rates(J), rtol=0.01)


def test_simulate_rates_match_spike_counting():
    nt = nengo.AdaptiveLIF(tau_n=0.1, inc_n=0.05)  # no closed form: count spikes
    J = np.array([1.5, 3.0, 10.0, 30.0])
    np.testing.assert_allclose(
        simulate_rates(nt, J, settle=1.0, duration=2.0), counted_rates(nt, J, settle=1.0, duration=10.0), rtol=0.02
    )


def test_simulate_rates_silent_and_single_spike():
    J = np.array([-1.0, 0.5, 0.99])
    assert np.all(simulate_rates(nengo.LIF(), J) == 0)
    # one spike in the window: counted over the window, not divided by a zero span
    # (voltage starts at 0.549, RandomState(0)'s first sample: one crossing, at t = 0.5 s)
    nt = nengo.SpikingRectifiedLinear()
    np.testing.assert_allclose(simulate_rates(nt, np.array([0.9]), settle=0.0, duration=1.0), [1.0])


# ----------------------------------------------------------------------------
# a LIF spec forced to a table against nengo's closed form


def test_forced_table_matches_lif_closed_form(table_lif):
    nt = table_lif.NEURON_TYPE()
    table = nt.rate_table()
    assert abs(table.threshold - 1.0) < 0.01
    J = np.concatenate([np.linspace(-2, 0.98, 8), np.linspace(1.1, 40, 60)])
    got, want = nt.rates(J, 1.0, 0.0)[:, 0], lif_rates(J)
    assert np.all(got[want == 0] == 0)
    np.testing.assert_allclose(got[J > 1.1], want[J > 1.1], rtol=0.01)
    # above the table: continued with the slope of its upper half (close just above)
    np.testing.assert_allclose(table(np.array([40.0 + 1e-9])), table(np.array([40.0])), rtol=1e-9)
    np.testing.assert_allclose(table(np.array([41.0])), lif_rates([41.0]), rtol=0.01)


@pytest.mark.parametrize("dt", [0.0005, 0.002])
def test_forced_table_at_other_time_steps(build_module, tmp_path, dt):
    """The ``dt`` of ``[rate] table`` is the step the table is simulated at."""
    nt = build_module(tmp_path, TABLE_LIF.format(points=64, dt=dt), "table_dt").NEURON_TYPE()
    table = nt.rate_table()
    J = np.linspace(1.5, 40, 20)
    np.testing.assert_allclose(table(J), lif_rates(J), rtol=0.03)
    np.testing.assert_allclose(table(J), counted_rates(nt, J, dt=dt, duration=2.0), rtol=0.03, atol=1.0)


def test_gain_bias_gives_the_rates_it_promises(table_lif):
    nt = table_lif.NEURON_TYPE()
    max_rates = np.array([20.0, 80.0, 150.0, 300.0])
    intercepts = np.array([-0.6, 0.0, 0.3, 0.8])
    gain, bias = nt.gain_bias(max_rates, intercepts)
    # the table's own rates at x = 1 and at the intercept
    np.testing.assert_allclose(nt.rates(np.ones((1, 4)), gain, bias)[0], max_rates, rtol=1e-3)
    assert np.all(nt.rates(intercepts[None, :], gain, bias) == 0)
    assert np.all(nt.rates(intercepts[None, :] + 1e-3, gain, bias) > 0)
    # and independently: the closed form and a long simulation at J = gain + bias
    np.testing.assert_allclose(lif_rates(gain + bias), max_rates, rtol=0.01)
    np.testing.assert_allclose(counted_rates(nt, gain + bias), max_rates, rtol=0.02, atol=0.4)
    # nengo's own LIF gives (nearly) the same gains and biases
    g_ref, b_ref = nengo.LIF().gain_bias(max_rates, intercepts)
    np.testing.assert_allclose(gain, g_ref, rtol=0.02)
    # max_rates_intercepts inverts gain_bias
    for got, want in zip(nt.max_rates_intercepts(gain, bias), (max_rates, intercepts)):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6)


# ----------------------------------------------------------------------------
# RateTable by hand: a known curve, NumPy against TensorFlow


def _sqrt_table(points=33, threshold=0.5, high=4.0):
    """A table of ``r(J) = 10 * sqrt(J - threshold)``: linear in the table's ``s``."""
    s = np.linspace(0, 1, points)
    J = threshold + (high - threshold) * s**2
    return RateTable(threshold, high, 10 * np.sqrt(J - threshold))


def test_interpolation_is_exact_for_a_curve_linear_in_s():
    table = _sqrt_table()
    J = np.linspace(0.5, 4.0, 97)
    np.testing.assert_allclose(table(J), 10 * np.sqrt(J - 0.5), rtol=1e-12, atol=1e-12)
    assert np.all(table(np.array([-3.0, 0.0, 0.5])) == 0)
    # above high: the mean slope of the upper half of the table
    k = (33 - 1) // 2
    J_k = table.currents[k]
    slope = (table.values[-1] - table.values[k]) / (4.0 - J_k)
    np.testing.assert_allclose(table(np.array([5.0, 10.0])), table.values[-1] + slope * np.array([1.0, 6.0]))
    # current() inverts the curve, above the table as well
    np.testing.assert_allclose(table.current(table.values[-1] + 3 * slope), 7.0, rtol=1e-12)
    rates = np.array([1.0, 7.0, 18.0])
    np.testing.assert_allclose(table.current(rates), 0.5 + (rates / 10) ** 2, rtol=0.02)


def _tf_rates(J, threshold, high, values):
    import tensorflow as tf

    return tf_table_rate(tf.constant(J), threshold, high, tf.constant(values)).numpy()


def _curved_table(points, threshold, high, scale=1.0):
    """A curve that is not linear in ``s`` (so interpolation errors show)."""
    J = threshold + (high - threshold) * np.linspace(0, 1, points) ** 2
    return RateTable(threshold, high, scale * 30 * np.log1p(J - threshold) ** 1.5)


def test_numpy_and_tensorflow_lookups_agree_everywhere():
    table = _curved_table(40, 0.7, 12.0)
    # below threshold, at it, inside, at every node, at high and far above (extrapolation)
    J = np.concatenate([[-5.0, 0.0, 0.7], np.linspace(0.7, 12.0, 211), table.currents, [12.0, 13.0, 30.0, 200.0]])
    want = table(J)
    got = _tf_rates(J[None, :], table.threshold, table.high, table.values)[0]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    assert np.all(np.diff(want[-4:]) > 0)  # the extrapolation keeps rising


def test_numpy_and_tensorflow_lookups_agree_per_neuron():
    """Per-neuron tables (``stacked_tables``), as a group of NengoDL operators uses."""
    tables = [_curved_table(40, 0.7, 12.0), _curved_table(40, -0.3, 20.0, scale=2.0)]
    threshold, high, values = stacked_tables(tables, [2, 3])
    assert values.shape == (5, 40)
    J = np.array([[-1.0, 6.0, 0.0, 10.0, 50.0], [0.9, 15.0, 19.0, -0.3, 21.0]])
    want = np.stack([np.concatenate([tables[0](row[:2]), tables[1](row[2:])]) for row in J])
    got = _tf_rates(J, threshold, high, values)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


def test_rate_table_is_cached_per_parameters():
    a = rate_table(nengo.LIF(), -1, 10, 32, 0.05, 0.3)
    np.testing.assert_array_equal(rate_table(nengo.LIF(), -1, 10, 32, 0.05, 0.3).values, a.values)
    b = rate_table(nengo.LIF(tau_rc=0.05), -1, 10, 32, 0.05, 0.3)
    assert b is not a and b.values[-1] < a.values[-1]  # slower membrane: lower rates


# ----------------------------------------------------------------------------
# [rate] table options: each documented limit, at the edge and just beyond


@pytest.mark.parametrize(
    "options, error",
    [
        ("points = 16", None),
        ("points = 15", "points must be an integer from 16 to 100000"),
        ("points = 100000", None),
        ("points = 100001", "points must be an integer from 16 to 100000"),
        ("points = 20.0", "points must be an integer"),
        ("low = 1.0, high = 1.0", "needs low < high"),
        ("low = 1.0, high = 1.5", None),
        ("settle = 0.0", None),
        ("settle = -0.001", "needs settle >= 0, duration > 0 and dt > 0"),
        ("duration = 0.0", "needs settle >= 0, duration > 0 and dt > 0"),
        ("dt = 0.0", "needs settle >= 0, duration > 0 and dt > 0"),
        ("settle = 0.0, duration = 1000.0, dt = 0.001", None),  # exactly 1e6 steps
        ("settle = 0.001, duration = 1000.0, dt = 0.001", "too long (over 1e6 steps)"),
        ("steps = 3", "unknown [rate] table key 'steps'"),
        ("high = inf", "[rate] table high"),
    ],
)
def test_table_options_are_checked(options, error):
    from neurogen.errors import SpecError
    from neurogen.spec import parse

    default = "{ low = -2.0, high = 40.0, points = 256, settle = 0.1, duration = 1.0, dt = 0.001 }"
    text = TABLE_LIF.format(points=256, dt=0.001).replace(default, f"{{ {options} }}")
    assert options in text
    line = text.splitlines().index(f"table = {{ {options} }}") + 1
    if error is None:
        parse(text, Path("table_options.toml"))
        return
    with pytest.raises(SpecError) as info:
        parse(text, Path("table_options.toml"))
    assert error in str(info.value) and info.value.line == line, str(info.value)
