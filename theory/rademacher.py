"""Empirical Rademacher complexity of linear and two-layer classes on ReLU/CReLU/AVR features.

Every estimator returns a `RademacherEstimate`: the value, a confidence interval from a
concentration inequality, the number of sign draws, the seed, and (for the two-layer classes)
whether the inner supremum over the first-layer weights was computed exactly or is a lower
estimate. Exact values by enumerating all $2^L$ sign vectors (`exact=True`, `L <= 16`)
serve as the oracle in tests.

Notes
-----
The empirical Rademacher complexity of a class $\\mathcal F$ on $x_1, \\dots, x_L$ is

$$
\\hat R(\\mathcal F) = \\mathbb E_\\sigma \\sup_{f \\in \\mathcal F}
    \\frac1L \\sum_{l=1}^L \\sigma_l f(x_l), \\qquad \\sigma_l \\text{ i.i.d. uniform on } \\{\\pm1\\}.
$$

*Linear class* $\\{x \\mapsto \\langle w, \\varphi(x)\\rangle : \\|w\\|_2 \\le B\\}$: by
Cauchy-Schwarz the supremum is $B\\|\\sum_l \\sigma_l \\varphi(x_l)\\|_2$, so

$$
\\hat R = \\frac BL \\mathbb E \\Big\\|\\sum_l \\sigma_l \\varphi(x_l)\\Big\\|_2
\\in \\Big[\\tfrac{1}{\\sqrt2} T, \\; T\\Big], \\qquad
T = \\frac BL \\Big(\\sum_l \\|\\varphi(x_l)\\|_2^2\\Big)^{1/2},
$$

the upper end by Jensen, the lower end by the Khintchine-Kahane inequality with the optimal
constant $1/\\sqrt2$ (Szarek 1976 for scalars; Latala and Oleszkiewicz, Studia Math. 109
(1994) 101-104, for vectors in any normed space).

*Two-layer classes* $H \\circ \\rho \\circ [F]^{d}$ with
$F = \\{x \\mapsto \\langle u, x\\rangle : \\|u\\|_2 \\le 1\\}$ and
$H = \\{z \\mapsto \\langle w, z\\rangle : \\|w\\|_2 \\le B\\}$: with
$a(u) = \\sum_l \\sigma_l [\\langle u, x_l\\rangle]_+$ the supremum separates over the
$d$ coordinates and

$$
\\hat R = \\frac{B\\sqrt d}{L} \\mathbb E\\, T(\\sigma), \\quad T =
\\begin{cases}
  \\sup_u |a(u)| & \\text{ReLU} \\\\
  \\sup_u \\sqrt{a(u)^2 + a(-u)^2} & \\text{CReLU} \\\\
  \\sup_u |a(u) + a(-u)| & \\text{AVR} \\\\
  \\|\\sum_l \\sigma_l x_l\\|_2 & \\text{linear (no activation)}
\\end{cases}
$$

(derivation in `docs/theory/rademacher.md`). Since $a^2 \\le a(u)^2 + a(-u)^2 \\le
2\\max(a(u)^2, a(-u)^2)$, $1 \\le T_{CReLU}/T_{ReLU} \\le \\sqrt2$ for every
$\\sigma$. The supremum over $u$ is exact for inputs of rank at most 2 (arc sweep
over the arrangement of the lines $\\langle u, x_l\\rangle = 0$) and otherwise a lower
estimate by multi-start fixed-point ascent (every value is attained at a unit vector, so it never
exceeds the supremum).

*Confidence intervals* (level $1-\\delta$). When the per-draw statistic is exact,
changing one sign $\\sigma_l$ moves it by at most $c_l = 2 s \\|x_l\\|$ (`s` the
prefactor $B/L$ or $B\\sqrt d/L$), so McDiarmid's inequality applied to the mean of
`n` independent draws gives the half-width $s\\sqrt{2\\sum_l \\|x_l\\|^2
\\ln(2/\\delta)/n}$. A lower estimate of the supremum produced by a search need not have
bounded differences; its per-draw values lie in $[0, s\\sqrt L\\,\\|X\\|_{op}]$, and
Hoeffding's inequality for i.i.d. bounded variables gives the half-width
$s\\sqrt L\\,\\|X\\|_{op}\\sqrt{\\ln(2/\\delta)/(2n)}$ for the mean of the lower
estimates. `ci_method="normal"` gives the (non-rigorous) plug-in normal interval
$\\bar T \\pm z_{1-\\delta/2}\\, \\hat s/\\sqrt n$ with the `ddof=0` standard deviation;
it exists to show what too few draws do.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, Sequence

import numpy as np
from scipy.special import ndtri

Activation = Literal["crelu", "relu", "avr", "linear"]
ACTIVATIONS: tuple[str, ...] = ("linear", "relu", "crelu", "avr")
#: Largest L for which all 2^L sign vectors are enumerated.
ENUMERATION_LIMIT = 16
_EPS = float(np.finfo(np.float64).eps)
_CHUNK = 4096


@dataclasses.dataclass(frozen=True)
class RademacherEstimate:
    """An empirical Rademacher complexity with its confidence interval.

    Attributes
    ----------
    value : float
        The estimate (the exact value when `method == "enumeration"` and `sup == "exact"`).
    ci : tuple of float
        `(low, high)`, a `1 - delta` confidence interval for the mean of the per-draw
        statistic (for `sup == "lower estimate"`: of the lower estimates, so `low` is a lower
        confidence bound on the true complexity, `high` is not an upper one).
    n_draws : int
        Number of sign vectors averaged (`2**L` for enumeration).
    seed : int or None
        Seed of the sign draws (None for enumeration).
    sup : str
        `"exact"` or `"lower estimate"`: how the supremum over the class was computed.
    method : str
        `"monte carlo"` or `"enumeration"`.
    delta : float
        `1 - delta` is the confidence level of `ci`.
    ci_method : str
        `"mcdiarmid"`, `"hoeffding"`, `"normal"` or `"exact"`.

    Examples
    --------
    >>> import numpy as np
    >>> from theory.rademacher import linear_class
    >>> phi = np.random.default_rng(0).standard_normal((8, 3))
    >>> est = linear_class(phi, n_draws=2000, seed=0)
    >>> est.method, est.sup, est.ci_method, est.n_draws, est.delta
    ('monte carlo', 'exact', 'mcdiarmid', 2000, 0.05)
    >>> exact = linear_class(phi, exact=True)                # all 2^8 sign vectors
    >>> exact.method, exact.ci == (exact.value, exact.value)
    ('enumeration', True)
    >>> bool(est.ci[0] <= exact.value <= est.ci[1])          # the 95 % interval covers it
    True
    """

    value: float
    ci: tuple[float, float]
    n_draws: int
    seed: int | None
    sup: str = "exact"
    method: str = "monte carlo"
    delta: float = 0.05
    ci_method: str = "mcdiarmid"

    @property
    def half_width(self) -> float:
        """Half the width of the confidence interval, `(high - low) / 2`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory.rademacher import linear_class
        >>> phi = np.random.default_rng(0).standard_normal((8, 3))
        >>> few, many = (linear_class(phi, n_draws=n, seed=0) for n in (100, 10000))
        >>> round(few.half_width / many.half_width, 6)           # McDiarmid: 1 / sqrt(n)
        10.0
        """
        return 0.5 * (self.ci[1] - self.ci[0])

    def scaled(self, factor: float) -> "RademacherEstimate":
        """The same estimate multiplied by `factor >= 0` (value and interval).

        Examples
        --------
        >>> import numpy as np
        >>> from theory.rademacher import linear_class
        >>> est = linear_class(np.random.default_rng(0).standard_normal((8, 3)), exact=True)
        >>> twice = est.scaled(2.0)                              # e.g. the norm bound B = 2
        >>> bool(np.isclose(twice.value, 2 * est.value)), twice.method
        (True, 'enumeration')
        """
        if not factor >= 0:
            raise ValueError(f"scale factor must be >= 0, got {factor}")
        return dataclasses.replace(self, value=self.value * factor,
                                   ci=(self.ci[0] * factor, self.ci[1] * factor))

    def as_dict(self) -> dict:
        """The estimate as a plain dict (for JSON reports).

        Examples
        --------
        >>> import numpy as np
        >>> from theory.rademacher import linear_class
        >>> d = linear_class(np.ones((4, 2)), exact=True).as_dict()
        >>> sorted(d)
        ['ci', 'ci_method', 'delta', 'method', 'n_draws', 'seed', 'sup', 'value']
        >>> d["method"], d["n_draws"], d["seed"]
        ('enumeration', 16, None)
        """
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- input checks

def _as_samples(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (L, dim) (one row per sample), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real-valued, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def _unit_scale(arr: np.ndarray) -> tuple[np.ndarray, int]:
    """`(arr * 2^-e, e)` with the largest absolute entry in [0.5, 1).

    Exact (a power of two), so every product, sum and square root below is the unit-scale one
    times a power of two, bit for bit; only the squares no longer under- or overflow. All the
    classes here are positively homogeneous in the samples, so `_rescaled(estimate, e)` gives
    the estimate of `arr`.
    """
    top = float(np.max(np.abs(arr)))
    if top == 0.0:
        return arr, 0
    e = int(np.frexp(top)[1])
    return (np.ldexp(arr, -e), e) if e else (arr, 0)


def _rescaled(est: "RademacherEstimate", e: int) -> "RademacherEstimate":
    """The estimate of the samples `2^e X` from that of `X` (value and interval times 2^e)."""
    if e == 0:
        return est
    return dataclasses.replace(est, value=float(np.ldexp(est.value, e)),
                               ci=(float(np.ldexp(est.ci[0], e)), float(np.ldexp(est.ci[1], e))))


def _check_common(B: float, n_draws: int, delta: float, ci_method: str) -> None:
    if not (np.isfinite(B) and B > 0):
        raise ValueError(f"norm bound B must be a positive finite number, got {B}")
    if int(n_draws) != n_draws or n_draws < 1:
        raise ValueError(f"n_draws must be a positive integer, got {n_draws}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    if ci_method not in ("auto", "mcdiarmid", "hoeffding", "normal"):
        raise ValueError(f"unknown ci_method {ci_method!r}; expected auto, mcdiarmid, "
                         "hoeffding or normal")


def _check_enumerable(L: int) -> None:
    if L > ENUMERATION_LIMIT:
        raise ValueError(f"exact enumeration needs L <= {ENUMERATION_LIMIT} samples "
                         f"(2^L sign vectors); got L = {L}")


# --------------------------------------------------------------------------- sign vectors

def sign_draws(L: int, n_draws: int, seed: int) -> np.ndarray:
    """`n_draws` i.i.d. Rademacher vectors of length `L` (float64, shape `(n_draws, L)`).

    The same `(L, n_draws, seed)` always gives the same signs, so estimators called with one
    seed are *paired*: they average over the same sign vectors.

    Examples
    --------
    >>> import numpy as np
    >>> from theory.rademacher import sign_draws
    >>> s = sign_draws(L=5, n_draws=1000, seed=0)
    >>> s.shape, sorted(np.unique(s).tolist())
    ((1000, 5), [-1.0, 1.0])
    >>> bool(np.array_equal(s, sign_draws(5, 1000, 0)))      # same seed, same signs: paired
    True
    >>> bool(abs(s.mean()) < 0.05)
    True
    """
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 2, size=(int(n_draws), int(L)), dtype=np.int8).astype(np.float64)
    out *= 2.0
    out -= 1.0
    return out


def all_signs(L: int) -> np.ndarray:
    """All `2**L` sign vectors, shape `(2**L, L)` (`L <= 16`).

    Examples
    --------
    >>> from theory.rademacher import all_signs
    >>> all_signs(2)
    array([[-1., -1.],
           [ 1., -1.],
           [-1.,  1.],
           [ 1.,  1.]])
    >>> all_signs(10).shape
    (1024, 10)
    """
    _check_enumerable(L)
    codes = np.arange(2 ** L, dtype=np.int64)[:, None]
    return (((codes >> np.arange(L)) & 1) * 2.0 - 1.0).astype(np.float64)


def _interval(stats: np.ndarray, scale: float, c2: float, range_hi: float, delta: float,
              ci_method: str, exact_sup: bool, seed: int | None, n_used: int,
              sup_label: str) -> RademacherEstimate:
    """Build an estimate from per-draw statistics (unscaled) and the chosen inequality."""
    n = stats.shape[0]
    mean = float(stats.mean())
    value = scale * mean
    if ci_method == "auto":
        ci_method = "mcdiarmid" if exact_sup else "hoeffding"
    if ci_method == "mcdiarmid":
        if not exact_sup:
            raise ValueError("McDiarmid's inequality needs bounded differences, which a searched "
                             "(lower-estimate) supremum need not have; use ci_method='hoeffding'")
        half = scale * math.sqrt(2.0 * c2 * math.log(2.0 / delta) / n)
    elif ci_method == "hoeffding":
        half = scale * range_hi * math.sqrt(math.log(2.0 / delta) / (2.0 * n))
    else:  # normal plug-in
        half = scale * float(ndtri(1.0 - delta / 2.0)) * float(stats.std()) / math.sqrt(n)
    return RademacherEstimate(value=value, ci=(max(value - half, 0.0), value + half),
                              n_draws=n_used, seed=seed, sup=sup_label, method="monte carlo",
                              delta=delta, ci_method=ci_method)


def _exact_estimate(stats: np.ndarray, scale: float, sup_label: str,
                    delta: float) -> RademacherEstimate:
    value = scale * float(stats.mean())
    ci = (value, value) if sup_label == "exact" else (value, math.inf)
    return RademacherEstimate(value=value, ci=ci, n_draws=int(stats.shape[0]), seed=None,
                              sup=sup_label, method="enumeration", delta=delta, ci_method="exact")


# --------------------------------------------------------------------------- linear class

def linear_class(features: np.ndarray, B: float = 1.0, n_draws: int = 1000, seed: int = 0, *,
                 delta: float = 0.05, exact: bool = False,
                 ci_method: str = "mcdiarmid") -> RademacherEstimate:
    """Rademacher complexity of $\\{x \\mapsto \\langle w, \\varphi(x)\\rangle : \\|w\\|_2 \\le B\\}$.

    Parameters
    ----------
    features : array (L, p)
        The feature vectors $\\varphi(x_l)$, one row per sample.
    B : float
        Norm bound on $w$.
    n_draws, seed : int
        Monte Carlo sign draws (ignored when `exact`).
    delta : float
        The interval has confidence `1 - delta`.
    exact : bool
        Enumerate all $2^L$ sign vectors (`L <= 16`): the exact value.
    ci_method : {"mcdiarmid", "normal"}
        McDiarmid (rigorous) or the plug-in normal interval (illustration only).

    Returns
    -------
    RademacherEstimate

    Notes
    -----
    $\\hat R = (B/L)\\,\\mathbb E\\|\\Phi^T \\sigma\\|_2$ exactly (Cauchy-Schwarz); the
    Monte Carlo average over `n` draws costs one `(n, L) x (L, p)` matrix product.
    McDiarmid half-width: $(B/L)\\sqrt{2\\|\\Phi\\|_F^2 \\ln(2/\\delta)/n}$.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import crelu
    >>> from theory.rademacher import linear_class
    >>> x = np.random.default_rng(0).standard_normal((12, 4))
    >>> relu_feats, crelu_feats = np.maximum(x, 0), crelu(x)
    >>> r_relu = linear_class(relu_feats, exact=True).value
    >>> r_crelu = linear_class(crelu_feats, exact=True).value
    >>> bool(r_crelu >= r_relu)                              # CReLU features carry more norm
    True
    >>> mc = linear_class(crelu_feats, n_draws=4000, seed=0)
    >>> bool(mc.ci[0] <= r_crelu <= mc.ci[1])
    True
    """
    phi, e = _unit_scale(_as_samples(features, "features"))
    _check_common(B, n_draws, delta, ci_method)
    L = phi.shape[0]
    scale = B / L
    if exact:
        _check_enumerable(L)
        stats = np.concatenate([np.linalg.norm(s @ phi, axis=1)
                                for s in _chunks(all_signs(L))])
        return _rescaled(_exact_estimate(stats, scale, "exact", delta), e)
    stats = np.linalg.norm(sign_draws(L, n_draws, seed) @ phi, axis=1)
    flat = phi.reshape(-1)
    c2 = float(flat @ flat)
    return _rescaled(_interval(stats, scale, c2, math.sqrt(L * c2), delta, ci_method, True,
                               seed, int(n_draws), "exact"), e)


def linear_bounds(features: np.ndarray, B: float = 1.0) -> tuple[float, float]:
    """`(lower, upper)` bounds on the linear-class complexity, no sampling.

    Notes
    -----
    `upper` $= T = (B/L)\\sqrt{\\sum_l\\|\\varphi(x_l)\\|^2}$ (Jensen), `lower`
    $= T/\\sqrt 2$ (Khintchine-Kahane, optimal constant of Latala-Oleszkiewicz 1994).

    Examples
    --------
    >>> import numpy as np
    >>> from theory.rademacher import linear_bounds, linear_class
    >>> phi = np.random.default_rng(0).standard_normal((10, 4))
    >>> lower, upper = linear_bounds(phi)
    >>> bool(np.isclose(upper / lower, np.sqrt(2)))
    True
    >>> exact = linear_class(phi, exact=True).value
    >>> bool(lower <= exact <= upper)                        # Khintchine-Kahane and Jensen
    True
    """
    phi, e = _unit_scale(_as_samples(features, "features"))
    if not (np.isfinite(B) and B > 0):
        raise ValueError(f"norm bound B must be a positive finite number, got {B}")
    upper = B / phi.shape[0] * math.sqrt(float(np.sum(phi * phi)))
    return float(np.ldexp(upper / math.sqrt(2.0), e)), float(np.ldexp(upper, e))


def _chunks(signs: np.ndarray) -> list[np.ndarray]:
    return [signs[i:i + _CHUNK] for i in range(0, signs.shape[0], _CHUNK)]


# --------------------------------------------------------------------------- two-layer classes

def _rank2_basis(X: np.ndarray) -> np.ndarray | None:
    """Coordinates of the samples in an orthonormal basis of their span if its rank is <= 2."""
    if X.shape[1] <= 2:
        return X
    _, s, vt = np.linalg.svd(X, full_matrices=False)
    tol = max(X.shape) * _EPS * (s[0] if s.size else 0.0)
    r = int(np.sum(s > tol))
    if r > 2:
        return None
    return X @ vt[:2].T


def _stats_1d(x: np.ndarray, signs: np.ndarray) -> dict[str, np.ndarray]:
    """Exact per-draw statistics for scalar inputs (u in [-1, 1])."""
    p = signs @ np.maximum(x, 0.0)        # a(+1)
    q = signs @ np.maximum(-x, 0.0)       # a(-1)
    return {"relu": np.maximum(np.abs(p), np.abs(q)), "crelu": np.sqrt(p * p + q * q),
            "avr": np.abs(p + q), "linear": np.abs(p - q)}


def _arc_arrangement(X: np.ndarray):
    """Sorted arc boundaries of the line arrangement {u : <u, x_l> = 0} on the unit circle."""
    theta = np.arctan2(X[:, 1], X[:, 0])
    psi = np.mod(theta + np.pi / 2, np.pi)           # crossing in [0, pi); partner psi + pi
    # the point leaves the active half-plane at (theta + pi/2) mod 2 pi
    leaves_first = np.mod(theta + np.pi / 2, 2 * np.pi) < np.pi
    order = np.argsort(psi, kind="stable")
    L = X.shape[0]
    bounds = np.concatenate([psi[order], psi[order] + np.pi])
    # event sign: +1 enters the active set, -1 leaves; at psi and at psi + pi opposite
    first = np.where(leaves_first[order], -1.0, 1.0)
    ev_sign = np.concatenate([first, -first])
    ev_idx = np.concatenate([order, order])
    init = leaves_first.astype(np.float64)          # active just below angle 0 (= 2 pi)
    lengths = np.diff(np.concatenate([bounds, bounds[:1] + 2 * np.pi]))
    return bounds, lengths, ev_sign, ev_idx, init, L


def _quad_arc_sup(m11, m12, m22, start, length, trig):
    """max of u^T M u over u = (cos t, sin t), t in [start, start + length] (length <= pi).

    `trig` holds (cos, sin) of the arc starts and ends (precomputed once per arrangement).
    """
    mid = 0.5 * (m11 + m22)
    r = np.hypot(0.5 * (m11 - m22), m12)
    tstar = 0.5 * np.arctan2(m12, 0.5 * (m11 - m22))     # maximiser angle (mod pi)
    d = np.mod(tstar - start, np.pi)                       # offset of the nearest maximiser
    inside = d <= length
    cs, ss, ce, se = trig
    q_start = m11 * (cs * cs) + 2 * m12 * (cs * ss) + m22 * (ss * ss)
    q_end = m11 * (ce * ce) + 2 * m12 * (ce * se) + m22 * (se * se)
    return np.where(inside, mid + r, np.maximum(q_start, q_end))


def _stats_2d(X: np.ndarray, signs: np.ndarray, which: Sequence[str]) -> dict[str, np.ndarray]:
    """Exact per-draw statistics for 2-D inputs by sweeping the arcs of the arrangement."""
    keep = np.any(X != 0, axis=1)
    X = X[keep]
    signs = signs[:, keep]
    n = signs.shape[0]
    out = {k: np.zeros(n) for k in which}
    if X.shape[0] == 0:
        return out
    bounds, lengths, ev_sign, ev_idx, init, L = _arc_arrangement(X)
    K = 2 * L
    steps = ev_sign[:, None] * X[ev_idx]                   # (K, 2)
    ends = bounds + lengths
    trig = (np.cos(bounds), np.sin(bounds), np.cos(ends), np.sin(ends))
    batch = max(1, 2 ** 21 // K)
    for lo in range(0, n, batch):
        s = signs[lo:lo + batch]
        v0 = (s * init) @ X                               # (D, 2)
        V = v0[:, None, :] + np.cumsum(s[:, ev_idx, None] * steps[None], axis=1)  # (D, K, 2)
        W = np.roll(V, -L, axis=1)                         # a(-u) = -<u, W_k> on arc k
        for name in which:
            if name == "relu":
                terms = [V]
            elif name == "crelu":
                terms = [V, W]
            elif name == "avr":
                terms = [V - W]
            else:
                terms = [V + W]
            m11 = sum(t[..., 0] ** 2 for t in terms)
            m12 = sum(t[..., 0] * t[..., 1] for t in terms)
            m22 = sum(t[..., 1] ** 2 for t in terms)
            best = _quad_arc_sup(m11, m12, m22, bounds, lengths, trig).max(axis=1)
            out[name][lo:lo + s.shape[0]] = np.sqrt(np.maximum(best, 0.0))
    return out


def _stats_search(X: np.ndarray, signs: np.ndarray, which: Sequence[str], n_starts: int,
                  n_iter: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Lower estimates of the per-draw suprema by multi-start fixed-point ascent.

    Starts: the linear optimum $\\pm S/\\|S\\|$ ($S = X^T\\sigma$), the top right
    singular vectors of `X` and random unit vectors. Each objective is a quadratic form
    $u^T M(u) u$ whose matrix depends on the active sets of $\\pm u$; the iteration
    $u \\leftarrow M(u)u/\\|M(u)u\\|$ is run for the ReLU (both signs), CReLU and AVR
    objectives, every iterate of every run is pooled, and each statistic is the maximum over the
    pool of its exact value (so the estimates are attained values: lower bounds of the suprema,
    and the pool is symmetric, which keeps $1 \\le T_{CReLU}/T_{ReLU} \\le \\sqrt2$).
    """
    L, dim = X.shape
    n = signs.shape[0]
    _, _, vt = np.linalg.svd(X, full_matrices=False)
    k_svd = min(2, vt.shape[0])
    n_rand = max(n_starts - 2 - k_svd, 0)
    fixed = np.concatenate([vt[:k_svd], rng.standard_normal((n_rand, dim))])
    fixed /= np.linalg.norm(fixed, axis=1, keepdims=True)
    best = {k: np.zeros(n) for k in which}
    batch = max(1, 2 ** 21 // (L * (fixed.shape[0] + 2) * 4))
    for lo in range(0, n, batch):
        s = signs[lo:lo + batch]
        D = s.shape[0]
        S = s @ X
        Sn = S / np.maximum(np.linalg.norm(S, axis=1, keepdims=True), 1e-300)
        U0 = np.concatenate([Sn[:, None], np.broadcast_to(fixed, (D,) + fixed.shape)], axis=1)
        runs = {"relu+": U0, "relu-": U0, "crelu": U0, "avr": U0}
        for objective, U in runs.items():
            U = U.copy()
            for _ in range(n_iter + 1):
                Z = np.einsum("dsn,ln->dsl", U, X)
                pos = np.maximum(Z, 0.0)
                neg = np.maximum(-Z, 0.0)
                a_p = np.einsum("dsl,dl->ds", pos, s)          # a(u)
                a_m = np.einsum("dsl,dl->ds", neg, s)          # a(-u)
                vals = {"relu": np.maximum(np.abs(a_p), np.abs(a_m)),
                        "crelu": np.sqrt(a_p ** 2 + a_m ** 2), "avr": np.abs(a_p + a_m),
                        "linear": np.abs(a_p - a_m)}
                for k in which:
                    best[k][lo:lo + D] = np.maximum(best[k][lo:lo + D], vals[k].max(axis=1))
                act_p = (Z > 0) * s[:, None, :]                # sigma_l 1[<u,x_l> > 0]
                act_m = (Z < 0) * s[:, None, :]
                v = np.einsum("dsl,ln->dsn", act_p, X)        # a(u) = <u, v>
                w = np.einsum("dsl,ln->dsn", act_m, X)        # a(-u) = -<u, w>
                if objective == "relu+":
                    G = v * np.sign(a_p)[..., None]
                elif objective == "relu-":
                    G = -w * np.sign(a_m)[..., None]
                elif objective == "crelu":
                    G = v * a_p[..., None] - w * a_m[..., None]
                else:
                    G = (v - w) * np.sign(a_p + a_m)[..., None]
                norm = np.linalg.norm(G, axis=2, keepdims=True)
                U = np.where(norm > 0, G / np.maximum(norm, 1e-300), U)
    return best


def _per_draw_stats(X: np.ndarray, signs: np.ndarray, which: Sequence[str], n_starts: int,
                    n_iter: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], bool]:
    nonlinear = [k for k in which if k != "linear"]
    stats: dict[str, np.ndarray] = {}
    exact_sup = True
    if nonlinear:
        Y = _rank2_basis(X)
        if Y is not None and Y.shape[1] == 1:
            stats = _stats_1d(Y[:, 0], signs)
        elif Y is not None:
            stats = _stats_2d(Y, signs, nonlinear)
        else:
            stats = _stats_search(X, signs, nonlinear, n_starts, n_iter, rng)
            exact_sup = False
    stats = {k: stats[k] for k in nonlinear}
    if "linear" in which:  # the supremum over u of |<u, S>| is ||S|| (Cauchy-Schwarz)
        stats["linear"] = np.linalg.norm(signs @ X, axis=1)
    return stats, exact_sup


