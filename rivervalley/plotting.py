"""Plotting helpers: each takes an ``ax`` and numpy data, draws, and never touches global state.

No helper calls ``plt.rcParams[...] = ...``, ``plt.style.use`` or ``plt.gca``; colours come from
:data:`colors` (Okabe-Ito, colour-blind safe) and learning rates share one sequential colormap
(:func:`lr_cmap`, :func:`lr_norm`) so every figure colours LR the same way. Use the shipped style by
name, locally: ``with plt.style.context(rv.plotting.STYLE): ...``.

Example:
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt, numpy as np
    >>> fig, ax = plt.subplots()
    >>> line = plot_schedule(ax, np.arange(10), np.linspace(1, 0, 10), label="linear")
    >>> print(len(ax.lines), ax.get_ylabel())
    1 learning rate
    >>> plt.close(fig)
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The package's matplotlib style, usable by name: ``plt.style.use(rv.plotting.STYLE)``.
STYLE = "rivervalley.styles.paper"

#: Colour-blind-safe cycle (Okabe-Ito), the same as the style's ``axes.prop_cycle``.
colors: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                           "#F0E442", "#000000")

#: Colours of the loss parts, shared by every figure.
PART_COLORS = {"loss": "#000000", "river": "#0072B2", "hill": "#D55E00", "theory": "#000000"}

#: How every figure draws the multi-checkpoint plans of :mod:`rivervalley.plans`, keyed by
#: ``Plan.kind``: colour, marker and legend label.
PLAN_COLORS = {"wsd_s": colors[0], "wsd": colors[1], "cyclic_cosine": colors[2], "cosine": "0.45"}
#: Marker of each plan kind in the plan figures.
PLAN_MARKERS = {"wsd_s": "D", "wsd": "o", "cyclic_cosine": "^", "cosine": "s"}
#: Legend label of each plan kind in the plan figures.
PLAN_LABELS = {"wsd_s": "WSD-S", "wsd": "WSD (branches)", "cyclic_cosine": "cyclic cosine",
               "cosine": "cosine per budget"}

_LR_CMAP = "viridis"


def lr_cmap():
    """The one sequential colormap for learning rates (viridis: dark = low LR, yellow = high)."""
    import matplotlib

    return matplotlib.colormaps[_LR_CMAP]


def lr_norm(vmin: float = 0.0, vmax: float = 0.1):
    """The LR normalization: linear from ``vmin`` to ``vmax``.

    Example:
        >>> print(float(lr_norm(0.0, 0.1)(0.05)))
        0.5
    """
    from matplotlib.colors import Normalize

    if not np.isfinite(vmin) or not np.isfinite(vmax) or vmax <= vmin:
        raise ValueError(f"vmin={vmin}, vmax={vmax}: need finite vmin < vmax")
    return Normalize(vmin=vmin, vmax=vmax)


def lr_color(lr: float, norm=None) -> tuple:
    """The colour of learning rate ``lr`` under ``norm`` (default :func:`lr_norm`)."""
    norm = lr_norm() if norm is None else norm
    return lr_cmap()(norm(lr))


def lr_colorbar(fig, ax, norm=None, *, label: str = "learning rate", **kwargs):
    """A colorbar of the LR colormap beside ``ax`` (``fig.colorbar``: no global state)."""
    import matplotlib.cm as cm

    norm = lr_norm() if norm is None else norm
    sm = cm.ScalarMappable(norm=norm, cmap=lr_cmap())
    sm.set_array([])
    cb = fig.colorbar(sm, ax=ax, **kwargs)
    cb.set_label(label)
    return cb


def plot_schedule(ax, steps: np.ndarray, lr: np.ndarray, *, checkpoints=None,
                  label: str | None = None, **kwargs):
    """LR against step; ``checkpoints`` (steps) are marked with black dots on the curve.

    Returns:
        The ``Line2D`` of the schedule.
    """
    steps, lr = np.asarray(steps), np.asarray(lr)
    if steps.shape != lr.shape:
        raise ValueError(f"steps has shape {steps.shape} but lr has shape {lr.shape}")
    (line,) = ax.plot(steps, lr, label=label, **kwargs)
    if checkpoints is not None and len(checkpoints):
        idx = np.clip(np.searchsorted(steps, np.asarray(checkpoints)), 0, len(steps) - 1)
        ax.plot(steps[idx], lr[idx], "o", color="k", ms=4, zorder=5)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    return line


def plot_loss(ax, steps: np.ndarray, loss: np.ndarray, *, river=None, hill=None, theory=None,
              label: str | None = None, color=None, **kwargs):
    """Total loss (solid), its river and hill parts (thin, coloured) and theory (dashed).

    Args:
        ax: the axes.
        steps: record steps, shape (n,).
        loss: total loss, shape (n,).
        river, hill: the parts, shape (n,) (optional).
        theory: predicted total loss, shape (n,) (optional), drawn dashed.
        label: legend label of the total.
        color: colour of the total (default black).

    Returns:
        The ``Line2D`` of the total.
    """
    steps = np.asarray(steps)
    color = PART_COLORS["loss"] if color is None else color
    (line,) = ax.plot(steps, np.asarray(loss), color=color, label=label, **kwargs)
    if river is not None:
        ax.plot(steps, np.asarray(river), color=PART_COLORS["river"], lw=1.2,
                label=None if label is None else "river loss")
    if hill is not None:
        ax.plot(steps, np.asarray(hill), color=PART_COLORS["hill"], lw=1.2,
                label=None if label is None else "hill loss")
    if theory is not None:
        ax.plot(steps, np.asarray(theory), color=PART_COLORS["theory"], ls=(0, (4, 2)), lw=1.0,
                label=None if label is None else "theory")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    return line


def loss_grid(landscape: Any, *, xlim: tuple[float, float], ylim: tuple[float, float],
              num: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The loss of a 2-D landscape on a ``num`` x ``num`` grid: (X, Y, Z) numpy arrays.

    Uses JAX once (``vmap`` of ``landscape.loss``); figure modules call it in ``compute``.
    """
    import jax
    import jax.numpy as jnp

    if getattr(landscape, "dim", 2) != 2:
        raise ValueError(f"landscape.dim={landscape.dim}: loss_grid needs a 2-D landscape")
    xs = np.linspace(*xlim, num)
    ys = np.linspace(*ylim, num)
    X, Y = np.meshgrid(xs, ys)
    pts = jnp.asarray(np.stack([X.ravel(), Y.ravel()], axis=1), jnp.float32)
    Z = np.asarray(jax.jit(jax.vmap(landscape.loss))(pts)).reshape(X.shape)
    return X, Y, Z


