"""Fitting the loss-curve laws to observed curves (private; re-exported by :mod:`rivervalley.laws`).

:func:`fit` minimizes ``sum huber(log L_pred(t_i) - log L_obs(t_i))`` over one curve or several with
shared parameters (``scipy.optimize.least_squares``, trust-region reflective within the law's
bounds, the exact Jacobian from ``jax.jacfwd``, float64). It returns the parameters, their
standard errors (Laplace: the Gauss-Newton curvature at the optimum; or a residual bootstrap), and
raises a :class:`FitWarning` when the answer should not be trusted as it stands: a free parameter
ends at a bound, a group of hill directions collapsed, the parameters are not identifiable from
the data, R^2 is undefined (losses without variance).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley._laws_evaluation import check_lrs, check_steps
from rivervalley._laws_io import Curve
from rivervalley._laws_registry import Law, get_law, law_params

#: least_squares' ftol: the fit stops when the cost changes by less than this (relative).
_FTOL = 1e-8
#: A predicted loss below this (a law can predict <= 0 at bad parameters) counts as this loss in
#: the log residual ...
_LOSS_FLOOR = 1e-30
#: ... and a non-finite prediction has this log residual: far beyond the Huber threshold, finite so
#: that least_squares goes on.
_NONFINITE_RESIDUAL = 1e3
#: An infinite upper bound of a log-scale parameter is this in the fitted coordinate's exponent
#: (log 1e300 ~ 691): least_squares' trust-region reflective method scales each step by the
#: distance to the bounds, so this number is part of the stored fits.
_LOG_SCALE_CAP = 1e300
#: The start moves this far inside the bounds (relative to the bound's scale): least_squares needs
#: a strictly interior start.
_INTERIOR = 1e-9
#: A free parameter within this (relative) of a bound, in the fitted coordinate, sits at it.
_AT_BOUND = 1e-4
#: Singular values of the Jacobian below ``max singular value * max(n, k) * eps`` times this
#: count as zero (NumPy's ``matrix_rank`` tolerance, with a margin for the Jacobian's rounding).
_RANK_TOL_FACTOR = 1e3
#: A parameter whose weight in a zero-curvature direction exceeds this is not identifiable.
_NULL_WEIGHT = 1e-8
#: A bootstrap refit has ``max_nfev // _BOOT_NFEV_DIVISOR`` evaluations, at least _BOOT_NFEV_MIN
#: (it starts at the optimum).
_BOOT_NFEV_DIVISOR, _BOOT_NFEV_MIN = 5, 20


class FitWarning(UserWarning):
    """A fit whose parameters should not be trusted as they stand (bound, collapse, R^2 undefined)."""


class FitResult(NamedTuple):
    """Result of :func:`fit`.

    Attributes:
      params: the fitted parameter NamedTuple.
      r2: R^2 of the losses (NaN when undefined: fewer than 2 points or no variance).
      rmse_log: RMS of ``log pred - log obs``.
      cost, nfev, message: the optimizer's final cost, function evaluations and message.
      stderr: standard errors of ``params`` (same NamedTuple; 0 for fixed parameters, NaN where
        not identifiable). Laplace errors assume independent residuals; real curves have
        correlated noise, so read them as lower bounds.
      warnings: the :class:`FitWarning` messages (also raised as warnings).
      law: the law's name.
    """
    params: Any
    r2: float
    rmse_log: float
    cost: float
    nfev: int
    message: str
    stderr: Any = None
    warnings: tuple = ()
    law: str = ""


def _is_curve(x) -> bool:
    return isinstance(x, Curve)


def _unpack(data, losses, steps, min_step):
    """(lrs_list, losses_list, steps_list) from Curves or arrays."""
    if _is_curve(data) or (isinstance(data, (list, tuple)) and data and all(map(_is_curve, data))):
        if losses is not None or steps is not None:
            raise ValueError("losses= and steps= come from the Curve(s); pass only the curves")
        curves = [data] if _is_curve(data) else list(data)
        lrs_list = [np.asarray(c.lrs, np.float64) for c in curves]
        losses_list = [np.asarray(c.losses, np.float64) for c in curves]
        steps_list = [np.asarray(c.steps) for c in curves]
    else:
        if losses is None:
            raise ValueError("losses is required when the data are LR arrays (or pass Curve objects)")
        multi = isinstance(data, (list, tuple)) and len(data) > 0 and np.ndim(data[0]) == 1
        lrs_list = [np.asarray(x, np.float64) for x in (data if multi else [data])]
        losses_list = [np.asarray(y, np.float64) for y in (losses if multi else [losses])]
        if len(losses_list) != len(lrs_list):
            raise ValueError(f"got {len(lrs_list)} LR arrays but {len(losses_list)} loss arrays")
        if steps is None:
            steps_list = [None] * len(lrs_list)
        else:
            steps_list = list(steps) if multi else [steps]
            if len(steps_list) != len(lrs_list):
                raise ValueError(f"got {len(lrs_list)} LR arrays but {len(steps_list)} step arrays")
    for i, (l, y) in enumerate(zip(lrs_list, losses_list)):
        check_lrs(l, f"lrs[{i}]")
        if y.ndim != 1:
            raise ValueError(f"losses[{i}] has shape {y.shape}: expected a 1-D array")
    steps_list = [check_steps(s, len(l), len(y), f"steps[{i}]")
                  for i, (s, l, y) in enumerate(zip(steps_list, lrs_list, losses_list))]
    if min_step:
        keep = [s >= min_step for s in steps_list]
        losses_list = [y[k] for y, k in zip(losses_list, keep)]
        steps_list = [s[k] for s, k in zip(steps_list, keep)]
    for i, y in enumerate(losses_list):
        if len(y) == 0:
            raise ValueError(f"curve {i} has no losses to fit" + (f" at steps >= min_step={min_step}"
                                                                    if min_step else ""))
        if not np.all(np.isfinite(y)) or np.any(y <= 0):
            raise ValueError(f"losses[{i}] must be finite and > 0 (fitted in log space)")
    if all(float(np.max(l)) == 0 for l in lrs_list):
        raise ValueError("every LR is 0: no progress to fit (the river time sum(lrs) is 0)")
    return lrs_list, losses_list, steps_list


@functools.cache
def _compiled(law: Law, free: tuple, is_log: tuple):
    """Jitted residual and Jacobian for one law and one choice of free / log-scale parameters."""
    n = len(law.params._fields)
    free_idx = np.nonzero(free)[0]
    il = np.asarray(is_log)

    def params_of(z, zf0):
        zf = zf0.at[free_idx].set(z)
        pv = jnp.where(il, jnp.exp(zf), zf)
        return law.params(*[pv[i] for i in range(n)])

    def residual(z, data):
        preps, logy, zf0 = data
        p = params_of(z, zf0)
        pred = jnp.concatenate([law.evaluate_at(p, prep) for prep in preps])
        r = jnp.log(jnp.maximum(pred, _LOSS_FLOOR)) - logy
        return jnp.where(jnp.isfinite(r), r, _NONFINITE_RESIDUAL)

    return jax.jit(residual), jax.jit(jax.jacfwd(residual)), params_of


def fit(law: Law | str, data, losses=None, *, steps=None, init=None, huber_delta: float = 1e-3,
        max_nfev: int = 500, fixed: Sequence[str] = (), min_step: int = 0,
        uncertainty: str = "laplace", n_boot: int = 50, seed: int = 0,
        progress: bool | None = None) -> FitResult:
    """Fit a law to one loss curve or several jointly (shared parameters).

    Minimizes ``sum huber(log L_pred(t_i) - log L_obs(t_i))`` (``scipy.optimize.least_squares``,
    ``loss="huber"``, ``f_scale=huber_delta``, trust-region reflective with bounds) with the exact
    Jacobian from ``jax.jacfwd``, in float64. Positive scale-free parameters are fitted in log space.

    Args:
      law: a :class:`Law` or its name.
      data: a :class:`Curve`, a list of them, or the LRs of every step of one run (an array) or a
        list of such arrays (then ``losses`` and ``steps`` give the observations).
      losses: observed losses (array, or list matching ``data``); only with LR arrays.
      steps: step of each loss (array or list); ``None``: losses given at every step.
      init: initial parameters; default: the law's data-based guess.
      huber_delta: the Huber threshold in log-loss units.
      max_nfev: function-evaluation budget.
      fixed: names of parameters held at their ``init`` value.
      min_step: fit only losses at steps ``>= min_step`` (the first steps are a transient).
      uncertainty: ``"laplace"`` (Gauss-Newton curvature at the optimum, free), ``"bootstrap"``
        (``n_boot`` refits on resampled log residuals, seeded by ``seed``) or ``"none"``.
      progress: a tqdm bar over function evaluations, shown once the fit has taken a second;
        ``None``: only on a terminal.

    Returns:
      a :class:`FitResult`. Warns :class:`FitWarning` when a free parameter ends at a bound, a
      group of hill directions collapsed, the Jacobian is rank deficient, or R^2 is undefined.

    >>> from rivervalley.laws import RIVER_VALLEY, RiverValleyParams, loss_curve
    >>> lrs = np.full(200, 0.1)
    >>> true = RiverValleyParams(1.0, 1.0, 0.5, 1.0, 2.0, 1.0)
    >>> y = np.asarray(loss_curve(RIVER_VALLEY, true, lrs))
    >>> r = fit(RIVER_VALLEY, lrs, y, init=true._replace(A=1.2), fixed=("sharpness", "noise_var", "tau0"))
    >>> round(float(r.params.A), 4), r.r2 > 0.9999
    (1.0, True)
    """
    law = get_law(law)
    if uncertainty not in ("laplace", "bootstrap", "none"):
        raise ValueError(f"uncertainty={uncertainty!r} is not one of laplace, bootstrap, none")
    for name, v, lo in (("max_nfev", max_nfev, 1), ("n_boot", n_boot, 2), ("min_step", min_step, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name}={v!r} is outside the valid range: an integer >= {lo}")
    if isinstance(huber_delta, bool) or not (isinstance(huber_delta, (int, float, np.number))
                                             and math.isfinite(huber_delta) and huber_delta > 0):
        raise ValueError(f"huber_delta={huber_delta!r} is outside the valid range (0, inf)")
    lrs_list, losses_list, steps_list = _unpack(data, losses, steps, int(min_step))

    names = law.params._fields
    for n in fixed:
        if n not in names:
            raise ValueError(f"fixed={n!r} is not a parameter of {law.name}: {', '.join(names)}")
    free = np.array([n not in fixed for n in names])
    n_obs = sum(len(y) for y in losses_list)
    if n_obs < int(free.sum()):
        raise ValueError(f"{n_obs} losses cannot determine {int(free.sum())} free parameters of "
                         f"{law.name}: give more points or fix some parameters (fixed=)")
    p0 = law_params(law, init) if init is not None else law.guess(lrs_list, losses_list, steps_list)
    lo_b, hi_b = np.array(law.lower, float), np.array(law.upper, float)
    p0v = np.clip(np.array(p0, float), lo_b, hi_b)
    if not np.all(np.isfinite(p0v)):
        raise ValueError(f"the initial parameters of {law.name} are not finite ({p0v}); pass init=")
    is_log = np.array([n in law.log_scale for n in names])

    def to_z(p):
        return np.where(is_log, np.log(np.maximum(p, np.finfo(np.float64).tiny)), p)

    z0 = to_z(p0v)[free]
    zlo = to_z(lo_b)[free]
    zhi = np.where(is_log, np.log(np.where(np.isfinite(hi_b), hi_b, _LOG_SCALE_CAP)), hi_b)[free]
    with np.errstate(invalid="ignore"):
        lo_in = np.where(np.isfinite(zlo), zlo + _INTERIOR * (1 + np.abs(zlo)), zlo)
        hi_in = np.where(np.isfinite(zhi), zhi - _INTERIOR * (1 + np.abs(zhi)), zhi)
    z0 = np.clip(z0, lo_in, hi_in)

    from scipy.optimize import least_squares
    from tqdm.auto import tqdm

    res_j, jac_j, params_of = _compiled(law, tuple(bool(x) for x in free), tuple(bool(x) for x in is_log))
    with jax.enable_x64(True):
        preps = [jax.tree_util.tree_map(jnp.asarray, law.prepare(l, s))
                 for l, s in zip(lrs_list, steps_list)]
        logy_np = np.concatenate([np.log(y) for y in losses_list])
        zf0 = jnp.asarray(to_z(p0v))
        bar = tqdm(total=max_nfev, desc=f"fit {law.name}", unit="eval", delay=1.0, leave=False,
                   disable=(None if progress is None else not progress))

        def solve(logy, z_start, nfev):
            data_ = (preps, jnp.asarray(logy), zf0)

            def f(z):
                bar.update(1)
                return np.asarray(res_j(jnp.asarray(z), data_))

            return least_squares(f, z_start, jac=lambda z: np.asarray(jac_j(jnp.asarray(z), data_)),
                                 bounds=(zlo, zhi), loss="huber", f_scale=huber_delta,
                                 max_nfev=nfev, method="trf", x_scale="jac", ftol=_FTOL)

        try:
            sol = solve(logy_np, z0, max_nfev)
            data_ = (preps, jnp.asarray(logy_np), zf0)
            p = params_of(jnp.asarray(sol.x), zf0)
            params = law.params(*[float(x) for x in p])
            r_log = np.asarray(res_j(jnp.asarray(sol.x), data_))
            pred = np.exp(r_log + logy_np)
            J = np.asarray(jac_j(jnp.asarray(sol.x), data_))
            se_z, rank = _laplace(J, r_log) if uncertainty != "none" else (np.full(len(sol.x), np.nan), None)
            if uncertainty == "bootstrap":
                rng = np.random.default_rng(seed)
                boot_nfev = max(_BOOT_NFEV_MIN, max_nfev // _BOOT_NFEV_DIVISOR)
                bar.reset(total=max_nfev + n_boot * boot_nfev)
                zs = []
                for _ in range(n_boot):
                    logy_b = np.log(pred) - rng.choice(r_log, size=len(r_log), replace=True)
                    zs.append(solve(logy_b, sol.x, boot_nfev).x)
                se_z = np.std(np.array(zs), axis=0, ddof=1)
        finally:
            bar.close()

    y = np.concatenate(losses_list)
    msgs = []
    var = float(np.sum((y - y.mean()) ** 2))
    if len(y) < 2 or var == 0.0:
        r2 = float("nan")
        msgs.append(f"R^2 is undefined: the {len(y)} fitted losses have no variance")
    else:
        r2 = 1.0 - float(np.sum((pred - y) ** 2)) / var
    rmse = float(np.sqrt(np.mean(r_log ** 2)))

    pv = np.array(params, float)
    se = np.zeros(len(names))
    se[free] = np.where(is_log[free], np.abs(pv[free]) * se_z, se_z)
    stderr = law.params(*[float(x) for x in se])
    # a free parameter at a bound (in the fitted coordinate, relative to its scale)
    zf = to_z(pv)[free]
    for j, n in enumerate(np.array(names)[free]):
        for b, side in ((zlo[j], "lower"), (zhi[j], "upper")):
            if np.isfinite(b) and abs(zf[j] - b) <= _AT_BOUND * (1 + abs(b)):
                val = lo_b[list(names).index(n)] if side == "lower" else hi_b[list(names).index(n)]
                msgs.append(f"{law.name}: parameter {n}={getattr(params, n):.4g} sits at its {side} "
                            f"bound {val:g}: the data do not determine it; the law may not fit")
    if rank is not None and rank < int(free.sum()):
        msgs.append(f"{law.name}: the Jacobian has rank {rank} < {int(free.sum())} free parameters: "
                    "some parameters are not identifiable from these curves (their stderr is NaN)")
    if law.check is not None:
        msgs.extend(f"{law.name}: {m}" for m in law.check(params, lrs_list))
    for m in msgs:
        warnings.warn(m, FitWarning, stacklevel=2)
    return FitResult(params, r2, rmse, float(sol.cost), int(sol.nfev), str(sol.message), stderr,
                     tuple(msgs), law.name)


def _laplace(J: np.ndarray, r: np.ndarray):
    """Standard errors in the fitted coordinates from ``s^2 (J^T J)^-1`` and the rank of ``J``."""
    n, k = J.shape
    if n <= k or not np.all(np.isfinite(J)):
        return np.full(k, np.nan), (0 if not np.all(np.isfinite(J)) else min(n, k))
    u, sv, vt = np.linalg.svd(J, full_matrices=False)
    tol = sv.max() * max(n, k) * np.finfo(float).eps * _RANK_TOL_FACTOR if sv.size else 0.0
    rank = int(np.sum(sv > tol))
    resid_var = float(np.sum(r ** 2)) / (n - k)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(sv > tol, 1.0 / sv ** 2, np.inf)
        var = np.einsum("ij,j,ij->i", vt.T, inv, vt.T) * resid_var
        # directions with no curvature make every parameter they touch unidentified
        bad = np.any((np.abs(vt) > _NULL_WEIGHT) & (sv <= tol)[:, None], axis=0)
    return np.where(bad, np.nan, np.sqrt(var)), rank
