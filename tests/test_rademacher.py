"""Tests of theory.rademacher and the rademacher claims (oracles: enumeration, grids, sympy)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from theory import rademacher as rad
from theory.testing import feature_sets, planar_samples, sample_sets
from verify.claims import rademacher as claims
from verify.claims.base import Context

EPS = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------- strategies

# --------------------------------------------------------------------------- oracles

def brute_linear(phi: np.ndarray, B: float) -> float:
    """Enumerate sign vectors with itertools; sup over ||w|| <= B is B ||v||."""
    L = phi.shape[0]
    total = 0.0
    for signs in itertools.product((-1.0, 1.0), repeat=L):
        total += B * float(np.linalg.norm(np.asarray(signs) @ phi))
    return total / 2 ** L / L


def grid_stats(X: np.ndarray, signs: np.ndarray, n_grid: int = 20000) -> dict[str, np.ndarray]:
    """Per-draw suprema over a dense grid of unit vectors in 2-d (lower bounds of the exact)."""
    t = np.linspace(0, 2 * np.pi, n_grid, endpoint=False)
    U = np.stack([np.cos(t), np.sin(t)], axis=1)
    A = signs @ np.maximum(U @ X.T, 0).T
    Am = signs @ np.maximum(-U @ X.T, 0).T
    return {"relu": np.abs(A).max(1), "crelu": np.sqrt(A ** 2 + Am ** 2).max(1),
            "avr": np.abs(A + Am).max(1), "linear": np.abs(A - Am).max(1)}


# --------------------------------------------------------------------------- linear class

@given(feature_sets(), st.floats(0.1, 10.0))
def test_linear_exact_between_khintchine_kahane_and_jensen(phi, B):
    exact = rad.linear_class(phi, B, exact=True).value
    lo, hi = rad.linear_bounds(phi, B)
    tol = 4 * phi.shape[0] * EPS * hi
    assert lo - tol <= exact <= hi + tol


@given(feature_sets(max_L=8), st.integers(0, 2 ** 31))
def test_linear_monte_carlo_interval_and_bounds(phi, seed):
    # delta = 1e-9: a correct McDiarmid interval misses with probability <= 1e-9.
    est = rad.linear_class(phi, 1.0, 200, seed, delta=1e-9)
    exact = rad.linear_class(phi, 1.0, exact=True).value
    lo, hi = rad.linear_bounds(phi, 1.0)
    assert est.ci[0] <= exact <= est.ci[1]
    assert est.ci[0] <= hi and est.ci[1] >= lo
    assert est.n_draws == 200 and est.seed == seed and est.sup == "exact"


@given(feature_sets(max_L=16, max_p=3))
def test_enumeration_equals_closed_form(phi):
    if phi.shape[0] > 10:  # keep the python-loop oracle fast: trim to 10 rows
        phi = phi[:10]
    assert rad.linear_class(phi, 2.0, exact=True).value == pytest.approx(
        brute_linear(phi, 2.0), rel=8 * phi.shape[0] * EPS)


def test_enumeration_at_the_limit_L16():
    phi = np.random.default_rng(0).standard_normal((16, 3))
    assert rad.linear_class(phi, 1.0, exact=True).value == pytest.approx(
        brute_linear(phi, 1.0), rel=64 * EPS)
    with pytest.raises(ValueError, match="L <= 16"):
        rad.linear_class(np.ones((17, 2)), exact=True)


def test_khintchine_kahane_constant_is_attained():
    # Two equal scalars: E|s1 + s2| = 1, trace bound sqrt 2: the 1/sqrt 2 constant is optimal.
    lo, hi = rad.linear_bounds(np.ones((2, 1)), 1.0)
    assert rad.linear_class(np.ones((2, 1)), 1.0, exact=True).value == pytest.approx(lo)


# --------------------------------------------------------------------------- two-layer classes

@given(planar_samples())
def test_arc_sweep_equals_dense_grid(X):
    signs = rad.all_signs(X.shape[0])
    exact = rad.two_layer_classes(X, 1, 1.0, exact=True)
    grid = grid_stats(X, signs)
    # grid spacing h = 2 pi / n: |a(u) - a(u')| <= sum ||x_l|| h/2 for neighbouring grid points
    slack = np.linalg.norm(X, axis=1).sum() * (math.pi / 20000) * 2 / X.shape[0]
    for k, e in exact.items():
        g = grid[k].mean() / X.shape[0]
        assert e.sup == "exact"
        assert g - 1e-12 <= e.value <= g + slack


@given(planar_samples(), st.integers(1, 6))
def test_ratio_and_sandwich_exact(X, d):
    est = rad.two_layer_classes(X, d, 1.0, exact=True, activations=("relu", "crelu"))
    relu2 = rad.two_layer_class(X, 2 * d, 1.0, "relu", exact=True)
    tol = 4 * X.shape[0] * EPS
    r, c = est["relu"].value, est["crelu"].value
    assert r * (1 - tol) <= c <= math.sqrt(2) * r * (1 + tol)
    assert c <= relu2.value * (1 + tol)
    assert relu2.value == pytest.approx(math.sqrt(2) * r, rel=tol)


@given(sample_sets(), st.integers(0, 2 ** 31))
def test_ratio_in_range_for_searched_supremum(X, seed):
    est = rad.two_layer_classes(X, 3, 1.0, 16, seed, activations=("relu", "crelu"),
                                n_starts=4, n_iter=4)
    tol = 4 * X.shape[0] * EPS
    assert est["relu"].value * (1 - tol) <= est["crelu"].value
    assert est["crelu"].value <= math.sqrt(2) * est["relu"].value * (1 + tol)


def test_search_is_a_lower_estimate_of_the_exact_supremum():
    rng = np.random.default_rng(3)
    X2 = rng.standard_normal((10, 2))
    Q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    X5 = np.concatenate([X2, np.zeros((10, 3))], axis=1) @ Q.T   # rank 2 in R^5
    exact = rad.two_layer_classes(X5, 1, 1.0, 100, 7)              # detects rank 2: exact
    assert all(e.sup == "exact" for e in exact.values())
    signs = rad.sign_draws(10, 100, 7)
    searched = rad._stats_search(X5, signs, ["relu", "crelu", "avr"], 8, 12,
                                 np.random.default_rng(0))
    full = rad._stats_2d(X2, signs, ["relu", "crelu", "avr"])
    for k in searched:
        assert np.all(searched[k] <= full[k] * (1 + 1e-12))
        assert searched[k].mean() >= 0.9 * full[k].mean()        # and not a poor one here
    X3 = rng.standard_normal((10, 3))
    assert rad.two_layer_class(X3, 1, 1.0, "crelu", 20, 0).sup == "lower estimate"
    assert rad.two_layer_class(X3, 1, 1.0, "crelu", 20, 0).ci_method == "hoeffding"


def test_linear_activation_equals_theorem41_bound():
    X = np.random.default_rng(1).standard_normal((30, 4))
    lin = rad.two_layer_class(X, 7, 2.0, "linear", 500, 3)
    b = rad.theorem41_bound(X, 7, 2.0, 500, 3)
    assert lin.value == pytest.approx(b.value, rel=1e-12)
    assert lin.sup == "exact"


def test_same_seed_same_estimate():
    X = np.random.default_rng(2).standard_normal((40, 2))
    a = rad.two_layer_class(X, 2, 1.0, "crelu", 300, 11)
    b = rad.two_layer_class(X, 2, 1.0, "crelu", 300, 11)
    assert a == b


def test_monte_carlo_two_layer_interval_contains_enumeration():
    X = np.random.default_rng(4).standard_normal((12, 2))
    exact = rad.two_layer_classes(X, 2, 1.0, exact=True)
    mc = rad.two_layer_classes(X, 2, 1.0, 400, 5, delta=1e-6)
    for k in exact:
        assert mc[k].ci[0] <= exact[k].value <= mc[k].ci[1]


# --------------------------------------------------------------------------- Theorem 4.1 (symbolic)

def test_counterexample_symbolic():
    """x = (p, -q), p, q > 0, d_in = B = 1: every sign gives sup = sqrt(p^2 + q^2) for CReLU,
    and E|s1 p - s2 q| = max(p, q); so R_CReLU / bound = sqrt(p^2 + q^2) / max(p, q)."""
    p, q = sp.symbols("p q", positive=True)
    crelu_terms = []
    linear_terms = []
    for s1, s2 in itertools.product((-1, 1), repeat=2):
        P, N = s1 * p, s2 * q            # a(+1) = s1 [p]_+, a(-1) = s2 [q]_+
        crelu_terms.append(sp.sqrt(P ** 2 + N ** 2))
        linear_terms.append(sp.Abs(s1 * p - s2 * q))
    r_crelu = sp.simplify(sum(crelu_terms) / 4 / 2)
    r_bound = sp.simplify(sum(linear_terms) / 4 / 2)
    assert sp.simplify(r_crelu - sp.sqrt(p ** 2 + q ** 2) / 2) == 0
    assert sp.simplify(r_bound.subs({p: 3, q: 2}) - sp.Rational(3, 2)) == 0
    assert sp.simplify((r_crelu / r_bound).subs({p: 1, q: 1}) - sp.sqrt(2)) == 0
    for pv, qv in ((1.0, 1.0), (3.0, 2.0), (0.5, 4.0)):
        X = np.array([[pv], [-qv]])
        num = rad.two_layer_class(X, 1, 1.0, "crelu", exact=True).value
        bnd = rad.theorem41_bound(X, 1, 1.0, exact=True).value
        assert num == pytest.approx(float(r_crelu.subs({p: pv, q: qv})), rel=8 * EPS)
        assert bnd == pytest.approx(float(r_bound.subs({p: pv, q: qv})), rel=8 * EPS)


def test_relu_counterexample_symbolic():
    """x = {(1,0), (1/2,1/2), (1/2,-1/2)}: per-sign suprema of |a(u)| and ||S|| in closed form."""
    X = claims.RELU_COUNTEREXAMPLE
    signs = rad.all_signs(3)
    half, r2 = sp.Rational(1, 2), sp.sqrt(2)
    sup_sym, norm_sym = [], []
    u1, u2 = sp.symbols("u1 u2", real=True)
    pts = [sp.Matrix([1, 0]), sp.Matrix([half, half]), sp.Matrix([half, -half])]
    for s in signs:
        S = sum((int(si) * p for si, p in zip(s, pts)), sp.zeros(2, 1))
        norm_sym.append(sp.sqrt(S.dot(S)))
        # candidate maximisers: S/||S|| and the axis directions; the arc sweep proves optimality
        cands = [sp.Matrix([c, d]) for c, d in ((1, 0), (-1, 0), (0, 1), (0, -1))]
        cands += [sp.Matrix([c, d]) / r2 for c in (1, -1) for d in (1, -1)]
        vals = []
        for u in cands:
            a = sum(int(si) * sp.Max(u.dot(p), 0) for si, p in zip(s, pts))
            vals.append(sp.Abs(sp.nsimplify(a)))
        sup_sym.append(sp.Max(*vals))
    exact = rad._stats_2d(X, signs, ["relu"])["relu"]
    for e, v in zip(exact, sup_sym):
        assert e == pytest.approx(float(v), rel=16 * EPS)
    ratio = sp.nsimplify(sum(sup_sym) / sum(norm_sym))
    assert sp.simplify(ratio - (5 + 4 * r2) / (4 + 4 * r2)) == 0
    assert sp.N(ratio) > 1


def test_relu_attains_paper_bound_in_one_dimension():
    # 1-d: sup|a| = max(|P|, |N|) = (|P + N| + |P - N|)/2 and P + N =d P - N: equality.
    x = np.random.default_rng(5).standard_normal((11, 1))
    r = rad.two_layer_class(x, 1, 1.0, "relu", exact=True).value
    b = rad.theorem41_bound(x, 1, 1.0, exact=True).value
    assert r == pytest.approx(b, rel=64 * EPS)


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("X, match", [
    (np.zeros((0, 2)), "empty"),
    (np.array([[1.0, np.nan]]), "NaN"),
    (np.ones((2, 2, 2)), "shape"),
])
def test_bad_inputs_are_named(X, match):
    with pytest.raises(ValueError, match=match):
        rad.two_layer_class(X)
    with pytest.raises(ValueError, match=match):
        rad.linear_class(X)


def test_bad_parameters_are_named():
    X = np.ones((3, 2))
    with pytest.raises(ValueError, match="activation"):
        rad.two_layer_class(X, activation="tanh")
    with pytest.raises(ValueError, match="B"):
        rad.linear_class(X, B=-1.0)
    with pytest.raises(ValueError, match="n_draws"):
        rad.linear_class(X, n_draws=0)
    with pytest.raises(ValueError, match="d_in"):
        rad.two_layer_class(X, d_in=0)
    with pytest.raises(ValueError, match="McDiarmid"):
        rad.two_layer_class(np.random.default_rng(0).standard_normal((5, 3)),
                            ci_method="mcdiarmid")
    with pytest.raises(ValueError, match="form"):
        rad.theorem41_bound(X, form="tight")


# --------------------------------------------------------------------------- claims and controls

@pytest.fixture()
def ctx(tmp_path: Path) -> Context:
    return Context(profile="quick", seed=0, out_dir=tmp_path)


def test_check_functions_fail_on_broken_inputs():
    est = rad.RademacherEstimate(1.0, (0.9, 1.1), 10, 0)
    assert claims.interval_contains(est, 1.05) and not claims.interval_contains(est, 1.2)
    assert claims.sandwich_holds(1.0, 1.2, math.sqrt(2), 10)
    assert not claims.sandwich_holds(1.0, 1.2, math.sqrt(2), 10, upper_factor=0.5)
    bound = rad.RademacherEstimate(2.0, (1.9, 2.1), 10, 0)
    assert claims.bound_verdict(est, bound) == "pass"
    assert claims.bound_verdict(est, bound.scaled(0.5)) == "inconclusive"   # intervals overlap
    assert claims.bound_verdict(est, bound.scaled(0.4)) == "fail"
    lower = rad.RademacherEstimate(1.0, (0.0, 3.0), 10, 0, sup="lower estimate")
    assert claims.bound_verdict(lower, bound) == "inconclusive"


def test_mc_claim_passes_and_too_few_draws_fail(ctx):
    assert claims._mc_vs_enum(ctx, None, "auto").status == "pass"
    assert claims._mc_vs_enum(ctx, 1, "normal").status == "fail"


def test_counterexample_claim_and_relu_control(ctx):
    assert claims._counterexample(ctx, "crelu").status == "pass"
    assert claims._counterexample(ctx, "relu").status == "fail"


def test_corrected_bound_claim_and_halved_control(ctx):
    assert claims._corrected(ctx, "gaussian", 1.0, False).status == "pass"
    assert claims._corrected(ctx, "gaussian", 0.5, False).status == "fail"


def test_paper_bound_halved_is_never_reported_as_holding(ctx):
    assert claims._paper_form(ctx, "gaussian", 0.5).status != "pass"


@pytest.mark.slow
def test_ratio_claim_and_halved_control(ctx):
    assert claims._ratio_sandwich(ctx, 1.0, False).status == "pass"
    assert claims._ratio_sandwich(ctx, 0.5, False).status == "fail"


def test_trained_features_loader(tmp_path, monkeypatch, ctx):
    from safetensors.numpy import save_file

    monkeypatch.setattr(claims, "WEIGHTS_DIR", tmp_path)
    X, note = claims.trained_features(ctx, 20)
    assert X is None and "not yet available" in note
    w = np.random.default_rng(0).standard_normal((6, 3, 4, 4)).astype(np.float32)
    save_file({"convs.0.weight": w, "head.bias": np.zeros(10, np.float32)},
              str(tmp_path / "allconv_crelu.safetensors"))
    X, note = claims.trained_features(ctx, 20)
    assert X.shape == (20, 6) and "convs.0.weight" in note
    est = rad.two_layer_classes(X, 2, 1.0, 8, 0, activations=("relu", "crelu"), n_starts=3,
                                n_iter=2)
    assert est["relu"].value <= est["crelu"].value * (1 + 1e-12)


def test_normal_interval_half_width_scales_with_the_normal_quantile():
    """The plug-in normal interval's half-width is z_{1-delta/2} sd / sqrt(n): the ratio of
    two half-widths from the same draws is the ratio of scipy's normal quantiles (an
    independent oracle; a division by the quantile instead gives its inverse)."""
    from scipy.stats import norm

    from theory.rademacher import linear_class

    phi = np.random.default_rng(3).standard_normal((12, 4))
    a = linear_class(phi, n_draws=400, seed=5, delta=0.05, ci_method="normal")
    b = linear_class(phi, n_draws=400, seed=5, delta=0.01, ci_method="normal")
    assert a.value == b.value
    ratio = (b.ci[1] - b.value) / (a.ci[1] - a.value)
    assert ratio == pytest.approx(norm.ppf(0.995) / norm.ppf(0.975), rel=1e-12)


# Killers of the mutants that survived the seed-1 mutation sample (docs/dev/mutation.md).

def test_enumeration_reports_its_interval_method_as_exact():
    """An enumerated estimate says so: `ci_method == "exact"` (one of the four documented
    values), the degenerate interval (value, value) for an exact supremum and (value, inf) for
    an enumerated lower estimate, for the linear class, the two-layer classes and the bound."""
    rng = np.random.default_rng(6)
    X2, X3 = rng.standard_normal((7, 2)), rng.standard_normal((7, 3))
    exact = [rad.linear_class(X2, exact=True), rad.theorem41_bound(X2, exact=True),
             *rad.two_layer_classes(X2, 2, 1.0, exact=True).values()]
    for est in exact:
        assert (est.method, est.sup, est.ci_method, est.seed) == (
            "enumeration", "exact", "exact", None)
        assert est.ci == (est.value, est.value) and est.n_draws == 2 ** 7
    lower = rad.two_layer_class(X3, 1, 1.0, "crelu", exact=True, n_starts=2, n_iter=2)
    assert (lower.method, lower.sup, lower.ci_method) == ("enumeration", "lower estimate",
                                                          "exact")
    assert lower.ci == (lower.value, math.inf)


def test_scalar_statistics_match_the_definition_on_a_grid_of_u():
    """For scalar inputs every per-draw statistic, the linear one included, is the supremum
    over u in [-1, 1] of its definition in a(u) = sum_l sigma_l [u x_l]_+ (oracle: a grid of
    u holding the endpoints, where all four |u|-homogeneous objectives peak)."""
    x = np.array([1.5, -0.7, 0.0, 2.0, -3.0, 0.4])
    signs = rad.all_signs(x.size)
    u = np.linspace(-1.0, 1.0, 201)
    a = signs @ np.maximum(u[None, :] * x[:, None], 0.0)          # (2^L, grid): a(u)
    am = a[:, ::-1]                                                # a(-u)
    oracle = {"relu": np.abs(a).max(1), "crelu": np.sqrt(a ** 2 + am ** 2).max(1),
              "avr": np.abs(a + am).max(1), "linear": np.abs(a - am).max(1)}
    got = rad._stats_1d(x, signs)
    assert sorted(got) == sorted(oracle)
    scale = np.abs(x).sum()
    for k in oracle:
        np.testing.assert_allclose(got[k], oracle[k], rtol=0, atol=16 * EPS * scale)
    np.testing.assert_allclose(got["linear"], np.abs(signs @ x), rtol=0, atol=16 * EPS * scale)


@pytest.mark.parametrize("data_seed", [0, 1])
def test_crelu_search_reaches_the_exact_supremum_on_most_draws(data_seed):
    """The CReLU ascent u <- M(u)u / ||M(u)u|| is a power iteration on the quadratic form of the
    active arc, so where it settles it attains the exact CReLU supremum to rounding. On rank-2
    samples rotated into R^3 (oracle: the arc sweep on the plane coordinates) it does so on at
    least a quarter of all 2^10 sign vectors (about 55-80 % here); the ReLU and AVR ascents stop
    at their own maximisers and match it on under 1 %, so a search that loses the CReLU ascent
    (or ascends a wrong gradient) is caught."""
    rng = np.random.default_rng(data_seed)
    X2 = rng.standard_normal((10, 2))
    Q = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    X3 = np.concatenate([X2, np.zeros((10, 1))], axis=1) @ Q.T
    signs = rad.all_signs(10)
    full = rad._stats_2d(X2, signs, ["crelu"])["crelu"]
    searched = rad._stats_search(X3, signs, ["crelu"], 8, 12, np.random.default_rng(0))["crelu"]
    assert np.all(np.isfinite(searched))
    assert np.all(searched <= full * (1 + 1e-12))                 # attained values: lower bounds
    reached = np.abs(full - searched) <= 1e-9 * full
    assert reached.mean() >= 0.25


def test_two_layer_class_passes_delta_to_its_interval():
    """`delta` sets the confidence level of `two_layer_class` as of `two_layer_classes`: the
    McDiarmid half-width is (B sqrt(d)/L) sqrt(2 ||X||_F^2 ln(2/delta)/n) (exact supremum,
    rank 2) and the Hoeffding one (B sqrt(d)/L) sqrt(L) ||X||_op sqrt(ln(2/delta)/(2n))
    (searched supremum, rank 3), both from the formulas of the module's Notes."""
    rng = np.random.default_rng(8)
    L, d, B, n = 10, 3, 2.0, 200
    scale = B * math.sqrt(d) / L
    for X, kind in ((rng.standard_normal((L, 2)), "mcdiarmid"),
                    (rng.standard_normal((L, 3)), "hoeffding")):
        for delta in (0.01, 0.3):
            est = rad.two_layer_class(X, d, B, "crelu", n, 4, delta=delta, n_starts=2,
                                      n_iter=2)
            if kind == "mcdiarmid":
                half = scale * math.sqrt(2 * np.sum(X * X) * math.log(2 / delta) / n)
            else:
                half = (scale * math.sqrt(L) * np.linalg.svd(X, compute_uv=False)[0]
                        * math.sqrt(math.log(2 / delta) / (2 * n)))
            assert (est.delta, est.ci_method) == (delta, kind)
            assert est.ci[1] - est.value == pytest.approx(half, rel=1e-12)
            assert est.ci[0] == pytest.approx(max(est.value - half, 0.0), rel=1e-12)
        assert rad.two_layer_class(X, d, B, "crelu", exact=True, delta=0.3, n_starts=2,
                                   n_iter=2).delta == 0.3


