"""Loaders: IDX, NPZ, the embedded subset, padding, and their error messages."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from jaxnas import data
from jaxnas.data import arrays, idx, local, make_embedded


def _tiny_mnist_dir(path, n_train=40, n_test=20, *, gz=True, licence=True):
    rng = np.random.default_rng(0)
    path.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        idx.write_idx(path / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        idx.write_idx(path / f"{prefix}-labels-idx1-ubyte{suffix}", (np.arange(n) % 10).astype(np.uint8))
    if licence:
        (path / "COPYRIGHT").write_text("test licence\n")
    return path


# ------------------------------------------------------------------------------------------------------ IDX


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    arr = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
    if dtype == np.uint8:
        arr = np.abs(arr).astype(dtype)
    path = idx.write_idx(tmp_path / name, arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = data.read_idx(path)
    assert back.dtype == np.dtype(dtype).newbyteorder("=") and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_idx_known_header_bytes(tmp_path):
    path = idx.write_idx(tmp_path / "l", np.array([3, 1, 4], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 3, 1, 4])


def test_idx_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="IDX file not found"):
        data.read_idx(tmp_path / "missing")
    (tmp_path / "junk").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "junk")
    good = idx.write_idx(tmp_path / "t", np.zeros((4, 2, 2), np.uint8))
    (tmp_path / "trunc").write_bytes(good.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        data.read_idx(tmp_path / "trunc")
    with gzip.open(tmp_path / "trunc.gz", "wb") as f:
        f.write(good.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        data.read_idx(tmp_path / "trunc.gz")


@pytest.mark.parametrize("gz", [True, False])
def test_idx_directory_loaders(tmp_path, gz):
    d = _tiny_mnist_dir(tmp_path / "fm", gz=gz)
    train = data.load_dataset(f"idx:{d}", "train")
    test = data.load_dataset(f"fashion_mnist:{d}", "test")
    assert (len(train), len(test)) == (40, 20)
    assert train.image_shape == (28, 28, 1) and train.images.dtype == np.float32 and train.labels.dtype == np.int32
    assert test.stats == train.stats  # the test split is normalised with the training statistics
    assert test.num_classes == 10
    via_dir = data.load_dataset("fashion_mnist", "test", data_dir=d)
    np.testing.assert_array_equal(via_dir.images, test.images)
    sliced = data.load_dataset(str(d), "train[:10]")  # an existing directory path is read as IDX
    np.testing.assert_array_equal(sliced.images, train.images[:10])


def test_fashion_mnist_finds_sub_directory(tmp_path):
    _tiny_mnist_dir(tmp_path / "fashion_mnist")
    assert len(data.load_dataset("fashion_mnist", "test", data_dir=tmp_path)) == 20


def test_fashion_mnist_missing_dir_message(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"full Fashion-MNIST not found.*'embedded'"):
        data.load_dataset("fashion_mnist", "train", data_dir=tmp_path)
    d = _tiny_mnist_dir(tmp_path / "x")
    with pytest.raises(ValueError, match="splits 'train' and 'test', not 'valid'"):
        data.load_dataset(f"idx:{d}", "valid")


# ------------------------------------------------------------------------------------------------------ NPZ


def test_npz_single_set_and_keys(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8)
    y = np.arange(30) % 3
    np.savez(tmp_path / "a.npz", x=x, y=y)
    np.savez(tmp_path / "b.npz", images=x.astype(np.float32) / 255, labels=y, num_classes=5)
    a = data.load_dataset(str(tmp_path / "a.npz"), "train")
    b = data.load_dataset(f"npz:{tmp_path / 'b.npz'}", "all")
    assert a.image_shape == (8, 8, 3) and len(a.mean) == 3 and a.num_classes == 3 and b.num_classes == 5
    np.testing.assert_allclose(a.images, b.images, atol=1e-5)
    np.testing.assert_allclose(a.images.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(a.images.std(axis=(0, 1, 2)), 1, atol=1e-4)
    with pytest.raises(ValueError, match=r"single set .* not 'test'"):
        data.load_dataset(str(tmp_path / "a.npz"), "test")


def test_npz_per_split(tmp_path):
    rng = np.random.default_rng(2)
    x_train, x_test = rng.integers(0, 256, (20, 6, 6), dtype=np.uint8), rng.integers(0, 256, (8, 6, 6), dtype=np.uint8)
    np.savez_compressed(tmp_path / "s.npz", x_train=x_train, y_train=np.arange(20) % 4, x_test=x_test,
                        y_test=np.arange(8) % 4)
    train = data.load_npz(tmp_path / "s.npz", "train")
    test = data.load_npz(tmp_path / "s.npz", "test[50%:]")
    assert len(test) == 4 and test.stats == train.stats and test.image_shape == (6, 6, 1)
    np.testing.assert_array_equal(test.labels, (np.arange(8) % 4)[4:])
    with pytest.raises(ValueError, match=r"no split 'valid'; it has 'test', 'train'"):
        data.load_npz(tmp_path / "s.npz", "valid")


def test_npz_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        data.load_dataset(str(tmp_path / "none.npz"))
    np.savez(tmp_path / "nchw.npz", x=np.zeros((4, 3, 8, 8), np.uint8), y=np.zeros(4, int))
    with pytest.raises(ValueError, match="looks like NCHW"):
        data.load_dataset(str(tmp_path / "nchw.npz"))
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 8, 8), np.uint8), y=np.zeros(0, int))
    with pytest.raises(ValueError, match="empty data"):
        data.load_dataset(str(tmp_path / "empty.npz"))
    np.savez(tmp_path / "mismatch.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.zeros(3, int))
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        data.load_dataset(str(tmp_path / "mismatch.npz"))
    np.savez(tmp_path / "keys.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="expected 'x' and 'y'"):
        data.load_dataset(str(tmp_path / "keys.npz"))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        data.load_dataset(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "flat.npz", x=np.zeros((4, 64), np.uint8), y=np.zeros(4, int))
    with pytest.raises(ValueError, match=r"shape \(4, 64\); expected \(N, H, W\)"):
        data.load_dataset(str(tmp_path / "flat.npz"))


def test_from_arrays_errors():
    x = np.zeros((4, 5, 5), np.uint8)
    with pytest.raises(ValueError, match="expected \\(N,\\) integers"):
        data.from_arrays(x, np.zeros(4, np.float32), name="t")
    with pytest.raises(ValueError, match="labels must be >= 0"):
        data.from_arrays(x, -np.ones(4, int), name="t")
    with pytest.raises(ValueError, match="num_classes=2"):
        data.from_arrays(x, np.full(4, 3), name="t", num_classes=2)
    with pytest.raises(ValueError, match="stats need 1 means"):
        data.from_arrays(x, np.zeros(4, int), name="t", stats=((0.1, 0.2), (1.0, 1.0)))
    with pytest.raises(ValueError, match="bad split"):
        arrays.parse_split("train[a:b]")


def test_unknown_and_empty_names():
    with pytest.raises(ValueError, match=r"unknown dataset 'no_such_data'.*allowed: 'embedded'"):
        data.load_dataset("no_such_data")
    with pytest.raises(ValueError, match="non-empty string"):
        data.load_dataset("")


# ------------------------------------------------------------------------------------------------------ embedded


def test_embedded_shapes_balance_and_licence():
    train, test = data.load_dataset(), data.load_dataset("fashion_mnist_small", "test")
    assert train.name == "embedded:train" and len(train) == 6000 and len(test) == 1000
    assert train.image_shape == test.image_shape == (28, 28, 1) and train.num_classes == 10
    assert train.images.dtype == np.float32 and train.labels.dtype == np.int32
    assert list(train.class_counts()) == [600] * 10 and list(test.class_counts()) == [100] * 10
    assert test.stats == train.stats
    assert abs(float(train.images.mean())) < 1e-3 and abs(float(train.images.std()) - 1) < 1e-3
    assert not train.images.flags.writeable  # frozen means frozen
    npz = data.embedded_path()
    assert npz.is_file() and len(npz.read_bytes()) < 5_000_000
    licence = data.embedded_path(local.EMBEDDED_LICENCE).read_text()
    assert "Zalando" in licence and "Expat" in licence
    assert "zalandoresearch/fashion-mnist" in data.embedded_path("README.md").read_text()


def test_pad_to_32():
    raw = data.load_dataset("embedded", "test[:50]")
    padded = data.load_dataset("embedded", "test[:50]", image_size=32)
    assert padded.image_shape == (32, 32, 1) and padded.stats == raw.stats
    np.testing.assert_array_equal(padded.images[:, 2:30, 2:30], raw.images)
    border = np.concatenate([padded.images[:, :2].ravel(), padded.images[:, 30:].ravel(),
                             padded.images[:, :, :2].ravel(), padded.images[:, :, 30:].ravel()])
    np.testing.assert_array_equal(border, np.full_like(border, padded.pad_value[0]))
    with pytest.raises(ValueError, match="image_size=20 is smaller than the images \\(28x28\\)"):
        data.load_dataset("embedded", "test", image_size=20)


def test_make_embedded_is_deterministic(tmp_path):
    src = _tiny_mnist_dir(tmp_path / "src", n_train=60, n_test=30)
    a = make_embedded.build(src, tmp_path / "a", train_per_class=3, test_per_class=2)
    b = make_embedded.build(src, tmp_path / "b", train_per_class=3, test_per_class=2)
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a" / "COPYRIGHT").read_text() == "test licence\n"
    train = data.load_npz(a, "train")
    assert len(train) == 30 and list(train.class_counts()) == [3] * 10
    with np.load(a) as z:
        raw_train = data.read_idx(src / "train-images-idx3-ubyte.gz")
        np.testing.assert_array_equal(z["x_train"], raw_train[z["index_train"]])
        assert np.all(np.diff(z["index_train"]) > 0)
    with pytest.raises(ValueError, match="class 0 has only 6 examples, fewer than 7"):
        make_embedded.build(src, tmp_path / "c", train_per_class=7, test_per_class=5)
    nolic = _tiny_mnist_dir(tmp_path / "nolic", licence=False)
    with pytest.raises(FileNotFoundError, match="licence"):
        make_embedded.build(nolic, tmp_path / "d", train_per_class=1, test_per_class=1)


def test_embedded_matches_the_full_fashion_mnist(shared_data):
    """The shipped subset is what make_embedded selects from the full IDX files (arrays; bytes are checked by
    ``python -m jaxnas.data.make_embedded --check``)."""
    source = shared_data / "fashion_mnist"
    with data.embedded_path().open("rb") as f, np.load(f) as z:
        for split, per_class in (("train", 600), ("test", 100)):
            images, labels = idx.read_idx_split(source, split)
            chosen = make_embedded.first_per_class(labels, per_class, 10)
            np.testing.assert_array_equal(z[f"index_{split}"], chosen)
            np.testing.assert_array_equal(z[f"x_{split}"], images[chosen])
            np.testing.assert_array_equal(z[f"y_{split}"], labels[chosen])
    assert (source / "COPYRIGHT").read_bytes() == data.embedded_path("COPYRIGHT").read_bytes()
    full = data.load_dataset(f"fashion_mnist:{source}", "test[:100]", image_size=32)
    assert full.image_shape == (32, 32, 1) and full.num_classes == 10
