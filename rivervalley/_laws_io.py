"""Reading real training logs for the loss-curve laws (private; re-exported by rivervalley.laws)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data" / "real_curves"

_STEP = ("step", "iter", "iteration")
_LR = ("lr", "learning_rate", "train_lr")
_LOSS = ("loss", "val_loss", "train_loss")


class Curve(NamedTuple):
    """A loss curve.

    Attributes:
      steps: sorted unique steps (int64) at which ``losses`` were measured.
      lrs: LR of every step ``0 .. T-1`` (float64), ``T >= steps[-1] + 1`` (reconstructed from the
        config for the JSON logs; for CSV / JSON-lines the logged LRs, linearly interpolated between
        logged steps and held constant outside them when not every step was logged).
      losses: the losses at ``steps`` (float64).
      meta: source file, format, which loss, the config, the logged LRs (``logged_lr_steps``,
        ``logged_lr``), the train curve of a JSON log (``train_steps``, ``train_losses``), ...
    """
    steps: np.ndarray
    lrs: np.ndarray
    losses: np.ndarray
    meta: dict


def real_curves() -> list[Path]:
    """Paths of the shipped real loss curves (124M Llama-style model, Schaipp et al. 2025, MIT).

    >>> len(real_curves()), real_curves()[0].name[:10]
    (21, 'ann124-0.1')
    """
    return sorted(DATA_DIR.glob("*.json"))


def _dedup_sorted(steps: np.ndarray, *cols: np.ndarray):
    """Sort by step keeping the LAST occurrence of a repeated step (a resumed run overwrites)."""
    steps = np.asarray(steps)
    n = len(steps)
    rev = steps[::-1]
    _, idx_rev = np.unique(rev, return_index=True)         # first occurrence in reversed = last
    idx = n - 1 - idx_rev                                    # sorted by step (np.unique sorts)
    return (steps[idx],) + tuple(np.asarray(c)[idx] for c in cols)


def _num(path: Path, where: str, name: str, raw: Any) -> float:
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"{path}: {where}: {name}={raw!r} is not a number")
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {where}: {name}={raw!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{path}: {where}: {name} is {raw!r} (NaN/inf not allowed)")
    return v


def _step(path: Path, where: str, raw: Any) -> int:
    v = _num(path, where, "step", raw)
    if v < 0 or v != int(v):
        raise ValueError(f"{path}: {where}: step={raw!r} is not a whole number >= 0")
    return int(v)


def _pick(path: Path, where: str, keys, options, what: str) -> str:
    for o in options:
        if o in keys:
            return o
    raise ValueError(f"{path}: {where}: missing column {what!r} (accepted names: {', '.join(options)}; "
                     f"found: {', '.join(map(str, keys)) or 'none'})")


def _table_curve(path: Path, rows: list[tuple[int, dict]], fmt: str, header_line: int | None = None) -> Curve:
    if not rows:
        raise ValueError(f"{path}: line 1: no data rows (need columns step, lr, loss)")
    steps, lrs, losses = [], [], []
    line0, keys0 = rows[0]
    hl = f"line {header_line if header_line is not None else line0}"
    k_step = _pick(path, hl, keys0, _STEP, "step")
    k_lr = _pick(path, hl, keys0, _LR, "lr")
    k_loss = _pick(path, hl, keys0, _LOSS, "loss")
    for line, row in rows:
        where = f"line {line}"
        for k, what in ((k_step, "step"), (k_lr, "lr"), (k_loss, "loss")):
            if k not in row or row[k] in (None, ""):
                raise ValueError(f"{path}: {where}: missing {what} ({k!r})")
        steps.append(_step(path, where, row[k_step]))
        lr = _num(path, where, "lr", row[k_lr])
        if lr < 0:
            raise ValueError(f"{path}: {where}: lr={lr} is negative")
        lrs.append(lr)
        losses.append(_num(path, where, "loss", row[k_loss]))
    s, lr, y = _dedup_sorted(np.asarray(steps, np.int64), np.asarray(lrs), np.asarray(losses))
    T = int(s[-1]) + 1
    complete = len(s) == T
    full = lr if complete else np.interp(np.arange(T), s, lr)
    meta = {"path": str(path), "format": fmt, "loss": k_loss, "logged_lr_steps": s,
            "logged_lr": lr, "lr_interpolated": not complete}
    return Curve(s, np.asarray(full, np.float64), y, meta)


def _read_csv(path: Path) -> Curve:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: line 1: empty file (need a header step,lr,loss)") from None
        header = [h.strip() for h in header]
        rows = []
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            line = reader.line_num
            if len(cells) != len(header):
                raise ValueError(f"{path}: line {line}: {len(cells)} fields, header has {len(header)}")
            rows.append((line, {h: c.strip() for h, c in zip(header, cells)}))
    if not rows:
        _pick(path, "line 1", header, _STEP, "step")
        _pick(path, "line 1", header, _LR, "lr")
        _pick(path, "line 1", header, _LOSS, "loss")
    return _table_curve(path, rows, "csv", header_line=1)


def _read_jsonl(path: Path) -> Curve:
    rows = []
    with open(path) as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: line {line}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{path}: line {line}: expected an object with step, lr, loss")
            rows.append((line, obj))
    return _table_curve(path, rows, "jsonl")


def reconstruct_lr(config: dict, num_steps: int) -> np.ndarray:
    """Per-step LR of a run of the Schaipp et al. logs from its config (float64, steps 0..num_steps-1).

    Their WSD: warmup ``eta = lr * (t/W + (1 - t/W) / 100)`` for ``t < W`` (from ``lr / 100``, not
    from 0), ``lr`` until ``T - D`` with ``D = int(wsd_fract_decay * T)``, then the decay
    ``linear`` / ``sqrt`` (= our ``1-sqrt``) to ``wsd_final_lr_scale * lr`` at ``T``, that value
    after ``T``. The stable and decay parts come from :func:`rivervalley.schedules.wsd`
    (``constant`` when the decay fraction is 0); the warmup is overwritten with the formula above.

    >>> cfg = {"lr": 1e-3, "iterations": 100, "warmup_steps": 10, "wsd_fract_decay": 0.2,
    ...        "decay_type": "linear", "scheduler": "wsd"}
    >>> [round(float(x), 6) for x in reconstruct_lr(cfg, 101)[[0, 5, 10, 80, 90, 100]]]
    [1e-05, 0.000505, 0.001, 0.001, 0.0005, 0.0]
    """
    import jax
    import jax.numpy as jnp

    from rivervalley import schedules

    if config.get("scheduler", "wsd") != "wsd":
        raise ValueError(f"scheduler={config.get('scheduler')!r}: only 'wsd' logs can be reconstructed")
    peak = float(config["lr"])
    T = int(config["iterations"])
    W = int(config.get("warmup_steps", 0))
    frac = float(config.get("wsd_fract_decay", 0.0))
    final = float(config.get("wsd_final_lr_scale", 0.0))
    shape = {"linear": "linear", "sqrt": "1-sqrt", "1-sqrt": "1-sqrt", "cosine": "cosine"}.get(
        str(config.get("decay_type", "linear")))
    if shape is None:
        raise ValueError(f"decay_type={config.get('decay_type')!r} is not one of linear, sqrt, cosine")
    if frac > 0:
        sched = schedules.wsd(peak, T, warmup_steps=0, decay=int(frac * T), decay_shape=shape,
                              min_ratio=final)
    else:
        sched = schedules.constant(peak)
    t = np.arange(num_steps)
    with jax.enable_x64(True):
        lr = np.array(sched(jnp.asarray(np.minimum(t, T), dtype=jnp.float64)), np.float64)
    if frac <= 0:
        lr = np.where(t >= T, final * peak, lr)
    w = t < W
    lr[w] = peak * (t[w] / W + (1 - t[w] / W) / 100.0)
    return lr


def _json_list(path: Path, obj: dict, where: str, key: str) -> list:
    if key not in obj:
        raise ValueError(f"{path}: {where}: missing column {key!r} (found: {', '.join(obj)})")
    v = obj[key]
    if not isinstance(v, list):
        raise ValueError(f"{path}: {where}.{key}: expected a list")
    return v


def _read_json(path: Path, loss: str) -> Curve:
    text = Path(path).read_text()
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(d, dict) or "history" not in d or "config" not in d:
        raise ValueError(f"{path}: line 1: expected an object with 'config' and 'history'")
    hist, cfg = d["history"], d["config"]

    def series(section: str, ycol: str, extra: str | None = None):
        if section not in hist or not isinstance(hist[section], dict):
            raise ValueError(f"{path}: history: missing section {section!r}")
        sec = hist[section]
        it = _json_list(path, sec, f"history.{section}", "iter")
        ys = _json_list(path, sec, f"history.{section}", ycol)
        ex = _json_list(path, sec, f"history.{section}", extra) if extra else None
        if len(ys) != len(it) or (ex is not None and len(ex) != len(it)):
            raise ValueError(f"{path}: history.{section}: columns have different lengths")
        s = np.array([_step(path, f"history.{section}.iter[{i}]", v) for i, v in enumerate(it)], np.int64)
        y = np.array([_num(path, f"history.{section}.{ycol}[{i}]", ycol, v) for i, v in enumerate(ys)])
        e = (np.array([_num(path, f"history.{section}.{extra}[{i}]", extra, v) for i, v in enumerate(ex)])
             if ex is not None else np.zeros(len(s)))
        if len(s) == 0:
            raise ValueError(f"{path}: history.{section}: no entries")
        return _dedup_sorted(s, y, e)

    if loss not in ("val", "train"):
        raise ValueError(f"loss={loss!r} is not 'val' or 'train'")
    ts, tl, tlr = series("train", "train_loss", "train_lr")
    if loss == "val":
        s, y, _ = series("val", "val_loss")
    else:
        s, y = ts, tl
    for k in ("lr", "iterations"):
        if k not in cfg:
            raise ValueError(f"{path}: config: missing {k!r}")
    T = max(int(cfg["iterations"]), int(s[-1]) + 1)
    lrs = reconstruct_lr(cfg, T)
    meta = {"path": str(path), "name": Path(path).stem, "format": "json", "loss": loss,
            "config": cfg, "logged_lr_steps": ts, "logged_lr": tlr,
            "train_steps": ts, "train_losses": tl, "lr_interpolated": False}
    fv = hist.get("final-val")
    if isinstance(fv, dict) and fv.get("final_val_loss"):
        meta["final_val_loss"] = float(fv["final_val_loss"][-1])
    return Curve(s, lrs, y, meta)


def load_curve(path: str | Path, *, loss: str = "val") -> Curve:
    """Read a loss curve: the shipped JSON logs, or CSV / JSON-lines files of (step, lr, loss).

    Repeated steps (a resumed run) keep their LAST occurrence; the result is sorted by step. A bad
    file (missing column, NaN, non-numeric entry) raises ``ValueError`` naming the file and the line
    (CSV / JSON-lines) or the entry (JSON). For the JSON logs the per-step LR is reconstructed from
    the config with :func:`reconstruct_lr`; the logged ``train_lr`` stays in ``meta``.

    Args:
      path: a ``.json`` log (Schaipp et al. format), ``.csv`` (header with step, lr, loss) or
        ``.jsonl`` (one object per line).
      loss: for JSON logs, ``"val"`` (default; every 200 steps, ~1e-3 noise) or ``"train"``
        (every 50 steps but ~0.1 batch noise).

    >>> c = load_curve(real_curves()[-3])
    >>> int(c.steps[-1]), len(c.lrs), round(float(c.lrs[1000]), 6)
    (49800, 50000, 0.001)
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"path={str(path)!r} does not exist")
    suf = path.suffix.lower()
    if suf == ".json":
        return _read_json(path, loss)
    if suf == ".csv":
        return _read_csv(path)
    if suf in (".jsonl", ".ndjson"):
        return _read_jsonl(path)
    raise ValueError(f"path={str(path)!r}: unknown format {suf!r} (use .json, .csv or .jsonl)")


def glue(main: Curve, branch: Curve) -> Curve:
    """A cooldown branch glued to the prefix of the main run it was forked from.

    Keeps ``main``'s points before ``branch``'s first step, then ``branch``'s points; the LRs are
    ``branch.lrs`` (its full schedule). Raises if the two schedules disagree before the branch's
    first logged step.
    """
    first = int(branch.steps[0])
    n = min(first, len(main.lrs), len(branch.lrs))
    if not np.allclose(main.lrs[:n], branch.lrs[:n], rtol=1e-9, atol=0):
        raise ValueError("main and branch schedules differ before the branch's first step")
    keep = main.steps < first
    meta = dict(branch.meta)
    meta["glued_from"] = main.meta.get("path")
    meta["fork_data_step"] = first
    return Curve(np.concatenate([main.steps[keep], branch.steps]), branch.lrs,
                 np.concatenate([main.losses[keep], branch.losses]), meta)
