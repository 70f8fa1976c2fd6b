"""Frame bounds of a conv layer: the certificate of injectivity.

Notes
-----
The shifted filters (rows of :math:`A`) form a frame for :math:`\\mathbb{R}^D` when

.. math::

    a\\,\\|x\\|^2 \\le \\|A x\\|^2 \\le b\\,\\|x\\|^2 \\quad \\forall x, \\qquad
    a = \\sigma_{\\min}(A)^2 > 0, \\; b = \\sigma_{\\max}(A)^2 .

:math:`a > 0` is equivalent to injectivity of :math:`A`, hence (Proposition 2.1) to exact
recovery of :math:`x` from :math:`\\operatorname{CReLU}(Ax)`. Three methods:

``fft``
    exact: every frequency's :math:`K \\times C` matrix (circular padding, stride 1).
``dense``
    exact: SVD of the dense :math:`M \\times D` matrix (tiny inputs only).
``iterative``
    Lanczos (``scipy.sparse.linalg.eigsh``) on :math:`A^T A`. The largest Ritz value is a
    lower estimate of :math:`b`, the smallest Ritz value an *upper* estimate of :math:`a`;
    with the Ritz residual :math:`r`, an eigenvalue of :math:`A^TA` lies within
    :math:`\\|r\\|` of each Ritz value. ``exact`` is ``False``: it is an estimate, not a
    certificate.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Literal, Sequence

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from theory.conv import AUTO_DENSE_LIMIT, ConvLayer

Method = Literal["auto", "fft", "dense", "iterative"]
_EPS = float(np.finfo(np.float64).eps)


@dataclasses.dataclass(frozen=True)
class FrameBounds:
    """Frame bounds ``(lower, upper, exact)`` of a layer; unpacks as that 3-tuple.

    Attributes
    ----------
    lower : float
        :math:`a = \\sigma_{\\min}^2` (0 for a layer with fewer outputs than inputs).
    upper : float
        :math:`b = \\sigma_{\\max}^2`.
    exact : bool
        True for the ``fft`` and ``dense`` methods (to rounding), False for ``iterative``.
    method : str
    rtol : float
        Relative threshold on :math:`\\sigma_{\\min}/\\sigma_{\\max}` below which the layer is
        declared non-injective (numerical rank convention ``max(M, D) * eps`` for exact
        methods; the eigensolver tolerance for the iterative one).
    residual : float
        For ``iterative``: the largest Ritz residual norm (an eigenvalue of :math:`A^TA` lies
        within it of each reported bound); 0 for exact methods.
    """

    lower: float
    upper: float
    exact: bool
    method: str = "dense"
    rtol: float = 0.0
    residual: float = 0.0

    def __iter__(self) -> Iterator:
        return iter((self.lower, self.upper, self.exact))

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i):
        return (self.lower, self.upper, self.exact)[i]

    @property
    def sigma_min(self) -> float:
        return float(np.sqrt(max(self.lower, 0.0)))

    @property
    def sigma_max(self) -> float:
        return float(np.sqrt(max(self.upper, 0.0)))

    @property
    def injective(self) -> bool:
        """Whether :math:`\\sigma_{\\min} > \\text{rtol}\\cdot\\sigma_{\\max}`."""
        return self.sigma_min > self.rtol * self.sigma_max and self.upper > 0

    @property
    def cond(self) -> float:
        """:math:`\\sqrt{b/a}`, ``inf`` for a non-injective layer."""
        return self.sigma_max / self.sigma_min if self.injective else float("inf")

    def as_dict(self) -> dict:
        return {"lower": self.lower, "upper": self.upper, "exact": self.exact,
                "method": self.method, "injective": self.injective, "cond": self.cond,
                "residual": self.residual}


def frame_bounds(layer: ConvLayer, input_shape: Sequence[int], method: Method = "auto", *,
                 tol: float = 1e-10, maxiter: int | None = None) -> FrameBounds:
    """Lower and upper frame bounds of the shifted filters of ``layer`` on ``input_shape``.

    Parameters
    ----------
    layer : ConvLayer
    input_shape : (C, H, W)
    method : {"auto", "fft", "dense", "iterative"}
        ``auto``: ``fft`` when the layer is circulant, else ``dense`` when the input has at
        most ``AUTO_DENSE_LIMIT`` values, else ``iterative``.
    tol, maxiter : passed to ``eigsh`` for the iterative method.

    Returns
    -------
    FrameBounds
        Unpacks as ``(lower, upper, exact)``.
    """
    if not isinstance(layer, ConvLayer):
        raise TypeError(f"layer must be a theory.ConvLayer, got {type(layer).__name__}")
    shape = layer.check_input_shape(input_shape)
    d = int(np.prod(shape))
    m = int(np.prod(layer.output_shape(shape)))
    if method == "auto":
        method = ("fft" if layer.is_circulant(shape)
                  else "dense" if d <= AUTO_DENSE_LIMIT else "iterative")
    if method == "fft":
        plan = layer.fft_plan(shape)
        return FrameBounds(plan.sigma_min ** 2, plan.sigma_max ** 2, True, "fft", plan.rtol)
    if method == "dense":
        s = np.linalg.svd(layer.dense(shape, force=True).astype(np.float64), compute_uv=False)
        smin = float(s[-1]) if m >= d else 0.0
        return FrameBounds(smin ** 2, float(s[0]) ** 2, True, "dense", max(m, d) * _EPS)
    if method == "iterative":
        return _iterative(layer, shape, tol, maxiter, m, d)
    raise ValueError(f"unknown method {method!r}; expected auto, fft, dense or iterative")


def gram_operator(layer: ConvLayer, input_shape: Sequence[int]) -> LinearOperator:
    """:math:`A^T A` as a symmetric LinearOperator in float64."""
    op = layer.operator(input_shape)
    d = op.shape[1]

    def mv(v):
        return op.rmatvec(op.matvec(v)).astype(np.float64)

    return LinearOperator((d, d), matvec=mv, rmatvec=mv, dtype=np.float64)


def _iterative(layer, shape, tol, maxiter, m, d) -> FrameBounds:
    if d < 8:  # ARPACK needs k < d - 1 and a Krylov space; tiny problems are solved exactly
        return frame_bounds(layer, shape, "dense")
    gram = gram_operator(layer, shape)
    rng = np.random.default_rng(0)  # fixed start vector: reproducible estimates
    v0 = rng.standard_normal(d)
    ncv = min(d, 40)
    big, vbig = eigsh(gram, k=1, which="LA", tol=tol, maxiter=maxiter, v0=v0, ncv=ncv)
    if m < d:
        lower, vsmall, small = 0.0, None, None
    else:
        try:
            small, vsmall = eigsh(gram, k=1, which="SA", tol=tol, maxiter=maxiter, v0=v0, ncv=ncv)
        except ArpackNoConvergence as exc:
            if len(exc.eigenvalues) == 0:
                raise RuntimeError(
                    "the smallest eigenvalue of A^T A did not converge; raise maxiter or use "
                    "method='dense' on a smaller input") from exc
            small, vsmall = exc.eigenvalues, exc.eigenvectors
        lower = max(float(small[0]), 0.0)
    res = [float(np.linalg.norm(gram.matvec(vbig[:, 0]) - big[0] * vbig[:, 0]))]
    if vsmall is not None:
        res.append(float(np.linalg.norm(gram.matvec(vsmall[:, 0]) - small[0] * vsmall[:, 0])))
    upper = float(big[0])
    # relative accuracy of a Ritz value ~ tol; sigma_min/sigma_max resolvable to ~sqrt(tol)
    return FrameBounds(lower, upper, False, "iterative", float(np.sqrt(max(tol, _EPS))),
                       max(res))
