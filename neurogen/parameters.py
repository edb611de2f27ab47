"""Per-neuron parameters of the generated neuron types (NumPy side, no TensorFlow).

Every parameter of a generated type is a :class:`PerNeuronParam`: a number, an
array of one value per neuron, or a nengo ``Distribution``.  Distributions are
sampled when an ensemble is built (:func:`build_ensemble`), so the operator that
nengo core and NengoDL run holds a copy of the neuron type with concrete arrays.

Methods that take a scalar parameter set (``gain_bias``, tabulated or simulated
``rates``) run once per distinct parameter set (:func:`groups`), on a scalar copy
of the neuron type, so a per-neuron ensemble behaves exactly as separate scalar
ensembles.  Closed-form rates and the NumPy ``step`` broadcast the arrays directly.
"""

import weakref

import numpy as np
import nengo
from nengo.builder import Builder
from nengo.dists import Distribution
from nengo.exceptions import ValidationError
from nengo.params import NumberParam, Parameter

__all__ = ["PerNeuronParam", "TrainableParam", "PerNeuron", "groups", "grouped", "grouped_rates", "concrete"]


class PerNeuronParam(NumberParam):
    """A number, a 1-D array (one value per neuron) or a ``Distribution``.

    ``low`` / ``high`` (open or closed) are checked for every element; arrays are
    stored as read-only float arrays.
    """

    def coerce(self, instance, value):  # pylint: disable=arguments-renamed
        if isinstance(value, Distribution):
            return value
        if isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) > 0:
            array = np.array(value, dtype=float)
            if array.ndim != 1 or array.size == 0:
                raise ValidationError(
                    f"must be a number, a 1-D array with one value per neuron or a "
                    f"Distribution; got an array of shape {array.shape}",
                    attr=self.name, obj=instance)
            for element in array:  # the number checks, elementwise
                NumberParam.coerce(self, instance, float(element))
            array.setflags(write=False)
            return array
        return super().coerce(instance, value)

    def hashvalue(self, instance):
        value = self.__get__(instance, None)
        if isinstance(value, np.ndarray):
            return ("array", tuple(value.tolist()))
        return value


def _param_names(neuron_type):
    return [p.name for p in neuron_type._params if isinstance(p, PerNeuronParam)]


def per_neuron_values(neuron_type):
    """``{name: array}`` of the parameters that hold one value per neuron."""
    return {
        name: value for name in _param_names(neuron_type)
        if isinstance(value := getattr(neuron_type, name), np.ndarray)
    }


def distributions(neuron_type):
    """``{name: Distribution}`` of the parameters still to be sampled."""
    return {
        name: value for name in _param_names(neuron_type)
        if isinstance(value := getattr(neuron_type, name), Distribution)
    }


def with_values(neuron_type, **values):
    """A copy of ``neuron_type`` with some parameters replaced (checked as usual)."""
    state = neuron_type.__getstate__()
    state.update(values)
    copy = type(neuron_type).__new__(type(neuron_type))
    copy.__setstate__(state)
    return copy


class TrainableParam(Parameter):
    """Names of the parameters that NengoDL trains (a tuple; see :mod:`neurogen.trainable`)."""

    equatable = True

    def coerce(self, instance, value):  # pylint: disable=arguments-renamed
        value = (value,) if isinstance(value, str) else tuple(value or ())
        names = _param_names(instance)
        unknown = [v for v in value if v not in names]
        if unknown:
            raise ValidationError(
                f"cannot train {', '.join(map(repr, unknown))}: not a parameter of "
                f"{type(instance).__name__} (its parameters: {', '.join(names)})",
                attr=self.name, obj=instance)
        return super().coerce(instance, tuple(dict.fromkeys(value)))


