"""Recurrent cells: the DARTS recurrent search cell, cells derived from a recurrent genotype, LSTM and GRU baselines.

Every cell follows one protocol, so a language model or a time-series model can swap them freely::

    cell = SomeCell(hidden=H, ...)                      # a flax linen Module
    carry = cell.initial_carry(batch_size)              # float32 zeros; uses no params, works on an unbound module
    carry, h = cell(carry, x_t, weights, train=True, hard=False)

``x_t`` is one time step ``(B, D_in)``, ``h`` the cell output ``(B, H)``. ``weights`` are the edge weights of a search
cell (``{'rnn': (num_edges, num_ops)}``, already relaxed) and are ignored by fixed cells (pass ``None``). The DARTS
cells carry the hidden array ``(B, H)``; :class:`LSTMCell` carries ``(c, h)``. To run a sequence, scan the cell over
time (``jax.lax.scan`` over ``model.apply`` or ``nn.scan``).

The DARTS recurrent cell (Liu et al., 2019), for hidden size H, with ``highway(s, c, g, f) = s + sigmoid(c) * (f(g) -
s)``:

* node 0: ``(c0, g0) = split(W0 [x_t; h_{t-1}])``, ``s0 = highway(h_{t-1}, c0, g0, tanh)``;
* node i (1..steps) from a predecessor ``s_j``: ``(c, g) = split(W_i s_j)``, ``s_i = highway(s_j, c, g, f)`` with
  an activation ``f`` in ``tanh, relu, sigmoid, identity``;
* output ``h_t`` = mean of the nodes in ``concat`` (nodes 1..steps for the search cell and the published cells).

``W0`` is ``(D_in + H) x 2H`` and every ``W_i`` is ``H x 2H``, without biases, as in DARTS. In the search cell node i
mixes every predecessor j < i and every op with the edge weights, reusing its one ``W_i`` for all predecessors.
DARTS's variational dropout on ``x_t`` and ``h`` and the search cell's parameter-free batch norm of every node are not
part of these cells: the protocol has no dropout key and no batch statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnas.spaces.genotypes import RnnGenotype, get_rnn_genotype
from jaxnas.spaces.rnn import DartsRnnSpace
from jaxnas.spaces.primitives import RNN_ACTIVATION_NAMES, RNN_PRIMITIVES, rnn_edges

def identity(x):
    return x


RNN_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "identity": identity,
}
assert tuple(RNN_ACTIVATIONS) == RNN_ACTIVATION_NAMES  # the space's names, in its order


def highway(s: jax.Array, c: jax.Array, g: jax.Array, act: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """The DARTS highway step ``s + sigmoid(c) * (act(g) - s)``: a gated move from ``s`` towards ``act(g)``."""
    return s + jax.nn.sigmoid(c) * (act(g) - s)


def uniform_init(init_range: float):
    """Uniform in ``[-init_range, init_range]`` (DARTS initializes its recurrent matrices with 0.04)."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -init_range, init_range)

    return init


# ----------------------------------------------------------------------------------------------------------------
# checks


def check_step_inputs(carry_h: jax.Array, x: jax.Array, hidden: int, where: str) -> None:
    """ValueError unless ``x`` is ``(B, D)`` and the hidden carry is ``(B, hidden)``."""
    if getattr(x, "ndim", None) != 2:
        raise ValueError(f"{where}: x_t must be one time step of shape (batch, features), got {_shape(x)}")
    if getattr(carry_h, "shape", None) is None or tuple(carry_h.shape) != (x.shape[0], hidden):
        raise ValueError(
            f"{where}: the hidden carry must have shape ({x.shape[0]}, {hidden}) for x_t of shape {tuple(x.shape)}, "
            f"got {_shape(carry_h)} (use cell.initial_carry(batch_size))"
        )


