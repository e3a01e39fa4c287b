"""``jaxnas bench``: simulated searches on a tabular benchmark.

    jaxnas bench nb201 --strategy rea --queries 100 --runs 500 --dataset cifar10 --seed 0 [--json]
    jaxnas bench nb201 --strategy random,rea,reinforce,bo --queries 100 --runs 100 --plot strategies.png

Each run queries ``--queries`` cells, rewarded by the 12-epoch validation accuracy (the NB201 paper's setting), and
keeps the best; the report is the mean +- std over runs of that cell's final (200-epoch) test accuracy.
"""

from __future__ import annotations

import json

from jaxnas.benchmarks.nb201 import benchmark_strategy
from jaxnas.plot import plot_strategy_comparison, save_figure
from jaxnas.strategies import STRATEGIES

BENCHMARKS = ("nb201",)


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="simulated discrete searches on a tabular benchmark (NAS-Bench-201)",
                              description=__doc__.splitlines()[0])
    p.add_argument("benchmark", help=f"benchmark table: {', '.join(BENCHMARKS)}")
    p.add_argument("--strategy", default="rea", help="random, rea, reinforce or bo, or several separated by commas, "
                                                     "or all (default rea)")
    p.add_argument("--queries", type=int, default=100, help="table look-ups per run (default 100)")
    p.add_argument("--runs", type=int, default=100, help="independent runs, vmapped (default 100)")
    p.add_argument("--dataset", default="cifar10", help="cifar10, cifar100 or imagenet16 (default cifar10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object per strategy instead of a line of text")
    p.add_argument("--plot", metavar="FILE", help="also draw best-so-far test accuracy against queries for every "
                                                  "strategy (PNG or SVG by the suffix)")
    p.set_defaults(func=main)


def main(args) -> int:
    if args.benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {args.benchmark!r}; allowed: {', '.join(BENCHMARKS)}")
    names = list(STRATEGIES) if args.strategy == "all" else [s.strip() for s in args.strategy.split(",") if s.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if not names or unknown:
        raise ValueError(f"unknown strategy {', '.join(map(repr, unknown)) or repr(args.strategy)}; allowed: "
                         f"{', '.join(STRATEGIES)} (several separated by commas, or all)")
    results = []
    for name in names:
        result = benchmark_strategy(name, args.dataset, args.queries, args.runs, args.seed)
        results.append(result)
        if args.json:
            print(json.dumps({k: v for k, v in result.items() if k not in ("best_indices", "best_so_far")}))
        else:
            print(f"nb201 {result['dataset']} {result['strategy']}: test acc {result['mean']:.2f} +- "
                  f"{result['std']:.2f} over {result['runs']} runs of {result['queries']} queries (optimum "
                  f"{result['optimum']:.2f}, found in {100 * result['found_optimum']:.1f}% of runs; "
                  f"{result['seconds']:.1f} s)")
    if args.plot:
        print(save_figure(plot_strategy_comparison(results), args.plot))
    return 0
