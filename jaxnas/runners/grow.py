"""A growing search: the supernet starts small and grows by function-preserving morphisms while it trains.

::

    from jaxnas.runners.grow import GrowConfig, run_growing_search
    result = run_growing_search(GrowConfig(schedule="grow-then-prune", epochs=6, workdir="runs/grow"))
    print(result.describe)

The network is a :class:`jaxnas.nn.grow.GrowConvNet` (``cells`` single-input cells of ``nodes`` nodes at width
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
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.nn import grow
from jaxnas.search import morph
from jaxnas import relax as relax_lib
from jaxnas.io.checkpoint import Checkpoints
from jaxnas.runners.search import (
    _final_metrics,
    _Log,
    _reporter,
    _scalar_metrics,
    _write_json,
    check_finite,
    check_workdir_generic,
    fit_images,
)
from jaxnas.search.steps import OptimConfig, SearchState, make_arch_optimizer, make_step, make_weight_optimizer
from jaxnas import data
from jaxnas.data import batch_at, steps_per_epoch

SCHEDULES = ("grow-then-prune", "interleaved")
GROW_OPTIMIZATIONS = {"single-level": "single", "bilevel-1st": "bilevel-1st"}
_NON_IDENTITY = ("workdir", "checkpoint_every", "keep_checkpoints", "log_every", "progress", "debug_step_delay")


@dataclasses.dataclass(frozen=True)
class GrowConfig:
    """A growing search (defaults: a few minutes on 2 CPU cores on the embedded Fashion-MNIST subset).

    Attributes:
      schedule: ``grow-then-prune`` or ``interleaved`` (see the module docstring).
      width, cells, nodes: the starting network; ``max_width``, ``max_nodes``: where growth stops.
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
    cells: int = 2
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

    def __post_init__(self):
        object.__setattr__(self, "ops", tuple(self.ops))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown growth schedule {self.schedule!r}; allowed: {', '.join(SCHEDULES)}")
        if self.optimization not in GROW_OPTIMIZATIONS:
            raise ValueError(f"a growing search supports optimization {', '.join(GROW_OPTIMIZATIONS)}; "
                             f"got {self.optimization!r}")
        for name in ("epochs", "batch_size", "width", "max_width", "cells", "nodes", "max_nodes", "image_size",
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
        grow.conv_net_spec(self.width, self.cells, self.nodes, self.ops)  # raises on unknown ops

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["ops"] = list(self.ops)
        return d

    @classmethod
    def from_json(cls, data: dict) -> "GrowConfig":
        data = dict(data)
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown growing-search config fields: {', '.join(unknown)}")
        if isinstance(data.get("optim"), dict):
            data["optim"] = OptimConfig(**data["optim"])
        return cls(**data)

    def identity(self) -> dict:
        return {k: v for k, v in self.to_json().items() if k not in _NON_IDENTITY}


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


def run_growing_search(config: GrowConfig) -> GrowResult:
    """Run (or resume) a growing search in ``config.workdir``; see the module docstring."""
    t_start = time.time()
    cfg = config
    workdir = Path(cfg.workdir)
    report = _reporter(cfg)
    train = data.load_dataset(cfg.dataset, "train")
    if cfg.image_size > max(train.image_shape[:2]):
        train = data.load_dataset(cfg.dataset, "train", image_size=cfg.image_size)
    train = fit_images(train, cfg.image_size)
    w_half, a_half = data.split_for_search(train, cfg.seed)
    check_workdir_generic(workdir, cfg.identity(), cfg.to_json(), "growing search", _NON_IDENTITY)
    spe = min(steps_per_epoch(len(w_half), cfg.batch_size), steps_per_epoch(len(a_half), cfg.batch_size))
    if spe < 1:
        raise ValueError(f"data set {cfg.dataset!r} is too small for batches of {cfg.batch_size}")
    if cfg.steps_per_epoch is not None:
        spe = min(spe, cfg.steps_per_epoch)
    total = cfg.epochs * spe
    mode = GROW_OPTIMIZATIONS[cfg.optimization]
    schedule = events(cfg)

    w_opt = make_weight_optimizer(cfg.optim, total)
    a_opt = make_arch_optimizer(cfg.optim)
    sample = jnp.zeros((1, *w_half.image_shape), jnp.float32)
    init = morph.conv_initializer(sample, cfg.conv_impl)
    base = jax.random.key(cfg.seed)

    def fresh_state(spec, seed_key):
        k_arch, k_init, k_state = jax.random.split(seed_key, 3)
        variables = init(spec, k_init)
        return SearchState.create(variables["params"], variables.get("batch_stats", {}),
                                  grow.init_arch(spec, k_arch), w_opt, a_opt, k_state)

    step_cache: dict = {}

    def step_for(spec):
        if spec not in step_cache:
            model = grow.GrowConvNet(spec, cfg.conv_impl)
            step_cache.clear()  # one live compiled step: old shapes never come back
            step_cache[spec] = make_step(model, mode=mode, relaxation="softmax", w_optimizer=w_opt,
                                         a_optimizer=a_opt)
        return step_cache[spec]

    metrics_log, spec_log = _Log(workdir / "metrics.jsonl"), _Log(workdir / "specs.jsonl")
    ckpts = Checkpoints(workdir / "checkpoints", keep=cfg.keep_checkpoints, report=report)

    def template(meta):
        return fresh_state(grow.spec_from_json(meta["spec"]), base)

    def check_meta(meta):
        saved = {k: v for k, v in meta.get("config", {}).items() if k not in _NON_IDENTITY}
        if saved != cfg.identity():
            raise ValueError(f"checkpoint in {workdir} was written by a different growing-search config")

    found = ckpts.restore_latest(template, check=check_meta)
    if found is not None:
        state, meta = found.state, found.meta
        spec = grow.spec_from_json(meta["spec"])
        start, sums = int(meta["global_step"]), dict(meta["epoch_sums"])
        metrics_log.truncate(int(meta["metrics_bytes"]))
        spec_log.truncate(int(meta["specs_bytes"]))
        resumed_from = start
        report(f"resuming {workdir} from step {start}/{total} ({found.path}); {grow.describe(spec)}")
    else:
        spec = grow.conv_net_spec(cfg.width, cfg.cells, cfg.nodes, cfg.ops, train.num_classes)
        state = fresh_state(spec, base)
        start, sums, resumed_from = 0, {}, None
        metrics_log.truncate(0)
        spec_log.truncate(0)
        spec_log.write({"step": 0, "event": "start", "spec": grow.spec_to_json(spec)})
    state = jax.device_put(state)

    def save(done):
        ckpts.save(done, state, {"config": cfg.to_json(), "global_step": done, "epoch_sums": sums,
                                 "spec": grow.spec_to_json(spec), "metrics_bytes": metrics_log.size(),
                                 "specs_bytes": spec_log.size()})

    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, desc=f"grow {cfg.schedule}", unit="step", dynamic_ncols=True,
                   mininterval=0.5)
    try:
        for g in range(start, total):
            epoch, i = divmod(g, spe)
            x, y = batch_at(w_half, cfg.seed, epoch, i, cfg.batch_size, cfg.augment, stream=0)
            fn = step_for(spec)
            if mode == "bilevel-1st":
                val = batch_at(a_half, cfg.seed, epoch, i, cfg.batch_size, cfg.augment, stream=1)
                state, m = fn(state, (x, y), val)
            else:
                state, m = fn(state, (x, y))
            m = _scalar_metrics(m)
            check_finite(m, ckpts, f"step {g} (epoch {epoch}, step {i} of {spe})", "the growing search",
                         f"Lower the learning rate (w_lr={cfg.optim.w_lr}, a_lr={cfg.optim.a_lr}) or check the data")
            for k, v in m.items():
                sums[k] = sums.get(k, 0.0) + v
            sums["_count"] = sums.get("_count", 0.0) + 1
            done = g + 1
            if done % cfg.log_every == 0:
                metrics_log.write({"kind": "step", "step": done, "epoch": epoch, **m,
                                   "time": round(time.time() - t_start, 3)})
            morphed = False
            if i == spe - 1:
                n = max(sums.pop("_count", 1.0), 1.0)
                metrics_log.write({"kind": "epoch", "epoch": epoch, "step": done,
                                   **{k: v / n for k, v in sums.items()}, "spec": grow.describe(spec),
                                   "time": round(time.time() - t_start, 3)})
                sums = {}
                event = schedule.get(epoch)
                if event is not None:
                    host = jax.device_get(state)
                    key = jax.random.fold_in(base, 1000 + epoch)
                    if event == "grow":
                        spec, host, applied = morph.grow_step(spec, host, init, key=key, max_nodes=cfg.max_nodes,
                                                              max_width=cfg.max_width, width_step=cfg.width_step,
                                                              ops=cfg.ops)
                    else:
                        spec, host, applied = morph.prune_step(spec, host, init, threshold=cfg.prune_threshold)
                    state = jax.device_put(host)
                    metrics_log.write({"kind": "morph", "epoch": epoch, "step": done, "event": event,
                                       "applied": applied, "spec": grow.describe(spec)})
                    spec_log.write({"step": done, "event": event, "applied": applied,
                                    "spec": grow.spec_to_json(spec)})
                    report(f"epoch {epoch}: {event}: {', '.join(applied) or 'nothing to do'}; {grow.describe(spec)}")
                    morphed = True
            if morphed or done % cfg.checkpoint_every == 0 or done == total:
                save(done)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({"ep": epoch, "loss": f"{m['loss']:.3f}", "acc": f"{m['accuracy']:.3f}"},
                                refresh=False)
            if cfg.debug_step_delay:
                time.sleep(cfg.debug_step_delay)
    finally:
        if bar is not None:
            bar.close()
        ckpts.close()

    host = jax.device_get(state)
    arch = jax.tree_util.tree_map(np.asarray, host.arch)
    derived = grow.derive(spec, arch)
    final = _final_metrics(metrics_log.path, total)
    metrics_log.write({"kind": "final", "step": total, **final, "spec": grow.describe(spec),
                       "derived": grow.describe(derived), "time": round(time.time() - t_start, 3)})
    _write_json(workdir / "genotype.json", {
        "space": "grow-conv", "schedule": cfg.schedule, "spec": grow.spec_to_json(spec),
        "derived": grow.spec_to_json(derived), "arch": jax.tree_util.tree_map(lambda a: a.tolist(), arch),
        "final_metrics": final, "steps": total,
    })
    return GrowResult(spec, derived, arch, final, total, workdir, resumed_from, time.time() - t_start)


__all__ = ["GROW_OPTIMIZATIONS", "SCHEDULES", "GrowConfig", "GrowResult", "events", "run_growing_search"]
