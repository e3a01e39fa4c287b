"""Multivariate time-series forecasting with a recurrent cell: training, architecture search, evaluation.

::

    from jaxnas.runners.forecast import ForecastConfig, run_forecast
    result = run_forecast(ForecastConfig(dataset="exchange_rate", horizon=24, cell="gru", steps=2000))
    result["test"]          # {'rse': ..., 'corr': ...} on the original scale (LSTNet protocol)

Data and metrics: :mod:`jaxnas.data.timeseries` (LSTNet protocol: windows of 168 steps, chronological 60/20/20
split, per-series max-abs scaling, RSE and CORR). The model is :class:`jaxnas.nn.sequence.Forecaster` (the cell over
the window, a dense read-out and LSTNet's linear highway).

A fixed cell (``config.arch is None``) trains with Adam and global-norm clipping on random batches of the training
part, one jitted step each (:func:`jaxnas.search.make_step` in ``'weights'`` mode; the cell gets ``weights=None``).
A search cell (``config.arch`` gives the initial architecture parameters, ``key -> pytree``) is searched with
:func:`~jaxnas.search.make_step` in ``config.optimization``: in the bi-level modes (``'bilevel-1st'``,
``'bilevel-2nd'``) the training part is cut chronologically into a ``train`` part (weights) and a ``val`` part
(architecture); ``'single'`` trains both on the whole training part, ``'weights'`` only the weights. The loss (L1
or MSE) is taken on the original scale, as LSTNet does. With ``eval_every`` the valid RSE is measured during the run
and the weights (and architecture) with the best one are evaluated on the test part; otherwise the final ones.
Batches are drawn at random (without replacement within a batch) from a key folded with the step number.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnas import relax as relax_lib
from jaxnas.data import timeseries as ts
from jaxnas.search.steps import OPTIMIZATIONS, OptimConfig, SearchState, make_arch_optimizer, make_step
from jaxnas.nn.ops import count_params
from jaxnas.nn.sequence import Forecaster
from jaxnas.nn import recurrent
from jaxnas.runners import loop

LOSSES = ("l1", "mse")
CELL_KINDS = {"lstm": "LSTMCell", "gru": "GRUCell", "darts": "DartsRnnSearchCell"}  # classes of jaxnas.nn.recurrent


# ----------------------------------------------------------------------------------------------------------------
# pieces shared by the task loops (also used by jaxnas.runners.lm)


def unused_arch() -> dict:
    """The architecture parameters of a fixed cell (never read; a fresh array, since steps donate their state)."""
    return {"unused": jnp.zeros((1, 1), jnp.float32)}


def make_cell(cell: str | Callable[[int], nn.Module], hidden: int) -> nn.Module:
    """A cell from a kind (:mod:`jaxnas.nn.recurrent`: ``'lstm'``, ``'gru'``, or ``'darts'``, the DARTS recurrent search
    cell, which needs architecture parameters: ``jaxnas.registry.get_space('darts-rnn').init_arch``) or a factory
    ``hidden -> cell``."""
    if callable(cell) and not isinstance(cell, str):
        return cell(hidden)
    if cell not in CELL_KINDS:
        raise ValueError(f"unknown cell kind {cell!r}; allowed: {', '.join(CELL_KINDS)} or a factory hidden -> cell")
    return getattr(recurrent, CELL_KINDS[cell])(hidden=hidden)


def make_optimizer(lr: float, grad_clip: float | None) -> optax.GradientTransformation:
    """Global-norm clipping (when ``grad_clip``) then Adam(``lr``)."""
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be > 0 or None, got {grad_clip}")
    adam = optax.adam(lr)
    return adam if grad_clip is None else optax.chain(optax.clip_by_global_norm(grad_clip), adam)


def fixed_apply(model: nn.Module) -> Callable:
    """``model.apply`` that ignores the edge weights it is given (a fixed cell receives ``weights=None``), so
    :func:`~jaxnas.search.make_step` can train a fixed model with :func:`unused_arch`."""

    def apply(variables, x, weights, **kwargs):
        del weights
        return model.apply(variables, x, None, **kwargs)

    return apply


def eval_weights(arch, relaxation: str = "softmax") -> tuple[Any, bool]:
    """Deterministic edge weights for evaluating a searched supernet: ``(argmax one-hot, hard=True)`` after a hard
    relaxation (GDAS, SPOS), else ``(softmax(arch), False)``; ``(None, False)`` for ``arch=None``."""
    if arch is None:
        return None, False
    if relax_lib.get_relaxation(relaxation).hard:
        return relax_lib.argmax(arch), True
    return relax_lib.softmax(arch), False


def init_state(model: nn.Module, sample_x, key, w_optimizer, arch=None, a_optimizer=None) -> SearchState:
    """Initialise ``model`` (softmax weights of ``arch``, or ``None`` for a fixed cell) and build the step state."""
    k_init, k_state = jax.random.split(key)
    weights = None if arch is None else relax_lib.softmax(arch)
    variables = jax.jit(lambda k, x, w: model.init(k, x, w, train=False))(k_init, sample_x, weights)
    return SearchState.create(variables["params"], variables.get("batch_stats", {}),
                              unused_arch() if arch is None else arch, w_optimizer, a_optimizer, k_state)


def tree_to_lists(tree):
    return jax.tree_util.tree_map(lambda a: np.asarray(a).tolist(), jax.device_get(tree))


def step_mode(optimization: str) -> str:
    """The :func:`jaxnas.search.make_step` mode of a config's ``optimization`` (``weights``: the weights only)."""
    return "weights" if optimization == "weights" else OPTIMIZATIONS[optimization]


