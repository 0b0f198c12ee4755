"""Optimize any problem under any schedule: one ``lax.scan`` per run, ``jit(vmap)`` for sweeps.

- :func:`simulate`: one run -> :class:`~rivervalley.results.Trajectory` (steps, lr, loss, river
  loss, hill loss, params).
- :func:`sweep`: seeds x a batch of schedules / landscapes / noise models / starting points, as one
  compiled program, sharded over every device JAX sees (``jax.devices()``). Compiled once per
  shape: calling it again with new parameter values of the same shapes does not recompile.
- :func:`run_plan`: executes a multi-checkpoint plan (``rivervalley.plans``): WSD branches fork from
  the saved state of the main run, so a branch equals an uninterrupted run bit for bit.
- :func:`run_scan`: the traceable core of :func:`simulate`, for your own ``jit`` / ``vmap`` /
  ``grad``; :func:`stack` batches configurations for :func:`sweep`.

The results are the types of :mod:`rivervalley.results`.

**The update.** x_{t+1} = x_t - eta_t g_t with g_t = grad sample_loss(x_t; batch key) + xi_t
(plain SGD; GD when there is no noise), or any optax optimizer given as a factory ``schedule ->
optax GradientTransformation`` (``optimizer=optax.adam``, ``optimizer=functools.partial(optax.sgd,
momentum=0.9)``). The batch key of step t is ``fold_in(key, t)``; the noise of step t is a pure
function of (key, t): a run of N steps is an exact prefix of a run of 2N steps, and a run resumed
from its :class:`~rivervalley.results.SimState` equals the uninterrupted run.

**Divergence** (a non-finite loss or parameter, or |loss| above ``divergence_threshold``) freezes
the run, sets the records after it to NaN and reports the step in ``diverged_at``; :func:`simulate`
raises :class:`~rivervalley.results.DivergenceError` naming the step unless
``on_divergence="report"``. The check costs one loss evaluation per block of at most
:data:`~rivervalley._scan.CHECK_EVERY` (64) steps, not one per step: the steps of a block run
without the loss, its end is checked once, and a block that ends bad is replayed step by step with
the same step function to find the exact step (:mod:`rivervalley._scan`). Under :func:`sweep` the
replay is one branch for the whole batch (a collective over the runs), taken when any run ended
its block bad; only those runs take the replay's result, the others keep their fast-path bits, so
a run's numbers never depend on another run.

**Sharding.** A sweep's or plan's runs are one ``vmap`` laid out on a ``runs`` mesh axis over
``jax.devices()``, padded to a multiple of the device count: the same code runs on many
CPU/GPU/TPU devices and gives the single-device numbers bit for bit (:mod:`rivervalley._batched`).
With a progress bar the scan runs as host-side chunks of the same compiled program, the state
carried between them: the same numbers again (:mod:`rivervalley._progress`).

**Checks.** Every argument is checked once per call, on the host, before anything is compiled
(the shape checks trace the pieces abstractly and are cached like a ``jit``, ~1 ms on a repeated
call): ``x0`` against the problem's ``param_shape`` (or what its ``init_params`` builds), stacked
arguments against ``batched``, seeds, keys, the optimizer factory's result, the threshold. A bad
argument is a ``ValueError`` (``TypeError`` for the optimizer) that names it
(:mod:`rivervalley._engine_checks`). ``key`` is required exactly when the run draws random
numbers: a noise model, or a problem whose ``sample_loss`` uses its key (``problem.stochastic``,
else ``problem.batch_size is not None``, else assumed).

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

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley import _batched, _progress
from rivervalley import _engine_checks as _checks
from rivervalley import _validate as V
from rivervalley import problems as _problems
from rivervalley._batched import TRACE_COUNT  # noqa: F401 - the tests count compilations here
from rivervalley._plan_runner import run_plan
from rivervalley._scan import DIVERGENCE_THRESHOLD, init_state, run_one, to_trajectory
from rivervalley.protocols import Key, NoiseModel, Problem, PyTree, Schedule
from rivervalley.results import DivergenceError, SimState, SweepResult, Trajectory

__all__ = ["simulate", "run_scan", "sweep", "run_plan", "stack", "DIVERGENCE_THRESHOLD"]

# run_plan is implemented beside the engine (_plan_runner) and documented here, its public home
run_plan.__module__ = __name__

#: The ``on_divergence`` values of :func:`simulate`.
ON_DIVERGENCE = ("raise", "report")


def simulate(problem: Problem, x0: PyTree | SimState, schedule: Schedule, *, num_steps: int,
             optimizer: Callable | None = None, noise: NoiseModel | None = None,
             key: Key | None = None, record_every: int = 1, record_params: bool = True,
             divergence_threshold: float = DIVERGENCE_THRESHOLD, on_divergence: str = "raise",
             progress: bool | None = None) -> Trajectory:
    """Optimize ``problem`` from ``x0`` for ``num_steps`` updates under ``schedule``.

    Args:
        problem: a landscape or bigram model (``loss``, ``sample_loss``, ``decompose``).
        x0: initial parameters, or a :class:`~rivervalley.results.SimState` to resume (the step
            continues from it): floating point, finite, with the problem's parameter shapes
            (``param_shape``).
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
        on_divergence: ``"raise"`` (:class:`~rivervalley.results.DivergenceError` naming the
            step) or ``"report"`` (return; ``diverged_at`` holds the step, records after it are
            NaN).
        progress: a tqdm progress bar over the steps: True, False, or None (automatic: on
            when stderr is a terminal, shown once the run has taken 2 s). With a bar the scan
            runs as chunks of whole record intervals on the host (one compiled program, the
            state carried between calls: the same numbers bit for bit); never inside traced
            code.

    Returns:
        A :class:`~rivervalley.results.Trajectory` with records at steps start, start + k, ...,
        start + num_steps.
    """
    num_steps, record_every, threshold = _checks.check_common(problem, schedule, noise, optimizer,
                                                              num_steps, record_every,
                                                              divergence_threshold, record_params)
    V.check_choice("on_divergence", on_divergence, ON_DIVERGENCE)
    _progress.check_progress(progress)
    key = _checks.resolve_key(key, problem, noise)
    from_x0 = not isinstance(x0, SimState)
    if from_x0:
        _checks.check_x0_values(x0)
        _checks.check_run(problem, schedule, noise, x0, key, optimizer=optimizer)
    else:
        _checks.check_state(x0)
        _checks.check_run(problem, schedule, noise, x0.params, key, optimizer=optimizer,
                          opt_state=x0.opt_state, x0_name="x0.params")
    start = jax.tree.map(lambda x: jnp.asarray(x)[None], x0)
    bar = _progress.progress_bar(progress, num_steps, "simulate")
    try:
        recs, final = _batched.execute(problem, schedule, noise, start, key[None],
                                       np.zeros(1, np.int32), num_steps=num_steps,
                                       record_every=record_every, record_params=record_params,
                                       optimizer=optimizer, threshold=threshold, from_x0=from_x0,
                                       bar=bar, first_step=0 if from_x0 else int(x0.step))
    finally:
        if bar is not None:
            bar.close()
    recs, final = jax.tree.map(lambda x: x[0], (recs, final))
    traj = to_trajectory(recs, final)
    if on_divergence == "raise" and int(traj.diverged_at) >= 0:
        step = int(traj.diverged_at)
        raise DivergenceError(step, _divergence_message(traj, threshold) or (
            f"the run diverged at step {step} (a non-finite loss or parameter, or |loss| above "
            f"divergence_threshold={threshold:g}); lower the learning rate or pass "
            "on_divergence='report'"))
    return traj


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


def run_scan(problem: Problem, x0: PyTree | SimState, schedule: Schedule, *, key: Key,
             num_steps: int, noise: NoiseModel | None = None,
             optimizer: Callable | None = None, record_every: int = 1,
             record_params: bool = True,
             divergence_threshold: float = DIVERGENCE_THRESHOLD) -> Trajectory:
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
        ...     valley, jnp.zeros(2), rv.schedules.constant(peak), key=jax.random.key(0),
        ...     num_steps=100, record_every=100).loss[-1])
        >>> print(bool(final(0.06) < final(0.01)))
        True
    """
    state = x0 if isinstance(x0, SimState) else init_state(x0, optimizer, schedule)
    _problems.check_problem(problem, state.params, key=key)
    recs, final = run_one(problem, schedule, noise, state, key, num_steps=num_steps,
                          record_every=record_every, record_params=record_params,
                          optimizer=optimizer, threshold=divergence_threshold)
    return to_trajectory(recs, final)


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


