"""Check NB201Network's parameter count and FLOPs against the NAS-Bench-201 table, cell by cell.

    python experiments/check_nb201_costs.py [--table ../shared/data/nb201/nb201.csv] [--limit N] [--workers 2]

Every cell is built as a flax module and traced with jax.eval_shape (no weights are allocated) for cifar10 and
cifar100 (32x32 input, 10/100 classes) and imagenet16 (16x16, 120 classes). Params must match exactly
at the table's precision (params_mb_<ds> holds 6 significant digits, so a count above 1e6 is compared after rounding
to 6 significant digits), FLOPs within 1% of flops_m_<ds>. Prints a JSON summary; exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import sys
import time

DATASETS = (("cifar10", 10, 32), ("cifar100", 100, 32), ("imagenet16", 120, 16))
DEFAULT_TABLE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "nb201", "nb201.csv")


def params_at_table_precision(params: int) -> float:
    """A parameter count in millions, rounded to the 6 significant digits the NB201 table keeps."""
    return float(f"{params / 1e6:.6g}")


def check_rows(rows):
    from jaxnas.costs import image_spec, profile
    from jaxnas.networks import NB201Network
    from jaxnas.spaces import get_space

    space = get_space("nb201")
    results = []
    for row in rows:
        genotype = space.parse(row["arch_str"])
        for ds, classes, size in DATASETS:
            model = NB201Network(num_classes=classes, genotype=genotype)
            params, flops = profile(model, image_spec(1, size), train=False)
            flops /= 1e6
            want_params = float(row[f"params_mb_{ds}"])
            want_flops = float(row[f"flops_m_{ds}"])
            results.append((int(row["index"]), ds, params, params_at_table_precision(params), want_params, flops,
                            want_flops))
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default=DEFAULT_TABLE)
    ap.add_argument("--limit", type=int, default=None, help="check only the first N cells")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    os.environ.setdefault("JAXNAS_CONV_IMPL", "xla")  # costs do not depend on it; xla traces fastest
    with open(args.table) as f:
        rows = list(csv.DictReader(f))[: args.limit]
    start = time.time()
    chunks = [rows[i : i + 125] for i in range(0, len(rows), 125)]
    results = []
    pool = mp.get_context("spawn").Pool(args.workers) if args.workers > 1 else None
    parts = pool.imap(check_rows, chunks) if pool else map(check_rows, chunks)
    for part in parts:
        results += part
        done = len(results) // len(DATASETS)
        print(f"checked {done}/{len(rows)} cells, {time.time() - start:.0f} s, "
              f"param mismatches so far: {sum(r[3] != r[4] for r in results)}", file=sys.stderr, flush=True)
    if pool:
        pool.close()
    param_bad = [r for r in results if r[3] != r[4]]
    flop_err = [abs(r[5] - r[6]) / r[6] for r in results if r[6] > 0]
    flop_bad = [r for r in results if r[6] > 0 and abs(r[5] - r[6]) / r[6] > 0.01]
    summary = {
        "cells": len(rows),
        "datasets": [d[0] for d in DATASETS],
        "rounded_comparisons": sum(1 for r in results if r[2] >= 1e6),
        "param_mismatches": len(param_bad),
        "flops_over_1pct": len(flop_bad),
        "max_flops_rel_error": max(flop_err) if flop_err else None,
        "seconds": round(time.time() - start, 1),
        "first_param_mismatches": param_bad[:5],
    }
    print(json.dumps(summary, indent=1))
    return 1 if param_bad or flop_bad else 0


if __name__ == "__main__":
    sys.exit(main())
