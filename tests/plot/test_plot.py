"""jaxnas.plot: the drawn elements match the input (gids name them), saving is byte-deterministic, bad input is one
clear error. Small inputs only; no run is trained here (tests/runners/test_search.py plots a finished run)."""

import collections
import json

import jax
import numpy as np
import pytest

from jaxnas import registry
from jaxnas.benchmarks import nb201
from jaxnas.cli import main
from jaxnas.nn import grow
from jaxnas.plot import (arch_tables, plot_arch_trajectories, plot_arch_weights, plot_cells, plot_genotype,
                         plot_latency_fit, plot_pareto, plot_run, plot_run_curves, plot_strategy_comparison,
                         run_figures, read_run, save_figure)
from jaxnas.plot.benchmarks import pareto_front
from jaxnas.spaces.graph import CellGraph, GraphEdge, GraphNode

NB201_ARCH = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def texts(ax, prefix):
    return {t.get_gid(): t.get_text() for t in ax.texts if (t.get_gid() or "").startswith(prefix)}


def edge_labels(ax):
    """``(src, dst, op)`` of every labelled edge drawn on ``ax``."""
    out = []
    for gid, text in texts(ax, "edge-label:").items():
        src, dst = gid.split(":", 1)[1].split("->")
        out.append((src, dst, text))
    return collections.Counter(out)


def arrows(ax):
    return [a.get_gid() for a in ax.texts if (a.get_gid() or "").startswith("edge:")]


# the DARTS paper's figures of DARTS_V2 (Liu et al. 2019, figures 4 and 5), read as (from, to, op)
DARTS_V2_FIGURE = {
    "normal cell": [("c_{k-2}", "0", "sep_conv_3x3"), ("c_{k-1}", "0", "sep_conv_3x3"),
                    ("c_{k-2}", "1", "sep_conv_3x3"), ("c_{k-1}", "1", "sep_conv_3x3"),
                    ("c_{k-1}", "2", "sep_conv_3x3"), ("c_{k-2}", "2", "skip_connect"),
                    ("c_{k-2}", "3", "skip_connect"), ("0", "3", "dil_conv_3x3")],
    "reduce cell": [("c_{k-2}", "0", "max_pool_3x3"), ("c_{k-1}", "0", "max_pool_3x3"),
                    ("c_{k-1}", "1", "max_pool_3x3"), ("0", "1", "skip_connect"),
                    ("c_{k-2}", "2", "max_pool_3x3"), ("0", "2", "skip_connect"),
                    ("0", "3", "skip_connect"), ("c_{k-1}", "3", "max_pool_3x3")],
}


def test_darts_v2_cells_show_the_papers_edges():
    space = registry.get_space("darts")
    fig = plot_genotype(space, space.parse("DARTS_V2"))
    assert [ax.get_title() for ax in fig.axes] == ["normal cell", "reduce cell"]
    for ax, graph in zip(fig.axes, space.cell_graphs(space.parse("DARTS_V2"))):
        nodes = texts(ax, "node:")
        label = {gid.split(":", 1)[1]: graph.node(gid.split(":", 1)[1]).label for gid in nodes}
        assert sum(n.kind == "node" for n in graph.nodes) == 4 and len(nodes) == 7  # 2 inputs, 4 nodes, output
        drawn = collections.Counter((label[s], label[d], op) for (s, d, op), k in edge_labels(ax).items()
                                    for _ in range(k))
        assert sum(drawn.values()) == 8
        assert drawn == collections.Counter(DARTS_V2_FIGURE[ax.get_title()])
        assert len(arrows(ax)) == 8 + 4  # 8 op edges and the concatenation of the 4 nodes


def test_nb201_cell_has_six_edges_and_dashed_none():
    space = registry.get_space("nb201")
    fig = plot_genotype(space, space.parse(NB201_ARCH))
    (ax,) = fig.axes
    assert sorted(op for (_, _, op) in edge_labels(ax).elements()) == sorted(space.parse(NB201_ARCH).ops)
    assert len(arrows(ax)) == 6
    dashed = [a for a in ax.texts if a.get_gid() == "edge:n0->n2"][0].arrow_patch.get_linestyle()
    assert dashed != "-" and dashed != "solid"


