"""Growable supernets: cells described by a spec (a frozen dataclass) that :mod:`jaxnas.search.morph` can change while training.

A DARTS supernet has a fixed size. Here the size is data: a :class:`CellSpec` lists the cell's nodes, every node's
operand slots, every slot's incoming edges and every edge's candidate ops. The flax modules are built from the spec,
so a new spec gives a new (bigger or smaller) network, and :mod:`jaxnas.search.morph` maps the parameter, architecture and
optimizer trees across so that the network computes the same function right after the change.

One cell::

    states = cell inputs                    (conv cells: [previous cell output]; recurrent cells: [W_x x_t, h_{t-1}])
    node k:  slot_s = sum over edges e=(src, ops) of   sum_i  w_i * gate_i * op_i(states[src])
             node   = slot_0                                         (one slot: conv cells)
                    = sum_c w_c * combine_c(slot_0, slot_1)         (two slots: combine in {add, hadamard})
    output  = sum_k out_k * node_k          (recurrent cells: tanh of it)

``w`` are the edge weights from a relaxation of the architecture logits (softmax for DARTS), ``gate_i`` is a learnable
scalar per candidate op and ``out_k`` a learnable scalar per node. The gates are what makes growth exact: a new op or
node starts with gate 0 (it contributes nothing), and when a new op joins a softmax the other ops' gates are scaled so
that ``w_i * gate_i`` is unchanged. They are ordinary weights (trained with the other weights) and cost one scalar per
op. Derived (discrete) networks are the same modules with one op per edge.

Architecture parameters for a cell are a flat dict: ``{'n{k}_s{s}_e{src}': (ops,), 'n{k}_comb': (2,)}``; a network of
several cells nests them under ``'cell{i}'``. The parameters of edge ``n{k}_s{s}_e{src}`` live under that same name
(``gate`` and one sub-tree per op, named after the op).

Two families:

* :class:`GrowConvNet` (``ConvNetSpec``): image classification; stem conv+BN, ``len(cells)`` single-input cells at one
  width ``C`` (optional 2x2 average pooling after chosen cells), global average pooling, dense head. Edges use the
  DARTS ops from :mod:`jaxnas.nn.ops` (no affine BN, as in DARTS search cells).
* :class:`GrowRecurrentCell` (``RecurrentSpec``): the two-input recurrent backbone. Inputs are ``W_x x_t`` and
  ``h_{t-1}``; every node combines two operand slots with ``add`` or the Hadamard product (the gating products of
  LSTM and GRU), each slot being a mixed sum over predecessors of ``act(W_e s_src)`` with ``act`` in
  ``none/identity/tanh/sigmoid/relu``. It follows the recurrent cell protocol
  (``initial_carry(batch)``, ``cell(carry, x_t, weights, train, hard) -> (carry, h)``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.nn.ops import OPS, BatchNorm, Conv, make_op, torch_default_init

CONV_OPS = ("none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "sep_conv_3x3", "dil_conv_3x3")
RNN_OPS = ("none", "identity", "tanh", "sigmoid", "relu")
COMBINERS = ("add", "hadamard")

_ACTIVATIONS = {
    "identity": lambda z: z,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "relu": jax.nn.relu,
}
_EDGE_KEY = re.compile(r"^n(\d+)_s(\d+)_e(\d+)$")
_COMB_KEY = re.compile(r"^n(\d+)_comb$")


# ----------------------------------------------------------------------------------------------------------------
# specs


@dataclasses.dataclass(frozen=True)
class EdgeSpec:
    """An edge into a node's slot: reads state ``src`` (inputs first, then nodes) and mixes ``ops``."""

    src: int
    ops: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "ops", tuple(self.ops))


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    """A node: one operand slot (summed edges) or two slots merged by a mixed combiner."""

    slots: tuple[tuple[EdgeSpec, ...], ...]

    def __post_init__(self):
        object.__setattr__(self, "slots", tuple(tuple(s) for s in self.slots))


@dataclasses.dataclass(frozen=True)
class CellSpec:
    """A cell: ``n_inputs`` input states and its nodes, in order (node ``k`` is state ``n_inputs + k``)."""

    n_inputs: int
    nodes: tuple[NodeSpec, ...]

    def __post_init__(self):
        object.__setattr__(self, "nodes", tuple(self.nodes))

    @property
    def num_states(self) -> int:
        return self.n_inputs + len(self.nodes)

    def edges(self):
        """``(key, node, slot, EdgeSpec)`` for every edge, in order."""
        for k, node in enumerate(self.nodes):
            for s, slot in enumerate(node.slots):
                for e in slot:
                    yield edge_key(k, s, e.src), k, s, e

    def edge(self, key: str) -> EdgeSpec:
        for name, _, _, e in self.edges():
            if name == key:
                return e
        raise ValueError(f"cell has no edge {key!r}; edges: {', '.join(n for n, *_ in self.edges())}")


