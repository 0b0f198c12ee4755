"""Synthetic river-valley losses (THEORY.md §2).

In local coordinates z = (u, v), u along the river and v in R^(d-1) across it,

    L(u, v) = f(u) + 1/2 * sum_i a_i(u) * (v_i - c_i(u))^2,

with a river profile ``f`` (``softplus``, ``power`` or ``linear``), a river course
``c_i(u) = A_i * sin(k * u)`` (straight when A = 0) and hill sharpness
``a_i(u) = lambda_i * (1 + kappa * tanh(u))`` (constant when kappa = 0; sharpening along the river
when kappa > 0). A valley may be rotated: world coordinates are x = Q z for an orthogonal Q.

Every iterate splits exactly into a river part and a hill part:
river point Phi(x) = Q (u, c(u)), hill offset delta = v - c(u), river loss R(x) = f(u) and hill loss
H(x) = 1/2 sum_i a_i(u) delta_i^2, so that L = R + H to rounding.

A :class:`RiverValley` is a frozen pytree dataclass: its numeric parameters are array leaves (so a
sweep can ``vmap`` over sharpness, meander or slope), the dimension and the profile are static.

Example:
    >>> import jax.numpy as jnp
    >>> import rivervalley as rv
    >>> valley = rv.landscapes.standard_toy()
    >>> x = jnp.array([0.0, 0.5])
    >>> print(round(float(valley.loss(x)), 4), round(float(valley.river_loss(x)), 4),
    ...       round(float(valley.hill_loss(x)), 4))
    3.1931 0.6931 2.5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley._pytree import build, pytree
from rivervalley._validate import (
    check_choice,
    check_int,
    check_key,
    check_real,
    check_scalar,
    check_shape,
    fmt,
    is_traced,
)
from rivervalley.protocols import Array

#: Tolerance of the orthogonality check of a given rotation, max |Q^T Q - I| (a float32 matrix
#: orthogonalised in float32 is off by a few eps32 = 1.2e-7; 1e-5 refuses any real shear).
ORTHOGONALITY_ATOL = 1e-5


def _float():
    """The default float dtype: float32, or float64 inside ``jax.enable_x64(True)``."""
    return jnp.result_type(float)

#: River profiles f(u), by name.
PROFILES = ("softplus", "power", "linear")
#: River courses c(u): straight (c = 0) or a sine meander.
COURSES = ("straight", "sine")


@jax.custom_jvp
def _softplus(x: Array) -> Array:
    """log(1 + e^x), stable; about 4x cheaper than ``jax.nn.softplus`` inside a vmapped scan.

    The derivative is defined as sigmoid(x): differentiating the max/abs form directly gives 0 at
    x = 0 (the tie-gradient 1/2 of ``maximum`` minus the gradient 1 of ``abs``), which would pin
    a run started on the river at u = 0.
    """
    return jnp.maximum(x, 0.0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


@_softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return _softplus(x), jax.nn.sigmoid(x) * dx


def _check_length(name: str, value: Any, h: int, dim: int) -> None:
    """``value`` is a scalar or has shape (d-1,) = (h,): one entry per hill direction."""
    check_shape(name, value, ((), (h,)), what=f"a {dim}-D valley takes a scalar or one value per "
                                               f"hill direction, shape ({h},)")


@pytree(static=("profile", "course", "varying"), factory="rivervalley.landscapes.river_valley")
@dataclass(frozen=True)
class RiverValley:
    """A river-valley loss. Built by :func:`river_valley` (and its presets :func:`standard_toy`
    and :func:`valley`), which checks every argument; JAX rebuilds it (``vmap``, ``jit``)
    without checks.

    Attributes:
        sharpness: lambda_i, shape (d-1,): hill curvatures across the river.
        amplitude: A_i, shape (d-1,): meander amplitude of the river course (0: straight).
        wavenumber: k: meander wavenumber.
        sharpening: kappa: a_i(u) = lambda_i (1 + kappa tanh(u)); |kappa| < 1.
        slope: s of the ``linear`` profile f(u) = -s u.
        alpha: exponent of the ``power`` profile f(u) = (1 + softplus(u))^(-alpha).
        rotation: Q (d, d) orthogonal, or None for an axis-aligned valley.
        profile: river profile name (static).
        course: ``"straight"`` (c = 0, amplitude ignored) or ``"sine"`` (static).
        varying: whether the sharpness varies along the river (kappa used; static).
    """

    sharpness: Array
    amplitude: Array
    wavenumber: Array
    sharpening: Array
    slope: Array
    alpha: Array
    rotation: Array | None
    profile: str
    course: str
    varying: bool

    # -- geometry -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Number of coordinates d (1 river + d-1 hill directions)."""
        return int(np.shape(self.sharpness)[-1]) + 1

    @property
    def stochastic(self) -> bool:
        """False: ``sample_loss`` ignores its key (a run draws random numbers only through a
        noise model), so the engine needs no key for a run without noise."""
        return False

    @property
    def param_shape(self) -> tuple[int]:
        """The shape of one point x: ``(d,)`` (the engine checks ``x0`` against it)."""
        return (self.dim,)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading batch axes of a stacked valley (``rivervalley.stack``); ``()`` for one valley."""
        return tuple(np.shape(self.sharpness)[:-1])

    def check_params(self, x: Any, name: str = "x0") -> None:
        """Raise ``ValueError`` naming ``name`` unless ``x`` is one point of this valley: a
        floating-point array of shape ``(d,)`` with finite entries (finiteness is not checked for
        traced values).

        >>> standard_toy().check_params(np.array([0.5]))
        Traceback (most recent call last):
        ...
        ValueError: x0=[0.5] has shape (1,); this 2-D valley takes points of shape (2,)
        """
        shape, dtype = np.shape(x), getattr(x, "dtype", None)
        if dtype is None:
            try:
                dtype = np.asarray(x).dtype
            except (TypeError, ValueError):
                dtype = np.dtype(object)
        if shape != self.param_shape:
            raise ValueError(f"{name}={fmt(x)} has shape {shape}; this {self.dim}-D valley takes "
                             f"points of shape {self.param_shape}")
        if not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(f"{name}={fmt(x)} has dtype {dtype}; a point must be floating point "
                             f"(e.g. jnp.asarray({name}, float))")
        if not is_traced(x) and not np.all(np.isfinite(np.asarray(x))):
            raise ValueError(f"{name}={fmt(x)} is not finite")

    def to_local(self, x: Array) -> Array:
        """World coordinates -> local (u, v): z = Q^T x."""
        return x if self.rotation is None else self.rotation.T @ x

    def to_world(self, z: Array) -> Array:
        """Local (u, v) -> world coordinates: x = Q z."""
        return z if self.rotation is None else self.rotation @ z

    # -- the pieces of L ------------------------------------------------------------------
    def river_profile(self, u: Array) -> Array:
        """f(u)."""
        if self.profile == "softplus":
            return _softplus(-u)
        if self.profile == "power":
            return (1.0 + _softplus(u)) ** (-self.alpha)
        if self.profile == "linear":
            return -self.slope * u
        raise ValueError(f"profile={self.profile!r} is unknown; known profiles: {PROFILES}")

    def course_at(self, u: Array) -> Array:
        """c(u) = A sin(k u) (0 for a straight river), shape (d-1,)."""
        if self.course == "straight":
            return jnp.zeros_like(self.amplitude) * u
        return self.amplitude * jnp.sin(self.wavenumber * u)

    def hill_sharpness(self, u: Array) -> Array:
        """a(u) = lambda (1 + kappa tanh(u)) (lambda when not varying), shape (d-1,)."""
        if not self.varying:
            return self.sharpness + jnp.zeros_like(u)
        return self.sharpness * (1.0 + self.sharpening * jnp.tanh(u))

    def _parts(self, x: Array) -> tuple[Array, Array]:
        z = self.to_local(x)
        if self.course == "straight" and not self.varying:
            # Separable valley: evaluate per coordinate with masks instead of slicing out u.
            # Inside a vmapped scan, slicing a scalar out of x and padding its gradient back
            # costs ~5x the whole step once noise is added (see benchmarks/bench_sweep.py).
            is_river = jnp.arange(z.shape[-1]) == 0
            lam = jnp.concatenate([jnp.zeros((1,), self.sharpness.dtype), self.sharpness])
            river = jnp.sum(jnp.where(is_river, self.river_profile(jnp.where(is_river, z, 0.0)),
                                      0.0))
            return river, 0.5 * jnp.sum(lam * z * z)
        u, v = z[0], z[1:]
        delta = v - self.course_at(u)
        return self.river_profile(u), 0.5 * jnp.sum(self.hill_sharpness(u) * delta**2)

    # -- the problem protocol -------------------------------------------------------------
    def loss(self, x: Array) -> Array:
        """L(x) = f(u) + 1/2 sum_i a_i(u) (v_i - c_i(u))^2."""
        river, hill = self._parts(x)
        return river + hill

    def sample_loss(self, x: Array, key: Array | None = None) -> Array:
        """The loss itself: a landscape is deterministic; noise models add gradient noise."""
        del key
        return self.loss(x)

    def decompose(self, x: Array) -> dict[str, Array]:
        """``loss``, ``river_loss``, ``hill_loss`` (summing exactly) and ``river_coordinate``."""
        river, hill = self._parts(x)
        return {"loss": river + hill, "river_loss": river, "hill_loss": hill,
                "river_coordinate": self.river_coordinate(x)}

    def river_coordinate(self, x: Array) -> Array:
        """u: the position along the river."""
        return self.to_local(x)[0]

    def river_point(self, x: Array) -> Array:
        """Phi(x) = Q (u, c(u)): the point of the reference river at the same u."""
        u = self.river_coordinate(x)
        return self.to_world(jnp.concatenate([u[None], self.course_at(u)]))

    def hill_offset(self, x: Array) -> Array:
        """delta = v - c(u), shape (d-1,): the displacement across the river."""
        z = self.to_local(x)
        return z[1:] - self.course_at(z[0])

    def river_loss(self, x: Array) -> Array:
        """R(x) = f(u)."""
        return self._parts(x)[0]

    def hill_loss(self, x: Array) -> Array:
        """H(x) = L(x) - R(x) = 1/2 sum_i a_i(u) delta_i^2."""
        return self._parts(x)[1]

    def init_params(self, u0: float = 0.0) -> Array:
        """The river point at u = u0 (default x0 = (0, c(0)) = origin for a straight river)."""
        u = jnp.asarray(u0, _float())
        return self.to_world(jnp.concatenate([u[None], self.course_at(u)]))

    # -- derived quantities ---------------------------------------------------------------
    def river_gradient(self, u: Array) -> Array:
        """f'(u)."""
        return jax.grad(self.river_profile)(jnp.asarray(u, jnp.result_type(float)))

    def valley_floor(self, us: Array, *, iterations: int = 50) -> Array:
        """The true valley floor near the reference river, in world coordinates, shape (n, d).

        For each u in ``us`` find v with the gradient of L parallel to the Hessian eigenvector of
        lowest curvature: i.e. the minimum of L over the hyperplane orthogonal to that eigenvector.
        Solved by Newton steps on the projected gradient. For a straight river with constant
        sharpness it is the reference river itself; for a meandering river it differs by
        O(|f'| / lambda).
        """
        def floor_at(u):
            z0 = jnp.concatenate([u[None], self.course_at(u)])
            loss_local = lambda z: self.loss(self.to_world(z))

            def newton(z, _):
                g = jax.grad(loss_local)(z)
                h = jax.hessian(loss_local)(z)
                w, vecs = jnp.linalg.eigh(h)
                e = vecs[:, 0]
                p = jnp.eye(z.shape[0]) - jnp.outer(e, e)
                # Solve the projected Newton system in the complement of e.
                hp = p @ h @ p + jnp.outer(e, e)
                step = jnp.linalg.solve(hp, p @ g)
                return z - step, None

            z, _ = jax.lax.scan(newton, z0, None, length=iterations)
            return self.to_world(z)

        return jax.vmap(floor_at)(jnp.asarray(us, jnp.result_type(float)))


