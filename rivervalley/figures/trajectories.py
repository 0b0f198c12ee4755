"""GD paths on the standard toy at several learning rates: glide (eta*lambda < 1) or bounce (> 1)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from rivervalley.figures.registry import register
from rivervalley.landscapes import STANDARD_TOY

CAPTION = (
    "Below eta*lambda = 1 the iterate glides to the river; above it, it bounces across.\n"
    "GD (noise off) on the standard toy from an offset start, at four constant LRs. The hill "
    "offset delta_t = v_t flips sign every step exactly when eta*lambda > 1 (bottom left), while the "
    "position along the river advances in proportion to the LR, bouncing or not (bottom right)."
)


@dataclass(frozen=True)
class Config:
    learning_rates: tuple[float, ...] = (0.03, 0.045, 0.06, 0.085)
    sharpness: float = STANDARD_TOY.sharpness
    x0: tuple[float, float] = (-1.0, 0.35)
    path_steps: int = 14
    num_steps: int = STANDARD_TOY.num_steps
    u_window: tuple[float, float] = (-1.2, -0.25)  # the contour panels: around the first steps
    v_window: tuple[float, float] = (-0.42, 0.42)
    grid: int = 160


FULL = Config()
FAST = Config(num_steps=400)


def compute(config: Config, key: jax.Array) -> dict:
    import jax.numpy as jnp

    from rivervalley import landscapes, schedules
    from rivervalley.dynamics import stack, sweep
    from rivervalley.plotting import loss_grid

    valley = landscapes.standard_toy(sharpness=config.sharpness)
    lrs = list(config.learning_rates)
    sched = stack([schedules.constant(e) for e in lrs])
    res = sweep(valley, jnp.asarray(config.x0, jnp.float32), sched, num_steps=config.num_steps,
                key=key, batched=("schedule",), record_every=1, record_params=True)
    params = np.asarray(res.trajectory.params)[0]  # (B, T+1, 2)
    X, Y, Z = loss_grid(valley, xlim=config.u_window, ylim=config.v_window, num=config.grid)
    return {
        "steps": np.asarray(res.trajectory.steps),  # (records,): stored once
        "u": params[..., 0],
        "delta": params[..., 1],
        "stability_limit": np.asarray(landscapes.stability_limit(valley)),
        "X": X, "Y": Y, "Z": Z,
    }


def _flips(delta: np.ndarray) -> np.ndarray:
    """Sign flips between consecutive steps, up to the first step where delta is no longer a
    normal float (it decays geometrically; below ``finfo.tiny`` it flushes to zero)."""
    ok = np.abs(delta) >= np.finfo(delta.dtype).tiny
    n = int(np.argmin(ok)) if not ok.all() else ok.size
    d = delta[:n]
    return np.sign(d[1:]) != np.sign(d[:-1])


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    from rivervalley.plotting import lr_color, lr_colorbar, lr_norm, plot_contour, plot_trajectory

    lrs, lam = config.learning_rates, config.sharpness
    k = config.path_steps
    norm = lr_norm(0.0, float(data["stability_limit"]))
    fig = plt.figure(figsize=(7.2, 5.0))
    # two rows laid out apart, so the bottom row's y labels do not widen a gap in the top row
    row_top, row_bottom = fig.subfigures(2, 1)
    grid = (data["X"], data["Y"], data["Z"])
    top = list(row_top.subplots(1, len(lrs)))
    for i, (ax, eta) in enumerate(zip(top, lrs, strict=True)):
        plot_contour(ax, grid, river=(data["X"][0], np.zeros(data["X"].shape[1])),
                     river_label=None, levels=10)
        xy = np.stack([data["u"][i, :k + 1], data["delta"][i, :k + 1]], axis=1)
        plot_trajectory(ax, xy, np.full(k + 1, eta), norm=norm)
        mode = "glides" if eta * lam < 1 else "bounces"
        ax.set_title(rf"$\eta\lambda$ = {eta * lam:.2g}: {mode}", fontsize=9)
        ax.set_xlabel("u")
        ax.set_ylabel("v" if i == 0 else "")
        if i:
            ax.set_yticklabels([])
    lr_colorbar(row_top, top, norm, label=r"LR $\eta$", shrink=0.85, pad=0.02)
    ax_d, ax_u = row_bottom.subplots(1, 2)
    steps = data["steps"]
    for i, eta in enumerate(lrs):
        c = lr_color(eta, norm)
        lab = rf"$\eta$ = {eta:g} ($\eta\lambda$ = {eta * lam:.2g})"
        ax_d.plot(steps[:k + 1], data["delta"][i, :k + 1], "o-", ms=3, color=c, lw=1.1, label=lab)
        ax_u.plot(steps[1:], data["u"][i, 1:] - data["u"][i, 0], color=c, label=lab)
    ax_d.axhline(0, color="0.4", lw=0.7)
    ax_d.set_xlabel("step")
    ax_d.set_ylabel(r"hill offset $\delta_t = v_t$")
    ax_d.set_title("across: sign flips iff " + r"$\eta\lambda > 1$", fontsize=9)
    ax_u.set_xscale("log")
    ax_u.set_xlabel("step")
    ax_u.set_ylabel(r"river progress $u_t - u_0$")
    ax_u.set_title("along: progress grows with the LR", fontsize=9)
    ax_u.legend(loc="upper left", fontsize=7.5)
    return fig


def check(data: dict, config: Config) -> None:
    lrs, lam = np.asarray(config.learning_rates), config.sharpness
    assert (lrs * lam < 1).any() and (lrs * lam > 1).any(), "need LRs on both sides of 1/lambda"
    for i, eta in enumerate(lrs):
        flips = _flips(data["delta"][i])
        assert flips.size >= 10, (eta, flips.size)
        if eta * lam > 1:
            assert flips.all(), f"eta*lambda = {eta * lam:.2f} > 1 but delta kept its sign"
        else:
            assert not flips.any(), f"eta*lambda = {eta * lam:.2f} < 1 but delta flipped sign"
        # GD on the straight quadratic hill: delta_t = (1 - eta*lambda)^t delta_0 exactly. In
        # float32 each step multiplies by 1 - eta*lambda with a relative error of about
        # (eta lambda / |1 - eta lambda| + 2) eps32 (eta's rounding, amplified near eta lambda = 1,
        # and the update's own), compounding over the steps
        t = np.arange(10)
        amplified = eta * lam / abs(1 - eta * lam) + 2
        rtol = t[-1] * amplified * np.finfo(np.float32).eps
        d = data["delta"][i, t]
        np.testing.assert_allclose(d, d[0] * (1 - eta * lam) ** t, rtol=rtol)
    # progress along the river grows with the LR (river time tau = eta * t)
    prog = data["u"][:, -1] - data["u"][:, 0]
    assert np.all(np.diff(prog) > 0), prog


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
