"""Sphinx configuration of rivervalley's documentation (``make docs`` builds it into ``site/``).

Sphinx + autodoc/napoleon (the API reference from the docstrings, which use Google sections and
Sphinx roles) + myst-nb (Markdown pages and the notebooks, executed at build time) + furo.
``docs/_ext/rvdocs.py`` generates the reference pages, the gallery and the notebook copies from
the code at every build and fails the build on an undocumented public name.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

# The notebooks run in fast mode (small runs, the same code) in kernels started by this process,
# which inherit its environment. Inline figures (an Agg backend shows none in a notebook).
os.environ["RIVERVALLEY_FAST"] = "1"
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
# Compiled programs are cached across processes, as the Makefile does for the tests and figures
# (CI's `make test` runs the notebooks first: `make docs` then reuses their compilations).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(DOCS.parent / ".cache" / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import rivervalley  # noqa: E402

project = "rivervalley"
author = "rivervalley contributors"
copyright = "rivervalley contributors (MIT)"
release = version = rivervalley.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_nb",
    "rvdocs",
]

exclude_patterns = ["README_draft.md", "_build", "**/.ipynb_checkpoints", ".DS_Store"]
root_doc = "index"
# Notebook titles are "# 1. Quickstart ..."; the Markdown pages use ## sections under one #.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]

# --- strictness: every cross-reference must resolve ------------------------------------------
# Inside the package every reference must resolve. References into other projects (jax, numpy,
# optax, matplotlib, the standard library) cannot without downloading their inventories (CI may
# have no network), so only they are exempt.
nitpicky = True
_EXTERNAL = (r"(jax|jnp|jaxlib|np|numpy|optax|matplotlib|mpl|plt|scipy|torch|typing|typing_extensions"
             r"|collections|types|builtins|pathlib|os|argparse|dataclasses|functools|abc|enum|io"
             r"|contextlib|nbclient|nbformat|ipywidgets|IPython|levanter)(\..*)?")
_BUILTINS = (r"(int|float|complex|str|bytes|bool|None|NoneType|object|list|tuple|dict|set|frozenset"
             r"|type|callable|Callable|Any|Sequence|Mapping|Iterable|Iterator|Hashable|Literal"
             r"|Optional|Union|PathLike|Path|ModuleType|NamedTuple|Exception|ValueError|TypeError"
             r"|RuntimeError|AssertionError|KeyError|BinaryIO|TextIO|Array|ArrayLike|PyTree|DTypeLike"
             r"|ndarray|Figure|Axes|Colormap|Normalize|GradientTransformation|Schedule|dtype"
             r"|optional|default|array|array_like|scalar|Key|PRNGKey"
             r"|RadioButtons|Slider|Button|CheckButtons|TextBox|Widget)")
# Private names (``_Base`` as a base class, ``_helper`` in a module docstring) have no page.
_PRIVATE = r"(rivervalley\.)?([\w.]*\.)?_[A-Za-z]\w*(\.\w+)*"
nitpick_ignore_regex = [(r"py:.*", _EXTERNAL), (r"py:.*", _BUILTINS), (r"py:.*", _PRIVATE)]

# --- autodoc ----------------------------------------------------------------------------------
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False
autoclass_content = "class"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" as fields of the class, not a second object per field
add_module_names = False
python_use_unqualified_type_names = True

# --- notebooks (myst-nb) ----------------------------------------------------------------------
# "force": every build executes every notebook (there are no stored outputs to fall back on); a
# cell that raises fails the build. RIVERVALLEY_DOCS_EXECUTE=0 renders them unexecuted, for a
# quick local preview only (make docs never sets it).
nb_execution_mode = "force" if os.environ.get("RIVERVALLEY_DOCS_EXECUTE", "1") != "0" else "off"
nb_execution_timeout = 600
# A failing cell is a warning (type mystnb.exec, with its traceback): the strict build fails on
# it after reporting every failing notebook, not at the first one.
nb_execution_raise_on_error = False
nb_execution_show_tb = True
nb_execution_in_temp = False  # the kernel's working folder is the notebook's (as make notebooks)
nb_merge_streams = True

# --- HTML -------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"rivervalley {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
html_copy_source = False
