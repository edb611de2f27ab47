"""Build times that the test suite no longer asserts (they depend on the machine).

* nengo ``Simulator`` build of an Ensemble of tabulated types with default
  ``max_rates``/``intercepts`` (nengo's own Izhikevich takes ~100 s for 1000 neurons:
  it simulates every neuron to find gains and biases), with a cold and a warm
  rate-table cache;
* ``neurogen build specs`` when nothing changed (no SymPy, no TensorFlow import).

    python benchmarks/bench_build.py
"""

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401 - sys.path and warning filters

REPO = Path(__file__).resolve().parents[1]


def ensemble_build(neuron_type, n):
    import nengo

    with nengo.Network(seed=0) as net:
        nengo.Ensemble(n, 1, neuron_type=neuron_type)
    start = time.perf_counter()
    with nengo.Simulator(net, progress_bar=False):
        return time.perf_counter() - start


def unchanged_rebuild():
    """Seconds of ``neurogen build specs`` over an up-to-date output, in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(REPO / "specs", Path(tmp) / "specs")
        env_cmd = [sys.executable, "-m", "neurogen", "build", "specs", "-o", "out", "-q"]
        subprocess.run(env_cmd, cwd=tmp, check=True, env={"PYTHONPATH": str(REPO), "PATH": ""})
        code = (
            "import sys, time; t = time.perf_counter();"
            "from neurogen.cli import main; rc = main(['build', 'specs', '-o', 'out', '-q']);"
            "print(time.perf_counter() - t)"
        )
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp, capture_output=True, text=True, check=True,
                             env={"PYTHONPATH": str(REPO), "PATH": ""})
        return float(out.stdout.split()[-1])


def main():
    import generated

    for make, n in [(generated.izhikevich.Izhikevich, 1000), (generated.adaptive_lif.AdaptiveLIF, 10000)]:
        cold = ensemble_build(make(), n)
        warm = ensemble_build(make(), n)
        print(f"Ensemble({n}) of {make.__name__}: {cold:.2f} s (cold table cache), {warm:.2f} s (warm)")
    print(f"neurogen build specs, nothing changed: {unchanged_rebuild():.2f} s")


if __name__ == "__main__":
    main()
