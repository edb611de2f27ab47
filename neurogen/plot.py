"""``neurogen plot``: the f-I curve with the rate approximation over it, and the
state traces of a step input with the spikes marked.

The step and the currents default to what the model needs (:mod:`neurogen.defaults`):
its firing threshold and the largest ``dt`` at which it simulates reliably.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .defaults import (
    compiled_module, current_range, initial_state, is_stochastic, step_needed, table_dt,
    table_range, threshold_current,
)

FORMATS = (".png", ".svg", ".pdf")
DURATION = 0.3  # default length of the step-input trace, in seconds
SCALE_RATIO = 10.0  # states whose magnitudes differ by more than this get their own panel


class PlotOptionError(ValueError):
    """An option of ``neurogen plot`` that cannot be used (an unknown state, ...)."""


def parse_currents(text):
    """``"LOW:HIGH"`` (200 currents) or ``"J1,J2,..."`` as an array."""
    try:
        values = [float(x) for x in text.split(":" if ":" in text else ",")]
    except ValueError:
        values = []
    if ":" in text and len(values) == 2:
        if not values[0] < values[1]:
            raise PlotOptionError(f"--currents: LOW must be below HIGH in {text!r}")
        return np.linspace(values[0], values[1], 200)
    if ":" in text or not values:
        raise PlotOptionError(f"--currents: expected LOW:HIGH or a comma list of numbers, not {text!r}")
    return np.sort(values)


@dataclass
class Setup:
    """What the figure shows: the model, its step, currents and the step input."""

    compiled: object
    neuron: object
    dt: float
    dt_source: str  # "given" or "the model's"
    threshold: float
    currents: np.ndarray
    duration: float
    states: list


def plot_spec(spec_path, out=None, duration=None, dt=None, currents=None, states=None):
    """Build the figure for the spec at ``spec_path``; write it to ``out`` (its
    type from the extension: .png, .svg or .pdf) if given. Returns the Figure."""
    for name, value in (("--dt", dt), ("--duration", duration)):
        if value is not None and not value > 0:
            raise PlotOptionError(f"{name} must be positive, not {value}")
    if out is not None and Path(out).suffix.lower() not in FORMATS:
        raise PlotOptionError(f"unsupported figure type {Path(out).suffix!r} (use {', '.join(FORMATS)})")
    from .build import compile_spec

    compiled = compile_spec(spec_path)
    model = compiled.model
    neuron = compiled_module(compiled).NEURON_TYPE()
    names = [name for name, _, _ in model.states]
    for name in states or ():
        if name not in names:
            raise PlotOptionError(f"unknown state {name!r} (states: {', '.join(names) or 'none'})")
    chosen_dt = dt if dt is not None else step_needed(neuron, model)
    threshold = threshold_current(model, neuron, chosen_dt) if model.spiking else rate_onset(neuron, model)
    if currents is None:
        currents = np.linspace(*current_range(threshold), 100 if chosen_dt >= 1e-4 else 50)
    setup = Setup(
        compiled, neuron, chosen_dt, "given" if dt is not None else "the model's", threshold,
        np.asarray(currents, dtype=float), duration or DURATION, list(states or names),
    )
    fig = build_figure(setup, Path(spec_path).name)
    if out is not None:
        fig.savefig(out, dpi=100)
    return fig


def rate_onset(neuron, model):
    """The lowest current of the table range at which a rate model's ``rates()``
    turns positive (None where it is never zero there, as a sigmoid)."""
    low, high = table_range(model)
    for _ in range(3):  # refine the bracket around the first positive rate
        J = np.linspace(low, high, 1001)
        positive = neuron.rates(J, np.ones(1), np.zeros(1)).ravel() > 0
        if not positive.any() or positive[0]:
            return None
        k = int(np.argmax(positive))
        low, high = J[k - 1], J[k]
    return float(high)


def build_figure(setup, label):
    """The matplotlib Figure: the f-I panel, then one panel per group of states."""
    from matplotlib.figure import Figure

    model = setup.compiled.model
    t, J_step, traces, spikes = step_trace(setup)
    groups = scale_groups(traces)
    fig = Figure(figsize=(8, 3 + 2.2 * len(groups)), constrained_layout=True)
    axes = fig.subplots(1 + len(groups), 1, squeeze=False)[:, 0]
    fig.suptitle(_title(setup, label), fontsize="medium")
    fi_panel(axes[0], setup)
    for ax, group in zip(axes[1:], groups):
        for name in group:
            ax.plot(t, traces[name], label=name, lw=1)
        for s in spikes:
            ax.axvline(s, color="r", alpha=0.25, lw=0.8)
        ax.set(ylabel=", ".join(group), xlim=(t[0], t[-1] + setup.dt))
        ax.legend(loc="upper right", fontsize="small")
    low, high = J_step[0], J_step[-1]
    note = f"{len(spikes)} spikes, red lines" if model.spiking else "rate model: no spikes"
    axes[1].set_title(f"step input J = {low:.3g} -> {high:.3g} at t = {setup.duration / 6:.3g} s ({note})")
    axes[-1].set_xlabel("time (s)")
    return fig


def _title(setup, label):
    methods = {}
    for state, method in setup.compiled.program.methods.items():
        methods.setdefault(method, []).append(state)
    text = "; ".join(f"{m}: {', '.join(s)}" for m, s in methods.items()) or "no ODEs"
    return f"{setup.compiled.model.name} ({label})\nmethods {text}; dt = {setup.dt:g} s ({setup.dt_source} step)"


def fi_panel(ax, setup):
    """Simulated steady-state rate against J, with ``rates()`` (the approximation
    used for gain/bias and rate training) drawn over it."""
    model, neuron, J = setup.compiled.model, setup.neuron, setup.currents
    if model.spiking:
        from .runtime import simulate_rates

        with np.errstate(all="ignore"):
            simulated = simulate_rates(neuron, J, dt=setup.dt, settle=0.1, duration=0.5)
        label, ylabel = "simulated (0.5 s per current)", "rate (Hz)"
    else:
        simulated = _settled_output(setup, J)
        label, ylabel = "simulated (settled output)", "output"
    approx = neuron.rates(J, np.ones(1), np.zeros(1)).ravel()
    ax.plot(J, simulated, "k", lw=3, alpha=0.4, label=label)
    ax.plot(J, approx, "C1--", label="rate approximation, rates()" + _table_note(setup))
    title = "tuning curve (f-I)"
    if is_stochastic(neuron):
        title += ": stochastic model, one sample per current"
    elif setup.threshold is not None:
        title += f", {'firing threshold' if model.spiking else 'onset'} J = {setup.threshold:.3g}"
    ax.set(title=title, xlabel="input current J", ylabel=ylabel, xlim=(J[0], J[-1]))
    ax.legend(loc="upper left", fontsize="small")


def _table_note(setup):
    """Where rates() is a table simulated at another step than the plot's, say so."""
    if setup.compiled.model.rate_table is None:
        return ""
    at = table_dt(setup.compiled.model, setup.neuron)
    return "" if np.isclose(at, setup.dt) else f", tabulated at dt = {at:g} s"


