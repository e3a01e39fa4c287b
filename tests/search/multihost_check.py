"""Two local processes as two "hosts" (2 CPU devices each): the data-parallel step over all 4 devices, each process
feeding its half of every global batch, must equal a 1-device step on the whole batch.

Run: ``python tests/search/multihost_check.py PORT PROCESS_ID`` in two processes (tests/search/test_parallel.py does).
Process 0 prints ``MULTIHOST OK`` on success.
"""

import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402

PORT, PID = int(sys.argv[1]), int(sys.argv[2])
jax.distributed.initialize(coordinator_address=f"localhost:{PORT}", num_processes=2, process_id=PID)

import chex  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.helpers.tiny_model import TinySupernet, arch_init, batch  # noqa: E402

from jaxnas.search import SearchState, init_search_state, make_step, parallel  # noqa: E402


def main():
    assert jax.process_count() == 2 and jax.device_count() == 4 and jax.local_device_count() == 2
    model = TinySupernet()
    w_opt, a_opt = optax.sgd(0.1, momentum=0.9), optax.adam(0.01)
    key = jax.random.key(0, impl="rbg")
    local = jax.local_devices()[0]
    with jax.default_device(local):  # identical initial state in both processes, built locally
        base = init_search_state(model, arch_init(key), batch(0, n=16)[0], key, w_opt, a_opt)
        base = jax.device_get(base.replace(key=jax.random.key_data(base.key)))
    data = [(batch(10 + i, n=16), batch(20 + i, n=16)) for i in range(2)]

    def fresh():
        return SearchState.create(
            base.params, base.batch_stats, base.arch, w_opt, a_opt, jax.random.wrap_key_data(base.key, impl="rbg")
        )

    mesh = parallel.data_mesh()
    step = make_step(model, mode="bilevel-1st", w_optimizer=w_opt, a_optimizer=a_opt, mesh=mesh)
    state = parallel.replicate(fresh(), mesh)
    half = slice(8 * PID, 8 * PID + 8)  # this process's rows of every global batch
    for train, val in data:
        local_train = jax.tree_util.tree_map(lambda a: a[half], train)
        local_val = jax.tree_util.tree_map(lambda a: a[half], val)
        state, metrics = step(state, parallel.shard_batch(local_train, mesh), parallel.shard_batch(local_val, mesh))
    multi = jax.tree_util.tree_map(
        lambda a: np.asarray(a.addressable_data(0)), (state.params, state.batch_stats, state.arch, metrics)
    )

    if PID == 0:
        with jax.default_device(local):
            ref_step = make_step(model, mode="bilevel-1st", w_optimizer=w_opt, a_optimizer=a_opt)
            ref = jax.device_put(fresh(), local)
            for train, val in data:
                ref, ref_metrics = ref_step(ref, train, val)
            single = jax.device_get((ref.params, ref.batch_stats, ref.arch, ref_metrics))
        chex.assert_trees_all_close(single, multi, rtol=2e-5, atol=2e-6)
        print("MULTIHOST OK")
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
