"""Hessian tools: HVP against jax.hessian, Lanczos against dense eigh, sharpness, displacement split."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import rivervalley as rv
from rivervalley import bigram as bg
from rivervalley import hessian as hs


def _dense_hessian(fn, params):
    flat, unravel = ravel_pytree(params)
    return jax.jit(jax.hessian(lambda f: fn(unravel(f))))(flat)


def _models(v=6, d=3):
    data = bg.make_data(vocab_size=v, det_fraction=0.5, key=jax.random.key(3))
    table = bg.TableModel(data, batch_size=8)
    fact = bg.FactorizedModel(data, width=d, batch_size=8)
    pt = table.init_params(key=jax.random.key(4), scale=1.0)
    pf = fact.init_params(key=jax.random.key(5), scale=1.0)
    return (table, pt), (fact, pf)


def test_hvp_matches_dense_hessian():
    with jax.enable_x64(True):
        (_, _), (fact, pf) = _models()
        h = _dense_hessian(fact.loss, pf)
        v = jax.tree_util.tree_map(lambda a: jax.random.normal(jax.random.key(9), a.shape), pf)
        got = ravel_pytree(hs.hvp(fact.loss, pf, v))[0]
        np.testing.assert_allclose(got, h @ ravel_pytree(v)[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("which", ["table", "factorized"])
def test_lanczos_matches_eigh(which):
    with jax.enable_x64(True):
        (table, pt), (fact, pf) = _models()
        problem, params = (table, pt) if which == "table" else (fact, pf)
        h = _dense_hessian(problem.loss, params)
        dense = np.linalg.eigvalsh(np.asarray(h))[::-1]
        dim = h.shape[0]
        # Full Krylov space: the whole spectrum (with multiplicities) to machine precision.
        w, vecs = hs.top_eigenpairs(problem, params, 5, num_iters=dim, key=jax.random.key(1))
        np.testing.assert_allclose(w, dense[:5], rtol=1e-9, atol=1e-12)
        # Eigenvectors: small residual, orthonormal.
        vk = jax.vmap(lambda t: ravel_pytree(t)[0])(vecs)
        res = vk @ h - w[:, None] * vk
        assert float(jnp.max(jnp.abs(res))) < 1e-8 * float(dense[0])
        np.testing.assert_allclose(vk @ vk.T, np.eye(5), atol=1e-9)
        # A short Krylov space still gets the top two eigenvalues.
        w2, _ = hs.top_eigenpairs(problem, params, 2, num_iters=dim // 2 + 4, key=jax.random.key(2))
        np.testing.assert_allclose(w2, dense[:2], rtol=1e-6)


def test_lanczos_finds_multiplicities_after_breakdown():
    with jax.enable_x64(True):
        a = jnp.diag(jnp.array([3.0, 3.0, 3.0, 1.0, 1.0, 0.5]))
        w, v = hs.lanczos_top_k(lambda x: a @ x, 6, 4, num_iters=6, key=jax.random.key(0))
        np.testing.assert_allclose(w, [3.0, 3.0, 3.0, 1.0], atol=1e-10)
        np.testing.assert_allclose(v @ v.T, np.eye(4), atol=1e-10)


def test_lanczos_validates_arguments():
    mv = lambda x: x  # noqa: E731
    with pytest.raises(ValueError, match="num_iters=9"):
        hs.lanczos_top_k(mv, 4, 1, num_iters=9, key=jax.random.key(0))
    with pytest.raises(ValueError, match="k=5"):
        hs.lanczos_top_k(mv, 4, 5, num_iters=4, key=jax.random.key(0))


def test_sharpness_along_matches_dense_per_record():
    with jax.enable_x64(True):
        (table, _), _ = _models()
        stacked = {"W": jax.random.normal(jax.random.key(7), (3, 6, 6)) * jnp.arange(3.0)[:, None, None]}
        s = hs.sharpness_along(table, stacked, k=2, num_iters=36)
        for i in range(3):
            p = {"W": stacked["W"][i]}
            dense = np.linalg.eigvalsh(np.asarray(_dense_hessian(table.loss, p)))[::-1][:2]
            np.testing.assert_allclose(s[i], dense, rtol=1e-9)
        # For the table model the top eigenvalue is the largest per-row curvature.
        np.testing.assert_allclose(s[2, 0], jnp.max(table.row_curvature({"W": stacked["W"][2]})), rtol=1e-9)


def test_split_displacement_projects_onto_top_eigenvectors():
    with jax.enable_x64(True):
        _, (fact, pf) = _models()
        pb = jax.tree_util.tree_map(lambda a: a + 0.1 * jax.random.normal(jax.random.key(8), a.shape), pf)
        mtn, riv = hs.split_displacement(fact, pf, pb, 3, num_iters=36)
        d = ravel_pytree(pb)[0] - ravel_pytree(pf)[0]
        fm, fr = ravel_pytree(mtn)[0], ravel_pytree(riv)[0]
        np.testing.assert_allclose(fm + fr, d, atol=1e-12)
        assert abs(float(fm @ fr)) < 1e-10
        h = np.asarray(_dense_hessian(fact.loss, pf))
        w, u = np.linalg.eigh(h)
        top = u[:, -3:]
        np.testing.assert_allclose(fm, top @ (top.T @ np.asarray(d)), atol=1e-8)


class _Quad:
    """0.5 x^T diag(10, 1) x: Hessian eigenvalues 10 and 1 everywhere."""

    param_shape = (2,)

    def loss(self, x):
        return 0.5 * (10.0 * x[0] ** 2 + x[1] ** 2)


class _BareQuad:
    """The same quadratic, stating no parameter shape."""

    def loss(self, x):
        return 0.5 * (10.0 * x[0] ** 2 + x[1] ** 2)


def test_sharpness_along_one_point_is_the_closed_form():
    """One point was taken as a stack of scalar records: the Hessian of loss at a scalar p is
    sum(lambda) = 11 per coordinate. Now one point gives (10, 1), a stack (n, k)."""
    with jax.enable_x64(True):
        x = jnp.array([0.3, -0.2])
        one = hs.sharpness_along(_Quad(), x, k=2, num_iters=2)
        assert one.shape == (2,)
        np.testing.assert_allclose(one, [10.0, 1.0], rtol=1e-12)
        many = hs.sharpness_along(_Quad(), jnp.stack([x, 2 * x, 3 * x]), k=1, num_iters=2)
        assert many.shape == (3, 1)
        np.testing.assert_allclose(many[:, 0], 10.0, rtol=1e-12)
        # a problem without param_shape: an error that says how to decide, then stacked= decides
        with pytest.raises(ValueError, match=r"cannot tell whether params .* is one point or a "
                                             r"stack of records.*stacked=True"):
            hs.sharpness_along(_BareQuad(), x)
        np.testing.assert_allclose(hs.sharpness_along(_BareQuad(), x, k=2, num_iters=2,
                                                      stacked=False), [10.0, 1.0], rtol=1e-12)
        with pytest.raises(ValueError, match=r"params has leaf shapes \[\(3,\)\]: neither one "
                                             r"point"):
            hs.sharpness_along(_Quad(), jnp.zeros(3))


def test_sharpness_along_a_landscape_and_the_bigram_table():
    with jax.enable_x64(True):
        v = rv.landscapes.river_valley(3, sharpness=[10.0, 4.0], profile="linear")
        x = jnp.array([0.5, 0.1, -0.1])  # a linear river: Hessian diag(0, 10, 4) everywhere
        np.testing.assert_allclose(hs.sharpness_along(v, x, k=2), [10.0, 4.0], rtol=1e-12)
        np.testing.assert_allclose(hs.sharpness_along(v, jnp.stack([x, x]), k=1)[:, 0], 10.0,
                                   rtol=1e-12)
        (table, pt), _ = _models()
        one = hs.sharpness_along(table, pt, k=1, num_iters=36)
        dense = np.linalg.eigvalsh(np.asarray(_dense_hessian(table.loss, pt)))[-1]
        np.testing.assert_allclose(one, [dense], rtol=1e-9)
