"""Supernets: every edge holds every candidate op; the edge weights come in as a call argument.

``model.apply(variables, x, weights, train=True, hard=False)``, where ``weights`` has the structure of the space's
architecture parameters (``{'cell': (6, 5)}`` for NB201, ``{'normal': (14, 8), 'reduce': (14, 8)}`` for DARTS) and
holds edge weights (already relaxed: softmax, Gumbel, ...). The architecture parameters themselves never live in the
model, so DARTS, SNAS, GDAS, SPOS, single- and bi-level search all share one model.

With ``hard=True`` every edge's weight row must be one-hot (possibly straight-through): each edge then computes only
its chosen op (``nn.switch``) and scales it by that weight, so gradients still reach the architecture parameters.

TopoNAS (Huang et al.), DARTS supernet: ``topology_sizes`` takes one distribution over candidate topologies per node
(``weights['normal_topology']`` etc., relaxed like the op weights) and scales every edge by its probability of being
kept (:func:`topology_edge_scales`).

PC-DARTS (Xu et al., ICLR 2020), both supernets: ``partial_channels=K`` sends 1/K of an edge's channels through
its mixed op and the rest around it (max-pooled on a strided edge), then shuffles the channels in K groups (the
authors' code, K=4 on CIFAR); ``edge_normalization=True`` takes one more logit per edge (``weights['normal_edges']``
etc., raw: the relaxation passes them through, :func:`jaxnas.relax.with_passthrough`) and scales every edge's
output by its softmax over the node's incoming edges. ``partial_channels=1`` and no edge normalization are the
plain supernet.
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnas.spaces.derive import topology_membership
from jaxnas.spaces.primitives import DARTS_PRIMITIVES, NB201_PRIMITIVES
from jaxnas.nn.chain import Chain, Piece
from jaxnas.nn.ops import (
    BatchNorm, Conv, FactorizedReduce, ReLUConvBN, fence_cotangent, make_op,
    torch_default_init, tracing_conditional,
)


def check_image_batch(x, where: str, channels: int | None = None, min_size: int = 1):
    if x.ndim != 4:
        raise ValueError(f"{where}: expected an NHWC image batch (4 dims), got shape {tuple(x.shape)}")
    if channels is not None and x.shape[-1] != channels:
        raise ValueError(f"{where}: expected {channels} input channels (NHWC), got shape {tuple(x.shape)}")
    if x.shape[1] < min_size or x.shape[2] < min_size:
        raise ValueError(f"{where}: images must be at least {min_size}x{min_size}, got {x.shape[1]}x{x.shape[2]}")


def check_weights(weights, expected: dict[str, tuple[int, int]], where: str):
    if not isinstance(weights, dict) or set(weights) != set(expected):
        got = sorted(weights) if isinstance(weights, dict) else type(weights).__name__
        raise ValueError(f"{where}: edge weights must be a dict with keys {sorted(expected)}, got {got}")
    for k, shape in expected.items():
        if tuple(weights[k].shape) != shape:
            raise ValueError(f"{where}: edge weights[{k!r}] must have shape {shape}, got {tuple(weights[k].shape)}")


def channel_shuffle(x, groups: int):
    """PC-DARTS's channel shuffle (NHWC): channel ``g * (C / groups) + i`` moves to ``i * groups + g``."""
    *lead, c = x.shape
    return x.reshape(*lead, groups, c // groups).swapaxes(-1, -2).reshape(*lead, c)


def _max_pool_2x2(x):
    """2x2 max pooling with stride 2 (SAME padding: the size of a stride-2 op's output)."""
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "SAME")


