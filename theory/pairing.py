"""Pairing filters (Shang et al. 2016, Sec. 2.1) and the random baselines to compare with.

Notes
-----
Flatten each filter $w_i$ of a layer over its input channels and kernel window and
scale it to unit Euclidean norm, $\\phi_i = w_i / \\|w_i\\|_2$ (no mean removal). The
*pairing filter* of $i$ and its cosine similarity are

$$
\\operatorname{pair}(i) = \\operatorname*{argmin}_{j \\ne i} \\langle \\phi_i, \\phi_j \\rangle,
\\qquad \\mu_i = \\langle \\phi_i, \\phi_{\\operatorname{pair}(i)} \\rangle \\in [-1, 1].
$$

$\\mu_i = -1$ exactly when the negative of filter $i$ is (up to scale) also in the
bank: the filters come in opposite-phase pairs. For a bank of $n$ i.i.d. Gaussian
filters in $d$ dimensions, $\\mu_i$ is the minimum of $n-1$ nearly
independent cosines of variance $1/d$, so the baseline is negative, with mean close to
$-\\sqrt{2 \\ln(n-1)/d}$ for large $d$ (the maximum of Gaussians); it is
computed here by Monte Carlo (`random_pairing_baseline`), not from that rule of thumb.

`sign_flip_baseline` is our stricter baseline: the same bank with the sign of each
filter flipped at random. It keeps the subspace, spectrum and smoothness of the learned
filters (smooth or low-rank filters pair more often by chance than i.i.d. ones) and removes
only the dependence between signs and directions that pairing is about; its tail
probability is an exact randomisation-test p-value for sign-symmetric banks.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch

#: Histogram bin edges on [-1, 1] used by the baselines (40 bins of width 0.05).
BIN_EDGES = np.linspace(-1.0, 1.0, 41)


@dataclasses.dataclass(frozen=True)
class Pairing:
    """Per-filter pairing of one layer.

    Attributes
    ----------
    mu : numpy.ndarray, shape (K,)
        Cosine similarity of each filter with its pairing filter, in [-1, 1].
    pair : numpy.ndarray of int, shape (K,)
        Index of the pairing filter (`pair[i] != i`).
    n_filters : int
    dim : int
        Flattened filter dimension `C * kh * kw`.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import pairing
    >>> v = np.random.default_rng(0).standard_normal((4, 3, 3, 3))
    >>> p = pairing(np.concatenate([v, -2.0 * v]))          # every filter with its negative
    >>> p.n_filters, p.dim, p.pair.tolist()
    (8, 27, [4, 5, 6, 7, 0, 1, 2, 3])
    >>> np.round(p.mu, 12).tolist()
    [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0]
    """

    mu: np.ndarray
    pair: np.ndarray
    n_filters: int
    dim: int

    @property
    def mean(self) -> float:
        """Mean of $\\mu$ over the filters.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import pairing
        >>> rng = np.random.default_rng(0)
        >>> v = rng.standard_normal((8, 27))
        >>> round(pairing(np.concatenate([v, -v])).mean, 12)     # perfectly paired bank
        -1.0
        >>> round(pairing(rng.standard_normal((16, 27))).mean, 3)   # i.i.d. filters: negative, > -1
        -0.307
        """
        return float(self.mu.mean())

    def histogram(self, edges: np.ndarray = BIN_EDGES) -> np.ndarray:
        """Density histogram of $\\mu$ on `edges` (integrates to 1).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import pairing
        >>> p = pairing(np.random.default_rng(0).standard_normal((32, 27)))
        >>> hist = p.histogram()                                 # 40 bins of width 0.05 on [-1, 1]
        >>> hist.shape, round(float(hist.sum() * 0.05), 12)      # a density: integrates to 1
        ((40,), 1.0)
        >>> p.histogram(np.array([-1.0, 0.0, 1.0])).tolist()     # every mu_i is negative here
        [1.0, 0.0]
        """
        hist, _ = np.histogram(np.clip(self.mu, -1.0, 1.0), bins=edges, density=True)
        return hist


@dataclasses.dataclass(frozen=True)
class PairingBaseline:
    """Monte Carlo distribution of the pairing statistics of random banks.

    Attributes
    ----------
    mean : float
        Mean over repetitions of the bank-mean $\\bar\\mu$.
    interval : (float, float)
        Central `level` interval of the bank-mean $\\bar\\mu$ over repetitions: where
        the mean of one random bank of this shape falls with probability `level`.
    level : float
    bank_means : numpy.ndarray, shape (repetitions,)
        $\\bar\\mu$ of every random bank.
    edges, density : numpy.ndarray
        Histogram of all $\\mu_i$ pooled over repetitions (density, integrates to 1).
    mu_quantiles : dict
        Quantiles 0.01, 0.05, 0.5, 0.95, 0.99 of the pooled $\\mu_i$.
    n_filters, dim, repetitions, seed : int
    kind : str
        `"iid"` (i.i.d. N(0, 1) entries) or `"sign-flip"` (a given bank, random signs).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import pairing, random_pairing_baseline
    >>> base = random_pairing_baseline(16, (3, 3, 3), repetitions=50, seed=0)
    >>> base.kind, base.n_filters, base.dim, base.bank_means.shape
    ('iid', 16, 27, (50,))
    >>> lo, hi = base.interval
    >>> bool(lo <= base.mean <= hi), bool(hi < 0)
    (True, True)
    >>> v = np.random.default_rng(1).standard_normal((8, 3, 3, 3))
    >>> round(base.tail_probability(pairing(np.concatenate([v, -v])).mean), 6)   # 1 / 51
    0.019608
    """

    mean: float
    interval: tuple[float, float]
    level: float
    bank_means: np.ndarray
    edges: np.ndarray
    density: np.ndarray
    mu_quantiles: dict
    n_filters: int
    dim: int
    repetitions: int
    seed: int
    kind: str

    @property
    def sd(self) -> float:
        """Standard deviation of the bank-mean over repetitions.

        Examples
        --------
        >>> from theory import random_pairing_baseline
        >>> base = random_pairing_baseline(16, 27, repetitions=50, seed=0)
        >>> bool(0 < base.sd < 0.1)                              # the bank-mean varies little
        True
        """
        return float(self.bank_means.std(ddof=1)) if self.repetitions > 1 else 0.0

    def tail_probability(self, value: float) -> float:
        """Fraction of random banks whose mean $\\bar\\mu$ is `<= value` (with +1
        smoothing, so never 0: `(count + 1) / (repetitions + 1)`).

        Examples
        --------
        >>> from theory import random_pairing_baseline
        >>> base = random_pairing_baseline(16, 27, repetitions=99, seed=0)
        >>> base.tail_probability(-1.0)                          # (0 + 1) / (99 + 1): never 0
        0.01
        >>> base.tail_probability(0.0)                           # every random bank mean is below 0
        1.0
        """
        count = int((self.bank_means <= value).sum())
        return (count + 1) / (self.repetitions + 1)


def _as_bank(weight: np.ndarray | torch.Tensor) -> np.ndarray:
    """Validate and flatten a filter bank to float64 (K, d)."""
    if isinstance(weight, torch.Tensor):
        arr = weight.detach().cpu().to(torch.float64).numpy()
    elif isinstance(weight, np.ndarray):
        if weight.dtype.kind not in "fiu":
            raise TypeError(f"weight must be a real numeric array, got dtype {weight.dtype}")
        arr = weight.astype(np.float64)
    else:
        raise TypeError(f"weight must be a numpy array or torch tensor, got {type(weight).__name__}")
    if arr.ndim < 2:
        raise ValueError(f"weight must have shape (K, C, kh, kw) or (K, d); got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"weight is empty (shape {arr.shape})")
    if arr.shape[0] < 2:
        raise ValueError(f"pairing needs at least 2 filters; weight has {arr.shape[0]} "
                         f"(shape {arr.shape})")
    if not np.isfinite(arr).all():
        raise ValueError(f"weight contains {int((~np.isfinite(arr)).sum())} NaN or Inf value(s)")
    return arr.reshape(arr.shape[0], -1)


def normalise_filters(weight: np.ndarray | torch.Tensor) -> np.ndarray:
    """Flatten each filter and scale it to unit L2 norm (no mean removal): (K, d) float64.

    Raises
    ------
    ValueError
        Fewer than 2 filters, NaN/Inf, or an all-zero filter (its direction is undefined).

    Examples
    --------
    >>> import numpy as np
    >>> from theory.pairing import normalise_filters
    >>> phi = normalise_filters(np.random.default_rng(0).standard_normal((4, 3, 3, 3)))
    >>> phi.shape, bool(np.allclose(np.linalg.norm(phi, axis=1), 1.0))
    ((4, 27), True)
    >>> w = np.ones((2, 1, 2, 2))
    >>> w[1] = 0.0
    >>> try:
    ...     normalise_filters(w)
    ... except ValueError as err:
    ...     print(str(err).split(":")[0])
    filter(s) [1] are all zero
    """
    bank = _as_bank(weight)
    # each row is first divided by its largest |entry| (a direction does not depend on the
    # scale, and this keeps the squared norms away from overflow and underflow), then by
    # its norm, which then lies in [1, sqrt(d)]
    peak = np.abs(bank).max(axis=1)
    zero = np.flatnonzero(peak == 0)
    if zero.size:
        raise ValueError(f"filter(s) {zero.tolist()[:10]} are all zero: their direction, hence "
                         "their pairing, is undefined")
    bank = bank / peak[:, None]
    return bank / np.linalg.norm(bank, axis=1)[:, None]


def pairing(weight: np.ndarray | torch.Tensor) -> Pairing:
    """Pairing filter and its cosine similarity $\\mu_i$ for every filter of a layer.

    Parameters
    ----------
    weight : numpy.ndarray or torch.Tensor, shape (K, C, kh, kw) or (K, d)
        The filter bank (torch `Conv2d.weight` layout).

    Returns
    -------
    Pairing
        `mu` (K,) and `pair` (K,), with `n_filters` and `dim`.

    Raises
    ------
    ValueError
        Fewer than 2 filters, an all-zero filter, NaN/Inf, empty input.
    TypeError
        Not a real numpy array or torch tensor.

    Notes
    -----
    With $\\phi_i = w_i/\\|w_i\\|_2$ flattened over $(C, k_h, k_w)$,
    $\\operatorname{pair}(i) = \\operatorname{argmin}_{j\\ne i}\\langle\\phi_i,\\phi_j\\rangle$
    and $\\mu_i = \\langle\\phi_i,\\phi_{\\operatorname{pair}(i)}\\rangle$. Ties go to the
    smallest index. The Gram matrix is formed once: $O(K^2 d)$.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from theory import pairing
    >>> conv = torch.nn.Conv2d(3, 8, 3)
    >>> with torch.no_grad():
    ...     conv.weight[4:] = -conv.weight[:4]                # filters 4..7 negate 0..3
    >>> p = pairing(conv.weight)
    >>> p.pair.tolist(), bool(np.allclose(p.mu, -1.0))
    ([4, 5, 6, 7, 0, 1, 2, 3], True)
    """
    phi = normalise_filters(weight)
    gram = phi @ phi.T
    np.fill_diagonal(gram, np.inf)
    pair = np.argmin(gram, axis=1)
    mu = np.clip(gram[np.arange(len(phi)), pair], -1.0, 1.0)
    return Pairing(mu=mu, pair=pair.astype(np.int64), n_filters=phi.shape[0], dim=phi.shape[1])


def _dim(shape: int | Sequence[int]) -> int:
    if isinstance(shape, (int, np.integer)):
        d = int(shape)
    else:
        dims = [int(s) for s in shape]
        if not dims or min(dims) < 1:
            raise ValueError(f"filter shape must be positive integers, got {shape!r}")
        d = int(np.prod(dims))
    if d < 1:
        raise ValueError(f"filter dimension must be >= 1, got {d}")
    return d


def _batched_mu(draw, repetitions: int, bank_size: int) -> list[np.ndarray]:
    """mu of `repetitions` random banks, drawn `draw(m) -> (m, n, d)` in chunks of ~4M values.

    Same statistic as `pairing`, vectorised over banks (random banks have no zero
    filter with probability 1; one would give NaN and is refused).
    """
    chunk = max(1, min(repetitions, 4_000_000 // max(bank_size, 1)))
    out: list[np.ndarray] = []
    done = 0
    while done < repetitions:
        m = min(chunk, repetitions - done)
        banks = draw(m)
        phi = banks / np.linalg.norm(banks, axis=2, keepdims=True)
        gram = phi @ phi.transpose(0, 2, 1)
        idx = np.arange(gram.shape[1])
        gram[:, idx, idx] = np.inf
        mu = np.clip(gram.min(axis=2), -1.0, 1.0)
        if not np.isfinite(mu).all():
            raise FloatingPointError("a random bank drew an all-zero filter")
        out.extend(mu)
        done += m
    return out


def _summarise(banks_mu: list[np.ndarray], level: float, n: int, d: int, reps: int, seed: int,
               kind: str) -> PairingBaseline:
    means = np.array([m.mean() for m in banks_mu])
    pooled = np.concatenate(banks_mu)
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    density, _ = np.histogram(pooled, bins=BIN_EDGES, density=True)
    qs = (0.01, 0.05, 0.5, 0.95, 0.99)
    return PairingBaseline(
        mean=float(means.mean()), interval=(float(lo), float(hi)), level=level,
        bank_means=means, edges=BIN_EDGES.copy(), density=density,
        mu_quantiles={q: float(v) for q, v in zip(qs, np.quantile(pooled, qs))},
        n_filters=n, dim=d, repetitions=reps, seed=seed, kind=kind)


def _check_reps(n_filters: int, repetitions: int, level: float) -> None:
    if int(n_filters) < 2:
        raise ValueError(f"pairing needs at least 2 filters, got n_filters={n_filters}")
    if int(repetitions) < 2:
        raise ValueError(f"repetitions must be >= 2, got {repetitions}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")


def random_pairing_baseline(n_filters: int, shape: int | Sequence[int], repetitions: int = 200,
                            seed: int = 0, level: float = 0.95) -> PairingBaseline:
    """Pairing statistics of i.i.d. N(0, 1) filter banks of a given count and shape.

    Parameters
    ----------
    n_filters : int
        K, the number of filters (>= 2).
    shape : int or sequence of int
        The filter dimension `d` or the filter shape `(C, kh, kw)`.
    repetitions : int
        Number of independent random banks (>= 2).
    seed : int
    level : float
        Coverage of the reported interval of the bank-mean.

    Returns
    -------
    PairingBaseline

    Notes
    -----
    Each repetition draws $W \\in \\mathbb{R}^{K\\times d}$ with i.i.d. standard normal
    entries and runs `pairing`. The interval is the empirical central `level`
    interval of the bank-means $\\bar\\mu$; with $R$ repetitions its end points are
    order statistics whose coverage error is $O(1/\\sqrt{R})$.

    Examples
    --------
    >>> from theory import random_pairing_baseline
    >>> base = random_pairing_baseline(16, (3, 3, 3), repetitions=50, seed=0)
    >>> base.repetitions, base.level, base.kind
    (50, 0.95, 'iid')
    >>> -1.0 < base.interval[0] <= base.interval[1] < 0.0
    True
    >>> base.mean == random_pairing_baseline(16, (3, 3, 3), repetitions=50, seed=0).mean
    True
    """
    _check_reps(n_filters, repetitions, level)
    d = _dim(shape)
    rng = np.random.default_rng(seed)
    n = int(n_filters)
    mus = _batched_mu(lambda m: rng.standard_normal((m, n, d)), int(repetitions), n * d)
    return _summarise(mus, level, n, d, int(repetitions), int(seed), "iid")


def sign_flip_baseline(weight: np.ndarray | torch.Tensor, repetitions: int = 1000,
                       seed: int = 0, level: float = 0.95) -> PairingBaseline:
    r"""Pairing statistics of the bank with the sign of every filter flipped at random.

    Parameters
    ----------
    weight : array, shape (K, C, kh, kw) or (K, d)
    repetitions, seed, level : as in `random_pairing_baseline`.

    Returns
    -------
    PairingBaseline
        `kind="sign-flip"`; `tail_probability(pairing(weight).mean)` is the p-value of the
        randomisation test below.

    Notes
    -----
    Draw $s \in \{\pm 1\}^K$ uniformly and compute $\mu$ of
    $\{s_i \phi_i\}$: the Gram matrix becomes $s_i s_j G_{ij}$. If the law of the
    bank is invariant under flipping the sign of any filter (i.i.d. filters from any symmetric
    law, Gaussian filters of any covariance, smooth or low-rank banks with arbitrary signs),
    then given the unsigned bank $\{\pm\phi_i\}$ the signs are uniform, and the observed
    $\bar\mu$ is exchangeable with the sign-flipped ones: the tail probability is an
    exact randomisation-test p-value. Pairing in the paper's sense -- the negative of a
    filter is *also* learned -- is precisely a dependence between signs and directions, which
    this baseline removes while keeping everything else about the bank.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import pairing, sign_flip_baseline
    >>> v = np.random.default_rng(0).standard_normal((8, 27))
    >>> paired = np.concatenate([v, -v])
    >>> base = sign_flip_baseline(paired, repetitions=199, seed=0)
    >>> base.kind, base.tail_probability(pairing(paired).mean)     # p-value of the pairing
    ('sign-flip', 0.01)
    >>> iid = np.random.default_rng(1).standard_normal((16, 27))
    >>> bool(sign_flip_baseline(iid, repetitions=199, seed=0).tail_probability(
    ...     pairing(iid).mean) > 0.05)                              # no pairing beyond chance
    True
    """
    phi = normalise_filters(weight)
    n, d = phi.shape
    _check_reps(n, repetitions, level)
    gram = phi @ phi.T
    rng = np.random.default_rng(seed)
    idx = np.arange(n)
    mus: list[np.ndarray] = []
    chunk = max(1, 4_000_000 // (n * n))
    done = 0
    while done < repetitions:
        m = min(chunk, repetitions - done)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(m, n))
        g = gram[None] * signs[:, :, None] * signs[:, None, :]
        g[:, idx, idx] = np.inf
        mus.extend(np.clip(g.min(axis=2), -1.0, 1.0))
        done += m
    return _summarise(mus, level, n, d, int(repetitions), int(seed), "sign-flip")
