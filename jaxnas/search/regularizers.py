"""Regularizers of the architecture objective, pure functions of the edge weights or of the architecture
parameters (``make_step(arch_penalty=..., arch_regularizer=...)`` adds them to the arch loss).

* :func:`zero_one_loss` (FairDARTS, Chu et al. 2020): ``-mean((w - 0.5)^2)`` over every independent sigmoid weight,
  which pushes each weight towards 0 or 1 so that the derived cell is what the supernet computed; the paper's
  weight is ``w_01 = 10``.
* :func:`dirichlet_kl` (DrNAS, Chen et al. 2021): ``sum over edges KL(Dir(elu(a) + 1) || Dir(1))``, the KL form of
  DrNAS's anchor regularizer (its code's ``reg_type='kl'``). DrNAS's default is the L2 form, which is the
  architecture optimizer's weight decay (``a_weight_decay``, 1e-3 here as there).

* :func:`passive_aggressive` (TopoNAS, Huang et al.): over every node, the kept-probability of the edges outside its
  most probable topology. It leaves the edges of the leading topology alone (passive) and pushes the others'
  contribution to the supernet down (aggressive), so that the supernet computes the topology that will be derived.
  The abstract says only that the term "suppresses invalid topology within the supernet"; this form is this
  library's reading (docs/methods.md).

DARTS-PRIME's (Maile et al. 2021) terms towards a discrete cell need state or the step, so they are optax
transformations of the architecture gradient (chain them before the architecture optimizer; ``make_step`` passes
``step=`` to every update):

* :func:`proximity`: adds the gradient of ``progress * rho / 2 * sum_cells ||w - D(w)||`` (``w`` the relaxed
  weights, ``D(w)`` the derived cell as one-hot weights, held constant, ``progress`` = step / total steps, rising
  from 0 to 1 as the authors' ``clock / 50`` over their 50 epochs); ``rho = 1e-3``.
* :func:`admm`: the ADMM splitting of ``w = z`` with ``z`` discrete: adds the gradient of
  ``rho / 2 * sum_cells ||(w - z + u) * m||`` (``m``: the ops still alive), and every ``every`` architecture updates
  sets ``z = D(w + u)``, then ``u = u + (w - z) * m``. Both norms are plain (not squared) L2 norms per cell, as in
  the authors' code. Reading: their code updates ``u`` and ``z`` from the raw parameters (``x - z``,
  ``D(activate(x + u))``), which for their clipped activation inside [0, 1] is the relaxed weight; here the scaled
  ADMM on the relaxed weights is used for every relaxation, and ``z`` starts at ``w`` (theirs: at the parameters).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.scipy.special import digamma, gammaln

from jaxnas.relax import dirichlet_concentration, is_pruned
from jaxnas.spaces.derive import topology_membership


def passive_aggressive(weights, counts: tuple[int, ...], sizes: tuple[int, ...],
                       cells: tuple[str, ...] = ("normal", "reduce")) -> jax.Array:
    """TopoNAS's passive-aggressive term: ``sum over cells and nodes m of sum_{e not in T*_m} gamma_e``, where
    ``gamma_e`` (an edge's kept-probability) sums the relaxed probabilities ``weights['<cell>_topology'][m]`` of node
    m's topologies that keep e, and ``T*_m`` is the most probable topology (held constant)."""
    membership = jnp.asarray(topology_membership(tuple(counts), tuple(sizes)))
    total = 0.0
    for cell in cells:
        probs = weights[f"{cell}_topology"]
        best = jax.lax.stop_gradient(jnp.argmax(probs, axis=-1))
        gamma = jnp.einsum("mt,mte->me", probs, membership.astype(probs.dtype))
        kept = membership[jnp.arange(membership.shape[0]), best]
        total = total + jnp.sum(gamma * (1.0 - kept))
    return total


def zero_one_loss(weights) -> jax.Array:
    """FairDARTS's zero-one loss of (sigmoid) edge weights: ``-mean((w - 0.5)^2)``, minimal (-0.25) at 0 or 1."""
    leaves = [jnp.ravel(w) for w in jax.tree_util.tree_leaves(weights)]
    if not leaves:
        raise ValueError("zero_one_loss: no edge weights")
    w = jnp.concatenate(leaves)
    return -jnp.mean(jnp.square(w - 0.5))


def dirichlet_kl_divergence(concentration, prior, kept=None) -> jax.Array:
    """``KL(Dir(concentration) || Dir(prior))`` over the last axis (one value per leading index); with ``kept`` (a
    boolean mask) over the kept entries only."""
    if kept is None:
        kept = jnp.ones(concentration.shape, bool)
    c, b = jnp.where(kept, concentration, 1.0), jnp.where(kept, prior, 1.0)
    a0, b0 = jnp.where(kept, c, 0.0).sum(-1), jnp.where(kept, b, 0.0).sum(-1)
    terms = -gammaln(c) + gammaln(b) + (c - b) * (digamma(c) - digamma(a0)[..., None])
    return gammaln(a0) - gammaln(b0) + jnp.where(kept, terms, 0.0).sum(-1)


def dirichlet_kl(arch) -> jax.Array:
    """DrNAS's KL anchor regularizer: the sum over every edge of ``KL(Dir(elu(a) + 1) || Dir(1, ..., 1))``, over
    the ops not pruned (:func:`jaxnas.relax.is_pruned`)."""
    total = jnp.zeros((), jnp.float32)
    for a in jax.tree_util.tree_leaves(arch):
        c = dirichlet_concentration(a)
        total = total + dirichlet_kl_divergence(c, jnp.ones_like(c), ~is_pruned(a)).sum()
    return total


def _cell_norm(x) -> jax.Array:
    """The L2 norm of one cell's weights, with a finite gradient at 0 (a weight already discrete)."""
    return optax.safe_norm(jnp.ravel(x), 0.0)


def proximity_penalty(weights, discrete, rho, progress) -> jax.Array:
    """``progress * rho / 2 * sum over the cells of ||w - d||`` (DARTS-PRIME's proximity term)."""
    return progress * rho / 2 * sum(_cell_norm(weights[k] - discrete[k]) for k in discrete)


def proximity(activation: Callable, discretize: Callable, rho: float, total_steps: int
              ) -> optax.GradientTransformationExtraArgs:
    """DARTS-PRIME's proximity regularization of the architecture (see the module docstring).

    ``activation``: ``arch -> weights`` (the search's relaxation, deterministic); ``discretize``: ``weights ->
    one-hot weights of the derived cell`` (e.g. :meth:`jaxnas.spaces.DartsSpace.discrete_weights`); ``rho``: the
    authors' 1e-3; ``total_steps``: the search's steps (progress = ``step / total_steps``).
    """
    total = float(max(int(total_steps), 1))

    def penalty(arch, step):
        w = activation(arch)
        d = jax.lax.stop_gradient(discretize(w))
        return proximity_penalty(w, d, rho, jnp.minimum(jnp.asarray(step, jnp.float32) / total, 1.0))

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None, *, step=None, **extra):
        del extra
        if params is None or step is None:
            raise ValueError("proximity needs the architecture parameters and step= (make_step passes both)")
        return jax.tree_util.tree_map(jnp.add, updates, jax.grad(penalty)(params, step)), state

    return optax.GradientTransformationExtraArgs(init, update)


