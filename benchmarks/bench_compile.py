"""Compile time of coupled linear systems of 2 to 6 states (method ``exact``).

Run from the repository root::

    python benchmarks/bench_compile.py            # 2, 4, 6 states; best of 3
    python benchmarks/bench_compile.py --sizes 2 3 4 5 6 --repeats 5

Each system is a spiking neuron whose membrane ``x0`` is driven by a chain of
linear filters ``x1 ... x(k-1)`` that also read ``x0`` (so the whole chain is one
coupled group) with distinct time constants.  The time is that of
``neurogen.build.compile_spec`` (parse, model, discretize, rates, render), in
one process after a warm-up compilation (so imports are not counted).  The
propagator is evaluated numerically at run time (``neurogen.propagators``), so
compile time no longer grows with the symbolic matrix exponential.
"""

import argparse
import tempfile
import textwrap
from pathlib import Path

from common import timed

from neurogen.build import compile_spec


def chain_spec(k):
    names = [f"x{i}" for i in range(k)]
    params = "\n".join(f"tau{i} = {0.01 * (i + 1)}" for i in range(k))
    lines = ["dx0/dt = (J - x0 + " + " + ".join(names[1:]) + ") / tau0 : exact"]
    lines += [f"d{b}/dt = ({a} - {b}) / tau{i + 1} + 0.1 * x0 : exact" for i, (a, b) in enumerate(zip(names, names[1:]))]
    states = "\n".join(f"{x} = 0" for x in names)
    return textwrap.dedent(
        """\
        [neuron]
        name = "Chain{k}"

        [parameters]
        {params}
        tau_ref = 0.002

        [state]
        {states}
        rt = 0

        [dynamics]
        equations = \"\"\"
        {equations}
        \"\"\"

        [spike]
        condition = "x0 > 1"
        reset = ["x0 = 0"]
        refractory = {{ period = "tau_ref", state = "rt" }}
        """
    ).format(k=k, params=params.replace("\n", "\n        "), states=states.replace("\n", "\n        "),
             equations="\n        ".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 4, 6])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for k in [2] + args.sizes:
            paths[k] = Path(tmp) / f"chain{k}.toml"
            paths[k].write_text(chain_spec(k))
        compile_spec(paths[2])  # warm-up: imports
        print("| states | compile s (best) |")
        print("|---:|---:|")
        for k in args.sizes:
            best = min(timed(lambda: compile_spec(paths[k])) for _ in range(args.repeats))
            print(f"| {k} | {best:.3f} |")


if __name__ == "__main__":
    main()
