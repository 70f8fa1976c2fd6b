r"""The Gram symbol ``G(w) = A(w)^H A(w)`` of the coarse circulant, from the kernel's autocorrelation.

Notes
-----
With the symbol ``A(w) = sum_q W_q e^{i w.q}`` of `theory.symbol` (``W_q`` the ``K x C'``
coarse kernel at tap ``q``),

$$
G(\omega) = A(\omega)^H A(\omega) = \sum_{\delta} R_\delta\, e^{i\omega\cdot\delta},
\qquad R_\delta = \sum_{q} W_q^T W_{q+\delta} \in \mathbb{R}^{C' \times C'},
$$

over the lags ``delta`` in ``(-(k_h-1) .. k_h-1) x (-(k_w-1) .. k_w-1)``, with
``R_{-delta} = R_delta^T``. The lags are few (``(2k_h-1)(2k_w-1)``) and each ``R_delta`` is
one small matrix product, so ``G`` on all ``N_h N_w`` frequencies costs one DFT of a
``C' x C'`` array per lag, instead of forming ``A(w)`` (``K x C'``) and ``A^H A`` at every
frequency. For ``K < C'`` the same is applied to the transposed kernel: its Gram is
``conj(A A^H)``, with the same eigenvalues as ``A A^H``.

**Lemma R (rounding of the Gram symbol).** The code computes ``R~_delta`` for the lags of one
half-plane, each entry as ``K`` dot products of at most ``k_h k_w`` terms (one per filter)
summed in a fixed binary tree, ``n_R = k_h k_w + ceil(log2 K)``, and sets
``R~_{-delta} = R~_delta^T`` (``R~_0`` from its upper triangle), so
``|R~_delta - R_delta| <= gamma_{n_R} P_delta`` entrywise (Higham §3.1, §4.2) with
``P_delta = sum_q |W_q|^T |W_{q+delta}|``, and ``R~`` has the symmetry of
``R``. It then evaluates ``Re G~`` and ``Im G~`` with the twiddles and the contraction order
of Lemma S (`theory.symbol`: first over the ``2k_w-1`` lags ``delta_w``, then ``2(2k_h-1)``
terms over ``delta_h``), so each entry of each part is within
``beta' sum_delta |R~_delta|`` of the exact DFT of ``R~``, with
``beta' = 4.01 tau + 1.01 gamma_{(2k_w-1) + 2(2k_h-1)}``. Finally ``Re G~`` is made exactly
symmetric and ``Im G~`` exactly antisymmetric by copying the upper triangle (the exact ``G``
has that symmetry, so every entry keeps its bound). Hence, uniformly in ``w``,

$$
\|\tilde G(\omega) - G(\omega)\|_2 \le \|E\|_F =: \varepsilon_G, \qquad
E = \sqrt2\,\beta' \sum_\delta |\tilde R_\delta| + \gamma_{n_R} \sum_\delta P_\delta ,
$$

and every eigenvalue of ``G(w)`` lies within ``eps_G`` of the same-index eigenvalue of the
exactly Hermitian float matrix ``G~(w)`` (Weyl): the matrices `theory.rigour.certify_lower`
and `certify_upper` are applied to, by Lemma C_C (complex Cholesky). Its real embedding
``[[Re, -Im], [Im, Re]]`` (`GramSymbol.real_embedding`) has the same eigenvalues, each twice,
and is what the certificate used before (Lemma C, four times the flops).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from theory.rigour import gamma
from theory.symbol import TAU, _twiddles


@dataclasses.dataclass
class GramSymbol:
    """``G~(w)`` on the half plane as complex matrices ``G`` (F, n, n), ``F = Fh * Fw``.

    ``G`` is exactly Hermitian (its diagonal exactly real); ``eps`` bounds
    ``||G~(w) - G(w)||_2`` at every frequency (Lemma R); ``side`` is ``"C"`` (``G = A^H A``,
    ``n = C'``) or ``"K"`` (the Gram of the transposed kernel, ``n = K``).
    """

    G: np.ndarray
    eps: float
    side: str
    shape: tuple            # (Fh, Fw)

    @property
    def n(self) -> int:
        return self.G.shape[-1]

    def complex(self, idx=None) -> np.ndarray:
        """``G~`` as complex (F, n, n), or at the flat frequency indices ``idx`` (all: no copy)."""
        return self.G if idx is None else self.G[idx]

    def real_embedding(self, idx=None) -> np.ndarray:
        """``[[Re G~, -Im G~], [Im G~, Re G~]]`` (F, 2n, 2n), exactly symmetric, with the
        eigenvalues of ``G~``, each twice (the form Lemma C applies to)."""
        x = self.complex(idx)
        n = self.n
        out = np.empty((x.shape[0], 2 * n, 2 * n))
        out[:, :n, :n] = x.real
        out[:, n:, n:] = x.real
        out[:, n:, :n] = x.imag
        np.negative(x.imag, out=out[:, :n, n:])
        return out


def _pairwise_sum(x: np.ndarray) -> np.ndarray:
    """Sum over axis 0 by a fixed binary tree: error <= gamma_{ceil(log2 m)} sum |x_i|."""
    while x.shape[0] > 1:
        if x.shape[0] % 2:
            head = x[:-1:2] + x[1::2]
            x = np.concatenate([head, x[-1:]], axis=0)
        else:
            x = x[0::2] + x[1::2]
    return x[0]


def _lags(W: np.ndarray):
    """``R~_delta``, ``P~_delta`` for every lag (dict), with the exact symmetry of ``R``.

    Each entry of ``R~_delta`` is, per filter ``k``, a dot product over the taps ``q`` (at
    most ``k_h k_w`` terms; taps with ``q + delta`` outside the kernel meet a zero of the
    shifted copy, and a zero term is added exactly), then a pairwise sum over the ``K``
    filters in a fixed tree: error ``<= gamma_{k_h k_w + ceil(log2 K)} P_delta`` (Lemma R).
    All lags of one half-plane, for ``W`` and ``|W|`` together, are one batched product.
    """
    K, C, kh, kw = W.shape
    lags = [(dh, dw) for dh in range(kh) for dw in range(-(kw - 1), kw)
            if not (dh == 0 and dw < 0)]
    V = np.stack([W, np.abs(W)])                          # (2, K, C, kh, kw)
    Vp = np.zeros((2, K, C, 2 * kh - 1, 3 * kw - 2))     # room for the shifts q + delta
    Vp[..., :kh, kw - 1:2 * kw - 1] = V
    shifted = np.stack([Vp[..., dh:dh + kh, kw - 1 + dw:2 * kw - 1 + dw] for dh, dw in lags],
                       axis=1).reshape(2, len(lags), K, C, kh * kw)       # V[q + delta]
    a = torch.from_numpy(V.reshape(2, 1, K, C, kh * kw))
    prod = torch.matmul(a, torch.from_numpy(shifted).transpose(-1, -2))   # (2, L, K, C, C)
    sums = _pairwise_sum(prod.permute(2, 0, 1, 3, 4).numpy())            # over K: (2, L, C, C)
    out = {}
    for i, (dh, dw) in enumerate(lags):
        r, p = sums[0, i], sums[1, i]
        if dh == 0 and dw == 0:
            r = np.triu(r) + np.triu(r, 1).T        # exactly symmetric, entries unchanged
            p = np.triu(p) + np.triu(p, 1).T
        out[(dh, dw)] = (r, p)
        if (dh, dw) != (0, 0):
            out[(-dh, -dw)] = (r.T.copy(), p.T.copy())
    return out


def gram_symbol(cf, Nh: int, Nw: int, side: str = "C") -> GramSymbol:
    """The Gram symbol of the coarse circulant on ``Z_Nh x Z_Nw``, half plane in ``w``.

    Parameters
    ----------
    cf : theory.polyphase.Coarse
    Nh, Nw : int
        The torus (circular layers) or canvas (zero padding).
    side : {"C", "K"}
        ``"C"``: ``A^H A`` (``C' x C'``); ``"K"``: the Gram of the transposed kernel
        (``K x K``, the eigenvalues of ``A A^H``).

    Returns
    -------
    GramSymbol

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.polyphase import coarse_form
    >>> from theory.gram_symbol import gram_symbol
    >>> from theory.symbol import symbol
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((4, 1, 3, 3)), stride=2,
    ...                   padding=1, padding_mode="circular")
    >>> cf = coarse_form(layer.at((1, 8, 8)))
    >>> g = gram_symbol(cf, 4, 4)
    >>> g.G.shape                     # 4 x 3 frequencies, C' = 4 phases
    (12, 4, 4)
    >>> a = symbol(cf, 4, 4).complex.reshape(12, 4, 4)    # A(w), K x C'
    >>> bool(np.allclose(g.complex(), np.conj(np.swapaxes(a, 1, 2)) @ a))
    True
    >>> bool(g.eps < 1e-13 * np.linalg.eigvalsh(g.complex()).max())   # Lemma R's bound
    True
    """
    W = np.asarray(cf.kernel, dtype=np.float64)
    if side == "K":
        W = W.transpose(1, 0, 2, 3)
    elif side != "C":
        raise ValueError(f"side must be 'C' or 'K', got {side!r}")
    K, n, kh, kw = W.shape
    lags = _lags(W)
    dh = np.arange(-(kh - 1), kh)
    dw = np.arange(-(kw - 1), kw)
    Rl = np.zeros((n, n, len(dh), len(dw)))
    Pl = np.zeros_like(Rl)
    for (a, b), (r, p) in lags.items():
        Rl[:, :, a + kh - 1, b + kw - 1] = r
        Pl[:, :, a + kh - 1, b + kw - 1] = p
    fh = np.arange(Nh)
    fw = np.arange(Nw // 2 + 1)
    ch, sh = _twiddles(Nh, dh, fh)                        # (Fh, 2kh-1)
    cw, sw = _twiddles(Nw, dw, fw)                        # (Fw, 2kw-1)
    # only the upper triangle i <= j is evaluated; the lower one is its exact conjugate
    iu = np.triu_indices(n)
    npair = len(iu[0])
    Rm = torch.from_numpy(np.ascontiguousarray(Rl[iu[0], iu[1]]).reshape(npair * len(dh), len(dw)))
    tc = (Rm @ torch.from_numpy(cw.T.copy())).reshape(npair, len(dh), -1)   # over delta_w
    ts = (Rm @ torch.from_numpy(sw.T.copy())).reshape(npair, len(dh), -1)
    T = torch.cat([tc, ts], dim=1).permute(2, 0, 1).reshape(-1, 2 * len(dh))  # (Fw*P, 2L)
    # one product for both parts: columns (f_h, part) interleaved, so the result is the
    # complex array (Fw, P, Fh) as (real, imag) pairs, viewed without a copy
    Fh, Fw = len(fh), len(fw)
    M = np.empty((2 * len(dh), Fh, 2))
    M[:, :, 0] = np.concatenate([ch, -sh], axis=1).T      # Re: [c_h, -s_h] . [tc; ts]
    M[:, :, 1] = np.concatenate([sh, ch], axis=1).T       # Im: [s_h,  c_h] . [tc; ts]
    out = (T @ torch.from_numpy(M.reshape(2 * len(dh), 2 * Fh))).reshape(Fw, npair, Fh, 2)
    upper = torch.view_as_complex(out).permute(2, 0, 1).numpy()       # (Fh, Fw, P), a view
    # exact Hermitian symmetry: the lower triangle is the conjugate of the upper one, and the
    # diagonal is made exactly real (the exact G has both properties, so no bound is lost)
    G = np.empty((Fh, Fw, n * n), np.complex128)
    G[:, :, iu[0] * n + iu[1]] = upper
    G[:, :, iu[1] * n + iu[0]] = np.conj(upper)
    G = G.reshape(Fh * Fw, n, n)
    d = np.arange(n)
    G.imag[:, d, d] = 0.0
    beta = 4.01 * TAU + 1.01 * gamma(len(dw) + 2 * len(dh))
    n_r = kh * kw + (math.ceil(math.log2(K)) if K > 1 else 0)      # Lemma R's n_R
    E = math.sqrt(2) * beta * np.abs(Rl).sum(axis=(2, 3)) + gamma(n_r) * Pl.sum(axis=(2, 3))
    eps = float(np.sqrt((E ** 2).sum())) * (1 + 1e-6)
    return GramSymbol(G, eps, side, (Fh, Fw))


__all__ = ["GramSymbol", "gram_symbol"]
