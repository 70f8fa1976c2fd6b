r"""Rounding-error bounds and the Cholesky certificate of positive definiteness.

Notes
-----
Model: IEEE 754 binary64, rounding to nearest, unit roundoff $u = 2^{-53}$, smallest
subnormal $\eta = 2^{-1074}$, no overflow; $\gamma_n = nu/(1 - nu)$,
$\gamma'_n = \gamma_n/(1 - \gamma_n)$. Every floating-point sum of $n$ products, in any
order or blocking, satisfies $|fl(x^Ty) - x^Ty| \le \gamma_n |x|^T|y|$ (Higham,
*Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1); BLAS products are such
sums (conventional, not Strassen-like, multiplication; an FMA only removes roundings).

**Lemma C (Cholesky certificate; Demmel 1989, Rump 2006).** Let $Z$ be a symmetric
floating-point $n \times n$ matrix. If floating-point Cholesky (any evaluation order)
runs to completion on $Z$, then

$$
\lambda_{\min}(Z) \ge -\gamma'_{n+1}\operatorname{tr}(Z) - 6n(n + \max_i z_{ii})\eta .
$$

*Proof.* Higham Thm 10.3 (its proof uses only that the algorithm completes): the
computed factor satisfies $R^TR = Z + \Delta$, $|\Delta| \le \gamma_{n+1}|R^T||R|$.
Cauchy-Schwarz gives $(|R^T||R|)_{ij} \le \|r_i\|\|r_j\|$ and
$\|r_i\|^2 = z_{ii} + \Delta_{ii} \le z_{ii} + \gamma_{n+1}\|r_i\|^2$, so
$|\Delta_{ij}| \le \gamma'_{n+1}\sqrt{z_{ii}z_{jj}}$. The spectral norm is monotone on
non-negative matrices: $\|\Delta\|_2 \le \gamma'_{n+1}\operatorname{tr} Z$. $R^TR \succeq 0$
gives $Z \succeq -\|\Delta\|_2 I$. Gradual underflow adds at most the $\eta$ term (Rump,
BIT 46 (2006) 433-452, the constant of INTLAB's `isspd`). $\square$

**Corollary (what `certify_lower` proves).** To show $X - \operatorname{diag}(\tau) \succeq 0$:
scale by $S = \operatorname{diag}(2^{e_i})$ (exact), form
$Y = fl(SXS - S\operatorname{diag}(\tau)S)$ (only the diagonal is rounded) and
$Z = fl(Y - cI)$ with
$c \ge \gamma'_{n+1}\operatorname{tr}(Y)(1+u) + u(\max|y_{ii}| + \max|z_{ii}|) +
6n(n + \max y_{ii})\eta + n\eta$ (the computed $c$ is enlarged by $1 + 10^{-3}$, far above
the rounding of its own evaluation). If Cholesky completes on $Z$, then
$S(X - \operatorname{diag}\tau)S \succeq 0$.

**Lemma C$_{\mathbb C}$ (complex Hermitian; our extension).** Let $Z$ be a Hermitian
floating-point $n \times n$ matrix (real diagonal). If floating-point complex Cholesky (any
evaluation order; complex products by the conventional formula, four real products, with or
without FMA, not the 3M method) runs to completion on $Z$, then

$$
\lambda_{\min}(Z) \ge -\gamma'_{n+3}\operatorname{tr}(Z) - 12n(n + \max_i z_{ii})\eta .
$$

*Proof.* A complex sum and the division of a complex number by a real one are
componentwise real operations: $fl(a \pm b) = (a \pm b)(1+\delta)$, $|\delta| \le u$. A
complex product satisfies $fl(ab) = ab(1+\delta)$ with $|\delta| \le \sqrt2\gamma_2 \le
\gamma_3$ (Higham Lemma 3.5; $2u$ with an FMA, Jeannerod, Kornerup, Louvet and Muller, Math.
Comp. 86 (2017)), and the diagonal step $r_{kk} = (z_{kk} - \sum_i |r_{ik}|^2)^{1/2}$ is
real arithmetic with $|r_{ik}|^2 = fl(\operatorname{Re}^2 + \operatorname{Im}^2)$, within
$\gamma_2$ relatively. So in Higham's Lemma 8.4 every term carries at most two roundings more
than in the real case, and the proof of Higham Thm 10.3 (which uses only these bounds and the
rule $(1+\theta_j)(1+\theta_k) = 1+\theta_{j+k}$) gives $R^HR = Z + \Delta$,
$|\Delta| \le \gamma_{n+3}|R^H||R|$ (moduli entrywise). Cauchy-Schwarz on the moduli and
$\|\Delta\|_2 \le \||\Delta|\|_2$ (true for complex matrices) finish as in Lemma C. Every
complex product has two real products whose underflow errors add, hence twice Rump's $\eta$
term. $\square$ `certify_lower` and `certify_upper` apply it to complex input with
$\gamma'_{n+3}$ and twice the $\eta$ terms in the Corollary's shift; the scaling by real
powers of two is exact for complex entries too. On the Gram symbols of `theory.gram_symbol`
this replaces the real $2n \times 2n$ embedding (Lemma C with $\gamma'_{2n+1}$) by an
$n \times n$ complex factorisation: a quarter of the real flops and a smaller margin.

**Lemma C' (banded).** Cholesky of a matrix of bandwidth $\beta$ creates no fill and every
inner product has at most $\beta$ non-zero terms, so Lemma C holds with $\gamma'_{\beta+2}$
(LAPACK `dpbtrf`).

Rump's negative control: a singular integer Gram matrix that plain floating-point Cholesky
accepts is refused here (tests/test_frames_certified.py).
"""

