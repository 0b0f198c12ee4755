"""The types every module shares: shape-annotated array aliases and the protocols of the package.

One module, so a signature reads the same everywhere. The aliases are plain ``typing.Annotated``
types (no runtime cost, no extra dependency); the string says the shape, with the letters of
THEORY.md: ``d`` the number of coordinates (1 river + d-1 hill directions), ``T`` the number of
steps, ``R`` the number of runs of a sweep, ``N`` the number of records.
"""

from __future__ import annotations

from typing import Annotated, Any

import jax

__all__ = ["Array", "PyTree", "Scalar", "Vector", "Matrix", "LearningRates", "Key", "Params"]

#: Any JAX or NumPy array (or a number) where no shape is implied.
Array = Annotated[Any, "array"]
#: A pytree: nested tuples / lists / dicts / dataclasses whose leaves are arrays.
PyTree = Annotated[Any, "pytree of arrays"]
#: A scalar, shape ().
Scalar = Annotated[jax.Array, "shape ()"]
#: A point of a landscape, shape (d,).
Vector = Annotated[jax.Array, "shape (d,)"]
#: A (d, d) matrix (a rotation, a Hessian).
Matrix = Annotated[jax.Array, "shape (d, d)"]
#: The learning rates of T consecutive updates, shape (T,).
LearningRates = Annotated[jax.Array, "shape (T,)"]
#: A JAX PRNG key (``jax.random.key(seed)``), shape ().
Key = Annotated[jax.Array, "PRNG key, shape ()"]
#: The parameters of a problem: a vector for a landscape, a dict of arrays for a model.
Params = PyTree
