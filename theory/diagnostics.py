"""Operator diagnostics: the normalised adjoint (dot) test."""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator

_EPS = float(np.finfo(np.float64).eps)


def dot_test(op: LinearOperator, rng: np.random.Generator, c: float = 10.0,
             rmatvec=None) -> tuple[float, float]:
    r"""Normalised adjoint test of `op`; returns `(error, tolerance)`; pass iff error <= tolerance.

    Parameters
    ----------
    op : LinearOperator of shape (M, D)
    rng : numpy Generator for the random vectors
    c : float
        Safety constant of the tolerance.
    rmatvec : callable, optional
        An alternative adjoint to test instead of `op.rmatvec` (used for negative controls).

    Notes
    -----
    Following ODL's `OperatorTest.adjoint` the error is normalised,

    $$
    e = \frac{|\langle Ax, y\rangle - \langle x, A^T y\rangle|}{\|A\|\,\|x\|\,\|y\|},
    $$

    with $\|A\|$ estimated from below by $\|Ax\|/\|x\|$ (which can only enlarge
    $e$). Both inner products are sums of $M$ resp. $D$ rounded terms, so
    $e = O(\sqrt{M + D}\,u)$ for an exact adjoint; the tolerance is
    $c\sqrt{M + D}\,\varepsilon$. A wrong adjoint gives $e = O(1)$.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.diagnostics import dot_test
    >>> rng = np.random.default_rng(0)
    >>> A = ConvLayer(rng.standard_normal((4, 2, 3, 3)), stride=2, padding=1).operator((2, 7, 7))
    >>> err, tol = dot_test(A, rng)
    >>> bool(err <= tol)                                       # the adjoint is exact
    True
    >>> err, tol = dot_test(A, rng, rmatvec=lambda y: 1.01 * A.rmatvec(y))   # a planted bug
    >>> bool(err <= tol)
    False
    """
    m, d = op.shape
    x = rng.standard_normal(d)
    y = rng.standard_normal(m)
    ax = op.matvec(x)
    aty = (rmatvec or op.rmatvec)(y)
    tol = float(c * np.sqrt(m + d) * _EPS)
    if m == 0 or d == 0:   # an empty operator: both inner products are exactly 0
        return 0.0, tol
    norm_a = np.linalg.norm(ax) / np.linalg.norm(x)
    scale = max(norm_a, 1e-300) * np.linalg.norm(x) * np.linalg.norm(y)
    err = float(abs(np.dot(ax, y) - np.dot(x, aty)) / scale)
    return err, tol
