"""Shared test set-up: JAX's persistent compilation cache and fitted reference models.

Fitting a model structure compiles it once (seconds); every test that needs a reference
fit takes it from the session-scoped ``reference_fit`` cache, so each model is compiled and
fitted once per test session.

The suite's time is mostly XLA compiling many small programs. Tests compile them with XLA's
backend (LLVM) optimization level 0: the HLO program, its optimizations and so the
arithmetic are the same, only the machine code is less optimized, which for the suite's
small problems costs less than it saves (measured on single test files, one process, empty
cache, against XLA_FLAGS=--xla_backend_optimization_level=2: benchmarks/README.md). Users
and benchmarks/ run JAX's defaults.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

# before JAX starts its CPU backend, which reads XLA_FLAGS once; a level given in XLA_FLAGS
# is kept (XLA_FLAGS=--xla_backend_optimization_level=2 runs the tests with XLA's default)
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0"]).strip()

import jax  # noqa: E402
import pytest

from reference import fit_reference, load_reference

_CACHE = Path(__file__).resolve().parent.parent / ".jax_cache"
jax.config.update("jax_compilation_cache_dir", str(_CACHE))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture(scope="session")
def reference_fit():
    """reference_fit(id) -> (json dict, FitResult), fitted once per session."""
    cache: dict = {}

    def get(ref_id: str):
        if ref_id not in cache:
            ref = load_reference(ref_id)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fit = fit_reference(ref)
            cache[ref_id] = (ref, fit, [str(w.message) for w in caught])
        return cache[ref_id]

    return get


@pytest.fixture(scope="module", autouse=True)
def _release_compiled_code():
    """Drop JAX's in-memory compiled functions after each test module.

    A session compiles a hundred-odd model structures; kept alive together they take
    gigabytes, enough to abort XLA in a long run on a small machine. Structures that a later
    module needs again load from the persistent compilation cache.
    """
    yield
    import gc

    jax.clear_caches()
    gc.collect()
