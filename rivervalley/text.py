"""A character-level transformer on real text (tinyshakespeare), through ``problems.from_loss``.

The corpus ships with the package (``rivervalley/data/text``, public domain, 1.1 MB, 65
characters). The first ``1 - val_fraction`` of it is the training text, the contiguous tail the
held-out validation text. Training examples are windows of ``seq_len + 1`` characters starting
every ``seq_len`` characters; a step draws ``batch_size`` of them uniformly with replacement
(:func:`rivervalley.problems.from_loss`). ``loss`` / ``decompose`` average over ``num_eval``
validation windows spread evenly over the tail.

The model is a pre-norm GPT (learned positions, ``depth`` blocks of causal multi-head attention
and a 4x GELU MLP, RMS norms, untied output head) written in plain ``jax.numpy``:

    h_0 = E[x] + P;   h <- h + Attn(norm(h));   h <- h + MLP(norm(h));   logits = norm(h) U

and the loss is the mean next-character cross-entropy (nats). The optimizer is AdamW
(:func:`adamw`: beta = (0.9, 0.99), weight decay 0.1 scaled by the LR as in optax, gradients
clipped at global norm 1).

**Character classes** (the bigram insight of THEORY.md §7 on real text). Each prediction is
classed by the character it conditions on last: ``in_word`` (after a letter or an apostrophe:
the rest of a word, often nearly determined: river-like), ``after_space`` (after a space or a
newline: the first letter of the next word, genuinely uncertain: hill-like) and ``other`` (after
punctuation or a digit). ``decompose`` reports, for each class c, its contribution
``c_loss = sum_{i in c} CE_i / N`` (the three sum to the loss) and its mean ``c_mean``
(``c_loss / fraction``), with the class fractions ``c_frac``.

Scales (:data:`SCALES`, measured on 2 shared CPU cores unless said otherwise; see
``benchmarks/bench_text.py``): ``"fast"`` (tests, seconds), ``"full"`` (the figures), ``"large"``
(for a GPU: width 256, 4 blocks, 128 characters, batch 64; not measured here, see the docstring
of :data:`SCALES`).

Example:
    >>> import jax
    >>> from rivervalley import text
    >>> cfg = text.config("fast")
    >>> prob, params = text.build(cfg, key=jax.random.key(0))
    >>> print(prob.batch_size, cfg.seq_len, text.vocab_size())
    16 32 65
    >>> m = prob.decompose(params)
    >>> print(abs(float(m["loss"]) - 4.174) < 0.05)  # log(65) = 4.174 at initialization
    True
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rivervalley import problems
from rivervalley import schedules as _s
from rivervalley._validate import check_int, check_real
from rivervalley.protocols import Array

__all__ = ["TextConfig", "SCALES", "config", "load_text", "vocabulary", "vocab_size", "encode",
           "decode", "splits", "build", "init_params", "logits", "loss_fn", "metrics_fn", "adamw",
           "optimizer",
           "schedule", "CLASSES"]

#: Character classes of a prediction, by the character it conditions on (see the module doc).
CLASSES = ("in_word", "after_space", "other")


@dataclass(frozen=True)
class TextConfig:
    """Model, data and training settings, checked at construction (``dataclasses.replace``
    checks again); :func:`config` gives the named scales.

    Attributes:
        seq_len: characters of context per window.
        width: model width d.
        depth: transformer blocks.
        heads: attention heads (divides ``width``).
        batch_size: windows per step.
        val_fraction: the held-out tail's share of the corpus.
        num_eval: validation windows ``loss`` / ``decompose`` average over.
        peak_value: AdamW's peak learning rate.
        warmup_steps: linear warmup.
        num_steps: training steps of the longest run.
        decay: WSD decay fraction.
        weight_decay: AdamW's decoupled weight decay.
        record_every: record interval of the figures' runs.
        seeds: seeds of the figures' runs.
    """

    seq_len: int = 64
    width: int = 48
    depth: int = 2
    heads: int = 4
    batch_size: int = 16
    val_fraction: float = 0.1
    num_eval: int = 64
    peak_value: float = 1e-2
    warmup_steps: int = 100
    num_steps: int = 1200
    decay: float = 0.2
    weight_decay: float = 0.1
    record_every: int = 40
    seeds: int = 2

    def __post_init__(self):
        for name in ("seq_len", "width", "depth", "heads", "batch_size", "num_eval", "num_steps",
                     "record_every", "seeds"):
            check_int(name, getattr(self, name), lo=1)
        check_int("warmup_steps", self.warmup_steps, lo=0, hi=self.num_steps - 1)
        if self.width % self.heads:
            raise ValueError(f"heads={self.heads} must divide width={self.width}")
        check_real("val_fraction", self.val_fraction, lo=0.0, hi=0.5, lo_open=True)
        check_real("peak_value", self.peak_value, lo=0.0, lo_open=True, what="a learning rate")
        check_real("decay", self.decay, lo=0.0, hi=1.0, lo_open=True)
        check_real("weight_decay", self.weight_decay, lo=0.0)


#: Named configurations. ``"fast"`` trains a 1-block width-32 model for 300 steps (the test
#: suite); ``"full"`` is the figures' model; ``"large"`` is for a GPU (width 256, 4 blocks,
#: 128-character context, batch 64, 5000 steps: ~140x the FLOPs of a ``"full"`` step, expected
#: to take minutes per run on one modern GPU; an estimate from FLOPs, not measured here).
SCALES: dict[str, TextConfig] = {
    "fast": TextConfig(seq_len=32, width=32, depth=1, heads=2, batch_size=16, num_eval=64,
                       peak_value=1e-2, warmup_steps=30, num_steps=300, record_every=20,
                       seeds=2),
    "full": TextConfig(),
    "large": TextConfig(seq_len=128, width=256, depth=4, heads=8, batch_size=64, num_eval=512,
                        peak_value=3e-3, warmup_steps=300, num_steps=5000, record_every=100,
                        seeds=3),
}


def config(scale: str | TextConfig = "full", **changes) -> TextConfig:
    """A named scale (``"fast"``, ``"full"``, ``"large"``) or a config, with ``changes`` applied
    (checked by :class:`TextConfig`).

    >>> config("fast", num_steps=100).num_steps
    100
    """
    if isinstance(scale, str):
        if scale not in SCALES:
            raise ValueError(f"scale={scale!r} is unknown; known scales: {', '.join(SCALES)}")
        cfg = SCALES[scale]
    elif isinstance(scale, TextConfig):
        cfg = scale
    else:
        raise TypeError(f"scale={scale!r} must be a scale name or a TextConfig")
    return dataclasses.replace(cfg, **changes)


# -- data --------------------------------------------------------------------------------------
@functools.cache
def load_text() -> str:
    """The tinyshakespeare corpus shipped with the package."""
    return (resources.files("rivervalley") / "data" / "text" / "tinyshakespeare.txt").read_text(
        encoding="utf-8")


@functools.cache
def vocabulary() -> str:
    """The corpus's characters, sorted (65)."""
    return "".join(sorted(set(load_text())))


