"""Search steps: exact updates per mode, the second-order hypergradient, optimizers, no recompiles, bad input."""

import os
import sys

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnas import relax
from jaxnas.nn.ops import depthwise_shift
from jaxnas.search import (
    MODES,
    OptimConfig,
    SearchState,
    init_search_state,
    make_arch_optimizer,
    make_step,
    make_weight_optimizer,
    make_weight_schedule,
    unrolled_arch_grad,
)
from jaxnas.spaces import NB201Space

from tests.helpers.tiny_model import TinySupernet, arch_init, batch  # noqa: E402

MODEL = TinySupernet()


def rkey(seed):
    """An 'rbg' PRNG key: XLA:CPU compiles its sampling far faster than threefry's (the tests are compile-bound)."""
    return jax.random.key(seed, impl="rbg")


TRAIN, VAL = batch(0), batch(1)


_INIT = {}


def fresh_state(w_opt, a_opt=None):
    """A new state around one shared initialisation (initialising is the slow part on a busy CPU)."""
    if not _INIT:
        _INIT["state"] = init_search_state(
            MODEL, arch_init(rkey(1)), TRAIN[0], rkey(0), optax.identity()
        )
    base = _INIT["state"]
    return SearchState.create(copy(base.params), copy(base.batch_stats), copy(base.arch), w_opt, a_opt, rkey(0))


def copy(tree):
    return jax.tree_util.tree_map(jnp.array, tree)


def loss_at(params, batch_stats, arch, data, relaxation=relax.softmax):
    logits, _ = MODEL.apply(
        {"params": params, "batch_stats": batch_stats}, data[0], relaxation(arch), train=True, mutable=["batch_stats"]
    )
    return optax.softmax_cross_entropy_with_integer_labels(logits, data[1]).mean()


def penalty(weights):  # stands in for an expected-latency term
    return 0.5 * jnp.sum(weights["cell"][:, 0])


# ----------------------------------------------------------------------------------------------------------------
# every mode does exactly its update


@pytest.mark.parametrize("mode", ["weights", "single", "bilevel-1st"])
def test_each_mode_applies_its_update(mode):
    lr_w, lr_a = 0.1, 0.2
    w_opt, a_opt = optax.sgd(lr_w), optax.sgd(lr_a)
    state = fresh_state(w_opt, a_opt if mode != "weights" else None)
    p0, a0, bs0 = copy(state.params), copy(state.arch), copy(state.batch_stats)
    use_penalty = mode != "weights"
    step = make_step(
        MODEL, mode=mode, relaxation="softmax", w_optimizer=w_opt, a_optimizer=a_opt if mode != "weights" else None,
        arch_penalty=penalty if use_penalty else None, arch_only_pass=True,  # the library's default
    )
    state, metrics = step(state, TRAIN, VAL)
    if mode == "bilevel-1st" and hasattr(step, "programs"):  # the val pass ran the arch-only gradient
        assert step.programs["arch_gradients"]._cache_size() == 1

    @jax.jit
    def by_hand(p0, bs0, a0):
        def arch_objective(a, data):
            return loss_at(p0, bs0, a, data) + penalty(relax.softmax(a))

        if mode == "weights":
            a1 = a0
        else:  # single: the train batch; bi-level: the val batch, at the current weights
            g_a = jax.grad(arch_objective)(a0, TRAIN if mode == "single" else VAL)
            a1 = jax.tree_util.tree_map(lambda a, g: a - lr_a * g, a0, g_a)
        # the weights see the arch of their step: the old one (single) or the updated one (bi-level, as DARTS)
        a_for_w = a1 if mode == "bilevel-1st" else a0
        loss, g_w = jax.value_and_grad(loss_at)(p0, bs0, a_for_w, TRAIN)
        p1 = jax.tree_util.tree_map(lambda p, g: p - lr_w * g, p0, g_w)
        return a1, p1, loss, loss_at(p0, bs0, a0, VAL)

    a1, p1, loss, val_loss = by_hand(p0, bs0, a0)
    chex.assert_trees_all_close(state.arch, a1, atol=1e-6)
    chex.assert_trees_all_close(state.params, p1, atol=1e-6)
    assert int(state.step) == 1
    assert not np.allclose(state.batch_stats["bn"]["mean"], bs0["bn"]["mean"])  # BN stats from the train batch
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "temperature"} <= set(metrics)
    if use_penalty:
        np.testing.assert_allclose(metrics["penalty"], penalty(relax.softmax(a0)), rtol=1e-5)
    if mode == "bilevel-1st":
        np.testing.assert_allclose(metrics["val_loss"], val_loss, rtol=1e-5)


