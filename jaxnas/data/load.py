"""``load_dataset``: one entry point for every image classification source jaxnas reads."""

from __future__ import annotations

import os
from pathlib import Path

from jaxnas.data import local
from jaxnas.data.arrays import ArrayDataset, Stats
from jaxnas.data import tfds_source

DEFAULT_DATASET = "embedded"
EMBEDDED_NAMES = ("embedded", "fashion_mnist_small")

DATASET_HELP = (
    "'embedded' (alias 'fashion_mnist_small': the Fashion-MNIST subset shipped with jaxnas), "
    "'fashion_mnist' (full, IDX files from data_dir or /usr/share/datasets/fashion-mnist), "
    "'fashion_mnist:/dir', 'idx:/dir' (any MNIST-layout IDX directory), a path to an .npz file "
    "(or 'npz:/path'), or a TFDS name such as 'cifar10' (or 'tfds:NAME')"
)


def _looks_like_path(name: str) -> bool:
    # TFDS names may hold '/' too ('imagenet_resized/32x32'): only an existing path or a clear path counts
    return name.endswith(".npz") or name.startswith(("/", ".", "~")) or Path(name).exists()


def load_dataset(
    name: str = DEFAULT_DATASET,
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
    image_size: int | None = None,
    stats: Stats | None = None,
    download: bool = True,
) -> ArrayDataset:
    """Load a split of a named image classification data set as a normalised :class:`ArrayDataset`.

    Args:
      name: one of
        - ``'embedded'`` / ``'fashion_mnist_small'`` (default): 6,000 train / 1,000 test Fashion-MNIST images shipped
          in the package, offline;
        - ``'fashion_mnist'``: the full set from IDX files in ``data_dir`` (or Debian's
          ``/usr/share/datasets/fashion-mnist``); ``'fashion_mnist:/dir'`` names the directory inline;
        - ``'idx:/dir'``: any directory in the MNIST IDX layout;
        - a path to an ``.npz`` (``'npz:/path'`` for one without the suffix), see :func:`load_npz`;
        - any TFDS image classification name (``'cifar10'``, ``'mnist'``, ...; ``'tfds:NAME'`` forces TFDS);
          ``data_dir`` is then TFDS's data directory.
      split: ``'train'`` or ``'test'`` (TFDS: any of its splits), optionally sliced: ``'train[:1000]'``,
        ``'train[:50%]'``.
      data_dir: where to look for the data (see ``name``).
      image_size: zero-pad the images to ``image_size x image_size`` (e.g. 32 for 28x28 Fashion-MNIST).
      stats: ``(mean, std)`` per channel to normalise with. Default: the training split's statistics for local
        sources, the loaded split's own for TFDS (pass ``train.stats`` for a TFDS test split).
      download: TFDS only: allow downloading and preparing.

    Raises:
      ValueError: unknown name, bad split, malformed or empty data, wrong image shape.
      FileNotFoundError: a missing file or directory, or a TFDS data set that cannot be prepared here.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"dataset name must be a non-empty string, got {name!r}; allowed: {DATASET_HELP}")
    name = name.strip()
    kw = dict(image_size=image_size, stats=stats)
    lower = name.lower()

    if lower in EMBEDDED_NAMES:
        return local.load_embedded(split, **kw)
    if lower in ("fashion_mnist", "fashion-mnist") or lower.startswith(("fashion_mnist:", "fashion-mnist:")):
        directory = (name.split(":", 1)[1] if ":" in name else "") or data_dir
        return local.load_fashion_mnist(split, directory, **kw)
    if lower.startswith("idx:"):
        return local.load_idx(Path(name[4:]).expanduser(), split, **kw)
    if lower.startswith("npz:"):
        return local.load_npz(Path(name[4:]).expanduser(), split, **kw)
    if _looks_like_path(name):
        path = Path(name).expanduser()
        if path.is_dir():
            return local.load_idx(path, split, **kw)
        if name.endswith(".npz") or path.is_file():
            return local.load_npz(path, split, **kw)
        raise FileNotFoundError(f"dataset path not found: {path} (allowed: {DATASET_HELP})")

    tfds_name = name[5:] if lower.startswith("tfds:") else name
    try:
        return tfds_source.load_tfds(tfds_name, split, data_dir, download=download, **kw)
    except ValueError as e:
        if str(e).startswith("unknown dataset") and not lower.startswith("tfds:"):
            raise ValueError(f"unknown dataset {name!r}: not a jaxnas data set and not a TFDS name; "
                             f"allowed: {DATASET_HELP}") from None
        raise
