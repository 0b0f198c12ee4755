"""River/hill split of any problem at chosen checkpoints of a run, by two independent estimates.

A problem made with :func:`rivervalley.problems.from_loss` does not know its valley: its
``decompose`` reports ``river_loss = hill_loss = NaN``. :func:`diagnose` runs the problem under a
schedule (seeds in parallel, the engine's own step: ``rivervalley.dynamics.run_scan``) and, at
each checkpoint c, estimates the split of its loss L(x_c) two ways:

- **decay probe** (the paper's operational definition of the river): fork a short decay branch
  from the full state at c (parameters and optimizer state), with the LR falling from the run's
  LR eta_c to ``min_ratio * eta_c`` over D steps in the given shape (a WSD decay: the branch's
  schedule is ``wsd(eta_c, c + D, decay=D)``). The loss it reaches estimates the river loss,
  ``R_probe(D) = L(x_{c+D})``, and the drop estimates the hill loss, ``H_probe(D) = L(x_c) -
  L(x_{c+D})``. Several D show the convergence: too short leaves hill loss behind (slow hill
  directions relax in ~1/(eta lambda) steps), too long adds river progress to the "drop".
- **curvature**: with x_bar the mean of the iterates over the last ``average_steps`` steps before
  c (every ``average_every`` steps, x_c included) and (lambda_i, v_i) the top-k eigenpairs of the
  Hessian of ``problem.loss`` at x_bar (Lanczos on Hessian-vector products,
  :mod:`rivervalley.hessian`), the hill loss is the quadratic form of the displacement in that
  subspace,

      H_curv = 1/2 sum_{i<=k} max(lambda_i, 0) * (v_i . (x_c - x_bar))^2,

  and R_curv = L(x_c) - H_curv. The average stands in for the river point: across a sharp valley
  the iterate bounces around the floor, so its mean sits on the floor (to O(1/window)).

Where the problem knows its split (the synthetic valleys), the exact ``river_loss`` /
``hill_loss`` of ``decompose`` at c are reported alongside (``exact_*``, NaN otherwise).

Seeds: run s uses key ``fold_in(key, s)`` as in :func:`rivervalley.sweep`, and a probe branch
keeps its run's key (it sees the noise its main run would have seen: the comparisons are paired).
Seeds run one after another inside one compiled ``lax.map`` (no Python loop over seeds; unlike a
``vmap`` it keeps the engine's divergence check a real branch).

Example:
    >>> import jax
    >>> import rivervalley as rv
    >>> from rivervalley import diagnose as dg
    >>> toy = rv.landscapes.standard_toy()
    >>> d = dg.diagnose(toy, toy.init_params(), rv.schedules.constant(0.06), checkpoints=[400],
    ...                 probe_lengths=(100,), noise=rv.noise.hill_only(1.0), seeds=64, k=1,
    ...                 average_steps=100, key=jax.random.key(0), progress=False)
    >>> m = d.means()
    >>> print(round(float(m["exact_hill"][0]), 2), round(float(m["hill_probe"][0, 0]), 2),
    ...       round(float(m["hill_curvature"][0]), 2))  # theory: 0.06 / (2 (2 - 1.2)) = 0.0375
    0.04 0.04 0.04
"""

from __future__ import annotations

import functools
import numbers
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from rivervalley import hessian, problems
from rivervalley import schedules as _s
from rivervalley._partition import combine, partition
from rivervalley._scan import init_state
from rivervalley._validate import check_int, check_key, check_real, check_seeds, fmt
from rivervalley.dynamics import run_scan
from rivervalley.protocols import Array, PyTree

__all__ = ["Diagnosis", "diagnose"]


