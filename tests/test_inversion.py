"""Proposition 2.1: exact recovery in the injective regime, projection otherwise."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given

from theory.checks import InconsistentFeaturesWarning
from theory.testing import injective_layers, rank_deficient_layers
from theory import (ConvLayer, NonInjectiveError, NonInjectiveWarning, crelu_features,
                    FrameBounds, frame_bounds, invert_crelu, recovery_tolerance)

EPS = float(np.finfo(np.float64).eps)


def features(layer, x):
    return crelu_features(x, layer)


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@given(injective_layers(circulant=True))
def test_fft_exact_recovery(case):
    x = np.random.default_rng([0, 7919]).standard_normal((3, *case.input_shape))
    res = invert_crelu(features(case.layer, x), case.layer, case.input_shape, "fft")
    assert res.solver == "fft" and res.injective
    assert rel(res.x, x) <= recovery_tolerance(case.layer, res.frame_bounds)


@given(injective_layers())
def test_dense_exact_recovery(case):
    x = np.random.default_rng([1, 7919]).standard_normal(case.input_shape)
    res = invert_crelu(features(case.layer, x), case.layer, case.input_shape, "dense")
    assert res.injective and res.x.shape == x.shape
    assert rel(res.x, x) <= recovery_tolerance(case.layer, res.frame_bounds)


@given(injective_layers())
def test_lsmr_recovery_within_a_posteriori_bound(case):
    x = np.random.default_rng([2, 7919]).standard_normal(case.input_shape)
    res = invert_crelu(features(case.layer, x), case.layer, case.input_shape, "lsmr",
                       atol=1e-14, btol=1e-14, maxiter=2000)
    # ||x - x*|| <= ||r|| / sigma_min and ||x*|| >= ||z|| / sigma_max, plus the rounding of z
    bound = res.error_bound() + recovery_tolerance(case.layer, res.frame_bounds)
    assert rel(res.x, x) <= bound
    assert res.stopping["solver"].endswith("lsmr") and res.iterations > 0


@given(rank_deficient_layers())
def test_rank_deficient_returns_the_projection(case):
    x = np.random.default_rng([3, 7919]).standard_normal(case.input_shape)
    with pytest.warns(NonInjectiveWarning, match="not injective"):
        res = invert_crelu(features(case.layer, x), case.layer, case.input_shape)
    assert res.injective is False and res.frame_bounds.lower <= 1e-20 * res.frame_bounds.upper + 1e-24
    px = case.projector(x)
    assert np.linalg.norm(res.x - px) <= 1e-10 * np.linalg.norm(x)
    assert rel(res.x, x) > 1e-3  # and it is not x: the warning is not a false alarm


@given(injective_layers(circulant=True))
def test_relu_half_alone_does_not_reconstruct(case):
    """Negative control: drop the negative channels (ReLU features); the check then fails."""
    x = np.random.default_rng([4, 7919]).standard_normal(case.input_shape)
    if (np.asarray(case.layer.forward(x)) >= 0).all():
        x = -x  # ReLU is lossless where z >= 0; the control needs negative responses
    h = features(case.layer, x)
    assert h[case.layer.out_channels:].any()
    h[case.layer.out_channels:] = 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = invert_crelu(h, case.layer, case.input_shape)
    assert rel(res.x, x) > 1e3 * recovery_tolerance(case.layer, res.frame_bounds)
    # the residual check flags the ReLU data exactly when they leave the range of A (dense
    # oracle): where range(A) is everything (K = C on 1x1 kernels, say), no check can
    a = case.layer.dense(case.input_shape)
    z = h[:case.layer.out_channels].ravel()
    off_range = (np.linalg.norm(a @ np.linalg.lstsq(a, z, rcond=None)[0] - z)
                 / max(np.linalg.norm(z), 1e-300))
    flagged = any(issubclass(w.category, InconsistentFeaturesWarning) for w in caught)
    if off_range > 1e-6:
        assert flagged and res.checks["relative_residual"] > res.checks["residual_tolerance"]
    elif off_range < 1e-12:
        assert not flagged


def test_raise_mode_and_torch_input():
    layer = ConvLayer(np.random.default_rng(0).standard_normal((2, 3, 3, 3)), padding=1,
                      padding_mode="circular")
    h = features(layer, np.ones((3, 5, 5)))
    with pytest.raises(NonInjectiveError, match="lower frame bound"):
        invert_crelu(h, layer, (3, 5, 5), on_non_injective="raise")
    good = ConvLayer(np.random.default_rng(0).standard_normal((6, 3, 3, 3)), padding=1,
                     padding_mode="circular")
    x = torch.randn(3, 5, 5, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = invert_crelu(crelu_features(x, good), good, (3, 5, 5))
    assert rel(res.x, x.numpy()) < 1e-12


@pytest.mark.parametrize("h, shape, match", [
    (np.ones((3, 5, 5)), (1, 5, 5), "even channel count"),
    (np.ones((6, 5, 5)), (1, 5, 5), "6 channels; CReLU of this layer has 2\\*2 = 4"),
    (np.ones((4, 4, 5)), (1, 5, 5), "spatially"),
    (np.full((4, 5, 5), np.inf), (1, 5, 5), "NaN or Inf"),
    (np.ones((0, 4, 5, 5)), (1, 5, 5), "empty"),
    (-np.ones((4, 5, 5)), (1, 5, 5), "negative value"),
    (np.ones((4, 5, 5)), (2, 5, 5), "2 channels but the layer.s filters have 1"),
    (np.ones(5), (1, 5, 5), "shape"),
])
def test_bad_features_are_refused(h, shape, match):
    layer = ConvLayer(np.ones((2, 1, 3, 3)), padding=1, padding_mode="circular")
    with pytest.raises(ValueError, match=match):
        invert_crelu(h, layer, shape)


def test_unknown_method():
    layer = ConvLayer(np.ones((2, 1, 3, 3)), padding=1, padding_mode="circular")
    with pytest.raises(ValueError, match="unknown solver"):
        invert_crelu(np.ones((4, 5, 5)), layer, (1, 5, 5), "magic")


def _near_parallel_layer(delta: float, seed: int = 0) -> ConvLayer:
    """Two circular filters on two channels, the second within ``delta`` of the first:
    cond(A) grows like 1/delta."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((1, 2, 3, 3))
    return ConvLayer(np.concatenate([w, w + delta * rng.standard_normal(w.shape)]), padding=1,
                     padding_mode="circular")