def test_rnn_cell_follows_the_genotype():
    space = registry.get_space("darts-rnn")
    g = space.parse("DARTS_V2")
    (ax,) = plot_genotype(space, g).axes
    assert edge_labels(ax) == collections.Counter((f"n{p}", f"n{i + 1}", act) for i, (act, p) in enumerate(g.recurrent))
    assert len(texts(ax, "node:")) == 2 + 9 + 1


@pytest.mark.parametrize("family", ["conv", "rnn"])
def test_grown_spec_draws_its_nodes_and_slots(family):
    if family == "conv":
        spec, space = grow.conv_net_spec(cells=2, nodes=3), registry.get_space("grow-conv")
    else:
        spec, space = grow.recurrent_spec(nodes=2), registry.get_space("grow-rnn")
    arch = grow.init_arch(spec, jax.random.PRNGKey(0))
    derived = grow.derive(spec, arch)
    graphs = space.cell_graphs(derived, arch=arch)
    fig = plot_cells(graphs)
    assert len(fig.axes) == len(spec.cells)
    for ax, cell, graph in zip(fig.axes, derived.cells, graphs):
        assert len(graph.of_kind("node")) == len(cell.nodes)
        assert len(graph.of_kind("slot")) == sum(len(n.slots) for n in cell.nodes if len(n.slots) > 1)
        n_op_edges = sum(1 for _ in cell.edges())
        assert sum(edge_labels(ax).values()) == n_op_edges
        assert len(texts(ax, "node:")) == len(graph.nodes)
    if family == "rnn":  # the combiner is the strongest of the architecture parameters
        k0 = grow.COMBINERS[int(np.argmax(arch[grow.comb_key(0)]))]
        assert graphs[0].node("s2").label == f"0 {k0}"


def test_cell_graph_errors():
    with pytest.raises(ValueError, match="names a node it does not have"):
        CellGraph("c", [GraphNode("a", "a", "input")], [GraphEdge("a", "b", "op")])
    with pytest.raises(ValueError, match="has a cycle"):
        CellGraph("c", [GraphNode("a", "a"), GraphNode("b", "b")], [GraphEdge("a", "b"), GraphEdge("b", "a")])
    with pytest.raises(ValueError, match="unknown kind"):
        GraphNode("a", "a", "hub")
    with pytest.raises(ValueError, match="no cell_graphs"):
        plot_genotype(object(), None)


def test_heatmap_values_and_strongest_ops():
    space = registry.get_space("darts")
    arch = {k: np.asarray(v) * 500 for k, v in space.init_arch(jax.random.PRNGKey(3)).items()}
    fig = plot_arch_weights(space, arch)
    heat_axes = [ax for ax in fig.axes if ax.get_title() in ("normal", "reduce")]
    assert len(heat_axes) == 2
    for ax in heat_axes:
        leaf = ax.get_title()
        w = np.exp(arch[leaf]) / np.exp(arch[leaf]).sum(-1, keepdims=True)
        shown = texts(ax, f"weight:{leaf}:")
        assert len(shown) == 14 * 8
        assert float(shown[f"weight:{leaf}:3:5"]) == pytest.approx(w[3, 5], abs=0.006)
        strongest = sorted(int(p.get_x() + 0.5) for p in ax.patches if (p.get_gid() or "").startswith("strongest"))
        assert strongest == sorted(np.argmax(w, -1).tolist())
    assert [t.title for t in arch_tables(space, arch)] == ["normal", "reduce"]
    with pytest.raises(ValueError, match=r"space 'darts' expects \(14, 8\)"):
        plot_arch_weights(space, {"normal": np.zeros((6, 5))})


def test_sigmoid_relaxation_is_shown_as_sigmoid():
    space = registry.get_space("nb201")
    arch = {"cell": np.linspace(-2, 2, 30).reshape(6, 5)}
    (table,) = arch_tables(space, arch, "sigmoid")
    np.testing.assert_allclose(table.values, 1 / (1 + np.exp(-arch["cell"])))


