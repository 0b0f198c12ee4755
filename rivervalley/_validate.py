"""Argument checks shared by every module: one place, one message style.

Every check runs on the host, once per call, before anything is traced; a traced value (a
``jax.core.Tracer``) passes unchecked, because its value is not known (schedules and landscapes
are pytrees whose leaves may be traced inside ``jit`` / ``vmap``). Messages name the argument, its
value and the valid range::

    >>> check_int("num_steps", 0, lo=1)
    Traceback (most recent call last):
    ...
    ValueError: num_steps=0 is outside the valid range: an integer >= 1
    >>> check_real("peak_value", True, lo=0)
    Traceback (most recent call last):
    ...
    ValueError: peak_value=True must be a real number, not a bool

Booleans are never numbers here (``True`` is an ``int`` in Python, and ``np.asarray(True, float)``
is 1.0): a bool where a number is expected is an error.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import numpy as np

__all__ = ["is_traced", "fmt", "check_real", "check_int", "check_seeds", "check_key",
           "check_choice", "check_scalar", "check_shape", "check_broadcasts", "check_bool",
           "is_bool", "SEED_MAX"]

#: The largest seed accepted: ``jax.random.key`` keeps the low 32 bits of a seed (with x64 off)
#: so two seeds that differ by 2**32 would give the same stream.
SEED_MAX = 2**32 - 1


def is_traced(x: Any) -> bool:
    """True when ``x`` (or any leaf of it) is a tracer, whose value cannot be checked."""
    return isinstance(x, jax.core.Tracer) or any(
        isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(x))


def fmt(x: Any) -> str:
    """A short, readable rendering of a checked value for an error message."""
    if is_traced(x):
        return "<traced>"
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return f"<PRNG key, shape {x.shape}>"
    if isinstance(x, (jax.Array, np.ndarray, np.generic)):
        a = np.asarray(x)
        if a.size > 8:
            return f"array(shape={a.shape}, dtype={a.dtype})"
        return repr(a.item() if a.ndim == 0 else a.tolist())
    r = repr(x)
    return r if len(r) <= 80 else r[:77] + "..."


def is_bool(x: Any) -> bool:
    """True for a Python / NumPy bool or an array of bool dtype (never a number here)."""
    if isinstance(x, (bool, np.bool_)):
        return True
    dtype = getattr(x, "dtype", None)
    try:
        return dtype is not None and np.dtype(dtype) == np.bool_
    except TypeError:  # a PRNG key dtype is no NumPy dtype
        return False


def check_real(name: str, value: Any, *, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, hi_open: bool = False, finite: bool = True,
               what: str = "") -> None:
    """``value`` (a number or an array of them) is real, finite and inside the given range.

    ``lo`` / ``hi`` are inclusive unless ``lo_open`` / ``hi_open``; ``what`` says what the number
    is ("a learning rate"). Tracers pass unchecked.

    >>> check_real("min_ratio", [0.5, 1.5], lo=0, hi=1)
    Traceback (most recent call last):
    ...
    ValueError: min_ratio=[0.5, 1.5] is outside the valid range [0, 1]
    """
    if is_traced(value):
        return
    if is_bool(value):
        raise ValueError(f"{name}={fmt(value)} must be a real number, not a bool")
    try:
        a = np.asarray(value)
        if a.dtype == object or not (np.issubdtype(a.dtype, np.integer)
                                     or np.issubdtype(a.dtype, np.floating)):
            raise TypeError
        a = a.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={fmt(value)} must be a real number"
                         + (f" ({what})" if what else "")) from None
    rng = _range_text(lo, hi, lo_open, hi_open)
    if finite and not np.all(np.isfinite(a)):
        raise ValueError(f"{name}={fmt(value)} must be finite" + (f", in {rng}" if rng else "")
                         + (f" ({what})" if what else ""))
    if np.any(np.isnan(a)):
        raise ValueError(f"{name}={fmt(value)} must not be NaN")
    bad = np.zeros(a.shape, bool)
    if lo is not None:
        bad |= (a <= lo) if lo_open else (a < lo)
    if hi is not None:
        bad |= (a >= hi) if hi_open else (a > hi)
    if np.any(bad):
        raise ValueError(f"{name}={fmt(value)} is outside the valid range {rng}"
                         + (f" ({what})" if what else ""))


def _range_text(lo, hi, lo_open, hi_open) -> str:
    if lo is None and hi is None:
        return ""
    left = "(" if lo_open or lo is None else "["
    right = ")" if hi_open or hi is None else "]"
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    return f"{left}{lo_s}, {hi_s}{right}"


def check_int(name: str, value: Any, *, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` is a Python or NumPy integer (not a bool, not a float) in ``[lo, hi]``;
    returns it as an ``int``.

    >>> check_int("record_every", 2.0, lo=1)
    Traceback (most recent call last):
    ...
    ValueError: record_every=2.0 is outside the valid range: an integer >= 1
    """
    if isinstance(value, np.ndarray) and value.ndim == 0 and np.issubdtype(value.dtype, np.integer):
        value = value.item()
    ok = (isinstance(value, (numbers.Integral, np.integer)) and not is_bool(value)
          and (lo is None or value >= lo) and (hi is None or value <= hi))
    if not ok:
        if lo is not None and hi is not None:
            rng = f"an integer in [{lo}, {hi}]"
        elif lo is not None:
            rng = f"an integer >= {lo}"
        elif hi is not None:
            rng = f"an integer <= {hi}"
        else:
            rng = "an integer"
        raise ValueError(f"{name}={fmt(value)} is outside the valid range: {rng}")
    return int(value)


