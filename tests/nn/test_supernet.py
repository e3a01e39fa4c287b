import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.nn.costs import image_spec, profile
from jaxnas.spaces.genotypes import get_cnn_genotype
from jaxnas.nn.networks import init_variables
from jaxnas.registry import get_space
from jaxnas.nn.supernet import DartsSearchNetwork, NB201Supernet

X = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))


def _tiny(space_name, steps=2):
    # impl="xla" and 2-node DARTS cells keep compile times small; both implementations are compared op by op in
    # test_ops.py, and the full-size DARTS network is checked by its parameter count above
    if space_name == "nb201":
        return get_space("nb201"), NB201Supernet(C=4, N=1, num_classes=5, impl="xla")
    return get_space("darts", steps=steps), DartsSearchNetwork(C=4, layers=3, num_classes=5, steps=steps,
                                                              multiplier=steps, impl="xla")


def test_darts_search_network_has_the_published_size():
    space = get_space("darts")
    weights = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype),
                                     space.init_arch(jax.random.PRNGKey(0)))
    params, _ = profile(DartsSearchNetwork(C=16, layers=8, impl="xla"), image_spec(1, 32), weights, train=False)
    assert params == 1930618


@pytest.mark.slow
@pytest.mark.parametrize("space_name", ["nb201", "darts"])
def test_supernet_forward_and_arch_gradient(space_name):
    space, model = _tiny(space_name)
    arch = space.init_arch(jax.random.PRNGKey(1))
    weights = jax.tree_util.tree_map(lambda a: jax.nn.softmax(a, -1), arch)
    v = init_variables(model, jax.random.PRNGKey(2), X, weights, train=False)
    assert "params" in v and not any(k in jax.tree_util.keystr(p) for p, _ in
                                     jax.tree_util.tree_leaves_with_path(v) for k in ("alpha", "arch"))

    def loss(arch):
        w = jax.tree_util.tree_map(lambda a: jax.nn.softmax(a, -1), arch)
        y, _ = model.apply(v, X, w, train=True, mutable=["batch_stats"])
        return jnp.sum(y**2)

    g = jax.jit(jax.grad(loss))(arch)
    chex.assert_trees_all_equal_shapes(g, arch)
    chex.assert_tree_all_finite(g)
    assert all(float(jnp.abs(leaf).sum()) > 0 for leaf in jax.tree_util.tree_leaves(g))


@pytest.mark.slow
@pytest.mark.parametrize("space_name", ["nb201", "darts"])
def test_hard_weights_compute_only_the_chosen_op_and_agree_with_soft(space_name):
    space, model = _tiny(space_name)
    g = space.sample(jax.random.PRNGKey(3))
    onehot = space.one_hot_weights(g)
    v = init_variables(model, jax.random.PRNGKey(2), X, onehot, train=False)
    apply = jax.jit(lambda w, hard: model.apply(v, X, w, train=True, hard=hard, mutable=["batch_stats"])[0],
                    static_argnums=1)
    soft, hard = apply(onehot, False), apply(onehot, True)
    np.testing.assert_allclose(soft, hard, atol=1e-5)
    # every edge becomes a switch (lax.cond) over its ops instead of a sum of all of them
    jaxpr = str(jax.make_jaxpr(lambda w: model.apply(v, X, w, train=False, hard=True))(onehot))
    if space_name == "nb201":
        assert jaxpr.count("cond[") == 3 * 6  # 3 cells of 6 edges
    else:
        # DARTS groups a node's same-shaped edges; with one-hot weights each group is a loop over its edges whose
        # body is one switch: 2 groups in the normal cell (nodes of 2 and 3 edges), 3 in each of the 2 reduction
        # cells (node 0: its 2 strided input edges; node 1: those and the edge from node 0)
        assert jaxpr.count("cond[") == jaxpr.count("scan[") == 2 + 3 + 3


@pytest.mark.slow
@pytest.mark.parametrize("space_name", ["nb201", "darts"])
def test_changing_architecture_values_does_not_retrace(space_name):
    space, model = _tiny(space_name)
    arch = space.init_arch(jax.random.PRNGKey(1))
    v = init_variables(model, jax.random.PRNGKey(2), X, arch, train=False)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def forward(v, arch):
        return model.apply(v, X, jax.tree_util.tree_map(lambda a: jax.nn.softmax(a, -1), arch), train=False)

    chex.clear_trace_counter()
    for k in range(3):
        forward(v, space.init_arch(jax.random.PRNGKey(10 + k)))


