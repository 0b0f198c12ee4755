"""Schedules from one-line specs, and schedule advice from a fitted law (private; re-exported by
:mod:`rivervalley.laws`).

A **spec** is ``kind:key=value,key=value,...``; the schedules are built by
:mod:`rivervalley.schedules` (its conventions: step t uses LR ``eta(t)``, linear warmup from 0):

==========  ===================================================================================
kind        keys (``*`` required)
==========  ===================================================================================
constant    ``peak*``, ``steps*``
cosine      ``peak*``, ``steps*``, ``warmup``, ``min_ratio`` (0)
wsd         ``peak*``, ``steps*``, ``warmup``, ``decay`` (0.1; a fraction like ``0.2`` or a step
            count like ``2000``), ``shape`` (linear; any of ``rivervalley.schedules.DECAY_SHAPES``),
            ``min_ratio`` (0)
wsd_s       ``peak*``, ``checkpoints*`` (``a/b/c``: the cycle ends, the last ends the run),
            ``warmup``, ``rewarmup``, ``decay``, ``shape``, ``min_ratio``
==========  ===================================================================================

A ``decay`` written with a ``.`` or an exponent is a fraction, digits only a step count. The keys
are short for the factories' arguments (glossary names): ``peak`` is ``peak_value``, ``steps``
``num_steps``, ``warmup`` ``warmup_steps``, ``rewarmup`` ``rewarmup_steps``, ``shape``
``decay_shape``.

:func:`advise` scans the WSD decay fraction and shape for a budget of ``T`` steps under a fitted
law and compares the best with a cosine (to ``cosine_min_ratio`` of the peak) and a 20% linear
decay (``BASELINE_DECAY``) at the same peak and warmup.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np

from rivervalley._laws_registry import get_law, law_params
from rivervalley._validate import check_int, check_real

_KEYS = {
    "constant": {"peak": True, "steps": True},
    "cosine": {"peak": True, "steps": True, "warmup": False, "min_ratio": False},
    "wsd": {"peak": True, "steps": True, "warmup": False, "decay": False, "shape": False,
            "min_ratio": False},
    "wsd_s": {"peak": True, "checkpoints": True, "warmup": False, "rewarmup": False, "decay": False,
              "shape": False, "min_ratio": False},
}
_INT = re.compile(r"[+]?[0-9]+")


class Spec(NamedTuple):
    """A parsed schedule spec: the schedule (a :mod:`rivervalley.schedules` object), its length,
    its kind and its keys as given."""
    schedule: Any
    num_steps: int
    kind: str
    values: dict

    def lrs(self, num_steps: int | None = None) -> np.ndarray:
        """The LR of every step ``0 .. num_steps - 1`` (default: the schedule's length)."""
        return _lrs_f64(self.schedule, int(num_steps or self.num_steps))


def _lrs_f64(schedule, num_steps: int) -> np.ndarray:
    """``schedules.as_array`` evaluated in float64 (a float32 LR is off by ~1e-8 relative)."""
    import jax

    from rivervalley import schedules

    with jax.enable_x64(True):
        return np.asarray(schedules.as_array(schedule, num_steps), np.float64)


def _number(spec: str, key: str, raw: str, *, integer: bool = False):
    try:
        if integer:
            if not _INT.fullmatch(raw):
                raise ValueError
            return int(raw)
        return float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"schedule {spec!r}: {key}={raw!r} is not {kind}") from None


