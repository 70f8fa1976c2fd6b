"""Proposition 2.1: exact recovery in the injective regime, projection otherwise."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given

from theory.testing import injective_layers, rank_deficient_layers
from theory import (ConvLayer, NonInjectiveError, NonInjectiveWarning, crelu_features, invert_crelu,
                    recovery_tolerance)


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
    res = invert_crelu(h, case.layer, case.input_shape)
    assert rel(res.x, x) > 1e3 * recovery_tolerance(case.layer, res.frame_bounds)


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
