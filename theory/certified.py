r"""Certified frame bounds of any conv layer: polyphase symbol and tile certificates.

Notes
-----
`certify_conv(op)` returns a `Certificate` whose ``certified=True`` promises, rounding
included (`theory.rigour`),

$$
\text{lower} \le \sigma_{\min}(A)^2, \qquad \text{upper} \ge \sigma_{\max}(A)^2
$$

($\sigma_{\min}$ the $D$-th singular value, 0 when $M < D$). Sub-methods
(docs/theory/frame-bounds.md, "Certified bounds for every conv layer"):

``circulant``
    circular padding whose outputs cover the coarse torus $m$ times: Theorem E,
    $[m_{\min} a_\omega, m_{\max} b_\omega]$ from the per-frequency symbol
    (`theory.symbol`); exact when $m_{\min} = m_{\max}$.
``circulant+tiles``, ``dense-scatter``, ``circulant-upper``
    circular padding with some coarse positions never output (a row subset of the
    circulant): upper bound from the symbol, lower bound from the tiles, from the
    whole-image Gram, or 0 (inconclusive).
``tiles``, ``tiles(single)``
    zero padding: upper bound from the symbol on a canvas without wrap-around
    (Theorem U), lower bound from local certificates (Theorem T, `theory.tiles`); with one
    tile (the whole image) it is the certified dense Gram, exact up to rounding.
``full-padding-symbol``
    zero padding where every window meeting the image is an output (Theorem F):
    the symbol interval contains the spectrum.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
from scipy.sparse.linalg import eigsh

from theory.polyphase import Coarse, coarse_form
from theory.rigour import U, certify_lower, certify_upper
from theory.symbol import symbol_bounds
from theory.tiles import TileCertifier


class _Facts:
    """The numbers of an operator the dispatcher reads (K, M, D, padding mode)."""

    def __init__(self, op):
        self.K = op.layer.out_channels
        self.M, self.D = op.shape
        self.padding_mode = op.layer.padding_mode


#: Largest local problem for which the whole image is one tile (exact, dense).
SINGLE_TILE_LIMIT = 4000
#: Largest local problem of the tiled certificate at image size.
TILE_LIMIT = 2600
#: Candidate (P, R) per axis, best first (larger tiles are tighter, cost ~ n^3).
TILE_CANDIDATES = [(32, 16), (16, 16), (16, 8), (8, 8), (8, 4), (4, 4), (4, 2), (2, 2), (2, 1)]


@dataclasses.dataclass
class Certificate:
    """``lower``/``upper`` bounds on ``sigma_min(A)^2``/``sigma_max(A)^2``.

    ``certified`` - both proven, rounding included; ``exact`` - the interval is the true
    value up to rounding; ``method`` - the sub-method (module notes); ``conclusive`` - False
    when ``lower = 0`` only because no positive bound could be proved (not a proof of
    non-injectivity); ``details`` - the estimates, margins, tiles and timings behind them.

    Examples
    --------
    >>> from theory.certified import Certificate
    >>> Certificate(0.0, 2.0, True, "tiles", conclusive=False).conclusive
    False
    """

    lower: float
    upper: float
    certified: bool
    method: str
    exact: bool = False
    conclusive: bool = True
    details: dict = dataclasses.field(default_factory=dict)


def _tile_params(tc: TileCertifier, cf: Coarse, limit: int):
    """The largest candidate (P, R) whose local problems fit ``limit`` and are overdetermined."""
    K, Cc, kh, kw = cf.kernel.shape
    for P, R in TILE_CANDIDATES:
        ph, pw = min(P, max(cf.h.n_out, 1)), min(P, max(cf.w.n_out, 1))
        rh, rw = min(R, _pow2_le(ph)), min(R, _pow2_le(pw))
        lh = min(ph + rh - 1, cf.h.n_out)
        lw = min(pw + rw - 1, cf.w.n_out)
        n = Cc * (lh + kh - 1) * (lw + kw - 1)
        if n <= limit and K * lh * lw >= Cc * (lh + kh - 1) * (lw + kw - 1):
            return (ph, pw), (rh, rw), n
    return None


def _pow2_le(n: int) -> int:
    return 1 << (max(n, 1).bit_length() - 1)


def _dense_upper(tc: TileCertifier, G: np.ndarray):
    """Certified upper bound on lambda_max(A^T A) from the single-tile (whole image) Gram."""
    lam = float(eigsh(G, k=1, which="LA", return_eigenvectors=False, tol=1e-12)[0]) \
        if G.shape[0] > 50 else float(np.linalg.eigvalsh(G)[-1])
    delta = 1e-10
    for _ in range(6):
        b = lam * (1 + delta)
        if certify_upper(G, b):
            return (b + tc.eps_G) * (1 + 4 * U), lam
        delta *= 100
    return math.inf, lam


def certify_conv(op, *, tiles=None, tile_limit: int = TILE_LIMIT,
                 single_tile_limit: int = SINGLE_TILE_LIMIT) -> Certificate:
    """Certified lower and upper frame bounds of a shape-bound conv layer.

    Parameters
    ----------
    op : theory.ConvOperator
        Any stride, padding, dilation and padding mode.
    tiles : ((Ph, Pw), (Rh, Rw)), optional
        Force the tile period and ramp (powers of two for R); default: chosen by size.
    tile_limit, single_tile_limit : int
        Largest local problem (unknowns) of the tiled / single-tile certificate.

    Returns
    -------
    Certificate

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.certified import certify_conv
    >>> from theory.testing import reference_matrix
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((8, 1, 3, 3)), stride=2,
    ...                   padding=1)
    >>> cert = certify_conv(layer.at((1, 9, 9)))
    >>> s = np.linalg.svd(reference_matrix(layer, (1, 9, 9)), compute_uv=False)   # oracle
    >>> cert.certified, bool(cert.lower <= s[-1] ** 2 and s[0] ** 2 <= cert.upper)
    (True, True)
    """
    t0 = time.perf_counter()
    layer = _Facts(op)
    cf = coarse_form(op)
    details: dict = {"coarse_channels": cf.channels, "coarse_kernel": (cf.h.kq, cf.w.kq),
                     "coarse_step": (cf.h.g, cf.w.g)}
    K = layer.K
    # ------------------------------------------------------------ circular, covered torus
    if layer.padding_mode == "circular":
        mh, mw = cf.h.multiplicity(), cf.w.multiplicity()
        m = np.outer(mh, mw)
        details["multiplicity"] = (int(m.min()), int(m.max()))
        sb = symbol_bounds(cf, cf.h.torus, cf.w.torus, need_lower=m.min() >= 1)
        details["symbol"] = dataclasses.asdict(sb)
        upper = float(m.max()) * sb.upper * (1 + 2 * U)
        if m.min() >= 1:
            lower = float(m.min()) * sb.lower * (1 - 2 * U)
            if layer.M < layer.D:
                lower = 0.0
            details["seconds"] = time.perf_counter() - t0
            return Certificate(lower, upper, sb.certified, "circulant",
                                   exact=bool(m.min() == m.max()) and sb.certified, details=details)
        # some coarse positions are never output: a row subset of the circulant
        if layer.M < layer.D:
            details["lower_reason"] = "M < D: A is not injective, lower bound 0 is exact"
            details["seconds"] = time.perf_counter() - t0
            return Certificate(0.0, upper, sb.certified, "circulant-upper", details=details)
        try:
            tc = TileCertifier(cf)
        except ValueError as exc:
            if layer.D <= single_tile_limit and layer.M >= layer.D:
                return _dense_scatter(layer, cf, upper, sb.certified, details, t0)
            details["lower_reason"] = f"no lower-bound method for this geometry ({exc}); 0 is trivial"
            details["seconds"] = time.perf_counter() - t0
            return Certificate(0.0, upper, sb.certified, "circulant-upper", conclusive=False,
                               details=details)
        return _tiled(layer, cf, tc, upper, sb.certified, details, tiles, tile_limit,
                      single_tile_limit, t0, "circulant+tiles", op)
    # ------------------------------------------------------------ zero padding
    Nh, Nw = cf.h.min_canvas(), cf.w.min_canvas()
    full = cf.h.all_windows_present() and cf.w.all_windows_present()
    sb = symbol_bounds(cf, Nh, Nw, need_lower=full)
    details["symbol"] = dataclasses.asdict(sb)
    details["canvas"] = (Nh, Nw)
    if full:
        # Theorem F: A = C E exactly, A^T A is a compression of the circulant Gram: the symbol
        # minimum is a certified lower bound (cheap, loose on small images); the single-tile
        # certificate is used instead when the image is small enough for it
        K_, Cc_, kh_, kw_ = cf.kernel.shape
        n_single = min(Cc_ * (cf.h.n_out + kh_ - 1) * (cf.w.n_out + kw_ - 1), layer.D)
        if tiles is None and n_single > single_tile_limit:
            details["seconds"] = time.perf_counter() - t0
            lower = sb.lower if layer.M >= layer.D else 0.0
            return Certificate(lower, sb.upper, sb.certified, "full-padding-symbol",
                                   details=details)
    tc = TileCertifier(cf)
    return _tiled(layer, cf, tc, sb.upper, sb.certified, details, tiles, tile_limit,
                  single_tile_limit, t0, "tiles", op)


def _tiled(layer, cf, tc, upper, upper_ok, details, tiles, tile_limit, single_tile_limit, t0,
           method, op):
    K, Cc, kh, kw = cf.kernel.shape
    # unknowns of the single tile: image pixels only (absent ones are dropped)
    n_single = min(Cc * (cf.h.n_out + kh - 1) * (cf.w.n_out + kw - 1), layer.D)
    if layer.M < layer.D:
        details["lower_reason"] = "M < D: A is not injective, lower bound 0 is exact"
        details["seconds"] = time.perf_counter() - t0
        return Certificate(0.0, upper, upper_ok, method, details=details)
    if tiles is None and n_single <= single_tile_limit:
        P, R = (max(cf.h.n_out, 1), max(cf.w.n_out, 1)), (1, 1)
    elif tiles is None:
        choice = _tile_params(tc, cf, tile_limit)
        if choice is None:
            return _whole_band(op, tc, upper, upper_ok, details, t0, method,
                               f"no tile of at most {tile_limit} unknowns has more rows than "
                               "unknowns")
        P, R, _ = choice
    else:
        P, R = tiles
    one = P[0] >= cf.h.n_out and P[1] >= cf.w.n_out
    res = tc.certify(P, R, max_local=10**7 if one else max(tile_limit, single_tile_limit),
                     dense=one)
    details["tiles"] = {"P": P, "R": R, "types": len(res.types), "placements": res.n_tiles,
                        "max_local": res.max_local, "t": res.t, "s_min": res.s_min,
                        "eps_G": res.eps_G, "reason": res.reason, "seconds": res.seconds,
                        "type_estimates": [None if math.isnan(tt.est) else tt.est for tt in res.types],
                        "type_counts": [tt.count for tt in res.types]}
    exact = False
    single = len(res.types) == 1 and res.n_tiles == 1
    if single and res.verified:
        tt = res.types[0]
        # one tile with all weights 1 over every output: its Gram is A^T A itself
        if len(tt.Dv) == layer.D and tt.G is not None:
            ub, lam = _dense_upper(tc, tt.G)
            details["dense_upper_estimate"] = lam
            if ub < upper:
                upper = ub
            exact = True
    details["seconds"] = time.perf_counter() - t0
    conclusive = res.lower > 0 or res.reason.startswith("an image pixel is read by no")
    if not conclusive and tiles is None and not single:
        return _whole_band(op, tc, upper, upper_ok, details, t0, method,
                           f"the {P}x{R} tiles proved nothing ({res.reason})")
    if not conclusive:
        details["lower_reason"] = res.reason
    return Certificate(res.lower, upper, bool(res.verified and upper_ok),
                       method if not single else method + "(single)", exact=exact,
                       conclusive=conclusive, details=details)


def _whole_band(op, tc, upper, upper_ok, details, t0, method, reason):
    """The whole image as one banded tile (`theory.band_gram`) once the tiles proved nothing.

    Zero padding only (a circular whole-image tile aliases) and only when the band fits
    `theory.band_gram.band_affordable`; otherwise the trivial lower bound 0, inconclusive.
    """
    from theory.band_gram import band_affordable, certify_whole_band

    zero = tc.cf.h.torus is None and tc.cf.w.torus is None
    if not (zero and band_affordable(tc)):
        details["lower_reason"] = reason + "; certified lower bound 0 (trivial)"
        details["seconds"] = time.perf_counter() - t0
        return Certificate(0.0, upper, upper_ok, method, conclusive=False, details=details)
    br = certify_whole_band(tc, op)
    details["band"] = br.as_dict()
    details["seconds"] = time.perf_counter() - t0
    if br.lower > 0:
        return Certificate(br.lower, upper, upper_ok, method + "(band)", details=details)
    details["lower_reason"] = f"{reason}; the whole-image band: {br.reason}"
    return Certificate(0.0, upper, upper_ok, method + "(band)",
                       conclusive=br.reason.startswith("an image pixel is read by no"),
                       details=details)


def _dense_scatter(layer, cf, upper, upper_ok, details, t0):
    """Whole-image certificate from the scattered Gram (any output placement)."""

    from theory.tiles import dense_gram

    G, eps, _ = dense_gram(cf)
    if (np.diagonal(G) <= 0).any():
        details["lower_reason"] = "A has a zero column"
        return Certificate(0.0, upper, upper_ok, "dense-scatter", details=details)
    lam = np.linalg.eigvalsh(G)
    lower = 0.0
    for delta in (1e-9, 1e-7, 1e-5, 1e-3):
        t = lam[0] * (1 - delta) - delta * lam[-1] * 1e-3
        if t <= eps:
            break
        if certify_lower(G, t + eps * (1 + 4 * U)):
            lower = t * (1 - 4 * U)
            break
    for delta in (1e-10, 1e-8, 1e-6):
        b = lam[-1] * (1 + delta)
        if certify_upper(G, b):
            upper = min(upper, (b + eps) * (1 + 4 * U))
            break
    details["dense_eps_G"] = eps
    details["seconds"] = time.perf_counter() - t0
    if lower == 0:
        details["lower_reason"] = "the whole-image Gram is too close to singular for a proof"
    return Certificate(lower, upper, upper_ok, "dense-scatter", exact=lower > 0,
                       conclusive=lower > 0, details=details)



__all__ = ["Certificate", "SINGLE_TILE_LIMIT", "TILE_LIMIT", "certify_conv"]
