"""Searches made of several runs: P-DARTS (Chen, Xie, Wu, Tian, ICCV 2019), progressive stages that deepen the
supernet while pruning its op set, and RobustDARTS's DARTS-ADA (Zela et al., ICLR 2020; :func:`run_adaptive`).

::

    from jaxnas.runners.progressive import run_progressive
    from jaxnas.runners.search import METHODS, SearchConfig
    result = run_progressive(SearchConfig(space="darts", workdir="runs/pdarts", **METHODS["pdarts"]))

Stage ``k`` is one ordinary search (:func:`jaxnas.runners.search.run_search`, resumable on its own) in
``WORKDIR/stage<k>``, of ``epochs`` epochs on a supernet ``stage_depths[k]`` cells deep whose edges may use only
the ops the previous stage kept (``keep_ops``; all of them in stage 0), with skip-connect dropout
``stage_skip_dropout[k]``. After it every edge keeps its ``stage_ops[k]`` strongest ops by softmax weight; after
the last stage ``none`` goes first. The authors' code builds each stage's network and architecture parameters
afresh (it does not carry weights between stages, whose depths differ): so does this runner, so a stage change does
not preserve the supernet's function; what carries over is the op set. The final cell is the DARTS rule on the
last stage's weights; then, while its normal cell has more than ``max_skips`` skip connections, the weakest of
them is removed and the cell derived again (the authors' ``delete_min_sk_prob`` / ``keep_1_on`` /
``keep_2_branches``: weights not renormalised).

``WORKDIR`` gets ``config.json`` (the run's config; a different one is refused), ``stages.json`` (every finished
stage's kept ops and derived cell) and ``genotype.json`` (the final cell: ``jaxnas train --genotype`` reads it).
A rerun continues the first unfinished stage; finished stages are read back.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np

from jaxnas import registry
from jaxnas.runners import loop
from jaxnas.runners.search import PRUNED, SearchConfig, SearchResult, mask_arch, run_search


@dataclasses.dataclass(frozen=True)
class ProgressiveResult:
    """The final cell of a P-DARTS run, every stage's :class:`~jaxnas.runners.search.SearchResult` (``metrics``: the
    last stage's last epoch; ``steps``: all stages'), and timing."""

    genotype: object
    genotype_json: dict
    arch_string: str
    stages: tuple[SearchResult, ...]
    skips_removed: int
    metrics: dict
    steps: int
    workdir: Path
    wall_time: float


def stage_config(config: SearchConfig, k: int, keep_ops) -> SearchConfig:
    """The plain search of stage ``k``: depth ``stage_depths[k]``, the given ops, the stage's skip dropout."""
    rates = config.stage_skip_dropout or (0.0,) * len(config.stage_depths)
    return config.replace(depth=int(config.stage_depths[k]), keep_ops=keep_ops, skip_dropout=float(rates[k]),
                          stage_depths=(), stage_ops=(), stage_skip_dropout=(), max_skips=None,
                          workdir=str(Path(config.workdir) / f"stage{k}"))


def _op_entries(arch, primitives) -> list[str]:
    return [k for k, v in arch.items() if np.ndim(v) == 2 and np.shape(v)[-1] == len(primitives)]


def _softmax(a) -> np.ndarray:
    a = np.asarray(a, np.float64)
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def next_keep_ops(arch, keep_ops, primitives, keep: int, last: bool) -> dict:
    """Every edge's ``keep`` strongest ops (softmax weight; ties to the lower op index) among those it had
    (``keep_ops``, None: all), ``none`` excluded when ``last`` (unless it is all an edge has)."""
    out = {}
    for key in _op_entries(arch, primitives):
        probs = _softmax(arch[key])
        rows = []
        for e, p in enumerate(probs):
            had = list(keep_ops[key][e]) if keep_ops and key in keep_ops else list(primitives)
            candidates = [o for o in had if not (last and o == "none")] or had
            ranked = sorted(candidates, key=lambda o: (-p[primitives.index(o)], primitives.index(o)))
            rows.append(tuple(sorted(ranked[:keep], key=primitives.index)))
        out[key] = tuple(rows)
    return out


