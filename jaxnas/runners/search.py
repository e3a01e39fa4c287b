"""The search loop: data, jitted steps, progress, logs, checkpoints and automatic resumption.

::

    from jaxnas.runners.search import SearchConfig, run_search
    result = run_search(SearchConfig(space="nb201", relaxation="gdas", epochs=3, steps_per_epoch=20, workdir="runs/a"))
    print(result.arch_string)

``run_search`` writes to ``workdir``:

``config.json``        the run's config; a later run in the same workdir must have the same one (or it is refused)
``metrics.jsonl``      one JSON object per logged step (``"kind": "step"``), per epoch (``"kind": "epoch"``, with the
                       derived genotype) and one at the end (``"kind": "final"``)
``genotypes.jsonl``    the genotype derived at the start (``"step": 0``) and after every epoch, with the architecture
                       parameters then (``"arch_params"``; ``jaxnas plot`` draws their trajectories)
``checkpoints/``       orbax checkpoints every ``checkpoint_every`` steps and at the end (the newest two are kept)
``genotype.json``      the final genotype: ``{"space", "genotype", "arch", "relaxation", ...}`` (``jaxnas train`` reads it)
``arch.npz``           the final architecture parameters

Started again with the same config, a run resumes from its newest readable checkpoint and ends bit-identical to an
uninterrupted run (batches are pure functions of (seed, epoch, step), the PRNG key lives in the state and running
epoch sums and log offsets live in the checkpoint). A NaN or infinite loss stops the run with
:class:`SearchDivergedError`; the last good checkpoint is kept.

``--method`` names (:data:`METHODS`) set config fields: darts -> softmax, snas -> gumbel, gdas -> hard gumbel, spos ->
uniform, asap -> annealed softmax with pruning, and the DARTS family's fixes (docs/methods.md). SPOS trains only the
supernet weights (uniform single-path sampling) and then picks the best of ``spos_candidates`` sampled genotypes on
architecture-half batches with the trained supernet (weight sharing). P-DARTS's stages run through
:func:`jaxnas.runners.progressive.run_progressive`, one search of this module per stage.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnas import registry
from jaxnas import relax as relax_lib
from jaxnas.platform import settings
from jaxnas import data
from jaxnas.io.checkpoint import flatten_state, load_arrays, save_arrays, unflatten_state
from jaxnas.runners import loop
from jaxnas.search import curvature, morph, parallel, regularizers
from jaxnas.search.curvature import early_stop_epoch
from jaxnas.search.steps import (
    OPTIMIZATIONS,
    OpDropout,
    OptimConfig,
    SearchState,
    accuracy,
    cross_entropy,
    init_search_state,
    PERTURBATIONS,
    WeightPerturbation,
    make_arch_optimizer,
    make_step,
    make_weight_optimizer,
)
from jaxnas.data import batch_at, steps_per_epoch

# ``--method NAME``: the config fields a method sets (flags given beside it override them). Every method composes
# with every optimization it allows; docs/methods.md lists each one's paper and pieces.
METHODS: dict[str, dict] = {
    "darts": {"relaxation": "darts"},
    "snas": {"relaxation": "snas"},
    "gdas": {"relaxation": "gdas"},
    "spos": {"relaxation": "spos"},
    # FairDARTS: independent sigmoid weights (temperature 1) and the zero-one loss, weight 10 (the paper's w_01)
    "fairdarts": {"relaxation": "sigmoid", "temperature": "constant:1", "zero_one_weight": 10.0},
    # DrNAS: Dirichlet relaxation; its default (L2) anchor regularizer is the arch optimizer's weight decay (1e-3)
    "drnas": {"relaxation": "dirichlet"},
    # SDARTS: the weight step's edge weights perturbed, epsilon 0.03 rising to 0.3 over the epochs (the paper's)
    "sdarts-rs": {"relaxation": "darts", "perturbation": "random"},
    "sdarts-adv": {"relaxation": "darts", "perturbation": "adversarial"},
    # MS-DARTS: the weight step at a mean-shifted point of the edge weights (the authors' code: epsilon 0.025 rising
    # to 0.25, 2 iterations of 3 samples, bandwidth 1)
    "msdarts": {"relaxation": "darts", "perturbation": "mean-shift", "perturbation_epsilon": 0.25,
                "perturbation_steps": 2},
    # PC-DARTS: 1/4 of the channels through each mixed op, and edge normalization
    "pcdarts": {"relaxation": "darts", "partial_channels": 4, "edge_normalization": True},
    # RobustDARTS (DARTS-ES): the val-loss Hessian's dominant eigenvalue after every epoch, and the early stop
    "rdarts": {"relaxation": "darts", "track_eigenvalue": True, "early_stop": True},
    # DARTS-PRIME: the authors' README command (--reg prox --dyno_schedule --schedfreq 10): softmax weights, the
    # proximity term (rho 1e-3) and the dynamic schedule of arch steps; their clipped activation is
    # ``relaxation="clipped"``, their ADMM term ``admm_weight``
    "dartsprime": {"relaxation": "darts", "proximity_weight": 1e-3, "arch_schedule": "dynamic"},
    # P-DARTS: three stages of 5, 11 and 17 cells, keeping 5, 3 and then 1 op per edge, skip-connect dropout 0.1,
    # 0.4, 0.7 (the authors' CIFAR-10 command), at most 2 skips in the final normal cell (jaxnas.runners.progressive)
    "pdarts": {"relaxation": "darts", "stage_depths": (5, 11, 17), "stage_ops": (5, 3, 1),
               "stage_skip_dropout": (0.1, 0.4, 0.7), "max_skips": 2},
    # DrNAS's progressive schedule on NB201 (its 201-space/train_search_progressive.py): partial channels 1/4 with all
    # ops for the first half, then the 3 strongest ops per edge with 1/2 of the channels
    "drnas-progressive": {"relaxation": "dirichlet", "partial_channels": 4, "progressive_ops": (3,),
                          "progressive_partial": (2,)},
    # RobustDARTS's DARTS-ADA: on the early stop, back to the returned epoch with 3x the weight decay, up to 243e-4
    "rdarts-ada": {"relaxation": "darts", "track_eigenvalue": True, "early_stop": True,
                   "adaptive_regularization": True},
    # EnTranNAS: Engine-cells (softmax, differentiable) and Transit-cells (the derived cell only), feature sharing;
    # -dst: node-wise sparsemax weights, every non-zero connection kept (docs/methods.md: what was read)
    "entrannas": {"relaxation": "darts", "transit_cells": True},
    "entrannas-dst": {"relaxation": "darts", "transit_cells": True, "derivation": "dst"},
    # TopoNAS: a distribution over every node's 2-predecessor topologies, learned with the ops (any base
    # relaxation: --relaxation), the passive-aggressive term (weight 0.1: this library's choice), derived by topology
    "toponas": {"relaxation": "darts", "derivation": "topology", "topology_weight": 0.1},
    # ASAP: softmax annealed 1.6 * 0.95^epoch, ops below 0.4 / ops pruned after every epoch (UniNAS's settings;
    # the paper's text was not readable here, docs/methods.md)
    "asap": {"relaxation": "darts", "temperature": "exp:1.6,0.051293,0.01", "prune_fraction": 0.4},
}

ARCH_SCHEDULES = ("every-step", "dynamic")
# how the genotype is read off the architecture: the space's rule (DARTS: top-2 edges per node; NB201: argmax),
# EnTranNAS-DST's non-zero connections, TopoNAS's most probable topology per node
DERIVATIONS = ("top-k", "dst", "topology")
DST_FINAL_TEMPERATURE = 0.05  # EnTranNAS-DST's "auto" temperature falls linearly from 1 to this over the run
PRUNED = relax_lib.PRUNED  # the parameter of a pruned op (ASAP, keep_ops): its weight is exactly 0

# Config fields that do not change what a run computes: they may differ when a run is resumed.
NON_IDENTITY_FIELDS = ("devices", "inject_nan_at")  # beside loop.RUN_FIELDS
# Fields added after runs were written, whose defaults compute what runs without them computed: a saved run that
# lacks one is compared as if it had the default, so a run started before they existed resumes.
OPTIONAL_FIELDS = ("zero_one_weight", "dirichlet_kl_weight", "perturbation", "perturbation_epsilon",
                   "perturbation_steps", "partial_channels", "edge_normalization", "track_eigenvalue",
                   "eigen_iterations", "early_stop", "es_window", "es_delta", "es_factor", "es_start_epoch",
                   "proximity_weight", "admm_weight", "admm_every", "arch_schedule", "schedule_frequency",
                   "schedule_multiplier", "schedule_threshold", "prune_fraction", "perturbation_samples",
                   "perturbation_bandwidth", "keep_ops", "skip_dropout", "stage_depths", "stage_ops",
                   "stage_skip_dropout", "max_skips", "progressive_ops", "progressive_partial",
                   "adaptive_regularization", "reg_factor", "max_weight_decay", "keep_epoch_states", "start_from",
                   "transit_cells", "engine_cells", "feature_sharing", "derivation", "topology_sizes",
                   "topology_weight")
# relaxations whose weight of an op with parameter PRUNED is exactly 0 (spos samples ops uniformly): keep_ops and
# P-DARTS need one of them
MASKABLE = ("softmax", "gumbel", "hard_gumbel", "sigmoid", "argmax", "clipped", "dirichlet")


# ----------------------------------------------------------------------------------------------------------------
# config


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Everything a search run depends on. Defaults: the small default search of ``jaxnas search`` (NB201 space,
    C=8, one cell per stage, DARTS first order, embedded Fashion-MNIST padded to 32x32, 3 epochs of 25 steps).

    Attributes:
      space: a registered image space (:func:`jaxnas.registry.space_names`: ``nb201``, ``darts``, ...).
      relaxation: ``darts``, ``snas``, ``gdas``, ``asap`` or ``spos`` (the command line's ``--method``; see the
        module docstring), or a relaxation's own name (``softmax``, ``gumbel``, ...; :mod:`jaxnas.relax`).
      optimization: ``single-level`` (weights and architecture from one loss on weights-half batches),
        ``bilevel-1st`` or ``bilevel-2nd`` (architecture on arch-half batches); ignored by spos (weights only).
      dataset: a :func:`jaxnas.data.load_dataset` name (``embedded``, ``cifar10``, a path, ...).
      image_size: images are zero-padded (or centre-cropped) to this size.
      epochs, steps_per_epoch: epochs over the weights half; ``steps_per_epoch`` caps the steps of an epoch.
      batch_size: per step (global over the devices); the architecture step draws an equal batch from the arch half.
      width, depth: the supernet's width C and depth (NB201: cells per stage N; DARTS: cells); None: the space's
        ``quick_supernet`` sizes in the registry (:meth:`sizes`).
      seed: everything random (split, arch init, weights init, batches, sampling) derives from it.
      warmup_epochs: epochs at the start in which only the weights are trained (arch untouched).
      temperature: ``auto`` (the relaxation's usual schedule), ``constant:T``, ``linear:T0,T1`` (over the run) or
        ``exp:T0,RATE,TMIN`` (per epoch).
      hessian: second order only: ``exact`` or ``finite_difference``.
      optim: weight / architecture optimizer settings (:class:`jaxnas.search.OptimConfig`).
      spos_candidates: spos only: genotypes sampled and scored with the trained supernet at the end.
      zero_one_weight: FairDARTS's zero-one loss (:func:`jaxnas.search.regularizers.zero_one_loss`) times this is
        added to the architecture objective (0: none; ``--method fairdarts``: 10, the paper's).
      dirichlet_kl_weight: DrNAS's KL anchor regularizer times this is added to the architecture objective (0: none;
        DrNAS's default anchor is the L2 one, i.e. ``optim.a_weight_decay``).
      perturbation: SDARTS: ``none``, ``random`` (SDARTS-RS) or ``adversarial`` (SDARTS-ADV) perturbation of the
        bi-level weight step's edge weights (:class:`jaxnas.search.steps.WeightPerturbation`);
        ``perturbation_epsilon``: its largest radius, reached in the last epoch (the radius rises linearly from 0.03
        at epoch 0, as in SDARTS; default 0.3, the paper's); ``perturbation_steps``: SDARTS-ADV's ascent steps (7).
      perturbation ``mean-shift`` (MS-DARTS): ``perturbation_steps`` mean-shift iterations (``--method msdarts``:
        2) of ``perturbation_samples`` points (3) with a Gaussian kernel of ``perturbation_bandwidth`` (1), the
        radius rising from a tenth of ``perturbation_epsilon`` (msdarts: 0.25) to all of it, as the authors' code.
      partial_channels: PC-DARTS: 1/K of every edge's channels through its mixed op, the rest around it (1: the
        plain supernet; ``--method pcdarts``: 4, the paper's CIFAR setting); the width must divide by it.
      edge_normalization: PC-DARTS: one logit more per edge (``normal_edges`` ...), softmax-normalised over each
        node's incoming edges, scaling the edges in the supernet and their scores in the DARTS derivation.
      track_eigenvalue: RobustDARTS: after every epoch, the largest eigenvalue of the Hessian of the validation
        loss in the architecture parameters (power iteration over exact Hessian-vector products,
        ``eigen_iterations`` steps, on that epoch's last arch-half batch), as ``eigenvalue`` in the epoch record.
      early_stop: RobustDARTS's DARTS-ES rule (:func:`jaxnas.search.curvature.early_stop_epoch`, the authors'
        defaults ``es_window`` 5, ``es_delta`` 4, ``es_factor`` 1.3, ``es_start_epoch`` 10): the search stops when
        the eigenvalue's local average grows by the factor and returns the architecture of the earlier epoch.
      proximity_weight: DARTS-PRIME's proximity term towards the derived cell
        (:func:`jaxnas.search.regularizers.proximity`, rising with the search's progress; 0: none; ``--method dartsprime``: 1e-3, the authors' rho);
        ``admm_weight``: its ADMM term (:func:`~jaxnas.search.regularizers.admm`; 0: none; the authors' rho 1e-3),
        ``admm_every``: architecture updates between ADMM's discrete/dual updates (10).
      arch_schedule: ``every-step`` (an architecture step with every weight step) or ``dynamic`` (DARTS-PRIME's
        informed schedule: an architecture step only when the last weight step's squared gradient norm is below a
        threshold that grows by ``schedule_multiplier`` (1.05) after every step without one and shrinks by
        ``schedule_multiplier ** schedule_frequency`` after one, so about one step in ``schedule_frequency`` (10)
        updates the architecture; the threshold starts at ``schedule_threshold`` (1.0)).
      prune_fraction: ASAP: after every epoch, ops whose relaxed weight (at that step's temperature) is below
        ``prune_fraction / ops`` are pruned for good (their parameter is set to -1e4, so their weight is 0; the
        supernet still computes them); 0: no pruning; ``--method asap``: 0.4.
      keep_ops: the ops each edge may use: ``{arch entry: [[op names of edge 0], [op names of edge 1], ...]}`` (None:
        every op); the others start at the parameter -1e4 (weight exactly 0) and stay there. P-DARTS's stages set it.
      skip_dropout: P-DARTS: the largest rate of its dropout on ``skip_connect`` (0: none): the rate falls linearly
        over the warm-up epochs and then as ``exp(-0.2 (epoch - warmup))``, as the authors' code; each edge's skip
        output is dropped as a whole (drop-path on the op), not elementwise (docs/methods.md says why).
      stage_depths / stage_ops / stage_skip_dropout / max_skips: P-DARTS (``--method pdarts``; run by
        :func:`jaxnas.runners.progressive.run_progressive`): one search of ``epochs`` epochs per stage, at depth
        ``stage_depths[k]`` with ``skip_dropout`` ``stage_skip_dropout[k]``, after which every edge keeps its
        ``stage_ops[k]`` strongest ops (``none`` dropped first after the last stage); the final cell is derived
        from the last stage with at most ``max_skips`` skip connections in the DARTS normal cell (None: no cap).
      progressive_ops / progressive_partial: DrNAS's progressive schedule (``--method drnas-progressive``): the
        epochs split evenly into ``len + 1`` stages; at the start of stage ``j + 1`` every edge keeps its
        ``progressive_ops[j]`` strongest ops and the supernet's ``partial_channels`` becomes
        ``progressive_partial[j]``, the weights and optimizer state carried over with copied channels (DrNAS on
        NB201: 5 -> 3 ops, 1/4 -> 1/2 of the channels, halfway).
      adaptive_regularization: RobustDARTS's DARTS-ADA (``--method rdarts-ada``; run by
        :func:`jaxnas.runners.progressive.run_adaptive`): when the early stop fires, the search goes back to the
        epoch it returned, multiplies the weight decay by ``reg_factor`` (3) and goes on, until the weight decay
        reaches ``max_weight_decay`` (243e-4 = 3e-4 * 3^4), after which it runs to the end (the authors' defaults).
        Each leg is a search of this module in ``WORKDIR/iter<k>``: ``keep_epoch_states`` keeps the full state after
        every epoch (``WORKDIR/epoch_states/<epoch>``: params, statistics, both optimizer states; the disk cost is
        a few checkpoints per epoch), and ``start_from`` (such a saved epoch) starts a search from one, at the step
        after that epoch.
      transit_cells: EnTranNAS (``--method entrannas``): the supernet is :class:`jaxnas.nn.entrannas.EnTranNetwork`
        (DARTS) or the NB201 supernet with Transit-cells: ``engine_cells`` (None: the network's default) are
        differentiable, the others run the derived cell only; ``feature_sharing`` (DARTS only; None: on there): an
        op's output on a node is shared by every node that reads it.
      derivation: ``top-k`` (the space's rule), ``dst`` (EnTranNAS-DST, DARTS: node-wise sparsemax weights, every
        non-zero connection kept, any number per node) or ``topology`` (TopoNAS, DARTS: topological variables per
        node over the sets of ``topology_sizes`` predecessors, relaxed like the ops; ``topology_weight``: the
        passive-aggressive term's weight).
      conv_impl: convolution implementation of the supernet: ``auto`` (the ``conv_impl`` setting, by default the
        backend's per-kind choice, :func:`jaxnas.nn.ops.default_impl`), ``xla`` or ``shift``
        (docs/cpu-performance.md compares them).
      checkpoint_every: steps between checkpoints (and one at the end); keep_checkpoints: how many to keep.
      log_every: steps between ``"step"`` records in metrics.jsonl (epoch records are always written).
      devices: data parallel over this many devices (the batch must divide by it).
      inject_nan_at: test hook: the inputs of this global step are NaN (the run must stop cleanly).
      debug_step_delay: test hook: sleep this long after every step.
      tensorboard: also write the metrics as TensorBoard event files in ``workdir/tensorboard`` (needs the
        ``tensorboard`` extra).
    """

    space: str = "nb201"
    relaxation: str = "darts"
    optimization: str = "bilevel-1st"
    dataset: str = "embedded"
    image_size: int = 32
    epochs: int = 3
    steps_per_epoch: int | None = 25
    batch_size: int = 32
    width: int | None = None
    depth: int | None = None
    seed: int = 0
    workdir: str = "runs/search"
    warmup_epochs: int = 0
    temperature: str = "auto"
    hessian: str = "exact"
    augment: bool = True
    optim: OptimConfig = OptimConfig()
    spos_candidates: int = 16
    zero_one_weight: float = 0.0
    dirichlet_kl_weight: float = 0.0
    perturbation: str = "none"
    perturbation_epsilon: float = 0.3
    perturbation_steps: int = 7
    perturbation_samples: int = 3
    perturbation_bandwidth: float = 1.0
    partial_channels: int = 1
    edge_normalization: bool = False
    track_eigenvalue: bool = False
    eigen_iterations: int = 20
    early_stop: bool = False
    es_window: int = 5
    es_delta: int = 4
    es_factor: float = 1.3
    es_start_epoch: int = 10
    proximity_weight: float = 0.0
    admm_weight: float = 0.0
    admm_every: int = 10
    arch_schedule: str = "every-step"
    schedule_frequency: float = 10.0
    schedule_multiplier: float = 1.05
    schedule_threshold: float = 1.0
    prune_fraction: float = 0.0
    keep_ops: dict | None = None
    skip_dropout: float = 0.0
    stage_depths: tuple = ()
    stage_ops: tuple = ()
    stage_skip_dropout: tuple = ()
    max_skips: int | None = None
    progressive_ops: tuple = ()
    progressive_partial: tuple = ()
    adaptive_regularization: bool = False
    reg_factor: float = 3.0
    max_weight_decay: float = 243e-4
    keep_epoch_states: bool = False
    start_from: str | None = None
    transit_cells: bool = False
    engine_cells: tuple[int, ...] | None = None
    feature_sharing: bool | None = None
    derivation: str = "top-k"
    topology_sizes: tuple[int, ...] = (2,)
    topology_weight: float = 0.0
    conv_impl: str = "auto"
    checkpoint_every: int = 25
    keep_checkpoints: int = 2
    log_every: int = 5
    progress: bool = True
    tensorboard: bool = False
    devices: int = 1
    inject_nan_at: int | None = None
    debug_step_delay: float = 0.0

    def __post_init__(self):
        def choice(name, allowed):
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; allowed: {', '.join(allowed)}")

        choice("space", registry.space_names("image"))
        relax_lib.get_relaxation(self.relaxation)  # an unknown name lists the known ones
        choice("optimization", tuple(OPTIMIZATIONS))
        choice("derivation", DERIVATIONS)
        choice("hessian", ("exact", "finite_difference"))
        choice("conv_impl", settings.CONV_IMPLS)
        for name in ("epochs", "batch_size", "image_size", "checkpoint_every", "keep_checkpoints",
                     "log_every", "devices", "spos_candidates", "perturbation_steps", "partial_channels", "perturbation_samples",
                     "eigen_iterations", "es_window", "es_delta", "admm_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("steps_per_epoch", "width", "depth"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.warmup_epochs, int) or not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"warmup_epochs must be between 0 and epochs={self.epochs}, got {self.warmup_epochs!r}")
        if self.batch_size % self.devices:
            raise ValueError(f"batch_size {self.batch_size} must divide evenly over {self.devices} devices")
        if not isinstance(self.optim, OptimConfig):
            raise ValueError(f"optim must be an OptimConfig, got {type(self.optim).__name__}")
        if not isinstance(self.workdir, str) or not self.workdir:
            raise ValueError(f"workdir must be a non-empty path, got {self.workdir!r}")
        parse_temperature(self.temperature)  # raises on a malformed spec
        for name in ("zero_one_weight", "dirichlet_kl_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if self.dirichlet_kl_weight and self.relaxation_fn.name != "dirichlet":
            raise ValueError(f"dirichlet_kl_weight regularizes a Dirichlet relaxation (drnas), not "
                             f"{self.relaxation!r}")
        choice("perturbation", ("none", *PERTURBATIONS))
        if self.perturbation != "none":
            if self.optimization == "single-level":
                raise ValueError(f"perturbation {self.perturbation!r} (SDARTS) perturbs the weight step of a bi-level "
                                 f"search; single-level optimization has one pass for both (use bilevel-1st or "
                                 f"bilevel-2nd)")
            if self.relaxation_fn.hard or not self.relaxation_fn.differentiable:
                raise ValueError(f"perturbation {self.perturbation!r} (SDARTS) needs soft edge weights; "
                                 f"{self.relaxation!r} is hard")
            if not isinstance(self.perturbation_epsilon, (int, float)) or not 0 < self.perturbation_epsilon <= 1:
                raise ValueError(f"perturbation_epsilon must lie in (0, 1], got {self.perturbation_epsilon!r}")
            if not isinstance(self.perturbation_bandwidth, (int, float)) or not self.perturbation_bandwidth > 0:
                raise ValueError(f"perturbation_bandwidth must be a positive number, got "
                                 f"{self.perturbation_bandwidth!r}")
        if self.edge_normalization and not self.relaxation_fn.differentiable:
            raise ValueError(f"edge_normalization: {self.relaxation} trains no architecture, so no edge weights")
        if self.early_stop and not self.track_eigenvalue:
            raise ValueError("early_stop (RobustDARTS) needs track_eigenvalue: it stops on the eigenvalue's growth")
        if self.track_eigenvalue and not self.relaxation_fn.differentiable:
            raise ValueError(f"track_eigenvalue: {self.relaxation} trains no architecture, its loss has no "
                             f"curvature in it to track")
        if not isinstance(self.es_start_epoch, int) or self.es_start_epoch < 0:
            raise ValueError(f"es_start_epoch must be a non-negative integer, got {self.es_start_epoch!r}")
        if not isinstance(self.es_factor, (int, float)) or not self.es_factor > 0:
            raise ValueError(f"es_factor must be a positive number, got {self.es_factor!r}")
        for name in ("proximity_weight", "admm_weight", "prune_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        relaxation = self.relaxation_fn
        if (self.proximity_weight or self.admm_weight) and (relaxation.stochastic or not relaxation.differentiable):
            raise ValueError(f"proximity_weight / admm_weight (DARTS-PRIME) pull deterministic edge weights towards "
                             f"the derived cell; {self.relaxation!r} samples them (use darts or clipped)")
        space = registry.get_space(self.space)
        if (self.proximity_weight or self.admm_weight) and not hasattr(space, "discrete_weights"):
            raise ValueError(f"proximity_weight / admm_weight need the derived cell as weights; space {self.space!r} "
                             f"has no discrete_weights (nb201 and darts have)")
        if not relaxation.normalized and "scores" not in inspect.signature(space.derive).parameters:
            raise ValueError(f"relaxation {self.relaxation!r} is not normalised per edge, and space {self.space!r}'s "
                             f"derive takes no scores= to rank its weights directly (nb201 and darts do)")
        choice("arch_schedule", ARCH_SCHEDULES)
        if self.arch_schedule == "dynamic" and self.perturbation != "none":
            raise ValueError("arch_schedule 'dynamic' runs plain weight steps between architecture steps; SDARTS's "
                             "perturbation of the weight step does not combine with it")
        if self.arch_schedule == "dynamic" and not relaxation.differentiable:
            raise ValueError(f"arch_schedule 'dynamic' schedules architecture steps; {self.relaxation} has none")
        for name in ("schedule_frequency", "schedule_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not isinstance(self.schedule_multiplier, (int, float)) or not self.schedule_multiplier > 1:
            raise ValueError(f"schedule_multiplier must be a number > 1, got {self.schedule_multiplier!r}")
        if self.prune_fraction:
            if relaxation.name != "softmax":
                raise ValueError(f"prune_fraction (ASAP) prunes softmax weights; {self.relaxation!r} is not softmax "
                                 f"(clipped prunes by itself)")
            if self.prune_fraction >= 1:
                raise ValueError(f"prune_fraction must be below 1 (it is a fraction of 1/ops: at 1 or more an edge "
                                 f"of equal weights would lose every op), got {self.prune_fraction!r}")
        if (self.zero_one_weight or self.dirichlet_kl_weight) and not self.relaxation_fn.differentiable:
            raise ValueError(f"{self.relaxation} trains no architecture: zero_one_weight and dirichlet_kl_weight "
                             f"do not apply")
        self._check_progressive(space, relaxation)

    def _check_progressive(self, space, relaxation):
        """keep_ops, skip_dropout and the P-DARTS stage fields (tuples and nested tuples once checked)."""
        for name in ("stage_depths", "stage_ops", "stage_skip_dropout"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)):
                raise ValueError(f"{name} must be a sequence, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        if (self.keep_ops is not None or self.stage_depths or self.progressive_ops) and relaxation.name not in MASKABLE:
            raise ValueError(f"keep_ops / P-DARTS stages / DrNAS progressive prune ops by a parameter of -1e4, which "
                             f"{self.relaxation!r} does not turn into a zero weight; use one of {', '.join(MASKABLE)}")
        if not isinstance(self.skip_dropout, (int, float)) or isinstance(self.skip_dropout, bool) \
                or not 0 <= self.skip_dropout < 1:
            raise ValueError(f"skip_dropout must lie in [0, 1), got {self.skip_dropout!r}")
        if self.skip_dropout and "skip_connect" not in getattr(space, "primitives", ()):
            raise ValueError(f"skip_dropout: space {self.space!r} has no skip_connect op")
        if self.keep_ops is not None:
            object.__setattr__(self, "keep_ops", check_keep_ops(self.keep_ops, space))
        if self.stage_depths:
            n = len(self.stage_depths)
            if len(self.stage_ops) != n or (self.stage_skip_dropout and len(self.stage_skip_dropout) != n):
                raise ValueError(f"P-DARTS: stage_ops {self.stage_ops} and stage_skip_dropout "
                                 f"{self.stage_skip_dropout} must have one entry per stage of {self.stage_depths}")
            for name in ("stage_depths", "stage_ops"):
                if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in getattr(self, name)):
                    raise ValueError(f"P-DARTS: {name} must be positive integers, got {getattr(self, name)}")
            ops = len(space.primitives)
            if list(self.stage_ops) != sorted(self.stage_ops, reverse=True) or self.stage_ops[0] >= ops:
                raise ValueError(f"P-DARTS: stage_ops {self.stage_ops} must shrink from below the space's {ops} ops")
            if any(not 0 <= float(v) < 1 for v in self.stage_skip_dropout):
                raise ValueError(f"P-DARTS: stage_skip_dropout rates must lie in [0, 1), got {self.stage_skip_dropout}")
            if self.keep_ops is not None or self.skip_dropout:
                raise ValueError("P-DARTS sets keep_ops and skip_dropout per stage; give stage_ops and "
                                 "stage_skip_dropout instead")
        for name in ("progressive_ops", "progressive_partial"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                                           for v in value):
                raise ValueError(f"{name} must be a sequence of positive integers, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        if self.progressive_ops or self.progressive_partial:
            ops = len(space.primitives)
            if len(self.progressive_ops) != len(self.progressive_partial):
                raise ValueError(f"DrNAS progressive: progressive_ops {self.progressive_ops} and progressive_partial "
                                 f"{self.progressive_partial} need one entry per later stage each")
            if list(self.progressive_ops) != sorted(self.progressive_ops, reverse=True) or \
                    self.progressive_ops[0] >= ops:
                raise ValueError(f"DrNAS progressive: progressive_ops {self.progressive_ops} must shrink from below "
                                 f"the space's {ops} ops")
            ks = (self.partial_channels, *self.progressive_partial)
            if any(b >= a for a, b in zip(ks, ks[1:])):
                raise ValueError(f"DrNAS progressive: the partial-channel parameter must fall stage by stage "
                                 f"(wider ops), got {ks}")
            width = self.sizes().width
            if any(width % k for k in ks):
                raise ValueError(f"DrNAS progressive: width {width} must divide by every partial-channel parameter {ks}")
            if self.epochs < len(self.progressive_ops) + 1:
                raise ValueError(f"DrNAS progressive: {len(self.progressive_ops) + 1} stages need at least as many "
                                 f"epochs, got {self.epochs}")
            if self.stage_depths or self.track_eigenvalue:
                raise ValueError("DrNAS progressive does not combine with P-DARTS stages or track_eigenvalue")
        if self.adaptive_regularization:
            if not (self.track_eigenvalue and self.early_stop):
                raise ValueError("adaptive_regularization (DARTS-ADA) acts when RobustDARTS's early stop fires: it "
                                 "needs track_eigenvalue and early_stop")
            if not (isinstance(self.reg_factor, (int, float)) and self.reg_factor > 1):
                raise ValueError(f"reg_factor must be a number > 1, got {self.reg_factor!r}")
            if not (isinstance(self.max_weight_decay, (int, float)) and
                    self.max_weight_decay >= self.optim.w_weight_decay > 0):
                raise ValueError(f"DARTS-ADA raises the weight decay {self.optim.w_weight_decay} up to "
                                 f"max_weight_decay, which must be at least as large, got {self.max_weight_decay!r}")
        if self.start_from is not None and not (Path(self.start_from) / "state.npz").is_file():
            raise ValueError(f"start_from: {self.start_from} holds no saved epoch state (state.npz)")
        if self.max_skips is not None:
            if isinstance(self.max_skips, bool) or not isinstance(self.max_skips, int) or self.max_skips < 0:
                raise ValueError(f"max_skips must be a non-negative integer or None, got {self.max_skips!r}")
            if self.space != "darts" or not self.stage_depths:
                raise ValueError("max_skips caps the skip connections of P-DARTS's final DARTS normal cell: it needs "
                                 "space darts and stage_depths")
        self._check_entrannas_toponas()

    def _check_entrannas_toponas(self):
        if self.engine_cells is not None:
            if not isinstance(self.engine_cells, (tuple, list)) or any(
                    isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in self.engine_cells):
                raise ValueError(f"engine_cells must be a sequence of cell indices, got {self.engine_cells!r}")
            object.__setattr__(self, "engine_cells", tuple(self.engine_cells))
            if not self.transit_cells:
                raise ValueError("engine_cells places EnTranNAS's Engine-cells: it needs transit_cells")
        if not isinstance(self.topology_sizes, (tuple, list)) or not self.topology_sizes or any(
                isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.topology_sizes):
            raise ValueError(f"topology_sizes must be a non-empty sequence of positive integers, got "
                             f"{self.topology_sizes!r}")
        object.__setattr__(self, "topology_sizes", tuple(self.topology_sizes))
        if not isinstance(self.topology_weight, (int, float)) or self.topology_weight < 0:
            raise ValueError(f"topology_weight must be a non-negative number, got {self.topology_weight!r}")
        if self.topology_weight and self.derivation != "topology":
            raise ValueError("topology_weight is TopoNAS's passive-aggressive term: it needs derivation 'topology'")
        if self.feature_sharing not in (None, True, False):
            raise ValueError(f"feature_sharing must be true, false or None, got {self.feature_sharing!r}")
        if self.feature_sharing is not None and not (self.transit_cells and self.space == "darts"):
            raise ValueError("feature_sharing is part of EnTranNAS's DARTS network: it needs transit_cells and space "
                             "darts")
        if self.derivation in ("dst", "topology") and self.space != "darts":
            raise ValueError(f"derivation {self.derivation!r} keeps any number of connections per node: it needs "
                             f"space darts (an NB201 cell has one op per edge and no topology choice)")
        if self.derivation == "dst" and not self.transit_cells:
            raise ValueError("derivation 'dst' is EnTranNAS-DST: it needs transit_cells (--method entrannas-dst)")
        if self.derivation == "dst" and self.relaxation not in ("darts", "softmax"):
            raise ValueError("EnTranNAS-DST brings its own relaxation (node-wise sparsemax): leave relaxation at darts")
        if self.transit_cells:
            if self.relaxation_fn.hard or not self.relaxation_fn.differentiable or self.relaxation_fn.stochastic:
                raise ValueError(f"EnTranNAS's Engine-cells take deterministic soft weights; relaxation "
                                 f"{self.relaxation!r} is not one (use darts)")
            if self.derivation == "topology":
                raise ValueError("EnTranNAS (transit_cells) and TopoNAS (derivation 'topology') do not combine here")
            self._refuse("EnTranNAS (transit_cells)", "partial_channels", "edge_normalization", "perturbation",
                         "stage_depths", "progressive_ops", "keep_ops", "skip_dropout", "prune_fraction")
        if self.derivation == "topology":
            self._refuse("TopoNAS (derivation 'topology')", "edge_normalization", "stage_depths", "progressive_ops",
                         "keep_ops", "skip_dropout", "prune_fraction", "proximity_weight", "admm_weight")

    def _refuse(self, method: str, *fields: str):
        """One error naming every field in ``fields`` that differs from its default."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        clash = [name for name in fields if getattr(self, name) != defaults[name]]
        if clash:
            raise ValueError(f"{method} does not combine with {', '.join(clash)}")

    # -- derived values -----------------------------------------------------------------------------------------
    @property
    def relaxation_fn(self) -> relax_lib.Relaxation:
        return relax_lib.get_relaxation(self.relaxation)

    @property
    def step_mode(self) -> str:
        """The mode of :func:`jaxnas.search.make_step` after warm-up (``weights`` for spos)."""
        return "weights" if not self.relaxation_fn.differentiable else OPTIMIZATIONS[self.optimization]

    def sizes(self) -> registry.Sizes:
        """``width`` and ``depth``, each defaulting to the space's (:attr:`jaxnas.registry.SpaceEntry.quick_supernet`)."""
        return registry.get_entry(self.space).quick_supernet.override(self.width, self.depth)

    # -- JSON ---------------------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "SearchConfig":
        return config_from_json(cls, data, "search")

    def identity(self) -> dict:
        """The fields that define what the run computes (compared when resuming)."""
        return loop.identity_of(self.to_json(), NON_IDENTITY_FIELDS)

    @staticmethod
    def identity_defaults() -> dict:
        """:data:`OPTIONAL_FIELDS` with their defaults: what a run saved before they existed computed."""
        return {f.name: f.default for f in dataclasses.fields(SearchConfig) if f.name in OPTIONAL_FIELDS}

    def replace(self, **changes) -> "SearchConfig":
        return dataclasses.replace(self, **changes)


def config_from_json(cls, data: dict, what: str):
    """A config dataclass with an ``optim`` field from its JSON; unknown fields are an error naming them."""
    data = dict(data)
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what} config fields: {', '.join(unknown)}")
    if isinstance(data.get("optim"), dict):
        data["optim"] = OptimConfig(**data["optim"])
    return cls(**data)


def arch_objective_terms(config: SearchConfig) -> dict:
    """``make_step``'s ``arch_penalty`` / ``arch_regularizer`` of a config (FairDARTS, DrNAS), only where set."""
    terms, penalties = {}, []
    if config.topology_weight:
        w_pa, counts, sizes = float(config.topology_weight), build_space(config).node_counts, config.topology_sizes
        penalties.append(lambda weights: w_pa * regularizers.passive_aggressive(weights, counts, sizes))
    if config.zero_one_weight:
        w01 = float(config.zero_one_weight)
        penalties.append(lambda weights: w01 * regularizers.zero_one_loss(weights))
    if len(penalties) == 1:
        terms["arch_penalty"] = penalties[0]
    elif penalties:
        terms["arch_penalty"] = lambda weights: sum(p(weights) for p in penalties)
    if config.dirichlet_kl_weight:
        scale = float(config.dirichlet_kl_weight)
        terms["arch_regularizer"] = lambda arch: scale * regularizers.dirichlet_kl(arch)
    return terms


def check_keep_ops(keep_ops, space) -> dict:
    """``keep_ops`` checked against the space's architecture entries and ops, as nested tuples of op names."""
    if not isinstance(keep_ops, dict):
        raise ValueError(f"keep_ops must map architecture entries to per-edge op lists, got {keep_ops!r}")
    shapes = {k: tuple(v.shape) for k, v in jax.eval_shape(space.init_arch, jax.random.key(0)).items()}
    out = {}
    for key, edges in keep_ops.items():
        if key not in shapes or len(shapes[key]) != 2:
            raise ValueError(f"keep_ops: {key!r} is not an (edges, ops) entry of space {space.name!r} "
                             f"({', '.join(k for k, s in shapes.items() if len(s) == 2)})")
        if len(edges) != shapes[key][0]:
            raise ValueError(f"keep_ops[{key!r}] lists {len(edges)} edges; the space has {shapes[key][0]}")
        rows = []
        for e, ops in enumerate(edges):
            unknown = [o for o in ops if o not in space.primitives]
            if unknown or not ops:
                raise ValueError(f"keep_ops[{key!r}][{e}] must name at least one of {', '.join(space.primitives)}; "
                                 f"got {list(ops)}")
            rows.append(tuple(sorted(set(ops), key=space.primitives.index)))
        out[key] = tuple(rows)
    return out


def mask_arch(arch, keep_ops, primitives):
    """``arch`` with every op outside ``keep_ops`` set to :data:`PRUNED` (its weight is then exactly 0)."""
    if not keep_ops:
        return arch
    out = dict(arch)
    for key, edges in keep_ops.items():
        kept = np.asarray([[p in ops for p in primitives] for ops in edges])
        out[key] = jnp.where(jnp.asarray(kept), arch[key], jnp.asarray(PRUNED, arch[key].dtype))
    return out


def progressive_boundaries(config: SearchConfig) -> tuple[int, ...]:
    """The epochs at which DrNAS's later stages start: the epochs split evenly over the stages (DrNAS: 2 stages of
    25 (DARTS) or 50 (NB201) epochs)."""
    n = len(config.progressive_ops) + 1
    return tuple(round(config.epochs * j / n) for j in range(1, n)) if n > 1 else ()


def pruned_count(arch) -> int:
    """How many ops of ``arch`` are pruned (:func:`jaxnas.relax.is_pruned`)."""
    return sum(int(np.asarray(relax_lib.is_pruned(np.asarray(a))).sum()) for a in jax.tree_util.tree_leaves(arch))


def keep_strongest(arch, keep: int, space):
    """``(arch, pruned count)``: on every edge of the op entries the ``keep`` largest parameters stay (a pruned op,
    at :data:`PRUNED`, is never among them unless nothing else is left), the others become :data:`PRUNED`
    (DrNAS's ``prune``: the kept values are not reset)."""
    out = dict(arch)
    for key, value in arch.items():
        a = np.asarray(value)
        if a.ndim != 2 or a.shape[-1] != len(space.primitives):
            continue
        order = np.argsort(-a, axis=-1, kind="stable")[:, :keep]
        mask = np.zeros(a.shape, bool)
        np.put_along_axis(mask, order, True, axis=-1)
        out[key] = np.where(mask, a, np.float32(PRUNED)).astype(a.dtype)
    return out, pruned_count(out)


def widen_channels(state, fresh_variables: dict, key: jax.Array):
    """The state on a supernet whose op leaves have more channels (a smaller partial-channel parameter): every axis
    that grows from ``d`` to ``d'`` keeps its ``d`` channels and fills the rest with copies of random ones (one
    random map per size pair, so a conv's output channel and its batch statistics copy the same one), in values and
    optimizer moments alike. Shapes that do not change are copied. (:func:`jaxnas.search.morph.rebuild`.)"""
    maps: dict[tuple[int, int], np.ndarray] = {}

    def mapping(old: int, new: int) -> np.ndarray:
        if (old, new) not in maps:
            extra = np.asarray(jax.random.randint(jax.random.fold_in(key, old * 100003 + new), (new - old,), 0, old))
            maps[(old, new)] = np.concatenate([np.arange(old), extra])
        return maps[(old, new)]

    def grow(kind, path, old, fresh):
        out = jnp.asarray(old)
        for axis in range(out.ndim):
            if out.shape[axis] != fresh.shape[axis]:
                if fresh.shape[axis] < out.shape[axis]:
                    raise ValueError(f"widen_channels: {kind} leaf {'/'.join(path)} shrinks on axis {axis}")
                out = jnp.take(out, jnp.asarray(mapping(out.shape[axis], fresh.shape[axis])), axis=axis)
        return out

    return morph.rebuild(state, fresh_variables, state.arch, morph.Plan(lambda kind, p: p, grow, grow))


def arch_optimizer(config: SearchConfig, space, total_steps: int):
    """The architecture optimizer of a config: DARTS-PRIME's proximity and ADMM terms (where set) chained before
    :func:`jaxnas.search.make_arch_optimizer`'s Adam."""
    base = make_arch_optimizer(config.optim)
    if not (config.proximity_weight or config.admm_weight):
        return base
    relaxation = search_relaxation(config, space)

    def activation(arch):
        return relaxation(arch, None, 1.0)

    parts = []
    if config.proximity_weight:
        parts.append(regularizers.proximity(activation, space.discrete_weights, float(config.proximity_weight),
                                            total_steps))
    if config.admm_weight:
        parts.append(regularizers.admm(activation, space.discrete_weights, float(config.admm_weight),
                                       config.admm_every))
    return optax.chain(*parts, base)


def prune_arch(arch, temperature: float, threshold: float):
    """ASAP's pruning: ``(arch, pruned count)`` with every op whose softmax weight at ``temperature`` is below
    ``threshold / ops`` (or that was pruned before) set to :data:`PRUNED`. An edge's strongest op is never below
    ``1 / ops``, so every edge keeps one."""
    def one(a):
        a = np.asarray(a)
        w = np.asarray(jax.nn.softmax(jnp.asarray(a, jnp.float32) / temperature, axis=-1))
        return np.where((w < threshold / a.shape[-1]) | relax_lib.is_pruned(a), np.float32(PRUNED), a).astype(a.dtype)

    pruned = jax.tree_util.tree_map(one, arch)
    return pruned, pruned_count(pruned)


def skip_dropout(config: SearchConfig, space, steps_per_epoch: int) -> OpDropout | None:
    """P-DARTS's skip-connect dropout of a config (None without ``skip_dropout``): rate ``p (E - e - 1) / E`` in the
    warm-up epochs ``e < W`` and ``p exp(-0.2 (e - W))`` after (the authors' train_search.py), on the op entries."""
    if not config.skip_dropout:
        return None
    p, epochs, warmup = float(config.skip_dropout), config.epochs, config.warmup_epochs

    def rate(step):
        epoch = (jnp.asarray(step, jnp.int32) // steps_per_epoch).astype(jnp.float32)
        return jnp.where(epoch < warmup, p * (epochs - epoch - 1) / epochs, p * jnp.exp(-0.2 * (epoch - warmup)))

    keys = tuple(k for k in jax.eval_shape(space.init_arch, jax.random.key(0)) if k not in space_edge_keys(space))
    return OpDropout(space.primitives.index("skip_connect"), rate, keys)


def space_edge_keys(space) -> tuple[str, ...]:
    return tuple(getattr(space, "edge_keys", ()))


def weight_perturbation(config: SearchConfig, steps_per_epoch: int) -> WeightPerturbation | None:
    """SDARTS's perturbation of a config: radius 0.03 at epoch 0 rising linearly to ``perturbation_epsilon`` at the
    last epoch (the authors' schedule, ``0.03 + (eps - 0.03) * epoch / epochs``; MS-DARTS's starts at ``eps / 10``),
    or None."""
    if config.perturbation == "none":
        return None
    end, epochs = float(config.perturbation_epsilon), config.epochs
    start = end / 10 if config.perturbation == "mean-shift" else 0.03

    def epsilon(step):
        epoch = jnp.asarray(step, jnp.int32) // steps_per_epoch
        return start + (end - start) * epoch.astype(jnp.float32) / epochs

    return WeightPerturbation(config.perturbation, epsilon, config.perturbation_steps, config.perturbation_samples,
                              float(config.perturbation_bandwidth))


def parse_temperature(spec: str):
    """Check a temperature spec; returns ``(kind, numbers)``."""
    if not isinstance(spec, str):
        raise ValueError(f"temperature must be a string spec, got {spec!r}")
    kind, _, rest = spec.partition(":")
    wants = {"auto": 0, "constant": 1, "linear": 2, "exp": 3}
    if kind not in wants:
        raise ValueError(f"unknown temperature schedule {spec!r}; allowed: auto, constant:T, linear:T0,T1, "
                         "exp:T0,RATE,TMIN")
    try:
        numbers = tuple(float(v) for v in rest.split(",")) if rest else ()
    except ValueError:
        raise ValueError(f"malformed temperature {spec!r}: the values must be numbers") from None
    if len(numbers) != wants[kind]:
        raise ValueError(f"malformed temperature {spec!r}: {kind} takes {wants[kind]} number(s)")
    if any(not (math.isfinite(v) and v > 0) for v in numbers[:1] + numbers[1:2] * (kind == "linear")):
        raise ValueError(f"malformed temperature {spec!r}: temperatures must be positive")
    return kind, numbers


def temperature_schedule(config: SearchConfig, steps_per_epoch: int):
    """The schedule ``step -> temperature`` of a config (``auto``: gdas 10 -> 0.1 over the epochs as in GDAS, asap
    the ASAP annealing 1.3 * exp(-0.1 epoch) floored at 0.03, snas 1 -> 0.03 (exponential), others constant 1)."""
    kind, v = parse_temperature(config.temperature)
    total = config.epochs * steps_per_epoch
    if kind == "constant":
        return relax_lib.constant(v[0])
    if kind == "linear":
        return relax_lib.linear(v[0], v[1], total)
    if kind == "exp":
        return relax_lib.exponential(v[0], v[1], v[2], steps_per_unit=steps_per_epoch)
    if config.derivation == "dst":  # EnTranNAS-DST: dense at the start, sparse at the end (this library's choice)
        return relax_lib.linear(1.0, DST_FINAL_TEMPERATURE, total)
    if config.relaxation_fn.name == "hard_gumbel":
        return relax_lib.gdas_temperature(config.epochs, steps_per_epoch)
    if config.relaxation_fn.name == "sigmoid":
        return relax_lib.asap_temperature(steps_per_epoch)
    if config.relaxation_fn.name == "gumbel":
        rate = math.log(1.0 / 0.03) / max(config.epochs, 1)
        return relax_lib.exponential(1.0, rate, 0.03, steps_per_unit=steps_per_epoch)
    return relax_lib.constant(1.0)


# ----------------------------------------------------------------------------------------------------------------
# result


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """What a search produced (also written to the workdir)."""

    genotype: Any
    genotype_json: dict
    arch_string: str
    arch: dict
    metrics: dict
    steps: int
    workdir: Path
    resumed_from: int | None
    wall_time: float


# ----------------------------------------------------------------------------------------------------------------
# pieces


def supernet_options(config: SearchConfig) -> dict:
    """The supernet options a config sets (PC-DARTS's), only where they differ from the plain supernet."""
    options = {}
    if config.partial_channels != 1:
        options["partial_channels"] = config.partial_channels
    if config.edge_normalization:
        options["edge_normalization"] = True
    if config.transit_cells:
        options["transit_cells"] = True
        options["engine_cells"] = config.engine_cells
        if config.space == "darts":
            options["feature_sharing"] = config.feature_sharing is not False
            options["derivation"] = "dst" if config.derivation == "dst" else "top2"
    if config.derivation == "topology":
        options["topology_sizes"] = config.topology_sizes
    return options


def build_space(config: SearchConfig):
    """The config's search space (with PC-DARTS's edge logits when ``edge_normalization``, TopoNAS's topological
    variables when ``derivation`` is ``topology``)."""
    options = {"edge_normalization": True} if config.edge_normalization else {}
    if config.derivation == "topology":
        options.update(topology=True, topology_sizes=config.topology_sizes)
    return registry.get_space(config.space, **options)


def build_supernet(config: SearchConfig, num_classes: int):
    """The config's supernet, built by its space's registry entry."""
    entry = registry.get_entry(config.space)
    return entry.supernet(build_space(config), *config.sizes(), num_classes, config.conv_impl,
                          **supernet_options(config))


def search_relaxation(config: SearchConfig, space) -> relax_lib.Relaxation:
    """The config's relaxation, passing the space's edge-normalization logits through to the supernet
    (EnTranNAS-DST: the node-wise sparsemax of :func:`jaxnas.relax.dst`)."""
    if config.derivation == "dst":
        return relax_lib.dst(space.node_counts, [p != "none" for p in space.primitives])
    return relax_lib.with_passthrough(config.relaxation_fn, getattr(space, "edge_keys", ()))


def fit_images(ds, size: int):
    """Zero-pad (done by the loader) or centre-crop ``ds`` to ``size x size``."""
    h, w, _ = ds.image_shape
    if h <= size and w <= size:
        return ds
    if h < size or w < size:
        raise ValueError(f"cannot fit {h}x{w} images to {size}x{size}")
    top, left = (h - size) // 2, (w - size) // 2
    images = np.ascontiguousarray(ds.images[:, top : top + size, left : left + size])
    images.setflags(write=False)
    return dataclasses.replace(ds, images=images)


def init_state(model, arch, image_shape, key, w_opt, a_opt) -> SearchState:
    """:func:`jaxnas.search.init_search_state` for images of ``image_shape`` (H, W, C)."""
    sample = jax.ShapeDtypeStruct((1, *image_shape), jnp.float32)
    return init_search_state(model, arch, sample, key, w_opt, a_opt)


def load_search_data(config: SearchConfig):
    """``(weights_half, arch_half, num_classes)`` of the config's data set."""
    train = data.load_dataset(config.dataset, "train")
    h, w, _ = train.image_shape
    if config.image_size > max(h, w):
        train = data.load_dataset(config.dataset, "train", image_size=config.image_size)
    train = fit_images(train, config.image_size)
    w_half, a_half = data.split_for_search(train, config.seed)
    return w_half, a_half, train.num_classes


def spos_select(model, state, space, a_half, config: SearchConfig, batches: int = 2):
    """SPOS's second stage, in short: sample ``config.spos_candidates`` genotypes, score each with the trained
    supernet (inherited weights, batch statistics of the batch) on ``batches`` arch-half batches, keep the best.

    Returns ``(genotype, scores)``; deterministic given the seed.
    """
    @jax.jit
    def score(params, batch_stats, weights, x, y):
        variables = {"params": params, "batch_stats": batch_stats}
        logits, _ = model.apply(variables, x, weights, train=True, hard=True, mutable=["batch_stats"])
        return accuracy(logits, y), cross_entropy(logits, y)

    n = min(batches, steps_per_epoch(len(a_half), config.batch_size))
    data = [batch_at(a_half, config.seed, 0, i, config.batch_size, stream=1) for i in range(n)]
    key = jax.random.fold_in(jax.random.key(config.seed), 0x5B05)
    seen, scores = set(), []
    for i in range(config.spos_candidates):
        g = space.sample(jax.random.fold_in(key, i))
        text = space.format(g)
        if text in seen:
            continue
        seen.add(text)
        weights = space.one_hot_weights(g)
        accs, losses = zip(*(score(state.params, state.batch_stats, weights, x, y) for x, y in data))
        scores.append((float(np.mean(accs)), -float(np.mean(losses)), text, g))
    best = max(scores, key=lambda s: (s[0], s[1]))
    return best[3], [{"arch": s[2], "accuracy": s[0], "loss": -s[1]} for s in scores]


# ----------------------------------------------------------------------------------------------------------------
# the task


class ImageSearchTask(loop.Task):
    """A differentiable (or one-shot) search of an image space, as a :class:`jaxnas.runners.loop.Task`."""

    kind = "search"
    logs = ("genotypes",)

    def __init__(self, config: SearchConfig):
        cfg = self.cfg = config
        self.space = build_space(cfg)
        self.w_half, self.a_half, num_classes = load_search_data(cfg)
        spe = min(data.steps_per_epoch(len(self.w_half), cfg.batch_size),
                  data.steps_per_epoch(len(self.a_half), cfg.batch_size))
        if spe < 1:
            raise ValueError(f"data set {cfg.dataset!r} is too small: its search halves ({len(self.w_half)} / "
                             f"{len(self.a_half)} examples) hold no full batch of {cfg.batch_size}")
        if cfg.steps_per_epoch is not None:
            spe = min(spe, cfg.steps_per_epoch)
        self.steps_per_epoch, self.total_steps = spe, cfg.epochs * spe
        self.config, self.identity = cfg.to_json(), cfg.identity()
        self.identity_defaults = SearchConfig.identity_defaults()
        self.advice = f"Lower the learning rate (w_lr={cfg.optim.w_lr}, a_lr={cfg.optim.a_lr}) or check the data"
        self.mode = cfg.step_mode
        self.processes = jax.process_count()
        if self.processes > 1:  # multi-host: every device of every process, each process feeds its rows
            self.mesh = parallel.data_mesh()
            if cfg.batch_size % jax.device_count():
                raise ValueError(f"batch_size {cfg.batch_size} must divide evenly over the {jax.device_count()} "
                                 f"devices of the {self.processes} processes")
        elif cfg.devices > 1:
            if cfg.devices > jax.device_count():
                raise ValueError(f"--devices {cfg.devices}: only {jax.device_count()} device(s) available")
            self.mesh = parallel.data_mesh(jax.devices()[: cfg.devices])
        else:
            self.mesh = None
        self.num_classes = num_classes
        self.stage = 0  # DrNAS's progressive schedule: the stage whose supernet the steps run (meta keeps it)
        self.model = build_supernet(cfg, num_classes)
        self.w_opt = make_weight_optimizer(cfg.optim, self.total_steps)
        self.a_opt = arch_optimizer(cfg, self.space, self.total_steps)
        self.derive_options = {} if cfg.relaxation_fn.normalized else {"scores": "values"}
        if cfg.derivation != "top-k":
            self.derive_options["rule"] = cfg.derivation
        self.common = common = dict(relaxation=search_relaxation(cfg, self.space), w_optimizer=self.w_opt,
                                    temperature=temperature_schedule(cfg, spe), mesh=self.mesh,
                                    report_weight_grad=cfg.arch_schedule == "dynamic",
                                    op_dropout=skip_dropout(cfg, self.space, spe), **arch_objective_terms(cfg))
        self._build_steps()
        if cfg.track_eigenvalue and self.processes > 1:
            raise ValueError("track_eigenvalue (RobustDARTS) runs on one process for now; drop it or run on one host")
        self.curvature = eigenvalue_program(self.model, cfg, spe) if cfg.track_eigenvalue else None
        self.eigenvalues: list[float] = []  # after every epoch (RobustDARTS), kept in the checkpoints' meta
        self.epoch_archs: dict[str, Any] = {}  # the architecture after every epoch, for the early stop's return
        self.stop_epoch: int | None = None
        # DARTS-PRIME's dynamic schedule: the last weight step's squared gradient norm (-1: none yet) and the
        # threshold below which it lets an architecture step run; kept in the checkpoints' meta
        self.schedule = {"grad_sq": -1.0, "threshold": float(cfg.schedule_threshold)}
        self.temperature = common["temperature"]
        self.boundaries = progressive_boundaries(cfg)
        self.start_meta = None
        if cfg.start_from is not None:  # a leg of DARTS-ADA: from a saved epoch of another run, at the next step
            self.start_meta = json.loads((Path(cfg.start_from) / "meta.json").read_text())
            self.first_step = (int(self.start_meta["epoch"]) + 1) * spe
            if self.first_step >= self.total_steps:
                raise ValueError(f"start_from {cfg.start_from}: epoch {self.start_meta['epoch']} is the last epoch "
                                 f"of a {cfg.epochs}-epoch search; nothing is left to run")

    def _use_stage(self, stage: int):
        """Build the supernet and steps of a progressive stage (DrNAS): its partial-channel parameter."""
        cfg = self.cfg
        if stage == self.stage:
            return
        self.stage = stage
        k = cfg.partial_channels if stage == 0 else cfg.progressive_partial[stage - 1]
        self.model = build_supernet(cfg.replace(partial_channels=int(k), progressive_ops=(), progressive_partial=()),
                                    self.num_classes)
        self._build_steps()

    def _build_steps(self):
        """The jitted steps of ``self.model``: the weight-only one, and the search mode's."""
        cfg = self.cfg
        self.steps = {"weights": make_step(self.model, mode="weights", **self.common)}
        if self.mode != "weights":
            self.steps[self.mode] = make_step(self.model, mode=self.mode, a_optimizer=self.a_opt, hessian=cfg.hessian,
                                              weight_perturbation=weight_perturbation(cfg, self.steps_per_epoch),
                                              **self.common)

    def template(self, meta):
        self._use_stage(int(meta.get("stage", 0)))
        return self.init()[0]

    def init(self):
        k_arch, k_init = jax.random.split(jax.random.key(self.cfg.seed))
        arch = search_relaxation(self.cfg, self.space).initial_arch(self.space.init_arch(k_arch))
        arch = mask_arch(arch, self.cfg.keep_ops, self.space.primitives)
        state = init_state(self.model, arch, self.w_half.image_shape, k_init, self.w_opt, self.a_opt)
        if self.start_meta is not None:
            state = self._saved_start(state)
        g_json, g_text = self._genotype(state)
        return state, [("genotypes", {"epoch": None, "step": self.first_step, "genotype": g_json, "arch": g_text,
                                      "arch_params": arch_params_json(state.arch)})]

    def place(self, state):
        return parallel.replicate(state, self.mesh) if self.mesh is not None else jax.device_put(state)

    def _batch(self, half, epoch, i, stream):
        """The global batch, or in a multi-process run this process's rows of it as a global array."""
        cfg = self.cfg
        x, y = data.batch_at(half, cfg.seed, epoch, i, cfg.batch_size, cfg.augment, stream=stream)
        if cfg.inject_nan_at is not None and epoch * self.steps_per_epoch + i == cfg.inject_nan_at and stream == 0:
            x = np.full_like(x, np.nan)
        if self.processes == 1:
            return x, y
        rows = slice(jax.process_index() * cfg.batch_size // self.processes,
                     (jax.process_index() + 1) * cfg.batch_size // self.processes)
        return parallel.shard_batch((x[rows], y[rows]), self.mesh)

    def step(self, state, index):
        cfg = self.cfg
        epoch, i = divmod(index, self.steps_per_epoch)
        batch = self._batch(self.w_half, epoch, i, 0)
        searching = epoch >= cfg.warmup_epochs and self.mode != "weights"
        if cfg.arch_schedule == "dynamic":
            return self._scheduled_step(state, batch, epoch, i, searching)
        if not searching:
            return self.steps["weights"](state, batch)
        if self.mode == "single":
            return self.steps[self.mode](state, batch)
        return self.steps[self.mode](state, batch, self._batch(self.a_half, epoch, i, 1))

    def _scheduled_step(self, state, batch, epoch, i, searching):
        """DARTS-PRIME's dynamic schedule: an architecture step (with the weight step) only when the previous weight
        step's squared gradient norm lies in (0, threshold); the threshold shrinks by ``multiplier ** frequency``
        after an architecture step and grows by ``multiplier`` after a step without one (after the authors'
        train_scheduled_hard_statebn.py)."""
        cfg, sched = self.cfg, self.schedule
        arch_step = searching and 0.0 < sched["grad_sq"] < sched["threshold"]
        if arch_step:
            args = (batch,) if self.mode == "single" else (batch, self._batch(self.a_half, epoch, i, 1))
            state, metrics = self.steps[self.mode](state, *args)
            sched["threshold"] *= float(cfg.schedule_multiplier) ** -float(cfg.schedule_frequency)
        else:
            state, metrics = self.steps["weights"](state, batch)
            if searching:
                sched["threshold"] *= float(cfg.schedule_multiplier)
        sched["grad_sq"] = float(np.asarray(metrics["weight_grad_sq"]))
        return state, {**metrics, "arch_update": float(arch_step)}

    def _saved_start(self, state):
        """The state (and the task's RobustDARTS values) of the saved epoch ``start_from``, on ``state``'s tree."""
        arrays = load_arrays(Path(self.cfg.start_from) / "state.npz")
        state = unflatten_state(state, arrays, self.start_meta["leaves"])
        self.eigenvalues = [float(v) for v in self.start_meta["eigenvalues"]]
        self.epoch_archs = dict(self.start_meta["epoch_archs"])
        return state

    def _save_epoch_state(self, state, epoch):
        """Keep the full state after ``epoch`` (DARTS-ADA's rollback points; every epoch: a later leg may go back
        to an epoch of an earlier one, as the authors' per-epoch checkpoints allow)."""
        cfg = self.cfg
        if jax.process_index() != 0:
            return
        root = Path(cfg.workdir) / "epoch_states"
        folder = root / str(epoch)
        folder.mkdir(parents=True, exist_ok=True)
        arrays, leaves = flatten_state(jax.device_get(state))
        save_arrays(folder / "state.npz", arrays)
        loop.write_json(folder / "meta.json", {"epoch": epoch, "leaves": leaves, "eigenvalues": self.eigenvalues,
                                               "epoch_archs": self.epoch_archs})

    def _derive_options(self, step) -> dict:
        """The derivation's options; DST derives at the temperature of ``step`` (what the network computes then)."""
        if self.cfg.derivation != "dst":
            return self.derive_options
        return {**self.derive_options, "temperature": float(np.asarray(self.temperature(step)))}

    def _genotype(self, state):
        g = self.space.derive(loop.host(state.arch), **self._derive_options(int(loop.host(state.step))))
        return self.space.to_json(g), self.space.format(g)

    def meta(self):
        return {"eigenvalues": self.eigenvalues, "epoch_archs": self.epoch_archs, "stop_epoch": self.stop_epoch,
                "schedule": dict(self.schedule), "stage": self.stage}

    def resume(self, state, meta):
        self.eigenvalues = [float(v) for v in meta.get("eigenvalues", [])]
        self.epoch_archs = dict(meta.get("epoch_archs", {}))
        self.stop_epoch = meta.get("stop_epoch")
        self.schedule = {k: float(v) for k, v in meta.get("schedule", self.schedule).items()}
        return state

    def stopped(self):
        return self.stop_epoch is not None

    def epoch_fields(self, state, epoch):
        g_json, g_text = self._genotype(state)
        fields = {"genotype": g_json, "arch": g_text}
        if self.curvature is not None:
            step = (epoch + 1) * self.steps_per_epoch
            val = self._batch(self.a_half, epoch, self.steps_per_epoch - 1, 1)
            value = float(loop.host(self.curvature(state, val, jnp.int32(step))))
            self.eigenvalues.append(value)
            fields["eigenvalue"] = value
        return fields

    def after_step(self, state, done, epoch):
        if epoch is None:
            return state, [], False
        g_json, g_text = self._genotype(state)
        records = [("genotypes", {"epoch": epoch, "step": done, "genotype": g_json, "arch": g_text,
                                  "arch_params": arch_params_json(state.arch)})]
        cfg = self.cfg
        save_now = False
        if epoch + 1 in self.boundaries and epoch < cfg.epochs - 1:  # DrNAS: prune, then widen the partial channels
            state, record = self._next_stage(state, done, epoch)
            records.append(("metrics", record))
            save_now = True
        if cfg.prune_fraction and epoch >= cfg.warmup_epochs:  # ASAP: at the next step's temperature
            temperature = float(np.asarray(self.temperature(done)))
            current = loop.host(state.arch)
            before = pruned_count(current)
            arch, count = prune_arch(current, temperature, float(cfg.prune_fraction))
            if count > before:
                placed = jax.tree_util.tree_map(lambda ref, a: jax.device_put(a, ref.sharding), state.arch, arch)
                state = state.replace(arch=placed)
                records.append(("metrics", {"kind": "prune", "epoch": epoch, "step": done, "pruned": count,
                                            "temperature": round(temperature, 5)}))
        if cfg.early_stop or cfg.keep_epoch_states:
            self.epoch_archs[str(epoch)] = jax.tree_util.tree_map(lambda a: np.asarray(a).tolist(),
                                                                  loop.host(state.arch))
        if cfg.early_stop:
            back = early_stop_epoch(self.eigenvalues, cfg.es_window, cfg.es_delta, cfg.es_factor, cfg.es_start_epoch)
            if back is not None and epoch < cfg.epochs - 1:
                self.stop_epoch = back
                loop.report(f"epoch {epoch}: the eigenvalue grew by more than {cfg.es_factor}x; early stop, "
                            f"returning the architecture of epoch {back}")
                records.append(("metrics", {"kind": "early_stop", "epoch": epoch, "step": done,
                                            "returned_epoch": back}))
        if cfg.keep_epoch_states:
            self._save_epoch_state(state, epoch)
        return state, records, save_now

    def _next_stage(self, state, done, epoch):
        """DrNAS's stage change: every edge keeps its ``progressive_ops`` strongest ops (by parameter; the others
        at :data:`PRUNED`), and the supernet's partial-channel parameter becomes the next stage's: every op leaf
        whose channel count grows copies random channels (values, batch statistics and optimizer moments alike, as
        DrNAS's net2wider and configure_optimizer; the arch and its optimizer state carry over unchanged)."""
        cfg, stage = self.cfg, self.stage
        host = jax.device_get(state)
        arch, kept = keep_strongest(host.arch, int(cfg.progressive_ops[stage]), self.space)
        old_k = cfg.partial_channels if stage == 0 else cfg.progressive_partial[stage - 1]
        self._use_stage(stage + 1)
        fresh = init_state(self.model, arch, self.w_half.image_shape, jax.random.key(0), self.w_opt, self.a_opt)
        key = jax.random.fold_in(jax.random.key(cfg.seed), 0xC4A7 + stage)
        new = widen_channels(host.replace(arch=arch), {"params": fresh.params, "batch_stats": fresh.batch_stats},
                             key)
        loop.report(f"epoch {epoch}: DrNAS stage {stage + 2}: {cfg.progressive_ops[stage]} ops per edge, partial "
                    f"channels 1/{old_k} -> 1/{cfg.progressive_partial[stage]}")
        record = {"kind": "progressive", "epoch": epoch, "step": done, "stage": stage + 1,
                  "ops_per_edge": int(cfg.progressive_ops[stage]), "partial_channels": int(cfg.progressive_partial[stage]),
                  "pruned": kept}
        return self.place(new), record

    def finish(self, state, run):
        cfg, space = self.cfg, self.space
        host_state = loop.host(state)
        arch_final = jax.tree_util.tree_map(np.asarray, host_state.arch)
        extra_stop = {}
        if self.stop_epoch is not None:  # RobustDARTS: the architecture of the epoch the early stop went back to
            kept = self.epoch_archs[str(self.stop_epoch)]
            arch_final = jax.tree_util.tree_map(lambda ref, a: np.asarray(a, ref.dtype), arch_final, kept,
                                                is_leaf=lambda x: isinstance(x, np.ndarray))
            extra_stop = {"early_stop": {"returned_epoch": self.stop_epoch, "steps": run.total_steps}}
        if self.eigenvalues:
            extra_stop["eigenvalues"] = self.eigenvalues
        if not cfg.relaxation_fn.differentiable:  # spos: the best of sampled candidates
            genotype, candidates = spos_select(self.model, host_state, space, self.a_half, cfg)
            extra = {"spos_candidates": candidates}
        else:
            genotype, extra = space.derive(arch_final, **self._derive_options(int(host_state.step))), {}
        g_json, g_text = space.to_json(genotype), space.format(genotype)
        final = run.last_epoch(("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "temperature", "lr"))
        run.log({"kind": "final", "step": run.total_steps, "arch": g_text, "genotype": g_json, **final,
                 "time": round(run.seconds(), 3)})
        run.write_json("genotype.json", {
            "space": cfg.space, "genotype": g_json, "arch": g_text, "relaxation": cfg.relaxation,
            "optimization": cfg.optimization if cfg.relaxation_fn.differentiable else "weights-only", "steps": run.total_steps,
            "final_metrics": final, **extra, **extra_stop,
        })
        if run.is_writer:
            save_arrays(run.workdir / "arch.npz", arch_final)
        return genotype, g_json, g_text, arch_final, final


def eigenvalue_program(model, config: SearchConfig, steps_per_epoch: int):
    """``(state, val_batch, step) -> the largest eigenvalue`` of the Hessian of the validation loss in the architecture
    parameters at the state's weights (jitted; RobustDARTS). The relaxation is the search's, with a fixed key and
    the step's temperature; batch norm uses the batch's statistics, as the search's arch step does."""
    relaxation = search_relaxation(config, build_space(config))
    temperature = temperature_schedule(config, steps_per_epoch)
    iterations = config.eigen_iterations

    @jax.jit
    def dominant(state, val_batch, step):
        x, y = val_batch
        key = jax.random.fold_in(jax.random.key(config.seed), 7)

        def val_loss(arch):
            weights = relaxation(arch, key, temperature(step))
            variables = {"params": state.params, **({"batch_stats": state.batch_stats} if state.batch_stats else {})}
            logits, _ = model.apply(variables, x, weights, train=True, hard=relaxation.hard, mutable=["batch_stats"])
            return cross_entropy(logits, y)

        return curvature.largest_eigenvalue(val_loss, state.arch, jax.random.fold_in(key, 1), iterations)

    return dominant


def arch_params_json(arch) -> dict:
    """The architecture parameters as nested lists (5 decimals), for the per-epoch record in genotypes.jsonl."""
    return jax.tree_util.tree_map(lambda a: np.round(np.asarray(a, np.float64), 5).tolist(), loop.host(arch))


def loop_options(cfg) -> loop.LoopOptions:
    """The :class:`jaxnas.runners.loop.LoopOptions` of a runner config (the fields every config shares)."""
    return loop.LoopOptions(workdir=cfg.workdir, checkpoint_every=cfg.checkpoint_every,
                            keep_checkpoints=cfg.keep_checkpoints, log_every=cfg.log_every, progress=cfg.progress,
                            debug_step_delay=getattr(cfg, "debug_step_delay", 0.0),
                            tensorboard=getattr(cfg, "tensorboard", False))


def run_search(config: SearchConfig) -> SearchResult:
    """Run (or resume) the search described by ``config`` in ``config.workdir``; see the module docstring."""
    if config.stage_depths or config.adaptive_regularization:
        raise ValueError("this config has P-DARTS stages (stage_depths) or DARTS-ADA legs (adaptive_regularization): "
                         "run it with jaxnas.runners.progressive.run_progressive / run_adaptive")
    (genotype, g_json, g_text, arch, final), run = loop.run(ImageSearchTask(config), loop_options(config))
    return SearchResult(genotype, g_json, g_text, arch, final, run.total_steps, run.workdir, run.resumed_from,
                        run.seconds())


__all__ = [
    "METHODS",
    "OPTIMIZATIONS",
    "SearchConfig",
    "ImageSearchTask",
    "loop_options",
    "SearchResult",
    "build_supernet",
    "parse_temperature",
    "run_search",
    "spos_select",
    "temperature_schedule",
]
