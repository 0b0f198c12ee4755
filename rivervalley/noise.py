"""Gradient-noise models (THEORY.md §3): g_t = grad L(x_t) + xi_t.

Every model draws xi_t as a pure function of (run key, step t, coordinate), so a shorter run is an
exact prefix of a longer one and the same key gives the same bits.

Two generators, chosen per model with ``rng``:

- ``"hash"`` (default): a counter-based generator. The run key's two 32-bit words, the step and the
  coordinate index go through the ``lowbias32`` integer hash (a bijection of uint32), and the
  resulting 24 bits (a sign and a 23-bit tail probability) go through the inverse normal CDF
  (:func:`_bits_to_normal`: symmetric, never infinite). No per-step ``fold_in``: several times
  faster than threefry in a vmapped scan on CPU, the difference between JAX beating vectorized
  NumPy or not (see ``benchmarks/``). Tails are cut at |z| <= 5.42 (probability 6e-8).
- ``"threefry"``: ``jax.random.normal(fold_in(fold_in(key, stream), t))``, JAX's own generator.

Example:
    >>> import jax, jax.numpy as jnp
    >>> import rivervalley as rv
    >>> noise = rv.noise.isotropic(1.0)
    >>> xi = noise.sample(jax.random.key(0), 3, rv.landscapes.standard_toy(), jnp.zeros(2))
    >>> print(xi.shape, bool(jnp.all(jnp.isfinite(xi))))
    (2,) True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley._pytree import build, pytree
from rivervalley._validate import (
    check_broadcasts,
    check_choice,
    check_int,
    check_key,
    check_real,
    check_scalar,
    check_shape,
    fmt,
)
from rivervalley.protocols import Array, Params, Problem, RiverFrame


def _float():
    """The default float dtype: float32, or float64 inside ``jax.enable_x64(True)``."""
    return jnp.result_type(float)

#: The noise generators: "hash" (a counter-based lowbias32 hash, the fast default) and
#: "threefry" (jax.random with fold_in(key, step)).
RNGS = ("hash", "threefry")

_GOLDEN = np.uint32(0x9E3779B9)
#: Stream offset between the leaves of a parameter pytree (a prime, so leaf streams never meet
#: the small stream numbers callers use).
_LEAF_STREAM_STRIDE = 7919


def _lowbias32(x: Array) -> Array:
    """Chris Wellons' lowbias32 integer hash: a bijection of uint32 with low bias."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def _key_words(key: Array) -> tuple[Array, Array]:
    data = jax.random.key_data(key).astype(jnp.uint32).reshape(-1)
    return data[0], data[-1]


def hash_bits(step: Array, size: int, *, key: Array, stream: int = 0) -> Array:
    """``size`` pseudo-random uint32 words, a pure function of (key, step, stream, index)."""
    s0, s1 = _key_words(key)
    t = jnp.asarray(step).astype(jnp.uint32)
    a = _lowbias32(t ^ s0 ^ jnp.uint32(stream) * _GOLDEN)
    idx = jnp.arange(size, dtype=jnp.uint32)
    return _lowbias32(_lowbias32(idx ^ a) + s1)


# Giles' single-precision erfinv ("Approximating the erfinv function", GPU Computing Gems, 2010):
# erfinv(x) = x p(w), w = -log(1 - x^2), with p a degree-8 polynomial in w - 2.5 (w < 5) or in
# sqrt(w) - 3 (w >= 5). Coefficients from highest degree to the constant term.
_ERFINV_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                   0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def _bits_to_normal(bits: Array, dtype) -> Array:
    """uint32 words -> standard normals by the inverse CDF, symmetric by construction.

    The top bit of the 24 used is the sign; the other 23 give the tail probability
    q = (m + 1/2) 2^-24 in (0, 1/2), exact in float32, and z = +-Phi^-1(1 - q) with
    x = 1 - 2q = erf(|z| / sqrt 2) exact and 1 - x^2 = 2q (1 + x) computed without cancellation.
    So no word maps to an infinite value, the 2^24 outcomes are symmetric about 0, and
    |z| <= Phi^-1(1 - 2^-25) = 5.42 (the clipped tail has probability 6e-8).
    In float32 the transform is Giles' erfinv evaluated with a plain ``log`` (``lax.erf_inv``
    needs ``log1p(-x^2)``, 1.35x slower per draw); in float64 it is ``jax.scipy.special.erfinv``.
    """
    k = bits >> 8
    negative = k < jnp.uint32(1 << 23)
    q = ((k & jnp.uint32((1 << 23) - 1)).astype(dtype) + 0.5) * (1.0 / 16777216.0)
    x = 1.0 - 2.0 * q
    if jnp.dtype(dtype) == jnp.float64:
        a = jax.scipy.special.erfinv(x)
    else:
        w = -jnp.log(2.0 * q * (1.0 + x))
        central, tail = w - 2.5, jnp.sqrt(w) - 3.0
        pc, pt = _ERFINV_CENTRAL[0], _ERFINV_TAIL[0]
        for cc, ct in zip(_ERFINV_CENTRAL[1:], _ERFINV_TAIL[1:]):
            pc, pt = cc + pc * central, ct + pt * tail
        a = jnp.where(w < 5.0, pc, pt) * x
    z = jnp.sqrt(jnp.asarray(2.0, dtype)) * a
    return jnp.where(negative, -z, z).astype(dtype)


