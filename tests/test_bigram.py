"""Bigram toy LM: exact entropy floor, Hessian of a hill row, GD on rivers, the SGD plateau law."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rivervalley import bigram as bg
from rivervalley import schedules
from rivervalley.dynamics import simulate, stack, sweep


@pytest.fixture(scope="module")
def data16():
    return bg.make_data(vocab_size=16, det_fraction=0.5, key=jax.random.key(0))


# -- data ----------------------------------------------------------------------------------------
def test_make_data_structure_and_determinism():
    d = bg.make_data(vocab_size=12, det_fraction=0.25, key=jax.random.key(5))
    d2 = bg.make_data(vocab_size=12, det_fraction=0.25, key=jax.random.key(5))
    d3 = bg.make_data(vocab_size=12, det_fraction=0.25, key=jax.random.key(6))
    np.testing.assert_array_equal(d.probs, d2.probs)
    assert not np.array_equal(np.asarray(d.probs), np.asarray(d3.probs))
    probs, det = np.asarray(d.probs), np.asarray(d.is_det)
    assert det.sum() == 3
    # float32 rows normalized in float64: each entry rounded once (u = eps32 / 2 relative),
    # then a 12-term float32 sum here: |sum - 1| <= (12 + 11) u
    u = np.finfo(np.float32).eps / 2
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=0, atol=(12 + 11) * u)
    assert np.all(probs[~det] > 0)  # full support
    succ = np.asarray(d.successor)
    np.testing.assert_array_equal(probs[det, succ[det]], 1.0)
    # Deterministic paths never cycle: they reach a stochastic token within 3 hops.
    for x in np.flatnonzero(det):
        y = x
        for _ in range(3):
            y = succ[y] if det[y] else y
        assert not det[y]


def test_entropy_controlled_by_logit_scale():
    hs = [float(bg.make_data(vocab_size=32, logit_scale=s, key=jax.random.key(1)).stoch_entropy())
          for s in (0.0, 1.0, 3.0)]
    # s = 0: every row is exactly 1/32 (a power of two), so H = log 32 up to float32 rounding:
    # log (2 ulp), two 32-term sums (row, marginal) and a division (the class masses are sums of
    # 1/32, exact): (2 + 31 + 31 + 1) u log 32
    u = np.finfo(np.float32).eps / 2
    assert abs(hs[0] - np.log(32)) < (2 + 31 + 31 + 1) * u * np.log(32) and hs[0] > hs[1] > hs[2]
    dd = bg.make_data(vocab_size=32, distribution="dirichlet", concentration=0.1, key=jax.random.key(1))
    assert 0 < float(dd.stoch_entropy()) < hs[1]


def test_stationary_marginal_and_samplers():
    with jax.enable_x64(True):  # the stationary solve, exact in float64 (tight tolerances)
        d64 = bg.make_data(vocab_size=10, marginal="stationary", key=jax.random.key(2))
        p, P = np.asarray(d64.marginal), np.asarray(d64.probs)
    assert p.dtype == np.float64
    np.testing.assert_allclose(p @ P, p, atol=1e-13)
    assert abs(p.sum() - 1) < 1e-13 and np.all(p > 0)
    d = bg.make_data(vocab_size=10, marginal="stationary", key=jax.random.key(2))
    p = np.asarray(d.marginal, np.float64)  # float32: the sampler below checks it statistically
    seq = np.asarray(d.sample_sequence(8000, key=jax.random.key(3)))
    det, succ = np.asarray(d.is_det), np.asarray(d.successor)
    cur, nxt = seq[:-1], seq[1:]
    np.testing.assert_array_equal(nxt[det[cur]], succ[cur[det[cur]]])
    freq = np.bincount(seq, minlength=10) / seq.size
    np.testing.assert_allclose(freq, p, atol=0.03)
    x, y = d.sample_pairs(50000, key=jax.random.key(4))
    x, y = np.asarray(x), np.asarray(y)
    np.testing.assert_array_equal(y[det[x]], succ[x[det[x]]])
    np.testing.assert_allclose(np.bincount(x, minlength=10) / x.size, p, atol=0.01)


def test_make_data_validates():
    with pytest.raises(ValueError, match="det_fraction=1.5"):
        bg.make_data(det_fraction=1.5, key=jax.random.key(0))
    with pytest.raises(ValueError, match="vocab_size=1"):
        bg.make_data(vocab_size=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="distribution='zipf'"):
        bg.make_data(distribution="zipf", key=jax.random.key(0))


# -- losses --------------------------------------------------------------------------------------
def test_loss_at_true_distribution_is_the_entropy():
    with jax.enable_x64(True):
        d = bg.make_data(vocab_size=16, marginal="stationary", key=jax.random.key(0))
        m = bg.TableModel(d)
        w = jnp.log(jnp.maximum(d.probs, 1e-300))
        loss = m.loss({"W": w})
        assert loss.dtype == jnp.float64
        assert abs(float(loss) - float(d.entropy())) < 1e-12
        # Any other table is worse (Gibbs): perturb a stochastic row.
        x = int(np.flatnonzero(~np.asarray(d.is_det))[0])
        assert float(m.loss({"W": w.at[x, 0].add(1.0)})) > float(loss) + 1e-6
        # Same for the factorized model with d = V and U = I.
        f = bg.FactorizedModel(d, width=16)
        assert abs(float(f.loss({"E": w, "U": jnp.eye(16)})) - float(d.entropy())) < 1e-12


@pytest.mark.parametrize("model", ["table", "factorized"])
def test_split_sums_to_total_and_classes(model):
    """loss = river_loss + hill_loss + entropy_floor, the parts being excesses over the floor.

    Identities of sums of 16 terms: in float64 (data included) they hold to a few eps64."""
    with jax.enable_x64(True):
        data = bg.make_data(vocab_size=16, det_fraction=0.5, key=jax.random.key(0))
        m = bg.TableModel(data) if model == "table" else bg.FactorizedModel(data, width=4)
        params = m.init_params(key=jax.random.key(1), scale=1.0)
        dec = {k: float(v) for k, v in m.decompose(params).items()}
        rl = np.asarray(m.row_loss(params))
        loss = float(m.loss(params))
        h = np.asarray(data.row_entropy())
        det = np.asarray(data.is_det)
    assert rl.dtype == np.float64
    assert dec["loss"] == loss
    np.testing.assert_allclose(dec["river_loss"] + dec["hill_loss"] + dec["entropy_floor"],
                               dec["loss"], rtol=1e-13)
    np.testing.assert_allclose(dec["entropy_floor"], h.mean(), rtol=1e-13)  # uniform marginal
    np.testing.assert_allclose(dec["excess_loss"], dec["loss"] - dec["entropy_floor"], rtol=1e-12)
    # The parts: the p-weighted excess of each class (deterministic rows have entropy 0).
    np.testing.assert_allclose(dec["river_loss"], rl[det].sum() / 16, rtol=1e-13)
    np.testing.assert_allclose(dec["hill_loss"], (rl - h)[~det].sum() / 16, rtol=1e-12)
    assert dec["river_loss"] > 0 and dec["hill_loss"] > 0
    # Per-class means (weighted by p within the class): uniform marginal, half deterministic.
    np.testing.assert_allclose(dec["det_loss"], rl[det].mean(), rtol=1e-13)
    np.testing.assert_allclose(dec["stoch_loss"], rl[~det].mean(), rtol=1e-13)
    np.testing.assert_allclose(dec["stoch_excess"], rl[~det].mean() - h[~det].mean(), rtol=1e-12)
    np.testing.assert_allclose(dec["hill_loss"], dec["stoch_excess"] / 2, rtol=1e-12)


def test_the_parts_vanish_at_the_true_distribution():
    """At W = log q (and a large margin on the rivers) only the floor remains: the hill part is
    an excess, not the entropy (issue 13)."""
    with jax.enable_x64(True):
        d = bg.make_data(vocab_size=16, det_fraction=0.5, key=jax.random.key(0))
        m = bg.TableModel(d)
        dec = m.decompose(m.optimum_params(det_margin=40.0))
        np.testing.assert_allclose(dec["hill_loss"], 0.0, atol=1e-13)
        np.testing.assert_allclose(dec["river_loss"], 0.0, atol=1e-13)  # ~ 15 e^-40 / 2
        np.testing.assert_allclose(dec["loss"], dec["entropy_floor"], rtol=1e-13)
        np.testing.assert_allclose(dec["entropy_floor"], d.entropy(), rtol=0)


@pytest.mark.parametrize("model", ["table", "factorized"])
def test_sample_loss_is_unbiased(data16, model):
    m = bg.TableModel(data16, batch_size=8) if model == "table" else \
        bg.FactorizedModel(data16, width=4, batch_size=8)
    params = m.init_params(key=jax.random.key(1), scale=1.5)
    keys = jax.random.split(jax.random.key(2), 4000)
    vals = np.asarray(jax.jit(jax.vmap(lambda k: m.sample_loss(params, k)))(keys), np.float64)
    se = vals.std(ddof=1) / np.sqrt(vals.size)
    assert abs(vals.mean() - float(m.loss(params))) < 4 * se
    assert vals.std() > 0.05  # real sampling noise
    full = dataclasses.replace(m, batch_size=None)
    assert float(full.sample_loss(params, keys[0])) == float(full.loss(params))


def test_hessian_of_stochastic_row_at_optimum():
    with jax.enable_x64(True):
        d = bg.make_data(vocab_size=8, marginal="stationary", key=jax.random.key(3))
        m = bg.TableModel(d)
        w = m.optimum_params(det_margin=2.0)["W"]
        h = jax.jit(jax.hessian(lambda w: m.loss({"W": w})))(w)  # (V, V, V, V)
        q, p = np.asarray(d.probs), np.asarray(d.marginal)
        for x in np.flatnonzero(~np.asarray(d.is_det)):
            want = p[x] * (np.diag(q[x]) - np.outer(q[x], q[x]))
            np.testing.assert_allclose(h[x, :, x, :], want, atol=1e-13)
            np.testing.assert_allclose(m.row_hessians({"W": w})[x], want, atol=1e-13)
        # Rows are independent: the off-diagonal blocks vanish.
        assert float(jnp.max(jnp.abs(h[0, :, 1, :]))) == 0.0


# -- dynamics through the engine -----------------------------------------------------------------
def test_gd_deterministic_rows_are_rivers():
    """Full-batch GD: det-token loss decreases monotonically and its curvature tends to 0."""
    d = bg.make_data(vocab_size=8, key=jax.random.key(0))
    m = bg.TableModel(d, batch_size=None)
    traj = simulate(m, m.init_params(), schedules.constant(8.0), num_steps=600, record_every=10)
    det_loss = np.asarray(traj.extras["det_loss"])
    assert np.all(np.diff(det_loss) < 0)
    assert det_loss[-1] < 0.02 * det_loss[0]
    det = np.asarray(d.is_det)
    curv = np.asarray(jax.vmap(m.row_curvature)(traj.params))[:, det].max(axis=1)
    assert curv[-1] < 0.05 * curv.max()
    assert np.all(np.diff(curv[len(curv) // 2:]) < 0)  # still falling at the end
    # ... while the stochastic rows converge to their finite optimum (excess -> 0).
    assert float(traj.extras["stoch_excess"][-1]) < 1e-3


def test_stochastic_plateau_scales_with_eta(data16):
    """SGD from the stochastic optimum: the stochastic excess settles at the predicted plateau.

    Prediction (module docstring of rivervalley.bigram): excess_t = (eta / 2B) sum_i lambda_i /
    (2 - eta lambda_i) (1 - (1 - eta lambda_i)^(2t)) ~ eta tr(H) / (4B); the ratio for two LRs
    differs from the LR ratio through the finite-time build-up of the slow directions.
    """
    m = bg.TableModel(data16, batch_size=16)
    etas, num_steps, every = (1.0, 4.0), 800, 10
    res = sweep(m, m.optimum_params(), stack([schedules.constant(e) for e in etas]),
                num_steps=num_steps, seeds=12, key=jax.random.key(7), batched=("schedule",),
                record_every=every)
    hill = np.asarray(res.trajectory.hill_loss)  # the stochastic excess, (seeds, 2, records)
    steps = np.asarray(res.trajectory.steps)
    win = steps >= num_steps // 2
    per_seed = hill[:, :, win].mean(axis=2)  # (seeds, 2)
    meas = per_seed.mean(0)
    pred = np.array([np.mean([float(bg.predicted_plateau(data16, e, 16, int(t)))
                              for t in steps[win]]) for e in etas])
    # Each level within 8% (quadratic approximation + Monte Carlo), the ratio within 6%.
    np.testing.assert_allclose(meas, pred, rtol=0.08)
    ratio, pred_ratio = meas[1] / meas[0], pred[1] / pred[0]
    assert abs(ratio / pred_ratio - 1) < 0.06, (ratio, pred_ratio)
    assert pred_ratio > 4.0  # the finite-time build-up: not simply the LR ratio
