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

from jaxnas import relax
from jaxnas.spaces import derive
from jaxnas.spaces.genotypes import DartsGenotype, get_cnn_genotype, published_cnn
from jaxnas.spaces.graph import CellGraph, GraphEdge, GraphNode
from jaxnas.spaces.primitives import DARTS_PRIMITIVES

CELL_TYPES = ("normal", "reduce")
DERIVATION_RULES = ("top-k", "dst", "topology")


@dataclasses.dataclass(frozen=True)
class DartsSpace:
    primitives: tuple[str, ...] = DARTS_PRIMITIVES
    steps: int = 4  # intermediate nodes per cell
    inputs_per_node: int = 2  # in a derived cell
    name: str = "darts"
    edge_normalization: bool = False  # PC-DARTS: one more logit per edge, softmax-normalised over each node's edges
    topology: bool = False  # TopoNAS: topological variables per node (``normal_topology``, ``reduce_topology``)
    topology_sizes: tuple[int, ...] = (2,)  # TopoNAS: how many predecessors a node's candidate topologies keep

    def __post_init__(self):
        if self.topology:
            sizes = tuple(self.topology_sizes)
            if not sizes or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in sizes):
                raise ValueError(f"DARTS space: topology_sizes must be positive integers, got {self.topology_sizes!r}")
            object.__setattr__(self, "topology_sizes", tuple(sorted(set(int(k) for k in sizes))))
            if self.edge_normalization:
                raise ValueError("DARTS space: TopoNAS's topology and PC-DARTS's edge normalization both weigh the "
                                 "edges of a node; choose one")

    @property
    def edge_keys(self) -> tuple[str, ...]:
        """The architecture entries of PC-DARTS's edge normalization (none without it)."""
        return tuple(f"{cell}_edges" for cell in CELL_TYPES) if self.edge_normalization else ()

    @property
    def topology_keys(self) -> tuple[str, ...]:
        """The architecture entries of TopoNAS's topological variables (none without them)."""
        return tuple(f"{cell}_topology" for cell in CELL_TYPES) if self.topology else ()

    def topologies(self) -> tuple[tuple[tuple[int, ...], ...], ...]:
        """TopoNAS: every node's candidate topologies (sets of predecessors, :func:`jaxnas.spaces.derive.topology_subsets`)."""
        return tuple(derive.topology_subsets(n, self.topology_sizes) for n in self.node_counts)

    def topology_membership(self) -> np.ndarray:
        """TopoNAS: ``(nodes, topologies, edges)``, 1 where a node's topology keeps an edge."""
        return derive.topology_membership(self.node_counts, self.topology_sizes)

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
        if self.topology:  # padding entries (a node with fewer topologies than the widest) sit at PRUNED: weight 0
            valid = self.topology_membership().sum(-1) > 0
            for c, cell in enumerate(CELL_TYPES):
                k = jax.random.fold_in(key, 2 + c)
                draw = scale * jax.random.normal(k, valid.shape)
                arch[f"{cell}_topology"] = jnp.where(jnp.asarray(valid), draw, relax.PRUNED)
        return arch

    @property
    def node_counts(self) -> tuple[int, ...]:
        """Incoming edges of every intermediate node (2, 3, 4, 5 for 4 steps): the row blocks of an arch leaf."""
        return tuple(m + 2 for m in range(self.steps))

    def dst_weights(self, arch, temperature: float = 1.0) -> dict[str, np.ndarray]:
        """EnTranNAS-DST's weights of both cells: :func:`jaxnas.relax.node_sparsemax` of the parameters at
        ``temperature``, ``none`` excluded (exactly 0 outside the kept connections)."""
        allowed = [p != "none" for p in self.primitives]
        return {cell: np.asarray(relax.node_sparsemax(jnp.asarray(arch[cell]), self.node_counts, allowed,
                                                      jnp.float32(temperature)))
                for cell in CELL_TYPES}

    def derive(self, arch, scores: str = "softmax", rule: str = "top-k", temperature: float = 1.0) -> DartsGenotype:
        """The DARTS rule (``rule="top-k"``): per node, the 2 edges with the strongest non-none op, each with that op
        (with edge normalization, PC-DARTS's: the edge's score times its softmax weight among the node's edges).
        Edges are scored by the softmax of the parameters, or with ``scores="values"`` by the parameters themselves
        (a relaxation whose weights are not normalised per edge, :attr:`jaxnas.relax.Relaxation.normalized`).

        ``rule="dst"`` (EnTranNAS-DST): every (input, op) connection whose :meth:`dst_weights` weight is non-zero,
        any number per node (the genotype's ``*_fan_in`` says how many), at the relaxation's ``temperature``.

        ``rule="topology"`` (TopoNAS, needs ``topology``): every node keeps the predecessors of its most probable
        topology (the largest topological variable), each edge with its strongest non-none op."""
        if rule not in DERIVATION_RULES:
            raise ValueError(f"unknown derivation rule {rule!r}; allowed: {', '.join(DERIVATION_RULES)}")
        concat = tuple(range(2, 2 + self.steps))
        if rule == "topology":
            if not self.topology:
                raise ValueError("derivation rule 'topology' needs a space with topology=True (TopoNAS)")
            allowed = np.array([p != "none" for p in self.primitives])
            cells = {}
            for cell in CELL_TYPES:
                weights = derive.softmax(arch[cell]) if scores == "softmax" else np.asarray(arch[cell], np.float64)
                logits = np.asarray(arch[f"{cell}_topology"])
                genes, fan_in, start = [], [], 0
                for m, (n, subsets) in enumerate(zip(self.node_counts, self.topologies())):
                    kept = subsets[int(np.argmax(logits[m, : len(subsets)]))]
                    for i in kept:
                        row = np.where(allowed, weights[start + i], -np.inf)
                        genes.append((self.primitives[int(np.argmax(row))], int(i)))
                    fan_in.append(len(kept))
                    start += n
                cells[cell] = (tuple(genes), tuple(fan_in))
            return DartsGenotype(cells["normal"][0], concat, cells["reduce"][0], concat, cells["normal"][1],
                                 cells["reduce"][1])
        if rule == "dst":
            weights = self.dst_weights(arch, temperature)
            cells = {}
            for cell in CELL_TYPES:
                genes, fan_in, start = [], [], 0
                for n in self.node_counts:
                    pairs = [(self.primitives[o], i) for i in range(n) for o in range(len(self.primitives))
                             if weights[cell][start + i, o] > 0]
                    genes += pairs
                    fan_in.append(len(pairs))
                    start += n
                cells[cell] = (tuple(genes), tuple(fan_in))
            return DartsGenotype(cells["normal"][0], concat, cells["reduce"][0], concat, cells["normal"][1],
                                 cells["reduce"][1])

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
        """A genotype of this space: the DARTS layout (``inputs_per_node`` pairs per node) or, with ``*_fan_in``, any
        number (at least one) of distinct (op, input) pairs per node."""
        if not isinstance(genotype, DartsGenotype):
            raise ValueError(f"expected a DARTS genotype, got {type(genotype).__name__} (from another space?)")
        for cell in CELL_TYPES:
            genes = getattr(genotype, cell)
            explicit = getattr(genotype, f"{cell}_fan_in")
            if explicit is None:
                n = self.steps * self.inputs_per_node
                if len(genes) != n:
                    raise ValueError(f"DARTS genotype: {cell} must have {n} (op, input) pairs, got {len(genes)}")
            else:
                if len(explicit) != self.steps or any(k < 1 for k in explicit):
                    raise ValueError(f"DARTS genotype: {cell}_fan_in must give {self.steps} counts of at least 1 "
                                     f"(pairs per node), got {list(explicit)}")
                if sum(explicit) != len(genes):
                    raise ValueError(f"DARTS genotype: {cell}_fan_in {list(explicit)} adds up to {sum(explicit)} "
                                     f"pairs, but {cell} has {len(genes)}")
            g = 0
            for m, pairs in enumerate(genotype.node_genes(cell)):
                node = 2 + m
                if len(set(pairs)) != len(pairs):
                    raise ValueError(f"DARTS genotype: {cell} node {m} repeats an (op, input) pair: {list(pairs)}")
                for op, inp in pairs:
                    if op not in self.choices:
                        raise ValueError(
                            f"DARTS genotype: unknown op {op!r} in {cell}; allowed: {', '.join(self.choices)}"
                        )
                    if not (isinstance(inp, (int, np.integer)) and 0 <= inp < node):
                        raise ValueError(f"DARTS genotype: {cell} entry {g} feeds node {node}, so its input must be "
                                         f"in 0..{node - 1}, got {inp!r}")
                    g += 1
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
        if genotype.normal_fan_in is not None or genotype.reduce_fan_in is not None:
            raise ValueError("DARTS mutate: the genotype does not have the DARTS layout (2 pairs per node); mutation "
                             "keeps the fan-in fixed and works on DARTS-layout genotypes only")
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
            for m, pairs in enumerate(genotype.node_genes(cell)):
                for op, inp in pairs:
                    code[c, edge_index[(m + 2, inp)], self.primitives.index(op)] += 1.0
        return code.reshape(-1)

    def one_hot_weights(self, genotype: DartsGenotype) -> dict[str, jax.Array]:
        """Edge weights selecting the genotype's ops; edges the genotype does not use select ``none``. An edge that
        keeps two ops (possible with ``*_fan_in``) gets a row with two ones."""
        code = self.encode(genotype).reshape(2, self.num_edges, len(self.primitives))
        none = self.primitives.index("none")
        code[:, :, none] = (code.sum(-1) == 0).astype(np.float32)
        return {cell: jnp.asarray(np.minimum(code[c], 1.0)) for c, cell in enumerate(CELL_TYPES)}

    # -- pictures ----------------------------------------------------------------------------------------------
    def _state_label(self, i: int) -> str:
        return ("c_{k-2}", "c_{k-1}")[i] if i < 2 else str(i - 2)

    def cell_graphs(self, genotype: DartsGenotype) -> tuple[CellGraph, ...]:
        """The normal and the reduction cell as in the DARTS paper's figures: inputs c_{k-2} and c_{k-1}, the
        intermediate nodes 0..steps-1, one edge per (op, input) gene labelled with the op (any number per node),
        and c_{k} concatenating the ``concat`` nodes."""
        genotype = self.validate(genotype)
        graphs = []
        for cell, concat in (("normal", genotype.normal_concat), ("reduce", genotype.reduce_concat)):
            per_node = genotype.node_genes(cell)
            nodes = [GraphNode(f"s{i}", self._state_label(i), "input") for i in range(2)]
            nodes += [GraphNode(f"s{m + 2}", str(m), "node") for m in range(len(per_node))]
            nodes.append(GraphNode("out", "c_{k}", "output"))
            edges = [GraphEdge(f"s{i}", f"s{m + 2}", op) for m, pairs in enumerate(per_node) for op, i in pairs]
            edges += [GraphEdge(f"s{c}", "out") for c in concat]
            graphs.append(CellGraph(f"{cell} cell", nodes, edges))
        return tuple(graphs)

    def arch_axes(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """Row (edge) and column (op) names of every architecture leaf, for heatmaps."""
        rows = tuple(f"{self._state_label(i)}\u2192{self._state_label(j)}" for j, i in self.edges)
        axes = {cell: (rows, self.primitives) for cell in CELL_TYPES}
        if self.topology:
            subsets = self.topologies()
            nodes = tuple(f"node {m}" for m in range(self.steps))
            cols = tuple(f"t{t}" for t in range(max(len(s) for s in subsets)))
            axes.update({f"{cell}_topology": (nodes, cols) for cell in CELL_TYPES})
        return axes

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

        def fan_in(cell):
            value = data.get(f"{cell}_fan_in")
            if value is None:
                return None
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) for v in value):
                raise ValueError(f"DARTS genotype: {cell}_fan_in must be a list of integers, got {value!r}")
            return tuple(value)

        return self.validate(
            DartsGenotype(
                genes(data["normal"], "normal"),
                tuple(data["normal_concat"]),
                genes(data["reduce"], "reduce"),
                tuple(data["reduce_concat"]),
                fan_in("normal"),
                fan_in("reduce"),
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
