r"""A 2-D convolution layer: weights, geometry, and the exact forward and adjoint maps.

Notes
-----
A conv layer with weight $w \in \mathbb{R}^{K \times C \times k_h \times k_w}$, stride
$s$, padding $p$ and dilation $d$ is a linear map
$A: \mathbb{R}^{D} \to \mathbb{R}^{M}$ with $D = C H W$ and $M = K H' W'$,
$H' = \lfloor (H + 2p - d(k_h - 1) - 1)/s \rfloor + 1$. Torch's `conv2d` is a
cross-correlation:

$$
(A x)_{o,i,j} = \sum_{c,a,b} w_{o,c,a,b}\, \tilde x_{c,\, s i + d a,\, s j + d b},
$$

with $\tilde x$ the padded input. For zero padding the adjoint is
`conv_transpose2d` with `output_padding = (H + 2p - d(k-1) - 1) mod s`; for circular
padding it is `conv_transpose2d` on the padded grid followed by the adjoint of circular
padding, which adds every padded entry back onto the pixel it copies (a scatter-add).

A `ConvLayer` owns a private copy of its weights (the caller's array can change
afterwards without effect, and `ConvLayer.weight` hands out a copy), so every cached
object derived from it (`ConvLayer.at`: operators, dense matrices, FFT plans, frame
bounds) always describes the weights the layer computes with.
"""

from __future__ import annotations

import hashlib
import numbers
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # pragma: no cover
    from scipy.sparse.linalg import LinearOperator

    from theory.fft import CirculantPlan
    from theory.operator import ConvOperator

PaddingMode = Literal["zeros", "circular"]

#: Largest input size (C*H*W) for which a dense matrix is built without `force=True`.
DENSE_LIMIT = 4096
#: Largest input size for which `solver="auto"` picks the dense SVD / least squares
#: (an SVD of an M x 1024 matrix takes about a second on two cores).
AUTO_DENSE_LIMIT = 1024


#: Arrays whose largest |entry| lies outside [2^-E, 2^E] are scaled by a power of two before
#: squares are formed (Gram matrices, norms), so that they neither underflow nor overflow;
#: a power of two scales every floating-point operation exactly.
NORMALISE_EXPONENT = 60


