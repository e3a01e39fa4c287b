"""Growing architecture search for the sequence tasks: the two-input recurrent backbone grows while it trains.

::

    from jaxnas.runners.recurrent_growth import GrowForecastConfig, run_growing_forecast, retrain_forecast
    found = run_growing_forecast(GrowForecastConfig(horizon=24, hidden=16, nodes=1, max_nodes=3, steps=600))
    found["transforms"]      # every add_node / widen / prune: step, what, spec summary, output change on a probe
    derived = grow.spec_from_json(found["derived"])
    final = retrain_forecast(derived, found["arch"], ForecastConfig(horizon=24, steps=1000))   # from scratch

The model is :class:`jaxnas.nn.sequence.Forecaster` (or :class:`~jaxnas.nn.sequence.LanguageModel`) around
:class:`jaxnas.nn.grow.GrowRecurrentCell`: inputs ``W_x x_t`` and ``h_{t-1}``, every node combining two operand slots
with ``add`` or the Hadamard product (the backbone of the morphism-based growing DARTS paper). The search is
:func:`jaxnas.search.make_step` with the softmax relaxation (under which the morphisms are exact) in
``optimization`` ``'bilevel-1st'`` (the training part cut chronologically: weights on the first ``search_fraction``,
architecture on the rest) or ``'single'`` (both on the whole training part). Weights train with the task loops'
optimizer (global-norm clipping, Adam), the architecture with Adam (DARTS betas).

Every ``transform_every`` steps (never after the last) the loop applies a transform of :mod:`jaxnas.search.morph` to
``(spec, state)`` and builds the step for the new spec (one recompilation per transform):

* *grow*: :func:`~jaxnas.search.morph.add_node` (while the cell has fewer than ``max_nodes`` nodes; new edges carry
  ``ops``) and, with ``max_hidden``, :func:`~jaxnas.search.morph.widen` by ``hidden_step`` units (up to ``max_hidden``);
  exact: the predictions right after equal those right before;
* *prune*: :func:`~jaxnas.search.morph.prune_plan` + :func:`~jaxnas.search.morph.remove_ops` (DARTS-style: ops, and whole
  edges, whose softmax weight is below ``prune_threshold``); exact only for ``none`` ops and zero gates, otherwise
  the removed ops' share of the output is lost (the log records how much the probe predictions moved).

Schedules (:func:`transform_events`): ``'grow-then-prune'`` grows at the first transforms until the target size is
reached, then prunes; ``'interleaved'`` alternates grow and prune (grow while growth remains); ``'fixed'`` never
transforms (a fixed-size backbone searched the same way, for comparison).

At the end the cell is derived (:func:`jaxnas.nn.grow.derive`: per slot the strongest ``(src, op)`` other than
``none``; combiners one-hot at their strongest, :func:`jaxnas.nn.grow.derived_weights`). :func:`retrain_forecast` /
:func:`retrain_lm` train the derived spec from scratch as a fixed cell (:class:`FixedGrowCell`) with the task's
ordinary loop (:func:`jaxnas.runners.forecast.run_forecast` / :func:`jaxnas.runners.lm.run_lm`), i.e. with exactly the
budget and optimizer of the LSTM and GRU baselines.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.nn import grow
from jaxnas.search import morph
from jaxnas import relax as relax_lib
from jaxnas.search.steps import OptimConfig, SearchState, cross_entropy, make_arch_optimizer, make_step
from jaxnas.runners import forecast as F
from jaxnas.nn.sequence import Forecaster, LanguageModel
from jaxnas.runners import lm, loop
from jaxnas.data import timeseries as ts
from jaxnas.data import ptb

SCHEDULES = ("grow-then-prune", "interleaved", "fixed")
SEARCH_MODES = ("bilevel-1st", "single-level")


# ----------------------------------------------------------------------------------------------------------------
# configs


@dataclasses.dataclass(frozen=True)
class GrowthConfig:
    """The growing search, shared by the forecasting and language-modelling tasks.

    Attributes:
      hidden, nodes: the starting backbone (:func:`jaxnas.nn.grow.recurrent_spec`); ``max_nodes``: where node growth
        stops. ``max_hidden`` / ``hidden_step``: widen by ``hidden_step`` units per growth up to ``max_hidden``
        (None: never widen).
      ops: candidate ops of every edge (:data:`jaxnas.nn.grow.RNN_OPS`).
      schedule: ``'grow-then-prune'``, ``'interleaved'`` or ``'fixed'`` (module docstring).
      transform_every: steps between transforms; prune_threshold: softmax weight under which ops are pruned.
      steps, batch_size, lr, grad_clip: the search's weight training (Adam after global-norm clipping).
      a_lr, a_weight_decay: the architecture optimizer (Adam, betas 0.5 / 0.999, coupled decay).
      optimization: ``'bilevel-1st'`` or ``'single-level'``; search_fraction: share of the training part for the weights
        in ``'bilevel-1st'``.
      check_transforms: measure the largest change of the probe predictions at every transform (one extra
        compilation of the forward pass per new spec).
      seed, log_every, verbose; workdir (``config.json``, ``metrics.jsonl``, ``checkpoints/``, ``result.json``;
        run again, it resumes; None keeps nothing), checkpoint_every, keep_checkpoints, progress.
    """

    hidden: int = 16
    nodes: int = 1
    max_nodes: int = 3
    max_hidden: int | None = None
    hidden_step: int = 0
    ops: tuple[str, ...] = grow.RNN_OPS
    schedule: str = "grow-then-prune"
    transform_every: int = 100
    prune_threshold: float = 0.15
    steps: int = 500
    batch_size: int = 64
    lr: float = 1e-3
    grad_clip: float | None = 10.0
    a_lr: float = 3e-3
    a_weight_decay: float = 1e-3
    optimization: str = "bilevel-1st"
    search_fraction: float = 0.5
    check_transforms: bool = True
    seed: int = 0
    log_every: int = 50
    workdir: str | None = None
    verbose: bool = False
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    progress: bool = True
    debug_step_delay: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "ops", tuple(self.ops))
        for name in ("hidden", "nodes", "max_nodes", "transform_every", "steps", "batch_size", "log_every",
                     "checkpoint_every", "keep_checkpoints"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{type(self).__name__}.{name} must be a positive integer, got {v!r}")
        if self.max_nodes < self.nodes:
            raise ValueError(f"max_nodes {self.max_nodes} is below the starting nodes {self.nodes}")
        if self.max_hidden is not None:
            if self.max_hidden < self.hidden:
                raise ValueError(f"max_hidden {self.max_hidden} is below the starting hidden {self.hidden}")
            if self.max_hidden > self.hidden and self.hidden_step < 1:
                raise ValueError("widening to max_hidden needs hidden_step >= 1")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown growth schedule {self.schedule!r}; allowed: {', '.join(SCHEDULES)}")
        if self.optimization not in SEARCH_MODES:
            raise ValueError(f"unknown optimization {self.optimization!r}; allowed: {', '.join(SEARCH_MODES)} "
                             f"(softmax relaxation: the morphisms are exact under it)")
        if not 0.0 <= self.prune_threshold < 1.0:
            raise ValueError(f"prune_threshold must be in [0, 1), got {self.prune_threshold}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        F.check_search_fields(self.optimization, "softmax", self.search_fraction)
        grow.recurrent_spec(self.hidden, self.nodes, self.ops)  # raises on unknown ops

    def start_spec(self) -> grow.RecurrentSpec:
        return grow.recurrent_spec(self.hidden, self.nodes, self.ops)

    def growths(self) -> int:
        """How many grow transforms reach the target size (nodes and width)."""
        n = self.max_nodes - self.nodes
        if self.max_hidden is not None and self.max_hidden > self.hidden:
            n = max(n, math.ceil((self.max_hidden - self.hidden) / self.hidden_step))
        return n

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["ops"] = list(self.ops)
        return d


@dataclasses.dataclass(frozen=True)
class GrowForecastConfig(GrowthConfig):
    """A growing search on a forecasting data set (LSTNet protocol; see :class:`GrowthConfig` for the search).

    dataset, horizon, window, highway_window, loss, scale_from, eval_batch_size: as in
    :class:`jaxnas.runners.forecast.ForecastConfig`.
    """

    dataset: str = "exchange_rate"
    horizon: int = 24
    window: int = 168
    highway_window: int = 24
    loss: str = "l1"
    scale_from: str = "train"
    eval_batch_size: int = 256

    def __post_init__(self):
        super().__post_init__()
        if self.loss not in F.LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; allowed: {', '.join(F.LOSSES)}")
        for name in ("horizon", "window", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"GrowForecastConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.highway_window <= self.window:
            raise ValueError(f"highway_window must be in 0..window, got {self.highway_window}")


@dataclasses.dataclass(frozen=True)
class GrowLMConfig(GrowthConfig):
    """A growing search on a PTB-format corpus (see :class:`GrowthConfig` for the search).

    data_dir, embed_dim, tie_weights, bptt, eval_batch_size, eval_windows: as in :class:`jaxnas.runners.lm.LMConfig`
    (``data_dir=None``: the shipped smoke corpus).
    """

    data_dir: str | None = None
    embed_dim: int = 32
    tie_weights: bool = True
    bptt: int = 35
    grad_clip: float | None = 0.25
    eval_batch_size: int = 10
    eval_windows: int | None = None

    def __post_init__(self):
        super().__post_init__()
        for name in ("embed_dim", "bptt", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"GrowLMConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_windows is not None and self.eval_windows < 1:
            raise ValueError(f"GrowLMConfig.eval_windows must be >= 1 or None, got {self.eval_windows}")


def transform_events(config: GrowthConfig) -> dict[int, str]:
    """``{step: 'grow' | 'prune'}``: the transform applied after that many steps (multiples of
    ``transform_every`` below ``steps``)."""
    if config.schedule == "fixed":
        return {}
    out, grown = {}, 0
    need = config.growths()
    for j, step in enumerate(range(config.transform_every, config.steps, config.transform_every)):
        if config.schedule == "grow-then-prune":
            event = "grow" if j < need else "prune"
        else:
            event = "grow" if j % 2 == 0 and grown < need else "prune"
        grown += event == "grow"
        out[step] = event
    return out


# ----------------------------------------------------------------------------------------------------------------
# the fixed (derived) cell


class FixedGrowCell(nn.Module):
    """A derived two-input backbone as a fixed cell: :class:`jaxnas.nn.grow.GrowRecurrentCell` with constant edge
    weights (recurrent cell protocol; the ``weights`` argument is ignored, so it trains like an LSTM).

    ``edge_weights``: ``((name, (w, ...)), ...)``, hashable (see :func:`fixed_cell`).
    """

    spec: grow.RecurrentSpec
    edge_weights: tuple[tuple[str, tuple[float, ...]], ...]

    @property
    def hidden(self) -> int:
        return self.spec.hidden

    def initial_carry(self, batch_size: int):
        return jnp.zeros((batch_size, self.spec.hidden), jnp.float32)

    @nn.compact
    def __call__(self, carry, x_t, weights=None, train: bool = True, hard: bool = False):
        del weights
        w = {name: jnp.asarray(v, jnp.float32) for name, v in self.edge_weights}
        return grow.GrowRecurrentCell(self.spec, name="grow")(carry, x_t, w, train=train)


def frozen_weights(weights: dict) -> tuple[tuple[str, tuple[float, ...]], ...]:
    return tuple(sorted((k, tuple(float(x) for x in np.asarray(v).reshape(-1))) for k, v in weights.items()))


def fixed_cell(derived: grow.RecurrentSpec, arch=None) -> Callable[[int], FixedGrowCell]:
    """A cell factory ``hidden -> FixedGrowCell`` for :func:`~jaxnas.runners.forecast.run_forecast` /
    :func:`~jaxnas.runners.lm.run_lm` (``cell=``): the derived spec with :func:`jaxnas.nn.grow.derived_weights`
    (combiners one-hot at their strongest logit in ``arch``). ``hidden`` must be the spec's."""
    if derived.family != "rnn":
        raise ValueError("fixed_cell needs a recurrent spec (RecurrentSpec)")
    bad = [(name, e.ops) for name, _, _, e in derived.cell.edges() if len(e.ops) != 1]
    if bad:
        raise ValueError(f"fixed_cell needs a derived spec (one op per edge); edges with several ops: {bad[:3]}")
    comb = None
    if arch is not None:
        comb = {k: np.asarray(v) for k, v in arch.items() if k.endswith("_comb")}
    weights = frozen_weights(grow.derived_weights(derived, comb))

    def make(hidden: int) -> FixedGrowCell:
        if hidden != derived.hidden:
            raise ValueError(f"the derived cell has hidden size {derived.hidden}; the task asked for {hidden}")
        return FixedGrowCell(derived, weights)

    return make


