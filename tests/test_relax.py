"""Relaxations (arch -> edge weights) and temperature schedules."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas import relax
from jaxnas.spaces import DartsSpace, NB201Space



def rkey(seed):
    """An 'rbg' PRNG key: XLA:CPU compiles its sampling far faster than threefry's."""
    return jax.random.key(seed, impl="rbg")


ARCHS = {
    "nb201": NB201Space().init_arch(rkey(0), scale=1.0),
    "darts": DartsSpace().init_arch(rkey(1), scale=1.0),
}


@pytest.mark.parametrize("name", sorted(relax.RELAXATIONS))
@pytest.mark.parametrize("space", sorted(ARCHS))
def test_every_relaxation_keeps_the_arch_tree(name, space):
    r = relax.RELAXATIONS[name]
    arch = ARCHS[space]
    w = r(arch, rkey(2), 0.5)
    relax.check_same_tree(w, arch)
    chex.assert_tree_all_finite(w)
    for leaf in jax.tree_util.tree_leaves(w):
        leaf = np.asarray(leaf)
        assert leaf.min() >= 0 and leaf.max() <= 1
        if r.hard:  # exactly one-hot forward values
            assert set(np.unique(leaf)) <= {0.0, 1.0}
            np.testing.assert_array_equal(leaf.sum(-1), 1.0)
        elif r.normalized and name != "sigmoid":  # sigmoid and clipped weigh each op on its own
            np.testing.assert_allclose(leaf.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(relax.RELAXATIONS))
def test_relaxations_are_deterministic_given_the_key(name):
    r = relax.RELAXATIONS[name]
    a = r(ARCHS["darts"], rkey(3), 1.0)
    b = r(ARCHS["darts"], rkey(3), 1.0)
    chex.assert_trees_all_equal(a, b)
    if r.stochastic:
        c = r(ARCHS["darts"], rkey(4), 1.0)
        assert not np.array_equal(np.asarray(a["normal"]), np.asarray(c["normal"]))
        with pytest.raises(ValueError, match="PRNG key"):
            r(ARCHS["darts"], None, 1.0)


def test_softmax_and_sigmoid_values():
    logits = jnp.array([[1.0, 2.0, 0.0]])
    np.testing.assert_allclose(relax.softmax({"c": logits}, None, 2.0)["c"], jax.nn.softmax(logits / 2.0), rtol=1e-6)
    np.testing.assert_allclose(relax.sigmoid({"c": logits}, None, 0.5)["c"], jax.nn.sigmoid(logits / 0.5), rtol=1e-6)
    sharp = relax.softmax({"c": logits}, None, 1e-3)["c"]
    np.testing.assert_allclose(sharp, [[0.0, 1.0, 0.0]], atol=1e-6)


def test_hard_gumbel_is_straight_through_and_uniform_has_no_gradient():
    arch = {"cell": jnp.array([[0.3, -0.2, 0.1, 0.0]])}
    key = rkey(5)
    probe = jnp.array([[1.0, 2.0, 3.0, 4.0]])

    def through(r):
        return jax.grad(lambda a: jnp.sum(r(a, key, 0.7)["cell"] * probe))(arch)["cell"]

    soft = jax.grad(lambda a: jnp.sum(relax.gumbel(a, key, 0.7)["cell"] * probe))(arch)["cell"]
    np.testing.assert_allclose(through(relax.hard_gumbel), soft, rtol=1e-6)  # gradient of the soft sample
    assert np.abs(np.asarray(soft)).sum() > 0
    np.testing.assert_array_equal(through(relax.uniform), 0.0)
    # hard gumbel picks the argmax of the (same) soft sample
    hard = relax.hard_gumbel(arch, key, 0.7)["cell"]
    assert int(jnp.argmax(hard)) == int(jnp.argmax(relax.gumbel(arch, key, 0.7)["cell"]))


def test_uniform_samples_every_op():
    arch = {"cell": jnp.zeros((200, 5))}
    counts = np.asarray(relax.uniform(arch, rkey(6))["cell"]).sum(0)
    assert counts.min() > 20


