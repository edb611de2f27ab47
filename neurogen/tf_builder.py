"""Base class of the generated NengoDL builders (imports TensorFlow and NengoDL).

A generated builder only adds its ``step`` (and, for closed-form rates, its
``training_step``); parameters, training modes, surrogate spikes, rate tables and
smoothing live here.
"""

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import smart_cond
from nengo.exceptions import BuildError
from nengo_dl.neuron_builders import SimNeuronsBuilder, TFNeuronBuilder

from .runtime import rate_table, stacked_tables
from .tf_runtime import straight_through, surrogate_spikes, tf_table_rate

__all__ = ["GeneratedBuilder", "SimNeuronsBuilder", "tf"]

TRAINING_OPTIONS = ("training", "surrogate", "surrogate_scale", "smoothing")


def _values(values, sizes):
    """One value per instance -> that value if all are equal, else one per neuron."""
    if all(v == values[0] for v in values):
        return values[0]
    return np.concatenate([np.full(n, v) for v, n in zip(values, sizes)])


class GeneratedBuilder(TFNeuronBuilder):
    """Builds a group of operators of one generated neuron type (or its bound class).

    Training modes (chosen per neuron type instance with ``training=``):

    ``"rate"``
        NengoDL's usual scheme: spikes in inference; while training, the
        differentiable steady-state rate (``training_step``), states held constant.
    ``"surrogate"``
        Spikes and states evolve while training too (backpropagation through
        time); the spike's derivative is replaced by ``surrogate`` with sharpness
        ``surrogate_scale``.  Resets are not differentiated through the spike.
    """

    #: the generated NeuronType; gives defaults for instances of a bound class
    neuron_type = None
    #: names of the parameters read by ``step``
    parameters = ()

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        neurons = [op.neurons for op in self.ops]
        sizes = [op.J.shape[0] for op in self.ops]
        self.params = {
            name: signals.op_constant(neurons, sizes, name, signals.dtype)
            for name in self.parameters
        }
        self.dtype = signals.dtype
        self.config = config
        self.dt_value = signals.dt_val  # a number: sub-step counts are known when building
        # NengoDL calls build_pre again on the same builder when it rebuilds its
        # model (fit, evaluate, ...): start from the class's value each time
        self.spiking = type(self).spiking
        self.training, self.rate_mask = "rate", None
        if not self.spiking:
            return
        # training options are per instance; NengoDL merges the operators of all
        # instances of a type into this one builder, so they are per neuron here
        options = [self._training_options(n) for n in neurons]
        modes = {mode for mode, _, _, _ in options}
        self.surrogates = self._per_neuron([(o[1],) for o in options], sizes)
        self.surrogate = options[0][1]  # (the kind, where all neurons share one)
        self.scale = self._constant([o[2] for o in options], sizes)
        smoothing = [o[3] or config.lif_smoothing or 0 for o in options]
        if modes == {"surrogate"}:
            self.training = "surrogate"
            self.spiking = False  # NengoDL then runs `step` while training, too
            return
        if modes == {"surrogate", "rate"}:  # rates for some neurons, BPTT for others
            self.training = "surrogate"
            is_rate = [o[0] == "rate" for o in options]
            self.rate_mask = self._constant(is_rate, sizes, tf.bool)
        if not config.inference_only:
            self._build_rate(neurons, sizes, signals, _values(smoothing, sizes))

    def _constant(self, values, sizes, dtype=None):
        """One value per instance -> a constant: scalar if all equal, else per neuron."""
        return tf.constant(_values(values, sizes), dtype or self.dtype)

    def _per_neuron(self, keys, sizes):
        """``{key: mask}`` of the neurons with each distinct ``key`` (None: one key)."""
        if len(set(keys)) == 1:
            return {keys[0][0]: None}
        return {k[0]: self._constant([key == k for key in keys], sizes, tf.bool) for k in set(keys)}

    def build_step(self, signals, **step_kwargs):
        """NengoDL's step, except where the group mixes ``"rate"`` and ``"surrogate"``
        training: there, while training, the rate neurons output their rate and hold
        their states, and the others run the (surrogate-gradient) step."""
        if self.rate_mask is None:
            return super().build_step(signals, **step_kwargs)
        J = signals.gather(self.J_data)
        state = {s: signals.gather(d) for s, d in self.state_data.items()}
        stepped = tf.nest.flatten(self.step(J, signals.dt, **state))

        def training():
            rate = self.training_step(J, signals.dt, **state)
            held = [tf.where(self.rate_mask, old, new) for old, new in zip(state.values(), stepped[1:])]
            return (tf.where(self.rate_mask, rate, stepped[0]), *held)

        out = tf.nest.flatten(smart_cond.smart_cond(self.config.training, training, lambda: tuple(stepped)))
        signals.scatter(self.output_data, out[0])
        for state_data, value in zip(self.state_data.values(), out[1:]):
            signals.scatter(state_data, value)

    def _training_options(self, neurons):
        defaults = self.neuron_type.training_defaults
        return tuple(getattr(neurons, k, defaults[k]) for k in TRAINING_OPTIONS)

    def spike_distance_required(self):
        raise BuildError(
            f"{self.neuron_type.__name__}: surrogate training needs a spike condition "
            "of the form 'state > threshold'"
        )

    def _build_rate(self, neurons, sizes, signals, smoothing):
        """Rate tables and smoothing for ``training_step``; ``smoothing``: a number,
        or a constant (scalar or per neuron, 0 where off)."""
        options = self.neuron_type.rate_table_options
        self.rate_table = None
        threshold = None
        if options is not None:
            tables = [rate_table(n, **options) for n in neurons]
            if all(t is tables[0] for t in tables):  # one shared table (the usual case)
                arrays = (tables[0].threshold, tables[0].high, tables[0].values)
            else:
                arrays = stacked_tables(tables, sizes)
            self.rate_table = [tf.constant(a, signals.dtype) for a in arrays]
            threshold = self.rate_table[0]
        elif np.any(np.asarray(smoothing) > 0):
            threshold = self.threshold_current(**self.params)
            if threshold is None:
                raise BuildError(
                    f"smoothing needs the firing threshold of {self.neuron_type.__name__}: "
                    "add `threshold` to the spec's [rate] section"
                )
        self.smoothing = None
        if np.any(np.asarray(smoothing) > 0):
            self.smoothing = (tf.cast(threshold, signals.dtype), tf.constant(smoothing, signals.dtype))

    def threshold_current(self, **params):
        """Current at which firing starts (None where unknown)."""
        return None

    def smooth(self, J):
        """The input current with the rate's threshold smoothed (if configured)."""
        if self.smoothing is None:
            return J
        return self.smoothing[0] + self.excess(J)

    def excess(self, J):
        """``J - threshold``, smoothed: ``s * softplus((J - threshold) / s)`` (SoftLIF,
        Hunsberger & Eliasmith 2015) where the smoothing ``s > 0``.  Closed-form rates
        read it in place of ``J - threshold``, so no ``threshold + tiny - threshold``
        cancels the gradient far below threshold."""
        threshold, sigma = self.smoothing
        on = sigma > 0
        safe = tf.where(on, sigma, tf.ones_like(sigma))
        return tf.where(on, safe * tf.math.softplus((J - threshold) / safe), J - threshold)

    def spike(self, spiked, distance):
        """0/1 spikes; with a surrogate derivative in ``"surrogate"`` training (per
        neuron: each neuron's surrogate kind and scale)."""
        if self.training != "surrogate":
            return tf.cast(spiked, self.dtype)
        if distance is None:
            self.spike_distance_required()
        spikes = None
        kinds = getattr(self, "surrogates", None) or {self.surrogate: None}
        for kind, mask in kinds.items():
            part = surrogate_spikes(spiked, distance, kind, self.scale)
            if mask is None:
                return part
            part = tf.where(mask, part, tf.zeros_like(part))
            spikes = part if spikes is None else spikes + part
        return spikes

    def spike_count(self, count, proxy):
        """Integer spike counts; straight-through (gradient of ``proxy``) in training."""
        if self.training == "surrogate":
            return straight_through(count, proxy)
        return count

    #: sub-step loops up to this many iterations are unrolled, longer ones run as a
    #: ``tf.while_loop`` (see benchmarks/bench_substeps.py)
    unroll_substeps = 8

    def substep_loop(self, n, body, values):
        """``values = body(*values)``, ``n`` times (``n`` is a Python int)."""
        if n <= self.unroll_substeps:
            for _ in range(n):
                values = body(*values)
            return values
        return tf.while_loop(lambda *_: True, body, values, maximum_iterations=n)

    def propagator(self, matrix, h):
        """``(phi, gamma)`` of ``expm([[A, I], [0, 0]] h)`` for the rows ``matrix`` of
        ``A`` (see :mod:`neurogen.propagators`), indexed ``[i, j]`` first, then per
        neuron; differentiable (``tf.linalg.expm``).  With constant parameters and
        ``h = dt`` its inputs are constants, which TensorFlow folds."""
        k = len(matrix)
        h = tf.cast(h, self.dtype)
        scaled = [[tf.cast(a, self.dtype) * h for a in row] for row in matrix]
        zero = sum(a for row in scaled for a in row) * 0  # broadcasts to the common shape
        eye = [[h + zero if i == j else zero for j in range(k)] for i in range(k)]
        rows = [[a + zero for a in scaled[i]] + eye[i] for i in range(k)]
        rows += [[zero] * (2 * k) for _ in range(k)]
        exp = tf.linalg.expm(tf.stack([tf.stack(r, axis=-1) for r in rows], axis=-2))
        exp = tf.experimental.numpy.moveaxis(exp, [-2, -1], [0, 1])
        return exp[:k, :k], exp[:k, k:]

    def training_step(self, J, dt, **state):
        """Differentiable steady-state rate, interpolated from the simulated f-I curve."""
        return tf_table_rate(self.smooth(J), *self.rate_table)

    #: classes the spec binds; NengoDL runs them with this builder too
    bound_classes = ()

    @classmethod
    def register(cls, override=False):
        """Register with NengoDL for the generated type and its bound classes.

        A bound class keeps NengoDL's own builder where it has one (such as
        ``nengo.LIF``, with its ``lif_smoothing``), unless ``override`` is true.
        """
        impl = SimNeuronsBuilder.TF_NEURON_IMPL
        impl[cls.neuron_type] = cls
        for bound in cls.bound_classes:
            if override or bound not in impl:
                impl[bound] = cls
