"""Exact inversion of conv + CReLU (Proposition 2.1).

Notes
-----
For :math:`h = \\operatorname{CReLU}(Ax)`, the pre-activation is recovered exactly,
:math:`z = h_+ - h_- = Ax`, and then

.. math::

    x' = A^+ z = P_{\\operatorname{range}(A^T)}\\, x ,

the minimum-norm least-squares solution. :math:`x' = x` for every :math:`x` iff :math:`A` is
injective (lower frame bound :math:`a > 0`). When it is not, the returned ``x`` is the
orthogonal projection of the true input onto the row space of :math:`A`; the result says so
(``injective=False``) and a :class:`NonInjectiveWarning` is issued (or
:class:`NonInjectiveError` raised with ``on_non_injective="raise"``).
"""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from scipy.sparse.linalg import lsmr

from theory.activations import crelu_preactivation
from theory.conv import AUTO_DENSE_LIMIT, ConvLayer, as_tensor
from theory.frames import FrameBounds, frame_bounds

Method = Literal["auto", "fft", "lsmr", "dense"]


class NonInjectiveWarning(UserWarning):
    """The layer is not injective: the inverse returned is the projection onto its row space."""


class NonInjectiveError(ValueError):
    """Raised instead of the warning when ``on_non_injective="raise"``."""


@dataclasses.dataclass
class InversionResult:
    """What :func:`invert_crelu` returns.

    Attributes
    ----------
    x : numpy.ndarray
        The reconstruction, shape ``(C, H, W)`` or ``(N, C, H, W)`` like the features. For a
        non-injective layer: the minimum-norm solution, i.e. the projection of the true input
        onto the row space of :math:`A`.
    z : numpy.ndarray
        The recovered pre-activation :math:`h_+ - h_-`.
    relative_residual : float
        :math:`\\|A x - z\\| / \\|z\\|` (over the whole batch), computed lazily on first access.
    method : str
    iterations : int
        LSMR iterations (maximum over the batch); 0 for ``fft`` and ``dense``.
    frame_bounds : FrameBounds or None
        ``None`` only if ``certify=False`` was asked for.
    injective : bool or None
    stopping : dict
        The stopping rule and why the solver stopped (LSMR: ``atol``, ``btol``, ``maxiter``,
        ``istop`` and its meaning).
    seconds : float
    """

    x: np.ndarray
    z: np.ndarray
    method: str
    iterations: int
    frame_bounds: FrameBounds | None
    injective: bool | None
    stopping: dict[str, Any]
    seconds: float
    _residual: Callable[[], float] = dataclasses.field(repr=False, compare=False)

    @functools.cached_property
    def relative_residual(self) -> float:
        """:math:`\\|A x - z\\| / \\|z\\|` over the batch, computed on first access.

        For ``fft`` it comes from the residual spectrum (Parseval), otherwise from one more
        forward convolution; it is not part of the timed inversion.
        """
        return self._residual()

    def error_bound(self) -> float:
        """A-posteriori bound on ``||x - x_true|| / ||x_true||`` for an injective layer.

        Notes
        -----
        With :math:`r = Ax - z` and :math:`z = A x_{\\rm true}`:
        :math:`\\|x - x_{\\rm true}\\| \\le \\|r\\|/\\sigma_{\\min}` and
        :math:`\\|x_{\\rm true}\\| \\ge \\|z\\|/\\sigma_{\\max}`, so the relative error is at most
        ``cond * relative_residual``.
        """
        if self.frame_bounds is None or not self.frame_bounds.injective:
            return float("inf")
        return self.frame_bounds.cond * self.relative_residual