def river_valley(dim: int = 2, *, profile: str = "softplus", sharpness=20.0, amplitude=0.0,
                 wavenumber: float = 1.0, sharpening: float = 0.0, slope: float = 0.1,
                 alpha: float = 1.0, rotation=None, course: str | None = None,
                 varying: bool | None = None, key: Array | None = None) -> RiverValley:
    """A validated :class:`RiverValley`.

    Args:
        dim: d >= 2 (one river and d-1 hill directions).
        profile: ``softplus`` (f = log(1 + e^-u)), ``power`` (f = (1 + softplus(u))^-alpha) or
            ``linear`` (f = -slope * u).
        sharpness: lambda_i > 0, a scalar or shape (d-1,).
        amplitude: meander amplitude A_i (scalar or (d-1,)); 0 gives a straight river.
        wavenumber: meander wavenumber k.
        sharpening: kappa in (-1, 1): a_i(u) = lambda_i (1 + kappa tanh(u)).
        slope: s > 0 of the ``linear`` profile.
        alpha: alpha > 0 of the ``power`` profile.
        rotation: None, an orthogonal (d, d) matrix, or ``"random"`` (needs ``key``).
        course: ``"straight"`` or ``"sine"``; default: ``"sine"`` iff any amplitude is nonzero.
            Pass ``"sine"`` to sweep over amplitudes that include 0 (a batch needs one kind).
        varying: whether a(u) varies along the river; default: iff sharpening is nonzero.
        key: PRNG key for ``rotation="random"``.

    Returns:
        The landscape.

    Example:
        >>> v = river_valley(3, sharpness=[10.0, 100.0])
        >>> print(v.dim, [float(s) for s in v.sharpness])
        3 [10.0, 100.0]
    """
    dim = check_int("dim", dim, lo=2)
    check_choice("profile", profile, PROFILES, what="profiles")
    h = dim - 1
    check_real("sharpness", sharpness, lo=0.0, lo_open=True, what="a hill curvature lambda > 0")
    _check_length("sharpness", sharpness, h, dim)
    check_real("amplitude", amplitude)
    _check_length("amplitude", amplitude, h, dim)
    for name, value in (("wavenumber", wavenumber), ("sharpening", sharpening),
                        ("slope", slope), ("alpha", alpha)):
        check_scalar(name, value)
    check_real("wavenumber", wavenumber)
    check_real("sharpening", sharpening, lo=-1.0, hi=1.0, lo_open=True, hi_open=True,
               what="|kappa| < 1 keeps the hills convex")
    check_real("slope", slope, lo=0.0, lo_open=True)
    check_real("alpha", alpha, lo=0.0, lo_open=True)
    concrete = not is_traced(amplitude)
    if course is None:
        course = "sine" if concrete and np.any(np.asarray(amplitude) != 0) else "straight"
    check_choice("course", course, COURSES, what="courses")
    if course == "straight" and concrete and np.any(np.asarray(amplitude) != 0):
        raise ValueError(f"amplitude={fmt(amplitude)} needs course='sine' (a straight river has "
                         "none)")
    if varying is None:
        varying = not (not is_traced(sharpening) and np.all(np.asarray(sharpening) == 0))
    elif not isinstance(varying, (bool, np.bool_)):
        raise ValueError(f"varying={varying!r} must be None, True or False")
    sharp = jnp.broadcast_to(jnp.asarray(sharpness, _float()), (h,))
    amp = jnp.broadcast_to(jnp.asarray(amplitude, _float()), (h,))
    if isinstance(rotation, str):
        if rotation != "random":
            raise ValueError(f"rotation={rotation!r} must be None, 'random' or a (d, d) matrix")
        if key is None:
            raise ValueError("rotation='random' needs key=jax.random.key(seed)")
        check_key("key", key)
        rotation = random_rotation(dim, key=key)
    if rotation is not None:
        check_real("rotation", rotation)
        q = np.asarray(rotation, dtype=float)
        if q.shape != (dim, dim):
            raise ValueError(f"rotation has shape {q.shape}; expected ({dim}, {dim})")
        if not np.allclose(q.T @ q, np.eye(dim), atol=ORTHOGONALITY_ATOL):
            raise ValueError(f"rotation must be orthogonal (Q^T Q = I to {ORTHOGONALITY_ATOL:g})")
        rotation = jnp.asarray(q, _float())
    return build(RiverValley, sharpness=sharp, amplitude=amp,
                 wavenumber=jnp.asarray(wavenumber, _float()),
                 sharpening=jnp.asarray(sharpening, _float()),
                 slope=jnp.asarray(slope, _float()),
                 alpha=jnp.asarray(alpha, _float()), rotation=rotation, profile=profile,
                 course=course, varying=bool(varying))


