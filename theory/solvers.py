r"""The least-squares solvers behind every inverse: dense, LSMR and FFT, one result type.

Notes
-----
Every inverse of the package solves a consistent least-squares problem
$\min_x \|A x - b\|_2$ for the minimum-norm solution $A^+ b$:

`dense`
    `numpy.linalg.lstsq` (LAPACK's SVD-based `gelsd`) on the dense matrix; backward
    stable, error $O(\operatorname{cond}(A)\,\varepsilon)$.
`lsmr`
    scipy's LSMR started at 0, which converges to the minimum-norm solution; stopped by
    `atol`/`btol`/`maxiter`. A run stopped by its iteration cap or by the condition
    limit is *not converged* (`Solution.converged` is `False`), whatever the
    residual.
`cgls`
    conjugate gradients on the normal equations in the stable least-squares form (CGLS,
    Bjorck 1996, Sec. 7.4), optionally with Jacobi column scaling and float32 products
    (mixed precision with residual replacement); from 0 it converges to the minimum-norm
    solution. It stops on LSMR's two rules evaluated on the *true* residual
    $b - Ax$ (recomputed in float64, not the recurrence): `solve_cgls`.
`fft`
    the per-frequency pseudo-inverse of a circulant conv layer
    (`theory.fft.CirculantPlan`); direct, always converged.

Optional column scaling (Jacobi) for LSMR solves $A M y = b$, $x = M y$ with
$M$ diagonal: for an injective $A$ the solution is the same. For CGLS the same scaling
is the preconditioner $M^2$ of the normal equations.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import scipy.sparse
from scipy.linalg.blas import daxpy
from scipy.sparse.linalg import LinearOperator, aslinearoperator, lsmr

#: scipy's lsmr `istop` codes and their meaning (reported in `stopping`).
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
#: The `istop` codes that mean LSMR met its stopping rule (converged).
LSMR_CONVERGED = frozenset({0, 1, 2, 4, 5})


@dataclasses.dataclass(frozen=True)
class Solution:
    r"""One least-squares solve.

    Attributes
    ----------
    x : numpy.ndarray
        The solution, `(D,)` or `(N, D)` for several right-hand sides.
    solver : str
        `"dense"`, `"lsmr"`, `"cgls"` or `"fft"`.
    iterations : int
        LSMR or CGLS iterations (largest over the right-hand sides); 0 for direct solvers.
    converged : bool
        Whether every solve met its stopping rule (direct solvers: always).
    stopping : dict
        The stopping rule and why the solver stopped.
    cond_estimate : float
        LSMR's own estimate of the condition number, or CGLS's from the extreme Ritz
        values of its Lanczos process (of the scaled operator with Jacobi); a lower
        estimate; `nan` for direct solvers.
    residual_norms : numpy.ndarray or None
        $\|Ax - b\|$ per right-hand side where the solver computes it exactly on the
        way (the FFT solver, by Parseval); `None` otherwise.
    a_norm_estimate, x_norm_estimate : float
        LSMR's estimates of $\|A\|$ and of the norm of the solution of the system it
        solved (with Jacobi scaling: of $AM$ and $y$), the ones its stopping
        rule uses; the same for CGLS (its $\|AM\|$ from the largest Ritz value).
    singular_values : numpy.ndarray or None
        The singular values the dense solver computed on the way (LAPACK `gelsd`).

    Examples
    --------
    >>> import numpy as np
    >>> from theory.solvers import solve_dense
    >>> a = np.random.default_rng(0).standard_normal((6, 3))
    >>> sol = solve_dense(a, a @ np.array([1.0, -2.0, 0.5]))
    >>> sol.solver, sol.iterations, sol.converged
    ('dense', 0, True)
    >>> np.round(sol.x, 12)
    array([ 1. , -2. ,  0.5])
    >>> sol.stopping
    {'solver': 'numpy.linalg.lstsq (SVD, minimum norm)'}
    """

    x: np.ndarray
    solver: str
    iterations: int
    converged: bool
    stopping: dict[str, Any]
    cond_estimate: float = float("nan")
    residual_norms: np.ndarray | None = None
    a_norm_estimate: float = float("nan")
    x_norm_estimate: float = float("nan")
    singular_values: np.ndarray | None = None


def solve_dense(matrix: np.ndarray, b: np.ndarray) -> Solution:
    """Minimum-norm least squares by `numpy.linalg.lstsq` (`b`: `(M,)` or `(M, N)`).

    Examples
    --------
    >>> import numpy as np
    >>> from theory.solvers import solve_dense
    >>> a = np.random.default_rng(0).standard_normal((6, 3))
    >>> X = np.arange(6.0).reshape(3, 2)                 # two right-hand sides, as columns
    >>> sol = solve_dense(a, a @ X)
    >>> bool(np.allclose(sol.x, X)), sol.singular_values.shape
    (True, (3,))
    >>> wide = np.array([[1.0, 1.0]])                    # x1 + x2 = 2: minimum norm (1, 1)
    >>> solve_dense(wide, np.array([2.0])).x
    array([1., 1.])
    """
    x, _, _, sv = np.linalg.lstsq(np.asarray(matrix, dtype=np.float64), b, rcond=None)
    return Solution(x=x, solver="dense", iterations=0, converged=True,
                    stopping={"solver": "numpy.linalg.lstsq (SVD, minimum norm)"},
                    singular_values=sv)


def solve_lsmr(op, b: np.ndarray, *, atol: float, btol: float, maxiter: int | None,
               column_scale: np.ndarray | None = None, label: str = "scipy.sparse.linalg.lsmr",
               callback: Callable[[int], None] | None = None,
               preconditioner: LinearOperator | None = None) -> Solution:
    """LSMR from 0 on one right-hand side `b` (`(M,)`), optionally right-preconditioned.

    Parameters
    ----------
    op : LinearOperator, sparse matrix or array (M x D)
    b : array (M,)
    atol, btol, maxiter : LSMR's stopping rule
    column_scale : array (D,), optional
        Solve $A\\,\\mathrm{diag}(s)\\,y = b$ and return $x = s \\odot y$.
    preconditioner : LinearOperator (D x D), optional
        A nonsingular right preconditioner $M$ (`theory.preconditioner`): solve $AMy = b$
        and return $x = My$ (after `column_scale`, if both are given: $M\\,\\mathrm{diag}(s)$).
        The stopping rule and the reported norms are those of the preconditioned system.
    label : str
        The `stopping["solver"]` entry.
    callback : callable(int), optional
        Called with the iteration count after every iteration (progress display).

    Examples
    --------
    >>> import numpy as np
    >>> from theory.solvers import solve_lsmr
    >>> a = np.random.default_rng(0).standard_normal((20, 5))
    >>> x = np.arange(5.0)
    >>> sol = solve_lsmr(a, a @ x, atol=1e-12, btol=1e-12, maxiter=None)
    >>> sol.converged, sol.stopping["reason"], bool(np.allclose(sol.x, x))
    (True, 'Ax - b is small enough, given atol, btol', True)
    >>> capped = solve_lsmr(a, a @ x, atol=1e-12, btol=1e-12, maxiter=2)
    >>> capped.converged, capped.iterations, capped.stopping["reason"]
    (False, 2, 'the iteration limit was reached')
    >>> scaled = solve_lsmr(a, a @ x, atol=1e-12, btol=1e-12, maxiter=None,
    ...                     column_scale=1 / np.linalg.norm(a, axis=0))   # Jacobi
    >>> bool(np.allclose(scaled.x, x))
    True
    """
    a = op
    if callback is not None:
        a = _counting(a, callback)
    if preconditioner is not None:
        a = aslinearoperator(a) @ aslinearoperator(preconditioner)
    if column_scale is not None:
        a = aslinearoperator(a) @ aslinearoperator(scipy.sparse.diags(column_scale))
    out = lsmr(a, b, atol=atol, btol=btol, maxiter=maxiter)
    x, istop, iters = out[0], int(out[1]), int(out[2])
    if column_scale is not None:
        x = column_scale * x
    if preconditioner is not None:
        x = preconditioner.matvec(x)
    stopping = {"solver": label, "atol": atol, "btol": btol, "maxiter": maxiter,
                "istop": istop, "reason": LSMR_REASONS.get(istop, "?")}
    anorm = float(out[5])  # LSMR's estimate of ||A|| (of the scaled operator with Jacobi)
    xnorm = float(out[7])  # ||x|| of the system LSMR solved (||y|| with Jacobi)
    return Solution(x=x, solver="lsmr", iterations=iters, converged=istop in LSMR_CONVERGED,
                    stopping=stopping, cond_estimate=float(out[6]), a_norm_estimate=anorm,
                    x_norm_estimate=xnorm)


_EPS = float(np.finfo(np.float64).eps)
_EPS32 = float(np.finfo(np.float32).eps)
#: The Ritz values come from CG's coefficients while the gradient exceeds this many times
#: its rounding error (`solve_cgls`, Notes, *Condition estimate*).
LANCZOS_FLOOR = 10.0

#: Why `solve_cgls` stopped (reported in `stopping["reason"]`); 0-7 are LSMR's codes, 8 and
#: 9 CGLS's own (not converged).
CGLS_REASONS = {
    0: "x = 0 is the exact solution",
    1: "Ax - b is small enough, given atol, btol",
    2: "the least-squares solution is good enough, given atol",
    7: "the iteration limit was reached",
    8: "breakdown: the preconditioned gradient vanished but A^T r did not (singular "
       "column scaling?)",
    9: "stagnation: the residual stopped falling (inconsistent data, or a rule below the "
       "rounding floor)",
}


def solve_cgls(op, b: np.ndarray, *, atol: float, btol: float, maxiter: int,
               column_scale: np.ndarray | None = None, precision: str = "float64",
               a_norm: float | None = None, x0: np.ndarray | None = None,
               replace_factor: float = 1e-3, stall_window: int = 25,
               stall_drop: float = 1e-3, taps: int | None = None, label: str = "cgls",
               callback: Callable[[int], None] | None = None) -> Solution:
    r"""Preconditioned CGLS on $\min\|Ax - b\|$, stopped by LSMR's rules on the true residual.

    Parameters
    ----------
    op : LinearOperator, sparse matrix or array (M x D)
        `precision="mixed"` needs `op.matvec32` and `op.rmatvec32` (products in float32,
        float64 in and out), as `theory.selection.SelectedRows.linear_operator` has.
    b : array (M,)
    atol, btol : float
        The stopping rule (module notes of `theory.solvers`; Notes below).
    maxiter : int
    column_scale : array (D,), optional
        $S$ = diag(`column_scale`): CGLS on $AS$, i.e. the preconditioner $M = S^2$ of
        the normal equations (Jacobi: $S = \operatorname{diag}(1/\|a_j\|)$).
    precision : {"float64", "mixed"}
        `mixed`: the two products per iteration run in float32; $x$ and $r$ are kept in
        float64, and $r$ is replaced by the float64 residual $b - Ax$ whenever the
        recurrence has fallen by `replace_factor` since the last replacement and before
        any stop (van der Vorst and Ye, SIAM J. Sci. Comput. 22, 2000). If a replacement
        finds the recurrence more than 10 times off, the solve finishes in float64; so it
        does when it stalls (below): a float32 gradient has an error of about
        $u_{32}\|A\|\|r\|$, so on inconsistent data rule 2 with atol below $10^{-7}$
        can only hold in float64.
    a_norm : float, optional
        An upper bound on $\||A|\|_2$ (`MaxPoolSelection.abs_norm_bound`), reported in
        `stopping["a_norm_bound"]` for the rounding term of
        `theory.checks.cgls_residual_tolerance`; the rules do not use it.
    x0 : array (D,), optional
        Start (default 0; from 0 the iterates stay in the row space, so a consistent
        system converges to the minimum-norm solution, with Jacobi to the minimum
        $\|S^{-1}x\|$ one).
    replace_factor : float in (0, 1)
    stall_window, stall_drop : int, float
        Stagnation stop: when neither the residual $\|r\|$ nor the smallest gradient
        $\|A^Tr\|$ so far fell by the fraction `stall_drop` over the last `stall_window`
        iterations, the solve stops, *not converged* (code 9). For consistent data CGLS's
        residual falls by about $(\hat\kappa-1)/(\hat\kappa+1)$ per iteration; for
        inconsistent data the residual levels off at the least-squares one while the
        gradient keeps falling at that rate until rule 2 holds. Both stalling for 25
        iterations means rounding: a rule below the floor of float64 (e.g. rule 2 with a
        tiny atol on almost consistent data). In mixed precision a stall switches to
        float64 products (and restarts the window) instead. `stall_window=0` disables it.
    taps : int, optional
        Terms per row of $A$ (with `a_norm`): gives rule 2 its rounding floor (Notes).
    label : str
        The `stopping["solver"]` entry.
    callback : callable(int), optional
        Called with the iteration count after every iteration.

    Returns
    -------
    Solution
        `solver="cgls"`; `converged` when rule 1 or 2 holds for the true residual;
        `cond_estimate` estimates $\kappa(AS)$; `stopping` has the rule, the true and
        the recurrence's relative residuals, the replacements and the Ritz values.

    Notes
    -----
    *Iteration.* With $r_k = b - Ax_k$, $s_k = A^Tr_k$, $z_k = Ms_k$,
    $\gamma_k = s_k^Tz_k$: $q = Ap_k$, $\alpha_k = \gamma_k/\|q\|^2$,
    $x_{k+1} = x_k + \alpha_kp_k$, $r_{k+1} = r_k - \alpha_kq$,
    $p_{k+1} = z_{k+1} + (\gamma_{k+1}/\gamma_k)p_k$: one product with $A$ and one with
    $A^T$ per iteration. It is CG on $M^{1/2}A^TAM^{1/2}$; for consistent data
    ($b = Ax^\star$) $r_k = A(x^\star - x_k)$, so CG's error norm is the residual norm
    and CGLS minimises $\|r_k\|$ over $x_0 + \mathcal K_k(MA^TA, MA^Tr_0)$, with

    $$
    \frac{\|r_k\|}{\|r_0\|} \le 2\Bigl(\frac{\hat\kappa - 1}{\hat\kappa + 1}\Bigr)^k,
    \qquad \hat\kappa = \kappa(AM^{1/2}),
    $$

    the usual CG bound in the energy norm of $A^TA$ (Greenbaum, *Iterative Methods for
    Solving Linear Systems*, Thm 3.1.1), i.e. $k \le \tfrac{\hat\kappa}{2}\ln\tfrac{2}{\epsilon}$
    iterations for $\|r_k\| \le \epsilon\|r_0\|$.

    *Stopping rule* (LSMR's, Fong and Saunders 2011, on the scaled system $AS\,y = b$,
    $x = Sy$, as `solve_lsmr` applies it): rule 1,
    $\|r\| \le \mathrm{btol}\,\|b\| + \mathrm{atol}\,\|AS\|\,\|y\|$; rule 2,
    $\|(AS)^Tr\| \le \mathrm{atol}\,\|AS\|\,\|r\|$ (inconsistent data: the
    least-squares solution); $\|AS\|$ is estimated by $\sqrt{\theta_{\max}}$, the
    largest Ritz value below, from below like LSMR's estimate (a smaller norm only makes
    the rule stricter). Rule 2 is tested on a gradient computed from a float64 residual,
    whose rounding error is up to $\delta = 8\sqrt n\,u\,\||A|\|\,\|x\|$
    (`theory.checks.cgls_residual_tolerance`); with `taps` $= n$ and `a_norm`
    $\ge\||A|\|$ given, rule 2 is
    $\|(AS)^Tr\| \le \|AS\|(\mathrm{atol}\,\|r\| + \delta)$: on almost consistent
    data ($\|r\| \approx 10^{-7}\|b\|$, the lower stages of a deep inverse) the plain
    rule asks for a gradient below what float64 can compute, and only the stagnation stop
    would end the solve. A rule met by the recurrence is confirmed on the true residual, computed
    afresh in float64 (one more product); if it fails there, $r$ is replaced by the true
    residual and the iteration continues. Hence, at exit with rule 1, the float64
    evaluation of $b - Ax$ by `op` satisfies rule 1: no drift term, unlike LSMR's
    recurrence (`theory.checks.cgls_residual_tolerance` turns this into the tolerance
    of an independent evaluation).

    *Condition estimate.* The CG coefficients define the Lanczos tridiagonal $T_k$ of
    $M^{1/2}A^TAM^{1/2}$ (Saad, *Iterative Methods for Sparse Linear Systems*, 6.7.3):
    diagonal $1/\alpha_i + \beta_{i-1}/\alpha_{i-1}$, off-diagonal
    $\sqrt{\beta_i}/\alpha_i$. Its extreme eigenvalues (Ritz values) lie inside the
    spectrum, so $\sqrt{\theta_{\max}/\theta_{\min}}$ estimates $\kappa(AM^{1/2})$ from
    below. That holds while the computed gradients are CG's: near the rounding floor
    they are not, and the coefficients stop defining a Lanczos tridiagonal (one run of
    almost consistent data gave $\theta_{\max} = 6.7\cdot10^3$ for a true
    $\|AS\|^2 = 2.81$, a 49 times too large $\|AS\|$ in rule 2). The run therefore ends at
    the first residual replacement that corrects a drifted recurrence or rechecks a
    rule (a rule met by the recurrence but not by the true residual, the float64 recheck
    of rule 2, a stagnation check) and once
    $\|(AS)^Tr\| \le 10\,\|AS\|\,(u_p\|r\| + u\,\|AS\|\,\|y\|)$
    (`LANCZOS_FLOOR`: the gradient is then wrong by 10% or more; $u_p$ the unit roundoff
    of the products, $u$ float64's: the rounding of a float32 gradient and of a float64
    residual). The periodic replacements of mixed precision keep it going (the residual is
    far above its floor there). The restart at the switch to float64 products, at most one,
    begins a new run, and the estimates come from the longest (`tests/test_cgls.py`,
    against the dense SVD of $AS$).
    $\kappa(A) \le \kappa(AM^{1/2})\,\kappa(M^{-1/2})$ (`stopping["scale_spread"]`
    is $\kappa(M^{-1/2})$ = the spread of the column norms).

    Examples
    --------
    >>> import numpy as np
    >>> from theory.solvers import solve_cgls
    >>> a = np.random.default_rng(0).standard_normal((30, 6))
    >>> x = np.arange(6.0)
    >>> sol = solve_cgls(a, a @ x, atol=1e-12, btol=1e-12, maxiter=100)
    >>> sol.solver, sol.converged, sol.stopping["reason"], bool(np.allclose(sol.x, x))
    ('cgls', True, 'Ax - b is small enough, given atol, btol', True)
    >>> rule = 1e-12 * (1 + sol.a_norm_estimate * sol.x_norm_estimate / np.linalg.norm(a @ x))
    >>> bool(sol.stopping["relative_residual"] <= rule)
    True
    >>> capped = solve_cgls(a, a @ x, atol=1e-12, btol=1e-12, maxiter=2)
    >>> capped.converged, capped.iterations, capped.stopping["reason"]
    (False, 2, 'the iteration limit was reached')
    >>> stuck = solve_cgls(a, a @ x + 1.0, atol=0.0, btol=1e-12, maxiter=1000)  # rule 2 off
    >>> stuck.converged, stuck.stopping["istop"], stuck.iterations < 100
    (False, 9, True)
    >>> sv = np.linalg.svd(a, compute_uv=False)                # the estimate: below the truth
    >>> bool(0.5 * sv[0] / sv[-1] < sol.cond_estimate <= sv[0] / sv[-1] * (1 + 1e-8))
    True
    """
    if precision not in ("float64", "mixed"):
        raise ValueError(f"precision must be 'float64' or 'mixed', got {precision!r}")
    if not 0 < replace_factor < 1:
        raise ValueError(f"replace_factor must be in (0, 1), got {replace_factor}")
    if not (atol >= 0 and btol >= 0 and np.isfinite(atol) and np.isfinite(btol)):
        raise ValueError(f"atol and btol must be finite and >= 0, got {atol}, {btol}")
    maxiter = int(maxiter)
    if maxiter < 0:
        raise ValueError(f"maxiter must be >= 0, got {maxiter}")
    if int(stall_window) < 0 or not 0 < stall_drop < 1:
        raise ValueError(f"stall_window must be >= 0 and stall_drop in (0, 1), got "
                         f"{stall_window}, {stall_drop}")
    stall_window = int(stall_window)
    lin = aslinearoperator(op)
    m_rows, d = lin.shape
    b = np.asarray(b, dtype=np.float64).ravel()
    if b.size != m_rows:
        raise ValueError(f"b has {b.size} entries; the operator has {m_rows} rows")
    mv, rmv = lin.matvec, lin.rmatvec
    mixed = precision == "mixed"
    if mixed:
        mv32, rmv32 = getattr(op, "matvec32", None), getattr(op, "rmatvec32", None)
        if mv32 is None or rmv32 is None:
            raise ValueError("precision='mixed' needs an operator with matvec32 and rmatvec32 "
                             f"(float32 products); {type(op).__name__} has none")
    fwd, adj = (mv32, rmv32) if mixed else (mv, rmv)
    msq = None if column_scale is None else np.asarray(column_scale, dtype=np.float64) ** 2
    if msq is not None and msq.shape != (d,):
        raise ValueError(f"column_scale must have {d} entries, got shape {msq.shape}")

    def precond(v):
        return v if msq is None else msq * v

    bnorm = float(np.linalg.norm(b))
    if x0 is None:
        x = np.zeros(d)
        r = b.copy()
    else:
        x = np.array(x0, dtype=np.float64).ravel()
        if x.size != d:
            raise ValueError(f"x0 has {x.size} values; the operator has {d} columns")
        if not np.isfinite(x).all():
            raise ValueError("x0 contains NaN/Inf")
        r = b - mv(x)
    alphas: list[float] = []
    betas: list[float] = []
    segment: tuple[list, list] = ([], [])   # the longest run of one Lanczos process
    it = replacements = 0
    float64_from = None
    scale = None if msq is None else np.sqrt(msq)
    hi_cache = [0, 0.0]   # (iterations, theta_max) of the last Ritz computation

    def a_norm_now() -> float:
        """||A S|| estimated by the largest Ritz value (from below, as LSMR's estimate)."""
        if hi_cache[0] != len(alphas) + len(segment[0]):
            hi = _ritz_max(*_longest(alphas, betas, segment))
            hi_cache[:] = [len(alphas) + len(segment[0]), float(hi) if np.isfinite(hi) else 0.0]
        return float(np.sqrt(hi_cache[1]))

    inv_scale = (None if scale is None else
                 np.divide(1.0, scale, out=np.zeros_like(scale), where=scale > 0))
    ybuf = np.empty(d)

    def y_norm() -> float:   # ||S^{-1} x||: the solution of the scaled system
        if inv_scale is None:
            return float(np.linalg.norm(x))
        np.multiply(x, inv_scale, out=ybuf)
        return float(np.sqrt(ybuf @ ybuf))

    def rule1(rn: float) -> bool:
        return rn <= btol * bnorm + atol * a_norm_now() * y_norm()

    floor_per_x = (8.0 * np.sqrt(taps) * _EPS * float(a_norm)
                   if taps is not None and a_norm is not None else 0.0)

    def rule2(rn: float, svec, sg2: float | None = None) -> bool:
        """`sg2`: ||(A S)^T r||^2 = s^T M s when the caller has it (gamma)."""
        if sg2 is None:
            sg2 = float(svec @ svec) if msq is None else float(svec @ (msq * svec))
        delta = floor_per_x * float(np.linalg.norm(x))   # rounding of a float64 residual
        return float(np.sqrt(max(sg2, 0.0))) <= a_norm_now() * (atol * rn + delta)

    def at_floor(rn: float, sg2: float) -> bool:
        """The gradient within LANCZOS_FLOOR times its rounding error: the CG
        coefficients no longer define a Lanczos tridiagonal (Notes)."""
        unit = _EPS32 if mixed else _EPS
        err = a_norm_now() * (unit * rn + _EPS * a_norm_now() * y_norm())
        return float(np.sqrt(max(sg2, 0.0))) <= LANCZOS_FLOOR * err

    code = 7
    lanczos = True   # the CG coefficients still form one Lanczos run
    r_is_true = True
    rec_rn = float(np.linalg.norm(r))       # r is the true residual of the start here
    if bnorm == 0.0 and x0 is None:
        code = 0
    elif rule1(rec_rn):
        code = 1
    else:
        last = rec_rn
        s_vec = adj(r)
        z = precond(s_vec)
        p = z.copy()
        gamma = float(s_vec @ z)
        history = [rec_rn]
        grads = [float(np.linalg.norm(s_vec))]   # running minimum of ||A^T r||
        while it < maxiter:
            if not gamma > 0.0:   # M A^T r = 0: the least-squares solution if M is regular
                code = 2 if rule2(rec_rn, s_vec) else 8
                break
            q = fwd(p)
            qq = float(q @ q)
            if not qq > 0.0:      # p in the null space: nothing left to gain
                code = 2 if rule2(rec_rn, s_vec) else 8
                break
            alpha = gamma / qq
            x = daxpy(p, x, a=alpha)  # x += alpha p, r -= alpha q: one pass each, in place
            r = daxpy(q, r, a=-alpha)  # for contiguous float64 (a copy otherwise)
            r_is_true = False
            it += 1
            if lanczos:
                alphas.append(alpha)
            rec_rn = float(np.linalg.norm(r))
            restart = fresh = broken = False
            hit = rule1(rec_rn)
            if hit or (mixed and rec_rn <= replace_factor * last):
                r_true = b - mv(x)                # the true residual, float64
                true_rn = float(np.linalg.norm(r_true))
                if hit and rule1(true_rn):
                    r, rec_rn, code, r_is_true = r_true, true_rn, 1, True
                    if callback is not None:
                        callback(it)
                    break
                broken = hit   # the recurrence had drifted from the truth (Notes)
                if mixed and true_rn > 10.0 * max(rec_rn, 1e-300):
                    fwd, adj, mixed = mv, rmv, False   # float32 drift: finish in float64
                    float64_from, restart = it, True
                r, rec_rn, last, fresh = r_true, true_rn, true_rn, True
                r_is_true = True
                replacements += 1
            s_vec = adj(r)
            z = precond(s_vec)
            gamma_new = float(s_vec @ z)          # = ||(A S)^T r||^2
            if rule2(rec_rn, s_vec, gamma_new):   # inconsistent data: least squares reached?
                if not fresh or adj is not rmv:
                    r = b - mv(x)
                    rec_rn = float(np.linalg.norm(r))
                    s_vec = rmv(r)
                    z = precond(s_vec)
                    gamma_new = float(s_vec @ z)
                    r_is_true = broken = True
                    replacements += 1
                if rule2(rec_rn, s_vec, gamma_new):
                    code = 2
                    if callback is not None:
                        callback(it)
                    break
            if callback is not None:
                callback(it)
            history.append(rec_rn)
            grads.append(min(grads[-1], float(np.linalg.norm(s_vec))))

            def stalled() -> bool:
                return (rec_rn > (1.0 - stall_drop) * history[-stall_window - 1]
                        and grads[-1] > (1.0 - stall_drop) * grads[-stall_window - 1])

            if stall_window and len(history) > stall_window and stalled():
                if not r_is_true:   # judge on the true residual
                    r = b - mv(x)
                    rec_rn = float(np.linalg.norm(r))
                    s_vec = adj(r)
                    r_is_true = broken = True
                    replacements += 1
                    grads[-1] = min(grads[-2], float(np.linalg.norm(s_vec)))
                    z = precond(s_vec)
                    gamma_new = float(s_vec @ z)
                if stalled() and mixed:
                    # float32 products put a floor of about u_32 ||A|| ||r|| under the
                    # gradient, so rule 2 cannot hold for inconsistent data: finish in float64
                    fwd, adj, mixed = mv, rmv, False
                    float64_from, restart = it, True
                    s_vec = rmv(r)                 # r is the true residual here
                    z = precond(s_vec)
                    gamma_new = float(s_vec @ z)
                    history, grads = [rec_rn], [float(np.linalg.norm(s_vec))]
                elif stalled():
                    code = 9
                    break
            if lanczos and not restart and (broken or at_floor(rec_rn, gamma_new)):
                lanczos = False   # the Lanczos run ends here (Notes)
            if not lanczos or restart:
                if len(alphas) > len(segment[0]):
                    segment = (alphas, betas)
                alphas, betas = [], []
                hi_cache[0] = -1   # the lists changed: recompute the Ritz value
            if restart:
                lanczos = True    # p = z: a new Lanczos run
                p = z.copy()
            else:
                beta = gamma_new / gamma
                if lanczos:
                    betas.append(beta)
                p *= beta
                p += z
            gamma = gamma_new
    r_true = r if r_is_true else b - mv(x)
    true_rn = float(np.linalg.norm(r_true))
    lo, hi = _ritz(*_longest(alphas, betas, segment))
    cond_est = float(np.sqrt(hi / lo)) if (np.isfinite(lo) and lo > 0) else float("nan")
    used_norm, used_y = a_norm_now(), y_norm()
    stopping = {"solver": label, "atol": atol, "btol": btol, "maxiter": maxiter,
                "istop": code, "reason": CGLS_REASONS[code], "precision": precision,
                "relative_residual": true_rn / bnorm if bnorm > 0 else true_rn,
                "recursive_relative_residual": rec_rn / bnorm if bnorm > 0 else rec_rn,
                "replacements": replacements, "ritz": (lo, hi),
                "a_norm": used_norm,
                "a_norm_bound": float("nan") if a_norm is None else float(a_norm)}
    if float64_from is not None:
        stopping["float64_from_iteration"] = float64_from
    return Solution(x=x, solver="cgls", iterations=it, converged=code in (0, 1, 2),
                    stopping=stopping, cond_estimate=cond_est, a_norm_estimate=used_norm,
                    x_norm_estimate=used_y)


def _longest(alphas, betas, segment):
    """The coefficients of the longest uninterrupted CG run (restarts break the Lanczos
    process)."""
    if len(segment[0]) > len(alphas):
        return segment
    return alphas, betas


def _ritz_max(alphas: list[float], betas: list[float]) -> float:
    """The largest eigenvalue of the Lanczos tridiagonal (`_ritz`'s second value) alone, by
    bisection (LAPACK stebz): O(k) per call instead of the whole spectrum's O(k^2)."""
    k = len(alphas)
    if k == 0:
        return float("nan")
    diag, off = _tridiagonal(alphas, betas)
    if off.size == 0:
        return float(diag[0])
    from scipy.linalg import eigvalsh_tridiagonal

    return float(eigvalsh_tridiagonal(diag, off, select="i",
                                      select_range=(diag.size - 1, diag.size - 1))[0])


def _tridiagonal(alphas, betas) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal and off-diagonal of the Lanczos tridiagonal of CG's coefficients."""
    k = len(alphas)
    a = np.asarray(alphas, dtype=np.float64)
    bt = np.asarray(betas[: k - 1], dtype=np.float64)
    k = min(k, bt.size + 1)
    a = a[:k]
    diag = 1.0 / a
    diag[1:] += bt[: k - 1] / a[:-1]
    return diag, np.sqrt(np.maximum(bt[: k - 1], 0.0)) / a[:-1]


def _ritz(alphas: list[float], betas: list[float]) -> tuple[float, float]:
    """Extreme eigenvalues of the Lanczos tridiagonal of CG's coefficients (`nan` if none)."""
    if len(alphas) == 0:
        return float("nan"), float("nan")
    diag, off = _tridiagonal(alphas, betas)
    if off.size == 0:
        return float(diag[0]), float(diag[0])
    from scipy.linalg import eigvalsh_tridiagonal

    ev = eigvalsh_tridiagonal(diag, off)
    return float(ev[0]), float(ev[-1])


def solve_fft(plan, z: np.ndarray) -> Solution:
    """The per-frequency pseudo-inverse of a circulant layer on `(N, K, H, W)` data.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.solvers import solve_fft
    >>> rng = np.random.default_rng(0)
    >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
    >>> x = rng.standard_normal((3, 2, 8, 8))                # a batch of 3 inputs
    >>> sol = solve_fft(layer.fft_plan((2, 8, 8)), layer.forward(x))
    >>> sol.solver, sol.x.shape, bool(np.allclose(sol.x, x))
    ('fft', (3, 2, 8, 8), True)
    >>> sol.residual_norms.shape, bool(sol.residual_norms.max() < 1e-10)
    ((3,), True)
    """
    x, norms = plan.solve(z, return_residual="per-input")
    return Solution(x=x, solver="fft", iterations=0, converged=True,
                    stopping={"solver": "per-frequency pseudo-inverse (Gram or SVD per "
                                        "frequency)", "rtol": plan.rtol,
                              "svd_frequencies": plan.svd_frequencies},
                    residual_norms=np.asarray(norms))


def _counting(op, callback: Callable[[int], None]) -> LinearOperator:
    """`op` with `callback(k)` after its k-th adjoint application (one per LSMR step)."""
    inner = aslinearoperator(op)
    count = [0]

    def rmv(v):
        out = inner.rmatvec(v)
        count[0] += 1
        callback(count[0])
        return out

    return LinearOperator(inner.shape, matvec=inner.matvec, rmatvec=rmv, dtype=inner.dtype)


__all__ = ["CGLS_REASONS", "LSMR_CONVERGED", "LSMR_REASONS", "Solution", "solve_cgls",
           "solve_dense", "solve_fft", "solve_lsmr"]
