"""Block diagonalisation of a circular, stride-1 conv layer by the 2-D DFT.

Notes
-----
With circular padding, stride 1 and output size equal to input size, the layer is
$y_{o,i,j} = \\sum_{c,u,v} g_{o,c,u,v}\\, x_{c,(i+u) \\bmod H,(j+v) \\bmod W}$, where
$g$ is the kernel wrapped onto the $H \\times W$ torus
($g_{o,c,(d_h a-p_h) \\bmod H,(d_w b-p_w) \\bmod W} \\mathrel{+}= w_{o,c,a,b}$, with
the dilation $d$). This is a
cross-correlation, so the 2-D DFT turns it into one small complex matrix per frequency
$\\omega$:

$$
\\hat y(\\omega) = A(\\omega)\\, \\hat x(\\omega), \\qquad
A(\\omega) = \\overline{\\hat g(\\omega)} \\in \\mathbb{C}^{K \\times C}.
$$

The DFT is unitary up to one common factor, so the singular values of the layer are exactly
the union over the $HW$ frequencies of the singular values of $A(\\omega)$
(Sedghi, Gupta and Long, ICLR 2019), and the least-squares minimum-norm inverse is
$\\hat x(\\omega) = A(\\omega)^+ \\hat y(\\omega)$ frequency by frequency. Since the
signals are real, $A(-\\omega) = \\overline{A(\\omega)}$; only the `rfft2` half-plane
is stored.
"""

from __future__ import annotations

import numpy as np
import torch

from theory.conv import normalising_exponent

_EPS = float(np.finfo(np.float64).eps)