def check_search_fields(mode: str, relaxation: str, fraction: float, cell=None, arch=None) -> None:
    if isinstance(cell, str) and cell not in CELL_KINDS:
        raise ValueError(f"unknown cell kind {cell!r}; allowed: {', '.join(CELL_KINDS)} or a factory hidden -> cell")
    if cell == "darts" and arch is None:
        raise ValueError("cell kind 'darts' is a search cell: give arch (e.g. get_space('darts-rnn').init_arch)")
    if mode not in ("weights", *OPTIMIZATIONS):
        raise ValueError(f"unknown optimization {mode!r}; allowed: weights, {', '.join(OPTIMIZATIONS)}")
    relax_lib.get_relaxation(relaxation)
    if not 0 < fraction < 1:
        raise ValueError(f"search_fraction must be in (0, 1), got {fraction}")


# ----------------------------------------------------------------------------------------------------------------
# losses and evaluation


def make_loss(kind: str, scale) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``(pred, target) -> scalar``: mean absolute (``'l1'``) or squared (``'mse'``) error of scaled values brought
    back to the original scale by ``scale`` ``(n,)``."""
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; allowed: {', '.join(LOSSES)}")
    s = jnp.asarray(scale, jnp.float32)
    if kind == "l1":
        return lambda pred, y: jnp.mean(jnp.abs((pred - y) * s))
    return lambda pred, y: jnp.mean(jnp.square((pred - y) * s))


def make_predict(model: nn.Module) -> Callable:
    """Jitted ``predict(variables, x, weights, hard) -> (B, n)`` in evaluation mode."""

    @jax.jit
    def predict(variables, x, weights):
        return model.apply(variables, x, weights, train=False, hard=False)

    @jax.jit
    def predict_hard(variables, x, weights):
        return model.apply(variables, x, weights, train=False, hard=True)

    return lambda variables, x, weights=None, hard=False: (predict_hard if hard else predict)(variables, x, weights)


def predict_windows(predict, variables, w: ts.Windows, weights=None, hard: bool = False,
                    batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Scaled ``(targets, predictions)``, both ``(len(w), n)``, in time order; the last batch is padded so every call
    has one shape."""
    bs = min(batch_size, len(w))
    ys, ps = [], []
    for start in range(0, len(w), bs):
        t = w.targets[start : start + bs]
        real = len(t)
        if real < bs:
            t = np.concatenate([t, np.full(bs - real, t[-1])])
        x, y = ts.window_batch(w, t)
        ys.append(y[:real])
        ps.append(np.asarray(predict(variables, x, weights, hard))[:real])
    return np.concatenate(ys), np.concatenate(ps)


def evaluate_forecast(predict, variables, w: ts.Windows, scale, weights=None, hard: bool = False,
                      batch_size: int = 256) -> dict[str, float]:
    """RSE and CORR of split ``w`` on the original scale (:func:`jaxnas.data.timeseries.forecast_metrics`)."""
    y, p = predict_windows(predict, variables, w, weights, hard, batch_size)
    return ts.forecast_metrics(y, p, scale)


# ----------------------------------------------------------------------------------------------------------------
# the experiment


