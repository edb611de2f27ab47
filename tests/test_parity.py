"""The generated NumPy neuron types reproduce nengo's hand-written ones exactly.

For every row of ``conftest.SPECS`` and every parameter set (the defaults plus the
row's non-default sets), the generated class's ``step`` is run side by side with the
reference class's own ``step`` from identical initial states, and output and every
state are compared after each step.
"""

import warnings

import numpy as np
import pytest
from nengo.exceptions import ValidationError
from nengo.params import NumberParam

from neurogen.parameters import PerNeuron

from conftest import counted_rates, generated_module, param_cases, spec_rows

DT = 0.001
N_STEPS = 2000


def parity_currents(rng, thresholds=(0.0, 1.0)):
    """Constant parts of the input currents, one per neuron (about 400 neurons).

    Negative, sub-threshold, near each threshold (within +-5%, and +-0.05 of 0),
    moderate and large (up to 1e3, both signs).
    """
    parts = [
        -np.logspace(-3, 3, 30),  # negative, down to -1e3
        rng.uniform(-5, 0, 30),
        rng.uniform(0, 0.95, 40),  # sub-threshold
        rng.uniform(1.05, 20, 60),  # moderate
        np.logspace(np.log10(20), 3, 40),  # large, up to 1e3
        [0.0, 1.0, 1e3, -1e3],
    ]
    for t in thresholds:
        width = max(0.05 * abs(t), 0.05)
        parts.append(rng.uniform(t - width, t + width, 100))
        parts.append(t + np.linspace(-1e-6, 1e-6, 9))
    return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])


def _params(cls):
    """NumberParams of a nengo class, by name."""
    return {n: p for n in dir(cls) for p in [getattr(cls, n, None)] if isinstance(p, NumberParam)}


# ----------------------------------------------------------------------------
# step: output and every state, every step


@pytest.mark.parametrize("name, row, kwargs", param_cases())
def test_step_matches_reference(name, row, kwargs):
    mod = generated_module(name)
    ours, ref = mod.NEURON_TYPE(**kwargs), row.reference(**kwargs)
    rng = np.random.RandomState(sum(map(ord, name)) + len(kwargs))
    thresholds = row.inputs if row.inputs is not None else (0.0, 1.0)
    J0 = parity_currents(rng, thresholds)
    n = J0.size

    state0 = ref.make_state(n, rng=np.random.RandomState(42), dtype=np.float64)
    assert list(state0) == list(mod.NEURON_TYPE.state)
    s_ours = {k: v.copy() for k, v in state0.items()}
    s_ref = {k: v.copy() for k, v in state0.items()}
    out_ours, out_ref = np.zeros(n), np.zeros(n)

    noise = np.random.RandomState(7)
    spikes = np.zeros(n)
    for step in range(N_STEPS):
        J = J0 * (1 + 0.01 * noise.randn(n)) + 0.02 * noise.randn(n)
        with np.errstate(all="ignore"):  # e.g. exp(-J) overflows for J = -1e3
            getattr(ref, row.step)(DT, J.copy(), out_ref, **s_ref)
            ours.step(DT, J.copy(), out_ours, **s_ours)
        np.testing.assert_allclose(
            out_ours, out_ref, rtol=0, atol=1e-6, err_msg=f"{name} {kwargs}: output, step {step}"
        )
        for key in s_ref:
            np.testing.assert_allclose(
                s_ours[key], s_ref[key], rtol=0, atol=1e-6, err_msg=f"{name} {kwargs}: {key}, step {step}"
            )
        if step >= N_STEPS // 2:  # after start-up (every Izhikevich neuron spikes at once)
            spikes += out_ref != 0

    assert np.all(np.isfinite(out_ref))
    if ref.spiking:
        # the comparison is not vacuous: some neurons spike, some never do
        assert 0 < np.count_nonzero(spikes) < n


def test_step_reads_its_arrays_in_place():
    """The NumPy step writes output and states into the arrays it is given."""
    mod = generated_module("lif")
    nt = mod.NEURON_TYPE()
    state = nt.make_state(3, rng=np.random.RandomState(0), dtype=np.float64)
    voltage, refractory = state["voltage"], state["refractory_time"]
    output = np.zeros(3)
    nt.step(DT, np.array([0.5, 2.0, 1e3]), output, **state)
    assert state["voltage"] is voltage and state["refractory_time"] is refractory
    assert output[2] == 1 / DT  # a huge input spikes at once
    assert refractory[2] > 0 and voltage[2] == 0


# ----------------------------------------------------------------------------
# rates, gain_bias, max_rates_intercepts


