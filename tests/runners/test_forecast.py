import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.nn import recurrent
from jaxnas.spaces.primitives import RNN_PRIMITIVES
from jaxnas.data import timeseries as ts
from jaxnas.runners import forecast as F
from jaxnas.nn.sequence import Forecaster
from tests.helpers.cells import BatchNormCell, MixedCell, TanhCell, mixed_arch


def toy_csv(tmp_path, T=400):
    """Three phase-shifted sines of period 12 plus an offset: learnable from a window of 8 steps."""
    t = np.arange(T)[:, None]
    values = 2.0 + np.sin(2 * np.pi * t / 12 + np.array([0.0, 1.0, 2.0]))
    path = tmp_path / "toy.csv"
    np.savetxt(path, values, delimiter=",")
    return str(path)


def init(model, x, weights=None):
    return jax.jit(lambda k: model.init(k, x, weights, train=False))(jax.random.key(0))


def forward(model, train=False, hard=False):
    """Jitted ``(variables, x, weights) -> output`` (the supernet convention, batch statistics mutable)."""
    return jax.jit(lambda v, x, w: model.apply(v, x, w, train=train, hard=hard, mutable=["batch_stats"])[0])


def test_forecaster_shapes_and_linear_highway():
    x = jax.random.normal(jax.random.key(1), (5, 8, 3))
    model = Forecaster(TanhCell(4), n_series=3, highway_window=4)
    v = init(model, x)
    assert set(v["params"]) == {"cell", "out", "highway"}
    assert v["params"]["highway"]["kernel"].shape == (4, 1)  # one AR model shared by all series
    apply = forward(model)
    out = apply(v, x, None)
    assert out.shape == (5, 3)
    # with the read-out zeroed only the highway remains: sum_k w_k x[t-4+k, i] + b for every series i
    params = jax.tree_util.tree_map(jnp.zeros_like, v["params"])
    params["highway"] = v["params"]["highway"]
    hw = apply({"params": params}, x, None)
    w, b = v["params"]["highway"]["kernel"][:, 0], v["params"]["highway"]["bias"][0]
    np.testing.assert_allclose(hw, jnp.einsum("btn,t->bn", x[:, -4:], w) + b, rtol=1e-5, atol=1e-6)
    no_highway = Forecaster(TanhCell(4), 3, highway_window=0)
    assert "highway" not in jax.eval_shape(lambda k: no_highway.init(k, x, None), jax.random.key(0))["params"]
    with pytest.raises(ValueError, match="expects inputs"):
        model.apply(v, x[..., :2], None, train=False)


