"""Base class of the generated NengoDL builders (imports TensorFlow and NengoDL).

A generated builder only adds its ``step`` (and, for closed-form rates, its
``training_step``); parameters, training modes, surrogate spikes, rate tables and
smoothing live here.
"""

import tensorflow as tf
from nengo.exceptions import BuildError
from nengo_dl.neuron_builders import SimNeuronsBuilder, TFNeuronBuilder

from .runtime import (
    rate_table,
    smooth_threshold,
    stacked_tables,
    straight_through,
    surrogate_spikes,
    tf_table_rate,
)

__all__ = ["GeneratedBuilder", "SimNeuronsBuilder", "tf"]

TRAINING_OPTIONS = ("training", "surrogate", "surrogate_scale", "smoothing")


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
        # NengoDL calls build_pre again on the same builder when it rebuilds its
        # model (fit, evaluate, ...): start from the class's value each time
        self.spiking = type(self).spiking
        self.training = "rate"
        if not self.spiking:
            return
        options = {self._training_options(n) for n in neurons}
        if len(options) > 1:
            raise BuildError(
                f"{type(neurons[0]).__name__} instances in one group must share their "
                f"training options ({', '.join(TRAINING_OPTIONS)}); got {sorted(options)}"
            )
        self.training, self.surrogate, self.scale, smoothing = options.pop()
        smoothing = smoothing or config.lif_smoothing or 0
        if self.training == "surrogate":
            self.spiking = False  # NengoDL then runs `step` while training, too
        elif not config.inference_only:
            self._build_rate(neurons, sizes, signals, smoothing)

    def _training_options(self, neurons):
        defaults = self.neuron_type.training_defaults
        return tuple(getattr(neurons, k, defaults[k]) for k in TRAINING_OPTIONS)

    def spike_distance_required(self):
        raise BuildError(
            f"{self.neuron_type.__name__}: surrogate training needs a spike condition "
            "of the form 'state > threshold'"
        )

    def _build_rate(self, neurons, sizes, signals, smoothing):
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
        elif smoothing:
            threshold = self.threshold_current(**self.params)
            if threshold is None:
                raise BuildError(
                    f"smoothing needs the firing threshold of {self.neuron_type.__name__}: "
                    "add `threshold` to the spec's [rate] section"
                )
        self.smoothing = None
        if smoothing:
            self.smoothing = (tf.cast(threshold, signals.dtype), tf.constant(smoothing, signals.dtype))

    def threshold_current(self, **params):
        """Current at which firing starts (None where unknown)."""
        return None

    def smooth(self, J):
        """The input current with the rate's threshold smoothed (if configured)."""
        if self.smoothing is None:
            return J
        return smooth_threshold(J, *self.smoothing)

    def spike(self, spiked, distance):
        """0/1 spikes; with a surrogate derivative in ``"surrogate"`` training."""
        if self.training == "surrogate":
            if distance is None:
                self.spike_distance_required()
            return surrogate_spikes(spiked, distance, self.surrogate, self.scale)
        return tf.cast(spiked, self.dtype)

    def spike_count(self, count, proxy):
        """Integer spike counts; straight-through (gradient of ``proxy``) in training."""
        if self.training == "surrogate":
            return straight_through(count, proxy)
        return count

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
