"""Bridges to the trainers people use: optax (native), PyTorch ``LambdaLR`` and Levanter configs.

- optax: every ``rivervalley.schedules`` object *is* an ``optax.Schedule``:
  ``optax.adamw(rv.schedules.wsd(3e-4, 10_000))``.
- PyTorch: :func:`to_torch_lambda` returns a :class:`TorchLambda`
  (``LambdaLR(opt, to_torch_lambda(s))`` with ``lr=peak`` in the optimizer): a module-level,
  picklable callable (it survives ``torch.multiprocessing`` spawn / DDP, where a closure cannot
  be pickled; HuggingFace wraps its lambdas in ``functools.partial`` for the same reason,
  transformers #21689). It evaluates the schedule's closed form on the host in int64 / float64
  (the same integer step arithmetic as :func:`rivervalley.schedules.as_array`), with no JAX
  dispatch and no torch import.
- Levanter: :func:`to_levanter` / :func:`to_levanter_yaml` give the ``optimizer`` fragment of a
  Levanter ``OptimizerConfig`` (the version with ``cycles``, ``decay`` and ``rewarmup``:
  stanford-crfm/levanter ``src/levanter/optim/config.py``) and the trainer's ``num_train_steps``.

**Exported lengths are Levanter's lengths.** Levanter turns ``warmup`` / ``decay`` / ``rewarmup``
into steps per cycle with ``_convert_frac_or_steps``: a value ``v <= 1.0`` is a fraction,
``int(v * cycle_steps)`` in float64, a larger one a whole step count. rivervalley's decay length
is ``floor`` of the exact decimal product (``rivervalley.schedules``), which differs for e.g. 0.29
of 100 (Levanter: 28 steps). For every such quantity the export writes a value that Levanter's own
arithmetic maps to rivervalley's lengths in every cycle: the fraction as given when Levanter
agrees; else the step count when it is one count for all cycles (and >= 2: Levanter reads 1 as
the fraction 1.0); else the shortest fraction that gives each cycle its length (e.g. ``0.411`` for
0.41 of cycles of 300, 400 and 300 steps: 123, 164, 123 steps); a ``ValueError`` if none exists.
So an exported run trains with the learning rates rivervalley plots.

What Levanter cannot express (a ``ValueError`` says so): the decay shapes ``1-sqrt``,
``exponential`` and ``square`` (its ``lr_schedule`` knows constant, cosine, linear, inv and
inv_sqrt), tabulated schedules, batches, and lengths that no single Levanter value gives in
every cycle. Levanter's ``inv`` matches ``inverse`` except at the first decay step of each cycle,
where Levanter uses count = max(count, 1).

Example:
    >>> import rivervalley as rv
    >>> frag = to_levanter(rv.schedules.wsd_s(0.7, [300, 700, 1000], decay=0.1,
    ...                                        decay_shape="cosine", min_ratio=0.1))
    >>> frag["optimizer"]["cycles"], frag["trainer"]["num_train_steps"]
    ([300, 700], 1000)
    >>> to_levanter(rv.schedules.wsd(1e-3, 100, decay=0.29))["optimizer"]["decay"]  # 29 steps
    29
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import jax
import numpy as np

from rivervalley import schedules
from rivervalley._validate import check_real, fmt, is_traced

#: rivervalley decay shape -> Levanter ``lr_schedule``.
LEVANTER_SHAPES = {"linear": "linear", "cosine": "cosine", "inverse": "inv"}


# --------------------------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------------------------

class TorchLambda:
    """``epoch -> lr / peak_value`` for ``torch.optim.lr_scheduler.LambdaLR``. Built by
    :func:`to_torch_lambda` (calling the class raises ``TypeError``).

    A module-level class (picklable, unlike a closure) holding a host copy of the schedule.
    ``LambdaLR`` calls it with the number of ``scheduler.step()`` calls so far; the factor is the
    schedule's closed form in int64 / float64 (negative epochs are step 0, as everywhere).

    >>> import pickle
    >>> f = to_torch_lambda(schedules.cosine(0.5, 100))
    >>> round(f(0), 4), round(f(50), 4), round(f(100), 4)
    (1.0, 0.5, 0.0)
    >>> pickle.loads(pickle.dumps(f))(50) == f(50)
    True
    """

    schedule: Any
    peak_value: float

    __factory__ = "rivervalley.export.to_torch_lambda"

    def __init__(self, *args, **kwargs):
        raise TypeError("TorchLambda is built by rivervalley.export.to_torch_lambda(...), which "
                        "checks its arguments; TorchLambda is a type only")

    def __call__(self, epoch: int) -> float:
        return float(self.schedule._numpy_lr(epoch)) / self.peak_value

    def __repr__(self) -> str:
        return f"to_torch_lambda({self.schedule!r}, peak_value={self.peak_value!r})"


def _default_peak(schedule: Any) -> float:
    d = schedule.describe()
    if isinstance(d.get("peak_value"), list):
        raise ValueError("a batch of schedules cannot drive one LambdaLR; export one at a time")
    if d["kind"] == "tabulated":
        peak = max(d["values"])
    else:
        peak = d["peak_value"]
    if not peak > 0:
        raise ValueError(f"the schedule's peak is {peak!r}: pass peak_value > 0 (the "
                         "optimizer's lr)")
    return float(peak)


def to_torch_lambda(schedule: Any, peak_value: float | None = None) -> TorchLambda:
    """``epoch -> lr / peak`` for ``torch.optim.lr_scheduler.LambdaLR`` (a :class:`TorchLambda`);
    the peak defaults to the schedule's own (the largest value for a tabulated schedule).

    >>> f = to_torch_lambda(schedules.wsd(0.5, 100, decay=0.5))
    >>> f(0), f(75)
    (1.0, 0.5)
    """
    if not isinstance(schedule, schedules._Base):
        raise ValueError(f"schedule={fmt(schedule)} is not a rivervalley schedule; "
                         "build one with rivervalley.schedules")
    if is_traced(schedule):
        raise ValueError("schedule must be concrete (not traced) for a torch LambdaLR")
    host = jax.tree.map(np.asarray, schedule)
    if peak_value is None:
        peak_value = _default_peak(host)
    check_real("peak_value", peak_value, lo=0, lo_open=True,
               what="the optimizer's lr, which the factor multiplies")
    if np.ndim(peak_value):
        raise ValueError(f"peak_value={fmt(peak_value)} must be one number")
    f = object.__new__(TorchLambda)
    f.schedule, f.peak_value = host, float(peak_value)
    return f


# --------------------------------------------------------------------------------------------
# Levanter
# --------------------------------------------------------------------------------------------

def levanter_steps(value: float | int, cycle_steps: int) -> int:
    """Levanter's ``_convert_frac_or_steps``: ``int(value * cycle_steps)`` (float64) for a value
    <= 1.0, else the whole number ``value``.

    >>> levanter_steps(0.29, 100), levanter_steps(0.2, 1000), levanter_steps(30, 1000)
    (28, 200, 30)
    """
    if value < 0 or (value > 1.0 and value % 1 != 0):
        raise ValueError(f"{value!r} is neither a fraction in [0, 1] nor whole steps")
    if value <= 1.0:
        return int(value * cycle_steps)
    return int(value)


def _fraction_for(need: list[int], lengths: list[int]) -> float | None:
    """The shortest float ``f <= 1`` with ``levanter_steps(f, L_k) == need_k`` for every k."""
    lo = max(Fraction(n, L) for n, L in zip(need, lengths))
    hi = min(Fraction(n + 1, L) for n, L in zip(need, lengths))
    if lo >= hi or lo > 1:
        return None
    mid = (lo + hi) / 2
    candidates = [float(f"{float(mid):.{digits}g}") for digits in range(1, 18)]
    x = float(lo)
    for _ in range(8):  # the bottom of the interval, a few ulps up
        candidates.append(x)
        x = math.nextafter(x, math.inf)
    for f in candidates:
        if 0 <= f <= 1.0 and all(levanter_steps(f, L) == n for n, L in zip(need, lengths)):
            return f
    return None


def _levanter_value(name: str, given: Any, need: list[int], lengths: list[int]) -> float | int:
    """A Levanter ``warmup`` / ``decay`` / ``rewarmup`` value that gives ``need[k]`` steps in
    the cycle of ``lengths[k]`` steps for every k (see the module doc for the preference)."""
    if not need:
        return 0.0
    if isinstance(given, float) and 0 < given <= 1 and all(
            levanter_steps(given, L) == n for n, L in zip(need, lengths)):
        return given
    if all(n == 0 for n in need):
        return 0.0
    if len(set(need)) == 1 and need[0] >= 2:
        return int(need[0])
    f = _fraction_for(need, lengths)
    if f is not None:
        return f
    raise ValueError(f"{name}={given!r} gives {need} steps in cycles of {lengths} steps; no "
                     "single Levanter value (a fraction of each cycle, or one step count >= 2) "
                     "gives these lengths")


def _shape(shape: str) -> str:
    if shape not in LEVANTER_SHAPES:
        raise ValueError(f"decay_shape={shape!r} cannot be expressed in Levanter; expressible "
                         f"shapes: {', '.join(LEVANTER_SHAPES)}")
    return LEVANTER_SHAPES[shape]


def to_levanter(schedule: Any) -> dict:
    """The Levanter ``optimizer`` fragment and ``trainer.num_train_steps`` of a schedule.

    Warmup, decay and rewarmup are written so that Levanter's ``_convert_frac_or_steps`` gives
    rivervalley's step counts in every cycle (see the module doc).

    Returns:
        ``{"optimizer": {...}, "trainer": {"num_train_steps": T}}``.

    Raises:
        ValueError: naming what Levanter cannot express.
    """
    if not isinstance(schedule, schedules._Base):
        raise ValueError(f"schedule={fmt(schedule)} is not a rivervalley schedule")
    if is_traced(schedule):
        raise ValueError("a traced schedule cannot be exported; export a concrete one")
    d = schedule.describe()
    kind = d["kind"]
    if isinstance(d.get("peak_value"), list):
        raise ValueError("a batch of schedules cannot be exported; export one at a time")
    opt: dict[str, Any] = {"type": "adam"}
    if kind == "constant":
        opt.update(learning_rate=d["peak_value"], lr_schedule="constant", warmup=0.0, decay=None)
        return {"optimizer": opt, "trainer": {"num_train_steps": None}}
    if kind == "tabulated":
        raise ValueError("a tabulated schedule cannot be expressed in Levanter's OptimizerConfig")
    if kind in ("cosine", "wsd"):
        ends = [d["num_steps"]]
    elif kind in ("wsd_s", "cyclic_cosine"):
        ends = list(d["checkpoints"])
    else:
        raise ValueError(f"schedule kind {kind!r} has no Levanter export")
    lengths = np.diff([0] + ends).tolist()
    opt["learning_rate"] = d["peak_value"]
    opt["min_lr_ratio"] = d["min_ratio"]
    opt["warmup"] = _levanter_value("warmup_steps", d["warmup_steps"], [d["warmup_steps"]],
                                    lengths[:1])
    if kind in ("wsd_s", "cyclic_cosine"):
        opt["cycles"] = ends[:-1]
        re = d["rewarmup_steps"]
        opt["rewarmup"] = _levanter_value("rewarmup_steps", re, [re] * (len(ends) - 1),
                                          lengths[1:])
    if kind in ("wsd", "wsd_s"):
        need = np.ravel(schedule.decay_length if kind == "wsd" else schedule.decay_lengths)
        opt.update(lr_schedule=_shape(d["decay_shape"]),
                   decay=_levanter_value("decay", d["decay"], [int(x) for x in need], lengths))
    else:
        opt.update(lr_schedule="cosine", decay=None)
    return {"optimizer": opt, "trainer": {"num_train_steps": int(ends[-1])}}


def _yaml_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def to_levanter_yaml(schedule: Any) -> str:
    """:func:`to_levanter` as YAML text to paste into a Levanter config.

    Example:
        >>> import rivervalley as rv
        >>> print(to_levanter_yaml(rv.schedules.wsd(3e-4, 10000, warmup_steps=500, decay=0.2)))
        optimizer:
          type: adam
          learning_rate: 0.0003
          min_lr_ratio: 0.0
          warmup: 500
          lr_schedule: linear
          decay: 0.2
        trainer:
          num_train_steps: 10000
    """
    frag = to_levanter(schedule)
    lines = []
    for section, fields in frag.items():
        lines.append(f"{section}:")
        lines.extend(f"  {k}: {_yaml_value(v)}" for k, v in fields.items())
    return "\n".join(lines)


__all__ = ["LEVANTER_SHAPES", "TorchLambda", "to_torch_lambda", "levanter_steps", "to_levanter",
           "to_levanter_yaml"]
