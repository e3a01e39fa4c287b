import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.nn import ops
from jaxnas.platform import settings

X = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 4))


def _run(name, stride, impl, x=X):
    op = ops.make_op(name, x.shape[-1], stride, True, impl)
    variables = op.init(jax.random.PRNGKey(1), x, True)

    def f(params, x):
        y, _ = op.apply({**variables, "params": params}, x, True, mutable=["batch_stats"])
        return y

    params = variables.get("params", {})
    y = f(params, x)
    grads = jax.grad(lambda p, x: jnp.sum(jnp.sin(f(p, x))), argnums=(0, 1))(params, x)
    return y, grads


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", sorted(ops.OPS))
def test_every_op_shape_finite_and_implementations_agree(name, stride):
    y_xla, g_xla = _run(name, stride, "xla")
    y_shift, g_shift = _run(name, stride, "shift")
    assert y_xla.shape == (2, 8 // stride, 8 // stride, 4)
    assert bool(jnp.all(jnp.isfinite(y_xla)))
    np.testing.assert_allclose(y_xla, y_shift, atol=1e-5, rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(g_xla), jax.tree_util.tree_leaves(g_shift)):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("impl", ops.IMPLS)
def test_conv2d_matches_direct_sum(impl):
    # a dense, strided, dilated conv against a plain numpy loop (PyTorch padding semantics)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 7, 7, 3)).astype(np.float32)
    k = rng.normal(size=(3, 3, 3, 5)).astype(np.float32)
    y = np.asarray(ops.conv2d(jnp.asarray(x), jnp.asarray(k), stride=2, padding=2, dilation=2, impl=impl))
    xp = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    ho = ops.out_size(7, 3, 2, 2, 2)
    want = np.zeros((1, ho, ho, 5), np.float32)
    for i in range(ho):
        for j in range(ho):
            patch = xp[0, 2 * i : 2 * i + 5 : 2, 2 * j : 2 * j + 5 : 2, :]
            want[0, i, j] = np.einsum("hwc,hwco->o", patch, k)
    np.testing.assert_allclose(y, want, atol=1e-4)


def test_avg_pool_excludes_padding():
    x = jnp.ones((1, 4, 4, 1))
    for impl in ops.IMPLS:
        np.testing.assert_allclose(ops.avg_pool(x, impl=impl), 1.0)  # corners average 4 real pixels, not 9


def test_unknown_op_and_impl_are_clear_errors():
    with pytest.raises(ValueError, match="unknown op 'sep_conv_9x9'.*known ops:.*sep_conv_3x3"):
        ops.make_op("sep_conv_9x9", 4)
    with pytest.raises(ValueError, match="unknown conv_impl 'cudnn'; allowed: auto, xla, shift"):
        settings.configure(conv_impl="cudnn")
    with pytest.raises(ValueError, match="unknown conv implementation 'cudnn'"):
        ops.avg_pool(jnp.ones((1, 4, 4, 1)), impl="cudnn")
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        ops.make_op("sep_conv_3x3", 4, stride=3)


def test_default_impl_by_backend(monkeypatch):
    monkeypatch.delenv("JAXNAS_CONV_IMPL", raising=False)
    settings.reload()
    for kind in ops.KINDS:
        assert ops.default_impl(kind) == (ops.CPU_CHOICE[kind] if jax.default_backend() == "cpu" else "xla")
    assert ops.default_impl("depthwise") != ops.default_impl("dense") or jax.default_backend() != "cpu"
    monkeypatch.setenv("JAXNAS_CONV_IMPL", "xla")
    settings.reload()
    assert ops.default_impl("depthwise") == "xla"
    settings.configure(conv_impl="shift")  # what --conv-impl shift does
    assert ops.default_impl("dense") == "shift"
    monkeypatch.setenv("JAXNAS_CONV_IMPL", "cuda")
    with pytest.raises(ValueError, match="JAXNAS_CONV_IMPL='cuda' is not one of auto, xla, shift"):
        settings.reload()


def test_windows_traced_inside_a_conditional_take_the_conditional_choice(monkeypatch):
    monkeypatch.delenv("JAXNAS_CONV_IMPL", raising=False)
    settings.reload()
    cpu = jax.default_backend() == "cpu"
    with ops.tracing_conditional():
        assert ops.default_impl("pool") == ("shift" if cpu else "xla")
        assert ops.default_impl("dense") == "xla"  # with its hand-written gradient on CPU (next test)
    assert not ops._TRACING_CONDITIONAL.get()  # restored on leaving the block
    settings.configure(conv_impl="xla")  # a forced implementation wins everywhere
    with ops.tracing_conditional():
        assert ops.default_impl("dense") == "xla"


def test_dense_conv_inside_a_conditional_takes_the_hand_written_gradient_on_cpu():
    kernel = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 4, 5))

    def conv():  # a new function per trace: jax caches a function's trace, whatever the context
        return lambda x: ops.conv2d(x, kernel, padding=1, impl="xla")

    outside = str(jax.make_jaxpr(conv())(X))
    with ops.tracing_conditional():
        inside = str(jax.make_jaxpr(conv())(X))
    assert "custom_vjp_call" not in outside
    assert ("custom_vjp_call" in inside) == (jax.default_backend() == "cpu")


