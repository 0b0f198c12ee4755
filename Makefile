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

# The optional torch extra, for the tests that drive a real torch LambdaLR. Pinned: 2.13.0 is a
# CPU wheel (an unpinned torch pulls a CUDA build of several GB).
TORCH_STAMP := $(VENV)/.torch-stamp
$(TORCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[test,torch]"
	touch $(TORCH_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

# The suite and every docstring example of the package.
test: install $(TORCH_STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=15 --doctest-modules tests rivervalley

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
