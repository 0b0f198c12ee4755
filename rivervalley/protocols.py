"""The types every module shares: shape-annotated array aliases and the protocols of the package.

One module, so a signature reads the same everywhere. The aliases are plain ``typing.Annotated``
types (no runtime cost, no extra dependency); the string says the shape, with the letters of
THEORY.md: ``d`` the number of coordinates (1 river + d-1 hill directions), ``T`` the number of
steps.

The protocols say what the engine and the theory need from the objects they are given, so a
user's own object works when it has these methods, whatever its class:

- :class:`Schedule`: ``step -> learning rate`` (exactly an ``optax.Schedule``).
- :class:`Problem`: what the engine optimizes (``loss``, ``sample_loss``, ``decompose``; the
  contract in full is in :mod:`rivervalley.problems`, which checks it).
- :class:`RiverFrame`: a problem that knows its valley (local coordinates z = (u, v), river
  profile, course, hill sharpness); hill-only noise and the theory of THEORY.md §4 need it.
- :class:`NoiseModel`: a gradient-noise model: a draw per step, and the variances the theory
  reads (``scales_with_loss`` says whether the variance is per unit of loss).

>>> import rivervalley as rv
>>> isinstance(rv.landscapes.standard_toy(), RiverFrame), isinstance(rv.noise.hill_only(), NoiseModel)
(True, True)
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol, runtime_checkable

import jax

__all__ = ["Array", "PyTree", "Scalar", "Vector", "Matrix", "LearningRates", "Key", "Params",
           "Schedule", "Problem", "RiverFrame", "NoiseModel"]

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


@runtime_checkable
class Schedule(Protocol):
    """``schedule(step) -> learning rate``: an integer step (or an int32 array of them) to the LR
    of that update. Every :mod:`rivervalley.schedules` object, any ``optax.Schedule``."""

    def __call__(self, step: Array) -> Array: ...


@runtime_checkable
class Problem(Protocol):
    """What the engine optimizes (:mod:`rivervalley.problems` states the full contract and
    :func:`rivervalley.problems.check_problem` checks it).

    ``params`` is any pytree of floating-point arrays; every returned value is a scalar array.
    """

    def loss(self, params: Params) -> Scalar:
        """The deterministic loss (population, full-data or evaluation loss), shape ()."""
        ...

    def sample_loss(self, params: Params, key: Key) -> Scalar:
        """The minibatch loss of one step, drawn with ``key``, shape ()."""
        ...

    def decompose(self, params: Params) -> dict[str, Scalar]:
        """``loss``, ``river_loss``, ``hill_loss`` (NaN when unknown) and extras, all shape ()."""
        ...


@runtime_checkable
class RiverFrame(Protocol):
    """A problem that knows its valley: local coordinates z = (u, v), u along the river and v in
    R^(d-1) across it, world coordinates x = Q z, the river profile f(u), the course c(u) and the
    hill sharpness a(u) (:class:`rivervalley.landscapes.RiverValley` is one)."""

    #: lambda_i, shape (d-1,): the hill curvatures across the river.
    sharpness: Array

    def to_world(self, z: Vector) -> Vector:
        """x = Q z."""
        ...

    def to_local(self, x: Vector) -> Vector:
        """z = Q^T x."""
        ...

    def river_profile(self, u: Scalar) -> Scalar:
        """f(u), the loss along the river."""
        ...

    def course_at(self, u: Scalar) -> Array:
        """c(u), shape (d-1,): where the river runs across the hill directions."""
        ...

    def hill_sharpness(self, u: Scalar) -> Array:
        """a(u), shape (d-1,): the hill curvatures at river coordinate u."""
        ...


@runtime_checkable
class NoiseModel(Protocol):
    """Gradient noise xi_t of SGD, g_t = grad L(x_t) + xi_t (:mod:`rivervalley.noise`)."""

    #: True when the variance is per unit of loss (xi ~ sigma^2 L(x)), so the theory multiplies
    #: the variances by the expected loss.
    scales_with_loss: bool

    def sample(self, key: Key, step: Array, problem: Problem, params: Params) -> Params:
        """xi_t at step ``step`` for parameters ``params`` (same pytree structure)."""
        ...

    def hill_variance(self, problem: RiverFrame) -> Array:
        """sigma_i^2 per hill direction, shape (d-1,)."""
        ...

    def river_variance(self, problem: RiverFrame) -> Array:
        """sigma_u^2 along the river, shape ()."""
        ...
