"""``jaxnas train``: train a derived network from scratch and write result.json with its test accuracy.

    jaxnas train --genotype runs/search/genotype.json --workdir runs/train
    jaxnas train --genotype '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|'
    jaxnas train --genotype DARTS_V2 --dataset cifar10 --epochs 600 --steps-per-epoch 0 --batch-size 96 \\
        --channels 36 --layers 20 --drop-path 0.2 --cutout 16 --workdir runs/darts_v2

Started again with the same arguments, training resumes from its newest checkpoint in --workdir.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from jaxnas.cli.search import one_line_errors
from jaxnas.cli.jobs import run_job
from jaxnas.platform import settings

from jaxnas.runners.train import TrainConfig, load_genotype, train_and_evaluate


def register(sub) -> None:
    d = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    p = sub.add_parser("train", help="train a derived network from scratch and report its test accuracy",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    one_line_errors(p, "jaxnas train")
    p.add_argument("--genotype", required=True, help="a search's genotype.json (or any genotype JSON file / object), "
                   "an NB201 arch string, or a published DARTS name (DARTS_V1, DARTS_V2, PC_DARTS_cifar)")
    p.add_argument("--dataset", default=d["dataset"], help="data set name or path (default: embedded)")
    p.add_argument("--image-size", type=int, default=d["image_size"])
    p.add_argument("--epochs", type=int, default=d["epochs"])
    p.add_argument("--steps-per-epoch", type=int, default=d["steps_per_epoch"],
                   help=f"cap on steps per epoch, 0 for full epochs (default {d['steps_per_epoch']})")
    p.add_argument("--batch-size", type=int, default=d["batch_size"])
    p.add_argument("--width", "--channels", dest="width", type=int,
                   help="initial channels C (default: the space's, 8 for nb201 and darts)")
    p.add_argument("--depth", "--layers", "--cells", dest="depth", type=int,
                   help="cells: NB201 per stage N, DARTS in all (default: the space's, 1 and 8)")
    p.add_argument("--lr", type=float, default=d["lr"], help="SGD learning rate (cosine to 0)")
    p.add_argument("--weight-decay", type=float, default=d["weight_decay"])
    p.add_argument("--auxiliary-weight", type=float, default=d["auxiliary_weight"],
                   help="DARTS: auxiliary head loss weight, 0 to drop the head (default 0.4)")
    p.add_argument("--drop-path", type=float, default=d["drop_path"],
                   help="DARTS: final drop-path probability, reached linearly over the epochs (default 0.2)")
    p.add_argument("--cutout", type=int, default=d["cutout"], help="cutout size, 0 for none (default 16)")
    p.add_argument("--no-augment", action="store_true", help="no crop/flip/cutout")
    p.add_argument("--conv-impl", choices=settings.CONV_IMPLS, help="convolution implementation (default auto: "
                   "$JAXNAS_CONV_IMPL, else the backend's per-kind choice)")
    p.add_argument("--eval-examples", type=int, help="evaluate on the first N test examples only")
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--workdir", default=d["workdir"])
    p.add_argument("--checkpoint-every", type=int, default=d["checkpoint_every"])
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--log-every", type=int, default=d["log_every"], help="steps between metrics.jsonl step records")
    p.add_argument("--inject-nan-at", type=int, help=argparse.SUPPRESS)  # test hook
    p.add_argument("--debug-step-delay", type=float, help=argparse.SUPPRESS)  # test hook
    p.set_defaults(func=_run)


def _run(args) -> int:
    space, genotype = load_genotype(args.genotype)
    if args.steps_per_epoch is not None and args.steps_per_epoch < 0:
        raise ValueError(f"--steps-per-epoch must be >= 0, got {args.steps_per_epoch}")
    config = TrainConfig(
        genotype=space.to_json(genotype), dataset=args.dataset, image_size=args.image_size, epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch or None, batch_size=args.batch_size, width=args.width,
        depth=args.depth, lr=args.lr, weight_decay=args.weight_decay, auxiliary_weight=args.auxiliary_weight,
        drop_path=args.drop_path, cutout=args.cutout, augment=not args.no_augment, eval_examples=args.eval_examples,
        seed=args.seed, workdir=args.workdir, checkpoint_every=args.checkpoint_every, progress=not args.no_progress,
        inject_nan_at=args.inject_nan_at, debug_step_delay=args.debug_step_delay or 0.0, log_every=args.log_every,
        conv_impl=args.conv_impl or "auto",
    )
    result = run_job("train", train_and_evaluate, config)
    print(json.dumps({"test_accuracy": round(result.test_accuracy, 4), "test_loss": round(result.test_loss, 4),
                      "test_examples": result.test_examples, "params": result.params, "steps": result.steps,
                      "arch": space.format(genotype), "workdir": str(result.workdir)}))
    return 0
