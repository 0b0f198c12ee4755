"""Loss-curve laws: predict a whole loss curve from the learning-rate schedule alone.

Every law is a pure, vectorized JAX function of ``lrs``, the LR of every step ``0 .. T-1``, costing
O(T) (cumulative sums, a linear-recurrence scan) or O(T * m) with a fixed number ``m`` of
exponentials (a ``lax.scan`` with an ``m``-vector state); nothing builds a T x T matrix.

- :data:`MULTI_POWER`  Luo et al. 2025 (arXiv:2503.12811), THEORY.md §8.
- :data:`LR_ANNEALING` Tissue et al. 2024 (arXiv:2408.11029).
- :data:`CONVEX_BOUND` the last-iterate bound for SGD on convex Lipschitz problems that Schaipp et
  al. 2025 (arXiv:2501.18965) evaluate (Defazio et al. 2023, Thm. 10), mapped affinely to a loss.
- :data:`RIVER_VALLEY` river progress + hill relaxation (THEORY.md §4): the new law of this package.
- :data:`RIVER_VALLEY_2` the same with two groups of hill directions (a fast and a slow hill).
- :data:`RIVER_VALLEY_SPECTRUM` the same with a log-uniform spectrum of hill sharpnesses and a
  fitted LR scaling of the hill level (8 parameters, like the multi-power law).

The workflow, one module each (this one re-exports their public names):

- ``rivervalley._laws_io``: :func:`load_curve` reads real training logs (JSON logs of the shipped
  format whatever their schedule, CSV / JSON-lines, W&B exports) into a :class:`Curve`;
  :func:`real_curves` lists the shipped ones, :func:`glue` joins a cooldown to its main run.
- ``rivervalley._laws_formulas``: the parameter NamedTuples and each law's formula of the whole
  curve (``rivervalley._laws_soe``: the sums of exponentials behind the O(T m) laws).
- ``rivervalley._laws_at_steps``: the same laws evaluated exactly at a few observed steps (what a
  fit evaluates).
- ``rivervalley._laws_registry``: the :class:`Law` records (bounds, initial guesses, checks of a
  fit) and :data:`LAWS`.
- ``rivervalley._laws_evaluation``: :func:`loss_curve` and :func:`parts` (river + hill).
- ``rivervalley._laws_fitting``: :func:`fit` (Curves or arrays; parameters, standard errors and
  :class:`FitWarning`).
- ``rivervalley._laws_validation``: :func:`validate`, the held-out protocol behind the README
  table, and :func:`validation_table`.
- ``rivervalley._laws_advice``: :func:`schedule_from_spec` (``"wsd:peak=1e-3,steps=50000,..."``)
  and :func:`advise` (the best WSD decay for a budget under a fitted law).

Parameter names: the river-valley laws share the river's ``L0, A, alpha, tau0`` and name their
hill as :mod:`rivervalley.theory` does (``sharpness``, ``noise_var``, ``sharpness_2``,
``noise_var_2``, ``sharpness_lo``, ``sharpness_hi``); the multi-power and LR-annealing laws keep
the symbols of their papers (the annealing ``lam`` is a momentum decay factor, not a sharpness).

>>> import numpy as np
>>> lrs = np.full(1000, 0.1)
>>> p = RIVER_VALLEY.params(L0=1.0, A=1.0, alpha=0.5, tau0=1.0, sharpness=2.0, noise_var=1.0)
>>> round(float(loss_curve(RIVER_VALLEY, p, lrs)[-1]), 4)
1.1273
"""

from __future__ import annotations

from rivervalley._laws_advice import Advice, Spec, advise, schedule_from_spec
from rivervalley._laws_evaluation import Parts, loss_curve, parts
from rivervalley._laws_fitting import FitResult, FitWarning, fit
from rivervalley._laws_formulas import (
    SPECTRUM_GROUPS,
    AnnealingParams,
    ConvexBoundParams,
    MultiPowerParams,
    RiverValley2Params,
    RiverValleyParams,
    RiverValleySpectrumParams,
    convex_bound,
    convex_bound_law,
    lr_annealing_law,
    multi_power_law,
    river_valley_2_law,
    river_valley_law,
    river_valley_spectrum_law,
)
from rivervalley._laws_io import Curve, glue, load_curve, real_curves, reconstruct_lr
from rivervalley._laws_registry import (
    CONVEX_BOUND,
    LAWS,
    LR_ANNEALING,
    MULTI_POWER,
    RIVER_VALLEY,
    RIVER_VALLEY_2,
    RIVER_VALLEY_SPECTRUM,
    Law,
)
from rivervalley._laws_validation import validate, validation_table

__all__ = [
    "Law", "MultiPowerParams", "AnnealingParams", "ConvexBoundParams", "RiverValleyParams",
    "RiverValley2Params", "RiverValleySpectrumParams", "MULTI_POWER", "LR_ANNEALING", "CONVEX_BOUND",
    "RIVER_VALLEY", "RIVER_VALLEY_2", "RIVER_VALLEY_SPECTRUM", "SPECTRUM_GROUPS", "LAWS",
    "multi_power_law", "lr_annealing_law", "convex_bound_law",
    "convex_bound", "river_valley_law", "river_valley_2_law", "river_valley_spectrum_law",
    "loss_curve", "parts", "Parts", "fit", "FitResult", "FitWarning", "Curve", "load_curve",
    "real_curves", "glue", "reconstruct_lr", "validate", "validation_table",
    "schedule_from_spec", "Spec", "advise", "Advice",
]
