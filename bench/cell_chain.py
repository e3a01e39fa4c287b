"""A supernet gradient as a chain of per-cell programs against one flat program (a benchmark).

    python bench/cell_chain.py --mode flat  --batch 16
    python bench/cell_chain.py --mode chain --batch 16 [--arch-only] [--check]

XLA:CPU's compile time and compiler memory grow faster than linearly with a program's size (docs/cpu-performance.md),
and the DARTS search network's gradient is one large program. Here the same loss and gradient (in the weights and
the relaxed edge weights, train-mode batch norm) is computed by one jitted forward program per piece (stem, each
cell, the head), each returning its VJP closure as a pytree, and one jitted backward program per piece, chained in
Python. Each row (JSON, appended to bench/results/cell_chain.jsonl) gives the first call (trace + compile + run),
the median of further calls and the process's peak resident memory; run each mode in its own process. ``--check``
compares the chained gradient with the flat one (C=8, 5 cells at the given batch) and prints the largest
difference. ``--arch-only`` drops the weights' cotangent from every backward program (XLA then leaves out the
kernel gradients), as the library's arch-only passes do.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from jaxnas import relax
from jaxnas.nn.chain import ChainedVJP
from jaxnas.nn.supernet import DartsSearchNetwork
from jaxnas.registry import get_space
from jaxnas.search.steps import cross_entropy

sys.path.insert(0, str(Path(__file__).parent))
from gradient_passes import _time  # noqa: E402  (the benchmarks' shared timing loop)

OUT = Path(__file__).with_name("results") / "cell_chain.jsonl"


def chained_gradient(net: DartsSearchNetwork, arch_only: bool = False):
    """``grad(params, batch_stats, weights, x, y) -> (loss, g_params, g_weights, new_batch_stats)`` as a chain."""
    chained = ChainedVJP(net.chain())

    @jax.jit
    def loss_grad(logits, y):
        return jax.value_and_grad(cross_entropy)(logits, y)

    def grad(params, batch_stats, weights, x, y):
        logits, new_bs, backward = chained.forward(params, batch_stats, x, weights)
        loss, g_logits = loss_grad(logits, y)
        g_params, g_weights = backward(g_logits, params=not arch_only)
        return loss, g_params, g_weights, new_bs

    return grad


def flat_gradient(net: DartsSearchNetwork):
    @jax.jit
    def grad(params, batch_stats, weights, x, y):
        def f(p, w):
            logits, upd = net.apply({"params": p, "batch_stats": batch_stats}, x, w, True, mutable=["batch_stats"])
            return cross_entropy(logits, y), upd["batch_stats"]
        (loss, bs), (g_p, g_w) = jax.value_and_grad(f, argnums=(0, 1), has_aux=True)(params, weights)
        return loss, g_p, g_w, bs
    return grad


def setup(C, layers, batch):
    net = DartsSearchNetwork(C=C, layers=layers)
    key = jax.random.key(0)
    arch = get_space("darts").init_arch(key)
    weights = relax.softmax(arch)
    x = jax.random.normal(jax.random.key(1), (batch, 32, 32, 3))
    y = jax.random.randint(jax.random.key(2), (batch,), 0, 10)
    variables = net.lazy_init(jax.random.key(3), jax.ShapeDtypeStruct(x.shape, x.dtype), weights, train=False)
    return net, variables["params"], variables["batch_stats"], weights, x, y


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("flat", "chain"), default="chain")
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--calls", type=int, default=8)
    ap.add_argument("--arch-only", action="store_true")
    ap.add_argument("--check", action="store_true", help="compare chain and flat gradients (C=8, 5 cells)")
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    if args.check:
        net, params, bs, weights, x, y = setup(8, 5, args.batch)
        a = flat_gradient(net)(params, bs, weights, x, y)
        b = chained_gradient(net)(params, bs, weights, x, y)
        diff = jax.tree.map(lambda u, v: float(jnp.max(jnp.abs(u - v)) / (jnp.max(jnp.abs(u)) + 1e-12)), a, b)
        print(json.dumps({"check": "chain vs flat, largest relative difference per part",
                          "loss": diff[0], "params": max(jax.tree.leaves(diff[1])),
                          "weights": max(jax.tree.leaves(diff[2])), "batch_stats": max(jax.tree.leaves(diff[3]))}))
        return
    net, params, bs, weights, x, y = setup(args.C, args.layers, args.batch)
    setup_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    grad = flat_gradient(net) if args.mode == "flat" else chained_gradient(net, args.arch_only)
    first, median, fastest = _time(grad, params, bs, weights, x, y, repeats=args.calls)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if ln.startswith("Model name")), None)
    row = {"mode": args.mode, "arch_only": args.arch_only, "C": args.C, "layers": args.layers, "batch": args.batch,
           "first_call_s": round(first, 1), "median_s": round(median, 3), "min_s": round(fastest, 3),
           "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
           "peak_rss_after_setup_gb": round(setup_peak, 2),
           "jax": jax.__version__, "cpu_model": model, "note": args.note, "date": time.strftime("%Y-%m-%d %H:%M")}
    print(json.dumps(row))
    with OUT.open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
