"""Forward+backward time of the DARTS search network for each conv/pool implementation (a benchmark, not a test).

    python bench/conv_impl.py [--batch 16] [--channels 16] [--layers 8] [--repeats 5] [--space darts]

For "auto" (the per-kind choice of jaxnas.nn.ops.default_impl: on CPU, shift for depthwise convs and strided max
pooling, xla for the rest) and for each single implementation in jaxnas.nn.ops.IMPLS used everywhere, it jits one gradient of the cross-entropy with respect to the weights and
the architecture parameters (softmax edge weights, as a DARTS step computes), then reports the compile time and the
median of --repeats timed calls. Implementations alternate within one run, so that their ratio is meaningful on a
shared, noisy machine. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import optax

from jaxnas.nn import ops
from jaxnas.registry import get_space
from jaxnas.nn.supernet import DartsSearchNetwork, NB201Supernet


def build(space_name, impl, batch, channels, layers):
    space = get_space(space_name)
    if space_name == "darts":
        model = DartsSearchNetwork(C=channels, layers=layers, impl=impl)
    else:
        model = NB201Supernet(C=channels, N=layers, impl=impl)
    x = jax.random.normal(jax.random.PRNGKey(0), (batch, 32, 32, 3))
    y = jax.random.randint(jax.random.PRNGKey(1), (batch,), 0, 10)
    arch = space.init_arch(jax.random.PRNGKey(2))
    variables = model.init(jax.random.PRNGKey(3), x, arch, train=False)

    def loss(params, arch):
        weights = jax.tree_util.tree_map(lambda a: jax.nn.softmax(a, -1), arch)
        logits, _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, x, weights,
                                train=True, mutable=["batch_stats"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    return grad, (variables["params"], arch)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="darts", choices=["darts", "nb201"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--layers", type=int, default=None, help="DARTS cells (8) or NB201 cells per stage (5)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--impls", nargs="+", default=["auto", *ops.IMPLS], choices=["auto", *ops.IMPLS])
    args = ap.parse_args(argv)
    layers = args.layers or (8 if args.space == "darts" else 5)
    fns, compile_s = {}, {}
    choices = tuple(args.impls)
    for impl in choices:
        fn, fn_args = build(args.space, None if impl == "auto" else impl, args.batch, args.channels, layers)
        start = time.perf_counter()
        jax.block_until_ready(fn(*fn_args))
        compile_s[impl] = time.perf_counter() - start
        fns[impl] = (fn, fn_args)
    times = {impl: [] for impl in choices}
    for _ in range(args.repeats):
        for impl, (fn, fn_args) in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(*fn_args))
            times[impl].append(time.perf_counter() - start)
    med = {impl: statistics.median(t) for impl, t in times.items()}
    print(json.dumps({
        "what": f"{args.space} search network forward+backward (weights and arch), batch {args.batch}, "
                f"C={args.channels}, layers={layers}, 32x32x3",
        "backend": jax.default_backend(), "device": str(jax.devices()[0]), "cpu": platform.processor(),
        "jax": jax.__version__, "auto": {k: ops.default_impl(k) for k in ops.KINDS},
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "all_s": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "first_call_s (compile + run)": {k: round(v, 1) for k, v in compile_s.items()},
        "ratios_to_first": {k: round(v / med[choices[0]], 2) for k, v in med.items()},
    }, indent=1))


if __name__ == "__main__":
    main()
