import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas import relax
from jaxnas.spaces.genotypes import RnnGenotype, get_rnn_genotype
from jaxnas.spaces.primitives import RNN_PRIMITIVES
from jaxnas.nn.recurrent import DartsRnnCell, DartsRnnSearchCell, GRUCell, LSTMCell
from jaxnas.registry import get_space

H, B, D, T = 4, 2, 3, 3
space = get_space("darts-rnn")
small = get_space("darts-rnn", steps=3)  # 6 edges: compiles in a fraction of the time of the 36-edge cell


def soft_weights(seed=0, sp=small):
    arch = sp.init_arch(jax.random.PRNGKey(seed), scale=1.0)
    return relax.softmax(arch)


CELLS = {
    "search": (lambda: DartsRnnSearchCell(H, steps=3), soft_weights),
    "darts_v2": (lambda: DartsRnnCell(H, "DARTS_V2"), lambda: None),
    "sampled": (lambda: DartsRnnCell(H, space.sample(jax.random.PRNGKey(3))), lambda: None),
    "lstm": (lambda: LSTMCell(H), lambda: None),
    "gru": (lambda: GRUCell(H), lambda: None),
}


def inputs(seed=0, steps=T, batch=B):
    return jax.random.normal(jax.random.PRNGKey(100 + seed), (steps, batch, D))


def run_sequence(cell, variables, carry, xs, weights, hard=False):
    def step(carry, x):
        return cell.apply(variables, carry, x, weights, train=True, hard=hard)

    return jax.lax.scan(step, carry, xs)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_protocol(name):
    make, make_weights = CELLS[name]
    cell, weights = make(), make_weights()
    carry = cell.initial_carry(B)  # an unbound module: no params needed
    for leaf in jax.tree_util.tree_leaves(carry):
        chex.assert_shape(leaf, (B, H))
        assert leaf.dtype == jnp.float32 and not leaf.any()
    xs = inputs()
    variables = cell.init(jax.random.PRNGKey(0), carry, xs[0], weights)
    new_carry, h = cell.apply(variables, carry, xs[0], weights, train=True, hard=False)
    chex.assert_shape(h, (B, H))
    chex.assert_trees_all_equal_shapes_and_dtypes(new_carry, carry)
    # the carry goes round: a jitted scan over time equals step-by-step eager calls
    final, hs = jax.jit(run_sequence, static_argnums=0)(cell, variables, carry, xs, weights)
    chex.assert_shape(hs, (T, B, H))
    c = carry
    for t in range(T):
        c, h_t = cell.apply(variables, c, xs[t], weights)
        np.testing.assert_allclose(hs[t], h_t, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(final, c, rtol=1e-5, atol=1e-6)
    chex.assert_tree_all_finite(hs)
    assert float(jnp.abs(hs[-1] - hs[0]).max()) > 0  # the state moves


def init_search(cell, weights, seed=0):
    return cell.init(jax.random.PRNGKey(seed), cell.initial_carry(B), inputs()[0], weights)


def test_hard_equals_soft_for_one_hot_weights():
    cell = DartsRnnSearchCell(H, steps=3)
    carry0 = jax.random.normal(jax.random.PRNGKey(7), (B, H))
    xs = inputs()
    variables = init_search(cell, soft_weights())
    # exactly one-hot (a genotype) and straight-through one-hot (argmax relaxation of random logits)
    straight = relax.argmax(small.init_arch(jax.random.PRNGKey(5), scale=1.0))
    for weights in (small.one_hot_weights(small.sample(jax.random.PRNGKey(1))), straight):
        soft = run_sequence(cell, variables, carry0, xs, weights, hard=False)
        hard = run_sequence(cell, variables, carry0, xs, weights, hard=True)
        chex.assert_trees_all_close(hard, soft, rtol=1e-5, atol=1e-6)


def search_params_to_derived(search_params, steps):
    """The derived cell's parameters from the search cell's: W0 and every node's W_i keep their names."""
    return {"init": search_params["init"], **{f"node_{i}": search_params[f"node_{i}"] for i in range(1, steps + 1)}}


@pytest.mark.parametrize("genotype", ["DARTS_V2", "sampled"])
@pytest.mark.parametrize("hard", [False, True])
def test_search_cell_with_genotype_weights_equals_derived_cell(genotype, hard):
    sp = space if genotype == "DARTS_V2" else small
    g = sp.sample(jax.random.PRNGKey(11)) if genotype == "sampled" else sp.parse(genotype)
    weights = sp.one_hot_weights(g)
    search = DartsRnnSearchCell(H, steps=sp.steps)
    derived = DartsRnnCell(H, g)
    search_vars = init_search(search, weights, seed=1)
    derived_shapes = jax.eval_shape(derived.init, jax.random.PRNGKey(0), derived.initial_carry(B), inputs()[0])
    derived_vars = {"params": search_params_to_derived(search_vars["params"], len(g.recurrent))}
    chex.assert_trees_all_equal_shapes_and_dtypes(derived_vars, derived_shapes)
    carry0 = jax.random.normal(jax.random.PRNGKey(2), (B, H))
    xs = inputs(seed=4, steps=4)
    got = run_sequence(search, search_vars, carry0, xs, weights, hard=hard)
    want = run_sequence(derived, derived_vars, carry0, xs, None)
    chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-6)


