r"""Certified lower frame bound of a row-subset conv by local (tile) certificates.

Notes
-----
Write ``A^T A = sum_i B_i^T B_i`` over the output positions ``i`` (``B_i``: the ``K`` rows of
output ``i``). Choose weights ``phi_b(i) >= 0`` with ``sum_b phi_b(i) = 1`` *exactly* for every
output, and diagonal ``D_b >= 0``. Then ``A^T A = sum_b G_b`` with
``G_b = sum_i phi_b(i) B_i^T B_i``, and

    **Theorem T.** If ``G_b >= t D_b`` for every ``b`` and ``sum_b D_b >= s I``, then
    ``sigma_min(A)^2 >= t s``.

*Proof.* ``x^T A^T A x = sum_b x^T G_b x >= t sum_b x^T D_b x >= t s ||x||^2``. ``[]``

Each ``G_b`` lives on the footprint of its tile (the pixels its windows read), so the
condition is a small dense problem. The weights are products of 1-D trapezoids: period
``P``, ramps of ``R - 1`` points, values ``j / R`` with ``R`` a power of two, so every weight,
every product and every partial sum is exact in binary64 and ``sum_b phi_b = 1`` holds
exactly. ``D_b(x) = diag(G_b)(x) / diag(A^T A)(x)`` (the share of pixel ``x``'s coverage owned
by tile ``b``); ``sum_b D_b = 1`` in exact arithmetic and the code bounds the computed sum from
below. Tiles whose data (weights, which footprint pixels exist) coincide have *identical*
``G_b`` up to translation, so one certificate serves them all: at image size there are at
most a few distinct tiles per axis (first, interior, last), about nine in 2-D.

Rounding: ``G_b`` is assembled from ``Z = W^T W`` (``W`` the coarse kernel as ``K x C' kq_h
kq_w``); every entry of the computed ``G~_b`` is a sum of at most ``kq_h kq_w`` products
``phi * Z~``, so ``|G~_b - G_b| <= 2 gamma_{K + kq_h kq_w + 2} Gabs`` entrywise, and the row
sums of ``Gabs`` are at most ``kq_h kq_w rho``, ``rho = || |W|^T |W| ||_inf``; hence
``||G~_b - G_b||_2 <= eps_G = 2 gamma_{K + kq_h kq_w + 2} kq_h kq_w rho``. The check proves
``G~_b - diag(t D~_b + eps_G) >= 0`` with Lemma C (``rigour``), which gives ``G_b >= t D~_b``.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import scipy.linalg as sl
from numpy.lib.stride_tricks import as_strided
from scipy.sparse.linalg import LinearOperator, eigsh

from theory.polyphase import Coarse
from theory.rigour import U, certify_lower_band, certify_lower_banded, from_band, gamma, to_band


#: Estimate only the most frequent tile class before the verification, and the others when
#: their proof fails (False: every class up front). Every class is proved either way; a proof
#: at some t holds below it, and a class whose proof fails at t has its estimate below about t,
#: so the final t is within the margin of the smallest estimate, as without the screen.
SCREEN = True


def partition_1d(n_out: int, P: int, R: int) -> list[tuple[int, np.ndarray]]:
    """Trapezoid partition of unity on outputs ``0..n_out-1``: ``[(start, weights), ...]``.

    ``f(x) = clip((x + R) / R, 0, 1)``; tile ``b`` has weights ``f(i - bP) - f(i - (b+1)P)``
    (the last one ``f(i - bP)``); the sum telescopes to ``f(i) = 1`` for ``i >= 0``.
    """
    if R < 1 or R & (R - 1):
        raise ValueError(f"ramp R must be a power of two (exact weights), got {R}")
    if R > P:
        raise ValueError(f"ramp R={R} must not exceed the period P={P}")
    i = np.arange(n_out)
    f = lambda x: np.clip((x + R) / R, 0.0, 1.0)  # noqa: E731  (values j / R: exact)
    nb = (n_out - 1) // P + 1
    tiles = []
    for b in range(nb):
        wgt = f(i - b * P) - (f(i - (b + 1) * P) if b < nb - 1 else 0.0)
        nz = np.nonzero(wgt)[0]
        tiles.append((int(nz[0]), wgt[nz[0]:nz[-1] + 1].copy()))
    return tiles


@dataclasses.dataclass
class TileType:
    key: tuple
    start: tuple[int, int]           # representative tile's output start (rows, cols)
    phi: tuple[np.ndarray, np.ndarray]
    count: int = 0
    G: np.ndarray | None = None      # (n, n) over the kept local pixels
    Dv: np.ndarray | None = None     # (n,)
    local_index: np.ndarray | None = None   # kept pixels as flat index into (C', Lh, Lw)
    est: float = math.nan
    verified: bool = False
    seconds: float = 0.0
    folded: bool = False
    ab: np.ndarray | None = None     # lower band storage (unfolded tiles)
    gl: np.ndarray | None = None     # global index of every local pixel (-1: absent)


@dataclasses.dataclass
class TileResult:
    lower: float
    t: float
    s_min: float
    eps_G: float
    types: list
    n_tiles: int
    max_local: int
    P: tuple[int, int]
    R: tuple[int, int]
    verified: bool
    reason: str
    seconds: dict


class TileCertifier:
    """Local certificates for ``A = S C E`` (zero padding, or circular with ``H' <= N``)."""

    def __init__(self, cf: Coarse):
        self.cf = cf
        W = cf.kernel
        K, Cc, kh, kw = W.shape
        if cf.h.torus is not None and not (cf.h.g == cf.h.s and cf.w.g == cf.w.s
                                           and cf.h.n_out <= cf.h.torus and cf.w.n_out <= cf.w.torus):
            raise ValueError("tiles support circular layers only with stride | size and H' <= H/s")
        self.K, self.Cc, self.kh, self.kw = K, Cc, kh, kw
        Wf = W.reshape(K, -1)
        Z = Wf.T @ Wf
        Z = 0.5 * (Z + Z.T)            # exactly symmetric; adds at most u|Z| to the error
        self.Z6 = Z.reshape(Cc, kh, kw, Cc, kh, kw)
        absZ = np.abs(Wf).T @ np.abs(Wf)
        rho = float(absZ.sum(axis=1).max()) * (1 + gamma(Wf.shape[1] + K + 2))
        self.eps_G = 2 * gamma(K + kh * kw + 4) * kh * kw * rho * (1 + 1e-6)
        # which tap pairs carry anything (skip all-zero blocks)
        blk = np.abs(self.Z6).sum(axis=(0, 3))                  # (kh, kw, kh, kw)
        self.pairs = [tuple(p) for p in np.argwhere(blk > 0)]
        self.den = self._coverage()
        self.exists = self.cf.pixel_mask()

    # ------------------------------------------------------------------ global coverage
    def _rows(self, ax, start, length):
        """Global coarse rows of a local footprint (None where absent), and existence per phase."""
        v = start + ax.qmin + np.arange(length)
        if ax.torus is not None:
            return v % ax.torus, np.ones((ax.g, length), bool)
        ok = (v >= 0) & (v < ax.n_in)
        ex = np.zeros((ax.g, length), bool)
        ex[:, ok] = ax.phase_exists[:, v[ok]]
        return np.where(ok, v, -1), ex

    def _coverage(self) -> np.ndarray:
        """diag(A^T A) on the coarse pixel grid, (C', n_in_h, n_in_w)."""
        h, w = self.cf.h, self.cf.w
        zd = np.einsum("cabcab->cab", self.Z6)                  # (C', kh, kw)
        den = np.zeros((self.Cc, h.n_in, w.n_in))
        for a in range(self.kh):
            rows = h.out_pos + h.qmin + a
            rows = rows % h.torus if h.torus is not None else rows
            okr = (rows >= 0) & (rows < h.n_in)
            for b in range(self.kw):
                cols = w.out_pos + w.qmin + b
                cols = cols % w.torus if w.torus is not None else cols
                okc = (cols >= 0) & (cols < w.n_in)
                R_, C_ = np.meshgrid(rows[okr], cols[okc], indexing="ij")
                for c in range(self.Cc):
                    np.add.at(den[c], (R_.ravel(), C_.ravel()), zd[c, a, b])
        return den

    # ------------------------------------------------------------------ one local problem
    def assemble(self, phi_h: np.ndarray, phi_w: np.ndarray) -> np.ndarray:
        """Local ``G`` on the unclipped footprint grid, pixel order (y, x, c'), dense.

        The (y, x, c') order makes ``G`` banded with bandwidth below
        ``((kq_h - 1) Lw + kq_w) C'``.
        """
        Cc, kh, kw = self.Cc, self.kh, self.kw
        nh, nw = len(phi_h), len(phi_w)
        Lh, Lw = nh + kh - 1, nw + kw - 1
        G6 = np.zeros((Lh, Lw, Cc, Lh, Lw, Cc))
        S = G6.strides
        flat = G6.reshape(-1)
        phi = np.outer(phi_h, phi_w)[:, :, None, None]          # exact products
        for (uh, uw, vh, vw) in self.pairs:
            off = uh * S[0] + uw * S[1] + vh * S[3] + vw * S[4]
            view = as_strided(flat[off // 8:], shape=(nh, nw, Cc, Cc),
                              strides=(S[0] + S[3], S[1] + S[4], S[2], S[5]))
            view += phi * self.Z6[:, uh, uw, :, vh, vw][None, None, :, :]
        n = Cc * Lh * Lw
        G = G6.reshape(n, n)
        # the transposed entries accumulated the same terms in another order: make G exactly
        # symmetric (the average is within the same error bound plus u |G|)
        G += G.T
        G *= 0.5
        return G

    def _local_globals(self, start_h, len_h, start_w, len_w):
        """Global flat indices and existence of a footprint's pixels, order (y, x, c')."""
        cf = self.cf
        Lh, Lw = len_h + self.kh - 1, len_w + self.kw - 1
        rows, ex_h = self._rows(cf.h, start_h, Lh)
        cols, ex_w = self._rows(cf.w, start_w, Lw)
        c_idx = np.arange(self.Cc)
        rh = (c_idx // cf.w.g) % cf.h.g
        rw = c_idx % cf.w.g
        exists = ex_h[rh].T[:, None, :] & ex_w[rw].T[None, :, :]      # (Lh, Lw, C')
        gl = ((c_idx[None, None, :] * cf.h.n_in + np.maximum(rows, 0)[:, None, None]) * cf.w.n_in
              + np.maximum(cols, 0)[None, :, None])
        ex = np.flatnonzero(exists.reshape(-1))
        return ex, gl.reshape(-1)[ex]

    def local_band(self, start_h, phi_h, start_w, phi_w):
        """Local ``G`` in lower band storage over the whole footprint grid, order (y, x, c').

        Absent pixels (outside the image) and pixels no window of the tile reads get an
        identity row and ``D = 0``: the band matrix is then ``G (+) I``, and
        ``G (+) I - diag(t D + eps) >= 0`` iff ``G - t D - eps I >= 0`` (``eps < 1``).
        Each entry is one sum over the taps ``u`` for its pixel offset: at most
        ``kq_h kq_w`` products ``phi * Z~`` (the rounding bound of the module notes).
        """
        Cc, kh, kw = self.Cc, self.kh, self.kw
        nh, nw = len(phi_h), len(phi_w)
        Lh, Lw = nh + kh - 1, nw + kw - 1
        n = Lh * Lw * Cc
        beta = ((kh - 1) * Lw + (kw - 1)) * Cc + Cc - 1
        ab = np.zeros((beta + 1, n))
        phi = np.outer(phi_h, phi_w)[:, :, None, None]
        cc, dd = np.meshgrid(np.arange(Cc), np.arange(Cc), indexing="ij")
        for dy in range(kh):
            for dx in range(-(kw - 1), kw):
                if dy == 0 and dx < 0:
                    continue
                B = np.zeros((Lh, Lw, Cc, Cc))
                any_ = False
                for uh in range(max(0, -dy), min(kh, kh - dy)):
                    for uw in range(max(0, -dx), min(kw, kw - dx)):
                        blk = self.Z6[:, uh, uw, :, uh + dy, uw + dx]
                        if not blk.any():
                            continue
                        B[uh:uh + nh, uw:uw + nw] += phi * blk[None, None]
                        any_ = True
                if not any_:
                    continue
                y0, y1 = 0, Lh - dy
                x0, x1 = max(0, -dx), Lw - max(0, dx)
                ys, xs = np.meshgrid(np.arange(y0, y1), np.arange(x0, x1), indexing="ij")
                j = ((ys * Lw + xs)[:, :, None, None] * Cc + cc[None, None])          # (c)
                k = (dy * Lw + dx) * Cc + (dd - cc)[None, None]                        # (d - c)
                k = np.broadcast_to(k, j.shape)
                vals = B[y0:y1, x0:x1]
                sel = k >= 0                       # the diagonal block: lower triangle only
                ab[k[sel], j[sel]] = vals[sel]
        ex, gl = self._local_globals(start_h, nh, start_w, nw)
        m = np.zeros(n, bool)
        m[ex] = True
        for kk in range(beta + 1):
            ab[kk, :n - kk] *= m[:n - kk] & m[kk:]
        num = ab[0].copy()
        keep = num > 0
        for kk in range(1, beta + 1):       # rows of unread pixels are exactly zero
            bad = (ab[kk, :n - kk] != 0) & ~(keep[:n - kk] & keep[kk:])
            if bad.any():
                raise AssertionError("a pixel with zero coverage has a non-zero Gram entry")
        glf = np.full(n, -1, np.int64)
        glf[ex] = gl
        Dv = np.zeros(n)
        Dv[keep] = num[keep] / self.den.reshape(-1)[glf[keep]]
        ab[0, ~keep] = 1.0
        glf[~keep] = -1
        return ab, Dv, glf

    def local_problem(self, start_h, phi_h, start_w, phi_w):
        ex, gl = self._local_globals(start_h, len(phi_h), start_w, len(phi_w))
        G = self.assemble(phi_h, phi_w)
        if len(ex) < G.shape[0]:
            G = G[np.ix_(ex, ex)]
        uniq, inv = _first_occurrence(gl)
        self._folded = len(uniq) < len(gl)
        if len(uniq) < len(gl):
            # circular: local pixels that alias mod N are one global pixel. The tile's Gram in
            # global coordinates is F^T G F, F the 0/1 folding map (exact sums of entries).
            Gf = np.zeros((len(uniq), len(gl)))
            np.add.at(Gf, inv, G)
            G = np.zeros((len(uniq), len(uniq)))
            np.add.at(G.T, inv, Gf.T)
            G = 0.5 * (G + G.T)
            gl = uniq
        num = np.diagonal(G).copy()
        keep = np.flatnonzero(num > 0)
        den = self.den.reshape(-1)[gl[keep]]
        if len(keep) < G.shape[0]:
            G = G[np.ix_(keep, keep)]
        return G, num[keep] / den, keep, gl[keep]

    def band_bound(self, tt) -> int:
        """Bandwidth bound of a local G in (y, x, c') order (dropping pixels only shrinks it).

        Folded (aliased circular) tiles have no band structure: the dense size is returned.
        """
        Lw = len(tt.phi[1]) + self.kw - 1
        beta = ((self.kh - 1) * Lw + self.kw) * self.Cc
        return min(beta, len(tt.Dv) - 1) if not tt.folded else max(len(tt.Dv) - 1, 0)

    # ------------------------------------------------------------------ the certificate
    def certify(self, P: tuple[int, int], R: tuple[int, int], max_local: int = 6000,
                est_only: bool = False, dense: bool = False) -> TileResult:
        t0 = time.perf_counter()
        cf = self.cf
        secs = {}
        valid = self.exists.reshape(-1)
        if (self.den.reshape(-1)[valid] <= 0).any():
            return TileResult(0.0, 0.0, 0.0, self.eps_G, [], 0, 0, P, R, True,
                              "an image pixel is read by no nonzero weight: A has a zero column",
                              secs)
        th = partition_1d(cf.h.n_out, P[0], R[0])
        tw = partition_1d(cf.w.n_out, P[1], R[1])
        types: dict = {}
        placements = []
        for sh, ph in th:
            _, exh = self._rows(cf.h, sh, len(ph) + self.kh - 1)
            for sw, pw in tw:
                _, exw = self._rows(cf.w, sw, len(pw) + self.kw - 1)
                key = (ph.tobytes(), exh.tobytes(), pw.tobytes(), exw.tobytes())
                if key not in types:
                    types[key] = TileType(key, (sh, sw), (ph, pw))
                types[key].count += 1
                placements.append((key, sh, sw))
        tlist = list(types.values())
        biggest = max(self.Cc * (len(t.phi[0]) + self.kh - 1) * (len(t.phi[1]) + self.kw - 1)
                      for t in tlist)
        if biggest > max_local:
            raise ValueError(f"local problem of size {biggest} exceeds max_local={max_local}")
        # local problems; their estimates on demand (see the verification below)
        for tt in tlist:
            t1 = time.perf_counter()
            _, gl0 = self._local_globals(tt.start[0], len(tt.phi[0]), tt.start[1], len(tt.phi[1]))
            tt.folded = len(np.unique(gl0)) < len(gl0)
            if tt.folded or dense:
                G, Dv, li, gl = self.local_problem(tt.start[0], tt.phi[0], tt.start[1], tt.phi[1])
                tt.G, tt.Dv, tt.local_index = G, Dv, li
            else:
                tt.ab, tt.Dv, tt.gl = self.local_band(tt.start[0], tt.phi[0], tt.start[1], tt.phi[1])
            tt.seconds = time.perf_counter() - t1

        def estimate(tt) -> bool:
            """The (uncertified) estimate of one class, once; True if it was computed now."""
            if not math.isnan(tt.est):
                return False
            t1 = time.perf_counter()
            if tt.ab is not None:
                tt.est = _band_lambda_min(tt.ab, tt.Dv)
            else:
                tt.est = _gen_lambda_min(tt.G, tt.Dv, self.band_bound(tt))
            tt.seconds += time.perf_counter() - t1
            return True

        # screening: only the most frequent class (the interior tile) is estimated up front; a
        # class is estimated when its proof at the current t fails (est_only: every class)
        for tt in (tlist if (est_only or not SCREEN) else [max(tlist, key=lambda c: c.count)]):
            estimate(tt)
        secs["local"] = time.perf_counter() - t0
        # the partition of unity of the D's, summed over all placements (rigorous lower bound)
        t1 = time.perf_counter()
        Ssum = np.zeros(valid.size)
        count = np.zeros(valid.size, np.int64)
        for key, sh, sw in placements:
            tt = types[key]
            if tt.ab is not None:
                _, gl = self._local_globals(sh, len(tt.phi[0]), sw, len(tt.phi[1]))
                glf = np.full(len(tt.Dv), -1, np.int64)
                glf[_] = gl
                use = tt.gl >= 0                      # same local pattern as the representative
                np.add.at(Ssum, glf[use], tt.Dv[use])
                np.add.at(count, glf[use], 1)
                continue
            _, _, li, gl = self._placement_index(tt, sh, sw)
            np.add.at(Ssum, gl, tt.Dv)
            np.add.at(count, gl, 1)
        cmax = int(count.max())
        s_min = float(Ssum[valid].min()) * (1 - gamma(cmax + 1))
        secs["partition"] = time.perf_counter() - t1
        est = min(tt.est for tt in tlist if not math.isnan(tt.est))
        if est_only:
            return TileResult(est * s_min, est, s_min, self.eps_G, tlist, len(placements),
                              biggest, P, R, False, "estimate only", secs)
        if not est > 0:
            return TileResult(0.0, 0.0, s_min, self.eps_G, tlist, len(placements), biggest, P, R,
                              True, "a local problem is singular: certified lower bound 0", secs)
        # verification: one global t, every distinct local problem
        t1 = time.perf_counter()
        # relative accuracy of the estimates: dense eigh (n <= 800 dense, 300 band) ~1e-12,
        # Lanczos on the inverse with tol 1e-6: the verification starts 1e-5 below it
        dense_est = all((len(tt.Dv) <= 800 and tt.ab is None) or (tt.ab is not None and len(tt.Dv) <= 300)
                        for tt in tlist)
        delta = 1e-9 if dense_est else 1e-5
        t = None
        # absolute slack of Lemma C in unscaled units (about 2 gamma'_{beta+2} n max g_ii per
        # class, plus eps_G): near-singular local problems need t below est by that much
        m_abs = 0.0
        for tt in tlist:
            if (tt.Dv > 0).any():
                n_b = len(tt.Dv)
                beta_b = (tt.ab.shape[0] - 1) if tt.ab is not None else self.band_bound(tt)
                gmax = float(tt.ab[0].max() if tt.ab is not None else np.diagonal(tt.G).max())
                dmin = float(tt.Dv[tt.Dv > 0].min())
                m_abs = max(m_abs, (2 * gamma(beta_b + 2) * n_b * gmax + 2 * self.eps_G) / dmin)
        tries = [(delta * 10 ** j, 0.0) for j in range(3)] + [(delta, 2.0 ** j) for j in range(0, 6)]
        proved_at = {id(tt): -math.inf for tt in tlist}   # the largest t proved for a class
        j = 0
        while j < len(tries):
            delta_j, kappa = tries[j]
            t_try = est * (1 - delta_j) - kappa * m_abs
            if t_try <= 0:
                break
            ok, lowered = True, False
            for tt in tlist:
                if proved_at[id(tt)] >= t_try:       # G - t D >= 0 at t implies it below t
                    continue
                if not (tt.Dv > 0).any():    # G_b = 0 and D_b = 0: nothing to prove
                    proved_at[id(tt)] = math.inf
                    continue
                shift = (t_try * tt.Dv + self.eps_G) * (1 + 4 * U)
                if tt.ab is not None:
                    good = bool(certify_lower_band(tt.ab, shift))
                else:
                    good = bool(certify_lower_banded(tt.G, shift, self.band_bound(tt)))
                if good:
                    proved_at[id(tt)] = t_try
                    continue
                ok = False
                if estimate(tt) and tt.est < est:   # a class below the estimate so far
                    est, lowered = tt.est, True
            if ok:
                t = t_try
                break
            if lowered:
                if not est > 0:
                    break
                j = 0                                # the same margins from the new estimate
                continue
            j += 1
        for tt in tlist:
            tt.verified = t is not None and proved_at[id(tt)] >= t
        if not est > 0:
            secs["verify"] = time.perf_counter() - t1
            return TileResult(0.0, 0.0, s_min, self.eps_G, tlist, len(placements), biggest, P,
                              R, True, "a local problem is singular: certified lower bound 0",
                              secs)
        secs["verify"] = time.perf_counter() - t1
        secs["total"] = time.perf_counter() - t0
        if t is None:
            # 0 is always a valid lower bound: the local problems are too close to singular
            # for a positive bound to be proven at this precision
            return TileResult(0.0, 0.0, s_min, self.eps_G, tlist, len(placements), biggest, P, R,
                              True, f"no positive bound provable (estimate {est:.3e}); lower 0",
                              secs)
        lower = t * s_min * (1 - 4 * U)
        return TileResult(lower, t, s_min, self.eps_G, tlist, len(placements), biggest, P, R,
                          True, "verified", secs)

    def _placement_index(self, tt, sh, sw):
        """Global pixel indices of a placement of type ``tt`` (same local pixel order)."""
        _, gl = self._local_globals(sh, len(tt.phi[0]), sw, len(tt.phi[1]))
        uniq, _ = _first_occurrence(gl)
        if len(uniq) < len(gl):
            gl = uniq
        return None, None, tt.local_index, gl[tt.local_index]


def _first_occurrence(gl: np.ndarray):
    """Distinct values of ``gl`` in order of first occurrence, and the inverse map.

    The order depends only on the local aliasing pattern, so translated tiles list their
    global pixels in the same (local) order as their representative.
    """
    u, first, inv = np.unique(gl, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return u[order], rank[inv]


def _gen_lambda_min(G: np.ndarray, Dv: np.ndarray, beta: int) -> float:
    """Estimate (uncertified) of the smallest ``t`` with ``G - t D`` singular.

    Banded Cholesky of ``D^{-1/2} G D^{-1/2}`` and Lanczos on its inverse; dense ``eigh``
    for small or numerically indefinite problems.
    """
    n = len(Dv)
    if n == 0:
        return math.inf
    s = 1.0 / np.sqrt(Dv)
    Gh = G * s[:, None] * s[None, :]
    if n <= 300:
        return float(sl.eigh(Gh, eigvals_only=True, subset_by_index=[0, 0])[0])
    try:
        cb = sl.cholesky_banded(to_band(Gh, beta), lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return float(sl.eigh(Gh, eigvals_only=True, subset_by_index=[0, 0])[0])
    op = LinearOperator((n, n), dtype=np.float64,
                        matvec=lambda v: sl.cho_solve_banded((cb, True), v, check_finite=False))
    mu = eigsh(op, k=1, which="LA", tol=1e-6, v0=np.ones(n), ncv=min(n, 20),
               return_eigenvectors=False)
    return float(1.0 / mu[0])


def scaled_band(ab: np.ndarray, Dv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Y, s, keep)``: ``Y = D^{-1/2} G D^{-1/2}`` in band storage, ``s = D^{-1/2}``.

    ``G - t D`` is singular iff ``Y - t I`` is (on the rows with ``D > 0``); rows with
    ``D = 0`` (identity rows of absent pixels) get a diagonal far above the rest, out of the
    way of the smallest eigenvalue. ``keep`` marks the rows with ``D > 0``.
    """
    beta, n = ab.shape[0] - 1, ab.shape[1]
    keep = Dv > 0
    s = np.ones(n)
    s[keep] = 1.0 / np.sqrt(Dv[keep])
    Y = ab.copy()
    for k in range(beta + 1):
        Y[k, :n - k] *= s[k:] * s[:n - k]
    if keep.any():
        Y[0, ~keep] = 1e3 * Y[0, keep].max()
    return Y, s, keep


def _band_lambda_min(ab: np.ndarray, Dv: np.ndarray) -> float:
    """Estimate (uncertified) of min t with ``G - t D`` singular, ``G`` in band storage.

    Rows with ``D = 0`` (identity rows of absent pixels) are pushed out of the way.
    """
    beta, n = ab.shape[0] - 1, ab.shape[1]
    Y, _, keep = scaled_band(ab, Dv)
    if not keep.any():
        return math.inf
    if n <= 300:
        return float(sl.eigh(from_band(Y), eigvals_only=True, subset_by_index=[0, 0])[0])
    try:
        cb = sl.cholesky_banded(Y, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return 0.0
    op = LinearOperator((n, n), dtype=np.float64,
                        matvec=lambda v: sl.cho_solve_banded((cb, True), v, check_finite=False))
    mu = eigsh(op, k=1, which="LA", tol=1e-6, v0=np.ones(n), ncv=min(n, 20),
               return_eigenvectors=False)
    return float(1.0 / mu[0])


def dense_gram(cf: Coarse):
    """``A^T A`` on the coarse image pixels by scattering ``Z`` once per output (any geometry).

    Works for every output placement (including circular layers with ``s`` not dividing
    ``H``, whose outputs sit at ``(s/g) i mod N``). Returns ``(G, eps_G, index)``: ``G`` over
    the existing coarse pixels (flat indices ``index`` into ``(C', n_in_h, n_in_w)``) and a
    bound ``||G~ - G||_2 <= eps_G``: every entry is a sum of at most ``c^2`` terms, ``c`` the
    largest number of (output, tap) pairs reading one pixel, and the row sums of ``G_abs`` are
    at most ``c rho`` (as in the module notes).
    """
    W = cf.kernel
    K, Cc, kh, kw = W.shape
    h, w = cf.h, cf.w
    Wf = W.reshape(K, -1)
    Z = Wf.T @ Wf
    Z = 0.5 * (Z + Z.T)
    n_pix = Cc * h.n_in * w.n_in
    G = np.zeros((n_pix, n_pix))
    cov = np.zeros(h.n_in * w.n_in, np.int64)
    c_idx = np.arange(Cc)
    for i in h.out_pos:
        rows = i + h.qmin + np.arange(kh)
        rows = rows % h.torus if h.torus is not None else rows
        for j in w.out_pos:
            cols = j + w.qmin + np.arange(kw)
            cols = cols % w.torus if w.torus is not None else cols
            ok = ((rows >= 0) & (rows < h.n_in))[:, None] & ((cols >= 0) & (cols < w.n_in))[None, :]
            pix = (np.clip(rows, 0, h.n_in - 1)[:, None] * w.n_in + np.clip(cols, 0, w.n_in - 1)[None, :])
            flat = (c_idx[:, None, None] * (h.n_in * w.n_in) + pix[None]).reshape(-1)   # (C', kh, kw)
            sel = np.broadcast_to(ok[None], (Cc, kh, kw)).reshape(-1)
            f = flat[sel]
            np.add.at(G, (f[:, None], f[None, :]), Z[np.ix_(sel, sel)])
            np.add.at(cov, pix[ok], 1)
    G = 0.5 * (G + G.T)
    index = np.flatnonzero(cf.pixel_mask().reshape(-1))
    G = G[np.ix_(index, index)]
    c = int(cov.max())
    absZ = np.abs(Wf).T @ np.abs(Wf)
    rho = float(absZ.sum(axis=1).max()) * (1 + gamma(Wf.shape[1] + K + 2))
    eps_G = 2 * gamma(K + c * c + 4) * c * rho * (1 + 1e-6)
    return G, eps_G, index
