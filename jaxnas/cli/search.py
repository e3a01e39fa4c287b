"""``jaxnas search``: run (or resume) a differentiable or one-shot architecture search; prints the genotype.

    jaxnas search                                   # small default: NB201 space, DARTS 1st order, embedded data
    jaxnas search --space nb201 --method gdas --epochs 5 --steps-per-epoch 50 --workdir runs/gdas
    jaxnas search --config experiments/configs/nb201_search.py:quick
    jaxnas search --space darts --method darts --optimization bilevel-2nd --dataset cifar10 --epochs 50 \\
        --batch-size 64 --width 16 --depth 8 --workdir runs/darts --devices 8

    jaxnas search --space grow-conv --grow grow-then-prune --epochs 6 --workdir runs/grow   # growth by morphisms
    jaxnas search --grow interleaved --max-nodes 4 --max-width 16 --prune-threshold 0.15  # (--grow: grow-conv)
    jaxnas search --space darts-rnn --steps 200 --workdir runs/rnn     # the DARTS recurrent cell, language modelling
    jaxnas search --space grow-rnn --task forecast --grow interleaved --steps 300 --workdir runs/grow-rnn

The spaces are those of the registry (jaxnas.registry). Started again with the same arguments, a search resumes
from its newest checkpoint in --workdir (a growing search too: the checkpoint records the grown network's shape).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import jax
import numpy as np

from jaxnas import registry, relax
from jaxnas.nn import grow
from jaxnas.cli.jobs import run_job
from jaxnas.platform import settings
from jaxnas.runners.grow import SCHEDULES, GrowConfig, run_growing_search
from jaxnas.runners.lm import LMConfig, run_lm
from jaxnas.runners.recurrent_growth import GrowForecastConfig, GrowLMConfig, run_growing_forecast, run_growing_lm
from jaxnas.runners.progressive import run_adaptive, run_progressive
from jaxnas.runners.search import METHODS, OPTIMIZATIONS, SearchConfig, run_search
from jaxnas.search.steps import OptimConfig


def one_line_errors(parser: argparse.ArgumentParser, prog: str) -> argparse.ArgumentParser:
    """Make argparse report a bad value as one line (no usage block) with exit code 2."""

    def error(message):
        print(f"{prog}: error: {message} (see {prog} --help)", file=sys.stderr)
        sys.exit(2)

    parser.error = error
    return parser


def load_config_file(spec: str):
    """``path.py`` or ``path.py:variant``: the file's ``get_config()`` (or ``get_config(variant)``)."""
    path, _, variant = spec.partition(":")
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"config file not found: {file}")
    module_spec = importlib.util.spec_from_file_location(f"_jaxnas_config_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:
        raise ValueError(f"config file {file} failed to load: {type(e).__name__}: {e}") from None
    if not hasattr(module, "get_config"):
        raise ValueError(f"config file {file} has no get_config() function")
    return module.get_config(variant) if variant else module.get_config()


_FLAGS = {  # argparse dest -> SearchConfig field
    "space": "space", "optimization": "optimization", "dataset": "dataset",
    "image_size": "image_size", "epochs": "epochs", "steps_per_epoch": "steps_per_epoch",
    "batch_size": "batch_size", "width": "width", "depth": "depth", "seed": "seed", "workdir": "workdir",
    "devices": "devices", "warmup_epochs": "warmup_epochs", "checkpoint_every": "checkpoint_every",
    "log_every": "log_every", "temperature": "temperature", "hessian": "hessian",
    "spos_candidates": "spos_candidates", "conv_impl": "conv_impl", "inject_nan_at": "inject_nan_at",
    "debug_step_delay": "debug_step_delay", "zero_one_weight": "zero_one_weight",
    "dirichlet_kl_weight": "dirichlet_kl_weight", "perturbation": "perturbation",
    "perturbation_epsilon": "perturbation_epsilon", "perturbation_steps": "perturbation_steps",
    "es_factor": "es_factor", "es_start_epoch": "es_start_epoch", "partial_channels": "partial_channels",
    "perturbation_samples": "perturbation_samples", "perturbation_bandwidth": "perturbation_bandwidth",
    "proximity_weight": "proximity_weight", "admm_weight": "admm_weight", "admm_every": "admm_every",
    "arch_schedule": "arch_schedule", "schedule_frequency": "schedule_frequency", "prune_fraction": "prune_fraction",
    "stage_depths": "stage_depths", "stage_ops": "stage_ops", "stage_skip_dropout": "stage_skip_dropout",
    "max_skips": "max_skips", "progressive_ops": "progressive_ops", "progressive_partial": "progressive_partial",
    "relaxation": "relaxation", "engine_cells": "engine_cells", "derivation": "derivation",
    "topology_sizes": "topology_sizes", "topology_weight": "topology_weight",
}
_OPTIM_FLAGS = {"w_lr": "w_lr", "a_lr": "a_lr", "weight_decay": "w_weight_decay"}


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _optional_int(text: str):
    if text.lower() == "none":
        return "none"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or none, got {text!r}") from None


def config_from_args(args) -> SearchConfig:
    base = SearchConfig() if args.config is None else load_config_file(args.config)
    if isinstance(base, dict):
        base = SearchConfig.from_json(base)
    if not isinstance(base, SearchConfig):
        raise ValueError(f"get_config() of {args.config} must return a SearchConfig or a dict, "
                         f"got {type(base).__name__}")
    changes = {}
    if args.method is not None:  # a method's fields first, so that flags given beside it override them
        changes.update(METHODS.get(args.method, {"relaxation": args.method}))
    changes.update({field: getattr(args, dest) for dest, field in _FLAGS.items() if getattr(args, dest) is not None})
    if changes.get("max_skips") == "none":
        changes["max_skips"] = None
    optim = {field: getattr(args, dest) for dest, field in _OPTIM_FLAGS.items() if getattr(args, dest) is not None}
    if optim:
        changes["optim"] = dataclasses.replace(base.optim, **optim)
    if args.no_progress:
        changes["progress"] = False
    if args.tensorboard:
        changes["tensorboard"] = True
    for flag in ("track_eigenvalue", "early_stop", "edge_normalization"):
        if getattr(args, flag):
            changes[flag] = True
    if args.no_feature_sharing:
        changes["feature_sharing"] = False
    if args.no_augment:
        changes["augment"] = False
    return dataclasses.replace(base, **changes)


def register(sub) -> None:
    p = sub.add_parser("search", help="run or resume an architecture search and print the genotype",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    one_line_errors(p, "jaxnas search")
    d = SearchConfig()
    p.add_argument("--config", help="a python config file with get_config() (path.py or path.py:variant); "
                   "flags given here override its values")
    p.add_argument("--space", choices=searchable_spaces(), help=f"search space (default {d.space})")
    p.add_argument("--method", choices=tuple(METHODS) + tuple(sorted(relax.RELAXATIONS)),
                   help=f"darts (softmax), snas (gumbel), gdas (hard gumbel), asap (annealed softmax, pruning), spos "
                        f"(uniform single path), fairdarts (sigmoid + zero-one loss), drnas (Dirichlet; drnas-progressive: its staged "
                        f"schedule), sdarts-rs / "
                        f"sdarts-adv (perturbed weight step), msdarts (mean-shifted weight step), rdarts (eigenvalue "
                        f"early stop; rdarts-ada: its adaptive regularization), pcdarts (partial channels, edge "
                        f"normalization), dartsprime (proximity term, "
                        f"dynamic arch-step schedule), pdarts (progressive stages), or "
                        f"a relaxation's name (e.g. clipped: DARTS-PRIME's activation) "
                        f"(default {d.relaxation}); docs/methods.md")
    p.add_argument("--optimization", choices=tuple(OPTIMIZATIONS), help=f"default {d.optimization}; spos ignores it")
    p.add_argument("--dataset", help=f"data set name or path (default {d.dataset}: the Fashion-MNIST subset "
                   "shipped with jaxnas)")
    p.add_argument("--image-size", type=int, help=f"pad or centre-crop images to this size (default {d.image_size})")
    p.add_argument("--epochs", type=int, help=f"default {d.epochs}")
    p.add_argument("--steps-per-epoch", type=int, help=f"cap on steps per epoch (default {d.steps_per_epoch})")
    p.add_argument("--batch-size", type=int, help=f"default {d.batch_size}")
    p.add_argument("--width", "--channels", dest="width", type=int,
                   help="supernet width C (default: the space's, 8 for nb201 and darts)")
    p.add_argument("--depth", "--layers", "--cells", dest="depth", type=int,
                   help="supernet depth: NB201 cells per stage N, DARTS cells (default: the space's, 1 and 5)")
    p.add_argument("--seed", type=int, help=f"default {d.seed}")
    p.add_argument("--workdir", help=f"outputs, logs and checkpoints (default {d.workdir})")
    p.add_argument("--devices", type=int, help="data parallel over this many devices (default 1)")
    p.add_argument("--warmup-epochs", type=int, help="epochs training only the weights first (default 0)")
    p.add_argument("--checkpoint-every", type=int, help=f"steps between checkpoints (default {d.checkpoint_every})")
    p.add_argument("--log-every", type=int, help=f"steps between metrics.jsonl step records (default {d.log_every})")
    p.add_argument("--temperature", help="auto, constant:T, linear:T0,T1 or exp:T0,RATE,TMIN (default auto)")
    p.add_argument("--hessian", choices=("exact", "finite_difference"),
                   help="bilevel-2nd: default exact (on a CPU with 24 GB, compiling exact for the 8-cell DARTS "
                        "network runs out of memory: use finite_difference there)")
    p.add_argument("--w-lr", type=float, help=f"weight learning rate (default {OptimConfig().w_lr})")
    p.add_argument("--a-lr", type=float, help=f"architecture learning rate (default {OptimConfig().a_lr})")
    p.add_argument("--weight-decay", type=float, help=f"weight decay (default {OptimConfig().w_weight_decay})")
    p.add_argument("--spos-candidates", type=int, help="spos: genotypes scored after training (default 16)")
    p.add_argument("--conv-impl", choices=settings.CONV_IMPLS, help="convolution implementation (default auto: "
                   "$JAXNAS_CONV_IMPL, else the backend's per-kind choice; docs/cpu-performance.md)")
    m = p.add_argument_group("method pieces (set by --method; give them to override or combine)")
    m.add_argument("--zero-one-weight", type=float, help="FairDARTS zero-one loss weight (fairdarts: 10)")
    m.add_argument("--dirichlet-kl-weight", type=float, help="DrNAS KL anchor regularizer weight (drnas: 0, its "
                   "default anchor being the arch weight decay)")
    m.add_argument("--perturbation", choices=("none", "random", "adversarial", "mean-shift"),
                   help="weight-step perturbation (sdarts-rs: random, sdarts-adv: adversarial, msdarts: mean-shift)")
    m.add_argument("--perturbation-epsilon", type=float, help="SDARTS largest radius, reached in the last epoch "
                   "(default 0.3)")
    m.add_argument("--perturbation-steps", type=int, help="SDARTS-ADV ascent steps (default 7), MS-DARTS "
                   "mean-shift iterations (msdarts: 2)")
    m.add_argument("--perturbation-samples", type=int, help="MS-DARTS points per mean-shift iteration (default 3)")
    m.add_argument("--perturbation-bandwidth", type=float, help="MS-DARTS kernel bandwidth (default 1)")
    m.add_argument("--partial-channels", type=int, help="PC-DARTS: 1/K of the channels through each mixed op "
                   "(pcdarts: 4; 1: the plain supernet)")
    m.add_argument("--edge-normalization", action="store_true", help="PC-DARTS edge normalization (pcdarts: on)")
    m.add_argument("--track-eigenvalue", action="store_true", help="RobustDARTS: the val-loss Hessian's dominant "
                   "eigenvalue in the architecture after every epoch (rdarts: on)")
    m.add_argument("--early-stop", action="store_true", help="RobustDARTS early stop on the eigenvalue's growth "
                   "(rdarts: on; needs --track-eigenvalue)")
    m.add_argument("--es-factor", type=float, help="RobustDARTS early-stop factor (default 1.3)")
    m.add_argument("--es-start-epoch", type=int, help="RobustDARTS: no early stop before this epoch (default 10)")
    m.add_argument("--proximity-weight", type=float, help="DARTS-PRIME proximity term towards the derived cell "
                   "(dartsprime: 1e-3)")
    m.add_argument("--admm-weight", type=float, help="DARTS-PRIME ADMM term towards a discrete cell (0: off; the "
                   "authors' 1e-3)")
    m.add_argument("--admm-every", type=int, help="DARTS-PRIME: arch steps between ADMM's updates (default 10)")
    m.add_argument("--arch-schedule", choices=("every-step", "dynamic"), help="architecture step with every weight "
                   "step, or DARTS-PRIME's dynamic schedule from the weight gradient (dartsprime: dynamic)")
    m.add_argument("--schedule-frequency", type=float, help="DARTS-PRIME: weight steps per arch step the dynamic "
                   "schedule aims at (default 10)")
    m.add_argument("--stage-depths", type=_ints, help="P-DARTS: supernet depth of every stage, e.g. 5,11,17 "
                   "(pdarts: 5,11,17)")
    m.add_argument("--stage-ops", type=_ints, help="P-DARTS: ops every edge keeps after each stage (pdarts: 5,3,1)")
    m.add_argument("--stage-skip-dropout", type=_floats, help="P-DARTS: skip-connect dropout of every stage "
                   "(pdarts: 0.1,0.4,0.7)")
    m.add_argument("--max-skips", type=_optional_int, help="P-DARTS: skip connections allowed in the final normal "
                   "cell, or none (pdarts: 2)")
    m.add_argument("--progressive-ops", type=_ints, help="DrNAS progressive: ops every edge keeps at the start of each "
                   "later stage (drnas-progressive: 3)")
    m.add_argument("--progressive-partial", type=_ints, help="DrNAS progressive: partial-channel parameter of each "
                   "later stage (drnas-progressive: 2, after --partial-channels 4)")
    m.add_argument("--relaxation", choices=tuple(sorted(relax.RELAXATIONS)) + tuple(sorted(relax.ALIASES)),
                   help="the relaxation, overriding the method's: e.g. --method toponas --relaxation gdas")
    m.add_argument("--engine-cells", type=_ints, help="EnTranNAS: indices of the Engine-cells, e.g. 5,7 (default: "
                   "the last cell of each type on DARTS, the last cell on NB201)")
    m.add_argument("--no-feature-sharing", action="store_true", help="EnTranNAS: one op per edge instead of one per "
                   "input node")
    m.add_argument("--derivation", choices=("top-k", "dst", "topology"), help="how the genotype is derived: the "
                   "space's rule, EnTranNAS-DST's non-zero connections, TopoNAS's topology (set by the methods)")
    m.add_argument("--topology-sizes", type=_ints, help="TopoNAS: predecessors a node's candidate topologies keep, "
                   "e.g. 2 (default) or 1,2,3")
    m.add_argument("--topology-weight", type=float, help="TopoNAS: passive-aggressive term's weight (toponas: 0.1)")
    m.add_argument("--prune-fraction", type=float, help="ASAP: after every epoch prune ops whose weight is below "
                   "this fraction of 1/ops (asap: 0.4)")
    p.add_argument("--no-augment", action="store_true", help="no crop/flip augmentation")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard event files to "
                   "WORKDIR/tensorboard (image and growing conv searches; pip install 'jaxnas[tensorboard]')")
    g = p.add_argument_group("growing search (--grow): a GrowConvNet that grows by function-preserving morphisms; "
                             "uses --dataset --image-size --epochs --steps-per-epoch --batch-size --width "
                             "(starting width) --depth --optimization --seed --workdir --checkpoint-every --log-every")
    g.add_argument("--grow", choices=SCHEDULES, help="grow-then-prune or interleaved (see jaxnas.runners.grow)")
    gd = GrowConfig()
    g.add_argument("--nodes", type=int, help=f"starting nodes per cell (default {gd.nodes})")
    g.add_argument("--max-nodes", type=int, help=f"nodes per cell where growth stops (default {gd.max_nodes})")
    g.add_argument("--max-width", type=int, help=f"width where growth stops (default {gd.max_width})")
    g.add_argument("--width-step", type=int, help=f"channels added per growth (default {gd.width_step})")
    g.add_argument("--grow-epochs", type=int, help=f"grow-then-prune: epochs ending with growth (default "
                   f"{gd.grow_epochs})")
    g.add_argument("--prune-threshold", type=float, help=f"prune ops below this softmax weight (default "
                   f"{gd.prune_threshold})")
    s = p.add_argument_group("sequence search (--space darts-rnn): the recurrent cell searched on word-level "
                             "language modelling (PTB format); uses --method --optimization --seed --workdir "
                             "--log-every --a-lr --width (hidden units)")
    s.add_argument("--steps", type=int, help="training steps (default 1000)")
    s.add_argument("--data-dir", help="a folder with train.txt, valid.txt, test.txt (default: the shipped PTB "
                   "valid/test files)")
    s.add_argument("--bptt", type=int, help="sequence length (default 35)")
    s.add_argument("--task", choices=("lm", "forecast"), help="grow-rnn: language modelling (default) or "
                   "forecasting (--dataset: exchange_rate, ETTh1 or a CSV; --horizon)")
    s.add_argument("--horizon", type=int, help="grow-rnn forecasting: steps ahead (default 24)")
    s.add_argument("--transform-every", type=int, help="grow-rnn: steps between transforms (default 100)")
    m = p.add_argument_group("multi-host image search: run the same command in every process; the batch is split "
                             "over all devices of all processes, process 0 writes the files (docs/multi-host.md)")
    m.add_argument("--distributed", action="store_true",
                   help="jax.distributed.initialize() with no arguments (TPU pods, Slurm, ... are detected)")
    m.add_argument("--coordinator", help="HOST:PORT of process 0 (with --num-processes and --process-id)")
    m.add_argument("--num-processes", type=int, help="how many processes take part")
    m.add_argument("--process-id", type=int, help="this process's index, 0 .. num-processes - 1")
    p.add_argument("--inject-nan-at", type=int, help=argparse.SUPPRESS)  # test hook
    p.add_argument("--debug-step-delay", type=float, help=argparse.SUPPRESS)  # test hook
    p.set_defaults(func=_run)


_GROW_FLAGS = {  # argparse dest -> GrowConfig field
    "dataset": "dataset", "image_size": "image_size", "epochs": "epochs", "steps_per_epoch": "steps_per_epoch",
    "batch_size": "batch_size", "width": "width", "depth": "depth", "optimization": "optimization",
    "seed": "seed", "workdir": "workdir", "checkpoint_every": "checkpoint_every", "log_every": "log_every",
    "conv_impl": "conv_impl", "debug_step_delay": "debug_step_delay", "nodes": "nodes", "max_nodes": "max_nodes",
    "max_width": "max_width", "width_step": "width_step", "grow_epochs": "grow_epochs",
    "prune_threshold": "prune_threshold",
}
_NOT_FOR_GROW = ("distributed", "coordinator", "num_processes", "process_id", "config", "method", "steps", "data_dir", "bptt", "task", "horizon", "transform_every", "devices",
                 "warmup_epochs", "temperature", "hessian", "spos_candidates", "inject_nan_at", "w_lr", "a_lr",
                 "weight_decay", "zero_one_weight", "dirichlet_kl_weight", "perturbation", "perturbation_epsilon",
                 "perturbation_steps", "track_eigenvalue", "early_stop", "es_factor", "es_start_epoch",
                 "partial_channels", "edge_normalization", "perturbation_samples", "perturbation_bandwidth",
                 "proximity_weight", "admm_weight", "admm_every", "arch_schedule", "schedule_frequency",
                 "prune_fraction", "stage_depths", "stage_ops", "stage_skip_dropout", "max_skips", "progressive_ops",
                 "progressive_partial", "relaxation", "engine_cells", "no_feature_sharing", "derivation",
                 "topology_sizes", "topology_weight")


def grow_config_from_args(args) -> GrowConfig:
    unused = [f"--{d.replace('_', '-')}" for d in _NOT_FOR_GROW if getattr(args, d, None) not in (None, False)]
    if unused:
        raise ValueError(f"{', '.join(unused)} do(es) not apply to a growing search (--grow)")
    changes = {field: getattr(args, dest) for dest, field in _GROW_FLAGS.items() if getattr(args, dest) is not None}
    changes["schedule"] = args.grow or GrowConfig().schedule
    if args.no_progress:
        changes["progress"] = False
    if args.tensorboard:
        changes["tensorboard"] = True
    for flag in ("track_eigenvalue", "early_stop", "edge_normalization"):
        if getattr(args, flag):
            changes[flag] = True
    if args.no_augment:
        changes["augment"] = False
    return GrowConfig(**changes)


def _run_grow(args) -> int:
    config = grow_config_from_args(args)
    result = run_job("search", run_growing_search, config)
    m = result.metrics
    print(f"grown supernet ({config.schedule}, {result.steps} steps, {result.wall_time:.1f} s): "
          f"{grow.describe(result.spec)}")
    print(f"derived: {result.describe}")
    summary = ", ".join(f"{k} {m[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in m)
    if summary:
        print(f"last epoch: {summary}")
    print(f"written: {result.workdir / 'genotype.json'}")
    return 0


def searchable_spaces() -> tuple[str, ...]:
    return tuple(sorted(registry.space_names()))


_SEQUENCE_FLAGS = {"steps": "steps", "data_dir": "data_dir", "bptt": "bptt", "width": "hidden", "seed": "seed",
                   "workdir": "workdir", "log_every": "log_every", "checkpoint_every": "checkpoint_every",
                   "optimization": "optimization", "method": "relaxation", "a_lr": "a_lr",
                   "debug_step_delay": "debug_step_delay"}


def sequence_config_from_args(args, entry):
    """The language-modelling search of a ``sequence`` space (:class:`jaxnas.runners.lm.LMConfig`) and the space."""
    flags = {dest for dest in vars(args) if getattr(args, dest) not in (None, False)}
    unused = sorted(flags - set(_SEQUENCE_FLAGS) - {"space", "func", "command", "no_progress"})
    if unused:
        raise ValueError(f"{', '.join('--' + u.replace('_', '-') for u in unused)} do(es) not apply to a "
                         f"{entry.name} search")
    changes = {field: getattr(args, dest) for dest, field in _SEQUENCE_FLAGS.items() if getattr(args, dest) is not None}
    changes.setdefault("workdir", SearchConfig().workdir)
    changes.setdefault("hidden", entry.quick_supernet.width)
    changes["progress"] = not args.no_progress
    space = entry.space()
    return LMConfig(cell=lambda hidden: entry.supernet(space, hidden), arch=space.init_arch,
                    embed_dim=changes["hidden"], **changes), space


def _run_sequence(args, entry) -> int:
    config, space = sequence_config_from_args(args, entry)
    result = run_job("search", run_lm, config)
    genotype = space.derive({k: np.asarray(v) for k, v in result["arch"].items()})
    out = Path(config.workdir) / "genotype.json"
    out.write_text(json.dumps({"space": space.name, "genotype": space.to_json(genotype), "arch": space.format(genotype),
                               "valid": result["valid"], "test": result["test"], "steps": result["steps"]}, indent=1))
    print(f"genotype ({space.name}, {config.relaxation}, {config.steps} steps, {result['seconds']:.1f} s): "
          f"{space.format(genotype)}")
    print(f"valid ppl {result['valid']['ppl']:.2f}, test ppl {result['test']['ppl']:.2f}")
    print(f"written: {out}")
    return 0


_SEQUENCE_GROWTH_FLAGS = {  # argparse dest -> GrowthConfig field (both tasks)
    "steps": "steps", "width": "hidden", "nodes": "nodes", "max_nodes": "max_nodes", "max_width": "max_hidden",
    "width_step": "hidden_step", "prune_threshold": "prune_threshold", "transform_every": "transform_every",
    "seed": "seed", "workdir": "workdir", "log_every": "log_every", "checkpoint_every": "checkpoint_every",
    "batch_size": "batch_size", "a_lr": "a_lr", "debug_step_delay": "debug_step_delay",
}
_FORECAST_FLAGS = {"dataset": "dataset", "horizon": "horizon"}
_LM_FLAGS = {"data_dir": "data_dir", "bptt": "bptt"}


def sequence_growth_config_from_args(args):
    """The growing recurrent search (:mod:`jaxnas.runners.recurrent_growth`) of the flags: forecasting or LM."""
    forecast = args.task == "forecast"
    own = {**_SEQUENCE_GROWTH_FLAGS, **(_FORECAST_FLAGS if forecast else _LM_FLAGS)}
    flags = {dest for dest in vars(args) if getattr(args, dest) not in (None, False)}
    unused = sorted(flags - set(own) - {"space", "func", "command", "no_progress", "grow", "task", "optimization"})
    if unused:
        raise ValueError(f"{', '.join('--' + u.replace('_', '-') for u in unused)} do(es) not apply to a grow-rnn "
                         f"{'forecasting' if forecast else 'language-modelling'} search")
    changes = {field: getattr(args, dest) for dest, field in own.items() if getattr(args, dest) is not None}
    changes.setdefault("workdir", SearchConfig().workdir)
    if args.grow is not None:
        changes["schedule"] = args.grow
    if args.optimization is not None:
        changes["optimization"] = args.optimization  # the config names what it accepts
    changes["progress"] = not args.no_progress
    return (GrowForecastConfig if forecast else GrowLMConfig)(**changes)


def _run_sequence_growth(args, entry) -> int:
    config = sequence_growth_config_from_args(args)
    run = run_growing_forecast if isinstance(config, GrowForecastConfig) else run_growing_lm
    result = run_job("search", run, config)
    out = Path(config.workdir) / "genotype.json"
    out.write_text(json.dumps({"space": entry.name, "derived": result["derived"], "spec": result["spec"],
                               "arch": result["arch"], "valid": result["valid"], "test": result["test"],
                               "steps": result["steps"]}, indent=1))
    print(f"grown cell ({config.schedule}, {result['steps']} steps, {result['seconds']:.1f} s): "
          f"{result['describe']['grown']}")
    print(f"derived: {result['describe']['derived']}")
    print(f"valid {json.dumps(result['valid'])}, test {json.dumps(result['test'])}")
    print(f"written: {out}")
    return 0


def start_distributed(args) -> None:
    """``jax.distributed.initialize`` from the multi-host flags (nothing without them)."""
    explicit = (args.coordinator, args.num_processes, args.process_id)
    if any(v is not None for v in explicit):
        if any(v is None for v in explicit):
            raise ValueError("--coordinator, --num-processes and --process-id go together")
        if not 0 <= args.process_id < args.num_processes:
            raise ValueError(f"--process-id must be in 0..{args.num_processes - 1}, got {args.process_id}")
        jax.distributed.initialize(coordinator_address=args.coordinator, num_processes=args.num_processes,
                                   process_id=args.process_id)
    elif args.distributed:
        jax.distributed.initialize()


def _run(args) -> int:
    task = registry.get_entry(args.space).task if args.space is not None else "image"
    if task == "sequence":
        return _run_sequence(args, registry.get_entry(args.space))
    if task == "sequence-growth":
        return _run_sequence_growth(args, registry.get_entry(args.space))
    if args.grow is not None or task == "image-growth":
        return _run_grow(args)
    config = config_from_args(args)
    start_distributed(args)
    runner = run_progressive if config.stage_depths else run_adaptive if config.adaptive_regularization else run_search
    result = run_job("search", runner, config)
    m = result.metrics
    summary = ", ".join(f"{k} {m[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in m)
    print(f"genotype ({config.space}, {config.relaxation}, {result.steps} steps, {result.wall_time:.1f} s): "
          f"{result.arch_string}")
    if summary:
        print(f"last epoch: {summary}")
    print(f"written: {result.workdir / 'genotype.json'}  (train it: jaxnas train --genotype "
          f"{result.workdir / 'genotype.json'})")
    return 0
