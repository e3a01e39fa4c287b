"""The host allocator: let glibc keep freed memory for XLA:CPU to reuse (no JAX import here; see keep_host_memory).

Measured on the DARTS normal search cell (C=16, batch 64, 32x32, forward+backward, 2 cores): 388k minor page faults
per call -> 5, and 3.0-3.1 s -> 2.6 s per call (machine shared with a compile job), resident memory 3.0 -> 4.1 GB.
Opt-in (``JAXNAS_CPU_MALLOC=keep``): it trades memory for speed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
import sys

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
MALLOC_CHOICES = ("default", "keep")


def keep_host_memory() -> bool:
    """Make glibc's malloc keep and reuse freed memory instead of handing it back to the OS.

    XLA:CPU allocates each program's temporary buffers at every call; glibc serves blocks above 32 MB with fresh
    ``mmap`` pages and unmaps them on free, so every step faults in and zero-fills its whole working set again
    (a DARTS normal cell's forward+backward at batch 64: 388k page faults per call, 30% of its time in the kernel,
    ``perf``). With ``mmap`` off, no trimming and one arena, the pages are reused: 0 faults per call. The price:
    the process's resident memory stays at its peak, and the compiler's freed memory is kept too: the 8-cell DARTS
    first-order step at batch 64 ran 20.1 s instead of 23.9 s per step but peaked at 17.7 GB instead of 12.7 GB
    (``bench/search_steps.py``). So it is opt-in: ``JAXNAS_CPU_MALLOC=keep`` (the CLI and the benchmark call this
    first thing, before ``import jax``; this module imports nothing of JAX). Returns whether it applied (False
    unless asked for, on non-glibc systems, or once JAX is imported).
    """
    choice = os.environ.get("JAXNAS_CPU_MALLOC", "default")
    if choice not in MALLOC_CHOICES:
        raise ValueError(f"JAXNAS_CPU_MALLOC={choice!r} is not one of {', '.join(MALLOC_CHOICES)}")
    if choice == "default" or not sys.platform.startswith("linux") or "jax" in sys.modules:
        return False  # with JAX imported its threads may already own arenas that still unmap: too late
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_ARENA_MAX, 1) and mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    return bool(ok)


def accelerator_installed() -> bool:
    """Whether a GPU or TPU plug-in for jaxlib is installed (checked without starting JAX's backends)."""
    if os.environ.get("JAX_PLATFORMS", "").strip().lower() == "cpu":
        return False
    names = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin", "libtpu")
    return any(importlib.util.find_spec(n) is not None for n in names)
