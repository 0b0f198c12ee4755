"""Exact recursions and predictions of THEORY.md §4, aligned with :class:`~rivervalley.Trajectory`.

For SGD x_{t+1} = x_t - eta_t (grad L(x_t) + xi_t) on a river valley:

- **hill** coordinate i, quadratic with sharpness lambda_i and noise variance sigma_i^2 (*exact*):
  mean m_{t+1} = (1 - eta_t lambda_i) m_t and second moment
  V_{t+1} = (1 - eta_t lambda_i)^2 V_t + eta_t^2 sigma_i^2; expected hill loss 1/2 sum_i lambda_i V_i.
- **river** coordinate: u_{t+1} = u_t - eta_t f'(u_t) (Euler steps of gradient flow in river time
  tau_t = sum_{s<t} eta_s), with river-noise variance P_{t+1} = (1 - eta_t f''(u_t))^2 P_t +
  eta_t^2 sigma_u^2 adding 1/2 f''(u_t) P_t to the river loss.
- **predicted loss** E L_t = f(u_t) + 1/2 f''(u_t) P_t + 1/2 sum_i lambda_i(u_t) V_{i,t}: exact for a
  straight valley with a linear river and constant sharpness, and for loss-scaled noise there too
  (the noise variance is sigma^2 E L_t, which the recursion carries).

Example:
    >>> import rivervalley as rv
    >>> valley, noise = rv.landscapes.standard_toy(), rv.noise.hill_only(1.0)
    >>> p = rv.theory.expected_trajectory(valley, rv.schedules.constant(0.06), num_steps=4000, noise=noise)
    >>> print(round(float(p.hill_loss[-1]), 4), round(steady_state_hill_loss(0.06, 20.0, 1.0), 4))
    0.0375 0.0375
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rivervalley._validate import check_int, check_real, fmt
from rivervalley.protocols import Array, NoiseModel, RiverFrame

#: The min ratio of the WSD decays :func:`best_wsd` searches by default, and of the WSD that
#: :func:`optimize_schedule` starts from with ``init="best_wsd"``: 1% of the peak (the inverse
#: and exponential shapes need a min ratio > 0).
BEST_WSD_MIN_RATIO = 0.01


def _landscape_dim(landscape: Any) -> int:
    """d of a river valley (1 river + d-1 hill directions): its ``param_shape`` when it states
    one, else ``len(sharpness) + 1``."""
    if not isinstance(landscape, RiverFrame):
        raise TypeError(f"landscape={fmt(landscape)} must be a river valley "
                        "(rivervalley.landscapes.river_valley, or any "
                        f"rivervalley.protocols.RiverFrame), not {type(landscape).__name__}")
    shape = getattr(landscape, "param_shape", None)
    if isinstance(shape, tuple) and len(shape) == 1:
        return int(shape[0])
    return int(np.shape(landscape.sharpness)[-1]) + 1


def _check_x0(landscape: Any, x0: Array) -> None:
    """``x0`` is one point of the valley: shape (d,), finite (values of tracers unchecked)."""
    d = _landscape_dim(landscape)
    if np.shape(x0) != (d,):
        raise ValueError(f"x0={fmt(x0)} has shape {np.shape(x0)}; this {d}-D valley takes "
                         f"points of shape ({d},)")
    check_real("x0", x0)


def _check_noise(noise: Any, landscape: Any) -> None:
    """``noise`` is None or a noise model whose variances fit the valley (host side, once)."""
    if noise is None:
        return
    if not isinstance(noise, NoiseModel):
        raise TypeError(f"noise={fmt(noise)} must be None or a rivervalley.noise model "
                        "(a rivervalley.protocols.NoiseModel: sample, hill_variance, "
                        f"river_variance, scales_with_loss), not {type(noise).__name__}")
    noise.hill_variance(landscape)  # raises a ValueError naming sigma on a wrong shape
    noise.river_variance(landscape)


def learning_rates(schedule: Callable | Array, num_steps: int, *, start_step: int = 0,
                   dtype=None) -> Array:
    """eta_t for t = start_step .. start_step + num_steps - 1, as a JAX array.

    ``schedule`` is ``step -> lr`` or a 1-D array of learning rates eta_0, eta_1, ... (entries
    ``start_step .. start_step + num_steps - 1`` are taken; an array too short is an error, never
    padded). Concrete learning rates must be finite and >= 0.
    """
    num_steps = check_int("num_steps", num_steps, lo=1)
    start_step = check_int("start_step", start_step, lo=0)
    if isinstance(schedule, (np.ndarray, jax.Array, list, tuple)):
        if np.ndim(schedule) != 1:
            raise ValueError(f"schedule={fmt(schedule)} has shape {np.shape(schedule)}; an array "
                             "schedule is 1-D, one learning rate per step")
        n = np.shape(schedule)[0]
        if start_step + num_steps > n:
            raise ValueError(f"schedule holds {n} learning rates; steps {start_step} .. "
                             f"{start_step + num_steps - 1} need at least "
                             f"{start_step + num_steps}")
        lrs = jnp.asarray(schedule)[start_step:start_step + num_steps]
    elif callable(schedule):
        lrs = jax.vmap(schedule)(jnp.arange(start_step, start_step + num_steps))
    else:
        raise TypeError(f"schedule={fmt(schedule)} must be a step -> lr function or a 1-D array "
                        "of learning rates")
    check_real("schedule", lrs, lo=0.0, what="learning rates")
    return jnp.asarray(lrs, dtype or jnp.result_type(float))


def river_time(lrs: Array) -> Array:
    """tau_t = sum_{s<t} eta_s for t = 0..T (tau_0 = 0), shape (T+1,)."""
    lrs = jnp.asarray(lrs)
    return jnp.concatenate([jnp.zeros((1,), lrs.dtype), jnp.cumsum(lrs)])


def hill_moments(lrs: Array, sharpness: Array, noise_var: Array, *, mean0: Array = 0.0,
                 second0: Array | None = None) -> tuple[Array, Array]:
    """The exact mean and second moment of each hill coordinate, shape (T+1, d-1).

    m_{t+1} = (1 - eta_t lambda) m_t,  V_{t+1} = (1 - eta_t lambda)^2 V_t + eta_t^2 sigma^2.

    Args:
        lrs: eta_t, shape (T,).
        sharpness: lambda_i, shape (h,) (or scalar).
        noise_var: sigma_i^2, shape (h,) (or scalar).
        mean0: m_0 (the initial offset).
        second0: V_0 (default m_0^2: a deterministic start).

    Example:
        >>> m, V = hill_moments(jnp.full(3, 0.05), 10.0, 0.0, mean0=1.0)
        >>> print(np.round(np.asarray(m[:, 0]), 3).tolist())
        [1.0, 0.5, 0.25, 0.125]
    """
    if np.ndim(lrs) != 1:
        raise ValueError(f"lrs={fmt(lrs)} has shape {np.shape(lrs)}; expected (T,)")
    check_real("lrs", lrs, lo=0.0, what="learning rates")
    check_real("sharpness", sharpness)
    lam_shape = np.shape(sharpness) or (1,)
    if len(lam_shape) != 1:
        raise ValueError(f"sharpness={fmt(sharpness)} has shape {np.shape(sharpness)}; expected "
                         "a scalar or (h,)")
    for name, value, lo in (("noise_var", noise_var, 0.0), ("mean0", mean0, None),
                            ("second0", second0, 0.0)):
        if value is None:
            continue
        if np.shape(value) not in ((), lam_shape):
            raise ValueError(f"{name}={fmt(value)} has shape {np.shape(value)}; expected a "
                             f"scalar or one value per hill direction, shape {lam_shape}")
        check_real(name, value, lo=lo)
    lrs = jnp.asarray(lrs)
    lam = jnp.atleast_1d(jnp.asarray(sharpness, lrs.dtype))
    s2 = jnp.broadcast_to(jnp.asarray(noise_var, lrs.dtype), lam.shape)
    m0 = jnp.broadcast_to(jnp.asarray(mean0, lrs.dtype), lam.shape)
    v0 = m0**2 if second0 is None else jnp.broadcast_to(jnp.asarray(second0, lrs.dtype), lam.shape)

    def step(carry, eta):
        m, v = carry
        a = 1.0 - eta * lam
        nxt = (a * m, a * a * v + eta * eta * s2)
        return nxt, nxt

    _, (ms, vs) = jax.lax.scan(step, (m0, v0), lrs)
    return jnp.concatenate([m0[None], ms]), jnp.concatenate([v0[None], vs])


def _check_stable_product(learning_rate, sharpness, what: str) -> np.ndarray:
    """eta > 0, lambda > 0 finite and 0 < eta lambda < 2 (else the hill second moment never
    settles: |1 - eta lambda| >= 1); returns eta lambda."""
    check_real("learning_rate", learning_rate, lo=0.0, lo_open=True, what="a learning rate")
    check_real("sharpness", sharpness, lo=0.0, lo_open=True, what="a hill curvature lambda")
    el = np.asarray(learning_rate, np.float64) * np.asarray(sharpness, np.float64)
    if np.any(el >= 2.0):
        raise ValueError(f"learning_rate*sharpness={fmt(el)} is outside (0, 2): {what} (GD on "
                         "the hill diverges for eta*lambda >= 2)")
    return el


def steady_state_hill_loss(learning_rate: float, sharpness: float, noise_var: float) -> float:
    """Constant-LR plateau of the hill loss: eta sigma^2 / (2 (2 - eta lambda)) ~ eta sigma^2 / 4.

    Needs ``learning_rate > 0``, ``sharpness > 0`` with ``learning_rate * sharpness < 2`` (beyond
    that the second moment grows without bound: no steady state, a ``ValueError``) and
    ``noise_var >= 0``, all finite. Arrays broadcast elementwise.

    Example:
        >>> print(round(steady_state_hill_loss(0.06, 20.0, 1.0), 4))
        0.0375
    """
    el = _check_stable_product(learning_rate, sharpness, "no steady state")
    check_real("noise_var", noise_var, lo=0.0, what="a noise variance sigma^2")
    out = np.asarray(learning_rate, np.float64) * np.asarray(noise_var, np.float64) / (
        2.0 * (2.0 - el))
    return float(out) if out.ndim == 0 else out


def relaxation_steps(learning_rate: float, sharpness: float) -> float:
    """~1 / (2 eta lambda): steps for the hill second moment to relax by a factor e.

    Needs ``learning_rate > 0``, ``sharpness > 0`` and ``learning_rate * sharpness < 2``
    (otherwise nothing relaxes: a ``ValueError``).

    >>> relaxation_steps(0.05, 10.0)
    1.0
    """
    el = _check_stable_product(learning_rate, sharpness, "nothing relaxes")
    out = 1.0 / (2.0 * el)
    return float(out) if np.ndim(out) == 0 else out


class ExpectedTrajectory(NamedTuple):
    """Predicted expected losses, aligned with a Trajectory (same record steps)."""

    steps: np.ndarray
    lr: Array
    loss: Array
    river_loss: Array
    hill_loss: Array
    river_coordinate: Array
    river_time: Array
    hill_second_moment: Array


def _noise_parts(noise: Any, landscape: Any, dtype) -> tuple[Array, Array, bool]:
    h = jnp.shape(landscape.sharpness)
    if noise is None:
        return jnp.zeros(h, dtype), jnp.zeros((), dtype), False
    scaled = bool(noise.scales_with_loss)
    hv = jnp.asarray(noise.hill_variance(landscape), dtype)
    rv_ = jnp.asarray(noise.river_variance(landscape), dtype)
    return hv, rv_, scaled


def moment_recursion(landscape: Any, lrs: Array, noise: Any, x0: Array
                   ) -> tuple[Array, Array, Array, Array]:
    """The exact moment recursion behind :func:`expected_trajectory`, traceable: for use inside
    your own ``jit`` / ``vmap`` / ``grad``.

    Args:
        landscape: a :class:`~rivervalley.landscapes.RiverValley`.
        lrs: the T learning rates eta_0 ... eta_{T-1} (an array).
        noise: a ``rivervalley.noise`` model or None.
        x0: the starting point.

    Returns:
        (river coordinate, expected river loss, expected hill loss, hill second moments) at every
        step 0 ... T (T + 1 entries; the moments have a trailing axis of d - 1).
    """
    dtype = lrs.dtype
    z0 = landscape.to_local(jnp.asarray(x0, dtype))
    u0 = z0[0]
    delta0 = z0[1:] - landscape.course_at(u0)
    if np.shape(x0) != (_landscape_dim(landscape),):  # shapes are static: checked when traced
        _check_x0(landscape, x0)
    hill_var, river_var, scaled = _noise_parts(noise, landscape, dtype)
    f = landscape.river_profile
    fp = jax.grad(f)
    fpp = jax.grad(fp)

    def expected(u, p, m, v):
        lam = landscape.hill_sharpness(u)
        river = f(u) + 0.5 * fpp(u) * p
        hill = 0.5 * jnp.sum(lam * v)
        return river, hill

    def step(carry, eta):
        u, p, m, v = carry
        river, hill = expected(u, p, m, v)
        loss = river + hill
        scale = loss if scaled else 1.0
        lam = landscape.hill_sharpness(u)
        a = 1.0 - eta * lam
        b = 1.0 - eta * fpp(u)
        nxt = (u - eta * fp(u), b * b * p + eta * eta * river_var * scale, a * m,
               a * a * v + eta * eta * hill_var * scale)
        return nxt, (u, river, hill, v)

    init = (u0, jnp.zeros((), dtype), delta0, delta0**2)
    last, (us, rivers, hills, vs) = jax.lax.scan(step, init, lrs)
    r_last, h_last = expected(*last)
    cat = lambda a, b: jnp.concatenate([a, jnp.asarray(b)[None]])
    return (cat(us, last[0]), cat(rivers, r_last), cat(hills, h_last),
            jnp.concatenate([vs, last[3][None]]))


def expected_trajectory(landscape: Any, schedule: Callable | Array, *, num_steps: int,
                        noise: Any = None,
                        x0: Array | None = None, record_every: int = 1,
                        dtype=None) -> ExpectedTrajectory:
    """The predicted expected loss of SGD under ``schedule`` (THEORY.md §4), split into parts.

    Records at steps 0, k, 2k, ..., num_steps, like :func:`rivervalley.simulate`.

    Args:
        landscape: a :class:`~rivervalley.landscapes.RiverValley`.
        schedule: ``step -> lr`` or an array of exactly T learning rates (another length is an
            error; the record at step T shows the last one).
        num_steps: T.
        noise: a ``rivervalley.noise`` model (None: GD).
        x0: starting point, shape (d,) (default: ``landscape.init_params()``).
        record_every: k.
        dtype: float dtype (float64 inside ``jax.enable_x64(True)`` for exact comparisons).

    Returns:
        A :class:`ExpectedTrajectory`.
    """
    num_steps = check_int("num_steps", num_steps, lo=1)
    record_every = check_int("record_every", record_every, lo=1)
    _landscape_dim(landscape)
    if isinstance(schedule, (np.ndarray, jax.Array, list, tuple)) and \
            np.shape(schedule) != (num_steps,):
        raise ValueError(f"schedule has shape {np.shape(schedule)}; num_steps={num_steps} needs "
                         f"an array of exactly {num_steps} learning rates, shape ({num_steps},)")
    lrs = learning_rates(schedule, num_steps, dtype=dtype)
    x0 = landscape.init_params() if x0 is None else x0
    _check_x0(landscape, x0)
    _check_noise(noise, landscape)
    us, rivers, hills, vs = jax.jit(moment_recursion)(landscape, lrs, noise, x0)
    idx = np.unique(np.concatenate([np.arange(0, num_steps + 1, record_every), [num_steps]]))
    lr_full = jnp.concatenate([lrs, learning_rates(schedule, 1, start_step=num_steps,
                                                   dtype=lrs.dtype)
                               if callable(schedule) else lrs[-1:]])
    return ExpectedTrajectory(steps=idx, lr=lr_full[idx], loss=(rivers + hills)[idx],
                      river_loss=rivers[idx], hill_loss=hills[idx], river_coordinate=us[idx],
                      river_time=river_time(lrs)[idx], hill_second_moment=vs[idx])


def greedy_schedule(sharpness: float, noise_var: float, num_steps: int, *,
                    second0: float, max_lr: float | None = None) -> np.ndarray:
    """The LR that minimizes the next hill second moment at every step (THEORY.md C5).

    eta_t = lambda V_t / (lambda^2 V_t + sigma^2) (capped at ``max_lr``), with V_t carried by the
    exact recursion. For large t it approaches the harmonic decay eta_t ~ 1 / (lambda (t + t0)).

    Example:
        >>> lrs = greedy_schedule(10.0, 1.0, 1000, second0=1.0)
        >>> print(round(float(lrs[-1] * 10.0 * 1000), 2))
        1.0
    """
    for name, value in (("sharpness", sharpness), ("noise_var", noise_var)):
        if np.ndim(value) != 0:
            raise ValueError(f"{name}={fmt(value)} must be a scalar, not shape {np.shape(value)}")
        check_real(name, value, lo=0.0, lo_open=True)
    num_steps = check_int("num_steps", num_steps, lo=1)
    check_real("second0", second0, lo=0.0, what="a second moment V_0")
    if np.ndim(second0) != 0:
        raise ValueError(f"second0={fmt(second0)} must be a scalar, not shape {np.shape(second0)}")
    if max_lr is not None:
        check_real("max_lr", max_lr, lo=0.0, lo_open=True, what="a learning rate")
    lam, s2 = float(sharpness), float(noise_var)
    cap = np.inf if max_lr is None else float(max_lr)

    def step(v, _):
        eta = jnp.minimum(lam * v / (lam * lam * v + s2), cap)
        a = 1.0 - eta * lam
        return a * a * v + eta * eta * s2, eta

    _, lrs = jax.lax.scan(step, jnp.asarray(second0, jnp.result_type(float)), None,
                          length=num_steps)
    return np.asarray(lrs)


class OptimizedSchedule(NamedTuple):
    """The result of :func:`optimize_schedule`."""

    lrs: np.ndarray
    predicted_loss: float
    history: np.ndarray

    def schedule(self) -> Callable:
        """A ``step -> lr`` function (a tabulated schedule)."""
        from rivervalley.schedules import tabulated

        return tabulated(self.lrs)


def best_wsd(landscape: Any, noise: Any, num_steps: int, *, peak_value: float,
             x0: Array | None = None,
             fractions: tuple[float, ...] = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5),
             min_ratio: float = BEST_WSD_MIN_RATIO) -> tuple[str, float, float]:
    """The WSD decay shape and fraction with the lowest predicted final loss.

    Every (shape, fraction) pair is one schedule of a stacked batch, evaluated by one vmapped
    prediction. Returns (shape, fraction, predicted final loss).
    """
    from rivervalley import schedules

    num_steps = check_int("num_steps", num_steps, lo=1)
    check_real("peak_value", peak_value, lo=0.0, lo_open=True, what="a learning rate")
    check_real("fractions", fractions, lo=0.0, hi=1.0, lo_open=True, what="decay fractions")
    if np.ndim(fractions) != 1 or np.size(fractions) == 0:
        raise ValueError(f"fractions={fmt(fractions)} must be a non-empty 1-D sequence")
    check_real("min_ratio", min_ratio, lo=0.0, hi=1.0)
    x0 = landscape.init_params() if x0 is None else x0
    _check_x0(landscape, x0)
    _check_noise(noise, landscape)
    # a fraction too small for this run (a decay of 0 steps) is no candidate
    usable = [f for f in np.ravel(fractions).tolist()
              if schedules.decay_steps_of(num_steps, float(f)) >= 1]
    if not usable:
        raise ValueError(f"fractions={fmt(fractions)} all give a decay of 0 steps at "
                         f"num_steps={num_steps}; the smallest usable fraction is {1 / num_steps:g}")
    pairs = [(sh, f) for sh in schedules.DECAY_SHAPES for f in usable]
    batch = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *[
        schedules.wsd(peak_value, num_steps, decay=f, decay_shape=sh, min_ratio=min_ratio)
        for sh, f in pairs])

    @jax.jit
    def finals(batch):
        def one(s):
            lrs = jax.vmap(s)(jnp.arange(num_steps))
            _, rivers, hills, _ = moment_recursion(landscape, lrs, noise, x0)
            return rivers[-1] + hills[-1]
        return jax.vmap(one)(batch)

    losses = np.asarray(finals(batch))
    i = int(np.nanargmin(losses))
    return pairs[i][0], pairs[i][1], float(losses[i])


def _initial_schedule(landscape, noise, x0, num_steps, peak_value, init, init_ratio):
    from rivervalley import schedules

    if isinstance(init, str):
        if init == "constant":
            return np.full(num_steps, init_ratio * peak_value)
        if init == "best_wsd":
            shape, frac, _ = best_wsd(landscape, noise, num_steps, peak_value=peak_value, x0=x0)
            sched = schedules.wsd(peak_value, num_steps, decay=frac, decay_shape=shape,
                                  min_ratio=BEST_WSD_MIN_RATIO)
            return schedules.as_array(sched, num_steps).astype(np.float64)
        raise ValueError(f"init={init!r} must be 'constant', 'best_wsd' or an array of "
                         f"{num_steps} learning rates")
    if np.shape(init) != (num_steps,):
        raise ValueError(f"init={fmt(init)} has shape {np.shape(init)}; it must be 'constant', "
                         f"'best_wsd' or an array of {num_steps} learning rates")
    check_real("init", init, lo=0.0, hi=float(peak_value),
               what=f"learning rates in [0, peak_value={peak_value}]")
    return np.asarray(init, dtype=np.float64)


def optimize_schedule(landscape: Any, noise: Any, num_steps: int, *, peak_value: float,
                      x0: Array | None = None, iterations: int = 300,
                      init: str | Array = "constant",
                      init_ratio: float = 0.5) -> OptimizedSchedule:
    """Minimize the predicted final loss over every eta_t in [0, peak_value].

    The objective is E L_T of :func:`expected_trajectory` (float64); JAX differentiates it through the exact
    recursion with respect to all T learning rates, and L-BFGS-B (scipy) handles the box
    constraints 0 <= eta_t <= peak_value. On the standard toy it finds a WSD shape: flat at the
    bound, then a short decay whose tail follows the harmonic law eta_t ~ c / (lambda (T - t)).

    Args:
        landscape, noise, x0: as in :func:`expected_trajectory`.
        num_steps: T.
        peak_value: the upper bound of every eta_t (keep it below the stability limit).
        iterations: L-BFGS-B iterations (the result keeps improving slowly past 300).
        init: where the search starts: ``"constant"`` (init_ratio * peak_value everywhere: the WSD
            shape then has to emerge on its own), ``"best_wsd"`` (the best WSD of every decay
            shape x decay fraction in 0.002..0.5, by the exact prediction: the result is never
            worse than any of them), or an array of T finite learning rates in [0, peak_value].
        init_ratio: the level of the ``"constant"`` start.

    Returns:
        An :class:`OptimizedSchedule` (learning rates, predicted final loss, loss history).
    """
    import scipy.optimize

    num_steps = check_int("num_steps", num_steps, lo=1)
    check_real("init_ratio", init_ratio, lo=0.0, hi=1.0, lo_open=True)
    if np.ndim(peak_value) != 0:
        raise ValueError(f"peak_value={fmt(peak_value)} must be a scalar learning rate")
    check_real("peak_value", peak_value, lo=0.0, lo_open=True, what="a learning rate")
    iterations = check_int("iterations", iterations, lo=1)
    if isinstance(init, str):
        if init not in ("constant", "best_wsd"):
            raise ValueError(f"init={init!r} must be 'constant', 'best_wsd' or an array of "
                             f"{num_steps} learning rates")
    else:  # the array start, checked before anything is compiled
        _initial_schedule(None, None, None, num_steps, peak_value, init, init_ratio)
    x0 = landscape.init_params() if x0 is None else x0
    _check_x0(landscape, x0)
    _check_noise(noise, landscape)
    history: list[float] = []
    with jax.enable_x64(True):
        x0 = jnp.asarray(x0, jnp.float64)

        def final_loss(lrs):
            _, rivers, hills, _ = moment_recursion(landscape, lrs, noise, x0)
            return rivers[-1] + hills[-1]

        value_and_grad = jax.jit(jax.value_and_grad(final_loss))

        def fun(e):
            val, grad = value_and_grad(jnp.asarray(e, jnp.float64))
            history.append(float(val))
            return float(val), np.asarray(grad, np.float64)

        start = _initial_schedule(landscape, noise, x0, num_steps, peak_value, init, init_ratio)
        start_loss = float(final_loss(jnp.asarray(start)))
        res = scipy.optimize.minimize(
            fun, start, jac=True, method="L-BFGS-B",
            bounds=[(0.0, float(peak_value))] * num_steps,
            options=dict(maxiter=int(iterations), ftol=1e-15, gtol=1e-12))
        lrs = np.clip(res.x, 0.0, peak_value)
        best = float(final_loss(jnp.asarray(lrs)))
        if best > start_loss:  # L-BFGS-B never should; keep the start if it did
            lrs, best = start, start_loss
    return OptimizedSchedule(lrs=lrs, predicted_loss=best, history=np.asarray(history))


__all__ = ["learning_rates", "river_time", "hill_moments", "steady_state_hill_loss",
           "relaxation_steps", "ExpectedTrajectory", "expected_trajectory", "moment_recursion",
           "greedy_schedule", "OptimizedSchedule", "optimize_schedule", "best_wsd",
           "BEST_WSD_MIN_RATIO"]
