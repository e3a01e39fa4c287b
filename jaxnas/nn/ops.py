"""Primitive operations as flax linen modules (NHWC) and the op registry.

Every op is built by ``OPS[name](C, stride, affine)`` and called as ``op(x, train)``.

How a convolution or a pooling window is computed is chosen here, in one place, per backend and per kind of window:

* ``"xla"``: ``lax.conv_general_dilated`` / ``lax.reduce_window``. The right choice on GPU and TPU (cuDNN etc.).
* ``"shift"``: the window is unrolled into k*k shifted slices of the padded input; a dense convolution becomes one
  matrix product over the concatenated slices (im2col), a depthwise one a sum of k*k multiply-adds, a pooling
  window a max/sum of k*k slices.

On XLA:CPU ``shift`` is faster for depthwise convolutions and pooling and XLA's own dense convolutions are faster
than their ``shift`` (im2col) versions (docs/cpu-performance.md, ``bench/conv_impl.py``). The ``shift`` depthwise
convolution and max pooling carry hand-written gradients (:func:`depthwise_shift`, :func:`max_pool_shift`), since
autodiff of k*k slices reduces every tap's gradient separately. :data:`CPU_CHOICE` records the choice per kind;
the ``conv_impl`` setting (``JAXNAS_CONV_IMPL=xla|shift``, or :func:`jaxnas.platform.settings.configure`) forces
one implementation everywhere. Both
implementations compute the same function (tests/nn/test_ops.py).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxnas.platform import settings

IMPLS = ("xla", "shift")
KINDS = ("dense", "depthwise", "pool", "pool_strided")
# what is fastest on XLA:CPU for each kind of window (measured: bench/conv_impl.py --kinds)
CPU_CHOICE = {"dense": "xla", "depthwise": "shift", "pool": "shift", "pool_strided": "shift"}


# inside the branch of a conditional XLA:CPU runs autodiff's gradient convolutions with a slow generic loop: there
# the xla dense conv takes a hand-written gradient (dense_conv_cpu; docs/cpu-performance.md, "Conditionals on CPU")
CPU_CHOICE_IN_CONDITIONAL = {**CPU_CHOICE, "dense": "xla"}
_TRACING_CONDITIONAL = contextvars.ContextVar("jaxnas_tracing_conditional", default=False)


@contextlib.contextmanager
def tracing_conditional():
    """Trace the branches of a conditional (``lax.switch``, ``nn.switch``, ``nn.cond``) inside this block, so that
    windows built there with ``impl=None`` take :data:`CPU_CHOICE_IN_CONDITIONAL` on CPU."""
    token = _TRACING_CONDITIONAL.set(True)
    try:
        yield
    finally:
        _TRACING_CONDITIONAL.reset(token)


# while set, the ops below that carry hand-written VJPs trace as plain jax functions instead (see plain_autodiff)
_PLAIN_AUTODIFF = contextvars.ContextVar("jaxnas_plain_autodiff", default=False)


@contextlib.contextmanager
def plain_autodiff():
    """Trace inside this block with JAX's own derivatives in place of the hand-written VJPs of
    :func:`fence_cotangent`, :func:`depthwise_shift`, :func:`max_pool_shift` and :func:`dense_conv_cpu`: the same
    functions, as plain jax ops, so that forward mode (``jax.jvp``, forward over reverse) passes through them (a
    custom VJP supports reverse mode only). The exact DARTS hypergradient's mixed term is traced this way."""
    token = _PLAIN_AUTODIFF.set(True)
    try:
        yield
    finally:
        _PLAIN_AUTODIFF.reset(token)


def plain_autodiff_active() -> bool:
    """Whether tracing happens inside :func:`plain_autodiff`."""
    return _PLAIN_AUTODIFF.get()


def default_impl(kind: str = "dense") -> str:
    """The implementation used for a window of ``kind`` when a module is given ``impl=None`` (or ``"auto"``):
    the ``conv_impl`` setting (:mod:`jaxnas.platform.settings`) unless it is ``auto``, else :data:`CPU_CHOICE` on
    CPU (:data:`CPU_CHOICE_IN_CONDITIONAL` while :func:`tracing_conditional`) and ``xla`` elsewhere."""
    if kind not in KINDS:
        raise ValueError(f"unknown window kind {kind!r}; allowed: {', '.join(KINDS)}")
    impl = settings.current().conv_impl
    if impl != "auto":
        return impl
    if jax.default_backend() != "cpu":
        return "xla"
    return (CPU_CHOICE_IN_CONDITIONAL if _TRACING_CONDITIONAL.get() else CPU_CHOICE)[kind]


