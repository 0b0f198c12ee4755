"""Loading real loss logs: ordering, de-duplication, bad files, LR reconstruction."""

import json

import numpy as np
import pytest

from rivervalley import laws as L


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_resumed_log_sorted_unique_last_wins(tmp_path):
    p = _write(tmp_path, "run.csv",
               "step,lr,loss\n0,0.1,5.0\n1,0.1,4.0\n2,0.1,3.0\n1,0.1,3.9\n3,0.05,2.5\n2,0.1,2.9\n")
    c = L.load_curve(p)
    assert c.steps.tolist() == [0, 1, 2, 3]
    assert c.losses.tolist() == [5.0, 3.9, 2.9, 2.5]          # the repeated steps keep the LAST value
    assert c.lrs.tolist() == [0.1, 0.1, 0.1, 0.05]


def test_jsonl_out_of_order_and_lr_interpolation(tmp_path):
    rows = [{"step": 4, "lr": 0.0, "loss": 1.0}, {"step": 0, "lr": 0.4, "loss": 3.0},
            {"step": 2, "lr": 0.2, "loss": 2.0}, {"step": 4, "lr": 0.0, "loss": 0.9}]
    p = _write(tmp_path, "run.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    c = L.load_curve(p)
    assert c.steps.tolist() == [0, 2, 4]
    assert c.losses.tolist() == [3.0, 2.0, 0.9]
    np.testing.assert_allclose(c.lrs, [0.4, 0.3, 0.2, 0.1, 0.0])
    assert c.meta["lr_interpolated"]


@pytest.mark.parametrize("text,where,what", [
    ("step,loss\n0,1.0\n", "line 1", "lr"),
    ("step,lr,loss\n0,0.1,1.0\n1,0.1,nan\n", "line 3", "NaN"),
    ("step,lr,loss\n0,0.1,1.0\n1,0.1,1.0\n2,abc,1.0\n", "line 4", "not a number"),
    ("step,lr,loss\n0,0.1,1.0\n1.5,0.1,1.0\n", "line 3", "whole number"),
    ("step,lr,loss\n0,0.1\n", "line 2", "fields"),
    ("step,lr,loss\n0,0.1,\n", "line 2", "missing loss"),
])
def test_bad_csv_names_file_and_line(tmp_path, text, where, what):
    p = _write(tmp_path, "bad.csv", text)
    with pytest.raises(ValueError) as e:
        L.load_curve(p)
    assert "bad.csv" in str(e.value) and where in str(e.value) and what in str(e.value)


@pytest.mark.parametrize("lines,where,what", [
    (['{"step": 0, "lr": 0.1, "loss": 1}', '{"step": 1, "lr": 0.1}'], "line 2", "missing loss"),
    (['{"step": 0, "lr": 0.1, "loss": 1}', '{"step": 1, "lr": 0.1, "loss": NaN}'], "line 2", "NaN"),
    (['{"step": 0, "lr": 0.1, "loss": 1}', '{"step": 1, "lr": "x", "loss": 1}'], "line 2", "not a number"),
    (['{"step": 0, "lr": 0.1, "loss": 1}', '', '{"step": 1, "lr": 0.1, "loss": 1'], "line 3", "JSON"),
])
def test_bad_jsonl_names_file_and_line(tmp_path, lines, where, what):
    p = _write(tmp_path, "bad.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(ValueError) as e:
        L.load_curve(p)
    assert "bad.jsonl" in str(e.value) and where in str(e.value) and what in str(e.value)


def test_bad_json_log_names_file_and_entry(tmp_path):
    d = json.loads(L.real_curves()[0].read_text())
    d["history"]["val"]["val_loss"][3] = "oops"
    p = _write(tmp_path, "bad.json", json.dumps(d))
    with pytest.raises(ValueError, match=r"bad\.json.*val_loss\[3\].*not a number"):
        L.load_curve(p)
    del d["history"]["val"]["val_loss"]
    p = _write(tmp_path, "bad2.json", json.dumps(d))
    with pytest.raises(ValueError, match=r"bad2\.json.*missing column 'val_loss'"):
        L.load_curve(p)
    p = _write(tmp_path, "bad3.json", '{"config": {},\n "history": [1, 2,, 3]}')
    with pytest.raises(ValueError, match=r"bad3\.json: line 2"):
        L.load_curve(p)


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unknown format"):
        L.load_curve(_write(tmp_path, "x.txt", "1"))
    with pytest.raises(ValueError, match="does not exist"):
        L.load_curve(tmp_path / "nope.csv")


def test_shipped_curves_load_and_lr_reconstruction_matches_logged():
    paths = L.real_curves()
    assert len(paths) == 21
    for p in paths:
        for loss in ("val", "train"):
            c = L.load_curve(p, loss=loss)
            assert np.all(np.diff(c.steps) > 0)
            assert np.all(np.isfinite(c.losses)) and len(c.lrs) > c.steps[-1]
        s, lr = c.meta["logged_lr_steps"], c.meta["logged_lr"]
        ok = s < len(c.lrs)
        assert ok.sum() >= 99
        np.testing.assert_allclose(c.lrs[s[ok]], lr[ok], rtol=1e-12, atol=1e-15)


def test_shipped_resumed_log_keeps_last_occurrence():
    p = [q for q in L.real_curves() if q.name.startswith("full-stable-124m_lr0.001_")][0]
    raw = json.loads(p.read_text())["history"]["train"]
    it, loss = np.array(raw["iter"]), np.array(raw["train_loss"])
    dup = [s for s in np.unique(it) if (it == s).sum() > 1]
    assert dup                                                 # this log really was resumed
    c = L.load_curve(p, loss="train")
    for s in dup:
        assert c.losses[c.steps == s][0] == loss[np.nonzero(it == s)[0][-1]]


def test_reconstruct_lr_warmup_and_sqrt_decay():
    cfg = {"lr": 1e-3, "iterations": 1000, "warmup_steps": 300, "wsd_fract_decay": 0.2,
           "decay_type": "sqrt", "scheduler": "wsd"}
    lr = L.reconstruct_lr(cfg, 1001)
    assert lr[0] == pytest.approx(1e-5) and lr[150] == pytest.approx(1e-3 * (0.5 + 0.5 / 100))
    assert lr[800] == pytest.approx(1e-3) and lr[850] == pytest.approx(1e-3 * (1 - np.sqrt(0.25)))
    assert lr[1000] == 0.0
    with pytest.raises(ValueError, match="decay_type"):
        L.reconstruct_lr({**cfg, "decay_type": "zigzag"}, 10)


def test_glue_cooldown_to_main_prefix():
    ps = {p.stem: p for p in L.real_curves()}
    main = L.load_curve(ps["full-stable-124m_lr0.001_sched_wsd_warmup300_decay_linear_0.0_iter50000"])
    br = L.load_curve(ps["ann124-0.1_lr0.001_sched_wsd_warmup300_decay_linear_0.1_iter15000"])
    g = L.glue(main, br)
    assert np.all(np.diff(g.steps) > 0) and g.steps[0] == 0 and g.steps[-1] == br.steps[-1]
    assert np.array_equal(g.lrs, br.lrs)
    np.testing.assert_array_equal(g.losses[g.steps < br.steps[0]], main.losses[main.steps < br.steps[0]])
    other = L.load_curve(ps["full-stable-124m_lr0.002_sched_wsd_warmup300_decay_linear_0.0_iter50000"])
    with pytest.raises(ValueError, match="differ"):
        L.glue(other, br)
