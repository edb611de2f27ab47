"""Base class of the generated NengoDL builders (imports TensorFlow and NengoDL).

A generated builder only adds its ``step`` (and, for closed-form rates, its
``training_step``); parameters, training modes, surrogate spikes, rate tables and
smoothing live here.
"""

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import smart_cond
from nengo.exceptions import BuildError
from nengo_dl import builder as _dl_builder
from nengo_dl import compat
from nengo_dl.builder import OpBuilder
from nengo_dl.neuron_builders import SimNeuronsBuilder, TFNeuronBuilder

from .noise_runtime import SimStochasticNeurons
from .runtime import per_neuron_tables, stacked_tables
from .trainable import bounds, from_raw, mark_signals
from .tf_runtime import straight_through, surrogate_spikes, tf_table_rate

__all__ = ["GeneratedBuilder", "SimNeuronsBuilder", "tf"]

# stochastic neuron types build this SimNeurons subclass (see neurogen.noise_runtime);
# NengoDL looks op builders up by exact type
_dl_builder.Builder.builders.setdefault(SimStochasticNeurons, SimNeuronsBuilder)

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
        # (not TFNeuronBuilder's: its ``amplitude == 1`` test fails for arrays)
        OpBuilder.build_pre(self, signals, config)
        self.J_data = signals.combine([op.J for op in self.ops])
        self.output_data = signals.combine([op.output for op in self.ops])
        self.state_data = {
            state: signals.combine([compat.neuron_state(op)[state] for op in self.ops])
            for state in compat.neuron_state(self.ops[0])
        }
        neurons = [op.neurons for op in self.ops]
        sizes = [op.J.shape[0] for op in self.ops]
        self.params = {
            name: self.parameter_constant(neurons, sizes, name, signals.dtype)
            for name in self.parameters
        }
        self._build_trainable(signals, config, neurons, sizes)
        self.alpha = self.params.get("amplitude", 1) / signals.dt
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

    def _build_trainable(self, signals, config, neurons, sizes):
        """Parameters read from signals (see :mod:`neurogen.trainable`), for groups
        where some ensemble learns some parameter (``op.learned``)."""
        self.trainable = {}
        learned = [getattr(op, "learned", ()) if getattr(op, "parameter_signals", None) else ()
                   for op in self.ops]
        trained = set().union(*learned)
        if not trained:
            return
        if not config.inference_only and self.neuron_type.rate_table_options is not None:
            if any(getattr(n, "training", "rate") == "rate" and names for n, names in zip(neurons, learned)):
                raise BuildError(
                    f"{self.neuron_type.__name__}'s rate is a simulated table, which does not "
                    "follow its parameters: train them with training='surrogate'")
        for name in sorted(trained):
            data = signals.combine([op.parameter_signals[name] for op in self.ops])
            learn = [name in names for names in learned]
            mask = None if all(learn) else self._constant(learn, sizes, tf.bool)
            self.trainable[name] = (data, bounds(neurons[0], name), mask, self.params[name])

    def guarded(self, value, like):
        """``value`` (a parameter, read where a mask drops some neurons) per neuron,
        with non-finite gradients set to 0 (see ``neurogen.backends``); unchanged
        where no parameter is trained."""
        if not getattr(self, "trainable", None):
            return value
        return _finite_gradient(value + tf.zeros_like(like))

    def read_parameters(self, signals):
        """``self.params`` with the trainable parameters' live values: called at
        each step (the variables change during training)."""
        for name, (data, (low, high), mask, constant) in self.trainable.items():
            raw = tf.reshape(signals.gather(data), (1, -1))
            value = from_raw(raw, low, high, ops=tf.math)
            if mask is not None:  # learned by some ensembles: the others keep their values
                value = tf.where(mask, value, tf.cast(constant, value.dtype))
            self.params[name] = value

    @staticmethod
    def parameter_constant(neurons, sizes, name, dtype):
        """Parameter ``name`` of a group: a scalar where all neurons share one value,
        else one value per neuron (shape ``(1, n)``, broadcast over the minibatch);
        each instance's value is a number or an array of one value per neuron."""
        values = [getattr(n, name) for n in neurons]
        for n, value, size in zip(neurons, values, sizes):
            if np.ndim(value) not in (0, 1) or np.size(value) not in (1, size):
                raise BuildError(
                    f"{type(n).__name__}.{name} has shape {np.shape(value)}, but its "
                    f"ensemble has {size} neurons (build it with nengo's builder, which "
                    "samples distributions)")
        if all(np.ndim(v) == 0 for v in values) and all(v == values[0] for v in values):
            return tf.constant(values[0], dtype)
        per_neuron = np.concatenate([np.broadcast_to(np.asarray(v, float), (k,)) for v, k in zip(values, sizes)])
        return tf.constant(per_neuron.reshape(1, -1), dtype)

    def _constant(self, values, sizes, dtype=None):
        """One value per instance -> a constant: scalar if all equal, else per neuron."""
        return tf.constant(_values(values, sizes), dtype or self.dtype)

    def _per_neuron(self, keys, sizes):
        """``{key: mask}`` of the neurons with each distinct ``key`` (None: one key)."""
        if len(set(keys)) == 1:
            return {keys[0][0]: None}
        return {k[0]: self._constant([key == k for key in keys], sizes, tf.bool) for k in set(keys)}

    #: run ``step`` as one XLA-compiled function (``tf.function(jit_compile=True)``):
    #: one fused kernel per step instead of one kernel per elementwise op.  Set
    #: ``GeneratedBuilder.fuse = False`` (or on one generated builder class) before
    #: building a simulator to run the plain TensorFlow ops; each builder keeps the
    #: value it saw first.
    fuse = True
    #: smallest group (minibatch x neurons) that is fused: below it the compiled
    #: call's own overhead (about 0.1 ms per step on a CPU) costs more than the
    #: kernel launches it saves
    fuse_min_size = 32768

    def build_step(self, signals, **step_kwargs):
        """NengoDL's step, with ``step`` fused (see :attr:`fuse`).  While training in
        ``"rate"`` mode: ``training_step``, states held.  Where the group mixes
        ``"rate"`` and ``"surrogate"`` training: the rate neurons output their rate
        and hold their states, the others run the (surrogate-gradient) step."""
        self.read_parameters(signals)
        if getattr(self, "draws", 0):
            self.draw_position(signals)
        J = signals.gather(self.J_data)
        state = {s: signals.gather(d) for s, d in self.state_data.items()}
        if self.training == "surrogate" and not self.config.inference_only:
            # a value masked out by a `where` (a state past a reset, exp of a large
            # number) can be non-finite, and its gradient 0 * inf is NaN: through
            # time, it would reach every weight.  Zero such gradients at the inputs.
            J = _finite_gradient(J)
            state = {s: _finite_gradient(x) for s, x in state.items()}
            self.params.update({k: _finite_gradient(v) for k, v in self.params.items()
                                if k in self.trainable})
        stepped = tf.nest.flatten(self.fused_step(J, signals.dt, **state))
        if len(stepped) != 1 + len(state):
            raise ValueError(f"`{type(self).__name__}.step` must return the output and {len(state)} states")
        if self.rate_mask is not None:
            def training():
                rate = self.training_step(J, signals.dt, **state)
                held = [tf.where(self.rate_mask, old, new) for old, new in zip(state.values(), stepped[1:])]
                return (tf.where(self.rate_mask, rate, stepped[0]), *held)

            out = smart_cond.smart_cond(self.config.training, training, lambda: tuple(stepped))
        elif self.spiking and not self.config.inference_only:
            out = smart_cond.smart_cond(
                self.config.training,
                lambda: (self.training_step(J, signals.dt, **state), *state.values()),
                # stop_gradient: no NaNs from the unused branch's gradient (as NengoDL)
                lambda: tuple(tf.stop_gradient(x) for x in stepped),
            )
        else:
            out = stepped
        out = tf.nest.flatten(out)
        signals.scatter(self.output_data, out[0])
        for state_data, value in zip(self.state_data.values(), out[1:]):
            signals.scatter(state_data, value)

    def fused_step(self, J, dt, **state):
        """``step``, compiled by XLA where :attr:`fuse` is on.  Every tensor the
        builder holds (``self.params``: constants, per-neuron tensors or variables;
        surrogate scales, masks, ...) goes in as an argument, so the compiled function
        captures no tensor of another graph (which breaks its gradient in a loop)."""
        if not self._fusing(J):
            return self.step(J, dt, **state)
        graph = tf.compat.v1.get_default_graph()
        if getattr(self, "_fused", (None,))[0] is not graph:
            self._fused = (graph, tf.function(self._step_with, jit_compile=True, autograph=False))
        return self._fused[1](self._tensor_attributes(), J, dt, state)

    def _tensor_attributes(self):
        """The builder's attributes that are tensors or structures of tensors."""
        def plain(x):
            return tf.is_tensor(x) or isinstance(x, (bool, int, float, str, type(None)))

        out = {}
        for name, value in vars(self).items():
            leaves = tf.nest.flatten(value) if isinstance(value, (dict, list, tuple)) else [value]
            if any(tf.is_tensor(x) for x in leaves) and all(plain(x) for x in leaves):
                out[name] = value
        return out

    def _fusing(self, J):
        """Whether to fuse: decided once per builder (NengoDL rebuilds its graph on
        fit, predict, ...) from :attr:`fuse` and the group's size."""
        if "_fuse" not in self.__dict__:
            size = J.shape.num_elements()
            self._fuse = bool(self.fuse) and (size is None or size >= self.fuse_min_size)
        return self._fuse

    def _step_with(self, attributes, J, dt, state):
        """``step`` with ``attributes`` (the arguments) in place of the builder's own."""
        own = {name: getattr(self, name) for name in attributes}
        vars(self).update(attributes)
        try:
            return self.step(J, dt, **state)
        finally:
            vars(self).update(own)

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
            tables = [per_neuron_tables(n, k, options) for n, k in zip(neurons, sizes)]
            tables = [t for per_op in tables for t in per_op]  # one per neuron
            if all(t is tables[0] for t in tables):  # one shared table (the usual case)
                arrays = (tables[0].threshold, tables[0].high, tables[0].values)
            else:
                arrays = stacked_tables(tables, [1] * len(tables))
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
        """``values = body(*values)``, ``n`` times (``n`` is a Python int): unrolled
        up to :attr:`unroll_substeps`, else a ``tf.while_loop``.  A step with random
        draws is always unrolled: each traced pass of ``body`` gets its own seeds,
        while a ``tf.while_loop`` would repeat one sub-step's numbers."""
        if n <= self.unroll_substeps or self.draws:
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

    #: how many random draws (``Draw`` statements) the step makes
    draws = 0

    def build_random(self, signals, config):
        """Seeds of the step's random draws (stochastic specs call this after
        ``build_pre``): one op seed per draw from the simulator's seed
        (``config.rng``), and the simulator's step counter, which makes each step's
        numbers new and a run with the same seed repeat them exactly."""
        self.op_seeds = tf.constant(config.rng.randint(np.iinfo(np.int32).max, size=max(self.draws, 1)), tf.int64)
        steps = [s for s in signals if s.name == "step" and s.ndim == 0 and np.issubdtype(s.dtype, np.integer)]
        if len(steps) != 1:
            raise BuildError(f"{self.neuron_type.__name__}: cannot find the simulator's step counter")
        self.step_data, self.passes = signals[steps[0]], 0

    def draw_position(self, signals):
        """Where this pass of the step is in the run (called by ``build_step`` before
        ``step``, outside any fused function): the simulator's step counter, and how
        often the step was built before in this graph (NengoDL's unrolled steps)."""
        self.step_now = tf.cast(tf.reshape(signals.gather(self.step_data), ()), tf.int64)
        self.pass_now = tf.constant(self.passes, tf.int64)
        self.passes += 1
        self.calls = [0] * max(self.draws, 1)

    def seed(self, index):
        """The stateless seed of draw ``index`` at this step: (op seed, step), the op
        seed shifted by the pass (see :meth:`draw_position`) and by how often the draw
        was built before in this pass (a sub-step loop run in Python), so that each
        draw has its own numbers."""
        calls, self.calls[index] = self.calls[index], self.calls[index] + 1
        shift = self.pass_now * 1024 + calls
        return tf.stack([self.op_seeds[index] + shift, self.step_now])

    def rand(self, index, like):
        """Uniform numbers on [0, 1), one per element of ``like`` (stateless)."""
        return tf.random.stateless_uniform(tf.shape(like), self.seed(index), dtype=like.dtype, alg="philox")

    def randn(self, index, like):
        """Standard normal numbers, one per element of ``like`` (stateless)."""
        return tf.random.stateless_normal(tf.shape(like), self.seed(index), dtype=like.dtype, alg="philox")

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


@tf.custom_gradient
def _finite_gradient(x):
    """Identity; its gradient replaces non-finite values by 0."""
    def grad(dy):
        return tf.where(tf.math.is_finite(dy), dy, tf.zeros_like(dy))
    return tf.identity(x), grad


def _install_mark_signals():
    """NengoDL marks trainable signals in ``TensorGraph.mark_signals``; mark the
    neuron parameters' signals right after (once per process)."""
    from nengo_dl.tensor_graph import TensorGraph

    original = TensorGraph.mark_signals
    if getattr(original, "neurogen", False):
        return

    def marked(self):
        original(self)
        mark_signals(self)

    marked.neurogen = True
    TensorGraph.mark_signals = marked


_install_mark_signals()
