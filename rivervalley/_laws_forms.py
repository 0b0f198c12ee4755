"""The loss-curve laws themselves (private; re-exported by :mod:`rivervalley.laws`).

Parameter NamedTuples, the full-curve functions (O(T) / O(T m), no T x T matrix), the exact
evaluation at a few steps that :func:`rivervalley.laws.fit` uses, the :class:`Law` objects with
their bounds and data-based initial guesses, :func:`predict` and :func:`parts` (the river / hill
split of every river-valley law).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley import _laws_soe as _soe
from rivervalley._validate import is_traced

# ============================================================================================
# helpers
# ============================================================================================

def _f(x):
    """As a JAX float array of the current default float type (float64 inside enable_x64)."""
    x = jnp.asarray(x)
    return x.astype(jnp.result_type(float)) if not jnp.issubdtype(x.dtype, jnp.floating) else x


def _law_inputs(params_cls, params, lrs):
    """Parameters as float arrays and the LRs in their common dtype: (params, lrs)."""
    p = params_cls(*[_f(x) for x in params])
    lrs = _f(lrs)
    return p, lrs.astype(jnp.result_type(lrs, p.L0))


def _cumsum_incl(x):
    return jnp.cumsum(x)


def _cumsum_excl(x):
    return jnp.concatenate([jnp.zeros((1,), x.dtype), jnp.cumsum(x)[:-1]])


def _drops(lrs):
    """``d_k = eta_{k-1} - eta_k`` with ``eta_{-1} = eta_0`` (so ``d_0 = 0``)."""
    return jnp.concatenate([jnp.zeros((1,), lrs.dtype), lrs[:-1] - lrs[1:]])


def _linear_recurrence(a, b):
    """``y_t = a_t * y_{t-1} + b_t`` with ``y_{-1} = 0`` for all t: one ``lax.scan``, O(T), O(1) state
    (``a``, ``b`` of shape ``(T,)`` or ``(T, K)`` for K independent recursions)."""
    def body(y, ab):
        y = ab[0] * y + ab[1]
        return y, y
    return jax.lax.scan(body, jnp.zeros(b.shape[1:], b.dtype), (a, b))[1]


# ============================================================================================
# parameters
# ============================================================================================

class MultiPowerParams(NamedTuple):
    """Multi-power law: ``L0 + A (S1 + S_W)^(-alpha) - B sum_k d_k G(eta_k^(-gamma) S_k(t))``."""
    L0: Any
    A: Any
    alpha: Any
    B: Any
    C: Any
    beta: Any
    gamma: Any
    S_W: Any


class AnnealingParams(NamedTuple):
    """LR-annealing law: ``L0 + A S1^(-alpha) - C S2`` with momentum factor ``lam``."""
    L0: Any
    A: Any
    alpha: Any
    C: Any
    lam: Any


class ConvexBoundParams(NamedTuple):
    """Convex bound as a law: ``L0 + scale * bound(D^2/G^2 = d2)``."""
    L0: Any
    scale: Any
    d2: Any


class RiverValleyParams(NamedTuple):
    """River-valley law: ``L0 + A (tau_t + tau0)^(-alpha) + lam V_t / 2``
    (sharpness ``lam``, noise ``s2``)."""
    L0: Any
    A: Any
    alpha: Any
    tau0: Any
    lam: Any
    s2: Any


class RiverValley2Params(NamedTuple):
    """Two-group river-valley law: the one-group law plus a second hill ``lam2 W_t / 2`` of its
    own sharpness ``lam2`` and noise ``s2_2`` (a fast and a slow group of hill directions)."""
    L0: Any
    A: Any
    alpha: Any
    tau0: Any
    lam: Any
    s2: Any
    lam2: Any
    s2_2: Any


class RiverValleySpectrumParams(NamedTuple):
    """River-valley law with a spectrum of hill sharpnesses: the river of :class:`RiverValleyParams`
    plus ``SPECTRUM_GROUPS`` groups of hill directions with sharpnesses log-uniform in
    ``[lam_lo, lam_hi]``, total noise ``s2`` and noise scaling ``eta^(p - 1)`` (``p = 1``: SGD on a
    fixed quadratic valley, hill level proportional to the LR)."""
    L0: Any
    A: Any
    alpha: Any
    tau0: Any
    s2: Any
    lam_lo: Any
    lam_hi: Any
    p: Any


#: Number of sharpness groups of :func:`river_valley_spectrum_law` (midpoints of K equal bins in
#: log sharpness).
SPECTRUM_GROUPS = 12


# ============================================================================================
# the laws (full curves, O(T) / O(T m))
# ============================================================================================

def multi_power_law(params: MultiPowerParams, lrs, *, nodes: int = _soe.DEFAULT_NODES) -> jax.Array:
    """The multi-power law (Luo et al. 2025) for every step, in O(T * nodes) time, O(T + nodes) memory.

    ``L(t) = L0 + A (S1(t) + S_W)^(-alpha) - LD(t)`` with ``S1(t) = sum_{s<=t} eta_s`` and

        LD(t) = B sum_{k<=t} (eta_{k-1} - eta_k) G(eta_k^(-gamma) S_k(t)),
        G(x) = 1 - (C x + 1)^(-beta),   S_k(t) = sum_{tau=k..t} eta_tau,   eta_{-1} := eta_0.

    The double sum is evaluated without approximation in ``t``/``k`` structure but with the kernel
    ``(1 + b x)^(-beta)`` written as a sum of ``nodes`` exponentials (a trapezoid rule for its
    Laplace transform on a fixed log-spaced rate grid, see ``rivervalley/_laws_soe.py``), so each
    exponential is a one-step recursion and one ``lax.scan`` covers all t: O(T * nodes) time.
    The quadrature error is ~1e-13 relative in float64 (tested against the direct O(T^2) sum).
    Steps with ``eta_k = 0`` use ``eta_k^(-gamma) = inf``: ``G = 1`` once any later LR is positive,
    ``G = 0`` while ``S_k(t) = 0``. Warmup steps give ``d_k < 0`` and add a near-constant offset
    absorbed by ``L0``. For a fit at a few observed steps, :func:`predict` with ``steps=`` uses an
    exact O(len(steps) * K) evaluation instead (K = number of steps where the LR changes).

    >>> p = MultiPowerParams(2.0, 1.0, 0.5, 10.0, 1.0, 0.5, 0.5, 0.0)
    >>> lrs = jnp.array([0.1] * 50 + [0.05] * 50)
    >>> round(float(multi_power_law(p, lrs)[-1]), 4)
    2.0084
    """
    p, lrs = _law_inputs(MultiPowerParams, params, lrs)
    s1 = _cumsum_incl(lrs)
    d = _drops(lrs)
    ld_sum = _soe_power_sum(d, lrs, p.C, p.beta, p.gamma, nodes)   # sum_k d_k (1 + b_k S_k(t))^-beta
    ld = p.B * (jnp.cumsum(d) - ld_sum)
    return p.L0 + p.A * (s1 + p.S_W) ** (-p.alpha) - ld


def _soe_power_sum(d, lrs, C, beta, gamma, nodes):
    """``sum_{k<=t} d_k (1 + C eta_k^(-gamma) S_k(t))^(-beta)`` for every t, O(T * nodes)."""
    pos = lrs > 0
    x_min = jnp.min(jnp.where(pos, lrs, jnp.inf))
    x_min = jnp.where(jnp.isfinite(x_min), x_min, 1.0)
    x_max = jnp.maximum(jnp.sum(lrs), x_min)
    rho, h = _soe.log_grid(x_min, x_max, nodes)
    safe = jnp.where(pos, lrs, 1.0)
    log_b = jnp.log(C) - gamma * jnp.log(safe)                   # b_k = C eta_k^-gamma

    def body(carry, inp):
        m_state, zero_run = carry
        d_t, eta_t, logb_t, pos_t = inp
        w, tail = _soe.power_weights(logb_t, beta, rho, h)
        dk = jnp.where(pos_t, d_t, 0.0)
        m_state = jnp.exp(-rho * eta_t) * (m_state + dk * w)
        # terms with eta_k = 0: kernel 1 while the LR stays 0, then 0 (rate infinity)
        zero_run = jnp.where(eta_t == 0, zero_run + jnp.where(pos_t, 0.0, d_t), 0.0)
        return (m_state, zero_run), (jnp.sum(m_state) + zero_run, dk * tail)

    init = (jnp.zeros_like(rho), jnp.zeros((), lrs.dtype))
    _, (main, tails) = jax.lax.scan(body, init, (d, lrs, log_b, pos))
    return main + jnp.cumsum(tails)


def lr_annealing_law(params: AnnealingParams, lrs) -> jax.Array:
    """The LR-annealing law (Tissue et al. 2024) for every step, O(T).

    ``L(t) = L0 + A S1(t)^(-alpha) - C S2(t)``, ``S1(t) = sum_{s<=t} eta_s``,
    ``S2(t) = sum_{i<=t} m_i``, ``m_i = lam m_{i-1} + (eta_{i-1} - eta_i)``, ``m_{-1} = 0``,
    ``eta_{-1} := eta_0``. (``m`` by a linear-recurrence ``lax.scan``, ``S2`` by a cumsum.)

    >>> p = AnnealingParams(2.0, 1.0, 0.5, 0.1, 0.999)
    >>> round(float(lr_annealing_law(p, jnp.array([0.1] * 50 + [0.05] * 50))[-1]), 4)
    2.1212
    """
    p, lrs = _law_inputs(AnnealingParams, params, lrs)
    s1 = _cumsum_incl(lrs)
    m = _linear_recurrence(jnp.full_like(lrs, p.lam), _drops(lrs))
    s2 = jnp.cumsum(m)
    return p.L0 + p.A * s1 ** (-p.alpha) - p.C * s2


def convex_bound(lrs, d2=1.0, *, nodes: int = _soe.DEFAULT_NODES) -> jax.Array:
    """The last-iterate bound for SGD on a convex G-Lipschitz problem (G = 1), for every horizon.

    With ``T = t + 1`` steps ``eta_1..eta_T`` (1-indexed: ``eta_{i} = lrs[i-1]``), ``D = ||x_1 - x*||``
    and ``d2 = D^2 / G^2`` (Defazio et al. 2023, Thm. 10; Schaipp et al. 2025, eq. (3)):

        bound(T) = (d2 + sum_t eta_t^2) / (2 sum_t eta_t)
                   + 1/2 sum_{k=1}^{T-1} eta_k / (sum_{t>k} eta_t) * (sum_{t>=k} eta_t^2) / (sum_{t>=k} eta_t)

    Telescoping ``eta_k / (a_k b_k) = 1/a_k - 1/b_k`` (``a_k = sum_{t>k}``, ``b_k = sum_{t>=k}``) gives
    ``(eta_{T-1}^2 + eta_T^2) / eta_T - Q_T / P_T + sum_{k=1}^{T-2} eta_k^2 / sum_{t>k} eta_t`` for
    the last sum, whose kernel ``1/x`` becomes ``nodes`` exponentials (``1/x = int exp(-rho x)``):
    O(T * nodes). The bound is ``inf`` where ``eta_T = 0`` (the term ``k = T-1`` divides by it).

    >>> round(float(convex_bound(jnp.full(100, 0.1))[-1]), 4)
    0.3589
    """
    lrs = _f(lrs)
    d2 = _f(d2)
    dt = jnp.result_type(lrs, d2)
    lrs = lrs.astype(dt)
    p = jnp.cumsum(lrs)
    q = jnp.cumsum(lrs ** 2)
    prev1 = jnp.concatenate([jnp.zeros((1,), dt), lrs[:-1]])
    prev2 = jnp.concatenate([jnp.zeros((2,), dt), lrs[:-2]])[: lrs.shape[0]]
    pos = lrs > 0
    x_min = jnp.min(jnp.where(pos, lrs, jnp.inf))
    x_min = jnp.where(jnp.isfinite(x_min), x_min, 1.0)
    rho, h = _soe.log_grid(x_min, jnp.maximum(p[-1], x_min), nodes)
    w = h * rho

    def body(n, inp):
        e0, e1, e2 = inp
        n = jnp.exp(-rho * e0) * n + e2 ** 2 * jnp.exp(-rho * (e1 + e0))
        return n, jnp.sum(w * n)

    _, z = jax.lax.scan(body, jnp.zeros_like(rho), (lrs, prev1, prev2))
    safe = jnp.where(pos, lrs, 1.0)
    term3 = 0.5 * ((prev1 ** 2 + lrs ** 2) / safe - q / p + z)
    term3 = jnp.where(pos, term3, jnp.inf)
    term3 = term3.at[0].set(0.0)
    return (d2 + q) / (2 * p) + term3


def convex_bound_law(params: ConvexBoundParams, lrs, *, nodes: int = _soe.DEFAULT_NODES) -> jax.Array:
    """The convex bound used as a loss law: ``L(t) = L0 + scale * convex_bound(lrs[:t+1], d2)``.

    >>> round(float(convex_bound_law(ConvexBoundParams(2.0, 1.0, 1.0), jnp.full(100, 0.1))[-1]), 4)
    2.3589
    """
    p = ConvexBoundParams(*[_f(x) for x in params])
    return p.L0 + p.scale * convex_bound(lrs, p.d2, nodes=nodes)


def river_valley_law(params: RiverValleyParams, lrs) -> jax.Array:
    """The river-valley law: river progress in river time plus the exact hill relaxation, O(T).

        L(t) = L0 + A (tau_t + tau0)^(-alpha) + lam V_t / 2,     tau_t = sum_{s<t} eta_s,
        V_0 = 0,   V_{t+1} = (1 - eta_t lam)^2 V_t + eta_t^2 s2.

    How it reads (THEORY.md §4): the loss is the river loss, a power law in the *area under the
    schedule* (river time) with offset ``tau0``, plus the hill loss of one effective sharpness
    ``lam`` driven by gradient noise ``s2``. At a constant LR the hill term relaxes within
    ~``1/(2 eta lam)`` steps to ``eta s2 / (2 (2 - eta lam))`` ~ ``eta s2 / 4``; a decay removes it
    (the WSD drop) while the river term only slows down. ``V`` is computed by a ``lax.scan`` of
    the affine recurrence (O(T) work, O(1) state, no T x T matrix).

    >>> p = RiverValleyParams(1.0, 1.0, 0.5, 1.0, 2.0, 1.0)
    >>> round(float(river_valley_law(p, jnp.full(1000, 0.1))[-1]), 4)
    1.1273
    """
    p, lrs = _law_inputs(RiverValleyParams, params, lrs)
    return _river_term(p, lrs) + _hill_term(lrs, p.lam, p.s2)


def _river_term(p, lrs):
    """L0 + A (tau_t + tau0)^(-alpha), tau_t = sum_{s<t} eta_s."""
    return p.L0 + p.A * (_cumsum_excl(lrs) + p.tau0) ** (-p.alpha)


def _hill_term(lrs, lam, s2):
    """lam V_t / 2 with V_0 = 0, V_{t+1} = (1 - eta_t lam)^2 V_t + eta_t^2 s2 (a lax.scan)."""
    v_next = _linear_recurrence((1 - lrs * lam) ** 2, lrs ** 2 * s2)           # V_1 .. V_T
    v = jnp.concatenate([jnp.zeros((1,), lrs.dtype), v_next[:-1]])
    return 0.5 * lam * v


def river_valley_2_law(params: RiverValley2Params, lrs) -> jax.Array:
    """The river-valley law with two groups of hill directions, O(T).

        L(t) = L0 + A (tau_t + tau0)^(-alpha) + lam V_t / 2 + lam2 W_t / 2,

    with V and W the exact second-moment recursions of :func:`river_valley_law` for (lam, s2) and
    (lam2, s2_2). THEORY.md's d-dimensional valley has a spectrum of hill sharpnesses; one group
    must relax at a single rate, so on real AdamW runs it follows the LR almost instantly and
    over-predicts the drop early in long cooldowns. A second, slow group (relaxing over
    ~1 / (2 eta lam2) steps) lets part of the drop come late, as the real curves do.

    >>> p = RiverValley2Params(1.0, 1.0, 0.5, 1.0, 2.0, 1.0, 0.1, 0.5)
    >>> round(float(river_valley_2_law(p, jnp.full(1000, 0.1))[-1]), 4)
    1.1399
    """
    p, lrs = _law_inputs(RiverValley2Params, params, lrs)
    return _river_term(p, lrs) + _hill_term(lrs, p.lam, p.s2) + _hill_term(lrs, p.lam2, p.s2_2)


def _spectrum(lam_lo, lam_hi):
    u = (jnp.arange(SPECTRUM_GROUPS) + 0.5) / SPECTRUM_GROUPS
    return jnp.exp(jnp.log(lam_lo) + u * (jnp.log(lam_hi) - jnp.log(lam_lo)))


def _noise_injection(eta, s2, p):
    """``eta^(1 + p) s2`` (``= eta^2 s2`` at ``p = 1``), 0 at ``eta = 0``, with finite derivatives."""
    pos = eta > 0
    return jnp.where(pos, jnp.exp((1 + p) * jnp.log(jnp.where(pos, eta, 1.0))), 0.0) * s2


def river_valley_spectrum_law(params: RiverValleySpectrumParams, lrs) -> jax.Array:
    """The river-valley law with a spectrum of hill sharpnesses, O(T K) (K = ``SPECTRUM_GROUPS``).

        L(t) = L0 + A (tau_t + tau0)^(-alpha) + sum_i lam_i V_{i,t} / 2,
        V_{i,0} = 0,   V_{i,t+1} = (1 - eta_t lam_i)^2 V_{i,t} + eta_t^(1+p) s2 / K,

    with ``lam_i`` log-uniform in ``[lam_lo, lam_hi]`` (K bin midpoints). THEORY.md §4's
    d-dimensional valley has a spectrum of sharpnesses, each hill direction relaxing by the exact
    recursion at its own rate ``2 eta lam_i``: a decay reveals the sharp directions' drop at once
    and the flat ones' late. The noise injection ``eta^(1+p) s2`` generalizes SGD's ``eta^2 s2``
    (``p = 1``, hill level ``~ eta s2 / 4`` at a constant LR) to a hill level ``~ eta^p``: an
    adaptive optimizer's update noise need not scale like SGD's (fitted, not assumed).
    8 parameters, like the multi-power law.

    >>> p = RiverValleySpectrumParams(1.0, 1.0, 0.5, 1.0, 1.0, 0.5, 5.0, 1.0)
    >>> round(float(river_valley_spectrum_law(p, jnp.full(1000, 0.1))[-1]), 4)
    1.1274
    """
    p, lrs = _law_inputs(RiverValleySpectrumParams, params, lrs)
    return _river_term(p, lrs) + jnp.sum(_spectrum_groups(p, lrs), axis=0)


def _spectrum_groups(p, lrs):
    """``lam_i V_{i,t} / 2`` for every group (K, T)."""
    lam = _spectrum(p.lam_lo, p.lam_hi)
    a = (1 - lrs[:, None] * lam) ** 2
    b = jnp.broadcast_to(_noise_injection(lrs, p.s2 / SPECTRUM_GROUPS, p.p)[:, None], a.shape)
    v_next = _linear_recurrence(a, b)                                           # (T, K)
    v = jnp.concatenate([jnp.zeros((1, lam.shape[0]), lrs.dtype), v_next[:-1]])
    return (0.5 * lam * v).T


# ============================================================================================
# exact evaluation at a few steps (used by fit): prepare (NumPy, once) + evaluate (JAX)
# ============================================================================================

def _prep_full(lrs: np.ndarray, steps: np.ndarray) -> dict:
    return {"lrs": lrs, "steps": steps}


def _segments_prepare(lrs: np.ndarray, steps: np.ndarray) -> dict:
    """The schedule as runs of constant LR, cut at every observed step (NumPy, once per fit).

    The hill recursion over a run of ``n`` steps at one LR is one affine map (below), so the
    river-valley laws cost O(number of runs) at the observed steps instead of O(T): a 50k-step
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


