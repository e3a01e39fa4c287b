"""The DARTS recurrent cell space: 8 nodes after node 0, each a highway step from one earlier node once derived.

In the search cell (:class:`jaxnas.nn.recurrent.DartsRnnSearchCell`) node i (1..steps) mixes every op on an edge from
every earlier node j < i (node 0 mixes x_t and h_{t-1}): 1 + 2 + ... + 8 = 36 edges, 5 candidate ops per edge
(``none``, ``tanh``, ``relu``, ``sigmoid``, ``identity``). Architecture params: ``{'rnn': (36, 5)}``, edges in the
order of :attr:`DartsRnnSpace.edges`. A derived cell (:class:`~jaxnas.spaces.genotypes.RnnGenotype`) keeps one
(activation, predecessor) pair per node and averages nodes 1..steps.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.spaces import derive
from jaxnas.spaces.genotypes import RnnGenotype, get_rnn_genotype, published_rnn
from jaxnas.spaces.graph import CellGraph, GraphEdge, GraphNode
from jaxnas.spaces.primitives import RNN_ACTIVATION_NAMES, RNN_PRIMITIVES, rnn_edges


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@dataclasses.dataclass(frozen=True)
class DartsRnnSpace:
    steps: int = 8
    primitives: tuple[str, ...] = RNN_PRIMITIVES
    name: str = "darts-rnn"

    def __post_init__(self):
        object.__setattr__(self, "primitives", tuple(self.primitives))
        if not (_is_int(self.steps) and self.steps >= 1):
            raise ValueError(f"DARTS RNN space: steps must be a positive integer, got {self.steps!r}")
        unknown = [p for p in self.primitives if p != "none" and p not in RNN_ACTIVATION_NAMES]
        if unknown:
            raise ValueError(f"DARTS RNN space: unknown op(s) {unknown}; allowed: none, {', '.join(RNN_ACTIVATION_NAMES)}")
        if not self.choices:
            raise ValueError("DARTS RNN space: the primitives need at least one op besides 'none'")

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """``(src, dst)`` for every edge, node by node: (0, 1), (0, 2), (1, 2), (0, 3), ... (note: the CNN spaces
        list their edges as ``(to, from)``)."""
        return rnn_edges(self.steps)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @property
    def choices(self) -> tuple[str, ...]:
        """Activations a derived cell may use (every primitive except ``none``)."""
        return tuple(p for p in self.primitives if p != "none")

    @property
    def concat(self) -> tuple[int, ...]:
        """The nodes a derived cell averages: 1..steps, as the search cell does."""
        return tuple(range(1, self.steps + 1))

    def edge_index(self, src: int, dst: int) -> int:
        """Row of edge ``src -> dst`` in the architecture parameters."""
        return dst * (dst - 1) // 2 + src

    # -- architecture parameters -------------------------------------------------------------------------------
    def init_arch(self, key: jax.Array, scale: float = 1e-3) -> dict[str, jax.Array]:
        return {"rnn": scale * jax.random.normal(key, (self.num_edges, len(self.primitives)))}

    def derive(self, arch) -> RnnGenotype:
        """The DARTS recurrent rule: every node keeps its single strongest (predecessor, op) pair, ``none`` excluded.

        An edge's strength is its largest softmax weight over the ops other than ``none``; ties go to the lower
        predecessor and the earlier op.
        """
        if not isinstance(arch, dict) or "rnn" not in arch:
            raise ValueError("DARTS RNN space: architecture parameters must be a dict {'rnn': (edges, ops)}")
        weights = derive.softmax(arch["rnn"])
        shape = (self.num_edges, len(self.primitives))
        if weights.shape != shape:
            raise ValueError(f"DARTS RNN space: arch['rnn'] must have shape {shape}, got {weights.shape}")
        allowed = np.array([p != "none" for p in self.primitives])
        masked = np.where(allowed, weights, -np.inf)
        genes = []
        for i in range(1, self.steps + 1):
            block = masked[self.edge_index(0, i) : self.edge_index(0, i) + i]
            pred = int(np.argmax(block.max(axis=1)))  # first maximum: the lower predecessor wins a tie
            genes.append((self.primitives[int(np.argmax(block[pred]))], pred))
        return RnnGenotype(tuple(genes), self.concat)

    # -- discrete genotypes ------------------------------------------------------------------------------------
    def validate(self, genotype) -> RnnGenotype:
        if not isinstance(genotype, RnnGenotype):
            raise ValueError(f"expected a DARTS RNN genotype, got {type(genotype).__name__} (from another space?)")
        genes = genotype.recurrent
        if len(genes) != self.steps:
            raise ValueError(f"DARTS RNN genotype: recurrent must have {self.steps} (activation, predecessor) pairs, "
                             f"got {len(genes)}")
        for i, gene in enumerate(genes):
            if not (isinstance(gene, (tuple, list)) and len(gene) == 2):
                raise ValueError(f"DARTS RNN genotype: entry {i} must be an (activation, predecessor) pair, "
                                 f"got {gene!r}")
            act, pred = gene
            if act not in self.choices:
                raise ValueError(f"DARTS RNN genotype: unknown op {act!r} in entry {i}; allowed: "
                                 f"{', '.join(self.choices)}")
            if not (_is_int(pred) and 0 <= pred <= i):
                raise ValueError(f"DARTS RNN genotype: entry {i} defines node {i + 1}, so its predecessor must be in "
                                 f"0..{i}, got {pred!r}")
        concat = genotype.concat
        if (not concat or any(not (_is_int(c) and 0 <= c <= self.steps) for c in concat)
                or len(set(concat)) != len(concat)):
            raise ValueError(f"DARTS RNN genotype: concat must list distinct nodes in 0..{self.steps}, got {concat}")
        return genotype

    def sample(self, key: jax.Array) -> RnnGenotype:
        """Node i+1 gets a uniform predecessor in 0..i and a uniform activation (``none`` excluded)."""
        k_pred, k_act = jax.random.split(key)
        preds = np.asarray(jax.random.randint(k_pred, (self.steps,), 0, jnp.arange(1, self.steps + 1)))
        acts = np.asarray(jax.random.randint(k_act, (self.steps,), 0, len(self.choices)))
        genes = tuple((self.choices[int(a)], int(p)) for a, p in zip(acts, preds))
        return RnnGenotype(genes, self.concat)

    def mutate(self, key: jax.Array, genotype: RnnGenotype) -> RnnGenotype:
        """Change one node: either its activation (to another one) or its predecessor (to another earlier node)."""
        self.validate(genotype)
        k_node, k_kind, k_val = jax.random.split(key, 3)
        i = int(jax.random.randint(k_node, (), 0, self.steps))
        act, pred = genotype.recurrent[i]
        other_preds = [j for j in range(i + 1) if j != pred]
        other_acts = [a for a in self.choices if a != act]
        if other_preds and (not other_acts or bool(jax.random.bernoulli(k_kind))):
            pred = other_preds[int(jax.random.randint(k_val, (), 0, len(other_preds)))]
        elif other_acts:
            act = other_acts[int(jax.random.randint(k_val, (), 0, len(other_acts)))]
        genes = list(genotype.recurrent)
        genes[i] = (act, pred)
        return dataclasses.replace(genotype, recurrent=tuple(genes))

    def encode(self, genotype: RnnGenotype) -> np.ndarray:
        """Edge-op adjacency, flattened: 36 x 5 = 180 floats, 1 where the genotype uses op on edge."""
        self.validate(genotype)
        code = np.zeros((self.num_edges, len(self.primitives)), np.float32)
        for i, (act, pred) in enumerate(genotype.recurrent, start=1):
            code[self.edge_index(pred, i), self.primitives.index(act)] = 1.0
        return code.reshape(-1)

    def one_hot_weights(self, genotype: RnnGenotype) -> dict[str, jax.Array]:
        """Edge weights selecting the genotype's activations; edges the genotype does not use select ``none``.

        The search cell called with them computes the derived cell (its output averages nodes 1..steps, so this
        holds for genotypes whose concat is 1..steps, as every derived and published one is).
        """
        code = self.encode(genotype).reshape(self.num_edges, len(self.primitives))
        if "none" in self.primitives:
            code[:, self.primitives.index("none")] = (code.sum(-1) == 0).astype(np.float32)
        return {"rnn": jnp.asarray(code)}

    # -- pictures ----------------------------------------------------------------------------------------------
    def cell_graphs(self, genotype: RnnGenotype) -> tuple[CellGraph, ...]:
        """The recurrent cell as in the DARTS paper's figure: x_t and h_{t-1} feed node 0, every other node reads one
        predecessor through its activation, h_t averages the ``concat`` nodes."""
        genotype = self.validate(genotype)
        n = len(genotype.recurrent)
        nodes = [GraphNode("x", "x_{t}", "input"), GraphNode("h", "h_{t-1}", "input")]
        nodes += [GraphNode(f"n{i}", str(i), "node") for i in range(n + 1)]
        nodes.append(GraphNode("out", "h_{t}", "output"))
        edges = [GraphEdge("x", "n0"), GraphEdge("h", "n0")]
        edges += [GraphEdge(f"n{pred}", f"n{i + 1}", act) for i, (act, pred) in enumerate(genotype.recurrent)]
        edges += [GraphEdge(f"n{c}", "out") for c in genotype.concat]
        return (CellGraph("recurrent cell", nodes, edges),)

    def arch_axes(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """Row (edge) and column (op) names of every architecture leaf, for heatmaps."""
        return {"rnn": (tuple(f"{src}\u2192{dst}" for src, dst in self.edges), self.primitives)}

    # -- strings -----------------------------------------------------------------------------------------------
    def to_json(self, genotype: RnnGenotype) -> dict:
        return self.validate(genotype).to_json()

    def from_json(self, data: dict) -> RnnGenotype:
        """``{"space": "darts-rnn", "recurrent": [[act, pred], ...], "concat": [...]}``; entries may also be
        ``{"act": ..., "pred": ...}`` objects, as in the reference file."""
        if not isinstance(data, dict):
            raise ValueError(f"a DARTS RNN genotype JSON must be an object, got {type(data).__name__}")
        if data.get("space", self.name) != self.name:
            raise ValueError(f"genotype is from space {data.get('space')!r}, not {self.name}")
        missing = [k for k in ("recurrent", "concat") if k not in data]
        if missing:
            raise ValueError(f"DARTS RNN genotype JSON lacks {', '.join(missing)}")
        if not isinstance(data["recurrent"], list) or not isinstance(data["concat"], list):
            raise ValueError("DARTS RNN genotype JSON: recurrent and concat must be lists")
        genes = []
        for e in data["recurrent"]:
            if isinstance(e, dict) and "act" in e and "pred" in e:
                genes.append((e["act"], e["pred"]))
            elif isinstance(e, (list, tuple)) and len(e) == 2:
                genes.append((e[0], e[1]))
            else:
                raise ValueError(f"DARTS RNN genotype: recurrent entries must be [activation, predecessor] pairs, "
                                 f"got {e!r}")
        return self.validate(RnnGenotype(tuple(genes), tuple(data["concat"])))

    def format(self, genotype: RnnGenotype) -> str:
        return json.dumps(self.to_json(genotype))

    def parse(self, text: str) -> RnnGenotype:
        """A published name (DARTS_V1, DARTS_V2; DARTS = DARTS_V2), a JSON object, or a path to a JSON file."""
        if not isinstance(text, str):
            raise ValueError(f"a DARTS RNN genotype string must be a str, got {type(text).__name__}")
        text = text.strip()
        published = published_rnn()
        if text in published or text == "DARTS":
            return self.validate(get_rnn_genotype(text))
        if not text.startswith("{"):
            if os.path.isfile(text):
                with open(text) as f:
                    return self.parse(f.read())
            raise ValueError(f"malformed DARTS RNN genotype {text[:80]!r}: expected a JSON object, a JSON file or one "
                             f"of {', '.join(sorted(published))}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"malformed DARTS RNN genotype JSON: {e}") from None
        return self.from_json(data)