@pytest.mark.parametrize("delta", [1e-2, 1e-4, 1e-6, 1e-8, 1e-10])
def test_fft_accuracy_follows_cond_not_cond_squared(delta):
    """FFT inverse error <= recovery_tolerance (c cond eps) up to cond ~ 4e11; dense oracle."""
    layer = _near_parallel_layer(delta)
    x = np.random.default_rng(1).standard_normal((2, 12, 12))
    fb = frame_bounds(layer, x.shape, "dense")   # the oracle's certificate (SVD)
    assert fb.injective
    h = crelu_features(x, layer)
    fft = invert_crelu(h, layer, x.shape, "fft", bounds=fb)
    dense = invert_crelu(h, layer, x.shape, "dense", bounds=fb)
    err = np.linalg.norm(fft.x - x) / np.linalg.norm(x)
    assert err <= recovery_tolerance(layer, fb)
    # and never much worse than the dense least-squares oracle
    assert err <= 10 * np.linalg.norm(dense.x - x) / np.linalg.norm(x) + 100 * EPS


def test_fft_accuracy_check_catches_the_normal_equations(monkeypatch):
    """Planted bug: the Gram (normal-equation) path at every frequency squares cond."""
    from theory.fft import CirculantPlan

    monkeypatch.setattr(CirculantPlan, "GRAM_KAPPA", np.inf)
    layer = _near_parallel_layer(1e-6)
    x = np.random.default_rng(1).standard_normal((2, 12, 12))
    fb = frame_bounds(layer, x.shape, "dense")
    with pytest.warns(InconsistentFeaturesWarning):   # the residual check sees it too
        res = invert_crelu(crelu_features(x, layer), layer, x.shape, "fft", bounds=fb)
    assert np.linalg.norm(res.x - x) / np.linalg.norm(x) > recovery_tolerance(layer, fb)


def test_per_input_residuals_of_a_normalised_plan_match_the_direct_residuals():
    """A bank at 2^-80 is solved at unit scale (exponent 80): the per-input residuals must be
    scaled back. Oracle: ||A x_i - z_i|| with the direct conv2d forward, per input."""
    from theory import CirculantPlan

    rng = np.random.default_rng(5)
    w = np.ldexp(rng.standard_normal((4, 2, 3, 3)), -80)
    layer = ConvLayer(w, padding=1, padding_mode="circular")
    plan = CirculantPlan(layer, (2, 6, 6))
    z = np.ldexp(rng.standard_normal((3, 4, 6, 6)), -80)  # not in the range: residual > 0
    x, res = plan.solve(z, return_residual="per-input")
    direct = np.linalg.norm((layer.forward(x) - z).reshape(3, -1), axis=1)
    assert res.shape == (3,) and np.all(direct > 0)
    # Parseval vs conv2d: both in float64, a few hundred terms: rounding ~ 1e-13 relative
    np.testing.assert_allclose(res, direct, rtol=1e-10)
    total = plan.solve(z, return_residual=True)[1]
    assert total == pytest.approx(np.linalg.norm(direct), rel=1e-10, abs=0)


# Killers of mutants that survived `python -m verify.mutation` (docs/dev/mutation.md).
def _lsmr_case():
    rng = np.random.default_rng(0)
    layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1)
    x = rng.standard_normal((2, 2, 6, 6))
    return layer, x


def test_lsmr_that_stops_on_maxiter_raises_with_its_reason():
    from theory.checks import NotConvergedError

    layer, x = _lsmr_case()
    with pytest.raises(NotConvergedError, match=r"LSMR did not converge: .* after 2 iterations"):
        invert_crelu(features(layer, x[0]), layer, (2, 6, 6), solver="lsmr", maxiter=2,
                     on_not_converged="raise", on_inconsistent="ignore")


