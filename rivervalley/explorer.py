"""An interactive river-valley explorer: one matplotlib figure with sliders and radio buttons.

    import rivervalley as rv
    ex = rv.explore()                  # a window (or an ipympl widget in Jupyter)

or ``rivervalley explore`` / ``rivervalley explore --snapshot explorer.png`` on the command line.

Controls: peak LR, warmup, decay fraction, decay shape, schedule family (constant / cosine / WSD /
WSD-S / cyclic cosine), gradient-noise level sigma, hill sharpness lambda, river meander amplitude
and the seed. Panels, updated live: the valley's contour with the SGD trajectory coloured by its
learning rate; the loss curve split into its river and hill parts with the theory prediction of
THEORY.md §4 (:func:`rivervalley.theory.expected_trajectory`'s recursion); the learning-rate schedule with the
stability limit 2/lambda.

No recompilation when a control moves: every value enters ONE jitted program as a traced array.
The five schedules are built on every update (pytrees with array leaves) and a traced index
selects the LR of the chosen family, so switching family does not recompile either. The
simulation is the engine's own scan (:mod:`rivervalley.dynamics`) with divergence reported, not
raised: a learning rate beyond 2/lambda shows "diverged at step N" in the figure.

Example:
    >>> ex = Explorer(num_steps=400)
    >>> ex.sliders["peak_value"].set_val(0.03)
    >>> print(ex.diverged_at, round(float(ex.data["lr"][0]), 3))
    -1 0.03
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley import dynamics, landscapes, schedules, theory
from rivervalley import noise as noise_models

#: Schedule families in radio-button order (the traced index selects one of them).
FAMILIES = ("constant", "cosine", "WSD", "WSD-S", "cyclic cosine")
#: WSD-S and cyclic cosine cycle ends, as fractions of num_steps (the paper's 12.5k/25k/50k).
CYCLE_ENDS = (0.25, 0.5, 1.0)
#: Min ratio of the decays; the inverse and exponential shapes need a positive one.
MIN_RATIO = {"inverse": 0.01, "exponential": 0.01}
#: Meander wavenumber k of c(u) = A sin(k u).
WAVENUMBER = 1.5
#: Points drawn per curve at most (the simulation still runs every step).
MAX_RECORDS = 2000
#: Pieces of the coloured trajectory at most.
MAX_SEGMENTS = 250
#: Contour grid resolution.
GRID = 120
#: The hill part is drawn as a running mean over this many records (the theory is an expectation).
SMOOTH = 25

#: Counts traces of the explorer's compiled program (a test asserts it stays at one).
TRACE_COUNT = {"frame": 0}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The explorer's controls; the defaults are THEORY.md's standard toy under WSD."""

    peak_value: float = 0.06
    warmup_fraction: float = 0.0
    decay_fraction: float = 0.2
    decay_shape: str = "linear"
    family: str = "WSD"
    sigma: float = 1.0
    sharpness: float = 20.0
    meander: float = 0.0
    seed: int = 0


#: The explorer's sliders: name -> (label, min, max, step or None for continuous).
SLIDERS = {
    "peak_value": ("peak LR $\\eta$", 0.002, 0.15, None),
    "warmup_fraction": ("warmup (frac.)", 0.0, 0.1, None),
    "decay_fraction": ("decay (frac.)", 0.02, 0.5, None),
    "sigma": ("noise $\\sigma$", 0.0, 3.0, None),
    "sharpness": ("sharpness $\\lambda$", 2.0, 100.0, None),
    "meander": ("meander $A$", 0.0, 1.0, None),
    "seed": ("seed", 0, 20, 1),
}


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Selected:
    """A schedule that evaluates every schedule of ``options`` and returns the ``index``-th LR.

    ``index`` is an array leaf, so choosing another family changes a value, not the program.
    """

    options: tuple
    index: Any

    def __call__(self, step):
        lrs = jnp.stack([jnp.asarray(s(step), jnp.float32) for s in self.options])
        return lrs[self.index]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class _Table:
    """eta_t = lrs[t] (clipped to the table): the selected schedule, evaluated once per update."""

    lrs: Any

    def __call__(self, step):
        return self.lrs[jnp.clip(jnp.asarray(step, jnp.int32), 0, self.lrs.shape[0] - 1)]