# Killers of the mutants that survived the seed-2 mutation sample (docs/dev/mutation.md).
def test_unknown_ci_method_error_lists_every_choice():
    with pytest.raises(ValueError, match="expected auto, mcdiarmid, hoeffding or normal"):
        rad.linear_class(np.ones((3, 2)), ci_method="bootstrap")


def test_linear_bounds_empty_features_error_names_the_argument():
    with pytest.raises(ValueError, match=r"features is empty"):
        rad.linear_bounds(np.zeros((0, 3)))


def test_stats_2d_all_zero_inputs_give_zero_suprema():
    """All-zero inputs: every hidden unit outputs 0, so each per-draw supremum is exactly 0."""
    signs = rad.all_signs(3).astype(float)
    out = rad._stats_2d(np.zeros((3, 2)), signs, ["relu", "crelu"])
    for k in ("relu", "crelu"):
        assert out[k].shape == (signs.shape[0],)
        assert np.all(out[k] == 0.0)


# Killers of the mutants that survived the seed-3 mutation sample (docs/dev/mutation.md).
def test_norm_bound_zero_is_refused_by_name():
    """B must be positive: B = 0 makes every class the zero function, not a class to measure."""
    X = np.random.default_rng(0).standard_normal((5, 2))
    match = r"norm bound B must be a positive finite number, got 0\.0"
    with pytest.raises(ValueError, match=match):
        rad.linear_class(X, B=0.0)
    with pytest.raises(ValueError, match=match):
        rad.two_layer_class(X, B=0.0)
    with pytest.raises(ValueError, match=match):
        rad.linear_bounds(X, B=0.0)


