"""The host allocator under XLA:CPU: huge pages for its buffers, optionally freed memory kept (no JAX import here).

XLA:CPU allocates each program's buffers afresh at every call and glibc hands large blocks back to the OS on free,
so every step faults in and zero-fills its whole working set again (docs/cpu-performance.md). Two remedies, chosen
with
``JAXNAS_CPU_MALLOC``:

- ``hugepages`` (what the ``jaxnas`` command uses unless told otherwise): glibc's ``glibc.malloc.hugetlb=1`` tunable,
  which asks the kernel for transparent huge pages (2 MB) for malloc's memory. glibc reads tunables only when a
  process starts, so the command re-executes itself once with ``GLIBC_TUNABLES`` set
  (:func:`reexec_with_hugepages`); a library user sets ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` before starting
  Python. Needs glibc 2.35+ and transparent huge pages in ``madvise`` (or ``always``) mode.
- ``keep`` (opt-in): huge pages, and glibc keeps freed memory for reuse (:func:`keep_host_memory`): no faults at
  all, but the process's resident memory stays at its peak, compiler memory included.
- ``plain``: glibc as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
import sys

from jaxnas.platform import settings

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
MALLOC_CHOICES = settings.CPU_MALLOCS
HUGEPAGE_TUNABLE = "glibc.malloc.hugetlb=1"
THP_MODE_FILE = "/sys/kernel/mm/transparent_hugepage/enabled"


def malloc_choice(environ=None) -> str:
    """``JAXNAS_CPU_MALLOC`` of ``environ`` (default: the settings in force), checked; unset means ``hugepages``."""
    return (settings.current() if environ is None else settings.from_environ(environ)).cpu_malloc


def glibc_version() -> tuple[int, int] | None:
    """``(major, minor)`` of the C library when it is glibc, else None."""
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
        major, minor = version.split(".")[:2]
        return (int(major), int(minor)) if name == "glibc" else None
    except (AttributeError, ValueError, OSError):
        return None


def transparent_hugepage_mode(path: str = THP_MODE_FILE) -> str | None:
    """The kernel's transparent huge page mode (``always``, ``madvise``, ``never``), or None when unknown."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else None


def hugepage_environment(environ=None) -> dict[str, str] | None:
    """``environ`` with :data:`HUGEPAGE_TUNABLE` added to ``GLIBC_TUNABLES``, or None when there is nothing to add:
    asked not to (``JAXNAS_CPU_MALLOC=plain``), already there, not glibc 2.35+, or the kernel has no huge pages
    to give on request (mode ``never``; ``always`` gives them anyway)."""
    environ = settings.environ() if environ is None else dict(environ)
    if malloc_choice(environ) == "plain" or not sys.platform.startswith("linux"):
        return None
    tunables = environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb=" in tunables:
        return None
    if (glibc_version() or (0, 0)) < (2, 35) or transparent_hugepage_mode() != "madvise":
        return None
    environ["GLIBC_TUNABLES"] = f"{tunables}:{HUGEPAGE_TUNABLE}" if tunables else HUGEPAGE_TUNABLE
    return environ


def reexec_with_hugepages() -> None:
    """Start this process again, same command line, with :func:`hugepage_environment` (glibc reads its tunables
    only at start-up). Does nothing when there is nothing to add or once JAX is imported (work may have begun).
    For commands only: the ``jaxnas`` entry point calls it first thing."""
    environ = hugepage_environment()
    if environ is None or "jax" in sys.modules:
        return
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv[1:]], environ)


def keep_host_memory() -> bool:
    """Make glibc's malloc keep and reuse freed memory instead of handing it back to the OS.

    XLA:CPU allocates each program's temporary buffers at every call; glibc serves blocks above 32 MB with fresh
    ``mmap`` pages and unmaps them on free, so every step faults in and zero-fills its whole working set again.
    With ``mmap`` off, no trimming and one arena, the pages are reused. The price: the process's resident memory
    stays at its peak, and the compiler's freed memory is kept too (docs/cpu-performance.md). So it is opt-in: ``JAXNAS_CPU_MALLOC=keep`` (the CLI and the benchmark call this
    first thing, before ``import jax``; this module imports nothing of JAX). Returns whether it applied (False
    unless asked for, on non-glibc systems, or once JAX is imported).
    """
    if malloc_choice() != "keep" or not sys.platform.startswith("linux") or "jax" in sys.modules:
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
    if settings.accelerator_requested_off():
        return False
    names = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin", "libtpu")
    return any(importlib.util.find_spec(n) is not None for n in names)
