"""Bayesian optimisation: a Gaussian process on the space's encoding, expected improvement over a candidate pool.

* The first ``num_init`` asks are uniform samples.
* Then every ask fits a GP (zero mean on standardised rewards, squared-exponential kernel on ``space.encode``,
  noise ``noise``) whose lengthscale is the best of ``lengthscales`` by marginal likelihood, and proposes the
  candidate of highest expected improvement among a pool: ``pool_size`` uniform samples plus ``num_mutations``
  one-step mutations of each of the ``num_parents`` best observations. Pool members already observed are excluded.
* Observations are kept in a fixed buffer of ``capacity`` entries (so everything has static shapes and jits), with
  the inverse kernel matrix of each lengthscale grown by one Schur-complement update per observation (O(C^2); no
  factorisation, no triangular solve per ask). Once the buffer is full, further observations are not added to the
  model: set ``capacity`` to at least the query budget.

Unlike the NB201 paper's BOHB, this is single-fidelity (every query is a 12-epoch result) — a plain GP-EI.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm

from jaxnas.strategies.base import Strategy, array_space, check_batch, sample_batch


class BOState(NamedTuple):
    key: jax.Array
    X: jax.Array  # (C, D) int32 observed candidates (slots >= count unused)
    y: jax.Array  # (C,) rewards
    count: jax.Array  # observations told so far
    Kinv: jax.Array  # (G, C, C) inverse kernel matrix (+ noise) per lengthscale; identity on unused slots
    logdet: jax.Array  # (G,) log-determinant of the same matrices


def _sqdist(A, B):
    return jnp.maximum((A**2).sum(-1)[:, None] + (B**2).sum(-1)[None, :] - 2.0 * A @ B.T, 0.0)


def _add_point(Kinv, logdet, k, slot, noise):
    """Grow the inverse of K (+ noise I) by one observation at an unused ``slot`` (Schur complement, O(C^2)).

    ``k`` is the new point's kernel row against the observed slots (zero elsewhere, zero at ``slot``).
    """
    u = Kinv @ k
    sigma = jnp.maximum(1.0 + noise - k @ u, 0.5 * noise)
    Kinv = Kinv + jnp.outer(u, u) / sigma
    Kinv = Kinv.at[slot, :].set(-u / sigma).at[:, slot].set(-u / sigma).at[slot, slot].set(1.0 / sigma)
    return Kinv, logdet + jnp.log(sigma)


def _posterior(state, Fobs, Fq, lengthscales, count):
    """Posterior mean/std (standardised units) at Fq, with the lengthscale of highest evidence; the best z seen."""
    C = state.y.shape[0]
    mask = jnp.arange(C) < jnp.minimum(count, C)
    m = mask.astype(jnp.float32)
    n = jnp.maximum(m.sum(), 1.0)
    mu = (state.y * m).sum() / n
    sd = jnp.sqrt((((state.y - mu) * m) ** 2).sum() / n) + 1e-6
    z = jnp.where(mask, (state.y - mu) / sd, 0.0)
    evidence = -0.5 * jnp.einsum("i,gij,j->g", z, state.Kinv, z) - 0.5 * state.logdet
    g = jnp.argmax(evidence)
    Kinv, ls = state.Kinv[g], lengthscales[g]
    Kq = jnp.exp(-0.5 * _sqdist(Fq, Fobs) / ls**2) * m[None, :]
    mean = Kq @ (Kinv @ z)
    var = jnp.maximum(1.0 - ((Kq @ Kinv) * Kq).sum(-1), 1e-9)
    return mean, jnp.sqrt(var), jnp.max(jnp.where(mask, z, -jnp.inf))


def expected_improvement(mean, std, best):
    u = (mean - best) / std
    return std * (u * norm.cdf(u) + norm.pdf(u))


def bayesian_optimization(space, capacity: int = 200, num_init: int = 10, pool_size: int = 256,
                          num_parents: int = 5, num_mutations: int = 20, noise: float = 1e-2,
                          lengthscales=(1.0, 1.5, 2.0, 3.0, 4.0), batch_size: int = 1) -> Strategy:
    aspace = array_space(space)
    batch_size = check_batch(batch_size)
    C, D = int(capacity), aspace.num_positions
    if C < 2 or num_init < 1:
        raise ValueError(f"need capacity >= 2 and num_init >= 1, got {capacity}, {num_init}")
    num_parents = min(int(num_parents), C)
    encode = jax.vmap(aspace.encode)

    ls = jnp.asarray(lengthscales, jnp.float32)
    G = ls.shape[0]

    def init(key):
        return BOState(key, jnp.zeros((C, D), jnp.int32), jnp.zeros((C,), jnp.float32), jnp.zeros((), jnp.int32),
                       jnp.tile(jnp.eye(C, dtype=jnp.float32), (G, 1, 1)), jnp.zeros((G,), jnp.float32))

    def propose(state, key):
        mask = jnp.arange(C) < jnp.minimum(state.count, C)
        k_pool, k_mut = jax.random.split(key)
        parents = state.X[jax.lax.top_k(jnp.where(mask, state.y, -jnp.inf), num_parents)[1]]
        mkeys = jax.random.split(k_mut, num_parents * num_mutations).reshape(num_parents, num_mutations, -1)
        mutants = jax.vmap(lambda p, ks: jax.vmap(lambda k: aspace.mutate(k, p))(ks))(parents, mkeys)
        pool = jnp.concatenate([sample_batch(aspace, k_pool, pool_size), mutants.reshape(-1, D)]).astype(jnp.int32)
        mean, std, best = _posterior(state, encode(state.X), encode(pool), ls, state.count)
        ei = expected_improvement(mean, std, best)
        seen = ((pool[:, None, :] == state.X[None, :, :]).all(-1) & mask[None, :]).any(-1)
        dup = jnp.triu((pool[:, None, :] == pool[None, :, :]).all(-1), k=1).any(0)  # keep the first copy only
        ei = jnp.where(seen | dup, -jnp.inf, ei)
        return pool, ei

    def ask(state):
        key, k_rand, k_pool = jax.random.split(state.key, 3)
        randoms = sample_batch(aspace, k_rand, batch_size)
        pool, ei = propose(state, k_pool)
        picks = pool[jax.lax.top_k(ei, batch_size)[1]]
        cands = jnp.where(state.count >= num_init, picks, randoms)
        return state._replace(key=key), cands.astype(jnp.int32)

    def tell_one(state, xr):
        x, r = xr
        slot = jnp.minimum(state.count, C - 1)
        room = state.count < C  # a full buffer ignores further observations: set capacity to the budget
        mask = (jnp.arange(C) < state.count).astype(jnp.float32)
        d2 = _sqdist(encode(state.X), aspace.encode(x)[None, :])[:, 0]
        k = jnp.exp(-0.5 * d2[None, :] / ls[:, None] ** 2) * mask[None, :]  # (G, C)
        Kinv, logdet = jax.vmap(lambda Ki, ld, kk: _add_point(Ki, ld, kk, slot, noise))(state.Kinv, state.logdet, k)
        new = state._replace(X=state.X.at[slot].set(x.astype(jnp.int32)), y=state.y.at[slot].set(r),
                             Kinv=Kinv, logdet=logdet, count=state.count + 1)
        keep = state._replace(count=state.count + 1)
        return jax.tree.map(lambda a, b: jnp.where(room, a, b), new, keep), None

    def tell(state, cands, rewards):
        state, _ = jax.lax.scan(tell_one, state, (cands.astype(jnp.int32), rewards.astype(jnp.float32)))
        return state

    return Strategy(init, ask, tell, aspace, batch_size, "bo")