from __future__ import annotations

import numpy as np
import torch

#: unit roundoff of binary64
U = 2.0 ** -53
#: smallest positive subnormal of binary64
ETA = 2.0 ** -1074


def gamma(n: int | float) -> float:
    r"""$\gamma_n = nu/(1 - nu)$, the relative error bound of an $n$-term dot product.

    Examples
    --------
    >>> from theory.rigour import gamma
    >>> bool(abs(gamma(10) - 10 * 2.0 ** -53) < 1e-28)
    True
    """
    nu = n * U
    if nu >= 0.5:
        raise ValueError(f"gamma_{n} is undefined for n u >= 1/2")
    return nu / (1.0 - nu)


def gamma_prime(n: int) -> float:
    r"""$\gamma'_n = \gamma_n / (1 - \gamma_n)$ (Lemma C).

    Examples
    --------
    >>> from theory.rigour import gamma, gamma_prime
    >>> gamma_prime(5) > gamma(5)
    True
    """
    g = gamma(n)
    return g / (1.0 - g)


def _scaling(diag: np.ndarray) -> np.ndarray:
    """Powers of two `2^e` with `2^{2e} diag` in `[1/2, 2)` (exact scaling)."""
    e = -np.round(np.log2(diag) / 2.0)
    return np.ldexp(1.0, e.astype(np.int64))


def _margin(yd: np.ndarray, n: int, gp: float, axis=None, eta_factor: int = 1) -> np.ndarray:
    """The shift `c` of the Corollary (computed, then enlarged by 1e-3); `eta_factor` 2 for
    complex matrices (Lemma C_C)."""
    mx = np.abs(yd).max(axis=axis)
    return (gp * np.abs(yd).sum(axis=axis) * (1 + U) + 2 * U * mx * 1.01
            + eta_factor * (6 * n * (n + mx) * ETA + n * ETA)) * (1 + 1e-3)


