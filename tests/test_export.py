"""Exports to Levanter and PyTorch: the fragments describe the same schedule, step for step."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

import rivervalley as rv
from rivervalley import export
from rivervalley import schedules as S

# ------------------------------------------------------------------ Levanter, re-implemented
# A faithful float64 re-implementation of Levanter's OptimizerConfig.lr_scheduler
# (stanford-crfm/levanter, src/levanter/optim/config.py, the version with cycles / decay /
# rewarmup): per cycle, _convert_frac_or_steps for warmup (first cycle) or rewarmup, decay
# (None: the rest of the cycle) and stable = cycle - warmup - decay; the pieces are optax
# schedules chained by optax.join_schedules, whose piece i >= 1 sees the count step - boundary
# of the previous piece. Written from the rules, in NumPy float64.


def _convert_frac_or_steps(v, n):
    if v < 0.0 or (v > 1.0 and v % 1 != 0):
        raise ValueError(v)
    if v <= 1.0:
        return int(v * n)
    return int(v)


def _optax_linear(init, end, steps):
    if steps <= 0:
        return lambda c: np.full(np.shape(c), float(init))
    return lambda c: (init - end) * (1 - np.clip(c, 0, steps) / steps) + end


def _optax_cosine(init, steps, alpha):
    assert steps > 0  # optax refuses decay_steps <= 0
    return lambda c: init * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * np.minimum(c, steps) / steps))
                             + alpha)


def _levanter_inv(lr, min_lr, steps):
    return lambda c: np.maximum(
        lr * np.minimum(1.0, 1.0 / ((lr / min_lr - 1) * np.maximum(c, 1) / steps + 1)), min_lr)


def levanter_lr(opt: dict, num_train_steps: int, t: np.ndarray) -> np.ndarray:
    ends = [0] + list(opt.get("cycles") or [])
    if ends[-1] != num_train_steps:
        ends.append(num_train_steps)
    lr, m = opt["learning_rate"], opt["min_lr_ratio"]
    min_lr = lr * m
    pieces, boundaries = [], []
    previous_end = 0.0
    for cycle, (start, end) in enumerate(zip(ends[:-1], ends[1:])):
        n = end - start
        w = _convert_frac_or_steps(opt["warmup"] if cycle == 0 else opt.get("rewarmup", 0.0), n)
        if w != 0:
            pieces.append(_optax_linear(previous_end, lr, w))
            boundaries.append(start + w)
        d = _convert_frac_or_steps(opt["decay"], n) if opt["decay"] is not None else n - w
        stable = n - w - d
        if stable != 0:
            pieces.append(lambda c: np.full(np.shape(c), float(lr)))
            boundaries.append(start + w + stable)
        sched = {"cosine": lambda d=d: _optax_cosine(lr, d, m),
                 "linear": lambda d=d: _optax_linear(lr, min_lr, d),
                 "inv": lambda d=d: _levanter_inv(lr, min_lr, d)}[opt["lr_schedule"]]()
        previous_end = float(sched(np.asarray(d)))
        pieces.append(sched)
        boundaries.append(end)
    t = np.asarray(t, np.int64)
    out = pieces[0](t.astype(np.float64))
    for b, piece in zip(boundaries, pieces[1:]):
        out = np.where(t < b, out, piece((t - b).astype(np.float64)))
    return out


def _levanter_first_decay_steps(opt, num_train_steps):
    """Levanter's inv uses count = max(count, 1): its first decay step differs from inverse."""
    ends = [0] + list(opt.get("cycles") or []) + [num_train_steps]
    return [b - _convert_frac_or_steps(opt["decay"], b - a) for a, b in zip(ends[:-1], ends[1:])]


def _rv_lr(schedule, t):
    with jax.enable_x64(True):  # float64: a one-step shift of a decay is ~1/D, far above 1e-12
        return np.asarray(jax.jit(lambda s, x: s(x))(schedule, np.asarray(t, np.int64)))


def _round_trip(schedule, t):
    frag = export.to_levanter(schedule)
    total = frag["trainer"]["num_train_steps"]
    got = levanter_lr(frag["optimizer"], total, t)
    want = _rv_lr(schedule, t)
    ok = np.ones(len(t), bool)
    if frag["optimizer"]["lr_schedule"] == "inv":
        ok &= ~np.isin(t, _levanter_first_decay_steps(frag["optimizer"], total))
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-12, atol=1e-18)
    return frag


