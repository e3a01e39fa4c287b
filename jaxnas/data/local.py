"""Local image data: NPZ files, MNIST-layout IDX directories and the embedded Fashion-MNIST subset.

Normalisation statistics default to those of the source's training split (so 'train' and 'test' are normalised
alike); pass ``stats=`` to override.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
from pathlib import Path

import numpy as np

from jaxnas.data import arrays, idx
from jaxnas.data.arrays import ArrayDataset, Stats

EMBEDDED_DIR = "resources/fashion_mnist_small"  # inside the jaxnas package
EMBEDDED_FILE = "fashion_mnist_small.npz"
EMBEDDED_LICENCE = "COPYRIGHT"

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# Where Debian's `dataset-fashion-mnist` package puts the IDX files.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

_NPZ_PAIRS = (("x", "y"), ("images", "labels"))


def embedded_path(filename: str = EMBEDDED_FILE):
    """A Traversable for a file of the embedded data set (the npz, ``COPYRIGHT`` or ``README.md``)."""
    return importlib.resources.files("jaxnas").joinpath(EMBEDDED_DIR, filename)


# ---------------------------------------------------------------------------------------------------- NPZ


def _npz_arrays(path: Path, split: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Raw (images, labels, extras) of ``split`` from an npz; see :func:`load_npz` for the accepted keys."""
    if not path.is_file():
        raise FileNotFoundError(f"NPZ file not found: {path}")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as e:  # zipfile / pickle / format errors
        raise ValueError(f"{path} is not a readable .npz file ({type(e).__name__}: {e})") from None
    with npz:
        keys = set(npz.files)
        extras = {k: npz[k] for k in ("num_classes",) if k in keys}
        for xk, yk in _NPZ_PAIRS:
            if f"{xk}_{split}" in keys and f"{yk}_{split}" in keys:
                return npz[f"{xk}_{split}"], npz[f"{yk}_{split}"], extras
        for xk, yk in _NPZ_PAIRS:
            if xk in keys and yk in keys:
                if split in ("train", "all"):
                    return npz[xk], npz[yk], extras
                raise ValueError(f"{path} holds a single set ({xk!r}/{yk!r}), so it has only split 'train' "
                                 f"(alias 'all'), not {split!r}; store {xk}_{split}/{yk}_{split} for more splits")
        splits = sorted({k.split("_", 1)[1] for k in keys if k.startswith(("x_", "images_"))})
        if splits:
            raise ValueError(f"{path} has no split {split!r}; it has {arrays.known_splits_text(splits)}")
        raise ValueError(f"{path} has arrays {sorted(keys)}; expected 'x' and 'y' (or 'images' and 'labels'), "
                         "or per split 'x_train'/'y_train', 'x_test'/'y_test'")


def load_npz(
    path: str | os.PathLike,
    split: str = "train",
    *,
    image_size: int | None = None,
    stats: Stats | None = None,
    name: str | None = None,
) -> ArrayDataset:
    """Load an ``.npz`` of images and integer labels.

    Accepted keys: ``x``/``y`` or ``images``/``labels`` (one set: split 'train'), or per split ``x_<split>``/
    ``y_<split>`` (or ``images_<split>``/``labels_<split>``), optionally ``num_classes``. Images are ``(N, H, W)``
    or ``(N, H, W, C)``, uint8 0..255 or float 0..1. ``split`` may be sliced: ``'train[:1000]'``, ``'test[50%:]'``.
    Statistics default to the 'train' set's.
    """
    path = Path(path)
    base, sl = arrays.parse_split(split)
    images, labels, extras = _npz_arrays(path, base)
    label = name or f"{path.name}:{split}"
    if stats is None:
        train = images
        if base not in ("train", "all"):
            try:
                train = _npz_arrays(path, "train")[0]
            except ValueError:  # no training set in the file: use the split's own statistics
                pass
        stats = arrays.compute_stats(arrays._as_nhwc(train, label))
    images, labels = arrays.select_split(images, labels, sl)
    num_classes = None
    if "num_classes" in extras:
        if extras["num_classes"].size != 1:
            raise ValueError(f"{path}: 'num_classes' must be a single integer, got shape {extras['num_classes'].shape}")
        num_classes = int(extras["num_classes"].reshape(()))
    return arrays.from_arrays(images, labels, name=label, num_classes=num_classes, image_size=image_size, stats=stats)


