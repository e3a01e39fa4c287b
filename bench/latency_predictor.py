"""Latency predictors on the HELP latencies of the NB201 table: train on N random cells, mean relative error on all
the other cells, per device, for the residual MLP and the additive per-op table.

    python bench/latency_predictor.py [--n 25 50 100 200 1000] [--seeds 3] [--devices titanxp_1 pixel3 ...]
        [--kinds mlp op_table] [--statistic mean|median] [--connected-only]

Prints a markdown table (mean over seeds of the mean relative error, %) per predictor kind.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from jaxnas.benchmarks import latency, nb201

DEVICES = ("titanxp_1", "titanxp_256", "2080ti_32", "titan_rtx_1", "gold_6226", "silver_4114", "fpga", "eyeriss",
           "pixel2", "samsung_s7", "essential_ph_1", "pixel3", "raspi4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[25, 50, 100, 200, 1000])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--devices", nargs="+", default=list(DEVICES))
    parser.add_argument("--kinds", nargs="+", default=["mlp", "op_table"])
    parser.add_argument("--statistic", default="mean", choices=["mean", "median"])
    parser.add_argument("--connected-only", action="store_true",
                        help="measure the error only on cells whose output depends on the input (15,284 of 15,625)")
    args = parser.parse_args()
    bench = nb201.load()
    X = np.eye(len(bench.space.primitives), dtype=np.float32)[bench.ops].reshape(len(bench), -1)
    Y = np.stack([bench.latency(bench.ops, d) for d in args.devices], axis=1)
    for kind in args.kinds:
        which = "connected cells" if args.connected_only else "cells"
        print(f"\n{kind}: {args.statistic} relative error (%) on the {which} not trained on, "
              f"mean over {args.seeds} seeds")
        print("| N | " + " | ".join(args.devices) + " |")
        print("|---|" + "---|" * len(args.devices))
        for n in args.n:
            start = time.perf_counter()
            err = latency.evaluate(X, Y, n, seeds=args.seeds, kind=kind, statistic=args.statistic,
                                   test_mask=nb201.is_connected(bench.ops) if args.connected_only else None).mean(0)
            cells = " | ".join(f"{100 * e:.1f}" for e in err)
            print(f"| {n} | {cells} |  <!-- {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
