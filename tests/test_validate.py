"""rivervalley._validate: the shared argument checks (each message names argument, value, range)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from rivervalley import _validate as V


def test_fmt_renders_typed_keys_and_large_arrays():
    assert V.fmt(jax.random.key(0)) == "<PRNG key, shape ()>"
    assert V.fmt(jax.random.split(jax.random.key(0), 3)) == "<PRNG key, shape (3,)>"
    assert V.fmt(np.zeros((3, 4))) == "array(shape=(3, 4), dtype=float64)"
    assert V.fmt(np.float32(0.5)) == "0.5"


@pytest.mark.parametrize("value, match", [
    (True, "not a bool"), (np.bool_(False), "not a bool"), ("a", "must be a real number"),
    (None, "must be a real number"), (np.nan, "must be finite"), ([1.0, np.inf], "must be finite"),
    (-1.0, r"outside the valid range \[0, 1\]"), ([0.5, 1.5], r"outside the valid range \[0, 1\]"),
])
def test_check_real_rejects(value, match):
    with pytest.raises(ValueError, match=r"^x=.*" + match):
        V.check_real("x", value, lo=0, hi=1)


def test_check_real_accepts_and_skips_tracers():
    V.check_real("x", [0.0, 0.5, 1.0], lo=0, hi=1)
    V.check_real("x", np.inf, lo=0, lo_open=True, finite=False)
    with pytest.raises(ValueError, match=r"\(0, inf\)"):
        V.check_real("x", 0.0, lo=0, lo_open=True)
    jax.jit(lambda v: V.check_real("x", v, lo=0) or v)(-1.0)  # a tracer's value is unknown


@pytest.mark.parametrize("value", [0, 2.0, True, "3", None, np.float64(2)])
def test_check_int_rejects(value):
    with pytest.raises(ValueError, match=r"^n=.* an integer >= 1"):
        V.check_int("n", value, lo=1)


def test_check_int_accepts_numpy_integers():
    assert V.check_int("n", np.int64(3), lo=1) == 3
    assert V.check_int("n", np.array(4), lo=1, hi=4) == 4
    with pytest.raises(ValueError, match=r"an integer in \[1, 4\]"):
        V.check_int("n", 5, lo=1, hi=4)


@pytest.mark.parametrize("seeds, match", [
    ([0.2, 0.7], "not an integer"), ([2**32 + 5, 5], "outside the valid range"), ([-1], "outside"),
    ([], "non-empty"), ([[1, 2]], "1-D"), ([True], "not an integer"), ("ab", "1-D"),
])
def test_check_seeds_rejects_colliding_or_invalid_seeds(seeds, match):
    with pytest.raises(ValueError, match=match):
        V.check_seeds("seeds", seeds)


def test_check_seeds_returns_uint32():
    out = V.check_seeds("seeds", [0, 7, 2**32 - 1])
    assert out.dtype == np.uint32 and out.tolist() == [0, 7, 2**32 - 1]


@pytest.mark.parametrize("key, match", [
    (0, r"key=0 is not a PRNG key: pass key=jax.random.key\(0\)"),
    (None, "key is required"), ("k", "not a PRNG key"), (np.zeros(3, np.uint32), "not a PRNG key"),
])
def test_check_key(key, match):
    with pytest.raises(ValueError, match=match):
        V.check_key("key", key)
    V.check_key("key", jax.random.key(1))
    V.check_key("key", jax.random.PRNGKey(1))
