"""The four multi-checkpoint plans of THEORY.md §6 on one step axis, with their compute."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import jax
import numpy as np

from rivervalley.figures._common import branch_lr
from rivervalley.figures.registry import register

CAPTION = (
    "Four ways to get checkpoints for budgets T1 < T2 < T3.\n"
    "Cosine needs a separate run per budget; WSD keeps one constant-LR main run and forks a decay "
    "branch (discarded after its checkpoint) for each earlier budget; WSD-S decays, then returns "
    "to "
    "the peak from the decayed weights, so at WSD's compute its checkpoints sit at T_k + sum_{j<k} "
    "phi T_j; cyclic cosine restarts cosine cycles. Dots mark checkpoints, titles give the compute."
)


@dataclass(frozen=True)
class Config:
    budgets: tuple[int, ...] = (4000, 8000, 16000)
    decay: float = 0.1
    decay_shape: str = "linear"
    min_ratio: float = 0.0
    warmup_steps: int = 200
    paper_budgets: tuple[int, ...] = (12500, 25000, 50000)


FULL = Config()
FAST = Config()


def compute(config: Config, key: jax.Array) -> dict:
    from rivervalley import plans as pl
    from rivervalley.schedules import as_array

    del key  # deterministic
    b = list(config.budgets)
    common = dict(warmup_steps=config.warmup_steps, min_ratio=config.min_ratio)
    shaped = dict(decay=config.decay, decay_shape=config.decay_shape, **common)
    cos = pl.cosine_per_budget(1.0, b, **common)
    wsd = pl.wsd(1.0, b, **shaped)
    ends = pl.wsd_s_checkpoints_at_wsd_compute(b, config.decay)
    wsds = pl.wsd_s(1.0, ends, budgets=b, **shaped)
    cyc = pl.cyclic_cosine(1.0, b, **common)
    n = max(ends[-1], b[-1]) + 1
    out = {"steps": np.arange(n)}
    for tag, plan in (("cosine", cos), ("wsd", wsd), ("wsd_s", wsds), ("cyclic", cyc)):
        out[f"{tag}_lr"] = np.stack([branch_lr(br, n) for br in plan.branches])
        out[f"{tag}_branch_names"] = np.asarray([br.name for br in plan.branches])
        out[f"{tag}_branch_start"] = np.asarray([br.start_step for br in plan.branches])
        out[f"{tag}_ckpt_step"] = np.asarray([c.step for c in plan.checkpoints])
        out[f"{tag}_ckpt_branch"] = np.asarray(
            [[br.name for br in plan.branches].index(c.branch) for c in plan.checkpoints])
        out[f"{tag}_ckpt_compute"] = np.asarray([c.compute for c in plan.checkpoints])
        out[f"{tag}_total_compute"] = np.asarray(plan.total_compute)
    out["wsd_s_lr_dense"] = as_array(wsds.branches[0].schedule, n + 1)
    out["paper_wsd_s_ckpts"] = np.asarray(
        pl.wsd_s_checkpoints_at_wsd_compute(list(config.paper_budgets), config.decay))
    return out


_TITLES = {
    "cosine": "Cosine per budget ({k} runs)",
    "wsd": "WSD (main run + decay branches)",
    "wsd_s": "WSD-S (at WSD's compute)",
    "cyclic": "Cyclic cosine",
}


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    from rivervalley.plotting import colors

    steps = data["steps"]
    budgets = config.budgets
    fig, axes = plt.subplots(4, 1, figsize=(6.4, 7.2), sharex=True)
    for ax, tag in zip(axes, ("cosine", "wsd", "wsd_s", "cyclic"), strict=True):
        lrs = data[f"{tag}_lr"]
        names = data[f"{tag}_branch_names"]
        for i, (lr, name) in enumerate(zip(lrs, names, strict=True)):
            style = dict(color=colors[i % len(colors)])
            if tag == "wsd" and i > 0:
                style.update(ls="--")
            label = str(name)
            if tag == "wsd" and i > 0:
                label += f" (forks at {int(data['wsd_branch_start'][i]):,})"
            ax.plot(steps, lr, label=label, **style)
        for j, (s, bi) in enumerate(zip(data[f"{tag}_ckpt_step"], data[f"{tag}_ckpt_branch"],
                                        strict=True)):
            y = lrs[bi][s - 1] if s >= 1 else lrs[bi][s]
            ax.plot([s], [y], "o", color="k", ms=5, zorder=5,
                    label="checkpoint" if j == 0 else None)
            ax.annotate(f"T{j + 1}", (s, y), textcoords="offset points", xytext=(-13, 4),
                        fontsize=8)
        comp = " / ".join(f"{int(c):,}" for c in data[f"{tag}_ckpt_compute"])
        ax.set_title(_TITLES[tag].format(k=len(budgets)), loc="left", fontsize=9.5)
        ax.set_title(f"compute at T1/T2/T3: {comp} steps", loc="right", fontsize=8.5)
        ax.set_ylabel("LR / peak")
        ax.set_ylim(-0.06, 1.55)
        ax.set_yticks([0, 0.5, 1])
        for bud in budgets:
            ax.axvline(bud, color="0.6", lw=0.6, ls=":", zorder=0)
        ax.legend(loc="upper left", ncol=4, fontsize=7.5, handlelength=1.8, columnspacing=1.2)
    axes[-1].set_xlabel("step (updates; dotted lines: budgets T1, T2, T3)")
    axes[-1].set_xlim(0, steps[-1] * 1.01)
    return fig


def check(data: dict, config: Config) -> None:
    b = list(config.budgets)
    phi = config.decay
    # the documented rule, independently: D = floor(phi * T) in exact decimal arithmetic
    ds = [int(Fraction(repr(phi)) * T) for T in b]
    wsd_compute = [T + sum(ds[:k]) for k, T in enumerate(b)]
    assert list(data["wsd_ckpt_compute"]) == wsd_compute, data["wsd_ckpt_compute"]
    assert int(data["wsd_total_compute"]) == b[-1] + sum(ds[:-1])
    assert int(data["cosine_total_compute"]) == sum(b)
    # WSD-S at WSD's compute: same compute per checkpoint, and the paper's placement
    assert list(data["wsd_s_ckpt_step"]) == wsd_compute
    assert list(data["wsd_s_ckpt_compute"]) == wsd_compute
    assert list(data["paper_wsd_s_ckpts"]) == [12500, 26250, 53750], data["paper_wsd_s_ckpts"]
    # every WSD branch follows the main run until its fork, then decays below it
    main = data["wsd_lr"][0]
    for lr, s in zip(data["wsd_lr"][1:], data["wsd_branch_start"][1:], strict=True):
        np.testing.assert_array_equal(lr[s], main[s])
        assert lr[s + 2] < main[s + 2]
    # WSD-S restarts at the peak after each intermediate checkpoint, near the minimum just before
    dense = data["wsd_s_lr_dense"]
    for e in data["wsd_s_ckpt_step"][:-1]:
        assert dense[e] == 1.0 and dense[e - 1] < 0.01, (e, dense[e - 1], dense[e])


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
