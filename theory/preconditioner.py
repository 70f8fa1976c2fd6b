r"""Right preconditioners for $\min\|Ax - z\|$ with a conv layer: Jacobi and the circulant symbol.

Notes
-----
LSMR on $AM$ (then $x = My$) converges at a rate set by the spread of the singular values of
$AM$. Two choices of a nonsingular $M$, both applied matrix-free:

* **Jacobi**: $M = \operatorname{diag}(1/\|a_j\|)$, the column norms of $A$ computed exactly as
  $\sqrt{(A^{\circ 2})^T \mathbf{1}}$ (one adjoint conv with squared weights). It evens out
  the pixels near a zero-padded border, which fewer windows read.
* **Circulant**: write the layer in its polyphase form $A = SCE$ (`theory.polyphase`: a
  stride-1 conv $C$ with $C' = C g_h g_w$ channels on the coarse grid, $E$ the image's
  coarse pixels, $S$ the outputs). On the torus of the coarse image's own size
  $N_h \times N_w$ the stride-1 circulant with the same coarse kernel has the
  block-diagonal Gram $F^{-1}\,\mathrm{blockdiag}_\omega(G(\omega))\,F$,
  $G(\omega) = \hat W(\omega)^H \hat W(\omega)$ ($C' \times C'$, `theory.symbol`), which
  agrees with $A^TA$ away from the image border (the classical circulant preconditioner of a
  block-Toeplitz matrix, here of the zero-padded and strided Gram).

The circulant preconditioner is

$$
M = D_s\, E^T F^{-1}\,\mathrm{blockdiag}_\omega\big(G(\omega)^{-1/2}\big)\, F\, E,
\qquad D_s = \operatorname{diag}\big(\sqrt{d_\circ / d_A}\big),
$$

with $d_A$ the squared column norms of $A$ and $d_\circ$ those of the circulant
($\sum_{o,q} W'[o, c', q]^2$ for every pixel of phase channel $c'$): in the interior
$d_A = d_\circ$ and $D_s = I$; at the border $D_s$ rescales as Jacobi does. The eigenvalues of
$G(\omega)$ are clipped below at `floor` times the largest, so $M$ is nonsingular even where the
circulant is not injective.

Neither choice changes the solution of an injective system, only how fast LSMR reaches it;
for a non-injective $A$ LSMR on $AM$ from 0 returns the minimum-$\|M^{-1}x\|$ solution, not
the minimum-norm one, so `theory.invert_crelu`'s default preconditions only layers whose
frame bounds say they are injective. The exact-recovery checks (residual against the
rounding and stopping bound) are unchanged: they are made on $Ax - z$, whatever $M$ was.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator

from theory.conv import ConvLayer
from theory.polyphase import coarse_form
from theory.symbol import symbol

#: The circulant preconditioner's per-frequency matrices may take at most this many bytes.
CIRCULANT_LIMIT_BYTES = 256 * 2 ** 20
#: Eigenvalues of G(w) below `floor` times the largest are raised to it.
EIGEN_FLOOR = 1e-10


def column_norms(layer: ConvLayer, input_shape, rows: np.ndarray | torch.Tensor | None = None
                 ) -> np.ndarray:
    r"""Euclidean norms of the columns of $A$ (one per input value), matrix-free.

    Parameters
    ----------
    layer : ConvLayer
    input_shape : (C, H, W)
    rows : array (K, H', W') of 0/1 (or weights), optional
        Only these rows of $A$ (default: all): the norms are
        $\sqrt{(A^{\circ 2})^T m}$ for the mask $m$.

    Returns
    -------
    array (C * H * W,)

    Notes
    -----
    One adjoint conv with the entrywise squared weights. Exact for zero padding; with circular
    padding a tap that wraps onto a pixel another tap of the same filter already reads is
    counted as its own entry (only for kernels wider than the input). A pixel no window reads
    has norm 0.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.preconditioner import column_norms
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((4, 2, 3, 3)), stride=2,
    ...                   padding=1)
    >>> a = layer.at((2, 7, 7)).dense()
    >>> bool(np.allclose(column_norms(layer, (2, 7, 7)), np.linalg.norm(a, axis=0)))
    True
    """
    sq = layer.with_weight(layer._weight.to(torch.float64) ** 2)
    out_shape = sq.output_shape(tuple(input_shape))
    m = (torch.ones(out_shape, dtype=torch.float64) if rows is None
         else torch.as_tensor(rows, dtype=torch.float64).reshape(out_shape))
    sums = sq.adjoint(m[None], tuple(input_shape))
    return np.sqrt(np.maximum(sums.reshape(-1).numpy(), 0.0))


def jacobi(op) -> LinearOperator:
    r"""The Jacobi right preconditioner $M = \operatorname{diag}(1/\|a_j\|)$ of `op`.

    A column of zeros (a pixel no window reads) gets scale 1.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.preconditioner import jacobi
    >>> op = ConvLayer(np.random.default_rng(0).standard_normal((4, 1, 3, 3)), padding=1).at(
    ...     (1, 5, 5))
    >>> am = op.dense() @ jacobi(op).matmat(np.eye(25))
    >>> bool(np.allclose(np.linalg.norm(am, axis=0), 1.0))        # unit columns
    True
    """
    n = column_norms(op.layer, op.input_shape)
    s = np.where(n > 0, 1.0 / np.where(n > 0, n, 1.0), 1.0)
    return LinearOperator((op.d, op.d), matvec=lambda v: s * np.ravel(v),
                          rmatvec=lambda v: s * np.ravel(v), dtype=np.float64)


class CirculantPreconditioner(LinearOperator):
    r"""$M = D_s E^T F^{-1} \mathrm{blockdiag}(G(\omega)^{-1/2}) F E$ (module Notes), `D x D`.

    Parameters
    ----------
    op : theory.ConvOperator
        Any stride, dilation, zero or circular padding.
    floor : float
        Relative eigenvalue floor of $G(\omega)$ (`EIGEN_FLOOR`).

    Raises
    ------
    MemoryError
        When the per-frequency matrices would exceed `CIRCULANT_LIMIT_BYTES` (the message
        names the size).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.preconditioner import CirculantPreconditioner
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((8, 1, 3, 3)), padding=1,
    ...                   padding_mode="circular")
    >>> op = layer.at((1, 8, 8))
    >>> M = CirculantPreconditioner(op)          # circular stride 1: M = (A^T A)^(-1/2)
    >>> am = op.dense() @ M.matmat(np.eye(64))
    >>> bool(np.allclose(am.T @ am, np.eye(64)))
    True
    """

    def __init__(self, op, floor: float = EIGEN_FLOOR):
        cf = coarse_form(op)
        nh, nw = cf.h.n_in, cf.w.n_in
        cc = cf.channels
        nbytes = nh * (nw // 2 + 1) * cc * cc * 16
        if nbytes > CIRCULANT_LIMIT_BYTES:
            raise MemoryError(
                f"the circulant preconditioner of {op.layer!r} on {op.input_shape} needs "
                f"{nh}x{nw // 2 + 1} matrices of {cc}x{cc} complex values ({nbytes / 2**20:.0f} "
                f"MiB > CIRCULANT_LIMIT_BYTES = {CIRCULANT_LIMIT_BYTES / 2**20:.0f} MiB); use "
                "the Jacobi preconditioner")
        sym = torch.from_numpy(symbol(cf, nh, nw, half=True).complex)   # (Fh, Fw, K, C')
        g = sym.conj().transpose(-1, -2) @ sym
        g = 0.5 * (g + g.conj().transpose(-1, -2))
        lam, vec = torch.linalg.eigh(g)
        top = float(lam.max())
        if not top > 0:
            raise ValueError(f"the coarse symbol of {op.layer!r} is zero: no preconditioner")
        lam = torch.clamp(lam, min=floor * top)
        self._root = (vec * lam.rsqrt().to(vec.dtype)[..., None, :]) @ vec.conj().transpose(-1, -2)
        self._cf, self._n = cf, (nh, nw)
        d_a = column_norms(op.layer, op.input_shape) ** 2
        per_channel = (cf.kernel ** 2).sum(axis=(0, 2, 3))
        d_c = cf.from_coarse(np.broadcast_to(per_channel[None, :, None, None],
                                             (1, cc, nh, nw)).copy())[0].ravel()
        self.border_scale = np.where(d_a > 0, np.sqrt(d_c / np.where(d_a > 0, d_a, 1.0)), 1.0)
        self.input_shape = tuple(op.input_shape)
        self.floor = floor
        self.clipped = int((lam <= floor * top).sum())
        low = float(lam.min())
        #: cond of the circulant's Gram, max over min eigenvalue of G(w) (after the floor)
        self.symbol_cond = top / low
        super().__init__(np.float64, (op.d, op.d))

    def _root_apply(self, v: np.ndarray) -> np.ndarray:
        """$E^T F^{-1} G^{-1/2} F E v$ for a batch of flattened inputs (N, D)."""
        n = v.shape[0]
        xc = torch.from_numpy(self._cf.to_coarse(v.reshape(n, *self.input_shape)))
        vf = torch.fft.rfft2(xc).permute(2, 3, 1, 0)             # (Fh, Fw, C', N)
        yf = (self._root @ vf).permute(3, 2, 0, 1)
        yc = torch.fft.irfft2(yf, s=self._n).numpy()
        return self._cf.from_coarse(yc).reshape(n, -1)

    def _matmat(self, X):
        return (self.border_scale[:, None] * self._root_apply(np.asarray(X).T).T)

    def _rmatmat(self, X):
        return self._root_apply((self.border_scale[:, None] * np.asarray(X)).T).T

    def _matvec(self, v):
        return self._matmat(np.asarray(v).reshape(-1, 1)).ravel()

    def _rmatvec(self, v):
        return self._rmatmat(np.asarray(v).reshape(-1, 1)).ravel()

    def _adjoint(self):
        return LinearOperator(self.shape, matvec=self._rmatvec, rmatvec=self._matvec,
                              matmat=self._rmatmat, rmatmat=self._matmat, dtype=self.dtype)


__all__ = [
    "CIRCULANT_LIMIT_BYTES",
    "EIGEN_FLOOR",
    "CirculantPreconditioner",
    "column_norms",
    "jacobi",
]
