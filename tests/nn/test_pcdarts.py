"""PC-DARTS's supernet options: channel shuffle, partial channels (K=1 is the plain supernet; the bypassed channels
reach the output untouched), edge normalization (per-node softmax scales; the relaxation passes the edge logits
through) and the derivation that uses them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas import relax
from jaxnas.nn.supernet import DartsSearchCell, DartsSearchNetwork, MixedOp, NB201Supernet, channel_shuffle, node_edge_scales
from jaxnas.registry import get_space
from jaxnas.spaces import derive
from jaxnas.spaces.primitives import DARTS_PRIMITIVES


def test_channel_shuffle_interleaves_the_groups():
    x = jnp.arange(8.0).reshape(1, 1, 1, 8)
    np.testing.assert_array_equal(channel_shuffle(x, 4)[0, 0, 0], [0, 2, 4, 6, 1, 3, 5, 7])
    np.testing.assert_array_equal(channel_shuffle(x, 1), x)


@pytest.mark.parametrize("stride", [1, 2])
def test_partial_channels_bypass_the_mixed_op(stride):
    """With every op weight zero the mixed part is zero: the output is the shuffled [0, bypass]."""
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 6, 8))
    op = MixedOp(8, stride, DARTS_PRIMITIVES, partial=4, impl="xla")
    w = jnp.zeros((len(DARTS_PRIMITIVES),))
    variables = op.init(jax.random.PRNGKey(1), x, w, train=False)
    y = op.apply(variables, x, w, train=False)
    bypass = x[..., 2:]
    if stride == 2:
        bypass = jnp.max(bypass.reshape(2, 3, 2, 3, 2, 6), axis=(2, 4))
    expect = channel_shuffle(jnp.concatenate([jnp.zeros_like(bypass[..., :2]), bypass], -1), 4)
    np.testing.assert_allclose(y, expect, atol=1e-6)
    assert y.shape == (2, 6 // stride, 6 // stride, 8)
    with pytest.raises(ValueError, match="6 channels do not split into 4 parts"):
        MixedOp(6, 1, DARTS_PRIMITIVES, partial=4).init(jax.random.PRNGKey(1), x[..., :6], w, train=False)


def _apply(model, weights, x, variables=None):
    variables = variables or model.init(jax.random.PRNGKey(2), x, weights, train=False)
    return variables, model.apply(variables, x, weights, train=False)


@pytest.mark.slow
def test_k1_and_uniform_edges_are_the_plain_supernet():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
    nb201 = get_space("nb201")
    w = jax.nn.softmax(nb201.init_arch(jax.random.PRNGKey(3))["cell"] * 300, -1)
    plain = NB201Supernet(C=4, N=1, num_classes=5, impl="xla")
    variables, y = _apply(plain, {"cell": w}, x)
    _, y1 = _apply(NB201Supernet(C=4, N=1, num_classes=5, impl="xla", partial_channels=1), {"cell": w}, x, variables)
    np.testing.assert_array_equal(y1, y)
    # edge normalization with equal logits scales node j's edges by 1/j: the plain cell with those op weights
    normed = NB201Supernet(C=4, N=1, num_classes=5, impl="xla", edge_normalization=True)
    _, y2 = _apply(normed, {"cell": w, "cell_edges": jnp.zeros((6,))}, x, variables)
    scale = jnp.array([1, 1 / 2, 1 / 2, 1 / 3, 1 / 3, 1 / 3])[:, None]
    _, y3 = _apply(plain, {"cell": w * scale}, x, variables)
    np.testing.assert_allclose(y2, y3, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_darts_supernet_with_pc_options_runs_and_scales_sum_to_one_per_node():
    darts = get_space("darts", edge_normalization=True)
    arch = darts.init_arch(jax.random.PRNGKey(0))
    assert set(arch) == {"normal", "reduce", "normal_edges", "reduce_edges"}
    assert arch["normal"].shape == (14, 8) and arch["normal_edges"].shape == (14,)
    np.testing.assert_array_equal(arch["normal"], get_space("darts").init_arch(jax.random.PRNGKey(0))["normal"])
    scales = node_edge_scales(jnp.arange(14.0), (2, 3, 4, 5))
    np.testing.assert_allclose([scales[:2].sum(), scales[2:5].sum(), scales[5:9].sum(), scales[9:].sum()], 1.0,
                               rtol=1e-6)
    weights = relax.with_passthrough("softmax", darts.edge_keys)(arch)
    np.testing.assert_array_equal(weights["normal_edges"], arch["normal_edges"])  # passed through as they are
    np.testing.assert_allclose(weights["normal"].sum(-1), 1.0, rtol=1e-6)
    model = DartsSearchNetwork(C=4, layers=2, num_classes=4, impl="xla", partial_channels=4, edge_normalization=True)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 8, 3))
    y, _ = jax.eval_shape(lambda: model.init_with_output(jax.random.PRNGKey(2), x, weights, train=False))
    assert y.shape == (2, 4)  # the whole network wires the options (traced, not run: tests/runners run one)
    # one normal cell, run: finite, and unit edge scales are no scales
    cell = DartsSearchCell(4, False, False, partial=4, impl="xla")
    s0 = s1 = jax.random.normal(jax.random.PRNGKey(4), (2, 4, 4, 4))
    variables = cell.init(jax.random.PRNGKey(5), s0, s1, weights["normal"], train=False)
    out = cell.apply(variables, s0, s1, weights["normal"], train=False, scales=scales)
    assert out.shape == (2, 4, 4, 16) and np.all(np.isfinite(out))
    np.testing.assert_allclose(cell.apply(variables, s0, s1, weights["normal"], train=False, scales=jnp.ones(14)),
                               cell.apply(variables, s0, s1, weights["normal"], train=False), rtol=1e-6)
    with pytest.raises(ValueError, match="keys"):
        jax.eval_shape(lambda: model.init(jax.random.PRNGKey(2), x, {"normal": weights["normal"],
                                                                      "reduce": weights["reduce"]}, train=False))


def test_edge_logits_change_the_darts_derivation():
    """Node 1 (rows 2..4, inputs 0, 1, 2): by op weight inputs 1 and 2 win; an edge softmax that favours input 0
    strongly enough brings it in."""
    logits = np.zeros((14, 8))
    logits[3, 4] = logits[4, 4] = 1.0
    assert [i for _, i in derive.darts_top_k(logits, DARTS_PRIMITIVES)[2:4]] == [1, 2]
    edges = np.zeros(14)
    edges[2] = 5.0
    assert [i for _, i in derive.darts_top_k(logits, DARTS_PRIMITIVES, edge_logits=edges)[2:4]] == [0, 1]
    darts = get_space("darts", edge_normalization=True)
    g = darts.derive({"normal": logits, "reduce": logits, "normal_edges": edges, "reduce_edges": np.zeros(14)})
    assert [i for _, i in g.normal[2:4]] == [0, 1] and [i for _, i in g.reduce[2:4]] == [1, 2]
