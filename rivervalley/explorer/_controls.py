"""The explorer's controls: a matplotlib ``Slider`` per row of :data:`SLIDERS`, a
``RadioButtons`` group per row of :data:`RADIOS`, placed by :mod:`~rivervalley.explorer._layout`.

The widgets never draw by themselves (``drawon`` is off): a slider move redraws only the slider's
bar, handle and value, which are animated artists of :attr:`Controls.regions`, together with the
panels (one blit); a radio click leads to a full draw of the window, which shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rivervalley.explorer._layout import (
    FOOTNOTE_XY,
    GROUP_TITLE_Y,
    LAYOUT,
    SLIDER_COLUMNS,
    slider_rects,
    value_rect,
)
from rivervalley.explorer._settings import (
    CYCLE_ENDS,
    RADIOS,
    SLIDER_GROUPS,
    SLIDERS,
    Settings,
    check_setting,
)

if TYPE_CHECKING:
    from matplotlib.transforms import Bbox

#: Font sizes of the slider labels, the radio options, the group titles and the footnote.
LABEL_SIZE, OPTION_SIZE, TITLE_SIZE, FOOTNOTE_SIZE = 10, 9, 10, 8
#: The footnote under the controls.
FOOTNOTE = ("wsd_s / cyclic_cosine: cycles end at " + ", ".join(f"{f:g}" for f in CYCLE_ENDS)
            + " of the run; decay = fraction of each cycle. Noise acts across the river only "
            "(THEORY §3).")


class Controls:
    """The sliders and radio buttons of the window.

    Args:
        fig: the figure.
        settings: the initial values.
        on_slide: called with the slider's name when a slider moves.
        on_choose: called with no argument when a radio option is chosen.

    Attributes:
        sliders: ``matplotlib.widgets.Slider`` by setting name.
        radios: ``matplotlib.widgets.RadioButtons`` by setting name.
        regions: ``{name: (bbox, artists)}``: the part of each slider that a move redraws (its
            bar, handle and value; ``bbox()`` in display coordinates).
    """

    def __init__(self, fig, settings: Settings, on_slide: Callable[[str], None],
                 on_choose: Callable[[], None]):
        from matplotlib.transforms import Bbox
        from matplotlib.widgets import RadioButtons, Slider

        self.sliders: dict[str, Slider] = {}
        self.regions: dict[str, tuple[Callable[[], Bbox], list]] = {}
        for name, rect in slider_rects(SLIDER_GROUPS).items():
            spec = SLIDERS[name]
            s = Slider(fig.add_axes(rect), spec.label, spec.lo, spec.hi,
                       valinit=getattr(settings, name), valstep=spec.step,
                       valfmt="%d" if spec.step else "%.3g")
            s.label.set_fontsize(LABEL_SIZE)
            s.drawon = False
            s.on_changed(lambda _value, name=name: on_slide(name))
            self.sliders[name] = s
            bounds = Bbox.from_bounds(*value_rect(rect))
            # the slider's lines: its handle (and the mark of its initial value)
            self.regions[name] = (lambda b=bounds: b.transformed(fig.transFigure),
                                  [s.poly, *s.ax.lines, s.valtext])
        for title, left in zip(SLIDER_GROUPS, SLIDER_COLUMNS):
            fig.text(left, GROUP_TITLE_Y, title, fontsize=TITLE_SIZE, fontweight="bold")

        self.radios: dict[str, RadioButtons] = {}
        for name, spec in RADIOS.items():
            ax = fig.add_axes(LAYOUT[name])
            ax.set_title(spec.title, fontsize=TITLE_SIZE, fontweight="bold")
            r = RadioButtons(ax, list(spec.options),
                             active=spec.options.index(getattr(settings, name)), useblit=False)
            for t in r.labels:
                t.set_fontsize(OPTION_SIZE)
            r.drawon = False
            r.on_clicked(lambda _label: on_choose())
            self.radios[name] = r
        fig.text(*FOOTNOTE_XY, FOOTNOTE, fontsize=FOOTNOTE_SIZE, color="0.3")

    def settings(self) -> Settings:
        """The settings the widgets show now."""
        values = {name: s.val for name, s in self.sliders.items()}
        values = {name: int(round(v)) if SLIDERS[name].step else float(v)
                  for name, v in values.items()}
        return Settings(**values, **{name: r.value_selected for name, r in self.radios.items()})

    def set(self, **values) -> Settings:
        """Move the widgets to ``values`` (names as in :class:`Settings`) without calling back;
        every value is checked before any widget moves. Returns the new settings."""
        values = {name: check_setting(name, value) for name, value in values.items()}
        for name, value in values.items():
            widget = self.sliders.get(name) or self.radios[name]
            widget.eventson = False
            try:
                if name in self.sliders:
                    widget.set_val(value)
                else:
                    widget.set_active(RADIOS[name].options.index(value))
            finally:
                widget.eventson = True
        return self.settings()
