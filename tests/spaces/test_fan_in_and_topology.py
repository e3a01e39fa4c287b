"""Genotypes with any number of inputs per node, EnTranNAS-DST's and TopoNAS's derivations, and cell width/depth."""

import itertools
import json
from math import comb

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas import relax
from jaxnas.nn.supernet import topology_edge_scales
from jaxnas.search.regularizers import passive_aggressive
from jaxnas.spaces import DartsSpace, NB201Space
from jaxnas.spaces.genotypes import DartsGenotype, get_cnn_genotype
from jaxnas.spaces.graph import CellGraph, GraphEdge, GraphNode, cell_shape

SPACE = DartsSpace()
CONCAT = (2, 3, 4, 5)
# node 0: one input, node 1: three, node 2: one, node 3: two
WIDE = (("sep_conv_3x3", 0), ("sep_conv_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 2), ("dil_conv_3x3", 1),
        ("avg_pool_3x3", 3), ("sep_conv_5x5", 4))
FAN_IN = (1, 3, 1, 2)


def fan_in_genotype():
    return DartsGenotype(WIDE, CONCAT, WIDE, CONCAT, FAN_IN, FAN_IN)


def test_fan_in_genotypes_validate_round_trip_and_group_by_node():
    g = SPACE.validate(fan_in_genotype())
    assert g.node_genes("normal")[1] == (("sep_conv_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 2))
    data = SPACE.to_json(g)
    assert data["normal_fan_in"] == [1, 3, 1, 2]
    assert SPACE.from_json(json.loads(json.dumps(data))) == g
    assert SPACE.parse(SPACE.format(g)) == g
    # two per node is the DARTS layout: both spellings are one genotype, and the JSON stays as before
    v2 = get_cnn_genotype("DARTS_V2")
    spelled = DartsGenotype(v2.normal, v2.normal_concat, v2.reduce, v2.reduce_concat, (2,) * 4, (2,) * 4)
    assert spelled == v2 and "normal_fan_in" not in SPACE.to_json(spelled)
    # the encoding counts every gene on its edge; the cell graph has one op edge per gene
    code = SPACE.encode(g).reshape(2, SPACE.num_edges, -1)
    assert code.sum() == 2 * len(WIDE)
    normal_graph = SPACE.cell_graphs(g)[0]
    assert len(normal_graph.op_edges) == len(WIDE)
    assert sorted(e.src for e in normal_graph.op_edges if e.dst == "s3") == ["s0", "s1", "s2"]


@pytest.mark.parametrize("fan_in, message", [
    ((1, 3, 1, 1), "adds up to 6 pairs, but normal has 7"),
    ((0, 4, 1, 2), "counts of at least 1"),
    ((1, 3, 3), "must give 4 counts"),
])
def test_bad_fan_in_is_one_clear_error(fan_in, message):
    with pytest.raises(ValueError, match=message):
        SPACE.validate(DartsGenotype(WIDE, CONCAT, WIDE, CONCAT, fan_in, FAN_IN))


def test_a_repeated_connection_and_an_unreachable_input_are_refused():
    twice = (("sep_conv_3x3", 0), ("sep_conv_3x3", 0)) + WIDE[2:]
    with pytest.raises(ValueError, match="repeats an \\(op, input\\) pair"):
        SPACE.validate(DartsGenotype(twice, CONCAT, WIDE, CONCAT, (2, 2, 1, 2), FAN_IN))
    ahead = (("sep_conv_3x3", 2),) + WIDE[1:]
    with pytest.raises(ValueError, match="feeds node 2, so its input must be in 0..1"):
        SPACE.validate(DartsGenotype(ahead, CONCAT, WIDE, CONCAT, FAN_IN, FAN_IN))
    with pytest.raises(ValueError, match="DARTS layout"):
        SPACE.mutate(jax.random.key(0), fan_in_genotype())


def brute_force_simplex_projection(z):
    """Sparsemax by bisection on the threshold: sum(max(z - tau, 0)) = 1."""
    lo, hi = z.min() - 1.0, z.max()
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.maximum(z - mid, 0).sum() > 1 else (lo, mid)
    return np.maximum(z - (lo + hi) / 2, 0)


def test_sparsemax_is_the_projection_onto_the_simplex():
    rng = np.random.default_rng(0)
    for scale in (0.01, 1.0, 10.0):
        z = rng.normal(size=12) * scale
        got = np.asarray(relax.sparsemax(jnp.asarray(z, jnp.float32)))
        np.testing.assert_allclose(got, brute_force_simplex_projection(z), atol=1e-5)
        assert abs(got.sum() - 1) < 1e-5
    assert np.asarray(relax.sparsemax(jnp.asarray([3.0, 0.0, -jnp.inf]))).tolist() == [1.0, 0.0, 0.0]


def test_dst_derivation_keeps_exactly_the_non_zero_connections():
    arch = SPACE.init_arch(jax.random.key(3), scale=1.0)
    weights = SPACE.dst_weights(arch)
    for cell in ("normal", "reduce"):
        start = 0
        for n in SPACE.node_counts:  # one distribution per node over its (input, op) pairs, none excluded
            block = weights[cell][start : start + n]
            assert abs(block.sum() - 1) < 1e-5 and np.all(block[:, SPACE.primitives.index("none")] == 0)
            start += n
    g = SPACE.derive(arch, rule="dst")
    code = SPACE.encode(g).reshape(2, SPACE.num_edges, -1)
    for c, cell in enumerate(("normal", "reduce")):
        np.testing.assert_array_equal(code[c] > 0, weights[cell] > 0)
        assert sum(g.fan_in(cell)) == int((weights[cell] > 0).sum())
    # a lower temperature keeps fewer connections; the relaxation of a step computes the same weights
    assert sum(SPACE.derive(arch, rule="dst", temperature=0.1).fan_in("normal")) <= sum(g.fan_in("normal"))
    relaxed = relax.dst(SPACE.node_counts, [p != "none" for p in SPACE.primitives])(arch, None, 0.1)
    np.testing.assert_array_equal(np.asarray(relaxed["normal"]), SPACE.dst_weights(arch, 0.1)["normal"])


def test_toponas_distribution_over_topologies():
    space = DartsSpace(topology=True)
    assert [len(t) for t in space.topologies()] == [comb(n, 2) for n in space.node_counts]  # 1, 3, 6, 10
    arch = space.init_arch(jax.random.key(0))
    assert arch["normal_topology"].shape == (4, 10)
    for name in ("softmax", "gumbel", "hard_gumbel"):
        r = relax.get_relaxation(name)
        w = r(arch, jax.random.key(1), 1.0)
        probs = np.asarray(w["normal_topology"])
        np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
        for m, subsets in enumerate(space.topologies()):  # padding topologies get nothing
            assert np.all(probs[m, len(subsets):] == 0)
        if r.stochastic:  # reproducible from the key, another key another sample
            again = np.asarray(r(arch, jax.random.key(1), 1.0)["normal_topology"])
            other = np.asarray(r(arch, jax.random.key(2), 1.0)["normal_topology"])
            assert np.array_equal(probs, again) and not np.array_equal(probs, other)
    # an edge's kept-probability sums its node's topologies that keep it: two edges kept per node on average
    gamma = np.asarray(topology_edge_scales(jnp.asarray(probs), space.node_counts, space.topology_sizes))
    start = 0
    for n in space.node_counts:
        assert abs(gamma[start : start + n].sum() - 2) < 1e-5
        start += n


def test_toponas_derives_the_most_probable_topology():
    space = DartsSpace(topology=True, topology_sizes=(1, 2, 3))
    arch = {k: np.array(v) for k, v in space.init_arch(jax.random.key(0)).items()}
    subsets = space.topologies()
    wanted = [(1,), (0, 2), (0, 1, 3), (4,)]
    for cell in ("normal", "reduce"):
        for m, kept in enumerate(wanted):
            arch[f"{cell}_topology"][m, subsets[m].index(kept)] = 5.0
    g = space.derive(arch, rule="topology")
    assert g.fan_in("normal") == (1, 2, 3, 1)
    assert [tuple(i for _, i in pairs) for pairs in g.node_genes("normal")] == wanted
    space.validate(g)
    with pytest.raises(ValueError, match="needs a space with topology=True"):
        SPACE.derive(arch, rule="topology")
    with pytest.raises(ValueError, match="edge normalization"):
        DartsSpace(topology=True, edge_normalization=True)


def test_passive_aggressive_term():
    space = DartsSpace(topology=True)
    counts, sizes, n_top = space.node_counts, space.topology_sizes, 10
    one_hot = {f"{c}_topology": jax.nn.one_hot(jnp.zeros(4, int), n_top) for c in ("normal", "reduce")}
    assert float(passive_aggressive(one_hot, counts, sizes)) == 0.0  # only the derived topology: nothing to press
    # node 1 (3 predecessors, topologies {0,1}, {0,2}, {1,2}) split 0.5 / 0.5 between its first two: edge 2 is kept
    # with probability 0.5 outside the leading topology {0,1}; edge 1 is too, inside the other topology
    probs = np.zeros((4, n_top), np.float32)
    probs[:, 0] = 1.0
    probs[1, :3] = [0.5, 0.5, 0.0]
    split = {"normal_topology": jnp.asarray(probs), "reduce_topology": one_hot["reduce_topology"]}
    assert float(passive_aggressive(split, counts, sizes)) == pytest.approx(0.5)


def chain(labels):
    """A DARTS-style graph: ``labels[m]`` = the (op, input) pairs of node m+2, output concatenating nodes 2..."""
    nodes = [GraphNode("s0", "a", "input"), GraphNode("s1", "b", "input")]
    nodes += [GraphNode(f"s{m + 2}", str(m)) for m in range(len(labels))]
    nodes.append(GraphNode("out", "out", "output"))
    edges = [GraphEdge(f"s{i}", f"s{m + 2}", op) for m, pairs in enumerate(labels) for op, i in pairs]
    edges += [GraphEdge(f"s{m + 2}", "out") for m in range(len(labels))]
    return CellGraph("cell", nodes, edges)


def test_width_and_depth_of_hand_made_cells():
    conv = "sep_conv_3x3"
    wide = chain([[(conv, 0), (conv, 1)]] * 4)  # every node reads the inputs
    assert cell_shape(wide).to_json() == {"width": 4.0, "depth": 2}
    deep = chain([[(conv, 0), (conv, 1)], [(conv, 2), (conv, 1)], [(conv, 3), (conv, 1)], [(conv, 4), (conv, 1)]])
    assert cell_shape(deep).to_json() == {"width": 2.5, "depth": 5}  # 1 + three nodes half fed by an input
    only_nodes = chain([[(conv, 0)], [(conv, 2)], [(conv, 3), ("none", 0)], [(conv, 4)]])  # a none edge connects nothing
    assert cell_shape(only_nodes).to_json() == {"width": 1.0, "depth": 5}
    # DARTS_V2's normal cell: three nodes on the inputs, one half on node 2 (width 3.5c), longest path 3
    assert cell_shape(SPACE.cell_graphs(get_cnn_genotype("DARTS_V2"))[0]).to_json() == {"width": 3.5, "depth": 3}
    nb = NB201Space()
    full = nb.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    assert cell_shape(nb.cell_graphs(full)[0]).to_json() == {"width": round(1 + 1 / 2 + 1 / 3, 4), "depth": 3}
    direct = nb.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")  # nodes 1, 2 lead nowhere
    assert cell_shape(nb.cell_graphs(direct)[0]).to_json() == {"width": 1.0, "depth": 1}
    empty = nb.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert cell_shape(nb.cell_graphs(empty)[0]).to_json() == {"width": 0.0, "depth": 0}


def test_every_nb201_cell_has_a_shape():
    nb = NB201Space()
    shapes = {(s.width, s.depth) for g in itertools.islice(nb.enumerate(), 0, None, 97)
              for s in [cell_shape(nb.cell_graphs(g)[0])]}
    assert {d for _, d in shapes} <= {0, 1, 2, 3} and len(shapes) > 5
