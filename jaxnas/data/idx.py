"""IDX files (the MNIST / Fashion-MNIST container), plain or gzip-compressed.

Layout: two zero bytes, a type code, the number of dimensions, one big-endian uint32 per dimension, then the values
big-endian in C order. A directory in the MNIST layout holds ``train-images-idx3-ubyte[.gz]``,
``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

_CODE_TO_DTYPE = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_DTYPE_TO_CODE = {np.dtype(d).newbyteorder("=") if d.itemsize > 1 else d: c for c, d in _CODE_TO_DTYPE.items()}

# split name -> file prefix in the MNIST layout
IDX_SPLITS = {"train": "train", "test": "t10k"}


def _open(path: Path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzip detected from its content) into a native-endian numpy array."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    with _open(path) as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _CODE_TO_DTYPE:
        raise ValueError(f"{path} is not an IDX file (bad magic bytes {data[:4]!r}); expected 00 00 <type> <ndim>")
    dtype, ndim = _CODE_TO_DTYPE[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: IDX header truncated ({len(data)} bytes for {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: IDX header says shape {shape} ({expected} bytes) but {len(data) - header} "
                         "bytes follow (file truncated or corrupt)")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write ``array`` as IDX; gzip when ``compress`` is true (default: when the name ends in ``.gz``)."""
    path = Path(path)
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=") if array.dtype.itemsize > 1 else array.dtype
    if key not in _DTYPE_TO_CODE:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; allowed: uint8, int8, int16, int32, float32, float64")
    if array.ndim > 255:
        raise ValueError("IDX stores at most 255 dimensions")
    code = _DTYPE_TO_CODE[key]
    payload = (
        bytes([0, 0, code, array.ndim])
        + np.asarray(array.shape, dtype=">u4").tobytes()
        + np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).tobytes()
    )
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        # mtime=0 keeps the bytes reproducible
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def idx_files(directory: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """The (images, labels) IDX paths of ``split`` ('train' or 'test') in an MNIST-layout directory."""
    directory = Path(directory)
    if split not in IDX_SPLITS:
        raise ValueError(f"IDX data has splits 'train' and 'test', not {split!r}")
    if not directory.is_dir():
        raise FileNotFoundError(f"IDX data directory not found: {directory}")
    prefix = IDX_SPLITS[split]
    images = _find(directory, f"{prefix}-images-idx3-ubyte")
    labels = _find(directory, f"{prefix}-labels-idx1-ubyte")
    if images is None or labels is None:
        raise FileNotFoundError(
            f"{directory} has no {split} split in the MNIST layout: expected {prefix}-images-idx3-ubyte[.gz] and "
            f"{prefix}-labels-idx1-ubyte[.gz]"
        )
    return images, labels


def has_idx_layout(directory: str | os.PathLike) -> bool:
    directory = Path(directory)
    return directory.is_dir() and _find(directory, "train-images-idx3-ubyte") is not None


def read_idx_split(directory: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Raw ``(images uint8 (N, H, W), labels (N,))`` of one split of an MNIST-layout directory."""
    images_path, labels_path = idx_files(directory, split)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim not in (3, 4):
        raise ValueError(f"{images_path}: images have shape {images.shape}; expected (N, H, W) or (N, H, W, C)")
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: labels have shape {labels.shape}; expected (N,)")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images_path} holds {images.shape[0]} images but {labels_path} {labels.shape[0]} labels")
    return images, labels
