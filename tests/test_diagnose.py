"""diagnose: on synthetic valleys, where decompose gives the exact split, both estimates (decay
probe and curvature) agree with the exact hill loss within 10% across the stable phase."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rivervalley as rv
from rivervalley import diagnose as dg
from rivervalley import problems

SEEDS = 128
CHECKPOINTS = [1000, 2000, 3000]


def _assert_within_10_percent(est, exact, what):
    """Paired over seeds: the mean error plus 4 standard errors of it stays under 10% of the
    mean exact hill loss, i.e. the 10% claim holds at 4 sigma (the Monte Carlo error bar of the
    difference, not of each estimate: the estimates are strongly correlated with the exact value
    seed by seed)."""
    diff = est - exact
    bias = diff.mean(axis=0)
    se = diff.std(axis=0, ddof=1) / np.sqrt(diff.shape[0])
    scale = exact.mean(axis=0)
    assert np.all(scale > 0)
    worst = (np.abs(bias) + 4 * se) / scale
    assert np.all(worst < 0.10), (what, np.round(bias / scale, 4), np.round(se / scale, 4))


@pytest.fixture(scope="module")
def toy_diagnosis():
    toy = rv.landscapes.standard_toy()
    return dg.diagnose(toy, toy.init_params(), rv.schedules.constant(0.06),
                       checkpoints=CHECKPOINTS, probe_lengths=(25, 100), probe_shape="linear",
                       noise=rv.noise.hill_only(1.0), seeds=SEEDS, k=1, average_steps=400,
                       key=jax.random.key(0), progress=False)


def test_toy_both_estimates_match_the_exact_hill_loss(toy_diagnosis):
    d = toy_diagnosis
    # the exact split is THEORY.md's stationary hill loss eta sigma^2 / (2 (2 - eta lambda))
    # = 0.0375 (per-seed chi-square spread: 4 standard errors of the mean at 128 seeds ~ 18%)
    np.testing.assert_allclose(d.exact_hill.mean(0), 0.0375, rtol=0.18)
    np.testing.assert_allclose(d.eigenvalues[..., 0], 20.0, rtol=1e-4)  # the hill's sharpness
    _assert_within_10_percent(d.hill_curvature, d.exact_hill, "curvature")
    _assert_within_10_percent(d.hill_probe[..., 1], d.exact_hill, "probe D=100")


def test_a_too_short_probe_leaves_hill_loss_behind(toy_diagnosis):
    h = toy_diagnosis.hill_probe
    gap = h[..., 1] - h[..., 0]  # D=100 minus D=25, paired by seed
    se = gap.std(0, ddof=1) / np.sqrt(gap.shape[0])
    assert np.all(gap.mean(0) > 4 * se)


def test_rotated_valley_with_three_hills():
    # the diagnosis does not know the axes: a random rotation, sharpness 2, 6.3 and 20; the slow
    # hill (eta lambda = 0.12) needs a longer probe
    v = rv.landscapes.valley(4, lambda_min=2.0, lambda_max=20.0, rotation="random",
                             key=jax.random.key(5))
    d = dg.diagnose(v, v.init_params(), rv.schedules.constant(0.06), checkpoints=CHECKPOINTS,
                    probe_lengths=(25, 400), noise=rv.noise.hill_only(1.0), seeds=SEEDS, k=3,
                    average_steps=400, key=jax.random.key(1), progress=False)
    np.testing.assert_allclose(np.sort(d.eigenvalues.mean((0, 1))), [2.0, 40 ** 0.5, 20.0],
                               rtol=1e-3)
    _assert_within_10_percent(d.hill_curvature, d.exact_hill, "curvature")
    _assert_within_10_percent(d.hill_probe[..., 1], d.exact_hill, "probe D=400")
    # a 25-step probe misses a sizeable part of the slow hill's loss
    assert np.all(d.hill_probe[..., 0].mean(0) < 0.9 * d.exact_hill.mean(0))


def test_from_loss_regression_excess_is_the_curvature_hill():
    # SGD on least squares: no river, the whole excess over the minimum is hill; with k =
    # the number of parameters the quadratic form from the running average is that excess
    # (the average sits on the minimum to O(1/window))
    kx, kw = jax.random.split(jax.random.key(2))
    x = jax.random.normal(kx, (512, 3))
    y = x @ jnp.array([1.0, -2.0, 0.5]) + 0.5 * jax.random.normal(kw, (512,))
    mse = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)  # noqa: E731
    prob = problems.from_loss(mse, jnp.zeros(3), (x, y), batch_size=4)
    w_star = jnp.linalg.lstsq(x, y)[0]
    d = dg.diagnose(prob, jnp.zeros(3), rv.schedules.constant(0.2), checkpoints=[600, 1200],
                    probe_lengths=(200,), seeds=64, k=3,
                    average_steps=300, key=jax.random.key(0), progress=False)
    assert np.all(np.isnan(d.exact_hill))
    excess = d.loss - float(mse(w_star, (x, y)))
    _assert_within_10_percent(d.hill_curvature, excess, "curvature vs exact excess")
    # the Hessian of a mean squared error is 2 X^T X / N
    np.testing.assert_allclose(np.sort(d.eigenvalues[0, 0]),
                               np.linalg.eigvalsh(2 * np.asarray(x.T @ x) / 512), rtol=1e-3)
    assert "hill (probe 200)" in d.table()


@pytest.mark.parametrize("kwargs, match", [
    (dict(checkpoints=[50]), r"checkpoint 50 minus average_steps=100 falls before step 0"),
    (dict(checkpoints=[200, 250]), r"checkpoint 250 minus average_steps=100 falls before the "
                                   r"previous checkpoint \(200\)"),
    (dict(checkpoints=[300, 200]), r"checkpoints=\[300, 200\] must be strictly increasing"),
    (dict(checkpoints=[200], probe_lengths=(0,)), r"probe_lengths entry=0 is outside"),
    (dict(checkpoints=[200], k=3), r"k=3 is outside the valid range: an integer in \[1, 2\]"),
    (dict(checkpoints=[200], average_every=3), r"average_every=3 must divide average_steps=100"),
    (dict(checkpoints=[200], probe_shape="inverse"), r"min_ratio"),
])
def test_validation(kwargs, match):
    toy = rv.landscapes.standard_toy()
    with pytest.raises(ValueError, match=match):
        dg.diagnose(toy, toy.init_params(), rv.schedules.constant(0.06), key=jax.random.key(0),
                    **kwargs)


def test_the_problem_is_checked_first():
    class NoDecompose:
        def loss(self, x):
            return jnp.sum(x ** 2)

        def sample_loss(self, x, key):
            return self.loss(x)

    with pytest.raises(TypeError, match=r"has no method 'decompose'"):
        dg.diagnose(NoDecompose(), jnp.zeros(2), rv.schedules.constant(0.1), checkpoints=[200],
                    key=jax.random.key(0))
