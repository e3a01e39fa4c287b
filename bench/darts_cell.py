"""Forward+backward of one DARTS search cell: compile time, compile memory and time per call (a benchmark).

    python bench/darts_cell.py                      # normal and reduction cell, C=16, batch 16, 32x32
    python bench/darts_cell.py --scheduler default  # XLA's default CPU scheduler instead of jaxnas's choice
    PYTHONPATH=/path/to/other/checkout python bench/darts_cell.py   # the same measurement of another version

A cell is the unit the DARTS search network repeats 8 times, so its figures move with the network's but compile in
seconds rather than minutes. The gradient is taken with respect to the cell's weights and the edge weights (softmax
of architecture parameters), as a DARTS step does. Each case runs in its own process, so that the peak resident
memory (ru_maxrss, mostly the compiler's) is its own. Prints one JSON line per case.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

# jaxnas.platform.xla.SCHEDULERS restated: older checkouts measured through PYTHONPATH do not have jaxnas.platform.xla
SCHEDULERS = {"memory": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED", "default": None}


def run_case(reduction: bool, batch: int, channels: int, size: int, scheduler: str, repeats: int,
             grouping: str | None = None) -> dict:
    import jax
    import jax.numpy as jnp

    import jaxnas
    from jaxnas.nn import ops
    from jaxnas.nn.supernet import DartsSearchCell

    # older checkouts (measured through PYTHONPATH) have no edge_grouping field
    cell = DartsSearchCell(channels, reduction, False, **({"edge_grouping": grouping} if grouping else {}))
    s0 = jax.random.normal(jax.random.PRNGKey(0), (batch, size, size, 4 * channels))
    s1 = jax.random.normal(jax.random.PRNGKey(1), (batch, size, size, 4 * channels))
    arch = 1e-3 * jax.random.normal(jax.random.PRNGKey(2), (14, len(cell.primitives)))
    variables = cell.init(jax.random.PRNGKey(3), s0, s1, jax.nn.softmax(arch, -1), True)

    def loss(params, arch, s0, s1):
        out, _ = cell.apply({"params": params, "batch_stats": variables["batch_stats"]}, s0, s1,
                            jax.nn.softmax(arch, -1), True, mutable=["batch_stats"])
        return jnp.mean(out**2)

    options = {"xla_cpu_scheduler_type": SCHEDULERS[scheduler]} if SCHEDULERS[scheduler] else None
    grad = jax.jit(jax.grad(loss, argnums=(0, 1)), compiler_options=options)
    args = (variables["params"], arch, s0, s1)
    start = time.perf_counter()
    compiled = grad.lower(*args).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return {
        "cell": "reduction" if reduction else "normal", "C": channels, "batch": batch, "size": size,
        "scheduler": scheduler, "edge_grouping": grouping, "impl": {k: ops.default_impl(k) for k in ops.KINDS},
        "jaxnas": os.path.dirname(os.path.dirname(jaxnas.__file__)), "jax": jax.__version__,
        "compile_s": round(compile_s, 1), "median_s": round(statistics.median(times), 4),
        "all_s": [round(t, 4) for t in times],
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="+", default=["normal", "reduction"], choices=["normal", "reduction"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--scheduler", default="memory", choices=sorted(SCHEDULERS))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--edge-grouping", choices=["vmap", "scan", "loop"], help="DartsSearchCell(edge_grouping=...)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        row = run_case(args.worker == "reduction", args.batch, args.channels, args.size, args.scheduler, args.repeats,
                       args.edge_grouping)
        print(json.dumps(row))
        return 0
    for cell in args.cells:
        cmd = [sys.executable, __file__, "--worker", cell, "--batch", str(args.batch), "--channels",
               str(args.channels), "--size", str(args.size), "--scheduler", args.scheduler, "--repeats",
               str(args.repeats)] + (["--edge-grouping", args.edge_grouping] if args.edge_grouping else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            print(json.dumps({"cell": cell, "error": proc.stderr.strip().splitlines()[-1:]}), flush=True)
        else:
            print(proc.stdout.strip().splitlines()[-1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
