"""NAS-Bench-201 as a tabular benchmark: all 15,625 cells, shipped compressed inside the package.

    >>> from jaxnas.benchmarks import nb201
    >>> bench = nb201.load()
    >>> bench.query("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    ...             dataset="cifar10")["test_acc"]

Rows are in the official NB201 index order. An architecture can be given as that index (int), an arch string, an
:class:`~jaxnas.spaces.genotypes.NB201Genotype` or an integer array of op indices per edge (``NB201Space.to_indices``
order, last axis of length 6, any leading shape). For jitted searches, :meth:`NB201Bench.by_code` reorders any
column into *code order* (row ``code(ops) = sum_e ops[e] * 5**(5-e)``, the order of ``NB201Space.enumerate()``),
so a metric of a batch of op-index arrays is a single gather: ``table[code(ops)]``.

Metrics per dataset (``cifar10``, ``cifar100``, ``imagenet16``; ``cifar10-valid`` and ``ImageNet16-120`` are
accepted as aliases):

* ``test_acc``: final (200-epoch) test accuracy, % (cifar10: trained on train+valid, as the NB201 paper reports);
* ``test_acc_12ep``, ``valid_acc_12ep``: accuracy after the 12-epoch schedule; ``valid_acc_12ep`` is the reward of
  the NB201 paper's discrete baselines (cifar10: the validation split of ``cifar10-valid``);
* ``valid_acc``: 200-epoch validation accuracy (cifar10-valid only; NaN for the other datasets);
* ``params_mb``, ``flops_m``: millions of parameters, MFLOPs of the standard network (C=16, N=5);
* ``isomorph_id`` (dataset-free): the class of computationally identical cells;
* latencies (ms, from HELP) on the settings in :attr:`NB201Bench.devices`, via :meth:`NB201Bench.latency`.

Sources and licences: ``jaxnas/resources/nb201/SOURCES.md``.
"""

from __future__ import annotations

import dataclasses
import time
from functools import lru_cache
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.spaces.genotypes import NB201Genotype
from jaxnas.spaces.nb201 import NB201Space
from jaxnas import strategies

DATASETS = ("cifar10", "cifar100", "imagenet16")
METRICS = ("test_acc", "test_acc_12ep", "valid_acc_12ep", "valid_acc", "params_mb", "flops_m")
_ALIASES = {
    "cifar10-valid": "cifar10",
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
    "imagenet16-120": "imagenet16",
    "imagenet-16-120": "imagenet16",
    "imagenet": "imagenet16",
}
_VALID_12EP = {"cifar10": "cifar10valid_valid_12ep", "cifar100": "cifar100_valid_12ep",
               "imagenet16": "imagenet16_valid_12ep"}
NUM_CELLS = 15625


def canonical_dataset(name: str) -> str:
    """``cifar10`` / ``cifar100`` / ``imagenet16`` (aliases accepted); anything else is a ValueError."""
    if not isinstance(name, str):
        raise ValueError(f"dataset must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown NB201 dataset {name!r}; allowed: {', '.join(DATASETS)} "
                         "(aliases: cifar10-valid, ImageNet16-120)")
    return key


def column_name(dataset: str, metric: str) -> str:
    """The stored column behind ``(dataset, metric)``."""
    ds = canonical_dataset(dataset)
    if metric == "test_acc":
        return f"{ds}_test"
    if metric == "test_acc_12ep":
        return f"{ds}_test_12ep"
    if metric == "valid_acc_12ep":
        return _VALID_12EP[ds]
    if metric == "valid_acc":
        return "cifar10valid_valid" if ds == "cifar10" else ""
    if metric in ("params_mb", "flops_m"):
        return f"{metric}_{ds}"
    raise ValueError(f"unknown NB201 metric {metric!r}; allowed: {', '.join(METRICS)}")


