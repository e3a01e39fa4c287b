"""Every discrete strategy: finds the optimum of a small synthetic objective, is reproducible by seed, and keeps the
ask/tell contract (shapes, batches, host loop)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas import strategies
from jaxnas.spaces import NB201Space
from jaxnas.registry import get_space

SPACE = strategies.categorical((3, 4, 3, 4, 3))  # 432 cells
TARGET = jnp.array([2, 0, 1, 3, 2])
NB201_TARGET = jnp.array([2, 0, 1, 3, 4, 2])
# budget per strategy: random search needs a good share of the space, the others far less
BUDGET = {"random": 2000, "rea": 120, "reinforce": 150, "bo": 40}


def objective(cands):
    """Number of positions equal to TARGET's, minus a little per step away from it: unique optimum 5."""
    return (cands == TARGET).sum(-1) - 0.01 * jnp.abs(cands - TARGET).sum(-1)


def nb201_objective(cands):
    """The same on all 15,625 NB201 cells (op indices): unique optimum 6."""
    return (cands == NB201_TARGET).sum(-1) - 0.01 * jnp.abs(cands - NB201_TARGET).sum(-1)


def case(name):
    """(strategy, objective, target, budget): BO searches the full NB201 space, in batches of 2."""
    if name == "bo":
        strat = strategies.bayesian_optimization(NB201Space(), capacity=40, pool_size=64, batch_size=2)
        return strat, nb201_objective, NB201_TARGET, BUDGET[name]
    return strategies.get_strategy(name, SPACE), objective, TARGET, BUDGET[name]


@pytest.mark.parametrize("name", list(strategies.STRATEGIES))
def test_finds_the_optimum_of_a_synthetic_objective_reproducibly(name):
    strat, obj, target, budget = case(name)
    hist = strategies.simulate_runs(strat, obj, budget, seed=0, runs=4)
    np.testing.assert_array_equal(np.asarray(hist.best), np.tile(np.asarray(target), (4, 1)))
    assert np.all(np.asarray(hist.best_reward) == float(len(target)))
    assert hist.candidates.shape == (4, budget, len(target)) and hist.rewards.shape == (4, budget)
    assert np.all(np.asarray(hist.candidates) < np.asarray(strat.space.num_choices))
    np.testing.assert_array_equal(hist.rewards, obj(hist.candidates))
    # same seed, same runs; another seed, other runs; the runs of one call differ from each other
    again = strategies.simulate_runs(strat, obj, budget, seed=0, runs=4)
    other = strategies.simulate_runs(strat, obj, budget, seed=1, runs=4)
    np.testing.assert_array_equal(hist.candidates, again.candidates)
    assert not np.array_equal(hist.candidates, other.candidates)
    assert not np.array_equal(hist.candidates[0], hist.candidates[1])
    if name == "reinforce":  # the policy itself ends on the optimum
        np.testing.assert_array_equal(jax.vmap(strategies.policy_argmax)(hist.state), np.tile(target, (4, 1)))
    if name == "rea":  # the final population holds the last 10 children, in order of arrival
        np.testing.assert_array_equal(hist.state.rewards[:, (budget - 1) % 10], hist.rewards[:, -1])
    if name == "bo":  # BO never re-queries a cell
        for run in np.asarray(hist.candidates):
            assert len({tuple(c) for c in run}) == budget
        assert space_decodes(strat, hist.best[0])


def space_decodes(strat, cand):
    return NB201Space().validate(strat.space.decode(np.asarray(cand)))


@pytest.mark.parametrize("name", ["random", "rea", "reinforce"])  # bo on NB201: tests/cli/test_bench.py
def test_batched_asks_on_nb201(name):
    space = NB201Space()
    strat = strategies.get_strategy(name, space, batch_size=3)
    hist = strategies.simulate(strat, lambda c: c.sum(-1).astype(jnp.float32), 7, jax.random.PRNGKey(1))
    assert hist.candidates.shape == (7, 6) and hist.candidates.dtype == jnp.int32  # ceil(7 / 3) asks
    genotype = strat.space.decode(np.asarray(hist.best))
    assert space.validate(genotype) and len(genotype.ops) == 6


