"""Tests of rivervalley.schedules: golden values (optax, Levanter, PyTorch), properties, vmap."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rivervalley.schedules as S
from rivervalley import export

# A float32 schedule value is a handful of roundings (progress, the shape's arithmetic, the peak
# product: at most ~8, each <= eps/2) plus at most one transcendental (cos, sqrt, exp, pow), which
# XLA's CPU kernels compute to within a few ulp on any vector width: 16 eps32 (1.9e-6) bounds the
# relative error on every CPU. Linear warmup is two roundings (t / W, times peak): 1e-6 is 8 eps.
SCHED_RTOL = 16 * float(np.finfo(np.float32).eps)

# ------------------------------------------------------------------ golden values


def test_cosine_equals_optax_whole_run():
    for peak, T, W, m in [(0.3, 1000, 0, 0.0), (1.0, 500, 50, 0.1), (2e-3, 97, 13, 0.25)]:
        with jax.enable_x64(True):
            ours = S.cosine(peak, T, warmup_steps=W, min_ratio=m)
            ref = optax.warmup_cosine_decay_schedule(
                init_value=0.0, peak_value=peak, warmup_steps=W, decay_steps=T,
                end_value=m * peak)
            steps = jnp.arange(T + 1)
            np.testing.assert_allclose(jax.jit(ours)(steps), jax.jit(ref)(steps), rtol=1e-12,
                                       atol=1e-15)
        # float32 default too: optax forms the cosine's argument from its own float32 progress
        # t / T, so the arguments differ by ~1 ulp, amplified near the minimum where the value
        # is small relative to its slope; 2e-5 relative with an absolute floor of 1e-7 * peak
        np.testing.assert_allclose(
            S.as_array(S.cosine(peak, T, warmup_steps=W, min_ratio=m), T + 1),
            jax.jit(ref)(jnp.arange(T + 1)), rtol=2e-5, atol=1e-7 * peak)


def test_wsd_s_levanter_golden_case():
    # Levanter: cycles=[300, 700], num_train_steps=1000, decay=0.1, lr_schedule="cosine",
    # min_lr_ratio=0.1, warmup=0, rewarmup=0.
    peak = 0.7
    s = S.wsd_s(peak, [300, 700, 1000], decay=0.1, decay_shape="cosine", min_ratio=0.1)
    lr = S.as_array(s, 1001)
    for t in (0, 269, 300, 659, 701, 969):
        assert lr[t] == pytest.approx(peak, rel=1e-6), t
    for t in (271, 661, 971):
        assert lr[t] < peak * (1 - 1e-6), t
    # decays start where Levanter's stable phase ends: 270, 660, 970 (cosine(0) = peak there)
    for start, d in ((270, 30), (660, 40), (970, 30)):
        for j in (0, 1, d // 2, d - 1):
            want = peak * (0.1 + 0.9 * (1 + math.cos(math.pi * j / d)) / 2)
            assert lr[start + j] == pytest.approx(want, rel=1e-5)
    assert lr[1000] == pytest.approx(0.1 * peak, rel=1e-6)
    assert float(s(300)) == pytest.approx(peak, rel=1e-6)  # eager agrees


def test_wsd_s_single_checkpoint_is_wsd():
    for kw in [dict(decay=0.1), dict(decay=0.3, decay_shape="1-sqrt", min_ratio=0.05),
               dict(decay=77, decay_shape="inverse", min_ratio=0.2, warmup_steps=40),
               dict(decay=1.0, decay_shape="cosine"), dict(decay=0.9, warmup_steps=100)]:
        a = S.as_array(S.wsd_s(0.4, [1000], **kw), 1201)
        b = S.as_array(S.wsd(0.4, 1000, **kw), 1201)
        np.testing.assert_array_equal(a, b)


def test_wsd_1_sqrt_formula():
    peak, T, phi, m = 0.5, 1000, 0.2, 0.1
    s = S.wsd(peak, T, decay=phi, decay_shape="1-sqrt", min_ratio=m)
    D = 200
    for r in (0.0, 0.25, 0.5, 1.0):
        t = T - D + r * D
        want = peak * (m + (1 - m) * (1 - math.sqrt(r)))
        assert float(s(t)) == pytest.approx(want, rel=1e-6), r
    assert float(s(T - D - 1)) == pytest.approx(peak)


def test_wsd_rewarmup_starts_at_minimum():
    peak, m = 1.0, 0.2
    s = S.wsd_s(peak, [100, 200], decay=0.2, min_ratio=m, rewarmup_steps=10)
    # Levanter: linear_schedule(previous_end = m*peak, peak, 10) starting at the cycle end.
    for j in range(11):
        assert float(s(100 + j)) == pytest.approx(m + (1 - m) * j / 10, rel=1e-6)
    # the second decay is 20% of the 100-step cycle, after the re-warmup
    assert float(s(179)) == pytest.approx(peak)
    assert float(s(190)) == pytest.approx(peak * (m + (1 - m) * 0.5), rel=1e-6)


# PyTorch golden numbers, produced once with torch 2.13.0+cpu in a throwaway venv:
#   p = torch.nn.Parameter(torch.zeros(1)); opt = torch.optim.SGD([p], lr=0.5)
#   sch = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=100, eta_min=0.05)
#   lrs = []
#   for t in range(300): lrs.append(opt.param_groups[0]["lr"]); opt.step(); sch.step()
#   print({s: repr(lrs[s]) for s in [0, 1, 25, 50, 99, 100, 101, 150, 199, 200, 250, 299]})
TORCH_COSINE_WARM_RESTARTS = {
    0: 0.5, 1: 0.4998889760822896, 25: 0.4340990257669732, 50: 0.275, 99: 0.05011102391771039,
    100: 0.5, 101: 0.4998889760822896, 150: 0.275, 199: 0.05011102391771039, 200: 0.5,
    250: 0.275, 299: 0.05011102391771039,
}


def test_cyclic_cosine_matches_pytorch():
    with jax.enable_x64(True):
        s = S.cyclic_cosine(0.5, [100, 200, 300], min_ratio=0.1)
        for t, want in TORCH_COSINE_WARM_RESTARTS.items():
            assert float(s(t)) == pytest.approx(want, rel=1e-12, abs=1e-15), t
    f = export.to_torch_lambda(s, 0.5)
    for t, want in TORCH_COSINE_WARM_RESTARTS.items():
        assert f(t) * 0.5 == pytest.approx(want, rel=1e-12), t


SHAPE_TABLE = {  # mult at r = 0, 1/2, 1 with m = 0.1, from THEORY.md §5 by hand
    "linear": (1.0, 0.55, 0.1),
    "cosine": (1.0, 0.55, 0.1),
    "1-sqrt": (1.0, 0.1 + 0.9 * (1 - math.sqrt(0.5)), 0.1),
    "inverse": (1.0, 1 / (1 + 0.5 * 9), 0.1),
    "exponential": (1.0, math.sqrt(0.1), 0.1),
    "square": (1.0, 0.1 + 0.9 * 0.75, 0.1),
}


@pytest.mark.parametrize("shape", S.DECAY_SHAPES)
def test_decay_multiplier_table(shape):
    want = SHAPE_TABLE[shape]
    for r, w in zip((0.0, 0.5, 1.0), want, strict=True):
        assert float(S.decay_multiplier(shape, r, 0.1)) == pytest.approx(w, rel=SCHED_RTOL)
        idx = S.DECAY_SHAPES.index(shape)
        assert float(S.decay_multiplier(idx, r, 0.1)) == pytest.approx(w, rel=SCHED_RTOL)
        assert float(S.decay_multiplier(jnp.asarray(idx), r, 0.1)) == pytest.approx(
            w, rel=SCHED_RTOL)


def test_decay_multiplier_vmaps_over_shape():
    idx = jnp.arange(len(S.DECAY_SHAPES))
    got = jax.vmap(lambda i: S.decay_multiplier(i, 0.5, 0.1))(idx)
    np.testing.assert_allclose(got, [SHAPE_TABLE[n][1] for n in S.DECAY_SHAPES], rtol=SCHED_RTOL)


def test_wsd_each_shape_at_boundaries():
    peak, T, m = 2.0, 400, 0.1
    for shape in S.DECAY_SHAPES:
        s = S.wsd(peak, T, decay=0.25, decay_shape=shape, min_ratio=m)
        got = [float(s(t)) for t in (300, 350, 400)]
        np.testing.assert_allclose(got, [peak * v for v in SHAPE_TABLE[shape]], rtol=SCHED_RTOL)


def test_warmup_linear_from_zero():
    s = S.wsd(1.0, 100, warmup_steps=10, decay=0.1)
    np.testing.assert_allclose(S.as_array(s, 12), [0, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1, 1],
                               rtol=SCHED_RTOL, atol=1e-7)  # peak * t / W: a few float32 roundings


def test_decay_fraction_float32_rounding():
    # float32(0.7) * 10 = 6.9999998; Levanter's int(0.7 * 10) = 7 decay steps.
    s = S.wsd(1.0, 10, decay=0.7)
    assert float(s(2)) == 1.0 and float(s(3)) == 1.0 and float(s(4)) < 1.0
    assert S.decay_steps_of(10, 0.7) == 7


# ------------------------------------------------------------------ adapters, repr, pytree


def test_as_array_and_torch_lambda_match_the_schedule():
    s = S.wsd_s(0.3, [50, 120, 200], warmup_steps=5, decay=0.25, decay_shape="square",
                min_ratio=0.05, rewarmup_steps=7)
    arr = S.as_array(s, 200)
    assert arr.shape == (200,) and isinstance(arr, np.ndarray)
    f = export.to_torch_lambda(s, 0.3)
    # float64 torch factor against the float32 array: the array's own error bound
    np.testing.assert_allclose([f(t) * 0.3 for t in range(200)], arr, rtol=SCHED_RTOL, atol=1e-8)
    assert isinstance(f(3), float)


def test_describe_and_repr():
    s = S.wsd(0.1, 1000, warmup_steps=10, decay=0.2, decay_shape="1-sqrt", min_ratio=0.05)
    d = s.describe()
    assert d == {"kind": "wsd", "peak_value": 0.1, "num_steps": 1000, "warmup_steps": 10,
                 "decay": 0.2, "decay_shape": "1-sqrt", "min_ratio": 0.05}
    assert repr(s).startswith("rv.schedules.wsd(peak_value=0.1, num_steps=1000")
    assert S.wsd(0.1, 1000, decay=30).describe()["decay"] == 30
    assert S.cyclic_cosine(1.0, [10, 20]).describe()["checkpoints"] == [10, 20]
    assert S.constant(0.5).describe() == {"kind": "constant", "peak_value": 0.5}


def test_schedule_is_a_pytree_through_jit():
    s = S.wsd_s(0.3, [100, 250], decay=0.2, decay_shape="cosine", min_ratio=0.1)
    leaves, treedef = jax.tree_util.tree_flatten(s)
    assert len(leaves) == 9  # the 8 parameters and the derived per-cycle decay lengths
    s2 = jax.tree_util.tree_unflatten(treedef, leaves)
    steps = jnp.arange(260)
    np.testing.assert_array_equal(jax.jit(lambda sch, t: sch(t))(s, steps), s2(steps))


def test_works_on_int_and_whole_float_scalars_and_arrays():
    s = S.cosine(1.0, 100)
    assert float(s(50)) == float(s(50.0)) == float(s(np.float64(50))) == float(s(np.int64(50)))
    assert float(s(jnp.int32(50))) == pytest.approx(0.5, rel=1e-6)
    assert s(jnp.arange(6).reshape(2, 3)).shape == (2, 3)
    assert s(jnp.arange(6)).dtype == jnp.result_type(float)
    # a concrete fractional step is refused (steps count updates); a traced one is floored
    with pytest.raises(ValueError, match=r"step=50\.5 is not a whole number"):
        s(50.5)
    with pytest.raises(ValueError, match="not a whole number"):
        s(np.array([1.0, 2.5]))
    assert float(jax.jit(s)(jnp.float32(50.5))) == float(s(50))
    with pytest.raises(ValueError, match="bool"):
        s(True)
    with pytest.raises(ValueError, match="infinite"):
        s(float("inf"))
    with pytest.raises(ValueError, match="beyond the step counter"):
        s(2**31)


# ------------------------------------------------------------------ hypothesis properties

_SHAPES = st.sampled_from(S.DECAY_SHAPES)
_EVAL = jax.jit(lambda sch, t: sch(t))
_STEPS = jnp.arange(1301)  # fixed length: one compilation per schedule structure


def _lr(s, n):
    """LR of steps 0..n-1 through one jitted program of fixed size (fast under hypothesis)."""
    return np.asarray(_EVAL(s, _STEPS))[:n].astype(np.float64)


@st.composite
def _wsd_s_cases(draw):
    k = draw(st.integers(1, 4))
    lengths = draw(st.lists(st.integers(20, 300), min_size=k, max_size=k))
    ends = np.cumsum(lengths).tolist()
    shape = draw(_SHAPES)
    lo = 0.01 if shape in ("inverse", "exponential") else 0.0
    m = draw(st.floats(lo, 1.0))
    decay = draw(st.floats(0.05, 0.5))
    warm = draw(st.integers(0, min(lengths[0] // 2, 10)))
    rewarm = draw(st.integers(0, min(min(lengths[1:], default=20) // 2, 10)))
    peak = draw(st.floats(1e-4, 10.0))
    return peak, ends, dict(decay=decay, decay_shape=shape, min_ratio=m, warmup_steps=warm,
                            rewarmup_steps=rewarm)


@settings(max_examples=40, deadline=None)
@given(_wsd_s_cases())
def test_wsd_s_properties(case):
    peak, ends, kw = case
    s = S.wsd_s(peak, ends, **kw)
    lr = _lr(s, ends[-1] + 1)
    m, W, R = kw["min_ratio"], kw["warmup_steps"], kw["rewarmup_steps"]
    tol = 1e-5 * peak
    starts = [0] + ends[:-1]
    after_warm = np.ones(len(lr), bool)
    after_warm[:W] = False
    for st_ in starts[1:]:
        after_warm[st_:st_ + R] = False
    # bounded in [m * peak, peak] after (re)warmup; in [0, peak] during it
    assert np.all(lr <= peak + tol) and np.all(lr >= -tol)
    assert np.all(lr[after_warm] >= m * peak - tol)
    # non-increasing within each decay; continuity: jumps bounded except at declared restarts
    for k, (a, e) in enumerate(zip(starts, ends, strict=True)):
        d = S.decay_steps_of(e - a, kw["decay"])
        seg = lr[e - d:e + 1] if k == len(ends) - 1 else lr[e - d:e]
        assert np.all(np.diff(seg) <= tol)
    jumps = np.abs(np.diff(lr))
    restarts = set(ends[:-1]) if R == 0 else set()
    biggest = 0.0
    for t in range(1, len(lr)):
        if t not in restarts:
            biggest = max(biggest, jumps[t - 1])
    # the steepest legitimate step: max |mult'(r)| / D over a decay (r advances 1/D per step;
    # 1-sqrt is steepest at r = 0 where one step drops sqrt(1/D)); peak / W over a warmup
    lengths = np.diff([0] + ends)
    dmin = min(S.decay_steps_of(L, kw["decay"]) for L in lengths)
    mp = max(m, 1e-12)
    slope = {"linear": 1.0, "cosine": math.pi / 2, "inverse": 1 / mp - 1,
             "exponential": -math.log(mp), "square": 2.0}
    shape = kw["decay_shape"]
    bound = 1 / math.sqrt(dmin) if shape == "1-sqrt" else slope[shape] / dmin
    bound = max([bound] + [1 / x for x in (W, R) if x > 0])
    assert biggest <= peak * bound * 1.001 + tol


@settings(max_examples=25, deadline=None)
@given(_wsd_s_cases())
def test_jit_equals_eager(case):
    peak, ends, kw = case
    s = S.wsd_s(peak, ends, **kw)
    steps = np.arange(ends[-1] + 1)
    eager = np.asarray([float(s(t)) for t in steps[:: max(1, len(steps) // 7)]])  # op by op
    # two float32 evaluations (fused vs op by op), each within SCHED_RTOL of the exact value
    np.testing.assert_allclose(_lr(s, len(steps))[:: max(1, len(steps) // 7)], eager,
                               rtol=2 * SCHED_RTOL, atol=1e-7 * peak)


@settings(max_examples=25, deadline=None)
@given(st.floats(1e-3, 5.0), st.integers(10, 1300), st.floats(0.0, 1.0),
       st.integers(0, 9))
def test_cosine_properties(peak, T, m, W):
    s = S.cosine(peak, T, warmup_steps=min(W, T), min_ratio=m)
    lr = _lr(s, T + 1)
    W = min(W, T)
    assert np.all(lr[W:] >= m * peak * (1 - 1e-5) - 1e-7)
    assert np.all(lr <= peak * (1 + 1e-6))
    assert np.all(np.diff(lr[W:]) <= 1e-6 * peak)
    assert np.all(np.diff(lr[:W + 1]) >= -1e-6 * peak)


# ------------------------------------------------------------------ vmap sweeps


def test_vmap_over_parameters_equals_loop_and_compiles_once():
    peaks = jnp.array([0.1, 0.5, 1.0, 2.0, 0.3, 0.7])
    fracs = jnp.array([0.1, 0.2, 0.05, 0.5, 1.0, 0.3])
    shapes = jnp.arange(6)
    mins = jnp.array([0.0, 0.1, 0.2, 0.05, 0.3, 0.01])
    ends = jnp.array([[300., 700., 1000.]] * 3 + [[200., 600., 1000.]] * 3)
    steps = jnp.arange(1001)
    traces = []

    def lrs(p, f, sh, m, e):
        traces.append(1)  # Python side effect: runs once per trace
        return S.wsd_s(p, e, decay=f, decay_shape=sh, min_ratio=m)(steps)

    sweep = jax.jit(jax.vmap(lrs))
    out = sweep(peaks, fracs, shapes, mins, ends)
    out2 = sweep(peaks * 2, fracs, shapes, mins + 0.01, ends + 0)  # new values, same shapes
    assert len(traces) == 1
    for i in range(6):
        ref = S.as_array(S.wsd_s(float(peaks[i]), np.asarray(ends[i]).astype(int).tolist(),
                                 decay=float(fracs[i]), decay_shape=S.DECAY_SHAPES[i],
                                 min_ratio=float(mins[i])), 1001)
        np.testing.assert_allclose(out[i], ref, rtol=2 * SCHED_RTOL, atol=1e-8)  # two float32 evals
        ref2 = S.as_array(S.wsd_s(float(peaks[i]) * 2, np.asarray(ends[i]).astype(int).tolist(),
                                  decay=float(fracs[i]), decay_shape=S.DECAY_SHAPES[i],
                                  min_ratio=float(mins[i]) + 0.01), 1001)
        np.testing.assert_allclose(out2[i], ref2, rtol=1e-5, atol=1e-7)


def test_vmap_over_stacked_schedules():
    scheds = [S.wsd(p, 500, decay=f, decay_shape=sh, min_ratio=m)
              for p, f, sh, m in [(0.1, 0.1, "linear", 0.0), (0.2, 0.4, "inverse", 0.1),
                                  (0.3, 0.2, "1-sqrt", 0.05)]]
    stacked = jax.tree.map(lambda *x: jnp.stack([jnp.asarray(v) for v in x]), *scheds)
    steps = jnp.arange(501)
    got = jax.jit(jax.vmap(lambda s: s(steps)))(stacked)
    for i, s in enumerate(scheds):
        np.testing.assert_allclose(got[i], S.as_array(s, 501), rtol=2 * SCHED_RTOL)  # two evals


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("call, match", [
    (lambda: S.constant(-0.1), r"peak_value=-0\.1 is outside the valid range \[0, inf\)"),
    (lambda: S.constant(float("nan")), r"value=nan"),
    (lambda: S.cosine(float("inf"), 100), r"peak_value=inf"),
    (lambda: S.wsd(-1.0, 100), r"peak_value=-1\.0"),
    (lambda: S.cosine(1.0, 100, warmup_steps=101), r"warmup_steps=101 is longer than the run"),
    (lambda: S.wsd(1.0, 100, warmup_steps=95, decay=0.1), r"decay=0\.1 .*do not fit"),
    (lambda: S.wsd_s(1.0, [100, 200], warmup_steps=150), r"warmup_steps=150 .*first cycle"),
    (lambda: S.wsd_s(1.0, [100, 150], rewarmup_steps=60), r"rewarmup_steps=60 .*cycle"),
    (lambda: S.cyclic_cosine(1.0, [100, 150], rewarmup_steps=51), r"rewarmup_steps=51"),
    (lambda: S.wsd(1.0, 100, decay=1.5), r"decay=1\.5 is outside \(0, 1\] as a fraction"),
    (lambda: S.wsd(1.0, 100, decay=300.0), r"decay=300\.0 .*pass an int, 300, for a number"),
    (lambda: S.wsd(1.0, 100, decay=0.0), r"decay=0\.0 is outside \(0, 1\]"),
    (lambda: S.wsd(1.0, 100, decay=0), r"decay=0 is outside \[1, 2147483647\] as a step count"),
    (lambda: S.wsd(1.0, 100, decay=101), r"decay=101 .*do not fit"),
    (lambda: S.wsd_s(1.0, [100, 150], decay=60), r"decay=60 .*do not fit"),
    (lambda: S.wsd(1.0, 5, decay=0.1), r"decay=0\.1 .*do not fit"),  # floor(0.5) = 0 steps
    (lambda: S.wsd_s(1.0, [100, 100, 200]), r"checkpoints=\[100, 100, 200\] is not "
                                            r"strictly increasing"),
    (lambda: S.wsd_s(1.0, [200, 100]), r"checkpoints=.*not strictly increasing"),
    (lambda: S.cyclic_cosine(1.0, [0, 100]), r"checkpoints=.*whole steps in \[1, 2147483647\]"),
    (lambda: S.cyclic_cosine(1.0, []), r"checkpoints=.*non-empty"),
    (lambda: S.wsd_s(1.0, [10.5, 20]), r"checkpoints=.*not a whole number of steps"),
    (lambda: S.wsd(1.0, 0), r"num_steps=0 is outside the valid range: whole steps in \[1, "),
    (lambda: S.wsd(1.0, 2**31), r"num_steps=2147483648 is outside the valid range"),
    (lambda: S.cosine(1.0, 100.5), r"num_steps=100\.5 is not a whole number of steps"),
    (lambda: S.wsd(1.0, 100, min_ratio=1.5), r"min_ratio=1\.5 is outside the valid range \[0, 1\]"),
    (lambda: S.cosine(1.0, 100, min_ratio=-0.1), r"min_ratio=-0\.1 is outside the valid range"),
    (lambda: S.wsd(1.0, 100, decay_shape="inverse"), r"min_ratio=0\.0 must be in \(0, 1\] "
                                                     r"for decay_shape inverse"),
    (lambda: S.wsd(1.0, 100, decay_shape="exponential"), r"min_ratio=0\.0 .*exponential"),
    (lambda: S.decay_multiplier("inverse", 0.5, 0.0), r"min_ratio=0\.0 .*inverse"),
    (lambda: S.wsd(1.0, 100, decay_shape="sigmoid"),
     r"decay_shape='sigmoid' is unknown; known shapes: linear, cosine, 1-sqrt, inverse, "
     r"exponential, square"),
    (lambda: S.wsd(1.0, 100, decay_shape=6), r"decay_shape=6 is outside the indices 0\.\.5"),
    (lambda: S.wsd(1.0, 100, warmup_steps=-3), r"warmup_steps=-3"),
    (lambda: export.to_torch_lambda(S.cosine(1.0, 10), 0.0),
     r"peak_value=0\.0 is outside the valid range \(0, inf\)"),
    # a cosine decay of length 0 (issue 11): refused, as optax refuses decay_steps=0
    (lambda: S.cosine(1.2, 10, warmup_steps=10, min_ratio=0.1),
     r"warmup_steps=10 leaves no decay in the run .*warmup_steps < length"),
    (lambda: S.cyclic_cosine(1.0, [100, 150], warmup_steps=100), r"warmup_steps=100 leaves no"),
    (lambda: S.cyclic_cosine(1.0, [100, 150], rewarmup_steps=50),
     r"rewarmup_steps=50 leaves no decay in a cycle"),
    # decay_steps_of: nonsense lengths and decays longer than the cycle
    (lambda: S.decay_steps_of(-100, 0.1), r"length=-100 is outside the valid range: whole steps"),
    (lambda: S.decay_steps_of(0, 0.1), r"length=0 is outside the valid range"),
    (lambda: S.decay_steps_of(100, 500), r"decay=500 steps is longer than the cycle of 100"),
    (lambda: S.decay_steps_of(100, 1.5), r"decay=1\.5 is outside \(0, 1\]"),
    (lambda: S.decay_steps_of(100.5, 0.1), r"length=100\.5 is not a whole number"),
    # decay-shape arrays: every index is checked (np.array([-1]) used to evaluate as linear)
    (lambda: S.wsd(1.0, 100, decay_shape=np.array([-1])), r"decay_shape=-1 is outside the "
                                                          r"indices 0\.\.5"),
    (lambda: S.wsd(1.0, 100, decay_shape=np.array([0, 6])), r"decay_shape=6 is outside"),
    (lambda: S.wsd(1.0, 100, decay_shape=np.array([1.0])), r"decay_shape=1\.0 must be a name"),
    (lambda: S.wsd(1.0, 100, decay_shape=["cosine", "nope"]), r"decay_shape='nope' is unknown"),
    (lambda: S.wsd(1.0, 100, decay_shape=np.array([], int)), r"decay_shape=.*is empty"),
])
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, name", [
    (lambda: S.constant(True), "value"),
    (lambda: S.cosine(True, 100), "peak_value"),
    (lambda: S.wsd(np.bool_(True), 100), "peak_value"),
    (lambda: S.wsd(1.0, True), "num_steps"),
    (lambda: S.cosine(1.0, 100, warmup_steps=True), "warmup_steps"),
    (lambda: S.wsd(1.0, 100, decay=True), "decay"),
    (lambda: S.wsd(1.0, 100, min_ratio=False), "min_ratio"),
    (lambda: S.wsd(1.0, 100, decay_shape=True), "decay_shape"),
    (lambda: S.wsd(1.0, 100, decay_shape=np.array([True])), "decay_shape"),
    (lambda: S.wsd_s(1.0, [True, 2]), "checkpoints"),
    (lambda: S.wsd_s(1.0, [100, 200], rewarmup_steps=True), "rewarmup_steps"),
    (lambda: S.tabulated([True, False]), "values"),
    (lambda: S.decay_steps_of(True, 0.1), "length"),
    (lambda: S.decay_steps_of(100, True), "decay"),
    (lambda: S.as_array(S.constant(0.1), True), "num_steps"),
    (lambda: export.to_torch_lambda(S.constant(0.1), True), "peak_value"),
])
def test_bools_are_not_numbers(call, name):
    with pytest.raises(ValueError, match=rf"{name}=(True|False|\[True).*(bool|decay_shape|valid)"):
        call()


def test_decay_steps_of_is_exact_decimal_arithmetic():
    # issue 11: the relative tolerance added floor(D * 1e-5) steps (120001, 200002)
    assert S.decay_steps_of(600000, 0.2) == 120000
    assert S.decay_steps_of(10**6, 0.2) == 200000
    # fractions that are not exact in binary: the decimal as written (Levanter's float64
    # int(frac * L) gives one step less here)
    for L, f, want in [(100, 0.29, 29), (100, 0.57, 57), (100, 0.58, 58), (300, 0.41, 123),
                       (300, 0.57, 171), (300, 0.69, 207), (300, 0.82, 246)]:
        assert S.decay_steps_of(L, f) == want
        assert int(f * L) == want - 1  # Levanter's arithmetic, the difference documented
    assert S.decay_steps_of(10, 0.7) == 7 and S.decay_steps_of(10, np.float32(0.7)) == 7
    assert int(float(np.float32(0.7)) * 10) == 6  # the float32 value is below 0.7; its decimal is 0.7
    assert S.decay_steps_of(7, 0.5) == 3 and S.decay_steps_of(25000, 300) == 300
    assert S.decay_steps_of(100, 1.0) == 100 and S.decay_steps_of(np.int64(100), 0.1) == 10
    assert S.decay_steps_of(100, 0.001) == 0  # a floor: too short a decay is 0 steps


def test_wsd_accepts_decays_that_fill_the_run():
    # rejected on main: "decays of 100001 / 180001 steps do not fit"
    s = S.wsd(0.3, 100_000, decay=1.0)
    assert int(s.decay_length) == 100_000 and float(s(0)) == pytest.approx(0.3)
    s = S.wsd(0.3, 200_000, warmup_steps=20_000, decay=0.9)
    assert int(s.decay_length) == 180_000
    lr = S.as_array(s, 200_001)
    assert lr[19_999] < 0.3 and lr[20_000] == pytest.approx(0.3) and lr[20_001] < 0.3
    lr = S.as_array(S.wsd(1.0, 100, decay=0.29), 101)
    assert lr[69:72].tolist() == [1.0, 1.0, 1.0] and lr[72] < 1.0  # D = 29: r = 0 at step 71
    assert S.wsd(1.0, 100, decay=0.29).describe()["decay"] == 0.29


def test_traced_fractions_give_the_host_decay_lengths():
    # D computed in the graph (the fraction is a traced float32): snapped to the nearest integer
    # within 4 ulps, so it agrees with the exact decimal rule of the host
    cases = [(10, 0.7), (100, 0.29), (100, 0.57), (600000, 0.2), (10**6, 0.2), (300, 0.41),
             (300, 0.82), (1000, 0.1), (7, 0.5), (16_000_000, 0.3)]
    lengths = jnp.array([L for L, _ in cases])
    fracs = jnp.array([f for _, f in cases], jnp.float32)
    got = jax.jit(jax.vmap(lambda T, f: S.wsd(1.0, T, decay=f).decay_length))(lengths, fracs)
    want = [S.decay_steps_of(L, f) for L, f in cases]
    assert np.asarray(got).tolist() == want
    # cycles too, with traced (float) cycle ends
    ends = jnp.array([300.0, 700.0, 1000.0])
    got = jax.jit(lambda e, f: S.wsd_s(1.0, e, decay=f).decay_lengths)(ends, jnp.float32(0.41))
    assert np.asarray(got).tolist() == [123, 164, 123]
    assert S.wsd_s(1.0, [300, 700, 1000], decay=0.41).decay_lengths.tolist() == [123, 164, 123]
    # a traced integer decay is a step count, exactly
    got = jax.jit(lambda d: S.wsd(1.0, 2**31 - 1, decay=d).decay_length)(jnp.int32(123_456_789))
    assert int(got) == 123_456_789


def test_negative_steps_are_step_zero_like_optax():
    s = S.cosine(0.1, 100)
    assert float(s(-5)) == float(s(0)) == pytest.approx(0.1)  # main gave -0.5
    # huge negative integers are step 0 too, not wrapped around to a positive int32
    assert float(s(np.int64(-2**32 + 50))) == float(s(-2**40)) == float(s(0))
    w = S.cosine(0.1, 100, warmup_steps=10)
    ref = optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 100)
    assert float(w(-5)) == float(ref(-5)) == 0.0
    lin = S.wsd(1.0, 10, decay=1.0, min_ratio=0.1)  # = optax.linear_schedule(1.0, 0.1, 10)
    assert float(lin(-3)) == pytest.approx(float(optax.linear_schedule(1.0, 0.1, 10)(-3)))
    steps = jnp.array([-(2**31), -7, -1, 0])
    for sch in (s, w, lin, S.wsd_s(0.3, [50, 100], warmup_steps=5, rewarmup_steps=5),
                S.cyclic_cosine(0.3, [50, 100]), S.tabulated([0.3, 0.2]), S.constant(0.3)):
        out = np.asarray(jax.jit(sch)(steps))
        assert np.all(out == out[-1]) and np.all(out >= 0), sch
        assert float(sch(-1)) == float(sch(0))
        assert export.to_torch_lambda(sch, 0.3)(-4) == export.to_torch_lambda(sch, 0.3)(0)


def test_nan_steps_never_give_the_peak():
    for sch in (S.cosine(0.1, 100), S.wsd(0.1, 100, warmup_steps=5),
                S.wsd_s(0.1, [50, 100]), S.cyclic_cosine(0.1, [50, 100]), S.constant(0.1),
                S.tabulated([0.1, 0.2])):
        with pytest.raises(ValueError, match="step=nan is NaN"):
            sch(float("nan"))
        with pytest.raises(ValueError, match="NaN"):
            sch(np.array([1.0, np.nan]))
        # traced: the NaN propagates (as in optax), the other entries are untouched
        out = np.asarray(jax.jit(sch)(jnp.array([jnp.nan, 3.0])))
        assert np.isnan(out[0]) and out[1] == pytest.approx(float(sch(3)))
        with pytest.raises(ValueError, match="NaN"):
            export.to_torch_lambda(sch, 0.1)(float("nan"))


def test_decay_shape_arrays_describe_what_they_evaluate():
    s = S.wsd(1.0, 100, decay=0.5, decay_shape=np.array(5), min_ratio=0.1)
    assert s.describe()["decay_shape"] == "square"
    assert float(s(75)) == pytest.approx(0.1 + 0.9 * (1 - 0.25), rel=1e-6)  # square at r = 1/2
    batch = S.wsd(np.ones(3), np.full(3, 100), decay=np.full(3, 0.5),
                  decay_shape=["square", 1, "exp"], min_ratio=np.full(3, 0.1))
    assert batch.describe()["decay_shape"] == ["square", "cosine", "exponential"]
    assert "decay_shape=['square', 'cosine', 'exponential']" in repr(batch)
    one = [S.wsd(1.0, 100, decay=0.5, decay_shape=n, min_ratio=0.1)
           for n in ("square", "cosine", "exponential")]
    stacked = jax.tree.map(lambda *x: jnp.stack([jnp.asarray(v) for v in x]), *one)
    got = jax.vmap(lambda b: b(75))(stacked)
    np.testing.assert_allclose(got, [o(75) for o in one], rtol=2 * SCHED_RTOL)  # two float32 evals
    assert [o.describe()["decay_shape"] for o in one] == batch.describe()["decay_shape"]
    # a traced index outside 0..5 is NaN, never a silently different shape
    out = jax.jit(lambda i: S.wsd(1.0, 100, decay=0.5, decay_shape=i, min_ratio=0.1)(75))(
        jnp.int32(-1))
    assert np.isnan(float(out))
    assert np.isnan(float(jax.jit(lambda i: S.decay_multiplier(i, 0.5, 0.1))(jnp.int32(6))))


def test_as_array_of_foreign_schedules_and_non_schedules():
    ref = optax.warmup_cosine_decay_schedule(0.0, 0.3, 10, 100, end_value=0.03)
    np.testing.assert_allclose(S.as_array(ref, 101),
                               S.as_array(S.cosine(0.3, 100, warmup_steps=10, min_ratio=0.1), 101),
                               rtol=2e-5, atol=1e-8)
    assert S.as_array(lambda t: 0.1 * (t < 3), 5).tolist() == pytest.approx([0.1] * 3 + [0, 0])
    with pytest.raises(ValueError, match=r"schedule=0\.05 is not a schedule .*"
                                         r"rivervalley\.schedules\.constant\(0\.05\)"):
        S.as_array(0.05, 10)

    def python_branch(t):
        return 0.1 if t < 5 else 0.01  # not traceable

    with pytest.raises(ValueError, match="could not be evaluated on a traced int32 step"):
        S.as_array(python_branch, 10)
    with pytest.raises(ValueError, match="expected one real learning rate per step"):
        S.as_array(lambda t: jnp.ones(2) * t, 4)
    with pytest.raises(ValueError, match="batch"):
        S.as_array(jax.tree.map(lambda *x: jnp.stack(x), S.constant(0.1), S.constant(0.2)), 3)
    with pytest.raises(ValueError, match="num_steps=-1"):
        S.as_array(S.constant(0.1), -1)
    assert S.as_array(S.constant(0.1), 0).shape == (0,)


# ------------------------------------------------------------------ golden tests ported from
# optax (optax/schedules/_schedule_test.py) and HuggingFace transformers (tests/optimization/
# test_optimization.py; transformers.optimization._get_wsd_scheduler_lambda); the expected values
# are written down here in float64 from the references' formulas


def test_optax_golden_cosine_decay():
    # CosineDecayTest.test_decay_count_smaller_count: cosine_decay_schedule(0.1, 10, 0.0)
    want = 0.1 * (0.5 + 0.5 * np.cos(np.pi * np.arange(10) / 10))
    with jax.enable_x64(True):
        np.testing.assert_allclose(S.as_array(S.cosine(0.1, 10), 10), want, rtol=1e-13, atol=1e-17)
    np.testing.assert_allclose(S.as_array(S.cosine(0.1, 10), 10), want, atol=1e-7)
    # test_decay_count_greater_count_with_alpha: cosine_decay_schedule(0.1, 5, 0.1), 12 counts
    r = np.minimum(np.arange(12), 5) / 5
    want = 0.1 * (0.9 * (0.5 + 0.5 * np.cos(np.pi * r)) + 0.1)
    with jax.enable_x64(True):
        np.testing.assert_allclose(S.as_array(S.cosine(0.1, 5, min_ratio=0.1), 12), want,
                                   rtol=1e-13)


def test_optax_golden_warmup_cosine_limits():
    # WarmupCosineDecayTest.test_limits ('without end value'; rivervalley warms up from 0):
    # init 0, peak 3, warmup 100, decay_steps 1000, end 0
    s = S.cosine(3.0, 1000, warmup_steps=100)
    assert float(s(0)) == 0.0 and float(s(100)) == pytest.approx(3.0, rel=1e-7)
    assert float(s(1000)) == pytest.approx(0.0, abs=3e-7)
    assert float(s(50)) == pytest.approx(1.5, rel=1e-7)
    # halfway through the decay: peak / 2
    assert float(s(550)) == pytest.approx(1.5, rel=1e-6)


def test_optax_golden_linear_schedule():
    # PolynomialTest.test_linear style: linear_schedule(1.0, 0.1, transition_steps=10), 15 counts
    want = np.concatenate([1.0 - 0.9 * np.arange(10) / 10, np.full(5, 0.1)])
    s = S.wsd(1.0, 10, decay=1.0, min_ratio=0.1)
    with jax.enable_x64(True):
        np.testing.assert_allclose(S.as_array(s, 15), want, rtol=1e-14)
        np.testing.assert_allclose(S.as_array(s, 15),
                                   S.as_array(optax.linear_schedule(1.0, 0.1, 10), 15), rtol=1e-14)


def test_huggingface_golden_cosine_and_linear_with_warmup():
    # ScheduleInitTest.test_schedulers, lr 10, num_warmup_steps 2, num_training_steps 10
    hf_cosine = [0.0, 5.0, 10.0, 9.61, 8.53, 6.91, 5.0, 3.08, 1.46, 0.38]
    hf_linear = [0.0, 5.0, 10.0, 8.75, 7.5, 6.25, 5.0, 3.75, 2.5, 1.25]
    cos = S.as_array(S.cosine(10.0, 10, warmup_steps=2), 10)
    lin = S.as_array(S.wsd(10.0, 10, warmup_steps=2, decay=8), 10)
    np.testing.assert_allclose(cos, hf_cosine, atol=1e-2)
    np.testing.assert_allclose(lin, hf_linear, atol=1e-6)
    # the same in float64 from get_cosine_schedule_with_warmup's lambda (num_cycles = 0.5)
    t = np.arange(10)
    want = np.where(t < 2, t / 2, 10 * 0.5 * (1 + np.cos(np.pi * (t - 2) / 8)))
    want[t < 2] *= 10
    with jax.enable_x64(True):
        np.testing.assert_allclose(S.as_array(S.cosine(10.0, 10, warmup_steps=2), 10), want,
                                   rtol=1e-14, atol=1e-14)


def _hf_wsd_factor(t, W, S_, D, decay_type, m):
    """transformers.optimization._get_wsd_scheduler_lambda (warmup_type linear, num_cycles 0.5),
    float64."""
    if t < W:
        return max(0.0, (t / max(1, W)) * (1 - m) + m)
    if t < W + S_:
        return 1.0
    if t < W + S_ + D:
        p = (t - W - S_) / max(1, D)
        f = {"linear": 1 - p, "cosine": 0.5 * (1 + math.cos(math.pi * p)),
             "1-sqrt": 1 - math.sqrt(p)}[decay_type]
        return max(0.0, f * (1 - m) + m)
    return m


@pytest.mark.parametrize("decay_type", ["linear", "cosine", "1-sqrt"])
def test_huggingface_wsd_semantics(decay_type):
    # get_wsd_schedule(num_warmup_steps, num_decay_steps, num_stable_steps, decay_type,
    # min_lr_ratio) = rivervalley wsd(num_steps = W + S + D, decay = D steps) where HF's warmup
    # (which starts from min_lr_ratio) and rivervalley's (from 0) agree: m = 0, or no warmup
    for W, S_, D, m in [(2, 2, 3, 0.0), (0, 5, 7, 0.1), (10, 37, 53, 0.0), (0, 0, 20, 0.25)]:
        T = W + S_ + D
        s = S.wsd(1.0, T, warmup_steps=W, decay=D, decay_shape=decay_type, min_ratio=m)
        want = [_hf_wsd_factor(t, W, S_, D, decay_type, m) for t in range(T + 5)]
        with jax.enable_x64(True):
            np.testing.assert_allclose(S.as_array(s, T + 5), want, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(
            [export.to_torch_lambda(s, 1.0)(t) for t in range(T + 5)], want, rtol=1e-13,
            atol=1e-15)
