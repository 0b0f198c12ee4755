"""The engine's argument checks: on the host, once per call, before anything is compiled.

Every entry point (:func:`~rivervalley.dynamics.simulate`, :func:`~rivervalley.dynamics.sweep`,
:func:`~rivervalley.dynamics.run_plan`) checks its arguments here first; a bad one is a
``ValueError`` (``TypeError`` for the optimizer and a problem without the protocol's methods) that
names it, its value and what is valid -- never a silent broadcast, a silent default or a
misleading divergence. Nothing here is traced by the compiled program.

- Scalars and flags (:func:`check_common`, :func:`check_batched`, :func:`seed_array`,
  :func:`resolve_key`) are checked with :mod:`rivervalley._validate`.
- How the pieces fit together (:func:`check_run`): one run is traced abstractly (``eval_shape``:
  no compilation, no FLOPs) to check that ``schedule(step)`` is a scalar, that ``x0`` has the
  shapes of the problem's parameters (``problem.param_shape``, or the tree
  ``problem.init_params`` builds), that the loss is a scalar, that the noise has the shapes of the
  parameters and that the optimizer factory returns an optax optimizer. A stacked argument that
  ``batched`` does not name shows up as a shape mismatch, and the message names the argument. The
  trace depends only on shapes, dtypes and static structure, so it is cached like a ``jit``
  (~0.1 ms on a repeated call).
- ``key`` is required exactly when the run draws random numbers (:func:`resolve_key`): a noise
  model, or a problem whose ``sample_loss`` uses its key (``problem.stochastic``, else
  ``problem.batch_size is not None``, else assumed).
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rivervalley import _validate as V
from rivervalley import problems as _problems
from rivervalley._partition import abstract_partition, combine, is_numeric
from rivervalley._scan import build_optimizer
from rivervalley.protocols import Key, PyTree
from rivervalley.results import SimState

__all__ = ["BATCHABLE", "check_common", "check_problem", "check_schedule", "check_noise",
           "check_optimizer", "check_threshold", "check_batched", "batch_axis_size", "seed_array",
           "resolve_key", "check_x0_values", "check_state", "check_run"]

#: The arguments ``batched`` may name.
BATCHABLE = ("problem", "schedule", "noise", "x0")


def check_common(problem: Any, schedule: Any, noise: Any, optimizer: Any, num_steps: Any,
                 record_every: Any, threshold: Any, record_params: Any) -> tuple[int, int, float]:
    """The checks every entry point shares; returns ``(num_steps, record_every, threshold)``
    checked."""
    num_steps = V.check_int("num_steps", num_steps, lo=1)
    record_every = V.check_int("record_every", record_every, lo=1)
    V.check_bool("record_params", record_params)
    check_problem(problem)
    check_schedule(schedule)
    check_noise(noise)
    check_optimizer(optimizer)
    return num_steps, record_every, check_threshold(threshold)


def check_optimizer(optimizer: Any) -> None:
    """``optimizer`` is None or a factory ``schedule -> optax.GradientTransformation`` (what it
    builds is checked by :func:`check_run`)."""
    if isinstance(optimizer, optax.GradientTransformation):
        raise TypeError("optimizer must be a factory schedule -> GradientTransformation "
                        "(e.g. optax.adam or functools.partial(optax.sgd, momentum=0.9)), "
                        "not an optimizer instance: the engine builds it from each schedule")
    if optimizer is not None and not callable(optimizer):
        raise TypeError(f"optimizer={V.fmt(optimizer)} must be None or a callable "
                        "schedule -> optax.GradientTransformation")


def check_problem(problem: Any) -> None:
    """The host-side part of the problem protocol: the methods exist
    (:func:`rivervalley.problems.check_problem` raises the ``TypeError`` naming the missing ones;
    their outputs are checked per run by :func:`_probe`) and a minibatch size is >= 1."""
    if not all(callable(getattr(problem, m, None)) for m in _problems.REQUIRED_METHODS):
        _problems.check_problem(problem, None)  # raises before it looks at the parameters
    batch_size = getattr(problem, "batch_size", None)
    if batch_size is not None:
        # a minibatch of 0 samples has a NaN loss: that is a problem setting, not a divergence
        V.check_int("problem.batch_size", batch_size, lo=1)


def check_schedule(schedule: Any, name: str = "schedule") -> None:
    """``schedule`` is a callable (a number gets a hint: ``schedules.constant``)."""
    if callable(schedule):
        return
    hint = ""
    if isinstance(schedule, (numbers.Real, np.ndarray, jax.Array)) and not isinstance(schedule,
                                                                                      bool):
        hint = (f": for a constant learning rate pass {name}=rivervalley.schedules.constant("
                f"{V.fmt(schedule)})")
    raise ValueError(f"{name}={V.fmt(schedule)} is not a schedule (a callable step -> learning "
                     f"rate){hint}")


def check_noise(noise: Any) -> None:
    """``noise`` is None or has a ``sample(key, step, problem, params)`` method."""
    if noise is not None and not callable(getattr(noise, "sample", None)):
        raise ValueError(f"noise={V.fmt(noise)} is not a noise model: pass None or a "
                         "rivervalley.noise model (with .sample(key, step, problem, params))")


def check_threshold(threshold: Any) -> float:
    """``divergence_threshold`` is one number > 0 (inf allowed); returns it as a float."""
    if np.ndim(threshold) != 0:
        raise ValueError(f"divergence_threshold={V.fmt(threshold)} must be a number")
    V.check_real("divergence_threshold", threshold, lo=0.0, lo_open=True, finite=False,
                 what="|loss| above it counts as divergence; inf checks finiteness only")
    return float(threshold)


def _is_stochastic(problem: Any) -> bool:
    """Whether ``problem.sample_loss`` uses its key: ``problem.stochastic`` when the problem says
    (landscapes: False), else whether it draws minibatches (``batch_size`` not None), else True
    (a problem that does not say is assumed to use its key)."""
    flag = getattr(problem, "stochastic", None)
    if isinstance(flag, (bool, np.bool_)):
        return bool(flag)
    if hasattr(problem, "batch_size"):
        return problem.batch_size is not None
    return True


def resolve_key(key: Any, problem: Any, noise: Any) -> Key:
    """The run key: required (and checked) when the run draws random numbers."""
    if key is None:
        if noise is not None:
            raise ValueError("key is required with a noise model: pass key=jax.random.key(seed)")
        if _is_stochastic(problem):
            bs = getattr(problem, "batch_size", None)
            why = (f"{type(problem).__name__} draws minibatches (batch_size={bs})" if bs is not None
                   else f"{type(problem).__name__}.sample_loss takes a key (a deterministic "
                   "problem says so with a `stochastic = False` attribute)")
            raise ValueError(f"key is required: {why}; pass key=jax.random.key(seed)")
        return jax.random.key(0)  # unused: a deterministic problem without noise
    V.check_key("key", key)
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    if np.shape(key) != (() if typed else (2,)):
        raise ValueError(f"key must be one PRNG key, not an array of {np.shape(key)} keys: pass "
                         "key=jax.random.key(seed); seeds select the runs")
    return key


def seed_array(seeds: Any) -> np.ndarray:
    """``seeds``: a count (seeds 0 .. n-1) or a 1-D sequence of distinct integer seeds."""
    if isinstance(seeds, (bool, np.bool_)):
        raise ValueError(f"seeds={seeds!r} must be a count >= 1 or a 1-D sequence of integer "
                         "seeds, not a bool")
    if isinstance(seeds, (numbers.Integral, np.integer)):
        return np.arange(V.check_int("seeds", seeds, lo=1, hi=V.SEED_MAX + 1), dtype=np.uint32)
    arr = V.check_seeds("seeds", seeds)
    values, counts = np.unique(arr, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(f"seeds={V.fmt(seeds)} repeats {int(values[counts > 1][0])}: repeated "
                         "seeds give identical runs")
    return arr


def check_batched(batched: Any) -> tuple[str, ...]:
    """``batched`` is a tuple (or list) of names among :data:`BATCHABLE`; returns the tuple."""
    if isinstance(batched, str) or not isinstance(batched, (tuple, list)):
        raise ValueError(f"batched={batched!r} must be a tuple of argument names, e.g. "
                         f"batched=({batched!r},)" if isinstance(batched, str) else
                         f"batched={batched!r} must be a tuple of argument names")
    unknown = [b for b in batched if b not in BATCHABLE]
    if unknown:
        raise ValueError(f"batched={tuple(batched)!r} names unknown arguments {unknown}; "
                         f"valid: {', '.join(map(repr, BATCHABLE))}")
    return tuple(batched)


def _with(batched: tuple[str, ...], arg: str) -> tuple[str, ...]:
    """``batched`` with ``arg`` added: the value a hint tells the user to pass."""
    return (*batched, arg)


def _path(prefix: str, path: tuple) -> str:
    """The name of a leaf for a message: ``x0['w']``."""
    return prefix + jax.tree_util.keystr(path)


def batch_axis_size(obj: Any, name: str) -> int:
    """The common leading axis of every array leaf of a batched argument."""
    sizes = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(obj)[0]:
        if not is_numeric(leaf):
            continue
        if np.ndim(leaf) == 0:
            raise ValueError(f"{name} is listed in batched but {_path(name, path)} is a scalar: "
                             "a batched argument has a leading batch axis on every array leaf "
                             "(stack configurations with rivervalley.stack)")
        sizes[_path(name, path)] = int(np.shape(leaf)[0])
    if not sizes:
        raise ValueError(f"{name} is listed in batched but has no array leaves to batch over")
    if len(set(sizes.values())) != 1:
        raise ValueError(f"{name} is listed in batched but its array leaves do not share one "
                         f"leading batch axis (sizes {sorted(set(sizes.values()))}: {sizes}); "
                         "stack configurations with rivervalley.stack")
    return next(iter(sizes.values()))


def _shapes(tree: PyTree) -> str:
    """The shapes of a tree's leaves for a message: ``(2,)`` or ``{['w']: (3, 4), ...}``."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    if len(leaves) == 1 and not leaves[0][0]:
        return str(tuple(np.shape(leaves[0][1])))
    return "{" + ", ".join(f"{jax.tree_util.keystr(p)}: {tuple(np.shape(l))}"
                           for p, l in leaves) + "}"


