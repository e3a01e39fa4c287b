import csv
import random

import jax
import jax.numpy as jnp
import optax
import pytest

from jaxnas.nn.costs import image_spec, profile
from jaxnas.nn.ops import count_params
from jaxnas.spaces.genotypes import DartsGenotype, get_cnn_genotype
from jaxnas.nn.networks import NB201Network, NetworkCIFAR, init_variables
from jaxnas.registry import get_space

NB201_DATASETS = (("cifar10", 10, 32), ("cifar100", 100, 32), ("imagenet16", 120, 16))


@pytest.mark.slow
def test_nb201_params_and_flops_match_the_benchmark_on_36_cells(shared_data):
    """Exact parameter counts and FLOPs within 1% on 36 cells: one of every (1x1 conv, 3x3 conv) count class (costs
    depend on these counts only) plus 8 random ones. experiments/check_nb201_costs.py checks all 15,625."""
    with open(shared_data / "nb201" / "nb201.csv") as f:
        rows = list(csv.DictReader(f))
    space = get_space("nb201")
    rng = random.Random(0)
    by_class = {}
    for row in rng.sample(rows, len(rows)):
        key = (row["arch_str"].count("nor_conv_1x1"), row["arch_str"].count("nor_conv_3x3"))
        by_class.setdefault(key, row)
    assert len(by_class) == 28
    sample = list(by_class.values()) + rng.sample(rows, 8)
    for row in sample:
        g = space.parse(row["arch_str"])
        for ds, classes, size in NB201_DATASETS:
            params, flops = profile(NB201Network(num_classes=classes, genotype=g, impl="xla"),
                                    image_spec(1, size), train=False)
            # the table keeps 6 significant digits (exact below 1e6 parameters, to the nearest 10 above)
            assert float(f"{params / 1e6:.6g}") == float(row[f"params_mb_{ds}"]), (row["index"], ds, params)
            assert abs(flops / 1e6 - float(row[f"flops_m_{ds}"])) <= 0.01 * float(row[f"flops_m_{ds}"])


def test_darts_v2_network_has_the_published_size():
    model = NetworkCIFAR(get_cnn_genotype("DARTS_V2"), C=36, layers=20, num_classes=10, auxiliary=True, impl="xla")
    params, _ = profile(model, image_spec(1, 32), train=False, exclude=("auxiliary_head",))
    assert params == 3349342


def test_nb201_network_forward_tiny():
    space = get_space("nb201")
    g = space.parse("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|")
    model = NB201Network(C=4, N=1, num_classes=7, genotype=g, impl="xla")
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
    v = init_variables(model, jax.random.PRNGKey(1), x, train=False)
    y, updates = jax.jit(lambda v: model.apply(v, x, train=True, mutable=["batch_stats"]))(v)
    assert y.shape == (2, 7) and bool(jnp.all(jnp.isfinite(y)))
    assert jax.tree_util.tree_structure(updates["batch_stats"]) == jax.tree_util.tree_structure(v["batch_stats"])


def test_all_none_nb201_cell_outputs_zero_features():
    g = get_space("nb201").parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    model = NB201Network(C=4, N=1, num_classes=3, genotype=g, impl="xla")
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
    v = init_variables(model, jax.random.PRNGKey(1), x, train=False)
    y = model.apply(v, x, train=False)
    assert y.shape == (2, 3)
    # with every edge 'none' the cells output zeros, so the logits do not depend on the input
    assert jnp.allclose(y, model.apply(v, 2.0 * x + 1.0, train=False), atol=1e-6)


