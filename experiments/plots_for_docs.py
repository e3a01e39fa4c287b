"""Draw the pictures in docs/plots.md and the README (about a minute on 2 CPU cores, after the README's main job).

    python -m jaxnas                                  # the main job: leaves runs/search
    python experiments/plots_for_docs.py [RUN_DIR]    # writes docs/images/*.png

Every picture comes from a public function of ``jaxnas.plot`` on shipped data (the NB201 table, published
genotypes) or on the run in RUN_DIR (default runs/search).
"""

import json
import sys
from pathlib import Path

import jax
import numpy as np

from jaxnas import registry
from jaxnas.benchmarks import latency, nb201
from jaxnas.nn import grow
from jaxnas.plot import (plot_genotype, plot_latency_fit, plot_pareto, plot_run, plot_strategy_comparison,
                         save_figure)

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def main(run_dir: str = "runs/search") -> None:
    darts = registry.get_space("darts")
    print(save_figure(plot_genotype(darts, darts.parse("DARTS_V2"), title="darts: DARTS_V2"), OUT / "darts_v2.png"))
    rnn = registry.get_space("darts-rnn")
    print(save_figure(plot_genotype(rnn, rnn.parse("DARTS_V2"), title="darts-rnn: DARTS_V2"),
                      OUT / "darts_rnn_v2.png"))
    spec = grow.recurrent_spec(nodes=3)
    arch = grow.init_arch(spec, jax.random.PRNGKey(0))
    print(save_figure(plot_genotype(registry.get_space("grow-rnn"), grow.derive(spec, arch), arch=arch,
                                    title="grow-rnn: a derived two-input backbone (3 nodes, random arch)"),
                      OUT / "grown_rnn.png"))
    for path in plot_run(run_dir, OUT / "main_job"):
        print(path)

    results = [nb201.benchmark_strategy(s, "cifar10", queries=100, runs=100, seed=0)
               for s in ("random", "rea", "reinforce", "bo")]
    print(save_figure(plot_strategy_comparison(results), OUT / "nb201_strategies.png"))

    bench = nb201.load()
    found = registry.get_space("nb201").from_json(
        json.loads((Path(run_dir) / "genotype.json").read_text())["genotype"])
    print(save_figure(plot_pareto(bench, "titanxp_1", marked={"runs/search": found}), OUT / "nb201_pareto.png"))

    enc = np.asarray(jax.nn.one_hot(bench.ops, len(bench.space.primitives))).reshape(len(bench), -1)
    lat = bench.columns["lat_titanxp_1"].astype(np.float64)
    rng = np.random.default_rng(0)
    train = rng.choice(len(bench), 1000, replace=False)
    test = np.setdiff1d(np.arange(len(bench)), train)[:2000]
    table = latency.fit_op_table(enc[train], lat[train], (6, 5))
    pred = np.asarray(latency.predict(table, enc[test]))
    print(save_figure(plot_latency_fit(pred, lat[test], title="op-table predictor, titanxp_1 (1,000 cells to fit)"),
                      OUT / "nb201_latency_fit.png"))


if __name__ == "__main__":
    main(*sys.argv[1:])