def test_batch_stopping_record_is_the_worst_over_the_inputs():
    layer, x = _lsmr_case()
    x[0] = 0  # LSMR: istop 0 (x = 0 is exact) for the first input, 7 (maxiter) for the second
    batch = invert_crelu(features(layer, x), layer, (2, 6, 6), solver="lsmr", maxiter=2,
                         on_not_converged="ignore", on_inconsistent="ignore")
    assert [r.stopping["istop"] for r in batch] == [0, 7]
    assert batch.stopping["istop"] == 7
    assert batch.stopping["reason"] == "the iteration limit was reached"


def test_batch_of_zero_features_has_zero_residual():
    layer, x = _lsmr_case()
    batch = invert_crelu(np.zeros_like(features(layer, x)), layer, (2, 6, 6), solver="lsmr")
    assert batch.relative_residual == 0.0 and np.all(batch.x == 0)


def test_bad_features_are_refused_by_name():
    layer, _ = _lsmr_case()
    with pytest.raises((TypeError, ValueError), match=r"\bfeatures\b"):
        invert_crelu("abc", layer.at((2, 6, 6)))


def test_given_lower_bound_zero_fits_on_the_lsmr_path():
    """Bounds [0, 2b] are valid (if useless: cond = inf); a finite LSMR condition estimate
    must not be held against an infinite cond."""
    layer, x = _lsmr_case()
    fb = frame_bounds(layer, (2, 6, 6))
    r = invert_crelu(features(layer, x[0]), layer, (2, 6, 6), solver="lsmr",
                     bounds=FrameBounds(0.0, 2 * fb.upper, True), on_inconsistent="raise",
                     on_non_injective="ignore")
    assert r.checks["bounds_fit"] is True


# Killers of the mutants that survived the seed-1 mutation sample (docs/dev/mutation.md).
@pytest.mark.parametrize("solver, mode", [("dense", "zeros"), ("fft", "circular")])
def test_given_bounds_of_a_normalised_layer_are_compared_on_the_layers_own_scale(solver, mode):
    """A bank at 2^-80 is solved as 2^78 A (normalising_exponent). Given bounds of A itself
    (normalisation 1: the oracle's sigma^2 of the unit-scale bank times 2^-160) fit; bounds
    of the unit-scale bank (2^160 times too large) do not."""
    rng = np.random.default_rng(3)
    w, x = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((2, 6, 6))
    tiny = ConvLayer(np.ldexp(w, -80), padding=1, padding_mode=mode)
    s = np.linalg.svd(ConvLayer(w, padding=1, padding_mode=mode).dense(x.shape),
                      compute_uv=False)   # oracle: sigma(2^-80 W) = 2^-80 sigma(W), exactly
    assert tiny.at(x.shape).normalised[0] != 0
    h = features(tiny, x)
    own = FrameBounds(np.ldexp(s[-1] ** 2, -160), np.ldexp(s[0] ** 2, -160), True)
    fit = invert_crelu(h, tiny, x.shape, solver, bounds=own, on_inconsistent="raise")
    assert fit.checks["bounds_fit"] is True and rel(fit.x, x) < 1e-12
    with pytest.warns(InconsistentFeaturesWarning, match="do not describe this layer"):
        unit = invert_crelu(h, tiny, x.shape, solver, bounds=FrameBounds(s[-1] ** 2, s[0] ** 2,
                                                                         True))
    assert unit.checks["bounds_fit"] is False


@pytest.mark.parametrize("solver, mode", [("dense", "zeros"), ("fft", "circular")])
@pytest.mark.parametrize("t, fits", [(9.5, True), (10.5, False)])
def test_exact_paths_allow_the_same_rounding_as_the_rayleigh_check(solver, mode, t, fits):
    """The exact spectrum is compared with given bounds under the rounding allowance of
    `theory.checks.rayleigh_outside`, 10 sqrt(D) u b: a lower (upper) bound moved inwards by
    t sqrt(D) u b fits for t = 9.5 and not for t = 10.5. Closed form: a 1x1 conv is W on
    every pixel, and W = [[2, 0], [0, 1], [0, 0]] has singular values 2 and 1, so a = 1, b = 4
    (both solvers compute them exactly here)."""
    from theory.checks import rayleigh_outside

    w = np.zeros((3, 2, 1, 1))
    w[0, 0], w[1, 1] = 2.0, 1.0
    layer = ConvLayer(w, padding_mode=mode)
    x = np.random.default_rng(7).standard_normal((2, 8, 8))
    a, b, d = 1.0, 4.0, x.size
    step = t * np.sqrt(d) * EPS * b
    h = features(layer, x)
    for fb, edge in [(FrameBounds(a + step, b, True), a), (FrameBounds(a, b - step, True), b)]:
        assert rayleigh_outside(edge, fb.lower, fb.upper, d) is not fits
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = invert_crelu(h, layer, x.shape, solver, bounds=fb)
        assert r.solver == solver and r.checks["bounds_fit"] is fits
        assert any(issubclass(c.category, InconsistentFeaturesWarning) for c in caught) is not fits


