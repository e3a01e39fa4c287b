"""The differentiable-NAS family's pieces on hand-made inputs: DrNAS's Dirichlet relaxation and KL anchor,
FairDARTS's zero-one loss, SDARTS's weight perturbations (projection, random and adversarial, split == one program),
MS-DARTS's mean shift."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from jaxnas import relax
from jaxnas.search import OptimConfig, init_search_state, make_arch_optimizer, make_step, make_weight_optimizer
from jaxnas.search.regularizers import dirichlet_kl, dirichlet_kl_divergence, zero_one_loss
from jaxnas.search.steps import (OpDropout, WeightPerturbation, mean_shift_point, pgd_delta, project_weights,
                                 random_delta)

from tests.helpers.tiny_model import TinySupernet, arch_init, batch

MODEL = TinySupernet()


def rkey(seed):
    return jax.random.key(seed, impl="rbg")


# -- DrNAS ------------------------------------------------------------------------------------------------------


def test_dirichlet_samples_have_the_concentrations_mean_and_a_pathwise_gradient():
    logits = jnp.array([[0.0, 1.0, -0.5, 2.0]])
    conc = np.asarray(relax.dirichlet_concentration(logits))[0]
    np.testing.assert_allclose(conc, [1.0, 2.0, np.exp(-0.5), 3.0], rtol=1e-6)  # elu(a) + 1
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    samples = jax.vmap(lambda k: relax.dirichlet({"cell": logits}, k)["cell"][0])(keys)
    np.testing.assert_allclose(samples.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(samples.mean(0), conc / conc.sum(), atol=0.01)
    again = relax.dirichlet({"cell": logits}, jax.random.PRNGKey(3))["cell"]
    np.testing.assert_array_equal(again, relax.dirichlet({"cell": logits}, jax.random.PRNGKey(3))["cell"])

    def expected_first(a):  # d E[w_0] / d a_0 > 0 and d E[w_0] / d a_3 < 0 (Monte Carlo, pathwise)
        return jax.vmap(lambda k: relax.dirichlet({"cell": a}, k)["cell"][0, 0])(keys).mean()

    g = np.asarray(jax.grad(expected_first)(logits))[0]
    exact = jax.grad(lambda a: (relax.dirichlet_concentration(a) / relax.dirichlet_concentration(a).sum())[0, 0])(logits)
    np.testing.assert_allclose(g, np.asarray(exact)[0], atol=0.01)
    assert relax.get_relaxation("drnas").name == "dirichlet" and relax.dirichlet.stochastic


def test_dirichlet_kl_is_zero_at_the_anchor_and_matches_monte_carlo():
    assert float(dirichlet_kl({"cell": jnp.zeros((6, 5))})) == pytest.approx(0.0, abs=1e-6)  # elu(0) + 1 = 1
    q, p = np.array([2.0, 0.7, 3.5]), np.array([1.0, 1.0, 1.0])
    x = stats.dirichlet(q).rvs(size=20000, random_state=0)
    monte_carlo = np.mean(stats.dirichlet(q).logpdf(x.T) - stats.dirichlet(p).logpdf(x.T))
    assert float(dirichlet_kl_divergence(jnp.asarray(q), jnp.asarray(p))) == pytest.approx(monte_carlo, rel=0.03)
    assert float(dirichlet_kl({"cell": jnp.full((2, 3), 1.5)})) > 0


# -- FairDARTS ----------------------------------------------------------------------------------------------------


def test_zero_one_loss_is_lowest_at_zero_and_one_and_pushes_away_from_a_half():
    assert float(zero_one_loss({"a": jnp.array([0.0, 1.0, 1.0, 0.0])})) == pytest.approx(-0.25)
    assert float(zero_one_loss({"a": jnp.full((4,), 0.5)})) == pytest.approx(0.0)
    g = jax.grad(lambda w: zero_one_loss({"a": w}))(jnp.array([0.4, 0.6]))
    assert g[0] > 0 and g[1] < 0  # descent moves 0.4 down and 0.6 up


# -- SDARTS -------------------------------------------------------------------------------------------------------


def test_projection_and_perturbations_stay_valid_weights():
    w = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(0), (6, 5)), -1)
    p = project_weights(jnp.array([[-0.3, 0.2, 1.4], [-1.0, -2.0, -0.5]]))
    np.testing.assert_allclose(p, [[0.0, 0.2 / 1.2, 1.0 / 1.2], [0.0, 0.0, 1.0]], rtol=1e-6)
    d = random_delta({"cell": w}, jax.random.PRNGKey(1), 0.1)["cell"]
    v = w + d
    assert np.all(v >= 0) and np.allclose(v.sum(-1), 1.0, atol=1e-6) and float(jnp.abs(d).max()) > 0.01
    d2 = pgd_delta({"cell": w}, {"cell": d}, {"cell": jnp.ones_like(w)}, 0.1, 0.05)["cell"]
    assert np.all(w + d2 >= 0) and np.allclose((w + d2).sum(-1), 1.0, atol=1e-6)


def _run(mode, perturbation, split, steps=2):
    cfg = OptimConfig()
    w_opt, a_opt = make_weight_optimizer(cfg, total_steps=10), make_arch_optimizer(cfg)
    state = init_search_state(MODEL, arch_init(rkey(1)), batch(0)[0], rkey(0), w_opt, a_opt)
    step = make_step(MODEL, mode=mode, w_optimizer=w_opt, a_optimizer=a_opt, weight_perturbation=perturbation,
                     split=split, donate=False)
    for i in range(steps):
        state, metrics = step(state, batch(50 + i), batch(60 + i))
    return state, metrics


@pytest.mark.slow
def test_perturbed_weight_step_split_equals_one_program():
    """The adversarial step (its random start is the random step) split on CPU equals the one-program step."""
    perturbation = WeightPerturbation("adversarial", 0.2, steps=3)
    (one, m_one), (split, m_split) = (_run("bilevel-1st", perturbation, s) for s in (False, True))
    chex.assert_trees_all_close(m_split, m_one, rtol=1e-5)
    chex.assert_trees_all_close((split.params, split.arch), (one.params, one.arch), atol=1e-6)
    plain, _ = _run("bilevel-1st", None, True)
    assert not np.allclose(jax.tree_util.tree_leaves(split.params)[0], jax.tree_util.tree_leaves(plain.params)[0])
    # the first step's arch update sees unperturbed weights: same val loss as the plain search
    assert float(_run("bilevel-1st", perturbation, True, 1)[1]["val_loss"]) == \
        pytest.approx(float(_run("bilevel-1st", None, True, 1)[1]["val_loss"]), rel=1e-6)


@pytest.mark.slow
def test_zero_radius_is_the_plain_step_and_adversarial_raises_the_loss():
    zero, _ = _run("bilevel-1st", WeightPerturbation("random", 0.0), True, 1)
    plain, m_plain = _run("bilevel-1st", None, True, 1)
    chex.assert_trees_all_close(zero.params, plain.params, atol=1e-6)
    _, m_adv = _run("bilevel-1st", WeightPerturbation("adversarial", 0.3, steps=3), True, 1)
    assert float(m_adv["loss"]) >= float(m_plain["loss"])  # the weight step's loss at the kept perturbation


def test_perturbation_needs_a_bilevel_soft_step():
    w_opt, a_opt = optax.sgd(0.1), optax.adam(1e-3)
    with pytest.raises(ValueError, match="has no separate weight step"):
        make_step(MODEL, mode="single", w_optimizer=w_opt, a_optimizer=a_opt,
                  weight_perturbation=WeightPerturbation())
    with pytest.raises(ValueError, match="needs soft edge weights; 'hard_gumbel' is hard"):
        make_step(MODEL, mode="bilevel-1st", relaxation="gdas", w_optimizer=w_opt, a_optimizer=a_opt,
                  weight_perturbation=WeightPerturbation())
    with pytest.raises(ValueError, match="kind in random, adversarial"):
        make_step(MODEL, mode="bilevel-1st", w_optimizer=w_opt, a_optimizer=a_opt,
                  weight_perturbation=WeightPerturbation("gaussian"))


def test_mean_shift_moves_to_the_kernel_and_loss_weighted_mean():
    center = {"c": jnp.zeros((1, 2))}
    points = {"c": jnp.asarray([[[1.0, 0.0]], [[0.0, 1.0]], [[3.0, 0.0]]])}
    out = mean_shift_point(center, points, jnp.asarray([0.0, 0.0, 0.0]), bandwidth=1.0)
    k = np.exp(-0.5 * np.asarray([1.0, 1.0, 9.0]))  # equal losses: the kernel alone weighs the points
    np.testing.assert_allclose(out["c"][0], (k[:, None] * np.asarray([[1, 0], [0, 1], [3, 0]])).sum(0) / k.sum(),
                               rtol=1e-6)
    # a higher loss pulls the point towards its sample (softmax of the losses), a wide bandwidth evens the kernel
    hot = mean_shift_point(center, points, jnp.asarray([0.0, 5.0, 0.0]), bandwidth=1.0)
    assert float(hot["c"][0, 1]) > float(out["c"][0, 1])
    flat = mean_shift_point(center, points, jnp.zeros(3), bandwidth=1e3)
    np.testing.assert_allclose(flat["c"][0], [4 / 3, 1 / 3], rtol=1e-5)


@pytest.mark.slow
def test_mean_shift_step_split_equals_one_program_and_stays_valid():
    perturbation = WeightPerturbation("mean-shift", 0.2, steps=2, samples=3, bandwidth=1.0)
    (one, m_one), (split, m_split) = (_run("bilevel-1st", perturbation, s) for s in (False, True))
    chex.assert_trees_all_close(m_split, m_one, rtol=1e-5)
    chex.assert_trees_all_close((split.params, split.arch), (one.params, one.arch), atol=1e-6)
    plain, _ = _run("bilevel-1st", None, True)
    assert not np.allclose(jax.tree_util.tree_leaves(split.params)[0], jax.tree_util.tree_leaves(plain.params)[0])
    with pytest.raises(ValueError, match="bandwidth > 0"):
        make_step(MODEL, mode="bilevel-1st", w_optimizer=optax.sgd(0.1), a_optimizer=optax.adam(1e-3),
                  weight_perturbation=WeightPerturbation("mean-shift", bandwidth=0.0))


def _one_step(mode, op_dropout, split, donate=False):
    cfg = OptimConfig()
    w_opt, a_opt = make_weight_optimizer(cfg, total_steps=10), make_arch_optimizer(cfg)
    state = init_search_state(MODEL, arch_init(rkey(1)), batch(0)[0], rkey(0), w_opt, a_opt)
    step = make_step(MODEL, mode=mode, w_optimizer=w_opt, a_optimizer=a_opt, op_dropout=op_dropout, split=split,
                     donate=donate)
    return step(state, batch(50), batch(60))


@pytest.mark.slow
@pytest.mark.parametrize("split", [False, True])
def test_op_dropout_at_rate_zero_is_the_plain_step_and_at_a_high_rate_changes_it(split):
    plain, m_plain = _one_step("bilevel-1st", None, split)
    zero, m_zero = _one_step("bilevel-1st", OpDropout(1, 0.0), split)
    chex.assert_trees_all_close((zero.params, zero.arch), (plain.params, plain.arch), atol=1e-7)
    assert float(m_zero["loss"]) == pytest.approx(float(m_plain["loss"]), rel=1e-6)
    high, m_high = _one_step("bilevel-1st", OpDropout(1, lambda step: 0.9 + 0.0 * step), split)
    assert float(m_high["loss"]) != pytest.approx(float(m_plain["loss"]), rel=1e-4)


def test_a_pruned_op_is_left_out_of_the_dirichlet_and_its_kl():
    """DrNAS with pruned ops (P-DARTS's stages, keep_ops): the kept ops' weights are a sample of the Dirichlet over
    them alone (its mean), the pruned one is 0; rows without a pruned op are the plain sample bit for bit; the KL
    anchor is the KL over the kept ops."""
    logits = jnp.asarray([[0.5, relax.PRUNED, 0.2, 0.0]] * 4000)
    w = np.asarray(relax.dirichlet({"c": logits}, rkey(0))["c"])
    c = np.asarray(relax.dirichlet_concentration(jnp.asarray([0.5, 0.2, 0.0])))
    np.testing.assert_array_equal(w[:, 1], 0.0)
    np.testing.assert_allclose(w[:, [0, 2, 3]].mean(0), c / c.sum(), atol=0.01)
    plain = jnp.asarray([[0.5, 0.1, 0.2, 0.0]] * 8)
    np.testing.assert_array_equal(relax.dirichlet({"c": plain}, rkey(1))["c"],
                                  jax.random.dirichlet(jax.random.split(rkey(1), 1)[0],
                                                       relax.dirichlet_concentration(plain)))
    kl = float(dirichlet_kl({"c": logits[:1]}))
    expect = float(dirichlet_kl_divergence(jnp.asarray(c), jnp.ones(3)))
    assert kl == pytest.approx(expect, rel=1e-5) and np.isfinite(kl)
