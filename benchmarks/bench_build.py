"""Build times that the test suite no longer asserts (they depend on the machine).

* nengo ``Simulator`` build of an Ensemble of tabulated types with default
  ``max_rates``/``intercepts`` (nengo's own Izhikevich takes ~100 s for 1000 neurons:
  it simulates every neuron to find gains and biases), with a cold and a warm
  rate-table cache;
* ``neurogen build specs --force`` (every bundled spec compiled again; target < 20 s)
  and ``neurogen build specs`` when nothing changed (no SymPy, no TensorFlow import;
  target < 1 s), each a fresh process.

    python benchmarks/bench_build.py
"""

import resource
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


def child_cpu():
    """CPU seconds (user + system) of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build_times():
    """Seconds (wall, CPU) of ``neurogen build specs --force`` (whole command:
    interpreter start, imports, every spec; CPU time is what a loaded machine does
    not inflate), then of ``neurogen build specs`` over the up-to-date output
    (timed inside the process), each in a fresh process."""
    env = {"PYTHONPATH": str(REPO), "PATH": ""}
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(REPO / "specs", Path(tmp) / "specs")
        start, cpu = time.perf_counter(), child_cpu()
        subprocess.run([sys.executable, "-m", "neurogen", "build", "specs", "-o", "out", "-q", "--force"],
                       cwd=tmp, check=True, env=env)
        forced = time.perf_counter() - start, child_cpu() - cpu
        code = (
            "import sys, time; t = time.perf_counter();"
            "from neurogen.cli import main; rc = main(['build', 'specs', '-o', 'out', '-q']);"
            "print(time.perf_counter() - t)"
        )
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp, capture_output=True, text=True, check=True,
                             env=env)
        return forced, float(out.stdout.split()[-1])


def main():
    import generated

    print(common.device_report())

    for make, n in [(generated.izhikevich.Izhikevich, 1000), (generated.adaptive_lif.AdaptiveLIF, 10000)]:
        cold = ensemble_build(make(), n)
        warm = ensemble_build(make(), n)
        print(f"Ensemble({n}) of {make.__name__}: {cold:.2f} s (cold table cache), {warm:.2f} s (warm)")
    forced, unchanged = build_times()
    n_specs = len(list((REPO / "specs").glob("*.toml")))
    print(f"neurogen build specs --force ({n_specs} specs): {forced[0]:.2f} s wall, {forced[1]:.2f} s CPU")
    print(f"neurogen build specs, nothing changed: {unchanged:.2f} s")


if __name__ == "__main__":
    main()