def is_connected(ops) -> np.ndarray:
    """Whether the cell's output depends on its input (some path 0 -> 3 avoids ``none``), for op-index arrays
    (..., 6). The 341 disconnected cells output zeros; compilers that remove dead code (XLA, the TFLite runs of
    HELP's pixel3 / raspi4) make them almost free, which an additive latency model cannot capture."""
    live = np.asarray(ops) != 0  # op 0 is none
    n1 = live[..., 0]
    n2 = live[..., 1] | (live[..., 2] & n1)
    return live[..., 3] | (live[..., 4] & n1) | (live[..., 5] & n2)


@dataclasses.dataclass(frozen=True, eq=False)
class NB201Bench:
    """The loaded table. Build it with :func:`load` (cached)."""

    ops: np.ndarray  # (15625, 6) uint8, op index per edge, official row order
    columns: dict[str, np.ndarray]  # name -> (15625,) array, official row order
    space: NB201Space
    code_to_index: np.ndarray  # (5**6,) int32: base-5 code -> official row
    index_to_code: np.ndarray  # (15625,) int32
    _by_string: dict[str, int]

    # -- shapes and names -----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.ops.shape[0]

    @property
    def devices(self) -> tuple[str, ...]:
        """The 27 HELP latency settings, e.g. ``"titanxp_32"`` (GPU at batch 32), ``"pixel3"``, ``"gold_6226"``."""
        return tuple(sorted(n[4:] for n in self.columns if n.startswith("lat_")))

    # -- addressing ------------------------------------------------------------------------------------------------
    def code(self, ops):
        """Base-5 code of op-index arrays (last axis = 6 edges); works on numpy and jax arrays (jit-friendly)."""
        k = len(self.space.primitives)
        weights = k ** np.arange(self.space.num_edges - 1, -1, -1)
        if isinstance(ops, jax.Array):  # possibly traced
            return (ops.astype(jnp.int32) * jnp.asarray(weights, jnp.int32)).sum(-1)
        return (np.asarray(ops).astype(np.int64) * weights).sum(-1)

    def index(self, arch):
        """Official NB201 index of ``arch`` (int, arch string, NB201Genotype, or op-index array of any batch shape)."""
        if isinstance(arch, (bool, np.bool_)):
            raise ValueError(f"not an NB201 architecture: {arch!r}")
        if isinstance(arch, (int, np.integer)):
            if not 0 <= int(arch) < len(self):
                raise ValueError(f"NB201 index {int(arch)} out of range [0, {len(self)})")
            return int(arch)
        if isinstance(arch, str):
            hit = self._by_string.get(arch)
            if hit is None:  # not canonical: parse (clear errors for malformed strings), then look up by code
                hit = int(self.code_to_index[self.code(self.space.to_indices(self.space.parse(arch)))])
            return hit
        if isinstance(arch, NB201Genotype):
            return int(self.code_to_index[self.code(self.space.to_indices(arch))])
        ops = np.asarray(arch)
        if ops.ndim == 0 or ops.shape[-1] != self.space.num_edges or not np.issubdtype(ops.dtype, np.integer):
            raise ValueError(f"not an NB201 architecture: expected an index, arch string, NB201Genotype or integer "
                             f"op-index array with last axis {self.space.num_edges}; got {type(arch).__name__} "
                             f"{getattr(ops, 'shape', '')}")
        if ops.size and (ops.min() < 0 or ops.max() >= len(self.space.primitives)):
            raise ValueError(f"op indices must lie in [0, {len(self.space.primitives)})")
        rows = self.code_to_index[self.code(ops)]
        return int(rows) if rows.ndim == 0 else rows

    def arch_str(self, index: int) -> str:
        return self.space.format(self.genotype(index))

    def genotype(self, index: int) -> NB201Genotype:
        return self.space.from_indices(self.ops[self.index(index)])

    # -- values ----------------------------------------------------------------------------------------------------
    def column(self, name: str) -> np.ndarray:
        """A stored column by its CSV name (official row order)."""
        if name not in self.columns:
            raise ValueError(f"unknown NB201 column {name!r}; known: {', '.join(sorted(self.columns))}")
        return self.columns[name]

    def metric(self, dataset: str, metric: str) -> np.ndarray:
        """Column of ``metric`` on ``dataset`` over all cells (official row order)."""
        name = column_name(dataset, metric)
        if not name:
            return np.full(len(self), np.nan, np.float32)
        return self.columns[name]

    def by_code(self, values: np.ndarray) -> np.ndarray:
        """Reorder a per-cell array from official order into code order (for ``table[code(ops)]`` gathers)."""
        return np.asarray(values)[self.code_to_index]

    def query(self, arch, dataset: str = "cifar10") -> dict:
        """All metrics of one architecture on one dataset, plus its index, string and isomorphism class."""
        i = self.index(arch)
        if not isinstance(i, int):
            raise ValueError("query takes one architecture; use metric()/lookup() for batches")
        ds = canonical_dataset(dataset)
        out = {"index": i, "arch": self.arch_str(i), "dataset": ds, "isomorph_id": int(self.columns["isomorph_id"][i])}
        for m in METRICS:
            out[m] = _as_printed(self.metric(ds, m)[i])
        return out

    def lookup(self, arch, dataset: str, metric: str):
        """``metric`` of one or many architectures (same forms as :meth:`index`)."""
        return self.metric(dataset, metric)[self.index(arch)]

    def latency(self, arch, device: str):
        """Measured latency (ms) on a HELP device setting, e.g. ``latency(g, "titanxp_1")``."""
        name = f"lat_{device}"
        if name not in self.columns:
            raise ValueError(f"unknown latency device {device!r}; known: {', '.join(self.devices)}")
        return self.columns[name][self.index(arch)]

    def optimum(self, dataset: str, metric: str = "test_acc") -> tuple[int, float]:
        """(index, value) of the best cell by ``metric`` on ``dataset``."""
        values = self.metric(dataset, metric)
        i = int(np.nanargmax(values))
        return i, float(values[i])


