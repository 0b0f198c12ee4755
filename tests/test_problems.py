"""The problem protocol (named errors for each missing method and key) and from_loss: a linear
regression through the engine equals a hand-written optax loop bit for bit; sweeps compile once."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rivervalley as rv
from rivervalley import dynamics, problems
from rivervalley import schedules as S


class Quad:
    """A complete problem; subclasses below remove one piece each."""

    def loss(self, x):
        return 0.5 * jnp.sum(x ** 2)

    def sample_loss(self, x, key):
        return self.loss(x)

    def decompose(self, x):
        lo = self.loss(x)
        return {"loss": lo, "river_loss": 0.0 * lo, "hill_loss": lo}


def _without_method(name):
    attrs = {m: getattr(Quad, m) for m in problems.REQUIRED_METHODS if m != name}
    return type(f"No_{name}", (), attrs)()


@pytest.mark.parametrize("method", problems.REQUIRED_METHODS)
def test_check_names_each_missing_method(method):
    p = _without_method(method)
    with pytest.raises(TypeError, match=rf"type No_{method} has no method '{method}'"):
        problems.check_problem(p, jnp.zeros(2))
    assert not isinstance(p, rv.protocols.Problem)


@pytest.mark.parametrize("key", problems.REQUIRED_KEYS)
def test_check_names_each_missing_key(key):
    class Missing(Quad):
        def decompose(self, x):
            out = super().decompose(x)
            del out[key]
            return out

    with pytest.raises(TypeError, match=rf"decompose\(params\) returned no '{key}' \(keys: "):
        problems.check_problem(Missing(), jnp.zeros(2))


@pytest.mark.parametrize("where", ["loss", "sample_loss", "decompose", "extra"])
def test_check_names_a_non_scalar_output(where):
    class Vector(Quad):
        def loss(self, x):
            return 0.5 * x ** 2 if where == "loss" else super().loss(x)

        def sample_loss(self, x, key):
            return x if where == "sample_loss" else super().loss(x)

        def decompose(self, x):
            out = {"loss": super().loss(x), "river_loss": jnp.zeros(()), "hill_loss":
                   x if where == "decompose" else super().loss(x)}
            if where == "extra":
                out["per_coordinate"] = x
            return out

    name = {"loss": r"loss\(params\)", "sample_loss": r"sample_loss\(params, key\)",
            "decompose": r"decompose\(params\)\['hill_loss'\]",
            "extra": r"decompose\(params\)\['per_coordinate'\]"}[where]
    with pytest.raises(TypeError, match=name + r" must return a floating-point scalar \(shape "
                       r"\(\)\), got shape \(2,\)"):
        problems.check_problem(Vector(), jnp.zeros(2))


def test_check_computes_nothing():
    # eval_shape only: the methods are traced for their shapes, never run
    calls = []

    class Counting(Quad):
        def loss(self, x):
            jax.debug.callback(lambda: calls.append(1))
            return super().loss(x)

    problems.check_problem(Counting(), jnp.zeros(2))
    assert calls == []
    Counting().loss(jnp.zeros(2))
    jax.effects_barrier()
    assert calls == [1]  # the probe itself works


def test_the_package_problems_follow_the_protocol():
    key = jax.random.key(0)
    toy = rv.landscapes.standard_toy()
    problems.check_problem(toy, toy.init_params())
    data = rv.bigram.make_data(vocab_size=8, key=key)
    model = rv.transformer.transformer(data, seq_len=8, width=4, key=key)
    problems.check_problem(model, model.init_params(key=key))
    for p in (toy, model):
        assert isinstance(p, rv.protocols.Problem)


# -- from_loss ------------------------------------------------------------------------------------
N, D, B = 96, 4, 8


def _regression():
    kx, kw = jax.random.split(jax.random.key(3))
    x = jax.random.normal(kx, (N, D))
    y = x @ jax.random.normal(kw, (D,)) + 0.3 * jax.random.normal(kw, (N,))
    return x, y


def mse(params, batch):
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


PARAMS = {"w": jnp.zeros(D), "b": jnp.zeros(())}


def _by_hand(opt, params, x, y, key, num_steps, seeds=None):
    """The textbook loop: step t draws batch randint(fold_in(key, t), (B,), 0, N). With
    ``seeds``, the usual multi-seed version: ``jax.vmap`` of the step over the run keys
    fold_in(key, seed)."""

    def step(params, state, t, key):
        idx = jax.random.randint(jax.random.fold_in(key, t), (B,), 0, N)
        grads = jax.grad(mse)(params, (x[idx], y[idx]))
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    state = opt.init(params)
    if seeds is None:
        step = jax.jit(step)
    else:
        keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(jnp.arange(seeds))
        params, state = jax.tree.map(lambda a: jnp.stack([a] * seeds), (params, state))
        step, key = jax.jit(jax.vmap(step, in_axes=(0, 0, None, 0))), keys
    out = [params]
    for t in range(num_steps):
        params, state = step(params, state, jnp.asarray(t, jnp.int32), key)
        out.append(params)
    return out


def _stacked(ref, name, axis=0):
    return np.stack([np.asarray(p[name]) for p in ref], axis=axis)


@pytest.mark.parametrize("factory", [optax.sgd, optax.adamw], ids=["sgd", "adamw"])
def test_from_loss_sweep_equals_a_hand_written_optax_loop_bit_for_bit(factory):
    x, y = _regression()
    prob = problems.from_loss(mse, PARAMS, (x, y), batch_size=B)
    sched = S.wsd(0.05, 40, decay=0.25)
    key = jax.random.key(11)
    res = rv.sweep(prob, PARAMS, sched, num_steps=40, seeds=3, optimizer=factory, key=key,
                   record_params=True)
    ref = _by_hand(factory(sched), PARAMS, x, y, key, 40, seeds=3)
    for name in ("w", "b"):
        got = np.asarray(res.trajectory.params[name])[:, 0]  # (seeds, records, ...)
        np.testing.assert_array_equal(got, _stacked(ref, name, axis=1))  # same batches, keys
    # the recorded loss is the full-data loss of those parameters, and the split is unknown
    last = jax.tree.map(lambda a: a[1], ref[-1])
    np.testing.assert_allclose(res.trajectory.loss[1, 0, -1], mse(last, (x, y)), rtol=1e-6)
    assert np.all(np.isnan(res.trajectory.river_loss))
    assert np.all(np.isnan(res.trajectory.hill_loss))


@pytest.mark.parametrize("factory", [optax.sgd, optax.adamw], ids=["sgd", "adamw"])
def test_from_loss_simulate_equals_the_single_run_loop(factory):
    x, y = _regression()
    prob = problems.from_loss(mse, PARAMS, (x, y), batch_size=B)
    sched = S.wsd(0.05, 40, decay=0.25)
    key = jax.random.key(11)
    traj = rv.simulate(prob, PARAMS, sched, num_steps=40, optimizer=factory, key=key)
    ref = _by_hand(factory(sched), PARAMS, x, y, key, 40)
    for name in ("w", "b"):
        got, want = np.asarray(traj.params[name]), _stacked(ref, name)
        if factory is optax.sgd:
            np.testing.assert_array_equal(got, want)
        else:
            # simulate runs as a vmapped batch of one, where XLA rounds Adam's update in
            # another order than in the unbatched loop (1 ulp per step, measured: 6e-8 here);
            # the errors add up over 40 steps of O(1)-sized updates: 40 * 4 ulp of float32
            np.testing.assert_allclose(got, want, rtol=0, atol=40 * 4 * 1.2e-7)


def test_from_loss_plain_sgd_path_and_batches_depend_on_the_key():
    x, y = _regression()
    prob = problems.from_loss(mse, PARAMS, (x, y), batch_size=B)
    sched = S.constant(0.05)
    a = rv.simulate(prob, PARAMS, sched, num_steps=30, key=jax.random.key(0))
    ref = _by_hand(optax.sgd(sched), PARAMS, x, y, jax.random.key(0), 30)
    # engine SGD (x - lr * g) vs optax.sgd (x + (-lr) * g): the same product, the same bits
    np.testing.assert_array_equal(np.asarray(a.params["w"])[-1], np.asarray(ref[-1]["w"]))
    b = rv.simulate(prob, PARAMS, sched, num_steps=30, key=jax.random.key(1))
    assert not np.array_equal(np.asarray(a.params["w"]), np.asarray(b.params["w"]))
    # the batch of a key is what the docstring says
    k = jax.random.key(5)
    idx = jax.random.randint(k, (B,), 0, N)
    np.testing.assert_array_equal(prob.batch(key=k)[0], x[idx])


def test_sweep_over_seeds_and_schedules_compiles_once():
    x, y = _regression()
    prob = problems.from_loss(mse, PARAMS, (x, y), batch_size=B)
    scheds = rv.stack([S.wsd(p, 50, decay=0.2) for p in (0.01, 0.03, 0.05)])
    before = dynamics.TRACE_COUNT["batched"]
    res = rv.sweep(prob, PARAMS, scheds, num_steps=50, seeds=4, key=jax.random.key(0),
                   optimizer=optax.adam, batched=("schedule",), record_every=10)
    assert dynamics.TRACE_COUNT["batched"] == before + 1
    # new data values and new schedule values of the same shapes: no recompilation
    prob2 = problems.from_loss(mse, PARAMS, (2 * x, y), batch_size=B)
    scheds2 = rv.stack([S.wsd(p, 50, decay=0.1) for p in (0.02, 0.04, 0.06)])
    rv.sweep(prob2, PARAMS, scheds2, num_steps=50, seeds=4, key=jax.random.key(1),
             optimizer=optax.adam, batched=("schedule",), record_every=10)
    assert dynamics.TRACE_COUNT["batched"] == before + 1
    loss = np.asarray(res.trajectory.loss)
    assert loss.shape == (4, 3, 6)
    # every seed is the single run with key fold_in(key, seed)
    one = rv.simulate(prob, PARAMS, S.wsd(0.03, 50, decay=0.2), num_steps=50, optimizer=optax.adam,
                      key=jax.random.fold_in(jax.random.key(0), 2), record_every=10)
    np.testing.assert_allclose(loss[2, 1], one.loss, rtol=1e-6)


def test_run_plan_and_extras_and_eval_data():
    x, y = _regression()

    def metrics(params, batch):
        r = batch[0] @ params["w"] + params["b"] - batch[1]
        return {"mean_residual": jnp.mean(r)}

    prob = problems.from_loss(mse, PARAMS, (x[:64], y[:64]), batch_size=B,
                              eval_data=(x[64:], y[64:]), metrics_fn=metrics)
    res = rv.run_plan(rv.plans.wsd(0.05, [40, 80], decay=0.25), prob, PARAMS, seeds=3,
                      optimizer=optax.adam, key=jax.random.key(0))
    assert res.loss.shape == (2,) and np.all(np.isfinite(res.loss))
    assert np.all(np.isnan(res.hill_loss))
    tr = res.trajectories["main"]
    assert tr.extras["mean_residual"].shape == tr.loss.shape
    p = jax.tree.map(lambda a: a[0], tr.final_params)
    np.testing.assert_allclose(tr.loss[0, -1], mse(p, (x[64:], y[64:])), rtol=1e-6)


def test_eval_in_chunks_equals_all_at_once():
    x, y = _regression()
    whole = problems.from_loss(mse, PARAMS, (x, y), batch_size=B)
    chunked = problems.from_loss(mse, PARAMS, (x, y), batch_size=B, eval_batch_size=24)
    p = {"w": jnp.arange(D, dtype=jnp.float32), "b": jnp.ones(())}
    # 4 chunk means of 24 squared residuals each vs one mean of 96: the same sum in another
    # order, a few roundings of float32 (eps 1.2e-7) on O(100) terms
    np.testing.assert_allclose(chunked.loss(p), whole.loss(p), rtol=100 * 1.2e-7)


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=0), r"batch_size=0 is outside the valid range: an integer in \[1, 96\]"),
    (dict(batch_size=97), r"batch_size=97 is outside"),
    (dict(batch_size=8, eval_batch_size=7), r"eval_batch_size=7 must divide the 96"),
])
def test_from_loss_validation(kwargs, match):
    x, y = _regression()
    with pytest.raises(ValueError, match=match):
        problems.from_loss(mse, PARAMS, (x, y), **kwargs)


def test_from_loss_rejects_mismatched_data_and_bad_loss():
    x, y = _regression()
    with pytest.raises(ValueError, match=r"disagree on the number of examples \(first axes "
                       r"\[95, 96\]\)"):
        problems.from_loss(mse, PARAMS, (x, y[:95]), batch_size=B)
    with pytest.raises(TypeError, match=r"loss_fn=3 must be a callable"):
        problems.from_loss(3, PARAMS, (x, y), batch_size=B)
    per_example = lambda p, b: (b[0] @ p["w"] - b[1]) ** 2
    with pytest.raises(TypeError, match=r"loss\(params\) must return a floating-point scalar"):
        problems.from_loss(per_example, PARAMS, (x, y), batch_size=B)