def vocab_size() -> int:
    """The number of distinct characters of the corpus (the model's vocabulary size)."""
    return len(vocabulary())


def encode(s: str) -> np.ndarray:
    """Characters -> int32 ids (``ValueError`` for a character outside the corpus)."""
    index = {c: i for i, c in enumerate(vocabulary())}
    try:
        return np.array([index[c] for c in s], np.int32)
    except KeyError as err:
        raise ValueError(f"character {err.args[0]!r} is not in the corpus vocabulary") from None


def decode(ids: Any) -> str:
    """Int ids -> characters, the inverse of :func:`encode` (any array shape, read in order)."""
    voc = vocabulary()
    return "".join(voc[int(i)] for i in np.asarray(ids).ravel())


@functools.cache
def _tokens() -> np.ndarray:
    return encode(load_text())


def _windows(tokens: np.ndarray, seq_len: int) -> np.ndarray:
    n = (tokens.size - 1) // seq_len
    idx = np.arange(n)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
    return tokens[idx]


@functools.cache
def _class_table() -> np.ndarray:
    """Class id (index into :data:`CLASSES`) of the prediction after each character."""
    table = np.full(vocab_size(), 2, np.int32)
    for i, c in enumerate(vocabulary()):
        if c.isalpha() or c == "'":
            table[i] = 0
        elif c in " \n":
            table[i] = 1
    return table


def splits(cfg: TextConfig) -> tuple[np.ndarray, np.ndarray]:
    """(training windows, evaluation windows), int32 of shape (n, seq_len + 1)."""
    tokens = _tokens()
    cut = int(round(tokens.size * (1 - cfg.val_fraction)))
    train = _windows(tokens[:cut], cfg.seq_len)
    val = _windows(tokens[cut:], cfg.seq_len)
    if cfg.num_eval > val.shape[0]:
        raise ValueError(f"num_eval={cfg.num_eval} exceeds the {val.shape[0]} validation windows "
                         f"of {cfg.seq_len + 1} characters")
    pick = np.linspace(0, val.shape[0] - 1, cfg.num_eval).round().astype(int)
    return train, val[pick]


# -- model -------------------------------------------------------------------------------------
def init_params(cfg: TextConfig, *, key: Array) -> dict:
    """GPT-2 style initialization: N(0, 0.02^2), residual outputs scaled by 1/sqrt(2 depth)."""
    d, v = cfg.width, vocab_size()
    ks = iter(jax.random.split(key, 3 + 4 * cfg.depth))
    g = lambda shape, std=0.02: std * jax.random.normal(next(ks), shape)  # noqa: E731
    out_std = 0.02 / np.sqrt(2 * cfg.depth)
    blocks = [{"n1": jnp.ones(d), "qkv": g((d, 3 * d)), "o": g((d, d), out_std),
               "n2": jnp.ones(d), "up": g((d, 4 * d)), "down": g((4 * d, d), out_std)}
              for _ in range(cfg.depth)]
    return {"tok": g((v, d)), "pos": g((cfg.seq_len, d)), "blocks": blocks,
            "nf": jnp.ones(d), "head": g((d, v))}


