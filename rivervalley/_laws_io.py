"""Reading real training logs for the loss-curve laws (private; re-exported by rivervalley.laws).

Three kinds of file, one result (:class:`Curve`):

- **JSON logs** of the Schaipp et al. / Hägele et al. training code (epfml/schedules-and-scaling;
  the shipped curves): ``config`` + ``history``. The per-step LR is rebuilt from the config with the
  training code's own formulas (:func:`reconstruct_lr`) and **checked against the logged
  ``train_lr``**: a relative disagreement above ``1e-6`` at any logged step is an error naming the
  file, the step and both values (a config that does not describe the run is never used silently).
- **CSV / JSON-lines** tables of ``(step, lr, loss)``, one row per logged step. Semantics (the
  convention of this package and of PyTorch / HF loops that log after ``scheduler.step()``):
  ``loss`` at ``step`` t is the loss of the weights after t updates; ``lr`` at ``step`` t is the
  LR **used by update t** (the update that turns the weights of step t into those of step t + 1).
  Between logged steps the LR is interpolated linearly, outside them held constant
  (``meta["lr_interpolated"]`` says when that happened).
- **W&B-style exports** (``format="wandb"``, or a CSV / JSON-lines file with a ``_step`` column):
  sparse rows, one per ``wandb.log`` call, where a row may carry the LR and not the loss (or the
  reverse). An empty cell means "not logged in this row"; the LR is taken from the rows that have
  one and the loss from the rows that have one. Which column is the step, the LR and the loss is
  given by keyword arguments (``step="iter", lr="lr", loss="val/loss"``); ``_step`` is W&B's own
  counter of log calls, which is the training step only if the loop logs once per step.

Repeated steps (a resumed run) keep their LAST occurrence; the result is sorted by step. A bad file
(missing column, NaN, a non-number, a non-UTF-8 byte, a directory, a step beyond ``max_steps``)
raises ``ValueError`` naming the file and the line (tables) or the entry (JSON). A UTF-8 byte-order
mark is accepted.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data" / "real_curves"

#: Accepted column names, tried in this order, when no mapping is given.
STEP_NAMES = ("step", "iter", "iteration", "global_step", "trainer/global_step", "_step")
LR_NAMES = ("lr", "learning_rate", "train_lr", "train/lr", "train/learning_rate")
LOSS_NAMES = ("loss", "val_loss", "train_loss", "val/loss", "eval/loss", "train/loss")

#: Default largest curve length (steps) :func:`load_curve` builds a per-step LR array for
#: (80 MB of float64); pass ``max_steps=`` to go further.
MAX_STEPS = 10_000_000

#: Relative tolerance of the config-vs-logged-LR check of the JSON logs.
LR_CHECK_RTOL = 1e-6

#: :func:`glue`: the main run's and the branch's LRs before the fork must agree to this relative
#: tolerance (far above the rounding of one float64 reconstruction, far below any real difference
#: between two schedules).
GLUE_RTOL = 1e-9


class Curve(NamedTuple):
    """A loss curve.

    Attributes:
      steps: sorted unique steps (int64) at which ``losses`` were measured.
      lrs: LR of every step ``0 .. T-1`` (float64), ``T >= steps[-1] + 1`` (reconstructed from the
        config for the JSON logs; for tables the logged LRs, linearly interpolated between
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
    (45, 'ann124-0.1')
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
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{path}: {where}: {name}={raw!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{path}: {where}: {name} is {raw!r} (NaN/inf not allowed)")
    return v


def _step(path: Path, where: str, raw: Any, max_steps: int) -> int:
    v = _num(path, where, "step", raw)
    if v < 0 or v != int(v):
        raise ValueError(f"{path}: {where}: step={raw!r} is not a whole number >= 0")
    if v >= max_steps:
        raise ValueError(f"{path}: {where}: step={raw!r} is beyond max_steps={max_steps:,} (the "
                         f"curve would hold {int(v) + 1:,} per-step LRs; pass max_steps= to allow it)")
    return int(v)


def _read_text(path: Path) -> str:
    """The file as text: UTF-8 (a byte-order mark is dropped); a bad byte names its line."""
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a log file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror or e})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[e.start]:02x} at "
                         f"offset {e.start}); save the log as UTF-8") from None