def reference_darts_cell(params, genotype, h_prev, x):
    """The DARTS recurrent cell equations written out in numpy (float64)."""
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    acts = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0), "sigmoid": sig, "identity": lambda v: v}
    kernel = lambda name: np.asarray(params[name]["kernel"], np.float64)  # noqa: E731
    h_prev, x = np.asarray(h_prev, np.float64), np.asarray(x, np.float64)
    ch = np.concatenate([x, h_prev], -1) @ kernel("init")
    states = [h_prev + sig(ch[:, :H]) * (np.tanh(ch[:, H:]) - h_prev)]
    for i, (act, pred) in enumerate(genotype.recurrent, start=1):
        s = states[pred]
        ch = s @ kernel(f"node_{i}")
        states.append(s + sig(ch[:, :H]) * (acts[act](ch[:, H:]) - s))
    return np.mean([states[k] for k in genotype.concat], axis=0)


@pytest.mark.parametrize("genotype", [get_rnn_genotype("DARTS_V2"), RnnGenotype((("relu", 0), ("identity", 0),
                                                                                   ("sigmoid", 2)), (0, 2, 3))])
def test_derived_cell_matches_the_written_out_equations(genotype):
    cell = DartsRnnCell(H, genotype, init_range=0.5)
    h_prev = jax.random.normal(jax.random.PRNGKey(0), (B, H))
    x = inputs()[0]
    variables = cell.init(jax.random.PRNGKey(1), h_prev, x)
    carry, h = cell.apply(variables, h_prev, x)
    np.testing.assert_allclose(h, reference_darts_cell(variables["params"], genotype, h_prev, x), rtol=1e-5,
                               atol=1e-6)
    assert carry is h


def count(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(tree))


def test_darts_v2_parameter_count_at_ptb_size():
    # DARTS PTB: hidden = embedding = 850. W0: (850 + 850) x 1700 = 2,890,000; 8 node matrices 850 x 1700 =
    # 8 x 1,445,000 = 11,560,000; no biases: 14,450,000 (plus the 10,000 x 850 embedding: the paper's 23M).
    cell = DartsRnnCell(850, "DARTS_V2")
    shapes = jax.eval_shape(cell.init, jax.random.PRNGKey(0), cell.initial_carry(1), jnp.zeros((1, 850)))
    assert count(shapes) == 14_450_000
    search = DartsRnnSearchCell(850)
    shapes = jax.eval_shape(search.init, jax.random.PRNGKey(0), search.initial_carry(1), jnp.zeros((1, 850)),
                            space.one_hot_weights(space.parse("DARTS_V2")))
    assert count(shapes) == 14_450_000  # the search cell shares W_i across a node's predecessors


@pytest.mark.parametrize("make, gates", [(LSTMCell, 4), (GRUCell, 3)])
def test_baseline_parameter_counts_match_pytorch(make, gates):
    cell = make(H)
    shapes = jax.eval_shape(cell.init, jax.random.PRNGKey(0), cell.initial_carry(B), inputs()[0])
    assert count(shapes) == gates * (D * H + H * H + 2 * H)


