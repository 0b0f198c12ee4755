"""Exports to Levanter and PyTorch: the fragments describe the same schedule."""

import numpy as np
import pytest

import rivervalley as rv
from rivervalley import export
from rivervalley import schedules as S


def _levanter_lr(opt: dict, num_train_steps: int) -> np.ndarray:
    """Levanter's OptimizerConfig.lr_scheduler semantics, re-implemented from its documented
    rules (cycles -> per-cycle warmup/stable/decay; fractions of the cycle length; decay to
    min_lr_ratio at the cycle end), for the shapes exported here."""
    ends = [0] + list(opt.get("cycles") or []) + [num_train_steps]
    peak, m = opt["learning_rate"], opt["min_lr_ratio"]
    conv = lambda v, n: int(v * n) if v <= 1.0 else int(v)
    lr = np.zeros(num_train_steps)
    prev_end = 0.0
    for c, (a, b) in enumerate(zip(ends[:-1], ends[1:])):
        n = b - a
        w = conv(opt["warmup"] if c == 0 else opt.get("rewarmup", 0.0), n)
        dsteps = conv(opt["decay"], n) if opt["decay"] is not None else n - w
        stable = n - w - dsteps
        for t in range(a, b):
            k = t - a
            if k < w:
                lr[t] = prev_end + (peak - prev_end) * k / w
            elif k < w + stable:
                lr[t] = peak
            else:
                r = (k - w - stable) / dsteps
                sched = opt["lr_schedule"]
                mult = {"linear": m + (1 - m) * (1 - r),
                        "cosine": m + (1 - m) * (1 + np.cos(np.pi * r)) / 2,
                        "constant": 1.0}[sched]
                lr[t] = peak * mult
        prev_end = peak * m if opt["lr_schedule"] != "constant" else peak
    return lr


def test_levanter_fragment_for_the_wsd_s_golden_case():
    s = S.wsd_s(0.7, [300, 700, 1000], decay=0.1, decay_shape="cosine", min_ratio=0.1)
    frag = export.to_levanter(s)
    opt = frag["optimizer"]
    assert opt["cycles"] == [300, 700]
    assert frag["trainer"]["num_train_steps"] == 1000
    assert opt["decay"] == 0.1 and opt["lr_schedule"] == "cosine"
    assert opt["min_lr_ratio"] == pytest.approx(0.1) and opt["learning_rate"] == pytest.approx(0.7)
    # the fragment, read with Levanter's rules, gives back our schedule at every step
    np.testing.assert_allclose(_levanter_lr(opt, 1000), S.as_array(s, 1000), rtol=2e-5,
                               atol=1e-6)


@pytest.mark.parametrize("schedule", [
    S.wsd(3e-4, 2000, warmup_steps=100, decay=0.2),
    S.wsd(3e-4, 2000, decay=300, decay_shape="cosine", min_ratio=0.1),
    S.cyclic_cosine(1e-3, [500, 1000, 1500], min_ratio=0.05),
    S.wsd_s(1e-3, [400, 1000], decay=0.2, rewarmup_steps=20, min_ratio=0.1),
    S.cosine(1e-3, 1000, warmup_steps=50, min_ratio=0.1),
])
def test_levanter_round_trip(schedule):
    frag = export.to_levanter(schedule)
    total = frag["trainer"]["num_train_steps"]
    np.testing.assert_allclose(_levanter_lr(frag["optimizer"], total),
                               S.as_array(schedule, total), rtol=2e-5, atol=1e-9)


@pytest.mark.parametrize("schedule, match", [
    (S.wsd(1e-3, 100, decay_shape="1-sqrt"), "decay_shape='1-sqrt'.*linear, cosine, inverse"),
    (S.wsd(1e-3, 100, decay=0.1, decay_shape="exponential", min_ratio=0.1), "exponential"),
    (S.wsd(1e-3, 100, warmup_steps=1), "warmup_steps=1"),
    (S.tabulated([0.1, 0.2]), "tabulated"),
])
def test_levanter_refuses_what_it_cannot_express(schedule, match):
    with pytest.raises(ValueError, match=match):
        export.to_levanter(schedule)


def test_yaml_and_torch():
    text = export.to_levanter_yaml(S.wsd_s(0.7, [300, 700, 1000], decay=0.1, min_ratio=0.1))
    assert "cycles: [300, 700]" in text and "num_train_steps: 1000" in text
    f = export.to_torch_lambda(S.wsd(0.5, 100, decay=0.5))
    assert f(0) == pytest.approx(1.0) and f(75) == pytest.approx(0.5)


def test_optax_native():
    import jax.numpy as jnp
    import optax

    opt = optax.sgd(S.wsd(0.1, 10, decay=0.5))
    state = opt.init(jnp.zeros(1))
    for _ in range(8):
        upd, state = opt.update(jnp.ones(1), state)
    assert float(upd[0]) == pytest.approx(-0.1 * (1 - 2 / 5))  # step 7: r = 2/5 into the decay
    assert rv.export is export
