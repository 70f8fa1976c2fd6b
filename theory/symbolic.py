r"""Exact (sympy) derivations of the closed forms the docs state: the independent oracle.

Notes
-----
The floating-point routines of the package compute the quantities below by enumeration,
arc sweeps, FFTs and SVDs; this module derives the same numbers in exact arithmetic with
sympy, from first principles and without calling those routines, so that tests and claims
can compare the two:

* the CReLU identities $[z]_+ - [-z]_+ = z$, $[z]_+ + [-z]_+ = |z|$,
  $[z]_+^2 + [-z]_+^2 = z^2$ for real $z$ (`identities`);
* the two counterexamples to Theorem 4.1 as restated
  (docs/theory/rademacher.md, section 4): the ratio
  $R/(\sqrt{d_{in}}BR(F))$ is $\sqrt2$ for CReLU on $x = (1, -1)$ and
  $(5+4\sqrt2)/(4+4\sqrt2)$ for ReLU on
  $\{(1,0), (\tfrac12,\tfrac12), (\tfrac12,-\tfrac12)\}$
  (`rademacher_ratio`, exact enumeration of the $2^L$ sign vectors and an exact
  supremum over the unit circle);
* the corrected constants $3/2$ (ReLU) and $3/\sqrt2$ (CReLU) and the facts that
  the counterexamples do not exceed them (`corrected_constants`);
* the paper's Figure 3 example of docs/theory/maxpool.md: conv responses, pooled CReLU
  features, switches, the selected filters and the frame bounds of $W_x W_x^T$
  (`figure3_example`).

Examples
--------
>>> from theory import symbolic
>>> symbolic.rademacher_ratio("crelu", [[1], [-1]])
sqrt(2)
"""

from __future__ import annotations

import itertools
from typing import Sequence

import sympy as sp

__all__ = ["corrected_constants", "figure3_example", "identities", "rademacher_ratio",
           "relu_counterexample_ratio", "COUNTEREXAMPLE", "RELU_COUNTEREXAMPLE"]

#: The samples of the two counterexamples (docs/theory/rademacher.md, section 4).
COUNTEREXAMPLE = ((1,), (-1,))
RELU_COUNTEREXAMPLE = ((1, 0), (sp.Rational(1, 2), sp.Rational(1, 2)),
                       (sp.Rational(1, 2), -sp.Rational(1, 2)))


def identities() -> dict[str, bool]:
    """The CReLU identities for a real symbol, each proved by sympy (`True` when it holds).

    Examples
    --------
    >>> from theory.symbolic import identities
    >>> all(identities().values())
    True
    """
    z = sp.Symbol("z", real=True)
    pos, neg = sp.Max(z, 0), sp.Max(-z, 0)
    checks = {
        "difference": pos - neg - z,
        "avr": pos + neg - sp.Abs(z),
        "norm": pos ** 2 + neg ** 2 - z ** 2,
        "one_half_zero": pos * neg,   # at most one half is non-zero
    }
    # a proof by cases that cover the real line: z = t > 0, z = -t < 0, z = 0
    t = sp.Symbol("t", positive=True)
    return {name: all(sp.simplify(expr.subs(z, v)) == 0 for v in (t, -t, sp.Integer(0)))
            for name, expr in checks.items()}


def _rat(v) -> sp.Expr:
    return sp.nsimplify(v) if not isinstance(v, sp.Basic) else v


def _sup_on_circle(pieces: Sequence[Sequence[Sequence[sp.Expr]]], breaks: list) -> sp.Expr:
    """Exact max over the unit circle of `sqrt(sum_i <u, v_i(theta)>^2)` (piecewise-constant
    `v_i` on the arcs between `breaks`).

    On an arc the objective is $u^T M u$ with $M = \\sum_i v_i v_i^T$; its maximum
    over the arc is the top eigenvalue of $M$ when the top eigenvector's angle lies in
    the arc (mod $\\pi$), else the larger endpoint value.
    """
    best = sp.Integer(0)
    for (t0, t1), vs in zip(zip(breaks[:-1], breaks[1:]), pieces):
        m = sp.zeros(2, 2)
        for v in vs:
            col = sp.Matrix(v)
            m += col * col.T
        ends = []
        for t in (t0, t1):
            u = sp.Matrix([sp.cos(t), sp.sin(t)])
            ends.append(sp.simplify((u.T * m * u)[0]))
        cand = ends
        if m != sp.zeros(2, 2):
            lam_top = max(m.eigenvals(), key=lambda e: float(e))
            vec = (m - lam_top * sp.eye(2)).nullspace()[0]
            phi = sp.atan2(vec[1], vec[0])
            for shift in (-sp.pi, 0, sp.pi, 2 * sp.pi):
                ang = phi + shift
                if float(t0) - 1e-15 <= float(ang) <= float(t1) + 1e-15:
                    cand = cand + [lam_top]
        best = sp.Max(best, *cand)
    return sp.sqrt(sp.nsimplify(sp.simplify(best)))


