"""Bridges to the trainers people use: optax (native), PyTorch ``LambdaLR`` and Levanter configs.

- optax: every ``rivervalley.schedules`` object *is* an ``optax.Schedule``:
  ``optax.adamw(rv.schedules.wsd(3e-4, 10_000))``.
- PyTorch: :func:`to_torch_lambda` (``LambdaLR(opt, to_torch_lambda(s))`` with ``lr=peak`` in the
  optimizer); closed form in float64, no torch import.
- Levanter: :func:`to_levanter` / :func:`to_levanter_yaml` give the ``optimizer`` fragment of a
  Levanter ``OptimizerConfig`` (the version with ``cycles``, ``decay`` and ``rewarmup``:
  stanford-crfm/levanter ``src/levanter/optim/config.py``) and the trainer's ``num_train_steps``.

What Levanter cannot express (a ``ValueError`` says so): the decay shapes ``1-sqrt``,
``exponential`` and ``square`` (its ``lr_schedule`` knows constant, cosine, linear, inv and
inv_sqrt), tabulated schedules, and warmup/decay/rewarmup of exactly 1 step (Levanter reads any
value <= 1.0 as a fraction). Levanter's ``inv`` matches ``inverse`` except at the first decay step,
where Levanter uses count = max(count, 1).

Example:
    >>> import rivervalley as rv
    >>> frag = to_levanter(rv.schedules.wsd_s(0.7, [300, 700, 1000], decay=0.1,
    ...                                        decay_shape="cosine", min_ratio=0.1))
    >>> frag["optimizer"]["cycles"], frag["trainer"]["num_train_steps"]
    ([300, 700], 1000)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rivervalley import schedules

#: rivervalley decay shape -> Levanter ``lr_schedule``.
LEVANTER_SHAPES = {"linear": "linear", "cosine": "cosine", "inverse": "inv"}


def to_torch_lambda(schedule: Any, peak_value: float | None = None) -> Callable[[int], float]:
    """``epoch -> lr / peak`` for ``torch.optim.lr_scheduler.LambdaLR`` (see
    :func:`rivervalley.schedules.torch_lambda`); the peak defaults to the schedule's own."""
    if peak_value is None:
        d = schedule.describe()
        peak_value = d.get("peak_value", d.get("value"))
    return schedules.torch_lambda(schedule, peak_value)


def _steps_field(name: str, steps: int) -> int:
    if steps == 1:
        raise ValueError(f"{name}=1 step cannot be expressed in Levanter: it reads values <= 1.0 "
                         "as fractions of the cycle")
    return int(steps)


def _decay_field(decay: float | int) -> float | int:
    if isinstance(decay, float) and 0 < decay <= 1:
        return decay
    return _steps_field("decay", int(decay))


def _shape(shape: str) -> str:
    if shape not in LEVANTER_SHAPES:
        raise ValueError(f"decay_shape={shape!r} cannot be expressed in Levanter; expressible "
                         f"shapes: {', '.join(LEVANTER_SHAPES)}")
    return LEVANTER_SHAPES[shape]


def to_levanter(schedule: Any) -> dict:
    """The Levanter ``optimizer`` fragment and ``trainer.num_train_steps`` of a schedule.

    Returns:
        ``{"optimizer": {...}, "trainer": {"num_train_steps": T}}``.

    Raises:
        ValueError: naming what Levanter cannot express.
    """
    if not hasattr(schedule, "describe"):
        raise ValueError(f"schedule={schedule!r} is not a rivervalley schedule (no describe())")
    d = schedule.describe()
    kind = d["kind"]
    if isinstance(d.get("peak_value", d.get("value")), list):
        raise ValueError("a batch of schedules cannot be exported; export one at a time")
    opt: dict[str, Any] = {"type": "adam"}
    if kind == "constant":
        opt.update(learning_rate=d["value"], lr_schedule="constant", warmup=0.0, decay=None)
        return {"optimizer": opt, "trainer": {"num_train_steps": None}}
    if kind == "tabulated":
        raise ValueError("a tabulated schedule cannot be expressed in Levanter's OptimizerConfig")
    opt["learning_rate"] = d["peak_value"]
    opt["min_lr_ratio"] = d["min_ratio"]
    warm = d["warmup_steps"]
    opt["warmup"] = _steps_field("warmup_steps", warm) if warm else 0.0
    if kind == "cosine":
        opt.update(lr_schedule="cosine", decay=None)
        total = d["num_steps"]
    elif kind == "wsd":
        opt.update(lr_schedule=_shape(d["decay_shape"]), decay=_decay_field(d["decay"]))
        total = d["num_steps"]
    elif kind in ("wsd_s", "cyclic_cosine"):
        ends = list(d["checkpoints"])
        opt["cycles"] = ends[:-1]
        re = d["rewarmup_steps"]
        opt["rewarmup"] = _steps_field("rewarmup_steps", re) if re else 0.0
        if kind == "wsd_s":
            opt.update(lr_schedule=_shape(d["decay_shape"]), decay=_decay_field(d["decay"]))
        else:
            opt.update(lr_schedule="cosine", decay=None)
        total = ends[-1]
    else:
        raise ValueError(f"schedule kind {kind!r} has no Levanter export")
    return {"optimizer": opt, "trainer": {"num_train_steps": int(total)}}


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


__all__ = ["LEVANTER_SHAPES", "to_torch_lambda", "to_levanter", "to_levanter_yaml"]
