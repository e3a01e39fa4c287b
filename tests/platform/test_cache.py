import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from jaxnas.platform.cache import caching_quick_compiles


def _entries(path):
    return {p.name for p in Path(path).iterdir()}


def _new_program(x):
    return jax.jit(lambda x: x * 3.0 + 1.0)(x)


def test_quick_compiles_are_cached_only_inside_the_context():
    path = jax.config.jax_compilation_cache_dir  # tests/conftest.py enables the suite's cache
    assert path
    threshold = jax.config.jax_persistent_cache_min_compile_time_secs
    n = 1000 + (os.getpid() * 7919 + time.time_ns()) % 10**7  # shapes no earlier run compiled
    x, y = jnp.zeros((n,)), jnp.zeros((n + 1,))
    before = _entries(path)
    _new_program(x).block_until_ready()
    assert _entries(path) == before  # compiled in milliseconds: below the cache's threshold
    with caching_quick_compiles():
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0
        _new_program(y).block_until_ready()
    assert len(_entries(path) - before) == 1
    assert jax.config.jax_persistent_cache_min_compile_time_secs == threshold