def test_trajectories_follow_the_records():
    space = registry.get_space("nb201")
    steps = [0, 10, 20]
    logits = [np.full((6, 5), 0.0), np.eye(6, 5), 2 * np.eye(6, 5)]
    records = [{"step": s, "arch_params": {"cell": a.tolist()}} for s, a in zip(steps, logits)]
    fig = plot_arch_trajectories(space, records)
    lines = {l.get_gid(): l for ax in fig.axes for l in ax.lines if l.get_gid()}
    assert len(lines) == 6 * 5
    line = lines["trajectory:cell:0:none"]  # edge 0, op 0 (none): softmax of the eye rows
    np.testing.assert_allclose(line.get_xdata(), steps)
    expect = [np.exp(a[0, 0]) / np.exp(a[0]).sum() for a in logits]
    np.testing.assert_allclose(line.get_ydata(), expect)
    with pytest.raises(ValueError, match="no record has architecture parameters"):
        plot_arch_trajectories(space, [{"step": 1}])


def _growth_records():
    recs = []
    for step in range(1, 13):
        recs.append({"kind": "step", "step": step, "loss": 2.0 / step, "accuracy": step / 13, "lr": 0.1 / step})
        if step % 4 == 0:
            recs.append({"kind": "epoch", "epoch": step // 4 - 1, "step": step, "loss": 2.0 / step,
                         "val_loss": 2.1 / step, "nodes": step // 4, "width": 8, "params": 1000 * step})
    recs.append({"kind": "morph", "step": 4, "event": "grow", "nodes": 2, "width": 8, "params": 5000})
    recs.append({"kind": "morph", "step": 8, "event": "prune", "nodes": 2, "width": 8, "params": 4000})
    return recs


def test_run_curves_panels_and_events():
    fig = plot_run_curves(_growth_records())
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["loss", "accuracy", "learning rate", "supernet size"]
    loss_ax = fig.axes[0]
    gids = {l.get_gid() for l in loss_ax.lines}
    assert {"curve:loss:step", "curve:loss:epoch", "curve:val_loss:epoch", "event:grow:4", "event:prune:8"} <= gids
    size_ax = [ax for ax in fig.axes if ax.get_title() == "supernet size"][0]
    nodes = [l for l in size_ax.lines if l.get_gid() == "size:nodes"][0]
    assert list(nodes.get_ydata()) == [1, 2, 2, 2, 3]  # epochs 4, 8, 12 and the two events, by step
    with pytest.raises(ValueError, match="no curves to draw"):
        plot_run_curves([{"kind": "final"}])


def test_strategy_comparison_lines_band_and_optimum():
    results = [{"strategy": s, "dataset": "cifar10", "runs": 3, "optimum": 94.37,
                "best_so_far": {"mean": list(np.linspace(90, 93 + i, 20)), "std": [0.5] * 20}}
               for i, s in enumerate(("random", "rea"))]
    (ax,) = plot_strategy_comparison(results).axes
    lines = {l.get_gid(): l for l in ax.lines}
    assert set(lines) == {"strategy:random", "strategy:rea", "optimum"}
    np.testing.assert_allclose(lines["strategy:rea"].get_ydata(), results[1]["best_so_far"]["mean"])
    assert list(lines["optimum"].get_ydata()) == [94.37, 94.37]
    assert {c.get_gid() for c in ax.collections} == {"band:random", "band:rea"}
    with pytest.raises(ValueError, match="several data sets"):
        plot_strategy_comparison([results[0], {**results[1], "dataset": "cifar100"}])


def test_pareto_front_is_non_dominated():
    rng = np.random.default_rng(0)
    lat, acc = rng.uniform(1, 10, 300), rng.uniform(50, 95, 300)
    front = pareto_front(lat, acc)
    assert np.all(np.diff(lat[front]) >= 0) and np.all(np.diff(acc[front]) > 0)
    for i in range(300):  # every point off the front is dominated by a front point
        if i not in front:
            assert np.any((lat[front] <= lat[i]) & (acc[front] >= acc[i]))


def test_pareto_plot_marks_the_cell():
    bench = nb201.load()
    (ax,) = plot_pareto(bench, "titanxp_1", marked={"found": NB201_ARCH}).axes
    row = bench.index(NB201_ARCH)
    (star,) = [c for c in ax.collections if c.get_gid() == "marked:found"]
    np.testing.assert_allclose(star.get_offsets()[0], [bench.columns["lat_titanxp_1"][row],
                                                       bench.metric("cifar10", "test_acc")[row]])
    cells = [c for c in ax.collections if c.get_gid() == "pareto:cells"][0]
    assert len(cells.get_offsets()) == len(bench)


def test_latency_fit_points_and_error():
    measured = np.array([1.0, 2.0, 4.0])
    (ax,) = plot_latency_fit(measured * 1.1, measured).axes
    (points,) = [c for c in ax.collections if c.get_gid() == "latency:points"]
    np.testing.assert_allclose(points.get_offsets(), np.stack([measured, measured * 1.1], 1))
    assert "mean relative error 10.0%" in ax.get_title()
    with pytest.raises(ValueError, match="same non-empty length"):
        plot_latency_fit([1.0], [1.0, 2.0])


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_same_input_same_bytes(tmp_path, fmt):
    space = registry.get_space("darts")
    a = save_figure(plot_genotype(space, space.parse("DARTS_V1")), tmp_path / f"a.{fmt}")
    b = save_figure(plot_genotype(space, space.parse("DARTS_V1")), tmp_path / f"b.{fmt}")
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 5000
    with pytest.raises(ValueError, match="unknown figure format 'jpg'"):
        save_figure(plot_genotype(space, space.parse("DARTS_V1")), tmp_path / "c.jpg")


def _grown_run(tmp_path):
    spec = grow.conv_net_spec(cells=1, nodes=2)
    arch = grow.init_arch(spec, jax.random.PRNGKey(0))
    derived = grow.derive(spec, arch)
    run = tmp_path / "grow"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"kind": "growing search", "config": {}}))
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in _growth_records()) + "\n")
    (run / "genotype.json").write_text(json.dumps({
        "space": "grow-conv", "spec": grow.spec_to_json(spec), "derived": grow.spec_to_json(derived),
        "arch": jax.tree_util.tree_map(lambda a: np.asarray(a).tolist(), arch)}))
    return run


