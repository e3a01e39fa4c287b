"""Wide and shallow cells on the NB201 table (offline, exact): do they converge fast but not generalise best?

Shu, Wang and Cai ("Understanding architectures learnt by cell-based neural architecture search", ICLR 2020) find
that the cells popular NAS methods select are the widest and shallowest of their spaces, that such cells converge
fastest (smooth loss landscape, stable gradients), and that this fast convergence, not generalisation, is what the
search rewards. This script asks the question of the whole NB201 table: width and depth of every one of its 15,625
cells (:func:`jaxnas.spaces.graph.cell_shape`), against the CIFAR-10 / CIFAR-100 / ImageNet16-120 accuracy after
12 epochs (what early-stopped evaluations and the searches' proxies see) and after 200 (what counts).

It also places the cells jaxnas's searches derived: the NB201 rows of the collapse study
(experiments/results/nb201_collapse.json: DARTS first/second order, single-level and the DARTS family), the
EnTranNAS rows of ``--searches`` (result files of ``jaxnas search`` runs), and the DARTS-space cells (the published
DARTS_V1/V2, PC-DARTS, and EnTranNAS-DST / TopoNAS genotypes from ``--searches``) on the width/depth axes.

Commands::

    python experiments/wide_shallow.py                                    # table, JSON and picture (seconds)
    python experiments/wide_shallow.py --searches runs/quick-darts/genotype.json runs/quick-entrannas/genotype.json \
        runs/quick-entrannas-dst/genotype.json runs/quick-toponas/genotype.json     # the recorded run

Outputs: ``experiments/results/wide_shallow.json``, ``experiments/wide_shallow.md``, ``docs/images/wide_shallow.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from jaxnas import registry
from jaxnas.benchmarks import nb201
from jaxnas.plot import save_figure
from jaxnas.plot.figures import new_figure
from jaxnas.spaces.genotypes import published_cnn
from jaxnas.spaces.graph import cell_shape

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("cifar10", "cifar100", "imagenet16")


def rank(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), for Spearman correlations."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.arange(len(values), dtype=np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.zeros(len(counts))
    np.add.at(sums, inverse, ranks)
    return (sums / counts)[inverse]


def spearman(a, b) -> float:
    ra, rb = rank(np.asarray(a, np.float64)), rank(np.asarray(b, np.float64))
    return float(np.corrcoef(ra, rb)[0, 1])


def table_shapes(bench) -> tuple[np.ndarray, np.ndarray]:
    space = bench.space
    widths, depths = np.zeros(len(bench)), np.zeros(len(bench), int)
    for i in range(len(bench)):
        s = cell_shape(space.cell_graphs(bench.genotype(i))[0])
        widths[i], depths[i] = s.width, s.depth
    return widths, depths


def study(bench, widths, depths, top: int = 100) -> dict:
    live = depths > 0  # the 341 cells whose output ignores the input are left out
    out = {"cells": int(live.sum()), "left_out_disconnected": int((~live).sum()), "datasets": {}}
    for ds in DATASETS:
        early = bench.metric(ds, "test_acc_12ep")
        final = bench.metric(ds, "test_acc")
        gain = final - early
        by_early = np.argsort(-np.where(live, early, -np.inf))[:top]
        by_final = np.argsort(-np.where(live, final, -np.inf))[:top]
        out["datasets"][ds] = {
            "spearman_width_vs_acc12": round(spearman(widths[live], early[live]), 4),
            "spearman_width_vs_final": round(spearman(widths[live], final[live]), 4),
            "spearman_depth_vs_acc12": round(spearman(depths[live], early[live]), 4),
            "spearman_depth_vs_final": round(spearman(depths[live], final[live]), 4),
            "spearman_width_vs_gain": round(spearman(widths[live], gain[live]), 4),
            "spearman_depth_vs_gain": round(spearman(depths[live], gain[live]), 4),
            f"top{top}_by_acc12": {"mean_width": round(float(widths[by_early].mean()), 3),
                                   "mean_depth": round(float(depths[by_early].mean()), 3)},
            f"top{top}_by_final": {"mean_width": round(float(widths[by_final].mean()), 3),
                                   "mean_depth": round(float(depths[by_final].mean()), 3)},
            "best_by_final": {"arch": bench.arch_str(int(by_final[0])), "width": round(float(widths[by_final[0]]), 3),
                              "depth": int(depths[by_final[0]]), "final": float(final[by_final[0]])},
            "best_by_acc12": {"arch": bench.arch_str(int(by_early[0])), "width": float(widths[by_early[0]]),
                              "depth": int(depths[by_early[0]]), "acc12": float(early[by_early[0]]),
                              "final": float(final[by_early[0]])},
        }
    groups = []
    early, final = bench.metric("cifar10", "test_acc_12ep"), bench.metric("cifar10", "test_acc")
    for w in np.unique(widths[live]):
        for d in np.unique(depths[live]):
            sel = live & (widths == w) & (depths == d)
            if sel.sum():
                groups.append({"width": round(float(w), 4), "depth": int(d), "cells": int(sel.sum()),
                               "cifar10_acc12_mean": round(float(early[sel].mean()), 2),
                               "cifar10_acc12_best": round(float(early[sel].max()), 2),
                               "cifar10_final_mean": round(float(final[sel].mean()), 2),
                               "cifar10_final_best": round(float(final[sel].max()), 2)})
    out["cifar10_groups"] = groups
    return out


def placed_nb201(bench, widths, depths, searches) -> list[dict]:
    """The NB201 cells of jaxnas's searches: collapse-study rows and EnTranNAS genotype files."""
    rows = []
    collapse = ROOT / "experiments" / "results" / "nb201_collapse.json"
    sources = []
    if collapse.is_file():
        sources += [(r["row"], r["arch"]) for r in json.loads(collapse.read_text())["rows"]]
    for path in searches:
        data = json.loads(Path(path).read_text())
        if data.get("space") == "nb201":
            sources.append((f"{data.get('method', Path(path).parent.name)}", data["arch"]))
    early, final = bench.metric("cifar10", "test_acc_12ep"), bench.metric("cifar10", "test_acc")
    for name, arch in sources:
        i = bench.index(arch)
        rows.append({"search": name, "arch": arch, "width": round(float(widths[i]), 4), "depth": int(depths[i]),
                     "cifar10_acc12": round(float(early[i]), 2), "cifar10_final": round(float(final[i]), 2),
                     "width_percentile": round(float((widths < widths[i]).mean() * 100), 1),
                     "depth_percentile": round(float((depths < depths[i]).mean() * 100), 1)})
    return rows


