"""The WSD loss curve against cosine and constant LR, with decay branches off the main run."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from rivervalley.figures._common import decay_start, toy
from rivervalley.figures.registry import register
from rivervalley.landscapes import STANDARD_TOY

CAPTION = (
    "WSD: an elevated, noisy plateau, then a sharp drop when the LR decays.\n"
    "SGD on the standard toy (seed means; the thin line is one seed). Constant LR stays high; "
    "cosine descends smoothly; WSD (20% linear decay) sits on the constant-LR plateau, then drops "
    "below cosine. Dashed: decay branches forked from the WSD main run at earlier budgets, each "
    "dropping as sharply (checkpoint losses equal those of rivervalley.run_plan on the WSD plan)."
)


@dataclass(frozen=True)
class Config:
    peak_value: float = STANDARD_TOY.peak_value
    num_steps: int = STANDARD_TOY.num_steps
    decay: float = 0.2
    budgets: tuple[int, ...] = (1000, 2000, 3000, 4000)
    seeds: int = 256
    record_every: int = 10
    verify_plan: bool = True  # also run the WSD plan with rivervalley.run_plan and compare


FULL = Config()
FAST = Config(seeds=32, record_every=20, verify_plan=False)


def compute(config: Config, key: jax.Array) -> dict:
    from rivervalley import plans, schedules
    from rivervalley.dynamics import run_plan, stack, sweep
    from rivervalley.plotting import mean_sem

    c = config
    valley, nz = toy()
    T, eta = c.num_steps, c.peak_value
    if c.budgets[-1] != T:
        raise ValueError(f"budgets={c.budgets} must end at num_steps={T}")
    # constant, cosine, WSD and WSD's decay branches as one batch of WSD-form schedules (one
    # compiled program): min_ratio = 1 is a constant LR; a full-length cosine-shaped decay is
    # cosine; the branch to budget T_k is the WSD run to T_k, which follows the main run up to its
    # fork step bit for bit (same key, same noise).
    names = ["constant", "cosine", f"WSD ({c.decay:.0%} linear decay)"]
    batch = stack([schedules.wsd(eta, T, decay=c.decay, min_ratio=1.0),
                   schedules.wsd(eta, T, decay=1.0, decay_shape="cosine")]
                  + [schedules.wsd(eta, Tk, decay=c.decay) for Tk in (T,) + c.budgets[:-1]])
    res = sweep(valley, valley.init_params(), batch, num_steps=T, seeds=c.seeds, key=key,
                noise=nz, batched=("schedule",), record_every=c.record_every)
    tr = res.trajectory
    loss = np.asarray(tr.loss)
    steps = np.asarray(tr.steps)
    mean, sem = mean_sem(loss, axis=0)
    forks = [decay_start(Tk, c.decay) for Tk in c.budgets]
    out = {
        "names": np.asarray(names),
        "steps": steps,
        "lr": np.asarray(tr.lr)[0, :3],
        "loss_mean": mean[:3],
        "loss_sem": sem[:3],
        "loss_seed0": loss[0, :3],
        "ckpt_loss": np.array([mean[2 + (k + 1) % len(c.budgets), np.searchsorted(steps, Tk)]
                               for k, Tk in enumerate(c.budgets)]),
    }
    for i, (Tk, fork) in enumerate(zip(c.budgets[:-1], forks[:-1], strict=True)):
        keep = (steps >= fork) & (steps <= Tk)
        out[f"branch{i}_steps"] = steps[keep]
        out[f"branch{i}_loss"] = mean[3 + i, keep]
        out[f"branch{i}_lr"] = np.asarray(tr.lr)[0, 3 + i, keep]
    if c.verify_plan:  # the same checkpoints from the plan machinery (branches forked from main)
        pr = run_plan(plans.wsd(eta, list(c.budgets), decay=c.decay), valley,
                      valley.init_params(), seeds=c.seeds, key=key, noise=nz)
        out["plan_ckpt_loss"] = pr.loss
    return out


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    from rivervalley.plotting import colors

    names = [str(n) for n in data["names"]]
    steps = data["steps"]
    sty = [dict(color="0.5"), dict(color=colors[0]), dict(color=colors[1])]
    fig, (ax_lr, ax) = plt.subplots(2, 1, figsize=(6.4, 4.6), sharex=True,
                                    gridspec_kw=dict(height_ratios=(1, 2.6)))
    for i, name in enumerate(names):
        ax_lr.plot(steps, data["lr"][i], label=name, **sty[i])
        ax.plot(steps[1:], data["loss_mean"][i, 1:], label=name, lw=1.8, **sty[i])
    ax.plot(steps[1:], data["loss_seed0"][2, 1:], color=colors[1], lw=0.5, alpha=0.45,
            label="WSD, one seed")
    for i in range(len(config.budgets) - 1):
        s, lo = data[f"branch{i}_steps"], data[f"branch{i}_loss"]
        ax.plot(s, lo, color=colors[1], ls="--", lw=1.3,
                label="WSD branches" if i == 0 else None)
        ax_lr.plot(s, data[f"branch{i}_lr"], color=colors[1], ls="--", lw=1.0)
    ax.plot(config.budgets, data["ckpt_loss"], "o", color="k", ms=4, zorder=5,
            label="checkpoints")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (seed mean)")
    ax.set_xlim(0, steps[-1])
    ax.legend(loc="lower left", fontsize=7.5, ncol=2)
    ax_lr.set_ylabel("LR")
    ax_lr.set_ylim(0, 1.1 * config.peak_value)
    ax.annotate(f"final: cosine {data['loss_mean'][1, -1]:.4f}, "
                f"WSD {data['loss_mean'][2, -1]:.4f}", xy=(0.98, 0.96),
                xycoords="axes fraction", ha="right", va="top", fontsize=8)
    return fig


def check(data: dict, config: Config) -> None:
    steps, lm = data["steps"], data["loss_mean"]
    const, cos, wsd = 0, 1, 2
    start = decay_start(config.num_steps, config.decay)
    d0 = int(np.searchsorted(steps, start))
    plateau = lm[wsd, d0]
    # the stable phase sits on the constant-LR curve: the LRs are the same up to the decay, so
    # the runs differ only by float32 rounding that lanes of one program may do differently on
    # another CPU (one rounding per step adding up like a random walk: 8 sqrt(d0) eps32)
    np.testing.assert_array_equal(data["lr"][wsd, :d0], data["lr"][const, :d0])
    tol = 8 * np.sqrt(max(start, 1)) * np.finfo(np.float32).eps
    assert abs(plateau / lm[const, d0] - 1) < tol, (plateau, lm[const, d0], tol)
    # the decay drops it below a quarter
    assert lm[wsd, -1] < 0.25 * plateau, (lm[wsd, -1], plateau)
    # WSD ends at or below cosine (C4) and far below constant
    assert lm[wsd, -1] <= lm[cos, -1], (lm[wsd, -1], lm[cos, -1])
    assert lm[wsd, -1] < 0.5 * lm[const, -1]
    # every decay branch drops well below the main run at its fork, and below constant LR
    for i, budget in enumerate(config.budgets[:-1]):
        at_fork, end = data[f"branch{i}_loss"][0], data[f"branch{i}_loss"][-1]
        j = int(np.searchsorted(steps, budget))
        assert end < 0.5 * at_fork and end < 0.5 * lm[const, j], (i, at_fork, end)
    # the plan machinery (branches forked from the saved main state) gives the same checkpoints
    if "plan_ckpt_loss" in data:
        # two separately compiled float32 programs over up to T steps: 8 sqrt(T) eps32 <= 1e-4
        # at the FULL T = 4000
        np.testing.assert_allclose(data["plan_ckpt_loss"], data["ckpt_loss"], rtol=1e-4)


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
