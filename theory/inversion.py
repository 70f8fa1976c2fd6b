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
import time
import warnings
from typing import Literal, Sequence

import numpy as np
import torch

from theory.activations import crelu_preactivation
from theory.conv import AUTO_DENSE_LIMIT, ConvLayer, as_tensor
from theory.frames import FrameBounds
from theory.operator import ConvOperator
from theory.results import InversionBatch, InversionResult
from theory.solvers import LSMR_REASONS, solve_dense, solve_fft, solve_lsmr

Solver = Literal["auto", "fft", "lsmr", "dense"]
#: Deprecated name of :data:`Solver`.
Method = Solver


class NonInjectiveWarning(UserWarning):
    """The layer is not injective: the inverse returned is the projection onto its row space."""


class NonInjectiveError(ValueError):
    """Raised instead of the warning when ``on_non_injective="raise"``."""


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



def _bound_operator(layer, input_shape) -> ConvOperator:
    """``layer.at(input_shape)``, or a ConvOperator as given (its shape must agree)."""
    if isinstance(layer, ConvOperator):
        if input_shape is not None and tuple(int(s) for s in input_shape) != layer.input_shape:
            raise ValueError(f"input_shape {tuple(input_shape)} differs from the operator's "
                             f"{layer.input_shape}")
        return layer
    if not isinstance(layer, ConvLayer):
        raise TypeError(f"layer must be a theory.ConvLayer, got {type(layer).__name__}")
    if input_shape is None:
        raise TypeError("invert_crelu(features, layer, input_shape): the input shape is needed "
                        "(or pass layer.at(input_shape))")
    return layer.at(input_shape)


def _renamed(new_value, old_value, old: str, new: str, default):
    """Accept a deprecated keyword ``old`` for ``new`` (with a DeprecationWarning)."""
    if old_value is None:
        return new_value
    warnings.warn(f"the keyword {old!r} is deprecated; use {new!r}", DeprecationWarning,
                  stacklevel=3)
    if new_value != default and new_value != old_value:
        raise TypeError(f"got both {old}={old_value!r} and {new}={new_value!r}")
    return old_value


def warn_non_injective(msg: str, on_non_injective: str) -> None:
    """Raise :class:`NonInjectiveError` or warn with :class:`NonInjectiveWarning`."""
    if on_non_injective == "raise":
        raise NonInjectiveError(msg)
    if on_non_injective == "warn":
        warnings.warn(msg, NonInjectiveWarning, stacklevel=3)


