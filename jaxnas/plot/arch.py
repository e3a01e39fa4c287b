"""Architecture weights: a heatmap of edges x ops, and their trajectories over a search.

The weights shown are the relaxation's deterministic view of the logits: ``softmax`` per edge (what DARTS derives
from; also the mean of the Gumbel relaxations' samples), independent ``sigmoid`` for the sigmoid relaxation
(ASAP/FairDARTS). Rows and columns are named by the space (``space.arch_axes()``); a grown spec's architecture
(one vector per edge, varying op lists) is laid out as edges x the family's ops, empty where an edge lacks an op.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import jax
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from jaxnas.plot.figures import math_label, new_figure, styled

SIGMOID_RELAXATIONS = ("sigmoid", "asap")


class ArchTable(NamedTuple):
    """One architecture leaf as a matrix of weights: ``values[edge, op]`` (NaN where the edge has no such op)."""

    title: str
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    values: np.ndarray


def relaxed(logits, relaxation: str = "softmax") -> np.ndarray:
    """Weights from logits over the last axis: softmax, or sigmoid for the sigmoid relaxation."""
    a = np.asarray(logits, np.float32)
    return np.asarray(jax.nn.sigmoid(a) if relaxation in SIGMOID_RELAXATIONS else jax.nn.softmax(a, axis=-1),
                      np.float64)


def _grown_tables(spec, arch, relaxation) -> list[ArchTable]:
    tables = []
    for index, cell in enumerate(spec.cells):
        sub = arch if spec.family == "rnn" else arch[f"cell{index}"]
        ops = sorted({op for _, _, _, e in cell.edges() for op in e.ops}, key=lambda o: (o != "none", o))
        rows, values = [], []
        for key, _, _, e in cell.edges():
            w = relaxed(sub[key], relaxation)
            row = np.full(len(ops), np.nan)
            for j, op in enumerate(e.ops):
                row[ops.index(op)] = w[j]
            rows.append(key)
            values.append(row)
        title = "recurrent cell" if spec.family == "rnn" else f"cell {index}"
        tables.append(ArchTable(title, tuple(rows), tuple(ops), np.asarray(values)))
    return tables


def arch_tables(space, arch, relaxation: str = "softmax", spec=None) -> list[ArchTable]:
    """The weights of every architecture leaf, named by ``space.arch_axes()`` (or by ``spec``'s edges for a grown
    spec; generic ``edge i`` / ``op j`` names for a space without ``arch_axes``)."""
    if spec is not None:
        return _grown_tables(spec, arch, relaxation)
    axes = space.arch_axes() if hasattr(space, "arch_axes") else {}
    if not isinstance(arch, dict) or not arch:
        raise ValueError(f"architecture parameters must be a non-empty dict of (edges, ops) arrays, got "
                         f"{type(arch).__name__}")
    tables = []
    for name, logits in arch.items():
        a = np.asarray(logits)
        if a.ndim == 1 and name.endswith("_edges") and name[: -len("_edges")] in axes:
            tables.append(_edge_table(name, axes[name[: -len("_edges")]][0], a))
            continue
        if a.ndim != 2:
            raise ValueError(f"architecture leaf {name!r} has shape {a.shape}; expected (edges, ops)")
        rows, cols = axes.get(name, (tuple(f"edge {i}" for i in range(a.shape[0])),
                                     tuple(f"op {j}" for j in range(a.shape[1]))))
        if (len(rows), len(cols)) != a.shape:
            raise ValueError(f"architecture leaf {name!r} has shape {a.shape}; the space {space.name!r} expects "
                             f"{(len(rows), len(cols))}")
        tables.append(ArchTable(name, tuple(rows), tuple(cols), relaxed(a, relaxation)))
    return tables


def _edge_table(name: str, rows: tuple[str, ...], logits: np.ndarray) -> ArchTable:
    """PC-DARTS's edge-normalization logits as one column: each edge's softmax weight among its node's edges (the
    node read off the row name after the arrow)."""
    values = np.empty(len(rows))
    nodes = [r.split("\u2192")[-1] for r in rows]
    for node in dict.fromkeys(nodes):
        idx = [i for i, n in enumerate(nodes) if n == node]
        values[idx] = relaxed(logits[idx])
    return ArchTable(name, tuple(rows), ("edge weight",), values[:, None])


@styled
def plot_arch_weights(space, arch, relaxation: str = "softmax", spec=None, title: str | None = None) -> Figure:
    """A heatmap per architecture leaf (edges x ops) of the relaxed weights; every cell is annotated with its
    value and each edge's strongest op is outlined."""
    tables = arch_tables(space, arch, relaxation, spec)
    n_rows = max(len(t.rows) for t in tables)
    width = sum(1.6 + 0.62 * len(t.cols) for t in tables) + 0.8
    fig = new_figure(width, 1.4 + 0.27 * n_rows)
    axes = fig.subplots(1, len(tables), squeeze=False, width_ratios=[len(t.cols) for t in tables])[0]
    # one colour scale over the tables, stretched to the values (early in a search they barely leave uniform)
    vmin = min(float(np.nanmin(t.values)) for t in tables)
    vmax = max(float(np.nanmax(t.values)) for t in tables)
    vmax = vmax if vmax > vmin else vmin + 1e-6
    digits = 2 if vmax - vmin > 0.05 else 3
    image = None
    for ax, t in zip(axes, tables):
        image = ax.imshow(np.ma.masked_invalid(t.values), cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_xticks(range(len(t.cols)), t.cols, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(t.rows)), [math_label(r) for r in t.rows], fontsize=7)
        ax.set_title(t.title)
        for i in range(t.values.shape[0]):
            row = t.values[i]
            if np.all(np.isnan(row)):
                continue
            best = int(np.nanargmax(row))
            for j, v in enumerate(row):
                if not np.isnan(v):
                    ax.text(j, i, f"{v:.{digits}f}", ha="center", va="center", fontsize=6,
                            color="black" if v > vmin + 0.6 * (vmax - vmin) else "white",
                            gid=f"weight:{t.title}:{i}:{j}")
            ax.add_patch(_outline(best, i, gid=f"strongest:{t.title}:{i}"))
    fig.colorbar(image, ax=list(axes), fraction=0.03, pad=0.02,
                 label="sigmoid(α)" if relaxation in SIGMOID_RELAXATIONS else "softmax(α) per edge")
    fig.suptitle(title or "architecture weights")
    return fig


