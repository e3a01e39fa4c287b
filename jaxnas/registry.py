"""The registry of search spaces: a space's name maps to everything that goes with it.

An entry holds the space (a factory of the frozen dataclass in :mod:`jaxnas.spaces`), the flax modules built for it
(its supernet, which receives edge weights, and the discrete network of a genotype), the kind of task it serves and
its default sizes. ``jaxnas describe``, ``search`` and ``train`` and the runners look spaces up here and nowhere
else, so a new space is one :func:`register_space` call away from the whole command line::

    from jaxnas.registry import SpaceEntry, register_space
    register_space(SpaceEntry(name="my-space", make_space=MySpace, make_supernet=..., make_network=...))

Sizes: ``width`` is the network's channel count (C; hidden units for a recurrent cell) and ``depth`` its cell count
(NB201: cells per stage N; DARTS: cells). ``quick`` sizes are the defaults of the search and train runners (minutes on
a laptop CPU); ``paper`` sizes are the published networks' (``jaxnas describe`` builds those by default).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from jaxnas.nn import entrannas, grow, networks, recurrent, supernet
from jaxnas.spaces import DartsRnnSpace, DartsSpace, NB201Space
from jaxnas.spaces.graph import CellGraph, GraphEdge, GraphNode

TASKS = ("image", "sequence", "image-growth", "sequence-growth")


class Sizes(NamedTuple):
    """Default ``width`` and ``depth`` of one use of a space."""

    width: int
    depth: int

    def override(self, width: int | None, depth: int | None) -> "Sizes":
        """These sizes with ``width`` / ``depth`` in place of the defaults where given (not None)."""
        return Sizes(self.width if width is None else width, self.depth if depth is None else depth)


@dataclasses.dataclass(frozen=True)
class SpaceEntry:
    """Everything that goes with one search space.

    Attributes:
      name: the space's name (``--space NAME``; ``space.name`` and a genotype JSON's ``"space"`` key).
      make_space: ``(**options) -> space`` (the space's class).
      task: ``image`` (classification supernets), ``sequence`` (a recurrent cell searched on a language-modelling
        or forecasting task), ``image-growth`` or ``sequence-growth`` (a conv network / the two-input recurrent
        backbone grown by morphisms; no fixed supernet).
      make_supernet: ``(space, width, depth, num_classes, conv_impl) -> module`` called as
        ``module(x, weights, train=..., hard=...)``; for ``sequence`` spaces ``(space, width) -> cell``.
      make_network: ``(genotype, width, depth, num_classes, auxiliary, conv_impl) -> module`` called as
        ``module(x, train=...)``; for ``sequence`` spaces ``(genotype, width) -> cell``.
      quick_supernet, quick_network: the runners' default sizes; paper_supernet, paper_network: the published ones.
      auxiliary_head: whether the discrete network can carry an auxiliary head (DARTS's NetworkCIFAR).
    """

    name: str
    make_space: Callable[..., Any]
    task: str = "image"
    make_supernet: Callable[..., Any] | None = None
    make_network: Callable[..., Any] | None = None
    quick_supernet: Sizes = Sizes(8, 1)
    quick_network: Sizes = Sizes(8, 1)
    paper_supernet: Sizes = Sizes(16, 5)
    paper_network: Sizes = Sizes(16, 5)
    auxiliary_head: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a space entry needs a non-empty name, got {self.name!r}")
        if self.task not in TASKS:
            raise ValueError(f"space {self.name!r}: unknown task {self.task!r}; allowed: {', '.join(TASKS)}")

    def space(self, **options):
        return self.make_space(**options)

    def supernet(self, space, width: int, depth: int | None = None, num_classes: int = 0,
                 conv_impl: str | None = None, **options):
        """The space's supernet (``depth`` None: :attr:`quick_supernet`'s). ``options`` go to the supernet's
        module where it takes them (the image supernets: PC-DARTS's ``partial_channels``, ``edge_normalization``)."""
        depth = self.quick_supernet.depth if depth is None else depth
        if self.make_supernet is None:
            raise ValueError(f"space {self.name!r} has no supernet (it is {self.task})")
        if self.task == "sequence":
            if options:
                raise ValueError(f"space {self.name!r}: its supernet takes no options ({', '.join(sorted(options))})")
            return self.make_supernet(space, width)
        try:
            return self.make_supernet(space, width, depth, num_classes, conv_impl, **options)
        except TypeError as e:
            if not options:
                raise
            raise ValueError(f"space {self.name!r}: its supernet does not take {', '.join(sorted(options))} "
                             f"({e})") from None

    def network(self, genotype, width: int, depth: int | None = None, num_classes: int = 0, auxiliary: bool = False,
                conv_impl: str | None = None):
        """The discrete network of ``genotype`` (``depth`` None: :attr:`quick_network`'s)."""
        depth = self.quick_network.depth if depth is None else depth
        if self.make_network is None:
            raise ValueError(f"space {self.name!r} has no discrete network")
        if auxiliary and not self.auxiliary_head:
            raise ValueError(f"space {self.name!r}: its networks have no auxiliary head")
        if self.task in ("sequence", "sequence-growth"):
            return self.make_network(genotype, width)
        return self.make_network(genotype, width, depth, num_classes, auxiliary, conv_impl)


_ENTRIES: dict[str, SpaceEntry] = {}


def register_space(entry: SpaceEntry, *, replace: bool = False) -> SpaceEntry:
    """Add ``entry`` under ``entry.name`` (a name taken already is an error unless ``replace``)."""
    if not isinstance(entry, SpaceEntry):
        raise ValueError(f"register_space takes a SpaceEntry, got {type(entry).__name__}")
    if entry.name in _ENTRIES and not replace:
        raise ValueError(f"a space named {entry.name!r} is registered already")
    _ENTRIES[entry.name] = entry
    return entry


def unregister_space(name: str) -> None:
    _ENTRIES.pop(name, None)


def space_names(task: str | None = None) -> tuple[str, ...]:
    """The registered names (of one ``task`` kind, if given), sorted."""
    return tuple(sorted(n for n, e in _ENTRIES.items() if task is None or e.task == task))


def get_entry(name: str) -> SpaceEntry:
    """The entry of a space; an unknown name is an error listing the known ones."""
    try:
        return _ENTRIES[name]
    except KeyError:
        raise ValueError(f"unknown search space {name!r}; known: {', '.join(space_names())}") from None


def get_space(name: str, **options):
    """A search space by name (options go to its class)."""
    return get_entry(name).space(**options)


def genotype_from_json(text: str | dict):
    """A genotype from its JSON (``space.to_json(g)``); the JSON names its space, which validates it."""
    data = json.loads(text) if isinstance(text, str) else dict(text)
    if not isinstance(data, dict) or "space" not in data:
        raise ValueError('a genotype JSON object must have a "space" key naming its search space')
    return get_space(data["space"]).from_json(data)


def abstract_arch(space) -> Any:
    """Shapes of ``space.init_arch``'s parameters (nothing is computed)."""
    return jax.eval_shape(space.init_arch, jax.random.PRNGKey(0))


# ----------------------------------------------------------------------------------------------------------------
# the built-in spaces


class GrownConvSpace:
    """The derived spec of a growing search (``jaxnas search --space grow-conv``) behind the genotype interface."""

    name = "grow-conv"

    def from_json(self, data: dict):
        spec = data.get("derived", data.get("spec"))
        if not isinstance(spec, dict):
            raise ValueError('a grow-conv genotype needs a "derived" (or "spec") object')
        return grow.spec_from_json(spec)

    def to_json(self, spec) -> dict:
        return {"space": self.name, "derived": grow.spec_to_json(spec)}

    def format(self, spec) -> str:
        return grow.describe(spec)

    def cell_graphs(self, spec, arch=None) -> tuple[CellGraph, ...]:
        """Every cell of a grown spec: its inputs, nodes, operand slots (a node with two slots draws them as
        ``slot`` nodes feeding the node, labelled with its combiner) and the output that sums the nodes.

        An edge with one op is labelled with it, one with several ``"k ops"``. A two-slot node's combiner is the
        strongest of ``arch`` (the architecture parameters, when given) or ``add|hadamard`` (still mixed).
        """
        graphs = []
        for index, cell in enumerate(spec.cells):
            cell_a = None if arch is None else grow.cell_arch(spec, arch, index)
            names = _grown_input_labels(spec.family, cell.n_inputs)
            nodes = [GraphNode(f"s{i}", label, "input") for i, label in enumerate(names)]
            edges = []
            for k, node in enumerate(cell.nodes):
                state = f"s{cell.n_inputs + k}"
                if len(node.slots) == 1:
                    nodes.append(GraphNode(state, str(k), "node"))
                    targets = [state]
                else:
                    comb = "|".join(grow.COMBINERS) if cell_a is None else \
                        grow.COMBINERS[int(np.argmax(np.asarray(cell_a[grow.comb_key(k)])))]
                    targets = [f"{state}.{s}" for s in range(len(node.slots))]
                    nodes += [GraphNode(t, f"{k}.{'ab'[s]}", "slot") for s, t in enumerate(targets)]
                    nodes.append(GraphNode(state, f"{k} {comb}", "node"))
                    edges += [GraphEdge(t, state) for t in targets]
                for target, slot in zip(targets, node.slots):
                    edges += [GraphEdge(f"s{e.src}", target, e.ops[0] if len(e.ops) == 1 else f"{len(e.ops)} ops")
                              for e in slot]
            nodes.append(GraphNode("out", "h_{t}" if spec.family == "rnn" else "out", "output"))
            edges += [GraphEdge(f"s{cell.n_inputs + k}", "out") for k in range(len(cell.nodes))]
            title = "recurrent cell" if spec.family == "rnn" else f"cell {index}"
            graphs.append(CellGraph(title, nodes, edges))
        return tuple(graphs)


def _grown_input_labels(family: str, n_inputs: int) -> tuple[str, ...]:
    if family == "rnn" and n_inputs == 2:
        return ("W_x x_{t}", "h_{t-1}")
    return tuple("in" if n_inputs == 1 else f"in{i}" for i in range(n_inputs))


class GrownRecurrentSpace(GrownConvSpace):
    """The derived two-input recurrent backbone of a growing search (``jaxnas search --space grow-rnn``)."""

    name = "grow-rnn"


def _grown_network(spec, width, depth, num_classes, auxiliary, conv_impl):
    # a grown spec carries its own width, depth and classes
    if num_classes and spec.num_classes != num_classes:
        raise ValueError(f"the grown network has {spec.num_classes} classes, the data set {num_classes}")
    return networks.GrownNetwork(spec, conv_impl)


def _darts_supernet(space, width, depth, num_classes, impl, transit_cells=False, engine_cells=None,
                    feature_sharing=False, derivation="top2", **options):
    """The DARTS search network, or with ``transit_cells`` EnTranNAS's network of Engine- and Transit-cells."""
    if transit_cells:
        if options:
            raise ValueError(f"the EnTranNAS network does not take {', '.join(sorted(options))}")
        return entrannas.EnTranNetwork(C=width, layers=depth, num_classes=num_classes, impl=impl,
                                       engine_cells=engine_cells, derivation=derivation,
                                       feature_sharing=feature_sharing)
    return supernet.DartsSearchNetwork(C=width, layers=depth, num_classes=num_classes, impl=impl, **options)


register_space(SpaceEntry(
    name="nb201", make_space=NB201Space,
    make_supernet=lambda s, w, d, k, impl, **o: supernet.NB201Supernet(C=w, N=d, num_classes=k, impl=impl, **o),
    make_network=lambda g, w, d, k, aux, impl: networks.NB201Network(C=w, N=d, num_classes=k, genotype=g, impl=impl),
    quick_supernet=Sizes(8, 1), quick_network=Sizes(8, 1), paper_supernet=Sizes(16, 5), paper_network=Sizes(16, 5),
))
register_space(SpaceEntry(
    name="darts", make_space=DartsSpace,
    make_supernet=_darts_supernet,
    make_network=lambda g, w, d, k, aux, impl: networks.NetworkCIFAR(g, C=w, layers=d, num_classes=k, auxiliary=aux,
                                                                     impl=impl),
    quick_supernet=Sizes(8, 5), quick_network=Sizes(8, 8), paper_supernet=Sizes(16, 8), paper_network=Sizes(36, 20),
    auxiliary_head=True,
))
register_space(SpaceEntry(
    name="darts-rnn", make_space=DartsRnnSpace, task="sequence",
    make_supernet=lambda s, w: recurrent.DartsRnnSearchCell(hidden=w, steps=s.steps, primitives=s.primitives),
    make_network=lambda g, w: recurrent.DartsRnnCell(hidden=w, genotype=g),
    quick_supernet=Sizes(32, 1), quick_network=Sizes(32, 1), paper_supernet=Sizes(300, 1),
    paper_network=Sizes(850, 1),
))
register_space(SpaceEntry(
    name="grow-conv", make_space=GrownConvSpace, task="image-growth", make_network=_grown_network,
))
register_space(SpaceEntry(
    name="grow-rnn", make_space=GrownRecurrentSpace, task="sequence-growth",
    make_network=lambda spec, width: grow.GrowRecurrentCell(spec),
    quick_supernet=Sizes(16, 1), quick_network=Sizes(16, 1), paper_supernet=Sizes(16, 1), paper_network=Sizes(16, 1),
))


__all__ = [
    "GrownConvSpace", "GrownRecurrentSpace", "Sizes", "SpaceEntry", "TASKS", "abstract_arch", "genotype_from_json", "get_entry",
    "get_space", "register_space", "space_names", "unregister_space",
]
