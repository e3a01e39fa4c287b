"""How XLA:CPU's time for one loop fusion grows with its size (a benchmark; why ``jaxnas.nn.ops.materialize`` exists).

    python bench/fusion_size.py                 # sums of n depthwise correlations, n = 1 2 4 8 16, 5x5 taps
    python bench/fusion_size.py --taps 3 --terms 4 8 12 16

Each case jits ``sum_i depthwise(x_i, taps_i)`` over n already padded inputs (batch 64, 32x32x16, dilation 2), which
XLA compiles to one loop fusion, and reports the time per call, per term, and whether the fusion's LLVM IR holds
vector instructions (from ``--xla_dump_to``). The same sum appears in a supernet's backward pass: a cell node's
gradient adds the input gradients of every op that reads the node. Prints one JSON line per case.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def run_case(terms: int, taps: int, batch: int, repeats: int, dump: str) -> dict:
    import jax
    import jax.numpy as jnp
    from jax import lax

    dilation, size, channels = 2, 32, 16
    reach = dilation * (taps - 1)

    def correlate(xp, w):
        out = None
        for i in range(taps):
            for j in range(taps):
                view = lax.slice(xp, (0, i * dilation, j * dilation, 0), (batch, i * dilation + size,
                                                                          j * dilation + size, channels))
                out = view * w[i, j] if out is None else out + view * w[i, j]
        return out

    def summed(xs, ws):
        return sum(correlate(xp, w) for xp, w in zip(xs, ws))

    keys = jax.random.split(jax.random.PRNGKey(0), 2 * terms)
    xs = [jax.random.normal(k, (batch, size + reach, size + reach, channels)) for k in keys[:terms]]
    ws = [jax.random.normal(k, (taps, taps, channels)) for k in keys[terms:]]
    fn = jax.jit(summed)
    jax.block_until_ready(fn(xs, ws))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(xs, ws))
        times.append(time.perf_counter() - start)
    kernels = glob.glob(os.path.join(dump, "*jit_summed*fusion*ir-with-opt.ll"))
    vectorised = [bool(re.search(r"<\d+ x float>", open(path).read())) for path in kernels]
    median = statistics.median(times)
    return {
        "terms": terms, "taps": f"{taps}x{taps}", "batch": batch, "fusions": len(kernels),
        "vectorised": all(vectorised) if vectorised else None, "median_ms": round(1e3 * median, 2),
        "ms_per_term": round(1e3 * median / terms, 2), "jax": jax.__version__,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--terms", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--taps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--dump", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(run_case(args.worker, args.taps, args.batch, args.repeats, args.dump)))
        return 0
    for terms in args.terms:
        with tempfile.TemporaryDirectory() as dump:
            env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_dump_to={dump}".strip())
            cmd = [sys.executable, __file__, "--worker", str(terms), "--taps", str(args.taps), "--batch",
                   str(args.batch), "--repeats", str(args.repeats), "--dump", dump]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            print(json.dumps({"terms": terms, "error": proc.stderr.strip().splitlines()[-1:]}), flush=True)
        else:
            print(proc.stdout.strip().splitlines()[-1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
