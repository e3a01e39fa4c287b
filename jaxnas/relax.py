"""Relaxations: pure functions from architecture parameters to edge weights, and temperature schedules.

A relaxation maps the architecture-parameter pytree (``{'cell': (6, 5)}`` for NB201, ``{'normal': (14, 8),
'reduce': (14, 8)}`` for DARTS; any pytree of ``(..., ops)`` arrays) to an edge-weight pytree of the same structure
and shapes, which a supernet receives as a call argument::

    weights = relaxation(arch, key, temperature)
    logits, updates = model.apply(variables, x, weights, train=True, hard=relaxation.hard, mutable=['batch_stats'])

========================  ==============  =====  ===================================================================
name (alias)              paper           hard   forward value / gradient to the architecture
========================  ==============  =====  ===================================================================
``softmax`` (darts)       DARTS           no     ``softmax(a / t)``
``gumbel`` (snas)         SNAS            no     ``softmax((log_softmax(a) + g) / t)``, g ~ Gumbel(0, 1)
``hard_gumbel`` (gdas)    GDAS            yes    one-hot sample; gradient of the soft sample (straight-through)
``sigmoid`` (asap)        FairDARTS       no     ``sigmoid(a / t)``, independent per op (the alias ``asap`` names the
                                                 annealed sigmoid of older configs; ``--method asap`` is softmax)
``uniform`` (spos)        SPOS            yes    one-hot of a uniformly sampled op; no gradient to the architecture
``argmax``                --              yes    one-hot of the strongest op (derived cell); straight-through softmax
``dirichlet`` (drnas)     DrNAS           no     a sample of ``Dir(elu(a) + 1)``; pathwise gradient
``clipped`` (crb)         DARTS-PRIME     no     ``clip(a, 0, 1)`` per op, not normalised over an edge; an op whose
                                                 parameter reaches 0 is pruned for good (:attr:`Relaxation.project`)
``dst`` (factory)         EnTranNAS-DST   no     ``sparsemax(a / t)`` over all (edge, op) pairs of a node at once
                                                 (:func:`node_sparsemax`): exact zeros, any number of survivors
========================  ==============  =====  ===================================================================

A *hard* relaxation yields exactly one-hot forward values: the step passes ``hard=True`` to the supernet, which then
computes only the chosen op on every edge. Adding a relaxation is writing one function
``(logits, key, temperature) -> weights`` for one array and wrapping it in :class:`Relaxation` (optionally
registering it in :data:`RELAXATIONS`).

Temperature schedules are functions ``step -> temperature`` built from plain numbers (``constant``, ``linear``,
``exponential``, ``gdas_temperature``, ``asap_temperature``); they use ``jnp`` so a jitted step evaluates them on the
traced step counter and never recompiles when the temperature changes.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

LeafFn = Callable[[jax.Array, "jax.Array | None", Any], jax.Array]
Schedule = Callable[[Any], jax.Array]
# the parameter of a pruned op (ASAP, P-DARTS's stages, keep_ops): its softmax/Gumbel/sigmoid weight is exactly 0,
# and the Dirichlet relaxation leaves it out of the sample (any parameter at or below PRUNED / 2 counts as pruned)
PRUNED = -1e4


def is_pruned(logits):
    """Which ops of ``logits`` are pruned (parameter at or below ``PRUNED / 2``); works on numpy and jax arrays."""
    return logits <= PRUNED / 2


# ----------------------------------------------------------------------------------------------------------------
# checks


def _path_name(path) -> str:
    return jax.tree_util.keystr(path) or "<root>"


def validate_arch(arch) -> None:
    """Every leaf of ``arch`` must be a floating array with an op axis last (shape ``(..., ops)``, ops >= 1)."""
    leaves = jax.tree_util.tree_leaves_with_path(arch)
    if not leaves:
        raise ValueError("architecture parameters are empty: expected a pytree of (edges, ops) float arrays")
    for path, leaf in leaves:
        shape = getattr(leaf, "shape", None)
        dtype = getattr(leaf, "dtype", None)
        if shape is None or dtype is None:
            raise ValueError(f"architecture leaf {_path_name(path)} is a {type(leaf).__name__}, not an array")
        if len(shape) < 1 or shape[-1] < 1:
            raise ValueError(f"architecture leaf {_path_name(path)} has shape {tuple(shape)}; expected (edges, ops)")
        if not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(f"architecture leaf {_path_name(path)} has dtype {dtype}; expected a float dtype")


def check_same_tree(tree, reference, what: str = "architecture parameters", ref_what: str = "expected") -> None:
    """ValueError unless ``tree`` has the structure and leaf shapes of ``reference``, naming the first difference."""
    got = {_path_name(p): tuple(getattr(x, "shape", ())) for p, x in jax.tree_util.tree_leaves_with_path(tree)}
    want = {_path_name(p): tuple(getattr(x, "shape", ())) for p, x in jax.tree_util.tree_leaves_with_path(reference)}
    if set(got) != set(want):
        raise ValueError(
            f"{what} do not match the {ref_what} tree: got leaves {sorted(got)}, allowed leaves {sorted(want)}"
        )
    for name, shape in want.items():
        if got[name] != shape:
            raise ValueError(f"{what} leaf {name} has shape {got[name]}; {ref_what} shape {shape}")


# ----------------------------------------------------------------------------------------------------------------
# the relaxation type


class Relaxation(NamedTuple):
    """A relaxation: ``leaf_fn(logits, key, temperature) -> weights`` applied to every architecture leaf.

    Attributes:
      leaf_fn: the function for one ``(..., ops)`` array; ``key`` is ``None`` for a deterministic relaxation.
      hard: forward values are one-hot; the supernet is called with ``hard=True`` (only the chosen op is computed).
      stochastic: the relaxation needs a PRNG key.
      differentiable: the architecture parameters receive a gradient through the weights (False for SPOS).
      name: for messages.
      passthrough: top-level keys of the architecture dict handed to the supernet as they are (parameters the
        supernet relaxes itself, e.g. PC-DARTS's edge-normalization logits ``normal_edges``); see
        :func:`with_passthrough`.
      initial: ``leaf -> leaf`` applied to the space's initial parameters (:meth:`initial_arch`), for a relaxation
        that wants other starting values than the spaces' small normal draw (DARTS-PRIME's clipped weights start
        at ``1/ops``); None: unchanged.
      project: ``(old leaf, updated leaf) -> leaf`` applied after every architecture update (:meth:`project_arch`,
        the search step calls it), e.g. a projection onto the relaxation's domain; None: unchanged.
      normalized: the weights of an edge's ops sum to one, so derivations may rank edges by the softmax of the
        parameters (the spaces' default); False: derive from the parameters themselves (``scores="values"``).
    """

    leaf_fn: LeafFn
    hard: bool = False
    stochastic: bool = False
    differentiable: bool = True
    name: str = "custom"
    passthrough: tuple[str, ...] = ()
    initial: Callable[[jax.Array], jax.Array] | None = None
    project: Callable[[jax.Array, jax.Array], jax.Array] | None = None
    normalized: bool = True

    def _map_relaxed(self, fn, *trees):
        """``fn`` over the leaves of the relaxed entries (the passthrough keys are kept as they are)."""
        first = trees[0]
        if self.passthrough and isinstance(first, dict):
            return {k: (v if k in self.passthrough else jax.tree_util.tree_map(fn, *(t[k] for t in trees)))
                    for k, v in first.items()}
        return jax.tree_util.tree_map(fn, *trees)

    def initial_arch(self, arch):
        """The parameters a search starts from, given the space's ``init_arch`` draw."""
        return arch if self.initial is None else self._map_relaxed(self.initial, arch)

    def project_arch(self, old, new):
        """The parameters after an update from ``old`` to ``new`` (see ``project``)."""
        return new if self.project is None else self._map_relaxed(self.project, old, new)

    def __call__(self, arch, key: jax.Array | None = None, temperature: Any = 1.0):
        if self.passthrough and isinstance(arch, dict):
            kept = {k: arch[k] for k in self.passthrough if k in arch}
            relaxed = self._replace(passthrough=())({k: v for k, v in arch.items() if k not in kept}, key, temperature)
            return {k: kept[k] if k in kept else relaxed[k] for k in arch}
        validate_arch(arch)
        leaves, treedef = jax.tree_util.tree_flatten(arch)
        if self.stochastic:
            if key is None:
                raise ValueError(f"relaxation {self.name!r} samples: give it a PRNG key")
            keys = list(jax.random.split(key, len(leaves)))
        else:
            keys = [None] * len(leaves)
        out = [self.leaf_fn(leaf, k, temperature) for leaf, k in zip(leaves, keys)]
        return jax.tree_util.tree_unflatten(treedef, out)


def straight_through(hard: jax.Array, soft: jax.Array) -> jax.Array:
    """Forward value ``hard``, gradient of ``soft``. Zeros of ``hard`` stay exactly zero in the forward value."""
    return hard + (soft - jax.lax.stop_gradient(soft))


def _gumbel(key, like):
    return jax.random.gumbel(key, like.shape, like.dtype)


def softmax_leaf(logits, key, temperature):
    del key
    return jax.nn.softmax(logits / temperature, axis=-1)


def gumbel_leaf(logits, key, temperature):
    return jax.nn.softmax((jax.nn.log_softmax(logits, axis=-1) + _gumbel(key, logits)) / temperature, axis=-1)


def hard_gumbel_leaf(logits, key, temperature):
    soft = gumbel_leaf(logits, key, temperature)
    one_hot = jax.nn.one_hot(jnp.argmax(soft, axis=-1), logits.shape[-1], dtype=logits.dtype)
    return straight_through(one_hot, soft)


def sigmoid_leaf(logits, key, temperature):
    del key
    return jax.nn.sigmoid(logits / temperature)


def uniform_leaf(logits, key, temperature):
    del temperature
    idx = jax.random.randint(key, logits.shape[:-1], 0, logits.shape[-1])
    return jax.lax.stop_gradient(jax.nn.one_hot(idx, logits.shape[-1], dtype=logits.dtype))


def dirichlet_concentration(logits):
    """DrNAS's concentration of the Dirichlet over an edge's ops: ``elu(a) + 1`` (positive, 1 at a = 0)."""
    return jax.nn.elu(logits) + 1.0


def dirichlet_leaf(logits, key, temperature):
    """DrNAS: a sample of ``Dir(elu(a) + 1)`` per edge, differentiable in ``a`` by the pathwise (implicit
    reparameterisation) gradient of the gamma samples it is made of. ``temperature`` is unused, as in DrNAS.

    Pruned ops (parameter at or below ``PRUNED / 2``, as DrNAS's progressive mask) get weight 0 and the others a
    sample of the Dirichlet over them alone (a Dirichlet's renormalised sub-vector is the Dirichlet of its
    concentrations, so sampling all and renormalising the kept ones is exact)."""
    del temperature
    pruned = is_pruned(logits)
    concentration = jnp.where(pruned, 1.0, dirichlet_concentration(logits))
    sample = jnp.where(pruned, 0.0, jax.random.dirichlet(key, concentration))
    # rows without a pruned op keep the plain sample bit for bit
    sample = jnp.where(pruned.any(-1, keepdims=True), sample / sample.sum(-1, keepdims=True), sample)
    return sample.astype(logits.dtype)


def clipped_leaf(logits, key, temperature):
    """DARTS-PRIME's clipped activation (CRB): every op's weight is its parameter clipped to [0, 1], independently
    of the edge's other ops, so an op's weight means the same on every edge and the derivation compares edges by
    it. ``temperature`` is unused."""
    del key, temperature
    return jnp.clip(logits, 0.0, 1.0)


def clipped_initial(leaf):
    """DARTS-PRIME's start: ``1/ops`` plus a tenth of the spaces' ``1e-3`` normal draw (the authors' ``1/ops +
    1e-4 N(0, 1)``)."""
    return 1.0 / leaf.shape[-1] + 0.1 * leaf


def clipped_project(old, new):
    """Keep the parameters in [0, 1]; a parameter that is 0 (pruned: it reached 0) stays 0, as DARTS-PRIME's mask
    does. Pure in ``(old, new)``: the pruned set is read off the values, no mask is stored."""
    return jnp.where(old > 0.0, jnp.clip(new, 0.0, 1.0), 0.0)


def argmax_leaf(logits, key, temperature):
    del key
    soft = jax.nn.softmax(logits / temperature, axis=-1)
    one_hot = jax.nn.one_hot(jnp.argmax(logits, axis=-1), logits.shape[-1], dtype=logits.dtype)
    return straight_through(one_hot, soft)


def sparsemax(z, axis: int = -1):
    """Sparsemax (Martins & Astudillo, ICML 2016): the Euclidean projection of ``z`` onto the probability simplex.
    The result sums to one along ``axis`` and is exactly 0 wherever ``z`` is far enough below the largest values;
    it is differentiable almost everywhere (a linear map on the support). Entries at ``-inf`` get 0."""
    z = jnp.moveaxis(jnp.asarray(z), axis, -1)
    finite = jnp.isfinite(z)
    zf = jnp.where(finite, z, jnp.finfo(z.dtype).min / 4)
    srt = -jnp.sort(-zf, axis=-1)
    k = jnp.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    cums = jnp.cumsum(srt, axis=-1)
    support = (1.0 + k * srt) > cums
    k_z = jnp.sum(support, axis=-1, keepdims=True)
    tau = (jnp.take_along_axis(cums, k_z.astype(jnp.int32) - 1, axis=-1) - 1.0) / k_z.astype(z.dtype)
    out = jnp.where(finite, jnp.maximum(zf - tau, 0.0), 0.0)
    return jnp.moveaxis(out, -1, axis)


def node_sparsemax(logits, counts: tuple[int, ...], allowed=None, temperature: Any = 1.0):
    """EnTranNAS-DST's weights for one cell: ``logits`` has one row per edge, edges grouped by node (``counts[m]``
    rows for node m); every node's ``(edges, ops)`` block is flattened and sparsemax-ed at once, so the node keeps
    any number (at least one) of (input, op) connections with non-zero weight and the others get exactly 0.
    ``allowed``: a boolean mask over the ops (False: never kept, e.g. ``none``)."""
    logits = jnp.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] != sum(counts):
        raise ValueError(f"node_sparsemax: logits of shape {tuple(logits.shape)} do not hold the {sum(counts)} edges "
                         f"of nodes with {list(counts)} inputs")
    mask = jnp.ones(logits.shape[-1], bool) if allowed is None else jnp.asarray(allowed, bool)
    z = jnp.where(mask, logits / temperature, -jnp.inf)
    blocks, start = [], 0
    for n in counts:
        block = z[start : start + n]
        blocks.append(sparsemax(block.reshape(-1)).reshape(block.shape))
        start += n
    return jnp.concatenate(blocks, axis=0).astype(logits.dtype)


