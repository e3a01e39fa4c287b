"""The TFDS front door, offline: tfds.testing.mock_data, and the messages when data cannot be had."""

from __future__ import annotations

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from jaxnas import data  # noqa: E402


def test_mock_cifar10_and_mnist():
    with tfds.testing.mock_data(num_examples=24):
        c10 = data.load_dataset("cifar10", "train")
        mnist = data.load_tfds("mnist", "test", image_size=32)
        forced = data.load_dataset("tfds:mnist", "train", stats=mnist.stats)
    assert c10.name == "cifar10:train" and c10.image_shape == (32, 32, 3) and len(c10) == 24
    assert c10.num_classes == 10 and c10.labels.dtype == np.int32 and c10.images.dtype == np.float32
    assert c10.labels.min() >= 0 and c10.labels.max() < 10 and len(c10.mean) == 3
    assert mnist.image_shape == (32, 32, 1)
    assert forced.stats == mnist.stats and forced.image_shape == (28, 28, 1)
    w, a = data.split_for_search(c10, 0)
    assert len(w) + len(a) == 24


def test_unknown_tfds_name():
    with pytest.raises(ValueError, match="unknown dataset 'surely_not_a_dataset'"):
        data.load_tfds("surely_not_a_dataset", "train")
    with pytest.raises(ValueError, match="unknown dataset 'surely_not_a_dataset'"):
        data.load_dataset("tfds:surely_not_a_dataset", "train")


def test_not_an_image_classification_set():
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(ValueError, match="not an image classification set"):
            data.load_tfds("imdb_reviews", "train")


def test_not_prepared_and_no_download(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"TFDS dataset 'cifar10' is not prepared in .* download=False.*"
                                                r"pip install tensorflow"):
        data.load_dataset("cifar10", "train", data_dir=tmp_path, download=False)


@pytest.mark.parametrize("failure", [ImportError("No module named 'tensorflow'", name="tensorflow"),
                                     ConnectionError("network unreachable")])
def test_prepare_failure_names_the_dataset_and_the_fix(tmp_path, monkeypatch, failure):
    def fail(self, *args, **kwargs):
        raise failure

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fail)
    with pytest.raises(data.DatasetUnavailableError) as info:
        data.load_tfds("cifar10", "train", data_dir=tmp_path)
    msg = str(info.value)
    assert "'cifar10' is not prepared" in msg and "pip install tensorflow" in msg and str(tmp_path) in msg
    assert ("tensorflow" in msg) if isinstance(failure, ImportError) else ("network unreachable" in msg)


def test_image_decoding_without_pillow_says_what_to_install(monkeypatch):
    from jaxnas.data import tfds_source

    def no_decoder(*args, **kwargs):
        raise ImportError("Decoding images with NumPy requires either OpenCV or PIL.")

    monkeypatch.setattr(tfds_source, "_read_all", no_decoder)
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(data.DatasetUnavailableError, match=r"'mnist': decoding its images needs Pillow"):
            data.load_tfds("mnist", "train")
