"""Latency: predictors trained on a few measured cells, on-device measurement, and a differentiable latency term.

Predictors work on the space's encoding (NB201: one-hot op per edge, 6 x 5 = 30 floats), so the same function takes
a discrete cell (one-hot) or the softmax edge weights of a search (a *soft* encoding), which makes the predicted
latency differentiable in the architecture parameters.

* :func:`fit_mlp` — an MLP on the encoding, trained with optax (AdamW, full batch) on log-latency;
  :func:`fit_op_table` — the linear model ``latency = bias + sum_e table[e, op_e]`` (ridge least squares): its
  per-edge per-op costs give the classic expected-latency term ``sum(edge weights * table)``.
* :func:`evaluate` — train on ``n`` random cells of a table column, mean relative error on all other cells
  (``bench/latency_predictor.py`` prints it for the HELP devices).
* :func:`measure_latency` / :func:`measure_table` — median wall time of a jitted discrete NB201 network on the
  current device (after warm-up), to build a table for your own hardware and fit a predictor to it.
* :func:`latency_penalty` — ``weights -> coef * expected latency`` (optionally only above a target), ready for the
  ``arch_penalty`` argument of :func:`jaxnas.search.steps.make_step`.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxnas.nn.networks import NB201Network


# -- predictors ----------------------------------------------------------------------------------------------------
class OpTablePredictor(NamedTuple):
    """``latency = bias + encoding @ table.reshape(-1)``: a per-edge, per-op cost (ms)."""

    table: jax.Array  # (num_edges, num_ops) for NB201; any (F,) reshaped
    bias: jax.Array


class MLPPredictor(NamedTuple):
    """An MLP on the encoding predicting the standardised log-ratio of latency to a linear base model:
    ``latency = base(enc) * exp(mean + std * mlp(enc))`` (``base=None``: ``exp(...)`` alone)."""

    params: Any  # list of (W, b)
    mean: jax.Array
    std: jax.Array
    base: OpTablePredictor | None = None


def _init_mlp(key, sizes: Sequence[int]):
    """He-initialised hidden layers; a zero output layer, so an untrained residual MLP is exactly its base model."""
    params = []
    for k, (m, n) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        params.append((jax.random.normal(k, (m, n)) * jnp.sqrt(2.0 / m), jnp.zeros((n,))))
    W, b = params[-1]
    params[-1] = (jnp.zeros_like(W), b)
    return params


def _mlp(params, x):
    for W, b in params[:-1]:
        x = jax.nn.relu(x @ W + b)
    W, b = params[-1]
    return (x @ W + b)[..., 0]


def predict(predictor, encodings: jax.Array) -> jax.Array:
    """Predicted latency (ms) of encodings ``(..., F)`` — one-hot or soft — for either predictor type."""
    encodings = jnp.asarray(encodings, jnp.float32)
    if isinstance(predictor, MLPPredictor):
        ratio = jnp.exp(_mlp(predictor.params, encodings) * predictor.std + predictor.mean)
        if predictor.base is None:
            return ratio
        return _positive(predict(predictor.base, encodings)) * ratio
    if isinstance(predictor, OpTablePredictor):
        return encodings @ predictor.table.reshape(-1) + predictor.bias
    raise ValueError(f"not a latency predictor: {type(predictor).__name__}")


def _positive(ms):
    """Keep a linear model's prediction positive (soft encodings can leave the region it was fitted on)."""
    return jnp.maximum(ms, 1e-3)