class AdmmState(NamedTuple):
    """ADMM's auxiliary discrete weights ``z``, scaled dual ``u`` (op entries only) and update count."""

    count: jax.Array
    z: Any
    u: Any


def admm(activation: Callable, discretize: Callable, rho: float, every: int = 10
         ) -> optax.GradientTransformationExtraArgs:
    """DARTS-PRIME's ADMM regularization of the architecture (see the module docstring): ``rho`` 1e-3 and
    ``every`` 10 architecture updates, the authors' defaults."""
    if every < 1:
        raise ValueError(f"admm: every must be >= 1, got {every}")

    def ops_of(tree, keys):
        return {k: tree[k] for k in keys}

    def init(params):
        w = activation(params)
        keys = tuple(discretize(w))
        z = ops_of(w, keys)
        return AdmmState(jnp.zeros((), jnp.int32), z, jax.tree_util.tree_map(jnp.zeros_like, z))

    def update(updates, state, params=None, **extra):
        del extra
        if params is None:
            raise ValueError("admm needs the architecture parameters")
        keys = tuple(state.z)
        w = jax.lax.stop_gradient(ops_of(activation(params), keys))
        alive = {k: (w[k] > 0).astype(w[k].dtype) for k in keys}
        refresh = (state.count > 0) & (state.count % every == 0)
        new_z = discretize({k: w[k] + state.u[k] for k in keys})
        z = {k: jnp.where(refresh, new_z[k], state.z[k]) for k in keys}
        u = {k: jnp.where(refresh, state.u[k] + (w[k] - z[k]) * alive[k], state.u[k]) for k in keys}

        def penalty(arch):
            wa = activation(arch)
            return rho / 2 * sum(_cell_norm((wa[k] - z[k] + u[k]) * alive[k]) for k in keys)

        grads = jax.grad(penalty)(params)
        return jax.tree_util.tree_map(jnp.add, updates, grads), AdmmState(state.count + 1, z, u)

    return optax.GradientTransformationExtraArgs(init, update)


__all__ = ["AdmmState", "admm", "dirichlet_kl", "dirichlet_kl_divergence", "passive_aggressive", "proximity", "proximity_penalty",
           "zero_one_loss"]
