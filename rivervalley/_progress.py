"""The progress bar of a long run, and the chunks a run behind one is cut into.

A compiled scan reports nothing until it ends, so a run with a bar runs as host-side calls of ONE
compiled program of ``chunk`` steps (at most :data:`PROGRESS_CHUNKS` of them), the state carried
between calls and each call masked at its end step: the same steps in the same divergence-check
blocks as one call, so the numbers are the unchunked run's bit for bit
(:func:`rivervalley._batched.run_chunks` runs them). This module decides whether there is a bar
(:func:`progress_bar`) and how long a chunk is (:func:`chunk_steps`, :func:`interval_chunk`).

``progress=None`` (automatic) shows a bar only when stderr is a terminal, and only once the run has
taken :data:`PROGRESS_DELAY` seconds: short runs, tests and CI logs stay clean.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from rivervalley import _validate as V
from rivervalley._scan import block_size

__all__ = ["PROGRESS_CHUNKS", "PROGRESS_DELAY", "check_progress", "progress_bar",
           "interval_chunk", "chunk_steps"]

#: At most this many chunks (calls of the compiled program) make a run with a progress bar.
PROGRESS_CHUNKS = 25
#: Seconds a run must have taken before the automatic bar (``progress=None``) shows.
PROGRESS_DELAY = 2.0


def check_progress(progress: Any) -> None:
    """``progress`` is True, False or None."""
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise ValueError(f"progress={V.fmt(progress)} must be True, False or None (automatic: a "
                         "bar when stderr is a terminal and the run takes more than "
                         f"{PROGRESS_DELAY:g} s)")


def stderr_is_tty() -> bool:
    """Whether stderr is a terminal (False for a replaced or closed stream)."""
    try:
        return bool(sys.stderr is not None and sys.stderr.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def progress_bar(progress: bool | None, total: int, desc: str):
    """A tqdm bar over ``total`` steps, or None: ``progress=False`` never, ``True`` always, None
    when stderr is a terminal (shown once the run has taken :data:`PROGRESS_DELAY` seconds)."""
    if progress is None:
        if not stderr_is_tty():
            return None
        delay = PROGRESS_DELAY
    elif not progress:
        return None
    else:
        delay = 0.0
    from tqdm import tqdm

    return tqdm(total=int(total), desc=desc, unit="step", delay=delay, dynamic_ncols=True)


def interval_chunk(num_steps: int, record_every: int) -> int:
    """Whole record intervals per chunk: at most :data:`PROGRESS_CHUNKS` chunks (or one interval
    each when there are fewer intervals; ``run_plan`` chunks its segments so).

    >>> [interval_chunk(n, k) for n, k in ((10_000, 1), (10_000, 100), (100, 10))]
    [400, 400, 10]
    """
    intervals = -(-num_steps // record_every)
    return record_every * max(1, -(-intervals // PROGRESS_CHUNKS))


def chunk_steps(num_steps: int, record_every: int) -> tuple[int, int]:
    """``(chunk, rec)``: the chunk length of a run with a progress bar (at most
    :data:`PROGRESS_CHUNKS` chunks) and the record interval of its compiled program.

    Chunks are whole record intervals (``rec = record_every``) when there are enough of them; a
    run with fewer intervals (e.g. ``record_every=num_steps``) is cut inside them, into pieces of
    ``rec`` steps that divide the interval and are whole divergence-check blocks of it
    (:func:`rivervalley._scan.block_size`), whose extra records are dropped. Either way the steps
    run in the blocks of the unchunked run.

    >>> [chunk_steps(n, k) for n, k in ((10_000, 1), (10_000, 100), (1000, 7), (100, 100))]
    [(400, 1), (400, 100), (42, 7), (50, 50)]
    >>> [chunk_steps(n, k) for n, k in ((10_000, 10_000), (10_000, 5000), (10_007, 10_007))]
    [(400, 400), (500, 500), (10007, 10007)]
    """
    if -(-num_steps // record_every) >= PROGRESS_CHUNKS:
        return interval_chunk(num_steps, record_every), record_every
    base = min(record_every, num_steps)  # the first interval (the only one when k >= n)
    block = block_size(base)
    want = -(-num_steps // PROGRESS_CHUNKS)
    if base % block:
        return base, base  # blocks of CHECK_EVERY and a shorter one: whole intervals only
    rec = min(r for r in range(block, base + 1, block) if base % r == 0 and r >= min(want, base))
    return rec, rec