def check_x0_values(x0: Any, name: str = "x0") -> None:
    """Every leaf of x0 is a floating-point array with finite entries."""
    if isinstance(x0, SimState) and name == "x0":
        raise ValueError("x0 is a SimState: sweep and run_plan start from parameters (resume a "
                         "single run with simulate, or pass the state's params)")
    leaves = jax.tree_util.tree_flatten_with_path(x0)[0]
    if not leaves:
        raise ValueError(f"{name}={V.fmt(x0)} has no array leaves: pass the initial parameters")
    for path, leaf in leaves:
        where = _path(name, path)
        if not is_numeric(leaf) or V.is_bool(leaf):
            raise ValueError(f"{where}={V.fmt(leaf)} is not a floating-point array of parameters")
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(f"{where}={V.fmt(leaf)} has dtype {dtype}: parameters must be "
                             "floating point (an integer x0 would make integer updates); pass "
                             f"jnp.asarray({name}, float)")
        if not V.is_traced(leaf):
            a = np.asarray(leaf)
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{where}={V.fmt(leaf)} holds {int(np.sum(~np.isfinite(a)))} "
                                 "non-finite entries (NaN or inf): the starting point must be "
                                 "finite")


def check_run(problem: Any, schedule: Any, noise: Any, x0: PyTree, key: Key, *,
              batched: tuple[str, ...] = (), optimizer: Any = None, opt_state: PyTree = None,
              x0_name: str = "x0") -> None:
    """Trace one run's pieces abstractly (no compilation, no FLOPs) and check that they fit
    together: ``schedule(step)`` is a scalar, ``x0`` has the shapes of the problem's parameters
    (``problem.param_shape``, or the tree ``problem.init_params`` builds), the loss at x0 is a
    scalar, the noise has the shapes of the parameters and the optimizer factory returns an optax
    optimizer. A stacked argument missing from ``batched`` (or listed there but not stacked)
    shows up here as a shape mismatch, and the message names the argument. Cached like a ``jit``
    (the trace depends only on shapes, dtypes and static structure)."""
    batch_shape = getattr(problem, "batch_shape", ())
    if batch_shape and "problem" not in batched:
        raise ValueError(f"problem is a stack of {int(np.prod(batch_shape))} problems (batch shape "
                         f"{tuple(batch_shape)}) but batched={tuple(batched)!r} does not name it: "
                         f"pass batched={_with(batched, 'problem')!r}")
    p_dyn, p_st = abstract_partition(problem, "problem" in batched)
    s_dyn, s_st = abstract_partition(schedule, "schedule" in batched)
    n_dyn, n_st = abstract_partition(noise, "noise" in batched)
    x_b = "x0" in batched
    x_spec = jax.tree.map(lambda l: jax.ShapeDtypeStruct(
        np.shape(l)[1:] if x_b else np.shape(l),
        jax.dtypes.canonicalize_dtype(jnp.result_type(l))), x0)

    def hint(arg: str, obj: Any) -> str:
        """The hint for an argument that may be a stack ``batched`` does not name."""
        if arg in batched or not any(is_numeric(l) and np.ndim(l) > 0
                                     for l in jax.tree.leaves(obj)):
            return ""
        return (f"; if {arg} is a stack of configurations (rivervalley.stack), name it: "
                f"batched={_with(batched, arg)!r}")

    hints = tuple(hint(a, o) for a, o in (("problem", problem), ("schedule", schedule),
                                          ("noise", noise)))
    opt_def = None if opt_state is None else jax.tree.structure(opt_state)
    _probe.eval_shape(p_dyn, s_dyn, n_dyn, x_spec, key, p_st=p_st, s_st=s_st, n_st=n_st,
                      batched=tuple(batched), optimizer=optimizer, opt_def=opt_def,
                      x0_name=x0_name, hints=hints)


