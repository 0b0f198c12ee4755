"""Schedules at the lengths real runs use: exact integer step arithmetic up to 2**31 - 1 steps.

On main the step was converted to float32 (which holds every integer only up to 2**24), so
``wsd(0.1, 20_000_000, decay=4)`` gave 0.1, 0.05, 0.0 at its last three steps and at 1e8 steps the
decay disappeared; ``as_array`` was wrong the same way.
"""

from __future__ import annotations

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rivervalley.schedules as S
from rivervalley import export

T_MAX = 2**31 - 1


def _linear(peak, T, D, t, m=0.0):
    """Reference WSD-linear LR in exact rational arithmetic, as a float."""
    start = T - D
    if t < start:
        return float(peak)
    n = min(t - start, D)
    return float(Fraction(peak) * (Fraction(m) + (1 - Fraction(m)) * Fraction(D - n, D)))


def test_last_steps_of_a_20m_step_run():
    s = S.wsd(0.1, 20_000_000, decay=4)
    last = jnp.arange(19_999_997, 20_000_000)
    want = [0.075, 0.05, 0.025]
    np.testing.assert_allclose(s(last), want, rtol=1e-7)  # main: 0.1, 0.05, 0.0
    np.testing.assert_allclose(jax.jit(lambda t: s(t))(last), want, rtol=1e-7)
    np.testing.assert_allclose([float(s(int(t))) for t in last], want, rtol=1e-7)
    # the engine's way: one vmapped evaluation per block of steps, int32 step counter
    block = jax.jit(lambda t0: jax.vmap(s)(t0 + jnp.arange(8, dtype=jnp.int32)))
    np.testing.assert_allclose(block(jnp.int32(19_999_992)),
                               [0.1] * 4 + [0.1, 0.075, 0.05, 0.025], rtol=1e-7)
    f = export.to_torch_lambda(s)
    assert [f(int(t)) * 0.1 for t in last] == pytest.approx(want, rel=1e-15)


@pytest.mark.parametrize("T", [10**8, T_MAX])
@pytest.mark.parametrize("decay", [4, 0.1, 0.37])
def test_decay_is_exact_at_1e8_and_2_31_steps(T, decay):
    peak = 0.1
    s = S.wsd(peak, T, decay=decay)
    D = S.decay_steps_of(T, decay)
    assert int(s.decay_length) == D
    start = T - D
    probe = [0, start - 1, start, start + 1, start + 2, start + D // 3, T - 3, T - 2, T - 1, T,
             T_MAX]
    want = [_linear(peak, T, D, t) for t in probe]
    got = np.asarray(jax.jit(lambda t: s(t))(jnp.asarray(probe, jnp.int32)), np.float64)
    # float32 values, each within a few float32 ulps of the exact rational LR; in particular the
    # decay starts exactly at T - D (peak before, strictly below after: r = 1/D is exact)
    np.testing.assert_allclose(got, want, rtol=4e-7, atol=0)
    assert got[1] == got[2] == np.float32(peak)
    if D < 2**23:
        assert got[3] < np.float32(peak)
    assert got[-2] == got[-1] == 0.0 and got[-3] > 0.0  # the last update has LR peak / D
    # host float64 evaluation (the torch adapter): exact up to float64 rounding
    host = np.asarray(s._numpy_lr(np.asarray(probe)))
    np.testing.assert_allclose(host, want, rtol=1e-15, atol=0)
    with jax.enable_x64(True):
        np.testing.assert_allclose(jax.jit(lambda t: s(t))(jnp.asarray(probe, jnp.int64)), want, rtol=1e-15,
                                   atol=0)


@pytest.mark.parametrize("shape", S.DECAY_SHAPES)
def test_every_shape_keeps_its_last_steps_at_2_31(shape):
    # 1 - r = (D - n) / D from integers: the last decay steps keep their relative precision
    T, D = T_MAX, 10**9
    m = 0.1 if shape in ("inverse", "exponential") else 0.0
    s = S.wsd(1.0, T, decay=D, decay_shape=shape, min_ratio=m)
    steps = np.array([T - D, T - D + 1, T - D // 2, T - 2, T - 1, T], np.int64)
    with jax.enable_x64(True):
        want = np.asarray(jax.jit(lambda t: s(t))(jnp.asarray(steps)))
    got = np.asarray(jax.jit(lambda t: s(t))(jnp.asarray(steps, jnp.int32)), np.float64)
    np.testing.assert_allclose(got, want, rtol=2e-6)
    np.testing.assert_allclose(s._numpy_lr(steps), want, rtol=1e-13)
    if m == 0:  # the last update's LR is tiny but not rounded away (1e-9 for linear)
        assert 0 < got[-2] and got[-1] == 0


def test_as_array_is_exact_past_2_24():
    # float32 steps above 2**24 = 16,777,216 are even numbers only: on main every other step of
    # this decay repeated its neighbour
    T = 2**24 + 16
    s = S.wsd(1.0, T, decay=8)
    lr = S.as_array(s, T + 1)
    assert lr.dtype == np.float32 and lr.shape == (T + 1,)
    np.testing.assert_allclose(lr[T - 9:], [1.0, 1.0] + [k / 8 for k in range(7, 0, -1)] + [0.0],
                               rtol=1e-7)
    assert np.all(lr[: T - 8] == 1.0)


def test_optax_drives_a_long_schedule_with_its_int32_count():
    s = S.wsd(1.0, 50_000_000, decay=2)
    opt = optax.sgd(s)
    state = opt.init(jnp.zeros(1))
    # set optax's step counter near the end of the run (its count is an int32)
    state = jax.tree.map(lambda x: jnp.asarray(49_999_998, x.dtype)
                         if getattr(x, "dtype", None) == jnp.int32 else x, state)
    lrs = []
    for _ in range(3):
        upd, state = opt.update(jnp.ones(1), state)
        lrs.append(-float(upd[0]))
    assert lrs == pytest.approx([1.0, 0.5, 0.0], abs=1e-7)


def test_step_counts_beyond_int32_are_refused_not_wrapped():
    # JAX (x64 off) would wrap 10**10 to 1410065408 silently
    for call in (lambda: S.wsd(1.0, 10**10), lambda: S.cosine(1.0, 2**31),
                 lambda: S.wsd_s(1.0, [100, 2**32]), lambda: S.wsd(1.0, 100, decay=2**31),
                 lambda: S.decay_steps_of(2**31, 0.1)):
        with pytest.raises(ValueError, match="2147483647"):
            call()
    s = S.wsd(1.0, T_MAX, decay=0.1)
    with pytest.raises(ValueError, match="beyond the step counter"):
        s(np.int64(2**31))
    assert float(s(np.int64(T_MAX))) == 0.0
