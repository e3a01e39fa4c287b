"""Morphisms: every transform (and compositions) preserves the network's function; optimizer states carry over."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax.traverse_util import flatten_dict

from jaxnas.nn import grow
from jaxnas.search import morph
from jaxnas import relax
from jaxnas.search import OptimConfig, accuracy, cross_entropy, init_search_state, make_arch_optimizer, make_step, make_weight_optimizer

W_OPT = make_weight_optimizer(OptimConfig(), 100)
A_OPT = make_arch_optimizer(OptimConfig())


class TinySequenceModel(nn.Module):
    """The recurrent backbone unrolled over a short sequence, then a dense head (supernet calling convention)."""

    spec: grow.RecurrentSpec
    outputs: int = 2

    @nn.compact
    def __call__(self, x, weights, train: bool = True, hard: bool = False):
        cell = grow.GrowRecurrentCell(self.spec, name="rnn")
        carry = cell.initial_carry(x.shape[0])
        for t in range(x.shape[1]):
            carry, h = cell(carry, x[:, t], weights, train=train)
        return nn.Dense(self.outputs, name="head")(h)


def mse(pred, y):
    return jnp.mean((pred - y) ** 2)


# -- fixtures -------------------------------------------------------------------------------------------------------

CONV_X = jax.random.normal(jax.random.key(3), (3, 6, 6, 2))
CONV_Y = jnp.array([0, 1, 2])
RNN_X = jax.random.normal(jax.random.key(4), (3, 4, 3))
RNN_Y = jax.random.normal(jax.random.key(5), (3, 2))


def conv_model(spec):
    return grow.GrowConvNet(spec)


def rnn_model(spec):
    return TinySequenceModel(spec)


CONV_INIT = morph.initializer(conv_model, CONV_X)
RNN_INIT = morph.initializer(rnn_model, RNN_X)


def trained_state(spec, make_model, x, y, loss_fn, accuracy_fn, steps=2, seed=0):
    """A state after a couple of search steps, so that moments, BN statistics and arch logits are non-trivial."""
    model = make_model(spec)
    state = init_search_state(model, grow.init_arch(spec, jax.random.key(seed)), x, jax.random.key(seed + 1),
                              W_OPT, A_OPT)
    step = make_step(model, mode="bilevel-1st", w_optimizer=W_OPT, a_optimizer=A_OPT, loss_fn=loss_fn,
                     accuracy_fn=accuracy_fn)
    for _ in range(steps):
        state, _ = step(state, (x, y), (x, y))
    return state


def outputs(make_model, spec, state, x):
    model = make_model(spec)
    variables = {"params": state.params}
    if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
    w = relax.softmax(state.arch)
    train_out, _ = model.apply(variables, x, w, train=True, mutable=["batch_stats"])
    eval_out = model.apply(variables, x, w, train=False)
    return np.asarray(train_out), np.asarray(eval_out)


def assert_same_function(make_model, spec, state, spec2, state2, x, atol=1e-5):
    for before, after in zip(outputs(make_model, spec, state, x), outputs(make_model, spec2, state2, x)):
        np.testing.assert_allclose(after, before, atol=atol, rtol=0)


def assert_opt_state_carried(old_state, new_state, optimizer, params_old, params_new):
    """Same tree as a fresh init; leaves at unchanged paths keep their values; nothing is NaN."""
    fresh = optimizer.init(params_new)
    assert jax.tree_util.tree_structure(fresh) == jax.tree_util.tree_structure(new_state)
    for a, b in zip(jax.tree_util.tree_leaves(fresh), jax.tree_util.tree_leaves(new_state)):
        assert a.shape == b.shape and bool(jnp.all(jnp.isfinite(b)))


def momentum_tree(opt_state):
    """The SGD momentum trace inside the DARTS weight optimizer's state."""
    found = []

    def visit(x):
        if isinstance(x, optax.TraceState):
            found.append(x.trace)
        return x

    jax.tree_util.tree_map(visit, opt_state, is_leaf=lambda x: isinstance(x, optax.TraceState))
    assert len(found) == 1
    return flatten_dict(found[0])


# -- conv nets: every transform -------------------------------------------------------------------------------------

CONV_SPEC = grow.conv_net_spec(width=3, cells=2, nodes=1, ops=("none", "skip_connect", "avg_pool_3x3",
                                                             "sep_conv_3x3"), num_classes=3, reduce_after=(0,))
