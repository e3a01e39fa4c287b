"""Cell pictures: any :class:`~jaxnas.spaces.graph.CellGraph` drawn left to right, as in the DARTS paper's figures.

Nodes sit in columns by their longest path from the inputs (inputs green, intermediate nodes blue, operand slots
grey, the output yellow); edges are arrows labelled with their op, long edges bend around the columns they skip,
``none`` edges are dashed. No graphviz: the layout is computed here, so ``pip install`` is all it needs.

Every drawn element carries a ``gid`` naming what it is (``node:NAME``, ``edge:SRC->DST``, ``edge-label:SRC->DST``),
so a test or a user can check the picture against the genotype.
"""

from __future__ import annotations

from collections import defaultdict

from matplotlib.figure import Figure

from jaxnas.plot.figures import math_label, new_figure, styled
from jaxnas.spaces.graph import CellGraph

NODE_COLORS = {"input": "#b7e4a8", "node": "#a9cce3", "slot": "#e5e5e5", "output": "#f9e79f"}
EDGE_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
                "#bcbd22")
COLUMN_GAP, ROW_GAP = 3.4, 1.8


def layout(graph: CellGraph) -> dict[str, tuple[float, float]]:
    """``name -> (x, y)``: column = longest path from the inputs, rows centred in each column, in node order."""
    depth = graph.depths()
    columns = defaultdict(list)
    for node in graph.nodes:
        columns[depth[node.name]].append(node.name)
    pos = {}
    for col, names in columns.items():
        for row, name in enumerate(names):
            pos[name] = (col * COLUMN_GAP, ((len(names) - 1) / 2 - row) * ROW_GAP)
    return pos


def _bends(graph: CellGraph, pos) -> list[float]:
    """The arc3 ``rad`` of every edge: 0 between neighbouring columns, bent away from the middle for longer ones,
    spread apart where several edges join the same two nodes."""
    seen = defaultdict(int)
    middle = 0  # long edges along the middle row bend up and down in turn
    out = []
    for e in graph.edges:
        (x0, y0), (x1, y1) = pos[e.src], pos[e.dst]
        span = round(abs(x1 - x0) / COLUMN_GAP)
        k = seen[(e.src, e.dst)]
        seen[(e.src, e.dst)] += 1
        rad = 0.0 if span <= 1 else 0.18 + 0.06 * (span - 2)
        if rad and (y0 + y1) / 2 == 0:
            rad, middle = (rad if middle % 2 == 0 else -rad), middle + 1
        elif rad and (y0 + y1) / 2 < 0:
            rad = -rad  # below the middle: bend down (arc3 bends to the right of the direction of travel)
        out.append(-rad + 0.25 * k if x1 > x0 else rad + 0.25 * k)
    return out


def _curve_point(p0, p1, rad, t):
    """Point ``t`` of arc3's quadratic curve from ``p0`` to ``p1`` (equal aspect: data and display agree)."""
    (x0, y0), (x1, y1) = p0, p1
    cx, cy = (x0 + x1) / 2 + rad * (y1 - y0), (y0 + y1) / 2 - rad * (x1 - x0)
    a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t ** 2
    return a * x0 + b * cx + c * x1, a * y0 + b * cy + c * y1


def _label_spot(label, p0, p1, rad, placed, pos):
    """Where an edge label goes: the curve's middle, or the first point along it clear of labels already placed
    and of the nodes (``placed`` grows by this label's box)."""
    half_w, half_h = 0.032 * len(label) + 0.06, 0.13
    spots = [_curve_point(p0, p1, rad, t) for t in (0.5, 0.38, 0.62, 0.28, 0.72, 0.2, 0.8)]
    for x, y in spots:
        box = (x - half_w, x + half_w, y - half_h, y + half_h)
        clear = all(box[1] < b[0] or b[1] < box[0] or box[3] < b[2] or b[3] < box[2] for b in placed)
        clear = clear and all(abs(nx - x) > half_w + 0.3 or abs(ny - y) > half_h + 0.25 for nx, ny in pos.values())
        if clear:
            break
    else:
        x, y = spots[0]
        box = (x - half_w, x + half_w, y - half_h, y + half_h)
    placed.append(box)
    return x, y