class ToySetup(NamedTuple):
    """The numbers of THEORY.md's standard toy, in one place (figures, notebooks and tests read
    them from here instead of retyping them)."""

    #: lambda, the hill curvature.
    sharpness: float = 20.0
    #: sigma, the hill-only noise standard deviation (``rv.noise.hill_only(sigma)``).
    sigma: float = 1.0
    #: The peak learning rate (eta lambda = 1.2: the hill offset bounces, well inside 2 / lambda).
    peak_value: float = 0.06
    #: The run length T.
    num_steps: int = 4000


#: The standard toy's setup: ``standard_toy()`` with ``noise.hill_only(STANDARD_TOY.sigma)``,
#: x0 = (0, 0), ``STANDARD_TOY.peak_value`` and ``STANDARD_TOY.num_steps``.
STANDARD_TOY = ToySetup()


def standard_toy(**overrides) -> RiverValley:
    """THEORY.md's standard toy: 2-D, softplus river, straight course, lambda = 20
    (:data:`STANDARD_TOY` holds its noise, peak LR and length).

    >>> float(standard_toy().sharpness[0]) == STANDARD_TOY.sharpness
    True
    """
    kwargs = dict(dim=2, profile="softplus", sharpness=STANDARD_TOY.sharpness)
    kwargs.update(overrides)
    return river_valley(**kwargs)


