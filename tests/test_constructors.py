"""One public constructor per concept, checked at construction; JAX rebuilds objects unchecked.

For every concept: bad values raise at construction (a ValueError naming the argument), the class
of a factory-built object cannot be called directly (TypeError naming the factory), and ``jit`` /
``vmap`` / ``tree.map`` over the objects still work (unflattening never runs the checks: inside
``vmap`` the leaves are tracers, and ``in_axes`` specs put ``None`` / ints where arrays were).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rivervalley as rv
from rivervalley import bigram, landscapes, noise, problems, schedules, text, transformer

KEY = jax.random.key(0)
DATA = bigram.make_data(vocab_size=8, key=KEY)


def _mse(w, batch):
    return jnp.mean((batch[0] @ w - batch[1]) ** 2)


X = jnp.ones((16, 2))
LOSS_PROBLEM = problems.from_loss(_mse, jnp.zeros(2), (X, X[:, 0]), batch_size=4)

# (object built by its factory, the factory's public name)
FACTORY_BUILT = [
    (schedules.constant(0.1), "rivervalley.schedules.constant"),
    (schedules.cosine(0.1, 100), "rivervalley.schedules.cosine"),
    (schedules.wsd(0.1, 100), "rivervalley.schedules.wsd"),
    (schedules.wsd_s(0.1, [50, 100]), "rivervalley.schedules.wsd_s"),
    (schedules.cyclic_cosine(0.1, [50, 100]), "rivervalley.schedules.cyclic_cosine"),
    (schedules.tabulated([0.1, 0.2]), "rivervalley.schedules.tabulated"),
    (noise.isotropic(1.0), "rivervalley.noise.isotropic"),
    (noise.hill_only(1.0), "rivervalley.noise.hill_only"),
    (noise.loss_scaled(1.0), "rivervalley.noise.loss_scaled"),
    (noise.student_t(1.0), "rivervalley.noise.student_t"),
    (landscapes.standard_toy(), "rivervalley.landscapes.river_valley"),
    (DATA, "rivervalley.bigram.make_data"),
    (transformer.transformer(DATA, seq_len=4, num_eval=2, key=KEY),
     "rivervalley.transformer.transformer"),
    (LOSS_PROBLEM, "rivervalley.problems.from_loss"),
]


@pytest.mark.parametrize("obj, factory", FACTORY_BUILT, ids=lambda x: type(x).__name__)
def test_a_factory_built_class_cannot_be_called(obj, factory):
    fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    with pytest.raises(TypeError, match=rf"{type(obj).__name__} is built by {factory}\(\.\.\.\)"):
        type(obj)(**fields)
    with pytest.raises(TypeError, match=rf"is built by {factory}"):
        dataclasses.replace(obj)  # replace would skip the factory's checks and derived leaves


# objects whose class is their constructor (checked in __post_init__)
CLASS_BUILT = [bigram.TableModel(DATA, batch_size=4), bigram.FactorizedModel(DATA, width=2)]


@pytest.mark.parametrize("obj", [o for o, _ in FACTORY_BUILT] + CLASS_BUILT,
                         ids=lambda x: type(x).__name__)
def test_unflattening_rebuilds_without_checks(obj, monkeypatch):
    checks = []
    monkeypatch.setattr(bigram, "_check_model", lambda model: checks.append(model))
    leaves, treedef = jax.tree.flatten(obj)
    # placeholders that no check would accept: JAX puts such objects in pytrees (in_axes specs)
    rebuilt = jax.tree.unflatten(treedef, [object()] * len(leaves))
    assert type(rebuilt) is type(obj)
    again = jax.tree.unflatten(treedef, leaves)
    assert all(a is b for a, b in zip(jax.tree.leaves(again), leaves))
    assert checks == []  # __post_init__ never ran


def test_the_torch_adapter_has_one_constructor():
    f = rv.export.to_torch_lambda(schedules.wsd(0.5, 100, decay=0.5))
    assert isinstance(f, rv.export.TorchLambda) and f(75) == pytest.approx(0.5)
    with pytest.raises(TypeError, match=r"TorchLambda is built by "
                                        r"rivervalley\.export\.to_torch_lambda"):
        rv.export.TorchLambda(schedules.wsd(0.5, 100))
    with pytest.raises(ValueError, match=r"peak_value=-1\.0 is outside the valid range"):
        rv.export.to_torch_lambda(schedules.wsd(0.5, 100), peak_value=-1.0)


# -- bad values raise at construction: one table per concept ---------------------------------------
@pytest.mark.parametrize("build, match", [
    (lambda: schedules.constant(-1.0), r"peak_value=-1\.0 is outside the valid range"),
    (lambda: schedules.cosine(0.1, 100, warmup_steps=100), r"warmup_steps=100 leaves no decay"),
    (lambda: schedules.wsd(0.1, 100, decay=1.5), r"decay=1\.5 is outside \(0, 1\]"),
    (lambda: schedules.wsd(0.1, 100, decay_shape="cubic"), r"decay_shape='cubic' is unknown"),
    (lambda: schedules.wsd_s(0.1, [100, 50]), r"checkpoints=\[100, 50\] is not strictly increasing"),
    (lambda: schedules.cyclic_cosine(0.1, [50, 100], min_ratio=2.0), r"min_ratio=2\.0 is outside"),
    (lambda: schedules.tabulated([[0.1]]), r"values has shape \(1, 1\)"),
])
def test_schedules_check_at_construction(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("build, match", [
    (lambda: noise.isotropic(-1.0), r"sigma=-1\.0 is outside the valid range \[0, inf\)"),
    (lambda: noise.isotropic(1.0, rng="mt"), r"rng='mt' is unknown; known generators: hash"),
    (lambda: noise.hill_only(np.ones((2, 2))), r"sigma=.* has shape \(2, 2\)"),
    (lambda: noise.hill_only(1.0, sigma_river=[1.0, 2.0]), r"sigma_river=\[1\.0, 2\.0\] must be a "
                                                           r"scalar"),
    (lambda: noise.loss_scaled(float("nan")), r"sigma=nan must be finite"),
    (lambda: noise.student_t(1.0, df=2.0), r"df=2\.0 is outside the valid range \(2, inf\)"),
])
def test_noise_models_check_at_construction(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("build, match", [
    (lambda: landscapes.river_valley(1), r"dim=1 is outside the valid range: an integer >= 2"),
    (lambda: landscapes.river_valley(2, sharpness=0.0), r"sharpness=0\.0 is outside"),
    (lambda: landscapes.river_valley(3, sharpness=[1.0, 2.0, 3.0]), r"has shape \(3,\); a 3-D "
                                                                     r"valley takes a scalar"),
    (lambda: landscapes.river_valley(2, profile="cubic"), r"profile='cubic' is unknown"),
    (lambda: landscapes.river_valley(2, course="zigzag"), r"course='zigzag' is unknown"),
    (lambda: landscapes.river_valley(2, sharpening=1.0), r"sharpening=1\.0 is outside"),
    (lambda: landscapes.river_valley(2, rotation=np.ones((2, 2))), r"rotation must be orthogonal"),
    (lambda: landscapes.standard_toy(slope=[0.1, 0.2]), r"slope=\[0\.1, 0\.2\] must be a scalar"),
    (lambda: landscapes.valley(3, lambda_min=10.0, lambda_max=1.0), r"lambda_max=1\.0 must be"),
])
def test_landscapes_check_at_construction(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("build, error, match", [
    (lambda: bigram.make_data(vocab_size=1, key=KEY), ValueError, r"vocab_size=1"),
    (lambda: bigram.TableModel(DATA, batch_size=0), ValueError, r"batch_size=0 is outside"),
    (lambda: bigram.TableModel(np.ones((8, 8))), TypeError, r"data=.* must be a BigramData"),
    (lambda: bigram.FactorizedModel(DATA, width=0), ValueError, r"width=0 is outside"),
    (lambda: transformer.transformer(DATA, seq_len=1, key=KEY), ValueError, r"seq_len=1"),
    (lambda: problems.from_loss(_mse, jnp.zeros(2), (X, X[:, 0]), batch_size=0), ValueError,
     r"batch_size=0"),
    (lambda: text.TextConfig(width=48, heads=5), ValueError, r"heads=5 must divide width=48"),
    (lambda: text.config("fast", num_steps=0), ValueError, r"num_steps=0 is outside"),
    (lambda: rv.plans.Branch("main", schedules.constant(0.1), 10, 5, None), ValueError,
     r"end_step=5 is outside the valid range: an integer >= 11"),
])
def test_models_and_configs_check_at_construction(build, error, match):
    with pytest.raises(error, match=match):
        build()


# -- jit / vmap over the objects --------------------------------------------------------------------
def test_vmap_over_factories_and_objects():
    # a factory called inside vmap gets tracers: its checks let them pass
    peaks = jnp.array([0.1, 0.2, 0.4])
    lrs = jax.vmap(lambda p: schedules.wsd(p, 100, decay=0.2)(90))(peaks)
    np.testing.assert_allclose(np.asarray(lrs), np.asarray(peaks) * 0.5, rtol=4e-7)
    # a batch of objects (stacked leaves) passes through vmap as one argument
    valleys = rv.stack([landscapes.standard_toy(sharpness=s) for s in (10.0, 20.0)])
    nz = jax.vmap(lambda s: noise.hill_only(s))(jnp.array([1.0, 2.0]))
    x = jnp.array([0.0, 0.5])
    hill = jax.vmap(lambda v: v.hill_loss(x))(valleys)
    np.testing.assert_allclose(np.asarray(hill), [1.25, 2.5], rtol=4e-7)
    np.testing.assert_array_equal(np.asarray(nz.sigma), [1.0, 2.0])
    assert isinstance(nz, noise.HillOnly) and nz.rng == "hash"


def test_jit_takes_objects_as_arguments_without_recompiling():
    traces = []

    @jax.jit
    def lr_at(schedule, step):
        traces.append(1)
        return schedule(step)

    a = lr_at(schedules.wsd(0.1, 100, decay=0.2), 90)
    b = lr_at(schedules.wsd(0.3, 100, decay=0.2), 90)  # new leaf values, same structure
    assert len(traces) == 1
    assert float(a) == pytest.approx(0.05, rel=1e-6) and float(b) == pytest.approx(0.15, rel=1e-6)
    model = bigram.TableModel(DATA, batch_size=4)
    loss = jax.jit(lambda m, p: m.loss(p))(model, model.init_params())
    assert float(loss) == pytest.approx(np.log(8), rel=1e-6)  # W = 0: the uniform predictor