def retrain_forecast(derived: grow.RecurrentSpec, arch=None, config: F.ForecastConfig | None = None) -> dict:
    """Train the derived spec from scratch as a fixed cell with :func:`jaxnas.runners.forecast.run_forecast`
    (``config``: everything but ``cell``, ``hidden`` and ``arch``, which are set here). Returns its result with
    ``'cell': 'grow'`` and ``'derived'`` (the spec as JSON) added."""
    config = config or F.ForecastConfig()
    cfg = dataclasses.replace(config, cell=fixed_cell(derived, arch), hidden=derived.hidden, arch=None)
    out = F.run_forecast(cfg)
    return {**out, "cell": "grow", "derived": grow.spec_to_json(derived)}


def retrain_lm(derived: grow.RecurrentSpec, arch=None, config=None) -> dict:
    """As :func:`retrain_forecast`, with :func:`jaxnas.runners.lm.run_lm` (``config``: an ``LMConfig``)."""
    config = config or lm.LMConfig()
    cfg = dataclasses.replace(config, cell=fixed_cell(derived, arch), hidden=derived.hidden, arch=None)
    out = lm.run_lm(cfg)
    return {**out, "cell": "grow", "derived": grow.spec_to_json(derived)}


# ----------------------------------------------------------------------------------------------------------------
# the search loop (task-independent)


