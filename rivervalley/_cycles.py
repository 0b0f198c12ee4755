"""Step, cycle and decay arithmetic of :mod:`rivervalley.schedules` (private).

Everything that counts steps is integer arithmetic: the step ``t``, the cycle ends, the warmup
and the decay lengths are integers (int32 inside JAX unless x64 is enabled; int64 on the host),
and a progress ``r = n / D`` is formed from two exact integers, so it is rounded once to the float
dtype and never depends on how large ``t`` is. ``1 - r`` is formed the same way, as
``(D - n) / D``, so the last steps of a long decay keep their relative precision.

- :func:`int_steps` / :func:`host_steps`: what a schedule is called with -> integer steps;
- :func:`exact_decay_lengths` (host, exact decimal) and :func:`traced_decay_lengths` (in graph);
- :func:`cycles_lr`: the LR of a run of cycles at integer steps (``numpy`` or ``jax.numpy``);
- :func:`multiplier`: the decay multipliers of THEORY.md §5 from ``r`` and ``1 - r``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley._validate import fmt, is_traced

#: The decay shapes of THEORY.md §5, in index order (``rivervalley.schedules.DECAY_SHAPES``).
SHAPES: tuple[str, ...] = ("linear", "cosine", "1-sqrt", "inverse", "exponential", "square")

#: The longest run (and the largest step count anywhere in a schedule): the int32 step counter of
#: optax and of the engine. A step count above it would wrap around silently when JAX (x64 off)
#: converts it to int32, so factories refuse it.
MAX_STEPS = 2**31 - 1

# the largest float that floors to a valid int32 (float32 cannot hold 2**31 - 1)
_FLOAT_STEP_HI = {np.dtype(np.int32): float(2**31 - 2**7), np.dtype(np.int64): float(2**62)}


def int_dtype() -> np.dtype:
    """The integer dtype JAX computes steps in: int32, or int64 with x64 enabled."""
    return np.dtype(jnp.result_type(int))


# --------------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------------

def _check_concrete_steps(step: Any, limit: int) -> Any:
    """A concrete step (scalar or array) must be an integer, or a float holding one; NaN,
    infinities, fractional floats, bools and steps beyond ``limit`` are refused. Returns the
    step, with negative integers that would not fit the step dtype raised to 0 (they are step 0
    anyway; converting them would wrap around)."""
    if isinstance(step, (bool, np.bool_)):
        raise ValueError(f"step={step!r} is a bool, not a step (an integer >= 0)")
    if isinstance(step, int):
        if step > limit:
            raise ValueError(f"step={step} is beyond the step counter's range (an integer "
                             f"<= {limit})")
        return max(step, 0)
    dtype = getattr(step, "dtype", None)
    if dtype is None:
        a = np.asarray(step)
        dtype = a.dtype
    else:
        a = None
    dtype = np.dtype(dtype) if not jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) else None
    if dtype is None or dtype == np.bool_ or dtype.kind not in "iuf":
        raise ValueError(f"step={fmt(step)} must be an integer step (or an array of them), "
                         f"not {dtype}")
    if dtype.kind in "iu":
        if np.iinfo(dtype).max <= limit and np.iinfo(dtype).min >= -limit - 1:
            return step  # every value fits: nothing to look at (no device-to-host transfer)
        a = np.asarray(step) if a is None else a
        if a.size and int(a.max()) > limit:
            raise ValueError(f"step={fmt(step)} holds {int(a.max())}, beyond the step counter's "
                             f"range (an integer <= {limit})")
        return np.maximum(a, 0)
    a = np.asarray(step) if a is None else a
    if np.any(np.isnan(a)):
        raise ValueError(f"step={fmt(step)} is NaN: a learning rate needs a step")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"step={fmt(step)} is infinite: pass an integer step")
    if np.any(a != np.floor(a)):
        raise ValueError(f"step={fmt(step)} is not a whole number: steps count updates "
                         "(integers); fractional steps are not evaluated")
    if a.size and float(a.max()) > limit:
        raise ValueError(f"step={fmt(step)} holds {float(a.max())}, beyond the step counter's "
                         f"range (an integer <= {limit})")
    return np.maximum(a, 0)


def int_steps(step: Any) -> tuple[jax.Array, jax.Array | None]:
    """``step`` as JAX integer steps ``>= 0`` (negative steps are step 0) and, for a traced float
    step, the mask of its NaNs (the caller returns NaN there); ``None`` when there can be none.

    A traced float step is floored (float32 holds every integer only up to 2**24)."""
    idt = int_dtype()
    if not is_traced(step):
        step = _check_concrete_steps(step, int(np.iinfo(idt).max))
    t = jnp.asarray(step)
    if t.dtype == jnp.bool_:
        raise ValueError("step has dtype bool; a step is an integer")
    if jnp.issubdtype(t.dtype, jnp.integer):
        t = t.astype(idt)
        return jnp.maximum(t, jnp.zeros_like(t)), None
    if jnp.issubdtype(t.dtype, jnp.floating):
        nan = jnp.isnan(t)
        safe = jnp.where(nan, jnp.zeros_like(t), t)
        safe = jnp.minimum(jnp.maximum(safe, jnp.zeros_like(t)),
                           jnp.full_like(t, _FLOAT_STEP_HI[idt]))
        return jnp.floor(safe).astype(idt), nan
    raise ValueError(f"step has dtype {t.dtype}; a step is an integer")


def host_steps(step: Any) -> np.ndarray:
    """``step`` as NumPy int64 steps ``>= 0`` (the float64 host evaluation; concrete only)."""
    if is_traced(step):
        raise ValueError("the host evaluation needs a concrete step, not a traced one")
    step = _check_concrete_steps(step, 2**53)
    return np.maximum(np.asarray(step).astype(np.int64), 0)


# --------------------------------------------------------------------------------------------
# decay lengths
# --------------------------------------------------------------------------------------------

def decimal(x: Any) -> Fraction:
    """The decimal a float was written as: the shortest decimal that rounds to it in its own
    precision (``0.29`` -> 29/100; ``np.float32(0.7)`` -> 7/10), exactly."""
    a = np.asarray(x)
    if a.dtype.kind == "f":
        return Fraction(np.format_float_positional(a[()], unique=True, trim="-"))
    return Fraction(int(a))


def exact_decay_lengths(fraction: Any, steps: Any, lengths: Any) -> np.ndarray:
    """``D = steps`` where ``steps > 0``, else ``floor(decimal(fraction) * L)`` exactly (int64),
    broadcast over ``fraction``, ``steps`` and ``lengths`` (host, concrete values)."""
    f, s, n = np.broadcast_arrays(np.asarray(fraction), np.asarray(steps, np.int64),
                                  np.asarray(lengths, np.int64))
    out = np.empty(f.shape, np.int64)
    cache: dict = {}
    for i in np.ndindex(f.shape):
        if s[i] > 0:
            out[i] = s[i]
            continue
        key = f[i].item()
        if key not in cache:
            cache[key] = decimal(f[i])
        out[i] = math.floor(cache[key] * int(n[i]))
    return out


def traced_decay_lengths(fraction: Any, steps: Any, lengths: Any) -> jax.Array:
    """In-graph ``D`` for traced inputs: ``steps`` where ``> 0``, else ``floor(fraction * L)``
    computed in the float dtype, *snapped* to the nearest integer when within 4 ulps of it.

    The fraction is a float32 (float64 with x64) whose decimal is unknown, and ``fraction * L``
    is rounded twice; snapping undoes that rounding, so ``0.7`` of 10 is 7 and ``0.2`` of 600000
    is 120000 (what the host's exact decimal rule gives), while a product that is not within 4
    ulps of an integer is floored as usual. In float32 (``fl(fl(f) L)`` is within
    ``|f L| * 2**-23`` of ``f L``; the snap band is ``|f L| * 2**-21``) the traced rule equals the
    host rule whenever ``f L < 2**22`` and the exact product is an integer or further than
    ``|f L| * 2**-20`` from one. Clipped to ``[0, L]``.
    """
    fdt = jnp.result_type(float)
    n = jnp.asarray(lengths)
    p = jnp.asarray(fraction, fdt) * n.astype(fdt)
    near = jnp.round(p)
    tol = 4 * jnp.finfo(fdt).eps * jnp.maximum(jnp.abs(p), 1.0)
    d = jnp.where(jnp.abs(p - near) <= tol, near, jnp.floor(p))
    d = jnp.clip(d, 0, n.astype(fdt)).astype(n.dtype)
    s = jnp.asarray(steps).astype(n.dtype)
    return jnp.where(s > 0, s, d)


# --------------------------------------------------------------------------------------------
# the decay multipliers and the one evaluation routine
# --------------------------------------------------------------------------------------------

def _multipliers(xp, r, q, m) -> list:
    """The six multipliers (SHAPES order) at progress ``r`` with ``q = 1 - r`` computed exactly
    from integers: forms without cancellation near ``r = 1``."""
    m_pos = xp.where(m > 0, m, xp.ones_like(m))  # keeps the unselected inverse / exp. finite
    return [
        m + (1 - m) * q,                                    # 1 - r
        m + (1 - m) * xp.square(xp.sin((math.pi / 2) * q)),  # (1 + cos(pi r)) / 2
        m + (1 - m) * q / (1 + xp.sqrt(r)),                 # 1 - sqrt(r)
        1.0 / (1.0 + r * (1.0 / m_pos - 1.0)),
        xp.power(m_pos, r),
        m + (1 - m) * q * (1 + r),                          # 1 - r^2
    ]


def multiplier(xp, shape: str | Any, r, q, m):
    """``mult(r)`` of one shape (a name) or of shape indices (an integer array: all six are
    evaluated and one is selected; an index outside 0..5 gives NaN)."""
    if isinstance(shape, str):
        return _multipliers(xp, r, q, m)[SHAPES.index(shape)]
    idx = xp.asarray(shape)
    options = _multipliers(xp, r, q, m)
    nan = xp.full_like(options[0], np.nan)
    return xp.select([idx == i for i in range(len(SHAPES))], options, nan)


def cycles_lr(xp, t, *, peak, ends, warmup, rewarmup, shape, min_ratio, decay=None,
              fdtype=None):
    """LR at integer steps ``t >= 0`` of a run of cycles ending at ``ends`` (1-D integers).

    ``decay`` is the decay length per cycle (an integer scalar or one per cycle); ``None`` is
    the full decay (the whole cycle after its (re)warmup: cosine). Branch-free: every argument
    may be an array, traced under ``jit`` / ``vmap``. ``xp`` is ``numpy`` (the float64 host
    evaluation, int64 steps) or ``jax.numpy``.
    """
    fdtype = fdtype or (np.float64 if xp is np else jnp.result_type(float))
    idt = t.dtype  # every integer in one dtype, no weak Python scalars (jit caches by dtype)
    ends = xp.asarray(ends).astype(idt)
    zero, one = xp.zeros((), idt), xp.ones((), idt)
    n_cycles = ends.shape[-1]
    k = xp.minimum(xp.sum(t[..., None] >= ends, axis=-1).astype(idt), n_cycles - one)
    end = xp.take(ends, k)  # t >= e_K: the last cycle
    start = xp.where(k > zero, xp.take(ends, xp.maximum(k - one, zero)), zero)
    length = end - start
    u = t - start
    first = k == zero
    w = xp.where(first, xp.asarray(warmup).astype(idt), xp.asarray(rewarmup).astype(idt))
    if decay is None:
        d = length - w
    else:
        d = xp.take(xp.broadcast_to(xp.asarray(decay).astype(idt), ends.shape), k)
    peak = xp.asarray(peak).astype(fdtype)
    m = xp.asarray(min_ratio).astype(fdtype)
    w_start = xp.where(first, xp.zeros_like(peak), peak * m)  # Levanter: from previous_end
    warm_lr = w_start + (peak - w_start) * (u.astype(fdtype) / xp.maximum(w, one).astype(fdtype))
    stable_end = length - d
    done = xp.minimum(xp.maximum(u - stable_end, zero), d)  # decay steps taken: r = done / d
    dd = xp.maximum(d, one).astype(fdtype)
    r = done.astype(fdtype) / dd
    q = (d - done).astype(fdtype) / dd
    decay_lr = peak * multiplier(xp, shape, r, q, m)
    return xp.where(u < w, warm_lr, xp.where(u >= stable_end, decay_lr, peak))