@dataclasses.dataclass(frozen=True)
class SequenceRunFields:
    """The fields forecasting and language modelling share: the search (with ``arch``) and how the run is kept.

    Attributes:
      arch: ``key -> architecture parameters`` for a search cell; None for a fixed cell.
      optimization, relaxation, temperature, a_lr, a_weight_decay, search_fraction: the search: ``weights``,
        ``single-level``, ``bilevel-1st`` or ``bilevel-2nd``; the relaxation and its temperature; the architecture
        optimizer (Adam, DARTS betas); the fraction of the training data the weights train on in the bi-level
        modes (the rest trains the architecture).
      workdir: where the run keeps ``config.json``, ``metrics.jsonl``, ``checkpoints/`` and ``result.json`` (run
        again, it resumes); None keeps nothing. log_every, checkpoint_every, keep_checkpoints, progress: as the
        other runners.
    """

    log_every: int = 50
    arch: Callable[[jax.Array], Any] | None = None
    optimization: str = "bilevel-1st"
    relaxation: str = "softmax"
    temperature: float = 1.0
    a_lr: float = 3e-3
    a_weight_decay: float = 1e-3
    search_fraction: float = 0.5
    workdir: str | None = None
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    progress: bool = True
    debug_step_delay: float = 0.0

    def check_run_fields(self) -> None:
        for name in ("log_every", "checkpoint_every", "keep_checkpoints"):
            if not int(getattr(self, name)) >= 1:
                raise ValueError(f"{type(self).__name__}.{name} must be >= 1, got {getattr(self, name)}")
        check_search_fields(self.optimization, self.relaxation, self.search_fraction, self.cell, self.arch)