def _resolve(impl: str | None, kind: str) -> str:
    impl = default_impl(kind) if impl in (None, "auto") else impl
    if impl not in IMPLS:
        raise ValueError(f"unknown conv implementation {impl!r}; allowed: {', '.join(IMPLS)}")
    return impl


# ----------------------------------------------------------------------------------------------------------------
# window helpers


def out_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _shifted_slices(xp: jax.Array, kernel: int, stride: int, dilation: int, out_hw: tuple[int, int]):
    """The k*k strided views of a padded NHWC tensor that a k x k window visits, in row-major kernel order."""
    ho, wo = out_hw
    n, _, _, c = xp.shape
    views = []
    for i in range(kernel):
        for j in range(kernel):
            di, dj = i * dilation, j * dilation
            views.append(
                lax.slice(
                    xp,
                    (0, di, dj, 0),
                    (n, di + (ho - 1) * stride + 1, dj + (wo - 1) * stride + 1, c),
                    (1, stride, stride, 1),
                )
            )
    return views


def materialize(x: jax.Array) -> jax.Array:
    """``x + 0 * sum(x)``: the same values (where all of ``x`` is finite), but XLA must write ``x`` to memory, as
    the reduction cannot be fused into ``x``'s elementwise consumers.

    Why: XLA fuses chains of elementwise ops into one loop, and XLA:CPU vectorises a loop fusion only while it is
    small. Summing the shifted-window gradients of all the ops that read a cell node gave loops of 300+ taps that
    ran as scalar code. Materialising each op's input gradient keeps every loop small
    (docs/cpu-performance.md, ``bench/fusion_size.py``).
    """
    return x + jnp.zeros((), x.dtype) * jnp.sum(x)


def fence_cotangent(x: jax.Array) -> jax.Array:
    """Identity whose cotangent XLA computes once, instead of fusing (recomputing) it into each of its consumers.

    XLA:CPU duplicates a producer into all its consumers when that costs no extra memory traffic, whatever it costs
    in arithmetic. In a supernet the gradient of a cell node is a sum of the input gradients of all the window ops
    that read the node, and each of its consumers (every op on every edge into the node, and their k*k shifted
    windows) got its own copy (docs/cpu-performance.md). The backward pass here adds ``0 * sum(g)`` to the
    cotangent: a reduction that XLA cannot fuse into an elementwise consumer, so the cotangent is materialised. The
    value is unchanged wherever the cotangent is finite (an inf or NaN anywhere in it makes all of it NaN). Like
    every custom VJP it supports reverse mode (to any order) but not ``jax.jvp``.

    Evaluated without differentiation (a forward pass alone: the single-level step's val metrics, evaluation), it
    materialises ``x`` itself for the same reason: XLA:CPU otherwise fuses a supernet's forward pass into loops
    that run far slower than the forward part of its gradient (docs/cpu-performance.md, "A forward pass alone").
    Under :func:`plain_autodiff` it is :func:`materialize` with JAX's derivative (``g + 0 * sum(g)``: the cotangent
    is materialised as well), which forward mode passes.
    """
    if plain_autodiff_active():
        return materialize(x)
    return _fence_cotangent(x)


@jax.custom_vjp
def _fence_cotangent(x: jax.Array) -> jax.Array:
    return materialize(x)


def _fence_cotangent_fwd(x):
    return x, None


def _fence_cotangent_bwd(_, g):
    return (materialize(g),)


_fence_cotangent.defvjp(_fence_cotangent_fwd, _fence_cotangent_bwd)


def _pad_hw(x: jax.Array, padding: int, value: float = 0.0) -> jax.Array:
    if padding == 0:
        return x
    return jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)), constant_values=value)


def _tap_sum(xp: jax.Array, taps: jax.Array, stride: int, dilation: int, out_hw: tuple[int, int]) -> jax.Array:
    """sum_t view_t(xp) * taps[t]: a depthwise correlation of an already padded input (one XLA loop fusion)."""
    k = taps.shape[0]
    views = _shifted_slices(xp, k, stride, dilation, out_hw)
    flat = taps.reshape(k * k, -1)
    out = views[0] * flat[0]
    for t in range(1, k * k):
        out = out + views[t] * flat[t]
    return out


