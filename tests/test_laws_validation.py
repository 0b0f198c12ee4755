"""The validation protocol: its stored numbers are reproduced on a subset; the README table is generated."""

from pathlib import Path

import numpy as np
import pytest

from rivervalley import _laws_validation as V
from rivervalley import laws as L

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def stored():
    return V.stored()


def test_protocol_constants_are_the_stored_ones(stored):
    p = stored["protocol"]
    assert p["min_step"] == V.MIN_STEP and p["fit_cooldown"] == V.FIT_COOLDOWN
    assert p["fit_options"] == V.FIT_OPTIONS and p["anchors"] == list(V.ANCHORS)
    assert [r["law"] for r in stored["fits"]][:: len(V.ANCHORS)] == list(L.LAWS)


def test_catalog_holds_the_shipped_families():
    cat = V.catalog()
    assert sorted(cat) == [1e-4, 5e-4, 1e-3, 2e-3, 3e-3]
    assert [len(cat[k]["cooldowns"]) for k in sorted(cat)] == [4, 6, 16, 6, 0]
    assert [len(cat[k]["cosine"]) for k in sorted(cat)] == [2, 2, 0, 4, 0]
    assert all(cat[k]["constant"] is not None for k in cat)


def test_a_subset_reproduces_the_stored_numbers(stored):
    # two anchors, one law: the fits, every held-out prediction and the drops of the full run
    res = V.validate(["lr_annealing"], [5e-4, 2e-3], progress=False)
    fits = {(f["law"], f["anchor"]): f for f in stored["fits"]}
    for f in res["fits"]:
        want = fits[(f["law"], f["anchor"])]
        assert f["fit_cooldown"] == want["fit_cooldown"]
        np.testing.assert_allclose(f["params"], want["params"], rtol=1e-4)
        assert f["fit_r2"] == pytest.approx(want["fit_r2"], abs=1e-6)
    curves = {(c["law"], c["anchor"], c["name"]): c for c in stored["curves"]}
    n = 0
    for c in res["curves"]:
        want = curves[(c["law"], c["anchor"], c["name"])]
        assert c["family"] == want["family"] and c["final_obs"] == want["final_obs"]
        assert c["final_pred"] == pytest.approx(want["final_pred"], rel=1e-5)
        n += 1
    assert n == 28
    drops = {(d["law"], d["anchor"], d["name"]): d for d in stored["drops"]}
    for d in res["drops"]:
        want = drops[(d["law"], d["anchor"], d["name"])]
        assert d["measured"] == want["measured"]
        assert d["predicted"] == pytest.approx(want["predicted"], rel=1e-4, abs=1e-6)


def test_summary_is_computed_from_the_curves(stored):
    # the stored summary is the aggregate of the stored per-curve errors (nothing typed)
    for r in stored["summary"]:
        errs = [c["final_err"] for c in stored["curves"]
                if c["law"] == r["law"] and c["family"] == r["family"]]
        assert len(errs) == r["n_curves"]
        assert r["worst"] == pytest.approx(max(errs), rel=1e-12)
        assert r["mean"] == pytest.approx(np.mean(errs), rel=1e-12)


def test_readme_shows_the_generated_table(stored):
    table = V.validation_table(stored)
    text = README.read_text()
    assert table in text, "README: paste the output of `rivervalley laws validate` (the table)"


def test_validation_figure_fast_computes_plots_and_checks(tmp_path):
    from rivervalley.figures import laws_validation as F

    data = F.compute(F.FAST)
    assert all(hasattr(v, "shape") for v in data.values())
    F.check(data, F.FAST)
    fig = F.plot(data, F.FAST)
    fig.savefig(tmp_path / "v.png")
    assert (tmp_path / "v.png").stat().st_size > 10_000
    assert F.table(data).startswith("| law | other cooldowns, same LR")