class MixedOp(nn.Module):
    """One edge of a supernet: a weighted sum of all candidate ops (soft) or the one chosen op (hard).

    ``partial > 1`` (PC-DARTS): the ops see the first ``C / partial`` channels, the others bypass them (max-pooled
    on a strided edge), and the result is channel-shuffled in ``partial`` groups."""

    C: int
    stride: int
    primitives: Sequence[str]
    affine: bool = False
    pool_bn: bool = False
    impl: str | None = None
    partial: int = 1

    def setup(self):
        if self.partial < 1 or self.C % self.partial:
            raise ValueError(f"partial channels: {self.C} channels do not split into {self.partial} parts")
        self.ops = [make_op(p, self.C // self.partial, self.stride, self.affine, self.impl, self.pool_bn)
                    for p in self.primitives]

    def __call__(self, x, w, train: bool = True, hard: bool = False):
        if self.partial == 1:
            return self._mixed(x, w, train, hard)
        part = x.shape[-1] // self.partial
        bypass = x[..., part:]
        if self.stride == 2:
            bypass = _max_pool_2x2(bypass)
        y = jnp.concatenate([self._mixed(x[..., :part], w, train, hard), bypass], axis=-1)
        return channel_shuffle(y, self.partial)

    def _mixed(self, x, w, train, hard):
        if not hard:
            out = None
            for p, op, wi in zip(self.primitives, self.ops, w):
                if p == "none":
                    continue  # contributes exactly zero
                y = wi * op(x, train)
                out = y if out is None else out + y
            if out is None:
                out = self.ops[0](x, train)
            return out
        branches = [lambda mdl, x, i=i: mdl.ops[i](x, train) for i in range(len(self.ops))]
        if self.is_initializing():
            for branch in branches:  # create every op's variables, whatever is chosen
                branch(self, x)
        index = jnp.argmax(w)
        with tracing_conditional():  # the branches' convolutions in a form XLA:CPU runs fast inside a conditional
            return nn.switch(index, branches, self, x) * w[index]


def topology_edge_scales(topology_weights, counts, sizes):
    """TopoNAS: every edge's probability of being kept, the sum of the (relaxed) probabilities of its node's
    topologies that keep it (``topology_weights``: ``(nodes, topologies)``, one distribution per node)."""
    membership = jnp.asarray(topology_membership(tuple(counts), tuple(sizes)), topology_weights.dtype)
    return jnp.einsum("mt,mte->e", topology_weights, membership)


def node_edge_scales(edge_logits, counts):
    """PC-DARTS's edge normalization: the softmax of the edge logits within each node's incoming edges (``counts``
    edges per node, in order), one scale per edge."""
    scales, start = [], 0
    for n in counts:
        scales.append(jax.nn.softmax(edge_logits[start: start + n]))
        start += n
    return jnp.concatenate(scales)


class NB201SearchCell(nn.Module):
    """NB201 cell with a MixedOp on each of its 6 edges; node j = sum_i<j mixed(node_i) (each scaled by its edge
    scale when ``scales`` is given: edge normalization)."""

    C: int
    primitives: Sequence[str] = NB201_PRIMITIVES
    num_nodes: int = 4
    impl: str | None = None
    partial: int = 1

    @nn.compact
    def __call__(self, x, w, train: bool = True, hard: bool = False, scales=None):
        nodes = [fence_cotangent(x)]  # see DartsSearchCell
        e = 0
        for j in range(1, self.num_nodes):
            total = 0.0
            for i in range(j):
                y = MixedOp(self.C, 1, tuple(self.primitives), affine=False, impl=self.impl, partial=self.partial)(
                    nodes[i], w[e], train, hard
                )
                total = total + (y if scales is None else scales[e] * y)
                e += 1
            nodes.append(fence_cotangent(total))
        return nodes[-1]


class ResNetBasicBlock(nn.Module):
    """The NB201 reduction block: two ReLU-conv-BN 3x3 (first strided) + avg-pool/1x1-conv shortcut."""

    C_out: int
    stride: int = 2
    affine: bool = True
    impl: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        y = ReLUConvBN(self.C_out, 3, self.stride, 1, 1, self.affine, self.impl)(x, train)
        y = ReLUConvBN(self.C_out, 3, 1, 1, 1, self.affine, self.impl)(y, train)
        if self.stride == 2:
            n, h, w, c = x.shape
            if h % 2 or w % 2:
                raise ValueError(f"NB201 reduction block needs an even spatial size, got {h}x{w}")
            shortcut = x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
            shortcut = Conv(self.C_out, 1, impl=self.impl)(shortcut)
        elif x.shape[-1] != self.C_out:
            shortcut = ReLUConvBN(self.C_out, 1, 1, 0, 1, self.affine, self.impl)(x, train)
        else:
            shortcut = x
        return shortcut + y


class NB201Macro(nn.Module):
    """The NB201 macro skeleton: stem, 3 stages of N cells (C, 2C, 4C) joined by residual reduction blocks, head.

    ``cell(C, index)`` builds the cell module of a stage with C channels; it is called as ``cell(x, *cell_args)``.
    """

    C: int = 16
    N: int = 5
    num_classes: int = 10
    impl: str | None = None

    def body(self, x, train, run_cell):
        check_image_batch(x, type(self).__name__, min_size=4)
        x = Conv(self.C, 3, padding=1, impl=self.impl, name="stem_conv")(x)
        x = BatchNorm(True, name="stem_bn")(x, use_running_average=not train)
        index = 0
        for stage, mult in enumerate((1, 2, 4)):
            if stage:
                x = ResNetBasicBlock(self.C * mult, 2, impl=self.impl, name=f"reduce_{stage}")(x, train)
            for _ in range(self.N):
                x = run_cell(self.C * mult, index, x)
                index += 1
        x = nn.relu(BatchNorm(True, name="last_bn")(x, use_running_average=not train))
        x = x.mean(axis=(1, 2))
        return nn.Dense(self.num_classes, kernel_init=torch_default_init, name="classifier")(x)


class NB201Supernet(NB201Macro):
    """The NB201 search network (C=16, N=5 by default): every cell is an :class:`NB201SearchCell` sharing one
    set of edge weights ``{'cell': (6, len(primitives))}``."""

    primitives: Sequence[str] = NB201_PRIMITIVES
    partial_channels: int = 1
    edge_normalization: bool = False
    transit_cells: bool = False  # EnTranNAS: cells outside ``engine_cells`` run the derived cell only
    engine_cells: tuple[int, ...] | None = None  # None: the last cell (one per cell type, as on DARTS)

    def engines(self) -> tuple[int, ...]:
        if self.engine_cells is None:
            return (3 * self.N - 1,)
        bad = [i for i in self.engine_cells if not 0 <= i < 3 * self.N]
        if bad:
            raise ValueError(f"NB201Supernet: engine cells {bad} are not among the {3 * self.N} cells")
        return tuple(self.engine_cells)

    @nn.compact
    def __call__(self, x, weights, train: bool = True, hard: bool = False):
        expected = {"cell": (6, len(self.primitives)), **({"cell_edges": (6,)} if self.edge_normalization else {})}
        check_weights(weights, expected, "NB201Supernet")
        w = weights["cell"]
        scales = node_edge_scales(weights["cell_edges"], (1, 2, 3)) if self.edge_normalization else None
        if self.transit_cells:
            if hard:
                raise ValueError("NB201Supernet with Transit-cells takes soft weights (EnTranNAS's Engine-cells)")
            # the derived cell (argmax per edge, none included: the NB201 rule) as one-hot weights, run on the hard
            # path: every edge computes its one op, and a change of the derived cell does not recompile
            derived = jax.lax.stop_gradient(jax.nn.one_hot(jnp.argmax(w, axis=-1), w.shape[-1], dtype=w.dtype))
            engines = self.engines()

        def run_cell(C, index, h):
            cell = NB201SearchCell(C, tuple(self.primitives), impl=self.impl, partial=self.partial_channels,
                                   name=f"cell_{index}")
            if self.transit_cells and index not in engines:
                return cell(h, derived, train, True, scales)
            return cell(h, w, train, hard, scales)

        return self.body(x, train, run_cell)


EDGE_GROUPINGS = ("vmap", "scan", "loop")


class _GroupedEdge(nn.Module):
    """One edge of a group of same-shaped edges into a node: the body that ``nn.vmap`` or ``nn.scan`` lifts over the
    group's leading edge axis (its variables get that axis too). With ``carry=None`` (vmap) it returns the edge's
    output; with a running sum as the carry (scan) it adds the output to it."""

    C: int
    stride: int
    primitives: Sequence[str]
    impl: str | None
    train: bool
    hard: bool
    partial: int = 1

    @nn.compact
    def __call__(self, carry, xws):
        x, w, scale = xws
        y = MixedOp(self.C, self.stride, tuple(self.primitives), affine=False, pool_bn=True, impl=self.impl,
                    partial=self.partial, name="edge")(x, w, self.train, self.hard)
        if scale is not None:  # edge normalization; the plain supernet's program has no multiply here
            y = y * scale
        return (None, y) if carry is None else (carry + y, None)


_LIFT = dict(variable_axes={"params": 0, "batch_stats": 0}, split_rngs={"params": True})


def _edge_group(grouping: str, size: int, **fields):
    """The module that runs ``size`` same-shaped edges of a node at once; both liftings store the same variables."""
    if grouping == "vmap":
        return nn.vmap(_GroupedEdge, in_axes=0, out_axes=0, axis_size=size, **_LIFT)(**fields)
    return nn.scan(_GroupedEdge, in_axes=0, out_axes=0, length=size, **_LIFT)(**fields)


class DartsSearchCell(nn.Module):
    """DARTS search cell: preprocess both inputs to C channels, 4 nodes each summing MixedOps over all predecessors,
    output = concat of the last ``multiplier`` nodes.

    ``edge_grouping`` says how the edges into a node are computed; all three compute the same function:

    * ``"vmap"`` (default): the node's edges that read same-shaped inputs with the same stride (all of them in a
      normal cell; the inputs and the earlier nodes of a reduction cell) run as one batched op per candidate, over
      an edge axis. XLA then compiles and schedules 4-7 groups per cell instead of 14 edges.
    * ``"scan"``: the same groups, one edge after another in a loop (smaller programs, less parallel work).
    * ``"loop"``: every edge on its own, as the DARTS code does; its variables are named per edge (``MixedOp_k``).

    With ``hard=True`` (one op per edge) a ``"vmap"`` group runs as ``"scan"``: a batched conditional would compute
    every branch. ``"vmap"`` and ``"scan"`` store the same variables (one leading edge axis per group), so a model
    can be initialised in one and run in the other.
    """

    C: int
    reduction: bool
    reduction_prev: bool
    primitives: Sequence[str] = DARTS_PRIMITIVES
    steps: int = 4
    multiplier: int = 4
    impl: str | None = None
    edge_grouping: str = "vmap"
    partial: int = 1

    @nn.compact
    def __call__(self, s0, s1, w, train: bool = True, hard: bool = False, scales=None):
        """``scales``: one factor per edge (PC-DARTS's edge normalization), or None (no scaling)."""
        if self.edge_grouping not in EDGE_GROUPINGS:
            raise ValueError(f"edge_grouping must be one of {', '.join(EDGE_GROUPINGS)}, got {self.edge_grouping!r}")
        if self.reduction_prev:
            s0 = FactorizedReduce(self.C, affine=False, impl=self.impl)(s0, train)
        else:
            s0 = ReLUConvBN(self.C, 1, 1, 0, 1, affine=False, impl=self.impl)(s0, train)
        s1 = ReLUConvBN(self.C, 1, 1, 0, 1, affine=False, impl=self.impl)(s1, train)
        # each node's gradient is computed once, not fused into every op that reads the node (see fence_cotangent)
        states = [fence_cotangent(s0), fence_cotangent(s1)]
        e = 0
        for node in range(self.steps):
            if self.edge_grouping == "loop":
                total = 0.0
                for j, h in enumerate(states):
                    stride = 2 if self.reduction and j < 2 else 1
                    op = MixedOp(self.C, stride, tuple(self.primitives), affine=False, pool_bn=True, impl=self.impl,
                                 partial=self.partial)
                    y = op(h, w[e], train, hard)
                    total = total + (y if scales is None else scales[e] * y)
                    e += 1
            else:
                total = self._grouped_node(node, states, w[e : e + len(states)], train, hard,
                                           None if scales is None else scales[e : e + len(states)])
                e += len(states)
            states.append(fence_cotangent(total))
        return jnp.concatenate(states[-self.multiplier :], axis=-1)

    def _grouped_node(self, node, states, w, train, hard, scales):
        # a reduction cell's edges from its two inputs are strided, the others are not: two groups
        cut = 2 if self.reduction else len(states)
        grouping = "scan" if hard or self.edge_grouping == "scan" else "vmap"
        total = None
        for name, lo, hi, stride in (("inputs", 0, cut, 2 if self.reduction else 1), ("nodes", cut, len(states), 1)):
            if hi == lo:
                continue
            group = _edge_group(grouping, hi - lo, C=self.C, stride=stride, primitives=tuple(self.primitives),
                                impl=self.impl, train=train, hard=hard, partial=self.partial,
                                name=f"node{node}_{name}")
            xs = jnp.stack(states[lo:hi])
            sc = None if scales is None else scales[lo:hi]
            if grouping == "vmap":
                _, ys = group(None, (xs, w[lo:hi], sc))
                y = jnp.sum(ys, axis=0)
            else:
                n, h, wd, _ = states[lo].shape
                zero = jnp.zeros((n, -(-h // stride), -(-wd // stride), self.C), states[lo].dtype)
                y, _ = group(zero, (xs, w[lo:hi], sc))
            total = y if total is None else total + y
        return total


def _nested_cell(cell, s0, s1, w, train, hard, channels_out, stride, scales=None):
    """``cell(s0, s1, w)`` as the taken branch of a conditional, so that XLA compiles it as a nested computation.

    The other branch (taken only when an edge weight is not finite) returns NaNs, what the cell itself would give.
    """
    n, h, wd, _ = s1.shape
    shape = (n, -(-h // stride), -(-wd // stride), channels_out)  # ceil: a stride-2 window with padding 1

    def run(mdl, a, b, weights, sc):
        return mdl(a, b, weights, train, hard, sc)

    def poisoned(mdl, a, b, weights, sc):
        return jnp.full(shape, jnp.nan, b.dtype)

    finite = jnp.all(jnp.isfinite(w)) if scales is None else jnp.all(jnp.isfinite(w)) & jnp.all(jnp.isfinite(scales))
    with tracing_conditional():
        return nn.cond(finite, run, poisoned, cell, s0, s1, w, scales)


class DartsSearchNetwork(nn.Module):
    """The DARTS search network (C=16, 8 cells, reductions at 1/3 and 2/3 of the depth, stem multiplier 3).

    ``nest_cells=True`` runs every cell as the branch of a conditional, so that XLA:CPU compiles each cell's forward
    and backward as a nested program: XLA:CPU orders the kernels of a program by comparing every pair, and nesting
    keeps each sequence short, at a cost in speed. The default is flat (``None`` or ``False``): on CPU
    :func:`jaxnas.search.make_step` splits bi-level steps into programs of one gradient each instead
    (docs/cpu-performance.md has the figures). Results are the same either way.
    """

    C: int = 16
    layers: int = 8
    num_classes: int = 10
    primitives: Sequence[str] = DARTS_PRIMITIVES
    steps: int = 4
    multiplier: int = 4
    stem_multiplier: int = 3
    impl: str | None = None
    nest_cells: bool | None = None
    edge_grouping: str = "vmap"
    partial_channels: int = 1
    edge_normalization: bool = False
    topology_sizes: tuple[int, ...] | None = None  # TopoNAS: weights carry ``normal_topology`` / ``reduce_topology``

    def _nested(self) -> bool:
        return bool(self.nest_cells)

    def _edge_scales(self, weights):
        """Checks ``weights``; ``{'normal': scales or None, 'reduce': ...}``, one factor per edge."""
        n_edges = sum(2 + m for m in range(self.steps))
        expected = {"normal": (n_edges, len(self.primitives)), "reduce": (n_edges, len(self.primitives))}
        if self.edge_normalization:
            expected.update(normal_edges=(n_edges,), reduce_edges=(n_edges,))
        counts = tuple(2 + m for m in range(self.steps))
        if self.topology_sizes is not None:
            n_top = topology_membership(counts, tuple(self.topology_sizes)).shape[1]
            expected.update(normal_topology=(self.steps, n_top), reduce_topology=(self.steps, n_top))
        check_weights(weights, expected, "DartsSearchNetwork")
        if self.topology_sizes is not None:
            return {cell: topology_edge_scales(weights[f"{cell}_topology"], counts, self.topology_sizes)
                    for cell in ("normal", "reduce")}
        return {cell: node_edge_scales(weights[f"{cell}_edges"], counts) if self.edge_normalization else None
                for cell in ("normal", "reduce")}

    def _cells(self):
        """``(name, cell module, 'normal' or 'reduce')`` of every cell, in order (unbound modules)."""
        C_curr, reduction_prev, out = self.C, False, []
        for i in range(self.layers):
            reduction = i in (self.layers // 3, 2 * self.layers // 3)
            if reduction:
                C_curr *= 2
            cell = DartsSearchCell(
                C_curr, reduction, reduction_prev, tuple(self.primitives), self.steps, self.multiplier, self.impl,
                self.edge_grouping, self.partial_channels, parent=None,
            )
            out.append((f"cell_{i}", cell, "reduce" if reduction else "normal"))
            reduction_prev = reduction
        return out

    @nn.compact
    def __call__(self, x, weights, train: bool = True, hard: bool = False):
        scales = self._edge_scales(weights)
        check_image_batch(x, "DartsSearchNetwork", min_size=4)
        s = Conv(self.stem_multiplier * self.C, 3, padding=1, impl=self.impl, name="stem_conv")(x)
        s = BatchNorm(True, name="stem_bn")(s, use_running_average=not train)
        s0 = s1 = s
        for name, unbound, kind in self._cells():
            cell = unbound.clone(parent=self, name=name)
            w = weights[kind]
            if self.is_initializing() or not self._nested():
                out = cell(s0, s1, w, train, hard, scales[kind])
            else:
                out = _nested_cell(cell, s0, s1, w, train, hard, self.multiplier * cell.C, 2 if cell.reduction else 1,
                                   scales[kind])
            s0, s1 = s1, out
        out = s1.mean(axis=(1, 2))
        return nn.Dense(self.num_classes, kernel_init=torch_default_init, name="classifier")(out)

    def chain(self, hard: bool = False) -> Chain:
        """The network in training mode as a :class:`~jaxnas.nn.chain.Chain`: the stem, each cell, the head."""
        stem = functools.partial(_whole_piece, _Stem(self.stem_multiplier * self.C, self.impl, parent=None))
        pieces = [Piece(("stem_conv", "stem_bn"), stem, (0,))]
        for k, (name, cell, kind) in enumerate(self._cells()):
            # states: 0 the input, 1 the stem's output, k + 2 cell k's; cell k reads the two before it
            fn = functools.partial(_darts_cell_piece, self, name, cell, kind, hard)
            pieces.append(Piece((name,), fn, (max(k, 1), k + 1)))
        head = functools.partial(_whole_piece, _Head(self.num_classes, parent=None))
        pieces.append(Piece(("classifier",), head, (len(pieces),)))
        return Chain(tuple(pieces))


class _Stem(nn.Module):
    """The DARTS search network's stem, with its variable names (``stem_conv``, ``stem_bn``)."""

    C: int
    impl: str | None = None

    @nn.compact
    def __call__(self, x):
        s = Conv(self.C, 3, padding=1, impl=self.impl, name="stem_conv")(x)
        return BatchNorm(True, name="stem_bn")(s, use_running_average=False)


class _Head(nn.Module):
    """Global average pooling and the classifier (``classifier``)."""

    num_classes: int

    @nn.compact
    def __call__(self, s):
        return nn.Dense(self.num_classes, kernel_init=torch_default_init, name="classifier")(s.mean(axis=(1, 2)))


def _whole_piece(module, variables, *inputs_and_weights):
    """A piece whose module owns the piece's variable names as its children (``weights`` unused)."""
    out, updates = module.apply(variables, *inputs_and_weights[:-1], mutable=["batch_stats"])
    return out, dict(updates.get("batch_stats", {}))


def _darts_cell_piece(net, name, cell, kind, hard, variables, s0, s1, weights):
    inner = {col: tree[name] for col, tree in variables.items() if name in tree}
    out, updates = cell.apply(inner, s0, s1, weights[kind], True, hard, net._edge_scales(weights)[kind],
                              mutable=["batch_stats"])
    return out, {name: updates["batch_stats"]}
