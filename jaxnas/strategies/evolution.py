"""Regularized (aging) evolution, REA (Real et al. 2019), as the NB201 paper runs it.

The first ``population_size`` asks are uniform samples. Afterwards each child is a mutation of the winner of a
tournament: ``tournament_size`` distinct members drawn uniformly, the one with the highest reward wins. Every told
candidate joins the population and the *oldest* member leaves (a ring buffer), whatever its reward.
NB201 paper settings: population 10, tournament 3.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnas.strategies.base import Strategy, array_space, check_batch, sample_batch


class EvolutionState(NamedTuple):
    key: jax.Array
    population: jax.Array  # (P, D) int32, ring buffer in order of arrival
    rewards: jax.Array  # (P,)
    count: jax.Array  # candidates told so far


def regularized_evolution(space, population_size: int = 10, tournament_size: int = 3,
                          batch_size: int = 1) -> Strategy:
    aspace = array_space(space)
    batch_size = check_batch(batch_size)
    P, S, D = int(population_size), int(tournament_size), aspace.num_positions
    if P < 1 or not 1 <= S <= P:
        raise ValueError(f"need population_size >= 1 and 1 <= tournament_size <= population_size, got {P}, {S}")

    def init(key):
        return EvolutionState(key, jnp.zeros((P, D), jnp.int32), jnp.full((P,), -jnp.inf, jnp.float32),
                              jnp.zeros((), jnp.int32))

    def child(state, key):
        k_pick, k_mut = jax.random.split(key)
        members = jax.lax.top_k(jax.random.uniform(k_pick, (P,)), S)[1]  # S distinct members, uniformly
        parent = state.population[members[jnp.argmax(state.rewards[members])]]
        return aspace.mutate(k_mut, parent)

    def ask(state):
        key, k_rand, k_evo = jax.random.split(state.key, 3)
        randoms = sample_batch(aspace, k_rand, batch_size)
        children = jax.vmap(lambda k: child(state, k))(jax.random.split(k_evo, batch_size))
        cands = jnp.where(state.count >= P, children, randoms)
        return state._replace(key=key), cands.astype(jnp.int32)

    def tell(state, cands, rewards):
        slots = (state.count + jnp.arange(cands.shape[0])) % P
        return state._replace(population=state.population.at[slots].set(cands.astype(jnp.int32)),
                              rewards=state.rewards.at[slots].set(rewards.astype(jnp.float32)),
                              count=state.count + cands.shape[0])

    return Strategy(init, ask, tell, aspace, batch_size, "rea")
