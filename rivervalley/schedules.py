"""Learning-rate schedules as pytrees: ``constant``, ``cosine``, ``wsd``, ``wsd_s``,
``cyclic_cosine``.

Every factory returns a small frozen dataclass registered with
:func:`jax.tree_util.register_dataclass`. Its numeric parameters (peak, min ratio, decay fraction or
steps, warmup, the decay-shape *index*, the array of cycle ends) are array leaves, and evaluation is
branch-free (``jnp.where`` / ``jnp.clip`` / ``jnp.select``). Hence a schedule is an
``optax.Schedule`` (``schedule(step) -> lr``, for int or float steps, scalars or arrays) **and** a
value that can be passed through ``jit`` / ``vmap``: a batch of schedules is one schedule with
stacked leaves, so a sweep over peak, decay fraction, min ratio, decay *shape* and cycle ends is
ONE compiled program. optax's and Levanter's schedules cannot do this: their parameters are Python
numbers baked into closures (and Levanter picks the decay shape with a Python ``match``), so every
setting is a new function and a new compilation.

Conventions (THEORY.md §5). Step ``t`` counts updates from 0; the LR of update ``t`` is ``eta(t)``.
Warmup is linear from 0: ``eta(t) = peak * t / W`` for ``t < W``. A decay over ``D`` steps starting
at ``t0`` has progress ``r = (t - t0) / D`` and ``eta = peak * mult(r)`` (:func:`decay_multiplier`).

Cycles (``wsd_s``, ``cyclic_cosine``) follow Levanter's ``OptimizerConfig.lr_scheduler``
(stanford-crfm/levanter, ``src/levanter/optim/config.py``, the version with ``cycles``, ``decay``
and ``rewarmup``; it chains optax schedules with ``optax.join_schedules`` at the cycle ends). Cycle
``k`` spans steps ``[e_{k-1}, e_k)`` (``e_0 = 0``); inside it: warmup (first cycle) or re-warmup
(later cycles), then constant at the peak, then the decay over its last ``D_k`` steps, where
``D_k = floor(decay * L_k)`` for a fraction (Levanter's ``int(frac * cycle_steps)``) or ``decay``
for a step count. **Where the minimum sits**: the decay reaches ``r = 1`` (LR = ``min_ratio *
peak``) exactly at the cycle end ``e_k``, which is already the first step of the next cycle; so the
last update of a cycle, ``e_k - 1``, uses ``mult((D_k - 1) / D_k)`` and step ``e_k`` is back at the
peak (no re-warmup), or equals the minimum and re-warms linearly from it to the peak over
``rewarmup_steps`` (Levanter's ``linear_schedule(previous_end, peak, rewarmup)``). Only the final
end ``e_K`` (the end of the run) and later steps sit at the minimum, exactly as in
``optax.warmup_cosine_decay_schedule`` (whose value at ``decay_steps`` is ``end_value``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "DECAY_SHAPES",
    "Constant",
    "Cosine",
    "WSD",
    "WSDS",
    "CyclicCosine",
    "Tabulated",
    "tabulated",
    "Schedule",
    "constant",
    "cosine",
    "wsd",
    "wsd_s",
    "cyclic_cosine",
    "decay_multiplier",
    "decay_steps_of",
    "as_array",
    "torch_lambda",
]

#: The decay shapes of THEORY.md §5, in index order.
DECAY_SHAPES: tuple[str, ...] = ("linear", "cosine", "1-sqrt", "inverse", "exponential", "square")
_ALIASES = {"inv": "inverse", "harmonic": "inverse", "geometric": "exponential",
            "exp": "exponential",
            "one_minus_sqrt": "1-sqrt", "sqrt": "1-sqrt"}
_NEEDS_POSITIVE_MIN = ("inverse", "exponential")
# floor(decay * L) up to this relative tolerance, so float32 rounding of the fraction never loses
# a step (float32(0.7) * 10 = 6.99999988 must give 7, as Levanter's float64 int() does).
_FLOOR_RTOL = 1e-5


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _is_traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer) or any(
        isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(x))


def _leaf(x: Any, dtype=np.float64) -> Any:
    """Concrete numbers become numpy arrays (canonicalized by JAX later); tracers pass through."""
    if _is_traced(x) or isinstance(x, jax.Array):
        return x
    return np.asarray(x, dtype=dtype)


def _num(x: Any) -> Any:
    """A leaf as a Python number (or nested list for a batch), for describe() / repr."""
    if _is_traced(x):
        return "<traced>"
    a = np.asarray(x)
    return a.item() if a.ndim == 0 else a.tolist()


def shape_index(shape: str | int) -> int:
    """Index of a decay shape in :data:`DECAY_SHAPES`; accepts names, aliases and indices.

    >>> shape_index("1-sqrt"), shape_index(4)
    (2, 4)
    """
    if isinstance(shape, (np.ndarray, jax.Array)) and np.ndim(shape) == 0 and not _is_traced(shape):
        shape = shape.item()
    if isinstance(shape, str):
        name = _ALIASES.get(shape.lower(), shape.lower())
        if name not in DECAY_SHAPES:
            raise ValueError(f"decay_shape={shape!r} is unknown; known shapes: "
                             f"{', '.join(DECAY_SHAPES)} (or an index 0..{len(DECAY_SHAPES) - 1})")
        return DECAY_SHAPES.index(name)
    if isinstance(shape, (bool, np.bool_)):
        raise ValueError(f"decay_shape={shape!r} is not a shape name or index")
    if isinstance(shape, (int, np.integer)):
        if not 0 <= int(shape) < len(DECAY_SHAPES):
            raise ValueError(f"decay_shape={shape!r} is outside the indices "
                             f"0..{len(DECAY_SHAPES) - 1} "
                             f"of {DECAY_SHAPES}")
        return int(shape)
    raise ValueError(f"decay_shape={shape!r} must be a name ({', '.join(DECAY_SHAPES)}) "
                     "or an index")


def _shape_leaf(shape: Any) -> Any:
    if _is_traced(shape) or isinstance(shape, jax.Array) or (
            isinstance(shape, np.ndarray) and shape.ndim > 0):
        return shape if _is_traced(shape) else np.asarray(shape, dtype=np.int32)
    if isinstance(shape, np.ndarray):
        shape = shape.item()
    return np.asarray(shape_index(shape), dtype=np.int32)


def _check_finite_nonneg(name: str, value: Any, what: str = "") -> None:
    if _is_traced(value):
        return
    a = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"{name}={_num(value)} is outside [0, inf){what}: "
                         "it must be finite and >= 0")


def _check_min_ratio(min_ratio: Any, shape: Any = None) -> None:
    if _is_traced(min_ratio):
        return
    m = np.asarray(min_ratio, dtype=np.float64)
    if not np.all(np.isfinite(m)) or np.any(m < 0) or np.any(m > 1):
        raise ValueError(f"min_ratio={_num(min_ratio)} is outside [0, 1] "
                         "(a fraction of peak_value)")
    if shape is None or _is_traced(shape):
        return
    idx = np.asarray(shape)
    names = {DECAY_SHAPES[int(i)] for i in np.ravel(idx)}
    bad = [n for n in names if n in _NEEDS_POSITIVE_MIN]
    if bad and np.any(np.broadcast_to(m, np.broadcast_shapes(m.shape, idx.shape))[
            np.isin(np.broadcast_to(idx, np.broadcast_shapes(m.shape, idx.shape)),
                    [DECAY_SHAPES.index(n) for n in bad])] <= 0):
        raise ValueError(f"min_ratio={_num(min_ratio)} must be in (0, 1] for decay_shape "
                         f"{'/'.join(sorted(bad))} "
                         "(the decay divides by / takes powers of min_ratio)")


def _check_steps(name: str, value: Any) -> None:
    if _is_traced(value):
        return
    a = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(a)) or np.any(a < 0) or np.any(a != np.round(a)):
        raise ValueError(f"{name}={_num(value)} is outside the whole numbers >= 0 (a step count)")


def _split_decay(decay: Any) -> tuple[Any, Any]:
    """``decay`` -> (fraction, steps) leaves: float = fraction in (0, 1], int = step count."""
    if _is_traced(decay):
        if jnp.issubdtype(jnp.result_type(decay), jnp.integer):
            return jnp.zeros_like(decay, dtype=float), decay
        return decay, jnp.zeros_like(decay)
    a = np.asarray(decay)
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer)
                                   or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"decay={decay!r} must be a fraction in (0, 1] or a step count >= 1")
    if np.issubdtype(a.dtype, np.integer):
        if np.any(a < 1):
            raise ValueError(f"decay={_num(decay)} is outside [1, inf) as a step count "
                             "(pass a float in (0, 1] for a fraction of the cycle)")
        return np.zeros(a.shape), a.astype(np.float64)
    if not np.all(np.isfinite(a)) or np.any(a <= 0) or np.any(a > 1):
        raise ValueError(f"decay={_num(decay)} is outside (0, 1] as a fraction of num_steps "
                         "(pass an int for a number of steps)")
    return a.astype(np.float64), np.zeros(a.shape)


def _decay_len(xp, frac, steps, length):
    """D = steps + floor(frac * L) (one of the two is zero), tolerant to float rounding."""
    return steps + xp.floor(frac * length * (1.0 + _FLOOR_RTOL))


def _check_ends(name: str, ends: Any) -> None:
    if _is_traced(ends):
        return
    a = np.asarray(ends, dtype=np.float64)
    if a.ndim == 0 or a.shape[-1] == 0:
        raise ValueError(f"{name}={_num(ends)} must be a non-empty sequence of steps")
    if not np.all(np.isfinite(a)) or np.any(a <= 0) or np.any(a != np.round(a)):
        raise ValueError(f"{name}={_num(ends)} must hold whole steps in [1, inf)")
    if np.any(np.diff(a, axis=-1) <= 0):
        raise ValueError(f"{name}={_num(ends)} is not strictly increasing")


def _cycle_lengths(ends: np.ndarray) -> np.ndarray:
    ends = np.asarray(ends, dtype=np.float64)
    return np.diff(ends, axis=-1, prepend=np.zeros(ends.shape[:-1] + (1,)))


def _check_cycles(ends, warmup, rewarmup, dfrac, dsteps, *, full_decay: bool, single: bool) -> None:
    """Warmup / re-warmup / decay must fit inside their cycle (concrete values only)."""
    if any(_is_traced(x) for x in (ends, warmup, rewarmup, dfrac, dsteps)):
        return
    lengths = _cycle_lengths(ends)
    w = np.broadcast_to(np.asarray(warmup, np.float64), lengths.shape[:-1])
    rw = np.broadcast_to(np.asarray(rewarmup, np.float64), lengths.shape[:-1])
    ends_name = "num_steps" if single else "checkpoints"
    if np.any(w > lengths[..., 0]):
        what = "the run" if single else "the first cycle"
        raise ValueError(f"warmup_steps={_num(warmup)} is longer than {what} "
                         f"({ends_name}: length {_num(lengths[..., 0])}); valid range [0, "
                         f"{_num(np.min(lengths[..., 0]))}]")
    if lengths.shape[-1] > 1 and np.any(rw[..., None] > lengths[..., 1:]):
        raise ValueError(f"rewarmup_steps={_num(rewarmup)} is longer than a cycle (lengths "
                         f"{_num(lengths[..., 1:])}); valid range "
                         f"[0, {_num(np.min(lengths[..., 1:]))}]")
    if full_decay:
        return
    d = _decay_len(np, np.asarray(dfrac)[..., None], np.asarray(dsteps)[..., None], lengths)
    later = np.broadcast_to(rw[..., None], lengths[..., 1:].shape)
    warm = np.concatenate([w[..., None], later], -1)
    over = d + warm > lengths
    if np.any(over) or np.any(d < 1):
        decay = (_intify("decay_steps", _num(dsteps)) if np.any(np.asarray(dsteps) > 0)
                 else _num(dfrac))
        raise ValueError(
            f"decay={decay} gives decays of {_num(d)} steps that do not fit in their cycles of "
            f"{_num(lengths)} steps after (re)warmup {_num(warm)}; valid range: 1 <= decay steps "
            "<= cycle length - warmup")


# --------------------------------------------------------------------------------------------
# decay shapes
# --------------------------------------------------------------------------------------------

def _mult_all(xp, r, m):
    """The six multipliers of THEORY.md §5 (list in DECAY_SHAPES order)."""
    m_pos = xp.where(m > 0, m, 1.0)  # keeps unselected inverse/exponential branches finite
    return [
        m + (1 - m) * (1 - r),
        m + (1 - m) * (1 + xp.cos(math.pi * r)) / 2,
        m + (1 - m) * (1 - xp.sqrt(r)),
        1.0 / (1.0 + r * (1.0 / m_pos - 1.0)),
        xp.power(m_pos, r),
        m + (1 - m) * (1 - r * r),
    ]


def _mult(xp, shape, r, m):
    if isinstance(shape, str):
        return _mult_all(xp, r, m)[DECAY_SHAPES.index(shape)]
    idx = xp.asarray(shape)
    options = _mult_all(xp, r, m)
    return xp.select([idx == i for i in range(len(DECAY_SHAPES))], options, options[0])


def decay_multiplier(shape: str | int | Any, r: Any, min_ratio: Any) -> jax.Array:
    """The decay multiplier ``mult(r)`` of THEORY.md §5 at progress ``r`` in [0, 1].

    | shape | mult(r) |
    |---|---|
    | linear | m + (1-m)(1-r) |
    | cosine | m + (1-m)(1 + cos(pi r))/2 |
    | 1-sqrt | m + (1-m)(1 - sqrt(r)) |
    | inverse | 1 / (1 + r (1/m - 1)), needs m > 0 |
    | exponential | m^r, needs m > 0 |
    | square | m + (1-m)(1 - r^2) |

    Args:
      shape: a name of :data:`DECAY_SHAPES` or an index into it; an index may be an integer array
        (even traced): all shapes are evaluated and one is selected, so ``vmap`` over shape works.
      r: decay progress, clipped to [0, 1].
      min_ratio: ``m``, the final multiplier (in [0, 1]; > 0 for inverse and exponential).

    Returns:
      ``mult(r)``, broadcast over ``shape``, ``r`` and ``min_ratio``.

    >>> [round(float(decay_multiplier(s, 0.5, 0.1)), 4) for s in ("linear", "1-sqrt", "inverse")]
    [0.55, 0.3636, 0.1818]
    """
    if not _is_traced(shape) and not (isinstance(shape, (np.ndarray, jax.Array))
                                       and np.ndim(shape) > 0):
        shape = DECAY_SHAPES[shape_index(shape)]
    _check_min_ratio(min_ratio, None if isinstance(shape, str) or _is_traced(shape)
                     else np.asarray(shape))
    if isinstance(shape, str) and shape in _NEEDS_POSITIVE_MIN and not _is_traced(min_ratio):
        if np.any(np.asarray(min_ratio) <= 0):
            raise ValueError(f"min_ratio={_num(min_ratio)} must be in (0, 1] for decay_shape "
                             f"{shape} (the decay divides by / takes powers of min_ratio)")
    r = jnp.clip(jnp.asarray(r, dtype=jnp.result_type(float)), 0.0, 1.0)
    return _mult(jnp, shape, r, jnp.asarray(min_ratio, dtype=r.dtype))


# --------------------------------------------------------------------------------------------
# the one evaluation routine (numpy or jax.numpy)
# --------------------------------------------------------------------------------------------

def _cycles_lr(xp, t, *, peak, ends, warmup, rewarmup, shape, min_ratio, decay_frac=None,
               decay_steps=None):
    """LR at steps ``t`` of a run of cycles ending at ``ends`` (see the module docstring).

    ``decay_frac is None`` means a full decay (the whole cycle after its (re)warmup: cosine).
    Branch-free: every argument may be an array (traced under jit/vmap).
    """
    t = xp.asarray(t)
    ends = xp.asarray(ends, dtype=t.dtype)
    n = ends.shape[-1]
    k = xp.minimum(xp.sum(t[..., None] >= ends, axis=-1), n - 1)  # cycle index; t >= e_K: last
    end = xp.take(ends, k)
    start = xp.where(k > 0, xp.take(ends, xp.maximum(k - 1, 0)), 0.0)
    length = end - start
    u = t - start
    first = k == 0
    w = xp.where(first, warmup, rewarmup)
    if decay_frac is None:
        d = length - w
    else:
        d = _decay_len(xp, decay_frac, decay_steps, length)
    lo = peak * min_ratio
    w_start = xp.where(first, 0.0, lo)  # Levanter: linear_schedule(previous_end, peak, rewarmup)
    warm_lr = w_start + (peak - w_start) * u / xp.where(w > 0, w, 1.0)
    r = xp.clip((u - (length - d)) / xp.where(d > 0, d, 1.0), 0.0, 1.0)
    decay_lr = peak * _mult(xp, shape, r, min_ratio)
    lr = xp.where(u < w, warm_lr, xp.where(u >= length - d, decay_lr, peak))
    return lr


def _float_steps(step):
    return jnp.asarray(step, dtype=jnp.result_type(float))


# --------------------------------------------------------------------------------------------
# schedule classes
# --------------------------------------------------------------------------------------------

def _pytree(cls):
    cls = dataclasses.dataclass(frozen=True, eq=False, repr=False)(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    return jax.tree_util.register_dataclass(cls, data_fields=fields, meta_fields=[])


class _Base:
    kind: str = ""

    def describe(self) -> dict:
        """The kind and the parameters as Python numbers (lists for a batch), for exports."""
        return {"kind": self.kind, **{k: v for k, v in self._params().items()}}

    def _params(self) -> dict:
        return {f.name: _intify(f.name, _num(getattr(self, f.name)))
                for f in dataclasses.fields(self)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"rv.schedules.{self.kind}({args})"

    def _eval(self, xp, t):
        """The LR at steps ``t`` with array module ``xp`` (jax.numpy or numpy)."""
        raise NotImplementedError

    def __call__(self, step):
        return self._eval(jnp, _float_steps(step))

    def _numpy_lr(self, t):
        return self._eval(np, t)


@_pytree
class Constant(_Base):
    """``eta(t) = value``."""
    value: Any
    kind = "constant"

    def __call__(self, step):
        t = _float_steps(step)
        return jnp.zeros_like(t) + jnp.asarray(self.value, dtype=t.dtype)

    def _numpy_lr(self, t):
        return np.zeros_like(t) + np.asarray(self.value, dtype=np.float64)


@_pytree
class Cosine(_Base):
    """Linear warmup to the peak, then cosine decay to ``min_ratio * peak_value`` at num_steps."""
    peak_value: Any
    num_steps: Any
    warmup_steps: Any
    min_ratio: Any
    kind = "cosine"

    def _eval(self, xp, t):
        return _cycles_lr(xp, t, peak=self.peak_value, ends=xp.asarray(self.num_steps)[..., None],
                          warmup=self.warmup_steps, rewarmup=0.0, shape="cosine",
                          min_ratio=self.min_ratio)


@_pytree
class WSD(_Base):
    """Warmup, stable at the peak, then a decay of ``decay_shape`` over the last ``D`` steps."""
    peak_value: Any
    num_steps: Any
    warmup_steps: Any
    decay_fraction: Any
    decay_steps: Any
    decay_shape: Any
    min_ratio: Any
    kind = "wsd"

    def _eval(self, xp, t):
        return _cycles_lr(xp, t, peak=self.peak_value, ends=xp.asarray(self.num_steps)[..., None],
                          warmup=self.warmup_steps, rewarmup=0.0, shape=self.decay_shape,
                          min_ratio=self.min_ratio, decay_frac=self.decay_fraction,
                          decay_steps=self.decay_steps)

    def _params(self):
        return _decay_params(self)


@_pytree
class WSDS(_Base):
    """WSD-S: cycles of stable + decay ending at ``checkpoints``; back to the peak after each."""
    peak_value: Any
    checkpoints: Any
    warmup_steps: Any
    rewarmup_steps: Any
    decay_fraction: Any
    decay_steps: Any
    decay_shape: Any
    min_ratio: Any
    kind = "wsd_s"

    @property
    def num_steps(self):
        return self.checkpoints[..., -1]

    def _eval(self, xp, t):
        return _cycles_lr(xp, t, peak=self.peak_value, ends=self.checkpoints,
                          warmup=self.warmup_steps, rewarmup=self.rewarmup_steps,
                          shape=self.decay_shape, min_ratio=self.min_ratio,
                          decay_frac=self.decay_fraction, decay_steps=self.decay_steps)

    def _params(self):
        return _decay_params(self)


@_pytree
class CyclicCosine(_Base):
    """Cosine cycles ending at ``checkpoints`` (warm restarts), optional linear (re)warmup."""
    peak_value: Any
    checkpoints: Any
    warmup_steps: Any
    rewarmup_steps: Any
    min_ratio: Any
    kind = "cyclic_cosine"

    @property
    def num_steps(self):
        return self.checkpoints[..., -1]

    def _eval(self, xp, t):
        return _cycles_lr(xp, t, peak=self.peak_value, ends=self.checkpoints,
                          warmup=self.warmup_steps, rewarmup=self.rewarmup_steps, shape="cosine",
                          min_ratio=self.min_ratio)


_STEP_FIELDS = ("num_steps", "warmup_steps", "rewarmup_steps", "checkpoints", "decay_steps")


def _intify(name: str, value: Any) -> Any:
    """Step counts as ints in describe()/repr (they are stored as float leaves)."""
    if name not in _STEP_FIELDS:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_intify(name, v) for v in value]
    return value


def _decay_params(s) -> dict:
    p = _Base._params(s)
    frac, steps = p.pop("decay_fraction"), p.pop("decay_steps")
    uses_steps = not _is_traced(s.decay_steps) and np.any(np.asarray(s.decay_steps) > 0)
    if uses_steps:
        p["decay"] = steps
    else:
        p["decay"] = frac
    shape = p.pop("decay_shape")
    if isinstance(shape, int):
        shape = DECAY_SHAPES[shape]
    elif isinstance(shape, list):
        shape = [DECAY_SHAPES[int(i)] for i in np.ravel(shape)]
    p["decay_shape"] = shape
    p["min_ratio"] = p.pop("min_ratio")
    return p


@_pytree
class Tabulated(_Base):
    """``eta(t) = values[clip(t, 0, len(values) - 1)]``: any schedule given as an array (e.g. the
    output of ``rivervalley.theory.optimize_schedule``), held at its last value after the end."""
    values: Any
    kind = "tabulated"

    @property
    def num_steps(self):
        return int(np.shape(self.values)[-1])

    def __call__(self, step):
        t = jnp.asarray(step)
        idx = jnp.clip(jnp.floor(t).astype(jnp.int32), 0, self.num_steps - 1)
        return jnp.asarray(self.values, dtype=jnp.result_type(float))[idx]

    def _numpy_lr(self, t):
        idx = np.clip(np.floor(np.asarray(t)).astype(np.int64), 0, self.num_steps - 1)
        return np.asarray(self.values, dtype=np.float64)[idx]

    def _params(self) -> dict:
        return {"values": np.asarray(self.values, dtype=np.float64).tolist()}

    def __repr__(self) -> str:
        return f"rv.schedules.tabulated(<{self.num_steps} values>)"


Schedule = Constant | Cosine | WSD | WSDS | CyclicCosine | Tabulated


# --------------------------------------------------------------------------------------------
# factories (validation lives here, on concrete values only)
# --------------------------------------------------------------------------------------------

def constant(value: float) -> Constant:
    """A constant learning rate, ``eta(t) = value``.

    >>> round(float(constant(0.1)(7)), 6)
    0.1
    """
    _check_finite_nonneg("value", value, " (a learning rate)")
    return Constant(_leaf(value))


def cosine(peak_value: float, num_steps: int, *, warmup_steps: int = 0,
           min_ratio: float = 0.0) -> Cosine:
    """Linear warmup then cosine decay; equals ``optax.warmup_cosine_decay_schedule``.

    ``eta(t) = peak * t / W`` for ``t < W``; then with ``r = (t - W) / (T - W)`` clipped to [0, 1],
    ``eta(t) = peak * (m + (1 - m) (1 + cos(pi r)) / 2)``; ``eta(T) = m * peak``. This is
    ``optax.warmup_cosine_decay_schedule(0, peak, W, decay_steps=T, end_value=m * peak)``.

    Args:
      peak_value: the peak LR (>= 0).
      num_steps: ``T``, the step at which the LR reaches ``min_ratio * peak_value``.
      warmup_steps: ``W`` in [0, T].
      min_ratio: ``m`` in [0, 1].

    >>> s = cosine(1.0, 100, warmup_steps=10, min_ratio=0.1)
    >>> [round(float(s(t)), 4) for t in (5, 10, 55, 100)]
    [0.5, 1.0, 0.55, 0.1]
    """
    _check_finite_nonneg("peak_value", peak_value, " (a learning rate)")
    _check_ends("num_steps", np.asarray(num_steps)[..., None] if not _is_traced(num_steps)
                else num_steps)
    _check_steps("warmup_steps", warmup_steps)
    _check_min_ratio(min_ratio)
    if not _is_traced((num_steps, warmup_steps)):
        _check_cycles(np.asarray(num_steps, np.float64)[..., None], warmup_steps, 0, 0, 0,
                      full_decay=True, single=True)
    return Cosine(_leaf(peak_value), _leaf(num_steps), _leaf(warmup_steps), _leaf(min_ratio))


def wsd(peak_value: float, num_steps: int, *, warmup_steps: int = 0, decay: float | int = 0.1,
        decay_shape: str | int = "linear", min_ratio: float = 0.0) -> WSD:
    """Warmup-Stable-Decay: linear warmup, constant at the peak, decay over the last ``D`` steps.

    ``D = floor(decay * T)`` for a fraction ``decay`` in (0, 1] or ``D = decay`` for an int.
    ``eta(t) = peak * t / W`` (t < W); ``peak`` (W <= t < T - D);
    ``peak * mult((t - (T - D)) / D)`` (t >= T - D; ``mult`` of :func:`decay_multiplier`,
    ``eta(T) = min_ratio * peak``).

    Args:
      peak_value: the peak LR (>= 0).
      num_steps: ``T``.
      warmup_steps: ``W``; ``W + D <= T``.
      decay: fraction of ``num_steps`` in (0, 1] (float) or a step count >= 1 (int).
      decay_shape: a name of :data:`DECAY_SHAPES` or its index.
      min_ratio: ``m`` in [0, 1] (> 0 for inverse / exponential).

    >>> s = wsd(1.0, 100, decay=0.2, decay_shape="1-sqrt")
    >>> [round(float(s(t)), 4) for t in (79, 80, 85, 100)]
    [1.0, 1.0, 0.5, 0.0]
    """
    _check_finite_nonneg("peak_value", peak_value, " (a learning rate)")
    if not _is_traced(num_steps):
        _check_ends("num_steps", np.asarray(num_steps)[..., None])
    _check_steps("warmup_steps", warmup_steps)
    frac, steps = _split_decay(decay)
    idx = _shape_leaf(decay_shape)
    _check_min_ratio(min_ratio, idx)
    if not _is_traced(num_steps):
        _check_cycles(np.asarray(num_steps, np.float64)[..., None], warmup_steps, 0, frac, steps,
                      full_decay=False, single=True)
    return WSD(_leaf(peak_value), _leaf(num_steps), _leaf(warmup_steps), _leaf(frac), _leaf(steps),
               idx, _leaf(min_ratio))


def wsd_s(peak_value: float, checkpoints: Sequence[int], *, warmup_steps: int = 0,
          decay: float | int = 0.1, decay_shape: str | int = "linear", min_ratio: float = 0.0,
          rewarmup_steps: int = 0) -> WSDS:
    """WSD-S (Levanter's cycles): stable + decay per cycle, restarting from the decayed weights.

    ``checkpoints`` are ALL the cycle ends ``e_1 < ... < e_K`` (``e_K`` ends the run); Levanter's
    ``cycles=[e_1, ..., e_{K-1}], num_train_steps=e_K``. Cycle ``k`` = ``[e_{k-1}, e_k)`` of length
    ``L_k``: (re)warmup ``W_k`` (``warmup_steps`` for k = 1, ``rewarmup_steps`` after), stable,
    then the decay over ``D_k = floor(decay * L_k)`` (or ``decay`` steps):
    ``eta(t) = peak * mult((t - (e_k - D_k)) / D_k)`` for ``e_k - D_k <= t < e_k``. The minimum
    ``min_ratio * peak`` is at ``r = 1``, i.e. at step ``e_k``, which is already the next cycle's
    first step: there the LR is back at the peak (``rewarmup_steps=0``) or equals the minimum and
    rises linearly to the peak over ``rewarmup_steps``. Only ``t >= e_K`` stays at the minimum.
    This matches Levanter's ``OptimizerConfig.lr_scheduler`` (stanford-crfm/levanter,
    ``src/levanter/optim/config.py``: per-cycle ``_convert_frac_or_steps(decay, cycle_steps)``,
    ``optax.join_schedules`` at the cycle ends, re-warmup ``linear_schedule(previous_end, lr,
    rewarmup)``). ``wsd_s(p, [T], ...)`` equals ``wsd(p, T, ...)``.

    >>> s = wsd_s(1.0, [300, 700, 1000], decay=0.1, decay_shape="cosine", min_ratio=0.1)
    >>> [round(float(s(t)), 3) for t in (269, 270, 299, 300, 660, 699, 700, 1000)]
    [1.0, 1.0, 0.102, 1.0, 1.0, 0.101, 1.0, 0.1]
    """
    _check_finite_nonneg("peak_value", peak_value, " (a learning rate)")
    ends = checkpoints if _is_traced(checkpoints) else np.asarray(checkpoints, np.float64)
    _check_ends("checkpoints", ends)
    _check_steps("warmup_steps", warmup_steps)
    _check_steps("rewarmup_steps", rewarmup_steps)
    frac, steps = _split_decay(decay)
    idx = _shape_leaf(decay_shape)
    _check_min_ratio(min_ratio, idx)
    _check_cycles(ends, warmup_steps, rewarmup_steps, frac, steps, full_decay=False, single=False)
    return WSDS(_leaf(peak_value), _leaf(ends), _leaf(warmup_steps), _leaf(rewarmup_steps),
                _leaf(frac), _leaf(steps), idx, _leaf(min_ratio))


def cyclic_cosine(peak_value: float, checkpoints: Sequence[int], *, warmup_steps: int = 0,
                  rewarmup_steps: int = 0, min_ratio: float = 0.0) -> CyclicCosine:
    """Cosine cycles ending at ``checkpoints`` (SGDR warm restarts), Levanter's ``decay=None``.

    In cycle ``k`` = ``[e_{k-1}, e_k)`` after its (re)warmup ``W_k``:
    ``eta(t) = peak * (m + (1 - m) (1 + cos(pi r)) / 2)`` with
    ``r = (t - e_{k-1} - W_k) / (L_k - W_k)``.
    With equal cycles ``C`` and no warmup this is PyTorch's
    ``CosineAnnealingWarmRestarts(T_0=C, eta_min=m * peak)``. Minimum and restarts as in
    :func:`wsd_s`.

    >>> s = cyclic_cosine(1.0, [100, 200], min_ratio=0.1)
    >>> [round(float(s(t)), 4) for t in (0, 50, 100, 150, 200)]
    [1.0, 0.55, 1.0, 0.55, 0.1]
    """
    _check_finite_nonneg("peak_value", peak_value, " (a learning rate)")
    ends = checkpoints if _is_traced(checkpoints) else np.asarray(checkpoints, np.float64)
    _check_ends("checkpoints", ends)
    _check_steps("warmup_steps", warmup_steps)
    _check_steps("rewarmup_steps", rewarmup_steps)
    _check_min_ratio(min_ratio)
    _check_cycles(ends, warmup_steps, rewarmup_steps, 0, 0, full_decay=True, single=False)
    return CyclicCosine(_leaf(peak_value), _leaf(ends), _leaf(warmup_steps),
                        _leaf(rewarmup_steps), _leaf(min_ratio))


def tabulated(values) -> Tabulated:
    """A schedule from an array of learning rates (step t uses ``values[t]``; the last value holds
    after the end).

    >>> s = tabulated([0.3, 0.2, 0.1])
    >>> [round(float(s(t)), 2) for t in (0, 2, 5)]
    [0.3, 0.1, 0.1]
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"values has shape {arr.shape}; expected a non-empty 1-D array")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("values must be finite and >= 0 (learning rates)")
    return Tabulated(_leaf(arr))


