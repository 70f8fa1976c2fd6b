"""theory.checks: the rounding-error bounds and consistency checks of the exact-recovery
claims (LSMR's residual guarantee, the Rayleigh-quotient band of given frame bounds), tested
against independent oracles: closed forms of the documented bounds, scipy's LSMR on dense
systems, and the singular values of a dense SVD."""

import numpy as np
import pytest
from scipy.sparse.linalg import lsmr

from theory.checks import (
    lsmr_residual_tolerance,
    rayleigh_outside,
    rounding_residual_tolerance,
)

EPS = float(np.finfo(np.float64).eps)


def test_lsmr_tolerance_covers_the_true_residual_of_scipy_lsmr_and_not_an_inconsistent_one():
    """Oracle: scipy's LSMR on a dense consistent system b = A x; the true relative residual
    ||b - A x'|| / ||b|| (recomputed in float64) is within the tolerance built from LSMR's own
    ||A||, ||x'|| estimates and iteration count. Negative control: a right-hand side with a
    component outside range(A) leaves a residual far above it."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((80, 30))
    b = a @ rng.standard_normal(30)
    x, istop, itn, _, _, anorm, _, xnorm = lsmr(a, b, atol=1e-12, btol=1e-12)[:8]
    assert istop == 1
    true_rel = np.linalg.norm(b - a @ x) / np.linalg.norm(b)
    tol = lsmr_residual_tolerance(1e-12, 1e-12, anorm, xnorm, float(np.linalg.norm(b)), itn,
                                  taps=30)
    assert true_rel <= tol
    bad = b + rng.standard_normal(80)                      # not in the range of A (80 > 30)
    xb, _, itb, _, _, anb, _, xnb = lsmr(a, bad, atol=1e-12, btol=1e-12)[:8]
    bad_rel = np.linalg.norm(bad - a @ xb) / np.linalg.norm(bad)
    assert bad_rel > 1e6 * lsmr_residual_tolerance(1e-12, 1e-12, anb, xnb,
                                                   float(np.linalg.norm(bad)), itb, taps=30)


def test_rayleigh_quotients_of_singular_vectors_fit_the_svd_bounds_and_not_tighter_ones():
    """Oracle: a dense SVD of A. The computed Rayleigh quotients ||Av||^2 / ||v||^2 of the
    extreme right singular vectors (and of random vectors) lie within [s_min^2, s_max^2] up
    to the allowance; bounds moved inwards by 1e-9 relative (far beyond rounding) do not hold
    them."""
    rng = np.random.default_rng(11)
    a = rng.standard_normal((60, 20)) * np.geomspace(1.0, 30.0, 20)
    s = np.linalg.svd(a, compute_uv=False)
    vt = np.linalg.svd(a)[2]
    lo, hi, d = s[-1] ** 2, s[0] ** 2, a.shape[1]
    vs = [vt[-1], vt[0], *rng.standard_normal((5, d))]
    q = [float(np.sum((a @ v) ** 2) / np.sum(v ** 2)) for v in vs]
    assert not any(rayleigh_outside(v, lo, hi, d) for v in q)
    assert rayleigh_outside(q[0], lo * (1 + 1e-9), hi, d)
    assert rayleigh_outside(q[1], lo, hi * (1 - 1e-9), d)


# Killers of the mutants that survived the seed-1 mutation sample (docs/dev/mutation.md).
@pytest.mark.parametrize("iterations", [0, 1, 7])
@pytest.mark.parametrize("taps", [1, 9, 100])
def test_lsmr_tolerance_is_never_below_the_stopping_rule_and_grows_with_taps_and_iterations(
        iterations, taps):
    """The rounding term only adds to LSMR's guarantee btol + atol ||A|| ||x|| / ||b||: the
    tolerance is never below it, and it grows with each extra iteration and each extra term
    per entry of Ax (a tolerance below the rule would flag LSMR's own converged answers)."""
    args = (1e-12, 1e-11, 3.0, 2.0, 5.0)
    rule = 1e-11 + 1e-12 * 3.0 * 2.0 / 5.0
    tol = lsmr_residual_tolerance(*args, iterations=iterations, taps=taps)
    assert tol > rule
    assert lsmr_residual_tolerance(*args, iterations=iterations + 1, taps=taps) > tol
    assert lsmr_residual_tolerance(*args, iterations=iterations, taps=4 * taps) > tol


@pytest.mark.parametrize("iterations, taps", [(0, 1), (0, 9), (0, 144), (5, 16), (40, 1)])
def test_lsmr_rounding_term_is_the_documented_closed_form(iterations, taps):
    """Closed form of the docstring: btol + (atol + 4 (k + sqrt n) u) ||A|| ||x|| / ||b||.
    With atol = btol = 0 and no iterations it is 4 sqrt(n) u ||A|| ||x|| / ||b||, the
    constant of `rounding_residual_tolerance` (n taps, one filter, cond = ||A|| ||x|| / ||b||),
    and each iteration adds 4 u ||A|| ||x|| / ||b||. The n chosen have exact square roots."""
    a_norm, x_norm, b_norm = 3.0, 2.0, 0.75                # ||A|| ||x|| / ||b|| = 8
    pure = lsmr_residual_tolerance(0.0, 0.0, a_norm, x_norm, b_norm, iterations, taps)
    assert pure == pytest.approx(4 * (iterations + np.sqrt(taps)) * EPS * 8.0, rel=1e-14, abs=0)
    if iterations == 0:
        assert pure == pytest.approx(rounding_residual_tolerance(taps, 1, 8.0), rel=1e-14, abs=0)
    step = (lsmr_residual_tolerance(0.0, 0.0, a_norm, x_norm, b_norm, iterations + 1, taps)
            - pure)
    assert step == pytest.approx(4 * EPS * 8.0, rel=1e-6, abs=0)
    full = lsmr_residual_tolerance(1e-10, 2e-10, a_norm, x_norm, b_norm, iterations, taps)
    assert full == pytest.approx(2e-10 + 1e-10 * 8.0 + pure, rel=1e-14, abs=0)


def test_lsmr_tolerance_default_is_one_term_and_no_iterations():
    """Without `iterations` and `taps` the rounding term is that of a single product,
    4 u ||A|| ||x|| / ||b|| (k = 0, n = 1), as `rounding_residual_tolerance(1, 1, cond)`."""
    default = lsmr_residual_tolerance(0.0, 0.0, 3.0, 2.0, 0.75)
    assert default == lsmr_residual_tolerance(0.0, 0.0, 3.0, 2.0, 0.75, iterations=0, taps=1)
    assert default == pytest.approx(4 * EPS * 8.0, rel=1e-14, abs=0)
    assert default == pytest.approx(rounding_residual_tolerance(1, 1, 8.0), rel=1e-14, abs=0)


def test_rayleigh_band_is_closed_at_both_edges():
    """The rounding band [lower - s, upper + s] (s = 10 sqrt(D) u max(upper, q)) is closed: a
    quotient exactly on an edge is inside, the next float beyond it is outside. D = 1 and
    powers of two make every edge exact: s = 10 u for upper = 1, and for q = 1 just above
    upper = 1 - 10 u."""
    lower, upper = 0.5, 1.0
    edge = lower - 10 * EPS                                 # exact: the spacing here is u/4
    assert edge == lower - 10.0 * EPS * upper
    assert rayleigh_outside(edge, lower, upper, dim=1) is False
    assert rayleigh_outside(np.nextafter(edge, -np.inf), lower, upper, dim=1) is True
    top = 1.0 - 10 * EPS                                    # exact: the spacing here is u/2
    assert top + 10 * EPS == 1.0
    assert rayleigh_outside(1.0, lower, top, dim=1) is False
    assert rayleigh_outside(np.nextafter(1.0, 2.0), lower, top, dim=1) is True


@pytest.mark.parametrize("t, outside", [(9.5, False), (10.5, True)])
def test_rayleigh_band_is_ten_sqrt_dim_units_of_upper_wide(t, outside):
    """The documented allowance is 10 sqrt(D) u relative to upper (to the quotient above
    it): a quotient t sqrt(D) u upper below `lower`, or a factor 1 + t sqrt(D) u above
    `upper`, is inside for t = 9.5 and outside for t = 10.5."""
    lower, upper, dim = 1.0, 4.0, 100
    below = lower - t * np.sqrt(dim) * EPS * upper
    above = upper * (1 + t * np.sqrt(dim) * EPS)
    assert rayleigh_outside(below, lower, upper, dim) is outside
    assert rayleigh_outside(above, lower, upper, dim) is outside


# Killers of the mutants that survived the seed-3 mutation sample (docs/dev/mutation.md).
def test_cgls_tolerance_rounding_term_uses_the_given_abs_norm_and_solution_norm():
    """Closed form of the docstring, btol + atol a xi / ||b|| + 8 sqrt(n) u |||A||| ||x'|| /
    ||b||: the rounding term uses `abs_norm` (an upper bound on |||A|||_2, not ||A||) and
    `solution_norm` where given, and falls back to `a_norm` and `x_norm` where not (or where
    abs_norm is not finite). n = 9 has an exact square root; 5 != 3 and 4 != 2 make a swap
    show."""
    from theory.checks import cgls_residual_tolerance

    a_norm, x_norm, b_norm, taps = 3.0, 2.0, 0.75, 9
    given = cgls_residual_tolerance(0.0, 0.0, a_norm, x_norm, b_norm, taps=taps,
                                    abs_norm=5.0, solution_norm=4.0)
    assert given == pytest.approx(8 * 3 * EPS * 5.0 * 4.0 / b_norm, rel=1e-14, abs=0)
    default = cgls_residual_tolerance(0.0, 0.0, a_norm, x_norm, b_norm, taps=taps)
    assert default == pytest.approx(8 * 3 * EPS * 3.0 * 2.0 / b_norm, rel=1e-14, abs=0)
    assert cgls_residual_tolerance(0.0, 0.0, a_norm, x_norm, b_norm, taps=taps,
                                   abs_norm=np.inf, solution_norm=4.0) == pytest.approx(
        8 * 3 * EPS * 3.0 * 4.0 / b_norm, rel=1e-14, abs=0)
    full = cgls_residual_tolerance(1e-10, 2e-10, a_norm, x_norm, b_norm, taps=taps,
                                   abs_norm=5.0, solution_norm=4.0)
    assert full == pytest.approx(2e-10 + 1e-10 * 3.0 * 2.0 / b_norm + given, rel=1e-14, abs=0)


@pytest.mark.parametrize("shape, axis", [((0, 4, 3, 3), 1), ((4, 0, 5), 0), ((4, 3, 3), 0)])
def test_crelu_overlap_of_no_positions_or_all_zero_features_is_zero(shape, axis):
    """An empty batch (N = 0), features with no spatial positions, and all-zero features (a
    dead layer) have no position where both halves are positive: (0, 0.0), not an error."""
    from theory.checks import crelu_overlap

    assert crelu_overlap(np.zeros(shape), axis=axis) == (0, 0.0)