# ---------------------------------------------------------------------------------------------------- IDX


@functools.lru_cache(maxsize=4)
def _idx_train_stats(directory: str) -> Stats:
    images, _ = idx.read_idx_split(directory, "train")
    return arrays.compute_stats(images)


def load_idx(
    directory: str | os.PathLike,
    split: str = "train",
    *,
    image_size: int | None = None,
    stats: Stats | None = None,
    name: str | None = None,
    num_classes: int | None = None,
) -> ArrayDataset:
    """Load a split ('train' or 'test', optionally sliced) of an MNIST-layout IDX directory (files gz or not)."""
    base, sl = arrays.parse_split(split)
    images, labels = idx.read_idx_split(directory, base)
    if stats is None:
        stats = arrays.compute_stats(images) if base == "train" else _idx_train_stats(str(Path(directory).resolve()))
    images, labels = arrays.select_split(images, labels, sl)
    return arrays.from_arrays(
        images, labels, name=name or f"idx:{directory}:{split}", num_classes=num_classes,
        image_size=image_size, stats=stats,
    )


def find_fashion_mnist(data_dir: str | os.PathLike | None = None) -> Path:
    """The directory holding the full Fashion-MNIST IDX files: ``data_dir`` (or its ``fashion_mnist`` /
    ``fashion-mnist`` sub-directory), else Debian's ``/usr/share/datasets/fashion-mnist``."""
    candidates = []
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        candidates = [d, d / "fashion_mnist", d / "fashion-mnist"]
    else:
        candidates = [DEBIAN_FASHION_MNIST_DIR]
    for c in candidates:
        if idx.has_idx_layout(c):
            return c
    where = (f"no train-images-idx3-ubyte[.gz] in {str(data_dir)!r} nor in its fashion_mnist/ or fashion-mnist/ "
             "sub-directory" if data_dir is not None
             else f"no data_dir was given and {DEBIAN_FASHION_MNIST_DIR} holds no IDX files")
    raise FileNotFoundError(
        f"full Fashion-MNIST not found: {where}. Pass data_dir (or "
        "'fashion_mnist:/path/to/dir') pointing at the IDX files, install the Debian package dataset-fashion-mnist, "
        "use 'embedded' for the shipped 6,000/1,000 subset, or 'tfds:fashion_mnist' for the TFDS copy"
    )


def load_fashion_mnist(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    image_size: int | None = None,
    stats: Stats | None = None,
) -> ArrayDataset:
    """The full Fashion-MNIST (60,000 train / 10,000 test, 28x28x1, 10 classes) from IDX files."""
    directory = find_fashion_mnist(data_dir)
    return load_idx(directory, split, image_size=image_size, stats=stats, name=f"fashion_mnist:{split}",
                    num_classes=10)


# ---------------------------------------------------------------------------------------------------- embedded


@functools.lru_cache(maxsize=1)
def _embedded_arrays() -> dict[str, np.ndarray]:
    resource = embedded_path()
    if not resource.is_file():
        raise FileNotFoundError(
            f"the embedded data set is missing from the installed package ({resource}); reinstall jaxnas or "
            "regenerate it with `python -m jaxnas.data.make_embedded --source DIR_WITH_FASHION_MNIST_IDX`"
        )
    with resource.open("rb") as f, np.load(f, allow_pickle=False) as npz:
        out = {k: npz[k] for k in npz.files}
    for v in out.values():
        v.setflags(write=False)
    return out


def load_embedded(split: str = "train", *, image_size: int | None = None, stats: Stats | None = None) -> ArrayDataset:
    """The Fashion-MNIST subset shipped in the package: 6,000 train / 1,000 test, 28x28x1, 10 balanced classes.

    Needs no file system path or network. Statistics default to the subset's training images.
    """
    base, sl = arrays.parse_split(split)
    data = _embedded_arrays()
    if f"x_{base}" not in data:
        raise ValueError(f"the embedded data set has splits 'train' and 'test', not {base!r}")
    if stats is None:
        stats = (tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"]))
    images, labels = arrays.select_split(data[f"x_{base}"], data[f"y_{base}"], sl)
    return arrays.from_arrays(images, labels, name=f"embedded:{split}", num_classes=10, image_size=image_size,
                              stats=stats)