def _grid(landscape, xlim, ylim, num):
    if isinstance(landscape, (tuple, list)) and len(landscape) == 3:
        return tuple(np.asarray(a) for a in landscape)
    if xlim is None or ylim is None:
        raise ValueError("xlim and ylim are required when a landscape (not a grid) is given")
    return loss_grid(landscape, xlim=xlim, ylim=ylim, num=num)


def _river_line(landscape, xlim, num):
    from rivervalley.protocols import RiverFrame

    if isinstance(landscape, RiverFrame):
        import jax
        import jax.numpy as jnp

        us = jnp.linspace(*xlim, num, dtype=jnp.float32)
        pts = np.asarray(jax.vmap(lambda u: landscape.to_world(
            jnp.concatenate([u[None], landscape.course_at(u)])))(us))
        return pts[:, 0], pts[:, 1]
    return None


def plot_contour(ax, landscape: Any, *, xlim=None, ylim=None, river=None, num: int = 200,
                 levels: int = 14, cmap: str = "Greys_r", river_label: str | None = "river"):
    """Contours of a 2-D landscape with log-spaced levels and the river marked.

    For a colorbar with readable decade ticks: ``fig.colorbar(cs, ax=ax, ticks=LogLocator())``.

    Args:
        ax: the axes.
        landscape: a 2-D landscape (evaluated with :func:`loss_grid`) or a precomputed grid
            ``(X, Y, Z)`` (what a figure's ``plot`` passes: no JAX there).
        xlim, ylim: the window (required for a landscape; default: the grid's extent).
        river: ``(xs, ys)`` of the river line (default: the landscape's river points, or the
            bottom of the valley of the grid, ``argmin_y Z`` per column).
        num: grid resolution for a landscape.
        levels: number of log-spaced contour levels between the grid's 2nd and 98th percentile.
        cmap: colormap of the filled contours (light = high loss).
        river_label: legend label of the river line (None: no label).

    Returns:
        The ``QuadContourSet`` of the filled contours.
    """
    from matplotlib.colors import LogNorm

    X, Y, Z = _grid(landscape, xlim, ylim, num)
    zpos = Z[Z > 0]
    if zpos.size == 0:
        raise ValueError("plot_contour needs a positive loss somewhere on the grid (log levels)")
    lo, hi = np.percentile(zpos, 1), np.percentile(zpos, 99.5)
    lv = np.geomspace(lo, hi, levels)
    cs = ax.contourf(X, Y, np.clip(Z, lo, hi), levels=lv, norm=LogNorm(lo, hi), cmap=cmap,
                     alpha=0.55, extend="neither")
    ax.contour(X, Y, np.clip(Z, lo, hi), levels=lv, colors="0.35", linewidths=0.4)
    if river is None:
        river = _river_line(landscape, (X.min(), X.max()), num) if not isinstance(
            landscape, (tuple, list)) else (X[0], Y[np.argmin(Z, axis=0), np.arange(Z.shape[1])])
    if river is not None:
        ax.plot(river[0], river[1], color=PART_COLORS["river"], lw=2.0, label=river_label,
                zorder=3)
    ax.set_xlim(X.min(), X.max())
    ax.set_ylim(Y.min(), Y.max())
    ax.set_xlabel("u (along the river)")
    ax.set_ylabel("v (across the river)")
    return cs


