"""Sequence models around a recurrent cell: a forecaster and a word-level language model.

Both take any cell following the recurrent cell protocol (``jaxnas.nn.recurrent``)::

    carry = cell.initial_carry(batch_size)               # no parameters needed
    carry, h = cell(carry, x_t, weights, train=train, hard=hard)      # x_t (B, D), h (B, H)

and follow the supernet calling convention, so :func:`jaxnas.search.make_step` trains and searches them::

    out, updates = model.apply(variables, x, weights, train=True, hard=False, mutable=['batch_stats'])

with ``weights`` the cell's edge weights (``None`` for a fixed cell such as an LSTM). The cell runs under
``flax.linen.scan`` (parameters broadcast over time, batch statistics carried), so a window of 168 steps compiles
one step body, not 168 copies of it.
(``use_scan=False`` unrolls a python loop instead, far slower to compile: docs/cpu-performance.md.)
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def symmetric_uniform(scale: float):
    """Initializer drawing uniformly from ``[-scale, scale)``."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


def _step(cell, carry, x_t, weights, train, hard):
    return cell(carry, x_t, weights, train=train, hard=hard)


def run_cell(cell: nn.Module, carry, xs, weights=None, *, train: bool = True, hard: bool = False,
             unroll: int = 1, use_scan: bool = True):
    """Run a (bound) cell over time-major inputs ``xs`` ``(T, B, D)``: ``(final carry, hiddens (T, B, H))``.

    ``use_scan=False`` unrolls a python loop instead (compiles T copies of the step; for comparison).
    """
    if not use_scan:
        hs = []
        for t in range(xs.shape[0]):
            carry, h = _step(cell, carry, xs[t], weights, train, hard)
            hs.append(h)
        return carry, jnp.stack(hs)
    if cell.is_initializing():
        # create the parameters and batch statistics before the scan: a scan carries only variables that exist
        _step(cell, carry, xs[0], weights, train, hard)
    # batch statistics: carried through time when they are being updated, else read-only like the parameters
    updating = cell.is_mutable_collection("batch_stats")
    scan = nn.scan(
        _step,
        variable_broadcast="params" if updating else ["params", "batch_stats"],
        variable_carry="batch_stats" if updating else False,
        split_rngs={"params": False, "dropout": True},
        in_axes=(0, nn.broadcast, nn.broadcast, nn.broadcast),
        out_axes=0,
        unroll=unroll,
    )
    return scan(cell, carry, xs, weights, train, hard)


class Forecaster(nn.Module):
    """Multivariate forecaster: ``(B, window, n_series)`` -> ``(B, n_series)``.

    The cell reads one time step (all series) at a time; a dense layer maps its last hidden state to the
    ``n_series`` outputs. LSTNet's autoregressive highway adds a linear model of the last ``highway_window`` values of
    each series (one set of weights shared by all series, plus a bias); ``highway_window=0`` disables it.
    """

    cell: nn.Module
    n_series: int
    highway_window: int = 24
    unroll: int = 1
    use_scan: bool = True

    @nn.compact
    def __call__(self, x, weights=None, train: bool = True, hard: bool = False):
        if x.ndim != 3 or x.shape[-1] != self.n_series:
            raise ValueError(f"Forecaster expects inputs (batch, window, {self.n_series}), got {x.shape}")
        batch, window, _ = x.shape
        if self.highway_window > window:
            raise ValueError(f"highway_window {self.highway_window} is longer than the input window {window}")
        carry = self.cell.initial_carry(batch)
        _, hs = run_cell(self.cell, carry, jnp.swapaxes(x, 0, 1), weights, train=train, hard=hard,
                         unroll=self.unroll, use_scan=self.use_scan)
        out = nn.Dense(self.n_series, name="out")(hs[-1])
        if self.highway_window > 0:
            recent = jnp.swapaxes(x[:, -self.highway_window:, :], 1, 2)  # (B, n, hw)
            out = out + nn.Dense(1, name="highway")(recent)[..., 0]
        return out


class LanguageModel(nn.Module):
    """Word-level language model: tokens ``(B, T)`` -> logits ``(B, T, vocab_size)``.

    Embedding (uniform in [-0.1, 0.1]) -> the cell over time -> decoder. With ``tie_weights`` the decoder is the
    transposed embedding plus a bias (a dense projection from the hidden size to ``embed_dim`` is added first when
    they differ); otherwise a dense layer.

    ``carry`` starts from a given recurrent state (truncated back-propagation over consecutive windows; default:
    ``cell.initial_carry``); ``return_carry=True`` returns ``(logits, final carry)``.
    """

    cell: nn.Module
    vocab_size: int
    embed_dim: int
    tie_weights: bool = False
    unroll: int = 1
    use_scan: bool = True

    @nn.compact
    def __call__(self, tokens, weights=None, train: bool = True, hard: bool = False, carry: Any = None,
                 return_carry: bool = False):
        if tokens.ndim != 2:
            raise ValueError(f"LanguageModel expects token ids (batch, time), got shape {tokens.shape}")
        embed = nn.Embed(self.vocab_size, self.embed_dim, name="embed", embedding_init=symmetric_uniform(0.1))
        x = embed(tokens)
        if carry is None:
            carry = self.cell.initial_carry(tokens.shape[0])
        carry, hs = run_cell(self.cell, carry, jnp.swapaxes(x, 0, 1), weights, train=train, hard=hard,
                             unroll=self.unroll, use_scan=self.use_scan)
        h = jnp.swapaxes(hs, 0, 1)  # (B, T, H)
        if self.tie_weights:
            if h.shape[-1] != self.embed_dim:
                h = nn.Dense(self.embed_dim, name="proj")(h)
            bias = self.param("decoder_bias", nn.initializers.zeros, (self.vocab_size,))
            logits = embed.attend(h) + bias
        else:
            logits = nn.Dense(self.vocab_size, name="decoder")(h)
        return (logits, carry) if return_carry else logits
