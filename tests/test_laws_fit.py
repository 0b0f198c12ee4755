"""Fitting: Curves in, parameters + uncertainty + FitWarning out; river / hill parts sum to the law."""

import warnings

import jax
import numpy as np
import pytest
from test_laws import wsd_lrs

from rivervalley import laws as L

RUNS = [wsd_lrs(1500, 0.0), wsd_lrs(1500, 0.2)]
STEPS = [np.arange(60, 1500, 20)] * 2


def _curves(name, true, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        ys = [np.asarray(L.loss_curve(name, true, e, steps=s)) for e, s in zip(RUNS, STEPS)]
    return [L.Curve(s, e, y * np.exp(noise * rng.standard_normal(len(y))), {})
            for e, s, y in zip(RUNS, STEPS, ys)]


@pytest.mark.parametrize("name,params", [
    ("river_valley", L.RiverValleyParams(2.0, 0.7, 0.4, 0.3, 3.0, 0.8)),
    ("river_valley_2", L.RiverValley2Params(2.0, 0.7, 0.4, 0.3, 3.0, 0.8, 0.2, 0.5)),
    ("river_valley_spectrum", L.RiverValleySpectrumParams(2.0, 0.7, 0.4, 0.3, 0.8, 0.05, 20.0, 0.7)),
])
@pytest.mark.parametrize("sched", ["wsd", "cosine", "random"])
def test_parts_sum_to_the_law(name, params, sched):
    rng = np.random.default_rng(3)
    lrs = {"wsd": wsd_lrs(400, 0.3, peak=0.1), "random": rng.uniform(0, 0.2, 400),
           "cosine": 0.1 * (0.1 + 0.9 * (1 + np.cos(np.pi * np.arange(400) / 400)) / 2)}[sched]
    with jax.enable_x64(True):
        whole = np.asarray(L.loss_curve(name, params, lrs))
        pr = L.parts(name, params, lrs)
    np.testing.assert_allclose(np.asarray(pr.river) + np.asarray(pr.hill), whole, rtol=1e-13)
    np.testing.assert_allclose(sum(np.asarray(g) for g in pr.groups), np.asarray(pr.hill), rtol=1e-13)
    assert len(pr.groups) == {"river_valley": 1, "river_valley_2": 2,
                              "river_valley_spectrum": L.SPECTRUM_GROUPS}[name]
    # the river part is the law with no hill: L0 + A (tau + tau0)^-alpha, tau = sum_{s<t} eta_s
    tau = np.concatenate([[0.0], np.cumsum(lrs)[:-1]])
    river = params.L0 + params.A * (tau + params.tau0) ** -params.alpha
    np.testing.assert_allclose(np.asarray(pr.river), river, rtol=1e-13)
    assert np.all(np.asarray(pr.hill) >= 0)


def test_parts_of_a_law_without_them_is_an_error():
    with pytest.raises(ValueError, match="law 'multi_power' has no river / hill parts .*river_valley"):
        L.parts("multi_power", L.MultiPowerParams(2.0, 0.7, 0.4, 30.0, 2.0, 0.6, 0.6, 0.05), [0.1] * 10)


def test_fit_from_curves_recovers_parameters_with_honest_standard_errors():
    true = L.RiverValleyParams(2.0, 1.0, 0.5, 0.5, 20.0, 40.0)
    cs = _curves("river_valley", true, noise=1e-4, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", L.FitWarning)        # a good fit raises no warning
        r = L.fit("river_valley", cs, init=true, max_nfev=200)
    assert r.law == "river_valley" and r.warnings == ()
    z = (np.array(r.params) - np.array(true)) / np.array(r.stderr)
    assert np.all(np.isfinite(z)) and np.all(np.abs(z) < 5), (r.params, r.stderr)
    assert np.all(np.array(r.stderr) > 0)


def test_laplace_errors_match_the_scatter_over_noise_draws():
    # the convex bound is linear in (L0, scale, scale * d2): the Laplace errors are exact there
    true = L.ConvexBoundParams(2.0, 3.0, 0.05)
    est, se = [], []
    for seed in range(24):
        r = L.fit("convex_bound", _curves("convex_bound", true, noise=1e-3, seed=seed))
        est.append(r.params.L0)
        se.append(r.stderr.L0)
    ratio = np.std(est, ddof=1) / np.mean(se)
    assert 0.6 < ratio < 1.5, ratio


def test_bootstrap_uncertainty_is_finite_and_close_to_laplace():
    true = L.ConvexBoundParams(2.0, 3.0, 0.05)
    cs = _curves("convex_bound", true, noise=1e-3, seed=5)
    lap = L.fit("convex_bound", cs)
    boot = L.fit("convex_bound", cs, uncertainty="bootstrap", n_boot=30, seed=1)
    assert lap.params == boot.params
    np.testing.assert_allclose(np.array(boot.stderr), np.array(lap.stderr), rtol=0.6)
    assert np.all(np.isnan(np.array(L.fit("convex_bound", cs, uncertainty="none").stderr)))


def test_parameter_pinned_at_a_bound_warns():
    # data without any floor: L0 = 0, the lower bound of L0
    true = L.AnnealingParams(0.0, 1.0, 0.5, 0.05, 0.995)
    cs = _curves("lr_annealing", true)
    with pytest.warns(L.FitWarning, match=r"parameter L0=.* sits at its lower bound 0"):
        r = L.fit("lr_annealing", cs, init=true._replace(L0=0.1, A=1.2), max_nfev=200)
    assert any("L0" in m for m in r.warnings)


def test_a_collapsed_hill_group_warns():
    # curves from the ONE-group law: river_valley_2's second group has nothing to explain
    true = L.RiverValleyParams(2.0, 1.0, 0.5, 0.5, 20.0, 40.0)
    cs = _curves("river_valley", true)
    init = L.RiverValley2Params(*true, 0.05, 1e-6)
    with pytest.warns(L.FitWarning, match="hill group 2 collapsed"):
        r = L.fit("river_valley_2", cs, init=init, max_nfev=100)
    assert r.r2 > 1 - 1e-8


def test_fit_shows_a_progress_bar_only_when_asked_and_slow(capsys):
    true = L.ConvexBoundParams(2.0, 3.0, 0.05)
    L.fit("convex_bound", _curves("convex_bound", true), progress=True)
    assert "fit convex_bound" not in capsys.readouterr().err      # under a second: no bar


def test_fit_progress_bar_waits_a_second_and_follows_progress(monkeypatch):
    # the bar is tqdm's, shown only after 1 s (delay) and only on a terminal unless asked
    import tqdm.auto

    seen = []

    class Bar:
        def __init__(self, **kw):
            seen.append(kw)
            self.n = 0

        def update(self, k):
            self.n += k

        def reset(self, total=None):
            pass

        def close(self):
            seen[-1]["updates"] = self.n

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    true = L.ConvexBoundParams(2.0, 3.0, 0.05)
    for progress in (None, True, False):
        L.fit("convex_bound", _curves("convex_bound", true), progress=progress)
    assert [s["disable"] for s in seen] == [None, False, True]
    assert all(s["delay"] == 1.0 and s["desc"] == "fit convex_bound" and s["updates"] >= 1 for s in seen)