def _hill_at(prep: dict, lam, s2):
    """``lam V_s / 2`` at the observed steps from the runs of :func:`_segments_prepare` (exact).

    Over a run of ``n`` steps at LR ``eta``: ``V <- a^n V + eta^2 s2 (1 - a^n) / (1 - a)`` with
    ``a = (1 - eta lam)^2`` (the n-fold composition of one step of the recursion).
    """
    eta, n, obs = prep["eta"], prep["n"], prep["obs"]
    if eta.shape[0] == 0:
        return jnp.zeros(obs.shape, jnp.result_type(lam, s2, float))
    la = 2 * jnp.log(jnp.maximum(jnp.abs(1 - eta * lam), 1e-300))          # log a
    small = jnp.abs(la) < 1e-12
    la_s = jnp.where(small, 1.0, la)
    an = jnp.exp(n * la)
    geo = jnp.where(small, n, jnp.expm1(n * la_s) / jnp.expm1(la_s))
    v = _linear_recurrence(an, eta ** 2 * s2 * geo)
    return 0.5 * lam * jnp.where(obs >= 0, v[jnp.maximum(obs, 0)], 0.0)


def _rv_at(params: RiverValleyParams, prep: dict) -> jax.Array:
    p = RiverValleyParams(*[_f(x) for x in params])
    return p.L0 + p.A * (prep["tau"] + p.tau0) ** (-p.alpha) + _hill_at(prep, p.lam, p.s2)


