# rivervalley: two commands for a fresh machine: `make figures` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Figures and notebooks never need a display; compiled programs are cached across processes.
export MPLBACKEND ?= Agg
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.cache/jax
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS ?= 0.5

.PHONY: install test figures figures-fast bench lint notebooks clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q -n 2 --durations=15

figures: install
	$(BIN)/rivervalley figures --out figures

figures-fast: install
	$(BIN)/rivervalley figures --fast --out figures

bench: install
	$(BIN)/python benchmarks/run_all.py

lint: install
	$(BIN)/ruff check rivervalley tests benchmarks

notebooks: install
	$(BIN)/python -m rivervalley.notebooks_runner notebooks

clean:
	rm -rf $(VENV) .pytest_cache .cache *.egg-info
