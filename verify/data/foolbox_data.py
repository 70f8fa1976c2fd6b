"""The sample images that ship inside the foolbox wheel (``foolbox/data``), read as files.

foolbox is never imported (it would pull in its attack machinery): the package folder is
located with :func:`importlib.util.find_spec` and the PNG/JPEG files are read with Pillow.
The folder holds 20 ImageNet photos (``imagenet_NN_label.jpg``, 512 px or more), 20 CIFAR-10,
20 CIFAR-100, 20 MNIST and 20 Fashion-MNIST test images, each named ``<set>_<NN>_<label>``.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

SETS = ("imagenet", "cifar10", "cifar100", "mnist", "fashionMNIST")


def foolbox_data_dir() -> Path:
    """The ``foolbox/data`` folder of the installed wheel.

    Raises
    ------
    FileNotFoundError
        foolbox is not installed, or its wheel lacks the data folder.
    """
    spec = importlib.util.find_spec("foolbox")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("foolbox is not installed (pip install foolbox); its wheel ships "
                                "the sample images read here")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    if not folder.is_dir():
        raise FileNotFoundError(f"foolbox is installed but {folder} does not exist")
    return folder


def foolbox_available() -> bool:
    """Whether the foolbox sample images can be read."""
    try:
        foolbox_data_dir()
    except FileNotFoundError:
        return False
    return True


@lru_cache(maxsize=None)
def foolbox_files(kind: str) -> tuple[Path, ...]:
    """Sorted files of one set (``imagenet``, ``cifar10``, ...)."""
    if kind not in SETS:
        raise ValueError(f"unknown foolbox image set {kind!r}; choose one of {SETS}")
    return tuple(sorted(p for p in foolbox_data_dir().iterdir()
                        if p.name.startswith(kind + "_")))


def foolbox_image(kind: str, index: int) -> tuple[np.ndarray, int]:
    """One sample image as uint8 (H, W, 3) or (H, W), and its class label from the file name."""
    from PIL import Image

    files = foolbox_files(kind)
    if not 0 <= index < len(files):
        raise ValueError(f"foolbox set {kind!r} has {len(files)} images; index {index} is out of range")
    path = files[index]
    with Image.open(path) as im:
        img = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
    return img, int(path.stem.rsplit("_", 1)[1])