def _rv2_at(params: RiverValley2Params, prep: dict) -> jax.Array:
    p = RiverValley2Params(*[_f(x) for x in params])
    return (p.L0 + p.A * (prep["tau"] + p.tau0) ** (-p.alpha) + _hill_at(prep, p.lam, p.s2)
            + _hill_at(prep, p.lam2, p.s2_2))


def _spectrum_at(params: RiverValleySpectrumParams, prep: dict) -> jax.Array:
    p = RiverValleySpectrumParams(*[_f(x) for x in params])
    eta, n, obs = prep["eta"], prep["n"], prep["obs"]
    river = p.L0 + p.A * (prep["tau"] + p.tau0) ** (-p.alpha)
    if eta.shape[0] == 0:
        return river
    lam = _spectrum(p.lam_lo, p.lam_hi)
    e = eta[:, None]
    la = 2 * jnp.log(jnp.maximum(jnp.abs(1 - e * lam), 1e-300))
    small = jnp.abs(la) < 1e-12
    la_s = jnp.where(small, 1.0, la)
    an = jnp.exp(n[:, None] * la)
    geo = jnp.where(small, n[:, None], jnp.expm1(n[:, None] * la_s) / jnp.expm1(la_s))
    inj = _noise_injection(eta, p.s2 / SPECTRUM_GROUPS, p.p)[:, None]
    v = _linear_recurrence(an, inj * geo)                                        # (runs, K)
    h = 0.5 * jnp.sum(lam * v, axis=1)
    return river + jnp.where(obs >= 0, h[jnp.maximum(obs, 0)], 0.0)