def test_argmax_picks_the_strongest_op():
    arch = {"cell": jnp.array([[0.1, 0.9, 0.2], [0.5, 0.0, -1.0]])}
    np.testing.assert_array_equal(relax.argmax(arch)["cell"], [[0, 1, 0], [1, 0, 0]])


def test_get_relaxation_names_and_aliases():
    assert relax.get_relaxation("gdas") is relax.hard_gumbel
    assert relax.get_relaxation("darts") is relax.softmax
    assert relax.get_relaxation(relax.uniform) is relax.uniform
    assert relax.get_relaxation("spos").hard and not relax.get_relaxation("spos").differentiable
    with pytest.raises(ValueError, match="unknown relaxation 'nope'; allowed: argmax"):
        relax.get_relaxation("nope")


def test_register_a_new_relaxation():
    def tempered_sparsemax_like(logits, key, t):
        del key
        z = jax.nn.relu(logits / t)
        return z / (z.sum(-1, keepdims=True) + 1e-9)

    r = relax.register_relaxation(relax.Relaxation(tempered_sparsemax_like), name="relu_norm")
    try:
        assert relax.get_relaxation("relu_norm") is r and r.name == "relu_norm"
        w = r({"cell": jnp.array([[1.0, -1.0, 3.0]])}, None, 1.0)["cell"]
        np.testing.assert_allclose(w, [[0.25, 0.0, 0.75]], rtol=1e-6)
        with pytest.raises(ValueError, match="taken"):
            relax.register_relaxation(r, name="softmax")
    finally:
        del relax.RELAXATIONS["relu_norm"]


@pytest.mark.parametrize(
    "arch, match",
    [
        ({}, "empty"),
        ({"cell": jnp.zeros((6, 5), jnp.int32)}, "dtype"),
        ({"cell": jnp.float32(1.0)}, "shape"),
        ({"cell": [[0.0, 1.0]]}, "not an array"),
    ],
)
def test_bad_arch_is_a_value_error(arch, match):
    with pytest.raises(ValueError, match=match):
        relax.softmax(arch)


def test_check_same_tree_names_the_difference():
    with pytest.raises(ValueError, match=r"allowed leaves \[\"\['normal'\]\", \"\['reduce'\]\"\]"):
        relax.check_same_tree(ARCHS["nb201"], ARCHS["darts"])
    with pytest.raises(ValueError, match=r"\['cell'\] has shape \(6, 4\)"):
        relax.check_same_tree({"cell": jnp.zeros((6, 4))}, ARCHS["nb201"])


def test_gdas_schedule_is_linear_over_epochs():
    t = relax.gdas_temperature(epochs=5, steps_per_epoch=3)
    values = np.array([float(t(s)) for s in range(16)])
    np.testing.assert_allclose(values[[0, 1, 2]], 10.0)
    np.testing.assert_allclose(values[[3, 5]], 10.0 - 9.9 / 4, rtol=1e-6)
    np.testing.assert_allclose(values[12:], 0.1, rtol=1e-5)  # last epoch and beyond


def test_other_schedules():
    lin = relax.linear(1.0, 0.0, 10)
    np.testing.assert_allclose([float(lin(s)) for s in (0, 5, 10, 20)], [1.0, 0.5, 0.0, 0.0], atol=1e-7)
    ex = relax.exponential(2.0, 0.5, end=0.5, steps_per_unit=2)
    np.testing.assert_allclose(float(ex(2)), 2.0 * np.exp(-0.5), rtol=1e-6)
    np.testing.assert_allclose(float(ex(1000)), 0.5)
    asap = relax.asap_temperature(steps_per_epoch=10)
    assert float(asap(0)) > float(asap(50)) > float(asap(10_000)) == pytest.approx(0.03)
    assert float(relax.as_schedule(0.3)(7)) == pytest.approx(0.3)
    # schedules trace: one compilation serves every step
    traced = jax.jit(chex.assert_max_traces(lambda s: relax.gdas_temperature(5, 3)(s), n=1))
    assert float(traced(jnp.int32(0))) == pytest.approx(10.0)
    assert float(traced(jnp.int32(14))) == pytest.approx(0.1, rel=1e-5)