def two_layer_classes(X: np.ndarray, d_in: int = 1, B: float = 1.0, n_draws: int = 1000,
                      seed: int = 0, *, activations: Sequence[str] = ACTIVATIONS,
                      delta: float = 0.05, exact: bool = False, ci_method: str = "auto",
                      n_starts: int = 8, n_iter: int = 12) -> dict[str, RademacherEstimate]:
    """Complexities of $H \\circ \\rho \\circ [F]^{d_{in}}$ for several activations at once.

    All activations share the sign draws (and, for a searched supremum, the pool of candidate
    directions), so their estimates are paired and satisfy the exact inequalities between them
    draw by draw. Parameters and notes as `two_layer_class`.

    Returns
    -------
    dict
        activation name -> `RademacherEstimate`.

    Examples
    --------
    >>> import numpy as np
    >>> from theory.rademacher import two_layer_classes
    >>> X = np.random.default_rng(0).standard_normal((9, 2))  # rank 2: exact suprema
    >>> est = two_layer_classes(X, d_in=4, n_draws=500, seed=0)
    >>> sorted(est), est["crelu"].sup
    (['avr', 'crelu', 'linear', 'relu'], 'exact')
    >>> ratio = est["crelu"].value / est["relu"].value
    >>> bool(1.0 <= ratio <= np.sqrt(2))                     # paired draws: holds draw by draw
    True
    >>> rich = np.random.default_rng(1).standard_normal((9, 5))   # rank 5: a searched supremum
    >>> two_layer_classes(rich, n_draws=50, seed=0, activations=("crelu",))["crelu"].sup
    'lower estimate'
    """
    Xa, e = _unit_scale(_as_samples(X, "X"))
    _check_common(B, n_draws, delta, ci_method)
    if int(d_in) != d_in or d_in < 1:
        raise ValueError(f"d_in must be a positive integer, got {d_in}")
    bad = [a for a in activations if a not in ACTIVATIONS]
    if bad or not activations:
        raise ValueError(f"unknown activation(s) {bad}; choose from {ACTIVATIONS}")
    if n_starts < 1 or n_iter < 0:
        raise ValueError(f"need n_starts >= 1 and n_iter >= 0, got {n_starts}, {n_iter}")
    L = Xa.shape[0]
    scale = B * math.sqrt(d_in) / L
    rng = np.random.default_rng([seed, 1])
    if exact:
        _check_enumerable(L)
        signs = all_signs(L)
    else:
        signs = sign_draws(L, n_draws, seed)
    stats, exact_sup = _per_draw_stats(Xa, signs, list(activations), n_starts, n_iter, rng)
    c2 = float(np.sum(Xa * Xa))
    op = float(np.linalg.norm(Xa, 2))
    out = {}
    for name in activations:
        # the linear class's supremum is B ||sum_l sigma_l x_l|| (Cauchy-Schwarz) at any rank
        name_exact = exact_sup or name == "linear"
        label = "exact" if name_exact else "lower estimate"
        if exact:
            out[name] = _exact_estimate(stats[name], scale, label, delta)
        else:
            out[name] = _interval(stats[name], scale, c2, math.sqrt(L) * op, delta, ci_method,
                                  name_exact, seed, int(n_draws), label)
        out[name] = _rescaled(out[name], e)
    return out


