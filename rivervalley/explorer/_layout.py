"""Where everything sits in the explorer's window: one table of rectangles, in figure fractions.

A rectangle is ``(left, bottom, width, height)`` as a fraction of the figure (matplotlib's
``fig.add_axes`` convention); a point is ``(x, y)``. The figure is :data:`FIGSIZE` inches at
:data:`DPI`. Top half: the three panels (valley, loss, learning rate) under a status line; bottom
half: the slider columns (one per group of :data:`rivervalley.explorer.SLIDER_GROUPS`) and the two
radio groups.

>>> rects = slider_rects({"a": ("x", "y"), "b": ("z",)})
>>> print([tuple(round(c, 3) for c in rects[n]) for n in ("x", "y", "z")])
[(0.1, 0.3, 0.2, 0.035), (0.1, 0.235, 0.2, 0.035), (0.44, 0.3, 0.2, 0.035)]
"""

from __future__ import annotations

#: A rectangle (left, bottom, width, height) in figure fractions.
Rect = tuple[float, float, float, float]

#: Figure size (inches) and resolution of the window and of a snapshot.
FIGSIZE = (15.0, 8.6)
DPI = 100

#: The panels, the status line above them, the colorbar of the valley panel, the radio groups.
LAYOUT: dict[str, Rect] = {
    "valley": (0.06, 0.47, 0.27, 0.44),
    "colorbar": (0.335, 0.47, 0.009, 0.44),
    "loss": (0.45, 0.47, 0.25, 0.44),
    "lr": (0.77, 0.47, 0.21, 0.44),
    "status": (0.02, 0.94, 0.96, 0.05),
    "family": (0.73, 0.04, 0.11, 0.30),
    "decay_shape": (0.86, 0.04, 0.11, 0.30),
}
#: Left edges of the slider columns, one per slider group, ...
SLIDER_COLUMNS = (0.10, 0.44)
#: ... the bottom of their first row and the distance between rows, ...
SLIDER_TOP = 0.30
SLIDER_PITCH = 0.065
#: ... and the size of one slider (its label sits left of it, its value right of it).
SLIDER_SIZE = (0.20, 0.035)
#: Room right of a slider for its value (the region redrawn when the slider moves).
VALUE_WIDTH = 0.06
#: Height of the group titles above the slider columns.
GROUP_TITLE_Y = 0.365
#: The footnote under the sliders.
FOOTNOTE_XY = (0.10, 0.035)
#: The divergence alert, in the loss panel's axes fractions.
ALERT_XY = (0.5, 0.62)


def slider_rects(groups: dict[str, tuple[str, ...]]) -> dict[str, Rect]:
    """The rectangle of every slider: group ``i`` is column ``i``, its sliders top to bottom."""
    if len(groups) > len(SLIDER_COLUMNS):
        raise ValueError(f"{len(groups)} slider groups, but the layout has {len(SLIDER_COLUMNS)} "
                         "columns")
    width, height = SLIDER_SIZE
    return {name: (left, SLIDER_TOP - row * SLIDER_PITCH, width, height)
            for left, names in zip(SLIDER_COLUMNS, groups.values())
            for row, name in enumerate(names)}


def value_rect(rect: Rect) -> Rect:
    """A slider's rectangle widened to the right over its value: what a slider move redraws.

    >>> tuple(round(c, 3) for c in value_rect((0.1, 0.3, 0.2, 0.035)))
    (0.1, 0.3, 0.26, 0.035)
    """
    left, bottom, width, height = rect
    return left, bottom, width + VALUE_WIDTH, height
