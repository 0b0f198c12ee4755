"""The figure runner's writes, on cheap fake figure modules (no real figure is computed here).

Atomic PNG / manifest / cache writes, the manifest updated per figure and under a lock (two
processes into one folder), a corrupt cache file as a cache miss, the config passed to plot and
check, and the progress output. A fake is a real figure module (it ends with its ``register``
call); :func:`fake_figure` loads it without touching the real registry, and the ``fakes`` fixture
(conftest) registers it in an empty one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rivervalley.figures import registry, runner  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_FAKE = '''
"""A fake figure for the runner's tests: a few numbers, a tiny plot."""
import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from rivervalley.figures.registry import register

CAPTION = "A fake figure.\\nA line through a few numbers."
CALLS = {{"compute": 0}}
SEEN = {{}}  # the config plot and check were given


@dataclasses.dataclass(frozen=True)
class Config:
    n: int = 8


FULL = Config(16)
FAST = Config(8)


def barrier(folder, me, count, timeout=120.0):
    """Wait until ``count`` processes have reached this point (files in ``folder``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / me).touch()
    t0 = time.monotonic()
    while len(list(folder.iterdir())) < count:
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("barrier")
        time.sleep(0.02)


def compute(config, key):
    CALLS["compute"] += 1
{compute}
    return {{"x": np.arange(config.n, dtype=np.float32) ** 2}}


def plot(data, config):
    import matplotlib.pyplot as plt
{plot}
    SEEN["plot"] = config
    fig, ax = plt.subplots(figsize=(2.0, 1.5), dpi=50)
    ax.plot(data["x"])
    return fig


def check(data, config):
{check}
    SEEN["check"] = config
    assert data["x"][-1] == (config.n - 1) ** 2, "the last value is not (n - 1)^2"


FIGURE = register(__name__, caption=CAPTION, full=FULL, fast=FAST, compute=compute, plot=plot,
                  check=check)
'''


def fake_figure(folder: Path, name: str, *, compute: str = "", plot: str = "", check: str = ""):
    """Write and import the fake figure module ``name`` (``folder/name.py``); ``compute`` /
    ``plot`` / ``check``: extra source lines run first in that function (e.g. ``raise
    ValueError``). Its ``register`` call goes to a throwaway registry: the real one is left as it
    was (the ``fakes`` fixture registers ``mod.FIGURE`` where a test wants it)."""

    def body(code: str) -> str:
        return textwrap.indent(textwrap.dedent(code).strip() or "pass", "    ")

    path = Path(folder) / f"{name}.py"
    path.write_text(_FAKE.format(compute=body(compute), plot=body(plot), check=body(check)))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # as an import does (the cache key reads the module's source)
    with _throwaway_registry():
        spec.loader.exec_module(mod)
    mod.PATH = path
    return mod


@contextlib.contextmanager
def _throwaway_registry():
    real = registry.FIGURES
    registry.FIGURES = {}
    try:
        yield
    finally:
        registry.FIGURES = real


#: A child process: imports fake figure modules (paths in argv; each registers itself) and runs
#: the CLI.
CHILD = '''
import importlib.util, sys
from rivervalley import cli

paths, argv = sys.argv[1:sys.argv.index("--")], sys.argv[sys.argv.index("--") + 1:]
for path in paths:
    name = path.rsplit("/", 1)[-1][:-3]
    spec = importlib.util.spec_from_file_location(name, path)
    sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules[name])
sys.exit(cli.main(argv))
'''


def child_command(tmp_path: Path, mods, argv: list[str]) -> list[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return [sys.executable, str(script), *[str(m.PATH) for m in mods], "--", *argv]


def child_env(cache: Path) -> dict:
    return dict(os.environ, RIVERVALLEY_CACHE=str(cache), MPLBACKEND="Agg")


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())["figures"]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_build_writes_png_and_manifest(fakes, tmp_path):
    fakes("fake_a")
    out = tmp_path / "out"
    assert runner.build(["fake_a"], fast=True, out=out, progress=False) == 0
    assert (out / "fake_a.png").read_bytes()[:8] == PNG_MAGIC
    entry = manifest(out)["fake_a"]
    assert entry["check"] == "ok" and entry["fast"] is True and entry["config"] == {"n": 8}
    assert leftovers(out) == []


@pytest.mark.parametrize("fast", [True, False])
def test_plot_and_check_get_the_config_of_the_data(fakes, tmp_path, fast):
    mod = fakes("fake_a")
    assert runner.build(["fake_a"], fast=fast, out=tmp_path / "out", progress=False) == 0
    config = mod.FAST if fast else mod.FULL
    assert mod.SEEN == {"plot": config, "check": config}
    assert manifest(tmp_path / "out")["fake_a"]["config"] == {"n": config.n}


def test_empty_name_list_is_an_error_not_every_figure(fakes, tmp_path):
    fakes("fake_a")
    for names in ([], ""):
        with pytest.raises(ValueError, match="non-empty list"):
            runner.build(names, fast=True, out=tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="unknown figure ''"):
        runner.build([""], fast=True, out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def _interrupting_savefig(monkeypatch):
    """Figure.savefig writes half of the PNG to its target, then Ctrl-C."""
    from matplotlib.figure import Figure

    real = Figure.savefig

    def savefig(self, fname, **kwargs):
        import io

        buf = io.BytesIO()
        real(self, buf, **{**kwargs, "format": "png"})
        half = buf.getvalue()[: len(buf.getvalue()) // 2]
        if hasattr(fname, "write"):
            fname.write(half)
        else:
            Path(fname).write_bytes(half)
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", savefig)


def test_ctrl_c_while_the_png_is_written_keeps_the_previous_png(fakes, tmp_path, monkeypatch):
    fakes("fake_a")
    out = tmp_path / "out"
    assert runner.build(["fake_a"], out=out, progress=False) == 0
    before_png, before_manifest = (out / "fake_a.png").read_bytes(), manifest(out)
    with monkeypatch.context() as m:
        _interrupting_savefig(m)
        with pytest.raises(KeyboardInterrupt):
            runner.build(["fake_a"], fast=True, out=out, progress=False)
    # the previous PNG, whole, and the manifest entry that describes it
    assert (out / "fake_a.png").read_bytes() == before_png
    assert manifest(out) == before_manifest
    assert leftovers(out) == []


def test_ctrl_c_between_write_and_rename_keeps_the_previous_file(fakes, tmp_path, monkeypatch):
    fakes("fake_a")
    out = tmp_path / "out"
    assert runner.build(["fake_a"], out=out, progress=False) == 0
    before = (out / "fake_a.png").read_bytes()

    def fsync(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.os, "fsync", fsync)
    with pytest.raises(KeyboardInterrupt):
        runner.build(["fake_a"], fast=True, out=out, progress=False)
    assert (out / "fake_a.png").read_bytes() == before
    assert manifest(out)["fake_a"]["fast"] is False
    assert leftovers(out) == [] and leftovers(runner.CACHE_DIR) == []


def test_write_atomic_keeps_permissions_like_open(tmp_path):
    path = tmp_path / "f.bin"
    runner.write_atomic(path, b"abc")
    umask = os.umask(0)
    os.umask(umask)
    assert path.read_bytes() == b"abc"
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    runner.write_atomic(path, lambda f: f.write(b"def"))
    assert path.read_bytes() == b"def"


def test_interrupted_multi_figure_run_records_the_figures_it_finished(fakes, tmp_path):
    fakes("fake_a")
    fakes("fake_b")
    out = tmp_path / "out"
    assert runner.build(["fake_a", "fake_b"], fast=False, out=out, progress=False) == 0
    old_b = (out / "fake_b.png").read_bytes()
    fakes("fake_b", compute="raise KeyboardInterrupt")
    with pytest.raises(KeyboardInterrupt):
        runner.build(["fake_a", "fake_b"], fast=True, out=out, progress=False)
    entries = manifest(out)
    # fake_a finished: its new render is recorded; fake_b did not: its previous one still is
    assert entries["fake_a"]["fast"] is True and entries["fake_a"]["config"] == {"n": 8}
    assert entries["fake_b"]["fast"] is False and entries["fake_b"]["config"] == {"n": 16}
    assert (out / "fake_b.png").read_bytes() == old_b


def test_concurrent_runs_into_one_folder_keep_every_entry(tmp_path):
    """Two processes render different figures into one --out at the same time: both start (and
    would read the manifest) before either finishes a figure."""
    src, out, cache = tmp_path / "src", tmp_path / "out", tmp_path / "cache"
    src.mkdir()
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"figures": {"earlier": {"file": "x.png"}}}))
    gate = tmp_path / "gate"
    mods = {}
    for group in ("a", "b"):
        mods[group] = [fake_figure(src, f"fake_{group}1",
                                   compute=f"barrier({str(gate)!r}, {group!r}, 2)"),
                       fake_figure(src, f"fake_{group}2")]
    procs = [subprocess.Popen(child_command(tmp_path, ms, ["figures", "--fast", "--out", str(out),
                                                           "--only", ",".join(m.FIGURE.name for m in ms)]),
                              env=child_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for ms in mods.values()]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr
    assert sorted(manifest(out)) == ["earlier", "fake_a1", "fake_a2", "fake_b1", "fake_b2"]
    assert leftovers(out) == []


def test_update_manifest_from_many_threads_loses_nothing(tmp_path):
    versions = {"rivervalley": "test"}

    def work(t):
        for i in range(15):
            runner.update_manifest(tmp_path, {f"t{t}-{i}": {"check": "ok"}}, versions)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(manifest(tmp_path)) == 60
    assert json.loads((tmp_path / "manifest.json").read_text())["versions"] == versions


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "npy"])
def test_unreadable_cache_file_is_a_miss_and_is_rewritten(fakes, damage):
    mod = fakes("fake_a")
    first = runner.compute_data(mod.FIGURE, mod.FAST)
    (path,) = runner.CACHE_DIR.glob("fake_a-*.npz")
    good = path.read_bytes()
    assert runner.compute_data(mod.FIGURE, mod.FAST)["x"].tolist() == first["x"].tolist()
    assert mod.CALLS["compute"] == 1  # a hit
    if damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        np.save(path.with_suffix(".npy"), np.zeros(3))
        path.with_suffix(".npy").replace(path)
    data = runner.compute_data(mod.FIGURE, mod.FAST)
    assert mod.CALLS["compute"] == 2  # a miss
    np.testing.assert_array_equal(data["x"], first["x"])
    assert path.read_bytes() == good  # rewritten
    assert leftovers(runner.CACHE_DIR) == []


def test_progress_on_a_non_terminal_is_one_line_per_figure(fakes, tmp_path, capsys):
    fakes("fake_a")
    fakes("fake_b")
    assert not sys.stderr.isatty()
    assert runner.build(["fake_a", "fake_b"], fast=True, out=tmp_path / "out") == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["fake_a", "fake_b"]
    assert all(ln.endswith("check ok") for ln in lines) and "\r" not in captured.out


def test_progress_bar_when_asked(fakes, tmp_path, capsys):
    fakes("fake_a")
    assert runner.build(["fake_a"], fast=True, out=tmp_path / "out", progress=True) == 0
    captured = capsys.readouterr()
    assert "figures: 100%" in captured.err and "1/1" in captured.err
    assert captured.out.split()[0] == "fake_a"


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_cli_shows_a_progress_bar_on_a_terminal(tmp_path):
    """What `make figures` shows: stderr is a terminal, so tqdm draws a bar."""
    src = tmp_path / "src"
    src.mkdir()
    mods = [fake_figure(src, "fake_a"), fake_figure(src, "fake_b")]
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    # a terminal of 24 x 100 characters (a fresh pty has 0 columns: tqdm would draw nothing)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        p = subprocess.Popen(child_command(tmp_path, mods, ["figures", "--fast", "--out",
                                                    str(tmp_path / "o"), "--only", "fake_a,fake_b"]),
                             env=child_env(tmp_path / "cache"), stdout=subprocess.PIPE,
                             stderr=slave, text=True)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        stdout, _ = p.communicate(timeout=300)
    finally:
        os.close(master)
    assert p.returncode == 0
    bar = b"".join(chunks).decode(errors="replace")
    assert "figures: 100%" in bar and "2/2" in bar, bar
    assert [ln.split()[0] for ln in stdout.splitlines()] == ["fake_a", "fake_b"]