@pytest.mark.slow
def test_network_cifar_aux_head_and_drop_path():
    model = NetworkCIFAR(get_cnn_genotype("PC_DARTS_cifar"), C=4, layers=3, num_classes=5, auxiliary=True, impl="xla")
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 32, 32, 3))
    v = init_variables(model, {"params": jax.random.PRNGKey(1), "dropout": jax.random.PRNGKey(2)}, x, train=False)

    @jax.jit
    def train_apply(drop_prob, key):
        out, _ = model.apply(v, x, train=True, drop_prob=drop_prob, rngs={"dropout": key}, mutable=["batch_stats"])
        return out

    logits, aux = train_apply(0.3, jax.random.PRNGKey(3))
    assert logits.shape == (2, 5) and aux.shape == (2, 5)
    logits2, _ = train_apply(0.3, jax.random.PRNGKey(4))
    assert not jnp.allclose(logits, logits2)  # a different drop-path mask changes the output
    no_drop_a, _ = train_apply(0.0, jax.random.PRNGKey(3))  # a traced probability of 0 keeps every path
    no_drop_b, _ = train_apply(0.0, jax.random.PRNGKey(4))
    assert jnp.allclose(no_drop_a, no_drop_b)
    logits_eval, aux_eval = jax.jit(lambda: model.apply(v, x, train=False, drop_prob=0.3))()
    assert aux_eval is None and logits_eval.shape == (2, 5)


def test_wrong_inputs_are_clear_errors():
    g = get_space("nb201").sample(jax.random.PRNGKey(0))
    model = NB201Network(C=4, N=1, genotype=g)
    with pytest.raises(ValueError, match="expected an NHWC image batch"):
        model.init(jax.random.PRNGKey(0), jnp.zeros((8, 8, 3)), train=False)
    with pytest.raises(ValueError, match="NB201Network needs an NB201Genotype, got DartsGenotype"):
        NB201Network(C=4, N=1, genotype=get_cnn_genotype("DARTS_V2")).init(
            jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3)), train=False)
    with pytest.raises(ValueError, match="auxiliary head needs a feature map of at least 5x5"):
        NetworkCIFAR(get_cnn_genotype("DARTS_V2"), C=4, layers=3, auxiliary=True).init(
            jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3)), train=False)


def test_a_node_with_three_inputs_builds_counts_its_parameters_and_trains():
    """A DARTS genotype whose node 0 reads three inputs (``normal_fan_in``): NetworkCIFAR builds it, its parameter
    count is DARTS_V2's plus the extra sep_conv_3x3 of its one normal cell, and SGD steps lower its loss."""
    v2 = get_cnn_genotype("DARTS_V2")
    normal = v2.normal[:2] + (("sep_conv_3x3", 0),) + v2.normal[2:]
    if ("sep_conv_3x3", 0) in v2.normal[:2]:
        normal = v2.normal[:2] + (("dil_conv_3x3", 0),) + v2.normal[2:]
    g = DartsGenotype(normal, v2.normal_concat, v2.reduce, v2.reduce_concat, (3, 2, 2, 2), None)
    x = jax.random.normal(jax.random.key(0), (4, 8, 8, 3))
    y = jnp.arange(4) % 10
    C = 4
    sizes = {}
    for name, genotype in (("v2", v2), ("three", g)):
        model = NetworkCIFAR(genotype, C=C, layers=3, num_classes=10)
        sizes[name] = count_params(jax.eval_shape(lambda: model.init(jax.random.key(1), x, train=False))["params"])
    op = normal[2][0]
    extra = 2 * (9 * C + C * C + 2 * C) if op == "sep_conv_3x3" else 9 * C + C * C + 2 * C  # one normal cell (C)
    assert sizes["three"] - sizes["v2"] == extra
    model = NetworkCIFAR(g, C=C, layers=3, num_classes=10)
    variables = init_variables(model, jax.random.key(1), x, train=False)
    params, stats = variables["params"], variables["batch_stats"]
    opt = optax.sgd(0.1)
    state = opt.init(params)

    @jax.jit
    def step(params, stats, state):
        def loss_fn(p):
            (logits, _), upd = model.apply({"params": p, "batch_stats": stats}, x, train=True, mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), upd["batch_stats"]
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(params, updates), stats, state, loss

    losses = []
    for _ in range(6):
        params, stats, state, loss = step(params, stats, state)
        losses.append(float(loss))
    assert losses[-1] < losses[0]
