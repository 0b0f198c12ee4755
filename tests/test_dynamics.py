"""The engine: exact GD dynamics, Monte Carlo against the exact recursion, invariants
(jit == eager, vmap == loop, prefix, resume, fork), one compilation per sweep, divergence, sharding."""

import functools
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rivervalley as rv
from rivervalley import _scan, dynamics, theory
from rivervalley import schedules as S

TOY = rv.landscapes.standard_toy()
HILL = rv.noise.hill_only(1.0)


def _linear_valley(lam=20.0, slope=0.1):
    return rv.landscapes.river_valley(2, profile="linear", slope=slope, sharpness=lam)


@pytest.mark.parametrize("eta", [0.02, 0.07, 0.099])
def test_gd_on_a_quadratic_hill_is_exact(eta):
    with jax.enable_x64(True):
        v = _linear_valley()
        x0 = jnp.array([0.0, 1.0], jnp.float64)
        tr = rv.simulate(v, x0, S.constant(eta), num_steps=60)
        t = np.arange(61)
        delta = np.asarray(tr.params)[:, 1]
        np.testing.assert_allclose(delta, (1 - eta * 20.0) ** t, rtol=1e-10, atol=1e-300)
        # the river coordinate moves eta * slope per step
        np.testing.assert_allclose(np.asarray(tr.params)[:, 0], eta * 0.1 * t, rtol=1e-10)
        flips = np.sign(delta[1:]) != np.sign(delta[:-1])
        assert flips.all() == (eta * 20.0 > 1) and flips.any() == (eta * 20.0 > 1)


@pytest.mark.parametrize("el, diverges", [(1.98, False), (2.0, False), (2.02, True)])
def test_diverges_iff_eta_lambda_above_two(el, diverges):
    tr = rv.simulate(TOY, jnp.array([0.0, 1.0]), S.constant(el / 20.0), num_steps=3000,
                     on_divergence="report", record_every=100)
    assert (int(tr.diverged_at) >= 0) == diverges
    if diverges:
        assert np.isnan(np.asarray(tr.loss)[-1])
        with pytest.raises(rv.DivergenceError, match="diverged at step"):
            tr.check()
    else:
        assert np.all(np.isfinite(np.asarray(tr.loss)))


def test_divergence_raises_with_its_step():
    with pytest.raises(rv.DivergenceError, match=r"diverged at step \d+") as err:
        rv.simulate(TOY, jnp.array([0.0, 1.0]), S.constant(0.11), num_steps=500)
    # |1 - 2.2|^t * 1 grows past the 1e10 threshold after log(2e9)/log(1.2) ~ 117 steps at most
    assert 0 < err.value.step < 200


def _first_bad_step(delta0, eta=0.11, lam=20.0, slope=0.1, threshold=1e10):
    """Closed form on the linear valley: loss(x_t) = -slope eta slope t + lam/2 (1-eta lam)^2t d0^2."""
    t = np.arange(400)
    loss = -slope * eta * slope * t + 0.5 * lam * (1 - eta * lam) ** (2 * t) * delta0 ** 2
    return int(np.argmax(loss > threshold))


@pytest.mark.parametrize("optimizer", [None, optax.sgd], ids=["sgd", "optax-sgd"])
@pytest.mark.parametrize("where", ["inside", "boundary"])
@pytest.mark.parametrize("record_every", [1, 7, 100, 1000, 1009])
def test_divergence_step_is_exact_whatever_the_record_interval(where, record_every, optimizer):
    # the fast path checks at the end of each block and replays a bad block step by step: the
    # reported step must be the closed-form one, also when it is the first step of a block (the
    # block end's loss is then already bad but the replay of that block finds nothing); optax
    # optimizers take the same path. 1009 is prime: blocks of 64 and a shorter last one.
    size = _scan.block_size(record_every)
    target = 57 if where == "inside" or size == 1 else 2 * size
    delta0 = float(np.sqrt(1e9 / 1.44 ** (target - 0.5)))  # 10 d0^2 1.44^t crosses 1e10 at target
    assert _first_bad_step(delta0) == target
    tr = rv.simulate(_linear_valley(), jnp.array([0.0, delta0]), S.constant(0.11),
                     num_steps=max(300, record_every), record_every=record_every,
                     on_divergence="report", optimizer=optimizer)
    assert int(tr.diverged_at) == target
    # the frozen state is the last state before the bad loss: |delta| = 1.2^target delta0
    np.testing.assert_allclose(abs(float(tr.final_params[1])), 1.2 ** target * delta0, rtol=1e-4)


