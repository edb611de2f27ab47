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
