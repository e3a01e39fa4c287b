"""Check NB201Network's parameter count and FLOPs against the NAS-Bench-201 table for all 15,625 cells.

    python experiments/check_nb201_costs.py                 # every row, by cost class (about a minute)
    python experiments/check_nb201_costs.py --full [--limit N] [--workers 2]   # trace every cell (~1.5 h on 2 cores)

A network is built as a flax module and traced with jax.eval_shape (nothing is allocated) for cifar10 and cifar100
(32x32 input, 10/100 classes) and imagenet16 (16x16, 120 classes). Params must match at the table's precision
(params_mb_<ds> keeps 6 significant digits, so a count above 1e6 is compared after rounding to 6 significant digits),
FLOPs within 1% of flops_m_<ds>.

Default mode. In an NB201 network only nor_conv_1x1 and nor_conv_3x3 edges carry parameters or FLOPs (none, skip and
avg-pool carry neither; pooling is not counted as FLOPs), all at the same width and resolution inside a cell, so a
cell's costs depend on its two conv counts only: 28 cost classes. The script checks that every table row agrees with
the other rows of its class (all 15,625 rows), and traces --per-class random members of each class (default 3, so 84
networks x 3 datasets) against the table. --full traces every cell instead.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import multiprocessing as mp
import os
import random
import sys
import time

DATASETS = (("cifar10", 10, 32), ("cifar100", 100, 32), ("imagenet16", 120, 16))
DEFAULT_TABLE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "nb201", "nb201.csv")


def params_at_table_precision(params: int) -> float:
    """A parameter count in millions, rounded to the 6 significant digits the NB201 table keeps."""
    return float(f"{params / 1e6:.6g}")


def check_rows(rows):
    """Trace the network of every row; one tuple per (row, dataset)."""
    from jaxnas.nn.costs import image_spec, profile
    from jaxnas.nn.networks import NB201Network
    from jaxnas.registry import get_space

    space = get_space("nb201")
    results = []
    for row in rows:
        genotype = space.parse(row["arch_str"])
        for ds, classes, size in DATASETS:
            model = NB201Network(num_classes=classes, genotype=genotype)
            params, flops = profile(model, image_spec(1, size), train=False)
            results.append({
                "index": int(row["index"]), "dataset": ds, "params": params,
                "params_ok": params_at_table_precision(params) == float(row[f"params_mb_{ds}"]),
                "flops_rel_error": abs(flops / 1e6 - float(row[f"flops_m_{ds}"])) / float(row[f"flops_m_{ds}"]),
            })
    return results


def cost_class(arch_str: str) -> tuple[int, int]:
    return arch_str.count("nor_conv_1x1~"), arch_str.count("nor_conv_3x3~")


def run_traces(rows, workers):
    chunks = [rows[i : i + 50] for i in range(0, len(rows), 50)]
    results, start = [], time.time()
    pool = mp.get_context("spawn").Pool(workers) if workers > 1 else None
    for part in pool.imap(check_rows, chunks) if pool else map(check_rows, chunks):
        results += part
        print(f"traced {len(results) // len(DATASETS)}/{len(rows)} cells, {time.time() - start:.0f} s",
              file=sys.stderr, flush=True)
    if pool:
        pool.close()
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default=DEFAULT_TABLE)
    ap.add_argument("--full", action="store_true", help="trace every cell's network")
    ap.add_argument("--per-class", type=int, default=3, help="traced members per cost class (default mode)")
    ap.add_argument("--limit", type=int, default=None, help="--full: check only the first N cells")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    os.environ.setdefault("JAXNAS_CONV_IMPL", "xla")  # costs do not depend on it; xla traces fastest
    with open(args.table) as f:
        rows = list(csv.DictReader(f))
    start = time.time()
    summary = {"rows": len(rows), "datasets": [d[0] for d in DATASETS]}
    if args.full:
        rows = rows[: args.limit]
        traced = rows
        summary["mode"] = "full: every cell traced"
    else:
        classes = collections.defaultdict(list)
        for row in rows:
            classes[cost_class(row["arch_str"])].append(row)
        inconsistent = []
        for key, members in classes.items():
            for ds, _, _ in DATASETS:
                values = {(m[f"params_mb_{ds}"], round(float(m[f"flops_m_{ds}"]), 3)) for m in members}
                if len(values) != 1:
                    inconsistent.append({"class": key, "dataset": ds, "values": sorted(values)[:4]})
        rng = random.Random(args.seed)
        traced = [r for members in classes.values() for r in rng.sample(members, min(args.per_class, len(members)))]
        summary.update({
            "mode": "by cost class (n_conv1x1, n_conv3x3)",
            "cost_classes": len(classes),
            "rows_disagreeing_with_their_class": inconsistent,
        })
    results = run_traces(traced, args.workers)
    bad_params = [r for r in results if not r["params_ok"]]
    bad_flops = [r for r in results if r["flops_rel_error"] > 0.01]
    summary.update({
        "networks_traced": len(traced),
        "traces": len(results),
        "param_mismatches": len(bad_params),
        "flops_over_1pct": len(bad_flops),
        "max_flops_rel_error": max(r["flops_rel_error"] for r in results),
        "counts_above_1e6_compared_rounded": sum(r["params"] >= 1e6 for r in results),
        "first_mismatches": (bad_params + bad_flops)[:5],
        "seconds": round(time.time() - start, 1),
    })
    print(json.dumps(summary, indent=1))
    failed = bad_params or bad_flops or summary.get("rows_disagreeing_with_their_class")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