#: the tuning methods a generated class defines itself; every other one it inherits
#: from the bound class on purpose (nengo's closed forms fit the generated step)
OWN_TUNING = {
    "lif": {"rates"},  # derived closed form (nengo.LIF's is LIFRate's step at dt = 1)
    "fast_lif": {"rates"},
    "spiking_rectified_linear": {"rates"},
    "adaptive_lif": {"rates", "gain_bias", "max_rates_intercepts"},  # adaptation-aware table
    "izhikevich": {"rates", "gain_bias", "max_rates_intercepts"},  # table, fast to build
}
TUNING = ("rates", "gain_bias", "max_rates_intercepts")


@pytest.mark.parametrize("name, row", spec_rows(), ids=[n for n, _ in spec_rows()])
def test_tuning_methods_are_own_or_inherited_on_purpose(name, row):
    cls = generated_module(name).NEURON_TYPE
    assert {m for m in TUNING if m in cls.__dict__} == OWN_TUNING.get(name, set())
    for method in set(TUNING) - OWN_TUNING.get(name, set()):
        resolved = getattr(cls, method)
        if resolved is getattr(PerNeuron, method):  # per-neuron grouping; scalars go on
            resolved = getattr(super(PerNeuron, cls), method)
        assert resolved is getattr(row.reference, method), method


def _tuning(ref, n, rng):
    tau_ref = getattr(ref, "tau_ref", 0)
    top = 1 / tau_ref if tau_ref and tau_ref > 0 else 250.0
    max_rates = rng.uniform(0.2, 0.9, n) * top
    intercepts = rng.uniform(-0.9, 0.9, n)
    return max_rates, intercepts


def _own_rate_cases():
    return [c for c in param_cases() if c.values[0] in OWN_TUNING and c.id.endswith(("default", "p1"))]


@pytest.mark.parametrize("name, row, kwargs", _own_rate_cases())
def test_own_rates_match_spike_counts_of_the_reference_step(name, row, kwargs):
    """An own ``rates`` against the reference class's own ``step``, run for seconds."""
    ours, ref = generated_module(name).NEURON_TYPE(**kwargs), row.reference(**kwargs)
    settle = 5 * getattr(ref, "tau_n", 0.1)  # adaptation settles over a few tau_n
    J = np.array([-1.0, 0.5, 1.5, 3.0, 8.0, 40.0]) if name != "izhikevich" else np.array([0.0, 5.0, 10.0, 20.0])
    want = counted_rates(ref, J, settle=settle, duration=4.0, step=row.step)
    got = ours.rates(J, 1.0, 0.0)[:, 0]
    assert np.any(want > 10)
    # counting is exact to one spike in 4 s; tables interpolate and settle differently
    np.testing.assert_allclose(got, want, rtol=0.03, atol=0.5)


