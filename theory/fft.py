"""Block diagonalisation of a circular, stride-1 conv layer by the 2-D DFT.

Notes
-----
With circular padding, stride 1 and output size equal to input size, the layer is
:math:`y_{o,i,j} = \\sum_{c,u,v} g_{o,c,u,v}\\, x_{c,(i+u) \\bmod H,(j+v) \\bmod W}`, where
:math:`g` is the kernel wrapped onto the :math:`H \\times W` torus
(:math:`g_{o,c,(a-p_h) \\bmod H,(b-p_w) \\bmod W} \\mathrel{+}= w_{o,c,a,b}`). This is a
cross-correlation, so the 2-D DFT turns it into one small complex matrix per frequency
:math:`\\omega`:

.. math::

    \\hat y(\\omega) = A(\\omega)\\, \\hat x(\\omega), \\qquad
    A(\\omega) = \\overline{\\hat g(\\omega)} \\in \\mathbb{C}^{K \\times C}.

The DFT is unitary up to one common factor, so the singular values of the layer are exactly
the union over the :math:`HW` frequencies of the singular values of :math:`A(\\omega)`
(Sedghi, Gupta and Long, ICLR 2019), and the least-squares minimum-norm inverse is
:math:`\\hat x(\\omega) = A(\\omega)^+ \\hat y(\\omega)` frequency by frequency. Since the
signals are real, :math:`A(-\\omega) = \\overline{A(\\omega)}`; only the ``rfft2`` half-plane
is stored.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

_EPS = float(np.finfo(np.float64).eps)


class CirculantPlan:
    """Per-layer, per-input-shape FFT plan: frequency matrices, singular values, pseudo-inverses.

    Built once (kernel FFT and one SVD per frequency) and reused for every image.

    Parameters
    ----------
    layer : theory.ConvLayer
        Must be circular, stride 1, with output size equal to input size.
    input_shape : (C, H, W)
    rtol : float, optional
        Singular values below ``rtol * sigma_max`` are treated as zero in the pseudo-inverse
        (and the layer is then not injective). Default ``max(M, D) * eps``, numpy's
        ``matrix_rank`` convention, with ``eps`` of float64 (all plan arithmetic is float64).
    """

    def __init__(self, layer, input_shape, rtol: float | None = None):
        if not layer.is_circulant(input_shape):
            raise ValueError(
                "the FFT path needs circular padding, stride 1 and output size equal to input "
                f"size (e.g. padding=(k-1)/2 for odd k); got {layer!r} on input {tuple(input_shape)}"
            )
        c, h, w = (int(s) for s in input_shape)
        k = layer.out_channels
        self.input_shape = (c, h, w)
        self.output_shape = (k, h, w)
        weight = layer.weight.to(dtype=layer.weight.dtype).double().numpy()
        kh, kw = weight.shape[2:]
        ph, pw = layer.padding
        g = np.zeros((k, c, h, w))
        rows = (np.arange(kh) - ph) % h
        cols = (np.arange(kw) - pw) % w
        np.add.at(g, (slice(None), slice(None), rows[:, None], cols[None, :]), weight)
        ghat = scipy.fft.rfft2(g, axes=(-2, -1))  # (K, C, H, Wf)
        self.freq_shape = ghat.shape[-2:]
        # (F, K, C): one K x C matrix per frequency of the half-plane
        self.matrices = np.conj(ghat).reshape(k, c, -1).transpose(2, 0, 1).copy()
        u, s, vh = np.linalg.svd(self.matrices, full_matrices=False)
        self.singular_values = s.reshape(*self.freq_shape, -1)  # (H, Wf, min(K, C))
        m, d = k * h * w, c * h * w
        self.rtol = float(max(m, d) * _EPS) if rtol is None else float(rtol)
        smax = float(s.max()) if s.size else 0.0
        cutoff = self.rtol * smax
        s_inv = np.where(s > cutoff, 1.0 / np.where(s > cutoff, s, 1.0), 0.0)
        self.rank_deficient_frequencies = int(np.sum(np.any(s <= cutoff, axis=-1)))
        # pinv = V diag(1/s) U^H : (F, C, K)
        self._pinv = np.einsum("fji,fj,fkj->fik", vh.conj(), s_inv, u.conj(), optimize=True)

    # ------------------------------------------------------------------ spectrum
    @property
    def sigma_max(self) -> float:
        return float(self.singular_values.max())

    @property
    def sigma_min(self) -> float:
        """Smallest singular value of the layer (0 when K < C: every A(w) is wide)."""
        c, k = self.input_shape[0], self.output_shape[0]
        if k < c:
            return 0.0
        return float(self.singular_values.min())

    @property
    def injective(self) -> bool:
        return self.sigma_min > self.rtol * self.sigma_max

    def full_spectrum(self) -> np.ndarray:
        """Singular values on the full ``H x W`` frequency grid, shape (H, W, min(K, C))."""
        h, w = self.input_shape[1:]
        s = self.singular_values
        full = np.empty((h, w, s.shape[-1]))
        wf = s.shape[1]
        full[:, :wf] = s
        # conjugate symmetry: A(-w) = conj(A(w)) has the same singular values
        if w - wf > 0:
            cols = np.arange(wf, w)
            full[:, cols] = s[(-np.arange(h)) % h][:, (w - cols)]
        return full

    # ------------------------------------------------------------------ maps
    def forward(self, x: np.ndarray) -> np.ndarray:
        """The layer applied through the FFT (an oracle/cross-check for ``conv2d``)."""
        xb = np.asarray(x, dtype=np.float64).reshape(-1, *self.input_shape)
        xh = scipy.fft.rfft2(xb, axes=(-2, -1), workers=-1)
        n, c = xb.shape[:2]
        xf = xh.reshape(n, c, -1).transpose(2, 1, 0)  # (F, C, N)
        yf = self.matrices @ xf  # (F, K, N)
        y = self._from_freq(yf, self.output_shape[0], n)
        return y.reshape(*np.shape(x)[:-3], *self.output_shape)

    def solve(self, z: np.ndarray) -> np.ndarray:
        """Minimum-norm least-squares solution of ``A x = z`` for ``(K,H,W)`` or ``(N,K,H,W)``."""
        zb = np.asarray(z, dtype=np.float64).reshape(-1, *self.output_shape)
        n, k = zb.shape[:2]
        zh = scipy.fft.rfft2(zb, axes=(-2, -1), workers=-1)
        zf = zh.reshape(n, k, -1).transpose(2, 1, 0)  # (F, K, N)
        xf = self._pinv @ zf  # (F, C, N)
        x = self._from_freq(xf, self.input_shape[0], n)
        return x.reshape(*np.shape(z)[:-3], *self.input_shape)

    def _from_freq(self, vf: np.ndarray, channels: int, n: int) -> np.ndarray:
        h, w = self.input_shape[1:]
        vh = vf.transpose(2, 1, 0).reshape(n, channels, *self.freq_shape)
        return scipy.fft.irfft2(vh, s=(h, w), axes=(-2, -1), workers=-1)