@pytest.mark.parametrize("cell", [recurrent.LSTMCell(hidden=4), BatchNormCell(4)], ids=["lstm", "batchnorm"])
def test_scan_equals_python_loop(cell):
    """Same outputs and batch-statistics updates (carried through time) as an unrolled loop; eval mode too."""
    x = jax.random.normal(jax.random.key(2), (2, 6, 3))
    scanned = Forecaster(cell, 3, highway_window=2)
    looped = Forecaster(cell, 3, highway_window=2, use_scan=False)
    v = init(scanned, x)
    assert jax.tree_util.tree_structure(v) == jax.tree_util.tree_structure(jax.eval_shape(
        lambda k: looped.init(k, x, None, train=False), jax.random.key(0)))

    @jax.jit
    def both(v):
        outs = [m.apply(v, x, None, train=True, mutable=["batch_stats"]) for m in (scanned, looped)]
        evals = [m.apply(v, x, None, train=False) for m in (scanned, looped)]
        return outs, evals

    (a, b), (ea, eb) = both(v)
    chex.assert_trees_all_close(a, b, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(ea, eb, rtol=1e-5, atol=1e-6)
    if "batch_stats" in v:
        assert not np.allclose(a[1]["batch_stats"]["cell"]["bn"]["mean"], 0.0)


def test_recurrent_cells_follow_the_supernet_convention():
    x = jax.random.normal(jax.random.key(3), (2, 5, 3))
    # LSTM: test_scan_equals_python_loop; GRU: test_cell_kinds_and_config_errors (through make_step)
    cell = recurrent.DartsRnnSearchCell(hidden=4, steps=2)
    model = Forecaster(cell, 3, highway_window=0)
    one_hot = {"rnn": jax.nn.one_hot(jnp.array([1, 2, 4]), len(RNN_PRIMITIVES))}

    @jax.jit
    def init_and_apply(key):
        v = model.init(key, x, one_hot, train=False, hard=True)
        return model.apply(v, x, one_hot, train=True, hard=True, mutable=["batch_stats"])[0]

    out = init_and_apply(jax.random.key(0))
    assert out.shape == (2, 3) and bool(jnp.all(jnp.isfinite(out)))


def test_losses_on_the_original_scale():
    scale = np.array([2.0, 10.0])
    pred, y = jnp.array([[1.0, 0.5]]), jnp.array([[0.5, 0.0]])
    assert float(F.make_loss("l1", scale)(pred, y)) == pytest.approx((1.0 + 5.0) / 2)
    assert float(F.make_loss("mse", scale)(pred, y)) == pytest.approx((1.0 + 25.0) / 2)
    with pytest.raises(ValueError, match="unknown loss"):
        F.make_loss("huber", scale)


def test_evaluation_is_rse_corr_of_time_ordered_predictions(tmp_path):
    data = ts.load_forecast(toy_csv(tmp_path, 120), window=8, horizon=3)
    model = Forecaster(TanhCell(4), data.n_series, highway_window=2)
    x, _ = ts.window_batch(data.test, data.test.targets)
    v = init(model, x[:2])
    y, p = F.predict_windows(F.make_predict(model), v, data.test, batch_size=5)  # 24 examples: last batch padded
    np.testing.assert_allclose(p, forward(model)(v, x, None), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y * data.scale, data.values[data.test.targets], rtol=1e-6)
    got = F.evaluate_forecast(F.make_predict(model), v, data.test, data.scale, batch_size=5)
    assert got == pytest.approx(ts.forecast_metrics(y, p, data.scale))


def test_training_decreases_the_loss_on_a_toy_series(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = toy_csv(tmp_path)
    r = F.run_forecast(F.ForecastConfig(dataset=path, window=8, horizon=3, cell=TanhCell, hidden=4, highway_window=4,
                                        steps=150, batch_size=16, lr=2e-2, eval_every=50, log_every=50))
    first, last = r["train_loss"]
    assert last < 0.3 * first
    assert r["test"]["rse"] < 0.3 and r["test"]["corr"] > 0.9
    assert r["best_step"] in (50, 100, 150) and not r["search"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.csv"]  # no workdir: nothing written
    json.dumps(r)


@pytest.mark.parametrize("mode", ["bilevel-1st", "single-level"])
def test_search_updates_the_architecture(tmp_path, mode):
    cfg = F.ForecastConfig(dataset=toy_csv(tmp_path), window=8, horizon=3, cell=MixedCell, hidden=4,
                           highway_window=0, steps=6, batch_size=8, arch=mixed_arch, optimization=mode,
                           workdir=str(tmp_path / "run"), log_every=3)
    r = F.run_forecast(cfg)
    start = np.asarray(mixed_arch(jax.random.split(jax.random.key(0), 4)[1])["cell"])
    assert r["search"] and not np.allclose(np.asarray(r["arch"]["cell"]), start)
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["test"] == pytest.approx(r["test"])
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [rec["kind"] for rec in lines] == ["step", "step", "final"]
    assert ("val_loss" in lines[0]) == (mode == "bilevel-1st") and "accuracy" not in lines[0]


def test_cell_kinds_and_config_errors(tmp_path):
    r = F.run_forecast(F.ForecastConfig(dataset=toy_csv(tmp_path, 100), window=8, horizon=3, cell="gru", hidden=4,
                                        highway_window=4, steps=2, batch_size=4))
    assert r["params"] == 3 * (3 * 4 + 4 * 4 + 2 * 4) + (4 * 3 + 3) + (4 + 1)  # GRU, read-out, highway
    r = F.run_forecast(F.ForecastConfig(dataset=toy_csv(tmp_path, 100), window=8, horizon=3, cell=BatchNormCell,
                                        hidden=4, highway_window=0, steps=2, batch_size=4))
    assert np.isfinite(r["test"]["rse"])  # batch statistics updated by make_step, used by the evaluation
    with pytest.raises(ValueError, match="unknown cell kind"):
        F.ForecastConfig(cell="transformer")
    with pytest.raises(ValueError, match="search cell: give arch"):
        F.ForecastConfig(cell="darts")
    with pytest.raises(ValueError, match="unknown loss"):
        F.ForecastConfig(loss="huber")
    with pytest.raises(ValueError, match="optimization"):
        F.ForecastConfig(optimization="bilevel")
    with pytest.raises(ValueError, match="fewer than batch_size"):
        F.run_forecast(F.ForecastConfig(dataset=toy_csv(tmp_path, 100), window=8, horizon=3, cell=TanhCell, hidden=4,
                                        steps=1, batch_size=64))