def op_colors(labels) -> dict[str, str]:
    """One colour per op name (sorted, so the same ops get the same colours in every picture of a figure)."""
    names = sorted({label for label in labels if label and label != "none"})
    return {name: EDGE_PALETTE[i % len(EDGE_PALETTE)] for i, name in enumerate(names)} | {"none": "#9a9a9a"}


def draw_cell(ax, graph: CellGraph, colors: dict[str, str] | None = None) -> None:
    """Draw ``graph`` on the axes ``ax`` (equal aspect, no frame)."""
    pos = layout(graph)
    colors = colors or op_colors(e.label for e in graph.edges)
    boxes, placed = {}, []
    for node in graph.nodes:
        x, y = pos[node.name]
        text = ax.text(x, y, math_label(node.label), ha="center", va="center", fontsize=10, zorder=1,
                       gid=f"node:{node.name}",
                       bbox=dict(boxstyle="round,pad=0.45", fc=NODE_COLORS[node.kind], ec="#404040", lw=0.8))
        boxes[node.name] = text
    bends = _bends(graph, pos)
    for e, rad in zip(graph.edges, bends):
        (x0, y0), (x1, y1) = pos[e.src], pos[e.dst]
        color = colors.get(e.label, "#404040") if e.label else "#404040"
        # drawn after the node boxes (zorder), so the arrow is clipped to boxes already placed
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=2, gid=f"edge:{e.src}->{e.dst}",
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=1.3 if e.label else 0.9,
                                    linestyle="--" if e.label == "none" else "-", connectionstyle=f"arc3,rad={rad}",
                                    patchA=boxes[e.src].get_bbox_patch(), patchB=boxes[e.dst].get_bbox_patch(),
                                    shrinkA=1, shrinkB=1, mutation_scale=11))
        if e.label:
            x, y = _label_spot(e.label, (x0, y0), (x1, y1), rad, placed, pos)
            ax.text(x, y, e.label, ha="center", va="center", fontsize=7.5, color=color, zorder=3,
                    gid=f"edge-label:{e.src}->{e.dst}",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    middles = [_curve_point(pos[e.src], pos[e.dst], rad, 0.5) for e, rad in zip(graph.edges, bends)]
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in [*pos.values(), *middles]]
    ax.set_xlim(min(xs) - 0.9, max(xs) + 0.9)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(graph.title)


@styled
def plot_cells(graphs, title: str | None = None) -> Figure:
    """One panel per cell graph, side by side (op colours shared across the panels)."""
    graphs = tuple(graphs)
    if not graphs:
        raise ValueError("plot_cells needs at least one cell graph")
    spans = []
    for g in graphs:
        pos = layout(g)
        bends = [_curve_point(pos[e.src], pos[e.dst], rad, 0.5) for e, rad in zip(g.edges, _bends(g, pos))]
        xs, ys = [p[0] for p in pos.values()], [p[1] for p in [*pos.values(), *bends]]
        spans.append((max(xs) - min(xs) + 1.8, max(ys) - min(ys) + 1.6))
    scale = 0.95
    width = sum(w for w, _ in spans) * scale + 0.3 * len(graphs)
    height = max(h for _, h in spans) * scale + (0.4 if title else 0.0)
    fig = new_figure(width, height)
    axes = fig.subplots(1, len(graphs), squeeze=False, width_ratios=[w for w, _ in spans])[0]
    colors = op_colors(e.label for g in graphs for e in g.edges)
    for ax, g in zip(axes, graphs):
        draw_cell(ax, g, colors)
    if title:
        fig.suptitle(title)
    return fig


def plot_genotype(space, genotype, title: str | None = None, **graph_options) -> Figure:
    """The cells of ``genotype`` in ``space`` (anything with ``cell_graphs``: every registered space)."""
    if not hasattr(space, "cell_graphs"):
        raise ValueError(f"space {getattr(space, 'name', type(space).__name__)!r} cannot draw its cells: it has no "
                         f"cell_graphs(genotype) method")
    return plot_cells(space.cell_graphs(genotype, **graph_options), title=title)


__all__ = ["draw_cell", "layout", "op_colors", "plot_cells", "plot_genotype"]
