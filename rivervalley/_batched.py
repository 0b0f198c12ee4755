"""R runs as one compiled program: ``jit(vmap(run_one))``, sharded over every device JAX sees.

The problem, schedule and noise model enter the program split into array leaves and static leaves
(:mod:`rivervalley._partition`); those named in ``batched`` carry a leading batch axis and run r
reads entry ``batch_index[r]`` of them. The program is compiled once per shape and static part
(:data:`TRACE_COUNT` counts its traces: a test asserts a sweep compiles once).

The runs are laid out on the ``runs`` mesh axis over ``jax.devices()``, padded to a multiple of the
device count (the padding repeats run 0 and is dropped from the result). The divergence check's
collective reduces over the vmapped axis named :data:`RUNS`, across the devices' shards, so a
sharded sweep gives the single-device numbers bit for bit.

With a progress bar the steps run as host-side chunks of one compiled program
(:func:`run_chunks`, chunk lengths from :mod:`rivervalley._progress`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley import _progress
from rivervalley._partition import combine, partition
from rivervalley._scan import init_state, run_one
from rivervalley.protocols import Array, PyTree
from rivervalley.results import SimState

__all__ = ["RUNS", "TRACE_COUNT", "execute", "run_chunks"]

#: Name of the vmapped axis of runs (the divergence check's collective reduces over it).
RUNS = "runs"
#: Counts compilations of the batched program (a test asserts a sweep compiles once).
TRACE_COUNT = {"batched": 0}
#: The arguments that may carry a batch axis and enter the program split (``x0`` enters as the
#: runs' starting points).
_PARTS = ("problem", "schedule", "noise")


def _select(dyn: list, batched_mask: tuple, b: Array) -> list:
    """Run b's leaves: entry b of the batched parts, the others as they are."""
    return [jax.tree.map(lambda l: l[b], d) if m else d for d, m in zip(dyn, batched_mask)]


@functools.partial(jax.jit, static_argnames=("static", "batched_mask", "num_steps",
                                             "record_every", "record_params", "optimizer",
                                             "threshold", "from_x0"))
def program(dyn, start, keys, batch_index, stop=None, *, static, batched_mask, num_steps,
            record_every, record_params, optimizer, threshold, from_x0):
    """The compiled program: every run's records and final state (leading axis: runs)."""
    TRACE_COUNT["batched"] += 1

    def single(start_r, key_r, b):
        problem, schedule, noise = (combine(d, s) for d, s in
                                    zip(_select(dyn, batched_mask, b), static))
        state = init_state(start_r, optimizer, schedule) if from_x0 else start_r
        return run_one(problem, schedule, noise, state, key_r, stop, num_steps=num_steps,
                       record_every=record_every, record_params=record_params,
                       optimizer=optimizer, threshold=threshold, axis_name=RUNS)

    return jax.vmap(single, axis_name=RUNS)(start, keys, batch_index)


@functools.partial(jax.jit, static_argnames=("static", "batched_mask", "optimizer"))
def _init_states(dyn, start, batch_index, *, static, batched_mask, optimizer):
    """The initial states of R runs from their parameters (what ``program(from_x0=True)``
    builds inside its program)."""
    def single(x, b):
        return init_state(x, optimizer, combine(_select(dyn, batched_mask, b)[1], static[1]))

    return jax.vmap(single)(start, batch_index)


def _shard(arrays: PyTree, n_runs: int) -> PyTree:
    """Shard the leading (runs) axis over all devices when it divides evenly."""
    devices = jax.devices()
    if len(devices) == 1 or n_runs % len(devices):
        return arrays
    mesh = jax.sharding.Mesh(np.array(devices), (RUNS,))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(RUNS))
    return jax.device_put(arrays, sharding)


