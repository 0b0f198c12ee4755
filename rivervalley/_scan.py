"""One run as one ``lax.scan``: the update, the records, the divergence check by blocks.

The update of step t is x_{t+1} = x_t - eta_t g_t (plain SGD) or an optax optimizer's, with
g_t = grad sample_loss(x_t; fold_in(key, t)) + xi_t(key, t): a pure function of (key, t), so a run
of N steps is an exact prefix of a run of 2N steps and a resumed run equals an uninterrupted one.

Steps run in blocks (:func:`block_size`, at most :data:`CHECK_EVERY` steps) without the loss;
the loss and the finiteness of the parameters are checked at the end of each block, and a block
that ends bad is replayed with the per-step check, which finds the exact step and freezes the run
there (:func:`run_one`). Records are the dict :func:`run_one` returns (leading axis: records);
:func:`to_trajectory` makes the :class:`~rivervalley.results.Trajectory` of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from rivervalley import _validate as V
from rivervalley import problems as _problems
from rivervalley.protocols import Array, Key, PyTree
from rivervalley.results import SimState, Trajectory

__all__ = ["CHECK_EVERY", "DIVERGENCE_THRESHOLD", "NOT_DIVERGED", "build_optimizer", "init_state",
           "block_size", "run_one", "to_trajectory"]

#: The default ``divergence_threshold``: |loss| above it counts as divergence.
DIVERGENCE_THRESHOLD = 1e10
#: Steps between divergence checks on the fast path, at most (see :func:`run_one`).
CHECK_EVERY = 64
#: The shortest equal block :func:`block_size` takes: a divisor of the run below it would check
#: more often than blocks of CHECK_EVERY and one shorter last block do.
SHORTEST_EQUAL_BLOCK = CHECK_EVERY // 4
#: ``diverged_at`` of a run that has not diverged.
NOT_DIVERGED = -1
#: Record keys that are not metrics of ``problem.decompose``.
_RECORD_KEYS = ("step", "lr", "params")


def build_optimizer(optimizer: Callable | None,
                    schedule: Callable) -> optax.GradientTransformation | None:
    """The optax optimizer the factory ``optimizer`` builds from ``schedule`` (None: plain SGD);
    a factory that returns something else is a ``TypeError`` naming it."""
    if optimizer is None:
        return None
    opt = optimizer(schedule)
    if not isinstance(opt, optax.GradientTransformation):
        raise TypeError(f"optimizer={V.fmt(optimizer)} returned {V.fmt(opt)} (a "
                        f"{type(opt).__name__}), not an optax.GradientTransformation: the factory "
                        "must build the optimizer from the schedule it is given, e.g. optax.adam "
                        "or functools.partial(optax.sgd, momentum=0.9)")
    return opt


def init_state(params: PyTree, optimizer: Callable | None, schedule: Callable,
               step: int = 0) -> SimState:
    """The state of a run starting from ``params`` at ``step``."""
    opt = build_optimizer(optimizer, schedule)
    opt_state = () if opt is None else opt.init(params)
    return SimState(params, opt_state, jnp.asarray(step, jnp.int32),
                    jnp.asarray(NOT_DIVERGED, jnp.int32))


def block_size(n: int) -> int:
    """The block length for n steps: n itself up to CHECK_EVERY, else the largest divisor of n in
    [SHORTEST_EQUAL_BLOCK, CHECK_EVERY] (one block length: each length compiles its own fast and
    replay loops, ~1 s each), else CHECK_EVERY (and a shorter last block).

    >>> [block_size(n) for n in (7, 64, 100, 4000, 10_000, 4096, 10_007)]
    [7, 64, 50, 50, 50, 64, 64]
    """
    if n <= CHECK_EVERY:
        return n
    for size in range(CHECK_EVERY, SHORTEST_EQUAL_BLOCK - 1, -1):
        if n % size == 0:
            return size
    return CHECK_EVERY


def _tree_where(cond: Array, a: PyTree, b: PyTree) -> PyTree:
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


def _all_finite(tree: PyTree) -> Array:
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.array(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(l)) for l in leaves]))


def run_one(problem: Any, schedule: Callable, noise: Any, state: SimState, key: Key,
            stop: Array | None = None, *, num_steps: int, record_every: int, record_params: bool,
            optimizer: Callable | None, threshold: float,
            axis_name: str | None = None) -> tuple[dict, SimState]:
    """The scan of one run: records (dict of arrays, leading axis = records) and the final state.

    Steps at or past ``stop`` (a traced step number; None: never) leave the state unchanged, so
    segments of different lengths can share one compiled program (``run_plan``).

    Divergence is checked exactly but not paid for on every step. Steps run in blocks of up to
    ``CHECK_EVERY`` without the loss (a per-run reduction that halves a vmapped step's speed);
    at the end of a block the loss and the finiteness of the parameters are checked once, and a
    block that ends bad in any run (any run of the batch named ``axis_name``: one collective, so
    the branch is a real branch under ``vmap``) is replayed with the per-step check, which finds
    the exact step and freezes the run there. The replay runs the same step function, so a run's
    numbers do not depend on whether some other run diverged. A loss that exceeds the threshold
    and falls back below it within one block goes unnoticed; non-finite values persist and are
    always caught.
    """
    opt = build_optimizer(optimizer, schedule)

    def record(s: SimState) -> dict:
        metrics = problem.decompose(s.params)
        ok = s.diverged_at < 0
        rec = {k: jnp.where(ok, v, jnp.nan) for k, v in metrics.items()}
        rec["step"] = s.step
        rec["lr"] = jnp.asarray(schedule(s.step), jnp.float32)
        if record_params:
            rec["params"] = s.params
        return rec

    def is_bad(loss: Array, params: PyTree) -> Array:
        return ~jnp.isfinite(loss) | (jnp.abs(loss) > threshold) | ~_all_finite(params)

    def one_step(s: SimState, checked: bool, lr: Array | None = None) -> SimState:
        t = s.step
        batch_key = jax.random.fold_in(key, t)
        if checked:
            loss, grad = jax.value_and_grad(problem.sample_loss)(s.params, batch_key)
        else:
            grad = jax.grad(problem.sample_loss)(s.params, batch_key)
        if noise is not None:
            # the barrier materializes the noise once: without it XLA re-computes the (costly)
            # normal transform inside every fusion that consumes it (3-10x slower sweeps)
            xi = jax.lax.optimization_barrier(noise.sample(key, t, problem, s.params))
            grad = jax.tree.map(jnp.add, grad, xi)
        lr = schedule(t) if lr is None else lr
        if opt is None:
            new_params = jax.tree.map(lambda p, g: p - (lr * g).astype(p.dtype), s.params, grad)
            new_opt = s.opt_state
        else:
            updates, new_opt = opt.update(grad, s.opt_state, s.params)
            new_params = optax.apply_updates(s.params, updates)
        active = jnp.asarray(True) if stop is None else t < stop
        diverged_at = s.diverged_at
        if checked:
            bad = is_bad(loss, new_params)
            diverged_at = jnp.where((diverged_at < 0) & bad & active, t, diverged_at)
        ok = (diverged_at < 0) & active
        return SimState(_tree_where(ok, new_params, s.params),
                        _tree_where(ok, new_opt, s.opt_state), t + active.astype(t.dtype),
                        diverged_at)

    def steps(s: SimState, n: int, checked: bool, lrs: Array | None) -> SimState:
        return jax.lax.scan(lambda c, lr: (one_step(c, checked, lr), None), s, lrs, length=n)[0]

    def block(s: SimState, n: int) -> SimState:
        if n == 1:
            return one_step(s, True)
        # SGD reads the block's learning rates from one vectorized evaluation of the schedule
        # instead of running the schedule's scalar kernels (six for WSD) inside every step
        lrs = None if opt is not None else jax.vmap(schedule)(
            s.step + jnp.arange(n, dtype=s.step.dtype))
        fast = steps(s, n, False, lrs)
        end_loss = problem.sample_loss(fast.params, jax.random.fold_in(key, fast.step))
        bad = (s.diverged_at < 0) & is_bad(end_loss, fast.params)
        n_bad = bad.astype(jnp.int32)
        if axis_name is not None:
            n_bad = jax.lax.psum(n_bad, axis_name)
        # only the runs that ended the block bad take the replay: the others keep the fast
        # path's bits, whatever happens in other runs (the step counter is the same in both and
        # stays unbatched, so the block's learning rates are one table for all runs)
        def replay() -> SimState:
            checked = steps(s, n, True, lrs)
            return fast._replace(**{f: _tree_where(bad, getattr(checked, f), getattr(fast, f))
                                    for f in ("params", "opt_state", "diverged_at")})

        return jax.lax.cond(n_bad > 0, replay, lambda: fast)

    def run(s: SimState, n: int) -> SimState:
        """n steps as equal blocks (see :func:`block_size`), or as blocks of CHECK_EVERY steps
        and one shorter block."""
        size = block_size(n)
        n_blocks, rest = divmod(n, size)
        if n_blocks > 1:
            s = jax.lax.scan(lambda c, _: (block(c, size), None), s, None, length=n_blocks)[0]
        elif n_blocks == 1:
            s = block(s, size)
        return block(s, rest) if rest else s

    def chunk(s: SimState, _) -> tuple[SimState, dict]:
        s = run(s, record_every)
        return s, record(s)

    first = record(state)
    n_full, rem = divmod(num_steps, record_every)
    state, recs = jax.lax.scan(chunk, state, None, length=n_full)
    parts = [jax.tree.map(lambda x: x[None], first), recs]
    if rem:
        state = run(state, rem)
        parts.append(jax.tree.map(lambda x: x[None], record(state)))
    records = jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)
    return records, state


def to_trajectory(recs: dict, final: SimState) -> Trajectory:
    """The :class:`~rivervalley.results.Trajectory` of :func:`run_one`'s records (with any leading
    run axes) and final state; the steps are kept once (every run of one call records at the same
    steps)."""
    extras = {k: v for k, v in recs.items() if k not in _problems.REQUIRED_KEYS + _RECORD_KEYS}
    steps = recs["step"]
    steps = steps.reshape(-1, steps.shape[-1])[0] if steps.ndim > 1 else steps
    return Trajectory(steps=steps, lr=recs["lr"], loss=recs["loss"],
                      river_loss=recs["river_loss"], hill_loss=recs["hill_loss"], extras=extras,
                      params=recs.get("params"), diverged_at=final.diverged_at,
                      final_state=final)