@dataclasses.dataclass(frozen=True)
class ForecastConfig(SequenceRunFields):
    """One budgeted forecasting run (defaults: LSTNet's exchange-rate set-up with a GRU cell).

    Attributes:
      dataset: ``'exchange_rate'``, ``'ETTh1'`` or a CSV/txt(.gz) path.
      horizon, window: LSTNet protocol (horizons 3, 6, 12, 24; window 168).
      cell: ``'lstm'`` / ``'gru'`` / ``'darts'`` (the DARTS search cell, with ``arch``; :mod:`jaxnas.nn.recurrent`)
        or a factory ``hidden -> cell``.
      hidden: the cell's hidden size. highway_window: LSTNet's autoregressive highway (0: none).
      steps, batch_size, lr, grad_clip, loss, seed: training (Adam; random batches of the training part).
      scale_from: ``'train'`` (no leakage) or ``'all'`` (LSTNet's choice); see :mod:`jaxnas.data.timeseries`.
      eval_every: measure valid RSE every that many steps and keep the best weights (None: keep the final ones).
      The search and run fields: :class:`SequenceRunFields`.
    """

    dataset: str = "exchange_rate"
    horizon: int = 24
    window: int = ts.WINDOW
    cell: str | Callable[[int], nn.Module] = "gru"
    hidden: int = 50
    highway_window: int = 24
    steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    grad_clip: float | None = 10.0
    loss: str = "l1"
    seed: int = 0
    scale_from: str = "train"
    eval_every: int | None = None
    eval_batch_size: int = 256

    def __post_init__(self):
        self.check_run_fields()
        for name in ("horizon", "window", "hidden", "steps", "batch_size", "eval_batch_size"):
            if not int(getattr(self, name)) >= 1:
                raise ValueError(f"ForecastConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.highway_window < 0:
            raise ValueError(f"ForecastConfig.highway_window must be >= 0, got {self.highway_window}")
        if self.eval_every is not None and self.eval_every < 1:
            raise ValueError(f"ForecastConfig.eval_every must be >= 1 or None, got {self.eval_every}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; allowed: {', '.join(LOSSES)}")
        if self.seed < 0:
            raise ValueError(f"ForecastConfig.seed must be >= 0, got {self.seed}")


def make_search_step(model, config, scale, w_optimizer):
    """The jitted step of a config: ``'weights'`` mode on :func:`fixed_apply` for a fixed cell, else
    ``config.optimization`` with the architecture optimizer. Returns ``(step, a_optimizer or None)``."""
    loss_fn = make_loss(config.loss, scale)
    if config.arch is None:
        return make_step(fixed_apply(model), mode="weights", w_optimizer=w_optimizer, loss_fn=loss_fn,
                         accuracy_fn=None), None
    a_optimizer = make_arch_optimizer(OptimConfig(a_lr=config.a_lr, a_weight_decay=config.a_weight_decay))
    step = make_step(model, mode=step_mode(config.optimization), relaxation=config.relaxation, w_optimizer=w_optimizer,
                     a_optimizer=a_optimizer, loss_fn=loss_fn, accuracy_fn=None, temperature=config.temperature)
    return step, a_optimizer


class SequenceTask(loop.Task):
    """What forecasting and language modelling share on top of :class:`jaxnas.runners.loop.Task`: the first and
    last training loss, the first step's time, and with ``eval_every`` a valid score every that many steps and the
    best-so-far state. The state is a dict: ``'run'`` (the step state), task extras (the LM's ``'carry'``) and,
    with ``eval_every``, ``'best'``, so a resumed run keeps the best weights too."""

    score: str = "rse"  # the valid metric to minimise

    def setup(self, config) -> None:
        self.cfg, self.total_steps = config, config.steps
        self.keeps_best = config.eval_every is not None
        self.best_score = self.best_step = self.first_loss = self.last_loss = self.compile_seconds = None

    def fresh(self, run_state, **extra) -> dict:
        state = {"run": run_state, **extra}
        if self.keeps_best:  # a copy with buffers of its own: the step donates the running state's
            state["best"] = jax.tree_util.tree_map(jnp.copy, run_state)
        return state

    def resume(self, state, meta):
        self.best_score, self.best_step = meta["best_score"], meta["best_step"]
        self.first_loss, self.last_loss = meta["first_loss"], meta["last_loss"]
        return state

    def meta(self):
        return {"best_score": self.best_score, "best_step": self.best_step, "first_loss": self.first_loss,
                "last_loss": self.last_loss}

    @abc.abstractmethod
    def train_step(self, state: dict, index: int) -> tuple[dict, dict]:
        """``(state, metrics)`` of the task's own step."""

    @abc.abstractmethod
    def validate(self, run_state) -> dict:
        """The valid scores of a step state (``score`` among them)."""

    def step(self, state, index):
        t_step = time.time()
        state, m = self.train_step(state, index)
        loss = float(m["loss"])
        if self.compile_seconds is None:
            self.compile_seconds = time.time() - t_step
        self.first_loss = loss if self.first_loss is None else self.first_loss
        self.last_loss = loss
        return state, m

    def after_step(self, state, done, epoch):
        every = self.cfg.eval_every
        if not self.keeps_best or not (done % every == 0 or done == self.total_steps):
            return state, [], False
        valid = self.validate(state["run"])
        if self.best_score is None or valid[self.score] < self.best_score:
            self.best_score, self.best_step = valid[self.score], done
            state = {**state, "best": jax.tree_util.tree_map(jnp.copy, state["run"])}
        return state, [("metrics", {"kind": "valid", "step": done, **valid})], False

    def final_state(self, state):
        return state["best"] if self.keeps_best else state["run"]

    def write_result(self, result: dict, host, run) -> dict:
        """Complete ``result`` (the searched architecture, times), log it and write ``result.json``."""
        if self.search:
            result["arch"] = tree_to_lists(host.arch)
        result["compile_seconds"] = round(self.compile_seconds or 0.0, 3)
        result["seconds"] = round(run.seconds(), 3)
        run.log({"kind": "final", **{k: result[k] for k in ("valid", "test", "best_step")}})
        run.write_json("result.json", result)
        return result

    def summary(self) -> dict:
        return {"train_loss": [self.first_loss, self.last_loss],
                "best_step": self.best_step if self.keeps_best else self.total_steps}


def host_variables(st, search: bool, relaxation: str):
    """``(host state, variables, eval weights, hard)`` of a step state, for evaluation."""
    host = jax.device_get(st)
    variables = {"params": host.params, **({"batch_stats": host.batch_stats} if host.batch_stats else {})}
    weights, hard = eval_weights(host.arch if search else None, relaxation)
    return host, variables, weights, hard


class ForecastTask(SequenceTask):
    """One forecasting run (training or search), as a :class:`jaxnas.runners.loop.Task`."""

    kind = "forecast"

    def __init__(self, config: ForecastConfig):
        cfg = config
        self.setup(cfg)
        self.data = d = ts.load_forecast(cfg.dataset, window=cfg.window, horizon=cfg.horizon, scale_from=cfg.scale_from)
        self.search = cfg.arch is not None
        if self.search and cfg.optimization.startswith("bilevel"):
            self.w_part, self.a_part = ts.split_windows(d.train, cfg.search_fraction)
        else:
            self.w_part, self.a_part = d.train, None
        for part in (self.w_part, self.a_part):
            if part is not None and len(part) < cfg.batch_size:
                raise ValueError(f"{d.name}: the {part.name!r} part has {len(part)} examples, fewer than "
                                 f"batch_size {cfg.batch_size}")
        self.config = {**loop.config_json(cfg), "data": d.name}
        self.identity = loop.identity_of(self.config)
        self.advice = f"Lower lr ({cfg.lr}) or check the data"
        self.model = Forecaster(make_cell(cfg.cell, cfg.hidden), d.n_series, highway_window=cfg.highway_window)
        self.k_init, self.k_arch, self.k_w, self.k_a = jax.random.split(jax.random.key(cfg.seed), 4)
        self.w_optimizer = make_optimizer(cfg.lr, cfg.grad_clip)
        self.step_fn, self.a_optimizer = make_search_step(self.model, cfg, d.scale, self.w_optimizer)
        self.predict = make_predict(self.model)

    def init(self):
        cfg, d = self.cfg, self.data
        sample_x, _ = ts.window_batch(d.train, d.train.targets[:2])
        state = init_state(self.model, sample_x, self.k_init, self.w_optimizer,
                           cfg.arch(self.k_arch) if self.search else None, self.a_optimizer)
        return self.fresh(state), []

    def _batch(self, part, key, i):
        return ts.window_batch(part, ts.sample_targets(part, jax.random.fold_in(key, i), self.cfg.batch_size))

    def train_step(self, state, index):
        val = self._batch(self.a_part, self.k_a, index) if self.a_part is not None else None
        run_state, m = self.step_fn(state["run"], self._batch(self.w_part, self.k_w, index), val)
        return {**state, "run": run_state}, m

    def _evaluate(self, st, part):
        _, variables, weights, hard = host_variables(st, self.search, self.cfg.relaxation)
        return evaluate_forecast(self.predict, variables, part, self.data.scale, weights, hard,
                                 self.cfg.eval_batch_size)

    def validate(self, run_state):
        return self._evaluate(run_state, self.data.valid)

    def finish(self, state, run):
        cfg, d = self.cfg, self.data
        final = self.final_state(state)
        host = jax.device_get(final)
        result = {
            "dataset": d.name, "horizon": cfg.horizon, "window": cfg.window, "n_series": d.n_series,
            "scale_from": cfg.scale_from, "params": count_params(host.params), "steps": cfg.steps,
            "search": self.search, "train_loss": self.summary()["train_loss"],
            "valid": self._evaluate(final, d.valid), "test": self._evaluate(final, d.test),
            "best_step": self.summary()["best_step"],
        }
        return self.write_result(result, host, run)


def sequence_loop_options(cfg) -> loop.LoopOptions | None:
    """Loop options of a forecasting or language-modelling config (None: no workdir, nothing is kept)."""
    if cfg.workdir is None:
        return None
    return loop.LoopOptions(workdir=cfg.workdir, checkpoint_every=cfg.checkpoint_every,
                            keep_checkpoints=cfg.keep_checkpoints, log_every=cfg.log_every, progress=cfg.progress,
                            debug_step_delay=cfg.debug_step_delay)


def run_forecast(config: ForecastConfig) -> dict:
    """Train (or search) and evaluate one forecaster, resumable in ``config.workdir``; returns a JSON-ready dict
    (also ``result.json`` in the workdir)::

        {'dataset', 'horizon', 'window', 'n_series', 'params', 'steps', 'search',
         'train_loss': [first, last], 'valid': {'rse', 'corr'}, 'test': {'rse', 'corr'}, 'best_step',
         'arch' (searches only), 'seconds', 'compile_seconds'}
    """
    result, _ = loop.run_somewhere(ForecastTask(config), sequence_loop_options(config),
                                   checkpoint_every=config.steps, log_every=config.log_every, progress=config.progress)
    return result


__all__ = [
    "CELL_KINDS", "LOSSES",
    "ForecastConfig", "ForecastTask", "SequenceRunFields", "SequenceTask",
    "count_params", "eval_weights", "evaluate_forecast", "fixed_apply", "init_state", "make_cell", "make_loss",
    "make_optimizer", "make_predict", "make_search_step", "predict_windows", "run_forecast", "tree_to_lists",
    "unused_arch",
]
