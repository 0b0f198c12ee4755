"""The PyTorch adapter: a picklable ``LambdaLR`` factor that reproduces ``as_array``.

The pickling tests need no torch; the ``LambdaLR`` tests run when torch is installed (the
``torch`` extra; ``make test`` installs the CPU wheel).
"""

from __future__ import annotations

import pickle

import jax
import numpy as np
import pytest

from rivervalley import export
from rivervalley import schedules as S

FAMILIES = {
    "constant": S.constant(0.02),
    "cosine": S.cosine(0.3, 500, warmup_steps=37, min_ratio=0.1),
    "wsd": S.wsd(0.3, 500, warmup_steps=20, decay=0.29, decay_shape="1-sqrt", min_ratio=0.05),
    "wsd_s": S.wsd_s(0.3, [150, 320, 500], warmup_steps=10, decay=0.25, decay_shape="square",
                     rewarmup_steps=7, min_ratio=0.05),
    "wsd_s_inverse": S.wsd_s(0.3, [200, 500], decay=40, decay_shape="inverse", min_ratio=0.1),
    "wsd_exponential": S.wsd(0.3, 500, decay=0.5, decay_shape="exponential", min_ratio=0.01),
    "cyclic_cosine": S.cyclic_cosine(0.3, [100, 250, 500], warmup_steps=5, rewarmup_steps=5,
                                     min_ratio=0.1),
    "tabulated": S.tabulated(np.linspace(0.3, 0.01, 400)),
}
N = 520  # past the end of every run: the final value holds


def _peak(s):
    d = s.describe()
    return max(d["values"]) if d["kind"] == "tabulated" else d.get("peak_value", d.get("value"))


@pytest.mark.parametrize("name", FAMILIES)
def test_pickle_round_trip_gives_the_same_factors(name):
    f = export.to_torch_lambda(FAMILIES[name])
    g = pickle.loads(pickle.dumps(f))
    assert type(g) is export.TorchLambda and g.peak_value == f.peak_value
    assert [g(t) for t in range(N)] == [f(t) for t in range(N)]
    assert all(isinstance(f(t), float) for t in (0, 1, N))


def test_the_adapter_is_not_a_closure():
    # transformers #21689: DDP spawn pickles the scheduler's lambdas; a closure cannot be pickled
    f = export.to_torch_lambda(FAMILIES["wsd"])
    assert type(f).__module__ == "rivervalley.export" and not hasattr(f, "__closure__")
    assert "rivervalley.export" in repr(pickle.dumps(f)[:200])


@pytest.mark.parametrize("name", FAMILIES)
def test_factor_equals_as_array_in_float64(name):
    s = FAMILIES[name]
    f = export.to_torch_lambda(s)
    host = np.array([f(t) for t in range(N)]) * _peak(s)
    with jax.enable_x64(True):
        want = S.as_array(s, N)
    assert want.dtype == np.float64
    np.testing.assert_allclose(host, want, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(host, S.as_array(s, N), rtol=2e-6, atol=1e-8)  # float32 default


def test_adapter_refuses_what_it_cannot_drive():
    with pytest.raises(ValueError, match="not a rivervalley schedule"):
        export.to_torch_lambda(lambda t: 0.1)
    batch = jax.tree.map(lambda *x: np.stack(x), S.wsd(0.1, 100), S.wsd(0.2, 100))
    with pytest.raises(ValueError, match="batch"):
        export.to_torch_lambda(batch)
    with pytest.raises(ValueError, match="peak is 0.0"):
        export.to_torch_lambda(S.constant(0.0))
    f = export.to_torch_lambda(S.cosine(0.1, 10))
    with pytest.raises(ValueError, match="not a whole number"):
        f(2.5)
    with pytest.raises(ValueError, match="bool"):
        f(True)
    assert f(4.0) == f(4) and f(-3) == f(0) == 1.0


# ------------------------------------------------------------------ the real LambdaLR


def _lambda_lr(s, steps):
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=_peak(s))
    sch = torch.optim.lr_scheduler.LambdaLR(opt, export.to_torch_lambda(s))
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    return np.array(lrs), sch


@pytest.mark.parametrize("name", FAMILIES)
def test_torch_lambda_lr_reproduces_as_array(name):
    s = FAMILIES[name]
    lrs, _ = _lambda_lr(s, N)
    with jax.enable_x64(True):
        np.testing.assert_allclose(lrs, S.as_array(s, N), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(lrs, S.as_array(s, N), rtol=2e-6, atol=1e-8)


def test_torch_scheduler_state_survives_pickle_and_reload():
    torch = pytest.importorskip("torch")
    s = FAMILIES["wsd_s"]
    _, sch = _lambda_lr(s, 200)
    state = pickle.loads(pickle.dumps(sch.state_dict()))  # LambdaLR saves callable objects
    assert state["lr_lambdas"][0] is not None
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.3)
    fresh = torch.optim.lr_scheduler.LambdaLR(opt, export.to_torch_lambda(S.constant(1.0)))
    fresh.load_state_dict(state)
    assert fresh.lr_lambdas[0](250) == export.to_torch_lambda(s)(250)
