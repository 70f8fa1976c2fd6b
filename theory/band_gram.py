r"""The whole image as one banded tile: a certificate, or a fast estimate, of $a = \sigma_{\min}^2$.

Notes
-----
When no local tile is injective (a square layer, $K = C s_h s_w$, has as many outputs as
inputs on the whole image but fewer on any tile), the only local problem left is the whole
image: $G = A^TA$ itself. In the pixel order $(y, x, c')$ of the coarse grid
(`theory.polyphase`) $G$ is banded with bandwidth
$\beta = ((k'_h - 1) L_w + k'_w - 1) C' + C' - 1$ ($L_w$ the footprint width), so band
storage costs $(\beta + 1) n$ numbers and one Cholesky factorisation about $n \beta^2$
flops, without the dense matrix (`theory.tiles.TileCertifier.local_band`, the one-tile
partition $\varphi \equiv 1$, so $D = 1$ on every read pixel).

1. **Estimate.** Banded Cholesky $G = R^TR$ (LAPACK ``dpbtrf``) and Lanczos on
   $G^{-1} = R^{-1}R^{-T}$ (``dpbtrs`` per step): $\hat a = 1/\hat\mu_{\max}$, the shift-invert
   estimate, in a few dozen triangular solves, where Lanczos on $G$ needs thousands of conv
   passes for its crowded bottom eigenvalues. Its residual
   $r = \|A^TAv - \hat a v\|$ is computed through the layer's own conv and adjoint
   (`ConvOperator.linear_operator`), not through the band matrix: some eigenvalue of $A^TA$ lies
   within $r$ of $\hat a$, so $a \le \hat a + r$ (rounding of the residual aside).
2. **Certificate.** Lemma C' (`theory.rigour.certify_lower_band`) on
   $G - (tD + \varepsilon_G)I$ for $t$ a little below $\hat a$ (`TRIES`: below it by a
   relative $\delta$ and by $\kappa$ times the rounding shift the proof subtracts): a
   completed Cholesky proves $a \ge t \min D$ (Theorem T with one tile).

**Where it cannot prove anything.** Lemma C's shift is about $\gamma'_{\beta+2}\,n$ in the
diagonally scaled matrix, i.e. $a$ must exceed the floor $\gamma'_{\beta+2}\, n \min_i g_{ii}$
(about $\beta n u \min_i g_{ii}$). The random square $64 \to 64$ layer of
`benchmarks/inspect_network.py` at $16 \times 16$ has $\hat a \approx 3.3 \cdot 10^{-11}$ against
a floor of $5.1 \cdot 10^{-10}$: binary64 cannot certify it, and the attempt is skipped (the
estimate, labelled as one, is what `frame_bounds(..., "auto")` then returns). Its
$128 \to 128$ layer at $8 \times 8$ ($\hat a \approx 4.2 \cdot 10^{-9}$) is certified.

The route is taken only when the band fits `BAND_LIMIT_BYTES` and one factorisation
`BAND_FLOP_LIMIT` (AlexNet conv1 at $224^2$, $\beta \approx 6750$, would need 8 GB).
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import scipy.linalg as sl
from scipy.sparse.linalg import LinearOperator, eigsh

from theory.rigour import U, certify_lower_band, from_band, gamma, gamma_prime

#: Largest band storage (bytes) of the whole-image Gram matrix.
BAND_LIMIT_BYTES = 512 * 2 ** 20
#: Largest cost (flops, n beta^2) of one factorisation of the whole-image band.
BAND_FLOP_LIMIT = 3e11
#: The certificate is attempted at t = min(est (1 - delta), est - kappa floor_hi), in turn
#: (floor_hi: the Lemma C' shift with the largest diagonal entry, the gap a proof needs).
TRIES = ((1e-5, 1.1), (1e-3, 2.0), (0.1, 4.0), (0.5, 8.0))


@dataclasses.dataclass
class BandResult:
    """Outcome of `certify_whole_band`.

    ``lower`` - certified lower bound on $a$ (0 when nothing was proved); ``estimate`` - the
    shift-invert estimate $\\hat a$; ``residual`` - $\\|A^TAv - \\hat a v\\|$ through the conv
    (about the rounding floor when the Cholesky of $A^TA$ broke down: no vector);
    ``floor`` - the rounding shift of Lemma C' in unscaled units, below which no proof is
    possible; ``reason`` - why ``lower`` is 0, else ``"verified"``.
    """

    lower: float
    estimate: float
    residual: float
    floor: float
    eps_G: float
    n: int
    beta: int
    reason: str
    seconds: dict

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def band_size(tc) -> tuple[int, int]:
    """``(n, beta)`` of the whole-image footprint band of a `theory.tiles.TileCertifier`.

    The footprint includes the padding ring; `compress_band` then drops it, so the band that
    is factorised is at most this large (the affordability test uses this upper bound).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.polyphase import coarse_form
    >>> from theory.tiles import TileCertifier
    >>> layer = ConvLayer(np.ones((4, 4, 3, 3)), padding=1)
    >>> band_size(TileCertifier(coarse_form(layer.at((4, 16, 16)))))   # 4 x 18 x 18 footprint
    (1296, 155)
    """
    cf = tc.cf
    lh, lw = cf.h.n_out + tc.kh - 1, cf.w.n_out + tc.kw - 1
    n = tc.Cc * lh * lw
    beta = min(((tc.kh - 1) * lw + (tc.kw - 1)) * tc.Cc + tc.Cc - 1, max(n - 1, 0))
    return n, beta


def band_affordable(tc, limit_bytes: float | None = None,
                    limit_flops: float | None = None) -> bool:
    """Whether the whole-image band fits the memory and flop limits (module notes).

    The defaults are the module's `BAND_LIMIT_BYTES` and `BAND_FLOP_LIMIT`, read at call time.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.polyphase import coarse_form
    >>> from theory.tiles import TileCertifier
    >>> alexnet = ConvLayer(np.ones((96, 3, 11, 11)), stride=4, padding=2)
    >>> band_affordable(TileCertifier(coarse_form(alexnet.at((3, 224, 224)))))
    False
    >>> small = ConvLayer(np.ones((4, 4, 3, 3)), padding=1)
    >>> band_affordable(TileCertifier(coarse_form(small.at((4, 16, 16)))))
    True
    """
    limit_bytes = BAND_LIMIT_BYTES if limit_bytes is None else limit_bytes
    limit_flops = BAND_FLOP_LIMIT if limit_flops is None else limit_flops
    n, beta = band_size(tc)
    return (beta + 1) * n * 8 <= limit_bytes and n * float(beta) ** 2 <= limit_flops


def band_min_eigenpair(ab: np.ndarray, Dv: np.ndarray, tol: float = 1e-8
                       ) -> tuple[float, np.ndarray | None]:
    """Shift-invert estimate of min ``t`` with ``G - t D`` singular, and its vector.

    ``G`` in lower band storage ``ab``; rows with ``D = 0`` are identity rows of absent
    pixels, pushed out of the way. Returns ``(0.0, None)`` when the Cholesky of the scaled
    ``G`` breaks down (numerically singular). The vector is in the band's pixel order,
    unit norm in the unscaled coordinates.

    Examples
    --------
    >>> import numpy as np
    >>> ab = np.array([[2.0, 2.0, 2.0], [-1.0, -1.0, 0.0]])   # tridiag(-1, 2, -1)
    >>> lam, v = band_min_eigenpair(ab, np.ones(3))
    >>> round(lam, 6), round(float(2 - np.sqrt(2)), 6), v.shape
    (0.585786, 0.585786, (3,))
    """
    from theory.tiles import scaled_band

    n = ab.shape[1]
    Y, s, keep = scaled_band(ab, Dv)
    if not keep.any():
        return math.inf, None
    try:
        cb = sl.cholesky_banded(Y, lower=True, overwrite_ab=True, check_finite=False)
    except np.linalg.LinAlgError:
        return 0.0, None
    if n <= 16:   # tiny: the smallest eigenpair of L L^T from the dense factor
        L = from_band(cb, symmetric=False)
        lam, vecs = np.linalg.eigh(L @ L.T)
        mu, vec = 1.0 / lam[0], vecs[:, 0]
    else:
        op = LinearOperator((n, n), dtype=np.float64,
                            matvec=lambda v: sl.cho_solve_banded((cb, True), v,
                                                                 check_finite=False))
        # a seeded random start: a constant one can be orthogonal to the wanted eigenvector
        # by the layer's symmetry (Lanczos then converges to another eigenvalue; found by the
        # hypothesis property in tests/test_band_gram.py)
        v0 = np.random.default_rng(0).standard_normal(n)
        vals, vecs = eigsh(op, k=1, which="LA", tol=tol, v0=v0, ncv=min(n - 1, 24))
        mu, vec = vals[0], vecs[:, 0]
    x = s * vec                                    # back to the unscaled coordinates
    x[~keep] = 0.0
    norm = float(np.linalg.norm(x))
    return float(1.0 / mu), (x / norm if norm > 0 else None)


def compress_band(ab: np.ndarray, keep: np.ndarray) -> np.ndarray:
    r"""The band of the principal submatrix on the rows ``keep``, with its own bandwidth.

    Dropping rows and columns keeps the order, so the submatrix is banded again, with a
    bandwidth at most the old one (here: the footprint's padding ring and unread pixels,
    whose rows are identity rows, leave the problem; the cost $n\beta^2$ falls by up to
    2.3x on an 8x8 image). Entries are copied, not recomputed.

    Examples
    --------
    >>> import numpy as np
    >>> ab = np.array([[2.0, 1.0, 2.0, 3.0], [-1.0, 0.0, -1.0, 0.0]])   # row 1: identity
    >>> compress_band(ab, np.array([True, False, True, True])).tolist()
    [[2.0, 2.0, 3.0], [0.0, -1.0, 0.0]]
    """
    beta, n = ab.shape[0] - 1, ab.shape[1]
    keep = np.asarray(keep, bool)
    rank = np.cumsum(keep) - 1
    m = int(keep.sum())
    entries = []
    width = 0
    for k in range(beta + 1):
        j = np.arange(n - k)
        ok = keep[j] & keep[j + k] & ((ab[k, :n - k] != 0) if k else True)
        if not ok.any():
            continue
        jj = j[ok]
        kk = rank[jj + k] - rank[jj]
        width = max(width, int(kk.max()))
        entries.append((kk, rank[jj], ab[k, jj]))
    out = np.zeros((width + 1, m))
    for kk, cols, vals in entries:
        out[kk, cols] = vals
    return out


def certify_whole_band(tc, op=None) -> BandResult:
    r"""Certified lower bound on $\sigma_{\min}(A)^2$ from the whole-image banded Gram.

    Parameters
    ----------
    tc : theory.tiles.TileCertifier
        Of the layer's coarse form.
    op : theory.ConvOperator, optional
        The same layer; when given, the residual of the estimate is computed through its
        conv and adjoint (`linear_operator`), else it is reported as NaN.

    Returns
    -------
    BandResult

    Notes
    -----
    See the module notes: the estimate $\hat a$ chooses $t$; Lemma C' proves
    $G - (tD + \varepsilon_G) \succeq 0$, hence $a \ge t \min D$. No proof is attempted when
    $\hat a$ is below twice the rounding floor $\gamma'_{\beta+2}\, n \min_i g_{ii}$.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.polyphase import coarse_form
    >>> from theory.tiles import TileCertifier
    >>> from theory.testing import reference_matrix
    >>> layer = ConvLayer(np.random.default_rng(1).standard_normal((2, 2, 3, 3)), padding=1)
    >>> op = layer.at((2, 10, 10))                            # square: K = C
    >>> res = certify_whole_band(TileCertifier(coarse_form(op)), op)
    >>> a = np.linalg.svd(reference_matrix(layer, (2, 10, 10)), compute_uv=False)[-1] ** 2
    >>> res.reason, bool(0.99 * a <= res.lower <= a), bool(abs(res.estimate - a) <= 1e-6 * a)
    ('verified', True, True)
    """
    t0 = time.perf_counter()
    secs: dict = {}
    cf = tc.cf
    n, beta = band_size(tc)
    valid = tc.exists.reshape(-1)
    if (tc.den.reshape(-1)[valid] <= 0).any():
        return BandResult(0.0, 0.0, 0.0, 0.0, tc.eps_G, n, beta,
                          "an image pixel is read by no nonzero weight: A has a zero column", secs)
    phi_h, phi_w = np.ones(cf.h.n_out), np.ones(cf.w.n_out)
    ab, Dv, gl = tc.local_band(0, phi_h, 0, phi_w)
    if not (np.isfinite(ab).all() and np.isfinite(Dv).all()):
        return BandResult(0.0, 0.0, 0.0, 0.0, tc.eps_G, n, beta,
                          "no positive bound provable: the Gram matrix A^T A overflows binary64 "
                          f"(largest weight {cf.kernel.__abs__().max():.3e}); scale the layer "
                          "to unit size first, as frame_bounds does", secs)
    keep = Dv > 0
    ab, Dv, gl = compress_band(ab, keep), Dv[keep], gl[keep]
    n, beta = ab.shape[1], ab.shape[0] - 1
    secs["assemble"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    est, vec = band_min_eigenpair(ab, Dv)
    secs["estimate"] = time.perf_counter() - t1
    residual = math.nan
    if vec is not None and op is not None:
        xc = np.zeros(cf.channels * cf.h.n_in * cf.w.n_in)
        use = gl >= 0
        xc[gl[use]] = vec[use]
        x = cf.from_coarse(xc.reshape(1, cf.channels, cf.h.n_in, cf.w.n_in)).reshape(-1)
        nx = float(np.linalg.norm(x))
        if nx > 0:
            x = x / nx
            # through the conv and its adjoint (not the band, and not `gram_operator`, which a
            # caller may have put under a time budget meant for Lanczos)
            lin = op.linear_operator
            residual = float(np.linalg.norm(lin.rmatvec(lin.matvec(x)) - est * x))
    read = Dv > 0
    gmin = float(ab[0, read].min()) if read.any() else 0.0
    gmax = float(ab[0, read].max()) if read.any() else 0.0
    floor = gamma_prime(beta + 2) * int(read.sum()) * gmin + tc.eps_G
    floor_hi = gamma_prime(beta + 2) * int(read.sum()) * gmax + tc.eps_G
    d_min = float(Dv[read].min()) if read.any() else 0.0
    s_min = d_min * (1 - gamma(2))
    t1 = time.perf_counter()
    lower, reason = 0.0, ""
    if vec is None and est == 0.0:
        # the Cholesky of G itself broke down: G is numerically singular. Cholesky completes
        # when the scaled matrix's smallest eigenvalue exceeds about gamma_{beta+2} n (Demmel
        # 1989), so some eigenvalue of A^T A lies within about floor_hi of 0 (an estimate)
        residual = floor_hi
        reason = (f"the banded Cholesky of A^T A broke down: numerically singular (an eigenvalue "
                  f"within about {floor_hi:.3e} of 0); no positive bound provable")
    elif not est > 2 * floor:
        reason = (f"no positive bound provable in binary64: the estimate {est:.3e} is below twice "
                  f"the rounding floor {floor:.3e} of Lemma C' (n = {n}, bandwidth {beta})")
    else:
        for delta, kappa in TRIES:
            t = min(est * (1 - delta), est - kappa * floor_hi)
            if not t > 0:
                reason = (f"the Cholesky proof failed at every positive t tried below the "
                          f"estimate {est:.3e} (rounding floor {floor_hi:.3e}); certified "
                          "lower bound 0")
                break
            shift = (t * Dv + tc.eps_G) * (1 + 4 * U)
            if certify_lower_band(ab, shift):
                lower, reason = t * s_min * (1 - 4 * U), "verified"
                break
        else:
            reason = (f"the Cholesky proof failed at every t tried below the estimate "
                      f"{est:.3e} (rounding floor {floor_hi:.3e}); certified lower bound 0")
    secs["verify"] = time.perf_counter() - t1
    secs["total"] = time.perf_counter() - t0
    return BandResult(lower, est, residual, floor, tc.eps_G, n, beta, reason, secs)


__all__ = ["BAND_FLOP_LIMIT", "BAND_LIMIT_BYTES", "BandResult", "band_affordable",
           "band_min_eigenpair", "band_size", "certify_whole_band", "compress_band"]