def _norm(x: Array, scale: Array) -> Array:
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6) * scale


def logits(params: dict, x: Array, *, heads: int) -> Array:
    """Next-character logits (B, L, V) of int inputs (B, L)."""
    length = x.shape[-1]
    h = params["tok"][x] + params["pos"][:length]
    d = h.shape[-1]
    causal = jnp.tril(jnp.ones((length, length), bool))
    for blk in params["blocks"]:
        q, k, v = jnp.split(_norm(h, blk["n1"]) @ blk["qkv"], 3, axis=-1)
        split = lambda t: t.reshape(t.shape[:-1] + (heads, d // heads))  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        s = jnp.einsum("bthe,bshe->bhts", q, k) / np.sqrt(d // heads)
        a = jax.nn.softmax(jnp.where(causal, s, -1e30), axis=-1)
        att = jnp.einsum("bhts,bshe->bthe", a, v).reshape(h.shape)
        h = h + att @ blk["o"]
        h = h + jax.nn.gelu(_norm(h, blk["n2"]) @ blk["up"]) @ blk["down"]
    return _norm(h, params["nf"]) @ params["head"]


def _token_losses(params: dict, batch: Array, heads: int) -> tuple[Array, Array]:
    x, y = batch[:, :-1], batch[:, 1:]
    z = logits(params, x, heads=heads)
    ce = jax.nn.logsumexp(z, axis=-1) - jnp.take_along_axis(z, y[..., None], -1)[..., 0]
    return ce, x


def loss_fn(params: dict, batch: Array, *, heads: int) -> Array:
    """Mean next-character cross-entropy (nats) of windows ``batch`` (B, L + 1)."""
    return jnp.mean(_token_losses(params, batch, heads)[0])


def metrics_fn(params: dict, batch: Array, *, heads: int) -> dict[str, Array]:
    """Per class c: ``c_loss`` (contribution, the three sum to the loss), ``c_mean``, ``c_frac``."""
    ce, x = _token_losses(params, batch, heads)
    cls = jnp.asarray(_class_table())[x]
    n = ce.size
    out = {}
    for i, name in enumerate(CLASSES):
        m = cls == i
        count = jnp.sum(m)
        total = jnp.sum(jnp.where(m, ce, 0.0))
        out[f"{name}_loss"] = total / n
        out[f"{name}_mean"] = total / jnp.maximum(count, 1)
        out[f"{name}_frac"] = count / n
    return out


@functools.cache
def _fns(heads: int):
    # one function object per head count: the engine's compiled programs are keyed on it
    return (functools.partial(loss_fn, heads=heads), functools.partial(metrics_fn, heads=heads))


def build(cfg: TextConfig | str = "full", *, key: Array) -> tuple[problems.LossProblem, dict]:
    """The problem (``from_loss`` on the training windows, evaluated on the validation tail)
    and initial parameters drawn with ``key``."""
    cfg = config(cfg)
    train, val = splits(cfg)
    params = init_params(cfg, key=key)
    loss, metrics = _fns(cfg.heads)
    prob = problems.from_loss(loss, params, jnp.asarray(train), batch_size=cfg.batch_size,
                              eval_data=jnp.asarray(val), metrics_fn=metrics)
    return prob, params


def adamw(schedule, weight_decay: float = 0.1) -> optax.GradientTransformation:
    """Clip at global norm 1, then AdamW(b1 0.9, b2 0.99, ``weight_decay``)."""
    return optax.chain(optax.clip_by_global_norm(1.0),
                       optax.adamw(schedule, b1=0.9, b2=0.99, weight_decay=weight_decay))


@functools.cache
def _optimizer(weight_decay: float):
    return functools.partial(adamw, weight_decay=weight_decay)


def optimizer(cfg: TextConfig):
    """The engine's optimizer factory ``schedule -> AdamW`` for ``cfg`` (one object per weight
    decay, so compiled programs are reused)."""
    return _optimizer(float(cfg.weight_decay))


def schedule(kind: str, cfg: TextConfig, num_steps: int | None = None) -> _s.WSD:
    """``"constant"``, ``"wsd"`` or ``"cosine"`` with the config's warmup and peak, all of WSD
    form (stackable into one sweep): constant = WSD with min_ratio 1; cosine = a cosine decay
    over every step after the warmup."""
    t = cfg.num_steps if num_steps is None else num_steps
    w, p = cfg.warmup_steps, cfg.peak_value
    if kind == "constant":
        return _s.wsd(p, t, warmup_steps=w, decay=cfg.decay, min_ratio=1.0)
    if kind == "wsd":
        return _s.wsd(p, t, warmup_steps=w, decay=cfg.decay)
    if kind == "cosine":
        return _s.wsd(p, t, warmup_steps=w, decay=t - w, decay_shape="cosine")
    raise ValueError(f"kind={kind!r} is unknown; known: constant, wsd, cosine")