def placed_darts(searches) -> list[dict]:
    space = registry.get_space("darts")
    rows = []
    sources = [(name, g) for name, g in sorted(published_cnn().items())]
    for path in searches:
        data = json.loads(Path(path).read_text())
        if data.get("space") == "darts":
            sources.append((str(Path(path).parent.name), space.from_json(data["genotype"])))
    for name, g in sources:
        normal, reduce = (cell_shape(graph) for graph in space.cell_graphs(g))
        rows.append({"genotype": name, "normal_width": round(normal.width, 3), "normal_depth": normal.depth,
                     "reduce_width": round(reduce.width, 3), "reduce_depth": reduce.depth,
                     "normal_fan_in": list(g.fan_in("normal"))})
    return rows


def markdown(result: dict) -> str:
    s = result["nb201"]
    lines = ["# Wide and shallow cells on the NB201 table", "",
             "Written by `python experiments/wide_shallow.py` from the NB201 table alone (offline, exact). Width in "
             "units of the cell's channel count c and depth in connections, as Shu et al. (ICLR 2020) define them "
             "(`jaxnas.spaces.graph.cell_shape`); NB201's output node sums ops, so it counts as a node for the "
             f"width. {s['cells']} cells ({s['left_out_disconnected']} whose output ignores the input left out).", "",
             "## Spearman rank correlations", "",
             "| dataset | width vs acc@12 | width vs final | depth vs acc@12 | depth vs final | width vs gain "
             "| depth vs gain |", "|---|---|---|---|---|---|---|"]
    for ds, v in s["datasets"].items():
        lines.append(f"| {ds} | {v['spearman_width_vs_acc12']} | {v['spearman_width_vs_final']} | "
                     f"{v['spearman_depth_vs_acc12']} | {v['spearman_depth_vs_final']} | "
                     f"{v['spearman_width_vs_gain']} | {v['spearman_depth_vs_gain']} |")
    lines += ["", "gain = final (200-epoch) minus 12-epoch test accuracy.", "",
              "## The best cells by 12-epoch and by final accuracy", "",
              "| dataset | top-100 by acc@12: width, depth | top-100 by final: width, depth | best final cell |",
              "|---|---|---|---|"]
    for ds, v in s["datasets"].items():
        a, b = v["top100_by_acc12"], v["top100_by_final"]
        best = v["best_by_final"]
        lines.append(f"| {ds} | {a['mean_width']}, {a['mean_depth']} | {b['mean_width']}, {b['mean_depth']} | "
                     f"`{best['arch']}` ({best['width']}c, depth {best['depth']}, {best['final']:.2f}%) |")
    lines += ["", "## CIFAR-10 by (width, depth)", "", "| width | depth | cells | acc@12 mean | acc@12 best | "
              "final mean | final best |", "|---|---|---|---|---|---|---|"]
    for g in s["cifar10_groups"]:
        lines.append(f"| {g['width']} | {g['depth']} | {g['cells']} | {g['cifar10_acc12_mean']} | "
                     f"{g['cifar10_acc12_best']} | {g['cifar10_final_mean']} | {g['cifar10_final_best']} |")
    lines += ["", "## Where jaxnas's searches' NB201 cells sit", "",
              "Percentile: share of the table's cells that are narrower (shallower).", "",
              "| search | cell | width (pct) | depth (pct) | CIFAR-10 acc@12 | final |", "|---|---|---|---|---|---|"]
    for r in result["nb201_searches"]:
        lines.append(f"| {r['search']} | `{r['arch']}` | {r['width']} ({r['width_percentile']}) | {r['depth']} "
                     f"({r['depth_percentile']}) | {r['cifar10_acc12']} | {r['cifar10_final']} |")
    lines += ["", "## DARTS-space cells", "", "| genotype | normal width, depth | reduce width, depth | normal fan-in |",
              "|---|---|---|---|"]
    for r in result["darts_cells"]:
        lines.append(f"| {r['genotype']} | {r['normal_width']}c, {r['normal_depth']} | {r['reduce_width']}c, "
                     f"{r['reduce_depth']} | {r['normal_fan_in']} |")
    return "\n".join(lines) + "\n"