@pytest.mark.parametrize("size", [8, 7])
@pytest.mark.parametrize("window", [(3, 1, 1, 1), (3, 2, 1, 1), (5, 2, 4, 2), (3, 1, 2, 2), (3, 2, 0, 1)])
def test_dense_conv_cpu_gradients_match_xla_to_second_order(window, size):
    # (kernel, stride, padding, dilation); the exact DARTS hypergradient differentiates the rule again
    k, stride, padding, dilation = window
    x = jax.random.normal(jax.random.PRNGKey(0), (2, size, size, 3))
    kernel = jax.random.normal(jax.random.PRNGKey(1), (k, k, 3, 4))

    def f(conv):
        return lambda x, w: jnp.sum(jnp.sin(conv(x, w, stride, padding, dilation)) ** 2)

    hand, plain = f(ops.dense_conv_cpu), f(ops._lax_conv)
    np.testing.assert_allclose(hand(x, kernel), plain(x, kernel), rtol=1e-6)
    for a, b in zip(jax.grad(hand, argnums=(0, 1))(x, kernel), jax.grad(plain, argnums=(0, 1))(x, kernel)):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)

    def second(g):
        return jax.grad(lambda x, w: jnp.sum(jax.grad(g, argnums=(0, 1))(x, w)[1] ** 3), argnums=(0, 1))

    for a, b in zip(second(hand)(x, kernel), second(plain)(x, kernel)):
        np.testing.assert_allclose(a, b, atol=2e-3, rtol=2e-3)


def test_pool_bn_only_for_pools():
    op = ops.make_op("max_pool_3x3", 4, 1, False, pool_bn=True)
    v = op.init(jax.random.PRNGKey(0), X, True)
    assert "batch_stats" in v and "params" not in v  # BN without affine has statistics, no parameters
    assert ops.make_op("sep_conv_3x3", 4, pool_bn=True).__class__ is ops.SepConv


@pytest.mark.parametrize("size", [8, 7])
@pytest.mark.parametrize(
    "window",
    [("depthwise", 3, 1, 1, 1), ("depthwise", 5, 2, 2, 1), ("depthwise", 3, 1, 2, 2), ("depthwise", 5, 2, 4, 2),
     ("max", 3, 1, 1, 1), ("max", 3, 2, 1, 1), ("avg", 3, 1, 1, 1), ("avg", 3, 2, 1, 1)],
)
@pytest.mark.slow
def test_hand_written_shift_gradients_match_xla_to_second_order(window, size):
    # depthwise_shift / max_pool_shift carry custom VJPs; the exact DARTS hypergradient differentiates them twice
    kind, k, stride, padding, dilation = window
    x = jax.random.normal(jax.random.PRNGKey(0), (2, size, size, 3))
    taps = jax.random.normal(jax.random.PRNGKey(1), (k, k, 1, 3))

    def f(impl):
        def out(x, taps):
            if kind == "depthwise":
                y = ops.conv2d(x, taps, stride=stride, padding=padding, dilation=dilation, groups=3, impl=impl)
            else:
                pool = ops.max_pool if kind == "max" else ops.avg_pool
                y = pool(x, kernel=k, stride=stride, padding=padding, impl=impl) * jnp.sum(taps)
            return jnp.sum(jnp.sin(y) ** 2)
        return out

    def second(impl):  # gradient of a function of the first gradient
        return jax.grad(lambda x, t: jnp.sum(jax.grad(f(impl), argnums=(0, 1))(x, t)[0] ** 3), argnums=(0, 1))

    for a, b in zip(jax.grad(f("xla"), argnums=(0, 1))(x, taps), jax.grad(f("shift"), argnums=(0, 1))(x, taps)):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)
    for a, b in zip(second("xla")(x, taps), second("shift")(x, taps)):
        np.testing.assert_allclose(a, b, atol=2e-3, rtol=2e-3)


