"""The one resumable loop: every long job of jaxnas (image search, growing search, retraining, forecasting, language
modelling, recurrent growth) is a :class:`Task` run by :func:`run`.

The loop owns what every run needs: the workdir's identity (``config.json``; a different config in the same workdir
is refused), ``metrics.jsonl`` and the task's other JSON-lines logs, checkpoints (orbax, the newest ``keep``) with
the logs' lengths and the epoch's running sums in their metadata, resume from the newest readable checkpoint (the
logs are cut back to it, so a resumed run ends bit-identical to an uninterrupted one), the NaN stop (the last good
checkpoint is kept), the progress bar, and multi-process runs (process 0 alone writes files).

A task says what one step is and what happens around it::

    class Task(abc.ABC):
        kind = "search"               # config.json's kind; the progress bar's label
        total_steps, steps_per_epoch  # steps_per_epoch None: no epoch records
        config, identity              # config.json's config; the fields a resumed run must match
        logs = ("genotypes",)         # extra logs beside metrics.jsonl
        def init(self) -> state                      # a fresh state (the task may write first records)
        def template(self, meta) -> state            # restore template, from the checkpoint's task meta
        def resume(self, state, meta) -> state       # re-read the task's own values from the checkpoint
        def meta(self) -> dict                       # the task's own values, saved with every checkpoint
        def step(self, state, index) -> (state, metrics)      # index: the global step; batches follow from it
        def epoch_fields(self, state, epoch) -> dict          # added to each epoch record
        def after_step(self, state, done, epoch) -> (state, records, save_now)  # events (growth, evaluation)
        def stopped(self) -> bool                             # end the run early (checked after every step)
        def finish(self, state, run) -> result                # final outputs
        first_step = 0                                        # where a fresh run starts (a run that continues
                                                              # another's saved state starts after it)

:class:`Task` gives the no-op defaults.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
try:  # progress bars; a run without tqdm installed (a bare accelerator image) just has none
    from tqdm import tqdm
except ImportError:  # pragma: no cover - tqdm is a dependency
    tqdm = None

from jaxnas.io.checkpoint import Checkpoints
from jaxnas.platform import settings


# config fields that say how a run is kept, not what it computes: they may differ when a run is resumed
RUN_FIELDS = ("workdir", "checkpoint_every", "keep_checkpoints", "log_every", "progress", "debug_step_delay", "verbose",
              "tensorboard")


def identity_of(config: dict, also_ignore: tuple[str, ...] = ()) -> dict:
    """The fields of a config dict that define what a run computes (compared when it resumes)."""
    return {k: v for k, v in config.items() if k not in RUN_FIELDS + tuple(also_ignore)}


class DivergedError(RuntimeError):
    """A loss became NaN or infinite; the run stopped and its last good checkpoint is kept."""


@dataclasses.dataclass(frozen=True)
class LoopOptions:
    """How a run is kept: where, how often it checkpoints and logs, whether it shows progress, whether it also
    writes TensorBoard event files (``workdir/tensorboard``; needs the ``tensorboard`` extra: tensorboardX)."""

    workdir: str
    checkpoint_every: int = 25
    keep_checkpoints: int = 2
    log_every: int = 5
    progress: bool = True
    debug_step_delay: float = 0.0  # test hook: sleep after every step
    tensorboard: bool = False

    def __post_init__(self):
        if not isinstance(self.workdir, str) or not self.workdir:
            raise ValueError(f"workdir must be a non-empty path, got {self.workdir!r}")
        for name in ("checkpoint_every", "keep_checkpoints", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Run:
    """What :meth:`Task.finish` and the caller learn about the run."""

    workdir: Path
    total_steps: int  # the steps run: the task's total, or fewer when it stopped early (Task.stopped)
    resumed_from: int | None
    started: float
    is_writer: bool

    def seconds(self) -> float:
        return time.time() - self.started

    def last_epoch(self, keys: tuple[str, ...] | None = None) -> dict:
        """The last epoch record of metrics.jsonl (only ``keys``, if given)."""
        last = {}
        path = self.workdir / "metrics.jsonl"
        if path.exists():
            with open(path) as f:
                for line in f:
                    rec = json.loads(line)
                    if rec.get("kind") == "epoch":
                        last = rec
        return {k: v for k, v in last.items() if keys is None or k in keys}

    def write_json(self, name: str, obj) -> None:
        if self.is_writer:
            write_json(self.workdir / name, obj)

    def log(self, record: dict) -> None:
        if self.is_writer:
            JsonLines(self.workdir / "metrics.jsonl").write(record)


class Task(abc.ABC):
    """The defaults of the task protocol (see the module docstring)."""

    kind: str = "run"
    total_steps: int = 0
    steps_per_epoch: int | None = None
    config: dict = {}
    identity: dict = {}
    logs: tuple[str, ...] = ()
    advice: str = "Lower the learning rate or check the data"
    identity_defaults: dict = {}  # identity fields added later: a run saved without one had this value
    first_step: int = 0  # a fresh run starts at this global step (a run continuing another's state mid-way)

    @abc.abstractmethod
    def init(self) -> tuple[Any, list[tuple[str, dict]]]:
        """A fresh state, and ``(log name, record)`` pairs to write first."""

    def template(self, meta: dict):
        return self.init()[0]

    def resume(self, state, meta: dict):
        return state

    def meta(self) -> dict:
        return {}

    def place(self, state):
        return jax.device_put(state)

    @abc.abstractmethod
    def step(self, state, index: int):
        """``(state, metrics)`` after step ``index`` (the global step: the task derives its batches from it)."""

    def epoch_fields(self, state, epoch: int) -> dict:
        return {}

    def after_step(self, state, done: int, epoch: int | None):
        return state, [], False

    def stopped(self) -> bool:
        """True once the task has decided to end early (e.g. an early-stopping rule); the loop then checkpoints and
        finishes. A task that stops must keep that decision in :meth:`meta`, so that its resumed run stops too."""
        return False

    def progress_fields(self, metrics: dict, epoch: int | None) -> dict:
        out = {} if epoch is None else {"ep": epoch}
        out.update({k: f"{metrics[k]:.3f}" for k in ("loss", "accuracy", "val_accuracy") if k in metrics})
        return out

    @abc.abstractmethod
    def finish(self, state, run: Run):
        """The final outputs (files through ``run``), returned to the caller of :func:`run`."""


# ----------------------------------------------------------------------------------------------------------------
# files


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as JSON atomically (a temporary file, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)


class JsonLines:
    """An append-only JSON-lines file that can be cut back to a checkpointed length."""

    def __init__(self, path: Path):
        self.path = path

    def truncate(self, size: int) -> None:
        if not self.path.exists():
            self.path.touch()
        with open(self.path, "r+b") as f:
            f.truncate(size)

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record, default=float) + "\n")


def differences(saved: dict, new: dict, defaults: dict | None = None) -> list[str]:
    """``field: saved -> new`` for every field that differs; a field missing on one side counts as its value in
    ``defaults`` (fields added after a run was written), else as missing."""
    defaults = defaults or {}
    saved, new = json.loads(json.dumps(saved)), json.loads(json.dumps(new))  # tuples and lists compare equal

    def get(d, k):
        return d.get(k, defaults.get(k, "<missing>"))

    return [f"{k}: {get(saved, k)!r} -> {get(new, k)!r}" for k in sorted(set(saved) | set(new)) if get(saved, k) != get(new, k)]


def check_workdir(workdir: Path, kind: str, identity: dict, config: dict, defaults: dict | None = None) -> None:
    """Refuse a workdir holding a ``kind`` run whose identity differs (or a run of another kind); for a new workdir
    write ``config.json`` (``{"kind", "identity", "config"}``)."""
    path = workdir / "config.json"
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path} is unreadable ({e}); use another --workdir or delete it") from None
        if saved.get("kind") != kind:
            raise ValueError(f"workdir {workdir} holds a {saved.get('kind')} run, not a {kind}; use another --workdir")
        diffs = differences(json.loads(json.dumps(saved.get("identity", {}))), json.loads(json.dumps(identity)),
                            defaults)
        if diffs:
            raise ValueError(f"workdir {workdir} holds a {kind} run with a different config ({'; '.join(diffs)}); "
                             "use another --workdir, or delete that one to start over")
        return
    workdir.mkdir(parents=True, exist_ok=True)
    write_json(path, {"kind": kind, "identity": identity, "config": config})


def plain_value(value):
    """A config value as JSON-ready text that is the same in every process: a function by its qualified name (and
    the object it is bound to), never by its address."""
    if callable(value) and not isinstance(value, type):
        bound = getattr(value, "__self__", None)
        name = f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__name__)}"
        return name if bound is None else f"{name} of {bound!r}"
    return value


def config_json(config) -> dict:
    """A flat frozen-dataclass config as a JSON-ready dict (functions by name: :func:`plain_value`)."""
    return {f.name: plain_value(getattr(config, f.name)) for f in dataclasses.fields(config)}


def report(msg: str) -> None:
    """One line on stderr that does not break a progress bar."""
    if tqdm is None:
        print(msg, file=sys.stderr, flush=True)
    else:
        tqdm.write(msg, file=sys.stderr)


def host(tree):
    """``tree`` in host memory. Arrays replicated over the devices of several processes are read from this
    process's first shard (every shard holds the same values)."""
    def get(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            x = x.addressable_data(0)
        return jax.device_get(x)

    return jax.tree_util.tree_map(get, tree)


def scalars(metrics) -> dict[str, float]:
    return {k: float(np.asarray(v)) for k, v in host(metrics).items()}


class TensorBoardLog:
    """The numbers of the metrics records as TensorBoard scalars (``step/loss``, ``epoch/val_accuracy``,
    ``morph/params``, ...), for watching a long run live; ``start`` > 0 (a run resumed from the checkpoint at that
    step) drops the events a killed run wrote after its checkpoint, as the JSON logs are cut back to it."""

    SKIP = ("step", "epoch", "time")

    def __init__(self, directory: Path, start: int = 0):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ValueError("tensorboard event files need tensorboardX: pip install 'jaxnas[tensorboard]'") from None
        # a file of its own per (re)start: two starts within a second would otherwise share a name; TensorBoard
        # drops the older files' events from ``purge_step`` on
        self.writer = SummaryWriter(logdir=str(directory), purge_step=start + 1 if start else None, flush_secs=10,
                                    filename_suffix=f".from{start:09d}")

    def write(self, record: dict) -> None:
        step = record.get("step")
        if not isinstance(step, int):
            return
        kind = record.get("kind", "step")
        for key, value in record.items():
            if key not in self.SKIP and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                self.writer.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        self.writer.close()


# ----------------------------------------------------------------------------------------------------------------
# the loop


def run(task: Task, options: LoopOptions):
    """Run (or resume) ``task`` in ``options.workdir``; returns ``(result, run)``: what ``task.finish`` returned and
    the :class:`Run` (``run.resumed_from`` is the step a resumed run started at, None for a fresh one)."""
    started = time.time()
    workdir = Path(options.workdir)
    is_writer = jax.process_index() == 0
    identity = json.loads(json.dumps(task.identity, default=repr))
    if is_writer:
        check_workdir(workdir, task.kind, identity, json.loads(json.dumps(task.config, default=repr)),
                      task.identity_defaults)
    total, spe = int(task.total_steps), task.steps_per_epoch
    logs = {"metrics": JsonLines(workdir / "metrics.jsonl"), **{n: JsonLines(workdir / f"{n}.jsonl") for n in task.logs}}
    ckpts = Checkpoints(workdir / "checkpoints", keep=options.keep_checkpoints, report=report)

    def check_meta(meta):
        diffs = differences(meta.get("identity", {}), identity, task.identity_defaults)
        if diffs:
            raise ValueError(f"checkpoint in {workdir} was written by a different {task.kind} config "
                             f"({'; '.join(diffs)})")

    board = None

    def write(name: str, record: dict) -> None:
        if is_writer:
            logs[name].write(record)
            if board is not None and name == "metrics":
                board.write(record)

    found = ckpts.restore_latest(lambda meta: task.template(meta.get("task", {})), check=check_meta)
    if found is not None:
        meta = found.meta
        start, sums = int(meta["global_step"]), dict(meta["epoch_sums"])
        if "_count" in sums and not any(k.startswith("#") for k in sums):  # saved before the per-metric counts
            sums.update({"#" + k: sums["_count"] for k in list(sums) if k != "_count"})
        state = task.resume(found.state, meta.get("task", {}))
        if is_writer:
            for name, log in logs.items():
                log.truncate(int(meta["log_bytes"].get(name, 0)))
        resumed_from = start
        report(f"resuming {workdir} from step {start}/{total} ({found.path})")
    else:
        state, records = task.init()
        start, sums, resumed_from = int(task.first_step), {}, None
        if is_writer:
            for log in logs.values():
                log.truncate(0)
        for name, record in records:
            write(name, record)
    if options.tensorboard and is_writer:
        board = TensorBoardLog(workdir / "tensorboard", start)
    state = task.place(state)

    def save(done: int) -> None:
        if is_writer:
            ckpts.save(done, host(state), {"identity": identity, "global_step": done, "epoch_sums": sums,
                                     "log_bytes": {n: log.size() for n, log in logs.items()}, "task": task.meta()})

    show = options.progress and settings.current().progress
    bar = tqdm(total=total, initial=start, desc=task.kind, unit="step", file=sys.stderr, dynamic_ncols=True,
               mininterval=0.5) if show and is_writer and tqdm is not None else None
    finished = start  # steps done so far (fewer than total when the task stops early)
    try:
        for g in range(start, total):
            if task.stopped():  # a resumed run of a task that had stopped
                break
            epoch = g // spe if spe else None
            state, m = task.step(state, g)
            m = scalars(m)
            bad = [k for k in ("loss", "val_loss") if k in m and not math.isfinite(m[k])]
            if bad:
                kept = ckpts.steps()
                last = f"the last good checkpoint is step {kept[-1]} in {ckpts.directory}" if kept else \
                    "no checkpoint had been written yet"
                where = f"step {g}" + (f" (epoch {epoch}, step {g % spe} of {spe})" if spe else "")
                raise DivergedError(f"{bad[0]} is {m[bad[0]]} at {where}; the {task.kind} stopped and {last}. "
                                    f"{task.advice}")
            for k, v in m.items():  # a metric some steps lack (e.g. val_loss under a schedule) averages its own
                sums[k] = sums.get(k, 0.0) + v
                sums["#" + k] = sums.get("#" + k, 0.0) + 1
            sums["_count"] = sums.get("_count", 0.0) + 1
            done = finished = g + 1
            if done % options.log_every == 0:
                write("metrics", {"kind": "step", "step": done, **({"epoch": epoch} if spe else {}), **m,
                                  "time": round(time.time() - started, 3)})
            ended = epoch if spe and done % spe == 0 else None
            if ended is not None:
                n = max(sums.pop("_count", 1.0), 1.0)
                means = {k: v / max(sums.get("#" + k, n), 1.0) for k, v in sums.items() if not k.startswith("#")}
                write("metrics", {"kind": "epoch", "epoch": ended, "step": done, **means,
                                  **task.epoch_fields(state, ended), "time": round(time.time() - started, 3)})
                sums = {}
            state, records, save_now = task.after_step(state, done, ended)
            for name, record in records:
                write(name, record)
            stop = task.stopped()
            if save_now or stop or done % options.checkpoint_every == 0 or done == total:
                save(done)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(task.progress_fields(m, epoch), refresh=False)
            if options.debug_step_delay:
                time.sleep(options.debug_step_delay)
            if stop:
                break
    finally:
        if bar is not None:
            bar.close()
        if board is not None:
            board.close()
        ckpts.close()
    info = Run(workdir, finished, resumed_from, started, is_writer)
    return task.finish(state, info), info


def run_somewhere(task: Task, options: LoopOptions | None, **option_fields):
    """:func:`run` in ``options.workdir``, or (``options`` None) in a temporary folder removed afterwards: a run
    that keeps no files (a library call with ``workdir=None``)."""
    if options is not None:
        return run(task, options)
    with tempfile.TemporaryDirectory(prefix="jaxnas-run-") as tmp:
        return run(task, LoopOptions(workdir=tmp, **option_fields))


__all__ = ["RUN_FIELDS", "DivergedError", "JsonLines", "TensorBoardLog", "identity_of", "LoopOptions", "Run", "Task", "check_workdir", "config_json", "differences",
           "host", "plain_value", "report", "run", "run_somewhere", "scalars", "write_json"]
