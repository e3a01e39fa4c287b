"""Search steps: one jitted function ``(state, batch, val_batch=None) -> (state, metrics)`` per set-up.

The supernet is any callable following the supernet convention (a flax module's ``apply``)::

    logits, updates = model_apply({'params': p, 'batch_stats': bs}, x, weights, train=True, hard=hard,
                                  mutable=['batch_stats'])

with ``weights = relaxation(arch, key, temperature)`` shaped like the architecture parameters. Architecture parameters
live in :class:`SearchState`, never in the model, so changing their values never recompiles the step.

Modes (``make_step(mode=...)``):

``"weights"``      weights only on the train batch (SPOS supernet training, warm-up epochs); arch untouched.
``"single"``       Single-DARTS: weights and architecture parameters from one loss on the same batch.
``"bilevel-1st"``  DARTS first order: arch step on the val batch at the current weights, then the weight step on the
                   train batch with the updated arch.
``"bilevel-2nd"``  DARTS second order: the arch gradient of ``L_val(w - xi * grad_w L_train(w, a), a)``, either exact
                   (the chain rule through the unrolled update with the mixed second derivative in forward over
                   reverse mode, ``hessian="exact"``) or with DARTS's
                   finite-difference Hessian-vector product (``hessian="finite_difference"``); then the weight step.

Batches are ``(inputs, labels)`` tuples or mappings with ``"image"`` and ``"label"``. In the bi-level modes the BN
running statistics come from the weight step's train batch (the arch step's statistics are dropped).
Metrics: ``loss``, ``accuracy`` (train batch, weight step), ``val_loss``, ``val_accuracy`` (bi-level: at the weights the
arch gradient was taken at, i.e. the unrolled ones for second order; other modes: only when a ``val_batch`` is given,
a forward pass), ``temperature``, ``lr`` (when the weight optimizer exposes it) and ``penalty`` (with ``arch_penalty`` or ``arch_regularizer``).

Data parallel: pass ``mesh=jaxnas.search.parallel.data_mesh()``; see :mod:`jaxnas.search.parallel`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxnas.platform import cache, settings, xla
from jaxnas import relax as relax_lib
from jaxnas.nn.chain import ChainedVJP
from jaxnas.nn.ops import plain_autodiff, plain_autodiff_active
from jaxnas.search import parallel

MODES = ("weights", "single", "bilevel-1st", "bilevel-2nd")
HESSIANS = ("exact", "finite_difference")
# the configs' word for how the architecture is optimized -> the mode of make_step
OPTIMIZATIONS = {"single-level": "single", "bilevel-1st": "bilevel-1st", "bilevel-2nd": "bilevel-2nd"}
ARCH_MODES = ("single", "bilevel-1st", "bilevel-2nd")


# ----------------------------------------------------------------------------------------------------------------
# state


@flax.struct.dataclass
class SearchState:
    """Everything a search step reads and writes; a pytree (checkpoint it as is)."""

    step: jax.Array
    params: Any
    batch_stats: Any
    arch: Any
    w_opt_state: Any
    a_opt_state: Any
    key: jax.Array

    @classmethod
    def create(cls, params, batch_stats, arch, w_optimizer, a_optimizer=None, key=None) -> "SearchState":
        """Optimizer states from the optimizers; ``a_optimizer=None`` (weights-only search): ``a_opt_state=None``."""
        relax_lib.validate_arch(arch)
        if key is None:
            key = jax.random.key(0)
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=batch_stats if batch_stats is not None else {},
            arch=arch,
            w_opt_state=w_optimizer.init(params),
            a_opt_state=None if a_optimizer is None else a_optimizer.init(arch),
            key=key,
        )


def init_search_state(
    model: nn.Module,
    arch,
    sample_input,
    key: jax.Array,
    w_optimizer: optax.GradientTransformation,
    a_optimizer: optax.GradientTransformation | None = None,
    *,
    space=None,
) -> SearchState:
    """Initialise the supernet with softmax weights of ``arch`` and build the state.

    With ``space`` given, ``arch`` must have the shapes of ``space.init_arch`` (ValueError naming the difference).
    """
    relax_lib.validate_arch(arch)
    if space is not None:
        relax_lib.check_same_tree(
            arch, jax.eval_shape(space.init_arch, jax.random.key(0)), ref_what=f"{getattr(space, 'name', 'space')}"
        )
    k_init, k_state = jax.random.split(key)
    weights = relax_lib.softmax(arch)
    try:
        # lazy_init runs only the parameter initialisers, eagerly: jitting them compiles every random initialiser of
        # the supernet (docs/cpu-performance.md: minutes for the DARTS search network); their small eager programs
        # are kept in the compilation cache for the next process
        with cache.caching_quick_compiles():
            variables = model.lazy_init(k_init, jax.ShapeDtypeStruct(sample_input.shape, sample_input.dtype),
                                        weights, train=False)
    except (TypeError, KeyError, IndexError) as e:
        shapes = jax.tree_util.tree_map(lambda a: tuple(a.shape), arch)
        raise ValueError(f"the supernet rejected edge weights shaped {shapes}: {e}") from e
    return SearchState.create(
        variables["params"], variables.get("batch_stats", {}), arch, w_optimizer, a_optimizer, k_state
    )


# ----------------------------------------------------------------------------------------------------------------
# optimizers


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Optimizers of a differentiable search (defaults: DARTS).

    Weights: SGD with momentum, cosine learning rate ``w_lr -> w_lr_min`` over the run, coupled weight decay (added to
    the gradient, as PyTorch's SGD does), global-norm gradient clipping (before the decay, as in DARTS).
    Architecture: Adam with coupled weight decay.
    """

    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_nesterov: bool = False
    w_weight_decay: float = 3e-4
    w_grad_clip: float | None = 5.0
    a_lr: float = 3e-4
    a_b1: float = 0.5
    a_b2: float = 0.999
    a_weight_decay: float = 1e-3

    def __post_init__(self):
        for name in ("w_lr", "a_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"OptimConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("w_lr_min", "w_momentum", "w_weight_decay", "a_weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"OptimConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.w_grad_clip is not None and not self.w_grad_clip > 0:
            raise ValueError(f"OptimConfig.w_grad_clip must be > 0 or None, got {self.w_grad_clip}")


def make_weight_schedule(cfg: OptimConfig, total_steps: int) -> optax.Schedule:
    """Cosine decay from ``cfg.w_lr`` to ``cfg.w_lr_min`` over ``total_steps``."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    return optax.cosine_decay_schedule(cfg.w_lr, int(total_steps), alpha=cfg.w_lr_min / cfg.w_lr)


def make_weight_optimizer(cfg: OptimConfig, total_steps: int) -> optax.GradientTransformation:
    """clip -> coupled weight decay -> SGD momentum with the cosine schedule.

    Wrapped in ``optax.inject_hyperparams`` so the state carries the learning rate (logged as ``lr`` and used as the
    default ``xi`` of the second-order step).
    """

    def chain(learning_rate):
        parts = []
        if cfg.w_grad_clip is not None:
            parts.append(optax.clip_by_global_norm(cfg.w_grad_clip))
        if cfg.w_weight_decay:
            parts.append(optax.add_decayed_weights(cfg.w_weight_decay))
        parts.append(optax.sgd(learning_rate, momentum=cfg.w_momentum or None, nesterov=cfg.w_nesterov))
        return optax.chain(*parts)

    return optax.inject_hyperparams(chain)(learning_rate=make_weight_schedule(cfg, total_steps))


def make_arch_optimizer(cfg: OptimConfig) -> optax.GradientTransformation:
    """Coupled weight decay -> Adam(``a_lr``, ``a_b1``, ``a_b2``), as PyTorch's Adam(weight_decay=...) in DARTS."""
    parts = []
    if cfg.a_weight_decay:
        parts.append(optax.add_decayed_weights(cfg.a_weight_decay))
    parts.append(optax.adam(cfg.a_lr, b1=cfg.a_b1, b2=cfg.a_b2))
    return optax.chain(*parts)


def current_learning_rate(opt_state) -> jax.Array | None:
    """The ``learning_rate`` an ``inject_hyperparams`` optimizer state carries (the latest update's), else None."""
    hyper = getattr(opt_state, "hyperparams", None)
    if isinstance(hyper, Mapping) and "learning_rate" in hyper:
        return hyper["learning_rate"]
    if isinstance(opt_state, (tuple, list)):
        for sub in opt_state:
            lr = current_learning_rate(sub)
            if lr is not None:
                return lr
    return None


# ----------------------------------------------------------------------------------------------------------------
# losses and batches


def cross_entropy(logits, labels) -> jax.Array:
    """Mean softmax cross-entropy with integer labels."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def accuracy(logits, labels) -> jax.Array:
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def unpack_batch(batch):
    """``(inputs, labels)`` from a 2-tuple or a mapping with ``image`` and ``label``."""
    if isinstance(batch, Mapping):
        missing = [k for k in ("image", "label") if k not in batch]
        if missing:
            raise ValueError(f"a batch mapping needs keys 'image' and 'label'; missing {missing}, got {sorted(batch)}")
        return batch["image"], batch["label"]
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(f"a batch is (inputs, labels) or a mapping with 'image' and 'label', got {type(batch).__name__}")


# ----------------------------------------------------------------------------------------------------------------
# the bi-level arch gradient


def fd_perturbation(params, d_w, fd_radius: float):
    """DARTS's finite-difference points ``w± = w ± eps * d_w`` with ``eps = fd_radius / ||d_w||``: ``(w+, w-, eps)``."""
    eps = fd_radius / (optax.tree.norm(d_w) + 1e-12)
    w_plus = jax.tree_util.tree_map(lambda p, d: p + eps * d, params, d_w)
    w_minus = jax.tree_util.tree_map(lambda p, d: p - eps * d, params, d_w)
    return w_plus, w_minus, eps


def mixed_derivative(train_loss: Callable[[Any, Any], jax.Array], params, arch, d_w):
    """``grad_a <grad_w L(w, a), d_w>`` at ``(params, arch)``: the derivative of ``grad_a L`` along ``d_w`` in the
    weights (forward over reverse), exact. Traced with :func:`jaxnas.nn.ops.plain_autodiff`, as forward mode cannot
    pass the supernets' hand-written VJPs (docs/cpu-performance.md: faster and smaller than reverse over reverse).
    """

    def arch_grad_at(p):
        return jax.grad(train_loss, argnums=1)(p, arch)

    with plain_autodiff():
        return jax.jvp(arch_grad_at, (params,), (d_w,))[1]


def unrolled_arch_grad(
    train_loss: Callable[[Any, Any], jax.Array],
    val_loss: Callable[[Any, Any], tuple[jax.Array, Any]],
    params,
    arch,
    xi,
    hessian: str = "exact",
    fd_radius: float = 0.01,
):
    """Gradient in ``arch`` of ``L_val(w', a)`` with ``w' = w - xi * grad_w L_train(w, a)``.

    ``train_loss(params, arch) -> scalar`` and ``val_loss(params, arch) -> (scalar, aux)`` must be deterministic
    (close over any sampling key). ``hessian="exact"`` is the chain rule through the unrolled update,
    ``grad_a L_val(w', a) - xi * grad_a <grad_w L_train(w, a), grad_w' L_val(w', a)>`` (:func:`mixed_derivative`);
    ``"finite_difference"`` is DARTS's approximation
    ``grad_a L_val(w', a) - xi * (grad_a L_train(w+, a) - grad_a L_train(w-, a)) / (2 eps)``,
    ``w± = w ± eps * grad_w' L_val(w', a)``, ``eps = fd_radius / ||grad_w' L_val||``.

    Returns ``(val_value, aux, arch_grad)`` with the value and aux at ``w'``.
    """
    if hessian not in HESSIANS:
        raise ValueError(f"unknown hessian {hessian!r}; allowed: {', '.join(HESSIANS)}")
    g = jax.grad(train_loss)(params, arch)
    w_prime = jax.tree_util.tree_map(lambda p, gp: p - xi * gp, params, g)
    (value, aux), (d_w, d_a) = jax.value_and_grad(val_loss, argnums=(0, 1), has_aux=True)(w_prime, arch)
    if hessian == "exact":
        # the chain rule through w'(a): grad_a L_val - xi * (d^2 L_train / da dw) d_w
        mixed = mixed_derivative(train_loss, params, arch, d_w)
        return value, aux, jax.tree_util.tree_map(lambda da, m: da - xi * m, d_a, mixed)
    w_plus, w_minus, eps = fd_perturbation(params, d_w, fd_radius)
    g_plus = jax.grad(train_loss, argnums=1)(w_plus, arch)
    g_minus = jax.grad(train_loss, argnums=1)(w_minus, arch)
    grad = jax.tree_util.tree_map(lambda da, gp, gm: da - xi * (gp - gm) / (2 * eps), d_a, g_plus, g_minus)
    return value, aux, grad


def weight_value_and_grad(objective: Callable[[Any, Any], tuple[jax.Array, Any]], params, arch):
    """``((value, aux), grad in params)`` of ``objective(params, arch) -> (value, aux)``, computed together with the
    gradient in ``arch``, which is tied into the result (``+ 0 * sum``) so that XLA keeps it.

    Why: XLA:CPU compiles the gradient in the weights alone into a program that recomputes each node's gradient
    inside every op that reads it (its fusion heuristics); the architecture gradient's reductions force those
    gradients into memory (docs/cpu-performance.md). The tie adds nothing where the architecture gradient is
    finite.
    """
    (value, aux), (g_w, g_a) = jax.value_and_grad(objective, argnums=(0, 1), has_aux=True)(params, arch)
    tie = 0.0 * sum((jnp.sum(g) for g in jax.tree_util.tree_leaves(g_a)), jnp.zeros((), jnp.float32))
    leaves, treedef = jax.tree_util.tree_flatten(g_w)
    if leaves:
        leaves[0] = leaves[0] + tie.astype(leaves[0].dtype)
    return (value, aux), jax.tree_util.tree_unflatten(treedef, leaves)


# ----------------------------------------------------------------------------------------------------------------
# perturbed weight steps (SDARTS)


class WeightPerturbation(NamedTuple):
    """SDARTS (Chen & Hsieh, ICML 2020): the weight step of a bi-level search sees edge weights perturbed within an
    L-inf ball of radius ``epsilon`` around the relaxed ones, projected back onto valid weights (clamped to [0, 1]
    and renormalised per edge, as the authors' code does); the architecture step sees them unperturbed.

    ``kind``: ``random`` (SDARTS-RS: uniform noise in the ball) or ``adversarial`` (SDARTS-ADV: ``steps`` steps of
    sign-gradient ascent on the weight step's loss, step size ``2 epsilon / steps``, from a random start, kept only
    if it raised the loss), or ``mean-shift`` (MS-DARTS, Hsieh et al. 2021: ``steps`` mean-shift iterations, each
    drawing ``samples`` points ``x_i`` uniformly in the ball around the current point ``c`` (projected), and moving
    ``c`` to ``sum_i p_i k_i x_i / sum_i p_i k_i`` per cell, ``p = softmax`` of the points' weight-step losses and
    ``k_i = exp(-||c - x_i||^2 / (2 bandwidth^2))`` the Gaussian kernel; the authors' defaults ``steps`` 2,
    ``samples`` 3, ``bandwidth`` 1). ``epsilon``: a number or a schedule ``step -> epsilon`` (the papers': SDARTS
    0.03 rising linearly over the epochs to 0.3; MS-DARTS 0.025 rising to 0.25; :func:`jaxnas.runners.search`
    builds them).
    """

    kind: str = "random"
    epsilon: Any = 0.03
    steps: int = 7
    samples: int = 3
    bandwidth: float = 1.0


PERTURBATIONS = ("random", "adversarial", "mean-shift")


def mean_shift_point(center, samples, losses, bandwidth: float):
    """One MS-DARTS mean-shift update of ``center`` (a weight tree) from ``samples`` (the same tree with a leading
    axis of points) and their ``losses``: per leaf (cell), ``sum_i p_i k_i x_i / sum_i p_i k_i`` with
    ``p = softmax(losses)`` and ``k_i = exp(-||center - x_i||^2 / (2 bandwidth^2))``. (The authors' kernel also
    has the factor ``1 / (bandwidth sqrt(2 pi))``; it cancels in the ratio.)"""
    p = jax.nn.softmax(losses)

    def one(c, x):
        dist2 = jnp.sum(jnp.square(x - c[None]).reshape(x.shape[0], -1), axis=1) / bandwidth ** 2
        weight = p * jnp.exp(-0.5 * dist2)
        return jnp.tensordot(weight, x, axes=1) / weight.sum()

    return jax.tree_util.tree_map(one, center, samples)


def project_weights(v: jax.Array) -> jax.Array:
    """SDARTS's projection of perturbed weights: clamp to [0, 1] and renormalise over the last axis (an all-zero
    edge keeps its strongest op)."""
    clamped = jnp.clip(v, 0.0, 1.0)
    strongest = jax.nn.one_hot(jnp.argmax(v, axis=-1), v.shape[-1], dtype=v.dtype)
    clamped = jnp.where(clamped.sum(-1, keepdims=True) == 0, strongest, clamped)
    return clamped / clamped.sum(-1, keepdims=True)


def random_delta(weights, key: jax.Array, epsilon) -> Any:
    """``project(w + u) - w`` with ``u ~ U(-epsilon, epsilon)`` on every weight (SDARTS-RS, the ADV start)."""
    leaves, treedef = jax.tree_util.tree_flatten(weights)
    keys = jax.random.split(key, len(leaves))
    out = [project_weights(w + jax.random.uniform(k, w.shape, w.dtype, -epsilon, epsilon)) - w
           for w, k in zip(leaves, keys)]
    return jax.tree_util.tree_unflatten(treedef, out)


def pgd_delta(weights, delta, g_delta, epsilon, step_size) -> Any:
    """One SDARTS-ADV ascent step: ``w + clip(w + delta + step_size * sign(g) - w, +-epsilon)``, projected, minus
    ``w``."""
    def one(w, d, g):
        v = w + jnp.clip(d + step_size * jnp.sign(g), -epsilon, epsilon)
        return project_weights(v) - w

    return jax.tree_util.tree_map(one, weights, delta, g_delta)


class OpDropout(NamedTuple):
    """Dropout on one op of every edge (P-DARTS drops ``skip_connect``): ``op`` its index, ``rate`` a number or a
    schedule ``step -> rate``, ``keys`` the architecture entries it applies to (None: every leaf)."""

    op: int
    rate: Any = 0.0
    keys: tuple[str, ...] | None = None


def drop_op(weights, key: jax.Array, rate, op: int, keys=None):
    """``weights`` with each edge's weight of ``op`` zeroed with probability ``rate`` and otherwise scaled by
    ``1 / (1 - rate)`` (the whole op's output on that edge, for this pass: drop-path on one op)."""
    def one(w, k):
        keep = jax.random.bernoulli(k, 1.0 - rate, w.shape[:-1])
        scale = jnp.where(keep, 1.0 / (1.0 - rate), 0.0).astype(w.dtype)
        return w.at[..., op].multiply(scale)

    if not isinstance(weights, dict):
        leaves, treedef = jax.tree_util.tree_flatten(weights)
        ks = jax.random.split(key, len(leaves))
        return jax.tree_util.tree_unflatten(treedef, [one(w, k) for w, k in zip(leaves, ks)])
    names = [k for k in weights if keys is None or k in keys]
    out = dict(weights)
    for name, k in zip(names, jax.random.split(key, max(len(names), 1))):
        out[name] = one(weights[name], k)
    return out


# ----------------------------------------------------------------------------------------------------------------
# the step factory


def make_step(
    model_apply,
    *,
    mode: str = "bilevel-1st",
    relaxation: str | relax_lib.Relaxation = "softmax",
    w_optimizer: optax.GradientTransformation,
    a_optimizer: optax.GradientTransformation | None = None,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array] = cross_entropy,
    accuracy_fn: Callable[[jax.Array, jax.Array], jax.Array] | None = accuracy,
    temperature: float | Callable[[jax.Array], jax.Array] = 1.0,
    arch_penalty: Callable[[Any], jax.Array] | None = None,
    arch_regularizer: Callable[[Any], jax.Array] | None = None,
    weight_perturbation: WeightPerturbation | None = None,
    report_weight_grad: bool = False,
    op_dropout: "OpDropout | None" = None,
    xi: float | Callable[[jax.Array], jax.Array] | None = None,
    hessian: str = "exact",
    fd_radius: float = 0.01,
    mesh: jax.sharding.Mesh | None = None,
    donate: bool = True,
    jit: bool = True,
    split: bool | None = None,
    arch_only_pass: bool | None = None,
    chain_cells: bool | None = None,
) -> Callable:
    """Build ``step(state, batch, val_batch=None) -> (state, metrics)``.

    Args:
      model_apply: a supernet module or its ``apply`` (the supernet calling convention above).
      mode: one of :data:`MODES`; the bi-level ones need ``val_batch``.
      relaxation: a name in :data:`jaxnas.relax.RELAXATIONS` (or alias) or a :class:`~jaxnas.relax.Relaxation`;
        its ``hard`` flag is passed to the supernet as ``hard=``.
      w_optimizer / a_optimizer: optax transformations for weights / architecture parameters (see
        :func:`make_weight_optimizer`, :func:`make_arch_optimizer`); ``a_optimizer`` only for arch-updating modes;
        its update is called with ``step=`` (optax extra args; plain transformations ignore it).
      loss_fn: ``(logits, labels) -> scalar``.
      accuracy_fn: ``(logits, labels) -> scalar`` reported as ``accuracy`` / ``val_accuracy``; ``None`` (e.g. for
        regression or language modelling) reports no accuracy.
      temperature: a number or a schedule ``step -> temperature`` (:mod:`jaxnas.relax`), evaluated on ``state.step``.
      arch_penalty: extra term ``weights -> scalar`` added to the architecture objective (e.g. expected latency):
        the train loss in ``single``, the val loss in the bi-level modes; ``weights`` mode has no arch update and
        ignores it.
      arch_regularizer: extra term ``arch -> scalar`` of the architecture parameters themselves, added where
        ``arch_penalty`` is (e.g. DrNAS's KL anchor, :mod:`jaxnas.search.regularizers`); both are reported together
        as ``penalty``.
      weight_perturbation: SDARTS (:class:`WeightPerturbation`): the bi-level weight step's edge weights perturbed
        (random or adversarial); the architecture step is unchanged.
      report_weight_grad: also report ``weight_grad_sq``, the squared norm of the weight step's gradient (before
        clipping; DARTS-PRIME's dynamic schedule of architecture steps reads it).
      op_dropout: P-DARTS's dropout on an op (:class:`OpDropout`): in every training pass (arch and weight steps)
        each edge's weight of that op is zeroed with the rate (a number or ``step -> rate``) or scaled by
        ``1 / (1 - rate)``.
      xi: inner learning rate of the second-order unroll: a number or ``step -> xi``; ``None`` (DARTS) takes the
        learning rate of this step's weight update from an ``inject_hyperparams`` weight optimizer (as
        :func:`make_weight_optimizer` builds).
      hessian: ``"exact"`` or ``"finite_difference"`` (second order only); ``fd_radius``: DARTS's 0.01.
      mesh: a device mesh with a ``'data'`` axis: batches sharded over it, state replicated.
      donate: donate the input state's buffers. jit: return the plain (un-jitted) function when False.
      split: run a bi-level step as a short sequence of jitted programs around one compiled gradient of the
        supernet, called once per pass (first order: the arch gradient on the val batch, the weight gradient on the
        train batch; second order adds the unroll, and the two finite-difference gradients or the exact mixed
        second derivative, a program of its own), instead of one program. The same function, equal up to float
        rounding. Default
        (None): split on CPU without a mesh, where XLA's compile time grows with the square of a program's kernel
        count (docs/cpu-performance.md); one program elsewhere. The single-level step splits the same way (its
        gradient, then both updates); the weight-only step is always one program. The split step has
        ``.programs`` (its jitted parts).
      arch_only_pass: in a split step, run the passes whose weight gradient is not used (the first-order val pass,
        the two finite-difference passes) as a second compiled program that differentiates the architecture alone
        (about half the time of those passes, one more compile); ``False``: one compiled gradient for every pass.
        Default: the ``cpu_arch_pass`` setting (:mod:`jaxnas.platform.settings`, ``JAXNAS_CPU_ARCH_PASS``).
      chain_cells: in a split step, compute each pass's supernet gradient as a chain of small programs, one per
        piece of the network (stem, cell, head: :mod:`jaxnas.nn.chain`), for a supernet that has ``chain()``
        (given as the module, not its ``apply``); the same function, equal up to float rounding. Default: the
        ``cpu_chain`` setting (``JAXNAS_CPU_CHAIN``); ``True`` with a model that cannot be chained is an error.
    """
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}; allowed: {', '.join(MODES)}")
    if hessian not in HESSIANS:
        raise ValueError(f"unknown hessian {hessian!r}; allowed: {', '.join(HESSIANS)}")
    relaxation = relax_lib.get_relaxation(relaxation)
    updates_arch = mode in ARCH_MODES
    if updates_arch and a_optimizer is None:
        raise ValueError(f"mode {mode!r} updates the architecture: give a_optimizer (e.g. make_arch_optimizer(cfg))")
    if updates_arch and not relaxation.differentiable:
        raise ValueError(
            f"relaxation {relaxation.name!r} gives no gradient to the architecture; use mode='weights' with it "
            f"(arch-updating modes {', '.join(ARCH_MODES)} need a differentiable relaxation)"
        )
    perturb = weight_perturbation
    if perturb is not None:
        if not isinstance(perturb, WeightPerturbation) or perturb.kind not in PERTURBATIONS:
            raise ValueError(f"weight_perturbation must be a WeightPerturbation with kind in "
                             f"{', '.join(PERTURBATIONS)}, got {perturb!r}")
        if mode not in ("bilevel-1st", "bilevel-2nd"):
            raise ValueError(f"a weight perturbation (SDARTS) perturbs the weight step of a bi-level search; mode "
                             f"{mode!r} has no separate weight step")
        if relaxation.hard:
            raise ValueError(f"a weight perturbation (SDARTS) needs soft edge weights; {relaxation.name!r} is hard")
        if perturb.kind == "mean-shift" and not (perturb.samples >= 1 and perturb.bandwidth > 0):
            raise ValueError(f"a mean-shift perturbation needs samples >= 1 and bandwidth > 0, got {perturb!r}")
        epsilon_at = relax_lib.as_schedule(perturb.epsilon)
    if mode == "bilevel-2nd" and xi is None:
        probe = jax.eval_shape(w_optimizer.init, {"w": jax.ShapeDtypeStruct((1,), jnp.float32)})
        if current_learning_rate(probe) is None:
            raise ValueError(
                "mode 'bilevel-2nd' needs xi (a number or step -> xi); it can only default to the weight learning rate "
                "when w_optimizer is an optax.inject_hyperparams optimizer (make_weight_optimizer builds one)"
            )
    apply = model_apply.apply if isinstance(model_apply, nn.Module) else model_apply
    a_update = None if a_optimizer is None else optax.with_extra_args_support(a_optimizer).update
    temperature_at = relax_lib.as_schedule(temperature)
    if op_dropout is not None and not isinstance(op_dropout, OpDropout):
        raise ValueError(f"op_dropout must be an OpDropout, got {op_dropout!r}")
    dropout_rate_at = None if op_dropout is None else relax_lib.as_schedule(op_dropout.rate)
    hard = relaxation.hard
    if split is None:
        split = jit and mesh is None and mode in ARCH_MODES and jax.default_backend() == "cpu"
    if split and mesh is not None:
        raise ValueError("split=True runs the step as several jitted programs on one device; it cannot take a mesh")

    def forward(params, batch_stats, x, weights):
        variables = {"params": params}
        if batch_stats:
            variables["batch_stats"] = batch_stats
        logits, updates = apply(variables, x, weights, train=True, hard=hard, mutable=["batch_stats"])
        return logits, updates.get("batch_stats", batch_stats)

    if arch_only_pass is None:
        arch_only_pass = settings.current().cpu_arch_pass == "arch-only"
    chainable = isinstance(model_apply, nn.Module) and hasattr(model_apply, "chain")
    if chain_cells and not (split and chainable):
        raise ValueError(
            "chain_cells=True chains the supernet gradient of a split step; it needs split (CPU, no mesh) and a "
            f"supernet module with chain() (got {type(model_apply).__name__}, split={split})"
        )
    if chain_cells is None:
        chain_cells = bool(split and chainable and settings.current().cpu_chain == "cells")
    if split:
        # the split step's programs trace the supernet once: each differentiates the same jaxpr (XLA inlines it);
        # a trace under plain_autodiff (the exact mixed term) is a jaxpr of its own, as jit's cache ignores it
        forward = _traced_once(forward)

    def pass_temperature(step):
        """What a pass's ``temp`` argument carries: the temperature, and with ``op_dropout`` also its rate."""
        t = jnp.asarray(temperature_at(step), jnp.float32)
        return t if op_dropout is None else (t, jnp.asarray(dropout_rate_at(step), jnp.float32))

    def relaxed(arch, key, temp, dropout=False):
        """The edge weights of one pass (``temp`` from :func:`pass_temperature`), op-dropped if asked and set."""
        t, rate = temp if isinstance(temp, tuple) else (temp, None)
        weights = relaxation(arch, key, t)
        if dropout and rate is not None:
            weights = drop_op(weights, jax.random.fold_in(key, 0xD0), rate, op_dropout.op, op_dropout.keys)
        return weights

    def loss_of(params, arch, batch_stats, batch, key, temp, delta=None):
        """(loss, (logits, new batch stats, weights)) of one batch under one sample of the relaxation (plus
        ``delta``, a perturbation of the edge weights, if given)."""
        x, y = unpack_batch(batch)
        weights = relaxed(arch, key, temp, dropout=True)
        if delta is not None:
            weights = jax.tree_util.tree_map(jnp.add, weights, delta)
        logits, new_bs = forward(params, batch_stats, x, weights)
        return loss_fn(logits, y), (logits, new_bs, weights)

    penalized = arch_penalty is not None or arch_regularizer is not None

    def penalty_of(weights, arch):
        pen = jnp.zeros((), jnp.float32)
        if arch_penalty is not None:
            pen = pen + arch_penalty(weights)
        if arch_regularizer is not None:
            pen = pen + arch_regularizer(arch)
        return pen

    def acc(logits, labels):
        return {} if accuracy_fn is None else {"accuracy": accuracy_fn(logits, labels)}

    def val_acc(logits, labels):
        return {} if accuracy_fn is None else {"val_accuracy": accuracy_fn(logits, labels)}

    def gradients(params, batch_stats, arch, batch, key, temp, penalty_scale, delta=None):
        """``((loss, penalty, logits, new batch stats), grad in params, grad in arch, grad in delta)`` of
        ``loss + penalty_scale * penalty`` on one batch: one pass through the supernet (``delta``: a perturbation of
        the edge weights; its gradient is None without one)."""

        def objective(p, a, d):
            loss, (logits, new_bs, weights) = loss_of(p, a, batch_stats, batch, key, temp, d)
            pen = penalty_of(weights, a)
            return loss + penalty_scale * pen, (loss, pen, logits, new_bs)

        if delta is None:
            (_, aux), (g_w, g_a) = jax.value_and_grad(lambda p, a: objective(p, a, None), argnums=(0, 1),
                                                      has_aux=True)(params, arch)
            return aux, g_w, g_a, None
        (_, aux), (g_w, g_a, g_d) = jax.value_and_grad(objective, argnums=(0, 1, 2), has_aux=True)(params, arch, delta)
        return aux, g_w, g_a, g_d

    def arch_gradients(params, batch_stats, arch, batch, key, temp, penalty_scale, delta=None):
        """:func:`gradients` in the architecture parameters alone (the weight gradient is None): a pass whose
        weight gradient is not used skips the convolutions' kernel gradients."""

        def objective(a):
            loss, (logits, new_bs, weights) = loss_of(params, a, batch_stats, batch, key, temp, delta)
            pen = penalty_of(weights, a)
            return loss + penalty_scale * pen, (loss, pen, logits, new_bs)

        (_, aux), g_a = jax.value_and_grad(objective, has_aux=True)(arch)
        return aux, None, g_a, None

    def chained_gradients():
        """:func:`gradients` and :func:`arch_gradients` as chains of programs that share their forward programs:
        the relaxation, each piece of the supernet (:class:`jaxnas.nn.chain.ChainedVJP`), the loss and penalty."""
        cjit = functools.partial(jax.jit, compiler_options=options)
        network = ChainedVJP(model_apply.chain(hard=hard), options)

        @cjit
        def relax_forward(arch, key, temp, delta):
            def weights_of(a, d):
                weights = relaxed(a, key, temp, dropout=True)
                return weights if d is None else jax.tree_util.tree_map(jnp.add, weights, d)

            return jax.vjp(weights_of, arch, delta)

        @cjit
        def head(logits, labels, weights, arch, penalty_scale):
            def objective(lg, w, a):
                loss, pen = loss_fn(lg, labels), penalty_of(w, a)
                return loss + penalty_scale * pen, (loss, pen)

            (_, (loss, pen)), grads = jax.value_and_grad(objective, argnums=(0, 1, 2), has_aux=True)(
                logits, weights, arch)
            return loss, pen, grads

        @cjit
        def relax_backward(vjp, g_net, g_pen, g_reg):
            g_a, g_d = vjp(jax.tree_util.tree_map(jnp.add, g_net, g_pen))
            return jax.tree_util.tree_map(jnp.add, g_a, g_reg), g_d

        def make(with_params):
            def run(params, batch_stats, arch, batch, key, temp, penalty_scale, delta=None):
                x, y = unpack_batch(batch)
                weights, relax_vjp = relax_forward(arch, key, temp, delta)
                logits, new_bs, backward = network.forward(params, batch_stats, x, weights)
                loss, pen, (g_logits, g_pen, g_reg) = head(logits, y, weights, arch, penalty_scale)
                g_params, g_net = backward(g_logits, params=with_params)
                g_a, g_d = relax_backward(relax_vjp, g_net, g_pen, g_reg)
                return (loss, pen, logits, new_bs), g_params, g_a, g_d

            run.network = network
            return run

        return make(True), make(False)

    def clean_weights(arch, key, temp):
        return jax.lax.stop_gradient(relaxed(arch, key, temp))

    def start_delta(arch, key, temp, step):
        """``(clean weights, the perturbation's start, epsilon)`` of a perturbed weight step."""
        weights, eps = clean_weights(arch, key, temp), epsilon_at(step)
        return weights, random_delta(weights, jax.random.fold_in(key, 1), eps), eps

    def weight_delta(params, batch_stats, arch, batch, key, temp, step):
        """The perturbation of this step's weight pass, in one program (SDARTS-RS, -ADV's ascent, MS-DARTS's
        mean shift)."""
        if perturb.kind == "mean-shift":
            return mean_shift_delta(params, batch_stats, arch, batch, key, temp, step)
        weights, delta, eps = start_delta(arch, key, temp, step)
        if perturb.kind == "random":
            return delta

        def loss_at(d):
            return loss_of(params, arch, batch_stats, batch, key, temp, d)[0]

        def ascend(_, d):
            return pgd_delta(weights, d, jax.grad(loss_at)(d), eps, 2 * eps / perturb.steps)

        delta = jax.lax.fori_loop(0, perturb.steps, ascend, delta)
        zero = jax.tree_util.tree_map(jnp.zeros_like, delta)
        keep = loss_at(delta) > loss_at(zero)
        return jax.tree_util.tree_map(lambda d: jnp.where(keep, d, 0.0), delta)

    def mean_shift_delta(params, batch_stats, arch, batch, key, temp, step):
        """MS-DARTS: ``perturb.steps`` mean-shift iterations from the relaxed weights (see
        :class:`WeightPerturbation`), as ``shifted - weights``. The points' losses are forward passes with the
        batch's statistics (the authors' code evaluates them in eval mode), one compiled pass in a loop."""
        weights, eps = clean_weights(arch, key, temp), epsilon_at(step)

        def loss_at(point):
            delta = jax.tree_util.tree_map(jnp.subtract, point, weights)
            return loss_of(params, arch, batch_stats, batch, key, temp, delta)[0]

        def iterate(t, center):
            keys = jax.random.split(jax.random.fold_in(key, 2 + t), perturb.samples)
            points = [jax.tree_util.tree_map(jnp.add, center, random_delta(center, k, eps)) for k in keys]
            stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *points)
            losses = jax.lax.map(loss_at, stacked)
            return mean_shift_point(center, stacked, losses, perturb.bandwidth)

        center = jax.lax.fori_loop(0, perturb.steps, iterate, weights)
        return jax.lax.stop_gradient(jax.tree_util.tree_map(jnp.subtract, center, weights))

    def apply_weight_grads(state, grads, loss, logits, new_bs, batch):
        updates, w_opt_state = w_optimizer.update(grads, state.w_opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        _, y = unpack_batch(batch)
        metrics = {"loss": loss, **acc(logits, y)}
        if report_weight_grad:  # DARTS-PRIME's per-minibatch information (before clipping, as the authors')
            metrics["weight_grad_sq"] = optax.tree.vdot(grads, grads).astype(jnp.float32)
        return params, new_bs, w_opt_state, metrics

    def arch_update(state, grads):
        """The architecture optimizer's update (given ``step=``, for step-aware transformations such as
        DARTS-PRIME's proximity term), then the relaxation's projection (``Relaxation.project``)."""
        updates, a_opt_state = a_update(grads, state.a_opt_state, state.arch, step=state.step)
        return relaxation.project_arch(state.arch, optax.apply_updates(state.arch, updates)), a_opt_state

    def upcoming_lr(state):
        """The learning rate of this step's weight update, from an ``inject_hyperparams`` optimizer (else None).

        Read off a probe update with zero gradients; XLA drops everything of it but the learning rate.
        """
        if current_learning_rate(state.w_opt_state) is None:
            return None
        zeros = jax.tree_util.tree_map(jnp.zeros_like, state.params)
        _, probe = w_optimizer.update(zeros, state.w_opt_state, state.params)
        return current_learning_rate(probe)

    def xi_at(state):
        if xi is None:
            return upcoming_lr(state)
        return xi(state.step) if callable(xi) else xi

    def check_batches(val_batch):
        if mode.startswith("bilevel") and val_batch is None:
            raise ValueError(f"mode {mode!r} needs a val_batch: step(state, batch, val_batch)")

    def keys_of(state):
        """``(next key, weight-step key, arch-step key, unroll key)``: every phase splits the same way."""
        return jax.random.split(state.key, 4)

    def val_loss_at(state, val_batch):
        """``(params, arch) -> (val loss + penalty, (loss, penalty, logits))`` with this step's arch key."""
        k_a, temp = keys_of(state)[2], pass_temperature(state.step)

        def val_loss(p, a):
            loss, (logits, _, weights) = loss_of(p, a, state.batch_stats, val_batch, k_a, temp)
            pen = penalty_of(weights, a)
            return loss + pen, (loss, pen, logits)

        return val_loss

    def train_loss_at(state, batch):
        """``(params, arch) -> train loss`` with this step's unroll key (second order)."""
        k_t, temp = keys_of(state)[3], pass_temperature(state.step)
        return lambda p, a: loss_of(p, a, state.batch_stats, batch, k_t, temp)[0]

    def arch_metrics(val_aux, val_batch):
        v_loss, pen, v_logits = val_aux
        metrics = {"val_loss": v_loss, **val_acc(v_logits, unpack_batch(val_batch)[1])}
        if penalized:
            metrics["penalty"] = pen
        return metrics

    def arch_grad(state, batch, val_batch):
        """The bi-level arch gradient and its metrics, in one program."""
        val_loss = val_loss_at(state, val_batch)
        if mode == "bilevel-1st":
            (_, aux), g_a = jax.value_and_grad(val_loss, argnums=1, has_aux=True)(state.params, state.arch)
        else:
            _, aux, g_a = unrolled_arch_grad(
                train_loss_at(state, batch), val_loss, state.params, state.arch, xi_at(state), hessian, fd_radius
            )
        return g_a, arch_metrics(aux, val_batch)

    def single_step(state, batch, val_batch):
        k_w = keys_of(state)[1]
        aux, g_w, g_a, _ = gradients(state.params, state.batch_stats, state.arch, batch, k_w,
                                     pass_temperature(state.step), 1.0)
        return single_grad_phase(state, g_w, g_a, aux, batch, val_batch)

    def weight_phase(state, arch, a_opt_state, batch, val_batch, arch_metrics_=None):
        """The weight step on the train batch at ``arch`` (already updated in the bi-level modes), then the state."""
        k_w, temp = keys_of(state)[1], pass_temperature(state.step)
        delta = None if perturb is None else weight_delta(state.params, state.batch_stats, arch, batch, k_w, temp,
                                                          state.step)

        def objective(p, a):
            return loss_of(p, a, state.batch_stats, batch, k_w, temp, delta)

        (loss, (logits, new_bs, _)), g_w = weight_value_and_grad(objective, state.params, arch)
        return weight_grad_phase(state, arch, a_opt_state, g_w, (loss, None, logits, new_bs), batch, val_batch,
                                 arch_metrics_ or {})

    def weight_grad_phase(state, arch, a_opt_state, g_w, w_aux, batch, val_batch, arch_metrics_):
        """:func:`weight_phase` from an already computed weight gradient (the split step's last program)."""
        loss, _, logits, new_bs = w_aux
        key = keys_of(state)[0]
        params, new_bs, w_opt_state, w_metrics = apply_weight_grads(state, g_w, loss, logits, new_bs, batch)
        metrics = {"temperature": jnp.asarray(temperature_at(state.step), jnp.float32), **arch_metrics_, **w_metrics}
        return finish(state, key, params, new_bs, arch, w_opt_state, a_opt_state, val_batch, metrics)

    def single_grad_phase(state, g_w, g_a, aux, batch, val_batch):
        """:func:`single_step` from already computed gradients (the split single-level step's last program)."""
        loss, pen, logits, new_bs = aux
        key = keys_of(state)[0]
        params, new_bs, w_opt_state, w_metrics = apply_weight_grads(state, g_w, loss, logits, new_bs, batch)
        arch, a_opt_state = arch_update(state, g_a)
        metrics = {"temperature": jnp.asarray(temperature_at(state.step), jnp.float32), **w_metrics}
        if penalized:
            metrics["penalty"] = pen
        return finish(state, key, params, new_bs, arch, w_opt_state, a_opt_state, val_batch, metrics)

    def finish(state, key, params, new_bs, arch, w_opt_state, a_opt_state, val_batch, metrics):
        if val_batch is not None and mode in ("weights", "single"):
            k_a, temp = keys_of(state)[2], pass_temperature(state.step)
            v_loss, (v_logits, _, _) = loss_of(params, arch, new_bs, val_batch, k_a, temp)
            metrics.update(val_loss=v_loss, **val_acc(v_logits, unpack_batch(val_batch)[1]))
        lr = current_learning_rate(w_opt_state)  # the one this step's weight update used
        if lr is not None:
            metrics["lr"] = jnp.asarray(lr, jnp.float32)
        new_state = state.replace(
            step=state.step + 1,
            params=params,
            batch_stats=new_bs,
            arch=arch,
            w_opt_state=w_opt_state,
            a_opt_state=a_opt_state,
            key=key,
        )
        return new_state, metrics

    def step(state: SearchState, batch, val_batch=None):
        check_batches(val_batch)
        if mode == "single":
            return single_step(state, batch, val_batch)
        arch, a_opt_state, a_metrics = state.arch, state.a_opt_state, None
        if mode in ("bilevel-1st", "bilevel-2nd"):
            g_a, a_metrics = arch_grad(state, batch, val_batch)
            arch, a_opt_state = arch_update(state, g_a)
        return weight_phase(state, arch, a_opt_state, batch, val_batch, a_metrics)

    if not jit:
        return step
    if mesh is not None:
        return parallel.jit_data_parallel(step, mesh, donate=donate)
    options = xla.compiler_options()
    if split and mode in ARCH_MODES:
        if chain_cells:
            pass_gradients, pass_arch_gradients = chained_gradients()
            pass_arch_gradients = pass_arch_gradients if arch_only_pass else pass_gradients
        else:
            pass_gradients = jax.jit(gradients, compiler_options=options)
            pass_arch_gradients = (jax.jit(arch_gradients, compiler_options=options) if arch_only_pass
                                   else pass_gradients)
        return _split_bilevel_step(
            mode, hessian, fd_radius, check_batches, pass_gradients, pass_arch_gradients, keys_of, pass_temperature,
            arch_metrics,
            arch_update, weight_grad_phase, single_grad_phase, xi_at, train_loss_at, donate, options,
            perturb, None if perturb is None else (weight_delta if perturb.kind == "mean-shift" else start_delta),
        )
    jitted = jax.jit(step, donate_argnums=(0,) if donate else (), compiler_options=options)

    def run(state, batch, val_batch=None):
        return jitted(state, batch, val_batch)

    run.jitted = jitted
    return run


def _traced_once(fn):
    """``fn`` jitted, so that every program that calls it differentiates one traced jaxpr; traced a second time
    under :func:`jaxnas.nn.ops.plain_autodiff` (whose ops differ)."""
    def plain_fn(*args):
        with plain_autodiff():
            return fn(*args)

    custom, plain = jax.jit(fn), jax.jit(plain_fn)  # two functions: jit's trace cache is keyed by the function

    def call(*args):
        return (plain if plain_autodiff_active() else custom)(*args)

    return call


def _split_bilevel_step(mode, hessian, fd_radius, check_batches, gradients, arch_gradients, keys_of, pass_temperature,
                        arch_metrics, arch_update, weight_grad_phase, single_grad_phase, xi_at, train_loss_at, donate,
                        options, perturb=None, start_delta=None):
    """A bi-level (or single-level) step as a sequence of jitted programs around one compiled supernet gradient.

    The same function as the single-program step (same keys, temperature, learning rates; equal up to float
    rounding). Every pass through the supernet is one of two programs, for any weights, architecture values and
    batch of the same shapes: :func:`gradients` (the loss of one batch and its gradient in both the weights and the
    architecture parameters) where the weight gradient is used, :func:`arch_gradients` (the architecture gradient
    alone, which skips the kernel gradients of every convolution: about half the time of a pass) where it is not
    (``make_step(arch_only_pass=False)`` passes ``gradients`` for it: one program to compile). Both come in
    jitted, or (``chain_cells``) as chains of per-cell programs that share their forward programs.
    So each compiles once; a first-order step calls each once (the arch gradient on the val batch, the weight
    gradient on the train batch; PyTorch DARTS computes both gradients in both passes); a second-order step with
    the finite-difference Hessian calls ``gradients`` three times and ``arch_gradients`` twice, a single-level step
    ``gradients`` once (then one program applies both updates: as one program, the NB201 single-level step took
    longer than the two passes of the first-order one). Only the exact mixed second derivative
    (second order, ``hessian="exact"``) is a program of its own. Why: XLA:CPU orders the kernels of a program by
    comparing every pair, so compile time and the compiler's memory grow with the square of a program's size
    (docs/cpu-performance.md), and each distinct program is paid for once. Second order (``w' = w - xi g_w``,
    ``d = grad_w' L_val(w', a)``):

    - exact: ``grad_a L_val(w', a) - xi * grad_a <grad_w L_train(w, a), d>`` (the mixed second derivative along
      ``d``, equal to differentiating through the unrolled update);
    - finite difference: DARTS's ``(grad_a L_train(w+, a) - grad_a L_train(w-, a)) / (2 eps)`` in place of the
      mixed term.
    """
    jit = functools.partial(jax.jit, compiler_options=options)

    @jit
    def phase_inputs(state):
        """This step's keys (weight step, arch step, unroll) and temperature (with the op-dropout rate)."""
        _, k_w, k_a, k_t = keys_of(state)
        return k_w, k_a, k_t, pass_temperature(state.step)

    @jit
    def update_arch(state, g_a, aux, val_batch):
        return (*arch_update(state, g_a), arch_metrics(aux[:3], val_batch))

    @jit
    def unroll(state, g_w):
        xi = xi_at(state)
        return jax.tree_util.tree_map(lambda p, g: p - xi * g, state.params, g_w)

    @jit
    def mixed_term(state, batch, d_w):
        """``grad_a <grad_w L_train(w, a), d_w>``, exact: the derivative of ``grad_a L_train`` along ``d_w`` (forward
        over reverse, traced with :func:`jaxnas.nn.ops.plain_autodiff`, as forward mode cannot pass the supernets'
        hand-written VJPs)."""
        return mixed_derivative(train_loss_at(state, batch), state.params, state.arch, d_w)

    @jit
    def perturbed(state, d_w):
        return fd_perturbation(state.params, d_w, fd_radius)

    @jit
    def hyper_update(state, d_a, mixed, aux, val_batch):
        xi = xi_at(state)
        g_a = jax.tree_util.tree_map(lambda da, m: da - xi * m, d_a, mixed)
        return (*arch_update(state, g_a), arch_metrics(aux[:3], val_batch))

    @jit
    def fd_mixed(g_plus, g_minus, eps):
        return jax.tree_util.tree_map(lambda gp, gm: (gp - gm) / (2 * eps), g_plus, g_minus)

    finish = jax.jit(weight_grad_phase, donate_argnums=(0,) if donate else (), compiler_options=options)
    finish_single = jax.jit(single_grad_phase, donate_argnums=(0,) if donate else (), compiler_options=options)
    no_penalty, with_penalty = jnp.float32(0.0), jnp.float32(1.0)
    start = jit(start_delta) if perturb is not None else None

    @jit
    def ascend(weights, delta, g_delta, eps):
        return pgd_delta(weights, delta, g_delta, eps, 2 * eps / perturb.steps)

    @jit
    def larger_loss(aux, g_w, clean_aux, clean_g_w):
        """The perturbed pass if it raised the loss, else the clean one (SDARTS-ADV keeps only an ascent)."""
        keep = aux[0] > clean_aux[0]
        return jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), (aux, g_w), (clean_aux, clean_g_w))

    def weight_pass(params, bs, arch, batch, k_w, temp, step, zeros):
        """The weight step's loss and gradient: at the relaxed weights, or (SDARTS) at perturbed ones."""
        if perturb is None:
            return gradients(params, bs, arch, batch, k_w, temp, no_penalty, zeros)[:2]
        if perturb.kind == "mean-shift":
            delta = start(params, bs, arch, batch, k_w, temp, step)
        else:
            weights, delta, eps = start(arch, k_w, temp, step)
        if perturb.kind in ("random", "mean-shift"):
            return gradients(params, bs, arch, batch, k_w, temp, no_penalty, delta)[:2]
        clean_aux, clean_g_w, _, _ = gradients(params, bs, arch, batch, k_w, temp, no_penalty, zeros)
        for _ in range(perturb.steps):
            delta = ascend(weights, delta, gradients(params, bs, arch, batch, k_w, temp, no_penalty, delta)[3], eps)
        aux, g_w, _, _ = gradients(params, bs, arch, batch, k_w, temp, no_penalty, delta)
        return larger_loss(aux, g_w, clean_aux, clean_g_w)

    def run(state, batch, val_batch=None):
        check_batches(val_batch)
        k_w, k_a, k_t, temp = phase_inputs(state)
        params, bs = state.params, state.batch_stats
        # with a perturbation every pass takes a delta (zero but for the weight step's): one compiled gradient
        zeros = None if perturb is None else jax.tree_util.tree_map(jnp.zeros_like, state.arch)
        if mode == "single":
            aux, g_w, g_a, _ = gradients(params, bs, state.arch, batch, k_w, temp, with_penalty, zeros)
            return finish_single(state, g_w, g_a, aux, batch, val_batch)
        if mode == "bilevel-1st":
            aux, _, g_a, _ = arch_gradients(params, bs, state.arch, val_batch, k_a, temp, with_penalty, zeros)
            arch, a_opt_state, a_metrics = update_arch(state, g_a, aux, val_batch)
        else:
            _, g_w, _, _ = gradients(params, bs, state.arch, batch, k_t, temp, no_penalty, zeros)
            aux, d_w, d_a, _ = gradients(unroll(state, g_w), bs, state.arch, val_batch, k_a, temp, with_penalty, zeros)
            if hessian == "exact":
                mixed = mixed_term(state, batch, d_w)
            else:
                w_plus, w_minus, eps = perturbed(state, d_w)
                g_plus = arch_gradients(w_plus, bs, state.arch, batch, k_t, temp, no_penalty, zeros)[2]
                g_minus = arch_gradients(w_minus, bs, state.arch, batch, k_t, temp, no_penalty, zeros)[2]
                mixed = fd_mixed(g_plus, g_minus, eps)
            arch, a_opt_state, a_metrics = hyper_update(state, d_a, mixed, aux, val_batch)
        w_aux, g_w = weight_pass(params, bs, arch, batch, k_w, temp, state.step, zeros)
        return finish(state, arch, a_opt_state, g_w, w_aux, batch, val_batch, a_metrics)

    run.programs = {
        "phase_inputs": phase_inputs, "gradients": gradients, "arch_gradients": arch_gradients, "update_arch": update_arch, "unroll": unroll,
        "mixed_term": mixed_term, "perturbed": perturbed, "hyper_update": hyper_update, "fd_mixed": fd_mixed,
        "finish": finish, "finish_single": finish_single, "start_delta": start, "ascend": ascend,
        "larger_loss": larger_loss,
    }
    return run


__all__ = [
    "ARCH_MODES",
    "HESSIANS",
    "MODES",
    "OPTIMIZATIONS",
    "OpDropout",
    "OptimConfig",
    "PERTURBATIONS",
    "SearchState",
    "WeightPerturbation",
    "accuracy",
    "cross_entropy",
    "current_learning_rate",
    "drop_op",
    "init_search_state",
    "make_arch_optimizer",
    "make_step",
    "make_weight_optimizer",
    "make_weight_schedule",
    "mixed_derivative",
    "mean_shift_point",
    "pgd_delta",
    "project_weights",
    "random_delta",
    "unpack_batch",
    "unrolled_arch_grad",
    "weight_value_and_grad",
]
