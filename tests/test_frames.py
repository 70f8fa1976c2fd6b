"""Frame bounds: the three methods agree, respect the certified bounds, flag rank deficiency."""

import numpy as np
import pytest
from hypothesis import given

from theory.testing import injective_layers, rank_deficient_layers
from theory import ConvLayer, frame_bounds

EPS = np.finfo(np.float64).eps


@given(injective_layers(circulant=True))
def test_fft_equals_dense_on_circulant_layers(case):
    fft = frame_bounds(case.layer, case.input_shape, "fft")
    dense = frame_bounds(case.layer, case.input_shape, "dense")
    d = int(np.prod(case.input_shape))
    tol = 10 * d * EPS * dense.upper  # SVD: absolute error of sigma^2 ~ n u sigma_max^2
    # certified values sit outside the computed ones by at most their proved margin
    tol += fft.margin + dense.margin
    assert fft.exact and dense.exact
    assert abs(fft.lower - dense.lower) <= tol and abs(fft.upper - dense.upper) <= tol


@given(injective_layers())
def test_dense_respects_certified_bounds_and_iterative_agrees(case):
    dense = frame_bounds(case.layer, case.input_shape, "dense")
    assert dense.injective
    # the computed value is the certified one plus at most the margin (outward rounding)
    assert dense.lower + dense.margin >= case.certified_lower * (1 - 1e-12)
    assert dense.upper - dense.margin <= case.certified_upper * (1 + 1e-12)
    it = frame_bounds(case.layer, case.input_shape, "iterative", tol=1e-12)
    assert it.exact == (it.method == "dense")  # tiny inputs fall back to the exact SVD
    # Ritz values: |theta - lambda| <= residual norm (an eigenvalue lies within it)
    slack = it.residual + 1e-10 * dense.upper + dense.margin
    assert abs(it.upper - dense.upper) <= slack
    assert abs(it.lower - dense.lower) <= slack


@given(rank_deficient_layers())
def test_rank_deficient_layers_are_flagged(case):
    fb = frame_bounds(case.layer, case.input_shape)
    assert not fb.injective
    assert fb.lower <= 1e-20 * max(fb.upper, 1) + 1e-24
    assert fb.cond == float("inf")


def test_certificate_negative_control():
    """Negative control: the injectivity test must reject a bank with a duplicated null space.

    Zeroing one input channel of an injective bank makes the same check report non-injective.
    """
    w = np.random.default_rng(0).standard_normal((6, 2, 3, 3))
    ok = frame_bounds(ConvLayer(w, padding=1, padding_mode="circular"), (2, 6, 6))
    w[:, 1] = 0
    bad = frame_bounds(ConvLayer(w, padding=1, padding_mode="circular"), (2, 6, 6))
    assert ok.injective and not bad.injective


def test_unpacks_as_triple_and_fft_refuses_non_circulant():
    lower, upper, exact = frame_bounds(ConvLayer(np.ones((2, 1, 3, 3)), padding=1), (1, 4, 4))
    assert exact and upper >= lower >= 0
    with pytest.raises(ValueError, match="FFT path needs circular"):
        frame_bounds(ConvLayer(np.ones((2, 1, 3, 3)), padding=1), (1, 4, 4), "fft")
    with pytest.raises(ValueError, match="unknown method"):
        frame_bounds(ConvLayer(np.ones((2, 1, 3, 3)), padding=1), (1, 4, 4), "magic")


# Killers of mutants that survived `python -m verify.mutation` (docs/dev/mutation.md).
def _svd_oracle(layer, shape):
    s = np.linalg.svd(layer.dense(shape), compute_uv=False)
    return s[-1] ** 2, s[0] ** 2


def test_input_shape_that_differs_from_the_operator_is_refused_by_name():
    op = ConvLayer(np.ones((2, 1, 3, 3)), padding=1).at((1, 4, 4))
    with pytest.raises(ValueError, match=r"input_shape \(1, 5, 5\) differs from the operator's "
                                         r"\(1, 4, 4\)"):
        frame_bounds(op, (1, 5, 5))


def test_normalised_bounds_are_scaled_back_separately():
    """A bank at about 2^-79 is bounded at unit scale and scaled back by 2^-2e: both ends must
    match numpy's SVD of the dense matrix (the mutant that sets lower = upper fails here)."""
    w = np.ldexp(np.random.default_rng(0).standard_normal((4, 2, 3, 3)), -80)
    layer = ConvLayer(w, padding=1)
    lo, hi = _svd_oracle(layer, (2, 5, 5))
    fb = frame_bounds(layer, (2, 5, 5), "dense")
    assert fb.normalisation > 2.0**60 and lo < 0.5 * hi
    # SVD: absolute error of sigma^2 ~ n eps sigma_max^2 (as above), at the layer's own scale
    tol = 100 * 2 * 5 * 5 * EPS * hi
    assert abs(fb.lower - lo) <= tol and abs(fb.upper - hi) <= tol


def test_dense_gram_bounds_match_the_svd_and_certify_injectivity():
    layer = ConvLayer(np.random.default_rng(1).standard_normal((4, 2, 3, 3)), padding=1)
    lo, hi = _svd_oracle(layer, (2, 5, 5))
    fb = frame_bounds(layer, (2, 5, 5), "dense-gram")
    d = 2 * 5 * 5
    # eigenvalues of the computed Gram matrix: within ~ max(M, D) eps ||A||^2 (absolute)
    assert abs(fb.lower - lo) <= 100 * d * EPS * hi and abs(fb.upper - hi) <= 100 * d * EPS * hi
    assert fb.method == "dense-gram" and fb.injective and fb.rtol < 1e-6


def test_banded_bounds_of_a_zero_operator_are_zero():
    import scipy.sparse

    from theory.frames import banded_bounds

    fb = banded_bounds(scipy.sparse.csr_matrix((20, 16)), (1, 4, 4), (3, 3))
    assert (fb.lower, fb.upper, fb.injective) == (0.0, 0.0, False)
