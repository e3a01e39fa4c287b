"""XLA compiler options that jaxnas passes to its jitted steps.

On CPU the steps are compiled with XLA's memory-optimised scheduler instead of its default, concurrency-optimised
one (faster and smaller on the DARTS search cell: docs/cpu-performance.md). ``JAXNAS_CPU_SCHEDULER=default`` keeps
XLA's default.
Other backends get no options.
"""

from __future__ import annotations

import jax

from jaxnas.platform import settings

SCHEDULERS = {"memory": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED", "default": None}


def compiler_options() -> dict[str, str] | None:
    """``compiler_options`` for ``jax.jit`` on the current default backend (None: XLA's defaults)."""
    if jax.default_backend() != "cpu":
        return None
    scheduler = SCHEDULERS[settings.current().cpu_scheduler]
    return {"xla_cpu_scheduler_type": scheduler} if scheduler else None
