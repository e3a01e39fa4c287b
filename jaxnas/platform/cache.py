"""JAX's persistent compilation cache, pointed at jaxnas's directory."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import jax

from jaxnas.platform import settings


def enable_compilation_cache(path: str | os.PathLike | None = None) -> str | None:
    """Keep compiled steps on disk so a resumed or repeated run skips XLA compilation (minutes for a supernet on CPU).

    ``path`` defaults to the ``compilation_cache`` setting (``$JAXNAS_COMPILATION_CACHE`` or ``~/.cache/jaxnas/xla``);
    ``"off"`` disables it. A ``JAX_COMPILATION_CACHE_DIR`` already set wins. Returns the directory used (or None).
    """
    if jax.config.jax_compilation_cache_dir and path is None:
        return jax.config.jax_compilation_cache_dir
    path = path or settings.current().compilation_cache
    if str(path) == "off":
        return None
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # read-only home: run without the cache
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    try:  # a cache already checked (disabled) by an earlier compile must be re-initialised to see the new directory
        from jax._src import compilation_cache as cc

        if cc._cache_checked and not cc._cache_used:
            cc.reset_cache()
    except (ImportError, AttributeError):  # pragma: no cover - private API moved
        pass
    return str(path)


@contextlib.contextmanager
def caching_quick_compiles():
    """While active, every program compiled goes to the persistent cache, however short its compile.

    The cache keeps programs that took at least a second to compile. A supernet's initialisers run eagerly as
    hundreds of small programs, each below that threshold but many in all (docs/cpu-performance.md); kept, a later
    process (a resumed search, a test) loads them instead. Does nothing while no cache directory is set.
    """
    if not jax.config.jax_compilation_cache_dir:
        yield
        return
    previous = jax.config.jax_persistent_cache_min_compile_time_secs
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    try:
        yield
    finally:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", previous)


__all__ = ["caching_quick_compiles", "enable_compilation_cache"]
