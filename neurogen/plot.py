"""``neurogen plot``: tuning curve, state traces and spikes, and the rate approximation."""

import tempfile
from pathlib import Path

import numpy as np

from .verify import initial_state, load_module, threshold_current


def plot_spec(spec_path, out, duration=0.3, dt=1e-3):
    """Write a PNG with three panels for the spec at ``spec_path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .build import compile_spec
    from .runtime import simulate_rates

    compiled = compile_spec(spec_path)
    model = compiled.model
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{model.module}.py"
        path.write_text(compiled.text, encoding="utf-8")
        module = load_module(path)
    neuron = module.NEURON_TYPE()
    threshold = threshold_current(model, neuron)
    scale = abs(threshold) if threshold else 1.0
    base = threshold if threshold is not None else 0.0

    fig, (ax_fi, ax_trace, ax_rate) = plt.subplots(3, 1, figsize=(7, 9), constrained_layout=True)
    fig.suptitle(f"{model.name} ({Path(spec_path).name})")

    # tuning curve: simulated steady-state output against the input current
    J = np.linspace(base - 1.0 * scale, base + 4.0 * scale, 200)
    if model.spiking:
        simulated = simulate_rates(neuron, J, dt=dt, settle=0.2, duration=1.0)
    else:
        simulated = _settled_output(neuron, model, J, dt)
    ax_fi.plot(J, simulated, "k")
    ax_fi.set(title="tuning curve (f-I)", xlabel="input current J", ylabel="rate (Hz)")

    # state traces and spikes for a step input
    steps = int(duration / dt)
    J_step = np.where(np.arange(steps) * dt >= 0.05, base + 1.0 * scale, base - 0.5 * scale)
    state = {k: np.full(1, v) for k, v in initial_state(model).items()}
    output = np.zeros(1)
    trace = {k: [] for k in state}
    spikes = []
    for i in range(steps):
        neuron.step(dt, J_step[i : i + 1], output, **state)
        for k in state:
            trace[k].append(state[k][0])
        if model.spiking and output[0] != 0:
            spikes.append(i * dt)
    t = np.arange(steps) * dt
    for k, v in trace.items():
        ax_trace.plot(t, v, label=k)
    if not trace:
        ax_trace.plot(t, [neuron.rates(j, 1, 0).item() for j in J_step], label="output")
    for s in spikes:
        ax_trace.axvline(s, color="r", alpha=0.3, lw=0.8)
    ax_trace.set(title=f"step input at 50 ms ({len(spikes)} spikes, red)", xlabel="time (s)", ylabel="state")
    ax_trace.legend(loc="upper right", fontsize="small")

    # the rate approximation (used for gain/bias and training) over the simulated rates
    approx = neuron.rates(J, np.ones(1), np.zeros(1)).ravel()
    ax_rate.plot(J, simulated, "k", lw=3, alpha=0.4, label="simulated")
    ax_rate.plot(J, approx, "C1--", label="rate approximation")
    ax_rate.set(title="rate approximation", xlabel="input current J", ylabel="rate (Hz)")
    ax_rate.legend(loc="upper left", fontsize="small")
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _settled_output(neuron, model, J, dt, steps=500):
    state = {k: np.full(len(J), v) for k, v in initial_state(model).items()}
    output = np.zeros(len(J))
    for _ in range(steps if state else 1):
        neuron.step(dt, J, output, **state)
    return output.copy()
