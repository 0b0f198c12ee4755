"""Optimize any problem under any schedule: one ``lax.scan`` per run, ``jit(vmap)`` for sweeps.

- :func:`simulate`: one run -> :class:`Trajectory` (steps, lr, loss, river loss, hill loss, params).
- :func:`sweep`: seeds x a batch of schedules / landscapes / noise models / starting points, as one
  compiled program, sharded over every device JAX sees (``jax.devices()``). Compiled once per
  shape: calling it again with new parameter values of the same shapes does not recompile.
- :func:`run_plan`: executes a multi-checkpoint plan (``rivervalley.plans``): WSD branches fork from
  the saved state of the main run, so a branch equals an uninterrupted run bit for bit.

The update is x_{t+1} = x_t - eta_t g_t with g_t = grad sample_loss(x_t; batch key) + xi_t (plain
SGD; GD when there is no noise), or any optax optimizer given as a factory ``schedule -> optax
GradientTransformation`` (``optimizer=optax.adam``, ``optimizer=functools.partial(optax.sgd,
momentum=0.9)``). The batch key of step t is ``fold_in(key, t)``; the noise of step t is a pure
function of (key, t): a run of N steps is an exact prefix of a run of 2N steps.

Divergence (a non-finite loss or parameter, or |loss| above ``divergence_threshold``) freezes the
run, sets the records after it to NaN and reports the step in ``diverged_at``; :func:`simulate`
raises :class:`DivergenceError` naming the step unless ``on_divergence="report"``. The check costs
one loss evaluation per ``CHECK_EVERY`` (64) steps, not one per step: a block that ends bad is
replayed step by step to find the exact step (see :func:`_run_one`).

Every argument is checked once per call, on the host, before anything is compiled (the shape
checks trace the pieces abstractly and are cached like a ``jit``, ~1 ms on a repeated call):
``x0`` against the problem's ``param_shape`` (or what its ``init_params`` builds), stacked
arguments against ``batched``, seeds, keys, the optimizer factory's result, the threshold. A bad
argument is a ``ValueError`` (``TypeError`` for the optimizer) that names it. ``key`` is required
exactly when the run draws random numbers: a noise model, or a problem whose ``sample_loss`` uses
its key (``problem.stochastic``, else ``problem.batch_size is not None``, else assumed).

Example:
    >>> import jax
    >>> import rivervalley as rv
    >>> valley = rv.landscapes.standard_toy()
    >>> traj = rv.simulate(valley, valley.init_params(), rv.schedules.constant(0.06),
    ...                    num_steps=1000, noise=rv.noise.hill_only(1.0),
    ...                    key=jax.random.key(0), record_every=100)
    >>> print(traj.loss.shape, int(traj.steps[-1]), int(traj.diverged_at))
    (11,) 1000 -1
"""

from __future__ import annotations

import functools
import numbers
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rivervalley import _validate as V
from rivervalley import plans as _plans
from rivervalley import problems as _problems

Array = Any
PyTree = Any

#: Metric keys every problem's ``decompose`` returns.
CORE_METRICS = ("loss", "river_loss", "hill_loss")


class DivergenceError(RuntimeError):
    """A run diverged; ``step`` is the first update that produced a non-finite or exploding loss."""

    def __init__(self, step: int, message: str | None = None):
        self.step = int(step)
        super().__init__(message or f"the run diverged at step {self.step} (non-finite or "
                         "exploding loss); lower the learning rate or pass "
                         "on_divergence='report'")


class SimState(NamedTuple):
    """The full state of a run: resume a run by passing it as ``x0`` to :func:`simulate`."""

    params: PyTree
    opt_state: PyTree
    step: Array
    diverged_at: Array


class Trajectory(NamedTuple):
    """Records of one run (leading axis: records) or of many (leading axes: runs, records).

    Records are taken at steps start, start + k, start + 2k, ..., and at the last step.

    ``steps`` is stored once, shape ``(records,)``, whatever the leading run axes of the other
    fields (a sweep's ``(seeds, batch, records)``, a plan branch's ``(seeds, records)``): every run
    of one call records at the same steps. (Under your own ``jax.vmap`` of :func:`run_scan`,
    vmap stacks every field, ``steps`` included.) ``lr`` follows the runs like ``loss`` (a batch
    of schedules has one learning rate per run).

    :meth:`save` / :meth:`load` write and read it exactly (``.npz`` + JSON metadata) and
    :meth:`to_csv` exports the records as columns (:mod:`rivervalley.results_io`).
    """

    steps: Array
    lr: Array
    loss: Array
    river_loss: Array
    hill_loss: Array
    extras: dict
    params: PyTree | None
    diverged_at: Array
    final_state: SimState

    @property
    def final_params(self) -> PyTree:
        return self.final_state.params

    @property
    def diverged(self) -> Array:
        return np.asarray(self.diverged_at) >= 0

    def check(self) -> Trajectory:
        """Raise :class:`DivergenceError` when any run diverged; return self otherwise."""
        d = np.asarray(self.diverged_at)
        if np.any(d >= 0):
            first = int(d[d >= 0].min())
            n = int(np.sum(d >= 0))
            msg = (f"the run diverged at step {first}" if d.ndim == 0 else
                   f"{n} of {d.size} runs diverged, the first at step {first}")
            raise DivergenceError(first, msg + " (non-finite or exploding loss)")
        return self

    def save(self, path, *, config: dict | None = None) -> None:
        """Write to ``path`` (``.npz``) with ``config`` (JSON) as metadata:
        :func:`rivervalley.results_io.save`."""
        _save(self, path, config)

    @classmethod
    def load(cls, path) -> Trajectory:
        """Read a Trajectory written by :meth:`save` (arrays come back as NumPy, bit for bit)."""
        return _load(cls, path)

    def to_csv(self, path) -> int:
        """Write the records as CSV columns, one row per record (and run); returns the number of
        rows: :func:`rivervalley.results_io.to_csv`."""
        return _to_csv(self, path)


def _save(result: Any, path: Any, config: dict | None) -> None:
    from rivervalley import results_io  # results_io imports this module

    results_io.save(result, path, config=config)


def _load(cls: type, path: Any) -> Any:
    from rivervalley import results_io

    result = results_io.load(path)
    if not isinstance(result, cls):
        raise ValueError(f"path={str(path)!r} holds a {type(result).__name__}, not a "
                         f"{cls.__name__}: read it with rivervalley.results_io.load or "
                         f"{type(result).__name__}.load")
    return result


def _to_csv(result: Any, path: Any) -> int:
    from rivervalley import results_io

    return results_io.to_csv(result, path)


# -- static / dynamic partition of pytrees ---------------------------------------------------
def _is_numeric(leaf: Any) -> bool:
    return isinstance(leaf, (jax.Array, np.ndarray, np.generic, numbers.Number)) and not isinstance(
        leaf, bool)


def _partition(tree: Any) -> tuple[list, tuple]:
    """Array leaves (traced) and everything else (static, hashable)."""
    leaves, treedef = jax.tree.flatten(tree)
    dyn = [jnp.asarray(l) if _is_numeric(l) else None for l in leaves]
    static = tuple(None if _is_numeric(l) else l for l in leaves)
    return dyn, (treedef, static)


