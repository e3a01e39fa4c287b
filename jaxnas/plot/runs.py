"""A run's pictures: its curves, and everything :func:`plot_run` finds in a run directory.

:func:`plot_run_curves` draws the records of ``metrics.jsonl`` (train/val loss and accuracy, learning rate,
temperature; for growing searches the supernet's size with the growth and prune events marked). :func:`plot_run`
reads a directory the runner wrote (``jaxnas search``, ``jaxnas search --space grow-*``, ``jaxnas train``) and
writes one file per picture it can draw into ``RUN_DIR/plots``:

``cell``                the final genotype's cells (the derived spec of a growing search)
``arch_weights``        the final architecture weights, edges x ops
``arch_trajectories``   every edge's op weights over the search (from ``genotypes.jsonl``)
``curves``              the run's curves
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from jaxnas import registry
from jaxnas.nn import grow
from jaxnas.plot.arch import plot_arch_trajectories, plot_arch_weights
from jaxnas.plot.cells import plot_genotype
from jaxnas.plot.figures import FORMATS, new_figure, save_figure, styled

EVENT_COLORS = {"grow": "#2ca02c", "prune": "#d62728"}
EVENT_KINDS = ("morph", "transform")
CURVES = (  # panel title, (record key, line label) pairs
    ("loss", (("loss", "train"), ("val_loss", "val"))),
    ("accuracy", (("accuracy", "train"), ("val_accuracy", "val"))),
    ("learning rate", (("lr", "weights"), ("a_lr", "architecture"))),
    ("temperature", (("temperature", "temperature"),)),
)
SIZE_KEYS = (("nodes", "nodes"), ("width", "width"), ("hidden", "hidden units"))


def _series(records, kind: str, key: str):
    rows = [(r["step"], r[key]) for r in records
            if r.get("kind") == kind and isinstance(r.get(key), (int, float)) and "step" in r]
    return (np.asarray([s for s, _ in rows]), np.asarray([v for _, v in rows], np.float64)) if rows else None


def _mark_events(ax, events) -> None:
    for r in events:
        ax.axvline(r["step"], color=EVENT_COLORS.get(r.get("event"), "#7f7f7f"), lw=1.0, ls=":",
                   gid=f"event:{r.get('event')}:{r['step']}")


def curve_panels(records: Sequence[dict]):
    """``(panels, sized, events)`` of the records: the curve panels (title, lines), the records that carry the
    supernet's size, the growth/prune events."""
    records = [r for r in records if isinstance(r, dict)]
    panels = []
    for name, keys in CURVES:
        schedule = name in ("learning rate", "temperature")  # a schedule: its steps say all, epoch means add nothing
        lines = []
        for i, (key, label) in enumerate(keys):
            for kind in ("step",) if schedule and _series(records, "step", key) is not None else ("step", "epoch", "valid"):
                s = _series(records, kind, key)
                if s is not None:
                    lines.append((kind, label, key, f"C{i}", s))
        constant = all(np.ptp(s[1]) == 0 for *_, s in lines)
        if lines and not (schedule and constant):  # a constant schedule (temperature 1) is not worth a panel
            panels.append((name, lines))
    sized = [r for r in records if r.get("kind") in ("epoch", *EVENT_KINDS) and "params" in r]
    events = [r for r in records if r.get("kind") in EVENT_KINDS and "step" in r]
    return panels, sized, events


