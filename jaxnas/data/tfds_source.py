"""TFDS front door: any TFDS image classification data set as an :class:`ArrayDataset`, without TensorFlow.

Reading goes through ``tfds`` random-access data sources (ArrayRecord files), which need no TensorFlow; decoding
stored PNG/JPEG images needs Pillow or OpenCV. What does need more than is installed by default:

- *preparing* a data set (``download_and_prepare``: download + convert) needs TensorFlow for most builders
  (``pip install tensorflow``), or prepare it elsewhere with
  ``tfds build NAME --data_dir DIR --file_format=array_record`` and pass ``data_dir=DIR``;
- reading a data set prepared in the older TFRecord format needs TensorFlow.

Each of these cases raises :class:`DatasetUnavailableError` (a ``FileNotFoundError``) that names the data set and
the fix. ``tfds.testing.mock_data`` works offline with nothing extra, which is what the tests use.
"""

from __future__ import annotations

import os
import re

import numpy as np

from jaxnas.data import arrays
from jaxnas.data.arrays import ArrayDataset, Stats

_PREPARE_HINT = (
    "prepare it with TensorFlow installed (`pip install tensorflow pillow`), e.g. "
    "`tfds build {name} --data_dir {data_dir} --file_format=array_record`, possibly on another machine, "
    "then pass data_dir={data_dir!r}"
)


class DatasetUnavailableError(FileNotFoundError):
    """The data set exists (by name) but cannot be read here: not prepared, not downloadable, or a missing package."""


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:  # pragma: no cover - tensorflow-datasets is a dependency
        raise DatasetUnavailableError(
            f"TFDS data sets need tensorflow-datasets (`pip install tensorflow-datasets`): {e}"
        ) from None
    return tfds


def _has_tensorflow() -> bool:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def _keys_and_classes(builder, name: str, image_key: str | None, label_key: str | None) -> tuple[str, str, int]:
    tfds = _import_tfds()
    features = builder.info.features
    top = dict(features.items()) if hasattr(features, "items") else {}
    if image_key is None or label_key is None:
        supervised = builder.info.supervised_keys
        pair = isinstance(supervised, (tuple, list)) and len(supervised) == 2
        if pair and all(isinstance(k, str) for k in supervised):
            image_key = image_key or supervised[0]
            label_key = label_key or supervised[1]
        else:
            images = [k for k, f in top.items() if isinstance(f, tfds.features.Image)]
            labels = [k for k, f in top.items() if isinstance(f, tfds.features.ClassLabel)]
            image_key = image_key or (images[0] if len(images) == 1 else None)
            label_key = label_key or (labels[0] if len(labels) == 1 else None)
    feat_image, feat_label = top.get(image_key), top.get(label_key)
    if not isinstance(feat_image, tfds.features.Image) or not isinstance(feat_label, tfds.features.ClassLabel):
        listed = ", ".join(f"{k}={type(f).__name__}" for k, f in top.items())
        raise ValueError(
            f"TFDS dataset {name!r} is not an image classification set jaxnas can read: it needs one Image "
            f"feature and one ClassLabel feature (features: {listed}); pass image_key=/label_key= to choose"
        )
    if any(d is None for d in feat_image.shape):
        raise ValueError(f"TFDS dataset {name!r} has images of varying size {feat_image.shape}; "
                         "jaxnas needs fixed-size images")
    return image_key, label_key, int(feat_label.num_classes)


def _check_split(builder, name: str, split: str) -> None:
    known = list(builder.info.splits.keys()) if builder.info.splits else []
    if not known or not isinstance(split, str):
        return  # nothing recorded (e.g. under mock data): let TFDS decide
    for part in split.split("+"):
        base = re.split(r"[\[(]", part, maxsplit=1)[0].strip()
        if base and base not in known:
            raise ValueError(f"TFDS dataset {name!r} has no split {base!r}; it has {arrays.known_splits_text(known)}")


def _read_all(source, n: int, image_key: str, label_key: str, shape, name: str) -> tuple[np.ndarray, np.ndarray]:
    images = np.empty((n, *shape), dtype=np.uint8)
    labels = np.empty((n,), dtype=np.int64)
    batched = hasattr(source, "__getitems__")
    for start in range(0, n, 1024):
        keys = list(range(start, min(n, start + 1024)))
        items = None
        if batched:
            try:
                items = source.__getitems__(keys)
            except TypeError:
                batched = False  # some sources (tfds mock data) only index one record at a time
        if items is None:
            items = [source[k] for k in keys]
        for k, ex in zip(keys, items):
            img = np.asarray(ex[image_key])
            if img.shape != tuple(shape):
                raise ValueError(f"TFDS dataset {name!r}: example {k} has image shape {img.shape}, expected {shape}")
            images[k] = img
            labels[k] = int(ex[label_key])
    return images, labels