def _combine(dyn: list, static: tuple) -> Any:
    treedef, stat = static
    return jax.tree.unflatten(treedef, [d if s is None else s for d, s in zip(dyn, stat)])


def _tree_where(cond: Array, a: PyTree, b: PyTree) -> PyTree:
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


def _all_finite(tree: PyTree) -> Array:
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.array(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(l)) for l in leaves]))


# -- one run -----------------------------------------------------------------------------------
def _build_optimizer(optimizer: Callable | None, schedule: Callable):
    if optimizer is None:
        return None
    opt = optimizer(schedule)
    if not isinstance(opt, optax.GradientTransformation):
        raise TypeError(f"optimizer={V.fmt(optimizer)} returned {V.fmt(opt)} (a "
                        f"{type(opt).__name__}), not an optax.GradientTransformation: the factory "
                        "must build the optimizer from the schedule it is given, e.g. optax.adam "
                        "or functools.partial(optax.sgd, momentum=0.9)")
    return opt


def _init_state(params: PyTree, optimizer: Callable | None, schedule: Callable,
                step: int = 0) -> SimState:
    opt = _build_optimizer(optimizer, schedule)
    opt_state = () if opt is None else opt.init(params)
    return SimState(params, opt_state, jnp.asarray(step, jnp.int32), jnp.asarray(-1, jnp.int32))


#: Steps between divergence checks on the fast path, at most (see :func:`_run_one`).
CHECK_EVERY = 64