def recovery_tolerance(layer: ConvLayer, bounds: FrameBounds) -> float:
    r"""Relative-error tolerance ``c * cond * eps`` for an exact (``fft``/``dense``) inverse.

    Notes
    -----
    The features are computed in float64 by ``conv2d``: each pre-activation is a dot product
    of length :math:`n = C k_h k_w`, and the solve combines :math:`K` channels per frequency.
    With the probabilistic rounding-error analysis of Higham and Mary (SIAM J. Sci. Comput.
    2019), backward errors of such sums grow like :math:`\lambda\sqrt{n}\,u`; a
    backward-stable least-squares solve turns a backward error :math:`\delta` into a forward
    relative error of at most about :math:`\operatorname{cond}(A)\,\delta`. We use

    .. math:: \text{tol} = \lambda\, \sqrt{C k_h k_w K}\; \operatorname{cond}(A)\; u,
              \qquad \lambda = 4,\; u = 2^{-52}.

    ``inf`` for a non-injective layer (no finite relative error bound exists).
    """
    if not bounds.injective:
        return float("inf")
    c, (kh, kw), k = layer.in_channels, layer.kernel_size, layer.out_channels
    return 4.0 * float(np.sqrt(c * kh * kw * k)) * bounds.cond * float(np.finfo(np.float64).eps)


#: scipy's lsmr ``istop`` codes and their meaning (reported in ``stopping``).
LSMR_REASONS = {
    0: "x = 0 is the exact solution",
    1: "Ax - b is small enough, given atol, btol",
    2: "the least-squares solution is good enough, given atol",
    3: "the estimate of cond(A) exceeded conlim",
    4: "Ax - b is small enough for this machine",
    5: "the least-squares solution is good enough for this machine",
    6: "cond(A) seems too large for this machine",
    7: "the iteration limit was reached",
}