def _mpl_prepare(lrs: np.ndarray, steps: np.ndarray) -> dict:
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


def _mpl_at(params: MultiPowerParams, prep: dict) -> jax.Array:
    p = MultiPowerParams(*[_f(x) for x in params])
    s1 = prep["s1"]
    ld = _mpl_ld(prep["n"].shape[0], jnp.log(p.C), p.beta, p.gamma, prep["d"], prep["log_eta"],
                 prep["log_x"], prep["rows"]) + prep["zero"]
    return p.L0 + p.A * (s1 + p.S_W) ** (-p.alpha) - p.B * ld


def _convex_prepare(lrs: np.ndarray, steps: np.ndarray) -> dict:
    a1, a2 = _convex_terms_direct(lrs, steps)
    return {"a1": a1, "a2": a2}


def _convex_terms_direct(lrs: np.ndarray, steps: np.ndarray):
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


def _convex_at(params: ConvexBoundParams, prep: dict) -> jax.Array:
    p = ConvexBoundParams(*[_f(x) for x in params])
    return p.L0 + p.scale * (p.d2 * prep["a1"] + prep["a2"])


# ============================================================================================
# Law objects
# ============================================================================================

@dataclasses.dataclass(frozen=True)
class Law:
    """A loss-curve law: its function, parameter type, bounds, and how to evaluate it at steps.

    Attributes:
      name: short name ("multi_power", "lr_annealing", "convex_bound", "river_valley").
      params: the parameter NamedTuple class.
      curve: ``curve(params, lrs) -> losses`` for every step (O(T) or O(T m)).
      lower, upper: bounds per parameter (``params`` instances).
      log_scale: names of parameters fitted in log space (positive, scale-free).
      guess: ``guess(lrs_list, losses_list, steps_list) -> params`` initial values from data.
      prepare, at: exact evaluation at given steps (``prepare`` in NumPy once, ``at`` in JAX).
      parts: ``parts(params, lrs) -> (river, (hill_1, ...))`` for a river-valley law (the river
        part and one hill part per group, summing to ``curve``); ``None`` for the other laws.
      check: ``check(params, lrs_list) -> [message, ...]``: degenerate fits (a group of hill
        directions that collapsed), reported by :func:`rivervalley.laws.fit` as ``FitWarning``.
    """
    name: str
    params: type
    curve: Callable
    lower: Any
    upper: Any
    log_scale: tuple[str, ...]
    guess: Callable
    prepare: Callable = _prep_full
    at: Callable | None = None
    parts: Callable | None = None
    check: Callable | None = None

    def evaluate_at(self, params, prep):
        if self.at is not None:
            return self.at(params, prep)
        return self.curve(params, prep["lrs"])[prep["steps"]]


