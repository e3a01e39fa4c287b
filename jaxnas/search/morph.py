"""Function-preserving transforms of growable supernets: ``(spec, state) -> (spec', state')``.

``state`` is a :class:`jaxnas.search.SearchState` (parameters, BN statistics, architecture logits, both optimizer
states); ``spec`` a :class:`jaxnas.nn.grow.ConvNetSpec` or :class:`jaxnas.nn.grow.RecurrentSpec`. Every transform returns
a new spec and a state whose network computes the same function as before (up to float rounding), and whose optimizer
states are carried over: moments of kept entries keep their values, new entries start at zero, so the next step runs
without re-initialisation. The new shapes make the jitted step compile once more (once per transform).

=====================  ======================================================================================
transform              how it preserves the function
=====================  ======================================================================================
:func:`add_op`         the new op's gate is 0; its logit joins the edge's softmax, and the other ops' gates are
                       divided by ``1 - w_new`` so every ``w_i * gate_i`` is unchanged (exact under softmax, T=1)
:func:`add_node`       the new node's edges all have gate 0 (its output is 0); the cell output gives it weight
                       ``mean(out)`` so that it receives gradient at once
:func:`widen`          Net2Wider: new channels copy random old ones (conv filters, BN scale/bias/statistics,
                       biases); every consumer's incoming weights are split over the copies with random fractions
                       that sum to one (exact, and the copies are not symmetric, so they can diverge)
:func:`deepen`         a new single-node cell after ``position``: the ``skip_connect`` gate is ``1 / w_skip``, the
                       other gates 0, so the cell is the identity (conv nets)
:func:`prune`          drops ops (and edges) whose softmax weight is below a threshold; the kept ops' gates are
                       multiplied by the kept softmax mass, so only the dropped ``w_k * gate_k * op_k(x)`` is lost:
                       exact for ``none`` ops and zero gates, an approximation otherwise (:func:`remove_ops`)
=====================  ======================================================================================

A transform needs the network's initialiser for the new spec (fresh values for new parameters):
``init(spec, key) -> variables``; :func:`initializer` builds one from a model factory and a sample input.

Every transform is pure; the engine (:func:`rebuild`) maps each leaf of the new trees from a leaf of the old ones
(or takes it from the fresh initialisation), so transforms compose (see the tests, which check every transform and
compositions against the network's output).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

from jaxnas.nn import grow
from jaxnas.nn.grow import CellSpec, EdgeSpec, NodeSpec

Path = tuple[str, ...]
InitFn = Callable[[Any, jax.Array], dict]


# ----------------------------------------------------------------------------------------------------------------
# initialiser


def initializer(make_model: Callable[[Any], nn.Module], *sample_args, **static_kwargs) -> InitFn:
    """``init(spec, key) -> variables`` for ``make_model(spec).init(key, *sample_args, weights, train=False)``.

    ``weights`` are the uniform edge weights of the spec (the values of fresh parameters do not depend on them).
    """

    def init(spec, key):
        model = make_model(spec)
        weights = grow.uniform_weights(spec)
        fn = functools.partial(model.init, train=False, **static_kwargs)
        return jax.jit(fn)(key, *sample_args, weights)

    return init


def conv_initializer(sample_images, conv_impl: str | None = None) -> InitFn:
    """The initialiser of :class:`jaxnas.nn.grow.GrowConvNet` for images shaped like ``sample_images``."""
    return initializer(lambda spec: grow.GrowConvNet(spec, conv_impl), sample_images)


# ----------------------------------------------------------------------------------------------------------------
# the engine


@dataclasses.dataclass(frozen=True)
class Plan:
    """How the leaves of the new trees come from the old ones.

    ``locate(kind, new_path) -> old path | None`` (kind: ``params``, ``batch_stats`` or ``arch``; None: a fresh
    value from the initialiser). ``value(kind, path, old, fresh) -> new`` and ``moment(kind, path, old, fresh) ->
    new`` map a located old leaf (a parameter / an optimizer moment); the default copies it (shapes must agree).
    """

    locate: Callable[[str, Path], Path | None]
    value: Callable[[str, Path, Any, Any], Any] | None = None
    moment: Callable[[str, Path, Any, Any], Any] | None = None


def _copy(kind, path, old, fresh):
    if tuple(old.shape) != tuple(fresh.shape):
        raise ValueError(f"morph: {kind} leaf {'/'.join(path)} changes shape {tuple(old.shape)} -> "
                         f"{tuple(fresh.shape)} but the transform does not map it")
    return old


def _map_tree(kind, old_tree, fresh_tree, plan: Plan, moments: bool):
    old = flatten_dict(old_tree) if old_tree else {}
    fresh = flatten_dict(fresh_tree) if fresh_tree else {}
    fn = (plan.moment if moments else plan.value) or _copy
    out = {}
    for path, fresh_leaf in fresh.items():
        src = plan.locate(kind, path)
        if src is None or src not in old:
            out[path] = jnp.zeros_like(fresh_leaf) if moments else fresh_leaf
        else:
            # a copy: the new state owns its buffers (a donating step on it must not delete the old state's arrays)
            out[path] = jnp.array(fn(kind, path, old[src], fresh_leaf), fresh_leaf.dtype, copy=True)
    return unflatten_dict(out) if out else {}


def _map_opt_state(opt_state, kind, old_tree, fresh_tree, plan: Plan):
    """Replace every sub-tree of ``opt_state`` shaped like ``old_tree`` (moments, traces) by its carried version."""
    if opt_state is None:
        return None
    target = jax.tree_util.tree_structure(old_tree)

    def is_moment_tree(x):
        return isinstance(x, dict) and jax.tree_util.tree_structure(x) == target

    return jax.tree_util.tree_map(
        lambda sub: _map_tree(kind, sub, fresh_tree, plan, moments=True) if is_moment_tree(sub) else _own(sub),
        opt_state, is_leaf=is_moment_tree,
    )


def _own(leaf):
    """A copy of an array leaf (PRNG keys included), so that donating the new state leaves the old one intact."""
    if isinstance(leaf, jax.Array):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(jnp.array(jax.random.key_data(leaf), copy=True),
                                            impl=jax.random.key_impl(leaf))
        return jnp.array(leaf, copy=True)
    return leaf


def rebuild(state, fresh_variables: dict, fresh_arch: dict, plan: Plan):
    """The new :class:`SearchState` from the old one, fresh values for the new spec, and a :class:`Plan`."""
    fresh_params = fresh_variables["params"]
    fresh_bs = fresh_variables.get("batch_stats", {})
    params = _map_tree("params", state.params, fresh_params, plan, moments=False)
    batch_stats = _map_tree("batch_stats", state.batch_stats, fresh_bs, plan, moments=False)
    arch = _map_tree("arch", state.arch, fresh_arch, plan, moments=False)
    w_opt = _map_opt_state(state.w_opt_state, "params", state.params, fresh_params, plan)
    a_opt = _map_opt_state(state.a_opt_state, "arch", state.arch, fresh_arch, plan)
    return state.replace(params=params, batch_stats=batch_stats, arch=arch, w_opt_state=w_opt, a_opt_state=a_opt,
                         step=_own(state.step), key=_own(state.key))


def _fresh(spec, init: InitFn, key):
    k_init, k_arch = jax.random.split(key)
    return init(spec, k_init), grow.init_arch(spec, k_arch)


# ----------------------------------------------------------------------------------------------------------------
# locating a leaf in a growable network


def _edge_in_path(spec, path: Path) -> tuple[int, str, int] | None:
    """``(cell index, edge key, position of the key in path)`` when ``path`` lies inside an edge, else None."""
    for pos, comp in enumerate(path):
        if grow.parse_edge_key(comp) is not None:
            if spec.family == "conv":
                if pos == 1 and path[0].startswith("cell"):
                    return int(path[0][4:]), comp, pos
                return None
            return 0, comp, pos
    return None


def _is_out(spec, path: Path, cell: int) -> bool:
    if path[-1] != "out":
        return False
    if spec.family == "conv":
        return path == (f"cell{cell}", "out")
    return len(path) >= 2 and path[-2] == "cell"


def _edge_weights(arch_logits) -> np.ndarray:
    return np.asarray(jax.nn.softmax(jnp.asarray(arch_logits, jnp.float32)))


def _cell_logits(spec, arch, cell: int) -> dict:
    return grow.cell_arch(spec, arch, cell)


def _replace_cell(spec, index: int, cell: CellSpec):
    if spec.family == "conv":
        cells = list(spec.cells)
        cells[index] = cell
        return dataclasses.replace(spec, cells=tuple(cells))
    return dataclasses.replace(spec, cell=cell)


def _check_cell(spec, cell: int) -> CellSpec:
    if not 0 <= cell < len(spec.cells):
        raise ValueError(f"no cell {cell}: the spec has {len(spec.cells)} cell(s)")
    return spec.cells[cell]


# ----------------------------------------------------------------------------------------------------------------
# transforms


def add_op(spec, state, init: InitFn, *, edge: str, op: str, cell: int = 0, logit: float | None = None,
           key: jax.Array | None = None):
    """Add candidate ``op`` to ``edge`` (a key like ``'n0_s0_e1'``) of ``cell``.

    Its logit defaults to ``log(mean(exp(logits)))`` (the new op takes ``1/(n+1)`` of the edge's softmax); its gate
    starts at 0 and the other gates are divided by ``1 - w_new``.
    """
    cs = _check_cell(spec, cell)
    e = cs.edge(edge)
    if op in e.ops:
        raise ValueError(f"edge {edge} of cell {cell} already has op {op!r}")
    node, slot, src = grow.parse_edge_key(edge)
    new_edge = EdgeSpec(src, e.ops + (op,))
    nodes = list(cs.nodes)
    slots = [list(s) for s in nodes[node].slots]
    slots[slot] = [new_edge if x.src == src else x for x in slots[slot]]
    nodes[node] = NodeSpec(tuple(tuple(s) for s in slots))
    new_spec = _replace_cell(spec, cell, CellSpec(cs.n_inputs, tuple(nodes)))

    logits = np.asarray(_cell_logits(spec, state.arch, cell)[edge], np.float64)
    new_logit = float(np.log(np.mean(np.exp(logits - logits.max()))) + logits.max()) if logit is None else logit
    w_new = float(_edge_weights(np.append(logits, new_logit))[-1])
    scale = 1.0 / (1.0 - w_new)

    def is_target(kind, path):
        where = _edge_in_path(spec, path) if kind != "arch" else None
        if kind == "arch":
            return path == grow.cell_prefix(spec, cell) + (edge,)
        return where is not None and where[0] == cell and where[1] == edge and path[where[2] + 1:] == ("gate",)

    def value(kind, path, old, fresh):
        if is_target(kind, path):
            if kind == "arch":
                return jnp.append(old, new_logit)
            return jnp.append(old * scale, 0.0)
        return _copy(kind, path, old, fresh)

    def moment(kind, path, old, fresh):
        if is_target(kind, path):
            return jnp.append(old, 0.0)
        return _copy(kind, path, old, fresh)

    fresh_vars, fresh_arch = _fresh(new_spec, init, key if key is not None else jax.random.key(0))
    return new_spec, rebuild(state, fresh_vars, fresh_arch, Plan(lambda kind, p: p, value, moment))


def add_node(spec, state, init: InitFn, *, cell: int = 0, ops: tuple[str, ...] | None = None,
             key: jax.Array | None = None):
    """Append a node to ``cell`` that reads every earlier state (each slot, each edge with ``ops``; default: the
    family's op set). Its gates start at 0, so its output is 0 and the cell's function is unchanged."""
    cs = _check_cell(spec, cell)
    ops = tuple(ops) if ops is not None else grow.family_ops(spec)
    k = len(cs.nodes)
    n_slots = len(cs.nodes[0].slots)
    edges = tuple(EdgeSpec(src, ops) for src in range(cs.n_inputs + k))
    new_spec = _replace_cell(spec, cell, CellSpec(cs.n_inputs, cs.nodes + (NodeSpec(tuple(edges for _ in range(n_slots))),)))

    def new_gate(kind, path):
        where = _edge_in_path(new_spec, path)
        return (kind == "params" and where is not None and where[0] == cell
                and grow.parse_edge_key(where[1])[0] == k and path[where[2] + 1:] == ("gate",))

    def locate(kind, path):
        return None if new_gate(kind, path) else path

    def value(kind, path, old, fresh):
        if kind == "params" and _is_out(spec, path, cell):
            return jnp.append(old, jnp.mean(old))
        return _copy(kind, path, old, fresh)

    def moment(kind, path, old, fresh):
        if kind == "params" and _is_out(spec, path, cell):
            return jnp.append(old, 0.0)
        return _copy(kind, path, old, fresh)

    fresh_vars, fresh_arch = _fresh(new_spec, init, key if key is not None else jax.random.key(0))
    fresh_params = flatten_dict(fresh_vars["params"])
    fresh_params = {p: (jnp.zeros_like(v) if new_gate("params", p) else v) for p, v in fresh_params.items()}
    fresh_vars = dict(fresh_vars, params=unflatten_dict(fresh_params))
    return new_spec, rebuild(state, fresh_vars, fresh_arch, Plan(locate, value, moment))


def widen(spec, state, init: InitFn, *, width: int, key: jax.Array, split_noise: float = 0.1):
    """Net2Wider: grow every width-``C`` axis of the network to ``width``.

    New channel ``j >= C`` copies a random old channel ``g(j)``. Leaves named ``kernel`` widen their output axis
    (last) by copying and their input axis (second to last) by copying and splitting: copy ``j`` of channel ``c``
    gets fraction ``r_j`` of its weights, ``sum_j r_j = 1`` over the copies (``r`` uniform when ``split_noise=0``,
    else perturbed by up to ``split_noise`` relative, which keeps the function and breaks the copies' symmetry).
    Every other widened leaf (biases, BN scale/bias/statistics) copies. Depthwise kernels have input axis 1 and only
    copy. Optimizer moments keep their values on the old channels; new channels start at zero.
    """
    old_w = grow.width_of(spec)
    if isinstance(width, bool) or not isinstance(width, int) or width <= old_w:
        raise ValueError(f"widen: the new width must be an integer above the current {old_w}, got {width!r}")
    new_spec = (dataclasses.replace(spec, width=width) if spec.family == "conv"
                else dataclasses.replace(spec, hidden=width))
    k_map, k_split, k_fresh = jax.random.split(key, 3)
    mapping = np.concatenate([np.arange(old_w), np.asarray(jax.random.randint(k_map, (width - old_w,), 0, old_w))])
    noise = np.asarray(jax.random.uniform(k_split, (width,), minval=-split_noise, maxval=split_noise))
    frac = 1.0 + noise
    totals = np.zeros(old_w)
    np.add.at(totals, mapping, frac)
    split = frac / totals[mapping]  # sums to 1 over the copies of each old channel

    def widened_axes(path, old, fresh):
        axes = [a for a in range(old.ndim) if old.shape[a] != fresh.shape[a]]
        for a in axes:
            if (old.shape[a], fresh.shape[a]) != (old_w, width):
                raise ValueError(f"widen: leaf {'/'.join(path)} axis {a} goes {old.shape[a]} -> {fresh.shape[a]}, "
                                 f"not {old_w} -> {width}")
        return axes

    def value(kind, path, old, fresh):
        axes = widened_axes(path, old, fresh)
        out = jnp.asarray(old)
        for a in axes:
            out = jnp.take(out, jnp.asarray(mapping), axis=a)
            if path[-1] == "kernel" and a == old.ndim - 2:
                shape = [1] * old.ndim
                shape[a] = width
                out = out * jnp.asarray(split, out.dtype).reshape(shape)
        return out

    def moment(kind, path, old, fresh):
        axes = widened_axes(path, old, fresh)
        pad = [(0, fresh.shape[a] - old.shape[a]) if a in axes else (0, 0) for a in range(old.ndim)]
        return jnp.pad(jnp.asarray(old), pad)

    fresh_vars, fresh_arch = _fresh(new_spec, init, k_fresh)
    return new_spec, rebuild(state, fresh_vars, fresh_arch, Plan(lambda kind, p: p, value, moment))


def deepen(spec, state, init: InitFn, *, position: int, ops: tuple[str, ...] | None = None,
           key: jax.Array | None = None):
    """Insert a single-node cell at index ``position`` (0 = right after the stem) that is the identity.

    Its only edge reads the previous output with ``ops`` (default: the conv op set; must contain ``skip_connect``);
    the skip gate is ``1 / w_skip`` (softmax of the new logits), the other gates 0. Conv nets only: the recurrent
    backbone has a single cell.
    """
    if spec.family != "conv":
        raise ValueError("deepen inserts a cell into a conv net; the recurrent backbone has one cell (use add_node)")
    if not 0 <= position <= len(spec.cells):
        raise ValueError(f"deepen: position must be in 0..{len(spec.cells)}, got {position}")
    ops = tuple(ops) if ops is not None else grow.CONV_OPS
    if "skip_connect" not in ops:
        raise ValueError(f"deepen: the new cell needs skip_connect among its ops to start as the identity, got {ops}")
    new_cell = CellSpec(1, (NodeSpec(((EdgeSpec(0, ops),),)),))
    cells = spec.cells[:position] + (new_cell,) + spec.cells[position:]
    reduce_after = tuple(r + 1 if r >= position else r for r in spec.reduce_after)
    new_spec = dataclasses.replace(spec, cells=cells, reduce_after=reduce_after)

    def locate(kind, path):
        if not path or not path[0].startswith("cell"):
            return path
        i = int(path[0][4:])
        if i == position:
            return None
        return (f"cell{i - 1 if i > position else i}",) + path[1:]

    fresh_vars, fresh_arch = _fresh(new_spec, init, key if key is not None else jax.random.key(0))
    edge = grow.edge_key(0, 0, 0)
    w = _edge_weights(fresh_arch[f"cell{position}"][edge])
    skip = ops.index("skip_connect")
    gate = np.zeros(len(ops), np.float32)
    gate[skip] = 1.0 / w[skip]
    params = flatten_dict(fresh_vars["params"])
    params[(f"cell{position}", edge, "gate")] = jnp.asarray(gate)
    params[(f"cell{position}", "out")] = jnp.ones((1,), jnp.float32)
    fresh_vars = dict(fresh_vars, params=unflatten_dict(params))
    plan = Plan(locate, lambda kind, path, old, fresh: _copy(kind, path, old, fresh))
    return new_spec, rebuild(state, fresh_vars, fresh_arch, plan)


def remove_ops(spec, state, init: InitFn, *, removals: dict, key: jax.Array | None = None):
    """Remove candidate ops: ``removals = {(cell, edge key): {op, ...}}``; an edge left without ops is removed.

    The kept ops' gates are multiplied by the kept softmax mass of their edge, so each kept ``w_i * gate_i`` is
    unchanged; the function changes by the removed ``sum_k w_k * gate_k * op_k(x)`` (nothing for ``none`` ops or
    zero gates). A node may be left without edges (its output is then 0); nodes are never renumbered.
    """
    new_cells = list(spec.cells)
    kept_index: dict[tuple[int, str], list[int]] = {}
    mass: dict[tuple[int, str], float] = {}
    for (cell, edge), ops in removals.items():
        cs = _check_cell(spec, cell)
        e = cs.edge(edge)
        unknown = set(ops) - set(e.ops)
        if unknown:
            raise ValueError(f"remove_ops: edge {edge} of cell {cell} has no op(s) {sorted(unknown)}; it has {e.ops}")
        keep = [i for i, o in enumerate(e.ops) if o not in ops]
        kept_index[(cell, edge)] = keep
        mass[(cell, edge)] = float(_edge_weights(_cell_logits(spec, state.arch, cell)[edge])[keep].sum())
    for cell in range(len(spec.cells)):
        cs = spec.cells[cell]
        nodes = []
        for k, node in enumerate(cs.nodes):
            slots = []
            for s, slot in enumerate(node.slots):
                edges = []
                for e in slot:
                    keep = kept_index.get((cell, grow.edge_key(k, s, e.src)))
                    if keep is None:
                        edges.append(e)
                    elif keep:
                        edges.append(EdgeSpec(e.src, tuple(e.ops[i] for i in keep)))
                slots.append(tuple(edges))
            nodes.append(NodeSpec(tuple(slots)))
        new_cells[cell] = CellSpec(cs.n_inputs, tuple(nodes))
    new_spec = (dataclasses.replace(spec, cells=tuple(new_cells)) if spec.family == "conv"
                else dataclasses.replace(spec, cell=new_cells[0]))

    def target(kind, path):
        if kind == "arch":
            if spec.family == "conv" and len(path) == 2 and path[0].startswith("cell"):
                return int(path[0][4:]), path[1]
            if spec.family == "rnn" and len(path) == 1:
                return 0, path[0]
            return None
        where = _edge_in_path(spec, path)
        if where is not None and path[where[2] + 1:] == ("gate",):
            return where[0], where[1]
        return None

    def value(kind, path, old, fresh):
        t = target(kind, path)
        if t in kept_index:
            sel = jnp.asarray(old)[np.asarray(kept_index[t])]
            return sel * mass[t] if kind == "params" else sel
        return _copy(kind, path, old, fresh)

    def moment(kind, path, old, fresh):
        t = target(kind, path)
        if t in kept_index:
            return jnp.asarray(old)[np.asarray(kept_index[t])]
        return _copy(kind, path, old, fresh)

    fresh_vars, fresh_arch = _fresh(new_spec, init, key if key is not None else jax.random.key(0))
    return new_spec, rebuild(state, fresh_vars, fresh_arch, Plan(lambda kind, p: p, value, moment))


def prune_plan(spec, arch, threshold: float) -> dict:
    """Which ops :func:`prune` removes: every op whose softmax weight on its edge is below ``threshold``, and every
    edge whose strongest op other than ``none`` is below it (the whole edge), keeping in every slot its strongest
    edge and on every kept edge its strongest op."""
    removals = {}
    for cell, cs in enumerate(spec.cells):
        logits = _cell_logits(spec, arch, cell)
        for k, node in enumerate(cs.nodes):
            for s, slot in enumerate(node.slots):
                strength = {}
                for e in slot:
                    w = _edge_weights(logits[grow.edge_key(k, s, e.src)])
                    real = [w[i] for i, o in enumerate(e.ops) if o != "none"]
                    strength[e.src] = max(real) if real else 0.0
                best_src = max(strength, key=strength.get) if strength else None
                for e in slot:
                    name = grow.edge_key(k, s, e.src)
                    w = _edge_weights(logits[name])
                    if e.src != best_src and strength[e.src] < threshold:
                        removals[(cell, name)] = set(e.ops)
                        continue
                    drop = {o for i, o in enumerate(e.ops) if w[i] < threshold and i != int(np.argmax(w))}
                    if drop:
                        removals[(cell, name)] = drop
    return removals


def prune(spec, state, init: InitFn, *, threshold: float, key: jax.Array | None = None):
    """DARTS-style pruning during growth: :func:`remove_ops` with :func:`prune_plan`. Returns ``(spec, state)``
    unchanged when nothing falls below ``threshold``."""
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"prune: threshold must be in [0, 1), got {threshold}")
    removals = prune_plan(spec, state.arch, threshold)
    if not removals:
        return spec, state
    return remove_ops(spec, state, init, removals=removals, key=key)


def grow_step(spec, state, init: InitFn, *, key: jax.Array, max_nodes: int, max_width: int | None = None,
              width_step: int = 0, ops: tuple[str, ...] | None = None):
    """One growth of a growing search: a node for every cell below ``max_nodes``, then ``widen`` by
    ``width_step`` (up to ``max_width``; None: never widen). Returns ``(spec, state, applied)`` where ``applied``
    names each transform made (empty when everything is at its maximum)."""
    applied = []
    for i, cell in enumerate(spec.cells):
        if len(cell.nodes) < max_nodes:
            key, sub = jax.random.split(key)
            spec, state = add_node(spec, state, init, cell=i, ops=ops, key=sub)
            applied.append(f"add_node(cell {i})")
    width = grow.width_of(spec)
    if max_width is not None and width_step > 0 and width < max_width:
        new_width = min(max_width, width + width_step)
        key, sub = jax.random.split(key)
        applied.append(f"widen({width} -> {new_width})")
        spec, state = widen(spec, state, init, width=new_width, key=sub)
    return spec, state, applied


def prune_step(spec, state, init: InitFn, *, threshold: float):
    """:func:`prune` that also says what it did: ``(spec, state, applied)``."""
    plan = prune_plan(spec, state.arch, threshold)
    if not plan:
        return spec, state, []
    new_spec, new_state = remove_ops(spec, state, init, removals=plan)
    edges = lambda s: sum(1 for c in s.cells for _ in c.edges())  # noqa: E731
    return new_spec, new_state, [f"prune({sum(len(v) for v in plan.values())} ops on {len(plan)} edges, "
                                 f"{edges(spec) - edges(new_spec)} edges removed)"]


TRANSFORMS = {"add_op": add_op, "add_node": add_node, "widen": widen, "deepen": deepen, "prune": prune,
              "remove_ops": remove_ops}

__all__ = ["Plan", "TRANSFORMS", "add_node", "add_op", "conv_initializer", "deepen", "grow_step", "initializer",
           "prune", "prune_plan", "prune_step", "rebuild", "remove_ops", "widen"]