def execute(problem: Any, schedule: Callable, noise: Any, start: PyTree, keys: Array,
            batch_index: Array, *, batched: tuple[str, ...] = (), num_steps: int,
            record_every: int, record_params: bool, optimizer: Callable | None, threshold: float,
            from_x0: bool, stop: int | None = None, bar: Any = None,
            first_step: int = 0) -> tuple[dict, SimState]:
    """Run R runs (leading axis of start/keys/batch_index) as one sharded program.

    ``start`` holds the runs' parameters (``from_x0``) or their states; steps at or past ``stop``
    leave a run unchanged. With a progress ``bar`` (a tqdm bar; None: one call) the steps run as
    host-side chunks (:func:`run_chunks`, lengths from
    :func:`rivervalley._progress.chunk_steps`); ``first_step`` is then the step every run starts
    from (0 from x0, the state's step when resuming)."""
    dyn, static = zip(*(partition(p) for p in (problem, schedule, noise)))
    mask = tuple(name in batched for name in _PARTS)
    n = int(np.shape(batch_index)[0])
    n_dev = len(jax.devices())
    pad = (-n) % n_dev if n >= n_dev else 0
    if pad:
        idx = np.concatenate([np.arange(n), np.zeros(pad, int)])
        start, keys, batch_index = jax.tree.map(lambda x: x[idx], (start, keys, batch_index))
    start, keys, batch_index = _shard((start, keys, batch_index), n + pad)
    kw = dict(static=tuple(static), batched_mask=mask, record_every=record_every,
              record_params=record_params, optimizer=optimizer, threshold=float(threshold))
    chunk, rec = (None, None) if bar is None else _progress.chunk_steps(num_steps, record_every)
    if chunk is None or chunk >= num_steps:
        stop = None if stop is None else jnp.asarray(stop, jnp.int32)
        recs, final = program(list(dyn), start, keys, batch_index, stop, num_steps=num_steps,
                              from_x0=from_x0, **kw)
        if bar is not None:
            jax.block_until_ready(final.step)
            bar.update(num_steps)
    else:
        recs, final = run_chunks(list(dyn), start, keys, batch_index, num_steps=num_steps,
                                 chunk=chunk, rec=rec, from_x0=from_x0, first_step=first_step,
                                 bar=bar, **kw)
    if pad:
        recs, final = jax.tree.map(lambda x: x[:n], (recs, final))
    return recs, final


def run_chunks(dyn, start, keys, batch_index, *, num_steps, chunk, rec, from_x0, first_step,
               bar, **kw) -> tuple[dict, SimState]:
    """``num_steps`` steps as calls of ONE compiled program of ``chunk`` steps recording every
    ``rec`` (see :func:`rivervalley._progress.chunk_steps`), each masked at its end step
    (``stop``), carrying the state on the host: the same steps in the same blocks as one call, so
    the result is bit for bit the unchunked run's (the resume guarantee), compiled once. Records
    at the requested steps (``first_step + j * record_every`` and the last step) are kept, each
    once. The bar advances when a chunk is done; the next chunk is dispatched before waiting for
    it (no idle device)."""
    record_every = kw.pop("record_every")
    state = (_init_states(dyn, start, batch_index, static=kw["static"],
                          batched_mask=kw["batched_mask"], optimizer=kw["optimizer"])
             if from_x0 else start)
    end_step = first_step + num_steps
    offsets = rec * np.arange(chunk // rec + 1)
    pieces, keep, pending, last = [], [], None, first_step - 1
    a = first_step
    while a < end_step:
        e = min(a + chunk, end_step)
        recs, state = program(dyn, state, keys, batch_index, jnp.asarray(e, jnp.int32),
                              num_steps=chunk, record_every=rec, from_x0=False, **kw)
        # the steps this chunk records are known here (a, a + rec, ..., clipped at e, where the
        # masked steps repeat the last record): keep the requested ones, each once (selected
        # after the loop: no eager work between two chunks)
        for j, st in enumerate(np.minimum(a + offsets, e)):
            if st > last and ((st - first_step) % record_every == 0 or st == end_step):
                keep.append(len(pieces) * offsets.size + j)
                last = st
        pieces.append(recs)
        if pending is not None:
            jax.block_until_ready(pending[0])
            bar.update(pending[1])
        pending = (state.step, e - a)
        a = e
    jax.block_until_ready(pending[0])
    bar.update(pending[1])
    idx = np.asarray(keep, int)
    return jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=1)[:, idx], *pieces), state
