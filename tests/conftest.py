"""Shared test set-up.

* ``shared_data``: ``../shared/data`` beside the project root (or ``$JAXNAS_SHARED_DATA``). Tests that compare
  against it skip, naming what is missing, on a clone without it; with ``JAXNAS_REQUIRE_SHARED=1`` (CI sets it) a
  missing folder fails those tests instead.
* The compilation cache: every test process shares ``$JAXNAS_TEST_JIT_CACHE`` (default: a folder in the temp dir),
  so a second run of the suite skips most compiles.
* Tiers: ``-m "not slow"`` is the fast tier for day-to-day work; the default command runs everything.
"""

import os
import pathlib
import tempfile

import pytest

from jaxnas.platform import settings
from jaxnas.platform.cache import enable_compilation_cache

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("JAXNAS_SHARED_DATA", ROOT.parent / "shared" / "data"))
REQUIRE_SHARED = os.environ.get("JAXNAS_REQUIRE_SHARED") == "1"
TEST_JIT_CACHE = os.environ.get("JAXNAS_TEST_JIT_CACHE", str(pathlib.Path(tempfile.gettempdir()) / "jaxnas-test-jit-cache"))

enable_compilation_cache(TEST_JIT_CACHE)
# one compiled supernet gradient per split step (the library's default compiles a second, arch-only one: faster
# steps, more compile time, which tiny test searches only pay); inherited by the CLI runs of the tests. The tests
# that build steps with make_step(arch_only_pass=True) cover the default.
os.environ.setdefault("JAXNAS_CPU_ARCH_PASS", "shared")
# XLA's own convolutions and pools everywhere a test does not name an implementation: the CPU default's per-tap
# depthwise and pooling kernels (ops.CPU_CHOICE) compile several times slower, and the suite's time is mostly XLA
# compiling tiny networks. The CPU kernels keep their own tests: op by op against XLA's in tests/nn/test_ops.py
# (values, gradients, second order), inside a supernet in tests/nn/test_supernet.py, and through the split step's
# exact hypergradient in tests/search/test_steps.py. ``JAXNAS_CONV_IMPL=auto pytest`` runs everything on them.
os.environ.setdefault("JAXNAS_CONV_IMPL", "xla")


@pytest.fixture(autouse=True)
def _fresh_settings():
    """A test that changes JAXNAS_* variables (and calls settings.reload()) leaves no override behind."""
    yield
    settings.reload()


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """The reference data folder; skips (or fails under JAXNAS_REQUIRE_SHARED=1) when it is absent."""
    if not SHARED_DATA.is_dir():
        message = (f"reference data not found at {SHARED_DATA} (the NB201 table, Fashion-MNIST IDX files); "
                   "set JAXNAS_SHARED_DATA to its path")
        if REQUIRE_SHARED:
            pytest.fail(message + " (JAXNAS_REQUIRE_SHARED=1)")
        pytest.skip(message)
    return SHARED_DATA