@dataclasses.dataclass
class _Task:
    """What the loop needs from a task."""

    make_model: Callable[[grow.RecurrentSpec], nn.Module]
    sample_x: Any  # initialises a model
    probe_x: Any  # predictions compared before / after every transform
    loss_fn: Callable
    train_batch: Callable[[int], Any]
    val_batch: Callable[[int], Any] | None
    evaluate: Callable[[nn.Module, dict, dict], dict]  # (model, variables, weights) -> {'valid': ..., 'test': ...}
    info: dict


def _variables(host) -> dict:
    return {"params": host.params, **({"batch_stats": host.batch_stats} if host.batch_stats else {})}


def _grow(spec, state, init, cfg: GrowthConfig, key):
    return morph.grow_step(spec, state, init, key=key, max_nodes=cfg.max_nodes, max_width=cfg.max_hidden,
                           width_step=cfg.hidden_step, ops=cfg.ops)


def _prune(spec, state, init, cfg: GrowthConfig):
    return morph.prune_step(spec, state, init, threshold=cfg.prune_threshold)


def _count(spec) -> dict:
    edges = list(spec.cell.edges())
    return {"nodes": len(spec.cell.nodes), "edges": len(edges), "ops": sum(len(e.ops) for *_, e in edges),
            "hidden": spec.hidden}


