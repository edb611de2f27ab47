"""Shared set-up and timing for the benchmark scripts (one process, alternating order)."""

import os
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", message="This version of NengoDL has not been tested")
warnings.filterwarnings("ignore", message="No GPU support detected")


def timed(fn):
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(runs, repeats):
    """Time each ``runs[name]()`` ``repeats`` times, alternating which goes first."""
    times = {name: [] for name in runs}
    order = list(runs)
    for i in range(repeats):
        for name in order if i % 2 == 0 else order[::-1]:
            times[name].append(timed(runs[name]))
    return times


def paired_ratio(times, a, b):
    """Median over rounds of ``a / b`` (each round ran both back to back)."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def device_report():
    """One line: TensorFlow's version, the devices it sees, the one ops run on, load."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    names = ", ".join(d.name for d in tf.config.list_physical_devices())
    where = f"GPU ({len(gpus)})" if gpus else f"CPU ({os.cpu_count()} cores)"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return f"TensorFlow {tf.__version__}; devices: {names}; running on {where}; load average {load}"


def on_gpu():
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def set_cpu_threads(threads):
    """TensorFlow's CPU thread pools (only where no GPU runs the ops)."""
    import tensorflow as tf

    if threads and not on_gpu():
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def fused(on):
    """Set whether the generated builders built from now on fuse their step (XLA)."""
    from neurogen.tf_builder import GeneratedBuilder

    GeneratedBuilder.fuse = on
