"""Nonsense in, a clear error out: the inputs of theory, noise, bigram, transformer and hessian.

Every check runs on the host once per call (or when a step is traced, for static shapes), names
the argument, its value and the valid range, and is pinned here by a regex (issue 11).
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rivervalley as rv
from rivervalley import bigram as bg
from rivervalley import hessian as hs
from rivervalley import noise as N
from rivervalley import schedules as S
from rivervalley import theory as th
from rivervalley.transformer import TransformerModel, transformer

TOY = rv.landscapes.standard_toy()
HILL = N.hill_only(1.0)
KEY = jax.random.key(0)
NAN = float("nan")


@pytest.fixture(scope="module")
def data8():
    return bg.make_data(vocab_size=8, key=jax.random.key(0))


# -- silent wrong results, now errors --------------------------------------------------------------
def test_predict_refuses_an_x0_of_the_wrong_shape():
    """(0, .5, .5) on a 2-D valley was broadcast and reported a hill loss of 5.0, not 2.5."""
    for bad in (jnp.array([0, .5, .5]), jnp.array([0.5]), jnp.zeros((1, 2))):
        with pytest.raises(ValueError, match=r"x0=.* has shape .*; this 2-D valley takes points "
                                             r"of shape \(2,\)"):
            th.expected_trajectory(TOY, S.constant(0.01), num_steps=3, x0=bad)
    with pytest.raises(ValueError, match=r"x0=\[0.0, nan\] must be finite"):
        th.expected_trajectory(TOY, S.constant(0.01), num_steps=3, x0=jnp.array([0.0, NAN]))
    # the traceable core checks the (static) shape too, inside jit
    with pytest.raises(ValueError, match=r"x0=<traced> has shape \(3,\)"):
        jax.jit(th.moment_recursion)(TOY, jnp.full(3, 0.01), None, jnp.array([0, .5, .5]))
    # the right shape: hill loss 1/2 * 20 * 0.5^2 = 2.5, exact in binary (no rounding on the way)
    p = th.expected_trajectory(TOY, S.constant(0.01), num_steps=3, x0=jnp.array([0.0, 0.5]))
    assert float(p.hill_loss[0]) == 2.5


def test_predict_refuses_an_lr_array_of_another_length():
    """np.full(10, .05) with num_steps=100 ran 10 steps and padded with the last LR."""
    for n in (10, 101):
        with pytest.raises(ValueError, match=rf"schedule has shape \({n},\); num_steps=100 needs "
                                             r"an array of exactly 100 learning rates"):
            th.expected_trajectory(TOY, np.full(n, .05), num_steps=100, noise=HILL)
    with pytest.raises(ValueError, match=r"schedule holds 10 learning rates; steps 0 \.\. 99"):
        th.learning_rates(np.full(10, .05), 100)
    np.testing.assert_array_equal(th.learning_rates(np.arange(5.0), 2, start_step=3), [3.0, 4.0])
    # exactly num_steps: the same prediction as the schedule (the same float32 LRs)
    a = th.expected_trajectory(TOY, np.full(100, .05, np.float32), num_steps=100, noise=HILL)
    b = th.expected_trajectory(TOY, S.constant(.05), num_steps=100, noise=HILL)
    np.testing.assert_array_equal(a.loss, b.loss)


def test_noise_of_the_wrong_length_is_named():
    """A sigma per hill direction of the wrong length: a named error, not a broadcasting one."""
    bad = N.hill_only(jnp.ones(3))
    msg = r"sigma=\[1.0, 1.0, 1.0\] has shape \(3,\); a 2-D valley takes a scalar or one sigma "
    with pytest.raises(ValueError, match=msg):
        th.expected_trajectory(TOY, S.constant(0.01), num_steps=3, noise=bad)
    with pytest.raises(ValueError, match=msg):  # drawn by the engine: raised when traced
        jax.jit(lambda t: bad.sample(KEY, t, TOY, jnp.zeros(2)))(0)
    with pytest.raises(ValueError, match=r"sigma=.* has shape \(2,\); the theory of Isotropic "
                                         r"noise needs one sigma for every direction"):
        th.expected_trajectory(TOY, S.constant(0.01), num_steps=3, noise=N.isotropic(jnp.ones(2)))
    with pytest.raises(ValueError, match=r"sigma=.* has shape \(3,\), which does not fit "
                                         r"parameters of shape \(2,\)"):
        N.isotropic(jnp.ones(3)).sample(KEY, 0, TOY, jnp.zeros(2))
    with pytest.raises(TypeError, match="noise=.* must be None or a rivervalley.noise model"):
        th.expected_trajectory(TOY, S.constant(0.01), num_steps=3, noise=object())
    # the right lengths still work, and a per-direction sigma enters the prediction
    v3 = rv.landscapes.river_valley(3, sharpness=[10.0, 40.0], profile="linear")
    p = th.expected_trajectory(v3, S.constant(0.01), num_steps=400, noise=N.hill_only([1.0, 2.0]))
    want = sum(th.steady_state_hill_loss(0.01, lam, s2) for lam, s2 in ((10.0, 1.0), (40.0, 4.0)))
    # float32 recursion at its fixed point (transients (1 - 0.1)^800 are gone): the per-step
    # rounding delta <= 4 u of V settles at delta / (1 - a^2) with a = 1 - eta lambda = 0.9 for
    # the slower direction, <= 22 u per direction; two directions, their sum and eta = 0.01
    # (not exact in binary) stay below 64 u, u = eps32 / 2
    u = float(np.finfo(np.float32).eps) / 2
    assert float(p.hill_loss[-1]) == pytest.approx(want, rel=64 * u)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # 1e39 -> float32 inf
def test_make_data_refuses_non_finite_scales():
    """logit_scale=nan/inf or concentration=nan gave NaN probabilities (and entropy 0.0)."""
    for kw, match in [(dict(logit_scale=NAN), "logit_scale=nan must be finite"),
                      (dict(logit_scale=float("inf")), "logit_scale=inf must be finite"),
                      (dict(distribution="dirichlet", concentration=NAN),
                       "concentration=nan must be finite"),
                      (dict(logit_scale=1e39), r"logit_scale=1e\+39 gives non-finite")]:
        with pytest.raises(ValueError, match=match):
            bg.make_data(vocab_size=8, key=KEY, **kw)


def test_entropy_does_not_hide_nan(data8):
    # a NaN in the data (built the way JAX rebuilds a pytree: make_data itself refuses NaN)
    bad = jax.tree.map(lambda a: a.at[0, 0].set(jnp.nan) if a.ndim == 2 else a, data8)
    assert np.isnan(float(bad.entropy()))
    h = np.asarray(bg.entropy_rows(jnp.array([[0.5, NAN, 0.5], [1.5, -0.5, 0.0], [1.0, 0.0, 0.0]])))
    assert np.isnan(h[0]) and np.isnan(h[1]) and h[2] == 0.0


def test_init_params_with_a_scale_needs_a_key(data8):
    """TableModel.init_params(scale=1.0) without a key returned zeros."""
    with pytest.raises(ValueError, match=r"init_params\(scale=1.0\) draws random weights: pass "
                                         r"key=jax.random.key\(seed\)"):
        bg.TableModel(data8).init_params(scale=1.0)
    assert float(jnp.abs(bg.TableModel(data8).init_params()["W"]).max()) == 0.0


# -- the validation table --------------------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    # theory: closed forms (negative variances and unstable eta*lambda gave numbers)
    (lambda: th.steady_state_hill_loss(-0.1, -10.0, 1.0), r"learning_rate=-0.1 is outside the "
                                                          r"valid range \(0, inf\)"),
    (lambda: th.steady_state_hill_loss(0.06, 20.0, -1.0), r"noise_var=-1.0 is outside the valid "
                                                          r"range \[0, inf\)"),
    (lambda: th.steady_state_hill_loss(0.1, 20.0, 1.0), r"learning_rate\*sharpness=2.0 is outside "
                                                        r"\(0, 2\): no steady state"),
    (lambda: th.steady_state_hill_loss(NAN, 20.0, 1.0), r"learning_rate=nan must be finite"),
    (lambda: th.steady_state_hill_loss(0.06, [20.0, 50.0], 1.0), r"learning_rate\*sharpness="
                                                                 r"\[1.2.*, 3.0.*\] is outside"),
    (lambda: th.relaxation_steps(0.0, 20.0), r"learning_rate=0.0 is outside the valid range"),
    (lambda: th.relaxation_steps(0.01, -20.0), r"sharpness=-20.0 is outside the valid range"),
    (lambda: th.relaxation_steps(0.2, 20.0), r"learning_rate\*sharpness=4.0 is outside \(0, 2\): "
                                             r"nothing relaxes"),
    (lambda: th.greedy_schedule(20.0, 1.0, 0, second0=1.0), r"num_steps=0 is outside"),
    (lambda: th.greedy_schedule(20.0, 1.0, 10.0, second0=1.0), r"num_steps=10.0 is outside"),
    (lambda: th.greedy_schedule(20.0, NAN, 10, second0=1.0), r"noise_var=nan must be finite"),
    (lambda: th.greedy_schedule(20.0, 1.0, 10, second0=-1.0), r"second0=-1.0 is outside"),
    (lambda: th.greedy_schedule(20.0, 1.0, 10, second0=1.0, max_lr=0.0), r"max_lr=0.0 is outside"),
    (lambda: th.greedy_schedule([20.0, 5.0], 1.0, 10, second0=1.0), r"sharpness=\[20.0, 5.0\] must "
                                                                    r"be a scalar"),
    (lambda: th.hill_moments(jnp.full(3, .05), jnp.ones(2), jnp.ones(3)), r"noise_var=.* has "
                                                                          r"shape \(3,\)"),
    (lambda: th.hill_moments(jnp.full(3, .05), 10.0, -1.0), r"noise_var=-1.0 is outside"),
    (lambda: th.hill_moments(jnp.full(3, NAN), 10.0, 1.0), r"lrs=\[nan, nan, nan\] must be finite"),
    # theory: predict and the optimizers
    (lambda: th.expected_trajectory(TOY, S.constant(0.1), num_steps=True), r"num_steps=True is outside"),
    (lambda: th.expected_trajectory(TOY, S.constant(0.1), num_steps=5, record_every=0), r"record_every=0"),
    (lambda: th.expected_trajectory(TOY, np.full(5, -0.1), num_steps=5), r"schedule=.* is outside the valid "
                                                             r"range \[0, inf\) \(learning rates"),
    (lambda: th.expected_trajectory(TOY, np.full(5, NAN), num_steps=5), r"schedule=.* must be finite"),
    (lambda: th.expected_trajectory(TOY, lambda t: jnp.where(t < 3, 0.1, jnp.nan), num_steps=5),
     r"schedule=\[0.1.*, nan, nan\] must be finite"),
    (lambda: th.optimize_schedule(TOY, HILL, 10, peak_value=0.05, init=np.full(10, NAN)),
     r"init=.* must be finite"),
    (lambda: th.optimize_schedule(TOY, HILL, 10, peak_value=0.05, init=NAN),
     r"init=nan has shape \(\); it must be 'constant', 'best_wsd' or an array of 10"),
    (lambda: th.optimize_schedule(TOY, HILL, 10, peak_value=0.05, init=np.full(10, 0.06)),
     r"init=.* is outside the valid range \[0, 0.05\]"),
    (lambda: th.optimize_schedule(TOY, HILL, 10, peak_value=NAN), r"peak_value=nan must be finite"),
    (lambda: th.optimize_schedule(TOY, HILL, 10, peak_value=0.05, iterations=0), r"iterations=0"),
    (lambda: th.optimize_schedule(TOY, HILL, 10, peak_value=0.05, init_ratio=0.0), r"init_ratio=0.0"),
    (lambda: th.optimize_schedule(TOY, HILL, 0, peak_value=0.05), r"num_steps=0"),
    (lambda: th.optimize_schedule(TOY, HILL, 10, peak_value=0.05, x0=jnp.zeros(3)), r"x0=.* has "
                                                                                    r"shape \(3,\)"),
    (lambda: th.best_wsd(TOY, HILL, 100, peak_value=0.05, fractions=(0.0, 0.5)), r"fractions=\(0.0, "
                                                                                 r"0.5\) is outside"),
    (lambda: th.best_wsd(TOY, HILL, 100, peak_value=0.05, min_ratio=-1.0), r"min_ratio=-1.0"),
    # noise
    (lambda: N.normal(0, (-1,), key=KEY), r"shape=\(-1,\) holds -1; the valid range: a tuple of "
                                          r"integers >= 0"),
    (lambda: N.normal(0, (2.5,), key=KEY), r"shape=\(2.5,\) holds 2.5"),
    (lambda: N.normal(0, (3,), key=0), r"key=0 is not a PRNG key: pass key=jax.random.key\(0\)"),
    (lambda: N.normal(0, (3,), key=KEY, stream=-1), r"stream=-1 is outside the valid range"),
    (lambda: N.normal(0, (3,), key=KEY, rng="mt"), r"rng='mt' is unknown; known generators"),
    (lambda: N.isotropic(NAN), r"sigma=nan must be finite"),
    (lambda: N.hill_only(True), r"sigma=True must be a real number, not a bool"),
    (lambda: N.hill_only(1.0, sigma_river=[1.0, 2.0]), r"sigma_river=\[1.0, 2.0\] must be a scalar"),
    (lambda: N.hill_only(jnp.ones((2, 2))), r"sigma=.* has shape \(2, 2\)"),
    (lambda: N.student_t(1.0, df=NAN), r"df=nan must be finite"),
    (lambda: N.loss_scaled(-0.5), r"sigma=-0.5 is outside"),
    # bigram
    (lambda: bg.make_data(vocab_size=True, key=KEY), r"vocab_size=True is outside"),
    (lambda: bg.make_data(vocab_size=8.0, key=KEY), r"vocab_size=8.0 is outside"),
    (lambda: bg.make_data(det_fraction=NAN, key=KEY), r"det_fraction=nan must be finite"),
    (lambda: bg.make_data(smoothing=0.0, distribution="dirichlet", key=KEY), r"smoothing=0.0"),
    (lambda: bg.make_data(key=0), r"key=0 is not a PRNG key"),
    (lambda: bg.make_data(marginal=None, key=KEY), r"marginal=None is not one of"),
])
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda d: bg.predicted_plateau(d, -1.0, 8), r"learning_rate=-1.0 is outside the valid range"),
    (lambda d: bg.predicted_plateau(d, NAN, 8), r"learning_rate=nan must be finite"),
    (lambda d: bg.predicted_plateau(d, 1.0, 0), r"batch_size=0 is outside the valid range"),
    (lambda d: bg.predicted_plateau(d, 1.0, 8.5), r"batch_size=8.5 is outside"),
    (lambda d: bg.predicted_plateau(d, 1.0, 8, num_steps=-1), r"num_steps=-1 is outside"),
    (lambda d: bg.predicted_plateau(d, 1e3, 8), r"learning_rate=1000.0 times the largest "
                                                r"stochastic curvature is .*, outside \[0, 2\)"),
    (lambda d: d.sample_pairs(0, key=KEY), r"num=0 is outside"),
    (lambda d: d.sample_sequence(5, key=7), r"key=7 is not a PRNG key"),
    (lambda d: bg.TableModel(d).init_params(key=KEY, scale=NAN), r"scale=nan must be finite"),
    (lambda d: bg.FactorizedModel(d, width=2).init_params(key=3), r"key=3 is not a PRNG key"),
    (lambda d: transformer(d, seq_len=2.0, key=KEY), r"seq_len=2.0 is outside"),
    (lambda d: transformer(d, num_eval=0, key=KEY), r"num_eval=0 is outside"),
    (lambda d: transformer(d, key=1), r"key=1 is not a PRNG key"),
])
def test_model_validation(data8, call, match):
    with pytest.raises(ValueError, match=match):
        call(data8)


def test_wrong_kinds_of_object_are_type_errors():
    with pytest.raises(TypeError, match=r"schedule='0.05' must be a step -> lr function"):
        th.expected_trajectory(TOY, "0.05", num_steps=5)
    with pytest.raises(TypeError, match=r"landscape=.* must be a river valley"):
        th.expected_trajectory(object(), S.constant(0.1), num_steps=5)
    with pytest.raises(TypeError, match=r"data=.* must be a BigramData"):
        bg.predicted_plateau(object(), 1.0, 8)
    with pytest.raises(TypeError, match=r"data=.* must be a BigramData"):
        transformer(object(), key=KEY)
    with pytest.raises(TypeError, match=r"problem=.* must have a loss\(params\) method"):
        hs.sharpness_along(object(), jnp.zeros(2), stacked=False)
    with pytest.raises(ValueError, match=r"key=0 is not a PRNG key"):
        hs.lanczos_top_k(lambda x: x, 4, 1, key=0)


def test_plateau_of_an_unstable_rate_is_refused_and_a_stable_one_is_positive(data8):
    assert float(bg.predicted_plateau(data8, 1.0, 8)) > 0
    assert float(bg.predicted_plateau(data8, 1.0, 8, num_steps=0)) == 0.0  # from the optimum


def test_key_is_keyword_only_wherever_randomness_is_used():
    fns = [N.normal, N.hash_bits, bg.make_data, bg.BigramData.sample_pairs,
           bg.BigramData.sample_sequence, bg.TableModel.init_params, bg.FactorizedModel.init_params,
           transformer, TransformerModel.init_params, hs.lanczos_top_k,
           hs.top_eigenpairs, hs.sharpness_along, hs.split_displacement]
    for fn in fns:
        kind = inspect.signature(fn).parameters["key"].kind
        assert kind is inspect.Parameter.KEYWORD_ONLY, fn.__qualname__
