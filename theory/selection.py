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
from theory.features import Activation, _check_activation, check_pool
from theory.frames import FrameBounds

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
        layer = self.layer
        sq = ConvLayer(layer._weight.to(torch.float64) ** 2, stride=layer.stride,
                       padding=layer.padding, padding_mode=layer.padding_mode,
                       dilation=layer.dilation)
        buf = torch.zeros(int(np.prod(self.conv_shape)), dtype=torch.float64)
        buf.index_add_(0, torch.from_numpy(self._rows), torch.ones(self.n_selected,
                                                                   dtype=torch.float64))
        sums = sq.adjoint(buf.reshape(1, *self.conv_shape), self.input_shape)
        return np.sqrt(np.maximum(sums.reshape(-1).numpy(), 0.0))

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
                                   values=self.values * factor)

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
              zero_windows: bool = True) -> MaxPoolSelection:
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
        zero_window=zero,
    )


# ---------------------------------------------------------------------------- inversion


__all__ = ["MaxPoolSelection", "SPARSE_LIMIT", "pooled_shape", "selection", "validate_pooled"]
