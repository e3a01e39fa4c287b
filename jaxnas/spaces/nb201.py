"""The NAS-Bench-201 cell space: 4 nodes, 6 edges, 5 ops per edge, 5^6 = 15,625 cells."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.spaces import derive
from jaxnas.spaces.genotypes import NB201Genotype
from jaxnas.spaces.graph import CellGraph, GraphEdge, GraphNode
from jaxnas.spaces.primitives import NB201_PRIMITIVES

_NODE = re.compile(r"^\|(?:[^|]+\|)+$")


@dataclasses.dataclass(frozen=True)
class NB201Space:
    """NAS-Bench-201: node j (1..3) sums one op of every earlier node i<j. Architecture params: {'cell': (6, 5)}."""

    primitives: tuple[str, ...] = NB201_PRIMITIVES
    num_nodes: int = 4
    name: str = "nb201"
    edge_normalization: bool = False  # PC-DARTS: one more logit per edge, softmax-normalised over each node's edges

    @property
    def edge_keys(self) -> tuple[str, ...]:
        """The architecture entries of PC-DARTS's edge normalization (none without it)."""
        return ("cell_edges",) if self.edge_normalization else ()

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """(to, from) for every edge, in canonical-string order."""
        return tuple((j, i) for j in range(1, self.num_nodes) for i in range(j))

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @property
    def size(self) -> int:
        return len(self.primitives) ** self.num_edges

    # -- architecture parameters -------------------------------------------------------------------------------
    def init_arch(self, key: jax.Array, scale: float = 1e-3) -> dict[str, jax.Array]:
        arch = {"cell": scale * jax.random.normal(key, (self.num_edges, len(self.primitives)))}
        if self.edge_normalization:  # NB201 keeps every edge: the edge weights scale, the rule stays argmax per edge
            arch["cell_edges"] = scale * jax.random.normal(jax.random.fold_in(key, 1), (self.num_edges,))
        return arch

    def derive(self, arch, scores: str = "softmax") -> NB201Genotype:
        """The NB201 rule: the strongest op on every edge (``none`` included). ``scores`` is accepted for the
        spaces' common signature: the strongest op is the same by parameter or by softmax."""
        if scores not in ("softmax", "values"):
            raise ValueError(f"unknown scores {scores!r}; allowed: softmax, values")
        idx = derive.argmax_per_edge(arch["cell"])
        return NB201Genotype(tuple(self.primitives[i] for i in idx))

    def discrete_weights(self, weights) -> dict[str, jax.Array]:
        """The derived cell as edge weights, in ``jax.numpy`` (traces): the one-hot of every edge's strongest op."""
        cell = jnp.asarray(weights["cell"])
        return {"cell": jax.nn.one_hot(jnp.argmax(cell, axis=-1), cell.shape[-1], dtype=cell.dtype)}

    # -- discrete genotypes ------------------------------------------------------------------------------------
    def validate(self, genotype) -> NB201Genotype:
        if not isinstance(genotype, NB201Genotype):
            raise ValueError(f"expected an NB201 genotype, got {type(genotype).__name__} (from another space?)")
        if len(genotype.ops) != self.num_edges:
            raise ValueError(f"an NB201 genotype has {self.num_edges} ops, got {len(genotype.ops)}")
        for op in genotype.ops:
            if op not in self.primitives:
                raise ValueError(f"unknown NB201 op {op!r}; allowed: {', '.join(self.primitives)}")
        return genotype

    def to_indices(self, genotype: NB201Genotype) -> np.ndarray:
        self.validate(genotype)
        return np.array([self.primitives.index(op) for op in genotype.ops], np.int32)

    def from_indices(self, indices) -> NB201Genotype:
        indices = np.asarray(indices).reshape(-1)
        if indices.shape[0] != self.num_edges or indices.min() < 0 or indices.max() >= len(self.primitives):
            raise ValueError(f"op indices must be {self.num_edges} values in [0, {len(self.primitives)})")
        return NB201Genotype(tuple(self.primitives[int(i)] for i in indices))

    def sample(self, key: jax.Array) -> NB201Genotype:
        idx = jax.random.randint(key, (self.num_edges,), 0, len(self.primitives))
        return self.from_indices(np.asarray(idx))

    def mutate(self, key: jax.Array, genotype: NB201Genotype) -> NB201Genotype:
        """Replace the op of one random edge by a different op (the NB201 paper's REA mutation)."""
        idx = self.to_indices(genotype).copy()
        k_edge, k_op = jax.random.split(key)
        e = int(jax.random.randint(k_edge, (), 0, self.num_edges))
        shift = int(jax.random.randint(k_op, (), 1, len(self.primitives)))
        idx[e] = (idx[e] + shift) % len(self.primitives)
        return self.from_indices(idx)

    def encode(self, genotype: NB201Genotype) -> np.ndarray:
        """One-hot op per edge, flattened: a fixed-size float vector of length 6 * 5 = 30."""
        return np.eye(len(self.primitives), dtype=np.float32)[self.to_indices(genotype)].reshape(-1)

    def enumerate(self):
        """All 15,625 genotypes (in lexicographic order of op indices, not the NB201 benchmark index)."""
        for idx in itertools.product(range(len(self.primitives)), repeat=self.num_edges):
            yield self.from_indices(np.array(idx))

    # -- strings -----------------------------------------------------------------------------------------------
    def format(self, genotype: NB201Genotype) -> str:
        self.validate(genotype)
        parts, e = [], 0
        for j in range(1, self.num_nodes):
            node = []
            for i in range(j):
                node.append(f"{genotype.ops[e]}~{i}")
                e += 1
            parts.append("|" + "|".join(node) + "|")
        return "+".join(parts)

    def parse(self, text: str) -> NB201Genotype:
        """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``; errors say which part is wrong."""
        if not isinstance(text, str):
            raise ValueError(f"an NB201 arch string must be a str, got {type(text).__name__}")
        if text.strip().startswith("{"):
            try:
                return self.from_json(json.loads(text))
            except json.JSONDecodeError as e:
                raise ValueError(f"malformed NB201 genotype JSON: {e}") from None
        nodes = text.strip().split("+")
        if len(nodes) != self.num_nodes - 1:
            raise ValueError(
                f"malformed NB201 string {text!r}: expected {self.num_nodes - 1} '+'-separated nodes, got {len(nodes)}"
            )
        ops = []
        for j, node in enumerate(nodes, start=1):
            if not _NODE.match(node):
                raise ValueError(f"malformed NB201 string {text!r}: node {j} {node!r} is not of the form |op~i|...|")
            entries = node.strip("|").split("|")
            if len(entries) != j:
                raise ValueError(f"malformed NB201 string {text!r}: node {j} must list {j} inputs, got {len(entries)}")
            for i, entry in enumerate(entries):
                op, sep, src = entry.partition("~")
                if not sep or src != str(i):
                    raise ValueError(f"malformed NB201 string {text!r}: entry {entry!r} of node {j} must be 'op~{i}'")
                if op not in self.primitives:
                    raise ValueError(f"unknown NB201 op {op!r} in {text!r}; allowed: {', '.join(self.primitives)}")
                ops.append(op)
        return NB201Genotype(tuple(ops))

    def from_json(self, data: dict) -> NB201Genotype:
        if data.get("space", "nb201") != "nb201":
            raise ValueError(f"genotype is from space {data.get('space')!r}, not nb201")
        if "arch" in data:
            return self.parse(data["arch"])
        return self.validate(NB201Genotype(tuple(data["ops"])))

    def to_json(self, genotype: NB201Genotype) -> dict:
        return {**self.validate(genotype).to_json(), "arch": self.format(genotype)}

    def cell_graphs(self, genotype: NB201Genotype) -> tuple[CellGraph, ...]:
        """The cell: node 0 its input, node 3 its output, one edge per (to, from) pair labelled with its op (``none``
        edges included: the plot draws them dashed)."""
        genotype = self.validate(genotype)
        last = self.num_nodes - 1
        nodes = [GraphNode(f"n{j}", str(j), "input" if j == 0 else "output" if j == last else "node")
                 for j in range(self.num_nodes)]
        edges = [GraphEdge(f"n{i}", f"n{j}", op) for (j, i), op in zip(self.edges, genotype.ops)]
        return (CellGraph("cell", nodes, edges),)

    def arch_axes(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """Row (edge) and column (op) names of every architecture leaf, for heatmaps."""
        return {"cell": (tuple(f"{i}\u2192{j}" for j, i in self.edges), self.primitives)}

    def one_hot_weights(self, genotype: NB201Genotype) -> dict[str, jax.Array]:
        """Edge weights that select exactly the genotype's ops (for a supernet call)."""
        return {"cell": jnp.eye(len(self.primitives))[self.to_indices(genotype)]}
