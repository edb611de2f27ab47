"""Cost of sub-stepping in NengoDL: Hodgkin-Huxley (20 RK4 sub-steps per 1 ms step)
against the generated LIF, and the time per sub-step; unrolled vs ``tf.while_loop``.

Run from the repository root (after ``neurogen build``)::

    python benchmarks/bench_substeps.py            # N = 1000, 200 steps, 3 repeats
    python benchmarks/bench_substeps.py --quick    # N = 100, 50 steps, 2 repeats

Each simulator (gain = 1, bias = 0, constant input currents across the firing
range; inference only, so no rate table is simulated) is built once and warmed up with one
``run_steps`` call; then ``run_steps(steps)`` is timed ``--repeats`` times,
alternating the kinds so that drift in machine load affects all alike.  Reported:
best time per simulator step, HH / LIF ratio (median of the per-round ratios) and
the HH time per sub-step, ``time / (steps * substeps)``, for the loop forms
``GeneratedBuilder.unroll_substeps`` chooses between.
"""

import argparse

from common import alternate, paired_ratio

import nengo  # noqa: E402
import nengo_dl  # noqa: E402
import numpy as np  # noqa: E402

import generated.hodgkin_huxley  # noqa: E402
import generated.lif  # noqa: E402
from neurogen.runtime import substep_count  # noqa: E402
from neurogen.tf_builder import GeneratedBuilder  # noqa: E402

HH = generated.hodgkin_huxley.HodgkinHuxley
MAX_STEP = 5e-5  # specs/hodgkin_huxley.toml


def make_sim(neuron_type, currents):
    n = len(currents)
    with nengo.Network(seed=0) as net:
        nengo_dl.configure_settings(keep_history=False, stateful=False, inference_only=True)
        stim = nengo.Node(currents)
        ens = nengo.Ensemble(n, 1, neuron_type=neuron_type, gain=np.ones(n), bias=np.zeros(n))
        nengo.Connection(stim, ens.neurons, synapse=None)
        nengo.Probe(ens.neurons)
    return nengo_dl.Simulator(net, progress_bar=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, steps, repeats = (100, 50, 2) if args.quick else (1000, 200, 3)
    substeps = substep_count(0.001, MAX_STEP)
    sims = {}
    for kind, unroll in [("hh while_loop", 1), ("hh unrolled", substeps)]:
        GeneratedBuilder.unroll_substeps = unroll  # read when the graph is built
        sims[kind] = make_sim(HH(), np.linspace(0, 50, n))
    sims["lif"] = make_sim(generated.lif.LIF(), np.linspace(0, 5, n))
    for sim in sims.values():
        sim.run_steps(steps)  # trace and compile
    times = alternate({k: (lambda s=s: s.run_steps(steps)) for k, s in sims.items()}, repeats)
    print(f"N = {n}, {steps} steps of 1 ms, HH with {substeps} sub-steps (RK4), {repeats} repeats")
    print(f"{'kind':15s} {'ms/step':>9s} {'x LIF':>7s} {'us/sub-step':>12s}")
    for kind, ts in times.items():
        per_step = min(ts) / steps
        ratio = paired_ratio(times, kind, "lif")
        sub = f"{per_step / substeps * 1e6:12.1f}" if kind.startswith("hh") else f"{'-':>12s}"
        print(f"{kind:15s} {per_step * 1e3:9.3f} {ratio:7.1f} {sub}")
    for sim in sims.values():
        sim.close()


if __name__ == "__main__":
    main()
