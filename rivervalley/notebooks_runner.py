"""Execute the tutorial notebooks: ``python -m rivervalley.notebooks_runner notebooks [--fast]``.

Runs every ``*.ipynb`` in the folder (sorted by name) top to bottom with nbclient, in a kernel
whose working directory is the folder, with ``MPLBACKEND=Agg`` (and ``RIVERVALLEY_FAST=1`` with
``--fast``). Prints one line per notebook with its seconds; exits non-zero when any fails. The
notebooks on disk are not modified (their outputs stay stripped).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def run_notebook(path: str | Path, *, fast: bool = False, timeout: int = 600,
                 kernel_name: str = "python3") -> float:
    """Execute one notebook in place in memory; return its wall time in seconds.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised (the message names the cell).
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    env_keys = {"MPLBACKEND": "Agg"}
    if fast:
        env_keys["RIVERVALLEY_FAST"] = "1"
    old = {k: os.environ.get(k) for k in env_keys}
    os.environ.update(env_keys)  # the kernel inherits this process's environment
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                                resources={"metadata": {"path": str(path.parent)}})
        t0 = time.perf_counter()
        client.execute()
        return time.perf_counter() - t0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rivervalley.notebooks_runner",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default="notebooks")
    ap.add_argument("--fast", action="store_true", help="RIVERVALLEY_FAST=1 (small runs)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = ap.parse_args(argv)
    folder = Path(args.folder)
    paths = sorted(folder.glob("*.ipynb"))
    if not paths:
        print(f"notebooks_runner: error: no notebooks in {folder}", file=sys.stderr)
        return 2
    failed = 0
    for p in paths:
        t0 = time.perf_counter()
        try:
            run_notebook(p, fast=args.fast, timeout=args.timeout)
            print(f"ok      {time.perf_counter() - t0:7.1f} s  {p.name}", flush=True)
        except Exception as err:  # noqa: BLE001 - report every notebook, then fail
            failed += 1
            first = str(err).strip().splitlines()
            last = [l for l in first if l.strip()][-1] if first else type(err).__name__
            print(f"FAILED  {time.perf_counter() - t0:7.1f} s  {p.name}: {last}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