def plot_trajectory(ax, xy: np.ndarray, lr: np.ndarray, *, norm=None, lw: float = 1.4,
                    markers: bool = True, zorder: int = 4):
    """A 2-D path coloured by the LR of each segment (a ``LineCollection``).

    Args:
        ax: the axes.
        xy: points, shape (n, 2).
        lr: the LR of each point, shape (n,) (segment i is coloured by lr[i]).
        norm: LR normalization (default :func:`lr_norm`); pair with :func:`lr_colorbar`.
        lw: line width.
        markers: also mark the points (small dots) and the start (a white circle).

    Returns:
        The ``LineCollection``.
    """
    from matplotlib.collections import LineCollection

    xy, lr = np.asarray(xy, float), np.asarray(lr, float)
    if xy.ndim != 2 or xy.shape[1] != 2 or lr.shape != (xy.shape[0],):
        raise ValueError(f"xy has shape {xy.shape} and lr {lr.shape}: need (n, 2) and (n,)")
    norm = lr_norm() if norm is None else norm
    segs = np.stack([xy[:-1], xy[1:]], axis=1)
    lc = LineCollection(segs, cmap=lr_cmap(), norm=norm, linewidths=lw, zorder=zorder)
    lc.set_array(lr[:-1])
    ax.add_collection(lc)
    if markers:
        ax.scatter(xy[:, 0], xy[:, 1], c=lr, cmap=lr_cmap(), norm=norm, s=7, zorder=zorder + 1,
                   linewidths=0)
        ax.plot(xy[0, 0], xy[0, 1], "o", mfc="white", mec="k", ms=5, zorder=zorder + 2)
    return lc


