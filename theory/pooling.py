"""Reconstruction through max-pooling: CReLU (or ReLU) + max-pooling with known switches.

Notes
-----
Let :math:`z = Ax` be a conv layer's pre-activation, :math:`z_k(j)` the response of filter
:math:`k` at output position :math:`j`. Non-overlapping :math:`p \\times p` max-pooling over
regions :math:`R` of CReLU features keeps, per region and filter,

.. math::

    g^+_{k,R} = \\max(0, \\max_{j \\in R} z_k(j)), \\qquad
    g^-_{k,R} = \\max(0, -\\min_{j \\in R} z_k(j)),

i.e. the largest *and* the smallest response (ReLU + max-pooling keeps only
:math:`g^+`). Every non-zero pooled value is a linear measurement
:math:`\\langle \\tilde w, x \\rangle` of a *selected, signed, shifted* filter
:math:`\\tilde w = \\pm w_{k, j^*}` (:math:`j^*` the pooling switch, the sign ``+`` for the
positive channel and ``-`` for the negative one). Stacking them as the columns of
:math:`W_x \\in \\mathbb{R}^{D \\times n}` gives :math:`W_x^T x = g_{\\neq 0}`. Hence

* (exact) if the columns of :math:`W_x` form a frame (:math:`a > 0`),
  :math:`x = (W_x^T)^+ g_{\\neq 0}` -- a linear least-squares problem once the switches are
  known;
* (linear) with :math:`aI \\preceq S = W_x W_x^T \\preceq bI`, the one-step frame algorithm
  :math:`x' = \\tfrac{2}{a+b} W_x g_{\\neq 0}` has
  :math:`\\|x - x'\\| \\le \\tfrac{b-a}{b+a}\\|x\\|`, because
  :math:`x - x' = (I - \\tfrac{2}{a+b} S)x` and the eigenvalues of
  :math:`I - \\tfrac{2}{a+b}S` lie in :math:`[-\\tfrac{b-a}{b+a}, \\tfrac{b-a}{b+a}]`.

Beyond the paper: where both of filter :math:`k`'s pooled CReLU values are 0 on a window,
the responses vanish on the whole window, which adds ``pool**2`` exact equations
:math:`\\langle w_{k,j}, x\\rangle = 0` (*zero windows*, :func:`selection`).

This is the project's formalisation of the paper's Figure 3 / Section 2.3 (see
docs/theory/maxpool.md).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Any, Callable, Literal, Sequence

import numpy as np
import scipy.linalg
import scipy.sparse
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import (
    ArpackNoConvergence,
    LinearOperator,
    aslinearoperator,
    eigsh,
    lsmr,
)

from theory.conv import DENSE_LIMIT, ConvLayer, as_tensor
from theory.frames import FrameBounds
from theory.inversion import LSMR_REASONS, NonInjectiveError, NonInjectiveWarning

Activation = Literal["crelu", "relu"]
_EPS = float(np.finfo(np.float64).eps)

#: Largest ``n_selected * taps`` for which the sparse matrix of the selected filters is built
#: automatically (about 100 MB of index/value arrays).
SPARSE_LIMIT = 8_000_000


def _check_activation(activation: str) -> None:
    if activation not in ("crelu", "relu"):
        raise ValueError(f"activation must be 'crelu' or 'relu', got {activation!r}")


def _check_pool(pool: int) -> int:
    if not isinstance(pool, (int, np.integer)) or int(pool) < 1:
        raise ValueError(f"pool must be a positive int, got {pool!r}")
    return int(pool)


def pooled_shape(layer: ConvLayer, input_shape: Sequence[int], pool: int = 2,
                 activation: Activation = "crelu") -> tuple[int, int, int]:
    """Shape ``(C_f, H'//pool, W'//pool)`` of the pooled features (``C_f = 2K`` for CReLU)."""
    _check_activation(activation)
    pool = _check_pool(pool)
    k, ho, wo = layer.output_shape(input_shape)
    if ho < pool or wo < pool:
        raise ValueError(f"the conv output {ho}x{wo} is smaller than the pooling window {pool}")
    return (2 * k if activation == "crelu" else k), ho // pool, wo // pool


def crelu_maxpool(x: np.ndarray | torch.Tensor, layer: ConvLayer, pool: int = 2,
                  activation: Activation = "crelu"):
    """Conv, then CReLU (or ReLU), then non-overlapping ``pool x pool`` max-pooling.

    Parameters
    ----------
    x : array of shape (C, H, W) or (N, C, H, W)
    layer : ConvLayer
    pool : int
        Window and stride of the max-pooling (floor mode: trailing rows/columns that do not
        fill a window are dropped, as in ``torch.nn.functional.max_pool2d``).
    activation : {"crelu", "relu"}

    Returns
    -------
    features : same type as ``x``, shape ([N,] C_f, H'//pool, W'//pool)
        ``C_f = 2K`` for CReLU (positive half, then negative half), ``K`` for ReLU.
    switches : int64 array/tensor, same shape as ``features``
        The pooling switches: for each pooled unit, the flat index ``i * W' + j`` in its
        channel's ``H' x W'`` conv output of the response that was kept (torch's
        ``max_pool2d(return_indices=True)`` convention). For the negative CReLU channel it
        is the position of the *smallest* response.

    Notes
    -----
    Pooling commutes with the monotone ReLU: :math:`\\max_j [z_j]_+ = [\\max_j z_j]_+`, so
    the switches are the argmax of :math:`z` (positive channel) and of :math:`-z`
    (negative channel), defined even where the pooled value is 0.
    """
    _check_activation(activation)
    pool = _check_pool(pool)
    is_np = isinstance(x, np.ndarray)
    t = as_tensor(x, "x")
    if t.ndim not in (3, 4):
        raise ValueError(f"x must be (C, H, W) or (N, C, H, W), got shape {tuple(t.shape)}")
    pooled_shape(layer, t.shape[-3:], pool, activation)
    z = layer.forward(t.reshape(-1, *t.shape[-3:]))
    vp, ip = F.max_pool2d(z, pool, stride=pool, return_indices=True)
    if activation == "crelu":
        vn, inn = F.max_pool2d(-z, pool, stride=pool, return_indices=True)
        feats = torch.relu(torch.cat([vp, vn], dim=1))
        sw = torch.cat([ip, inn], dim=1)
    else:
        feats, sw = torch.relu(vp), ip
    feats = feats.reshape(*t.shape[:-3], *feats.shape[1:])
    sw = sw.reshape(*t.shape[:-3], *sw.shape[1:])
    if is_np:
        return feats.numpy(), sw.numpy()
    return feats, sw


# ---------------------------------------------------------------------------- selection
@dataclasses.dataclass(frozen=True, eq=False)
class MaxPoolSelection:
    """The selected, signed, shifted filters :math:`\\tilde w_j` of one input.

    Build it with :func:`selection`. The analysis operator :math:`W_x^T: \\mathbb{R}^D \\to
    \\mathbb{R}^n` maps an input to the non-zero pooled values; its adjoint is :math:`W_x`.

    Attributes
    ----------
    layer, input_shape, pool, activation
    filter_index : int array (n,)
        Filter :math:`k` of each selected measurement.
    position : int array (n,)
        Flat position ``i * W' + j`` of the kept response in the conv output.
    sign : float array (n,)
        ``+1`` (positive channel) or ``-1`` (negative channel).
    values : float array (n,)
        The non-zero pooled values :math:`g_{\\neq 0}` (float64).
    unit_index : int array (n,)
        Flat index of each selected unit in the pooled feature array (for a zero-window row:
        the unit of the positive channel).
    zero_window : bool array (n,)
        ``True`` for the rows added by a *zero window* (CReLU only, see :func:`selection`):
        filter :math:`k` at every position of a pooling window whose positive and negative
        pooled values are both 0, with value 0.
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
        """Number of rows that come from zero windows."""
        return int(self.zero_window.sum())

    @property
    def n_selected(self) -> int:
        return int(self.values.size)

    @property
    def dim(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def conv_shape(self) -> tuple[int, int, int]:
        return self.layer.output_shape(self.input_shape)

    @property
    def _rows(self) -> np.ndarray:
        """Row indices of the selected measurements in the conv matrix :math:`A`."""
        _, ho, wo = self.conv_shape
        return self.filter_index * (ho * wo) + self.position

    # ---------------------------------------------------------------- operators
    def operator(self) -> LinearOperator:
        """:math:`W_x^T` (shape ``n x D``) as a float64 LinearOperator; ``.H`` is :math:`W_x`.

        ``matvec`` runs the conv layer and gathers the selected responses (times their
        signs); ``rmatvec`` scatters signed values into the conv output and runs the layer's
        exact adjoint. Nothing of size ``n x D`` is ever formed. For zero padding the conv and
        its adjoint run as ``unfold`` + matrix product and matrix product + ``fold`` (float64
        BLAS; ``fold`` is the exact adjoint of ``unfold``), which is several times faster on
        CPU than float64 ``conv2d``/``conv_transpose2d``; other padding modes use
        :meth:`ConvLayer.forward` and :meth:`ConvLayer.adjoint`.
        """
        shape, cshape = self.input_shape, self.conv_shape
        d, n = self.dim, self.n_selected
        rows = torch.from_numpy(self._rows)
        sign = torch.from_numpy(self.sign)
        layer = self.layer
        mtot = int(np.prod(cshape))
        fast = layer.padding_mode == "zeros"
        wmat = layer.weight.to(torch.float64).reshape(layer.out_channels, -1)
        ksz, pad, strd = layer.kernel_size, layer.padding, layer.stride

        def conv(xb: torch.Tensor) -> torch.Tensor:
            if fast:
                return wmat @ F.unfold(xb, ksz, padding=pad, stride=strd)
            return layer.forward(xb).to(torch.float64)

        def conv_adjoint(zb: torch.Tensor) -> torch.Tensor:
            if fast:
                cols = wmat.T @ zb.reshape(zb.shape[0], layer.out_channels, -1)
                return F.fold(cols, shape[1:], ksz, padding=pad, stride=strd)
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
        """The ``n x D`` matrix :math:`W_x^T` from the layer's dense matrix (the test oracle).

        Refuses inputs with more than ``DENSE_LIMIT`` values unless ``force=True``.
        """
        a = self.layer.dense(self.input_shape, force=force).astype(np.float64)
        return a[self._rows] * self.sign[:, None]

    def sparse(self) -> scipy.sparse.csr_matrix:
        """:math:`W_x^T` as a CSR matrix built tap by tap from the filters (any input size)."""
        layer = self.layer
        c, h, w = self.input_shape
        _, ho, wo = self.conv_shape
        kh, kw = layer.kernel_size
        (sh, sw), (ph, pw) = layer.stride, layer.padding
        weight = layer.weight.to(torch.float64).numpy()
        n = self.n_selected
        oi, oj = np.divmod(self.position, wo)
        cc, aa, bb = np.meshgrid(np.arange(c), np.arange(kh), np.arange(kw), indexing="ij")
        cc, aa, bb = cc.ravel(), aa.ravel(), bb.ravel()
        rr = oi[:, None] * sh - ph + aa[None, :]
        ss = oj[:, None] * sw - pw + bb[None, :]
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
        """Euclidean norms of the columns of :math:`W_x^T`, one per input coordinate (``D``).

        Computed matrix-free as :math:`\\sqrt{(A^{\\circ 2})^T m}` (entrywise squares): the
        layer's adjoint with squared weights applied to the 0/1 mask ``m`` of the selected
        responses (one adjoint conv). Exact for zero padding; with circular padding a tap that wraps onto a
        coordinate another tap of the same filter already covers is counted as its own entry
        (only for kernels wider than the input), which is harmless where the norms serve as
        a preconditioner. A coordinate no selected filter touches has norm 0.
        """
        layer = self.layer
        sq = ConvLayer(layer.weight.to(torch.float64) ** 2, stride=layer.stride,
                       padding=layer.padding, padding_mode=layer.padding_mode)
        buf = torch.zeros(int(np.prod(self.conv_shape)), dtype=torch.float64)
        buf.index_add_(0, torch.from_numpy(self._rows), torch.ones(self.n_selected,
                                                                   dtype=torch.float64))
        sums = sq.adjoint(buf.reshape(1, *self.conv_shape), self.input_shape)
        return np.sqrt(np.maximum(sums.reshape(-1).numpy(), 0.0))

    # ---------------------------------------------------------------- frame bounds
    def frame_bounds(self, method: str = "auto", *, tol: float = 1e-10,
                     maxiter: int | None = None) -> FrameBounds:
        """Frame bounds :math:`a, b` of the selected filters, :math:`aI \\preceq W_xW_x^T
        \\preceq bI`.

        Parameters
        ----------
        method : {"auto", "dense", "shift-invert", "banded", "iterative"}
            ``dense``: SVD of :math:`W_x^T` (exact; ``D <= DENSE_LIMIT``). ``shift-invert``:
            the sparse Gram matrix :math:`W_xW_x^T`; its largest eigenvalue by Lanczos and its
            smallest by Lanczos on :math:`(W_xW_x^T)^{-1}` (sparse LU), both with Ritz
            residuals of order :math:`\varepsilon b` (an estimate with a residual:
            ``exact=False``); a singular LU means :math:`a = 0`. ``banded``: the
            Gram matrix :math:`W_xW_x^T` is banded once pixels are ordered (row, column,
            channel); its extreme eigenvalues come from LAPACK's banded symmetric solver
            (exact to rounding; zero padding only). ``iterative``: Lanczos (``eigsh``) on the
            Gram operator, an estimate with a residual, as in :func:`theory.frame_bounds`.
            ``auto``: dense for ``D <= 1024``, shift-invert when the sparse matrix is small
            enough, else iterative.

        Returns
        -------
        FrameBounds
            ``lower = 0`` when fewer filters than dimensions are selected.

        Notes
        -----
        The ``banded`` Gram route squares the condition number: eigenvalues are accurate to
        about :math:`D\\varepsilon b` absolutely, so its ``rtol`` on
        :math:`\\sigma_{\\min}/\\sigma_{\\max}` is :math:`\\sqrt{D\\varepsilon}`.
        """
        d, n = self.dim, self.n_selected
        if n == 0:
            return FrameBounds(0.0, 0.0, True, "empty", 0.0)
        if method == "auto":
            taps = self.layer.in_channels * self.layer.kernel_size[0] * self.layer.kernel_size[1]
            if d <= 1024:
                method = "dense"
            elif n * taps <= SPARSE_LIMIT and d <= 200_000:
                method = "shift-invert"
            else:
                method = "iterative"
        if method == "dense":
            s = np.linalg.svd(self.dense(force=True), compute_uv=False)
            smin = float(s[-1]) if n >= d else 0.0
            return FrameBounds(smin ** 2, float(s[0]) ** 2, True, "dense", max(n, d) * _EPS)
        if method == "banded":
            return self._banded_bounds()
        if method == "shift-invert":
            return self._shift_invert_bounds(tol)
        if method == "iterative":
            return self._iterative_bounds(tol, maxiter)
        raise ValueError(f"unknown method {method!r}; expected auto, dense, banded or iterative")

    def gram_operator(self) -> LinearOperator:
        """:math:`S = W_x W_x^T` (the frame operator, ``D x D``) as a LinearOperator."""
        op = self.operator()
        d = self.dim

        def mv(v):
            return op.rmatvec(op.matvec(v))

        return LinearOperator((d, d), matvec=mv, rmatvec=mv, dtype=np.float64)

    def _shift_invert_bounds(self, tol: float) -> FrameBounds:
        d, n = self.dim, self.n_selected
        mat = self.sparse()
        gram = (mat.T @ mat).tocsc()
        v0 = np.random.default_rng(0).standard_normal(d)
        big, vbig = eigsh(gram, k=1, which="LA", tol=tol, v0=v0)
        res = [float(np.linalg.norm(gram @ vbig[:, 0] - big[0] * vbig[:, 0]))]
        lower = 0.0
        if n >= d:
            try:
                small, vsmall = eigsh(gram, k=1, sigma=0.0, which="LM", tol=tol, v0=v0)
            except RuntimeError:  # exactly singular LU: the Gram matrix has a null space
                small, vsmall = None, None
            if small is not None:
                lower = max(float(small[0]), 0.0)
                res.append(float(np.linalg.norm(gram @ vsmall[:, 0] - small[0] * vsmall[:, 0])))
        return FrameBounds(lower, float(big[0]), False, "shift-invert",
                           float(np.sqrt(d * _EPS)), max(res))

    def _banded_bounds(self) -> FrameBounds:
        if self.layer.padding_mode != "zeros":
            raise ValueError("method='banded' needs zero padding (circular wrap breaks the band)")
        c, h, w = self.input_shape
        d, n = self.dim, self.n_selected
        kh, kw = self.layer.kernel_size
        mat = self.sparse()
        # reorder columns (c, i, j) -> (i, j, c): neighbouring pixels get nearby indices
        ci, ii, jj = np.unravel_index(np.arange(d), (c, h, w))
        perm_new = (ii * w + jj) * c + ci
        p = scipy.sparse.csr_matrix((np.ones(d), (np.arange(d), perm_new)), shape=(d, d))
        gram = (p.T @ (mat.T @ mat) @ p).tocoo()
        bw = ((kh - 1) * w + (kw - 1)) * c + (c - 1)
        off = gram.col - gram.row
        keep = off >= 0
        if off.max(initial=0) > bw:
            raise RuntimeError("internal error: Gram matrix wider than its predicted band")
        band = np.zeros((bw + 1, d))
        # lower form: band[i - j, j] = G[i, j] for i >= j  (use G[j, i] with i = col >= row)
        band[off[keep], gram.row[keep]] = gram.data[keep]
        hi = scipy.linalg.eig_banded(band, lower=True, eigvals_only=True, select="i",
                                     select_range=(d - 1, d - 1))
        upper = float(hi[0])
        if n < d:
            lower = 0.0
        else:
            lo = scipy.linalg.eig_banded(band, lower=True, eigvals_only=True, select="i",
                                         select_range=(0, 0))
            lower = max(float(lo[0]), 0.0)
        return FrameBounds(lower, upper, True, "banded", float(np.sqrt(d * _EPS)))

    def _iterative_bounds(self, tol: float, maxiter: int | None) -> FrameBounds:
        d, n = self.dim, self.n_selected
        gram = self.gram_operator()
        v0 = np.random.default_rng(0).standard_normal(d)  # fixed start: reproducible
        ncv = min(d, 40)
        big, vbig = eigsh(gram, k=1, which="LA", tol=tol, maxiter=maxiter, v0=v0, ncv=ncv)
        res = [float(np.linalg.norm(gram.matvec(vbig[:, 0]) - big[0] * vbig[:, 0]))]
        lower = 0.0
        if n >= d:
            try:
                small, vsmall = eigsh(gram, k=1, which="SA", tol=tol, maxiter=maxiter, v0=v0,
                                      ncv=ncv)
            except ArpackNoConvergence as exc:
                if len(exc.eigenvalues) == 0:
                    raise RuntimeError("the smallest eigenvalue of W_x W_x^T did not converge; "
                                       "raise maxiter or use a smaller input") from exc
                small, vsmall = exc.eigenvalues, exc.eigenvectors
            lower = max(float(small[0]), 0.0)
            res.append(float(np.linalg.norm(gram.matvec(vsmall[:, 0]) - small[0] * vsmall[:, 0])))
        return FrameBounds(lower, float(big[0]), False, "iterative", float(np.sqrt(max(tol, _EPS))),
                           max(res))


def _counting(op, callback: Callable[[int], None]) -> LinearOperator:
    """``op`` with ``callback(k)`` after its k-th adjoint application (one per LSMR step)."""
    inner = aslinearoperator(op)
    count = [0]

    def rmv(v):
        out = inner.rmatvec(v)
        count[0] += 1
        callback(count[0])
        return out

    return LinearOperator(inner.shape, matvec=inner.matvec, rmatvec=rmv, dtype=inner.dtype)


def _validate_pooled(features, switches, layer, input_shape, pool, activation):
    """Check and convert ``(features, switches)`` of one or many inputs; return numpy arrays."""
    _check_activation(activation)
    pool = _check_pool(pool)
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
        As returned by :func:`crelu_maxpool` for one input.
    layer, input_shape, pool, activation : as in :func:`crelu_maxpool`
    zero_tol : float
        Pooled values ``<= zero_tol`` count as zero (not selected). 0 for exact features;
        positive when the features were themselves reconstructed (deep inversion).
    zero_windows : bool
        CReLU only. Where filter :math:`k`'s positive *and* negative pooled values are both
        0 on a window :math:`R`, :math:`\\max_R z_k \\le 0 \\le \\min_R z_k`, so
        :math:`z_k(j) = \\langle w_{k,j}, x\\rangle = 0` at *every* :math:`j \\in R`:
        ``pool**2`` more exact linear measurements, with value 0 (ReLU's zero only says
        :math:`\\max_R z_k \\le 0`, an inequality). They determine ``x`` where it vanishes over a
        neighbourhood (black pixels, silent features), which the non-zero values alone
        leave unmeasured. With ``zero_tol > 0`` a window counts when both values are
        ``<= zero_tol``; the equation is then off by at most the values' error. ``False``
        gives the paper's measurements only (the non-zero values).

    Returns
    -------
    MaxPoolSelection
    """
    f, s, shape, pool = _validate_pooled(features, switches, layer, input_shape, pool, activation)
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
@dataclasses.dataclass
class PoolInversionResult:
    """What :func:`invert_crelu_maxpool` returns (per input for a batch: lists).

    Attributes
    ----------
    x : numpy.ndarray
        Reconstruction, ``(C, H, W)`` or ``(N, C, H, W)`` like the features.
    method : {"exact", "linear"}
    solver : str
        ``dense`` (numpy lstsq), ``lsmr-sparse``, ``lsmr-operator`` or ``frame-step``.
    n_selected : list of int
        Number of selected filters per input (``D`` unknowns each), zero-window rows
        included.
    n_zero_window : list of int
        How many of them come from zero windows (:func:`selection`).
    frame_bounds : list of FrameBounds or None
    is_frame : list of bool or None
        Whether the selected filters form a frame (lower bound > 0 beyond rounding).
    relative_residual : list of float
        :math:`\\|W_x^T x' - g\\| / \\|g\\|`.
    error_bound : list of float
        ``exact``: a-posteriori :math:`\\operatorname{cond}\\cdot` relative residual (``inf``
        if not a frame). ``linear``: :math:`(b-a)/(b+a)`.
    cond_estimate : list of float
        LSMR's own estimate of :math:`\\operatorname{cond}(W_x)`, of the column-scaled matrix
        when Jacobi-preconditioned (``nan`` for other solvers); a lower estimate.
    iterations : list of int
    stopping : list of dict
    seconds : float
    """

    x: np.ndarray
    method: str
    solver: str
    n_selected: list[int]
    n_zero_window: list[int]
    frame_bounds: list[FrameBounds | None]
    is_frame: list[bool | None]
    relative_residual: list[float]
    error_bound: list[float]
    cond_estimate: list[float]
    iterations: list[int]
    stopping: list[dict[str, Any]]
    seconds: float


def invert_crelu_maxpool(
    features, switches, layer: ConvLayer, input_shape: Sequence[int], pool: int = 2,
    method: Literal["exact", "linear"] = "exact", activation: Activation = "crelu", *,
    solver: Literal["auto", "dense", "lsmr"] = "auto",
    bounds: Literal["auto", "dense", "shift-invert", "banded", "iterative", "none"]
    | FrameBounds = "auto",
    atol: float = 1e-14, btol: float = 1e-14, maxiter: int | None = None,
    zero_tol: float = 0.0,
    zero_windows: bool = True,
    precondition: Literal["auto", "jacobi", "none"] = "auto",
    on_non_frame: Literal["warn", "raise", "ignore"] = "warn",
    iteration_callback: Callable[[int], None] | None = None,
) -> PoolInversionResult:
    """Reconstruct ``x`` from ``crelu_maxpool(x, layer, pool, activation)`` and its switches.

    Parameters
    ----------
    features, switches : arrays (C_f, Hp, Wp) or (N, C_f, Hp, Wp)
    layer : ConvLayer
    input_shape : (C, H, W)
    pool : int
    method : {"exact", "linear"}
        ``exact``: minimum-norm least squares :math:`x' = (W_x^T)^+ g_{\\neq 0}`.
        ``linear``: one step of the frame algorithm :math:`x' = \\frac{2}{a+b} W_x g_{\\neq 0}`
        (needs frame bounds).
    activation : {"crelu", "relu"}
        The same code handles ReLU + max-pooling: only positive channels exist to select.
    solver : {"auto", "dense", "lsmr"}
        For ``exact``. ``dense``: ``numpy.linalg.lstsq`` on the dense matrix (tiny inputs).
        ``lsmr``: scipy LSMR from 0 (converges to the minimum-norm solution) on the sparse
        matrix when it is small enough, else on the matrix-free operator. ``auto``: dense for
        ``D <= 1024``, else lsmr.
    bounds : {"auto", "dense", "shift-invert", "banded", "iterative", "none"} or FrameBounds
        How to compute the frame bounds of the selected set (see
        :meth:`MaxPoolSelection.frame_bounds`); ``"none"`` skips them (exact method only; the
        result then cannot say whether the set is a frame). A FrameBounds is used as given.
    atol, btol, maxiter : LSMR stopping rule (reported in ``stopping``); ``maxiter=None``
        means ``10 * min(n, D)``.
    zero_tol : float
        Pooled values ``<= zero_tol`` are treated as zero (see :func:`selection`).
    zero_windows : bool
        CReLU: also use the exact equations :math:`z_k = 0` on every window where both of
        filter :math:`k`'s pooled values are 0 (see :func:`selection`). ``False``: the
        paper's measurements only.
    precondition : {"auto", "jacobi", "none"}
        For LSMR. ``jacobi``: solve for :math:`y` in :math:`W_x^T M y = g` with
        :math:`M = \\operatorname{diag}(1/\\|\\text{column}\\|)` (1 for untouched coordinates) and
        return :math:`x = My` (:meth:`MaxPoolSelection.column_norms`). For a frame the
        solution is the same and the iteration count drops where coordinates are measured
        unevenly (next to regions of exactly zero input, e.g. black pixels, about 2x on the
        astronaut photo). For a non-frame it is the minimum-:math:`\\|M^{-1}x\\|` solution,
        not the projection; every coordinate no selected filter touches still comes back 0.
        ``auto``: ``jacobi`` when the set is certified a frame, else ``none``.
    on_non_frame : {"warn", "raise", "ignore"}
        What to do when the selected set is certified *not* to be a frame: the exact method
        then returns the projection of ``x`` onto the span of the selected filters.
    iteration_callback : callable(int), optional
        Called with the iteration count after every LSMR iteration (progress display).

    Returns
    -------
    PoolInversionResult

    Notes
    -----
    *Exact.* If :math:`W_x^T` is injective, :math:`x` is the unique solution of the
    consistent system :math:`W_x^T x = g_{\\neq 0}`. A computed :math:`x'` with residual
    :math:`r = W_x^Tx' - g` satisfies
    :math:`\\|x'-x\\|/\\|x\\| \\le \\operatorname{cond}(W_x)\\,\\|r\\|/\\|g\\|` (``error_bound``).

    *Linear.* :math:`x - x' = (I - \\tfrac{2}{a+b}S)x` with :math:`S = W_xW_x^T`, whose
    spectrum lies in :math:`[a, b]`; hence
    :math:`\\|x-x'\\| \\le \\tfrac{b-a}{b+a}\\|x\\|` (Christensen, *An Introduction to Frames
    and Riesz Bases*, frame algorithm, first iterate).
    """
    t0 = time.perf_counter()
    if method not in ("exact", "linear"):
        raise ValueError(f"method must be 'exact' or 'linear', got {method!r}")
    if solver not in ("auto", "dense", "lsmr"):
        raise ValueError(f"solver must be 'auto', 'dense' or 'lsmr', got {solver!r}")
    if precondition not in ("auto", "jacobi", "none"):
        raise ValueError(f"precondition must be auto, jacobi or none, got {precondition!r}")
    if on_non_frame not in ("warn", "raise", "ignore"):
        raise ValueError(f"on_non_frame must be warn, raise or ignore, got {on_non_frame!r}")
    if layer.dtype != torch.float64 and method == "exact":
        raise ValueError("theorem-grade inversion needs float64 weights; got "
                         f"{layer.dtype} (build the layer from weight.double())")
    f, s, shape, pool = _validate_pooled(features, switches, layer, input_shape, pool, activation)
    batch = f.reshape(-1, *f.shape[-3:])
    sbatch = s.reshape(-1, *s.shape[-3:])
    d = int(np.prod(shape))
    xs = []
    out: dict[str, list] = {k: [] for k in ("n", "nz", "fb", "frame", "rel", "bound", "cond",
                                            "it", "stop")}
    used_solver = "frame-step"
    for fi, si in zip(batch, sbatch):
        sel = selection(fi, si, layer, shape, pool, activation, zero_tol=zero_tol,
                        zero_windows=zero_windows)
        g = sel.values
        if isinstance(bounds, FrameBounds):
            fb = bounds
        elif bounds == "none":
            if method == "linear":
                raise ValueError("method='linear' needs frame bounds; bounds='none' was given")
            fb = None
        else:
            fb = sel.frame_bounds(bounds)
        if fb is None:  # without bounds, fewer measurements than unknowns still decides it
            is_frame = False if sel.n_selected < d else None
        else:
            is_frame = bool(fb.injective and sel.n_selected >= d)
        if is_frame is False and on_non_frame != "ignore":
            why = (f"{sel.n_selected} < {d} measurements" if fb is None else
                   f"lower bound {fb.lower:.3e}, upper {fb.upper:.3e} ({fb.method})")
            msg = (f"the {sel.n_selected} selected filters ({activation} + {pool}x{pool} "
                   f"max-pooling) do not form a frame for R^{d}: {why}; the reconstruction "
                   "is the projection onto their span")
            if on_non_frame == "raise":
                raise NonInjectiveError(msg)
            warnings.warn(msg, NonInjectiveWarning, stacklevel=2)
        cond_est, iters, stop = float("nan"), 0, {}
        if sel.n_selected == 0:
            x = np.zeros(d)
            stop = {"solver": "none", "reason": "no non-zero pooled value: x' = 0"}
        elif method == "linear":
            op = sel.operator()
            x = (2.0 / (fb.lower + fb.upper)) * op.rmatvec(g)
            stop = {"solver": "one frame-algorithm step", "a": fb.lower, "b": fb.upper}
        else:
            taps = layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1]
            use = solver
            if use == "auto":
                use = "dense" if d <= 1024 else "lsmr"
            if use == "dense":
                if d > DENSE_LIMIT:
                    raise ValueError(f"solver='dense' refuses D = {d} > {DENSE_LIMIT}; use lsmr")
                used_solver = "dense"
                x = np.linalg.lstsq(sel.dense(force=True), g, rcond=None)[0]
                stop = {"solver": "numpy.linalg.lstsq (SVD, minimum norm)"}
            else:
                if sel.n_selected * taps <= SPARSE_LIMIT:
                    op, used_solver = sel.sparse(), "lsmr-sparse"
                else:
                    op, used_solver = sel.operator(), "lsmr-operator"
                cap = maxiter if maxiter is not None else 10 * min(sel.n_selected, d)
                if iteration_callback is not None:
                    op = _counting(op, iteration_callback)
                jacobi = precondition == "jacobi" or (precondition == "auto"
                                                      and is_frame is True)
                scale = None
                if jacobi:
                    cn = sel.column_norms()
                    scale = np.where(cn > 0, 1.0 / np.where(cn > 0, cn, 1.0), 1.0)
                    op = aslinearoperator(op) @ aslinearoperator(scipy.sparse.diags(scale))
                res = lsmr(op, g, atol=atol, btol=btol, maxiter=cap)
                x, istop, iters = res[0], int(res[1]), int(res[2])
                if scale is not None:
                    x = scale * x
                cond_est = float(res[6])
                stop = {"solver": f"scipy.sparse.linalg.lsmr ({used_solver})", "atol": atol,
                        "btol": btol, "maxiter": cap, "istop": istop,
                        "reason": LSMR_REASONS.get(istop, "?"),
                        "preconditioner": "jacobi (column norms)" if jacobi else "none"}
                if scale is not None:  # cond(M): error bounds of x = My pick it up
                    touched = cn > 0
                    stop["scale_spread"] = (float(cn[touched].max() / cn[touched].min())
                                            if touched.any() else 1.0)
        r = sel.operator().matvec(x) - g if sel.n_selected else np.zeros(0)
        gn = float(np.linalg.norm(g))
        rel = float(np.linalg.norm(r) / gn) if gn > 0 else 0.0
        if method == "linear":
            bound = float((fb.upper - fb.lower) / (fb.upper + fb.lower)) if fb.upper > 0 else 1.0
        else:
            bound = fb.cond * rel if (fb is not None and is_frame) else float("inf")
        xs.append(x.reshape(shape))
        for key, val in zip(("n", "nz", "fb", "frame", "rel", "bound", "cond", "it", "stop"),
                            (sel.n_selected, sel.n_zero_window, fb, is_frame, rel, bound,
                             cond_est, iters, stop)):
            out[key].append(val)
    x_all = np.stack(xs).reshape(*f.shape[:-3], *shape)
    return PoolInversionResult(
        x=x_all, method=method, solver=used_solver, n_selected=out["n"],
        n_zero_window=out["nz"],
        frame_bounds=out["fb"], is_frame=out["frame"], relative_residual=out["rel"],
        error_bound=out["bound"], cond_estimate=out["cond"], iterations=out["it"],
        stopping=out["stop"], seconds=time.perf_counter() - t0,
    )


__all__ = ["MaxPoolSelection", "PoolInversionResult", "crelu_maxpool", "invert_crelu_maxpool",
           "pooled_shape", "selection"]
