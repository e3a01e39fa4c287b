"""Discrete search strategies as pure ask/tell functions (optax style): random search, regularized evolution (REA),
REINFORCE, Bayesian optimisation (GP + expected improvement).

    >>> from jaxnas import strategies
    >>> from jaxnas.spaces import NB201Space
    >>> strategy = strategies.get_strategy("rea", NB201Space())
    >>> state = strategy.init(jax.random.PRNGKey(0))
    >>> state, cands = strategy.ask(state)              # (1, 6) int32 op indices
    >>> state = strategy.tell(state, cands, rewards)    # (1,) float, higher is better

See :mod:`jaxnas.strategies.base` for the array view of a space, :func:`simulate` / :func:`simulate_runs` (jitted,
vmapped simulations against a pure objective such as a benchmark table) and :func:`run` (host loop, any objective).
"""

from __future__ import annotations

from jaxnas.strategies.base import (ArraySpace, History, Strategy, array_space, categorical, darts_array_space, run,
                                    simulate, simulate_runs)
from jaxnas.strategies.bo import bayesian_optimization
from jaxnas.strategies.evolution import regularized_evolution
from jaxnas.strategies.random import random_search
from jaxnas.strategies.reinforce import policy_argmax, reinforce

STRATEGIES = {
    "random": random_search,
    "rea": regularized_evolution,
    "reinforce": reinforce,
    "bo": bayesian_optimization,
}


def get_strategy(name: str, space, **kwargs) -> Strategy:
    """A strategy by name over ``space`` (any space with an array view); kwargs go to its factory."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGIES)}")
    return STRATEGIES[name](space, **kwargs)


__all__ = [
    "ArraySpace", "History", "STRATEGIES", "Strategy", "array_space", "bayesian_optimization", "categorical",
    "darts_array_space",
    "get_strategy", "policy_argmax", "random_search", "regularized_evolution", "reinforce", "run", "simulate",
    "simulate_runs",
]