@pytest.mark.parametrize(
    "mode, relaxation, extra",
    [
        ("bilevel-2nd", "softmax", {"hessian": "finite_difference"}),  # exact: parallel_check.py, hypergrad tests
        ("bilevel-1st", "gdas", {}),
        ("weights", "spos", {}),
    ],
)
def test_darts_optimizers_and_relaxations_run(mode, relaxation, extra):
    cfg = OptimConfig()
    w_opt, a_opt = make_weight_optimizer(cfg, total_steps=4), make_arch_optimizer(cfg)
    a_opt = a_opt if mode != "weights" else None
    state = fresh_state(w_opt, a_opt)
    a0 = copy(state.arch)
    step = make_step(
        MODEL, mode=mode, relaxation=relaxation, w_optimizer=w_opt, a_optimizer=a_opt,
        temperature=relax.gdas_temperature(epochs=2, steps_per_epoch=1), **extra,
    )
    for i in range(2):
        state, metrics = step(state, batch(10 + i), batch(20 + i) if mode.startswith("bilevel") else None)
    chex.assert_tree_all_finite((state.params, state.arch, state.batch_stats, metrics))
    assert float(metrics["temperature"]) == pytest.approx(0.1)  # epoch 1 of 2
    np.testing.assert_allclose(metrics["lr"], make_weight_schedule(cfg, 4)(1), rtol=1e-6)
    changed = not np.allclose(state.arch["cell"], a0["cell"])
    assert changed == (mode != "weights")
    if mode.startswith("bilevel"):
        assert {"val_loss", "val_accuracy"} <= set(metrics)


# ----------------------------------------------------------------------------------------------------------------
# the second-order hypergradient


def _losses(params, batch_stats, xi_dtype=jnp.float32):
    def train_loss(p, a):
        return loss_at(p, batch_stats, a, TRAIN)

    def val_loss(p, a):
        value = loss_at(p, batch_stats, a, VAL) + penalty(relax.softmax(a))
        return value, ()

    return train_loss, val_loss


def test_exact_hypergradient_matches_central_differences():
    with jax.enable_x64(True):
        state = fresh_state(optax.sgd(0.1))
        params, bs = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), (state.params, state.batch_stats))
        arch = {"cell": jnp.asarray(jax.random.normal(rkey(7), (2, 4)), jnp.float64)}
        train_loss, val_loss = _losses(params, bs)
        xi = 0.3

        def unrolled_value(a):
            g = jax.grad(train_loss)(params, a)
            return val_loss(jax.tree_util.tree_map(lambda p, gp: p - xi * gp, params, g), a)[0]

        h = 1e-5
        steps = h * jnp.eye(8, dtype=jnp.float64).reshape(8, 2, 4)

        @jax.jit
        def everything(a):
            exact = unrolled_arch_grad(train_loss, val_loss, params, a, xi, "exact")[2]["cell"]
            up = jax.vmap(lambda d: unrolled_value({"cell": a["cell"] + d}))(steps)
            down = jax.vmap(lambda d: unrolled_value({"cell": a["cell"] - d}))(steps)
            first = jax.grad(lambda a: val_loss(params, a)[0])(a)["cell"]
            return exact, ((up - down) / (2 * h)).reshape(2, 4), first

        exact, numeric, first = everything(arch)
        assert exact.dtype == jnp.float64
        np.testing.assert_allclose(exact, numeric, rtol=1e-6, atol=1e-9)
        # the second-order term matters here: the first-order gradient is measurably different
        assert np.abs(np.asarray(first) - numeric).max() > 1e-4