def fit_mlp(encodings, latencies, key: jax.Array, hidden: Sequence[int] = (32,), steps: int = 300,
            learning_rate: float = 3e-3, weight_decay: float = 1e-2, residual: bool = True,
            loss: str = "l1") -> MLPPredictor:
    """Fit an MLP with AdamW (full batch, cosine learning-rate decay) on log-latency.

    The defaults (one hidden layer of 32, 300 steps, L1 loss on the log-ratio: robust to the outliers of measured
    latencies) were chosen on the HELP devices (``bench/latency_predictor.py``); bigger, longer-trained MLPs fit the
    measurement noise of a few hundred cells and generalise worse.

    ``residual=True`` (default) first fits :func:`fit_op_table` and lets the MLP learn only the log-ratio of the
    latency to that additive model (interactions between edges); with few training cells this keeps the additive
    model's accuracy, which a plain MLP does not reach. Pure and jittable (vmap over keys / training sets).
    """
    X = jnp.asarray(encodings, jnp.float32)
    y = jnp.asarray(latencies, jnp.float32)
    base = fit_op_table(X, y) if residual else None
    logy = jnp.log(y) - (jnp.log(_positive(predict(base, X))) if residual else 0.0)
    mean, std = logy.mean(), logy.std() + 1e-6
    z = (logy - mean) / std
    params = _init_mlp(key, (X.shape[-1], *hidden, 1))
    opt = optax.adamw(optax.cosine_decay_schedule(learning_rate, steps), weight_decay=weight_decay)

    if loss not in ("l2", "l1"):
        raise ValueError(f"unknown loss {loss!r}; allowed: l2, l1")

    def objective(p):
        r = _mlp(p, X) - z
        return jnp.mean(r**2) if loss == "l2" else jnp.mean(jnp.abs(r))

    def step(carry, _):
        p, s = carry
        g = jax.grad(objective)(p)
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return MLPPredictor(params, mean, std, base)


def fit_op_table(encodings, latencies, shape: tuple[int, ...] | None = None, ridge: float = 1e-3) -> OpTablePredictor:
    """Least-squares ``latency ~ bias + encoding . w`` (ridge ``ridge``); ``w`` reshaped to ``shape`` (e.g. (6, 5))."""
    X = jnp.asarray(encodings, jnp.float32)
    y = jnp.asarray(latencies, jnp.float32)
    xm, ym = X.mean(0), y.mean()
    Xc = X - xm
    w = jnp.linalg.solve(Xc.T @ Xc + ridge * X.shape[0] * jnp.eye(X.shape[1]), Xc.T @ (y - ym))
    return OpTablePredictor(w.reshape(shape or w.shape), ym - xm @ w)


def relative_error(pred, true) -> jax.Array:
    """Mean of ``|pred - true| / true``."""
    return jnp.mean(jnp.abs(pred - true) / true)


def evaluate(encodings, latencies, n_train: int, seeds: int = 3, kind: str = "mlp", seed: int = 0,
             statistic: str = "mean", test_mask=None, **fit_kwargs) -> np.ndarray:
    """Train on ``n_train`` random cells, return the mean relative error on all the others.

    ``encodings``: (M, F) for all M cells of the table; ``latencies``: (M,) ms, or (M, V) for V devices at once
    (every device gets the same training cells). Returns (seeds,) or (seeds, V). Seeds and devices run vmapped.
    ``statistic="median"`` gives the median relative error instead of the mean; ``test_mask`` (M,) bool restricts
    the cells the error is measured on (training cells are drawn from all cells).
    """
    X = jnp.asarray(encodings, jnp.float32)
    y = jnp.asarray(latencies, jnp.float32)
    M = X.shape[0]
    if y.shape[0] != M or y.ndim not in (1, 2):
        raise ValueError(f"latencies must be (M,) or (M, V) with M = {M} cells, got {y.shape}")
    if not 1 <= n_train < M:
        raise ValueError(f"n_train must lie in [1, {M}), got {n_train}")
    if kind not in ("mlp", "op_table"):
        raise ValueError(f"unknown predictor kind {kind!r}; allowed: mlp, op_table")
    if statistic not in ("mean", "median"):
        raise ValueError(f"unknown statistic {statistic!r}; allowed: mean, median")
    counted = jnp.ones((M,), bool) if test_mask is None else jnp.asarray(test_mask, bool)
    Y = y if y.ndim == 2 else y[:, None]

    def one(key):
        k_perm, k_fit = jax.random.split(key)
        perm = jax.random.permutation(k_perm, M)
        train, test = perm[:n_train], perm[n_train:]

        def per_device(col):
            if kind == "mlp":
                model = fit_mlp(X[train], col[train], k_fit, **fit_kwargs)
            else:
                model = fit_op_table(X[train], col[train], **fit_kwargs)
            err = jnp.abs(predict(model, X[test]) - col[test]) / col[test]
            if statistic == "mean":
                return jnp.sum(jnp.where(counted[test], err, 0.0)) / jnp.maximum(counted[test].sum(), 1)
            return jnp.nanmedian(jnp.where(counted[test], err, jnp.nan))

        return jax.vmap(per_device, in_axes=1)(Y)

    keys = jax.random.split(jax.random.PRNGKey(seed), seeds)
    out = np.asarray(jax.jit(jax.vmap(one))(keys))
    return out if y.ndim == 2 else out[:, 0]


