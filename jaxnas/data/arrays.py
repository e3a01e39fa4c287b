"""In-memory image classification data: :class:`ArrayDataset` and the helpers every source shares.

Every loader in :mod:`jaxnas.data` ends in :func:`from_arrays`: it checks the raw arrays, scales integers to [0, 1],
normalises each channel with a stored mean/std and zero-pads the images to a square size when asked. Padding is done
in pixel space (a padded pixel is black, value 0 before normalisation), so the statistics do not depend on
``image_size`` and a padded pixel equals :attr:`ArrayDataset.pad_value` after normalisation.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np

Stats = tuple[tuple[float, ...], tuple[float, ...]]  # (mean per channel, std per channel), in [0, 1] pixel units

_CHUNK = 4096  # rows per block when computing statistics / normalising, to keep temporaries small


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclasses.dataclass(frozen=True, eq=False)
class ArrayDataset:
    """An image classification set held in host memory.

    Attributes:
      images: float32 ``(N, H, W, C)``, normalised per channel: ``(pixel / 255 - mean) / std`` (read-only).
      labels: int32 ``(N,)`` in ``[0, num_classes)`` (read-only).
      num_classes: number of classes of the source (not just those present here).
      name: where the data came from, e.g. ``'embedded:train'`` or ``'cifar10:test/arch'``.
      mean, std: the per-channel statistics used to normalise, in [0, 1] pixel units.
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)``."""
        return tuple(int(d) for d in self.images.shape[1:])  # type: ignore[return-value]

    @property
    def stats(self) -> Stats:
        """``(mean, std)``: pass it to another split's loader to normalise it the same way."""
        return self.mean, self.std

    @property
    def pad_value(self) -> np.ndarray:
        """Normalised value of a black pixel, per channel (what zero padding writes)."""
        return (-np.asarray(self.mean) / np.asarray(self.std)).astype(np.float32)

    def class_counts(self) -> np.ndarray:
        """Examples per class, shape ``(num_classes,)``."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def subset(self, indices, name: str | None = None) -> ArrayDataset:
        """The examples at ``indices`` (copied), keeping the statistics."""
        indices = np.asarray(indices, dtype=np.int64)
        return dataclasses.replace(
            self,
            images=_readonly(self.images[indices]),
            labels=_readonly(self.labels[indices]),
            name=self.name if name is None else name,
        )

    def __repr__(self) -> str:
        h, w, c = self.image_shape
        return f"ArrayDataset(name={self.name!r}, n={len(self)}, image={h}x{w}x{c}, num_classes={self.num_classes})"


def _as_nhwc(images: np.ndarray, source: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(
            f"{source}: images have shape {images.shape}; expected (N, H, W) or (N, H, W, C) with C in 1..4"
        )
    n, h, w, c = images.shape
    if c not in (1, 2, 3, 4):
        hint = " (looks like NCHW: transpose to NHWC)" if h in (1, 3, 4) else ""
        raise ValueError(
            f"{source}: images have shape {images.shape}; expected (N, H, W) or (N, H, W, C) with C in 1..4{hint}"
        )
    if h < 1 or w < 1:
        raise ValueError(f"{source}: images have shape {images.shape}; height and width must be >= 1")
    if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise ValueError(f"{source}: images have dtype {images.dtype}; expected uint8 (0..255) or float (0..1)")
    return images


def _pixel_scale(images: np.ndarray) -> float:
    """Integers are taken as 0..255, floats as already in [0, 1]."""
    return 1.0 / 255.0 if np.issubdtype(images.dtype, np.integer) else 1.0


def compute_stats(images: np.ndarray) -> Stats:
    """Per-channel mean and std of NHWC images in [0, 1] pixel units (float64 accumulation, in blocks)."""
    images = _as_nhwc(images, "compute_stats")
    if images.shape[0] == 0:
        raise ValueError("cannot compute normalisation statistics of empty data (0 images)")
    scale = _pixel_scale(images)
    c = images.shape[-1]
    total, total_sq = np.zeros(c), np.zeros(c)
    for i in range(0, images.shape[0], _CHUNK):
        block = images[i : i + _CHUNK].astype(np.float64).reshape(-1, c) * scale
        total += block.sum(axis=0)
        total_sq += np.einsum("ij,ij->j", block, block)
    count = images.shape[0] * images.shape[1] * images.shape[2]
    mean = total / count
    var = np.maximum(total_sq / count - mean**2, 0.0)
    std = np.sqrt(var)
    std = np.where(std > 1e-6, std, 1.0)  # constant images: leave the scale alone
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def from_arrays(
    images,
    labels,
    *,
    name: str,
    num_classes: int | None = None,
    image_size: int | None = None,
    stats: Stats | None = None,
) -> ArrayDataset:
    """Check raw arrays and build a normalised :class:`ArrayDataset`.

    Args:
      images: ``(N, H, W)`` or ``(N, H, W, C)``; integers are pixels 0..255, floats are pixels in [0, 1].
      labels: ``(N,)`` integer class ids (a trailing axis of size 1 is accepted).
      name: names the data in messages and in the result.
      num_classes: defaults to ``max(label) + 1``.
      image_size: zero-pad (centred) to ``image_size x image_size``; must be >= the image height and width.
      stats: ``(mean, std)`` per channel to normalise with; defaults to the statistics of ``images``.
    """
    images = _as_nhwc(images, name)
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or labels.size == 0):
        raise ValueError(f"{name}: labels have shape {labels.shape} and dtype {labels.dtype}; expected (N,) integers")
    n, h, w, c = images.shape
    if n == 0:
        raise ValueError(f"{name}: no examples (empty data)")
    if labels.shape[0] != n:
        raise ValueError(f"{name}: {n} images but {labels.shape[0]} labels")
    if labels.min() < 0:
        raise ValueError(f"{name}: labels must be >= 0, found {int(labels.min())}")
    top = int(labels.max()) + 1
    if num_classes is None:
        num_classes = top
    elif top > num_classes:
        raise ValueError(f"{name}: label {top - 1} found but num_classes={num_classes}")
    if stats is None:
        stats = compute_stats(images)
    mean = np.asarray(stats[0], dtype=np.float64).reshape(-1)
    std = np.asarray(stats[1], dtype=np.float64).reshape(-1)
    if mean.shape != (c,) or std.shape != (c,) or np.any(std <= 0):
        raise ValueError(f"{name}: stats need {c} means and {c} positive stds, got mean={mean}, std={std}")

    size_h, size_w = h, w
    if image_size is not None:
        image_size = int(image_size)
        if image_size < max(h, w):
            raise ValueError(
                f"{name}: image_size={image_size} is smaller than the images ({h}x{w}); "
                "only zero padding is supported, so image_size must be >= both"
            )
        size_h = size_w = image_size
    top_pad, left_pad = (size_h - h) // 2, (size_w - w) // 2

    scale = _pixel_scale(images)
    mul = (scale / std).astype(np.float32)
    add = (-mean / std).astype(np.float32)  # also the normalised value of a black (zero) pixel
    out = np.empty((n, size_h, size_w, c), dtype=np.float32)
    out[...] = add
    for i in range(0, n, _CHUNK):
        block = images[i : i + _CHUNK].astype(np.float32)
        block *= mul
        block += add
        out[i : i + _CHUNK, top_pad : top_pad + h, left_pad : left_pad + w, :] = block
    return ArrayDataset(
        images=_readonly(out),
        labels=_readonly(labels.astype(np.int32)),
        num_classes=int(num_classes),
        name=name,
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
    )


_SPLIT_RE = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*(?:\[\s*([^\]:]*)\s*:\s*([^\]:]*)\s*\])?\s*$")


def parse_split(split: str) -> tuple[str, slice]:
    """``'train'`` -> ('train', slice(None)); ``'train[:1000]'``, ``'test[50%:]'`` -> a slice on that split.

    Bounds are example counts or percentages (of the split's size); resolve them with :func:`resolve_slice`.
    """
    m = _SPLIT_RE.match(split) if isinstance(split, str) else None
    if not m:
        raise ValueError(f"bad split {split!r}: expected a name like 'train' or 'test', optionally sliced "
                         "as 'train[:1000]' or 'train[:50%]'")
    base, lo, hi = m.group(1), m.group(2), m.group(3)
    for bound in (lo, hi):
        if bound and not re.fullmatch(r"-?\d+%?", bound.strip()):
            raise ValueError(f"bad split {split!r}: slice bounds must be integers or percentages like 50%")
    return base, slice(lo.strip() or None if lo else None, hi.strip() or None if hi else None)


def resolve_slice(sl: slice, n: int) -> slice:
    """Turn a :func:`parse_split` slice with count or percent bounds into integer bounds for ``n`` examples."""

    def bound(b):
        if b is None:
            return None
        if b.endswith("%"):
            return int(round(int(b[:-1]) * n / 100))
        return int(b)

    return slice(bound(sl.start), bound(sl.stop))


def select_split(images: np.ndarray, labels: np.ndarray, sl: slice) -> tuple[np.ndarray, np.ndarray]:
    """Apply a :func:`parse_split` slice to raw arrays."""
    if sl.start is None and sl.stop is None:
        return images, labels
    s = resolve_slice(sl, labels.shape[0])
    return images[s], labels[s]


def known_splits_text(splits: Sequence[str]) -> str:
    return ", ".join(repr(s) for s in splits)
