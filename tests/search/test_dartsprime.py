"""DARTS-PRIME's pieces (clipped activation, proximity and ADMM terms, the jittable DARTS derivation) and ASAP's
pruning, on hand-made inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnas import registry, relax
from jaxnas.runners.search import PRUNED, SearchConfig, prune_arch
from jaxnas.search import regularizers


def test_clipped_weights_start_at_one_over_ops_and_a_pruned_op_stays_pruned():
    arch = {"cell": jnp.asarray([[-0.5, 0.2, 1.7], [0.0, 0.3, 0.9]])}
    np.testing.assert_allclose(relax.clipped(arch)["cell"], [[0.0, 0.2, 1.0], [0.0, 0.3, 0.9]])
    start = relax.clipped.initial_arch({"cell": jnp.full((2, 4), 1e-3)})
    np.testing.assert_allclose(start["cell"], 0.25 + 1e-4)
    old = {"cell": jnp.asarray([[0.0, 0.2, 0.5]])}
    new = {"cell": jnp.asarray([[0.3, -0.1, 1.2]])}  # a pruned op pushed back up; a live one below 0; one above 1
    np.testing.assert_allclose(relax.clipped.project_arch(old, new)["cell"], [[0.0, 0.0, 1.0]])
    assert not relax.clipped.normalized and relax.softmax.normalized
    assert relax.get_relaxation("crb") is relax.clipped
    # the passthrough entries (PC-DARTS's edge logits) are neither re-initialised nor projected
    through = relax.with_passthrough(relax.clipped, ("normal_edges",))
    tree = {"normal": jnp.full((1, 2), -1.0), "normal_edges": jnp.full((3,), -1.0)}
    out = through.project_arch(tree, tree)
    np.testing.assert_allclose(out["normal"], 0.0)
    np.testing.assert_allclose(out["normal_edges"], -1.0)


def test_the_jittable_darts_rule_is_the_darts_rule():
    space = registry.get_space("darts")
    for seed in range(5):
        arch = space.init_arch(jax.random.key(seed), scale=1.0)
        code = space.encode(space.derive(arch)).reshape(2, space.num_edges, len(space.primitives))
        discrete = jax.jit(space.discrete_weights)(relax.softmax(arch))
        np.testing.assert_array_equal(np.asarray(discrete["normal"]), code[0])
        np.testing.assert_array_equal(np.asarray(discrete["reduce"]), code[1])
    nb201 = registry.get_space("nb201")
    arch = nb201.init_arch(jax.random.key(0), scale=1.0)
    np.testing.assert_array_equal(np.asarray(nb201.discrete_weights(relax.softmax(arch))["cell"]),
                                  np.asarray(nb201.one_hot_weights(nb201.derive(arch))["cell"]))


def test_unnormalised_weights_are_ranked_as_they_are_across_edges():
    """Node 3's three edges: A (from input 0) has one op at 0.6 among ops at 0.59, B (input 1) one at 0.5 among
    0.01s, C (input 2) one at 0.55 among 0.01s. By value A and C are kept; by softmax, which flattens A to about
    1/8, B and C are."""
    space = registry.get_space("darts")
    arch = {c: np.full((space.num_edges, len(space.primitives)), 0.01, np.float32) for c in ("normal", "reduce")}
    sep, dil = space.primitives.index("sep_conv_3x3"), space.primitives.index("dil_conv_3x3")
    arch["normal"][2, :] = 0.59
    arch["normal"][2, sep] = 0.6
    arch["normal"][3, dil] = 0.5
    arch["normal"][4, sep] = 0.55
    assert space.derive(arch, scores="values").normal[2:4] == (("sep_conv_3x3", 0), ("sep_conv_3x3", 2))
    assert space.derive(arch).normal[2:4] == (("dil_conv_3x3", 1), ("sep_conv_3x3", 2))
    with pytest.raises(ValueError, match="unknown scores"):
        space.derive(arch, scores="max")


def test_proximity_grows_with_progress_and_vanishes_at_the_derived_cell():
    space = registry.get_space("nb201")
    activation = relax.clipped
    prox = regularizers.proximity(lambda a: activation(a), space.discrete_weights, rho=1e-3, total_steps=100)
    arch = {"cell": jnp.asarray(np.random.default_rng(0).uniform(0.1, 0.9, (6, 5)), jnp.float32)}
    zeros = jax.tree_util.tree_map(jnp.zeros_like, arch)
    g0, _ = prox.update(zeros, prox.init(arch), arch, step=0)
    g50, _ = prox.update(zeros, prox.init(arch), arch, step=50)
    g100, _ = prox.update(zeros, prox.init(arch), arch, step=100)
    np.testing.assert_allclose(g0["cell"], 0.0)
    np.testing.assert_allclose(2 * g50["cell"], g100["cell"], rtol=1e-6)
    # at progress 1: the gradient of rho/2 ||w - d||, i.e. rho/2 (w - d) / ||w - d||
    d = np.asarray(space.discrete_weights(arch)["cell"])
    diff = np.asarray(arch["cell"]) - d
    np.testing.assert_allclose(g100["cell"], 5e-4 * diff / np.linalg.norm(diff), rtol=1e-5)
    at_cell = {"cell": jnp.asarray(d)}  # clipped weights equal to the one-hot cell: nothing to pull
    g, _ = prox.update(zeros, prox.init(at_cell), at_cell, step=100)
    np.testing.assert_allclose(g["cell"], 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="step="):
        prox.update(zeros, prox.init(arch), arch)


def test_admm_updates_its_discrete_and_dual_variables_every_few_updates():
    space = registry.get_space("nb201")
    admm = regularizers.admm(relax.softmax, space.discrete_weights, rho=1e-3, every=2)
    arch = space.init_arch(jax.random.key(3), scale=1.0)
    w = np.asarray(relax.softmax(arch)["cell"])
    zeros = jax.tree_util.tree_map(jnp.zeros_like, arch)
    state = admm.init(arch)
    np.testing.assert_allclose(state.z["cell"], w, rtol=1e-6)  # z starts at the weights, u at 0
    for _ in range(2):  # updates 0 and 1 use the initial z, u
        g, state = admm.update(zeros, state, arch)
        np.testing.assert_allclose(state.u["cell"], 0.0)
    # at z = w, u = 0 the term is 0 and so is its (safe) gradient
    np.testing.assert_allclose(g["cell"], 0.0, atol=1e-12)
    g, state = admm.update(zeros, state, arch)  # update 2 refreshes: z = D(w + u), u = u + w - z
    z = np.eye(5)[w.argmax(-1)]
    np.testing.assert_allclose(state.z["cell"], z)
    np.testing.assert_allclose(state.u["cell"], w - z, rtol=1e-5, atol=1e-7)
    # the gradient is that of rho/2 ||w(a) - z + u|| = rho/2 ||2w - 2z||, through the softmax
    expect = jax.grad(lambda a: 5e-4 * optax.safe_norm(jnp.ravel(
        relax.softmax(a)["cell"] - z + (w - z)), 0.0))(arch)
    np.testing.assert_allclose(g["cell"], expect["cell"], rtol=1e-5, atol=1e-9)
    assert int(state.count) == 3


def test_asap_prunes_weak_ops_for_good_and_keeps_each_edges_strongest():
    arch = {"cell": np.log(np.asarray([[0.5, 0.3, 0.1, 0.06, 0.04], [0.2] * 5], np.float32))}
    pruned, count = prune_arch(arch, temperature=1.0, threshold=0.4)  # below 0.4 / 5 = 0.08
    assert count == 2
    assert (pruned["cell"][0, 3:] == PRUNED).all() and (pruned["cell"][0, :3] == arch["cell"][0, :3]).all()
    assert (pruned["cell"][1] == arch["cell"][1]).all()
    np.testing.assert_array_equal(np.asarray(jax.nn.softmax(jnp.asarray(pruned["cell"]))[0, 3:]), 0.0)
    # a pruned op stays pruned, and a colder temperature prunes more
    again, count = prune_arch(pruned, temperature=0.3, threshold=0.4)
    assert count == 3 and (again["cell"][0, 2:] == PRUNED).all()


def test_the_new_fields_reject_what_makes_no_sense():
    with pytest.raises(ValueError, match="samples them"):
        SearchConfig(relaxation="gdas", proximity_weight=1e-3)
    with pytest.raises(ValueError, match="prunes softmax"):
        SearchConfig(relaxation="sigmoid", prune_fraction=0.4)
    with pytest.raises(ValueError, match="below 1"):
        SearchConfig(prune_fraction=1.0)
    with pytest.raises(ValueError, match="does not combine"):
        SearchConfig(arch_schedule="dynamic", perturbation="random")
    with pytest.raises(ValueError, match="arch_schedule"):
        SearchConfig(arch_schedule="sometimes")
    with pytest.raises(ValueError, match="schedule_multiplier"):
        SearchConfig(arch_schedule="dynamic", schedule_multiplier=1.0)
