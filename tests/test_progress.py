"""Progress bars on simulate / sweep / run_plan (issue 13, item 4): the scan runs as host-side
chunks of ONE compiled program, carrying the state, so a run with a bar is the run without one,
bit for bit; automatic mode (``progress=None``) is off unless stderr is a terminal."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rivervalley as rv
from rivervalley import _batched, _progress, _scan, dynamics
from rivervalley import schedules as S

TOY = rv.landscapes.standard_toy()
HILL = rv.noise.hill_only(1.0)
KEY = jax.random.key(0)


def _same(a, b):
    """Every leaf equal bit for bit (keys by their data), same structure and shapes."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape
        np.testing.assert_array_equal(x, y)


@pytest.fixture
def chunk_calls(monkeypatch):
    """Counts the chunked executions (host-side chunk loops) of the engine."""
    calls = []
    run_chunks = _batched.run_chunks

    def spy(*args, **kwargs):
        calls.append(kwargs["chunk"])
        return run_chunks(*args, **kwargs)

    monkeypatch.setattr(_batched, "run_chunks", spy)
    return calls


def test_a_chunked_sweep_is_the_sweep_bit_for_bit_and_compiles_once(chunk_calls):
    # 403 steps recorded every 7 (57 full intervals and a remainder of 4): chunks of 21 steps,
    # the last one masked at step 403
    batch = rv.stack([S.cosine(0.1, 403), S.cosine(0.07, 403, warmup_steps=20)])
    kw = dict(num_steps=403, seeds=3, key=KEY, noise=HILL, batched=("schedule",), record_every=7)
    plain = rv.sweep(TOY, jnp.zeros(2), batch, progress=False, **kw)
    assert chunk_calls == []
    before = dynamics.TRACE_COUNT["batched"]
    chunked = rv.sweep(TOY, jnp.zeros(2), batch, progress=True, **kw)
    assert chunk_calls == [21]  # 20 calls of one program
    assert dynamics.TRACE_COUNT["batched"] == before + 1  # compiled once, not once per chunk
    _same(chunked, plain)
    assert np.asarray(chunked.trajectory.steps).tolist() == list(range(0, 403, 7)) + [403]


def test_a_chunked_adam_run_and_its_resume_are_exact(chunk_calls):
    kw = dict(key=KEY, noise=HILL, record_every=3, optimizer=optax.adam)
    sched = S.wsd(0.05, 400, decay=0.3)
    plain = rv.simulate(TOY, jnp.zeros(2), sched, num_steps=200, progress=False, **kw)
    chunked = rv.simulate(TOY, jnp.zeros(2), sched, num_steps=200, progress=True, **kw)
    _same(chunked, plain)
    # resumed from a state at step 200: chunks start there, the records too
    plain2 = rv.simulate(TOY, plain.final_state, sched, num_steps=200, progress=False, **kw)
    chunked2 = rv.simulate(TOY, plain.final_state, sched, num_steps=200, progress=True, **kw)
    _same(chunked2, plain2)
    assert int(chunked2.steps[0]) == 200 and int(chunked2.steps[-1]) == 400
    assert len(chunk_calls) == 2


@pytest.mark.parametrize("record_every", [5, 150])
def test_a_chunked_plan_is_the_plan_bit_for_bit(record_every):
    # 150: fewer record intervals than chunks, so each segment runs one interval per call
    plan = rv.plans.wsd(0.06, [150, 300, 450], decay=0.2)
    kw = dict(seeds=2, noise=HILL, key=KEY, record_every=record_every)
    plain = rv.run_plan(plan, TOY, jnp.zeros(2), progress=False, **kw)
    before = dynamics.TRACE_COUNT["batched"]
    chunked = rv.run_plan(plan, TOY, jnp.zeros(2), progress=True, **kw)
    assert dynamics.TRACE_COUNT["batched"] == before + 1
    _same(chunked.trajectories, plain.trajectories)
    np.testing.assert_array_equal(chunked.per_seed_loss, plain.per_seed_loss)


