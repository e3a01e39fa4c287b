"""Regenerate the embedded Fashion-MNIST subset shipped in ``jaxnas/resources/fashion_mnist_small/``.

    python -m jaxnas.data.make_embedded --source ../shared/data/fashion_mnist          # rewrite the shipped files
    python -m jaxnas.data.make_embedded --source ../shared/data/fashion_mnist --check  # verify them, write nothing

Selection is deterministic and needs no random numbers: the first ``--train-per-class`` images of each class in
the order of ``train-*-idx*-ubyte``, and the first ``--test-per-class`` of each class in ``t10k-*``, kept in file
order. The npz is written with fixed zip timestamps, so the same inputs give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from jaxnas.data import arrays, idx, local

DEFAULT_TRAIN_PER_CLASS = 600
DEFAULT_TEST_PER_CLASS = 100


def first_per_class(labels: np.ndarray, per_class: int, num_classes: int) -> np.ndarray:
    """Indices (ascending) of the first ``per_class`` examples of each class."""
    chosen = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if members.size < per_class:
            raise ValueError(f"class {c} has only {members.size} examples, fewer than {per_class} asked for")
        chosen.append(members[:per_class])
    return np.sort(np.concatenate(chosen))


def write_npz_reproducibly(path: Path, named_arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but with fixed member timestamps and order, so the bytes are reproducible."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key in sorted(named_arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(named_arrays[key], order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def build(source: Path, out_dir: Path, train_per_class: int, test_per_class: int, num_classes: int = 10) -> Path:
    """Write the subset npz, a copy of the licence and a README into ``out_dir``; returns the npz path."""
    licence = source / "COPYRIGHT"
    if not licence.is_file():
        raise FileNotFoundError(f"{licence} not found: the subset must ship with the source's licence")
    out: dict[str, np.ndarray] = {"num_classes": np.array(num_classes, dtype=np.int32)}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        images, labels = idx.read_idx_split(source, split)
        chosen = first_per_class(labels, per_class, num_classes)
        out[f"x_{split}"] = images[chosen].astype(np.uint8)
        out[f"y_{split}"] = labels[chosen].astype(np.uint8)
        out[f"index_{split}"] = chosen.astype(np.int32)  # provenance: rows of the original IDX files
    mean, std = arrays.compute_stats(out["x_train"])
    out["mean"], out["std"] = np.array(mean), np.array(std)

    out_dir.mkdir(parents=True, exist_ok=True)
    npz_path = out_dir / local.EMBEDDED_FILE
    write_npz_reproducibly(npz_path, out)
    shutil.copyfile(licence, out_dir / local.EMBEDDED_LICENCE)
    digest = hashlib.sha256(npz_path.read_bytes()).hexdigest()
    n_train, n_test = train_per_class * num_classes, test_per_class * num_classes
    (out_dir / "README.md").write_text(
        f"""# Embedded Fashion-MNIST subset

`{local.EMBEDDED_FILE}`: {n_train:,} training and {n_test:,} test images of Fashion-MNIST (28x28, grey, uint8),
{train_per_class} / {test_per_class} per class for all {num_classes} classes, so that `jaxnas` runs offline on a
fresh machine (`jaxnas.data.load_dataset("embedded", split)`).

- Source: Fashion-MNIST by Zalando Research, https://github.com/zalandoresearch/fashion-mnist (IDX files as
  packaged by Debian's `dataset-fashion-mnist`). Licence: Expat (MIT); see `COPYRIGHT` in this directory, copied
  from the source.
- Selection: the first {train_per_class} images of each class in `train-images-idx3-ubyte` and the first
  {test_per_class} of each class in `t10k-images-idx3-ubyte`, kept in file order (no random numbers).
- Arrays: `x_train`, `y_train`, `x_test`, `y_test` (uint8), `index_train`, `index_test` (rows in the original
  files), `num_classes`, `mean`, `std` (per-channel statistics of `x_train` in [0, 1] pixel units).
- sha256 of `{local.EMBEDDED_FILE}`: `{digest}`
- Regenerate (bit-identical): `python -m jaxnas.data.make_embedded --source DIR_WITH_FASHION_MNIST_IDX`;
  verify: add `--check`.
"""
    )
    return npz_path


def _default_out() -> Path:
    return Path(__file__).resolve().parent.parent / local.EMBEDDED_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxnas.data.make_embedded", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=None,
                        help="directory with the full Fashion-MNIST IDX files and COPYRIGHT "
                             f"(default: {local.DEBIAN_FASHION_MNIST_DIR})")
    parser.add_argument("--out", default=None, help="output directory (default: the package's resources)")
    parser.add_argument("--train-per-class", type=int, default=DEFAULT_TRAIN_PER_CLASS)
    parser.add_argument("--test-per-class", type=int, default=DEFAULT_TEST_PER_CLASS)
    parser.add_argument("--check", action="store_true", help="regenerate into a temporary directory and compare")
    args = parser.parse_args(argv)
    try:
        if args.source is None and not idx.has_idx_layout(local.DEBIAN_FASHION_MNIST_DIR):
            raise FileNotFoundError("pass --source DIR: the directory with the full Fashion-MNIST IDX files and "
                                    f"COPYRIGHT ({local.DEBIAN_FASHION_MNIST_DIR} is not there)")
        source = local.find_fashion_mnist(args.source)
        out_dir = Path(args.out) if args.out else _default_out()
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                fresh = build(source, Path(tmp), args.train_per_class, args.test_per_class)
                shipped = out_dir / local.EMBEDDED_FILE
                same = shipped.is_file() and fresh.read_bytes() == shipped.read_bytes()
            print(f"{shipped}: {'identical to' if same else 'DIFFERS from'} a fresh build from {source}")
            return 0 if same else 1
        npz_path = build(source, out_dir, args.train_per_class, args.test_per_class)
    except (ValueError, FileNotFoundError) as e:
        print(f"make_embedded: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {npz_path} ({npz_path.stat().st_size:,} bytes) and {out_dir / local.EMBEDDED_LICENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
