"""EnTranNAS (Yang, You, Li, Wang, Qian, Lin, CVPR 2021): a DARTS search network of Engine-cells and Transit-cells.

* An **Engine-cell** is differentiable: every node sums its candidate connections weighted by the relaxed
  architecture (softmax, as DARTS; with DST the node-wise sparsemax of :func:`jaxnas.relax.node_sparsemax`).
* A **Transit-cell** runs only the sub-graph derived from the current architecture parameters, unweighted, as the
  derived cell of the evaluation network does: it costs what a derived cell costs and passes no gradient to the
  architecture. The derived sub-graph enters as 0/1 gates computed inside the jitted step, and every op runs as the
  taken or skipped branch of a conditional, so a change of the derived cell never recompiles.
* **Feature sharing**: an op reading node i computes one output that every later node reading i through that op
  uses (five source nodes x seven ops per cell instead of fourteen edges x seven ops); its parameters are shared
  too.
* **DST** (``derivation="dst"``): the weights are exactly zero outside the kept connections, so an Engine-cell also
  computes only those (gated like a Transit-cell, then weighted): the computation in search is the derived
  architecture, with any number of connections per node.

Pools carry no BN here (the DARTS search network adds one): with it a Transit-cell would compute something else
than the evaluation cell. :func:`network_variables` copies a search network's variables into the derived
:class:`jaxnas.nn.networks.NetworkCIFAR` (tests check that both compute the same function).

What was read: the paper's abstract and its Figure 2 caption; the placement of the Engine-cells and the exact
sparsification function are this library's choices (docs/methods.md).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.spaces.derive import darts_top_k_one_hot
from jaxnas.spaces.genotypes import DartsGenotype
from jaxnas.spaces.primitives import DARTS_PRIMITIVES
from jaxnas.nn.networks import DartsCell
from jaxnas.nn.ops import BatchNorm, Conv, FactorizedReduce, ReLUConvBN, make_op, torch_default_init, \
    tracing_conditional
from jaxnas.nn.supernet import check_image_batch, check_weights

DERIVATIONS = ("top2", "dst")
ROLES = ("engine", "transit")


def default_engine_cells(layers: int) -> tuple[int, ...]:
    """The cells that are Engine-cells by default: the last normal cell and the last reduction cell (one of each
    type, since cells of one type share their architecture parameters)."""
    reductions = (layers // 3, 2 * layers // 3)
    normal = [i for i in range(layers) if i not in reductions]
    return tuple(sorted({reductions[-1], normal[-1]})) if normal else (reductions[-1],)


def edge_index(steps: int) -> dict[tuple[int, int], int]:
    """``{(node m, input i): row}``: the arch row of every edge of a DARTS cell (node m's edges after earlier nodes')."""
    return {(m, i): row for row, (m, i) in enumerate((m, i) for m in range(steps) for i in range(m + 2))}


def cell_gates(weights, derivation: str, steps: int, primitives: Sequence[str]):
    """The derived sub-graph of one cell as 0/1 gates of shape ``(edges, ops)`` (no gradient): the DARTS rule
    (``top2``: two edges per node, each with its strongest non-none op) or the non-zero weights (``dst``)."""
    allowed = np.array([p != "none" for p in primitives])
    if derivation == "top2":
        gates = darts_top_k_one_hot(weights, steps, 2, allowed)
    elif derivation == "dst":
        gates = ((weights > 0) & jnp.asarray(allowed)).astype(weights.dtype)
    else:
        raise ValueError(f"unknown derivation {derivation!r}; allowed: {', '.join(DERIVATIONS)}")
    return jax.lax.stop_gradient(gates)


class SourceOp(nn.Module):
    """One candidate op on one input: ``op(x)``, or with ``gated`` the taken branch of a conditional on ``gate`` (the
    other branch returns zeros of the output's shape, so a skipped op costs nothing)."""

    primitive: str
    C: int
    stride: int
    impl: str | None = None

    def setup(self):
        self.op = make_op(self.primitive, self.C, self.stride, False, self.impl)

    def __call__(self, x, gate, train: bool = True, gated: bool = False):
        if not gated or self.is_initializing():
            return self.op(x, train)
        n, h, w, _ = x.shape
        shape = (n, -(-h // self.stride), -(-w // self.stride), self.C)

        def run(mdl, x):
            return mdl.op(x, train)

        def skip(mdl, x):
            return jnp.zeros(shape, x.dtype)

        with tracing_conditional():
            return nn.cond(gate > 0, run, skip, self, x)


class EnTranCell(nn.Module):
    """A DARTS cell of the EnTranNAS network (``role`` engine or transit, see the module docstring).

    Called as ``cell(s0, s1, w, gates, train)``: node m + 2 = sum over its edges e and non-none ops o of
    ``w[e, o] * op_{e,o}(input)``; with ``gates`` (0/1, same shape) an op runs only where some connection that uses
    its output is open. With ``feature_sharing`` the op of (input i, op o) is one module whatever node reads it."""

    C: int
    reduction: bool
    reduction_prev: bool
    primitives: Sequence[str] = DARTS_PRIMITIVES
    steps: int = 4
    multiplier: int = 4
    impl: str | None = None
    feature_sharing: bool = True

    @nn.compact
    def __call__(self, s0, s1, w, gates=None, train: bool = True):
        if self.reduction_prev:
            s0 = FactorizedReduce(self.C, affine=False, impl=self.impl, name="preprocess0")(s0, train)
        else:
            s0 = ReLUConvBN(self.C, 1, 1, 0, 1, affine=False, impl=self.impl, name="preprocess0")(s0, train)
        s1 = ReLUConvBN(self.C, 1, 1, 0, 1, affine=False, impl=self.impl, name="preprocess1")(s1, train)
        states = [s0, s1]
        edge_of = edge_index(self.steps)
        shared: dict[tuple[int, int], jax.Array] = {}

        def output(m, i, o):
            """The output of op o on input i for node m (shared over nodes with feature sharing)."""
            key = (i, o) if self.feature_sharing else (edge_of[(m, i)], o)
            if key not in shared:
                if gates is None:
                    gate = None
                elif self.feature_sharing:  # open if any later node reads input i through op o
                    gate = sum(gates[edge_of[(k, i)], o] for k in range(max(i - 1, 0), self.steps))
                else:
                    gate = gates[edge_of[(m, i)], o]
                stride = 2 if self.reduction and i < 2 else 1
                name = f"src{i}_{self.primitives[o]}" if self.feature_sharing else f"edge{key[0]}_{self.primitives[o]}"
                op = SourceOp(self.primitives[o], self.C, stride, self.impl, name=name)
                shared[key] = op(states[i], gate, train, gated=gates is not None)
            return shared[key]

        for m in range(self.steps):
            total = 0.0
            for i in range(m + 2):
                e = edge_of[(m, i)]
                for o, p in enumerate(self.primitives):
                    if p == "none":
                        continue  # contributes exactly zero
                    total = total + w[e, o] * output(m, i, o)
            states.append(total)
        return jnp.concatenate(states[-self.multiplier :], axis=-1)


class EnTranNetwork(nn.Module):
    """The EnTranNAS search network: the DARTS search network's skeleton (C=16, 8 cells, reductions at 1/3 and 2/3
    of the depth, stem multiplier 3) with :class:`EnTranCell` cells; ``engine_cells`` (None:
    :func:`default_engine_cells`) are Engine-cells, the others Transit-cells. ``derivation``: ``top2`` (EnTranNAS:
    softmax weights in, the DARTS rule derives the Transit-cells) or ``dst`` (EnTranNAS-DST: node-wise sparsemax
    weights in, every non-zero connection kept). Called as ``model(x, weights, train=...)`` like every supernet."""

    C: int = 16
    layers: int = 8
    num_classes: int = 10
    primitives: Sequence[str] = DARTS_PRIMITIVES
    steps: int = 4
    multiplier: int = 4
    stem_multiplier: int = 3
    impl: str | None = None
    engine_cells: tuple[int, ...] | None = None
    derivation: str = "top2"
    feature_sharing: bool = True

    def engines(self) -> tuple[int, ...]:
        cells = default_engine_cells(self.layers) if self.engine_cells is None else tuple(self.engine_cells)
        bad = [i for i in cells if not 0 <= i < self.layers]
        if bad:
            raise ValueError(f"EnTranNetwork: engine cells {bad} are not among the {self.layers} cells 0..{self.layers - 1}")
        return cells

    def roles(self) -> tuple[str, ...]:
        engines = self.engines()
        return tuple("engine" if i in engines else "transit" for i in range(self.layers))

    @nn.compact
    def __call__(self, x, weights, train: bool = True, hard: bool = False):
        if hard:
            raise ValueError("EnTranNetwork takes soft weights (softmax or DST); a hard relaxation (GDAS, SPOS) "
                             "is not part of EnTranNAS")
        if self.derivation not in DERIVATIONS:
            raise ValueError(f"EnTranNetwork: unknown derivation {self.derivation!r}; allowed: {', '.join(DERIVATIONS)}")
        n_edges = sum(2 + m for m in range(self.steps))
        shape = (n_edges, len(self.primitives))
        check_weights(weights, {"normal": shape, "reduce": shape}, "EnTranNetwork")
        check_image_batch(x, "EnTranNetwork", min_size=4)
        gates = {k: cell_gates(weights[k], self.derivation, self.steps, self.primitives) for k in ("normal", "reduce")}
        roles = self.roles()
        s = Conv(self.stem_multiplier * self.C, 3, padding=1, impl=self.impl, name="stem_conv")(x)
        s = BatchNorm(True, name="stem_bn")(s, use_running_average=not train)
        s0 = s1 = s
        C_curr, reduction_prev = self.C, False
        for i in range(self.layers):
            reduction = i in (self.layers // 3, 2 * self.layers // 3)
            if reduction:
                C_curr *= 2
            kind = "reduce" if reduction else "normal"
            cell = EnTranCell(C_curr, reduction, reduction_prev, tuple(self.primitives), self.steps, self.multiplier,
                              self.impl, self.feature_sharing, name=f"cell_{i}")
            if roles[i] == "transit":
                out = cell(s0, s1, gates[kind], gates[kind], train)
            elif self.derivation == "dst":
                out = cell(s0, s1, weights[kind], gates[kind], train)
            else:
                out = cell(s0, s1, weights[kind], None, train)
            s0, s1 = s1, out
            reduction_prev = reduction
        out = s1.mean(axis=(1, 2))
        return nn.Dense(self.num_classes, kernel_init=torch_default_init, name="classifier")(out)


# ----------------------------------------------------------------------------------------------------------------
# from the search network to the derived network


def _auto_names(cell: DartsCell, genotype: DartsGenotype, kind: str) -> tuple[str, str, list[str]]:
    """The names flax gives the preprocess of inputs 0 and 1 and the op of every gene of a :class:`DartsCell`
    (submodules are named ``<Class>_<n>`` in the order they are created)."""
    counts: dict[str, int] = {}

    def name_of(module_cls) -> str:
        n = counts.get(module_cls.__name__, 0)
        counts[module_cls.__name__] = n + 1
        return f"{module_cls.__name__}_{n}"

    pre0 = name_of(FactorizedReduce if cell.reduction_prev else ReLUConvBN)
    pre1 = name_of(ReLUConvBN)
    ops = []
    for op, inp in getattr(genotype, kind):
        stride = 2 if cell.reduction and inp < 2 else 1
        ops.append(name_of(type(make_op(op, cell.C, stride, True, cell.impl))))
    return pre0, pre1, ops


def _overwrite(target, source):
    """``target`` (a nested dict) with every leaf that ``source`` has at the same path replaced by it."""
    if not isinstance(target, dict):
        return source
    return {k: _overwrite(v, source[k]) if isinstance(source, dict) and k in source else v for k, v in target.items()}


def network_variables(search_variables: dict, network_variables_init: dict, genotype: DartsGenotype, layers: int,
                      C: int, feature_sharing: bool = True, steps: int = 4) -> dict:
    """The variables of the derived :class:`~jaxnas.nn.networks.NetworkCIFAR` (``network_variables_init``: its
    freshly initialised variables, same width and depth as the search network, no auxiliary head) with every conv
    kernel and batch statistic copied from the EnTranNAS search network's: stem, preprocessing, the op of every
    gene (from the shared op of its input with feature sharing, else from its edge's op) and the classifier. The
    affine BN parameters the search network lacks stay at their initial 1 and 0."""
    edge_of = edge_index(steps)
    out = {}
    for collection, net_tree in network_variables_init.items():
        src_tree = search_variables.get(collection, {})
        new = dict(net_tree)
        for name in ("stem_conv", "stem_bn", "classifier"):
            if name in new and name in src_tree:
                new[name] = _overwrite(new[name], src_tree[name])
        C_curr, reduction_prev = C, False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            kind = "reduce" if reduction else "normal"
            cell_name = f"cell_{i}"
            if cell_name not in new or cell_name not in src_tree:
                reduction_prev = reduction
                continue
            dcell = DartsCell(C_curr, tuple(getattr(genotype, kind)), (), reduction, reduction_prev)
            pre0, pre1, op_names = _auto_names(dcell, genotype, kind)
            target, source = dict(new[cell_name]), src_tree[cell_name]
            names = {pre0: "preprocess0", pre1: "preprocess1"}
            g = 0
            for m, pairs in enumerate(genotype.node_genes(kind)):
                for op, inp in pairs:
                    key = f"src{inp}_{op}" if feature_sharing else f"edge{edge_of[(m, inp)]}_{op}"
                    names[op_names[g]] = key
                    g += 1
            for dst_name, src_name in names.items():
                if dst_name in target and src_name in source:
                    piece = source[src_name]
                    piece = piece.get("op", piece) if isinstance(piece, dict) and src_name.startswith(("src", "edge")) \
                        else piece
                    target[dst_name] = _overwrite(target[dst_name], piece)
            new[cell_name] = target
            reduction_prev = reduction
        out[collection] = new
    return out


__all__ = ["DERIVATIONS", "EnTranCell", "EnTranNetwork", "ROLES", "SourceOp", "cell_gates", "default_engine_cells",
           "edge_index", "network_variables"]
