"""Bigram toy language model: the river valley emerging from data (THEORY.md §7).

A vocabulary of ``V`` tokens. A fraction ``rho`` of them are *deterministic*: their next token is
``pi(x)`` with probability 1. The others are *stochastic*: their next-token distribution ``q_x`` has
full support and a controlled entropy. A model predicts next-token logits ``z_x``; its population
loss is the exact expected cross-entropy

    L = sum_x p(x) * ( logsumexp(z_x) - sum_y q_x(y) z_x(y) ),

whose floor is the conditional entropy ``H = sum_x p(x) H(q_x)`` of the data.

- A deterministic row of the table model has loss ``log(1 + sum_{y != pi(x)} e^{-(z_pi - z_y)})``:
  no finite minimizer, flat and descending forever (a *river*).
- A stochastic row has its optimum at ``z_x = log q_x`` (up to a shift), with Hessian
  ``p(x) * (diag(q_x) - q_x q_x^T)`` equal to the covariance of its per-sample gradient
  (a *hill* with O(1) gradient noise).

Problems (``TableModel``, ``FactorizedModel``) follow the engine's protocol: ``loss``,
``sample_loss(params, key)`` (a real minibatch, so the SGD noise is sampling noise) and
``decompose`` (river = deterministic tokens, hill = stochastic tokens).

**The split is of the excess over the entropy floor.** ``decompose`` returns

    loss = river_loss + hill_loss + entropy_floor,

with ``river_loss = sum_{x det} p(x) KL(q_x || softmax z_x)`` (the deterministic rows; their
entropy is 0, so this is their whole loss), ``hill_loss`` the same sum over the stochastic rows
(their loss minus their entropy) and ``entropy_floor = H`` in the extras, the part no model can
remove. Both parts are >= 0 and go to 0 at the true distribution, like the river and hill losses
of a landscape; the floor is reported beside them, never inside the hill part.

**Predicted stochastic-token plateau** (quadratic approximation at the stochastic optimum, SGD with
batch size ``B`` at constant ``eta``): the minibatch gradient covariance of the stochastic rows is
``Sigma = H / B`` (the Fisher equals the Hessian at the optimum; rows are exclusive events, so
blocks are uncorrelated), and the stationary second moment ``S`` of the offset solves
``H S + S H - eta H S H = eta Sigma``. The expected excess of the stochastic tokens is

    1/2 tr(H S) = (eta / (2 B)) * sum_i lambda_i / (2 - eta lambda_i)  ~  eta * tr(H) / (4 B),
    tr(H) = sum_{x stochastic} p(x) * (1 - |q_x|^2),

proportional to ``eta`` and independent of the sharpness to first order (THEORY.md §4's
``eta sigma^2 / 4``). ``predicted_plateau`` returns it, with the finite-time build-up
``1 - (1 - eta lambda_i)^(2t)`` from the optimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley._pytree import build, pytree
from rivervalley._validate import check_int, check_key, check_real, fmt, is_traced

__all__ = [
    "BigramData",
    "make_data",
    "TableModel",
    "FactorizedModel",
    "entropy_rows",
    "predicted_plateau",
]

_DISTRIBUTIONS = ("softmax", "dirichlet")
_MARGINALS = ("uniform", "stationary")


def entropy_rows(probs: jax.Array) -> jax.Array:
    """Entropy in nats of every row of a stochastic matrix, ``-sum_y q(y) log q(y)`` (0 log 0 = 0).

    Only exact zeros are dropped: a NaN or negative entry makes its row's entropy NaN (a broken
    distribution is never reported as a certain one).

    Example:
        >>> import jax.numpy as jnp
        >>> print(round(float(entropy_rows(jnp.array([[0.5, 0.5], [1.0, 0.0]]))[0]), 4))
        0.6931
    """
    zero = probs == 0
    safe = jnp.where(zero, 1.0, probs)  # log of a negative or NaN entry stays NaN
    return -jnp.sum(jnp.where(zero, 0.0, probs * jnp.log(safe)), axis=-1)


#: Floor of a probability mass that divides (an empty token class gives 0 / 1e-30 = 0, not NaN).
_TINY_MASS = 1e-30


@pytree(factory="rivervalley.bigram.make_data")
@dataclass(frozen=True)
class BigramData:
    """The bigram source: next-token distributions, token marginal, deterministic mask.
    Built by :func:`make_data`.

    Attributes:
        probs: ``(V, V)`` matrix, ``probs[x, y] = P(next = y | current = x)``.
        marginal: ``(V,)`` distribution ``p(x)`` of the current token (uniform for i.i.d. pairs,
            or the chain's stationary distribution).
        is_det: ``(V,)`` bool, True for deterministic tokens.
        successor: ``(V,)`` int, ``pi(x)`` for deterministic tokens, the most likely next token
            otherwise.
    """

    probs: jax.Array
    marginal: jax.Array
    is_det: jax.Array
    successor: jax.Array

    @property
    def vocab_size(self) -> int:
        return int(self.probs.shape[-1])

    def row_entropy(self) -> jax.Array:
        """Entropy ``H(q_x)`` of each row (0 for deterministic tokens)."""
        return _summary(self)["row_entropy"]

    def entropy(self) -> jax.Array:
        """The loss floor ``H = sum_x p(x) H(q_x)`` (nats per token)."""
        return _summary(self)["entropy"]

    def class_mass(self) -> tuple[jax.Array, jax.Array]:
        """``(P(deterministic), P(stochastic))`` under the marginal."""
        s = _summary(self)
        return s["p_det"], s["p_stoch"]

    def stoch_entropy(self) -> jax.Array:
        """Mean entropy of the stochastic tokens, ``sum_{x stoch} p(x) H(q_x) / P(stoch)``."""
        return _summary(self)["stoch_entropy"]

    def stationary(self) -> jax.Array:
        """Stationary distribution of the chain ``probs`` (solves ``pi = pi P``, ``sum pi = 1``)."""
        v = self.vocab_size
        a = self.probs.T - jnp.eye(v, dtype=self.probs.dtype)
        a = a.at[-1].set(1.0)
        b = jnp.zeros((v,), self.probs.dtype).at[-1].set(1.0)
        return jnp.linalg.solve(a, b)

    def sample_pairs(self, num: int, *, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``num`` i.i.d. pairs: ``x ~ p``, ``y ~ q_x``. Returns int arrays ``(x, y)``."""
        num = check_int("num", num, lo=1)
        check_key("key", key)
        kx, ky = jax.random.split(key)
        x = jax.random.categorical(kx, _log(self.marginal), shape=(num,))
        y = jax.random.categorical(ky, _log(self.probs[x]), axis=-1)
        return x, y

    def sample_sequence(self, length: int, *, key: jax.Array) -> jax.Array:
        """A Markov-chain sequence of ``length`` tokens, started from the marginal."""
        length = check_int("length", length, lo=1)
        check_key("key", key)
        k0, kr = jax.random.split(key)
        x0 = jax.random.categorical(k0, _log(self.marginal))
        logp = _log(self.probs)

        def step(x, k):
            nxt = jax.random.categorical(k, logp[x])
            return nxt, nxt

        _, rest = jax.lax.scan(step, x0, jax.random.split(kr, length - 1))
        return jnp.concatenate([x0[None], rest])


@jax.jit
def _summary(data: BigramData) -> dict:
    """Entropies and class masses in one compiled call (used eagerly and under tracing alike)."""
    h = entropy_rows(data.probs)
    ent = jnp.sum(data.marginal * h)
    p_det = jnp.sum(jnp.where(data.is_det, data.marginal, 0.0))
    p_stoch = jnp.sum(data.marginal) - p_det
    return {"row_entropy": h, "entropy": ent, "p_det": p_det, "p_stoch": p_stoch,
            "stoch_entropy": ent / jnp.maximum(p_stoch, _TINY_MASS)}


def _log(p: jax.Array) -> jax.Array:
    return jnp.where(p > 0, jnp.log(jnp.where(p > 0, p, 1.0)), -jnp.inf)


@partial(jax.jit, static_argnums=(1, 2))
def _draw(key, v, distribution, logit_scale, concentration, smoothing):
    """All random draws of ``make_data`` in one compiled call: permutation, uniforms, rows."""
    k_perm, k_succ, k_rows = jax.random.split(key, 3)
    if distribution == "softmax":
        rows = jax.nn.softmax(logit_scale * jax.random.normal(k_rows, (v, v)), axis=-1)
    else:
        rows = jax.random.dirichlet(k_rows, jnp.full((v,), concentration), shape=(v,))
        rows = (1.0 - smoothing) * rows + smoothing / v
    return jax.random.permutation(k_perm, v), jax.random.uniform(k_succ, (v,)), rows


def make_data(
    *,
    vocab_size: int = 64,
    det_fraction: float = 0.5,
    logit_scale: float = 2.0,
    distribution: str = "softmax",
    concentration: float = 1.0,
    smoothing: float = 1e-3,
    marginal: str = "uniform",
    key: jax.Array,
) -> BigramData:
    """Draw a bigram source; deterministic given ``key``.

    ``round(det_fraction * V)`` tokens are deterministic. Their successor map ``pi`` is random but
    acyclic among deterministic tokens (every deterministic path ends at a stochastic token), so the
    chain is irreducible whenever a stochastic token exists. Stochastic rows are
    ``softmax(s * N(0, I))`` (``distribution="softmax"``, ``s = logit_scale``: larger ``s``, lower
    entropy) or ``(1 - eps) Dirichlet(alpha) + eps / V`` (``"dirichlet"``, ``alpha =
    concentration``, ``eps = smoothing``).

    Args:
        vocab_size: ``V >= 2``.
        det_fraction: ``rho`` in [0, 1].
        logit_scale: ``s >= 0`` for softmax rows.
        distribution: "softmax" or "dirichlet".
        concentration: Dirichlet ``alpha > 0``.
        smoothing: Dirichlet mixing weight ``eps`` in (0, 1].
        marginal: "uniform" (i.i.d. pairs) or "stationary" (the chain's stationary distribution).
        key: PRNG key.

    Example:
        >>> import jax
        >>> d = make_data(vocab_size=8, det_fraction=0.5, key=jax.random.key(0))
        >>> print(int(d.is_det.sum()), round(float(d.marginal.sum()), 6))
        4 1.0
    """
    v = check_int("vocab_size", vocab_size, lo=2)
    for name, value in (("det_fraction", det_fraction), ("logit_scale", logit_scale),
                        ("concentration", concentration), ("smoothing", smoothing)):
        if np.ndim(value) != 0 or is_traced(value):
            raise ValueError(f"{name}={fmt(value)} must be a concrete scalar")
    check_real("det_fraction", det_fraction, lo=0.0, hi=1.0)
    check_real("logit_scale", logit_scale, lo=0.0, what="the softmax rows' logit scale s")
    if not isinstance(distribution, str) or distribution not in _DISTRIBUTIONS:
        raise ValueError(f"distribution={distribution!r} is not one of {_DISTRIBUTIONS}")
    check_real("concentration", concentration, lo=0.0, lo_open=True,
               what="the Dirichlet alpha")
    check_real("smoothing", smoothing, lo=0.0, hi=1.0, lo_open=True)
    if not isinstance(marginal, str) or marginal not in _MARGINALS:
        raise ValueError(f"marginal={marginal!r} is not one of {_MARGINALS}")
    check_key("key", key)
    n_det = int(round(det_fraction * v))
    if marginal == "stationary" and n_det == v:
        raise ValueError(
            f"det_fraction={det_fraction} leaves no stochastic token; marginal='stationary' needs "
            "det_fraction < 1 - 1/(2 vocab_size)"
        )
    perm, u, rows = _draw(key, v, distribution, logit_scale, concentration, smoothing)
    perm, u = np.asarray(perm), np.asarray(u)
    det_ids, stoch_ids = perm[:n_det], perm[n_det:]
    is_det = np.zeros(v, bool)
    is_det[det_ids] = True
    rows = np.array(rows, np.float64)  # a writable copy
    if not np.all(np.isfinite(rows)) or np.any(rows.sum(-1) <= 0):
        culprit = (f"logit_scale={fmt(logit_scale)}" if distribution == "softmax"
                   else f"concentration={fmt(concentration)}")
        raise ValueError(f"{culprit} gives non-finite or empty next-token rows in "
                         f"{np.dtype(jnp.result_type(float)).name}; choose a moderate value")
    rows /= rows.sum(-1, keepdims=True)

    # Successors: det token number i (in order) maps to a stochastic token or a later det token.
    successor = np.argmax(rows, axis=-1)
    for i, x in enumerate(det_ids):
        targets = np.concatenate([stoch_ids, det_ids[i + 1 :]])
        if len(targets) == 0:  # no stochastic token at all: the last one may close a cycle
            targets = det_ids
        successor[x] = targets[min(int(u[x] * len(targets)), len(targets) - 1)]
    probs = rows.copy()
    probs[det_ids] = 0.0
    probs[det_ids, successor[det_ids]] = 1.0

    dtype = jnp.result_type(float)
    fields = dict(probs=jnp.asarray(probs, dtype), marginal=jnp.full((v,), 1.0 / v, dtype),
                  is_det=jnp.asarray(is_det), successor=jnp.asarray(successor, jnp.int32))
    if marginal == "stationary":
        fields["marginal"] = build(BigramData, **fields).stationary()
    return build(BigramData, **fields)


# ---------------------------------------------------------------------------------------------
# Models (problems for the engine)
# ---------------------------------------------------------------------------------------------


class _BigramProblem:
    """Shared loss code: subclasses define ``logits(params) -> (V, V)``."""

    data: BigramData
    batch_size: int | None

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading batch axes of a stacked model (``rivervalley.stack``); ``()`` for one model.
        The engine reads it to refuse a stack that ``batched`` does not name."""
        return tuple(np.shape(self.data.probs)[:-2])

    def logits(self, params: Any) -> jax.Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def row_loss(self, params: Any) -> jax.Array:
        """Expected cross-entropy of each row, ``logsumexp(z_x) - sum_y q_x(y) z_x(y)``, shape (V,)."""
        z = self.logits(params)
        return jax.nn.logsumexp(z, axis=-1) - jnp.sum(self.data.probs * z, axis=-1)

    def loss(self, params: Any) -> jax.Array:
        """Population loss ``sum_x p(x) * row_loss(x)`` (exact expectation)."""
        return jnp.sum(self.data.marginal * self.row_loss(params))

    def sample_loss(self, params: Any, key: jax.Array) -> jax.Array:
        """Mean cross-entropy on ``batch_size`` i.i.d. pairs drawn with ``key``.

        With ``batch_size=None`` the problem is deterministic and this returns ``loss(params)``
        (full-batch gradient descent).
        """
        if self.batch_size is None:
            return self.loss(params)
        x, y = self.data.sample_pairs(self.batch_size, key=key)
        z = self.logits(params)[x]
        return jnp.mean(jax.nn.logsumexp(z, axis=-1) - jnp.take_along_axis(z, y[:, None], -1)[:, 0])

    def decompose(self, params: Any) -> dict[str, jax.Array]:
        """Split by token class, of the excess over the entropy floor (module docstring):
        ``loss = river_loss + hill_loss + entropy_floor``.

        Keys: ``loss`` (the population loss); ``river_loss`` = sum over deterministic tokens of
        ``p(x) (row_loss(x) - H(q_x))`` (their entropy is 0); ``hill_loss`` = the same over
        stochastic tokens; extras: ``entropy_floor = H``; ``excess_loss = river_loss +
        hill_loss``; ``det_loss`` / ``stoch_loss``: per-class mean losses (weighted by ``p(x)``
        within the class); ``stoch_excess = stoch_loss - mean stochastic entropy``.
        """
        d = self.data
        rl = self.row_loss(params)
        w = d.marginal * rl
        excess = d.marginal * (rl - d.row_entropy())  # p(x) KL(q_x || model row): >= 0
        river = jnp.sum(jnp.where(d.is_det, excess, 0.0))
        hill = jnp.sum(jnp.where(d.is_det, 0.0, excess))
        det_total = jnp.sum(jnp.where(d.is_det, w, 0.0))
        stoch_total = jnp.sum(jnp.where(d.is_det, 0.0, w))
        pd, ps = d.class_mass()
        stoch_loss = stoch_total / jnp.maximum(ps, _TINY_MASS)
        return {
            "loss": jnp.sum(w),
            "river_loss": river,
            "hill_loss": hill,
            "entropy_floor": d.entropy(),
            "excess_loss": river + hill,
            "det_loss": det_total / jnp.maximum(pd, _TINY_MASS),
            "stoch_loss": stoch_loss,
            "stoch_excess": stoch_loss - d.stoch_entropy(),
        }


def _check_model(model: Any) -> None:
    """The fields a user gives a bigram model, checked at construction."""
    if not isinstance(model.data, BigramData):
        raise TypeError(f"data={fmt(model.data)} must be a BigramData "
                        f"(rivervalley.bigram.make_data), not {type(model.data).__name__}")
    if model.batch_size is not None:
        check_int("batch_size", model.batch_size, lo=1)


@pytree(static=("batch_size",))
@dataclass(frozen=True)
class TableModel(_BigramProblem):
    """Table bigram model: ``logits = W[x]``, ``params = {"W": (V, V)}``.

    Rows are independent: each deterministic row is a river, each stochastic row a hill whose
    Hessian block is ``p(x) (diag(s_x) - s_x s_x^T)`` with ``s_x = softmax(W[x])``.

    Attributes:
        data: the bigram source.
        batch_size: pairs per minibatch for ``sample_loss``; None for full-batch (exact) gradients.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> m = TableModel(make_data(vocab_size=8, key=jax.random.key(0)), batch_size=16)
        >>> print(round(float(m.loss(m.init_params(key=jax.random.key(1)))), 4))  # log 8 at W = 0
        2.0794
    """

    data: BigramData
    batch_size: int | None = 32

    def __post_init__(self):
        _check_model(self)

    @property
    def param_shape(self) -> dict:
        """The shape of one point: ``{"W": (V, V)}``."""
        v = self.data.vocab_size
        return {"W": (v, v)}

    def init_params(self, *, key: jax.Array | None = None, scale: float = 0.0) -> dict:
        """``W = scale * N(0, 1)`` (zeros by default: the uniform predictor, loss ``log V``);
        ``key`` is required when ``scale != 0``."""
        check_real("scale", scale)
        v = self.data.vocab_size
        if is_traced(scale) or scale != 0.0:
            if key is None:
                raise ValueError(f"init_params(scale={fmt(scale)}) draws random weights: pass "
                                 "key=jax.random.key(seed)")
            check_key("key", key)
            return {"W": scale * jax.random.normal(key, (v, v))}
        return {"W": jnp.zeros((v, v))}

    def optimum_params(self, det_margin: float = 0.0) -> dict:
        """``W = log q`` on stochastic rows (their exact optimum); deterministic rows get
        ``det_margin`` on ``pi(x)`` and 0 elsewhere."""
        d = self.data
        v = d.vocab_size
        logq = jnp.log(jnp.maximum(d.probs, 1e-300))
        det_rows = det_margin * jax.nn.one_hot(d.successor, v, dtype=logq.dtype)
        return {"W": jnp.where(d.is_det[:, None], det_rows, logq)}

    def logits(self, params: dict) -> jax.Array:
        return params["W"]

    def row_hessians(self, params: dict) -> jax.Array:
        """Hessian block of each row, ``p(x) (diag(s_x) - s_x s_x^T)``, shape (V, V, V)."""
        s = jax.nn.softmax(params["W"], axis=-1)
        h = jax.vmap(jnp.diag)(s) - s[:, :, None] * s[:, None, :]
        return self.data.marginal[:, None, None] * h

    def row_curvature(self, params: dict) -> jax.Array:
        """Top eigenvalue of each row's Hessian block, shape (V,)."""
        return jnp.linalg.eigvalsh(self.row_hessians(params))[:, -1]


@pytree(static=("width", "batch_size"))
@dataclass(frozen=True)
class FactorizedModel(_BigramProblem):
    """Factorized bigram model: ``logits = E[x] U``, ``params = {"E": (V, d), "U": (d, V)}``.

    The parameters are shared across tokens, so rivers and hills are not built in but emerge.

    Attributes:
        data: the bigram source.
        width: ``d`` (static), usually ``< V``.
        batch_size: pairs per minibatch; None for full-batch gradients.

    Example:
        >>> import jax
        >>> m = FactorizedModel(make_data(vocab_size=8, key=jax.random.key(0)), width=4)
        >>> p = m.init_params(key=jax.random.key(1))
        >>> print(p["E"].shape, p["U"].shape)
        (8, 4) (4, 8)
    """

    data: BigramData
    width: int = 16
    batch_size: int | None = 32

    def __post_init__(self):
        _check_model(self)
        check_int("width", self.width, lo=1)

    @property
    def param_shape(self) -> dict:
        """The shape of one point: ``{"E": (V, d), "U": (d, V)}``."""
        v, d = self.data.vocab_size, self.width
        return {"E": (v, d), "U": (d, v)}

    def init_params(self, *, key: jax.Array, scale: float = 1.0) -> dict:
        """``E ~ N(0, scale^2)``, ``U ~ N(0, scale^2 / d)`` (logits of order ``scale``; the zero
        init is a saddle)."""
        check_key("key", key)
        check_real("scale", scale)
        ke, ku = jax.random.split(key)
        v, d = self.data.vocab_size, self.width
        return {
            "E": scale * jax.random.normal(ke, (v, d)),
            "U": scale * jax.random.normal(ku, (d, v)) / math.sqrt(d),
        }

    def logits(self, params: dict) -> jax.Array:
        return params["E"] @ params["U"]




def predicted_plateau(
    data: BigramData,
    learning_rate: float,
    batch_size: int,
    num_steps: int | None = None,
) -> jax.Array:
    """Predicted stochastic-token excess (total, ``p``-weighted) of SGD on the table model.

    Quadratic approximation at the stochastic optimum, constant ``eta``, batch ``B``:

        E excess = (eta / (2B)) * sum_i lambda_i / (2 - eta lambda_i) * (1 - (1 - eta lambda_i)^(2t)),

    over the eigenvalues ``lambda_i`` of the stochastic Hessian blocks ``p(x)(diag q_x - q_x q_x^T)``
    (``t = num_steps`` steps from the optimum; ``None`` for the steady state
    ``~ eta tr(H) / (4B)``). Divide by ``P(stochastic)`` for the per-class ``stoch_excess``.
    The total is the ``hill_loss`` of :meth:`TableModel.decompose` (an excess over the floor).

    Needs ``learning_rate > 0`` finite with ``eta lambda_max < 2`` (beyond it SGD diverges on the
    sharpest stochastic row: no plateau, a ``ValueError``), ``batch_size`` an integer >= 1 and
    ``num_steps`` None or an integer >= 0.

    Example:
        >>> import jax
        >>> d = make_data(vocab_size=8, key=jax.random.key(0))
        >>> a = predicted_plateau(d, 1.0, 8); b = predicted_plateau(d, 2.0, 8)
        >>> print(round(float(b / a), 2))  # ~ eta ratio, slightly more (1 / (2 - eta lambda))
        2.03
    """
    if not isinstance(data, BigramData):
        raise TypeError(f"data={fmt(data)} must be a BigramData (rivervalley.bigram.make_data), "
                        f"not {type(data).__name__}")
    check_real("learning_rate", learning_rate, lo=0.0, lo_open=True, what="a learning rate")
    batch_size = check_int("batch_size", batch_size, lo=1)
    if num_steps is not None:
        num_steps = check_int("num_steps", num_steps, lo=0)
    q = data.probs
    h = jax.vmap(jnp.diag)(q) - q[:, :, None] * q[:, None, :]
    h = data.marginal[:, None, None] * h
    lam = jnp.linalg.eigvalsh(h)  # (V, V)
    lam = jnp.where(data.is_det[:, None], 0.0, jnp.maximum(lam, 0.0))
    if not is_traced((learning_rate, lam)):
        el = float(np.max(np.asarray(learning_rate) * np.asarray(lam)))
        if not el < 2.0:
            raise ValueError(f"learning_rate={fmt(learning_rate)} times the largest stochastic "
                             f"curvature is {el:.4g}, outside [0, 2): SGD diverges on that row, "
                             "no plateau")
    eta = learning_rate
    terms = lam / (2.0 - eta * lam)
    if num_steps is not None:
        terms = terms * (1.0 - (1.0 - eta * lam) ** (2 * num_steps))
    return eta / (2.0 * batch_size) * jnp.sum(terms)
