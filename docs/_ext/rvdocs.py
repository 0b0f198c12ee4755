"""Build-time generation and checks of rivervalley's documentation (a Sphinx extension).

Everything that can drift from the code is generated from it at every build, into ``docs/``
(``api/``, ``gallery.md``, ``figures/``, ``notebooks/``: listed in ``docs/.gitignore``):

- ``api/``: one reference page per public module, grouped as the package is; a page lists every
  name of the module's ``__all__`` with an autodoc directive (no hand-written signatures);
- ``gallery.md``: every figure of :data:`rivervalley.figures.registry.FIGURES` with its
  ``CAPTION``, the command that makes it and its PNG from ``figures/``;
- ``notebooks/``: copies of ``notebooks/*.ipynb`` (stored without outputs), executed by myst-nb
  in fast mode (``RIVERVALLEY_FAST=1``) during the build.

Checks (each fails the build): a public name (in a module's ``__all__``) without a docstring, a
public name that the reference does not document, a registered figure without its PNG.

The functions below are also used by ``tests/test_docs.py`` without a build.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import os
import pkgutil
import re
import shutil
from pathlib import Path
from types import ModuleType

DOCS = Path(__file__).resolve().parent.parent
#: The checkout whose figures/ and notebooks/ the site shows: ``$RIVERVALLEY_ROOT`` (a test builds
#: a copy of docs/ elsewhere), else the folder above docs/.
ROOT = Path(os.environ.get("RIVERVALLEY_ROOT") or DOCS.parent).resolve()

#: Reference sections in the order of the package's data flow (DESIGN.md); a public module not
#: listed here still gets a page, under "Other modules", so a new module is never left out.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("The package", ("rivervalley",)),
    ("Schedules and plans", ("rivervalley.schedules", "rivervalley.plans", "rivervalley.export")),
    ("Problems and noise", ("rivervalley.protocols", "rivervalley.problems", "rivervalley.landscapes",
                            "rivervalley.bigram",
                            "rivervalley.transformer", "rivervalley.text", "rivervalley.noise")),
    ("Running and results", ("rivervalley.dynamics", "rivervalley.results",
                             "rivervalley.results_io")),
    ("Theory and analysis", ("rivervalley.theory", "rivervalley.hessian", "rivervalley.diagnose")),
    ("Loss-curve laws", ("rivervalley.laws", "rivervalley.laws_cli")),
    ("Plots, figures and tools", ("rivervalley.plotting", "rivervalley.figures",
                                  "rivervalley.figures.registry", "rivervalley.figures.runner",
                                  "rivervalley.styles", "rivervalley.explorer", "rivervalley.cli",
                                  "rivervalley.notebooks_runner")),
)
OTHER_GROUP = "Other modules"


# ---------------------------------------------------------------------------------------------
# what is public
# ---------------------------------------------------------------------------------------------

def is_figure_module(mod: ModuleType) -> bool:
    """A module that registers a figure (``FIGURE = register(__name__, ...)``): shown in the
    gallery, not in the reference."""
    from rivervalley.figures.registry import Figure

    return isinstance(getattr(mod, "FIGURE", None), Figure)


def public_modules() -> list[str]:
    """Every public module of the package: ``rivervalley``, its modules and subpackages whose
    names do not start with ``_``, and their public submodules (figure modules excepted: the
    gallery shows them)."""
    import rivervalley

    names = ["rivervalley"]

    def walk(pkg: ModuleType) -> None:
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
            if info.name.startswith("_"):
                continue
            full = f"{pkg.__name__}.{info.name}"
            mod = importlib.import_module(full)
            if is_figure_module(mod):
                continue
            names.append(full)
            if info.ispkg:
                walk(mod)

    walk(rivervalley)
    return names


def public_names(modname: str) -> list[str] | None:
    """The module's ``__all__`` (None where it has none)."""
    mod = importlib.import_module(modname)
    names = getattr(mod, "__all__", None)
    return None if names is None else list(names)


