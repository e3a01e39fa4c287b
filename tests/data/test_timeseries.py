import gzip

import jax
import numpy as np
import pytest

from jaxnas.data import timeseries as ts

# a small example worked out by hand (module docstring formulas):
#   errors^2 = 0 1 1 | 1 1 0 -> 4;  mean(Y) = 15/6 = 2.5, sum (Y - 2.5)^2 = 5.5   -> RSE = sqrt(4 / 5.5)
#   series 0: dY = (-1, 0, 1), dP = (-1, 1, 0) -> 1 / sqrt(2 * 2) = 0.5
#   series 1: dY = (-1, 1, 0), dP = (-2, 2, 0) -> 4 / sqrt(2 * 8) = 1.0             -> CORR = 0.75
Y = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 3.0]])
P = np.array([[1.0, 1.0], [3.0, 5.0], [2.0, 3.0]])


def test_rse_and_corr_by_hand():
    assert ts.rse(Y, P) == pytest.approx(np.sqrt(4 / 5.5), rel=1e-12)
    assert ts.corr(Y, P) == pytest.approx(0.75, rel=1e-12)
    assert ts.rse(Y, Y) == 0.0 and ts.corr(Y, Y) == pytest.approx(1.0)


def test_metrics_match_the_formulas_term_by_term():
    rng = np.random.default_rng(0)
    y, p = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    num = sum((y[t, i] - p[t, i]) ** 2 for t in range(7) for i in range(3))
    den = sum((y[t, i] - y.mean()) ** 2 for t in range(7) for i in range(3))
    corrs = []
    for i in range(3):
        dy, dp = y[:, i] - y[:, i].mean(), p[:, i] - p[:, i].mean()
        corrs.append(np.sum(dy * dp) / np.sqrt(np.sum(dy**2) * np.sum(dp**2)))
    assert ts.rse(y, p) == pytest.approx(np.sqrt(num) / np.sqrt(den), rel=1e-12)
    assert ts.corr(y, p) == pytest.approx(np.mean(corrs), rel=1e-12)


def test_metrics_on_the_original_scale_and_constant_series():
    scale = np.array([2.0, 0.5])
    m = ts.forecast_metrics(Y / scale, P / scale, scale)
    assert m["rse"] == pytest.approx(ts.rse(Y, P)) and m["corr"] == pytest.approx(0.75)
    flat = P.copy()
    flat[:, 1] = 7.0  # a constant prediction: its correlation is undefined and left out
    assert ts.corr(Y, flat) == pytest.approx(0.5)
    assert np.isnan(ts.corr(Y, np.ones_like(Y)))
    with pytest.raises(ValueError, match="both be"):
        ts.rse(Y, P[:2])


def series(T=100):
    return np.arange(1, T + 1, dtype=np.float64)[:, None] * np.array([1.0, -2.0])


def test_split_bounds_windows_and_scale():
    d = ts.load_forecast(series(), window=5, horizon=3)
    assert d.bounds == (60, 80)
    assert (d.train.targets[0], d.train.targets[-1]) == (7, 59)  # first full window: 5 + 3 - 1
    assert (d.valid.targets[0], d.valid.targets[-1]) == (60, 79)
    assert (d.test.targets[0], d.test.targets[-1]) == (80, 99)
    np.testing.assert_array_equal(d.scale, [60.0, 120.0])  # max |value| of the training part
    x, y = ts.window_batch(d.test, [80, 99])
    assert x.shape == (2, 5, 2) and y.shape == (2, 2) and x.dtype == np.float32
    # target time t (value t + 1): inputs are times t-7 .. t-3 (the last input step is `horizon` steps before t)
    np.testing.assert_allclose(x[0] * d.scale, series()[73:78], rtol=1e-6)
    np.testing.assert_allclose(y * d.scale, series()[[80, 99]], rtol=1e-6)
    whole = ts.load_forecast(series(), window=5, horizon=3, scale_from="all")
    np.testing.assert_array_equal(whole.scale, [100.0, 200.0])


