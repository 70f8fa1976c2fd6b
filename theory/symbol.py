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

The certified bounds (`symbol_bounds`) do not form ``A^H A`` from ``A~``: they use the Gram
symbol built from the kernel's autocorrelation (`theory.gram_symbol`, Lemma R, which reuses
Lemma S's twiddles and contraction order) and prove every frequency with Lemma C_C
(`theory.rigour`): with ``b`` certified for ``G~(w)``, ``sigma_max(A(w))^2 <= b + eps_G``;
with ``t`` certified, ``sigma_min(A(w))^2 >= t - eps_G`` (Weyl's inequality).
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


@dataclasses.dataclass
class SymbolBounds:
    """Certified bounds on the extreme per-frequency singular values (squared).

    ``lower <= min_w sigma_min(A(w))^2`` (the ``C'``-th singular value; 0 if ``K < C'``) and
    ``upper >= max_w sigma_max(A(w))^2`` over the grid; ``est_*`` are the uncertified
    eigenvalue estimates they were derived from (the extremes over the ``n_estimated``
    frequencies whose Gram matrix was diagonalised); ``eps_gram`` is Lemma R's bound on the
    rounding of the Gram symbol (`theory.gram_symbol`).
    """

    lower: float
    upper: float
    est_lower: float
    est_upper: float
    certified: bool
    eps_gram: float
    n_freq: int
    attempts: int
    n_estimated: int


#: Grids of at most this many frequencies are all diagonalised for the estimates; larger ones
#: only on the subgrid of every `SCREEN_STEP`-th frequency per axis, then at every frequency
#: whose proof fails (see `symbol_bounds`).
SCREEN_ALL = 1024
SCREEN_STEP = 4


def _certify_at(gs, idx: np.ndarray, value: float, upper: bool, chunk: int) -> np.ndarray:
    """Lemma C_C (`theory.rigour`) on ``G~`` at the flat frequencies ``idx``."""
    ok = np.zeros(len(idx), bool)
    everyone = len(idx) == gs.G.shape[0]             # idx is then arange(F): no copies
    for s0 in range(0, len(idx), chunk):
        X = gs.G[s0:s0 + chunk] if everyone else gs.complex(idx[s0:s0 + chunk])
        ok[s0:s0 + chunk] = certify_upper(X, value) if upper else certify_lower(X, value)
    return ok


#: Frequencies per batched Cholesky proof, and the most bytes of its scaled copy (wide
#: layers get smaller chunks).
CHUNK = 16384
CHUNK_BYTES = 8 * 2 ** 20


def symbol_bounds(cf: Coarse, Nh: int, Nw: int, need_lower: bool = True,
                  chunk: int | None = None) -> SymbolBounds:
    """Certified ``[min_w sigma_min^2, max_w sigma_max^2]`` of the symbol on a grid.

    Lemma R (`theory.gram_symbol`) and Lemma C_C (`theory.rigour`) applied to every frequency
    with one common shift per side; `lower` is 0 when ``K < C'`` or nothing positive is
    provable.

    Notes
    -----
    Every frequency is proved, always; only the *choice* of the shifts uses estimates. The
    estimates are the extreme eigenvalues (`eigvalsh`) of ``G~`` on a subgrid (all frequencies
    when there are at most `SCREEN_ALL`). The upper shift ``b`` is the estimate enlarged by a
    relative ``delta`` of the Cholesky margin's size; the frequencies where the proof of
    ``G~ <= b`` fails are exactly those whose largest eigenvalue exceeds about ``b``. They
    are diagonalised, the estimate is raised, and only they are proved again at the new
    ``b`` (a proof at a smaller ``b`` holds at a larger one). The lower shift is found the
    same way from below. So the bounds are as tight as with every frequency diagonalised:
    the final estimate is a computed eigenvalue, within ``delta`` of the certified bound.

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
    from theory.gram_symbol import gram_symbol

    K, Cc = cf.kernel.shape[:2]
    lower_possible = need_lower and K >= Cc
    side = "C" if (Cc <= K) else "K"
    gs = gram_symbol(cf, Nh, Nw, side)
    Fh, Fw = gs.shape
    F = Fh * Fw
    evaluated = np.zeros(F, bool)
    if F <= SCREEN_ALL:
        evaluated[:] = True
    else:
        evaluated.reshape(Fh, Fw)[::SCREEN_STEP, ::SCREEN_STEP] = True
    lam = np.linalg.eigvalsh(gs.complex(np.flatnonzero(evaluated)))
    lo_est, hi_est = float(lam[:, 0].min()), float(lam[:, -1].max())
    n = gs.n
    if chunk is None:
        chunk = max(1, min(CHUNK, CHUNK_BYTES // (16 * n * n)))

    def estimate(idx):
        nonlocal lo_est, hi_est
        new = idx[~evaluated[idx]]
        if new.size:
            lam_new = np.linalg.eigvalsh(gs.complex(new))
            evaluated[new] = True
            lo_est = min(lo_est, float(lam_new[:, 0].min()))
            hi_est = max(hi_est, float(lam_new[:, -1].max()))
        return new.size > 0

    sweeps = 0
    # upper: prove lambda_max(G~(w)) <= b at every frequency
    delta = 4 * n * (n + 3) * U + 1e-15     # about the Cholesky margin of Lemma C_C
    b, pending, raises = None, np.arange(F), 0
    while raises < 5:
        sweeps += 1
        b_try = hi_est * (1 + delta) + delta * max(hi_est, 1e-300)
        pending = pending[~_certify_at(gs, pending, b_try, True, chunk)]
        if pending.size == 0:
            b = b_try
            break
        if not estimate(pending):            # failures already diagonalised: widen the margin
            delta *= 100
            raises += 1
    t = None
    if lower_possible:
        d2 = 4 * n * (n + 3) * U + 1e-15
        pending, raises = np.arange(F), 0
        while raises < 5:
            sweeps += 1
            t_try = lo_est - d2 * max(hi_est, 1e-300)
            if t_try <= 0:
                t = 0.0
                break
            pending = pending[~_certify_at(gs, pending, t_try, False, chunk)]
            if pending.size == 0:
                t = t_try
                break
            if not estimate(pending):
                d2 *= 100
                raises += 1
    certified = b is not None and (t is not None or not lower_possible)
    eg = gs.eps
    upper = (b + eg) * (1 + 4 * U) if b is not None else math.inf
    lower = (t - eg) * (1 - 4 * U) if (t is not None and t > eg) else 0.0
    return SymbolBounds(lower, upper, max(lo_est, 0.0) if lower_possible else 0.0, hi_est,
                        certified, eg, F, sweeps, int(evaluated.sum()))


__all__ = ["Symbol", "SymbolBounds", "symbol", "symbol_bounds"]
