"""The explorer window: :class:`Explorer` ties settings, compiled frame, panels, controls and
blitting together; :func:`explore` opens it, :func:`main` is ``rivervalley explore``.

What a control does:

- a slider move: one call of the compiled frame (:func:`rivervalley.explorer.compute`) on the
  valley panel's current view, the new data into the animated artists, one blit of the panels
  and of the slider (:class:`~rivervalley.explorer._blit.Blitter`). The limits stay, so no tick
  label is redrawn; they are refitted when the mouse button is released (then a full draw, once,
  if they changed by more than ``RESCALE_TOLERANCE`` of their span);
- a radio choice, :meth:`Explorer.set` and the first update: the same, then the limits are
  refitted at once.
"""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

from rivervalley._validate import check_int, fmt
from rivervalley.explorer._blit import Blitter
from rivervalley.explorer._controls import Controls
from rivervalley.explorer._frame import compute
from rivervalley.explorer._layout import DPI, FIGSIZE
from rivervalley.explorer._panels import Panels
from rivervalley.explorer._settings import DEFAULT_STEPS, MIN_STEPS, Settings

#: Limits are refitted when the fitting ones differ by more than this fraction of their span
#: (in decades on the log loss axis): smaller changes keep the view and cost no full draw.
RESCALE_TOLERANCE = 0.05
#: Backends that draw into a file or a notebook cell, never a window.
_NON_INTERACTIVE = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}


def _slider_region(name: str) -> str:
    return f"slider:{name}"


def _moved(now: tuple, fit: tuple, log: bool) -> bool:
    """Whether the limits ``fit`` differ from ``now`` by more than the tolerance."""
    a, b = np.asarray(now, float), np.asarray(fit, float)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):  # a limit <= 0: -inf/nan, moved
            a, b = np.log10(a), np.log10(b)
    span = max(abs(b[1] - b[0]), np.finfo(float).tiny)
    return not np.all(np.abs(a - b) <= RESCALE_TOLERANCE * span)


