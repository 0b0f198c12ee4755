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
    assert len(paths) == 45
    families = {}
    for p in paths:
        for loss in ("val", "train"):
            c = L.load_curve(p, loss=loss)
            assert np.all(np.diff(c.steps) > 0)
            assert np.all(np.isfinite(c.losses)) and len(c.lrs) > c.steps[-1]
        families[c.meta["family"]] = families.get(c.meta["family"], 0) + 1
        s, lr = c.meta["logged_lr_steps"], c.meta["logged_lr"]
        ok = s < len(c.lrs)
        assert ok.sum() >= 99
        # every schedule family (cosine included) is rebuilt to the last digit the log kept
        np.testing.assert_allclose(c.lrs[s[ok]], lr[ok], rtol=1e-12, atol=1e-15)
    assert families == {"wsd": 32, "cosine": 8, "constant": 5}, families


def test_cosine_log_has_its_ten_percent_floor_and_cosine_warmup():
    # scheduler: cos = torch OneCycleLR(div_factor=1e2, final_div_factor=0.1): cos_final_lr = -1
    # is not used; the floor is lr / 10 at step T - 1
    p = [q for q in L.real_curves() if q.name.startswith("cos-10-124m_lr0.002_") and "iter15000" in q.name][0]
    c = L.load_curve(p)
    assert c.meta["family"] == "cosine" and c.meta["config"]["cos_final_lr"] == -1
    assert len(c.lrs) == 15000
    assert c.lrs[0] == pytest.approx(2e-5) and c.lrs[299] == pytest.approx(2e-3, rel=1e-12)
    assert c.lrs[-1] == pytest.approx(2e-4, rel=1e-12)
    assert c.lrs[150] == pytest.approx(2e-5 + (2e-3 - 2e-5) * (1 - np.cos(np.pi * 150 / 299)) / 2)
    assert np.all(np.diff(c.lrs[299:]) <= 0)


@pytest.mark.parametrize("edit,what", [
    ({"cos_final_lr": 1e-5}, "cos_final_lr=1e-05"),         # a floor the run did not have
    ({"lr": 0.0021}, "lr=0.0021"),
    ({"warmup_steps": 200}, "warmup_steps=200"),
    ({"scheduler": "wsd"}, "scheduler='wsd'"),               # read as constant: disagrees
])
def test_wrong_config_is_rejected_naming_the_file(tmp_path, edit, what):
    p = [q for q in L.real_curves() if q.name.startswith("cos-10-124m_lr0.002_") and "iter15000" in q.name][0]
    d = json.loads(p.read_text())
    d["config"].update(edit)
    bad = _write(tmp_path, "edited.json", json.dumps(d))
    with pytest.raises(ValueError) as e:
        L.load_curve(bad)
    msg = str(e.value)
    assert "edited.json" in msg and "disagrees with the logged train_lr" in msg and what in msg, msg


def test_wsd_config_with_a_wrong_decay_fraction_is_rejected(tmp_path):
    p = [q for q in L.real_curves() if q.name.startswith("ann124-0.2_lr0.001_") and "iter15000" in q.name][0]
    d = json.loads(p.read_text())
    d["config"]["wsd_fract_decay"] = 0.25
    with pytest.raises(ValueError, match=r"wsd25\.json: the config .* disagrees .* at iter"):
        L.load_curve(_write(tmp_path, "wsd25.json", json.dumps(d)))


def test_unsupported_scheduler_names_the_file(tmp_path):
    p = L.real_curves()[0]
    d = json.loads(p.read_text())
    d["config"]["scheduler"] = "cos_inf"
    with pytest.raises(ValueError, match=r"odd\.json: config: scheduler='cos_inf' is not one of"):
        L.load_curve(_write(tmp_path, "odd.json", json.dumps(d)))


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


# ------------------------------------------------------------------ table semantics, W&B exports


def test_csv_lr_is_the_lr_of_the_update_at_that_step(tmp_path):
    # documented semantics: loss at step t = after t updates; lr at step t = the LR of update t
    p = _write(tmp_path, "run.csv", "step,lr,loss\n0,0.0,9.0\n2,0.2,5.0\n4,0.0,4.0\n")
    c = L.load_curve(p)
    np.testing.assert_allclose(c.lrs, [0.0, 0.1, 0.2, 0.1, 0.0])
    assert c.meta["lr_interpolated"] and c.meta["format"] == "csv"


