"""neurogen: compile neuron specs into nengo neuron types and NengoDL builders."""

__version__ = "0.1.0"
