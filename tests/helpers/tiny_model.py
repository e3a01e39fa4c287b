"""A tiny supernet following the supernet calling convention, for the search-step tests.

``model.apply({'params': p, 'batch_stats': bs}, x, weights, train=True, hard=False, mutable=['batch_stats'])`` with
``weights = {'cell': (2, 4)}``: two chained edges, each a mixed op over {3x3 conv, 1x1 conv, identity, zero}, then
BatchNorm, global average pooling and a dense classifier. Each node goes through ``fence_cotangent`` (a custom VJP,
as in the real supernets), so the steps' second derivatives meet one. With ``hard=True`` the weights must be one-hot and only the
chosen op's output is used (scaled by its weight, so straight-through gradients reach the architecture).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.nn.ops import fence_cotangent

NUM_EDGES, NUM_OPS = 2, 4


class TinySupernet(nn.Module):
    channels: int = 4
    num_classes: int = 3

    @nn.compact
    def __call__(self, x, weights, train: bool = True, hard: bool = False):
        w = weights["cell"]
        if w.shape != (NUM_EDGES, NUM_OPS):
            raise ValueError(f"TinySupernet expects weights {{'cell': ({NUM_EDGES}, {NUM_OPS})}}, got {w.shape}")
        h = nn.Conv(self.channels, (3, 3), padding="SAME", use_bias=False, name="stem")(x)
        for e in range(NUM_EDGES):
            outs = jnp.stack(
                [
                    nn.Conv(self.channels, (3, 3), padding="SAME", use_bias=False, name=f"e{e}_conv3")(nn.relu(h)),
                    nn.Conv(self.channels, (1, 1), use_bias=False, name=f"e{e}_conv1")(nn.relu(h)),
                    h,
                    jnp.zeros_like(h),
                ]
            )
            if hard:
                idx = jnp.argmax(w[e])
                h = w[e, idx] * outs[idx]
            else:
                h = jnp.tensordot(w[e], outs, axes=1)
            h = fence_cotangent(h)  # a custom-VJP op, as the real supernets' nodes: steps must differentiate it twice
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(h)
        return nn.Dense(self.num_classes, name="head")(h.mean(axis=(1, 2)))


def arch_init(key, scale: float = 1e-3):
    return {"cell": scale * jax.random.normal(key, (NUM_EDGES, NUM_OPS))}


def batch(seed: int, n: int = 8, hw: int = 4, c: int = 3, num_classes: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, hw, hw, c)).astype(np.float32)
    y = rng.integers(0, num_classes, size=(n,)).astype(np.int32)
    return x, y