def certify_lower(X: np.ndarray, t) -> np.ndarray | bool:
    r"""Prove $X_b - \operatorname{diag}(t_b) \succeq 0$ for a stack of symmetric matrices.

    Parameters
    ----------
    X : (B, n, n) or (n, n) float64, exactly symmetric, or complex128, exactly Hermitian
        The float values are the matrices the statement is about. Complex input is proved
        by Lemma C_C (module notes).
    t : scalar, (B,), (n,) or (B, n)
        The diagonal shift, taken as exact float values.

    Returns
    -------
    bool or (B,) bool array
        True: proved (the Corollary in the module notes). False: not proved (the Cholesky
        of the shifted matrix failed, or a shifted diagonal entry is not positive), never
        "false".

    Examples
    --------
    >>> import numpy as np
    >>> from theory.rigour import certify_lower
    >>> X = np.array([[2.0, 1.0], [1.0, 2.0]])          # eigenvalues 1 and 3
    >>> bool(certify_lower(X, 0.999)), bool(certify_lower(X, 1.001))
    (True, False)
    """
    return _certify(X, t, 1.0)


def _certify(X: np.ndarray, t, sign: float) -> np.ndarray | bool:
    """Prove ``sign * X_b - diag(t_b) >= 0`` (``sign`` is +1 or -1: negation is exact)."""
    cplx = np.iscomplexobj(X)
    X = np.asarray(X, dtype=np.complex128 if cplx else np.float64)
    squeeze = X.ndim == 2
    if squeeze:
        X = X[None]
    B, n, _ = X.shape
    t = np.asarray(t, dtype=np.float64)
    if t.ndim == 0:
        t = np.full((B, n), float(t))
    elif t.ndim == 1:
        t = t[None, :].copy() if (squeeze and t.shape == (n,)) else np.broadcast_to(
            t[:, None], (B, n)).copy()
    else:
        t = np.broadcast_to(t, (B, n)).copy()
    Xt = torch.from_numpy(X)
    Xh = Xt.transpose(1, 2).conj().resolve_conj() if cplx else Xt.transpose(1, 2)
    if not torch.equal(Xt, Xh):
        raise ValueError("certify_lower needs exactly symmetric (complex: Hermitian) matrices")
    diag = sign * np.diagonal(X, axis1=1, axis2=2).real   # exactly real when Hermitian
    shifted = diag - t                                  # only used to pick the scaling
    good = (shifted > 0).all(axis=1) & np.isfinite(diag).all(axis=1) & np.isfinite(t).all(axis=1)
    good &= torch.isfinite(Xt.sum(dim=(1, 2))).numpy()
    out = good.copy()
    if good.any():
        everyone = bool(good.all())
        gi = np.flatnonzero(good)
        s = _scaling(shifted[gi])
        st_ = torch.from_numpy(s)
        Y = Xt * st_[:, :, None] if everyone else Xt[torch.from_numpy(gi)] * st_[:, :, None]
        Y *= (sign * st_)[:, None, :]                   # exact (sign and powers of 2)
        yd = diag[gi] * s * s - t[gi] * s * s
        if cplx:                                        # Lemma C_C
            zd = yd - _margin(yd, n, gamma_prime(n + 3), axis=1, eta_factor=2)[:, None]
        else:                                           # Lemma C
            zd = yd - _margin(yd, n, gamma_prime(n + 1), axis=1)[:, None]
        idx = torch.arange(n)
        Y[:, idx, idx] = torch.from_numpy(zd).to(Y.dtype)     # complex: imaginary part 0
        positive = (zd > 0).all(axis=1)
        res = np.zeros(len(gi), bool)
        if positive.all():
            _, info = torch.linalg.cholesky_ex(Y)
            res[:] = info.numpy() == 0
        elif positive.any():
            _, info = torch.linalg.cholesky_ex(Y[torch.from_numpy(positive)])
            res[positive] = info.numpy() == 0
        out[gi] = res
    return bool(out[0]) if squeeze else out


def certify_upper(X: np.ndarray, b) -> np.ndarray | bool:
    r"""Prove $\lambda_{\max}(X_k) \le b_k$, i.e. $-X_k + b_k I \succeq 0$ (`certify_lower`).

    Examples
    --------
    >>> import numpy as np
    >>> from theory.rigour import certify_upper
    >>> X = np.array([[2.0, 1.0], [1.0, 2.0]])          # eigenvalues 1 and 3
    >>> bool(certify_upper(X, 3.001)), bool(certify_upper(X, 2.999))
    (True, False)
    """
    return _certify(X, -np.asarray(b, dtype=np.float64), -1.0)


