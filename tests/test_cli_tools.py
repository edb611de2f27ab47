"""Issue 5: verify, plot, new, incremental builds and ``python -m neurogen``."""

import json
import shutil
import subprocess
import sys
import time

import pytest

from conftest import REPO
from neurogen.build import build
from neurogen.cli import main



def run(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "neurogen", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.slow
def test_verify_passes_for_every_bundled_spec():
    result = run("verify", "specs", "-q", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "PASS"
    assert len(report["specs"]) == len(list((REPO / "specs").glob("*.toml")))
    for spec in report["specs"]:
        assert spec["verdict"] == "PASS", spec
        assert all(c["status"] in ("PASS", "N/A") for c in spec["checks"]), spec


@pytest.mark.slow
@pytest.mark.parametrize(
    "spec, wrong, right",
    [
        ("lif", "voltage += (voltage - J)*np.expm1(-_delta_t/tau_rc)", "voltage += (voltage - J)*np.expm1(-1.1*_delta_t/tau_rc)"),
        ("izhikevich", "+ 140)", "+ 141)"),
    ],
    ids=["lif-time-constant", "izhikevich-constant"],
)
def test_verify_fails_for_a_wrong_module(tmp_path, spec, wrong, right):
    source = (REPO / "generated" / f"{spec}.py").read_text()
    assert wrong in source
    (tmp_path / f"{spec}.py").write_text(source.replace(wrong, right, 1))
    result = run("verify", f"specs/{spec}.toml", "--generated", str(tmp_path), "-q")
    assert result.returncode == 1, result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == "verify: FAIL (1 of 1 spec)", result.stdout
    assert any(line.startswith("  FAIL  ") for line in lines)
    assert "what to do:" in result.stdout


def test_plot_writes_a_panel_per_state_scale(tmp_path):
    import matplotlib.image
    import matplotlib.pyplot as plt

    figures = []
    out = tmp_path / "x.png"
    save = plt.Figure.savefig

    def spy(fig, *args, **kwargs):
        figures.append(fig)
        return save(fig, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plt.Figure, "savefig", spy)
        assert main(["plot", "specs/izhikevich.toml", "-o", str(out), "--currents", "0:20", "--duration", "0.2"]) == 0
    image = matplotlib.image.imread(out)
    assert image.shape[0] > 400 and image.shape[1] > 400
    (fig,) = figures
    fi, trace = fig.axes  # voltage (mV) and recovery share a scale: one trace panel
    assert fi.get_title().startswith("tuning curve") and fi.get_xlim() == (0, 20)
    assert [line.get_label() for line in fi.get_lines()] == ["simulated (0.5 s per current)", "rate approximation, rates()"]
    assert "spikes" in trace.get_title() and trace.get_ylabel() == "voltage, recovery"
    assert len(trace.get_lines()[0].get_xdata()) == 200  # 0.2 s at the model's 1 ms
    assert "euler: voltage, recovery; dt = 0.001 s" in fig._suptitle.get_text()


def test_new_spec_builds_as_is(tmp_path):
    result = run("new", "MyNeuron", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    spec = tmp_path / "specs" / "my_neuron.toml"
    assert spec.exists() and "[dynamics]" in spec.read_text()
    result = run("build", "specs/my_neuron.toml", "-o", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "my_neuron.py").exists()
    assert run("new", "MyNeuron", cwd=tmp_path).returncode == 2  # no silent overwrite
    assert run("new", "not_a_class", cwd=tmp_path).returncode == 2


def test_second_build_does_no_symbolic_work(tmp_path, built_specs):
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    shutil.copytree(built_specs.out, tmp_path / "out")  # the session's build of specs/
    code = (
        "import sys;"
        "from neurogen.cli import main; rc = main(['build', 'specs', '-o', 'out']);"
        "print(rc, 'sympy' in sys.modules, 'tensorflow' in sys.modules)"
    )  # (how long it takes: benchmarks/bench_build.py)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    rc, sympy_loaded, tf_loaded = result.stdout.split()[-3:]
    assert rc == "0" and sympy_loaded == "False" and tf_loaded == "False", result.stdout
    assert result.stdout.count("unchanged") == len(list((tmp_path / "specs").glob("*.toml")))


def test_changing_one_spec_rebuilds_only_it(tmp_path):
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    out = tmp_path / "out"
    build([tmp_path / "specs"], out)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.py")}
    spec = tmp_path / "specs" / "sigmoid.toml"
    spec.write_text(spec.read_text().replace("value = 0.0025", "value = 0.003"))
    time.sleep(0.01)
    results = build([tmp_path / "specs"], out)
    assert [r.spec_path.name for r in results if r.status == "built"] == ["sigmoid.toml"]
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.py")}
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {"sigmoid.py", "__init__.py"}
    assert "tau_ref=0.003" in (out / "sigmoid.py").read_text()
    # --force rebuilds everything
    assert all(r.status == "built" for r in build([tmp_path / "specs"], out, force=True))


def test_python_dash_m_is_the_command():
    result = run("check", "specs/lif.toml")
    assert result.returncode == 0 and "ok" in result.stdout
    result = run("--help")
    assert result.returncode == 0
    for command in ("build", "check", "show", "verify", "plot", "new"):
        assert command in result.stdout


def test_show_prints_methods_and_update():
    result = run("show", "specs/adaptive_lif.toml")
    assert result.returncode == 0
    assert "method: exact" in result.stdout and "method: euler" in result.stdout
    assert "voltage <-" in result.stdout and "adaptation <-" in result.stdout


def test_check_warns_about_unstable_steps(tmp_path):
    spec = tmp_path / "stiff.toml"
    spec.write_text(
        '[neuron]\nname = "Stiff"\n[parameters]\ntau = { value = 0.0002, low = 0, low_open = true }\n'
        '[state]\nx = 0\n[dynamics]\nequations = "dx/dt = (J - x) / tau : euler"\n[output]\nexpression = "x"\n'
    )
    result = run("check", str(spec))
    assert result.returncode == 0
    assert "unstable for dt > 0.0004" in result.stderr
    assert "unstable" not in run("check", str(spec), "--dt", "0.0001").stderr