@functools.partial(jax.jit, static_argnames=("p_st", "s_st", "n_st", "batched", "optimizer",
                                             "opt_def", "x0_name", "hints"))
def _probe(p_dyn, s_dyn, n_dyn, x, key, *, p_st, s_st, n_st, batched, optimizer, opt_def, x0_name,
           hints):
    """The abstract run of :func:`check_run` (only ever traced, through ``eval_shape``)."""
    prob, sched, nz = combine(p_dyn, p_st), combine(s_dyn, s_st), combine(n_dyn, n_st)
    p_hint, s_hint, n_hint = hints
    step = jnp.zeros((), jnp.int32)
    try:
        lr = sched(step)
    except Exception as e:  # noqa: BLE001 - reported with the argument's name
        raise ValueError(f"schedule ({type(sched).__name__}) fails on a step: "
                         f"{type(e).__name__}: {e}{s_hint}") from e
    if jnp.shape(lr) != ():
        raise ValueError(f"schedule(step) returns shape {jnp.shape(lr)}, not one learning rate"
                         + (f": a stack of {jnp.shape(lr)[0]} schedules needs batched="
                            f"{_with(batched, 'schedule')!r}" if "schedule" not in batched
                            else ""))
    expected = _expected_params(prob)
    if expected is not None:
        _compare_params(x, expected, x0_name, batched)
    try:
        loss = prob.loss(x)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"problem.loss({x0_name}) fails for {x0_name} of shapes {_shapes(x)}: "
                         f"{type(e).__name__}: {e}{p_hint}") from e
    if jnp.shape(loss) != ():
        x_hint = (f"; a batch of starting points needs batched={_with(batched, 'x0')!r}"
                  if "x0" not in batched else "")
        raise ValueError(f"problem.loss({x0_name}) has shape {jnp.shape(loss)}, not a scalar: "
                         f"{x0_name} (shapes {_shapes(x)}) does not fit the problem{x_hint}"
                         f"{p_hint}")
    # the rest of the protocol on one run's problem and parameters: sample_loss and every
    # decompose key are floating-point scalars, 'loss' / 'river_loss' / 'hill_loss' are there
    _problems.check_problem(prob, x, key=key)
    if nz is not None:
        try:
            xi = nz.sample(key, step, prob, x)
            ok = (jax.tree.structure(xi) == jax.tree.structure(x) and all(
                jnp.shape(a) == jnp.shape(b) for a, b in zip(jax.tree.leaves(xi),
                                                             jax.tree.leaves(x))))
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"noise={type(nz).__name__} cannot draw the gradient noise of this "
                             f"problem: {type(e).__name__}: {e}{n_hint}") from e
        if not ok:
            raise ValueError(f"noise.sample returns shapes {_shapes(xi)} for parameters of "
                             f"shapes {_shapes(x)}{n_hint}")
    opt = build_optimizer(optimizer, sched)
    if opt_def is not None:
        want = () if opt is None else opt.init(x)
        if jax.tree.structure(want) != opt_def:
            raise ValueError(f"x0 is a SimState whose opt_state does not fit "
                             f"optimizer={V.fmt(optimizer)}: resume with the optimizer that "
                             "produced the state")


