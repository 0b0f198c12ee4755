"""The loss-curve laws as formulas of the whole curve (private; re-exported by :mod:`rivervalley.laws`).

Each law maps ``lrs``, the learning rate eta_t of every step t = 0 .. T-1, to a loss at every step,
in O(T) (cumulative sums, a linear-recurrence ``lax.scan``) or O(T m) with a fixed number ``m`` of
exponentials (``rivervalley/_laws_soe.py``); nothing builds a T x T matrix. Where the loss at step
t sits: the river-valley laws give the loss of the weights after t updates (river time
``tau_t = sum_{s<t} eta_s``, :func:`rivervalley.theory.river_time`); the multi-power and
LR-annealing laws and the convex bound follow their papers, whose sums include step t.

Parameter names. The river-valley laws share the river's four parameters, first, in this order:
the river loss ``L0 + A (tau_t + tau0)^(-alpha)`` (:data:`RIVER_FIELDS`). Their hill is named as
in :mod:`rivervalley.theory` and :mod:`rivervalley.landscapes`: ``sharpness`` (lambda) and
``noise_var`` (sigma^2, the variance the update noise adds per step at unit LR), ``sharpness_2`` /
``noise_var_2`` for a second group of hill directions, ``sharpness_lo`` / ``sharpness_hi`` for the
ends of a spectrum and ``p`` for the LR exponent of its noise. The other laws keep the symbols of
their papers, so that a fit reads against the paper: multi-power ``L0, A, alpha, B, C, beta,
gamma, S_W`` (Luo et al. 2025), LR annealing ``L0, A, alpha, C, lam`` (Tissue et al. 2024; ``lam``
is their decay factor lambda of the annealing momentum, not a sharpness), convex bound
``L0, scale, d2`` (``d2 = D^2 / G^2``).

Every parameter may be a number or a (traced) array: :func:`rivervalley.laws.fit` differentiates
the laws through ``jax.jacfwd``; the computation runs in the current default float type.
"""

from __future__ import annotations

import collections
import functools
import operator

import jax
import jax.numpy as jnp

from rivervalley import _laws_soe as _soe
from rivervalley.protocols import Array, LearningRates
from rivervalley.theory import river_time

#: The river's parameters, the first four of every river-valley law:
#: the river loss ``L0 + A (tau_t + tau0)^(-alpha)``.
RIVER_FIELDS = ("L0", "A", "alpha", "tau0")

#: Number of sharpness groups of :func:`river_valley_spectrum_law` (midpoints of K equal bins in
#: log sharpness).
SPECTRUM_GROUPS = 12


def _params_type(name: str, fields: tuple[str, ...], doc: str) -> type:
    """A NamedTuple class of one law's parameters (each a number or an array)."""
    cls = collections.namedtuple(name, fields, module=__name__)
    cls.__doc__ = doc
    return cls


MultiPowerParams = _params_type(
    "MultiPowerParams", ("L0", "A", "alpha", "B", "C", "beta", "gamma", "S_W"),
    """Multi-power law: ``L0 + A (S1 + S_W)^(-alpha) - B sum_k d_k G(eta_k^(-gamma) S_k(t))``,
    ``G(x) = 1 - (C x + 1)^(-beta)`` (Luo et al. 2025's symbols).""")

AnnealingParams = _params_type(
    "AnnealingParams", ("L0", "A", "alpha", "C", "lam"),
    """LR-annealing law: ``L0 + A S1^(-alpha) - C S2``, ``S2`` the annealing area of a momentum
    with decay factor ``lam`` (Tissue et al. 2024's lambda; not a sharpness).""")

ConvexBoundParams = _params_type(
    "ConvexBoundParams", ("L0", "scale", "d2"),
    """Convex bound as a law: ``L0 + scale * bound(D^2/G^2 = d2)``.""")

RiverValleyParams = _params_type(
    "RiverValleyParams", RIVER_FIELDS + ("sharpness", "noise_var"),
    """River-valley law: ``L0 + A (tau_t + tau0)^(-alpha) + sharpness V_t / 2``, ``V`` the hill
    second moment driven by ``noise_var``.""")

RiverValley2Params = _params_type(
    "RiverValley2Params", RiverValleyParams._fields + ("sharpness_2", "noise_var_2"),
    """Two-group river-valley law: the one-group law plus a second hill ``sharpness_2 W_t / 2`` with
    its own ``noise_var_2`` (a fast and a slow group of hill directions).""")

RiverValleySpectrumParams = _params_type(
    "RiverValleySpectrumParams", RIVER_FIELDS + ("noise_var", "sharpness_lo", "sharpness_hi", "p"),
    """River-valley law with a spectrum of hill sharpnesses: the river of :class:`RiverValleyParams`
    plus ``SPECTRUM_GROUPS`` groups of hill directions with sharpnesses log-uniform in
    ``[sharpness_lo, sharpness_hi]``, total noise ``noise_var`` (``noise_var / K`` per group) and
    noise injection ``eta^(1 + p)`` (``p = 1``: SGD on a fixed quadratic valley, hill level
    proportional to the LR).""")