def edge_key(node: int, slot: int, src: int) -> str:
    return f"n{node}_s{slot}_e{src}"


def comb_key(node: int) -> str:
    return f"n{node}_comb"


def parse_edge_key(key: str) -> tuple[int, int, int] | None:
    m = _EDGE_KEY.match(key)
    return None if m is None else tuple(int(g) for g in m.groups())


@dataclasses.dataclass(frozen=True)
class ConvNetSpec:
    """A growable image classifier: ``width`` channels everywhere, ``cells`` in sequence.

    ``reduce_after``: cell indices after which a 2x2 average pooling halves the resolution (parameter free).
    """

    width: int
    cells: tuple[CellSpec, ...]
    num_classes: int = 10
    reduce_after: tuple[int, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "cells", tuple(self.cells))
        object.__setattr__(self, "reduce_after", tuple(self.reduce_after))
        validate(self)

    family = "conv"


@dataclasses.dataclass(frozen=True)
class RecurrentSpec:
    """The two-input recurrent backbone: ``hidden`` units, one cell with 2 inputs (``W_x x_t``, ``h_{t-1}``)."""

    hidden: int
    cell: CellSpec

    def __post_init__(self):
        validate(self)

    family = "rnn"

    @property
    def cells(self) -> tuple[CellSpec, ...]:
        return (self.cell,)


Spec = ConvNetSpec | RecurrentSpec


def family_ops(spec) -> tuple[str, ...]:
    return CONV_OPS if spec.family == "conv" else RNN_OPS


def width_of(spec) -> int:
    return spec.width if spec.family == "conv" else spec.hidden


def cell_prefix(spec, index: int) -> tuple[str, ...]:
    """Where cell ``index`` keeps its architecture parameters (and, for conv nets, its parameters)."""
    return (f"cell{index}",) if spec.family == "conv" else ()


def validate(spec) -> None:
    """One clear ValueError for a malformed spec."""
    known = set(OPS) if spec.family == "conv" else set(RNN_OPS)
    width = width_of(spec)
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"{type(spec).__name__}: width must be a positive integer, got {width!r}")
    if spec.family == "conv":
        if not spec.cells:
            raise ValueError("ConvNetSpec needs at least one cell")
        bad = [r for r in spec.reduce_after if not 0 <= r < len(spec.cells)]
        if bad:
            raise ValueError(f"ConvNetSpec.reduce_after {bad} out of range for {len(spec.cells)} cells")
    want_inputs, want_slots = (1, (1,)) if spec.family == "conv" else (2, (2,))
    for i, cell in enumerate(spec.cells):
        where = f"cell {i}"
        if cell.n_inputs != want_inputs:
            raise ValueError(f"{where}: a {spec.family} cell has {want_inputs} input(s), got n_inputs={cell.n_inputs}")
        if not cell.nodes:
            raise ValueError(f"{where}: a cell needs at least one node")
        for k, node in enumerate(cell.nodes):
            if len(node.slots) not in want_slots:
                raise ValueError(f"{where} node {k}: a {spec.family} node has {want_slots[0]} slot(s), "
                                 f"got {len(node.slots)}")
            for s, slot in enumerate(node.slots):
                srcs = [e.src for e in slot]
                if len(set(srcs)) != len(srcs):
                    raise ValueError(f"{where} node {k} slot {s}: two edges from the same state {srcs}")
                for e in slot:
                    if not 0 <= e.src < cell.n_inputs + k:
                        raise ValueError(f"{where} node {k}: edge from state {e.src}, but only states "
                                         f"0..{cell.n_inputs + k - 1} exist before it")
                    if not e.ops:
                        raise ValueError(f"{where} node {k}: edge from {e.src} has no ops")
                    if len(set(e.ops)) != len(e.ops):
                        raise ValueError(f"{where} node {k}: edge from {e.src} repeats an op: {e.ops}")
                    unknown = [o for o in e.ops if o not in known]
                    if unknown:
                        raise ValueError(f"{where} node {k}: unknown op(s) {unknown} for a {spec.family} cell; "
                                         f"known: {', '.join(sorted(known))}")


