"""Regularizers of the architecture objective, pure functions of the edge weights or of the architecture
parameters (``make_step(arch_penalty=..., arch_regularizer=...)`` adds them to the arch loss).

* :func:`zero_one_loss` (FairDARTS, Chu et al. 2020): ``-mean((w - 0.5)^2)`` over every independent sigmoid weight,
  which pushes each weight towards 0 or 1 so that the derived cell is what the supernet computed; the paper's
  weight is ``w_01 = 10``.
* :func:`dirichlet_kl` (DrNAS, Chen et al. 2021): ``sum over edges KL(Dir(elu(a) + 1) || Dir(1))``, the KL form of
  DrNAS's anchor regularizer (its code's ``reg_type='kl'``). DrNAS's default is the L2 form, which is the
  architecture optimizer's weight decay (``a_weight_decay``, 1e-3 here as there).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln

from jaxnas.relax import dirichlet_concentration


def zero_one_loss(weights) -> jax.Array:
    """FairDARTS's zero-one loss of (sigmoid) edge weights: ``-mean((w - 0.5)^2)``, minimal (-0.25) at 0 or 1."""
    leaves = [jnp.ravel(w) for w in jax.tree_util.tree_leaves(weights)]
    if not leaves:
        raise ValueError("zero_one_loss: no edge weights")
    w = jnp.concatenate(leaves)
    return -jnp.mean(jnp.square(w - 0.5))


def dirichlet_kl_divergence(concentration, prior) -> jax.Array:
    """``KL(Dir(concentration) || Dir(prior))`` over the last axis (one value per leading index)."""
    a0 = concentration.sum(-1)
    b0 = prior.sum(-1)
    return (gammaln(a0) - gammaln(concentration).sum(-1) - gammaln(b0) + gammaln(prior).sum(-1)
            + ((concentration - prior) * (digamma(concentration) - digamma(a0)[..., None])).sum(-1))


def dirichlet_kl(arch) -> jax.Array:
    """DrNAS's KL anchor regularizer: the sum over every edge of ``KL(Dir(elu(a) + 1) || Dir(1, ..., 1))``."""
    total = jnp.zeros((), jnp.float32)
    for a in jax.tree_util.tree_leaves(arch):
        c = dirichlet_concentration(a)
        total = total + dirichlet_kl_divergence(c, jnp.ones_like(c)).sum()
    return total


__all__ = ["dirichlet_kl", "dirichlet_kl_divergence", "zero_one_loss"]
