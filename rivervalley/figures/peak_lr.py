"""Loss before and after the decay against the peak LR (THEORY.md C3)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

NAME = "peak_lr"
CAPTION = (
    "A higher (still stable) peak LR: higher loss before the decay, lower loss after it.\n"
    "WSD (20% linear decay) on the standard toy at peak LRs up to the stability limit 2/lambda = "
    "0.1; seed means with standard errors, lines: theory. The high LR hides its extra river "
    "progress under hill noise, which the decay removes."
)


@dataclass(frozen=True)
class Config:
    peaks: tuple[float, ...] = (0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08,
                                0.09, 0.095)
    check_from: float = 0.03  # before-decay loss rises with the peak from here on
    num_steps: int = 4000
    decay: float = 0.2
    seeds: int = 128
    record_every: int = 40


FULL = Config()
FAST = Config(seeds=16)


def compute(config: Config, key: jax.Array) -> dict:
    import jax.numpy as jnp

    from rivervalley import landscapes, noise, schedules, theory
    from rivervalley.dynamics import stack, sweep

    c = config
    valley, nz = landscapes.standard_toy(), noise.HillOnly(1.0)
    T = c.num_steps
    d0 = T - schedules.decay_steps_of(T, c.decay)
    scheds = [schedules.wsd(p, T, decay=c.decay) for p in c.peaks]
    batch = stack(scheds)
    res = sweep(valley, valley.init_params(), batch, num_steps=T, seeds=c.seeds, key=key,
                noise=nz, batched=("schedule",), record_every=c.record_every)
    tr = res.trajectory
    steps = np.asarray(tr.steps)
    # "before decay": the loss averaged over the last quarter of the stable phase (per seed)
    win = (steps >= 0.75 * d0) & (steps <= d0)
    loss = np.asarray(tr.loss)
    before, after = loss[:, :, win].mean(-1), loss[:, :, -1]
    lrs = jax.vmap(lambda s: jax.vmap(s)(jnp.arange(T)))(batch)
    th_b, th_a = [], []
    for row in np.asarray(lrs):
        p = theory.expected_trajectory(valley, jnp.asarray(row), num_steps=T, noise=nz,
                           record_every=c.record_every)
        pw = (p.steps >= 0.75 * d0) & (p.steps <= d0)
        th_b.append(float(np.asarray(p.loss)[pw].mean()))
        th_a.append(float(p.loss[-1]))
    n = c.seeds
    return {
        "peaks": np.asarray(c.peaks), "check_from": np.asarray(c.check_from),
        "before": before.mean(0), "before_sem": before.std(0, ddof=1) / np.sqrt(n),
        "after": after.mean(0), "after_sem": after.std(0, ddof=1) / np.sqrt(n),
        "theory_before": np.asarray(th_b), "theory_after": np.asarray(th_a),
        "diverged": (np.asarray(tr.diverged_at) >= 0).sum(0),
    }


def plot(data: dict):
    import matplotlib.pyplot as plt

    from rivervalley.plotting import colors

    pk = data["peaks"]
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for key, col, lab in (("before", colors[1], "before decay (last quarter of stable phase)"),
                          ("after", colors[0], "after decay (final)")):
        ax.errorbar(pk, data[key], yerr=data[f"{key}_sem"], fmt="o", color=col, ms=4,
                    capsize=2, label=lab)
        ax.plot(pk, data[f"theory_{key}"], color=col, lw=1.2)
    ax.plot([], [], color="0.3", lw=1.2, label="theory")
    ax.axvline(0.1, color="0.5", ls=":", lw=1)
    ax.text(0.099, 0.0021, r"$2/\lambda$", ha="right", fontsize=8.5, color="0.3")
    ax.set_yscale("log")
    ax.set_ylim(2e-3, 1.0)
    ax.set_xlim(0, 0.103)
    ax.set_xlabel(r"peak learning rate $\eta$")
    ax.set_ylabel("loss (seed mean)")
    ax.legend(loc="upper center", fontsize=8)
    return fig


def check(data: dict) -> None:
    pk = data["peaks"]
    assert not data["diverged"].any(), data["diverged"]
    # after the decay: lower with every higher peak (C3)
    assert np.all(np.diff(data["after"]) < 0), data["after"]
    # before the decay: higher with every higher peak, over the stable peaks where hill noise
    # dominates (below check_from the river term, which falls with the peak, still dominates)
    sel = pk >= float(data["check_from"])
    assert np.all(np.diff(data["before"][sel]) > 0), data["before"][sel]
    # theory agrees with simulation (5 standard errors + 2%)
    for key in ("before", "after"):
        err = np.abs(data[key] - data[f"theory_{key}"])
        assert np.all(err < 5 * data[f"{key}_sem"] + 0.02 * data[key]), (key, err)