def _pick(path: Path, where: str, keys, wanted: str | None, options, what: str) -> str:
    if wanted is not None:
        if wanted in keys:
            return wanted
        raise ValueError(f"{path}: {where}: no column {wanted!r} for the {what} (found: "
                         f"{', '.join(map(str, keys)) or 'none'})")
    for o in options:
        if o in keys:
            return o
    raise ValueError(f"{path}: {where}: missing column {what!r} (accepted names: {', '.join(options)}; "
                     f"found: {', '.join(map(str, keys)) or 'none'}; or name it with {what}=...)")


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip() == "")


def _table_curve(path: Path, rows: list[tuple[int, dict]], fmt: str, keys: list, *, step, lr, loss,
                 sparse: bool, max_steps: int, header_line: int | None = None) -> Curve:
    hl = f"line {header_line if header_line is not None else (rows[0][0] if rows else 1)}"
    k_step = _pick(path, hl, keys, step, STEP_NAMES, "step")
    k_lr = _pick(path, hl, keys, lr, LR_NAMES, "lr")
    k_loss = _pick(path, hl, keys, loss, LOSS_NAMES, "loss")
    if not rows:
        raise ValueError(f"{path}: {hl}: no data rows (need columns step, lr, loss)")
    ls, lv, ys, yv = [], [], [], []                       # LR steps / values, loss steps / values
    for line, row in rows:
        where = f"line {line}"
        if _blank(row.get(k_step)):
            if sparse and all(_blank(row.get(k)) for k in (k_lr, k_loss)):
                continue                                   # a W&B row of other metrics
            raise ValueError(f"{path}: {where}: missing step ({k_step!r})")
        have_lr, have_loss = not _blank(row.get(k_lr)), not _blank(row.get(k_loss))
        if not sparse:
            for have, k, what in ((have_lr, k_lr, "lr"), (have_loss, k_loss, "loss")):
                if not have:
                    raise ValueError(f"{path}: {where}: missing {what} ({k!r})")
        if not (have_lr or have_loss):
            continue
        s = _step(path, where, row[k_step], max_steps)
        if have_lr:
            v = _num(path, where, "lr", row[k_lr])
            if v < 0:
                raise ValueError(f"{path}: {where}: lr={v} is negative")
            ls.append(s)
            lv.append(v)
        if have_loss:
            ys.append(s)
            yv.append(_num(path, where, "loss", row[k_loss]))
    if not ys:
        raise ValueError(f"{path}: no row has a loss ({k_loss!r})")
    if not ls:
        raise ValueError(f"{path}: no row has a learning rate ({k_lr!r})")
    s_lr, v_lr = _dedup_sorted(np.asarray(ls, np.int64), np.asarray(lv, np.float64))
    s, y = _dedup_sorted(np.asarray(ys, np.int64), np.asarray(yv, np.float64))
    T = int(max(s[-1], s_lr[-1])) + 1
    complete = len(s_lr) == T
    full = v_lr if complete else np.interp(np.arange(T, dtype=np.float64), s_lr, v_lr)
    meta = {"path": str(path), "name": path.stem, "format": fmt, "loss": k_loss, "step": k_step,
            "lr": k_lr, "logged_lr_steps": s_lr, "logged_lr": v_lr, "lr_interpolated": not complete}
    return Curve(s, np.asarray(full, np.float64), y, meta)


def _read_csv(path: Path, *, step, lr, loss, sparse, max_steps) -> Curve:
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"{path}: line 1: empty file (need a header step,lr,loss)") from None
    except csv.Error as e:
        raise ValueError(f"{path}: line 1: not valid CSV ({e})") from None
    header = [h.strip() for h in header]
    if sparse is None:
        sparse = "_step" in header
    rows = []
    try:
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            line = reader.line_num
            if len(cells) != len(header):
                raise ValueError(f"{path}: line {line}: {len(cells)} fields, header has {len(header)}")
            rows.append((line, {h: c.strip() for h, c in zip(header, cells)}))
    except csv.Error as e:
        raise ValueError(f"{path}: line {reader.line_num}: not valid CSV ({e})") from None
    return _table_curve(path, rows, "wandb" if sparse else "csv", header, step=step, lr=lr, loss=loss,
                        sparse=sparse, max_steps=max_steps, header_line=1)


