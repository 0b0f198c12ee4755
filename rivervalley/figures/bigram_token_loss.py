"""Bigram LM: loss by token class under constant, cosine and WSD (THEORY.md §7)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from rivervalley.figures._common import decay_start, table_bigram, tabulate
from rivervalley.figures.registry import register

CAPTION = (
    "Bigram LM: stochastic tokens are hills, deterministic tokens are rivers.\n"
    "Table bigram model trained by minibatch SGD. Left: the stochastic-token excess plateaus at the "
    "level predicted by eta*tr(H)/(4B) (dashed; twice as high at twice the LR) and only drops when "
    "the LR decays. Right: the deterministic-token loss falls steadily at high LR and barely moves "
    "during the decay, so WSD keeps the river progress cosine gives up."
)


@dataclass(frozen=True)
class Config:
    vocab_size: int = 64
    det_fraction: float = 0.5
    logit_scale: float = 0.5
    batch_size: int = 64
    peak_value: float = 16.0
    num_steps: int = 4000
    decay: float = 0.2
    seeds: int = 2
    record_every: int = 40


FULL = Config()
FAST = Config(vocab_size=16, num_steps=500, seeds=1, record_every=10, peak_value=4.0, batch_size=32)


def compute(config: Config, key: jax.Array) -> dict:
    from rivervalley import bigram as bg
    from rivervalley import schedules as S
    from rivervalley.dynamics import sweep

    c = config
    model, k_run = table_bigram(c, key)
    data = model.data
    eta, T = c.peak_value, c.num_steps
    names = ["constant", "constant (LR/2)", "cosine", f"WSD ({c.decay:.0%} decay)"]
    scheds = [S.constant(eta), S.constant(eta / 2), S.cosine(eta, T), S.wsd(eta, T, decay=c.decay)]
    res = sweep(model, model.init_params(), tabulate(scheds, T), num_steps=T, seeds=c.seeds,
                key=k_run, batched=("schedule",), record_every=c.record_every)
    tr = res.trajectory
    _, p_stoch = data.class_mass()
    return {
        "names": np.array(names),
        "steps": np.asarray(tr.steps),
        "lr": np.asarray(tr.lr)[0],
        "stoch_excess": np.asarray(tr.extras["stoch_excess"]).mean(0),
        "det_loss": np.asarray(tr.extras["det_loss"]).mean(0),
        "loss": np.asarray(tr.loss).mean(0),
        "entropy": np.asarray(data.entropy()),
        "predicted_plateau": np.array([float(bg.predicted_plateau(data, e, c.batch_size))
                                       for e in (eta, eta / 2)]) / float(p_stoch),
    }


def _at(data, step):
    return int(np.searchsorted(data["steps"], step))


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.0))
    steps, names = data["steps"], [str(n) for n in data["names"]]
    styles = [dict(color="0.45"), dict(color="0.45", ls=":"), dict(color="C0"), dict(color="C1")]
    for i, name in enumerate(names):
        axes[0].plot(steps, data["stoch_excess"][i], label=name, **styles[i])
        axes[1].plot(steps[1:], data["det_loss"][i, 1:], label=name, **styles[i])
    for p, ls in zip(data["predicted_plateau"], ("--", "--")):
        axes[0].axhline(p, color="k", ls=ls, lw=0.9)
    axes[0].text(steps[-1] * 0.02, data["predicted_plateau"][0] * 1.08,
                 r"predicted $\eta\,\mathrm{tr}(H)/4B$", fontsize=8)
    for ax in axes:
        ax.axvspan(decay_start(config.num_steps, config.decay), steps[-1], color="C1", alpha=0.08, lw=0)
        ax.set_xlabel("step")
        ax.set_xlim(0, steps[-1])
    axes[0].set_ylim(0, 2.2 * data["predicted_plateau"][0])
    axes[0].set_ylabel("stochastic-token excess loss (nats)")
    axes[0].set_title("hills: stochastic tokens")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("deterministic-token loss (nats)")
    axes[1].set_title("rivers: deterministic tokens")
    axes[1].legend(loc="upper right")
    return fig


def check(data: dict, config: Config) -> None:
    names = [str(n) for n in data["names"]]
    const, half, cos, wsd = (names.index(n) for n in names)
    ex, det = data["stoch_excess"], data["det_loss"]
    steps = data["steps"]
    late = steps >= 0.6 * steps[-1]
    start = decay_start(config.num_steps, config.decay)
    d0 = _at(data, start)
    # Stable phase: the stochastic excess sits at the predicted eta-proportional plateau.
    pred = data["predicted_plateau"]
    plateau = ex[const, late].mean()
    assert abs(plateau / pred[0] - 1) < 0.2, (plateau, pred)
    ratio = plateau / ex[half, late].mean()
    assert abs(ratio / (pred[0] / pred[1]) - 1) < 0.25, ratio
    # Decay: the stochastic excess drops; the deterministic loss barely moves.
    before = ex[wsd, max(d0 - 3, 0):d0 + 1].mean()
    assert ex[wsd, -1] < 0.85 * before, (ex[wsd, -1], before)
    det_drop = 1 - det[wsd, -1] / det[wsd, d0]
    assert det_drop < 0.3, det_drop
    # Through the stable phase the deterministic loss keeps falling (a river: no plateau).
    mid = _at(data, start // 2)
    assert det[wsd, d0] < 0.8 * det[wsd, mid]
    # WSD keeps more river progress than cosine.
    assert det[wsd, -1] < det[cos, -1]


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
