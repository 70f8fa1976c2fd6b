"""Data loaders: Fashion-MNIST (IDX), CIFAR-10 (python format), the photo task, foolbox photos."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from verify.data import (
    DatasetNotFoundError,
    fashion_mnist_available,
    fit_zca,
    foolbox_available,
    load_cifar10,
    load_fashion_mnist,
    load_photo,
    photo_task,
    read_cifar_batch,
    read_idx,
)


# ---------------------------------------------------------------- IDX / Fashion-MNIST
def _idx_bytes(array: np.ndarray) -> bytes:
    assert array.dtype == np.uint8
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape)
    return header + array.tobytes()


def _write_fashion(folder, n=5, size=28, gz=True, labels=None):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    labs = np.arange(n, dtype=np.uint8) % 10 if labels is None else labels
    for prefix in ("train", "t10k"):
        for kind, arr in (("images-idx3", imgs), ("labels-idx1", labs)):
            name = f"{prefix}-{kind}-ubyte"
            data = _idx_bytes(arr)
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return imgs, labs


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_loader_reads_idx_files(tmp_path, gz):
    imgs, labs = _write_fashion(tmp_path, gz=gz)
    x, y = load_fashion_mnist("train", root=tmp_path)
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0] * 255, imgs, atol=1e-4)
    np.testing.assert_array_equal(y, labs)
    assert fashion_mnist_available(tmp_path)


def test_fashion_missing_folder_says_how_to_install(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train", root=tmp_path / "nowhere")
    assert not fashion_mnist_available(tmp_path / "nowhere")


def test_fashion_missing_file(tmp_path):
    _write_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_fashion_mnist("test", root=tmp_path)


def test_fashion_truncated_file_is_refused(tmp_path):
    _write_fashion(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_fashion_mnist("train", root=tmp_path)


def test_fashion_corrupt_gzip_and_magic_are_refused(tmp_path):
    bad = tmp_path / "x.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot be read"):
        read_idx(bad)
    raw = tmp_path / "x"
    raw.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="magic"):
        read_idx(raw)


def test_fashion_wrong_image_shape_is_refused(tmp_path):
    _write_fashion(tmp_path, size=32)
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        load_fashion_mnist("train", root=tmp_path)


def test_fashion_bad_labels_and_split(tmp_path):
    _write_fashion(tmp_path, labels=np.array([0, 1, 2, 3, 12], np.uint8))
    with pytest.raises(ValueError, match="0..9"):
        load_fashion_mnist("train", root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("validation", root=tmp_path)


@pytest.mark.skipif(not fashion_mnist_available(), reason="dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_files():
    x, y = load_fashion_mnist("test")
    assert x.shape == (10000, 1, 28, 28)
    assert np.bincount(y).tolist() == [1000] * 10
    assert 0.0 <= x.min() and x.max() <= 1.0


# ---------------------------------------------------------------- CIFAR-10 python format
def _write_cifar_batch(path, images: np.ndarray, labels, **extra):
    """The standard format: dict with bytes keys, data (N, 3072) uint8 channel-major."""
    obj = {b"batch_label": b"test", b"labels": list(labels),
           b"data": images.reshape(len(images), -1), b"filenames": [b"a.png"] * len(images)}
    obj.update(extra)
    path.write_bytes(pickle.dumps(obj, protocol=2))


def _cifar_folder(tmp_path, n=4):
    rng = np.random.default_rng(1)
    data = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        imgs = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        _write_cifar_batch(tmp_path / name, imgs, labels)
        data[name] = (imgs, labels)
    return data


def test_cifar_loader_reads_the_python_format(tmp_path):
    data = _cifar_folder(tmp_path)
    x, y = load_cifar10(tmp_path, "train")
    assert x.shape == (20, 3, 32, 32) and x.dtype == np.float32
    np.testing.assert_allclose(x[:4] * 255, data["data_batch_1"][0], atol=1e-4)
    np.testing.assert_array_equal(y[-4:], data["data_batch_5"][1])
    xt, yt = load_cifar10(tmp_path, "test")
    assert xt.shape == (4, 3, 32, 32)
    # channel-major layout: the first 1024 values of a row are the red plane
    imgs, _ = read_cifar_batch(tmp_path / "test_batch")
    row = imgs.reshape(4, -1)[0]
    np.testing.assert_array_equal(row[:1024].reshape(32, 32), imgs[0, 0])


def test_cifar_missing_folder_and_batch(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_cifar10(tmp_path / "nowhere")
    _cifar_folder(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match="data_batch_3"):
        load_cifar10(tmp_path, "train")


def test_cifar_corrupt_file_is_refused(tmp_path):
    (tmp_path / "b").write_bytes(b"\x80\x02garbage that is not a pickle")
    with pytest.raises(ValueError, match="not a CIFAR-10"):
        read_cifar_batch(tmp_path / "b")


def test_cifar_wrong_image_shape_is_refused(tmp_path):
    obj = {b"labels": [0, 1], b"data": np.zeros((2, 3000), np.uint8)}
    (tmp_path / "b").write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(ValueError, match="3x32x32"):
        read_cifar_batch(tmp_path / "b")


def test_cifar_label_count_and_range_are_checked(tmp_path):
    imgs = np.zeros((2, 3, 32, 32), np.uint8)
    _write_cifar_batch(tmp_path / "b", imgs, [0])
    with pytest.raises(ValueError, match="labels for 2 images"):
        read_cifar_batch(tmp_path / "b")
    _write_cifar_batch(tmp_path / "c", imgs, [0, 10])
    with pytest.raises(ValueError, match="0..9"):
        read_cifar_batch(tmp_path / "c")


class _Evil:
    def __reduce__(self):
        import os

        return (os.getcwd, ())


def test_cifar_pickle_with_code_is_refused_not_run(tmp_path):
    (tmp_path / "b").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": []}, protocol=2))
    with pytest.raises(ValueError, match="refusing to load"):
        read_cifar_batch(tmp_path / "b")


# ---------------------------------------------------------------- photo task, foolbox
def test_photo_task_is_deterministic_and_labelled():
    a = photo_task(60, 30, size=16, grey=True, seed=3, photos=("astronaut", "coffee", "chelsea"))
    b = photo_task(60, 30, size=16, grey=True, seed=3, photos=("astronaut", "coffee", "chelsea"))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    xtr, ytr, xte, yte = a
    assert xtr.shape == (60, 1, 16, 16) and xte.shape == (30, 1, 16, 16)
    assert np.bincount(ytr).tolist() == [20, 20, 20] and np.bincount(yte).tolist() == [10] * 3
    colour = photo_task(6, 3, size=16, grey=False, photos=("astronaut", "coffee", "chelsea"))
    assert colour[0].shape == (6, 3, 16, 16)


def test_photo_task_refuses_bad_requests():
    with pytest.raises(ValueError, match="at least one crop per photo"):
        photo_task(1, 1, photos=("astronaut", "coffee"))
    with pytest.raises(ValueError, match="smaller than the crop"):
        photo_task(2, 2, size=4000, photos=("astronaut",))


def test_zca_whitening_flattens_the_covariance():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4000, 1, 3, 3)) * np.linspace(0.1, 3, 9).reshape(1, 1, 3, 3))
    zca = fit_zca(x, eps=1e-6)
    cov = np.cov(zca(x).reshape(4000, -1), rowvar=False)
    # cov(Wx) = V Lambda (Lambda + eps)^-1 V^T on the training data itself (float32 output)
    lam, vec = np.linalg.eigh(np.cov(x.reshape(4000, -1), rowvar=False))
    expected = (vec * (lam / (lam + zca.eps))) @ vec.T
    np.testing.assert_allclose(cov, expected, atol=1e-5)
    with pytest.raises(ValueError, match="fitted on"):
        zca(np.zeros((2, 1, 4, 4)))


@pytest.mark.skipif(not foolbox_available(), reason="foolbox not installed")
def test_foolbox_photos_are_in_the_photo_list():
    img = load_photo("imagenet_00", size=64)
    assert img.shape == (3, 64, 64) and 0 <= img.min() and img.max() <= 1