class PerNeuron:
    """Mixin of the generated types: per-neuron ``gain_bias`` / ``max_rates_intercepts``
    (one call per distinct parameter set) on top of the base class's scalar ones."""

    def builder_parameters(self):
        """Names of the parameters (one value per neuron, or shared)."""
        return _param_names(self)

    def gain_bias(self, max_rates, intercepts):
        if per_neuron_values(self) or distributions(self):
            return grouped(_built(self, max_rates), "gain_bias", max_rates, intercepts)
        return super().gain_bias(max_rates, intercepts)

    def max_rates_intercepts(self, gain, bias):
        if per_neuron_values(self) or distributions(self):
            return grouped(_built(self, gain), "max_rates_intercepts", gain, bias)
        return super().max_rates_intercepts(gain, bias)

    def rates(self, x, gain, bias):
        if per_neuron_values(self) or distributions(self):
            return grouped_rates(_built(self, gain), type(self).rates, x, gain, bias)
        return super().rates(x, gain, bias)


#: id(neuron type with distributions) -> (weak reference, {n_neurons: the neuron
#: type as last built for an ensemble of n_neurons})
_BUILT = {}


def _built(neuron_type, per_neuron):
    """For a type with distributions, the copy last built with as many neurons as
    ``per_neuron`` has values (NengoDL's ``sim.data[ens]`` asks the ensemble's own
    type for ``max_rates_intercepts``); else ``neuron_type`` itself."""
    if not distributions(neuron_type):
        return neuron_type
    ref, by_size = _BUILT.get(id(neuron_type), (None, {}))
    n = np.size(per_neuron)
    if ref is not None and ref() is neuron_type and n in by_size:
        return by_size[n]
    return neuron_type  # (groups() then raises a clear error)


def _remember(neuron_type, built, n_neurons):
    ref, by_size = _BUILT.get(id(neuron_type), (None, {}))
    if ref is None or ref() is not neuron_type:
        ref, by_size = weakref.ref(neuron_type, lambda _, key=id(neuron_type): _BUILT.pop(key, None)), {}
        _BUILT[id(neuron_type)] = (ref, by_size)
    by_size[n_neurons] = built


def _check_concrete(neuron_type):
    dists = distributions(neuron_type)
    if dists:
        raise ValidationError(
            f"{', '.join(dists)} of {type(neuron_type).__name__} is a Distribution, "
            "sampled only when the ensemble is built; use the built neuron type "
            "(sim.model.sig / the SimNeurons operator) or pass an array",
            attr=next(iter(dists)), obj=neuron_type)


def groups(neuron_type, n_neurons=None):
    """``[(scalar copy, neuron indices)]``: one scalar neuron type per distinct
    parameter set, in order of first appearance."""
    _check_concrete(neuron_type)
    arrays = per_neuron_values(neuron_type)
    if not arrays:
        return [(neuron_type, slice(None))]
    n = n_neurons if n_neurons is not None else len(next(iter(arrays.values())))
    check_sizes(neuron_type, n)
    names = list(arrays)
    rows = np.stack([np.broadcast_to(arrays[k], (n,)) for k in names], axis=1)
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    result = []
    for g in np.argsort(first):  # in order of first appearance
        values = {k: float(v) for k, v in zip(names, rows[first[g]])}
        result.append((with_values(neuron_type, **values), np.flatnonzero(inverse == g)))
    return result


def check_sizes(neuron_type, n_neurons, what="the ensemble"):
    """ValidationError naming the parameter when an array's length is not ``n_neurons``."""
    for name, value in per_neuron_values(neuron_type).items():
        if value.shape != (n_neurons,):
            raise ValidationError(
                f"{type(neuron_type).__name__}.{name} has {value.size} values, but "
                f"{what} has {n_neurons} neurons (give one value per neuron, or a scalar)",
                attr=name, obj=neuron_type)


