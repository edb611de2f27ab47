"""Trainable neuron parameters in NengoDL: bounds, read-back and freezing.

A generated type built with ``trainable=("tau_rc", ...)`` gets, per ensemble, one
signal per parameter (``model.sig[ens.neurons]["neurogen:<name>"]``), read by the
``SimNeurons`` operator.  An ensemble learns them where NengoDL trains its bias
(so ``net.config[obj].trainable = False`` switches them off); they are NengoDL
trainable variables (``sim.fit``, ``sim.save_params`` / ``load_params``), and the
builder reads each learned parameter from them (see :func:`mark_signals` for how
ensembles of one type keep sharing one operator group).

Bounds hold by reparametrisation: the signal holds an unconstrained ``raw``
value and the parameter is ``low + softplus(raw)`` (low bound), ``high -
softplus(raw)`` (high bound), ``low + (high - low) * sigmoid(raw)`` (both), or
``raw`` (none), kept :data:`AT_BOUND` (relative) inside each bound.  Open and
closed bounds are treated alike: the value never reaches the bound (an initial
value on a closed bound starts that far inside it).
"""

import numpy as np
from nengo.exceptions import BuildError

__all__ = ["learned_parameters", "freeze_parameters"]

#: distance from a closed bound of an initial value that sits on the bound
AT_BOUND = 1e-6
PREFIX = "neurogen:"


def bounds(neuron_type, name):
    """``(low, high)`` of parameter ``name`` (None where unbounded)."""
    param = getattr(type(neuron_type), name)
    low = None if param.low is None or not np.isfinite(param.low) else float(param.low)
    high = None if param.high is None or not np.isfinite(param.high) else float(param.high)
    return low, high


def to_raw(value, low, high):
    """The unconstrained value whose transform is ``value`` (NumPy)."""
    value = np.asarray(value, dtype=float)
    if low is not None and high is not None:
        frac = np.clip((value - low) / (high - low), AT_BOUND, 1 - AT_BOUND)
        return np.log(frac) - np.log1p(-frac)
    if low is None and high is None:
        return value
    bound = low if low is not None else high
    gap = np.maximum(np.abs(value - bound), AT_BOUND * max(1.0, abs(bound)))
    return gap + np.log(-np.expm1(-gap))  # inverse softplus, stable for large gaps


def from_raw(raw, low, high, ops=None):
    """The parameter of an unconstrained ``raw`` value (NumPy, or TensorFlow with
    ``ops=tf.math``); at least :data:`AT_BOUND` (relative) inside each bound, so it
    stays inside in float32 too, where softplus and sigmoid saturate."""
    ops = ops or _NumPyOps
    if low is not None and high is not None:
        frac = ops.minimum(ops.maximum(ops.sigmoid(raw), AT_BOUND), 1 - AT_BOUND)
        return low + (high - low) * frac
    if low is None and high is None:
        return raw
    bound = low if low is not None else high
    gap = ops.maximum(ops.softplus(raw), AT_BOUND * max(1.0, abs(bound)))
    return bound + gap if low is not None else bound - gap


class _NumPyOps:
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)

    @staticmethod
    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    @staticmethod
    def softplus(x):
        return np.logaddexp(0, x)


def add_signals(model, key, neuron_type, op, n_neurons):
    """One signal per parameter (the raw values) for ``op``, the operator of the
    neurons ``key`` (``ens.neurons``; None: an operator not built from an ensemble);
    they are trainable until :func:`mark_signals` decides otherwise."""
    from nengo.builder import Signal

    op.parameter_signals = {}
    for name in neuron_type.builder_parameters():
        value = np.broadcast_to(getattr(neuron_type, name), (n_neurons,))
        sig = Signal(to_raw(value, *bounds(neuron_type, name)), name=f"{key or op}.{name}")
        if key is not None:
            model.sig[key][PREFIX + name] = sig
        op.reads.append(sig)
        op.parameter_signals[name] = sig
    op.learned = tuple(neuron_type.trainable)


