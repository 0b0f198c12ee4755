"""The results of a run: the types :mod:`rivervalley.dynamics` returns, with their save / load.

- :class:`Trajectory`: the records of one run (or of many: leading run axes), the divergence
  step and the final :class:`SimState`.
- :class:`SweepResult`: a sweep's trajectory, leading axes (seeds, batch), and its seeds.
- :class:`PlanResult`: the checkpoint metrics of a plan (seed means and their standard errors) and
  every branch's trajectory.
- :class:`SimState`: the full state of a run (parameters, optimizer state, step, divergence
  step); pass it as ``x0`` to :func:`rivervalley.dynamics.simulate` to resume.
- :class:`DivergenceError`: what :func:`~rivervalley.dynamics.simulate` raises when a run diverges.

Conventions: ``diverged_at`` is the first update that produced a non-finite or exploding loss,
-1 where the run did not diverge; records after it are NaN. ``steps`` is stored once, shape
``(records,)``, whatever the leading run axes of the other fields: every run of one call records
at the same steps. Every result type saves to one ``.npz`` file and loads back bit for bit
(``save`` / ``load``) and exports its records as CSV columns (``to_csv``); the file format is
:mod:`rivervalley.results_io`.

Example:
    >>> import jax.numpy as jnp
    >>> import rivervalley as rv
    >>> # GD at eta * lambda = 2.4 > 2 from a hill offset of 1: 10 * 1.4^(2t) passes 1e10 at t=31
    >>> traj = rv.simulate(rv.landscapes.standard_toy(), jnp.array([0.0, 1.0]),
    ...                    rv.schedules.constant(0.12), num_steps=100, on_divergence="report")
    >>> print(int(traj.diverged_at), bool(traj.diverged), type(traj.final_state).__name__)
    31 True SimState
    >>> traj.check()
    Traceback (most recent call last):
    ...
    rivervalley.results.DivergenceError: the run diverged at step 31 (non-finite or exploding loss)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from rivervalley import results_io
from rivervalley.protocols import Array, PyTree

__all__ = ["DivergenceError", "SimState", "Trajectory", "SweepResult", "PlanResult"]


class DivergenceError(RuntimeError):
    """A run diverged; ``step`` is the first update that produced a non-finite or exploding loss."""

    def __init__(self, step: int, message: str | None = None):
        self.step = int(step)
        super().__init__(message or f"the run diverged at step {self.step} (non-finite or "
                         "exploding loss); lower the learning rate or pass "
                         "on_divergence='report'")


# -- save / load / to_csv, one implementation for every result type ------------------------------
def _save(self, path: Any, *, config: dict | None = None) -> None:
    """Write to ``path`` (``.npz``, atomically) with ``config`` (JSON) as metadata:
    :func:`rivervalley.results_io.save`."""
    results_io.save(self, path, config=config)


def _load(cls: type, path: Any) -> Any:
    """Read a result of this type written by ``save`` (arrays come back as NumPy, bit for bit);
    a file holding another type is a ``ValueError`` naming both."""
    result = results_io.load(path)
    if not isinstance(result, cls):
        raise ValueError(f"path={str(path)!r} holds a {type(result).__name__}, not a "
                         f"{cls.__name__}: read it with rivervalley.results_io.load or "
                         f"{type(result).__name__}.load")
    return result


def _to_csv(self, path: Any) -> int:
    """Write the records as CSV columns, one row per record (per run, per branch); returns the
    number of rows: :func:`rivervalley.results_io.to_csv`."""
    return results_io.to_csv(self, path)


class SimState(NamedTuple):
    """The full state of a run: resume a run by passing it as ``x0`` to
    :func:`rivervalley.dynamics.simulate`."""

    params: PyTree
    opt_state: PyTree
    step: Array
    diverged_at: Array


class Trajectory(NamedTuple):
    """Records of one run (leading axis: records) or of many (leading axes: runs, records).

    Records are taken at steps start, start + k, start + 2k, ..., and at the last step.

    ``steps`` is stored once, shape ``(records,)``, whatever the leading run axes of the other
    fields (a sweep's ``(seeds, batch, records)``, a plan branch's ``(seeds, records)``): every run
    of one call records at the same steps. (Under your own ``jax.vmap`` of
    :func:`~rivervalley.dynamics.run_scan`, vmap stacks every field, ``steps`` included.) ``lr``
    follows the runs like ``loss`` (a batch of schedules has one learning rate per run).

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
        """The parameters after the last step (frozen at the divergence step if it diverged)."""
        return self.final_state.params

    @property
    def diverged(self) -> Array:
        """Whether each run diverged (``diverged_at >= 0``), as NumPy booleans."""
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

    save = _save
    load = classmethod(_load)
    to_csv = _to_csv


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

    save = _save
    load = classmethod(_load)
    to_csv = _to_csv


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

    save = _save
    load = classmethod(_load)
    to_csv = _to_csv
