"""``jaxnas plot``: pictures of a run, a genotype, or the NB201 accuracy/latency front, as PNG or SVG files.

    jaxnas plot runs/search                                    everything the run has, into runs/search/plots
    jaxnas plot runs/search --format svg
    jaxnas plot --space darts --genotype DARTS_V2              a published or saved genotype's cells
    jaxnas plot --space nb201 --genotype runs/search/genotype.json --out cell.png
    jaxnas plot --pareto titanxp_1 --genotype '|nor_conv_3x3~0|+|...|'   NB201 front on a HELP device, a cell marked

The file paths written are printed, one per line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from jaxnas import registry
from jaxnas.benchmarks import nb201
from jaxnas.plot import plot_genotype, plot_pareto, plot_run, save_figure
from jaxnas.plot.figures import FORMATS


def register(subparsers) -> None:
    p = subparsers.add_parser("plot", help="draw a run (cells, architecture weights, curves), a genotype, or the "
                                           "NB201 accuracy/latency front", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", nargs="?", help="a run directory (jaxnas search / train output)")
    p.add_argument("--space", help="the genotype's search space (with --genotype; default: the genotype file's)")
    p.add_argument("--genotype", help="a published name (DARTS_V2, ...), an arch string, JSON, or a genotype.json file")
    p.add_argument("--pareto", metavar="DEVICE", help="draw NB201's accuracy/latency front on a HELP device "
                                                     "(e.g. titanxp_1), marking --genotype if given")
    p.add_argument("--dataset", default="cifar10", help="with --pareto: cifar10, cifar100 or imagenet16")
    p.add_argument("--format", choices=FORMATS, help="file format (default: the --out file's suffix, else png)")
    p.add_argument("--out", help="output: a folder for a run (default RUN_DIR/plots), a file otherwise "
                                 "(default plots/NAME.FORMAT)")
    p.set_defaults(func=main)


def load_genotype(text: str, space_name: str | None):
    """``(space, genotype, arch)`` from a published name, a string, JSON, or a genotype.json file (a run's
    ``genotype.json`` names its space; a growing search's holds the derived spec and its architecture)."""
    path = Path(text)
    data = None
    if path.suffix == ".json" and path.is_file():
        data = json.loads(path.read_text())
    elif text.lstrip().startswith("{"):
        data = json.loads(text)
    if isinstance(data, dict):
        name = space_name or data.get("space")
        if name is None:
            raise ValueError(f"{text}: the genotype does not name its space; give --space")
        space = registry.get_space(name)
        if "derived" in data or "spec" in data:  # a growing search's genotype.json
            return space, space.from_json(data), data.get("arch")
        inner = data.get("genotype", data)
        return space, space.from_json(inner if isinstance(inner, dict) else {"space": name, "arch": inner}), None
    if space_name is None:
        raise ValueError("--genotype needs --space (darts, nb201, darts-rnn, ...) unless it is a genotype.json file")
    space = registry.get_space(space_name)
    if not hasattr(space, "parse"):
        raise ValueError(f"space {space_name!r} takes its genotypes as JSON files (a run's genotype.json)")
    return space, space.parse(text), None


def _name(text: str) -> str:
    stem = Path(text).stem if Path(text).suffix == ".json" else text
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_")[:60] or "genotype"


def _out_file(args, default_stem: str) -> tuple[Path, str]:
    if args.out is not None:
        out = Path(args.out)
        return out, args.format or (out.suffix.lstrip(".").lower() if out.suffix else "png")
    fmt = args.format or "png"
    return Path(f"plots/{default_stem}.{fmt}"), fmt


def main(args) -> int:
    if args.pareto is not None:
        if args.run_dir is not None:
            raise ValueError("give either a run directory or --pareto, not both")
        bench = nb201.load()
        marked = {}
        if args.genotype:
            _, g, _ = load_genotype(args.genotype, args.space or "nb201")
            marked = {"genotype": g}
        fig = plot_pareto(bench, args.pareto, args.dataset, marked=marked)
        print(save_figure(fig, *_out_file(args, f"nb201-pareto-{args.pareto}")))
        return 0
    if args.run_dir is not None:
        if args.genotype is not None:
            raise ValueError("give either a run directory or --genotype, not both")
        for path in plot_run(args.run_dir, args.out, args.format or "png"):
            print(path)
        return 0
    if args.genotype is None:
        raise ValueError("nothing to draw: give a run directory, --genotype (with --space) or --pareto DEVICE")
    space, genotype, arch = load_genotype(args.genotype, args.space)
    options = {"arch": arch} if arch is not None else {}
    fig = plot_genotype(space, genotype, title=f"{space.name}: {_name(args.genotype)}", **options)
    print(save_figure(fig, *_out_file(args, f"{space.name}-{_name(args.genotype)}")))
    return 0
