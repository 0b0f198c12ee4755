"""Schedule arguments -> pytree leaves: the checks and conversions behind every schedule factory.

Each function takes one argument of :mod:`rivervalley.schedules`' factories, checks it on the host
(once per factory call; traced values pass, see :mod:`rivervalley._validate`) and returns the leaf
the schedule stores: learning rates as float64, step counts as int64 (every step count is a whole
number in ``[0, MAX_STEPS]``), a decay as a (fraction, steps) pair, a decay shape as an int32
index. :func:`decay_lengths` turns a decay into the length ``D`` of every cycle's decay (exact
decimal arithmetic on the host; the rounding-aware float rule in the graph), and
:func:`check_fit` checks that (re)warmup and decay fit inside their cycles.

**Decay lengths.** A decay given as a fraction ``phi`` of a cycle of ``L`` steps lasts
``D = floor(phi * L)`` steps, computed *exactly on the decimal as written*: ``phi`` is read as the
shortest decimal that rounds to it (``0.29`` is 29/100; ``np.float32(0.7)`` is 7/10) and the floor
is taken in rational arithmetic, so 0.29 of 100 is 29 steps, 0.7 of 10 is 7 and 0.2 of 600000 is
120000. Levanter's ``_convert_frac_or_steps`` computes ``int(phi * L)`` in float64, where
``0.29 * 100 = 28.999999999999996`` gives 28 (likewise 0.57 and 0.58 of 100, 0.41, 0.57, 0.69 and
0.82 of 300); :func:`rivervalley.export.to_levanter` therefore writes a value for which Levanter's
own arithmetic gives rivervalley's lengths (a step count, or a nearby fraction). An integer
``decay`` is a step count. With concrete arguments ``D`` is computed on the host, once, and stored
as an integer leaf (``decay_length`` / ``decay_lengths``: derived by the factory, so build
schedules with the factories, not by replacing fields). When the fraction or the cycle ends are
*traced* (a factory called inside ``jit`` / ``vmap``), ``D`` is computed in the graph in the float
dtype with the rounding of the product undone: ``floor(phi * L)``, snapped to the nearest integer
when within 4 ulps of it. In float32 this equals the exact rule whenever ``phi * L`` is below
2**22 (about 4.2 million steps) and the exact product is an integer or further than
``|phi L| * 2**-20`` from one; beyond, it may differ by the float32 rounding of ``phi * L`` (a
step or two). A traced *integer* decay is exact. Traced step counts given as floats are rounded to
the nearest integer.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley import _cycles
from rivervalley._validate import check_real, fmt, is_traced

#: The decay shapes of THEORY.md §5, in index order.
DECAY_SHAPES: tuple[str, ...] = _cycles.SHAPES
#: The longest run and the largest step count a schedule accepts (int32, see the module doc).
MAX_STEPS: int = _cycles.MAX_STEPS
_ALIASES = {"inv": "inverse", "harmonic": "inverse", "geometric": "exponential",
            "exp": "exponential",
            "one_minus_sqrt": "1-sqrt", "sqrt": "1-sqrt"}
_NEEDS_POSITIVE_MIN = (DECAY_SHAPES.index("inverse"), DECAY_SHAPES.index("exponential"))


# --------------------------------------------------------------------------------------------
# arguments -> leaves (checked on the host; traced values pass)
# --------------------------------------------------------------------------------------------

def host(x: Any) -> Any:
    """A concrete JAX array as NumPy (host arithmetic); anything else unchanged."""
    return np.asarray(x) if isinstance(x, jax.Array) and not is_traced(x) else x


def no_bools(name: str, value: Any) -> None:
    """Bools are never numbers, also inside a list (``np.asarray([True, 2])`` is ``[1, 2]``)."""
    if isinstance(value, (list, tuple)):
        for v in value:
            no_bools(name, v)
        if any(isinstance(v, (bool, np.bool_)) for v in value):
            raise ValueError(f"{name}={fmt(value)} holds a bool; bools are not numbers")
    elif isinstance(value, (bool, np.bool_)) or getattr(value, "dtype", None) == np.bool_:
        raise ValueError(f"{name}={fmt(value)} is a bool, not a number")


def lr_leaf(name: str, value: Any) -> Any:
    no_bools(name, value)
    check_real(name, value, lo=0, what="a learning rate")
    return value if is_traced(value) else np.asarray(value, np.float64)


def steps_leaf(name: str, value: Any, *, lo: int = 0) -> Any:
    """A step count (or an array of them): a whole number in ``[lo, MAX_STEPS]`` -> int64 leaf.
    Traced: integers pass, floats are rounded to the nearest integer."""
    if is_traced(value):
        v = jnp.asarray(value)
        if v.dtype == jnp.bool_ or not (jnp.issubdtype(v.dtype, jnp.integer)
                                        or jnp.issubdtype(v.dtype, jnp.floating)):
            raise ValueError(f"{name} has dtype {v.dtype}; a step count is an integer")
        if jnp.issubdtype(v.dtype, jnp.floating):
            return jnp.round(v).astype(_cycles.int_dtype())
        return v
    value = host(value)
    no_bools(name, value)
    rng = f"whole steps in [{lo}, {MAX_STEPS}]"
    if isinstance(value, int) and not isinstance(value, bool) and not lo <= value <= MAX_STEPS:
        raise ValueError(f"{name}={fmt(value)} is outside the valid range: {rng}")
    check_real(name, value, what="a number of steps")
    a = np.asarray(value, np.float64)
    if np.any(a < lo) or np.any(a > MAX_STEPS):
        raise ValueError(f"{name}={fmt(value)} is outside the valid range: {rng}")
    if np.any(a != np.floor(a)):
        raise ValueError(f"{name}={fmt(value)} is not a whole number of steps: {rng}")
    return a.astype(np.int64)


def ends_leaf(name: str, ends: Any) -> Any:
    """Cycle ends: a non-empty, strictly increasing sequence of steps in [1, MAX_STEPS]."""
    if is_traced(ends):
        return steps_leaf(name, ends)
    ends = host(ends)
    if np.ndim(ends) == 0 or np.shape(ends)[-1] == 0:
        raise ValueError(f"{name}={fmt(ends)} must be a non-empty sequence of steps")
    a = steps_leaf(name, ends, lo=1)
    if np.any(np.diff(a, axis=-1) <= 0):
        raise ValueError(f"{name}={fmt(a)} is not strictly increasing")
    return a


def ratio_leaf(min_ratio: Any, decay_shape: Any = None) -> Any:
    no_bools("min_ratio", min_ratio)
    check_real("min_ratio", min_ratio, lo=0, hi=1, what="a fraction of peak_value")
    if is_traced(min_ratio):
        return min_ratio
    m = np.asarray(host(min_ratio), np.float64)
    if decay_shape is not None and not is_traced(decay_shape):
        try:
            mb, idx = np.broadcast_arrays(m, np.asarray(decay_shape))
        except ValueError:
            raise ValueError(f"min_ratio={fmt(min_ratio)} and decay_shape={fmt(decay_shape)} do "
                             "not broadcast to one batch") from None
        bad = np.isin(idx, _NEEDS_POSITIVE_MIN) & (mb <= 0)
        if np.any(bad):
            names = "/".join(sorted({DECAY_SHAPES[int(i)] for i in idx[bad]}))
            raise ValueError(f"min_ratio={fmt(min_ratio)} must be in (0, 1] for decay_shape "
                             f"{names} (the decay divides by / takes powers of min_ratio)")
    return m


def split_decay(decay: Any) -> tuple[Any, Any]:
    """``decay`` -> (fraction, steps) leaves: a float is a fraction in (0, 1] (stored as the
    float64 of its decimal), an integer a step count >= 1; the other leaf is zero."""
    if is_traced(decay):
        d = jnp.asarray(decay)
        if d.dtype == jnp.bool_:
            raise ValueError("decay has dtype bool; pass a fraction in (0, 1] or a step count")
        if jnp.issubdtype(d.dtype, jnp.integer):
            return jnp.zeros(d.shape, jnp.result_type(float)), d
        return d, jnp.zeros(d.shape, _cycles.int_dtype())
    decay = host(decay)
    no_bools("decay", decay)
    a = np.asarray(decay)
    if isinstance(decay, (bool, np.bool_)) or a.dtype == np.bool_ or a.dtype.kind not in "iuf":
        what = ", not a bool" if a.dtype == np.bool_ else ""
        raise ValueError(f"decay={fmt(decay)} must be a fraction in (0, 1] (a float) or a step "
                         f"count >= 1 (an int){what}")
    if a.dtype.kind in "iu":
        if np.any(a < 1) or np.any(a > MAX_STEPS):
            raise ValueError(f"decay={fmt(decay)} is outside [1, {MAX_STEPS}] as a step count "
                             "(pass a float in (0, 1] for a fraction of the cycle)")
        return np.zeros(a.shape), a.astype(np.int64)
    if not np.all(np.isfinite(a)) or np.any(a <= 0) or np.any(a > 1):
        hint = (f", {int(a)}," if a.ndim == 0 and np.isfinite(a) and a > 1 and a == int(a)
                else "")
        raise ValueError(f"decay={fmt(decay)} is outside (0, 1] as a fraction of the cycle "
                         f"(pass an int{hint} for a number of steps)")
    frac = np.asarray([float(_cycles.decimal(x)) for x in a.ravel()]).reshape(a.shape)
    return frac, np.zeros(a.shape, np.int64)


def decay_lengths(frac: Any, steps: Any, lengths: Any) -> Any:
    """D per cycle: exact on the host for concrete values, in the graph for traced ones."""
    if is_traced((frac, steps, lengths)):
        return _cycles.traced_decay_lengths(frac, steps, lengths)
    return _cycles.exact_decay_lengths(frac, steps, lengths)


def cycle_lengths(xp, ends: Any) -> Any:
    ends = xp.asarray(ends)
    return xp.diff(ends, axis=-1, prepend=xp.zeros(ends.shape[:-1] + (1,), ends.dtype))


def check_fit(lengths, warmup, rewarmup, d, *, decay: Any, single: bool) -> None:
    """(Re)warmup and decay fit inside their cycles (concrete values; ``d=None``: full decay)."""
    first = lengths[..., 0]
    w = np.broadcast_to(warmup, first.shape)
    rw = np.broadcast_to(rewarmup, first.shape)
    what = "the run" if single else "the first cycle"
    if np.any(w > first):
        raise ValueError(f"warmup_steps={fmt(warmup)} is longer than {what} (length "
                         f"{fmt(first)}); valid range [0, {int(np.min(first))}]")
    later = lengths[..., 1:]
    if later.shape[-1] and np.any(rw[..., None] > later):
        raise ValueError(f"rewarmup_steps={fmt(rewarmup)} is longer than a cycle (lengths "
                         f"{fmt(later)}); valid range [0, {int(np.min(later))}]")
    warm = np.concatenate([w[..., None], np.broadcast_to(rw[..., None], later.shape)], -1)
    if d is None:
        if np.any(w >= first):
            raise ValueError(f"warmup_steps={fmt(warmup)} leaves no decay in {what} (length "
                             f"{fmt(first)}): the cosine decay needs at least one step, so "
                             "warmup_steps < length")
        if np.any(warm >= lengths):
            raise ValueError(f"rewarmup_steps={fmt(rewarmup)} leaves no decay in a cycle "
                             f"(lengths {fmt(lengths)}): the cosine decay needs at least one "
                             "step, so rewarmup_steps < cycle length")
        return
    if np.any(d + warm > lengths) or np.any(d < 1):
        raise ValueError(
            f"decay={fmt(decay)} gives decays of {fmt(d)} steps that do not fit in their cycles "
            f"of {fmt(lengths)} steps after (re)warmup {fmt(warm)}; valid range: 1 <= decay "
            "steps <= cycle length - warmup")


def shape_index(decay_shape: str | int) -> int:
    """Index of a decay shape in :data:`DECAY_SHAPES`; accepts names, aliases and indices.

    >>> shape_index("1-sqrt"), shape_index(4)
    (2, 4)
    """
    if (isinstance(decay_shape, (np.ndarray, jax.Array)) and np.ndim(decay_shape) == 0
            and not is_traced(decay_shape)):
        decay_shape = decay_shape.item()
    if isinstance(decay_shape, str):
        name = _ALIASES.get(decay_shape.lower(), decay_shape.lower())
        if name not in DECAY_SHAPES:
            raise ValueError(f"decay_shape={decay_shape!r} is unknown; known shapes: "
                             f"{', '.join(DECAY_SHAPES)} (or an index 0..{len(DECAY_SHAPES) - 1})")
        return DECAY_SHAPES.index(name)
    if isinstance(decay_shape, (bool, np.bool_)):
        raise ValueError(f"decay_shape={decay_shape!r} is a bool, not a shape name or index")
    if isinstance(decay_shape, (int, np.integer)):
        if not 0 <= int(decay_shape) < len(DECAY_SHAPES):
            raise ValueError(f"decay_shape={decay_shape!r} is outside the indices "
                             f"0..{len(DECAY_SHAPES) - 1} of {DECAY_SHAPES}")
        return int(decay_shape)
    raise ValueError(f"decay_shape={decay_shape!r} must be a name ({', '.join(DECAY_SHAPES)}) "
                     "or an index")


def shape_leaf(decay_shape: Any) -> Any:
    """A decay shape (name, index, or an array / sequence of them) -> int32 index leaf; every
    concrete index is checked. A traced decay_shape must be an integer index array."""
    if is_traced(decay_shape):
        s = jnp.asarray(decay_shape)
        if s.dtype == jnp.bool_ or not jnp.issubdtype(s.dtype, jnp.integer):
            raise ValueError(f"a traced decay_shape must be an integer index array, not "
                             f"{s.dtype}")
        return s.astype(jnp.int32)
    if isinstance(decay_shape, (str, int, np.integer, bool, np.bool_)):
        return np.asarray(shape_index(decay_shape), np.int32)
    a = np.asarray(host(decay_shape), dtype=object)
    if a.size == 0:
        raise ValueError(f"decay_shape={fmt(decay_shape)} is empty")
    idx = [shape_index(x.item() if isinstance(x, np.generic) else x) for x in a.ravel()]
    return np.asarray(idx, np.int32).reshape(a.shape)


def decay_steps_of(length: int, decay: float | int) -> int:
    """The decay length ``D`` (steps) of a cycle of ``length`` steps: ``floor(decay * length)``
    in exact decimal arithmetic for a fraction, ``decay`` for an int (see the module doc; Levanter's
    ``int(decay * length)`` in float64 gives one step less for e.g. 0.29 of 100).

    >>> decay_steps_of(25000, 0.1), decay_steps_of(25000, 300), decay_steps_of(100, 0.29)
    (2500, 300, 29)
    >>> decay_steps_of(600000, 0.2), decay_steps_of(10, 0.7)
    (120000, 7)
    """
    if is_traced((length, decay)):
        raise ValueError("decay_steps_of needs concrete values; inside jit the schedule "
                         "factories compute the decay length")
    L = steps_leaf("length", length, lo=1)
    frac, steps = split_decay(decay)
    if np.ndim(L) or np.ndim(frac):
        raise ValueError(f"decay_steps_of takes one length and one decay, not arrays "
                         f"(length={fmt(length)}, decay={fmt(decay)})")
    if steps > L:
        raise ValueError(f"decay={fmt(decay)} steps is longer than the cycle of {int(L)} steps")
    return int(_cycles.exact_decay_lengths(frac, steps, L))
