"""Test session set-up: headless matplotlib and a persistent JAX compilation cache.

The cache (``.cache/jax`` in the repository, or ``$JAX_COMPILATION_CACHE_DIR``) is shared with
subprocesses (the sharding test, the CLI tests, notebook kernels) through the environment, so a
program compiled once is not compiled again in another process.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path(__file__).resolve().parents[1] / ".cache" / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")


import pytest  # noqa: E402


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh figure cache folder for one test (runner.CACHE_DIR and $RIVERVALLEY_CACHE)."""
    from rivervalley.figures import runner

    d = tmp_path / "cache"
    monkeypatch.setattr(runner, "CACHE_DIR", d)
    monkeypatch.setenv("RIVERVALLEY_CACHE", str(d))
    return d


@pytest.fixture
def fakes(tmp_path, monkeypatch, cache):
    """``fakes(name, **code)`` registers a fake figure (tests/test_figure_runner.fake_figure) and
    returns its module; the registry holds only these, so a run that wrongly renders "every
    figure" renders the fakes, in milliseconds. A second fake of one name replaces the first."""
    from test_figure_runner import fake_figure

    from rivervalley.figures import registry

    src = tmp_path / "src"
    src.mkdir()
    monkeypatch.setattr(registry, "FIGURES", {})

    def make(name: str, **code):
        monkeypatch.setitem(sys.modules, name, None)  # the fake's module goes with the test
        mod = fake_figure(src, name, **code)
        registry.FIGURES[name] = mod.FIGURE
        return mod

    return make
