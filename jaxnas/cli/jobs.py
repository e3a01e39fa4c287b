"""Running a long job from a command: the compilation cache on, a diverged run reported as one line."""

from __future__ import annotations

import sys

from jaxnas.platform.cache import enable_compilation_cache
from jaxnas.runners.loop import DivergedError

DIVERGED_EXIT = 3


def run_job(command: str, fn, config):
    """``fn(config)`` with compiled steps kept on disk; a NaN loss (:class:`DivergedError`) becomes one line on
    stderr and exit code 3 (the run's last good checkpoint is kept)."""
    enable_compilation_cache()
    try:
        return fn(config)
    except DivergedError as e:
        print(f"jaxnas {command}: error: {e}", file=sys.stderr)
        raise SystemExit(DIVERGED_EXIT) from None


__all__ = ["DIVERGED_EXIT", "run_job"]