def valley(dim: int, *, lambda_min: float = 1.0, lambda_max: float = 100.0, **kwargs) -> RiverValley:
    """A d-dimensional valley with hill sharpness log-spaced in [lambda_min, lambda_max].

    Example:
        >>> v = valley(4, lambda_min=1.0, lambda_max=100.0)
        >>> print([round(float(s), 2) for s in v.sharpness])
        [1.0, 10.0, 100.0]
    """
    dim = check_int("dim", dim, lo=2)
    for name, value in (("lambda_min", lambda_min), ("lambda_max", lambda_max)):
        check_scalar(name, value)
        check_real(name, value, lo=0.0, lo_open=True, what="a hill curvature")
    if "sharpness" in kwargs:
        raise ValueError("valley() sets the sharpness from lambda_min / lambda_max; pass "
                         "sharpness to river_valley() instead")
    if lambda_max < lambda_min:
        raise ValueError(f"lambda_max={lambda_max} must be >= lambda_min={lambda_min}")
    sharp = np.geomspace(lambda_min, lambda_max, dim - 1)
    return river_valley(dim, sharpness=sharp, **kwargs)


def random_rotation(dim: int, *, key: Array) -> Array:
    """A Haar-random orthogonal (dim, dim) matrix (QR of a Gaussian matrix, signs fixed)."""
    dim = check_int("dim", dim, lo=1)
    check_key("key", key)
    a = jax.random.normal(key, (dim, dim), _float())
    q, r = jnp.linalg.qr(a)
    return q * jnp.sign(jnp.diag(r))[None, :]


