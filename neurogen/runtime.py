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

import inspect
import math
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from . import table_cache
from .errors import NeurogenWarning

#: how many tables the process keeps in memory (least recently used dropped first)
MEMORY_TABLES = 64
_CACHE = OrderedDict()
#: the table reaches at least this rate where the model does (nengo's default
#: ``max_rates`` are Uniform(200, 400) Hz)
TOP_RATE = 400.0
#: the threshold search widens the options' current range up to this many times
SEARCH_SPAN = 4.0**8
#: a stochastic type's rate at each current is the mean over this many neurons
STOCHASTIC_COPIES = 8
#: a first rate above threshold over this fraction of the table's highest is a jump (type II)
JUMP = 0.1
#: a rate that falls by more than this fraction below its peak is a non-monotonic curve
FALL = 0.1
#: rates at dt and dt/2 that differ by more than this fraction (plus the ISI rounding
#: to dt) say the table's step is too coarse for the model
STEP_TOLERANCE = 0.05


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

    @property
    def peak(self):
        """Index of the table's highest rate."""
        return int(np.argmax(self.values))

    @property
    def falls(self):
        """Whether the rate falls well below its peak at higher currents (in the
        table, or far above it): a non-monotonic f-I curve (e.g. depolarisation block)."""
        top = self.values[self.peak]
        after = self.values[self.peak:]
        return bool(top > 0 and (after.min() < (1 - FALL) * top or self.ceiling < (1 - FALL) * top))

    def current(self, rate):
        """The current that gives ``rate`` (inverse of the table's rising part)."""
        rate = np.asarray(rate, dtype=float)
        end = self.peak + 1 if self.falls else len(self.values)
        values = np.maximum.accumulate(self.values[:end])  # monotone for inversion
        J = np.interp(rate, values, self.currents[:end])
        if self.falls or self.slope <= 0:  # no current gives a higher rate
            return np.where(rate > values[-1], np.inf, J)
        with np.errstate(divide="ignore", invalid="ignore"):
            above = self.high + (rate - values[-1]) / self.slope
        return np.where(rate > values[-1], above, J)

    @property
    def max_rate(self):
        """The highest rate that :meth:`gain_bias` accepts: the peak of a falling
        curve, else the table's highest, or the ceiling where the table continues upwards."""
        top = float(np.max(self.values))
        return max(top, self.ceiling) if self.slope > 0 and not self.falls else top

    def _unreachable(self, max_rates):
        """The ValidationError message for ``max_rates`` outside (0, max_rate]."""
        got = f"got {np.min(max_rates):.6g} to {np.max(max_rates):.6g} Hz"
        if self.falls:
            J_peak = self.currents[self.peak]
            return (
                f"max rates must be in (0, {self.max_rate:.6g}] Hz ({got}): this neuron "
                f"type's f-I curve is not monotonic; it rises from 0 Hz at J = "
                f"{self.threshold:.6g} to {self.max_rate:.6g} Hz at J = {J_peak:.6g}, "
                f"then falls (e.g. depolarisation block), so only currents in "
                f"[{self.threshold:.6g}, {J_peak:.6g}] give distinct rates"
            )
        return f"max rates must be in (0, {self.max_rate:.6g}] Hz, the rates this neuron type reaches ({got})"

    @property
    def jump(self):
        """The rate at which firing starts, where the f-I curve jumps there (type II
        excitability, e.g. Hodgkin-Huxley: 0 to ~50 Hz); 0 where it starts low."""
        first = float(self.values[1]) if len(self.values) > 1 else 0.0
        return first if first > JUMP * float(np.max(self.values)) else 0.0

    def _below_jump(self, max_rates):
        return (
            f"max rates must be at least {self.jump:.6g} Hz (got {np.min(max_rates):.6g} Hz): this "
            f"neuron type's f-I curve jumps from 0 Hz to {self.jump:.6g} Hz at its threshold "
            f"J = {self.threshold:.6g} (type II excitability), so lower rates are never reached; "
            f"ask for max_rates between {self.jump:.6g} and {self.max_rate:.6g} Hz"
        )

    def gain_bias(self, max_rates, intercepts):
        """Gain and bias so that firing starts at ``intercepts`` and reaches
        ``max_rates`` at x = 1 (``J = gain * x + bias``).

        Raises a ``ValidationError`` for ``max_rates`` the model cannot reach.
        """
        from nengo.exceptions import ValidationError

        max_rates = np.asarray(np.atleast_1d(max_rates), dtype=float)
        intercepts = np.asarray(np.atleast_1d(intercepts), dtype=float)
        if np.any(max_rates <= 0) or np.any(max_rates > self.max_rate):
            raise ValidationError(self._unreachable(max_rates), attr="max_rates")
        if self.jump and np.any(max_rates < self.jump):
            raise ValidationError(self._below_jump(max_rates), attr="max_rates")
        if np.any(intercepts >= 1):
            raise ValidationError("intercepts must be below 1", attr="intercepts")
        gain = (self.current(max_rates) - self.threshold) / (1 - intercepts)
        return gain, self.threshold - gain * intercepts

    def max_rates_intercepts(self, gain, bias):
        """The inverse of :meth:`gain_bias`."""
        gain, bias = np.asarray(gain, dtype=float), np.asarray(bias, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self(gain + bias), (self.threshold - bias) / gain


def _slope_start(points):
    return (points - 1) // 2


def simulate_rates(neuron_type, J, dt=0.001, settle=0.2, duration=1.0):
    """Steady-state rate (mean output) of ``neuron_type`` at each constant current ``J``.

    Runs the NumPy ``step`` for ``settle`` seconds, then measures over ``duration``
    seconds from the first to the last spike (accurate to ``dt`` over the window,
    rather than to one spike as counting is).  A neuron whose state or output becomes
    non-finite (the model diverges) gets NaN; NumPy's warnings are not shown.
    """
    if "rng" in inspect.signature(neuron_type.step).parameters:  # draws random numbers
        return _mean_rates(neuron_type, J, dt, settle, duration)
    J = np.asarray(J, dtype=float)
    n = J.size
    state = neuron_type.make_state(n, rng=np.random.RandomState(0), dtype=np.float64)
    output = np.zeros(n)
    settle_steps = int(round(settle / dt))
    steps = int(round(duration / dt))
    diverged = np.zeros(n, dtype=bool)
    first = np.full(n, np.nan)
    last = np.full(n, np.nan)
    first_value = np.zeros(n)
    total = np.zeros(n)
    with np.errstate(all="ignore"):
        for i in range(settle_steps + steps):
            neuron_type.step(dt, J, output, **state)
            if i % 64 == 0 or i == settle_steps + steps - 1:
                diverged |= _non_finite(output, state)
            fired = output != 0
            if i >= settle_steps and fired.any():
                t = (i + 1 - settle_steps) * dt
                new = fired & np.isnan(first)
                first[new] = t
                first_value[new] = output[new] * dt
                last[fired] = t
                total[fired] += output[fired] * dt
        span = last - first
        isi_rate = (total - first_value) / span
        rate = np.where(span > 0, isi_rate, total / duration)
    return np.where(diverged, np.nan, rate)


def _mean_rates(neuron_type, J, dt, settle, duration):
    """Mean rate (spikes counted over ``duration``) of a stochastic type at each
    current, over :data:`STOCHASTIC_COPIES` neurons, from the fixed seed 0."""
    J = np.repeat(np.asarray(J, dtype=float), STOCHASTIC_COPIES)
    state = neuron_type.make_state(J.size, rng=np.random.RandomState(0), dtype=np.float64)
    output, total = np.zeros(J.size), np.zeros(J.size)
    diverged = np.zeros(J.size, dtype=bool)
    settle_steps, steps = int(round(settle / dt)), int(round(duration / dt))
    with np.errstate(all="ignore"):
        for i in range(settle_steps + steps):
            neuron_type.step(dt, J, output, **state)
            if i % 64 == 0 or i == settle_steps + steps - 1:
                diverged |= _non_finite(output, state)
            if i >= settle_steps:
                total += output * dt
    rate = np.where(diverged, np.nan, total / duration)
    return rate.reshape(-1, STOCHASTIC_COPIES).mean(axis=1)  # NaN where any diverged


def _non_finite(output, state):
    """Which neurons have a non-finite output or state."""
    bad = ~np.isfinite(output)
    for value in state.values():
        value = np.asarray(value)
        if value.shape == bad.shape and value.dtype.kind == "f":
            bad |= ~np.isfinite(value)
    return bad


def rate_table(neuron_type, low, high, points, settle, duration, dt=0.001, top_rate=TOP_RATE):
    """The :class:`RateTable` of ``neuron_type`` (cached in memory and on disk).

    ``low`` and ``high`` are where the threshold search starts (it widens the range
    when the model does not start firing inside it) and the least top of the table,
    which extends upwards until it reaches ``top_rate`` where the model does.
    A table is for one parameter set: per-neuron types tabulate each distinct set
    (:func:`neurogen.parameters.groups`, :func:`per_neuron_tables`).
    """
    _require_scalar(neuron_type)
    if hasattr(neuron_type, "max_dt"):  # simulate where the explicit updates are stable
        dt = min(dt, hard_max_dt(neuron_type) / 2)
    options = dict(low=low, high=high, points=points, settle=settle, duration=duration, dt=dt)
    if top_rate != TOP_RATE:
        options["top_rate"] = top_rate
    key = (type(neuron_type), _params(neuron_type), tuple(options.items()))
    table = _CACHE.get(key)
    if table is None:
        disk_key = table_cache.key(neuron_type, _params(neuron_type), options, __file__)
        fields = table_cache.load(disk_key, points)
        table = None if fields is None else RateTable(*fields)
        if table is None:
            table = _tabulate(neuron_type, **dict(options, top_rate=top_rate))
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


def _tabulate(neuron_type, low, high, points, settle, duration, dt, top_rate=TOP_RATE):
    """Simulate the f-I curve: find the threshold, the top current, then sample between."""
    def rates(J):
        return simulate_rates(neuron_type, J, dt=dt, settle=settle, duration=duration)

    name = type(neuron_type).__name__
    threshold = _find_threshold(rates, low, high, name)
    if threshold is None:  # silent over the whole search: zero everywhere
        return RateTable(float(high), float(high) + 1.0, np.zeros(points))
    start = high if threshold < high else threshold + (high - low)  # found above the range
    high = _top_current(rates, threshold, start, top_rate)
    s = np.linspace(0, 1, points)
    far = threshold + (high - threshold) * 1e4  # where the rate saturates (if it does)
    currents = threshold + (high - threshold) * s**2
    *values, ceiling = rates(np.append(currents, far))
    values = np.array(values)
    if np.isnan(values).any():
        J_bad = currents[np.isnan(values)][0]
        warnings.warn(
            f"{name}'s state becomes non-finite at J >= {J_bad:.6g} (dt = {dt} s); its rate "
            "table counts those currents as not firing (use a smaller `[rate] table` dt "
            "or `high`)", NeurogenWarning, stacklevel=4)
        values = np.nan_to_num(values, nan=0.0)
    values[0] = 0.0
    ceiling = float(ceiling) if np.isfinite(ceiling) else np.inf
    table = RateTable(float(threshold), float(high), values, ceiling)
    _check_step(neuron_type, table, settle, duration, dt, name)
    return table


def _find_threshold(rates, low, high, name):
    """The firing threshold: the first firing current above ``low`` (searched on
    ``[low, high]`` and then on geometrically wider steps up to :data:`SEARCH_SPAN`
    times the span), or, where the model fires at ``low``, the lowest current of that
    firing run below it; refined on a fine grid.  None (with a warning) when it never
    fires at or above ``low``."""
    span = high - low
    widths = span * np.geomspace(1 / 16, SEARCH_SPAN, 128)
    grid = np.concatenate([low - widths[::-1], np.linspace(low, high, 256), high + widths])
    firing = rates(grid) > 0
    if not firing[len(widths):].any():
        warnings.warn(
            f"{name} never fires for currents from {low:.6g} to {grid[-1]:.6g} "
            "(its rate table is zero everywhere; check the spike condition, or move the "
            "search with `[rate] table = { low = ..., high = ... }`)",
            NeurogenWarning, stacklevel=5)
        return None
    k = len(widths)  # the grid's index of `low`
    if firing[k]:  # firing at `low`: the lowest current of that firing run
        while k > 0 and firing[k - 1]:
            k -= 1
    else:  # the first firing current above `low`
        k += int(np.argmax(firing[k:]))
    if k == 0:
        warnings.warn(
            f"{name} fires at every current down to {grid[0]:.6g}; its rate table starts "
            "there", NeurogenWarning, stacklevel=5)
        return float(grid[0])
    fine = np.linspace(grid[k - 1], grid[k], 256)
    k = int(np.argmax(rates(fine) > 0))
    return float(fine[max(k - 1, 0)])


def _top_current(rates, threshold, high, top_rate):
    """The table's top: ``high``, doubled (span above threshold) until the rate
    reaches ``top_rate``, saturates, falls or diverges."""
    candidates = threshold + (high - threshold) * 2.0 ** np.arange(17)
    r = rates(candidates)
    for k in range(len(candidates)):
        if not np.isfinite(r[k]):  # diverged: stop below
            return float(candidates[max(k - 1, 0)])
        if r[k] >= top_rate or (k > 0 and r[k] < (1 - FALL) * np.nanmax(r[:k])):
            return float(candidates[k])  # reached, or falling: keep the fall in the table
        if k > 0 and r[k] <= 1.01 * r[k - 1] and r[k] > 0:
            return float(candidates[k - 1])  # saturated
    return float(candidates[-1])


def _check_step(neuron_type, table, settle, duration, dt, name):
    """Warn when the spike interval at ``dt`` and at ``dt / 2`` differ at a few
    currents by more than one step ``dt`` (their rounding) plus :data:`STEP_TOLERANCE`."""
    if "rng" in inspect.signature(neuron_type.step).parameters:
        return  # a stochastic mean rate differs by chance at dt / 2: no step to judge by
    nodes = np.round(np.array([0.15, 0.3, 0.5]) * (len(table.values) - 1)).astype(int)
    probes, coarse = table.currents[nodes], table.values[nodes]  # simulated at dt
    fine = simulate_rates(neuron_type, probes, dt=dt / 2, settle=settle, duration=duration)
    fine = np.nan_to_num(fine)
    with np.errstate(divide="ignore", invalid="ignore"):
        isi_coarse, isi_fine = 1 / coarse, 1 / fine
        bad = ~(np.abs(isi_coarse - isi_fine) <= dt + STEP_TOLERANCE * np.fmin(isi_coarse, isi_fine))
    bad &= np.maximum(coarse, fine) > 0
    if bad.any():
        i = int(np.argmax(bad))
        warnings.warn(
            f"{name}'s rate table is simulated at dt = {dt:g} s, a step the model cannot "
            f"resolve: at J = {probes[i]:.6g} the rate is {coarse[i]:.6g} Hz at dt and "
            f"{fine[i]:.6g} Hz at dt/2; set a smaller step with "
            f"`[rate] table = {{ dt = {dt / 10:g} }}`", NeurogenWarning, stacklevel=4)


def stacked_tables(tables, sizes):
    """Per-neuron arrays (thresholds, highs, values) for a group of operators."""
    threshold = np.concatenate([np.full(n, t.threshold) for t, n in zip(tables, sizes)])
    high = np.concatenate([np.full(n, t.high) for t, n in zip(tables, sizes)])
    values = np.concatenate([np.tile(t.values, (n, 1)) for t, n in zip(tables, sizes)])
    return threshold, high, values


def _require_scalar(neuron_type):
    from .parameters import distributions, per_neuron_values

    varying = list(per_neuron_values(neuron_type)) + list(distributions(neuron_type))
    if varying:
        raise ValueError(
            f"a rate table is for one parameter set, but {type(neuron_type).__name__}'s "
            f"{', '.join(varying)} differ between neurons; use per_neuron_tables"
        )


def per_neuron_tables(neuron_type, n_neurons, options):
    """One :class:`RateTable` per neuron: a table for each distinct parameter set."""
    from .parameters import groups

    tables = [None] * n_neurons
    for scalar, idx in groups(neuron_type, n_neurons):
        table = rate_table(scalar, **options)
        for i in np.arange(n_neurons)[idx]:
            tables[i] = table
    return tables


def hard_max_dt(neuron_type):
    """``max_dt()`` without the limits sampled along trajectories (``sampled_max_dt``):
    the limits that hold for every state and input (the strictest neuron's)."""
    if hasattr(neuron_type, "sampled_max_dt"):
        return float(np.min(neuron_type.max_dt(sampled=False)))
    return float(np.min(neuron_type.max_dt()))  # the strictest neuron's


def check_dt(neuron_type, dt):
    """Raise a clear error when ``dt`` is beyond ``neuron_type``'s stable range; warn
    when it is beyond the limit sampled along trajectories (a non-linear update can
    leave its unstable region again, as Izhikevich's voltage does above J = -20)."""
    from nengo.exceptions import BuildError

    limit = hard_max_dt(neuron_type)
    if dt > limit:
        raise BuildError(
            f"dt = {dt} s is too large for {neuron_type}: its explicit updates are "
            f"stable only for dt <= {limit:.4g} s (see `neurogen check`)"
        )
    sampled = getattr(neuron_type, "sampled_max_dt", np.inf)
    if dt > sampled:
        warnings.warn(
            f"dt = {dt} s is beyond the largest stable step of {type(neuron_type).__name__}'s "
            f"non-linear explicit updates, {sampled:.4g} s (sampled along trajectories at "
            f"the default parameters); it may oscillate or diverge at some inputs (see "
            f"`neurogen check --dt {dt}`; `substeps` or method 'implicit' fix it)",
            NeurogenWarning, stacklevel=3)


def settled_output(neuron_type, J, dt=0.001, duration=1.0):
    """Output of a stateful rate neuron type after ``duration`` seconds of input ``J``."""
    J = np.asarray(J, dtype=float)
    flat = J.reshape(-1)
    state = neuron_type.make_state(flat.size, rng=np.random.RandomState(0), dtype=np.float64)
    output = np.zeros(flat.size)
    for _ in range(int(round(duration / dt))):
        neuron_type.step(dt, flat, output, **state)
    return output.reshape(J.shape)


def substep_count(dt, max_step, substeps=1):
    """Sub-steps per simulator step: ``max(substeps, ceil(dt / max_step))`` (a ratio
    within 1e-9 of an integer counts as that integer: 1e-3 / 1e-4 is 10, not 11)."""
    ratio = float(dt) / max_step
    return max(int(substeps), int(math.ceil(ratio - 1e-9 * max(ratio, 1.0))))
