"""Word-level language-modelling data in the Penn Treebank format.

A PTB-format file holds one sentence per line, words separated by spaces; reading appends ``<eos>`` to every line
(so the shipped ``valid.txt`` is 73,760 tokens and ``test.txt`` 82,430). Words outside the vocabulary map to
``<unk>``; the vocabulary always holds ``<eos>`` and ``<unk>``.

Typical use::

    from jaxnas.data import ptb
    corpus = ptb.load_corpus()                       # shipped files: train = valid.txt (!), valid = test = test.txt
    corpus = ptb.load_corpus("/data/ptb")            # the real protocol: train.txt, valid.txt, test.txt there
    stream = ptb.batchify(corpus.train, 32)          # (32, L): 32 contiguous sub-streams
    for i in range(ptb.num_windows(stream, 35)):
        x, y = ptb.bptt_window(stream, i, 35)        # (32, <=35) inputs, targets shifted by one

**Offline default.** The training split of PTB (``ptb.train.txt``) is not shipped; ``load_corpus()`` without a
directory trains on the shipped *validation* text and evaluates on the shipped *test* text (``valid`` and ``test``
are then the same text). That is for smoke runs only: its perplexities are not comparable with published ones. For
the real protocol pass a directory with ``train.txt``, ``valid.txt`` and ``test.txt`` (or ``ptb.train.txt`` ...).
"""

from __future__ import annotations

import dataclasses
import importlib.resources
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

EOS = "<eos>"
UNK = "<unk>"
RESOURCE_DIR = "resources/ptb"  # inside the jaxnas package
SPLITS = ("train", "valid", "test")


def shipped_path(split: str):
    """The shipped ``valid.txt`` / ``test.txt`` (an :mod:`importlib.resources` traversable)."""
    if split not in ("valid", "test"):
        raise ValueError(f"only valid and test PTB text ship with jaxnas, not {split!r}")
    return importlib.resources.files("jaxnas").joinpath(RESOURCE_DIR, f"{split}.txt")


def tokenize(text: str) -> list[str]:
    """Words of every non-empty line, each line followed by ``<eos>``."""
    out: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if words:
            out.extend(words)
            out.append(EOS)
    return out


def read_tokens(path) -> list[str]:
    """:func:`tokenize` of a UTF-8 text file (a path or a traversable)."""
    try:
        text = Path(path).read_text(encoding="utf-8") if isinstance(path, (str, Path)) else path.read_text("utf-8")
    except FileNotFoundError:
        raise ValueError(f"PTB text file not found: {path}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    return tokenize(text)


@dataclasses.dataclass(frozen=True)
class Vocab:
    """Words in a fixed order; ``index`` maps word -> id."""

    words: tuple[str, ...]
    index: dict = dataclasses.field(repr=False, compare=False, hash=False)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def unk_id(self) -> int:
        return self.index[UNK]

    @property
    def eos_id(self) -> int:
        return self.index[EOS]

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """int32 ids; unknown words become ``<unk>``."""
        unk, index = self.index[UNK], self.index
        return np.fromiter((index.get(t, unk) for t in tokens), np.int32)

    def decode(self, ids) -> list[str]:
        return [self.words[int(i)] for i in np.asarray(ids).reshape(-1)]


def make_vocab(words: Sequence[str]) -> Vocab:
    """A vocabulary of ``words`` in order (duplicates refused); ``<eos>`` and ``<unk>`` appended when missing."""
    words = tuple(words)
    if len(set(words)) != len(words):
        raise ValueError("vocabulary words must be unique")
    words = words + tuple(w for w in (EOS, UNK) if w not in words)
    return Vocab(words, {w: i for i, w in enumerate(words)})


def build_vocab(*token_lists: Iterable[str], max_size: int | None = None) -> Vocab:
    """The vocabulary of the given token lists: words in order of first appearance (the most frequent
    ``max_size`` words, ties by first appearance, when ``max_size`` is given; the rest become ``<unk>``)."""
    counts: dict[str, int] = {}
    for tokens in token_lists:
        for t in tokens:
            counts[t] = counts.get(t, 0) + 1
    words = list(counts)
    if max_size is not None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        first = {w: i for i, w in enumerate(words)}
        words = sorted(sorted(words, key=lambda w: (-counts[w], first[w]))[:max_size], key=first.get)
    return make_vocab(words)


@dataclasses.dataclass(frozen=True)
class Corpus:
    """Token ids of the three splits (1-D int32) and their vocabulary; ``source`` says where they came from."""

    vocab: Vocab
    train: np.ndarray = dataclasses.field(repr=False)
    valid: np.ndarray = dataclasses.field(repr=False)
    test: np.ndarray = dataclasses.field(repr=False)
    source: str

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; allowed: {', '.join(SPLITS)}")
        return getattr(self, name)


def _find(directory: Path, split: str) -> Path:
    for name in (f"{split}.txt", f"ptb.{split}.txt"):
        if (directory / name).is_file():
            return directory / name
    raise ValueError(f"{directory}: no {split}.txt (or ptb.{split}.txt); a PTB directory needs train, valid and test")


def load_corpus(directory: str | Path | None = None) -> Corpus:
    """PTB from ``directory`` (``train.txt``, ``valid.txt``, ``test.txt``), or the shipped smoke-run corpus when
    None (train on ``valid.txt``, evaluate on ``test.txt``; see the module docstring). The vocabulary is built from
    all files read (for Mikolov's PTB: the 10,000 words, ``<eos>`` included)."""
    if directory is None:
        train = read_tokens(shipped_path("valid"))
        test = read_tokens(shipped_path("test"))
        vocab = build_vocab(train, test)
        ids_test = vocab.encode(test)
        return Corpus(vocab, vocab.encode(train), ids_test, ids_test,
                      "shipped PTB (train = valid.txt, valid = test = test.txt)")
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"PTB directory not found: {directory}")
    tokens = {s: read_tokens(_find(directory, s)) for s in SPLITS}
    for s, t in tokens.items():
        if not t:
            raise ValueError(f"{_find(directory, s)} holds no words")
    vocab = build_vocab(*tokens.values())
    return Corpus(vocab, *(vocab.encode(tokens[s]) for s in SPLITS), str(directory))


