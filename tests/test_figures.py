"""Every registered figure: FAST compute, plot, non-empty PNG, its check, byte-stable rebuild;
the registry's contract (gallery order, signatures, a duplicate or malformed registration is an
error); and the CLI's ``figures`` command (--list, unknown names).

What is compared: the figure's numbers through its own ``check`` (tolerances stated there), and
the PNG bytes of two renders in ONE test (same machine, same install, the second from the cache).
No test compares against committed PNGs: another machine's XLA may round differently, so there the
checks hold but the bytes may differ. (The runner's atomic writes, manifest and cache are tested on
cheap fake figures in test_figure_runner.py, the CLI's error contract in test_cli.py.)
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

import rivervalley.figures  # noqa: E402
from rivervalley import cli  # noqa: E402
from rivervalley.figures import registry, runner  # noqa: E402


@pytest.mark.parametrize("name", list(registry.FIGURES))
def test_figure_fast(name, tmp_path, cache):
    fig = registry.FIGURES[name]
    assert fig.name == name and fig.title and fig.text, "a name, a title line, what to see"
    before = {k: str(v) for k, v in matplotlib.rcParams.items() if k != "backend"}
    out1, out2 = tmp_path / "a", tmp_path / "b"
    status = runner.build([name], fast=True, out=out1, progress=False)
    png = out1 / f"{name}.png"
    assert png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the figure's quantitative claim, on the cached FAST data
    data = runner.compute_data(fig, fig.fast)
    assert data and all(hasattr(v, "shape") for v in data.values())
    fig.check(data, fig.fast)
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
    fig = registry.FIGURES["wsd_loss"]
    key = runner.cache_key(fig, fig.fast, 0)
    assert key == runner.cache_key(fig, fig.fast, 0)
    monkeypatch.setattr(runner, "_library_digest", lambda: b"an edited dynamics.py")
    assert runner.cache_key(fig, fig.fast, 0) != key


# -- the registry ------------------------------------------------------------------------------

def test_the_gallery_lists_every_figure_module_once_in_registry_order():
    modules = sorted(m.name for m in pkgutil.iter_modules(rivervalley.figures.__path__)
                     if not m.name.startswith("_") and m.name not in ("registry", "runner"))
    assert sorted(registry.GALLERY) == modules and len(set(registry.GALLERY)) == len(modules)
    assert list(registry.FIGURES) == list(registry.GALLERY)


@pytest.mark.parametrize("name", list(registry.FIGURES))
def test_every_figure_follows_the_contract(name):
    fig = registry.FIGURES[name]
    mod = sys.modules[fig.module]
    assert fig.module == f"rivervalley.figures.{name}" and mod.FIGURE is fig
    for role in ("compute", "plot", "check"):
        params = list(inspect.signature(getattr(fig, role)).parameters)
        assert tuple(params) == registry.SIGNATURES[role], (role, params)
    # one frozen Config holds the numbers; FULL and FAST are instances of it
    assert type(fig.full) is type(fig.fast) is mod.Config
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(fig.full, dataclasses.fields(fig.full)[0].name, None)


def _record(**changes) -> dict:
    def compute(config, key): ...
    def plot(data, config): ...
    def check(data, config): ...

    @dataclasses.dataclass(frozen=True)
    class Config:
        n: int = 1

    args = dict(caption="A title.\nWhat to see.", full=Config(2), fast=Config(1),
                compute=compute, plot=plot, check=check)
    return args | changes


def test_a_duplicate_registration_is_an_error(monkeypatch):
    before = dict(registry.FIGURES)
    with pytest.raises(ValueError, match="figure 'valley' is already registered "
                                         r"\(by rivervalley.figures.valley\)"):
        registry.register("elsewhere.valley", **_record())
    assert registry.FIGURES == before
    monkeypatch.setattr(registry, "FIGURES", {})
    fig = registry.register("tests.fake_new", **_record())
    assert registry.FIGURES == {"fake_new": fig} and fig.seed == 0
    with pytest.raises(ValueError, match="'fake_new' is already registered"):
        registry.register("tests.fake_new", **_record())


@dataclasses.dataclass
class _Mutable:
    n: int = 1


@pytest.mark.parametrize("changes, message", [
    (dict(caption="A title only."), "must be a title line, then what to see"),
    (dict(caption="\nno title"), "must be a title line"),
    (dict(caption=3), "caption=3 must be a string"),
    (dict(full=_Mutable(), fast=_Mutable()), "must be an instance of a frozen dataclass"),
    (dict(fast=_Mutable()), "fast=.* must be a Config, like full"),
    (dict(plot=lambda data: None), r"plot takes \(data\); a figure's plot takes \(data, config\)"),
    (dict(check=lambda config, data: None), r"a figure's check takes \(data, config\)"),
    (dict(compute=lambda config: None), r"compute takes \(config\)"),
    (dict(plot="plot"), "plot='plot' is not callable"),
    (dict(seed=-1), "seed=-1 is outside the valid range"),
])
def test_a_malformed_registration_is_an_error(monkeypatch, changes, message):
    monkeypatch.setattr(registry, "FIGURES", {})
    with pytest.raises(ValueError, match=message):
        registry.register("tests.fake_bad", **_record(**changes))
    assert registry.FIGURES == {}


def test_get_names_the_known_figures():
    assert registry.get("valley") is registry.FIGURES["valley"]
    with pytest.raises(ValueError, match="unknown figure 'nosuch'; known figures: schedules, "):
        registry.get("nosuch")