def invert_crelu(
    features: np.ndarray | torch.Tensor,
    layer: ConvLayer,
    input_shape: Sequence[int],
    method: Method = "auto",
    *,
    atol: float = 1e-12,
    btol: float = 1e-12,
    maxiter: int | None = None,
    certify: bool = True,
    bounds: FrameBounds | None = None,
    on_non_injective: Literal["warn", "raise", "ignore"] = "warn",
) -> InversionResult:
    """Reconstruct the input of ``CReLU(layer(x))`` from its features.

    Parameters
    ----------
    features : array, shape (2K, H', W') or (N, 2K, H', W')
        CReLU features: positive half first, then negative half (``theory.crelu``).
    layer : ConvLayer
        The layer that produced the pre-activation (without bias).
    input_shape : (C, H, W)
    method : {"auto", "fft", "lsmr", "dense"}
        ``fft``: exact least squares per frequency (circular, stride 1). ``dense``: numpy
        least squares on the dense matrix (tiny inputs). ``lsmr``: scipy's LSMR on the
        LinearOperator (any stride, padding), started at 0 so it converges to the
        minimum-norm solution. ``auto``: ``fft`` if possible, else ``dense`` if the input has
        at most ``AUTO_DENSE_LIMIT`` values, else ``lsmr``.
    atol, btol, maxiter : LSMR stopping rule (see ``scipy.sparse.linalg.lsmr``); reported.
    certify : bool
        Compute the frame bounds (the injectivity certificate) with ``frame_bounds``.
    bounds : FrameBounds, optional
        Precomputed frame bounds (skips the certificate computation).
    on_non_injective : {"warn", "raise", "ignore"}

    Returns
    -------
    InversionResult

    Raises
    ------
    ValueError
        Odd channel count, wrong channel count or spatial shape, NaN/Inf, empty input,
        negative entries (CReLU features are non-negative), unknown method.
    NonInjectiveError
        With ``on_non_injective="raise"`` when the certificate says the layer is not injective.
    """
    t0 = time.perf_counter()
    if not isinstance(layer, ConvLayer):
        raise TypeError(f"layer must be a theory.ConvLayer, got {type(layer).__name__}")
    if method not in ("auto", "fft", "lsmr", "dense"):
        raise ValueError(f"unknown method {method!r}; expected auto, fft, lsmr or dense")
    if on_non_injective not in ("warn", "raise", "ignore"):
        raise ValueError(f"on_non_injective must be warn, raise or ignore, got {on_non_injective!r}")
    h = as_tensor(features, "features", dtype=torch.float64).detach().numpy()
    if h.ndim not in (3, 4):
        raise ValueError(f"features must be (2K, H', W') or (N, 2K, H', W'), got shape {h.shape}")
    shape = layer.check_input_shape(input_shape)
    out_shape = layer.output_shape(shape)
    k = layer.out_channels
    if h.shape[-3] % 2:
        raise ValueError(f"CReLU features need an even channel count, got {h.shape[-3]}")
    if h.shape[-3] != 2 * k:
        raise ValueError(
            f"features have {h.shape[-3]} channels; CReLU of this layer has 2*{k} = {2 * k}")
    if tuple(h.shape[-2:]) != out_shape[1:]:
        raise ValueError(f"features are {h.shape[-2]}x{h.shape[-1]} spatially, but the layer "
                         f"maps {shape} to {out_shape[1]}x{out_shape[2]}")
    if (h < 0).any():
        raise ValueError(f"features contain {int((h < 0).sum())} negative value(s); CReLU "
                         "features are non-negative (positive half, then negative half)")
    z = crelu_preactivation(h, axis=h.ndim - 3)

    if method == "auto":
        d = int(np.prod(shape))
        method = ("fft" if layer.is_circulant(shape)
                  else "dense" if d <= AUTO_DENSE_LIMIT else "lsmr")
    if bounds is None and certify:
        bounds = frame_bounds(layer, shape, "fft" if method == "fft" else "auto")

    injective = None if bounds is None else bounds.injective
    if injective is False:
        msg = (f"{layer!r} is not injective on inputs of shape {shape}: lower frame bound "
               f"{bounds.lower:.3e} (upper {bounds.upper:.3e}, method {bounds.method}); "
               "the result is the projection of the input onto the row space of A")
        if on_non_injective == "raise":
            raise NonInjectiveError(msg)
        if on_non_injective == "warn":
            warnings.warn(msg, NonInjectiveWarning, stacklevel=2)

    zb = z.reshape(-1, *out_shape)
    iterations, stopping = 0, {}
    residual_fn = None
    if method == "fft":
        plan = layer.fft_plan(shape)
        x = plan.solve(zb)
        stopping = {"solver": "per-frequency pseudo-inverse (Gram or SVD per frequency)",
                    "rtol": plan.rtol, "svd_frequencies": plan.svd_frequencies}

        def residual_fn():
            return plan.residual_norm(x, zb)
    elif method == "dense":
        a = layer.dense(shape, force=True).astype(np.float64)
        sol, *_ = np.linalg.lstsq(a, zb.reshape(len(zb), -1).T, rcond=None)
        x = sol.T.reshape(-1, *shape)
        stopping = {"solver": "numpy.linalg.lstsq (SVD, minimum norm)"}
    else:  # lsmr
        op = layer.operator(shape)
        if op.dtype != np.float64:
            raise ValueError("method='lsmr' needs float64 weights for a theorem-grade inverse; "
                             f"got {layer.dtype} (cast the weight with .double())")
        xs, reasons = [], []
        for zi in zb:
            out = lsmr(op, zi.ravel(), atol=atol, btol=btol, maxiter=maxiter)
            xs.append(out[0])
            iterations = max(iterations, int(out[2]))
            reasons.append(int(out[1]))
        x = np.stack(xs).reshape(-1, *shape)
        worst = max(reasons)
        stopping = {"solver": "scipy.sparse.linalg.lsmr", "atol": atol, "btol": btol,
                    "maxiter": maxiter, "istop": worst, "reason": LSMR_REASONS.get(worst, "?")}

    xb = x
    if residual_fn is None:
        def residual_fn():
            return float(np.linalg.norm(np.asarray(layer.forward(xb)) - zb))

    def relative_residual() -> float:
        znorm = float(np.linalg.norm(zb))
        res = residual_fn()
        return res / znorm if znorm > 0 else res

    x = x.reshape(*h.shape[:-3], *shape)
    return InversionResult(x=x, z=z, method=method, iterations=iterations, frame_bounds=bounds,
                           injective=injective, stopping=stopping,
                           seconds=time.perf_counter() - t0, _residual=relative_residual)
