"""Latency predictors, on-device measurement and the differentiable latency penalty."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.benchmarks import latency, nb201


@pytest.fixture(scope="module")
def table():
    bench = nb201.load()
    X = np.eye(5, dtype=np.float32)[bench.ops].reshape(len(bench), 30)
    return bench, X


def test_op_table_predicts_help_latencies_from_few_cells(table):
    bench, X = table
    Y = np.stack([bench.latency(bench.ops, d) for d in ("titanxp_1", "fpga")], axis=1)
    err = latency.evaluate(X, Y, 100, seeds=2, kind="op_table")
    assert err.shape == (2, 2)
    assert np.all(err[:, 0] < 0.08) and np.all(err[:, 1] < 0.02)  # measured GPU / simulated FPGA


@pytest.fixture(scope="module")
def synthetic():
    """An additive latency plus one pairwise interaction, on random one-hot NB201 encodings, and an MLP fitted to it."""
    X = np.eye(5, dtype=np.float32)[np.random.default_rng(0).integers(0, 5, (400, 6))].reshape(400, 30)
    cost = np.linspace(0.5, 3.0, 30).astype(np.float32)
    y = 1.0 + X @ cost + 2.0 * X[:, 3] * X[:, 8]
    return X, y, latency.fit_mlp(X[:300], y[:300], jax.random.PRNGKey(0), steps=600)


def test_mlp_predictor_learns_an_additive_latency_and_an_interaction(synthetic):
    X, y, model = synthetic
    assert float(latency.relative_error(latency.predict(model, X[300:]), y[300:])) < 0.03
    plain = latency.fit_op_table(X[:300], y[:300])
    assert float(latency.relative_error(latency.predict(plain, X[300:]), y[300:])) > float(
        latency.relative_error(latency.predict(model, X[300:]), y[300:]))


def test_penalty_is_differentiable_and_matches_the_expected_latency(table, synthetic):
    bench, X = table
    y = bench.latency(bench.ops, "gold_6226")
    op_table = latency.fit_op_table(X[:500], y[:500], shape=(6, 5))
    logits = jax.random.normal(jax.random.PRNGKey(0), (6, 5))
    weights = {"cell": jax.nn.softmax(logits, -1)}
    expected = op_table.bias + (weights["cell"] * op_table.table).sum()
    penalty = latency.latency_penalty(op_table, coef=0.1)
    assert float(penalty(weights)) == pytest.approx(0.1 * float(expected), rel=1e-5)
    # one-hot weights give the predicted latency of the discrete cell
    one_hot = {"cell": jnp.eye(5)[jnp.asarray(bench.ops[6111].astype(np.int32))]}
    assert float(latency.expected_latency(op_table, one_hot)) == pytest.approx(
        float(latency.predict(op_table, X[6111])), rel=1e-5)
    # gradients flow to the architecture logits, for the op table and for the MLP on the soft encoding
    for model in (op_table, synthetic[2]):
        g = jax.grad(lambda a: latency.latency_penalty(model, 1.0)({"cell": jax.nn.softmax(a, -1)}))(logits)
        assert g.shape == (6, 5) and bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).sum()) > 0
    # a target: no penalty below it
    assert float(latency.latency_penalty(op_table, 1.0, target_ms=1e6)(weights)) == 0.0
    with pytest.raises(ValueError, match="coefficient"):
        latency.latency_penalty(op_table, -1.0)


def test_measure_latency_of_a_small_network():
    bench = nb201.load()
    g = bench.space.parse("|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    ms = latency.measure_table([g], C=4, N=1, image_size=8, warmup=1, repeats=3)
    assert ms.shape == (1,) and np.all(ms > 0) and np.all(np.isfinite(ms))
    with pytest.raises(ValueError, match="repeats"):
        latency.measure_latency(g, repeats=0)


def test_error_on_a_subset_of_cells(table):
    bench, X = table
    y = bench.latency(bench.ops, "pixel3")
    connected = nb201.is_connected(bench.ops)
    model = latency.fit_op_table(X[::70], y[::70])  # 224 cells
    err = np.abs(np.asarray(latency.predict(model, X)) - y) / y
    # the near-zero latencies of disconnected cells dominate the mean relative error on pixel3
    assert err.mean() > 1.0 and err[connected].mean() < 0.5
    median = latency.evaluate(X, y, 200, seeds=1, kind="op_table", statistic="median", test_mask=connected)
    assert median.shape == (1,) and 0 < median[0] < err[connected].mean()


def test_bad_input():
    X = np.zeros((10, 30), np.float32)
    with pytest.raises(ValueError, match="n_train"):
        latency.evaluate(X, np.ones(10), 10)
    with pytest.raises(ValueError, match="unknown predictor kind 'gbdt'"):
        latency.evaluate(X, np.ones(10), 5, kind="gbdt")
    with pytest.raises(ValueError, match="not a latency predictor"):
        latency.predict(object(), X)
