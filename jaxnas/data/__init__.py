"""Image classification data for search and training: loaders, search splits and resumable batches.

Typical use::

    from jaxnas import data
    train = data.load_dataset("embedded", "train", image_size=32)        # offline default
    test = data.load_dataset("embedded", "test", image_size=32)
    w_half, a_half = data.split_for_search(train, seed=0)
    x, y = data.batch_at(w_half, seed=0, epoch=0, step=0, batch_size=64)
"""

from jaxnas.data.arrays import ArrayDataset, Stats, compute_stats, from_arrays, parse_split
from jaxnas.data.batching import (
    EVAL_AUGMENT,
    SEARCH_AUGMENT,
    Augment,
    augment_batch,
    batch_at,
    batch_indices,
    epoch_order,
    iterate_epoch,
    split_for_search,
    steps_per_epoch,
)
from jaxnas.data.idx import read_idx, read_idx_split, write_idx
from jaxnas.data.load import DATASET_HELP, DEFAULT_DATASET, load_dataset
from jaxnas.data.local import (
    FASHION_MNIST_CLASSES,
    embedded_path,
    find_fashion_mnist,
    load_embedded,
    load_fashion_mnist,
    load_idx,
    load_npz,
)
from jaxnas.data.tfds_source import DatasetUnavailableError, load_tfds

__all__ = [
    "ArrayDataset", "Stats", "compute_stats", "from_arrays", "parse_split",
    "Augment", "SEARCH_AUGMENT", "EVAL_AUGMENT", "augment_batch", "batch_at", "batch_indices", "epoch_order",
    "iterate_epoch", "split_for_search", "steps_per_epoch",
    "read_idx", "read_idx_split", "write_idx",
    "DATASET_HELP", "DEFAULT_DATASET", "load_dataset",
    "FASHION_MNIST_CLASSES", "embedded_path", "find_fashion_mnist", "load_embedded", "load_fashion_mnist",
    "load_idx", "load_npz",
    "DatasetUnavailableError", "load_tfds",
]
