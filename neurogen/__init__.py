"""neurogen: compile neuron specs into nengo neuron types and NengoDL builders."""

__version__ = "0.1.0"


def learned_parameters(sim, ens):
    """``{name: per-neuron array}`` of ``ens``'s live neuron parameters (see
    :mod:`neurogen.trainable`)."""
    from .trainable import learned_parameters

    return learned_parameters(sim, ens)


def freeze_parameters(sim, net):
    """Write NengoDL's live neuron parameters into ``net``'s neuron types (see
    :mod:`neurogen.trainable`)."""
    from .trainable import freeze_parameters

    return freeze_parameters(sim, net)
