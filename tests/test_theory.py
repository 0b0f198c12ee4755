"""Exact predictions (THEORY.md §4) and the consequences C1-C6 on the standard toy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rivervalley as rv
from rivervalley import schedules as S
from rivervalley import theory as th

TOY = rv.landscapes.standard_toy()
HILL = rv.noise.hill_only(1.0)


def _predict(schedule, num_steps=4000, **kw):
    with jax.enable_x64(True):
        return th.expected_trajectory(TOY, schedule, num_steps=num_steps, noise=HILL, dtype=jnp.float64, **kw)


def test_reference_values_of_theory_md():
    """THEORY.md §2: constant 0.042 (hill 0.0375), WSD 20% linear 0.0051, cosine 0.0086."""
    const = _predict(S.constant(0.06))
    assert round(float(const.loss[-1]), 3) == 0.042
    assert abs(float(const.hill_loss[-1]) - 0.0375) < 1e-9
    assert round(float(_predict(S.wsd(0.06, 4000, decay=0.2)).loss[-1]), 4) == 0.0051
    assert round(float(_predict(S.cosine(0.06, 4000)).loss[-1]), 4) == 0.0086


def test_hill_moments_closed_form_for_constant_lr():
    with jax.enable_x64(True):
        eta, lam, s2, v0 = 0.03, 20.0, 2.0, 0.7
        m, v = th.hill_moments(jnp.full(50, eta), lam, s2, mean0=0.5, second0=v0)
        a = 1 - eta * lam
        t = np.arange(51)
        vstar = eta * s2 / (lam * (2 - eta * lam))
        np.testing.assert_allclose(v[:, 0], vstar + (v0 - vstar) * a ** (2 * t), rtol=1e-12)
        np.testing.assert_allclose(m[:, 0], 0.5 * a**t, rtol=1e-12)


def test_linear_river_prediction_is_exact_for_loss_scaled_noise():
    """With loss-scaled noise on a linear river the recursion is still exact in expectation."""
    with jax.enable_x64(True):
        v = rv.landscapes.river_valley(2, profile="linear", slope=0.05, sharpness=10.0)
        noise = rv.noise.loss_scaled(0.5)
        x0 = jnp.array([-20.0, 0.0])  # keep L > 0 over the run
        sched = S.wsd(0.05, 400, decay=0.3)
        res = rv.sweep(v, x0, sched, num_steps=400, seeds=4096, noise=noise,
                       key=jax.random.key(3), record_every=40)
        pred = th.expected_trajectory(v, sched, num_steps=400, noise=noise, x0=x0, record_every=40)
    loss = np.asarray(res.trajectory.loss)[:, 0]
    z = np.abs(loss.mean(0) - np.asarray(pred.loss)) / (loss.std(0, ddof=1) / 64.0 + 1e-15)
    assert z[1:].max() < 4.0, z


def test_c1_stable_phase_sits_above_a_falling_river():
    res = rv.sweep(TOY, jnp.zeros(2), S.constant(0.06), num_steps=3000, seeds=512, noise=HILL,
                   key=jax.random.key(0), record_every=100)
    tr = res.trajectory
    gap = np.asarray(tr.loss - tr.river_loss)[:, 0, 5:].mean()
    assert abs(gap / th.steady_state_hill_loss(0.06, 20.0, 1.0) - 1) < 0.05
    # THEORY's shorthand eta sigma^2 / 4 needs eta*lambda << 1: here (1.2) the exact plateau is 2.5x
    river = np.asarray(tr.river_loss)[:, 0].mean(0)
    assert np.all(np.diff(river) < 0)


def test_c2_the_drop_is_the_hill_loss_vanishing():
    p = _predict(S.wsd(0.06, 4000, decay=0.2))
    drop = float(p.loss[3200] - p.loss[4000])
    river_change = float(p.river_loss[3200] - p.river_loss[4000])
    assert drop > 0.03
    assert river_change < 0.05 * drop
    assert float(p.hill_loss[-1]) < 0.02 * float(p.hill_loss[3200])


def test_c3_higher_stable_peak_lower_after_higher_before():
    peaks = [0.02, 0.04, 0.06, 0.08, 0.095]  # all below the stability limit 0.1
    before = [float(_predict(S.wsd(p, 4000, decay=0.2)).loss[3200]) for p in peaks]
    after = [float(_predict(S.wsd(p, 4000, decay=0.2)).loss[-1]) for p in peaks]
    assert np.all(np.diff(after) < 0) and np.all(np.diff(before) > 0)


@pytest.mark.parametrize("budget", [1000, 2000, 4000])
def test_c4_both_phases_matter(budget):
    final = {name: float(_predict(s, budget).loss[-1]) for name, s in {
        "constant": S.constant(0.06), "cosine": S.cosine(0.06, budget),
        "wsd10": S.wsd(0.06, budget, decay=0.1), "wsd20": S.wsd(0.06, budget, decay=0.2)}.items()}
    assert final["constant"] > 2 * final["wsd20"]
    assert final["wsd10"] <= final["cosine"] and final["wsd20"] <= final["cosine"]
    u_cos = float(_predict(S.cosine(0.06, budget), budget).river_coordinate[-1])
    u_wsd = float(_predict(S.wsd(0.06, budget, decay=0.2), budget).river_coordinate[-1])
    assert u_cos < u_wsd  # decaying from the start travels less far along the river


@pytest.mark.parametrize("shape", S.DECAY_SHAPES)
def test_c5_interior_optimal_decay_fraction(shape):
    fracs = [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]
    m = 0.01 if shape in ("inverse", "exponential") else 0.0
    finals = [float(_predict(S.wsd(0.06, 4000, decay=f, decay_shape=shape, min_ratio=m)).loss[-1])
              for f in fracs]
    best = int(np.argmin(finals))
    assert 0 < best < len(fracs) - 1, finals


def test_c5_greedy_schedule_is_harmonic():
    # exact: 1/V_{t+1} = 1/V_t + lambda^2/sigma^2, so eta_t = 1 / (lambda (t + t0)); in float64
    # the 2000-step recursion keeps it to ~2000 * 4 roundings * 1.1e-16 = 1e-12
    lam, s2 = 20.0, 1.0
    with jax.enable_x64(True):
        lrs = th.greedy_schedule(lam, s2, 2000, second0=0.0375 * 2 / lam)
    assert lrs.dtype == np.float64
    t0 = 1.0 / (lam * lrs[0])
    t = np.arange(2000)
    np.testing.assert_allclose(lrs * lam * (t + t0), 1.0, rtol=1e-11)


def test_c6_wsd_s_beats_wsd_and_cyclic_cosine_at_matched_compute():
    budgets, phi = [500, 1000, 2000], 0.2
    ck = rv.plans.wsd_s_checkpoints_at_wsd_compute(budgets, phi)
    kw = dict(seeds=128, noise=HILL, key=jax.random.key(0))
    wsd = rv.run_plan(rv.plans.wsd(0.06, budgets, decay=phi), TOY, jnp.zeros(2), **kw)
    wsds = rv.run_plan(rv.plans.wsd_s(0.06, ck, decay=phi), TOY, jnp.zeros(2), **kw)
    cyc = rv.run_plan(rv.plans.cyclic_cosine(0.06, ck), TOY, jnp.zeros(2), **kw)
    np.testing.assert_array_equal(wsd.compute, wsds.compute)
    # paired comparison (common random numbers): differences well beyond their standard errors
    diff = wsd.per_seed_loss[1:] - wsds.per_seed_loss[1:]
    assert np.all(diff.mean(1) > 4 * diff.std(1, ddof=1) / np.sqrt(diff.shape[1]))
    assert np.all(wsds.loss < cyc.loss)


def test_optimized_schedule_is_wsd_shaped_and_beats_wsd():
    T = 1000
    res = th.optimize_schedule(TOY, HILL, T, peak_value=0.06, iterations=60)
    wsd = float(_predict(S.wsd(0.06, T, decay=0.2), T).loss[-1])
    assert res.predicted_loss < wsd
    assert np.all(res.lrs[: int(0.9 * T)] >= 0.95 * 0.06)
    assert res.lrs[-1] < 0.5 * 0.06
    # the tabulated schedule reproduces the learning rates
    # (as float32: one rounding of each float64 LR, <= eps32 / 2 relative)
    np.testing.assert_allclose(S.as_array(res.schedule(), T), res.lrs,
                               rtol=np.finfo(np.float32).eps / 2)
    refined = th.optimize_schedule(TOY, HILL, T, peak_value=0.06, iterations=20, init="best_wsd")
    _, _, best = th.best_wsd(TOY, HILL, T, peak_value=0.06)
    assert refined.predicted_loss <= best + 1e-12


@pytest.mark.parametrize("call, match", [
    (lambda: th.expected_trajectory(TOY, S.constant(0.1), num_steps=0), "num_steps=0"),
    (lambda: th.steady_state_hill_loss(0.2, 20.0, 1.0), "outside \\(0, 2\\)"),
    (lambda: th.optimize_schedule(TOY, HILL, 10, peak_value=-1.0), "peak_value=-1.0"),
    (lambda: th.optimize_schedule(TOY, HILL, 10, peak_value=0.1, init="cosine"), "init='cosine'"),
    (lambda: th.greedy_schedule(0.0, 1.0, 10, second0=1.0), "sharpness=0.0"),
])
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_best_wsd_skips_fractions_too_small_for_a_short_run():
    # at 200 steps the default fractions 0.002 (0.4 steps) and 0.005 (1 step: usable) include a
    # zero-step decay: it is no candidate instead of an error
    shape, frac, loss = th.best_wsd(TOY, HILL, 200, peak_value=0.06)
    assert frac >= 0.005 and np.isfinite(loss)
    with pytest.raises(ValueError, match="all give a decay of 0 steps at num_steps=200"):
        th.best_wsd(TOY, HILL, 200, peak_value=0.06, fractions=(0.001, 0.002))