def build_schedule(settings: Settings, num_steps: int) -> Selected:
    """The five families for ``settings`` (validated factories) and the chosen one's index.

    Example:
        >>> s = build_schedule(Settings(family="cosine", peak_value=0.1), 100)
        >>> print(round(float(s(50)), 3), round(float(s.options[0](50)), 3))
        0.05 0.1
    """
    if settings.family not in FAMILIES:
        raise ValueError(f"family={settings.family!r} is unknown; known: {', '.join(FAMILIES)}")
    lo, hi = SLIDERS["warmup_fraction"][1:3]
    if not lo <= settings.warmup_fraction <= hi:
        raise ValueError(f"warmup_fraction={settings.warmup_fraction} is outside [{lo}, {hi}] "
                         "(a fraction of num_steps)")
    lo, hi = SLIDERS["decay_fraction"][1:3]
    if not lo <= settings.decay_fraction <= hi:
        raise ValueError(f"decay_fraction={settings.decay_fraction} is outside [{lo}, {hi}] "
                         "(a fraction of num_steps, or of each cycle)")
    warm = int(round(settings.warmup_fraction * num_steps))
    m = MIN_RATIO.get(schedules.DECAY_SHAPES[schedules.shape_index(settings.decay_shape)], 0.0)
    ends = sorted({max(1, int(round(f * num_steps))) for f in CYCLE_ENDS})
    p = settings.peak_value
    opts = (
        schedules.constant(p),
        schedules.cosine(p, num_steps, warmup_steps=warm, min_ratio=m),
        schedules.wsd(p, num_steps, warmup_steps=warm, decay=float(settings.decay_fraction),
                      decay_shape=settings.decay_shape, min_ratio=m),
        schedules.wsd_s(p, ends, warmup_steps=warm, decay=float(settings.decay_fraction),
                        decay_shape=settings.decay_shape, min_ratio=m),
        schedules.cyclic_cosine(p, ends, warmup_steps=warm, min_ratio=m),
    )
    return Selected(opts, np.asarray(FAMILIES.index(settings.family), np.int32))


def build_problem(settings: Settings):
    """The valley (standard toy with the chosen sharpness and meander) and its hill-only noise."""
    # always the sine course (amplitude 0 is a straight river): the course kind is static, so
    # a straight/meandering switch would recompile the frame
    valley = landscapes.standard_toy(sharpness=settings.sharpness, amplitude=settings.meander,
                                     wavenumber=WAVENUMBER, course="sine")
    return valley, noise_models.hill_only(settings.sigma)


def _frame_impl(valley, schedule, noise, key, *, num_steps: int, stride: int):
    TRACE_COUNT["frame"] += 1
    x0 = valley.init_params()
    # all five schedules are evaluated for every step at once (vectorized), then the scan reads
    # the selected table: cheaper than evaluating five branch-free schedules inside the loop
    lrs = schedule(jnp.arange(num_steps + 1))
    table = _Table(lrs)
    traj = dynamics.run_scan(valley, x0, table, key, num_steps=num_steps, noise=noise,
                             record_every=stride)
    us, rivers, hills, _ = theory.moment_recursion(valley, lrs[:-1], noise, x0)
    idx = jnp.asarray(np.unique(np.r_[np.arange(0, num_steps + 1, stride), num_steps]))
    # contour grid around the part of the run that stayed finite
    xs = traj.params
    ok = jnp.all(jnp.isfinite(xs), axis=-1)
    u = jnp.where(ok, xs[:, 0], xs[0, 0])
    v = jnp.where(ok, xs[:, 1], 0.0)
    u_lo, u_hi = jnp.min(u), jnp.max(u)
    span = jnp.maximum(u_hi - u_lo, 1.0)
    u_lo, u_hi = u_lo - 0.08 * span, u_hi + 0.08 * span
    gu = jnp.linspace(u_lo, u_hi, GRID)
    course = valley.course_at(gu[:, None])[:, 0]
    v_half = jnp.maximum(jnp.max(jnp.abs(v - valley.course_at(u[:, None])[:, 0])),
                         3.0 / jnp.sqrt(valley.sharpness[0]))
    v_half = jnp.minimum(v_half, 50.0)
    v_lo = jnp.minimum(jnp.min(course), jnp.min(v)) - 1.2 * v_half
    v_hi = jnp.maximum(jnp.max(course), jnp.max(v)) + 1.2 * v_half
    gv = jnp.linspace(v_lo, v_hi, GRID)
    pts = jnp.stack(jnp.meshgrid(gu, gv), -1)
    z = jax.vmap(jax.vmap(valley.loss))(pts)
    return dict(steps=traj.steps, lr=traj.lr, loss=traj.loss,
                river_loss=traj.river_loss, hill_loss=traj.hill_loss, params=xs,
                diverged_at=traj.diverged_at, theory_steps=idx, theory_loss=(rivers + hills)[idx],
                theory_river=rivers[idx], theory_hill=hills[idx], schedule_lr=lrs[idx],
                grid_u=gu, grid_v=gv, grid_loss=z, river_u=gu, river_v=course)