def certify_lower_band(ab: np.ndarray, t) -> bool:
    r"""`certify_lower` for one symmetric matrix in LAPACK lower band storage (Lemma C').

    `ab[k, j] = X[j + k, j]` for `0 <= k <= beta`; `X` has zeros outside the band.

    Examples
    --------
    >>> import numpy as np
    >>> from theory.rigour import certify_lower_band
    >>> ab = np.array([[2.0, 2.0, 2.0], [-1.0, -1.0, 0.0]])   # tridiag(-1, 2, -1): lam_min 0.586
    >>> certify_lower_band(ab, 0.58), certify_lower_band(ab, 0.59)
    (True, False)
    """
    from scipy.linalg.lapack import dpbtrf

    ab = np.asarray(ab, dtype=np.float64)
    beta, n = ab.shape[0] - 1, ab.shape[1]
    tv = np.broadcast_to(np.asarray(t, dtype=np.float64), (n,)).astype(np.float64)
    diag = ab[0]
    shifted = diag - tv
    if not ((shifted > 0).all() and np.isfinite(ab).all() and np.isfinite(tv).all()):
        return False
    s = _scaling(shifted)
    Y = ab.copy()
    for k in range(1, min(beta, n - 1) + 1):
        Y[k, :n - k] *= s[k:] * s[:n - k]               # exact (powers of two)
    yd = diag * s * s - tv * s * s
    zd = yd - _margin(yd, n, gamma_prime(beta + 2))
    if not (zd > 0).all():
        return False
    Y[0] = zd
    _, info = dpbtrf(Y, lower=1, overwrite_ab=1)
    return bool(info == 0)


def to_band(X: np.ndarray, beta: int) -> np.ndarray:
    """Lower band storage `ab[k, j] = X[j + k, j]` (LAPACK `dpbtrf` with `lower=1`).

    Examples
    --------
    >>> import numpy as np
    >>> from theory.rigour import to_band
    >>> to_band(np.array([[2.0, -1.0], [-1.0, 2.0]]), 1).tolist()
    [[2.0, 2.0], [-1.0, 0.0]]
    """
    n = X.shape[0]
    ab = np.zeros((beta + 1, n))
    for k in range(min(beta, n - 1) + 1):
        ab[k, :n - k] = np.diagonal(X, -k)
    return ab


def from_band(ab: np.ndarray, symmetric: bool = True) -> np.ndarray:
    """The dense matrix of lower band storage `ab[k, j] = X[j + k, j]` (inverse of `to_band`).

    `symmetric=True`: the symmetric matrix the band stores; `False`: its lower triangle only
    (a Cholesky factor from `scipy.linalg.cholesky_banded(..., lower=True)`).

    Examples
    --------
    >>> import numpy as np
    >>> from theory.rigour import from_band
    >>> ab = np.array([[2.0, 2.0], [-1.0, 0.0]])
    >>> from_band(ab).tolist(), from_band(ab, symmetric=False).tolist()
    ([[2.0, -1.0], [-1.0, 2.0]], [[2.0, 0.0], [-1.0, 2.0]])
    """
    n = ab.shape[1]
    X = np.zeros((n, n))
    for k in range(min(ab.shape[0], n)):
        idx = np.arange(n - k)
        X[idx + k, idx] = ab[k, :n - k]
        if symmetric:
            X[idx, idx + k] = ab[k, :n - k]
    return X


