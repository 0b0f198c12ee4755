"""rivervalley.results_io: save -> load is exact (bit for bit, structure and classes included),
CSV has one row per record, bad paths and files fail with a message naming them."""

from __future__ import annotations

import csv
import functools
import json

import jax
import numpy as np
import optax
import pytest

import rivervalley as rv
from rivervalley import results_io as io


def _leaves_equal(a, b):
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb, (ta, tb)
    for x, y in zip(la, lb):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()  # same process, same arrays: bytes are the test


@pytest.fixture(scope="module")
def valley():
    return rv.landscapes.standard_toy()


def test_trajectory_with_adam_state_round_trips_exactly(valley, tmp_path):
    traj = rv.simulate(valley, valley.init_params(), rv.schedules.wsd(0.05, 60, decay=0.2),
                       num_steps=60, noise=rv.noise.hill_only(1.0), key=jax.random.key(3),
                       optimizer=optax.adam, record_every=7, record_params=True)
    path = tmp_path / "t.npz"
    io.save(traj, path, config={"peak_value": 0.05, "seed": 3})
    back = io.load(path)
    assert type(back) is type(traj)
    assert type(back.final_state.opt_state[0]) is type(traj.final_state.opt_state[0])
    _leaves_equal(back, traj)
    meta = io.load_meta(path)
    assert meta["config"] == {"peak_value": 0.05, "seed": 3}
    assert meta["versions"]["rivervalley"] == rv.__version__
    # a loaded run resumes exactly like the original state
    more = rv.simulate(valley, back.final_state, rv.schedules.wsd(0.05, 60, decay=0.2),
                       num_steps=5, noise=rv.noise.hill_only(1.0), key=jax.random.key(3),
                       optimizer=optax.adam)
    ref = rv.simulate(valley, traj.final_state, rv.schedules.wsd(0.05, 60, decay=0.2),
                      num_steps=5, noise=rv.noise.hill_only(1.0), key=jax.random.key(3),
                      optimizer=optax.adam)
    _leaves_equal(more.loss, ref.loss)


def test_sweep_and_plan_round_trip_and_csv_rows(valley, tmp_path):
    scheds = rv.stack([rv.schedules.wsd(0.05, 80, decay=d) for d in (0.1, 0.3, 0.5)])
    res = rv.sweep(valley, valley.init_params(), scheds, num_steps=80, seeds=[4, 9],
                   key=jax.random.key(0), noise=rv.noise.hill_only(1.0), batched=("schedule",),
                   record_every=10)
    io.save(res, tmp_path / "s.npz")
    _leaves_equal(io.load(tmp_path / "s.npz"), res)
    n = io.to_csv(res, tmp_path / "s.csv")
    with open(tmp_path / "s.csv") as f:
        rows = list(csv.DictReader(f))
    n_records = np.shape(res.trajectory.loss)[-1]
    assert n == len(rows) == 2 * 3 * n_records
    r = rows[1 * 3 * n_records + 2 * n_records + 4]  # seed index 1, config 2, record 4
    assert (int(r["seed"]), int(r["config"])) == (1, 2)
    assert int(r["step"]) == int(np.broadcast_to(res.trajectory.steps,
                                                 np.shape(res.trajectory.loss))[1, 2, 4])
    assert float(r["loss"]) == pytest.approx(float(res.trajectory.loss[1, 2, 4]), rel=1e-7)

    plan = rv.plans.wsd(0.05, [40, 80], decay=0.25)
    pres = rv.run_plan(plan, valley, valley.init_params(), seeds=2, key=jax.random.key(1),
                       noise=rv.noise.hill_only(1.0), record_every=10)
    io.save(pres, tmp_path / "p.npz", config={"plan": "wsd"})
    back = io.load(tmp_path / "p.npz")
    assert repr(back.plan) == repr(pres.plan) and back.names == pres.names
    for b0, b1 in zip(pres.plan.branches, back.plan.branches):
        assert type(b1.schedule) is type(b0.schedule)
        _leaves_equal(b1.schedule, b0.schedule)
    _leaves_equal(back.trajectories, pres.trajectories)
    np.testing.assert_array_equal(back.loss, pres.loss)
    n = io.to_csv(pres, tmp_path / "p.csv")
    expected = sum(int(np.size(t.loss)) for t in pres.trajectories.values())
    assert n == expected
    with open(tmp_path / "p.csv") as f:
        branches = {row["branch"] for row in csv.DictReader(f)}
    assert branches == set(pres.trajectories)


def test_bad_paths_and_files(valley, tmp_path):
    traj = rv.simulate(valley, valley.init_params(), rv.schedules.constant(0.01), num_steps=3)
    with pytest.raises(ValueError, match=r"path=.*must end in \.npz"):
        io.save(traj, tmp_path / "t.json")
    d = tmp_path / "d.npz"
    d.mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        io.save(traj, d)
    with pytest.raises(ValueError, match="does not exist"):
        io.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="bad.npz: not a rivervalley results file"):
        io.load(bad)
    with pytest.raises(ValueError, match="JSON-serializable"):
        io.save(traj, tmp_path / "c.npz", config={"f": functools.partial(print)})
    assert not (tmp_path / "c.npz").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # nothing half-written
    with pytest.raises(ValueError, match="must be a Trajectory, SweepResult or PlanResult"):
        io.to_csv({"loss": 1}, tmp_path / "x.csv")



def test_factory_built_objects_load_without_their_constructor(tmp_path):
    # a schedule is a type only (its class refuses __init__; rv.schedules.wsd builds it): the file
    # gives it back field by field, as JAX unflattens it, and it computes what the original does
    sched = rv.schedules.wsd(0.05, 100, warmup_steps=10, decay=0.3, decay_shape="cosine")
    io.save(sched, tmp_path / "s.npz")
    back = io.load(tmp_path / "s.npz")
    assert type(back) is type(sched)
    _leaves_equal(back, sched)
    steps = np.arange(101)
    _leaves_equal(jax.vmap(back)(steps), jax.vmap(sched)(steps))
    # a file whose class has changed its fields since is refused, naming the class
    with np.load(tmp_path / "s.npz") as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    dropped = sorted(meta["tree"]["fields"])[0]
    del meta["tree"]["fields"][dropped]
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(ValueError, match=rf"saved rivervalley.schedules:WSD has the fields .*"
                                         rf"this version's has .*'{dropped}'"):
        io.load(tmp_path / "old.npz")
