"""examples/spiking_digits.py (NengoDL spiking-digits recipe) runs end to end.

The example's ``main`` runs in ``--quick`` mode (480 training / 200 test images, a
few epochs, 20 presentation steps): it must print the results table, write the PNG,
and every run (rate-trained LIF, AdaptiveLIF, Izhikevich, ALIFThreshold and the
surrogate-trained LIF) must classify well above chance (10%) with spikes.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

# trains five small networks: ~15 s of CPU time, ~30 s wall on 2 cores
pytestmark = pytest.mark.slow

pytest.importorskip("nengo_dl")
pytest.importorskip("sklearn")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "spiking_digits.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("_example_spiking_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run(example, tmp_path, capsys, keep_nengo_precision):
    plot = tmp_path / "digits.png"
    results = example.main(["--quick", "--plot", str(plot)])
    out = capsys.readouterr().out

    # the table: a header and one row per run
    assert "neuron type" in out and "spiking acc" in out and "train time" in out
    labels = [(r["label"], r["mode"].split(",")[0]) for r in results]
    assert labels == [
        ("LIF", "rate"),
        ("AdaptiveLIF", "rate"),
        ("Izhikevich", "rate"),
        ("ALIFThreshold", "rate"),
        ("LIF", "surrogate"),
    ]
    names = tuple(r["label"] for r in results)
    rows = [line for line in out.splitlines() if line.startswith(names) and line.count("%") == 2]
    assert len(rows) == len(results)

    # the plot
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.stat().st_size > 10_000

    for r in results:
        name = f"{r['label']} ({r['mode']})"
        assert r["spike_acc"].shape == (20,), name  # accuracy after 1..20 steps
        assert r["rate_acc"] > 0.5, name
        assert r["spike_acc"][-1] > 0.5, name  # chance is 0.1
        assert r["train_time"] > 0, name
        assert 1 < r["mean_rate"] < 500, name  # Hz: neither silent nor saturated


def test_mnist_npz_loader(example, tmp_path):
    """``--mnist PATH.npz``: 28x28 uint8 images are flattened and scaled to [0, 1]."""
    rng = np.random.RandomState(0)
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        x_train=rng.randint(0, 256, (90, 28, 28)).astype(np.uint8),
        y_train=rng.randint(0, 10, 90).astype(np.uint8),
        x_test=rng.randint(0, 256, (12, 28, 28)).astype(np.uint8),
        y_test=rng.randint(0, 10, 12).astype(np.uint8),
    )
    x_tr, y_tr, x_te, y_te = example.load_data(str(path))
    assert x_tr.shape == (90, 784) and x_te.shape == (12, 784)
    assert y_tr.shape == (90,) and y_te.shape == (12,)
    assert 0 <= x_tr.min() and x_tr.max() <= 1 and x_te.max() <= 1
    x, y = example.trim(x_tr, y_tr)
    assert len(x) == len(y) == 90 - 90 % example.MINIBATCH
