"""Gradient-noise models: distribution, determinism, prefix property, frames."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

import rivervalley as rv
from rivervalley import noise as N


@pytest.mark.parametrize("rng", N.RNGS)
def test_normal_is_standard_normal(rng):
    key = jax.random.key(3)
    z = np.asarray(jax.vmap(lambda t: N.normal(t, (4096,), key=key, rng=rng))(jnp.arange(64))).ravel()
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    assert scipy.stats.kstest(z, "norm").pvalue > 1e-3
    # neighbouring steps and coordinates are uncorrelated
    a = np.asarray(N.normal(10, (20000,), key=key, rng=rng))
    b = np.asarray(N.normal(11, (20000,), key=key, rng=rng))
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(a.size)
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 4 / np.sqrt(a.size)


def _words_and_reference():
    """Words covering every 97th of the 2^24 outcomes plus the extremes, and Phi^-1 in float64."""
    k = np.r_[np.arange(0, 1 << 24, 97), 0, 1, (1 << 23) - 1, 1 << 23, (1 << 24) - 1]
    k = k.astype(np.uint32)
    words = (k << 8) | np.random.default_rng(0).integers(0, 256, k.size).astype(np.uint32)
    q = ((k & ((1 << 23) - 1)) + 0.5) / 2.0 ** 24
    return words, np.where(k < (1 << 23), 1.0, -1.0) * scipy.special.ndtri(q)


def _giles_in_float64(words):
    """The float32 transform's formula evaluated in float64, and the condition number
    sum |a_i| |c|^i / |p(c)| of its Horner polynomial at every argument."""
    k = words >> 8
    q = ((k & ((1 << 23) - 1)).astype(np.float64) + 0.5) / 2.0 ** 24
    x = 1.0 - 2.0 * q
    w = -np.log(2.0 * q * (1.0 + x))
    central = w < 5.0
    c = np.where(central, w - 2.5, np.sqrt(w) - 3.0)
    p, absp = np.zeros_like(c), np.zeros_like(c)
    for a_c, a_t in zip(N._ERFINV_CENTRAL, N._ERFINV_TAIL):
        a = np.where(central, a_c, a_t)
        p, absp = a + p * c, np.abs(a) + absp * np.abs(c)
    z = np.sqrt(2.0) * p * x
    return np.where(k < (1 << 23), -z, z), absp / np.abs(p)


def test_hash_normal_transform_is_finite_symmetric_and_accurate():
    # the old transform sent the top word to u = 1.0 and z = +inf (one draw in 2^24)
    words, ref = _words_and_reference()
    z = np.asarray(N._bits_to_normal(jnp.asarray(words), jnp.float32), np.float64)
    assert np.isfinite(z).all() and np.abs(z).max() == pytest.approx(5.42, abs=0.01)
    # Tolerance from the formula and float32, not from one machine's output:
    # - Giles' erfinv itself (the same formula in float64) is within 1.05 eps32 of Phi^-1;
    # - float32 rounding: the 9-term Horner evaluation errs by <= 2 * 9 * u * cond with its
    #   condition number cond <= 2.5 on these arguments (both checked below in float64), plus
    #   about 6 more roundings (1 + x, 2q(1 + x), log, sqrt, * x, * sqrt 2), u = eps32 / 2.
    eps, u = float(np.finfo(np.float32).eps), float(np.finfo(np.float32).eps) / 2
    approx, cond = _giles_in_float64(words)
    assert np.max(np.abs(approx - ref) / np.abs(ref)) < 1.05 * eps
    assert cond.max() < 2.5
    np.testing.assert_allclose(z, ref, rtol=1.05 * eps + (2 * 9 * 2.5 + 6) * u, atol=0)
    # the two halves are mirror images: sign bit flipped -> exactly -z
    flipped = np.asarray(N._bits_to_normal(jnp.asarray(words ^ np.uint32(1 << 31)), jnp.float32))
    assert np.array_equal(flipped, -z.astype(np.float32))
    with jax.enable_x64(True):
        z64 = np.asarray(N._bits_to_normal(jnp.asarray(words), jnp.float64))
    # float64 erfinv against scipy's ndtri: both accurate to a few eps64 (2.2e-16)
    np.testing.assert_allclose(z64, ref, atol=1e-12, rtol=1e-12)


def test_hash_generator_is_a_pure_function_of_key_and_step():
    k = jax.random.key(5)
    a = N.normal(7, (16,), key=k)
    assert np.array_equal(a, N.normal(7, (16,), key=k))
    assert not np.array_equal(a, N.normal(8, (16,), key=k))
    assert not np.array_equal(a, N.normal(7, (16,), key=jax.random.key(6)))
    assert not np.array_equal(a, N.normal(7, (16,), key=k, stream=1))
    # jit gives the same bits
    assert np.array_equal(a, jax.jit(lambda t: N.normal(t, (16,), key=k))(7))


def test_hill_only_noise_lies_across_the_river_in_a_rotated_valley():
    # float64 (valley, rotation and draws): Q^T (Q z) has no river component up to a few eps64
    # times |z| <= 2 * 5.42 * 2 (the exactness is the point; float32 would only test rounding)
    with jax.enable_x64(True):
        v = rv.landscapes.valley(4, rotation="random", key=jax.random.key(0))
        noise = N.hill_only(2.0)
        xs = jax.vmap(lambda t: noise.sample(jax.random.key(1), t, v, jnp.zeros(4)))(
            jnp.arange(2000))
        local = np.asarray(jax.vmap(v.to_local)(xs))
    assert local.dtype == np.float64
    np.testing.assert_allclose(local[:, 0], 0.0, atol=1e-12)
    assert abs(local[:, 1:].var() - 4.0) < 4 * 4.0 * np.sqrt(2 / local[:, 1:].size)


def test_student_t_and_loss_scaled_variances():
    v = rv.landscapes.standard_toy()
    x = jnp.array([0.0, 1.0])
    t = N.student_t(0.5, df=5.0)
    xs = np.asarray(jax.vmap(lambda s: t.sample(jax.random.key(2), s, v, x))(jnp.arange(20000)))
    # t(5) has kurtosis 9: standard error of the variance is about sqrt(8/n) * var
    assert abs(xs.var() - 0.25) < 4 * 0.25 * np.sqrt(8 / xs.size)
    ls = N.loss_scaled(0.5)
    ys = np.asarray(jax.vmap(lambda s: ls.sample(jax.random.key(2), s, v, x))(jnp.arange(5000)))
    assert abs(ys.var() / (0.25 * float(v.loss(x))) - 1) < 4 * np.sqrt(2 / ys.size)


@pytest.mark.parametrize("factory, kwargs, match", [
    (N.isotropic, dict(sigma=-1.0), "sigma=-1.0"),
    (N.hill_only, dict(sigma=1.0, sigma_river=float("inf")), "sigma_river=inf"),
    (N.student_t, dict(sigma=1.0, df=2.0), "df=2.0"),
    (N.isotropic, dict(sigma=1.0, rng="mt19937"), "rng='mt19937'.*hash, threefry"),
])
def test_validation(factory, kwargs, match):
    with pytest.raises(ValueError, match=match):
        factory(**kwargs)


def test_hill_only_needs_a_landscape():
    with pytest.raises(TypeError, match=r"HillOnly noise needs a river-valley problem.*RiverFrame"):
        N.hill_only(1.0).sample(jax.random.key(0), 0, object(), jnp.zeros(2))