def schedule_from_spec(spec: str) -> Spec:
    """Parse ``kind:key=value,...`` (see the module docstring) into a schedule.

    >>> s = schedule_from_spec("wsd:peak=1e-3,steps=1000,decay=0.2,shape=1-sqrt")
    >>> s.kind, s.num_steps, [round(float(x), 7) for x in s.lrs()[[0, 799, 800, 999]]]
    ('wsd', 1000, [0.001, 0.001, 0.001, 2.5e-06])
    >>> schedule_from_spec("wsd_s:peak=1e-3,checkpoints=100/250,decay=0.1").num_steps
    250
    >>> schedule_from_spec("cosin:peak=1")
    Traceback (most recent call last):
    ...
    ValueError: schedule 'cosin:peak=1': unknown kind 'cosin' (one of constant, cosine, wsd, wsd_s)
    """
    from rivervalley import schedules

    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"schedule {spec!r} is not kind:key=value,... (e.g. "
                         "wsd:peak=1e-3,steps=50000,decay=0.2,shape=1-sqrt)")
    kind, _, rest = spec.partition(":")
    kind = kind.strip()
    if kind not in _KEYS:
        raise ValueError(f"schedule {spec!r}: unknown kind {kind!r} (one of {', '.join(_KEYS)})")
    vals: dict[str, str] = {}
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not eq or not raw:
            raise ValueError(f"schedule {spec!r}: {item!r} is not key=value")
        if key not in _KEYS[kind]:
            raise ValueError(f"schedule {spec!r}: unknown key {key!r} for {kind} (keys: "
                             f"{', '.join(_KEYS[kind])})")
        if key in vals:
            raise ValueError(f"schedule {spec!r}: {key} is given twice")
        vals[key] = raw
    missing = [k for k, req in _KEYS[kind].items() if req and k not in vals]
    if missing:
        raise ValueError(f"schedule {spec!r}: missing {', '.join(missing)} (required for {kind})")
    peak = _number(spec, "peak", vals["peak"])
    kw: dict[str, Any] = {}
    if "warmup" in vals:
        kw["warmup_steps"] = _number(spec, "warmup", vals["warmup"], integer=True)
    if "rewarmup" in vals:
        kw["rewarmup_steps"] = _number(spec, "rewarmup", vals["rewarmup"], integer=True)
    if "min_ratio" in vals:
        kw["min_ratio"] = _number(spec, "min_ratio", vals["min_ratio"])
    if "decay" in vals:
        raw = vals["decay"]
        kw["decay"] = (_number(spec, "decay", raw, integer=True) if _INT.fullmatch(raw)
                       else _number(spec, "decay", raw))
    if "shape" in vals:
        kw["decay_shape"] = vals["shape"]
    try:
        if kind == "wsd_s":
            ends = [_number(spec, "checkpoints", x.strip(), integer=True)
                    for x in vals["checkpoints"].split("/")]
            return Spec(schedules.wsd_s(peak, ends, **kw), int(ends[-1]), kind, vals)
        steps = _number(spec, "steps", vals["steps"], integer=True)
        if steps < 1:
            raise ValueError(f"steps={steps} must be >= 1")
        if kind == "constant":
            return Spec(schedules.constant(peak), steps, kind, vals)
        if kind == "cosine":
            return Spec(schedules.cosine(peak, steps, **kw), steps, kind, vals)
        return Spec(schedules.wsd(peak, steps, **kw), steps, kind, vals)
    except ValueError as e:
        if str(e).startswith(f"schedule {spec!r}"):
            raise
        raise ValueError(f"schedule {spec!r}: {e}") from None


class Advice(NamedTuple):
    """Result of :func:`advise`.

    Attributes:
      shape, fraction, loss: the best WSD decay shape and fraction, and its predicted final loss.
      cosine_loss, wsd20_loss: the predicted final losses of the cosine baseline and of a 20%
        linear decay.
      grid: ``{shape: (fractions, final losses)}`` of the scan.
      curves: ``{label: (lrs, predicted losses at every step 0..T)}`` of the three schedules.
      num_steps, warmup_steps, peak_value, cosine_min_ratio: the setting.
    """
    shape: str
    fraction: float
    loss: float
    cosine_loss: float
    wsd20_loss: float
    grid: dict
    curves: dict
    num_steps: int
    warmup_steps: int
    peak_value: float
    cosine_min_ratio: float


#: Fractions and shapes :func:`advise` scans by default.
FRACTIONS = tuple(np.round(np.arange(0.02, 0.62, 0.02), 2))
SHAPES = ("linear", "1-sqrt", "cosine", "square")
#: The WSD baseline :func:`advise` compares with: a linear decay over this fraction of the run.
BASELINE_DECAY = 0.2