def _data_scales(lrs_list, losses_list, steps_list):
    peak = max(float(np.max(l)) for l in lrs_list)
    lmin = min(float(np.min(y)) for y in losses_list)
    # a mid-run point of the first curve for the power-law amplitude
    y0, s0, l0 = losses_list[0], steps_list[0], lrs_list[0]
    i = len(y0) // 2
    area = float(np.sum(l0[: s0[i] + 1]))
    return peak, lmin, float(y0[i]), max(area, 1e-12)


def _guess_mpl(lrs_list, losses_list, steps_list):
    peak, lmin, ymid, area = _data_scales(lrs_list, losses_list, steps_list)
    L0 = 0.7 * lmin
    return MultiPowerParams(L0, (ymid - L0) * area ** 0.5, 0.5, 0.05 * lmin / peak,
                            0.01 / math.sqrt(peak), 0.5, 0.5, 0.0)


def _guess_ann(lrs_list, losses_list, steps_list):
    peak, lmin, ymid, area = _data_scales(lrs_list, losses_list, steps_list)
    L0 = 0.7 * lmin
    return AnnealingParams(L0, (ymid - L0) * area ** 0.5, 0.5, 0.05 * lmin * 1e-3 / peak, 0.999)


def _guess_rv(lrs_list, losses_list, steps_list):
    peak, lmin, ymid, area = _data_scales(lrs_list, losses_list, steps_list)
    L0 = 0.7 * lmin
    return RiverValleyParams(L0, (ymid - L0) * area ** 0.5, 0.5, 10 * peak, 1.0 / (1000 * peak),
                             0.2 * lmin / peak)


