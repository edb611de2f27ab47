"""Run-time support imported by generated modules: tabulated f-I curves.

For spiking models without a closed-form rate, the steady-state rate is measured
once per parameter set by simulating the generated NumPy ``step`` for a vector of
constant currents, and then interpolated.  The table is dense near the firing
threshold: nodes sit at ``J = J_th + (high - J_th) * s**2`` for ``s`` uniform in
``[0, 1]``, and interpolation is linear in ``s`` in both NumPy and TensorFlow, so the
two agree and the TensorFlow version is differentiable.
"""

from dataclasses import dataclass

import numpy as np

_CACHE = {}


@dataclass(frozen=True)
class RateTable:
    threshold: float  # firing threshold current J_th
    high: float  # largest tabulated current
    values: np.ndarray  # rate at each node, values[0] == 0

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
        return np.where(rate > values[-1], self.high + (rate - values[-1]) / self.slope, J)

    def gain_bias(self, max_rates, intercepts):
        """Gain and bias so that firing starts at ``intercepts`` and reaches
        ``max_rates`` at x = 1 (``J = gain * x + bias``)."""
        max_rates = np.asarray(np.atleast_1d(max_rates), dtype=float)
        intercepts = np.asarray(np.atleast_1d(intercepts), dtype=float)
        J_top = self.current(max_rates)
        gain = (J_top - self.threshold) / (1 - intercepts)
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
    """The :class:`RateTable` of ``neuron_type`` (cached per type and parameters)."""
    if hasattr(neuron_type, "max_dt"):  # simulate where the explicit updates are stable
        dt = min(dt, neuron_type.max_dt() / 2)
    key = (type(neuron_type), _params(neuron_type), low, high, points, settle, duration, dt)
    table = _CACHE.get(key)
    if table is None:
        table = _CACHE[key] = _tabulate(neuron_type, low, high, points, settle, duration, dt)
    return table


def _params(neuron_type):
    return tuple((p.name, getattr(neuron_type, p.name)) for p in neuron_type._params if p.name != "initial_state")


def _tabulate(neuron_type, low, high, points, settle, duration, dt):
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
    values = rates(threshold + (high - threshold) * s**2)
    values[0] = 0.0
    return RateTable(float(threshold), float(high), values)


def stacked_tables(tables, sizes):
    """Per-neuron arrays (thresholds, highs, values) for a group of operators."""
    threshold = np.concatenate([np.full(n, t.threshold) for t, n in zip(tables, sizes)])
    high = np.concatenate([np.full(n, t.high) for t, n in zip(tables, sizes)])
    values = np.concatenate([np.tile(t.values, (n, 1)) for t, n in zip(tables, sizes)])
    return threshold, high, values


def tf_table_rate(J, threshold, high, values):
    """Differentiable TensorFlow version of :meth:`RateTable.__call__`.

    ``J`` has shape ``(batch, n)``; one table has scalar ``threshold`` and ``high``
    and ``values`` of shape ``(points,)``, per-neuron tables ``(n,)`` and
    ``(n, points)``.
    """
    import tensorflow as tf

    shared = len(values.shape) == 1
    if shared:
        values = values[None, :]
    points = values.shape[1]
    x = (J - threshold) / (high - threshold)
    inside = (x > 0) & (x <= 1)
    s = tf.where(inside, tf.sqrt(tf.where(inside, x, tf.ones_like(x))), tf.zeros_like(x))
    idx = s * (points - 1)
    i0 = tf.clip_by_value(tf.floor(tf.stop_gradient(idx)), 0, points - 2)
    frac = idx - i0
    i0 = tf.cast(i0, tf.int32)
    if shared:
        v0, v1 = tf.gather(values[0], i0), tf.gather(values[0], i0 + 1)
    else:  # gather per neuron: values[n, i0[b, n]]
        v0 = tf.transpose(tf.gather(values, tf.transpose(i0), axis=1, batch_dims=1))
        v1 = tf.transpose(tf.gather(values, tf.transpose(i0 + 1), axis=1, batch_dims=1))
    # above the table: continue with the slope of its upper half (RateTable.slope)
    k = _slope_start(points)
    span = 1 - (k / (points - 1)) ** 2
    slope = (values[:, -1] - values[:, k]) / ((high - threshold) * span)
    above = values[:, -1] + (J - high) * slope
    return tf.where(x > 1, above, tf.where(inside, v0 + frac * (v1 - v0), tf.zeros_like(J)))


#: Surrogate derivatives of the spike (Heaviside) function, as functions of the
#: distance ``x`` to threshold (positive = above) and a sharpness ``scale``.
#: Each peaks at 1 for x = 0, so ``scale`` alone sets the width.
SURROGATES = {
    "fast_sigmoid": "1 / (1 + scale |x|)^2 (SuperSpike; Zenke & Ganguli 2018)",
    "arctan": "1 / (1 + (pi scale x)^2) (Fang et al. 2021)",
    "sigmoid": "4 s (1 - s), s = sigmoid(scale x)",
    "triangle": "max(0, 1 - scale |x|) (Esser et al. 2016; Bellec et al. 2018)",
    "exponential": "exp(-scale |x|) (SLAYER; Shrestha & Orchard 2018)",
    "gaussian": "exp(-(scale x)^2 / 2)",
    "straight_through": "1 (straight-through estimator)",
}


def surrogate_derivative(kind, x, scale):
    """The surrogate derivative ``kind`` (see :data:`SURROGATES`) at ``x`` (TensorFlow)."""
    import tensorflow as tf

    if kind == "fast_sigmoid":
        return 1 / tf.square(1 + scale * tf.abs(x))
    if kind == "arctan":
        return 1 / (1 + tf.square(np.pi * scale * x))
    if kind == "sigmoid":
        s = tf.sigmoid(scale * x)
        return 4 * s * (1 - s)
    if kind == "triangle":
        return tf.maximum(1 - scale * tf.abs(x), 0)
    if kind == "exponential":
        return tf.exp(-scale * tf.abs(x))
    if kind == "gaussian":
        return tf.exp(-0.5 * tf.square(scale * x))
    if kind == "straight_through":
        return tf.ones_like(x)
    raise ValueError(f"unknown surrogate {kind!r} (known: {', '.join(SURROGATES)})")


def surrogate_spikes(spiked, distance, kind, scale):
    """Spikes (``spiked`` as 0/1) with the surrogate derivative w.r.t. ``distance``."""
    import tensorflow as tf

    @tf.custom_gradient
    def spike(x):
        def grad(dy):
            return dy * surrogate_derivative(kind, x, scale)

        return tf.cast(spiked, x.dtype), grad

    return spike(distance)


def straight_through(value, proxy):
    """``value`` on the forward pass, the gradient of ``proxy`` on the backward pass."""
    import tensorflow as tf

    return tf.stop_gradient(value) + (proxy - tf.stop_gradient(proxy))


def smooth_threshold(J, threshold, sigma):
    """``threshold + sigma * softplus((J - threshold) / sigma)``: a current that never
    reaches the firing threshold, so a rate curve ``r(J)`` becomes smooth there (the
    SoftLIF construction of Hunsberger & Eliasmith 2015)."""
    import tensorflow as tf

    return threshold + sigma * tf.math.softplus((J - threshold) / sigma)


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