@dataclass(frozen=True)
class Diagnosis:
    """The split at each checkpoint, per seed (numpy arrays; S seeds, C checkpoints, P probes).

    Attributes:
        checkpoints: (C,) steps c.
        lr: (C,) the run's learning rate eta_c at c (the probes start from it).
        probe_lengths: (P,) decay-probe lengths D.
        loss: (S, C) ``problem.loss`` at x_c.
        exact_river, exact_hill: (S, C) ``decompose``'s river / hill loss at x_c (NaN: unknown).
        probe_loss: (S, C, P) the loss at the end of each probe: the river estimate.
        eigenvalues: (S, C, k) top-k Hessian eigenvalues at the running average.
        hill_curvature: (S, C) the curvature estimate of the hill loss.
        seeds: (S,) the seeds.
        probe_shape, min_ratio, k, average_steps: the settings.
    """

    checkpoints: np.ndarray
    lr: np.ndarray
    probe_lengths: np.ndarray
    loss: np.ndarray
    exact_river: np.ndarray
    exact_hill: np.ndarray
    probe_loss: np.ndarray
    eigenvalues: np.ndarray
    hill_curvature: np.ndarray
    seeds: np.ndarray
    probe_shape: str
    min_ratio: float
    k: int
    average_steps: int

    @property
    def hill_probe(self) -> np.ndarray:
        """(S, C, P) L(x_c) - L(x_{c+D}): the decay-probe estimate of the hill loss."""
        return self.loss[..., None] - self.probe_loss

    @property
    def river_probe(self) -> np.ndarray:
        """(S, C, P) the decay-probe estimate of the river loss (= ``probe_loss``)."""
        return self.probe_loss

    @property
    def river_curvature(self) -> np.ndarray:
        """(S, C) L(x_c) - H_curv: the curvature estimate of the river loss."""
        return self.loss - self.hill_curvature

    def _fields(self) -> dict[str, np.ndarray]:
        return {"loss": self.loss, "exact_river": self.exact_river,
                "exact_hill": self.exact_hill, "river_probe": self.river_probe,
                "hill_probe": self.hill_probe, "river_curvature": self.river_curvature,
                "hill_curvature": self.hill_curvature, "eigenvalues": self.eigenvalues}

    def means(self) -> dict[str, np.ndarray]:
        """Seed means of every quantity (the seed axis removed)."""
        return {k: v.mean(axis=0) for k, v in self._fields().items()}

    def sems(self) -> dict[str, np.ndarray]:
        """Standard errors of the seed means (zeros for one seed)."""
        n = self.loss.shape[0]
        return {k: (v.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(v.shape[1:]))
                for k, v in self._fields().items()}

    def table(self) -> str:
        """One row per checkpoint: loss, exact hill (if known), the curvature estimate and the
        probe estimates (seed mean +- standard error)."""
        m, e = self.means(), self.sems()
        pm = lambda a, b: (f"{'unknown':>17s}" if np.isnan(a) else  # noqa: E731
                           f"{a:9.5f}+-{b:.5f}")
        head = (f"{'step':>7s} {'lr':>9s} {'loss':>17s} {'exact hill':>17s} "
                f"{'hill (curvature)':>17s} " + " ".join(f"{f'hill (probe {d})':>17s}"
                                                           for d in self.probe_lengths))
        rows = [head]
        for i, c in enumerate(self.checkpoints):
            rows.append(f"{int(c):7d} {self.lr[i]:9.3g} {pm(m['loss'][i], e['loss'][i])} "
                        f"{pm(m['exact_hill'][i], e['exact_hill'][i])} "
                        f"{pm(m['hill_curvature'][i], e['hill_curvature'][i])} "
                        + " ".join(pm(m['hill_probe'][i, j], e['hill_probe'][i, j])
                                   for j in range(len(self.probe_lengths))))
        return "\n".join(rows)


# -- the problem, schedule and noise enter jit split into traced and static parts (_partition) --
@functools.partial(jax.jit, static_argnames=("static", "num_steps", "record_every",
                                             "record_params", "optimizer"))
def _segment(dyn, states, keys, *, static, num_steps, record_every, record_params, optimizer):
    """``num_steps`` engine steps of every seed (``lax.map`` over seeds) from ``states``."""
    problem, schedule, noise = (combine(d, s) for d, s in zip(dyn, static))

    def one(args):
        state, key = args
        tr = run_scan(problem, state, schedule, key=key, num_steps=num_steps, noise=noise,
                      optimizer=optimizer, record_every=record_every,
                      record_params=record_params)
        return tr, tr.final_state

    return jax.lax.map(one, (states, keys))