class RecurrentGrowthTask(loop.Task):
    """A growing search of the two-input recurrent backbone (transforms every ``transform_every`` steps), as a
    :class:`jaxnas.runners.loop.Task`. The spec and the transform records are saved with every checkpoint."""

    def __init__(self, cfg: GrowthConfig, task: _Task, kind: str, on_transform=None):
        self.cfg, self.task, self.on_transform = cfg, task, on_transform
        self.kind = f"growing {kind} search"
        self.total_steps = cfg.steps
        self.config = {**cfg.to_json(), "task": kind}
        self.identity = loop.identity_of(self.config)
        self.advice = f"Lower lr ({cfg.lr})"
        self.w_opt = F.make_optimizer(cfg.lr, cfg.grad_clip)
        self.a_opt = make_arch_optimizer(OptimConfig(a_lr=cfg.a_lr, a_weight_decay=cfg.a_weight_decay))
        self.init_params = morph.initializer(task.make_model, task.sample_x)
        self.base = jax.random.key(cfg.seed)
        self.start_spec = self.spec = cfg.start_spec()
        self.events = transform_events(cfg)
        self.transforms: list[dict] = []
        self.first_loss = self.last_loss = None
        self.compile_seconds: list[float] = []
        self._step: tuple | None = None  # (spec, compiled step)
        self._forward: dict = {}

    def _fresh_state(self, spec):
        k_arch, k_init, k_state = jax.random.split(self.base, 3)
        variables = self.init_params(spec, k_init)
        return SearchState.create(variables["params"], variables.get("batch_stats", {}),
                                  grow.init_arch(spec, k_arch), self.w_opt, self.a_opt, k_state)

    def init(self):
        return self._fresh_state(self.spec), []

    def template(self, meta):
        return self._fresh_state(grow.spec_from_json(meta["spec"]))

    def resume(self, state, meta):
        self.spec = grow.spec_from_json(meta["spec"])
        self.transforms = list(meta["transforms"])
        self.first_loss, self.last_loss = meta["first_loss"], meta["last_loss"]
        return state

    def meta(self):
        return {"spec": grow.spec_to_json(self.spec), "transforms": self.transforms, "first_loss": self.first_loss,
                "last_loss": self.last_loss}

    def step(self, state, index):
        if self._step is None or self._step[0] != self.spec:
            step = make_step(self.task.make_model(self.spec), mode=F.step_mode(self.cfg.optimization), relaxation="softmax",
                             w_optimizer=self.w_opt, a_optimizer=self.a_opt, loss_fn=self.task.loss_fn,
                             accuracy_fn=None)
            self._step, fresh = (self.spec, step), True
        else:
            fresh = False
        val = self.task.val_batch(index) if self.task.val_batch is not None else None
        t_step = time.time()
        state, m = self._step[1](state, self.task.train_batch(index), val)
        loss = float(m["loss"])
        if fresh:
            self.compile_seconds.append(round(time.time() - t_step, 3))
        self.first_loss = loss if self.first_loss is None else self.first_loss
        self.last_loss = loss
        return state, m

    def _probe(self, spec, host):
        if spec not in self._forward:
            model = self.task.make_model(spec)
            self._forward.clear()
            self._forward[spec] = jax.jit(lambda v, x, w: model.apply(v, x, w, train=False))
        return np.asarray(self._forward[spec](_variables(host), self.task.probe_x, relax_lib.softmax(host.arch)))

    def after_step(self, state, done, epoch):
        event = self.events.get(done)
        if event is None:
            return state, [], False
        cfg, t_morph, host = self.cfg, time.time(), jax.device_get(state)
        before = self._probe(self.spec, host) if cfg.check_transforms else None
        old_spec = self.spec
        if event == "grow":
            new_spec, new_host, applied = _grow(self.spec, host, self.init_params, cfg,
                                                jax.random.fold_in(self.base, 1000 + done))
        else:
            new_spec, new_host, applied = _prune(self.spec, host, self.init_params, cfg)
        record = {"kind": "transform", "step": done, "event": event, "applied": applied,
                  "spec": grow.describe(new_spec), **_count(new_spec), "params": F.count_params(new_host.params)}
        if cfg.check_transforms:
            after = self._probe(new_spec, new_host)
            record["max_abs_change"] = float(np.max(np.abs(after - before)))
            record["max_abs_output"] = float(np.max(np.abs(before)))
        record["seconds"] = round(time.time() - t_morph, 3)
        self.transforms.append(record)
        if cfg.verbose:
            loop.report(f"step {done}: {event}: {', '.join(applied) or 'nothing to do'}; {grow.describe(new_spec)}"
                        + (f"; probe change {record['max_abs_change']:.2e}" if cfg.check_transforms else ""))
        if self.on_transform is not None:
            self.on_transform(record, old_spec, host, new_spec, new_host)
        self.spec = new_spec
        return jax.device_put(new_host), [("metrics", record)], True  # a checkpoint right after every transform

    def finish(self, state, run):
        cfg, task = self.cfg, self.task
        host = jax.device_get(state)
        arch = jax.tree_util.tree_map(np.asarray, host.arch)
        derived = grow.derive(self.spec, arch)
        scores = task.evaluate(task.make_model(self.spec), _variables(host), relax_lib.softmax(host.arch))
        result = {
            **task.info, "schedule": cfg.schedule, "optimization": cfg.optimization, "steps": cfg.steps,
            "start_spec": grow.spec_to_json(self.start_spec), "spec": grow.spec_to_json(self.spec),
            "derived": grow.spec_to_json(derived),
            "describe": {"start": grow.describe(self.start_spec), "grown": grow.describe(self.spec),
                         "derived": grow.describe(derived)},
            "arch": F.tree_to_lists(arch), "transforms": self.transforms, "params": F.count_params(host.params),
            "train_loss": [self.first_loss, self.last_loss], **scores,
            "compile_seconds": self.compile_seconds, "search_seconds": round(run.seconds(), 3),
        }
        result["seconds"] = round(run.seconds(), 3)
        run.log({"kind": "final", **{k: result[k] for k in ("describe", *scores)}})
        run.write_json("result.json", result)
        if cfg.verbose:
            loop.report(f"done in {result['seconds']:.1f} s; derived: {grow.describe(derived)}")
        return result


