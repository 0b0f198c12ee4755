"""``rivervalley laws ...``: from a training log to a fitted law, a prediction and an advice.

    rivervalley laws fit RUN... --law NAME --out params.json     (RUN: a log; several share params)
    rivervalley laws predict params.json --schedule SPEC [--csv OUT.csv] [--plot OUT.png]
    rivervalley laws advise params.json --steps T [--warmup W] [--peak-value LR] [--plot OUT.png]
    rivervalley laws validate [--laws a,b] [--anchors 1e-3,2e-3] [--json OUT.json]

A RUN is any file :func:`rivervalley.laws.load_curve` reads (the shipped JSON logs, CSV /
JSON-lines with step, lr, loss, W&B exports; ``--step``, ``--lr``, ``--loss`` name the columns).
SPEC is one string such as ``wsd:peak=1e-3,steps=50000,decay=0.2,shape=1-sqrt``,
``cosine:peak=1e-3,steps=50000,min_ratio=0.1`` or
``wsd_s:peak=1e-3,checkpoints=12500/26250/53750,decay=0.1`` (see
:func:`rivervalley.laws.schedule_from_spec`). Every file is written atomically (a temporary file
in the same folder, then ``os.replace``). Bad arguments (an unknown law, a bad SPEC, a missing or
unreadable file) are one line on stderr and exit status 2; fits that take more than a second show
a progress bar on a terminal.

The module exposes ``add_parser(subparsers)`` / ``add_arguments(parser)`` and ``run(args)`` for
``rivervalley.cli``, and ``main(argv)`` to run it on its own (``python -m rivervalley.laws_cli``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from rivervalley._atomic import write_atomic
from rivervalley._laws_advice import BASELINE_DECAY

#: params.json format version.
FORMAT = 1
#: ``fit --min-step`` defaults to this fraction of the longest run (the first steps are a transient).
DEFAULT_MIN_STEP_FRACTION = 0.02
#: A run's warmup ends at the first step whose LR reaches this fraction of its peak.
_WARMUP_END = 0.999
#: ``predict`` notes a warmup that differs from the fitted runs' by more than this many steps
#: and this fraction of theirs.
_WARMUP_NOTE_STEPS, _WARMUP_NOTE_FRACTION = 10, 0.1
#: The loss panels of the plots leave out this first fraction of the run (the loss falls from
#: far above) and clip at this percentile, with this margin of the range either side.
_PLOT_SKIP_FRACTION, _PLOT_TOP_PERCENTILE, _PLOT_MARGIN = 0.1, 95, 0.05
#: Resolution of the written figures.
_PLOT_DPI = 120


def _usage(msg: str):
    from rivervalley.cli import UsageError

    return UsageError(msg)


# --------------------------------------------------------------------------------------------
# arguments
# --------------------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the ``laws`` sub-commands on ``p`` (the ``rivervalley laws`` parser)."""
    from rivervalley import laws as L

    sub = p.add_subparsers(dest="laws_command", required=True, metavar="{fit,predict,advise,validate}")
    f = sub.add_parser("fit", help="fit a law to one or more training logs")
    f.add_argument("runs", nargs="+", metavar="RUN", help="training logs (.json, .csv, .jsonl)")
    f.add_argument("--law", required=True, help=f"one of {', '.join(L.LAWS)}")
    f.add_argument("--out", required=True, metavar="PARAMS.json", help="where to write the fit")
    f.add_argument("--loss", default=None,
                   help="JSON logs: val (default) or train; tables: the loss column")
    f.add_argument("--step", default=None, help="tables: the step column")
    f.add_argument("--lr", default=None, help="tables: the learning-rate column")
    f.add_argument("--format", default=None, choices=("json", "csv", "jsonl", "wandb"))
    f.add_argument("--min-step", type=int, default=None,
                   help="fit losses from this step (default: 2%% of the longest run)")
    f.add_argument("--max-nfev", type=int, default=300, help="evaluation budget (default 300)")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")

    q = sub.add_parser("predict", help="predict the loss curve of a schedule")
    q.add_argument("params", metavar="PARAMS.json")
    q.add_argument("--schedule", required=True, metavar="SPEC",
                   help="e.g. wsd:peak=1e-3,steps=50000,decay=0.2,shape=1-sqrt")
    q.add_argument("--csv", default=None, metavar="OUT.csv", help="write step,lr,loss")
    q.add_argument("--plot", default=None, metavar="OUT.png", help="plot the LR and the loss")

    a = sub.add_parser("advise", help="the best WSD decay for a budget, against cosine")
    a.add_argument("params", metavar="PARAMS.json")
    a.add_argument("--steps", type=int, required=True, metavar="T", help="the budget in steps")
    a.add_argument("--warmup", type=int, default=None, metavar="W",
                   help="warmup steps (default: the warmup of the fitted runs)")
    a.add_argument("--peak-value", type=float, default=None, metavar="LR",
                   help="peak LR (default: the peak LR of the fitted runs)")
    a.add_argument("--cosine-min-ratio", type=float, default=0.1,
                   help="the cosine baseline decays to this fraction of the peak (default 0.1)")
    a.add_argument("--plot", default=None, metavar="OUT.png", help="plot the predicted curves")
    a.add_argument("--json", default=None, metavar="OUT.json", help="write the advice as JSON")

    v = sub.add_parser("validate", help="the held-out validation protocol on the shipped runs")
    v.add_argument("--laws", default=None, help="comma-separated laws (default: all)")
    v.add_argument("--anchors", default=None, help="comma-separated peak LRs (default: all)")
    v.add_argument("--json", default=None, metavar="OUT.json", help="write the results as JSON")
    v.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``laws`` to ``subparsers`` (of ``rivervalley``'s parser); returns its parser."""
    p = subparsers.add_parser("laws", help="fit loss-curve laws to training logs; predict; advise",
                              description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return p


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------

def _out_path(path: str, what: str, suffix: str | None = None) -> Path:
    p = Path(path)
    if str(path) == "" or p.is_dir():
        raise _usage(f"{what} {str(path)!r} is a folder; give a file name")
    if suffix and p.suffix.lower() != suffix:
        raise _usage(f"{what} {str(path)!r} must end in {suffix}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise _usage(f"{what} {str(path)!r}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise _usage(f"{what} {str(path)!r}: folder {str(parent)!r} is not writable")
    return p


def _write_json(path: Path, obj) -> None:
    write_atomic(path, (json.dumps(obj, indent=1, allow_nan=True) + "\n").encode())


def _write_csv(path: Path, header: str, cols) -> None:
    lines = [header] + [",".join(repr(int(x)) if isinstance(x, (int, np.integer)) else f"{x:.12g}"
                                 for x in row) for row in zip(*cols)]
    write_atomic(path, ("\n".join(lines) + "\n").encode())


def _save_fig(fig, path: Path) -> None:
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=_PLOT_DPI,
                                             metadata={"Software": None}))


def read_params(path: str) -> dict:
    """A params.json written by ``rivervalley laws fit``: its dict, with ``law`` checked and
    ``params`` as the law's NamedTuple; a missing or malformed file is a usage error."""
    from rivervalley import laws as L

    p = Path(path)
    if not p.is_file():
        raise _usage(f"{path}: no such file" if not p.exists() else f"{path}: is not a file")
    try:
        d = json.loads(p.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _usage(f"{path}: not a params.json written by 'rivervalley laws fit' ({e})") from None
    if not isinstance(d, dict) or "law" not in d or not isinstance(d.get("params"), dict):
        raise _usage(f"{path}: not a params.json written by 'rivervalley laws fit' (no law / params)")
    if d["law"] not in L.LAWS:
        raise _usage(f"{path}: law {d['law']!r} is not one of {', '.join(L.LAWS)}")
    law = L.LAWS[d["law"]]
    try:
        vals = [float(d["params"][k]) for k in law.params._fields]
    except (KeyError, TypeError, ValueError):
        raise _usage(f"{path}: params must give {', '.join(law.params._fields)} as numbers") from None
    if not all(map(math.isfinite, vals)):
        raise _usage(f"{path}: params are not all finite")
    d["params"] = law.params(*vals)
    return d


# --------------------------------------------------------------------------------------------
# the sub-commands
# --------------------------------------------------------------------------------------------

def _fit(args) -> int:
    from rivervalley import laws as L

    if args.law not in L.LAWS:
        raise _usage(f"unknown law {args.law!r}; known laws: {', '.join(L.LAWS)}")
    out = _out_path(args.out, "--out", ".json")
    if args.max_nfev < 1:
        raise _usage(f"--max-nfev {args.max_nfev} must be >= 1")
    curves = []
    for run in args.runs:
        if not Path(run).exists():
            raise _usage(f"{run}: no such file")
        try:
            curves.append(L.load_curve(run, loss=args.loss, step=args.step, lr=args.lr,
                                       format=args.format))
        except ValueError as e:
            raise _usage(str(e)) from None
    T = max(len(c.lrs) for c in curves)
    min_step = int(DEFAULT_MIN_STEP_FRACTION * T) if args.min_step is None else args.min_step
    if min_step < 0:
        raise _usage(f"--min-step {min_step} must be >= 0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", L.FitWarning)
        try:
            r = L.fit(args.law, curves, min_step=min_step, max_nfev=args.max_nfev,
                      progress=False if args.no_progress else None)
        except ValueError as e:                # the data cannot be fitted (too few points, ...)
            raise _usage(f"cannot fit {args.law}: {e}") from None
    msgs = [str(w.message) for w in caught if issubclass(w.category, L.FitWarning)]
    fields = r.params._fields
    peaks = [float(np.max(c.lrs)) for c in curves]
    warm = [_warmup_steps(c.lrs) for c in curves]
    doc = {"format": FORMAT, "law": args.law,
           "params": {k: float(v) for k, v in zip(fields, r.params)},
           "stderr": {k: float(v) for k, v in zip(fields, r.stderr)},
           "r2": r.r2, "rmse_log": r.rmse_log, "nfev": r.nfev, "min_step": min_step,
           "runs": [str(x) for x in args.runs], "peak_lr": max(peaks), "num_steps": T,
           "warmup_steps": max(warm),
           "warnings": msgs}
    _write_json(out, doc)
    print(f"{args.law}: R^2 {r.r2:.5f}, RMS log error {r.rmse_log:.2e} on "
          f"{sum(int(np.sum(c.steps >= min_step)) for c in curves)} losses of {len(curves)} run(s)")
    width = max(map(len, fields))
    for k, v, s in zip(fields, r.params, r.stderr):
        print(f"  {k:>{width}} = {v:.6g}  +- {s:.2g}")
    for m in msgs:
        print(f"  warning: {m}")
    print(f"wrote {out}")
    return 0


def _warmup_steps(lrs: np.ndarray) -> int:
    """The first step whose LR is (within ``_WARMUP_END``) the run's peak."""
    return int(np.argmax(lrs >= _WARMUP_END * np.max(lrs)))


def _spec(s: str):
    from rivervalley import laws as L

    try:
        return L.schedule_from_spec(s)
    except ValueError as e:
        raise _usage(str(e)) from None


def _predict(args) -> int:
    import jax

    from rivervalley import laws as L

    d = read_params(args.params)
    spec = _spec(args.schedule)
    csv_out = _out_path(args.csv, "--csv") if args.csv else None
    png = _out_path(args.plot, "--plot", ".png") if args.plot else None
    T = spec.num_steps
    lrs = spec.lrs(T + 1)                         # the loss after all T updates sits at step T
    with jax.enable_x64(True):
        y = np.asarray(L.loss_curve(d["law"], d["params"], lrs), np.float64)
    steps = np.arange(T + 1)
    print(f"{d['law']} on {args.schedule}: predicted loss {y[-1]:.4f} after {T} steps "
          f"(lowest {y.min():.4f} at step {int(np.argmin(y))})")
    w_fit = int(d.get("warmup_steps", 0))
    w_new = _warmup_steps(lrs)
    if abs(w_fit - w_new) > max(_WARMUP_NOTE_STEPS, _WARMUP_NOTE_FRACTION * w_fit):
        print(f"  note: this schedule warms up over {w_new} steps, the fitted runs over {w_fit}; "
              "laws that sum LR changes (lr_annealing, multi_power) shift with the warmup "
              f"(add warmup={w_fit} to the spec to compare like with like)")
    if csv_out:
        _write_csv(csv_out, "step,lr,loss", (steps, lrs, y))
        print(f"wrote {csv_out}")
    if png:
        _save_fig(_plot_curves({args.schedule: (lrs, y)}, f"{d['law']} prediction"), png)
        print(f"wrote {png}")
    return 0


def _plot_curves(curves: dict, title: str, grid: dict | None = None):
    """LR (top) and predicted loss (bottom) of each schedule; with ``grid`` (the advice), a
    third panel of the predicted final loss against the WSD decay fraction, one line per shape,
    spanning both rows."""
    from matplotlib.figure import Figure

    layout = [["lr", "grid"], ["loss", "grid"]] if grid else [["lr"], ["loss"]]
    fig = Figure(figsize=(5.2 * len(layout[0]), 5.0), layout="constrained")
    axes = fig.subplot_mosaic(layout, height_ratios=(1, 2))
    for label, (lrs, y) in curves.items():
        axes["lr"].plot(lrs, lw=1, label=label)
        axes["loss"].plot(y, lw=1, label=f"{label}: {y[-1]:.4f}")
    axes["lr"].set_ylabel("learning rate")
    axes["loss"].set_ylabel("predicted loss")
    axes["loss"].set_xlabel("step")
    shown = [y[int(_PLOT_SKIP_FRACTION * len(y)):] for _, y in curves.values()]
    lo = min(float(np.min(y)) for y in shown)
    hi = max(float(np.percentile(y, _PLOT_TOP_PERCENTILE)) for y in shown)
    margin = _PLOT_MARGIN * (hi - lo) if hi > lo else _PLOT_MARGIN * max(abs(hi), 1.0)
    axes["loss"].set_ylim(lo - margin, hi + margin)
    axes["loss"].legend(fontsize=7, title="final loss", title_fontsize=7)
    axes["lr"].set_title(title, fontsize=9)
    if grid:
        ax = axes["grid"]
        for shape, (fr, fin) in grid.items():
            ax.plot(100 * fr, fin, ".-", ms=3, lw=1, label=shape)
        ax.set_xlabel("WSD decay (% of the run)")
        ax.set_ylabel("predicted final loss")
        ax.set_title("WSD decay shapes and lengths", fontsize=9)
        ax.legend(fontsize=7, title="decay shape", title_fontsize=7)
    return fig


def _advise(args) -> int:
    from rivervalley import laws as L

    d = read_params(args.params)
    if args.steps < 2:
        raise _usage(f"--steps {args.steps} must be >= 2")
    if args.warmup is None:
        args.warmup = int(d.get("warmup_steps", 0))
    if args.warmup < 0 or args.warmup >= args.steps:
        raise _usage(f"--warmup {args.warmup} must be in [0, --steps)")
    peak = float(d.get("peak_lr", float("nan"))) if args.peak_value is None else args.peak_value
    if not (math.isfinite(peak) and peak > 0):
        raise _usage(f"--peak-value {peak} must be a positive learning rate (the params.json has "
                     "none)")
    if not 0 <= args.cosine_min_ratio <= 1:
        raise _usage(f"--cosine-min-ratio {args.cosine_min_ratio} must be in [0, 1]")
    png = _out_path(args.plot, "--plot", ".png") if args.plot else None
    js = _out_path(args.json, "--json", ".json") if args.json else None
    a = L.advise(d["law"], d["params"], args.steps, peak_value=peak, warmup_steps=args.warmup,
                 cosine_min_ratio=args.cosine_min_ratio)
    print(advice_text(a, d["law"]))
    if js:
        _write_json(js, {"law": d["law"], "num_steps": a.num_steps, "warmup_steps": a.warmup_steps,
                         "peak_lr": a.peak_value, "best": {"shape": a.shape, "fraction": a.fraction,
                                                     "loss": a.loss},
                         "cosine": {"min_ratio": a.cosine_min_ratio, "loss": a.cosine_loss},
                         "wsd_linear_20": {"loss": a.wsd20_loss},
                         "grid": {s: {"fractions": f.tolist(), "losses": l.tolist()}
                                  for s, (f, l) in a.grid.items()}})
        print(f"wrote {js}")
    if png:
        _save_fig(_plot_curves(a.curves, f"{d['law']}: advice for {a.num_steps} steps at peak "
                               f"{a.peak_value:g}", a.grid), png)
        print(f"wrote {png}")
    return 0


def advice_text(a, law: str) -> str:
    """The advice as the CLI prints it (the README quotes it)."""
    return "\n".join([
        f"{law}: budget {a.num_steps} steps, warmup {a.warmup_steps}, peak LR {a.peak_value:g}",
        f"  best WSD decay: {a.shape}, {100 * a.fraction:g}% of the run "
        f"({int(a.fraction * a.num_steps)} steps) -> predicted final loss {a.loss:.4f}",
        f"  cosine to {a.cosine_min_ratio:g} x peak          -> {a.cosine_loss:.4f} "
        f"({a.cosine_loss - a.loss:+.4f})",
        f"  WSD linear, {100 * BASELINE_DECAY:g}% decay        -> {a.wsd20_loss:.4f} "
        f"({a.wsd20_loss - a.loss:+.4f})"])


def _validate(args) -> int:
    from rivervalley import _laws_validation as V
    from rivervalley import laws as L

    laws = V.DEFAULT_LAWS if args.laws is None else [x.strip() for x in args.laws.split(",")]
    for n in laws:
        if n not in L.LAWS:
            raise _usage(f"unknown law {n!r}; known laws: {', '.join(L.LAWS)}")
    try:
        anchors = (V.ANCHORS if args.anchors is None
                   else [float(x) for x in args.anchors.split(",")])
    except ValueError:
        raise _usage(f"--anchors {args.anchors!r} must be comma-separated numbers") from None
    js = _out_path(args.json, "--json", ".json") if args.json else None
    try:
        res = V.validate(laws, anchors, progress=False if args.no_progress else None)
    except ValueError as e:
        raise _usage(str(e)) from None
    print(V.validation_table(res))
    if js:
        _write_json(js, V.to_json(res))
        print(f"wrote {js}")
    return 0


_COMMANDS = {"fit": _fit, "predict": _predict, "advise": _advise, "validate": _validate}


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``rivervalley laws ...`` command; raises ``rivervalley.cli.UsageError``."""
    return _COMMANDS[args.laws_command](args)


def main(argv: list[str] | None = None) -> int:
    """``rivervalley laws ARGV`` on its own: one line on stderr and status 2 for bad arguments."""
    from rivervalley.cli import UsageError

    class Parser(argparse.ArgumentParser):
        def error(self, message: str):
            raise UsageError(f"{message} (see {self.prog} --help)")

    p = Parser(prog="rivervalley laws", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    try:
        return run(p.parse_args(argv))
    except UsageError as err:
        print(f"rivervalley laws: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rivervalley laws: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
