"""Real text, diagnosed: the hill loss is high and steady at the peak LR and collapses in the decay."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from rivervalley.figures._common import decay_start
from rivervalley.figures.registry import register

CAPTION = (
    "Diagnosing real text: a large hill loss all through the stable phase, gone after the decay.\n"
    "rivervalley.diagnose on the WSD run of the character transformer (seed means, bars: "
    "+-1 standard error). Decay probes (a short linear decay forked from each checkpoint; the "
    "drop estimates the hill loss, for two probe lengths) and the curvature estimate (top-k "
    "Hessian eigenpairs by Lanczos, displacement from the running average of iterates) side by "
    "side; the LR in grey. The curvature estimate sees only the top-k sharp directions: a lower "
    "bound."
)


@dataclass(frozen=True)
class Config:
    scale: str = "full"
    num_steps: int = 1200
    seeds: int = 2
    # equal gaps and probes as long as a gap or the averaging window: three compiled programs
    checkpoints: tuple[int, ...] = (240, 480, 720, 960, 1080, 1200)
    probe_lengths: tuple[int, ...] = (60, 180)
    average_steps: int = 60
    k: int = 4
    num_iters: int = 20


FULL = Config()
FAST = Config(scale="fast", num_steps=300, checkpoints=(120, 240, 270, 300),
              probe_lengths=(30, 90), average_steps=30, k=4)


#: About how many steps the LR line of the right panel is drawn at.
_LR_POINTS = 200


def _text_config(c: Config):
    """The :class:`rivervalley.text.TextConfig` of the diagnosed run."""
    from rivervalley import text

    return text.config(c.scale, num_steps=c.num_steps, seeds=c.seeds)


def _decay_step(c: Config) -> int:
    cfg = _text_config(c)
    return decay_start(cfg.num_steps, cfg.decay)


def compute(config: Config, key: jax.Array) -> dict:
    from rivervalley import text
    from rivervalley.diagnose import diagnose

    c = config
    cfg = _text_config(c)
    k_init, k_run = jax.random.split(key)
    prob, params = text.build(cfg, key=k_init)
    sched = text.schedule("wsd", cfg)
    d = diagnose(prob, params, sched, checkpoints=list(c.checkpoints), key=k_run, seeds=c.seeds,
                 optimizer=text.optimizer(cfg), probe_lengths=c.probe_lengths, k=c.k,
                 num_iters=c.num_iters, average_steps=c.average_steps, progress=False)
    grid = np.arange(0, cfg.num_steps + 1, max(1, cfg.num_steps // _LR_POINTS))
    return {"checkpoints": d.checkpoints, "lr": d.lr, "probe_lengths": d.probe_lengths,
            "loss": d.loss, "hill_probe": d.hill_probe, "hill_curvature": d.hill_curvature,
            "eigenvalues": d.eigenvalues, "lr_grid_steps": grid,
            "lr_grid": np.asarray(jax.vmap(sched)(grid))}


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    from rivervalley.plotting import colors, mean_sem

    c = data["checkpoints"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8.6, 3.6))
    m, e = mean_sem(data["loss"])
    ax.errorbar(c, m, e, color="k", marker="o", ms=4, lw=1.2, label="loss at checkpoint")
    for j, d in enumerate(data["probe_lengths"]):
        rm, re = mean_sem(data["loss"] - data["hill_probe"][..., j])
        ax.errorbar(c, rm, re, color=colors[j], marker="s", ms=3.5, lw=1.0,
                    label=f"river (probe {int(d)} steps)")
    rm, re = mean_sem(data["loss"] - data["hill_curvature"])
    ax.errorbar(c, rm, re, color=colors[2], marker="^", ms=3.5, lw=1.0, ls="--",
                label="river (curvature)")
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (nats/char)")
    ax.legend(fontsize=7.5)
    ax.set_title("loss and river estimates", fontsize=9)
    for j, d in enumerate(data["probe_lengths"]):
        hm, he = mean_sem(data["hill_probe"][..., j])
        ax2.errorbar(c, hm, he, color=colors[j], marker="s", ms=3.5, lw=1.2,
                     label=f"hill (probe {int(d)} steps)")
    hm, he = mean_sem(data["hill_curvature"])
    ax2.errorbar(c, hm, he, color=colors[2], marker="^", ms=3.5, lw=1.2, ls="--",
                 label=f"hill (curvature, top {data['eigenvalues'].shape[-1]})")
    ax2.axhline(0, color="0.6", lw=0.6)
    ax2.set_xlabel("step")
    ax2.set_ylabel("hill loss estimate (nats/char)")
    ax2.set_title("hill estimates", fontsize=9)
    ax2.legend(fontsize=7.5, loc="upper left")
    tw = ax2.twinx()
    tw.plot(data["lr_grid_steps"], data["lr_grid"], color="0.6", lw=1.0)
    tw.set_ylabel("LR", color="0.5")
    tw.set_ylim(0, 1.1 * float(np.max(data["lr_grid"])))
    for a in (ax, ax2):
        a.axvline(_decay_step(config), color="0.7", lw=0.8, ls=":")
    return fig


def check(data: dict, config: Config) -> None:
    c, lr = data["checkpoints"], data["lr"]
    peak = float(np.max(lr))
    stable = np.flatnonzero((lr >= 0.999 * peak) & (c <= _decay_step(config)))
    end = int(np.argmax(c))
    assert stable.size >= 2 and lr[end] < 1e-3 * peak
    probe = data["hill_probe"][..., -1].mean(0)  # the longest probe
    curv = data["hill_curvature"].mean(0)
    # at the peak LR both estimates see a clear hill loss ...
    assert np.all(probe[stable] > 0.02), probe
    assert np.all(curv[stable] > 0.0), curv
    # ... steady: at the stable checkpoints after the first the probe estimate stays within a
    # factor 2 ...
    s = probe[stable[1:]]
    assert s.max() < 2 * s.min(), s
    # ... and the decay collapses it: at the end (LR 0) the curvature hill is a small fraction
    # of its stable level (the probe from LR 0 moves nothing: 0 by construction)
    assert curv[end] < 0.3 * curv[stable].mean(), (curv[end], curv[stable])


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
