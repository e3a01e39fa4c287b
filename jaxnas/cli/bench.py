"""``jaxnas bench``: simulated searches on a tabular benchmark.

    jaxnas bench nb201 --strategy rea --queries 100 --runs 500 --dataset cifar10 --seed 0 [--json]

Each run queries ``--queries`` cells, rewarded by the 12-epoch validation accuracy (the NB201 paper's setting), and
keeps the best; the report is the mean +- std over runs of that cell's final (200-epoch) test accuracy.
"""

from __future__ import annotations

import json
from jaxnas.benchmarks.nb201 import benchmark_strategy

BENCHMARKS = ("nb201",)


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="simulated discrete searches on a tabular benchmark (NAS-Bench-201)",
                              description=__doc__.splitlines()[0])
    p.add_argument("benchmark", help=f"benchmark table: {', '.join(BENCHMARKS)}")
    p.add_argument("--strategy", default="rea", help="random, rea, reinforce or bo (default rea)")
    p.add_argument("--queries", type=int, default=100, help="table look-ups per run (default 100)")
    p.add_argument("--runs", type=int, default=100, help="independent runs, vmapped (default 100)")
    p.add_argument("--dataset", default="cifar10", help="cifar10, cifar100 or imagenet16 (default cifar10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a line of text")
    p.set_defaults(func=main)


def main(args) -> int:
    if args.benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {args.benchmark!r}; allowed: {', '.join(BENCHMARKS)}")
    result = benchmark_strategy(args.strategy, args.dataset, args.queries, args.runs, args.seed)
    if args.json:
        result = dict(result)
        result.pop("best_indices")
        print(json.dumps(result))
    else:
        print(f"nb201 {result['dataset']} {result['strategy']}: test acc {result['mean']:.2f} +- {result['std']:.2f} "
              f"over {result['runs']} runs of {result['queries']} queries (optimum {result['optimum']:.2f}, "
              f"found in {100 * result['found_optimum']:.1f}% of runs; {result['seconds']:.1f} s)")
    return 0
