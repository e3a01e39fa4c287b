"""Data parallel search steps: the same step, jitted with the batch sharded over a ``'data'`` mesh axis.

The state (weights, BN statistics, architecture parameters, optimizer states, key) is replicated; every batch array is
split along its first axis over the devices of the mesh. XLA inserts the cross-device reductions itself: gradients are
averaged over the global batch and BatchNorm computes global-batch statistics, so an 8-device step computes the same
function as a 1-device step on the whole batch (equal up to float reduction order)::

    from jaxnas.search import make_step, parallel
    mesh = parallel.data_mesh()                      # all devices, all hosts
    step = make_step(model, mode="bilevel-2nd", ..., mesh=mesh)
    state = parallel.replicate(state, mesh)
    state, metrics = step(state, parallel.shard_batch(batch, mesh), parallel.shard_batch(val_batch, mesh))

Multi-host (several processes, each with its local devices; e.g. a TPU pod slice or several GPU machines):

1. Before any other JAX call, every process runs ``jax.distributed.initialize()`` (on TPU and Slurm/Open MPI the
   arguments are found automatically; elsewhere give ``coordinator_address="host0:1234", num_processes=N,
   process_id=i``, and on CPU also ``local_device_ids`` if needed).
2. Every process builds the same model, the same initial state from the same seed, and ``data_mesh()`` over
   ``jax.devices()`` (all processes' devices).
3. Every process reads a different ``1/N`` slice of every global batch (e.g. ``tfds`` ``split=...[k::N]`` or
   ``shard_index=jax.process_index()``); :func:`shard_batch` assembles the process-local slices into one global array
   (``jax.make_array_from_process_local_data``). The global batch size is the sum of the local ones.
4. Every process calls the step in the same order; metrics come back replicated (read them on process 0 for logging),
   and only process 0 writes checkpoints (orbax handles multi-process saving).
"""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxnas.platform import xla

DATA_AXIS = "data"


def data_mesh(devices=None, axis: str = DATA_AXIS) -> Mesh:
    """A 1-D mesh over ``devices`` (default: every device of every process) named ``axis``."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("data_mesh needs at least one device")
    return Mesh(np.asarray(devices), (axis,))


def _axis(mesh: Mesh) -> str:
    if DATA_AXIS in mesh.axis_names:
        return DATA_AXIS
    if len(mesh.axis_names) == 1:
        return mesh.axis_names[0]
    raise ValueError(f"the mesh needs a {DATA_AXIS!r} axis; it has axes {mesh.axis_names}")


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading axis split over the mesh's data axis."""
    return NamedSharding(mesh, PartitionSpec(_axis(mesh)))


def replicate(tree, mesh: Mesh):
    """Put every array of ``tree`` (e.g. a SearchState) on all devices of ``mesh``.

    In a multi-process run every process must pass the same values (JAX checks); they go through host memory.
    """
    sharding = replicated(mesh)
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)

    def put(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(put(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        return jax.device_put(np.asarray(x), sharding)

    return jax.tree_util.tree_map(put, tree)


def _check_batch(batch, n: int, what: str) -> None:
    for path, leaf in jax.tree_util.tree_leaves_with_path(batch):
        shape = np.shape(leaf)
        if not shape or shape[0] % n:
            raise ValueError(
                f"{what} leaf {jax.tree_util.keystr(path) or '<root>'} has shape {shape}: its first (batch) axis must "
                f"divide evenly over the {n} devices of the data axis"
            )


def shard_batch(batch, mesh: Mesh):
    """Split every array of ``batch`` along its first axis over the data axis.

    In a multi-process run each process passes its local slice and gets back the global array.
    """
    sharding = batch_sharding(mesh)
    if jax.process_count() > 1:
        local = sharding.addressable_devices
        _check_batch(batch, len(local), "local batch")
        return jax.tree_util.tree_map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)
    _check_batch(batch, mesh.shape[_axis(mesh)], "batch")
    return jax.device_put(batch, sharding)


def jit_data_parallel(step: Callable, mesh: Mesh, donate: bool = True) -> Callable:
    """jit ``step(state, batch, val_batch=None)`` with the state replicated and the batches sharded over ``mesh``.

    Inputs not yet laid out that way are moved first (a no-op for arrays from :func:`replicate` / :func:`shard_batch`).
    """
    rep, data = replicated(mesh), batch_sharding(mesh)
    n = mesh.shape[_axis(mesh)]
    jitted = jax.jit(
        step,
        in_shardings=(rep, data, data),
        out_shardings=(rep, rep),
        donate_argnums=(0,) if donate else (),
    )

    def place(tree, sharding, what):
        if tree is None:
            return None
        if jax.process_count() == 1:
            if sharding is data:
                _check_batch(tree, n, what)
            return jax.device_put(tree, sharding)
        return tree  # multi-process: the caller builds global arrays (replicate / shard_batch)

    def run(state, batch, val_batch=None):
        return jitted(place(state, rep, "state"), place(batch, data, "batch"), place(val_batch, data, "val batch"))

    run.jitted = jitted
    return run


__all__ = ["DATA_AXIS", "batch_sharding", "data_mesh", "jit_data_parallel", "replicate", "replicated", "shard_batch"]
