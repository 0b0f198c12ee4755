"""The explorer's three panels and its status line: static furniture, data artists, limits.

- **valley**: ``log10 L(u, v)`` as a banded image (reads like a contour plot, redraws ~10x
  faster), the river course ``v = c(u)``, and the SGD path coloured by the learning rate of each
  step (:func:`rivervalley.plotting.lr_cmap`);
- **loss**: the SGD loss and its river and hill parts (the hill part as a running mean of
  :data:`SMOOTH` records), with the expected loss and parts of THEORY.md §4, in the colours of
  :data:`rivervalley.plotting.PART_COLORS`;
- **learning rate**: the schedule and the stability limit 2 / lambda
  (:func:`rivervalley.landscapes.stability_limit`).

Everything that changes with a setting is an *animated* artist (:attr:`Panels.regions`): a full
draw leaves it out and :class:`~rivervalley.explorer._blit.Blitter` draws it over the saved
background, so a slider move redraws no tick label. Limits are not touched by :meth:`Panels.show`;
:meth:`Panels.limits` gives the limits that fit a run, applied on release of a slider (a full
redraw) by the window.
"""

from __future__ import annotations

import math

import numpy as np

from rivervalley import dynamics, plotting
from rivervalley.explorer._frame import view_of
from rivervalley.explorer._layout import ALERT_XY, LAYOUT
from rivervalley.explorer._settings import SLIDERS, Settings

#: The hill part is drawn as a running mean over this many records (the theory is an expectation).
SMOOTH = 25
#: Pieces of the coloured trajectory at most (a LineCollection of 2000 one-segment paths costs
#: ~80 ms to build, of 250 pieces ~8 ms).
MAX_SEGMENTS = 250
#: Loss bands of the valley image, over at most IMAGE_DECADES decades above its minimum (and at
#: least MIN_IMAGE_DECADES: a flat image still needs increasing band edges).
BANDS = 16
IMAGE_DECADES, MIN_IMAGE_DECADES = 4.0, 1e-3
#: The valley image's log10 is taken of max(L, LOSS_FLOOR) (the loss is >= 0; 0 on the floor).
LOSS_FLOOR = 1e-12
#: Expected losses are drawn up to the engine's divergence threshold (its default).
THEORY_CAP = dynamics.DIVERGENCE_THRESHOLD
#: Loss panel: the top is LOSS_HEADROOM x the largest loss (at most LOSS_MAX); the bottom is
#: LOSS_FOOTROOM x the LOSS_PERCENTILE-th percentile of the losses (HILL_PERCENTILE-th of the hill
#: part, which sits lower), at most MAX_LOSS_DECADES and at least MIN_LOSS_DECADES below the top,
#: and at least LOSS_MIN.
LOSS_HEADROOM, LOSS_MAX = 2.0, 1e6
LOSS_FOOTROOM, LOSS_PERCENTILE, HILL_PERCENTILE = 0.5, 1.0, 10.0
MAX_LOSS_DECADES, MIN_LOSS_DECADES, LOSS_MIN = 4.0, 1.0, 1e-8
#: After a divergence the loss panel shows the first DIVERGENCE_ZOOM x (its step) steps, at least
#: MIN_ZOOM_STEPS.
DIVERGENCE_ZOOM, MIN_ZOOM_STEPS = 3, 50
#: The learning-rate panel's top: LR_HEADROOM x max(peak, min(2 / lambda, 2 peak)).
LR_HEADROOM = 1.15
#: Font sizes: panel titles and the status line, legends, the colorbar label, the alert.
TITLE_SIZE, LEGEND_SIZE, LABEL_SIZE, ALERT_SIZE = 11, 8, 9, 12
#: The image colours span the lighter part of the grey map (the LR colours stay readable on it).
GREYS_SPAN = (0.0, 0.45)


