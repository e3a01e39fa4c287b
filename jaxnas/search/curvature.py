"""Curvature of the validation loss in the architecture parameters (RobustDARTS, Zela et al., ICLR 2020).

RobustDARTS finds that DARTS's degenerate cells coincide with a large dominant eigenvalue of the Hessian of the
validation loss with respect to the architecture parameters, and stops the search early when that eigenvalue
starts to grow. Here:

* :func:`hessian_vector_product`: exact ``H v``, forward over reverse (traced with
  :func:`jaxnas.nn.ops.plain_autodiff`, which lets forward mode through the supernets' hand-written VJPs);
* :func:`dominant_eigenvalue`: power iteration on those products (the eigenvalue of largest magnitude), and
  :func:`largest_eigenvalue`: the largest (algebraic) one, RobustDARTS's quantity, by a second power iteration on
  the shifted Hessian when the first finds a negative one;
* :func:`early_stop_epoch`: the authors' rule, read from their code: local averages of the per-epoch eigenvalue
  over a centred window (5 epochs), and a stop when the newest local average exceeds the one ``delta`` (4) averages
  earlier by a factor (1.3), considered only once the earlier average's epoch reaches ``start_epoch`` (10); the
  search then returns the architecture of that earlier epoch.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import optax

from jaxnas.nn.ops import plain_autodiff


def hessian_vector_product(f: Callable[[Any], jax.Array], x, v):
    """``H v`` of the scalar ``f`` at ``x`` (pytrees of the same structure), exact: the derivative of ``grad f``
    along ``v``."""
    with plain_autodiff():
        return jax.jvp(jax.grad(f), (x,), (v,))[1]


def _random_unit(x, key):
    leaves, treedef = jax.tree_util.tree_flatten(x)
    keys = jax.random.split(key, len(leaves))
    return _unit(jax.tree_util.tree_unflatten(
        treedef, [jax.random.normal(k, l.shape, l.dtype) for k, l in zip(keys, leaves)]))


def _unit(t):
    norm = jnp.sqrt(optax.tree.vdot(t, t))
    return jax.tree_util.tree_map(lambda a: a / jnp.maximum(norm, 1e-30), t)


def dominant_eigenvalue(f: Callable[[Any], jax.Array], x, key: jax.Array, iterations: int = 20):
    """``(eigenvalue, unit eigenvector)`` of largest magnitude of the Hessian of ``f`` at ``x``, by ``iterations``
    steps of power iteration from a random start; the eigenvalue is the Rayleigh quotient ``v . H v`` of the last
    iterate (jit-friendly: one ``fori_loop`` around one Hessian-vector product)."""
    def body(_, carry):
        v, _ = carry
        hv = hessian_vector_product(f, x, v)
        return _unit(hv), optax.tree.vdot(v, hv)

    v, value = jax.lax.fori_loop(0, iterations + 1, body, (_random_unit(x, key), jnp.zeros((), jnp.float32)))
    return value, v


def largest_eigenvalue(f: Callable[[Any], jax.Array], x, key: jax.Array, iterations: int = 20) -> jax.Array:
    """The largest (algebraic) eigenvalue of the Hessian of ``f`` at ``x``: ``iterations`` power steps on ``H``
    give the dominant eigenvalue ``d``; then ``iterations`` more on ``H - s I`` with ``s = min(0, d)`` (every
    eigenvalue of the shifted matrix is non-negative when ``d`` is the most negative one, and ``s = 0`` repeats the
    plain iteration otherwise), whose iterate's Rayleigh quotient on ``H`` is the answer. One compiled
    Hessian-vector product in a ``fori_loop`` of ``2 * iterations + 1`` trips (no branch)."""
    k1, k2 = jax.random.split(key)
    restart = _random_unit(x, k2)

    def body(i, carry):
        v, shift, _ = carry
        hv = hessian_vector_product(f, x, v)
        quotient = optax.tree.vdot(v, hv)
        turn = i == iterations  # the first phase's estimate is ready: fix the shift, start again
        shift = jnp.where(turn, jnp.minimum(quotient, 0.0), shift)
        step = _unit(jax.tree_util.tree_map(lambda a, b: a - shift * b, hv, v))
        v = jax.tree_util.tree_map(lambda r, n: jnp.where(turn, r, n), restart, step)
        return v, shift, quotient

    init = (_random_unit(x, k1), jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))
    return jax.lax.fori_loop(0, 2 * iterations + 1, body, init)[2]


def local_average(values: Sequence[float], centre: int, window: int) -> float:
    """Mean of ``values`` over the window centred on ``centre`` (cut at the ends)."""
    half = window // 2
    part = values[max(0, centre - half): centre + half + 1]
    return float(sum(part) / len(part))


def early_stop_epoch(eigenvalues: Sequence[float], window: int = 5, delta: int = 4, factor: float = 1.3,
                     start_epoch: int = 10) -> int | None:
    """RobustDARTS's early stop: with ``eigenvalues[e]`` the dominant eigenvalue after epoch ``e``, the epoch to
    return to if the search should stop now, else None.

    The newest complete local average is centred ``window // 2`` epochs back (``c``); stop when it exceeds the
    average centred on ``c - delta`` by more than ``factor``, provided ``c - delta >= start_epoch``."""
    if window < 1 or delta < 1 or factor <= 0:
        raise ValueError(f"early stop needs window >= 1, delta >= 1 and factor > 0; got {window}, {delta}, {factor}")
    centre = len(eigenvalues) - 1 - window // 2
    earlier = centre - delta
    if earlier < max(start_epoch, 0):
        return None
    now, before = local_average(eigenvalues, centre, window), local_average(eigenvalues, earlier, window)
    return earlier if before > 0 and now / before > factor else None


__all__ = ["dominant_eigenvalue", "early_stop_epoch", "hessian_vector_product", "largest_eigenvalue", "local_average"]
