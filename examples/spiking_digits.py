"""Spiking digit classification with generated neuron types (NengoDL's spiking-MNIST recipe).

A 64-256-10 network (keras Dense -> spiking neurons -> keras Dense) is built with
``nengo_dl.Layer`` for several neuron types compiled by neurogen from ``specs/``:

* ``training="rate"`` (LIF, AdaptiveLIF, Izhikevich, ALIFThreshold): ``sim.fit`` sees
  single-timestep inputs and the neurons' differentiable steady-state rate (closed
  form for LIF, the interpolated simulated f-I curve for the others);
* ``training="surrogate"`` (LIF): the network is unrolled over a few timesteps while
  training, spikes and states evolve, and the spike's derivative is a surrogate (BPTT).

Every network is then run with spiking neurons: each test image is presented for
``--steps`` timesteps (dt = 1 ms) and classified from the lowpass-filtered output at
the last step.  The script prints a table (rate / spiking accuracy, train time, mean
firing rate) and plots spiking accuracy against presentation time (``--plot``).

Data: scikit-learn's bundled 8x8 digits (offline), or ``--mnist PATH.npz`` with keys
x_train, y_train, x_test, y_test.  Seeds are fixed (NumPy, TensorFlow, nengo).

With ``--trainable tau_rc`` (any parameter names, comma-separated) it compares, in
surrogate training, LIF and AdaptiveLIF with fixed parameters against the same types
with those parameters trained per neuron by ``sim.fit`` (``trainable=...``), and
prints the learned values' range (``neurogen.learned_parameters``).

    python examples/spiking_digits.py [--quick] [--epochs N] [--steps N] [--plot PATH]
                                      [--trainable NAME[,NAME...]]
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quiet TensorFlow's C++ logging
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", message="(This version of NengoDL|No GPU support)")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nengo  # noqa: E402
import nengo_dl  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import generated  # noqa: E402, F401  (registers the NengoDL builders)
import neurogen  # noqa: E402
from generated.adaptive_lif import AdaptiveLIF  # noqa: E402
from generated.alif_threshold import ALIFThreshold  # noqa: E402
from generated.izhikevich import Izhikevich  # noqa: E402
from generated.lif import LIF  # noqa: E402

SEED = 0
LR = 3e-3
MINIBATCH = 40
N_HIDDEN = 256
SYNAPSE = 0.01  # lowpass on the output probe used for spiking classification (s)
SURROGATE_STEPS = 15  # timesteps per training example in surrogate (BPTT) mode

# Izhikevich starts at rest (v = c = -65 mV, u = b v) rather than nengo's default
# voltage in [0, 1] mV, which makes every neuron fire at once at the start.
IZH_REST = {"voltage": nengo.dists.Choice([-65.0]), "recovery": nengo.dists.Choice([-13.0])}

#: (label, neuron type, max firing rate at x = 1 in Hz: sets gain/bias and output scale)
RUNS = [
    ("LIF", LIF(), 200),
    ("AdaptiveLIF", AdaptiveLIF(), 200),
    ("Izhikevich", Izhikevich(initial_state=IZH_REST), 100),  # RS neurons fire slower
    ("ALIFThreshold", ALIFThreshold(), 200),
    ("LIF", LIF(training="surrogate"), 400),  # few steps: more spikes per step
]


def trainable_runs(names):
    """Fixed vs trained parameters ``names``, surrogate training, LIF and AdaptiveLIF."""
    runs = []
    for label, cls in (("LIF", LIF), ("AdaptiveLIF", AdaptiveLIF)):
        runs.append((label, cls(training="surrogate"), 400))
        runs.append((label, cls(training="surrogate", trainable=names), 400))
    return runs


def load_data(mnist=None):
    """(x_train, y_train, x_test, y_test) with pixels in [0, 1], flattened."""
    if mnist:
        with np.load(mnist) as f:
            x_tr, y_tr, x_te, y_te = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
        x_tr, x_te = (a.reshape(len(a), -1).astype(np.float32) for a in (x_tr, x_te))
        scale = max(x_tr.max(), 1.0)
        x_tr, x_te = x_tr / scale, x_te / scale
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        order = np.random.RandomState(SEED).permutation(len(digits.target))
        x, y = digits.data[order].astype(np.float32) / 16, digits.target[order]
        x_tr, y_tr, x_te, y_te = x[360:], y[360:], x[:360], y[:360]
    return x_tr, y_tr.astype(np.int32).ravel(), x_te, y_te.astype(np.int32).ravel()


def trim(x, y, n=None):
    """The first ``n`` examples (all if None), cut to a multiple of the minibatch size."""
    n = len(x) if n is None else min(n, len(x))
    n -= n % MINIBATCH
    return x[:n], y[:n]


def build_network(neuron_type, max_rate, n_in):
    with nengo.Network(seed=SEED) as net:
        # gain and bias: neurons start firing at x = 0 and reach max_rate at x = 1
        net.config[nengo.Ensemble].max_rates = nengo.dists.Choice([max_rate])
        net.config[nengo.Ensemble].intercepts = nengo.dists.Choice([0])
        net.config[nengo.Connection].synapse = None
        nengo_dl.configure_settings(stateful=False)

        inp = nengo.Node(np.zeros(n_in))
        # seeded initializers: unseeded ones give different weights in every process
        init = tf.keras.initializers.GlorotUniform
        x = nengo_dl.Layer(tf.keras.layers.Dense(N_HIDDEN, kernel_initializer=init(SEED)))(inp)
        x = nengo_dl.Layer(neuron_type)(x)
        hidden = x.ensemble
        # dividing by max_rate brings the spike trains (1/dt per spike) to ~[0, 1]
        out = nengo_dl.Layer(tf.keras.layers.Dense(10, kernel_initializer=init(SEED + 1)))(
            x, transform=1 / max_rate
        )

        rate = nengo.Node(size_in=1)  # population mean of the neuron output (Hz)
        nengo.Connection(x, rate, transform=np.full((1, N_HIDDEN), 1 / N_HIDDEN))
        probes = dict(
            out=nengo.Probe(out), filtered=nengo.Probe(out, synapse=SYNAPSE), rate=nengo.Probe(rate)
        )
    return net, inp, probes, hidden


def last_step_loss(y_true, y_pred):
    """Cross-entropy of the (filtered) output at the last timestep."""
    return tf.keras.losses.sparse_categorical_crossentropy(
        y_true[:, -1], y_pred[:, -1], from_logits=True
    )


def tile(x, steps):
    return np.tile(x[:, None], (1, steps, 1))


def run(label, neuron_type, max_rate, data, epochs, steps):
    """Train one network, then test it in training mode and with spikes."""
    x_tr, y_tr, x_te, y_te = data
    np.random.seed(SEED)
    tf.random.set_seed(SEED)
    net, inp, probes, hidden = build_network(neuron_type, max_rate, x_tr.shape[1])
    surrogate = neuron_type.training == "surrogate"
    # rate mode: one timestep per example; surrogate: unroll SURROGATE_STEPS (BPTT)
    t_train = SURROGATE_STEPS if surrogate else 1
    p_train = probes["filtered" if surrogate else "out"]
    loss = last_step_loss if surrogate else tf.losses.SparseCategoricalCrossentropy(from_logits=True)

    with nengo_dl.Simulator(net, minibatch_size=MINIBATCH, seed=SEED, progress_bar=False) as sim:
        sim.compile(optimizer=tf.optimizers.Adam(LR), loss={p_train: loss})
        start = time.perf_counter()
        sim.fit(tile(x_tr, t_train), {p_train: tile(y_tr[:, None], t_train)}, epochs=epochs, verbose=0)
        train_time = time.perf_counter() - start

        # "rate" accuracy: the Keras model called in training mode (rates, or the
        # surrogate-mode spiking network over t_train steps)
        index = sim.model.probes.index(p_train)
        model = tf.function(lambda x: sim.keras_model(x, training=True)[index], autograph=False)
        name, n_steps = sim.get_name(inp), tf.fill((MINIBATCH, 1), t_train)
        outs = [
            model({name: tile(x_te[i : i + MINIBATCH], t_train), "n_steps": n_steps})[:, -1]
            for i in range(0, len(x_te), MINIBATCH)
        ]
        rate_acc = np.mean(np.argmax(np.concatenate(outs), axis=-1) == y_te)

        # spiking accuracy after 1..steps timesteps of presentation
        probed = sim.predict(tile(x_te, steps), verbose=0)
        predicted = np.argmax(probed[probes["filtered"]], axis=-1)  # (images, steps)
        spike_acc = np.mean(predicted == y_te[:, None], axis=0)
        mean_rate = float(np.mean(probed[probes["rate"]]))
        learned = {name: neurogen.learned_parameters(sim, hidden)[name] for name in neuron_type.trainable}

    mode = f"surrogate, T={t_train}" if surrogate else "rate"
    if neuron_type.trainable:
        mode += ", trained " + "+".join(neuron_type.trainable)
    return dict(label=label, mode=mode, rate_acc=rate_acc, spike_acc=spike_acc,
                train_time=train_time, mean_rate=mean_rate, learned=learned)


def main(argv=None):
    global SEED
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small subset, few epochs (tests)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (20; quick 4)")
    parser.add_argument("--steps", type=int, default=None, help="presentation steps (50; quick 20)")
    parser.add_argument("--plot", default="spiking_digits.png", help="output PNG")
    parser.add_argument("--mnist", default=None, metavar="PATH.npz", help="local MNIST npz")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the split, weights, nengo")
    parser.add_argument("--trainable", default=None, metavar="NAMES",
                        help="compare fixed vs trained neuron parameters (e.g. tau_rc)")
    args = parser.parse_args(argv)
    SEED = args.seed
    epochs = args.epochs or (4 if args.quick else 20)
    steps = args.steps or (20 if args.quick else 50)

    x_tr, y_tr, x_te, y_te = load_data(args.mnist)
    data = (*trim(x_tr, y_tr, 480 if args.quick else None), *trim(x_te, y_te, 200 if args.quick else None))
    print(f"{len(data[0])} training / {len(data[2])} test images of {x_tr.shape[1]} pixels; "
          f"{epochs} epochs, {steps} presentation steps (dt = 1 ms), seed {SEED}")

    results = []
    runs = trainable_runs(tuple(args.trainable.split(","))) if args.trainable else RUNS
    for label, neuron_type, max_rate in runs:
        results.append(run(label, neuron_type, max_rate, data, epochs, steps))
        r = results[-1]
        print(f"  {r['label']} ({r['mode']}): done in {r['train_time']:.1f} s", flush=True)
        for name, values in r["learned"].items():
            print(f"    learned {name}: {values.min():.4g} to {values.max():.4g} "
                  f"(mean {values.mean():.4g}; initial {getattr(neuron_type, name)})")

    header = f"{'neuron type':14} {'training':36} {'rate acc':>8} {'spiking acc':>11} {'train time':>10} {'mean rate':>9}"
    print(f"\n{header}\n{'-' * len(header)}")
    for r in results:
        print(f"{r['label']:14} {r['mode']:36} {r['rate_acc']:8.1%} {r['spike_acc'][-1]:11.1%} "
              f"{r['train_time']:9.1f}s {r['mean_rate']:7.1f}Hz")
    print(f"(spiking acc: {steps} steps, output filtered with tau = {SYNAPSE} s; rate acc of "
          f"the surrogate run: its training-mode spiking network over {SURROGATE_STEPS} steps)")

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        ax.plot(np.arange(1, steps + 1), r["spike_acc"], label=f"{r['label']} ({r['mode']})")
    ax.set(xlabel="presentation steps (ms)", ylabel="spiking test accuracy", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(args.plot, dpi=120)
    plt.close(fig)
    print(f"plot: {args.plot}")
    return results


if __name__ == "__main__":
    main()
