r"""A conv layer bound to one input shape: the linear map $A: \mathbb{R}^D \to \mathbb{R}^M$.

Notes
-----
`ConvOperator` is what `theory.ConvLayer.at` returns. The input shape is
validated once, at construction; the operator then caches what depends on it: the output
shape, `M` and `D`, the scipy `LinearOperator`, the dense `M x D` matrix (small
inputs), the FFT plan (circulant layers) and the frame bounds. The layer itself is
immutable, so nothing cached can describe other weights.

Examples
--------
>>> import numpy as np
>>> from theory import ConvLayer
>>> op = ConvLayer(np.eye(3).reshape(3, 3, 1, 1)).at((3, 4, 5))
>>> op.shape
(60, 60)
>>> x = np.arange(60.0).reshape(3, 4, 5)
>>> bool(np.array_equal(op.forward(x), x))
True
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator

from theory.conv import AUTO_DENSE_LIMIT, DENSE_LIMIT, ConvLayer, as_tensor, normalising_exponent

if TYPE_CHECKING:  # pragma: no cover
    from theory.fft import CirculantPlan
    from theory.frames import FrameBounds

#: Dense matrices up to this many bytes are kept by the operator once built.
DENSE_CACHE_BYTES = 64 * 2 ** 20
#: A dense matrix (with the identity it is built from) larger than this is refused even
#: with `force=True`: the request names the size instead of exhausting memory.
DENSE_MAX_BYTES = 2 * 2 ** 30


class ConvOperator:
    """A `theory.ConvLayer` bound to inputs of shape `(C, H, W)`.

    Build it with `layer.at(input_shape)`. Vectors are flattened `(C, H, W)` arrays
    (inputs, `D` values) and `(K, H', W')` arrays (outputs, `M` values).

    Attributes
    ----------
    layer : ConvLayer
    input_shape : (C, H, W)
    output_shape : (K, H', W')
    shape : (M, D)

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> rng = np.random.default_rng(0)
    >>> op = ConvLayer(rng.standard_normal((4, 2, 3, 3)), stride=2, padding=1).at((2, 8, 8))
    >>> op.input_shape, op.output_shape, op.shape
    ((2, 8, 8), (4, 4, 4), (64, 128))
    >>> fb = op.frame_bounds()                # certificate of injectivity (dense SVD here)
    >>> fb.method, fb.injective              # 64 equations for 128 unknowns
    ('dense', False)
    """

    def __init__(self, layer: ConvLayer, input_shape: tuple[int, ...]):
        if not isinstance(layer, ConvLayer):
            raise TypeError(f"layer must be a theory.ConvLayer, got {type(layer).__name__}")
        self.layer = layer
        self.input_shape = layer._validate_shape(tuple(input_shape))
        _, h, w = self.input_shape
        self.output_shape = (layer.out_channels, *layer._output_size(h, w))
        self.shape = (int(np.prod(self.output_shape)), int(np.prod(self.input_shape)))
        self._dense: np.ndarray | None = None
        self._bounds: dict = {}

    # ------------------------------------------------------------------ facts
    @property
    def m(self) -> int:
        """Number of outputs `M = K H' W'`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> ConvLayer(np.ones((4, 3, 3, 3))).at((3, 6, 6)).m      # 4 * 4 * 4
        64
        """
        return self.shape[0]

    @property
    def d(self) -> int:
        """Number of inputs `D = C H W`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> ConvLayer(np.ones((4, 3, 3, 3))).at((3, 6, 6)).d      # 3 * 6 * 6
        108
        """
        return self.shape[1]

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of the layer's weights (the operator's dtype).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> ConvLayer(np.ones((1, 1, 3, 3), dtype=np.float32)).at((1, 4, 4)).dtype
        dtype('float32')
        """
        return torch.empty((), dtype=self.layer.dtype).numpy().dtype

    @property
    def is_circulant(self) -> bool:
        """Circular padding, stride 1 and output size equal to input size (FFT applies).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> w = np.ones((4, 1, 3, 3))
        >>> ConvLayer(w, padding=1, padding_mode="circular").at((1, 8, 8)).is_circulant
        True
        >>> ConvLayer(w, padding_mode="circular").at((1, 8, 8)).is_circulant   # output 6x6
        False
        """
        return (self.layer.padding_mode == "circular" and self.layer.stride == (1, 1)
                and self.output_shape[1:] == self.input_shape[1:])

    # ------------------------------------------------------------------ maps
    def forward(self, x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """$Ax$ for `(C, H, W)` or `(N, C, H, W)`; numpy in, numpy out.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> op = ConvLayer(np.ones((1, 1, 2, 2))).at((1, 3, 3))
        >>> op.forward(np.ones((1, 3, 3)))
        array([[[4., 4.],
                [4., 4.]]])
        >>> op.forward(np.ones((4, 1, 3, 3))).shape                       # a batch
        (4, 1, 2, 2)
        """
        is_np = isinstance(x, np.ndarray)
        t = as_tensor(x, "x")
        if t.ndim not in (3, 4) or tuple(t.shape[-3:]) != self.input_shape:
            raise ValueError(f"x must be {self.input_shape} or (N, *{self.input_shape}), "
                             f"got shape {tuple(t.shape)}")
        y = self.layer._apply(t.reshape(-1, *self.input_shape).to(self.layer.dtype))
        y = y.reshape(*t.shape[:-3], *y.shape[1:])
        return y.numpy() if is_np else y

    def adjoint(self, y: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """$A^T y$ for `(K, H', W')` or `(N, K, H', W')`; numpy in, numpy out.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> op = ConvLayer(np.ones((1, 1, 2, 2))).at((1, 3, 3))
        >>> op.adjoint(np.ones((1, 2, 2)))[0]          # how many windows cover each pixel
        array([[1., 2., 1.],
               [2., 4., 2.],
               [1., 2., 1.]])
        >>> a = op.dense()
        >>> bool(np.array_equal(op.adjoint(np.ones((1, 2, 2))).ravel(), a.T @ np.ones(4)))
        True
        """
        is_np = isinstance(y, np.ndarray)
        t = as_tensor(y, "y")
        if tuple(t.shape[-3:]) != self.output_shape or t.ndim not in (3, 4):
            raise ValueError(f"y must end in the output shape {self.output_shape}, "
                             f"got {tuple(t.shape)}")
        x = self.layer._apply_adjoint(t.reshape(-1, *self.output_shape).to(self.layer.dtype),
                                      self.input_shape)
        x = x.reshape(*t.shape[:-3], *self.input_shape)
        return x.numpy() if is_np else x

    @functools.cached_property
    def linear_operator(self) -> LinearOperator:
        """The scipy `LinearOperator` (`matvec`: conv2d; `rmatvec`: its exact adjoint).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> rng = np.random.default_rng(0)
        >>> op = ConvLayer(rng.standard_normal((8, 1, 3, 3)), padding=1).at((1, 4, 4))
        >>> A = op.linear_operator                # what scipy's solvers (lsmr, eigsh, ...) take
        >>> A.shape, A.dtype
        ((128, 16), dtype('float64'))
        >>> X, y = rng.standard_normal((16, 3)), rng.standard_normal(128)
        >>> bool(np.allclose(A.matmat(X), op.dense() @ X))
        True
        >>> bool(np.allclose(A.rmatvec(y), op.dense().T @ y))   # the exact adjoint
        True
        """
        layer, shape, out_shape = self.layer, self.input_shape, self.output_shape
        m, d = self.shape
        np_dtype = self.dtype

        def matmat(X: np.ndarray) -> np.ndarray:
            xb = torch.from_numpy(np.ascontiguousarray(X.T, dtype=np_dtype)).reshape(-1, *shape)
            return layer._apply(xb).reshape(X.shape[1], m).numpy().T

        def rmatmat(Y: np.ndarray) -> np.ndarray:
            yb = torch.from_numpy(np.ascontiguousarray(Y.T, dtype=np_dtype)).reshape(-1, *out_shape)
            return layer._apply_adjoint(yb, shape).reshape(Y.shape[1], d).numpy().T

        return LinearOperator(
            (m, d), dtype=np_dtype,
            matvec=lambda v: matmat(np.asarray(v).reshape(d, 1)).ravel(),
            rmatvec=lambda v: rmatmat(np.asarray(v).reshape(m, 1)).ravel(),
            matmat=matmat, rmatmat=rmatmat,
        )

    def gram_operator(self) -> LinearOperator:
        """$A^T A$ as a symmetric `D x D` LinearOperator in float64.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> rng = np.random.default_rng(0)
        >>> op = ConvLayer(rng.standard_normal((4, 1, 3, 3)), padding=1).at((1, 5, 5))
        >>> G = op.gram_operator()
        >>> a = op.dense()
        >>> v = rng.standard_normal(25)
        >>> G.shape, bool(np.allclose(G.matvec(v), a.T @ (a @ v)))
        ((25, 25), True)
        """
        op = self.linear_operator
        d = self.d

        def mv(v):
            return op.rmatvec(op.matvec(v)).astype(np.float64)

        return LinearOperator((d, d), matvec=mv, rmatvec=mv, dtype=np.float64)

    def dense(self, force: bool = False) -> np.ndarray:
        """The `M x D` matrix (columns = responses to unit inputs), read-only.

        Refuses inputs with more than `DENSE_LIMIT` values unless `force=True`, and
        (`MemoryError`, naming the size) any matrix above `DENSE_MAX_BYTES`. Kept once
        built when it takes at most `DENSE_CACHE_BYTES`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> op = ConvLayer(np.ones((2, 1, 2, 2))).at((1, 3, 3))
        >>> a = op.dense()
        >>> a.shape, a.flags.writeable
        ((8, 9), False)
        >>> a[0].reshape(3, 3)                    # the first filter at the first position
        array([[1., 1., 0.],
               [1., 1., 0.],
               [0., 0., 0.]])
        >>> big = ConvLayer(np.ones((1, 1, 3, 3))).at((1, 80, 80))
        >>> try:
        ...     big.dense()
        ... except ValueError as err:
        ...     print(str(err).split(";")[0])
        a dense matrix for input (1, 80, 80) has 6400 columns (> 4096)
        """
        if self._dense is not None:
            return self._dense
        d = self.d
        if d > DENSE_LIMIT and not force:
            raise ValueError(
                f"a dense matrix for input {self.input_shape} has {d} columns (> {DENSE_LIMIT}); "
                "use the LinearOperator, or pass force=True"
            )
        self.check_dense_size()
        eye = torch.eye(d, dtype=self.layer.dtype).reshape(d, *self.input_shape)
        a = self.layer._apply(eye).reshape(d, -1).numpy().T.copy()
        a.setflags(write=False)
        if a.nbytes <= DENSE_CACHE_BYTES:
            self._dense = a
        return a

    def check_dense_size(self) -> None:
        """`MemoryError` naming the size when the dense matrix would exceed
        `DENSE_MAX_BYTES`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> ConvLayer(np.ones((1, 1, 3, 3))).at((1, 16, 16)).check_dense_size()   # fine: silent
        >>> huge = ConvLayer(np.ones((64, 3, 3, 3)), padding=1).at((3, 128, 128))
        >>> try:
        ...     huge.check_dense_size()
        ... except MemoryError as err:
        ...     print(str(err).split(" GiB")[0] + " GiB")
        a dense matrix for input (3, 128, 128) needs 402.0 GiB
        """
        d = self.d
        need = (self.m + d) * d * np.dtype(self.dtype).itemsize
        if need > DENSE_MAX_BYTES:
            raise MemoryError(
                f"a dense matrix for input {self.input_shape} needs {need / 2 ** 30:.1f} GiB "
                f"({self.m} x {d} values and the {d} x {d} identity it is built from), more "
                f"than theory.operator.DENSE_MAX_BYTES = {DENSE_MAX_BYTES / 2 ** 30:.0f} GiB; "
                "use an iterative solver or method (lsmr, iterative) on this input")

    @functools.cached_property
    def plan(self) -> "CirculantPlan":
        """The FFT plan (`theory.fft.CirculantPlan`); circulant layers only.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> rng = np.random.default_rng(0)
        >>> op = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1,
        ...                padding_mode="circular").at((2, 8, 8))
        >>> op.plan.freq_shape                    # the rfft2 half-plane of an 8x8 grid
        (8, 5)
        >>> op.plan is op.plan                    # built once
        True
        """
        from theory.fft import CirculantPlan

        return CirculantPlan(self)

    # ------------------------------------------------------------------ frame bounds
    #: The `theory.frame_bounds` methods that apply to conv operators.
    bounds_methods = ("fft", "dense", "dense-gram", "iterative", "polyphase", "tiles")
    gram_name = "A^T A"

    @property
    def max_abs(self) -> float:
        """The largest absolute entry of the operator (the largest absolute weight).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> ConvLayer(np.array([[[[0.5, -3.0]]]])).at((1, 2, 2)).max_abs
        3.0
        """
        return self.layer.max_abs

    def scaled(self, factor: float) -> "ConvOperator":
        """`factor * A` (the layer with scaled weights, bound to the same shape).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> op = ConvLayer(np.ones((2, 1, 3, 3)), padding=1).at((1, 5, 5))
        >>> twice = op.scaled(2.0)
        >>> twice.input_shape, twice.max_abs
        ((1, 5, 5), 2.0)
        >>> bool(np.array_equal(twice.dense(), 2 * op.dense()))
        True
        """
        return self.layer.scaled(factor).at(self.input_shape)

    @functools.cached_property
    def normalised(self) -> tuple[int, "ConvOperator"]:
        """`(e, 2^e A)` with `2^e max|w|` near 1 when the weights are far from unit scale
        (`e = 0` and `self` otherwise; `theory.conv.normalising_exponent`).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> op = ConvLayer(np.full((2, 1, 3, 3), 2.0 ** -100), padding=1).at((1, 5, 5))
        >>> e, unit = op.normalised
        >>> e, unit.max_abs                       # 2^100 * 2^-100 = 1: squares no longer underflow
        (100, 1.0)
        >>> ConvLayer(np.ones((2, 1, 3, 3))).at((1, 5, 5)).normalised[0]   # unit scale: e = 0
        0
        """
        e = normalising_exponent(self.max_abs)
        return (e, self.scaled(float(np.ldexp(1.0, e)))) if e else (0, self)

    def auto_bounds_method(self) -> str:
        """`fft` when circulant, `polyphase` for other circular layers; zero padding:
        `dense` up to `AUTO_DENSE_LIMIT` inputs, else `tiles` (all certified methods).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> w = np.ones((4, 1, 3, 3))
        >>> ConvLayer(w, padding=1, padding_mode="circular").at((1, 8, 8)).auto_bounds_method()
        'fft'
        >>> ConvLayer(w, padding=1).at((1, 8, 8)).auto_bounds_method()
        'dense'
        >>> ConvLayer(w, padding=1).at((1, 64, 64)).auto_bounds_method()
        'tiles'
        >>> ConvLayer(w, stride=2, padding=1, padding_mode="circular").at((1, 8, 8)
        ...           ).auto_bounds_method()
        'polyphase'
        """
        if self.is_circulant:
            return "fft"
        if self.layer.padding_mode == "circular":
            return "polyphase"
        return "dense" if self.d <= AUTO_DENSE_LIMIT else "tiles"

    def frame_bounds(self, method: str = "auto", **kwargs) -> "FrameBounds":
        """`theory.frame_bounds` of this operator (cached per method and options).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> rng = np.random.default_rng(0)
        >>> op = ConvLayer(rng.standard_normal((4, 1, 3, 3)), padding=1).at((1, 6, 6))
        >>> fb = op.frame_bounds()                # auto: dense SVD for this small input
        >>> s = np.linalg.svd(op.dense(), compute_uv=False)     # oracle
        >>> fb.method, bool(np.isclose(fb.lower, s[-1] ** 2)), bool(np.isclose(fb.upper, s[0] ** 2))
        ('dense', True, True)
        >>> op.frame_bounds() is fb               # cached per method and options
        True
        """
        from theory.frames import frame_bounds

        key = (method, tuple(sorted(kwargs.items())))
        if key not in self._bounds:
            self._bounds[key] = frame_bounds(self, method=method, **kwargs)
        return self._bounds[key]

    def __repr__(self) -> str:
        return f"ConvOperator({self.layer!r} on {self.input_shape} -> {self.output_shape})"
