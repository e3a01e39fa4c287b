"""The shipped NB201 table against the reference CSVs, look-ups in every form, and clear errors."""

import csv

import numpy as np
import pytest

from jaxnas.benchmarks import nb201
from jaxnas.spaces.genotypes import NB201Genotype

BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def bench():
    return nb201.load()


@pytest.fixture(scope="module")
def csv_rows(shared_data):
    with open(shared_data / "nb201" / "nb201.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(shared_data / "nb201" / "nb201_latency_help.csv", newline="") as f:
        lat = list(csv.DictReader(f))
    return rows, lat


def test_every_value_matches_the_csv(bench, csv_rows):
    rows, lat = csv_rows
    assert len(bench) == len(rows) == 15625
    assert [bench.arch_str(i) for i in range(0, 15625, 97)] == [rows[i]["arch_str"] for i in range(0, 15625, 97)]
    for name in rows[0]:
        if name in ("index", "arch_str"):
            continue
        expected = np.array([float(r[name]) for r in rows])
        np.testing.assert_allclose(bench.column(name), expected, rtol=1e-6, err_msg=name)
    for name in lat[0]:
        if name.startswith("lat_"):
            expected = np.array([float(r[name]) for r in lat])
            np.testing.assert_allclose(bench.column(name), expected, rtol=1e-6, err_msg=name)
    assert len(bench.devices) == 27


def test_query_matches_csv_rows(bench, csv_rows):
    rows, lat = csv_rows
    for i in (0, 1, 1651, 1835, 6111, 9930, 857, 15624):
        r = rows[i]
        q = bench.query(r["arch_str"], "cifar10")
        assert q["index"] == i and q["arch"] == r["arch_str"]
        assert q["test_acc"] == float(r["cifar10_test"])
        assert q["valid_acc_12ep"] == float(r["cifar10valid_valid_12ep"])
        assert q["test_acc_12ep"] == float(r["cifar10_test_12ep"])
        assert q["valid_acc"] == float(r["cifar10valid_valid"])
        assert q["params_mb"] == float(r["params_mb_cifar10"])
        assert q["flops_m"] == float(r["flops_m_cifar10"])
        assert q["isomorph_id"] == int(r["isomorph_id"])
        q = bench.query(i, "imagenet16")
        assert q["test_acc"] == float(r["imagenet16_test"])
        assert q["valid_acc_12ep"] == float(r["imagenet16_valid_12ep"])
        assert q["flops_m"] == float(r["flops_m_imagenet16"])
        assert np.isnan(q["valid_acc"])
        assert bench.query(i, "cifar100")["valid_acc_12ep"] == float(r["cifar100_valid_12ep"])
        assert float(bench.latency(i, "pixel3")) == pytest.approx(float(lat[i]["lat_pixel3"]), rel=1e-6)


def test_published_optima(bench):
    assert bench.optimum("cifar10") == (6111, pytest.approx(94.3733, abs=1e-4))
    assert bench.optimum("cifar100") == (9930, pytest.approx(73.5133, abs=1e-4))
    assert bench.optimum("ImageNet16-120") == (857, pytest.approx(47.3111, abs=1e-4))
    assert bench.query(1651)["test_acc"] == 10.0


def test_all_address_forms_agree(bench):
    space = bench.space
    g = space.parse(BEST_C10)
    ops = space.to_indices(g)
    assert bench.index(BEST_C10) == bench.index(g) == bench.index(ops) == bench.index(6111) == 6111
    assert bench.genotype(6111) == g
    # batched op-index arrays, any leading shape, and the code-order view used by jitted searches
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 5, (3, 4, 6))
    rows = bench.index(batch)
    assert rows.shape == (3, 4)
    for idx, row in zip(batch.reshape(-1, 6), rows.reshape(-1)):
        assert bench.arch_str(int(row)) == space.format(space.from_indices(idx))
    acc = bench.metric("cifar10", "test_acc")
    np.testing.assert_array_equal(bench.by_code(acc)[bench.code(batch)], acc[rows])
    # code order is the order of NB201Space.enumerate()
    for k, g in enumerate(space.enumerate()):
        if k % 1000 == 0:
            assert bench.code(space.to_indices(g)) == k


def test_jittable_code_and_objective(bench):
    import jax
    import jax.numpy as jnp

    obj = jax.jit(nb201.reward_objective(bench, "cifar10"))
    ops = jnp.asarray(bench.ops[[6111, 0, 1835]].astype(np.int32))
    np.testing.assert_allclose(obj(ops), bench.metric("cifar10", "valid_acc_12ep")[[6111, 0, 1835]])


@pytest.mark.parametrize("bad", [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|",  # two nodes only
    "|conv_5x5~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",  # unknown op
    "|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",  # bad input
    "not an arch",
])
def test_bad_arch_strings_are_clear_errors(bench, bad):
    with pytest.raises(ValueError, match="NB201"):
        bench.query(bad)


def test_other_bad_input(bench):
    with pytest.raises(ValueError, match=r"unknown NB201 dataset 'mnist'; allowed: cifar10, cifar100, imagenet16"):
        bench.query(0, "mnist")
    with pytest.raises(ValueError, match="out of range"):
        bench.index(15625)
    with pytest.raises(ValueError, match=r"op indices must lie in \[0, 5\)"):
        bench.index(np.array([0, 1, 2, 3, 4, 5]))
    with pytest.raises(ValueError, match="last axis 6"):
        bench.index(np.zeros(5, int))
    with pytest.raises(ValueError, match="unknown NB201 metric"):
        bench.metric("cifar10", "accuracy")
    with pytest.raises(ValueError, match="unknown latency device 'tpu'; known: 1080ti_1"):
        bench.latency(0, "tpu")
    with pytest.raises(ValueError, match="unknown NB201 op"):
        bench.index(NB201Genotype(("conv",) * 6))


def test_table_is_small_and_carries_its_sources():
    from importlib import resources

    assert len(resources.files("jaxnas").joinpath("resources/nb201/nb201.npz").read_bytes()) < 3_000_000
    sources = resources.files("jaxnas").joinpath("resources/nb201/SOURCES.md").read_text()
    assert "HELP" in sources and "NATS-Bench" in sources and "MIT License" in sources


def test_connectivity(bench):
    connected = nb201.is_connected(bench.ops)
    assert connected.shape == (15625,) and int((~connected).sum()) == 341
    assert not connected[1651] and connected[1835] and connected[6111]  # all none / all skip / best cifar10
    # a disconnected cell is as good as no cell at all: test accuracy at chance level on cifar10
    assert np.all(bench.metric("cifar10", "test_acc")[~connected] < 10.5)
