r"""A-posteriori checks of an inverse: no answer is returned silently wrong.

Notes
-----
Every inverse of the package measures, after solving, what it can check without the true
input, puts the numbers on the result (`checks`) and warns or raises (configurable, like
`on_non_injective`) when a check fails:

*Residual.* For features that really are $\operatorname{CReLU}(Ax)$ the system
$Ax' = z$ is consistent. Computed features carry rounding errors: each
$z_j = \langle a_j, x\rangle$ is a sum of $n = C k_h k_w$ products, whose
backward error is about $\sqrt n\,u$ (Higham and Mary, SIAM J. Sci. Comput. 2019,
probabilistic bound), so $z = (A + \Delta A)x$ with $\|\Delta A x\| \lesssim
\sqrt n\, u\,\|A\|\|x\| \le \sqrt n\,u\,\operatorname{cond}(A)\|z\|$; a backward-stable
solver adds a residual of the same order. The tolerance on the relative residual is
therefore $4\sqrt{C k_h k_w K}\,\operatorname{cond}(A)\,u$
(`theory.recovery_tolerance`), or, for LSMR, what its own stopping rule guarantees,
$\mathrm{btol} + \mathrm{atol}\,\|A\|\|x'\|/\|z\|$, whichever is larger. A larger
residual means the data are not in the range of $A$: not CReLU features of this
layer (ReLU features, features of another layer, corrupted values, wrong pooling switches).

*CReLU structure.* A CReLU output has at most one non-zero half at each position
($[z]_+[-z]_+ = 0$); positions where both halves are positive are counted.

*Pooling switches.* With the reconstruction $x'$, every switch must point at the
largest (positive channel) or smallest (negative channel) response of its window, up to the
residual's size; violations are counted.

*Given frame bounds.* Bounds passed in by the caller must contain the Rayleigh quotient
$\|Av\|^2/\|v\|^2$ of the reconstruction (up to rounding); bounds of another layer
usually do not.

For CGLS (`theory.solvers.solve_cgls`) the stopping rule is tested on the true residual,
recomputed in float64, so its guarantee has no recurrence term: the residual it computed
satisfies $\|r\| \le \mathrm{btol}\|b\| + \mathrm{atol}\|A\|\|x'\|$, and an independent
evaluation (the layer's own conv) differs from it by the rounding of two evaluations
(`cgls_residual_tolerance`).

*Convergence.* An iterative solve that stopped on its iteration cap (or on a condition-number
limit) is not converged, whatever its residual.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

_EPS = float(np.finfo(np.float64).eps)
Policy = Literal["warn", "raise", "ignore"]


class InconsistentFeaturesWarning(UserWarning):
    """The features are not an output of the stated layer (a check failed; see the message).

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from theory import ConvLayer, crelu_features, invert_crelu
    >>> rng = np.random.default_rng(0)
    >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
    >>> other = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
    >>> x = rng.standard_normal((2, 8, 8))
    >>> h = crelu_features(x, other)                 # features of another layer
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     res = invert_crelu(h, layer, x.shape)
    >>> [w.category.__name__ for w in caught]
    ['InconsistentFeaturesWarning']
    >>> bool(res.checks["relative_residual"] > res.checks["residual_tolerance"])
    True
    """


class InconsistentFeaturesError(ValueError):
    """Raised instead of `InconsistentFeaturesWarning` with `on_inconsistent="raise"`.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from theory import ConvLayer, crelu_features, invert_crelu
    >>> rng = np.random.default_rng(0)
    >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
    >>> x = rng.standard_normal((2, 8, 8))
    >>> from theory.checks import InconsistentFeaturesError
    >>> h = crelu_features(x, layer)
    >>> h[0, 0, 0] = h[4, 0, 0] = 1.0                # both halves positive: not a CReLU output
    >>> try:
    ...     invert_crelu(h, layer, x.shape, on_inconsistent="raise")
    ... except InconsistentFeaturesError as err:
    ...     print(str(err).split(":")[0], isinstance(err, ValueError))
    the features are not a CReLU output True
    """


class NotConvergedWarning(UserWarning):
    """An iterative solver stopped before meeting its stopping rule.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from theory import ConvLayer, crelu_features, invert_crelu
    >>> rng = np.random.default_rng(0)
    >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
    >>> x = rng.standard_normal((2, 8, 8))
    >>> h = crelu_features(x, layer)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     res = invert_crelu(h, layer, x.shape, solver="lsmr", maxiter=3,
    ...                        on_inconsistent="ignore", precondition="none")
    >>> [w.category.__name__ for w in caught], res.converged
    (['NotConvergedWarning'], False)
    """


class NotConvergedError(RuntimeError):
    """Raised instead of `NotConvergedWarning` with `on_not_converged="raise"`.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from theory import ConvLayer, crelu_features, invert_crelu
    >>> rng = np.random.default_rng(0)
    >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
    >>> x = rng.standard_normal((2, 8, 8))
    >>> from theory.checks import NotConvergedError
    >>> h = crelu_features(x, layer)
    >>> try:                      # unpreconditioned (the circulant one would need 1 step)
    ...     invert_crelu(h, layer, x.shape, solver="lsmr", maxiter=3, on_inconsistent="ignore",
    ...                  on_not_converged="raise", precondition="none")
    ... except NotConvergedError as err:
    ...     print(str(err).split(":")[0], isinstance(err, RuntimeError))
    LSMR did not converge True
    """


def check_policy(value: str, name: str) -> None:
    """A clear `ValueError` unless `value` is one of `warn`, `raise`, `ignore`.

    Examples
    --------
    >>> from theory.checks import check_policy
    >>> check_policy("warn", "on_inconsistent")           # valid: silent
    >>> try:
    ...     check_policy("loud", "on_inconsistent")
    ... except ValueError as err:
    ...     print(err)
    unknown on_inconsistent 'loud'; expected one of warn, raise, ignore
    """
    if value not in ("warn", "raise", "ignore"):
        raise ValueError(f"unknown {name} {value!r}; expected one of warn, raise, ignore")


def report(message: str, policy: Policy, warning: type[Warning], error: type[Exception],
           stacklevel: int = 3) -> None:
    """Raise `error(message)`, warn with `warning` or do nothing, as `policy` says.

    `stacklevel` counts from this function: 3 points at the caller of its caller.

    Examples
    --------
    >>> import warnings
    >>> from theory.checks import NotConvergedError, NotConvergedWarning, report
    >>> report("stopped early", "ignore", NotConvergedWarning, NotConvergedError)   # nothing
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     report("stopped early", "warn", NotConvergedWarning, NotConvergedError)
    >>> caught[0].category.__name__, str(caught[0].message)
    ('NotConvergedWarning', 'stopped early')
    >>> try:
    ...     report("stopped early", "raise", NotConvergedWarning, NotConvergedError)
    ... except NotConvergedError as err:
    ...     print(repr(err))
    NotConvergedError('stopped early')
    """
    if policy == "raise":
        raise error(message)
    if policy == "warn":
        warnings.warn(message, warning, stacklevel=stacklevel)


def rounding_residual_tolerance(taps: int, filters: int, cond: float) -> float:
    """$4\\sqrt{n K}\\,\\operatorname{cond}\\,u$: the relative residual of consistent data
    (module notes); `inf` when `cond` is not finite (no certificate, or not injective).

    Examples
    --------
    >>> import numpy as np
    >>> from theory.checks import rounding_residual_tolerance
    >>> eps = float(np.finfo(np.float64).eps)
    >>> tol = rounding_residual_tolerance(taps=2 * 3 * 3, filters=8, cond=5.0)   # C kh kw = 18
    >>> round(tol / eps, 6)                               # 4 * sqrt(18 * 8) * 5 = 240
    240.0
    >>> rounding_residual_tolerance(18, 8, float("inf"))  # no certificate: nothing to check
    inf
    """
    if not np.isfinite(cond):
        return float("inf")
    return 4.0 * float(np.sqrt(taps * filters)) * cond * _EPS


def lsmr_residual_tolerance(atol: float, btol: float, a_norm: float, x_norm: float,
                            b_norm: float, iterations: int = 0, taps: int = 1) -> float:
    r"""What LSMR's stopping rule guarantees for the *true* relative residual.

    LSMR stops when its recurrence for $\|r\|$ satisfies
    $\|r\| \le \mathrm{btol}\|b\| + \mathrm{atol}\|A\|\|x\|$ (`a_norm`: LSMR's own
    estimate of $\|A\|$). The recurrence tracks the true residual only to rounding:
    each iteration's products and updates add errors of order $u\|A\|\|x\|$, and the
    final check computes $Ax$ with $n$ = `taps` terms per entry, so we add
    $4(k + \sqrt n)\,u\,\|A\|\|x\|$ (`k` iterations; the same probabilistic
    constant as `rounding_residual_tolerance`).

    Examples
    --------
    >>> from theory.checks import lsmr_residual_tolerance
    >>> tol = lsmr_residual_tolerance(atol=1e-10, btol=1e-10, a_norm=3.0, x_norm=2.0, b_norm=6.0)
    >>> f"{tol:.4e}"                                      # btol + atol * 3 * 2 / 6, plus rounding
    '2.0000e-10'
    >>> lsmr_residual_tolerance(1e-10, 1e-10, 3.0, 2.0, b_norm=0.0)
    inf
    """
    if b_norm == 0 or not np.isfinite(a_norm):
        return float("inf")
    drift = 4.0 * (iterations + np.sqrt(taps)) * _EPS
    return btol + (atol + drift) * a_norm * x_norm / b_norm


def cgls_residual_tolerance(atol: float, btol: float, a_norm: float, x_norm: float,
                            b_norm: float, taps: int = 1, abs_norm: float | None = None,
                            solution_norm: float | None = None, istop: int = 1,
                            cond: float | None = None) -> float:
    r"""What CGLS's stopping rule guarantees for the relative residual, as evaluated
    independently (by another conv routine than the solver's).

    `solve_cgls` stops when the float64 residual it recomputes from $x'$ satisfies
    $\|b - \mathrm{fl}_1(Ax')\| \le \mathrm{btol}\|b\| + \mathrm{atol}\,\alpha\,\xi$
    (rule 1; $\alpha\xi$ = `a_norm * x_norm`, the product its rule used:
    `Solution.a_norm_estimate * Solution.x_norm_estimate`). Each entry of an evaluation
    of $Ax'$ is a dot product of $n$ = `taps` terms, with error about
    $\sqrt n\,u\,(|A||x'|)_i$ (the probabilistic bound of `rounding_residual_tolerance`,
    with its constant 4), and $\||A||x'|\| \le \||A|\|_2\|x'\|$ (`abs_norm`, an upper
    bound on $\||A|\|_2$ such as `MaxPoolSelection.abs_norm_bound`, and `solution_norm`
    $= \|x'\|$; default `a_norm` and `x_norm`). Two evaluations differ by at most the sum of
    their errors, so the independently evaluated relative residual is at most

    $$
    \mathrm{btol} + \mathrm{atol}\,\frac{\alpha\,\xi}{\|b\|}
    + 8\sqrt n\,u\,\frac{\||A|\|\,\|x'\|}{\|b\|}.
    $$

    Unlike LSMR's (`lsmr_residual_tolerance`) there is no term growing with the
    iteration count: the rule was tested on a fresh residual, not on the recurrence.

    *A stop on rule 2* (``istop=2``: the gradient test
    $\|(AS)^T\tilde r\| \le \nu(\mathrm{atol}\|\tilde r\| + \delta)$ on a fresh float64
    residual $\tilde r$, $\nu \le \|AS\|$, $\delta = 8\sqrt n\,u\,\||A|\|\,\|x'\|$)
    says nothing about $\|\tilde r\|$ by itself: on consistent data the solve reaches the
    rounding floor of rule 2 before rule 1 when btol is near $u$. For consistent data
    ($b = Ax^\star$) the exact residual $r = A(x^\star - x')$ lies in the range of $AS$, so
    $\|(AS)^Tr\| \ge \sigma_{\min}(AS)\|r\|$, while
    $\|(AS)^Tr\| \le \|(AS)^T\tilde r\| + \|AS\|\,\|r - \tilde r\|
    \le \|AS\|(\mathrm{atol}(\|r\| + \delta) + 2\delta)$ (the second $\delta$ also covers
    the gradient's own rounding, smaller by the factor $\|\tilde r\|/\|b\|$). With
    $\kappa = \kappa(AS)$ = `cond` and $\kappa\,\mathrm{atol} < 1/2$:

    $$
    \frac{\|b - Ax'\|_{\rm indep}}{\|b\|} \le
    \frac{1}{\|b\|}\Big(\frac{\kappa(2 + \mathrm{atol})\,\delta}{1 - \kappa\,\mathrm{atol}}
    + \delta\Big).
    $$

    `cond` is the solver's Ritz estimate of $\kappa(AS)$ (`Solution.cond_estimate`), which
    is from below: a too small $\kappa$ makes this tolerance too small, so the error it can
    cause is a false alarm, never a missed inconsistency. Without a finite `cond` (or with
    $\kappa\,\mathrm{atol} \ge 1/2$) the rule-1 tolerance is returned, the stricter one.

    Examples
    --------
    >>> from theory.checks import cgls_residual_tolerance
    >>> tol = cgls_residual_tolerance(atol=1e-10, btol=1e-10, a_norm=3.0, x_norm=2.0,
    ...                               b_norm=6.0, taps=27)
    >>> f"{tol:.4e}"                                      # btol + atol * 3 * 2 / 6, plus rounding
    '2.0001e-10'
    >>> cgls_residual_tolerance(1e-10, 1e-10, 3.0, 2.0, b_norm=0.0)
    inf
    >>> r2 = cgls_residual_tolerance(1e-14, 1e-14, 3.0, 2.0, 6.0, taps=27, istop=2, cond=50.0)
    >>> delta = 8 * 27 ** 0.5 * 2.0 ** -52 * 3.0 * 2.0 / 6.0       # the rounding floor / ||b||
    >>> bool(abs(r2 - (50 * (2 + 1e-14) * delta / (1 - 50e-14) + delta)) < 1e-25)
    True
    """
    if b_norm == 0 or not np.isfinite(a_norm):
        return float("inf")
    abs_norm = a_norm if abs_norm is None or not np.isfinite(abs_norm) else abs_norm
    solution_norm = x_norm if solution_norm is None else solution_norm
    floor = 8.0 * np.sqrt(taps) * _EPS * abs_norm * solution_norm / b_norm   # delta / ||b||
    rule1 = btol + atol * a_norm * x_norm / b_norm + floor
    if istop == 2 and cond is not None and np.isfinite(cond) and cond * atol < 0.5:
        return float(cond * (2.0 + atol) * floor / (1.0 - cond * atol) + floor)
    return float(rule1)


def crelu_overlap(h: np.ndarray, axis: int) -> tuple[int, float]:
    """Positions where both CReLU halves are positive, and the largest `min(h+, h-)`
    relative to `max |h|` (both 0 for a CReLU output).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import crelu
    >>> from theory.checks import crelu_overlap
    >>> h = crelu(np.random.default_rng(0).standard_normal((3, 4, 4)), axis=0)
    >>> crelu_overlap(h, axis=0)                           # a CReLU output: no overlap
    (0, 0.0)
    >>> h[0, 0, 0] = h[3, 0, 0] = 0.5 * h.max()            # both halves positive at one place
    >>> count, worst = crelu_overlap(h, axis=0)
    >>> count, round(worst, 6)
    (1, 0.5)
    """
    k = h.shape[axis] // 2
    pos = np.take(h, np.arange(k), axis=axis)
    neg = np.take(h, np.arange(k, 2 * k), axis=axis)
    both = (pos > 0) & (neg > 0)
    peak = float(np.abs(h).max(initial=0.0))
    worst = float(np.minimum(pos, neg)[both].max(initial=0.0))
    return int(both.sum()), (worst / peak if peak > 0 else 0.0)


def rayleigh_outside(quotient: float, lower: float, upper: float, dim: int) -> bool:
    """Whether `quotient` lies outside `[lower, upper]` beyond rounding
    ($10\\sqrt D\\,u$ relative to `upper`).

    Examples
    --------
    >>> from theory.checks import rayleigh_outside
    >>> rayleigh_outside(5.0, lower=4.0, upper=9.0, dim=100)
    False
    >>> rayleigh_outside(9.0 * (1 + 1e-15), lower=4.0, upper=9.0, dim=100)   # rounding: inside
    False
    >>> rayleigh_outside(3.0, lower=4.0, upper=9.0, dim=100)
    True
    """
    slack = 10.0 * np.sqrt(dim) * _EPS * max(upper, quotient)
    return bool(quotient < lower - slack or quotient > upper + slack)


__all__ = ["InconsistentFeaturesError", "InconsistentFeaturesWarning", "NotConvergedError",
           "NotConvergedWarning", "cgls_residual_tolerance", "check_policy", "crelu_overlap",
           "lsmr_residual_tolerance", "rayleigh_outside", "report", "rounding_residual_tolerance"]
