"""Growable supernet specs: validation, JSON, architecture trees, derivation, the recurrent cell protocol."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.nn import grow
from jaxnas import relax


def test_dense_cell_structure_and_arch_tree():
    spec = grow.conv_net_spec(width=4, cells=2, nodes=3, ops=("none", "skip_connect", "sep_conv_3x3"))
    cell = spec.cells[0]
    assert [len(n.slots[0]) for n in cell.nodes] == [1, 2, 3]  # node k reads the input and nodes 0..k-1
    arch = grow.init_arch(spec, jax.random.key(0))
    assert set(arch) == {"cell0", "cell1"}
    assert set(arch["cell0"]) == {name for name, *_ in cell.edges()}
    assert all(v.shape == (3,) for v in arch["cell0"].values())
    rspec = grow.recurrent_spec(hidden=5, nodes=2)
    rarch = grow.init_arch(rspec, jax.random.key(0))
    assert {"n0_comb", "n1_comb"} <= set(rarch)
    assert sum(1 for _ in rspec.cell.edges()) == 2 * (2 + 3)


def test_json_round_trip():
    for spec in (grow.conv_net_spec(width=3, cells=2, nodes=2, reduce_after=(0,)), grow.recurrent_spec(4, 3)):
        again = grow.spec_from_json(grow.spec_to_json(spec))
        assert again == spec and hash(again) == hash(spec)


@pytest.mark.parametrize("build, message", [
    (lambda: grow.ConvNetSpec(4, (grow.CellSpec(1, (grow.NodeSpec(((grow.EdgeSpec(1, ("none",)),),)),)),)),
     "only states"),
    (lambda: grow.ConvNetSpec(4, (grow.CellSpec(1, (grow.NodeSpec(((grow.EdgeSpec(0, ("conv_9",)),),)),)),)),
     "unknown op"),
    (lambda: grow.ConvNetSpec(4, (grow.CellSpec(1, (grow.NodeSpec(((grow.EdgeSpec(0, ("none", "none")),),)),)),)),
     "repeats"),
    (lambda: grow.ConvNetSpec(0, (grow.dense_cell(1, 1, ("none",)),)), "width"),
    (lambda: grow.RecurrentSpec(4, grow.dense_cell(2, 1, ("tanh",), slots=1)), "2 slot"),
    (lambda: grow.ConvNetSpec(4, (grow.dense_cell(1, 1, ("none",)),), reduce_after=(3,)), "reduce_after"),
    (lambda: grow.spec_from_json({"family": "mlp"}), "unknown spec family"),
])
def test_bad_specs_raise_one_clear_error(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_derive_keeps_strongest_edges_and_derived_net_runs():
    spec = grow.conv_net_spec(width=3, cells=1, nodes=2, ops=("none", "skip_connect", "sep_conv_3x3"),
                              num_classes=2)
    arch = jax.tree_util.tree_map(jnp.zeros_like, grow.init_arch(spec, jax.random.key(0)))
    arch["cell0"]["n1_s0_e0"] = jnp.array([9.0, 0.0, 1.0])  # 'none' is never chosen: sep_conv wins this edge
    arch["cell0"]["n1_s0_e1"] = jnp.array([0.0, 3.0, 0.0])
    arch["cell0"]["n1_s0_e2"] = jnp.array([0.0, 0.0, 0.5])
    derived = grow.derive(spec, arch)
    node1 = derived.cells[0].nodes[1].slots[0]
    assert [(e.src, e.ops) for e in node1] == [(0, ("sep_conv_3x3",)), (1, ("skip_connect",))]
    weights = grow.derived_weights(derived)
    model = grow.GrowConvNet(derived)
    x = jnp.ones((2, 6, 6, 1))
    variables = model.init(jax.random.key(1), x, weights, train=False)
    assert model.apply(variables, x, weights, train=False).shape == (2, 2)


def test_recurrent_cell_protocol_and_errors():
    spec = grow.recurrent_spec(hidden=3, nodes=2)
    cell = grow.GrowRecurrentCell(spec)
    carry = cell.initial_carry(2)
    assert carry.shape == (2, 3)
    weights = relax.softmax(grow.init_arch(spec, jax.random.key(0)))
    variables = cell.init(jax.random.key(1), carry, jnp.ones((2, 4)), weights)
    carry2, h = jax.jit(cell.apply)(variables, carry, jnp.ones((2, 4)), weights)
    assert h.shape == (2, 3) and bool(jnp.all(jnp.abs(h) < 1))  # tanh output
    np.testing.assert_array_equal(carry2, h)
    bad = dict(weights)
    bad["n0_s0_e0"] = jnp.ones((2,))
    with pytest.raises(ValueError, match="weights must have shape"):
        cell.apply(variables, carry, jnp.ones((2, 4)), bad)
    with pytest.raises(ValueError, match="needs edge weights"):
        cell.apply(variables, carry, jnp.ones((2, 4)), None)


def test_hadamard_combiner_multiplies_slots():
    """With one-hot 'hadamard' combiner weights, a node is the product of its two slots."""
    spec = grow.RecurrentSpec(2, grow.CellSpec(2, (grow.NodeSpec(((grow.EdgeSpec(0, ("identity",)),),
                                                                  (grow.EdgeSpec(1, ("identity",)),))),)))
    cell = grow.GrowRecurrentCell(spec)
    w = {"n0_s0_e0": jnp.ones((1,)), "n0_s1_e1": jnp.ones((1,)), "n0_comb": jnp.array([0.0, 1.0])}
    h0, x = jnp.array([[0.3, -0.2]]), jnp.array([[1.0, 2.0, 3.0]])
    variables = cell.init(jax.random.key(0), h0, x, w)
    p = variables["params"]
    xp = x @ p["input"]["kernel"] + p["input"]["bias"]
    a = xp @ p["cell"]["n0_s0_e0"]["dense"]["kernel"] + p["cell"]["n0_s0_e0"]["dense"]["bias"]
    b = h0 @ p["cell"]["n0_s1_e1"]["dense"]["kernel"] + p["cell"]["n0_s1_e1"]["dense"]["bias"]
    _, h = cell.apply(variables, h0, x, w)
    np.testing.assert_allclose(h, jnp.tanh(a * b), rtol=1e-5, atol=1e-6)
