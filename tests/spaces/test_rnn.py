import json

import jax
import numpy as np
import pytest

from jaxnas.spaces.genotypes import RnnGenotype, genotype_to_json, get_rnn_genotype, reference_data
from jaxnas.spaces.primitives import RNN_PRIMITIVES
from jaxnas.spaces import DartsRnnSpace
from jaxnas.registry import genotype_from_json, get_space

space = get_space("darts-rnn")


def test_registered_with_the_reference_primitives_and_36_edges():
    assert isinstance(space, DartsRnnSpace) and space.name == "darts-rnn"
    assert space.primitives == RNN_PRIMITIVES == tuple(reference_data()["rnn_primitives"])
    assert space.num_edges == 36
    assert space.edges[:4] == ((0, 1), (0, 2), (1, 2), (0, 3))
    assert space.edges[-1] == (7, 8)
    assert all(space.edge_index(src, dst) == k for k, (src, dst) in enumerate(space.edges))
    assert get_space("darts-rnn", steps=3).num_edges == 6


@pytest.mark.parametrize("name", ["DARTS_V1", "DARTS_V2"])
def test_published_genotypes_match_reference_validate_and_round_trip(name):
    g = get_rnn_genotype(name)
    ref = reference_data()["rnn"][name]
    assert [list(p) for p in g.recurrent] == [[e["act"], e["pred"]] for e in ref["recurrent"]]
    assert list(g.concat) == ref["concat"] == list(range(1, 9))
    assert space.validate(g) is g
    assert space.parse(name) == g
    assert space.parse(space.format(g)) == g
    assert space.from_json(space.to_json(g)) == g
    assert space.from_json({"space": "darts-rnn", **ref}) == g  # the reference file's {"act", "pred"} entries
    assert genotype_from_json(genotype_to_json(g)) == g
    assert space.derive({"rnn": 10.0 * space.one_hot_weights(g)["rnn"]}) == g


def test_darts_alias_is_v2():
    assert space.parse("DARTS") == space.parse("DARTS_V2")


def test_parse_a_json_file(tmp_path):
    g = space.parse("DARTS_V1")
    path = tmp_path / "cell.json"
    path.write_text(space.format(g))
    assert space.parse(str(path)) == g


def test_init_arch():
    arch = space.init_arch(jax.random.PRNGKey(0))
    assert set(arch) == {"rnn"} and arch["rnn"].shape == (36, 5)
    assert float(np.abs(arch["rnn"]).max()) < 0.01
    np.testing.assert_array_equal(arch["rnn"], space.init_arch(jax.random.PRNGKey(0))["rnn"])


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_sample_validate_derive_of_one_hot_round_trip(steps):
    sp = get_space("darts-rnn", steps=steps)
    for k in range(10):
        g = sp.validate(sp.sample(jax.random.PRNGKey(k)))
        assert g.concat == tuple(range(1, steps + 1))
        w = sp.one_hot_weights(g)["rnn"]
        assert w.shape == (sp.num_edges, 5)
        np.testing.assert_array_equal(np.asarray(w).sum(-1), 1.0)  # one op per edge, `none` on unused edges
        assert sp.derive({"rnn": w}) == g  # weights (probabilities), not logits, still derive the same cell
        assert sp.parse(sp.format(g)) == g
    assert sp.sample(jax.random.PRNGKey(1)) == sp.sample(jax.random.PRNGKey(1))


def test_sample_covers_predecessors_and_activations():
    genes = [gene for k in range(40) for gene in space.sample(jax.random.PRNGKey(k)).recurrent]
    assert {a for a, _ in genes} == set(space.choices)
    assert {p for _, p in genes} == set(range(8))


def test_mutate_changes_exactly_one_gene():
    g = space.parse("DARTS_V2")
    for k in range(20):
        m = space.validate(space.mutate(jax.random.PRNGKey(k), g))
        assert sum(a != b for a, b in zip(g.recurrent, m.recurrent)) == 1
        assert m.concat == g.concat
    one = get_space("darts-rnn", steps=1)
    g1 = one.sample(jax.random.PRNGKey(0))
    m1 = one.mutate(jax.random.PRNGKey(0), g1)
    assert m1.recurrent[0][1] == 0 and m1.recurrent[0][0] != g1.recurrent[0][0]  # node 1 can only change its op


def test_encode():
    g = space.parse("DARTS_V2")
    code = space.encode(g)
    assert code.shape == (36 * 5,) and code.sum() == 8
    cell = code.reshape(36, 5)
    assert cell[space.edge_index(0, 1), space.primitives.index("sigmoid")] == 1  # node 1: sigmoid from node 0
    assert cell[space.edge_index(5, 8), space.primitives.index("relu")] == 1  # node 8: relu from node 5
    assert not np.array_equal(code, space.encode(space.parse("DARTS_V1")))


