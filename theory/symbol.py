r"""Per-frequency matrices of the coarse circulant ``C`` with rigorous rounding bounds.

Notes
-----
On the torus ``Z_Nh x Z_Nw`` the coarse conv ``y_u = sum_q W_q x_{u+q}`` is block-diagonalised
by the channelwise DFT: ``yhat(w) = A(w) xhat(w)`` with the ``K x C'`` symbol

    A(w) = sum_{q_h, q_w} W[:, :, q_h, q_w] exp(2 pi i (w_h q_h / N_h + w_w q_w / N_w)),

so the singular values of ``C`` are the union over the ``N_h N_w`` frequencies of those of
``A(w)``; ``A(-w) = conj(A(w))`` (real weights), so half of the frequencies suffice.

**Lemma S (rounding of the symbol).** The code forms ``A = Ar + i Ai`` from twiddles
``cos/sin(2 pi ((w q) mod N) / N)`` (integer reduction first, so the angle has relative error
at most ``3.01 u`` and absolute error at most ``19.1 u``; libm/SVML ``cos``/``sin`` err by at
most 4 ulp ``<= 8u`` on ``[-1, 1]``; together ``tau = 32 u`` per twiddle), contracting first
over ``q_w`` (``kq_w`` terms) then over ``q_h`` (``2 kq_h`` terms). Each computed entry of
``Ar`` (and of ``Ai``) differs from the exact one by at most
``beta * sum_q |W[o, c, q]|``, ``beta = 4.01 tau + 1.01 gamma_{kq_w + 2 kq_h}``:
per term, ``|c~_h c~_w - c_h c_w| + |s~_h s~_w - s_h s_w| <= 2 tau (2 + tau)``, and the
evaluation error is at most ``gamma_m (|c~_h c~_w| + |s~_h s~_w|) <= gamma_m (1 + 4 tau + 2
tau^2)`` (Cauchy-Schwarz: ``|c_h c_w| + |s_h s_w| <= 1``). Hence, uniformly in ``w``,

    ||A~(w) - A(w)||_2 <= ||A~(w) - A(w)||_F <= eps_A = sqrt(2) beta ||Wabs||_F,
    Wabs[o, c] = sum_q |W[o, c, q]|.

**Lemma G (rounding of the Gram).** With the real embedding
``R = [[Ar, -Ai], [Ai, Ar]]`` (``R^T R`` is the real embedding of ``A^H A`` and has the same
eigenvalues, each twice) every entry of ``fl(R^T R)`` is a dot product of length ``2K`` (as
``Ar^T Ar + Ai^T Ai`` etc.), so ``||fl(R^T R) - R^T R||_2 <= gamma_{2K} || |R| ||_2^2
<= gamma_{2K} ||R||_F^2 = 2 gamma_{2K} ||A~(w)||_F^2 =: eps_G(w)``.

With ``b`` certified by Lemma C for ``fl(R^T R)``: ``sigma_max(A(w)) <= sqrt(b + eps_G) + eps_A``;
with ``t`` certified: ``sigma_min(A(w)) >= sqrt(max(t - eps_G, 0)) - eps_A`` (Weyl's inequality
for singular values, twice).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from theory.polyphase import Coarse
from theory.rigour import U, certify_lower, certify_upper, gamma

TAU = 32 * U


def _twiddles(N: int, q: np.ndarray, freqs: np.ndarray):
    idx = np.mod(np.outer(freqs, q), N)                       # exact integers
    theta = (idx / N) * (2 * np.pi)
    return np.cos(theta), np.sin(theta)


@dataclasses.dataclass
class Symbol:
    """Computed symbol on a frequency grid: ``Ar, Ai`` of shape (Fh, Fw, K, C')."""

    Ar: np.ndarray
    Ai: np.ndarray
    eps_A: float             # uniform bound on ||A~(w) - A(w)||_2
    Nh: int
    Nw: int
    freqs_h: np.ndarray
    freqs_w: np.ndarray

    @property
    def complex(self) -> np.ndarray:
        return self.Ar + 1j * self.Ai


def symbol(cf: Coarse, Nh: int, Nw: int, half: bool = True) -> Symbol:
    """The symbol of the coarse circulant on ``Z_Nh x Z_Nw`` (half plane in w if ``half``).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.polyphase import coarse_form
    >>> from theory.symbol import symbol
    >>> op = ConvLayer(np.ones((1, 1, 3, 3)), padding=1, padding_mode="circular").at((1, 6, 6))
    >>> s = symbol(coarse_form(op), 6, 6)
    >>> s.Ar.shape, float(s.Ar[0, 0, 0, 0])          # (Fh, Fw, K, C'); DC gain 9
    ((6, 4, 1, 1), 9.0)
    """
    W = cf.kernel
    K, Cc, kh, kw = W.shape
    qh = cf.h.qmin + np.arange(kh)
    qw = cf.w.qmin + np.arange(kw)
    fh = np.arange(Nh)
    fw = np.arange(Nw // 2 + 1) if half else np.arange(Nw)
    ch, sh = _twiddles(Nh, qh, fh)                            # (Fh, kh)
    cw, sw = _twiddles(Nw, qw, fw)                            # (Fw, kw)
    Wm = torch.from_numpy(np.ascontiguousarray(W.reshape(K * Cc * kh, kw)))
    CW, SW = torch.from_numpy(cw.T.copy()), torch.from_numpy(sw.T.copy())          # (kw, Fw)
    tc = (Wm @ CW).reshape(K * Cc, kh, -1)                    # sum over q_w (kw terms)
    ts = (Wm @ SW).reshape(K * Cc, kh, -1)
    # sum over q_h of 2*kh terms: [c_h, -s_h] . [tc; ts] and [s_h, c_h] . [tc; ts]
    T = torch.cat([tc, ts], dim=1).permute(2, 0, 1).reshape(-1, 2 * kh)   # (Fw*KC, 2kh)
    Mr = torch.from_numpy(np.concatenate([ch, -sh], axis=1).T.copy())     # (2kh, Fh)
    Mi = torch.from_numpy(np.concatenate([sh, ch], axis=1).T.copy())
    Fh, Fw = len(fh), len(fw)
    Ar = (T @ Mr).reshape(Fw, K, Cc, Fh).permute(3, 0, 1, 2).contiguous().numpy()
    Ai = (T @ Mi).reshape(Fw, K, Cc, Fh).permute(3, 0, 1, 2).contiguous().numpy()
    beta = 4.01 * TAU + 1.01 * gamma(kw + 2 * kh)
    wabs = np.abs(W).sum(axis=(2, 3))
    eps_A = math.sqrt(2) * beta * float(np.sqrt((wabs ** 2).sum())) * (1 + 1e-6)
    return Symbol(Ar, Ai, eps_A, Nh, Nw, fh, fw)


def _real_gram(Ar: np.ndarray, Ai: np.ndarray, side: str):
    """Real embedding of A^H A (side 'C') or A A^H (side 'K'), stacked over frequencies."""
    ar, ai = torch.from_numpy(Ar), torch.from_numpy(Ai)
    if side == "K":
        ar, ai = ar.transpose(1, 2), -ai.transpose(1, 2)      # A -> A^H
    arT, aiT = ar.transpose(1, 2), ai.transpose(1, 2)
    re = torch.bmm(arT, ar) + torch.bmm(aiT, ai)              # dot products of length 2K
    P3 = torch.bmm(arT, ai)
    im = P3 - torch.bmm(aiT, ar)
    G = torch.cat([torch.cat([re, -im], dim=2), torch.cat([im, re], dim=2)], dim=1)
    G = 0.5 * (G + G.transpose(1, 2))      # exactly symmetric (adds at most u |G|)
    inner = ar.shape[1]
    fro2 = (ar ** 2).sum(dim=(1, 2)) + (ai ** 2).sum(dim=(1, 2))
    eps_G = (2 * gamma(2 * inner + 4) * fro2 * (1 + 1e-6)).numpy()
    return G.numpy(), eps_G


@dataclasses.dataclass
class SymbolBounds:
    """Certified bounds on the extreme per-frequency singular values (squared).

    ``lower <= min_w sigma_min(A(w))^2`` (the ``C'``-th singular value; 0 if ``K < C'``) and
    ``upper >= max_w sigma_max(A(w))^2`` over the grid; ``est_*`` are the uncertified
    eigenvalue estimates they were derived from.
    """

    lower: float
    upper: float
    est_lower: float
    est_upper: float
    certified: bool
    eps_A: float
    n_freq: int
    attempts: int


def symbol_bounds(cf: Coarse, Nh: int, Nw: int, need_lower: bool = True,
                  chunk: int = 2048) -> SymbolBounds:
    """Certified ``[min_w sigma_min^2, max_w sigma_max^2]`` of the symbol on a grid.

    Lemmas S, G (module notes) and C (`theory.rigour`) applied to every frequency with one
    common shift per side; `lower` is 0 when ``K < C'`` or nothing positive is provable.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.polyphase import coarse_form
    >>> from theory.symbol import symbol_bounds
    >>> op = ConvLayer(np.ones((1, 1, 3, 3)), padding=1, padding_mode="circular").at((1, 6, 6))
    >>> sb = symbol_bounds(coarse_form(op), 6, 6)
    >>> sb.certified, bool(81 <= sb.upper < 81 * (1 + 1e-9)), sb.lower   # symbol vanishes at w=(2,*)
    (True, True, 0.0)
    """
    K, Cc = cf.kernel.shape[:2]
    sym = symbol(cf, Nh, Nw)
    Ar = sym.Ar.reshape(-1, K, Cc)
    Ai = sym.Ai.reshape(-1, K, Cc)
    F = Ar.shape[0]
    lower_possible = need_lower and K >= Cc
    side = "C" if (Cc <= K) else "K"
    grams, epsG, lo_est, hi_est = [], [], np.inf, 0.0
    for s0 in range(0, F, chunk):
        G, eG = _real_gram(Ar[s0:s0 + chunk], Ai[s0:s0 + chunk], side)
        n2 = G.shape[-1] // 2
        Gc = G[:, :n2, :n2] + 1j * G[:, n2:, :n2]             # complex Hermitian A^H A
        lam = np.linalg.eigvalsh(Gc)
        lo_est = min(lo_est, float(lam[:, 0].min()))
        hi_est = max(hi_est, float(lam[:, -1].max()))
        grams.append(G)
        epsG.append(eG)
    epsG_all = np.concatenate(epsG)
    eg = float(epsG_all.max())
    # upper: certify lambda_max(fl(R^T R)) <= b for every frequency
    n = grams[0].shape[-1]
    delta = 4 * n * (n + 1) * U + 1e-15     # about the Cholesky margin of Lemma C
    b = None
    for attempt in range(1, 6):
        b_try = hi_est * (1 + delta) + delta * max(hi_est, 1e-300)
        if all(certify_upper(G, b_try).all() for G in grams):
            b = b_try
            break
        delta *= 100
    t = None
    if lower_possible:
        d2 = 4 * n * (n + 1) * U + 1e-15
        for attempt_l in range(1, 6):
            t_try = lo_est - d2 * max(hi_est, 1e-300)
            if t_try <= 0:
                t = 0.0
                break
            if all(certify_lower(G, t_try).all() for G in grams):
                t = t_try
                break
            d2 *= 100
    certified = b is not None and (t is not None or not lower_possible)
    upper = (math.sqrt(b + eg) + sym.eps_A) ** 2 * (1 + 8 * U) if b is not None else math.inf
    if t is not None and t > eg:
        lower = max(math.sqrt(t - eg) - sym.eps_A, 0.0) ** 2 * (1 - 8 * U)
    else:
        lower = 0.0
    return SymbolBounds(lower, upper, max(lo_est, 0.0) if lower_possible else 0.0, hi_est,
                        certified, sym.eps_A, F, attempt)


__all__ = ["Symbol", "SymbolBounds", "symbol", "symbol_bounds"]
