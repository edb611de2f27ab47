"""Compare NengoDL's native LIF builder with neurogen's generated one.

Run from the repository root (after ``neurogen build``)::

    python benchmarks/bench_lif.py            # full run
    python benchmarks/bench_lif.py --quick    # reduced run (smaller sizes, fewer repeats)

For every (N, minibatch) pair it builds the same network twice, once with
``nengo.LIF`` (simulated by NengoDL's hand-written ``LIFBuilder``) and once with
``generated.lif.LIF`` (simulated by the builder that neurogen generated), with
identical parameters and seeds.  Each simulator is built once and warmed up with
one ``run_steps`` call (which traces and compiles the TensorFlow graph); then
``run_steps(steps)`` is timed ``--repeats`` times, alternating native and
generated so that drift in machine load affects both alike.  The table reports
the best (minimum) time of each, their ratio generated / native, and the median
of the per-round ratios (each round runs both simulators back to back, so this
is less sensitive to slow drift in machine load than the ratio of the bests).

``--step-only`` additionally times the two builders' ``step`` methods alone, in a
``tf.while_loop`` outside of NengoDL (no gathers, scatters or probes), and counts
the TensorFlow ops each step creates.
"""

import argparse
import time

from common import device_report, fused, set_cpu_threads, paired_ratio as _paired, timed

import nengo  # noqa: E402
import nengo_dl  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from nengo_dl import neuron_builders  # noqa: E402
from nengo_dl.neuron_builders import SimNeuronsBuilder  # noqa: E402

import generated.lif  # noqa: E402  (registers the generated builder)

PARAMS = dict(tau_rc=0.02, tau_ref=0.002, min_voltage=0, amplitude=1)
KINDS = {"native": nengo.LIF, "generated": generated.lif.LIF, "unfused": generated.lif.LIF}


def check_registration():
    impl = SimNeuronsBuilder.TF_NEURON_IMPL
    assert impl[nengo.LIF] is neuron_builders.LIFBuilder, impl[nengo.LIF]
    assert impl[generated.lif.LIF] is generated.lif.BUILDER, impl[generated.lif.LIF]


def make_sim(kind, n, minibatch, seed=0):
    """Constant input -> Ensemble(n, 1) of LIF neurons; probe keeps the last step only.
    ``"generated"`` fuses its step with XLA (the default), ``"unfused"`` does not."""
    fused(kind != "unfused")
    with nengo.Network(seed=seed) as net:
        nengo_dl.configure_settings(keep_history=False, stateful=False)
        stim = nengo.Node([0.5])
        ens = nengo.Ensemble(n, 1, neuron_type=KINDS[kind](**PARAMS))
        nengo.Connection(stim, ens, synapse=None)
        probe = nengo.Probe(ens.neurons)
    sim = nengo_dl.Simulator(net, minibatch_size=minibatch, progress_bar=False)
    fused(True)
    return sim, probe


def time_run(sim, steps):
    return timed(lambda: sim.run_steps(steps))


def bench_sims(n, minibatch, steps, repeats):
    sims, times = {}, {k: [] for k in KINDS}
    for kind in KINDS:
        sims[kind] = make_sim(kind, n, minibatch)
        time_run(sims[kind][0], steps)  # warm-up: traces and compiles the graph
    # both must simulate the same thing
    spikes = {k: sims[k][0].data[sims[k][1]][:, -1].sum() for k in KINDS}
    order = list(KINDS)
    for i in range(repeats):
        for kind in order if i % 2 == 0 else order[::-1]:
            times[kind].append(time_run(sims[kind][0], steps))
    for sim, _ in sims.values():
        sim.close()
    return times, spikes


# --- step-only micro-benchmark ------------------------------------------------


def _builders(n, minibatch, dtype=tf.float32):
    """Builder instances with the attributes their ``step`` reads, without NengoDL."""
    const = lambda v: tf.constant(v, dtype)  # noqa: E731
    native = object.__new__(neuron_builders.LIFBuilder)
    native.tau_rc, native.tau_ref = const(PARAMS["tau_rc"]), const(PARAMS["tau_ref"])
    native.min_voltage = const(PARAMS["min_voltage"])
    native.amplitude, native.alpha = None, 1 / const(0.001)
    native.zero, native.one = const(0), const(1)
    native.zeros = tf.zeros((minibatch, n), dtype)
    gen = object.__new__(generated.lif.BUILDER)
    gen.params = {k: const(v) for k, v in PARAMS.items()}
    # what the generated build_pre sets for inference (plain spikes, no smoothing)
    gen.dtype, gen.training, gen.smoothing = dtype, "rate", None
    return {"native": native, "generated": gen}