def _expected_params(problem: Any) -> Any:
    """The parameter shapes of one run of ``problem`` (traced), or None when it does not say:
    ``problem.param_shape`` (one point's shape: a tuple, or a pytree of tuples like the params;
    landscapes, the bigram and transformer models state it), else the tree
    ``problem.init_params`` returns."""
    shape = getattr(problem, "param_shape", None)
    if shape is not None:
        is_shape = lambda t: isinstance(t, tuple) and all(
            isinstance(n, (numbers.Integral, np.integer)) for n in t)
        return jax.tree.map(lambda t: jax.ShapeDtypeStruct(tuple(int(n) for n in t),
                                                           jnp.result_type(float)),
                            shape, is_leaf=is_shape)
    init = getattr(problem, "init_params", None)
    if not callable(init):
        return None
    for kwargs in (dict(key=jax.random.key(0)), {}):
        try:
            return init(**kwargs)
        except Exception:  # noqa: BLE001, S112 - an init we cannot call tells us nothing
            continue
    return None


def _compare_params(x: PyTree, expected: PyTree, name: str, batched: tuple[str, ...]) -> None:
    """``x`` has the tree and the leaf shapes of ``expected`` (a batch of starting points that
    ``batched`` does not name gets the hint)."""
    if jax.tree.structure(x) != jax.tree.structure(expected):
        raise ValueError(f"{name} has leaves {_shapes(x)} but the problem's parameters are "
                         f"{_shapes(expected)} (its param_shape, or the tree its init_params "
                         "builds)")
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(x)[0], jax.tree.leaves(expected)):
        sa, sb = tuple(jnp.shape(a)), tuple(jnp.shape(b))
        if sa == sb:
            continue
        where = _path(name, path)
        if "x0" not in batched and len(sa) == len(sb) + 1 and sa[1:] == sb:
            raise ValueError(f"{where} has shape {sa} but the problem's parameters have shape "
                             f"{sb}: a batch of {sa[0]} starting points needs batched="
                             f"{_with(batched, 'x0')!r}")
        per_run = " per run (its leading axis is the batch)" if "x0" in batched else ""
        raise ValueError(f"{where} has shape {sa}{per_run} but the problem's parameters have "
                         f"shape {sb}")


def check_state(state: SimState) -> None:
    """A state to resume from: finite parameters and a run that has not diverged (a diverged
    state is frozen; resuming it would only repeat it)."""
    check_x0_values(state.params, "x0.params")
    d = np.asarray(state.diverged_at)
    if np.ndim(d) != 0 or np.ndim(state.step) != 0:
        raise ValueError("x0 is a SimState of several runs (a sweep's final_state): resume one run "
                         "at a time, e.g. jax.tree.map(lambda x: x[s, b], final_state)")
    if int(d) >= 0:
        raise ValueError(f"x0 is a SimState that diverged at step {int(d)}: it is frozen there; "
                         "resume from a state saved before the divergence")


