"""Sum-of-exponentials (SOE) machinery behind the O(T * m) loss-curve laws (private).

Two kernels of the elapsed river time ``x`` (a partial sum of LRs) are not separable in ``t`` and
``k``: ``1 / x`` (the convex bound) and ``(1 + b x)^(-beta)`` (the multi-power law). Both are Laplace
transforms,

    1 / x               = int_0^inf exp(-rho x) d rho
    (1 + b x)^(-beta)   = int_0^inf (rho/b)^beta exp(-rho/b) / Gamma(beta) * exp(-rho x) d log(rho)

and a trapezoid rule in ``v = log(rho)`` on a fixed grid ``rho_j`` turns them into sums of ``m``
exponentials ``exp(-rho_j x)``. Because ``x = P_t - P_k`` is a difference of cumulative sums, each
exponential obeys a one-step recursion (``M_j(t) = exp(-rho_j eta_t) * (M_j(t-1) + input_t)``), so
a ``lax.scan`` with an ``m``-vector state evaluates the whole curve in O(T m) time and O(m) extra
memory. The trapezoid rule on a doubly infinite grid of an analytic integrand converges like
``exp(-pi^2 / h)`` (Poisson summation; the Laplace integrands are analytic in the strip
``|Im v| < pi/2``); with ``h ~ 0.25`` that is ~1e-16. The grid spans ``[1e-17 / x_max,
42 / x_min]`` (rates below contribute ``exp(-rho x) = 1`` within 1e-17, rates above decay below
``e^-42`` for every ``x >= x_min``); for the power kernel the part of the grid below ``rho_0``
(where ``exp(-rho x) = 1``) is summed as a geometric series and added as a rate-0 node, which keeps
the doubly-infinite-grid accuracy instead of a truncation error.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

#: Default number of exponentials.
DEFAULT_NODES = 256
_LO = 1e-17
_HI = 42.0


def log_grid(x_min, x_max, m: int = DEFAULT_NODES):
    """Log-spaced rates ``rho_j`` and the step ``h`` in ``log rho`` covering ``[x_min, x_max]``."""
    x_min = jnp.maximum(x_min, jnp.finfo(jnp.result_type(x_min)).tiny)
    lo = jnp.log(_LO / x_max)
    hi = jnp.log(_HI / x_min)
    hi = jnp.maximum(hi, lo + 1.0)
    v = jnp.linspace(0.0, 1.0, m, dtype=jnp.result_type(x_min)) * (hi - lo) + lo
    return jnp.exp(v), (hi - lo) / (m - 1)


def power_weights(log_b, beta, rho, h):
    """Trapezoid weights of ``(1 + b x)^(-beta)`` on the grid (``m``) and the rate-0 tail weight."""
    lg = jax.scipy.special.gammaln(beta)
    z = jnp.log(rho) - log_b                      # log(rho / b)
    w = h * jnp.exp(beta * z - jnp.exp(z) - lg)
    # nodes below rho_0 (geometric series in exp(beta * h)); exp(-rho/b) = 1 there.
    tail = h * jnp.exp(beta * z[0] - lg) / jnp.expm1(beta * h)
    return w, tail
