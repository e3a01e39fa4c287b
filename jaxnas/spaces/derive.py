"""Derivation rules: pure functions from architecture parameters (logits) to discrete choices.

The rules work on numpy copies of the logits: deriving is done once per epoch, outside jitted code. The ``*_one_hot``
functions are the same rules in ``jax.numpy`` for code that traces (DARTS-PRIME's regularizers discretize every step).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np


def softmax(logits, axis: int = -1) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def argmax_per_edge(logits) -> list[int]:
    """The NB201 rule: index of the strongest op of every edge (ties go to the first op)."""
    return [int(i) for i in np.argmax(np.asarray(logits), axis=-1)]


def darts_top_k(
    logits, primitives: tuple[str, ...], steps: int = 4, k: int = 2, exclude: tuple[str, ...] = ("none",),
    edge_logits=None, scores: str = "softmax",
) -> list[tuple[str, int]]:
    """The DARTS rule for one cell.

    ``logits`` has one row per edge, edges grouped by node (node m+2 has m+2 incoming edges, from inputs 0..m+1).
    For each node, every incoming edge is scored by its strongest op outside ``exclude`` (softmax weight), the
    ``k`` best edges are kept, and each gets that op. Returns ``steps * k`` (op, input) pairs. With
    ``edge_logits`` (one per edge: PC-DARTS's edge normalization) an edge's score is multiplied by the softmax of
    its node's edge logits, as PC-DARTS derives. ``scores="values"`` ranks by the given values themselves (weights
    of a relaxation that is not normalised per edge, e.g. DARTS-PRIME's clipped one) instead of their softmax.
    """
    if scores not in ("softmax", "values"):
        raise ValueError(f"unknown scores {scores!r}; allowed: softmax, values")
    weights = softmax(logits) if scores == "softmax" else np.asarray(logits, np.float64)
    n_edges = sum(2 + m for m in range(steps))
    if weights.shape != (n_edges, len(primitives)):
        raise ValueError(f"DARTS cell logits must have shape ({n_edges}, {len(primitives)}), got {weights.shape}")
    allowed = np.array([p not in exclude for p in primitives])
    if not allowed.any():
        raise ValueError("every primitive is excluded; nothing to derive")
    masked = np.where(allowed, weights, -np.inf)
    genes, start = [], 0
    for m in range(steps):
        n_in = m + 2
        block = masked[start : start + n_in]
        strength = block.max(axis=1)
        if edge_logits is not None:
            strength = strength * softmax(np.asarray(edge_logits)[start : start + n_in])
        # stable sort: on ties the lower input index wins, so the result is deterministic
        chosen = sorted(np.argsort(-strength, kind="stable")[:k].tolist())
        for j in chosen:
            genes.append((primitives[int(np.argmax(block[j]))], int(j)))
        start += n_in
    return genes


def darts_top_k_one_hot(weights, steps: int = 4, k: int = 2, allowed=None):
    """:func:`darts_top_k` as edge weights, in ``jax.numpy`` (it traces, so a jitted step can use it): for one
    cell's ``(edges, ops)`` weights, 1 at the op each kept edge gets, 0 elsewhere (unkept edges are all 0).
    ``allowed``: a boolean mask over the ops (default all); edges are ranked by their strongest allowed op. Ties
    go to the lower input and the lower op index, as in :func:`darts_top_k`."""
    weights = jnp.asarray(weights)
    mask = jnp.ones(weights.shape[-1], bool) if allowed is None else jnp.asarray(allowed, bool)
    masked = jnp.where(mask, weights, -jnp.inf)
    rows, start = [], 0
    for m in range(steps):
        block = masked[start : start + m + 2]
        strength = block.max(axis=1)
        # rank r of each edge = how many edges beat it (stronger, or as strong with a lower index)
        idx = jnp.arange(m + 2)
        beats = (strength[None, :] > strength[:, None]) | ((strength[None, :] == strength[:, None])
                                                          & (idx[None, :] < idx[:, None]))
        kept = beats.sum(axis=1) < k
        one_hot = jax.nn.one_hot(jnp.argmax(block, axis=1), weights.shape[-1], dtype=weights.dtype)
        rows.append(one_hot * kept[:, None].astype(weights.dtype))
        start += m + 2
    return jnp.concatenate(rows, axis=0)


def topology_subsets(n_inputs: int, sizes: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """TopoNAS's candidate topologies of one node with ``n_inputs`` predecessors: every set of predecessors whose size
    is in ``sizes`` (sizes above ``n_inputs`` are left out), in lexicographic order within each size."""
    out = []
    for k in sorted(set(int(s) for s in sizes)):
        if 1 <= k <= n_inputs:
            out.extend(itertools.combinations(range(n_inputs), k))
    if not out:
        raise ValueError(f"no topology of sizes {list(sizes)} fits a node with {n_inputs} predecessors")
    return tuple(out)


def topology_membership(counts: tuple[int, ...], sizes: tuple[int, ...]) -> np.ndarray:
    """``(nodes, max topologies, edges)`` 0/1 array: entry ``[m, t, e]`` is 1 when topology t of node m keeps edge e
    (edges numbered as the cell's rows: node m's ``counts[m]`` edges after the earlier nodes'). Padding topologies
    (a node with fewer candidates than the largest) keep nothing."""
    subsets = [topology_subsets(n, sizes) for n in counts]
    width = max(len(s) for s in subsets)
    out = np.zeros((len(counts), width, sum(counts)), np.float32)
    start = 0
    for m, (n, node_sets) in enumerate(zip(counts, subsets)):
        for t, kept in enumerate(node_sets):
            for i in kept:
                out[m, t, start + i] = 1.0
        start += n
    return out
