"""Random search: every ask draws fresh uniform samples; tell only counts."""

from __future__ import annotations

from typing import NamedTuple

import jax

from jaxnas.strategies.base import Strategy, array_space, check_batch, sample_batch


class RandomState(NamedTuple):
    key: jax.Array
    count: jax.Array


def random_search(space, batch_size: int = 1) -> Strategy:
    aspace = array_space(space)
    batch_size = check_batch(batch_size)

    def init(key):
        return RandomState(key, jax.numpy.zeros((), jax.numpy.int32))

    def ask(state):
        key, sub = jax.random.split(state.key)
        return state._replace(key=key), sample_batch(aspace, sub, batch_size)

    def tell(state, cands, rewards):
        return state._replace(count=state.count + cands.shape[0])

    return Strategy(init, ask, tell, aspace, batch_size, "random")
