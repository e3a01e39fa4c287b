"""Word-level language modelling with a recurrent cell: training, architecture search, perplexity.

::

    from jaxnas.runners.lm import LMConfig, run_lm
    result = run_lm(LMConfig(cell="lstm", hidden=200, embed_dim=200, steps=2000))   # shipped smoke corpus
    result = run_lm(LMConfig(data_dir="/data/ptb", ...))                           # the real PTB protocol
    result["test"]["ppl"]

Data: :mod:`jaxnas.data.ptb`. Without ``data_dir`` the run trains on the shipped PTB *validation* text and
evaluates on the shipped *test* text (valid = test): a smoke run, not comparable with published perplexities.

A fixed cell (``config.arch is None``) trains with truncated back-propagation through time: the training stream is
cut into ``batch_size`` rows, consecutive windows of ``bptt`` tokens are visited in order and the recurrent state is
carried from one window to the next (reset at the start of every pass), with Adam and global-norm clipping in one
jitted step. A search cell (``config.arch``: ``key -> architecture parameters``) is searched with
:func:`jaxnas.search.make_step` (``config.search_mode``, cross-entropy, no accuracy): in the bi-level modes the
training ids are cut into a first part (weights) and the rest (architecture); each window starts from the cell's
initial state (the step has no recurrent state). Evaluation carries the state over consecutive windows; perplexity
is ``exp`` of the mean per-token negative log-likelihood. No dropout: the search step passes no dropout key.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnas.data import ptb
from jaxnas.search.steps import OptimConfig, SearchState, cross_entropy, make_arch_optimizer, make_step
from jaxnas.runners.forecast import (
    RunLog,
    check_search_fields,
    count_params,
    eval_weights,
    init_state,
    make_cell,
    make_optimizer,
    tree_to_lists,
)
from jaxnas.nn.sequence import LanguageModel


# ----------------------------------------------------------------------------------------------------------------
# steps and evaluation


def make_train_step(model: LanguageModel, optimizer: optax.GradientTransformation) -> Callable:
    """Jitted ``step(state, carry, x, y) -> (state, carry, metrics)`` for a fixed cell (``weights=None``).

    ``carry`` is the recurrent state at the start of the window (its gradient is cut: truncated BPTT); the returned
    carry is the state at its end. ``state`` (a :class:`~jaxnas.search.SearchState`) is donated.
    """

    def step(state: SearchState, carry, x, y):
        key, k_drop = jax.random.split(state.key)

        def objective(params):
            variables = {"params": params, **({"batch_stats": state.batch_stats} if state.batch_stats else {})}
            (logits, new_carry), updates = model.apply(
                variables, x, None, train=True, hard=False, carry=carry, return_carry=True,
                mutable=["batch_stats"], rngs={"dropout": k_drop})
            return cross_entropy(logits, y), (new_carry, updates.get("batch_stats", state.batch_stats))

        (loss, (new_carry, bs)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, w_opt_state = optimizer.update(grads, state.w_opt_state, state.params)
        new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                                  batch_stats=bs, w_opt_state=w_opt_state, key=key)
        return new_state, jax.lax.stop_gradient(new_carry), {"loss": loss}

    return jax.jit(step, donate_argnums=(0,))


def make_eval_fn(model: LanguageModel) -> Callable:
    """Jitted ``fn(variables, carry, x, y, mask, weights, hard) -> (sum of NLL over mask, carry)``."""

    def fn(variables, carry, x, y, mask, weights, hard):
        logits, carry = model.apply(variables, x, weights, train=False, hard=hard, carry=carry, return_carry=True)
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        return jnp.sum(nll * mask), carry

    return jax.jit(fn, static_argnums=(6,))


def evaluate_lm(model: LanguageModel, variables, stream: np.ndarray, bptt: int, weights=None, hard: bool = False,
                max_windows: int | None = None, eval_fn: Callable | None = None) -> dict[str, float]:
    """Perplexity of a batchified ``stream`` ``(batch, L)``: consecutive windows of ``bptt`` tokens, the recurrent
    state carried across them (the last window is padded and masked, so one compiled function serves all).

    Returns ``{'nll': mean per-token negative log-likelihood, 'ppl': exp(nll), 'tokens': tokens scored}``; with
    ``max_windows`` only the first that many windows are scored.
    """
    eval_fn = eval_fn or make_eval_fn(model)
    n = ptb.num_windows(stream, bptt)
    if max_windows is not None:
        n = min(n, max_windows)
    carry = model.cell.initial_carry(stream.shape[0])
    total, tokens = 0.0, 0.0
    for i in range(n):
        x, y, mask = ptb.padded_window(stream, i, bptt)
        s, carry = eval_fn(variables, carry, x, y, mask, weights, hard)
        total += float(s)
        tokens += float(mask.sum())
    nll = total / tokens
    return {"nll": nll, "ppl": math.exp(nll), "tokens": int(tokens)}


# ----------------------------------------------------------------------------------------------------------------
# the experiment


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """One budgeted language-modelling run (defaults: a small LSTM model on the shipped smoke corpus).

    Attributes:
      data_dir: a directory with ``train.txt``, ``valid.txt``, ``test.txt`` (PTB format); None: the shipped files
        (train on valid.txt, evaluate on test.txt; see :mod:`jaxnas.data.ptb`).
      cell: ``'lstm'`` / ``'gru'`` / ``'darts'`` (:mod:`jaxnas.nn.recurrent`) or a factory ``hidden -> cell``;
        hidden, embed_dim, tie_weights: the model (:class:`~jaxnas.nn.sequence.LanguageModel`).
      steps, batch_size, bptt, lr, grad_clip, seed: training (Adam).
      eval_batch_size: rows of the valid/test streams; eval_windows: score only the first that many windows (None:
        all); eval_every: measure valid perplexity every that many steps and keep the best weights.
      arch, search_mode, relaxation, temperature, arch_lr, arch_weight_decay, search_fraction: the search (with
        ``arch``, a function ``key -> architecture parameters``), as in :class:`~jaxnas.runners.forecast.ForecastConfig`.
      workdir: where to write ``config.json``, ``metrics.jsonl``, ``result.json``; None writes nothing.
    """

    data_dir: str | None = None
    cell: str | Callable[[int], nn.Module] = "lstm"
    hidden: int = 200
    embed_dim: int = 200
    tie_weights: bool = True
    steps: int = 1000
    batch_size: int = 20
    bptt: int = 35
    lr: float = 1e-3
    grad_clip: float | None = 0.25
    seed: int = 0
    eval_batch_size: int = 10
    eval_windows: int | None = None
    eval_every: int | None = None
    log_every: int = 50
    arch: Callable[[jax.Array], Any] | None = None
    search_mode: str = "bilevel-1st"
    relaxation: str = "softmax"
    temperature: float = 1.0
    arch_lr: float = 3e-3
    arch_weight_decay: float = 1e-3
    search_fraction: float = 0.5
    workdir: str | None = None

    def __post_init__(self):
        for name in ("hidden", "embed_dim", "steps", "batch_size", "bptt", "eval_batch_size", "log_every"):
            if not int(getattr(self, name)) >= 1:
                raise ValueError(f"LMConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "eval_windows"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"LMConfig.{name} must be >= 1 or None, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"LMConfig.seed must be >= 0, got {self.seed}")
        check_search_fields(self.search_mode, self.relaxation, self.search_fraction, self.cell, self.arch)


def _windows(stream: np.ndarray, bptt: int, name: str) -> int:
    n = ptb.num_windows(stream, bptt, drop_remainder=True)
    if n < 1:
        raise ValueError(f"the {name} stream ({stream.shape[1]} tokens per row) holds no full window of bptt {bptt}")
    return n


def run_lm(config: LMConfig) -> dict:
    """Train (or search) and evaluate one language model; returns a JSON-ready dict (also ``result.json`` in
    ``config.workdir`` when given)::

        {'corpus', 'vocab', 'params', 'steps', 'search', 'train_loss': [first, last],
         'valid': {'nll', 'ppl', 'tokens'}, 'test': {...}, 'best_step', 'arch' (searches only), 'seconds',
         'compile_seconds'}
    """
    t0 = time.time()
    cfg = config
    corpus = ptb.load_corpus(cfg.data_dir)
    search = cfg.arch is not None
    if search and cfg.search_mode.startswith("bilevel"):
        cut = int(len(corpus.train) * cfg.search_fraction)
        w_stream = ptb.batchify(corpus.train[:cut], cfg.batch_size)
        a_stream = ptb.batchify(corpus.train[cut:], cfg.batch_size)
    else:
        w_stream, a_stream = ptb.batchify(corpus.train, cfg.batch_size), None
    n_w = _windows(w_stream, cfg.bptt, "train")
    n_a = _windows(a_stream, cfg.bptt, "architecture") if a_stream is not None else None
    valid_stream = ptb.batchify(corpus.valid, cfg.eval_batch_size)
    test_stream = ptb.batchify(corpus.test, cfg.eval_batch_size)

    cell = make_cell(cfg.cell, cfg.hidden)
    model = LanguageModel(cell, len(corpus.vocab), cfg.embed_dim, tie_weights=cfg.tie_weights)
    k_init, k_arch = jax.random.split(jax.random.key(cfg.seed))
    w_optimizer = make_optimizer(cfg.lr, cfg.grad_clip)
    a_optimizer = None
    if search:
        a_optimizer = make_arch_optimizer(OptimConfig(a_lr=cfg.arch_lr, a_weight_decay=cfg.arch_weight_decay))
        step = make_step(model, mode=cfg.search_mode, relaxation=cfg.relaxation, w_optimizer=w_optimizer,
                         a_optimizer=a_optimizer, loss_fn=cross_entropy, accuracy_fn=None,
                         temperature=cfg.temperature)
    else:
        step = make_train_step(model, w_optimizer)
    state = init_state(model, w_stream[:2, : cfg.bptt], k_init, w_optimizer, cfg.arch(k_arch) if search else None,
                       a_optimizer)
    eval_fn = make_eval_fn(model)
    log = RunLog(cfg.workdir, {**dataclasses.asdict(cfg), "corpus": corpus.source})

    def evaluate(st, stream):
        host = jax.device_get(st)
        variables = {"params": host.params, **({"batch_stats": host.batch_stats} if host.batch_stats else {})}
        weights, hard = eval_weights(host.arch if search else None, cfg.relaxation)
        return host, evaluate_lm(model, variables, stream, cfg.bptt, weights, hard, cfg.eval_windows, eval_fn)

    carry = None
    best = None  # (valid nll, step, host state)
    first_loss = last_loss = compile_seconds = None
    for i in range(cfg.steps):
        j = i % n_w
        x, y = ptb.bptt_window(w_stream, j, cfg.bptt)
        t_step = time.time()
        if search:
            val_batch = ptb.bptt_window(a_stream, i % n_a, cfg.bptt) if a_stream is not None else None
            state, m = step(state, (x, y), val_batch)
        else:
            if j == 0:
                carry = cell.initial_carry(cfg.batch_size)
            state, carry, m = step(state, carry, x, y)
        loss = float(m["loss"])
        if compile_seconds is None:
            compile_seconds = time.time() - t_step
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss is {loss} at step {i}; lower lr ({cfg.lr})")
        first_loss = loss if first_loss is None else first_loss
        last_loss = loss
        done = i + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            log.write({"kind": "step", "step": done, **{k: float(v) for k, v in m.items()},
                       "time": round(time.time() - t0, 3)})
        if cfg.eval_every is not None and (done % cfg.eval_every == 0 or done == cfg.steps):
            host, valid = evaluate(state, valid_stream)
            log.write({"kind": "valid", "step": done, **valid})
            if best is None or valid["nll"] < best[0]:
                best = (valid["nll"], done, host)

    final = best[2] if best is not None else state
    host, valid = evaluate(final, valid_stream)
    _, test = evaluate(final, test_stream)
    result = {
        "corpus": corpus.source, "vocab": len(corpus.vocab), "params": count_params(host.params), "steps": cfg.steps,
        "search": search, "train_loss": [first_loss, last_loss], "valid": valid, "test": test,
        "best_step": best[1] if best is not None else cfg.steps,
    }
    if search:
        result["arch"] = tree_to_lists(host.arch)
    result["compile_seconds"] = round(compile_seconds, 3)
    result["seconds"] = round(time.time() - t0, 3)
    log.write({"kind": "final", **{k: result[k] for k in ("valid", "test", "best_step")}})
    log.result(result)
    return result


__all__ = ["LMConfig", "evaluate_lm", "make_eval_fn", "make_train_step", "run_lm"]
