r"""A conv layer as strided slices of its padded input and one matrix product (im2col).

Notes
-----
A conv layer with weights $w \in \mathbb{R}^{K\times C\times k_h\times k_w}$, stride
$(s_h, s_w)$, dilation $(d_h, d_w)$ and padding $(p_h, p_w)$ computes

$$
z_k(i, j) = \sum_{a, b, c} w_{k,c,a,b}\; \tilde x_{c,\; s_h i + d_h a,\; s_w j + d_w b},
$$

with $\tilde x$ the padded input (zeros, or a circular wrap). For one tap $(a, b)$ the
array $\tilde x_{c,\, s_h i + d_h a,\, s_w j + d_w b}$ over all $(c, i, j)$ is a strided
*slice* of $\tilde x$; copying the $k_hk_w$ slices side by side gives the
$(k_hk_wC) \times (H'W')$ im2col matrix $U$, and $z = \hat W U$ with $\hat W$ the weights
reordered as $K \times (k_h, k_w, C)$: one matrix product. The adjoint runs backwards:
$V = \hat W^T z$, every tap's block of $V$ is *added* into its slice of a zero padded
array (one slice never covers an entry twice, so the addition is exact), and the padding's
adjoint maps the padded array back (a crop for zeros; for circular padding every padded
row and column is added onto the pixel it copies).

This is what `torch.nn.functional.unfold`/`fold` compute, without their per-entry index
arithmetic and without allocating: `python benchmarks/pooling.py --parts primitives`
times both against the bare matrix product (3x224x224, 16 filters, one thread: unfold +
product 2.3 products, slices + product 1.6; fold 1.9, slices 1.7). All buffers are
allocated once per precision and reused (workspaces), so a solve that applies the layer
hundreds of times allocates nothing large after its first iteration.

In float32 the maps are torch's own convs where those are the faster: the forward map is
the float32 layer's `conv2d` (`python benchmarks/pooling.py --filters 16,64 --parts
primitives,adjoint32`, one thread, 3x224x224, one run: 0.7 ms against 0.9 ms for 16 filters
3x3, 2.9 against 4.0 for 64); the float64 forward stays the slices (`forward_slices`). For the
float32 adjoint of a zero-padded layer it depends on the input channels: with 3, torch's
transposed conv took 3.5 and 14.6 ms, the slices 1.3 and 5.3 (same run); from
`ADJOINT_CONV_CHANNELS` = 16 channels on the transposed conv is the faster (same run:
0.59-0.92 of the slices' time for 16 to 48 channels, 1.72 and 2.73 times it for 8 and 3), so
it is used there. Both are the float32 copy of the layer's own `_apply` and
`_apply_adjoint` (`theory.conv`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator

from theory.conv import ConvLayer

#: In float32 with zero padding, the adjoint is torch's transposed conv from this many input
#: channels on (faster there than the slices; slower below: module notes).
ADJOINT_CONV_CHANNELS = 16


class Im2colConv:
    r"""A conv layer bound to one input shape, computed by im2col with reused workspaces.

    Parameters
    ----------
    layer : ConvLayer
        Zero or circular padding, any stride and dilation.
    input_shape : (C, H, W)
    dtypes : sequence of torch dtypes
        The precisions to prepare (weights and workspaces): `torch.float64` and, for
        mixed-precision solvers, `torch.float32`.

    Notes
    -----
    `forward` returns a view of a workspace: it stays valid until the next `forward` in
    the same precision (callers that keep it must copy it). `adjoint` returns a new tensor.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from theory import ConvLayer
    >>> from theory.im2col import Im2colConv
    >>> rng = np.random.default_rng(0)
    >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), stride=2, padding=1,
    ...                   padding_mode="circular")
    >>> conv = Im2colConv(layer, (2, 7, 6))
    >>> x = torch.from_numpy(rng.standard_normal(2 * 7 * 6))
    >>> z = conv.forward(x)                                     # (K, H' W')
    >>> z.shape, bool(torch.allclose(z.reshape(4, 4, 3), layer.forward(x.reshape(1, 2, 7, 6))[0]))
    (torch.Size([4, 12]), True)
    >>> y = torch.from_numpy(rng.standard_normal((4, 12)))
    >>> lhs, rhs = float(z.reshape(-1) @ y.reshape(-1)), float(x @ conv.adjoint(y))
    >>> bool(abs(lhs - rhs) < 1e-12 * abs(lhs))                # <A x, y> = <x, A^T y>
    True
    """

    def __init__(self, layer: ConvLayer, input_shape: Sequence[int],
                 dtypes: Sequence[torch.dtype] = (torch.float64,)):
        self.layer = layer
        self.input_shape = layer.check_input_shape(input_shape)
        self.output_shape = layer.output_shape(self.input_shape)
        c, h, w = self.input_shape
        k, ho, wo = self.output_shape
        (kh, kw), (ph, pw) = layer.kernel_size, layer.padding
        (sh, sw), (dh, dw) = layer.stride, layer.dilation
        self.circular = layer.padding_mode == "circular"
        self._hp, self._wp = h + 2 * ph, w + 2 * pw
        self._taps = [(a * dh, b * dw) for a in range(kh) for b in range(kw)]
        self._rows_of_tap = [slice(a, a + sh * (ho - 1) + 1, sh) for a, _ in self._taps]
        self._cols_of_tap = [slice(b, b + sw * (wo - 1) + 1, sw) for _, b in self._taps]
        self._interior = (slice(None), slice(ph, ph + h), slice(pw, pw + w))
        if self.circular:
            self._ridx = torch.remainder(torch.arange(self._hp) - ph, h)
            self._cidx = torch.remainder(torch.arange(self._wp) - pw, w)
        w64 = layer._weight.to(torch.float64)
        # columns ordered (a, b, c), the order in which the slices are stacked
        self._wmat = {torch.float64: w64.permute(0, 2, 3, 1).reshape(k, -1).contiguous()}
        self._work: dict[torch.dtype, dict[str, torch.Tensor]] = {}
        for dt in dtypes:
            self._prepare(dt)

    # ------------------------------------------------------------------ workspaces
    def _prepare(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        if dtype not in self._work:
            c, h, w = self.input_shape
            k, ho, wo = self.output_shape
            t = len(self._taps)
            if dtype not in self._wmat:
                self._wmat[dtype] = self._wmat[torch.float64].to(dtype)
            self._work[dtype] = {
                "xp": torch.zeros(c, self._hp, self._wp, dtype=dtype),  # zero borders stay 0
                "rows": torch.empty(c, self._hp, w, dtype=dtype),      # circular: row wrap
                "cols": torch.empty(t, c, ho, wo, dtype=dtype),
                "z": torch.empty(k, ho * wo, dtype=dtype),
                "v": torch.empty(t * c, ho * wo, dtype=dtype),
                "gp": torch.empty(c, self._hp, self._wp, dtype=dtype),
            }
        return self._work[dtype]

    @property
    def taps(self) -> int:
        """Terms per response, $C k_h k_w$.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> from theory.im2col import Im2colConv
        >>> Im2colConv(ConvLayer(np.ones((4, 3, 3, 3)), padding=1), (3, 8, 8)).taps
        27
        """
        return self._wmat[torch.float64].shape[1]

    # ------------------------------------------------------------------ the maps
    def forward(self, x: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """$A x$ as a `(K, H'W')` tensor in `dtype` (a workspace view; see the class notes).

        `x`: `(C, H, W)` or flat, any float dtype (converted while it is copied in).

        Examples
        --------
        >>> import numpy as np, torch
        >>> from theory import ConvLayer
        >>> from theory.im2col import Im2colConv
        >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((3, 1, 2, 2)), dilation=2)
        >>> conv = Im2colConv(layer, (1, 6, 6), dtypes=(torch.float64, torch.float32))
        >>> x = torch.rand(36, dtype=torch.float64)
        >>> z32 = conv.forward(x, torch.float32)
        >>> z32.dtype, bool(torch.allclose(z32.double(), conv.forward(x), atol=1e-5))
        (torch.float32, True)
        """
        if dtype == torch.float32:   # torch's own conv is the faster one in single precision
            c, h, w = self.input_shape
            z = self._layer32._apply(x.reshape(1, c, h, w).to(torch.float32))
            return z.reshape(self.output_shape[0], -1)
        return self.forward_slices(x, dtype)

    def forward_slices(self, x: torch.Tensor, dtype: torch.dtype = torch.float64
                       ) -> torch.Tensor:
        """`forward` by the slices and one product in any precision (the float64 path)."""
        ws = self._prepare(dtype)
        c, h, w = self.input_shape
        xp = ws["xp"]
        if self.circular:
            torch.index_select(x.reshape(c, h, w).to(dtype), 1, self._ridx, out=ws["rows"])
            torch.index_select(ws["rows"], 2, self._cidx, out=xp)
        else:
            xp[self._interior].copy_(x.reshape(c, h, w))
        cols = ws["cols"]
        for t, (rs, cs) in enumerate(zip(self._rows_of_tap, self._cols_of_tap)):
            cols[t].copy_(xp[:, rs, cs])
        return torch.mm(self._wmat[dtype], cols.view(len(self._taps) * c, -1), out=ws["z"])

    @property
    def _layer32(self) -> ConvLayer:
        """The layer with float32 weights: its `_apply` and `_apply_adjoint` are torch's own
        (transposed) conv, used by the float32 paths."""
        if not hasattr(self, "_float32_layer"):
            self._float32_layer = self.layer.with_weight(self.layer._weight.to(torch.float32))
        return self._float32_layer

    def adjoint(self, z: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """$A^T z$ (flat, length $CHW$, in `dtype`, a new tensor) for `z` of `K H'W'` values.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from theory import ConvLayer
        >>> from theory.im2col import Im2colConv
        >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((3, 2, 3, 3)), padding=1)
        >>> conv = Im2colConv(layer, (2, 5, 5))
        >>> z = torch.rand(3, 25, dtype=torch.float64)
        >>> ref = layer.adjoint(z.reshape(1, 3, 5, 5), (2, 5, 5)).reshape(-1)
        >>> bool(torch.allclose(conv.adjoint(z), ref))
        True
        """
        ws = self._prepare(dtype)
        c, h, w = self.input_shape
        k = self.output_shape[0]
        if dtype == torch.float32 and not self.circular and c >= ADJOINT_CONV_CHANNELS:
            zt = z.reshape(1, k, *self.output_shape[1:]).to(dtype)
            return self._layer32._apply_adjoint(zt, self.input_shape).reshape(-1)
        v = torch.mm(self._wmat[dtype].t(), z.reshape(k, -1).to(dtype), out=ws["v"])
        gp = ws["gp"]
        gp.zero_()
        _, ho, wo = self.output_shape
        v = v.view(len(self._taps), c, ho, wo)
        for t, (rs, cs) in enumerate(zip(self._rows_of_tap, self._cols_of_tap)):
            gp[:, rs, cs].add_(v[t])
        if not self.circular:   # a new tensor: the workspace is reused by the next call
            return torch.empty(c, h, w, dtype=dtype).copy_(gp[self._interior]).reshape(-1)
        g = torch.zeros(c, h, self._wp, dtype=dtype).index_add_(1, self._ridx, gp)
        return torch.zeros(c, h, w, dtype=dtype).index_add_(2, self._cidx, g).reshape(-1)


class TorchProducts(LinearOperator):
    """scipy's face of a map computed by torch in float64 or float32: float64 `matvec` and
    `rmatvec`, and `matvec32`, `rmatvec32` with the products in float32 (float64 in and
    out), what `theory.solvers.solve_cgls` needs for `precision="mixed"`. Subclasses give
    `_forward(x, dtype)` and `_backward(y, dtype)` on flat float64 tensors, returning new
    flat tensors (any float dtype)."""

    def __init__(self, shape: tuple[int, int]):
        super().__init__(np.float64, shape)

    def _forward(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        raise NotImplementedError

    def _backward(self, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def _t(v) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(np.asarray(v, dtype=np.float64).ravel()))

    def _matvec(self, x):
        return self._forward(self._t(x), torch.float64).to(torch.float64).numpy()

    def _rmatvec(self, y):
        return self._backward(self._t(y), torch.float64).to(torch.float64).numpy()

    def _adjoint(self):
        return LinearOperator((self.shape[1], self.shape[0]), matvec=self._rmatvec,
                              rmatvec=self._matvec, dtype=np.float64)

    def matvec32(self, x) -> np.ndarray:
        """The forward map with float32 products (float64 in and out)."""
        return self._forward(self._t(x), torch.float32).to(torch.float64).numpy()

    def rmatvec32(self, y) -> np.ndarray:
        """The adjoint with float32 products (float64 in and out)."""
        return self._backward(self._t(y), torch.float32).to(torch.float64).numpy()


class Im2colOperator(TorchProducts):
    r"""A conv layer's matrix $A$ (`M x D`, $M = KH'W'$, $D = CHW$) as a float64 scipy
    LinearOperator computed by `Im2colConv`, with float32 products for mixed precision
    (`TorchProducts`) and `abs_norm_bound` for CGLS's rounding floor.

    Parameters
    ----------
    layer : ConvLayer
    input_shape : (C, H, W)

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.im2col import Im2colOperator
    >>> rng = np.random.default_rng(0)
    >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), stride=2, padding=1)
    >>> op = Im2colOperator(layer, (2, 7, 7))
    >>> a = layer.dense((2, 7, 7))
    >>> x, y = rng.standard_normal(98), rng.standard_normal(64)
    >>> op.shape, bool(np.allclose(op.matvec(x), a @ x)), bool(np.allclose(op.rmatvec(y), a.T @ y))
    ((64, 98), True, True)
    >>> bool(np.allclose(op.matvec32(x), a @ x, atol=1e-5)), op.matvec32(x).dtype
    (True, dtype('float64'))
    >>> bool(np.linalg.norm(np.abs(a), 2) <= op.abs_norm_bound())
    True
    """

    def __init__(self, layer: ConvLayer, input_shape: Sequence[int]):
        self.layer = layer
        self.conv = Im2colConv(layer, input_shape, (torch.float64, torch.float32))
        k, ho, wo = self.conv.output_shape
        c, h, w = self.conv.input_shape
        super().__init__((k * ho * wo, c * h * w))

    def _forward(self, x, dtype):
        z = self.conv.forward(x, dtype).reshape(-1)
        return z.clone() if dtype == torch.float64 else z   # float64: off the workspace

    def _backward(self, y, dtype):
        return self.conv.adjoint(y, dtype)

    def abs_norm_bound(self) -> float:
        r"""$\sqrt{\|A\|_1\|A\|_\infty} \ge \||A|\|_2 \ge \|A\|_2$ (Higham, *Accuracy
        and Stability of Numerical Algorithms*, 6.3): the largest $\|w_k\|_1$ times the
        largest column sum $|A|^T\mathbf 1$ (one adjoint conv of the absolute weights; a
        circular layer's wrapped taps counted separately, still an upper bound)."""
        if not hasattr(self, "_abs_norm"):
            self._abs_norm = abs_norm_bound(self.layer, self.conv.input_shape)
        return self._abs_norm


def abs_norm_bound(layer: ConvLayer, input_shape: Sequence[int],
                   counts: torch.Tensor | None = None,
                   filters: torch.Tensor | None = None) -> float:
    r"""$\sqrt{\|B\|_1\|B\|_\infty} \ge \||B|\|_2$ for the rows of $A$ that `counts`
    (`K H'W'` multiplicities; default every row once) selects, from `filters` (indices of
    the filters that have a selected row; default all).

    The largest row sum of $|B|$ is at most the largest $\|w_k\|_1$ of those filters; the
    column sums are $|A|^Tm$, one adjoint conv of the absolute weights applied to the
    counts $m$ (a circular layer's wrapped taps counted separately: still an upper bound).
    `Im2colOperator.abs_norm_bound` and `MaxPoolSelection.abs_norm_bound` are this.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from theory import ConvLayer
    >>> from theory.im2col import abs_norm_bound
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((3, 2, 3, 3)), padding=1)
    >>> a = np.abs(layer.dense((2, 5, 5)))
    >>> bool(np.linalg.norm(a, 2) <= abs_norm_bound(layer, (2, 5, 5)))
    True
    >>> m = torch.zeros(3 * 25, dtype=torch.float64); m[:25] = 1      # filter 0's rows only
    >>> bound = abs_norm_bound(layer, (2, 5, 5), m, torch.tensor([0]))
    >>> bool(np.linalg.norm(a[:25], 2) <= bound < abs_norm_bound(layer, (2, 5, 5)))
    True
    """
    absw = layer._weight.to(torch.float64).abs()
    rows = absw.reshape(absw.shape[0], -1).sum(1)
    row_max = float((rows if filters is None else rows[filters]).max())
    conv = Im2colConv(layer.with_weight(absw), input_shape)
    m = torch.ones(conv.output_shape, dtype=torch.float64) if counts is None else counts
    return float(np.sqrt(row_max * float(conv.adjoint(m).max())))


__all__ = ["ADJOINT_CONV_CHANNELS", "Im2colConv", "Im2colOperator", "TorchProducts",
           "abs_norm_bound"]
