"""Search spaces. Each is a frozen dataclass with the same interface:

``primitives``, ``edges``, ``init_arch(key)``, ``derive(arch)``, ``sample(key)``, ``mutate(key, g)``, ``encode(g)``,
``parse(str)`` / ``format(g)``, ``to_json(g)`` / ``from_json(dict)``, ``validate(g)``, ``one_hot_weights(g)``
(and ``enumerate()`` where the space is small enough).
"""

from jaxnas.spaces.darts import DartsSpace
from jaxnas.spaces.nb201 import NB201Space
from jaxnas.spaces.rnn import DartsRnnSpace

SPACES = {"nb201": NB201Space, "darts": DartsSpace, "darts-rnn": DartsRnnSpace}


def get_space(name: str, **kwargs):
    """A search space by name; an unknown name is an error listing the known ones."""
    try:
        return SPACES[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown search space {name!r}; known: {', '.join(sorted(SPACES))}") from None


__all__ = ["DartsRnnSpace", "DartsSpace", "NB201Space", "SPACES", "get_space"]