def test_host_loop_with_genotypes():
    space = NB201Space()
    strat = strategies.regularized_evolution(space)
    seen = []
    best, reward, history = strategies.run(
        strat, lambda g: float(g.ops.count("nor_conv_3x3")), 30, jax.random.PRNGKey(0),
        callback=lambda i, g, r: seen.append(i))
    assert len(history) == 30 and seen == list(range(30))
    assert reward == max(r for _, r in history) and space.validate(best)


@pytest.mark.parametrize("name", ["rea", "reinforce"])
def test_darts_space_through_its_array_view(name):
    space = get_space("darts")
    strat = strategies.get_strategy(name, space)
    sep = space.choices.index("sep_conv_3x3")
    ops = np.array([p for p in range(24) if p % 3 != 0])  # op positions (per cell and node: subset, op, op)

    def objective(c):  # how many genes use sep_conv_3x3
        return (c[:, ops] == sep).sum(-1).astype(jnp.float32)

    hist = strategies.simulate(strat, objective, 30, jax.random.PRNGKey(0))
    assert hist.candidates.shape == (30, 24)
    for c in np.asarray(hist.candidates[::7]):
        g = space.validate(strat.space.decode(c))
        assert sum(op == "sep_conv_3x3" for op, _ in g.normal + g.reduce) == objective(jnp.asarray(c)[None])[0]
    assert float(hist.best_reward) >= float(hist.rewards[:10].max())


def test_evolution_ages_out_the_oldest_member():
    strat = strategies.regularized_evolution(SPACE, population_size=3, tournament_size=2)
    state = strat.init(jax.random.PRNGKey(0))
    for k in range(5):
        state = strat.tell(state, jnp.full((1, 5), k % 3, jnp.int32), jnp.array([10.0 - k]))
    # members 0 and 1 (the best rewards) are gone: the population holds the 3 most recent, whatever their reward
    assert sorted(np.asarray(state.rewards).tolist()) == [6.0, 7.0, 8.0]


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown strategy 'sa'; allowed: random, rea, reinforce, bo"):
        strategies.get_strategy("sa", SPACE)
    with pytest.raises(ValueError, match="no array view for search space object"):
        strategies.get_strategy("random", object())
    with pytest.raises(ValueError, match="tournament_size"):
        strategies.regularized_evolution(SPACE, population_size=2, tournament_size=3)
    with pytest.raises(ValueError, match="batch_size"):
        strategies.random_search(SPACE, batch_size=0)
    with pytest.raises(ValueError, match="num_choices"):
        strategies.categorical(())


def test_bo_incremental_inverse_matches_a_direct_inverse():
    from jaxnas.strategies.bo import _sqdist

    strat = strategies.bayesian_optimization(SPACE, capacity=32, lengthscales=(1.0, 2.0), noise=1e-2)
    cands = jax.vmap(SPACE.sample)(jax.random.split(jax.random.PRNGKey(0), 24))
    state = jax.jit(strat.tell)(strat.init(jax.random.PRNGKey(1)), cands, objective(cands))
    F = jax.vmap(SPACE.encode)(cands)
    for g, ls in enumerate((1.0, 2.0)):
        K = np.exp(-0.5 * np.asarray(_sqdist(F, F)) / ls**2) + 1e-2 * np.eye(24)
        np.testing.assert_allclose(state.Kinv[g][:24, :24], np.linalg.inv(K), atol=2e-3)
        np.testing.assert_allclose(state.logdet[g], np.linalg.slogdet(K)[1], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(state.Kinv[g][24:, 24:], np.eye(8))  # unused slots stay decoupled
