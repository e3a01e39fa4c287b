"""REINFORCE (Williams 1992) with an independent categorical policy per position (edge) and a moving-average baseline.

The policy is a (D, K) logits table (K = the most choices of any position; missing choices are masked). For each told
batch, the loss ``-mean((r - b) * log pi(x))`` is minimised by one optax step (Adam by default), where ``b`` is an
exponential moving average of past rewards (momentum ``baseline_decay``; the first reward initialises it). Rewards
are divided by ``reward_scale`` (100 for accuracies in percent) before use.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnas.strategies.base import Strategy, array_space, check_batch


class ReinforceState(NamedTuple):
    key: jax.Array
    logits: jax.Array  # (D, K)
    opt_state: Any
    baseline: jax.Array
    count: jax.Array


def reinforce(space, learning_rate: float = 0.1, baseline_decay: float = 0.9, reward_scale: float = 100.0,
              batch_size: int = 1, optimizer: optax.GradientTransformation | None = None) -> Strategy:
    aspace = array_space(space)
    batch_size = check_batch(batch_size)
    n = jnp.asarray(aspace.num_choices)
    K = max(aspace.num_choices)
    valid = jnp.arange(K)[None, :] < n[:, None]  # (D, K)
    opt = optimizer or optax.adam(learning_rate)

    def masked(logits):
        return jnp.where(valid, logits, -jnp.inf)

    def init(key):
        logits = jnp.where(valid, 0.0, -1e9).astype(jnp.float32)  # invalid choices never win an argmax
        return ReinforceState(key, logits, opt.init(logits), jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))

    def ask(state):
        key, sub = jax.random.split(state.key)
        cands = jax.random.categorical(sub, masked(state.logits), axis=-1, shape=(batch_size, aspace.num_positions))
        return state._replace(key=key), cands.astype(jnp.int32)

    def log_prob(logits, cands):
        logp = jax.nn.log_softmax(masked(logits), axis=-1)  # (D, K)
        picked = jnp.take_along_axis(logp[None], cands[..., None], axis=-1)[..., 0]  # (B, D)
        return picked.sum(-1)

    def tell(state, cands, rewards):
        r = rewards.astype(jnp.float32) / reward_scale
        baseline = jnp.where(state.count == 0, r.mean(), state.baseline)
        advantage = r - baseline
        grads = jax.grad(lambda lg: -(advantage * log_prob(lg, cands)).mean())(state.logits)
        updates, opt_state = opt.update(grads, state.opt_state, state.logits)
        logits = optax.apply_updates(state.logits, updates)
        baseline = baseline_decay * baseline + (1 - baseline_decay) * r.mean()
        return state._replace(logits=logits, opt_state=opt_state, baseline=baseline, count=state.count + r.shape[0])

    return Strategy(init, ask, tell, aspace, batch_size, "reinforce")


def policy_argmax(state: ReinforceState) -> jax.Array:
    """The most likely candidate under the current policy, (D,) int32."""
    return jnp.argmax(state.logits, axis=-1).astype(jnp.int32)