def dst(counts: tuple[int, ...], allowed=None) -> Relaxation:
    """The EnTranNAS-DST relaxation of a DARTS-like space: :func:`node_sparsemax` on every cell leaf (``(edges,
    ops)`` with ``sum(counts)`` rows); other leaves get a plain softmax."""
    counts = tuple(int(n) for n in counts)

    def leaf_fn(logits, key, temperature):
        del key
        if logits.ndim == 2 and logits.shape[0] == sum(counts):
            return node_sparsemax(logits, counts, allowed, temperature)
        return softmax_leaf(logits, None, temperature)

    return Relaxation(leaf_fn, name="dst")


softmax = Relaxation(softmax_leaf, name="softmax")
gumbel = Relaxation(gumbel_leaf, stochastic=True, name="gumbel")
hard_gumbel = Relaxation(hard_gumbel_leaf, hard=True, stochastic=True, name="hard_gumbel")
sigmoid = Relaxation(sigmoid_leaf, name="sigmoid")
uniform = Relaxation(uniform_leaf, hard=True, stochastic=True, differentiable=False, name="uniform")
argmax = Relaxation(argmax_leaf, hard=True, name="argmax")
dirichlet = Relaxation(dirichlet_leaf, stochastic=True, name="dirichlet")
clipped = Relaxation(clipped_leaf, name="clipped", initial=clipped_initial, project=clipped_project, normalized=False)

