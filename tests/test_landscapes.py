"""River-valley landscapes: the exact decomposition, profiles, rotation, validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rivervalley as rv
from rivervalley import landscapes as L

KEY = jax.random.key(0)


def _valleys():
    return [
        L.standard_toy(),
        L.river_valley(3, profile="power", sharpness=[5.0, 50.0], alpha=0.5),
        L.river_valley(4, profile="linear", slope=0.3, amplitude=[0.5, 0.0, 0.2], wavenumber=2.0),
        L.valley(5, lambda_min=1.0, lambda_max=100.0, sharpening=0.5, rotation="random", key=KEY),
    ]


@pytest.mark.parametrize("valley", _valleys(), ids=["toy", "power", "meander", "rotated"])
def test_loss_is_river_plus_hill_exactly(valley):
    xs = 3.0 * jax.random.normal(jax.random.key(1), (64, valley.dim))
    parts = jax.vmap(valley.decompose)(xs)
    np.testing.assert_allclose(parts["loss"], parts["river_loss"] + parts["hill_loss"],
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(valley.loss)(xs), parts["loss"], rtol=1e-6)
    assert np.all(np.asarray(parts["hill_loss"]) >= 0.0)


def test_formulas_of_the_profiles():
    u = jnp.array(0.7)
    x = jnp.array([0.7, 0.0])
    np.testing.assert_allclose(L.standard_toy().river_loss(x), np.log1p(np.exp(-0.7)), rtol=1e-6)
    p = L.river_valley(2, profile="power", alpha=0.5)
    np.testing.assert_allclose(p.river_profile(u), (1 + np.log1p(np.exp(0.7))) ** -0.5, rtol=1e-6)
    lin = L.river_valley(2, profile="linear", slope=0.3)
    np.testing.assert_allclose(lin.river_profile(u), -0.21, rtol=1e-6)
    # hill loss: 1/2 * a(u) * (v - c(u))^2 with a meander and sharpening
    m = L.river_valley(2, sharpness=10.0, amplitude=0.5, wavenumber=2.0, sharpening=0.4)
    x = jnp.array([0.3, 1.0])
    a = 10.0 * (1 + 0.4 * np.tanh(0.3))
    np.testing.assert_allclose(m.hill_loss(x), 0.5 * a * (1.0 - 0.5 * np.sin(0.6)) ** 2, rtol=1e-6)


def test_river_gradient_is_the_sigmoid_everywhere_including_zero():
    """f = softplus(-u) has f'(u) = -sigmoid(-u); at u = 0 that is -1/2 (a run started on the
    river at the origin must move)."""
    us = jnp.array([-50.0, -3.0, -1e-3, 0.0, 1e-3, 2.0, 80.0])
    references = {"softplus": lambda u: jax.nn.softplus(-u),
                  "power": lambda u: (1 + jax.nn.softplus(u)) ** -0.5}
    for profile, ref in references.items():
        v = L.river_valley(2, profile=profile, alpha=0.5)
        np.testing.assert_allclose(jax.vmap(jax.grad(v.river_profile))(us),
                                   jax.vmap(jax.grad(ref))(us), rtol=1e-5, atol=1e-7)
    toy = L.standard_toy()
    np.testing.assert_allclose(jax.grad(toy.loss)(jnp.zeros(2)), [-0.5, 0.0], atol=1e-7)
    # second derivative (used by the theory's river-noise correction): sigmoid'(0) = 1/4
    np.testing.assert_allclose(jax.grad(jax.grad(toy.river_profile))(0.0), 0.25, rtol=1e-6)


def test_rotation_is_an_isometry_of_the_loss():
    base = L.valley(4, lambda_min=2.0, lambda_max=40.0, amplitude=0.3)
    q = L.random_rotation(4, key=KEY)
    rot = L.river_valley(4, sharpness=base.sharpness, amplitude=0.3, rotation=q)
    z = jax.random.normal(jax.random.key(2), (4,))
    np.testing.assert_allclose(rot.loss(q @ z), base.loss(z), rtol=1e-5)
    np.testing.assert_allclose(rot.river_coordinate(q @ z), z[0], rtol=1e-5, atol=1e-6)
    # river point + rotated hill offset reconstructs x
    x = q @ z
    offset = rot.to_world(jnp.concatenate([jnp.zeros(1), rot.hill_offset(x)]))
    np.testing.assert_allclose(rot.river_point(x) + offset, x, atol=1e-5)


def test_valley_is_log_spaced():
    v = L.valley(5, lambda_min=1.0, lambda_max=1000.0)
    np.testing.assert_allclose(v.sharpness, [1.0, 10.0, 100.0, 1000.0], rtol=1e-5)


def test_valley_floor_straight_and_meandering():
    straight = L.standard_toy()
    us = jnp.linspace(-1, 2, 5)
    np.testing.assert_allclose(straight.valley_floor(us)[:, 1], 0.0, atol=1e-6)
    with jax.enable_x64(True):
        m = L.river_valley(2, sharpness=20.0, amplitude=1.0, wavenumber=1.0)
        floor = m.valley_floor(jnp.linspace(-1.0, 2.0, 7, dtype=jnp.float64))
        g = jax.vmap(jax.grad(m.loss))(floor)
        _, vecs = jnp.linalg.eigh(jax.vmap(jax.hessian(m.loss))(floor))
        # the gradient is parallel to the flattest Hessian direction
        cos = jnp.abs(jnp.sum(g * vecs[:, :, 0], axis=1)) / jnp.linalg.norm(g, axis=1)
        assert float(cos.min()) > 1 - 1e-8
        # and it sits O(|f'|/lambda) away from the reference river
        gap = np.abs(np.asarray(floor[:, 1] - m.course_at(floor[:, 0])))
        assert 1e-4 < gap.max() < 0.1


@pytest.mark.parametrize("kwargs, match", [
    (dict(dim=1), "dim=1"),
    (dict(profile="cubic"), "profile='cubic'.*softplus, power, linear"),
    (dict(sharpness=-1.0), "sharpness=-1.0"),
    (dict(sharpening=1.5), "sharpening=1.5"),
    (dict(slope=0.0, profile="linear"), "slope=0.0"),
    (dict(alpha=float("nan")), "alpha=nan"),
    (dict(rotation="random"), "key"),
    (dict(rotation=np.ones((2, 2))), "orthogonal"),
])
def test_validation_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L.river_valley(**kwargs)


def test_stability_check():
    v = L.standard_toy()
    assert abs(L.stability_limit(v) - 0.1) < 1e-9
    L.check_stable(v, 0.06)
    with pytest.raises(ValueError, match="peak_value=0.12.*stability limit"):
        L.check_stable(v, 0.12)


def test_landscape_is_a_pytree_that_vmaps_over_sharpness():
    vs = rv.stack([L.river_valley(2, sharpness=s) for s in (1.0, 10.0, 100.0)])
    losses = jax.vmap(lambda v: v.loss(jnp.array([0.0, 1.0])))(vs)
    np.testing.assert_allclose(losses, np.log(2) + 0.5 * np.array([1.0, 10.0, 100.0]), rtol=1e-6)


# -- argument checks (issue 11) ----------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(dim=3, sharpness=[1.0, 2.0, 3.0]), r"sharpness=\[1.0, 2.0, 3.0\] has shape \(3,\).*\(2,\)"),
    (dict(dim=3, sharpness=[10.0]), r"sharpness=\[10.0\] has shape \(1,\)"),
    (dict(dim=3, amplitude=[0.1, 0.2, 0.3]), r"amplitude=.* has shape \(3,\)"),
    (dict(dim=2, sharpness=True), r"sharpness=True must be a real number, not a bool"),
    (dict(dim=2, sharpness=float("nan")), r"sharpness=nan must be finite"),
    (dict(dim=2, sharpness=[[1.0]]), r"sharpness=\[\[1.0\]\] has shape \(1, 1\)"),
    (dict(dim=True), r"dim=True"),
    (dict(dim=2.0), r"dim=2.0"),
    (dict(amplitude=float("inf")), r"amplitude=inf must be finite"),
    (dict(wavenumber=[1.0, 2.0]), r"wavenumber=\[1.0, 2.0\] must be a scalar"),
    (dict(wavenumber=False), r"wavenumber=False must be a real number"),
    (dict(sharpening=-1.0), r"sharpening=-1.0"),
    (dict(slope=-0.1, profile="linear"), r"slope=-0.1"),
    (dict(alpha=True), r"alpha=True"),
    (dict(varying="yes"), r"varying='yes'"),
    (dict(rotation="random", key=0), r"key=0 is not a PRNG key"),
    (dict(rotation=np.full((2, 2), np.nan)), r"rotation=.* must be finite"),
])
def test_factory_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L.river_valley(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(lambda_min=-1.0), r"lambda_min=-1.0"),
    (dict(lambda_max=float("nan")), r"lambda_max=nan"),
    (dict(lambda_min=True), r"lambda_min=True"),
    (dict(lambda_min=10.0, lambda_max=1.0), r"lambda_max=1.0 must be >= lambda_min=10.0"),
    (dict(sharpness=3.0), r"valley\(\) sets the sharpness"),
])
def test_valley_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L.valley(3, **kwargs)


@pytest.mark.parametrize("peak, match", [
    (float("nan"), r"peak_value=nan must be finite"),
    (-0.01, r"peak_value=-0.01 is outside the valid range"),
    (True, r"peak_value=True must be a real number, not a bool"),
    ([0.01, 0.02], r"peak_value=\[0.01, 0.02\] must be a scalar"),
    ("0.05", r"peak_value='0.05' must be a real number"),
])
def test_check_stable_refuses_nonsense(peak, match):
    # today: NaN passes (NaN >= limit is False) and a negative LR is "stable"
    with pytest.raises(ValueError, match=match):
        L.check_stable(L.standard_toy(), peak)


def test_check_stable_needs_a_landscape():
    with pytest.raises(ValueError, match=r"landscape=.* must be a RiverValley"):
        L.check_stable("toy", 0.01)


def test_a_valley_states_the_points_it_takes():
    v = L.river_valley(3, amplitude=0.3)
    assert v.param_shape == (3,) and v.batch_shape == () and v.stochastic is False
    v.check_params(jnp.zeros(3))
    with pytest.raises(ValueError, match=r"x0=\[0.0, 0.0\] has shape \(2,\); this 3-D valley"):
        v.check_params(jnp.zeros(2))
    with pytest.raises(ValueError, match=r"start=.*dtype int32"):
        v.check_params(jnp.zeros(3, jnp.int32), name="start")
    with pytest.raises(ValueError, match=r"x0=.* is not finite"):
        v.check_params(jnp.array([0.0, jnp.inf, 0.0]))
    stacked = rv.stack([L.standard_toy(sharpness=s) for s in (1.0, 2.0)])
    assert stacked.batch_shape == (2,) and stacked.param_shape == (2,)


def test_factories_still_work_inside_vmap():
    # values are traced (unchecked), shapes are not
    vs = jax.vmap(lambda s: L.river_valley(2, sharpness=s))(jnp.array([1.0, 10.0]))
    assert vs.batch_shape == (2,)
    with pytest.raises(ValueError, match=r"sharpness=<traced> has shape \(3,\)"):
        jax.vmap(lambda s: L.river_valley(3, sharpness=s))(jnp.ones((2, 3)))