def _as_printed(value) -> float:
    """A stored float32 as the CSV printed it (every value there has at most 6 significant digits)."""
    return float(f"{float(value):.6g}")


@lru_cache(maxsize=1)
def load() -> NB201Bench:
    """Load the shipped table (cached)."""
    path = resources.files("jaxnas").joinpath("resources/nb201/nb201.npz")
    with path.open("rb") as f, np.load(f) as z:
        arrays = {k: z[k] for k in z.files}
    space = NB201Space()
    primitives = tuple(str(p) for p in arrays.pop("primitives"))
    if primitives != space.primitives:
        raise ValueError(f"the shipped NB201 table uses ops {primitives}, the space {space.primitives}")
    ops = arrays.pop("ops")
    bench = NB201Bench(ops, arrays, space, np.empty(0, np.int32), np.empty(0, np.int32), {})
    index_to_code = bench.code(ops).astype(np.int32)
    code_to_index = np.empty(len(primitives) ** space.num_edges, np.int32)
    code_to_index[index_to_code] = np.arange(len(ops), dtype=np.int32)
    names = np.array(primitives)[ops]  # (15625, 6) op names
    by_string = {}
    for k, row in enumerate(names.tolist()):
        by_string[f"|{row[0]}~0|+|{row[1]}~0|{row[2]}~1|+|{row[3]}~0|{row[4]}~1|{row[5]}~2|"] = k
    return dataclasses.replace(bench, code_to_index=code_to_index, index_to_code=index_to_code, _by_string=by_string)


# -- simulated searches -----------------------------------------------------------------------------------------
def reward_objective(bench: NB201Bench, dataset: str, metric: str = "valid_acc_12ep"):
    """A pure, jittable objective ``(B, 6) op indices -> (B,)`` looking ``metric`` up in the table."""
    table = jnp.asarray(bench.by_code(bench.metric(dataset, metric)))
    return lambda cands: table[bench.code(cands)]


