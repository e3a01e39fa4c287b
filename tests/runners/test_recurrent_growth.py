"""Growing searches on the sequence tasks: transforms on schedule, exact growth, derived cells, determinism."""

import jax
import numpy as np
import pytest

from jaxnas.nn import grow
from jaxnas import relax
from jaxnas.data import timeseries as ts
from jaxnas.runners import forecast as F
from jaxnas.runners import recurrent_growth as G
from jaxnas.nn.sequence import Forecaster


@pytest.fixture(scope="module")
def toy_path(tmp_path_factory):
    """Three phase-shifted sines of period 12 plus an offset (300 steps)."""
    t = np.arange(300)[:, None]
    path = tmp_path_factory.mktemp("grow") / "toy.csv"
    np.savetxt(path, 2.0 + np.sin(2 * np.pi * t / 12 + np.array([0.0, 1.0, 2.0])), delimiter=",")
    return str(path)


def tiny_config(path, **kw):
    # three ops (uniform weight 1/3) keep compilation short; a_lr 0.1 moves the logits far enough in 4 steps for
    # the prune at step 4 to remove some
    base = dict(dataset=path, horizon=3, window=8, highway_window=2, hidden=3, nodes=1, max_nodes=2, steps=5,
                transform_every=2, batch_size=8, a_lr=0.1, prune_threshold=0.3, ops=("none", "tanh", "sigmoid"),
                seed=0)
    return G.GrowForecastConfig(**{**base, **kw})


def predictions(spec, host, x):
    """The forecaster's evaluation output under softmax weights, built here independently of the loop."""
    model = Forecaster(grow.GrowRecurrentCell(spec), 3, highway_window=2)
    variables = {"params": host.params}
    return np.asarray(model.apply(variables, x, relax.softmax(host.arch), train=False))


@pytest.fixture(scope="module")
def searched(toy_path):
    data = ts.load_forecast(toy_path, window=8, horizon=3)
    x, _ = ts.window_batch(data.valid, data.valid.targets[:16])  # the loop's probe batch
    seen = []

    def on_transform(record, spec0, state0, spec1, state1):
        seen.append((record, spec0, spec1, predictions(spec0, state0, x), predictions(spec1, state1, x)))

    result = G.run_growing_forecast(tiny_config(toy_path), on_transform=on_transform)
    return result, seen


def test_transform_events_follow_the_schedules():
    kw = dict(nodes=1, max_nodes=3, transform_every=10, steps=50)
    assert G.transform_events(G.GrowthConfig(schedule="grow-then-prune", **kw)) == {
        10: "grow", 20: "grow", 30: "prune", 40: "prune"}
    assert G.transform_events(G.GrowthConfig(schedule="interleaved", **kw)) == {
        10: "grow", 20: "prune", 30: "grow", 40: "prune"}
    assert G.transform_events(G.GrowthConfig(schedule="interleaved", **{**kw, "max_nodes": 2})) == {
        10: "grow", 20: "prune", 30: "prune", 40: "prune"}
    assert G.transform_events(G.GrowthConfig(schedule="fixed", **kw)) == {}
    # widening can need more growths than the nodes do
    assert G.GrowthConfig(hidden=4, max_hidden=10, hidden_step=2, nodes=1, max_nodes=2).growths() == 3
    for bad, match in ((dict(schedule="shrink"), "schedule"), (dict(optimization="bilevel-2nd"), "optimization"),
                       (dict(max_nodes=0), "max_nodes"), (dict(max_hidden=32), "hidden_step"),
                       (dict(ops=("tanh", "conv")), "unknown op")):
        with pytest.raises(ValueError, match=match):
            G.GrowthConfig(**bad)


@pytest.mark.slow
def test_growth_on_schedule_is_exact_and_prune_shrinks(searched):
    result, seen = searched
    assert [(r["step"], r["event"]) for r, *_ in seen] == [(2, "grow"), (4, "prune")]
    assert [(t["step"], t["event"]) for t in result["transforms"]] == [(2, "grow"), (4, "prune")]
    (g, g0, g1, before, after), (p, p0, p1, p_before, p_after) = seen
    assert (len(g0.cell.nodes), len(g1.cell.nodes)) == (1, 2) and g["nodes"] == 2
    np.testing.assert_allclose(after, before, atol=1e-5, rtol=0)
    assert g["max_abs_change"] < 1e-5
    assert p1 != p0 and p["ops"] < g["ops"]  # ops fell below the threshold and were removed
    assert p["applied"] and p["applied"][0].startswith("prune")
    # the loop's own record of how much pruning moved the predictions agrees with ours
    np.testing.assert_allclose(np.max(np.abs(p_after - p_before)), p["max_abs_change"], atol=1e-5)
    assert result["describe"]["grown"] == grow.describe(p1)
    assert np.isfinite(result["test"]["rse"]) and np.isfinite(result["valid"]["corr"])


@pytest.mark.slow
def test_derived_spec_builds_and_retrains(searched, toy_path):
    result, _ = searched
    derived = grow.spec_from_json(result["derived"])
    assert all(len(e.ops) == 1 and e.ops != ("none",) for *_, e in derived.cell.edges())
    assert len(derived.cell.nodes) == 2
    cfg = F.ForecastConfig(dataset=toy_path, horizon=3, window=8, highway_window=2, steps=3, batch_size=8)
    out = G.retrain_forecast(derived, result["arch"], cfg)
    assert out["cell"] == "grow" and out["derived"] == result["derived"]
    assert np.isfinite(out["test"]["rse"]) and out["params"] > 0
    with pytest.raises(ValueError, match="hidden size"):
        G.fixed_cell(derived)(derived.hidden + 1)
    with pytest.raises(ValueError, match="one op per edge"):
        G.fixed_cell(grow.spec_from_json(result["spec"]))


@pytest.mark.slow
def test_same_seed_same_derived_spec(searched, toy_path):
    result, _ = searched
    again = G.run_growing_forecast(tiny_config(toy_path))
    assert again["derived"] == result["derived"] and again["spec"] == result["spec"]
    jax.tree_util.tree_map(np.testing.assert_array_equal, again["arch"], result["arch"])
