"""rivervalley: the science of learning-rate schedules.

Warmup-Stable-Decay (WSD) learning rates keep the loss high and noisy for most of a run, then drop
it sharply in a short final decay. rivervalley explains and tests why, on river-valley losses and a
bigram language model, in JAX: schedules -> plans -> dynamics -> trajectories -> decomposition ->
plots.

    >>> import rivervalley as rv
    >>> sorted(rv.schedules.DECAY_SHAPES)[:3]
    ['1-sqrt', 'cosine', 'exponential']
"""

from rivervalley import (
    bigram,
    diagnose,
    dynamics,
    export,
    hessian,
    landscapes,
    laws,
    noise,
    plans,
    plotting,
    problems,
    protocols,
    results,
    results_io,
    schedules,
    text,
    theory,
    transformer,
)
from rivervalley.dynamics import run_plan, simulate, stack, sweep
from rivervalley.results import DivergenceError, PlanResult, SimState, SweepResult, Trajectory

__version__ = "0.1.0"


def explore(num_steps: int = 4000, **settings):
    """The interactive river-valley explorer (see :mod:`rivervalley.explorer`)."""
    from rivervalley.explorer import explore as _explore

    return _explore(num_steps=num_steps, **settings)


__all__ = ["bigram", "diagnose", "dynamics", "export", "hessian", "landscapes", "laws", "noise",
           "plans", "protocols", "plotting", "problems", "results", "results_io", "schedules",
           "text", "theory", "transformer", "simulate", "sweep", "run_plan", "stack", "explore",
           "Trajectory", "SimState", "SweepResult", "PlanResult", "DivergenceError",
           "__version__"]