RELAXATIONS: dict[str, Relaxation] = {
    r.name: r for r in (softmax, gumbel, hard_gumbel, sigmoid, uniform, argmax, dirichlet, clipped)
}
ALIASES: dict[str, str] = {
    "darts": "softmax",
    "snas": "gumbel",
    "gdas": "hard_gumbel",
    "asap": "sigmoid",
    "spos": "uniform",
    "drnas": "dirichlet",
    "crb": "clipped",
}


def with_passthrough(relaxation: str | Relaxation, keys: tuple[str, ...]) -> Relaxation:
    """``relaxation`` applied to every top-level architecture entry but ``keys``, which reach the supernet as they
    are (PC-DARTS's edge-normalization logits: the supernet takes their per-node softmax itself)."""
    relaxation = get_relaxation(relaxation)
    return relaxation._replace(passthrough=tuple(keys)) if keys else relaxation


def get_relaxation(relaxation: str | Relaxation) -> Relaxation:
    """A relaxation by name (or alias), or the given :class:`Relaxation` itself."""
    if isinstance(relaxation, Relaxation):
        return relaxation
    if isinstance(relaxation, str):
        name = ALIASES.get(relaxation, relaxation)
        if name in RELAXATIONS:
            return RELAXATIONS[name]
    allowed = sorted(RELAXATIONS) + sorted(f"{a} (={n})" for a, n in ALIASES.items())
    raise ValueError(f"unknown relaxation {relaxation!r}; allowed: {', '.join(allowed)}")