def test_a_diverging_run_leaves_the_other_runs_bits_alone():
    batch = rv.stack([S.constant(0.05), S.constant(0.11)])
    kw = dict(num_steps=500, seeds=3, noise=HILL, key=jax.random.key(4), record_every=250)
    both = rv.sweep(_linear_valley(), jnp.array([0.0, 1.0]), batch, batched=("schedule",), **kw)
    alone = rv.sweep(_linear_valley(), jnp.array([0.0, 1.0]), S.constant(0.05), **kw)
    assert (both.diverged_at[:, 1] >= 0).all() and (both.diverged_at[:, 0] == -1).all()
    assert np.array_equal(np.asarray(both.trajectory.final_params)[:, 0],
                          np.asarray(alone.trajectory.final_params)[:, 0])


SCHEDULES = {
    "constant": S.constant(0.06),
    "cosine": S.cosine(0.06, 600),
    "wsd": S.wsd(0.06, 600, decay=0.2),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_monte_carlo_matches_the_second_moment_recursion(name):
    """4096 seeds in float64: the seed-mean hill loss is within 4 standard errors of the exact
    recursion at several steps (the standard error is the seed std / sqrt(4096))."""
    sched = SCHEDULES[name]
    with jax.enable_x64(True):
        v = _linear_valley()
        x0 = jnp.array([0.0, 0.5], jnp.float64)
        res = rv.sweep(v, x0, sched, num_steps=600, seeds=4096, noise=HILL,
                       key=jax.random.key(7), record_every=50)
        hill = np.asarray(res.trajectory.hill_loss)[:, 0]
        pred = theory.expected_trajectory(v, sched, num_steps=600, noise=HILL, x0=x0, record_every=50)
    mean, sem = hill.mean(0), hill.std(0, ddof=1) / np.sqrt(hill.shape[0])
    z = np.abs(mean - np.asarray(pred.hill_loss))[1:] / sem[1:]
    assert z.max() < 4.0, z


def test_constant_lr_plateau():
    with jax.enable_x64(True):
        v = _linear_valley()
        res = rv.sweep(v, jnp.zeros(2, jnp.float64), S.constant(0.06), num_steps=2000,
                       seeds=2048, noise=HILL, key=jax.random.key(1), record_every=10)
    hill = np.asarray(res.trajectory.hill_loss)[:, 0, 20:]  # after relaxation (~1 step)
    plateau = theory.steady_state_hill_loss(0.06, 20.0, 1.0)
    # time-and-seed average; records 10 steps apart are independent (relaxation ~0.4 steps)
    assert abs(hill.mean() - plateau) < 4 * hill.std() / np.sqrt(hill.size)
    assert abs(plateau - 0.0375) < 1e-12


def test_decomposition_sums_in_trajectories():
    tr = rv.simulate(TOY, jnp.zeros(2), S.wsd(0.06, 500), num_steps=500, noise=HILL,
                     key=jax.random.key(0), record_every=7)
    np.testing.assert_allclose(tr.loss, tr.river_loss + tr.hill_loss, rtol=1e-6)
    assert tr.steps.tolist() == list(range(0, 500, 7)) + [500]
    np.testing.assert_allclose(tr.lr, S.as_array(S.wsd(0.06, 500), 501)[tr.steps], rtol=1e-6)


def test_jit_equals_eager():
    kwargs = dict(num_steps=12, noise=HILL, key=jax.random.key(3), record_every=4)
    a = rv.simulate(TOY, jnp.zeros(2), S.wsd(0.06, 12, decay=0.5), **kwargs)
    with jax.disable_jit():
        b = rv.simulate(TOY, jnp.zeros(2), S.wsd(0.06, 12, decay=0.5), **kwargs)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-6, atol=1e-7)


