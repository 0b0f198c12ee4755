"""What several figure modules compute the same way (private to the figures).

- :func:`toy`: THEORY.md's standard toy and its hill-only noise, with the numbers of
  :data:`rivervalley.landscapes.STANDARD_TOY` (lambda = 20, sigma = 1), so no figure retypes them.
- :func:`decay_start`: the step a WSD decay starts, ``T - D`` with ``D`` the schedules' own decay
  length (:func:`rivervalley.schedules.decay_steps_of`: ``floor(decay * T)`` in exact decimals).
- :func:`tabulate`: schedules of any kinds as ONE batch of tabulated schedules (one compiled sweep
  over plans whose branches are cosine, WSD or WSD-S).
- :func:`branch_lr`: a plan branch's LR on the plan's step axis, NaN where the branch does not run.
- :func:`table_bigram`: the table bigram model of a figure's config, and the key for its runs.

Like the figures' ``compute``, each imports the library inside (so ``plot`` and ``check`` stay
free of JAX work).

Example:
    >>> valley, hill = toy()
    >>> float(valley.sharpness[0]), float(hill.sigma)
    (20.0, 1.0)
    >>> decay_start(4000, 0.2)
    3200
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def toy(**overrides) -> tuple[Any, Any]:
    """``(landscapes.standard_toy(**overrides), noise.hill_only(STANDARD_TOY.sigma))``."""
    from rivervalley import landscapes, noise

    return (landscapes.standard_toy(**overrides),
            noise.hill_only(landscapes.STANDARD_TOY.sigma))


def decay_start(num_steps: int, decay: float | int) -> int:
    """The first step of the decay of ``schedules.wsd(peak, num_steps, decay=decay)``."""
    from rivervalley.schedules import decay_steps_of

    return int(num_steps) - decay_steps_of(num_steps, decay)


def tabulate(schedules: Sequence, num_steps: int) -> Any:
    """``schedules`` (any kinds) tabulated on steps ``0 .. num_steps`` and stacked: one batch.

    A sweep over it (``batched=("schedule",)``) runs every schedule in one compiled program; each
    lane sees exactly the LRs of its schedule (``schedules.as_array``, float32), held after
    ``num_steps``.

    Example:
        >>> from rivervalley import schedules as S
        >>> batch = tabulate([S.constant(0.5), S.wsd(1.0, 4, decay=0.5)], 4)
        >>> batch.values.shape
        (2, 5)
    """
    from rivervalley.dynamics import stack
    from rivervalley.schedules import as_array, tabulated

    if not schedules:
        raise ValueError("schedules is empty; tabulate needs at least one schedule")
    return stack([tabulated(as_array(s, num_steps + 1)) for s in schedules])


def branch_lr(branch: Any, num_steps: int) -> np.ndarray:
    """The LR of a :class:`rivervalley.plans.Branch` on steps ``0 .. num_steps - 1``, NaN outside
    ``[branch.start_step, branch.end_step]`` (a line plot shows the branch where it runs)."""
    from rivervalley.schedules import as_array

    steps = np.arange(num_steps)
    runs = (steps >= branch.start_step) & (steps <= branch.end_step)
    return np.where(runs, as_array(branch.schedule, num_steps), np.nan)


def table_bigram(config: Any, key: Any) -> tuple[Any, Any]:
    """The :class:`rivervalley.bigram.TableModel` of ``config`` (its ``vocab_size``,
    ``det_fraction``, ``logit_scale`` and ``batch_size``) on data drawn with the first half of
    ``key``; returns ``(model, run_key)``, the second half for the training runs."""
    import jax

    from rivervalley import bigram

    k_data, k_run = jax.random.split(key)
    data = bigram.make_data(vocab_size=config.vocab_size, det_fraction=config.det_fraction,
                            logit_scale=config.logit_scale, key=k_data)
    return bigram.TableModel(data, batch_size=config.batch_size), k_run