def _read_jsonl(path: Path, *, step, lr, loss, sparse, max_steps) -> Curve:
    rows, keys = [], {}
    for line, text in enumerate(_read_text(path).splitlines(), start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: line {line}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{path}: line {line}: expected an object with step, lr, loss")
        rows.append((line, obj))
        keys.update(dict.fromkeys(obj))
    if sparse is None:
        sparse = "_step" in keys
    if not sparse and rows:
        keys = list(rows[0][1])                # a dense file: its first row names the columns
    return _table_curve(path, rows, "wandb" if sparse else "jsonl", list(keys), step=step, lr=lr,
                        loss=loss, sparse=sparse, max_steps=max_steps)


# --------------------------------------------------------------------------------------------
# the JSON logs of epfml/schedules-and-scaling (Hägele et al. 2024; Schaipp et al. 2025)
# --------------------------------------------------------------------------------------------

_WSD_DECAYS = ("linear", "sqrt", "1-sqrt", "cosine", "square", "exp", "miror_cosine")


def reconstruct_lr(config: dict, num_steps: int) -> np.ndarray:
    """Per-step LR of a run of the Schaipp et al. logs from its config (float64, steps 0..num_steps-1).

    The formulas are those of the training code (epfml/schedules-and-scaling, ``src/main.py`` and
    ``src/optim/utils.py``); ``lr[t]`` is the LR of update ``t`` (the value the logs record as
    ``train_lr`` at ``iter = t``, after ``t`` calls of ``scheduler.step()``). ``W`` =
    ``warmup_steps``, ``T`` = ``iterations``, ``p`` = ``lr``:

    - ``scheduler: wsd`` (``LambdaLR(wsd_schedule)``): warmup ``p (t/W + (1 - t/W) / 100)`` for
      ``t < W`` (from ``p / 100``, not from 0), ``p`` until ``T - D`` with ``D = int(wsd_fract_decay
      * T)``, then the decay ``decay_type`` (``linear``, ``sqrt`` = our ``1-sqrt``, ``cosine``,
      ``square``, ``exp``, ``miror_cosine``) to ``wsd_final_lr_scale * p`` at ``T``, that value
      after ``T``. ``wsd_fract_decay = 0`` is the constant-LR run.
    - ``scheduler: cos`` / ``linear`` (``torch.optim.lr_scheduler.OneCycleLR`` with
      ``div_factor=1e2, final_div_factor=0.1``): from ``p / 100`` up to ``p`` at step
      ``e1 = W/T*T - 1``, then down to the floor ``p / 100 / 0.1 = p / 10`` at step ``T - 1``, both
      legs cosine (``cos``: ``end + (start - end) (1 + cos(pi r)) / 2``) or linear, with progress
      ``r = t / e1`` and ``(t - e1) / (T - 1 - e1)`` (not clipped at step ``T``, which no update
      uses, exactly as torch; the floor after ``T``). That code ignores
      ``cos_final_lr`` (``-1`` in the shipped configs; the logged ``train_lr`` shows the 10% floor);
      a positive ``cos_final_lr`` is taken as the floor LR itself (a later version's convention),
      and :func:`load_curve` checks either reading against the logged LRs.
    - ``scheduler: none``: constant ``p``.

    >>> cfg = {"lr": 1e-3, "iterations": 100, "warmup_steps": 10, "wsd_fract_decay": 0.2,
    ...        "decay_type": "linear", "scheduler": "wsd"}
    >>> [round(float(x), 6) for x in reconstruct_lr(cfg, 101)[[0, 5, 10, 80, 90, 100]]]
    [1e-05, 0.000505, 0.001, 0.001, 0.0005, 0.0]
    >>> cos = {"lr": 1e-3, "iterations": 100, "warmup_steps": 11, "scheduler": "cos", "cos_final_lr": -1}
    >>> [round(float(x), 6) for x in reconstruct_lr(cos, 100)[[0, 10, 99]]]
    [1e-05, 0.001, 0.0001]
    """
    sched = str(config.get("scheduler", "wsd"))
    try:
        peak = float(config["lr"])
        T = int(config["iterations"])
        W = int(config.get("warmup_steps", 0))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"config: lr, iterations and warmup_steps must be numbers ({e})") from None
    if not (math.isfinite(peak) and peak >= 0) or T < 1 or not 0 <= W < T:
        raise ValueError(f"config: lr={peak}, iterations={T}, warmup_steps={W} is not a schedule "
                         "(need lr >= 0, iterations >= 1, 0 <= warmup_steps < iterations)")
    t = np.arange(int(num_steps), dtype=np.float64)
    if sched == "none":
        return np.full(t.shape, peak)
    if sched == "wsd":
        return peak * _wsd_factor(config, t, T, W)
    if sched in ("cos", "linear"):
        floor = float(config.get("cos_final_lr", -1))
        lo = floor if floor > 0 else peak / 1e2 / 0.1
        start = peak / 1e2
        e1 = float(W / T * T) - 1                      # OneCycleLR: float(pct_start * total_steps) - 1
        e2 = float(T - 1)

        def anneal(a, b, r):
            if sched == "cos":
                return b + (a - b) / 2.0 * (np.cos(np.pi * r) + 1)
            return (b - a) * r + a

        with np.errstate(divide="ignore", invalid="ignore"):
            up = anneal(start, peak, t / e1) if e1 > 0 else np.full(t.shape, peak)
            # as torch: no clipping up to step T (T is never used by an update), the floor after
            down = anneal(peak, lo, (np.minimum(t, T) - e1) / (e2 - e1))
        return np.where(t <= e1, up, np.where(t > T, lo, down))
    raise ValueError(f"config: scheduler={sched!r} is not one of wsd, cos, linear, none")


