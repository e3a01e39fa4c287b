"""NAS-Bench-201 search settings (the NB201 paper's set-up for differentiable searches on CIFAR-10).

Run (full scale, one GPU; CIFAR-10 comes from TFDS):

    jaxnas search --config experiments/configs/nb201_search.py            # DARTS 1st order
    jaxnas search --config experiments/configs/nb201_search.py:gdas       # GDAS, 250 epochs, tau 10 -> 0.1
    jaxnas search --config experiments/configs/nb201_search.py:quick      # a couple of minutes on a laptop CPU

Set-up: NB201 supernet C=16, N=5 cells per stage; CIFAR-10 training set split 25k (weights) / 25k (architecture),
batch 64, SGD momentum 0.9 Nesterov, lr 0.025 -> 0.001 cosine, weight decay 5e-4, gradient clip 5; architecture
Adam(3e-4, betas 0.5/0.999), weight decay 1e-3. DARTS: 50 epochs, bi-level first order. GDAS: 250 epochs.

Expected result (the NB201 paper, CIFAR-10 test accuracy of the derived cell in the benchmark): DARTS 1st order
collapses to an all-skip-connect cell (about 54%), GDAS finds cells at about 93.5%. Look a derived cell up with
``jaxnas bench`` or train it with ``jaxnas train --genotype WORKDIR/genotype.json``. The quick variant runs on the
embedded Fashion-MNIST subset and only checks that everything works (its genotype means little).
"""

from jaxnas.runners.search import SearchConfig
from jaxnas.search.steps import OptimConfig

NB201_OPTIM = OptimConfig(w_lr=0.025, w_lr_min=0.001, w_momentum=0.9, w_nesterov=True, w_weight_decay=5e-4,
                          w_grad_clip=5.0, a_lr=3e-4, a_b1=0.5, a_b2=0.999, a_weight_decay=1e-3)


def get_config(variant: str = "darts") -> SearchConfig:
    full = SearchConfig(space="nb201", relaxation="darts", optimization="bilevel-1st", dataset="cifar10", image_size=32,
                        epochs=50, steps_per_epoch=None, batch_size=64, width=16, depth=5, seed=0,
                        optim=NB201_OPTIM, checkpoint_every=500, log_every=50, workdir="runs/nb201_darts")
    if variant == "darts":
        return full
    if variant == "gdas":
        return full.replace(relaxation="gdas", epochs=250, workdir="runs/nb201_gdas")  # auto: tau 10 -> 0.1
    if variant == "quick":
        return full.replace(dataset="embedded", epochs=3, steps_per_epoch=25, batch_size=32, width=8, depth=1,
                            checkpoint_every=25, log_every=5, workdir="runs/nb201_quick")
    raise ValueError(f"unknown variant {variant!r} of nb201_search.py; allowed: darts, gdas, quick")
