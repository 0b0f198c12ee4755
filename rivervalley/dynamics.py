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
one loss evaluation per :data:`CHECK_EVERY` steps, not one per step: a block that ends bad is
replayed step by step to find the exact step (see :func:`_run_one`).

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
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

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
    return optimizer(schedule)


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
    :data:`CHECK_EVERY` without the loss (a per-run reduction that halves a vmapped step's speed);
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


def _check_int(name: str, value: Any, lo: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name}={value!r} is outside the valid range: an integer >= {lo}")
    return int(value)


def _check_optimizer(optimizer: Any) -> None:
    if isinstance(optimizer, optax.GradientTransformation):
        raise TypeError("optimizer must be a factory schedule -> GradientTransformation "
                        "(e.g. optax.adam or functools.partial(optax.sgd, momentum=0.9)), "
                        "not an optimizer instance: the engine builds it from each schedule")
    if optimizer is not None and not callable(optimizer):
        raise TypeError(f"optimizer={optimizer!r} must be None or a callable "
                        "schedule -> optax.GradientTransformation")


def _mesh_put(arrays: PyTree, n_runs: int) -> PyTree:
    """Shard the leading (runs) axis over all devices when it divides evenly."""
    devices = jax.devices()
    if len(devices) == 1 or n_runs % len(devices):
        return arrays
    mesh = jax.sharding.Mesh(np.array(devices), ("runs",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))
    return jax.device_put(arrays, sharding)


def _execute(problem, schedule, noise, start, keys, batch_index, *, batched=(),
             num_steps, record_every, record_params, optimizer, threshold, from_x0, stop=None):
    """Run R runs (leading axis of start/keys/batch_index) as one sharded program."""
    dyn, static = zip(*(_partition(p) for p in (problem, schedule, noise)))
    mask = tuple(name in batched for name in ("problem", "schedule", "noise"))
    n = int(np.shape(batch_index)[0])
    n_dev = len(jax.devices())
    pad = (-n) % n_dev if n >= n_dev else 0
    if pad:
        idx = np.concatenate([np.arange(n), np.zeros(pad, int)])
        start, keys, batch_index = jax.tree.map(lambda x: x[idx], (start, keys, batch_index))
    start, keys, batch_index = _mesh_put((start, keys, batch_index), n + pad)
    stop = None if stop is None else jnp.asarray(stop, jnp.int32)
    recs, final = _batched(list(dyn), start, keys, batch_index, stop, static=tuple(static),
                           batched_mask=mask, num_steps=num_steps, record_every=record_every,
                           record_params=record_params, optimizer=optimizer,
                           threshold=float(threshold), from_x0=from_x0)
    if pad:
        recs, final = jax.tree.map(lambda x: x[:n], (recs, final))
    return recs, final


def _trajectory(recs: dict, final: SimState) -> Trajectory:
    extras = {k: v for k, v in recs.items()
              if k not in CORE_METRICS + ("step", "lr", "params")}
    return Trajectory(steps=recs["step"], lr=recs["lr"], loss=recs["loss"],
                      river_loss=recs["river_loss"], hill_loss=recs["hill_loss"], extras=extras,
                      params=recs.get("params"), diverged_at=final.diverged_at,
                      final_state=final)


def _default_key(key: Array | None, noise: Any) -> Array:
    if key is None:
        if noise is not None:
            raise ValueError("key is required with a noise model: pass key=jax.random.key(seed)")
        return jax.random.key(0)
    return key


def simulate(problem: Any, x0: PyTree | SimState, schedule: Callable, *, num_steps: int,
             optimizer: Callable | None = None, noise: Any = None, key: Array | None = None,
             record_every: int = 1, record_params: bool = True,
             divergence_threshold: float = 1e10, on_divergence: str = "raise") -> Trajectory:
    """Optimize ``problem`` from ``x0`` for ``num_steps`` updates under ``schedule``.

    Args:
        problem: a landscape or bigram model (``loss``, ``sample_loss``, ``decompose``).
        x0: initial parameters, or a :class:`SimState` to resume (the step continues from it).
        schedule: ``step -> lr`` (a ``rivervalley.schedules`` object or any optax schedule).
        num_steps: number of updates (>= 1).
        optimizer: None for SGD (x <- x - eta_t g), or a factory ``schedule ->
            optax.GradientTransformation`` such as ``optax.adam``.
        noise: a ``rivervalley.noise`` model added to the gradient, or None.
        key: PRNG key (required with noise or a stochastic problem).
        record_every: record every k steps (memory O(num_steps / k)).
        record_params: also record the parameters.
        divergence_threshold: |loss| above this counts as divergence.
        on_divergence: ``"raise"`` (:class:`DivergenceError` naming the step) or ``"report"``
            (return; ``diverged_at`` holds the step, records after it are NaN).

    Returns:
        A :class:`Trajectory` with records at steps start, start + k, ..., start + num_steps.
    """
    num_steps = _check_int("num_steps", num_steps, 1)
    record_every = _check_int("record_every", record_every, 1)
    if on_divergence not in ("raise", "report"):
        raise ValueError(f"on_divergence={on_divergence!r} must be 'raise' or 'report'")
    _check_optimizer(optimizer)
    key = _default_key(key, noise)
    from_x0 = not isinstance(x0, SimState)
    start = jax.tree.map(lambda x: jnp.asarray(x)[None], x0)
    recs, final = _execute(problem, schedule, noise, start, key[None], np.zeros(1, np.int32),
                           num_steps=num_steps, record_every=record_every,
                           record_params=record_params, optimizer=optimizer,
                           threshold=divergence_threshold, from_x0=from_x0)
    recs, final = jax.tree.map(lambda x: x[0], (recs, final))
    traj = _trajectory(recs, final)
    if on_divergence == "raise":
        traj.check()
    return traj


def run_scan(problem: Any, x0: PyTree | SimState, schedule: Callable, key: Array, *,
             num_steps: int, noise: Any = None, optimizer: Callable | None = None,
             record_every: int = 1, record_params: bool = True,
             divergence_threshold: float = 1e10) -> Trajectory:
    """The traceable core of :func:`simulate`: one run as one ``lax.scan``, for use inside your own
    ``jit`` / ``vmap`` / ``grad`` (a differentiable loss of a whole run, a custom batching).

    No validation and no raising: divergence is reported in ``diverged_at`` only (-1: none). The
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
    recs, final = _run_one(problem, schedule, noise, state, key, num_steps=num_steps,
                           record_every=record_every, record_params=record_params,
                           optimizer=optimizer, threshold=divergence_threshold)
    return _trajectory(recs, final)


class SweepResult(NamedTuple):
    """A sweep's records: every array has leading axes (seeds, batch, records)."""

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


def _batch_size(obj: Any, name: str) -> int:
    sizes = {int(np.shape(l)[0]) for l in jax.tree.leaves(obj) if _is_numeric(l)
             and np.ndim(l) > 0}
    if len(sizes) != 1:
        raise ValueError(f"{name} is listed in batched but its array leaves do not share one "
                         f"leading batch axis (sizes {sorted(sizes)}); stack configurations with "
                         "rivervalley.stack")
    return sizes.pop()


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
          divergence_threshold: float = 1e10) -> SweepResult:
    """Seeds x a batch of configurations, as one compiled, sharded program.

    ``batched`` names the arguments (among ``"problem"``, ``"schedule"``, ``"noise"``, ``"x0"``)
    whose array leaves carry a leading batch axis of a common size B (build them with
    :func:`stack`, or by calling a schedule factory inside ``jax.vmap``). Run (s, b) uses seed s
    (key ``fold_in(key, seed)``) and batch entry b. Runs are laid out on a ``runs`` mesh axis over
    ``jax.devices()`` and padded to a multiple of the device count.

    Returns:
        A :class:`SweepResult`; its trajectory arrays have shape (S, B, records). Divergence is
        reported per run in ``diverged_at`` (and :meth:`SweepResult.report`), never raised.
    """
    num_steps = _check_int("num_steps", num_steps, 1)
    record_every = _check_int("record_every", record_every, 1)
    _check_optimizer(optimizer)
    unknown = set(batched) - {"problem", "schedule", "noise", "x0"}
    if unknown:
        raise ValueError(f"batched={batched!r} names unknown arguments {sorted(unknown)}; "
                         "valid: 'problem', 'schedule', 'noise', 'x0'")
    sizes = {name: _batch_size(obj, name) for name, obj in
             (("problem", problem), ("schedule", schedule), ("noise", noise), ("x0", x0))
             if name in batched}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"batched arguments disagree on the batch size: {sizes}")
    n_batch = next(iter(sizes.values()), 1)
    seed_arr = np.arange(seeds) if isinstance(seeds, (int, np.integer)) else np.asarray(seeds)
    if seed_arr.ndim != 1 or seed_arr.size == 0:
        raise ValueError(f"seeds={seeds!r} must be a positive count or a 1-D list of seeds")
    key = jax.random.key(0) if key is None else key
    n_seeds = seed_arr.size
    s_idx = np.repeat(np.arange(n_seeds), n_batch)
    b_idx = np.tile(np.arange(n_batch), n_seeds).astype(np.int32)
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(jnp.asarray(seed_arr[s_idx]))
    x0_runs = jax.tree.map(lambda x: jnp.asarray(x)[b_idx] if "x0" in batched else
                           jnp.broadcast_to(jnp.asarray(x), (b_idx.size,) + jnp.shape(x)), x0)
    recs, final = _execute(problem, schedule, noise, x0_runs, keys, b_idx, batched=batched,
                           num_steps=num_steps, record_every=record_every,
                           record_params=record_params, optimizer=optimizer,
                           threshold=divergence_threshold, from_x0=True)
    shape = (n_seeds, n_batch)
    recs, final = jax.tree.map(lambda x: x.reshape(shape + x.shape[1:]), (recs, final))
    return SweepResult(_trajectory(recs, final), seed_arr)


