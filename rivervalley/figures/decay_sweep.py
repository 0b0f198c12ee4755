"""Final loss against decay fraction for each decay shape (THEORY.md C5)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

NAME = "decay_sweep"
CAPTION = (
    "Every decay shape has an optimal decay length: too short leaves hill loss behind, too long "
    "wastes river time.\n"
    "WSD on the standard toy (peak 0.06, T = 4000, min ratio 0.001): lines are the exact "
    "prediction, dots simulated seed means (with standard errors); open circles mark each "
    "shape's predicted optimum. A decay that is too abrupt freezes the hill offset (the inverse "
    "shape drops almost at once)."
)


@dataclass(frozen=True)
class Config:
    peak_value: float = 0.06
    num_steps: int = 4000
    min_ratio: float = 0.001
    theory_fractions: int = 40
    frac_range: tuple[float, float] = (0.002, 0.5)
    sim_fractions: tuple[float, ...] = (0.004, 0.01, 0.025, 0.06, 0.15, 0.4)
    seeds: int = 64


FULL = Config()
FAST = Config(theory_fractions=16, seeds=12)


def compute(config: Config, key: jax.Array) -> dict:
    import jax.numpy as jnp

    from rivervalley import landscapes, noise, schedules, theory
    from rivervalley.dynamics import stack, sweep

    c = config
    valley, nz = landscapes.standard_toy(), noise.HillOnly(1.0)
    T, shapes = c.num_steps, schedules.DECAY_SHAPES

    def batch(fracs):
        return stack([schedules.wsd(c.peak_value, T, decay=float(f), decay_shape=s,
                                    min_ratio=c.min_ratio) for s in shapes for f in fracs])

    fr = np.geomspace(*c.frac_range, c.theory_fractions)
    lrs = jax.vmap(lambda s: jax.vmap(s)(jnp.arange(T)))(batch(fr))
    final = jax.vmap(lambda row: theory.expected_trajectory(valley, row, num_steps=T, noise=nz,
                                                record_every=T).loss[-1])(lrs)
    th = np.asarray(final).reshape(len(shapes), fr.size)
    sf = np.asarray(c.sim_fractions)
    res = sweep(valley, valley.init_params(), batch(sf), num_steps=T, seeds=c.seeds, key=key,
                noise=nz, batched=("schedule",), record_every=T)
    fin = np.asarray(res.trajectory.loss)[:, :, -1].reshape(c.seeds, len(shapes), sf.size)
    return {
        "shapes": np.asarray(shapes), "fractions": fr, "theory": th,
        "sim_fractions": sf, "sim": fin.mean(0),
        "sim_sem": fin.std(0, ddof=1) / np.sqrt(c.seeds),
    }


def plot(data: dict):
    import matplotlib.pyplot as plt

    from rivervalley.plotting import colors

    fr, th = data["fractions"], data["theory"]
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for i, shape in enumerate(data["shapes"]):
        col = colors[i]
        ax.plot(fr, th[i], color=col, lw=1.4, label=str(shape))
        ax.errorbar(data["sim_fractions"], data["sim"][i], yerr=data["sim_sem"][i], fmt="o",
                    color=col, ms=3.5, capsize=1.5)
        j = int(np.argmin(th[i]))
        ax.plot(fr[j], th[i, j], "o", mfc="white", mec=col, ms=8, mew=1.5, zorder=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("decay fraction (of T = 4000 steps)")
    ax.set_ylabel("final loss")
    ax.legend(title="decay shape", loc="upper right", fontsize=8, title_fontsize=8, ncol=2)
    return fig


def check(data: dict) -> None:
    th = data["theory"]
    for i, shape in enumerate(data["shapes"]):
        j = int(np.argmin(th[i]))
        # an interior optimum, better than both ends of the range
        assert 0 < j < th.shape[1] - 1, (str(shape), j)
        assert th[i, j] < 0.98 * min(th[i, 0], th[i, -1]), (str(shape), th[i, [0, j, -1]])
    # the simulation agrees with the prediction at the simulated fractions
    for i in range(th.shape[0]):
        pred = np.interp(np.log(data["sim_fractions"]), np.log(data["fractions"]), th[i])
        err = np.abs(data["sim"][i] - pred)
        assert np.all(err < 5 * data["sim_sem"][i] + 0.05 * pred), (str(data["shapes"][i]), err)
