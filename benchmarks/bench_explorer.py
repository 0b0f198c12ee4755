"""Explorer update time: median seconds per slider move, by number of steps.

An update = the compiled program (simulation + theory + contour grid; traced arguments, no
recompilation) + refreshing the artists; "draw" is one full Agg redraw of the 15x8.6-inch figure
(widgets and all), which a desktop window does once per idle cycle; it does not depend on the
steps. Target: under 100 ms at 10,000 steps.

    .venv/bin/python benchmarks/bench_explorer.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402

from rivervalley import explorer as E  # noqa: E402


def bench(num_steps: int, repeats: int) -> dict:
    t0 = time.perf_counter()
    ex = E.Explorer(num_steps)
    first = time.perf_counter() - t0
    traces = E.TRACE_COUNT["frame"]
    compute, update, drawn = [], [], []
    moves = [("peak_value", 0.04 + 0.002 * i) for i in range(repeats)]
    for i, (name, value) in enumerate(moves):
        t = time.perf_counter()
        E.compute(ex.current_settings(), num_steps)
        compute.append(time.perf_counter() - t)
        ex.sliders[name].set_val(value)
        update.append(ex.last_update_s)
        if i < 3:  # a full Agg redraw: independent of num_steps, dominated by text rendering
            t = time.perf_counter()
            ex.fig.canvas.draw()
            drawn.append(time.perf_counter() - t)
    for family in E.FAMILIES:
        ex.set(family=family)
    return dict(steps=num_steps, first=first, compute=np.median(compute),
                update=np.median(update), drawn=np.median(drawn),
                recompiles=E.TRACE_COUNT["frame"] - traces)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--steps", type=int, nargs="*", default=[1000, 4000, 10000])
    ap.add_argument("--quick", action="store_true", help="3 repeats at 1,000 and 10,000 steps")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.steps = 3, [1000, 10000]
    print(f"{'steps':>7} {'first (compile) s':>18} {'compute ms':>11} {'update ms':>10} "
          f"{'full draw ms':>13} {'recompiles':>11}")
    for n in args.steps:
        r = bench(n, args.repeats)
        print(f"{r['steps']:>7d} {r['first']:>18.2f} {1e3 * r['compute']:>11.1f} "
              f"{1e3 * r['update']:>10.1f} {1e3 * r['drawn']:>13.1f} {r['recompiles']:>11d}")


if __name__ == "__main__":
    main()