class Explorer:
    """The explorer figure and its widgets.

    Args:
        num_steps: steps of every run (>= :data:`MIN_STEPS`); one compiled program per value.
        settings: the initial controls (default :class:`Settings`).
        fig: a matplotlib Figure to draw on (default: a new one, ``FIGSIZE`` inches).
        pyplot: make the new figure with ``pyplot`` (a window); else an Agg canvas (headless).

    Attributes:
        fig: the matplotlib Figure.
        settings: the settings of the last update.
        sliders: ``matplotlib.widgets.Slider`` by setting name (see :data:`SLIDERS`).
        radios: ``RadioButtons`` by name: ``"family"`` and ``"decay_shape"``.
        lines: the data artists by name: ``trajectory`` (a LineCollection coloured by LR),
            ``river`` (the river course), ``start``, ``loss``, ``river_loss``, ``hill_loss``,
            ``theory``, ``theory_river``, ``theory_hill``, ``lr``, ``stability`` (2/lambda).
        valley_image, status, alert: the valley's loss image, the status line, the divergence
            alert (visible after a divergence).
        data: the arrays of the last update (:func:`compute`); ``diverged_at``: its divergence
            step (-1: none).
        last_update_s: wall time of the last update's compute and artist update;
            ``last_draw_s``: of the draw it performed (a blit, or a full draw where the canvas
            draws at once, as Agg does); ``last_blitted``: whether that draw was a blit.

    Example:
        >>> ex = Explorer(num_steps=400)
        >>> ex.sliders["peak_value"].set_val(0.03)
        >>> print(ex.diverged_at, round(float(ex.data["lr"][0]), 3), ex.last_blitted)
        -1 0.03 True
    """

    def __init__(self, num_steps: int = DEFAULT_STEPS, *,
                 settings: Settings | None = None, fig=None, pyplot: bool = False):
        self.num_steps = check_int("num_steps", num_steps, lo=MIN_STEPS)
        settings = Settings() if settings is None else settings
        if not isinstance(settings, Settings):
            raise ValueError(f"settings={fmt(settings)} must be a rivervalley.explorer.Settings")
        if fig is None:
            fig = self._new_figure(pyplot)
        self.fig = fig
        self.settings = settings
        self.data: dict[str, np.ndarray] = {}
        self.diverged_at = -1
        self.last_update_s = self.last_draw_s = math.nan
        self.last_blitted = False
        self._refit_on_release = False

        self.panels = Panels(fig)
        self.controls = Controls(fig, settings, on_slide=self._on_slide,
                                 on_choose=self._on_choose)
        self.blitter = Blitter(fig)
        for name, (ax, artists, overlays) in self.panels.regions.items():
            self.blitter.add(name, lambda ax=ax: ax.bbox, artists, overlays)
        for name, (bbox, artists) in self.controls.regions.items():
            self.blitter.add(_slider_region(name), bbox, artists)
        fig.canvas.mpl_connect("button_release_event", self._on_release)
        self.sliders, self.radios = self.controls.sliders, self.controls.radios
        self.lines, self.valley_image = self.panels.lines, self.panels.valley_image
        self.status, self.alert = self.panels.status, self.panels.alert
        self.ax_valley, self.ax_loss, self.ax_lr = (self.panels.axes[n]
                                                    for n in ("valley", "loss", "lr"))
        self.update(refit=True)

    @staticmethod
    def _new_figure(pyplot: bool):
        if pyplot:
            import matplotlib.pyplot as plt

            return plt.figure(figsize=FIGSIZE, dpi=DPI)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=FIGSIZE, dpi=DPI)
        FigureCanvasAgg(fig)
        return fig

    # -- events ----------------------------------------------------------------------------------
    def _on_slide(self, name: str) -> None:
        self.update(regions=[*self.panels.regions, _slider_region(name)])
        self._refit_on_release = True

    def _on_choose(self) -> None:
        self.update(refit=True, full=True)  # the radio buttons are no animated artists

    def _on_release(self, _event) -> None:
        if self._refit_on_release:
            self._refit_on_release = False
            self.refit()

    # -- state -----------------------------------------------------------------------------------
    def current_settings(self) -> Settings:
        """The settings the widgets show now."""
        return self.controls.settings()

    def update(self, *, refit: bool = False, full: bool = False,
               regions: list[str] | None = None) -> None:
        """Recompute for the current widget values and show it: a blit of the data artists (of
        ``regions``, default all), or with ``refit`` limits that fit the data (a full draw if
        they changed), or with ``full`` a full draw in any case."""
        t0 = time.perf_counter()
        self.settings = self.controls.settings()
        self._show(compute(self.settings, self.num_steps, self.panels.view()))
        if refit:
            full = self._fit_limits() or full
        self.last_update_s = time.perf_counter() - t0
        self._draw(full, regions)

    def refit(self) -> None:
        """Fit the limits to the data shown (a full draw if they changed)."""
        t0 = time.perf_counter()
        changed = self._fit_limits()
        self.last_update_s = time.perf_counter() - t0
        if changed:
            self._draw(True)

    def _show(self, d: dict[str, np.ndarray]) -> None:
        self.data = d
        self.diverged_at = int(d["diverged_at"])
        self.panels.show(d, self.settings, self.num_steps)

    def _fit_limits(self) -> bool:
        """Set the limits that fit ``self.data`` where they moved; True if any did."""
        fit = self.panels.limits(self.data, self.settings, self.num_steps)
        now = self.panels.current_limits()
        moved = {name: lim for name, lim in fit.items()
                 if _moved(now[name][0], lim[0], log=False)
                 or _moved(now[name][1], lim[1], log=self.panels.axes[name].get_yscale() == "log")}
        self.panels.set_limits(moved)
        if "valley" in moved:  # the loss grid spans the view: recompute it for the new one
            self._show(compute(self.settings, self.num_steps, self.panels.view()))
        return bool(moved)

    def _draw(self, full: bool, regions: list[str] | None = None) -> None:
        t0 = time.perf_counter()
        self.last_blitted = not full and self.blitter.blit(regions)
        if not self.last_blitted:
            # a window draws when idle: until then its saved pixels belong to the old limits
            self.blitter.invalidate()
            self.fig.canvas.draw_idle()
        self.last_draw_s = time.perf_counter() - t0

    def set(self, **values) -> None:
        """Set several controls at once (one update, limits refitted); names as in
        :class:`Settings`. Every value is checked first: a bad one raises ``ValueError`` and
        moves no control."""
        self.controls.set(**values)
        self.update(refit=True, full=any(name in self.radios for name in values))

    def savefig(self, path, **kwargs) -> None:
        """Write the figure (a path or a file object; the format by the file name or
        ``format=``)."""
        self.fig.savefig(path, dpi=kwargs.pop("dpi", DPI), **kwargs)


def explore(num_steps: int = DEFAULT_STEPS, **settings) -> Explorer:
    """Open the explorer (a window, or an ipympl widget under ``%matplotlib widget``).

    Keep the returned :class:`Explorer`: its widgets stop responding once it is garbage collected.

    Args:
        num_steps: steps of every run (>= :data:`MIN_STEPS`).
        **settings: initial values, as in :class:`Settings` (e.g. ``family="wsd_s"``).
    """
    ex = Explorer(num_steps, settings=Settings(**settings), pyplot=True)
    import matplotlib.pyplot as plt

    backend = plt.get_backend().lower()
    if "ipympl" not in backend and "widget" not in backend:
        plt.show(block=False)
    return ex


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


def main(snapshot: str | os.PathLike | None = None,
         num_steps: int = DEFAULT_STEPS,
         settings: Settings | None = None) -> int:
    """``rivervalley explore``: a window, or with ``snapshot`` a PNG of the view of ``settings``.

    The snapshot is written as a PNG to exactly the path given (whatever its suffix; the command
    line accepts only ``*.png`` paths), atomically, and that path is printed.
    Returns 0, or 2 (one line on stderr) when there is no display and no snapshot.
    """
    if snapshot is not None:
        from rivervalley._atomic import write_atomic

        shot = Explorer(num_steps, settings=settings)
        write_atomic(snapshot, lambda f: shot.savefig(f, format="png"))
        print(f"wrote {os.fspath(snapshot)}")
        return 0
    why = display_problem()
    if why is not None:
        print(f"rivervalley explore: {why}", file=sys.stderr)
        return 2
    import matplotlib.pyplot as plt

    ex = Explorer(num_steps, settings=settings, pyplot=True)
    plt.show()
    del ex
    return 0
