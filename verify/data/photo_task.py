"""A labelled surrogate task on the bundled photos: which photo did this crop come from?

Nothing is downloaded: the crops are cut from :data:`verify.data.images.ALL_COLOUR_PHOTOS`
(scikit-image, scikit-learn, matplotlib and foolbox photos). Train and test crops come from
disjoint parts of every photo (the left 80 % of its width for training, the right 20 % for
testing), so test accuracy is not inflated by overlapping crops.

Options that change what the first layer can learn (see docs/theory/pairing.md):
``grey`` (luminance only: no colour-opponent filters possible) and ``whiten`` (ZCA whitening
fitted on the training crops: flat power spectrum, so filters are not dominated by the
low-frequency / colour directions of largest variance).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from verify.data.images import ALL_COLOUR_PHOTOS, load_photo


@dataclasses.dataclass(frozen=True)
class Whitener:
    """ZCA whitening ``x -> W (x - mean)`` with ``W = V diag((lambda + eps)^-1/2) V^T``.

    Notes
    -----
    For data covariance :math:`\\Sigma = V\\Lambda V^T`, the ZCA transform
    :math:`W = V(\\Lambda+\\varepsilon I)^{-1/2}V^T` gives
    :math:`\\operatorname{cov}(Wx) = \\Lambda(\\Lambda+\\varepsilon I)^{-1} \\preceq I`; it is the
    whitening transform closest to the identity, so whitened crops still look like images.
    """

    mean: np.ndarray
    matrix: np.ndarray
    eps: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        flat = x.reshape(len(x), -1).astype(np.float64)
        if flat.shape[1] != self.mean.size:
            raise ValueError(f"whitener was fitted on {self.mean.size}-value images, got shape "
                             f"{x.shape[1:]}")
        return ((flat - self.mean) @ self.matrix).reshape(x.shape).astype(np.float32)


def fit_zca(x: np.ndarray, eps: float = 1e-2) -> Whitener:
    """Fit ZCA whitening on images ``x`` (N, C, H, W); ``eps`` relative to the mean eigenvalue."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    if len(flat) < 2:
        raise ValueError("ZCA needs at least 2 images")
    mean = flat.mean(axis=0)
    cov = np.cov(flat - mean, rowvar=False)
    lam, vec = np.linalg.eigh(cov)
    lam = np.clip(lam, 0.0, None)
    reg = eps * float(lam.mean())
    matrix = (vec / np.sqrt(lam + reg)) @ vec.T
    return Whitener(mean=mean, matrix=matrix, eps=reg)


def _crops(img: np.ndarray, n: int, size: int, left: int, right: int,
           rng: np.random.Generator) -> np.ndarray:
    _, h, _ = img.shape
    if right - left < size or h < size:
        raise ValueError(f"region {right - left}x{h} is smaller than the crop size {size}")
    ys = rng.integers(0, h - size + 1, n)
    xs = rng.integers(left, right - size + 1, n)
    return np.stack([img[:, y:y + size, x:x + size] for y, x in zip(ys, xs)])


def photo_task(n_train: int = 20000, n_test: int = 4000, size: int = 28, grey: bool = True,
               whiten: bool = False, seed: int = 0, photos: tuple[str, ...] = ALL_COLOUR_PHOTOS,
               test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Crops of the bundled photos labelled by their photo.

    Parameters
    ----------
    n_train, n_test : crops per split (spread evenly over the photos).
    size : crop side.
    grey : luminance only (1 channel) instead of RGB.
    whiten : ZCA-whiten with a transform fitted on the training crops.
    seed : crop positions.
    photos : names from ``PHOTOS``; class ``i`` is ``photos[i]``.
    test_fraction : right-hand fraction of each photo's width reserved for test crops.

    Returns
    -------
    x_train, y_train, x_test, y_test
        float32 (N, C, size, size) in [0, 1] (or whitened), int64 labels.
    """
    if not photos:
        raise ValueError("photo_task needs at least one photo")
    if n_train < len(photos) or n_test < len(photos):
        raise ValueError(f"need at least one crop per photo ({len(photos)}) in each split")
    rng = np.random.default_rng(seed)
    xtr, ytr, xte, yte = [], [], [], []
    for label, name in enumerate(photos):
        img = load_photo(name, grey=grey)
        w = img.shape[2]
        cut = int(round(w * (1 - test_fraction)))
        k_tr = n_train // len(photos) + (label < n_train % len(photos))
        k_te = n_test // len(photos) + (label < n_test % len(photos))
        xtr.append(_crops(img, k_tr, size, 0, cut, rng))
        xte.append(_crops(img, k_te, size, cut, w, rng))
        ytr += [label] * k_tr
        yte += [label] * k_te
    x_train = np.concatenate(xtr).astype(np.float32)
    x_test = np.concatenate(xte).astype(np.float32)
    if whiten:
        zca = fit_zca(x_train)
        x_train, x_test = zca(x_train), zca(x_test)
    return x_train, np.array(ytr, np.int64), x_test, np.array(yte, np.int64)