def test_wandb_export_with_a_column_mapping(tmp_path):
    # W&B history export: one row per wandb.log call, val and train rows interleaved, blanks
    text = ("_step,_runtime,iter,lr,train/loss,val/loss\n"
            "0,1.0,0,,,10.5\n"
            "1,2.0,50,0.001,6.0,\n"
            "2,3.0,100,0.002,5.0,\n"
            "3,4.0,100,,,5.2\n"
            "4,5.0,150,0.001,4.5,\n"
            "5,5.5,,,,\n"
            "6,6.0,200,0.0,4.0,4.1\n")
    p = _write(tmp_path, "wandb_export.csv", text)
    c = L.load_curve(p, step="iter", lr="lr", loss="val/loss")
    assert c.meta["format"] == "wandb" and c.meta["loss"] == "val/loss"
    assert c.steps.tolist() == [0, 100, 200] and c.losses.tolist() == [10.5, 5.2, 4.1]
    assert len(c.lrs) == 201 and c.lrs[100] == 0.002 and c.lrs[125] == pytest.approx(0.0015)
    assert c.lrs[0] == 0.001                         # before the first logged LR: held constant
    t = L.load_curve(p, step="iter", loss="train/loss")
    assert t.steps.tolist() == [50, 100, 150, 200] and t.losses.tolist() == [6.0, 5.0, 4.5, 4.0]
    # W&B's own counter as the step: another curve (the user asked for it)
    u = L.load_curve(p, step="_step", loss="train/loss")
    assert u.steps.tolist() == [1, 2, 4, 6]
    with pytest.raises(ValueError, match=r"wandb_export\.csv: line 1: no column 'val_loss' for the loss"):
        L.load_curve(p, step="iter", loss="val_loss")


def test_wandb_jsonl_and_bad_rows_name_the_line(tmp_path):
    rows = [{"_step": 0, "iter": 0, "val/loss": 9.0}, {"_step": 1, "iter": 10, "lr": 0.1, "loss": 3.0},
            {"_step": 2, "iter": 20, "lr": 0.1, "val/loss": "x"}]
    p = _write(tmp_path, "hist.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(ValueError, match=r"hist\.jsonl: line 3: loss='x' is not a number"):
        L.load_curve(p, step="iter", loss="val/loss")
    rows[2]["val/loss"] = 2.0
    p = _write(tmp_path, "hist.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    c = L.load_curve(p, step="iter", loss="val/loss")
    assert c.steps.tolist() == [0, 20] and c.meta["format"] == "wandb"


# ------------------------------------------------------------------ issue 11: files that broke load_curve


def test_non_utf8_file_names_file_and_line(tmp_path):
    p = tmp_path / "latin1.csv"
    p.write_bytes("step,lr,loss\n0,0.1,1.0\n1,0.1,0.9 # caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.csv: line 3: not UTF-8 text \(byte 0xe9"):
        L.load_curve(p)


def test_byte_order_mark_is_accepted(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbfstep,lr,loss\n0,0.1,2.0\n1,0.1,1.5\n")
    c = L.load_curve(p)
    assert c.steps.tolist() == [0, 1] and c.losses.tolist() == [2.0, 1.5]
    j = tmp_path / "bom.json"
    j.write_bytes(b"\xef\xbb\xbf" + L.real_curves()[0].read_bytes())
    assert len(L.load_curve(j).steps) == len(L.load_curve(L.real_curves()[0]).steps)


def test_directory_is_an_error_naming_it(tmp_path):
    d = tmp_path / "logs.csv"
    d.mkdir()
    with pytest.raises(ValueError, match=r"logs\.csv: is a directory"):
        L.load_curve(d)


@pytest.mark.parametrize("step", ["1e12", "100000000"])
def test_huge_step_is_refused_before_allocating(tmp_path, step):
    # a 2-row CSV with step 1e8 used to allocate 2.5 GB; 1e12 raised MemoryError
    p = _write(tmp_path, "huge.csv", f"step,lr,loss\n0,0.1,3.0\n{step},0.1,2.0\n")
    with pytest.raises(ValueError, match=r"huge\.csv: line 3: step=.* is beyond max_steps=10,000,000"):
        L.load_curve(p)
    if step == "100000000":
        with pytest.raises(ValueError, match="max_steps"):
            L.load_curve(p, max_steps=0)


def test_huge_iterations_in_a_json_config_is_refused(tmp_path):
    d = json.loads(L.real_curves()[0].read_text())
    d["config"]["iterations"] = 10**12
    with pytest.raises(ValueError, match=r"big\.json: config\.iterations: step=.* beyond max_steps"):
        L.load_curve(_write(tmp_path, "big.json", json.dumps(d)))
