"""TensorFlow run-time support of the generated NengoDL builders: the tabulated
f-I curve's differentiable interpolation and the surrogate gradients of spikes.

Only NengoDL builders import this module (it imports TensorFlow); the NumPy side
lives in :mod:`neurogen.runtime`.
"""

import numpy as np
import tensorflow as tf

from .runtime import _slope_start

__all__ = [
    "SURROGATES",
    "straight_through",
    "surrogate_derivative",
    "surrogate_spikes",
    "tf_table_rate",
]


def tf_table_rate(J, threshold, high, values):
    """Differentiable TensorFlow version of :meth:`RateTable.__call__`.

    ``J`` has shape ``(batch, n)``; one table has scalar ``threshold`` and ``high``
    and ``values`` of shape ``(points,)``, per-neuron tables ``(n,)`` and
    ``(n, points)``.
    """
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
    @tf.custom_gradient
    def spike(x):
        def grad(dy):
            return dy * surrogate_derivative(kind, x, scale)

        return tf.cast(spiked, x.dtype), grad

    return spike(distance)


def straight_through(value, proxy):
    """``value`` on the forward pass, the gradient of ``proxy`` on the backward pass."""
    return tf.stop_gradient(value) + (proxy - tf.stop_gradient(proxy))
