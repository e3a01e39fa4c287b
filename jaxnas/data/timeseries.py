"""Multivariate time-series forecasting data in the LSTNet protocol, and its metrics.

Typical use::

    from jaxnas.data import timeseries as ts
    data = ts.load_forecast("exchange_rate", horizon=24)           # shipped with the package, works offline
    x, y = ts.window_batch(data.train, data.train.targets[:32])    # (32, 168, 8) inputs, (32, 8) targets (scaled)
    for x, y in ts.iterate_batches(data.train, key, batch_size=128):
        ...
    rse_value, corr_value = ts.rse(y_true, y_pred), ts.corr(y_true, y_pred)   # on the original scale

The protocol (Lai et al., "Modeling Long- and Short-Term Temporal Patterns with Deep Neural Networks", SIGIR 2018):

* The series ``values`` (``T`` steps x ``n`` series) is split chronologically at ``t1 = int(0.6 T)`` and
  ``t2 = int(0.8 T)``: train, valid and test are the examples whose *target time* ``t`` lies in ``[0, t1)``,
  ``[t1, t2)`` and ``[t2, T)``.
* The input of the example with target time ``t`` is the window of ``window`` (168) steps ending ``horizon`` steps
  before it, ``values[t - horizon - window + 1 : t - horizon + 1]``; the target is ``values[t]``, the value
  ``horizon`` (3, 6, 12 or 24) steps after the last input step. Train targets start at ``t = window + horizon - 1``
  (the first full window); valid and test windows may reach back into the previous part, as in LSTNet.
* Every series is divided by its maximum absolute value. ``scale_from="train"`` (the default) takes that maximum
  over the training part ``values[:t1]`` only, so nothing about the valid/test values leaks into the inputs;
  ``scale_from="all"`` takes it over the whole series, which is what LSTNet itself did (use it to reproduce the
  published figures exactly). A series that is zero over that range keeps scale 1.
* Models see and predict scaled values; metrics are computed on the original scale (predictions and targets
  multiplied back by the per-series scale).

Metrics, as defined in the LSTNet paper, over the evaluated set ``Omega`` of (time ``t``, series ``i``) pairs with
targets ``Y`` and predictions ``P``::

    RSE  = sqrt( sum_{(t,i)} (Y_ti - P_ti)^2 ) / sqrt( sum_{(t,i)} (Y_ti - mean(Y))^2 )
           mean(Y): the mean of all targets in Omega (over time and series)

    CORR = (1/n) sum_i  sum_t (Y_ti - mean_t(Y_i)) (P_ti - mean_t(P_i))
                        / sqrt( sum_t (Y_ti - mean_t(Y_i))^2  *  sum_t (P_ti - mean_t(P_i))^2 )

Lower RSE and higher CORR are better. The correlation of a series whose targets or predictions are constant over the
evaluated period is undefined; such series are left out of the average (and CORR is ``nan`` if all of them are).
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import importlib.resources
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

RESOURCE_DIR = "resources/timeseries"  # inside the jaxnas package
SERIES = {"exchange_rate": "exchange_rate.txt.gz", "ETTh1": "ETTh1.csv.gz"}
HORIZONS = (3, 6, 12, 24)  # the LSTNet horizons
WINDOW = 168  # the LSTNet input window (one week of hourly data)
SPLIT = (0.6, 0.2)  # train and valid fractions; the test part is the rest
SCALE_FROM = ("train", "all")


# ----------------------------------------------------------------------------------------------------------------
# reading


def resource_path(name: str):
    """The shipped file of series ``name`` (a :class:`importlib.resources` traversable)."""
    if name not in SERIES:
        raise ValueError(f"unknown time series {name!r}; shipped: {', '.join(SERIES)} (or give a .csv/.txt[.gz] path)")
    return importlib.resources.files("jaxnas").joinpath(RESOURCE_DIR, SERIES[name])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_table(text: str, source: str = "<text>") -> np.ndarray:
    """A ``(T, n)`` float64 matrix from comma-separated text.

    The first line is a header when one of its fields is not a number where the second line has a number (ETTh1's
    ``date,HUFL,...``); it is skipped. Columns whose first data field is not a number (e.g. ETTh1's ``date``) are
    dropped. Raises ValueError naming ``source`` for an empty table, ragged rows or a non-numeric value in a numeric
    column.
    """
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(f.strip() for f in r)]

    def numeric_columns(row):
        return [j for j, f in enumerate(row) if _is_number(f)]

    if len(rows) > 1 and set(numeric_columns(rows[1])) - set(numeric_columns(rows[0])):
        rows = rows[1:]
    if not rows:
        raise ValueError(f"{source}: no data rows")
    keep = numeric_columns(rows[0])
    if not keep:
        raise ValueError(f"{source}: no numeric column in the first data row {rows[0]!r}")
    width = len(rows[0])
    out = np.empty((len(rows), len(keep)), np.float64)
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"{source}: row {i + 1} has {len(row)} fields, the first data row has {width}")
        try:
            out[i] = [float(row[j]) for j in keep]
        except ValueError:
            raise ValueError(f"{source}: row {i + 1} holds a non-numeric value in a numeric column: {row!r}") from None
    if not np.all(np.isfinite(out)):
        bad = np.argwhere(~np.isfinite(out))[0]
        raise ValueError(f"{source}: non-finite value at row {bad[0] + 1}, numeric column {bad[1] + 1}")
    return out


def load_series(name_or_path: str | Path) -> np.ndarray:
    """The ``(T, n)`` float64 values of a shipped series (``"exchange_rate"``, ``"ETTh1"``) or of a CSV/txt file
    (optionally gzipped; see :func:`parse_table`)."""
    if isinstance(name_or_path, str) and name_or_path in SERIES:
        source = resource_path(name_or_path)
        label = name_or_path
    else:
        source = Path(name_or_path)
        label = str(source)
        if not source.is_file():
            raise ValueError(
                f"time series {label!r} is neither a shipped name ({', '.join(SERIES)}) nor an existing file"
            )
    raw = source.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{label}: not a UTF-8 text file (expected comma-separated numbers)") from None
    return parse_table(text, label)


# ----------------------------------------------------------------------------------------------------------------
# windows


@dataclasses.dataclass(frozen=True)
class Windows:
    """The examples of one split: target times ``targets`` into the scaled series ``data``.

    Example ``k`` has input ``data[t - horizon - window + 1 : t - horizon + 1]`` and target ``data[t]`` with
    ``t = targets[k]``. ``data`` is shared between splits (not copied).
    """

    name: str
    data: np.ndarray = dataclasses.field(repr=False)  # (T, n) scaled, float32
    targets: np.ndarray  # (N,) int64 target times
    window: int
    horizon: int

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    @property
    def n_series(self) -> int:
        return int(self.data.shape[1])


def make_windows(data: np.ndarray, start: int, stop: int, window: int, horizon: int, name: str = "windows") -> Windows:
    """The examples whose target time lies in ``[start, stop)`` (clipped below at the first full window)."""
    if window < 1 or horizon < 1:
        raise ValueError(f"window and horizon must be >= 1, got window={window}, horizon={horizon}")
    first = max(int(start), window + horizon - 1)
    stop = min(int(stop), data.shape[0])
    if stop <= first:
        raise ValueError(
            f"split {name!r} (target times {start}..{stop - 1}) holds no example: a window of {window} steps plus "
            f"horizon {horizon} needs target times >= {window + horizon - 1}"
        )
    targets = np.arange(first, stop, dtype=np.int64)
    targets.setflags(write=False)
    return Windows(name, data, targets, int(window), int(horizon))


def window_batch(w: Windows, targets) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` for the given target times: ``x`` ``(B, window, n)``, ``y`` ``(B, n)``, float32, scaled."""
    t = np.asarray(targets, np.int64)
    offsets = np.arange(-w.horizon - w.window + 1, -w.horizon + 1, dtype=np.int64)
    return w.data[t[:, None] + offsets[None, :]], w.data[t]


def split_windows(w: Windows, fraction: float = 0.5,
                  names: tuple[str, str] = ("train", "val")) -> tuple[Windows, Windows]:
    """A chronological split of ``w`` into the first ``fraction`` of its examples and the rest (for a search: the
    weights train on the first part, the architecture on the second)."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    cut = int(round(len(w) * fraction))
    if cut < 1 or cut >= len(w):
        raise ValueError(f"split {w.name!r} has {len(w)} examples: too few to split at fraction {fraction}")
    a = dataclasses.replace(w, name=names[0], targets=w.targets[:cut])
    b = dataclasses.replace(w, name=names[1], targets=w.targets[cut:])
    return a, b


def _key_seed(key) -> np.random.Generator:
    """A numpy generator seeded from a JAX PRNG key (typed or raw) or an int."""
    if isinstance(key, (int, np.integer)):
        words = [int(key)]
    else:
        import jax

        arr = key
        if hasattr(key, "dtype") and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            arr = jax.random.key_data(key)
        words = [int(v) for v in np.asarray(arr, np.uint32).reshape(-1)]
    return np.random.default_rng(np.random.SeedSequence(words))


def sample_targets(w: Windows, key, batch_size: int) -> np.ndarray:
    """``batch_size`` target times drawn uniformly without replacement, a pure function of ``key``."""
    if not 1 <= batch_size <= len(w):
        raise ValueError(f"batch_size must be in 1..{len(w)} (the examples of split {w.name!r}), got {batch_size}")
    return w.targets[_key_seed(key).choice(len(w), batch_size, replace=False)]


def iterate_batches(
    w: Windows, key=None, batch_size: int = 128, *, drop_remainder: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One pass over ``w`` in batches: shuffled by ``key`` (a JAX PRNG key or an int), in time order when ``key`` is
    None. ``drop_remainder=False`` yields the last, smaller batch too."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = w.targets if key is None else w.targets[_key_seed(key).permutation(len(w))]
    stop = len(order) - len(order) % batch_size if drop_remainder else len(order)
    for i in range(0, stop, batch_size):
        yield window_batch(w, order[i : i + batch_size])


# ----------------------------------------------------------------------------------------------------------------
# the data set


@dataclasses.dataclass(frozen=True)
class ForecastData:
    """A series prepared in the LSTNet protocol (see the module docstring)."""

    name: str
    values: np.ndarray = dataclasses.field(repr=False)  # (T, n) original scale, float64
    scale: np.ndarray  # (n,) float64: values = data * scale
    train: Windows
    valid: Windows
    test: Windows
    window: int
    horizon: int
    scale_from: str
    bounds: tuple[int, int]  # (t1, t2): valid targets start at t1, test targets at t2

    @property
    def n_series(self) -> int:
        return int(self.values.shape[1])

    def split(self, name: str) -> Windows:
        if name not in ("train", "valid", "test"):
            raise ValueError(f"unknown split {name!r}; allowed: train, valid, test")
        return getattr(self, name)


def split_bounds(length: int, split: tuple[float, float] = SPLIT) -> tuple[int, int]:
    """``(t1, t2) = (int(train * T), int((train + valid) * T))``."""
    train, valid = split
    if not (0 < train and 0 < valid and train + valid < 1):
        raise ValueError(f"split fractions must be positive with train + valid < 1, got {split}")
    return int(train * length), int((train + valid) * length)


def max_abs_scale(values: np.ndarray) -> np.ndarray:
    """Per-series maximum absolute value (1 for an all-zero series)."""
    m = np.max(np.abs(values), axis=0)
    return np.where(m > 0, m, 1.0)


def load_forecast(
    name_or_path: str | Path | np.ndarray = "exchange_rate",
    *,
    window: int = WINDOW,
    horizon: int = 24,
    split: tuple[float, float] = SPLIT,
    scale_from: str = "train",
    name: str | None = None,
) -> ForecastData:
    """Load a series (shipped name, file path, or a ``(T, n)`` array) and prepare it in the LSTNet protocol."""
    if scale_from not in SCALE_FROM:
        raise ValueError(f"unknown scale_from {scale_from!r}; allowed: {', '.join(SCALE_FROM)}")
    if isinstance(name_or_path, np.ndarray):
        values = np.asarray(name_or_path, np.float64)
        if values.ndim != 2 or values.shape[0] < 1 or values.shape[1] < 1:
            raise ValueError(f"a series array must be (T, n) with T, n >= 1, got shape {values.shape}")
        label = name or "array"
    else:
        values = load_series(name_or_path)
        label = name or (name_or_path if name_or_path in SERIES else Path(name_or_path).name)
    T = values.shape[0]
    t1, t2 = split_bounds(T, split)
    if window + horizon > t1:
        raise ValueError(
            f"{label}: a window of {window} steps plus horizon {horizon} is longer than the training part "
            f"({t1} of {T} steps)"
        )
    scale = max_abs_scale(values[:t1] if scale_from == "train" else values)
    data = (values / scale).astype(np.float32)
    data.setflags(write=False)
    return ForecastData(
        name=label,
        values=values,
        scale=scale,
        train=make_windows(data, 0, t1, window, horizon, "train"),
        valid=make_windows(data, t1, t2, window, horizon, "valid"),
        test=make_windows(data, t2, T, window, horizon, "test"),
        window=int(window),
        horizon=int(horizon),
        scale_from=scale_from,
        bounds=(t1, t2),
    )


# ----------------------------------------------------------------------------------------------------------------
# metrics (original scale)


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, np.float64)
    p = np.asarray(y_pred, np.float64)
    if y.shape != p.shape or y.ndim != 2 or y.shape[0] < 1:
        raise ValueError(f"targets and predictions must both be (N, n) with N >= 1, got {y.shape} and {p.shape}")
    return y, p


def rse(y_true, y_pred) -> float:
    """Root relative squared error (module docstring) of ``(N, n)`` targets and predictions."""
    y, p = _pair(y_true, y_pred)
    denom = np.sqrt(np.sum((y - y.mean()) ** 2))
    return float(np.sqrt(np.sum((y - p) ** 2)) / denom) if denom > 0 else float("nan")


def corr(y_true, y_pred) -> float:
    """Empirical correlation over time, averaged over series (module docstring), of ``(N, n)`` arrays."""
    y, p = _pair(y_true, y_pred)
    dy, dp = y - y.mean(axis=0), p - p.mean(axis=0)
    denom = np.sqrt(np.sum(dy**2, axis=0) * np.sum(dp**2, axis=0))
    ok = denom > 0
    if not ok.any():
        return float("nan")
    return float(np.mean(np.sum(dy * dp, axis=0)[ok] / denom[ok]))


def forecast_metrics(y_true, y_pred, scale=None) -> dict[str, float]:
    """``{'rse', 'corr'}`` of scaled targets/predictions brought back to the original scale by ``scale`` (n,)."""
    y, p = _pair(y_true, y_pred)
    if scale is not None:
        s = np.asarray(scale, np.float64)
        y, p = y * s, p * s
    return {"rse": rse(y, p), "corr": corr(y, p)}


__all__ = [
    "HORIZONS", "SCALE_FROM", "SERIES", "SPLIT", "WINDOW",
    "ForecastData", "Windows",
    "corr", "forecast_metrics", "iterate_batches", "load_forecast", "load_series", "make_windows", "max_abs_scale",
    "parse_table", "resource_path", "rse", "sample_targets", "split_bounds", "split_windows", "window_batch",
]
