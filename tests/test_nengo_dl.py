"""The generated NengoDL builders run natively and agree with nengo core.

For every row of ``conftest.SPECS`` one small network (two ensembles of the generated
type: default parameters and the row's first non-default set, so that NengoDL merges
them into one op with per-neuron parameters) is simulated for 1 s in NengoDL and in
nengo core, and the probed outputs and states are compared.
"""

import ast
import contextlib
import inspect
import warnings

import nengo
import numpy as np
import pytest

from conftest import generated_module, nengo_precision_kept, spec_rows

# building NengoDL simulators takes a while: the module runs in ~25 s
pytestmark = pytest.mark.slow

nengo_dl = pytest.importorskip("nengo_dl")
from nengo_dl import neuron_builders  # noqa: E402
from nengo_dl.neuron_builders import SimNeuronsBuilder  # noqa: E402

DT = 0.001
T = 1.0
N_NEURONS = 60
ROWS = spec_rows()
IDS = [name for name, _ in ROWS]


@contextlib.contextmanager
def dl_simulator(net, **kwargs):
    """``nengo_dl.Simulator`` that cannot leave nengo's float precision changed.

    (NengoDL sets ``nengo.rc`` precision while building and does not restore it when
    the build fails, which would silently make later nengo core runs float32.)
    """
    kwargs.setdefault("dt", DT)
    with nengo_precision_kept(), nengo_dl.Simulator(net, progress_bar=False, **kwargs) as sim:
        yield sim


def _max_rates(neuron_type):
    """Between 60% and 90% of 1 / tau_ref (sigmoid gains are positive only above 50%);
    tabulated rates are outputs, amplitude included, and refuse higher ones."""
    tau_ref = getattr(neuron_type, "tau_ref", 0)
    top = 1 / tau_ref if tau_ref and tau_ref > 0 else 250.0
    if hasattr(neuron_type, "rate_table"):
        top *= getattr(neuron_type, "amplitude", 1)
    return nengo.dists.Uniform(0.6 * top, 0.9 * top)


def _network(mod, row, dtype):
    kwargs_sets = [{}] + list(row.params[:1])
    with nengo.Network(seed=1) as net:
        nengo_dl.configure_settings(dtype=dtype)
        stim = nengo.Node(lambda t: 0.8 * np.sin(2 * np.pi * 3 * t) + 0.2)
        probes = []
        for kwargs in kwargs_sets:
            neuron_type = mod.NEURON_TYPE(**kwargs)
            ens = nengo.Ensemble(
                N_NEURONS,
                1,
                neuron_type=neuron_type,
                max_rates=_max_rates(neuron_type),
                intercepts=nengo.dists.Uniform(-0.8, 0.8),
            )
            nengo.Connection(stim, ens, synapse=None)
            probes.append(
                dict(
                    kwargs=kwargs,
                    output=nengo.Probe(ens.neurons),
                    input=nengo.Probe(ens.neurons, "input"),
                    states={s: nengo.Probe(ens.neurons, s) for s in mod.NEURON_TYPE.state},
                )
            )
    return net, probes


class Run:
    """NengoDL and nengo core runs of one network, and what happened while building."""

    def __init__(self, name, row, dtype):
        self.name, self.row, self.dtype = name, row, dtype
        self.mod = mod = generated_module(name)
        self.net, self.probes = _network(mod, row, dtype)
        self.built = []
        original = mod.BUILDER.build_pre

        def spy(builder, signals, config):
            self.built.append([type(op.neurons) for op in builder.ops])
            return original(builder, signals, config)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(mod.BUILDER, "build_pre", spy)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with dl_simulator(self.net) as sim:
                    sim.run(T)
        self.warnings = [str(w.message) for w in caught]
        self.dl = sim.data
        with nengo.Simulator(self.net, dt=DT, progress_bar=False) as ref:
            ref.run(T)
        self.ref = ref.data


_runs = {}