def _check_landscape(landscape: Any) -> None:
    if not isinstance(landscape, RiverValley):
        raise ValueError(f"landscape={fmt(landscape)} must be a RiverValley (build one with "
                         "rivervalley.landscapes.river_valley)")


def stability_limit(landscape: RiverValley) -> float:
    """2 / max_i lambda_i: GD on the hills diverges above this learning rate (with sharpening
    kappa, the largest curvature along the river is lambda_max (1 + |kappa|)). For a stacked
    valley, the limit of its sharpest member."""
    _check_landscape(landscape)
    return 2.0 / float(np.max(np.asarray(landscape.sharpness)) * (1 + float(np.max(np.abs(
        np.asarray(landscape.sharpening))))))


def check_stable(landscape: RiverValley, peak_value: float) -> None:
    """Raise ``ValueError`` when ``peak_value`` is beyond the stability limit 2 / lambda_max.

    ``peak_value`` is a learning rate: a finite real number >= 0 (not a bool, not NaN).

    >>> check_stable(standard_toy(), float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: peak_value=nan must be finite, in [0, inf) (a learning rate)
    """
    _check_landscape(landscape)
    check_scalar("peak_value", peak_value)
    check_real("peak_value", peak_value, lo=0.0, what="a learning rate")
    limit = stability_limit(landscape)
    if peak_value >= limit:
        raise ValueError(f"peak_value={peak_value} is beyond the stability limit 2/lambda_max = "
                         f"{limit:.4g}: GD on the sharpest hill diverges (eta*lambda >= 2)")


__all__ = ["PROFILES", "COURSES", "RiverValley", "river_valley", "ToySetup", "STANDARD_TOY",
           "standard_toy", "valley", "random_rotation",
           "stability_limit", "check_stable"]
