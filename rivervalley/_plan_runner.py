"""The execution of a multi-checkpoint plan: :func:`run_plan` (public as
:func:`rivervalley.dynamics.run_plan`).

A plan (:mod:`rivervalley.plans`) is a tree of branches on one global step clock. Each branch runs
from its parent's saved state at its fork step (or from x0), so a WSD decay branch equals the
uninterrupted run of its schedule bit for bit. Every seed uses the same run key on every branch:
a branch sees exactly the noise its parent would have seen at those steps (common random numbers,
so plan comparisons are paired).

A branch runs as segments, cut at the steps where a child forks or a checkpoint is taken. Every
segment runs the same static number of steps (the longest segment, rounded up to whole record
intervals) and is masked past its end, so the whole plan compiles once instead of once per segment
length; the masked steps repeat the end record, which is dropped. With a progress bar a segment
runs as calls of whole record intervals (:func:`rivervalley._progress.interval_chunk`), masked the
same way: the same program, the same numbers.

Checkpoint metrics are the seed means of ``problem.decompose`` at the checkpoint's state (NaN for a
seed that diverged), with the standard error of the mean loss over seeds.
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
from rivervalley import plans as _plans
from rivervalley._scan import DIVERGENCE_THRESHOLD, init_state, to_trajectory
from rivervalley.protocols import Key, NoiseModel, Problem, PyTree
from rivervalley.results import PlanResult, SimState, Trajectory

__all__ = ["run_plan"]

#: The default record interval of a plan's trajectories gives about this many records over its
#: longest branch.
PLAN_RECORDS = 400


def run_plan(plan: _plans.Plan, problem: Problem, x0: PyTree, *,
             seeds: int | np.ndarray = 1, key: Key | None = None,
             noise: NoiseModel | None = None, optimizer: Callable | None = None,
             record_every: int | None = None, divergence_threshold: float = DIVERGENCE_THRESHOLD,
             progress: bool | None = None) -> PlanResult:
    """Execute a multi-checkpoint plan over several seeds.

    Each branch runs from its parent's state at its fork step (or from x0); every seed uses the
    same run key on every branch, so a branch sees exactly the noise its parent would have seen at
    those steps (common random numbers: plan comparisons are paired).

    Args:
        plan: a ``rivervalley.plans.Plan``.
        problem, x0, noise, optimizer, divergence_threshold: as in
            :func:`rivervalley.dynamics.simulate`.
        seeds: number of seeds n (seeds 0 .. n-1), or a list of distinct integer seeds in
            [0, 2**32 - 1]; checkpoint metrics are seed means.
        key: base PRNG key; seed s uses ``fold_in(key, s)``. Required when the run draws random
            numbers, as in :func:`rivervalley.dynamics.simulate`.
        record_every: record interval of the branch trajectories (default: about 400 records over
            the longest branch).
        progress: a tqdm bar over the steps of all branches (True / False / None: automatic),
            as in :func:`rivervalley.dynamics.simulate`.

    Returns:
        A :class:`~rivervalley.results.PlanResult`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import rivervalley as rv
        >>> res = rv.run_plan(rv.plans.wsd(0.06, [200, 400], decay=0.2),
        ...                   rv.landscapes.standard_toy(), jnp.zeros(2), seeds=2,
        ...                   noise=rv.noise.hill_only(1.0), key=jax.random.key(0))
        >>> print(res.names, res.compute.tolist(), bool(res.loss[1] < res.loss[0]))
        ('T=200', 'T=400') [200, 440] True
    """
    if not isinstance(plan, _plans.Plan):
        raise ValueError(f"plan={V.fmt(plan)} must be a rivervalley.plans.Plan (e.g. "
                         "rivervalley.plans.wsd(peak, budgets))")
    if record_every is None:
        record_every = max(1, max(b.steps for b in plan.branches) // PLAN_RECORDS)
    _, record_every, threshold = _checks.check_common(problem, plan.branches[0].schedule, noise,
                                                      optimizer, 1, record_every,
                                                      divergence_threshold, False)
    _progress.check_progress(progress)
    seed_arr = _checks.seed_array(seeds)
    key = _checks.resolve_key(key, problem, noise)
    _checks.check_x0_values(x0)
    for branch in plan.branches:
        _checks.check_schedule(branch.schedule, f"branch {branch.name!r}: schedule")
        _checks.check_run(problem, branch.schedule, noise, x0, key, optimizer=optimizer)
    n = seed_arr.size
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(jnp.asarray(seed_arr))
    segments = [_cuts(plan, branch) for branch in plan.branches]
    longest = max(c - a for b, cuts in zip(plan.branches, segments)
                  for a, c in zip([b.start_step] + cuts[:-1], cuts))
    seg_steps = -(-longest // record_every) * record_every
    bar = _progress.progress_bar(progress, plan.total_compute, "run_plan")
    # with a bar, a segment runs as calls of `chunk` steps (whole record intervals, masked at
    # their end like the segments themselves): the same program, compiled once, the same numbers
    chunk = (seg_steps if bar is None else
             min(seg_steps, _progress.interval_chunk(plan.total_compute, record_every)))
    try:
        saved, trajectories = _run_branches(plan, segments, problem, x0, keys, noise=noise,
                                            optimizer=optimizer, record_every=record_every,
                                            threshold=threshold, chunk=chunk, bar=bar)
    finally:
        if bar is not None:
            bar.close()
    return _checkpoint_metrics(plan, problem, saved, trajectories, n)


def _cuts(plan: _plans.Plan, branch: _plans.Branch) -> list[int]:
    """The end steps of ``branch``'s segments: where a child forks, where a checkpoint is taken,
    and its end."""
    cuts = sorted({b.start_step for b in plan.branches if b.parent == branch.name}
                  | {c.step for c in plan.checkpoints if c.branch == branch.name}
                  | {branch.end_step})
    return [c for c in cuts if branch.start_step < c <= branch.end_step]


#: The states a plan saves, by (branch, step): at every fork and checkpoint.
Saved = dict[tuple[str, int], SimState]


def _run_branches(plan: _plans.Plan, segments: list[list[int]], problem: Problem, x0: PyTree,
                  keys: Key, *, noise: NoiseModel | None, optimizer: Callable | None,
                  record_every: int, threshold: float, chunk: int,
                  bar: Any) -> tuple[Saved, dict[str, Trajectory]]:
    """Every branch in order: the states saved at each cut ``(branch, step)`` and each branch's
    trajectory (leading axes: seeds, records)."""
    n = int(np.shape(keys)[0])
    zeros = np.zeros(n, np.int32)
    saved: Saved = {}
    trajectories: dict[str, Trajectory] = {}
    for branch, cuts in zip(plan.branches, segments):
        if branch.parent is None:
            start = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x),
                                                            (n,) + jnp.shape(x)), x0)
            state = jax.vmap(lambda p, b=branch: init_state(p, optimizer, b.schedule,
                                                            b.start_step))(start)
        else:  # Plan guarantees the parent is listed before and spans the fork step
            state = saved[(branch.parent, branch.start_step)]
        saved[(branch.name, branch.start_step)] = state
        pieces = []
        at = branch.start_step
        for cut in cuts:
            ends = [cut] if bar is None else list(range(at + chunk, cut, chunk)) + [cut]
            for end in ends:
                recs, state = _batched.execute(problem, branch.schedule, noise, state, keys,
                                               zeros, num_steps=chunk,
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
        trajectories[branch.name] = to_trajectory(recs, state)
    return saved, trajectories


def _checkpoint_metrics(plan: _plans.Plan, problem: Problem, saved: Saved,
                        trajectories: dict[str, Trajectory], n: int) -> PlanResult:
    """The :class:`~rivervalley.results.PlanResult`: seed means (NaN where a seed diverged) and
    the standard error of the mean loss at every checkpoint."""
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
