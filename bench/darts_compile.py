"""Compile time and first-call time of the DARTS search network: forward+backward, or a whole search step.

    python bench/darts_compile.py fwdbwd 4 5 8 xla          # what C layers batch impl
    python bench/darts_compile.py bilevel-1st 16 8 16 auto

Prints one JSON line (append it to bench/results/darts_compile.jsonl by hand or with >>). The persistent compile
cache is off, so the compile is timed in full. ``impl``: xla, shift, or auto (the per-kind CPU choice).
"""

import json
import os
import resource
import sys
import time

os.environ.setdefault("JAXNAS_COMPILATION_CACHE", "off")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jaxnas.platform import settings  # noqa: E402
from jaxnas.search.steps import (  # noqa: E402
    OptimConfig, cross_entropy, init_search_state, make_arch_optimizer, make_step, make_weight_optimizer,
)
from jaxnas.registry import get_space  # noqa: E402
from jaxnas.nn.supernet import DartsSearchNetwork  # noqa: E402


def main(what: str, C: int, layers: int, batch: int, impl: str) -> dict:
    if impl != "auto":
        settings.configure(conv_impl=impl)
    model = DartsSearchNetwork(C=C, layers=layers)
    space = get_space("darts")
    x, y = jnp.ones((batch, 32, 32, 3)), jnp.zeros((batch,), jnp.int32)
    cfg = OptimConfig()
    w_opt, a_opt = make_weight_optimizer(cfg, 1000), make_arch_optimizer(cfg)
    state = init_search_state(model, space.init_arch(jax.random.key(0)), x, jax.random.key(1), w_opt, a_opt)
    if what == "fwdbwd":
        def grads(p, bs, a):
            def loss(p):
                w = jax.tree_util.tree_map(lambda v: jax.nn.softmax(v, -1), a)
                logits, _ = model.apply({"params": p, "batch_stats": bs}, x, w, train=True, mutable=["batch_stats"])
                return cross_entropy(logits, y)
            return jax.grad(loss)(p)

        t = time.time()
        compiled = jax.jit(grads).lower(state.params, state.batch_stats, state.arch).compile()
        t_compile = time.time() - t
        t = time.time()
        jax.block_until_ready(compiled(state.params, state.batch_stats, state.arch))
    else:
        step = make_step(model, mode=what, w_optimizer=w_opt, a_optimizer=a_opt)
        t = time.time()
        compiled = step.jitted.lower(state, (x, y), (x, y)).compile()
        t_compile = time.time() - t
        t = time.time()
        jax.block_until_ready(compiled(state, (x, y), (x, y))[1])
    return {"what": what, "C": C, "layers": layers, "batch": batch, "impl": impl, "compile_s": round(t_compile, 1),
            "first_call_s": round(time.time() - t, 2),
            "maxrss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
            "jax": jax.__version__, "date": time.strftime("%Y-%m-%d %H:%M")}


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) != 5:
        sys.exit(__doc__)
    print(json.dumps(main(a[0], int(a[1]), int(a[2]), int(a[3]), a[4])))
