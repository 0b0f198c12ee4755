"""Final loss against decay fraction for each decay shape (THEORY.md C5)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from rivervalley.figures._common import toy
from rivervalley.figures.registry import register
from rivervalley.landscapes import STANDARD_TOY

CAPTION = (
    "Every decay shape has an optimal decay length: too short leaves hill loss behind, too long "
    "wastes river time.\n"
    f"WSD on the standard toy (peak {STANDARD_TOY.peak_value:g}, T = {STANDARD_TOY.num_steps}, "
    "min ratio 0.001): lines are the exact "
    "prediction, dots simulated seed means (with standard errors); open circles mark each "
    "shape's predicted optimum. A decay that is too abrupt freezes the hill offset (the inverse "
    "shape drops almost at once)."
)


@dataclass(frozen=True)
class Config:
    peak_value: float = STANDARD_TOY.peak_value
    num_steps: int = STANDARD_TOY.num_steps
    min_ratio: float = 0.001
    theory_fractions: int = 40
    frac_range: tuple[float, float] = (0.002, 0.5)
    sim_fractions: tuple[float, ...] = (0.004, 0.01, 0.025, 0.06, 0.15, 0.4)
    seeds: int = 64


FULL = Config()
FAST = Config(theory_fractions=16, seeds=12)


def compute(config: Config, key: jax.Array) -> dict:
    from rivervalley import schedules, theory
    from rivervalley.dynamics import stack, sweep
    from rivervalley.plotting import mean_sem

    c = config
    valley, nz = toy()
    T, shapes = c.num_steps, schedules.DECAY_SHAPES

    def scheds(fracs):
        return [schedules.wsd(c.peak_value, T, decay=float(f), decay_shape=s,
                              min_ratio=c.min_ratio) for s in shapes for f in fracs]

    fr = np.geomspace(*c.frac_range, c.theory_fractions)
    lrs = np.stack([schedules.as_array(s, T) for s in scheds(fr)])
    final = jax.vmap(lambda row: theory.expected_trajectory(valley, row, num_steps=T, noise=nz,
                                                            record_every=T).loss[-1])(lrs)
    th = np.asarray(final).reshape(len(shapes), fr.size)
    sf = np.asarray(c.sim_fractions)
    res = sweep(valley, valley.init_params(), stack(scheds(sf)), num_steps=T, seeds=c.seeds,
                key=key, noise=nz, batched=("schedule",), record_every=T)
    fin = np.asarray(res.trajectory.loss)[:, :, -1].reshape(c.seeds, len(shapes), sf.size)
    sim, sim_sem = mean_sem(fin)
    return {"shapes": np.asarray(shapes), "fractions": fr, "theory": th, "sim": sim,
            "sim_sem": sim_sem}


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    from rivervalley.plotting import colors

    fr, th = data["fractions"], data["theory"]
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for i, shape in enumerate(data["shapes"]):
        col = colors[i]
        ax.plot(fr, th[i], color=col, lw=1.4, label=str(shape))
        ax.errorbar(config.sim_fractions, data["sim"][i], yerr=data["sim_sem"][i], fmt="o",
                    color=col, ms=3.5, capsize=1.5)
        j = int(np.argmin(th[i]))
        ax.plot(fr[j], th[i, j], "o", mfc="white", mec=col, ms=8, mew=1.5, zorder=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"decay fraction (of T = {config.num_steps} steps)")
    ax.set_ylabel("final loss")
    ax.legend(title="decay shape", loc="upper right", fontsize=8, title_fontsize=8, ncol=2)
    return fig


def check(data: dict, config: Config) -> None:
    th = data["theory"]
    for i, shape in enumerate(data["shapes"]):
        j = int(np.argmin(th[i]))
        # an interior optimum, better than both ends of the range
        assert 0 < j < th.shape[1] - 1, (str(shape), j)
        assert th[i, j] < 0.98 * min(th[i, 0], th[i, -1]), (str(shape), th[i, [0, j, -1]])
    # the simulation agrees with the prediction at the simulated fractions
    for i in range(th.shape[0]):
        pred = np.interp(np.log(config.sim_fractions), np.log(data["fractions"]), th[i])
        err = np.abs(data["sim"][i] - pred)
        assert np.all(err < 5 * data["sim_sem"][i] + 0.05 * pred), (str(data["shapes"][i]), err)


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
