"""A meandering river: the true valley floor is not the reference course, and GD follows the floor."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from rivervalley.figures.registry import register

CAPTION = (
    "On a meandering river the valley floor (where the gradient points along the valley) sits "
    "off the reference course c(u) = A sin(ku), and gradient descent travels along the floor.\n"
    "L(u, v) = log(1 + e^-u) + (lambda/2)(v - c(u))^2, lambda = 5, A = 0.3, k = 1.5. Left: "
    "contours, the course (blue), the floor found by projected Newton steps "
    "(`RiverValley.valley_floor`, dashed) and a GD path from an off-river start. Right: the offset "
    "across the river from the course: the floor against its first-order form "
    "c'f' / (lambda (1 + c'^2)), and the GD path, which tracks the floor, not the course."
)


@dataclass(frozen=True)
class Config:
    sharpness: float = 5.0
    amplitude: float = 0.3
    wavenumber: float = 1.5
    u_range: tuple[float, float] = (-2.5, 6.0)
    start: tuple[float, float] = (-2.0, 0.5)
    learning_rate: float = 0.02
    num_steps: int = 6000
    points: int = 400


FULL = Config()
FAST = Config(points=120, num_steps=3000)


def compute(config: Config, key: jax.Array) -> dict:
    import jax.numpy as jnp

    from rivervalley import landscapes, schedules
    from rivervalley.dynamics import simulate
    from rivervalley.plotting import loss_grid

    del key  # deterministic (GD)
    c = config
    valley = landscapes.standard_toy(sharpness=c.sharpness, amplitude=c.amplitude,
                                     wavenumber=c.wavenumber)
    us = np.linspace(*c.u_range, c.points)
    floor = np.asarray(valley.valley_floor(jnp.asarray(us)))
    course = lambda u: c.amplitude * np.sin(c.wavenumber * u)
    slope = lambda u: c.amplitude * c.wavenumber * np.cos(c.wavenumber * u)  # c'(u)
    river_grad = lambda u: -1.0 / (1.0 + np.exp(u))  # f'(u) for f = softplus(-u)
    tr = simulate(valley, jnp.asarray(c.start), schedules.constant(c.learning_rate),
                  num_steps=c.num_steps)
    path = np.asarray(tr.params)
    half = c.amplitude + 0.7
    X, Y, Z = loss_grid(valley, xlim=c.u_range, ylim=(-half, half), num=c.points // 2)
    return {
        "X": X, "Y": Y, "Z": Z, "us": us, "course_v": course(us),
        "floor_u": floor[:, 0], "floor_v": floor[:, 1],
        "floor_offset": floor[:, 1] - course(floor[:, 0]),
        "first_order_offset": slope(us) * river_grad(us)
        / (c.sharpness * (1.0 + slope(us) ** 2)),
        "path_u": path[:, 0], "path_v": path[:, 1],
        "path_offset": path[:, 1] - course(path[:, 0]),
    }


def _on_the_floor(data: dict, config: Config) -> np.ndarray:
    """The steps of the GD path after its first descent onto the floor (half a unit along)."""
    return data["path_u"] > config.start[0] + 0.5


def plot(data: dict, config: Config):
    import matplotlib.pyplot as plt

    from rivervalley.plotting import PART_COLORS, plot_contour

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10.0, 3.8), width_ratios=(1.25, 1.0))
    plot_contour(ax, (data["X"], data["Y"], data["Z"]), river=(data["us"], data["course_v"]),
                 river_label="reference course $c(u)$")
    ax.plot(data["floor_u"], data["floor_v"], color="C3", lw=1.4, ls="--", label="valley floor",
            zorder=4)
    ax.plot(data["path_u"], data["path_v"], color="black", lw=0.8, label="GD path", zorder=5)
    ax.plot(data["path_u"][:1], data["path_v"][:1], "o", color="black", ms=4)
    ax.set_xlim(data["X"].min(), data["X"].max())
    ax.set_xlabel("u (along the river)")
    ax.set_ylabel("v (across)")
    ax.set_title("a meandering valley")
    ax.legend(loc="lower right", fontsize=7.5)

    us = data["us"]
    keep = _on_the_floor(data, config)
    ax2.axhline(0.0, color=PART_COLORS["river"], lw=2.0, label="course $c(u)$")
    ax2.plot(data["floor_u"], data["floor_offset"], color="C3", lw=2.0, label="floor (numeric)")
    ax2.plot(us, data["first_order_offset"], color="C3", ls=":", lw=1.4,
             label=r"first order $c'f'/(\lambda(1+c'^2))$")
    ax2.plot(data["path_u"][keep], data["path_offset"][keep], color="black", lw=0.8,
             label="GD path")
    ax2.set_xlim(us[0], us[-1])
    ax2.set_xlabel("u (along the river)")
    ax2.set_ylabel("offset from the course $v - c(u)$")
    ax2.set_title("the floor is off the course; GD follows the floor")
    ax2.legend(loc="lower right", fontsize=7.5)
    return fig


def check(data: dict, config: Config) -> None:
    off, first = data["floor_offset"], data["first_order_offset"]
    # the floor is measurably off the course, by O(|c' f'| / lambda)
    assert np.abs(off).max() > 0.02, np.abs(off).max()
    # and matches the first-order offset at each u (interpolated to the floor's own u)
    approx = np.interp(data["floor_u"], data["us"], first)
    err = np.abs(off - approx).max()
    assert err < 0.15 * np.abs(off).max(), (err, np.abs(off).max())
    # GD, once down on the floor, tracks the floor and not the course
    keep = _on_the_floor(data, config)
    pu, poff = data["path_u"][keep], data["path_offset"][keep]
    order = np.argsort(data["floor_u"])
    floor_at_path = np.interp(pu, data["floor_u"][order], off[order])
    to_floor = np.abs(poff - floor_at_path).mean()
    to_course = np.abs(poff).mean()
    assert to_floor < 0.25 * to_course, (to_floor, to_course)


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
