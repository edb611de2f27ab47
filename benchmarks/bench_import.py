"""Start-up costs: importing generated modules after ``import nengo``, and
``neurogen check`` per spec.

    python benchmarks/bench_import.py                     # import lif + adaptive_lif, 5 runs
    python benchmarks/bench_import.py --specs qif izhikevich --runs 10
    python benchmarks/bench_import.py --check             # also `neurogen check` per bundled spec

Each measurement runs in a fresh interpreter.  The modules are built from
``specs/`` into a temporary package first (a user's project: ``generated/``'s
``__init__`` imports every bundled module, nengo_extras ones included).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

IMPORT = """
import sys, time
import nengo
start = time.perf_counter()
{imports}
elapsed = time.perf_counter() - start
print(elapsed, "tensorflow" in sys.modules, "nengo_dl" in sys.modules)
"""


def env(extra_path):
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(extra_path)])}
    environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return environ


def bench_import(specs, runs):
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(REPO / "specs" / f"{name}.toml") for name in specs]
        subprocess.run([sys.executable, "-m", "neurogen", "build", *paths, "-o", f"{tmp}/mypkg", "-q"],
                       check=True, env=env(tmp), cwd=tmp)
        code = IMPORT.format(imports="\n".join(f"import mypkg.{name}" for name in specs))
        times, flags = [], set()
        for _ in range(runs):
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True, env=env(tmp), cwd=tmp)
            elapsed, tf, dl = out.stdout.split()
            times.append(float(elapsed))
            flags.add((tf, dl, out.stderr.strip() == ""))
    (tf, dl, quiet), = flags
    print(f"import {' + '.join(specs)} after `import nengo`: best {min(times):.3f} s, "
          f"median {statistics.median(times):.3f} s over {runs} runs; tensorflow imported: {tf}, "
          f"nengo_dl imported: {dl}, nothing printed: {quiet}")


def bench_check(runs):
    print("| spec | `neurogen check` s (best of %d) |\n|---|---:|" % runs)
    for spec in sorted((REPO / "specs").glob("*.toml")):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "neurogen", "check", "-q", str(spec)], check=True,
                           env=env(REPO), cwd=REPO, capture_output=True)
            times.append(time.perf_counter() - start)
        print(f"| {spec.stem} | {min(times):.2f} |", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--specs", nargs="+", default=["lif", "adaptive_lif"])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--check", action="store_true", help="also time `neurogen check` per bundled spec")
    p.add_argument("--check-runs", type=int, default=3)
    args = p.parse_args()
    bench_import(args.specs, args.runs)
    if args.check:
        bench_check(args.check_runs)


if __name__ == "__main__":
    main()
