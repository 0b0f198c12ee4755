"""Explorer latency: from a slider move to its pixels, under matplotlib's Agg backend.

A *move* is ``slider.set_val(value)`` on a drawn explorer, timed end to end: the compiled frame
(simulation + theory + loss grid; traced arguments, no recompilation), the artist update, and
the draw the backend performs, here a blit of the data artists (Agg draws synchronously, so all
of it happens inside the call). The moves cycle through the sliders (peak LR, noise, sharpness,
decay, meander, seed) as a drag would, without releasing the mouse (the limits stay).

The reference, in the same run and on the same moves: compute + artist update + one full
``canvas.draw()`` of the 15 x 8.6-inch figure, what every move cost before blitting (it then
drew twice per move: once for the slider, once for the panels). A desktop window adds the copy of
the blitted region to the screen.

    .venv/bin/python benchmarks/bench_explorer.py [--moves 30] [--steps 1000 10000] [--quick]

The last line reads ``explorer: slider-to-pixels median N ms at 10000 steps``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402

from rivervalley import explorer as E  # noqa: E402

#: The run length of the headline number.
HEADLINE_STEPS = 10_000
#: Fewest moves a median is taken over.
MIN_MOVES = 20
#: The sliders a move drags, in turn, and the range each one sweeps (every combination stable:
#: peak LR x sharpness <= 0.06 x 30 < 2).
DRAGGED = {"peak_value": (0.03, 0.06), "sigma": (0.5, 1.5), "sharpness": (10.0, 30.0),
           "decay_fraction": (0.1, 0.4), "meander": (0.0, 0.5), "seed": (0, 20)}
#: Values per sweep of a slider.
VALUES = 7


def moves(count: int) -> list[tuple[str, float]]:
    """``count`` (slider, value) moves: each slider of :data:`DRAGGED` in turn, at the next of
    :data:`VALUES` points of its range."""
    out = []
    names = list(DRAGGED)
    for i in range(count):
        name = names[i % len(names)]
        lo, hi = DRAGGED[name]
        value = lo + (i // len(names)) % VALUES / (VALUES - 1) * (hi - lo)
        out.append((name, round(value) if E.SLIDERS[name].step else float(value)))
    return out


def bench(num_steps: int, count: int) -> dict:
    t0 = time.perf_counter()
    ex = E.Explorer(num_steps)
    first = time.perf_counter() - t0
    traces = E.TRACE_COUNT["frame"]
    plan = moves(count)
    for name, value in plan[:len(DRAGGED)]:  # warm every path once
        ex.sliders[name].set_val(value)
    ex.set(**vars(E.Settings()))
    ex.fig.canvas.draw()
    pixels, update, draw, blitted = [], [], [], 0
    for name, value in plan:
        t = time.perf_counter()
        ex.sliders[name].set_val(value)
        pixels.append(time.perf_counter() - t)
        update.append(ex.last_update_s)
        draw.append(ex.last_draw_s)
        blitted += ex.last_blitted
    ex.set(**vars(E.Settings()))
    full = []
    for name, value in plan:
        t = time.perf_counter()
        ex.controls.set(**{name: value})
        ex.update(full=True)
        full.append(time.perf_counter() - t)
    return dict(steps=num_steps, first=first, pixels=np.median(pixels), update=np.median(update),
                draw=np.median(draw), full=np.median(full), blitted=blitted, moves=len(plan),
                recompiles=E.TRACE_COUNT["frame"] - traces)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=30, help=f"slider moves (at least {MIN_MOVES})")
    ap.add_argument("--steps", type=int, nargs="*", default=[1000],
                    help=f"run lengths besides {HEADLINE_STEPS} (always measured, last)")
    ap.add_argument("--quick", action="store_true", help=f"{MIN_MOVES} moves, {HEADLINE_STEPS} "
                                                         "steps only")
    args = ap.parse_args()
    if args.quick:
        args.moves, args.steps = MIN_MOVES, []
    if args.moves < MIN_MOVES:
        ap.error(f"--moves {args.moves}: a median needs at least {MIN_MOVES} moves")
    steps = [n for n in args.steps if n != HEADLINE_STEPS] + [HEADLINE_STEPS]
    print(f"{'steps':>7} {'first s':>8} {'compute+artists ms':>19} {'blit ms':>8} "
          f"{'slider-to-pixels ms':>20} {'full redraw path ms':>20} {'speed-up':>9} "
          f"{'blitted':>8} {'recompiles':>11}")
    for n in steps:
        r = bench(n, args.moves)
        print(f"{r['steps']:>7d} {r['first']:>8.2f} {1e3 * r['update']:>19.1f} "
              f"{1e3 * r['draw']:>8.1f} {1e3 * r['pixels']:>20.1f} {1e3 * r['full']:>20.1f} "
              f"{r['full'] / r['pixels']:>8.1f}x {r['blitted']:>4d}/{r['moves']:<3d} "
              f"{r['recompiles']:>11d}")
    print(f"(medians over {args.moves} moves; 'full redraw path': compute + artists + one full "
          "canvas.draw() per move, the path before blitting)")
    print(f"explorer: slider-to-pixels median {1e3 * r['pixels']:.0f} ms at {HEADLINE_STEPS} steps")


if __name__ == "__main__":
    main()