def _wsd_factor(config: dict, t: np.ndarray, T: int, W: int) -> np.ndarray:
    frac = float(config.get("wsd_fract_decay", 0.0))
    final = float(config.get("wsd_final_lr_scale", 0.0))
    kind = str(config.get("decay_type", "linear"))
    if kind not in _WSD_DECAYS:
        raise ValueError(f"decay_type={config.get('decay_type')!r} is not one of "
                         f"{', '.join(_WSD_DECAYS)}")
    D = int(frac * T)
    hold = T - D
    f = np.ones_like(t)
    if D > 0:
        r = np.clip((t - hold) / D, 0.0, 1.0)
        lin = final + (1 - final) * (1 - r)
        cos = final + (1 - final) * (1 + np.cos(np.pi * r)) * 0.5
        dec = {"linear": lambda: lin, "cosine": lambda: cos, "miror_cosine": lambda: 2 * lin - cos,
               "square": lambda: final + (1 - final) * (1 - r ** 2),
               "sqrt": lambda: final + (1 - final) * (1 - np.sqrt(r)),
               "1-sqrt": lambda: final + (1 - final) * (1 - np.sqrt(r)),
               "exp": lambda: np.power(final, r)}[kind]()
        f = np.where(t >= hold, dec, f)
    f = np.where(t >= T, final, f)
    if W > 0:
        f = np.where(t < W, t / W + (1 - t / W) / 100.0, f)
    return f


def _json_list(path: Path, obj: dict, where: str, key: str) -> list:
    if key not in obj:
        raise ValueError(f"{path}: {where}: missing column {key!r} (found: {', '.join(obj)})")
    v = obj[key]
    if not isinstance(v, list):
        raise ValueError(f"{path}: {where}.{key}: expected a list")
    return v


