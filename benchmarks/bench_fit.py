"""Fitting each loss-curve law to a real 50k-step run: wall and CPU seconds per fit.

    .venv/bin/python benchmarks/bench_fit.py [--laws multi_power river_valley ...] [--quick]

The data: the shipped 124M constant-LR run at lr 1e-3 (50,000 steps, validation loss every 200
steps) plus its 20% linear cooldown to 50,000 steps, fitted jointly from step 1000 (the validation
protocol's fit set, with the longest cooldown). Each law is fitted twice in one process: the first
fit includes JAX's compilation (what a user of ``rivervalley laws fit`` waits for), the second is
warm. Prints wall and process-CPU seconds (CPU / wall shows how much of the machine the process
got: on a shared machine wall time is inflated), evaluations and R^2. No asserts.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

from rivervalley import laws as L

MAIN = "full-stable-124m_lr0.001_sched_wsd_warmup300_decay_linear_0.0_iter50000"
COOL = "ann124-0.2_lr0.001_sched_wsd_warmup300_decay_linear_0.2_iter50000"


def data():
    paths = {p.stem: p for p in L.real_curves()}
    main = L.load_curve(paths[MAIN])
    return [main, L.glue(main, L.load_curve(paths[COOL]))]


def bench(name, curves, max_nfev=300):
    rows = []
    for label in ("cold", "warm"):
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", L.FitWarning)
            r = L.fit(name, curves, min_step=1000, max_nfev=max_nfev, progress=False)
        rows.append((label, time.perf_counter() - t0, time.process_time() - c0, r.nfev, r.r2))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--laws", nargs="+", default=list(L.LAWS))
    ap.add_argument("--quick", action="store_true", help="one law only (river_valley_spectrum)")
    a = ap.parse_args()
    laws = ["river_valley_spectrum"] if a.quick else a.laws
    curves = data()
    print(f"{len(curves[0].lrs)}-step run, {sum(len(c.steps) for c in curves)} observed losses; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'law':<16}{'fit':>6}{'wall (s)':>10}{'CPU (s)':>10}{'nfev':>6}{'R^2':>10}")
    for name in laws:
        for label, wall, cpu, nfev, r2 in bench(name, curves):
            print(f"{name:<16}{label:>6}{wall:>10.2f}{cpu:>10.2f}{nfev:>6}{r2:>10.5f}")


if __name__ == "__main__":
    main()
