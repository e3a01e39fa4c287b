"""P-DARTS's pieces on hand-made inputs: which ops an edge keeps after a stage, the skip-connect cap of the final
cell, the op dropout and its schedule, and the checks of the stage fields; DrNAS's stage change (keep the strongest
ops, copy channels into the wider ops)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnas import registry
from jaxnas.runners.progressive import cap_skips, next_keep_ops, run_progressive, stage_config
from jaxnas.runners.search import (METHODS, SearchConfig, keep_strongest, mask_arch, run_search, skip_dropout,
                                   widen_channels)
from jaxnas.search.steps import SearchState, drop_op

NB201 = registry.get_space("nb201")
DARTS = registry.get_space("darts")


def test_each_edge_keeps_its_strongest_ops_and_the_last_stage_drops_none_first():
    ops = NB201.primitives  # none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3
    logits = np.zeros((6, 5), np.float32)
    logits[0] = [3.0, 2.0, 1.0, 0.0, -1.0]
    logits[1] = [0.0, 0.0, 0.0, 0.0, 0.0]  # ties: the lower op index wins
    kept = next_keep_ops({"cell": logits}, None, ops, keep=2, last=False)["cell"]
    assert kept[0] == ("none", "skip_connect") and kept[1] == ("none", "skip_connect")
    last = next_keep_ops({"cell": logits}, {"cell": kept}, ops, keep=1, last=True)["cell"]
    assert last[0] == ("skip_connect",) and last[1] == ("skip_connect",)
    only_none = next_keep_ops({"cell": logits}, {"cell": (("none",),) * 6}, ops, keep=1, last=True)["cell"]
    assert only_none[0] == ("none",)  # an edge that kept only none keeps it


def test_the_final_normal_cell_keeps_at_most_max_skips_skip_connections():
    """Every edge prefers skip_connect, each slightly less than the one before: the DARTS rule picks 8 skips; the
    cap removes the weakest until 2 are left, without renormalising the others (the authors' rule)."""
    skip, sep = DARTS.primitives.index("skip_connect"), DARTS.primitives.index("sep_conv_3x3")
    arch = {c: np.full((14, 8), -5.0, np.float32) for c in ("normal", "reduce")}
    arch["normal"][:, skip] = np.linspace(3.0, 2.0, 14)
    arch["normal"][:, sep] = 1.0
    genotype, removed = cap_skips(DARTS, arch, max_skips=2)
    skips = [g for g in genotype.normal if g[0] == "skip_connect"]
    assert len(skips) == 2 and removed >= 6
    assert skips == [("skip_connect", 0), ("skip_connect", 1)]  # node 2's edges 0 and 1 are the strongest skips
    uncapped, none_removed = cap_skips(DARTS, arch, max_skips=None)
    assert none_removed == 0 and uncapped == DARTS.derive(arch)


def test_masked_ops_get_weight_zero():
    keep = {"cell": (("nor_conv_3x3", "skip_connect"),) * 6}
    arch = mask_arch(NB201.init_arch(jax.random.key(0)), keep, NB201.primitives)
    w = np.asarray(jax.nn.softmax(arch["cell"], -1))
    assert np.allclose(w[:, [0, 2, 4]], 0.0) and np.allclose(w.sum(-1), 1.0)


def test_op_dropout_zeroes_or_rescales_one_op_and_its_schedule_follows_the_authors():
    w = {"normal": jnp.full((14, 8), 0.125), "normal_edges": jnp.ones((14,))}
    same = drop_op(w, jax.random.key(0), 0.0, op=3, keys=("normal",))
    np.testing.assert_array_equal(same["normal"], w["normal"])
    draws = np.stack([np.asarray(drop_op(w, jax.random.key(i), 0.5, op=3, keys=("normal",))["normal"])
                      for i in range(200)])
    np.testing.assert_array_equal(draws[..., [0, 1, 2, 4, 5, 6, 7]], 0.125)  # only op 3 changes
    assert set(np.unique(draws[..., 3])) == {0.0, 0.25}
    assert abs(draws[..., 3].mean() - 0.125) < 0.01  # unbiased
    cfg = SearchConfig(space="darts", epochs=25, warmup_epochs=10, skip_dropout=0.4)
    rate = skip_dropout(cfg, DARTS, steps_per_epoch=10)
    assert rate.op == DARTS.primitives.index("skip_connect") and rate.keys == ("normal", "reduce")
    epochs = np.asarray([float(rate.rate(e * 10 + 3)) for e in (0, 9, 10, 15)])
    np.testing.assert_allclose(epochs, [0.4 * 24 / 25, 0.4 * 15 / 25, 0.4, 0.4 * np.exp(-1.0)], rtol=1e-6)


def test_stage_configs_and_the_checks_of_the_stage_fields():
    cfg = SearchConfig(space="darts", **METHODS["pdarts"])
    s1 = stage_config(cfg, 1, {"normal": (("sep_conv_3x3",),) * 14})
    assert (s1.depth, s1.skip_dropout, s1.stage_depths, s1.max_skips) == (11, 0.4, (), None)
    assert s1.workdir.endswith("stage1")
    with pytest.raises(ValueError, match="run_progressive"):
        run_search(cfg)
    with pytest.raises(ValueError, match="give stage_depths"):
        run_progressive(SearchConfig())
    with pytest.raises(ValueError, match="does not turn into a zero weight"):
        SearchConfig(relaxation="spos", stage_depths=(1, 2), stage_ops=(3, 1))
    with pytest.raises(ValueError, match="must shrink"):
        SearchConfig(stage_depths=(1, 2), stage_ops=(1, 3))
    with pytest.raises(ValueError, match="one entry per stage"):
        SearchConfig(stage_depths=(1, 2), stage_ops=(3,))
    with pytest.raises(ValueError, match="needs space darts"):
        SearchConfig(space="nb201", stage_depths=(1, 2), stage_ops=(3, 1), max_skips=2)
    with pytest.raises(ValueError, match="keep_ops.*lists 2 edges"):
        SearchConfig(keep_ops={"cell": [["none"], ["none"]]})
    with pytest.raises(ValueError, match="at least one of"):
        SearchConfig(keep_ops={"cell": [["conv_9x9"]] * 6})
    with pytest.raises(ValueError, match="skip_dropout must lie"):
        SearchConfig(skip_dropout=1.0)


def test_drnas_stage_change_keeps_the_strongest_ops_and_copies_channels():
    arch = {"cell": np.asarray([[0.3, 0.1, -0.2, 0.5, 0.0]] * 6, np.float32)}
    kept, pruned = keep_strongest(arch, 3, NB201)
    assert pruned == 12 and (kept["cell"][:, [2, 4]] <= -5e3).all()  # -0.2 and 0.0 are the weakest
    np.testing.assert_array_equal(kept["cell"][:, [0, 1, 3]], arch["cell"][:, [0, 1, 3]])
    again, _ = keep_strongest(kept, 2, NB201)  # a pruned op never comes back
    assert (again["cell"][:, [1, 2, 4]] <= -5e3).all() and (again["cell"][:, [0, 3]] > 0).all()
    # a conv kernel 4 -> 8 channels (in and out), its BN statistics, and SGD momentum
    params = {"op": {"kernel": jnp.arange(3 * 3 * 4 * 4, dtype=jnp.float32).reshape(3, 3, 4, 4)},
              "head": {"kernel": jnp.ones((2, 2))}}
    stats = {"op": {"mean": jnp.arange(4.0)}}
    opt = optax.sgd(0.1, momentum=0.9)
    state = SearchState.create(params, stats, arch, opt)
    state = state.replace(w_opt_state=jax.tree_util.tree_map(lambda x: x + 1.0, state.w_opt_state))
    fresh = {"params": {"op": {"kernel": jnp.zeros((3, 3, 8, 8))}, "head": {"kernel": jnp.zeros((2, 2))}},
             "batch_stats": {"op": {"mean": jnp.zeros(8)}}}
    new = widen_channels(state, fresh, jax.random.key(0))
    k_old, k_new = np.asarray(params["op"]["kernel"]), np.asarray(new.params["op"]["kernel"])
    assert k_new.shape == (3, 3, 8, 8)
    np.testing.assert_array_equal(k_new[:, :, :4, :4], k_old)  # the old channels stay
    m = np.asarray(new.batch_stats["op"]["mean"])
    np.testing.assert_array_equal(m[:4], np.arange(4.0))
    for j in range(4, 8):  # a new channel copies an old one, the same one in the kernel and the statistics
        src = int(m[j])
        np.testing.assert_array_equal(k_new[:, :, :4, j], k_old[:, :, :, src])
    np.testing.assert_array_equal(new.params["head"]["kernel"], params["head"]["kernel"])
    moments = [x for x in jax.tree_util.tree_leaves(new.w_opt_state) if getattr(x, "shape", ()) == (3, 3, 8, 8)]
    assert moments and np.asarray(moments[0])[:, :, :4, :4].min() >= 1.0  # momentum copied, not zeroed
