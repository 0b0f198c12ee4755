"""What the explorer shows for one setting, as ONE compiled program: :func:`compute`.

The program runs, for the schedule ``eta_t`` and the valley of a :class:`Settings`:

- the SGD run of the engine, :func:`rivervalley.dynamics.run_scan` (divergence reported in
  ``diverged_at``, never raised), recorded every ``stride`` steps with at most
  :data:`MAX_RECORDS` records;
- the expected river and hill losses of THEORY.md §4,
  :func:`rivervalley.theory.moment_recursion`, on the learning rates ``eta_0 .. eta_{T-1}``;
- the loss ``L(u, v)`` on a :data:`GRID` x :data:`GRID` grid spanning ``view`` = (u_lo, u_hi,
  v_lo, v_hi), the valley panel's current limits (the panel keeps its limits while a slider
  moves, so the grid follows the view, not the run).

Every setting enters as a traced value (schedule, valley and noise are pytrees with array leaves,
the seed and the view are arrays), so the program is compiled once per ``num_steps`` and reused
for every setting; :data:`TRACE_COUNT` counts its traces. :func:`view_of` gives the view that
fits a computed run (host arithmetic on the returned arrays).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley import dynamics, landscapes, theory
from rivervalley._validate import fmt
from rivervalley.explorer._settings import Settings, build_problem, build_schedule

#: Records per curve at most (the simulation still runs every step): ~3 per pixel column of the
#: loss panel (a noisy curve costs draw time in proportion to its length).
MAX_RECORDS = 1000
#: Grid points per axis of the valley's loss image.
GRID = 120
#: Margin around the run in the valley view, as a fraction of the run's extent along u.
U_MARGIN = 0.08
#: Smallest extent of the view along u (the start alone would be a point).
MIN_U_SPAN = 1.0
#: Across the river the view spans the run's widest hill offset, at least HILL_WIDTHS / sqrt(lambda)
#: (where the hill loss lambda v^2 / 2 reaches HILL_WIDTHS^2 / 2), ...
HILL_WIDTHS = 3.0
#: ... times V_MARGIN beyond the river's course and the run, ...
V_MARGIN = 1.2
#: ... for the part of the run within this offset (a diverging run's grows without bound).
MAX_HILL_OFFSET = 50.0

#: The view of a first run, before its own is known (u_lo, u_hi, v_lo, v_hi).
DEFAULT_VIEW = (0.0, 1.0, -1.0, 1.0)

#: Counts traces of the explorer's compiled program (a test asserts that moving controls does not
#: add any).
TRACE_COUNT = {"frame": 0}


def _frame(valley, schedule, noise, seed, view, *, num_steps: int, stride: int):
    TRACE_COUNT["frame"] += 1
    x0 = valley.init_params()
    traj = dynamics.run_scan(valley, x0, schedule, key=jax.random.key(seed), num_steps=num_steps,
                             noise=noise, record_every=stride)
    lrs = schedule(jnp.arange(num_steps + 1))
    _, rivers, hills, _ = theory.moment_recursion(valley, lrs[:-1], noise, x0)
    idx = record_steps(num_steps, stride)
    gu = jnp.linspace(view[0], view[1], GRID)
    gv = jnp.linspace(view[2], view[3], GRID)
    z = jax.vmap(jax.vmap(valley.loss))(jnp.stack(jnp.meshgrid(gu, gv), -1))
    xs = traj.params
    return dict(steps=traj.steps, lr=traj.lr, loss=traj.loss, river_loss=traj.river_loss,
                hill_loss=traj.hill_loss, params=xs, course_v=valley.course_at(xs[:, :1])[:, 0],
                diverged_at=traj.diverged_at, theory_steps=idx, theory_loss=(rivers + hills)[idx],
                theory_river=rivers[idx], theory_hill=hills[idx], schedule_lr=lrs[idx],
                grid_u=gu, grid_v=gv, grid_loss=z, river_u=gu,
                river_v=valley.course_at(gu[:, None])[:, 0])


_compiled = jax.jit(_frame, static_argnames=("num_steps", "stride"))


def record_steps(num_steps: int, stride: int) -> np.ndarray:
    """The recorded steps: 0, stride, 2 stride, ... and num_steps (as the engine records).

    >>> record_steps(10, 4).tolist()
    [0, 4, 8, 10]
    """
    return np.unique(np.r_[np.arange(0, num_steps + 1, stride), num_steps])


def stride_of(num_steps: int) -> int:
    """Steps per record: the fewest that keep a run within :data:`MAX_RECORDS` records.

    >>> stride_of(1000), stride_of(10000)
    (1, 10)
    """
    return max(1, math.ceil(num_steps / MAX_RECORDS))


def compute(settings: Settings, num_steps: int, view=None) -> dict[str, np.ndarray]:
    """Run the simulation, the theory and the loss grid over ``view`` for ``settings``.

    Args:
        settings: the controls.
        num_steps: T, the steps of the run (static: one compiled program per value).
        view: (u_lo, u_hi, v_lo, v_hi), the valley panel's limits; None: the view that fits the
            run (:func:`view_of`; the program runs twice).

    Returns:
        NumPy arrays by name: the records (``steps``, ``lr``, ``loss``, ``river_loss``,
        ``hill_loss``, ``params``, the river course at the recorded u ``course_v``), the theory at
        the same steps (``theory_loss``, ``theory_river``, ``theory_hill``, the schedule
        ``schedule_lr``), the grid (``grid_u``, ``grid_v``, ``grid_loss``), the river course over
        the grid (``river_u``, ``river_v``), ``diverged_at`` (-1: none) and the valley's
        ``stability_limit`` (:func:`rivervalley.landscapes.stability_limit`, 2 / lambda).

    Example:
        >>> d = compute(Settings(), 100, (0.0, 4.0, -1.0, 1.0))
        >>> print(d["loss"].shape, d["grid_loss"].shape, int(d["diverged_at"]))
        (101,) (120, 120) -1
    """
    sched = build_schedule(settings, num_steps)
    valley, noise = build_problem(settings)
    if view is None:
        view = view_of(compute(settings, num_steps, DEFAULT_VIEW), settings)
    try:
        box = np.asarray(view, np.float32)
        ok = box.shape == (4,) and np.all(np.isfinite(box)) and box[0] < box[1] and box[2] < box[3]
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"view={fmt(view)} must be 4 finite numbers (u_lo, u_hi, v_lo, v_hi) "
                         "with u_lo < u_hi and v_lo < v_hi")
    out = _compiled(valley, sched, noise, np.asarray(settings.seed, np.uint32), box,
                    num_steps=int(num_steps), stride=stride_of(num_steps))
    out = {k: np.asarray(v) for k, v in jax.device_get(out).items()}
    out["stability_limit"] = np.asarray(landscapes.stability_limit(valley))
    return out


def view_of(data: dict[str, np.ndarray], settings: Settings) -> tuple[float, float, float, float]:
    """The valley view (u_lo, u_hi, v_lo, v_hi) that shows a computed run while it stays in the
    valley (finite, within ``MAX_HILL_OFFSET`` of the river: a diverging run leaves it): its
    extent along u with margins of ``U_MARGIN`` times it, and across the river its widest hill
    offset (at least ``HILL_WIDTHS / sqrt(lambda)``) times ``V_MARGIN`` beyond the run and the
    river's course (within +-A, the meander).

    >>> d = dict(params=np.array([[0.0, 0.0], [10.0, 0.5]]), course_v=np.zeros(2))
    >>> [round(x, 2) for x in view_of(d, Settings(sharpness=4.0))]
    [-0.8, 10.8, -1.8, 2.3]
    """
    xs, c = data["params"], data["course_v"]
    with np.errstate(invalid="ignore"):
        ok = np.all(np.isfinite(xs), axis=1) & (np.abs(xs[:, 1] - c) <= MAX_HILL_OFFSET)
    u, v, c = xs[ok, 0], xs[ok, 1], c[ok]
    if u.size == 0:
        u, v, c = np.zeros(1), np.zeros(1), np.zeros(1)
    span = max(float(u.max() - u.min()), MIN_U_SPAN)
    u_lo, u_hi = float(u.min()) - U_MARGIN * span, float(u.max()) + U_MARGIN * span
    half = max(float(np.max(np.abs(v - c))), HILL_WIDTHS / math.sqrt(settings.sharpness))
    v_lo = min(-settings.meander, float(v.min())) - V_MARGIN * half
    v_hi = max(settings.meander, float(v.max())) + V_MARGIN * half
    return u_lo, u_hi, v_lo, v_hi