@lru_cache(maxsize=16)
def _cached_objective(dataset: str, metric: str):
    return reward_objective(load(), dataset, metric)


@lru_cache(maxsize=16)
def _cached_strategy(name: str, kwargs: tuple):
    return strategies.get_strategy(name, load().space, **dict(kwargs))


def best_so_far(bench: NB201Bench, candidates: np.ndarray, rewards: np.ndarray, dataset: str,
                metric: str = "test_acc") -> np.ndarray:
    """``(runs, queries)``: ``metric`` of the cell with the highest reward among each run's first q+1 queries
    (first of equals, as the run's final pick)."""
    runs, queries = rewards.shape
    values = bench.metric(dataset, metric)[bench.index(candidates.reshape(runs * queries, -1))]
    values = np.asarray(values, np.float64).reshape(runs, queries)
    out = np.empty_like(values)
    best_r, best_v = np.full(runs, -np.inf), np.zeros(runs)
    for q in range(queries):
        better = rewards[:, q] > best_r
        best_r = np.where(better, rewards[:, q], best_r)
        best_v = np.where(better, values[:, q], best_v)
        out[:, q] = best_v
    return out


def benchmark_strategy(strategy: str, dataset: str = "cifar10", queries: int = 100, runs: int = 100, seed: int = 0,
                       reward: str = "valid_acc_12ep", report: str = "test_acc", **strategy_kwargs) -> dict:
    """Simulate ``runs`` searches of ``queries`` table look-ups each (vmapped, jitted) and summarise them.

    Every run returns the queried cell with the highest ``reward`` (first of equals); the summary is the mean and
    (population) standard deviation over runs of that cell's ``report`` metric, as in the NB201 paper's Table 5, and
    ``best_so_far``: the mean and std over runs of that metric for the best cell after each query (the curve
    :func:`jaxnas.plot.plot_strategy_comparison` draws).
    """

    if strategy not in strategies.STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; allowed: {', '.join(strategies.STRATEGIES)}")
    ds = canonical_dataset(dataset)
    if int(queries) < 1 or int(runs) < 1:
        raise ValueError(f"queries and runs must be >= 1, got {queries} and {runs}")
    bench = load()
    column_name(ds, reward), column_name(ds, report)  # validate the metric names
    if strategy == "bo":
        strategy_kwargs.setdefault("capacity", max(int(queries), 2))
    strat = _cached_strategy(strategy, tuple(sorted(strategy_kwargs.items())))  # same objects: no recompiles
    start = time.perf_counter()
    hist = strategies.simulate_runs(strat, _cached_objective(ds, reward), int(queries), int(seed), int(runs))
    best = np.asarray(jax.device_get(hist.best))
    seconds = time.perf_counter() - start
    rows = bench.index(best)
    final = bench.metric(ds, report)[rows].astype(np.float64)
    opt_index, opt_value = bench.optimum(ds, report)
    curve = best_so_far(bench, np.asarray(jax.device_get(hist.candidates)), np.asarray(jax.device_get(hist.rewards)),
                        ds, report)
    return {
        "benchmark": "nb201", "strategy": strategy, "dataset": ds, "queries": int(queries), "runs": int(runs),
        "seed": int(seed), "reward": reward, "metric": report,
        "mean": round(float(final.mean()), 4), "std": round(float(final.std()), 4),
        "mean_reward": round(float(np.asarray(hist.best_reward, np.float64).mean()), 4),
        "optimum": round(opt_value, 4), "optimum_index": opt_index,
        "found_optimum": round(float((rows == opt_index).mean()), 4),
        "best_indices": [int(r) for r in np.atleast_1d(rows)],
        "best_so_far": {"mean": np.round(curve.mean(0), 4).tolist(), "std": np.round(curve.std(0), 4).tolist()},
        "seconds": round(seconds, 2),
    }