def test_bad_weights_and_inputs_are_clear_errors():
    space, model = _tiny("nb201")
    arch = space.init_arch(jax.random.PRNGKey(1))
    with pytest.raises(ValueError, match=r"weights\['cell'\] must have shape \(6, 5\), got \(6, 4\)"):
        model.init(jax.random.PRNGKey(0), X, {"cell": jnp.zeros((6, 4))}, train=False)
    with pytest.raises(ValueError, match="must be a dict with keys \\['cell'\\]"):
        model.init(jax.random.PRNGKey(0), X, get_space("darts").init_arch(jax.random.PRNGKey(0)), train=False)
    with pytest.raises(ValueError, match="expected an NHWC image batch"):
        model.init(jax.random.PRNGKey(0), X[0], arch, train=False)
    with pytest.raises(ValueError, match="must be a dict with keys"):  # a genotype is not edge weights
        model.init(jax.random.PRNGKey(0), X, get_cnn_genotype("DARTS_V2"), train=False)


def _per_edge_to_grouped(cell_params, steps, reduction):
    """A ``"loop"`` cell's variables (``MixedOp_k`` per edge) in the grouped layout: one leading edge axis per group."""
    out = {k: v for k, v in cell_params.items() if not k.startswith("MixedOp_")}
    e = 0
    for node in range(steps):
        n_in = 2 + node
        cut = 2 if reduction else n_in
        for name, lo, hi in (("inputs", 0, cut), ("nodes", cut, n_in)):
            if hi > lo:
                edges = [cell_params[f"MixedOp_{e + i}"] for i in range(lo, hi)]
                out[f"node{node}_{name}"] = {"edge": jax.tree_util.tree_map(lambda *a: jnp.stack(a), *edges)}
        e += n_in
    return out


@pytest.mark.slow
@pytest.mark.parametrize("hard", [False, True], ids=["soft", "one-hot"])  # two tests: the workers share them
def test_grouped_edges_compute_what_per_edge_ops_compute(hard):
    # "vmap" runs soft weights batched and one-hot weights as "scan" (the same variables), so both paths are covered
    grouping = "vmap"
    space, loop = _tiny("darts")
    loop = loop.clone(edge_grouping="loop")
    grouped = loop.clone(edge_grouping=grouping)
    arch = space.init_arch(jax.random.PRNGKey(1))
    weights = jax.tree_util.tree_map(lambda a: jax.nn.softmax(a, -1), arch)
    v = init_variables(loop, jax.random.PRNGKey(2), X, weights, train=False)
    reductions = {1, 2}  # layers=3: reductions at 3 // 3 and 2 * 3 // 3
    v_grouped = {
        col: {name: (_per_edge_to_grouped(tree, 2, int(name.split("_")[1]) in reductions)
                     if name.startswith("cell_") else tree) for name, tree in v[col].items()}
        for col in v
    }
    chex.assert_trees_all_equal_shapes(
        v_grouped, init_variables(grouped, jax.random.PRNGKey(2), X, weights, train=False))

    def loss(model, variables, hard):
        def f(params, arch):
            w = jax.tree_util.tree_map(lambda a: jax.nn.softmax(a, -1), arch)
            if hard:  # straight-through one-hot weights, as GDAS's
                w = jax.tree_util.tree_map(lambda p: jax.nn.one_hot(jnp.argmax(p, -1), p.shape[-1]) - jax.lax.stop_gradient(p) + p, w)
            y, new = model.apply({**variables, "params": params}, X, w, train=True, hard=hard, mutable=["batch_stats"])
            return jnp.sum(y**2), new
        return jax.jit(jax.value_and_grad(f, argnums=(0, 1), has_aux=True))

    (l_loop, bs_loop), (gw_loop, ga_loop) = loss(loop, v, hard)(v["params"], arch)
    (l_grp, bs_grp), (gw_grp, ga_grp) = loss(grouped, v_grouped, hard)(v_grouped["params"], arch)
    np.testing.assert_allclose(l_grp, l_loop, rtol=1e-5)
    chex.assert_trees_all_close(ga_grp, ga_loop, rtol=1e-4, atol=1e-5)
    gw_loop = {name: (_per_edge_to_grouped(t, 2, int(name.split("_")[1]) in reductions)
                      if name.startswith("cell_") else t) for name, t in gw_loop.items()}
    chex.assert_trees_all_close(gw_grp, gw_loop, rtol=1e-4, atol=1e-4)  # gradients up to ~10: float rounding
    bs_loop = {name: (_per_edge_to_grouped(t, 2, int(name.split("_")[1]) in reductions)
                      if name.startswith("cell_") else t) for name, t in bs_loop["batch_stats"].items()}
    chex.assert_trees_all_close(bs_grp["batch_stats"], bs_loop, rtol=1e-5, atol=1e-6)