def _guess_rv2(lrs_list, losses_list, steps_list):
    g = _guess_rv(lrs_list, losses_list, steps_list)
    # the second group: 20x flatter (relaxing 20x slower), half the noise
    return RiverValley2Params(*g, g.lam / 20.0, g.s2 / 2.0)


def _guess_spectrum(lrs_list, losses_list, steps_list):
    g = _guess_rv(lrs_list, losses_list, steps_list)
    # a decade and a half either side of the one-group guess, SGD's noise scaling
    return RiverValleySpectrumParams(g.L0, g.A, g.alpha, g.tau0, g.s2, g.lam / 30, g.lam * 3, 1.0)


def _guess_convex(lrs_list, losses_list, steps_list):
    # the law is linear in (L0, scale, scale * d2): solve that least-squares problem
    rows, ys = [], []
    for lrs, y, s in zip(lrs_list, losses_list, steps_list):
        a1, a2 = _convex_terms_direct(np.asarray(lrs, np.float64), np.asarray(s))
        ok = np.isfinite(a2)
        rows.append(np.stack([np.ones(ok.sum()), a2[ok], a1[ok]], 1))
        ys.append(np.asarray(y, np.float64)[ok])
    X, Y = np.concatenate(rows), np.concatenate(ys)
    coef = np.linalg.lstsq(X, Y, rcond=None)[0]
    lmin = float(Y.min())
    L0 = float(np.clip(coef[0], 0.0, lmin * 0.999))
    scale = float(coef[1]) if coef[1] > 0 else 1.0
    d2 = float(coef[2] / scale) if coef[2] > 0 else 1.0
    return ConvexBoundParams(L0, scale, d2)


def _rv_parts(params, lrs):
    p, lrs = _law_inputs(RiverValleyParams, params, lrs)
    return _river_term(p, lrs), (_hill_term(lrs, p.lam, p.s2),)


def _rv2_parts(params, lrs):
    p, lrs = _law_inputs(RiverValley2Params, params, lrs)
    return _river_term(p, lrs), (_hill_term(lrs, p.lam, p.s2), _hill_term(lrs, p.lam2, p.s2_2))


def _groups_check(groups, lrs_list) -> list[str]:
    """Messages for hill groups ``[(lam, s2), ...]`` that collapsed on the fitted runs.

    A group collapsed when its steady-state hill loss at the peak LR is below 1% of the total
    (it explains nothing), or when it relaxes over more than 10 run lengths (``1 / (2 eta lam)``
    steps: it never relaxes, so it is a drift of the river, not a hill).
    """
    peak = max(float(np.max(l)) for l in lrs_list)
    T = max(len(l) for l in lrs_list)
    h = [peak * s2 / (2 * max(2 - peak * lam, 1e-12)) for lam, s2 in groups]
    tot = sum(h)
    out = []
    for i, ((lam, _), hi) in enumerate(zip(groups, h)):
        relax = 1.0 / max(2 * peak * lam, 1e-300)
        if tot > 0 and hi < 0.01 * tot:
            out.append(f"hill group {i + 1} collapsed: {100 * hi / tot:.2g}% of the steady-state hill "
                       "loss (< 1%); a law with fewer groups fits these runs as well")
        elif relax > 10 * T:
            out.append(f"hill group {i + 1} collapsed: it relaxes over ~{relax:.3g} steps, more than "
                       f"10 run lengths ({T} steps): a drift of the river, not a hill")
    return out


def _rv_check(params, lrs_list):
    return _groups_check([(params.lam, params.s2)], lrs_list) if params.s2 > 0 else []


def _rv2_check(params, lrs_list):
    return _groups_check([(params.lam, params.s2), (params.lam2, params.s2_2)], lrs_list)


def _spectrum_parts(params, lrs):
    p, lrs = _law_inputs(RiverValleySpectrumParams, params, lrs)
    return _river_term(p, lrs), tuple(_spectrum_groups(p, lrs))