def normalising_exponent(peak: float) -> int:
    """`e` with `2^e * peak` near 1 when `peak` is outside `[2^-E, 2^E]`, else 0.

    Examples
    --------
    >>> from theory.conv import normalising_exponent
    >>> normalising_exponent(3.0)             # near unit scale: nothing to do
    0
    >>> normalising_exponent(2.0 ** -80)      # 2^80 * 2^-80 = 1
    80
    >>> normalising_exponent(2.0 ** 70)
    -70
    """
    if not (peak > 0 and np.isfinite(peak)):
        return 0
    e = -int(np.round(np.log2(peak)))
    return e if abs(e) > NORMALISE_EXPONENT else 0


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= `minimum`; anything else is refused by name."""
    items = (value, value) if not isinstance(value, (tuple, list, np.ndarray)) else tuple(value)
    if len(items) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    out = []
    for v in items:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r} "
                            f"({type(v).__name__}); torch's conv layers take integers only")
        out.append(int(v))
    if min(out) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return out[0], out[1]


def as_tensor(array: np.ndarray | torch.Tensor, name: str, dtype: torch.dtype | None = None
              ) -> torch.Tensor:
    """Convert to a torch tensor, refusing empty, non-numeric or non-finite input by name.

    Integer arrays become float64 (so no arithmetic on them can wrap around); bool and
    complex arrays are refused.

    Examples
    --------
    >>> import numpy as np
    >>> from theory.conv import as_tensor
    >>> as_tensor(np.arange(3), "x")          # integers become float64
    tensor([0., 1., 2.], dtype=torch.float64)
    >>> try:
    ...     as_tensor(np.array([1.0, np.nan]), "x")
    ... except ValueError as err:
    ...     print(err)
    x contains 1 NaN or Inf value(s)
    """
    if isinstance(array, np.ndarray):
        if array.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be a real numeric array, got dtype {array.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    elif isinstance(array, torch.Tensor):
        tensor = array  # not detached: ConvLayer.forward stays differentiable
        if tensor.dtype == torch.bool:
            raise TypeError(f"{name} must be a real numeric tensor, got dtype {tensor.dtype}")
    else:
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(array).__name__}")
    if tensor.is_complex():
        raise TypeError(f"{name} must be real, got a complex {tensor.dtype}")
    if tensor.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(tensor.shape)})")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    if dtype is not None:
        tensor = tensor.to(dtype)
    if not torch.isfinite(tensor.detach().sum()):  # one pass; a finite sum proves finiteness
        bad = int((~torch.isfinite(tensor.detach())).sum())
        if bad:  # (an infinite sum of finite values is an overflow, not bad input)
            raise ValueError(f"{name} contains {bad} NaN or Inf value(s)")
    return tensor


class ConvLayer:
    r"""A conv layer `x -> conv2d(pad(x), weight, stride, dilation)` seen as a linear operator.

    Parameters
    ----------
    weight : array of shape (K, C, kh, kw)
        Filters (numpy or torch); copied, and kept in their floating dtype (integers become
        float64).
    stride, padding, dilation : int or (int, int)
        Torch's meaning (`torch.nn.functional.conv2d`).
    padding_mode : {"zeros", "circular"}

    Notes
    -----
    The layer has no bias: a bias only shifts the pre-activation, and
    $z = h_+ - h_-$ recovers the biased pre-activation, from which the bias is
    subtracted before inversion.

    Everything that depends on the input shape lives on the shape-bound operator
    `at` (validated once, cached per shape); the shape-taking methods below
    (`operator`, `dense`, `fft_plan`, `output_shape`, ...) are thin
    wrappers around it.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> layer = ConvLayer(np.ones((4, 3, 3, 3)), stride=2, padding=1)
    >>> op = layer.at((3, 8, 8))
    >>> op.output_shape, op.shape
    ((4, 4, 4), (64, 192))
    """

    __slots__ = ("_weight", "stride", "padding", "padding_mode", "dilation", "_bound",
                 "_fingerprint", "__weakref__")

    def __init__(self, weight, stride=1, padding=0, padding_mode: PaddingMode = "zeros",
                 dilation=1):
        w = as_tensor(weight, "weight").detach()
        if w.ndim != 4:
            raise ValueError(
                f"weight must have shape (K, C, kh, kw) (4 dimensions), got shape {tuple(w.shape)}"
            )
        if padding_mode not in ("zeros", "circular"):
            raise ValueError(f"padding_mode must be 'zeros' or 'circular', got {padding_mode!r}")
        object.__setattr__(self, "_weight", w.clone().contiguous())
        object.__setattr__(self, "stride", _pair(stride, "stride", 1))
        object.__setattr__(self, "padding", _pair(padding, "padding", 0))
        object.__setattr__(self, "dilation", _pair(dilation, "dilation", 1))
        object.__setattr__(self, "padding_mode", padding_mode)
        object.__setattr__(self, "_bound", {})
        object.__setattr__(self, "_fingerprint", None)

    def __setattr__(self, name, value):
        raise AttributeError(f"ConvLayer is immutable: cannot set {name!r} (build a new layer)")

    # ------------------------------------------------------------------ weights and geometry
    @property
    def weight(self) -> torch.Tensor:
        """A copy of the filters, shape (K, C, kh, kw) (changing it does not change the layer).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> layer = ConvLayer(np.ones((4, 3, 3, 3)))
        >>> w = layer.weight
        >>> w.shape, w.dtype
        (torch.Size([4, 3, 3, 3]), torch.float64)
        >>> w[:] = 0.0                            # a copy: the layer is unchanged
        >>> layer.max_abs
        1.0
        """
        return self._weight.clone()

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the weights (dtype, shape, bytes) and the geometry: the layer's identity.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> w = np.random.default_rng(0).standard_normal((4, 3, 3, 3))
        >>> a, b = ConvLayer(w), ConvLayer(w.copy())
        >>> len(a.fingerprint), a.fingerprint == b.fingerprint
        (64, True)
        >>> a.fingerprint == ConvLayer(w, stride=2).fingerprint   # geometry is part of it
        False
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            w = self._weight
            h.update(f"{w.dtype}{tuple(w.shape)}{self.stride}{self.padding}{self.dilation}"
                     f"{self.padding_mode}".encode())
            h.update(w.numpy().tobytes())
            object.__setattr__(self, "_fingerprint", h.hexdigest())
        return self._fingerprint

    def scaled(self, factor: float) -> "ConvLayer":
        """The same layer with its weights multiplied by `factor`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> layer = ConvLayer(np.ones((2, 1, 3, 3)), stride=2, padding=1)
        >>> double = layer.scaled(2.0)
        >>> double.max_abs, double.stride, double.padding
        (2.0, (2, 2), (1, 1))
        >>> x = np.random.default_rng(0).random((1, 6, 6))
        >>> bool(np.allclose(double.forward(x), 2 * layer.forward(x)))
        True
        """
        return self.with_weight(self._weight * factor)

    def with_weight(self, weight) -> "ConvLayer":
        """A layer of the same geometry (stride, padding, padding mode, dilation) with other
        weights, e.g. their absolute values, squares or a float32 copy.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> layer = ConvLayer(np.ones((2, 1, 3, 3)), stride=2, padding=1, dilation=2)
        >>> half = layer.with_weight(layer.weight.float() / 2)
        >>> half.weight.dtype, half.stride, half.padding, half.dilation, half.padding_mode
        (torch.float32, (2, 2), (1, 1), (2, 2), 'zeros')
        """
        return ConvLayer(weight, stride=self.stride, padding=self.padding,
                         padding_mode=self.padding_mode, dilation=self.dilation)

    @property
    def max_abs(self) -> float:
        """The largest absolute weight.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> ConvLayer(np.array([[[[0.5, -3.0]]]])).max_abs
        3.0
        """
        return float(self._weight.abs().max())

    @property
    def out_channels(self) -> int:
        """Number of filters `K`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> ConvLayer(np.ones((4, 3, 5, 5))).out_channels
        4
        """
        return int(self._weight.shape[0])

    @property
    def in_channels(self) -> int:
        """Number of input channels `C` of each filter.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> ConvLayer(np.ones((4, 3, 5, 5))).in_channels
        3
        """
        return int(self._weight.shape[1])

    @property
    def kernel_size(self) -> tuple[int, int]:
        """`(kh, kw)`, the filter size without dilation.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> ConvLayer(np.ones((4, 3, 5, 3))).kernel_size
        (5, 3)
        """
        return int(self._weight.shape[2]), int(self._weight.shape[3])

    @property
    def receptive_field(self) -> tuple[int, int]:
        """Extent of one dilated filter on the padded input, `d (k - 1) + 1` per axis.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> ConvLayer(np.ones((1, 1, 3, 3))).receptive_field
        (3, 3)
        >>> ConvLayer(np.ones((1, 1, 3, 3)), dilation=2).receptive_field
        (5, 5)
        """
        (kh, kw), (dh, dw) = self.kernel_size, self.dilation
        return dh * (kh - 1) + 1, dw * (kw - 1) + 1

    @property
    def dtype(self) -> torch.dtype:
        """The torch dtype of the weights (and of every computation of the layer).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> ConvLayer(np.ones((1, 1, 3, 3))).dtype
        torch.float64
        >>> ConvLayer(np.ones((1, 1, 3, 3), dtype=np.float32)).dtype
        torch.float32
        """
        return self._weight.dtype

    def at(self, input_shape: Sequence[int]) -> "ConvOperator":
        """The layer bound to inputs of shape `(C, H, W)`: a cached `ConvOperator`.

        The shape is validated once; the operator caches the output shape, the scipy
        `LinearOperator`, the dense matrix, the FFT plan and the frame bounds.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> layer = ConvLayer(np.ones((4, 3, 3, 3)), padding=1)
        >>> op = layer.at((3, 8, 8))
        >>> op.output_shape, op.shape
        ((4, 8, 8), (256, 192))
        >>> op is layer.at([3, 8, 8])             # cached per shape
        True
        """
        try:
            key = tuple(int(s) for s in input_shape)
        except (TypeError, ValueError):
            raise ValueError(f"input_shape must be (C, H, W) ints, got {input_shape!r}") from None
        op = self._bound.get(key)
        if op is None:
            from theory.operator import ConvOperator

            op = ConvOperator(self, key)
            self._bound[key] = op
        return op

    def _output_size(self, h: int, w: int) -> tuple[int, int]:
        (rh, rw), (ph, pw), (sh, sw) = self.receptive_field, self.padding, self.stride
        return (h + 2 * ph - rh) // sh + 1, (w + 2 * pw - rw) // sw + 1

    def _validate_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        if len(shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {shape!r}")
        c, h, w = shape
        if min(shape) < 1:
            raise ValueError(f"input_shape must be positive, got {shape}")
        if c != self.in_channels:
            raise ValueError(
                f"input has {c} channels but the layer's filters have {self.in_channels}"
            )
        (rh, rw), (ph, pw) = self.receptive_field, self.padding
        if rh > h + 2 * ph or rw > w + 2 * pw:
            what = "kernel" if self.dilation == (1, 1) else "dilated kernel"
            raise ValueError(
                f"{what} {rh}x{rw} is larger than the padded input {h + 2 * ph}x{w + 2 * pw}"
            )
        if self.padding_mode == "circular" and (ph > h or pw > w):
            raise ValueError(f"circular padding {self.padding} exceeds the input size {h}x{w}")
        return c, h, w

    # ------------------------------------------------------------------ shape-taking wrappers
    def check_input_shape(self, input_shape: Sequence[int]) -> tuple[int, int, int]:
        """Validate `(C, H, W)` against the layer; return it as a tuple of ints.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> layer = ConvLayer(np.ones((4, 3, 3, 3)))
        >>> layer.check_input_shape([3, 8, 8])
        (3, 8, 8)
        >>> try:
        ...     layer.check_input_shape((2, 8, 8))
        ... except ValueError as err:
        ...     print(err)
        input has 2 channels but the layer's filters have 3
        """
        return self.at(input_shape).input_shape

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, int, int]:
        """`(K, H', W')` for an input of shape `(C, H, W)`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> ConvLayer(np.ones((4, 3, 3, 3)), stride=2, padding=1).output_shape((3, 9, 9))
        (4, 5, 5)
        """
        return self.at(input_shape).output_shape

    def is_circulant(self, input_shape: Sequence[int]) -> bool:
        """True when the operator is block-circulant: circular padding, stride 1, H'=H, W'=W.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> w = np.ones((4, 3, 3, 3))
        >>> ConvLayer(w, padding=1, padding_mode="circular").is_circulant((3, 8, 8))
        True
        >>> ConvLayer(w, padding=1).is_circulant((3, 8, 8))               # zero padding
        False
        >>> ConvLayer(w, stride=2, padding=1, padding_mode="circular").is_circulant((3, 8, 8))
        False
        """
        return self.at(input_shape).is_circulant

    def forward(self, x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Apply the layer to `(C, H, W)` or `(N, C, H, W)`; numpy in, numpy out.

        Examples
        --------
        >>> import numpy as np
        >>> import torch
        >>> from theory import ConvLayer
        >>> layer = ConvLayer(np.ones((2, 1, 2, 2)))
        >>> layer.forward(np.arange(9.0).reshape(1, 3, 3))[0]    # sums of 2x2 windows
        array([[ 8., 12.],
               [20., 24.]])
        >>> layer.forward(torch.zeros(5, 1, 3, 3)).shape          # a batch, torch in and out
        torch.Size([5, 2, 2, 2])
        """
        if not isinstance(x, (np.ndarray, torch.Tensor)):
            raise TypeError(f"x must be a numpy array or torch tensor, got {type(x).__name__}")
        if x.ndim not in (3, 4):
            raise ValueError(f"x must be (C, H, W) or (N, C, H, W), got shape {tuple(x.shape)}")
        return self.at(x.shape[-3:]).forward(x)

    def adjoint(self, y: torch.Tensor | np.ndarray, input_shape: Sequence[int]
                ) -> torch.Tensor | np.ndarray:
        """Apply $A^T$ to `(K, H', W')` or `(N, K, H', W')`; numpy in, numpy out.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), stride=2, padding=1)
        >>> x = rng.standard_normal((2, 7, 7))
        >>> y = rng.standard_normal(layer.output_shape(x.shape))
        >>> lhs = np.sum(layer.forward(x) * y)                   # <A x, y>
        >>> rhs = np.sum(x * layer.adjoint(y, x.shape))           # <x, A^T y>
        >>> bool(np.isclose(lhs, rhs, rtol=1e-12))
        True
        """
        return self.at(input_shape).adjoint(y)

    def operator(self, input_shape: Sequence[int]) -> "LinearOperator":
        """The layer as a scipy `LinearOperator` on flattened `(C, H, W)` vectors.

        `matvec`/`matmat` run `conv2d`; `rmatvec`/`rmatmat` run the exact adjoint.
        The operator's dtype is the weight's numpy dtype.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1)
        >>> A = layer.operator((2, 5, 5))
        >>> A.shape
        (100, 50)
        >>> x = rng.standard_normal((2, 5, 5))
        >>> bool(np.allclose(A.matvec(x.ravel()), layer.forward(x).ravel()))
        True
        """
        return self.at(input_shape).linear_operator

    def dense(self, input_shape: Sequence[int], force: bool = False) -> np.ndarray:
        """The `M x D` matrix of the layer (columns = responses to unit inputs).

        Refuses inputs with more than `DENSE_LIMIT` values unless `force=True`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 1, 3, 3)), padding=1)
        >>> a = layer.dense((1, 4, 4))
        >>> a.shape
        (64, 16)
        >>> x = rng.standard_normal((1, 4, 4))
        >>> bool(np.allclose(a @ x.ravel(), layer.forward(x).ravel()))
        True
        >>> s = np.linalg.svd(a, compute_uv=False)
        >>> bool(s[-1] > 1e-8 * s[0])              # injective on 4x4 inputs
        True
        """
        return self.at(input_shape).dense(force=force)

    def fft_plan(self, input_shape: Sequence[int]) -> "CirculantPlan":
        """The cached `theory.fft.CirculantPlan` for this input shape.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> plan = layer.fft_plan((2, 6, 6))
        >>> s = np.linalg.svd(layer.dense((2, 6, 6)), compute_uv=False)   # the dense oracle
        >>> bool(np.isclose(plan.sigma_max, s[0])), bool(np.isclose(plan.sigma_min, s[-1]))
        (True, True)
        """
        return self.at(input_shape).plan

    # ------------------------------------------------------------------ kernels (batched)
    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        """conv2d of a batch `(N, C, H, W)` already in the layer's dtype."""
        if self.padding_mode == "circular":
            ph, pw = self.padding
            if ph or pw:
                x = F.pad(x, (pw, pw, ph, ph), mode="circular")
            return F.conv2d(x, self._weight, stride=self.stride, dilation=self.dilation)
        return F.conv2d(x, self._weight, stride=self.stride, padding=self.padding,
                        dilation=self.dilation)

    def _apply_adjoint(self, y: torch.Tensor, input_shape: tuple[int, int, int]) -> torch.Tensor:
        """The exact adjoint of `_apply` on a batch `(N, K, H', W')`."""
        _, h, w = input_shape
        (rh, rw), (ph, pw), (sh, sw) = self.receptive_field, self.padding, self.stride
        hp, wp = h + 2 * ph, w + 2 * pw
        out_pad = ((hp - rh) % sh, (wp - rw) % sw)
        if self.padding_mode == "zeros":
            return F.conv_transpose2d(y, self._weight, stride=self.stride, padding=self.padding,
                                      output_padding=out_pad, dilation=self.dilation)
        g = F.conv_transpose2d(y, self._weight, stride=self.stride, output_padding=out_pad,
                               dilation=self.dilation)
        # adjoint of circular padding: scatter-add each padded row/column onto its source
        rows = torch.remainder(torch.arange(hp) - ph, h)
        cols = torch.remainder(torch.arange(wp) - pw, w)
        g = torch.zeros(*g.shape[:2], h, wp, dtype=g.dtype).index_add_(2, rows, g)
        return torch.zeros(*g.shape[:3], w, dtype=g.dtype).index_add_(3, cols, g)

    def __repr__(self) -> str:
        k, c, kh, kw = self._weight.shape
        dil = "" if self.dilation == (1, 1) else f", dilation={self.dilation}"
        return (f"ConvLayer({k} filters {c}x{kh}x{kw}, stride={self.stride}, "
                f"padding={self.padding}, padding_mode={self.padding_mode!r}{dil}, "
                f"dtype={self.dtype})")
