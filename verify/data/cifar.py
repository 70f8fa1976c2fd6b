"""CIFAR-10 in its standard python format, read from a folder the user gives (no download).

The folder is the unpacked ``cifar-10-batches-py``: ``data_batch_1`` ... ``data_batch_5`` and
``test_batch``, each a pickled dict with ``b"data"`` (uint8, ``(N, 3072)``, channel-major
32x32 RGB) and ``b"labels"`` (N ints in 0..9).

Notes
-----
The format is a pickle, so it is read with a restricted unpickler that only rebuilds dicts,
lists, strings, bytes and numpy arrays: a file that asks for any other callable is refused
instead of being executed.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from verify.data.fashion_mnist import DatasetNotFoundError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("__builtin__", "object"), ("builtins", "object"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR batch holds "
                                         "only dicts, lists, bytes and numpy arrays")
        return super().find_class(module, name)


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python-format batch file.

    Returns
    -------
    images : uint8 array (N, 3, 32, 32)
    labels : int64 array (N,)

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Not a pickle of the expected dict, images not 3x32x32, labels out of 0..9 or not one
        per image.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"CIFAR-10 batch {path} does not exist")
    try:
        with open(path, "rb") as fh:
            obj = _SafeUnpickler(io.BytesIO(fh.read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as exc:
        raise ValueError(f"{path}: not a CIFAR-10 python-format batch ({exc})") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    obj = {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}
    if "data" not in obj or "labels" not in obj:
        raise ValueError(f"{path}: the dict lacks 'data' or 'labels' (keys: {sorted(obj)})")
    data = np.asarray(obj["data"])
    labels = np.asarray(obj["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: images must be (N, 3072) = 3x32x32 flattened, got {data.shape}")
    if data.dtype != np.uint8:
        raise ValueError(f"{path}: image data must be uint8, got {data.dtype}")
    if labels.shape != (len(data),):
        raise ValueError(f"{path}: {labels.shape} labels for {len(data)} images")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels must be in 0..9, found {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(root: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 from the unpacked ``cifar-10-batches-py`` folder ``root``.

    Parameters
    ----------
    root : folder with ``data_batch_1..5`` and ``test_batch``
    split : {"train", "test"}

    Returns
    -------
    images : float32 array (N, 3, 32, 32) in [0, 1]
    labels : int64 array (N,)

    Raises
    ------
    DatasetNotFoundError
        ``root`` or one of the batch files is missing.
    ValueError
        Unknown split or a corrupt batch (see :func:`read_cifar_batch`).
    """
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"CIFAR-10 folder {root} does not exist; pass the unpacked cifar-10-batches-py folder "
            "(nothing is downloaded)")
    names = TRAIN_BATCHES if split == "train" else TEST_BATCHES
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise DatasetNotFoundError(f"CIFAR-10 folder {root} lacks {missing}")
    parts = [read_cifar_batch(root / n) for n in names]
    images = np.concatenate([p[0] for p in parts]).astype(np.float32) / np.float32(255.0)
    return images, np.concatenate([p[1] for p in parts])
