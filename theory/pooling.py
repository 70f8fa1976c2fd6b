r"""Reconstruction through max-pooling: CReLU (or ReLU) + max-pooling with known switches.

Notes
-----
Let $z = Ax$ be a conv layer's pre-activation. Non-overlapping $p \times p$
max-pooling of CReLU features keeps, per pooling region $R$ and filter $k$, the
largest *and* the smallest response, $g^+_{k,R} = \max(0, \max_{j \in R} z_k(j))$
and $g^-_{k,R} = \max(0, -\min_{j \in R} z_k(j))$ (ReLU + max-pooling keeps only
$g^+$). Every non-zero pooled value is a linear measurement
$\langle \tilde w, x\rangle$ of a selected, signed, shifted filter (the
`theory.selection.MaxPoolSelection`), so with the switches known

* (exact) if the selected filters form a frame ($a > 0$),
  $x = (W_x^T)^+ g_{\neq 0}$ -- a linear least-squares problem;
* (linear) with $aI \preceq S = W_x W_x^T \preceq bI$, the one-step frame algorithm
  $x' = \tfrac{2}{a+b} W_x g_{\neq 0}$ has
  $\|x - x'\| \le \tfrac{b-a}{b+a}\|x\|$, because
  $x - x' = (I - \tfrac{2}{a+b} S)x$ and the eigenvalues of
  $I - \tfrac{2}{a+b}S$ lie in $[-\tfrac{b-a}{b+a}, \tfrac{b-a}{b+a}]$.

This is the project's formalisation of the paper's Figure 3 / Section 2.3 (see
docs/theory/maxpool.md). This module is the public face of the pooled case: the forward map
(`conv_crelu_maxpool`), the selection (`selection`) and the inverse
(`invert_crelu_maxpool`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from theory.checks import (
    InconsistentFeaturesError,
    InconsistentFeaturesWarning,
    NotConvergedError,
    NotConvergedWarning,
    cgls_residual_tolerance,
    check_policy,
    lsmr_residual_tolerance,
    report,
    rounding_residual_tolerance,
)
from theory.conv import DENSE_LIMIT, ConvLayer, normalising_exponent
from theory.features import Activation, conv_crelu_maxpool, crelu_maxpool
from theory.frames import FrameBounds
from theory.inversion import _renamed, check_choice, warn_non_injective
from theory.results import InversionBatch, InversionResult
from theory.selection import (
    SPARSE_LIMIT,
    MaxPoolSelection,
    pooled_shape,
    selection,
    validate_pooled,
)
from theory.solvers import solve_cgls, solve_dense, solve_lsmr

Inverse = Literal["exact", "linear"]
_EPS = float(np.finfo(np.float64).eps)
#: Largest `D` for which `solver="auto"` uses the dense least squares instead of CGLS
#: (the threshold of the earlier dense/LSMR choice, kept; not re-measured for CGLS).
AUTO_DENSE_POOLED = 1024


@dataclasses.dataclass
class PoolInversionResult(InversionResult):
    """What `invert_crelu_maxpool` returns for one input.

    The fields of `theory.InversionResult` (`z` holds the selected pooled values
    $g_{\\neq 0}$; `injective` says whether the selected filters form a frame), and:

    Attributes
    ----------
    inverse : {"exact", "linear"}
    solver : str
        `dense` (numpy lstsq), `cgls` (on the im2col operator
        `MaxPoolSelection.rows_operator`), `lsmr-sparse`, `lsmr-operator`, `frame-step`
        or `none` (nothing selected).
    n_selected : int
        Number of selected filters (`D` unknowns), zero-window rows included.
    n_zero_window : int
        How many of them come from zero windows (`selection`).
    cond_estimate : float
        LSMR's or CGLS's own estimate of $\\operatorname{cond}(W_x)$, of the column-scaled
        matrix when Jacobi-preconditioned (`nan` for other solvers); a lower estimate.
        `stopping["scale_spread"]` is the spread of the column scaling (module notes of
        `theory.deep`).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, conv_crelu_maxpool, invert_crelu_maxpool
    >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
    >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
    >>> x = np.random.default_rng(1).random((1, 6, 6))
    >>> g, s = conv_crelu_maxpool(x, layer)
    >>> res = invert_crelu_maxpool(g, s, layer, x.shape)
    >>> res.inverse, res.solver, res.is_frame, res.n_selected, res.n_zero_window
    ('exact', 'dense', True, 122, 0)
    >>> bool(np.allclose(res.x, x)), bool(res.error_bound() < 1e-10)
    (True, True)
    """

    inverse: str = "exact"
    n_selected: int = 0
    n_zero_window: int = 0
    cond_estimate: float = float("nan")

    @property
    def is_frame(self) -> bool | None:
        """Whether the selected filters form a frame (the pooled name of `injective`).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, invert_crelu_maxpool
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)
        >>> invert_crelu_maxpool(g, s, layer, x.shape).is_frame
        True
        >>> few = ConvLayer(w[:2].reshape(2, 1, 3, 3), padding=1)      # 2 filters: too few values
        >>> g2, s2 = conv_crelu_maxpool(x, few)
        >>> invert_crelu_maxpool(g2, s2, few, x.shape, on_non_injective="ignore").is_frame
        False
        """
        return self.injective

    @property
    def method(self) -> str:  # pragma: no cover - deprecated alias
        """Deprecated name of `inverse`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, invert_crelu_maxpool
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)
        >>> import warnings
        >>> res = invert_crelu_maxpool(g, s, layer, x.shape)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     name = res.method
        >>> name, caught[0].category.__name__
        ('exact', 'DeprecationWarning')
        """
        import warnings

        warnings.warn("PoolInversionResult.method is deprecated; use .inverse",
                      DeprecationWarning, stacklevel=2)
        return self.inverse

    def error_bound(self) -> float:
        """`exact`: $\\operatorname{cond}\\cdot$ relative residual (`inf` if not a
        frame); `linear`: $(b-a)/(b+a)$.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, conv_crelu_maxpool, invert_crelu_maxpool
        >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
        >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
        >>> x = np.random.default_rng(1).random((1, 6, 6))
        >>> g, s = conv_crelu_maxpool(x, layer)
        >>> exact = invert_crelu_maxpool(g, s, layer, x.shape)
        >>> err = np.linalg.norm(exact.x - x) / np.linalg.norm(x)
        >>> bool(err <= exact.error_bound())
        True
        >>> linear = invert_crelu_maxpool(g, s, layer, x.shape, inverse="linear")   # one frame step
        >>> a, b, _ = linear.frame_bounds
        >>> bool(np.isclose(linear.error_bound(), (b - a) / (b + a)))
        True
        >>> bool(np.linalg.norm(linear.x - x) / np.linalg.norm(x) <= linear.error_bound())
        True
        """
        fb = self.frame_bounds
        if self.inverse == "linear":
            smin, smax = fb._unit()        # scale-free: (b - a)/(b + a)
            a, b = smin ** 2, smax ** 2
            return float((b - a) / (b + a)) if b > 0 else 1.0
        if fb is None or not self.injective:
            return float("inf")
        return fb.cond * self.relative_residual


def invert_crelu_maxpool(
    features, switches, layer: ConvLayer, input_shape: Sequence[int], pool: int = 2,
    inverse: Inverse = "exact", activation: Activation = "crelu", *,
    solver: Literal["auto", "dense", "lsmr", "cgls"] = "auto",
    certify: bool | str = True,
    bounds: FrameBounds | None = None,
    atol: float = 1e-14, btol: float = 1e-14, maxiter: int | None = None,
    zero_tol: float = 0.0,
    zero_windows: bool = True,
    precondition: Literal["auto", "jacobi", "none"] = "auto",
    precision: Literal["auto", "float64", "mixed"] = "auto",
    bias=None,
    x0=None,
    on_non_injective: Literal["warn", "raise", "ignore"] = "warn",
    on_inconsistent: Literal["warn", "raise", "ignore"] = "warn",
    on_not_converged: Literal["warn", "raise", "ignore"] = "warn",
    iteration_callback: Callable[[int], None] | None = None,
    method: Inverse | None = None,
    on_non_frame: Literal["warn", "raise", "ignore"] | None = None,
) -> PoolInversionResult | InversionBatch:
    """Reconstruct `x` from `crelu_maxpool(x, layer, pool, activation)` and its switches.

    Parameters
    ----------
    features, switches : arrays (C_f, Hp, Wp) or (N, C_f, Hp, Wp)
    layer : ConvLayer
    input_shape : (C, H, W)
    pool : int
    inverse : {"exact", "linear"}
        `exact`: minimum-norm least squares $x' = (W_x^T)^+ g_{\\neq 0}$.
        `linear`: one step of the frame algorithm $x' = \\frac{2}{a+b} W_x g_{\\neq 0}$
        (needs frame bounds).
    activation : {"crelu", "relu"}
        The same code handles ReLU + max-pooling: only positive channels exist to select.
    solver : {"auto", "dense", "lsmr", "cgls"}
        For `exact`. `dense`: `numpy.linalg.lstsq` on the dense matrix (tiny inputs).
        `cgls`: preconditioned CGLS from 0 (`theory.solvers.solve_cgls`; converges to the
        minimum-norm solution) on the im2col operator `MaxPoolSelection.rows_operator`,
        stopped on the true residual. `lsmr`: scipy LSMR from 0 on the sparse matrix when
        it is small enough, else on the matrix-free operator. `auto`: dense for
        `D <= AUTO_DENSE_POOLED` (`theory.pooling`), else cgls, the faster where measured
        (docs/theory/maxpool.md, "Cost of one pooled inverse, and why CGLS is fast").
    certify : bool or str
        Compute the frame bounds of the selected set: `True` (`auto`) or a method of
        `MaxPoolSelection.frame_bounds` (`dense`, `shift-invert`, `banded`,
        `iterative`); `False` skips them (exact inverse only; the result then cannot say
        whether the set is a frame, except when fewer values than unknowns are selected).
    bounds : FrameBounds, optional
        Precomputed frame bounds, used as given.
    atol, btol, maxiter : the stopping rule of LSMR and CGLS (reported in `stopping`):
        $\\|r\\| \\le \\mathrm{btol}\\|g\\| + \\mathrm{atol}\\|W_x^T\\|\\|x'\\|$, or the
        least-squares test $\\|W_xr\\| \\le \\mathrm{atol}\\|W_x^T\\|\\|r\\|$; CGLS tests it
        on the true residual with a bound on the norm (`MaxPoolSelection.abs_norm_bound`),
        LSMR on its recurrence with its estimate. `maxiter=None` means `10 * min(n, D)`.
    zero_tol : float
        Pooled values `<= zero_tol` are treated as zero (see `selection`).
    zero_windows : bool
        CReLU: also use the exact equations $z_k = 0$ on every window where both of
        filter $k$'s pooled values are 0 (see `selection`). `False`: the
        paper's measurements only.
    precondition : {"auto", "jacobi", "none"}
        For LSMR. `jacobi`: solve for $y$ in $W_x^T M y = g$ with
        $M = \\operatorname{diag}(1/\\|\\text{column}\\|)$ (1 for untouched coordinates) and
        return $x = My$ (`MaxPoolSelection.column_norms`). For a frame the
        solution is the same and the iteration count drops where coordinates are measured
        unevenly (next to regions of exactly zero input, e.g. black pixels, about 2x on the
        astronaut photo). For a non-frame it is the minimum-$\\|M^{-1}x\\|$ solution,
        not the projection; every coordinate no selected filter touches still comes back 0.
        `auto`: `jacobi` when the set is certified a frame, else `none`. For CGLS the same
        scaling is the preconditioner $M^2$ of its normal equations.
    precision : {"auto", "float64", "mixed"}
        CGLS only: `mixed` runs its two products per iteration in float32 with float64
        residual replacement (`theory.solvers.solve_cgls`); the stopping rule, the
        residual it is confirmed on and every check stay in float64, so the solution is
        as accurate as with `float64`. `auto` (the default) is `mixed`: the two products
        are most of an iteration's time and float32 halves the GEMM in them (the
        max-pooling page of the docs has both, measured); `float64` keeps every product
        in double precision.
    x0 : array, optional
        A start for CGLS (warm start, e.g. the last iterate of a solve that hit its cap),
        of `input_shape` (or `(N, *input_shape)` for a batch). From a start the iterates
        stay in $x_0 + $ the row space: for a frame the solution is the same. Ignored by
        the direct solvers (`dense`, `frame-step`); LSMR refuses it.
    bias : array (K,), optional
        A known bias of the conv ($z = Ax + \\beta$; the features come from
        `conv_crelu_maxpool(..., bias=bias)`): it only shifts the measured values
        (`MaxPoolSelection.rhs`), the operator is unchanged.
    on_non_injective : {"warn", "raise", "ignore"}
        What to do when the selected set is certified *not* to be a frame: the exact method
        then returns the projection of `x` onto the span of the selected filters.
    on_inconsistent : {"warn", "raise", "ignore"}
        When the features and switches are not those of this layer: a relative residual
        above the solver's rounding/stopping bound, or (for a frame) a switch that is not
        the extreme response of its window for the reconstruction (`theory.checks`).
    on_not_converged : {"warn", "raise", "ignore"}
        When LSMR or CGLS stopped on its iteration cap (or LSMR on its condition limit).
    iteration_callback : callable(int), optional
        Called with the iteration count after every LSMR or CGLS iteration (progress).
    method, on_non_frame : deprecated names of `inverse` and `on_non_injective`; a
        string `bounds` is the deprecated form of `certify` (`"none"`: `False`).

    Returns
    -------
    PoolInversionResult
        For one input; an `theory.InversionBatch` of them for a batch.

    Notes
    -----
    *Exact.* If $W_x^T$ is injective, $x$ is the unique solution of the
    consistent system $W_x^T x = g_{\\neq 0}$. A computed $x'$ with residual
    $r = W_x^Tx' - g$ satisfies
    $\\|x'-x\\|/\\|x\\| \\le \\operatorname{cond}(W_x)\\,\\|r\\|/\\|g\\|$ (`error_bound`).

    *Linear.* $x - x' = (I - \\tfrac{2}{a+b}S)x$ with $S = W_xW_x^T$, whose
    spectrum lies in $[a, b]$; hence
    $\\|x-x'\\| \\le \\tfrac{b-a}{b+a}\\|x\\|$ (Christensen, *An Introduction to Frames
    and Riesz Bases*, frame algorithm, first iterate).
    
    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, conv_crelu_maxpool, invert_crelu_maxpool
    >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
    >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)
    >>> x = np.random.default_rng(1).random((1, 8, 8))
    >>> g, s = conv_crelu_maxpool(x, layer)
    >>> res = invert_crelu_maxpool(g, s, layer, x.shape)
    >>> res.is_frame, bool(np.abs(res.x - x).max() < 1e-10)
    (True, True)
    """
    t0 = time.perf_counter()
    inverse = _renamed(inverse, method, "method", "inverse", "exact")
    on_non_injective = _renamed(on_non_injective, on_non_frame, "on_non_frame",
                                "on_non_injective", "warn")
    if isinstance(bounds, str):  # the earlier form: bounds="auto" | method | "none"
        import warnings

        warnings.warn("bounds=<method name> is deprecated; use certify=<method> (or "
                      "certify=False for 'none')", DeprecationWarning, stacklevel=2)
        certify, bounds = (False if bounds == "none" else bounds), None
    check_choice(inverse, "inverse", ("exact", "linear"))
    check_choice(solver, "solver", ("auto", "dense", "lsmr", "cgls"))
    check_choice(precision, "precision", ("auto", "float64", "mixed"))
    check_choice(precondition, "precondition", ("auto", "jacobi", "none"))
    check_choice(on_non_injective, "on_non_injective", ("warn", "raise", "ignore"))
    check_policy(on_inconsistent, "on_inconsistent")
    check_policy(on_not_converged, "on_not_converged")
    if bounds is not None and not isinstance(bounds, FrameBounds):
        raise TypeError(f"bounds must be a FrameBounds or None, got {type(bounds).__name__}")
    if layer.dtype != torch.float64 and inverse == "exact":
        raise ValueError("theorem-grade inversion needs float64 weights; got "
                         f"{layer.dtype} (build the layer from weight.double())")
    f, s, shape, pool = validate_pooled(features, switches, layer, input_shape, pool, activation)
    if inverse == "linear" and bounds is None and certify is False:
        raise ValueError("inverse='linear' needs frame bounds; certify=False was given")
    starts = [None] * int(np.prod(f.shape[:-3], dtype=np.int64))
    if x0 is not None:
        if solver == "lsmr":
            raise ValueError("x0 (a warm start) needs solver='cgls' or 'auto'; LSMR starts at 0")
        x0 = np.asarray(x0, dtype=np.float64)
        if x0.shape != (*f.shape[:-3], *shape):
            raise ValueError(f"x0 has shape {x0.shape}; expected {(*f.shape[:-3], *shape)}")
        if not np.isfinite(x0).all():
            raise ValueError("x0 contains NaN/Inf")
        starts = list(x0.reshape(-1, int(np.prod(shape))))
    results = []
    for fi, si, start in zip(f.reshape(-1, *f.shape[-3:]), s.reshape(-1, *s.shape[-3:]),
                             starts):
        sel = selection(fi, si, layer, shape, pool, activation, zero_tol=zero_tol,
                        zero_windows=zero_windows, bias=bias)
        results.append(_invert_one(sel, inverse, solver, certify, bounds, atol, btol, maxiter,
                                   precondition, on_non_injective, on_inconsistent,
                                   on_not_converged, iteration_callback, t0, precision,
                                   start))
    if f.ndim == 3:
        return results[0]
    return InversionBatch(results, time.perf_counter() - t0)


def _invert_one(sel: MaxPoolSelection, inverse: str, solver: str, certify, bounds,
                atol: float, btol: float, maxiter: int | None, precondition: str,
                on_non_injective: str, on_inconsistent: str, on_not_converged: str,
                iteration_callback, t0: float, precision: str = "auto", x0=None
                ) -> PoolInversionResult:
    """Certify, solve and check one selection (see `invert_crelu_maxpool`)."""
    g, d, n = sel.rhs, sel.dim, sel.n_selected
    g_given, sel_given = sel.values, sel
    fb = bounds
    if fb is None and certify is not False:
        fb = sel.frame_bounds("auto" if certify is True else certify)
    untouched = 0
    if fb is None:
        # without bounds two facts still decide it: fewer measurements than unknowns, or an
        # input value that no selected filter touches (a zero column of W_x^T: e_j is in its
        # null space, exactly); the column norms cost one adjoint conv
        if n >= d:   # (on 2^e W_x where the weights are far from unit scale: no underflow)
            e0 = normalising_exponent(sel.max_abs)
            norms = (sel.scaled(float(np.ldexp(1.0, e0))) if e0 else sel).column_norms()
            untouched = int(np.sum(norms == 0))
        is_frame = False if (n < d or untouched) else None
    else:
        is_frame = bool(fb.injective and n >= d)
    if is_frame is False and on_non_injective != "ignore":
        why = (f"{n} < {d} measurements" if fb is None and n < d else
               f"{untouched} input value(s) no selected filter touches" if fb is None else
               f"lower bound {fb.lower:.3e}, upper {fb.upper:.3e} ({fb.method})")
        warn_non_injective(
            f"the {n} selected filters ({sel.activation} + {sel.pool}x{sel.pool} max-pooling) "
            f"do not form a frame for R^{d}: {why}; the reconstruction is the projection onto "
            "their span", on_non_injective, stacklevel=4)
    cond_est, iters, converged, stop, sol = float("nan"), 0, True, {}, None
    # far from unit scale, solve with 2^e W_x^T and 2^e g: the same x, no square under/overflows
    e = normalising_exponent(sel.max_abs)
    if e:
        sel = sel.scaled(float(np.ldexp(1.0, e)))
        g = sel.rhs
    if n == 0:
        x, used = np.zeros(d), "none"
        stop = {"solver": "none", "reason": "no non-zero pooled value: x' = 0"}
    elif inverse == "linear":
        a, b = fb.lower, fb.upper
        if e:   # the bounds of 2^e W_x are 4^e times those of W_x
            a, b = fb.unit_lower if fb.unit_lower is not None else np.ldexp(a, 2 * e), \
                fb.unit_upper if fb.unit_upper is not None else np.ldexp(b, 2 * e)
        x, used = (2.0 / (a + b)) * sel.linear_operator.rmatvec(g), "frame-step"
        stop = {"solver": "one frame-algorithm step", "a": fb.lower, "b": fb.upper}
    else:
        use = solver if solver != "auto" else ("dense" if d <= AUTO_DENSE_POOLED else "cgls")
        if use == "dense":
            if d > DENSE_LIMIT:
                raise ValueError(f"solver='dense' refuses D = {d} > {DENSE_LIMIT}; use cgls")
            sol, used = solve_dense(sel.dense(force=True), g), "dense"
        else:
            cap = maxiter if maxiter is not None else 10 * min(n, d)
            jacobi = precondition == "jacobi" or (precondition == "auto" and is_frame is True)
            scale = cn = None
            if jacobi:
                cn = sel.column_norms()
                scale = np.where(cn > 0, 1.0 / np.where(cn > 0, cn, 1.0), 1.0)
            if use == "cgls":
                used = "cgls"
                precision = "mixed" if precision == "auto" else precision
                sol = solve_cgls(sel.rows_operator.linear_operator, g, atol=atol, btol=btol,
                                 maxiter=cap, column_scale=scale, precision=precision,
                                 a_norm=sel.abs_norm_bound(), taps=sel._taps, x0=x0,
                                 label=f"cgls ({precision}, im2col operator)",
                                 callback=iteration_callback)
            else:
                if n * sel._taps <= SPARSE_LIMIT:
                    op, used = sel.sparse(), "lsmr-sparse"
                else:
                    op, used = sel.linear_operator, "lsmr-operator"
                sol = solve_lsmr(op, g, atol=atol, btol=btol, maxiter=cap, column_scale=scale,
                                 label=f"scipy.sparse.linalg.lsmr ({used})",
                                 callback=iteration_callback)
            sol.stopping["preconditioner"] = "jacobi (column norms)" if jacobi else "none"
            if cn is not None:  # cond(M): error bounds of x = My pick it up
                touched = cn > 0
                sol.stopping["scale_spread"] = (float(cn[touched].max() / cn[touched].min())
                                                if touched.any() else 1.0)
        x, iters, converged, stop, cond_est = (sol.x, sol.iterations, sol.converged,
                                               sol.stopping, sol.cond_estimate)
    # the a-posteriori check: a fresh forward pass by the layer's own conv (torch conv2d),
    # independent of the operator the solver iterated with
    r, z = sel.residual(x) if n else (np.zeros(0), None)
    gn = float(np.linalg.norm(g))
    rel = float(np.linalg.norm(r) / gn) if gn > 0 else 0.0
    checks = {"relative_residual": rel, "converged": converged}
    if inverse == "exact" and n:
        _check_exact(sel, x, g, rel, fb, is_frame, used, sol, atol, btol, checks,
                     on_inconsistent, z)
    if not converged:
        name = "CGLS" if used == "cgls" else "LSMR"
        report(f"{name} did not converge on the pooled system: {stop.get('reason', '?')} "
               f"after {iters} iterations (relative residual {rel:.3e}); raise maxiter or "
               "loosen atol/btol", on_not_converged, NotConvergedWarning, NotConvergedError,
               stacklevel=4)
    return PoolInversionResult(
        x=x.reshape(sel.input_shape), z=g_given, solver=used, iterations=iters,
        converged=converged, frame_bounds=fb, injective=is_frame, stopping=stop,
        seconds=time.perf_counter() - t0, _residual=lambda: rel, checks=checks,
        inverse=inverse, n_selected=n, n_zero_window=sel_given.n_zero_window,
        cond_estimate=cond_est)


def _check_exact(sel: MaxPoolSelection, x: np.ndarray, g: np.ndarray, rel: float, fb,
                 is_frame, used: str, sol, atol: float, btol: float, checks: dict,
                 on_inconsistent: str, z: np.ndarray | None = None) -> None:
    """Residual and switch checks of an exact pooled inverse (`theory.checks`)."""
    layer = sel.layer
    kh, kw = layer.kernel_size
    taps = layer.in_channels * kh * kw
    if fb is not None:
        cond = fb.cond
    elif sol is not None and sol.singular_values is not None and sel.n_selected >= sel.dim:
        sv = sol.singular_values          # the dense solve's exact spectrum
        cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")
    else:
        cond = float("inf")
    tol = rounding_residual_tolerance(taps, layer.out_channels, cond)
    gnorm = float(np.linalg.norm(g))
    if used.startswith("lsmr"):
        solver_tol = lsmr_residual_tolerance(atol, btol, sol.a_norm_estimate,
                                             sol.x_norm_estimate, gnorm, sol.iterations, taps)
    elif used == "cgls":
        solver_tol = cgls_residual_tolerance(atol, btol, sol.a_norm_estimate,
                                             sol.x_norm_estimate, gnorm, taps,
                                             abs_norm=sel.abs_norm_bound(),
                                             solution_norm=float(np.linalg.norm(x)),
                                             istop=int(sol.stopping.get("istop", 1)),
                                             cond=sol.cond_estimate)
    else:
        solver_tol = float("nan")
    # the solver's guarantee widens the rounding tolerance; without a certificate (no
    # finite cond) it is the only tolerance, and it holds only for a converged solve
    if np.isfinite(solver_tol) and (np.isfinite(tol) or checks.get("converged", False)):
        tol = max(tol, solver_tol) if np.isfinite(tol) else solver_tol
    checks["residual_tolerance"] = tol
    if rel > tol:
        report(f"the pooled features and switches are not consistent with this layer: "
               f"relative residual ||W_x^T x' - g|| / ||g|| = {rel:.3e} > {tol:.3e} (the "
               f"{used} solver's rounding/stopping bound); wrong switches, altered values, a "
               f"missing or wrong bias, or features of another layer than {layer!r}",
               on_inconsistent, InconsistentFeaturesWarning, InconsistentFeaturesError,
               stacklevel=5)
    if is_frame is True and np.isfinite(cond):
        bad = switch_violations(sel, x, slack=2.0 * cond * max(rel, tol), z=z)
        checks["switch_violations"] = bad
        if bad:
            report(f"{bad} pooling switch(es) do not point at the largest (positive channel) "
                   "or smallest (negative channel) response of their window for the "
                   "reconstruction: the switches are not those of these features",
                   on_inconsistent, InconsistentFeaturesWarning, InconsistentFeaturesError, stacklevel=5)


def switch_violations(sel: MaxPoolSelection, x: np.ndarray, slack: float,
                      z: np.ndarray | None = None) -> int:
    """Pooled units whose switch is not the window's extreme response of `A x` beyond
    `slack * ||A x||_inf` (plus rounding).

    For the true input every switch is an argmax (positive channel) or argmin (negative
    channel) of its window. A reconstruction with relative error $\\epsilon$ moves
    every response by at most $\\sigma_{\\max}\\epsilon\\|x\\|$; `slack` is that
    allowance relative to the largest response.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, conv_crelu_maxpool, invert_crelu_maxpool
    >>> w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
    >>> layer = ConvLayer(w.reshape(9, 1, 3, 3), padding=1)        # 9 orthonormal filters
    >>> x = np.random.default_rng(1).random((1, 6, 6))
    >>> g, s = conv_crelu_maxpool(x, layer)
    >>> from theory import selection
    >>> from theory.pooling import switch_violations
    >>> sel = selection(g, s, layer, x.shape)
    >>> switch_violations(sel, x, slack=1e-12)              # the true input: none
    0
    >>> bad = switch_violations(sel, np.random.default_rng(2).random((1, 6, 6)), slack=1e-12)
    >>> bad > 0                                             # another input breaks the switches
    True
    """
    p = sel.pool
    if z is None:   # the responses of x (bias-free: a per-filter constant moves no switch)
        z = np.asarray(sel.layer.forward(x.reshape(sel.input_shape)), dtype=np.float64)
    z = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float64))[None]
    k, ho, wo = z.shape[1:]
    zmax = F.max_pool2d(z, p, stride=p)[0].reshape(k, -1)
    zmin = -F.max_pool2d(-z, p, stride=p)[0].reshape(k, -1)
    flat = z[0].reshape(k, -1)
    keep = ~sel.zero_window
    filt, pos, sign = sel.filter_index[keep], sel.position[keep], sel.sign[keep]
    win = (pos // wo // p) * (wo // p) + (pos % wo) // p
    val = flat[filt, pos].numpy()
    peak = float(flat.abs().max()) if flat.numel() else 0.0
    allow = slack * peak + 16 * sel._taps * _EPS * peak
    ext = np.where(sign > 0, zmax[filt, win].numpy(), zmin[filt, win].numpy())
    return int(np.sum(np.abs(ext - val) > allow))


__all__ = ["Inverse", "MaxPoolSelection", "PoolInversionResult", "SPARSE_LIMIT",
           "conv_crelu_maxpool", "crelu_maxpool", "invert_crelu_maxpool", "pooled_shape",
           "selection", "validate_pooled"]
