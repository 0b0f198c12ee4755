"""The problem protocol every problem follows, its check, and ``from_loss`` for your own model.

The engine (:func:`rivervalley.simulate`, :func:`rivervalley.sweep`, :func:`rivervalley.run_plan`)
optimizes a *problem*: an object with three methods, all pure JAX functions of a parameter pytree
``params`` (any pytree of floating-point arrays: a vector for a landscape, a dict for a model).

``loss(params) -> scalar``
    The deterministic objective the curves show: the population loss, the full-data loss, or the
    loss on a held-out evaluation set. Its Hessian is what :mod:`rivervalley.hessian` and
    :mod:`rivervalley.diagnose` analyse.
``sample_loss(params, key) -> scalar``
    The loss the optimizer differentiates at one step: a minibatch drawn with ``key`` (the engine
    passes ``fold_in(run_key, step)``, so step t's batch is a pure function of the run key and t).
    A deterministic problem ignores the key and returns ``loss(params)``.
``decompose(params) -> dict[str, scalar]``
    What the engine records every ``record_every`` steps. It MUST hold the keys ``"loss"``,
    ``"river_loss"`` and ``"hill_loss"`` (:data:`REQUIRED_KEYS`), each a scalar (shape ``()``),
    with ``loss == river_loss + hill_loss`` to rounding when the split is known, and both parts
    ``NaN`` when it is not (a problem that does not know its valley; :mod:`rivervalley.diagnose`
    estimates them). Every other key is an *extra*: a scalar per record, collected in
    ``Trajectory.extras[key]`` (e.g. ``river_coordinate`` of a landscape, ``excess_loss`` of the
    bigram models, the per-character-class losses of :mod:`rivervalley.text`).

The engine passes the problem into ``jit``: array leaves of its pytree are traced inputs (so a
sweep can batch over them and new values do not recompile); everything else (sizes, names,
functions) is static and must be hashable. A frozen dataclass registered as a pytree, with static
fields for sizes and callables, is the idiom of every problem of the package (its
``rivervalley._pytree.pytree`` decorator; ``jax.tree_util.register_dataclass`` does the same for
your own). The protocol itself, as a ``typing.Protocol``, is
:class:`rivervalley.protocols.Problem`. :func:`check_problem` verifies the contract once, on the host, with
``jax.eval_shape`` (nothing is computed), and raises a ``TypeError`` naming the missing method or
key instead of an ``AttributeError`` / ``KeyError`` from deep inside tracing.

:func:`from_loss` turns any JAX model, given as ``loss_fn(params, batch) -> scalar`` and its data
(arrays indexed along their first axis), into such a problem.

Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> import rivervalley as rv
    >>> from rivervalley import problems
    >>> x = jax.random.normal(jax.random.key(0), (256, 3))
    >>> y = x @ jnp.array([1.0, -2.0, 0.5])
    >>> mse = lambda w, batch: jnp.mean((batch[0] @ w - batch[1]) ** 2)
    >>> prob = problems.from_loss(mse, jnp.zeros(3), (x, y), batch_size=32)
    >>> traj = rv.simulate(prob, jnp.zeros(3), rv.schedules.constant(0.1), num_steps=200,
    ...                    key=jax.random.key(1), record_every=100)
    >>> print(bool(traj.loss[-1] < 1e-3 * traj.loss[0]), bool(jnp.isnan(traj.hill_loss[-1])))
    True True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley._pytree import build, pytree
from rivervalley._validate import check_int, fmt
from rivervalley.protocols import Array, PyTree

__all__ = ["REQUIRED_METHODS", "REQUIRED_KEYS", "check_problem", "LossProblem", "from_loss"]

#: Methods every problem has.
REQUIRED_METHODS = ("loss", "sample_loss", "decompose")
#: Keys every ``decompose`` returns (the engine's ``Trajectory`` fields).
REQUIRED_KEYS = ("loss", "river_loss", "hill_loss")

_CONTRACT = ("the problem protocol (rivervalley.protocols.Problem): loss(params) -> scalar, "
             "sample_loss(params, key) -> scalar, decompose(params) -> dict with 'loss', "
             "'river_loss', 'hill_loss' (NaN when unknown) and scalar extras")


def _where(problem: Any) -> str:
    return f"problem of type {type(problem).__name__}"


def _scalar(what: str, out: Any, problem: Any) -> None:
    shape = getattr(out, "shape", None)
    dtype = getattr(out, "dtype", None)
    if shape != () or dtype is None or not jnp.issubdtype(dtype, jnp.inexact):
        desc = f"shape {shape}, dtype {dtype}" if shape is not None else type(out).__name__
        raise TypeError(f"{_where(problem)}: {what} must return a floating-point scalar (shape ()), "
                        f"got {desc}; {_CONTRACT}")


def check_problem(problem: Any, params: PyTree, *, key: Array | None = None) -> None:
    """Check that ``problem`` follows the protocol at ``params``; raise ``TypeError`` otherwise.

    Runs once on the host, before anything is traced by the engine: the methods are looked up
    by name and their outputs inspected with ``jax.eval_shape`` (shapes only, no computation).
    The message names the missing method, the missing ``decompose`` key, or the method whose
    output is not a scalar.

    Args:
        problem: the object to check.
        params: one parameter pytree (unbatched) the problem accepts.
        key: the key passed to ``sample_loss`` (default ``jax.random.key(0)``; only its shape is
            used).

    Example:
        >>> class NoSplit:
        ...     def loss(self, x): return jnp.sum(x ** 2)
        ...     def sample_loss(self, x, key): return self.loss(x)
        ...     def decompose(self, x): return {"loss": self.loss(x)}
        >>> check_problem(NoSplit(), jnp.zeros(2))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        TypeError: problem of type NoSplit: decompose(params) returned no 'river_loss', 'hill_loss' ...
    """
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(problem, m, None))]
    if missing:
        raise TypeError(f"{_where(problem)} has no method {', '.join(repr(m) for m in missing)}; "
                        f"{_CONTRACT}")
    key = jax.random.key(0) if key is None else key
    _scalar("loss(params)", jax.eval_shape(problem.loss, params), problem)
    _scalar("sample_loss(params, key)", jax.eval_shape(problem.sample_loss, params, key), problem)
    out = jax.eval_shape(problem.decompose, params)
    if not isinstance(out, Mapping):
        raise TypeError(f"{_where(problem)}: decompose(params) must return a dict, got "
                        f"{type(out).__name__}; {_CONTRACT}")
    absent = [k for k in REQUIRED_KEYS if k not in out]
    if absent:
        raise TypeError(f"{_where(problem)}: decompose(params) returned no "
                        f"{', '.join(repr(k) for k in absent)} (keys: {sorted(map(str, out))}); "
                        "every problem's decompose returns 'loss', 'river_loss', 'hill_loss' "
                        "(NaN when the split is unknown)")
    for k, v in out.items():
        _scalar(f"decompose(params)[{k!r}]", v, problem)


# -- from_loss ---------------------------------------------------------------------------------
def _nan_like(x: Array) -> Array:
    return jnp.full((), jnp.nan, jnp.result_type(x))


@pytree(static=("loss_fn", "batch_size", "num_examples", "metrics_fn", "eval_batch_size"),
        factory="rivervalley.problems.from_loss")
@dataclass(frozen=True)
class LossProblem:
    """A problem made from ``loss_fn(params, batch)`` and data. Built by :func:`from_loss`.

    Attributes:
        data: training data, a pytree of arrays sharing the leading axis (``num_examples``).
        eval_data: the data ``loss`` and ``decompose`` average over (None: the training data).
        loss_fn: ``(params, batch) -> scalar``, the mean loss over a batch (static).
        batch_size: examples per step (static).
        num_examples: the leading size of ``data`` (static).
        metrics_fn: optional ``(params, batch) -> dict of scalars``, extras for ``decompose``
            (static).
        eval_batch_size: evaluate ``loss`` over ``eval_data`` in chunks of this many examples
            (None: all at once; static).
    """

    data: PyTree
    eval_data: PyTree | None
    loss_fn: Callable
    batch_size: int
    num_examples: int
    metrics_fn: Callable | None
    eval_batch_size: int | None

    def batch_indices(self, *, key: Array) -> Array:
        """The ``batch_size`` example indices drawn with ``key``: uniform with replacement,
        ``jax.random.randint(key, (batch_size,), 0, num_examples)``."""
        return jax.random.randint(key, (self.batch_size,), 0, self.num_examples)

    def batch(self, *, key: Array) -> PyTree:
        """The minibatch of ``key``: every data array indexed by :meth:`batch_indices`."""
        idx = self.batch_indices(key=key)
        return jax.tree.map(lambda a: a[idx], self.data)

    def sample_loss(self, params: PyTree, key: Array) -> Array:
        """``loss_fn(params, batch(key=key))``."""
        return self.loss_fn(params, self.batch(key=key))

    def _eval(self, fn: Callable, params: PyTree) -> Any:
        data = self.data if self.eval_data is None else self.eval_data
        if self.eval_batch_size is None:
            return fn(params, data)
        n = int(jax.tree.leaves(data)[0].shape[0])
        c = self.eval_batch_size
        chunks = jax.tree.map(lambda a: a.reshape((n // c, c) + a.shape[1:]), data)
        # chunks are equal, so the mean of chunk means is the mean over all examples
        return jax.tree.map(lambda v: jnp.mean(v, axis=0),
                            jax.lax.map(lambda b: fn(params, b), chunks))

    def loss(self, params: PyTree) -> Array:
        """The mean of ``loss_fn`` over the evaluation data (the training data by default)."""
        return self._eval(self.loss_fn, params)

    def decompose(self, params: PyTree) -> dict[str, Array]:
        """``loss``; ``river_loss`` and ``hill_loss`` NaN (unknown: :mod:`rivervalley.diagnose`
        estimates them); plus the extras of ``metrics_fn`` on the evaluation data."""
        loss = self.loss(params)
        out = {"loss": loss, "river_loss": _nan_like(loss), "hill_loss": _nan_like(loss)}
        if self.metrics_fn is not None:
            extras = self._eval(self.metrics_fn, params)
            clash = set(extras) & set(out)
            if clash:
                raise TypeError(f"metrics_fn returned reserved keys {sorted(clash)}; extras "
                                "need other names")
            out.update(extras)
        return out


def _leading(data: PyTree, name: str) -> int:
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError(f"{name} holds no arrays; pass arrays indexed along their first axis")
    sizes = set()
    for leaf in leaves:
        if np.ndim(leaf) == 0:
            raise ValueError(f"{name} holds a scalar ({fmt(leaf)}); every array is indexed along "
                             "its first axis (one entry per example)")
        sizes.add(int(np.shape(leaf)[0]))
    if len(sizes) != 1:
        raise ValueError(f"{name}'s arrays disagree on the number of examples (first axes "
                         f"{sorted(sizes)}); every array holds one entry per example")
    return sizes.pop()


def from_loss(loss_fn: Callable, params: PyTree, data: PyTree, *, batch_size: int,
              eval_data: PyTree | None = None, metrics_fn: Callable | None = None,
              eval_batch_size: int | None = None) -> LossProblem:
    """Turn ``loss_fn(params, batch) -> scalar`` and its data into a problem the engine runs.

    - ``sample_loss(params, key) = loss_fn(params, data[idx])`` with ``idx`` =
      ``jax.random.randint(key, (batch_size,), 0, N)`` (uniform with replacement; the engine's key
      of step t is ``fold_in(run_key, t)``);
    - ``loss(params)`` = ``loss_fn`` on all of ``eval_data`` (default: all of ``data``), in chunks
      of ``eval_batch_size`` if given (then ``loss_fn`` must be a mean over examples);
    - ``decompose(params)``: ``loss``, ``river_loss = hill_loss = NaN`` (estimate them with
      :func:`rivervalley.diagnose.diagnose`), and the extras ``metrics_fn(params, eval_data)``.

    ``loss_fn`` and ``metrics_fn`` are static (hashed by identity): pass the same function objects
    to reuse compiled sweeps; data arrays are traced inputs, never baked into the program.

    Args:
        loss_fn: the model's mean loss on a batch (a pytree like ``data`` with ``batch_size``
            examples).
        params: example parameters (checked against ``loss_fn`` with ``jax.eval_shape``).
        data: a pytree of arrays sharing their first axis (examples).
        batch_size: examples per step, in [1, N].
        eval_data: held-out data for ``loss`` / ``decompose`` (same structure as ``data``).
        metrics_fn: ``(params, batch) -> dict of scalars`` recorded as extras.
        eval_batch_size: chunk size of the evaluation; must divide the number of eval examples.

    Returns:
        A :class:`LossProblem`.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn={fmt(loss_fn)} must be a callable (params, batch) -> scalar")
    if metrics_fn is not None and not callable(metrics_fn):
        raise TypeError(f"metrics_fn={fmt(metrics_fn)} must be None or a callable "
                        "(params, batch) -> dict of scalars")
    data = jax.tree.map(jnp.asarray, data)
    n = _leading(data, "data")
    batch_size = check_int("batch_size", batch_size, lo=1, hi=n)
    if eval_data is not None:
        eval_data = jax.tree.map(jnp.asarray, eval_data)
        if jax.tree.structure(eval_data) != jax.tree.structure(data):
            raise ValueError("eval_data must have the structure of data "
                             f"({jax.tree.structure(data)}), got {jax.tree.structure(eval_data)}")
    n_eval = _leading(data if eval_data is None else eval_data,
                      "data" if eval_data is None else "eval_data")
    if eval_batch_size is not None:
        eval_batch_size = check_int("eval_batch_size", eval_batch_size, lo=1, hi=n_eval)
        if n_eval % eval_batch_size:
            raise ValueError(f"eval_batch_size={eval_batch_size} must divide the {n_eval} "
                             "evaluation examples (equal chunks keep the mean exact)")
    problem = build(LossProblem, data=data, eval_data=eval_data, loss_fn=loss_fn,
                    batch_size=batch_size, num_examples=n, metrics_fn=metrics_fn,
                    eval_batch_size=eval_batch_size)
    check_problem(problem, params)
    return problem