def _spectrum_check(params, lrs_list):
    # (lam_lo, lam_hi) and (lam_hi, lam_lo) are the same spectrum: only the ratio counts
    out = []
    lo, hi = sorted((float(params.lam_lo), float(params.lam_hi)))
    if hi < lo * 1.05:
        out.append(f"the spectrum collapsed to one sharpness (lam_lo={params.lam_lo:.4g}, "
                   f"lam_hi={params.lam_hi:.4g}): river_valley fits these runs as well")
    return out


_INF = math.inf

#: The multi-power law (Luo et al. 2025): power-law river progress in the LR area plus a
#: power-law loss reduction from each LR drop (8 parameters).
MULTI_POWER = Law(
    "multi_power", MultiPowerParams, multi_power_law,
    MultiPowerParams(0.0, 1e-12, 0.01, 1e-12, 1e-12, 0.01, 0.0, 0.0),
    MultiPowerParams(_INF, _INF, 3.0, _INF, _INF, 5.0, 2.0, _INF),
    ("A", "B", "C"), _guess_mpl, _mpl_prepare, _mpl_at)
#: The LR-annealing law (Tissue et al. 2024): L0 + A S1^-alpha - C S2, S2 the momentum-smoothed
#: annealing area (5 parameters).
LR_ANNEALING = Law(
    "lr_annealing", AnnealingParams, lr_annealing_law,
    AnnealingParams(0.0, 1e-12, 0.01, 1e-12, 0.9),
    AnnealingParams(_INF, _INF, 3.0, _INF, 0.99999),
    ("A", "C"), _guess_ann)
#: The convex-optimization bound of the last iterate (Schaipp et al. 2025), scaled and shifted
#: (3 parameters).
CONVEX_BOUND = Law(
    "convex_bound", ConvexBoundParams, convex_bound_law,
    ConvexBoundParams(0.0, 1e-12, 1e-12), ConvexBoundParams(_INF, _INF, _INF),
    ("scale", "d2"), _guess_convex, _convex_prepare, _convex_at)
#: River progress in river time plus one hill group relaxing by the exact second-moment
#: recursion (THEORY.md §4; 6 parameters).
RIVER_VALLEY = Law(
    "river_valley", RiverValleyParams, river_valley_law,
    RiverValleyParams(0.0, 1e-12, 0.01, 1e-12, 1e-12, 1e-12),
    RiverValleyParams(_INF, _INF, 3.0, _INF, _INF, _INF),
    ("A", "tau0", "lam", "s2"), _guess_rv, _segments_prepare, _rv_at, parts=_rv_parts,
    check=_rv_check)
#: The river-valley law with two hill groups (a fast and a slow sharpness; 8 parameters).
RIVER_VALLEY_2 = Law(
    "river_valley_2", RiverValley2Params, river_valley_2_law,
    RiverValley2Params(0.0, 1e-12, 0.01, 1e-12, 1e-12, 1e-12, 1e-12, 1e-12),
    RiverValley2Params(_INF, _INF, 3.0, _INF, _INF, _INF, _INF, _INF),
    ("A", "tau0", "lam", "s2", "lam2", "s2_2"), _guess_rv2, _segments_prepare, _rv2_at,
    parts=_rv2_parts, check=_rv2_check)

#: The river-valley law with a log-uniform spectrum of hill sharpnesses between lam_lo and
#: lam_hi, each relaxing by the exact recursion, and a fitted LR exponent of the hill level
#: (8 parameters).
RIVER_VALLEY_SPECTRUM = Law(
    "river_valley_spectrum", RiverValleySpectrumParams, river_valley_spectrum_law,
    RiverValleySpectrumParams(0.0, 1e-12, 0.01, 1e-12, 1e-12, 1e-9, 1e-9, -0.9),
    RiverValleySpectrumParams(_INF, _INF, 3.0, _INF, _INF, _INF, _INF, 3.0),
    ("A", "tau0", "s2", "lam_lo", "lam_hi"), _guess_spectrum, _segments_prepare, _spectrum_at,
    parts=_spectrum_parts, check=_spectrum_check)

#: All laws by name.
LAWS: dict[str, Law] = {law.name: law for law in (MULTI_POWER, LR_ANNEALING, CONVEX_BOUND, RIVER_VALLEY,
                                                   RIVER_VALLEY_2, RIVER_VALLEY_SPECTRUM)}


def _law(law: Law | str) -> Law:
    if isinstance(law, Law):
        return law
    if not isinstance(law, str) or law not in LAWS:
        raise ValueError(f"law={law!r} is not one of {', '.join(LAWS)}")
    return LAWS[law]


def _params(law: Law, params):
    """``params`` as the law's NamedTuple; a wrong count or a non-finite value is an error."""
    try:
        vals = tuple(params)
    except TypeError:
        raise ValueError(f"params={params!r} must be a sequence of {len(law.params._fields)} numbers "
                         f"({', '.join(law.params._fields)})") from None
    if len(vals) != len(law.params._fields):
        raise ValueError(f"params has {len(vals)} values but law {law.name!r} has "
                         f"{len(law.params._fields)}: {', '.join(law.params._fields)}")
    if not is_traced(vals):
        for name, v in zip(law.params._fields, vals):
            if isinstance(v, bool) or np.ndim(v) != 0:
                raise ValueError(f"params.{name}={v!r} must be a real number")
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"params.{name}={v!r} must be a real number") from None
            if not math.isfinite(fv):
                raise ValueError(f"params.{name}={v!r} must be finite")
    return law.params(*vals)


