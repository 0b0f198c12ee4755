"""The engine's inputs (issue 11, engine half): every argument of ``simulate`` / ``sweep`` /
``run_plan`` is checked once, on the host, before anything is compiled, and a bad one is an error
that names it -- never a silent broadcast, a silent default or a misleading DivergenceError."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rivervalley as rv
from rivervalley import bigram as bg
from rivervalley import dynamics
from rivervalley import schedules as S

TOY = rv.landscapes.standard_toy()
HILL = rv.noise.hill_only(1.0)
C = S.constant(0.05)
KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def table():
    return bg.TableModel(bg.make_data(vocab_size=8, key=jax.random.key(0)), batch_size=4)


def _compiles(call):
    """Run ``call`` expecting a ValueError; return how many batched programs it traced."""
    before = dynamics.TRACE_COUNT["batched"]
    with pytest.raises(ValueError) as err:
        call()
    return dynamics.TRACE_COUNT["batched"] - before, str(err.value)


# -- 1. x0 of the wrong shape or dtype ----------------------------------------------------------
def test_a_short_x0_is_an_error_not_a_broadcast():
    # today: runs as if x0 were (0.5, 0.5)
    traced, msg = _compiles(lambda: rv.simulate(TOY, jnp.array([0.5]), C, num_steps=5))
    assert traced == 0  # rejected before compiling anything
    assert "x0 has shape (1,)" in msg and "(2,)" in msg


def test_a_stack_of_starting_points_needs_batched_x0():
    # today: minimizes the sum of the three losses
    with pytest.raises(ValueError, match=r"x0 has shape \(3, 2\).*batched=\('x0',\)"):
        rv.sweep(TOY, jnp.ones((3, 2)), C, num_steps=5)
    res = rv.sweep(TOY, jnp.ones((3, 2)) * jnp.arange(3.0)[:, None], C, num_steps=5,
                   batched=("x0",), record_every=5)
    one = rv.simulate(TOY, jnp.array([2.0, 2.0]), C, num_steps=5, record_every=5)
    np.testing.assert_allclose(np.asarray(res.trajectory.loss)[0, 2], one.loss, rtol=1e-6)
    with pytest.raises(ValueError, match=r"x0 has shape \(3,\) per run"):
        rv.sweep(TOY, jnp.ones((4, 3)), C, num_steps=5, batched=("x0",))


def test_a_3d_meander_refuses_a_2_vector():
    meander = rv.landscapes.river_valley(3, amplitude=0.3, wavenumber=2.0)
    with pytest.raises(ValueError, match=r"x0 has shape \(2,\).*\(3,\)"):
        rv.simulate(meander, jnp.zeros(2), C, num_steps=5)
    with pytest.raises(ValueError, match=r"x0 has shape \(2,\)"):
        rv.run_plan(rv.plans.wsd(0.05, [20, 40]), meander, jnp.zeros(2))


def test_bigram_x0_must_have_the_tree_and_shapes_of_init_params(table):
    with pytest.raises(ValueError, match=r"x0\['W'\] has shape \(8,\).*\(8, 8\)"):
        rv.simulate(table, {"W": jnp.zeros(8)}, C, num_steps=5, key=KEY)
    with pytest.raises(ValueError, match=r"x0 has leaves \{\['E'\].*\['W'\]"):
        rv.simulate(table, {"E": jnp.zeros((8, 8))}, C, num_steps=5, key=KEY)
    fact = bg.FactorizedModel(table.data, width=4, batch_size=4)
    with pytest.raises(ValueError, match=r"x0\['U'\] has shape \(8, 4\).*\(4, 8\)"):
        rv.simulate(fact, {"E": jnp.zeros((8, 4)), "U": jnp.zeros((8, 4))}, C, num_steps=5,
                    key=KEY)


def test_transformer_x0_is_checked_against_its_init():
    model = rv.transformer.transformer(bg.make_data(vocab_size=8, key=jax.random.key(0)),
                                       seq_len=4, width=4, batch_size=2, num_eval=2,
                                       key=jax.random.key(1))
    params = model.init_params(key=jax.random.key(2))
    del params["Wo"]
    with pytest.raises(ValueError, match=r"x0 has leaves"):
        rv.simulate(model, params, C, num_steps=5, key=KEY)


def test_an_integer_x0_is_an_error():
    with pytest.raises(ValueError, match=r"x0=\[0, 1\] has dtype int32.*floating point"):
        rv.simulate(TOY, jnp.array([0, 1]), C, num_steps=5)
    with pytest.raises(ValueError, match=r"x0\['W'\].*dtype"):
        rv.sweep(TOY, {"W": np.zeros(2, np.int64)}, C, num_steps=5)


@pytest.mark.parametrize("entry", ["simulate", "sweep", "run_plan"])
def test_a_nan_x0_is_an_error_not_a_divergence(entry):
    x0 = jnp.array([0.0, jnp.nan])
    call = {"simulate": lambda: rv.simulate(TOY, x0, C, num_steps=5),
            "sweep": lambda: rv.sweep(TOY, x0, C, num_steps=5),
            "run_plan": lambda: rv.run_plan(rv.plans.wsd(0.05, [20, 40]), TOY, x0)}[entry]
    with pytest.raises(ValueError, match="x0=.*non-finite.*starting point must be finite"):
        call()


def test_resuming_a_diverged_or_foreign_state_is_an_error():
    tr = rv.simulate(TOY, jnp.array([0.0, 1.0]), S.constant(0.11), num_steps=300,
                     on_divergence="report")
    with pytest.raises(ValueError, match="diverged at step"):
        rv.simulate(TOY, tr.final_state, S.constant(0.01), num_steps=5)
    ok = rv.simulate(TOY, jnp.zeros(2), C, num_steps=5).final_state
    with pytest.raises(ValueError, match="opt_state does not fit optimizer"):
        rv.simulate(TOY, ok, C, num_steps=5, optimizer=optax.adam)
    with pytest.raises(ValueError, match="x0 is a SimState: sweep and run_plan start from"):
        rv.sweep(TOY, ok, C, num_steps=5)


# -- 2. seeds -------------------------------------------------------------------------------------
@pytest.mark.parametrize("seeds, match", [
    ([2**32 + 5, 5], "outside the valid range"),
    ([0.2, 0.7], "not an integer"),
    ([3, 3], "repeats 3"),
    ([], "non-empty"),
    (0, "seeds=0"),
    (True, "bool"),
])
@pytest.mark.parametrize("entry", ["sweep", "run_plan"])
def test_seeds_that_would_collide_are_refused(entry, seeds, match):
    if entry == "sweep":
        call = lambda: rv.sweep(TOY, jnp.zeros(2), C, num_steps=5, seeds=seeds, noise=HILL,
                                key=KEY)
    else:
        call = lambda: rv.run_plan(rv.plans.wsd(0.05, [20, 40]), TOY, jnp.zeros(2), seeds=seeds,
                                   noise=HILL, key=KEY)
    with pytest.raises(ValueError, match=match):
        call()


def test_explicit_seeds_are_the_runs_of_those_seeds():
    kw = dict(num_steps=20, noise=HILL, key=KEY, record_every=20)
    res = rv.sweep(TOY, jnp.zeros(2), C, seeds=np.array([7, 2**32 - 1]), **kw)
    assert res.seeds.tolist() == [7, 2**32 - 1]
    for i, s in enumerate((7, 2**32 - 1)):
        one = rv.simulate(TOY, jnp.zeros(2), C, num_steps=20, noise=HILL,
                          key=jax.random.fold_in(KEY, s), record_every=20)
        assert np.array_equal(np.asarray(res.trajectory.final_params)[i, 0], one.final_params)


# -- 3. the optimizer factory ---------------------------------------------------------------------
@pytest.mark.parametrize("bad", [lambda s: None, lambda s: 0.1, lambda s: s],
                         ids=["None", "float", "schedule"])
def test_an_optimizer_factory_must_return_an_optax_optimizer(bad):
    # today: None silently runs plain SGD
    with pytest.raises(TypeError, match=r"optimizer=.*returned .*not an optax"):
        rv.simulate(TOY, jnp.zeros(2), C, num_steps=5, optimizer=bad)
    with pytest.raises(TypeError, match=r"optimizer=.*returned"):
        rv.sweep(TOY, jnp.zeros(2), C, num_steps=5, optimizer=bad)
    with pytest.raises(TypeError, match=r"optimizer=.*returned"):
        rv.run_plan(rv.plans.wsd(0.05, [20, 40]), TOY, jnp.zeros(2), optimizer=bad)


# -- 6. errors that help --------------------------------------------------------------------------
def test_a_key_must_be_a_key():
    with pytest.raises(ValueError, match=r"key=0 is not a PRNG key: pass key=jax.random.key\(0\)"):
        rv.simulate(TOY, jnp.zeros(2), C, num_steps=5, noise=HILL, key=0)
    with pytest.raises(ValueError, match="key=.*not a PRNG key"):
        rv.sweep(TOY, jnp.zeros(2), C, num_steps=5, noise=HILL, key=1.5)
    with pytest.raises(ValueError, match="one PRNG key"):
        rv.simulate(TOY, jnp.zeros(2), C, num_steps=5, noise=HILL,
                    key=jax.random.split(KEY, 3))
    # a raw uint32 key still works
    rv.simulate(TOY, jnp.zeros(2), C, num_steps=5, noise=HILL, key=jax.random.PRNGKey(0))


@pytest.mark.parametrize("entry", ["simulate", "sweep", "run_plan"])
def test_the_key_is_required_with_noise_everywhere(entry):
    # today: sweep and run_plan silently use key(0)
    call = {"simulate": lambda: rv.simulate(TOY, jnp.zeros(2), C, num_steps=5, noise=HILL),
            "sweep": lambda: rv.sweep(TOY, jnp.zeros(2), C, num_steps=5, noise=HILL, seeds=2),
            "run_plan": lambda: rv.run_plan(rv.plans.wsd(0.05, [20, 40]), TOY, jnp.zeros(2),
                                            noise=HILL)}[entry]
    with pytest.raises(ValueError, match="key is required with a noise model"):
        call()


@pytest.mark.parametrize("entry", ["simulate", "sweep", "run_plan"])
def test_the_key_is_required_by_a_problem_that_samples_minibatches(entry, table):
    # today: every entry point silently uses key(0) for the minibatches
    x0 = table.init_params()
    call = {"simulate": lambda: rv.simulate(table, x0, C, num_steps=5),
            "sweep": lambda: rv.sweep(table, x0, C, num_steps=5),
            "run_plan": lambda: rv.run_plan(rv.plans.wsd(0.05, [20, 40]), table, x0)}[entry]
    with pytest.raises(ValueError, match=r"key is required: TableModel draws minibatches"):
        call()
    full_batch = bg.TableModel(table.data, batch_size=None)  # deterministic: no key needed
    rv.simulate(full_batch, x0, C, num_steps=5)


def test_a_number_is_not_a_schedule():
    with pytest.raises(ValueError, match=r"schedule=0.05 is not a schedule.*constant\(0.05\)"):
        rv.simulate(TOY, jnp.zeros(2), 0.05, num_steps=5)
    with pytest.raises(ValueError, match=r"schedule=0.05 is not a schedule"):
        rv.sweep(TOY, jnp.zeros(2), 0.05, num_steps=5)


def test_stacked_arguments_must_be_named_in_batched():
    two = rv.stack([S.constant(0.05), S.constant(0.01)])
    with pytest.raises(ValueError, match=r"a stack of 2 schedules needs batched=\('schedule',\)"):
        rv.sweep(TOY, jnp.zeros(2), two, num_steps=5)
    # a schedule whose stacked leaves fail on one step: the message still names the argument
    two = rv.stack([S.wsd(0.05, 50), S.wsd(0.01, 50)])
    with pytest.raises(ValueError, match=r"schedule.*batched=\('schedule',\)"):
        rv.sweep(TOY, jnp.zeros(2), two, num_steps=5)
    valleys = rv.stack([rv.landscapes.standard_toy(sharpness=s) for s in (5.0, 20.0, 50.0)])
    with pytest.raises(ValueError, match=r"stack of 3 problems.*batched=\('schedule', 'problem'\)"):
        rv.sweep(valleys, jnp.zeros(2), rv.stack([C] * 3), num_steps=5, batched=("schedule",))
    with pytest.raises(ValueError, match=r"noise.*batched=\('noise',\)"):
        rv.sweep(TOY, jnp.zeros(2), C, num_steps=5, noise=rv.stack([HILL] * 3), key=KEY)
    # named in batched but not stacked: the leaf that has no batch axis is named
    with pytest.raises(ValueError, match=r"problem.wavenumber is a scalar"):
        rv.sweep(TOY, jnp.zeros(2), C, num_steps=5, batched=("problem",))
    with pytest.raises(ValueError, match=r"batched='x0' must be a tuple.*\('x0',\)"):
        rv.sweep(TOY, jnp.ones((3, 2)), C, num_steps=5, batched="x0")


@pytest.mark.parametrize("threshold", [-1.0, 0.0, float("nan"), True, "1e10"])
def test_a_threshold_must_be_positive(threshold):
    # today: nan silently disables the check, a negative one reports a divergence at step 0
    with pytest.raises(ValueError, match="divergence_threshold="):
        rv.simulate(TOY, jnp.zeros(2), C, num_steps=5, divergence_threshold=threshold)
    with pytest.raises(ValueError, match="divergence_threshold="):
        rv.sweep(TOY, jnp.zeros(2), C, num_steps=5, divergence_threshold=threshold)


def test_an_infinite_threshold_still_catches_non_finite_losses():
    tr = rv.simulate(TOY, jnp.array([0.0, 1.0]), S.constant(0.11), num_steps=2000,
                     divergence_threshold=float("inf"), on_divergence="report", record_every=100)
    assert int(tr.diverged_at) > 0


def test_a_divergence_at_the_start_blames_the_threshold_not_the_learning_rate():
    with pytest.raises(rv.DivergenceError, match="already above divergence_threshold=0.1") as e:
        rv.simulate(TOY, jnp.zeros(2), S.constant(1e-6), num_steps=5, divergence_threshold=0.1)
    assert "learning rate" not in str(e.value) and e.value.step == 0
    # a real divergence keeps its advice
    with pytest.raises(rv.DivergenceError, match="lower the learning rate"):
        rv.simulate(TOY, jnp.array([0.0, 1.0]), S.constant(0.11), num_steps=500)


class _MinibatchOfZero:
    """A user's own problem (the toy's loss) that states a minibatch size of 0."""

    batch_size = 0

    def loss(self, params):
        return TOY.loss(params)

    def sample_loss(self, params, key):
        return TOY.loss(params)

    def decompose(self, params):
        return TOY.decompose(params)


def test_a_batch_size_of_zero_is_named(table):
    # before: a DivergenceError telling the user to lower the learning rate. The package's
    # problems refuse it when they are built; the engine names it for any other problem
    with pytest.raises(ValueError, match=r"batch_size=0"):
        bg.TableModel(table.data, batch_size=0)
    zero = _MinibatchOfZero()
    for call in (lambda: rv.simulate(zero, jnp.zeros(2), C, num_steps=5, key=KEY),
                 lambda: rv.sweep(zero, jnp.zeros(2), C, num_steps=5, key=KEY)):
        traced, msg = _compiles(call)
        assert traced == 0 and "problem.batch_size=0" in msg


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_steps=5.0), "num_steps=5.0"),
    (dict(num_steps=True), "num_steps=True"),
    (dict(num_steps=5, record_every=2.5), "record_every=2.5"),
    (dict(num_steps=5, record_params="yes"), "record_params="),
    (dict(num_steps=5, noise=0.5), "noise=0.5 is not a noise model"),
])
def test_other_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rv.simulate(TOY, jnp.zeros(2), C, **kwargs)


def test_problem_and_plan_must_be_what_they_say():
    # the problem protocol's check (rivervalley.problems): a TypeError naming every missing method
    with pytest.raises(TypeError, match="no method 'loss', 'sample_loss', 'decompose'"):
        rv.simulate(object(), jnp.zeros(2), C, num_steps=5)
    with pytest.raises(ValueError, match="plan=.*must be a rivervalley.plans.Plan"):
        rv.run_plan("wsd", TOY, jnp.zeros(2))


# -- 7. once per call, never per step --------------------------------------------------------------
def test_checks_do_not_recompile_a_sweep():
    peaks = [0.02, 0.04]
    kw = dict(num_steps=64, seeds=2, noise=HILL, key=KEY, batched=("schedule",), record_every=64)
    rv.sweep(TOY, jnp.zeros(2), rv.stack([S.constant(p) for p in peaks]), **kw)
    before = dynamics.TRACE_COUNT["batched"]
    rv.sweep(TOY, jnp.zeros(2), rv.stack([S.constant(2 * p) for p in peaks]), **kw)
    assert dynamics.TRACE_COUNT["batched"] == before


# -- 8. the problem protocol (rivervalley.problems.check_problem) at every entry point --------------
class _NoDecompose:
    """A problem written from scratch that forgot ``decompose``."""

    stochastic = False

    def loss(self, x):
        return jnp.sum(x ** 2)

    def sample_loss(self, x, key):
        return self.loss(x)


class _NoHill(_NoDecompose):
    def decompose(self, x):
        return {"loss": self.loss(x), "river_loss": self.loss(x)}


class _VectorExtra(_NoDecompose):
    def decompose(self, x):
        return {"loss": self.loss(x), "river_loss": self.loss(x), "hill_loss": 0.0 * x[0],
                "per_coordinate": x ** 2}


_ENTRIES = {
    "simulate": lambda p: rv.simulate(p, jnp.zeros(2), C, num_steps=5),
    "simulate from a state": lambda p: rv.simulate(p, rv.SimState(
        jnp.zeros(2), (), jnp.asarray(3, jnp.int32), jnp.asarray(-1, jnp.int32)), C, num_steps=5),
    "sweep": lambda p: rv.sweep(p, jnp.zeros(2), C, num_steps=5, seeds=2),
    "run_plan": lambda p: rv.run_plan(rv.plans.wsd(0.05, [20, 40]), p, jnp.zeros(2)),
    "run_scan": lambda p: rv.dynamics.run_scan(p, jnp.zeros(2), C, key=KEY, num_steps=5),
    "run_scan under jit": lambda p: jax.jit(lambda x: rv.dynamics.run_scan(
        p, x, C, key=KEY, num_steps=5).loss)(jnp.zeros(2)),
}


@pytest.mark.parametrize("entry", list(_ENTRIES))
@pytest.mark.parametrize("problem, match", [
    (_NoDecompose(), "_NoDecompose has no method 'decompose'"),
    (_NoHill(), r"_NoHill: decompose\(params\) returned no 'hill_loss'"),
    (_VectorExtra(), r"decompose\(params\)\['per_coordinate'\] must return a floating-point "
                     r"scalar \(shape \(\)\), got shape \(2,\)"),
])
def test_the_problem_protocol_is_checked_before_tracing(entry, problem, match):
    # before: an AttributeError / KeyError: 'hill_loss' from deep inside the traced scan (and a
    # (2,)-shaped extra was recorded as (records, 2), against the protocol's scalar extras); now
    # a TypeError naming the method or key, before the engine's program is traced
    before = dynamics.TRACE_COUNT["batched"]
    with pytest.raises(TypeError, match=match):
        _ENTRIES[entry](problem)
    assert dynamics.TRACE_COUNT["batched"] == before


def test_a_stacked_problem_is_checked_one_run_at_a_time():
    # check_problem sees one run's problem (the batch axis dropped): a stack of valid valleys
    # passes, and its runs are the single valleys' runs
    valleys = [rv.landscapes.river_valley(2, sharpness=s) for s in (5.0, 20.0)]
    res = rv.sweep(rv.stack(valleys), jnp.zeros(2), C, num_steps=5, batched=("problem",),
                   record_every=5)
    one = rv.simulate(valleys[1], jnp.zeros(2), C, num_steps=5, record_every=5)
    # vmapped vs single run: 5 steps of ~10 float32 ops each may round differently
    np.testing.assert_allclose(np.asarray(res.trajectory.loss)[0, 1], one.loss,
                               rtol=5 * 10 * 1.2e-7)


# -- 9. a stack of bigram / transformer models must be named in batched ----------------------------
def test_a_stack_of_bigram_or_transformer_models_needs_batched_problem(table):
    # before: the stacked marginal broadcast through loss() and summed the models' losses into
    # one scalar, so the sweep silently optimized the sum; now batch_shape says it is a stack
    other = bg.TableModel(bg.make_data(vocab_size=8, key=jax.random.key(5)), batch_size=4)
    fact = [bg.FactorizedModel(m.data, width=4, batch_size=4) for m in (table, other)]
    from rivervalley import transformer as tf
    trans = [tf.transformer(m.data, seq_len=6, width=4, batch_size=2, num_eval=4,
                            key=jax.random.key(2)) for m in (table, other)]
    cases = [([table, other], table.init_params()),
             (fact, fact[0].init_params(key=jax.random.key(1))),
             (trans, trans[0].init_params(key=jax.random.key(1)))]
    for models, x0 in cases:
        assert models[0].batch_shape == ()
        stacked = rv.stack(models)
        assert stacked.batch_shape == (2,)
        with pytest.raises(ValueError, match=r"stack of 2 problems.*batched=\('problem',\)"):
            rv.sweep(stacked, x0, C, num_steps=3, key=KEY)
    res = rv.sweep(rv.stack([table, other]), table.init_params(), C, num_steps=3, key=KEY,
                   batched=("problem",), record_every=3)
    assert np.shape(res.trajectory.loss) == (1, 2, 2)