@functools.partial(jax.jit, static_argnames=("static", "k", "num_iters"))
def _curvature(dyn, x_c, x_bar, key, *, static, k, num_iters):
    """Top-k eigenpairs at x_bar and the quadratic form of x_c - x_bar, every seed."""
    problem = combine(dyn, static)

    def one(args):
        xc, xb = args
        w, vecs = hessian.lanczos_top_k(lambda v: hessian.hvp(problem.loss, xb, v), xb, k,
                                        num_iters=num_iters, key=key)
        d = ravel_pytree(xc)[0] - ravel_pytree(xb)[0]
        proj = jax.vmap(lambda v: ravel_pytree(v)[0] @ d)(vecs)
        return w, 0.5 * jnp.sum(jnp.maximum(w, 0.0) * proj ** 2)

    return jax.lax.map(one, (x_c, x_bar))


def _ints(name: str, values: Any, lo: int) -> list[int]:
    items = [values] if isinstance(values, (numbers.Integral, np.integer)) else list(values)
    if not items:
        raise ValueError(f"{name}=[] must hold at least one step count")
    for v in items:
        check_int(f"{name} entry", v, lo=lo)
    out = [int(v) for v in items]
    if any(b <= a for a, b in zip(out, out[1:])):
        raise ValueError(f"{name}={out} must be strictly increasing")
    return out