class CirculantPlan:
    """Per-layer, per-input-shape FFT plan: frequency matrices, singular values, pseudo-inverses.

    Built once (kernel DFT; per frequency a C x C Gram eigendecomposition, or an SVD where
    A(w) is ill-conditioned) and reused for every image.

    Parameters
    ----------
    layer : theory.ConvLayer
        Must be circular, stride 1, with output size equal to input size.
    input_shape : (C, H, W)
    rtol : float, optional
        Singular values below `rtol * sigma_max` are treated as zero in the pseudo-inverse
        (and the layer is then not injective). Default `max(M, D) * eps`, numpy's
        `matrix_rank` convention, with `eps` of float64 (all plan arithmetic is float64).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import CirculantPlan, ConvLayer
    >>> rng = np.random.default_rng(0)
    >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
    >>> plan = CirculantPlan(layer, (2, 6, 6))
    >>> plan.singular_values.shape            # (H, W//2 + 1, min(K, C)) over the half-plane
    (6, 4, 2)
    >>> s = np.linalg.svd(layer.dense((2, 6, 6)), compute_uv=False)   # the dense oracle
    >>> bool(np.allclose(np.sort(plan.full_spectrum().ravel())[::-1], s))
    True
    >>> x = rng.standard_normal((2, 6, 6))
    >>> bool(np.allclose(plan.solve(layer.forward(x)), x))   # exact inverse, per frequency
    True
    >>> try:
    ...     CirculantPlan(ConvLayer(np.ones((4, 2, 3, 3)), padding=1), (2, 6, 6))
    ... except ValueError as err:
    ...     print(str(err).split(" (")[0])
    the FFT path needs circular padding, stride 1 and output size equal to input size
    """

    def __init__(self, layer, input_shape=None, rtol: float | None = None):
        from theory.operator import ConvOperator

        op = layer if isinstance(layer, ConvOperator) else layer.at(input_shape)
        if input_shape is not None and tuple(int(v) for v in input_shape) != op.input_shape:
            raise ValueError(f"input_shape {tuple(input_shape)} differs from the operator's "
                             f"{op.input_shape}")
        if not op.is_circulant:
            raise ValueError(
                "the FFT path needs circular padding, stride 1 and output size equal to input "
                f"size (e.g. padding=(k-1)/2 for odd k); got {op.layer!r} on input "
                f"{op.input_shape}"
            )
        layer = op.layer
        c, h, w = op.input_shape
        k = layer.out_channels
        self.input_shape = (c, h, w)
        self.output_shape = (k, h, w)
        weight = layer._weight.double().numpy()
        # kernels far from unit scale are factored as 2^e * A (exact), so that no square
        # (Gram matrices, residual norms) underflows or overflows; z is scaled the same way
        self._e = normalising_exponent(float(np.abs(weight).max()))
        self._f = float(np.ldexp(1.0, self._e))
        if self._e:
            weight = np.ldexp(weight, self._e)
        kh, kw = weight.shape[2:]
        ph, pw = layer.padding
        dh, dw = layer.dilation
        wf = w // 2 + 1
        self.freq_shape = (h, wf)
        nf = h * wf
        # ghat: the DFT of the kernel wrapped on the torus, evaluated only at its taps
        # (separable), stored frequency-last, ghat[k, c, f]: (K, C, F). A(w) = conj(ghat(w)),
        # so ghat[:, :, f] = conj(A(w)) and A(w)^H = ghat(w)^T: no conjugated copy is kept.
        e_h = np.exp(-2j * np.pi * np.outer(np.arange(h), dh * np.arange(kh) - ph) / h)
        e_w = np.exp(-2j * np.pi * np.outer(np.arange(wf), dw * np.arange(kw) - pw) / w)
        t = np.einsum("ocab,jb->aocj", weight, e_w).reshape(kh, -1)   # (kh, K*C*Wf)
        g = (e_h @ t).reshape(h, k, c, wf)                            # one matmul
        self._g = np.ascontiguousarray(g.transpose(1, 2, 0, 3)).reshape(k, c, nf)
        m, d = k * h * w, c * h * w
        self.rtol = float(max(m, d) * _EPS) if rtol is None else float(rtol)
        s, gram_pinv = self._factor(k, c, nf)
        self._unit_singular_values = s.reshape(h, wf, -1)            # of 2^e A
        with np.errstate(over="ignore", under="ignore"):               # 0/inf are the truth
            self.singular_values = np.ldexp(self._unit_singular_values, -self._e)
        self._gram_pinv = gram_pinv                                  # (C, C, F)

    #: Frequencies whose condition number is at most this use the C x C Gram matrix (error
    #: ~ kappa^2 eps <= 16 eps); the others use the pseudo-inverse from an SVD of A(w),
    #: applied to z(w) directly (error ~ kappa eps).
    GRAM_KAPPA = 4.0

    def _factor(self, k: int, c: int, nf: int):
        """Singular values of every A(w); the per-frequency inverses.

        Where $\\kappa(A(\\omega)) \\le$ `GRAM_KAPPA` the inverse is
        $(A^HA)^{-1}A^H$ from one batched `C x C` Gram eigendecomposition (stored as
        `(C, C, F)`; forward error about $\\kappa^2 u \\le 16u$). Elsewhere the
        singular values and the pseudo-inverse $A(\\omega)^+ = V\\Sigma^+U^H$ come from
        an SVD of $A(\\omega)$ itself (stored as `(F_slow, C, K)`), which resolves
        rank deficiency down to `rtol` and keeps the forward error at
        $O(\\kappa u)$: the solve never forms $A^Hz$ there.
        """
        gram = np.zeros((c, c, nf), dtype=complex)                    # A^H A, one filter at a time
        for row in self._g:                                           # row = conj(A[k]) (C, F)
            gram += row[:, None, :] * np.conj(row)[None, :, :]
        gram = np.ascontiguousarray(np.moveaxis(gram, 2, 0))          # (F, C, C)
        lam, vec = np.linalg.eigh(gram)                               # ascending
        lam = np.ascontiguousarray(np.maximum(lam[:, ::-1], 0.0))
        vec = np.ascontiguousarray(vec[:, :, ::-1])
        sv = np.sqrt(lam)                                             # (F, C), descending
        slow = ~(sv[:, 0] <= self.GRAM_KAPPA * sv[:, -1])             # ill-conditioned/singular
        self._slow = np.flatnonzero(slow)
        self._pinv_slow = np.zeros((0, c, k), dtype=complex)
        if slow.any():
            a_slow = np.conj(np.moveaxis(self._g[:, :, slow], 2, 0))  # A(w), (F_slow, K, C)
            u, s_slow, vh = np.linalg.svd(a_slow, full_matrices=False)
            full = np.zeros((s_slow.shape[0], c))
            full[:, :s_slow.shape[1]] = s_slow
            sv[slow] = full
        smax = float(sv.max()) if sv.size else 0.0
        cutoff = self.rtol * smax
        keep = sv > cutoff
        self.rank_deficient_frequencies = int(np.sum(~keep[:, -1]))
        self.svd_frequencies = int(slow.sum())
        # fast frequencies: (A^H A)^{-1} from the Gram eigendecomposition (kappa <= GRAM_KAPPA)
        fast = keep & ~slow[:, None]
        inv = np.where(fast, 1.0 / np.where(fast, lam, 1.0), 0.0)
        gram_pinv = (vec * inv[:, None, :]) @ np.conj(np.swapaxes(vec, 1, 2))   # (F, C, C)
        if slow.any():
            # slow frequencies: A(w)^+ = V S^+ U^H applied to z(w) directly, never through
            # A^H z, whose rounding error S^-2 would amplify by kappa^2
            s_inv = np.where(s_slow > cutoff, 1.0 / np.where(s_slow > cutoff, s_slow, 1.0), 0.0)
            self._pinv_slow = np.ascontiguousarray(
                (np.conj(np.swapaxes(vh, 1, 2)) * s_inv[:, None, :]) @ np.conj(np.swapaxes(u, 1, 2)))
        return sv[:, :min(k, c)], np.ascontiguousarray(np.moveaxis(gram_pinv, 0, 2))

    @property
    def matrices(self) -> np.ndarray:
        """The frequency matrices $A(\\omega)$, shape (F, K, C) over the rfft half-plane.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import CirculantPlan, ConvLayer
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> plan = CirculantPlan(layer, (2, 6, 6))
        >>> a = plan.matrices
        >>> a.shape                               # F = 6 * 4 frequencies, each K x C = 4 x 2
        (24, 4, 2)
        >>> s = np.linalg.svd(a, compute_uv=False)
        >>> bool(np.allclose(s.reshape(6, 4, 2), plan.singular_values))
        True
        """
        return np.conj(np.moveaxis(self._g, 2, 0)) / self._f

    def _apply_a(self, xf: np.ndarray) -> np.ndarray:
        """2^e A(w) x(w) for (N, C, F) spectra: conj(ghat^T conj(x)), only x is conjugated."""
        return np.conj(np.einsum("kcf,ncf->nkf", self._g, np.conj(xf)))

    def _spectra(self, v: np.ndarray) -> np.ndarray:
        """(N, ch, H, W) real -> rfft2 as (N, ch, F) complex (torch's FFT, all threads)."""
        n, ch = v.shape[:2]
        vh = torch.fft.rfft2(torch.from_numpy(np.ascontiguousarray(v)))
        return vh.numpy().reshape(n, ch, -1)

    def _signals(self, vf: np.ndarray) -> np.ndarray:
        """(N, ch, F) complex -> real (N, ch, H, W) by irfft2."""
        h, w = self.input_shape[1:]
        n, ch = vf.shape[:2]
        t = torch.from_numpy(np.ascontiguousarray(vf).reshape(n, ch, *self.freq_shape))
        return torch.fft.irfft2(t, s=(h, w)).numpy()

    # ------------------------------------------------------------------ spectrum
    @property
    def sigma_max(self) -> float:
        """Largest singular value of the layer (over all frequencies).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import CirculantPlan, ConvLayer
        >>> layer = ConvLayer(np.ones((1, 1, 3, 3)), padding=1, padding_mode="circular")
        >>> round(CirculantPlan(layer, (1, 6, 6)).sigma_max, 12)   # the DC gain: 9 taps of 1
        9.0
        """
        return float(self.singular_values.max())

    @property
    def sigma_min(self) -> float:
        """Smallest singular value of the layer (0 when K < C: every A(w) is wide).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import CirculantPlan, ConvLayer
        >>> rng = np.random.default_rng(0)
        >>> wide = ConvLayer(rng.standard_normal((1, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> CirculantPlan(wide, (2, 6, 6)).sigma_min          # 1 filter, 2 channels: K < C
        0.0
        >>> tall = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> s = np.linalg.svd(tall.dense((2, 6, 6)), compute_uv=False)
        >>> bool(np.isclose(CirculantPlan(tall, (2, 6, 6)).sigma_min, s[-1]))
        True
        """
        c, k = self.input_shape[0], self.output_shape[0]
        if k < c:
            return 0.0
        return float(self.singular_values.min())

    @property
    def injective(self) -> bool:
        """Whether sigma_min > rtol * sigma_max (computed on 2^e A: scale-free).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import CirculantPlan, ConvLayer
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> CirculantPlan(layer, (2, 6, 6)).injective
        True
        >>> box = ConvLayer(np.ones((1, 1, 1, 3)), padding=(0, 1), padding_mode="circular")
        >>> CirculantPlan(box, (1, 4, 6)).injective     # a 1x3 box: zero gain at period 3
        False
        """
        if self.input_shape[0] > self.output_shape[0]:
            return False
        s = self._unit_singular_values
        return float(s.min()) > self.rtol * float(s.max())

    def full_spectrum(self) -> np.ndarray:
        """Singular values on the full `H x W` frequency grid, shape (H, W, min(K, C)).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import CirculantPlan, ConvLayer
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((3, 1, 3, 3)), padding=1, padding_mode="circular")
        >>> full = CirculantPlan(layer, (1, 5, 6)).full_spectrum()
        >>> full.shape
        (5, 6, 1)
        >>> s = np.linalg.svd(layer.dense((1, 5, 6)), compute_uv=False)
        >>> bool(np.allclose(np.sort(full.ravel()), np.sort(s)))    # every singular value, once
        True
        """
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
        """The layer applied through the FFT (an oracle/cross-check for `conv2d`).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import CirculantPlan, ConvLayer
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> x = rng.standard_normal((3, 2, 6, 6))
        >>> y = CirculantPlan(layer, (2, 6, 6)).forward(x)
        >>> y.shape, bool(np.allclose(y, layer.forward(x)))          # FFT == conv2d
        ((3, 4, 6, 6), True)
        """
        xb = np.asarray(x, dtype=np.float64).reshape(-1, *self.input_shape)
        yf = self._apply_a(self._spectra(xb))
        if self._e:
            yf = yf / self._f
        return self._signals(yf).reshape(*np.shape(x)[:-3], *self.output_shape)

    def solve(self, z: np.ndarray, return_residual: bool | str = False):
        """Minimum-norm least-squares solution of `A x = z` for `(K,H,W)` or `(N,K,H,W)`.

        With `return_residual=True` also returns $\\|A x - z\\|_2$ over the batch
        (`"per-input"`: an array, one norm per input), computed in the frequency domain
        (Parseval) without another transform.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import CirculantPlan, ConvLayer
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> plan = CirculantPlan(layer, (2, 6, 6))
        >>> x = rng.standard_normal((2, 6, 6))
        >>> x_rec, res = plan.solve(layer.forward(x), return_residual=True)
        >>> bool(np.allclose(x_rec, x)), bool(res < 1e-10)
        (True, True)
        >>> z = rng.standard_normal((4, 6, 6))            # not in the range: least squares
        >>> x_ls = plan.solve(z)
        >>> x_np = np.linalg.lstsq(layer.dense((2, 6, 6)), z.ravel(), rcond=None)[0]
        >>> bool(np.allclose(x_ls.ravel(), x_np))
        True
        """
        zb = np.asarray(z, dtype=np.float64).reshape(-1, *self.output_shape)
        zf = self._spectra(zb)                                             # (N, K, F)
        if self._e:
            zf = zf * self._f                                              # 2^e z for 2^e A
        y = np.einsum("kcf,nkf->ncf", self._g, zf)                         # A^H z
        xf = np.einsum("cdf,ndf->ncf", self._gram_pinv, y)                 # (A^H A)^-1 A^H z
        if self._slow.size:                                                # A(w)^+ z(w)
            xf[:, :, self._slow] = np.einsum("fck,nkf->ncf", self._pinv_slow,
                                             zf[:, :, self._slow])
        x = self._signals(xf).reshape(*np.shape(z)[:-3], *self.input_shape)
        if not return_residual:
            return x
        return x, self._residual_from_spectra(xf, zf, per_input=return_residual == "per-input")

    def residual_norm(self, x: np.ndarray, z: np.ndarray) -> float:
        """$\\|A x - z\\|_2$ over a batch, in the frequency domain (Parseval).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import CirculantPlan, ConvLayer
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> plan = CirculantPlan(layer, (2, 6, 6))
        >>> x, z = rng.standard_normal((2, 6, 6)), rng.standard_normal((4, 6, 6))
        >>> direct = np.linalg.norm(layer.forward(x) - z)
        >>> bool(np.isclose(plan.residual_norm(x, z), direct))      # Parseval
        True
        """
        xb = np.asarray(x, dtype=np.float64).reshape(-1, *self.input_shape)
        zb = np.asarray(z, dtype=np.float64).reshape(-1, *self.output_shape)
        zf = self._spectra(zb)
        return self._residual_from_spectra(self._spectra(xb), zf * self._f if self._e else zf)

    def _residual_from_spectra(self, xf: np.ndarray, zf: np.ndarray, per_input: bool = False):
        """||A x - z|| from the spectra of x and of 2^e z (over the batch, or per input)."""
        r = self._apply_a(xf) - zf                                         # 2^e (A x - z)
        weights = self._parseval_weights.reshape(-1)
        sq = weights * (r.real ** 2 + r.imag ** 2)                         # (N, K, F)
        if per_input:
            norms = np.sqrt(sq.reshape(sq.shape[0], -1).sum(axis=1))
            return np.ldexp(norms, -self._e) if self._e else norms
        norm = float(np.sqrt(np.sum(sq)))
        return float(np.ldexp(norm, -self._e)) if self._e else norm

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
