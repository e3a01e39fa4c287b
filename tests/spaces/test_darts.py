import json

import jax
import numpy as np
import pytest

from jaxnas.spaces.genotypes import genotype_to_json, get_cnn_genotype, reference_data
from jaxnas.registry import genotype_from_json, get_space

space = get_space("darts")


@pytest.mark.parametrize("name", ["DARTS_V1", "DARTS_V2", "PC_DARTS_cifar"])
def test_published_genotypes_match_reference_and_round_trip(name):
    g = get_cnn_genotype(name)
    ref = reference_data()["cnn"][name]
    assert [list(p) for p in g.normal] == [[e["op"], e["input"]] for e in ref["normal"]]
    assert [list(p) for p in g.reduce] == [[e["op"], e["input"]] for e in ref["reduce"]]
    assert space.parse(space.format(g)) == g
    assert genotype_from_json(genotype_to_json(g)) == g
    assert space.parse(name) == g


def test_sample_is_valid_and_deterministic():
    for k in range(10):
        g = space.sample(jax.random.PRNGKey(k))
        space.validate(g)
        for node in range(4):
            inputs = [i for _, i in g.normal[2 * node : 2 * node + 2]]
            assert len(set(inputs)) == 2 and max(inputs) < node + 2
    assert space.sample(jax.random.PRNGKey(1)) == space.sample(jax.random.PRNGKey(1))


def test_mutate_changes_one_gene():
    g = space.parse("DARTS_V2")
    for k in range(20):
        m = space.validate(space.mutate(jax.random.PRNGKey(k), g))
        diff = sum(a != b for a, b in zip(g.normal + g.reduce, m.normal + m.reduce))
        assert diff == 1


def test_encode():
    g = space.parse("DARTS_V2")
    code = space.encode(g)
    assert code.shape == (2 * 14 * 8,) and code.sum() == 16
    assert not np.array_equal(code, space.encode(space.parse("DARTS_V1")))


def test_derive_darts_rule_on_hand_made_arch():
    prims = space.primitives
    arch = np.zeros((14, 8), np.float32)
    arch[:, prims.index("none")] = 5.0  # none dominates everywhere: it must be ignored
    # node 2 (edges 0,1): input 1 strongest (sep_conv_3x3), then input 0 (max_pool)
    arch[1, prims.index("sep_conv_3x3")] = 3.0
    arch[0, prims.index("max_pool_3x3")] = 2.0
    # node 3 (edges 2,3,4 from inputs 0,1,2): inputs 2 and 0
    arch[4, prims.index("dil_conv_5x5")] = 4.0
    arch[2, prims.index("skip_connect")] = 1.0
    # node 4 (edges 5..8), node 5 (edges 9..13)
    arch[8, prims.index("avg_pool_3x3")] = 2.0
    arch[6, prims.index("sep_conv_5x5")] = 1.5
    arch[13, prims.index("dil_conv_3x3")] = 2.0
    arch[9, prims.index("sep_conv_3x3")] = 1.0
    g = space.derive({"normal": arch, "reduce": arch})
    assert g.normal == (
        ("max_pool_3x3", 0), ("sep_conv_3x3", 1),
        ("skip_connect", 0), ("dil_conv_5x5", 2),
        ("sep_conv_5x5", 1), ("avg_pool_3x3", 3),
        ("sep_conv_3x3", 0), ("dil_conv_3x3", 4),
    )
    assert g.reduce == g.normal and g.normal_concat == (2, 3, 4, 5)


@pytest.mark.parametrize(
    "text, message",
    [
        ("DARTS_V9", "expected a JSON object"),
        ("{not json", "malformed DARTS genotype JSON"),
        ('{"normal": []}', "lacks normal_concat, reduce, reduce_concat"),
    ],
)
def test_malformed_genotypes_are_clear_errors(text, message):
    with pytest.raises(ValueError, match=message):
        space.parse(text)


def test_invalid_genes_are_clear_errors():
    data = get_cnn_genotype("DARTS_V2").to_json()
    bad_op = json.loads(json.dumps(data))
    bad_op["normal"][0][0] = "conv_9x9"
    with pytest.raises(ValueError, match="unknown op 'conv_9x9' in normal; allowed: max_pool_3x3"):
        space.from_json(bad_op)
    bad_input = json.loads(json.dumps(data))
    bad_input["reduce"][0][1] = 2  # node 2 can only read inputs 0 and 1
    with pytest.raises(ValueError, match="input must be in 0..1, got 2"):
        space.from_json(bad_input)
    with pytest.raises(ValueError, match="expected a DARTS genotype, got NB201Genotype"):
        space.format(get_space("nb201").sample(jax.random.PRNGKey(0)))
    with pytest.raises(ValueError, match="unknown search space 'nasnet'"):
        get_space("nasnet")
