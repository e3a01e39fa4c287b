"""Run as a script (tests/search/test_parallel.py does): the data-parallel step on 8 forced CPU devices must compute
what the 1-device step computes. Prints ``PARALLEL OK`` and the largest differences on success."""

import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import chex  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.helpers.tiny_model import TinySupernet, arch_init, batch  # noqa: E402

from jaxnas.search import OptimConfig, SearchState, init_search_state, make_arch_optimizer, make_step  # noqa: E402
from jaxnas.search import make_weight_optimizer, parallel  # noqa: E402


def main():
    assert jax.device_count() == 8, jax.devices()
    model = TinySupernet()
    cfg = OptimConfig()
    w_opt, a_opt = make_weight_optimizer(cfg, 4), make_arch_optimizer(cfg)
    key = jax.random.key(0, impl="rbg")
    base = init_search_state(model, arch_init(key), batch(0, n=16)[0], key, w_opt, a_opt)
    data = [(batch(10 + i, n=16), batch(20 + i, n=16)) for i in range(2)]
    mesh = parallel.data_mesh()
    report = []

    # one case covering the most: exact second order, a sampled hard relaxation (GDAS), BN on train and val batches
    for mode, relaxation, temperature in [("bilevel-2nd", "gdas", 5.0)]:
        results = []
        for use_mesh in (False, True):
            state = SearchState.create(
                *jax.tree_util.tree_map(jnp.array, (base.params, base.batch_stats, base.arch)), w_opt, a_opt,
                jax.random.key(1),  # threefry: its samples do not depend on how the computation is partitioned
            )
            step = make_step(
                model, mode=mode, relaxation=relaxation, w_optimizer=w_opt, a_optimizer=a_opt,
                temperature=temperature, mesh=mesh if use_mesh else None,
            )
            if use_mesh:
                state = parallel.replicate(state, mesh)
            for train, val in data:
                if use_mesh:
                    train, val = parallel.shard_batch(train, mesh), parallel.shard_batch(val, mesh)
                state, metrics = step(state, train, val)
            if use_mesh:
                leaf = jax.tree_util.tree_leaves(state.params)[0]
                assert len(leaf.sharding.device_set) == 8 and leaf.sharding.is_fully_replicated, leaf.sharding
                assert metrics["loss"].sharding.is_fully_replicated
            results.append(jax.device_get((state.params, state.batch_stats, state.arch, metrics)))
        one, eight = results
        chex.assert_trees_all_close(one, eight, rtol=2e-5, atol=2e-6)
        diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in
                   zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(eight)))
        moved = float(np.max(np.abs(np.asarray(one[2]["cell"]) - np.asarray(base.arch["cell"]))))
        assert moved > 0
        report.append(f"{mode}/{relaxation}: max |1 device - 8 devices| = {diff:.2e}")

    try:  # a batch that does not split over the devices
        parallel.shard_batch(batch(0, n=12), mesh)
    except ValueError as e:
        assert "divide evenly over the 8 devices" in str(e), e
    else:
        raise AssertionError("shard_batch accepted a batch of 12 on 8 devices")
    print("PARALLEL OK;", "; ".join(report))


if __name__ == "__main__":
    main()