def _outline(x, y, gid):
    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, ec="#ff4136", lw=1.4, gid=gid)


def trajectories(records: Sequence[dict]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(steps, {leaf: (records, edges, ops) logits})`` from genotypes.jsonl records with ``arch_params`` (the op
    logits; PC-DARTS's per-edge logits are left out)."""
    kept = [r for r in records if isinstance(r.get("arch_params"), dict)]
    if not kept:
        raise ValueError("no record has architecture parameters (genotypes.jsonl lines with an \"arch_params\" "
                         "field: runs written by jaxnas 0.1 searches)")
    steps = np.asarray([r.get("step", i) for i, r in enumerate(kept)])
    leaves = {name: np.asarray([r["arch_params"][name] for r in kept], np.float64) for name in kept[0]["arch_params"]}
    return steps, {name: a for name, a in leaves.items() if a.ndim == 3}  # (records, edges, ops) op logits


@styled
def plot_arch_trajectories(space, records: Sequence[dict], relaxation: str = "softmax", columns: int = 7,
                           title: str | None = None) -> Figure:
    """One small panel per edge: every op's relaxed weight against the step, from the records a search writes to
    genotypes.jsonl (``arch_params``: the architecture parameters at the start and after every epoch)."""
    steps, leaves = trajectories(records)
    tables = {name: arch_tables(space, {name: a[-1]}, relaxation)[0] for name, a in leaves.items()}
    panels = [(name, e) for name, a in leaves.items() for e in range(a.shape[1])]
    columns = max(1, min(columns, len(panels)))
    n_rows = math.ceil(len(panels) / columns)
    fig = new_figure(1.9 * columns + 1.6, 1.35 * n_rows + 0.8)
    axes = fig.subplots(n_rows, columns, squeeze=False, sharex=True, sharey=True)
    for ax, (name, e) in zip(axes.flat, panels):
        w = relaxed(leaves[name][:, e, :], relaxation)
        colors = _op_palette(tables[name].cols)  # leaves may differ in columns (TopoNAS's topologies)
        for j, op in enumerate(tables[name].cols):
            ax.plot(steps, w[:, j], color=colors[j], lw=1.2, label=op, gid=f"trajectory:{name}:{e}:{op}")
        edge = math_label(tables[name].rows[e])
        ax.set_title(f"{name}: {edge}" if len(leaves) > 1 else edge, fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=7, frameon=False)
    fig.supxlabel("step")
    fig.supylabel("sigmoid(α)" if relaxation in SIGMOID_RELAXATIONS else "softmax(α)")
    fig.suptitle(title or "architecture weights during the search")
    return fig


def _op_palette(ops: Sequence[str]) -> list[Any]:
    palette = ("#7f7f7f", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
               "#bcbd22")
    return [palette[i % len(palette)] for i in range(len(ops))]


__all__ = ["ArchTable", "SIGMOID_RELAXATIONS", "arch_tables", "plot_arch_trajectories", "plot_arch_weights", "relaxed",
           "trajectories"]