# -- plans --------------------------------------------------------------------------------------
class PlanResult(NamedTuple):
    """Checkpoint metrics of a plan (seed means, their standard errors) and every branch's records.

    Arrays of shape (K,) follow ``plan.checkpoints``; ``per_seed_loss`` is (K, seeds);
    ``trajectories[branch]`` has leading axes (seeds, records).
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


def run_plan(plan: Any, problem: Any, x0: PyTree, *, seeds: int | np.ndarray = 1,
             key: Array | None = None, noise: Any = None, optimizer: Callable | None = None,
             record_every: int | None = None, divergence_threshold: float = 1e10) -> PlanResult:
    """Execute a multi-checkpoint plan over several seeds.

    Each branch runs from its parent's state at its fork step (or from x0); every seed uses the
    same run key on every branch, so a branch sees exactly the noise its parent would have seen at
    those steps (common random numbers: plan comparisons are paired).

    Args:
        plan: a ``rivervalley.plans.Plan``.
        problem, x0, noise, optimizer, divergence_threshold: as in :func:`simulate`.
        seeds: number of seeds (or a list of seeds); checkpoint metrics are seed means.
        key: base PRNG key; seed s uses ``fold_in(key, s)``.
        record_every: record interval of the branch trajectories (default: about 400 records over
            the longest branch).

    Returns:
        A :class:`PlanResult`.
    """
    _check_optimizer(optimizer)
    key = jax.random.key(0) if key is None else key
    seed_arr = np.arange(seeds) if isinstance(seeds, (int, np.integer)) else np.asarray(seeds)
    n = seed_arr.size
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(jnp.asarray(seed_arr))
    if record_every is None:
        longest = max(b.end_step - b.start_step for b in plan.branches)
        record_every = max(1, longest // 400)
    record_every = _check_int("record_every", record_every, 1)
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
    saved: dict[tuple[str, int], SimState] = {}
    trajectories: dict[str, Trajectory] = {}
    names = [b.name for b in plan.branches]
    for branch, cuts in zip(plan.branches, segments):
        if branch.parent is None:
            start = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (n,) + jnp.shape(x)),
                                 x0)
            state = jax.vmap(lambda p, b=branch: _init_state(p, optimizer, b.schedule,
                                                             b.start_step))(start)
        else:
            if branch.parent not in names[:names.index(branch.name)]:
                raise ValueError(f"branch {branch.name!r}: parent {branch.parent!r} must be "
                                 "listed before it")
            state = saved[(branch.parent, branch.start_step)]
        saved[(branch.name, branch.start_step)] = state
        pieces = []
        for cut in cuts:
            recs, state = _execute(problem, branch.schedule, noise, state, keys, zeros,
                                   num_steps=seg_steps, record_every=record_every,
                                   record_params=False, optimizer=optimizer,
                                   threshold=divergence_threshold, from_x0=False, stop=cut)
            # masked steps repeat the stop record: keep each step once
            steps = np.asarray(recs["step"][0])
            keep = np.concatenate([[not pieces], steps[1:] > steps[:-1]])
            pieces.append(jax.tree.map(lambda x, keep=keep: x[:, keep], recs))
            saved[(branch.name, cut)] = state
        recs = jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=1), *pieces)
        trajectories[branch.name] = _trajectory(recs, state)

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
