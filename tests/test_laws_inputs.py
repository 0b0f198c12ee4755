"""Laws on nonsense or degenerate input: an error or a warning that says why, never a silent number.

Issue 11: ``laws.predict(law, p, [])`` (now ``laws.loss_curve``) returned a number; ``laws.fit``
on degenerate data raised ZeroDivisionError or returned R^2 = -inf / NaN without a word.
"""

import warnings

import numpy as np
import pytest

from rivervalley import laws as L

P = {"river_valley": L.RiverValleyParams(2.0, 0.7, 0.4, 0.3, 3.0, 0.8),
     "lr_annealing": L.AnnealingParams(2.0, 0.7, 0.4, 0.5, 0.99),
     "multi_power": L.MultiPowerParams(2.0, 0.7, 0.4, 30.0, 2.0, 0.6, 0.6, 0.05)}


@pytest.mark.parametrize("name", list(P))
@pytest.mark.parametrize("lrs,match", [
    ([], r"lrs has shape \(0,\): expected a non-empty 1-D array"),
    (np.ones((3, 2)) * 0.1, r"lrs has shape \(3, 2\)"),
    ([0.1, np.nan, 0.1], r"lrs=\[0.1, nan, 0.1\] must be finite, in \[0, inf\) \(learning rates\)"),
    ([0.1, -0.1, 0.1], r"lrs=\[0.1, -0.1, 0.1\] is outside the valid range \[0, inf\)"),
    (0.1, r"lrs has shape \(\)"),
])
def test_loss_curve_rejects_nonsense_lrs(name, lrs, match):
    with pytest.raises(ValueError, match=match):
        L.loss_curve(name, P[name], lrs)


def test_loss_curve_rejects_wrong_params():
    with pytest.raises(ValueError, match=r"params has 3 values but law 'river_valley' has 6: L0, A"):
        L.loss_curve("river_valley", (1.0, 2.0, 3.0), [0.1] * 5)
    with pytest.raises(ValueError, match=r"params\.alpha=nan must be finite"):
        L.loss_curve("river_valley", P["river_valley"]._replace(alpha=float("nan")), [0.1] * 5)
    with pytest.raises(ValueError, match="law=3 is not one of"):
        L.loss_curve(3, P["river_valley"], [0.1] * 5)


def test_fit_with_every_lr_zero_is_an_error_not_zero_division():
    with pytest.raises(ValueError, match="every LR is 0"):
        L.fit("multi_power", np.zeros(100), np.linspace(3, 2, 100))
    with pytest.raises(ValueError, match="every LR is 0"):
        L.fit("river_valley", np.zeros(100), np.linspace(3, 2, 100))


def test_fit_on_constant_losses_warns_that_r2_is_undefined():
    lrs = np.full(200, 0.01)
    with pytest.warns(L.FitWarning, match="R\\^2 is undefined: the 200 fitted losses have no variance"):
        r = L.fit("lr_annealing", lrs, np.full(200, 3.0), max_nfev=30)
    assert np.isnan(r.r2) and any("undefined" in m for m in r.warnings)


def test_fit_with_fewer_points_than_parameters_is_an_error():
    with pytest.raises(ValueError, match="3 losses cannot determine 8 free parameters of multi_power"):
        L.fit("multi_power", np.full(100, 0.01), [3.0, 2.9, 2.8], steps=[10, 50, 99])
    with pytest.raises(ValueError, match="no losses to fit at steps >= min_step=500"):
        L.fit("river_valley", np.full(100, 0.01), np.linspace(3, 2, 100), min_step=500)


@pytest.mark.parametrize("kw,match", [
    ({"huber_delta": 0.0}, "huber_delta=0.0"), ({"max_nfev": 0}, "max_nfev=0"),
    ({"uncertainty": "jackknife"}, "uncertainty='jackknife'"), ({"min_step": -1}, "min_step=-1"),
    ({"steps": np.arange(200) + 0.5}, "whole numbers"),
])
def test_fit_rejects_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        L.fit("river_valley", np.full(200, 0.01), np.linspace(3, 2, 200), **kw)


def test_fit_of_a_curve_and_arrays_agree_and_curve_refuses_extra_losses():
    lrs = np.concatenate([np.full(800, 0.01), np.linspace(0.01, 0.0, 200)])
    true = L.RiverValleyParams(2.0, 1.0, 0.5, 0.5, 20.0, 40.0)
    steps = np.arange(20, 1000, 20)
    y = np.asarray(L.loss_curve("river_valley", true, lrs, steps=steps))
    c = L.Curve(steps, lrs, y, {})
    with warnings.catch_warnings():
        warnings.simplefilter("error", L.FitWarning)
        a = L.fit("river_valley", c, init=true, max_nfev=50)
        b = L.fit("river_valley", lrs, y, steps=steps, init=true, max_nfev=50)
    np.testing.assert_array_equal(np.array(a.params), np.array(b.params))
    with pytest.raises(ValueError, match="come from the Curve"):
        L.fit("river_valley", c, y)


def test_fit_names_the_bad_lr_array():
    match = r"lrs\[1\]=array\(shape=\(200,\).* is outside the valid range \[0, inf\)"
    with pytest.raises(ValueError, match=match):
        L.fit("river_valley", [np.full(200, 0.01), np.full(200, -0.01)], [np.linspace(3, 2, 200)] * 2)


@pytest.mark.parametrize("kw,match", [
    ({"num_steps": 1}, r"num_steps=1 is outside the valid range: an integer >= 2"),
    ({"num_steps": 100.0}, r"num_steps=100.0 is outside the valid range: an integer >= 2"),
    ({"peak_value": 0.0}, r"peak_value=0.0 is outside the valid range \(0, inf\) \(a learning rate\)"),
    ({"peak_value": float("nan")}, r"peak_value=nan must be finite"),
    ({"warmup_steps": 100}, r"warmup_steps=100 is outside the valid range: an integer in \[0, 99\]"),
    ({"cosine_min_ratio": 1.5}, r"cosine_min_ratio=1.5 is outside the valid range \[0, 1\]"),
])
def test_advise_rejects_bad_arguments(kw, match):
    args = {"num_steps": 100, "peak_value": 0.01, **kw}
    with pytest.raises(ValueError, match=match):
        L.advise("river_valley", P["river_valley"], args.pop("num_steps"), **args)

