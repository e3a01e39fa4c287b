"""Pictures: pure functions from library objects to matplotlib Figures (the Agg canvas, no pyplot state, nothing
global changed), and :func:`save_figure` that writes the same bytes for the same figure.

* cells: :func:`plot_genotype` (any registered space's genotype, through ``space.cell_graphs``), :func:`plot_cells`
  (any :class:`jaxnas.spaces.graph.CellGraph`);
* architecture weights: :func:`plot_arch_weights` (a heatmap, edges x ops), :func:`plot_arch_trajectories` (over a
  search, from ``genotypes.jsonl``);
* runs: :func:`plot_run_curves` (``metrics.jsonl``), :func:`plot_run` (everything a run directory allows, to files;
  ``jaxnas plot RUN_DIR``);
* discrete strategies: :func:`plot_strategy_comparison` (best-so-far accuracy against queries on NB201);
* latency: :func:`plot_latency_fit` (predicted against measured), :func:`plot_pareto` (accuracy against latency).
"""

from jaxnas.plot.arch import arch_tables, plot_arch_trajectories, plot_arch_weights
from jaxnas.plot.benchmarks import plot_latency_fit, plot_pareto, plot_strategy_comparison
from jaxnas.plot.cells import draw_cell, plot_cells, plot_genotype
from jaxnas.plot.figures import png_bytes, save_figure
from jaxnas.plot.runs import plot_run, plot_run_curves, read_run, run_figures

__all__ = ["arch_tables", "draw_cell", "plot_arch_trajectories", "plot_arch_weights", "plot_cells", "plot_genotype",
           "plot_latency_fit", "plot_pareto", "plot_run", "plot_run_curves", "plot_strategy_comparison", "png_bytes",
           "read_run", "run_figures", "save_figure"]
