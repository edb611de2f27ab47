"""neurogen as a package: templates shipped as package data, a user's own specs
built into the user's own package, generated modules that import without
TensorFlow and register their NengoDL builders lazily, a fast ``check``."""

import importlib.resources
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from neurogen import cache
from neurogen.build import build
from neurogen.cli import main

REPO = Path(__file__).resolve().parent.parent
# lif binds nengo.LIF and also nengo_extras' NumbaLIF; adaptive_lif binds a class
# that NengoDL has no builder for
USER_SPECS = ("lif", "adaptive_lif")


@pytest.fixture(scope="module")
def user_project(tmp_path_factory):
    """A user's folder with a package built from two bundled specs."""
    root = tmp_path_factory.mktemp("project")
    results = build([REPO / "specs" / f"{name}.toml" for name in USER_SPECS], root / "mypkg", force=True)
    assert [r.status for r in results] == ["built"] * len(USER_SPECS)
    return root


def run_python(code, cwd, **env):
    """Run ``code`` in a fresh interpreter (neurogen from this checkout); its stdout
    and stderr."""
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(cwd)]), **env}
    full_env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=full_env,
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout, out.stderr


def test_importing_generated_modules_imports_no_tensorflow(user_project):
    stdout, stderr = run_python(
        """
        import sys
        import nengo
        import mypkg.lif, mypkg.adaptive_lif
        import numpy as np
        with nengo.Network() as net:
            a = nengo.Ensemble(5, 1, neuron_type=mypkg.lif.LIF())
            b = nengo.Ensemble(5, 1, neuron_type=mypkg.adaptive_lif.AdaptiveLIF())
        with nengo.Simulator(net, progress_bar=False) as sim:
            sim.run_steps(5)
        print(sorted(m for m in ("tensorflow", "nengo_dl", "nengo_extras") if m in sys.modules))
        """,
        user_project,
    )
    assert stdout.strip() == "[]"
    assert stderr == ""  # no TensorFlow logs, no NengoDL notice


ORDER_CHECK = """
import warnings
import nengo
{first}
import nengo_dl
from nengo_dl.neuron_builders import SimNeuronsBuilder, LIFBuilder
{second}
impl = SimNeuronsBuilder.TF_NEURON_IMPL
for mod in (mypkg.lif, mypkg.adaptive_lif):
    builder = impl[mod.NEURON_TYPE]
    assert builder is mod.BUILDER and builder.__module__ == mod.__name__, builder
assert impl[nengo.AdaptiveLIF] is mypkg.adaptive_lif.BUILDER  # no native builder: ours
assert impl[nengo.LIF] is LIFBuilder  # native builder kept (registration rule)
with nengo.Network(seed=0) as net:
    stim = nengo.Node(0.5)
    for neuron_type in (mypkg.lif.LIF(), mypkg.adaptive_lif.AdaptiveLIF(), nengo.AdaptiveLIF()):
        ens = nengo.Ensemble(4, 1, neuron_type=neuron_type)
        nengo.Connection(stim, ens)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with nengo_dl.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(5)
falling_back = [str(w.message) for w in caught if "falling back" in str(w.message)]
assert not falling_back, falling_back
print("ok")
"""


@pytest.mark.parametrize(
    "first, second",
    [
        ("import mypkg.lif, mypkg.adaptive_lif", ""),  # generated first: registered on import of nengo_dl
        ("", "import mypkg.lif, mypkg.adaptive_lif"),  # nengo_dl first: registered on import
        ("import mypkg.lif", "import mypkg.adaptive_lif"),
    ],
    ids=["generated-first", "nengo_dl-first", "mixed"],
)
def test_builders_registered_in_any_import_order(user_project, first, second):
    stdout, _ = run_python(ORDER_CHECK.format(first=first, second=second), user_project)
    assert stdout.strip().endswith("ok")


def test_builder_attribute_imports_nengo_dl_quietly_and_registers_all(user_project):
    stdout, stderr = run_python(
        """
        import sys, warnings
        warnings.simplefilter("always")
        import nengo
        import mypkg.lif, mypkg.adaptive_lif
        assert "nengo_dl" not in sys.modules
        builder = mypkg.lif.BUILDER  # an explicit request: imports NengoDL
        from nengo_dl.neuron_builders import SimNeuronsBuilder
        impl = SimNeuronsBuilder.TF_NEURON_IMPL
        assert impl[mypkg.lif.LIF] is builder
        assert impl[mypkg.adaptive_lif.AdaptiveLIF] is mypkg.adaptive_lif.BUILDER
        warnings.warn("a warning of the user's own")
        print("ok")
        """,
        user_project,
    )
    assert stdout.strip() == "ok"
    assert "not been tested" not in stderr  # (NengoDL itself lowers TF's log level to 1)
    assert "a warning of the user's own" in stderr  # never hidden


def test_reloaded_module_registers_its_new_builder(user_project):
    stdout, _ = run_python(
        """
        import importlib
        import mypkg.adaptive_lif as module
        old_type, old_builder = module.AdaptiveLIF, module.BUILDER
        module = importlib.reload(module)
        from nengo_dl.neuron_builders import SimNeuronsBuilder
        impl = SimNeuronsBuilder.TF_NEURON_IMPL
        assert module.AdaptiveLIF is not old_type and module.BUILDER is not old_builder
        assert impl[module.AdaptiveLIF] is module.BUILDER
        assert module.BUILDER.neuron_type is module.AdaptiveLIF
        print("ok")
        """,
        user_project,
    )
    assert stdout.strip() == "ok"