def get_run(name, row, dtype):
    key = (name, dtype)
    if key not in _runs:
        _runs[key] = Run(name, row, dtype)
    return _runs[key]


@pytest.fixture(scope="module", autouse=True)
def _free_runs():
    yield
    _runs.clear()


def _counts(output, amplitude):
    """Spikes per neuron: output is amplitude / dt per spike (several per step possible)."""
    return np.rint(output * DT / amplitude).sum(axis=0)


@pytest.mark.parametrize("name, row", ROWS, ids=IDS)
def test_runs_natively(name, row):
    run = get_run(name, row, "float64")
    falling_back = [w for w in run.warnings if "falling back" in w]
    assert not falling_back, falling_back
    # the generated builder (not NengoDL's own, not the generic one) built both ensembles
    # (NengoDL may build its graph more than once)
    assert run.built
    assert all(types == [run.mod.NEURON_TYPE] * 2 for types in run.built), run.built


@pytest.mark.parametrize("name, row", ROWS, ids=IDS)
def test_matches_nengo_float64(name, row):
    run = get_run(name, row, "float64")
    for probes in run.probes:
        out_dl, out_ref = run.dl[probes["output"]], run.ref[probes["output"]]
        assert out_dl.shape == out_ref.shape == (int(round(T / DT)), N_NEURONS)
        assert out_dl.dtype == out_ref.dtype == np.float64
        if row.reference.spiking:
            amplitude = getattr(run.mod.NEURON_TYPE(**probes["kwargs"]), "amplitude", 1)
            counts_dl, counts_ref = _counts(out_dl, amplitude), _counts(out_ref, amplitude)
            assert counts_ref.sum() > 0
            np.testing.assert_array_equal(counts_dl, counts_ref)
        else:
            scale = max(np.abs(out_ref).max(), 1.0)
            np.testing.assert_allclose(out_dl, out_ref, rtol=1e-9, atol=1e-9 * scale)
        states = {state: run.ref[probe] for state, probe in probes["states"].items()}
        keep = row.comparable(states) if row.comparable else np.ones(N_NEURONS, bool)
        assert keep.mean() > 0.25
        for state, probe in probes["states"].items():
            want = run.ref[probe][:, keep]
            scale = max(np.abs(want).max(), 1.0)
            np.testing.assert_allclose(run.dl[probe][:, keep], want, rtol=0, atol=1e-4 * scale, err_msg=state)


@pytest.mark.parametrize("name, row", ROWS, ids=IDS)
def test_matches_nengo_float32(name, row):
    run = get_run(name, row, "float32")
    assert not [w for w in run.warnings if "falling back" in w]
    for probes in run.probes:
        out_dl, out_ref = run.dl[probes["output"]], run.ref[probes["output"]]
        assert out_dl.dtype == np.float32
        if row.reference.spiking:
            # float32 rounding may move a threshold crossing across a step boundary:
            # allow at most 1% of the neurons to be off by one spike
            amplitude = getattr(run.mod.NEURON_TYPE(**probes["kwargs"]), "amplitude", 1)
            diff = np.abs(_counts(out_dl, amplitude) - _counts(out_ref, amplitude))
            if row.comparable:
                states = {s: run.ref[p] for s, p in probes["states"].items()}
                diff = diff[row.comparable(states)]
            assert diff.max() <= 1
            assert np.count_nonzero(diff) <= 0.01 * N_NEURONS
        else:
            # TensorFlow flushes float32 denormals to zero where NumPy keeps them
            # (e.g. SoftLIFRate's softplus far below threshold): allow 0.2% of the peak
            scale = max(np.abs(out_ref).max(), 1.0)
            np.testing.assert_allclose(out_dl, out_ref, rtol=1e-4, atol=2e-3 * scale)


SPIKING = [(n, r) for n, r in ROWS if r.reference.spiking]