CONV_TRANSFORMS = {
    "add_op": lambda s, st: morph.add_op(s, st, CONV_INIT, cell=1, edge="n0_s0_e0", op="dil_conv_3x3"),
    "add_node": lambda s, st: morph.add_node(s, st, CONV_INIT, cell=0, ops=("skip_connect", "sep_conv_3x3")),
    "widen": lambda s, st: morph.widen(s, st, CONV_INIT, width=5, key=jax.random.key(7)),
    "deepen": lambda s, st: morph.deepen(s, st, CONV_INIT, position=1, ops=("skip_connect", "sep_conv_3x3")),
    "remove_none": lambda s, st: morph.remove_ops(s, st, CONV_INIT, removals={(0, "n0_s0_e0"): {"none"}}),
}


@pytest.fixture(scope="module")
def conv_state():
    return trained_state(CONV_SPEC, conv_model, CONV_X, CONV_Y, cross_entropy, accuracy)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONV_TRANSFORMS))
def test_conv_transform_preserves_function_and_trains_on(name, conv_state):
    spec2, state2 = CONV_TRANSFORMS[name](CONV_SPEC, conv_state)
    assert spec2 != CONV_SPEC
    assert_same_function(conv_model, CONV_SPEC, conv_state, spec2, state2, CONV_X)
    assert_opt_state_carried(conv_state.w_opt_state, state2.w_opt_state, W_OPT, conv_state.params, state2.params)
    assert_opt_state_carried(conv_state.a_opt_state, state2.a_opt_state, A_OPT, conv_state.arch, state2.arch)
    # the momentum of every parameter that kept its path and shape is carried unchanged
    old_m, new_m = momentum_tree(conv_state.w_opt_state), momentum_tree(state2.w_opt_state)
    old_p = flatten_dict(conv_state.params)
    carried = [p for p, v in flatten_dict(state2.params).items()
               if p in old_p and old_p[p].shape == v.shape and not (name == "deepen" and p[0] in ("cell1", "cell2"))]
    assert carried
    for p in carried:
        np.testing.assert_array_equal(new_m[p], old_m[p])
    # and the next step runs on the new shapes
    step = make_step(conv_model(spec2), mode="bilevel-1st", w_optimizer=W_OPT, a_optimizer=A_OPT)
    state3, metrics = step(state2, (CONV_X, CONV_Y), (CONV_X, CONV_Y))
    assert np.isfinite(float(metrics["loss"]))


def test_widen_copies_channels_and_starts_new_moments_at_zero(conv_state):
    spec2, state2 = CONV_TRANSFORMS["widen"](CONV_SPEC, conv_state)
    assert spec2.width == 5
    old_m, new_m = momentum_tree(conv_state.w_opt_state), momentum_tree(state2.w_opt_state)
    path = ("head", "kernel")
    assert new_m[path].shape == (5, 3)
    np.testing.assert_array_equal(new_m[path][:3], old_m[path])
    np.testing.assert_array_equal(new_m[path][3:], 0.0)
    # BN statistics of the stem are copied channel for channel
    mean_old = conv_state.batch_stats["stem_bn"]["mean"]
    mean_new = state2.batch_stats["stem_bn"]["mean"]
    np.testing.assert_array_equal(mean_new[:3], mean_old)
    assert set(np.asarray(mean_new[3:]).tolist()) <= set(np.asarray(mean_old).tolist())


def test_deepen_moves_the_later_cells_with_their_state(conv_state):
    spec2, state2 = CONV_TRANSFORMS["deepen"](CONV_SPEC, conv_state)
    assert len(spec2.cells) == 3 and spec2.reduce_after == (0,)
    np.testing.assert_array_equal(state2.arch["cell2"]["n0_s0_e0"], conv_state.arch["cell1"]["n0_s0_e0"])
    np.testing.assert_array_equal(state2.params["cell2"]["out"], conv_state.params["cell1"]["out"])


@pytest.mark.slow
def test_conv_composition_preserves_function(conv_state):
    spec, state = CONV_SPEC, conv_state
    for name in ("widen", "add_node", "remove_none"):
        spec, state = CONV_TRANSFORMS[name](spec, state)
    assert_same_function(conv_model, CONV_SPEC, conv_state, spec, state, CONV_X)


# -- the recurrent backbone: random specs, random compositions ---------------------------------------------------


