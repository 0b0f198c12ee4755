"""Real text: WSD's plateau and sharp drop against cosine and constant LR (char transformer)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from rivervalley.figures._common import decay_start
from rivervalley.figures.registry import register

CAPTION = (
    "Real text: WSD sits on the constant-LR plateau, then drops sharply in its decay.\n"
    "A character-level transformer on tinyshakespeare (rivervalley.text, AdamW), validation loss "
    "on the held-out tail (seed means; shading: +-1 standard error). WSD follows the constant-LR "
    "run exactly until its 20% decay starts (same seeds, same batches), then falls below it and "
    "ends at or below cosine, which descends smoothly all along."
)

KINDS = ("constant", "cosine", "wsd")


@dataclass(frozen=True)
class Config:
    scale: str = "full"
    num_steps: int = 1200
    seeds: int = 2
    record_every: int = 40


FULL = Config()
FAST = Config(scale="fast", num_steps=300, seeds=2, record_every=20)


def text_config(c: Config):
    """The :class:`rivervalley.text.TextConfig` of the runs."""
    from rivervalley import text

    return text.config(c.scale, num_steps=c.num_steps, seeds=c.seeds,
                       record_every=c.record_every)


def decay_step(c: Config) -> int:
    """The step WSD's decay starts."""
    cfg = text_config(c)
    return decay_start(cfg.num_steps, cfg.decay)


#: Results of this process by (config, key): text_classes plots the same runs, and a fresh figure
#: cache (a test's temporary one) must not train them twice.
_MEMO: dict = {}


def compute(config: Config, key: jax.Array) -> dict:
    memo = (config, np.asarray(jax.random.key_data(key)).tobytes())
    if memo not in _MEMO:
        _MEMO[memo] = _compute(config, key)
    return dict(_MEMO[memo])


def _compute(config: Config, key: jax.Array) -> dict:
    from rivervalley import text
    from rivervalley.dynamics import stack, sweep

    cfg = text_config(config)
    k_init, k_run = jax.random.split(key)
    prob, params = text.build(cfg, key=k_init)
    batch = stack([text.schedule(kind, cfg) for kind in KINDS])
    res = sweep(prob, params, batch, num_steps=cfg.num_steps, seeds=cfg.seeds, key=k_run,
                optimizer=text.optimizer(cfg), batched=("schedule",),
                record_every=cfg.record_every)
    tr = res.trajectory
    loss = np.asarray(tr.loss)  # (seeds, kinds, records)
    steps = np.asarray(tr.steps)  # (records,), or per run in older engines
    out = {"steps": steps.reshape(-1, steps.shape[-1])[0], "lr": np.asarray(tr.lr)[0], "loss": loss,
           "classes": np.asarray(text.CLASSES)}
    for c in text.CLASSES:
        for part in ("loss", "mean", "frac"):
            out[f"{c}_{part}"] = np.asarray(tr.extras[f"{c}_{part}"])
    return out


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    from rivervalley.plotting import colors, mean_sem

    steps, loss = data["steps"], data["loss"]
    mean, sem = mean_sem(loss)
    sty = [dict(color="0.35", ls="--", zorder=3), dict(color=colors[0]), dict(color=colors[1])]
    fig, (ax_lr, ax) = plt.subplots(2, 1, figsize=(6.4, 4.6), sharex=True,
                                    gridspec_kw=dict(height_ratios=(1, 2.6)))
    labels = ("constant", "cosine", f"WSD ({text_config(config).decay:.0%} linear decay)")
    for i, label in enumerate(labels):
        ax_lr.plot(steps, data["lr"][i], **sty[i])
        ax.plot(steps, mean[i], label=label, lw=1.6, **sty[i])
        ax.fill_between(steps, mean[i] - sem[i], mean[i] + sem[i], alpha=0.25, lw=0,
                        color=sty[i]["color"], zorder=1)
    d0 = decay_step(config)
    for a in (ax_lr, ax):
        a.axvline(d0, color="0.7", lw=0.8, ls=":")
    lo = float(np.min(mean[:, -1]))
    ax.set_ylim(lo - 0.15, mean[:, len(steps) // 4].max() + 0.1)
    ax.set_xlim(0, steps[-1])
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (nats/char)")
    ax.legend(loc="upper right", fontsize=8)
    ax.annotate(f"final: constant {mean[0, -1]:.3f}, cosine {mean[1, -1]:.3f}, "
                f"WSD {mean[2, -1]:.3f}", xy=(0.02, 0.04), xycoords="axes fraction", fontsize=8)
    ax_lr.set_ylabel("LR")
    ax_lr.set_ylim(0, 1.1 * float(data["lr"].max()))
    return fig


def check(data: dict, config: Config) -> None:
    steps, loss = data["steps"], data["loss"]
    const, cos, wsd = 0, 1, 2
    d0 = int(np.searchsorted(steps, decay_step(config)))
    # until its decay starts WSD is the constant-LR run (same keys): equal to rounding
    np.testing.assert_allclose(loss[:, wsd, :d0 + 1], loss[:, const, :d0 + 1], rtol=1e-6)
    # the decay drops it below constant LR in every seed
    drop = loss[:, const, -1] - loss[:, wsd, -1]
    assert np.all(drop > 0.02), drop
    # sharply: the WSD loss falls in its decay more than 1.5x what the constant run falls in the
    # same steps (the plateau's own descent; measured: ~9x in the full run, ~2x in the fast one,
    # which is still early in training)
    wsd_fall = loss[:, wsd, d0] - loss[:, wsd, -1]
    const_fall = loss[:, const, d0] - loss[:, const, -1]
    assert np.all(wsd_fall > 1.5 * np.maximum(const_fall, 0.0)), (wsd_fall, const_fall)
    # and it ends about as low as cosine (at or below it, within 0.02 nats)
    mean = loss.mean(0)
    assert mean[wsd, -1] <= mean[cos, -1] + 0.02, (mean[wsd, -1], mean[cos, -1])


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