def step_trace(setup):
    """``(t, J, traces, spike_times)`` for a step input at a sixth of the duration,
    from 10 % to 40 % of the way through the f-I currents (with the default currents,
    from half a threshold below it to one above it). Rate models trace their output too."""
    model, dt = setup.compiled.model, setup.dt
    low, span = setup.currents[0], setup.currents[-1] - setup.currents[0]
    steps = int(round(setup.duration / dt))
    t = np.arange(steps) * dt
    J = np.where(t >= setup.duration / 6, low + 0.4 * span, low + 0.1 * span)
    state = {k: np.full(1, v) for k, v in initial_state(model).items()}
    if is_stochastic(setup.neuron):  # one sample path, from a fixed seed
        state["rng"] = np.random.RandomState(0)
    output = np.zeros(1)
    traces = {k: np.empty(steps) for k in setup.states + ([] if model.spiking else ["output"])}
    spikes = []
    with np.errstate(all="ignore"):
        for i in range(steps):
            setup.neuron.step(dt, J[i : i + 1], output, **state)
            for k in traces:
                traces[k][i] = (output if k == "output" else state[k])[0]
            if model.spiking and output[0] != 0:
                spikes.append(t[i] + dt)
    return t, J, traces, spikes


def scale_groups(traces):
    """States grouped for shared panels: within a group, the largest magnitudes
    differ by at most ``SCALE_RATIO``. Groups keep the states' order."""
    size = {k: _magnitude(v) for k, v in traces.items()}
    groups = []
    for name in sorted(traces, key=lambda k: -size[k]):
        for group in groups:
            if size[group[0]] <= SCALE_RATIO * max(size[name], 1e-300):
                group.append(name)
                break
        else:
            groups.append([name])
    order = list(traces)
    return sorted(([n for n in order if n in g] for g in groups), key=lambda g: order.index(g[0]))


def _magnitude(values):
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1e-300


def _settled_output(setup, J, steps=500):
    model = setup.compiled.model
    state = {k: np.full(len(J), v) for k, v in initial_state(model).items()}
    if is_stochastic(setup.neuron):
        state["rng"] = np.random.RandomState(0)
    output = np.zeros(len(J))
    for _ in range(steps if state else 1):
        setup.neuron.step(setup.dt, J, output, **state)
    return output.copy()