def random_rnn_spec(rng: np.random.Generator) -> grow.RecurrentSpec:
    nodes = []
    for k in range(int(rng.integers(1, 3))):
        slots = []
        for _ in range(2):
            srcs = sorted(rng.choice(2 + k, size=int(rng.integers(1, 3 + k)), replace=False).tolist())
            edges = []
            for src in srcs:
                ops = rng.choice(grow.RNN_OPS, size=int(rng.integers(2, 5)), replace=False)
                edges.append(grow.EdgeSpec(int(src), tuple(str(o) for o in ops)))
            slots.append(tuple(edges))
        nodes.append(grow.NodeSpec(tuple(slots)))
    return grow.RecurrentSpec(int(rng.integers(2, 5)), grow.CellSpec(2, tuple(nodes)))


def random_rnn_transform(rng, spec, state):
    kind = rng.choice(["add_op", "add_node", "widen", "remove_none", "prune"])
    if kind == "add_op":
        for name, _, _, e in spec.cell.edges():
            missing = [o for o in grow.RNN_OPS if o not in e.ops]
            if missing:
                return kind, morph.add_op(spec, state, RNN_INIT, edge=name, op=str(rng.choice(missing)))
        kind = "add_node"
    if kind == "add_node":
        return kind, morph.add_node(spec, state, RNN_INIT, key=jax.random.key(int(rng.integers(1 << 30))))
    if kind == "widen":
        return kind, morph.widen(spec, state, RNN_INIT, width=spec.hidden + int(rng.integers(1, 4)),
                                 key=jax.random.key(int(rng.integers(1 << 30))))
    if kind == "remove_none":
        removals = {(0, name): {"none"} for name, _, _, e in spec.cell.edges() if "none" in e.ops and len(e.ops) > 1}
        return kind, (morph.remove_ops(spec, state, RNN_INIT, removals=removals) if removals else (spec, state))
    # prune at a threshold no op reaches after a couple of steps from near-uniform logits: only exact removals of
    # ops whose gate is 0 are guaranteed, so zero the gates of what will be pruned first (tested separately below)
    return "noop", (spec, state)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_rnn_random_compositions_preserve_function(seed):
    rng = np.random.default_rng(seed)
    spec = random_rnn_spec(rng)
    state = trained_state(spec, rnn_model, RNN_X, RNN_Y, mse, None, seed=seed)
    ref = outputs(rnn_model, spec, state, RNN_X)
    applied = []
    for _ in range(3):
        kind, (spec, state) = random_rnn_transform(rng, spec, state)
        applied.append(kind)
        for before, after in zip(ref, outputs(rnn_model, spec, state, RNN_X)):
            np.testing.assert_allclose(after, before, atol=1e-5, rtol=0, err_msg=f"after {applied}")
    step = make_step(rnn_model(spec), mode="single", w_optimizer=W_OPT, a_optimizer=A_OPT, loss_fn=mse,
                     accuracy_fn=None)
    _, metrics = step(state, (RNN_X, RNN_Y))
    assert np.isfinite(float(metrics["loss"]))


RNN_SPEC = grow.recurrent_spec(hidden=3, nodes=1)


@pytest.fixture(scope="module")
def rnn_state():
    return trained_state(RNN_SPEC, rnn_model, RNN_X, RNN_Y, mse, None)


def test_add_op_scales_gates_and_the_new_op_learns(rnn_state):
    edge = "n0_s0_e1"
    small = grow.recurrent_spec(hidden=3, nodes=1, ops=("none", "tanh", "sigmoid"))
    state = trained_state(small, rnn_model, RNN_X, RNN_Y, mse, None)
    spec2, state2 = morph.add_op(small, state, RNN_INIT, edge=edge, op="relu")
    assert spec2.cell.edge(edge).ops == ("none", "tanh", "sigmoid", "relu")
    gate = state2.params["rnn"]["cell"][edge]["gate"]
    assert float(gate[-1]) == 0.0
    w_old = jax.nn.softmax(state.arch[edge])
    w_new = jax.nn.softmax(state2.arch[edge])
    np.testing.assert_allclose(w_new[:3] * gate[:3], w_old * state.params["rnn"]["cell"][edge]["gate"], rtol=1e-6)
    np.testing.assert_allclose(float(w_new[-1]), 0.25, rtol=1e-5)  # default logit: a 1/(n+1) share
    step = make_step(rnn_model(spec2), mode="single", w_optimizer=W_OPT, a_optimizer=A_OPT, loss_fn=mse,
                     accuracy_fn=None)
    state3, _ = step(state2, (RNN_X, RNN_Y))
    assert float(state3.params["rnn"]["cell"][edge]["gate"][-1]) != 0.0  # it receives gradient at once


