"""Regenerate figures: compute (cached by config hash), plot, check, write PNG + manifest.

Outputs are byte-stable: PNGs carry no timestamp or version text, so rerunning changes no byte.
The manifest (``manifest.json``) records, per figure, its config, seed, caption, file, the seconds
it took and the package versions.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import os
import platform
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

CACHE_DIR = Path(os.environ.get("RIVERVALLEY_CACHE", ".cache/figures"))


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


def config_of(mod: ModuleType, fast: bool):
    return mod.FAST if fast else mod.FULL


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


def cache_key(mod: ModuleType, config, seed: int) -> str:
    """Hash of the config, the seed, the figure module's source and the library's sources."""
    h = hashlib.sha256()
    h.update(json.dumps(_jsonable(config), sort_keys=True, default=repr).encode())
    h.update(str(seed).encode())
    h.update(inspect.getsource(mod).encode())
    h.update(_library_digest())
    return h.hexdigest()[:16]


def compute_data(mod: ModuleType, config, *, seed: int = 0, use_cache: bool = True) -> dict:
    """``mod.compute`` as numpy arrays, cached in ``CACHE_DIR`` by :func:`cache_key`."""
    import jax

    path = CACHE_DIR / f"{mod.NAME}-{cache_key(mod, config, seed)}.npz"
    if use_cache and path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    raw = mod.compute(config, jax.random.key(seed))
    data = {k: np.asarray(v) for k, v in raw.items()}
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **data)
        os.replace(tmp, path)
    return data


def save_figure(fig, path: Path) -> None:
    """Write a PNG with no varying metadata (byte-stable)."""
    import matplotlib.pyplot as plt

    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def render(mod: ModuleType, data: dict):
    """``mod.plot(data)`` under the package style, without touching global rcParams."""
    import matplotlib.pyplot as plt

    from rivervalley.plotting import STYLE

    with plt.style.context(STYLE):
        return mod.plot(data)


def build(names: list[str] | None = None, *, fast: bool = False, out: str | os.PathLike = "figures",
          use_cache: bool = True, progress: bool | None = None) -> int:
    """Regenerate the figures ``names`` (all when None) into ``out``; returns an exit status.

    Unknown names raise ``ValueError`` naming the known figures (the CLI turns it into exit 2).
    A figure whose quantitative check fails is still written, reported, and makes the status 1.
    """
    import matplotlib

    matplotlib.use("Agg")
    from rivervalley.figures import registry

    mods = [registry.get(n) for n in names] if names else list(registry.FIGURES.values())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest = {}
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text()).get("figures", {})
        except (json.JSONDecodeError, AttributeError):
            manifest = {}
    if progress is None:
        progress = sys.stderr.isatty()
    status = 0
    iterator = mods
    if progress:
        from tqdm import tqdm

        iterator = tqdm(mods, desc="figures", unit="fig")
    for mod in iterator:
        seed = getattr(mod, "SEED", 0)
        config = config_of(mod, fast)
        t0 = time.perf_counter()
        data = compute_data(mod, config, seed=seed, use_cache=use_cache)
        fig = render(mod, data)
        file = out / f"{mod.NAME}.png"
        save_figure(fig, file)
        seconds = time.perf_counter() - t0
        try:
            mod.check(data)
            ok, why = True, ""
        except AssertionError as err:
            ok, why = False, str(err)
            status = 1
        line = f"{mod.NAME:22s} {seconds:7.1f}s  {'check ok' if ok else 'CHECK FAILED: ' + why}"
        if progress:
            iterator.write(line)
        else:
            print(line, flush=True)
        manifest[mod.NAME] = {
            "file": file.name,
            "caption": mod.CAPTION,
            "fast": fast,
            "seed": seed,
            "config": _jsonable(config),
            "seconds": round(seconds, 2),
            "check": "ok" if ok else f"failed: {why}",
        }
    manifest_path.write_text(json.dumps({"versions": _versions(), "figures": manifest},
                                        indent=2, sort_keys=True) + "\n")
    return status
