"""Loss before and after the decay against the peak LR (THEORY.md C3)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from rivervalley.figures._common import decay_start, toy
from rivervalley.figures.registry import register
from rivervalley.landscapes import STANDARD_TOY

CAPTION = (
    "A higher (still stable) peak LR: higher loss before the decay, lower loss after it.\n"
    "WSD (20% linear decay) on the standard toy at peak LRs up to the stability limit 2/lambda = "
    f"{2 / STANDARD_TOY.sharpness:g}; seed means with standard errors, lines: theory. The high LR "
    "hides its extra river "
    "progress under hill noise, which the decay removes."
)


@dataclass(frozen=True)
class Config:
    peaks: tuple[float, ...] = (0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08,
                                0.09, 0.095)
    check_from: float = 0.03  # before-decay loss rises with the peak from here on
    num_steps: int = STANDARD_TOY.num_steps
    decay: float = 0.2
    seeds: int = 128
    record_every: int = 40


FULL = Config()
FAST = Config(seeds=16)


def compute(config: Config, key: jax.Array) -> dict:
    from rivervalley import landscapes, schedules, theory
    from rivervalley.dynamics import stack, sweep
    from rivervalley.plotting import mean_sem

    c = config
    valley, nz = toy()
    T = c.num_steps
    d0 = decay_start(T, c.decay)
    scheds = [schedules.wsd(p, T, decay=c.decay) for p in c.peaks]
    res = sweep(valley, valley.init_params(), stack(scheds), num_steps=T, seeds=c.seeds, key=key,
                noise=nz, batched=("schedule",), record_every=c.record_every)
    tr = res.trajectory
    steps = np.asarray(tr.steps)
    # "before decay": the loss averaged over the last quarter of the stable phase (per seed)
    win = (steps >= 0.75 * d0) & (steps <= d0)
    loss = np.asarray(tr.loss)
    before, after = loss[:, :, win].mean(-1), loss[:, :, -1]
    th_b, th_a = [], []
    for sched in scheds:
        p = theory.expected_trajectory(valley, sched, num_steps=T, noise=nz,
                                       record_every=c.record_every)
        pw = (p.steps >= 0.75 * d0) & (p.steps <= d0)
        th_b.append(float(np.asarray(p.loss)[pw].mean()))
        th_a.append(float(p.loss[-1]))
    (b_mean, b_sem), (a_mean, a_sem) = mean_sem(before), mean_sem(after)
    return {
        "before": b_mean, "before_sem": b_sem, "after": a_mean, "after_sem": a_sem,
        "theory_before": np.asarray(th_b), "theory_after": np.asarray(th_a),
        "diverged": (np.asarray(tr.diverged_at) >= 0).sum(0),
        "stability_limit": np.asarray(landscapes.stability_limit(valley)),
    }


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    from rivervalley.plotting import colors

    pk = np.asarray(config.peaks)
    limit = float(data["stability_limit"])
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for key, col, lab in (("before", colors[1], "before decay (last quarter of stable phase)"),
                          ("after", colors[0], "after decay (final)")):
        ax.errorbar(pk, data[key], yerr=data[f"{key}_sem"], fmt="o", color=col, ms=4,
                    capsize=2, label=lab)
        ax.plot(pk, data[f"theory_{key}"], color=col, lw=1.2)
    ax.plot([], [], color="0.3", lw=1.2, label="theory")
    ax.axvline(limit, color="0.5", ls=":", lw=1)
    ax.text(limit, 0.02, r"$2/\lambda$ ", transform=ax.get_xaxis_transform(), ha="right",
            fontsize=8.5, color="0.3")
    ax.set_yscale("log")
    ax.set_ylim(2e-3, 1.0)
    ax.set_xlim(0, 1.03 * limit)
    ax.set_xlabel(r"peak learning rate $\eta$")
    ax.set_ylabel("loss (seed mean)")
    ax.legend(loc="upper center", fontsize=8)
    return fig


def check(data: dict, config: Config) -> None:
    pk = np.asarray(config.peaks)
    assert not data["diverged"].any(), data["diverged"]
    # after the decay: lower with every higher peak (C3)
    assert np.all(np.diff(data["after"]) < 0), data["after"]
    # before the decay: higher with every higher peak, over the stable peaks where hill noise
    # dominates (below check_from the river term, which falls with the peak, still dominates)
    sel = pk >= config.check_from
    assert np.all(np.diff(data["before"][sel]) > 0), data["before"][sel]
    # theory agrees with simulation (5 standard errors + 2%)
    for key in ("before", "after"):
        err = np.abs(data[key] - data[f"theory_{key}"])
        assert np.all(err < 5 * data[f"{key}_sem"] + 0.02 * data[key]), (key, err)


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
