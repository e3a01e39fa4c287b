"""The host allocator settings: huge pages by re-executing with glibc's tunable; freed memory reused when kept."""

import os
import subprocess
import sys

import pytest

from jaxnas.platform import hostmem, settings

# allocate and free 256 MB, then count the page faults of allocating (and touching) it again
PROBE = """
import ctypes, os, resource
from jaxnas.platform import hostmem, settings
hostmem.reexec_with_hugepages() if os.environ.get("PROBE_REEXEC") else None
applied = hostmem.keep_host_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size = 2**28
block = libc.malloc(size); ctypes.memset(block, 1, size); libc.free(block)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = libc.malloc(size); ctypes.memset(block, 1, size)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, os.environ.get("GLIBC_TUNABLES", "-"))
"""
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc")
THP_ON_REQUEST = pytest.mark.skipif(
    (hostmem.glibc_version() or (0, 0)) < (2, 35) or hostmem.transparent_hugepage_mode() != "madvise",
    reason="needs glibc 2.35+ and transparent huge pages in madvise mode",
)


def probe(choice, reexec=False):
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env.update(JAXNAS_CPU_MALLOC=choice, PROBE_REEXEC="1" if reexec else "")
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    applied, faults, tunables = out.stdout.split()
    return applied == "True", int(faults), tunables


@LINUX
def test_kept_memory_is_reused_without_page_faults():
    applied, faults, _ = probe("keep")
    plain_applied, plain_faults, _ = probe("plain")
    assert applied and not plain_applied
    assert plain_faults > 30_000  # 256 MB of fresh 4 KB pages (65,536)
    assert faults < 1_000, faults


@LINUX
@THP_ON_REQUEST
def test_reexec_turns_on_huge_pages():
    _, plain_faults, plain_tunables = probe("plain", reexec=True)
    _, faults, tunables = probe("hugepages", reexec=True)
    assert plain_tunables == "-" and tunables == hostmem.HUGEPAGE_TUNABLE
    assert plain_faults > 30_000
    assert faults < plain_faults / 4, (faults, plain_faults)  # 2 MB pages: 128 for 256 MB when the kernel has them


def test_hugepage_environment_adds_the_tunable_once(monkeypatch):
    monkeypatch.setattr(hostmem, "glibc_version", lambda: (2, 36))
    monkeypatch.setattr(hostmem, "transparent_hugepage_mode", lambda: "madvise")
    monkeypatch.setattr(sys, "platform", "linux")
    env = hostmem.hugepage_environment({"PATH": "/bin"})
    assert env == {"PATH": "/bin", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
    assert hostmem.hugepage_environment(env) is None  # already there: no second re-exec
    other = hostmem.hugepage_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert other["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    assert hostmem.hugepage_environment({"JAXNAS_CPU_MALLOC": "plain"}) is None
    monkeypatch.setattr(hostmem, "transparent_hugepage_mode", lambda: "always")  # the kernel gives them anyway
    assert hostmem.hugepage_environment({}) is None
    monkeypatch.setattr(hostmem, "transparent_hugepage_mode", lambda: "madvise")
    monkeypatch.setattr(hostmem, "glibc_version", lambda: (2, 31))  # no hugetlb tunable before 2.35
    assert hostmem.hugepage_environment({}) is None


def test_transparent_hugepage_mode_reads_the_bracketed_choice(tmp_path):
    f = tmp_path / "enabled"
    f.write_text("always [madvise] never\n")
    assert hostmem.transparent_hugepage_mode(str(f)) == "madvise"
    f.write_text("[always] madvise never\n")
    assert hostmem.transparent_hugepage_mode(str(f)) == "always"
    assert hostmem.transparent_hugepage_mode(str(tmp_path / "missing")) is None


def test_too_late_or_unknown_choice(monkeypatch):
    import jax  # noqa: F401  (this process has JAX: its threads may own arenas already)

    monkeypatch.setenv("JAXNAS_CPU_MALLOC", "keep")
    settings.reload()
    assert hostmem.keep_host_memory() is False
    monkeypatch.setenv("JAXNAS_CPU_MALLOC", "jemalloc")
    with pytest.raises(ValueError, match="JAXNAS_CPU_MALLOC='jemalloc' is not one of hugepages, keep, plain"):
        settings.reload()


def test_cli_names_a_bad_allocator_choice():
    env = {**os.environ, "JAXNAS_CPU_MALLOC": "jemalloc", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-m", "jaxnas.cli", "--help"], env=env, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["jaxnas: error: JAXNAS_CPU_MALLOC='jemalloc' is not one of hugepages, keep, plain"]