# ----------------------------------------------------------------------------------------------------------------
# batches


def batchify(ids, batch_size: int) -> np.ndarray:
    """Cut a 1-D id stream into ``batch_size`` contiguous sub-streams: ``(batch_size, len(ids) // batch_size)``;
    row ``b`` continues where row ``b - 1`` ends (the tail that does not fill a column is dropped)."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"batchify needs a 1-D id stream, got shape {ids.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    length = ids.shape[0] // batch_size
    if length < 2:
        raise ValueError(f"{ids.shape[0]} tokens are too few for {batch_size} streams of at least 2 tokens")
    return ids[: length * batch_size].reshape(batch_size, length)


def num_windows(stream: np.ndarray, bptt: int, drop_remainder: bool = False) -> int:
    """BPTT windows in a ``(batch, L)`` stream: ``ceil((L - 1) / bptt)`` (``floor`` with ``drop_remainder``)."""
    if bptt < 1:
        raise ValueError(f"bptt must be >= 1, got {bptt}")
    n = stream.shape[1] - 1
    return n // bptt if drop_remainder else -(-n // bptt)


def bptt_window(stream: np.ndarray, i: int, bptt: int) -> tuple[np.ndarray, np.ndarray]:
    """Window ``i``: inputs ``stream[:, s:s+l]`` and targets ``stream[:, s+1:s+1+l]``, ``s = i * bptt``,
    ``l = min(bptt, L - 1 - s)`` (only the last window is shorter)."""
    n = num_windows(stream, bptt)
    if not 0 <= i < n:
        raise ValueError(f"window {i} out of range: the stream holds {n} windows of bptt {bptt}")
    s = i * bptt
    l = min(bptt, stream.shape[1] - 1 - s)
    return stream[:, s : s + l], stream[:, s + 1 : s + 1 + l]


def padded_window(stream: np.ndarray, i: int, bptt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`bptt_window` padded to ``bptt`` columns, with a float32 mask (1 on real tokens), so every window has
    one shape (one compiled evaluation function)."""
    x, y = bptt_window(stream, i, bptt)
    pad = bptt - x.shape[1]
    mask = np.ones(y.shape, np.float32)
    if pad:
        widths = ((0, 0), (0, pad))
        x, y, mask = np.pad(x, widths), np.pad(y, widths), np.pad(mask, widths)
    return x, y, mask


__all__ = [
    "EOS", "SPLITS", "UNK",
    "Corpus", "Vocab",
    "batchify", "bptt_window", "build_vocab", "load_corpus", "make_vocab", "num_windows", "padded_window",
    "read_tokens", "shipped_path", "tokenize",
]
