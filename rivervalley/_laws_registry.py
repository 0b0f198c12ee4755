"""The :class:`Law` records: each law with its bounds, initial guess and checks (private;
re-exported by :mod:`rivervalley.laws`).

A record ties a law's formula (``rivervalley/_laws_formulas.py``) to what a fit needs: the
parameters' bounds and which are fitted in log space, an initial guess from scales of the data
(never from held-out runs; the constants below), the exact evaluation at observed steps
(``rivervalley/_laws_at_steps.py``), the river / hill split of the river-valley laws, and the
check that reports a degenerate fit (a group of hill directions that collapsed).
:data:`LAWS` holds the six laws by name; :func:`get_law` and :func:`law_params` turn what a user
passes (a name, a sequence of numbers) into a record and its parameter NamedTuple.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from rivervalley import theory
from rivervalley._laws_at_steps import (
    convex_bound_at,
    convex_terms,
    multi_power_at,
    prepare_convex,
    prepare_every_step,
    prepare_multi_power,
    prepare_segments,
    river_valley_2_at,
    river_valley_at,
    river_valley_spectrum_at,
)
from rivervalley._laws_formulas import (
    AnnealingParams,
    ConvexBoundParams,
    MultiPowerParams,
    RiverValley2Params,
    RiverValleyParams,
    RiverValleySpectrumParams,
    convex_bound_law,
    lr_annealing_law,
    multi_power_law,
    river_valley_2_law,
    river_valley_2_parts,
    river_valley_law,
    river_valley_parts,
    river_valley_spectrum_law,
    river_valley_spectrum_parts,
)
from rivervalley._validate import check_real, is_traced
from rivervalley.protocols import Array

_INF = math.inf
#: The lower bound of a positive parameter fitted in log space (A, tau0, a sharpness, ...): > 0
#: so that its log is finite, and far below any value a loss curve determines.
_TINY = 1e-12
#: The range of the power-law exponent alpha of the river (and of the multi-power / annealing laws).
_ALPHA_MIN, _ALPHA_MAX = 0.01, 3.0
#: Bounds of the river's parameters (L0, A, alpha, tau0), shared by every river-valley law.
_RIVER_LOWER = (0.0, _TINY, _ALPHA_MIN, _TINY)
_RIVER_UPPER = (_INF, _INF, _ALPHA_MAX, _INF)

# Initial guesses, from scales of the fitted runs only:
#: the floor L0 starts at this fraction of the lowest observed loss;
GUESS_FLOOR_FRACTION = 0.7
#: the exponent alpha at 1/2 (A then matches the loss at the middle observation of the first run);
GUESS_ALPHA = 0.5
#: a full decay from the peak LR removes this fraction of the lowest loss (the hill loss at the
#: peak LR, ~eta noise_var / 4; the multi-power B; the annealing C);
GUESS_DROP_FRACTION = 0.05
#: the river offset tau0 is this many steps at the peak LR;
GUESS_TAU0_STEPS = 10
#: one hill group relaxes over this many steps at the peak LR (sharpness = 1 / (2 steps eta));
GUESS_RELAXATION_STEPS = 500
#: river_valley_2's second group is this much flatter (relaxes this much slower), with
#: 1 / GUESS_SLOW_NOISE_DIVISOR of the first group's noise;
GUESS_SLOW_FLATTER = 20.0
GUESS_SLOW_NOISE_DIVISOR = 2.0
#: the spectrum spans the one-group guess divided by GUESS_SPECTRUM_BELOW to multiplied by
#: GUESS_SPECTRUM_ABOVE (a decade and a half either side), with SGD's noise exponent p = 1;
GUESS_SPECTRUM_BELOW, GUESS_SPECTRUM_ABOVE, GUESS_NOISE_EXPONENT = 30.0, 3.0, 1.0
#: the multi-power kernel: beta = gamma = 1/2 and C sqrt(peak) = 0.01, so C x reaches 1 about
#: 100 steps after a drop at the peak LR;
GUESS_MPL_BETA, GUESS_MPL_GAMMA, GUESS_MPL_C_SQRT_PEAK = 0.5, 0.5, 0.01
#: the annealing momentum forgets over ~1000 steps: lam = 1 - GUESS_ANNEALING_FORGET;
GUESS_ANNEALING_FORGET = 1e-3
#: the convex bound's floor stays below the lowest loss by this factor; a non-positive
#: least-squares coefficient of scale or scale * d2 starts at 1 instead.
GUESS_CONVEX_FLOOR_BELOW_MIN, GUESS_CONVEX_FALLBACK = 0.999, 1.0

# Degenerate fits (:attr:`Law.check`):
#: a hill group collapsed when its steady-state hill loss at the peak LR is below this share of
#: the total (it explains nothing) ...
COLLAPSED_HILL_SHARE = 0.01
#: ... or when it relaxes over more than this many run lengths (a drift of the river, not a hill);
COLLAPSED_RELAXATION_RUNS = 10
#: a spectrum whose sharpness_hi / sharpness_lo is below this ratio is one sharpness.
COLLAPSED_SPECTRUM_RATIO = 1.05


@dataclasses.dataclass(frozen=True)
class Law:
    """A loss-curve law: its function, parameter type, bounds, and how to evaluate it at steps.

    Attributes:
      name: short name ("multi_power", "lr_annealing", "convex_bound", "river_valley", ...).
      params: the parameter NamedTuple class.
      curve: ``curve(params, lrs) -> losses`` for every step (O(T) or O(T m)).
      lower, upper: bounds per parameter (``params`` instances).
      log_scale: names of parameters fitted in log space (positive, scale-free).
      guess: ``guess(lrs_list, losses_list, steps_list) -> params`` initial values from data.
      prepare, at: exact evaluation at given steps (``prepare`` in NumPy once, ``at`` in JAX).
      parts: ``parts(params, lrs) -> (river, (hill_1, ...))`` for a river-valley law (the river
        part and one hill part per group, summing to ``curve``); ``None`` for the other laws.
      check: ``check(params, lrs_list) -> [message, ...]``: degenerate fits (a group of hill
        directions that collapsed), reported by :func:`rivervalley.laws.fit` as ``FitWarning``.
    """
    name: str
    params: type
    curve: Callable
    lower: Array
    upper: Array
    log_scale: tuple[str, ...]
    guess: Callable
    prepare: Callable = prepare_every_step
    at: Callable | None = None
    parts: Callable | None = None
    check: Callable | None = None

    def evaluate_at(self, params, prep):
        """The law at the steps ``prep`` was prepared for (``prepare(lrs, steps)``)."""
        if self.at is not None:
            return self.at(params, prep)
        return self.curve(params, prep["lrs"])[prep["steps"]]


# ============================================================================================
# initial guesses
# ============================================================================================

def _power_law_guess(lrs_list, losses_list, steps_list):
    """(L0, A, alpha) of a power law ``L0 + A area^(-alpha)`` through the middle observation of the
    first run, and the scales (peak LR, lowest loss) the other guesses use."""
    peak = max(float(np.max(l)) for l in lrs_list)
    lmin = min(float(np.min(y)) for y in losses_list)
    y0, s0, l0 = losses_list[0], steps_list[0], lrs_list[0]
    i = len(y0) // 2
    area = max(float(np.sum(l0[: s0[i] + 1])), _TINY)
    floor = GUESS_FLOOR_FRACTION * lmin
    return (floor, (float(y0[i]) - floor) * area ** GUESS_ALPHA, GUESS_ALPHA), peak, lmin


def _guess_multi_power(lrs_list, losses_list, steps_list):
    river, peak, lmin = _power_law_guess(lrs_list, losses_list, steps_list)
    return MultiPowerParams(*river, GUESS_DROP_FRACTION * lmin / peak,
                            GUESS_MPL_C_SQRT_PEAK / math.sqrt(peak), GUESS_MPL_BETA,
                            GUESS_MPL_GAMMA, 0.0)


def _guess_annealing(lrs_list, losses_list, steps_list):
    river, peak, lmin = _power_law_guess(lrs_list, losses_list, steps_list)
    return AnnealingParams(*river, GUESS_DROP_FRACTION * lmin * GUESS_ANNEALING_FORGET / peak,
                           1 - GUESS_ANNEALING_FORGET)


def _guess_river_valley(lrs_list, losses_list, steps_list):
    river, peak, lmin = _power_law_guess(lrs_list, losses_list, steps_list)
    return RiverValleyParams(*river, GUESS_TAU0_STEPS * peak,
                             1.0 / (2 * GUESS_RELAXATION_STEPS * peak),
                             4 * GUESS_DROP_FRACTION * lmin / peak)


def _guess_river_valley_2(lrs_list, losses_list, steps_list):
    g = _guess_river_valley(lrs_list, losses_list, steps_list)
    return RiverValley2Params(*g, g.sharpness / GUESS_SLOW_FLATTER,
                              g.noise_var / GUESS_SLOW_NOISE_DIVISOR)


def _guess_spectrum(lrs_list, losses_list, steps_list):
    g = _guess_river_valley(lrs_list, losses_list, steps_list)
    return RiverValleySpectrumParams(g.L0, g.A, g.alpha, g.tau0, g.noise_var,
                                     g.sharpness / GUESS_SPECTRUM_BELOW,
                                     g.sharpness * GUESS_SPECTRUM_ABOVE, GUESS_NOISE_EXPONENT)


def _guess_convex(lrs_list, losses_list, steps_list):
    # the law is linear in (L0, scale, scale * d2): solve that least-squares problem
    rows, ys = [], []
    for lrs, y, s in zip(lrs_list, losses_list, steps_list):
        a1, a2 = convex_terms(np.asarray(lrs, np.float64), np.asarray(s))
        ok = np.isfinite(a2)
        rows.append(np.stack([np.ones(ok.sum()), a2[ok], a1[ok]], 1))
        ys.append(np.asarray(y, np.float64)[ok])
    X, Y = np.concatenate(rows), np.concatenate(ys)
    coef = np.linalg.lstsq(X, Y, rcond=None)[0]
    L0 = float(np.clip(coef[0], 0.0, float(Y.min()) * GUESS_CONVEX_FLOOR_BELOW_MIN))
    scale = float(coef[1]) if coef[1] > 0 else GUESS_CONVEX_FALLBACK
    d2 = float(coef[2] / scale) if coef[2] > 0 else GUESS_CONVEX_FALLBACK
    return ConvexBoundParams(L0, scale, d2)


# ============================================================================================
# checks of a fit
# ============================================================================================

def _collapsed_groups(groups, lrs_list) -> list[str]:
    """Messages for hill groups ``[(sharpness, noise_var), ...]`` that collapsed on the fitted runs:
    a steady-state hill loss at the peak LR below ``COLLAPSED_HILL_SHARE`` of the total, or a
    relaxation (``1 / (2 eta sharpness)`` steps) longer than ``COLLAPSED_RELAXATION_RUNS`` runs."""
    peak = max(float(np.max(l)) for l in lrs_list)
    T = max(len(l) for l in lrs_list)
    stable = [peak * sharpness < 2 for sharpness, _ in groups]   # else no steady state
    levels = [theory.steady_state_hill_loss(peak, sharpness, noise_var) if ok else _INF
              for (sharpness, noise_var), ok in zip(groups, stable)]
    tot = sum(levels)
    out = []
    for i, ((sharpness, _), level, ok) in enumerate(zip(groups, levels, stable)):
        relax = theory.relaxation_steps(peak, sharpness) if ok else 0.0
        if tot > 0 and level < COLLAPSED_HILL_SHARE * tot:
            out.append(f"hill group {i + 1} collapsed: {100 * level / tot:.2g}% of the steady-state "
                       f"hill loss (< {100 * COLLAPSED_HILL_SHARE:g}%); a law with fewer groups fits "
                       "these runs as well")
        elif relax > COLLAPSED_RELAXATION_RUNS * T:
            out.append(f"hill group {i + 1} collapsed: it relaxes over ~{relax:.3g} steps, more than "
                       f"{COLLAPSED_RELAXATION_RUNS} run lengths ({T} steps): a drift of the river, "
                       "not a hill")
    return out


def _check_river_valley(params, lrs_list):
    if params.noise_var <= 0:
        return []
    return _collapsed_groups([(params.sharpness, params.noise_var)], lrs_list)


def _check_river_valley_2(params, lrs_list):
    return _collapsed_groups([(params.sharpness, params.noise_var),
                              (params.sharpness_2, params.noise_var_2)], lrs_list)


def _check_spectrum(params, lrs_list):
    # (lo, hi) and (hi, lo) are the same spectrum: only the ratio counts
    lo, hi = sorted((float(params.sharpness_lo), float(params.sharpness_hi)))
    if hi < lo * COLLAPSED_SPECTRUM_RATIO:
        return [f"the spectrum collapsed to one sharpness (sharpness_lo={params.sharpness_lo:.4g}, "
                f"sharpness_hi={params.sharpness_hi:.4g}): river_valley fits these runs as well"]
    return []


# ============================================================================================
# the records
# ============================================================================================

#: The multi-power law (Luo et al. 2025): power-law river progress in the LR area plus a
#: power-law loss reduction from each LR drop (8 parameters).
MULTI_POWER = Law(
    "multi_power", MultiPowerParams, multi_power_law,
    # the kernel's exponents: beta in [0.01, 5], gamma in [0, 2]
    MultiPowerParams(0.0, _TINY, _ALPHA_MIN, _TINY, _TINY, 0.01, 0.0, 0.0),
    MultiPowerParams(_INF, _INF, _ALPHA_MAX, _INF, _INF, 5.0, 2.0, _INF),
    ("A", "B", "C"), _guess_multi_power, prepare_multi_power, multi_power_at)
#: The LR-annealing law (Tissue et al. 2024): L0 + A S1^-alpha - C S2, S2 the momentum-smoothed
#: annealing area (5 parameters).
LR_ANNEALING = Law(
    "lr_annealing", AnnealingParams, lr_annealing_law,
    # the momentum's decay factor lam: a memory of 10 to 100,000 steps
    AnnealingParams(0.0, _TINY, _ALPHA_MIN, _TINY, 0.9),
    AnnealingParams(_INF, _INF, _ALPHA_MAX, _INF, 0.99999),
    ("A", "C"), _guess_annealing)
#: The convex-optimization bound of the last iterate (Schaipp et al. 2025), scaled and shifted
#: (3 parameters).
CONVEX_BOUND = Law(
    "convex_bound", ConvexBoundParams, convex_bound_law,
    ConvexBoundParams(0.0, _TINY, _TINY), ConvexBoundParams(_INF, _INF, _INF),
    ("scale", "d2"), _guess_convex, prepare_convex, convex_bound_at)
#: River progress in river time plus one hill group relaxing by the exact second-moment
#: recursion (THEORY.md §4; 6 parameters).
RIVER_VALLEY = Law(
    "river_valley", RiverValleyParams, river_valley_law,
    RiverValleyParams(*_RIVER_LOWER, _TINY, _TINY), RiverValleyParams(*_RIVER_UPPER, _INF, _INF),
    ("A", "tau0", "sharpness", "noise_var"), _guess_river_valley, prepare_segments,
    river_valley_at, parts=river_valley_parts, check=_check_river_valley)
#: The river-valley law with two hill groups (a fast and a slow sharpness; 8 parameters).
RIVER_VALLEY_2 = Law(
    "river_valley_2", RiverValley2Params, river_valley_2_law,
    RiverValley2Params(*_RIVER_LOWER, _TINY, _TINY, _TINY, _TINY),
    RiverValley2Params(*_RIVER_UPPER, _INF, _INF, _INF, _INF),
    ("A", "tau0", "sharpness", "noise_var", "sharpness_2", "noise_var_2"), _guess_river_valley_2,
    prepare_segments, river_valley_2_at, parts=river_valley_2_parts, check=_check_river_valley_2)
#: The river-valley law with a log-uniform spectrum of hill sharpnesses between sharpness_lo and
#: sharpness_hi, each relaxing by the exact recursion, and a fitted LR exponent of the hill level
#: (8 parameters).
RIVER_VALLEY_SPECTRUM = Law(
    "river_valley_spectrum", RiverValleySpectrumParams, river_valley_spectrum_law,
    # sharpness_lo, sharpness_hi >= 1e-9; the noise exponent p in [-0.9, 3]: a hill level from
    # ~eta^-0.9 to ~eta^3
    RiverValleySpectrumParams(*_RIVER_LOWER, _TINY, 1e-9, 1e-9, -0.9),
    RiverValleySpectrumParams(*_RIVER_UPPER, _INF, _INF, _INF, 3.0),
    ("A", "tau0", "noise_var", "sharpness_lo", "sharpness_hi"), _guess_spectrum, prepare_segments,
    river_valley_spectrum_at, parts=river_valley_spectrum_parts, check=_check_spectrum)

#: All laws by name.
LAWS: dict[str, Law] = {law.name: law for law in (MULTI_POWER, LR_ANNEALING, CONVEX_BOUND, RIVER_VALLEY,
                                                   RIVER_VALLEY_2, RIVER_VALLEY_SPECTRUM)}


def get_law(law: Law | str) -> Law:
    """``law`` itself, or the registered law of that name; anything else is a ``ValueError``."""
    if isinstance(law, Law):
        return law
    if not isinstance(law, str) or law not in LAWS:
        raise ValueError(f"law={law!r} is not one of {', '.join(LAWS)}")
    return LAWS[law]


def law_params(law: Law, params):
    """``params`` as the law's NamedTuple; a wrong count or a non-finite value is an error
    (traced values pass unchecked)."""
    fields = law.params._fields
    try:
        vals = tuple(params)
    except TypeError:
        raise ValueError(f"params={params!r} must be a sequence of {len(fields)} numbers "
                         f"({', '.join(fields)})") from None
    if len(vals) != len(fields):
        raise ValueError(f"params has {len(vals)} values but law {law.name!r} has "
                         f"{len(fields)}: {', '.join(fields)}")
    if not is_traced(vals):
        for name, v in zip(fields, vals):
            if np.ndim(v) != 0:
                raise ValueError(f"params.{name}={v!r} must be a real number")
            check_real(f"params.{name}", v)
    return law.params(*vals)
