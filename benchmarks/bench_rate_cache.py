"""Cold vs cached build of an Ensemble whose neuron type has a tabulated rate.

    python benchmarks/bench_rate_cache.py                    # every bundled spec with a table
    python benchmarks/bench_rate_cache.py --specs adex --neurons 500

For each spec, two fresh interpreters build the same ``nengo.Simulator`` (one
Ensemble of the generated type; building it calls ``gain_bias``, which needs the
rate table) with the same empty cache directory: the first simulates the table and
stores it, the second reads it.  Prints the Simulator build time of each.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BUILD = """
import importlib, time
import nengo
import neurogen.runtime as runtime
calls = []
simulate = runtime.simulate_rates
runtime.simulate_rates = lambda *a, **k: calls.append(1) or simulate(*a, **k)
module = importlib.import_module("mypkg.{spec}")
with nengo.Network(seed=0) as net:
    nengo.Ensemble({neurons}, 1, neuron_type=module.NEURON_TYPE())
start = time.perf_counter()
with nengo.Simulator(net, progress_bar=False):
    pass
print(time.perf_counter() - start, len(calls))
"""


def tabulated_specs():
    return sorted(p.stem for p in (REPO / "specs").glob("*.toml") if "table =" in p.read_text())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--specs", nargs="+", default=None, help="default: every bundled spec with a [rate] table")
    p.add_argument("--neurons", type=int, default=100)
    args = p.parse_args()
    specs = args.specs or tabulated_specs()
    print("| spec | cold s | simulate_rates calls | cached s | calls |\n|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), tmp]), "TF_CPP_MIN_LOG_LEVEL": "2"}
        env.pop("NEUROGEN_NO_CACHE", None)
        paths = [str(REPO / "specs" / f"{s}.toml") for s in specs]
        subprocess.run([sys.executable, "-m", "neurogen", "build", *paths, "-o", f"{tmp}/mypkg", "-q"],
                       check=True, env=env, cwd=tmp)
        for spec in specs:
            env["NEUROGEN_CACHE_DIR"] = tempfile.mkdtemp(dir=tmp)  # empty: a cold start
            row = []
            for _ in ("cold", "cached"):
                out = subprocess.run([sys.executable, "-c", BUILD.format(spec=spec, neurons=args.neurons)],
                                     capture_output=True, text=True, check=True, env=env, cwd=tmp)
                seconds, calls = out.stdout.split()
                row += [f"{float(seconds):.2f}", calls]
            print(f"| {spec} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
