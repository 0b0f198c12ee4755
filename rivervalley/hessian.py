"""Hessian tools: Hessian-vector products, Lanczos top-k eigenpairs, sharpness, river/mountain split.

Everything works on any problem's parameter pytree (a vector for landscapes, a dict for the
bigram models) through ``jax.flatten_util.ravel_pytree``; no Hessian is ever formed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from rivervalley._validate import check_int, check_key, fmt
from rivervalley.protocols import RiverFrame

__all__ = [
    "hvp",
    "lanczos_top_k",
    "top_eigenpairs",
    "sharpness_along",
    "split_displacement",
]


def hvp(fn: Callable[[Any], jax.Array], params: Any, v: Any) -> Any:
    """Hessian-vector product ``H(params) v`` of a scalar ``fn``, by forward-over-reverse.

    ``H v = d/de grad fn(params + e v) |_{e=0}`` (``jax.jvp`` of ``jax.grad``); ``v`` has the
    structure of ``params`` and so does the result.

    Example:
        >>> import jax.numpy as jnp
        >>> f = lambda x: 0.5 * (3.0 * x[0] ** 2 + x[1] ** 2)
        >>> print(hvp(f, jnp.zeros(2), jnp.ones(2)).tolist())
        [3.0, 1.0]
    """
    return jax.jvp(jax.grad(fn), (params,), (v,))[1]


def lanczos_top_k(
    matvec: Callable[[Any], Any],
    dim_or_params: int | Any,
    k: int = 1,
    *,
    num_iters: int | None = None,
    key: jax.Array,
) -> tuple[jax.Array, Any]:
    """Top-``k`` eigenpairs of a symmetric operator by Lanczos with full reorthogonalization.

    Builds an orthonormal Krylov basis ``Q`` (``m = num_iters`` vectors) with the three-term
    recurrence ``beta_{j+1} q_{j+1} = A q_j - alpha_j q_j - beta_j q_{j-1}``, reorthogonalized twice
    against all previous vectors (exact enough for the small dimensions of this toolkit); on
    breakdown (an invariant subspace, ``beta ~ 0``) it restarts from a fresh random vector
    orthogonal to ``Q``, so with ``m = dim`` the full spectrum, multiplicities included, is found.
    The Ritz pairs of the tridiagonal ``T = Q^T A Q`` approximate the extreme eigenpairs.

    Args:
        matvec: ``v -> A v``; on flat vectors if ``dim_or_params`` is an int, else on pytrees
            shaped like ``dim_or_params``.
        dim_or_params: the dimension, or a params pytree giving the structure.
        k: number of eigenpairs (largest algebraic eigenvalues), ``1 <= k <= num_iters``.
        num_iters: Krylov dimension ``m`` (default ``min(dim, max(2k + 20, 40))``), ``<= dim``.
        key: PRNG key for the start (and restart) vectors.

    Returns:
        ``(eigenvalues, eigenvectors)``: eigenvalues ``(k,)`` in descending order; eigenvectors
        ``(k, dim)`` (flat case) or a pytree whose leaves have a leading axis ``k``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> a = jnp.diag(jnp.arange(1.0, 11.0))
        >>> w, v = lanczos_top_k(lambda x: a @ x, 10, 2, key=jax.random.key(0))
        >>> print([round(float(x), 4) for x in w])
        [10.0, 9.0]
    """
    check_key("key", key)
    check_int("k", k, lo=1)
    if num_iters is not None:
        check_int("num_iters", num_iters, lo=1)
    if isinstance(dim_or_params, (int, np.integer)) and not isinstance(dim_or_params, bool):
        dim = int(dim_or_params)
        unravel = None
        flat_mv = matvec
        dtype = jnp.result_type(float)
    else:
        flat0, unravel = ravel_pytree(dim_or_params)
        dim = flat0.shape[0]
        dtype = flat0.dtype

        def flat_mv(x):
            return ravel_pytree(matvec(unravel(x)))[0]

    if dim < 1:
        raise ValueError(f"dim={dim} must be >= 1")
    if num_iters is None:
        num_iters = min(dim, max(2 * k + 20, 40))
    if not 1 <= num_iters <= dim:
        raise ValueError(f"num_iters={num_iters} is outside [1, dim={dim}]")
    if not 1 <= k <= num_iters:
        raise ValueError(f"k={k} is outside [1, num_iters={num_iters}]")
    m = num_iters
    tiny = jnp.finfo(dtype).eps ** 0.75

    def orth(w, q):
        for _ in range(2):
            w = w - q.T @ (q @ w)
        return w

    def fresh(j, q):
        r = jax.random.normal(jax.random.fold_in(key, j), (dim,), dtype)
        r = orth(r, q)
        return r / jnp.maximum(jnp.linalg.norm(r), tiny)

    q0 = fresh(0, jnp.zeros((m, dim), dtype))
    qs = jnp.zeros((m, dim), dtype).at[0].set(q0)

    def body(j, carry):
        qs, alphas, betas, scale = carry
        qj = qs[j]
        w = flat_mv(qj).astype(dtype)
        alpha = jnp.dot(qj, w)
        w = orth(w, qs)  # full reorthogonalization removes alpha q_j and beta q_{j-1} too
        beta = jnp.linalg.norm(w)
        scale = jnp.maximum(scale, jnp.abs(alpha) + beta)
        broke = beta <= tiny * jnp.maximum(scale, tiny)
        nxt = jnp.where(broke, fresh(j + 1, qs), w / jnp.where(broke, 1.0, beta))
        beta = jnp.where(broke, 0.0, beta)
        qs = jnp.where(j + 1 < m, qs.at[jnp.minimum(j + 1, m - 1)].set(nxt), qs)
        return qs, alphas.at[j].set(alpha), betas.at[j].set(beta), scale

    init = (qs, jnp.zeros((m,), dtype), jnp.zeros((m,), dtype), jnp.zeros((), dtype))
    qs, alphas, betas, _ = jax.lax.fori_loop(0, m, body, init)
    t = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
    evals, evecs = jnp.linalg.eigh(t)
    evals = evals[::-1][:k]
    vecs = (evecs[:, ::-1][:, :k]).T @ qs  # (k, dim)
    if unravel is None:
        return evals, vecs
    return evals, jax.vmap(unravel)(vecs)


def top_eigenpairs(
    problem: Any,
    params: Any,
    k: int = 1,
    *,
    num_iters: int | None = None,
    key: jax.Array | None = None,
) -> tuple[jax.Array, Any]:
    """Top-``k`` eigenpairs of the Hessian of ``problem.loss`` at ``params`` (Lanczos on HVPs).

    Returns ``(eigenvalues (k,), eigenvectors)`` with eigenvectors a pytree like ``params`` with a
    leading axis ``k``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> class Quad:
        ...     def loss(self, x): return 0.5 * jnp.sum(jnp.array([5.0, 2.0, 1.0]) * x ** 2)
        >>> w, _ = top_eigenpairs(Quad(), jnp.zeros(3), 2)
        >>> print([round(float(x), 4) for x in w])
        [5.0, 2.0]
    """
    key = jax.random.key(0) if key is None else key
    _check_problem(problem)
    return lanczos_top_k(
        lambda v: hvp(problem.loss, params, v), params, k, num_iters=num_iters, key=key
    )


def _check_problem(problem: Any) -> None:
    if not callable(getattr(problem, "loss", None)):
        raise TypeError(f"problem={fmt(problem)} must have a loss(params) method, not "
                        f"{type(problem).__name__}")


def _shape_leaves(shapes: Any) -> list[tuple[int, ...]]:
    """The leaves of a pytree of shape tuples (a bare tuple is one shape)."""
    return jax.tree.leaves(shapes, is_leaf=lambda x: isinstance(x, tuple)
                           and all(isinstance(n, (int, np.integer)) for n in x))


def _is_stacked(problem: Any, params: Any) -> bool:
    """Whether ``params`` is a stack of records (a leading axis on every leaf) or one point,
    decided from the problem's declared ``param_shape`` (one point's shape: a tuple, or a pytree
    of tuples like the params)."""
    declared = getattr(problem, "param_shape", None)
    if declared is None and isinstance(problem, RiverFrame):
        declared = (int(np.shape(problem.sharpness)[-1]) + 1,)  # a river valley: x in R^d
    if declared is None:
        raise ValueError(
            f"sharpness_along cannot tell whether params (leaf shapes "
            f"{[np.shape(a) for a in jax.tree.leaves(params)]}) is one point or a stack of "
            f"records: {type(problem).__name__} states no param_shape. Pass a Trajectory, or "
            "stacked=True (a leading records axis) / stacked=False (one point)")
    want = _shape_leaves(declared)
    got = [tuple(np.shape(a)) for a in jax.tree.leaves(params)]
    if len(want) != len(got):
        raise ValueError(f"params has {len(got)} leaves; {type(problem).__name__} takes "
                         f"{len(want)} (param_shape={declared})")
    if all(g == tuple(w) for g, w in zip(got, want)):
        return False
    if all(len(g) == len(w) + 1 and g[1:] == tuple(w) for g, w in zip(got, want)):
        return True
    raise ValueError(f"params has leaf shapes {got}: neither one point (param_shape={declared}) "
                     "nor a stack of them with a leading records axis")


def sharpness_along(
    problem: Any,
    trajectory: Any,
    k: int = 1,
    *,
    num_iters: int | None = None,
    key: jax.Array | None = None,
    stacked: bool | None = None,
) -> jax.Array:
    """Top-``k`` Hessian eigenvalues at every recorded step of a trajectory (or at one point).

    Compare the first column with the stability threshold ``2 / eta_t`` of GD at that step.

    Args:
        problem: has ``loss(params)``.
        trajectory: a ``Trajectory`` (its ``params``, stacked along the records), or a params
            pytree: a stack of records (a leading axis on every leaf) or one point.
        k: eigenvalues per record.
        stacked: whether a params pytree has a leading records axis. ``None``: a ``Trajectory``
            is stacked, and for a pytree the problem's ``param_shape`` (the shape of one point,
            stated by landscapes and the bigram / transformer models) decides; a problem that
            states none needs ``stacked=True`` or ``False``. One point is never mistaken for a
            stack of scalar records (that took the Hessian of ``loss`` at a scalar and summed
            the eigenvalues).

    Returns:
        ``(num_records, k)`` array, descending along the last axis; ``(k,)`` for one point.

    Example:
        >>> import jax.numpy as jnp
        >>> class Quad:
        ...     def loss(self, x): return 0.25 * jnp.sum(x ** 4) + 0.5 * jnp.sum(x ** 2)
        >>> s = sharpness_along(Quad(), jnp.array([[0.0, 0.0], [1.0, 0.0]]), stacked=True)
        >>> print([round(float(x), 4) for x in s[:, 0]])  # 1 + 3 x^2
        [1.0, 4.0]
    """
    _check_problem(problem)
    if stacked is not None and not isinstance(stacked, (bool, np.bool_)):
        raise ValueError(f"stacked={stacked!r} must be None, True or False")
    is_traj = hasattr(trajectory, "params") and hasattr(trajectory, "steps")
    params = jax.tree_util.tree_map(jnp.asarray, getattr(trajectory, "params", trajectory))
    if is_traj:
        if stacked is False:
            raise ValueError("stacked=False contradicts a Trajectory (its params are stacked "
                             "along the records)")
        stacked = True
    elif stacked is None:
        stacked = _is_stacked(problem, params)
    key = jax.random.key(0) if key is None else key
    check_key("key", key)
    check_int("k", k, lo=1)
    if not stacked:
        return top_eigenpairs(problem, params, k, num_iters=num_iters, key=key)[0]
    leaves = jax.tree.leaves(params)
    lengths = {np.shape(a)[0] if np.ndim(a) else None for a in leaves}
    if not leaves or None in lengths or len(lengths) != 1:
        raise ValueError(f"a stack of records has one leading axis of the same length on every "
                         f"leaf; got leaf shapes {[np.shape(a) for a in leaves]}")
    first = jax.tree_util.tree_map(lambda a: a[0], params)

    def one(p):
        return lanczos_top_k(
            lambda v: hvp(problem.loss, p, v), first, k, num_iters=num_iters, key=key
        )[0]

    return jax.lax.map(jax.jit(one), params)


def split_displacement(
    problem: Any,
    params_a: Any,
    params_b: Any,
    k: int = 1,
    *,
    num_iters: int | None = None,
    key: jax.Array | None = None,
) -> tuple[Any, Any]:
    """Split ``params_b - params_a`` into a mountain part and a river part.

    With ``V_k`` the top-``k`` Hessian eigenvectors at ``params_a`` (orthonormal rows), the mountain
    part is ``V_k^T V_k d`` (across the valley, the sharp directions) and the river part is
    ``d - V_k^T V_k d`` (everything else). Both are pytrees like ``params_a``; they sum to ``d``.

    Example:
        >>> import jax.numpy as jnp
        >>> class Quad:
        ...     def loss(self, x): return 0.5 * (100.0 * x[0] ** 2 + x[1] ** 2)
        >>> mtn, riv = split_displacement(Quad(), jnp.zeros(2), jnp.array([0.3, 2.0]), 1)
        >>> print([round(abs(float(x)), 4) for x in mtn], [round(float(x), 4) for x in riv])
        [0.3, 0.0] [0.0, 2.0]
    """
    _, vecs = top_eigenpairs(problem, params_a, k, num_iters=num_iters, key=key)
    fa, unravel = ravel_pytree(params_a)
    fb, _ = ravel_pytree(params_b)
    vk = jax.vmap(lambda t: ravel_pytree(t)[0])(vecs)  # (k, dim)
    d = fb - fa
    mountain = vk.T @ (vk @ d)
    return unravel(mountain), unravel(d - mountain)