# -- measurement ---------------------------------------------------------------------------------------------------
def measure_latency(genotype, *, batch_size: int = 1, image_size: int = 32, channels: int = 3,
                    num_classes: int = 10, C: int = 16, N: int = 5, warmup: int = 3, repeats: int = 20,
                    seed: int | None = None, impl: str | None = None) -> float:
    """Median wall time (ms) of one jitted inference call of the discrete NB201 network on the default device.

    Compiles once, runs ``warmup`` untimed calls, then times ``repeats`` calls (each waited on with
    ``block_until_ready``) and returns their median. The weights are random (latency does not depend on their
    values) and made without running the network's initialisers (:func:`synthetic_variables`).
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got {warmup}, {repeats}")
    model = NB201Network(genotype=genotype, C=C, N=N, num_classes=num_classes, impl=impl)
    rng = np.random.default_rng(0 if seed is None else seed)
    x = jnp.asarray(rng.standard_normal((batch_size, image_size, image_size, channels)), jnp.float32)
    variables = synthetic_variables(model, x, rng)
    fn = jax.jit(lambda v, x: model.apply(v, x, train=False))
    jax.block_until_ready(fn(variables, x))  # compile
    for _ in range(warmup):
        jax.block_until_ready(fn(variables, x))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(variables, x))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def synthetic_variables(model, x, rng: np.random.Generator):
    """Variables of the right shapes for ``model`` without running its initialisers (only ``jax.eval_shape``):
    small random weights, BN running mean 0 and variance 1."""
    shapes = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False), x)

    def fill(path, leaf):
        name = jax.tree_util.keystr(path)
        if "batch_stats" in name:
            return jnp.ones(leaf.shape, leaf.dtype) if "var" in name else jnp.zeros(leaf.shape, leaf.dtype)
        return jnp.asarray(0.1 * rng.standard_normal(leaf.shape), leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def measure_table(genotypes, progress: Callable[[int, float], None] | None = None, **kwargs) -> np.ndarray:
    """:func:`measure_latency` of each genotype (ms), e.g. for ``bench.genotype(i)`` over sampled NB201 indices."""
    out = []
    for i, g in enumerate(genotypes):
        out.append(measure_latency(g, **kwargs))
        if progress is not None:
            progress(i, out[-1])
    return np.asarray(out, np.float64)


# -- differentiable latency term -----------------------------------------------------------------------------------
def expected_latency(predictor, weights) -> jax.Array:
    """Predicted latency of relaxed edge weights: ``weights`` is ``(E, K)`` or a dict ``{"cell": (E, K)}``.

    With an :class:`OpTablePredictor` this is ``bias + sum(weights * table)`` (the expected latency under the edge
    distribution); with an :class:`MLPPredictor`, the MLP applied to the soft encoding.
    """
    w = weights["cell"] if isinstance(weights, dict) else weights
    return predict(predictor, jnp.reshape(w, (-1,)))


def latency_penalty(predictor, coef: float, target_ms: float | None = None) -> Callable[[Any], jax.Array]:
    """``weights -> coef * latency`` (or ``coef * max(latency / target_ms - 1, 0)`` with a target), for
    ``make_step(arch_penalty=...)``; ``coef`` balances it against the task loss."""
    if coef < 0:
        raise ValueError(f"the latency coefficient must be >= 0, got {coef}")
    if target_ms is not None and target_ms <= 0:
        raise ValueError(f"target_ms must be > 0, got {target_ms}")

    def penalty(weights):
        lat = expected_latency(predictor, weights)
        if target_ms is None:
            return coef * lat
        return coef * jax.nn.relu(lat / target_ms - 1.0)

    return penalty