def test_finite_difference_hypergradient_agrees_with_exact():
    state = fresh_state(optax.sgd(0.1))
    arch = {"cell": jax.random.normal(rkey(8), (2, 4))}
    train_loss, val_loss = _losses(state.params, state.batch_stats)

    @jax.jit
    def both(a):
        e = unrolled_arch_grad(train_loss, val_loss, state.params, a, 0.3, "exact")
        f = unrolled_arch_grad(train_loss, val_loss, state.params, a, 0.3, "finite_difference")
        return e[0], e[2]["cell"], f[0], f[2]["cell"]

    v_exact, exact, v_fd, fd = both(arch)
    np.testing.assert_allclose(v_exact, v_fd, rtol=1e-6)
    exact, fd = np.asarray(exact).ravel(), np.asarray(fd).ravel()
    cosine = exact @ fd / (np.linalg.norm(exact) * np.linalg.norm(fd))
    assert cosine > 0.99, cosine


class ShiftThenTiny(nn.Module):
    """A learnable 3x3 depthwise window (jaxnas.nn.ops.depthwise_shift), then the tiny supernet."""

    @nn.compact
    def __call__(self, x, weights, train: bool = True, hard: bool = False):
        taps = self.param("taps", nn.initializers.normal(0.5), (3, 3, x.shape[-1]))
        return TinySupernet(name="net")(depthwise_shift(x, taps, 1, 1, 1), weights, train, hard)


@pytest.mark.parametrize(
    # first order split: test_each_mode_applies_its_update checks it against a step by hand
    "mode, hessian", [("bilevel-2nd", "exact"), ("bilevel-2nd", "finite_difference"), ("single", "exact")]
)
@pytest.mark.slow
def test_split_step_computes_the_one_program_step(mode, hessian):
    """make_step(split=True) (the CPU default) runs the bi-level step as several programs; the same function.

    The supernet starts with a depthwise_shift window, whose custom VJP calls another custom-VJP function (as the
    DARTS supernet's ops do): forward-mode autodiff cannot pass through it, so the exact mixed term (forward over
    reverse) must trace it as plain jax ops.
    """
    cfg = OptimConfig()
    w_opt, a_opt = make_weight_optimizer(cfg, total_steps=10), make_arch_optimizer(cfg)
    model = ShiftThenTiny()
    start = init_search_state(model, arch_init(rkey(1)), TRAIN[0], rkey(0), w_opt, a_opt)
    results = {}
    for split in (False, True):
        step = make_step(model, mode=mode, relaxation="gumbel", w_optimizer=w_opt, a_optimizer=a_opt, hessian=hessian,
                         split=split, arch_penalty=penalty, donate=False, arch_only_pass=True)
        assert hasattr(step, "programs") == split
        state = start
        for i in range(2):
            state, metrics = step(state, batch(50 + i), batch(60 + i))
        results[split] = state, metrics
    # the finite-difference passes ran the arch-only gradient; the exact and single-level steps need no such pass
    assert step.programs["arch_gradients"]._cache_size() == (hessian == "finite_difference" and mode != "single")
    (one, m_one), (split_state, m_split) = results[False], results[True]
    assert sorted(m_one) == sorted(m_split)
    chex.assert_trees_all_close(m_split, m_one, rtol=1e-5)
    chex.assert_trees_all_close(split_state.arch, one.arch, atol=1e-6)
    chex.assert_trees_all_close((split_state.params, split_state.batch_stats), (one.params, one.batch_stats),
                                atol=1e-6)
    assert not np.allclose(one.arch["cell"], start.arch["cell"], atol=1e-5)  # the arch did move
    np.testing.assert_array_equal(jax.random.key_data(split_state.key), jax.random.key_data(one.key))
    assert int(split_state.step) == 2


def test_split_is_the_cpu_default_for_arch_updating_steps_only():
    w_opt, a_opt = optax.sgd(0.1), optax.sgd(0.1)
    on_cpu = jax.default_backend() == "cpu"
    assert hasattr(make_step(MODEL, mode="bilevel-1st", w_optimizer=w_opt, a_optimizer=a_opt), "programs") == on_cpu
    assert hasattr(make_step(MODEL, mode="single", w_optimizer=w_opt, a_optimizer=a_opt), "programs") == on_cpu
    assert not hasattr(make_step(MODEL, mode="weights", w_optimizer=w_opt), "programs")
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ("data",))
    assert not hasattr(make_step(MODEL, mode="bilevel-1st", w_optimizer=w_opt, a_optimizer=a_opt, mesh=mesh),
                       "programs")
    with pytest.raises(ValueError, match="cannot take a mesh"):
        make_step(MODEL, mode="bilevel-1st", w_optimizer=w_opt, a_optimizer=a_opt, mesh=mesh, split=True)


