"""Throughput of ``rv.sweep`` (noisy SGD on a d-dim river valley) against two references run in
the same process on the same problem: (a) NumPy vectorized over runs, (b) a per-run Python loop.

Run-steps per second = runs x steps / seconds (compilation excluded; reported separately).
Rates do not depend on the number of steps, so slow references run fewer steps.

    python benchmarks/bench_sweep.py            # the grid d x R, plus the target row
    python benchmarks/bench_sweep.py --quick    # a smaller grid
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

import rivervalley as rv

PEAK = 0.005  # below 2 / lambda_max = 0.02 for lambda in [1, 100]


def problem(d: int):
    return rv.landscapes.valley(d, lambda_min=1.0, lambda_max=100.0)


def jax_rate(d: int, runs: int, steps: int) -> tuple[float, float]:
    """(run-steps per second, compile seconds) of one sweep of `runs` seeds."""
    valley, noise = problem(d), rv.noise.hill_only(1.0)
    sched = rv.schedules.wsd(PEAK, steps, decay=0.2)
    kw = dict(num_steps=steps, seeds=runs, noise=noise, key=jax.random.key(0),
              record_every=steps)
    t0 = time.perf_counter()
    jax.block_until_ready(rv.sweep(valley, jnp.zeros(d), sched, **kw).trajectory.loss)
    first = time.perf_counter() - t0
    best = math.inf
    for _ in range(2):
        t0 = time.perf_counter()
        jax.block_until_ready(rv.sweep(valley, jnp.zeros(d), sched, **kw).trajectory.loss)
        best = min(best, time.perf_counter() - t0)
    return runs * steps / best, max(first - best, 0.0)


def numpy_rate(d: int, runs: int, steps: int, repeats: int = 3) -> float:
    """NumPy vectorized over runs: x (runs, d), the same gradient, noise and schedule.

    Best of ``repeats`` timings, as for JAX (whose best of two is taken after compilation)."""
    lam = np.geomspace(1.0, 100.0, d - 1).astype(np.float32)
    lrs = rv.schedules.as_array(rv.schedules.wsd(PEAK, steps, decay=0.2), steps)
    rng = np.random.default_rng(0)
    best = math.inf
    for _ in range(repeats):
        x = np.zeros((runs, d), np.float32)
        t0 = time.perf_counter()
        for t in range(steps):
            u, v = x[:, 0], x[:, 1:]
            g = np.empty_like(x)
            g[:, 0] = -1.0 / (1.0 + np.exp(u))  # f'(u) for f = softplus(-u)
            g[:, 1:] = lam * v + rng.standard_normal((runs, d - 1), dtype=np.float32)
            x -= lrs[t] * g
        best = min(best, time.perf_counter() - t0)
    return runs * steps / best


def python_rate(d: int, steps: int) -> float:
    """One run at a time, a Python loop over steps and coordinates (the naive reference)."""
    lam = list(np.geomspace(1.0, 100.0, d - 1))
    lrs = list(rv.schedules.as_array(rv.schedules.wsd(PEAK, steps, decay=0.2), steps))
    import random

    rnd = random.Random(0)
    x = [0.0] * d
    t0 = time.perf_counter()
    for t in range(steps):
        eta = lrs[t]
        x[0] -= eta * (-1.0 / (1.0 + math.exp(x[0])))
        for i in range(1, d):
            x[i] -= eta * (lam[i - 1] * x[i] + rnd.gauss(0.0, 1.0))
    return steps / (time.perf_counter() - t0)


def steps_for(budget: float, runs: int, d: int, cap: int = 10_000, floor: int = 20) -> int:
    return int(max(floor, min(cap, budget / (runs * d))))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    dims = (2, 16) if args.quick else (2, 16, 256)
    runs_grid = (1, 64, 1024) if args.quick else (1, 16, 256, 1024, 4096, 16384)
    print(f"devices: {jax.devices()}")
    print("| d | runs R | steps (JAX) | JAX run-steps/s | compile s | NumPy run-steps/s | "
          "Python loop run-steps/s | JAX / NumPy | JAX / Python |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    py = {d: python_rate(d, steps_for(2e5, 1, d, cap=5000)) for d in dims}
    for d in dims:
        for runs in runs_grid:
            steps = steps_for(3e8, runs, d)
            jr, comp = jax_rate(d, runs, steps)
            nr = numpy_rate(d, runs, steps_for(2e6, runs, d, cap=2000))
            print(f"| {d} | {runs} | {steps} | {jr:.3g} | {comp:.2f} | {nr:.3g} | {py[d]:.3g} | "
                  f"{jr / nr:.1f}x | {jr / py[d]:.0f}x |", flush=True)
    # the target row of the issue, three times (the machine's speed drifts between runs)
    ratios = []
    for _ in range(3):
        jr, comp = jax_rate(16, 1024, 10_000)
        nr = numpy_rate(16, 1024, 1000)
        ratios.append(jr / nr)
        print(f"target d=16, R=1024, T=10000: JAX {jr:.3g} run-steps/s (compile {comp:.2f} s), "
              f"NumPy {nr:.3g}: JAX/NumPy {jr / nr:.1f}x", flush=True)
    pr = python_rate(16, 5000)
    print(f"JAX/NumPy {min(ratios):.1f}x-{max(ratios):.1f}x (target >= 5x); Python loop {pr:.3g} "
          f"run-steps/s: JAX/Python {jr / pr:.0f}x (target >= 100x)")


if __name__ == "__main__":
    main()
