"""The results file format: save, load and export :class:`~rivervalley.results.Trajectory`,
:class:`~rivervalley.results.SweepResult`, :class:`~rivervalley.results.PlanResult` (and any tree
of NamedTuples, dataclasses, dicts, lists, tuples and arrays built from them).

Format: one ``.npz`` file. Every array leaf is stored under a numbered name (``a0``, ``a1``, ...)
with its dtype and shape unchanged, so a round trip is exact bit for bit (PRNG keys are stored as
their raw ``uint32`` data and rebuilt with their implementation). The structure and the metadata
are one JSON document stored in the same file under ``__meta__``:

- ``tree``: the structure (``{"t": "namedtuple", "cls": "rivervalley.results:Trajectory",
  "fields": {...}}``, ``{"t": "leaf", "k": "a3"}``, ...). A NamedTuple or dataclass is rebuilt
  by importing its class by module and name (only classes that are NamedTuples or dataclasses);
  optax states (NamedTuples) round-trip the same way. A dataclass gets its saved fields without
  its ``__init__`` running, as when JAX unflattens a pytree (a schedule or landscape is built only
  by its factory, which checked the values when the result was made); a class whose fields
  changed since the file was written is a ``ValueError``.
- ``config`` (what you pass to :func:`save`: the settings of the run), ``versions``
  (rivervalley, jax, numpy, python) and ``saved_by`` (the function that wrote it).

Files are written atomically (a temporary file in the same folder, then ``os.replace``), and read
without pickle (``allow_pickle=False``).

:func:`to_csv` exports the records as columns, one row per record (and per run and branch):
``branch, seed, config, step, lr, loss, river_loss, hill_loss`` and one column per extra.

Example:
    >>> import jax, tempfile, os
    >>> import rivervalley as rv
    >>> valley = rv.landscapes.standard_toy()
    >>> traj = rv.simulate(valley, valley.init_params(), rv.schedules.constant(0.06),
    ...                    num_steps=100, noise=rv.noise.hill_only(1.0), key=jax.random.key(0),
    ...                    record_every=10)
    >>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
    >>> save(traj, path, config={"peak_value": 0.06})
    >>> back = load(path)
    >>> print(type(back).__name__, bool((back.loss == traj.loss).all()), load_meta(path)["config"])
    Trajectory True {'peak_value': 0.06}
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import io
import json
import os
import platform
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from rivervalley._atomic import write_atomic
from rivervalley._pytree import build

__all__ = ["save", "load", "load_meta", "to_csv", "FORMAT_VERSION"]

#: Version of the file layout written by :func:`save`.
FORMAT_VERSION = 1

_META = "__meta__"


def _versions() -> dict[str, str]:
    import rivervalley

    return {"rivervalley": rivervalley.__version__, "jax": jax.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def _qualname(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(name: str) -> type:
    module, _, qual = name.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    is_namedtuple = isinstance(obj, type) and issubclass(obj, tuple) and hasattr(obj, "_fields")
    if not (is_namedtuple or dataclasses.is_dataclass(obj)):
        raise ValueError(f"{name} in the saved file is not a NamedTuple or dataclass; refusing to "
                         "rebuild it")
    return obj


class _Encoder:
    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def leaf(self, x: Any) -> dict:
        k = f"a{len(self.arrays)}"
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            self.arrays[k] = np.asarray(jax.random.key_data(x))
            return {"t": "key", "k": k, "impl": str(jax.random.key_impl(x))}
        self.arrays[k] = np.asarray(x)
        return {"t": "leaf", "k": k}

    def encode(self, x: Any) -> dict:
        if x is None:
            return {"t": "none"}
        if isinstance(x, (bool, str)) or (isinstance(x, (int, float)) and not isinstance(x, bool)):
            return {"t": "py", "v": x}
        if isinstance(x, (jax.Array, np.ndarray, np.generic)):
            return self.leaf(x)
        if isinstance(x, tuple) and hasattr(x, "_fields"):
            return {"t": "namedtuple", "cls": _qualname(type(x)),
                    "fields": {f: self.encode(getattr(x, f)) for f in x._fields}}
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return {"t": "dataclass", "cls": _qualname(type(x)),
                    "fields": {f.name: self.encode(getattr(x, f.name))
                               for f in dataclasses.fields(x)}}
        if isinstance(x, dict):
            if not all(isinstance(k, str) for k in x):
                raise ValueError(f"dict keys must be strings to be saved; got {list(x)[:5]}")
            return {"t": "dict", "items": {k: self.encode(v) for k, v in x.items()}}
        if isinstance(x, (list, tuple)):
            return {"t": type(x).__name__, "items": [self.encode(v) for v in x]}
        raise ValueError(f"cannot save an object of type {type(x).__name__}: results hold arrays, "
                         "NamedTuples, dataclasses, dicts, lists, tuples, strings and numbers")


def _decode(spec: dict, arrays: Any) -> Any:
    t = spec["t"]
    if t == "none":
        return None
    if t == "py":
        return spec["v"]
    if t == "leaf":
        return np.asarray(arrays[spec["k"]])
    if t == "key":
        return jax.random.wrap_key_data(np.asarray(arrays[spec["k"]]), impl=spec["impl"])
    if t in ("namedtuple", "dataclass"):
        cls = _import_class(spec["cls"])
        fields = {k: _decode(v, arrays) for k, v in spec["fields"].items()}
        if t == "dataclass":
            names = sorted(f.name for f in dataclasses.fields(cls))
            if names != sorted(fields):
                raise ValueError(f"the saved {spec['cls']} has the fields {sorted(fields)}, this "
                                 f"version's has {names}: the file was written by another "
                                 "version of its class")
            # rebuilt the way JAX unflattens a pytree: the fields as saved, without __init__ (a
            # class built by its factory refuses __init__; the values were checked when built)
            return build(cls, **fields)
        return cls(**fields)
    if t == "dict":
        return {k: _decode(v, arrays) for k, v in spec["items"].items()}
    if t in ("list", "tuple"):
        items = [_decode(v, arrays) for v in spec["items"]]
        return items if t == "list" else tuple(items)
    raise ValueError(f"unknown node type {t!r} in the saved structure")


def _check_path(path: Any, suffix: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path={path!r} must be a file path (str or os.PathLike)")
    p = Path(path)
    if p.suffix != suffix:
        raise ValueError(f"path={str(p)!r} must end in {suffix}")
    if p.is_dir():
        raise ValueError(f"path={str(p)!r} is a directory")
    return p


def save(result: Any, path: str | os.PathLike, *, config: dict | None = None) -> None:
    """Write ``result`` (a Trajectory, SweepResult, PlanResult...) and ``config`` to ``path``
    (``.npz``), atomically. ``config`` must be JSON-serializable (the run's settings)."""
    p = _check_path(path, ".npz")
    enc = _Encoder()
    tree = enc.encode(result)
    meta = {"format": FORMAT_VERSION, "tree": tree, "versions": _versions(),
            "saved_by": "rivervalley.results_io.save"}
    try:
        meta["config"] = json.loads(json.dumps(config if config is not None else {}))
    except TypeError as err:
        raise ValueError(f"config must be JSON-serializable ({err})") from None
    buf = io.BytesIO()
    np.savez(buf, **enc.arrays, **{_META: np.frombuffer(json.dumps(meta).encode(), np.uint8)})
    p.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(p, buf.getvalue())


def _read(path: Any) -> tuple[dict, Any]:
    p = _check_path(path, ".npz")
    if not p.exists():
        raise ValueError(f"path={str(p)!r} does not exist")
    try:
        z = np.load(p, allow_pickle=False)
        meta = json.loads(bytes(z[_META]).decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise ValueError(f"{p}: not a rivervalley results file ({err})") from None
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{p}: format {meta.get('format')!r}, this version reads "
                         f"{FORMAT_VERSION}")
    return meta, z


def load_meta(path: str | os.PathLike) -> dict:
    """The metadata of a saved file: ``config``, ``versions``, ``format``, ``saved_by``."""
    meta, _ = _read(path)
    return {k: v for k, v in meta.items() if k != "tree"}


def load(path: str | os.PathLike) -> Any:
    """Read a file written by :func:`save`; arrays come back as NumPy arrays, bit for bit."""
    meta, z = _read(path)
    with z:
        return _decode(meta["tree"], z)


# -- CSV ---------------------------------------------------------------------------------------
_CORE = ("lr", "loss", "river_loss", "hill_loss")


def _trajectory_rows(traj: Any, branch: str | None, lead: tuple[str, ...]) -> tuple[list, list]:
    """Rows of one Trajectory whose arrays have leading axes ``lead`` + (records,)."""
    loss = np.asarray(traj.loss)
    shape = loss.shape
    steps = np.broadcast_to(np.asarray(traj.steps), shape)
    cols = {name: np.asarray(getattr(traj, name)) for name in _CORE}
    extras = {k: np.asarray(v) for k, v in (traj.extras or {}).items()
              if np.shape(v) == shape}
    header = ([] if branch is None else ["branch"]) + list(lead) + ["step", *_CORE, *extras]
    rows = []
    for idx in np.ndindex(*shape):
        row = [] if branch is None else [branch]
        row += [int(i) for i in idx[:-1]]
        row += [int(steps[idx])] + [float(cols[c][idx]) for c in _CORE]
        row += [float(extras[k][idx]) for k in extras]
        rows.append(row)
    return header, rows


def to_csv(result: Any, path: str | os.PathLike) -> int:
    """Write the records of ``result`` as CSV columns, one row per record (per run, per branch);
    returns the number of rows. Seeds are given by index into ``result.seeds`` for a sweep
    (column ``seed``) and the batch entry in column ``config``."""
    from rivervalley.results import PlanResult, SweepResult, Trajectory  # results imports us

    p = _check_path(path, ".csv")
    if isinstance(result, Trajectory):
        lead = {1: (), 2: ("run",), 3: ("seed", "config")}.get(np.ndim(result.loss))
        if lead is None:
            raise ValueError(f"a Trajectory's loss has 1-3 axes; got {np.shape(result.loss)}")
        header, rows = _trajectory_rows(result, None, lead)
    elif isinstance(result, SweepResult):
        header, rows = _trajectory_rows(result.trajectory, None, ("seed", "config"))
    elif isinstance(result, PlanResult):
        header, rows = None, []
        for name, traj in result.trajectories.items():
            h, r = _trajectory_rows(traj, name, ("seed",) if np.ndim(traj.loss) == 2 else ())
            if header is not None and h != header:
                raise ValueError("branches record different columns; export them one by one")
            header, rows = h, rows + r
    else:
        raise ValueError(f"result must be a Trajectory, SweepResult or PlanResult; got "
                         f"{type(result).__name__}")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(p, buf.getvalue().encode())
    return len(rows)
