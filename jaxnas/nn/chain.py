"""A network's gradient as a chain of small programs, one per piece (stem, each cell, head), chained in Python.

XLA:CPU's compile time grows faster than linearly with a program's size, and the gradient of a supernet is one
large program. :class:`ChainedVJP` computes the same forward pass and VJP as ``jax.vjp`` of the whole network, from
one jitted forward program per piece (which also returns the piece's VJP closure, a pytree of residuals) and one
jitted backward program per piece. Pieces with the same function and shapes share their programs. The residuals
are program outputs, kept in memory until the backward pass: fewer than a whole-network program would keep is not
to be expected (docs/cpu-performance.md has the trade-off as measured). A network says how it splits into a
:class:`Chain` (``DartsSearchNetwork.chain``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Piece:
    """One program of a chain.

    ``fn(variables, *inputs, weights) -> (output, new batch_stats of its variables)``, applied to the variables
    named ``names`` (top-level names of the network's ``params`` and ``batch_stats``). ``inputs``: indices into the
    chain's states (0 is the network's input, k the output of piece k-1); the network's input gets no gradient.
    """

    names: tuple[str, ...]
    fn: Callable[..., tuple[Any, Any]]
    inputs: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Chain:
    """The pieces of a network, in order; the last piece's output is the network's output."""

    pieces: tuple[Piece, ...]


def _sub(tree, names):
    return {n: tree[n] for n in names if n in tree}


def _forward(fn, constant, params, batch_stats, inputs, weights):
    """``(output, vjp, new batch_stats)``; ``vjp(ct) -> (g params, g non-constant inputs, g weights)``."""

    def f(p, moving, w):
        it = iter(moving)
        args = [x if c else next(it) for x, c in zip(inputs, constant)]
        variables = {"params": p, "batch_stats": batch_stats} if batch_stats else {"params": p}
        return fn(variables, *args, w)

    moving = [x for x, c in zip(inputs, constant) if not c]
    out, vjp, new_bs = jax.vjp(f, params, moving, weights, has_aux=True)
    return out, vjp, new_bs


def _backward(vjp, ct):
    return vjp(ct)


def _backward_no_params(vjp, ct):
    return vjp(ct)[1:]


class ChainedVJP:
    """The jitted programs of a :class:`Chain`; call :meth:`forward`, then the backward function it returns."""

    def __init__(self, chain: Chain, compiler_options: dict | None = None):
        jit = functools.partial(jax.jit, compiler_options=compiler_options)
        self.chain = chain
        shared = {}  # one jitted forward per (function, which inputs are the network's input)
        self._forwards = []
        for piece in chain.pieces:
            key = (piece.fn, tuple(i == 0 for i in piece.inputs))
            if key not in shared:
                shared[key] = jit(functools.partial(_forward, piece.fn, key[1]))
            self._forwards.append(shared[key])
        self._backward = jit(_backward)
        self._backward_no_params = jit(_backward_no_params)

    def forward(self, params, batch_stats, x, weights):
        """``(output, new batch_stats, backward)``; ``backward(ct, params=True) -> (g params or None, g weights)``."""
        states, vjps, new_bs = [x], [], {}
        for piece, fwd in zip(self.chain.pieces, self._forwards):
            out, vjp, bs = fwd(_sub(params, piece.names), _sub(batch_stats, piece.names),
                               [states[i] for i in piece.inputs], weights)
            states.append(out)
            vjps.append(vjp)
            new_bs.update(bs)

        def backward(ct, params=True):
            cts = [None] * len(states)
            cts[-1] = ct
            g_params, g_weights = {}, None
            for k in reversed(range(len(self.chain.pieces))):
                piece, ct_k = self.chain.pieces[k], cts[k + 1]
                if params:
                    g_p, g_in, g_w = self._backward(vjps[k], ct_k)
                    g_params.update(g_p)
                else:
                    g_in, g_w = self._backward_no_params(vjps[k], ct_k)
                g_weights = g_w if g_weights is None else _add(g_weights, g_w)
                for i, g in zip([i for i in piece.inputs if i != 0], g_in):
                    cts[i] = g if cts[i] is None else cts[i] + g
            return (g_params if params else None), g_weights

        return states[-1], new_bs, backward


@jax.jit
def _add(a, b):
    return jax.tree_util.tree_map(jnp.add, a, b)


__all__ = ["Chain", "ChainedVJP", "Piece"]