def _stat(samples: Sequence[Sequence], signs: Sequence[int], activation: str) -> sp.Expr:
    """Exact per-draw statistic `T(sigma)` of docs/theory/rademacher.md, section 2."""
    xs = [tuple(_rat(c) for c in x) for x in samples]
    dim = len(xs[0])
    if activation == "linear":
        s = [sum(si * x[k] for si, x in zip(signs, xs)) for k in range(dim)]
        return sp.sqrt(sum(c ** 2 for c in s))
    if dim == 1:
        p = sum(si * x[0] for si, x in zip(signs, xs) if x[0] > 0)     # a(+1)
        q = sum(-si * x[0] for si, x in zip(signs, xs) if x[0] < 0)    # a(-1)
        return {"relu": sp.Max(sp.Abs(p), sp.Abs(q)), "crelu": sp.sqrt(p ** 2 + q ** 2),
                "avr": sp.Abs(p + q)}[activation]
    if dim != 2:
        raise ValueError("exact suprema are implemented for 1- and 2-dimensional samples")
    # arc arrangement: u = (cos t, sin t) crosses <u, x_l> = 0 at t = atan2(x) +- pi/2
    cuts = {sp.Integer(0), 2 * sp.pi}
    for x in xs:
        if x != (0, 0):
            base = sp.atan2(x[1], x[0]) + sp.pi / 2
            for k in range(-2, 3):
                t = sp.nsimplify(base + k * sp.pi)
                if 0 < float(t) < float(2 * sp.pi):
                    cuts.add(t)
    breaks = sorted(cuts, key=float)
    pieces = []
    for t0, t1 in zip(breaks[:-1], breaks[1:]):
        tm = (t0 + t1) / 2
        u = (sp.cos(tm), sp.sin(tm))

        def active(sign_u):  # v with a(sign_u * u) = <sign_u * u, v> on this arc
            return [sum((si * x[k] for si, x in zip(signs, xs)
                         if float(sign_u * (u[0] * x[0] + u[1] * x[1])) > 0), sp.Integer(0))
                    for k in range(2)]
        vp, vm = active(1), active(-1)
        if activation == "relu":
            pieces.append([vp])
        elif activation == "crelu":
            pieces.append([vp, vm])            # a(-u) = <-u, vm>: squares add
        else:                                  # avr: a(u) + a(-u) = <u, vp - vm>
            pieces.append([[vp[0] - vm[0], vp[1] - vm[1]]])
    return _sup_on_circle(pieces, breaks)


def rademacher_ratio(activation: str, samples: Sequence[Sequence]) -> sp.Expr:
    """Exact $R(H\\circ\\rho\\circ G) / (\\sqrt{d_{in}}\\,B\\,R(F))$ on `samples`.

    Both complexities share the factor $\\sqrt{d_{in}}B/L$, so the ratio is
    $\\mathbb E_\\sigma T_\\rho(\\sigma) / \\mathbb E_\\sigma\\|\\sum_l\\sigma_l x_l\\|$,
    computed by enumerating all $2^L$ sign vectors with exact suprema.

    Parameters
    ----------
    activation : {"relu", "crelu", "avr", "linear"}
    samples : sequence of L points in one or two dimensions (ints or sympy rationals)

    Examples
    --------
    >>> from theory.symbolic import rademacher_ratio
    >>> rademacher_ratio("crelu", [[1], [-1]])                # > 1: Theorem 4.1 as stated fails
    sqrt(2)
    >>> rademacher_ratio("relu", [[1], [-1]])                 # ReLU meets it on this input
    1
    >>> rademacher_ratio("linear", [[1], [-1]])               # no activation: R(F) itself
    1
    """
    if activation not in ("relu", "crelu", "avr", "linear"):
        raise ValueError(f"unknown activation {activation!r}")
    num, den = sp.Integer(0), sp.Integer(0)
    for signs in itertools.product((1, -1), repeat=len(samples)):
        num += _stat(samples, signs, activation)
        den += _stat(samples, signs, "linear")
    return sp.radsimp(sp.nsimplify(sp.simplify(num / den)))