def load_tfds_arrays(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    image_key: str | None = None,
    label_key: str | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Raw ``(images uint8 NHWC, labels, num_classes)`` of a TFDS image classification split (see :func:`load_tfds`)."""
    tfds = _import_tfds()
    data_dir = None if data_dir is None else os.fspath(data_dir)
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(
            f"unknown dataset {name!r}: not a jaxnas data set name and TFDS has no data set of that name "
            "(see `tfds.list_builders()`)"
        ) from None
    except ImportError as e:
        raise DatasetUnavailableError(f"TFDS dataset {name!r} needs a package that is not installed ({e}); "
                                      "install it, e.g. `pip install tensorflow`") from None
    image_key, label_key, num_classes = _keys_and_classes(builder, name, image_key, label_key)
    _check_split(builder, name, split)
    where = str(builder.data_dir)
    hint = _PREPARE_HINT.format(name=name, data_dir=data_dir or "DIR")

    if not builder.is_prepared():
        if not download:
            raise DatasetUnavailableError(
                f"TFDS dataset {name!r} is not prepared in {where} and download=False; {hint}"
            )
        try:
            builder.download_and_prepare(file_format="array_record")
        except ImportError as e:
            raise DatasetUnavailableError(
                f"TFDS dataset {name!r} is not prepared in {where}, and preparing it here needs a package that is "
                f"not installed ({e.name or e}); {hint}"
            ) from None
        except Exception as e:  # network down, checksum, disk, ...
            raise DatasetUnavailableError(
                f"TFDS dataset {name!r} is not prepared in {where} and could not be downloaded/prepared "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); {hint}"
            ) from None

    try:
        source = builder.as_data_source(split=split)
    except NotImplementedError:
        if not _has_tensorflow():
            raise DatasetUnavailableError(
                f"TFDS dataset {name!r} in {where} is stored as TFRecord, which needs TensorFlow to read: "
                "`pip install tensorflow`, or prepare it again with --file_format=array_record"
            ) from None
        batch = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
        return np.asarray(batch[image_key]), np.asarray(batch[label_key]), num_classes
    except (KeyError, ValueError) as e:
        raise ValueError(f"TFDS dataset {name!r}: bad split {split!r} ({e})") from None

    shape = tuple(int(d) for d in builder.info.features[image_key].shape)
    try:
        images, labels = _read_all(source, len(source), image_key, label_key, shape, name)
    except ImportError as e:
        raise DatasetUnavailableError(
            f"TFDS dataset {name!r}: decoding its images needs Pillow or OpenCV (`pip install pillow`) ({e})"
        ) from None
    return images, labels, num_classes


def load_tfds(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    image_size: int | None = None,
    stats: Stats | None = None,
    image_key: str | None = None,
    label_key: str | None = None,
) -> ArrayDataset:
    """Any TFDS image classification data set (``'cifar10'``, ``'mnist'``, ``'fashion_mnist'``, ...) in memory.

    Args:
      name: TFDS name, optionally with config/version (``'cifar10:3.0.2'``).
      split: TFDS split syntax (``'train'``, ``'test'``, ``'train[:10%]'``).
      data_dir: where TFDS looks for / writes prepared data (default: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
      download: prepare the data set when it is not there yet (needs the network and, mostly, TensorFlow).
      image_size: zero-pad the images to ``image_size x image_size``.
      stats: ``(mean, std)`` per channel to normalise with; default: the loaded split's own statistics
        (pass ``train.stats`` when loading a test split).
      image_key, label_key: feature names; default: the builder's supervised keys.

    Raises:
      ValueError: unknown name, not an image classification set, bad split.
      DatasetUnavailableError: not prepared and cannot be prepared here, or a missing package (says which).
    """
    images, labels, num_classes = load_tfds_arrays(
        name, split, data_dir, download=download, image_key=image_key, label_key=label_key
    )
    return arrays.from_arrays(images, labels, name=f"{name}:{split}", num_classes=num_classes,
                              image_size=image_size, stats=stats)
