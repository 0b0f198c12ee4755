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


def test_zero_logits_give_log_v_and_the_split_sums():
    params = MODEL.init_params(key=jax.random.key(2), scale=0.0)
    np.testing.assert_allclose(MODEL.loss(params), np.log(8), rtol=1e-6)
    parts = MODEL.decompose(MODEL.init_params(key=jax.random.key(3)))
    np.testing.assert_allclose(parts["loss"], parts["river_loss"] + parts["hill_loss"], rtol=1e-6)
    assert float(parts["excess_loss"]) > 0


def test_the_true_distribution_has_zero_excess():
    """A model whose logits are log q_{x_t} (no attention) reaches the floor exactly."""
    with jax.enable_x64(True):
        v = 8
        params = {"E": jnp.eye(v), "P": jnp.zeros((12, v)), "Wq": jnp.zeros((v, v)),
                  "Wk": jnp.zeros((v, v)), "Wv": jnp.zeros((v, v)), "Wo": jnp.zeros((v, v)),
                  "U": jnp.log(jnp.maximum(DATA.probs.astype(jnp.float64), 1e-300))}
        model = transformer(DATA, seq_len=12, width=v, num_eval=64, key=jax.random.key(1))
        # the data rows are float32 (they sum to 1 within ~1e-7), hence the tolerance
        np.testing.assert_allclose(model.decompose(params)["excess_loss"], 0.0, atol=1e-6)


def test_attention_is_causal():
    params = MODEL.init_params(key=jax.random.key(4))
    seqs = MODEL.eval_sequences[:2]
    changed = seqs.at[:, -1].set((seqs[:, -1] + 1) % 8)
    a, b = MODEL.logits(params, seqs), MODEL.logits(params, changed)
    np.testing.assert_allclose(a[:, :-1], b[:, :-1], rtol=1e-6, atol=1e-6)
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