def advise(law, params, num_steps: int, *, peak_value: float, warmup_steps: int = 0,
           fractions=FRACTIONS, shapes=SHAPES, cosine_min_ratio: float = 0.1) -> Advice:
    """The WSD decay (fraction and shape) with the lowest predicted final loss for ``num_steps``.

    Every candidate ``wsd(peak_value, T, warmup_steps=W, decay=f, decay_shape=shape)`` (to 0) is
    evaluated with the law's full-curve function, batched (one compilation), at step ``T`` (the
    weights after all ``T`` updates); so are ``cosine(peak_value, T, warmup_steps=W,
    min_ratio=cosine_min_ratio)`` and the linear WSD baseline (``BASELINE_DECAY`` of the run).

    Args:
      law: a :class:`Law` or its name.
      params: the law's fitted parameters.
      num_steps: the budget T (an integer >= 2).
      peak_value: the peak LR of every candidate (> 0).
      warmup_steps: linear warmup steps of every candidate (an integer in [0, T)).
      fractions, shapes: the WSD decay fractions and shapes to scan.
      cosine_min_ratio: the cosine baseline decays to this fraction of the peak, in [0, 1].

    >>> from rivervalley.laws import RiverValleyParams
    >>> p = RiverValleyParams(2.0, 1.0, 0.5, 0.5, 20.0, 40.0)
    >>> a = advise("river_valley", p, 2000, peak_value=0.01, fractions=(0.1, 0.2, 0.4), shapes=("linear",))
    >>> a.shape, a.fraction, a.loss < a.cosine_loss
    ('linear', 0.1, True)
    >>> advise("river_valley", p, 2000, peak_value=0.0)
    Traceback (most recent call last):
    ...
    ValueError: peak_value=0.0 is outside the valid range (0, inf) (a learning rate)
    """
    import jax
    import jax.numpy as jnp

    from rivervalley import schedules

    law = get_law(law)
    params = law_params(law, params)
    T = check_int("num_steps", num_steps, lo=2)
    warmup_steps = check_int("warmup_steps", warmup_steps, lo=0, hi=T - 1)
    check_real("peak_value", peak_value, lo=0.0, lo_open=True, what="a learning rate")
    check_real("cosine_min_ratio", cosine_min_ratio, lo=0.0, hi=1.0)
    cands = []
    for shape in shapes:
        for f in fractions:
            if int(f * T) + warmup_steps <= T and int(f * T) >= 1:
                cands.append((shape, float(f)))
    if not cands:
        raise ValueError(f"no decay fraction of {list(fractions)} fits in {T} steps after a "
                         f"warmup of {warmup_steps}")
    scheds = [schedules.wsd(peak_value, T, warmup_steps=warmup_steps, decay=f, decay_shape=s)
              for s, f in cands]
    scheds.append(schedules.cosine(peak_value, T, warmup_steps=warmup_steps,
                                   min_ratio=cosine_min_ratio))
    scheds.append(schedules.wsd(peak_value, T, warmup_steps=warmup_steps, decay=BASELINE_DECAY,
                                decay_shape="linear"))
    lrs = np.stack([_lrs_f64(s, T + 1) for s in scheds])
    with jax.enable_x64(True):
        curve = jax.jit(jax.vmap(law.curve, in_axes=(None, 0)))
        ys = np.asarray(curve(law.params(*[jnp.float64(x) for x in params]), jnp.asarray(lrs)))
    finals = ys[:, -1]
    i = int(np.argmin(finals[: len(cands)]))
    grid = {}
    for s in shapes:
        idx = [j for j, c in enumerate(cands) if c[0] == s]
        grid[s] = (np.array([cands[j][1] for j in idx]), finals[idx])
    best = f"WSD {cands[i][0]}, {100 * cands[i][1]:g}% decay"
    curves = {best: (lrs[i], ys[i]), f"cosine to {cosine_min_ratio:g}x": (lrs[-2], ys[-2]),
              f"WSD linear, {100 * BASELINE_DECAY:g}% decay": (lrs[-1], ys[-1])}
    return Advice(cands[i][0], cands[i][1], float(finals[i]), float(finals[-2]), float(finals[-1]),
                  grid, curves, T, warmup_steps, float(peak_value), float(cosine_min_ratio))