# ============================================================================================
# shared pieces
# ============================================================================================

def as_float(x: Array) -> jax.Array:
    """As a JAX float array of the current default float type (float64 inside enable_x64)."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def float_params(params):
    """``params`` (a law's NamedTuple) with every field a float array."""
    return type(params)(*map(as_float, params))


def _law_inputs(params_cls, params, lrs):
    """Parameters as float arrays and the LRs in their common dtype: (params, lrs)."""
    p = params_cls(*map(as_float, params))
    lrs = as_float(lrs)
    return p, lrs.astype(jnp.result_type(lrs, p.L0))


def _drops(lrs):
    """``d_k = eta_{k-1} - eta_k`` with ``eta_{-1} = eta_0`` (so ``d_0 = 0``)."""
    return jnp.concatenate([jnp.zeros((1,), lrs.dtype), lrs[:-1] - lrs[1:]])


def _smallest_positive(lrs):
    """The smallest positive LR (1 where there is none: the sum-of-exponentials grid then has no
    positive rate to resolve, and any positive scale does)."""
    x_min = jnp.min(jnp.where(lrs > 0, lrs, jnp.inf))
    return jnp.where(jnp.isfinite(x_min), x_min, 1.0)


def linear_recurrence(a, b):
    """``y_t = a_t * y_{t-1} + b_t`` with ``y_{-1} = 0`` for all t: one ``lax.scan``, O(T), O(1) state
    (``a``, ``b`` of shape ``(T,)`` or ``(T, K)`` for K independent recursions)."""
    def body(y, ab):
        y = ab[0] * y + ab[1]
        return y, y
    return jax.lax.scan(body, jnp.zeros(b.shape[1:], b.dtype), (a, b))[1]


def river_loss(p, tau):
    """``L0 + A (tau + tau0)^(-alpha)``: the river loss at river time ``tau``."""
    return p.L0 + p.A * (tau + p.tau0) ** (-p.alpha)


def spectrum_sharpnesses(sharpness_lo, sharpness_hi):
    """The ``SPECTRUM_GROUPS`` sharpnesses, log-uniform in ``[sharpness_lo, sharpness_hi]``: the
    midpoints of equal bins in log sharpness."""
    u = (jnp.arange(SPECTRUM_GROUPS) + 0.5) / SPECTRUM_GROUPS
    return jnp.exp(jnp.log(sharpness_lo) + u * (jnp.log(sharpness_hi) - jnp.log(sharpness_lo)))


def noise_injection(eta, noise_var, p):
    """``eta^(1 + p) noise_var`` (``= eta^2 noise_var`` at ``p = 1``), 0 at ``eta = 0``, with finite
    derivatives there."""
    pos = eta > 0
    return jnp.where(pos, jnp.exp((1 + p) * jnp.log(jnp.where(pos, eta, 1.0))), 0.0) * noise_var


def hill_loss(lrs, sharpness, injection):
    """``sharpness V_t / 2`` for t = 0 .. T-1, with ``V_0 = 0`` and
    ``V_{t+1} = (1 - eta_t sharpness)^2 V_t + injection_t`` (THEORY.md §4, the recursion of
    :func:`rivervalley.theory.hill_moments`).

    ``sharpness`` is a scalar (one group: shape ``(T,)``) or a vector of K groups (shape
    ``(T, K)``); ``injection`` has shape ``(T,)``, the noise variance the update of step t adds
    (``eta_t^2 noise_var`` for SGD). One ``lax.scan``: O(T K) work, O(K) state.
    """
    lam = jnp.asarray(sharpness)
    col = (slice(None),) + (None,) * lam.ndim
    a = (1 - lrs[col] * lam) ** 2
    v_next = linear_recurrence(a, jnp.broadcast_to(injection[col], a.shape))       # V_1 .. V_T
    v = jnp.concatenate([jnp.zeros_like(v_next[:1]), v_next[:-1]])
    return 0.5 * lam * v


def hill_total(groups):
    """The hill loss of a river-valley law: the sum of its groups' hill losses."""
    return functools.reduce(operator.add, groups)


def total(river, groups):
    """The loss of a river-valley law from its parts: the river loss plus the hill loss."""
    return river + hill_total(groups)


# ============================================================================================
# the laws of the literature
# ============================================================================================

def multi_power_law(params: MultiPowerParams, lrs: LearningRates, *,
                    nodes: int = _soe.DEFAULT_NODES) -> jax.Array:
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
    absorbed by ``L0``. For a fit at a few observed steps, :func:`rivervalley.laws.loss_curve` with
    ``steps=`` uses an exact O(len(steps) * K) evaluation instead (K = number of steps where the LR
    changes).

    >>> p = MultiPowerParams(2.0, 1.0, 0.5, 10.0, 1.0, 0.5, 0.5, 0.0)
    >>> lrs = jnp.array([0.1] * 50 + [0.05] * 50)
    >>> round(float(multi_power_law(p, lrs)[-1]), 4)
    2.0084
    """
    p, lrs = _law_inputs(MultiPowerParams, params, lrs)
    d = _drops(lrs)
    ld_sum = _soe_power_sum(d, lrs, p.C, p.beta, p.gamma, nodes)   # sum_k d_k (1 + b_k S_k(t))^-beta
    ld = p.B * (jnp.cumsum(d) - ld_sum)
    return p.L0 + p.A * (jnp.cumsum(lrs) + p.S_W) ** (-p.alpha) - ld


def _soe_power_sum(d, lrs, C, beta, gamma, nodes):
    """``sum_{k<=t} d_k (1 + C eta_k^(-gamma) S_k(t))^(-beta)`` for every t, O(T * nodes)."""
    pos = lrs > 0
    x_min = _smallest_positive(lrs)
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


def lr_annealing_law(params: AnnealingParams, lrs: LearningRates) -> jax.Array:
    """The LR-annealing law (Tissue et al. 2024) for every step, O(T).

    ``L(t) = L0 + A S1(t)^(-alpha) - C S2(t)``, ``S1(t) = sum_{s<=t} eta_s``,
    ``S2(t) = sum_{i<=t} m_i``, ``m_i = lam m_{i-1} + (eta_{i-1} - eta_i)``, ``m_{-1} = 0``,
    ``eta_{-1} := eta_0``. (``m`` by a linear-recurrence ``lax.scan``, ``S2`` by a cumsum.)

    >>> p = AnnealingParams(2.0, 1.0, 0.5, 0.1, 0.999)
    >>> round(float(lr_annealing_law(p, jnp.array([0.1] * 50 + [0.05] * 50))[-1]), 4)
    2.1212
    """
    p, lrs = _law_inputs(AnnealingParams, params, lrs)
    m = linear_recurrence(jnp.full_like(lrs, p.lam), _drops(lrs))
    return p.L0 + p.A * jnp.cumsum(lrs) ** (-p.alpha) - p.C * jnp.cumsum(m)


def convex_bound(lrs: LearningRates, d2: Array = 1.0, *, nodes: int = _soe.DEFAULT_NODES) -> jax.Array:
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
    lrs = as_float(lrs)
    d2 = as_float(d2)
    dt = jnp.result_type(lrs, d2)
    lrs = lrs.astype(dt)
    p = jnp.cumsum(lrs)
    q = jnp.cumsum(lrs ** 2)
    prev1 = jnp.concatenate([jnp.zeros((1,), dt), lrs[:-1]])
    prev2 = jnp.concatenate([jnp.zeros((2,), dt), lrs[:-2]])[: lrs.shape[0]]
    pos = lrs > 0
    x_min = _smallest_positive(lrs)
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


def convex_bound_law(params: ConvexBoundParams, lrs: LearningRates, *,
                     nodes: int = _soe.DEFAULT_NODES) -> jax.Array:
    """The convex bound used as a loss law: ``L(t) = L0 + scale * convex_bound(lrs[:t+1], d2)``.

    >>> round(float(convex_bound_law(ConvexBoundParams(2.0, 1.0, 1.0), jnp.full(100, 0.1))[-1]), 4)
    2.3589
    """
    p = float_params(ConvexBoundParams(*params))
    return p.L0 + p.scale * convex_bound(lrs, p.d2, nodes=nodes)


# ============================================================================================
# the river-valley laws: river + hill groups (each law is the sum of its parts)
# ============================================================================================

def river_valley_parts(params: RiverValleyParams, lrs: LearningRates):
    """(river loss, (hill loss,)) of :func:`river_valley_law` at every step."""
    p, lrs = _law_inputs(RiverValleyParams, params, lrs)
    return (river_loss(p, river_time(lrs)[:-1]),
            (hill_loss(lrs, p.sharpness, lrs ** 2 * p.noise_var),))


def river_valley_2_parts(params: RiverValley2Params, lrs: LearningRates):
    """(river loss, (fast hill, slow hill)) of :func:`river_valley_2_law` at every step."""
    p, lrs = _law_inputs(RiverValley2Params, params, lrs)
    return (river_loss(p, river_time(lrs)[:-1]),
            (hill_loss(lrs, p.sharpness, lrs ** 2 * p.noise_var),
             hill_loss(lrs, p.sharpness_2, lrs ** 2 * p.noise_var_2)))


def river_valley_spectrum_parts(params: RiverValleySpectrumParams, lrs: LearningRates):
    """(river loss, (hill of each of the ``SPECTRUM_GROUPS`` groups, flattest first)) at every step."""
    p, lrs = _law_inputs(RiverValleySpectrumParams, params, lrs)
    lam = spectrum_sharpnesses(p.sharpness_lo, p.sharpness_hi)
    hills = hill_loss(lrs, lam, noise_injection(lrs, p.noise_var / SPECTRUM_GROUPS, p.p))  # (T, K)
    return river_loss(p, river_time(lrs)[:-1]), tuple(hills.T)


def river_valley_law(params: RiverValleyParams, lrs: LearningRates) -> jax.Array:
    """The river-valley law: river progress in river time plus the exact hill relaxation, O(T).

        L(t) = L0 + A (tau_t + tau0)^(-alpha) + lambda V_t / 2,     tau_t = sum_{s<t} eta_s,
        V_0 = 0,   V_{t+1} = (1 - eta_t lambda)^2 V_t + eta_t^2 sigma^2,

    with lambda = ``sharpness`` and sigma^2 = ``noise_var``. How it reads (THEORY.md §4): the loss
    is the river loss, a power law in the *area under the schedule* (river time) with offset
    ``tau0``, plus the hill loss of one effective sharpness driven by gradient noise. At a
    constant LR the hill term relaxes within ~``1/(2 eta lambda)`` steps to
    ``eta sigma^2 / (2 (2 - eta lambda))`` ~ ``eta sigma^2 / 4``; a decay removes it (the WSD
    drop) while the river term only slows down. ``V`` is computed by a ``lax.scan`` of the affine
    recurrence (O(T) work, O(1) state, no T x T matrix).

    >>> p = RiverValleyParams(1.0, 1.0, 0.5, 1.0, 2.0, 1.0)
    >>> round(float(river_valley_law(p, jnp.full(1000, 0.1))[-1]), 4)
    1.1273
    """
    return total(*river_valley_parts(params, lrs))


def river_valley_2_law(params: RiverValley2Params, lrs: LearningRates) -> jax.Array:
    """The river-valley law with two groups of hill directions, O(T).

        L(t) = L0 + A (tau_t + tau0)^(-alpha) + lambda V_t / 2 + lambda_2 W_t / 2,

    with V and W the exact second-moment recursions of :func:`river_valley_law` for
    (``sharpness``, ``noise_var``) and (``sharpness_2``, ``noise_var_2``). THEORY.md's
    d-dimensional valley has a spectrum of hill sharpnesses; one group must relax at a single
    rate, so on real AdamW runs it follows the LR almost instantly and over-predicts the drop early
    in long cooldowns. A second, slow group (relaxing over ~1 / (2 eta lambda_2) steps) lets part
    of the drop come late, as the real curves do.

    >>> p = RiverValley2Params(1.0, 1.0, 0.5, 1.0, 2.0, 1.0, 0.1, 0.5)
    >>> round(float(river_valley_2_law(p, jnp.full(1000, 0.1))[-1]), 4)
    1.1399
    """
    return total(*river_valley_2_parts(params, lrs))


def river_valley_spectrum_law(params: RiverValleySpectrumParams, lrs: LearningRates) -> jax.Array:
    """The river-valley law with a spectrum of hill sharpnesses, O(T K) (K = ``SPECTRUM_GROUPS``).

        L(t) = L0 + A (tau_t + tau0)^(-alpha) + sum_i lambda_i V_{i,t} / 2,
        V_{i,0} = 0,   V_{i,t+1} = (1 - eta_t lambda_i)^2 V_{i,t} + eta_t^(1+p) sigma^2 / K,

    with ``lambda_i`` log-uniform in ``[sharpness_lo, sharpness_hi]`` (K bin midpoints) and
    sigma^2 = ``noise_var``. THEORY.md §4's d-dimensional valley has a spectrum of sharpnesses,
    each hill direction relaxing by the exact recursion at its own rate ``2 eta lambda_i``: a
    decay reveals the sharp directions' drop at once and the flat ones' late. The noise injection
    ``eta^(1+p) sigma^2`` generalizes SGD's ``eta^2 sigma^2`` (``p = 1``, hill level
    ``~ eta sigma^2 / 4`` at a constant LR) to a hill level ``~ eta^p``: an adaptive optimizer's
    update noise need not scale like SGD's (fitted, not assumed). 8 parameters, like the
    multi-power law.

    >>> p = RiverValleySpectrumParams(1.0, 1.0, 0.5, 1.0, 1.0, 0.5, 5.0, 1.0)
    >>> round(float(river_valley_spectrum_law(p, jnp.full(1000, 0.1))[-1]), 4)
    1.1274
    """
    return total(*river_valley_spectrum_parts(params, lrs))