def _check_shape(shape: Any) -> tuple[int, ...]:
    """A shape: a tuple (or list) of integers >= 0, or one integer."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise ValueError(f"shape={fmt(shape)} must be a tuple of integers >= 0")
    for n in shape:
        try:
            check_int("shape", n, lo=0)
        except ValueError:
            raise ValueError(f"shape={fmt(tuple(shape))} holds {n!r}; the valid range: a tuple "
                             "of integers >= 0") from None
    return tuple(int(n) for n in shape)


def normal(step: Array, shape: tuple[int, ...], *, key: Array, rng: str = "hash",
           stream: int = 0, dtype=None) -> Array:
    """Standard normal draws for step ``step`` of the run keyed by ``key``.

    Args:
        step: the step t (traced int).
        shape: output shape (a tuple of integers >= 0).
        key: the run's PRNG key.
        rng: ``"hash"`` or ``"threefry"`` (see the module docstring).
        stream: an integer in [0, 2^32 - 1] separating independent uses of the same key and step.
        dtype: float dtype of the result (default: float32, or float64 under x64).

    The checks run when the call is traced (once per compilation), never per step.
    """
    shape = _check_shape(shape)
    check_choice("rng", rng, RNGS, what="generators")
    check_key("key", key)
    stream = check_int("stream", stream, lo=0, hi=2**32 - 1)
    size = int(np.prod(shape)) if shape else 1
    dtype = _float() if dtype is None else dtype
    if rng == "threefry":
        k = jax.random.fold_in(jax.random.fold_in(key, stream), step)
        return jax.random.normal(k, shape, dtype)
    return _bits_to_normal(hash_bits(step, size, key=key, stream=stream), dtype).reshape(shape)


def _tree_normal(step: Array, params: Array, rng: str, *, key: Array, stream: int = 0) -> Array:
    """Standard normals shaped like the pytree ``params`` (one stream per leaf)."""
    leaves, treedef = jax.tree.flatten(params)
    out = [normal(step, jnp.shape(l), key=key, rng=rng, stream=stream + _LEAF_STREAM_STRIDE * i,
                  dtype=jnp.result_type(l)) for i, l in enumerate(leaves)]
    return jax.tree.unflatten(treedef, out)


def _check_scalar_sigma(model: Any) -> None:
    if np.ndim(model.sigma) != 0:
        raise ValueError(f"sigma={fmt(model.sigma)} has shape {np.shape(model.sigma)}; the theory "
                         f"of {type(model).__name__} noise needs one sigma for every direction "
                         f"(a scalar); use hill_only for one sigma per hill direction")


def _hill_shape(problem: RiverFrame, who: str = "the theory of a noise model") -> tuple[int, ...]:
    """The shape (d-1,) of a RiverFrame's hill sharpness; ``TypeError`` for another problem."""
    if not isinstance(problem, RiverFrame):
        raise TypeError(f"{who} needs a river-valley problem: local coordinates and hill "
                        f"sharpness (rivervalley.protocols.RiverFrame, e.g. a RiverValley); got "
                        f"{type(problem).__name__}")
    return tuple(np.shape(problem.sharpness))