def test_negative_or_nan_scale_factor_is_refused_with_its_value():
    est = rad.linear_class(np.ones((3, 2)), exact=True)
    with pytest.raises(ValueError, match=r"scale factor must be >= 0, got -2\.0"):
        est.scaled(-2.0)
    with pytest.raises(ValueError, match=r"scale factor must be >= 0, got nan"):
        est.scaled(float("nan"))


def test_searched_supremum_is_invariant_under_negating_the_inputs():
    """Every class here is symmetric under u -> -u, so negating the samples (X -> -X, the same
    problem in the opposite sign convention) leaves each complexity unchanged. The searched
    lower estimates keep this exactly: every statistic is a function of +-u, the ReLU search
    ascends both a(u) and a(-u), and the CReLU and AVR ascents are odd in u, so the pool of
    candidate directions for -X is that for X up to sign. A search that loses the symmetry
    (e.g. ascends a wrong gradient for a(-u)) gives estimates that depend on the sign of X."""
    for seed in (0, 1):
        X = np.random.default_rng(seed).standard_normal((10, 4))       # rank 4: searched
        plus = rad.two_layer_classes(X, 2, 1.0, 200, 3)
        minus = rad.two_layer_classes(-X, 2, 1.0, 200, 3)
        for name in ("relu", "crelu", "avr"):
            assert plus[name].sup == "lower estimate"
            assert minus[name].value == pytest.approx(plus[name].value, rel=1e-12, abs=0), name


