"""CIFAR-10 searches of the DARTS family on the DARTS space, each with its authors' search settings (GPU scale).

    jaxnas search --config experiments/configs/darts_family_search.py:pdarts
    jaxnas search --config experiments/configs/darts_family_search.py:pcdarts
    jaxnas search --config experiments/configs/darts_family_search.py:sdarts-rs      # or sdarts-adv
    jaxnas search --config experiments/configs/darts_family_search.py:msdarts
    jaxnas search --config experiments/configs/darts_family_search.py:dartsprime
    jaxnas search --config experiments/configs/darts_family_search.py:quick-pdarts   # CPU smoke test

Where the settings come from (the authors' search scripts, read for this file; docs/methods.md lists the pieces):

- ``pdarts``: chenxin061/pdarts train_search.py with its README's CIFAR-10 command: 3 stages of 25 epochs (the first
  10 of each weights only) on 5, 11 and 17 cells of C=16, keeping 5, 3 and 1 ops per edge, skip dropout 0.1, 0.4,
  0.7, at most 2 skips; batch 96, lr 0.025 -> 0 cosine, arch Adam 6e-4.
- ``pcdarts``: PC-DARTS's train_search.py: K=4 and edge normalization, batch 256, lr 0.1, arch Adam 6e-4, 50 epochs,
  the architecture trained from epoch 15.
- ``sdarts-rs`` / ``sdarts-adv``: SmoothDARTS: the DARTS settings, 50 epochs, radius 0.03 -> 0.3.
- ``msdarts``: MS-DARTS's train_search.py: 40 epochs, the architecture from epoch 5, radius 0.025 -> 0.25, 2
  mean-shift iterations of 3 points, bandwidth 1.
- ``dartsprime``: DARTS-PRIME's README command (proximity term, dynamic schedule), 50 epochs, batch 64.

Every variant writes to ``runs/<variant>``; the derived cell is evaluated as in darts_cifar10_search.py.
"""

import dataclasses

from jaxnas.runners.search import METHODS, SearchConfig
from jaxnas.search.steps import OptimConfig

DARTS_OPTIM = OptimConfig(w_lr=0.025, w_lr_min=0.001, w_momentum=0.9, w_weight_decay=3e-4, w_grad_clip=5.0,
                          a_lr=3e-4, a_b1=0.5, a_b2=0.999, a_weight_decay=1e-3)
BASE = dict(space="darts", optimization="bilevel-1st", dataset="cifar10", image_size=32, steps_per_epoch=None,
            batch_size=64, width=16, depth=8, seed=0, optim=DARTS_OPTIM, checkpoint_every=500, log_every=50)

VARIANTS = {
    "pdarts": dict(**METHODS["pdarts"], epochs=25, warmup_epochs=10, batch_size=96,
                   optim=dataclasses.replace(DARTS_OPTIM, w_lr_min=0.0, a_lr=6e-4)),
    "pcdarts": dict(**METHODS["pcdarts"], epochs=50, warmup_epochs=15, batch_size=256,
                    optim=dataclasses.replace(DARTS_OPTIM, w_lr=0.1, a_lr=6e-4)),
    "sdarts-rs": dict(**METHODS["sdarts-rs"], epochs=50),
    "sdarts-adv": dict(**METHODS["sdarts-adv"], epochs=50),
    "msdarts": dict(**METHODS["msdarts"], epochs=40, warmup_epochs=5),
    "dartsprime": dict(**METHODS["dartsprime"], epochs=50),
}


def get_config(variant: str = "pdarts") -> SearchConfig:
    if variant == "quick-pdarts":  # 3 stages of 1, 2, 2 cells at C=4 on the embedded data: it all runs
        fields = {**BASE, **VARIANTS["pdarts"], "dataset": "embedded", "epochs": 2, "warmup_epochs": 1,
                  "steps_per_epoch": 3, "batch_size": 16, "width": 4, "stage_depths": (1, 2, 2),
                  "checkpoint_every": 3, "log_every": 1}
        return SearchConfig(**fields, workdir="runs/quick-pdarts")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} of darts_family_search.py; allowed: "
                         f"{', '.join(VARIANTS)}, quick-pdarts")
    return SearchConfig(**{**BASE, **VARIANTS[variant]}, workdir=f"runs/{variant}")
