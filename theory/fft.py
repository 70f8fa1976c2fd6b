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
        weight = layer.weight.double().numpy()
        kh, kw = weight.shape[2:]
        ph, pw = layer.padding
        wf = w // 2 + 1
        self.freq_shape = (h, wf)
        # DFT of the kernel wrapped on the torus, evaluated only at its taps (separable):
        # ghat[o,c,i,j] = sum_ab w[o,c,a,b] exp(-2 pi i (i (a-ph)/H + j (b-pw)/W)).
        # Stored as A(w)^H = ghat(w)^T, shape (F, C, K), contiguous.
        e_h = np.exp(-2j * np.pi * np.outer(np.arange(h), np.arange(kh) - ph) / h)
        e_w = np.exp(-2j * np.pi * np.outer(np.arange(wf), np.arange(kw) - pw) / w)
        t = np.einsum("ocab,jb->ajco", weight, e_w)  # (kh, Wf, C, K)
        self._ah = (e_h @ t.reshape(kh, -1)).reshape(h * wf, c, k)
        u, s, _ = np.linalg.svd(self._ah, full_matrices=False)  # A^H = U S V^H: U spans row space
        self.singular_values = s.reshape(h, wf, -1)  # (H, Wf, min(K, C))
        m, d = k * h * w, c * h * w
        self.rtol = float(max(m, d) * _EPS) if rtol is None else float(rtol)
        smax = float(s.max()) if s.size else 0.0
        cutoff = self.rtol * smax
        s_inv = np.where(s > cutoff, 1.0 / np.where(s > cutoff, s, 1.0), 0.0)
        self.rank_deficient_frequencies = int(np.sum(np.any(s <= cutoff, axis=-1)))
        # A(w)^+ = (A^H A)^+ A^H with (A^H A)^+ = U diag(1/s^2) U^H formed from the SVD
        # (not from the Gram matrix), so the solve keeps cond(A) * eps accuracy.
        gram_pinv = (u * s_inv[:, None, :] ** 2) @ np.conj(np.swapaxes(u, 1, 2))
        # Row layout (F, N, .) for batched solves: every product below is a contiguous
        # (N x K)(K x C)-type matmul per frequency.
        self._ah_t = np.ascontiguousarray(np.swapaxes(self._ah, 1, 2))   # A^H^T  (F, K, C)
        self._gram_pinv_t = np.ascontiguousarray(np.swapaxes(gram_pinv, 1, 2))  # (F, C, C)
        self._a_t = np.conj(self._ah)                                    # A^T    (F, C, K)

    @property
    def matrices(self) -> np.ndarray:
        """The frequency matrices :math:`A(\\omega)`, shape (F, K, C) over the rfft half-plane."""
        return np.conj(np.swapaxes(self._ah, 1, 2))

    def _to_rows(self, v: np.ndarray) -> np.ndarray:
        """(N, ch, H, W) real -> its rfft2 in row layout (F, N, ch)."""
        n, ch = v.shape[:2]
        vh = scipy.fft.rfft2(v, axes=(-2, -1), workers=-1)
        return np.ascontiguousarray(vh.reshape(n, ch, -1).transpose(2, 0, 1))

    def _from_rows(self, rows: np.ndarray) -> np.ndarray:
        """Row layout (F, N, ch) -> real (N, ch, H, W) by irfft2."""
        h, w = self.input_shape[1:]
        n, ch = rows.shape[1:]
        vh = rows.transpose(1, 2, 0).reshape(n, ch, *self.freq_shape)
        return scipy.fft.irfft2(vh, s=(h, w), axes=(-2, -1), workers=-1)

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
        y = self._from_rows(self._to_rows(xb) @ self._a_t)
        return y.reshape(*np.shape(x)[:-3], *self.output_shape)

    def solve(self, z: np.ndarray, return_residual: bool = False):
        """Minimum-norm least-squares solution of ``A x = z`` for ``(K,H,W)`` or ``(N,K,H,W)``.

        With ``return_residual=True`` also returns :math:`\\|A x - z\\|_2` over the batch,
        computed in the frequency domain (Parseval) without another transform.
        """
        zb = np.asarray(z, dtype=np.float64).reshape(-1, *self.output_shape)
        zr = self._to_rows(zb)                                  # (F, N, K)
        xr = (zr @ self._ah_t) @ self._gram_pinv_t              # (F, N, C) = (A^+ z)^T
        x = self._from_rows(xr).reshape(*np.shape(z)[:-3], *self.input_shape)
        if not return_residual:
            return x
        r = xr @ self._a_t - zr                                 # residual spectrum (F, N, K)
        return x, float(np.sqrt(np.sum(self._parseval_weights * (r.real ** 2 + r.imag ** 2))))

    @property
    def _parseval_weights(self) -> np.ndarray:
        """Weights w(f) with ||v||^2 = sum_f w(f) |rfft2(v)(f)|^2 over the half-plane."""
        h, w = self.input_shape[1:]
        wf = self.freq_shape[1]
        col = np.full(wf, 2.0)
        col[0] = 1.0
        if w % 2 == 0:
            col[-1] = 1.0  # the Nyquist column is its own mirror image
        return (np.broadcast_to(col, (h, wf)).reshape(-1, 1, 1) / (h * w))