def register_relaxation(relaxation: Relaxation, name: str | None = None) -> Relaxation:
    """Add a relaxation to :data:`RELAXATIONS` (under ``name`` or its own name); refuses to overwrite one."""
    name = name or relaxation.name
    if name in RELAXATIONS or name in ALIASES:
        raise ValueError(f"relaxation name {name!r} is taken; taken: {', '.join(sorted({*RELAXATIONS, *ALIASES}))}")
    RELAXATIONS[name] = relaxation._replace(name=name)
    return RELAXATIONS[name]


# ----------------------------------------------------------------------------------------------------------------
# temperature schedules: step -> temperature (jnp, so they trace)


def _lerp(start, end, frac):
    """``start`` at 0 and exactly ``end`` at 1."""
    return jnp.float32(start) * (1.0 - frac) + jnp.float32(end) * frac


def constant(value: float) -> Schedule:
    """The same temperature at every step."""

    def schedule(step):
        return jnp.full((), value, jnp.float32)

    return schedule


def linear(start: float, end: float, steps: int) -> Schedule:
    """From ``start`` at step 0 to ``end`` at step ``steps`` (and after), linearly."""
    steps = max(int(steps), 1)

    def schedule(step):
        frac = jnp.clip(jnp.asarray(step, jnp.float32) / steps, 0.0, 1.0)
        return _lerp(start, end, frac)

    return schedule