def test_unknown_edge_grouping_is_a_clear_error():
    space, model = _tiny("darts")
    w = jax.tree_util.tree_map(lambda a: jax.nn.softmax(a, -1), space.init_arch(jax.random.PRNGKey(1)))
    with pytest.raises(ValueError, match="edge_grouping must be one of vmap, scan, loop, got 'batched'"):
        model.clone(edge_grouping="batched").init(jax.random.PRNGKey(0), X, w, train=False)


@pytest.mark.slow
def test_nested_cells_compute_the_same_values_and_gradients():
    # soft weights only; one-hot weights (nn.switch inside the conditional) passed too, left out to save 100 s
    space, flat = _tiny("darts")
    nested, flat = flat.clone(nest_cells=True), flat.clone(nest_cells=False)
    arch = space.init_arch(jax.random.PRNGKey(1))
    weights = jax.tree_util.tree_map(lambda a: jax.nn.softmax(a, -1), arch)
    v = init_variables(flat, jax.random.PRNGKey(2), X, weights, train=False)
    chex.assert_trees_all_equal_structs(v, init_variables(nested, jax.random.PRNGKey(2), X, weights, train=False))

    def loss(model):
        def f(params, arch):
            w = jax.tree_util.tree_map(lambda a: jax.nn.softmax(a, -1), arch)
            y, new = model.apply({**v, "params": params}, X, w, train=True, mutable=["batch_stats"])
            return jnp.sum(y**2), new
        return jax.jit(jax.value_and_grad(f, argnums=(0, 1), has_aux=True))

    (l_flat, bs_flat), g_flat = loss(flat)(v["params"], arch)
    (l_nest, bs_nest), g_nest = loss(nested)(v["params"], arch)
    np.testing.assert_allclose(l_nest, l_flat, rtol=1e-5)
    chex.assert_trees_all_close(g_nest, g_flat, rtol=1e-4, atol=1e-5)
    chex.assert_trees_all_close(bs_nest, bs_flat, rtol=1e-5, atol=1e-6)
    text = jax.jit(lambda w: nested.apply(v, X, w, train=False)).lower(weights).as_text()
    assert text.count("stablehlo.case") == 3  # one per cell


@pytest.mark.slow
def test_nested_cells_give_nan_for_non_finite_weights():
    space, model = _tiny("darts")
    model = model.clone(nest_cells=True)
    w = jax.tree_util.tree_map(lambda a: jax.nn.softmax(a, -1), space.init_arch(jax.random.PRNGKey(1)))
    v = init_variables(model, jax.random.PRNGKey(2), X, w, train=False)
    w["normal"] = w["normal"].at[0, 0].set(jnp.nan)
    assert bool(jnp.all(jnp.isnan(model.apply(v, X, w, train=False))))


@pytest.mark.slow
def test_cpu_kernels_inside_the_supernet_compute_what_xla_computes():
    """The hand-written per-tap kernels (impl="shift" for every window kind: the CPU default's depthwise and pooling
    ones, with custom VJPs, and the dense shift conv), batched over a node's edges, give the tiny DARTS supernet the loss and gradients of XLA's own ops (the rest of
    the suite runs on XLA's: tests/conftest.py)."""
    space, model = _tiny("darts")
    arch = space.init_arch(jax.random.PRNGKey(1), scale=1.0)
    weights = jax.tree_util.tree_map(lambda a: jax.nn.softmax(a, -1), arch)
    results = []
    for impl in ("xla", "shift"):
        net = model.clone(impl=impl)
        v = init_variables(net, jax.random.PRNGKey(2), X, weights, train=False)

        def f(params, a, net=net, v=v):
            w = jax.tree_util.tree_map(lambda t: jax.nn.softmax(t, -1), a)
            y, _ = net.apply({**v, "params": params}, X, w, train=True, mutable=["batch_stats"])
            return jnp.sum(y**2)

        results.append(jax.jit(jax.value_and_grad(f, argnums=(0, 1)))(v["params"], arch))
    (l_xla, g_xla), (l_shift, g_shift) = results
    np.testing.assert_allclose(l_shift, l_xla, rtol=1e-5)
    chex.assert_trees_all_close(g_shift, g_xla, rtol=1e-4, atol=1e-4)