def test_positive_lower_bound_never_fits_a_layer_with_fewer_outputs_than_inputs():
    """1 filter on 2 channels: M = 36 < D = 72, so A has a null space and a = 0. Bounds that
    claim a = sigma_36^2 > 0 (the smallest of the 36 singular values, numpy's SVD) are wrong."""
    from theory.checks import InconsistentFeaturesError

    rng = np.random.default_rng(0)
    wide = ConvLayer(rng.standard_normal((1, 2, 3, 3)), padding=1)
    x = rng.standard_normal((2, 6, 6))
    s = np.linalg.svd(wide.dense(x.shape), compute_uv=False)
    assert len(s) == 36 < x.size and s[-1] > 0.01 * s[0]
    with pytest.raises(InconsistentFeaturesError, match=r"do not describe this layer.* a = 0,"):
        invert_crelu(features(wide, x), wide, x.shape, "dense",
                     bounds=FrameBounds(s[-1] ** 2, s[0] ** 2, True), on_inconsistent="raise")
    valid = invert_crelu(features(wide, x), wide, x.shape, "dense",
                         bounds=FrameBounds(0.0, s[0] ** 2, True), on_non_injective="ignore",
                         on_inconsistent="raise")
    assert valid.checks["bounds_fit"] is True


def test_bounds_probe_quotients_are_scale_free_rayleigh_quotients():
    """||Ax||^2 / ||x||^2 does not depend on the scale of x: for x of norm ~ 6000 the first
    quotient equals the dense oracle's, and all of them lie in [a, b] (numpy's SVD)."""
    from theory.inversion import bounds_probe

    rng = np.random.default_rng(0)
    op = ConvLayer(rng.standard_normal((4, 1, 3, 3)), padding=1).at((1, 6, 6))
    a_mat = op.dense()
    s = np.linalg.svd(a_mat, compute_uv=False)
    x = 1e3 * rng.standard_normal((1, 6, 6))
    x[0, 0, 0] = 0.0                      # a zero entry is an ordinary input
    q = bounds_probe(op, x)
    assert len(q) == 4
    oracle = np.sum((a_mat @ x.ravel()) ** 2) / np.sum(x ** 2)
    assert q[0] == pytest.approx(oracle, rel=1e-12, abs=0)
    assert all(s[-1] ** 2 * (1 - 1e-12) <= v <= s[0] ** 2 * (1 + 1e-12) for v in q)


@pytest.mark.parametrize("shape, solver", [((1, 32, 32), "dense"), ((1, 25, 41), "cgls")])
def test_auto_picks_dense_up_to_and_including_the_limit(shape, solver):
    """Documented: `auto` takes `dense` if the input has at most AUTO_DENSE_LIMIT (1024)
    values, else `cgls` (zero padding, so no fft; no certificate, so no circulant
    preconditioner, which would make it `lsmr`). 32x32 = 1024, 25x41 = 1025."""
    from theory.conv import AUTO_DENSE_LIMIT

    assert int(np.prod(shape)) - AUTO_DENSE_LIMIT == {"dense": 0, "cgls": 1}[solver]
    layer = ConvLayer(np.random.default_rng(0).standard_normal((1, 1, 3, 3)), stride=4,
                      padding=1)   # 64 outputs: the dense least squares is cheap
    x = np.random.default_rng(1).standard_normal(shape)
    r = invert_crelu(features(layer, x), layer, shape, certify=False)
    assert r.solver == solver


def test_dense_solve_too_large_is_refused_by_size_before_any_certificate():
    """(2, 128, 128): the dense matrix and its identity need 12 GiB > DENSE_MAX_BYTES. The
    refusal comes first: no certificate is computed, so this non-injective layer (1 filter,
    2 channels) raises the MemoryError, not NonInjectiveError."""
    layer = ConvLayer(np.random.default_rng(0).standard_normal((1, 2, 3, 3)), padding=1,
                      padding_mode="circular")
    h = np.zeros((2, 128, 128))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(MemoryError, match=r"input \(2, 128, 128\) needs 12\.0 GiB"):
            invert_crelu(h, layer, (2, 128, 128), "dense", on_non_injective="raise")


@pytest.mark.parametrize("solver, mode", [("fft", "circular"), ("lsmr", "zeros")])
def test_matrix_free_solvers_are_not_limited_by_the_dense_size(solver, mode):
    """(1, 100, 100) with 2 filters: a dense matrix (and its identity) would need 2.2 GiB >
    DENSE_MAX_BYTES; fft and lsmr never form it and recover x (a well-conditioned bank:
    a near-identity first filter, so LSMR needs few iterations)."""
    rng = np.random.default_rng(0)
    w = 0.02 * rng.standard_normal((2, 1, 3, 3))
    w[0, 0, 1, 1] += 1.0
    layer = ConvLayer(w, padding=1, padding_mode=mode)
    x = rng.standard_normal((1, 100, 100))
    with pytest.raises(MemoryError):
        layer.at(x.shape).check_dense_size()
    r = invert_crelu(features(layer, x), layer, x.shape, solver,
                     certify="fft" if solver == "fft" else False)
    assert r.solver == solver and r.converged and rel(r.x, x) < 1e-8