def certify_lower_banded(X: np.ndarray, t, beta: int) -> bool:
    r"""`certify_lower_band` for a dense symmetric `X` of known bandwidth `beta` (checked).

    Examples
    --------
    >>> import numpy as np
    >>> from theory.rigour import certify_lower_banded
    >>> X = np.array([[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]])
    >>> certify_lower_banded(X, 0.58, 1), certify_lower_banded(X, 0.59, 1)
    (True, False)
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if not np.array_equal(X, X.T):
        raise ValueError("certify_lower_banded needs an exactly symmetric matrix")
    if beta < n - 1 and np.abs(np.tril(X, -beta - 1)).sum() != 0:
        raise ValueError(f"matrix has entries outside the claimed bandwidth {beta}")
    return certify_lower_band(to_band(X, beta), t)


def gram_with_error(matrix: np.ndarray) -> tuple[np.ndarray, float]:
    r"""$G = fl(A^TA)$, exactly symmetrised, and $\varepsilon_G \ge \|G - A^TA\|_2$.

    Notes
    -----
    Each entry is a dot product of length $M$: $|fl(A^TA) - A^TA| \le \gamma_M|A|^T|A|$
    entrywise; the symmetrisation $\frac12(G + G^T)$ adds at most $u|G|$, so
    $\gamma_{M+2}$ covers both. For a symmetric non-negative matrix
    $\|\cdot\|_2 \le \|\cdot\|_\infty$ (the largest row sum), whose computed value is
    enlarged by $\gamma_{M+D+2}$ to bound the exact one.

    Examples
    --------
    >>> import numpy as np
    >>> from theory.rigour import gram_with_error
    >>> G, eps = gram_with_error(np.array([[1.0, 2.0], [3.0, 4.0]]))
    >>> G.tolist(), bool(0 < eps < 1e-13)
    ([[10.0, 14.0], [14.0, 20.0]], True)
    """
    a = np.asarray(matrix, dtype=np.float64)
    m, d = a.shape
    G = a.T @ a
    G = 0.5 * (G + G.T)
    absa = np.abs(a)
    rows = float((absa.T @ absa).sum(axis=1).max()) * (1 + gamma(m + d + 2))
    return G, gamma(m + 2) * rows * (1 + 1e-6)


def certified_gram_interval(G: np.ndarray, eps: float, lam_lo: float, lam_hi: float
                            ) -> tuple[float | None, float | None]:
    r"""Certified $[\underline a, \bar b]$ with $\underline a \le \lambda_{\min}(H)$ and
    $\bar b \ge \lambda_{\max}(H)$ for every symmetric $H$ with $\|H - G\|_2 \le$ `eps`.

    Parameters
    ----------
    G : (n, n) exactly symmetric float64
    eps : float
        The bound on the distance to the matrix of interest (`gram_with_error`).
    lam_lo, lam_hi : float
        Untrusted estimates of the extreme eigenvalues of `G`; they only choose the
        shifts that Lemma C then proves.

    Returns
    -------
    (lower, upper)
        `None` for a side that could not be proved positive (lower) or at all (upper).

    Examples
    --------
    >>> import numpy as np
    >>> from theory.rigour import certified_gram_interval
    >>> G = np.array([[2.0, 1.0], [1.0, 2.0]])
    >>> lo, hi = certified_gram_interval(G, 1e-15, 1.0, 3.0)
    >>> bool(0.999999 < lo <= 1.0 and 3.0 <= hi < 3.000001)
    True
    """
    upper = None
    scale = max(abs(lam_hi), abs(lam_lo), 1e-300)
    for delta in (1e-12, 1e-10, 1e-8, 1e-6):
        b = lam_hi + delta * scale
        if certify_upper(G, b):
            upper = (b + eps) * (1 + 4 * U)
            break
    lower = None
    for delta in (1e-12, 1e-10, 1e-8, 1e-6, 1e-4):
        t = lam_lo - delta * scale
        if t - eps <= 0:
            break
        if certify_lower(G, t):
            lower = (t - eps) * (1 - 4 * U)
            break
    return lower, upper


__all__ = ["ETA", "U", "certified_gram_interval", "certify_lower", "certify_lower_band",
           "certify_lower_banded", "certify_upper", "from_band", "gamma", "gamma_prime",
           "gram_with_error", "to_band"]