def dense_cell(n_inputs: int, n_nodes: int, ops: Sequence[str], slots: int = 1) -> CellSpec:
    """A DARTS-style cell: every node reads every earlier state in each of its ``slots``, every edge has ``ops``."""
    nodes = []
    for k in range(n_nodes):
        edges = tuple(EdgeSpec(src, tuple(ops)) for src in range(n_inputs + k))
        nodes.append(NodeSpec(tuple(edges for _ in range(slots))))
    return CellSpec(n_inputs, tuple(nodes))


def conv_net_spec(width=8, cells=2, nodes=1, ops=CONV_OPS, num_classes=10, reduce_after=()) -> ConvNetSpec:
    """A small starting point for a growing conv search (``nodes`` per cell)."""
    return ConvNetSpec(width, tuple(dense_cell(1, nodes, ops) for _ in range(cells)), num_classes, reduce_after)


def recurrent_spec(hidden=16, nodes=1, ops=RNN_OPS) -> RecurrentSpec:
    """A small starting point for a growing recurrent backbone search."""
    return RecurrentSpec(hidden, dense_cell(2, nodes, ops, slots=2))


# -- JSON ----------------------------------------------------------------------------------------------------------


def _cell_to_json(cell: CellSpec) -> dict:
    return {
        "n_inputs": cell.n_inputs,
        "nodes": [[[{"src": e.src, "ops": list(e.ops)} for e in slot] for slot in node.slots] for node in cell.nodes],
    }


def _cell_from_json(d: dict) -> CellSpec:
    nodes = tuple(NodeSpec(tuple(tuple(EdgeSpec(int(e["src"]), tuple(e["ops"])) for e in slot) for slot in node))
                  for node in d["nodes"])
    return CellSpec(int(d["n_inputs"]), nodes)


def spec_to_json(spec) -> dict:
    if spec.family == "conv":
        return {"family": "conv", "width": spec.width, "num_classes": spec.num_classes,
                "reduce_after": list(spec.reduce_after), "cells": [_cell_to_json(c) for c in spec.cells]}
    return {"family": "rnn", "hidden": spec.hidden, "cell": _cell_to_json(spec.cell)}


def spec_from_json(d: dict | str):
    """Inverse of :func:`spec_to_json` (a dict or a JSON string); ValueError on a malformed spec."""
    if isinstance(d, str):
        d = json.loads(d)
    try:
        if d["family"] == "conv":
            return ConvNetSpec(int(d["width"]), tuple(_cell_from_json(c) for c in d["cells"]), int(d["num_classes"]),
                               tuple(d.get("reduce_after", ())))
        if d["family"] == "rnn":
            return RecurrentSpec(int(d["hidden"]), _cell_from_json(d["cell"]))
    except (KeyError, TypeError) as e:
        raise ValueError(f"malformed growable spec: missing or bad field {e}") from None
    raise ValueError(f"unknown spec family {d.get('family')!r}; known: conv, rnn")


def describe(spec) -> str:
    """One line per cell: nodes, edges and ops (for logs)."""
    lines = []
    for i, cell in enumerate(spec.cells):
        n_edges = sum(1 for _ in cell.edges())
        n_ops = sum(len(e.ops) for *_, e in cell.edges())
        lines.append(f"cell {i}: {len(cell.nodes)} nodes, {n_edges} edges, {n_ops} candidate ops")
    return f"{spec.family} width {width_of(spec)}; " + "; ".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# architecture parameters


def init_cell_arch(cell: CellSpec, key: jax.Array, scale: float = 1e-3) -> dict:
    arch = {}
    for name, k, s, e in cell.edges():
        key, sub = jax.random.split(key)
        arch[name] = scale * jax.random.normal(sub, (len(e.ops),), jnp.float32)
    for k, node in enumerate(cell.nodes):
        if len(node.slots) == 2:
            key, sub = jax.random.split(key)
            arch[comb_key(k)] = scale * jax.random.normal(sub, (len(COMBINERS),), jnp.float32)
    return arch


def init_arch(spec, key: jax.Array, scale: float = 1e-3) -> dict:
    """Architecture logits for every edge (and combiner) of ``spec``: ``scale * N(0, 1)``, as DARTS."""
    if spec.family == "rnn":
        return init_cell_arch(spec.cell, key, scale)
    keys = jax.random.split(key, len(spec.cells))
    return {f"cell{i}": init_cell_arch(c, k, scale) for i, (c, k) in enumerate(zip(spec.cells, keys))}


def uniform_weights(spec) -> dict:
    """Edge weights 1/ops on every edge (for initialising a model without an arch)."""
    zeros = jax.tree_util.tree_map(jnp.zeros_like, jax.eval_shape(lambda: init_arch(spec, jax.random.key(0))))
    return jax.tree_util.tree_map(lambda z: jax.nn.softmax(z), zeros)