def check_rnn_weights(weights, num_edges: int, num_ops: int, where: str) -> jax.Array:
    """The ``(num_edges, num_ops)`` array of ``{'rnn': ...}``; a ValueError names what is wrong otherwise."""
    expected = f"{{'rnn': array of shape ({num_edges}, {num_ops})}}"
    if not isinstance(weights, Mapping):
        raise ValueError(f"{where}: edge weights must be {expected}, got {type(weights).__name__}")
    if set(weights) != {"rnn"}:
        raise ValueError(f"{where}: edge weights must be {expected}, got keys {sorted(map(str, weights))}")
    w = weights["rnn"]
    if getattr(w, "shape", None) is None:
        raise ValueError(f"{where}: edge weights['rnn'] must be an array of shape ({num_edges}, {num_ops}), "
                         f"got {type(w).__name__}")
    if tuple(w.shape) != (num_edges, num_ops):
        raise ValueError(f"{where}: edge weights['rnn'] must have shape ({num_edges}, {num_ops}) (edges, ops), "
                         f"got {tuple(w.shape)}")
    return jnp.asarray(w)


def _shape(x) -> str:
    shape = getattr(x, "shape", None)
    return str(tuple(shape)) if shape is not None else type(x).__name__


def _check_primitives(primitives: Sequence[str], where: str) -> None:
    unknown = [p for p in primitives if p != "none" and p not in RNN_ACTIVATIONS]
    if unknown or not primitives:
        raise ValueError(f"{where}: unknown recurrent op(s) {unknown}; allowed: none, {', '.join(RNN_ACTIVATIONS)}")


# ----------------------------------------------------------------------------------------------------------------
# DARTS cells


def _node_zero(hidden: int, init_range: float, h_prev: jax.Array, x: jax.Array) -> jax.Array:
    """``s0 = highway(h_prev, c0, g0, tanh)`` with ``(c0, g0) = split(W0 [x; h_prev])`` (call inside a compact)."""
    xh = jnp.concatenate([x, h_prev.astype(x.dtype)], axis=-1)
    c0, g0 = jnp.split(nn.Dense(2 * hidden, use_bias=False, kernel_init=uniform_init(init_range), name="init")(xh),
                       2, axis=-1)
    return highway(h_prev, c0, g0, jnp.tanh)


def _node_dense(hidden: int, init_range: float, i: int) -> nn.Dense:
    """``W_i``: the ``H -> 2H`` matrix of node i, named ``node_{i}`` in both the search and the derived cell."""
    return nn.Dense(2 * hidden, use_bias=False, kernel_init=uniform_init(init_range), name=f"node_{i}")


def mix_soft(prev: jax.Array, c: jax.Array, g: jax.Array, w: jax.Array, primitives: Sequence[str]) -> jax.Array:
    """One search-cell node from all its predecessors: ``sum_j sum_k w[j, k] * highway(s_j, c_j, g_j, f_k)``.

    ``prev``, ``c``, ``g``: ``(n_pred, B, H)``; ``w``: ``(n_pred, num_ops)``. The op ``none`` contributes zero.
    """
    gate = jax.nn.sigmoid(c)
    out = jnp.zeros(prev.shape[1:], jnp.result_type(prev, w))
    for k, p in enumerate(primitives):
        if p == "none":
            continue
        unweighted = prev + gate * (RNN_ACTIVATIONS[p](g) - prev)
        out = out + jnp.tensordot(w[:, k], unweighted, axes=1)
    return out


def mix_hard(prev: jax.Array, c: jax.Array, g: jax.Array, w: jax.Array, primitives: Sequence[str]) -> jax.Array:
    """As :func:`mix_soft` for one-hot weight rows: each edge computes only its chosen op (``lax.switch``) and scales
    it by the chosen weight, so a straight-through weight still receives its gradient."""

    def branch(p):
        if p == "none":
            return lambda s, c, g: jnp.zeros_like(s)
        return lambda s, c, g: highway(s, c, g, RNN_ACTIVATIONS[p])

    branches = [branch(p) for p in primitives]
    out = 0.0
    for j in range(prev.shape[0]):
        index = jnp.argmax(w[j])
        out = out + jax.lax.switch(index, branches, prev[j], c[j], g[j]) * w[j, index]
    return out


