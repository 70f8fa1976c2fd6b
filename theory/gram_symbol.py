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
exactly Hermitian float matrix ``G~(w)`` (Weyl), whose real embedding
``[[Re, -Im], [Im, Re]]`` is exactly symmetric and has the same eigenvalues, each twice: the
matrices `theory.rigour.certify_lower` and `certify_upper` are applied to.
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
    """``G~(w)`` on the half plane as its real embedding ``real`` (F, 2n, 2n), ``F = Fh * Fw``.

    ``real[f] = [[Re G~, -Im G~], [Im G~, Re G~]]``, exactly symmetric; ``eps`` bounds
    ``||G~(w) - G(w)||_2`` at every frequency (Lemma R); ``side`` is ``"C"`` (``G = A^H A``,
    ``n = C'``) or ``"K"`` (the Gram of the transposed kernel, ``n = K``).
    """

    real: np.ndarray
    eps: float
    side: str
    shape: tuple            # (Fh, Fw)

    @property
    def n(self) -> int:
        return self.real.shape[-1] // 2

    def complex(self, idx=None) -> np.ndarray:
        """``G~`` as complex (F, n, n), or at the flat frequency indices ``idx``."""
        x = self.real if idx is None else self.real[idx]
        n = self.n
        return x[:, :n, :n] + 1j * x[:, n:, :n]

    def real_embedding(self, idx=None) -> np.ndarray:
        """The real embeddings at the flat frequency indices ``idx`` (all: no copy)."""
        return self.real if idx is None else self.real[idx]


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

    Each entry of ``R~_delta`` is, per filter ``k``, a dot product over the overlapping taps
    (at most ``k_h k_w`` terms, one `bmm`), then a pairwise sum over the ``K`` filters in a
    fixed tree: error ``<= gamma_{k_h k_w + ceil(log2 K)} P_delta`` (Lemma R).
    """
    K, C, kh, kw = W.shape
    absW = np.abs(W)
    out = {}

    def corr(V, h0, h1, w0, w1, dh, dw):
        a = torch.from_numpy(np.ascontiguousarray(V[:, :, h0:h1, w0:w1]).reshape(K, C, -1))
        b = torch.from_numpy(np.ascontiguousarray(
            V[:, :, h0 + dh:h1 + dh, w0 + dw:w1 + dw]).reshape(K, C, -1))
        return _pairwise_sum(torch.bmm(a, b.transpose(1, 2)).numpy())   # (C, C)

    for dh in range(kh):
        for dw in range(-(kw - 1), kw):
            if dh == 0 and dw < 0:
                continue
            # taps q with q and q + delta both inside the kernel
            h0, h1 = max(0, -dh), min(kh, kh - dh)
            w0, w1 = max(0, -dw), min(kw, kw - dw)
            r = corr(W, h0, h1, w0, w1, dh, dw)
            p = corr(absW, h0, h1, w0, w1, dh, dw)
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
    >>> g.real.shape                  # 4 x 3 frequencies, C' = 4 phases, real embedding 8 x 8
    (12, 8, 8)
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
    Rm = torch.from_numpy(Rl.reshape(n * n * len(dh), len(dw)))
    tc = (Rm @ torch.from_numpy(cw.T.copy())).reshape(n * n, len(dh), -1)   # over delta_w
    ts = (Rm @ torch.from_numpy(sw.T.copy())).reshape(n * n, len(dh), -1)
    T = torch.cat([tc, ts], dim=1).permute(2, 0, 1).reshape(-1, 2 * len(dh))  # (Fw*n*n, 2L)
    Mr = torch.from_numpy(np.concatenate([ch, -sh], axis=1).T.copy())        # (2L, Fh)
    Mi = torch.from_numpy(np.concatenate([sh, ch], axis=1).T.copy())
    Fh, Fw = len(fh), len(fw)
    re = (T @ Mr).reshape(Fw, n, n, Fh).permute(3, 0, 1, 2).reshape(Fh * Fw, n, n).numpy()
    im = (T @ Mi).reshape(Fw, n, n, Fh).permute(3, 0, 1, 2).reshape(Fh * Fw, n, n).numpy()
    # exact symmetry from the upper triangle (Re symmetric, Im antisymmetric, diag Im = 0)
    iu = np.triu_indices(n, 1)
    re = np.ascontiguousarray(re)
    im = np.ascontiguousarray(im)
    re[:, iu[1], iu[0]] = re[:, iu[0], iu[1]]
    im[:, iu[1], iu[0]] = -im[:, iu[0], iu[1]]
    d = np.arange(n)
    im[:, d, d] = 0.0
    real = np.empty((Fh * Fw, 2 * n, 2 * n))
    real[:, :n, :n] = re
    real[:, n:, n:] = re
    real[:, n:, :n] = im
    np.negative(im, out=real[:, :n, n:])
    beta = 4.01 * TAU + 1.01 * gamma(len(dw) + 2 * len(dh))
    n_r = kh * kw + (math.ceil(math.log2(K)) if K > 1 else 0)      # Lemma R's n_R
    E = math.sqrt(2) * beta * np.abs(Rl).sum(axis=(2, 3)) + gamma(n_r) * Pl.sum(axis=(2, 3))
    eps = float(np.sqrt((E ** 2).sum())) * (1 + 1e-6)
    return GramSymbol(real, eps, side, (Fh, Fw))


__all__ = ["GramSymbol", "gram_symbol"]
