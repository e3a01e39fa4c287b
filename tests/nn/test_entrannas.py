"""EnTranNAS's network: Transit-cells are the derived cell, DST's search network is the derived network, no recompile
when the derived cell changes, feature sharing shares."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas import relax
from jaxnas.nn.entrannas import EnTranNetwork, default_engine_cells, network_variables
from jaxnas.nn.networks import NetworkCIFAR, init_variables
from jaxnas.spaces import DartsSpace

SPACE = DartsSpace()
ALLOWED = [p != "none" for p in SPACE.primitives]
C, LAYERS = 4, 3  # cells 1 and 2 reduce
X = jax.random.normal(jax.random.key(2), (2, 8, 8, 3))


def spread_arch(seed):
    """Architecture parameters far enough apart for DST to drop connections."""
    return SPACE.init_arch(jax.random.key(seed), scale=1.0)


def gene_scales(weights, genotype, kind):
    """The DST weight of every gene of ``kind``, in the genotype's order."""
    edge = {e: k for k, e in enumerate(SPACE.edges)}
    return jnp.asarray([weights[kind][edge[(m + 2, i)], SPACE.primitives.index(op)]
                        for m, pairs in enumerate(genotype.node_genes(kind)) for op, i in pairs])


@pytest.fixture(scope="module")
def shared_variables():
    """The variables of the feature-sharing network (the same tree whatever the derivation and the Engine-cells):
    initialising a DARTS-space network compiles for half a minute on CPU, so the tests share one."""
    net = EnTranNetwork(C=C, layers=LAYERS)
    return init_variables(net, jax.random.key(3), X, relax.softmax(spread_arch(1)), train=False)


def derived_pair(net, weights, genotype, variables=None):
    if variables is None:
        variables = init_variables(net, jax.random.key(3), X, weights, train=False)
    ref = NetworkCIFAR(genotype, C=C, layers=net.layers, num_classes=10)
    copied = network_variables(variables, init_variables(ref, jax.random.key(9), X, train=False), genotype,
                               net.layers, C, net.feature_sharing)
    return variables, ref, copied


def run(model, variables, *args, train=False, **kwargs):
    """``model.apply`` jitted (eager flax conditionals are slow); the output only (logits of NetworkCIFAR)."""
    mutable = ["batch_stats"] if train else False
    out = jax.jit(lambda v, *a: model.apply(v, X, *a, train=train, mutable=mutable, **kwargs))(variables, *args)
    out = out[0] if train else out
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("sharing", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_transit_cells_compute_the_derived_cells(sharing, shared_variables):
    """With every cell a Transit-cell, the search network is NetworkCIFAR of the DARTS-rule genotype (top-2 edges
    per node) with the same parameters, in training and in evaluation mode (one op per edge: one reduction cell,
    14 x 7 ops compile slowly)."""
    arch = spread_arch(1)
    weights = relax.softmax(arch)
    net = EnTranNetwork(C=C, layers=LAYERS if sharing else 1, engine_cells=(), feature_sharing=sharing)
    genotype = SPACE.derive(arch)
    variables, ref, copied = derived_pair(net, weights, genotype, shared_variables if sharing else None)
    np.testing.assert_allclose(run(net, variables, weights), run(ref, copied), rtol=1e-5, atol=1e-7)
    if sharing:
        np.testing.assert_allclose(run(net, variables, weights, train=True), run(ref, copied, train=True), rtol=1e-4,
                                   atol=1e-6)


def test_dst_search_network_is_the_derived_network(shared_variables):
    """EnTranNAS-DST: Engine-cells (weighted by the sparsemax weights) and Transit-cells together equal the derived
    network (every non-zero connection, any number per node) with copied parameters, the Engine-cells' genes
    scaled by their weights."""
    arch = spread_arch(4)
    weights = relax.dst(SPACE.node_counts, ALLOWED)(arch)
    genotype = SPACE.derive(arch, rule="dst")
    assert max(genotype.fan_in("normal") + genotype.fan_in("reduce")) > 2  # a node with three or more inputs
    net = EnTranNetwork(C=C, layers=LAYERS, engine_cells=(0, 2), derivation="dst")
    variables, ref, copied = derived_pair(net, weights, genotype, shared_variables)
    scales = {0: gene_scales(weights, genotype, "normal"), 2: gene_scales(weights, genotype, "reduce")}
    np.testing.assert_allclose(run(net, variables, weights), run(ref, copied, cell_scales=scales), rtol=1e-5,
                               atol=1e-7)
    # and the zero-weight connections pass no gradient: the architecture gradient is zero off the support
    def loss(a):
        return net.apply(variables, X, relax.dst(SPACE.node_counts, ALLOWED)(a), train=False).sum()

    grad = jax.jit(jax.grad(loss))(arch)
    for kind in ("normal", "reduce"):
        off = np.asarray(weights[kind]) == 0
        assert np.all(np.asarray(grad[kind])[off & np.asarray(ALLOWED)[None, :]] == 0)


def test_a_new_derived_cell_runs_without_recompiling(shared_variables):
    """The derived sub-graph enters as traced gates: two architectures with different derived cells run through
    one compiled program, each equal to its own derived network; Transit-cells give the architecture no gradient."""
    net = EnTranNetwork(C=C, layers=LAYERS, engine_cells=())
    apply = jax.jit(lambda v, w: net.apply(v, X, w, train=False))
    variables = shared_variables
    for seed in (1, 5):
        arch = spread_arch(seed)
        weights = relax.softmax(arch)
        genotype = SPACE.derive(arch)
        ref = NetworkCIFAR(genotype, C=C, layers=LAYERS, num_classes=10)
        copied = network_variables(variables, init_variables(ref, jax.random.key(9), X, train=False), genotype,
                                   LAYERS, C)
        np.testing.assert_allclose(apply(variables, weights), run(ref, copied), rtol=1e-5, atol=1e-7)
    assert SPACE.derive(spread_arch(1)) != SPACE.derive(spread_arch(5))
    assert apply._cache_size() == 1
    grad = jax.jit(jax.grad(lambda a: net.apply(variables, X, relax.softmax(a), train=False).sum()))(spread_arch(1))
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree_util.tree_leaves(grad))


def test_feature_sharing_keeps_one_op_per_input_node():
    weights = relax.softmax(spread_arch(1))
    shapes = {sharing: jax.eval_shape(lambda: EnTranNetwork(C=C, layers=LAYERS, feature_sharing=sharing).init(
        jax.random.key(0), X, weights, train=False))["params"]["cell_0"] for sharing in (True, False)}
    shared, per_edge = shapes[True], shapes[False]
    parametric = [p for p in SPACE.primitives if "conv" in p]
    assert len([k for k in shared if k.startswith("src")]) == 5 * len(parametric)  # inputs 0, 1 and nodes 2..4
    assert len([k for k in per_edge if k.startswith("edge")]) == 14 * len(parametric)


def test_engine_cell_placement():
    assert default_engine_cells(8) == (5, 7)  # the last reduction cell and the last normal cell
    assert EnTranNetwork(layers=8).roles() == ("transit",) * 5 + ("engine", "transit", "engine")
    with pytest.raises(ValueError, match="engine cells \\[9\\] are not among the 8 cells"):
        EnTranNetwork(layers=8, engine_cells=(9,)).roles()
    with pytest.raises(ValueError, match="soft weights"):
        EnTranNetwork(C=C, layers=LAYERS).init(jax.random.key(0), X, relax.softmax(spread_arch(1)), hard=True)
