"""Test helpers: minimal cells following the recurrent cell protocol (see ``jaxnas.nn.sequence``).

``TanhCell`` is a fixed Elman cell (``weights`` must be None); ``MixedCell`` is a one-edge search cell whose edge
mixes {tanh, relu, identity} of one linear transform with weights ``{'cell': (1, 3)}`` (``hard=True``: only the
chosen op's output, scaled by its weight, so straight-through gradients reach the architecture); ``BatchNormCell``
is a fixed cell with batch statistics.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

MIXED_OPS = 3


class TanhCell(nn.Module):
    hidden: int

    def initial_carry(self, batch_size: int):
        return jnp.zeros((batch_size, self.hidden), jnp.float32)

    @nn.compact
    def __call__(self, carry, x, weights=None, train: bool = True, hard: bool = False):
        assert weights is None, "TanhCell is a fixed cell"
        h = jnp.tanh(nn.Dense(self.hidden, name="x")(x) + nn.Dense(self.hidden, use_bias=False, name="h")(carry))
        return h, h


class BatchNormCell(nn.Module):
    hidden: int

    def initial_carry(self, batch_size: int):
        return jnp.zeros((batch_size, self.hidden), jnp.float32)

    @nn.compact
    def __call__(self, carry, x, weights=None, train: bool = True, hard: bool = False):
        h = jnp.tanh(nn.Dense(self.hidden, name="in")(jnp.concatenate([x, carry], axis=-1)))
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(h)
        return h, h


class MixedCell(nn.Module):
    hidden: int

    def initial_carry(self, batch_size: int):
        return jnp.zeros((batch_size, self.hidden), jnp.float32)

    @nn.compact
    def __call__(self, carry, x, weights, train: bool = True, hard: bool = False):
        w = weights["cell"][0]
        s = nn.Dense(self.hidden, name="x")(x) + nn.Dense(self.hidden, use_bias=False, name="h")(carry)
        outs = jnp.stack([jnp.tanh(s), nn.relu(s), s])
        if hard:
            i = jnp.argmax(w)
            h = w[i] * outs[i]
        else:
            h = jnp.tensordot(w, outs, axes=1)
        h = jnp.clip(h, -5.0, 5.0)
        return h, h


def mixed_arch(key, scale: float = 1e-3):
    return {"cell": scale * jax.random.normal(key, (1, MIXED_OPS))}
