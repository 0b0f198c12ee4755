"""The loss-curve laws evaluated exactly at a few observed steps (private; used by ``fit``).

A fit evaluates a law at the logged steps only (a 50,000-step run logged every 200 steps: 250
points), hundreds of times. Each law here has two halves: ``prepare(lrs, steps) -> dict`` runs once
in NumPy and keeps what does not depend on the parameters; ``at(params, prep) -> losses`` runs in
JAX (jitted, differentiated by ``jax.jacfwd``) and returns the same numbers as the law's full curve
at those steps, without the O(T) pass:

- river-valley laws: the schedule as runs of constant LR, cut at every observed step; the hill
  recursion over a run of ``n`` steps at one LR is one affine map, so the cost is O(number of runs);
- multi-power law: the live pairs (observed step t, LR change k <= t) of its double sum, with a
  hand-written JVP (one pass over the pairs for all directions);
- convex bound: linear in ``d2``, so its two parameter-free terms are computed once (O(len(steps) T)).

Laws without a ``prepare`` / ``at`` pair use :func:`prepare_every_step` and their full curve.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley._laws_formulas import (
    SPECTRUM_GROUPS,
    float_params,
    linear_recurrence,
    noise_injection,
    river_loss,
    spectrum_sharpnesses,
)

#: Below this ``|log a|`` (``a = (1 - eta sharpness)^2``, so ``eta sharpness < ~5e-13``) the
#: geometric sum ``(1 - a^n) / (1 - a)`` of a run of ``n`` steps is taken as ``n``: its relative
#: error ``n |log a| / 2`` is below 1e-7 for runs under 1e5 steps, while the quotient of ``expm1``
#: used above it is 0 / 0 at ``log a = 0`` and its derivative cancels catastrophically near it.
LINEAR_LOG_A = 1e-12


def prepare_every_step(lrs: np.ndarray, steps: np.ndarray) -> dict:
    """The default ``prepare``: the whole schedule, for laws evaluated by their full curve."""
    return {"lrs": lrs, "steps": steps}


# ============================================================================================
# the river-valley laws: runs of constant LR
# ============================================================================================

def prepare_segments(lrs: np.ndarray, steps: np.ndarray) -> dict:
    """The schedule as runs of constant LR, cut at every observed step (NumPy, once per fit).

    The hill recursion over a run of ``n`` steps at one LR is one affine map (:func:`_hill_at`), so
    the river-valley laws cost O(number of runs) at the observed steps instead of O(T): a 50k-step
    constant run observed 250 times is ~550 runs (warmup + cuts), a WSD cooldown adds its decay.
    """
    steps = np.asarray(steps, np.int64)
    pex = np.concatenate([[0.0], np.cumsum(lrs)])             # pex[s] = sum_{r<s} eta_r = tau_s
    smax = int(steps.max()) if len(steps) else 0
    lr = np.asarray(lrs[:smax], np.float64)
    change = np.nonzero(lr[1:] != lr[:-1])[0] + 1 if smax > 1 else np.zeros(0, np.int64)
    cuts = steps[(steps > 0) & (steps < smax)]
    starts = (np.unique(np.concatenate([[0], change, cuts])).astype(np.int64) if smax
              else np.zeros(0, np.int64))
    ends = np.concatenate([starts[1:], [smax]]) if smax else np.zeros(0, np.int64)
    # the state after the run ending at s is V_s; s = 0 has V_0 = 0 (index -1)
    obs = np.where(steps > 0, np.searchsorted(ends, steps), -1)
    return {"eta": lr[starts] if smax else np.zeros(0), "n": (ends - starts).astype(np.float64),
            "obs": obs.astype(np.int32), "tau": pex[steps]}


def _hill_at(prep: dict, sharpness, injection_of):
    """The hill loss ``sum_groups sharpness V_s / 2`` at the observed steps, from the runs of
    :func:`prepare_segments` (exact).

    Over a run of ``n`` steps at LR ``eta``: ``V <- a^n V + b (1 - a^n) / (1 - a)`` with
    ``a = (1 - eta sharpness)^2`` and ``b = injection_of(eta)`` (the n-fold composition of one step
    of the recursion). ``sharpness`` is a scalar or a vector of groups (summed).
    """
    eta, n, obs = prep["eta"], prep["n"], prep["obs"]
    lam = jnp.asarray(sharpness)
    if eta.shape[0] == 0:
        return jnp.zeros(obs.shape, jnp.result_type(lam, float))
    col = (slice(None),) + (None,) * lam.ndim
    e, n = eta[col], n[col]
    la = 2 * jnp.log(jnp.maximum(jnp.abs(1 - e * lam), jnp.finfo(lam.dtype).tiny))    # log a
    small = jnp.abs(la) < LINEAR_LOG_A
    la_s = jnp.where(small, 1.0, la)
    geo = jnp.where(small, n, jnp.expm1(n * la_s) / jnp.expm1(la_s))
    v = linear_recurrence(jnp.exp(n * la), injection_of(e) * geo)               # (runs,) or (runs, K)
    h = 0.5 * lam * v
    if lam.ndim:
        h = jnp.sum(h, axis=1)
    return jnp.where(obs >= 0, h[jnp.maximum(obs, 0)], 0.0)


def river_valley_at(params, prep: dict) -> jax.Array:
    """:func:`rivervalley.laws.river_valley_law` at the steps of ``prep``."""
    p = float_params(params)
    return river_loss(p, prep["tau"]) + _hill_at(prep, p.sharpness, lambda e: e ** 2 * p.noise_var)


def river_valley_2_at(params, prep: dict) -> jax.Array:
    """:func:`rivervalley.laws.river_valley_2_law` at the steps of ``prep``."""
    p = float_params(params)
    return (river_loss(p, prep["tau"]) + _hill_at(prep, p.sharpness, lambda e: e ** 2 * p.noise_var)
            + _hill_at(prep, p.sharpness_2, lambda e: e ** 2 * p.noise_var_2))


def river_valley_spectrum_at(params, prep: dict) -> jax.Array:
    """:func:`rivervalley.laws.river_valley_spectrum_law` at the steps of ``prep``."""
    p = float_params(params)
    lam = spectrum_sharpnesses(p.sharpness_lo, p.sharpness_hi)
    return river_loss(p, prep["tau"]) + _hill_at(
        prep, lam, lambda e: noise_injection(e, p.noise_var / SPECTRUM_GROUPS, p.p))


# ============================================================================================
# the multi-power law: the live (step, LR change) pairs
# ============================================================================================

def prepare_multi_power(lrs: np.ndarray, steps: np.ndarray) -> dict:
    """The live pairs (observed step t, LR change k <= t) of the multi-power sum, in NumPy once.

    Only ``k <= t`` contributes, so the pairs are stored flat (row = which observation): a WSD
    run observed before its decay pairs only with the warmup's changes. The parameter-free parts
    are precomputed: ``log S_k(t)``, ``log eta_k``, and the whole contribution of steps with
    ``eta_k = 0`` (``G = 1`` once ``S_k(t) > 0``).
    """
    steps = np.asarray(steps, np.int64)
    d = np.concatenate([[0.0], lrs[:-1] - lrs[1:]])
    k = np.nonzero(d)[0]
    pex = np.concatenate([[0.0], np.cumsum(lrs)])            # pex[i] = sum_{s<i}
    pt = pex[steps + 1]                                        # S1(t) = sum_{s<=t}
    n_live = np.searchsorted(k, steps, side="right")          # changes k <= t for each t
    rows = np.repeat(np.arange(len(steps)), n_live)
    cols = np.concatenate([np.arange(n) for n in n_live]) if len(steps) else np.zeros(0, np.int64)
    cols = cols.astype(np.int64)
    x = pt[rows] - pex[k[cols]]                                # S_k(t) = sum_{tau=k..t} eta_tau
    eta = lrs[k[cols]]
    pos = eta > 0
    zero_part = np.zeros(len(steps))
    np.add.at(zero_part, rows[~pos], d[k[cols[~pos]]] * (x[~pos] > 0))
    with np.errstate(divide="ignore"):
        return {"s1": pt, "zero": zero_part, "rows": rows[pos].astype(np.int32),
                "d": d[k[cols[pos]]], "log_eta": np.log(eta[pos]), "log_x": np.log(x[pos]),
                "n": np.zeros(len(steps))}


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _mpl_ld(num, log_c, beta, gamma, d, log_eta, log_x, rows):
    """``sum_k d_k G(eta_k^-gamma S_k(t))`` over the live pairs, for each observation row.

    ``G = 1 - (1 + u)^-beta`` with ``u = exp(log C - gamma log eta + log x)``. The JVP is written
    out: the tangent is a combination of three segment sums that depend on the primal only, so a
    Jacobian (``jacfwd``, 8 directions) costs one pass over the pairs instead of eight.
    """
    u = jnp.exp(log_c - gamma * log_eta + log_x)
    return jax.ops.segment_sum(d * -jnp.expm1(-beta * jnp.log1p(u)), rows, num_segments=num)


@_mpl_ld.defjvp
def _mpl_ld_jvp(num, primals, tangents):
    log_c, beta, gamma, d, log_eta, log_x, rows = primals
    t_c, t_beta, t_gamma = tangents[:3]
    u = jnp.exp(log_c - gamma * log_eta + log_x)
    l1 = jnp.log1p(u)
    w = jnp.exp(-beta * l1)                                   # (1 + u)^-beta = 1 - G

    def seg(v):
        return jax.ops.segment_sum(d * v, rows, num_segments=num)

    h = beta * w * u / (1 + u)                                # dG / dlog u
    out = seg(-jnp.expm1(-beta * l1))
    return out, seg(h) * t_c - seg(h * log_eta) * t_gamma + seg(l1 * w) * t_beta


def multi_power_at(params, prep: dict) -> jax.Array:
    """:func:`rivervalley.laws.multi_power_law` at the steps of ``prep``."""
    p = float_params(params)
    ld = _mpl_ld(prep["n"].shape[0], jnp.log(p.C), p.beta, p.gamma, prep["d"], prep["log_eta"],
                 prep["log_x"], prep["rows"]) + prep["zero"]
    return p.L0 + p.A * (prep["s1"] + p.S_W) ** (-p.alpha) - p.B * ld


# ============================================================================================
# the convex bound: linear in d2
# ============================================================================================

def convex_terms(lrs: np.ndarray, steps: np.ndarray):
    """Exact ``1/(2P)`` and the d2-free part of the bound at ``steps``; O(len(steps) * T) NumPy."""
    a1 = np.empty(len(steps))
    a2 = np.empty(len(steps))
    for i, t in enumerate(np.asarray(steps, dtype=int)):
        e = lrs[: t + 1]
        P, Q = e.sum(), (e ** 2).sum()
        a1[i] = 1.0 / (2 * P)
        if t == 0:
            a2[i] = Q / (2 * P)
            continue
        beta = np.cumsum(e[::-1])[::-1]                      # sum_{s>=k}
        gam = np.cumsum((e ** 2)[::-1])[::-1]
        alpha = beta - e
        with np.errstate(divide="ignore", invalid="ignore"):
            term3 = 0.5 * np.sum(e[:-1] / alpha[:-1] * gam[:-1] / beta[:-1])
        a2[i] = Q / (2 * P) + (term3 if e[-1] > 0 else np.inf)
    return a1, a2


def prepare_convex(lrs: np.ndarray, steps: np.ndarray) -> dict:
    """The two parameter-free terms of the convex bound at ``steps`` (:func:`convex_terms`)."""
    a1, a2 = convex_terms(lrs, steps)
    return {"a1": a1, "a2": a2}


def convex_bound_at(params, prep: dict) -> jax.Array:
    """:func:`rivervalley.laws.convex_bound_law` at the steps of ``prep``."""
    p = float_params(params)
    return p.L0 + p.scale * (p.d2 * prep["a1"] + prep["a2"])
