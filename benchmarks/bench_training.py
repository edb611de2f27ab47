"""Training-step throughput: generated AdaptiveLIF vs NengoDL's native LIF, in the
same network and one process.

Both train with ``sim.fit`` in NengoDL's rate mode (the spiking type's
differentiable ``training_step``); the generated AdaptiveLIF's rate is its
adaptation-aware tabulated f-I curve, interpolated in TensorFlow.  Also times
the generated LIF (closed-form rate derived by SymPy) and AdaptiveLIF in surrogate
(BPTT) mode for reference.  "unfused" rows build the generated builder with
``GeneratedBuilder.fuse = False`` (no XLA), the others with its default.

    python benchmarks/bench_training.py [--quick]
"""

import argparse

from common import alternate, device_report, fused, paired_ratio

import nengo  # noqa: E402
import nengo_dl  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import generated  # noqa: E402,F401

KINDS = {
    "native LIF": lambda: nengo.LIF(),
    "generated LIF": lambda: generated.lif.LIF(),
    "generated AdaptiveLIF": lambda: generated.adaptive_lif.AdaptiveLIF(),
    "gen. AdaptiveLIF unfused": lambda: generated.adaptive_lif.AdaptiveLIF(),
}


def make_sim(neuron_type, n, minibatch, steps=1, fuse=True):
    fused(fuse)
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.zeros(16))
        ens = nengo.Ensemble(n, 16, neuron_type=neuron_type)
        out = nengo.Node(size_in=4)
        nengo.Connection(inp, ens)
        nengo.Connection(ens, out, transform=nengo.dists.Uniform(-1e-3, 1e-3), synapse=None)
        probe = nengo.Probe(out)
    sim = nengo_dl.Simulator(net, minibatch_size=minibatch, progress_bar=False)
    fused(True)
    sim.compile(optimizer=tf.optimizers.SGD(1e-3), loss="mse")
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, (minibatch * 32, steps, 16))
    y = rng.uniform(-1, 1, (minibatch * 32, steps, 4))
    return sim, {inp: x}, {probe: y}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="N = 1000 only")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--surrogate", action="store_true", help="also time AdaptiveLIF in surrogate mode (10 steps)")
    args = p.parse_args(argv)
    sizes = [1000] if args.quick else [1000, 5000]
    minibatch = 32
    kinds = dict(KINDS)
    print(device_report())
    print(f"sim.fit, 1 epoch = 32 minibatches of {minibatch}, best of {args.repeats}; ratio = time / native LIF\n")
    print(f"{'neuron type':26} {'N':>6} {'s/epoch':>9} {'ratio':>7} {'paired':>7}")
    for n in sizes:
        sims = {k: make_sim(f(), n, minibatch, fuse="unfused" not in k) for k, f in kinds.items()}
        for sim, x, y in sims.values():
            sim.fit(x, y, epochs=1, verbose=0)  # warm-up: traces the training graph
        runs = {k: (lambda s=s, x=x, y=y: s.fit(x, y, epochs=1, verbose=0)) for k, (s, x, y) in sims.items()}
        times = alternate(runs, args.repeats)
        base = min(times["native LIF"])
        for k in kinds:
            print(f"{k:26} {n:>6} {min(times[k]):>9.4f} {min(times[k]) / base:>7.2f} "
                  f"{paired_ratio(times, k, 'native LIF'):>7.2f}", flush=True)
        for sim, _, _ in sims.values():
            sim.close()
        if args.surrogate:
            sims = {fuse: make_sim(generated.adaptive_lif.AdaptiveLIF(training="surrogate"), n, minibatch,
                                   steps=10, fuse=fuse) for fuse in (True, False)}
            for sim, x, y in sims.values():
                sim.fit(x, y, epochs=1, verbose=0)
            times = alternate({f: (lambda s=s, x=x, y=y: s.fit(x, y, epochs=1, verbose=0))
                               for f, (s, x, y) in sims.items()}, args.repeats)
            for fuse in (True, False):
                label = "AdaptiveLIF surrogate x10" + ("" if fuse else " unfused")
                print(f"{label:26} {n:>6} {min(times[fuse]):>9.4f}   (10 steps per example)")
            print(f"  surrogate fused / unfused: paired {paired_ratio(times, True, False):.3f}")
            for sim, _, _ in sims.values():
                sim.close()


if __name__ == "__main__":
    main()
