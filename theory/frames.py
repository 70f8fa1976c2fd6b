r"""Frame bounds: the certificate of injectivity, for every operator of the package.

Notes
-----
The rows of an operator $A$ (the shifted filters of a conv layer, or the selected
signed shifted filters of a max-pooled CReLU layer) form a frame for $\mathbb{R}^D$
when

$$
a\,\|x\|^2 \le \|A x\|^2 \le b\,\|x\|^2 \quad \forall x, \qquad
a = \sigma_{\min}(A)^2 > 0, \; b = \sigma_{\max}(A)^2 .
$$

$a > 0$ is equivalent to injectivity of $A$, hence (Proposition 2.1) to exact
recovery of $x$ from $\operatorname{CReLU}(Ax)$. This module is the one home of
the methods; `frame_bounds` dispatches on the operator:

`fft`
    exact: every frequency's $K \times C$ matrix (circulant conv layers).
`dense`
    exact: SVD of the dense matrix (small inputs), then certified by a Cholesky proof on
    the Gram matrix (below).
`dense-gram`
    exact to $\sqrt{\max(M, D)\varepsilon}$ relative in $\sigma$: eigenvalues of the
    dense Gram matrix $A^TA$ (cheaper than the SVD when $M \gg D$).
`banded`
    exact to rounding: LAPACK's banded symmetric eigensolver on $A^TA$, which is
    banded once pixels are ordered (row, column, channel) (zero padding; sparse operators).
`shift-invert`
    estimate with a residual: Lanczos on the sparse Gram matrix for $b$, and on its
    inverse (sparse LU) for $a$.
`iterative`
    estimate with a residual: Lanczos (`scipy.sparse.linalg.eigsh`) on the Gram operator.
    The largest Ritz value is a lower estimate of $b$, the smallest an *upper* estimate
    of $a$; an eigenvalue of $A^TA$ lies within the Ritz residual of each.
`polyphase`
    certified, circular padding with any stride and dilation: the polyphase form
    (`theory.polyphase`) and the per-frequency symbol (`theory.symbol`); exact when the
    outputs cover the coarse torus uniformly (`theory.certified`).
`tiles`
    certified, zero padding with any stride and dilation: the symbol maximum on a canvas
    without wrap-around bounds $b$, local Cholesky certificates on overlapping tiles
    bound $a$ (`theory.tiles`).

**Certified bounds.** `FrameBounds.certified` is True only when `lower <= a` and
`upper >= b` are *proved*, rounding errors included: every floating-point step is covered
by a bound of `theory.rigour` (dot products $\gamma_n$, the Cholesky certificate of
Demmel and Rump, the symbol's twiddle errors), under IEEE binary64 arithmetic and
conventional BLAS/LAPACK (docs/theory/frame-bounds.md, "What certified means"). The exact
methods `dense` and `fft` are certified: their SVD values are shifted outwards by a
proved margin (`FrameBounds.margin`) when the Cholesky proof succeeds; when it cannot
(a Gram matrix resolves $\sigma_{\min}/\sigma_{\max}$ only down to about
$\sqrt{n u}$) the exact-to-rounding values are returned with `certified=False` and the
reason in `note`. The Lanczos methods are estimates, never certified.

An operator takes part by providing `shape` (rows, columns), `dense(force)`,
`gram_operator()`, `max_abs`, `scaled(f)`, `bounds_methods` and
`auto_bounds_method()`, and where they apply
`plan` (FFT), `sparse()` and `band_geometry()`: `theory.operator.ConvOperator`
and `theory.selection.MaxPoolSelection` do.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Literal, Sequence

import numpy as np
import scipy.linalg
import scipy.sparse
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from theory.conv import AUTO_DENSE_LIMIT, ConvLayer, normalising_exponent

Method = Literal["auto", "fft", "dense", "dense-gram", "banded", "shift-invert", "iterative",
                 "polyphase", "tiles"]
_EPS = float(np.finfo(np.float64).eps)
#: Lanczos needs a Krylov space: below this many unknowns the iterative methods use `dense`.
LANCZOS_MIN_DIM = 8



@dataclasses.dataclass(frozen=True)
class FrameBounds:
    r"""Frame bounds `(lower, upper, exact)` of an operator; unpacks as that 3-tuple.

    Attributes
    ----------
    lower : float
        $a = \sigma_{\min}^2$ (0 for an operator with fewer rows than columns).
    upper : float
        $b = \sigma_{\max}^2$.
    exact : bool
        True for the exact methods (to rounding), False for the estimates.
    method : str
    rtol : float
        Relative threshold on $\sigma_{\min}/\sigma_{\max}$ below which the operator is
        declared non-injective (numerical rank convention `max(M, D) * eps` for the SVD
        methods; the eigensolver tolerance or $\sqrt{D\varepsilon}$ for the Gram ones).
    residual : float
        For estimates: the largest Ritz residual norm (an eigenvalue of $A^TA$ lies
        within it of each reported bound); 0 for exact methods.
    certified : bool
        True only when `lower <= sigma_min(A)^2` and `upper >= sigma_max(A)^2` are
        *proven*, rounding errors included (every floating-point step bounded by
        `theory.rigour`; docs/theory/frame-bounds.md, "What certified means"): the
        `polyphase` and `tiles` methods, and `dense`/`fft` when their Cholesky proof
        succeeds. Estimates (Lanczos) are never certified.
    margin : float
        For certified bounds: the largest outward shift applied to the computed values
        (`lower` is at most `margin` below the computed $a$, `upper` at most `margin` above
        the computed $b$), so a comparison with an oracle allows it; 0 otherwise.
    note : str
        Which sub-method produced the bounds and, when not certified or when `lower` is a
        trivial 0, why.
    normalisation : float
        The power of two $f$ the operator was multiplied by before the bounds were
        computed (1 unless its entries are far from 1, see `frame_bounds`): `lower`
        and `upper` are those of $A$ itself, which may underflow to 0 or overflow
        to `inf` for extreme scales, while `injective` and `cond` use the bounds of
        $fA$ (`unit_lower`, `unit_upper`), which are scale-free.

    Examples
    --------
    >>> from theory import FrameBounds
    >>> fb = FrameBounds(4.0, 9.0, True, "dense")
    >>> lower, upper, exact = fb
    >>> fb.cond, fb.injective
    (1.5, True)
    """

    lower: float
    upper: float
    exact: bool
    method: str = "dense"
    rtol: float = 0.0
    residual: float = 0.0
    certified: bool = False
    normalisation: float = 1.0
    unit_lower: float | None = None
    unit_upper: float | None = None
    margin: float = 0.0
    note: str = ""
    details: dict | None = dataclasses.field(default=None, compare=False, repr=False)

    def __iter__(self) -> Iterator:
        return iter((self.lower, self.upper, self.exact))

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i):
        return (self.lower, self.upper, self.exact)[i]

    @property
    def sigma_min(self) -> float:
        r"""$\sigma_{\min} = \sqrt{a}$, the smallest singular value.

        Examples
        --------
        >>> from theory import FrameBounds
        >>> FrameBounds(4.0, 9.0, True).sigma_min
        2.0
        """
        return float(np.sqrt(max(self.lower, 0.0)))

    @property
    def sigma_max(self) -> float:
        r"""$\sigma_{\max} = \sqrt{b}$, the largest singular value.

        Examples
        --------
        >>> from theory import FrameBounds
        >>> FrameBounds(4.0, 9.0, True).sigma_max
        3.0
        """
        return float(np.sqrt(max(self.upper, 0.0)))

    def _unit(self) -> tuple[float, float]:
        lo = self.lower if self.unit_lower is None else self.unit_lower
        hi = self.upper if self.unit_upper is None else self.unit_upper
        return float(np.sqrt(max(lo, 0.0))), float(np.sqrt(max(hi, 0.0)))

    @property
    def injective(self) -> bool:
        r"""Whether $\sigma_{\min} > \text{rtol}\cdot\sigma_{\max}$ (scale-free).

        Examples
        --------
        >>> from theory import FrameBounds
        >>> FrameBounds(4.0, 9.0, True, rtol=1e-12).injective
        True
        >>> FrameBounds(0.0, 9.0, True, rtol=1e-12).injective
        False
        >>> FrameBounds(1e-30, 1.0, True, rtol=1e-12).injective   # sigma_min = 1e-15 < rtol
        False
        """
        smin, smax = self._unit()
        return smin > self.rtol * smax and smax > 0

    @property
    def cond(self) -> float:
        r"""$\sqrt{b/a}$, `inf` for a non-injective operator (scale-free).

        Examples
        --------
        >>> from theory import FrameBounds
        >>> FrameBounds(4.0, 9.0, True).cond
        1.5
        >>> FrameBounds(0.0, 9.0, True).cond
        inf
        """
        smin, smax = self._unit()
        return smax / smin if self.injective else float("inf")

    def as_dict(self) -> dict:
        """The bounds and what follows from them, as a plain dict (for JSON reports).

        Examples
        --------
        >>> from theory import FrameBounds
        >>> d = FrameBounds(4.0, 9.0, True, "fft").as_dict()
        >>> d["injective"], d["cond"]
        (True, 1.5)
        >>> sorted(d)
        ['certified', 'cond', 'exact', 'injective', 'lower', 'method', 'residual', 'upper']
        """
        out = {"lower": self.lower, "upper": self.upper, "exact": self.exact,
               "method": self.method, "injective": self.injective, "cond": self.cond,
               "residual": self.residual, "certified": self.certified}
        if self.note:
            out["note"] = self.note
        if self.margin:
            out["margin"] = self.margin
        if self.normalisation != 1.0:
            out["normalisation"] = self.normalisation
        return out


# ---------------------------------------------------------------------------- methods
def svd_bounds(matrix: np.ndarray) -> FrameBounds:
    """Exact bounds from the singular values of a dense `M x D` matrix (`dense`).

    Examples
    --------
    >>> import numpy as np
    >>> from theory.frames import svd_bounds
    >>> fb = svd_bounds(np.diag([3.0, 2.0, 0.5]))
    >>> fb.lower, fb.upper, fb.exact, fb.method
    (0.25, 9.0, True, 'dense')
    >>> svd_bounds(np.ones((2, 3))).lower             # fewer rows than columns
    0.0
    """
    a = np.asarray(matrix, dtype=np.float64)
    m, d = a.shape
    s = np.linalg.svd(a, compute_uv=False)
    smin = float(s[-1]) if m >= d else 0.0
    return FrameBounds(smin ** 2, float(s[0]) ** 2, True, "dense", max(m, d) * _EPS)


def gram_eigen_bounds(matrix: np.ndarray) -> FrameBounds:
    """Bounds from the eigenvalues of the dense Gram matrix $A^TA$ (`dense-gram`).

    Notes
    -----
    Cheaper than the SVD of the `M x D` matrix when `M >> D`. The eigenvalues of the
    computed Gram matrix are within about $\\max(M, D)\\varepsilon\\|A\\|^2$ of the true
    ones, so $\\sigma_{\\min}/\\sigma_{\\max}$ is resolved only down to
    $\\sqrt{\\max(M, D)\\varepsilon}$, the rank threshold `rtol`.

    Examples
    --------
    >>> import numpy as np
    >>> from theory.frames import gram_eigen_bounds, svd_bounds
    >>> a = np.random.default_rng(0).standard_normal((200, 5))     # M >> D
    >>> fb, ref = gram_eigen_bounds(a), svd_bounds(a)
    >>> fb.method, bool(np.isclose(fb.lower, ref.lower)), bool(np.isclose(fb.upper, ref.upper))
    ('dense-gram', True, True)
    """
    a = np.asarray(matrix, dtype=np.float64)
    m, d = a.shape
    lam = np.linalg.eigvalsh(a.T @ a)
    lower = float(lam[0]) if m >= d else 0.0
    return FrameBounds(max(lower, 0.0), float(lam[-1]), True, "dense-gram",
                       float(np.sqrt(max(m, d) * _EPS)))


def fft_bounds(plan) -> FrameBounds:
    """Exact bounds of a circulant conv layer from its FFT plan (`fft`).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.frames import fft_bounds, svd_bounds
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((4, 2, 3, 3)), padding=1,
    ...                   padding_mode="circular")
    >>> fb = fft_bounds(layer.fft_plan((2, 6, 6)))
    >>> ref = svd_bounds(layer.dense((2, 6, 6)))            # the dense oracle
    >>> fb.method, bool(np.isclose(fb.lower, ref.lower)), bool(np.isclose(fb.upper, ref.upper))
    ('fft', True, True)
    """
    return FrameBounds(plan.sigma_min ** 2, plan.sigma_max ** 2, True, "fft", plan.rtol)


def lanczos_bounds(gram: LinearOperator, n_rows: int, *, tol: float = 1e-10,
                   maxiter: int | None = None, what: str = "A^T A") -> FrameBounds:
    """Ritz estimates of the extreme eigenvalues of a Gram operator (`iterative`).

    Parameters
    ----------
    gram : LinearOperator (D x D), symmetric positive semi-definite
    n_rows : int
        Number of rows of the underlying operator; with fewer rows than `D` the lower
        bound is 0 and only the largest eigenvalue is computed.
    tol, maxiter : passed to `eigsh`
    what : str
        Name of the Gram operator in error messages.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.frames import lanczos_bounds, svd_bounds
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((4, 1, 3, 3)), padding=1)
    >>> op = layer.at((1, 6, 6))
    >>> fb = lanczos_bounds(op.gram_operator(), n_rows=op.m)
    >>> ref = svd_bounds(op.dense())                          # the dense oracle
    >>> fb.exact, bool(np.isclose(fb.upper, ref.upper)), bool(np.isclose(fb.lower, ref.lower))
    (False, True, True)
    >>> bool(fb.residual < 1e-6 * fb.upper)                   # each bound within its residual
    True
    """
    d = gram.shape[0]
    v0 = np.random.default_rng(0).standard_normal(d)  # fixed start vector: reproducible
    ncv = min(d, 40)
    big, vbig = eigsh(gram, k=1, which="LA", tol=tol, maxiter=maxiter, v0=v0, ncv=ncv)
    res = [float(np.linalg.norm(gram.matvec(vbig[:, 0]) - big[0] * vbig[:, 0]))]
    lower = 0.0
    if n_rows >= d:
        try:
            small, vsmall = eigsh(gram, k=1, which="SA", tol=tol, maxiter=maxiter, v0=v0,
                                  ncv=ncv)
        except ArpackNoConvergence as exc:
            if len(exc.eigenvalues) == 0:
                raise RuntimeError(
                    f"the smallest eigenvalue of {what} did not converge; raise maxiter or use "
                    "method='dense' on a smaller input") from exc
            small, vsmall = exc.eigenvalues, exc.eigenvectors
        lower = max(float(small[0]), 0.0)
        res.append(float(np.linalg.norm(gram.matvec(vsmall[:, 0]) - small[0] * vsmall[:, 0])))
    # relative accuracy of a Ritz value ~ tol; sigma_min/sigma_max resolvable to ~sqrt(tol)
    return FrameBounds(lower, float(big[0]), False, "iterative", float(np.sqrt(max(tol, _EPS))),
                       max(res))


def shift_invert_bounds(matrix: scipy.sparse.spmatrix, *, tol: float = 1e-10) -> FrameBounds:
    """Lanczos on the sparse Gram matrix and on its inverse (sparse LU) (`shift-invert`).

    Both Ritz values come with residuals of order $\\varepsilon b$ (an estimate with a
    residual: `exact=False`); an exactly singular LU means $a = 0$.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse
    >>> from theory import ConvLayer
    >>> from theory.frames import shift_invert_bounds, svd_bounds
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((4, 1, 3, 3)), padding=1)
    >>> a = layer.dense((1, 6, 6))
    >>> fb, ref = shift_invert_bounds(scipy.sparse.csr_matrix(a)), svd_bounds(a)
    >>> fb.method, bool(np.isclose(fb.lower, ref.lower)), bool(np.isclose(fb.upper, ref.upper))
    ('shift-invert', True, True)
    """
    n, d = matrix.shape
    gram = (matrix.T @ matrix).tocsc()
    v0 = np.random.default_rng(0).standard_normal(d)
    big, vbig = eigsh(gram, k=1, which="LA", tol=tol, v0=v0)
    res = [float(np.linalg.norm(gram @ vbig[:, 0] - big[0] * vbig[:, 0]))]
    lower = 0.0
    if n >= d:
        try:
            small, vsmall = eigsh(gram, k=1, sigma=0.0, which="LM", tol=tol, v0=v0)
        except ArpackNoConvergence as exc:   # a RuntimeError too: not a proof of singularity
            raise RuntimeError(f"shift-invert: the smallest eigenvalue of A^T A did not "
                               f"converge ({exc})") from exc
        except RuntimeError:  # exactly singular LU: the Gram matrix has a null space
            small, vsmall = None, None
        if small is not None:
            lower = max(float(small[0]), 0.0)
            res.append(float(np.linalg.norm(gram @ vsmall[:, 0] - small[0] * vsmall[:, 0])))
    return FrameBounds(lower, float(big[0]), False, "shift-invert",
                       float(np.sqrt(d * _EPS)), max(res))


def banded_bounds(matrix: scipy.sparse.spmatrix, input_shape: Sequence[int],
                  reach: Sequence[int]) -> FrameBounds:
    """Extreme eigenvalues of the banded Gram matrix by LAPACK (`banded`).

    Parameters
    ----------
    matrix : sparse (n x D)
        Rows of a zero-padded conv-derived operator on inputs of shape `(C, H, W)`,
        columns in `(c, i, j)` order.
    input_shape : (C, H, W)
    reach : (rh, rw)
        Extent of one (dilated) filter: two pixels are coupled in $A^TA$ only when
        they are less than `reach` apart along each axis.

    Notes
    -----
    With the columns reordered to `(i, j, c)`, $G = A^TA$ has bandwidth
    $((r_h - 1) W + (r_w - 1)) C + C - 1$. The Gram route squares the condition
    number: eigenvalues are accurate to about $D\\varepsilon b$ absolutely, so `rtol`
    on $\\sigma_{\\min}/\\sigma_{\\max}$ is $\\sqrt{D\\varepsilon}$.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse
    >>> from theory import ConvLayer
    >>> from theory.frames import banded_bounds, svd_bounds
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((4, 2, 3, 3)), padding=1)
    >>> a = layer.dense((2, 6, 6))
    >>> fb = banded_bounds(scipy.sparse.csr_matrix(a), (2, 6, 6), layer.receptive_field)
    >>> ref = svd_bounds(a)
    >>> fb.exact, bool(np.isclose(fb.lower, ref.lower)), bool(np.isclose(fb.upper, ref.upper))
    (True, True, True)
    """
    c, h, w = (int(v) for v in input_shape)
    rh, rw = (int(v) for v in reach)
    n, d = matrix.shape
    ci, ii, jj = np.unravel_index(np.arange(d), (c, h, w))
    perm_new = (ii * w + jj) * c + ci
    p = scipy.sparse.csr_matrix((np.ones(d), (np.arange(d), perm_new)), shape=(d, d))
    gram = (p.T @ (matrix.T @ matrix) @ p).tocoo()
    bw = ((rh - 1) * w + (rw - 1)) * c + (c - 1)
    off = gram.col - gram.row
    keep = off >= 0
    if off.max(initial=0) > bw:
        raise RuntimeError("internal error: Gram matrix wider than its predicted band")
    band = np.zeros((bw + 1, d))
    # lower form: band[i - j, j] = G[i, j] for i >= j  (use G[j, i] with i = col >= row)
    band[off[keep], gram.row[keep]] = gram.data[keep]
    hi = scipy.linalg.eig_banded(band, lower=True, eigvals_only=True, select="i",
                                 select_range=(d - 1, d - 1))
    lower = 0.0
    if n >= d:
        lo = scipy.linalg.eig_banded(band, lower=True, eigvals_only=True, select="i",
                                     select_range=(0, 0))
        lower = max(float(lo[0]), 0.0)
    return FrameBounds(lower, float(hi[0]), True, "banded", float(np.sqrt(d * _EPS)))


# ---------------------------------------------------------------------------- certified
def certified_dense_bounds(matrix: np.ndarray) -> FrameBounds:
    r"""The `dense` SVD bounds, certified by Cholesky proofs on the Gram matrix.

    Notes
    -----
    With $G = fl(A^TA)$ and $\|G - A^TA\|_2 \le \varepsilon_G$
    (`theory.rigour.gram_with_error`), a completed Cholesky of the shifted, rescaled
    $G - tI$ proves $a \ge t - \varepsilon_G$ and one of $bI - G$ proves
    $b \le b + \varepsilon_G$ (Lemma C, `theory.rigour`); the SVD values only choose
    $t$ and $b$. A Gram certificate resolves $\sigma_{\min}/\sigma_{\max}$ down to about
    $\sqrt{n u}$: below that (and the SVD calls the matrix injective) the SVD values are
    returned with `certified=False`; a matrix the SVD calls rank deficient gets the
    certified lower bound 0.

    Examples
    --------
    >>> import numpy as np
    >>> from theory.frames import certified_dense_bounds
    >>> fb = certified_dense_bounds(np.diag([3.0, 2.0, 0.5]))
    >>> fb.certified, bool(fb.lower <= 0.25 <= fb.lower + fb.margin), bool(9.0 <= fb.upper)
    (True, True, True)
    >>> certified_dense_bounds(np.diag([1.0, 1e-9])).certified    # below the Gram resolution
    False
    """
    from theory.rigour import certified_gram_interval, gram_with_error

    a = np.asarray(matrix, dtype=np.float64)
    est = svd_bounds(a)
    m, d = a.shape
    G, eps = gram_with_error(a)
    lo, hi = certified_gram_interval(G, eps, est.lower, est.upper)
    if hi is None:
        return dataclasses.replace(est, note="svd (the Cholesky proof of the upper bound failed)")
    if m < d:
        lower, why = 0.0, "M < D: a = 0"
    elif lo is not None:
        lower, why = lo, "Cholesky proof on A^T A"
    elif not est.injective:
        lower, why = 0.0, "not injective at rtol: certified lower bound 0"
    else:
        return dataclasses.replace(
            est, note="svd; not certified: sigma_min/sigma_max is below the resolution "
                      "sqrt(n u) of a Gram certificate")
    margin = max(est.lower - lower, hi - est.upper, 0.0)
    return dataclasses.replace(est, lower=lower, upper=hi, certified=True, margin=margin,
                               note=f"svd, certified ({why})")


def _from_certificate(cert, name: str, n: int, d: int, estimate: FrameBounds | None = None
                      ) -> FrameBounds:
    """A `theory.certified.Certificate` as `FrameBounds` (or `estimate` when inconclusive)."""
    rtol = max(n, d) * _EPS
    reason = cert.details.get("lower_reason", "")
    note = cert.method + (f"; {reason}" if reason else "")
    if estimate is not None:
        if not cert.certified or (cert.lower == 0 and estimate.injective):
            return dataclasses.replace(
                estimate, note=f"{estimate.method}; not certified ({note})")
        margin = max(estimate.lower - cert.lower, cert.upper - estimate.upper, 0.0)
        return dataclasses.replace(estimate, lower=cert.lower, upper=cert.upper, certified=True,
                                   margin=margin, note=f"{estimate.method}, certified by {note}",
                                   details=cert.details)
    details = dict(cert.details, conclusive=bool(cert.conclusive))
    return FrameBounds(cert.lower, cert.upper, bool(cert.exact), name, rtol, 0.0,
                       bool(cert.certified), note=note, details=details)


def polyphase_bounds(op, **options) -> FrameBounds:
    r"""Certified bounds of a circular conv layer, any stride and dilation (`polyphase`).

    Notes
    -----
    A stride-$s$, dilation-$d$ layer is a stride-1 conv on the coarse grid with
    $C s_h s_w$ input channels (`theory.polyphase`); with circular padding on $H = N s$ its
    matrix is $A = SCE$ with $C$ block circulant and $S$ selecting each coarse position
    $m$ times. Then $m_{\min} C^TC \preceq A^TA \preceq m_{\max} C^TC$ and the bounds
    are the certified extremes of the per-frequency symbol (Theorem E of
    docs/theory/frame-bounds.md; exact when $m_{\min} = m_{\max}$).

    Parameters
    ----------
    op : theory.ConvOperator (circular padding)
    **options : passed to `theory.certified.certify_conv`

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.frames import polyphase_bounds
    >>> from theory.testing import reference_matrix
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((12, 2, 3, 3)), stride=2,
    ...                   padding=1, padding_mode="circular")
    >>> fb = polyphase_bounds(layer.at((2, 8, 8)))
    >>> s = np.linalg.svd(reference_matrix(layer, (2, 8, 8)), compute_uv=False)   # oracle
    >>> fb.certified, fb.exact, bool(fb.lower <= s[-1] ** 2 <= fb.lower + 1e-9 * fb.upper)
    (True, True, True)
    """
    from theory.certified import certify_conv

    if op.layer.padding_mode != "circular":
        raise ValueError("method 'polyphase' needs circular padding; use 'tiles' for zeros")
    return _from_certificate(certify_conv(op, **options), "polyphase", *op.shape)


def tile_bounds(op, **options) -> FrameBounds:
    r"""Certified bounds of a zero-padded conv layer, any stride and dilation (`tiles`).

    Notes
    -----
    Upper bound: $\|SC_NE\|^2 \le \|C_N\|^2$, the certified symbol maximum on a canvas
    without wrap-around (Theorem U). Lower bound: with a partition of unity
    $\sum_b \varphi_b = 1$ over the outputs, $A^TA = \sum_b G_b$; Cholesky proofs of
    $G_b \succeq t D_b$ on every distinct tile and $\sum_b D_b \succeq sI$ give
    $a \ge ts$ (Theorem T of docs/theory/frame-bounds.md). Small images are one tile:
    the certified whole-image Gram. When no tile of at most `tile_limit` unknowns is
    injective (a square layer, $K = C s_h s_w$), the whole image is tried as one banded tile
    (`theory.band_gram`, within its memory and flop limits); when that proves nothing either,
    the lower bound is a trivial 0 (`note` says so; `frame_bounds` with `method="auto"` then
    returns the band's shift-invert estimate, or the Lanczos estimate).

    Parameters
    ----------
    op : theory.ConvOperator (zero padding)
    **options : passed to `theory.certified.certify_conv` (`tiles`, `tile_limit`,
        `single_tile_limit`)

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.frames import tile_bounds
    >>> from theory.testing import reference_matrix
    >>> layer = ConvLayer(np.random.default_rng(1).standard_normal((16, 2, 3, 3)), stride=2,
    ...                   padding=1)
    >>> fb = tile_bounds(layer.at((2, 20, 20)), tiles=((4, 4), (2, 2)))   # 25 tiles, 9 kinds
    >>> s = np.linalg.svd(reference_matrix(layer, (2, 20, 20)), compute_uv=False)  # oracle
    >>> fb.certified, bool(0.5 * s[-1] ** 2 <= fb.lower <= s[-1] ** 2 <= s[0] ** 2 <= fb.upper)
    (True, True)
    """
    from theory.certified import certify_conv

    if op.layer.padding_mode != "zeros":
        raise ValueError("method 'tiles' needs zero padding; use 'polyphase' for circular")
    return _from_certificate(certify_conv(op, **options), "tiles", *op.shape)


def certified_fft_bounds(op) -> FrameBounds:
    """The `fft` bounds of a circulant layer, certified by the symbol (`theory.symbol`).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.frames import certified_fft_bounds
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((4, 2, 3, 3)), padding=1,
    ...                   padding_mode="circular")
    >>> fb = certified_fft_bounds(layer.at((2, 6, 6)))
    >>> fb.method, fb.certified, bool(0 <= fb.margin < 1e-9 * fb.upper)
    ('fft', True, True)
    """
    from theory.certified import certify_conv

    est = fft_bounds(op.plan)
    return _from_certificate(certify_conv(op), "fft", *op.shape, estimate=est)


# ---------------------------------------------------------------------------- dispatch
def as_frame_operator(op, input_shape: Sequence[int] | None = None):
    """`op` as an operator `frame_bounds` understands (a layer is bound to a shape).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.frames import as_frame_operator
    >>> layer = ConvLayer(np.ones((2, 1, 3, 3)))
    >>> as_frame_operator(layer, (1, 6, 6)) is layer.at((1, 6, 6))
    True
    >>> try:
    ...     as_frame_operator(layer)
    ... except TypeError as err:
    ...     print(err)
    frame_bounds(layer, input_shape): a ConvLayer needs the input shape
    """
    if isinstance(op, ConvLayer):
        if input_shape is None:
            raise TypeError("frame_bounds(layer, input_shape): a ConvLayer needs the input shape")
        return op.at(input_shape)
    if not hasattr(op, "bounds_methods"):
        raise TypeError("frame_bounds needs a theory.ConvLayer (with input_shape), a "
                        "ConvOperator or a MaxPoolSelection, got " + type(op).__name__)
    if input_shape is not None and tuple(int(s) for s in input_shape) != tuple(op.input_shape):
        raise ValueError(f"input_shape {tuple(input_shape)} differs from the operator's "
                         f"{tuple(op.input_shape)}")
    return op


def frame_bounds(op, input_shape: Sequence[int] | None = None, method: Method = "auto", *,
                 tol: float = 1e-10, maxiter: int | None = None, **options) -> FrameBounds:
    """Lower and upper frame bounds of the rows of an operator.

    Parameters
    ----------
    op : ConvLayer, ConvOperator or MaxPoolSelection
        A `theory.ConvLayer` needs `input_shape`; a shape-bound operator
        (`layer.at(shape)`, a `theory.MaxPoolSelection`) carries its own. When its
        largest entry lies outside $[2^{-60}, 2^{60}]$ the bounds are computed on the
        operator scaled by a power of two and scaled back (`FrameBounds.normalisation`):
        injectivity and the condition number do not depend on the scale.
    input_shape : (C, H, W), optional
    method : {"auto", "fft", "dense", "dense-gram", "banded", "shift-invert", "iterative", \
"polyphase", "tiles"}
        `auto` asks the operator (conv layers: `fft` when circulant, `polyphase` for other
        circular layers, `dense` for zero padding up to `AUTO_DENSE_LIMIT` input values,
        else `tiles`; pooled selections: `dense`, `shift-invert` or `iterative` by size),
        and returns certified bounds whenever a certified method proves them. When the
        `polyphase`/`tiles` certificate proves no positive lower bound (e.g. no injective
        tile fits `tile_limit`, and the whole image as one banded tile is below binary64's
        rounding floor or too large), `auto` returns an estimate instead (`certified=False`,
        `note` saying why): the band's shift-invert estimate where the band was factorised
        (`method="shift-invert"`), else Lanczos. The methods an operator supports are in its
        `bounds_methods`.
    tol, maxiter : passed to `eigsh` for the Lanczos methods.
    **options
        For `polyphase` and `tiles`: `tiles=((Ph, Pw), (Rh, Rw))`, `tile_limit`,
        `single_tile_limit` (`theory.certified.certify_conv`).

    Returns
    -------
    FrameBounds
        Unpacks as `(lower, upper, exact)`.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, frame_bounds
    >>> layer = ConvLayer(np.eye(2).reshape(2, 2, 1, 1), padding_mode="circular")
    >>> fb = frame_bounds(layer, (2, 4, 4))
    >>> lower, upper, exact = fb
    >>> round(lower, 9), round(upper, 9), exact, fb.certified   # proved: lower <= 1 <= upper
    (1.0, 1.0, True, True)
    >>> bool(lower <= 1.0 <= upper)
    True
    """
    op = as_frame_operator(op, input_shape)
    peak = op.max_abs
    if not np.isfinite(peak):
        raise ValueError(f"the operator's entries are not finite (max |entry| = {peak})")
    exponent = normalising_exponent(peak)
    if exponent:
        # far from 1: compute on 2^e A (exact scaling, no rounding) and scale back
        f = float(np.ldexp(1.0, exponent))
        fb = frame_bounds(op.scaled(f), method=method, tol=tol, maxiter=maxiter, **options)
        with np.errstate(over="ignore", under="ignore"):   # 0 or inf here is the truth
            back = [float(np.ldexp(v, -2 * exponent))
                    for v in (fb.lower, fb.upper, fb.residual, fb.margin)]
        return dataclasses.replace(fb, lower=back[0], upper=back[1], residual=back[2],
                                   margin=back[3],
                                   normalisation=f, unit_lower=fb.lower, unit_upper=fb.upper)
    auto = method == "auto"
    if auto:
        method = op.auto_bounds_method()
    unknown = set(options) - {"tiles", "tile_limit", "single_tile_limit"}
    if unknown or (options and method not in ("polyphase", "tiles")):
        raise TypeError(f"frame_bounds: options {sorted(options)} apply only to the "
                        f"'polyphase' and 'tiles' methods (tiles, tile_limit, "
                        f"single_tile_limit), not to {method!r}")
    if method not in op.bounds_methods:
        raise ValueError(f"unknown method {method!r} for {type(op).__name__}; expected auto, "
                         + ", ".join(op.bounds_methods))
    n, d = op.shape
    if n == 0:
        return FrameBounds(0.0, 0.0, True, "empty", 0.0)
    if method in ("iterative", "shift-invert") and d < LANCZOS_MIN_DIM:
        method = "dense"  # ARPACK needs k < d - 1 and a Krylov space: solve exactly
    conv = "tiles" in op.bounds_methods    # conv operators (or proxies): certified methods
    if method == "fft":
        return certified_fft_bounds(op) if conv else fft_bounds(op.plan)
    if method == "dense":
        return (certified_dense_bounds if conv else svd_bounds)(op.dense(force=True))
    if method in ("polyphase", "tiles"):
        fb = (polyphase_bounds if method == "polyphase" else tile_bounds)(op, **options)
        if auto and not fb.details.get("conclusive", True):
            # the certificate could not prove a positive lower bound: fall back to the
            # certified dense bounds on small inputs, else to the Lanczos estimate, saying
            # so (its upper value is an estimate too)
            if d <= AUTO_DENSE_LIMIT:
                dense = certified_dense_bounds(op.dense(force=True))
                return dataclasses.replace(
                    dense, note=f"{dense.note}; the {method} certificate was inconclusive "
                                f"({fb.note})")
            band = (fb.details or {}).get("band")
            if band is not None and np.isfinite(band["estimate"]):
                # the whole-image band was factorised (theory.band_gram): its shift-invert
                # estimate of a, with the certified upper bound, instead of Lanczos on A^T A
                return FrameBounds(max(band["estimate"], 0.0), fb.upper, False, "shift-invert",
                                   float(np.sqrt(d * _EPS)), band["residual"],
                                   note=f"shift-invert estimate of the lower bound (banded "
                                        f"whole-image Gram, residual {band['residual']:.2g} "
                                        f"through the conv), not certified; upper: the "
                                        f"certified {method} bound ({fb.note})",
                                   details=fb.details)
            est = lanczos_bounds(op.gram_operator(), n, tol=tol, maxiter=maxiter,
                                 what=op.gram_name)
            return dataclasses.replace(
                est, note=f"iterative estimate: the {method} certificate proved only "
                          f"[0, {fb.upper:.6g}] ({fb.note})")
        return fb
    if method == "dense-gram":
        return gram_eigen_bounds(op.dense(force=True))
    if method == "banded":
        return banded_bounds(op.sparse(), *op.band_geometry())
    if method == "shift-invert":
        return shift_invert_bounds(op.sparse(), tol=tol)
    return lanczos_bounds(op.gram_operator(), n, tol=tol, maxiter=maxiter,
                          what=op.gram_name)


def gram_operator(layer: ConvLayer, input_shape: Sequence[int]) -> LinearOperator:
    """$A^T A$ of a layer on `input_shape` as a symmetric float64 LinearOperator.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.frames import gram_operator
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((4, 1, 3, 3)), padding=1)
    >>> G = gram_operator(layer, (1, 5, 5))
    >>> a, v = layer.dense((1, 5, 5)), np.ones(25)
    >>> G.shape, bool(np.allclose(G.matvec(v), a.T @ a @ v))
    ((25, 25), True)
    """
    return layer.at(input_shape).gram_operator()


__all__ = ["FrameBounds", "Method", "as_frame_operator", "banded_bounds",
           "certified_dense_bounds", "certified_fft_bounds", "fft_bounds", "frame_bounds",
           "gram_eigen_bounds", "gram_operator", "lanczos_bounds", "polyphase_bounds",
           "shift_invert_bounds", "svd_bounds", "tile_bounds"]
