"""Multi-checkpoint plans: which runs / branches produce checkpoints for budgets T_1 < ... < T_K.

A :class:`Plan` is plain data (THEORY.md §6): its branches (each a schedule on the GLOBAL step
clock, a start and end step, and the parent whose state it starts from), its checkpoints, and the
compute each checkpoint costs, discarded branches included. Compute is cumulative in the order the
protocol produces its checkpoints: checkpoint k's ``compute`` counts every step spent by the time it
exists.

- ``cosine_per_budget``: K separate cosine runs to T_k; checkpoint k costs ``sum_{j<=k} T_j``.
- ``wsd``: one constant-LR main run; branch k forks at ``T_k - D_k`` (``D_k = floor(phi T_k)``) and
  decays to T_k; the last decay is the main run's own. Checkpoint k costs
  ``T_k + sum_{j<k} D_j``; the total is ``T_K + sum_{j<K} D_j``.
- ``wsd_s`` / ``cyclic_cosine``: one run of cycles; checkpoint k (at the k-th cycle end ``e_k``)
  costs ``e_k``. :func:`wsd_s_checkpoints_at_wsd_compute` places WSD-S checkpoints at WSD's compute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rivervalley import schedules as _s
from rivervalley._validate import check_int, fmt

__all__ = [
    "Branch",
    "Checkpoint",
    "Plan",
    "cosine_per_budget",
    "wsd",
    "wsd_s",
    "cyclic_cosine",
    "wsd_s_checkpoints_at_wsd_compute",
]


@dataclass(frozen=True)
class Branch:
    """One run segment: updates ``start_step .. end_step - 1`` with ``schedule`` at the global step.

    ``parent`` None: starts from x0 (then ``start_step`` is 0); else starts from the parent's state
    after ``start_step`` updates.
    """
    name: str
    schedule: _s.Schedule
    start_step: int
    end_step: int
    parent: str | None

    def __post_init__(self):
        _check_name("Branch.name", self.name)
        if not callable(self.schedule):
            raise ValueError(f"Branch {self.name!r}: schedule={fmt(self.schedule)} is not a "
                             "schedule (a callable step -> learning rate)")
        _set_int(self, "start_step", lo=0)
        _set_int(self, "end_step", lo=self.start_step + 1)
        if self.parent is not None:
            _check_name(f"Branch {self.name!r}: parent", self.parent)

    @property
    def steps(self) -> int:
        """Updates this branch performs (its compute)."""
        return self.end_step - self.start_step


@dataclass(frozen=True)
class Checkpoint:
    """The state of ``branch`` after ``step`` updates, answering budget ``budget``."""
    name: str
    branch: str
    step: int
    budget: int
    compute: int

    def __post_init__(self):
        _check_name("Checkpoint.name", self.name)
        _check_name(f"Checkpoint {self.name!r}: branch", self.branch)
        _set_int(self, "step", lo=1)
        _set_int(self, "budget", lo=1)
        _set_int(self, "compute", lo=1)


@dataclass(frozen=True)
class Plan:
    """A multi-checkpoint protocol: branches (parents first) and checkpoints (budget order)."""
    kind: str
    branches: tuple[Branch, ...]
    checkpoints: tuple[Checkpoint, ...]

    def __post_init__(self):
        """The structure :func:`rivervalley.run_plan` relies on: unique branch names, parents
        listed before their children and spanning the fork step, checkpoints inside their
        branch."""
        _check_name("Plan.kind", self.kind)
        for field in ("branches", "checkpoints"):
            items = getattr(self, field)
            if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
                raise ValueError(f"Plan.{field}={fmt(items)} must be a sequence")
            object.__setattr__(self, field, tuple(items))
        if not self.branches:
            raise ValueError("Plan.branches=() must hold at least one branch")
        if not self.checkpoints:
            raise ValueError("Plan.checkpoints=() must hold at least one checkpoint")
        seen: dict[str, Branch] = {}
        for i, b in enumerate(self.branches):
            if not isinstance(b, Branch):
                raise ValueError(f"Plan.branches[{i}]={fmt(b)} is not a Branch")
            if b.name in seen:
                raise ValueError(f"Plan.branches: the name {b.name!r} is used twice (branch "
                                 f"names must be unique: each names one trajectory)")
            if b.parent is not None:
                if b.parent not in seen:
                    where = ("is not in this plan" if all(o.name != b.parent for o in self.branches)
                             else "must be listed before it")
                    raise ValueError(f"Plan.branches: branch {b.name!r}: parent {b.parent!r} "
                                     f"{where}")
                p = seen[b.parent]
                if not p.start_step <= b.start_step <= p.end_step:
                    raise ValueError(f"Plan.branches: branch {b.name!r} forks at start_step="
                                     f"{b.start_step}, outside its parent {p.name!r} "
                                     f"[{p.start_step}, {p.end_step}]")
            seen[b.name] = b
        for i, c in enumerate(self.checkpoints):
            if not isinstance(c, Checkpoint):
                raise ValueError(f"Plan.checkpoints[{i}]={fmt(c)} is not a Checkpoint")
            if c.branch not in seen:
                raise ValueError(f"Plan.checkpoints: checkpoint {c.name!r}: branch={c.branch!r} "
                                 f"is not in this plan; branches: {', '.join(seen)}")
            b = seen[c.branch]
            if not b.start_step < c.step <= b.end_step:
                raise ValueError(f"Plan.checkpoints: checkpoint {c.name!r}: step={c.step} is "
                                 f"outside its branch {b.name!r} ({b.start_step}, {b.end_step}]")

    @property
    def total_compute(self) -> int:
        """Steps spent by all branches together."""
        return int(sum(b.steps for b in self.branches))

    def branch(self, name: str) -> Branch:
        """The branch called ``name``."""
        for b in self.branches:
            if b.name == name:
                return b
        raise ValueError(f"branch={name!r} is not in this plan; branches: "
                         f"{', '.join(b.name for b in self.branches)}")

    def summary(self) -> str:
        """A text table of the branches and checkpoints.

        >>> print(wsd(0.1, [100, 200]).summary())  # doctest: +NORMALIZE_WHITESPACE
        plan wsd: 2 branches, 2 checkpoints, total compute 210 steps
        branch       parent  start    end  steps  schedule
        main         -           0    200    200  wsd
        decay@100    main       90    100     10  wsd
        checkpoint   branch      step  budget  compute
        T=100        decay@100    100     100      100
        T=200        main         200     200      210
        """
        bw = max([len("branch")] + [len(b.name) for b in self.branches]) + 2
        pw = max([len("parent")] + [len(b.parent or "-") for b in self.branches]) + 1
        cw = max([len("checkpoint")] + [len(c.name) for c in self.checkpoints]) + 2
        lines = [f"plan {self.kind}: {len(self.branches)} branches, {len(self.checkpoints)} "
                 f"checkpoints, total compute {self.total_compute} steps",
                 f"{'branch':<{bw}}{'parent':<{pw}}{'start':>6} {'end':>6} {'steps':>6}  schedule"]
        for b in self.branches:
            lines.append(f"{b.name:<{bw}}{(b.parent or '-'):<{pw}}{b.start_step:>6} "
                         f"{b.end_step:>6} {b.steps:>6}  {b.schedule.kind}")
        lines.append(f"{'checkpoint':<{cw}}{'branch':<{bw}}{'step':>6} {'budget':>7} "
                     f"{'compute':>8}")
        for c in self.checkpoints:
            lines.append(f"{c.name:<{cw}}{c.branch:<{bw}}{c.step:>6} {c.budget:>7} {c.compute:>8}")
        return "\n".join(lines)


def _check_name(what: str, name) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what}={name!r} must be a non-empty string")


def _set_int(obj, field: str, *, lo: int) -> None:
    """Check an integer field of a frozen dataclass (not a float: step 25.5 would silently run to
    step 25) and store it as a Python int."""
    object.__setattr__(obj, field, check_int(f"{type(obj).__name__}.{field}",
                                             getattr(obj, field), lo=lo))


def _budgets(budgets: Sequence[int], name: str = "budgets") -> list[int]:
    a = np.asarray(list(budgets), dtype=np.float64) if np.ndim(budgets) else np.asarray([budgets])
    if a.size == 0:
        raise ValueError(f"{name}=[] must hold at least one step count")
    if not np.all(np.isfinite(a)) or np.any(a < 1) or np.any(a != np.round(a)):
        raise ValueError(f"{name}={list(budgets)} must hold whole step counts in [1, inf)")
    if np.any(np.diff(a) <= 0):
        raise ValueError(f"{name}={list(budgets)} is not strictly increasing")
    return [int(x) for x in a]


def cosine_per_budget(peak_value: float, budgets: Sequence[int], *, warmup_steps: int = 0,
                      min_ratio: float = 0.0) -> Plan:
    """The per-budget cosine oracle: one separate cosine run to each T_k.

    Checkpoint k is run k's end; compute ``sum_{j<=k} T_j``, total ``sum_k T_k``.

    >>> [c.compute for c in cosine_per_budget(0.1, [100, 200, 400]).checkpoints]
    [100, 300, 700]
    """
    bs = _budgets(budgets)
    branches = tuple(Branch(f"cosine@{T}", _s.cosine(peak_value, T, warmup_steps=warmup_steps,
                                                     min_ratio=min_ratio), 0, T, None) for T in bs)
    cks = tuple(Checkpoint(f"T={T}", f"cosine@{T}", T, T, int(sum(bs[:k + 1])))
                for k, T in enumerate(bs))
    return Plan("cosine", branches, cks)


def wsd(peak_value: float, budgets: Sequence[int], *, decay: float | int = 0.1,
        decay_shape: str | int = "linear", warmup_steps: int = 0, min_ratio: float = 0.0) -> Plan:
    """WSD with branches: one constant-LR main run, a decay branch forked for each earlier budget.

    ``D_k = floor(decay * T_k)`` (or ``decay`` steps); branch ``decay@T_k`` (k < K) forks from
    ``main`` at ``T_k - D_k`` and decays to ``T_k``; the main run itself decays to ``T_K``.
    Checkpoint k's compute: main steps up to its fork plus the decay branches made so far,
    ``(T_k - D_k) + sum_{j<=k} D_j = T_k + sum_{j<k} D_j``; total ``T_K + sum_{j<K} D_j``.

    >>> p = wsd(0.1, [12500, 25000, 50000])
    >>> [c.compute for c in p.checkpoints], p.total_compute
    ([12500, 26250, 53750], 53750)
    """
    bs = _budgets(budgets)
    main = _s.wsd(peak_value, bs[-1], warmup_steps=warmup_steps, decay=decay,
                  decay_shape=decay_shape, min_ratio=min_ratio)
    ds = [_s.decay_steps_of(T, decay) for T in bs]
    branches = [Branch("main", main, 0, bs[-1], None)]
    for T in bs[:-1]:
        sched = _s.wsd(peak_value, T, warmup_steps=warmup_steps, decay=decay,
                       decay_shape=decay_shape, min_ratio=min_ratio)  # validates the fork
        branches.append(Branch(f"decay@{T}", sched, T - _s.decay_steps_of(T, decay), T, "main"))
    cks = []
    for k, T in enumerate(bs):
        name = "main" if k == len(bs) - 1 else f"decay@{T}"
        cks.append(Checkpoint(f"T={T}", name, T, T, T + int(sum(ds[:k]))))
    return Plan("wsd", tuple(branches), tuple(cks))


def wsd_s(peak_value: float, checkpoints: Sequence[int], *, budgets: Sequence[int] | None = None,
          warmup_steps: int = 0, decay: float | int = 0.1, decay_shape: str | int = "linear",
          min_ratio: float = 0.0, rewarmup_steps: int = 0) -> Plan:
    """WSD-S: one run of stable+decay cycles (:func:`rivervalley.schedules.wsd_s`).

    Checkpoint k is the run's state after ``e_k`` updates, compute ``e_k``. ``budgets`` (the
    nominal T_k each answers) defaults to ``checkpoints``; pass the budgets when the checkpoints
    come from :func:`wsd_s_checkpoints_at_wsd_compute`.

    >>> p = wsd_s(0.1, wsd_s_checkpoints_at_wsd_compute([100, 200], 0.1), budgets=[100, 200])
    >>> [(c.step, c.budget, c.compute) for c in p.checkpoints]
    [(100, 100, 100), (210, 200, 210)]
    """
    ends = _budgets(checkpoints, "checkpoints")
    nominal = ends if budgets is None else _budgets(budgets)
    if len(nominal) != len(ends):
        raise ValueError(f"budgets={list(nominal)} must have one entry per checkpoint "
                         f"({len(ends)})")
    sched = _s.wsd_s(peak_value, ends, warmup_steps=warmup_steps, decay=decay,
                     decay_shape=decay_shape, min_ratio=min_ratio, rewarmup_steps=rewarmup_steps)
    return _one_run("wsd_s", sched, ends, nominal)


def cyclic_cosine(peak_value: float, checkpoints: Sequence[int], *,
                  budgets: Sequence[int] | None = None, warmup_steps: int = 0,
                  rewarmup_steps: int = 0, min_ratio: float = 0.0) -> Plan:
    """Cyclic cosine: one run of cosine cycles ending at each checkpoint; compute ``e_k``.

    >>> [c.compute for c in cyclic_cosine(0.1, [100, 200, 400]).checkpoints]
    [100, 200, 400]
    """
    ends = _budgets(checkpoints, "checkpoints")
    nominal = ends if budgets is None else _budgets(budgets)
    if len(nominal) != len(ends):
        raise ValueError(f"budgets={list(nominal)} must have one entry per checkpoint "
                         f"({len(ends)})")
    sched = _s.cyclic_cosine(peak_value, ends, warmup_steps=warmup_steps,
                             rewarmup_steps=rewarmup_steps, min_ratio=min_ratio)
    return _one_run("cyclic_cosine", sched, ends, nominal)


def _one_run(kind: str, sched, ends: list[int], nominal: list[int]) -> Plan:
    branch = Branch("cycles", sched, 0, ends[-1], None)
    cks = tuple(Checkpoint(f"T={T}", "cycles", e, T, e) for e, T in zip(ends, nominal, strict=True))
    return Plan(kind, (branch,), cks)


def wsd_s_checkpoints_at_wsd_compute(budgets: Sequence[int], decay: float | int) -> list[int]:
    """WSD-S checkpoint steps spending WSD's compute: ``c_k = T_k + sum_{j<k} D_j``.

    ``D_j = floor(decay * T_j)`` (or ``decay`` steps), WSD's discarded decay branches.

    >>> wsd_s_checkpoints_at_wsd_compute([12500, 25000, 50000], 0.1)
    [12500, 26250, 53750]
    """
    bs = _budgets(budgets)
    ds = [_s.decay_steps_of(T, decay) for T in bs]
    return [T + int(sum(ds[:k])) for k, T in enumerate(bs)]