def _transpose_pads(size_in: int, size_out: int, kernel: int, stride: int, padding: int, dilation: int):
    """(low, high, interior) padding that turns an output-sized gradient into the padded input of the transposed
    window: dx[i] = sum_t g_dilated[i + padding - t*dilation], read as a stride-1 window over the padded gradient."""
    reach = (kernel - 1) * dilation
    lo = reach - padding
    hi = size_in + reach - ((size_out - 1) * stride + 1) - lo
    return (lo, hi, stride - 1)


def depthwise_shift(x: jax.Array, taps: jax.Array, stride: int, padding: int, dilation: int) -> jax.Array:
    """Depthwise 2-D correlation (NHWC input, (k, k, C) taps) as a sum of k*k shifted slices.

    Its gradient is written by hand. The tap gradient is one variadic reduction that reads the input and the output
    gradient once for all k*k taps (autodiff of the slices sums every tap separately: docs/cpu-performance.md). The input gradient is a depthwise
    correlation of the dilated, padded output gradient with the flipped taps (one fused pass). The rules are made of
    jax ops and of these functions, so they can be differentiated again (second-order DARTS). Under
    :func:`plain_autodiff` the same sum of slices takes JAX's derivative.
    """
    if plain_autodiff_active():
        return _depthwise_shift_plain(x, taps, stride, padding, dilation)
    return _depthwise_shift(x, taps, stride, padding, dilation)


def _depthwise_shift_plain(x, taps, stride, padding, dilation):
    k = taps.shape[0]
    ho = out_size(x.shape[1], k, stride, padding, dilation)
    wo = out_size(x.shape[2], k, stride, padding, dilation)
    return _tap_sum(_pad_hw(x, padding), taps, stride, dilation, (ho, wo))


_depthwise_shift = jax.custom_vjp(_depthwise_shift_plain, nondiff_argnums=(2, 3, 4))


def _depthwise_shift_fwd(x, taps, stride, padding, dilation):
    return _depthwise_shift_plain(x, taps, stride, padding, dilation), (x, taps)


def _input_grad(g, taps, in_hw, stride, padding, dilation):
    """The transpose of depthwise_shift in its input: dx[i] = sum_t g_dilated[i + p - t*d] taps[t], a stride-1
    correlation of the dilated, padded output gradient with the flipped taps."""
    k = taps.shape[0]
    pads_h = _transpose_pads(in_hw[0], g.shape[1], k, stride, padding, dilation)
    pads_w = _transpose_pads(in_hw[1], g.shape[2], k, stride, padding, dilation)
    gp = lax.pad(g, jnp.zeros((), g.dtype), ((0, 0, 0), pads_h, pads_w, (0, 0, 0)))
    return depthwise_shift(gp, taps[::-1, ::-1], 1, 0, dilation)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _tap_grads(x, g, kernel: int, stride: int, padding: int, dilation: int):
    """(k, k, C): sum over batch and positions of view_t(x) * g for every tap t, i.e. depthwise_shift's gradient in
    its taps. One variadic reduction reads x and g once for all k*k taps."""
    views = _shifted_slices(_pad_hw(x, padding), kernel, stride, dilation, g.shape[1:3])
    prods = tuple(v * g for v in views)
    zeros = tuple(jnp.zeros((), g.dtype) for _ in prods)
    sums = lax.reduce(prods, zeros, lambda a, b: tuple(u + v for u, v in zip(a, b)), (0, 1, 2))
    return jnp.stack(sums).reshape(kernel, kernel, -1)


def _tap_grads_fwd(x, g, kernel, stride, padding, dilation):
    return _tap_grads(x, g, kernel, stride, padding, dilation), (x, g)


def _tap_grads_bwd(kernel, stride, padding, dilation, res, ct):
    # linear in x and in g: both cotangents are depthwise correlations with the tap cotangents
    x, g = res
    dx = _input_grad(g, ct, x.shape[1:3], stride, padding, dilation)
    return dx, depthwise_shift(x, ct, stride, padding, dilation)


_tap_grads.defvjp(_tap_grads_fwd, _tap_grads_bwd)