@styled
def plot_run_curves(records: Sequence[dict], title: str | None = None) -> Figure:
    """The curves in ``records`` (metrics.jsonl): per step (thin) and per epoch (markers), one panel per quantity
    the records have; growth/prune events as dotted lines on every panel, and a size panel when the records carry
    ``nodes``/``width``/``params``."""
    panels, sized, events = curve_panels(records)
    if not panels and not sized:
        raise ValueError("the records have no curves to draw (no loss, accuracy, lr or temperature by step)")
    n = len(panels) + (1 if sized else 0)
    fig = new_figure(4.2 * min(n, 3), 3.0 * ((n + 2) // 3))
    axes = fig.subplots((n + 2) // 3, min(n, 3), squeeze=False)
    flat = list(axes.flat)
    for ax, (name, lines) in zip(flat, panels):
        for kind, label, key, color, (x, y) in lines:
            style = dict(lw=0.8, alpha=0.55) if kind == "step" else dict(lw=1.6, marker="o", ms=3)
            ax.plot(x, y, color=color, label=f"{label} ({kind})", gid=f"curve:{key}:{kind}", **style)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.legend(fontsize=7, frameon=False)
        _mark_events(ax, events)
    if sized:
        ax = flat[len(panels)]
        sized.sort(key=lambda r: r["step"])
        steps = [r["step"] for r in sized]
        for key, label in SIZE_KEYS:
            if all(key in r for r in sized):
                ax.step(steps, [r[key] for r in sized], where="post", label=label, gid=f"size:{key}")
        twin = ax.twinx()
        twin.step(steps, [r["params"] for r in sized], where="post", color="#7f7f7f", ls="--", label="params",
                  gid="size:params")
        twin.set_ylabel("parameters")
        ax.set_title("supernet size")
        ax.set_xlabel("step")
        handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], fontsize=7, frameon=False)
        _mark_events(ax, events)
    for ax in flat[n:]:
        ax.set_axis_off()
    if events:
        title = f"{title + ': ' if title else ''}dotted lines: grow (green), prune (red)"
    if title:
        fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------------------------------------------
# run directories


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """What a run directory holds (absent files are None / empty)."""

    path: Path
    kind: str
    config: dict
    metrics: tuple[dict, ...]
    genotypes: tuple[dict, ...]
    genotype_json: dict | None
    result_json: dict | None
    arch: dict | None


def _json_lines(path: Path) -> tuple[dict, ...]:
    if not path.is_file():
        return ()
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a killed run
    return tuple(out)


def _json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None


def read_run(run_dir: str | Path) -> RunFiles:
    """The files of a run directory; a directory that is not a run (no config.json and no metrics.jsonl) is an
    error naming it."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ValueError(f"{path} is not a directory")
    config = _json(path / "config.json")
    if config is None and not (path / "metrics.jsonl").is_file():
        raise ValueError(f"{path} is not a jaxnas run directory (it has no config.json or metrics.jsonl)")
    arch = None
    if (path / "arch.npz").is_file():
        with np.load(path / "arch.npz") as f:
            arch = {k: np.asarray(f[k]) for k in f.files}
    return RunFiles(path, (config or {}).get("kind", "run"), (config or {}).get("config", {}),
                    _json_lines(path / "metrics.jsonl"), _json_lines(path / "genotypes.jsonl"),
                    _json(path / "genotype.json"), _json(path / "result.json"), arch)


def _relaxation(run: RunFiles) -> str:
    return str((run.genotype_json or {}).get("relaxation", run.config.get("relaxation", "softmax")))


def _run_space(run: RunFiles, name: str):
    """The run's search space with the options its config gave it (TopoNAS's topological variables)."""
    if name == "darts" and run.config.get("derivation") == "topology":
        return registry.get_space(name, topology=True, topology_sizes=tuple(run.config.get("topology_sizes", (2,))))
    return registry.get_space(name)


def run_figures(run: RunFiles) -> dict[str, Figure]:
    """Every picture the run's files allow, by name (see the module docstring)."""
    figures: dict[str, Any] = {}
    gj, rj = run.genotype_json, run.result_json
    title = f"{run.path} ({run.kind})"
    grown = None  # (space, full spec, derived spec, arch) of a growing search
    if gj is not None and str(gj.get("space", "")).startswith("grow-"):
        grown = (registry.get_space(gj["space"]), grow.spec_from_json(gj["spec"]), grow.spec_from_json(gj["derived"]),
                 gj.get("arch"))
    elif rj is not None and "derived" in rj and "spec" in rj:
        grown = (registry.get_space("grow-rnn"), grow.spec_from_json(rj["spec"]), grow.spec_from_json(rj["derived"]),
                 rj.get("arch"))
    if grown is not None:
        space, spec, derived, arch = grown
        figures["cell"] = plot_genotype(space, derived, title=f"{title}: derived cells", arch=arch)
        if arch is not None:
            figures["arch_weights"] = plot_arch_weights(space, arch, spec=spec, title=f"{title}: architecture weights")
    elif gj is not None and "genotype" in gj:
        space = _run_space(run, gj["space"])
        figures["cell"] = plot_genotype(space, space.from_json(gj["genotype"]), title=f"{title}: derived genotype")
        arch = run.arch  # image searches: arch.npz; sequence searches: result.json's "arch"
        if arch is None and rj is not None and isinstance(rj.get("arch"), dict):
            arch = {k: np.asarray(v) for k, v in rj["arch"].items()}
        if arch is not None:
            figures["arch_weights"] = plot_arch_weights(space, arch, _relaxation(run),
                                                        title=f"{title}: architecture weights")
    elif rj is not None and isinstance(rj.get("arch"), dict) and "rnn" in rj["arch"]:
        space = registry.get_space("darts-rnn")
        arch = {"rnn": np.asarray(rj["arch"]["rnn"])}
        figures["cell"] = plot_genotype(space, space.derive(arch), title=f"{title}: derived cell")
        figures["arch_weights"] = plot_arch_weights(space, arch, title=f"{title}: architecture weights")
    if any("arch_params" in r for r in run.genotypes) and gj is not None and gj.get("space") in registry.space_names():
        space = _run_space(run, gj["space"])
        figures["arch_trajectories"] = plot_arch_trajectories(space, run.genotypes, _relaxation(run),
                                                              title=f"{title}: architecture weights by step")
    panels, sized, _ = curve_panels(run.metrics)
    if panels or sized:  # a run may have logged no curves yet
        figures["curves"] = plot_run_curves(run.metrics, title=title)
    return figures


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None, fmt: str = "png") -> list[Path]:
    """Write every picture of the run in ``run_dir`` to ``out_dir`` (default ``run_dir/plots``) as ``fmt`` (png
    or svg); returns the paths written. A run without anything to draw is an error."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}; allowed: {', '.join(FORMATS)}")
    run = read_run(run_dir)
    figures = run_figures(run)
    if not figures:
        raise ValueError(f"{run.path} has nothing to draw yet (no genotype, architecture or curves)")
    out = Path(out_dir) if out_dir is not None else run.path / "plots"
    return [save_figure(fig, out / f"{name}.{fmt}", fmt) for name, fig in figures.items()]


__all__ = ["CURVES", "RunFiles", "curve_panels", "plot_run", "plot_run_curves", "read_run", "run_figures"]
