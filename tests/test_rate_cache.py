"""Tabulated f-I curves: the on-disk cache, the bounded in-memory cache, and
``gain_bias`` of a tabulated type (refuses unreachable rates, warns about nothing)."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from nengo.exceptions import ValidationError

from neurogen import runtime, table_cache
from neurogen.errors import NeurogenWarning
from neurogen.build import build

REPO = Path(__file__).resolve().parent.parent

# a QIF neuron with a small, quick rate table
SPEC = (REPO / "specs" / "qif.toml").read_text().replace(
    "table = { low = -2, high = 200, points = 512, settle = 0.2, duration = 1.0 }",
    "table = { low = -2, high = 20, points = 64, settle = 0.05, duration = 0.3 }",
)
assert "points = 64" in SPEC

# imports the built module by path and tabulates, counting simulate_rates calls
PROBE = """
import importlib.util, json, sys
import neurogen.runtime as runtime
calls = []
simulate = runtime.simulate_rates
def counting(*args, **kwargs):
    calls.append(1)
    return simulate(*args, **kwargs)
runtime.simulate_rates = counting
spec = importlib.util.spec_from_file_location("qif_probe", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
table = module.QIF(tau_m=float(sys.argv[2])).rate_table()
print(json.dumps({"calls": len(calls), "threshold": table.threshold, "values": list(table.values)}))
"""


@pytest.fixture(scope="module")
def qif_module(tmp_path_factory):
    out = tmp_path_factory.mktemp("qif")
    (out / "qif.toml").write_text(SPEC)
    (result,) = build([out / "qif.toml"], out / "pkg", force=True)
    assert result.status == "built", result.error
    return result.module_path


def _tabulate_in_new_process(module_path, cache, tau_m=0.02, **extra):
    env = {k: v for k, v in os.environ.items() if k != "NEUROGEN_NO_CACHE"}
    env.update(NEUROGEN_CACHE_DIR=str(cache), PYTHONPATH=str(REPO), **extra)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(module_path), str(tau_m)],
        capture_output=True, text=True, env=env, timeout=300, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_reads_the_table_from_disk(qif_module, tmp_path):
    first = _tabulate_in_new_process(qif_module, tmp_path)
    assert first["calls"] > 0
    files = list((tmp_path / "rate-tables").glob("*.npz"))
    assert len(files) == 1
    assert not [p for p in (tmp_path / "rate-tables").iterdir() if p.suffix != ".npz"]  # no temporaries left
    second = _tabulate_in_new_process(qif_module, tmp_path)
    assert second["calls"] == 0  # simulated nothing
    assert second["values"] == first["values"] and second["threshold"] == first["threshold"]
    other = _tabulate_in_new_process(qif_module, tmp_path, tau_m=0.01)  # other parameters
    assert other["calls"] > 0 and other["values"] != first["values"]
    assert len(list((tmp_path / "rate-tables").glob("*.npz"))) == 2


@pytest.mark.parametrize("damage", [b"", b"not a numpy file", "truncate", "foreign"])
def test_damaged_or_foreign_file_is_rebuilt(qif_module, tmp_path, damage):
    first = _tabulate_in_new_process(qif_module, tmp_path)
    (path,) = (tmp_path / "rate-tables").glob("*.npz")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "foreign":  # a valid table file stored under another key
        with np.load(path) as data:
            arrays = dict(data)
        arrays["key"] = np.array("0" * 64)
        arrays["values"] = arrays["values"] * 2
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    else:
        path.write_bytes(damage)
    again = _tabulate_in_new_process(qif_module, tmp_path)
    assert again["calls"] > 0  # not trusted: simulated again
    assert again["values"] == first["values"]
    assert _tabulate_in_new_process(qif_module, tmp_path)["calls"] == 0  # and stored again


def test_cache_can_be_turned_off(qif_module, tmp_path):
    result = _tabulate_in_new_process(qif_module, tmp_path, NEUROGEN_NO_CACHE="1")
    assert result["calls"] > 0
    assert not (tmp_path / "rate-tables").exists()


def test_key_depends_on_parameters_options_and_source(build_module, tmp_path):
    module = build_module(tmp_path, SPEC, name="qif")
    neuron = module.QIF()
    options = dict(module.QIF.rate_table_options)
    params = runtime._params(neuron)

    def key_of(neuron, params, options, simulator=runtime.__file__):
        return table_cache.key(neuron, params, options, simulator)

    key = key_of(neuron, params, options)
    assert key == key_of(module.QIF(), runtime._params(module.QIF()), dict(options))
    assert key != key_of(neuron, runtime._params(module.QIF(tau_m=0.03)), options)
    assert key != key_of(neuron, params, {**options, "dt": options["dt"] / 2})
    assert key != key_of(neuron, params, {**options, "points": options["points"] + 1})
    other = build_module(tmp_path / "b", SPEC.replace("voltage**2 + J - 1", "voltage**2 + J - 1.5"), name="qif")
    assert key != key_of(other.QIF(), runtime._params(other.QIF()), options)
    assert key != key_of(neuron, params, options, simulator=table_cache.__file__)  # another simulator


def test_module_from_a_temporary_file_shares_the_built_modules_tables(qif_module, tmp_path):
    # verify and plot import the compiled text from a temporary folder that is gone
    # when the table is keyed: the recorded source hash keys it as the built file
    from neurogen.build import compile_spec
    from neurogen.defaults import compiled_module, load_module

    built = load_module(qif_module, name="_qif_built")
    compiled = compile_spec(qif_module.parent.parent / "qif.toml")
    assert compiled.text == Path(qif_module).read_text()
    fresh = compiled_module(compiled)
    assert not Path(fresh.__file__).exists()

    def key_of(module):
        neuron = module.QIF()
        return table_cache.key(neuron, runtime._params(neuron), dict(module.QIF.rate_table_options), runtime.__file__)

    assert key_of(fresh) is not None
    assert key_of(fresh) == key_of(built)
    edited = tmp_path / "qif.py"  # other text, other tables
    edited.write_text(compiled.text.replace("((voltage**2 + J) - 1)", "((voltage**2 + J) - 1.5)"))
    assert edited.read_text() != compiled.text
    assert key_of(load_module(edited, name="_qif_edited")) != key_of(built)


def test_memory_cache_is_bounded(build_module, tmp_path, monkeypatch):
    module = build_module(tmp_path, SPEC, name="qif")
    monkeypatch.setattr(runtime, "MEMORY_TABLES", 2)
    monkeypatch.setattr(runtime, "_CACHE", type(runtime._CACHE)())
    tables = [module.QIF(tau_m=t).rate_table() for t in (0.01, 0.02, 0.03)]
    assert len(runtime._CACHE) == 2
    assert module.QIF(tau_m=0.03).rate_table() is tables[2]  # recent: kept in memory


def test_gain_bias_refuses_unreachable_rates(build_module, tmp_path):
    module = build_module(tmp_path, SPEC, name="qif")
    neuron = module.QIF()
    table = neuron.rate_table()
    limit = table.max_rate
    assert np.isfinite(limit) and limit > np.max(table.values) * 0.99
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (divide by zero) either
        gain, bias = neuron.gain_bias(np.array([0.5, 0.9]) * limit, np.array([-0.5, 0.5]))
        rates = neuron.rates(np.array([1.0]), gain, bias)
        max_rates, intercepts = neuron.max_rates_intercepts(gain, bias)
        with pytest.raises(ValidationError, match=f"max rates must be in \\(0, {limit:.6g}\\]"):
            neuron.gain_bias(np.array([1.01 * limit]), np.array([0.0]))
        with pytest.raises(ValidationError, match="max_rates"):
            neuron.gain_bias(np.array([0.0]), np.array([0.0]))
    assert np.allclose(rates[0], [0.5 * limit, 0.9 * limit], rtol=1e-6)
    assert np.allclose(max_rates, [0.5 * limit, 0.9 * limit]) and np.allclose(intercepts, [-0.5, 0.5])


def test_gain_bias_of_a_silent_table_raises(build_module, tmp_path):
    # decays towards -1 - J**2 at every current: never reaches the spike threshold
    silent = SPEC.replace("voltage**2 + J - 1", "-voltage - 1 - J**2")
    neuron = build_module(tmp_path, silent, name="silent").QIF()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.warns(NeurogenWarning, match="never fires"):
            neuron.rate_table()
        with pytest.raises(ValidationError, match=r"\(0, 0\]"):
            neuron.gain_bias(np.array([10.0]), np.array([0.0]))
