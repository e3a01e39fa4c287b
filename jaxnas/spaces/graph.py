"""Cells as labelled DAGs: what a space hands to a plotter (or any other tool that walks a cell).

Every space has ``cell_graphs(genotype) -> tuple[CellGraph, ...]`` (one graph per cell type: DARTS gives normal and
reduction cells, NB201 and the recurrent spaces one cell). A :class:`CellGraph` is plain data: nodes with a kind and
a label, edges with an op label (``""`` for a structural edge: a concatenation, an operand slot feeding its
combiner). :mod:`jaxnas.plot` draws any such graph, so a space added through the registry gets cell pictures by
writing its ``cell_graphs``.
"""

from __future__ import annotations

import dataclasses

NODE_KINDS = ("input", "node", "slot", "output")


@dataclasses.dataclass(frozen=True)
class GraphNode:
    """A state of a cell. ``kind``: ``input`` (a cell input), ``node`` (an intermediate node), ``slot`` (an operand
    slot of a node that combines two), ``output`` (what the cell returns)."""

    name: str
    label: str
    kind: str = "node"

    def __post_init__(self):
        if self.kind not in NODE_KINDS:
            raise ValueError(f"graph node {self.name!r}: unknown kind {self.kind!r}; allowed: {', '.join(NODE_KINDS)}")


@dataclasses.dataclass(frozen=True)
class GraphEdge:
    """``src -> dst`` (node names); ``label`` is the op on the edge, ``""`` for a structural edge."""

    src: str
    dst: str
    label: str = ""


@dataclasses.dataclass(frozen=True)
class CellGraph:
    """One cell: a title, its nodes (in order: inputs first) and its edges."""

    title: str
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]

    def __post_init__(self):
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "edges", tuple(self.edges))
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"cell graph {self.title!r}: node names repeat: {names}")
        known = set(names)
        for e in self.edges:
            if e.src not in known or e.dst not in known:
                raise ValueError(f"cell graph {self.title!r}: edge {e.src} -> {e.dst} names a node it does not have")
        self.topological_order()  # raises on a cycle

    def node(self, name: str) -> GraphNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ValueError(f"cell graph {self.title!r} has no node {name!r}")

    def of_kind(self, kind: str) -> tuple[GraphNode, ...]:
        return tuple(n for n in self.nodes if n.kind == kind)

    @property
    def op_edges(self) -> tuple[GraphEdge, ...]:
        """The edges that carry an op (a label)."""
        return tuple(e for e in self.edges if e.label)

    def topological_order(self) -> tuple[str, ...]:
        """Node names, every node after its predecessors (ties in the order the nodes were given)."""
        pending = {n.name: 0 for n in self.nodes}
        for e in self.edges:
            pending[e.dst] += 1
        order, ready = [], [n.name for n in self.nodes if pending[n.name] == 0]
        while ready:
            name = ready.pop(0)
            order.append(name)
            for e in self.edges:
                if e.src == name:
                    pending[e.dst] -= 1
                    if pending[e.dst] == 0:
                        ready.append(e.dst)
        if len(order) != len(self.nodes):
            raise ValueError(f"cell graph {self.title!r} has a cycle")
        return tuple(order)

    def depths(self) -> dict[str, int]:
        """Longest path (in edges) from any node without predecessors to each node."""
        depth = {}
        for name in self.topological_order():
            preds = [depth[e.src] for e in self.edges if e.dst == name]
            depth[name] = 1 + max(preds) if preds else 0
        return depth


# ----------------------------------------------------------------------------------------------------------------
# width and depth of a cell (Shu, Wang, Cai: "Understanding architectures learnt by cell-based neural architecture
# search", ICLR 2020)

ABSENT_OPS = ("none", "zero")  # op labels that carry no signal: such an edge is not a connection


@dataclasses.dataclass(frozen=True)
class CellShape:
    """Width (in units of the cell's channel count c) and depth (connections) of a cell, as Shu et al. define them:

    * depth: the number of connections along the longest path from an input node to the output node;
    * width: the sum over the intermediate nodes connected to an input node of each node's width, c for a node
      whose connections all come from input nodes, reduced by the fraction of its connections that come from other
      intermediate nodes (a node fed by one input and one intermediate node counts c / 2).

    Only live nodes count (on a path from an input to the output); a ``none`` edge is no connection. Where the
    output node is itself a computing node (NB201: node 3 sums ops), it counts as an intermediate node for the width.
    """

    width: float
    depth: int

    def to_json(self) -> dict:
        return {"width": round(self.width, 4), "depth": self.depth}


def _connects(edge: GraphEdge) -> bool:
    return edge.label not in ABSENT_OPS


def cell_shape(graph: CellGraph) -> CellShape:
    """The :class:`CellShape` of one cell graph. A graph with ``slot`` nodes (a grown cell's operand slots) has no
    width in this sense: ValueError."""
    if graph.of_kind("slot"):
        raise ValueError(f"cell graph {graph.title!r}: width and depth are defined for cells without operand slots")
    inputs = {n.name for n in graph.of_kind("input")}
    outputs = {n.name for n in graph.of_kind("output")}
    if not inputs or len(outputs) != 1:
        raise ValueError(f"cell graph {graph.title!r}: width and depth need input nodes and one output node")
    edges = [e for e in graph.edges if _connects(e)]
    order = graph.topological_order()
    reached = set(inputs)
    for name in order:
        if any(e.dst == name and e.src in reached for e in edges):
            reached.add(name)
    reaches = set(outputs)
    for name in reversed(order):
        if any(e.src == name and e.dst in reaches for e in edges):
            reaches.add(name)
    live = reached & reaches
    output = next(iter(outputs))
    if output not in live:
        return CellShape(0.0, 0)
    # depth: the longest path in connections from an input to the output, over live nodes
    longest: dict[str, int] = {}
    for name in order:
        if name not in live:
            continue
        preds = [longest[e.src] for e in edges if e.dst == name and e.src in longest]
        longest[name] = 0 if name in inputs else 1 + max(preds)
    width = 0.0
    for node in graph.nodes:
        if node.name not in live or node.name in inputs:
            continue
        into = [e for e in edges if e.dst == node.name and e.src in live and e.label]
        if not into:  # the concatenating output node: no op connections of its own
            continue
        from_inputs = sum(e.src in inputs for e in into)
        width += from_inputs / len(into)
    return CellShape(width, longest[output])


__all__ = ["ABSENT_OPS", "NODE_KINDS", "CellGraph", "CellShape", "GraphEdge", "GraphNode", "cell_shape"]