def decay_steps_of(length: int, decay: float | int) -> int:
    """The decay length ``D`` (steps) of a cycle of ``length`` steps: ``floor(decay * length)`` or
    ``decay`` for an int (Levanter's ``_convert_frac_or_steps``).

    >>> decay_steps_of(25000, 0.1), decay_steps_of(25000, 300)
    (2500, 300)
    """
    frac, steps = _split_decay(decay)
    return int(_decay_len(np, frac, steps, float(length)))


# --------------------------------------------------------------------------------------------
# adapters
# --------------------------------------------------------------------------------------------

def as_array(schedule: Callable, num_steps: int) -> np.ndarray:
    """The LRs of steps ``0 .. num_steps - 1`` as a NumPy array (evaluated with JAX, as trained).

    >>> as_array(wsd(1.0, 4, decay=0.5), 4).tolist()
    [1.0, 1.0, 1.0, 0.5]
    """
    if not isinstance(num_steps, (int, np.integer)) or num_steps < 0:
        raise ValueError(f"num_steps={num_steps!r} is outside the whole numbers >= 0")
    return np.asarray(_evaluate(schedule, jnp.arange(int(num_steps))))


@jax.jit
def _evaluate(schedule, steps):
    # one compilation per (schedule kind, leaf shapes, len(steps)); eager evaluation would compile
    # every primitive separately for each new shape
    return schedule(steps)


def torch_lambda(schedule: _Base, peak_value: float) -> Callable[[int], float]:
    """A plain-Python ``epoch -> lr / peak_value`` for ``torch.optim.lr_scheduler.LambdaLR``.

    Evaluates the same closed form as the JAX schedule with NumPy in float64 (no JAX dispatch,
    no torch import). Use with ``LambdaLR(opt, torch_lambda(s, peak))`` and ``lr=peak`` in the
    optimizer; ``LambdaLR`` calls it with the number of ``scheduler.step()`` calls so far.

    >>> f = torch_lambda(cosine(0.5, 100), 0.5)
    >>> round(f(0), 4), round(f(50), 4), round(f(100), 4)
    (1.0, 0.5, 0.0)
    """
    if _is_traced(schedule):
        raise ValueError("schedule must be concrete (not traced) for torch_lambda")
    if not (isinstance(peak_value, (int, float, np.number)) and math.isfinite(peak_value)
            and peak_value > 0):
        raise ValueError(f"peak_value={peak_value!r} is outside (0, inf)")
    peak = float(peak_value)

    def factor(epoch: int) -> float:
        with np.errstate(all="ignore"):
            return float(schedule._numpy_lr(np.float64(epoch))) / peak

    return factor
