"""rivervalley.text: the shipped corpus, the split, the character classes, and the fast
configuration trained through the engine (WSD ends below constant LR; the class split sums to the
whole)."""

from __future__ import annotations

import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rivervalley as rv
from rivervalley import text

SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def test_the_corpus_ships_unchanged():
    raw = text.load_text().encode("utf-8")
    assert len(raw) == 1_115_394 and hashlib.sha256(raw).hexdigest() == SHA256
    assert text.vocab_size() == 65
    s = "First Citizen:\nBefore we proceed"
    assert text.decode(text.encode(s)) == s
    with pytest.raises(ValueError, match=r"character '#' is not in the corpus vocabulary"):
        text.encode("#")


def test_validation_is_the_held_out_tail():
    cfg = text.config("fast")
    train, val = text.splits(cfg)
    tokens = text.encode(text.load_text())
    cut = int(round(tokens.size * (1 - cfg.val_fraction)))
    # training windows lie in the head, overlap by one character, and cover it
    assert train.shape[1] == cfg.seq_len + 1
    np.testing.assert_array_equal(train[1, 0], train[0, -1])
    np.testing.assert_array_equal(train.ravel()[: cfg.seq_len + 1], tokens[: cfg.seq_len + 1])
    assert train.shape[0] == (cut - 1) // cfg.seq_len
    # every evaluation window is a substring of the tail
    tail = text.decode(tokens[cut:])
    assert val.shape == (cfg.num_eval, cfg.seq_len + 1)
    for w in val[[0, -1]]:
        assert text.decode(w) in tail


def test_character_classes():
    table = text._class_table()
    ids = text.encode("a' .\nZ3")
    assert [text.CLASSES[table[i]] for i in ids] == ["in_word", "in_word", "after_space",
                                                     "other", "after_space", "in_word",
                                                     "other"]


@pytest.mark.parametrize("changes, match", [
    (dict(heads=3), r"heads=3 must divide width=32"),
    (dict(num_steps=0), r"num_steps=0 is outside the valid range"),
    (dict(val_fraction=0.7), r"val_fraction=0.7 is outside the valid range \(0, 0.5\]"),
])
def test_config_validation(changes, match):
    with pytest.raises(ValueError, match=match):
        text.config("fast", **changes)
    with pytest.raises(ValueError, match=r"scale='huge' is unknown; known scales: fast, full, "
                                         r"large"):
        text.config("huge")


def test_fast_configuration_trains_wsd_below_constant_and_the_split_sums():
    cfg = text.config("fast")
    prob, params = text.build(cfg, key=jax.random.key(0))
    scheds = rv.stack([text.schedule(k, cfg) for k in ("constant", "wsd")])
    res = rv.sweep(prob, params, scheds, num_steps=cfg.num_steps, seeds=cfg.seeds,
                   key=jax.random.key(1), optimizer=text.optimizer(cfg), batched=("schedule",),
                   record_every=cfg.num_steps // 4)
    loss = np.asarray(res.trajectory.loss)  # (seeds, 2, records)
    assert np.all(res.diverged_at < 0)
    # it learns: from log(65) = 4.17 to well below the unigram entropy of the text (~3.3)
    assert np.all(loss[:, :, 0] > 4.0) and np.all(loss[:, :, -1] < 2.8), loss[..., -1]
    # in every seed the decayed run ends below the constant-LR run
    assert np.all(loss[:, 1, -1] < loss[:, 0, -1] - 0.02), loss[..., -1]
    ex = res.trajectory.extras
    parts = sum(np.asarray(ex[f"{c}_loss"]) for c in text.CLASSES)
    # the per-class sums are computed apart from the loss (another float32 summation order of
    # 2048 characters' losses): random-walk rounding ~ sqrt(2048) * 1.2e-7, 10x as the bound
    np.testing.assert_allclose(parts, loss, rtol=10 * 45 * 1.2e-7)
    fracs = sum(np.asarray(ex[f"{c}_frac"]) for c in text.CLASSES)
    np.testing.assert_allclose(fracs, 1.0, rtol=1e-6)
    # the class means: inside a word is easier than after a space
    assert np.all(np.asarray(ex["in_word_mean"])[..., -1] < np.asarray(ex["after_space_mean"])
                  [..., -1])


def test_loss_fn_matches_a_direct_cross_entropy():
    cfg = text.config("fast")
    prob, params = text.build(cfg, key=jax.random.key(3))
    batch = prob.batch(key=jax.random.key(4))
    z = text.logits(params, batch[:, :-1], heads=cfg.heads)
    logp = jax.nn.log_softmax(z, axis=-1)
    direct = -jnp.mean(jnp.take_along_axis(logp, batch[:, 1:, None], -1))
    np.testing.assert_allclose(text.loss_fn(params, batch, heads=cfg.heads), direct, rtol=1e-5)
    # causal: changing the last input character changes no earlier prediction
    other = batch.at[:, -2].set((batch[:, -2] + 1) % text.vocab_size())
    z2 = text.logits(params, other[:, :-1], heads=cfg.heads)
    np.testing.assert_allclose(z2[:, :-1], z[:, :-1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(z2[:, -1], z[:, -1])
