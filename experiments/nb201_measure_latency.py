"""Build an NB201 latency table for *this* device and fit a predictor to it.

    python experiments/nb201_measure_latency.py --cells 60 --train 40 [--batch 1] [--C 16] [--N 5] [--out lat.csv]

Measures the median latency of ``--cells`` random NB201 cells (jitted discrete networks, warm-up then repeats) on
the default jax device, writes ``index,arch,ms`` rows, fits the residual MLP and the per-op table on ``--train`` of
them and prints the mean relative error on the rest. Use the fitted predictor with
``jaxnas.benchmarks.latency.latency_penalty`` for a latency-aware search on this hardware.
"""

from __future__ import annotations

import argparse
import csv

import jax
import numpy as np

from jaxnas.benchmarks import latency, nb201


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=60)
    parser.add_argument("--train", type=int, default=40)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if not 1 <= args.train < args.cells:
        raise SystemExit("need 1 <= --train < --cells")
    bench = nb201.load()
    rows = np.random.default_rng(args.seed).choice(len(bench), args.cells, replace=False)
    print(f"device: {jax.devices()[0]}")
    ms = latency.measure_table([bench.genotype(int(i)) for i in rows], batch_size=args.batch, C=args.C, N=args.N,
                               repeats=args.repeats,
                               progress=lambda k, t: print(f"  {k + 1}/{args.cells}: {t:.3f} ms", flush=True))
    if args.out:
        with open(args.out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["index", "arch", "ms"])
            w.writerows([int(i), bench.arch_str(int(i)), f"{t:.5f}"] for i, t in zip(rows, ms))
    X = np.eye(5, dtype=np.float32)[bench.ops[rows]].reshape(len(rows), -1)
    tr, te = slice(0, args.train), slice(args.train, None)
    for name, model in (("mlp", latency.fit_mlp(X[tr], ms[tr], jax.random.PRNGKey(args.seed))),
                        ("op_table", latency.fit_op_table(X[tr], ms[tr]))):
        err = float(latency.relative_error(latency.predict(model, X[te]), ms[te]))
        print(f"{name}: mean relative error {100 * err:.1f}% on {args.cells - args.train} held-out cells")


if __name__ == "__main__":
    main()