def _depthwise_shift_bwd(stride, padding, dilation, res, g):
    x, taps = res
    d_taps = _tap_grads(x, g, taps.shape[0], stride, padding, dilation)
    # materialised: XLA would otherwise sum every input gradient of a cell node in one loop fusion of hundreds of
    # taps, which XLA:CPU compiles to scalar code (see materialize)
    return materialize(_input_grad(g, taps, x.shape[1:3], stride, padding, dilation)), d_taps


_depthwise_shift.defvjp(_depthwise_shift_fwd, _depthwise_shift_bwd)


def conv2d(x, kernel, *, stride=1, padding=0, dilation=1, groups=1, impl=None):
    """NHWC convolution with an HWIO kernel, PyTorch-style symmetric padding. ``groups`` is 1 or C (depthwise)."""
    impl = _resolve(impl, "dense" if groups == 1 else "depthwise")
    k = kernel.shape[0]
    cin = x.shape[-1]
    if groups == 1 and k == 1 and padding == 0:
        # a pointwise convolution is a matrix product on every backend; unlike a convolution, it stays one batched
        # product under vmap (XLA:CPU would run a vmapped convolution as a grouped one, expanded to a dense kernel)
        if stride > 1:
            x = x[:, ::stride, ::stride, :]
        return x @ kernel.reshape(cin, kernel.shape[-1])
    if impl == "xla":
        if groups == 1 and _TRACING_CONDITIONAL.get() and jax.default_backend() == "cpu":
            return dense_conv_cpu(x, kernel, stride, padding, dilation)
        return _lax_conv(x, kernel, stride, padding, dilation, groups)
    if groups == 1:
        return _im2col_conv(x, kernel, stride, padding, dilation)
    if groups == cin and kernel.shape[-1] == cin:
        return depthwise_shift(x, kernel.reshape(k, k, cin), stride, padding, dilation)
    raise ValueError(f"groups must be 1 or equal to the channel count ({cin}), got {groups}")


def _lax_conv(x, kernel, stride, padding, dilation, groups=1):
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(stride, stride),
        padding=((padding, padding), (padding, padding)),
        rhs_dilation=(dilation, dilation),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=groups,
    )


def dense_conv_cpu(x: jax.Array, kernel: jax.Array, stride: int, padding: int, dilation: int) -> jax.Array:
    """A dense NHWC/HWIO convolution (``lax.conv_general_dilated``) with a hand-written gradient for the branch of
    a conditional on CPU (:func:`conv2d` uses it there): the input gradient is a convolution of the same NHWC/HWIO
    form (the flipped kernel with its channels swapped), the kernel gradient one matrix product per tap.

    Why: autodiff's gradient convolutions have other dimension orders (the kernel gradient contracts over the
    batch), which XLA:CPU rewrites into a form its convolution kernels take, except inside the branch of a
    conditional, where it runs them with a slow generic loop (docs/cpu-performance.md, "Conditionals on CPU").
    The rules are jax ops, so they can be differentiated again (second-order DARTS). Under :func:`plain_autodiff`
    it is ``lax.conv_general_dilated`` with JAX's derivative.
    """
    if plain_autodiff_active():
        return _lax_conv(x, kernel, stride, padding, dilation)
    return _dense_conv_cpu(x, kernel, stride, padding, dilation)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _dense_conv_cpu(x, kernel, stride, padding, dilation):
    return _lax_conv(x, kernel, stride, padding, dilation)


def _dense_conv_cpu_fwd(x, kernel, stride, padding, dilation):
    return _lax_conv(x, kernel, stride, padding, dilation), (x, kernel)


def _dense_conv_cpu_bwd(stride, padding, dilation, res, g):
    x, kernel = res
    k = kernel.shape[0]
    # input gradient: a stride-1 correlation of the dilated, padded output gradient with the flipped kernel whose
    # input and output channels are swapped
    pads_h = _transpose_pads(x.shape[1], g.shape[1], k, stride, padding, dilation)
    pads_w = _transpose_pads(x.shape[2], g.shape[2], k, stride, padding, dilation)
    gp = lax.pad(g, jnp.zeros((), g.dtype), ((0, 0, 0), pads_h, pads_w, (0, 0, 0)))
    dx = _lax_conv(gp, jnp.transpose(kernel[::-1, ::-1], (0, 1, 3, 2)), 1, 0, dilation)
    # kernel gradient: one matrix product per tap, view_t(padded x)^T @ g, over the batch and the output positions
    views = _shifted_slices(_pad_hw(x, padding), k, stride, dilation, g.shape[1:3])
    g2 = g.reshape(-1, g.shape[-1])
    dk = jnp.stack([v.reshape(-1, x.shape[-1]).T @ g2 for v in views]).reshape(kernel.shape)
    return dx, dk


