"""Regenerate figures: compute (cached by config hash), plot, check, write PNG + manifest.

Outputs are byte-stable on one machine and install: PNGs carry no timestamp or version text, so
rerunning changes no byte (another machine's XLA may round differently: there the numbers and the
checks agree within their tolerances, not the bytes).
The manifest (``manifest.json``) records, per figure, its config, seed, caption, file, the seconds
it took and its check, and the package versions.

Every write is atomic: a PNG, the manifest and a cache file are written to a temporary file in
their folder and renamed over the old one (``os.replace``), so an interrupted run (Ctrl-C, a
crash, a full disk) leaves the previous file whole, never a truncated one. The manifest is updated
as each figure finishes (read-modify-write under an exclusive ``flock`` on ``.manifest.lock``
beside it): an interrupted run records the figures it finished, and concurrent runs into one
folder keep each other's entries. A cache file that cannot be read is a cache miss (recomputed
and rewritten).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import inspect
import io
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rivervalley._atomic import write_atomic

try:  # POSIX; without it (Windows) concurrent runs into one folder are not serialized
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

if TYPE_CHECKING:
    from rivervalley.figures.registry import Figure

#: The compute cache: ``$RIVERVALLEY_CACHE``, else ``.cache/figures`` under the working directory.
CACHE_DIR = Path(os.environ.get("RIVERVALLEY_CACHE", ".cache/figures"))
#: The manifest's file name in the output folder, and the lock file beside it.
MANIFEST = "manifest.json"
MANIFEST_LOCK = ".manifest.lock"


def _versions() -> dict[str, str]:
    import jax
    import matplotlib
    import optax
    import scipy

    import rivervalley

    return {
        "rivervalley": rivervalley.__version__,
        "jax": jax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "matplotlib": matplotlib.__version__,
        "python": platform.python_version(),
    }


def _jsonable(obj):
    if dataclasses.is_dataclass(obj):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    return obj


@functools.cache
def _library_digest() -> bytes:
    """Hash of every source file of the package: a change in the engine, the noise or any other
    module the figures compute with invalidates the cache, not only the figure's own module."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.digest()


def cache_key(figure: Figure, config, seed: int) -> str:
    """Hash of the config, the seed, the figure module's source and the library's sources."""
    h = hashlib.sha256()
    h.update(json.dumps(_jsonable(config), sort_keys=True, default=repr).encode())
    h.update(str(seed).encode())
    h.update(inspect.getsource(sys.modules[figure.module]).encode())
    h.update(_library_digest())
    return h.hexdigest()[:16]


def _load_cached(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of the cache file ``path``, or None when it is missing or cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception:  # missing, truncated, corrupt or foreign: a file that does not load is a miss
        return None
    return data or None


def compute_data(figure: Figure, config, *, seed: int | None = None,
                 use_cache: bool = True) -> dict:
    """``figure.compute(config, key)`` as numpy arrays, with the key of ``seed`` (default
    ``figure.seed``), cached in ``CACHE_DIR`` by :func:`cache_key`.

    A cache file that fails to load (truncated, corrupt) is a miss: recomputed and rewritten.
    """
    import jax

    seed = figure.seed if seed is None else seed
    path = CACHE_DIR / f"{figure.name}-{cache_key(figure, config, seed)}.npz"
    if use_cache:
        data = _load_cached(path)
        if data is not None:
            return data
    raw = figure.compute(config, jax.random.key(seed))
    data = {k: np.asarray(v) for k, v in raw.items()}
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda f: np.savez(f, **data))
    return data


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes with no varying metadata (byte-stable); closes the figure."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
    return buf.getvalue()


def save_figure(fig, path: Path) -> None:
    """Write a byte-stable PNG, atomically (:func:`rivervalley._atomic.write_atomic`)."""
    write_atomic(path, png_bytes(fig))


@contextlib.contextmanager
def _manifest_lock(out: Path) -> Iterator[None]:
    """Exclusive ``flock`` on ``out/.manifest.lock`` (the file stays: removing a lock file races)."""
    with open(out / MANIFEST_LOCK, "a+b") as f:
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def read_manifest(out: str | os.PathLike) -> dict[str, dict]:
    """The figure entries of ``out/manifest.json`` ({} when missing or unreadable)."""
    try:
        figures = json.loads((Path(out) / MANIFEST).read_text()).get("figures", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return figures if isinstance(figures, dict) else {}


def update_manifest(out: str | os.PathLike, entries: dict[str, dict],
                    versions: dict[str, str] | None = None) -> None:
    """Add or replace the figure ``entries`` of ``out/manifest.json``, keeping every other entry.

    Read-modify-write under the folder's manifest lock, written atomically: runs that update one
    folder at the same time (other processes or threads) lose no entry.
    """
    out = Path(out)
    versions = _versions() if versions is None else versions
    with _manifest_lock(out):
        figures = read_manifest(out)
        figures.update(entries)
        text = json.dumps({"versions": versions, "figures": figures}, indent=2, sort_keys=True)
        write_atomic(out / MANIFEST, (text + "\n").encode())


def render(figure: Figure, data: dict, config):
    """``figure.plot(data, config)`` under the package style, without touching global rcParams."""
    import matplotlib.pyplot as plt

    from rivervalley.plotting import STYLE

    with plt.style.context(STYLE):
        return figure.plot(data, config)


def build(names: list[str] | None = None, *, fast: bool = False, out: str | os.PathLike = "figures",
          use_cache: bool = True, progress: bool | None = None) -> int:
    """Regenerate the figures ``names`` (every figure when None) into ``out``; returns a status.

    Unknown names, or an empty list, raise ``ValueError`` before anything is written. A figure
    whose quantitative check fails (``AssertionError``) is still written, reported, and makes the
    status 1; any other exception propagates. Each figure's PNG and manifest entry are written as
    it finishes (atomically), so an interrupted run keeps the figures it finished and leaves the
    others as they were. ``progress`` (default: when stderr is a terminal) shows a tqdm bar;
    otherwise one line per figure and nothing else.
    """
    import matplotlib

    matplotlib.use("Agg")
    from rivervalley.figures import registry

    if names is None:
        figures = list(registry.FIGURES.values())
    else:
        if isinstance(names, str) or not names:
            raise ValueError(f"names={names!r} must be a non-empty list of figure names "
                             "(None: every figure)")
        figures = [registry.get(n) for n in names]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    versions = _versions()
    if progress is None:
        progress = sys.stderr.isatty()
    status = 0
    iterator = figures
    if progress:
        from tqdm import tqdm

        iterator = tqdm(figures, desc="figures", unit="fig")
    for figure in iterator:
        config = figure.config(fast)
        t0 = time.perf_counter()
        data = compute_data(figure, config, use_cache=use_cache)
        png = png_bytes(render(figure, data, config))
        try:
            figure.check(data, config)
            ok, why = True, ""
        except AssertionError as err:
            ok, why = False, str(err)
            status = 1
        file = out / f"{figure.name}.png"
        write_atomic(file, png)
        seconds = time.perf_counter() - t0
        update_manifest(out, {figure.name: {
            "file": file.name,
            "caption": figure.caption,
            "fast": fast,
            "seed": figure.seed,
            "config": _jsonable(config),
            "seconds": round(seconds, 2),
            "check": "ok" if ok else f"failed: {why}",
        }}, versions)
        line = f"{figure.name:22s} {seconds:7.1f}s  {'check ok' if ok else 'CHECK FAILED: ' + why}"
        if progress:
            iterator.write(line)
        else:
            print(line, flush=True)
    return status
