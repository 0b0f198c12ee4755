"""A one-layer causal transformer on Markov-chain sequences of the bigram data (THEORY.md §7c).

The same river/hill split as the bigram models, but with shared parameters everywhere (embedding,
attention, unembedding), so nothing is built in: a position whose previous token is deterministic
contributes to the **river** loss, one whose previous token is stochastic to the **hill** loss.

    h_t = E[x_t] + P_t
    a_t = softmax_{s<=t}((h_t Wq)(h_s Wk)^T / sqrt(d)) (h_s Wv) Wo      (one causal head)
    logits_t = (h_t + a_t) U

It is a problem for the engine (``loss``, ``sample_loss``, ``decompose``): ``loss`` and
``decompose`` average over the prefixes of a fixed evaluation set of chain sequences, taking at each
position the *expected* cross-entropy under the true next-token distribution q_{x_t} (so the excess
over the entropy floor is an exact KL divergence, >= 0); ``sample_loss`` draws fresh sequences with
the step's key and uses the sampled next tokens (real sampling noise).

As for the bigram models, the split is of the excess over the entropy floor:

    loss = river_loss + hill_loss + entropy_floor,

``river_loss`` / ``hill_loss`` the summed KL divergences (expected cross-entropy minus the entropy
of q_{x_t}) of the deterministic / stochastic positions divided by the number of positions, and
``entropy_floor`` (in the extras) the mean next-token entropy of the evaluation positions.

Example:
    >>> import jax
    >>> import rivervalley as rv
    >>> data = rv.bigram.make_data(vocab_size=8, key=jax.random.key(0))
    >>> model = transformer(data, seq_len=16, width=8, key=jax.random.key(1))
    >>> params = model.init_params(key=jax.random.key(2), scale=0.0)
    >>> print(round(float(model.loss(params)), 4))  # zero logits: log V
    2.0794
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley._pytree import build, pytree
from rivervalley._validate import check_int, check_key, check_real, fmt
from rivervalley.bigram import BigramData


@pytree(static=("width", "seq_len", "batch_size"), factory="rivervalley.transformer.transformer")
@dataclass(frozen=True)
class TransformerModel:
    """One-layer causal transformer on chain sequences. Built by :func:`transformer` (which draws
    the evaluation sequences).

    Attributes:
        data: the bigram data (its Markov chain generates the sequences).
        eval_sequences: (N, L) int sequences on which ``loss`` and ``decompose`` are measured.
        width: model width d (static).
        seq_len: sequence length L (static).
        batch_size: sequences per SGD step (static).
    """

    data: BigramData
    eval_sequences: jax.Array
    width: int
    seq_len: int
    batch_size: int

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading batch axes of a stacked model (``rivervalley.stack``); ``()`` for one model.
        The engine reads it to refuse a stack that ``batched`` does not name."""
        return tuple(np.shape(self.data.probs)[:-2])

    @property
    def param_shape(self) -> dict:
        """The shape of one point (a dict like :meth:`init_params`)."""
        v, d, length = int(self.data.probs.shape[0]), self.width, self.seq_len
        return {"E": (v, d), "P": (length, d), "Wq": (d, d), "Wk": (d, d), "Wv": (d, d),
                "Wo": (d, d), "U": (d, v)}

    def init_params(self, *, key: jax.Array, scale: float = 1.0) -> dict:
        """Gaussian weights with variance scale^2 / fan-in (scale 0: all logits zero)."""
        check_key("key", key)
        check_real("scale", scale)
        v, d, length = int(self.data.probs.shape[0]), self.width, self.seq_len
        ks = jax.random.split(key, 7)
        g = lambda k, shape, fan: scale * jax.random.normal(k, shape) / np.sqrt(fan)
        return {"E": g(ks[0], (v, d), 1.0), "P": g(ks[1], (length, d), 1.0),
                "Wq": g(ks[2], (d, d), d), "Wk": g(ks[3], (d, d), d), "Wv": g(ks[4], (d, d), d),
                "Wo": g(ks[5], (d, d), d), "U": g(ks[6], (d, v), d)}

    def logits(self, params: dict, seqs: jax.Array) -> jax.Array:
        """Next-token logits, shape (B, L, V)."""
        h = params["E"][seqs] + params["P"][: seqs.shape[-1]]
        q, k, v = h @ params["Wq"], h @ params["Wk"], h @ params["Wv"]
        scores = jnp.einsum("btd,bsd->bts", q, k) / np.sqrt(self.width)
        causal = jnp.tril(jnp.ones((seqs.shape[-1], seqs.shape[-1]), bool))
        att = jax.nn.softmax(jnp.where(causal, scores, -jnp.inf), axis=-1)
        a = jnp.einsum("bts,bsd->btd", att, v) @ params["Wo"]
        return (h + a) @ params["U"]

    def _token_losses(self, params: dict, seqs: jax.Array) -> jax.Array:
        """Cross-entropy of predicting x_{t+1} at every position t < L-1, shape (B, L-1)."""
        z = self.logits(params, seqs)[:, :-1]
        y = seqs[:, 1:]
        return jax.nn.logsumexp(z, axis=-1) - jnp.take_along_axis(z, y[..., None], -1)[..., 0]

    def _expected_losses(self, params: dict, seqs: jax.Array) -> jax.Array:
        """E_{y ~ q_{x_t}} [-log p(y | x_{<=t})] at every position, shape (B, L)."""
        z = self.logits(params, seqs)
        return jax.nn.logsumexp(z, axis=-1) - jnp.sum(self.data.probs[seqs] * z, axis=-1)

    def loss(self, params: dict) -> jax.Array:
        """Mean expected next-token cross-entropy over the evaluation prefixes."""
        return jnp.mean(self._expected_losses(params, self.eval_sequences))

    def sample_loss(self, params: dict, key: jax.Array) -> jax.Array:
        """Mean cross-entropy on ``batch_size`` fresh chain sequences drawn with ``key``."""
        keys = jax.random.split(key, self.batch_size)
        seqs = jax.vmap(lambda k: self.data.sample_sequence(self.seq_len, key=k))(keys)
        return jnp.mean(self._token_losses(params, seqs))

    def decompose(self, params: dict) -> dict[str, jax.Array]:
        """Split by the class of the previous token, of the excess over the entropy floor:
        ``loss = river_loss + hill_loss + entropy_floor`` (module docstring).

        Keys: ``loss`` (= :meth:`loss`), ``river_loss`` / ``hill_loss`` (the KL divergences from
        the true next-token distribution summed over deterministic / stochastic positions and
        divided by the number of positions, each >= 0); extras: ``entropy_floor`` (the mean
        next-token entropy), ``excess_loss = river_loss + hill_loss`` (the mean KL divergence),
        ``det_loss`` / ``stoch_loss`` (class mean losses).
        """
        seqs = self.eval_sequences
        ce = self._expected_losses(params, seqs)
        ent = self.data.row_entropy()[seqs]
        det = self.data.is_det[seqs]
        n = ce.size
        kl = ce - ent
        river = jnp.sum(jnp.where(det, kl, 0.0)) / n
        hill = jnp.sum(jnp.where(det, 0.0, kl)) / n
        n_det = jnp.maximum(jnp.sum(det), 1)
        n_sto = jnp.maximum(n - jnp.sum(det), 1)
        return {"loss": jnp.mean(ce), "river_loss": river, "hill_loss": hill,
                "entropy_floor": jnp.mean(ent), "excess_loss": river + hill,
                "det_loss": jnp.sum(jnp.where(det, ce, 0.0)) / n_det,
                "stoch_loss": jnp.sum(jnp.where(det, 0.0, ce)) / n_sto}


