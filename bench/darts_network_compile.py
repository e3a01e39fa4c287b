"""Compile time and compile memory of the DARTS search network's forward+backward, by number of cells (a probe).

    python bench/darts_network_compile.py 1 2           # cells batch: x, arch and params as jit arguments
    python bench/darts_network_compile.py 2 2 --x-constant --stats-argument
    python bench/darts_network_compile.py 1 2 --wrt params   # the weight gradient alone

Written to bisect why a whole DARTS search step does not compile on CPU (see the README, "Conv implementation per
backend"). How the traced function is set up changes the cost: with x, params and arch as arguments and the batch
statistics closed over, 1 cell compiles in 25 s (1.1 GB) and 2 cells in 67 s (2.0 GB), while bench/darts_compile.py's
forward+backward of 2 cells (batch statistics as an argument, x closed over, gradient in the weights only) takes
231 s and 4.9 GB. The difference was the gradient in the weights alone (``--wrt params``): before the supernet cells
fenced their node gradients (``jaxnas.nn.ops.fence_cotangent``) it compiled 1 cell in 100 s and ran 7x slower than the
gradient in weights and architecture together; with the fence 15 s. Prints one JSON line.
"""

import argparse
import json
import resource
import time

import jax
import jax.numpy as jnp

from jaxnas.registry import get_space
from jaxnas.nn.supernet import DartsSearchNetwork


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cells", type=int)
    ap.add_argument("batch", type=int)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--x-constant", action="store_true", help="close over the input instead of passing it")
    ap.add_argument("--stats-argument", action="store_true", help="pass the batch statistics as an argument")
    ap.add_argument("--wrt", choices=["both", "params", "arch"], default="both", help="what the gradient is in")
    args = ap.parse_args(argv)
    model = DartsSearchNetwork(C=args.channels, layers=args.cells)
    x = jnp.ones((args.batch, 32, 32, 3))
    arch = get_space("darts").init_arch(jax.random.key(0))
    variables = model.lazy_init(jax.random.key(1), jax.ShapeDtypeStruct(x.shape, x.dtype), arch, train=False)

    def loss(params, arch, x_arg, stats_arg):
        weights = jax.tree_util.tree_map(lambda a: jax.nn.softmax(a, -1), arch)
        stats = stats_arg if args.stats_argument else variables["batch_stats"]
        out, _ = model.apply({"params": params, "batch_stats": stats}, x if args.x_constant else x_arg, weights,
                             train=True, mutable=["batch_stats"])
        return jnp.mean(out**2)

    start = time.perf_counter()
    argnums = {"both": (0, 1), "params": 0, "arch": 1}[args.wrt]
    jax.jit(jax.grad(loss, argnums=argnums)).lower(variables["params"], arch, x, variables["batch_stats"]).compile()
    print(json.dumps({
        "cells": args.cells, "batch": args.batch, "C": args.channels, "x_constant": args.x_constant,
        "stats_argument": args.stats_argument, "wrt": args.wrt, "compile_s": round(time.perf_counter() - start, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2), "jax": jax.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }))


if __name__ == "__main__":
    main()