def plot_surface(ax3d, landscape: Any, *, xlim=None, ylim=None, num: int = 80,
                 zmax: float | None = None, cmap: str = "Oranges", river=None, elev: float = 32,
                 azim: float = -125):
    """A 3-D surface of a 2-D landscape (clipped at ``zmax``) with the river drawn on it.

    Args:
        ax3d: a ``projection="3d"`` axes.
        landscape: a 2-D landscape or a grid ``(X, Y, Z)``.
        xlim, ylim, num: the window and resolution for a landscape.
        zmax: clip the loss at this height (default: no clipping).
        cmap: colormap of the surface.
        river: ``(xs, ys)`` of the river (default as in :func:`plot_contour`).
        elev, azim: the view.

    Returns:
        The ``Poly3DCollection`` of the surface.
    """
    X, Y, Z = _grid(landscape, xlim, ylim, num)
    zmax = float(np.max(Z)) if zmax is None else float(zmax)
    Zc = np.where(Z > zmax, np.nan, Z)
    surf = ax3d.plot_surface(X, Y, Zc, cmap=cmap, vmin=np.nanmin(Zc), vmax=zmax, rstride=1,
                             cstride=1, linewidth=0, antialiased=False, alpha=0.9)
    if river is None:
        river = (X[0], Y[np.argmin(Z, axis=0), np.arange(Z.shape[1])])
    rx, ry = np.asarray(river[0]), np.asarray(river[1])
    rz = np.array([Z[np.argmin(np.abs(Y[:, 0] - y)), np.argmin(np.abs(X[0] - x))]
                   for x, y in zip(rx, ry)])
    ax3d.plot(rx, ry, rz + 0.01 * (zmax - np.nanmin(Zc)), color=PART_COLORS["river"], lw=2.5,
              zorder=10)
    ax3d.set_zlim(np.nanmin(Zc), zmax)
    ax3d.view_init(elev=elev, azim=azim)
    ax3d.set_xlabel("u (along)")
    ax3d.set_ylabel("v (across)")
    ax3d.set_zlabel("loss")
    return surf


def plot_heatmap(ax, x: np.ndarray, y: np.ndarray, z: np.ndarray, *, log: bool = True,
                 cmap: str = "magma_r", label: str | None = None, fig=None, mark_min: bool = True):
    """``z[i, j]`` at (x[j], y[i]) as a pcolormesh (log colour scale by default), minimum marked.

    Args:
        ax: the axes.
        x: column coordinates, shape (nx,); y: row coordinates, shape (ny,); z: shape (ny, nx).
        log: log colour normalization (needs z > 0).
        cmap: the colormap.
        label: colorbar label (a colorbar is drawn when ``fig`` is given).
        fig: the figure, for the colorbar.
        mark_min: mark the argmin of each row with a white dot.

    Returns:
        The ``QuadMesh``.
    """
    from matplotlib.colors import LogNorm, Normalize

    x, y, z = np.asarray(x), np.asarray(y), np.asarray(z)
    if z.shape != (y.size, x.size):
        raise ValueError(f"z has shape {z.shape}; expected (len(y), len(x)) = ({y.size}, {x.size})")
    norm = LogNorm(np.nanmin(z), np.nanmax(z)) if log else Normalize(np.nanmin(z), np.nanmax(z))
    mesh = ax.pcolormesh(x, y, z, norm=norm, cmap=cmap, shading="nearest")
    if mark_min:
        j = np.nanargmin(z, axis=1)
        ax.plot(x[j], y, "o", mfc="white", mec="k", ms=4)
    if fig is not None:
        cb = fig.colorbar(mesh, ax=ax)
        if label:
            cb.set_label(label)
    return mesh