def kind_of(modname: str, name: str) -> str:
    """How the reference documents ``modname.name``: ``module``, ``reexport`` (documented where it
    is defined), ``exception``, ``class``, ``function`` or ``data``."""
    mod = importlib.import_module(modname)
    obj = getattr(mod, name)
    if inspect.ismodule(obj):
        return "module"
    home = getattr(obj, "__module__", None)
    if (inspect.isclass(obj) or inspect.isroutine(obj)) and home and home != modname:
        if home.startswith("rivervalley.") and not home.split(".")[-1].startswith("_"):
            return "reexport"
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if inspect.isroutine(obj) or (callable(obj) and hasattr(obj, "__wrapped__")):
        return "function"
    return "data"


def _attribute_docs(modname: str) -> dict[str, str]:
    """``{name: doc}`` of the module-level data documented in the source (``#:`` comments before
    or on the assignment, or a string literal after it): Sphinx's own reading where Sphinx is
    installed (what autodoc shows), else the same rules read here (the tests run without it)."""
    try:
        from sphinx.pycode import ModuleAnalyzer
    except ImportError:
        return _attribute_docs_ast(modname)
    try:
        docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
    except Exception:  # noqa: BLE001 - no source: no attribute docs
        return {}
    return {name: "\n".join(lines).strip() for (scope, name), lines in docs.items() if scope == ""}


def _attribute_docs_ast(modname: str) -> dict[str, str]:
    mod = importlib.import_module(modname)
    try:
        source = inspect.getsource(mod)
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    body = ast.parse(source).body
    docs: dict[str, str] = {}
    for i, node in enumerate(body):
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        else:
            continue
        comment = []
        j = node.lineno - 2  # the lines right above the assignment
        while j >= 0 and lines[j].strip().startswith("#:"):
            comment.insert(0, lines[j].strip()[2:].strip())
            j -= 1
        inline = lines[node.lineno - 1].partition("#:")[2].strip() if "#:" in lines[node.lineno - 1] else ""
        nxt = body[i + 1] if i + 1 < len(body) else None
        after = (nxt.value.value if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                 and isinstance(nxt.value.value, str) else "")
        doc = "\n".join(comment).strip() or inline or inspect.cleandoc(after)
        for t in targets:
            if doc:
                docs[t] = doc
    return docs


def docstring_of(modname: str, name: str) -> str:
    """The docstring the reference shows for ``modname.name`` ('' when there is none).

    A class's own ``__doc__`` (not a base class's, and not the signature a dataclass or a
    NamedTuple writes when its author wrote none); a function's ``__doc__``; a module's docstring;
    for data, its ``#:`` comment or the string literal after its assignment.
    """
    mod = importlib.import_module(modname)
    obj = getattr(mod, name)
    kind = kind_of(modname, name)
    if kind == "reexport":
        return docstring_of(obj.__module__, name) if hasattr(importlib.import_module(obj.__module__),
                                                             name) else (obj.__doc__ or "").strip()
    if kind == "module":
        return (obj.__doc__ or "").strip()
    if kind in ("class", "exception"):
        doc = (obj.__dict__.get("__doc__") or "").strip()
        auto = doc.startswith(f"{obj.__name__}(") and (dataclasses.is_dataclass(obj)
                                                       or hasattr(obj, "_fields"))
        return "" if auto else doc
    if kind == "function":
        return (getattr(obj, "__doc__", None) or "").strip()
    return attribute_doc(modname, name)


def attribute_doc(modname: str, name: str) -> str:
    """The ``#:`` comment (or string after the assignment) of module data ``modname.name``: in
    the module itself, else in the private module it was imported from (``rivervalley.laws``
    re-exports the laws of ``rivervalley._laws_registry``)."""
    import sys

    own = _attribute_docs(modname).get(name, "")
    if own:
        return own
    obj = getattr(importlib.import_module(modname), name, None)
    for other, mod in sorted(sys.modules.items()):
        if (other.startswith("rivervalley.") and other.rsplit(".", 1)[-1].startswith("_")
                and mod is not None and getattr(mod, name, None) is obj):
            doc = _attribute_docs(other).get(name, "")
            if doc:
                return doc
    return ""


def exempt(name: str) -> bool:
    """Dunder names (``__version__``) need no docstring: the reference shows their value."""
    return name.startswith("__") and name.endswith("__")


