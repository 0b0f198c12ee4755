"""Loss-curve laws: our O(T) / O(T m) evaluation against a direct O(T^2) NumPy evaluation.

    .venv/bin/python benchmarks/bench_laws.py [--sizes 10000 100000] [--subset 200]

The direct evaluation computes, for each t, the full sum over k <= t (O(t) vectorized NumPy work), so
all t cost O(T^2). At large T it is timed on ``--subset`` evenly spaced values of t and extrapolated
by the ratio sum_t t / sum_{t in subset} t (marked "est."). Prints a table; no asserts.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from rivervalley import laws as L

#: The benchmark schedule (:func:`_schedule`): peak LR, warmup steps, decay fraction, last LR.
PEAK, WARMUP, DECAY, FLOOR = 1e-3, 300, 0.2, 1e-8

PARAMS = {
    "multi_power": L.MultiPowerParams(2.5, 0.9, 0.5, 250.0, 0.1, 0.3, 0.9, 0.2),
    "lr_annealing": L.AnnealingParams(2.5, 0.9, 0.5, 0.3, 0.999),
    "convex_bound": L.ConvexBoundParams(2.5, 1.0, 1.0),
    "river_valley": L.RiverValleyParams(2.5, 0.9, 0.5, 0.3, 30.0, 600.0),
}


def _direct_row(name, p, e, t, cs, cs2):
    """The law at step t by the direct sum over k <= t (O(t))."""
    x = e[: t + 1]
    if name == "multi_power":
        L0, A, al, B, C, be, ga, SW = p
        d = np.concatenate([[0.0], x[:-1] - x[1:]])
        S = cs[t + 1] - cs[: t + 1]
        G = 1 - (C * x ** (-ga) * S + 1) ** (-be)
        return L0 + A * (cs[t + 1] + SW) ** (-al) - B * np.sum(d * G)
    if name == "lr_annealing":
        L0, A, al, C, lam = p
        d = np.concatenate([[0.0], x[:-1] - x[1:]])
        # S2(t) = sum_{j<=t} d_j (1 - lam^(t-j+1)) / (1 - lam)
        j = np.arange(t + 1)
        s2 = np.sum(d * (1 - lam ** (t - j + 1)) / (1 - lam))
        return L0 + A * cs[t + 1] ** (-al) - C * s2
    if name == "convex_bound":
        L0, sc, d2 = p
        P, Q = cs[t + 1], cs2[t + 1]
        beta = P - cs[: t + 1]
        gam = Q - cs2[: t + 1]
        alpha = beta - x
        t3 = 0.5 * np.sum(x[:-1] / alpha[:-1] * gam[:-1] / beta[:-1]) if t else 0.0
        return L0 + sc * ((d2 + Q) / (2 * P) + t3)
    if name == "river_valley":
        L0, A, al, tau0, lam, s2 = p
        lf = 2 * np.log(np.abs(1 - x[:t] * lam)) if t else np.zeros(0)
        c = np.concatenate([[0.0], np.cumsum(lf)])
        V = np.sum(x[:t] ** 2 * s2 * np.exp(c[t] - c[1: t + 1])) if t else 0.0
        return L0 + A * (cs[t] + tau0) ** (-al) + 0.5 * lam * V
    raise ValueError(name)


def _schedule(T):
    """WSD like the shipped runs: warmup, then a linear decay over the last DECAY of the run that
    stops FLOOR above 0 (the direct multi-power sum takes eta^-gamma of every LR)."""
    e = np.full(T, PEAK)
    e[:WARMUP] = PEAK * np.arange(1, WARMUP + 1) / WARMUP
    D = int(DECAY * T)
    e[T - D:] = PEAK * (1 - np.arange(D) / D) + FLOOR
    return e


def bench(T, subset, repeats=3):
    e = _schedule(T)
    cs = np.concatenate([[0.0], np.cumsum(e)])
    cs2 = np.concatenate([[0.0], np.cumsum(e ** 2)])
    rows = []
    with jax.enable_x64(True):
        for name, p in PARAMS.items():
            law = L.LAWS[name]
            f = jax.jit(law.curve)
            y = np.asarray(f(p, e))                                      # compile
            t0 = time.perf_counter()
            for _ in range(repeats):
                f(p, e).block_until_ready()
            fast = (time.perf_counter() - t0) / repeats
            if subset is None or subset >= T:
                ts = np.arange(T)
            else:
                ts = np.unique(np.linspace(0, T - 1, subset).astype(int))
            t0 = time.perf_counter()
            ref = np.array([_direct_row(name, p, e, int(t), cs, cs2) for t in ts])
            slow = time.perf_counter() - t0
            est = len(ts) < T
            if est:
                slow *= (T * (T + 1) / 2) / np.sum(ts + 1.0)
            err = np.max(np.abs(y[ts] - ref) / np.abs(ref))
            rows.append((name, T, fast, slow, est, err))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--subset", type=int, default=200, help="t values timed for the direct sum at T > 10k")
    ap.add_argument("--quick", action="store_true", help="T = 10,000 only")
    a = ap.parse_args()
    if a.quick:
        a.sizes = [10_000]
    print(f"{'law':<14}{'T':>8}{'ours (s)':>12}{'direct O(T^2) (s)':>20}{'ratio':>10}{'max rel diff':>14}")
    for T in a.sizes:
        for name, T_, fast, slow, est, err in bench(T, None if T <= 10_000 else a.subset):
            tag = " est." if est else ""
            print(f"{name:<14}{T_:>8}{fast:>12.4f}{slow:>15.2f}{tag:<5}{slow / fast:>10.0f}{err:>14.1e}")


if __name__ == "__main__":
    main()
