"""What every discrete strategy shares: the array view of a search space, the Strategy triple, and simulation loops.

A discrete strategy works on *candidates*: fixed-shape int32 arrays (``(D,)`` per architecture, ``(B, D)`` per
batch), never on Python genotype objects, so that ``ask``/``tell`` are pure jax functions that jit, scan and vmap.
An :class:`ArraySpace` gives a space's ``sample``/``mutate``/``encode`` in that form (plus ``decode`` back to the
space's genotype on the host); :func:`array_space` builds one for any space whose genotype is one op per edge
(NB201, or anything exposing ``primitives``/``num_edges``/``from_indices``) and for the DARTS CNN space,
:func:`categorical` for any product of categorical choices, and a space with its own array view can hand one in
directly.

A :class:`Strategy` is a NamedTuple of pure functions, in the optax style::

    state = strategy.init(key)
    state, cands = strategy.ask(state)          # (B, D) int32
    state = strategy.tell(state, cands, rewards)  # rewards: (B,) float, higher is better

All randomness comes from the key in ``init``; the same key gives the same run. :func:`simulate` runs a whole search
against a pure objective with ``lax.scan``; :func:`simulate_runs` vmaps it over many seeds (hundreds of NB201 runs
take seconds). :func:`run` is the host loop for objectives that are not jax functions (train a network, query a
server).
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxnas.spaces.genotypes import DartsGenotype


class ArraySpace(NamedTuple):
    """A search space seen as int32 arrays of ``len(num_choices)`` positions; position p takes num_choices[p] values."""

    num_choices: tuple[int, ...]
    sample: Callable[[jax.Array], jax.Array]  # key -> (D,) int32
    mutate: Callable[[jax.Array, jax.Array], jax.Array]  # key, (D,) -> (D,)
    encode: Callable[[jax.Array], jax.Array]  # (D,) -> (F,) float32
    decode: Callable[[np.ndarray], Any] | None = None  # (D,) numpy -> the space's genotype (host side)

    @property
    def num_positions(self) -> int:
        return len(self.num_choices)


def categorical(num_choices, decode: Callable | None = None) -> ArraySpace:
    """Product of categoricals: ``sample`` is uniform, ``mutate`` changes one uniform position to a different value,
    ``encode`` concatenates one-hot vectors (``sum(num_choices)`` floats)."""
    sizes = tuple(int(n) for n in num_choices)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"num_choices must be a non-empty list of positive ints, got {num_choices!r}")
    n = jnp.asarray(sizes, jnp.int32)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)
    width = int(sum(sizes))

    def sample(key):
        u = jax.random.uniform(key, (len(sizes),))
        return jnp.minimum((u * n).astype(jnp.int32), n - 1)

    mutable = np.array([p for p, size in enumerate(sizes) if size > 1], np.int32)  # static

    def mutate(key, x):
        if mutable.size == 0:
            return x
        u = jax.random.uniform(key, (2,))  # one draw for both choices: cheap to compile under vmap
        p = jnp.asarray(mutable)[jnp.minimum((u[0] * mutable.size).astype(jnp.int32), mutable.size - 1)]
        shift = 1 + jnp.minimum((u[1] * (n[p] - 1)).astype(jnp.int32), n[p] - 2)  # 1 .. n[p]-1: a new value
        return x.at[p].set(((x[p] + shift) % n[p]).astype(x.dtype))

    def encode(x):
        return jnp.zeros((width,), jnp.float32).at[offsets + x].set(1.0)

    return ArraySpace(sizes, sample, mutate, encode, decode)


def darts_array_space(space) -> ArraySpace:
    """The DARTS CNN space as a product of categoricals: for each cell (normal, reduce) and intermediate node m,
    one position picks the node's set of ``inputs_per_node`` distinct predecessors (one of C(m+2, k) subsets) and
    ``inputs_per_node`` positions pick their ops among ``space.choices``. Every array is a valid genotype, so the
    generic sample / mutate / encode (and a REINFORCE policy) apply unchanged; ``decode`` gives a DartsGenotype."""
    k = space.inputs_per_node
    subsets = [list(itertools.combinations(range(m + 2), k)) for m in range(space.steps)]
    per_cell = []
    for m in range(space.steps):
        per_cell += [len(subsets[m])] + [len(space.choices)] * k
    concat = tuple(range(2, 2 + space.steps))

    def decode(x):
        x = np.asarray(x).reshape(2, -1)
        cells = []
        for row in x:
            genes, pos = [], 0
            for m in range(space.steps):
                inputs = subsets[m][int(row[pos])]
                genes += [(space.choices[int(row[pos + 1 + t])], int(inputs[t])) for t in range(k)]
                pos += 1 + k
            cells.append(tuple(genes))
        return DartsGenotype(cells[0], concat, cells[1], concat)

    return categorical(per_cell * 2, decode=decode)


def array_space(space) -> ArraySpace:
    """The array view of ``space``: an ArraySpace as is; a space with ``array_space()``; one-op-per-edge spaces
    (NB201); the DARTS CNN space (:func:`darts_array_space`)."""
    if isinstance(space, ArraySpace):
        return space
    if hasattr(space, "array_space"):
        return space.array_space()
    if all(hasattr(space, a) for a in ("primitives", "num_edges", "from_indices")):
        return categorical((len(space.primitives),) * space.num_edges, decode=space.from_indices)
    if all(hasattr(space, a) for a in ("choices", "steps", "inputs_per_node")):
        return darts_array_space(space)
    raise ValueError(f"no array view for search space {type(space).__name__}: it needs primitives/num_edges/"
                     "from_indices (one op per edge), an array_space() method, or pass a strategies.ArraySpace")


class Strategy(NamedTuple):
    """``init(key) -> state``; ``ask(state) -> (state, (B, D) int32)``; ``tell(state, cands, rewards) -> state``."""

    init: Callable[[jax.Array], Any]
    ask: Callable[[Any], tuple[Any, jax.Array]]
    tell: Callable[[Any, jax.Array, jax.Array], Any]
    space: ArraySpace
    batch_size: int = 1
    name: str = ""


def sample_batch(space: ArraySpace, key: jax.Array, n: int) -> jax.Array:
    return jax.vmap(space.sample)(jax.random.split(key, n))


def check_batch(batch_size: int) -> int:
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return int(batch_size)


class History(NamedTuple):
    """One simulated run: every queried candidate and its reward, and the best one (first of equals)."""

    candidates: jax.Array  # (Q, D)
    rewards: jax.Array  # (Q,)
    best: jax.Array  # (D,)
    best_reward: jax.Array  # ()
    state: Any = None  # the strategy's final state (e.g. a REINFORCE policy)


def simulate(strategy: Strategy, objective: Callable[[jax.Array], jax.Array], num_queries: int,
             key: jax.Array) -> History:
    """Run ``strategy`` for ``num_queries`` evaluations of a pure, batched ``objective((B, D)) -> (B,)``.

    Jittable and vmappable; the number of asks is ``ceil(num_queries / batch_size)`` and surplus queries of the last
    batch are dropped from the history.
    """
    if int(num_queries) < 1:
        raise ValueError(f"num_queries must be >= 1, got {num_queries}")
    steps = -(-int(num_queries) // strategy.batch_size)

    def step(state, _):
        state, cands = strategy.ask(state)
        rewards = objective(cands).astype(jnp.float32)
        state = strategy.tell(state, cands, rewards)
        return state, (cands, rewards)

    state, (cands, rewards) = jax.lax.scan(step, strategy.init(key), None, length=steps)
    cands = cands.reshape(-1, cands.shape[-1])[:num_queries]
    rewards = rewards.reshape(-1)[:num_queries]
    i = jnp.argmax(rewards)
    return History(cands, rewards, cands[i], rewards[i], state)


def simulate_runs(strategy: Strategy, objective: Callable, num_queries: int, seed: int, runs: int) -> History:
    """``runs`` independent simulations (keys split from ``seed``), vmapped and jitted: fields get a leading axis."""
    if int(runs) < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    keys = jax.random.split(jax.random.PRNGKey(seed), int(runs))
    return _runner(strategy, objective, int(num_queries))(keys)


@functools.lru_cache(maxsize=32)
def _runner(strategy: Strategy, objective: Callable, num_queries: int):
    """One compiled, vmapped simulation per (strategy, objective, budget): repeated calls do not recompile."""
    return jax.jit(jax.vmap(lambda k: simulate(strategy, objective, num_queries, k)))


def run(strategy: Strategy, evaluate: Callable[[Any], float], num_queries: int, key: jax.Array,
        callback: Callable[[int, Any, float], None] | None = None) -> tuple[Any, float, list[tuple[Any, float]]]:
    """Host loop for any ``evaluate(genotype) -> reward`` (train a network, look up a table, ...).

    Returns (best genotype, its reward, [(genotype, reward), ...]). Genotypes come from ``space.decode`` (or are
    the raw int arrays when the space has none).
    """
    decode = strategy.space.decode or (lambda x: x)
    ask, tell = jax.jit(strategy.ask), jax.jit(strategy.tell)
    state, history = strategy.init(key), []
    while len(history) < num_queries:
        state, cands = ask(state)
        cands_np = np.asarray(cands)
        rewards = []
        for c in cands_np:
            g = decode(c)
            r = float(evaluate(g)) if len(history) < num_queries else -np.inf
            rewards.append(r)
            if len(history) < num_queries:
                history.append((g, r))
                if callback is not None:
                    callback(len(history) - 1, g, r)
        state = tell(state, cands, jnp.asarray(rewards, jnp.float32))
    best = max(range(len(history)), key=lambda i: history[i][1])
    return history[best][0], history[best][1], history
