"""``jaxnas describe``: parameters, FLOPs, genotype and cell width/depth of a network or supernet, as JSON.

    jaxnas describe --space darts --genotype DARTS_V2 --width 36 --depth 20 --auxiliary
    jaxnas describe --space darts --supernet --width 16 --depth 8
    jaxnas describe --space darts-rnn --genotype DARTS_V2 --width 850
    jaxnas describe --space nb201 --arch '|nor_conv_3x3~0|+|...|' --dataset cifar100
    jaxnas describe --space darts --genotype runs/search/genotype.json     # a search's result

For image spaces, ``cells`` gives every cell type's width (in units of the channel count c) and depth as Shu et al. (ICLR 2020) define
them (:func:`jaxnas.spaces.graph.cell_shape`).
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp

from jaxnas.nn.costs import image_spec, profile
from jaxnas import registry
from jaxnas.spaces.graph import cell_shape

# image size, channels, classes of the data sets a network is usually built for
DATASET_SHAPES = {
    "cifar10": (32, 3, 10),
    "cifar100": (32, 3, 100),
    "imagenet16": (16, 3, 120),
    "fashion_mnist": (32, 1, 10),  # 28x28 padded to 32x32, as the search CLI loads it
}


@dataclasses.dataclass(frozen=True)
class Description:
    space: str
    model: str
    params: int
    flops: int
    input_shape: tuple[int, int, int, int]
    num_classes: int
    genotype: dict | None
    arch: str | None = None
    params_with_auxiliary: int | None = None
    cells: list | None = None  # width (in units of c) and depth of every cell type (Shu et al.)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["mflops"] = round(self.flops / 1e6, 3)
        return {k: v for k, v in d.items() if v is not None}


def parse_genotype(space, text: str):
    """A genotype of ``space`` from what ``--genotype`` takes, or from a search's ``genotype.json``."""
    if isinstance(text, str) and os.path.isfile(text):
        with open(text) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{text}: not a JSON file ({e})") from None
        if isinstance(data, dict) and isinstance(data.get("genotype"), dict):
            if data.get("space", space.name) != space.name:
                raise ValueError(f"{text} holds a genotype of space {data.get('space')!r}, not {space.name}")
            return space.from_json(data["genotype"])
    return space.parse(text)


def cell_shapes(space, genotype) -> list | None:
    """``[{"cell", "width", "depth"}]`` of every cell graph of ``genotype`` (None where a space draws none)."""
    if not hasattr(space, "cell_graphs"):
        return None
    out = []
    for graph in space.cell_graphs(genotype):
        try:
            out.append({"cell": graph.title, **cell_shape(graph).to_json()})
        except ValueError:
            return None
    return out


def describe(
    space_name: str,
    *,
    genotype: str | None = None,
    supernet: bool = False,
    dataset: str = "cifar10",
    width: int | None = None,
    depth: int | None = None,
    auxiliary: bool = False,
) -> Description:
    """Build the requested model (shapes only, nothing is allocated) and count its parameters and FLOPs.

    Sizes default to the space's published ones (:attr:`jaxnas.registry.SpaceEntry.paper_network` and
    ``paper_supernet``)."""
    entry = registry.get_entry(space_name)
    space = entry.space()
    if supernet == (genotype is not None):
        raise ValueError("give either a genotype (--genotype/--arch) or --supernet")
    sizes = entry.paper_supernet if supernet else entry.paper_network
    width, depth = width or sizes.width, depth or sizes.depth
    if entry.task == "sequence":
        return describe_cell(entry, space, genotype=genotype, supernet=supernet, hidden=width)
    if dataset not in DATASET_SHAPES:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASET_SHAPES)}")
    size, in_ch, classes = DATASET_SHAPES[dataset]
    x = image_spec(1, size, in_ch)
    if supernet:
        model = entry.supernet(space, width, depth, classes)
        params, flops = profile(model, x, registry.abstract_arch(space), train=False)
        return Description(space.name, type(model).__name__, params, flops, x.shape, classes, None)
    g = parse_genotype(space, genotype)
    model = entry.network(g, width, depth, classes, auxiliary)
    if not entry.auxiliary_head:
        params, flops = profile(model, x, train=False)
        return Description(space.name, type(model).__name__, params, flops, x.shape, classes, space.to_json(g),
                           arch=space.format(g), cells=cell_shapes(space, g))
    params, flops = profile(model, x, train=False, exclude=("auxiliary_head",))
    with_aux = profile(model, x, train=False)[0] if auxiliary else None
    return Description(space.name, type(model).__name__, params, flops, x.shape, classes, space.to_json(g),
                       params_with_auxiliary=with_aux, cells=cell_shapes(space, g))


def describe_cell(entry, space, *, genotype: str | None, supernet: bool, hidden: int) -> Description:
    """A recurrent cell (one time step; input size = hidden, as in DARTS's PTB model, embedding not counted)."""
    carry, x = jax.ShapeDtypeStruct((1, hidden), jnp.float32), jax.ShapeDtypeStruct((1, hidden), jnp.float32)
    if supernet:
        model = entry.supernet(space, hidden, 1)
        params, flops = profile(model, carry, x, registry.abstract_arch(space), train=False)
        return Description(space.name, type(model).__name__, params, flops, (1, hidden), 0, None)
    g = parse_genotype(space, genotype)
    model = entry.network(g, hidden, 1)
    params, flops = profile(model, carry, x, None, train=False)
    return Description(space.name, type(model).__name__, params, flops, (1, hidden), 0, space.to_json(g))


def register(sub) -> None:
    p = sub.add_parser("describe", help="print params, FLOPs and genotype of a network or supernet as JSON",
                       description=__doc__.splitlines()[0])
    p.add_argument("--space", required=True, choices=registry.space_names("image") + registry.space_names("sequence"))
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--genotype", help="DARTS: a published name (DARTS_V1, DARTS_V2, PC_DARTS_cifar), JSON or JSON file; "
                   "NB201: an arch string or a genotype JSON")
    g.add_argument("--arch", dest="genotype", help="alias of --genotype (NB201 arch strings)")
    g.add_argument("--supernet", action="store_true", help="describe the search supernet instead")
    p.add_argument("--dataset", default="cifar10", choices=sorted(DATASET_SHAPES))
    p.add_argument("--width", "--channels", "--hidden", dest="width", type=int,
                   help="channels C (default: the published network's: NB201 16, DARTS 36, its supernet 16); "
                        "darts-rnn: hidden units (default 850)")
    p.add_argument("--depth", "--layers", "--cells", dest="depth", type=int,
                   help="DARTS: cells (default 20, supernet 8); NB201: cells per stage N (default 5)")
    p.add_argument("--auxiliary", action="store_true", help="DARTS network: build the auxiliary head too")
    p.set_defaults(func=_run)


def _run(args) -> int:
    for name in ("width", "depth"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be a positive integer, got {value}")
    d = describe(
        args.space, genotype=args.genotype, supernet=args.supernet, dataset=args.dataset,
        width=args.width, depth=args.depth, auxiliary=args.auxiliary,
    )
    print(json.dumps(d.to_json(), indent=1))
    return 0
