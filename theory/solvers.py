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
`fft`
    the per-frequency pseudo-inverse of a circulant conv layer
    (`theory.fft.CirculantPlan`); direct, always converged.

Optional column scaling (Jacobi) for LSMR solves $A M y = b$, $x = M y$ with
$M$ diagonal: for an injective $A$ the solution is the same.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import scipy.sparse
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
        `"dense"`, `"lsmr"` or `"fft"`.
    iterations : int
        LSMR iterations (largest over the right-hand sides); 0 for direct solvers.
    converged : bool
        Whether every solve met its stopping rule (direct solvers: always).
    stopping : dict
        The stopping rule and why the solver stopped.
    cond_estimate : float
        LSMR's own estimate of the condition number (of the scaled operator with Jacobi);
        a lower estimate; `nan` for direct solvers.
    residual_norms : numpy.ndarray or None
        $\|Ax - b\|$ per right-hand side where the solver computes it exactly on the
        way (the FFT solver, by Parseval); `None` otherwise.
    a_norm_estimate, x_norm_estimate : float
        LSMR's estimates of $\|A\|$ and of the norm of the solution of the system it
        solved (with Jacobi scaling: of $AM$ and $y$), the ones its stopping
        rule uses.
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
               callback: Callable[[int], None] | None = None) -> Solution:
    """LSMR from 0 on one right-hand side `b` (`(M,)`), optionally column-scaled.

    Parameters
    ----------
    op : LinearOperator, sparse matrix or array (M x D)
    b : array (M,)
    atol, btol, maxiter : LSMR's stopping rule
    column_scale : array (D,), optional
        Solve $A\\,\\mathrm{diag}(s)\\,y = b$ and return $x = s \\odot y$.
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
    if column_scale is not None:
        a = aslinearoperator(a) @ aslinearoperator(scipy.sparse.diags(column_scale))
    out = lsmr(a, b, atol=atol, btol=btol, maxiter=maxiter)
    x, istop, iters = out[0], int(out[1]), int(out[2])
    if column_scale is not None:
        x = column_scale * x
    stopping = {"solver": label, "atol": atol, "btol": btol, "maxiter": maxiter,
                "istop": istop, "reason": LSMR_REASONS.get(istop, "?")}
    anorm = float(out[5])  # LSMR's estimate of ||A|| (of the scaled operator with Jacobi)
    xnorm = float(out[7])  # ||x|| of the system LSMR solved (||y|| with Jacobi)
    return Solution(x=x, solver="lsmr", iterations=iters, converged=istop in LSMR_CONVERGED,
                    stopping=stopping, cond_estimate=float(out[6]), a_norm_estimate=anorm,
                    x_norm_estimate=xnorm)


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


__all__ = ["LSMR_CONVERGED", "LSMR_REASONS", "Solution", "solve_dense", "solve_fft",
           "solve_lsmr"]