_dense_conv_cpu.defvjp(_dense_conv_cpu_fwd, _dense_conv_cpu_bwd)


@functools.partial(jax.checkpoint, static_argnums=(2, 3, 4))
def _im2col_conv(x, kernel, stride: int, padding: int, dilation: int):
    """A dense convolution as one matrix product over the k*k shifted slices (im2col). Rematerialised: the backward
    pass rebuilds the k*k-times larger patch matrix from ``x`` instead of keeping it (inside a conditional, a kept
    residual is zero-filled in every branch that does not run: docs/cpu-performance.md)."""
    k, cin = kernel.shape[0], x.shape[-1]
    ho = out_size(x.shape[1], k, stride, padding, dilation)
    wo = out_size(x.shape[2], k, stride, padding, dilation)
    views = _shifted_slices(_pad_hw(x, padding), k, stride, dilation, (ho, wo))
    patches = views[0] if len(views) == 1 else jnp.concatenate(views, axis=-1)
    return patches @ kernel.reshape(k * k * cin, kernel.shape[-1])


def max_pool(x, *, kernel=3, stride=1, padding=1, impl=None):
    """Max pooling with implicit -inf padding (PyTorch MaxPool2d semantics)."""
    impl = _resolve(impl, "pool" if stride == 1 else "pool_strided")
    if impl == "xla":
        return lax.reduce_window(
            x, -jnp.inf, lax.max, (1, kernel, kernel, 1), (1, stride, stride, 1),
            ((0, 0), (padding, padding), (padding, padding), (0, 0)),
        )
    return max_pool_shift(x, kernel, stride, padding)


def max_pool_shift(x: jax.Array, kernel: int, stride: int, padding: int) -> jax.Array:
    """Max pooling as a running maximum of k*k shifted slices of the -inf padded input.

    The gradient is written by hand (autodiff would pad each of the k*k select masks back to the input's shape):
    every input pixel receives the output gradient of each window whose maximum it equals, in one fused pass. With
    ties inside a window every tied pixel receives it (XLA's select-and-scatter picks one); ties have probability
    zero for real-valued activations. Under :func:`plain_autodiff` the same running maximum takes JAX's derivative.
    """
    if plain_autodiff_active():
        return _max_pool_shift_plain(x, kernel, stride, padding)
    return _max_pool_shift(x, kernel, stride, padding)


def _max_pool_shift_plain(x, kernel, stride, padding):
    ho = out_size(x.shape[1], kernel, stride, padding)
    wo = out_size(x.shape[2], kernel, stride, padding)
    views = _shifted_slices(_pad_hw(x, padding, -jnp.inf), kernel, stride, 1, (ho, wo))
    out = views[0]
    for v in views[1:]:
        out = jnp.maximum(out, v)
    return out


_max_pool_shift = jax.custom_vjp(_max_pool_shift_plain, nondiff_argnums=(1, 2, 3))


def _max_pool_shift_fwd(x, kernel, stride, padding):
    y = _max_pool_shift_plain(x, kernel, stride, padding)
    return y, (x, y)


def _max_pool_shift_bwd(kernel, stride, padding, res, g):
    x, y = res
    (lo_h, hi_h, interior), (lo_w, hi_w, _) = (
        _transpose_pads(x.shape[1], g.shape[1], kernel, stride, padding, 1),
        _transpose_pads(x.shape[2], g.shape[2], kernel, stride, padding, 1),
    )
    cfg = ((0, 0, 0), (lo_h, hi_h, interior), (lo_w, hi_w, interior), (0, 0, 0))
    gp = lax.pad(g, jnp.zeros((), g.dtype), cfg)
    yp = lax.pad(y, jnp.array(jnp.inf, y.dtype), cfg)  # never equal to a finite input pixel
    g_views = _shifted_slices(gp, kernel, 1, 1, x.shape[1:3])
    y_views = _shifted_slices(yp, kernel, 1, 1, x.shape[1:3])
    dx = jnp.zeros_like(x)
    for gv, yv in zip(g_views, y_views):
        dx = dx + jnp.where(x == yv, gv, 0.0)
    return (dx,)


_max_pool_shift.defvjp(_max_pool_shift_fwd, _max_pool_shift_bwd)


