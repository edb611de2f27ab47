"""Rate tables that find their own range: the threshold by a widening search, the top
up to the rates ``gain_bias`` is asked for; non-monotonic curves named by
``gain_bias``; no NumPy warnings; neurogen's own warnings for silent models and for a
table step the model cannot resolve."""

import warnings

import numpy as np
import pytest
from nengo.exceptions import ValidationError

from neurogen import runtime
from neurogen.errors import NeurogenWarning

LIF_500 = """
[neuron]
name = "HighLIF"

[parameters]
tau_rc = 0.02

[state]
voltage = 0

[dynamics]
equations = "dvoltage/dt = (J - voltage) / tau_rc"

[spike]
condition = "voltage > 500"
reset = ["voltage = 0"]

[rate]
table = {}
"""

# the rate J * exp(-J / 20) / tau rises up to J = 20, then falls (like depolarisation block)
BLOCK = """
[neuron]
name = "Block"

[parameters]
tau = 0.1

[state]
voltage = 0

[dynamics]
equations = "dvoltage/dt = J * exp(-J / 20) / tau"

[spike]
condition = "voltage > 1"
reset = ["voltage = 0"]

[rate]
table = {}
"""

# a cubic (FitzHugh-Nagumo-like) model with a recovery variable kicked by each spike:
# explicit Euler overflows at the large currents of the search
CUBIC = """
[neuron]
name = "Cubic"

[parameters]
tau = 0.01
tau_w = 0.1

[state]
v = -1.2
w = -0.6

[dynamics]
equations = '''
dv/dt = (v - v**3 / 3 - w + J) / tau : euler
dw/dt = (v + 0.7 - 0.8 * w) / tau_w : euler
'''

[spike]
condition = "v > 1.5"
reset = ["w = w + 0.5"]

[rate]
table = {}
"""

SILENT = LIF_500.replace("voltage > 500", "voltage > 1e12")


def fresh_table(neuron):
    """Tabulate without the memory and disk caches."""
    options = dict(neuron.rate_table_options)
    return runtime._tabulate(neuron, **options)


def test_high_threshold_found_without_options(build_module, tmp_path):
    neuron = build_module(tmp_path, LIF_500, name="high_lif").HighLIF()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = fresh_table(neuron)
    assert 495 <= table.threshold <= 500.5
    assert table.values.max() >= runtime.TOP_RATE  # covers nengo's default max_rates
    J = table.threshold + np.array([5.0, 100.0, 1000.0])
    assert np.allclose(table(J), runtime.simulate_rates(neuron, J), rtol=0.02)
    gain, bias = table.gain_bias(np.array([200.0, 400.0]), np.array([0.0, 0.5]))
    assert np.allclose(table(gain + bias), [200.0, 400.0], rtol=1e-3)


def test_non_monotonic_curve_named_by_gain_bias(build_module, tmp_path):
    neuron = build_module(tmp_path, BLOCK, name="block").Block()
    table = fresh_table(neuron)
    assert table.falls
    peak = 20 * np.exp(-1) / 0.1  # 73.6 Hz at J = 20
    assert table.max_rate == pytest.approx(peak, rel=0.05)
    J_peak = table.currents[table.peak]
    assert 10 < J_peak < 30  # the staircase at dt puts the first highest node below 20
    rising = rf"\[{table.threshold:.6g}, {J_peak:.6g}\]"
    with pytest.raises(ValidationError, match=rf"not monotonic.*then falls.*{rising}"):
        table.gain_bias(np.array([200.0]), np.array([0.0]))
    gain, bias = table.gain_bias(np.array([50.0]), np.array([0.0]))  # on the rising part
    assert gain + bias < 20 and table(gain + bias) == pytest.approx(50.0, rel=1e-3)


def test_no_numpy_warnings_from_a_model_that_overflows(build_module, tmp_path):
    neuron = build_module(tmp_path, CUBIC, name="cubic").Cubic()
    with pytest.warns(RuntimeWarning, match="overflow"):  # plain steps at J = 1e6 overflow
        _plain_step(neuron, 1e6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", NeurogenWarning)
        table = fresh_table(neuron)
        assert np.isnan(runtime.simulate_rates(neuron, [1e6], duration=0.05, settle=0))[0]
    assert np.all(np.isfinite(table.values)) and table.values.max() > 0


def _plain_step(neuron, J):
    state = neuron.make_state(1, rng=np.random.RandomState(0), dtype=np.float64)
    output = np.zeros(1)
    with np.errstate(over="warn", invalid="ignore"):
        for _ in range(20):
            neuron.step(0.001, np.array([J]), output, **state)


def test_silent_model_warns_naming_the_range(build_module, tmp_path):
    neuron = build_module(tmp_path, SILENT, name="silent").HighLIF()
    with pytest.warns(NeurogenWarning, match=r"never fires for currents from -10 to \d"):
        table = fresh_table(neuron)
    assert not table.values.any()


class StepCounter:
    """Fires every ``period`` steps whatever the step: a model ``dt`` cannot resolve
    (``seconds`` set: fires every ``seconds``, resolved)."""

    def __init__(self, period=3, seconds=None):
        self.period, self.seconds = period, seconds

    def make_state(self, n, rng, dtype):
        return {"phase": np.zeros(n)}

    def step(self, dt, J, output, phase):
        phase += dt / self.seconds if self.seconds else 1.0 / self.period
        fired = (phase >= 1 - 1e-9) & (J > 0)
        phase[fired] = 0
        output[:] = fired / dt


@pytest.mark.parametrize("seconds, warns", [(None, True), (0.01, False)])
def test_step_warning(seconds, warns):
    model = StepCounter(seconds=seconds)
    currents = runtime.RateTable(0.0, 10.0, np.zeros(16)).currents
    table = runtime.RateTable(0.0, 10.0, runtime.simulate_rates(model, currents, settle=0, duration=0.5))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runtime._check_step(model, table, 0.0, 0.5, 0.001, "M")
    texts = [str(w.message) for w in caught if w.category is NeurogenWarning]
    assert bool(texts) == warns
    if warns:
        assert "dt = 0.001 s" in texts[0] and "[rate] table = { dt = 0.0001 }" in texts[0]


@pytest.mark.parametrize("name", ["qif", "izhikevich", "exp_if", "alif_threshold"])
def test_bundled_tables_warn_nothing(name):
    import importlib

    module = importlib.import_module(f"generated.{name}")
    neuron = module.NEURON_TYPE()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        options = dict(neuron.rate_table_options)
        if hasattr(neuron, "max_dt"):
            options["dt"] = min(options["dt"], neuron.max_dt() / 2)
        table = runtime._tabulate(neuron, **options)
    assert table.values.max() > 0
