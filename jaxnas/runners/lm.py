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
:func:`jaxnas.search.make_step` (``config.optimization``, cross-entropy, no accuracy): in the bi-level modes the
training ids are cut into a first part (weights) and the rest (architecture); each window starts from the cell's
initial state (the step has no recurrent state). Evaluation carries the state over consecutive windows; perplexity
is ``exp`` of the mean per-token negative log-likelihood. No dropout: the search step passes no dropout key.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnas.data import ptb
from jaxnas.search.steps import OptimConfig, SearchState, cross_entropy, make_arch_optimizer, make_step
from jaxnas.runners import forecast as F
from jaxnas.runners import loop
from jaxnas.runners.forecast import (
    count_params,
    init_state,
    make_cell,
    make_optimizer,
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
class LMConfig(F.SequenceRunFields):
    """One budgeted language-modelling run (defaults: a small LSTM model on the shipped smoke corpus).

    Attributes:
      data_dir: a directory with ``train.txt``, ``valid.txt``, ``test.txt`` (PTB format); None: the shipped files
        (train on valid.txt, evaluate on test.txt; see :mod:`jaxnas.data.ptb`).
      cell: ``'lstm'`` / ``'gru'`` / ``'darts'`` (:mod:`jaxnas.nn.recurrent`) or a factory ``hidden -> cell``;
        hidden, embed_dim, tie_weights: the model (:class:`~jaxnas.nn.sequence.LanguageModel`).
      steps, batch_size, bptt, lr, grad_clip, seed: training (Adam).
      eval_batch_size: rows of the valid/test streams; eval_windows: score only the first that many windows (None:
        all); eval_every: measure valid perplexity every that many steps and keep the best weights.
      The search and run fields: :class:`jaxnas.runners.forecast.SequenceRunFields`.
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

    def __post_init__(self):
        self.check_run_fields()
        for name in ("hidden", "embed_dim", "steps", "batch_size", "bptt", "eval_batch_size"):
            if not int(getattr(self, name)) >= 1:
                raise ValueError(f"LMConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "eval_windows"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"LMConfig.{name} must be >= 1 or None, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"LMConfig.seed must be >= 0, got {self.seed}")


def _windows(stream: np.ndarray, bptt: int, name: str) -> int:
    n = ptb.num_windows(stream, bptt, drop_remainder=True)
    if n < 1:
        raise ValueError(f"the {name} stream ({stream.shape[1]} tokens per row) holds no full window of bptt {bptt}")
    return n


class LMTask(F.SequenceTask):
    """One language-modelling run (training or search), as a :class:`jaxnas.runners.loop.Task`. A fixed cell
    carries its hidden state across consecutive windows (``state['carry']``, reset at the stream's start)."""

    kind = "language model"
    score = "nll"

    def __init__(self, config: LMConfig):
        cfg = config
        self.setup(cfg)
        self.corpus = corpus = ptb.load_corpus(cfg.data_dir)
        self.search = cfg.arch is not None
        if self.search and cfg.optimization.startswith("bilevel"):
            cut = int(len(corpus.train) * cfg.search_fraction)
            self.w_stream = ptb.batchify(corpus.train[:cut], cfg.batch_size)
            self.a_stream = ptb.batchify(corpus.train[cut:], cfg.batch_size)
        else:
            self.w_stream, self.a_stream = ptb.batchify(corpus.train, cfg.batch_size), None
        self.n_w = _windows(self.w_stream, cfg.bptt, "train")
        self.n_a = _windows(self.a_stream, cfg.bptt, "architecture") if self.a_stream is not None else None
        self.valid_stream = ptb.batchify(corpus.valid, cfg.eval_batch_size)
        self.test_stream = ptb.batchify(corpus.test, cfg.eval_batch_size)
        self.config = {**loop.config_json(cfg), "corpus": corpus.source}
        self.identity = loop.identity_of(self.config)
        self.advice = f"Lower lr ({cfg.lr})"
        self.cell = make_cell(cfg.cell, cfg.hidden)
        self.model = LanguageModel(self.cell, len(corpus.vocab), cfg.embed_dim, tie_weights=cfg.tie_weights)
        self.k_init, self.k_arch = jax.random.split(jax.random.key(cfg.seed))
        self.w_optimizer = make_optimizer(cfg.lr, cfg.grad_clip)
        self.a_optimizer = None
        if self.search:
            self.a_optimizer = make_arch_optimizer(OptimConfig(a_lr=cfg.a_lr, a_weight_decay=cfg.a_weight_decay))
            self.step_fn = make_step(self.model, mode=F.step_mode(cfg.optimization), relaxation=cfg.relaxation,
                                     w_optimizer=self.w_optimizer, a_optimizer=self.a_optimizer,
                                     loss_fn=cross_entropy, accuracy_fn=None, temperature=cfg.temperature)
        else:
            self.step_fn = make_train_step(self.model, self.w_optimizer)
        self.eval_fn = make_eval_fn(self.model)

    def init(self):
        cfg = self.cfg
        state = init_state(self.model, self.w_stream[:2, : cfg.bptt], self.k_init, self.w_optimizer,
                           cfg.arch(self.k_arch) if self.search else None, self.a_optimizer)
        extra = {} if self.search else {"carry": self.cell.initial_carry(cfg.batch_size)}
        return self.fresh(state, **extra), []

    def train_step(self, state, index):
        cfg = self.cfg
        j = index % self.n_w
        x, y = ptb.bptt_window(self.w_stream, j, cfg.bptt)
        if self.search:
            val = ptb.bptt_window(self.a_stream, index % self.n_a, cfg.bptt) if self.a_stream is not None else None
            run_state, m = self.step_fn(state["run"], (x, y), val)
            return {**state, "run": run_state}, m
        carry = self.cell.initial_carry(cfg.batch_size) if j == 0 else state["carry"]
        run_state, carry, m = self.step_fn(state["run"], carry, x, y)
        return {**state, "run": run_state, "carry": carry}, m

    def _evaluate(self, st, stream):
        _, variables, weights, hard = F.host_variables(st, self.search, self.cfg.relaxation)
        return evaluate_lm(self.model, variables, stream, self.cfg.bptt, weights, hard, self.cfg.eval_windows,
                           self.eval_fn)

    def validate(self, run_state):
        return self._evaluate(run_state, self.valid_stream)

    def finish(self, state, run):
        cfg, corpus = self.cfg, self.corpus
        final = self.final_state(state)
        host = jax.device_get(final)
        result = {
            "corpus": corpus.source, "vocab": len(corpus.vocab), "params": count_params(host.params),
            "steps": cfg.steps, "search": self.search, "train_loss": self.summary()["train_loss"],
            "valid": self._evaluate(final, self.valid_stream), "test": self._evaluate(final, self.test_stream),
            "best_step": self.summary()["best_step"],
        }
        return self.write_result(result, host, run)


def run_lm(config: LMConfig) -> dict:
    """Train (or search) and evaluate one language model, resumable in ``config.workdir``; returns a JSON-ready
    dict (also ``result.json`` in the workdir)::

        {'corpus', 'vocab', 'params', 'steps', 'search', 'train_loss': [first, last],
         'valid': {'nll', 'ppl', 'tokens'}, 'test': {...}, 'best_step', 'arch' (searches only), 'seconds',
         'compile_seconds'}
    """
    result, _ = loop.run_somewhere(LMTask(config), F.sequence_loop_options(config),
                                   checkpoint_every=config.steps, log_every=config.log_every, progress=config.progress)
    return result


__all__ = ["LMConfig", "evaluate_lm", "make_eval_fn", "make_train_step", "run_lm"]