class DartsRnnSearchCell(nn.Module):
    """The DARTS recurrent search cell: node i (1..steps) mixes every op on every edge from a predecessor j < i.

    ``node_i = sum_{j<i} sum_k w[e(j, i), k] * highway(s_j, c_ij, g_ij, f_k)``, ``(c_ij, g_ij) = split(W_i s_j)``,
    and ``h_t = mean(node_1 .. node_steps)``; see the module docstring for node 0. Edges are ordered node by node
    (:func:`rnn_edges`): ``steps (steps + 1) / 2`` of them, 36 for 8 steps. ``weights = {'rnn': (num_edges,
    len(primitives))}``; with ``hard=True`` every row must be one-hot (straight-through allowed) and only its chosen op
    is computed. The carry is the hidden array ``(B, hidden)``.
    """

    hidden: int
    steps: int = 8
    primitives: Sequence[str] = RNN_PRIMITIVES
    init_range: float = 0.04

    @property
    def num_edges(self) -> int:
        return self.steps * (self.steps + 1) // 2

    def initial_carry(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.hidden), jnp.float32)

    @nn.compact
    def __call__(self, carry, x, weights, train: bool = True, hard: bool = False):
        del train  # no dropout or batch statistics
        where = type(self).__name__
        _check_primitives(self.primitives, where)
        w = check_rnn_weights(weights, self.num_edges, len(self.primitives), where)
        check_step_inputs(carry, x, self.hidden, where)
        mix = mix_hard if hard else mix_soft
        states = [_node_zero(self.hidden, self.init_range, carry, x)]
        e = 0
        for i in range(1, self.steps + 1):
            prev = jnp.stack(states)  # (i, B, H): every predecessor goes through the same W_i
            c, g = jnp.split(_node_dense(self.hidden, self.init_range, i)(prev), 2, axis=-1)
            states.append(mix(prev, c, g, w[e : e + i], tuple(self.primitives)))
            e += i
        h = jnp.mean(jnp.stack(states[1:]), axis=0)
        return h, h


class DartsRnnCell(nn.Module):
    """A recurrent cell derived from an :class:`~jaxnas.spaces.genotypes.RnnGenotype` (or a published name: ``DARTS_V2``).

    Entry i of ``genotype.recurrent``, ``(f, j)``, defines node i+1: ``s_{i+1} = highway(s_j, c, g, f)`` with
    ``(c, g) = split(W_{i+1} s_j)``; ``h_t`` is the mean of the nodes in ``genotype.concat``. Parameters: ``init``
    (``W0``) and ``node_1 .. node_steps``, named as in :class:`DartsRnnSearchCell`. ``weights`` is ignored.
    """

    hidden: int
    genotype: RnnGenotype | str
    init_range: float = 0.04

    def initial_carry(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.hidden), jnp.float32)

    def resolved_genotype(self) -> RnnGenotype:
        """The genotype (a published name looked up), checked by :class:`~jaxnas.spaces.rnn.DartsRnnSpace`."""
        g = get_rnn_genotype(self.genotype) if isinstance(self.genotype, str) else self.genotype
        if not isinstance(g, RnnGenotype):
            raise ValueError(f"DartsRnnCell: expected an RnnGenotype or a published name, got {type(g).__name__}")
        return DartsRnnSpace(steps=len(g.recurrent)).validate(g)

    @nn.compact
    def __call__(self, carry, x, weights=None, train: bool = True, hard: bool = False):
        del weights, train, hard  # a fixed cell
        g = self.resolved_genotype()
        check_step_inputs(carry, x, self.hidden, type(self).__name__)
        states = [_node_zero(self.hidden, self.init_range, carry, x)]
        for i, (act, pred) in enumerate(g.recurrent, start=1):
            s = states[pred]
            c, gg = jnp.split(_node_dense(self.hidden, self.init_range, i)(s), 2, axis=-1)
            states.append(highway(s, c, gg, RNN_ACTIVATIONS[act]))
        h = jnp.mean(jnp.stack([states[k] for k in g.concat]), axis=0)
        return h, h