def step_loop(builder, n, minibatch, steps):
    dt = tf.constant(0.001, tf.float32)
    rng = np.random.RandomState(0)
    J0 = tf.constant(rng.uniform(0, 5, (minibatch, n)), tf.float32)
    v0 = tf.constant(rng.uniform(0, 1, (minibatch, n)), tf.float32)

    # autograph=False: the steps have no Python control flow on tensors, and
    # autograph would re-read their source from disk (wrong if it changed since import)
    @tf.function(autograph=False)
    def run():
        def body(i, out, v, r):
            out, v, r = builder.step(J0, dt, v, r)
            return i + 1, out, v, r

        return tf.while_loop(
            lambda i, *_: i < steps, body, (0, tf.zeros_like(v0), v0, tf.zeros_like(v0))
        )

    @tf.function(autograph=False)
    def one_step(J, v, r):
        return builder.step(J, dt, v, r)

    graph = one_step.get_concrete_function(J0, v0, v0).graph
    n_ops = sum(1 for op in graph.get_operations() if op.type not in ("Placeholder", "Identity"))
    return run, n_ops


def bench_steps(n, minibatch, steps, repeats):
    runs, ops, times = {}, {}, {k: [] for k in ("native", "generated")}
    for kind, builder in _builders(n, minibatch).items():
        runs[kind], ops[kind] = step_loop(builder, n, minibatch, steps)
        runs[kind]()  # trace
    for i in range(repeats):
        for kind in list(times) if i % 2 == 0 else list(times)[::-1]:
            start = time.perf_counter()
            runs[kind]()[1].numpy()
            times[kind].append(time.perf_counter() - start)
    return times, ops


def paired_ratio(times):
    """Median over rounds of generated / native (each round ran both back to back)."""
    return _paired(times, "generated", "native")


def row(n, mb, times):
    nat, gen = min(times["native"]), min(times["generated"])
    line = f"{n:>6} {mb:>5} {nat:>10.4f} {gen:>10.4f} {gen / nat:>8.3f} {paired_ratio(times):>8.3f}"
    if "unfused" in times:
        unf = min(times["unfused"])
        line += f" {unf:>10.4f} {unf / nat:>8.3f} {_paired(times, 'unfused', 'native'):>8.3f}"
    return line


HEADER = f"{'N':>6} {'mb':>5} {'native s':>10} {'gen. s':>10} {'ratio':>8} {'paired':>8}"
UNFUSED = f" {'unfused s':>10} {'ratio':>8} {'paired':>8}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="N=1000 only, fewer repeats")
    p.add_argument("--steps", type=int, default=200, help="steps per timed run (default 200)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per simulator (default 10, quick 4)")
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="numbers of neurons (default 1000 10000)")
    p.add_argument("--minibatches", type=int, nargs="+", default=[1, 64], help="minibatch sizes (default 1 64)")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads (default: TF's choice)")
    p.add_argument("--step-only", action="store_true", help="also time the bare step functions")
    args = p.parse_args(argv)
    sizes = args.sizes or ([1000] if args.quick else [1000, 10000])
    repeats = args.repeats or (4 if args.quick else 10)

    set_cpu_threads(args.threads)  # (CPU only)
    check_registration()
    print(device_report())
    print(f"nengo {nengo.__version__}, nengo-dl {nengo_dl.__version__}; gen. = generated, fused "
          "(XLA); unfused = generated with GeneratedBuilder.fuse = False")
    print(f"{args.steps} steps per run, {repeats} timed runs each; times are the best (min) run;\n"
          "ratio = best generated / best native; paired = median of per-round ratios\n")
    print("NengoDL simulator, sim.run_steps")
    print(HEADER + UNFUSED)
    for n in sizes:
        for mb in args.minibatches:
            times, spikes = bench_sims(n, mb, args.steps, repeats)
            if spikes["native"] != spikes["generated"]:
                print(f"  warning: last-step spike counts differ: {spikes}")
            print(row(n, mb, times), flush=True)

    if args.step_only:
        print("\nbare step() in a tf.while_loop (no NengoDL)")
        print(HEADER + "  ops nat/gen")
        for n in sizes:
            for mb in args.minibatches:
                times, ops = bench_steps(n, mb, args.steps, repeats)
                print(row(n, mb, times) + f"  {ops['native']:>3}/{ops['generated']}", flush=True)


if __name__ == "__main__":
    main()
