"""The host allocator setting: freed memory is reused instead of faulted in afresh."""

import os
import subprocess
import sys

import pytest

from jaxnas import hostmem

# allocate and free 256 MB, then count the page faults of allocating (and touching) it again
PROBE = """
import ctypes, resource
from jaxnas import hostmem
applied = hostmem.keep_host_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size = 2**28
block = libc.malloc(size); ctypes.memset(block, 1, size); libc.free(block)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = libc.malloc(size); ctypes.memset(block, 1, size)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def probe(choice):
    env = {**os.environ, "JAXNAS_CPU_MALLOC": choice}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_kept_memory_is_reused_without_page_faults():
    applied, faults = probe("keep")
    default_applied, default_faults = probe("default")
    assert applied and not default_applied
    assert default_faults > 30_000  # 256 MB of fresh 4 KB pages (65,536; fewer with huge pages)
    assert faults < 1_000, faults


def test_too_late_or_unknown_choice():
    import jax  # noqa: F401  (this process has JAX: its threads may own arenas already)

    assert hostmem.keep_host_memory() is False
    os.environ["JAXNAS_CPU_MALLOC"] = "jemalloc"
    try:
        with pytest.raises(ValueError, match="JAXNAS_CPU_MALLOC='jemalloc' is not one of default, keep"):
            hostmem.keep_host_memory()
    finally:
        del os.environ["JAXNAS_CPU_MALLOC"]