def _valid_counts(h, w, kernel, stride, padding):
    """How many real (non-padding) pixels each output window covers; a constant folded by XLA."""
    ones = jnp.ones((1, h, w, 1), jnp.float32)
    return lax.reduce_window(
        ones, 0.0, lax.add, (1, kernel, kernel, 1), (1, stride, stride, 1),
        ((0, 0), (padding, padding), (padding, padding), (0, 0)),
    )


def avg_pool(x, *, kernel=3, stride=1, padding=1, count_include_pad=False, impl=None):
    """Average pooling; by default padding is excluded from the count (PyTorch ``count_include_pad=False``)."""
    impl = _resolve(impl, "pool" if stride == 1 else "pool_strided")
    if impl == "xla":
        total = lax.reduce_window(
            x, 0.0, lax.add, (1, kernel, kernel, 1), (1, stride, stride, 1),
            ((0, 0), (padding, padding), (padding, padding), (0, 0)),
        )
    else:
        ho = out_size(x.shape[1], kernel, stride, padding)
        wo = out_size(x.shape[2], kernel, stride, padding)
        # a depthwise correlation with all-one taps, so that it shares depthwise_shift's fused gradient
        total = depthwise_shift(x, jnp.ones((kernel, kernel, x.shape[-1]), x.dtype), stride, padding, 1)
    if count_include_pad or padding == 0:
        return total / (kernel * kernel)
    return total / _valid_counts(x.shape[1], x.shape[2], kernel, stride, padding).astype(x.dtype)


# ----------------------------------------------------------------------------------------------------------------
# layers

# PyTorch's default conv/linear init (kaiming uniform with a=sqrt(5)) is uniform(+-1/sqrt(fan_in)).
torch_default_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


