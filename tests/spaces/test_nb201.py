import csv

import jax
import numpy as np
import pytest

from jaxnas.spaces.genotypes import DartsGenotype, NB201Genotype, genotype_to_json
from jaxnas.registry import genotype_from_json, get_space

space = get_space("nb201")


def test_enumerate_covers_the_space_and_round_trips():
    genotypes = list(space.enumerate())
    assert len(genotypes) == 15625 == space.size
    strings = {space.format(g) for g in genotypes}
    assert len(strings) == 15625
    assert all(space.parse(space.format(g)) == g for g in genotypes)


def test_every_benchmark_string_round_trips(shared_data):
    with open(shared_data / "nb201" / "nb201.csv") as f:
        strings = [row["arch_str"] for row in csv.DictReader(f)]
    assert len(strings) == 15625
    for s in strings:
        assert space.format(space.parse(s)) == s


def test_sample_mutate_encode():
    g = space.sample(jax.random.PRNGKey(0))
    assert g == space.sample(jax.random.PRNGKey(0))  # same key, same genotype
    for k in range(20):
        m = space.mutate(jax.random.PRNGKey(k), g)
        assert sum(a != b for a, b in zip(g.ops, m.ops)) == 1
    code = space.encode(g)
    assert code.shape == (30,) and code.sum() == 6
    np.testing.assert_array_equal(code.reshape(6, 5).argmax(1), space.to_indices(g))


def test_json_round_trip():
    g = space.sample(jax.random.PRNGKey(3))
    assert genotype_from_json(genotype_to_json(g)) == g
    assert space.parse(genotype_to_json(g)) == g


@pytest.mark.parametrize(
    "bad, message",
    [
        ("|nor_conv_3x3~0|+|none~0|none~1|", "expected 3 '\\+'-separated nodes"),
        ("|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown NB201 op 'conv_7x7'"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must be 'op~0'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must list 2 inputs"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "not of the form"),
    ],
)
def test_malformed_strings_are_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        space.parse(bad)


def test_genotype_from_another_space_is_rejected():
    darts_g = get_space("darts").parse("DARTS_V2")
    with pytest.raises(ValueError, match="expected an NB201 genotype, got DartsGenotype"):
        space.format(darts_g)
    with pytest.raises(ValueError, match="not nb201"):
        space.from_json(darts_g.to_json())
    assert isinstance(darts_g, DartsGenotype) and not isinstance(darts_g, NB201Genotype)


def test_derive_argmax_per_edge():
    arch = np.zeros((6, 5), np.float32)
    chosen = [3, 1, 0, 2, 4, 3]
    arch[np.arange(6), chosen] = 1.0
    g = space.derive({"cell": arch})
    assert list(g.ops) == [space.primitives[i] for i in chosen]
