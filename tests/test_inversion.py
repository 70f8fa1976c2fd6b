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
    assert total == pytest.approx(np.linalg.norm(direct), rel=1e-10)


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
