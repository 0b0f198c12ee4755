"""Every registered figure: FAST compute, plot, non-empty PNG, its check, byte-stable rebuild;
and the CLI's ``figures`` command (--list, unknown names).

What is compared: the figure's numbers through its own ``check`` (tolerances stated there), and
the PNG bytes of two renders in ONE test (same machine, same install, the second from the cache).
No test compares against committed PNGs: another machine's XLA may round differently, so there the
checks hold but the bytes may differ. (The runner's atomic writes, manifest and cache are tested on
cheap fake figures in test_figure_runner.py, the CLI's error contract in test_cli.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from rivervalley import cli  # noqa: E402
from rivervalley.figures import registry, runner  # noqa: E402


@pytest.mark.parametrize("name", list(registry.FIGURES))
def test_figure_fast(name, tmp_path, cache):
    mod = registry.FIGURES[name]
    assert mod.NAME == name
    title, _, rest = mod.CAPTION.partition("\n")
    assert title.strip() and rest.strip(), "CAPTION: a title line, then what to see"
    before = {k: str(v) for k, v in matplotlib.rcParams.items() if k != "backend"}
    out1, out2 = tmp_path / "a", tmp_path / "b"
    status = runner.build([name], fast=True, out=out1, progress=False)
    png = out1 / f"{name}.png"
    assert png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the figure's quantitative claim, on the cached FAST data
    data = runner.compute_data(mod, mod.FAST, seed=getattr(mod, "SEED", 0))
    assert data and all(hasattr(v, "shape") for v in data.values())
    mod.check(data)
    assert status == 0
    # rerunning (from the cache) writes identical bytes
    assert runner.build([name], fast=True, out=out2, progress=False) == 0
    assert (out2 / f"{name}.png").read_bytes() == png.read_bytes()
    assert list(cache.glob(f"{name}-*.npz"))
    after = {k: str(v) for k, v in matplotlib.rcParams.items() if k != "backend"}
    assert before == after, "plot changed global rcParams"
    entry = json.loads((out2 / "manifest.json").read_text())["figures"][name]
    assert entry["check"] == "ok" and entry["file"] == f"{name}.png" and entry["fast"] is True


def test_cli_unknown_figure_in_process(capsys, tmp_path):
    out = tmp_path / "out"
    assert cli.main(["figures", "--only", "nosuchfigure", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "nosuchfigure" in err[0]
    for name in registry.FIGURES:
        assert name in err[0]
    assert not out.exists()


def test_cli_list(capsys):
    assert cli.main(["figures", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == list(registry.FIGURES)


def test_console_script_unknown_figure(tmp_path):
    exe = shutil.which("rivervalley", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "rivervalley.cli"]
    env = dict(os.environ, RIVERVALLEY_CACHE=str(tmp_path / "cache"))
    p = subprocess.run(cmd + ["figures", "--only", "nosuchfigure", "--out", str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "known figures" in lines[0], p.stderr
    assert "Traceback" not in p.stderr


def test_cache_is_invalidated_by_any_library_change(monkeypatch):
    # a cached figure must not outlive a change in the engine or the noise (not only in its own
    # module): the key covers every source file of the package
    mod = registry.FIGURES["wsd_loss"]
    key = runner.cache_key(mod, mod.FAST, 0)
    assert key == runner.cache_key(mod, mod.FAST, 0)
    monkeypatch.setattr(runner, "_library_digest", lambda: b"an edited dynamics.py")
    assert runner.cache_key(mod, mod.FAST, 0) != key