def mark_signals(tensor_graph):
    """After NengoDL's ``mark_signals`` (before it merges operators): an ensemble
    learns its type's ``trainable`` parameters where its bias is trainable (NengoDL's
    config, ``inference_only``), recorded as ``op.learned``.

    NengoDL merges operators only where their signals match in number and in
    trainable flags, so all ensembles of a neuron type get the same signals: where
    some ensemble of the type learns, every one of them reads trainable parameter
    signals (those it does not learn have their gradient cut in the builder);
    where none does, none reads any, and the builder uses constants."""
    from nengo.builder.neurons import SimNeurons

    model = tensor_graph.model
    owners = {id(sigs["out"]): (key, sigs) for key, sigs in list(model.sig.items())
              if "out" in sigs and "bias" in sigs}
    by_type = {}
    for op in model.operators:
        if isinstance(op, SimNeurons) and hasattr(op.neurons, "builder_parameters"):
            by_type.setdefault(type(op.neurons), []).append(op)
    for ops in by_type.values():
        for op in ops:
            key, sigs = owners.get(id(op.output), (None, {}))
            if op.neurons.trainable and key is None:
                raise BuildError(
                    f"{type(op.neurons).__name__}: trainable parameters need the ensemble "
                    "built by nengo's ensemble builder (neurogen adds their signals there)")
            on = key is not None and bool(sigs["bias"].trainable)
            op.learned = tuple(op.neurons.trainable) if on else ()
        learning = any(op.learned for op in ops)
        for op in ops:
            key, sigs = owners.get(id(op.output), (None, {}))
            if not learning:
                _remove_signals(op, sigs)
                continue
            if not getattr(op, "parameter_signals", None):
                learned = op.learned
                add_signals(model, key, op.neurons, op, op.J.shape[0])
                op.learned = learned
            for sig in op.parameter_signals.values():
                sig.trainable = sig.base.trainable = True
                sig.minibatched = sig.base.minibatched = False


def _remove_signals(op, sigs):
    for name, sig in getattr(op, "parameter_signals", {}).items():
        op.reads.remove(sig)
        sigs.pop(PREFIX + name, None)
    op.parameter_signals = {}


def _operator(sim, ens):
    from nengo.builder.neurons import SimNeurons

    out = sim.model.sig[ens.neurons]["out"]
    for op in sim.model.operators:
        if isinstance(op, SimNeurons) and op.output is out:
            return op
    raise KeyError(f"{ens} is not built in this simulator")


def learned_parameters(sim, ens):
    """``{name: per-neuron array}``: the live parameter values of ``ens``'s neurons
    in NengoDL simulator ``sim`` (trained ones included), or in a nengo Simulator."""
    op = _operator(sim, ens)
    neuron_type = op.neurons
    values = {}
    signals = getattr(op, "parameter_signals", {})
    for name in neuron_type.builder_parameters():
        if name in getattr(op, "learned", ()) and hasattr(sim, "tensor_graph"):
            raw = sim.data.get_params((ens.neurons, PREFIX + name))[0]
            raw = np.asarray(raw, dtype=sim.tensor_graph.dtype)  # as NengoDL computes it
            value = from_raw(raw, *bounds(neuron_type, name), ops=_NumPyOps)
        else:
            value = getattr(neuron_type, name)
        values[name] = np.array(np.broadcast_to(value, (ens.n_neurons,)), dtype=float)
    return values


def freeze_parameters(sim, net):
    """Write the live parameters of every generated-type ensemble of ``net`` into its
    neuron type (a new instance per ensemble, per-neuron arrays), so that
    ``nengo.Simulator(net)`` runs the values NengoDL trained."""
    for ens in net.all_ensembles:
        if hasattr(ens.neuron_type, "builder_parameters"):  # a generated type
            state = ens.neuron_type.__getstate__()  # (as parameters.with_values)
            state.update(learned_parameters(sim, ens))
            frozen = type(ens.neuron_type).__new__(type(ens.neuron_type))
            frozen.__setstate__(state)
            ens.neuron_type = frozen
