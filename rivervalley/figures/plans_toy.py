"""Multi-budget plans on the standard toy: checkpoint loss against compute (THEORY.md C6, §6)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from rivervalley.figures._common import branch_lr, tabulate, toy
from rivervalley.figures.registry import register
from rivervalley.landscapes import STANDARD_TOY

CAPTION = (
    "At matched compute WSD-S beats WSD, which beats cyclic cosine.\n"
    "Checkpoints for budgets 1000/2000/4000 on the standard toy (256 seeds, 20% decays). WSD "
    "discards its decay branches; WSD-S resumes the peak LR from each decayed checkpoint and, "
    "spending WSD's compute, places its checkpoints at T_k + sum_{j<k} 0.2 T_j; cyclic cosine "
    "(cycles ending at the same steps) spends river time on low-LR tails. Cosine per budget "
    "pays for a separate run per budget."
)


@dataclass(frozen=True)
class Config:
    peak_value: float = STANDARD_TOY.peak_value
    budgets: tuple[int, ...] = (1000, 2000, 4000)
    decay: float = 0.2
    seeds: int = 256
    record_every: int = 200
    verify_plan: bool = True  # also execute the plans with rivervalley.run_plan and compare


FULL = Config()
FAST = Config(seeds=128, verify_plan=False)  # 64 seeds: paired t ~ 3.7 expected, too close to 2


_KINDS = ("cosine", "wsd", "wsd_s", "cyclic_cosine")  # rivervalley.plans' Plan.kind


def _plans(c: Config) -> dict:
    from rivervalley import plans as pl

    b = list(c.budgets)
    ends = pl.wsd_s_checkpoints_at_wsd_compute(b, c.decay)
    return {
        "cosine": pl.cosine_per_budget(c.peak_value, b),
        "wsd": pl.wsd(c.peak_value, b, decay=c.decay),
        "wsd_s": pl.wsd_s(c.peak_value, ends, budgets=b, decay=c.decay),
        "cyclic_cosine": pl.cyclic_cosine(c.peak_value, ends, budgets=b),
    }


def compute(config: Config, key: jax.Array) -> dict:
    from rivervalley.dynamics import run_plan, sweep
    from rivervalley.plotting import mean_sem
    from rivervalley.schedules import as_array

    c = config
    valley, nz = toy()
    plans = _plans(c)
    n = max(ck.step for p in plans.values() for ck in p.checkpoints)
    # Every checkpoint is the state of one run from x0 at its step: a branch forked from a parent
    # follows the run of its own schedule from x0 bit for bit (same key, same noise). So all
    # checkpoints of all plans come from ONE sweep over the plans' branches, tabulated.
    rows, where = [], {}
    for kind, p in plans.items():
        for ck in p.checkpoints:
            br = p.branch(ck.branch)
            if (br.name, kind) not in where:
                where[br.name, kind] = len(rows)
                rows.append(br.schedule)
    res = sweep(valley, valley.init_params(), tabulate(rows, n), num_steps=n, seeds=c.seeds,
                key=key, noise=nz, batched=("schedule",), record_every=c.record_every)
    loss = np.asarray(res.trajectory.loss)
    steps = np.asarray(res.trajectory.steps)  # (records,): stored once
    out = {"lr_steps": np.arange(n + 1)}
    for kind, p in plans.items():
        per_seed = np.stack([loss[:, where[ck.branch, kind], np.searchsorted(steps, ck.step)]
                             for ck in p.checkpoints])
        out[f"{kind}_loss"], out[f"{kind}_sem"] = mean_sem(per_seed, axis=1)
        out[f"{kind}_per_seed"] = per_seed
        out[f"{kind}_compute"] = np.asarray([ck.compute for ck in p.checkpoints])
        out[f"{kind}_step"] = np.asarray([ck.step for ck in p.checkpoints])
        if kind in ("wsd_s", "cyclic_cosine"):
            out[f"{kind}_lr"] = as_array(p.branches[0].schedule, n + 1)
        if c.verify_plan and kind != "cosine":
            pr = run_plan(p, valley, valley.init_params(), seeds=c.seeds, key=key, noise=nz)
            out[f"{kind}_plan_loss"] = pr.loss
    out["wsd_lr"] = np.stack([branch_lr(br, n + 1) for br in plans["wsd"].branches])
    return out


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    from rivervalley.plotting import PLAN_COLORS, PLAN_LABELS, PLAN_MARKERS, compute_axis
    fig, (ax_lr, ax) = plt.subplots(1, 2, figsize=(7.2, 3.3),
                                    gridspec_kw=dict(width_ratios=(1.15, 1)))
    t = data["lr_steps"]
    for i, lr in enumerate(data["wsd_lr"]):
        ax_lr.plot(t, lr, color=PLAN_COLORS["wsd"], ls="-" if i == 0 else "--", lw=1.2,
                   label=PLAN_LABELS["wsd"] if i == 0 else None)
    for kind in ("wsd_s", "cyclic_cosine"):
        ax_lr.plot(t, data[f"{kind}_lr"], color=PLAN_COLORS[kind], lw=1.2, label=PLAN_LABELS[kind])
    ax_lr.set_xlabel("step")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_ylim(0, 1.5 * config.peak_value)
    ax_lr.legend(loc="upper left", fontsize=7.5, ncol=2)
    ax_lr.set_title("schedules (dashed: WSD's discarded branches)", fontsize=9)
    for kind in _KINDS:
        ax.errorbar(data[f"{kind}_compute"], data[f"{kind}_loss"], yerr=data[f"{kind}_sem"],
                    color=PLAN_COLORS[kind], marker=PLAN_MARKERS[kind], ms=4.5, lw=1.2, capsize=2,
                    label=PLAN_LABELS[kind])
    ax.set_yscale("log")
    compute_axis(ax, [data[f"{k}_compute"] for k in _KINDS])
    ax.set_ylabel("checkpoint loss (seed mean)")
    ax.set_title(f"loss at budgets {' / '.join(str(b) for b in config.budgets)}", fontsize=9)
    ax.legend(loc="lower left", fontsize=7.5)
    return fig


def check(data: dict, config: Config) -> None:
    # WSD-S spends exactly WSD's compute at each checkpoint
    np.testing.assert_array_equal(data["wsd_s_compute"], data["wsd_compute"])
    np.testing.assert_array_equal(data["cyclic_cosine_compute"], data["wsd_compute"])
    ws, w, cy = data["wsd_s_loss"], data["wsd_loss"], data["cyclic_cosine_loss"]
    # the first checkpoint is the same run for WSD and WSD-S: equal up to the float32 rounding
    # that two lanes of one program may do differently on another CPU (one rounding per step
    # adding up like a random walk over T1 steps: 8 sqrt(T1) eps32)
    tol = 8 * np.sqrt(config.budgets[0]) * np.finfo(np.float32).eps
    assert abs(ws[0] - w[0]) <= tol * w[0], (ws[0], w[0], tol)
    # at matched compute: WSD-S < WSD < cyclic cosine at every later checkpoint (C6)
    for k in range(1, len(w)):
        assert ws[k] < w[k] < cy[k], (k, ws[k], w[k], cy[k])
        # the WSD-S advantage is significant: paired differences over seeds (common noise)
        diff = data["wsd_per_seed"][k] - data["wsd_s_per_seed"][k]
        assert diff.mean() > 2 * diff.std(ddof=1) / np.sqrt(diff.size), (k, diff.mean())
    # the plan machinery (forks from saved states) gives the same checkpoint losses
    for kind in ("wsd", "wsd_s", "cyclic_cosine"):
        if f"{kind}_plan_loss" in data:
            # two separately compiled float32 programs over up to T steps: 8 sqrt(T) eps32
            # = 6e-5 at T = 4000
            np.testing.assert_allclose(data[f"{kind}_plan_loss"], data[f"{kind}_loss"],
                                       rtol=1e-4)


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
