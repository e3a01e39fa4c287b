"""A growing search: the supernet starts small and grows by function-preserving morphisms while it trains.

::

    from jaxnas.runners.grow import GrowConfig, run_growing_search
    result = run_growing_search(GrowConfig(schedule="grow-then-prune", epochs=6, workdir="runs/grow"))
    print(result.describe)

The network is a :class:`jaxnas.nn.grow.GrowConvNet` (``depth`` single-input cells of ``nodes`` nodes at width
``width``). At the end of some epochs the loop applies a transform from :mod:`jaxnas.search.morph`:

* *grow*: every cell gains a node (up to ``max_nodes``) and the width grows by ``width_step`` (up to ``max_width``);
* *prune*: :func:`jaxnas.search.morph.prune` drops ops and edges whose softmax weight is below ``prune_threshold``.

Schedules (the two modes of the morphism-based growing DARTS paper):

``grow-then-prune``  grow at the end of each of the first ``grow_epochs`` epochs, then prune after every later epoch;
``interleaved``      alternate: grow after epochs 0, 2, 4, ..., prune after epochs 1, 3, 5, ... (never after the last).

Every transform keeps the network's function and carries the optimizer states (the weight optimizer's cosine
schedule runs over the whole search), so the next step continues the same run; the step compiles once per new shape.
A checkpoint is written right after every transform; it records the spec, so a killed run resumes with the right
shapes and ends bit-identical to an uninterrupted one (CPU). Outputs in ``workdir``: ``config.json``,
``metrics.jsonl`` (step / epoch / ``"kind": "morph"`` / final records), ``specs.jsonl`` (the spec after every
transform), ``checkpoints/``, ``genotype.json`` (the final spec, its derived spec: the two strongest incoming
``(src, op)`` per node, and the arch logits).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas import registry
from jaxnas.nn import grow
from jaxnas.nn.ops import count_params
from jaxnas.search import morph
from jaxnas.runners import loop
from jaxnas.runners.search import config_from_json, fit_images, loop_options
from jaxnas.search.steps import OPTIMIZATIONS, OptimConfig, SearchState, make_arch_optimizer, make_step, make_weight_optimizer
from jaxnas import data
from jaxnas.data import batch_at, steps_per_epoch

SCHEDULES = ("grow-then-prune", "interleaved")
GROW_OPTIMIZATIONS = {k: OPTIMIZATIONS[k] for k in ("single-level", "bilevel-1st")}  # morphisms: no 2nd order


@dataclasses.dataclass(frozen=True)
class GrowConfig:
    """A growing search (defaults: a few minutes on 2 CPU cores on the embedded Fashion-MNIST subset).

    Attributes:
      schedule: ``grow-then-prune`` or ``interleaved`` (see the module docstring).
      width, depth, nodes: the starting network (depth: its cells); ``max_width``, ``max_nodes``: where growth stops.
      width_step: channels added per growth (0: never widen).
      grow_epochs: ``grow-then-prune``: epochs (from the start) that end with a growth.
      prune_threshold: softmax weight under which an op (or a whole edge) is pruned.
      ops: candidate ops of new edges (:data:`jaxnas.nn.grow.CONV_OPS` by default).
      optimization: ``single-level`` or ``bilevel-1st`` (softmax relaxation: the morphisms are exact under it).
      epochs, steps_per_epoch, batch_size, image_size, dataset, seed, optim: as in :class:`SearchConfig`, except
        that the architecture learning rate defaults to 3e-3 (10x DARTS's), so that a short search moves the
        weights far enough for pruning to act.
    """

    schedule: str = "grow-then-prune"
    dataset: str = "embedded"
    image_size: int = 28
    epochs: int = 4
    steps_per_epoch: int | None = 20
    batch_size: int = 32
    width: int = 4
    max_width: int = 8
    width_step: int = 2
    depth: int = 2
    nodes: int = 1
    max_nodes: int = 3
    grow_epochs: int = 2
    prune_threshold: float = 0.15
    ops: tuple[str, ...] = ("none", "skip_connect", "max_pool_3x3", "sep_conv_3x3", "dil_conv_3x3")
    optimization: str = "bilevel-1st"
    seed: int = 0
    optim: OptimConfig = OptimConfig(a_lr=3e-3)
    augment: bool = False
    conv_impl: str | None = "xla"
    workdir: str = "runs/grow"
    checkpoint_every: int = 20
    keep_checkpoints: int = 2
    log_every: int = 5
    progress: bool = True
    debug_step_delay: float = 0.0
    tensorboard: bool = False

    def __post_init__(self):
        object.__setattr__(self, "ops", tuple(self.ops))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown growth schedule {self.schedule!r}; allowed: {', '.join(SCHEDULES)}")
        if self.optimization not in GROW_OPTIMIZATIONS:
            raise ValueError(f"a growing search supports optimization {', '.join(GROW_OPTIMIZATIONS)}; "
                             f"got {self.optimization!r}")
        for name in ("epochs", "batch_size", "width", "max_width", "depth", "nodes", "max_nodes", "image_size",
                     "checkpoint_every", "keep_checkpoints", "log_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("width_step", "grow_epochs", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if self.steps_per_epoch is not None and (not isinstance(self.steps_per_epoch, int) or self.steps_per_epoch < 1):
            raise ValueError(f"steps_per_epoch must be a positive integer, got {self.steps_per_epoch!r}")
        if self.max_width < self.width:
            raise ValueError(f"max_width {self.max_width} is below the starting width {self.width}")
        if self.max_nodes < self.nodes:
            raise ValueError(f"max_nodes {self.max_nodes} is below the starting nodes {self.nodes}")
        if not 0.0 <= self.prune_threshold < 1.0:
            raise ValueError(f"prune_threshold must be in [0, 1), got {self.prune_threshold}")
        if self.grow_epochs > self.epochs:
            raise ValueError(f"grow_epochs {self.grow_epochs} exceeds epochs {self.epochs}")
        grow.conv_net_spec(self.width, self.depth, self.nodes, self.ops)  # raises on unknown ops

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["ops"] = list(self.ops)
        return d

    @classmethod
    def from_json(cls, data: dict) -> "GrowConfig":
        return config_from_json(cls, data, "growing-search")

    def identity(self) -> dict:
        return loop.identity_of(self.to_json())


def events(config: GrowConfig) -> dict[int, str]:
    """``{epoch: "grow" | "prune"}``: the transform applied at the end of that epoch (never after the last)."""
    out = {}
    for e in range(config.epochs - 1):
        if config.schedule == "grow-then-prune":
            out[e] = "grow" if e < config.grow_epochs else "prune"
        else:
            out[e] = "grow" if e % 2 == 0 else "prune"
    return out


@dataclasses.dataclass
class GrowResult:
    spec: grow.ConvNetSpec
    derived: grow.ConvNetSpec
    arch: dict
    metrics: dict
    steps: int
    workdir: Path
    resumed_from: int | None
    wall_time: float

    @property
    def describe(self) -> str:
        return grow.describe(self.derived)


class GrowingSearchTask(loop.Task):
    """A growing conv search (morphisms on an epoch schedule), as a :class:`jaxnas.runners.loop.Task`. The grown
    spec is the task's own value: it is saved with every checkpoint and shapes the restore template."""

    kind = "growing search"
    logs = ("specs",)

    def __init__(self, config: GrowConfig):
        cfg = self.cfg = config
        train = data.load_dataset(cfg.dataset, "train")
        if cfg.image_size > max(train.image_shape[:2]):
            train = data.load_dataset(cfg.dataset, "train", image_size=cfg.image_size)
        train = fit_images(train, cfg.image_size)
        self.num_classes = train.num_classes
        self.w_half, self.a_half = data.split_for_search(train, cfg.seed)
        spe = min(steps_per_epoch(len(self.w_half), cfg.batch_size), steps_per_epoch(len(self.a_half), cfg.batch_size))
        if spe < 1:
            raise ValueError(f"data set {cfg.dataset!r} is too small for batches of {cfg.batch_size}")
        if cfg.steps_per_epoch is not None:
            spe = min(spe, cfg.steps_per_epoch)
        self.steps_per_epoch, self.total_steps = spe, cfg.epochs * spe
        self.config, self.identity = cfg.to_json(), cfg.identity()
        self.advice = f"Lower the learning rate (w_lr={cfg.optim.w_lr}, a_lr={cfg.optim.a_lr}) or check the data"
        self.mode = GROW_OPTIMIZATIONS[cfg.optimization]
        self.schedule = events(cfg)
        self.w_opt = make_weight_optimizer(cfg.optim, self.total_steps)
        self.a_opt = make_arch_optimizer(cfg.optim)
        self.init_params = morph.conv_initializer(jnp.zeros((1, *self.w_half.image_shape), jnp.float32),
                                                  cfg.conv_impl)
        self.base = jax.random.key(cfg.seed)
        self.spec = grow.conv_net_spec(cfg.width, cfg.depth, cfg.nodes, cfg.ops, self.num_classes)
        self._steps: dict = {}

    def _fresh_state(self, spec):
        k_arch, k_init, k_state = jax.random.split(self.base, 3)
        variables = self.init_params(spec, k_init)
        return SearchState.create(variables["params"], variables.get("batch_stats", {}),
                                  grow.init_arch(spec, k_arch), self.w_opt, self.a_opt, k_state)

    def _step_for(self, spec):
        if spec not in self._steps:
            self._steps.clear()  # one live compiled step: old shapes never come back
            self._steps[spec] = make_step(grow.GrowConvNet(spec, self.cfg.conv_impl), mode=self.mode,
                                          relaxation="softmax", w_optimizer=self.w_opt, a_optimizer=self.a_opt)
        return self._steps[spec]

    def init(self):
        return self._fresh_state(self.spec), [("specs", {"step": 0, "event": "start",
                                                         "spec": grow.spec_to_json(self.spec)})]

    def template(self, meta):
        return self._fresh_state(grow.spec_from_json(meta["spec"]))

    def resume(self, state, meta):
        self.spec = grow.spec_from_json(meta["spec"])
        loop.report(f"grown network: {grow.describe(self.spec)}")
        return state

    def meta(self):
        return {"spec": grow.spec_to_json(self.spec)}

    def step(self, state, index):
        cfg = self.cfg
        epoch, i = divmod(index, self.steps_per_epoch)
        x, y = batch_at(self.w_half, cfg.seed, epoch, i, cfg.batch_size, cfg.augment, stream=0)
        fn = self._step_for(self.spec)
        if self.mode == "bilevel-1st":
            val = batch_at(self.a_half, cfg.seed, epoch, i, cfg.batch_size, cfg.augment, stream=1)
            return fn(state, (x, y), val)
        return fn(state, (x, y))

    def epoch_fields(self, state, epoch):
        return {"spec": grow.describe(self.spec), **size_fields(self.spec, state.params)}

    def after_step(self, state, done, epoch):
        event = self.schedule.get(epoch) if epoch is not None else None
        if event is None:
            return state, [], False
        cfg, host = self.cfg, jax.device_get(state)
        if event == "grow":
            self.spec, host, applied = morph.grow_step(self.spec, host, self.init_params,
                                                       key=jax.random.fold_in(self.base, 1000 + epoch),
                                                       max_nodes=cfg.max_nodes, max_width=cfg.max_width,
                                                       width_step=cfg.width_step, ops=cfg.ops)
        else:
            self.spec, host, applied = morph.prune_step(self.spec, host, self.init_params,
                                                        threshold=cfg.prune_threshold)
        loop.report(f"epoch {epoch}: {event}: {', '.join(applied) or 'nothing to do'}; {grow.describe(self.spec)}")
        records = [("metrics", {"kind": "morph", "epoch": epoch, "step": done, "event": event, "applied": applied,
                                "spec": grow.describe(self.spec), **size_fields(self.spec, host.params)}),
                   ("specs", {"step": done, "event": event, "applied": applied, "spec": grow.spec_to_json(self.spec)})]
        return jax.device_put(host), records, True  # a checkpoint right after every transform

    def progress_fields(self, metrics, epoch):
        return {"ep": epoch, "loss": f"{metrics['loss']:.3f}", "acc": f"{metrics['accuracy']:.3f}"}

    def finish(self, state, run):
        host = jax.device_get(state)
        arch = jax.tree_util.tree_map(np.asarray, host.arch)
        derived = grow.derive(self.spec, arch)
        final = run.last_epoch(("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "temperature", "lr"))
        run.log({"kind": "final", "step": run.total_steps, **final, "spec": grow.describe(self.spec),
                 "derived": grow.describe(derived), "time": round(run.seconds(), 3)})
        run.write_json("genotype.json", {
            "space": registry.GrownConvSpace.name, "schedule": self.cfg.schedule, "spec": grow.spec_to_json(self.spec),
            "derived": grow.spec_to_json(derived), "arch": jax.tree_util.tree_map(lambda a: a.tolist(), arch),
            "final_metrics": final, "steps": run.total_steps,
        })
        return derived, arch, final


def size_fields(spec, params) -> dict:
    """How big the supernet is: nodes (over all cells), width and parameter count (for the records and plots)."""
    return {"nodes": sum(len(c.nodes) for c in spec.cells), "width": grow.width_of(spec),
            "params": count_params(params)}


def run_growing_search(config: GrowConfig) -> GrowResult:
    """Run (or resume) a growing search in ``config.workdir``; see the module docstring."""
    task = GrowingSearchTask(config)
    (derived, arch, final), run = loop.run(task, loop_options(config))
    return GrowResult(task.spec, derived, arch, final, run.total_steps, run.workdir, run.resumed_from, run.seconds())


__all__ = ["GROW_OPTIMIZATIONS", "SCHEDULES", "GrowConfig", "GrowResult", "GrowingSearchTask", "events", "run_growing_search"]
