"""The figure registry: the one list of the figures, in gallery order, and their records.

A figure ``NAME`` is the module ``rivervalley/figures/NAME.py`` (its name is its module's, so a
reader finds a figure by its file name). The module defines

- ``CAPTION`` (str): a title line, then what to see;
- ``Config``: a frozen dataclass holding every number the figure uses, and ``FULL`` and ``FAST``
  instances of it (the published size; seconds, for tests);
- ``compute(config, key) -> dict[str, np.ndarray]``: the JAX work (the runner caches it);
- ``plot(data, config) -> matplotlib.figure.Figure``: matplotlib only, no JAX;
- ``check(data, config) -> None``: the figure's quantitative claim (an ``AssertionError`` when it
  does not hold);

and ends with the one call that registers them::

    FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST,
                      compute=compute, plot=plot, check=check)

``plot`` and ``check`` get the config the data was computed with, so a number of the setup (the
peak LR, the number of steps or seeds) is read from it, never copied into the data or retyped.

:data:`GALLERY` names the figures in gallery order; importing the package
``rivervalley.figures`` imports those modules in that order (:func:`load`), before any one of them
can be imported alone, so :data:`FIGURES` is always complete and in that order.

Example:
    >>> from rivervalley.figures import registry
    >>> fig = registry.get("valley")
    >>> fig.name, fig.module, type(fig.fast).__name__
    ('valley', 'rivervalley.figures.valley', 'Config')
    >>> list(registry.FIGURES) == list(registry.GALLERY)
    True
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from rivervalley._validate import check_int, fmt

#: The figures in gallery order: figure ``NAME`` is the module ``rivervalley.figures.NAME``.
GALLERY: tuple[str, ...] = (
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

#: The parameters of a figure's functions, in order.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "compute": ("config", "key"),
    "plot": ("data", "config"),
    "check": ("data", "config"),
}


@dataclasses.dataclass(frozen=True)
class Figure:
    """One registered figure (see the module docstring); build it with :func:`register`.

    Attributes:
        name: the figure's name, the last part of ``module``.
        module: the defining module (its source is part of the runner's cache key).
        caption: a title line, then what to see.
        full, fast: the published and the quick configuration (one frozen dataclass).
        compute, plot, check: the figure's functions.
        seed: the seed of ``jax.random.key`` that ``compute`` gets.
    """

    name: str
    module: str
    caption: str
    full: Any
    fast: Any
    compute: Callable
    plot: Callable
    check: Callable
    seed: int = 0

    @property
    def title(self) -> str:
        """The caption's first line."""
        return self.caption.partition("\n")[0].strip()

    @property
    def text(self) -> str:
        """The caption after its title line: what to see."""
        return self.caption.partition("\n")[2].strip()

    def config(self, fast: bool = False):
        """The ``fast`` config when ``fast``, else the ``full`` one."""
        return self.fast if fast else self.full


#: The registered figures by name; :func:`load` puts them in :data:`GALLERY` order.
FIGURES: dict[str, Figure] = {}


def _check_function(role: str, fn: Any) -> None:
    expected = SIGNATURES[role]
    if not callable(fn):
        raise ValueError(f"{role}={fmt(fn)} is not callable; expected {role}({', '.join(expected)})")
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = tuple(p.name for p in params)
    if names != expected:
        raise ValueError(f"{role} takes ({', '.join(names)}); a figure's {role} takes "
                         f"({', '.join(expected)})")


def register(module: str, *, caption: str, full: Any, fast: Any, compute: Callable,
             plot: Callable, check: Callable, seed: int = 0) -> Figure:
    """Register the figure of ``module`` (pass ``__name__``) and return its :class:`Figure`.

    Raises:
        ValueError: a figure of that name is already registered; the caption has no title line
            or nothing after it; ``full`` and ``fast`` are not instances of one frozen dataclass;
            ``compute`` does not take ``(config, key)`` or ``plot`` / ``check`` do not take
            ``(data, config)``; ``seed`` is not an integer >= 0.

    Example:
        >>> def compute(config, key): ...
        >>> def plot(data, config): ...
        >>> def check(data, config): ...
        >>> register("rivervalley.figures.valley", caption="A.\\nB.", full=None, fast=None,
        ...          compute=compute, plot=plot, check=check)
        Traceback (most recent call last):
        ...
        ValueError: figure 'valley' is already registered (by rivervalley.figures.valley)
    """
    if not isinstance(module, str) or not module:
        raise ValueError(f"module={fmt(module)} must be the registering module's __name__")
    name = module.rpartition(".")[2]
    if name in FIGURES:
        raise ValueError(f"figure {name!r} is already registered (by {FIGURES[name].module})")
    if not isinstance(caption, str):
        raise ValueError(f"caption={fmt(caption)} must be a string")
    title, _, rest = caption.partition("\n")
    if not title.strip() or not rest.strip():
        raise ValueError(f"caption={fmt(caption)} must be a title line, then what to see")
    config_class = type(full)
    if not (dataclasses.is_dataclass(full) and config_class.__dataclass_params__.frozen):
        raise ValueError(f"full={fmt(full)} must be an instance of a frozen dataclass (Config)")
    if type(fast) is not config_class:
        raise ValueError(f"fast={fmt(fast)} must be a {config_class.__name__}, like full")
    for role, fn in (("compute", compute), ("plot", plot), ("check", check)):
        _check_function(role, fn)
    seed = check_int("seed", seed, lo=0)
    fig = Figure(name=name, module=module, caption=caption, full=full, fast=fast,
                 compute=compute, plot=plot, check=check, seed=seed)
    FIGURES[name] = fig
    return fig


def load() -> dict[str, Figure]:
    """Import the :data:`GALLERY` modules (each registers its figure) and order :data:`FIGURES`
    as the gallery; the package's ``__init__`` calls it. Figures registered from outside the
    gallery (a test's fakes) follow, in their order.

    Raises:
        ValueError: a gallery module registered no figure.
    """
    for name in GALLERY:
        importlib.import_module(f"rivervalley.figures.{name}")
    missing = [name for name in GALLERY if name not in FIGURES]
    if missing:
        raise ValueError(f"the gallery modules {missing} register no figure (end each with "
                         "FIGURE = register(__name__, ...))")
    others = {n: f for n, f in FIGURES.items() if n not in GALLERY}
    ordered = {n: FIGURES[n] for n in GALLERY} | others
    FIGURES.clear()
    FIGURES.update(ordered)
    return FIGURES


def get(name: str) -> Figure:
    """The figure called ``name``; ``ValueError`` listing the known ones otherwise."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; known figures: {', '.join(FIGURES)}")
    return FIGURES[name]


__all__ = ["GALLERY", "SIGNATURES", "Figure", "FIGURES", "register", "load", "get"]