_frame = jax.jit(_frame_impl, static_argnames=("num_steps", "stride"))


def compute(settings: Settings, num_steps: int) -> dict[str, np.ndarray]:
    """Run the simulation, the theory and the contour grid for ``settings``: numpy arrays.

    Every numeric setting is a traced argument of one compiled program (per ``num_steps``).
    """
    sched = build_schedule(settings, num_steps)
    valley, noise = build_problem(settings)
    stride = max(1, math.ceil(num_steps / MAX_RECORDS))
    out = _frame(valley, sched, noise, jax.random.key(int(settings.seed)), num_steps=num_steps,
                 stride=stride)
    out = jax.device_get(out)
    return {k: np.asarray(v) for k, v in out.items()}


def polyline_chunks(pts: np.ndarray, values: np.ndarray, max_chunks: int):
    """Split a polyline into at most ``max_chunks`` connected pieces (sharing their end points),
    each coloured by the mean of ``values`` over it: a LineCollection of 2000 one-segment paths
    costs ~80 ms to build, of 200 pieces ~8 ms.

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


class Explorer:
    """The explorer figure and its widgets.

    Attributes:
        fig: the matplotlib Figure.
        sliders: ``matplotlib.widgets.Slider`` by setting name (see :data:`SLIDERS`).
        radios: ``RadioButtons`` by name: ``"family"`` and ``"decay_shape"``.
        lines: the updated artists by name: ``trajectory`` (a LineCollection coloured by LR),
            ``river`` (the river course), ``loss``, ``river_loss``, ``hill_loss``, ``theory``,
            ``theory_river``, ``theory_hill``, ``lr``, ``stability`` (2/lambda).
        data: the arrays of the last update; ``diverged_at``: its divergence step (-1: none).
        last_update_s: wall time of the last update (compute + artists, without the draw).
    """

    def __init__(self, num_steps: int = 4000, *, settings: Settings | None = None, fig=None,
                 pyplot: bool = False):
        if not isinstance(num_steps, (int, np.integer)) or isinstance(num_steps, bool) or \
                num_steps < 10:
            raise ValueError(f"num_steps={num_steps!r} is outside the valid range: an integer "
                             ">= 10")
        import matplotlib
        from matplotlib.collections import LineCollection
        from matplotlib.widgets import RadioButtons, Slider

        self.num_steps = int(num_steps)
        self.settings = settings or Settings()
        build_schedule(self.settings, self.num_steps)  # validate before drawing anything
        if fig is None:
            if pyplot:
                import matplotlib.pyplot as plt
                fig = plt.figure(figsize=(15, 8.6))
            else:
                from matplotlib.backends.backend_agg import FigureCanvasAgg
                from matplotlib.figure import Figure
                fig = Figure(figsize=(15, 8.6))
                FigureCanvasAgg(fig)
        self.fig = fig
        self._updating = False
        self.data: dict[str, np.ndarray] = {}
        self.diverged_at = -1
        self.last_update_s = float("nan")

        top, h = 0.47, 0.44
        self.ax_valley = fig.add_axes((0.06, top, 0.27, h))
        self.ax_loss = fig.add_axes((0.45, top, 0.25, h))
        self.ax_lr = fig.add_axes((0.77, top, 0.21, h))
        self.cmap = matplotlib.colormaps["plasma"]
        self.norm = matplotlib.colors.Normalize(0.0, SLIDERS["peak_value"][2])

        ax = self.ax_valley
        ax.set_xlabel("river coordinate $u$ (along the valley)")
        ax.set_ylabel("hill coordinate $v$ (across)")
        ax.set_title("valley $\\log_{10} L(u,v)$ and the SGD path", fontsize=11)
        # an image with banded colours reads like a contour plot but redraws ~10x faster
        self._bands = matplotlib.colors.BoundaryNorm
        bands = self._bands(np.linspace(0.0, 1.0, 17), 256)
        self.valley_image = ax.imshow(np.zeros((2, 2)), origin="lower", aspect="auto",
                                      cmap="Blues_r", norm=bands, interpolation="bilinear",
                                      extent=(0, 1, 0, 1), zorder=1)
        traj = LineCollection([], cmap=self.cmap, norm=self.norm, linewidths=0.7, zorder=3)
        ax.add_collection(traj)
        (river,) = ax.plot([], [], color="lime", lw=1.4, ls="--", zorder=4,
                           label="river $v=c(u)$")
        (start,) = ax.plot([], [], "o", color="white", mec="black", ms=6, zorder=5,
                           label="start")
        ax.legend(loc="upper left", fontsize=8, facecolor="0.8", framealpha=0.9)
        cax = fig.add_axes((0.335, top, 0.009, h))
        cb = fig.colorbar(traj, cax=cax)
        cb.set_label("learning rate of the step", fontsize=9)

        ax = self.ax_loss
        (loss,) = ax.plot([], [], color="0.6", lw=0.5, alpha=0.6, label="loss (SGD)")
        (river_l,) = ax.plot([], [], color="tab:blue", lw=1.2, label="river part")
        (hill_l,) = ax.plot([], [], color="tab:orange", lw=1.0,
                            label=f"hill part (mean of {SMOOTH})")
        (theory_l,) = ax.plot([], [], color="black", lw=1.6, ls="--", label="theory: loss")
        (theory_r,) = ax.plot([], [], color="tab:blue", lw=1.0, ls=":", label="theory: river")
        (theory_h,) = ax.plot([], [], color="tab:red", lw=1.0, ls=":", label="theory: hill")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title("loss = river + hill, and the theory (THEORY §4)", fontsize=11)
        ax.legend(loc="lower left", fontsize=8, ncol=2, framealpha=0.8)
        ax.grid(alpha=0.3, which="both")

        ax = self.ax_lr
        (lr_line,) = ax.plot([], [], color="tab:green", lw=1.6, label="LR schedule $\\eta_t$")
        stab = ax.axhline(np.nan, color="tab:red", ls="--", lw=1.0, label="stability $2/\\lambda$")
        ax.set_xlabel("step")
        ax.set_ylabel("learning rate")
        ax.set_title("learning-rate schedule", fontsize=11)
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)

        self.lines = dict(trajectory=traj, river=river, start=start, loss=loss,
                          river_loss=river_l, hill_loss=hill_l, theory=theory_l,
                          theory_river=theory_r, theory_hill=theory_h, lr=lr_line,
                          stability=stab)
        self.status = fig.text(0.5, 0.965, "", ha="center", va="center", fontsize=11)
        self.alert = fig.text(0.5, 0.70, "", ha="center", va="center", fontsize=15,
                              color="white", fontweight="bold",
                              bbox=dict(boxstyle="round", fc="crimson", ec="none"),
                              visible=False, zorder=10)

        # -- controls -------------------------------------------------------------------------
        self.sliders: dict[str, Slider] = {}
        names = list(SLIDERS)
        for i, name in enumerate(names):
            label, lo, hi, step = SLIDERS[name]
            col, row = divmod(i, 4)
            rect = (0.10 + col * 0.34, 0.30 - row * 0.065, 0.20, 0.035)
            sax = fig.add_axes(rect)
            val = getattr(self.settings, name)
            s = Slider(sax, label, lo, hi, valinit=val, valstep=step,
                       valfmt="%d" if step else "%.3g")
            s.label.set_fontsize(10)
            s.on_changed(self._on_change)
            self.sliders[name] = s
        fig.text(0.10, 0.365, "schedule", fontsize=10, fontweight="bold")
        fig.text(0.44, 0.365, "landscape and noise", fontsize=10, fontweight="bold")
        self.radios: dict[str, RadioButtons] = {}
        for name, opts, rect, title in (
                ("family", FAMILIES, (0.73, 0.04, 0.11, 0.30), "schedule family"),
                ("decay_shape", schedules.DECAY_SHAPES, (0.86, 0.04, 0.11, 0.30),
                 "decay shape")):
            rax = fig.add_axes(rect)
            rax.set_title(title, fontsize=10, fontweight="bold")
            r = RadioButtons(rax, list(opts), active=list(opts).index(getattr(self.settings,
                                                                              name)))
            for t in r.labels:
                t.set_fontsize(9)
            r.on_clicked(self._on_change)
            self.radios[name] = r
        fig.text(0.10, 0.035, "WSD-S / cyclic cosine: cycles end at "
                 + ", ".join(f"{f:g}" for f in CYCLE_ENDS) + " of the run; decay = fraction "
                 "of each cycle. Noise acts across the river only (THEORY §3).",
                 fontsize=8, color="0.3")
        self.update()

    # -- state -----------------------------------------------------------------------------------
    def current_settings(self) -> Settings:
        """The settings the widgets show now."""
        vals = {n: s.val for n, s in self.sliders.items()}
        vals["seed"] = int(round(vals["seed"]))
        vals = {k: (float(v) if k != "seed" else v) for k, v in vals.items()}
        return Settings(family=self.radios["family"].value_selected,
                        decay_shape=self.radios["decay_shape"].value_selected, **vals)

    def _on_change(self, _value) -> None:
        if not self._updating:
            self.update()

    def update(self) -> None:
        """Recompute for the current widget values and refresh every panel."""
        t0 = time.perf_counter()
        self.settings = self.current_settings()
        d = compute(self.settings, self.num_steps)
        self.data = d
        self.diverged_at = int(d["diverged_at"])
        self._draw_valley(d)
        self._draw_curves(d)
        self.last_update_s = time.perf_counter() - t0
        self.fig.canvas.draw_idle()

    def _draw_valley(self, d) -> None:
        ax = self.ax_valley
        z = np.log10(np.maximum(d["grid_loss"], 1e-12))
        lo = float(np.nanmin(z))
        hi = lo + max(min(float(np.nanmax(z)) - lo, 4.0), 1e-3)
        img = self.valley_image
        img.set_data(z)
        img.set_extent((d["grid_u"][0], d["grid_u"][-1], d["grid_v"][0], d["grid_v"][-1]))
        img.set_norm(self._bands(np.linspace(lo, hi, 17), 256))
        xs = d["params"]
        ok = np.all(np.isfinite(xs), axis=1)
        pts = xs[ok]
        segs, colors = polyline_chunks(pts, d["lr"][ok], MAX_SEGMENTS)
        traj = self.lines["trajectory"]
        traj.set_segments(segs)
        traj.set_array(colors)
        self.lines["river"].set_data(d["river_u"], d["river_v"])
        self.lines["start"].set_data(xs[:1, 0], xs[:1, 1])
        ax.set_xlim(d["grid_u"][0], d["grid_u"][-1])
        ax.set_ylim(d["grid_v"][0], d["grid_v"][-1])

    def _draw_curves(self, d) -> None:
        s = self.settings
        steps = d["steps"]
        for name in ("loss", "river_loss"):
            self.lines[name].set_data(steps, d[name])
        self.lines["hill_loss"].set_data(steps, running_mean(d["hill_loss"], SMOOTH))
        ts = d["theory_steps"]
        with np.errstate(all="ignore"):
            th_ok = np.isfinite(d["theory_loss"]) & (d["theory_loss"] < 1e10)
        for name, key in (("theory", "theory_loss"), ("theory_river", "theory_river"),
                          ("theory_hill", "theory_hill")):
            self.lines[name].set_data(ts[th_ok], d[key][th_ok])
        self.lines["lr"].set_data(ts, d["schedule_lr"])
        limit = 2.0 / s.sharpness
        self.lines["stability"].set_ydata([limit, limit])

        ax = self.ax_loss
        # after a divergence, zoom on the steps that lead to it
        ax.set_xlim(0, self.num_steps if self.diverged_at < 0 else
                    min(self.num_steps, max(50, 3 * self.diverged_at)))
        vals = np.concatenate([d["loss"], d["river_loss"], d["theory_loss"][th_ok]])
        vals = vals[np.isfinite(vals) & (vals > 0)]
        hill = np.concatenate([self.lines["hill_loss"].get_ydata(), d["theory_hill"][th_ok]])
        hill = hill[np.isfinite(hill) & (hill > 0)]
        if vals.size:
            hi = min(vals.max() * 2.0, 1e6)
            lo = np.percentile(vals, 1) * 0.5
            if hill.size:  # show the hill part too, down to 1e-4 of the top
                lo = min(lo, np.percentile(hill, 10) * 0.5)
            lo = max(lo, hi * 1e-4, 1e-8)
            ax.set_ylim(lo, max(hi, lo * 10))
        ax = self.ax_lr
        ax.set_xlim(0, self.num_steps)
        ax.set_ylim(0, 1.15 * max(s.peak_value, min(limit, 2 * s.peak_value)))

        eta_lam = s.peak_value * s.sharpness
        if self.diverged_at >= 0:
            self.alert.set_text(f"diverged at step {self.diverged_at}: peak \u03b7\u00b7\u03bb = "
                                f"{eta_lam:.2f} > 2 (limit 2/\u03bb = {limit:.3g})")
            self.alert.set_visible(True)
            self.status.set_text(f"{s.family}, {self.num_steps} steps: the hill offset grows by "
                                 f"|1 - \u03b7\u03bb| = {abs(1 - eta_lam):.2f} per step")
        else:
            self.alert.set_visible(False)
            final = d["loss"][-1]
            self.status.set_text(
                f"{s.family}, {self.num_steps} steps, peak \u03b7\u00b7\u03bb = {eta_lam:.2f}:  final loss "
                f"{final:.4g} (river {d['river_loss'][-1]:.4g} + hill {d['hill_loss'][-1]:.4g}),"
                f"  theory {d['theory_loss'][-1]:.4g}")

    def set(self, **values) -> None:
        """Set several controls at once (one update); names as in :class:`Settings`."""
        self._updating = True
        try:
            for k, v in values.items():
                if k in self.sliders:
                    self.sliders[k].set_val(v)
                elif k in self.radios:
                    r = self.radios[k]
                    labels = [t.get_text() for t in r.labels]
                    if v not in labels:
                        raise ValueError(f"{k}={v!r} is unknown; known: {', '.join(labels)}")
                    r.set_active(labels.index(v))
                else:
                    raise ValueError(f"{k!r} is not a control; controls: "
                                     f"{', '.join(list(self.sliders) + list(self.radios))}")
        finally:
            self._updating = False
        self.update()

    def savefig(self, path, **kwargs) -> None:
        """Write the figure (a path or a file object; the format by the file name or ``format=``)."""
        self.fig.savefig(path, dpi=kwargs.pop("dpi", 100), **kwargs)


def explore(num_steps: int = 4000, **settings) -> Explorer:
    """Open the explorer (a window, or an ipympl widget under ``%matplotlib widget``).

    Keep the returned :class:`Explorer`: its widgets stop responding once it is garbage collected.

    Args:
        num_steps: steps of every run (>= 10).
        **settings: initial values, as in :class:`Settings` (e.g. ``family="WSD-S"``).
    """
    ex = Explorer(num_steps, settings=Settings(**settings), pyplot=True)
    import matplotlib.pyplot as plt

    if "ipympl" not in plt.get_backend().lower() and "widget" not in plt.get_backend().lower():
        plt.show(block=False)
    return ex


_NON_INTERACTIVE = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}


def display_problem() -> str | None:
    """Why no window can open here, or None when one can."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return "no display available; use --snapshot FILE"
    import matplotlib

    backend = matplotlib.get_backend().lower()
    if backend in _NON_INTERACTIVE or "inline" in backend:
        return f"no display available (backend {backend!r} is not interactive); " \
               "use --snapshot FILE"
    return None


def main(snapshot: str | os.PathLike | None = None, num_steps: int = 4000) -> int:
    """``rivervalley explore``: a window, or with ``snapshot`` a PNG of the default view.

    The snapshot is written as a PNG to exactly the path given (whatever its suffix; the command
    line accepts only ``*.png`` paths), atomically, and that path is printed.
    Returns 0, or 2 (one line on stderr) when there is no display and no snapshot.
    """
    if snapshot is not None:
        import io

        from rivervalley.figures.runner import write_atomic

        ex = Explorer(num_steps)
        buf = io.BytesIO()
        ex.savefig(buf, format="png")
        write_atomic(snapshot, buf.getvalue())
        print(f"wrote {os.fspath(snapshot)}")
        return 0
    why = display_problem()
    if why is not None:
        print(f"rivervalley explore: {why}", file=sys.stderr)
        return 2
    import matplotlib.pyplot as plt

    ex = Explorer(num_steps, pyplot=True)
    plt.show()
    del ex
    return 0


__all__ = ["FAMILIES", "SLIDERS", "Settings", "Selected", "Explorer", "build_schedule",
           "build_problem", "compute", "explore", "main", "TRACE_COUNT"]