def check_seeds(name: str, seeds: Any) -> np.ndarray:
    """A non-empty 1-D sequence of integer seeds in ``[0, SEED_MAX]``, as ``uint32``.

    Floats are refused (``0.2`` and ``0.7`` would both truncate to 0) and so are seeds outside
    32 bits (``2**32 + 5`` and ``5`` would give the same key).

    >>> check_seeds("seeds", [0, 2**32 + 5])
    Traceback (most recent call last):
    ...
    ValueError: seeds=[0, 4294967301] holds 4294967301, outside the valid range: integers in [0, 4294967295]
    """
    if is_traced(seeds):
        raise ValueError(f"{name} must be concrete integers, not traced values")
    if isinstance(seeds, (numbers.Integral, np.integer)) and not is_bool(seeds):
        seeds = [seeds]
    try:
        items = list(np.asarray(seeds, dtype=object).ravel()) if np.ndim(seeds) else None
    except Exception:  # noqa: BLE001 - anything that is not a sequence of numbers
        items = None
    if items is None or np.ndim(seeds) != 1 or not items:
        raise ValueError(f"{name}={fmt(seeds)} must be a non-empty 1-D sequence of integer seeds")
    for s in items:
        if is_bool(s) or not isinstance(s, (numbers.Integral, np.integer)):
            raise ValueError(f"{name}={fmt(seeds)} holds {s!r}, which is not an integer "
                             "(floats would be truncated and collide)")
        if not 0 <= int(s) <= SEED_MAX:
            raise ValueError(f"{name}={fmt(seeds)} holds {int(s)}, outside the valid range: "
                             f"integers in [0, {SEED_MAX}]")
    return np.asarray([int(s) for s in items], dtype=np.uint32)


def check_key(name: str, key: Any) -> None:
    """``key`` is a JAX PRNG key: a typed key (``jax.random.key``) or a raw ``uint32[..., 2]``
    key (``jax.random.PRNGKey``); an integer is refused with a hint."""
    if is_traced(key):
        return
    if key is None:
        raise ValueError(f"{name} is required: pass {name}=jax.random.key(seed)")
    if isinstance(key, (numbers.Number, np.generic)) or is_bool(key):
        raise ValueError(f"{name}={fmt(key)} is not a PRNG key: pass {name}=jax.random.key("
                         f"{int(key) if isinstance(key, (numbers.Integral, np.integer)) else 0})")
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return
    if dtype is not None and dtype == np.uint32 and np.shape(key)[-1:] == (2,):
        return
    raise ValueError(f"{name}={fmt(key)} is not a PRNG key: pass {name}=jax.random.key(seed)")


def check_choice(name: str, value: Any, choices: tuple[str, ...], *, what: str = "") -> str:
    """``value`` is one of the strings ``choices``; returns it.

    >>> check_choice("profile", "cubic", ("softplus", "power"), what="river profiles")
    Traceback (most recent call last):
    ...
    ValueError: profile='cubic' is unknown; known river profiles: softplus, power
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is unknown; known {what or 'values'}: "
                         f"{', '.join(choices)}")
    return value


def check_scalar(name: str, value: Any) -> None:
    """``value`` has shape () (a number or a 0-d array; tracers too: shapes are static).

    >>> check_scalar("slope", [0.1, 0.2])
    Traceback (most recent call last):
    ...
    ValueError: slope=[0.1, 0.2] must be a scalar, not shape (2,)
    """
    if np.ndim(value) != 0:
        raise ValueError(f"{name}={fmt(value)} must be a scalar, not shape {np.shape(value)}")


def check_shape(name: str, value: Any, shapes: tuple[tuple[int, ...], ...], *, what: str) -> None:
    """``value``'s shape is one of ``shapes`` (static, so tracers are checked too); ``what``
    says what the allowed shapes mean.

    >>> check_shape("sharpness", [1.0, 2.0], ((), (1,)), what="expected () or (1,)")
    Traceback (most recent call last):
    ...
    ValueError: sharpness=[1.0, 2.0] has shape (2,); expected () or (1,)
    """
    shape = tuple(np.shape(value))
    if shape not in shapes:
        raise ValueError(f"{name}={fmt(value)} has shape {shape}; {what}")


def check_broadcasts(name: str, value: Any, params: Any) -> None:
    """``value`` multiplies every leaf of the pytree ``params`` without changing its shape
    (shapes are static: this runs once when a step is traced).

    >>> import numpy as np
    >>> check_broadcasts("sigma", np.ones(3), np.zeros(2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: sigma=[1.0, 1.0, 1.0] has shape (3,), which does not fit parameters of shape (2,)...
    """
    for leaf in jax.tree_util.tree_leaves(params):
        shape = tuple(np.shape(leaf))
        try:
            ok = np.broadcast_shapes(np.shape(value), shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{name}={fmt(value)} has shape {np.shape(value)}, which does not fit "
                             f"parameters of shape {shape}: use a scalar or a shape that "
                             "broadcasts to the parameters")


def check_bool(name: str, value: Any, *, allow_none: bool = False) -> bool | None:
    """``value`` is ``True`` or ``False`` (or None when ``allow_none``); returns it as a bool.

    >>> check_bool("progress", 1, allow_none=True)
    Traceback (most recent call last):
    ...
    ValueError: progress=1 must be True, False or None
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}={fmt(value)} must be True"
                         + (", False or None" if allow_none else " or False"))
    return bool(value)
