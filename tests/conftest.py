"""Test session set-up: headless matplotlib and a persistent JAX compilation cache.

The cache (``.cache/jax`` in the repository, or ``$JAX_COMPILATION_CACHE_DIR``) is shared with
subprocesses (the sharding test, the CLI tests, notebook kernels) through the environment, so a
program compiled once is not compiled again in another process.
"""

import os
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path(__file__).resolve().parents[1] / ".cache" / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
