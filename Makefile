# rivervalley: two commands for a fresh machine: `make figures` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Figures and notebooks never need a display; compiled programs are cached across processes.
export MPLBACKEND ?= Agg
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.cache/jax
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS ?= 0.5

.PHONY: install test figures figures-fast bench lint notebooks docs clean

install: $(STAMP)

# The optional extras the tests also exercise: torch (a real LambdaLR; pinned, 2.13.0 is a CPU
# wheel, an unpinned torch pulls a CUDA build of several GB) and docs (the site's build test).
EXTRAS_STAMP := $(VENV)/.extras-stamp
$(EXTRAS_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[test,torch,docs]"
	touch $(EXTRAS_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

# The suite and every docstring example of the package.
test: install $(EXTRAS_STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=15 --doctest-modules tests rivervalley

figures: install
	$(BIN)/rivervalley figures --out figures

figures-fast: install
	$(BIN)/rivervalley figures --fast --out figures

bench: install
	$(BIN)/python benchmarks/run_all.py

lint: install
	$(BIN)/ruff check rivervalley tests benchmarks

# The documentation site into site/, strict: a warning, a broken link or reference, an
# undocumented public name or a failing notebook fails it. Open: python -m http.server -d site
docs: install $(EXTRAS_STAMP)
	$(BIN)/python docs/build.py --out site

notebooks: install
	$(BIN)/python -m rivervalley.notebooks_runner notebooks

clean:
	rm -rf $(VENV) .pytest_cache .cache *.egg-info site docs/api docs/notebooks docs/figures docs/gallery.md