def _read_json(path: Path, loss: str, max_steps: int) -> Curve:
    text = _read_text(path)
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(d, dict) or "history" not in d or "config" not in d:
        raise ValueError(f"{path}: line 1: expected an object with 'config' and 'history'")
    hist, cfg = d["history"], d["config"]
    if not isinstance(hist, dict) or not isinstance(cfg, dict):
        raise ValueError(f"{path}: line 1: 'config' and 'history' must be objects")

    def series(section: str, ycol: str, extra: str | None = None):
        if section not in hist or not isinstance(hist[section], dict):
            raise ValueError(f"{path}: history: missing section {section!r}")
        sec = hist[section]
        it = _json_list(path, sec, f"history.{section}", "iter")
        ys = _json_list(path, sec, f"history.{section}", ycol)
        ex = _json_list(path, sec, f"history.{section}", extra) if extra else None
        if len(ys) != len(it) or (ex is not None and len(ex) != len(it)):
            raise ValueError(f"{path}: history.{section}: columns have different lengths")
        if len(it) == 0:
            raise ValueError(f"{path}: history.{section}: no entries")
        s = np.array([_step(path, f"history.{section}.iter[{i}]", v, max_steps)
                      for i, v in enumerate(it)], np.int64)
        y = np.array([_num(path, f"history.{section}.{ycol}[{i}]", ycol, v) for i, v in enumerate(ys)])
        e = (np.array([_num(path, f"history.{section}.{extra}[{i}]", extra, v) for i, v in enumerate(ex)])
             if ex is not None else np.zeros(len(s)))
        return _dedup_sorted(s, y, e)

    if loss not in ("val", "train"):
        raise ValueError(f"loss={loss!r} is not 'val' or 'train' (the two losses of a JSON log)")
    ts, tl, tlr = series("train", "train_loss", "train_lr")
    if loss == "val":
        s, y, _ = series("val", "val_loss")
    else:
        s, y = ts, tl
    for k in ("lr", "iterations"):
        if k not in cfg:
            raise ValueError(f"{path}: config: missing {k!r}")
    iters = _step(path, "config.iterations", cfg["iterations"], max_steps)
    T = max(iters, int(s[-1]) + 1)
    try:
        lrs_all = reconstruct_lr(cfg, max(T, int(ts[-1]) + 1))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    rec = lrs_all[ts]
    # relative difference; 0 where both are 0 (the floor only keeps 0 / 0 out)
    rel = np.abs(rec - tlr) / np.maximum(np.maximum(np.abs(rec), np.abs(tlr)), np.finfo(np.float64).tiny)
    bad = rel > LR_CHECK_RTOL
    if np.any(bad):
        i = int(np.argmax(rel))
        keys = ("scheduler", "lr", "iterations", "warmup_steps", "wsd_fract_decay", "decay_type",
                "wsd_final_lr_scale", "cos_final_lr")
        desc = ", ".join(f"{k}={cfg[k]!r}" for k in keys if k in cfg)
        raise ValueError(
            f"{path}: the config ({desc}) disagrees with the logged train_lr at iter {int(ts[i])}: "
            f"reconstructed {rec[i]:.9g}, logged {tlr[i]:.9g} (relative difference "
            f"{rel[i]:.2e} > {LR_CHECK_RTOL:g}; "
            f"{int(bad.sum())} of {len(ts)} logged steps disagree)")
    lrs = lrs_all[:T]
    sched = str(cfg.get("scheduler", "wsd"))
    family = ("cosine" if sched == "cos" else "linear" if sched == "linear" else
              "constant" if sched == "none" or float(cfg.get("wsd_fract_decay", 0) or 0) == 0 else "wsd")
    meta = {"path": str(path), "name": path.stem, "format": "json", "loss": loss, "config": cfg,
            "family": family, "peak_lr": float(cfg["lr"]), "logged_lr_steps": ts, "logged_lr": tlr,
            "train_steps": ts, "train_losses": tl, "lr_interpolated": False}
    fv = hist.get("final-val")
    if isinstance(fv, dict) and isinstance(fv.get("final_val_loss"), list) and fv["final_val_loss"]:
        meta["final_val_loss"] = _num(path, "history.final-val.final_val_loss[-1]", "final_val_loss",
                                      fv["final_val_loss"][-1])
    return Curve(s, lrs, y, meta)


