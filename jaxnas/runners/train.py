"""Train a derived network from scratch and report its test accuracy (``jaxnas train``).

::

    from jaxnas.runners.train import TrainConfig, train_and_evaluate, load_genotype
    space, genotype = load_genotype("runs/search/genotype.json")
    result = train_and_evaluate(TrainConfig(genotype=space.to_json(genotype), epochs=2, workdir="runs/train"))
    print(result.test_accuracy)

NB201 genotypes train an :class:`jaxnas.nn.networks.NB201Network`; DARTS genotypes a
:class:`jaxnas.nn.networks.NetworkCIFAR` with the auxiliary head (loss weight ``auxiliary_weight``, 0.4 as in DARTS)
and drop-path whose probability grows linearly from 0 to ``drop_path`` over the epochs. SGD with momentum and
weight decay, cosine learning rate, gradient clipping, crop + flip + cutout augmentation.

The workdir gets ``config.json``, ``metrics.jsonl`` (step and epoch records), ``checkpoints/`` (resumable, same rules
as a search: same config or refused; an unreadable checkpoint is reported and the previous one used; a NaN loss
stops the run and keeps the last good checkpoint) and ``result.json`` with the test accuracy.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnas import registry
from jaxnas.platform import settings, xla
from jaxnas.nn.ops import count_params
from jaxnas.runners import loop
from jaxnas.runners.search import fit_images, loop_options
from jaxnas.search.steps import accuracy, cross_entropy
from jaxnas import data

NON_IDENTITY_FIELDS = ("inject_nan_at",)  # beside loop.RUN_FIELDS


def parse_any(text: str):
    """``(space, genotype)`` of the first registered image space whose ``parse`` takes ``text``."""
    errors = []
    for name in registry.space_names("image"):
        space = registry.get_space(name)
        try:
            return space, space.parse(text)
        except ValueError as e:
            errors.append(f"{name}: {e}")
    raise ValueError(f"{text[:80]!r} is not a genotype of any registered image space ({'; '.join(errors)})")


def load_genotype(source: str | dict):
    """``(space, genotype)`` from a search's ``genotype.json`` (or any JSON file / object with a ``space`` key and a
    ``genotype`` or the genotype's own fields), an NB201 arch string, or a published DARTS name (``DARTS_V2``)."""
    data = source
    if isinstance(source, str):
        text = source.strip()
        path = Path(text)
        if text.endswith(".json") or (not text.startswith(("{", "|")) and path.exists()):
            if not path.is_file():
                raise FileNotFoundError(f"genotype file not found: {path}")
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError as e:
                raise ValueError(f"genotype file {path} is not valid JSON: {e}") from None
        elif text.startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"malformed genotype JSON: {e}") from None
        else:  # a space's own text form (an NB201 arch string, a published DARTS name, ...)
            return parse_any(text)
    if not isinstance(data, dict):
        raise ValueError(f"a genotype must be a JSON object, got {type(data).__name__}")
    inner = data.get("genotype", data)
    if not isinstance(inner, dict):
        raise ValueError("the 'genotype' entry must be a JSON object")
    name = inner.get("space", data.get("space"))
    if name is None:
        raise ValueError(f'a genotype JSON object needs a "space" key ({", ".join(registry.space_names())})')
    space = registry.get_space(name)
    if name == registry.GrownConvSpace.name:  # its JSON is the search's genotype.json itself
        return space, space.from_json(data)
    return space, space.from_json({**inner, "space": name})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training of one derived network. Defaults are small (a couple of minutes on a laptop CPU); the DARTS paper
    setting is ``width=36, depth=20, epochs=600, batch_size=96, drop_path=0.2, cutout=16`` on CIFAR-10.

    ``genotype`` is the genotype's JSON object (``space.to_json(g)``), so a resumed run is checked against the
    genotype itself, not a file name.
    """

    genotype: dict
    dataset: str = "embedded"
    image_size: int = 32
    epochs: int = 2
    steps_per_epoch: int | None = 50
    batch_size: int = 64
    width: int | None = None
    depth: int | None = None
    lr: float = 0.025
    lr_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float | None = 5.0
    auxiliary_weight: float = 0.4
    drop_path: float = 0.2
    cutout: int = 16
    augment: bool = True
    conv_impl: str = "auto"
    eval_batch_size: int = 250
    eval_examples: int | None = None
    seed: int = 0
    workdir: str = "runs/train"
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    log_every: int = 10
    progress: bool = True
    inject_nan_at: int | None = None
    debug_step_delay: float = 0.0

    def __post_init__(self):
        load_genotype(self.genotype)  # validates
        for name in ("epochs", "batch_size", "image_size", "eval_batch_size", "checkpoint_every",
                     "keep_checkpoints", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("steps_per_epoch", "width", "depth", "eval_examples"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        for name in ("lr_min", "momentum", "weight_decay", "auxiliary_weight", "drop_path", "cutout"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.drop_path >= 1:
            raise ValueError(f"drop_path must be < 1, got {self.drop_path}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.conv_impl not in settings.CONV_IMPLS:
            raise ValueError(f"unknown conv_impl {self.conv_impl!r}; allowed: {', '.join(settings.CONV_IMPLS)}")

    @property
    def space(self) -> str:
        return load_genotype(self.genotype)[0].name

    def sizes(self) -> registry.Sizes:
        """``width`` and ``depth``, each defaulting to the space's (:attr:`jaxnas.registry.SpaceEntry.quick_network`)."""
        return registry.get_entry(self.space).quick_network.override(self.width, self.depth)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        return loop.identity_of(self.to_json(), NON_IDENTITY_FIELDS)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    test_accuracy: float
    test_loss: float
    test_examples: int
    metrics: dict
    steps: int
    params: int
    workdir: Path
    resumed_from: int | None
    wall_time: float


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    key: jax.Array