def polyline_chunks(pts: np.ndarray, values: np.ndarray, max_chunks: int):
    """Split a polyline into at most ``max_chunks`` connected pieces (sharing their end points),
    each coloured by the mean of ``values`` over it.

    >>> segs, c = polyline_chunks(np.arange(10.0).reshape(5, 2), np.arange(5.0), 2)
    >>> [len(s) for s in segs], c.tolist()
    ([3, 3], [1.5, 3.5])
    """
    n = len(pts)
    if n < 2:
        return [], np.zeros(0)
    size = max(1, math.ceil((n - 1) / max_chunks))
    starts = range(0, n - 1, size)
    segs = [pts[i:i + size + 1] for i in starts]
    colors = np.array([values[i + 1:i + size + 1].mean() for i in starts])
    return segs, colors


def running_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` records (fewer at the start); NaN propagates.

    >>> running_mean(np.array([1.0, 3.0, 5.0, 7.0]), 2).tolist()
    [1.0, 2.0, 4.0, 6.0]
    """
    c = np.cumsum(np.concatenate([[0.0], np.asarray(x, np.float64)]))
    n = np.arange(1, len(x) + 1)
    w = np.minimum(n, window)
    return (c[n] - c[n - w]) / w


def _positive(x: np.ndarray) -> np.ndarray:
    return x[np.isfinite(x) & (x > 0)]


class Panels:
    """The panels of the window (built on ``fig`` at :data:`LAYOUT`).

    Attributes:
        axes: the axes by name: ``valley``, ``loss``, ``lr``, ``status``.
        lines: the data artists by name (see :class:`rivervalley.explorer.Explorer`).
        valley_image, status, alert: the valley's image, the status line, the divergence alert.
        regions: ``{name: (axes, artists, overlays)}``: what a move redraws, axes by axes, and
            the legends pasted over it (see :class:`~rivervalley.explorer._blit.Blitter`).
    """

    def __init__(self, fig):
        self.axes = {name: fig.add_axes(LAYOUT[name]) for name in ("valley", "loss", "lr",
                                                                     "status")}
        valley, valley_legend = self._valley(fig, self.axes["valley"])
        loss, loss_legend = self._loss(self.axes["loss"])
        lr, lr_legend = self._lr(self.axes["lr"])
        ax = self.axes["status"]
        ax.set_axis_off()
        self.status = ax.text(0.5, 0.5, "", transform=ax.transAxes, ha="center", va="center",
                              fontsize=TITLE_SIZE)
        self.lines = {**valley, **loss, **lr}
        # the legends are opaque overlays (pasted, not redrawn)
        self.regions = {
            "valley": (self.axes["valley"], [self.valley_image, *valley.values()],
                       [valley_legend]),
            "loss": (self.axes["loss"], [*loss.values(), self.alert], [loss_legend]),
            "lr": (self.axes["lr"], list(lr.values()), [lr_legend]),
            "status": (ax, [self.status], []),
        }

    def _valley(self, fig, ax):
        import matplotlib
        from matplotlib import patheffects
        from matplotlib.collections import LineCollection

        ax.set_xlabel("river coordinate $u$ (along the valley)")
        ax.set_ylabel("hill coordinate $v$ (across)")
        ax.set_title("valley $\\log_{10} L(u,v)$ and the SGD path", fontsize=TITLE_SIZE)
        greys = matplotlib.colormaps["Greys"]
        self._cmap = matplotlib.colors.ListedColormap(greys(np.linspace(*GREYS_SPAN, 256)))
        self.valley_image = ax.imshow(np.zeros((2, 2)), origin="lower", aspect="auto",
                                      cmap=self._cmap, interpolation="bilinear",
                                      extent=(0, 1, 0, 1), zorder=1)
        norm = plotting.lr_norm(0.0, SLIDERS["peak_value"].hi)
        traj = LineCollection([], cmap=plotting.lr_cmap(), norm=norm, linewidths=0.8, zorder=3)
        ax.add_collection(traj)
        # outlined in white: the path's LR colours include the river's blue
        (river,) = ax.plot([], [], color=plotting.PART_COLORS["river"], lw=1.4, ls="--",
                           zorder=4, label="river $v=c(u)$",
                           path_effects=[patheffects.withStroke(linewidth=3, foreground="white")])
        (start,) = ax.plot([], [], "o", color="white", mec="black", ms=6, zorder=5,
                           label="start")
        legend = ax.legend(loc="upper left", fontsize=LEGEND_SIZE, framealpha=1.0)
        cb = fig.colorbar(traj, cax=fig.add_axes(LAYOUT["colorbar"]))
        cb.set_label("learning rate of the step", fontsize=LABEL_SIZE)
        return dict(trajectory=traj, river=river, start=start), legend

    def _loss(self, ax):
        part = plotting.PART_COLORS
        (loss,) = ax.plot([], [], color=part["loss"], lw=0.5, alpha=0.35, label="loss (SGD)")
        (river,) = ax.plot([], [], color=part["river"], lw=1.2, label="river part")
        (hill,) = ax.plot([], [], color=part["hill"], lw=1.0,
                          label=f"hill part (mean of {SMOOTH})")
        (theory,) = ax.plot([], [], color=part["theory"], lw=1.6, ls="--", label="theory: loss")
        (theory_r,) = ax.plot([], [], color=part["river"], lw=1.0, ls=":",
                              label="theory: river")
        (theory_h,) = ax.plot([], [], color=part["hill"], lw=1.0, ls=":", label="theory: hill")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title("loss = river + hill, and the theory (THEORY §4)", fontsize=TITLE_SIZE)
        legend = ax.legend(loc="lower left", fontsize=LEGEND_SIZE, ncol=2, framealpha=1.0)
        ax.grid(alpha=0.3, which="both")
        self.alert = ax.text(*ALERT_XY, "", transform=ax.transAxes, ha="center", va="center",
                             fontsize=ALERT_SIZE, color="white", fontweight="bold", zorder=10,
                             bbox=dict(boxstyle="round", fc="crimson", ec="none"),
                             visible=False)
        return dict(loss=loss, river_loss=river, hill_loss=hill, theory=theory,
                    theory_river=theory_r, theory_hill=theory_h), legend

    @staticmethod
    def _lr(ax):
        (lr,) = ax.plot([], [], color=plotting.colors[2], lw=1.6, label="LR schedule $\\eta_t$")
        stability = ax.axhline(np.nan, color="crimson", ls="--", lw=1.0,
                               label="stability $2/\\lambda$")
        ax.set_xlabel("step")
        ax.set_ylabel("learning rate")
        ax.set_title("learning-rate schedule", fontsize=TITLE_SIZE)
        legend = ax.legend(loc="upper right", fontsize=LEGEND_SIZE, framealpha=1.0)
        ax.grid(alpha=0.3)
        return dict(lr=lr, stability=stability), legend

    # -- data ------------------------------------------------------------------------------------
    def show(self, d: dict[str, np.ndarray], s: Settings, num_steps: int) -> None:
        """Put the run ``d`` (:func:`rivervalley.explorer.compute`) of settings ``s`` into the
        artists and the status line; the limits stay."""
        z = np.log10(np.maximum(d["grid_loss"], LOSS_FLOOR))
        lo = float(np.nanmin(z))
        hi = lo + max(min(float(np.nanmax(z)) - lo, IMAGE_DECADES), MIN_IMAGE_DECADES)
        img = self.valley_image
        img.set_data(z)
        img.set_extent((d["grid_u"][0], d["grid_u"][-1], d["grid_v"][0], d["grid_v"][-1]))
        img.set_norm(self._bands(lo, hi))
        xs = d["params"]
        ok = np.all(np.isfinite(xs), axis=1)
        segs, colors = polyline_chunks(xs[ok], d["lr"][ok], MAX_SEGMENTS)
        self.lines["trajectory"].set_segments(segs)
        self.lines["trajectory"].set_array(colors)
        self.lines["river"].set_data(d["river_u"], d["river_v"])
        self.lines["start"].set_data(xs[:1, 0], xs[:1, 1])

        steps = d["steps"]
        self.lines["loss"].set_data(steps, d["loss"])
        self.lines["river_loss"].set_data(steps, d["river_loss"])
        self.lines["hill_loss"].set_data(steps, running_mean(d["hill_loss"], SMOOTH))
        ts, ok = d["theory_steps"], self._theory_ok(d)
        for name, key in (("theory", "theory_loss"), ("theory_river", "theory_river"),
                          ("theory_hill", "theory_hill")):
            self.lines[name].set_data(ts[ok], d[key][ok])
        self.lines["lr"].set_data(ts, d["schedule_lr"])
        limit = float(d["stability_limit"])
        self.lines["stability"].set_ydata([limit, limit])
        self._texts(d, s, num_steps, limit)

    def _bands(self, lo: float, hi: float):
        from matplotlib.colors import BoundaryNorm

        return BoundaryNorm(np.linspace(lo, hi, BANDS + 1), self._cmap.N)

    @staticmethod
    def _theory_ok(d) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.isfinite(d["theory_loss"]) & (d["theory_loss"] < THEORY_CAP)

    def _texts(self, d, s: Settings, num_steps: int, limit: float) -> None:
        eta_lam = 2.0 * s.peak_value / limit
        diverged = int(d["diverged_at"])
        self.alert.set_visible(diverged >= 0)
        if diverged >= 0:
            self.alert.set_text(f"diverged at step {diverged}:\npeak \u03b7\u00b7\u03bb = "
                                f"{eta_lam:.2f} > 2 (limit 2/\u03bb = {limit:.3g})")
            self.status.set_text(f"{s.family}, {num_steps} steps: the hill offset grows by "
                                 f"|1 - \u03b7\u03bb| = {abs(1 - eta_lam):.2f} per step")
        else:
            self.status.set_text(
                f"{s.family}, {num_steps} steps, peak \u03b7\u00b7\u03bb = {eta_lam:.2f}:  "
                f"final loss {d['loss'][-1]:.4g} (river {d['river_loss'][-1]:.4g} + hill "
                f"{d['hill_loss'][-1]:.4g}),  theory {d['theory_loss'][-1]:.4g}")

    # -- limits ----------------------------------------------------------------------------------
    def limits(self, d: dict[str, np.ndarray], s: Settings, num_steps: int) -> dict:
        """The limits that fit the run ``d``: ``{panel: ((x_lo, x_hi), (y_lo, y_hi))}``."""
        u_lo, u_hi, v_lo, v_hi = view_of(d, s)
        diverged = int(d["diverged_at"])
        steps = num_steps if diverged < 0 else \
            min(num_steps, max(MIN_ZOOM_STEPS, DIVERGENCE_ZOOM * diverged))
        ok = self._theory_ok(d)
        vals = _positive(np.concatenate([d["loss"], d["river_loss"], d["theory_loss"][ok]]))
        hill = _positive(np.concatenate([running_mean(d["hill_loss"], SMOOTH),
                                         d["theory_hill"][ok]]))
        loss_y = self.axes["loss"].get_ylim()
        if vals.size:
            hi = min(vals.max() * LOSS_HEADROOM, LOSS_MAX)
            lo = np.percentile(vals, LOSS_PERCENTILE) * LOSS_FOOTROOM
            if hill.size:
                lo = min(lo, np.percentile(hill, HILL_PERCENTILE) * LOSS_FOOTROOM)
            lo = max(lo, hi * 10.0 ** -MAX_LOSS_DECADES, LOSS_MIN)
            loss_y = (float(lo), float(max(hi, lo * 10.0 ** MIN_LOSS_DECADES)))
        limit = float(d["stability_limit"])
        lr_top = LR_HEADROOM * max(s.peak_value, min(limit, 2 * s.peak_value))
        return {"valley": ((u_lo, u_hi), (v_lo, v_hi)), "loss": ((0, steps), loss_y),
                "lr": ((0, num_steps), (0.0, lr_top))}

    def current_limits(self) -> dict:
        """The panels' limits now, in the form of :meth:`limits`."""
        return {name: (self.axes[name].get_xlim(), self.axes[name].get_ylim())
                for name in ("valley", "loss", "lr")}

    def set_limits(self, limits: dict) -> None:
        """Apply limits of the form of :meth:`limits`."""
        for name, (x, y) in limits.items():
            self.axes[name].set_xlim(*x)
            self.axes[name].set_ylim(*y)

    def view(self) -> tuple[float, float, float, float]:
        """The valley panel's limits (u_lo, u_hi, v_lo, v_hi): the grid the frame computes."""
        ax = self.axes["valley"]
        return (*ax.get_xlim(), *ax.get_ylim())
