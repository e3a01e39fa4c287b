"""Search-step throughput, compile time and peak memory for each optimization mode (a benchmark, not a test).

    python bench/search_steps.py                         # every case below, each in its own process
    python bench/search_steps.py --case darts-16-bilevel-1st --steps 5
    python bench/search_steps.py --list

A case is (supernet, batch, mode). Each runs in a fresh subprocess so that its peak resident memory (ru_maxrss) is its
own: build the supernet and state, time the first call (trace + compile + one step), then time --steps further
steps and report the median. Results are appended as JSON lines to --out (default bench/results/search_steps.jsonl)
and printed as a table, with the original PyTorch DARTS figures measured on the same 2-core machine (given in the
search-engine issue) for the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import time

# (space, channels, layers, batch, mode, hessian)
CASES = {
    "nb201-64-single": ("nb201", 16, 5, 64, "single", "exact"),
    "nb201-64-bilevel-1st": ("nb201", 16, 5, 64, "bilevel-1st", "exact"),
    "nb201-64-bilevel-2nd": ("nb201", 16, 5, 64, "bilevel-2nd", "exact"),
    "darts-16-single": ("darts", 16, 8, 16, "single", "exact"),
    "darts-16-bilevel-1st": ("darts", 16, 8, 16, "bilevel-1st", "exact"),
    "darts-16-bilevel-2nd": ("darts", 16, 8, 16, "bilevel-2nd", "exact"),
    "darts-16-bilevel-2nd-fd": ("darts", 16, 8, 16, "bilevel-2nd", "finite_difference"),
    "darts-64-single": ("darts", 16, 8, 64, "single", "exact"),
    "darts-64-bilevel-1st": ("darts", 16, 8, 64, "bilevel-1st", "exact"),
    "darts-64-bilevel-2nd": ("darts", 16, 8, 64, "bilevel-2nd", "exact"),
    "darts-64-bilevel-2nd-fd": ("darts", 16, 8, 64, "bilevel-2nd", "finite_difference"),
}
# original PyTorch DARTS on this machine, median seconds per step (and peak memory), from the search-engine issue
PYTORCH_REFERENCE = {
    "darts-16-bilevel-1st": {"s_per_step": 9.8},
    "darts-16-bilevel-2nd-fd": {"s_per_step": 17.8},
    "darts-16-bilevel-2nd": {"s_per_step": 17.8},  # PyTorch DARTS approximates; this one is exact (more work)
    "darts-64-bilevel-1st": {"s_per_step": 29.0, "peak_gb": 9.4},
}


CHOICES = {"auto": None, "yes": True, "no": False}


def run_case(name: str, steps: int, split: str = "auto", nest_cells: str = "auto") -> dict:
    import jax
    import jax.numpy as jnp

    from jaxnas.nn import ops
    from jaxnas.search.steps import OptimConfig, init_search_state, make_arch_optimizer, make_step, make_weight_optimizer
    from jaxnas.registry import get_space
    from jaxnas.nn.supernet import DartsSearchNetwork, NB201Supernet

    space_name, C, layers, batch, mode, hessian = CASES[name]
    space = get_space(space_name)
    if space_name == "darts":
        model = DartsSearchNetwork(C=C, layers=layers, nest_cells=CHOICES[nest_cells])
    else:
        model = NB201Supernet(C=C, N=layers)
    cfg = OptimConfig()
    w_opt, a_opt = make_weight_optimizer(cfg, 1000), make_arch_optimizer(cfg)
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (batch, 32, 32, 3))
    y = jax.random.randint(jax.random.PRNGKey(1), (batch,), 0, 10)
    t0 = time.perf_counter()
    state = init_search_state(model, space.init_arch(key), x, key, w_opt, a_opt)
    init_s = time.perf_counter() - t0
    step = make_step(model, mode=mode, relaxation="softmax", w_optimizer=w_opt, a_optimizer=a_opt, hessian=hessian,
                     split=CHOICES[split])
    batch_xy, val_xy = (x, y), (x[::-1], y[::-1])
    t0 = time.perf_counter()
    state, metrics = step(state, batch_xy, val_xy)
    jax.block_until_ready(metrics)
    first_s = time.perf_counter() - t0
    times = []
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        t0 = time.perf_counter()
        state, metrics = step(state, batch_xy, val_xy)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / max(steps, 1)
    return {
        "case": name, "space": space_name, "C": C, "layers": layers, "batch": batch, "mode": mode,
        "hessian": hessian if mode == "bilevel-2nd" else None, "impl": {k: ops.default_impl(k) for k in ops.KINDS},
        "split": hasattr(step, "programs"), "nest_cells": model._nested() if space_name == "darts" else None,
        "backend": jax.default_backend(), "jax": jax.__version__,
        "init_s": round(init_s, 2), "first_step_s (trace+compile+run)": round(first_s, 1),
        "median_step_s": round(med, 3), "steps_per_s": round(1.0 / med, 3), "step_times_s": [round(t, 3) for t in times],
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "loss_finite": bool(jnp.isfinite(metrics["loss"])), "page_faults_per_step": int(faults),
    }


def compile_times(log: str) -> dict:
    """Seconds XLA spent compiling each program of more than a second, from the worker's jax_log_compiles log."""
    times = {}
    for name, secs in re.findall(r"Finished XLA compilation of (\S+) in ([0-9.e+-]+) sec", log):
        if float(secs) >= 1.0:
            times[name] = round(times.get(name, 0.0) + float(secs), 1)
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="run only these cases")
    ap.add_argument("--steps", type=int, default=5, help="timed steps after the first one")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "search_steps.jsonl"))
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per case")
    ap.add_argument("--split", choices=sorted(CHOICES), default="auto", help="make_step(split=...)")
    ap.add_argument("--nest-cells", choices=sorted(CHOICES), default="auto", help="DartsSearchNetwork(nest_cells=...)")
    ap.add_argument("--note", help="stored with each result row")
    ap.add_argument("--cache", help="JAX persistent compilation cache folder: a second run with the same programs "
                    "skips compiling (its compile figures are then cache loads); for trying run-time settings")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(CASES))
        return 0
    if args.worker:
        from jaxnas.platform import hostmem

        host_malloc = hostmem.keep_host_memory()  # as the CLI does, with JAXNAS_CPU_MALLOC=keep
        import jax

        jax.config.update("jax_log_compiles", True)
        if args.cache:
            jax.config.update("jax_compilation_cache_dir", args.cache)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        print(json.dumps({**run_case(args.worker, args.steps, args.split, args.nest_cells), "host_malloc_kept": host_malloc}))
        return 0
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    from jaxnas.platform import hostmem

    env = hostmem.hugepage_environment() or dict(os.environ)  # as the jaxnas command runs (JAXNAS_CPU_MALLOC)
    rows = []
    for name in args.case or list(CASES):
        cmd = [sys.executable, __file__, "--worker", name, "--steps", str(args.steps), "--split", args.split,
               "--nest-cells", args.nest_cells] + (["--cache", args.cache] if args.cache else [])
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
            if proc.returncode != 0:
                lines = proc.stderr.strip().splitlines()
                errors = [ln for ln in lines if re.match(r"^[\w.]+: ", ln) and ("Error" in ln or "Exception" in ln)]
                last = (errors or lines)[-1:]
                if proc.returncode < 0:  # killed: by the kernel's OOM killer when it is SIGKILL during a compile
                    signame = signal.Signals(-proc.returncode).name
                    row = {"case": name, "error": f"worker killed by {signame} (out of memory?)",
                           "last_log_line": last[0] if last else None}
                else:
                    row = {"case": name, "error": last[0] if last else f"worker exited with status {proc.returncode}"}
            else:
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                row["compile_s"] = compile_times(proc.stderr)
        except subprocess.TimeoutExpired:
            row = {"case": name, "error": f"timed out after {args.timeout} s"}
        ref = PYTORCH_REFERENCE.get(name)
        if ref and "median_step_s" in row:
            row["pytorch_s_per_step"] = ref["s_per_step"]
            row["speedup_vs_pytorch"] = round(ref["s_per_step"] / row["median_step_s"], 2)
            if "peak_gb" in ref:
                row["pytorch_peak_gb"] = ref["peak_gb"]
        row["date"] = time.strftime("%Y-%m-%d %H:%M")
        if args.note:
            row["note"] = args.note
        if args.cache:
            row["compile_cache"] = args.cache
        row["cpu_malloc"] = hostmem.malloc_choice()
        if env.get("GLIBC_TUNABLES"):
            row["glibc_tunables"] = env["GLIBC_TUNABLES"]
        rows.append(row)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    print(f"\n{'case':28} {'s/step':>8} {'steps/s':>8} {'compile+1st s':>14} {'peak GB':>8} {'vs PyTorch':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r['case']:28} error: {r['error']}")
            continue
        speed = f"{r['speedup_vs_pytorch']}x" if "speedup_vs_pytorch" in r else "-"
        print(f"{r['case']:28} {r['median_step_s']:8.3f} {r['steps_per_s']:8.3f} "
              f"{r['first_step_s (trace+compile+run)']:14.1f} {r['peak_rss_gb']:8.2f} {speed:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