def _node_then_windows(fence):
    """A miniature cell: a node summing three windows of x, read by three windows (what a supernet node is)."""

    def loss(taps, x):
        node = sum(ops.depthwise_shift(jax.nn.relu(x), taps[i], 1, 1 + i, 1 + i) for i in range(3))
        node = ops.fence_cotangent(node) if fence else node
        out = sum(ops.depthwise_shift(jax.nn.relu(node), taps[3 + i], 1, 1 + i, 1 + i) for i in range(3))
        return jnp.sum(jnp.tanh(out))

    return loss


@pytest.mark.slow
def test_fence_cotangent_is_the_identity_to_second_order():
    x = jax.random.normal(jax.random.key(0), (2, 6, 6, 3))
    taps = 0.3 * jax.random.normal(jax.random.key(1), (6, 3, 3, 3))
    fenced, plain = _node_then_windows(True), _node_then_windows(False)
    np.testing.assert_allclose(fenced(taps, x), plain(taps, x), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(fenced)(taps, x), jax.grad(plain)(taps, x), rtol=1e-5, atol=1e-6)
    v = jax.random.normal(jax.random.key(2), taps.shape)

    def hvp(f):
        return jax.grad(lambda t: jnp.vdot(jax.grad(f)(t, x), v))(taps)

    np.testing.assert_allclose(hvp(fenced), hvp(plain), rtol=1e-4, atol=1e-5)



def _hand_written_vjps(w, a):
    """Every op with a hand-written VJP, scaled by the entries of ``a`` (a stand-in for architecture weights)."""
    x = X * a[0]
    y = ops.depthwise_shift(x, w, 1, 2, 2)
    y = ops.fence_cotangent(y) * a[1]
    y = ops.max_pool_shift(y, 3, 2, 1)
    y = ops.dense_conv_cpu(y, jnp.sin(jnp.arange(144.0)).reshape(3, 3, 4, 4) * a[2], 1, 1, 1)
    return jnp.sum(jnp.tanh(y) * jnp.cos(y))


def test_plain_autodiff_lets_forward_mode_through_the_hand_written_vjps():
    w = jax.random.normal(jax.random.key(0), (3, 3, 4))
    a = jnp.array([1.0, 2.0, 0.5])
    d = jax.random.normal(jax.random.key(1), w.shape)
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda w: jax.grad(_hand_written_vjps, argnums=1)(w, a), (w,), (d,))
    # the mixed second derivative along d: reverse over reverse (hand-written VJPs) == forward over reverse (plain)
    reverse = jax.grad(lambda a: jnp.vdot(jax.grad(_hand_written_vjps)(w, a), d))(a)
    with ops.plain_autodiff():
        assert ops.plain_autodiff_active()
        value = _hand_written_vjps(w, a)
        forward = jax.jvp(lambda w: jax.grad(_hand_written_vjps, argnums=1)(w, a), (w,), (d,))[1]
    assert not ops.plain_autodiff_active()
    np.testing.assert_allclose(value, _hand_written_vjps(w, a), rtol=1e-6)
    np.testing.assert_allclose(forward, reverse, rtol=1e-4)
    assert np.all(np.abs(forward) > 1e-3)  # a derivative that is there in every entry


def test_materialize_keeps_values_and_derivatives():
    x = jax.random.normal(jax.random.key(3), (2, 5, 5, 3))
    np.testing.assert_array_equal(ops.materialize(x), x)

    def f(x):
        return jnp.sum(jnp.sin(ops.materialize(x)) ** 2)

    def g(x):
        return jnp.sum(jnp.sin(x) ** 2)

    np.testing.assert_allclose(jax.grad(f)(x), jax.grad(g)(x), rtol=1e-6, atol=1e-7)
    v = jax.random.normal(jax.random.key(4), x.shape)
    hvp_f = jax.grad(lambda y: jnp.vdot(jax.grad(f)(y), v))(x)
    hvp_g = jax.grad(lambda y: jnp.vdot(jax.grad(g)(y), v))(x)
    np.testing.assert_allclose(hvp_f, hvp_g, rtol=1e-5, atol=1e-6)
    # documented cost of the trick: one non-finite entry makes the whole array NaN (a NaN loss stops a search anyway)
    assert bool(jnp.all(jnp.isnan(ops.materialize(x.at[0, 0, 0, 0].set(jnp.inf)))))