_FORMATS = ("json", "csv", "jsonl", "wandb")


def load_curve(path: str | Path, *, loss: str | None = None, step: str | None = None,
               lr: str | None = None, format: str | None = None, max_steps: int = MAX_STEPS) -> Curve:
    """Read a loss curve: the shipped JSON logs, CSV / JSON-lines tables, W&B-style exports.

    See the module docstring of ``rivervalley._laws_io`` for the semantics (``lr`` at step t = the
    LR used by update t; sparse W&B rows; last occurrence of a repeated step wins). For the JSON
    logs the per-step LR is rebuilt from the config with :func:`reconstruct_lr` and checked against
    the logged ``train_lr`` (relative ``1e-6``); it stays in ``meta["logged_lr"]``.

    Args:
      path: a ``.json`` log (Schaipp et al. format), ``.csv`` or ``.jsonl`` / ``.ndjson`` table.
      loss: JSON logs: ``"val"`` (default; every 200 steps, ~1e-3 noise) or ``"train"`` (every 50
        steps, ~0.1 batch noise). Tables: the loss column (default: the first of
        ``LOSS_NAMES`` present).
      step, lr: tables: the step and LR columns (default: the first of ``STEP_NAMES`` /
        ``LR_NAMES`` present). A W&B export's ``_step`` counts log calls: pass ``step="iter"``
        (or your loop's step column) unless it logs once per step.
      format: ``"json"``, ``"csv"``, ``"jsonl"`` or ``"wandb"`` (sparse rows; a CSV, or JSON-lines
        for a ``.jsonl`` path); default: from the suffix, and ``"wandb"`` when a table has a
        ``_step`` column.
      max_steps: refuse curves longer than this many steps (the per-step LR array costs 8 bytes a
        step); default ``MAX_STEPS``.

    >>> c = load_curve(real_curves()[-3])
    >>> int(c.steps[-1]), len(c.lrs), round(float(c.lrs[1000]), 6), c.meta["family"]
    (49800, 50000, 0.001, 'constant')
    """
    path = Path(path)
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps={max_steps!r} is outside the valid range: an integer >= 1")
    if not path.exists():
        raise ValueError(f"path={str(path)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a log file")
    if format is not None and format not in _FORMATS:
        raise ValueError(f"format={format!r} is not one of {', '.join(_FORMATS)}")
    suf = path.suffix.lower()
    fmt = format or {".json": "json", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suf)
    if fmt is None:
        raise ValueError(f"path={str(path)!r}: unknown format {suf!r} (use .json, .csv or .jsonl, "
                         "or pass format=)")
    if fmt == "json":
        if step is not None or lr is not None:
            raise ValueError("step= and lr= name table columns; a JSON log has fixed columns")
        return _read_json(path, "val" if loss is None else loss, int(max_steps))
    sparse = True if fmt == "wandb" else (False if format is not None else None)
    jsonl = fmt == "jsonl" or (fmt == "wandb" and suf in (".jsonl", ".ndjson"))
    reader = _read_jsonl if jsonl else _read_csv
    return reader(path, step=step, lr=lr, loss=loss, sparse=sparse, max_steps=int(max_steps))


def glue(main: Curve, branch: Curve) -> Curve:
    """A cooldown branch glued to the prefix of the main run it was forked from.

    Keeps ``main``'s points before ``branch``'s first step, then ``branch``'s points; the LRs are
    ``branch.lrs`` (its full schedule). Raises if the two schedules disagree before the branch's
    first logged step.
    """
    first = int(branch.steps[0])
    n = min(first, len(main.lrs), len(branch.lrs))
    if not np.allclose(main.lrs[:n], branch.lrs[:n], rtol=GLUE_RTOL, atol=0):
        raise ValueError("main and branch schedules differ before the branch's first step")
    keep = main.steps < first
    meta = dict(branch.meta)
    meta["glued_from"] = main.meta.get("path")
    meta["fork_data_step"] = first
    return Curve(np.concatenate([main.steps[keep], branch.steps]), branch.lrs,
                 np.concatenate([main.losses[keep], branch.losses]), meta)
