"""Loss-curve laws: each O(T)/O(T m) law against a direct O(T^2) NumPy evaluation, and fit recovery."""

import jax
import numpy as np
import pytest

from rivervalley import laws as L

# ------------------------------------------------------------------ direct O(T^2) references


def _drops(e):
    return np.concatenate([[0.0], e[:-1] - e[1:]])


def _suffix_sums(e):
    """S[k, t] = sum_{tau=k..t} e_tau for k <= t (NaN above the diagonal)."""
    c = np.concatenate([[0.0], np.cumsum(e)])
    S = c[None, 1:] - c[:-1, None]
    k, t = np.indices(S.shape)
    return np.where(k <= t, S, np.nan)


def ref_multi_power(p, e):
    L0, A, al, B, C, be, ga, SW = p
    d = _drops(e)
    S = _suffix_sums(e)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(e > 0, np.where(e > 0, e, 1.0) ** (-ga), np.inf)
        x = a[:, None] * S
        x = np.where(np.isinf(a)[:, None], np.where(S > 0, np.inf, 0.0), x)
        G = np.where(np.isinf(x), 1.0, 1 - (C * np.where(np.isinf(x), 0, x) + 1) ** (-be))
    ld = np.nansum(np.where(np.isnan(S), 0.0, d[:, None] * G), axis=0)
    return L0 + A * (np.cumsum(e) + SW) ** (-al) - B * ld


def ref_annealing(p, e):
    L0, A, al, C, lam = p
    d = _drops(e)
    i, j = np.indices((len(e), len(e)))
    m = np.sum(np.where(j <= i, d[None, :] * lam ** np.maximum(i - j, 0), 0.0), axis=1)   # m_i
    return L0 + A * np.cumsum(e) ** (-al) - C * np.cumsum(m)


def ref_convex(p, e):
    L0, scale, d2 = p
    out = np.empty(len(e))
    for t in range(len(e)):
        x = e[: t + 1]
        P, Q = x.sum(), (x ** 2).sum()
        beta = np.cumsum(x[::-1])[::-1]
        gam = np.cumsum((x ** 2)[::-1])[::-1]
        alpha = beta - x
        with np.errstate(divide="ignore"):
            t3 = 0.5 * np.sum(x[:-1] / alpha[:-1] * gam[:-1] / beta[:-1])
        out[t] = L0 + scale * ((d2 + Q) / (2 * P) + t3)
    return out


def ref_river_valley(p, e):
    L0, A, al, tau0, lam, s2 = p                     # sharpness lambda, noise variance sigma^2
    T = len(e)
    # V_t = sum_{s<t} e_s^2 s2 prod_{r=s+1}^{t-1} (1 - e_r lam)^2, via a product matrix
    logf = np.log(np.abs(1 - e * lam)) * 2
    c = np.concatenate([[0.0], np.cumsum(logf)])
    s, t = np.indices((T, T))
    prod = np.exp(np.where(s < t, c[np.maximum(t, 1)] - c[s + 1], -np.inf))  # r = s+1 .. t-1
    V = np.sum(prod * (e ** 2 * s2)[:, None], axis=0)
    tau = np.concatenate([[0.0], np.cumsum(e)[:-1]])
    return L0 + A * (tau + tau0) ** (-al) + 0.5 * lam * V


def ref_river_valley_2(p, e):
    # the one-group reference plus a second hill (amplitude 0: no second river term)
    return ref_river_valley(p[:6], e) + ref_river_valley((0.0, 0.0, 1.0, 1.0) + tuple(p[6:]), e)


def ref_river_valley_spectrum(p, e):
    L0, A, al, tau0, s2, lo, hi, pw = p
    K = L.SPECTRUM_GROUPS
    lam = np.exp(np.log(lo) + (np.arange(K) + 0.5) / K * (np.log(hi) - np.log(lo)))
    V = np.zeros(K)
    hill = np.zeros(len(e))
    for t in range(len(e)):                          # the recursion, one step at a time
        hill[t] = 0.5 * np.sum(lam * V)
        V = (1 - e[t] * lam) ** 2 * V + (e[t] ** (1 + pw) if e[t] > 0 else 0.0) * s2 / K
    tau = np.concatenate([[0.0], np.cumsum(e)[:-1]])
    return L0 + A * (tau + tau0) ** (-al) + hill