def two_layer_class(X: np.ndarray, d_in: int = 1, B: float = 1.0,
                    activation: Activation = "crelu", n_draws: int = 1000, seed: int = 0, *,
                    delta: float = 0.05, exact: bool = False, ci_method: str = "auto",
                    n_starts: int = 8, n_iter: int = 12) -> RademacherEstimate:
    """Rademacher complexity of $H \\circ \\rho \\circ [F]^{d_{in}}$ on samples `X`.

    Parameters
    ----------
    X : array (L, n)
        Input samples, one per row.
    d_in : int
        Number of first-layer units (coordinates of $G = [F]^{d_{in}}$).
    B : float
        Bound on $\\|w\\|_2$ of the top linear layer (on $2d_{in}$ CReLU inputs,
        $d_{in}$ ReLU/AVR/linear inputs).
    activation : {"crelu", "relu", "avr", "linear"}
    n_draws, seed : int
        Monte Carlo sign draws (same seed, same signs for every estimator of this module).
    delta : float
        Confidence level `1 - delta`.
    exact : bool
        Enumerate all $2^L$ sign vectors (`L <= 16`).
    ci_method : {"auto", "mcdiarmid", "hoeffding", "normal"}
        `auto`: McDiarmid when the supremum is exact, Hoeffding when it is a lower estimate.
    n_starts, n_iter : int
        Multi-start search (only for inputs of rank > 2).

    Returns
    -------
    RademacherEstimate
        `sup` says whether the supremum over $u$ is `"exact"` (rank <= 2 inputs) or a
        `"lower estimate"`.

    Notes
    -----
    With $a(u) = \\sum_l \\sigma_l [\\langle u, x_l\\rangle]_+$, the supremum over
    $\\|w\\|\\le B$ is $B\\|\\sum_l\\sigma_l\\rho(Ux_l)\\|_2$, and the squared norm is a
    sum over the $d_{in}$ rows $u_j$ of $U$, each maximised independently:

    $$
    \\hat R_{CReLU} = \\frac{B\\sqrt{d_{in}}}{L}\\,
    \\mathbb E \\sqrt{\\sup_{\\|u\\| \\le 1} a(u)^2 + a(-u)^2}, \\qquad
    \\hat R_{ReLU} = \\frac{B\\sqrt{d_{in}}}{L}\\, \\mathbb E \\sup_{\\|u\\|\\le1} |a(u)|.
    $$

    For rank-2 inputs the circle splits into at most $2L$ arcs on which the active sets of
    $u$ and $-u$ are fixed; on each arc the objective is a quadratic form in
    $u$ whose maximum over the arc is closed-form. Cost $O(L)$ per draw after one
    sort.

    Examples
    --------
    >>> import numpy as np
    >>> from theory.rademacher import theorem41_bound, two_layer_class
    >>> X = np.array([[1.0], [-1.0]])                        # the counterexample x = (1, -1)
    >>> crelu = two_layer_class(X, activation="crelu", exact=True)
    >>> relu = two_layer_class(X, activation="relu", exact=True)
    >>> crelu.sup, round(crelu.value, 12), round(relu.value, 12)
    ('exact', 0.707106781187, 0.5)
    >>> bound = theorem41_bound(X, exact=True)               # the paper's sqrt(d) B R(F)
    >>> round(crelu.value / bound.value, 12)                 # sqrt(2) > 1: the bound fails
    1.414213562373
    """
    return two_layer_classes(X, d_in, B, n_draws, seed, activations=(activation,), delta=delta,
                             exact=exact, ci_method=ci_method, n_starts=n_starts,
                             n_iter=n_iter)[activation]