def test_deprecated_method_keyword_is_named_in_its_warning_and_conflict():
    layer = ConvLayer(np.random.default_rng(0).standard_normal((4, 1, 3, 3)), padding=1,
                      padding_mode="circular")
    x = np.random.default_rng(1).standard_normal((1, 6, 6))
    h = features(layer, x)
    with pytest.warns(DeprecationWarning, match=r"^the keyword 'method' is deprecated; use "
                                                r"'solver'$"):
        r = invert_crelu(h, layer, x.shape, method="dense")
    assert r.solver == "dense"
    with (pytest.warns(DeprecationWarning, match="'method'"),
          pytest.raises(TypeError, match=r"^got both method='fft' and solver='dense'$")):
        invert_crelu(h, layer, x.shape, "dense", method="fft")


def test_relative_residual_is_relative_at_every_scale():
    """Features off the range of A (a random z): ||Ax' - z|| / ||z|| matches the dense
    least-squares oracle, for ||z|| ~ 12 and for the same features times 2^-20 (||z|| < 1;
    a power of two scales the data exactly: the relative residual must not change)."""
    rng = np.random.default_rng(4)
    layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1)
    z = rng.standard_normal((4, 6, 6))
    h = np.concatenate([np.maximum(z, 0), np.maximum(-z, 0)])
    a = layer.dense((2, 6, 6))
    oracle = (np.linalg.norm(a @ np.linalg.lstsq(a, z.ravel(), rcond=None)[0] - z.ravel())
              / np.linalg.norm(z))
    assert oracle > 0.1 and np.linalg.norm(z) > 1
    for scale in [1.0, 2.0 ** -20]:
        r = invert_crelu(scale * h, layer, (2, 6, 6), "dense", on_inconsistent="ignore")
        assert (np.linalg.norm(scale * z) < 1) == (scale < 1)
        assert r.checks["relative_residual"] == pytest.approx(oracle, rel=1e-10, abs=0)


def test_lsmr_residual_tolerance_counts_the_taps_of_each_output():
    """The LSMR tolerance is `lsmr_residual_tolerance` with n = C kh kw = 18 terms per entry
    of Ax (the rounding of the check's own evaluation), or the rounding bound if larger. The
    LSMR estimates of ||A||, ||x|| come from a separate `solve_lsmr` of the same system
    (unpreconditioned; the preconditioned case: the test below)."""
    from theory.checks import lsmr_residual_tolerance, rounding_residual_tolerance
    from theory.solvers import solve_lsmr

    layer, x = _lsmr_case()
    op = layer.at((2, 6, 6))
    fb = frame_bounds(layer, (2, 6, 6), "dense")
    z = np.asarray(layer.forward(x[0]))
    r = invert_crelu(features(layer, x[0]), op, solver="lsmr", bounds=fb, precondition="none")
    sol = solve_lsmr(op.linear_operator, z.ravel(), atol=1e-12, btol=1e-12, maxiter=None)
    assert sol.iterations == r.iterations
    rounding = rounding_residual_tolerance(18, 4, fb.cond)
    lsmr_tol = lsmr_residual_tolerance(1e-12, 1e-12, sol.a_norm_estimate, sol.x_norm_estimate,
                                       float(np.linalg.norm(z)), sol.iterations, taps=18)
    one_tap = lsmr_residual_tolerance(1e-12, 1e-12, sol.a_norm_estimate, sol.x_norm_estimate,
                                      float(np.linalg.norm(z)), sol.iterations, taps=1)
    assert lsmr_tol > max(rounding, one_tap) * (1 + 1e-6)   # the taps term matters here
    assert r.checks["residual_tolerance"] == pytest.approx(lsmr_tol, rel=1e-9, abs=0)


# Killers of the mutants that survived the seed-1 mutation sample (docs/dev/mutation.md).
def test_fft_stopping_record_names_its_method_and_counts_the_svd_frequencies():
    """The FFT inverse reports how it solved: stopping["solver"] names the per-frequency
    pseudo-inverse and its two methods (Gram, SVD), "rtol" is the default rank threshold
    max(M, D) eps, and "svd_frequencies" is the number of frequencies whose matrix A(w)
    has cond > GRAM_KAPPA = 4 (oracle: numpy's SVD of each A(w); this layer has some of
    both kinds, with no ratio near 4)."""
    from theory.fft import CirculantPlan

    rng = np.random.default_rng(2)
    layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
    x = rng.standard_normal((2, 6, 6))
    res = invert_crelu(features(layer, x), layer, x.shape, "fft")
    assert res.solver == "fft" and rel(res.x, x) < 1e-10
    s = np.linalg.svd(CirculantPlan(layer, x.shape).matrices, compute_uv=False)
    ratio = s[:, 0] / s[:, -1]
    assert not np.any(np.isclose(ratio, CirculantPlan.GRAM_KAPPA, rtol=1e-3))
    slow = int(np.sum(ratio > CirculantPlan.GRAM_KAPPA))
    assert 0 < slow < len(ratio)
    assert res.stopping["svd_frequencies"] == slow
    assert res.stopping["rtol"] == pytest.approx(4 * 36 * EPS, rel=1e-12, abs=0)
    label = res.stopping["solver"]
    assert label.startswith("per-frequency pseudo-inverse") and "Gram" in label
    assert "SVD" in label


