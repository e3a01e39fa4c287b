"""Settings from the environment: the one module of jaxnas that reads ``os.environ``.

The ``JAXNAS_*`` variables are read once, checked, into a frozen :class:`Settings`; library code asks
:func:`current` and the command line may :func:`configure` an override (``jaxnas search --conv-impl shift``).

| variable | field | values (default first) |
|---|---|---|
| ``JAXNAS_CONV_IMPL`` | ``conv_impl`` | ``auto`` (per window kind and backend, :func:`jaxnas.nn.ops.default_impl`), ``xla``, ``shift`` |
| ``JAXNAS_CPU_SCHEDULER`` | ``cpu_scheduler`` | ``memory`` (XLA:CPU's memory-optimised scheduler), ``default`` |
| ``JAXNAS_CPU_ARCH_PASS`` | ``cpu_arch_pass`` | ``arch-only`` (a split step's passes whose weight gradient is unused differentiate the architecture alone: a second compiled program), ``shared`` (one compiled gradient for every pass: less compile time) |
| ``JAXNAS_CPU_CHAIN`` | ``cpu_chain`` | ``off`` (one program per supernet gradient), ``cells`` (a split step's supernet gradient as one small program per piece of a chainable supernet, chained: :mod:`jaxnas.nn.chain`) |
| ``JAXNAS_CPU_MALLOC`` | ``cpu_malloc`` | ``hugepages``, ``keep``, ``plain`` (:mod:`jaxnas.platform.hostmem`) |
| ``JAXNAS_COMPILATION_CACHE`` | ``compilation_cache`` | a directory (default ``~/.cache/jaxnas/xla``) or ``off`` |
| ``JAXNAS_NO_PROGRESS`` | ``progress`` | unset: progress bars; ``1``: none |

This module imports nothing of JAX (the host allocator is chosen before JAX starts).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

CONV_IMPLS = ("auto", "xla", "shift")
CPU_SCHEDULERS = ("memory", "default")
CPU_MALLOCS = ("hugepages", "keep", "plain")
CPU_ARCH_PASSES = ("arch-only", "shared")
CPU_CHAINS = ("off", "cells")


@dataclasses.dataclass(frozen=True)
class Settings:
    conv_impl: str = "auto"
    cpu_scheduler: str = "memory"
    cpu_malloc: str = "hugepages"
    cpu_arch_pass: str = "arch-only"
    cpu_chain: str = "off"
    compilation_cache: str = str(Path.home() / ".cache" / "jaxnas" / "xla")
    progress: bool = True

    def __post_init__(self):
        for name, allowed in (("conv_impl", CONV_IMPLS), ("cpu_scheduler", CPU_SCHEDULERS),
                              ("cpu_malloc", CPU_MALLOCS), ("cpu_arch_pass", CPU_ARCH_PASSES),
                              ("cpu_chain", CPU_CHAINS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; allowed: {', '.join(allowed)}")


_VARIABLES = {
    "JAXNAS_CONV_IMPL": ("conv_impl", CONV_IMPLS),
    "JAXNAS_CPU_SCHEDULER": ("cpu_scheduler", CPU_SCHEDULERS),
    "JAXNAS_CPU_MALLOC": ("cpu_malloc", CPU_MALLOCS),
    "JAXNAS_CPU_ARCH_PASS": ("cpu_arch_pass", CPU_ARCH_PASSES),
    "JAXNAS_CPU_CHAIN": ("cpu_chain", CPU_CHAINS),
}


def environ() -> dict[str, str]:
    """A copy of the process environment (for a child process or a re-exec)."""
    return dict(os.environ)


def from_environ(env: dict[str, str] | None = None) -> Settings:
    """Settings from ``env`` (default: the process environment); a bad value is an error naming the variable."""
    env = os.environ if env is None else env
    values = {}
    for var, (field, allowed) in _VARIABLES.items():
        value = env.get(var, "").strip()
        if value:
            if value not in allowed:
                raise ValueError(f"{var}={value!r} is not one of {', '.join(allowed)}")
            values[field] = value
    if env.get("JAXNAS_COMPILATION_CACHE", "").strip():
        values["compilation_cache"] = env["JAXNAS_COMPILATION_CACHE"].strip()
    no_progress = env.get("JAXNAS_NO_PROGRESS", "").strip()
    if no_progress not in ("", "0", "1"):
        raise ValueError(f"JAXNAS_NO_PROGRESS={no_progress!r} is not one of 0, 1")
    values["progress"] = no_progress != "1"
    return Settings(**values)


def accelerator_requested_off(env: dict[str, str] | None = None) -> bool:
    """Whether ``JAX_PLATFORMS`` restricts JAX to the CPU."""
    env = os.environ if env is None else env
    return env.get("JAX_PLATFORMS", "").strip().lower() == "cpu"


_current: Settings | None = None


def current() -> Settings:
    """The settings in force: the environment's, read on first use, with any :func:`configure` override."""
    global _current
    if _current is None:
        _current = from_environ()
    return _current


def configure(**changes) -> Settings:
    """Override some settings for the rest of the process (the CLI's flags); returns the new settings."""
    global _current
    _current = dataclasses.replace(current(), **changes)
    return _current


def reload() -> Settings:
    """Read the environment again, dropping overrides (for tests that change variables)."""
    global _current
    _current = None
    return current()


__all__ = ["CONV_IMPLS", "CPU_ARCH_PASSES", "CPU_MALLOCS", "CPU_SCHEDULERS", "Settings", "accelerator_requested_off", "configure",
           "current", "environ", "from_environ", "reload"]
