"""Learning-rate schedules as pytrees: ``constant``, ``cosine``, ``wsd``, ``wsd_s``,
``cyclic_cosine``, ``tabulated``.

Every factory returns a small frozen dataclass registered as a pytree (the package's one idiom,
``rivervalley._pytree``). Its numeric parameters (peak, min ratio, decay fraction or
steps, warmup, the decay-shape *index*, the array of cycle ends) are array leaves, and evaluation is
branch-free (``jnp.where`` / ``jnp.clip`` / ``jnp.select``). Hence a schedule is an
``optax.Schedule`` (``schedule(step) -> lr``) **and** a value that can be passed through ``jit`` /
``vmap``: a batch of schedules is one schedule with stacked leaves, so a sweep over peak, decay
fraction, min ratio, decay *shape* and cycle ends is ONE compiled program. optax's and Levanter's
schedules cannot do this: their parameters are Python numbers baked into closures (and Levanter
picks the decay shape with a Python ``match``), so every setting is a new function and a new
compilation.

Conventions (THEORY.md §5). Step ``t`` counts updates from 0; the LR of update ``t`` is ``eta(t)``.
Warmup is linear from 0: ``eta(t) = peak * t / W`` for ``t < W``. A decay over ``D`` steps starting
at ``t0`` has progress ``r = (t - t0) / D`` and ``eta = peak * mult(r)`` (:func:`decay_multiplier`).

**Steps are integers.** Every step count (the step, ``num_steps``, warmup, cycle ends, decay
lengths) is an integer leaf and all step arithmetic is integer arithmetic (int32 inside JAX, int64
with x64 and on the host); the progress ``r = n / D`` and ``1 - r = (D - n) / D`` are formed from
exact integers, so a schedule is as exact at step 2**31 - 2 as at step 10 (a float32 step would
lose every step above 2**24). Runs may be up to ``2**31 - 1`` steps (the int32 step counter of
optax and of the engine); a larger step count is refused rather than wrapped. What a schedule is
called with:

- an integer (Python, NumPy or JAX, scalar or array; optax and the engine pass int32 counters);
- a float holding a whole number, which is converted (``s(850.0)`` is ``s(850)``); a concrete
  float that is fractional, NaN or infinite raises ``ValueError``. A *traced* float step is
  floored, and a traced NaN gives a NaN learning rate (never the peak), as in optax;
- a negative step evaluates as step 0, as optax's ``linear_schedule`` (it clips its count to
  ``[0, T]``); a step past the end holds the final value.

**Decay lengths.** A decay given as a fraction ``phi`` of a cycle of ``L`` steps lasts
``D = floor(phi * L)`` steps in exact decimal arithmetic (0.29 of 100 is 29 steps, where
Levanter's float64 ``int(phi * L)`` gives 28); an integer ``decay`` is a step count. The rule in
full, and its traced (in-graph) form, is in :mod:`rivervalley._schedule_args`;
:func:`decay_steps_of` applies it. The factories derive ``D`` and store it as an integer leaf
(``decay_length`` / ``decay_lengths``), which is why a schedule is built only by its factory.

Cycles (``wsd_s``, ``cyclic_cosine``) follow Levanter's ``OptimizerConfig.lr_scheduler``
(stanford-crfm/levanter, ``src/levanter/optim/config.py``, the version with ``cycles``, ``decay``
and ``rewarmup``; it chains optax schedules with ``optax.join_schedules`` at the cycle ends). Cycle
``k`` spans steps ``[e_{k-1}, e_k)`` (``e_0 = 0``); inside it: warmup (first cycle) or re-warmup
(later cycles), then constant at the peak, then the decay over its last ``D_k`` steps. **Where the
minimum sits**: the decay reaches ``r = 1`` (LR = ``min_ratio * peak``) exactly at the cycle end
``e_k``, which is already the first step of the next cycle; so the last update of a cycle,
``e_k - 1``, uses ``mult((D_k - 1) / D_k)`` and step ``e_k`` is back at the peak (no re-warmup), or
equals the minimum and re-warms linearly from it to the peak over ``rewarmup_steps`` (Levanter's
``linear_schedule(previous_end, peak, rewarmup)``). Only the final end ``e_K`` (the end of the run)
and later steps sit at the minimum, exactly as in ``optax.warmup_cosine_decay_schedule`` (whose
value at ``decay_steps`` is ``end_value``). A full (cosine) decay needs at least one step: a
warmup that fills its cycle is refused (as optax's ``cosine_decay_schedule`` refuses
``decay_steps=0``).

Decay shapes are names of :data:`DECAY_SHAPES` or indices into it; concrete index arrays are
checked (every index in ``0..5``); a *traced* index outside ``0..5`` gives NaN, never another shape.
Arguments are checked on the host, once per factory call (bools are never numbers); traced
values pass unchecked. Calling a schedule class (``WSD(...)``) raises ``TypeError``: the classes
are types (``isinstance``, annotations), the factories their constructors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley import _cycles
from rivervalley import _schedule_args as _args
from rivervalley._pytree import build, pytree
from rivervalley._schedule_args import DECAY_SHAPES, MAX_STEPS, decay_steps_of, shape_index
from rivervalley._validate import check_int, check_real, fmt, is_traced

__all__ = [
    "DECAY_SHAPES",
    "MAX_STEPS",
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
    "shape_index",
    "as_array",
]

def _num(x: Any) -> Any:
    """A leaf as a Python number (or nested list for a batch), for describe() / repr."""
    if is_traced(x):
        return "<traced>"
    a = np.asarray(x)
    return a.item() if a.ndim == 0 else a.tolist()


# --------------------------------------------------------------------------------------------
# decay shapes
# --------------------------------------------------------------------------------------------

def decay_multiplier(decay_shape: str | int | Any, r: Any, min_ratio: Any) -> jax.Array:
    """The decay multiplier ``mult(r)`` of THEORY.md §5 at progress ``r`` in [0, 1].

    | decay_shape | mult(r) |
    |---|---|
    | linear | m + (1-m)(1-r) |
    | cosine | m + (1-m)(1 + cos(pi r))/2 |
    | 1-sqrt | m + (1-m)(1 - sqrt(r)) |
    | inverse | 1 / (1 + r (1/m - 1)), needs m > 0 |
    | exponential | m^r, needs m > 0 |
    | square | m + (1-m)(1 - r^2) |

    (Evaluated in forms without cancellation near ``r = 1``: ``(1 + cos(pi r))/2 = sin^2(pi (1-r)
    / 2)``, ``1 - sqrt(r) = (1-r)/(1 + sqrt(r))``, ``1 - r^2 = (1-r)(1+r)``.)

    Args:
      decay_shape: a name of :data:`DECAY_SHAPES` or an index into it; an index may be an integer array
        (even traced): all shapes are evaluated and one is selected, so ``vmap`` over shape works
        (a traced index outside 0..5 gives NaN).
      r: decay progress, clipped to [0, 1].
      min_ratio: ``m``, the final multiplier (in [0, 1]; > 0 for inverse and exponential).

    Returns:
      ``mult(r)``, broadcast over ``decay_shape``, ``r`` and ``min_ratio``.

    >>> [round(float(decay_multiplier(s, 0.5, 0.1)), 4) for s in ("linear", "1-sqrt", "inverse")]
    [0.55, 0.3636, 0.1818]
    """
    idx = _args.shape_leaf(decay_shape)
    _args.ratio_leaf(min_ratio, idx)
    if not is_traced(idx) and np.ndim(idx) == 0:
        idx = DECAY_SHAPES[int(idx)]
    r = jnp.clip(jnp.asarray(r, dtype=jnp.result_type(float)), 0.0, 1.0)
    return _cycles.multiplier(jnp, idx, r, 1.0 - r, jnp.asarray(min_ratio, dtype=r.dtype))


# --------------------------------------------------------------------------------------------
# schedule classes
# --------------------------------------------------------------------------------------------

class _Base:
    kind: str = ""
    #: leaves the factory derives from the parameters (not shown by describe / repr)
    _derived: tuple[str, ...] = ()

    def describe(self) -> dict:
        """The kind and the parameters as Python numbers (lists for a batch), for exports."""
        return {"kind": self.kind, **self._params()}

    def _params(self) -> dict:
        return {f.name: _num(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.name not in self._derived}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"rv.schedules.{self.kind}({args})"

    def _eval(self, xp, t):
        """The LR at integer steps ``t >= 0`` with array module ``xp`` (jax.numpy or numpy)."""
        raise NotImplementedError

    def __call__(self, step):
        t, nan = _cycles.int_steps(step)
        lr = self._eval(jnp, t)
        return lr if nan is None else jnp.where(nan, jnp.full_like(lr, jnp.nan), lr)

    def _numpy_lr(self, step) -> np.ndarray:
        """The LR in float64 / int64 on the host (NumPy, no JAX dispatch; concrete leaves)."""
        return self._eval(np, _cycles.host_steps(step))


def _fdtype(xp):
    return np.float64 if xp is np else jnp.result_type(float)


@pytree(factory="rivervalley.schedules.constant")
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Constant(_Base):
    """``eta(t) = peak_value``. Built by :func:`constant`."""
    peak_value: Any
    kind = "constant"

    def _eval(self, xp, t):
        return xp.zeros(xp.shape(t), _fdtype(xp)) + xp.asarray(self.peak_value, _fdtype(xp))


@pytree(factory="rivervalley.schedules.cosine")
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Cosine(_Base):
    """Linear warmup to the peak, then cosine decay to ``min_ratio * peak_value`` at num_steps."""
    peak_value: Any
    num_steps: Any
    warmup_steps: Any
    min_ratio: Any
    kind = "cosine"

    def _eval(self, xp, t):
        return _cycles.cycles_lr(xp, t, peak=self.peak_value,
                                 ends=xp.asarray(self.num_steps)[..., None],
                                 warmup=self.warmup_steps, rewarmup=0, shape="cosine",
                                 min_ratio=self.min_ratio)


@pytree(factory="rivervalley.schedules.wsd")
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class WSD(_Base):
    """Warmup, stable at the peak, then a decay of ``decay_shape`` over the last ``D`` steps."""
    peak_value: Any
    num_steps: Any
    warmup_steps: Any
    decay_fraction: Any
    decay_steps: Any
    decay_shape: Any
    min_ratio: Any
    decay_length: Any  # D, derived by the factory
    kind = "wsd"
    _derived = ("decay_length",)

    def _eval(self, xp, t):
        return _cycles.cycles_lr(xp, t, peak=self.peak_value,
                                 ends=xp.asarray(self.num_steps)[..., None],
                                 warmup=self.warmup_steps, rewarmup=0, shape=self.decay_shape,
                                 min_ratio=self.min_ratio, decay=self.decay_length)

    def _params(self):
        return _decay_params(self)


@pytree(factory="rivervalley.schedules.wsd_s")
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
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
    decay_lengths: Any  # D_k per cycle, derived by the factory
    kind = "wsd_s"
    _derived = ("decay_lengths",)

    @property
    def num_steps(self):
        return self.checkpoints[..., -1]

    def _eval(self, xp, t):
        return _cycles.cycles_lr(xp, t, peak=self.peak_value, ends=self.checkpoints,
                                 warmup=self.warmup_steps, rewarmup=self.rewarmup_steps,
                                 shape=self.decay_shape, min_ratio=self.min_ratio,
                                 decay=self.decay_lengths)

    def _params(self):
        return _decay_params(self)


@pytree(factory="rivervalley.schedules.cyclic_cosine")
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
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
        return _cycles.cycles_lr(xp, t, peak=self.peak_value, ends=self.checkpoints,
                                 warmup=self.warmup_steps, rewarmup=self.rewarmup_steps,
                                 shape="cosine", min_ratio=self.min_ratio)


def _decay_params(s) -> dict:
    p = _Base._params(s)
    frac, steps = p.pop("decay_fraction"), p.pop("decay_steps")
    if is_traced(s.decay_steps) or is_traced(s.decay_fraction):
        p["decay"] = "<traced>"
    else:
        st = np.asarray(s.decay_steps)
        if st.ndim == 0:
            p["decay"] = steps if st > 0 else frac
        else:
            p["decay"] = [int(a) if a > 0 else float(b) for a, b in
                          zip(st.ravel(), np.broadcast_to(s.decay_fraction, st.shape).ravel())]
    shape = p.pop("decay_shape")
    if isinstance(shape, int):
        shape = DECAY_SHAPES[shape]
    elif isinstance(shape, list):
        shape = [DECAY_SHAPES[int(i)] for i in np.ravel(shape)]
    p["decay_shape"] = shape
    p["min_ratio"] = p.pop("min_ratio")
    return p


@pytree(factory="rivervalley.schedules.tabulated")
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Tabulated(_Base):
    """``eta(t) = values[clip(t, 0, len(values) - 1)]``: any schedule given as an array (e.g. the
    output of ``rivervalley.theory.optimize_schedule``), held at its last value after the end."""
    values: Any
    kind = "tabulated"

    @property
    def num_steps(self):
        return int(np.shape(self.values)[-1])

    def _eval(self, xp, t):
        hi = xp.full_like(t, self.num_steps - 1)
        return xp.asarray(self.values, _fdtype(xp))[xp.minimum(t, hi)]

    def _params(self) -> dict:
        return {"values": np.asarray(self.values, dtype=np.float64).tolist()}

    def __repr__(self) -> str:
        return f"rv.schedules.tabulated(<{self.num_steps} values>)"


#: Any rivervalley schedule: the union of the schedule classes (for annotations).
Schedule = Constant | Cosine | WSD | WSDS | CyclicCosine | Tabulated


# --------------------------------------------------------------------------------------------
# factories (validation lives here, on concrete values only)
# --------------------------------------------------------------------------------------------

def constant(peak_value: float) -> Constant:
    """A constant learning rate, ``eta(t) = peak_value`` (the peak of a run that never decays).

    >>> round(float(constant(0.1)(7)), 6)
    0.1
    """
    return build(Constant, peak_value=_args.lr_leaf("peak_value", peak_value))


def cosine(peak_value: float, num_steps: int, *, warmup_steps: int = 0,
           min_ratio: float = 0.0) -> Cosine:
    """Linear warmup then cosine decay; equals ``optax.warmup_cosine_decay_schedule``.

    ``eta(t) = peak * t / W`` for ``t < W``; then with ``r = (t - W) / (T - W)`` clipped to [0, 1],
    ``eta(t) = peak * (m + (1 - m) (1 + cos(pi r)) / 2)``; ``eta(T) = m * peak``. This is
    ``optax.warmup_cosine_decay_schedule(0, peak, W, decay_steps=T, end_value=m * peak)``.

    Args:
      peak_value: the peak LR (>= 0).
      num_steps: ``T``, the step at which the LR reaches ``min_ratio * peak_value``.
      warmup_steps: ``W`` in [0, T - 1]: the decay needs at least one step (``W = T`` would leave
        none and never reach the minimum; it is refused, as optax refuses it).
      min_ratio: ``m`` in [0, 1].

    >>> s = cosine(1.0, 100, warmup_steps=10, min_ratio=0.1)
    >>> [round(float(s(t)), 4) for t in (5, 10, 55, 100)]
    [0.5, 1.0, 0.55, 0.1]
    """
    peak = _args.lr_leaf("peak_value", peak_value)
    T = _args.steps_leaf("num_steps", num_steps, lo=1)
    W = _args.steps_leaf("warmup_steps", warmup_steps)
    m = _args.ratio_leaf(min_ratio)
    if not is_traced((T, W)):
        _args.check_fit(np.asarray(T)[..., None], W, 0, None, decay=None, single=True)
    return build(Cosine, peak_value=peak, num_steps=T, warmup_steps=W, min_ratio=m)


def wsd(peak_value: float, num_steps: int, *, warmup_steps: int = 0, decay: float | int = 0.1,
        decay_shape: str | int = "linear", min_ratio: float = 0.0) -> WSD:
    """Warmup-Stable-Decay: linear warmup, constant at the peak, decay over the last ``D`` steps.

    ``D = floor(decay * T)`` (exact decimal arithmetic, see the module doc) for a fraction
    ``decay`` in (0, 1] or ``D = decay`` for an int.
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
    >>> [round(float(x), 6) for x in wsd(0.1, 20_000_000, decay=4)(jnp.arange(19_999_997, 20_000_000))]
    [0.075, 0.05, 0.025]
    """
    peak = _args.lr_leaf("peak_value", peak_value)
    T = _args.steps_leaf("num_steps", num_steps, lo=1)
    W = _args.steps_leaf("warmup_steps", warmup_steps)
    frac, steps = _args.split_decay(decay)
    idx = _args.shape_leaf(decay_shape)
    m = _args.ratio_leaf(min_ratio, idx)
    D = _args.decay_lengths(frac, steps, T)
    if not is_traced((T, W, D)):
        _args.check_fit(np.asarray(T)[..., None], W, 0, np.asarray(D)[..., None], decay=decay,
                   single=True)
    return build(WSD, peak_value=peak, num_steps=T, warmup_steps=W, decay_fraction=frac,
                 decay_steps=steps, decay_shape=idx, min_ratio=m, decay_length=D)


def wsd_s(peak_value: float, checkpoints: Sequence[int], *, warmup_steps: int = 0,
          decay: float | int = 0.1, decay_shape: str | int = "linear", min_ratio: float = 0.0,
          rewarmup_steps: int = 0) -> WSDS:
    """WSD-S (Levanter's cycles): stable + decay per cycle, restarting from the decayed weights.

    ``checkpoints`` are ALL the cycle ends ``e_1 < ... < e_K`` (``e_K`` ends the run); Levanter's
    ``cycles=[e_1, ..., e_{K-1}], num_train_steps=e_K``. Cycle ``k`` = ``[e_{k-1}, e_k)`` of length
    ``L_k``: (re)warmup ``W_k`` (``warmup_steps`` for k = 1, ``rewarmup_steps`` after), stable,
    then the decay over ``D_k = floor(decay * L_k)`` (exact decimal arithmetic; or ``decay``
    steps): ``eta(t) = peak * mult((t - (e_k - D_k)) / D_k)`` for ``e_k - D_k <= t < e_k``. The
    minimum ``min_ratio * peak`` is at ``r = 1``, i.e. at step ``e_k``, which is already the next
    cycle's first step: there the LR is back at the peak (``rewarmup_steps=0``) or equals the
    minimum and rises linearly to the peak over ``rewarmup_steps``. Only ``t >= e_K`` stays at the
    minimum. This matches Levanter's ``OptimizerConfig.lr_scheduler`` (stanford-crfm/levanter,
    ``src/levanter/optim/config.py``: per-cycle ``_convert_frac_or_steps(decay, cycle_steps)``,
    ``optax.join_schedules`` at the cycle ends, re-warmup ``linear_schedule(previous_end, lr,
    rewarmup)``). ``wsd_s(p, [T], ...)`` equals ``wsd(p, T, ...)``.

    >>> s = wsd_s(1.0, [300, 700, 1000], decay=0.1, decay_shape="cosine", min_ratio=0.1)
    >>> [round(float(s(t)), 3) for t in (269, 270, 299, 300, 660, 699, 700, 1000)]
    [1.0, 1.0, 0.102, 1.0, 1.0, 0.101, 1.0, 0.1]
    """
    peak = _args.lr_leaf("peak_value", peak_value)
    ends = _args.ends_leaf("checkpoints", checkpoints)
    W = _args.steps_leaf("warmup_steps", warmup_steps)
    R = _args.steps_leaf("rewarmup_steps", rewarmup_steps)
    frac, steps = _args.split_decay(decay)
    idx = _args.shape_leaf(decay_shape)
    m = _args.ratio_leaf(min_ratio, idx)
    xp = jnp if is_traced((ends, frac, steps)) else np
    D = _args.decay_lengths(xp.asarray(frac)[..., None], xp.asarray(steps)[..., None],
                            _args.cycle_lengths(xp, ends))
    if not is_traced((ends, W, R, D)):
        _args.check_fit(_args.cycle_lengths(np, ends), W, R, D, decay=decay, single=False)
    return build(WSDS, peak_value=peak, checkpoints=ends, warmup_steps=W, rewarmup_steps=R,
                 decay_fraction=frac, decay_steps=steps, decay_shape=idx, min_ratio=m,
                 decay_lengths=D)


def cyclic_cosine(peak_value: float, checkpoints: Sequence[int], *, warmup_steps: int = 0,
                  rewarmup_steps: int = 0, min_ratio: float = 0.0) -> CyclicCosine:
    """Cosine cycles ending at ``checkpoints`` (SGDR warm restarts), Levanter's ``decay=None``.

    In cycle ``k`` = ``[e_{k-1}, e_k)`` after its (re)warmup ``W_k``:
    ``eta(t) = peak * (m + (1 - m) (1 + cos(pi r)) / 2)`` with
    ``r = (t - e_{k-1} - W_k) / (L_k - W_k)``; ``W_k < L_k`` (the decay needs a step).
    With equal cycles ``C`` and no warmup this is PyTorch's
    ``CosineAnnealingWarmRestarts(T_0=C, eta_min=m * peak)``. Minimum and restarts as in
    :func:`wsd_s`.

    >>> s = cyclic_cosine(1.0, [100, 200], min_ratio=0.1)
    >>> [round(float(s(t)), 4) for t in (0, 50, 100, 150, 200)]
    [1.0, 0.55, 1.0, 0.55, 0.1]
    """
    peak = _args.lr_leaf("peak_value", peak_value)
    ends = _args.ends_leaf("checkpoints", checkpoints)
    W = _args.steps_leaf("warmup_steps", warmup_steps)
    R = _args.steps_leaf("rewarmup_steps", rewarmup_steps)
    m = _args.ratio_leaf(min_ratio)
    if not is_traced((ends, W, R)):
        _args.check_fit(_args.cycle_lengths(np, ends), W, R, None, decay=None, single=False)
    return build(CyclicCosine, peak_value=peak, checkpoints=ends, warmup_steps=W,
                 rewarmup_steps=R, min_ratio=m)


def tabulated(values) -> Tabulated:
    """A schedule from an array of learning rates (step t uses ``values[t]``; the last value holds
    after the end).

    >>> s = tabulated([0.3, 0.2, 0.1])
    >>> [round(float(s(t)), 2) for t in (0, 2, 5)]
    [0.3, 0.1, 0.1]
    """
    _args.no_bools("values", values)
    check_real("values", values, lo=0, what="learning rates")
    arr = np.asarray(_args.host(values), dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"values has shape {arr.shape}; expected a non-empty 1-D array")
    return build(Tabulated, values=arr)


# --------------------------------------------------------------------------------------------
# adapters
# --------------------------------------------------------------------------------------------

def as_array(schedule: Callable, num_steps: int) -> np.ndarray:
    """The LRs of steps ``0 .. num_steps - 1`` as a NumPy array, evaluated as the engine and optax
    evaluate it: with JAX, on an integer (int32) step array (float32 values unless x64 is on).

    ``schedule`` is a rivervalley schedule or any optax-style ``step -> lr`` callable (it is
    evaluated under ``jit(vmap(...))`` on int32 steps, as the engine's SGD does).

    >>> as_array(wsd(1.0, 4, decay=0.5), 4).tolist()
    [1.0, 1.0, 1.0, 0.5]
    >>> import optax
    >>> as_array(optax.linear_schedule(1.0, 0.0, 4), 5).tolist()
    [1.0, 0.75, 0.5, 0.25, 0.0]
    """
    n = check_int("num_steps", num_steps, lo=0, hi=MAX_STEPS + 1)
    steps = jnp.arange(n, dtype=_cycles.int_dtype())
    if isinstance(schedule, _Base):
        if is_traced(schedule):
            raise ValueError("as_array needs a concrete schedule, not a traced one")
        batch = [np.shape(getattr(schedule, f.name)) for f in dataclasses.fields(schedule)
                 if f.name not in ("checkpoints", "decay_lengths", "values")]
        if any(batch):
            raise ValueError(f"as_array evaluates one schedule; this one is a batch (leaf "
                             f"shapes {sorted(set(batch))}): use jax.vmap(lambda s: s(steps))")
        return np.asarray(_evaluate(schedule, steps))
    if not callable(schedule):
        raise ValueError(f"schedule={fmt(schedule)} is not a schedule (a callable step -> "
                         "learning rate); for a constant learning rate pass "
                         f"rivervalley.schedules.constant({fmt(schedule)})")
    try:
        out = jax.jit(jax.vmap(schedule))(steps)
    except Exception as e:  # noqa: BLE001 - any failure of a foreign callable under tracing
        raise ValueError(f"schedule={fmt(schedule)} could not be evaluated on a traced int32 "
                         f"step (as_array and the engine call it under jit(vmap)): "
                         f"{type(e).__name__}: {e}") from e
    out = np.asarray(out)
    if out.shape != (n,) or out.dtype.kind not in "iuf":
        raise ValueError(f"schedule={fmt(schedule)} returned {out.dtype} values of shape "
                         f"{out.shape} for {n} steps; expected one real learning rate per step")
    return out


@jax.jit
def _evaluate(schedule, steps):
    # one compilation per (schedule kind, leaf shapes, len(steps)); eager evaluation would compile
    # every primitive separately for each new shape
    return schedule(steps)