def mean_sem(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the mean over ``axis`` (seeds), ignoring NaN (diverged runs).

    The standard error is ``std(ddof=1) / sqrt(n)`` with ``n`` the number of finite values; it
    is NaN where fewer than two values are finite.

    Example:
        >>> m, se = mean_sem(np.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> print(m.tolist(), [round(float(x), 3) for x in se])
        [2.0, 3.0] [1.0, 1.0]
    """
    v = np.asarray(values, dtype=np.float64)
    n = np.sum(np.isfinite(v), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(v, axis=axis) if v.size else np.full(np.delete(v.shape, axis), np.nan)
        sd = np.nanstd(v, axis=axis, ddof=1) if np.max(n, initial=0) > 1 else np.full_like(mean, np.nan)
        sem = np.where(n > 1, sd / np.sqrt(np.maximum(n, 1)), np.nan)
    return mean, sem


def plot_sweep(ax, result: Any, *, batch: int | Any = None, labels=None, parts: bool = False,
               colors_=None, band: float = 1.0, log: bool = False):
    """A sweep's loss curves as the seed mean with a +- ``band`` standard-error band, one curve
    per batch entry (configuration); optionally its river and hill parts (thin, same colour,
    dashed river / dotted hill).

    Args:
        ax: the axes.
        result: a :class:`rivervalley.SweepResult` (arrays (seeds, batch, records)).
        batch: which batch entries to draw (an index or a sequence; default all).
        labels: one legend label per drawn entry (default ``"config b"``).
        parts: also draw the river and hill parts (their seed means).
        colors_: one colour per drawn entry (default :data:`colors`).
        band: the band's half-width in standard errors (0: no band).
        log: log-scale the loss axis.

    Returns:
        The ``Line2D`` of each drawn mean curve.
    """
    traj = result.trajectory
    loss = np.asarray(traj.loss)
    if loss.ndim != 3:
        raise ValueError(f"result.trajectory.loss has shape {loss.shape}; a SweepResult has "
                         "(seeds, batch, records)")
    n_batch = loss.shape[1]
    idx = list(range(n_batch)) if batch is None else list(np.atleast_1d(batch))
    for b in idx:
        if not 0 <= int(b) < n_batch:
            raise ValueError(f"batch={batch!r} holds {b}, outside [0, {n_batch - 1}]")
    if labels is not None and len(labels) != len(idx):
        raise ValueError(f"labels has {len(labels)} entries for {len(idx)} drawn batch entries")
    steps = np.asarray(traj.steps)
    steps = steps.reshape(-1, steps.shape[-1])[0] if steps.ndim > 1 else steps
    cols = colors if colors_ is None else colors_
    lines = []
    for i, b in enumerate(idx):
        c = cols[i % len(cols)]
        mean, sem = mean_sem(loss[:, int(b)], axis=0)
        (line,) = ax.plot(steps, mean, color=c, lw=1.5,
                          label=f"config {b}" if labels is None else labels[i])
        if band > 0 and loss.shape[0] > 1:
            ax.fill_between(steps, mean - band * sem, mean + band * sem, color=c, alpha=0.25,
                            lw=0)
        if parts:
            for name, ls in (("river_loss", (0, (4, 2))), ("hill_loss", (0, (1, 1.5)))):
                m, _ = mean_sem(np.asarray(getattr(traj, name))[:, int(b)], axis=0)
                ax.plot(steps, m, color=c, lw=0.9, ls=ls)
        lines.append(line)
    if parts:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color="0.3", lw=0.9, ls=(0, (4, 2)), label="river part"),
                   Line2D([], [], color="0.3", lw=0.9, ls=(0, (1, 1.5)), label="hill part")]
        ax.add_artist(ax.legend(handles=handles, loc="upper right", frameon=False))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss (mean +- {band:g} s.e. over {loss.shape[0]} seeds)" if band > 0
                  and loss.shape[0] > 1 else "loss")
    return lines


def compute_axis(ax, compute, *, label: str = "compute spent (steps)") -> list[int]:
    """A log-scaled x axis of compute with one labelled tick at each value of ``compute`` (the
    steps spent to reach each checkpoint of multi-budget plans), and no minor-tick labels.

    Args:
        ax: the axes.
        compute: the compute values (steps, any shape; each distinct value is one tick).
        label: the axis label.

    Returns:
        The tick positions, sorted.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> compute_axis(ax, [[1000, 2200], [2200, 4600]]), ax.get_xscale()
        ([1000, 2200, 4600], 'log')
        >>> plt.close(fig)
    """
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter

    values = np.asarray(compute, dtype=float).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"compute={values.tolist()} must hold finite steps > 0 (a log axis)")
    ticks = sorted({int(v) for v in values})
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FixedFormatter([f"{t:,}" for t in ticks]))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis="x", labelrotation=35, labelsize=7.5)
    for text in ax.get_xticklabels():
        text.set_horizontalalignment("right")
    ax.set_xlabel(label)
    return ticks


__all__ = ["STYLE", "colors", "PART_COLORS", "PLAN_COLORS", "PLAN_MARKERS", "PLAN_LABELS",
           "lr_cmap", "lr_norm", "lr_color", "lr_colorbar", "plot_schedule", "plot_loss",
           "loss_grid", "plot_contour", "plot_trajectory", "plot_surface", "plot_heatmap",
           "mean_sem", "plot_sweep", "compute_axis"]