class Conv(nn.Module):
    """2-D convolution (NHWC, HWIO kernel) with PyTorch-style padding; dense (groups=1) or depthwise (groups=C)."""

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    use_bias: bool = False
    impl: str | None = None

    @nn.compact
    def __call__(self, x):
        cin = x.shape[-1]
        if cin % self.groups:
            raise ValueError(f"Conv: {cin} input channels are not divisible by groups={self.groups}")
        kernel = self.param(
            "kernel", torch_default_init, (self.kernel_size, self.kernel_size, cin // self.groups, self.features)
        )
        y = conv2d(
            x, kernel.astype(x.dtype), stride=self.stride, padding=self.padding, dilation=self.dilation,
            groups=self.groups, impl=self.impl,
        )
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(x.dtype)
        return y


def BatchNorm(affine: bool = True, name: str | None = None) -> nn.BatchNorm:
    """BatchNorm with PyTorch's defaults (momentum 0.1 == flax momentum 0.9, eps 1e-5); no scale/bias if not affine."""
    return nn.BatchNorm(momentum=0.9, epsilon=1e-5, use_scale=affine, use_bias=affine, name=name)


class ReLUConvBN(nn.Module):
    """ReLU -> Conv -> BN (the DARTS / NAS-Bench-201 conv unit)."""

    C_out: int
    kernel_size: int
    stride: int
    padding: int
    dilation: int = 1
    affine: bool = True
    impl: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        x = nn.relu(x)
        x = Conv(self.C_out, self.kernel_size, self.stride, self.padding, self.dilation, impl=self.impl)(x)
        return BatchNorm(self.affine)(x, use_running_average=not train)


class DilConv(nn.Module):
    """ReLU -> depthwise (dilated) conv -> 1x1 conv -> BN."""

    C_out: int
    kernel_size: int
    stride: int
    padding: int
    dilation: int
    affine: bool = True
    impl: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        C_in = x.shape[-1]
        x = nn.relu(x)
        x = Conv(C_in, self.kernel_size, self.stride, self.padding, self.dilation, groups=C_in, impl=self.impl)(x)
        x = Conv(self.C_out, 1, impl=self.impl)(x)
        return BatchNorm(self.affine)(x, use_running_average=not train)


class SepConv(nn.Module):
    """Two stacked DilConv units with dilation 1 (the first carries the stride), as in DARTS."""

    C_out: int
    kernel_size: int
    stride: int
    padding: int
    affine: bool = True
    impl: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        C_in = x.shape[-1]
        x = DilConv(C_in, self.kernel_size, self.stride, self.padding, 1, self.affine, self.impl)(x, train)
        return DilConv(self.C_out, self.kernel_size, 1, self.padding, 1, self.affine, self.impl)(x, train)


class Identity(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = True):
        return x


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape (strided like the other ops of its edge)."""

    stride: int = 1

    @nn.compact
    def __call__(self, x, train: bool = True):
        if self.stride == 1:
            return jnp.zeros_like(x)
        return jnp.zeros_like(x[:, :: self.stride, :: self.stride, :])


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset 1x1 stride-2 convs, concatenated (ReLU first, BN after)."""

    C_out: int
    affine: bool = True
    impl: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        if self.C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even channel count, got {self.C_out}")
        if x.shape[1] % 2 or x.shape[2] % 2:
            raise ValueError(f"FactorizedReduce needs an even spatial size, got {x.shape[1]}x{x.shape[2]}")
        x = nn.relu(x)
        a = Conv(self.C_out // 2, 1, stride=2, impl=self.impl)(x)
        # the second conv reads the input shifted by one pixel (PyTorch: x[:, :, 1:, 1:])
        b = Conv(self.C_out // 2, 1, stride=2, impl=self.impl)(x[:, 1:, 1:, :])
        return BatchNorm(self.affine)(jnp.concatenate([a, b], axis=-1), use_running_average=not train)


class Pool(nn.Module):
    """3x3 max or average pooling (average excludes padding), optionally followed by a BN (DARTS search cells)."""

    kind: str
    stride: int = 1
    bn: bool = False
    affine: bool = False
    impl: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        if self.kind == "max":
            y = max_pool(x, kernel=3, stride=self.stride, padding=1, impl=self.impl)
        else:
            y = avg_pool(x, kernel=3, stride=self.stride, padding=1, impl=self.impl)
        if self.bn:
            y = BatchNorm(self.affine)(y, use_running_average=not train)
        return y


# ----------------------------------------------------------------------------------------------------------------
# registry

OpFactory = Callable[..., nn.Module]


def _skip(C, stride, affine, impl=None):
    return Identity() if stride == 1 else FactorizedReduce(C, affine, impl)


OPS: dict[str, OpFactory] = {
    "none": lambda C, stride, affine, impl=None: Zero(stride),
    "skip_connect": _skip,
    # bn=True: the pooled output is batch-normalised (DARTS search cells do this so that pools match conv scales)
    "max_pool_3x3": lambda C, stride, affine, impl=None, bn=False: Pool("max", stride, bn, affine, impl),
    "avg_pool_3x3": lambda C, stride, affine, impl=None, bn=False: Pool("avg", stride, bn, affine, impl),
    "sep_conv_3x3": lambda C, stride, affine, impl=None: SepConv(C, 3, stride, 1, affine, impl),
    "sep_conv_5x5": lambda C, stride, affine, impl=None: SepConv(C, 5, stride, 2, affine, impl),
    "sep_conv_7x7": lambda C, stride, affine, impl=None: SepConv(C, 7, stride, 3, affine, impl),
    "dil_conv_3x3": lambda C, stride, affine, impl=None: DilConv(C, 3, stride, 2, 2, affine, impl),
    "dil_conv_5x5": lambda C, stride, affine, impl=None: DilConv(C, 5, stride, 4, 2, affine, impl),
    "nor_conv_1x1": lambda C, stride, affine, impl=None: ReLUConvBN(C, 1, stride, 0, 1, affine, impl),
    "nor_conv_3x3": lambda C, stride, affine, impl=None: ReLUConvBN(C, 3, stride, 1, 1, affine, impl),
}



def make_op(
    name: str, C: int, stride: int = 1, affine: bool = True, impl: str | None = None, pool_bn: bool = False
) -> nn.Module:
    """Build the op ``name`` for ``C`` channels; an unknown name is an error that lists the known ones.

    ``pool_bn`` appends a BN to pooling ops (as DARTS's search network does); other ops ignore it.
    """
    try:
        factory = OPS[name]
    except KeyError:
        raise ValueError(f"unknown op {name!r}; known ops: {', '.join(sorted(OPS))}") from None
    if stride not in (1, 2):
        raise ValueError(f"op {name!r}: stride must be 1 or 2, got {stride}")
    if pool_bn and name.endswith("pool_3x3"):
        return factory(C, stride, affine, impl, bn=True)
    return factory(C, stride, affine, impl)


def count_params(params) -> int:
    """Number of scalars in a parameter pytree."""
    return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
