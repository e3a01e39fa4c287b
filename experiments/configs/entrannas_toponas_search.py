"""CIFAR-10 searches of EnTranNAS, EnTranNAS-DST and TopoNAS on the DARTS space (GPU scale), and quick variants.

    jaxnas search --config experiments/configs/entrannas_toponas_search.py:entrannas
    jaxnas search --config experiments/configs/entrannas_toponas_search.py:entrannas-dst
    jaxnas search --config experiments/configs/entrannas_toponas_search.py:toponas         # DARTS base relaxation
    jaxnas search --config experiments/configs/entrannas_toponas_search.py:toponas-gdas    # GDAS base relaxation
    jaxnas search --config experiments/configs/entrannas_toponas_search.py:quick-entrannas-dst  # CPU, minutes
    jaxnas search --config experiments/configs/entrannas_toponas_search.py:nb201-entrannas      # NB201, CPU scale

Settings: neither paper has public code and their method sections were not readable here (docs/methods.md), so
the search schedule is DARTS's CIFAR-10 one (50 epochs, batch 64, C=16, 8 cells, first order, SGD 0.025 cosine,
arch Adam 3e-4), which both papers build on; TopoNAS-GDAS uses GDAS's temperature 10 -> 0.1 (the relaxation's
``auto``). The derived cell is evaluated as in darts_cifar10_search.py (``jaxnas train`` on NetworkCIFAR, C=36,
20 cells); a DST or TopoNAS cell may give a node any number of inputs.
"""

from jaxnas.runners.search import METHODS, SearchConfig
from jaxnas.search.steps import OptimConfig

DARTS_OPTIM = OptimConfig(w_lr=0.025, w_lr_min=0.001, w_momentum=0.9, w_weight_decay=3e-4, w_grad_clip=5.0,
                          a_lr=3e-4, a_b1=0.5, a_b2=0.999, a_weight_decay=1e-3)
BASE = dict(space="darts", optimization="bilevel-1st", dataset="cifar10", image_size=32, steps_per_epoch=None,
            batch_size=64, width=16, depth=8, seed=0, optim=DARTS_OPTIM, epochs=50, checkpoint_every=500,
            log_every=50)

VARIANTS = {
    "entrannas": dict(**METHODS["entrannas"]),
    "entrannas-dst": dict(**METHODS["entrannas-dst"]),
    "toponas": dict(**METHODS["toponas"]),
    "toponas-gdas": dict(**{**METHODS["toponas"], "relaxation": "gdas"}),
}
QUICK = dict(dataset="embedded", epochs=4, steps_per_epoch=20, batch_size=16, width=8, depth=5, checkpoint_every=20,
             log_every=5)


def get_config(variant: str = "entrannas") -> SearchConfig:
    if variant == "nb201-entrannas":  # the NB201 supernet with Transit-cells, the collapse study's budget
        return SearchConfig(space="nb201", **METHODS["entrannas"], dataset="fashion_mnist", epochs=10,
                            steps_per_epoch=100, batch_size=64, width=8, depth=1, workdir="runs/nb201-entrannas")
    if variant.startswith("quick-") and variant[6:] in VARIANTS:
        return SearchConfig(**{**BASE, **VARIANTS[variant[6:]], **QUICK}, workdir=f"runs/{variant}")
    if variant not in VARIANTS:
        allowed = [*VARIANTS, *(f"quick-{v}" for v in VARIANTS), "nb201-entrannas"]
        raise ValueError(f"unknown variant {variant!r} of entrannas_toponas_search.py; allowed: {', '.join(allowed)}")
    return SearchConfig(**{**BASE, **VARIANTS[variant]}, workdir=f"runs/{variant}")