def test_derive_darts_rnn_rule_on_hand_made_arch():
    sp = get_space("darts-rnn", steps=3)
    prims = sp.primitives
    arch = np.zeros((6, 5), np.float32)
    arch[:, prims.index("none")] = 8.0  # none dominates everywhere: it must be ignored
    arch[sp.edge_index(0, 1), prims.index("relu")] = 1.0  # node 1 has one edge
    arch[sp.edge_index(0, 2), prims.index("tanh")] = 2.0
    arch[sp.edge_index(1, 2), prims.index("identity")] = 3.0  # node 2: from 1 (the stronger edge)
    arch[sp.edge_index(2, 3), prims.index("sigmoid")] = 1.0  # node 3: all edges tie except this one
    g = sp.derive({"rnn": arch})
    assert g == RnnGenotype((("relu", 0), ("identity", 1), ("sigmoid", 2)), (1, 2, 3))
    # ties go to the lower predecessor and the earlier op
    assert sp.derive({"rnn": np.zeros((6, 5))}).recurrent == (("tanh", 0),) * 3


def test_derive_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="must have shape \\(36, 5\\)"):
        space.derive({"rnn": np.zeros((14, 5))})
    with pytest.raises(ValueError, match="dict \\{'rnn'"):
        space.derive({"normal": np.zeros((36, 5))})


V2 = reference_data()["rnn"]["DARTS_V2"]


def _json(**changes):
    data = {"space": "darts-rnn", "recurrent": [[e["act"], e["pred"]] for e in V2["recurrent"]],
            "concat": V2["concat"]}
    data.update(changes)
    return json.dumps(data)


def _with_gene(i, gene):
    genes = [[e["act"], e["pred"]] for e in V2["recurrent"]]
    genes[i] = gene
    return genes


@pytest.mark.parametrize(
    "text, match",
    [
        ("DARTS_V3", "malformed DARTS RNN genotype 'DARTS_V3'.*DARTS_V1, DARTS_V2"),
        ("", "malformed DARTS RNN genotype"),
        ("{not json", "malformed DARTS RNN genotype JSON"),
        ("[1, 2]", "malformed DARTS RNN genotype"),
        (_json(space="darts"), "from space 'darts', not darts-rnn"),
        (json.dumps({"recurrent": []}), "lacks concat"),
        (_json(recurrent=_with_gene(2, ["gelu", 1])), "unknown op 'gelu' in entry 2; allowed: tanh, relu"),
        (_json(recurrent=_with_gene(2, ["none", 1])), "unknown op 'none' in entry 2"),
        (_json(recurrent=_with_gene(2, ["relu", 3])), "entry 2 defines node 3, so its predecessor must be in 0..2"),
        (_json(recurrent=_with_gene(2, ["relu", -1])), "predecessor must be in 0..2, got -1"),
        (_json(recurrent=_with_gene(2, ["relu", "1"])), "predecessor must be in 0..2, got '1'"),
        (_json(recurrent=_with_gene(2, ["relu"])), "must be \\[activation, predecessor\\] pairs"),
        (_json(recurrent=[["relu", 0]] * 7), "must have 8 \\(activation, predecessor\\) pairs, got 7"),
        (_json(concat=[]), "concat must list distinct nodes in 0..8"),
        (_json(concat=[1, 9]), "concat must list distinct nodes in 0..8"),
        (_json(concat=[1, 1]), "concat must list distinct nodes"),
        (_json(concat="1-8"), "must be lists"),
    ],
)
def test_bad_genotype_strings_are_value_errors(text, match):
    with pytest.raises(ValueError, match=match):
        space.parse(text)


def test_validate_and_construction_errors():
    with pytest.raises(ValueError, match="expected a DARTS RNN genotype, got DartsGenotype"):
        from jaxnas.spaces.genotypes import get_cnn_genotype

        space.validate(get_cnn_genotype("DARTS_V2"))
    with pytest.raises(ValueError, match="must be a str"):
        space.parse(None)
    with pytest.raises(ValueError, match="unknown op\\(s\\) \\['gelu'\\]"):
        DartsRnnSpace(primitives=("none", "gelu"))
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        DartsRnnSpace(steps=0)
    with pytest.raises(ValueError, match="unknown published recurrent genotype"):
        get_rnn_genotype("ENAS")
    assert DartsRnnSpace(primitives=["none", "relu"]).primitives == ("none", "relu")