@pytest.mark.parametrize("name, row", SPIKING, ids=[n for n, _ in SPIKING])
def test_training_step_is_the_rate(name, row):
    """With ``learning_phase=True`` a spiking type outputs its steady-state rate."""
    mod = generated_module(name)
    if not row.same_rates:
        want = mod.NEURON_TYPE  # neurogen's own (adaptation-aware / tabulated) rate
        row = row._replace(reference=want)
    net, probes = _network(mod, row, "float64")
    with net:
        nengo_dl.configure_settings(learning_phase=True)
    with dl_simulator(net) as sim:
        sim.run_steps(200)
    for p in probes:
        J = sim.data[p["input"]]
        want = row.reference(**p["kwargs"]).rates(J, np.ones(J.shape[1]), np.zeros(J.shape[1]))
        assert np.any(want > 0)
        np.testing.assert_allclose(sim.data[p["output"]], want, rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------------------
# registration with NengoDL


def _native_impl():
    """NengoDL's own ``TF_NEURON_IMPL``, read from its source (the live dict may
    already hold generated builders)."""
    source = inspect.getsource(SimNeuronsBuilder)
    tree = ast.parse(inspect.cleandoc("\n" + source) if source[0] == " " else source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "TF_NEURON_IMPL" for t in node.targets
        ):
            native = {}
            for k, v in zip(node.value.keys, node.value.values):
                key = eval(compile(ast.Expression(k), "<impl>", "eval"), vars(neuron_builders))
                value = eval(compile(ast.Expression(v), "<impl>", "eval"), vars(neuron_builders))
                native[key] = value
            return native
    raise AssertionError("TF_NEURON_IMPL not found in NengoDL's source")


def test_native_impl_reader():
    native = _native_impl()
    assert native[nengo.LIF] is neuron_builders.LIFBuilder
    assert native[nengo.RectifiedLinear] is neuron_builders.RectifiedLinearBuilder


def test_lif_keeps_native_builder():
    import generated.lif

    impl = SimNeuronsBuilder.TF_NEURON_IMPL
    assert impl[nengo.LIF] is neuron_builders.LIFBuilder
    assert impl[generated.lif.NEURON_TYPE] is generated.lif.BUILDER


@pytest.mark.parametrize("name, row", ROWS, ids=IDS)
def test_registration_rule(name, row):
    """Importing a generated module registers its builder for the generated class and
    for the bound class only where NengoDL has no builder of its own."""
    mod = generated_module(name)
    impl, native = SimNeuronsBuilder.TF_NEURON_IMPL, _native_impl()
    assert impl[mod.NEURON_TYPE] is mod.BUILDER
    bound_classes = {row.reference, *getattr(mod.BUILDER, "bound_classes", ())}

    def check():
        for bound in bound_classes:
            if bound in native:
                assert impl[bound] is native[bound], bound
            else:  # this module's builder, or that of another generated module binding it
                assert impl[bound].__module__.startswith("generated."), bound

    check()
    mod.register()  # registering again changes nothing
    check()


def test_register_override_swaps_builder(monkeypatch):
    import generated.lif

    impl = SimNeuronsBuilder.TF_NEURON_IMPL
    # monkeypatch restores NengoDL's own builder afterwards
    monkeypatch.setitem(impl, nengo.LIF, impl[nengo.LIF])
    monkeypatch.setitem(impl, generated.lif.NEURON_TYPE, impl[generated.lif.NEURON_TYPE])
    generated.lif.register(override=True)
    assert impl[nengo.LIF] is generated.lif.BUILDER
    assert impl[generated.lif.NEURON_TYPE] is generated.lif.BUILDER
    generated.lif.register()  # without override, the existing entry stays
    assert impl[nengo.LIF] is generated.lif.BUILDER
    monkeypatch.undo()  # the override is an ordinary entry: undoing it restores NengoDL's
    assert impl[nengo.LIF] is neuron_builders.LIFBuilder
    assert impl[generated.lif.NEURON_TYPE] is generated.lif.BUILDER


def test_importing_package_registers_every_builder():
    import generated

    impl = SimNeuronsBuilder.TF_NEURON_IMPL
    for name in generated.__all__:
        mod = getattr(generated, name)
        assert impl[mod.NEURON_TYPE] is mod.BUILDER


ADAPTIVE_LIF_RATE = '''
[neuron]
name = "AdaptiveLIFRate"
binds = "nengo.AdaptiveLIFRate"
negative = false

[parameters]
tau_n = { value = 1, low = 0, low_open = true }
inc_n = { value = 0.01, low = 0 }
tau_rc = { value = 0.02, low = 0, low_open = true }
tau_ref = { value = 0.002, low = 0 }
amplitude = { value = 1, low = 0, low_open = true }

[state]
adaptation = 0

[dynamics]
input = "J - adaptation"

[output]
expression = "where(J > 1, amplitude / (tau_ref + tau_rc * log1p(1 / max(J - 1, 1e-15))), 0)"

[after_output]
equations = "dadaptation/dt = (inc_n * output - adaptation) / tau_n : euler"
'''


def test_bound_class_without_native_builder(tmp_path, build_module, monkeypatch):
    """A bound class NengoDL has no builder for gets the generated one; the result
    runs natively and matches nengo core's own class."""
    assert nengo.AdaptiveLIFRate not in _native_impl()
    # a bundled spec may already have registered a builder for it
    monkeypatch.delitem(SimNeuronsBuilder.TF_NEURON_IMPL, nengo.AdaptiveLIFRate, raising=False)
    mod = build_module(tmp_path, ADAPTIVE_LIF_RATE, name="adaptive_lif_rate")
    impl = SimNeuronsBuilder.TF_NEURON_IMPL
    assert impl[nengo.AdaptiveLIFRate] is mod.BUILDER

    kwargs = dict(tau_n=0.1, inc_n=0.5)
    with nengo.Network(seed=2) as net:
        nengo_dl.configure_settings(dtype="float64")
        stim = nengo.Node(lambda t: 0.8 * np.sin(2 * np.pi * 3 * t) + 0.2)
        ens = nengo.Ensemble(40, 1, neuron_type=nengo.AdaptiveLIFRate(**kwargs))
        nengo.Connection(stim, ens, synapse=None)
        p = nengo.Probe(ens.neurons)
        pa = nengo.Probe(ens.neurons, "adaptation")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with dl_simulator(net) as sim:
            sim.run_steps(300)
    assert not [w for w in caught if "falling back" in str(w.message)]
    with nengo.Simulator(net, dt=DT, progress_bar=False) as ref:
        ref.run_steps(300)
    np.testing.assert_allclose(sim.data[p], ref.data[p], rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(sim.data[pa], ref.data[pa], rtol=1e-9, atol=1e-9)
    assert ref.data[pa].max() > 0


OSCILLATOR = '''
[neuron]
name = "Oscillator"

[parameters]
tau = 0.1
omega = 30

[state]
x = 0
y = 0

[dynamics]
equations = """
dx/dt = -x / tau + omega * y + J : exact
dy/dt = -omega * x - y / tau : exact
"""

[output]
expression = "x"

[rate]
expression = "max(J, 0)"
'''


def test_linear_system_with_complex_eigenvalues(tmp_path, build_module):
    mod = build_module(tmp_path, OSCILLATOR, name="oscillator")
    with nengo.Network(seed=3) as net:
        nengo_dl.configure_settings(dtype="float64")
        ens = nengo.Ensemble(4, 1, neuron_type=mod.NEURON_TYPE(), gain=np.ones(4), bias=np.linspace(-1, 1, 4))
        p = nengo.Probe(ens.neurons, "y")
    with dl_simulator(net) as sim:
        sim.run_steps(50)
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.ComplexWarning)  # the propagator is real code
        with nengo.Simulator(net, dt=DT, progress_bar=False) as ref:
            ref.run_steps(50)
    np.testing.assert_allclose(sim.data[p], ref.data[p], atol=1e-9)

