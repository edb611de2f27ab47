"""NumPy run-time support imported by generated modules: tabulated f-I curves.

For spiking models without a closed-form rate, the steady-state rate is measured
once per parameter set by simulating the generated NumPy ``step`` for a vector of
constant currents, and then interpolated.  The table is dense near the firing
threshold: nodes sit at ``J = J_th + (high - J_th) * s**2`` for ``s`` uniform in
``[0, 1]``, and interpolation is linear in ``s`` in both NumPy and TensorFlow, so the
two agree and the TensorFlow version is differentiable (:mod:`neurogen.tf_runtime`).

Tables are kept in memory (the most recent :data:`MEMORY_TABLES`) and on disk
(:mod:`neurogen.table_cache`), so a new process does not simulate them again.
This module never imports TensorFlow.
"""

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from . import table_cache

#: how many tables the process keeps in memory (least recently used dropped first)
MEMORY_TABLES = 64
_CACHE = OrderedDict()


@dataclass(frozen=True)
class RateTable:
    threshold: float  # firing threshold current J_th
    high: float  # largest tabulated current
    values: np.ndarray  # rate at each node, values[0] == 0
    #: rate at a current far above the table (10**4 times its span): the highest
    #: rate the model reaches, as far as the simulation can tell (inf: unknown)
    ceiling: float = np.inf

    @property
    def currents(self):
        """The currents of the table's nodes."""
        s = np.linspace(0, 1, len(self.values))
        return self.threshold + (self.high - self.threshold) * s**2

    @property
    def slope(self):
        """Mean slope over the table's upper half (in s), used above ``high``: a step
        model's f-I curve is a staircase at high rates, so a short span can be flat."""
        J, k = self.currents, _slope_start(len(self.values))
        return (self.values[-1] - self.values[k]) / (J[-1] - J[k])

    def __call__(self, J):
        """Interpolated rate for currents ``J`` (NumPy)."""
        J = np.asarray(J, dtype=float)
        x = (J - self.threshold) / (self.high - self.threshold)
        idx = np.sqrt(np.clip(x, 0, 1)) * (len(self.values) - 1)
        i0 = np.clip(np.floor(idx).astype(int), 0, len(self.values) - 2)
        frac = idx - i0
        rate = self.values[i0] + frac * (self.values[i0 + 1] - self.values[i0])
        rate = np.where(x > 1, self.values[-1] + (J - self.high) * self.slope, rate)
        return np.where(x > 0, rate, 0.0)

    def current(self, rate):
        """The current that gives ``rate`` (inverse of the table)."""
        rate = np.asarray(rate, dtype=float)
        values = np.maximum.accumulate(self.values)  # monotone for inversion
        J = np.interp(rate, values, self.currents)
        if self.slope <= 0:  # flat above the table: no current gives a higher rate
            return np.where(rate > values[-1], np.inf, J)
        return np.where(rate > values[-1], self.high + (rate - values[-1]) / self.slope, J)

    @property
    def max_rate(self):
        """The highest rate that :meth:`gain_bias` accepts: the table's highest, or
        the ceiling where the table continues upwards."""
        top = float(np.max(self.values))
        return max(top, self.ceiling) if self.slope > 0 else top

    def gain_bias(self, max_rates, intercepts):
        """Gain and bias so that firing starts at ``intercepts`` and reaches
        ``max_rates`` at x = 1 (``J = gain * x + bias``).

        Raises a ``ValidationError`` for ``max_rates`` the model cannot reach.
        """
        from nengo.exceptions import ValidationError

        max_rates = np.asarray(np.atleast_1d(max_rates), dtype=float)
        intercepts = np.asarray(np.atleast_1d(intercepts), dtype=float)
        if np.any(max_rates <= 0) or np.any(max_rates > self.max_rate):
            raise ValidationError(
                f"max rates must be in (0, {self.max_rate:.6g}] Hz, the rates this neuron "
                f"type reaches (got {np.min(max_rates):.6g} to {np.max(max_rates):.6g} Hz)",
                attr="max_rates",
            )
        if np.any(intercepts >= 1):
            raise ValidationError("intercepts must be below 1", attr="intercepts")
        gain = (self.current(max_rates) - self.threshold) / (1 - intercepts)
        return gain, self.threshold - gain * intercepts

    def max_rates_intercepts(self, gain, bias):
        """The inverse of :meth:`gain_bias`."""
        gain, bias = np.asarray(gain, dtype=float), np.asarray(bias, dtype=float)
        return self(gain + bias), (self.threshold - bias) / gain


def _slope_start(points):
    return (points - 1) // 2