def undocumented() -> list[tuple[str, str]]:
    """``(module, name)`` of every public name without a docstring."""
    missing = []
    for modname in public_modules():
        for name in public_names(modname) or []:
            if not exempt(name) and not docstring_of(modname, name):
                missing.append((modname, name))
    return missing


def modules_without_all() -> list[str]:
    """Public modules without ``__all__`` (their reference shows their documented members)."""
    return [m for m in public_modules() if public_names(m) is None]


# ---------------------------------------------------------------------------------------------
# the reference pages
# ---------------------------------------------------------------------------------------------

def grouped_modules() -> list[tuple[str, list[str]]]:
    """``(section title, module names)`` in reference order; every public module exactly once."""
    mods = public_modules()
    seen: set[str] = set()
    groups = []
    for title, names in GROUPS:
        present = [m for m in names if m in mods]
        seen.update(present)
        if present:
            groups.append((title, present))
    rest = [m for m in mods if m not in seen]
    if rest:
        groups.append((OTHER_GROUP, rest))
    return groups


def _title(text: str, ch: str = "=") -> str:
    return f"{text}\n{ch * len(text)}\n"


_ROLE = re.compile(r":[\w:]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")


def _first_line(doc: str) -> str:
    """The first paragraph on one line, its cross-references as plain ``literals`` (a summary in
    another module's table would resolve them in the wrong module)."""
    line = doc.strip().split("\n\n")[0].replace("\n", " ").strip()
    return _ROLE.sub(lambda m: f"``{m.group(1).split('.')[-1] if '~' in m.group(0) else m.group(1)}``",
                     line)


def api_page(modname: str) -> str:
    """The reST text of one module's reference page."""
    names = public_names(modname)
    lines = [f".. _api-{modname}:\n", _title(f"``{modname}``")]
    if names is None:  # no __all__: its documented members
        lines.append(f".. automodule:: {modname}\n   :members:\n   :show-inheritance:\n")
        return "\n".join(lines)
    lines.append(f".. automodule:: {modname}\n   :no-members:\n")
    if not names:
        return "\n".join(lines)
    rows = []
    body = []
    for name in names:
        kind = kind_of(modname, name)
        obj = getattr(importlib.import_module(modname), name)
        full = f"{modname}.{name}"
        summary = _escape_bars(_first_line(docstring_of(modname, name))) if not exempt(name) else ""
        if kind == "module":
            rows.append((f":py:mod:`{name} <{obj.__name__}>`", summary))
        elif kind == "reexport":
            rows.append((f":py:obj:`{name} <{obj.__module__}.{name}>`",
                         f"{summary} (from :py:mod:`{obj.__module__}`)"))
        elif exempt(name):
            rows.append((f"``{name}``", f"``{obj!s}``"))
        else:
            rows.append((f":py:obj:`{name} <{full}>`", summary or f"({kind})"))
            directive = {"class": "autoclass", "exception": "autoexception",
                         "function": "autofunction", "data": "autodata"}[kind]
            # inherited members too (a public class may inherit from a private base); rvdocs
            # skips those of classes outside the package (tuple, Exception)
            opts = ("   :members:\n   :inherited-members:\n   :show-inheritance:\n"
                    if kind in ("class", "exception") else "")
            body.append(f".. {directive}:: {full}\n{opts}")
    lines.append(".. rubric:: Public names (``__all__``)\n")
    lines.append(".. list-table::\n   :widths: 30 70\n")
    for a, b in rows:
        lines.append(f"   * - {a}\n     - {b or ' '}")
    lines.append("")
    lines.extend(body)
    return "\n".join(lines)


def api_index() -> str:
    out = [".. _api:\n", _title("API reference"),
           "Generated from the docstrings at every build: one page per public module, grouped as",
           "the package is (``schedules -> plans -> dynamics -> Trajectory -> theory / laws ->",
           "plotting -> figures``). A module's public names are its ``__all__``.\n"]
    for title, mods in grouped_modules():
        out.append(".. toctree::\n   :maxdepth: 1\n" f"   :caption: {title}\n")
        out.extend(f"   {m}" for m in mods)
        out.append("")
    return "\n".join(out)


