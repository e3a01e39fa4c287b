"""The NB201 collapse study: does bi-level DARTS drift towards parameter-free ops at a small CPU budget, and do
single-level optimization and the DARTS-family fixes keep it from doing so?

Every row is one search on the NB201 space with ONE budget (supernet C=8, one cell per stage; the full
Fashion-MNIST training set from ../shared/data/fashion_mnist, padded to 32x32 and split in halves; 10 epochs of 100
steps at batch 64, so 64,000 weight-half images per search; every other setting the method's default). No CIFAR
data is available offline: the derived cells are looked up in the NB201 table, so their CIFAR-10/100 and
ImageNet16-120 test accuracies measure how well a cell found on Fashion-MNIST transfers, not the search's own task.

Each search runs through the resumable runner in ``WORKDIR/<row>`` (the same command continues a cut-short study;
a finished row is read back, not rerun). Results: ``experiments/results/nb201_collapse.json`` (every row: the
derived cell, its op counts, its table accuracies, the per-epoch trajectory), the markdown table
``experiments/nb201_collapse.md`` (written by ``--table``) and the trajectory picture
``docs/images/nb201_collapse.png``.

Commands::

    python experiments/nb201_collapse.py --workdir runs/nb201_collapse          # the recorded study (3.6 h wall)
    python experiments/nb201_collapse.py --rows pdarts --workdir runs/nb201_collapse  # one row, merged in
    python experiments/nb201_collapse.py --workdir /tmp/c --quick               # every row for a few steps
    python experiments/nb201_collapse.py --table                                # the table of the results file
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from jaxnas import registry
from jaxnas.benchmarks import nb201
from jaxnas.plot import save_figure
from jaxnas.plot.figures import new_figure
from jaxnas.runners.progressive import run_adaptive, run_progressive
from jaxnas.runners.search import METHODS, SearchConfig, run_search

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "nb201_collapse.json"
TABLE = ROOT / "experiments" / "nb201_collapse.md"
PICTURE = ROOT / "docs" / "images" / "nb201_collapse.png"
SHARED = ROOT.parent / "shared" / "data" / "fashion_mnist"
DATASETS = ("cifar10", "cifar100", "imagenet16")
PARAMETER_FREE = ("skip_connect", "avg_pool_3x3", "none")

# (row, method, optimization, seeds, extra config fields)
ROWS = (
    ("darts 1st", "darts", "bilevel-1st", (0, 1), {}),
    ("darts 2nd (fd)", "darts", "bilevel-2nd", (0,), {"hessian": "finite_difference"}),
    ("darts single-level", "darts", "single-level", (0, 1), {}),
    ("gdas", "gdas", "bilevel-1st", (0,), {}),
    ("snas", "snas", "bilevel-1st", (0,), {}),
    ("fairdarts", "fairdarts", "bilevel-1st", (0,), {}),
    ("fairdarts single-level", "fairdarts", "single-level", (0,), {}),
    ("drnas", "drnas", "bilevel-1st", (0,), {}),
    ("drnas single-level", "drnas", "single-level", (0,), {}),
    ("sdarts-rs", "sdarts-rs", "bilevel-1st", (0,), {}),
    ("sdarts-adv", "sdarts-adv", "bilevel-1st", (0,), {}),
    ("msdarts", "msdarts", "bilevel-1st", (0,), {}),
    ("pcdarts", "pcdarts", "bilevel-1st", (0,), {}),
    ("pcdarts single-level", "pcdarts", "single-level", (0,), {}),
    # the early-stop rule may fire from epoch 0 on (its default start, epoch 10, is past this budget's end)
    ("rdarts", "rdarts", "bilevel-1st", (0,), {"es_start_epoch": 0}),
    ("dartsprime", "dartsprime", "bilevel-1st", (0,), {}),
    ("dartsprime single-level", "dartsprime", "single-level", (0,), {}),
    ("dartsprime clipped", "dartsprime", "bilevel-1st", (0,), {"relaxation": "clipped"}),
    ("asap", "asap", "bilevel-1st", (0,), {}),
    ("asap single-level", "asap", "single-level", (0,), {}),
    # P-DARTS within the same budget: 2 stages of 5 epochs, 1 then 2 cells per stage, 3 then 1 of NB201's 5 ops
    # per edge (its 8 -> 5 -> 3 -> 1 schedule is the DARTS space's; NB201 has no skip cap)
    ("pdarts", "pdarts", "bilevel-1st", (0,), {"stage_depths": (1, 2), "stage_ops": (3, 1),
                                               "stage_skip_dropout": (0.1, 0.4), "max_skips": None, "epochs": 5}),
    ("drnas-progressive", "drnas-progressive", "bilevel-1st", (0,), {}),
    ("rdarts-ada", "rdarts-ada", "bilevel-1st", (0,), {"es_start_epoch": 0}),
    # EnTranNAS (issue 18): the last cell an Engine-cell, the other two Transit-cells (the derived cell)
    ("entrannas", "entrannas", "bilevel-1st", (0,), {}),
    ("entrannas single-level", "entrannas", "single-level", (0,), {}),
)


def config(method, optimization, seed, extra, workdir, quick) -> SearchConfig:
    epochs, steps = (2, 3) if quick else (10, 100)
    fields = {"epochs": epochs, **METHODS[method], **extra}
    if quick:
        fields["epochs"] = 2
    return SearchConfig(space="nb201", optimization=optimization, dataset=f"fashion_mnist:{SHARED}", batch_size=64,
                        width=8, depth=1, steps_per_epoch=steps, seed=seed, workdir=str(workdir),
                        progress=False, checkpoint_every=100, log_every=20, **fields)


def op_counts(genotype) -> dict:
    return {op: sum(o == op for o in genotype.ops) for op in ("skip_connect", "avg_pool_3x3", "none")} | \
        {"parameter_free": sum(o in PARAMETER_FREE for o in genotype.ops)}


def trajectory(workdir: Path, bench) -> list[dict]:
    """The derived cell after every epoch: its CIFAR-10 table accuracy and skip count."""
    space = registry.get_space("nb201")
    out = []
    for line in (workdir / "genotypes.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("epoch") is None:
            continue
        g = space.from_json(r["genotype"])
        out.append({"epoch": r["epoch"], "step": r["step"], "arch": space.format(g),
                    "cifar10_test": round(float(bench.query(g, "cifar10")["test_acc"]), 2),
                    "skip_connect": op_counts(g)["skip_connect"], "parameter_free": op_counts(g)["parameter_free"]})
    return out


def search_seconds(workdir: Path, fallback: float) -> float:
    """The search's wall time as its last logged record says (so a finished row read back keeps it)."""
    times = [json.loads(line).get("time") for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    times = [t for t in times if isinstance(t, (int, float))]
    return round(max(times) if times else fallback, 1)


def run_row(row, method, optimization, seed, extra, workdir: Path, bench, quick) -> dict:
    cfg = config(method, optimization, seed, extra, workdir / f"{row.replace(' ', '_')}_seed{seed}", quick)
    start = time.time()
    stages = [Path(cfg.workdir) / f"stage{k}" for k in range(len(cfg.stage_depths))] or [Path(cfg.workdir)]
    if cfg.stage_depths:
        result = run_progressive(cfg)
    elif cfg.adaptive_regularization:  # DARTS-ADA: every leg's seconds; the trajectory of the last leg
        result = run_adaptive(cfg)
        stages = [Path(cfg.workdir) / f"iter{k + 1}" for k in range(len(result.stages))]
    else:
        result = run_search(cfg)
    g = result.genotype
    return {
        "row": row, "method": method, "optimization": optimization, "seed": seed, "arch": result.arch_string,
        **op_counts(g), **{f"{d}_test": round(float(bench.query(g, d)["test_acc"]), 2) for d in DATASETS},
        "val_accuracy": result.metrics.get("val_accuracy"), "steps": result.steps,
        "seconds": round(sum(search_seconds(d, time.time() - start) for d in stages), 1),
        "trajectory": (trajectory(stages[-1], bench) if cfg.adaptive_regularization else
                       [dict(t, epoch=t["epoch"] + k * cfg.epochs, stage=k)  # P-DARTS: its stages one after another
                        for k, d in enumerate(stages) for t in trajectory(d, bench)]),
        **{k: v for k, v in json.loads((Path(cfg.workdir) / "genotype.json").read_text()).items()
           if k in ("eigenvalues", "early_stop", "legs", "weight_decay")},
        "config": {k: v for k, v in cfg.to_json().items() if k not in ("workdir", "dataset", "progress")},
    }


def table(results: list[dict]) -> str:
    lines = ["| row | optimization | seeds | derived cell (seed 0) | skip / pool / none | CIFAR-10 | CIFAR-100 | "
             "ImageNet16-120 | s per search (wall) |", "|---|---|---|---|---|---|---|---|---|"]
    for row, *_ in ROWS:
        rs = [r for r in results if r["row"] == row]
        if not rs:
            continue
        acc = {d: np.asarray([r[f"{d}_test"] for r in rs]) for d in DATASETS}
        fmt = {d: f"{a.mean():.2f}" + (f" ± {a.std():.2f}" if len(a) > 1 else "") for d, a in acc.items()}
        ops = "; ".join(f"{r['skip_connect']}/{r['avg_pool_3x3']}/{r['none']}" for r in rs)
        lines.append(f"| {row} | {rs[0]['optimization']} | {len(rs)} | `{rs[0]['arch']}` | {ops} | {fmt['cifar10']} | "
                     f"{fmt['cifar100']} | {fmt['imagenet16']} | {np.mean([r['seconds'] for r in rs]):.0f} |")
    return "\n".join(lines)


def picture(results: list[dict]) -> None:
    """One small panel per row (seed 0): the derived cell's CIFAR-10 table accuracy (line, left) and its number of
    parameter-free ops (steps, right) after every epoch."""
    rows = [r for row, *_ in ROWS for r in results if r["row"] == row and r["seed"] == 0]
    cols = 5
    nrows = -(-len(rows) // cols)
    fig = new_figure(2.6 * cols, 1.9 * nrows + 0.6)
    axes = np.atleast_1d(fig.subplots(nrows, cols, sharex=True, sharey=True)).ravel()
    for ax, r in zip(axes, rows):
        t = r["trajectory"]
        epochs = [p["epoch"] + 1 for p in t]
        ax.plot(epochs, [p["cifar10_test"] for p in t], color="C0", lw=1.4, gid=f"curve:{r['row']}:accuracy")
        ax.set_ylim(0, 100)
        free = ax.twinx()
        free.step(epochs, [p["parameter_free"] for p in t], where="mid", color="C3", lw=1.0,
                  gid=f"curve:{r['row']}:parameter_free")
        free.set_ylim(-0.3, 6.3)
        free.set_yticks([0, 3, 6])
        ax.set_title(f"{r['row']}: {r['cifar10_test']:.1f}%", fontsize=8)
        ax.tick_params(labelsize=7)
        free.tick_params(labelsize=7, colors="C3")
    for ax in axes[len(rows):]:
        ax.set_visible(False)
    fig.supxlabel("epoch")
    fig.supylabel("CIFAR-10 test accuracy of the derived cell (%, blue); parameter-free ops of 6 (red)", fontsize=9)
    fig.suptitle("NB201 collapse study (search on Fashion-MNIST, cells looked up in the NB201 table), seed 0")
    save_figure(fig, PICTURE)


def notes(results: list[dict]) -> str:
    """The RobustDARTS rows' early stops and DARTS-ADA's legs, one line each."""
    out = []
    for r in results:
        if r.get("early_stop"):
            out.append(f"- {r['row']}: early stop after {r['early_stop']['steps']} steps, returning epoch "
                       f"{r['early_stop']['returned_epoch']}; eigenvalues per epoch "
                       f"{', '.join(f'{v:.3g}' for v in r.get('eigenvalues', []))}")
        if r.get("legs"):
            out.append(f"- {r['row']}: {r['legs']} legs, ending at weight decay {r['weight_decay']:g}")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", default="/tmp/nb201_collapse", help="where the searches keep their runs")
    p.add_argument("--quick", action="store_true", help="every row for a few steps (results not written)")
    p.add_argument("--rows", nargs="*", help="only these rows, in this order (default all)")
    p.add_argument("--table", action="store_true", help="print the table of the results file, write "
                                                        "experiments/nb201_collapse.md and the picture; run nothing")
    p.add_argument("--status", default="", help="a line stored with the results (e.g. which rows were cut)")
    args = p.parse_args(argv)
    if args.table:
        saved = json.loads(RESULTS.read_text())
        text = table(saved["rows"])
        extra = notes(saved["rows"])
        TABLE.write_text(f"# NB201 collapse study: results\n\nBudget: {saved['budget']}.\n"
                         f"{saved.get('status', '')}\n\n{text}\n\n{extra}\n\nWritten by `python experiments/nb201_collapse.py "
                         f"--table` from experiments/results/nb201_collapse.json; docs/methods.md discusses it.\n")
        print(text)
        picture(saved["rows"])
        return 0
    if not SHARED.is_dir():
        raise SystemExit(f"the study needs the full Fashion-MNIST at {SHARED}")
    bench, results = nb201.load(), []
    unknown = sorted(set(args.rows or ()) - {r[0] for r in ROWS})
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; rows: {', '.join(r[0] for r in ROWS)}")
    order = [next(r for r in ROWS if r[0] == name) for name in args.rows] if args.rows else ROWS
    for row, method, optimization, seeds, extra in order:  # --rows: in the order given
        for seed in seeds:
            r = run_row(row, method, optimization, seed, extra, Path(args.workdir), bench, args.quick)
            results.append(r)
            print(f"{row} seed {seed}: {r['arch']} skip/pool/none {r['skip_connect']}/{r['avg_pool_3x3']}/"
                  f"{r['none']} cifar10 {r['cifar10_test']:.2f} ({r['seconds']:.0f} s)", flush=True)
    if not args.quick:
        if args.rows and RESULTS.exists():  # a partial run replaces its own rows and keeps the others
            ran = {(r["row"], r["seed"]) for r in results}
            results = [r for r in json.loads(RESULTS.read_text())["rows"] if (r["row"], r["seed"]) not in ran] + results
        RESULTS.write_text(json.dumps({"budget": "NB201 C=8 N=1, full Fashion-MNIST padded to 32x32, 10 epochs x 100 "
                                                 "steps, batch 64", "status": args.status, "rows": results},
                                      indent=1) + "\n")
        print(table(results))
        picture(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
