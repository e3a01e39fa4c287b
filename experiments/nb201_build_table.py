"""Build ``jaxnas/resources/nb201/nb201.npz`` from the reference CSVs (run once; the result is committed).

    python experiments/nb201_build_table.py [--data ../shared/data/nb201]

Reads ``nb201.csv`` (accuracies, params, FLOPs, isomorphism classes) and ``nb201_latency_help.csv`` (HELP
latencies on 27 device settings), checks that both list the same cells in the same official NB201 order and that
every arch string round-trips through :class:`jaxnas.spaces.NB201Space`, and writes one compressed ``.npz``:

* ``ops``: uint8 (15625, 6), op index per edge (``NB201Space.primitives`` order), row = official NB201 index;
* ``isomorph_id``: int32 (15625,);
* one float32 array per numeric column (every value in the CSVs has at most 6 significant digits, so float32 holds
  it exactly as printed);
* ``primitives``: the op names the indices refer to.
"""

from __future__ import annotations

import argparse
import csv
import pathlib

import numpy as np

from jaxnas.spaces import NB201Space

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "jaxnas" / "resources" / "nb201" / "nb201.npz"


def read(path: pathlib.Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "nb201"))
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    data = pathlib.Path(args.data)

    head, rows = read(data / "nb201.csv")
    lhead, lrows = read(data / "nb201_latency_help.csv")
    assert len(rows) == len(lrows) == 15625, (len(rows), len(lrows))
    space = NB201Space()
    ops = np.zeros((len(rows), space.num_edges), np.uint8)
    for k, (r, lr) in enumerate(zip(rows, lrows)):
        assert int(r[0]) == k and int(lr[0]) == k, f"row {k} is not in NB201 index order"
        assert r[1] == lr[1], f"row {k}: the two CSVs disagree on the arch string"
        g = space.parse(r[1])
        assert space.format(g) == r[1], f"row {k}: {r[1]!r} does not round-trip"
        ops[k] = space.to_indices(g)
    codes = ops.astype(np.int64) @ (len(space.primitives) ** np.arange(space.num_edges - 1, -1, -1))
    assert len(np.unique(codes)) == len(rows), "duplicate cells in the table"

    arrays: dict[str, np.ndarray] = {"ops": ops, "primitives": np.array(space.primitives)}
    for j, name in enumerate(head):
        if name in ("index", "arch_str"):
            continue
        values = np.array([float(r[j]) for r in rows])
        if name == "isomorph_id":
            arrays[name] = values.astype(np.int32)
        else:
            arrays[name] = values.astype(np.float32)
    for j, name in enumerate(lhead[2:], start=2):
        arrays[name] = np.array([float(r[j]) for r in lrows]).astype(np.float32)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(arrays)} arrays)")


if __name__ == "__main__":
    main()