def diagnose(problem: Any, x0: PyTree, schedule: Callable, *, checkpoints: Sequence[int],
             key: Array, seeds: int | Sequence[int] = 1, optimizer: Callable | None = None,
             noise: Any = None, probe_lengths: Sequence[int] = (25, 50, 100, 200),
             probe_shape: str = "linear", min_ratio: float = 0.0, k: int | None = None,
             num_iters: int | None = None, average_steps: int = 100, average_every: int = 1,
             progress: bool | None = None) -> Diagnosis:
    """River/hill split of ``problem``'s run under ``schedule`` at ``checkpoints``.

    Args:
        problem: any problem (:mod:`rivervalley.problems`; checked with ``check_problem``).
        x0: initial parameters.
        schedule: the run's ``step -> lr``.
        checkpoints: increasing steps c with ``c - average_steps >=`` the previous checkpoint
            (and >= 0).
        key: base PRNG key; seed s runs with ``fold_in(key, s)``.
        seeds: a count or a list of seeds.
        optimizer, noise: as in :func:`rivervalley.simulate`.
        probe_lengths: decay-probe lengths D (increasing, >= 1).
        probe_shape: the probe's decay shape (``rivervalley.schedules.DECAY_SHAPES``).
        min_ratio: the probe's final LR as a fraction of eta_c.
        k: Hessian eigenpairs for the curvature estimate, in [1, number of parameters]
            (default: min(4, number of parameters)).
        num_iters: Lanczos iterations (default: ``rivervalley.hessian``'s).
        average_steps: length of the running average before each checkpoint (>= 1).
        average_every: average every this many steps (divides ``average_steps``).
        progress: a tqdm bar over checkpoints (default: when stderr is a terminal).

    Returns:
        A :class:`Diagnosis`.
    """
    check_key("key", key)
    cks = _ints("checkpoints", checkpoints, 1)
    lengths = _ints("probe_lengths", probe_lengths, 1)
    average_steps = check_int("average_steps", average_steps, lo=1)
    average_every = check_int("average_every", average_every, lo=1, hi=average_steps)
    if average_steps % average_every:
        raise ValueError(f"average_every={average_every} must divide "
                         f"average_steps={average_steps}")
    prev = 0
    for c in cks:
        if c - average_steps < prev:
            raise ValueError(f"checkpoints={cks}: checkpoint {c} minus average_steps="
                             f"{average_steps} falls before {'the previous checkpoint' if prev else 'step 0'}"
                             f" ({prev}); space the checkpoints at least average_steps apart")
        prev = c
    check_real("min_ratio", min_ratio, lo=0.0, hi=1.0)
    n_params = int(ravel_pytree(x0)[0].size)
    k = min(4, n_params) if k is None else check_int("k", k, lo=1, hi=n_params)
    if not callable(schedule):
        raise TypeError(f"schedule={fmt(schedule)} must be a callable step -> learning rate")
    seed_arr = np.arange(check_int("seeds", seeds, lo=1)) if isinstance(
        seeds, (numbers.Integral, np.integer)) else check_seeds("seeds", seeds)
    problems.check_problem(problem, x0)
    probe0 = _s.wsd(1.0, cks[0] + lengths[0], decay=lengths[0], decay_shape=probe_shape,
                    min_ratio=min_ratio)  # validates the shape / min_ratio pair once
    del probe0

    n = seed_arr.size
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(jnp.asarray(seed_arr))
    state = jax.vmap(lambda p: init_state(p, optimizer, schedule))(
        jax.tree.map(lambda a: jnp.broadcast_to(jnp.asarray(a), (n,) + jnp.shape(a)), x0))
    pdyn, pstat = partition(problem)
    ndyn, nstat = partition(noise)

    def run(st, sched, num_steps, record_every, record_params):
        if num_steps == average_steps:
            # a segment as long as the averaging window reuses its compiled program (the
            # engine's step compiles in seconds; extra records cost little)
            record_every, record_params = average_every, True
        sdyn, sstat = partition(sched)
        return _segment([pdyn, sdyn, ndyn], st, keys, static=(pstat, sstat, nstat),
                        num_steps=num_steps, record_every=record_every,
                        record_params=record_params, optimizer=optimizer)

    if progress is None:
        progress = sys.stderr.isatty()
    it = cks
    if progress:
        from tqdm import tqdm

        it = tqdm(cks, desc="diagnose", unit="checkpoint")
    out = {name: [] for name in ("lr", "loss", "river", "hill", "probe", "eig", "hcurv")}
    step = 0
    lanczos_key = jax.random.fold_in(key, 2**31 - 1)
    for c in it:
        lead = c - average_steps - step
        if lead > 0:
            _, state = run(state, schedule, lead, lead, False)
        tr, state = run(state, schedule, average_steps, average_every, True)
        step = c
        x_c = jax.tree.map(lambda a: a[:, -1], tr.params)
        x_bar = jax.tree.map(lambda a: jnp.mean(a[:, 1:], axis=1), tr.params)
        eta_c = float(schedule(c))
        out["lr"].append(eta_c)
        out["loss"].append(np.asarray(tr.loss[:, -1]))
        out["river"].append(np.asarray(tr.river_loss[:, -1]))
        out["hill"].append(np.asarray(tr.hill_loss[:, -1]))
        probe = []
        for d in lengths:
            if eta_c == 0.0:  # a decay from LR 0 moves nothing: the probe ends where it starts
                probe.append(out["loss"][-1])
                continue
            sched = _s.wsd(eta_c, c + d, decay=d, decay_shape=probe_shape, min_ratio=min_ratio)
            ptr, _ = run(state, sched, d, d, False)
            probe.append(np.asarray(ptr.loss[:, -1]))
        out["probe"].append(np.stack(probe, axis=-1))
        w, h = _curvature(pdyn, x_c, x_bar, lanczos_key, static=pstat, k=k, num_iters=num_iters)
        out["eig"].append(np.asarray(w))
        out["hcurv"].append(np.asarray(h))
    col = lambda name: np.stack(out[name], axis=1)  # noqa: E731  (seeds, checkpoints, ...)
    return Diagnosis(checkpoints=np.asarray(cks), lr=np.asarray(out["lr"]),
                     probe_lengths=np.asarray(lengths), loss=col("loss"),
                     exact_river=col("river"), exact_hill=col("hill"), probe_loss=col("probe"),
                     eigenvalues=col("eig"), hill_curvature=col("hcurv"), seeds=seed_arr,
                     probe_shape=str(probe_shape), min_ratio=float(min_ratio), k=k,
                     average_steps=average_steps)