def grouped(neuron_type, method, *arrays):
    """``method`` (a name) of each scalar group on its neurons' elements of
    ``arrays`` (one value per neuron), reassembled per neuron."""
    arrays = [np.atleast_1d(np.asarray(a)) for a in arrays]
    n = max(a.shape[-1] for a in arrays)
    arrays = [np.broadcast_to(a, a.shape[:-1] + (n,)) for a in arrays]
    outputs = None
    for scalar, idx in groups(neuron_type, n):
        parts = getattr(type(scalar), method)(scalar, *[a[..., idx] for a in arrays])
        parts = parts if isinstance(parts, tuple) else (parts,)
        if outputs is None:
            outputs = [np.zeros(np.shape(p)[:-1] + (n,), np.result_type(p)) for p in parts]
        for out, part in zip(outputs, parts):
            out[..., idx] = part
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


def grouped_rates(neuron_type, method, x, gain, bias):
    """``rates(x, gain, bias)`` of each scalar group on its neurons (``x`` of shape
    ``(n_samples,)`` is shared, ``(n_samples, n_neurons)`` is split)."""
    x = np.asarray(np.atleast_1d(x), dtype=float)
    gain = np.asarray(np.atleast_1d(gain), dtype=float)
    bias = np.asarray(np.atleast_1d(bias), dtype=float)
    n = gain.shape[0]
    out = np.zeros((x.shape[0], n))
    for scalar, idx in groups(neuron_type, n):
        part_x = x[:, idx] if x.ndim == 2 else x
        out[:, idx] = method(scalar, part_x, gain[idx], bias[idx])
    return out


def concrete(neuron_type, n_neurons, rng):
    """``neuron_type`` with its distributions sampled (in the parameters' order,
    with ``rng``) and every array checked to have ``n_neurons`` values."""
    dists = distributions(neuron_type)
    if dists:
        values = {name: np.asarray(dist.sample(n_neurons, rng=rng), dtype=float).reshape(n_neurons)
                  for name, dist in dists.items()}
        neuron_type = with_values(neuron_type, **values)
    check_sizes(neuron_type, n_neurons)
    return neuron_type


#: offset of the seed of the stream that samples parameter distributions from the
#: ensemble's seed (nengo uses the seed for encoders etc. and ``seed + 1`` for states)
SEED_OFFSET = 2


def build_ensemble(model, ens, *args, **kwargs):
    """nengo's ensemble builder, with the distributions of a generated neuron type
    sampled first (with ``RandomState(model.seeds[ens] + SEED_OFFSET)``), so that
    ``gain_bias`` and the ``SimNeurons`` operator see the same per-neuron arrays."""
    neuron_type = ens.neuron_type
    if not isinstance(neuron_type, PerNeuron):
        return _NENGO_BUILD_ENSEMBLE(model, ens, *args, **kwargs)
    rng = np.random.RandomState((model.seeds[ens] + SEED_OFFSET) % 2**32)
    built = concrete(neuron_type, ens.n_neurons, rng)
    if built is not neuron_type:
        _remember(neuron_type, built, ens.n_neurons)
    ens.neuron_type = built
    try:
        result = _NENGO_BUILD_ENSEMBLE(model, ens, *args, **kwargs)
    finally:
        ens.neuron_type = neuron_type
    if getattr(built, "trainable", ()):
        from .trainable import add_signals

        out = model.sig[ens.neurons]["out"]
        op = next(op for op in reversed(model.operators) if getattr(op, "output", None) is out)
        add_signals(model, ens.neurons, built, op, ens.n_neurons)
    return result


_NENGO_BUILD_ENSEMBLE = Builder.builders[nengo.Ensemble]
if getattr(_NENGO_BUILD_ENSEMBLE, "__module__", None) == __name__:  # module reloaded
    _NENGO_BUILD_ENSEMBLE = _NENGO_BUILD_ENSEMBLE.nengo_builder
build_ensemble.nengo_builder = _NENGO_BUILD_ENSEMBLE
Builder.builders[nengo.Ensemble] = build_ensemble