def cell_arch(spec, arch, index: int) -> dict:
    sub = arch
    for p in cell_prefix(spec, index):
        sub = sub[p]
    return sub


# ----------------------------------------------------------------------------------------------------------------
# derivation


def derive(spec, arch, *, edges_per_slot: int | None = None, drop=("none",)):
    """The discrete spec: every slot keeps its strongest ``(src, op)`` pairs, one op per edge.

    ``edges_per_slot``: how many incoming edges a slot keeps (default: 2 for conv cells as in DARTS, 1 for the
    recurrent backbone); ops in ``drop`` are never chosen. Combiners keep their strongest choice; the derived spec's
    nodes with two slots keep both combiners' weights (see :func:`derived_weights`).
    """
    k_keep = edges_per_slot if edges_per_slot is not None else (2 if spec.family == "conv" else 1)
    cells = []
    for i, cell in enumerate(spec.cells):
        a = cell_arch(spec, arch, i)
        nodes = []
        for k, node in enumerate(cell.nodes):
            slots = []
            for s, slot in enumerate(node.slots):
                scored = []
                for e in slot:
                    w = np.asarray(jax.nn.softmax(a[edge_key(k, s, e.src)]))
                    cand = [(float(w[j]), op) for j, op in enumerate(e.ops) if op not in drop]
                    if cand:
                        best = max(cand)
                        scored.append((best[0], e.src, best[1]))
                scored.sort(key=lambda t: (-t[0], t[1]))
                chosen = sorted(scored[:k_keep], key=lambda t: t[1])
                slots.append(tuple(EdgeSpec(src, (op,)) for _, src, op in chosen))
            nodes.append(NodeSpec(tuple(slots)))
        cells.append(CellSpec(cell.n_inputs, tuple(nodes)))
    if spec.family == "conv":
        return dataclasses.replace(spec, cells=tuple(cells))
    return dataclasses.replace(spec, cell=cells[0])


def derived_weights(derived_spec, arch=None) -> dict:
    """Edge weights for a derived spec: 1 on every single-op edge; combiners one-hot at the strongest of ``arch``
    (or ``add`` without an arch)."""
    weights = uniform_weights(derived_spec)

    def fix(cell_w, cell_a):
        out = {}
        for name, w in cell_w.items():
            if _COMB_KEY.match(name):
                idx = 0 if cell_a is None else int(jnp.argmax(cell_a[name]))
                out[name] = jax.nn.one_hot(idx, len(COMBINERS), dtype=jnp.float32)
            else:
                out[name] = jnp.ones_like(w)
        return out

    if derived_spec.family == "rnn":
        return fix(weights, arch)
    return {c: fix(w, None if arch is None else arch[c]) for c, w in weights.items()}


# ----------------------------------------------------------------------------------------------------------------
# modules


class GrowEdge(nn.Module):
    """A mixed op with a learnable gate per candidate: ``sum_i w_i * gate_i * op_i(x)`` (``none`` is skipped).

    Parameters: ``gate`` (ops,), conv ops under ``op_<name>``, recurrent edges one ``dense`` (``W_e``) shared by
    their activations.
    """

    ops: tuple[str, ...]
    family: str
    width: int
    conv_impl: str | None = None

    def setup(self):
        self.gate = self.param("gate", nn.initializers.ones, (len(self.ops),), jnp.float32)
        if self.family == "conv":
            self.op = {o: make_op(o, self.width, 1, affine=False, impl=self.conv_impl) for o in self.ops if o != "none"}
        else:
            self.dense = nn.Dense(self.width, kernel_init=torch_default_init)

    def __call__(self, x, w, train: bool = True):
        if w.shape != (len(self.ops),):
            raise ValueError(f"edge {self.name}: weights must have shape ({len(self.ops)},) for ops {self.ops}, "
                             f"got {tuple(w.shape)}")
        z = self.dense(x) if self.family == "rnn" else None
        out = jnp.zeros(x.shape[:-1] + (self.width,), x.dtype)
        for i, op in enumerate(self.ops):
            if op == "none":
                continue
            y = self.op[op](x, train) if self.family == "conv" else _ACTIVATIONS[op](z)
            out = out + (w[i] * self.gate[i]).astype(x.dtype) * y
        return out