class _SigmaVariances:
    """Noise variance per hill direction and along the river, for ``rivervalley.theory``
    (per unit of loss when ``scales_with_loss``)."""

    scales_with_loss: ClassVar[bool] = False

    def _check_theory(self, problem: RiverFrame) -> None:
        _hill_shape(problem)
        _check_scalar_sigma(self)

    def hill_variance(self, problem: RiverFrame) -> Array:
        """sigma^2 per hill direction, shape (d-1,).

        Raises ``ValueError`` naming ``sigma`` when its shape does not fit the valley."""
        self._check_theory(problem)
        return jnp.broadcast_to(jnp.asarray(self.sigma) ** 2, _hill_shape(problem))

    def river_variance(self, problem: RiverFrame) -> Array:
        """sigma^2 along the river."""
        self._check_theory(problem)
        return jnp.asarray(self.sigma) ** 2


@pytree(static=("rng",), factory="rivervalley.noise.isotropic")
@dataclass(frozen=True)
class Isotropic(_SigmaVariances):
    """xi ~ N(0, sigma^2 I) on every parameter. Built by :func:`isotropic`.

    Attributes:
        sigma: noise standard deviation per coordinate (>= 0).
        rng: ``"hash"`` or ``"threefry"``.
    """

    sigma: Array
    rng: str

    def sample(self, key: Array, step: Array, problem: Problem, params: Params) -> Params:
        del problem
        check_broadcasts("sigma", self.sigma, params)
        z = _tree_normal(step, params, self.rng, key=key)
        return jax.tree.map(lambda a: self.sigma * a, z)


@pytree(static=("rng",), factory="rivervalley.noise.hill_only")
@dataclass(frozen=True)
class HillOnly(_SigmaVariances):
    """Noise across the river only (sigma_river along it, default 0), drawn in a river-valley
    problem's local coordinates and rotated to the world frame (the problem must be a
    :class:`~rivervalley.protocols.RiverFrame`). Built by :func:`hill_only`.

    Attributes:
        sigma: standard deviation across the river (scalar or shape (d-1,)).
        sigma_river: standard deviation along the river.
        rng: ``"hash"`` or ``"threefry"``.
    """

    sigma: Array
    sigma_river: Array
    rng: str

    def sample(self, key: Array, step: Array, problem: RiverFrame, params: Array) -> Array:
        d = _hill_shape(problem, "HillOnly noise")[-1] + 1
        check_shape("params", params, ((d,),),
                    what=f"HillOnly noise needs a parameter vector of shape ({d},)")
        self._check_sigma_shapes(d - 1)
        z = normal(step, (d,), key=key, rng=self.rng, dtype=jnp.result_type(params))
        river = jnp.arange(d) == 0
        if jnp.ndim(self.sigma) == 0:  # no concatenation on the hot path
            scale = jnp.where(river, jnp.asarray(self.sigma_river, z.dtype),
                              jnp.asarray(self.sigma, z.dtype))
        else:
            scale = jnp.concatenate([jnp.reshape(jnp.asarray(self.sigma_river, z.dtype), (1,)),
                                     jnp.asarray(self.sigma, z.dtype)])
        return problem.to_world(scale * z)

    def _check_sigma_shapes(self, h: int) -> None:
        """sigma: a scalar or (h,) = one per hill direction; sigma_river: a scalar."""
        check_shape("sigma", self.sigma, ((), (h,)),
                    what=f"a {h + 1}-D valley takes a scalar or one sigma per hill direction, "
                         f"shape ({h},)")
        check_scalar("sigma_river", self.sigma_river)

    def _check_theory(self, problem: RiverFrame) -> None:
        self._check_sigma_shapes(_hill_shape(problem)[-1])

    def river_variance(self, problem: RiverFrame) -> Array:
        self._check_theory(problem)
        return jnp.asarray(self.sigma_river) ** 2


@pytree(static=("rng",), factory="rivervalley.noise.loss_scaled")
@dataclass(frozen=True)
class LossScaled(_SigmaVariances):
    """xi ~ N(0, sigma^2 L(x) I): variance proportional to the loss, like per-example gradients
    whose spread shrinks as the model fits. Needs L(x) >= 0. Built by :func:`loss_scaled`.

    Attributes:
        sigma: scale; the variance per coordinate is sigma^2 * L(x).
        rng: ``"hash"`` or ``"threefry"``.
    """

    sigma: Array
    rng: str
    scales_with_loss: ClassVar[bool] = True

    def sample(self, key: Array, step: Array, problem: Problem, params: Params) -> Params:
        check_broadcasts("sigma", self.sigma, params)
        scale = self.sigma * jnp.sqrt(jnp.maximum(problem.loss(params), 0.0))
        z = _tree_normal(step, params, self.rng, key=key)
        return jax.tree.map(lambda a: scale * a, z)