def test_lstm_and_gru_match_the_written_out_equations():
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    x = np.asarray(inputs()[0], np.float64)
    h0 = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (B, H)), np.float64)
    c0 = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (B, H)), np.float64)

    def affine(p, name, v):
        return v @ np.asarray(p[name]["kernel"], np.float64) + np.asarray(p[name]["bias"], np.float64)

    lstm = LSTMCell(H)
    p = lstm.init(jax.random.PRNGKey(3), (c0, h0), x)["params"]
    (c, h), out = lstm.apply({"params": p}, (jnp.asarray(c0, jnp.float32), jnp.asarray(h0, jnp.float32)),
                             jnp.asarray(x, jnp.float32))
    i, f, g, o = np.split(affine(p, "input", x) + affine(p, "hidden", h0), 4, -1)
    c_ref = sig(f) * c0 + sig(i) * np.tanh(g)
    np.testing.assert_allclose(c, c_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, sig(o) * np.tanh(c_ref), rtol=1e-5, atol=1e-6)
    assert out is h

    gru = GRUCell(H)
    p = gru.init(jax.random.PRNGKey(4), h0, x)["params"]
    h, _ = gru.apply({"params": p}, jnp.asarray(h0, jnp.float32), jnp.asarray(x, jnp.float32))
    a_r, a_z, a_n = np.split(affine(p, "input", x), 3, -1)
    b_r, b_z, b_n = np.split(affine(p, "hidden", h0), 3, -1)
    r, z = sig(a_r + b_r), sig(a_z + b_z)
    np.testing.assert_allclose(h, (1 - z) * np.tanh(a_n + r * b_n) + z * h0, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("hard", [False, True])
def test_search_cell_gradients_reach_params_and_architecture(hard):
    cell = DartsRnnSearchCell(H, steps=3)
    relaxation = relax.hard_gumbel if hard else relax.softmax
    arch = small.init_arch(jax.random.PRNGKey(0), scale=1.0)
    variables = init_search(cell, relaxation(arch, jax.random.PRNGKey(1)))
    xs = inputs(steps=3)

    def loss(params, arch):
        weights = relaxation(arch, jax.random.PRNGKey(1))
        _, hs = run_sequence(cell, {"params": params}, cell.initial_carry(B), xs, weights, hard=hard)
        return jnp.sum(hs**2)

    g_params, g_arch = jax.jit(jax.grad(loss, argnums=(0, 1)))(variables["params"], arch)
    chex.assert_tree_all_finite((g_params, g_arch))
    assert float(jnp.abs(g_arch["rnn"]).sum()) > 0
    # a node all of whose sampled edges are `none` has no say in the output (hard); every other matrix learns
    chosen = np.asarray(relaxation(arch, jax.random.PRNGKey(1))["rnn"]).argmax(-1)
    for i in range(1, 4):
        active = any(small.primitives[chosen[small.edge_index(j, i)]] != "none" for j in range(i))
        assert (float(jnp.abs(g_params[f"node_{i}"]["kernel"]).sum()) > 0) == (active or not hard)
    assert float(jnp.abs(g_params["init"]["kernel"]).sum()) > 0


def test_changing_weight_values_does_not_retrace():
    cell = DartsRnnSearchCell(H, steps=3)
    weights = relax.softmax(small.init_arch(jax.random.PRNGKey(0)))
    x = inputs()[0]
    variables = cell.init(jax.random.PRNGKey(0), cell.initial_carry(B), x, weights)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(weights):
        return cell.apply(variables, cell.initial_carry(B), x, weights, hard=True)[1]

    for seed in range(3):
        step(small.one_hot_weights(small.sample(jax.random.PRNGKey(seed))))


def test_small_search_cell_has_triangular_edges():
    cell = DartsRnnSearchCell(H, steps=3, primitives=("tanh", "identity"))
    weights = {"rnn": jnp.full((6, 2), 0.5)}
    variables = cell.init(jax.random.PRNGKey(0), cell.initial_carry(B), inputs()[0], weights)
    assert sorted(variables["params"]) == ["init", "node_1", "node_2", "node_3"]
    assert cell.apply(variables, cell.initial_carry(B), inputs()[0], weights)[1].shape == (B, H)


@pytest.mark.parametrize(
    "weights, match",
    [
        (None, "edge weights must be .*'rnn'.*got NoneType"),
        ({"cell": jnp.zeros((36, 5))}, "got keys \\['cell'\\]"),
        ({"rnn": jnp.zeros((36, 5)), "extra": jnp.zeros(1)}, "got keys"),
        ({"rnn": jnp.zeros((14, 5))}, "shape \\(36, 5\\).*got \\(14, 5\\)"),
        ({"rnn": jnp.zeros((36, 8))}, "shape \\(36, 5\\).*got \\(36, 8\\)"),
        ({"rnn": [[0.2] * 5] * 36}, "must be an array.*got list"),
    ],
)
def test_bad_weights_are_one_clear_error(weights, match):
    cell = DartsRnnSearchCell(H)
    with pytest.raises(ValueError, match=match):
        cell.init(jax.random.PRNGKey(0), cell.initial_carry(B), inputs()[0], weights)


def test_bad_inputs_and_carry_are_clear_errors():
    cell = GRUCell(H)
    with pytest.raises(ValueError, match="x_t must be one time step"):
        cell.init(jax.random.PRNGKey(0), cell.initial_carry(B), inputs())
    with pytest.raises(ValueError, match="hidden carry must have shape \\(2, 4\\)"):
        cell.init(jax.random.PRNGKey(0), cell.initial_carry(3), inputs()[0])
    with pytest.raises(ValueError, match="carry must be a \\(c, h\\) pair"):
        LSTMCell(H).init(jax.random.PRNGKey(0), jnp.zeros((B, H)), inputs()[0])
    with pytest.raises(ValueError, match="unknown recurrent op"):
        DartsRnnSearchCell(H, primitives=RNN_PRIMITIVES + ("gelu",)).init(
            jax.random.PRNGKey(0), jnp.zeros((B, H)), inputs()[0], {"rnn": jnp.zeros((36, 6))})
    bad = RnnGenotype((("relu", 0), ("tanh", 3)), (1, 2))
    with pytest.raises(ValueError, match="predecessor must be in 0..1, got 3"):
        DartsRnnCell(H, bad).init(jax.random.PRNGKey(0), jnp.zeros((B, H)), inputs()[0])
    with pytest.raises(ValueError, match="unknown published recurrent genotype 'DARTS_V9'"):
        DartsRnnCell(H, "DARTS_V9").init(jax.random.PRNGKey(0), jnp.zeros((B, H)), inputs()[0])
