"""The DARTS CNN space: a normal and a reduction cell, 4 intermediate nodes, 2 inputs per node once derived.

In the supernet every intermediate node m+2 (m = 0..3) sums a mixed op over each of its m+2 predecessors (the two
cell inputs and the earlier intermediate nodes): 14 edges per cell, 8 candidate ops per edge.
Architecture params: {'normal': (14, 8), 'reduce': (14, 8)}.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.spaces import derive
from jaxnas.spaces.genotypes import DartsGenotype, get_cnn_genotype, published_cnn
from jaxnas.spaces.graph import CellGraph, GraphEdge, GraphNode
from jaxnas.spaces.primitives import DARTS_PRIMITIVES

CELL_TYPES = ("normal", "reduce")


@dataclasses.dataclass(frozen=True)
class DartsSpace:
    primitives: tuple[str, ...] = DARTS_PRIMITIVES
    steps: int = 4  # intermediate nodes per cell
    inputs_per_node: int = 2  # in a derived cell
    name: str = "darts"
    edge_normalization: bool = False  # PC-DARTS: one more logit per edge, softmax-normalised over each node's edges

    @property
    def edge_keys(self) -> tuple[str, ...]:
        """The architecture entries of PC-DARTS's edge normalization (none without it)."""
        return tuple(f"{cell}_edges" for cell in CELL_TYPES) if self.edge_normalization else ()

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """(to, from) for every edge of a cell; nodes 0 and 1 are the cell inputs."""
        return tuple((m + 2, i) for m in range(self.steps) for i in range(m + 2))

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @property
    def choices(self) -> tuple[str, ...]:
        """Ops a derived cell may use (every primitive except ``none``)."""
        return tuple(p for p in self.primitives if p != "none")

    # -- architecture parameters -------------------------------------------------------------------------------
    def init_arch(self, key: jax.Array, scale: float = 1e-3) -> dict[str, jax.Array]:
        kn, kr = jax.random.split(key)
        shape = (self.num_edges, len(self.primitives))
        arch = {"normal": scale * jax.random.normal(kn, shape), "reduce": scale * jax.random.normal(kr, shape)}
        if self.edge_normalization:  # drawn from their own keys: the op logits are those of the plain space
            ke, kf = jax.random.split(jax.random.fold_in(key, 1))
            arch["normal_edges"] = scale * jax.random.normal(ke, (self.num_edges,))
            arch["reduce_edges"] = scale * jax.random.normal(kf, (self.num_edges,))
        return arch

    def derive(self, arch, scores: str = "softmax") -> DartsGenotype:
        """The DARTS rule: per node, the 2 edges with the strongest non-none op, each with that op (with edge
        normalization, PC-DARTS's: the edge's score times its softmax weight among the node's edges). Edges are
        scored by the softmax of the parameters, or with ``scores="values"`` by the parameters themselves (a
        relaxation whose weights are not normalised per edge, :attr:`jaxnas.relax.Relaxation.normalized`)."""
        concat = tuple(range(2, 2 + self.steps))

        def cell(name):
            edges = arch.get(f"{name}_edges") if self.edge_normalization else None
            return tuple(derive.darts_top_k(arch[name], self.primitives, self.steps, self.inputs_per_node,
                                            edge_logits=edges, scores=scores))

        return DartsGenotype(cell("normal"), concat, cell("reduce"), concat)

    def discrete_weights(self, weights) -> dict[str, jax.Array]:
        """The derived cells as edge weights, from edge weights, in ``jax.numpy`` (traces): 1 at the op of every
        edge the DARTS rule keeps (ranked by these weights), 0 elsewhere; only the op entries (``normal``,
        ``reduce``). DARTS-PRIME's proximity and ADMM terms pull the weights towards it."""
        allowed = [p != "none" for p in self.primitives]
        return {cell: derive.darts_top_k_one_hot(weights[cell], self.steps, self.inputs_per_node, allowed)
                for cell in CELL_TYPES}

    # -- discrete genotypes ------------------------------------------------------------------------------------
    def validate(self, genotype) -> DartsGenotype:
        if not isinstance(genotype, DartsGenotype):
            raise ValueError(f"expected a DARTS genotype, got {type(genotype).__name__} (from another space?)")
        n = self.steps * self.inputs_per_node
        for cell in CELL_TYPES:
            genes = getattr(genotype, cell)
            if len(genes) != n:
                raise ValueError(f"DARTS genotype: {cell} must have {n} (op, input) pairs, got {len(genes)}")
            for g, (op, inp) in enumerate(genes):
                node = 2 + g // self.inputs_per_node
                if op not in self.choices:
                    raise ValueError(
                        f"DARTS genotype: unknown op {op!r} in {cell}; allowed: {', '.join(self.choices)}"
                    )
                if not (isinstance(inp, (int, np.integer)) and 0 <= inp < node):
                    raise ValueError(f"DARTS genotype: {cell} entry {g} feeds node {node}, so its input must be in "
                                     f"0..{node - 1}, got {inp!r}")
            concat = getattr(genotype, cell + "_concat")
            if not concat or any(not (0 <= c < 2 + self.steps) for c in concat):
                raise ValueError(f"DARTS genotype: {cell}_concat must list nodes in 0..{self.steps + 1}, got {concat}")
        return genotype

    def _sample_cell(self, key):
        genes = []
        for m in range(self.steps):
            key, k_in, k_op = jax.random.split(key, 3)
            inputs = np.asarray(jax.random.choice(k_in, m + 2, (self.inputs_per_node,), replace=False))
            ops = np.asarray(jax.random.randint(k_op, (self.inputs_per_node,), 0, len(self.choices)))
            genes += [(self.choices[int(o)], int(i)) for o, i in zip(ops, sorted(inputs.tolist()))]
        return tuple(genes)

    def sample(self, key: jax.Array) -> DartsGenotype:
        kn, kr = jax.random.split(key)
        concat = tuple(range(2, 2 + self.steps))
        return DartsGenotype(self._sample_cell(kn), concat, self._sample_cell(kr), concat)

    def mutate(self, key: jax.Array, genotype: DartsGenotype) -> DartsGenotype:
        """Change one gene of one cell: either its op (to another op) or its input (to another unused predecessor)."""
        self.validate(genotype)
        k_cell, k_gene, k_kind, k_val = jax.random.split(key, 4)
        cell = CELL_TYPES[int(jax.random.randint(k_cell, (), 0, 2))]
        genes = list(getattr(genotype, cell))
        g = int(jax.random.randint(k_gene, (), 0, len(genes)))
        op, inp = genes[g]
        node = 2 + g // self.inputs_per_node
        first = (node - 2) * self.inputs_per_node
        used = {genes[first + t][1] for t in range(self.inputs_per_node)}
        free_inputs = [i for i in range(node) if i not in used]
        if free_inputs and bool(jax.random.bernoulli(k_kind)):
            inp = free_inputs[int(jax.random.randint(k_val, (), 0, len(free_inputs)))]
        else:
            others = [c for c in self.choices if c != op]
            op = others[int(jax.random.randint(k_val, (), 0, len(others)))]
        genes[g] = (op, inp)
        return dataclasses.replace(genotype, **{cell: tuple(genes)})

    def encode(self, genotype: DartsGenotype) -> np.ndarray:
        """Edge-op adjacency of both cells, flattened: 2 x 14 x 8 = 224 floats (1 where the genotype uses op on edge)."""
        self.validate(genotype)
        code = np.zeros((2, self.num_edges, len(self.primitives)), np.float32)
        edge_index = {e: k for k, e in enumerate(self.edges)}
        for c, cell in enumerate(CELL_TYPES):
            for g, (op, inp) in enumerate(getattr(genotype, cell)):
                node = 2 + g // self.inputs_per_node
                code[c, edge_index[(node, inp)], self.primitives.index(op)] += 1.0
        return code.reshape(-1)

    def one_hot_weights(self, genotype: DartsGenotype) -> dict[str, jax.Array]:
        """Edge weights selecting the genotype's ops; edges the genotype does not use select ``none``."""
        code = self.encode(genotype).reshape(2, self.num_edges, len(self.primitives))
        none = self.primitives.index("none")
        code[:, :, none] = (code.sum(-1) == 0).astype(np.float32)
        return {cell: jnp.asarray(np.minimum(code[c], 1.0)) for c, cell in enumerate(CELL_TYPES)}

    # -- pictures ----------------------------------------------------------------------------------------------
    def _state_label(self, i: int) -> str:
        return ("c_{k-2}", "c_{k-1}")[i] if i < 2 else str(i - 2)

    def cell_graphs(self, genotype: DartsGenotype) -> tuple[CellGraph, ...]:
        """The normal and the reduction cell as in the DARTS paper's figures: inputs c_{k-2} and c_{k-1}, the
        intermediate nodes 0..steps-1, one edge per (op, input) gene labelled with the op, and c_{k} concatenating
        the ``concat`` nodes."""
        genotype = self.validate(genotype)
        graphs = []
        for cell, genes, concat in (("normal", genotype.normal, genotype.normal_concat),
                                    ("reduce", genotype.reduce, genotype.reduce_concat)):
            n_nodes = len(genes) // self.inputs_per_node
            nodes = [GraphNode(f"s{i}", self._state_label(i), "input") for i in range(2)]
            nodes += [GraphNode(f"s{m + 2}", str(m), "node") for m in range(n_nodes)]
            nodes.append(GraphNode("out", "c_{k}", "output"))
            edges = [GraphEdge(f"s{i}", f"s{2 + j // self.inputs_per_node}", op) for j, (op, i) in enumerate(genes)]
            edges += [GraphEdge(f"s{c}", "out") for c in concat]
            graphs.append(CellGraph(f"{cell} cell", nodes, edges))
        return tuple(graphs)

    def arch_axes(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """Row (edge) and column (op) names of every architecture leaf, for heatmaps."""
        rows = tuple(f"{self._state_label(i)}\u2192{self._state_label(j)}" for j, i in self.edges)
        return {cell: (rows, self.primitives) for cell in CELL_TYPES}

    # -- strings -----------------------------------------------------------------------------------------------
    def to_json(self, genotype: DartsGenotype) -> dict:
        return self.validate(genotype).to_json()

    def from_json(self, data: dict) -> DartsGenotype:
        if data.get("space", "darts") != "darts":
            raise ValueError(f"genotype is from space {data.get('space')!r}, not darts")
        missing = [k for k in ("normal", "normal_concat", "reduce", "reduce_concat") if k not in data]
        if missing:
            raise ValueError(f"DARTS genotype JSON lacks {', '.join(missing)}")

        def genes(entries, cell):
            out = []
            for e in entries:
                if isinstance(e, dict) and "op" in e and "input" in e:
                    out.append((e["op"], e["input"]))
                elif isinstance(e, (list, tuple)) and len(e) == 2:
                    out.append((e[0], e[1]))
                else:
                    raise ValueError(f"DARTS genotype: {cell} entries must be [op, input] pairs, got {e!r}")
            return tuple(out)

        return self.validate(
            DartsGenotype(
                genes(data["normal"], "normal"),
                tuple(data["normal_concat"]),
                genes(data["reduce"], "reduce"),
                tuple(data["reduce_concat"]),
            )
        )

    def format(self, genotype: DartsGenotype) -> str:
        return json.dumps(self.to_json(genotype))

    def parse(self, text: str) -> DartsGenotype:
        """A published name (DARTS_V1, DARTS_V2, PC_DARTS_cifar), a JSON object, or a path to a JSON file."""
        if not isinstance(text, str):
            raise ValueError(f"a DARTS genotype string must be a str, got {type(text).__name__}")
        text = text.strip()
        published = published_cnn()
        if text in published or text in ("DARTS", "PC_DARTS"):
            return get_cnn_genotype(text)
        if not text.startswith("{"):
            if os.path.isfile(text):
                with open(text) as f:
                    return self.parse(f.read())
            raise ValueError(
                f"malformed DARTS genotype {text[:80]!r}: expected a JSON object, a JSON file or one of "
                f"{', '.join(sorted(published))}"
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"malformed DARTS genotype JSON: {e}") from None
        return self.from_json(data)
