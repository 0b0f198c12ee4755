"""The schedule that minimizes the predicted final loss, beside WSD and the greedy harmonic decay."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from rivervalley.figures._common import decay_start, toy
from rivervalley.figures.registry import register
from rivervalley.landscapes import STANDARD_TOY

CAPTION = (
    "Optimizing every eta_t of the predicted final loss yields a WSD shape.\n"
    "L-BFGS-B on the exact prediction (THEORY.md §4) of the standard toy, eta_t in "
    f"[0, {STANDARD_TOY.peak_value:g}]: "
    "flat at the peak, then a short late decay whose tail follows the harmonic law (inset). "
    "WSD with a 20% linear decay and with the greedy hill-optimal decay (~1/(lambda t)) over the "
    "same 20% are shown with their predicted final losses."
)


@dataclass(frozen=True)
class Config:
    peak_value: float = STANDARD_TOY.peak_value
    num_steps: int = STANDARD_TOY.num_steps
    iterations: int = 300
    wsd_decay: float = 0.2


FULL = Config()
FAST = Config(num_steps=1000, iterations=150)


def compute(config: Config, key: jax.Array) -> dict:
    from rivervalley import schedules, theory

    del key  # deterministic
    c = config
    valley, nz = toy()
    T = c.num_steps
    opt = theory.optimize_schedule(valley, nz, T, peak_value=c.peak_value,
                                   iterations=c.iterations)
    wsd = schedules.as_array(schedules.wsd(c.peak_value, T, decay=c.wsd_decay), T)
    # greedy: stable at the peak, then over the same last 20% the LR that minimizes the next hill
    # second moment, starting from the stable plateau V* (the harmonic decay of C5)
    d0 = decay_start(T, c.wsd_decay)
    lam, s2 = float(valley.sharpness[0]), float(nz.sigma) ** 2
    v_star = 2 * theory.steady_state_hill_loss(c.peak_value, lam, s2) / lam  # loss = lambda V / 2
    greedy = np.concatenate([np.full(d0, c.peak_value),
                             theory.greedy_schedule(lam, s2, T - d0, second0=v_star,
                                                    max_lr=c.peak_value)])
    out = {"steps": np.arange(T)}
    with jax.enable_x64(True):
        for name, lrs in (("optimized", opt.lrs), ("wsd", wsd), ("greedy", greedy)):
            p = theory.expected_trajectory(valley, np.asarray(lrs, np.float64), num_steps=T,
                                           noise=nz, record_every=T, dtype=np.float64)
            out[f"{name}_lr"] = np.asarray(lrs, np.float64)
            out[f"{name}_final"] = np.asarray(float(p.loss[-1]))
    out["history"] = opt.history
    return out


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    from rivervalley.plotting import colors

    t = data["steps"]
    T = t.size
    sty = {"optimized": dict(color=colors[0], lw=2.0, label="optimized"),
           "wsd": dict(color=colors[1], lw=1.3, ls="--",
                       label=f"WSD ({config.wsd_decay:.0%} linear)"),
           "greedy": dict(color=colors[2], lw=1.3,
                          label=r"WSD, greedy decay $\approx 1/(\lambda t)$")}
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, st in sty.items():
        st = dict(st)
        st["label"] = f"{st['label']}: final loss {float(data[f'{name}_final']):.5f}"
        ax.plot(t, data[f"{name}_lr"], **st)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_ylim(0, 1.45 * config.peak_value)
    ax.set_xlim(0, T)
    ax.legend(loc="upper left", fontsize=8)
    ins = ax.inset_axes([0.1, 0.12, 0.36, 0.45])
    tail = t >= int(0.9 * T)
    for name, st in sty.items():
        ins.plot(T - t[tail], data[f"{name}_lr"][tail], **{k: v for k, v in st.items()
                                                          if k != "label"})
    ins.set_xscale("log")
    ins.set_yscale("log")
    ins.invert_xaxis()
    ins.set_xlabel("steps to the end", fontsize=7.5)
    ins.set_ylabel("LR", fontsize=7.5)
    ins.tick_params(labelsize=7)
    ins.set_title("tail (log-log)", fontsize=7.5)
    return fig


def check(data: dict, config: Config) -> None:
    opt, peak = data["optimized_lr"], config.peak_value
    # the optimized schedule is at least as good as WSD and as the greedy decay (which, optimal
    # for the hill alone, decays too fast and gives up river time)
    assert float(data["optimized_final"]) <= float(data["wsd_final"]), (
        float(data["optimized_final"]), float(data["wsd_final"]))
    assert float(data["optimized_final"]) <= float(data["greedy_final"])
    # it is WSD-shaped: flat at >= 95% of the peak over the first 90% of the run, then decays
    n = opt.size
    assert np.all(opt[: int(0.9 * n)] >= 0.95 * peak), opt[: int(0.9 * n)].min()
    assert opt[-1] < 0.2 * peak, opt[-1]


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