def test_two_layer_classes_defaults_are_those_of_two_layer_class():
    """The documented defaults n_draws = 1000, n_starts = 8 (and n_iter = 12) hold for the
    joint estimator as for the single one, so that both give the same estimate (the joint one
    runs the same search, shared by all activations)."""
    X2 = np.random.default_rng(0).standard_normal((9, 2))              # rank 2: exact sweep
    joint = rad.two_layer_classes(X2)
    for name in rad.ACTIVATIONS:
        assert joint[name].n_draws == 1000
        assert joint[name] == rad.two_layer_class(X2, activation=name)
    X4 = np.random.default_rng(2).standard_normal((10, 4))             # rank 4: searched
    joint = rad.two_layer_classes(X4, n_draws=60)
    explicit = rad.two_layer_classes(X4, n_draws=60, n_starts=8, n_iter=12)
    for name in ("relu", "crelu", "avr"):
        assert joint[name].sup == "lower estimate"
        assert joint[name] == explicit[name]
        assert joint[name] == rad.two_layer_class(X4, activation=name, n_draws=60)


def test_linear_class_is_exact_in_a_joint_call_at_any_rank():
    """The linear class's supremum is closed-form (Cauchy-Schwarz) at every rank, so computed
    beside searched classes it keeps the label, interval and value of its own call (it was
    labelled "lower estimate" with a Hoeffding interval when the others needed a search)."""
    X = np.random.default_rng(2).standard_normal((12, 5))          # rank 5: a search
    joint = rad.two_layer_classes(X, n_draws=200, seed=3)
    alone = rad.two_layer_class(X, activation="linear", n_draws=200, seed=3)
    assert joint["crelu"].sup == "lower estimate"
    assert joint["linear"].sup == alone.sup == "exact"
    assert joint["linear"].value == alone.value
    assert joint["linear"].ci == alone.ci
    assert joint["linear"].ci_method == alone.ci_method