# Killers of the mutants that survived the seed-2 mutation sample (docs/dev/mutation.md).
def test_lsmr_bounds_that_do_not_fit_are_refused_with_the_probe_evidence():
    """Bounds [2b, 4b] (b the true upper bound, dense oracle) exclude every Rayleigh quotient
    ||Av||^2/||v||^2 <= b; the warning names the quotients and LSMR's condition estimate."""
    layer, x = _lsmr_case()
    b = float(np.linalg.svd(layer.dense((2, 6, 6)), compute_uv=False)[0]) ** 2
    with pytest.warns(InconsistentFeaturesWarning,
                      match=r"do not describe this layer: Rayleigh quotients .*"
                            r"LSMR's condition estimate"):
        r = invert_crelu(features(layer, x[0]), layer, (2, 6, 6), solver="lsmr",
                         bounds=FrameBounds(2 * b, 4 * b, True))
    assert r.checks["bounds_fit"] is False
    q = r.checks["rayleigh_quotients"]
    assert len(q) == 4 and all(v <= b * (1 + 1e-9) for v in q)
    assert all(f"{v:.4g}" in r.checks["bounds_evidence"] for v in q)


@pytest.mark.parametrize("solver, mode", [("dense", "zeros"), ("fft", "circular")])
def test_exact_path_evidence_names_the_scale_of_a_normalised_layer(solver, mode):
    """A bank at 2^-80 is solved as 2^e A (e = normalising_exponent, 78 here): the spectrum
    quoted as evidence is of 2^e A, and the message says so; at unit scale (e = 0) it does not."""
    rng = np.random.default_rng(3)
    w, x = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((2, 6, 6))
    tiny = ConvLayer(np.ldexp(w, -80), padding=1, padding_mode=mode)
    unit = ConvLayer(w, padding=1, padding_mode=mode)
    e = tiny.at(x.shape).normalised[0]
    assert e != 0 and unit.at(x.shape).normalised[0] == 0
    wrong = FrameBounds(1e3, 1e4, True)          # far above sigma^2 of either bank
    with pytest.warns(InconsistentFeaturesWarning, match=rf"\(of 2\^{e} A\)"):
        invert_crelu(features(tiny, x), tiny, x.shape, solver, bounds=wrong)
    with pytest.warns(InconsistentFeaturesWarning, match="do not describe") as caught:
        invert_crelu(features(unit, x), unit, x.shape, solver, bounds=wrong)
    assert not any("(of 2^" in str(c.message) for c in caught)


@pytest.mark.parametrize("solver", ["fft", "dense", "lsmr"])
def test_every_result_reports_the_solve_time_in_seconds(solver):
    """`InversionResult.seconds` is documented as a float: the (shared) time of the batch solve."""
    layer, x = _lsmr_case()
    if solver == "fft":
        layer = ConvLayer(layer.weight, padding=1, padding_mode="circular")
    single = invert_crelu(features(layer, x[0]), layer, (2, 6, 6), solver)
    batch = invert_crelu(features(layer, x), layer, (2, 6, 6), solver)
    for r in [single, *batch]:
        assert isinstance(r.seconds, float) and np.isfinite(r.seconds) and r.seconds > 0
    assert all(r.seconds == batch.seconds for r in batch)


def test_non_injective_warning_points_at_the_callers_line():
    """The NonInjectiveWarning of `invert_crelu` is attributed to the code that called it
    (stacklevel through `warn_non_injective`), not to theory/ or to pytest."""
    rng = np.random.default_rng(0)
    wide = ConvLayer(rng.standard_normal((1, 2, 3, 3)), padding=1)   # M = 36 < D = 72
    x = rng.standard_normal((2, 6, 6))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        invert_crelu(features(wide, x), wide, x.shape, "dense")
    hits = [c for c in caught if issubclass(c.category, NonInjectiveWarning)]
    assert len(hits) == 1 and hits[0].filename == __file__


# Killers of the mutants that survived the seed-3 mutation sample (docs/dev/mutation.md).
def test_non_square_features_of_the_wrong_size_are_refused_with_both_sizes():
    """The spatial-size message names the features' H' x W' and the layer's output H x W in
    that order; a 5 x 7 input (output 5 x 7 with circular padding 1) shows a swap or a
    repeated side."""
    layer = ConvLayer(np.ones((2, 1, 3, 3)), padding=1, padding_mode="circular")
    with pytest.raises(ValueError, match=r"features are 5x5 spatially, but the layer maps "
                                         r"\(1, 5, 7\) to 5x7$"):
        invert_crelu(np.ones((4, 5, 5)), layer, (1, 5, 7))