# ----------------------------------------------------------------------------------------------------------------
# baselines


def _torch_rnn_init(hidden: int):
    """PyTorch's recurrent-layer initializer: uniform in ``[-1/sqrt(H), 1/sqrt(H)]`` for matrices and biases."""
    return uniform_init(1.0 / hidden**0.5)


class LSTMCell(nn.Module):
    """LSTM cell with PyTorch's equations, gate order and parameter count ``4 (D H + H H + 2 H)``.

    ``(i, f, g, o) = split(W_x x_t + b_x + W_h h + b_h)``; ``c' = sigmoid(f) c + sigmoid(i) tanh(g)``;
    ``h' = sigmoid(o) tanh(c')``. The carry is ``(c, h)``; ``weights`` is ignored.
    """

    hidden: int

    def initial_carry(self, batch_size: int) -> tuple[jax.Array, jax.Array]:
        zeros = jnp.zeros((batch_size, self.hidden), jnp.float32)
        return zeros, zeros

    @nn.compact
    def __call__(self, carry, x, weights=None, train: bool = True, hard: bool = False):
        del weights, train, hard
        where = type(self).__name__
        if not (isinstance(carry, (tuple, list)) and len(carry) == 2):
            raise ValueError(f"{where}: the carry must be a (c, h) pair (use cell.initial_carry(batch_size)), "
                             f"got {type(carry).__name__}")
        c, h = carry
        check_step_inputs(c, x, self.hidden, where)
        check_step_inputs(h, x, self.hidden, where)
        init = _torch_rnn_init(self.hidden)
        gates = (nn.Dense(4 * self.hidden, kernel_init=init, bias_init=init, name="input")(x)
                 + nn.Dense(4 * self.hidden, kernel_init=init, bias_init=init, name="hidden")(h))
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (c, h), h


class GRUCell(nn.Module):
    """GRU cell with PyTorch's equations and parameter count ``3 (D H + H H + 2 H)``.

    ``(r, z, n)`` parts of ``a = W_x x_t + b_x`` and ``b = W_h h + b_h``: ``r = sigmoid(a_r + b_r)``,
    ``z = sigmoid(a_z + b_z)``, ``n = tanh(a_n + r b_n)``, ``h' = (1 - z) n + z h``. The carry is ``h``;
    ``weights`` is ignored.
    """

    hidden: int

    def initial_carry(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.hidden), jnp.float32)

    @nn.compact
    def __call__(self, carry, x, weights=None, train: bool = True, hard: bool = False):
        del weights, train, hard
        check_step_inputs(carry, x, self.hidden, type(self).__name__)
        init = _torch_rnn_init(self.hidden)
        a_r, a_z, a_n = jnp.split(nn.Dense(3 * self.hidden, kernel_init=init, bias_init=init, name="input")(x), 3, -1)
        b_r, b_z, b_n = jnp.split(
            nn.Dense(3 * self.hidden, kernel_init=init, bias_init=init, name="hidden")(carry), 3, -1
        )
        r = jax.nn.sigmoid(a_r + b_r)
        z = jax.nn.sigmoid(a_z + b_z)
        n = jnp.tanh(a_n + r * b_n)
        h = (1.0 - z) * n + z * carry
        return h, h


__all__ = [
    "RNN_ACTIVATIONS",
    "DartsRnnCell",
    "DartsRnnSearchCell",
    "GRUCell",
    "LSTMCell",
    "check_rnn_weights",
    "highway",
    "mix_hard",
    "mix_soft",
]
