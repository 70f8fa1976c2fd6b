"""A 2-D convolution layer as an exact linear operator.

Notes
-----
A conv layer with weight :math:`w \\in \\mathbb{R}^{K \\times C \\times k_h \\times k_w}`, stride
:math:`s` and padding :math:`p` is a linear map :math:`A: \\mathbb{R}^{D} \\to \\mathbb{R}^{M}`
with :math:`D = C H W` and :math:`M = K H' W'`,
:math:`H' = \\lfloor (H + 2p - k_h)/s \\rfloor + 1`. Torch's ``conv2d`` is a
cross-correlation:

.. math::

    (A x)_{o,i,j} = \\sum_{c,a,b} w_{o,c,a,b}\\, \\tilde x_{c,\\, s i + a,\\, s j + b},

with :math:`\\tilde x` the padded input. For zero padding the adjoint is
``conv_transpose2d`` with ``output_padding = (H + 2p - k) mod s``; for circular padding it is
``conv_transpose2d`` on the padded grid followed by the adjoint of circular padding, which
adds every padded entry back onto the pixel it copies (a scatter-add).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import LinearOperator

PaddingMode = Literal["zeros", "circular"]

#: Largest input size (C*H*W) for which a dense matrix is built without ``force=True``.
DENSE_LIMIT = 4096
#: Largest input size for which ``method="auto"`` picks the dense SVD / least squares
#: (an SVD of an M x 1024 matrix takes about a second on two cores).
AUTO_DENSE_LIMIT = 1024


def _pair(value: int | Sequence[int], name: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        pair = (int(value), int(value))
    else:
        pair = tuple(int(v) for v in value)
        if len(pair) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair  # type: ignore[return-value]


def as_tensor(array: np.ndarray | torch.Tensor, name: str, dtype: torch.dtype | None = None
              ) -> torch.Tensor:
    """Convert to a torch tensor, refusing empty or non-finite input with a clear message."""
    if isinstance(array, np.ndarray):
        if array.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be a real numeric array, got dtype {array.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    elif isinstance(array, torch.Tensor):
        tensor = array  # not detached: ConvLayer.forward stays differentiable
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


@dataclasses.dataclass(frozen=True, eq=False)
class ConvLayer:
    """A conv layer ``x -> conv2d(pad(x), weight, stride)`` seen as a linear operator.

    Parameters
    ----------
    weight : array of shape (K, C, kh, kw)
        Filters (numpy or torch); kept in their floating dtype (integers become float64).
    stride : int or (int, int)
    padding : int or (int, int)
    padding_mode : {"zeros", "circular"}

    Notes
    -----
    The layer has no bias: a bias only shifts the pre-activation, and
    :math:`z = h_+ - h_-` recovers the biased pre-activation, from which the bias is
    subtracted before inversion.
    """

    weight: torch.Tensor
    stride: tuple[int, int]
    padding: tuple[int, int]
    padding_mode: PaddingMode

    def __init__(self, weight, stride=1, padding=0, padding_mode: PaddingMode = "zeros"):
        w = as_tensor(weight, "weight").detach()
        if w.ndim != 4:
            raise ValueError(
                f"weight must have shape (K, C, kh, kw) (4 dimensions), got shape {tuple(w.shape)}"
            )
        if padding_mode not in ("zeros", "circular"):
            raise ValueError(f"padding_mode must be 'zeros' or 'circular', got {padding_mode!r}")
        object.__setattr__(self, "weight", w.contiguous())
        object.__setattr__(self, "stride", _pair(stride, "stride", 1))
        object.__setattr__(self, "padding", _pair(padding, "padding", 0))
        object.__setattr__(self, "padding_mode", padding_mode)
        object.__setattr__(self, "_plans", {})

    # ------------------------------------------------------------------ shapes
    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[1])

    @property
    def kernel_size(self) -> tuple[int, int]:
        return int(self.weight.shape[2]), int(self.weight.shape[3])

    @property
    def dtype(self) -> torch.dtype:
        return self.weight.dtype

    def check_input_shape(self, input_shape: Sequence[int]) -> tuple[int, int, int]:
        """Validate ``(C, H, W)`` against the layer; return it as a tuple of ints."""
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {tuple(input_shape)!r}")
        c, h, w = shape
        if min(shape) < 1:
            raise ValueError(f"input_shape must be positive, got {shape}")
        if c != self.in_channels:
            raise ValueError(
                f"input has {c} channels but the layer's filters have {self.in_channels}"
            )
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if kh > h + 2 * ph or kw > w + 2 * pw:
            raise ValueError(
                f"kernel {kh}x{kw} is larger than the padded input {h + 2 * ph}x{w + 2 * pw}"
            )
        if self.padding_mode == "circular" and (ph > h or pw > w):
            raise ValueError(f"circular padding {self.padding} exceeds the input size {h}x{w}")
        return shape

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, int, int]:
        """``(K, H', W')`` for an input of shape ``(C, H, W)``."""
        _, h, w = self.check_input_shape(input_shape)
        (kh, kw), (ph, pw), (sh, sw) = self.kernel_size, self.padding, self.stride
        return self.out_channels, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1

    def is_circulant(self, input_shape: Sequence[int]) -> bool:
        """True when the operator is block-circulant: circular padding, stride 1, H'=H, W'=W."""
        _, h, w = self.check_input_shape(input_shape)
        _, ho, wo = self.output_shape(input_shape)
        return self.padding_mode == "circular" and self.stride == (1, 1) and (ho, wo) == (h, w)

    # ------------------------------------------------------------------ maps
    def _batch(self, x: torch.Tensor, input_shape: tuple[int, int, int]) -> torch.Tensor:
        if tuple(x.shape[-3:]) != input_shape:
            raise ValueError(f"input of shape {tuple(x.shape)} does not end in {input_shape}")
        return x.reshape(-1, *input_shape).to(self.dtype)

    def forward(self, x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Apply the layer to ``(C, H, W)`` or ``(N, C, H, W)``; numpy in, numpy out."""
        is_np = isinstance(x, np.ndarray)
        t = as_tensor(x, "x")
        if t.ndim not in (3, 4):
            raise ValueError(f"x must be (C, H, W) or (N, C, H, W), got shape {tuple(t.shape)}")
        shape = self.check_input_shape(t.shape[-3:])
        y = self._apply(self._batch(t, shape))
        y = y.reshape(*t.shape[:-3], *y.shape[1:])
        return y.numpy() if is_np else y

    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode == "circular":
            ph, pw = self.padding
            if ph or pw:
                x = F.pad(x, (pw, pw, ph, ph), mode="circular")
            return F.conv2d(x, self.weight, stride=self.stride)
        return F.conv2d(x, self.weight, stride=self.stride, padding=self.padding)

    def _apply_adjoint(self, y: torch.Tensor, input_shape: tuple[int, int, int]) -> torch.Tensor:
        _, h, w = input_shape
        (kh, kw), (ph, pw), (sh, sw) = self.kernel_size, self.padding, self.stride
        hp, wp = h + 2 * ph, w + 2 * pw
        out_pad = ((hp - kh) % sh, (wp - kw) % sw)
        if self.padding_mode == "zeros":
            return F.conv_transpose2d(y, self.weight, stride=self.stride, padding=self.padding,
                                      output_padding=out_pad)
        g = F.conv_transpose2d(y, self.weight, stride=self.stride, output_padding=out_pad)
        # adjoint of circular padding: scatter-add each padded row/column onto its source
        rows = torch.remainder(torch.arange(hp) - ph, h)
        cols = torch.remainder(torch.arange(wp) - pw, w)
        g = torch.zeros(*g.shape[:2], h, wp, dtype=g.dtype).index_add_(2, rows, g)
        return torch.zeros(*g.shape[:3], w, dtype=g.dtype).index_add_(3, cols, g)

    def adjoint(self, y: torch.Tensor | np.ndarray, input_shape: Sequence[int]
                ) -> torch.Tensor | np.ndarray:
        """Apply :math:`A^T` to ``(K, H', W')`` or ``(N, K, H', W')``; numpy in, numpy out."""
        is_np = isinstance(y, np.ndarray)
        t = as_tensor(y, "y")
        shape = self.check_input_shape(input_shape)
        out_shape = self.output_shape(shape)
        if tuple(t.shape[-3:]) != out_shape or t.ndim not in (3, 4):
            raise ValueError(f"y must end in the output shape {out_shape}, got {tuple(t.shape)}")
        x = self._apply_adjoint(t.reshape(-1, *out_shape).to(self.dtype), shape)
        x = x.reshape(*t.shape[:-3], *shape)
        return x.numpy() if is_np else x

    # ------------------------------------------------------------------ operators
    def operator(self, input_shape: Sequence[int]) -> LinearOperator:
        """The layer as a scipy ``LinearOperator`` on flattened ``(C, H, W)`` vectors.

        ``matvec``/``matmat`` run ``conv2d``; ``rmatvec``/``rmatmat`` run the exact adjoint.
        The operator's dtype is the weight's numpy dtype.
        """
        shape = self.check_input_shape(input_shape)
        out_shape = self.output_shape(shape)
        d, m = int(np.prod(shape)), int(np.prod(out_shape))
        np_dtype = torch.empty((), dtype=self.dtype).numpy().dtype

        def matmat(X: np.ndarray) -> np.ndarray:
            xb = torch.from_numpy(np.ascontiguousarray(X.T, dtype=np_dtype)).reshape(-1, *shape)
            return self._apply(xb).reshape(X.shape[1], m).numpy().T

        def rmatmat(Y: np.ndarray) -> np.ndarray:
            yb = torch.from_numpy(np.ascontiguousarray(Y.T, dtype=np_dtype)).reshape(-1, *out_shape)
            return self._apply_adjoint(yb, shape).reshape(Y.shape[1], d).numpy().T

        return LinearOperator(
            (m, d), dtype=np_dtype,
            matvec=lambda v: matmat(np.asarray(v).reshape(d, 1)).ravel(),
            rmatvec=lambda v: rmatmat(np.asarray(v).reshape(m, 1)).ravel(),
            matmat=matmat, rmatmat=rmatmat,
        )

    def dense(self, input_shape: Sequence[int], force: bool = False) -> np.ndarray:
        """The ``M x D`` matrix of the layer (columns = responses to unit inputs).

        Refuses inputs with more than ``DENSE_LIMIT`` values unless ``force=True``.
        """
        shape = self.check_input_shape(input_shape)
        d = int(np.prod(shape))
        if d > DENSE_LIMIT and not force:
            raise ValueError(
                f"a dense matrix for input {shape} has {d} columns (> {DENSE_LIMIT}); "
                "use the LinearOperator, or pass force=True"
            )
        eye = torch.eye(d, dtype=self.dtype).reshape(d, *shape)
        return self._apply(eye).reshape(d, -1).numpy().T.copy()

    def fft_plan(self, input_shape: Sequence[int]):
        """The cached :class:`theory.fft.CirculantPlan` for this input shape."""
        from theory.fft import CirculantPlan

        shape = self.check_input_shape(input_shape)
        plans = self._plans  # type: ignore[attr-defined]
        if shape not in plans:
            plans[shape] = CirculantPlan(self, shape)
        return plans[shape]

    def __repr__(self) -> str:
        k, c, kh, kw = self.weight.shape
        return (f"ConvLayer({k} filters {c}x{kh}x{kw}, stride={self.stride}, "
                f"padding={self.padding}, padding_mode={self.padding_mode!r}, dtype={self.dtype})")