def test_user_package_imports_every_module(user_project):
    init = (user_project / "mypkg" / "__init__.py").read_text()
    for name in USER_SPECS:
        assert f"from . import {name}\n" in init


def test_templates_are_read_as_package_data():
    names = cache.template_names()
    assert {"module.py.j2", "builder.py.j2", "neuron_type.py.j2"} <= set(names)
    if cache.template_folder() == REPO / "templates":  # a source checkout reads its own
        installed = REPO / "templates"  # (even where another checkout is installed)
    else:
        installed = importlib.resources.files("neurogen.templates")
    for name in names:
        assert cache.read_template(name) == installed.joinpath(name).read_text(encoding="utf-8")


def test_pyproject_ships_the_templates():
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "neurogen.templates" in config["packages"]
    assert config["package-dir"]["neurogen.templates"] == "templates"
    assert "*.j2" in config["package-data"]["neurogen.templates"]
    assert (REPO / "templates" / "__init__.py").exists()  # a package, also for editable installs


@pytest.mark.parametrize(
    "name, expected",
    [("CubaLIF", "cuba_lif"), ("HHNeuron", "hh_neuron"), ("MyNeuron", "my_neuron"), ("LIF", "lif"),
     ("AdaptiveLIFRate", "adaptive_lif_rate"), ("Izhikevich2", "izhikevich2")],
)
def test_new_names_the_file_in_snake_case(tmp_path, monkeypatch, name, expected):
    monkeypatch.chdir(tmp_path)
    assert main(["new", name]) == 0
    assert [p.name for p in (tmp_path / "specs").iterdir()] == [f"{expected}.toml"]


def test_check_neither_prints_code_nor_tabulates(tmp_path, monkeypatch, capsys):
    import neurogen.codegen
    import neurogen.runtime

    def forbidden(*args, **kwargs):
        raise AssertionError("check must not do this")

    monkeypatch.setattr(neurogen.codegen, "render", forbidden)
    monkeypatch.setattr(neurogen.runtime, "simulate_rates", forbidden)
    monkeypatch.setattr("neurogen.rates.derive_rate", forbidden)
    assert main(["check", str(REPO / "specs" / "qif.toml"), str(REPO / "specs" / "izhikevich.toml")]) == 0
    assert "ok" in capsys.readouterr().out


def test_check_imports_no_tensorflow(tmp_path):
    stdout, stderr = run_python(
        f"""
        import sys
        from neurogen.cli import main
        specs = [{str(REPO / "specs" / "lif.toml")!r}, {str(REPO / "specs" / "fast_lif.toml")!r}]
        assert main(["check", *specs]) == 0
        print(sorted(m for m in ("tensorflow", "nengo_dl") if m in sys.modules))
        import nengo_extras.neurons  # imported for real afterwards
        print(nengo_extras.reqs.HAS_NENGO_DL)
        """,
        tmp_path,
    )
    assert stdout.split("\n")[-3:-1] == ["[]", "True"], stdout


@pytest.mark.slow
def test_installed_wheel_builds_and_runs_a_spec_outside_the_repository(tmp_path):
    """pip wheel -> pip install --target -> build a spec from another folder -> run it."""
    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)],
                   check=True, timeout=600, cwd=tmp_path)
    (wheel,) = wheels.glob("neurogen-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    assert {f"neurogen/templates/{name}" for name in cache.template_names()} <= shipped
    subprocess.run(pip + ["install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=600)
    work.mkdir()
    (work / "specs").mkdir()
    (work / "specs" / "adaptive_lif.toml").write_text((REPO / "specs" / "adaptive_lif.toml").read_text())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    where = subprocess.run([sys.executable, "-c", "import neurogen; print(neurogen.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(site)
    built = subprocess.run([sys.executable, "-m", "neurogen", "build", "specs", "-o", "mypkg"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    code = textwrap.dedent(
        """
        import json, warnings
        import nengo, numpy as np
        from mypkg.adaptive_lif import AdaptiveLIF
        def net():
            with nengo.Network(seed=0) as net:
                ens = nengo.Ensemble(10, 1, neuron_type=AdaptiveLIF())
                nengo.Connection(nengo.Node(0.5), ens)
                probe = nengo.Probe(ens.neurons)
            return net, probe
        n, p = net()
        with nengo.Simulator(n, progress_bar=False) as sim:
            sim.run(0.2)
        import nengo_dl
        n, q = net()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with nengo_dl.Simulator(n, progress_bar=False) as dl:
                dl.run(0.2)
        print(json.dumps({
            "nengo_spikes": float(np.sum(sim.data[p] > 0)),
            "dl_spikes": float(np.sum(dl.data[q] > 0)),
            "fallback": [str(w.message) for w in caught if "falling back" in str(w.message)],
        }))
        """
    )
    ran = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True,
                         timeout=600)
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    assert result["fallback"] == []
    assert result["nengo_spikes"] > 0 and result["dl_spikes"] > 0