def test_vmap_equals_loop_and_compiles_once():
    peaks = [0.02, 0.04, 0.06, 0.08]
    batch = rv.stack([S.wsd(p, 300, decay=0.2) for p in peaks])
    before = dynamics.TRACE_COUNT["batched"]
    res = rv.sweep(TOY, jnp.zeros(2), batch, num_steps=300, seeds=3, noise=HILL,
                   key=jax.random.key(0), batched=("schedule",), record_every=30)
    assert dynamics.TRACE_COUNT["batched"] == before + 1
    # new values, same shapes: no recompilation
    batch2 = rv.stack([S.wsd(p, 300, decay=0.1) for p in peaks])
    rv.sweep(TOY, jnp.zeros(2), batch2, num_steps=300, seeds=3, noise=HILL,
             key=jax.random.key(1), batched=("schedule",), record_every=30)
    assert dynamics.TRACE_COUNT["batched"] == before + 1
    for b, p in enumerate(peaks):
        for s in range(3):
            one = rv.simulate(TOY, jnp.zeros(2), S.wsd(p, 300, decay=0.2), num_steps=300,
                              noise=HILL, key=jax.random.fold_in(jax.random.key(0), s),
                              record_every=30)
            np.testing.assert_allclose(res.trajectory.loss[s, b], one.loss, rtol=1e-5, atol=1e-7)


def test_sweep_over_landscapes_and_shapes():
    valleys = rv.stack([rv.landscapes.river_valley(2, sharpness=s) for s in (5.0, 20.0, 50.0)])
    res = rv.sweep(valleys, jnp.zeros(2), S.constant(0.01), num_steps=2000, seeds=512,
                   noise=HILL, key=jax.random.key(0), batched=("problem",), record_every=500)
    hill = np.asarray(res.trajectory.hill_loss)[:, :, -1].mean(0)
    expected = [theory.steady_state_hill_loss(0.01, s, 1.0) for s in (5.0, 20.0, 50.0)]
    np.testing.assert_allclose(hill, expected, rtol=0.15)


def test_prefix_and_resume_are_exact():
    kw = dict(noise=HILL, key=jax.random.key(5), record_every=10)
    short = rv.simulate(TOY, jnp.zeros(2), S.constant(0.05), num_steps=1000, **kw)
    long = rv.simulate(TOY, jnp.zeros(2), S.constant(0.05), num_steps=2000, **kw)
    assert np.array_equal(short.params, long.params[:101])
    resumed = rv.simulate(TOY, short.final_state, S.constant(0.05), num_steps=1000, **kw)
    assert int(resumed.steps[0]) == 1000 and int(resumed.steps[-1]) == 2000
    assert np.array_equal(resumed.params, long.params[100:])


def test_wsd_branch_forked_from_saved_state_equals_uninterrupted_run():
    plan = rv.plans.wsd(0.06, [400, 800], decay=0.25)
    res = rv.run_plan(plan, TOY, jnp.zeros(2), seeds=4, noise=HILL, key=jax.random.key(0),
                      record_every=1)
    branch = next(b for b in plan.branches if b.name != "main")
    full = rv.sweep(TOY, jnp.zeros(2), branch.schedule, num_steps=branch.end_step, seeds=4,
                    noise=HILL, key=jax.random.key(0), record_every=1)
    assert np.array_equal(np.asarray(full.trajectory.final_state.params)[:, 0],
                          np.asarray(res.trajectories[branch.name].final_state.params))
    # the checkpoint loss is that state's loss
    np.testing.assert_allclose(res.loss[0], np.asarray(full.trajectory.loss)[:, 0, -1].mean(),
                               rtol=1e-6)


def test_optax_optimizers():
    kw = dict(num_steps=200, noise=HILL, key=jax.random.key(2), record_every=20)
    sgd = rv.simulate(TOY, jnp.zeros(2), S.wsd(0.06, 200), **kw)
    via_optax = rv.simulate(TOY, jnp.zeros(2), S.wsd(0.06, 200), optimizer=optax.sgd, **kw)
    np.testing.assert_allclose(sgd.params, via_optax.params, rtol=1e-5, atol=1e-6)
    mom = rv.simulate(TOY, jnp.zeros(2), S.wsd(0.006, 200),
                      optimizer=functools.partial(optax.sgd, momentum=0.9), **kw)
    adam = rv.simulate(TOY, jnp.zeros(2), S.wsd(0.01, 200), optimizer=optax.adam, **kw)
    assert float(mom.river_loss[-1]) < float(mom.river_loss[0])
    assert float(adam.river_loss[-1]) < float(adam.river_loss[0])
    with pytest.raises(TypeError, match="factory"):
        rv.simulate(TOY, jnp.zeros(2), S.constant(0.1), num_steps=5, optimizer=optax.sgd(0.1))