def transformer(data: BigramData, *, seq_len: int = 32, width: int = 16, batch_size: int = 8,
                num_eval: int = 256, key: jax.Array) -> TransformerModel:
    """A :class:`TransformerModel` with ``num_eval`` evaluation sequences drawn with ``key``.

    Args:
        data: bigram data from :func:`rivervalley.bigram.make_data`.
        seq_len: sequence length L >= 2.
        width: model width d >= 1.
        batch_size: sequences per SGD step >= 1.
        num_eval: evaluation sequences >= 1.
        key: PRNG key for the evaluation set.
    """
    if not isinstance(data, BigramData):
        raise TypeError(f"data={fmt(data)} must be a BigramData (rivervalley.bigram.make_data), "
                        f"not {type(data).__name__}")
    seq_len = check_int("seq_len", seq_len, lo=2)
    width = check_int("width", width, lo=1)
    batch_size = check_int("batch_size", batch_size, lo=1)
    num_eval = check_int("num_eval", num_eval, lo=1)
    check_key("key", key)
    keys = jax.random.split(key, num_eval)
    seqs = jax.jit(jax.vmap(lambda k: data.sample_sequence(seq_len, key=k)))(keys)
    return build(TransformerModel, data=data, eval_sequences=seqs, width=int(width),
                 seq_len=int(seq_len), batch_size=int(batch_size))


__all__ = ["TransformerModel", "transformer"]