def exponential(start: float, rate: float, end: float | None = None, steps_per_unit: int = 1) -> Schedule:
    """``start * exp(-rate * step / steps_per_unit)``, never below ``end`` (when given)."""
    steps_per_unit = max(int(steps_per_unit), 1)

    def schedule(step):
        t = jnp.float32(start) * jnp.exp(-jnp.float32(rate) * (jnp.asarray(step, jnp.float32) / steps_per_unit))
        return t if end is None else jnp.maximum(t, jnp.float32(end))

    return schedule


def gdas_temperature(epochs: int, steps_per_epoch: int, start: float = 10.0, end: float = 0.1) -> Schedule:
    """GDAS: tau linear from ``start`` (first epoch) to ``end`` (last epoch), constant within an epoch."""
    steps_per_epoch = max(int(steps_per_epoch), 1)
    span = max(int(epochs) - 1, 1)

    def schedule(step):
        epoch = jnp.minimum(jnp.asarray(step, jnp.int32) // steps_per_epoch, span).astype(jnp.float32)
        return _lerp(start, end, epoch / span)

    return schedule


def asap_temperature(steps_per_epoch: int, start: float = 1.3, rate: float = 0.1, end: float = 0.03) -> Schedule:
    """ASAP-style annealing: ``start * exp(-rate * epoch)`` (epoch fractional), floored at ``end``."""
    return exponential(start, rate, end, steps_per_unit=steps_per_epoch)


def as_schedule(value: float | Schedule) -> Schedule:
    """A number becomes a constant schedule; a callable is returned as is."""
    return value if callable(value) else constant(float(value))


__all__ = [
    "ALIASES",
    "PRUNED",
    "RELAXATIONS",
    "is_pruned",
    "Relaxation",
    "argmax",
    "as_schedule",
    "asap_temperature",
    "check_same_tree",
    "clipped",
    "constant",
    "dirichlet",
    "dirichlet_concentration",
    "dst",
    "node_sparsemax",
    "sparsemax",
    "exponential",
    "gdas_temperature",
    "get_relaxation",
    "gumbel",
    "hard_gumbel",
    "linear",
    "register_relaxation",
    "sigmoid",
    "softmax",
    "straight_through",
    "uniform",
    "validate_arch",
    "with_passthrough",
]