def simulate_rates(neuron_type, J, dt=0.001, settle=0.2, duration=1.0):
    """Steady-state rate (mean output) of ``neuron_type`` at each constant current ``J``.

    Runs the NumPy ``step`` for ``settle`` seconds, then measures over ``duration``
    seconds from the first to the last spike (accurate to ``dt`` over the window,
    rather than to one spike as counting is).
    """
    J = np.asarray(J, dtype=float)
    n = J.size
    state = neuron_type.make_state(n, rng=np.random.RandomState(0), dtype=np.float64)
    output = np.zeros(n)
    settle_steps = int(round(settle / dt))
    steps = int(round(duration / dt))
    for _ in range(settle_steps):
        neuron_type.step(dt, J, output, **state)
    first = np.full(n, np.nan)
    last = np.full(n, np.nan)
    first_value = np.zeros(n)
    total = np.zeros(n)
    for i in range(steps):
        neuron_type.step(dt, J, output, **state)
        fired = output != 0
        if fired.any():
            t = (i + 1) * dt
            new = fired & np.isnan(first)
            first[new] = t
            first_value[new] = output[new] * dt
            last[fired] = t
            total[fired] += output[fired] * dt
    span = last - first
    with np.errstate(invalid="ignore", divide="ignore"):
        isi_rate = (total - first_value) / span
    return np.where(span > 0, isi_rate, total / duration)


def rate_table(neuron_type, low, high, points, settle, duration, dt=0.001):
    """The :class:`RateTable` of ``neuron_type`` (cached in memory and on disk)."""
    if hasattr(neuron_type, "max_dt"):  # simulate where the explicit updates are stable
        dt = min(dt, neuron_type.max_dt() / 2)
    options = dict(low=low, high=high, points=points, settle=settle, duration=duration, dt=dt)
    key = (type(neuron_type), _params(neuron_type), tuple(options.items()))
    table = _CACHE.get(key)
    if table is None:
        disk_key = table_cache.key(neuron_type, _params(neuron_type), options)
        table = table_cache.load(disk_key, points)
        if table is None:
            table = _tabulate(neuron_type, **options)
            table_cache.save(disk_key, table)
        _CACHE[key] = table
        while len(_CACHE) > MEMORY_TABLES:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return table


def _params(neuron_type):
    """Every parameter value, the initial state's distributions included (as text)."""
    values = {p.name: getattr(neuron_type, p.name) for p in neuron_type._params}
    values["initial_state"] = repr(values.get("initial_state"))
    return tuple(values.items())


def _tabulate(neuron_type, low, high, points, settle, duration, dt):
    """Simulate the f-I curve: find the threshold, then sample above it."""
    def rates(J):
        return simulate_rates(neuron_type, J, dt=dt, settle=settle, duration=duration)

    # bracket the threshold on a coarse grid, then refine it
    grid = np.linspace(low, high, 256)
    firing = rates(grid) > 0
    if not firing.any():  # silent over the whole range: zero everywhere
        return RateTable(float(high), float(high) + 1.0, np.zeros(points))
    k = int(np.argmax(firing))
    lo = grid[max(k - 1, 0)]
    fine = np.linspace(lo, grid[k], 256)
    k = int(np.argmax(rates(fine) > 0))
    threshold = fine[max(k - 1, 0)]
    s = np.linspace(0, 1, points)
    far = threshold + (high - threshold) * 1e4  # where the rate saturates (if it does)
    with np.errstate(all="ignore"):  # a model may overflow that far up; then inf
        *values, ceiling = rates(np.append(threshold + (high - threshold) * s**2, far))
    values = np.array(values)
    values[0] = 0.0
    ceiling = float(ceiling) if np.isfinite(ceiling) else np.inf
    return RateTable(float(threshold), float(high), values, ceiling)


def stacked_tables(tables, sizes):
    """Per-neuron arrays (thresholds, highs, values) for a group of operators."""
    threshold = np.concatenate([np.full(n, t.threshold) for t, n in zip(tables, sizes)])
    high = np.concatenate([np.full(n, t.high) for t, n in zip(tables, sizes)])
    values = np.concatenate([np.tile(t.values, (n, 1)) for t, n in zip(tables, sizes)])
    return threshold, high, values


def check_dt(neuron_type, dt):
    """Raise a clear error when ``dt`` is beyond ``neuron_type``'s stable range."""
    from nengo.exceptions import BuildError

    limit = neuron_type.max_dt()
    if dt > limit:
        raise BuildError(
            f"dt = {dt} s is too large for {neuron_type}: its explicit updates are "
            f"stable only for dt <= {limit:.4g} s (see `neurogen check`)"
        )


def settled_output(neuron_type, J, dt=0.001, duration=1.0):
    """Output of a stateful rate neuron type after ``duration`` seconds of input ``J``."""
    J = np.asarray(J, dtype=float)
    flat = J.reshape(-1)
    state = neuron_type.make_state(flat.size, rng=np.random.RandomState(0), dtype=np.float64)
    output = np.zeros(flat.size)
    for _ in range(int(round(duration / dt))):
        neuron_type.step(dt, flat, output, **state)
    return output.reshape(J.shape)