PARAMS = {
    "multi_power": L.MultiPowerParams(2.0, 0.7, 0.4, 30.0, 2.0, 0.6, 0.6, 0.05),
    "lr_annealing": L.AnnealingParams(2.0, 0.7, 0.4, 0.5, 0.99),
    "convex_bound": L.ConvexBoundParams(2.0, 0.3, 1.5),
    "river_valley": L.RiverValleyParams(2.0, 0.7, 0.4, 0.3, 3.0, 0.8),
    "river_valley_2": L.RiverValley2Params(2.0, 0.7, 0.4, 0.3, 3.0, 0.8, 0.2, 0.5),
    "river_valley_spectrum": L.RiverValleySpectrumParams(2.0, 0.7, 0.4, 0.3, 0.8, 0.05, 20.0, 0.7),
}
REFS = {"multi_power": ref_multi_power, "lr_annealing": ref_annealing,
        "convex_bound": ref_convex, "river_valley": ref_river_valley,
        "river_valley_2": ref_river_valley_2, "river_valley_spectrum": ref_river_valley_spectrum}


def test_river_valley_laws_name_their_hill_as_theory_does():
    # the glossary's names: the river's four, then theory's sharpness and noise_var (with a
    # group's suffix), or the spectrum's noise exponent p
    import inspect
    import re

    from rivervalley import theory

    assert {"sharpness", "noise_var"} <= set(inspect.signature(theory.hill_moments).parameters)
    for law in (L.RIVER_VALLEY, L.RIVER_VALLEY_2, L.RIVER_VALLEY_SPECTRUM):
        fields = law.params._fields
        assert fields[:4] == ("L0", "A", "alpha", "tau0"), law.name
        assert all(re.fullmatch(r"(sharpness|noise_var)(_2|_lo|_hi)?|p", f) for f in fields[4:]), fields


def _schedules():
    rng = np.random.default_rng(0)
    T = 160
    rand = rng.uniform(0.001, 0.1, T)                      # arbitrary, non-monotone
    wsd = np.concatenate([np.linspace(0.002, 0.1, 20), np.full(100, 0.1), np.linspace(0.1, 1e-4, 40)])
    steps = np.repeat(rng.uniform(0.01, 0.1, 8), 20)       # piecewise constant, up and down
    holes = rand.copy()
    holes[50:60] = 0.0                                      # zero LRs inside
    return {"random": rand, "wsd": wsd, "piecewise": steps, "zeros": holes}


SCHEDULES = _schedules()


@pytest.mark.parametrize("name", list(PARAMS))
@pytest.mark.parametrize("sched", list(SCHEDULES))
def test_law_matches_direct_quadratic_reference(name, sched):
    e = SCHEDULES[sched]
    with jax.enable_x64(True):
        got = np.asarray(L.loss_curve(name, PARAMS[name], e))
    want = REFS[name](PARAMS[name], e)
    ok = np.isfinite(want)
    assert np.array_equal(np.isfinite(got), ok)            # the convex bound is inf where eta_t = 0
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-10)


@pytest.mark.parametrize("name", list(PARAMS))
def test_loss_curve_at_steps_matches_reference(name):
    e = SCHEDULES["wsd"]
    steps = np.array([0, 1, 7, 30, 119, 120, 121, 150, 159])
    with jax.enable_x64(True):
        got = np.asarray(L.loss_curve(name, PARAMS[name], e, steps=steps))
    np.testing.assert_allclose(got, REFS[name](PARAMS[name], e)[steps], rtol=1e-10)


def test_multi_power_long_schedule_stays_accurate():
    # a 20k-step WSD with LRs spanning 5 decades: the SOE grid must cover all scales
    e = np.concatenate([np.full(16000, 1e-3), np.linspace(1e-3, 1e-8, 4000)])
    steps = np.array([100, 15999, 16500, 18000, 19999])
    p = L.MultiPowerParams(2.5, 0.9, 0.5, 250.0, 0.1, 0.3, 0.9, 0.2)
    with jax.enable_x64(True):
        full = np.asarray(L.loss_curve(L.MULTI_POWER, p, e))[steps]
        exact = np.asarray(L.loss_curve(L.MULTI_POWER, p, e, steps=steps))
    np.testing.assert_allclose(full, exact, rtol=1e-10)


