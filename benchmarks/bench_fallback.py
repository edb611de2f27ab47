"""Generated NengoDL builders vs NengoDL's NumPy fallback for nengo's own
AdaptiveLIF and Izhikevich, in one process.

Without neurogen, NengoDL 3.6 runs these types with ``GenericNeuronBuilder``: the
NumPy ``step`` once per minibatch item inside ``tf.numpy_function`` (and no
gradients).  ``import generated`` registers generated TensorFlow builders for the
same classes; this script times the fallback and the generated builder, with its
step fused by XLA (the default) and unfused (``GeneratedBuilder.fuse = False``), on
the same network.

    python benchmarks/bench_fallback.py [--quick]
"""

import argparse
import warnings

from common import alternate, device_report, fused, paired_ratio

import nengo  # noqa: E402
import nengo_dl  # noqa: E402
from nengo_dl.neuron_builders import SimNeuronsBuilder  # noqa: E402

import generated  # noqa: E402,F401 - registers the generated builders

TYPES = {"AdaptiveLIF": nengo.AdaptiveLIF, "Izhikevich": nengo.Izhikevich}


KINDS = ("fallback", "unfused", "fused")


def make_sim(cls, n, minibatch, fallback):
    """Constant input -> Ensemble(n) of ``cls``; with ``fallback`` the generated
    builder is unregistered while building, so NengoDL uses its NumPy fallback."""
    with nengo.Network(seed=0) as net:
        nengo_dl.configure_settings(keep_history=False, stateful=False)
        stim = nengo.Node([0.5])
        ens = nengo.Ensemble(n, 1, neuron_type=cls())
        nengo.Connection(stim, ens, synapse=None)
        nengo.Probe(ens.neurons)
    impl = SimNeuronsBuilder.TF_NEURON_IMPL
    builder = impl.pop(cls) if fallback else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sim = nengo_dl.Simulator(net, minibatch_size=minibatch, progress_bar=False)
    finally:
        if builder is not None:
            impl[cls] = builder
    fell_back = any("falling back" in str(w.message) for w in caught)
    assert fell_back == fallback, (cls, fallback)
    return sim


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="N = 1000, minibatch 64 only")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    cases = [(1000, 64)] if args.quick else [(1000, 64), (10000, 16)]
    print(device_report())
    print(f"{args.steps} steps per run, best of {args.repeats}; ratio = generated / fallback "
          "(paired: median of per-round ratios)\n")
    print(f"{'type':12} {'N':>6} {'mb':>4} {'fallback s':>11} {'unfused s':>10} {'fused s':>9} "
          f"{'unfused/fb':>11} {'paired':>7} {'fused/fb':>9} {'paired':>7}")
    for name, cls in TYPES.items():
        for n, mb in cases:
            sims = {}
            for kind in KINDS:
                fused(kind == "fused")
                sims[kind] = make_sim(cls, n, mb, kind == "fallback")
            fused(True)
            for sim in sims.values():
                sim.run_steps(args.steps)  # warm-up
            runs = {kind: (lambda s=sim: s.run_steps(args.steps)) for kind, sim in sims.items()}
            times = alternate(runs, args.repeats)
            best = {k: min(v) for k, v in times.items()}
            fb = best["fallback"]
            print(f"{name:12} {n:>6} {mb:>4} {fb:>11.3f} {best['unfused']:>10.4f} {best['fused']:>9.4f} "
                  f"{best['unfused'] / fb:>11.3f} {paired_ratio(times, 'unfused', 'fallback'):>7.3f} "
                  f"{best['fused'] / fb:>9.3f} {paired_ratio(times, 'fused', 'fallback'):>7.3f}", flush=True)
            for sim in sims.values():
                sim.close()


if __name__ == "__main__":
    main()