def test_add_node_output_weight_and_zero_gates(rnn_state):
    spec2, state2 = morph.add_node(RNN_SPEC, rnn_state, RNN_INIT)
    assert len(spec2.cell.nodes) == 2
    cell = state2.params["rnn"]["cell"]
    for name, node, _, _ in spec2.cell.edges():
        if node == 1:
            np.testing.assert_array_equal(cell[name]["gate"], 0.0)
            assert name in state2.arch
    out = cell["out"]
    np.testing.assert_allclose(out[1], np.mean(rnn_state.params["rnn"]["cell"]["out"]), rtol=1e-6)
    old_m, new_m = momentum_tree(rnn_state.w_opt_state), momentum_tree(state2.w_opt_state)
    np.testing.assert_array_equal(new_m[("rnn", "cell", "out")], np.append(old_m[("rnn", "cell", "out")], 0.0))


def test_prune_is_exact_for_zero_gates_and_drops_weak_ops(rnn_state):
    edge = "n0_s1_e0"
    logits = dict(rnn_state.arch)
    logits[edge] = jnp.array([3.0, 3.0, -4.0, -4.0, 2.0])  # tanh and sigmoid (about 4e-4) below a 0.01 threshold
    params = jax.tree_util.tree_map(lambda x: x, rnn_state.params)
    gate = params["rnn"]["cell"][edge]["gate"]
    params["rnn"]["cell"][edge]["gate"] = gate.at[2].set(0.0).at[3].set(0.0)
    state = rnn_state.replace(arch=logits, params=params)
    plan = morph.prune_plan(RNN_SPEC, state.arch, threshold=0.01)
    assert plan[(0, edge)] == {"tanh", "sigmoid"}
    spec2, state2 = morph.prune(RNN_SPEC, state, RNN_INIT, threshold=0.01)
    assert spec2.cell.edge(edge).ops == ("none", "identity", "relu")
    assert state2.arch[edge].shape == (3,)
    assert_same_function(rnn_model, RNN_SPEC, state, spec2, state2, RNN_X)


def test_prune_with_nothing_below_threshold_is_a_no_op(rnn_state):
    spec2, state2 = morph.prune(RNN_SPEC, rnn_state, RNN_INIT, threshold=1e-6)
    assert spec2 is RNN_SPEC and state2 is rnn_state


@pytest.mark.slow
def test_one_recompile_per_transform(rnn_state):
    traces = []

    def counted(spec):
        model = rnn_model(spec)
        step = make_step(model, mode="single", w_optimizer=W_OPT, a_optimizer=A_OPT, loss_fn=mse, accuracy_fn=None,
                         jit=False)

        def traced(state, batch):
            traces.append(spec)
            return step(state, batch)

        return jax.jit(traced)

    spec, state = RNN_SPEC, jax.tree_util.tree_map(jnp.array, rnn_state)
    for transform in (None, "add_node", "widen"):
        if transform == "add_node":
            spec, state = morph.add_node(spec, state, RNN_INIT)
        elif transform == "widen":
            spec, state = morph.widen(spec, state, RNN_INIT, width=5, key=jax.random.key(0))
        step = counted(spec)
        for _ in range(3):
            state, _ = step(state, (RNN_X, RNN_Y))
    assert len(traces) == 3  # one trace per shape, never one per step


def test_bad_transforms_raise_clear_errors(rnn_state):
    with pytest.raises(ValueError, match="already has op"):
        morph.add_op(RNN_SPEC, rnn_state, RNN_INIT, edge="n0_s0_e0", op="tanh")
    with pytest.raises(ValueError, match="no edge"):
        morph.add_op(RNN_SPEC, rnn_state, RNN_INIT, edge="n5_s0_e0", op="tanh")
    with pytest.raises(ValueError, match="above the current"):
        morph.widen(RNN_SPEC, rnn_state, RNN_INIT, width=2, key=jax.random.key(0))
    with pytest.raises(ValueError, match="conv net"):
        morph.deepen(RNN_SPEC, rnn_state, RNN_INIT, position=0)
    with pytest.raises(ValueError, match="threshold"):
        morph.prune(RNN_SPEC, rnn_state, RNN_INIT, threshold=1.5)
