"""Discrete networks built from a genotype: only the chosen ops exist, with affine BN as in the published code.

* :class:`NB201Network`: the NAS-Bench-201 evaluation network (C=16, N=5), whose parameter counts and FLOPs match the
  benchmark's table for all 15,625 cells.
* :class:`NetworkCIFAR`: the DARTS evaluation network (C=36, 20 cells for CIFAR-10) with auxiliary head and
  drop-path; DARTS_V2 has exactly 3,349,342 parameters without the auxiliary head.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnas.spaces.genotypes import DartsGenotype, NB201Genotype
from jaxnas.nn import grow
from jaxnas.nn.ops import BatchNorm, Conv, FactorizedReduce, Identity, ReLUConvBN, avg_pool, make_op, torch_default_init
from jaxnas.nn.supernet import NB201Macro, check_image_batch


class NB201Cell(nn.Module):
    """A discrete NB201 cell: node j sums op(node_i) over its non-``none`` incoming edges."""

    C: int
    ops: tuple[str, ...]
    impl: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        nodes, e = [x], 0
        for j in range(1, 4):
            total = None
            for i in range(j):
                name = self.ops[e]
                e += 1
                if name == "none":
                    continue
                y = make_op(name, self.C, 1, True, self.impl)(nodes[i], train)
                total = y if total is None else total + y
            nodes.append(jnp.zeros_like(x) if total is None else total)
        return nodes[-1]


class NB201Network(NB201Macro):
    """The NB201 network for one genotype (C=16, N=5 cells per stage, 3 stages)."""

    genotype: NB201Genotype = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        if not isinstance(self.genotype, NB201Genotype):
            raise ValueError(f"NB201Network needs an NB201Genotype, got {type(self.genotype).__name__}")

        def run_cell(C, index, h):
            return NB201Cell(C, tuple(self.genotype.ops), self.impl, name=f"cell_{index}")(h, train)

        return self.body(x, train, run_cell)


def _is_zero(value) -> bool:
    """True only for a concrete 0 (a traced drop probability may change between calls without recompiling)."""
    return isinstance(value, (int, float)) and value == 0.0


def drop_path(module: nn.Module, x, drop_prob):
    """Zero whole samples with probability ``drop_prob`` and rescale the rest (needs the 'dropout' rng)."""
    keep = 1.0 - drop_prob
    mask = jax.random.bernoulli(module.make_rng("dropout"), keep, (x.shape[0], 1, 1, 1))
    return jnp.where(mask, x / keep, 0.0)


class DartsCell(nn.Module):
    """A discrete DARTS cell (normal or reduction) from a genotype: ``genes`` are (op, input) pairs, ``fan_in[m]`` of
    them feeding node m + 2 (None: two per node, the DARTS layout).

    ``gene_scales`` (call argument, one factor per gene, or None): node = sum of factor * op(input), the derived cell
    run with the connection strengths of the search (EnTranNAS-DST's Engine-cells compute exactly this)."""

    C: int
    genes: tuple[tuple[str, int], ...]
    concat: tuple[int, ...]
    reduction: bool
    reduction_prev: bool
    impl: str | None = None
    fan_in: tuple[int, ...] | None = None

    @nn.compact
    def __call__(self, s0, s1, train: bool = True, drop_prob: float = 0.0, gene_scales=None):
        if self.reduction_prev:
            s0 = FactorizedReduce(self.C, impl=self.impl)(s0, train)
        else:
            s0 = ReLUConvBN(self.C, 1, 1, 0, 1, impl=self.impl)(s0, train)
        s1 = ReLUConvBN(self.C, 1, 1, 0, 1, impl=self.impl)(s1, train)
        states = [s0, s1]
        fan_in = self.fan_in or (2,) * (len(self.genes) // 2)
        g = 0
        for count in fan_in:
            total = 0.0
            for name, inp in self.genes[g : g + count]:
                stride = 2 if self.reduction and inp < 2 else 1
                op = make_op(name, self.C, stride, True, self.impl)
                h = op(states[inp], train)
                if train and not _is_zero(drop_prob) and not isinstance(op, Identity):
                    h = drop_path(self, h, drop_prob)
                total = total + (h if gene_scales is None else gene_scales[g] * h)
                g += 1
            states.append(total)
        return jnp.concatenate([states[i] for i in self.concat], axis=-1)


class AuxiliaryHeadCIFAR(nn.Module):
    """DARTS's auxiliary classifier on the 8x8 feature map after the second reduction."""

    num_classes: int
    impl: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        if x.shape[1] < 5 or x.shape[2] < 5:
            raise ValueError(f"the auxiliary head needs a feature map of at least 5x5, got {x.shape[1]}x{x.shape[2]} "
                             "(use 32x32 inputs)")
        x = nn.relu(x)
        x = avg_pool(x, kernel=5, stride=3, padding=0, impl=self.impl)
        x = Conv(128, 1, impl=self.impl)(x)
        x = nn.relu(BatchNorm(True)(x, use_running_average=not train))
        x = Conv(768, 2, impl=self.impl)(x)
        x = nn.relu(BatchNorm(True)(x, use_running_average=not train))
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.num_classes, kernel_init=torch_default_init)(x)


class NetworkCIFAR(nn.Module):
    """The DARTS CIFAR evaluation network. Returns ``(logits, aux_logits)``; ``aux_logits`` is None unless
    ``auxiliary`` and ``train``. Drop-path needs ``rngs={'dropout': key}`` when ``train`` and ``drop_prob > 0``."""

    genotype: DartsGenotype
    C: int = 36
    layers: int = 20
    num_classes: int = 10
    auxiliary: bool = False
    stem_multiplier: int = 3
    impl: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True, drop_prob: float = 0.0, cell_scales=None):
        """``cell_scales``: ``{cell index: one factor per gene}`` for the cells to run with connection strengths
        (:class:`DartsCell`'s ``gene_scales``), or None."""
        if not isinstance(self.genotype, DartsGenotype):
            raise ValueError(f"NetworkCIFAR needs a DartsGenotype, got {type(self.genotype).__name__}")
        check_image_batch(x, "NetworkCIFAR", min_size=4)
        s = Conv(self.stem_multiplier * self.C, 3, padding=1, impl=self.impl, name="stem_conv")(x)
        s = BatchNorm(True, name="stem_bn")(s, use_running_average=not train)
        s0 = s1 = s
        C_curr, reduction_prev, aux = self.C, False, None
        for i in range(self.layers):
            reduction = i in (self.layers // 3, 2 * self.layers // 3)
            if reduction:
                C_curr *= 2
            kind = "reduce" if reduction else "normal"
            genes, concat = getattr(self.genotype, kind), getattr(self.genotype, f"{kind}_concat")
            cell = DartsCell(C_curr, tuple(genes), tuple(concat), reduction, reduction_prev, self.impl,
                             self.genotype.fan_in(kind), name=f"cell_{i}")
            scales = None if cell_scales is None else cell_scales.get(i)
            s0, s1 = s1, cell(s0, s1, train, drop_prob, scales)
            reduction_prev = reduction
            if i == 2 * self.layers // 3 and self.auxiliary:
                head = AuxiliaryHeadCIFAR(self.num_classes, self.impl, name="auxiliary_head")
                # the head is always built (so its parameters exist); its output is only used while training
                aux = head(s1, train)
        logits = nn.Dense(self.num_classes, kernel_init=torch_default_init, name="classifier")(s1.mean(axis=(1, 2)))
        return logits, (aux if train else None)


def init_variables(model: nn.Module, rngs, *args, **kwargs):
    """``model.init`` under ``jax.jit``: one compiled program instead of one small compile per initializer, which
    makes initialising a network several times faster on CPU. Keyword arguments are static (e.g. ``train=False``)."""
    import functools

    return jax.jit(functools.partial(model.init, **kwargs))(rngs, *args)


class GrownNetwork(nn.Module):
    """A derived growable spec (:mod:`jaxnas.nn.grow`) as a plain network ``(x, train) -> logits``: every edge's
    single op at weight 1."""

    spec: Any
    impl: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        return grow.GrowConvNet(self.spec, self.impl, name="net")(x, grow.derived_weights(self.spec), train)
