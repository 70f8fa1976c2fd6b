"""Natural photos that ship inside installed packages, and patch sets cut from them.

Nothing is downloaded: scikit-image's bundled images, scikit-learn's sample images and
matplotlib's sample data are read from site-packages.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: name -> (loader, is colour). Loaders return uint8 arrays (H, W, 3) or (H, W).
PHOTOS = {
    "astronaut": ("skimage", True),
    "chelsea": ("skimage", True),
    "coffee": ("skimage", True),
    "rocket": ("skimage", True),
    "china": ("sklearn", True),
    "flower": ("sklearn", True),
    "grace_hopper": ("matplotlib", True),
    "camera": ("skimage", False),
    "moon": ("skimage", False),
    "coins": ("skimage", False),
    "brick": ("skimage", False),
    "grass": ("skimage", False),
    "gravel": ("skimage", False),
}
# foolbox's 20 bundled ImageNet photos (read as files; skipped when foolbox is not installed).
from verify.data.foolbox_data import foolbox_available as _fb_ok  # noqa: E402

if _fb_ok():
    PHOTOS.update({f"imagenet_{i:02d}": ("foolbox", True) for i in range(20)})

COLOUR_PHOTOS = tuple(name for name, (_, colour) in PHOTOS.items() if colour)
#: COLOUR_PHOTOS includes foolbox's photos when foolbox is installed (same tuple).
ALL_COLOUR_PHOTOS = COLOUR_PHOTOS


@lru_cache(maxsize=None)
def _raw(name: str) -> np.ndarray:
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose one of {sorted(PHOTOS)}")
    source, _ = PHOTOS[name]
    if source == "skimage":
        import skimage.data

        img = getattr(skimage.data, name)()
    elif source == "sklearn":
        from sklearn.datasets import load_sample_image

        img = load_sample_image(f"{name}.jpg")
    elif source == "foolbox":
        from verify.data.foolbox_data import foolbox_image

        img = foolbox_image("imagenet", int(name.split("_")[1]))[0]
    else:
        import matplotlib.cbook
        from PIL import Image

        with matplotlib.cbook.get_sample_data(f"{name}.jpg") as fh:
            img = np.asarray(Image.open(fh).convert("RGB"))
    img = np.asarray(img)
    img.setflags(write=False)
    return img


def load_photo(name: str, size: int | None = None, grey: bool = False) -> np.ndarray:
    """A bundled photo as float64 in [0, 1], channels first: (3, H, W), or (1, H, W) if grey.

    Parameters
    ----------
    name : one of ``PHOTOS``
    size : if given, the central ``size x size`` crop (refused if the photo is smaller).
    grey : convert to luminance (ITU-R 601 weights); greyscale photos are always (1, H, W).
    """
    img = _raw(name).astype(np.float64) / 255.0
    if img.ndim == 2:
        img = img[None]
    else:
        img = img[..., :3].transpose(2, 0, 1)
        if grey:
            img = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]
    if size is not None:
        h, w = img.shape[1:]
        if size > min(h, w):
            raise ValueError(f"photo {name!r} is {h}x{w}, smaller than the crop {size}")
        top, left = (h - size) // 2, (w - size) // 2
        img = img[:, top:top + size, left:left + size]
    return np.ascontiguousarray(img)


def natural_patches(n: int | None = None, size: int = 32, seed: int = 0,
                    photos: tuple[str, ...] = COLOUR_PHOTOS) -> np.ndarray:
    """Non-overlapping ``size x size`` colour patches from the bundled colour photos.

    Returns float64 array (N, 3, size, size) in [0, 1]; all patches if ``n`` is None, else a
    seeded random subset of ``n`` (deterministic for a given seed).
    """
    patches = []
    for name in photos:
        img = load_photo(name)
        _, h, w = img.shape
        hh, ww = h // size * size, w // size * size
        p = img[:, :hh, :ww].reshape(3, hh // size, size, ww // size, size)
        patches.append(p.transpose(1, 3, 0, 2, 4).reshape(-1, 3, size, size))
    allp = np.concatenate(patches)
    if n is None:
        return allp
    if n > len(allp):
        raise ValueError(f"asked for {n} patches but only {len(allp)} are available")
    idx = np.random.default_rng(seed).choice(len(allp), size=n, replace=False)
    return allp[np.sort(idx)]