def _search(cfg: GrowthConfig, task: _Task, kind: str, on_transform=None) -> dict:
    options = None if cfg.workdir is None else loop.LoopOptions(
        workdir=cfg.workdir, checkpoint_every=cfg.checkpoint_every, keep_checkpoints=cfg.keep_checkpoints,
        log_every=cfg.log_every, progress=cfg.progress, debug_step_delay=cfg.debug_step_delay)
    result, _ = loop.run_somewhere(RecurrentGrowthTask(cfg, task, kind, on_transform), options,
                                   checkpoint_every=cfg.steps, log_every=cfg.log_every, progress=cfg.progress)
    return result


# ----------------------------------------------------------------------------------------------------------------
# the tasks


def forecast_task(cfg: GrowForecastConfig) -> tuple[_Task, Any]:
    """The forecasting task of a config: ``(task, data)`` (the :class:`~jaxnas.data.timeseries.ForecastData`)."""
    data = ts.load_forecast(cfg.dataset, window=cfg.window, horizon=cfg.horizon, scale_from=cfg.scale_from)
    if cfg.optimization == "bilevel-1st":
        w_part, a_part = ts.split_windows(data.train, cfg.search_fraction)
    else:
        w_part, a_part = data.train, None
    for part in (w_part, a_part):
        if part is not None and len(part) < cfg.batch_size:
            raise ValueError(f"{data.name}: the {part.name!r} part has {len(part)} examples, fewer than "
                             f"batch_size {cfg.batch_size}")
    k_w, k_a = jax.random.split(jax.random.fold_in(jax.random.key(cfg.seed), 7))

    def batch(part, k, i):
        return ts.window_batch(part, ts.sample_targets(part, jax.random.fold_in(k, i), cfg.batch_size))

    def make_model(spec):
        return Forecaster(grow.GrowRecurrentCell(spec), data.n_series, highway_window=cfg.highway_window)

    def evaluate(model, variables, weights):
        predict = F.make_predict(model)
        return {split: F.evaluate_forecast(predict, variables, getattr(data, split), data.scale, weights,
                                           False, cfg.eval_batch_size) for split in ("valid", "test")}

    sample_x, _ = ts.window_batch(data.train, data.train.targets[:2])
    probe_x, _ = ts.window_batch(data.valid, data.valid.targets[: min(16, len(data.valid))])
    task = _Task(
        make_model=make_model, sample_x=sample_x, probe_x=probe_x,
        loss_fn=F.make_loss(cfg.loss, data.scale),
        train_batch=lambda i: batch(w_part, k_w, i),
        val_batch=None if a_part is None else (lambda i: batch(a_part, k_a, i)),
        evaluate=evaluate,
        info={"task": "forecast", "dataset": data.name, "horizon": cfg.horizon, "window": cfg.window,
              "n_series": data.n_series, "scale_from": cfg.scale_from},
    )
    return task, data