def _dense_steps(schedule, total):
    """Every step up to 2e5 steps; beyond, a dense sample with every boundary +- 3 (cycle ends,
    ends of (re)warmup, starts of decays)."""
    if total <= 200_000:
        return np.arange(total + 1)
    d = schedule.describe()
    ends = [0] + (d["checkpoints"] if "checkpoints" in d else [d["num_steps"]])
    marks = list(ends) + [ends[0] + d["warmup_steps"]]
    marks += [a + d.get("rewarmup_steps", 0) for a in ends[1:-1]]
    if hasattr(schedule, "decay_length") or hasattr(schedule, "decay_lengths"):
        D = np.ravel(getattr(schedule, "decay_lengths", getattr(schedule, "decay_length", 0)))
        marks += [b - int(D[min(k, len(D) - 1)]) for k, b in enumerate(ends[1:])]
    near = np.concatenate([np.arange(m - 3, m + 4) for m in marks])
    sample = np.random.default_rng(0).integers(0, total + 1, 20_000)
    grid = np.linspace(0, total, 5001).astype(np.int64)
    t = np.unique(np.concatenate([near, sample, grid]))
    return t[(t >= 0) & (t <= total)]


def _cases(T):
    """Every family and every Levanter-expressible decay shape at T steps, with fractions whose
    float64 product Levanter truncates (0.29 / 0.57 of 100-multiples, 0.41 / 0.82 of 300s)."""
    a, b = (3 * T) // 10, (7 * T) // 10
    out = []
    for shape in export.LEVANTER_SHAPES:
        m = 0.1 if shape == "inverse" else 0.05
        out += [
            S.wsd(3e-4, T, warmup_steps=T // 100, decay=0.2, decay_shape=shape, min_ratio=m),
            S.wsd(3e-4, T, decay=0.29, decay_shape=shape, min_ratio=m),
            S.wsd(3e-4, T, warmup_steps=T // 50, decay=0.57, decay_shape=shape, min_ratio=m),
            S.wsd(3e-4, T, decay=T // 7, decay_shape=shape, min_ratio=m),
            S.wsd_s(1e-3, [a, b, T], decay=0.41, decay_shape=shape, min_ratio=m),
            S.wsd_s(1e-3, [a, b, T], warmup_steps=T // 100, decay=0.29, decay_shape=shape,
                    min_ratio=m, rewarmup_steps=T // 200),
            S.wsd_s(1e-3, [T // 3, T], decay=0.82, decay_shape=shape, min_ratio=m),
        ]
    out += [S.cosine(1e-3, T, warmup_steps=T // 20, min_ratio=0.1), S.cosine(1e-3, T),
            S.cyclic_cosine(1e-3, [a, b, T], min_ratio=0.05, rewarmup_steps=T // 100),
            S.cyclic_cosine(1e-3, [T // 3, T], warmup_steps=T // 10)]
    return out


@pytest.mark.parametrize("T", [1000, 100_000, 1_000_000])
def test_levanter_round_trip_every_family_and_shape(T):
    disagree = 0
    for schedule in _cases(T):
        d = schedule.describe()
        frag = _round_trip(schedule, _dense_steps(schedule, T))
        frac = d.get("decay")
        if isinstance(frac, float):  # does Levanter's own arithmetic differ on the fraction?
            ends = [0] + (d["checkpoints"] if "checkpoints" in d else [d["num_steps"]])
            ours = np.ravel(getattr(schedule, "decay_lengths", getattr(schedule,
                                                                         "decay_length", 0)))
            theirs = [_convert_frac_or_steps(frac, b - a) for a, b in zip(ends[:-1], ends[1:])]
            if list(ours) != theirs:
                disagree += 1
                assert frag["optimizer"]["decay"] != frac  # so the export rewrote it
    assert disagree >= 2, "the cases must include fractions Levanter truncates"


def test_levanter_fragment_for_the_wsd_s_golden_case():
    s = S.wsd_s(0.7, [300, 700, 1000], decay=0.1, decay_shape="cosine", min_ratio=0.1)
    frag = export.to_levanter(s)
    opt = frag["optimizer"]
    assert opt["cycles"] == [300, 700]
    assert frag["trainer"]["num_train_steps"] == 1000
    assert opt["decay"] == 0.1 and opt["lr_schedule"] == "cosine"
    assert opt["min_lr_ratio"] == pytest.approx(0.1) and opt["learning_rate"] == pytest.approx(0.7)
    _round_trip(s, np.arange(1001))


def test_levanter_decay_is_rewritten_where_levanter_truncates():
    # 0.29 of 100: rivervalley 29 steps, Levanter int(0.29 * 100) = 28: written as 29 steps
    frag = export.to_levanter(S.wsd(1e-3, 100, decay=0.29))
    assert frag["optimizer"]["decay"] == 29
    assert export.levanter_steps(0.29, 100) == 28
    # cycles of different lengths cannot share a step count: a fraction that Levanter maps to
    # 123, 164, 123 steps
    s = S.wsd_s(1e-3, [300, 700, 1000], decay=0.41)
    assert s.decay_lengths.tolist() == [123, 164, 123]
    dec = export.to_levanter(s)["optimizer"]["decay"]
    assert isinstance(dec, float) and dec != 0.41
    assert [export.levanter_steps(dec, n) for n in (300, 400, 300)] == [123, 164, 123]
    assert "decay: 0.411" in export.to_levanter_yaml(s)
    # agreeing fractions are kept as written
    assert export.to_levanter(S.wsd(1e-3, 1000, decay=0.29))["optimizer"]["decay"] == 0.29
    # a one-step warmup, which Levanter would read as the fraction 1.0, becomes a fraction
    frag = export.to_levanter(S.wsd(1e-3, 100, warmup_steps=1))
    assert export.levanter_steps(frag["optimizer"]["warmup"], 100) == 1
    _round_trip(S.wsd(1e-3, 100, warmup_steps=1), np.arange(101))


@pytest.mark.parametrize("schedule, match", [
    (S.wsd(1e-3, 100, decay_shape="1-sqrt"), "decay_shape='1-sqrt'.*linear, cosine, inverse"),
    (S.wsd(1e-3, 100, decay=0.1, decay_shape="exponential", min_ratio=0.1), "exponential"),
    (S.wsd(1e-3, 100, decay=0.1, decay_shape="square"), "square"),
    (S.tabulated([0.1, 0.2]), "tabulated"),
    # one decay step per cycle in cycles of 10 and 1000 steps: no single value gives both
    (S.wsd_s(1e-3, [10, 1010], decay=1), r"decay=1 gives \[1, 1\] steps in cycles of "
                                          r"\[10, 1000\]"),
])
def test_levanter_refuses_what_it_cannot_express(schedule, match):
    with pytest.raises(ValueError, match=match):
        export.to_levanter(schedule)


def test_levanter_refuses_non_schedules_and_batches():
    with pytest.raises(ValueError, match="not a rivervalley schedule"):
        export.to_levanter(lambda t: 0.1)
    batch = jax.tree.map(lambda *x: np.stack(x), S.wsd(0.1, 100), S.wsd(0.2, 100))
    with pytest.raises(ValueError, match="batch"):
        export.to_levanter(batch)


def test_constant_and_tabulated_export_read_the_peak_value():
    # constant(peak_value) exports its peak as Levanter's learning_rate and as LambdaLR's base lr
    frag = export.to_levanter(S.constant(3e-4))
    assert frag["optimizer"]["learning_rate"] == pytest.approx(3e-4)
    assert frag["optimizer"]["lr_schedule"] == "constant"
    f = export.to_torch_lambda(S.constant(3e-4))
    assert f.peak_value == pytest.approx(3e-4) and f(10) == pytest.approx(1.0)
    # a tabulated schedule has no peak_value field: its peak is its largest value
    g = export.to_torch_lambda(S.tabulated([0.1, 0.4, 0.2]))
    assert g.peak_value == pytest.approx(0.4) and g(2) == pytest.approx(0.5)


def test_yaml_and_torch():
    text = export.to_levanter_yaml(S.wsd_s(0.7, [300, 700, 1000], decay=0.1, min_ratio=0.1))
    assert "cycles: [300, 700]" in text and "num_train_steps: 1000" in text
    f = export.to_torch_lambda(S.wsd(0.5, 100, decay=0.5))
    assert f(0) == pytest.approx(1.0) and f(75) == pytest.approx(0.5)
    assert isinstance(f, export.TorchLambda)


def test_optax_native():
    import jax.numpy as jnp
    import optax

    opt = optax.sgd(S.wsd(0.1, 10, decay=0.5))
    state = opt.init(jnp.zeros(1))
    for _ in range(8):
        upd, state = opt.update(jnp.ones(1), state)
    assert float(upd[0]) == pytest.approx(-0.1 * (1 - 2 / 5))  # step 7: r = 2/5 into the decay
    assert rv.export is export


def test_levanter_reimplementation_reads_levanter_rules():
    # guards the reference itself: Levanter's int() of float64 products, and the join offsets
    assert _convert_frac_or_steps(0.29, 100) == 28 and _convert_frac_or_steps(30, 7) == 30
    opt = {"learning_rate": 1.0, "min_lr_ratio": 0.0, "warmup": 2, "decay": 4,
           "lr_schedule": "linear", "cycles": [10], "rewarmup": 0.0}
    lr = levanter_lr(opt, 20, np.arange(21))
    assert lr[:3].tolist() == [0.0, 0.5, 1.0] and lr[6] == 1.0 and lr[7] == 0.75
    assert lr[10] == 1.0 and lr[16] == 1.0 and lr[17] == 0.75 and lr[20] == 0.0
    assert math.isclose(levanter_lr(dict(opt, lr_schedule="cosine"), 20, [8])[0], 0.5)