class GrowCell(nn.Module):
    """A cell built from a :class:`CellSpec` (see the module docstring for the equations)."""

    spec: CellSpec
    family: str
    width: int
    conv_impl: str | None = None

    @nn.compact
    def __call__(self, inputs: Sequence[jax.Array], weights: dict, train: bool = True):
        if len(inputs) != self.spec.n_inputs:
            raise ValueError(f"cell {self.name}: expected {self.spec.n_inputs} inputs, got {len(inputs)}")
        states = list(inputs)
        zero = jnp.zeros_like(states[0])
        for k, node in enumerate(self.spec.nodes):
            slots = []
            for s, slot in enumerate(node.slots):
                acc = zero
                for e in slot:
                    name = edge_key(k, s, e.src)
                    if name not in weights:
                        raise ValueError(f"cell {self.name}: no edge weights for {name!r}")
                    edge = GrowEdge(e.ops, self.family, self.width, self.conv_impl, name=name)
                    acc = acc + edge(states[e.src], weights[name], train)
                slots.append(acc)
            if len(slots) == 1:
                node_out = slots[0]
            else:
                cw = weights[comb_key(k)]
                node_out = cw[0] * (slots[0] + slots[1]) + cw[1] * (slots[0] * slots[1])
            states.append(node_out)
        n = len(self.spec.nodes)
        init = 1.0 if self.family == "conv" else 1.0 / n
        out_w = self.param("out", nn.initializers.constant(init), (n,), jnp.float32)
        out = zero
        for k in range(n):
            out = out + out_w[k].astype(zero.dtype) * states[self.spec.n_inputs + k]
        return out


class GrowConvNet(nn.Module):
    """Growable image classifier (NHWC in, logits out); the supernet calling convention of :mod:`jaxnas.nn.supernet`."""

    spec: ConvNetSpec
    conv_impl: str | None = None

    @nn.compact
    def __call__(self, x, weights, train: bool = True, hard: bool = False):
        if x.ndim != 4:
            raise ValueError(f"GrowConvNet: expected an NHWC image batch, got shape {tuple(x.shape)}")
        C = self.spec.width
        h = Conv(C, 3, padding=1, impl=self.conv_impl, name="stem_conv")(x)
        h = BatchNorm(True, name="stem_bn")(h, use_running_average=not train)
        for i, cell in enumerate(self.spec.cells):
            key = f"cell{i}"
            if key not in weights:
                raise ValueError(f"GrowConvNet: no edge weights for {key!r}; got {sorted(weights)}")
            h = GrowCell(cell, "conv", C, self.conv_impl, name=key)([h], weights[key], train)
            if i in self.spec.reduce_after:
                h = nn.avg_pool(h, (2, 2), (2, 2))
        h = jnp.mean(h, axis=(1, 2))
        return nn.Dense(self.spec.num_classes, kernel_init=torch_default_init, name="head")(h)


class GrowRecurrentCell(nn.Module):
    """The two-input recurrent backbone built from a :class:`RecurrentSpec` (recurrent cell protocol).

    ``h_t = tanh(sum_k out_k node_k)`` over the cell with inputs ``[W_x x_t, h_{t-1}]``.
    """

    spec: RecurrentSpec

    @property
    def hidden(self) -> int:
        return self.spec.hidden

    def initial_carry(self, batch_size: int):
        return jnp.zeros((batch_size, self.spec.hidden), jnp.float32)

    @nn.compact
    def __call__(self, carry, x_t, weights, train: bool = True, hard: bool = False):
        if weights is None:
            raise ValueError("GrowRecurrentCell needs edge weights (use grow.derived_weights for a derived cell)")
        H = self.spec.hidden
        xp = nn.Dense(H, kernel_init=torch_default_init, name="input")(x_t)
        s = GrowCell(self.spec.cell, "rnn", H, name="cell")([xp, carry], weights, train)
        h = jnp.tanh(s)
        return h, h


def build(spec, conv_impl: str | None = None) -> nn.Module:
    """The supernet module of a spec (conv nets; recurrent cells go inside a sequence model)."""
    if spec.family == "conv":
        return GrowConvNet(spec, conv_impl)
    return GrowRecurrentCell(spec)


__all__ = [
    "COMBINERS", "CONV_OPS", "RNN_OPS", "CellSpec", "ConvNetSpec", "EdgeSpec", "GrowCell", "GrowConvNet", "GrowEdge",
    "GrowRecurrentCell", "NodeSpec", "RecurrentSpec", "build", "cell_arch", "cell_prefix", "comb_key", "conv_net_spec",
    "dense_cell", "derive", "derived_weights", "describe", "edge_key", "family_ops", "init_arch", "init_cell_arch",
    "parse_edge_key", "recurrent_spec", "spec_from_json", "spec_to_json", "uniform_weights", "validate", "width_of",
]
