"""Pictures of tabular-benchmark work: discrete strategies compared on NB201, latency predictors, and the
accuracy/latency Pareto front of NB201 on one device."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from jaxnas.benchmarks.nb201 import NB201Bench, canonical_dataset, column_name
from jaxnas.plot.figures import new_figure, styled

STRATEGY_COLORS = {"random": "#7f7f7f", "rea": "#1f77b4", "reinforce": "#d62728", "bo": "#2ca02c"}


@styled
def plot_strategy_comparison(results: Sequence[dict], title: str | None = None) -> Figure:
    """Best-so-far test accuracy against queries, mean and a +-1 std band over runs, one line per strategy, with the
    table's optimum as a dashed line. ``results`` are :func:`jaxnas.benchmarks.nb201.benchmark_strategy` outputs
    (their ``best_so_far`` curves), all on one data set."""
    results = list(results)
    if not results:
        raise ValueError("plot_strategy_comparison needs at least one benchmark result")
    missing = [r.get("strategy", "?") for r in results if "best_so_far" not in r]
    if missing:
        raise ValueError(f"results without a best_so_far curve: {', '.join(missing)} (from benchmark_strategy)")
    datasets = sorted({r["dataset"] for r in results})
    if len(datasets) > 1:
        raise ValueError(f"results from several data sets ({', '.join(datasets)}): compare one at a time")
    fig = new_figure(6.0, 4.0)
    ax = fig.subplots()
    for i, r in enumerate(results):
        mean = np.asarray(r["best_so_far"]["mean"])
        std = np.asarray(r["best_so_far"]["std"])
        q = np.arange(1, len(mean) + 1)
        color = STRATEGY_COLORS.get(r["strategy"], f"C{i}")
        ax.plot(q, mean, color=color, lw=1.6, label=f"{r['strategy']} ({r['runs']} runs)",
                gid=f"strategy:{r['strategy']}")
        ax.fill_between(q, mean - std, mean + std, color=color, alpha=0.18, lw=0, gid=f"band:{r['strategy']}")
    optimum = results[0]["optimum"]
    ax.axhline(optimum, color="black", ls="--", lw=1.0, label=f"optimum {optimum:.2f}", gid="optimum")
    ax.set_xlabel("queries")
    ax.set_ylabel(f"test accuracy of the best cell so far (%), {datasets[0]}")
    ax.set_xscale("log")
    low = min(float(np.min(np.asarray(r["best_so_far"]["mean"])[len(r["best_so_far"]["mean"]) // 10:]))
              for r in results)
    ax.set_ylim(max(low - 2.0, 0.0), optimum + 0.6)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.set_title(title or "NAS-Bench-201: discrete strategies (reward: 12-epoch validation accuracy)")
    return fig


@styled
def plot_latency_fit(predicted, measured, title: str | None = None, unit: str = "ms") -> Figure:
    """Predicted against measured latency, one point per architecture, with the line y = x and the mean relative
    error in the title."""
    predicted, measured = np.asarray(predicted, np.float64).ravel(), np.asarray(measured, np.float64).ravel()
    if predicted.shape != measured.shape or predicted.size == 0:
        raise ValueError(f"predicted and measured latencies must be the same non-empty length, got "
                         f"{predicted.size} and {measured.size}")
    err = float(np.mean(np.abs(predicted - measured) / np.maximum(np.abs(measured), 1e-12)))
    fig = new_figure(4.4, 4.2)
    ax = fig.subplots()
    ax.scatter(measured, predicted, s=8, alpha=0.6, lw=0, gid="latency:points")
    lo, hi = float(min(measured.min(), predicted.min())), float(max(measured.max(), predicted.max()))
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--", gid="latency:identity")
    ax.set_xlabel(f"measured latency ({unit})")
    ax.set_ylabel(f"predicted latency ({unit})")
    ax.set_title(f"{title or 'latency predictor'}\nmean relative error {100 * err:.1f}% over {measured.size}")
    return fig


def pareto_front(latency, accuracy) -> np.ndarray:
    """Indices of the points no other point beats on both axes (lower latency, higher accuracy), by latency."""
    latency, accuracy = np.asarray(latency, np.float64), np.asarray(accuracy, np.float64)
    ok = np.flatnonzero(np.isfinite(latency) & np.isfinite(accuracy))
    order = ok[np.lexsort((-accuracy[ok], latency[ok]))]
    front, best = [], -np.inf
    for i in order:
        if accuracy[i] > best:
            front.append(i)
            best = accuracy[i]
    return np.asarray(front, np.int64)


@styled
def plot_pareto(bench: NB201Bench, device: str, dataset: str = "cifar10", metric: str = "test_acc",
                marked: Mapping[str, object] | None = None, title: str | None = None) -> Figure:
    """Accuracy against measured latency of all NB201 cells on ``device`` (a HELP setting, ``bench.devices``),
    the Pareto front as a line, and the ``marked`` genotypes (label -> genotype or arch string), e.g. a search's
    result, as stars."""
    ds = canonical_dataset(dataset)
    accuracy = bench.metric(ds, metric).astype(np.float64)
    if f"lat_{device}" not in bench.columns:
        raise ValueError(f"unknown latency device {device!r}; known: {', '.join(bench.devices)}")
    latency = bench.columns[f"lat_{device}"].astype(np.float64)
    front = pareto_front(latency, accuracy)
    fig = new_figure(6.0, 4.2)
    ax = fig.subplots()
    ax.scatter(latency, accuracy, s=3, alpha=0.25, color="#7f7f7f", lw=0, gid="pareto:cells", rasterized=True)
    ax.plot(latency[front], accuracy[front], color="#d62728", lw=1.4, marker="o", ms=2.5,
            label=f"Pareto front ({front.size} cells)", gid="pareto:front")
    for i, (label, arch) in enumerate((marked or {}).items()):
        row = int(bench.index(arch))
        ax.scatter([latency[row]], [accuracy[row]], marker="*", s=160, color=f"C{i}", edgecolor="black", lw=0.6,
                   zorder=5, label=f"{label}: {accuracy[row]:.2f}%, {latency[row]:.2f} ms", gid=f"marked:{label}")
    ax.set_xlabel(f"latency on {device} (ms, measured: HELP)")
    ax.set_ylabel(f"{column_name(ds, metric)} (%)")
    finite = accuracy[np.isfinite(accuracy)]
    ax.set_ylim(np.percentile(finite, 5) - 2, finite.max() + 1)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    ax.set_title(title or f"NAS-Bench-201 {ds}: accuracy against latency")
    return fig


__all__ = ["pareto_front", "plot_latency_fit", "plot_pareto", "plot_strategy_comparison"]
