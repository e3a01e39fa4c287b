"""Grown two-input recurrent backbone vs LSTM, GRU and the DARTS recurrent cell on LSTNet forecasting (+ PTB smoke).

For every ``dataset:horizon`` this trains, with ONE training budget for every final model (same steps, batch size,
Adam learning rate, clipping, L1 loss, valid-RSE model selection every ``--eval-every`` steps, same seed):

  lstm, gru          the :mod:`jaxnas.nn.recurrent` baselines, trained directly;
  darts              the DARTS recurrent search cell with ``--darts-nodes`` nodes, searched (first-order bi-level,
                     softmax, ``--search-steps``), derived with the darts-rnn rule (one predecessor and activation per
                     node), the derived ``DartsRnnCell`` retrained from scratch;
  grow-fixed         the two-input backbone at its final size (``--max-nodes``), searched the same way without any
                     transform, derived (``jaxnas.nn.grow.derive``), retrained from scratch as a fixed cell;
  grow-then-prune,   the two-input backbone grown from ``--start-nodes`` to ``--max-nodes`` by function-preserving
  interleaved        ``morph.add_node`` and pruned by ``morph.prune`` every ``--transform-every`` steps within the same
                     search budget (:mod:`jaxnas.runners.recurrent_growth`), derived, retrained from scratch.

Every search uses the same steps, batch size, weight optimizer and architecture learning rate. Rows are appended to
``<out>.jsonl`` as they finish; ``<out>`` (JSON) gets everything at the end, and a markdown table is printed
(``--table FILE`` prints the table of a finished run without running anything).

Commands::

    # the recorded comparison (experiments/grow_compare.md; about 25 minutes on the shared 2-core CPU)
    python experiments/grow_compare.py --tasks exchange_rate:3 exchange_rate:24 --ptb \
        --out experiments/results/grow_compare.json
    # a smoke run of every row (about 3 minutes)
    python experiments/grow_compare.py --quick --ptb --out /tmp/grow_compare_quick.json
    python experiments/grow_compare.py --table experiments/results/grow_compare.json

An interrupted run continues with the same command plus ``--resume`` (rows already in ``<out>.jsonl`` are kept;
every row is deterministic for its seed on one machine, so the result is the one an uninterrupted run gives, apart
from the recorded seconds).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROWS = ("lstm", "gru", "darts", "grow-fixed", "grow-then-prune", "interleaved")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--tasks", nargs="+", default=["exchange_rate:3", "exchange_rate:24"],
                   help="dataset:horizon pairs (datasets: exchange_rate, ETTh1 or a CSV path)")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--train-steps", type=int, default=1000, help="steps of every final model")
    p.add_argument("--eval-every", type=int, default=200, help="valid RSE every that many steps; best kept")
    p.add_argument("--search-steps", type=int, default=300, help="steps of every search")
    p.add_argument("--arch-lr", type=float, default=1e-2)
    p.add_argument("--darts-nodes", type=int, default=3)
    p.add_argument("--start-nodes", type=int, default=1)
    p.add_argument("--max-nodes", type=int, default=3)
    p.add_argument("--transform-every", type=int, default=60)
    p.add_argument("--prune-threshold", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ptb", action="store_true", help="add the PTB smoke comparison (grown cell vs LSTM)")
    p.add_argument("--ptb-hidden", type=int, default=32)
    p.add_argument("--ptb-search-steps", type=int, default=150)
    p.add_argument("--ptb-train-steps", type=int, default=300)
    p.add_argument("--quick", action="store_true", help="a tiny smoke run of every row")
    p.add_argument("--out", default="experiments/results/grow_compare.json")
    p.add_argument("--resume", action="store_true",
                   help="keep the rows already in <out>.jsonl and run only the missing ones (same arguments)")
    p.add_argument("--table", metavar="FILE", help="print the markdown table of a finished run and exit")
    args = p.parse_args(argv)
    if args.quick:
        args.tasks = args.tasks if argv and "--tasks" in argv else ["exchange_rate:24"]
        args.hidden, args.batch_size, args.train_steps, args.eval_every = 8, 16, 20, 10
        args.search_steps, args.transform_every, args.darts_nodes, args.max_nodes = 16, 4, 2, 2
        args.ptb_hidden, args.ptb_search_steps, args.ptb_train_steps = 8, 8, 10
    return args


def machine() -> dict:
    import jax

    return {"platform": platform.platform(), "python": platform.python_version(), "jax": jax.__version__,
            "backend": jax.default_backend(), "cpu_count": os.cpu_count(),
            "device": str(jax.devices()[0].device_kind)}


# ----------------------------------------------------------------------------------------------------------------
# rows


def forecast_rows(args, dataset: str, horizon: int, emit, done=frozenset()) -> None:
    from jaxnas.nn import grow, recurrent
    from jaxnas.spaces.rnn import DartsRnnSpace
    from jaxnas.runners import forecast as F
    from jaxnas.runners import recurrent_growth as G

    train_cfg = F.ForecastConfig(dataset=dataset, horizon=horizon, hidden=args.hidden, steps=args.train_steps,
                                 batch_size=args.batch_size, lr=args.lr, eval_every=args.eval_every, seed=args.seed)
    base = {"task": "forecast", "dataset": dataset, "horizon": horizon}

    def final(row, trained, search=None, extra=None):
        out = {**base, "model": row, "params": trained["params"], "valid": trained["valid"],
               "test": trained["test"], "best_step": trained["best_step"], "train_steps": trained["steps"],
               "train_seconds": trained["seconds"], "search_seconds": None, **(extra or {})}
        if search is not None:
            out["search_seconds"] = search["seconds"]
            out["search"] = search
        emit(out)

    rows = [r for r in args.rows if (dataset, horizon, r) not in done]
    if "lstm" in rows:
        final("lstm", F.run_forecast(dataclasses.replace(train_cfg, cell="lstm")))
    if "gru" in rows:
        final("gru", F.run_forecast(dataclasses.replace(train_cfg, cell="gru")))
    if "darts" in rows:
        space = DartsRnnSpace(steps=args.darts_nodes)
        n = args.darts_nodes
        searched = F.run_forecast(dataclasses.replace(
            train_cfg, cell=lambda h: recurrent.DartsRnnSearchCell(hidden=h, steps=n), arch=space.init_arch,
            steps=args.search_steps, eval_every=None, optimization="bilevel-1st", a_lr=args.a_lr))
        genotype = space.derive({"rnn": np.asarray(searched["arch"]["rnn"])})
        trained = F.run_forecast(dataclasses.replace(
            train_cfg, cell=lambda h: recurrent.DartsRnnCell(hidden=h, genotype=genotype)))
        search = {"seconds": searched["seconds"], "steps": searched["steps"], "params": searched["params"],
                  "one_shot": {"valid": searched["valid"], "test": searched["test"]},
                  "compile_seconds": searched["compile_seconds"]}
        final("darts", trained, search, {"genotype": space.to_json(genotype), "nodes": n})
    for row in ("grow-fixed", "grow-then-prune", "interleaved"):
        if row not in rows:
            continue
        schedule = "fixed" if row == "grow-fixed" else row
        cfg = G.GrowForecastConfig(
            dataset=dataset, horizon=horizon, hidden=args.hidden,
            nodes=args.max_nodes if schedule == "fixed" else args.start_nodes, max_nodes=args.max_nodes,
            schedule=schedule, transform_every=args.transform_every, prune_threshold=args.prune_threshold,
            steps=args.search_steps, batch_size=args.batch_size, lr=args.lr, a_lr=args.a_lr,
            seed=args.seed, verbose=True)
        searched = G.run_growing_forecast(cfg)
        derived = grow.spec_from_json(searched["derived"])
        trained = G.retrain_forecast(derived, searched["arch"], train_cfg)
        search = {"seconds": searched["seconds"], "steps": searched["steps"], "params": searched["params"],
                  "one_shot": {"valid": searched["valid"], "test": searched["test"]},
                  "transforms": searched["transforms"], "describe": searched["describe"],
                  "compile_seconds": searched["compile_seconds"]}
        final(row, trained, search, {"derived": searched["derived"], "describe": grow.describe(derived),
                                      "combiners": combiners(searched["arch"])})


def combiners(arch) -> dict:
    """The combiner each node of the derived cell keeps (add or hadamard)."""
    from jaxnas.nn import grow

    return {k: grow.COMBINERS[int(np.argmax(v))] for k, v in sorted(arch.items()) if k.endswith("_comb")}


def ptb_rows(args, emit, done=frozenset()) -> None:
    from jaxnas.nn import grow
    from jaxnas.runners import recurrent_growth as G
    from jaxnas.runners import lm

    H = args.ptb_hidden
    train_cfg = lm.LMConfig(cell="lstm", hidden=H, embed_dim=H, steps=args.ptb_train_steps, batch_size=20, bptt=35,
                            lr=3e-3, grad_clip=0.25, seed=args.seed)
    base = {"task": "lm", "dataset": "ptb-shipped (train on valid.txt, test on test.txt)", "horizon": None}

    def final(row, trained, search=None, extra=None):
        emit({**base, "model": row, "params": trained["params"], "valid": trained["valid"], "test": trained["test"],
              "train_steps": trained["steps"], "train_seconds": trained["seconds"],
              "search_seconds": None if search is None else search["seconds"],
              **({"search": search} if search is not None else {}), **(extra or {})})

    if (base["dataset"], None, "lstm") not in done:
        final("lstm", lm.run_lm(train_cfg))
    if (base["dataset"], None, "grow-then-prune") in done:
        return
    cfg = G.GrowLMConfig(hidden=H, embed_dim=H, nodes=args.start_nodes, max_nodes=args.max_nodes,
                         schedule="grow-then-prune", transform_every=max(1, args.ptb_search_steps // 5),
                         prune_threshold=args.prune_threshold, steps=args.ptb_search_steps, batch_size=20, bptt=35,
                         lr=3e-3, a_lr=args.a_lr, seed=args.seed, eval_windows=20, verbose=True)
    searched = G.run_growing_lm(cfg)
    derived = grow.spec_from_json(searched["derived"])
    trained = G.retrain_lm(derived, searched["arch"], train_cfg)
    search = {"seconds": searched["seconds"], "steps": searched["steps"], "transforms": searched["transforms"],
              "describe": searched["describe"], "one_shot_valid_20_windows": searched["valid"]}
    final("grow-then-prune", trained, search, {"derived": searched["derived"], "describe": grow.describe(derived),
                                               "combiners": combiners(searched["arch"])})


# ----------------------------------------------------------------------------------------------------------------
# table


def table(doc: dict) -> str:
    lines = ["| task | model | test RSE | test CORR | valid RSE | params | search s | train s | derived cell |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        if r["task"] == "lm":
            task = "PTB smoke"
            metric = (f"ppl {r['test']['ppl']:.1f}", "", f"ppl {r['valid']['ppl']:.1f}")
        else:
            task = f"{r['dataset']} h={r['horizon']}"
            metric = (f"{r['test']['rse']:.4f}", f"{r['test']['corr']:.4f}", f"{r['valid']['rse']:.4f}")
        if "genotype" in r:
            cell = " ".join(f"{a}<-{p}" for a, p in r["genotype"]["recurrent"])
        elif "derived" in r:
            cell = cell_text(r)
        else:
            cell = ""
        s = "" if r.get("search_seconds") is None else f"{r['search_seconds']:.0f}"
        lines.append(f"| {task} | {r['model']} | {metric[0]} | {metric[1]} | {metric[2]} | {r['params']} | {s} | "
                     f"{r['train_seconds']:.0f} | {cell} |")
    return "\n".join(lines)


def cell_text(r) -> str:
    """Node by node: ``combiner(slot0, slot1)`` with ``op(src)`` operands (src 0 = W_x x_t, 1 = h_{t-1})."""
    from jaxnas.nn import grow

    spec = grow.spec_from_json(r["derived"])
    parts = []
    for k, node in enumerate(spec.cell.nodes):
        slots = [" + ".join(f"{e.ops[0]}({e.src})" for e in slot) or "0" for slot in node.slots]
        comb = r.get("combiners", {}).get(grow.comb_key(k), "?")
        parts.append(f"n{k + 2}={'*' if comb == 'hadamard' else '+'}[{slots[0]}, {slots[1]}]")
    return " ".join(parts)


# ----------------------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows_path = out.with_suffix(".jsonl")
    kept = []
    if args.resume and rows_path.exists():
        kept = [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()]
    rows_path.write_text("".join(json.dumps(r, default=float) + "\n" for r in kept))
    done = frozenset((r["dataset"], r["horizon"], r["model"]) for r in kept)
    doc = {"command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
           "machine": machine(), "args": vars(args), "rows": list(kept), "resumed_rows": len(kept)}
    t0 = time.time()

    def emit(row):
        doc["rows"].append(row)
        with open(rows_path, "a") as f:
            f.write(json.dumps(row, default=float) + "\n")
        metric = (f"ppl {row['test']['ppl']:.2f}" if row["task"] == "lm"
                  else f"RSE {row['test']['rse']:.4f} CORR {row['test']['corr']:.4f}")
        print(f"== {row['dataset']} h={row['horizon']} {row['model']}: test {metric}, params {row['params']}, "
              f"search {row.get('search_seconds')} s, train {row['train_seconds']} s "
              f"(elapsed {time.time() - t0:.0f} s)", flush=True)

    for task in args.tasks:
        dataset, _, horizon = task.partition(":")
        forecast_rows(args, dataset, int(horizon or 24), emit, done)
    if args.ptb:
        ptb_rows(args, emit, done)
    doc["total_seconds"] = round(time.time() - t0, 1)
    out.write_text(json.dumps(doc, indent=1, default=float))
    print(table(doc))
    print(f"total {doc['total_seconds']} s; rows in {rows_path}, everything in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
