"""Genotypes: the discrete architectures a search derives, as frozen dataclasses with a JSON round-trip.

* :class:`NB201Genotype`: one op per edge of the 4-node NAS-Bench-201 cell, in the order of the canonical string
  ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2).
* :class:`DartsGenotype`: the DARTS CNN genotype. ``normal``/``reduce`` hold ``(op, input)`` pairs, grouped by the
  intermediate node they feed: two per node in the DARTS layout (entries 2m and 2m+1 feed node m+2; inputs 0 and 1
  are the two previous cells' outputs), or ``*_fan_in[m]`` pairs for node m+2 when a derivation keeps any number of
  connections per node (EnTranNAS-DST, TopoNAS); ``*_concat`` lists the nodes whose outputs the cell concatenates.
* :class:`RnnGenotype`: the DARTS recurrent cell. ``recurrent`` holds ``(activation, predecessor)`` pairs; entry i
  defines node i+1 (node 0 mixes the input x_t with h_{t-1}); ``concat`` lists the nodes the cell averages.

Published genotypes (DARTS_V1, DARTS_V2, PC_DARTS_cifar; recurrent: DARTS_V1, DARTS_V2) are loaded from
``resources/dartsfamily.json``, a copy of the reference file with its sources stated in its ``_about`` entry.
"""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from importlib import resources
from typing import Any


@dataclasses.dataclass(frozen=True)
class NB201Genotype:
    ops: tuple[str, ...]

    space = "nb201"

    def to_json(self) -> dict[str, Any]:
        return {"space": "nb201", "ops": list(self.ops)}


DARTS_FAN_IN = 2  # (op, input) pairs per node in the DARTS layout


@dataclasses.dataclass(frozen=True)
class DartsGenotype:
    """A DARTS-space genotype; ``*_fan_in`` None means two pairs per node (the DARTS layout). A fan-in of two for
    every node is stored as None, so both spellings of one cell compare equal."""

    normal: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[tuple[str, int], ...]
    reduce_concat: tuple[int, ...]
    normal_fan_in: tuple[int, ...] | None = None
    reduce_fan_in: tuple[int, ...] | None = None

    space = "darts"

    def __post_init__(self):
        for cell in ("normal", "reduce"):
            fan_in = getattr(self, f"{cell}_fan_in")
            if fan_in is not None:
                fan_in = tuple(int(n) for n in fan_in)
                genes = getattr(self, cell)
                if all(n == DARTS_FAN_IN for n in fan_in) and len(genes) == DARTS_FAN_IN * len(fan_in):
                    fan_in = None
                object.__setattr__(self, f"{cell}_fan_in", fan_in)

    def fan_in(self, cell: str) -> tuple[int, ...]:
        """The number of (op, input) pairs of every intermediate node of ``cell`` (``normal`` or ``reduce``)."""
        fan_in = getattr(self, f"{cell}_fan_in")
        if fan_in is not None:
            return fan_in
        n = len(getattr(self, cell))
        return (DARTS_FAN_IN,) * (n // DARTS_FAN_IN) + ((n % DARTS_FAN_IN,) if n % DARTS_FAN_IN else ())

    def node_genes(self, cell: str) -> tuple[tuple[tuple[str, int], ...], ...]:
        """The (op, input) pairs of ``cell`` grouped by node: entry m feeds node m + 2."""
        genes, out, start = getattr(self, cell), [], 0
        for n in self.fan_in(cell):
            out.append(tuple(genes[start : start + n]))
            start += n
        return tuple(out)

    def to_json(self) -> dict[str, Any]:
        out = {
            "space": "darts",
            "normal": [[op, i] for op, i in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [[op, i] for op, i in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }
        for cell in ("normal", "reduce"):
            if getattr(self, f"{cell}_fan_in") is not None:
                out[f"{cell}_fan_in"] = list(getattr(self, f"{cell}_fan_in"))
        return out


@dataclasses.dataclass(frozen=True)
class RnnGenotype:
    recurrent: tuple[tuple[str, int], ...]
    concat: tuple[int, ...]

    space = "darts-rnn"

    def to_json(self) -> dict[str, Any]:
        return {
            "space": "darts-rnn",
            "recurrent": [[act, pred] for act, pred in self.recurrent],
            "concat": list(self.concat),
        }


Genotype = NB201Genotype | DartsGenotype | RnnGenotype


def genotype_to_json(genotype: Genotype) -> str:
    return json.dumps(genotype.to_json())


@lru_cache(maxsize=1)
def reference_data() -> dict[str, Any]:
    """The published reference file (genotypes, primitive lists, figures)."""
    return json.loads(resources.files("jaxnas.resources").joinpath("dartsfamily.json").read_text())


def _cells(entries) -> tuple[tuple[str, int], ...]:
    return tuple((e["op"], int(e["input"])) for e in entries)


@lru_cache(maxsize=None)
def published_cnn() -> dict[str, DartsGenotype]:
    out = {}
    for name, g in reference_data()["cnn"].items():
        out[name] = DartsGenotype(
            _cells(g["normal"]), tuple(g["normal_concat"]), _cells(g["reduce"]), tuple(g["reduce_concat"])
        )
    return out


def get_cnn_genotype(name: str) -> DartsGenotype:
    """A published DARTS-space genotype by name (DARTS_V1, DARTS_V2, PC_DARTS_cifar; also PC_DARTS)."""
    table = published_cnn()
    alias = {"DARTS": "DARTS_V2", "PC_DARTS": "PC_DARTS_cifar"}.get(name, name)
    if alias not in table:
        raise ValueError(f"unknown published genotype {name!r}; known: {', '.join(sorted(table))}")
    return table[alias]


@lru_cache(maxsize=None)
def published_rnn() -> dict[str, RnnGenotype]:
    """The published DARTS recurrent cells (DARTS_V1, DARTS_V2) from the reference file's ``rnn`` entry."""
    return {
        name: RnnGenotype(tuple((e["act"], int(e["pred"])) for e in g["recurrent"]), tuple(int(c) for c in g["concat"]))
        for name, g in reference_data()["rnn"].items()
    }


def get_rnn_genotype(name: str) -> RnnGenotype:
    """A published DARTS recurrent genotype by name (DARTS_V1, DARTS_V2; also DARTS = DARTS_V2)."""
    table = published_rnn()
    alias = {"DARTS": "DARTS_V2"}.get(name, name)
    if alias not in table:
        raise ValueError(f"unknown published recurrent genotype {name!r}; known: {', '.join(sorted(table))}")
    return table[alias]