def sweep(problem: Problem, x0: PyTree, schedule: Schedule, *, num_steps: int,
          seeds: int | np.ndarray = 1, key: Key | None = None, noise: NoiseModel | None = None,
          optimizer: Callable | None = None, batched: tuple[str, ...] = (),
          record_every: int = 1, record_params: bool = False,
          divergence_threshold: float = DIVERGENCE_THRESHOLD,
          progress: bool | None = None) -> SweepResult:
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
        A :class:`~rivervalley.results.SweepResult`; its trajectory arrays have shape
        (S, B, records). Divergence is reported per run in ``diverged_at`` (and
        :meth:`~rivervalley.results.SweepResult.report`), never raised.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import rivervalley as rv
        >>> peaks = rv.stack([rv.schedules.constant(p) for p in (0.05, 0.12)])
        >>> res = rv.sweep(rv.landscapes.standard_toy(), jnp.array([0.0, 1.0]), peaks,
        ...                num_steps=200, seeds=2, batched=("schedule",), record_every=100)
        >>> print(res.trajectory.loss.shape, res.report())  # 10 * 1.4^(2t) passes 1e10 at t=31
        (2, 2, 3) config 1: 2/2 seeds diverged, first at step 31
    """
    num_steps, record_every, threshold = _checks.check_common(problem, schedule, noise, optimizer,
                                                              num_steps, record_every,
                                                              divergence_threshold, record_params)
    batched = _checks.check_batched(batched)
    _progress.check_progress(progress)
    sizes = {name: _checks.batch_axis_size(obj, name) for name, obj in
             zip(_checks.BATCHABLE, (problem, schedule, noise, x0)) if name in batched}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"batched arguments disagree on the batch size: {sizes}")
    n_batch = next(iter(sizes.values()), 1)
    seed_arr = _checks.seed_array(seeds)
    key = _checks.resolve_key(key, problem, noise)
    _checks.check_x0_values(x0)
    _checks.check_run(problem, schedule, noise, x0, key, batched=batched, optimizer=optimizer)
    n_seeds = seed_arr.size
    s_idx = np.repeat(np.arange(n_seeds), n_batch)
    b_idx = np.tile(np.arange(n_batch), n_seeds).astype(np.int32)
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(jnp.asarray(seed_arr[s_idx]))
    x0_runs = jax.tree.map(lambda x: jnp.asarray(x)[b_idx] if "x0" in batched else
                           jnp.broadcast_to(jnp.asarray(x), (b_idx.size,) + jnp.shape(x)), x0)
    bar = _progress.progress_bar(progress, num_steps, "sweep")
    try:
        recs, final = _batched.execute(problem, schedule, noise, x0_runs, keys, b_idx,
                                       batched=batched, num_steps=num_steps,
                                       record_every=record_every, record_params=record_params,
                                       optimizer=optimizer, threshold=threshold, from_x0=True,
                                       bar=bar)
    finally:
        if bar is not None:
            bar.close()
    shape = (n_seeds, n_batch)
    recs, final = jax.tree.map(lambda x: x.reshape(shape + x.shape[1:]), (recs, final))
    return SweepResult(to_trajectory(recs, final), seed_arr.astype(np.int64))