def test_river_valley_steady_state_and_drop():
    # constant LR: hill loss -> eta sigma^2 / (2 (2 - eta lambda)) (THEORY.md §4)
    p = L.RiverValleyParams(0.0, 0.0, 0.5, 1.0, 2.0, 3.0)
    with jax.enable_x64(True):
        y = np.asarray(L.loss_curve(L.RIVER_VALLEY, p, np.full(2000, 0.1)))
    assert y[-1] == pytest.approx(0.1 * 3.0 / (2 * (2 - 0.2)), rel=1e-10)


def test_float32_default():
    y = L.loss_curve(L.LR_ANNEALING, PARAMS["lr_annealing"], np.full(10, 0.1, np.float32))
    assert y.dtype == np.float32


# ------------------------------------------------------------------ fitting


def wsd_lrs(T, frac, peak=0.01, warm=50):
    """A WSD schedule built by hand: warmup from peak / warm, linear decay over frac * T."""
    e = np.full(T, peak)
    e[:warm] = peak * np.arange(1, warm + 1) / warm
    D = int(frac * T)
    if D:
        e[T - D:] = peak * (1 - np.arange(D) / D)
    return e


CURVES = [wsd_lrs(1500, 0.0), wsd_lrs(1500, 0.2)]
STEPS = [np.arange(60, 1500, 20)] * 2


def _rel(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)) / np.abs(np.asarray(b))


FIT_TRUE = {
    "river_valley": L.RiverValleyParams(2.0, 1.0, 0.5, 0.5, 20.0, 40.0),
    "river_valley_2": L.RiverValley2Params(2.0, 1.0, 0.5, 0.5, 20.0, 40.0, 0.5, 4.0),
    "lr_annealing": L.AnnealingParams(2.0, 1.0, 0.5, 0.05, 0.995),
    "multi_power": L.MultiPowerParams(2.0, 1.0, 0.5, 20.0, 0.5, 0.5, 0.5, 0.1),
}


@pytest.mark.parametrize("name", list(FIT_TRUE))
def test_fit_recovers_parameters_noise_free(name):
    true = FIT_TRUE[name]
    with jax.enable_x64(True):
        ys = [np.asarray(L.loss_curve(name, true, e, steps=s)) for e, s in zip(CURVES, STEPS)]
    init = true._replace(**{f: getattr(true, f) * 1.3 for f in true._fields[1:3]})
    r = L.fit(name, CURVES, ys, steps=STEPS, init=init, max_nfev=300)
    # exact data: the parameters come back to 1e-4 (relative), the curve to R^2 > 1 - 1e-10
    assert r.r2 > 1 - 1e-10
    assert np.max(_rel(r.params, true)) < 1e-4, r.params


@pytest.mark.parametrize("name", ["river_valley", "lr_annealing"])
def test_fit_recovers_parameters_lightly_noisy(name):
    true = FIT_TRUE[name]
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        ys = [np.asarray(L.loss_curve(name, true, e, steps=s)) * np.exp(1e-4 * rng.standard_normal(len(s)))
              for e, s in zip(CURVES, STEPS)]
    init = true._replace(**{f: getattr(true, f) * 1.2 for f in true._fields[1:3]})
    r = L.fit(name, CURVES, ys, steps=STEPS, init=init, max_nfev=300)
    # 1e-4 multiplicative noise: the final losses within 1e-4 and L0, alpha within 5 %
    assert abs(r.params.L0 - true.L0) / true.L0 < 0.05
    assert abs(r.params.alpha - true.alpha) / true.alpha < 0.05
    with jax.enable_x64(True):
        for e in CURVES:
            pred = float(L.loss_curve(name, r.params, e, steps=[len(e) - 1])[0])
            want = float(L.loss_curve(name, true, e, steps=[len(e) - 1])[0])
            assert abs(pred - want) / want < 1e-4


def test_convex_fit_is_the_linear_least_squares_solution():
    true = L.ConvexBoundParams(2.0, 3.0, 0.05)
    with jax.enable_x64(True):
        ys = [np.asarray(L.loss_curve("convex_bound", true, e, steps=s)) for e, s in zip(CURVES, STEPS)]
    r = L.fit("convex_bound", CURVES, ys, steps=STEPS)
    assert np.max(_rel(r.params, true)) < 1e-6


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="steps"):
        L.fit("river_valley", np.full(10, 0.1), np.ones(5))
    with pytest.raises(ValueError, match="outside"):
        L.fit("river_valley", np.full(10, 0.1), np.ones(2), steps=[3, 10])
    with pytest.raises(ValueError, match="law="):
        L.loss_curve("nope", (1.0,), np.ones(3))
    with pytest.raises(ValueError, match="fixed"):
        L.fit("river_valley", np.full(10, 0.1), np.ones(10), fixed=("zzz",))