def relu_counterexample_ratio() -> sp.Expr:
    """The closed form $(5 + 4\\sqrt2)/(4 + 4\\sqrt2)$ the docs state for ReLU.

    Examples
    --------
    >>> from theory.symbolic import relu_counterexample_ratio
    >>> r = relu_counterexample_ratio()
    >>> r
    (5 + 4*sqrt(2))/(4 + 4*sqrt(2))
    >>> r.evalf(6)
    1.10355
    """
    r2 = sp.sqrt(2)
    return (5 + 4 * r2) / (4 + 4 * r2)


def corrected_constants() -> dict[str, sp.Expr]:
    """The corrected Theorem 4.1 constants and the lower limits the counterexamples set.

    Returns `{"relu": 3/2, "crelu": 3/sqrt 2, "relu_floor": (5+4 sqrt 2)/(4+4 sqrt 2),
    "crelu_floor": sqrt 2}`; each floor is at most its constant (checked exactly by the
    tests).

    Examples
    --------
    >>> from theory.symbolic import corrected_constants
    >>> c = corrected_constants()
    >>> c["relu"], c["crelu"]
    (3/2, 3*sqrt(2)/2)
    >>> bool(c["relu_floor"] <= c["relu"]), bool(c["crelu_floor"] <= c["crelu"])
    (True, True)
    """
    return {"relu": sp.Rational(3, 2), "crelu": 3 / sp.sqrt(2),
            "relu_floor": relu_counterexample_ratio(), "crelu_floor": sp.sqrt(2)}


def figure3_example() -> dict[str, object]:
    """The Figure 3 example of docs/theory/maxpool.md in exact arithmetic.

    Three filters $1\\times2$ (stride 1, no padding) on a $2\\times3$ input, one
    $2\\times2$ pooling window. Returns the conv responses `z` (3 x 4, row-major
    positions), the pooled CReLU values `g_plus`/`g_minus` and switches
    `j_plus`/`j_minus`, the selected signed filters as the rows of `W` (n x 6), and the
    extreme eigenvalues `a`, `b` of $W^TW$, exact algebraic numbers (`CRootOf`:
    isolated real roots of the degree-6 characteristic polynomial; `.evalf(30)` gives
    digits).

    Examples
    --------
    >>> from theory.symbolic import figure3_example
    >>> ex = figure3_example()
    >>> ex["j_plus"], ex["j_minus"]                         # the switches of the 3 filters
    ([0, 2, 3], [1, 0, 2])
    >>> ex["W"].shape                                       # selected signed filters x 6 pixels
    (6, 6)
    >>> ex["a"].evalf(6), ex["b"].evalf(6)                  # exact frame bounds of W^T W
    (1.85866, 7.62620)
    >>> bool(ex["a"] > 0)                                   # a frame: x is recoverable
    True
    """
    R = sp.Rational
    w = [(0, 2), (2, 0), (-1, -2)]
    x = sp.Matrix([[R(-4, 10), R(7, 10), R(-8, 10)], [R(1), R(3, 10), R(-7, 10)]])
    rows, z = [], []
    for f in w:
        zf, rf = [], []
        for i in range(2):          # output rows
            for j in range(2):      # output columns
                coef = sp.zeros(2, 3)
                coef[i, j], coef[i, j + 1] = f
                rf.append(list(coef))
                zf.append(sum(coef[k] * x[k] for k in range(6)))
        z.append(zf)
        rows.append(rf)
    g_plus, g_minus, j_plus, j_minus, selected = [], [], [], [], []
    for k in range(3):
        jp = max(range(4), key=lambda j: z[k][j])
        jm = min(range(4), key=lambda j: z[k][j])
        j_plus.append(jp)
        j_minus.append(jm)
        g_plus.append(sp.Max(z[k][jp], 0))
        g_minus.append(sp.Max(-z[k][jm], 0))
        if z[k][jp] > 0:
            selected.append(rows[k][jp])
        if z[k][jm] < 0:
            selected.append([-c for c in rows[k][jm]])
    W = sp.Matrix(selected)
    gram = W.T * W
    lam = sp.Poly(gram.charpoly().as_expr()).real_roots()  # exact (CRootOf), real: symmetric
    return {"z": z, "g_plus": g_plus, "g_minus": g_minus, "j_plus": j_plus,
            "j_minus": j_minus, "W": W, "x": x, "a": lam[0], "b": lam[-1]}