def _check_lrs(lrs, name: str = "lrs"):
    """A non-empty 1-D array of finite LRs >= 0 (traced arrays pass unchecked)."""
    if is_traced(lrs):
        return jnp.asarray(lrs)
    if isinstance(lrs, bool):
        raise ValueError(f"{name}={lrs!r} must be an array of learning rates")
    try:
        a = np.asarray(lrs, dtype=np.float64) if not isinstance(lrs, jax.Array) else np.asarray(lrs)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of learning rates") from None
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} has shape {a.shape}: expected a non-empty 1-D array (the LR of "
                         "every step 0 .. T-1)")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise ValueError(f"{name} has dtype {a.dtype}: expected real learning rates")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"{name} must be finite and >= 0 (learning rates)")
    return lrs


def _as_steps(steps, n_lrs: int, n_losses: int, name: str = "steps") -> np.ndarray:
    if steps is None:
        if n_losses != n_lrs:
            raise ValueError(f"losses has {n_losses} entries but lrs has {n_lrs}: pass steps= "
                             "(the step of each loss) when losses are not given for every step")
        return np.arange(n_lrs)
    s = np.asarray(steps)
    if s.ndim != 1 or len(s) != n_losses:
        raise ValueError(f"{name} has shape {s.shape}, expected ({n_losses},) like losses")
    if s.dtype == bool or not (np.issubdtype(s.dtype, np.integer) or np.issubdtype(s.dtype, np.floating)):
        raise ValueError(f"{name} must be whole numbers, got dtype {s.dtype}")
    if not np.issubdtype(s.dtype, np.integer):
        if not np.all(np.isfinite(s)) or not np.all(s == np.round(s)):
            raise ValueError(f"{name} must be whole numbers, got {s[:5]}...")
        s = s.astype(np.int64)
    if len(s) and (s.min() < 0 or s.max() >= n_lrs):
        raise ValueError(f"{name} spans {s.min()}..{s.max()}, outside 0..{n_lrs - 1} (the steps of lrs)")
    return s


def predict(law: Law | str, params, lrs, steps=None) -> jax.Array:
    """The law's loss at every step of ``lrs`` (``steps=None``) or at the given ``steps``.

    Args:
      law: a :class:`Law` or its name.
      params: the law's parameter NamedTuple (or a sequence in its field order).
      lrs: LR of every step ``0 .. T-1`` (non-empty, finite, >= 0).
      steps: optional integer steps in ``[0, T)``; the multi-power law and the convex bound are
        then evaluated exactly at those steps (O(len(steps) * T) at most) instead of via the
        O(T m) scan.

    >>> round(float(predict("lr_annealing", (2.0, 1.0, 0.5, 1.0, 0.999), [0.1] * 100, steps=[99])[0]), 4)
    2.3162
    >>> predict("lr_annealing", (2.0, 1.0, 0.5, 1.0, 0.999), [])
    Traceback (most recent call last):
    ...
    ValueError: lrs has shape (0,): expected a non-empty 1-D array (the LR of every step 0 .. T-1)
    """
    law = _law(law)
    params = _params(law, params)
    lrs = _check_lrs(lrs)
    if steps is None:
        return law.curve(params, jnp.asarray(lrs))
    lrs_np = np.asarray(lrs, dtype=np.float64)
    s = _as_steps(steps, len(lrs_np), len(np.atleast_1d(steps)))
    prep = law.prepare(lrs_np, s)
    prep = jax.tree_util.tree_map(jnp.asarray, prep)
    return _jitted_at(law)(params, prep)


@functools.cache
def _jitted_at(law: Law):
    """One compiled evaluator per law (registered or user-defined: keyed by the Law itself)."""
    return jax.jit(law.evaluate_at)


class Parts(NamedTuple):
    """The river / hill split of a river-valley law (:func:`parts`): ``river + hill`` is the law.

    Attributes:
      river: ``L0 + A (tau_t + tau0)^(-alpha)``, the loss on the river (what a full decay reveals).
      hill: the total hill loss, the sum of ``groups``.
      groups: the hill loss of each group of hill directions (one array per group).
    """
    river: jax.Array
    hill: jax.Array
    groups: tuple


def parts(law: Law | str, params, lrs) -> Parts:
    """The river and hill parts of a river-valley law at every step; ``river + hill`` = the law.

    Raises ``ValueError`` for a law without a river / hill split (multi-power, LR-annealing,
    convex bound: their terms are not the loss of a landscape's parts).

    >>> p = RiverValley2Params(1.0, 1.0, 0.5, 1.0, 2.0, 1.0, 0.1, 0.5)
    >>> r = parts("river_valley_2", p, np.full(1000, 0.1))
    >>> [round(float(x[-1]), 4) for x in (r.river, r.hill, r.groups[0], r.groups[1])]
    [1.0996, 0.0403, 0.0278, 0.0126]
    """
    law = _law(law)
    if law.parts is None:
        have = ", ".join(n for n, l in LAWS.items() if l.parts is not None)
        raise ValueError(f"law {law.name!r} has no river / hill parts (laws that have: {have})")
    params = _params(law, params)
    lrs = jnp.asarray(_check_lrs(lrs))
    river, groups = law.parts(params, lrs)
    hill = functools.reduce(lambda a, b: a + b, groups)
    return Parts(river, hill, tuple(groups))