# ----------------------------------------------------------------------------------------------------------------
# optimizers


def test_weight_optimizer_is_darts_sgd():
    cfg = OptimConfig(w_grad_clip=1.0)
    opt = make_weight_optimizer(cfg, total_steps=10)
    sched = make_weight_schedule(cfg, 10)
    assert float(sched(0)) == pytest.approx(0.025) and float(sched(10)) == pytest.approx(0.001)
    params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array([0.5])}
    grads = [{"w": jnp.array([3.0, 4.0]), "b": jnp.array([0.0])}, {"w": jnp.array([0.1, 0.2]), "b": jnp.array([0.3])}]
    state = opt.init(params)
    p, buf = params, None
    expected = params
    for k, g in enumerate(grads):
        updates, state = opt.update(g, state, p)
        p = optax.apply_updates(p, updates)
        # by hand: clip to global norm 1, add 3e-4 * w, momentum 0.9 buffer, lr from the cosine schedule
        norm = np.sqrt(sum(float(jnp.sum(x**2)) for x in jax.tree_util.tree_leaves(g)))
        scale = min(1.0, 1.0 / norm)
        d = jax.tree_util.tree_map(lambda gi, w: scale * gi + 3e-4 * w, g, expected)
        buf = d if buf is None else jax.tree_util.tree_map(lambda b, di: 0.9 * b + di, buf, d)
        expected = jax.tree_util.tree_map(lambda w, b: w - float(sched(k)) * b, expected, buf)
        chex.assert_trees_all_close(p, expected, rtol=1e-6)


def test_arch_optimizer_is_adam_with_coupled_decay():
    cfg = OptimConfig()
    opt = make_arch_optimizer(cfg)
    a = {"cell": jnp.array([[0.5, -1.0]])}
    g = {"cell": jnp.array([[0.2, 0.4]])}
    updates, _ = opt.update(g, opt.init(a), a)
    d = g["cell"] + 1e-3 * a["cell"]
    m, v = (1 - 0.5) * d / (1 - 0.5), (1 - 0.999) * d**2 / (1 - 0.999)  # bias-corrected first moments
    np.testing.assert_allclose(updates["cell"], -3e-4 * m / (jnp.sqrt(v) + 1e-8), rtol=1e-5)


def test_optim_config_is_checked():
    with pytest.raises(ValueError, match="w_lr must be > 0"):
        OptimConfig(w_lr=0.0)
    with pytest.raises(ValueError, match="w_grad_clip"):
        OptimConfig(w_grad_clip=-1.0)


# ----------------------------------------------------------------------------------------------------------------
# compilation


def test_changing_architecture_values_does_not_recompile():
    w_opt, a_opt = optax.sgd(0.05), optax.adam(0.01)
    state = fresh_state(w_opt, a_opt)
    raw = make_step(
        MODEL, mode="single", relaxation="gumbel", w_optimizer=w_opt, a_optimizer=a_opt,
        temperature=relax.linear(5.0, 0.5, 3), jit=False,
    )
    step = jax.jit(chex.assert_max_traces(raw, n=1), donate_argnums=0)
    temps = []
    for i in range(3):
        state = state.replace(arch={"cell": jax.random.normal(rkey(30 + i), (2, 4))})  # new arch values
        state, metrics = step(state, batch(40 + i), None)
        temps.append(float(metrics["temperature"]))
    assert temps == pytest.approx([5.0, 3.5, 2.0])
    chex.clear_trace_counter()


# ----------------------------------------------------------------------------------------------------------------
# bad input