def run_growing_forecast(config: GrowForecastConfig, on_transform=None) -> dict:
    """Run a growing search on a forecasting data set (module docstring). Returns a JSON-ready dict::

        {'task', 'dataset', 'horizon', 'window', 'n_series', 'scale_from', 'schedule', 'optimization', 'steps',
         'start_spec', 'spec' (grown), 'derived' (specs as JSON: grow.spec_from_json), 'describe',
         'arch' (final logits), 'transforms' (one record per transform), 'params' (supernet),
         'train_loss': [first, last], 'valid', 'test' ({'rse', 'corr'} of the one-shot supernet, softmax weights),
         'compile_seconds' (first step of every spec), 'search_seconds', 'seconds'}

    ``on_transform(record, spec_before, state_before, spec_after, state_after)`` is called after every transform
    (host states; for inspection).
    """
    task, _ = forecast_task(config)
    return _search(config, task, "forecast", on_transform)


def lm_task(cfg: GrowLMConfig) -> tuple[_Task, Any]:
    """The language-modelling task of a config: ``(task, corpus)``."""
    corpus = ptb.load_corpus(cfg.data_dir)
    if cfg.optimization == "bilevel-1st":
        cut = int(len(corpus.train) * cfg.search_fraction)
        w_stream = ptb.batchify(corpus.train[:cut], cfg.batch_size)
        a_stream = ptb.batchify(corpus.train[cut:], cfg.batch_size)
    else:
        w_stream, a_stream = ptb.batchify(corpus.train, cfg.batch_size), None
    n_w = ptb.num_windows(w_stream, cfg.bptt, drop_remainder=True)
    n_a = None if a_stream is None else ptb.num_windows(a_stream, cfg.bptt, drop_remainder=True)
    if n_w < 1 or (n_a is not None and n_a < 1):
        raise ValueError(f"the training text holds no full window of bptt {cfg.bptt} at batch {cfg.batch_size}")
    valid_stream = ptb.batchify(corpus.valid, cfg.eval_batch_size)
    test_stream = ptb.batchify(corpus.test, cfg.eval_batch_size)

    def make_model(spec):
        return LanguageModel(grow.GrowRecurrentCell(spec), len(corpus.vocab), cfg.embed_dim,
                             tie_weights=cfg.tie_weights)

    def evaluate(model, variables, weights):
        fn = lm.make_eval_fn(model)
        return {name: lm.evaluate_lm(model, variables, stream, cfg.bptt, weights, False, cfg.eval_windows, fn)
                for name, stream in (("valid", valid_stream), ("test", test_stream))}

    task = _Task(
        make_model=make_model, sample_x=w_stream[:2, : cfg.bptt],
        probe_x=ptb.bptt_window(w_stream, 0, cfg.bptt)[0][: min(4, cfg.batch_size)],
        loss_fn=cross_entropy,
        train_batch=lambda i: ptb.bptt_window(w_stream, i % n_w, cfg.bptt),
        val_batch=None if a_stream is None else (lambda i: ptb.bptt_window(a_stream, i % n_a, cfg.bptt)),
        evaluate=evaluate,
        info={"task": "lm", "corpus": corpus.source, "vocab": len(corpus.vocab)},
    )
    return task, corpus


def run_growing_lm(config: GrowLMConfig, on_transform=None) -> dict:
    """Run a growing search on a PTB-format corpus (each window starts from the initial recurrent state, as in
    :func:`jaxnas.runners.lm.run_lm`'s searches). Returns the dict of :func:`run_growing_forecast` with
    ``'corpus'``, ``'vocab'`` instead of the data-set fields, and ``valid`` / ``test`` as
    ``{'nll', 'ppl', 'tokens'}``."""
    task, _ = lm_task(config)
    return _search(config, task, "lm", on_transform)


def load_result(path: str | Path) -> tuple[grow.RecurrentSpec, dict]:
    """``(derived spec, arch)`` from a search's ``result.json``."""
    d = json.loads(Path(path).read_text())
    return grow.spec_from_json(d["derived"]), {k: np.asarray(v) for k, v in d["arch"].items()}


__all__ = [
    "SCHEDULES", "SEARCH_MODES",
    "FixedGrowCell", "GrowForecastConfig", "GrowLMConfig", "GrowthConfig",
    "fixed_cell", "forecast_task", "frozen_weights", "lm_task", "load_result", "retrain_forecast", "retrain_lm",
    "run_growing_forecast", "run_growing_lm", "transform_events",
]
