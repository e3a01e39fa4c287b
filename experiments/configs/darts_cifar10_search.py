"""DARTS CIFAR-10 search (the DARTS paper's search set-up).

Run (full scale, one GPU or several with --devices; CIFAR-10 comes from TFDS):

    jaxnas search --config experiments/configs/darts_cifar10_search.py               # second order (DARTS V2)
    jaxnas search --config experiments/configs/darts_cifar10_search.py:first_order  # DARTS V1
    jaxnas search --config experiments/configs/darts_cifar10_search.py:quick        # CPU smoke test (see below)

then evaluate the derived cell as in the paper (600 epochs, C=36, 20 cells, auxiliary 0.4, drop-path 0.2, cutout 16):

    jaxnas train --genotype runs/darts_cifar10/genotype.json --dataset cifar10 --epochs 600 --steps-per-epoch 0 \\
        --batch-size 96 --width 36 --depth 20 --workdir runs/darts_cifar10_eval

Set-up: DARTS search network C=16, 8 cells, CIFAR-10 training set split 25k / 25k, 50 epochs, batch 64, SGD
momentum 0.9, lr 0.025 -> 0.001 cosine, weight decay 3e-4, gradient clip 5; architecture Adam(3e-4, betas 0.5/0.999),
weight decay 1e-3; second order with the exact Hessian-vector product (``hessian="finite_difference"`` for the
paper's approximation).

Expected result (the DARTS paper): a cell dominated by separable convolutions and skip connections (compare with
``jaxnas describe --space darts --genotype DARTS_V2``); evaluated, 2.76 +- 0.09 % test error for second order and
3.00 +- 0.14 % for first order, with run-to-run variation in the cell itself. The quick variant (embedded
Fashion-MNIST, C=4, 5 cells, 2 x 10 steps) only checks that everything works. On CPU its cost is XLA compilation of
the DARTS supernet step: measured 19 min wall (11.5 min CPU) for 2 steps on a busy 2-core machine, the steps
themselves take well under a second; the compilation cache (``~/.cache/jaxnas/xla``) makes a rerun or a resume skip it.
"""

from jaxnas.runners.search import SearchConfig
from jaxnas.search.steps import OptimConfig

DARTS_OPTIM = OptimConfig(w_lr=0.025, w_lr_min=0.001, w_momentum=0.9, w_weight_decay=3e-4, w_grad_clip=5.0,
                          a_lr=3e-4, a_b1=0.5, a_b2=0.999, a_weight_decay=1e-3)


def get_config(variant: str = "second_order") -> SearchConfig:
    full = SearchConfig(space="darts", relaxation="darts", optimization="bilevel-2nd", dataset="cifar10", image_size=32,
                        epochs=50, steps_per_epoch=None, batch_size=64, width=16, depth=8, seed=0,
                        optim=DARTS_OPTIM, checkpoint_every=500, log_every=50, workdir="runs/darts_cifar10",
                        conv_impl=None)  # the platform's choice: xla on GPU/TPU; per kind on CPU (3x faster steps
    #                                      than xla everywhere for this network, slower to compile)
    if variant == "second_order":
        return full
    if variant == "first_order":
        return full.replace(optimization="bilevel-1st", workdir="runs/darts_cifar10_v1")
    if variant == "quick":
        return full.replace(optimization="bilevel-1st", dataset="embedded", epochs=2, steps_per_epoch=10,
                            batch_size=16, width=4, depth=5, checkpoint_every=10, log_every=5,
                            workdir="runs/darts_quick", conv_impl="xla")  # 20 steps: compile time dominates
    raise ValueError(f"unknown variant {variant!r} of darts_cifar10_search.py; allowed: second_order, first_order, "
                     "quick")
