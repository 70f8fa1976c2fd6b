"""Fashion-MNIST from the files of Debian's ``dataset-fashion-mnist`` package (no download).

Install with ``apt-get install dataset-fashion-mnist``; the IDX files land in
``/usr/share/datasets/fashion-mnist``. Another folder holding the same four files (gzipped or
not) can be given with ``root=`` or the environment variable ``CRELU_FASHION_MNIST``.

Notes
-----
IDX format (LeCun et al.): big-endian header ``0x00 0x00 <dtype> <ndim>``, then ``ndim``
uint32 sizes, then the data. Images: dtype ``0x08`` (uint8), ndim 3, ``(N, 28, 28)``.
Labels: uint8, ndim 1, ``(N,)``, values 0-9.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot")
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_INSTALL_HINT = ("Fashion-MNIST is read from the files of Debian's package dataset-fashion-mnist "
                 "(sudo apt-get install dataset-fashion-mnist, which installs them in "
                 f"{DEFAULT_ROOT}); or pass root= / set CRELU_FASHION_MNIST to a folder holding "
                 "train-images-idx3-ubyte[.gz] and the three other IDX files.")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where they were looked for (the message says how to get them)."""


def fashion_mnist_root(root: str | os.PathLike | None = None) -> Path:
    """The folder the Fashion-MNIST files are read from (``root``, env, or Debian's)."""
    if root is None:
        root = os.environ.get("CRELU_FASHION_MNIST") or DEFAULT_ROOT
    return Path(root)


def fashion_mnist_available(root: str | os.PathLike | None = None) -> bool:
    """Whether all four IDX files are present."""
    try:
        for split in _FILES:
            for stem in _FILES[split]:
                _find(fashion_mnist_root(root), stem)
    except DatasetNotFoundError:
        return False
    return True


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    if not root.is_dir():
        raise DatasetNotFoundError(f"Fashion-MNIST folder {root} does not exist. {_INSTALL_HINT}")
    raise DatasetNotFoundError(f"{stem}[.gz] is missing from {root}. {_INSTALL_HINT}")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzipped if its name ends in .gz) into a numpy array.

    Raises
    ------
    ValueError
        Bad magic number, unsupported dtype, or a data size that disagrees with the header
        (truncated or corrupt file).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path}: cannot be read as an IDX file ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4]!r})")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError(f"{path}: unsupported IDX data type 0x{raw[2]:02x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(dtypes[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes of data) but the "
                         f"file holds {len(raw) - header} bytes (truncated or corrupt)")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def load_fashion_mnist(split: str = "train", root: str | os.PathLike | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images and labels.

    Parameters
    ----------
    split : {"train", "test"}
        60,000 training or 10,000 test images.
    root : folder with the IDX files; default ``$CRELU_FASHION_MNIST`` or Debian's folder.

    Returns
    -------
    images : float32 array (N, 1, 28, 28) in [0, 1]
    labels : int64 array (N,) in 0..9

    Raises
    ------
    DatasetNotFoundError
        The files are missing (the message says how to install them).
    ValueError
        Unknown split; corrupt files; images not 28x28; labels out of range or not matching
        the image count.
    """
    if split not in _FILES:
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
    folder = fashion_mnist_root(root)
    img_path, lab_path = (_find(folder, stem) for stem in _FILES[split])
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{img_path}: expected images of shape (N, 28, 28), got {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{lab_path}: {labels.shape} labels for {len(images)} images")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{lab_path}: labels must be 0..9, found {int(labels.max())}")
    return (images.astype(np.float32)[:, None] / np.float32(255.0), labels.astype(np.int64))