def test_lsmr_progress_callback_counts_each_step_and_leaves_the_solution_alone():
    """`solve_lsmr(callback=...)` is called with 1, 2, ..., one call per adjoint product
    (LSMR's start A^T b, then one per iteration), and the solve is the one without a
    callback: same iterates, same stop, the least-squares solution (oracle:
    numpy.linalg.lstsq); with Jacobi column scaling as well."""
    from theory.solvers import solve_lsmr

    rng = np.random.default_rng(0)
    a = rng.standard_normal((20, 5)) * np.array([1.0, 10.0, 0.1, 3.0, 0.3])
    b = a @ np.arange(1.0, 6.0)
    for scale in (None, 1 / np.linalg.norm(a, axis=0)):
        seen = []
        kw = dict(atol=1e-12, btol=1e-12, maxiter=100, column_scale=scale)
        sol = solve_lsmr(a, b, callback=seen.append, **kw)
        plain = solve_lsmr(a, b, **kw)
        assert seen == list(range(1, sol.iterations + 2))
        assert sol.iterations == plain.iterations and np.array_equal(sol.x, plain.x)
        assert sol.converged and sol.stopping == plain.stopping
        assert rel(sol.x, np.linalg.lstsq(a, b, rcond=None)[0]) < 1e-10


# Killers of the mutants that survived the seed-4 mutation sample (docs/dev/mutation.md).
def test_lsmr_solution_names_its_solver_and_records_the_rule_it_was_given():
    """`solve_lsmr` returns `solver="lsmr"` (the documented name, as `"dense"`, `"cgls"`,
    `"fft"`), and its `stopping` holds atol, btol and maxiter as passed (three distinct
    values): enough to re-check the stop, rule 1 ||b - Ax|| <= btol ||b|| + atol ||A|| ||x||
    with LSMR's own estimates of ||A|| and ||x||. LSMR tests its recurrence residual; the
    true one differs by rounding, O(k u ||A|| ||x||) ~ 1e-12 ||b|| here, far below the 1%
    of btol ||b|| = 1e-8 ||b|| allowed. Columns scaled from 1 to 100 make the convergence
    gradual, so the loose btol = 1e-6 is what stops the solve."""
    from theory.solvers import solve_lsmr

    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 60)) * np.logspace(0, 2, 60)
    b = a @ np.ones(60)
    sol = solve_lsmr(a, b, atol=1e-9, btol=1e-6, maxiter=500)
    st = sol.stopping
    assert sol.solver == "lsmr"
    assert (st["atol"], st["btol"], st["maxiter"]) == (1e-9, 1e-6, 500)
    assert sol.converged and st["istop"] == 1
    bn, rn = np.linalg.norm(b), np.linalg.norm(b - a @ sol.x)
    rule = st["btol"] * bn + st["atol"] * sol.a_norm_estimate * sol.x_norm_estimate
    assert rn <= 1.01 * rule and rn > 1e-12 * bn
    tight = solve_lsmr(a, b, atol=1e-9, btol=1e-12, maxiter=500)
    assert tight.converged and tight.iterations > sol.iterations


def test_an_explicit_lsmr_preconditioner_is_used_and_reported():
    """`precondition="jacobi"` on the lsmr path is applied and reported in
    `stopping["preconditioner"]`: with the second input channel's weights 1000 times the
    first's, unpreconditioned LSMR does not converge within its default iteration cap
    (min(M, D) = 72) while Jacobi column scaling does, and recovers x (an injective layer
    with 144 rows and 72 unknowns, consistent data)."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 2, 3, 3))
    w[:, 1] *= 1e3
    layer = ConvLayer(w, padding=1)
    x = rng.standard_normal((2, 6, 6))
    h = features(layer, x)
    kw = dict(certify=False, on_inconsistent="ignore", on_not_converged="ignore")
    plain = invert_crelu(h, layer, x.shape, "lsmr", precondition="none", **kw)
    scaled = invert_crelu(h, layer, x.shape, "lsmr", precondition="jacobi", **kw)
    assert plain.stopping["preconditioner"] == "none" and not plain.converged
    assert scaled.stopping["preconditioner"] == "jacobi" and scaled.converged
    assert scaled.iterations < plain.iterations and rel(scaled.x, x) < 1e-7


@pytest.mark.parametrize("e", [520, -560])
def test_batch_relative_residual_of_a_layer_far_from_unit_scale(e):
    """The batch's ||AX - Z||_F / ||Z||_F for a bank at 2^520 (squares of the features
    overflow binary64) or 2^-560 (they underflow), with features off the range of A (a
    random z, residual ~0.7). Oracle: the definition, evaluated on the data times 2^-e
    (exact: a power of two) with conv2d's forward."""
    rng = np.random.default_rng(0)
    layer = ConvLayer(np.ldexp(rng.standard_normal((4, 2, 3, 3)), e), padding=1,
                      padding_mode="circular")
    z = np.ldexp(rng.standard_normal((3, 4, 6, 6)), e)
    h = np.concatenate([np.maximum(z, 0), np.maximum(-z, 0)], axis=1)
    batch = invert_crelu(h, layer, (2, 6, 6), "fft", on_inconsistent="ignore")
    oracle = (np.linalg.norm(np.ldexp(np.asarray(layer.forward(batch.x)) - z, -e))
              / np.linalg.norm(np.ldexp(z, -e)))
    assert oracle > 0.1
    assert batch.relative_residual == pytest.approx(oracle, rel=1e-10, abs=0)


