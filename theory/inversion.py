"""Exact inversion of conv + CReLU (Proposition 2.1).

Notes
-----
For $h = \\operatorname{CReLU}(Ax)$, the pre-activation is recovered exactly,
$z = h_+ - h_- = Ax$, and then

$$
x' = A^+ z = P_{\\operatorname{range}(A^T)}\\, x ,
$$

the minimum-norm least-squares solution. $x' = x$ for every $x$ iff $A$ is
injective (lower frame bound $a > 0$). When it is not, the returned `x` is the
orthogonal projection of the true input onto the row space of $A$; the result says so
(`injective=False`) and a `NonInjectiveWarning` is issued (or
`NonInjectiveError` raised with `on_non_injective="raise"`).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Literal, Sequence

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator

from theory.activations import crelu_preactivation
from theory.checks import (
    InconsistentFeaturesError,
    InconsistentFeaturesWarning,
    NotConvergedError,
    NotConvergedWarning,
    cgls_residual_tolerance,
    check_policy,
    crelu_overlap,
    lsmr_residual_tolerance,
    rayleigh_outside,
    report,
    rounding_residual_tolerance,
)
from theory.conv import AUTO_DENSE_LIMIT, ConvLayer, as_tensor
from theory.frames import FrameBounds
from theory.im2col import Im2colOperator
from theory.operator import ConvOperator
from theory.polyphase import coarse_form
from theory.preconditioner import CirculantPreconditioner, jacobi
from theory.results import InversionBatch, InversionResult
from theory.solvers import (CGLS_REASONS, LSMR_REASONS, solve_cgls, solve_dense, solve_fft,
                            solve_lsmr)

Solver = Literal["auto", "fft", "cgls", "lsmr", "dense"]
#: Deprecated name of `Solver`.
Method = Solver


#: `precondition="auto"` considers the circulant preconditioner up to this many coarse
#: channels (C s_h s_w; `choose_preconditioner`)
AUTO_CIRCULANT_CHANNELS = 4
#: ... and uses it when its symbol's Gram has at least this condition number.
AUTO_CIRCULANT_COND = 10.0
#: The LSMR preconditioners of `invert_crelu`.
Precondition = Literal["auto", "none", "jacobi", "circulant"]


class NonInjectiveWarning(UserWarning):
    """The layer is not injective: the inverse returned is the projection onto its row space.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from theory import ConvLayer, crelu_features, invert_crelu
    >>> rng = np.random.default_rng(0)
    >>> wide = ConvLayer(rng.standard_normal((1, 2, 3, 3)), padding=1, padding_mode="circular")
    >>> x = rng.standard_normal((2, 6, 6))                  # 1 filter, 2 channels: not injective
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     res = invert_crelu(crelu_features(x, wide), wide, x.shape)
    >>> caught[0].category.__name__, res.injective
    ('NonInjectiveWarning', False)
    >>> a = wide.dense(x.shape)                             # x' is the projection onto row(A)
    >>> bool(np.allclose(res.x.ravel(), np.linalg.pinv(a) @ a @ x.ravel()))
    True
    """


class NonInjectiveError(ValueError):
    """Raised instead of the warning when `on_non_injective="raise"`.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, NonInjectiveError, crelu_features, invert_crelu
    >>> rng = np.random.default_rng(0)
    >>> wide = ConvLayer(rng.standard_normal((1, 2, 3, 3)), padding=1, padding_mode="circular")
    >>> x = rng.standard_normal((2, 6, 6))
    >>> try:
    ...     invert_crelu(crelu_features(x, wide), wide, x.shape, on_non_injective="raise")
    ... except NonInjectiveError as err:
    ...     print(type(err).__name__, isinstance(err, ValueError), "not injective" in str(err))
    NonInjectiveError True True
    """


def recovery_tolerance(layer: ConvLayer, bounds: FrameBounds) -> float:
    r"""Relative-error tolerance `c * cond * eps` for an exact (`fft`/`dense`) inverse.

    Notes
    -----
    The features are computed in float64 by `conv2d`: each pre-activation is a dot product
    of length $n = C k_h k_w$, and the solve combines $K$ channels per frequency.
    With the probabilistic rounding-error analysis of Higham and Mary (SIAM J. Sci. Comput.
    2019), backward errors of such sums grow like $\lambda\sqrt{n}\,u$; a
    backward-stable least-squares solve turns a backward error $\delta$ into a forward
    relative error of at most about $\operatorname{cond}(A)\,\delta$. We use

    $$
    \text{tol} = \lambda\, \sqrt{C k_h k_w K}\; \operatorname{cond}(A)\; u,
                  \qquad \lambda = 4,\; u = 2^{-52}.
    $$

    `inf` for a non-injective layer (no finite relative error bound exists).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, crelu_features, frame_bounds, invert_crelu, recovery_tolerance
    >>> rng = np.random.default_rng(0)
    >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
    >>> x = rng.standard_normal((2, 8, 8))
    >>> fb = frame_bounds(layer, x.shape)
    >>> tol = recovery_tolerance(layer, fb)               # 4 sqrt(C kh kw K) cond eps
    >>> bool(np.isclose(tol, 4 * np.sqrt(2 * 9 * 4) * fb.cond * np.finfo(float).eps))
    True
    >>> res = invert_crelu(crelu_features(x, layer), layer, x.shape)
    >>> bool(np.linalg.norm(res.x - x) / np.linalg.norm(x) <= tol)
    True
    """
    if not bounds.injective:
        return float("inf")
    c, (kh, kw), k = layer.in_channels, layer.kernel_size, layer.out_channels
    return 4.0 * float(np.sqrt(c * kh * kw * k)) * bounds.cond * float(np.finfo(np.float64).eps)



def _bound_operator(layer, input_shape) -> ConvOperator:
    """`layer.at(input_shape)`, or a ConvOperator as given (its shape must agree)."""
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
    """Accept a deprecated keyword `old` for `new` (with a DeprecationWarning)."""
    if old_value is None:
        return new_value
    warnings.warn(f"the keyword {old!r} is deprecated; use {new!r}", DeprecationWarning,
                  stacklevel=3)
    if new_value != default and new_value != old_value:
        raise TypeError(f"got both {old}={old_value!r} and {new}={new_value!r}")
    return old_value


def _bounds_fit(op, sop, e, bounds, solver, sol, x) -> dict:
    """Do given frame bounds fit the layer? Exact where the solve computed the spectrum.

    `fft`: the plan's singular values; `dense`: those `gelsd` returned; both are
    exact, so the given bounds must satisfy `lower <= a` and `upper >= b` to rounding.
    `lsmr`: Rayleigh quotients of probe vectors (`bounds_probe`) must lie inside
    the bounds, and LSMR's condition estimate (a lower estimate) must not exceed their cond.
    """
    slack = 10.0 * np.sqrt(op.d) * float(np.finfo(np.float64).eps)
    lo_u, hi_u = (bounds.unit_lower, bounds.unit_upper) if bounds.unit_lower is not None \
        else (bounds.lower, bounds.upper)
    if bounds.normalisation != float(np.ldexp(1.0, e)):   # compare on the scale of 2^e A
        lo_u, hi_u = np.ldexp(bounds.lower, 2 * e), np.ldexp(bounds.upper, 2 * e)
    if solver in ("fft", "dense"):
        if solver == "fft":
            a, b = sop.plan.sigma_min ** 2, sop.plan.sigma_max ** 2
        else:
            sv = sol.singular_values
            a = float(sv[-1]) ** 2 if op.m >= op.d else 0.0
            b = float(sv[0]) ** 2
        ok = lo_u <= a + slack * b and hi_u >= b * (1 - slack)
        return {"bounds_fit": bool(ok), "bounds_evidence":
                f"the {solver} solve's exact spectrum gives a = {a:.4g}, b = {b:.4g}"
                + ("" if e == 0 else f" (of 2^{e} A)")}
    q = bounds_probe(sop, x)
    outside = [v for v in q if rayleigh_outside(v, lo_u, hi_u, op.d)]
    cond_est = sol.cond_estimate
    given_cond = bounds.cond
    cond_bad = bool(np.isfinite(cond_est) and np.isfinite(given_cond)
                    and cond_est > given_cond * (1 + 1e-6))
    ok = not outside and not cond_bad
    why = (f"Rayleigh quotients ||Av||^2/||v||^2 of probe vectors {', '.join(f'{v:.4g}' for v in q)}"
           f"; LSMR's condition estimate {cond_est:.4g} against cond {given_cond:.4g}")
    return {"bounds_fit": bool(ok), "rayleigh_quotients": q, "bounds_evidence": why}


def bounds_probe(op, x: np.ndarray, steps: int = 2) -> list[float]:
    """Rayleigh quotients $\\|Av\\|^2/\\|v\\|^2$ of the reconstruction `x`, of a
    seeded random vector and of `steps` power iterations of $A^TA$ from it.

    Every quotient lies in $[a, b]$ for true frame bounds; the power iterates approach
    $b$ from below. Bounds of another layer usually exclude one of them (a cheap,
    probabilistic test of given bounds: `1 + 2 steps` forward passes).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.inversion import bounds_probe
    >>> rng = np.random.default_rng(0)
    >>> op = ConvLayer(rng.standard_normal((4, 1, 3, 3)), padding=1).at((1, 6, 6))
    >>> q = bounds_probe(op, rng.standard_normal((1, 6, 6)))
    >>> len(q)                                            # x, a random vector, 2 power steps
    4
    >>> a, b, _ = op.frame_bounds("dense")
    >>> all(a * (1 - 1e-9) <= v <= b * (1 + 1e-9) for v in q)
    True
    """
    out = []
    v = np.random.default_rng(0).standard_normal(op.input_shape)
    for u in [np.asarray(x, dtype=np.float64), v]:
        nu = float(np.sum(u * u))
        if nu > 0:
            au = np.asarray(op.forward(u))
            out.append(float(np.sum(au * au) / nu))
    for _ in range(steps):
        v = np.asarray(op.adjoint(np.asarray(op.forward(v))))
        nv = float(np.sum(v * v))
        if nv == 0:
            break
        v = v / np.sqrt(nv)
        av = np.asarray(op.forward(v))
        out.append(float(np.sum(av * av)))
    return out


def warn_non_injective(msg: str, on_non_injective: str, stacklevel: int = 3) -> None:
    """Raise `NonInjectiveError` or warn with `NonInjectiveWarning`.

    Examples
    --------
    >>> import warnings
    >>> from theory import NonInjectiveError
    >>> from theory.inversion import warn_non_injective
    >>> warn_non_injective("not injective", "ignore")        # nothing
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_non_injective("not injective", "warn")
    >>> caught[0].category.__name__
    'NonInjectiveWarning'
    >>> try:
    ...     warn_non_injective("not injective", "raise")
    ... except NonInjectiveError as err:
    ...     print(err)
    not injective
    """
    if on_non_injective == "raise":
        raise NonInjectiveError(msg)
    if on_non_injective == "warn":
        warnings.warn(msg, NonInjectiveWarning, stacklevel=stacklevel)


def check_choice(value, name: str, choices: Sequence[str]) -> None:
    """A clear ValueError when `value` is not one of `choices`.

    Examples
    --------
    >>> from theory.inversion import check_choice
    >>> check_choice("fft", "solver", ("auto", "fft", "lsmr", "dense"))     # valid: silent
    >>> try:
    ...     check_choice("svd", "solver", ("auto", "fft", "lsmr", "dense"))
    ... except ValueError as err:
    ...     print(err)
    unknown solver 'svd'; expected one of auto, fft, lsmr, dense
    """
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(choices)}")


def choose_preconditioner(op: ConvOperator, precondition: str, injective: bool | None
                          ) -> tuple[str, LinearOperator | None]:
    """The LSMR right preconditioner `invert_crelu` uses: its name and the operator.

    `auto`, for a layer whose frame bounds say it is injective: the circulant preconditioner
    when the coarse form has at most `AUTO_CIRCULANT_CHANNELS` channels (so that it is
    cheap to build and apply) and its symbol's Gram has condition number at least
    `AUTO_CIRCULANT_COND` (so that the interior, which it captures, is what slows LSMR
    down); else Jacobi. When injectivity is not established, none: for a non-injective
    layer preconditioned LSMR would return the minimum-$\\|M^{-1}x\\|$ solution instead of
    the projection onto the row space. The thresholds come from `benchmarks/inversion.py`,
    part f.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.inversion import choose_preconditioner
    >>> rng = np.random.default_rng(0)
    >>> op = ConvLayer(rng.standard_normal((8, 3, 3, 3)), stride=2, padding=1).at((3, 16, 16))
    >>> [choose_preconditioner(op, "auto", inj)[0] for inj in (True, None)]   # 12 channels
    ['jacobi', 'none']
    >>> smooth = ConvLayer(np.ones((2, 1, 3, 3)) + 0.1 * rng.standard_normal((2, 1, 3, 3)),
    ...                    padding=1).at((1, 16, 16))     # one channel, ill-conditioned symbol
    >>> choose_preconditioner(smooth, "auto", True)[0]
    'circulant'
    >>> choose_preconditioner(op, "circulant", False)[0]       # an explicit choice is kept
    'circulant'
    """
    if precondition == "none" or (precondition == "auto" and injective is not True):
        return "none", None
    if precondition == "jacobi":
        return "jacobi", jacobi(op)
    if precondition == "circulant":
        return "circulant", CirculantPreconditioner(op)
    if coarse_form(op).channels <= AUTO_CIRCULANT_CHANNELS:
        try:
            m = CirculantPreconditioner(op)
        except (MemoryError, ValueError):
            m = None
        if m is not None and m.symbol_cond >= AUTO_CIRCULANT_COND:
            return "circulant", m
    return "jacobi", jacobi(op)


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
    on_inconsistent: Literal["warn", "raise", "ignore"] = "warn",
    on_not_converged: Literal["warn", "raise", "ignore"] = "warn",
    method: Solver | None = None,
    precondition: Precondition = "auto",
    precision: Literal["auto", "float64", "mixed"] = "auto",
) -> InversionResult | InversionBatch:
    """Reconstruct the input of `CReLU(layer(x))` from its features.

    Parameters
    ----------
    features : array, shape (2K, H', W') or (N, 2K, H', W')
        CReLU features: positive half first, then negative half (`theory.crelu`).
    layer : ConvLayer or ConvOperator
        The layer that produced the pre-activation (without bias), or `layer.at(shape)`.
    input_shape : (C, H, W)
        Needed with a ConvLayer; a ConvOperator carries its own.
    solver : {"auto", "fft", "cgls", "lsmr", "dense"}
        `fft`: exact least squares per frequency (circulant layers). `dense`: numpy
        least squares on the dense matrix (small inputs). `cgls`: CGLS
        (`theory.solvers.solve_cgls`) on the layer computed by im2col
        (`theory.im2col.Im2colOperator`), with Jacobi column scaling or none. `lsmr`:
        scipy's LSMR on the LinearOperator, with any preconditioner. Both iterative
        solvers handle any stride and padding and start at 0, so they converge to the
        minimum-norm (with a preconditioner $M$: minimum $\\|M^{-1}x\\|$) solution. `auto`:
        `fft` if possible, else `dense` if the input has at most `AUTO_DENSE_LIMIT`
        values, else `lsmr` when the preconditioner is the circulant one (which CGLS, a
        diagonal scaling only, cannot take), else `cgls`.
    atol, btol, maxiter : the iterative solvers' stopping rule (LSMR's, see
        `scipy.sparse.linalg.lsmr`; CGLS tests the same rule on a fresh residual); reported.
    certify : bool or str
        Compute the frame bounds (the injectivity certificate) with `frame_bounds`:
        `True` picks the method (`fft` for the fft solver, else `auto`), a string names
        it, `False` skips the certificate.
    bounds : FrameBounds, optional
        Precomputed frame bounds (skips the certificate computation).
    on_non_injective : {"warn", "raise", "ignore"}
        When the certificate says the layer is not injective.
    on_inconsistent : {"warn", "raise", "ignore"}
        When the features are not a CReLU output of this layer: both halves positive at a
        position, a relative residual above what rounding (or LSMR's stopping rule) allows,
        or given `bounds` that the reconstruction's Rayleigh quotient falls outside of
        (`theory.checks`; `theory.checks.InconsistentFeaturesWarning`).
    on_not_converged : {"warn", "raise", "ignore"}
        When LSMR stopped on its iteration cap or condition limit
        (`theory.checks.NotConvergedWarning`).
    method : deprecated name of `solver`.
    precondition : {"auto", "none", "jacobi", "circulant"}
        The right preconditioner of the `lsmr` solver (`theory.preconditioner`): Jacobi
        column scaling, or the polyphase circulant symbol with the border rescaled. `auto`:
        `circulant` or `jacobi` when the frame bounds say the layer is injective (by the
        rule of `choose_preconditioner`), else `none`. Reported in
        `stopping["preconditioner"]`. The `cgls` solver takes `jacobi` or `none`.
    precision : {"auto", "float64", "mixed"}
        The `cgls` solver's products: `mixed` runs them in float32 with float64 residual
        replacement, the stopping rule and every check in float64 (`solve_cgls`); `auto`
        (the default) is `mixed`.

    Returns
    -------
    InversionResult
        For one input; an `InversionBatch` (one result per input) for a batch. Its
        `checks` hold the measured numbers of the a-posteriori checks.

    Raises
    ------
    ValueError
        Odd channel count, wrong channel count or spatial shape, NaN/Inf, empty input,
        negative entries (CReLU features are non-negative), unknown solver.
    NonInjectiveError
        With `on_non_injective="raise"` when the certificate says the layer is not injective.

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
    check_choice(solver, "solver", ("auto", "fft", "cgls", "lsmr", "dense"))
    check_choice(precision, "precision", ("auto", "float64", "mixed"))
    if solver == "cgls" and precondition == "circulant":
        raise ValueError("solver='cgls' takes a diagonal column scaling only (precondition="
                         "'jacobi' or 'none'); the circulant preconditioner needs solver='lsmr'")
    check_choice(on_non_injective, "on_non_injective", ("warn", "raise", "ignore"))
    check_policy(on_inconsistent, "on_inconsistent")
    check_policy(on_not_converged, "on_not_converged")
    check_choice(precondition, "precondition", ("auto", "none", "jacobi", "circulant"))
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

    auto_iterative = False
    if solver == "auto":
        solver = ("fft" if op.is_circulant
                  else "dense" if op.d <= AUTO_DENSE_LIMIT else "cgls")
        auto_iterative = solver == "cgls"
    if solver == "dense":
        op.check_dense_size()        # before any work: refuse by size, not by exhaustion
    given_bounds = bounds is not None
    if bounds is not None and not isinstance(bounds, FrameBounds):
        raise TypeError(f"bounds must be a FrameBounds or None, got {type(bounds).__name__}")
    if bounds is None and certify is not False:
        bounds = op.frame_bounds(certify if isinstance(certify, str)
                                 else "fft" if solver == "fft" else "auto")

    injective = None if bounds is None else bounds.injective
    # far from unit scale, solve (2^e A) x = 2^e z: the same x, no square under/overflows
    # (also in the preconditioners, which square the weights)
    e, sop = op.normalised
    pre_name, pre = ("none", None)
    if solver == "lsmr" or (solver == "cgls" and auto_iterative):
        pre_name, pre = choose_preconditioner(sop, precondition, injective)
        if pre_name == "circulant":   # CGLS scales columns only: LSMR takes the circulant
            solver = "lsmr"
    elif solver == "cgls":   # asked for: Jacobi, or none as choose_preconditioner decides
        jac = precondition == "jacobi" or (precondition == "auto" and injective is True)
        pre_name = "jacobi" if jac else "none"
    if injective is False:
        what = ("the projection of the input onto the row space of A" if pre_name == "none"
                else f"a least-squares solution (the minimum ||M^-1 x|| one for the {pre_name} "
                     "preconditioner M), not the projection onto the row space of A")
        warn_non_injective(
            f"{op.layer!r} is not injective on inputs of shape {shape}: lower frame bound "
            f"{bounds.lower:.3e} (upper {bounds.upper:.3e}, method {bounds.method}); "
            f"the result is {what}", on_non_injective)

    zb = z.reshape(-1, *out_shape)
    zs = np.ldexp(zb, e) if e else zb
    if solver == "fft":
        plan = sop.plan
        sol = solve_fft(plan, zs)
        x_all, res_norms = sol.x, sol.residual_norms
        per_input = [dataclasses.replace(sol, x=xi) for xi in x_all]
    elif solver == "dense":
        a = sop.dense(force=True)
        sol = solve_dense(a, zs.reshape(len(zs), -1).T)
        x_all = sol.x.T.reshape(-1, *shape)
        res_norms = np.linalg.norm(x_all.reshape(len(zs), -1) @ a.T - zs.reshape(len(zs), -1),
                                   axis=1)
        per_input = [dataclasses.replace(sol, x=xi) for xi in x_all]
    else:  # lsmr, cgls
        if op.dtype != np.float64:
            raise ValueError(f"solver='{solver}' needs float64 weights for a theorem-grade "
                             f"inverse; got {op.layer.dtype} (cast the weight with .double())")
        if solver == "cgls":
            prec = "mixed" if precision == "auto" else precision
            cop = Im2colOperator(sop.layer, shape)
            scale = None
            if pre_name == "jacobi":   # diag(1/||a_j||) read off the Jacobi preconditioner
                scale = (pre if pre is not None else jacobi(sop)).matvec(np.ones(op.d))
            cap = maxiter if maxiter is not None else 10 * min(op.m, op.d)
            per_input = [solve_cgls(cop, zi.ravel(), atol=atol, btol=btol, maxiter=cap,
                                    column_scale=scale, precision=prec,
                                    a_norm=cop.abs_norm_bound(), taps=cop.conv.taps,
                                    label=f"cgls ({prec}, im2col operator)") for zi in zs]
        else:
            per_input = [solve_lsmr(sop.linear_operator, zi.ravel(), atol=atol, btol=btol,
                                    maxiter=maxiter, preconditioner=pre) for zi in zs]
        for sol in per_input:
            sol.stopping["preconditioner"] = pre_name
        x_all = np.stack([sol.x for sol in per_input]).reshape(-1, *shape)
        res_norms = np.linalg.norm((np.asarray(sop.forward(x_all)) - zs).reshape(len(zs), -1),
                                   axis=1)
    z_norms = np.linalg.norm(zs.reshape(len(zs), -1), axis=1)
    seconds = time.perf_counter() - t0

    # ---------------------------------------------------------------- a-posteriori checks
    both, overlap = crelu_overlap(h.reshape(-1, *h.shape[-3:]), axis=1)
    if both:
        report(f"the features are not a CReLU output: {both} position(s) have both halves "
               f"positive (largest min(h+, h-) = {overlap:.2e} of max |h|); the inverse used "
               "h+ - h-", on_inconsistent, InconsistentFeaturesWarning,
               InconsistentFeaturesError)
    c_in, (kh, kw), k_out = op.layer.in_channels, op.layer.kernel_size, op.layer.out_channels
    cond = bounds.cond if bounds is not None else float("inf")
    results = []
    for i, sol in enumerate(per_input):
        xi = sol.x.reshape(shape)
        rel = float(res_norms[i] / z_norms[i]) if z_norms[i] > 0 else float(res_norms[i])
        tol = rounding_residual_tolerance(c_in * kh * kw, k_out, cond)
        if solver == "lsmr":
            # LSMR stops when ||r|| <= btol ||b|| + atol normA ||x|| with its own estimate
            # normA (of the scaled system; Frobenius-like, >= ||A||): what its rule promises
            lsmr_tol = lsmr_residual_tolerance(atol, btol, sol.a_norm_estimate,
                                               sol.x_norm_estimate, float(z_norms[i]),
                                               sol.iterations, c_in * kh * kw)
            tol = max(tol, lsmr_tol) if np.isfinite(lsmr_tol) else tol
        elif solver == "cgls":
            # what its rule promises for an independent evaluation (rule 1, or rule 2 on
            # consistent data with the Ritz estimate of cond(AS)); on the scale of 2^e A
            cgls_tol = cgls_residual_tolerance(
                atol, btol, sol.a_norm_estimate, sol.x_norm_estimate, float(z_norms[i]),
                c_in * kh * kw, abs_norm=cop.abs_norm_bound(),
                solution_norm=float(np.linalg.norm(sol.x)),
                istop=int(sol.stopping.get("istop", 1)), cond=sol.cond_estimate)
            if np.isfinite(cgls_tol) and (np.isfinite(tol) or sol.converged):
                tol = max(tol, cgls_tol) if np.isfinite(tol) else cgls_tol
        checks = {"relative_residual": rel, "residual_tolerance": tol,
                  "both_halves_positive": both, "converged": sol.converged}
        where = f" (input {i})" if h.ndim == 4 else ""
        if rel > tol:
            report(f"the features are not consistent with this layer{where}: relative "
                   f"residual ||Ax' - z|| / ||z|| = {rel:.3e} > {tol:.3e} (the {solver} "
                   "solver's rounding/stopping bound); they are not CReLU features of "
                   f"{op.layer!r}, or were altered", on_inconsistent,
                   InconsistentFeaturesWarning, InconsistentFeaturesError)
        if given_bounds and i == 0:
            fit = _bounds_fit(op, sop, e, bounds, solver, sol, xi)
            checks.update(fit)
            if fit["bounds_fit"] is False:
                report(f"the given frame bounds [{bounds.lower:.4g}, {bounds.upper:.4g}] do "
                       f"not describe this layer: {fit['bounds_evidence']} (bounds of another "
                       "layer or shape?)", on_inconsistent, InconsistentFeaturesWarning,
                       InconsistentFeaturesError)
        if not sol.converged:
            name = "CGLS" if solver == "cgls" else "LSMR"
            report(f"{name} did not converge{where}: {sol.stopping.get('reason', '?')} after "
                   f"{sol.iterations} iterations (relative residual {rel:.3e}); raise maxiter "
                   "or loosen atol/btol", on_not_converged, NotConvergedWarning,
                   NotConvergedError)
        results.append(InversionResult(
            x=xi, z=zb[i], solver=solver, iterations=sol.iterations, converged=sol.converged,
            frame_bounds=bounds, injective=injective, stopping=sol.stopping, seconds=seconds,
            _residual=(lambda r=rel: r), checks=checks))
    if h.ndim == 3:
        return results[0]
    stopping = per_input[0].stopping
    if solver in ("lsmr", "cgls"):
        worst = max(sol.stopping["istop"] for sol in per_input)
        reasons = LSMR_REASONS if solver == "lsmr" else CGLS_REASONS
        stopping = {**stopping, "istop": worst, "reason": reasons.get(worst, "?")}
    zsq = float(np.sum(z_norms ** 2))
    batch_rel = float(np.sqrt(np.sum(res_norms ** 2) / zsq)) if zsq > 0 else float(
        np.sqrt(np.sum(res_norms ** 2)))
    return InversionBatch(results, seconds, residual=lambda: batch_rel, stopping=stopping)


__all__ = ["AUTO_CIRCULANT_CHANNELS", "AUTO_CIRCULANT_COND", "InversionBatch", "InversionResult",
           "LSMR_REASONS", "Method", "NonInjectiveError", "Precondition", "choose_preconditioner",
           "NonInjectiveWarning", "Solver", "invert_crelu", "recovery_tolerance",
           "warn_non_injective"]
