"""Blitting: redraw a few animated artists over saved pixels instead of redrawing the figure.

matplotlib's recipe (its "Faster rendering by using blitting" tutorial): artists marked
``animated`` are skipped by a full draw; after each full draw (the ``draw_event``) the pixels of
every region are saved (``canvas.copy_from_bbox``) and the animated artists drawn on top; a later
:meth:`Blitter.blit` restores those pixels (``restore_region``), draws the artists
(``draw_artist``) and shows the region (``canvas.blit``). Nothing else is redrawn: no tick label,
no widget, which is what makes a full draw slow (text).

*Overlays* are static, opaque artists that must stay on top of the animated ones (a legend over
the curves): the full draw draws them, their pixels are saved with the background and pasted
back after the animated artists, so their text is never laid out again (a legend costs ~10 ms to
draw, a paste a memory copy). An overlay must be opaque (a legend with ``framealpha=1``): its
saved pixels do not depend on what lies under it.

The saved pixels are valid while nothing outside the animated artists changes: a change of
limits, of the figure size or a ``savefig`` (which draws at its own resolution, with the animated
artists) needs a full draw, after which they are saved again. :meth:`Blitter.blit` returns
False, drawing nothing, when there are none (before the first draw, after a ``savefig``, or on a
canvas that cannot blit); the caller then asks for a full draw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.transforms import Bbox


class Blitter:
    """Redraws the animated artists of a figure region by region.

    Args:
        fig: the figure (its canvas at the time of construction receives the draw events).
    """

    def __init__(self, fig):
        self.fig = fig
        self._regions: dict[str, tuple[Callable[[], Bbox], list, list]] = {}
        self._saved: dict | None = None
        self._pasted: dict = {}
        #: Whether the canvas can blit; if not, nothing is animated and every draw is full.
        self.enabled = bool(fig.canvas.supports_blit)
        fig.canvas.mpl_connect("draw_event", self._on_draw)

    def add(self, key: str, bbox: Callable[[], Bbox], artists: Sequence,
            overlays: Sequence = ()) -> None:
        """Region ``key``: redraw ``artists`` (made animated) inside ``bbox()`` (display
        coordinates, read at each draw: it follows resizes) in the order of their zorder, and
        paste its ``overlays`` (static, opaque artists inside the region) over them."""
        if key in self._regions:
            raise ValueError(f"region {key!r} is already added")
        for a in artists:
            a.set_animated(self.enabled)
        self._regions[key] = (bbox, sorted(artists, key=lambda a: a.get_zorder()),
                              list(overlays))
        self._saved = None

    def invalidate(self) -> None:
        """Forget the saved pixels (something else changed): blit draws nothing until the next
        full draw."""
        self._saved = None

    def _on_draw(self, event) -> None:
        canvas = self.fig.canvas
        if canvas.is_saving() or not self.enabled:
            # savefig drew at its own resolution (and with the animated artists): nothing to keep
            self._saved = None
            return
        renderer = canvas.get_renderer()
        self._saved = {key: canvas.copy_from_bbox(bbox()) for key, (bbox, _, _) in
                       self._regions.items()}
        # one pixel around an overlay: its antialiased edge
        self._pasted = {key: [canvas.copy_from_bbox(a.get_window_extent(renderer).padded(1))
                              for a in overlays if a.get_visible()]
                        for key, (_, _, overlays) in self._regions.items()}
        self._draw_artists(self._regions)

    def _draw_artists(self, keys) -> None:
        canvas = self.fig.canvas
        renderer = canvas.get_renderer()
        for key in keys:
            for a in self._regions[key][1]:
                a.draw(renderer)
            for pixels in self._pasted[key]:
                canvas.restore_region(pixels)

    def blit(self, keys: Sequence[str] | None = None) -> bool:
        """Restore the regions ``keys`` (default: all), draw their animated artists and show
        them; False (nothing drawn) when no pixels are saved."""
        if self._saved is None:
            return False
        keys = list(self._regions) if keys is None else list(keys)
        canvas = self.fig.canvas
        for key in keys:
            canvas.restore_region(self._saved[key])
        self._draw_artists(keys)
        for key in keys:
            canvas.blit(self._regions[key][0]())
        return True