def test_shipped_series_offline():
    ex = ts.load_forecast("exchange_rate", horizon=3)
    assert ex.values.shape == (7588, 8) and ex.bounds == (4552, 6070)
    assert (len(ex.train), len(ex.valid), len(ex.test)) == (4552 - 170, 6070 - 4552, 7588 - 6070)
    np.testing.assert_allclose(ex.values[0, :2], [0.7855, 1.611])
    et = ts.load_series("ETTh1")
    assert et.shape == (17420, 7)  # the date column is dropped
    np.testing.assert_allclose(et[0, [0, 6]], [5.827000141143799, 30.5310001373291])
    assert np.abs(ex.train.data[: ex.bounds[0]]).max() == pytest.approx(1.0)  # scaled by the training part


def test_csv_paths_with_header_and_gzip(tmp_path):
    text = "date,a,b\n2020-01-01,1.5,2\n2020-01-02,3,-4\n"
    (tmp_path / "s.csv").write_text(text)
    (tmp_path / "s.csv.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "plain.txt").write_text("1,2\n3,4\n")
    want = np.array([[1.5, 2.0], [3.0, -4.0]])
    np.testing.assert_array_equal(ts.load_series(tmp_path / "s.csv"), want)
    np.testing.assert_array_equal(ts.load_series(str(tmp_path / "s.csv.gz")), want)
    np.testing.assert_array_equal(ts.load_series(tmp_path / "plain.txt"), [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    "content, match",
    [("", "no data rows"), ("1,2\n3\n", "row 2 has 1 fields"), ("1,2\n3,x\n", "non-numeric"),
     ("1,nan\n", "non-finite")],
)
def test_bad_files(tmp_path, content, match):
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(ValueError, match=match):
        ts.load_series(tmp_path / "bad.csv")


def test_errors():
    with pytest.raises(ValueError, match="neither a shipped name"):
        ts.load_forecast("electricity")
    with pytest.raises(ValueError, match="unknown time series"):
        ts.resource_path("nope")
    with pytest.raises(ValueError, match="longer than the training part"):
        ts.load_forecast(series(), window=58, horizon=3)
    with pytest.raises(ValueError, match="scale_from"):
        ts.load_forecast(series(), window=5, horizon=3, scale_from="test")
    with pytest.raises(ValueError, match="split fractions"):
        ts.load_forecast(series(), window=5, horizon=3, split=(0.8, 0.3))
    with pytest.raises(ValueError, match=r"\(T, n\)"):
        ts.load_forecast(np.zeros(10))
    d = ts.load_forecast(series(), window=5, horizon=3)
    with pytest.raises(ValueError, match="batch_size"):
        ts.sample_targets(d.valid, 0, 21)


def test_batches_are_pure_functions_of_the_key():
    d = ts.load_forecast(series(), window=5, horizon=3)
    key = jax.random.key(3)
    a = [y for _, y in ts.iterate_batches(d.train, key, 8)]
    b = [y for _, y in ts.iterate_batches(d.train, key, 8)]
    c = [y for _, y in ts.iterate_batches(d.train, jax.random.key(4), 8)]
    assert len(a) == len(d.train) // 8
    np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
    assert not np.array_equal(np.concatenate(a), np.concatenate(c))
    every = np.concatenate([y for _, y in ts.iterate_batches(d.train, key, 8, drop_remainder=False)])
    np.testing.assert_allclose(np.sort(every[:, 0] * d.scale[0]), d.train.targets + 1.0, rtol=1e-6)
    ordered = np.concatenate([y for _, y in ts.iterate_batches(d.valid, None, 7, drop_remainder=False)])
    np.testing.assert_allclose(ordered[:, 0] * d.scale[0], d.valid.targets + 1.0, rtol=1e-6)
    t1, t2 = ts.sample_targets(d.train, key, 16), ts.sample_targets(d.train, key, 16)
    np.testing.assert_array_equal(t1, t2)
    assert len(set(t1.tolist())) == 16


def test_search_split_is_chronological():
    d = ts.load_forecast(series(), window=5, horizon=3)
    w, a = ts.split_windows(d.train, 0.5)
    assert (w.name, a.name) == ("train", "val")
    assert len(w) + len(a) == len(d.train) and w.targets[-1] + 1 == a.targets[0]
    with pytest.raises(ValueError, match="fraction"):
        ts.split_windows(d.train, 1.0)