def _block_size(n: int) -> int:
    """The block length for n steps: n itself up to CHECK_EVERY, else the largest divisor of n in
    [CHECK_EVERY / 4, CHECK_EVERY] (one block length: each length compiles its own fast and replay
    loops, ~1 s each), else CHECK_EVERY (and a shorter last block).

    >>> [_block_size(n) for n in (7, 64, 100, 4000, 10_000, 4096, 10_007)]
    [7, 64, 50, 50, 50, 64, 64]
    """
    if n <= CHECK_EVERY:
        return n
    for size in range(CHECK_EVERY, CHECK_EVERY // 4 - 1, -1):
        if n % size == 0:
            return size
    return CHECK_EVERY


def _run_one(problem, schedule, noise, state: SimState, key: Array, stop: Array | None = None, *,
             num_steps: int, record_every: int, record_params: bool,
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
    opt = _build_optimizer(optimizer, schedule)

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
        """n steps as equal blocks (see :func:`_block_size`), or as blocks of CHECK_EVERY steps
        and one shorter block."""
        size = _block_size(n)
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


#: Name of the vmapped axis of runs (the divergence check's collective reduces over it).
RUNS = "runs"

#: Counts compilations of the batched program (a test asserts a sweep compiles once).
TRACE_COUNT = {"batched": 0}


@functools.partial(jax.jit, static_argnames=("static", "batched_mask", "num_steps",
                                             "record_every", "record_params", "optimizer",
                                             "threshold", "from_x0"))
def _batched(dyn, start, keys, batch_index, stop=None, *, static, batched_mask, num_steps,
             record_every, record_params, optimizer, threshold, from_x0):
    TRACE_COUNT["batched"] += 1

    def single(start_r, key_r, b):
        parts = [jax.tree.map(lambda l: l[b], d) if m else d for d, m in zip(dyn, batched_mask)]
        problem, schedule, noise = (_combine(d, s) for d, s in zip(parts, static))
        state = _init_state(start_r, optimizer, schedule) if from_x0 else start_r
        return _run_one(problem, schedule, noise, state, key_r, stop, num_steps=num_steps,
                        record_every=record_every, record_params=record_params,
                        optimizer=optimizer, threshold=threshold, axis_name=RUNS)

    return jax.vmap(single, axis_name=RUNS)(start, keys, batch_index)


def _mesh_put(arrays: PyTree, n_runs: int) -> PyTree:
    """Shard the leading (runs) axis over all devices when it divides evenly."""
    devices = jax.devices()
    if len(devices) == 1 or n_runs % len(devices):
        return arrays
    mesh = jax.sharding.Mesh(np.array(devices), ("runs",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))
    return jax.device_put(arrays, sharding)


def _execute(problem, schedule, noise, start, keys, batch_index, *, batched=(),
             num_steps, record_every, record_params, optimizer, threshold, from_x0, stop=None,
             bar=None, first_step=0):
    """Run R runs (leading axis of start/keys/batch_index) as one sharded program.

    With a progress ``bar`` (a tqdm bar; None: one call) the steps run as host-side chunks of
    :func:`_chunk_steps` steps (see :func:`_run_chunks`); ``first_step`` is then the step every
    run starts from (0 from x0, the state's step when resuming)."""
    dyn, static = zip(*(_partition(p) for p in (problem, schedule, noise)))
    mask = tuple(name in batched for name in ("problem", "schedule", "noise"))
    n = int(np.shape(batch_index)[0])
    n_dev = len(jax.devices())
    pad = (-n) % n_dev if n >= n_dev else 0
    if pad:
        idx = np.concatenate([np.arange(n), np.zeros(pad, int)])
        start, keys, batch_index = jax.tree.map(lambda x: x[idx], (start, keys, batch_index))
    start, keys, batch_index = _mesh_put((start, keys, batch_index), n + pad)
    kw = dict(static=tuple(static), batched_mask=mask, record_every=record_every,
              record_params=record_params, optimizer=optimizer, threshold=float(threshold))
    chunk, rec = (None, None) if bar is None else _chunk_steps(num_steps, record_every)
    if chunk is None or chunk >= num_steps:
        stop = None if stop is None else jnp.asarray(stop, jnp.int32)
        recs, final = _batched(list(dyn), start, keys, batch_index, stop, num_steps=num_steps,
                               from_x0=from_x0, **kw)
        if bar is not None:
            jax.block_until_ready(final.step)
            bar.update(num_steps)
    else:
        recs, final = _run_chunks(list(dyn), start, keys, batch_index, num_steps=num_steps,
                                  chunk=chunk, rec=rec, from_x0=from_x0, first_step=first_step,
                                  bar=bar, **kw)
    if pad:
        recs, final = jax.tree.map(lambda x: x[:n], (recs, final))
    return recs, final


# -- progress: the scan chunked on the host ----------------------------------------------------
#: At most this many chunks (calls of the compiled program) make a run with a progress bar.
PROGRESS_CHUNKS = 25
#: Seconds a run must have taken before the automatic bar (``progress=None``) shows.
PROGRESS_DELAY = 2.0


def _check_progress(progress: Any) -> None:
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise ValueError(f"progress={V.fmt(progress)} must be True, False or None (automatic: a "
                         "bar when stderr is a terminal and the run takes more than "
                         f"{PROGRESS_DELAY:g} s)")


def _stderr_is_tty() -> bool:
    try:
        return bool(sys.stderr is not None and sys.stderr.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def _progress_bar(progress: bool | None, total: int, desc: str):
    """A tqdm bar over ``total`` steps, or None: ``progress=False`` never, ``True`` always, None
    when stderr is a terminal (shown once the run has taken :data:`PROGRESS_DELAY` seconds:
    short runs, tests and CI logs stay clean)."""
    if progress is None:
        if not _stderr_is_tty():
            return None
        delay = PROGRESS_DELAY
    elif not progress:
        return None
    else:
        delay = 0.0
    from tqdm import tqdm

    return tqdm(total=int(total), desc=desc, unit="step", delay=delay, dynamic_ncols=True)


def _interval_chunk(num_steps: int, record_every: int) -> int:
    """Whole record intervals per chunk: at most :data:`PROGRESS_CHUNKS` chunks (or one interval
    each when there are fewer intervals; ``run_plan`` chunks its segments so)."""
    intervals = -(-num_steps // record_every)
    return record_every * max(1, -(-intervals // PROGRESS_CHUNKS))


def _chunk_steps(num_steps: int, record_every: int) -> tuple[int, int]:
    """``(chunk, rec)``: the chunk length of a run with a progress bar (at most
    :data:`PROGRESS_CHUNKS` chunks) and the record interval of its compiled program.

    Chunks are whole record intervals (``rec = record_every``) when there are enough of them; a
    run with fewer intervals (e.g. ``record_every=num_steps``) is cut inside them, into pieces of
    ``rec`` steps that divide the interval and are whole divergence-check blocks of it
    (:func:`_block_size`), whose extra records are dropped. Either way the steps run in the blocks
    of the unchunked run.

    >>> [_chunk_steps(n, k) for n, k in ((10_000, 1), (10_000, 100), (1000, 7), (100, 100))]
    [(400, 1), (400, 100), (42, 7), (50, 50)]
    >>> [_chunk_steps(n, k) for n, k in ((10_000, 10_000), (10_000, 5000), (10_007, 10_007))]
    [(400, 400), (500, 500), (10007, 10007)]
    """
    if -(-num_steps // record_every) >= PROGRESS_CHUNKS:
        return _interval_chunk(num_steps, record_every), record_every
    base = min(record_every, num_steps)  # the first interval (the only one when k >= n)
    block = _block_size(base)
    want = -(-num_steps // PROGRESS_CHUNKS)
    if base % block:
        return base, base  # blocks of CHECK_EVERY and a shorter one: whole intervals only
    rec = min(r for r in range(block, base + 1, block) if base % r == 0 and r >= min(want, base))
    return rec, rec


@functools.partial(jax.jit, static_argnames=("static", "batched_mask", "optimizer"))
def _init_batched(dyn, start, batch_index, *, static, batched_mask, optimizer):
    """The initial states of R runs from their parameters (what ``_batched(from_x0=True)``
    builds inside its program)."""
    def single(x, b):
        parts = [jax.tree.map(lambda l: l[b], d) if m else d for d, m in zip(dyn, batched_mask)]
        return _init_state(x, optimizer, _combine(parts[1], static[1]))

    return jax.vmap(single)(start, batch_index)


def _run_chunks(dyn, start, keys, batch_index, *, num_steps, chunk, rec, from_x0, first_step,
                bar, **kw):
    """``num_steps`` steps as calls of ONE compiled program of ``chunk`` steps recording every
    ``rec`` (see :func:`_chunk_steps`), each masked at its end step (``stop``), carrying the state
    on the host: the same steps in the same blocks as one call, so the result is bit for bit the
    unchunked run's (the resume guarantee), compiled once. Records at the requested steps
    (``first_step + j * record_every`` and the last step) are kept, each once. The bar advances
    when a chunk is done; the next chunk is dispatched before waiting for it (no idle device)."""
    record_every = kw.pop("record_every")
    state = (_init_batched(dyn, start, batch_index, static=kw["static"],
                           batched_mask=kw["batched_mask"], optimizer=kw["optimizer"])
             if from_x0 else start)
    end_step = first_step + num_steps
    offsets = rec * np.arange(chunk // rec + 1)
    pieces, keep, pending, last = [], [], None, first_step - 1
    a = first_step
    while a < end_step:
        e = min(a + chunk, end_step)
        recs, state = _batched(dyn, state, keys, batch_index, jnp.asarray(e, jnp.int32),
                               num_steps=chunk, record_every=rec, from_x0=False, **kw)
        # the steps this chunk records are known here (a, a + rec, ..., clipped at e, where the
        # masked steps repeat the last record): keep the requested ones, each once (selected
        # after the loop: no eager work between two chunks)
        for j, st in enumerate(np.minimum(a + offsets, e)):
            if st > last and ((st - first_step) % record_every == 0 or st == end_step):
                keep.append(len(pieces) * offsets.size + j)
                last = st
        pieces.append(recs)
        if pending is not None:
            jax.block_until_ready(pending[0])
            bar.update(pending[1])
        pending = (state.step, e - a)
        a = e
    jax.block_until_ready(pending[0])
    bar.update(pending[1])
    idx = np.asarray(keep, int)
    return jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=1)[:, idx], *pieces), state


def _trajectory(recs: dict, final: SimState) -> Trajectory:
    extras = {k: v for k, v in recs.items()
              if k not in CORE_METRICS + ("step", "lr", "params")}
    steps = recs["step"]  # every run of one call records at the same steps: keep them once
    steps = steps.reshape(-1, steps.shape[-1])[0] if steps.ndim > 1 else steps
    return Trajectory(steps=steps, lr=recs["lr"], loss=recs["loss"],
                      river_loss=recs["river_loss"], hill_loss=recs["hill_loss"], extras=extras,
                      params=recs.get("params"), diverged_at=final.diverged_at,
                      final_state=final)


# -- argument checks: on the host, once per call, before anything is traced --------------------
_BATCHABLE = ("problem", "schedule", "noise", "x0")


def _check_optimizer(optimizer: Any) -> None:
    if isinstance(optimizer, optax.GradientTransformation):
        raise TypeError("optimizer must be a factory schedule -> GradientTransformation "
                        "(e.g. optax.adam or functools.partial(optax.sgd, momentum=0.9)), "
                        "not an optimizer instance: the engine builds it from each schedule")
    if optimizer is not None and not callable(optimizer):
        raise TypeError(f"optimizer={V.fmt(optimizer)} must be None or a callable "
                        "schedule -> optax.GradientTransformation")


def _check_problem(problem: Any) -> None:
    """The host-side part of the problem protocol: the methods exist
    (:func:`rivervalley.problems.check_problem` raises the ``TypeError`` naming the missing ones;
    their outputs are checked per run by :func:`_probe`) and a minibatch size is >= 1."""
    if not all(callable(getattr(problem, m, None)) for m in _problems.REQUIRED_METHODS):
        _problems.check_problem(problem, None)  # raises before it looks at the parameters
    batch_size = getattr(problem, "batch_size", None)
    if batch_size is not None:
        # a minibatch of 0 samples has a NaN loss: that is a problem setting, not a divergence
        V.check_int("problem.batch_size", batch_size, lo=1)


def _check_schedule(schedule: Any, name: str = "schedule") -> None:
    if callable(schedule):
        return
    hint = ""
    if isinstance(schedule, (numbers.Real, np.ndarray, jax.Array)) and not isinstance(schedule,
                                                                                      bool):
        hint = (f": for a constant learning rate pass {name}=rivervalley.schedules.constant("
                f"{V.fmt(schedule)})")
    raise ValueError(f"{name}={V.fmt(schedule)} is not a schedule (a callable step -> learning "
                     f"rate){hint}")


def _check_noise(noise: Any) -> None:
    if noise is not None and not callable(getattr(noise, "sample", None)):
        raise ValueError(f"noise={V.fmt(noise)} is not a noise model: pass None or a "
                         "rivervalley.noise model (with .sample(key, step, problem, params))")


def _check_threshold(threshold: Any) -> float:
    if np.ndim(threshold) != 0:
        raise ValueError(f"divergence_threshold={V.fmt(threshold)} must be a number")
    V.check_real("divergence_threshold", threshold, lo=0.0, lo_open=True, finite=False,
                 what="|loss| above it counts as divergence; inf checks finiteness only")
    return float(threshold)


def _is_stochastic(problem: Any) -> bool:
    """Whether ``problem.sample_loss`` uses its key: ``problem.stochastic`` when the problem says
    (landscapes: False), else whether it draws minibatches (``batch_size`` not None), else True
    (a problem that does not say is assumed to use its key)."""
    flag = getattr(problem, "stochastic", None)
    if isinstance(flag, (bool, np.bool_)):
        return bool(flag)
    if hasattr(problem, "batch_size"):
        return problem.batch_size is not None
    return True


def _resolve_key(key: Any, problem: Any, noise: Any) -> Array:
    """The run key: required (and checked) when the run draws random numbers."""
    if key is None:
        if noise is not None:
            raise ValueError("key is required with a noise model: pass key=jax.random.key(seed)")
        if _is_stochastic(problem):
            bs = getattr(problem, "batch_size", None)
            why = (f"{type(problem).__name__} draws minibatches (batch_size={bs})" if bs is not None
                   else f"{type(problem).__name__}.sample_loss takes a key (a deterministic "
                   "problem says so with a `stochastic = False` attribute)")
            raise ValueError(f"key is required: {why}; pass key=jax.random.key(seed)")
        return jax.random.key(0)  # unused: a deterministic problem without noise
    V.check_key("key", key)
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    if np.shape(key) != (() if typed else (2,)):
        raise ValueError(f"key must be one PRNG key, not an array of {np.shape(key)} keys: pass "
                         "key=jax.random.key(seed); seeds select the runs")
    return key


def _seed_array(seeds: Any) -> np.ndarray:
    """``seeds``: a count (seeds 0 .. n-1) or a 1-D sequence of distinct integer seeds."""
    if isinstance(seeds, (numbers.Integral, np.integer)) and not isinstance(seeds,
                                                                            (bool, np.bool_)):
        return np.arange(V.check_int("seeds", seeds, lo=1, hi=V.SEED_MAX + 1), dtype=np.uint32)
    if isinstance(seeds, (bool, np.bool_)):
        raise ValueError(f"seeds={seeds!r} must be a count >= 1 or a 1-D sequence of integer "
                         "seeds, not a bool")
    arr = V.check_seeds("seeds", seeds)
    values, counts = np.unique(arr, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(f"seeds={V.fmt(seeds)} repeats {int(values[counts > 1][0])}: repeated "
                         "seeds give identical runs")
    return arr


def _check_batched(batched: Any) -> tuple[str, ...]:
    if isinstance(batched, str) or not isinstance(batched, (tuple, list)):
        raise ValueError(f"batched={batched!r} must be a tuple of argument names, e.g. "
                         f"batched=({batched!r},)" if isinstance(batched, str) else
                         f"batched={batched!r} must be a tuple of argument names")
    unknown = [b for b in batched if b not in _BATCHABLE]
    if unknown:
        raise ValueError(f"batched={tuple(batched)!r} names unknown arguments {unknown}; "
                         "valid: 'problem', 'schedule', 'noise', 'x0'")
    return tuple(batched)


def _with(batched: tuple[str, ...], arg: str) -> tuple[str, ...]:
    return (*batched, arg)


def _name(obj: Any) -> str:
    """A short name of a problem or noise model for a message (their reprs hold arrays)."""
    return type(obj).__name__


def _path(prefix: str, path) -> str:
    return prefix + jax.tree_util.keystr(path)


def _batch_size(obj: Any, name: str) -> int:
    """The common leading axis of every array leaf of a batched argument."""
    sizes = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(obj)[0]:
        if not _is_numeric(leaf):
            continue
        if np.ndim(leaf) == 0:
            raise ValueError(f"{name} is listed in batched but {_path(name, path)} is a scalar: "
                             "a batched argument has a leading batch axis on every array leaf "
                             "(stack configurations with rivervalley.stack)")
        sizes[_path(name, path)] = int(np.shape(leaf)[0])
    if not sizes:
        raise ValueError(f"{name} is listed in batched but has no array leaves to batch over")
    if len(set(sizes.values())) != 1:
        raise ValueError(f"{name} is listed in batched but its array leaves do not share one "
                         f"leading batch axis (sizes {sorted(set(sizes.values()))}: {sizes}); "
                         "stack configurations with rivervalley.stack")
    return next(iter(sizes.values()))


def _spec(obj: Any, batched: bool) -> tuple[list, tuple]:
    """Like :func:`_partition`, with the array leaves as abstract values of ONE run (the leading
    batch axis dropped when ``batched``), for :func:`jax.eval_shape`."""
    leaves, treedef = jax.tree.flatten(obj)
    dyn = []
    for leaf in leaves:
        if _is_numeric(leaf):
            shape, dtype = np.shape(leaf), jax.dtypes.canonicalize_dtype(jnp.result_type(leaf))
            dyn.append(jax.ShapeDtypeStruct(shape[1:] if batched else shape, dtype))
        else:
            dyn.append(None)
    return dyn, (treedef, tuple(None if _is_numeric(l) else l for l in leaves))


def _shapes(tree: Any) -> str:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    if len(leaves) == 1 and not leaves[0][0]:
        return str(tuple(np.shape(leaves[0][1])))
    return "{" + ", ".join(f"{jax.tree_util.keystr(p)}: {tuple(np.shape(l))}"
                           for p, l in leaves) + "}"


def _check_x0_values(x0: Any, name: str = "x0") -> None:
    """Every leaf of x0 is a floating-point array with finite entries."""
    if isinstance(x0, SimState) and name == "x0":
        raise ValueError("x0 is a SimState: sweep and run_plan start from parameters (resume a "
                         "single run with simulate, or pass the state's params)")
    leaves = jax.tree_util.tree_flatten_with_path(x0)[0]
    if not leaves:
        raise ValueError(f"{name}={V.fmt(x0)} has no array leaves: pass the initial parameters")
    for path, leaf in leaves:
        where = _path(name, path)
        if not _is_numeric(leaf) or V._is_bool(leaf):
            raise ValueError(f"{where}={V.fmt(leaf)} is not a floating-point array of parameters")
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(f"{where}={V.fmt(leaf)} has dtype {dtype}: parameters must be floating "
                             f"point (an integer x0 would make integer updates); pass "
                             f"jnp.asarray({name}, float)")
        if not V.is_traced(leaf):
            a = np.asarray(leaf)
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{where}={V.fmt(leaf)} holds {int(np.sum(~np.isfinite(a)))} "
                                 "non-finite entries (NaN or inf): the starting point must be "
                                 "finite")


def _check_run(problem, schedule, noise, x0, key, *, batched=(), optimizer=None,
               opt_state=None, x0_name="x0") -> None:
    """Trace one run's pieces abstractly (no compilation, no FLOPs) and check that they fit
    together: ``schedule(step)`` is a scalar, ``x0`` has the shapes of the problem's parameters
    (``problem.param_shape``, or the tree ``problem.init_params`` builds), the loss at x0 is a
    scalar, the noise has the shapes of the parameters and the optimizer factory returns an optax
    optimizer. A stacked argument missing from ``batched`` (or listed there but not stacked)
    shows up here as a shape mismatch, and the message names the argument.

    The trace depends only on shapes, dtypes and static structure, so it is cached like a
    ``jit`` (:func:`_probe`): a sweep called again with new values costs ~0.1 ms here."""
    batch_shape = getattr(problem, "batch_shape", ())
    if batch_shape and "problem" not in batched:
        raise ValueError(f"problem is a stack of {int(np.prod(batch_shape))} problems (batch shape "
                         f"{tuple(batch_shape)}) but batched={tuple(batched)!r} does not name it: "
                         f"pass batched={_with(batched, 'problem')!r}")
    p_dyn, p_st = _spec(problem, "problem" in batched)
    s_dyn, s_st = _spec(schedule, "schedule" in batched)
    n_dyn, n_st = _spec(noise, "noise" in batched)
    x_b = "x0" in batched
    x_spec = jax.tree.map(lambda l: jax.ShapeDtypeStruct(
        np.shape(l)[1:] if x_b else np.shape(l),
        jax.dtypes.canonicalize_dtype(jnp.result_type(l))), x0)

    def hint(arg: str, obj: Any) -> str:
        """The hint for an argument that may be a stack ``batched`` does not name."""
        if arg in batched or not any(_is_numeric(l) and np.ndim(l) > 0
                                     for l in jax.tree.leaves(obj)):
            return ""
        return (f"; if {arg} is a stack of configurations (rivervalley.stack), name it: "
                f"batched={_with(batched, arg)!r}")

    hints = tuple(hint(a, o) for a, o in (("problem", problem), ("schedule", schedule),
                                          ("noise", noise)))
    opt_def = None if opt_state is None else jax.tree.structure(opt_state)
    _probe.eval_shape(p_dyn, s_dyn, n_dyn, x_spec, key, p_st=p_st, s_st=s_st, n_st=n_st,
                      batched=tuple(batched), optimizer=optimizer, opt_def=opt_def,
                      x0_name=x0_name, hints=hints)


@functools.partial(jax.jit, static_argnames=("p_st", "s_st", "n_st", "batched", "optimizer",
                                             "opt_def", "x0_name", "hints"))
def _probe(p_dyn, s_dyn, n_dyn, x, key, *, p_st, s_st, n_st, batched, optimizer, opt_def, x0_name,
           hints):
    """The abstract run of :func:`_check_run` (only ever traced, through ``eval_shape``)."""
    prob, sched, nz = _combine(p_dyn, p_st), _combine(s_dyn, s_st), _combine(n_dyn, n_st)
    p_hint, s_hint, n_hint = hints
    step = jnp.zeros((), jnp.int32)
    try:
        lr = sched(step)
    except Exception as e:  # noqa: BLE001 - reported with the argument's name
        raise ValueError(f"schedule ({type(sched).__name__}) fails on a step: "
                         f"{type(e).__name__}: {e}{s_hint}") from e
    if jnp.shape(lr) != ():
        raise ValueError(f"schedule(step) returns shape {jnp.shape(lr)}, not one learning rate"
                         + (f": a stack of {jnp.shape(lr)[0]} schedules needs batched="
                            f"{_with(batched, 'schedule')!r}" if "schedule" not in batched
                            else ""))
    expected = _expected_params(prob)
    if expected is not None:
        _compare_params(x, expected, x0_name, batched)
    try:
        loss = prob.loss(x)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"problem.loss({x0_name}) fails for {x0_name} of shapes {_shapes(x)}: "
                         f"{type(e).__name__}: {e}{p_hint}") from e
    if jnp.shape(loss) != ():
        x_hint = (f"; a batch of starting points needs batched={_with(batched, 'x0')!r}"
                  if "x0" not in batched else "")
        raise ValueError(f"problem.loss({x0_name}) has shape {jnp.shape(loss)}, not a scalar: "
                         f"{x0_name} (shapes {_shapes(x)}) does not fit the problem{x_hint}"
                         f"{p_hint}")
    # the rest of the protocol on one run's problem and parameters: sample_loss and every
    # decompose key are floating-point scalars, 'loss' / 'river_loss' / 'hill_loss' are there
    _problems.check_problem(prob, x, key=key)
    if nz is not None:
        try:
            xi = nz.sample(key, step, prob, x)
            ok = (jax.tree.structure(xi) == jax.tree.structure(x) and all(
                jnp.shape(a) == jnp.shape(b) for a, b in zip(jax.tree.leaves(xi),
                                                             jax.tree.leaves(x))))
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"noise={_name(nz)} cannot draw the gradient noise of this problem: "
                             f"{type(e).__name__}: {e}{n_hint}") from e
        if not ok:
            raise ValueError(f"noise.sample returns shapes {_shapes(xi)} for parameters of "
                             f"shapes {_shapes(x)}{n_hint}")
    opt = _build_optimizer(optimizer, sched)
    if opt_def is not None:
        want = () if opt is None else opt.init(x)
        if jax.tree.structure(want) != opt_def:
            raise ValueError(f"x0 is a SimState whose opt_state does not fit "
                             f"optimizer={V.fmt(optimizer)}: resume with the optimizer that "
                             "produced the state")


def _expected_params(problem: Any) -> Any:
    """The parameter shapes of one run of ``problem`` (traced), or None when it does not say:
    ``problem.param_shape`` (one point's shape: a tuple, or a pytree of tuples like the params;
    landscapes, the bigram and transformer models state it), else the tree
    ``problem.init_params`` returns."""
    shape = getattr(problem, "param_shape", None)
    if shape is not None:
        is_shape = lambda t: isinstance(t, tuple) and all(
            isinstance(n, (numbers.Integral, np.integer)) for n in t)
        return jax.tree.map(lambda t: jax.ShapeDtypeStruct(tuple(int(n) for n in t),
                                                           jnp.result_type(float)),
                            shape, is_leaf=is_shape)
    init = getattr(problem, "init_params", None)
    if not callable(init):
        return None
    for kwargs in (dict(key=jax.random.key(0)), {}):
        try:
            return init(**kwargs)
        except Exception:  # noqa: BLE001, S112 - an init we cannot call tells us nothing
            continue
    return None


def _compare_params(x, expected, name, batched) -> None:
    if jax.tree.structure(x) != jax.tree.structure(expected):
        raise ValueError(f"{name} has leaves {_shapes(x)} but the problem's parameters are "
                         f"{_shapes(expected)} (its param_shape, or the tree its init_params "
                         "builds)")
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(x)[0], jax.tree.leaves(expected)):
        sa, sb = tuple(jnp.shape(a)), tuple(jnp.shape(b))
        if sa == sb:
            continue
        where = _path(name, path)
        if "x0" not in batched and len(sa) == len(sb) + 1 and sa[1:] == sb:
            raise ValueError(f"{where} has shape {sa} but the problem's parameters have shape "
                             f"{sb}: a batch of {sa[0]} starting points needs batched="
                             f"{_with(batched, 'x0')!r}")
        per_run = " per run (its leading axis is the batch)" if "x0" in batched else ""
        raise ValueError(f"{where} has shape {sa}{per_run} but the problem's parameters have "
                         f"shape {sb}")


def _divergence_message(traj: Trajectory, threshold: float) -> str | None:
    """Why a single run diverged when the learning rate is not to blame: a starting loss that is
    already non-finite or above the threshold. None: the usual message."""
    loss0 = float(np.asarray(traj.loss)[0])
    step0 = int(np.asarray(traj.steps)[0])
    if not np.isfinite(loss0):
        return (f"the run diverged at step {int(traj.diverged_at)}: the loss at the starting point "
                f"(step {step0}) is already {loss0}; check x0 and the problem (not the learning "
                "rate)")
    if abs(loss0) > threshold:
        return (f"the run diverged at step {int(traj.diverged_at)}: |loss| at the starting point "
                f"(step {step0}) is {abs(loss0):.4g}, already above divergence_threshold="
                f"{threshold:g}; raise the threshold (|loss| above it counts as divergence)")
    return None


def simulate(problem: Any, x0: PyTree | SimState, schedule: Callable, *, num_steps: int,
             optimizer: Callable | None = None, noise: Any = None, key: Array | None = None,
             record_every: int = 1, record_params: bool = True,
             divergence_threshold: float = 1e10, on_divergence: str = "raise",
             progress: bool | None = None) -> Trajectory:
    """Optimize ``problem`` from ``x0`` for ``num_steps`` updates under ``schedule``.

    Args:
        problem: a landscape or bigram model (``loss``, ``sample_loss``, ``decompose``).
        x0: initial parameters, or a :class:`SimState` to resume (the step continues from it):
            floating point, finite, with the problem's parameter shapes (``param_shape``).
        schedule: ``step -> lr`` (a ``rivervalley.schedules`` object or any optax schedule).
        num_steps: number of updates (>= 1).
        optimizer: None for SGD (x <- x - eta_t g), or a factory ``schedule ->
            optax.GradientTransformation`` such as ``optax.adam``.
        noise: a ``rivervalley.noise`` model added to the gradient, or None.
        key: PRNG key, ``jax.random.key(seed)``: required when the run draws random numbers
            (a noise model, or a problem whose ``sample_loss`` uses its key: a bigram model with
            a ``batch_size``, the transformer); a deterministic run ignores it.
        record_every: record every k steps (memory O(num_steps / k)).
        record_params: also record the parameters.
        divergence_threshold: |loss| above this counts as divergence.
        on_divergence: ``"raise"`` (:class:`DivergenceError` naming the step) or ``"report"``
            (return; ``diverged_at`` holds the step, records after it are NaN).
        progress: a tqdm progress bar over the steps: True, False, or None (automatic: on
            when stderr is a terminal, shown once the run has taken 2 s). With a bar the scan
            runs as chunks of whole record intervals on the host (one compiled program, the
            state carried between calls: the same numbers bit for bit); never inside traced
            code.

    Returns:
        A :class:`Trajectory` with records at steps start, start + k, ..., start + num_steps.
    """
    num_steps, record_every, threshold = _check_common(problem, schedule, noise, optimizer,
                                                       num_steps, record_every,
                                                       divergence_threshold, record_params)
    if on_divergence not in ("raise", "report"):
        raise ValueError(f"on_divergence={on_divergence!r} must be 'raise' or 'report'")
    _check_progress(progress)
    key = _resolve_key(key, problem, noise)
    from_x0 = not isinstance(x0, SimState)
    if from_x0:
        _check_x0_values(x0)
        _check_run(problem, schedule, noise, x0, key, optimizer=optimizer)
    else:
        _check_state(x0)
        _check_run(problem, schedule, noise, x0.params, key, optimizer=optimizer,
                   opt_state=x0.opt_state, x0_name="x0.params")
    start = jax.tree.map(lambda x: jnp.asarray(x)[None], x0)
    bar = _progress_bar(progress, num_steps, "simulate")
    try:
        recs, final = _execute(problem, schedule, noise, start, key[None], np.zeros(1, np.int32),
                               num_steps=num_steps, record_every=record_every,
                               record_params=record_params, optimizer=optimizer,
                               threshold=threshold, from_x0=from_x0, bar=bar,
                               first_step=0 if from_x0 else int(x0.step))
    finally:
        if bar is not None:
            bar.close()
    recs, final = jax.tree.map(lambda x: x[0], (recs, final))
    traj = _trajectory(recs, final)
    if on_divergence == "raise" and int(traj.diverged_at) >= 0:
        step = int(traj.diverged_at)
        raise DivergenceError(step, _divergence_message(traj, threshold) or (
            f"the run diverged at step {step} (a non-finite loss or parameter, or |loss| above "
            f"divergence_threshold={threshold:g}); lower the learning rate or pass "
            "on_divergence='report'"))
    return traj


def _check_common(problem, schedule, noise, optimizer, num_steps, record_every, threshold,
                  record_params) -> tuple[int, int, float]:
    """The checks every entry point shares; returns the checked numbers."""
    num_steps = V.check_int("num_steps", num_steps, lo=1)
    record_every = V.check_int("record_every", record_every, lo=1)
    if not isinstance(record_params, (bool, np.bool_)):
        raise ValueError(f"record_params={V.fmt(record_params)} must be True or False")
    _check_problem(problem)
    _check_schedule(schedule)
    _check_noise(noise)
    _check_optimizer(optimizer)
    return num_steps, record_every, _check_threshold(threshold)


def _check_state(state: SimState) -> None:
    """A state to resume from: finite parameters and a run that has not diverged (a diverged
    state is frozen; resuming it would only repeat it)."""
    _check_x0_values(state.params, "x0.params")
    d = np.asarray(state.diverged_at)
    if np.ndim(d) != 0 or np.ndim(state.step) != 0:
        raise ValueError("x0 is a SimState of several runs (a sweep's final_state): resume one run "
                         "at a time, e.g. jax.tree.map(lambda x: x[s, b], final_state)")
    if int(d) >= 0:
        raise ValueError(f"x0 is a SimState that diverged at step {int(d)}: it is frozen there; "
                         "resume from a state saved before the divergence")


def run_scan(problem: Any, x0: PyTree | SimState, schedule: Callable, key: Array, *,
             num_steps: int, noise: Any = None, optimizer: Callable | None = None,
             record_every: int = 1, record_params: bool = True,
             divergence_threshold: float = 1e10) -> Trajectory:
    """The traceable core of :func:`simulate`: one run as one ``lax.scan``, for use inside your own
    ``jit`` / ``vmap`` / ``grad`` (a differentiable loss of a whole run, a custom batching).

    No argument validation beyond the problem protocol (:func:`rivervalley.problems.check_problem`,
    abstract, once per trace: a missing method or ``decompose`` key is a ``TypeError`` naming it),
    and no raising: divergence is reported in ``diverged_at`` only (-1: none). The
    arguments mean what they mean for :func:`simulate`; ``num_steps`` and ``record_every`` must be
    static. Under your own ``vmap`` the divergence check's branch becomes a select, so the
    per-step replay runs on every block (about twice the work): batch runs with :func:`sweep`,
    which shares the branch across its runs.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import rivervalley as rv
        >>> valley = rv.landscapes.standard_toy()
        >>> final = jax.jit(lambda peak: rv.dynamics.run_scan(
        ...     valley, jnp.zeros(2), rv.schedules.constant(peak), jax.random.key(0),
        ...     num_steps=100, record_every=100).loss[-1])
        >>> print(bool(final(0.06) < final(0.01)))
        True
    """
    state = x0 if isinstance(x0, SimState) else _init_state(x0, optimizer, schedule)
    _problems.check_problem(problem, state.params, key=key)
    recs, final = _run_one(problem, schedule, noise, state, key, num_steps=num_steps,
                           record_every=record_every, record_params=record_params,
                           optimizer=optimizer, threshold=divergence_threshold)
    return _trajectory(recs, final)


class SweepResult(NamedTuple):
    """A sweep's records: every trajectory array has leading axes (seeds, batch, records), except
    ``trajectory.steps``, stored once, shape (records,)."""

    trajectory: Trajectory
    seeds: np.ndarray

    @property
    def diverged_at(self) -> np.ndarray:
        """(seeds, batch): the divergence step of each run, -1 where it did not diverge."""
        return np.asarray(self.trajectory.diverged_at)

    def report(self) -> str:
        """One line per diverged batch entry: which configuration diverged, at which step."""
        d = self.diverged_at
        lines = []
        for b in range(d.shape[1]):
            bad = d[:, b] >= 0
            if bad.any():
                lines.append(f"config {b}: {int(bad.sum())}/{d.shape[0]} seeds diverged, "
                             f"first at step {int(d[bad, b].min())}")
        return "\n".join(lines) if lines else "no run diverged"

    def save(self, path, *, config: dict | None = None) -> None:
        """Write to ``path`` (``.npz``) with ``config`` (JSON) as metadata:
        :func:`rivervalley.results_io.save`."""
        _save(self, path, config)

    @classmethod
    def load(cls, path) -> SweepResult:
        """Read a SweepResult written by :meth:`save` (arrays come back as NumPy, bit for bit)."""
        return _load(cls, path)

    def to_csv(self, path) -> int:
        """Write the records as CSV columns, one row per record (per seed and configuration); returns
        the number of rows: :func:`rivervalley.results_io.to_csv`."""
        return _to_csv(self, path)


def stack(objs: list) -> Any:
    """Stack pytrees of the same structure (schedules, landscapes, noise) into one batch.

    Example:
        >>> import rivervalley as rv
        >>> import jax
        >>> s = rv.stack([rv.schedules.constant(0.1), rv.schedules.constant(0.2)])
        >>> print([round(float(v), 2) for v in jax.vmap(lambda sch: sch(0))(s)])
        [0.1, 0.2]
    """
    if not objs:
        raise ValueError("objs must be a non-empty list")
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *objs)


def sweep(problem: Any, x0: PyTree, schedule: Callable, *, num_steps: int,
          seeds: int | np.ndarray = 1, key: Array | None = None, noise: Any = None,
          optimizer: Callable | None = None, batched: tuple[str, ...] = (),
          record_every: int = 1, record_params: bool = False,
          divergence_threshold: float = 1e10, progress: bool | None = None) -> SweepResult:
    """Seeds x a batch of configurations, as one compiled, sharded program.

    ``batched`` names the arguments (among ``"problem"``, ``"schedule"``, ``"noise"``, ``"x0"``)
    whose array leaves carry a leading batch axis of a common size B (build them with
    :func:`stack`, or by calling a schedule factory inside ``jax.vmap``). Run (s, b) uses seed s
    (key ``fold_in(key, seed)``) and batch entry b. Runs are laid out on a ``runs`` mesh axis over
    ``jax.devices()`` and padded to a multiple of the device count.

    ``seeds`` is a count n (seeds 0 .. n-1) or a list of distinct integer seeds in [0, 2**32 - 1];
    ``key`` is required when the runs draw random numbers (see :func:`simulate`). Every argument
    is checked once, on the host, before compilation: a stacked argument that ``batched`` does
    not name (or an ``x0`` of the wrong shape) is an error naming it, never a silent broadcast.

    ``progress``: a tqdm bar over the steps (True / False / None: automatic), as in
    :func:`simulate`.

    Returns:
        A :class:`SweepResult`; its trajectory arrays have shape (S, B, records). Divergence is
        reported per run in ``diverged_at`` (and :meth:`SweepResult.report`), never raised.
    """
    num_steps, record_every, threshold = _check_common(problem, schedule, noise, optimizer,
                                                       num_steps, record_every,
                                                       divergence_threshold, record_params)
    batched = _check_batched(batched)
    _check_progress(progress)
    sizes = {name: _batch_size(obj, name) for name, obj in
             (("problem", problem), ("schedule", schedule), ("noise", noise), ("x0", x0))
             if name in batched}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"batched arguments disagree on the batch size: {sizes}")
    n_batch = next(iter(sizes.values()), 1)
    seed_arr = _seed_array(seeds)
    key = _resolve_key(key, problem, noise)
    _check_x0_values(x0)
    _check_run(problem, schedule, noise, x0, key, batched=batched, optimizer=optimizer)
    n_seeds = seed_arr.size
    s_idx = np.repeat(np.arange(n_seeds), n_batch)
    b_idx = np.tile(np.arange(n_batch), n_seeds).astype(np.int32)
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(jnp.asarray(seed_arr[s_idx]))
    x0_runs = jax.tree.map(lambda x: jnp.asarray(x)[b_idx] if "x0" in batched else
                           jnp.broadcast_to(jnp.asarray(x), (b_idx.size,) + jnp.shape(x)), x0)
    bar = _progress_bar(progress, num_steps, "sweep")
    try:
        recs, final = _execute(problem, schedule, noise, x0_runs, keys, b_idx, batched=batched,
                               num_steps=num_steps, record_every=record_every,
                               record_params=record_params, optimizer=optimizer,
                               threshold=threshold, from_x0=True, bar=bar)
    finally:
        if bar is not None:
            bar.close()
    shape = (n_seeds, n_batch)
    recs, final = jax.tree.map(lambda x: x.reshape(shape + x.shape[1:]), (recs, final))
    return SweepResult(_trajectory(recs, final), seed_arr.astype(np.int64))


# -- plans --------------------------------------------------------------------------------------
class PlanResult(NamedTuple):
    """Checkpoint metrics of a plan (seed means, their standard errors) and every branch's records.

    Arrays of shape (K,) follow ``plan.checkpoints``; ``per_seed_loss`` is (K, seeds);
    ``trajectories[branch]`` has leading axes (seeds, records) (its ``steps``: (records,)).
    """

    plan: Any
    names: tuple[str, ...]
    steps: np.ndarray
    budgets: np.ndarray
    compute: np.ndarray
    loss: np.ndarray
    loss_sem: np.ndarray
    river_loss: np.ndarray
    hill_loss: np.ndarray
    per_seed_loss: np.ndarray
    trajectories: dict

    def table(self) -> str:
        """A plain-text table of the checkpoints."""
        head = f"{'checkpoint':>14s} {'step':>7s} {'compute':>8s} {'loss':>10s} {'river':>10s} " \
               f"{'hill':>10s}"
        rows = [head] + [
            f"{n:>14s} {s:7d} {c:8d} {l:10.5f} {r:10.5f} {h:10.5f}"
            for n, s, c, l, r, h in zip(self.names, self.steps, self.compute, self.loss,
                                        self.river_loss, self.hill_loss)]
        return "\n".join(rows)

    def save(self, path, *, config: dict | None = None) -> None:
        """Write to ``path`` (``.npz``) with ``config`` (JSON) as metadata:
        :func:`rivervalley.results_io.save`."""
        _save(self, path, config)

    @classmethod
    def load(cls, path) -> PlanResult:
        """Read a PlanResult written by :meth:`save` (arrays come back as NumPy, bit for bit)."""
        return _load(cls, path)

    def to_csv(self, path) -> int:
        """Write the records as CSV columns, one row per record (per branch and seed); returns the number of
        rows: :func:`rivervalley.results_io.to_csv`."""
        return _to_csv(self, path)


def run_plan(plan: Any, problem: Any, x0: PyTree, *, seeds: int | np.ndarray = 1,
             key: Array | None = None, noise: Any = None, optimizer: Callable | None = None,
             record_every: int | None = None, divergence_threshold: float = 1e10,
             progress: bool | None = None) -> PlanResult:
    """Execute a multi-checkpoint plan over several seeds.

    Each branch runs from its parent's state at its fork step (or from x0); every seed uses the
    same run key on every branch, so a branch sees exactly the noise its parent would have seen at
    those steps (common random numbers: plan comparisons are paired).

    Args:
        plan: a ``rivervalley.plans.Plan``.
        problem, x0, noise, optimizer, divergence_threshold: as in :func:`simulate`.
        seeds: number of seeds n (seeds 0 .. n-1), or a list of distinct integer seeds in
            [0, 2**32 - 1]; checkpoint metrics are seed means.
        key: base PRNG key; seed s uses ``fold_in(key, s)``. Required when the run draws random
            numbers, as in :func:`simulate`.
        record_every: record interval of the branch trajectories (default: about 400 records over
            the longest branch).
        progress: a tqdm bar over the steps of all branches (True / False / None: automatic),
            as in :func:`simulate`.

    Returns:
        A :class:`PlanResult`.
    """
    if not isinstance(plan, _plans.Plan):
        raise ValueError(f"plan={V.fmt(plan)} must be a rivervalley.plans.Plan (e.g. "
                         "rivervalley.plans.wsd(peak, budgets))")
    if record_every is None:
        longest = max(b.end_step - b.start_step for b in plan.branches)
        record_every = max(1, longest // 400)
    _, record_every, threshold = _check_common(problem, plan.branches[0].schedule, noise,
                                               optimizer, 1, record_every,
                                               divergence_threshold, False)
    _check_progress(progress)
    seed_arr = _seed_array(seeds)
    key = _resolve_key(key, problem, noise)
    _check_x0_values(x0)
    for branch in plan.branches:
        _check_schedule(branch.schedule, f"branch {branch.name!r}: schedule")
        _check_run(problem, branch.schedule, noise, x0, key, optimizer=optimizer)
    n = seed_arr.size
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(jnp.asarray(seed_arr))
    zeros = np.zeros(n, np.int32)
    # Every segment runs the same static number of steps (the longest segment, masked past its
    # stop), so the whole plan compiles once instead of once per segment length.
    segments = []
    for branch in plan.branches:
        cuts = sorted({b.start_step for b in plan.branches if b.parent == branch.name}
                      | {c.step for c in plan.checkpoints if c.branch == branch.name}
                      | {branch.end_step})
        cuts = [c for c in cuts if branch.start_step < c <= branch.end_step]
        segments.append(cuts)
    longest = max(c - a for b, cuts in zip(plan.branches, segments)
                  for a, c in zip([b.start_step] + cuts[:-1], cuts))
    seg_steps = -(-longest // record_every) * record_every
    total = sum(b.end_step - b.start_step for b in plan.branches)
    bar = _progress_bar(progress, total, "run_plan")
    # with a bar, a segment runs as calls of `chunk` steps (whole record intervals, masked at
    # their end like the segments themselves): the same program, compiled once, the same numbers
    chunk = seg_steps if bar is None else min(seg_steps, _interval_chunk(total, record_every))
    saved: dict[tuple[str, int], SimState] = {}
    trajectories: dict[str, Trajectory] = {}
    try:
        for branch, cuts in zip(plan.branches, segments):
            if branch.parent is None:
                start = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x),
                                                                (n,) + jnp.shape(x)), x0)
                state = jax.vmap(lambda p, b=branch: _init_state(p, optimizer, b.schedule,
                                                                 b.start_step))(start)
            else:  # Plan guarantees the parent is listed before and spans the fork step
                state = saved[(branch.parent, branch.start_step)]
            saved[(branch.name, branch.start_step)] = state
            pieces = []
            at = branch.start_step
            for cut in cuts:
                ends = [cut] if bar is None else list(range(at + chunk, cut, chunk)) + [cut]
                for end in ends:
                    recs, state = _execute(problem, branch.schedule, noise, state, keys, zeros,
                                           num_steps=chunk,
                                           record_every=record_every, record_params=False,
                                           optimizer=optimizer, threshold=threshold,
                                           from_x0=False, stop=end)
                    # masked steps repeat the stop record: keep each step once
                    steps = np.asarray(recs["step"][0])
                    keep = np.concatenate([[not pieces], steps[1:] > steps[:-1]])
                    pieces.append(jax.tree.map(lambda x, keep=keep: x[:, keep], recs))
                    if bar is not None:
                        bar.update(end - at)
                    at = end
                saved[(branch.name, cut)] = state
            recs = jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=1), *pieces)
            trajectories[branch.name] = _trajectory(recs, state)
    finally:
        if bar is not None:
            bar.close()

    metrics = []
    for c in plan.checkpoints:
        st = saved[(c.branch, c.step)]
        m = jax.vmap(problem.decompose)(st.params)
        bad = np.asarray(st.diverged_at) >= 0
        metrics.append({k: np.where(bad, np.nan, np.asarray(v)) for k, v in m.items()})
    per_seed = np.stack([m["loss"] for m in metrics])
    sem = per_seed.std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(len(metrics))
    return PlanResult(
        plan=plan, names=tuple(c.name for c in plan.checkpoints),
        steps=np.array([c.step for c in plan.checkpoints]),
        budgets=np.array([c.budget for c in plan.checkpoints]),
        compute=np.array([c.compute for c in plan.checkpoints]),
        loss=per_seed.mean(axis=1), loss_sem=sem,
        river_loss=np.array([m["river_loss"].mean() for m in metrics]),
        hill_loss=np.array([m["hill_loss"].mean() for m in metrics]),
        per_seed_loss=per_seed, trajectories=trajectories)


__all__ = ["DivergenceError", "SimState", "Trajectory", "SweepResult", "PlanResult", "simulate",
           "run_scan", "sweep", "run_plan", "stack"]