def build_network(config: TrainConfig, num_classes: int):
    """``(network, has_auxiliary_head)`` of the config's genotype, built by its space's registry entry."""
    space, genotype = load_genotype(config.genotype)
    entry = registry.get_entry(space.name)
    auxiliary = entry.auxiliary_head and config.auxiliary_weight > 0
    model = entry.network(genotype, *config.sizes(), num_classes, auxiliary, config.conv_impl)
    return model, entry.auxiliary_head


def make_optimizer(config: TrainConfig, total_steps: int) -> optax.GradientTransformation:
    schedule = optax.cosine_decay_schedule(config.lr, max(total_steps, 1), alpha=config.lr_min / config.lr)
    parts = []
    if config.grad_clip:
        parts.append(optax.clip_by_global_norm(config.grad_clip))
    if config.weight_decay:
        parts.append(optax.add_decayed_weights(config.weight_decay))
    parts.append(optax.sgd(schedule, momentum=config.momentum or None))
    return optax.chain(*parts)


def make_train_step(model, optimizer, has_auxiliary_head: bool, auxiliary_weight: float):
    """``step(state, x, y, drop_prob) -> (state, metrics)``, jitted; ``drop_prob`` is traced, so the drop-path
    schedule changes its value every epoch without recompiling."""

    def step(state: TrainState, x, y, drop_prob: float):
        key, k_drop = jax.random.split(state.key)

        def objective(params):
            variables = {"params": params, "batch_stats": state.batch_stats}
            if has_auxiliary_head:
                (logits, aux), upd = model.apply(variables, x, train=True, drop_prob=drop_prob,
                                                 rngs={"dropout": k_drop}, mutable=["batch_stats"])
            else:
                logits, upd = model.apply(variables, x, train=True, mutable=["batch_stats"])
                aux = None
            loss = cross_entropy(logits, y)
            total = loss if aux is None else loss + auxiliary_weight * cross_entropy(aux, y)
            return total, (loss, logits, upd["batch_stats"])

        (_, (loss, logits, bs)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new = state.replace(step=state.step + 1, params=params, batch_stats=bs, opt_state=opt_state, key=key)
        return new, {"loss": loss, "accuracy": accuracy(logits, y)}

    jitted = jax.jit(step, donate_argnums=(0,), compiler_options=xla.compiler_options())
    return lambda state, x, y, drop_prob: jitted(state, x, y, jnp.asarray(drop_prob, jnp.float32))


def make_eval_step(model, has_auxiliary_head: bool):
    @jax.jit
    def evaluate(params, batch_stats, x, y, mask):
        out = model.apply({"params": params, "batch_stats": batch_stats}, x, train=False)
        logits = out[0] if has_auxiliary_head else out
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        correct = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
        return jnp.sum(losses * mask), jnp.sum(correct * mask)

    return evaluate


def evaluate(eval_fn, params, batch_stats, ds, batch_size: int, limit: int | None = None) -> tuple[float, float, int]:
    """``(accuracy, loss, n)`` over the first ``limit`` examples of ``ds`` (all by default); the last batch is padded
    and masked, so one compiled function serves every batch."""
    n = len(ds) if limit is None else min(limit, len(ds))
    if n == 0:
        raise ValueError(f"{ds.name}: no test examples to evaluate on")
    bs = min(batch_size, n)
    loss_sum = correct = 0.0
    for start in range(0, n, bs):
        idx = np.arange(start, min(start + bs, n))
        x, y = ds.images[idx], ds.labels[idx]
        mask = np.ones(bs, np.float32)
        if len(idx) < bs:
            pad = bs - len(idx)
            x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
            y = np.concatenate([y, np.zeros(pad, y.dtype)])
            mask[len(idx):] = 0
        ls, c = eval_fn(params, batch_stats, x, y, mask)
        loss_sum += float(ls)
        correct += float(c)
    return correct / n, loss_sum / n, n


class TrainTask(loop.Task):
    """Training of one derived network, then its test evaluation, as a :class:`jaxnas.runners.loop.Task`."""

    kind = "train"

    def __init__(self, config: TrainConfig):
        cfg = self.cfg = config
        train = data.load_dataset(cfg.dataset, "train")
        h, w, _ = train.image_shape
        if cfg.image_size > max(h, w):
            train = data.load_dataset(cfg.dataset, "train", image_size=cfg.image_size)
        self.train = fit_images(train, cfg.image_size)
        test = data.load_dataset(cfg.dataset, "test", stats=self.train.stats,
                                 image_size=cfg.image_size if cfg.image_size > max(h, w) else None)
        self.test = fit_images(test, cfg.image_size)
        spe = data.steps_per_epoch(len(self.train), cfg.batch_size)
        if spe < 1:
            raise ValueError(f"data set {cfg.dataset!r} ({len(self.train)} examples) holds no full batch of "
                             f"{cfg.batch_size}")
        if cfg.steps_per_epoch is not None:
            spe = min(spe, cfg.steps_per_epoch)
        self.steps_per_epoch, self.total_steps = spe, cfg.epochs * spe
        self.config, self.identity = cfg.to_json(), cfg.identity()
        self.advice = f"Lower the learning rate (lr={cfg.lr}) or check the data"
        self.model, self.has_auxiliary_head = build_network(cfg, self.train.num_classes)
        self.optimizer = make_optimizer(cfg, self.total_steps)
        self.step_fn = make_train_step(self.model, self.optimizer, self.has_auxiliary_head, cfg.auxiliary_weight)
        self.augment = data.Augment(crop_padding=4, flip=True, cutout=cfg.cutout) if cfg.augment else False

    def init(self):
        k_init, k_state = jax.random.split(jax.random.key(self.cfg.seed))
        hh, ww, cc = self.train.image_shape
        variables = jax.jit(lambda k: self.model.init({"params": k, "dropout": k},
                                                      jnp.zeros((2, hh, ww, cc), jnp.float32), train=False))(k_init)
        params = variables["params"]
        state = TrainState(jnp.zeros((), jnp.int32), params, variables.get("batch_stats", {}),
                           self.optimizer.init(params), k_state)
        return state, []

    def step(self, state, index):
        cfg = self.cfg
        epoch, i = divmod(index, self.steps_per_epoch)
        x, y = data.batch_at(self.train, cfg.seed, epoch, i, cfg.batch_size, self.augment)
        if cfg.inject_nan_at is not None and index == cfg.inject_nan_at:
            x = np.full_like(x, np.nan)
        drop_prob = float(cfg.drop_path * epoch / cfg.epochs) if self.has_auxiliary_head else 0.0
        state, m = self.step_fn(state, x, y, drop_prob)
        return state, {**m, "drop_prob": drop_prob}

    def finish(self, state, run):
        cfg = self.cfg
        eval_fn = make_eval_step(self.model, self.has_auxiliary_head)
        host = jax.device_get(state)
        acc, loss, n = evaluate(eval_fn, host.params, host.batch_stats, self.test, cfg.eval_batch_size,
                                cfg.eval_examples)
        n_params = count_params(host.params)
        last_epoch = run.last_epoch(("epoch", "loss", "accuracy"))
        space, genotype = load_genotype(cfg.genotype)
        result = {
            "test_accuracy": acc, "test_loss": loss, "test_examples": n, "params": n_params, "steps": run.total_steps,
            "space": space.name, "arch": space.format(genotype), "genotype": space.to_json(genotype),
            "train_last_epoch": last_epoch, "dataset": cfg.dataset,
        }
        run.log({"kind": "final", "step": run.total_steps, "test_accuracy": acc, "test_loss": loss,
                 "time": round(run.seconds(), 3)})
        run.write_json("result.json", result)
        return acc, loss, n, last_epoch, n_params


def train_and_evaluate(config: TrainConfig) -> TrainResult:
    """Train (or resume training) the config's network in ``config.workdir``; write and return the test result."""
    (acc, loss, n, last_epoch, n_params), run = loop.run(TrainTask(config), loop_options(config))
    return TrainResult(acc, loss, n, last_epoch, run.total_steps, n_params, run.workdir, run.resumed_from,
                       run.seconds())


__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "build_network",
    "evaluate",
    "load_genotype",
    "make_optimizer",
    "make_train_step",
    "train_and_evaluate",
]