def test_the_bar_counts_every_step(capsys):
    rv.simulate(TOY, jnp.zeros(2), S.constant(0.05), num_steps=100, record_every=10,
                progress=True)
    err = capsys.readouterr().err
    assert "simulate" in err and "100/100" in err
    rv.run_plan(rv.plans.wsd(0.05, [40, 80]), TOY, jnp.zeros(2), record_every=10, progress=True)
    total = sum(b.end_step - b.start_step for b in rv.plans.wsd(0.05, [40, 80]).branches)
    assert f"{total}/{total}" in capsys.readouterr().err


def test_automatic_progress_follows_the_terminal(monkeypatch, chunk_calls, capsys):
    kw = dict(num_steps=60, seeds=2, key=KEY, noise=HILL, record_every=5)
    # stderr is not a terminal (pytest captures it, like a CI log): no bar, no chunks
    plain = rv.sweep(TOY, jnp.zeros(2), S.constant(0.05), **kw)
    assert chunk_calls == [] and capsys.readouterr().err == ""
    # a terminal: chunked, behind a bar that shows only once the run has taken PROGRESS_DELAY s
    bars = []
    make = _progress.progress_bar
    monkeypatch.setattr(_progress, "stderr_is_tty", lambda: True)
    monkeypatch.setattr(_progress, "progress_bar", lambda *a: bars.append(make(*a)) or bars[-1])
    auto = rv.sweep(TOY, jnp.zeros(2), S.constant(0.05), **kw)
    assert len(chunk_calls) == 1 and bars[0].delay == _progress.PROGRESS_DELAY > 0
    _same(auto, plain)
    # progress=False is off even on a terminal
    rv.sweep(TOY, jnp.zeros(2), S.constant(0.05), progress=False, **kw)
    assert len(chunk_calls) == 1 and bars[-1] is None


@pytest.mark.parametrize("entry", ["simulate", "sweep", "run_plan"])
@pytest.mark.parametrize("bad", ["yes", 1, 0.5])
def test_progress_must_be_a_bool_or_none(entry, bad):
    call = {"simulate": lambda: rv.simulate(TOY, jnp.zeros(2), S.constant(0.05), num_steps=5,
                                            progress=bad),
            "sweep": lambda: rv.sweep(TOY, jnp.zeros(2), S.constant(0.05), num_steps=5,
                                      progress=bad),
            "run_plan": lambda: rv.run_plan(rv.plans.wsd(0.05, [20, 40]), TOY, jnp.zeros(2),
                                            progress=bad)}[entry]
    before = dynamics.TRACE_COUNT["batched"]
    with pytest.raises(ValueError, match=f"progress={bad!r} must be True, False or None"):
        call()
    assert dynamics.TRACE_COUNT["batched"] == before


def test_a_run_that_records_rarely_is_cut_inside_its_record_intervals(chunk_calls):
    # record_every=num_steps (two records): 20 chunks of 100 steps (whole divergence-check
    # blocks of the one interval: block_size(2000) = 50), their extra records dropped; the
    # numbers are the unchunked run's
    kw = dict(num_steps=2000, seeds=2, key=KEY, noise=HILL, record_every=2000)
    plain = rv.sweep(TOY, jnp.zeros(2), S.wsd(0.05, 2000), progress=False, **kw)
    chunked = rv.sweep(TOY, jnp.zeros(2), S.wsd(0.05, 2000), progress=True, **kw)
    assert chunk_calls == [100]
    _same(chunked, plain)
    assert np.asarray(chunked.trajectory.steps).tolist() == [0, 2000]


def test_chunks_follow_the_record_intervals_and_blocks():
    for n, k in ((10_000, 1), (10_000, 100), (1003, 7), (100, 100), (5, 1), (10_000, 10_000),
                 (10_000, 3000), (999, 5000)):
        chunk, rec = _progress.chunk_steps(n, k)
        assert chunk % rec == 0 and -(-n // chunk) <= max(_progress.PROGRESS_CHUNKS, -(-n // k))
        # whole record intervals, or whole blocks dividing the first interval
        base = min(k, n)
        assert rec == k or (base % rec == 0 and rec % _scan.block_size(base) == 0)
