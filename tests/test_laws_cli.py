"""``rivervalley laws ...``: fit -> predict -> advise on a shipped run; usage errors are one line, exit 2."""

import json

import jax
import numpy as np
import pytest

from rivervalley import laws as L
from rivervalley import laws_cli

RUNS = {p.stem: p for p in L.real_curves()}
MAIN = str(RUNS["full-stable-124m_lr0.001_sched_wsd_warmup300_decay_linear_0.0_iter50000"])
COOL = str(RUNS["ann124-0.2_lr0.001_sched_wsd_warmup300_decay_linear_0.2_iter25000"])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    d = tmp_path_factory.mktemp("laws")
    rc = laws_cli.main(["fit", MAIN, COOL, "--law", "river_valley", "--out", str(d / "params.json"),
                        "--max-nfev", "60", "--no-progress"])
    assert rc == 0
    return d


def test_fit_writes_params_json(fitted, capsys):
    doc = json.loads((fitted / "params.json").read_text())
    assert doc["law"] == "river_valley" and set(doc["params"]) == set(L.RiverValleyParams._fields)
    assert doc["peak_lr"] == pytest.approx(1e-3) and doc["num_steps"] == 50000
    assert doc["warmup_steps"] == 300 and doc["min_step"] == 1000 and doc["r2"] > 0.999
    assert all(np.isfinite(list(doc["stderr"].values())))
    assert not [p for p in fitted.iterdir() if p.name.startswith(".")]      # no temp files left


def test_predict_writes_csv_and_png(fitted, capsys):
    spec = "wsd:peak=1e-3,steps=50000,warmup=300,decay=0.2,shape=1-sqrt"
    rc = laws_cli.main(["predict", str(fitted / "params.json"), "--schedule", spec,
                        "--csv", str(fitted / "pred.csv"), "--plot", str(fitted / "pred.png")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "predicted loss" in out and "note:" not in out
    rows = np.loadtxt(fitted / "pred.csv", delimiter=",", skiprows=1)
    assert rows.shape == (50001, 3) and rows[-1, 0] == 50000
    # the CSV is the library's prediction of that schedule
    d = laws_cli.read_params(str(fitted / "params.json"))
    with jax.enable_x64(True):
        want = np.asarray(L.loss_curve("river_valley", d["params"], L.schedule_from_spec(spec).lrs(50001)))
    np.testing.assert_allclose(rows[:, 2], want, rtol=1e-10)
    assert (fitted / "pred.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a schedule with another warmup is predicted, with a note
    assert laws_cli.main(["predict", str(fitted / "params.json"), "--schedule",
                          "cosine:peak=1e-3,steps=20000,min_ratio=0.1"]) == 0
    assert "note: this schedule warms up over 0 steps, the fitted runs over 300" in capsys.readouterr().out


def test_advise_prints_and_plots(fitted, capsys):
    rc = laws_cli.main(["advise", str(fitted / "params.json"), "--steps", "50000",
                        "--plot", str(fitted / "advice.png"), "--json", str(fitted / "advice.json")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "best WSD decay:" in out and "cosine to 0.1 x peak" in out and "WSD linear, 20% decay" in out
    adv = json.loads((fitted / "advice.json").read_text())
    assert adv["warmup_steps"] == 300 and adv["peak_lr"] == pytest.approx(1e-3)
    best = adv["best"]["loss"]
    assert best <= adv["wsd_linear_20"]["loss"] + 1e-12 and best <= min(min(g["losses"]) for g in
                                                                         adv["grid"].values()) + 1e-12
    assert (fitted / "advice.png").stat().st_size > 10_000


@pytest.mark.parametrize("argv,match", [
    (["fit", MAIN, "--law", "nope", "--out", "{d}/p.json"], "unknown law 'nope'; known laws: multi_power"),
    (["fit", "{d}/missing.csv", "--law", "river_valley", "--out", "{d}/p.json"], "missing.csv: no such file"),
    (["fit", MAIN, "--law", "river_valley", "--out", "{d}/no/such/dir/p.json"], "does not exist"),
    (["fit", MAIN, "--law", "river_valley"], "the following arguments are required: --out"),
    (["predict", "{d}/nothere.json", "--schedule", "wsd:peak=1,steps=10"], "nothere.json: no such file"),
    (["predict", "{p}", "--schedule", "wsd:peak=1e-3"], "missing steps"),
    (["predict", "{p}", "--schedule", "zigzag:peak=1e-3,steps=10"], "unknown kind 'zigzag'"),
    (["predict", "{p}", "--schedule", "wsd:peak=1e-3,steps=100,decay=2.0"], "decay"),
    (["predict", "{p}", "--schedule", "wsd:peak=abc,steps=100"], "peak='abc' is not a number"),
    (["predict", "{p}", "--schedule", "wsd:peak=1e-3,steps=100,colour=red"], "unknown key 'colour'"),
    (["predict", "{p}", "--schedule", "wsd_s:peak=1e-3,checkpoints=100/x"], "not a whole number"),
    (["predict", "{p}", "--schedule", "wsd"], "is not kind:key=value"),
    (["predict", "{p}", "--schedule", "wsd:peak=1e-3,steps=100", "--plot", "{d}/x.jpg"], "must end in .png"),
    (["advise", "{p}", "--steps", "1"], "--steps 1 must be >= 2"),
    (["advise", "{p}", "--steps", "100", "--peak-value", "-0.001"],
     "--peak-value -0.001 must be a positive learning rate"),
    (["advise", "{p}", "--steps", "ten"], "invalid int value: 'ten'"),
    (["advise", "{bad}", "--steps", "100"], "not a params.json"),
    (["validate", "--laws", "nope"], "unknown law 'nope'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_usage_errors_are_one_line_exit_2(tmp_path, capsys, argv, match):
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"law": "river_valley", "params": dict(zip(
        L.RiverValleyParams._fields, [2.8, 0.9, 0.5, 0.3, 30.0, 600.0]))}))
    (tmp_path / "bad.json").write_text("{not json")
    argv = [a.format(d=tmp_path, p=p, bad=tmp_path / "bad.json") for a in argv]
    assert laws_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rivervalley laws: error: "), err
    assert match in err, err


@pytest.mark.parametrize("spec,build,T", [
    ("wsd:peak=1e-3,steps=5000,decay=0.2,shape=1-sqrt",
     lambda S: S.wsd(1e-3, 5000, decay=0.2, decay_shape="1-sqrt"), 5000),
    ("wsd:peak=1e-3,steps=5000,warmup=100,decay=700",
     lambda S: S.wsd(1e-3, 5000, warmup_steps=100, decay=700), 5000),
    ("cosine:peak=1e-3,steps=5000,min_ratio=0.1", lambda S: S.cosine(1e-3, 5000, min_ratio=0.1), 5000),
    ("constant:peak=2e-3,steps=10", lambda S: S.constant(2e-3), 10),
    ("wsd_s:peak=1e-3,checkpoints=1250/2625/5375,decay=0.1",
     lambda S: S.wsd_s(1e-3, [1250, 2625, 5375], decay=0.1), 5375),
])
def test_spec_is_the_schedules_factory(spec, build, T):
    from rivervalley import schedules as S

    s = L.schedule_from_spec(spec)
    assert s.num_steps == T
    with jax.enable_x64(True):
        want = np.asarray(S.as_array(build(S), T))
    np.testing.assert_array_equal(s.lrs(), want)
