"""The chained gradient (jaxnas.nn.chain) computes what jax.vjp of the whole supernet computes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas import relax
from jaxnas.nn.chain import ChainedVJP
from jaxnas.nn.networks import init_variables
from jaxnas.nn.supernet import DartsSearchNetwork
from jaxnas.registry import get_space
from jaxnas.search.steps import OptimConfig, init_search_state, make_arch_optimizer, make_step, make_weight_optimizer

X = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
Y = jnp.array([1, 3])


def _whole(model, variables, weights, hard):
    def f(p, w):
        out, upd = model.apply({**variables, "params": p}, X, w, train=True, hard=hard, mutable=["batch_stats"])
        return out, upd["batch_stats"]

    return jax.vjp(f, variables["params"], weights, has_aux=True)


def _close(a, b, rtol=2e-3):
    """Leaf by leaf, ``|a - b| <= rtol |b|`` in the 2-norm: float rounding through batch norm over a few values
    (the tiny network's last cells see 2x2 maps of 2 images) reaches 1e-3 relative in the first layers' gradients;
    a wrong cotangent is off by order one."""
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        assert x.shape == y.shape
        assert np.linalg.norm(x - y) <= rtol * np.linalg.norm(y) + 1e-7, (np.linalg.norm(x - y), np.linalg.norm(y))


@pytest.mark.slow
@pytest.mark.parametrize("options, hard", [
    ({}, False),
    ({"partial_channels": 2, "edge_normalization": True}, True),  # per-edge scales from the weights, one-hot edges
])
def test_chain_equals_the_whole_networks_vjp(options, hard):
    model = DartsSearchNetwork(C=4, layers=3, num_classes=5, steps=2, multiplier=2, impl="xla", **options)
    space_options = {"edge_normalization": True} if options.get("edge_normalization") else {}
    arch = get_space("darts", steps=2, **space_options).init_arch(jax.random.PRNGKey(1), scale=1.0)
    edge_keys = tuple(k for k in arch if k.endswith("_edges"))
    rel = relax.with_passthrough("gdas" if hard else "softmax", edge_keys)
    weights = rel(arch, jax.random.PRNGKey(3), 1.0)
    variables = init_variables(model, jax.random.PRNGKey(2), X, weights, train=False)

    out, vjp, bs = _whole(model, variables, weights, hard)
    ct = jax.random.normal(jax.random.PRNGKey(4), out.shape)
    g_params, g_weights = vjp(ct)

    chained = ChainedVJP(model.chain(hard=hard))
    c_out, c_bs, backward = chained.forward(variables["params"], variables["batch_stats"], X, weights)
    c_params, c_weights = backward(ct)
    _close(c_out, out)
    _close(c_bs, bs)
    _close(c_params, g_params)
    _close(c_weights, g_weights)
    none, arch_only = backward(ct, params=False)  # the backward programs without the weights' cotangent
    assert none is None
    _close(arch_only, c_weights)


@pytest.mark.slow
def test_a_chained_first_order_split_step_equals_the_unchained_one():
    model = DartsSearchNetwork(C=4, layers=3, num_classes=5, steps=2, multiplier=2, impl="xla")
    cfg = OptimConfig()
    w_opt, a_opt = make_weight_optimizer(cfg, 10), make_arch_optimizer(cfg)
    arch = get_space("darts", steps=2).init_arch(jax.random.PRNGKey(1))
    state = init_search_state(model, arch, X, jax.random.PRNGKey(2), w_opt, a_opt)
    ends = []
    for chain in (False, True):
        step = make_step(model, mode="bilevel-1st", w_optimizer=w_opt, a_optimizer=a_opt, split=True,
                         chain_cells=chain, arch_only_pass=True, donate=False, accuracy_fn=None)
        s, metrics = step(state, (X, Y), (X, Y))
        ends.append((s.params, s.batch_stats, s.arch, metrics))
    _close(ends[1], ends[0])


def test_chain_cells_needs_a_split_step_and_a_chainable_model():
    model = DartsSearchNetwork(C=4, layers=3, num_classes=5, steps=2, multiplier=2, impl="xla")
    cfg = OptimConfig()
    w_opt, a_opt = make_weight_optimizer(cfg, 10), make_arch_optimizer(cfg)
    with pytest.raises(ValueError, match="chain_cells=True"):
        make_step(model.apply, w_optimizer=w_opt, a_optimizer=a_opt, split=True, chain_cells=True)
    with pytest.raises(ValueError, match="chain_cells=True"):
        make_step(model, w_optimizer=w_opt, a_optimizer=a_opt, split=False, chain_cells=True)
