"""The explorer's settings: the table of its controls, :class:`Settings`, and what they build.

Every control of the window is a row of :data:`SLIDERS` or :data:`RADIOS`; the command line
(``rivervalley explore --peak-value 0.05 ...``) and :class:`Settings` take exactly these names and
ranges, so the window, the CLI and the Python API cannot drift apart.

What one setting builds: the five schedules of :data:`FAMILIES` (each by its own
:mod:`rivervalley.schedules` factory, the family name is the factory's name) wrapped in
:class:`Selected`, whose *traced* index picks the family, so a family switch changes a value of
the compiled program, not the program; and the standard toy
(:func:`rivervalley.landscapes.standard_toy`) with the chosen sharpness and meander under
hill-only noise (:func:`rivervalley.noise.hill_only`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley import landscapes, schedules
from rivervalley import noise as noise_models
from rivervalley._pytree import pytree
from rivervalley._validate import check_int, check_real, fmt
from rivervalley.protocols import Array

#: Schedule families in radio-button order; each is the name of its rivervalley.schedules factory.
FAMILIES = ("constant", "cosine", "wsd", "wsd_s", "cyclic_cosine")
#: WSD-S and cyclic cosine cycle ends, as fractions of num_steps (the paper's 12.5k/25k/50k).
CYCLE_ENDS = (0.25, 0.5, 1.0)
#: Decay shapes whose multiplier needs a positive floor (they never reach 0) ...
SHAPES_WITH_FLOOR = ("inverse", "exponential")
#: ... and that floor, as a fraction of the peak; every other shape decays to 0.
FLOOR_RATIO = 0.01
#: Meander wavenumber k of the river course c(u) = A sin(k u).
WAVENUMBER = 1.5
#: Fewest steps of an explorer run (the cycle ends need distinct steps) ...
MIN_STEPS = 10
#: ... and the steps of a run unless told (the standard toy's).
DEFAULT_STEPS = landscapes.STANDARD_TOY.num_steps


class SliderSpec(NamedTuple):
    """One slider: its label, range and step (None: continuous)."""

    label: str
    lo: float
    hi: float
    step: int | None = None


class RadioSpec(NamedTuple):
    """One group of radio buttons: its title and options (the names a setting takes)."""

    title: str
    options: tuple[str, ...]


#: The sliders, in layout order: name -> label, range, step. The CLI flag is ``--name`` with "-".
SLIDERS: dict[str, SliderSpec] = {
    "peak_value": SliderSpec("peak LR $\\eta$", 0.002, 0.15),
    "warmup_fraction": SliderSpec("warmup (frac.)", 0.0, 0.1),
    "decay_fraction": SliderSpec("decay (frac.)", 0.02, 0.5),
    "sigma": SliderSpec("noise $\\sigma$", 0.0, 3.0),
    "sharpness": SliderSpec("sharpness $\\lambda$", 2.0, 100.0),
    "meander": SliderSpec("meander $A$", 0.0, 1.0),
    "seed": SliderSpec("seed", 0, 20, 1),
}
#: The radio buttons: name -> title, options.
RADIOS: dict[str, RadioSpec] = {
    "family": RadioSpec("schedule family", FAMILIES),
    "decay_shape": RadioSpec("decay shape", tuple(schedules.DECAY_SHAPES)),
}
#: The sliders of each group of the window, by group title.
SLIDER_GROUPS: dict[str, tuple[str, ...]] = {
    "schedule": ("peak_value", "warmup_fraction", "decay_fraction"),
    "landscape and noise": ("sigma", "sharpness", "meander", "seed"),
}


def _family_name(family: Any) -> str:
    """``family`` as a name of :data:`FAMILIES`; case, ``-`` and spaces are ignored
    (``"WSD-S"`` is ``"wsd_s"``)."""
    name = family.strip().lower().replace("-", "_").replace(" ", "_") \
        if isinstance(family, str) else None
    if name not in FAMILIES:
        raise ValueError(f"family={fmt(family)} is unknown; known families: {', '.join(FAMILIES)}")
    return name


def check_setting(name: str, value: Any) -> Any:
    """``value`` checked for the control ``name`` and normalized (the name a radio option has,
    an ``int`` seed); ``ValueError`` naming the setting, its value and the control's range.

    >>> check_setting("family", "WSD-S"), check_setting("decay_shape", "harmonic")
    ('wsd_s', 'inverse')
    >>> check_setting("peak_value", 0.5)
    Traceback (most recent call last):
    ...
    ValueError: peak_value=0.5 is outside the valid range [0.002, 0.15] (the slider's range)
    """
    if name == "family":
        return _family_name(value)
    if name == "decay_shape":
        return schedules.DECAY_SHAPES[schedules.shape_index(value)]
    if name not in SLIDERS:
        raise ValueError(f"{name!r} is not a control; controls: "
                         f"{', '.join(list(SLIDERS) + list(RADIOS))}")
    spec = SLIDERS[name]
    if spec.step is not None:
        return check_int(name, value, lo=int(spec.lo), hi=int(spec.hi))
    check_real(name, value, lo=spec.lo, hi=spec.hi, what="the slider's range")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The explorer's controls, checked at construction (:func:`check_setting`); the defaults are
    THEORY.md's standard toy (:data:`rivervalley.landscapes.STANDARD_TOY`) under WSD.

    >>> Settings(family="WSD-S").family
    'wsd_s'
    """

    peak_value: float = landscapes.STANDARD_TOY.peak_value
    warmup_fraction: float = 0.0
    decay_fraction: float = 0.2
    decay_shape: str = "linear"
    family: str = "wsd"
    sigma: float = landscapes.STANDARD_TOY.sigma
    sharpness: float = landscapes.STANDARD_TOY.sharpness
    meander: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, check_setting(f.name, getattr(self, f.name)))


