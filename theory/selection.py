"""The selected, signed, shifted filters of a max-pooled CReLU (or ReLU) layer.

Notes
-----
Let $z = Ax$ be a conv layer's pre-activation, $z_k(j)$ the response of filter
$k$ at output position $j$. Non-overlapping $p \\times p$ max-pooling over
regions $R$ of CReLU features keeps, per region and filter,

$$
g^+_{k,R} = \\max(0, \\max_{j \\in R} z_k(j)), \\qquad
g^-_{k,R} = \\max(0, -\\min_{j \\in R} z_k(j)),
$$

i.e. the largest *and* the smallest response (ReLU + max-pooling keeps only
$g^+$). Every non-zero pooled value is a linear measurement
$\\langle \\tilde w, x \\rangle$ of a *selected, signed, shifted* filter
$\\tilde w = \\pm w_{k, j^*}$ ($j^*$ the pooling switch, the sign `+` for the
positive channel and `-` for the negative one). Stacking them as the columns of
$W_x \\in \\mathbb{R}^{D \\times n}$ gives $W_x^T x = g_{\\neq 0}$:
`MaxPoolSelection` is that operator, bound to one input shape, built by
`selection` from pooled features and switches.

Beyond the paper: where both of filter $k$'s pooled CReLU values are 0 on a window,
the responses vanish on the whole window, which adds `pool**2` exact equations
$\\langle w_{k,j}, x\\rangle = 0$ (*zero windows*, `selection`). See
docs/theory/maxpool.md.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import LinearOperator

from theory.conv import ConvLayer, as_tensor
from theory.features import Activation, _check_activation, check_bias, check_pool
from theory.frames import FrameBounds
from theory.im2col import TorchProducts, abs_norm_bound
from theory.preconditioner import column_norms

#: Largest `n_selected * taps` for which the sparse matrix of the selected filters is built
#: automatically (about 100 MB of index/value arrays).
SPARSE_LIMIT = 8_000_000


def pooled_shape(layer: ConvLayer, input_shape: Sequence[int], pool: int = 2,
                 activation: Activation = "crelu") -> tuple[int, int, int]:
    """Shape `(C_f, H'//pool, W'//pool)` of the pooled features (`C_f = 2K` for CReLU).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.selection import pooled_shape
    >>> layer = ConvLayer(np.ones((4, 1, 3, 3)), padding=1)
    >>> pooled_shape(layer, (1, 8, 8))                        # CReLU doubles the channels
    (8, 4, 4)
    >>> pooled_shape(layer, (1, 9, 9), pool=3, activation="relu")
    (4, 3, 3)
    """
    _check_activation(activation)
    pool = check_pool(pool)
    k, ho, wo = layer.output_shape(input_shape)
    if ho < pool or wo < pool:
        raise ValueError(f"the conv output {ho}x{wo} is smaller than the pooling window {pool}")
    return (2 * k if activation == "crelu" else k), ho // pool, wo // pool


@dataclasses.dataclass(frozen=True, eq=False)
class MaxPoolSelection:
    """The selected, signed, shifted filters $\\tilde w_j$ of one input.

    Build it with `selection`. The analysis operator $W_x^T: \\mathbb{R}^D \\to
    \\mathbb{R}^n$ maps an input to the non-zero pooled values; its adjoint is $W_x$.

    Attributes
    ----------
    layer, input_shape, pool, activation
    filter_index : int array (n,)
        Filter $k$ of each selected measurement.
    position : int array (n,)
        Flat position `i * W' + j` of the kept response in the conv output.
    sign : float array (n,)
        `+1` (positive channel) or `-1` (negative channel).
    values : float array (n,)
        The non-zero pooled values $g_{\\neq 0}$ (float64).
    unit_index : int array (n,)
        Flat index of each selected unit in the pooled feature array (for a zero-window row:
        the unit of the positive channel).
    zero_window : bool array (n,)
        `True` for the rows added by a *zero window* (CReLU only, see `selection`):
        filter $k$ at every position of a pooling window whose positive and negative
        pooled values are both 0, with value 0.
    bias : float array (K,) or None
        A known bias $\\beta$ of the conv, $z = Ax + \\beta$ (`selection`): the
        measurements are then $W_x^T x = $ `rhs`, the values shifted by the bias.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, conv_crelu_maxpool, selection
    >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
    >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
    >>> x = np.random.default_rng(1).random((1, 6, 6))
    >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
    >>> sel = selection(g, s, layer, x.shape)
    >>> sel.shape                                               # n measurements, D unknowns
    (122, 36)
    >>> bool(np.allclose(sel.linear_operator.matvec(x.ravel()), sel.values))   # W_x^T x = g
    True
    >>> sel.frame_bounds().injective                           # a frame: x is determined
    True
    """

    layer: ConvLayer
    input_shape: tuple[int, int, int]
    pool: int
    activation: str
    filter_index: np.ndarray
    position: np.ndarray
    sign: np.ndarray
    values: np.ndarray
    unit_index: np.ndarray
    zero_window: np.ndarray
    bias: np.ndarray | None = None

    @property
    def rhs(self) -> np.ndarray:
        r"""The right-hand side of $W_x^T x = $ `rhs`: `values - sign * bias[filter_index]`.

        A selected positive unit has value $z_k(j^+) = (Ax)_{k,j^+} + \beta_k$, a negative
        one $-z_k(j^-) = -(Ax)_{k,j^-} - \beta_k$, a zero-window row $z_k(j) = 0$, i.e.
        $(Ax)_{k,j} = -\beta_k$ (sign `+1`): in every case the row
        $s\,(Ax)_{k,j}$ equals the value minus $s\beta_k$. Without a bias, `values`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((6, 1, 3, 3)), padding=1)
        >>> x, beta = rng.random((1, 6, 6)), rng.normal(0, 0.3, 6)
        >>> g, s = conv_crelu_maxpool(x, layer, bias=beta)        # features of the biased conv
        >>> sel = selection(g, s, layer, x.shape, bias=beta)
        >>> bool(np.allclose(sel.linear_operator.matvec(x.ravel()), sel.rhs))   # W_x^T x = rhs
        True
        >>> bool(np.allclose(sel.linear_operator.matvec(x.ravel()), sel.values))
        False
        """
        if self.bias is None:
            return self.values
        return self.values - self.sign * self.bias[self.filter_index]

    @property
    def n_zero_window(self) -> int:
        """Number of rows that come from zero windows.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((4, 1, 3, 3)), padding=1)
        >>> x = np.zeros((1, 6, 6))
        >>> x[0, :3, :3] = 1.0                                     # a black region elsewhere
        >>> g, s = conv_crelu_maxpool(x, layer)
        >>> with_zero = selection(g, s, layer, x.shape)
        >>> paper = selection(g, s, layer, x.shape, zero_windows=False)
        >>> with_zero.n_zero_window, paper.n_zero_window          # pool**2 = 4 rows per window
        (80, 0)
        >>> with_zero.n_selected - paper.n_selected == with_zero.n_zero_window
        True
        """
        return int(self.zero_window.sum())

    @property
    def n_selected(self) -> int:
        """Number of selected measurements `n` (zero-window rows included).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> sel.n_selected, int(np.count_nonzero(g))              # no zero window here
        (122, 122)
        """
        return int(self.values.size)

    @property
    def dim(self) -> int:
        """Number of unknowns `D = C H W`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> sel.dim
        36
        """
        return int(np.prod(self.input_shape))

    @property
    def conv_shape(self) -> tuple[int, int, int]:
        """Shape `(K, H', W')` of the conv output the switches index into.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> sel.conv_shape
        (9, 6, 6)
        """
        return self.layer.output_shape(self.input_shape)

    @property
    def _taps(self) -> int:
        kh, kw = self.layer.kernel_size
        return self.layer.in_channels * kh * kw

    @property
    def _rows(self) -> np.ndarray:
        """Row indices of the selected measurements in the conv matrix $A$."""
        _, ho, wo = self.conv_shape
        return self.filter_index * (ho * wo) + self.position

    # ---------------------------------------------------------------- operators
    def operator(self) -> LinearOperator:
        """$W_x^T$ as a LinearOperator (the cached `linear_operator`).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> A = sel.operator()
        >>> A.shape, bool(np.allclose(A.matvec(x.ravel()), sel.values))
        ((122, 36), True)
        """
        return self.linear_operator

    @functools.cached_property
    def linear_operator(self) -> LinearOperator:
        """$W_x^T$ (shape `n x D`) as a float64 LinearOperator; `.H` is $W_x$.

        `matvec` runs the conv layer and gathers the selected responses (times their
        signs); `rmatvec` scatters signed values into the conv output and runs the layer's
        exact adjoint. Nothing of size `n x D` is ever formed. For zero padding the conv and
        its adjoint run as `unfold` + matrix product and matrix product + `fold` (float64
        BLAS; `fold` is the exact adjoint of `unfold`), which is several times faster on
        CPU than float64 `conv2d`/`conv_transpose2d`; other padding modes use
        `ConvLayer.forward` and `ConvLayer.adjoint`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> A = sel.linear_operator
        >>> v = np.random.default_rng(2).standard_normal(A.shape[0])
        >>> bool(np.allclose(A.rmatvec(v), sel.dense().T @ v))    # the adjoint W_x
        True
        """
        shape, cshape = self.input_shape, self.conv_shape
        d, n = self.dim, self.n_selected
        rows = torch.from_numpy(self._rows)
        sign = torch.from_numpy(self.sign)
        layer = self.layer
        mtot = int(np.prod(cshape))
        fast = layer.padding_mode == "zeros"
        wmat = layer._weight.to(torch.float64).reshape(layer.out_channels, -1)
        ksz, pad, strd, dil = layer.kernel_size, layer.padding, layer.stride, layer.dilation

        def conv(xb: torch.Tensor) -> torch.Tensor:
            if fast:
                return wmat @ F.unfold(xb, ksz, dilation=dil, padding=pad, stride=strd)
            return layer.forward(xb).to(torch.float64)

        def conv_adjoint(zb: torch.Tensor) -> torch.Tensor:
            if fast:
                cols = wmat.T @ zb.reshape(zb.shape[0], layer.out_channels, -1)
                return F.fold(cols, shape[1:], ksz, dilation=dil, padding=pad, stride=strd)
            return layer.adjoint(zb.reshape(-1, *cshape).to(layer.dtype), shape).to(torch.float64)

        def matmat(X: np.ndarray) -> np.ndarray:
            xb = torch.from_numpy(np.ascontiguousarray(np.asarray(X, dtype=np.float64).T))
            z = conv(xb.reshape(-1, *shape)).reshape(xb.shape[0], mtot)
            return (z[:, rows] * sign).numpy().T

        def rmatmat(Y: np.ndarray) -> np.ndarray:
            yb = torch.from_numpy(np.ascontiguousarray(np.asarray(Y, dtype=np.float64).T))
            buf = torch.zeros(yb.shape[0], mtot, dtype=torch.float64)
            buf.index_add_(1, rows, yb * sign)
            return conv_adjoint(buf).reshape(yb.shape[0], d).numpy().T

        return LinearOperator(
            (n, d), dtype=np.float64,
            matvec=lambda v: matmat(np.asarray(v).reshape(d, 1)).ravel(),
            rmatvec=lambda v: rmatmat(np.asarray(v).reshape(n, 1)).ravel(),
            matmat=matmat, rmatmat=rmatmat,
        )

    def dense(self, force: bool = False) -> np.ndarray:
        """The `n x D` matrix $W_x^T$ from the layer's dense matrix (the test oracle).

        Refuses inputs with more than `DENSE_LIMIT` values unless `force=True`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> a = sel.dense()
        >>> a.shape, bool(np.allclose(a @ x.ravel(), sel.values))
        ((122, 36), True)
        >>> row = sel.filter_index[0] * 36 + sel.position[0]       # its row k H'W' + j of A
        >>> a0 = layer.dense(x.shape)[row]
        >>> bool(np.array_equal(a[0], sel.sign[0] * a0))         # a signed, shifted filter
        True
        """
        a = self.layer.dense(self.input_shape, force=force).astype(np.float64)
        return a[self._rows] * self.sign[:, None]

    def sparse(self) -> scipy.sparse.csr_matrix:
        """$W_x^T$ as a CSR matrix built tap by tap from the filters (cached).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> m = sel.sparse()
        >>> type(m).__name__, m.shape, bool(np.allclose(m.toarray(), sel.dense()))
        ('csr_matrix', (122, 36), True)
        """
        return self._sparse

    @functools.cached_property
    def _sparse(self) -> scipy.sparse.csr_matrix:
        layer = self.layer
        c, h, w = self.input_shape
        _, ho, wo = self.conv_shape
        kh, kw = layer.kernel_size
        (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
        weight = layer._weight.to(torch.float64).numpy()
        n = self.n_selected
        oi, oj = np.divmod(self.position, wo)
        cc, aa, bb = np.meshgrid(np.arange(c), np.arange(kh), np.arange(kw), indexing="ij")
        cc, aa, bb = cc.ravel(), aa.ravel(), bb.ravel()
        rr = oi[:, None] * sh - ph + dh * aa[None, :]
        ss = oj[:, None] * sw - pw + dw * bb[None, :]
        vals = weight[self.filter_index[:, None], cc[None, :], aa[None, :], bb[None, :]]
        vals = vals * self.sign[:, None]
        if layer.padding_mode == "circular":
            rr, ss = np.remainder(rr, h), np.remainder(ss, w)
            valid = np.ones(rr.shape, dtype=bool)
        else:
            valid = (rr >= 0) & (rr < h) & (ss >= 0) & (ss < w)
        cols = (cc[None, :] * h + rr) * w + ss
        rowid = np.broadcast_to(np.arange(n)[:, None], rr.shape)
        mat = scipy.sparse.coo_matrix((vals[valid], (rowid[valid], cols[valid])),
                                      shape=(n, self.dim))
        return mat.tocsr()  # duplicates (circular wrap) are summed, as circular padding does

    def column_norms(self) -> np.ndarray:
        """Euclidean norms of the columns of $W_x^T$, one per input coordinate (`D`).

        Computed matrix-free as $\\sqrt{(A^{\\circ 2})^T m}$ (entrywise squares): the
        layer's adjoint with squared weights applied to the 0/1 mask `m` of the selected
        responses (one adjoint conv). Exact for zero padding; with circular padding a tap that wraps onto a
        coordinate another tap of the same filter already covers is counted as its own entry
        (only for kernels wider than the input), which is harmless where the norms serve as
        a preconditioner. A coordinate no selected filter touches has norm 0.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> bool(np.allclose(sel.column_norms(), np.linalg.norm(sel.dense(), axis=0)))
        True
        """
        return self._column_norms

    @functools.cached_property
    def _column_norms(self) -> np.ndarray:
        buf = torch.zeros(int(np.prod(self.conv_shape)), dtype=torch.float64)
        buf.index_add_(0, torch.from_numpy(self._rows), torch.ones(self.n_selected,
                                                                   dtype=torch.float64))
        return column_norms(self.layer, self.input_shape, buf)

    # ---------------------------------------------------------------- frame bounds
    #: The `theory.frame_bounds` methods that apply to a selection.
    bounds_methods = ("dense", "dense-gram", "banded", "shift-invert", "iterative")
    gram_name = "W_x W_x^T"

    @property
    def shape(self) -> tuple[int, int]:
        """`(n, D)`: selected measurements by unknowns (the shape of $W_x^T$).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> sel.shape, sel.shape == sel.dense().shape
        ((122, 36), True)
        """
        return self.n_selected, self.dim

    @property
    def max_abs(self) -> float:
        """The largest absolute entry of $W_x^T$ (at most the largest weight).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> bool(sel.max_abs == np.abs(w).max())
        True
        """
        return self.layer.max_abs if self.n_selected else 0.0

    def scaled(self, factor: float) -> "MaxPoolSelection":
        """The selection of the layer with weights times `factor` (values scaled too).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> big = sel.scaled(4.0)
        >>> bool(np.allclose(big.dense(), 4 * sel.dense()))
        True
        >>> bool(np.allclose(big.values, 4 * sel.values))
        True
        """
        return dataclasses.replace(self, layer=self.layer.scaled(factor),
                                   values=self.values * factor,
                                   bias=None if self.bias is None else self.bias * factor)

    def auto_bounds_method(self) -> str:
        """`dense` for `D <= 1024`, `shift-invert` while the sparse matrix is small
        enough, else `iterative`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> sel.auto_bounds_method()                               # D = 36 <= 1024
        'dense'
        """
        d, n = self.dim, self.n_selected
        if d <= 1024:
            return "dense"
        if n * self._taps <= SPARSE_LIMIT and d <= 200_000:
            return "shift-invert"
        return "iterative"

    def band_geometry(self) -> tuple[tuple[int, int, int], tuple[int, int]]:
        """`(input_shape, reach)` for the `banded` method (zero padding only).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> sel.band_geometry()                                    # (input shape, reach)
        ((1, 6, 6), (3, 3))
        >>> fb = sel.frame_bounds("banded")
        >>> bool(np.isclose(fb.lower, sel.frame_bounds("dense").lower))
        True
        """
        if self.layer.padding_mode != "zeros":
            raise ValueError("method='banded' needs zero padding (circular wrap breaks the band)")
        return self.input_shape, self.layer.receptive_field

    def frame_bounds(self, method: str = "auto", *, tol: float = 1e-10,
                     maxiter: int | None = None) -> FrameBounds:
        """Frame bounds $a, b$ of the selected filters, $aI \\preceq W_xW_x^T
        \\preceq bI$ (`theory.frame_bounds` of this selection).

        Parameters
        ----------
        method : {"auto", "dense", "dense-gram", "banded", "shift-invert", "iterative"}
            See `theory.frames`. `auto`: dense for `D <= 1024`, shift-invert when
            the sparse matrix is small enough, else iterative.

        Returns
        -------
        FrameBounds
            `lower = 0` when fewer filters than dimensions are selected.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> fb = sel.frame_bounds()                                # dense SVD for D <= 1024
        >>> s = np.linalg.svd(sel.dense(), compute_uv=False)        # oracle
        >>> fb.method, fb.injective, bool(np.isclose(fb.lower, s[-1] ** 2))
        ('dense', True, True)
        >>> lz = sel.frame_bounds("iterative")                     # Lanczos: an estimate
        >>> lz.exact, bool(np.isclose(lz.upper, s[0] ** 2))
        (False, True)
        """
        from theory.frames import frame_bounds

        return frame_bounds(self, method=method, tol=tol, maxiter=maxiter)

    def gram_operator(self) -> LinearOperator:
        """$S = W_x W_x^T$ (the frame operator, `D x D`) as a LinearOperator.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> S = sel.gram_operator()                                 # the frame operator W_x W_x^T
        >>> a = sel.dense()
        >>> S.shape, bool(np.allclose(S.matvec(x.ravel()), a.T @ a @ x.ravel()))
        ((36, 36), True)
        """
        op = self.linear_operator
        d = self.dim

        def mv(v):
            return op.rmatvec(op.matvec(v))

        return LinearOperator((d, d), matvec=mv, rmatvec=mv, dtype=np.float64)

    # ---------------------------------------------------------------- the fast operator
    @functools.cached_property
    def rows_operator(self) -> "SelectedRows":
        r"""$W_x^T$ by im2col slices and one matrix product per application (`SelectedRows`).

        The operator the CGLS solver iterates with (float64, and float32 for its
        mixed-precision products): one conv by `theory.im2col.Im2colConv` (zero or
        circular padding, any stride and dilation), then a gather of the selected responses
        times their signs; the adjoint scatters and runs the conv's adjoint. Its buffers
        are allocated once and reused. `linear_operator` stays the independent reference
        (torch's `unfold`/`fold`, or the layer's own conv for circular padding).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> B = sel.rows_operator.linear_operator
        >>> B.shape, bool(np.allclose(B.matvec(x.ravel()), sel.values))
        ((122, 36), True)
        """
        return SelectedRows(self)

    def normal_operator(self) -> LinearOperator:
        r"""$W_xW_x^T = A^T\operatorname{diag}(m)A$ by one conv, a mask, one adjoint conv.

        $m$ counts how often each conv response is selected (0 or 1 here: a response is
        the switch of at most one pooled unit or one zero-window row; the signs square
        away). The same map as `gram_operator`, without the gather and the scatter.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> sel = selection(g, s, layer, x.shape)
        >>> a = sel.dense()
        >>> v = np.random.default_rng(2).standard_normal(36)
        >>> bool(np.allclose(sel.normal_operator().matvec(v), a.T @ (a @ v)))
        True
        """
        return self.rows_operator.normal_operator

    def abs_norm_bound(self) -> float:
        r"""$\sqrt{\|W_x^T\|_1\|W_x^T\|_\infty}$, an upper bound on $\||W_x^T|\|_2$ and
        hence on $\|W_x^T\|_2$ (cached).

        $\|M\|_2^2 \le \|M\|_1\|M\|_\infty$ for every matrix (Higham, *Accuracy and
        Stability of Numerical Algorithms*, 6.3), and $|M|$ has the same 1- and
        $\infty$-norms as $M$. The largest row sum of $|W_x^T|$ is at most the largest
        $\|w_k\|_1$ of a selected filter; the column sums are $|A|^Tm$, one adjoint conv
        with the absolute weights applied to the selection counts $m$ (wrapped taps of a
        circular layer are counted separately: still an upper bound). The CGLS stopping
        rule and `theory.checks.cgls_residual_tolerance` use it.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((6, 2, 3, 3)), padding=1)
        >>> x = np.random.default_rng(1).random((2, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)
        >>> sel = selection(g, s, layer, x.shape)
        >>> a = sel.dense()
        >>> two = np.linalg.norm(a, 2)
        >>> bound = sel.abs_norm_bound()
        >>> bool(two <= np.linalg.norm(np.abs(a), 2) <= bound)
        True
        >>> one_inf = np.sqrt(np.abs(a).sum(0).max() * np.abs(a).sum(1).max())
        >>> bool(one_inf <= bound * (1 + 1e-12))        # (rows: the filters' full 1-norms)
        True
        """
        return self._abs_norm_bound

    @functools.cached_property
    def _abs_norm_bound(self) -> float:
        if self.n_selected == 0:
            return 0.0
        return abs_norm_bound(self.layer, self.input_shape, self.rows_operator.multiplicity,
                              torch.from_numpy(np.unique(self.filter_index)))

    def residual(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(W_x^T x - rhs, z)` from the layer's own conv (`ConvLayer.forward`, torch's
        `conv2d`): the a-posteriori check, independent of the solvers' operators; `z`
        (the bias-free responses, `(K, H', W')`) is returned for the switch check.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)                         # 18 x 3 x 3 pooled
        >>> r, z = selection(g, s, layer, x.shape).residual(x)
        >>> bool(np.abs(r).max() < 1e-14), z.shape
        (True, (9, 6, 6))
        """
        z = np.asarray(self.layer.forward(np.asarray(x, dtype=np.float64).reshape(
            1, *self.input_shape)), dtype=np.float64)[0]
        return z.reshape(-1)[self._rows] * self.sign - self.rhs, z


class SelectedRows:
    r"""$W_x^T$ of a `MaxPoolSelection` as im2col slices, one matrix product and a gather.

    Built by `MaxPoolSelection.rows_operator`. `matvec`/`rmatvec` act on flat float64
    torch tensors; `dtype=torch.float32` computes the products in single precision (the
    vectors are converted on the way in and the results back to float64) for the
    mixed-precision CGLS. `linear_operator` and `normal_operator` wrap them as scipy
    LinearOperators (float64), with `matvec32`/`rmatvec32` attributes on the former.

    Notes
    -----
    Rows are $s_i\,(Ax)_{r_i}$ with $r_i$ the flat index `k H'W' + j` of the selected
    response and $s_i = \pm 1$. The adjoint scatters $s_i y_i$ into a `K H'W'` buffer and
    applies $A^T$; when no response is selected twice (the CReLU and ReLU selections:
    `multiplicity <= 1`) the buffer is written at the selected entries only, so its other
    entries stay 0 and it is never cleared.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from theory import ConvLayer, conv_crelu_maxpool, selection
    >>> rng = np.random.default_rng(0)
    >>> layer = ConvLayer(rng.standard_normal((8, 2, 3, 3)), stride=2, padding=1)
    >>> x = rng.random((2, 8, 8))
    >>> g, s = conv_crelu_maxpool(x, layer)
    >>> sel = selection(g, s, layer, x.shape)
    >>> rows = sel.rows_operator
    >>> y = torch.from_numpy(rng.standard_normal(sel.n_selected))
    >>> bool(np.allclose(rows.rmatvec(y).numpy(), sel.dense().T @ y.numpy()))
    True
    >>> int(rows.multiplicity.max())
    1
    """

    def __init__(self, sel: "MaxPoolSelection"):
        from theory.im2col import Im2colConv

        self.shape = sel.shape
        self.conv = Im2colConv(sel.layer, sel.input_shape, (torch.float64, torch.float32))
        k, ho, wo = sel.conv_shape
        self._size = k * ho * wo
        self.rows = torch.from_numpy(np.ascontiguousarray(sel._rows, dtype=np.int64))
        self.sign = torch.from_numpy(np.ascontiguousarray(sel.sign, dtype=np.float64))
        self._sign32 = self.sign.to(torch.float32)
        self.multiplicity = torch.bincount(self.rows, minlength=self._size).to(torch.float64)
        self._unique = bool(self.rows.numel() == 0 or self.multiplicity.max() <= 1)
        self._buf: dict[torch.dtype, torch.Tensor] = {}

    @property
    def taps(self) -> int:
        """Terms per row, $C k_h k_w$ (the length of the dot products).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((6, 2, 3, 3)), padding=1)
        >>> x = np.random.default_rng(1).random((2, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)
        >>> selection(g, s, layer, x.shape).rows_operator.taps
        18
        """
        return self.conv.taps

    def matvec(self, x: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """$W_x^T x$ (length `n`, float64; products in `dtype`).

        Examples
        --------
        >>> import numpy as np, torch
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((6, 2, 3, 3)), padding=1)
        >>> x = np.random.default_rng(1).random((2, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)
        >>> sel = selection(g, s, layer, x.shape)
        >>> y64 = sel.rows_operator.matvec(torch.from_numpy(x.ravel()))
        >>> y32 = sel.rows_operator.matvec(torch.from_numpy(x.ravel()), torch.float32)
        >>> bool(np.allclose(y64.numpy(), sel.values)), y32.dtype
        (True, torch.float64)
        >>> bool(torch.allclose(y32, y64, atol=1e-5))
        True
        """
        z = self.conv.forward(x, dtype).view(-1)
        out = torch.index_select(z, 0, self.rows)
        if dtype == torch.float64:
            return out.mul_(self.sign)
        return out.mul_(self._sign32).to(torch.float64)

    def rmatvec(self, y: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """$W_x y$ (length `D`, float64; products in `dtype`).

        Examples
        --------
        >>> import numpy as np, torch
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((6, 2, 3, 3)), padding=1)
        >>> x = np.random.default_rng(1).random((2, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)
        >>> sel = selection(g, s, layer, x.shape)
        >>> y = torch.from_numpy(sel.values)
        >>> bool(np.allclose(sel.rows_operator.rmatvec(y).numpy(), sel.dense().T @ sel.values))
        True
        """
        if dtype not in self._buf:
            self._buf[dtype] = torch.zeros(self._size, dtype=dtype)
        buf = self._buf[dtype]
        sign = self.sign if dtype == torch.float64 else self._sign32
        vals = y.to(dtype) * sign
        if self._unique:   # only the selected entries are ever written: the rest stay 0
            buf.index_copy_(0, self.rows, vals)
        else:
            buf.zero_()
            buf.index_add_(0, self.rows, vals)
        return self.conv.adjoint(buf, dtype).to(torch.float64)

    def normal(self, v: torch.Tensor) -> torch.Tensor:
        r"""$A^T\operatorname{diag}(m)Av = W_xW_x^Tv$ (float64): conv, mask, adjoint conv.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((6, 2, 3, 3)), padding=1)
        >>> x = np.random.default_rng(1).random((2, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)
        >>> rows = selection(g, s, layer, x.shape).rows_operator
        >>> v = torch.from_numpy(x.ravel())
        >>> bool(torch.allclose(rows.normal(v), rows.rmatvec(rows.matvec(v))))
        True
        """
        z = self.conv.forward(v).view(-1)
        z.mul_(self.multiplicity)
        return self.conv.adjoint(z)

    @functools.cached_property
    def linear_operator(self) -> LinearOperator:
        """$W_x^T$ as a float64 scipy LinearOperator (plus `matvec32`, `rmatvec32`).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((6, 2, 3, 3)), padding=1)
        >>> x = np.random.default_rng(1).random((2, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)
        >>> B = selection(g, s, layer, x.shape).rows_operator.linear_operator
        >>> B.shape, B.matvec32(x.ravel()).dtype
        ((81, 72), dtype('float64'))
        """
        return _RowsLinearOperator(self)

    @functools.cached_property
    def normal_operator(self) -> LinearOperator:
        """$W_xW_x^T$ (`D x D`) as a float64 scipy LinearOperator (`normal`).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, selection
        >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((6, 2, 3, 3)), padding=1)
        >>> x = np.random.default_rng(1).random((2, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)
        >>> selection(g, s, layer, x.shape).rows_operator.normal_operator.shape
        (72, 72)
        """
        d = self.shape[1]

        def mv(v):
            t = torch.from_numpy(np.ascontiguousarray(np.asarray(v, dtype=np.float64).ravel()))
            return self.normal(t).numpy()

        return LinearOperator((d, d), matvec=mv, rmatvec=mv, dtype=np.float64)


class _RowsLinearOperator(TorchProducts):
    """scipy's face of `SelectedRows` (float64 in and out), with the float32 products."""

    def __init__(self, rows: SelectedRows):
        super().__init__(rows.shape)
        self.rows = rows

    def _forward(self, x, dtype):
        return self.rows.matvec(x, dtype)

    def _backward(self, y, dtype):
        return self.rows.rmatvec(y, dtype)


def validate_pooled(features, switches, layer, input_shape, pool, activation):
    """Check and convert `(features, switches)` of one or many inputs; return numpy arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, conv_crelu_maxpool
    >>> from theory.selection import validate_pooled
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((4, 1, 3, 3)), padding=1)
    >>> x = np.random.default_rng(1).random((1, 6, 6))
    >>> g, s = conv_crelu_maxpool(x, layer)
    >>> f, sw, shape, pool = validate_pooled(g, s, layer, x.shape, 2, "crelu")
    >>> f.dtype, sw.dtype, shape, pool
    (dtype('float64'), dtype('int64'), (1, 6, 6), 2)
    >>> s[0, 0, 0] = 35                                       # a switch outside its window
    >>> try:
    ...     validate_pooled(g, s, layer, x.shape, 2, "crelu")
    ... except ValueError as err:
    ...     print(str(err).split(" (")[0])
    1 switch(es) point outside their 2x2 pooling window
    """
    _check_activation(activation)
    pool = check_pool(pool)
    if not isinstance(layer, ConvLayer):
        raise TypeError(f"layer must be a theory.ConvLayer, got {type(layer).__name__}")
    shape = layer.check_input_shape(input_shape)
    fshape = pooled_shape(layer, shape, pool, activation)
    f = as_tensor(features, "features", dtype=torch.float64).numpy()
    if isinstance(switches, torch.Tensor):
        s = switches.detach().cpu().numpy()
    else:
        s = np.asarray(switches)
    if s.dtype.kind not in "iu":
        raise TypeError(f"switches must be an integer array, got dtype {s.dtype}")
    if f.ndim not in (3, 4) or tuple(f.shape[-3:]) != fshape:
        raise ValueError(f"features must have shape {fshape} or (N, *{fshape}) for "
                         f"{activation} + {pool}x{pool} max-pooling of {layer!r} on {shape}; "
                         f"got {f.shape}")
    if s.shape != f.shape:
        raise ValueError(f"switches have shape {s.shape} but features have shape {f.shape}")
    if (f < 0).any():
        raise ValueError(f"features contain {int((f < 0).sum())} negative value(s); pooled "
                         f"{activation} features are non-negative")
    _, ho, wo = layer.output_shape(shape)
    si, sj = np.divmod(s.astype(np.int64), wo)
    pi = np.arange(fshape[1])[:, None]
    pj = np.arange(fshape[2])[None, :]
    inside = ((s >= 0) & (si // pool == pi) & (sj // pool == pj) & (si < ho))
    if not inside.all():
        raise ValueError(f"{int((~inside).sum())} switch(es) point outside their "
                         f"{pool}x{pool} pooling window (flat indices into the {ho}x{wo} conv "
                         "output, as max_pool2d(return_indices=True) returns them)")
    return f, s.astype(np.int64), shape, pool


def selection(features, switches, layer: ConvLayer, input_shape: Sequence[int], pool: int = 2,
              activation: Activation = "crelu", zero_tol: float = 0.0,
              zero_windows: bool = True, bias=None) -> MaxPoolSelection:
    """The selected signed shifted filters of one input, from its pooled features and switches.

    Parameters
    ----------
    features, switches : arrays of shape (C_f, H'//pool, W'//pool)
        As returned by `crelu_maxpool` for one input.
    layer, input_shape, pool, activation : as in `crelu_maxpool`
    zero_tol : float
        Pooled values `<= zero_tol` count as zero (not selected). 0 for exact features;
        positive when the features were themselves reconstructed (deep inversion).
    zero_windows : bool
        CReLU only. Where filter $k$'s positive *and* negative pooled values are both
        0 on a window $R$, $\\max_R z_k \\le 0 \\le \\min_R z_k$, so
        $z_k(j) = \\langle w_{k,j}, x\\rangle = 0$ at *every* $j \\in R$:
        `pool**2` more exact linear measurements, with value 0 (ReLU's zero only says
        $\\max_R z_k \\le 0$, an inequality). They determine `x` where it vanishes over a
        neighbourhood (black pixels, silent features), which the non-zero values alone
        leave unmeasured. With `zero_tol > 0` a window counts when both values are
        `<= zero_tol`; the equation is then off by at most the values' error. `False`
        gives the paper's measurements only (the non-zero values).
    bias : array (K,), optional
        A known bias of the conv, $z = Ax + \\beta$: the features are those of the biased
        layer (`conv_crelu_maxpool(..., bias=bias)`), and the selection's right-hand side
        is shifted (`MaxPoolSelection.rhs`); the operator $W_x^T$ is unchanged.

    Returns
    -------
    MaxPoolSelection

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, conv_crelu_maxpool, selection
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((9, 1, 3, 3)), padding=1)
    >>> x = np.random.default_rng(1).random((1, 6, 6))
    >>> g, s = conv_crelu_maxpool(x, layer)
    >>> sel = selection(g, s, layer, x.shape)
    >>> sel.n_selected, sel.dim, sel.n_zero_window
    (112, 36, 0)
    >>> sorted(set(sel.sign.tolist()))                        # both signs are selected
    [-1.0, 1.0]
    >>> relu_g, relu_s = conv_crelu_maxpool(x, layer, activation="relu")
    >>> selection(relu_g, relu_s, layer, x.shape, activation="relu").n_selected   # ReLU: fewer
    66
    """
    f, s, shape, pool = validate_pooled(features, switches, layer, input_shape, pool, activation)
    bias = check_bias(bias, layer)
    if f.ndim != 3:
        raise ValueError(f"selection() takes the features of one input, got shape {f.shape}")
    k = layer.out_channels
    flat_f, flat_s = f.ravel(), s.ravel()
    units = np.flatnonzero(flat_f > zero_tol)
    chan = units // (f.shape[1] * f.shape[2])
    filt, pos = (chan % k).astype(np.int64), flat_s[units].astype(np.int64)
    sign, values = np.where(chan < k, 1.0, -1.0), flat_f[units].astype(np.float64)
    unit = units.astype(np.int64)
    zero = np.zeros(units.size, dtype=bool)
    if zero_windows and activation == "crelu":
        kk, pi, pj = np.nonzero((f[:k] <= zero_tol) & (f[k:] <= zero_tol))
        if kk.size:
            wo = layer.output_shape(shape)[2]
            a, b = np.divmod(np.arange(pool * pool), pool)
            zpos = ((pi[:, None] * pool + a) * wo + pj[:, None] * pool + b).ravel()
            m = zpos.size
            filt = np.concatenate([filt, np.repeat(kk, pool * pool).astype(np.int64)])
            pos = np.concatenate([pos, zpos.astype(np.int64)])
            sign = np.concatenate([sign, np.ones(m)])
            values = np.concatenate([values, np.zeros(m)])
            unit = np.concatenate([unit, np.repeat(np.ravel_multi_index((kk, pi, pj), f.shape),
                                                   pool * pool).astype(np.int64)])
            zero = np.concatenate([zero, np.ones(m, dtype=bool)])
    return MaxPoolSelection(
        layer=layer, input_shape=shape, pool=pool, activation=activation,
        filter_index=filt, position=pos, sign=sign, values=values, unit_index=unit,
        zero_window=zero, bias=bias,
    )


# ---------------------------------------------------------------------------- inversion


__all__ = ["MaxPoolSelection", "SPARSE_LIMIT", "SelectedRows", "pooled_shape", "selection",
           "validate_pooled"]