def test_sweep_reports_diverging_configurations():
    batch = rv.stack([S.constant(p) for p in (0.05, 0.12)])
    res = rv.sweep(TOY, jnp.array([0.0, 1.0]), batch, num_steps=400, seeds=2,
                   batched=("schedule",), record_every=50)
    d = res.diverged_at
    assert (d[:, 0] == -1).all() and (d[:, 1] > 0).all()
    assert "config 1: 2/2 seeds diverged" in res.report()


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_steps=0), "num_steps=0"),
    (dict(num_steps=10, record_every=0), "record_every=0"),
    (dict(num_steps=10, on_divergence="ignore"), "on_divergence"),
    (dict(num_steps=10, noise=HILL), "key is required"),
])
def test_simulate_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rv.simulate(TOY, jnp.zeros(2), S.constant(0.01), **kwargs)


def test_sweep_validation():
    with pytest.raises(ValueError, match="batched=.*unknown"):
        rv.sweep(TOY, jnp.zeros(2), S.constant(0.01), num_steps=5, batched=("seeds",))
    with pytest.raises(ValueError, match="batch size"):
        rv.sweep(TOY, jnp.zeros(2), rv.stack([S.constant(0.1)] * 2), num_steps=5,
                 noise=rv.stack([HILL] * 3), batched=("schedule", "noise"))


