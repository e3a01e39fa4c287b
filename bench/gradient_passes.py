"""What one pass through the NB201 supernet costs on CPU, by what it differentiates (a benchmark).

    python bench/gradient_passes.py                 # both parts, one JSON line per row
    python bench/gradient_passes.py --part conv     # one dense conv, plain and as a branch of a conditional
    python bench/gradient_passes.py --part supernet # NB201 C=16 N=5 batch 64: weights+arch vs arch-only gradient
    python bench/gradient_passes.py --part op-vs-torch --torch-python $PEERS/venv/bin/python

``op-vs-torch``: forward and gradient (in the input and the kernel) of NB201's ReLU-conv-BN op at each stage's
shape, batch 64, 3x3 and 1x1, as XLA compiles it outside a conditional, then the same op in PyTorch (its
``Conv2d`` and ``BatchNorm2d``, 2 threads) in a subprocess of the peer harness's python, one right after the other:
the per-op speed that bounds a GDAS step, which runs one op per edge.

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


_TORCH_OP = """
import json, sys, time
import torch
torch.set_num_threads(2)
repeats = int(sys.argv[1])
for channels, size, k in json.loads(sys.argv[2]):
    x = torch.randn(64, channels, size, size, requires_grad=True)
    conv = torch.nn.Conv2d(channels, channels, k, padding=k // 2, bias=False)
    bn = torch.nn.BatchNorm2d(channels, affine=False)
    def call():
        bn(conv(torch.relu(x))).sum().backward()
    for _ in range(3):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    times.sort()
    print(json.dumps([channels, size, k, times[len(times) // 2], times[0]]))
"""
OP_SHAPES = ((16, 32, 3), (32, 16, 3), (64, 8, 3), (16, 32, 1), (32, 16, 1), (64, 8, 1))  # channels, size, kernel


def op_vs_torch_rows(repeats: int, torch_python: str | None):
    """NB201's ReLU-conv-BN (batch statistics, no affine) forward and gradient: XLA, then PyTorch."""
    import subprocess

    import jax
    import jax.numpy as jnp
    from jax import lax

    if not torch_python:
        raise SystemExit("--part op-vs-torch needs --torch-python (the peer harness's venv/bin/python)")
    for channels, size, k in OP_SHAPES:
        x = jax.random.normal(jax.random.PRNGKey(0), (64, size, size, channels))
        kernel = jax.random.normal(jax.random.PRNGKey(1), (k, k, channels, channels)) * 0.1

        def op(x, kernel):
            y = lax.conv_general_dilated(jax.nn.relu(x), kernel, (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
            mean, var = jnp.mean(y, (0, 1, 2)), jnp.var(y, (0, 1, 2))
            return jnp.sum((y - mean) * lax.rsqrt(var + 1e-5))

        _, median, best = _time(jax.jit(jax.grad(op, argnums=(0, 1))), x, kernel, repeats=max(repeats, 20))
        yield {"part": "op-vs-torch", "op": f"relu-conv{k}x{k}-bn", "shape": [64, size, size, channels],
               "framework": "jax (XLA:CPU)", "median_ms": round(1000 * median, 2), "min_ms": round(1000 * best, 2)}
    done = subprocess.run([torch_python, "-c", _TORCH_OP, str(max(repeats, 20)), json.dumps(OP_SHAPES)],
                          capture_output=True, text=True, check=True)
    for line in done.stdout.splitlines():
        channels, size, k, median, best = json.loads(line)
        yield {"part": "op-vs-torch", "op": f"relu-conv{k}x{k}-bn", "shape": [64, size, size, channels],
               "framework": "pytorch", "median_ms": round(1000 * median, 2), "min_ms": round(1000 * best, 2)}


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
    ap.add_argument("--part", choices=("conv", "supernet", "op-vs-torch", "all"), default="all")
    ap.add_argument("--torch-python", help="the peer harness's python (--part op-vs-torch)")
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "gradient_passes.jsonl"))
    ap.add_argument("--note")
    args = ap.parse_args(argv)
    import jax

    parts = {"conv": [conv_rows], "supernet": [supernet_rows], "all": [conv_rows, supernet_rows],
             "op-vs-torch": [lambda repeats: op_vs_torch_rows(repeats, args.torch_python)]}[args.part]
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
