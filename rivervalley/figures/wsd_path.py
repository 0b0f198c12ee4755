"""One SGD path under WSD on the standard toy: bouncing across the river, then settling into it."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from rivervalley.figures._common import decay_start, toy
from rivervalley.figures.registry import register
from rivervalley.landscapes import STANDARD_TOY

CAPTION = (
    "Under WSD the iterate bounces across the valley while it travels along the river, and the "
    "decay drops it onto the river.\n"
    f"One SGD run (hill-only noise sigma = {STANDARD_TOY.sigma:g}, peak LR "
    f"{STANDARD_TOY.peak_value:g}, eta*lambda = "
    f"{STANDARD_TOY.peak_value * STANDARD_TOY.sharpness:.2g}, 20% linear decay) on "
    "the standard toy; left, its last 40% coloured by the LR of each step. Right: the hill offset "
    "v_t with the exact theory's +-sqrt(V_t) band: a steady spread of "
    "sqrt(eta sigma^2 / (lambda (2 - eta lambda))) in the stable phase, collapsing in the decay."
)


@dataclass(frozen=True)
class Config:
    peak_value: float = STANDARD_TOY.peak_value
    num_steps: int = STANDARD_TOY.num_steps
    decay: float = 0.2
    zoom_from: float = 0.6  # the left panel shows the run from this fraction on


FULL = Config()
FAST = Config(num_steps=1000)


def compute(config: Config, key: jax.Array) -> dict:
    import jax.numpy as jnp

    from rivervalley import schedules, theory
    from rivervalley.dynamics import simulate
    from rivervalley.plotting import loss_grid

    c = config
    valley, hill = toy()
    sched = schedules.wsd(c.peak_value, c.num_steps, decay=c.decay)
    tr = simulate(valley, jnp.zeros(2), sched, num_steps=c.num_steps, noise=hill, key=key)
    pred = theory.expected_trajectory(valley, sched, num_steps=c.num_steps, noise=hill)
    xy = np.asarray(tr.params)
    zoom = _zoom_start(c)
    span = float(np.abs(xy[zoom:, 1]).max()) * 1.1
    lo, hi = float(xy[zoom:, 0].min()), float(xy[zoom:, 0].max())
    pad = 0.05 * (hi - lo)
    X, Y, Z = loss_grid(valley, xlim=(lo - pad, hi + pad), ylim=(-span, span), num=200)
    return {"steps": np.asarray(tr.steps), "lr": np.asarray(tr.lr), "u": xy[:, 0],
            "v": xy[:, 1], "theory_second_moment": np.asarray(pred.hill_second_moment)[:, 0],
            "theory_u": np.asarray(pred.river_coordinate),
            "sharpness": np.asarray(valley.sharpness[0]), "sigma": np.asarray(hill.sigma),
            "X": X, "Y": Y, "Z": Z}


def _zoom_start(c: Config) -> int:
    """The first step the left panel shows: the end of the stable phase, then the decay."""
    return int(c.zoom_from * c.num_steps)


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    from rivervalley.plotting import lr_colorbar, lr_norm, plot_contour, plot_trajectory

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10.0, 3.8), width_ratios=(1.3, 1.0))
    norm = lr_norm(0.0, config.peak_value)
    z0 = _zoom_start(config)
    plot_contour(ax, (data["X"], data["Y"], data["Z"]))
    plot_trajectory(ax, np.stack([data["u"][z0:], data["v"][z0:]], axis=1), data["lr"][z0:],
                    norm=norm, lw=0.6)
    ax.plot(data["u"][-1], data["v"][-1], "o", color="black", ms=4, label="end of the run")
    ax.set_xlabel("u (along the river)")
    ax.set_ylabel("v (across)")
    ax.set_title(f"path from step {z0}, coloured by the LR")
    ax.legend(loc="lower right")
    lr_colorbar(fig, ax, norm, label="learning rate $\\eta_t$")

    steps, v = data["steps"], data["v"]
    rms = np.sqrt(data["theory_second_moment"])
    d0 = decay_start(config.num_steps, config.decay)
    ax2.axvspan(d0, float(steps[-1]), color="0.92", lw=0)
    ax2.plot(steps, v, color="0.45", lw=0.4, label="hill offset $v_t$ (one run)")
    ax2.plot(steps, rms, color="C1", lw=1.4, label="theory $\\pm\\sqrt{V_t}$")
    ax2.plot(steps, -rms, color="C1", lw=1.4)
    ax2.text(d0, 0.95, " decay", transform=ax2.get_xaxis_transform(),
             va="top", fontsize=8, color="0.35")
    ax2.set_xlabel("step")
    ax2.set_ylabel("hill offset $v_t$")
    ax2.set_title("across: steady bouncing, then collapse")
    ax2.legend(loc="lower left", frameon=True)  # over the noisy trace: a framed legend
    return fig


def check(data: dict, config: Config) -> None:
    v, steps = data["v"], data["steps"]
    eta, lam, s2 = config.peak_value, float(data["sharpness"]), float(data["sigma"]) ** 2
    v_star = eta * s2 / (lam * (2 - eta * lam))
    start = decay_start(config.num_steps, config.decay)
    stable = v[(steps > 0.25 * start) & (steps < start)]
    # eta*lambda > 1: the offset flips sign most steps (correlation 1 - eta*lambda = -0.2)
    assert np.mean(np.sign(stable[1:]) != np.sign(stable[:-1])) > 0.5
    # the stable spread matches the exact steady state (standard error ~ sqrt(2/n) ~ 3-6%)
    ratio = np.mean(stable**2) / v_star
    assert abs(ratio - 1) < 0.2, ratio
    # the decay collapses it and the river coordinate kept advancing through both phases
    tail = v[steps >= steps[-1] - 0.01 * steps[-1]]
    assert np.sqrt(np.mean(tail**2)) < 0.3 * np.sqrt(v_star)
    u = data["u"]
    assert u[start] > 0.5 * u[-1] > 0 and u[-1] > u[start]
    np.testing.assert_allclose(u[-1], data["theory_u"][-1], rtol=0.05)


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
