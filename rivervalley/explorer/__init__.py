"""An interactive river-valley explorer: one matplotlib figure with sliders and radio buttons.

    import rivervalley as rv
    ex = rv.explore()                  # a window (or an ipympl widget in Jupyter)

or on the command line ``rivervalley explore`` (a window), ``rivervalley explore --family wsd_s
--peak-value 0.05 --snapshot explorer.png`` (a PNG of that view): every control is a flag with
the control's name and range (``rivervalley explore --help``).

Controls (:data:`SLIDERS`, :data:`RADIOS`): peak LR, warmup, decay fraction, decay shape,
schedule family (the :mod:`rivervalley.schedules` factories ``constant`` / ``cosine`` / ``wsd`` /
``wsd_s`` / ``cyclic_cosine``), gradient-noise level sigma, hill sharpness lambda, river meander
amplitude and the seed. Panels, updated live: the valley's loss with the SGD trajectory coloured
by its learning rate; the loss curve split into its river and hill parts with the expected loss
of THEORY.md §4 (:func:`rivervalley.theory.moment_recursion`); the learning-rate schedule with
the stability limit 2/lambda (:func:`rivervalley.landscapes.stability_limit`).

**No recompilation when a control moves**: every value enters ONE jitted program
(:func:`compute`: the engine's :func:`rivervalley.dynamics.run_scan`, the moment recursion and
the loss grid) as a traced array; the five schedules are built on every update (pytrees with
array leaves) and a traced index selects the family (:class:`Selected`), so switching family does
not recompile either. Divergence is reported, not raised: a learning rate beyond 2/lambda shows
"diverged at step N" in the figure.

**A slider move redraws only what changed** (blitting): the data artists are animated, drawn
over the saved pixels of their panels, and the limits are refitted when the mouse button is
released, so no tick label is redrawn while a slider moves (``benchmarks/bench_explorer.py``
measures it).

The parts, one file each: ``_settings`` (:class:`Settings`, the tables of controls,
:func:`build_schedule`, :func:`build_problem`), ``_frame`` (:func:`compute`, the compiled
program), ``_layout`` (where everything sits), ``_panels`` (the three panels), ``_controls``
(the widgets), ``_blit`` (blitting) and ``_window`` (:class:`Explorer`, :func:`explore`,
:func:`main`).

Example:
    >>> ex = Explorer(num_steps=400)
    >>> ex.sliders["peak_value"].set_val(0.03)
    >>> print(ex.diverged_at, round(float(ex.data["lr"][0]), 3))
    -1 0.03
"""

from __future__ import annotations

from rivervalley.explorer._frame import MAX_RECORDS, TRACE_COUNT, compute, view_of
from rivervalley.explorer._panels import SMOOTH, polyline_chunks, running_mean
from rivervalley.explorer._settings import (
    CYCLE_ENDS,
    DEFAULT_STEPS,
    FAMILIES,
    MIN_STEPS,
    RADIOS,
    SLIDER_GROUPS,
    SLIDERS,
    WAVENUMBER,
    RadioSpec,
    Selected,
    Settings,
    SliderSpec,
    build_problem,
    build_schedule,
    check_setting,
)
from rivervalley.explorer._window import Explorer, display_problem, explore, main

__all__ = ["FAMILIES", "CYCLE_ENDS", "WAVENUMBER", "MIN_STEPS", "DEFAULT_STEPS", "SLIDERS",
           "RADIOS", "SLIDER_GROUPS", "SliderSpec", "RadioSpec", "Settings", "check_setting",
           "Selected", "build_schedule", "build_problem", "compute", "view_of", "MAX_RECORDS",
           "TRACE_COUNT", "SMOOTH", "polyline_chunks", "running_mean", "Explorer", "explore",
           "main", "display_problem"]
