"""Split a pytree into its array leaves and its static leaves, and join them back.

A problem, schedule or noise model enters the engine's compiled program as two parts: its numeric
leaves (arrays and numbers), which are traced and may carry a batch axis, and everything else
(strings, callables, ``None``...) with the tree structure, which is static: hashable, part of the
program's identity. Booleans are static (a flag, not a number to trace).

>>> import jax.numpy as jnp
>>> dyn, static = partition({"lr": 0.1, "name": "wsd", "steps": jnp.arange(3)})
>>> print([None if d is None else d.shape for d in dyn])
[(), None, (3,)]
>>> print(combine(dyn, static)["name"])
wsd
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley.protocols import PyTree

__all__ = ["is_numeric", "partition", "combine", "abstract_partition"]


def is_numeric(leaf: Any) -> bool:
    """Whether a leaf is traced by the engine: an array or a number, not a bool."""
    return isinstance(leaf, (jax.Array, np.ndarray, np.generic, numbers.Number)) and not isinstance(
        leaf, bool)


def partition(tree: PyTree) -> tuple[list, tuple]:
    """``(dyn, static)``: the numeric leaves as arrays (None elsewhere) and the static part (the
    tree structure and the other leaves, hashable)."""
    leaves, treedef = jax.tree.flatten(tree)
    dyn = [jnp.asarray(l) if is_numeric(l) else None for l in leaves]
    return dyn, (treedef, _static_leaves(leaves))


def abstract_partition(tree: PyTree, batched: bool) -> tuple[list, tuple]:
    """Like :func:`partition`, with the numeric leaves as abstract values of ONE run (the leading
    batch axis dropped when ``batched``), for :func:`jax.eval_shape`."""
    leaves, treedef = jax.tree.flatten(tree)
    dyn = []
    for leaf in leaves:
        if is_numeric(leaf):
            shape, dtype = np.shape(leaf), jax.dtypes.canonicalize_dtype(jnp.result_type(leaf))
            dyn.append(jax.ShapeDtypeStruct(shape[1:] if batched else shape, dtype))
        else:
            dyn.append(None)
    return dyn, (treedef, _static_leaves(leaves))


def combine(dyn: list, static: tuple) -> PyTree:
    """The tree :func:`partition` split (with ``dyn`` possibly traced or sliced)."""
    treedef, stat = static
    return jax.tree.unflatten(treedef, [d if s is None else s for d, s in zip(dyn, stat)])


def _static_leaves(leaves: list) -> tuple:
    return tuple(None if is_numeric(l) else l for l in leaves)
