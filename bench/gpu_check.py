"""GPU check: search-step speed, compile time and peak device memory on one accelerator, in one JSON file.

    PYTHONPATH=. python bench/gpu_check.py --out gpu_check.json        # about 5-8 minutes on one H100/H200
    PYTHONPATH=. python bench/gpu_check.py --quick --out /tmp/check.json  # tiny shapes: a dry run on any machine

Needs only JAX (with CUDA), flax, optax, chex and orbax: no network, no dataset download (the search loop uses the
Fashion-MNIST sample that ships in the package). Each case runs in its own process, so that a case that fails (out
of memory, a compile error) is recorded and the others still run, and so that each peak device memory is the
case's own. Cases, most important first, each stopped at --case-timeout and skipped once --budget is spent:

- the DARTS search network (C=16, 8 cells, batch 64) step in every optimization mode (first order, second order
  with DARTS's finite difference and exact, single level), one program each (the GPU path of ``make_step``);
- the NB201 supernet step (C=16, N=5, batch 64), DARTS first order and GDAS;
- a real search loop: ``jaxnas.run_search`` on the embedded data for --loop-steps steps (checkpoints, logs).

The JSON holds per case: first call (trace + compile + run) seconds, median seconds per step and its spread,
peak device memory (``memory_stats()['peak_bytes_in_use']``), and a projection of the DARTS paper's search
(50 epochs over the 25k-image train half of CIFAR-10, batch 64, second order: 50 * ceil(25000 / 64) steps) from the
measured second-order step.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # search_steps.py: the cases, shared with the CPU benchmark

CASES = [  # most important first: the budget may stop the list
    "darts-64-bilevel-1st", "darts-64-bilevel-2nd-fd", "nb201-64-bilevel-1st", "loop", "darts-64-single",
    "darts-64-bilevel-2nd", "nb201-64-gdas",
]
QUICK = {"darts": (4, 2, 4), "nb201": (4, 1, 4)}  # --quick: (width, depth, batch)
PAPER_STEPS = 50 * math.ceil(25_000 / 64)  # DARTS: 50 epochs, half of CIFAR-10's train set, batch 64


def device_summary() -> dict:
    import jax

    d = jax.devices()[0]
    return {"backend": jax.default_backend(), "device_kind": d.device_kind, "devices": jax.device_count(),
            "jax": jax.__version__}


def peak_device_gb() -> float | None:
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else round(peak / 2**30, 2)


def run_step_case(name: str, steps: int, quick: bool) -> dict:
    import search_steps

    case = search_steps.CASES[name]
    if quick:
        width, depth, batch = QUICK[case.space]
        case = case._replace(width=width, depth=depth, batch=batch)
    _, state, step, batch_xy, val_xy, _ = search_steps.prepare(case)
    first, times, _, state, metrics = search_steps.time_steps(step, state, batch_xy, val_xy, steps)
    med = statistics.median(times)
    row = {"case": name, **case._asdict(), "first_step_s": round(first, 2), "median_step_s": round(med, 4),
           "min_step_s": round(min(times), 4), "max_step_s": round(max(times), 4), "steps": steps,
           "peak_device_gb": peak_device_gb(), "loss": float(metrics["loss"])}
    if case.space == "darts" and case.mode == "bilevel-2nd":
        row["paper_search_projection_h"] = round(PAPER_STEPS * med / 3600, 2)
    return row


def run_loop_case(steps: int, quick: bool) -> dict:
    from jaxnas.runners.search import SearchConfig, run_search

    per_epoch = 50
    epochs = max(1, steps // per_epoch)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SearchConfig(space="nb201", epochs=epochs, steps_per_epoch=per_epoch, batch_size=64,
                           width=4 if quick else 16, depth=1 if quick else 5, workdir=os.path.join(tmp, "run"),
                           progress=False, checkpoint_every=per_epoch)
        t0 = time.perf_counter()
        result = run_search(cfg)
        wall = time.perf_counter() - t0
    return {"case": "loop", "what": "run_search, NB201 supernet, embedded Fashion-MNIST, DARTS first order",
            "width": cfg.width, "depth": cfg.depth, "batch": cfg.batch_size, "steps": result.steps,
            "wall_s": round(wall, 1), "steps_per_s_incl_compile": round(result.steps / wall, 2),
            "genotype": result.arch_string, "peak_device_gb": peak_device_gb()}


def worker(name: str, steps: int, loop_steps: int, quick: bool) -> dict:
    row = run_loop_case(loop_steps, quick) if name == "loop" else run_step_case(name, steps, quick)
    return {**row, **device_summary()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="gpu_check.json")
    ap.add_argument("--steps", type=int, default=20, help="timed steps after the first, per step case")
    ap.add_argument("--loop-steps", type=int, default=300)
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for the whole check")
    ap.add_argument("--case-timeout", type=float, default=240.0)
    ap.add_argument("--case", action="append", choices=CASES, help="only these cases")
    ap.add_argument("--quick", action="store_true", help="tiny shapes (a dry run of the script on any machine)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print("ROW " + json.dumps(worker(args.worker, args.steps, args.loop_steps, args.quick)), flush=True)
        return 0
    start = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]),
               JAXNAS_COMPILATION_CACHE="off")
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "quick": args.quick, "paper_search_steps": PAPER_STEPS,
              "cases": []}
    for name in args.case or CASES:
        left = args.budget - (time.perf_counter() - start)
        if left < 30:
            report["cases"].append({"case": name, "skipped": f"the {args.budget:.0f} s budget was spent"})
            continue
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--steps", str(args.steps),
               "--loop-steps", str(args.loop_steps)] + (["--quick"] if args.quick else [])
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                  timeout=min(args.case_timeout, left))
            rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("ROW ")]
            if proc.returncode or not rows:
                tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
                row = {"case": name, "error": tail[:400]}
            else:
                row = json.loads(rows[-1][4:])
        except subprocess.TimeoutExpired:
            row = {"case": name, "error": f"timed out after {min(args.case_timeout, left):.0f} s"}
        row["process_s"] = round(time.perf_counter() - t0, 1)
        report["cases"].append(row)
        print(json.dumps(row), flush=True)
        with open(args.out, "w") as f:  # rewritten after every case: a cut-short check keeps what it measured
            json.dump(report, f, indent=1)
    report["wall_s"] = round(time.perf_counter() - start, 1)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {args.out} in {report['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