#: Constants c in R <= c sqrt(d_in) B R(F): the paper's (c = 1) and the corrected ones proved in
#: docs/theory/rademacher.md (c = 3/2 for ReLU, 3/sqrt 2 for CReLU).
BOUND_CONSTANTS = {
    "paper": {"crelu": 1.0, "relu": 1.0},
    "corrected": {"crelu": 3.0 / math.sqrt(2.0), "relu": 1.5},
}


def theorem41_bound(X: np.ndarray, d_in: int = 1, B: float = 1.0, n_draws: int = 1000,
                    seed: int = 0, *, activation: str = "crelu", form: str = "paper",
                    delta: float = 0.05, exact: bool = False,
                    ci_method: str = "mcdiarmid") -> RademacherEstimate:
    """The Theorem 4.1 bound $c\\sqrt{d_{in}}\\,B\\,\\hat R(F)$, estimated like the complexity.

    Parameters
    ----------
    X : array (L, n)
    d_in, B : as in `two_layer_class`.
    activation : {"crelu", "relu"}
        CReLU (Theorem 4.1) or its ReLU counterpart (Wan et al. 2013, DropConnect).
    form : {"paper", "corrected"}
        `paper`: $c = 1$ for both activations (the statement under test).
        `corrected`: $c = 3/2$ (ReLU) and $3/\\sqrt2$ (CReLU), the constants we prove.
    n_draws, seed, delta, exact, ci_method : as in `linear_class`.

    Returns
    -------
    RademacherEstimate

    Notes
    -----
    $\\hat R(F) = (1/L)\\,\\mathbb E\\|\\sum_l \\sigma_l x_l\\|_2$ exactly (Cauchy-Schwarz),
    so the bound is `linear_class` on the raw inputs scaled by $c\\sqrt{d_{in}}\\,B$;
    it is also exactly the complexity of the class without activation, `activation="linear"`.
    The paper's form fails for CReLU: with $x = (1, -1)$ in one dimension,
    $\\hat R_{CReLU} = \\sqrt2\\,\\sqrt{d_{in}}B\\hat R(F)$.

    Examples
    --------
    >>> import numpy as np
    >>> from theory.rademacher import theorem41_bound, two_layer_class
    >>> X = np.array([[1.0], [-1.0]])
    >>> crelu = two_layer_class(X, d_in=3, activation="crelu", exact=True).value
    >>> paper = theorem41_bound(X, d_in=3, exact=True).value
    >>> corrected = theorem41_bound(X, d_in=3, form="corrected", exact=True).value
    >>> bool(crelu > paper), bool(crelu <= corrected)       # fails as stated; holds corrected
    (True, True)
    >>> round(corrected / paper, 12)                        # the constant 3 / sqrt(2)
    2.12132034356
    """
    if form not in BOUND_CONSTANTS:
        raise ValueError(f"unknown form {form!r}; expected 'paper' or 'corrected'")
    if activation not in BOUND_CONSTANTS[form]:
        raise ValueError(f"unknown activation {activation!r}; expected 'crelu' or 'relu'")
    if int(d_in) != d_in or d_in < 1:
        raise ValueError(f"d_in must be a positive integer, got {d_in}")
    c = BOUND_CONSTANTS[form][activation]
    rf = linear_class(X, 1.0, n_draws, seed, delta=delta, exact=exact, ci_method=ci_method)
    return rf.scaled(c * math.sqrt(d_in) * B)


__all__ = [
    "ACTIVATIONS", "BOUND_CONSTANTS", "ENUMERATION_LIMIT", "RademacherEstimate", "all_signs",
    "linear_bounds", "linear_class", "sign_draws", "theorem41_bound", "two_layer_class",
    "two_layer_classes",
]
