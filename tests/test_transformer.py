"""The one-layer transformer on chain sequences: a problem for the same engine."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rivervalley as rv
from rivervalley.transformer import transformer

DATA = rv.bigram.make_data(vocab_size=8, det_fraction=0.5, key=jax.random.key(0))
MODEL = transformer(DATA, seq_len=12, width=8, batch_size=16, num_eval=128, key=jax.random.key(1))


def _f32_sum_rtol(n: int, extra_ops: int = 4) -> float:
    """Worst-case relative error of a float32 reduction of n nonnegative terms in any order
    (XLA's CPU reduction order differs between machines): (n - 1) u for the sum plus
    ``extra_ops`` roundings per term (logsumexp's exp / sum / log, the division by n), with
    u = eps32 / 2. No cancellation: every term (a cross-entropy) is >= 0."""
    u = float(np.finfo(np.float32).eps) / 2
    return (n - 1 + extra_ops) * u


def test_zero_logits_give_log_v_and_the_split_sums():
    params = MODEL.init_params(key=jax.random.key(2), scale=0.0)
    n = MODEL.eval_sequences.size  # 128 sequences x 12 positions = 1536 cross-entropies
    # log V at every position, averaged over n positions: bound (n + 2) u = 9.2e-5. Measured:
    # 3.7e-6 on two x86 CPUs; the old rtol of 1e-6 only held for one lucky reduction order.
    np.testing.assert_allclose(MODEL.loss(params), np.log(8), rtol=_f32_sum_rtol(n, 3))
    parts = MODEL.decompose(MODEL.init_params(key=jax.random.key(3)))
    assert float(parts["loss"]) == float(MODEL.loss(MODEL.init_params(key=jax.random.key(3))))
    # loss = river + hill + floor, from the same per-position ce and H (kl = ce - H, one rounding
    # each): four n-term sums (river, hill, floor, loss) of terms bounded by ce >= 0, each within
    # the n-term bound relative to the loss, so 4x that bound
    np.testing.assert_allclose(parts["river_loss"] + parts["hill_loss"] + parts["entropy_floor"],
                               parts["loss"], rtol=4 * _f32_sum_rtol(n))
    np.testing.assert_allclose(parts["excess_loss"], parts["river_loss"] + parts["hill_loss"],
                               rtol=_f32_sum_rtol(2))
    assert float(parts["river_loss"]) > 0 and float(parts["hill_loss"]) > 0
    assert float(parts["excess_loss"]) > 0


def test_the_split_is_of_the_excess_over_the_entropy_floor():
    """river_loss and hill_loss are KL divergences (>= 0, 0 at the truth); the floor is apart."""
    with jax.enable_x64(True):
        data = rv.bigram.make_data(vocab_size=8, det_fraction=0.5, key=jax.random.key(0))
        model = transformer(data, seq_len=12, width=8, num_eval=64, key=jax.random.key(1))
        parts = model.decompose(model.init_params(key=jax.random.key(3)))
        ent = np.asarray(data.row_entropy())[np.asarray(model.eval_sequences)]
        np.testing.assert_allclose(parts["entropy_floor"], ent.mean(), rtol=1e-12)
        np.testing.assert_allclose(parts["river_loss"] + parts["hill_loss"]
                                   + parts["entropy_floor"], model.loss(
                                       model.init_params(key=jax.random.key(3))), rtol=1e-12)
        assert float(parts["hill_loss"]) < float(parts["stoch_loss"]) * np.mean(
            ~np.asarray(data.is_det)[np.asarray(model.eval_sequences)])


def test_the_true_distribution_has_zero_excess():
    """A model whose logits are log q_{x_t} (no attention) reaches the floor exactly: both parts
    vanish. In float64 throughout (data included), so 'exactly' means a few eps64."""
    with jax.enable_x64(True):
        v = 8
        data = rv.bigram.make_data(vocab_size=v, det_fraction=0.5, key=jax.random.key(0))
        assert data.probs.dtype == jnp.float64
        params = {"E": jnp.eye(v), "P": jnp.zeros((12, v)), "Wq": jnp.zeros((v, v)),
                  "Wk": jnp.zeros((v, v)), "Wv": jnp.zeros((v, v)), "Wo": jnp.zeros((v, v)),
                  "U": jnp.log(jnp.maximum(data.probs, 1e-300))}
        model = transformer(data, seq_len=12, width=v, num_eval=64, key=jax.random.key(1))
        parts = model.decompose(params)
        for name in ("excess_loss", "river_loss", "hill_loss"):
            np.testing.assert_allclose(parts[name], 0.0, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(parts["loss"], parts["entropy_floor"], rtol=1e-12)


def test_attention_is_causal():
    params = MODEL.init_params(key=jax.random.key(4))
    seqs = MODEL.eval_sequences[:2]
    changed = seqs.at[:, -1].set((seqs[:, -1] + 1) % 8)
    a, b = MODEL.logits(params, seqs), MODEL.logits(params, changed)
    # bit-identical, not merely close: the same program on the same shapes, and the changed last
    # token only enters masked scores, whose weights are exactly exp(-inf) = 0
    np.testing.assert_array_equal(a[:, :-1], b[:, :-1])
    assert not np.allclose(a[:, -1], b[:, -1])


def test_trains_through_the_engine_and_the_river_falls_below_the_hill():
    params = MODEL.init_params(key=jax.random.key(5), scale=0.5)
    tr = rv.simulate(MODEL, params, rv.schedules.wsd(0.05, 300, decay=0.2), num_steps=300,
                     optimizer=optax.adam, key=jax.random.key(6), record_every=50)
    det, sto = np.asarray(tr.extras["det_loss"]), np.asarray(tr.extras["stoch_loss"])
    assert det[-1] < 0.2 * det[0]            # deterministic tokens: a river, loss towards 0
    excess = np.asarray(tr.extras["excess_loss"])
    assert 0 < excess[-1] < 0.5 * excess[0]  # an exact KL: positive, and halved by training
    assert det[-1] < sto[-1]


def test_validation():
    with pytest.raises(ValueError, match="seq_len=1"):
        transformer(DATA, seq_len=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="width=0"):
        transformer(DATA, width=0, key=jax.random.key(0))
    assert jnp.shape(MODEL.eval_sequences) == (128, 12)
