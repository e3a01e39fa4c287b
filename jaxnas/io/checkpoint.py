"""Checkpoints of search and training state, written with orbax-checkpoint.

A checkpoint is one step directory under ``<workdir>/checkpoints/`` holding two items:

* ``state``: the leaves of a state pytree (e.g. :class:`jaxnas.search.SearchState`) as a flat ``{"00000": array, ...}``
  mapping, so any pytree (optax NamedTuples, ``None`` entries, typed PRNG keys) round-trips without orbax needing to
  know its node types. Typed PRNG keys are stored as their raw key data and re-wrapped on restore.
* ``meta``: a JSON object (the run's config, the step, running sums, log offsets; whatever the caller needs to
  resume bit-identically), plus the path and shape of every leaf, checked against the template on restore.

Orbax writes each checkpoint to a temporary directory and renames it when complete, so a process killed mid-save
leaves the previous checkpoints intact (and the half-written one is cleaned up on the next start). Only the newest
``keep`` checkpoints are kept. :meth:`Checkpoints.restore_latest` tries the newest first; a checkpoint that cannot be
read (corrupted or truncated files, leaves that do not match the template, non-finite values) is reported, moved
aside to ``<workdir>/corrupted_checkpoints/`` and the next older one is used::

    ckpts = Checkpoints(workdir / "checkpoints")
    found = ckpts.restore_latest(template_state)          # None when there is nothing to resume
    if found:
        state, meta = found.state, found.meta
    ...
    ckpts.save(step, state, meta)                          # refuses a non-finite state
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (unreadable, or not matching the state it should restore)."""


@dataclasses.dataclass(frozen=True)
class Restored:
    step: int
    state: Any
    meta: dict
    path: Path


def _is_key(leaf) -> bool:
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def flatten_state(tree) -> tuple[dict[str, np.ndarray], list[dict]]:
    """``({"00000": array, ...}, [{"path", "shape", "dtype", "key"}, ...])`` for the leaves of ``tree``."""
    arrays, described = {}, []
    for i, (path, leaf) in enumerate(jax.tree_util.tree_leaves_with_path(tree)):
        is_key = _is_key(leaf)
        value = np.asarray(jax.random.key_data(leaf) if is_key else leaf)
        arrays[f"{i:05d}"] = value
        described.append({"path": jax.tree_util.keystr(path), "shape": list(value.shape), "dtype": str(value.dtype),
                          "key": is_key})
    return arrays, described


def unflatten_state(template, arrays: dict[str, np.ndarray], described: list[dict] | None = None):
    """Inverse of :func:`flatten_state` with ``template``'s structure; CheckpointError naming a mismatch."""
    leaves, treedef = jax.tree_util.tree_flatten(template)
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(template)]
    if len(arrays) != len(leaves):
        raise CheckpointError(f"checkpoint holds {len(arrays)} arrays, the state has {len(leaves)} leaves "
                              "(a different model or optimizer?)")
    out = []
    for i, (path, leaf) in enumerate(zip(paths, leaves)):
        value = np.asarray(arrays[f"{i:05d}"])
        if described is not None and described[i]["path"] != path:
            raise CheckpointError(f"checkpoint leaf {i} is {described[i]['path']}, the state's is {path}")
        if _is_key(leaf):
            want = np.asarray(jax.random.key_data(leaf))
            if value.shape != want.shape:
                raise CheckpointError(f"checkpoint PRNG key {path} has shape {value.shape}, expected {want.shape}")
            out.append(jax.random.wrap_key_data(value.astype(want.dtype), impl=jax.random.key_impl(leaf)))
            continue
        want_shape = tuple(np.shape(leaf))
        want_dtype = np.asarray(leaf).dtype if not hasattr(leaf, "dtype") else np.dtype(leaf.dtype)
        if value.shape != want_shape:
            raise CheckpointError(f"checkpoint leaf {path} has shape {value.shape}, the state's has {want_shape}")
        if value.dtype != want_dtype:
            raise CheckpointError(f"checkpoint leaf {path} has dtype {value.dtype}, the state's has {want_dtype}")
        out.append(value)
    return jax.tree_util.tree_unflatten(treedef, out)


def all_finite(tree) -> bool:
    """True when every floating leaf of ``tree`` is finite (PRNG keys and integers are skipped)."""
    for leaf in jax.tree_util.tree_leaves(tree):
        if _is_key(leaf):
            continue
        a = np.asarray(leaf)
        if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a)):
            return False
    return True


def _quiet_orbax():
    # orbax logs every save/restore at INFO through absl; keep the console for the progress bar
    for name in ("absl", "orbax", "orbax.checkpoint"):
        logging.getLogger(name).setLevel(logging.WARNING)


