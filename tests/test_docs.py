"""The documentation: every public name documented and in the reference; the built site links up.

The fast tests need no Sphinx: they read the package and the pages ``docs/_ext/rvdocs.py``
generates. The build test needs the ``docs`` extra (Sphinx, myst-nb, furo) and skips without it;
it builds a copy of ``docs/`` without executing the notebooks (``make docs`` executes them, strictly).
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import rvdocs  # noqa: E402  (docs/_ext/rvdocs.py)


def _load_build_script():
    """docs/build.py under its own name (``build`` is also a PyPI package's name)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("rivervalley_docs_build", DOCS / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


docs_build = _load_build_script()


def _modules_of_the_package() -> list[str]:
    """Found here independently of rvdocs: rivervalley/*.py and subpackages, no leading _."""
    names = ["rivervalley"]
    for p in sorted((ROOT / "rivervalley").iterdir()):
        if p.name.startswith("_"):
            continue
        if p.suffix == ".py":
            names.append(f"rivervalley.{p.stem}")
        elif (p / "__init__.py").exists():
            names.append(f"rivervalley.{p.name}")
    return names


def _public(modname: str) -> list[str]:
    return list(getattr(importlib.import_module(modname), "__all__", []))


def test_every_public_name_has_a_docstring():
    missing = rvdocs.undocumented()
    assert not missing, ("public names (in __all__) without a docstring (a ``#:`` comment for "
                         "data): " + ", ".join(f"{m}.{n}" for m, n in missing))


def test_docstring_check_sees_a_missing_one(monkeypatch):
    """The check itself: a function, a class and a constant without docs are reported; the
    auto-generated signature of a dataclass does not count as a docstring."""
    import dataclasses
    import types

    mod = types.ModuleType("rivervalley_fake_for_docs")

    def f():
        pass

    @dataclasses.dataclass
    class C:
        x: int = 0

    f.__module__ = C.__module__ = mod.__name__
    mod.f, mod.C, mod.K = f, C, 3
    mod.__all__ = ["f", "C", "K"]
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    assert [rvdocs.docstring_of(mod.__name__, n) for n in mod.__all__] == ["", "", ""]
    f.__doc__ = "Documented."
    assert rvdocs.docstring_of(mod.__name__, "f") == "Documented."


def test_every_public_module_and_name_is_in_the_reference(tmp_path):
    pages = rvdocs.write_api(tmp_path)
    modules = _modules_of_the_package()
    assert set(modules) <= set(pages), f"modules without a reference page: {set(modules) - set(pages)}"
    index = (tmp_path / "index.rst").read_text()
    for m in modules:
        assert re.search(rf"^   {re.escape(m)}$", index, re.M), f"{m} is not in the reference's index"
        text = (tmp_path / f"{m}.rst").read_text()
        assert f".. automodule:: {m}" in text
        for name in _public(m):
            obj = getattr(importlib.import_module(m), name)
            kind = rvdocs.kind_of(m, name)
            if kind == "module":
                ok = f"<{obj.__name__}>`" in text
            elif kind == "reexport":  # documented where it is defined, linked from here
                ok = f"<{obj.__module__}.{name}>`" in text and name in _public(obj.__module__)
            elif rvdocs.exempt(name):
                ok = f"``{name}``" in text
            else:
                ok = re.search(rf"^\.\. auto\w+:: {re.escape(m)}\.{re.escape(name)}$", text, re.M)
            assert ok, f"{m}.{name} ({kind}) is not documented in the reference page of {m}"


def test_gallery_lists_every_registered_figure(tmp_path):
    from rivervalley.figures import registry

    problems = rvdocs.write_gallery(tmp_path, ROOT / "figures")
    assert not problems, problems
    page = (tmp_path / "gallery.md").read_text()
    for name, figure in registry.FIGURES.items():
        title = figure.title
        assert f"## {rvdocs.md_escape(name)}" in page
        assert rvdocs.md_escape(title) in page, f"the caption of {name} is not on the gallery page"
        assert f"rivervalley figures --only {name} --out figures" in page
        copied = (tmp_path / "figures" / f"{name}.png").read_bytes()
        assert copied == (ROOT / "figures" / f"{name}.png").read_bytes()
    # a registered figure without its PNG is a problem (it fails the build)
    empty = tmp_path / "nofigs"
    empty.mkdir()
    assert len(rvdocs.write_gallery(tmp_path / "out", empty)) == len(registry.FIGURES)


def test_notebook_copies_carry_no_outputs(tmp_path):
    import nbformat

    names = rvdocs.write_notebooks(tmp_path / "nb")
    assert names == sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    for n in names:
        nb = nbformat.read(tmp_path / "nb" / f"{n}.ipynb", as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
        assert n in (tmp_path / "nb" / "index.md").read_text()


def test_docstring_fixes_for_rest():
    """A Markdown table in a docstring becomes a list-table; |z| is escaped, not a substitution;
    doctest lines are left alone."""
    lines = ["Intro:", "", "| shape | mult(r) |", "|---|---|", "| linear | m + (1-m)(1-r) |", "",
             "Bound |z| <= 5, ``a|b`` kept.", "", ">>> abs(-1) | 0", "1"]
    out = rvdocs.fix_docstring(lines)
    assert ".. list-table::" in "\n".join(out)
    assert "     - m + (1-m)(1-r)" in out
    assert "Bound \\|z\\| <= 5, ``a|b`` kept." in out
    assert ">>> abs(-1) | 0" in out


def test_link_check_finds_a_broken_link(tmp_path):
    (tmp_path / "a.html").write_text('<a href="b.html#x">b</a> <a href="https://example.org">e</a>')
    (tmp_path / "b.html").write_text('<p id="x">x</p><a href="a.html#nope">a</a><img src="i.png">')
    broken = docs_build.check_links(tmp_path)
    assert len(broken) == 2 and "nope" in broken[0] and "i.png" in broken[1], broken


def _docs_extra_missing() -> str | None:
    for mod in ("sphinx", "myst_nb", "furo"):
        try:
            importlib.import_module(mod)
        except ImportError:
            return f"the docs extra is not installed ({mod} missing): pip install -e '.[docs]'"
    return None


def _local_targets(page: Path) -> set[Path]:
    parsed = docs_build._parse(page)
    out = set()
    for link in parsed.links:
        parts = urlsplit(link)
        if not parts.scheme and not parts.netloc and parts.path:
            out.add((page.parent / parts.path).resolve())
    return out


@pytest.mark.slow
@pytest.mark.skipif(_docs_extra_missing() is not None, reason=str(_docs_extra_missing()))
def test_built_site_index_and_api_pages_link_to_each_other(tmp_path):
    """Build a copy of docs/ (notebooks not executed: seconds, not minutes) and check the HTML."""
    src = tmp_path / "docs"
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns("api", "notebooks", "figures",
                                                             "gallery.md", "__pycache__"))
    site = tmp_path / "site"
    env = dict(os.environ, RIVERVALLEY_ROOT=str(ROOT), RIVERVALLEY_DOCS_EXECUTE="0", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-E", "-a", "-q", "-b", "html",
                           "-d", str(tmp_path / "doctrees"), str(src), str(site)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    index, api = site / "index.html", site / "api" / "rivervalley.dynamics.html"
    assert index.exists() and api.exists()
    assert api.resolve() in _local_targets(index), "index.html does not link to the API page"
    assert index.resolve() in _local_targets(api), "the API page does not link back to index.html"
    assert "rivervalley.dynamics.simulate" in api.read_text()  # the reference is there
    assert not docs_build.check_links(site)