def test_river_valley_2_steady_state_is_the_sum_of_both_groups():
    # constant LR: each group relaxes to eta sigma^2 / (2 (2 - eta lambda)); with noise_var_2 = 0
    # it is the one-group law exactly
    p = L.RiverValley2Params(0.0, 0.0, 0.5, 1.0, 2.0, 3.0, 0.5, 1.0)
    with jax.enable_x64(True):
        y = np.asarray(L.loss_curve(L.RIVER_VALLEY_2, p, np.full(20000, 0.1)))
        one = np.asarray(L.loss_curve(L.RIVER_VALLEY, p[:6], SCHEDULES["wsd"]))
        two = np.asarray(L.loss_curve(L.RIVER_VALLEY_2, p._replace(noise_var_2=0.0), SCHEDULES["wsd"]))
    want = 0.1 * 3.0 / (2 * (2 - 0.2)) + 0.1 * 1.0 / (2 * (2 - 0.05))
    assert y[-1] == pytest.approx(want, rel=1e-10)
    np.testing.assert_array_equal(one, two)


def test_loss_curve_at_steps_accepts_a_user_defined_law():
    # compiled evaluators were looked up by name in LAWS: an unregistered Law raised KeyError
    import dataclasses

    mine = dataclasses.replace(L.RIVER_VALLEY, name="my_river_valley")
    e, steps = SCHEDULES["wsd"], np.array([0, 50, 159])
    with jax.enable_x64(True):
        got = np.asarray(L.loss_curve(mine, PARAMS["river_valley"], e, steps=steps))
        want = np.asarray(L.loss_curve("river_valley", PARAMS["river_valley"], e, steps=steps))
    np.testing.assert_array_equal(got, want)


def test_multi_power_jacobian_at_steps_matches_finite_differences():
    # the exact-at-steps evaluator has a hand-written JVP (one pass over the pairs for all
    # directions): it must agree with central differences and with reverse mode
    from rivervalley import _laws_at_steps as S

    e = SCHEDULES["wsd"]
    steps = np.array([0, 1, 7, 30, 119, 120, 121, 150, 159])
    p = np.array(PARAMS["multi_power"], float)
    with jax.enable_x64(True):
        prep = jax.tree_util.tree_map(jax.numpy.asarray, S.prepare_multi_power(e, steps))

        def f(v):
            return S.multi_power_at(L.MultiPowerParams(*v), prep)

        jf = np.asarray(jax.jacfwd(f)(p))
        jr = np.asarray(jax.jacrev(f)(p))
        h = 1e-6 * np.maximum(np.abs(p), 1e-3)
        jn = np.stack([(np.asarray(f(p + h[i] * np.eye(8)[i])) - np.asarray(f(p - h[i] * np.eye(8)[i])))
                       / (2 * h[i]) for i in range(8)], 1)
    np.testing.assert_allclose(jf, jn, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(jr, jf, rtol=1e-12, atol=1e-15)


def test_spectrum_fit_recovers_every_parameter_noise_free():
    # 8 parameters need richer data than two curves: constant, 20% and 50% decays over 3000 steps;
    # EVERY parameter starts 20% off
    runs = [wsd_lrs(3000, f) for f in (0.0, 0.2, 0.5)]
    steps = [np.arange(60, 3000, 20)] * 3
    true = L.RiverValleySpectrumParams(2.0, 1.0, 0.5, 0.5, 40.0, 1.0, 40.0, 0.8)
    with jax.enable_x64(True):
        ys = [np.asarray(L.loss_curve("river_valley_spectrum", true, e, steps=s))
              for e, s in zip(runs, steps)]
    init = true._replace(**{f: getattr(true, f) * 1.2 for f in true._fields})
    r = L.fit("river_valley_spectrum", runs, ys, steps=steps, init=init, max_nfev=400)
    assert r.r2 > 1 - 1e-10
    assert np.max(_rel(r.params, true)) < 1e-6, r.params
