"""Ordered registry of figure modules (gallery order)."""

from __future__ import annotations

import importlib
from types import ModuleType

#: Module names (inside ``rivervalley.figures``) in gallery order.
_MODULES: tuple[str, ...] = (
    "schedules",
    "valley",
    "meander",
    "trajectories",
    "wsd_path",
    "wsd_loss",
    "decomposition",
    "peak_lr",
    "decay_sweep",
    "plans_toy",
    "bigram_token_loss",
    "bigram_curvature",
    "bigram_sharpness",
    "bigram_plans",
    "text_loss",
    "text_classes",
    "text_diagnosis",
    "text_plans",
    "optimized_schedule",
    "laws",
    "laws_validation",
)


def _load() -> dict[str, ModuleType]:
    figs: dict[str, ModuleType] = {}
    for mod_name in _MODULES:
        mod = importlib.import_module(f"rivervalley.figures.{mod_name}")
        figs[mod.NAME] = mod
    return figs


FIGURES: dict[str, ModuleType] = _load()


def get(name: str) -> ModuleType:
    """The figure module called ``name``; ``ValueError`` listing the known ones otherwise."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; known figures: {', '.join(FIGURES)}")
    return FIGURES[name]
