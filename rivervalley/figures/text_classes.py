"""Real text, split by character class: inside a word (river-like) vs after a space (hill-like)."""

from __future__ import annotations

import jax
import numpy as np

from rivervalley.figures import text_loss
from rivervalley.figures.registry import register

CAPTION = (
    "Real text by character class: the rest of a word keeps getting easier, the next word does not.\n"
    "The runs of text_loss (same data), validation loss per character class: predictions after "
    "a letter (inside a word), after a space or newline (the next word's first letter) and after "
    "punctuation. Left: class means under WSD (solid) and constant LR (dashed): inside a word the "
    "loss falls all through the stable phase and again in the decay; after a space it plateaus "
    "near 3 nats. Right: each class's contribution (its summed loss over all characters) "
    "stacked: the three add up to the whole loss (black)."
)

Config = text_loss.Config
FULL = text_loss.FULL
FAST = text_loss.FAST


def compute(config: Config, key: jax.Array) -> dict:
    del key  # the runs are text_loss's (shared through the figure cache)
    from rivervalley.figures import runner

    return dict(runner.compute_data(text_loss.FIGURE, config))


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    from rivervalley.plotting import colors

    steps = data["steps"]
    classes = [str(c) for c in data["classes"]]
    labels = {"in_word": "inside a word", "after_space": "after space/newline",
              "other": "after punctuation"}
    const, wsd = 0, 2
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8.6, 3.6))
    for j, c in enumerate(classes[:2]):
        m = data[f"{c}_mean"].mean(0)
        ax.plot(steps[1:], m[const, 1:], color=colors[j], lw=1.0, ls="--")
        ax.plot(steps[1:], m[wsd, 1:], color=colors[j], lw=1.8,
                label=f"{labels[c]} ({100 * data[f'{c}_frac'][0, 0, 0]:.0f}% of chars)")
    ax.plot([], [], color="0.4", ls="--", label="constant LR")
    ax.plot([], [], color="0.4", label="WSD")
    d0 = text_loss.decay_step(config)
    ax.axvline(d0, color="0.7", lw=0.8, ls=":")
    ax.set_xlabel("step")
    ax.set_ylabel("class mean loss (nats/char)")
    ax.set_ylim(None, 1.25 * float(data["after_space_mean"].mean(0)[wsd, len(steps) // 4]))
    ax.legend(fontsize=7.5, loc="upper right")
    ax.set_title("per class", fontsize=9)
    parts = np.stack([data[f"{c}_loss"].mean(0)[wsd] for c in classes])
    ax2.stackplot(steps[1:], parts[:, 1:], colors=[colors[0], colors[1], "0.75"],
                  labels=[labels[c] for c in classes], alpha=0.8)
    ax2.plot(steps[1:], data["loss"].mean(0)[wsd, 1:], color="k", lw=1.2, label="whole loss")
    ax2.axvline(d0, color="0.7", lw=0.8, ls=":")
    ax2.set_xlabel("step")
    ax2.set_ylabel("contribution to the loss (nats/char)")
    ax2.set_title("WSD: contributions add up to the loss", fontsize=9)
    ax2.set_ylim(0, 1.15 * float(data["loss"].mean(0)[wsd, len(steps) // 4]))
    ax2.legend(fontsize=7, loc="upper right")
    return fig


def check(data: dict, config: Config) -> None:
    classes = [str(c) for c in data["classes"]]
    total = sum(data[f"{c}_loss"] for c in classes)
    # contributions sum to the whole (the loss is computed separately, by loss_fn): a float32
    # sum of the per-character losses in another order; rounding errors of O(1e4) terms add up
    # like a random walk: ~sqrt(1e4) * 1.2e-7 = 1.2e-5 relative, 4x that as the bound
    np.testing.assert_allclose(total, data["loss"], rtol=4 * 100 * 1.2e-7)
    np.testing.assert_allclose(sum(data[f"{c}_frac"] for c in classes), 1.0, rtol=1e-6)
    wsd = 2
    iw, sp = data["in_word_mean"].mean(0)[wsd], data["after_space_mean"].mean(0)[wsd]
    # the rest of a word is far more predictable than the first letter of the next one
    assert iw[-1] < sp[-1] - 0.5, (iw[-1], sp[-1])
    # and it is learned throughout: the in-word loss falls through the stable phase
    d0 = int(np.searchsorted(data["steps"], text_loss.decay_step(config)))
    q = len(data["steps"]) // 4
    assert iw[d0] < iw[q] - 0.02, (iw[q], iw[d0])


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