# Killers of the mutants that survived the seed-4 mutation sample (docs/dev/mutation.md).
def test_theorem41_bound_defaults_are_paired_with_the_complexity_estimators():
    """`theorem41_bound` takes n_draws and seed "as in `linear_class`" (1000 draws, seed 0):
    called with its defaults it is `linear_class`'s default estimate on the raw inputs scaled
    by c sqrt(d_in) B, and it averages over the same sign vectors as a default
    `two_layer_class` call, whose linear class it equals (Notes), so that the ratio of a
    default complexity to a default bound is a paired comparison."""
    X = np.random.default_rng(5).standard_normal((9, 2))
    d, B = 3, 2.0
    bound = rad.theorem41_bound(X, d, B)
    assert (bound.seed, bound.n_draws, bound.method) == (0, 1000, "monte carlo")
    assert bound == rad.linear_class(X).scaled(math.sqrt(d) * B)
    lin = rad.two_layer_class(X, d, B, "linear")
    assert lin.seed == 0
    assert bound.value == pytest.approx(lin.value, rel=1e-12, abs=0)


def test_a_single_search_start_is_accepted_and_its_pool_is_in_that_of_more_starts():
    """`n_starts >= 1` (as the error says): one start is a valid, cheaper search. The linear
    optimum and the top singular vectors are always tried and the runs are independent, so
    the pool of one start is contained in that of eight (the same starts plus random ones)
    and its lower estimate is no larger, draw by draw; `n_starts = 0` is refused by name."""
    X = np.random.default_rng(7).standard_normal((8, 3))               # rank 3: searched
    kw = {"activations": ("relu", "crelu", "avr"), "n_iter": 4}
    one = rad.two_layer_classes(X, 2, 1.0, 100, 0, n_starts=1, **kw)
    eight = rad.two_layer_classes(X, 2, 1.0, 100, 0, n_starts=8, **kw)
    for name in kw["activations"]:
        assert one[name].sup == "lower estimate" and one[name].n_draws == 100
        assert 0.0 < one[name].value <= eight[name].value * (1 + 1e-12), name
    with pytest.raises(ValueError, match=r"^need n_starts >= 1 and n_iter >= 0, got 0, 4$"):
        rad.two_layer_classes(X, 2, 1.0, 100, 0, n_starts=0, **kw)


