"""The standard toy river valley (THEORY.md §2): a 3-D surface and its contours."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from rivervalley.figures.registry import register
from rivervalley.landscapes import STANDARD_TOY

CAPTION = (
    "The standard toy river valley L(u, v) = log(1 + e^-u) + (lambda/2) v^2, "
    f"lambda = {STANDARD_TOY.sharpness:g}.\n"
    "Across the river (v) the walls are sharp; along it (u) the floor descends slowly and "
    "flattens without ever reaching a minimum. The river (v = 0, blue line) is the valley "
    "floor."
)


@dataclass(frozen=True)
class Config:
    sharpness: float = STANDARD_TOY.sharpness
    u_range: tuple[float, float] = (-3.0, 6.0)
    v_range: tuple[float, float] = (-0.5, 0.5)
    grid: int = 121


FULL = Config()
FAST = Config(grid=61)


def compute(config: Config, key: jax.Array) -> dict:
    from rivervalley import landscapes
    from rivervalley.plotting import loss_grid

    del key  # deterministic
    valley = landscapes.standard_toy(sharpness=config.sharpness)
    X, Y, Z = loss_grid(valley, xlim=config.u_range, ylim=config.v_range, num=config.grid)
    us = np.linspace(*config.u_range, config.grid)
    river = np.asarray(jax.vmap(valley.river_loss)(np.stack([us, np.zeros_like(us)], 1)))
    return {"X": X, "Y": Y, "Z": Z, "river_u": us, "river_v": np.zeros_like(us),
            "river_loss": river}


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator

    from rivervalley.plotting import plot_contour, plot_surface

    fig = plt.figure(figsize=(7.2, 3.3))
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    grid = (data["X"], data["Y"], data["Z"])
    river = (data["river_u"], data["river_v"])
    plot_surface(ax3, grid, river=river)
    ax3.set_title("loss surface", fontsize=9.5)
    ax3.set_box_aspect((1.6, 1.0, 0.8))
    ax = fig.add_subplot(1, 2, 2)
    cs = plot_contour(ax, grid, river=river)
    cb = fig.colorbar(cs, ax=ax, shrink=0.9, ticks=LogLocator(subs=(1.0, 3.0)),
                      format=LogFormatterSciNotation(labelOnlyBase=False))
    cb.set_label("loss (log levels)")
    ax.set_title(rf"contours, $\lambda$ = {config.sharpness:g} across the river",
                 fontsize=9.5)
    ax.legend(loc="upper right", fontsize=8, frameon=True)
    return fig


def check(data: dict, config: Config) -> None:
    Z, Y = data["Z"], data["Y"]
    # the valley floor is the river: the loss is minimal across the valley at v = 0 for every u
    floor_v = Y[np.argmin(Z, axis=0), np.arange(Z.shape[1])]
    assert np.all(np.abs(floor_v) <= np.abs(np.diff(Y[:, 0])).max()), floor_v
    # along the river: strictly descending and flattening, never reaching a minimum
    r = data["river_loss"]
    assert np.all(np.diff(r) < 0)
    assert abs(np.diff(r)[-1]) < 0.1 * abs(np.diff(r)[0])
    # across: sharp walls, curvature lambda (finite differences of the grid at the floor)
    j = Z.shape[1] // 2
    i = int(np.argmin(Z[:, j]))
    h = Y[1, 0] - Y[0, 0]
    curv = (Z[i + 1, j] - 2 * Z[i, j] + Z[i - 1, j]) / h**2
    assert abs(curv / config.sharpness - 1) < 1e-2, curv


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