def test_growing_run_directory(tmp_path):
    figures = run_figures(read_run(_grown_run(tmp_path)))
    assert set(figures) == {"cell", "arch_weights", "curves"}
    size_titles = [ax.get_title() for ax in figures["curves"].axes]
    assert "supernet size" in size_titles


def test_cli_plot(tmp_path, capsys):
    out = tmp_path / "v2.svg"
    assert main(["plot", "--space", "darts", "--genotype", "DARTS_V2", "--out", str(out), "--format", "svg"]) == 0
    assert capsys.readouterr().out.strip() == str(out) and out.read_text().startswith("<?xml")
    assert main(["plot", str(_grown_run(tmp_path)), "--format", "svg"]) == 0
    written = capsys.readouterr().out.split()
    assert sorted(p.rsplit("/", 1)[1] for p in written) == ["arch_weights.svg", "cell.svg", "curves.svg"]
    assert plot_run(tmp_path / "grow", tmp_path / "again") == [tmp_path / "again" / f"{n}.png"
                                                               for n in ("cell", "arch_weights", "curves")]


@pytest.mark.parametrize("argv,message", [
    (["plot", "/"], "/ is not a jaxnas run directory (it has no config.json or metrics.jsonl)"),
    (["plot", "--space", "darts", "--genotype", "DARTS_V9"], "malformed DARTS genotype 'DARTS_V9'"),
    (["plot", "--genotype", "DARTS_V2"], "--genotype needs --space"),
    (["plot"], "nothing to draw"),
    (["plot", "--pareto", "abacus"], "unknown latency device 'abacus'"),
])
def test_cli_plot_errors(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_bench_plot(tmp_path, capsys):
    out = tmp_path / "strategies.png"
    assert main(["bench", "nb201", "--strategy", "random,rea", "--queries", "8", "--runs", "2", "--plot",
                 str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[-1] == str(out) and out.stat().st_size > 5000