@pytest.mark.parametrize("exponent", [-700, -170, 3, 600])
def test_estimates_scale_with_the_samples_bit_for_bit(exponent):
    """Every class is positively homogeneous: the samples times 2^k give every estimate (value
    and interval) times 2^k, exactly. At 2^-700 the squares of the samples underflow and at
    2^600 they overflow; the estimates must not (they were 0 at 2^-700 before the samples were
    brought to unit scale)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 3))
    big = np.ldexp(X, exponent)

    def same(a, b):
        assert np.ldexp(a.value, exponent) == b.value and b.value > 0
        assert tuple(np.ldexp(a.ci, exponent)) == tuple(b.ci)

    same(rad.linear_class(X, n_draws=50, seed=1), rad.linear_class(big, n_draws=50, seed=1))
    same(rad.linear_class(X, exact=True), rad.linear_class(big, exact=True))
    lo, hi = rad.linear_bounds(X)
    assert rad.linear_bounds(big) == (np.ldexp(lo, exponent), np.ldexp(hi, exponent))
    for exact in (True, False):
        a = rad.two_layer_classes(X, n_draws=40, seed=2, exact=exact)
        b = rad.two_layer_classes(big, n_draws=40, seed=2, exact=exact)
        for name in a:
            same(a[name], b[name])
    planar = X[:, :2]
    same(rad.two_layer_class(planar, activation="crelu", exact=True),
         rad.two_layer_class(np.ldexp(planar, exponent), activation="crelu", exact=True))
    same(rad.theorem41_bound(X, n_draws=30), rad.theorem41_bound(big, n_draws=30))