class Checkpoints:
    """The checkpoints of one run: save every N steps, keep the newest ``keep``, restore the newest readable one."""

    def __init__(self, directory: str | Path, keep: int = 2, report: Callable[[str], None] | None = None):
        import orbax.checkpoint as ocp

        _quiet_orbax()
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = Path(directory).absolute()
        self.keep = keep
        self.report = report or (lambda msg: print(msg, file=sys.stderr))
        self._ocp = ocp
        self._manager = None

    # -- the orbax manager ----------------------------------------------------------------------------------------
    @property
    def manager(self):
        if self._manager is None:
            ocp = self._ocp
            this, alone = jax.process_index(), jax.process_count() > 1
            if alone:  # orbax creates the folder only for all processes together
                self.directory.mkdir(parents=True, exist_ok=True)
            options = ocp.CheckpointManagerOptions(
                max_to_keep=self.keep,
                create=not alone,
                enable_async_checkpointing=False,  # a checkpoint is complete when save() returns
                cleanup_tmp_directories=True,  # a save killed half-way leaves a temporary directory: drop it
                # several processes (multi-host): each manager works alone, no barrier with the others; the
                # runners let process 0 alone save
                multiprocessing_options=ocp.options.MultiprocessingOptions(primary_host=this, active_processes={this})
                if alone else ocp.options.MultiprocessingOptions(),
            )
            self._manager = ocp.CheckpointManager(self.directory, options=options)
        return self._manager

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first."""
        return sorted(self.manager.all_steps())

    # -- save / restore -------------------------------------------------------------------------------------------
    def save(self, step: int, state, meta: dict | None = None) -> Path:
        """Write checkpoint ``step``. Refuses (ValueError) a state with a NaN or infinite value, so a diverging
        run can never replace a good checkpoint by a bad one."""
        arrays, described = flatten_state(jax.device_get(state))
        if not all_finite(arrays):
            raise ValueError(f"refusing to checkpoint step {step}: the state holds NaN or infinite values")
        ocp = self._ocp
        full_meta = {"format": FORMAT_VERSION, "step": int(step), **(meta or {}), "leaves": described}
        self.manager.save(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(full_meta)),
            force=True,
        )
        self.manager.wait_until_finished()
        return self.directory / str(int(step))

    def restore(self, step: int, template) -> Restored:
        """Checkpoint ``step`` with ``template``'s structure; CheckpointError when it cannot be read or used.

        ``template`` may be a function ``meta -> template`` for states whose shapes are recorded in the metadata.
        """
        ocp = self._ocp
        try:
            meta = self.manager.restore(int(step), args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
            if not isinstance(meta, dict) or "leaves" not in meta:
                raise CheckpointError("its metadata lacks the leaf list")
            abstract = {
                f"{i:05d}": jax.ShapeDtypeStruct(tuple(d["shape"]), np.dtype(d["dtype"]))
                for i, d in enumerate(meta["leaves"])
            }
            arrays = self.manager.restore(
                int(step), args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
            ).state
            if callable(template):  # the state's structure depends on the checkpoint (e.g. a grown network)
                template = template(meta)
            state = unflatten_state(template, arrays, meta["leaves"])
        except CheckpointError as e:
            raise CheckpointError(f"checkpoint {self.directory / str(step)}: {e}") from e
        except Exception as e:  # orbax/tensorstore raise many kinds of errors for damaged files
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} is unreadable ({type(e).__name__}: {first[:200]})"
            ) from e
        if not all_finite(arrays):
            raise CheckpointError(f"checkpoint {self.directory / str(step)} holds NaN or infinite values")
        meta = {k: v for k, v in meta.items() if k != "leaves"}
        return Restored(int(step), state, meta, self.directory / str(step))

    def restore_latest(self, template, check: Callable[[dict], None] | None = None) -> Restored | None:
        """The newest checkpoint that can be read, or None when there is none.

        An unreadable one is reported (a warning and one line through ``report``), moved aside to
        ``corrupted_checkpoints/`` beside the checkpoint directory and the next older one is tried. ``check(meta)``
        may raise ValueError to refuse a readable checkpoint (e.g. one written by a different config); that error
        propagates unchanged.
        """
        if not self.directory.exists():
            return None
        for step in sorted(self.steps(), reverse=True):
            try:
                found = self.restore(step, template)
            except CheckpointError as e:
                moved = self._move_aside(step)
                msg = f"warning: {e}; moved it to {moved} and trying the previous checkpoint"
                warnings.warn(msg, RuntimeWarning, stacklevel=2)
                self.report(msg)
                continue
            if check is not None:
                check(found.meta)
            return found
        return None

    def _move_aside(self, step: int) -> Path:
        self.close()  # the manager caches the step list
        target_dir = self.directory.parent / "corrupted_checkpoints"
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / f"{step}-{time.strftime('%Y%m%dT%H%M%S')}"
        n = 0
        while target.exists():
            n += 1
            target = target_dir / f"{step}-{time.strftime('%Y%m%dT%H%M%S')}-{n}"
        shutil.move(str(self.directory / str(step)), str(target))
        return target


def save_arrays(path: str | Path, tree) -> Path:
    """Write the array leaves of a (nested) dict to an ``.npz``, keys joined with ``/`` (e.g. arch params)."""
    flat = {}
    for p, leaf in jax.tree_util.tree_leaves_with_path(jax.device_get(tree)):
        name = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in p) or "value"
        flat[name] = np.asarray(leaf)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **flat)
    tmp.replace(path)
    return path


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Inverse of :func:`save_arrays` for a flat dict (one level of keys)."""
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


__all__ = [
    "CheckpointError",
    "Checkpoints",
    "Restored",
    "all_finite",
    "flatten_state",
    "load_arrays",
    "save_arrays",
    "unflatten_state",
]