@pytree(factory="rivervalley.noise.student_t")
@dataclass(frozen=True)
class StudentT(_SigmaVariances):
    """Heavy-tailed noise: Student-t with ``df`` > 2 degrees of freedom, rescaled so that each
    coordinate has standard deviation ``sigma`` (variance matches :class:`Isotropic`).
    Always drawn with threefry (a t variate needs a gamma draw). Built by :func:`student_t`.

    Attributes:
        sigma: standard deviation per coordinate.
        df: degrees of freedom (> 2 for a finite variance).
    """

    sigma: Array
    df: Array

    def sample(self, key: Array, step: Array, problem: Problem, params: Params) -> Params:
        del problem
        check_broadcasts("sigma", self.sigma, params)
        check_broadcasts("df", self.df, params)
        leaves, treedef = jax.tree.flatten(params)
        k = jax.random.fold_in(jax.random.fold_in(key, 1), step)
        ks = jax.random.split(k, len(leaves))
        scale = self.sigma * jnp.sqrt((self.df - 2.0) / self.df)
        out = [scale * jax.random.t(kk, self.df, jnp.shape(l), jnp.result_type(l))
               for kk, l in zip(ks, leaves)]
        return jax.tree.unflatten(treedef, out)


def _sigma_leaf(name: str, value: Any, what: str = "a noise standard deviation") -> Array:
    check_real(name, value, lo=0.0, what=what)
    return jnp.asarray(value, _float())


def isotropic(sigma: float = 1.0, *, rng: str = "hash") -> Isotropic:
    """Isotropic noise xi ~ N(0, sigma^2 I) (sigma >= 0, finite; a scalar or an array that
    broadcasts to the parameters).

    >>> isotropic(0.5).sigma.item(), isotropic(0.5).rng
    (0.5, 'hash')
    """
    check_choice("rng", rng, RNGS, what="generators")
    return build(Isotropic, sigma=_sigma_leaf("sigma", sigma), rng=rng)


def hill_only(sigma=1.0, *, sigma_river: float = 0.0, rng: str = "hash") -> HillOnly:
    """Noise across the river only (sigma, sigma_river >= 0, finite; sigma a scalar or one value
    per hill direction, sigma_river a scalar).

    >>> hill_only([1.0, 2.0]).sigma.tolist()
    [1.0, 2.0]
    """
    check_choice("rng", rng, RNGS, what="generators")
    check_real("sigma", sigma, lo=0.0, what="a noise standard deviation")
    if np.ndim(sigma) > 1:
        raise ValueError(f"sigma={fmt(sigma)} has shape {np.shape(sigma)}; expected a scalar or "
                         "one value per hill direction, shape (d-1,)")
    check_scalar("sigma_river", sigma_river)
    return build(HillOnly, sigma=_sigma_leaf("sigma", sigma),
                 sigma_river=_sigma_leaf("sigma_river", sigma_river), rng=rng)


def loss_scaled(sigma: float = 1.0, *, rng: str = "hash") -> LossScaled:
    """Loss-scaled noise xi ~ N(0, sigma^2 L(x) I) (sigma >= 0, finite).

    >>> loss_scaled(2.0).scales_with_loss
    True
    """
    check_choice("rng", rng, RNGS, what="generators")
    return build(LossScaled, sigma=_sigma_leaf("sigma", sigma, "a noise scale"), rng=rng)


def student_t(sigma: float = 1.0, *, df: float = 3.0) -> StudentT:
    """Student-t noise of standard deviation sigma (sigma >= 0, df > 2, both finite).

    >>> student_t(1.0, df=5.0).df.item()
    5.0
    """
    check_real("df", df, lo=2.0, lo_open=True, what="degrees of freedom, > 2 for a finite variance")
    return build(StudentT, sigma=_sigma_leaf("sigma", sigma),
                 df=jnp.asarray(df, _float()))


__all__ = ["RNGS", "normal", "hash_bits", "Isotropic", "HillOnly", "LossScaled", "StudentT",
           "isotropic", "hill_only", "loss_scaled", "student_t"]
