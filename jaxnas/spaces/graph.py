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


__all__ = ["NODE_KINDS", "CellGraph", "GraphEdge", "GraphNode"]
