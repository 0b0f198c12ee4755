"""Evaluating a law: :func:`loss_curve` and :func:`parts`, with the checks of their inputs
(private; re-exported by :mod:`rivervalley.laws`).

``loss_curve(law, params, lrs)`` is the law's loss at every step of ``lrs`` (the LR of every step
``0 .. T-1``), by its full-curve formula; with ``steps=`` it is the loss at those steps only, by the
exact evaluation a fit uses (``rivervalley/_laws_at_steps.py``). ``parts`` splits a river-valley
law into its river loss and the hill loss of each group of hill directions. Inputs are checked on
the host before anything is traced (a traced ``lrs`` or ``params`` passes unchecked).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley._laws_formulas import hill_total
from rivervalley._laws_registry import LAWS, Law, get_law, law_params
from rivervalley._validate import check_real, is_traced
from rivervalley.protocols import LearningRates


def check_lrs(lrs, name: str = "lrs"):
    """A non-empty 1-D array of finite LRs >= 0 (traced arrays pass unchecked); returns ``lrs``."""
    if is_traced(lrs):
        return jnp.asarray(lrs)
    if isinstance(lrs, bool):
        raise ValueError(f"{name}={lrs!r} must be an array of learning rates")
    try:
        a = np.asarray(lrs, dtype=np.float64) if not isinstance(lrs, jax.Array) else np.asarray(lrs)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of learning rates") from None
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} has shape {a.shape}: expected a non-empty 1-D array (the LR of "
                         "every step 0 .. T-1)")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise ValueError(f"{name} has dtype {a.dtype}: expected real learning rates")
    check_real(name, a, lo=0.0, what="learning rates")
    return lrs


def check_steps(steps, n_lrs: int, n_losses: int, name: str = "steps") -> np.ndarray:
    """The whole-number steps ``[0, n_lrs)`` of ``n_losses`` losses as int64; ``None``: every step
    (then there must be a loss per LR)."""
    if steps is None:
        if n_losses != n_lrs:
            raise ValueError(f"losses has {n_losses} entries but lrs has {n_lrs}: pass steps= "
                             "(the step of each loss) when losses are not given for every step")
        return np.arange(n_lrs)
    s = np.asarray(steps)
    if s.ndim != 1 or len(s) != n_losses:
        raise ValueError(f"{name} has shape {s.shape}, expected ({n_losses},) like losses")
    if s.dtype == bool or not (np.issubdtype(s.dtype, np.integer) or np.issubdtype(s.dtype, np.floating)):
        raise ValueError(f"{name} must be whole numbers, got dtype {s.dtype}")
    if not np.issubdtype(s.dtype, np.integer):
        if not np.all(np.isfinite(s)) or not np.all(s == np.round(s)):
            raise ValueError(f"{name} must be whole numbers, got {s[:5]}...")
        s = s.astype(np.int64)
    if len(s) and (s.min() < 0 or s.max() >= n_lrs):
        raise ValueError(f"{name} spans {s.min()}..{s.max()}, outside 0..{n_lrs - 1} (the steps of lrs)")
    return s


def loss_curve(law: Law | str, params, lrs: LearningRates, steps=None) -> jax.Array:
    """The law's loss at every step of ``lrs`` (``steps=None``) or at the given ``steps``.

    Args:
      law: a :class:`Law` or its name.
      params: the law's parameter NamedTuple (or a sequence in its field order).
      lrs: LR of every step ``0 .. T-1`` (non-empty, finite, >= 0).
      steps: optional integer steps in ``[0, T)``; the law is then evaluated exactly at those
        steps only (the multi-power law and the convex bound in O(len(steps) * T) at most, the
        river-valley laws per run of constant LR) instead of by the O(T m) scan.

    Returns:
      the losses, shape ``(T,)`` or ``(len(steps),)``, in the current default float type.

    >>> round(float(loss_curve("lr_annealing", (2.0, 1.0, 0.5, 1.0, 0.999), [0.1] * 100, steps=[99])[0]), 4)
    2.3162
    >>> loss_curve("lr_annealing", (2.0, 1.0, 0.5, 1.0, 0.999), [])
    Traceback (most recent call last):
    ...
    ValueError: lrs has shape (0,): expected a non-empty 1-D array (the LR of every step 0 .. T-1)
    """
    law = get_law(law)
    params = law_params(law, params)
    lrs = check_lrs(lrs)
    if steps is None:
        return law.curve(params, jnp.asarray(lrs))
    lrs_np = np.asarray(lrs, dtype=np.float64)
    s = check_steps(steps, len(lrs_np), len(np.atleast_1d(steps)))
    prep = jax.tree_util.tree_map(jnp.asarray, law.prepare(lrs_np, s))
    return _jitted_at(law)(params, prep)


@functools.cache
def _jitted_at(law: Law):
    """One compiled evaluator per law (registered or user-defined: keyed by the Law itself)."""
    return jax.jit(law.evaluate_at)


class Parts(NamedTuple):
    """The river / hill split of a river-valley law (:func:`parts`): ``river + hill`` is the law.

    Attributes:
      river: ``L0 + A (tau_t + tau0)^(-alpha)``, the river loss (what a full decay reveals).
      hill: the total hill loss, the sum of ``groups``.
      groups: the hill loss of each group of hill directions (one array per group).
    """
    river: jax.Array
    hill: jax.Array
    groups: tuple


def parts(law: Law | str, params, lrs: LearningRates) -> Parts:
    """The river and hill parts of a river-valley law at every step; ``river + hill`` = the law.

    Raises ``ValueError`` for a law without a river / hill split (multi-power, LR-annealing,
    convex bound: their terms are not the loss of a landscape's parts).

    >>> from rivervalley.laws import RiverValley2Params
    >>> p = RiverValley2Params(1.0, 1.0, 0.5, 1.0, 2.0, 1.0, 0.1, 0.5)
    >>> r = parts("river_valley_2", p, np.full(1000, 0.1))
    >>> [round(float(x[-1]), 4) for x in (r.river, r.hill, r.groups[0], r.groups[1])]
    [1.0996, 0.0403, 0.0278, 0.0126]
    """
    law = get_law(law)
    if law.parts is None:
        have = ", ".join(n for n, l in LAWS.items() if l.parts is not None)
        raise ValueError(f"law {law.name!r} has no river / hill parts (laws that have: {have})")
    params = law_params(law, params)
    lrs = jnp.asarray(check_lrs(lrs))
    river, groups = law.parts(params, lrs)
    return Parts(river, hill_total(groups), tuple(groups))