@pytest.mark.parametrize("name, row, kwargs", [c for c in _own_rate_cases() if c.values[1].same_rates])
def test_own_rates_match_reference_closed_form(name, row, kwargs):
    """Where the rate has a closed form, the generated one equals nengo's, also at and
    just around the threshold."""
    ours, ref = generated_module(name).NEURON_TYPE(**kwargs), row.reference(**kwargs)
    J = np.concatenate([np.linspace(-3, 30, 331), [1.0, 1 + 1e-12, 1 - 1e-12, 0.0, 1e3]])
    want = ref.rates(J, 1.0, 0.0)
    np.testing.assert_allclose(ours.rates(J, 1.0, 0.0), want, rtol=1e-9, atol=1e-12)
    assert np.any(want > 0) and np.any(want == 0)
    rng = np.random.RandomState(3)
    max_rates, intercepts = _tuning(ref, 50, rng)
    gain, bias = ref.gain_bias(max_rates, intercepts)
    x = np.linspace(-1.5, 1.5, 121)
    np.testing.assert_allclose(ours.rates(x, gain, bias), ref.rates(x, gain, bias), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name, row, kwargs", [c for c in _own_rate_cases() if not c.values[1].same_rates])
def test_own_gain_bias_gives_the_promised_rates(name, row, kwargs):
    """``gain_bias`` from a table: the reference's own step fires at ``max_rates`` for
    x = 1, and not at all just below the intercept."""
    ours, ref = generated_module(name).NEURON_TYPE(**kwargs), row.reference(**kwargs)
    # rates the table reaches (above it, see the gain_bias ValidationError tests)
    max_rates = np.array([0.1, 0.4, 0.9]) * ours.rate_table().values[-1]
    intercepts = np.array([-0.5, 0.0, 0.5])
    gain, bias = ours.gain_bias(max_rates, intercepts)
    settle = 5 * getattr(ref, "tau_n", 0.1)
    np.testing.assert_allclose(counted_rates(ref, gain + bias, settle=settle, step=row.step), max_rates, rtol=0.03)
    below = counted_rates(ref, gain * (intercepts - 0.05) + bias, settle=settle, duration=1.0, step=row.step)
    assert np.all(below == 0)
    for got, want in zip(ours.max_rates_intercepts(gain, bias), (max_rates, intercepts)):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize(
    "name, row",
    [pytest.param(n, r, id=n) for n, r in spec_rows() if not r.reference.spiking and not r.reference.state],
)
def test_stateless_step_gives_the_inherited_rates(name, row):
    """A stateless rate neuron's generated ``step`` is its inherited ``rates``."""
    nt = generated_module(name).NEURON_TYPE()
    J = np.linspace(-3, 30, 67)
    out = np.zeros_like(J)
    nt.step(DT, J, out)
    np.testing.assert_allclose(out, nt.rates(J, 1.0, 0.0)[:, 0], rtol=1e-12, atol=1e-12)
    assert np.any(out != 0)


def _warnings(fn, *args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(*args)
    return [f"{w.category.__name__}: {w.message}" for w in caught]


@pytest.mark.parametrize("name, row", [pytest.param(n, r, id=n) for n, r in spec_rows()])
def test_rates_warn_only_where_reference_does(name, row):
    """``rates`` at and around threshold: no NumPy warnings the reference avoids."""
    ours, ref = generated_module(name).NEURON_TYPE(), row.reference()
    J = np.array([-1e3, -1.0, 0.0, 1e-12, 0.5, 1.0 - 1e-12, 1.0, 1.0 + 1e-12, 2.0, 1e3])
    ones, zeros = np.ones_like(J), np.zeros_like(J)
    if _warnings(ref.rates, J, ones, zeros):
        pytest.skip("the reference warns too")
    assert _warnings(ours.rates, J, ones, zeros) == []


# ----------------------------------------------------------------------------
# class attributes and parameters


@pytest.mark.parametrize("name, row", spec_rows(), ids=[n for n, _ in spec_rows()])
def test_class_matches_reference(name, row):
    mod = generated_module(name)
    cls, ref = mod.NEURON_TYPE, row.reference
    assert issubclass(cls, ref)
    assert cls is not ref
    # the generated class sets these itself: comparing them is not nengo against nengo
    for attr in ("state", "spiking", "negative", "__init__", "step"):
        assert attr in cls.__dict__, attr
    assert list(cls.state) == list(ref.state)
    assert cls.spiking == ref.spiking
    assert cls.negative == ref.negative
    ours, theirs = cls(), ref()
    assert ours.probeable == theirs.probeable
    # same default initial states (same samples from the same seed)
    a = ours.make_state(20, rng=np.random.RandomState(5), dtype=np.float64)
    b = theirs.make_state(20, rng=np.random.RandomState(5), dtype=np.float64)
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("name, row", spec_rows(), ids=[n for n, _ in spec_rows()])
def test_parameters_match_reference(name, row):
    mod = generated_module(name)
    cls, ref = mod.NEURON_TYPE, row.reference
    ours, theirs = _params(cls), _params(ref)
    # every reference parameter exists (extra, generated-only parameters are allowed;
    # their defaults must keep the parity the step tests check)
    assert set(theirs) <= set(ours)
    for pname, p in theirs.items():
        q = ours[pname]
        assert pname in cls.__dict__, f"{pname} is inherited, not generated"
        assert (q.low, q.high, q.low_open, q.high_open) == (p.low, p.high, p.low_open, p.high_open), pname
        assert getattr(cls(), pname) == getattr(ref(), pname), f"default of {pname}"
    for kwargs in row.params:
        nt = cls(**kwargs)
        for key, value in kwargs.items():
            assert getattr(nt, key) == value


def _bad_values(p):
    """Values outside a NumberParam's bounds."""
    bad = []
    if p.low is not None:
        bad.append(p.low if p.low_open else p.low - 1)
    if p.high is not None:
        bad.append(p.high if p.high_open else p.high + 1)
    return bad


@pytest.mark.parametrize("name, row", spec_rows(), ids=[n for n, _ in spec_rows()])
def test_parameters_validate(name, row):
    cls = generated_module(name).NEURON_TYPE
    checked = 0
    for pname, p in _params(cls).items():
        for value in _bad_values(p):
            with pytest.raises(ValidationError, match=pname):
                cls(**{pname: value})
            nt = cls()
            with pytest.raises(ValidationError, match=pname):
                setattr(nt, pname, value)
            checked += 1
        with pytest.raises(ValidationError, match=pname):
            cls(**{pname: "fast"})
    assert checked > 0


def test_lif_tau_rc_must_be_positive():
    cls = generated_module("lif").NEURON_TYPE
    with pytest.raises(ValidationError, match="tau_rc"):
        cls(tau_rc=-1)
    with pytest.raises(ValidationError, match="tau_rc"):
        cls(tau_rc=0)
    with pytest.raises(ValidationError, match="min_voltage"):
        cls(min_voltage=0.5)
    cls(tau_ref=0)  # closed bound: allowed
