"""Search spaces, pure (no flax): primitive names, genotypes, derivation rules, published genotypes, one file per
space. Each space is a frozen dataclass with the same interface:

``primitives``, ``edges``, ``init_arch(key)``, ``derive(arch)``, ``sample(key)``, ``mutate(key, g)``, ``encode(g)``,
``parse(str)`` / ``format(g)``, ``to_json(g)`` / ``from_json(dict)``, ``validate(g)``, ``one_hot_weights(g)``
(and ``enumerate()`` where the space is small enough). Spaces are looked up by name in :mod:`jaxnas.registry`.
"""

from jaxnas.spaces.darts import DartsSpace
from jaxnas.spaces.nb201 import NB201Space
from jaxnas.spaces.rnn import DartsRnnSpace

__all__ = ["DartsRnnSpace", "DartsSpace", "NB201Space"]