def test_bad_input_is_a_value_error():
    w_opt = optax.sgd(0.1)
    with pytest.raises(ValueError, match="unknown search mode 'trilevel'; allowed: " + ", ".join(MODES)):
        make_step(MODEL, mode="trilevel", w_optimizer=w_opt, a_optimizer=w_opt)
    with pytest.raises(ValueError, match="unknown relaxation 'softmx'"):
        make_step(MODEL, mode="single", relaxation="softmx", w_optimizer=w_opt, a_optimizer=w_opt)
    with pytest.raises(ValueError, match="unknown hessian 'newton'; allowed: exact, finite_difference"):
        make_step(MODEL, mode="bilevel-2nd", w_optimizer=w_opt, a_optimizer=w_opt, xi=0.1, hessian="newton")
    with pytest.raises(ValueError, match="give a_optimizer"):
        make_step(MODEL, mode="bilevel-1st", w_optimizer=w_opt)
    with pytest.raises(ValueError, match="'uniform' gives no gradient"):
        make_step(MODEL, mode="single", relaxation="spos", w_optimizer=w_opt, a_optimizer=w_opt)
    with pytest.raises(ValueError, match="needs xi"):
        make_step(MODEL, mode="bilevel-2nd", w_optimizer=w_opt, a_optimizer=w_opt)
    step = make_step(MODEL, mode="bilevel-1st", w_optimizer=w_opt, a_optimizer=w_opt, donate=False)
    state = fresh_state(w_opt, w_opt)
    with pytest.raises(ValueError, match="needs a val_batch"):
        step(state, TRAIN)
    with pytest.raises(ValueError, match="'image' and 'label'"):
        step(state, {"x": TRAIN[0], "y": TRAIN[1]}, VAL)
    with pytest.raises(ValueError, match=r"leaf \['cell'\] has shape \(2, 4\); nb201 shape \(6, 5\)"):
        init_search_state(MODEL, arch_init(rkey(0)), TRAIN[0], rkey(0), w_opt, space=NB201Space())
    with pytest.raises(ValueError, match="expects weights"):  # the model's own check on the weights
        init_search_state(MODEL, {"cell": jnp.zeros((3, 4))}, TRAIN[0], rkey(0), w_opt)
    with pytest.raises(ValueError, match="dtype"):
        SearchState.create({}, {}, {"cell": jnp.zeros((2, 4), jnp.int32)}, w_opt)


# ----------------------------------------------------------------------------------------------------------------
# the real NB201 supernet


@pytest.mark.slow
def test_nb201_supernet_single_level_search():
    supernet = pytest.importorskip("jaxnas.nn.supernet")
    space = NB201Space()
    # impl="xla": at these tiny shapes XLA:CPU compiles lax.conv several times faster than the "shift" unrolling
    model = supernet.NB201Supernet(C=4, N=1, num_classes=3, impl="xla")
    cfg = OptimConfig()
    w_opt, a_opt = make_weight_optimizer(cfg, 2), make_arch_optimizer(cfg)
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype(np.float32)
    data = (x, np.array([0, 1, 2, 0], np.int32))
    state = init_search_state(model, space.init_arch(rkey(0)), x, rkey(1), w_opt, a_opt, space=space)
    a0 = copy(state.arch)
    step = make_step(model, mode="single", relaxation="softmax", w_optimizer=w_opt, a_optimizer=a_opt)
    for _ in range(2):
        state, metrics = step(state, data)
    chex.assert_tree_all_finite((state.params, state.arch, metrics))
    assert not np.allclose(state.arch["cell"], a0["cell"])
    assert space.derive(state.arch).ops  # a genotype comes out


def test_accuracy_fn_none_reports_no_accuracy():
    """Regression / language-model searches pass accuracy_fn=None: the step reports losses only."""
    w_opt, a_opt = optax.sgd(0.1), optax.adam(1e-3)
    step = make_step(MODEL, mode="bilevel-1st", w_optimizer=w_opt, a_optimizer=a_opt, accuracy_fn=None)
    _, metrics = step(fresh_state(w_opt, a_opt), TRAIN, VAL)
    assert "accuracy" not in metrics and "val_accuracy" not in metrics
    assert np.isfinite(float(metrics["loss"])) and np.isfinite(float(metrics["val_loss"]))