def picture(result: dict, path: Path):
    groups = result["nb201"]["cifar10_groups"]
    fig = new_figure(10, 4)
    axes = fig.subplots(1, 2)
    for ax, key, title in ((axes[0], "cifar10_acc12_mean", "CIFAR-10 test acc after 12 epochs (mean)"),
                           (axes[1], "cifar10_final_mean", "CIFAR-10 test acc after 200 epochs (mean)")):
        sc = ax.scatter([g["width"] for g in groups], [g["depth"] for g in groups], c=[g[key] for g in groups],
                        s=[20 + g["cells"] / 15 for g in groups], cmap="viridis")
        for r in result["nb201_searches"]:
            ax.plot(r["width"], r["depth"], "x", color="red", ms=6)
        ax.set_xlabel("cell width (c)")
        ax.set_ylabel("cell depth")
        ax.set_title(title, fontsize=9)
        fig.colorbar(sc, ax=ax)
    fig.suptitle("NB201 cells by width and depth (marker size: cells; red x: cells jaxnas's searches derived)",
                 fontsize=9)
    save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--searches", nargs="*", default=[], help="genotype.json files of searches to place")
    p.add_argument("--out", default=str(ROOT / "experiments" / "results" / "wide_shallow.json"))
    p.add_argument("--markdown", default=str(ROOT / "experiments" / "wide_shallow.md"))
    p.add_argument("--picture", default=str(ROOT / "docs" / "images" / "wide_shallow.png"))
    args = p.parse_args(argv)
    bench = nb201.load()
    widths, depths = table_shapes(bench)
    result = {"nb201": study(bench, widths, depths), "nb201_searches": placed_nb201(bench, widths, depths,
                                                                                     args.searches),
              "darts_cells": placed_darts(args.searches)}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    Path(args.markdown).write_text(markdown(result))
    picture(result, Path(args.picture))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