# ------------------------------------------------------------------ the CGLS path (issue 13)
def _strided_case(seed=0, size=20):
    rng = np.random.default_rng(seed)
    layer = ConvLayer(rng.standard_normal((24, 3, 5, 5)) / np.sqrt(75), stride=2, padding=2)
    return layer, rng.standard_normal((3, size, size))


@pytest.mark.parametrize("precision", ["float64", "mixed"])
def test_cgls_inverts_a_zero_padded_strided_layer_exactly(precision):
    """CGLS on the im2col operator, Jacobi-scaled (the certificate says injective): the
    input back to the cond * rounding level, against the truth and numpy's lstsq on the
    definition-built matrix (an independent oracle)."""
    from theory.testing import reference_matrix

    layer, x = _strided_case()
    res = invert_crelu(features(layer, x), layer, x.shape, "cgls", precision=precision,
                       atol=1e-14, btol=1e-14)
    assert res.solver == "cgls" and res.converged and res.injective
    assert res.stopping["preconditioner"] == "jacobi"
    assert res.stopping["precision"] == precision
    assert res.relative_residual <= res.checks["residual_tolerance"]
    lsq = np.linalg.lstsq(reference_matrix(layer, x.shape), np.asarray(layer.forward(x)).ravel(),
                          rcond=None)[0]
    cond = res.frame_bounds.cond
    err = np.linalg.norm(res.x - x) / np.linalg.norm(x)
    assert err <= cond * res.checks["residual_tolerance"]
    assert np.linalg.norm(res.x.ravel() - lsq) <= 1e-9 * np.linalg.norm(lsq)


def test_auto_takes_cgls_with_jacobi_and_lsmr_for_the_circulant():
    """Above the dense limit, zero padding, certified injective: `auto` runs CGLS with
    Jacobi scaling; for a layer whose preconditioner is the circulant one (one channel, an
    ill-conditioned symbol: `choose_preconditioner`'s doctest layer) it runs LSMR."""
    layer, x = _strided_case(size=24)
    assert invert_crelu(features(layer, x), layer, x.shape).solver == "cgls"
    rng = np.random.default_rng(0)
    smooth = ConvLayer(np.ones((2, 1, 3, 3)) + 0.1 * rng.standard_normal((2, 1, 3, 3)),
                       padding=1)
    xs = rng.standard_normal((1, 40, 40))
    res = invert_crelu(features(smooth, xs), smooth, xs.shape)
    assert res.solver == "lsmr" and res.stopping["preconditioner"] == "circulant"


def test_cgls_flags_relu_features_and_refuses_the_circulant():
    """Negative control: ReLU-only features are not consistent, and the CGLS path says so
    (the residual is tens of percent). The circulant preconditioner is refused by name."""
    layer, x = _strided_case(seed=1)
    h = features(layer, x)
    k = layer.out_channels
    h[k:] = 0
    with pytest.warns(InconsistentFeaturesWarning, match="not consistent"):
        res = invert_crelu(h, layer, x.shape, "cgls", atol=1e-14, btol=1e-14)
    assert res.relative_residual > 0.1
    with pytest.raises(ValueError, match="circulant preconditioner needs solver='lsmr'"):
        invert_crelu(features(layer, x), layer, x.shape, "cgls", precondition="circulant")


def test_cgls_batch_reports_each_input():
    layer, x = _strided_case(seed=2)
    xb = np.stack([x, 2 * x + 1])
    res = invert_crelu(features(layer, xb), layer, x.shape, "cgls")
    assert len(res) == 2 and all(r.solver == "cgls" and r.converged for r in res)
    assert np.abs(res.x - xb).max() <= 1e-8 * np.abs(xb).max()


def test_the_fft_solve_names_its_method_in_stopping():
    """What the result reports about the fft solve: the method, written out as in
    `theory.solvers.solve_fft`, and the plan's rtol and SVD frequencies (killer of the
    seed-7 mutant that garbled the name)."""
    layer = ConvLayer(np.random.default_rng(0).standard_normal((8, 1, 3, 3)), padding=1,
                      padding_mode="circular")
    x = np.random.default_rng(1).random((1, 8, 8))
    res = invert_crelu(features(layer, x), layer, x.shape)
    assert res.solver == "fft"
    assert res.stopping["solver"] == "per-frequency pseudo-inverse (Gram or SVD per frequency)"
    assert set(res.stopping) >= {"rtol", "svd_frequencies"}
