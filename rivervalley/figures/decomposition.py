"""Total loss = river loss + hill loss under WSD, simulated (seed mean) against theory."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from rivervalley.figures._common import decay_start, toy
from rivervalley.figures.registry import register
from rivervalley.landscapes import STANDARD_TOY

CAPTION = (
    "The WSD drop is the hill loss vanishing; the river loss falls all along.\n"
    "SGD on the standard toy under WSD (20% linear decay), seed means split exactly into river "
    "loss f(u) and hill loss (lambda/2) v^2; dashed: the exact prediction of THEORY.md §4. In the "
    "stable phase the hill loss sits at eta sigma^2 / (2 (2 - eta lambda)) (dotted)."
)


@dataclass(frozen=True)
class Config:
    peak_value: float = STANDARD_TOY.peak_value
    num_steps: int = STANDARD_TOY.num_steps
    decay: float = 0.2
    seeds: int = 512
    record_every: int = 10
    max_se: float = 4.0  # simulated seed mean within this many standard errors of theory


FULL = Config()
FAST = Config(seeds=64, record_every=20)


def compute(config: Config, key: jax.Array) -> dict:
    from rivervalley import schedules, theory
    from rivervalley.dynamics import sweep
    from rivervalley.plotting import mean_sem

    c = config
    valley, nz = toy()
    sched = schedules.wsd(c.peak_value, c.num_steps, decay=c.decay)
    res = sweep(valley, valley.init_params(), sched, num_steps=c.num_steps, seeds=c.seeds,
                key=key, noise=nz, record_every=c.record_every)
    tr = res.trajectory
    loss, loss_sem = mean_sem(np.asarray(tr.loss)[:, 0], axis=0)
    with jax.enable_x64(True):
        p = theory.expected_trajectory(valley, sched, num_steps=c.num_steps, noise=nz,
                                       record_every=c.record_every, dtype=np.float64)
    return {
        "steps": np.asarray(tr.steps),
        "lr": np.asarray(tr.lr)[0, 0],
        "loss": loss,
        "loss_sem": loss_sem,
        "river": np.asarray(tr.river_loss, np.float64)[:, 0].mean(0),
        "hill": np.asarray(tr.hill_loss, np.float64)[:, 0].mean(0),
        "theory_loss": np.asarray(p.loss),
        "theory_river": np.asarray(p.river_loss),
        "theory_hill": np.asarray(p.hill_loss),
        "theory_steps": np.asarray(p.steps),
        # the hill loss plateau: the sum over the hill directions of eta sigma_i^2 / (2 (2 - eta
        # lambda_i))
        "plateau": np.sum(theory.steady_state_hill_loss(c.peak_value, np.asarray(valley.sharpness),
                                                        np.asarray(nz.sigma) ** 2)),
    }


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    from rivervalley.plotting import PART_COLORS, plot_loss

    s = data["steps"]
    d0 = decay_start(config.num_steps, config.decay)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.axvspan(d0, s[-1], color="0.9", lw=0, zorder=0)
    plot_loss(ax, s[1:], data["loss"][1:], river=data["river"][1:], hill=data["hill"][1:],
              label="total loss")
    ts = data["theory_steps"]
    for key, col in (("theory_loss", PART_COLORS["loss"]), ("theory_river", PART_COLORS["river"]),
                     ("theory_hill", PART_COLORS["hill"])):
        ax.plot(ts[1:], data[key][1:], color=col, ls=(0, (4, 2)), lw=1.0,
                label="theory (dashed)" if key == "theory_loss" else None)
    ax.axhline(float(data["plateau"]), color=PART_COLORS["hill"], ls=":", lw=1.0,
               label=r"$\eta\sigma^2/(2(2-\eta\lambda))$")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 1.0)
    ax.set_xlim(0, s[-1])
    ax.set_ylabel("loss (seed mean)")
    ax.text(d0, 0.5, " decay", fontsize=8.5, color="0.3")
    ax.legend(loc="lower left", fontsize=8, ncol=2)
    return fig


def check(data: dict, config: Config) -> None:
    s, d0 = data["steps"], decay_start(config.num_steps, config.decay)
    stable = (s >= 0.5 * d0) & (s < d0)
    # C1: the hill loss plateau is eta sigma^2 / (2 (2 - eta lambda)) within 5%
    plateau = data["hill"][stable].mean()
    assert abs(plateau / float(data["plateau"]) - 1) < 0.05, (plateau, float(data["plateau"]))
    # exact split: total = river + hill (per run float32 values a few roundings apart: the loss
    # is evaluated by itself, not summed from its parts; the seed means keep that)
    np.testing.assert_allclose(data["loss"], data["river"] + data["hill"],
                               rtol=4 * np.finfo(np.float32).eps)
    # simulation within max_se standard errors of theory at several steps (stable and decayed)
    for t in (d0 // 4, d0 // 2, d0, (d0 + int(s[-1])) // 2, int(s[-1])):
        i = int(np.searchsorted(s, t))
        j = int(np.searchsorted(data["theory_steps"], t))
        z = (data["loss"][i] - data["theory_loss"][j]) / data["loss_sem"][i]
        assert abs(z) < config.max_se, (t, data["loss"][i], data["theory_loss"][j], z)
    # C2: the decay removes the hill loss, the river loss barely moves
    i0 = int(np.searchsorted(s, d0))
    assert data["hill"][-1] < 0.05 * data["hill"][i0]
    assert data["river"][-1] > 0.5 * data["river"][i0]


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
