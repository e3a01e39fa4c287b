"""What one pass through the NB201 supernet costs on CPU, by what it differentiates (a benchmark).

    python bench/gradient_passes.py                 # both parts, one JSON line per row
    python bench/gradient_passes.py --part conv     # one dense conv, plain and as a branch of a conditional
    python bench/gradient_passes.py --part supernet # NB201 C=16 N=5 batch 64: weights+arch vs arch-only gradient

``conv``: forward and gradient of one 3x3 conv (64 x 32 x 32 x 16 and the NB201 stages' shapes) as a plain program
and as the taken branch of a ``lax.switch``, with autodiff's gradient (``lax.conv_general_dilated``) and with
jaxnas's hand-written one (``jaxnas.nn.ops.dense_conv_cpu``, which the supernets use inside conditionals on CPU).

``supernet``: the gradient of one batch's loss in the weights and the architecture (what the weight step needs)
against the gradient in the architecture alone (what a bi-level step's val pass needs), with soft weights
(DARTS) and one-hot weights (GDAS's hard path: every edge a conditional), on a fixed sampled cell.

Median of --repeats calls after the first; results appended to bench/results/gradient_passes.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def _time(fn, *args, repeats: int):
    import jax

    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return round(first, 2), round(statistics.median(times), 4), round(min(times), 4)


def conv_rows(repeats: int):
    import jax
    import jax.numpy as jnp
    from jax import lax

    from jaxnas.nn import ops

    for channels, size in ((16, 32), (32, 16), (64, 8)):
        x = jax.random.normal(jax.random.PRNGKey(0), (64, size, size, channels))
        kernel = jax.random.normal(jax.random.PRNGKey(1), (3, 3, channels, channels))
        for rule, conv in (("autodiff", ops._lax_conv), ("hand-written", ops.dense_conv_cpu)):
            def plain(x, k, i, conv=conv):
                return jnp.sum(conv(x, k, 1, 1, 1))

            def branch(x, k, i, conv=conv):  # i traced: a constant index would let XLA drop the conditional
                return jnp.sum(lax.switch(i, [lambda x, k: conv(x, k, 1, 1, 1), lambda x, k: x], x, k))

            for where, f in (("plain", plain), ("conditional", branch)):
                for what, g in (("forward", jax.jit(f)), ("gradient", jax.jit(jax.grad(f, argnums=(0, 1))))):
                    first, median, best = _time(g, x, kernel, jnp.int32(0), repeats=repeats)
                    yield {"part": "conv", "shape": [64, size, size, channels], "rule": rule, "where": where,
                           "what": what, "median_ms": round(1000 * median, 2), "min_ms": round(1000 * best, 2)}


def supernet_rows(repeats: int):
    import jax

    from jaxnas.nn.networks import init_variables
    from jaxnas.nn.supernet import NB201Supernet
    from jaxnas.registry import get_space
    from jaxnas.search.steps import cross_entropy

    space = get_space("nb201")
    model = NB201Supernet(C=16, N=5)
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (64, 32, 32, 3))
    y = jax.random.randint(key, (64,), 0, 10)
    cell = space.sample(key).__class__(ops=("nor_conv_3x3", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "none",
                                            "nor_conv_3x3"))  # two 3x3 convs in six edges, a little above the mean
    weights = space.one_hot_weights(cell)
    variables = init_variables(model, key, x[:2], weights, train=False)

    def loss(params, w, hard):
        out, _ = model.apply({**variables, "params": params}, x, w, train=True, hard=hard, mutable=["batch_stats"])
        return cross_entropy(out, y)

    for hard in (False, True):
        for wrt, argnums in (("weights and arch", (0, 1)), ("arch only", 1)):
            g = jax.jit(jax.value_and_grad(lambda p, w, hard=hard: loss(p, w, hard), argnums=argnums))
            first, median, best = _time(g, variables["params"], weights, repeats=repeats)
            yield {"part": "supernet", "case": "nb201 C=16 N=5 batch 64", "cell": list(cell.ops),
                   "edges": "one-hot (hard)" if hard else "soft", "gradient in": wrt, "first_call_s": first,
                   "median_s": median, "min_s": best}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("conv", "supernet", "all"), default="all")
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "gradient_passes.jsonl"))
    ap.add_argument("--note")
    args = ap.parse_args(argv)
    import jax

    parts = {"conv": [conv_rows], "supernet": [supernet_rows], "all": [conv_rows, supernet_rows]}[args.part]
    for part in parts:
        for row in part(args.repeats):
            row.update(date=time.strftime("%Y-%m-%d %H:%M"), jax=jax.__version__, backend=jax.default_backend(),
                       **({"note": args.note} if args.note else {}))
            print(json.dumps(row), flush=True)
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