def cap_skips(space, arch, max_skips: int | None):
    """The DARTS-rule cell of ``arch`` with at most ``max_skips`` skip connections in its normal cell: while it has
    more, the weakest one's weight is set to 0 (the others are not renormalised) and the cell derived again.
    Returns ``(genotype, removed)``."""
    probs = {k: _softmax(v) if k in ("normal", "reduce") else np.asarray(v) for k, v in arch.items()}
    genotype = space.derive(probs, scores="values")
    if max_skips is None:
        return genotype, 0
    skip, removed = space.primitives.index("skip_connect"), 0
    while sum(op == "skip_connect" for op, _ in genotype.normal) > max_skips:
        edges = [space.edges.index((2 + g // space.inputs_per_node, inp))
                 for g, (op, inp) in enumerate(genotype.normal) if op == "skip_connect"]
        weakest = min(edges, key=lambda e: (probs["normal"][e, skip], e))
        probs["normal"][weakest, skip] = 0.0
        genotype, removed = space.derive(probs, scores="values"), removed + 1
    return genotype, removed


def run_progressive(config: SearchConfig) -> ProgressiveResult:
    """Run (or resume) the P-DARTS search of ``config`` (``stage_depths`` set) in ``config.workdir``."""
    if not config.stage_depths:
        raise ValueError("run_progressive runs P-DARTS stages: give stage_depths (e.g. --method pdarts), or use "
                         "run_search for one search")
    start = time.time()
    workdir = Path(config.workdir)
    identity = config.identity()
    if jax.process_index() == 0:
        loop.check_workdir(workdir, "pdarts", identity, config.to_json(), SearchConfig.identity_defaults())
    space = registry.get_space(config.space)
    keep_ops, results, records = None, [], []
    n = len(config.stage_depths)
    for k in range(n):
        cfg = stage_config(config, k, keep_ops)
        loop.report(f"P-DARTS stage {k + 1}/{n}: {cfg.depth} cells, "
                    f"{'all' if keep_ops is None else config.stage_ops[k - 1]} ops per edge, "
                    f"skip dropout {cfg.skip_dropout}")
        result = run_search(cfg)
        arch = {key: np.asarray(v) for key, v in jax.device_get(result.arch).items()}
        results.append(result)
        next_ops = next_keep_ops(arch, keep_ops, space.primitives, int(config.stage_ops[k]), last=k == n - 1)
        records.append({"stage": k, "depth": cfg.depth, "keep_ops": keep_ops, "arch": result.arch_string,
                        "steps": result.steps, "kept_after": next_ops})
        if k < n - 1:
            keep_ops = next_ops
    last = results[-1]
    final_arch = {key: np.asarray(v) for key, v in mask_arch(jax.device_get(last.arch), keep_ops,
                                                             space.primitives).items()}
    if config.max_skips is not None:
        genotype, removed = cap_skips(space, final_arch, config.max_skips)
    else:
        genotype, removed = space.derive(final_arch), 0
    g_json, g_text = space.to_json(genotype), space.format(genotype)
    if jax.process_index() == 0:
        loop.write_json(workdir / "stages.json", records)
        loop.write_json(workdir / "genotype.json", {
            "space": config.space, "genotype": g_json, "arch": g_text, "relaxation": config.relaxation,
            "optimization": config.optimization, "method": "pdarts", "stages": len(results),
            "steps": sum(r.steps for r in results), "skips_removed": removed,
            "final_metrics": last.metrics,
        })
    return ProgressiveResult(genotype, g_json, g_text, tuple(results), removed, last.metrics,
                             sum(r.steps for r in results), workdir, time.time() - start)


def leg_config(config: SearchConfig, k: int, weight_decay: float, start_from: str | None, last: bool) -> SearchConfig:
    """DARTS-ADA's leg ``k``: a RobustDARTS search at ``weight_decay`` keeping its epoch states, from ``start_from``
    (None: the start); the last leg (the weight decay at its maximum) has no early stop."""
    return config.replace(adaptive_regularization=False, early_stop=not last, keep_epoch_states=True,
                          start_from=start_from, optim=dataclasses.replace(config.optim, w_weight_decay=weight_decay),
                          workdir=str(Path(config.workdir) / f"iter{k}"))


def saved_epoch(workdir: Path, legs: int, epoch: int) -> str:
    """The newest leg's saved state after ``epoch`` (a leg that started later than it has none)."""
    for k in range(legs, 0, -1):
        folder = Path(workdir) / f"iter{k}" / "epoch_states" / str(epoch)
        if (folder / "state.npz").is_file():
            return str(folder)
    raise FileNotFoundError(f"DARTS-ADA: no leg in {workdir} saved the state after epoch {epoch}")


def run_adaptive(config: SearchConfig) -> ProgressiveResult:
    """Run (or resume) RobustDARTS's DARTS-ADA search of ``config`` (``adaptive_regularization``) in
    ``config.workdir``: leg 1 is a RobustDARTS search; when its early stop fires at epoch ``e`` returning epoch
    ``b``, leg 2 starts from the saved state after epoch ``b`` with ``reg_factor`` times the weight decay, and so
    on; once the weight decay has reached ``max_weight_decay`` the leg runs to the end without the early stop (the
    authors' train_search.py with ``--early_stop 3``: its rollback, restored optimizer and eigenvalue history, and
    the cosine schedule carried on). The final cell is the last leg's. ``stages`` in the result are the legs;
    ``WORKDIR/legs.json`` lists each leg's weight decay, start and stop."""
    if not config.adaptive_regularization:
        raise ValueError("run_adaptive runs DARTS-ADA: give adaptive_regularization (e.g. --method rdarts-ada)")
    start = time.time()
    workdir = Path(config.workdir)
    if jax.process_index() == 0:
        loop.check_workdir(workdir, "rdarts-ada", config.identity(), config.to_json(),
                           SearchConfig.identity_defaults())
    weight_decay, start_from, results, records = float(config.optim.w_weight_decay), None, [], []
    for k in range(1, 100):
        last = weight_decay >= float(config.max_weight_decay) * (1 - 1e-9)
        cfg = leg_config(config, k, weight_decay, start_from, last)
        loop.report(f"DARTS-ADA leg {k}: weight decay {weight_decay:g}"
                    + (f", from {start_from}" if start_from else "") + (" (the last: no early stop)" if last else ""))
        result = run_search(cfg)
        results.append(result)
        stop = json.loads((Path(cfg.workdir) / "genotype.json").read_text()).get("early_stop")
        records.append({"leg": k, "weight_decay": weight_decay, "start_from": start_from, "arch": result.arch_string,
                        "early_stop": stop})
        if not stop:
            break
        start_from = saved_epoch(workdir, k, int(stop["returned_epoch"]))
        weight_decay = min(weight_decay * float(config.reg_factor), float(config.max_weight_decay))
    last_result = results[-1]
    if jax.process_index() == 0:
        loop.write_json(workdir / "legs.json", records)
        loop.write_json(workdir / "genotype.json", {
            "space": config.space, "genotype": last_result.genotype_json, "arch": last_result.arch_string,
            "relaxation": config.relaxation, "optimization": config.optimization, "method": "rdarts-ada",
            "legs": len(results), "weight_decay": weight_decay, "steps": sum(r.steps for r in results),
            "final_metrics": last_result.metrics,
        })
    return ProgressiveResult(last_result.genotype, last_result.genotype_json, last_result.arch_string,
                             tuple(results), 0, last_result.metrics, sum(r.steps for r in results), workdir,
                             time.time() - start)


__all__ = ["PRUNED", "ProgressiveResult", "cap_skips", "leg_config", "next_keep_ops", "run_adaptive",
           "run_progressive", "stage_config"]
