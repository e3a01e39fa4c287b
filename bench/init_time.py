"""Seconds to initialise a supernet's search state (`init_search_state`), in fresh processes, with and without the
small programs of its initialisers in the compilation cache (a benchmark).

    python bench/init_time.py --case darts-c8l5-16-bilevel-1st

Runs the case's initialisation three times, each in a new process: with the cache off, then twice with an empty
cache directory (the first fills it, the second loads from it, as a resumed search does). Rows go to
bench/results/init_time.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).with_name("results") / "init_time.jsonl"


def worker(case_name: str) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    import jax

    from search_steps import CASES, build

    from jaxnas.platform.cache import enable_compilation_cache
    from jaxnas.search.steps import OptimConfig, init_search_state, make_arch_optimizer, make_weight_optimizer

    enable_compilation_cache()  # the JAXNAS_COMPILATION_CACHE setting, as the jaxnas command does
    cfg = OptimConfig()
    model, arch, batch, _, _, _ = build(CASES[case_name], jax.random.PRNGKey(0))
    t0 = time.perf_counter()
    state = init_search_state(model, arch, batch[0], jax.random.PRNGKey(0), make_weight_optimizer(cfg, 10),
                              make_arch_optimizer(cfg))
    jax.block_until_ready(state)
    return {"init_s": round(time.perf_counter() - t0, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="darts-c8l5-16-bilevel-1st")
    ap.add_argument("--note", default="")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.case)))
        return
    with tempfile.TemporaryDirectory() as cache:
        for label, value in (("cache off", "off"), ("empty cache", cache), ("cache filled by the run before", cache)):
            env = dict(os.environ, JAXNAS_COMPILATION_CACHE=value)
            proc = subprocess.run([sys.executable, __file__, "--worker", "--case", args.case], env=env,
                                  capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode or not lines:
                raise SystemExit(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "worker failed")
            row = {"case": args.case, "run": label, **json.loads(lines[-1]),
                   "cache_entries": len(os.listdir(cache)), "note": args.note,
                   "date": time.strftime("%Y-%m-%d %H:%M")}
            print(json.dumps(row), flush=True)
            with OUT.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