def write_api(outdir: Path) -> dict[str, str]:
    """Write the reference pages under ``outdir``; return ``{module: page text}``."""
    outdir.mkdir(parents=True, exist_ok=True)
    pages = {m: api_page(m) for m in public_modules()}
    _write(outdir / "index.rst", api_index())
    for m, text in pages.items():
        _write(outdir / f"{m}.rst", text)
    return pages


# ---------------------------------------------------------------------------------------------
# the gallery
# ---------------------------------------------------------------------------------------------

_MD_SPECIAL = set("\\`*_{}[]<>()#+-!|$~")


def md_escape(text: str) -> str:
    """Plain text as Markdown that renders as itself (every Markdown punctuation escaped)."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


def figure_entries(figdir: Path) -> list[dict]:
    """One dict per registered figure, in gallery order: name, title, text, png, seconds."""
    from rivervalley.figures import registry

    manifest_path = figdir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())["figures"] if manifest_path.exists() else {}
    out = []
    for name, figure in registry.FIGURES.items():
        rec = manifest.get(name, {})
        out.append({"name": name, "title": figure.title, "text": " ".join(figure.text.split()),
                    "module": figure.module, "png": figdir / f"{name}.png",
                    "seconds": None if rec.get("fast", True) else rec.get("seconds")})
    return out


def gallery_page(entries: list[dict], image_prefix: str = "figures") -> str:
    out = ["(gallery)=", "# Figure gallery", "",
           "Every figure of the figure registry (`rivervalley.figures.registry.FIGURES`), in its",
           "order, with its caption (the module's `CAPTION`) and the command that regenerates it.",
           "This page is generated from the registry at each documentation build; the images are",
           "the PNGs committed in `figures/`.", "",
           "`make figures` regenerates all of them (`rivervalley figures --out figures`); every",
           "figure's quantitative check runs too and is recorded in `figures/manifest.json`. Add",
           "`--fast` for small configurations (seconds).", ""]
    for e in entries:
        name = e["name"]
        out += [f"({'fig-' + name.replace('_', '-')})=",
                f"## {md_escape(name)}", "",
                f"**{md_escape(e['title'])}**", "",
                *([f"```{{image}} {image_prefix}/{name}.png", f":alt: {name}", ":width: 100%", "```"]
                  if e["png"].exists() else  # the build fails on it (write_gallery reports it)
                  [f"*No image: `figures/{name}.png` is missing.*"]), "",
                md_escape(e["text"]), ""]
        made = (f"; its last full-size run took {e['seconds']:.0f} s (`figures/manifest.json`)"
                if e["seconds"] else "")
        out += ["```bash", f"rivervalley figures --only {name} --out figures", "```", "",
                f"Module: `{e['module']}`{made}.", ""]
    return "\n".join(out)


def write_gallery(outdir: Path, figdir: Path = ROOT / "figures") -> list[str]:
    """Write ``gallery.md`` and copy the PNGs; return the problems (registered figures without
    a PNG)."""
    entries = figure_entries(figdir)
    problems = [f"figure {e['name']!r} is registered but {e['png']} does not exist "
                f"(make it with: rivervalley figures --only {e['name']} --out figures)"
                for e in entries if not e["png"].exists()]
    (outdir / "figures").mkdir(parents=True, exist_ok=True)
    for e in entries:
        if e["png"].exists():
            _copy(e["png"], outdir / "figures" / e["png"].name)
    _write(outdir / "gallery.md", gallery_page(entries))
    return problems


# ---------------------------------------------------------------------------------------------
# notebooks
# ---------------------------------------------------------------------------------------------

def write_notebooks(outdir: Path, srcdir: Path = ROOT / "notebooks") -> list[str]:
    """Copy the notebooks (without outputs, as stored) for myst-nb to execute; return their names."""
    import nbformat

    outdir.mkdir(parents=True, exist_ok=True)
    names = []
    for p in sorted(srcdir.glob("*.ipynb")):
        nb = nbformat.read(p, as_version=4)
        for cell in nb.cells:  # never render a stray stored output: the build makes them
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        _write(outdir / p.name, nbformat.writes(nb) + "\n")
        names.append(p.stem)
    index = ["(notebooks)=", "# Notebooks", "",
             "The tutorials of `notebooks/`, executed at each documentation build in fast mode",
             "(`RIVERVALLEY_FAST=1`: small runs, the same code). Run them at full size with",
             "`make notebooks`, or interactively with `jupyter lab notebooks/` after",
             "`pip install -e \".[notebooks]\"`.", "",
             "```{toctree}", ":maxdepth: 1", ""] + names + ["```", ""]
    _write(outdir / "index.md", "\n".join(index))
    return names


# ---------------------------------------------------------------------------------------------
# helpers and the Sphinx hooks
# ---------------------------------------------------------------------------------------------

def _write(path: Path, text: str) -> None:
    """Write only when the text changed (an unchanged page keeps its time: no needless re-read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _copy(src: Path, dst: Path) -> None:
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        shutil.copyfile(src, dst)


def generate(docs: Path = DOCS) -> list[str]:
    """Generate every page into ``docs`` (``api/``, ``gallery.md`` + ``figures/``, ``notebooks/``:
    all ignored by git); return the problems found (each fails the build). A file left in those
    folders by an earlier build (a removed module or notebook) is deleted."""
    api, figures, notebooks = docs / "api", docs / "figures", docs / "notebooks"
    write_api(api)
    problems = write_gallery(docs, ROOT / "figures")
    names = write_notebooks(notebooks)
    expected = ({api / f"{m}.rst" for m in public_modules()} | {api / "index.rst"}
                | {figures / f"{e['name']}.png" for e in figure_entries(ROOT / "figures")}
                | {notebooks / f"{n}.ipynb" for n in names} | {notebooks / "index.md"})
    for folder in (api, figures, notebooks):
        for p in folder.rglob("*"):
            if p.is_file() and p not in expected:
                p.unlink()
    return problems


def _report(problems: list[str]) -> None:
    """Each problem is a warning of type ``rvdocs``: the strict build (``-W``) fails on it, and
    ``--keep-going`` reports all of them at once."""
    from sphinx.util import logging

    log = logging.getLogger("rvdocs")
    for p in problems:
        log.warning("rivervalley docs: %s", p, type="rvdocs")


def _builder_inited(app) -> None:
    _report(generate())


def _check_consistency(app, env) -> None:
    """After reading: every public name has a docstring and a target in the reference."""
    objects = env.get_domain("py").objects
    problems = [f"{m}.{n} has no docstring" for m, n in undocumented()]
    for modname in public_modules():
        if modname not in objects:
            problems.append(f"module {modname} is not in the reference")
        for name in public_names(modname) or []:
            if exempt(name):
                continue
            kind = kind_of(modname, name)
            obj = getattr(importlib.import_module(modname), name)
            target = (obj.__name__ if kind == "module" else
                      f"{obj.__module__}.{name}" if kind == "reexport" else f"{modname}.{name}")
            if target not in objects:
                problems.append(f"{modname}.{name} is not documented in the reference ({target})")
    _report(problems)


# --- docstrings: what reST misreads in plain-text formulas -----------------------------------

_TABLE_SEP = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+$")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip()[1:-1].split("|")]


def _escape_bars(line: str) -> str:
    """``|x|`` (an absolute value) is a reST substitution: escape bars outside ``literals``."""
    parts = re.split(r"(``.*?``)", line)
    return "".join(p if p.startswith("``") else p.replace("|", "\\|") for p in parts)


def fix_docstring(lines: list[str]) -> list[str]:
    """The docstring lines as reST renders them as their authors meant: a Markdown pipe table
    becomes a ``list-table``, a bare ``|`` (``|z|``) is escaped; doctest and literal blocks are
    left alone."""
    out: list[str] = []
    i, literal_indent, in_doctest = 0, None, False
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None:  # inside a literal block: until a dedent to its parent
            if stripped and indent <= literal_indent:
                literal_indent = None
            else:
                out.append(line)
                i += 1
                continue
        if in_doctest:
            if not stripped:
                in_doctest = False
            out.append(line)
            i += 1
            continue
        if stripped.startswith(">>>"):
            in_doctest = True
            out.append(line)
            i += 1
            continue
        if (stripped.startswith("|") and stripped.endswith("|") and i + 1 < len(lines)
                and _TABLE_SEP.match(lines[i + 1].strip())):
            pad = " " * indent
            rows = [_cells(line)]
            j = i + 2
            while j < len(lines) and lines[j].strip().startswith("|") and lines[j].strip().endswith("|"):
                rows.append(_cells(lines[j]))
                j += 1
            if out and out[-1].strip():
                out.append("")
            out += [f"{pad}.. list-table::", f"{pad}   :header-rows: 1", ""]
            for row in rows:
                for k, cell in enumerate(row):
                    out.append(f"{pad}   {'*' if k == 0 else ' '} - {_escape_bars(cell) or ' '}")
            out.append("")
            i = j
            continue
        out.append(_escape_bars(line))
        if stripped.endswith("::"):
            literal_indent = indent
        i += 1
    return out


def _process_docstring(app, what, name, obj, options, lines) -> None:
    if what == "data":
        modname, _, attr = name.rpartition(".")
        if attr not in _attribute_docs(modname):
            # not its type's docstring: its own (from the private module that defines it) or none
            lines[:] = attribute_doc(modname, attr).splitlines() if _is_module(modname) else []
    if what in ("data", "attribute", "property") and lines:
        # napoleon reads "text: more" on the first line of an attribute's docstring as
        # "type: description"; a leading empty comment keeps the sentence a sentence
        lines[:0] = ["..", ""]
    lines[:] = fix_docstring(lines)


_IVAR_MANY = re.compile(r"^(\s*):ivar ([\w]+(?:\s*,\s*\w+)+):(.*)$")


def _split_ivars(app, what, name, obj, options, lines) -> None:
    """After napoleon: ``lower, upper: bounds`` in an Attributes section is one field per name
    (Sphinx would read ``lower,`` as the type of ``upper``)."""
    out = []
    for line in lines:
        m = _IVAR_MANY.match(line)
        if m:
            pad, names, desc = m.groups()
            out += [f"{pad}:ivar {n.strip()}:{desc}" for n in names.split(",")]
        else:
            out.append(line)
    lines[:] = out


def _skip_member(app, what, name, obj, skip, options):
    """Classes show their inherited members (a public model inherits ``decompose`` from a private
    base), but not those of ``tuple``, ``Exception`` or other classes outside the package."""
    if what not in ("class", "exception"):
        return None
    target = obj.fget if isinstance(obj, property) else obj
    home = getattr(target, "__module__", None) or getattr(getattr(target, "__objclass__", None),
                                                           "__module__", None)
    if isinstance(home, str) and not home.startswith("rivervalley"):
        return True
    return None


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _missing_reference(app, env, node, contnode):
    """``rivervalley.simulate`` and the other re-exports of the package resolve to the page of
    the module that defines them."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("rivervalley."):
        return None
    import rivervalley

    name = target.removeprefix("rivervalley.")
    obj = getattr(rivervalley, name, None) if "." not in name else None
    home = getattr(obj, "__module__", None)
    if obj is None or inspect.ismodule(obj) or not home or home == "rivervalley":
        return None
    return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, node["reftype"],
                                             f"{home}.{name}", node, contnode)


_READ_START: dict[str, float] = {}
_READ_SECONDS: dict[str, float] = {}


def _source_read(app, docname, source) -> None:
    import time

    _READ_START[docname] = time.perf_counter()


def _doctree_read(app, doctree) -> None:
    import time

    docname = app.env.docname
    if docname.startswith("notebooks/") and docname != "notebooks/index" and docname in _READ_START:
        _READ_SECONDS[docname] = time.perf_counter() - _READ_START[docname]


def _build_finished(app, exception) -> None:
    """One line per notebook with the seconds its execution and parsing took (printed even
    under ``-q``: CI's time budget is the point)."""
    for docname, sec in sorted(_READ_SECONDS.items()):
        print(f"docs: {sec:6.1f} s  {docname}", flush=True)


def setup(app):
    app.connect("builder-inited", _builder_inited)
    app.connect("env-check-consistency", _check_consistency)
    app.connect("autodoc-process-docstring", _process_docstring, priority=400)  # before napoleon
    app.connect("autodoc-process-docstring", _split_ivars, priority=600)  # after it
    app.connect("missing-reference", _missing_reference)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("source-read", _source_read)
    app.connect("doctree-read", _doctree_read)
    app.connect("build-finished", _build_finished)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