@pytree
@dataclasses.dataclass(frozen=True)
class Selected:
    """The schedule ``options[index]``: ``eta(t) = options[index](t)``.

    ``index`` is an array leaf, so choosing another family changes a value, not the program; the
    choice is a ``lax.switch``, which runs only the chosen schedule (also inside the engine's
    ``vmap`` over steps, where the index is not batched).
    """

    options: tuple
    index: Array

    def __call__(self, step: Array) -> Array:
        branches = [lambda t, s=s: jnp.asarray(s(t), jnp.float32) for s in self.options]
        return jax.lax.switch(self.index, branches, step)


def build_schedule(settings: Settings, num_steps: int) -> Selected:
    """The five families for ``settings`` (their validated factories) and the chosen one's index.

    Example:
        >>> s = build_schedule(Settings(family="cosine", peak_value=0.1), 100)
        >>> print(round(float(s(50)), 3), round(float(s.options[0](50)), 3))
        0.05 0.1
    """
    if not isinstance(settings, Settings):
        raise ValueError(f"settings={fmt(settings)} must be a rivervalley.explorer.Settings")
    num_steps = check_int("num_steps", num_steps, lo=MIN_STEPS)
    warm = int(round(settings.warmup_fraction * num_steps))
    floor = FLOOR_RATIO if settings.decay_shape in SHAPES_WITH_FLOOR else 0.0
    ends = sorted({max(1, int(round(f * num_steps))) for f in CYCLE_ENDS})
    p, decay, shape = settings.peak_value, settings.decay_fraction, settings.decay_shape
    opts = (
        schedules.constant(p),
        schedules.cosine(p, num_steps, warmup_steps=warm, min_ratio=floor),
        schedules.wsd(p, num_steps, warmup_steps=warm, decay=decay, decay_shape=shape,
                      min_ratio=floor),
        schedules.wsd_s(p, ends, warmup_steps=warm, decay=decay, decay_shape=shape,
                        min_ratio=floor),
        schedules.cyclic_cosine(p, ends, warmup_steps=warm, min_ratio=floor),
    )
    return Selected(opts, np.asarray(FAMILIES.index(settings.family), np.int32))


def build_problem(settings: Settings) -> tuple[landscapes.RiverValley, noise_models.HillOnly]:
    """The valley (standard toy with the chosen sharpness and meander) and its hill-only noise.

    >>> valley, noise = build_problem(Settings(sharpness=30.0))
    >>> print(float(valley.sharpness[0]), valley.course)
    30.0 sine
    """
    # always the sine course (amplitude 0 is a straight river): the course kind is static, so
    # a straight/meandering switch would recompile the frame
    valley = landscapes.standard_toy(sharpness=settings.sharpness, amplitude=settings.meander,
                                     wavenumber=WAVENUMBER, course="sine")
    return valley, noise_models.hill_only(settings.sigma)