def check_choice(value, name: str, choices: Sequence[str]) -> None:
    """A clear ValueError when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(choices)}")


def invert_crelu(
    features: np.ndarray | torch.Tensor,
    layer: ConvLayer | ConvOperator,
    input_shape: Sequence[int] | None = None,
    solver: Solver = "auto",
    *,
    atol: float = 1e-12,
    btol: float = 1e-12,
    maxiter: int | None = None,
    certify: bool | str = True,
    bounds: FrameBounds | None = None,
    on_non_injective: Literal["warn", "raise", "ignore"] = "warn",
    method: Solver | None = None,
) -> InversionResult | InversionBatch:
    """Reconstruct the input of ``CReLU(layer(x))`` from its features.

    Parameters
    ----------
    features : array, shape (2K, H', W') or (N, 2K, H', W')
        CReLU features: positive half first, then negative half (``theory.crelu``).
    layer : ConvLayer or ConvOperator
        The layer that produced the pre-activation (without bias), or ``layer.at(shape)``.
    input_shape : (C, H, W)
        Needed with a ConvLayer; a ConvOperator carries its own.
    solver : {"auto", "fft", "lsmr", "dense"}
        ``fft``: exact least squares per frequency (circulant layers). ``dense``: numpy
        least squares on the dense matrix (small inputs). ``lsmr``: scipy's LSMR on the
        LinearOperator (any stride, padding), started at 0 so it converges to the
        minimum-norm solution. ``auto``: ``fft`` if possible, else ``dense`` if the input has
        at most ``AUTO_DENSE_LIMIT`` values, else ``lsmr``.
    atol, btol, maxiter : LSMR stopping rule (see ``scipy.sparse.linalg.lsmr``); reported.
    certify : bool or str
        Compute the frame bounds (the injectivity certificate) with :func:`frame_bounds`:
        ``True`` picks the method (``fft`` for the fft solver, else ``auto``), a string names
        it, ``False`` skips the certificate.
    bounds : FrameBounds, optional
        Precomputed frame bounds (skips the certificate computation).
    on_non_injective : {"warn", "raise", "ignore"}
    method : deprecated name of ``solver``.

    Returns
    -------
    InversionResult
        For one input; an :class:`InversionBatch` (one result per input) for a batch.

    Raises
    ------
    ValueError
        Odd channel count, wrong channel count or spatial shape, NaN/Inf, empty input,
        negative entries (CReLU features are non-negative), unknown solver.
    NonInjectiveError
        With ``on_non_injective="raise"`` when the certificate says the layer is not injective.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, crelu_features, invert_crelu
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((8, 1, 3, 3)), padding=1,
    ...                   padding_mode="circular")
    >>> x = np.random.default_rng(1).random((1, 16, 16))
    >>> res = invert_crelu(crelu_features(x, layer), layer, x.shape)
    >>> res.solver, res.injective, bool(np.abs(res.x - x).max() < 1e-12)
    ('fft', True, True)
    """
    t0 = time.perf_counter()
    solver = _renamed(solver, method, "method", "solver", "auto")
    op = _bound_operator(layer, input_shape)
    check_choice(solver, "solver", ("auto", "fft", "lsmr", "dense"))
    check_choice(on_non_injective, "on_non_injective", ("warn", "raise", "ignore"))
    h = as_tensor(features, "features", dtype=torch.float64).detach().numpy()
    if h.ndim not in (3, 4):
        raise ValueError(f"features must be (2K, H', W') or (N, 2K, H', W'), got shape {h.shape}")
    shape, out_shape = op.input_shape, op.output_shape
    k = op.layer.out_channels
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

    if solver == "auto":
        solver = ("fft" if op.is_circulant
                  else "dense" if op.d <= AUTO_DENSE_LIMIT else "lsmr")
    if bounds is None and certify is not False:
        bounds = op.frame_bounds(certify if isinstance(certify, str)
                                 else "fft" if solver == "fft" else "auto")

    injective = None if bounds is None else bounds.injective
    if injective is False:
        warn_non_injective(
            f"{op.layer!r} is not injective on inputs of shape {shape}: lower frame bound "
            f"{bounds.lower:.3e} (upper {bounds.upper:.3e}, method {bounds.method}); "
            "the result is the projection of the input onto the row space of A",
            on_non_injective)

    zb = z.reshape(-1, *out_shape)
    if solver == "fft":
        plan = op.plan
        sols = [solve_fft(plan, zb)]

        def residual_of(x, zz):
            return plan.residual_norm(x, zz)
    elif solver == "dense":
        sols = [solve_dense(op.dense(force=True), zb.reshape(len(zb), -1).T)]
        sols = [dataclasses.replace(sols[0], x=sols[0].x.T)]
        residual_of = None
    else:  # lsmr
        if op.dtype != np.float64:
            raise ValueError("solver='lsmr' needs float64 weights for a theorem-grade inverse; "
                             f"got {op.layer.dtype} (cast the weight with .double())")
        sols = [solve_lsmr(op.linear_operator, zi.ravel(), atol=atol, btol=btol,
                           maxiter=maxiter) for zi in zb]
        residual_of = None
    if residual_of is None:
        def residual_of(x, zz):
            return float(np.linalg.norm(np.asarray(op.forward(x)) - zz))

    def relative(x, zz):
        def fn() -> float:
            znorm = float(np.linalg.norm(zz))
            res = residual_of(x, zz)
            return res / znorm if znorm > 0 else res
        return fn

    seconds = time.perf_counter() - t0
    if len(sols) == 1:  # one direct solve for the whole batch
        xs = sols[0].x.reshape(-1, *shape)
        per_input = [dataclasses.replace(sols[0], x=xi) for xi in xs]
    else:
        per_input = sols
    results = [InversionResult(x=sol.x.reshape(shape), z=zi, solver=solver,
                               iterations=sol.iterations, converged=sol.converged,
                               frame_bounds=bounds, injective=injective, stopping=sol.stopping,
                               seconds=seconds, _residual=relative(sol.x.reshape(shape), zi))
               for sol, zi in zip(per_input, zb)]
    if h.ndim == 3:
        return results[0]
    xb = np.stack([r.x for r in results])
    stopping = per_input[0].stopping
    if solver == "lsmr":
        worst = max(s.stopping["istop"] for s in per_input)
        stopping = {**stopping, "istop": worst, "reason": LSMR_REASONS.get(worst, "?")}
    return InversionBatch(results, seconds, residual=relative(xb, zb), stopping=stopping)


__all__ = ["InversionBatch", "InversionResult", "LSMR_REASONS", "Method", "NonInjectiveError",
           "NonInjectiveWarning", "Solver", "invert_crelu", "recovery_tolerance",
           "warn_non_injective"]
