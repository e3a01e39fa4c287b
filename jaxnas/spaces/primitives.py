"""Primitive names: the candidate ops of each space's edges. Names only: the ops themselves are flax modules in
:mod:`jaxnas.nn.ops` (CNN) and :mod:`jaxnas.nn.recurrent` (recurrent activations), keyed by these names."""

from __future__ import annotations

DARTS_PRIMITIVES: tuple[str, ...] = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
NB201_PRIMITIVES: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
RNN_ACTIVATION_NAMES: tuple[str, ...] = ("tanh", "relu", "sigmoid", "identity")
RNN_PRIMITIVES: tuple[str, ...] = ("none", *RNN_ACTIVATION_NAMES)


def rnn_edges(steps: int) -> tuple[tuple[int, int], ...]:
    """``(src, dst)`` for every edge of the recurrent search cell, node by node: (0, 1), (0, 2), (1, 2), (0, 3), ..."""
    return tuple((j, i) for i in range(1, steps + 1) for j in range(i))


__all__ = ["DARTS_PRIMITIVES", "NB201_PRIMITIVES", "RNN_ACTIVATION_NAMES", "RNN_PRIMITIVES", "rnn_edges"]
