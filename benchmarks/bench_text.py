"""One training step of the real-text model (rivervalley.text) through the engine against a
hand-written ``jit`` + optax loop on the same model, the same batches and the same optimizer.

- engine: ``rv.simulate(problem, ...)`` with the text problem of ``problems.from_loss`` (one
  record at the end: the cost of the engine's step, its batch draw and its divergence check);
- by hand (a): a jitted step (batch draw, grad, AdamW update) called from a Python loop;
- by hand (b): the same step inside one jitted ``lax.scan`` (no per-step dispatch).

Seconds per step are the best of 3 timed repeats after a warm-up call (compilation excluded,
reported separately). The target is engine / hand-written (a) <= 1.10.

    python benchmarks/bench_text.py            # the "full" text configuration
    python benchmarks/bench_text.py --quick    # the "fast" one, fewer steps
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import jax.numpy as jnp
import optax

import rivervalley as rv
from rivervalley import text


def _best(fn, repeats: int = 3) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    cfg = text.config("fast" if args.quick else "full")
    steps = 64 if args.quick else 128
    prob, params = text.build(cfg, key=jax.random.key(0))
    sched = text.schedule("wsd", cfg, num_steps=steps)
    factory = text.optimizer(cfg)
    key = jax.random.key(1)

    def engine():
        return rv.simulate(prob, params, sched, num_steps=steps, optimizer=factory, key=key,
                           record_every=steps, record_params=False).final_state.params

    opt = factory(sched)

    def step(carry, t):
        p, s = carry
        g = jax.grad(prob.sample_loss)(p, jax.random.fold_in(key, t))
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    jstep = jax.jit(lambda p, s, t: step((p, s), t)[0])

    def by_hand_loop():
        p, s = params, opt.init(params)
        for t in range(steps):
            p, s = jstep(p, s, jnp.asarray(t, jnp.int32))
        return p

    scan = jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)),
                                          jnp.arange(steps, dtype=jnp.int32))[0][0])

    def by_hand_scan():
        return scan(params)

    rows = []
    for name, fn in (("engine (rv.simulate)", engine), ("by hand: jit step + loop", by_hand_loop),
                     ("by hand: jit lax.scan", by_hand_scan)):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        first = time.perf_counter() - t0
        sec = _best(fn) / steps
        rows.append((name, sec, first))
    n = sum(x.size for x in jax.tree.leaves(params))
    print(f"text model: width {cfg.width}, depth {cfg.depth}, {cfg.seq_len} chars x batch "
          f"{cfg.batch_size}, {n} parameters, AdamW; {steps} steps per timing")
    print(f"{'':28s} {'ms/step':>9s} {'first call s':>13s} {'ratio':>7s}")
    ref = rows[1][1]
    for name, sec, first in rows:
        print(f"{name:28s} {1e3 * sec:9.2f} {first:13.1f} {sec / ref:7.2f}")
    print(f"engine / hand-written loop = {rows[0][1] / ref:.2f} (target <= 1.10); "
          f"engine / hand-written scan = {rows[0][1] / rows[2][1]:.2f}")


if __name__ == "__main__":
    main()