def test_sharded_sweep_matches_single_device():
    """Four host devices (XLA_FLAGS) give the same numbers as one, and the same divergence steps:
    the block check's collective (any run bad -> replay) reduces across the devices' shards."""
    script = textwrap.dedent("""
        import jax, jax.numpy as jnp, numpy as np
        import rivervalley as rv
        peaks = (0.02, 0.04, 0.06, 0.12)          # 0.12 * 20 = 2.4 > 2: diverges
        batch = rv.stack([rv.schedules.wsd(p, 400, decay=0.2) for p in peaks])
        res = rv.sweep(rv.landscapes.standard_toy(), jnp.zeros(2), batch, num_steps=400,
                       seeds=5, noise=rv.noise.hill_only(1.0), key=jax.random.key(0),
                       batched=("schedule",), record_every=200)
        print(len(jax.devices()))
        np.save("OUT", np.concatenate([np.asarray(res.trajectory.loss).ravel(),
                                       res.diverged_at.ravel().astype(float)]))
    """)
    outs = []
    for n in (1, 4):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}",
                   JAX_PLATFORMS="cpu")
        path = f"/tmp/rv_shard_{os.getpid()}_{n}.npy"
        out = subprocess.run([sys.executable, "-c", script.replace("OUT", path)], env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split()[-1] == str(n)
        outs.append(np.load(path))
        os.remove(path)
    np.testing.assert_array_equal(outs[0], outs[1])
    diverged = outs[0][-20:].reshape(5, 4)
    assert (diverged[:, 3] > 0).all() and (diverged[:, :3] == -1).all(), diverged


def test_a_plan_compiles_once_and_its_records_are_unique_steps():
    plan = rv.plans.wsd(0.06, [300, 500, 900], decay=0.2)
    before = dynamics.TRACE_COUNT["batched"]
    res = rv.run_plan(plan, TOY, jnp.zeros(2), seeds=2, noise=HILL, key=jax.random.key(1),
                      record_every=20)
    assert dynamics.TRACE_COUNT["batched"] == before + 1
    for name, tr in res.trajectories.items():
        steps = np.asarray(tr.steps)  # stored once: (records,)
        branch = plan.branch(name)
        assert steps[0] == branch.start_step and steps[-1] == branch.end_step
        assert np.all(np.diff(steps) > 0)


def test_run_scan_is_simulate_inside_your_own_jit():
    sched = S.wsd(0.06, 300, decay=0.2)
    ref = rv.simulate(TOY, jnp.zeros(2), sched, num_steps=300, noise=HILL,
                      key=jax.random.key(3), record_every=50)
    traj = jax.jit(lambda k: dynamics.run_scan(TOY, jnp.zeros(2), sched, key=k, num_steps=300,
                                               noise=HILL, record_every=50))(jax.random.key(3))
    for field in ("steps", "lr", "loss", "river_loss", "hill_loss", "params"):
        assert np.array_equal(getattr(traj, field), getattr(ref, field)), field
    assert int(traj.diverged_at) == -1


def test_run_scan_is_differentiable_in_the_learning_rate():
    # GD on the linear valley: L_T(eta) = -s^2 eta T + lam/2 (1 - eta lam)^(2T) d0^2, exactly
    lam, s, T, d0, eta = 20.0, 0.1, 40, 1.0, 0.03
    with jax.enable_x64(True):
        def final_loss(e):
            traj = dynamics.run_scan(_linear_valley(lam, s), jnp.array([0.0, d0]), S.constant(e),
                                     key=jax.random.key(0), num_steps=T, record_every=T)
            return traj.loss[-1]
        g = float(jax.grad(final_loss)(eta))
    exact = -s * s * T - lam * lam * T * (1 - eta * lam) ** (2 * T - 1) * d0 ** 2
    assert g == pytest.approx(exact, rel=1e-10)


# -- steps stored once; save / load / to_csv through the result's methods ---------------------------
def test_steps_are_stored_once_whatever_the_run_axes():
    # before: steps were repeated per run, (seeds, batch, records) for a sweep
    batch = rv.stack([S.constant(0.02), S.constant(0.04)])
    res = rv.sweep(TOY, jnp.zeros(2), batch, num_steps=50, seeds=3, noise=HILL,
                   key=jax.random.key(0), batched=("schedule",), record_every=20)
    tr = res.trajectory
    assert np.shape(tr.loss) == (3, 2, 4) and np.shape(tr.lr) == (3, 2, 4)
    assert np.asarray(tr.steps).tolist() == [0, 20, 40, 50]
    plan = rv.run_plan(rv.plans.wsd(0.05, [40, 60]), TOY, jnp.zeros(2), seeds=2, noise=HILL,
                       key=jax.random.key(0), record_every=10)
    for name, br in plan.trajectories.items():
        assert np.ndim(br.steps) == 1 and np.shape(br.loss) == (2, np.size(br.steps)), name
    assert np.ndim(rv.simulate(TOY, jnp.zeros(2), S.constant(0.05), num_steps=5).steps) == 1


def _same(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb) and jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(la, lb):
        if not isinstance(x, (jax.Array, np.ndarray, np.generic)):  # the Plan (not a pytree)
            assert type(x) is type(y) and repr(x) == repr(y)
            continue
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_results_save_load_and_export_through_their_methods(tmp_path):
    import csv

    from rivervalley import results_io
    from rivervalley.results import PlanResult, SweepResult, Trajectory

    traj = rv.simulate(TOY, jnp.zeros(2), S.cosine(0.05, 30), num_steps=30, noise=HILL,
                       key=jax.random.key(0), record_every=10, optimizer=optax.adam)
    res = rv.sweep(TOY, jnp.zeros(2), S.constant(0.05), num_steps=30, seeds=2, noise=HILL,
                   key=jax.random.key(0), record_every=10)
    plan = rv.run_plan(rv.plans.wsd(0.05, [20, 30]), TOY, jnp.zeros(2), seeds=2, noise=HILL,
                       key=jax.random.key(0), record_every=10)
    for obj, cls, rows in ((traj, Trajectory, 4), (res, SweepResult, 2 * 4),
                           (plan, PlanResult, sum(np.size(t.loss)
                                                  for t in plan.trajectories.values()))):
        path = tmp_path / f"{cls.__name__}.npz"
        obj.save(path, config={"what": cls.__name__})
        back = cls.load(path)
        assert type(back) is cls
        _same(back, obj)  # exact, bit for bit, every field (optax states, keys, the plan)
        assert results_io.load_meta(path)["config"] == {"what": cls.__name__}
        assert obj.to_csv(tmp_path / f"{cls.__name__}.csv") == rows  # one row per record
        with open(tmp_path / f"{cls.__name__}.csv") as f:
            assert len(list(csv.DictReader(f))) == rows
    with pytest.raises(ValueError, match="holds a Trajectory, not a SweepResult"):
        SweepResult.load(tmp_path / "Trajectory.npz")
