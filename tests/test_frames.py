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


# Killers of the mutants that survived the seed-1 mutation sample (docs/dev/mutation.md).
def _oracle(layer, shape):
    """(a, b, slack) from numpy's SVD of the matrix built from the definition; slack: the
    SVD's absolute rounding of sigma^2, ~ max(M, D) eps sigma_max^2 (with a factor 4)."""
    from theory.testing import reference_matrix

    a = reference_matrix(layer, shape)
    s = np.linalg.svd(a, compute_uv=False)
    lo = float(s[-1]) ** 2 if a.shape[0] >= a.shape[1] else 0.0
    return lo, float(s[0]) ** 2, 4 * max(a.shape) * EPS * float(s[0]) ** 2


def test_svd_bounds_compute_in_float64_whatever_the_input_dtype():
    """Theorem checks run in float64: a float32 matrix (say, exported weights) is bounded as
    the same values in float64, not with float32's ~1e-7 relative accuracy."""
    from theory.frames import svd_bounds

    a32 = np.random.default_rng(0).standard_normal((12, 5)).astype(np.float32)
    s = np.linalg.svd(a32.astype(np.float64), compute_uv=False)
    fb = svd_bounds(a32)
    tol = 4 * 12 * EPS * s[0] ** 2
    assert abs(fb.lower - s[-1] ** 2) <= tol and abs(fb.upper - s[0] ** 2) <= tol


def test_non_operator_is_refused_naming_what_is_accepted_and_what_came():
    with pytest.raises(TypeError, match=r"needs a theory\.ConvLayer \(with input_shape\), a "
                                        r"ConvOperator or a MaxPoolSelection, got ndarray"):
        frame_bounds(np.ones((3, 3)))


def test_unknown_method_error_lists_exactly_the_methods_the_operator_supports():
    for op in (ConvLayer(np.ones((2, 1, 3, 3)), padding=1).at((1, 4, 4)),
               _pooled_selection()):
        with pytest.raises(ValueError, match="unknown method 'magic'") as err:
            frame_bounds(op, method="magic")
        listed = str(err.value).split("expected ", 1)[1].split(", ")
        assert listed == ["auto", *op.bounds_methods]


def _pooled_selection():
    """A max-pooled CReLU selection on a 1 x 6 x 6 input (D = 36 >= LANCZOS_MIN_DIM)."""
    from theory import conv_crelu_maxpool, selection

    layer = ConvLayer(np.random.default_rng(2).standard_normal((6, 1, 3, 3)), padding=1)
    x = np.random.default_rng(3).random((1, 6, 6))
    g, s = conv_crelu_maxpool(x, layer)
    return selection(g, s, layer, x.shape)


def test_fewer_rows_than_columns_get_the_exact_lower_bound_zero_and_say_why():
    layer = ConvLayer(np.random.default_rng(4).standard_normal((1, 2, 3, 3)), padding=1)
    fb = frame_bounds(layer, (2, 4, 4), "dense")           # M = 16 < D = 32
    lo, hi, slack = _oracle(layer, (2, 4, 4))
    assert fb.certified and fb.lower == lo == 0.0 and not fb.injective
    assert hi - slack <= fb.upper <= hi + slack + fb.margin
    assert fb.note == "svd, certified (M < D: a = 0)"


def test_certified_dense_margin_is_the_outward_shift_from_the_svd():
    """`margin` is how far the certified ends sit outside the computed SVD values: tiny (the
    Cholesky shifts are ~1e-12 relative), and each end within it of numpy's SVD."""
    layer = ConvLayer(np.random.default_rng(5).standard_normal((4, 2, 3, 3)), padding=1)
    lo, hi, slack = _oracle(layer, (2, 5, 5))
    fb = frame_bounds(layer, (2, 5, 5), "dense")
    assert fb.certified and 0 < fb.margin <= 1e-9 * hi
    assert lo - fb.margin - slack <= fb.lower <= lo + slack
    assert hi - slack <= fb.upper <= hi + fb.margin + slack


def test_lanczos_below_its_minimum_dimension_solves_exactly():
    """D < LANCZOS_MIN_DIM: `iterative` and `shift-invert` use the exact dense SVD."""
    from theory import conv_crelu_maxpool, selection
    from theory.frames import LANCZOS_MIN_DIM

    layer = ConvLayer(np.random.default_rng(6).standard_normal((6, 1, 3, 3)), padding=1)
    x = np.random.default_rng(7).random((1, 2, 2))
    g, s = conv_crelu_maxpool(x, layer)
    sel = selection(g, s, layer, x.shape)
    assert sel.shape[1] < LANCZOS_MIN_DIM
    ref = np.linalg.svd(sel.dense(force=True), compute_uv=False)
    for method in ("iterative", "shift-invert"):
        fb = frame_bounds(sel, method=method)
        assert fb.method == "dense" and fb.exact and fb.residual == 0.0, method
        tol = 4 * max(sel.shape) * EPS * ref[0] ** 2
        assert abs(fb.lower - ref[-1] ** 2) <= tol and abs(fb.upper - ref[0] ** 2) <= tol


def test_auto_falls_back_to_certified_dense_when_the_polyphase_certificate_is_inconclusive():
    """A stride-2 circular layer on 7 x 7 (H not a multiple of the stride) whose only
    lower-bound method is the whole-image Gram, forbidden by `single_tile_limit=4`: the
    polyphase certificate proves just [0, b]; `auto` must still return the positive certified
    lower bound (from the dense Cholesky proof), not the trivial 0."""
    layer = ConvLayer(np.random.default_rng(8).standard_normal((16, 1, 3, 3)), stride=2,
                      padding=1, padding_mode="circular")
    shape = (1, 7, 7)
    lo, hi, slack = _oracle(layer, shape)
    poly = frame_bounds(layer, shape, "polyphase", single_tile_limit=4)
    assert poly.lower == 0.0 and not poly.details["conclusive"]
    fb = frame_bounds(layer, shape, single_tile_limit=4)
    assert fb.certified and fb.injective and "polyphase certificate was inconclusive" in fb.note
    assert lo - fb.margin - slack <= fb.lower <= lo + slack and hi <= fb.upper + slack


def test_tiles_option_reaches_the_tile_certificate():
    layer = ConvLayer(np.random.default_rng(1).standard_normal((16, 1, 3, 3)), stride=2,
                      padding=1)
    shape = (1, 8, 8)    # by default one tile (P = (4, 4) coarse outputs); asked: 2 x 2 tiles
    lo, hi, slack = _oracle(layer, shape)
    fb = frame_bounds(layer, shape, "tiles", tiles=((2, 2), (2, 2)))
    assert fb.details["tiles"]["P"] == (2, 2) and fb.details["tiles"]["R"] == (2, 2)
    assert fb.details["tiles"]["placements"] > 1
    assert fb.certified and 0 < fb.lower <= lo + slack and hi <= fb.upper + slack


def test_polyphase_note_is_the_sub_method_and_a_reason_only_when_there_is_one():
    from theory.certified import certify_conv
    from theory.frames import polyphase_bounds

    layer = ConvLayer(np.random.default_rng(0).standard_normal((12, 2, 3, 3)), stride=2,
                      padding=1, padding_mode="circular")
    op = layer.at((2, 8, 8))
    cert = certify_conv(op)
    assert "lower_reason" not in cert.details       # uniform coverage: a proof, no caveat
    assert polyphase_bounds(op).note == cert.method
    inconclusive = layer.at((2, 7, 7))
    cert = certify_conv(inconclusive, single_tile_limit=4)
    assert polyphase_bounds(inconclusive, single_tile_limit=4).note == (
        f"{cert.method}; {cert.details['lower_reason']}")


def test_iterative_estimate_decides_injectivity_and_condition():
    layer = ConvLayer(np.random.default_rng(9).standard_normal((4, 1, 3, 3)), padding=1)
    lo, hi, _ = _oracle(layer, (1, 6, 6))
    fb = frame_bounds(layer, (1, 6, 6), "iterative", tol=1e-12)
    assert fb.method == "iterative" and not fb.exact
    assert 0 < fb.rtol < 1e-5 and fb.injective
    assert abs(fb.cond - np.sqrt(hi / lo)) <= 1e-6 * np.sqrt(hi / lo)


def test_shift_invert_reports_its_ritz_residual():
    """An estimate with a residual: nonzero (a computed Ritz pair is not exact) and of the
    order of the eigensolver's tolerance; both values agree with numpy's SVD within it."""
    import scipy.sparse

    from theory.frames import shift_invert_bounds
    from theory.testing import reference_matrix

    layer = ConvLayer(np.random.default_rng(0).standard_normal((4, 1, 3, 3)), padding=1)
    a = reference_matrix(layer, (1, 6, 6))
    lo, hi, slack = _oracle(layer, (1, 6, 6))
    fb = shift_invert_bounds(scipy.sparse.csr_matrix(a))
    assert not fb.exact and 0 < fb.residual <= 1e-8 * hi
    assert abs(fb.lower - lo) <= fb.residual + slack and abs(fb.upper - hi) <= fb.residual + slack


def test_shift_invert_bounds_on_two_unknowns():
    """The smallest Gram matrix ARPACK takes (one eigenvalue of a 2 x 2, k < D): both
    extreme eigenvalues match numpy's SVD."""
    import scipy.sparse

    from theory.frames import shift_invert_bounds

    a = np.random.default_rng(10).standard_normal((5, 2))
    s = np.linalg.svd(a, compute_uv=False)
    fb = shift_invert_bounds(scipy.sparse.csr_matrix(a))
    tol = 1e-10 * s[0] ** 2
    assert abs(fb.lower - s[-1] ** 2) <= tol and abs(fb.upper - s[0] ** 2) <= tol


def test_shift_invert_that_does_not_converge_is_not_reported_as_singular(monkeypatch):
    """ARPACK's no-convergence error is a RuntimeError, like the exactly singular LU; only the
    latter means a = 0. A solve that did not converge must raise, not report lower = 0."""
    import scipy.sparse
    from scipy.sparse.linalg import ArpackNoConvergence
    from theory import frames as frames_mod

    real = frames_mod.eigsh

    def eigsh(*args, **kwargs):
        if kwargs.get("sigma") is not None:
            raise ArpackNoConvergence("planted: no convergence", np.zeros(0), np.zeros((0, 0)))
        return real(*args, **kwargs)

    monkeypatch.setattr(frames_mod, "eigsh", eigsh)
    a = ConvLayer(np.random.default_rng(0).standard_normal((4, 1, 3, 3)), padding=1).dense((1, 6, 6))
    with pytest.raises(RuntimeError, match="did not converge"):
        frames_mod.shift_invert_bounds(scipy.sparse.csr_matrix(a))


# Killers of the mutants that survived the seed-2 mutation sample (docs/dev/mutation.md).
def test_certified_fft_bounds_keep_the_certificate_details():
    """The certified `fft` bounds carry the record of how the symbol certificate proved them
    (the same details `theory.certified.certify_conv` returns), not an empty record."""
    from theory.certified import certify_conv

    layer = ConvLayer(np.random.default_rng(11).standard_normal((4, 2, 3, 3)), padding=1,
                      padding_mode="circular")
    op = layer.at((2, 6, 6))
    fb = frame_bounds(op, method="fft")
    cert = certify_conv(op)
    assert fb.certified and fb.method == "fft"
    assert fb.details is not None
    timing = {"seconds"}                            # wall-clock times differ between runs
    assert ({k: v for k, v in fb.details.items() if k not in timing}
            == {k: v for k, v in cert.details.items() if k not in timing})


def test_certified_dense_note_names_the_cholesky_proof():
    layer = ConvLayer(np.random.default_rng(5).standard_normal((4, 2, 3, 3)), padding=1)
    fb = frame_bounds(layer, (2, 5, 5), "dense")
    assert fb.certified and fb.note == "svd, certified (Cholesky proof on A^T A)"


def test_an_operator_without_rows_has_frame_bounds_zero_and_is_not_injective():
    """A max-pooled ReLU selection with no positive value selects no rows: the 0 x D matrix
    maps every x to 0, so a = b = 0 (exactly), not injective, condition number inf."""
    from theory import selection

    layer = ConvLayer(np.ones((2, 1, 3, 3)), padding=1)
    shape = (1, 6, 6)
    k, ho, wo = layer.output_shape(shape)
    hp, wp = ho // 2, wo // 2
    s = np.broadcast_to(2 * np.arange(hp)[:, None] * wo + 2 * np.arange(wp)[None, :],
                        (k, hp, wp)).astype(np.int64)
    sel = selection(np.zeros((k, hp, wp)), s, layer, shape, activation="relu")
    assert sel.shape == (0, 36)
    fb = frame_bounds(sel)
    assert (fb.lower, fb.upper, fb.exact) == (0.0, 0.0, True)
    assert fb.sigma_min == 0.0 and not fb.injective and fb.cond == float("inf")


def test_bounds_that_overflow_when_scaled_back_are_inf_without_a_warning():
    """Weights at 2^600: b ~ 2^1200 is not a float64, so the scaled-back bounds are inf (the
    truth, documented), silently; injectivity and cond come from the unit-scale bounds, which
    match numpy's SVD of the layer at unit scale."""
    import warnings

    w = np.random.default_rng(0).standard_normal((4, 2, 3, 3))
    lo, hi, slack = _oracle(ConvLayer(w, padding=1), (2, 5, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fb = frame_bounds(ConvLayer(np.ldexp(w, 600), padding=1), (2, 5, 5), "dense")
    assert fb.upper == float("inf") and fb.lower == float("inf")
    assert fb.injective and abs(fb.cond - np.sqrt(hi / lo)) <= 1e-8 * np.sqrt(hi / lo)


def _singular_square_layer():
    """K = C = 4 (no tile has more rows than unknowns) with two equal filters: A is singular."""
    w = np.random.default_rng(0).standard_normal((4, 4, 3, 3)) / 3
    w[1] = w[0]
    return ConvLayer(w, padding=1)


def test_auto_on_an_inconclusive_band_returns_its_estimate_with_the_certified_upper_bound():
    """D = 1088 > AUTO_DENSE_LIMIT, a singular square layer: the tiles prove only [0, b], the
    whole-image band is factorised but proves nothing; `auto` returns the band's estimate
    of a (about 0: a = 0 exactly, since two equal filters give rank A <= 3 H W < D) with the
    tiles' certified upper bound (above b from LAPACK's eigh of the definition's Gram)."""
    import scipy.linalg

    from theory.conv import AUTO_DENSE_LIMIT
    from theory.testing import reference_matrix

    layer, shape = _singular_square_layer(), (4, 16, 17)
    d = 4 * 16 * 17
    assert d > AUTO_DENSE_LIMIT
    a = reference_matrix(layer, shape)
    hi = float(scipy.linalg.eigh(a.T @ a, eigvals_only=True, subset_by_index=[d - 1, d - 1])[0])
    slack = 4 * d * EPS * hi        # Gram eigenvalues: absolute rounding ~ D eps b
    fb = frame_bounds(layer, shape, single_tile_limit=0)
    band = fb.details["band"]                       # the tiles certificate's record
    assert fb.method == "shift-invert" and not fb.exact and not fb.certified
    assert fb.lower == max(band["estimate"], 0.0) and fb.lower <= 1e-8 * hi
    assert hi <= fb.upper + slack
    assert fb.rtol == np.sqrt(d * EPS) and fb.residual == band["residual"]
    assert not fb.injective and fb.cond == float("inf")


def test_auto_lanczos_fallback_obeys_maxiter(monkeypatch):
    """Without the band (over its memory limit), an inconclusive tiles certificate makes
    `auto` run Lanczos on the Gram operator; `maxiter` is documented to reach `eigsh` there,
    so one iteration is ARPACK's no-convergence error, not an unbounded solve."""
    from scipy.sparse.linalg import ArpackNoConvergence
    from theory import band_gram

    w = 0.1 * np.random.default_rng(0).standard_normal((4, 4, 3, 3))
    w[:, :, 1, 1] += np.eye(4)                      # square and well conditioned
    layer, shape = ConvLayer(w, padding=1), (4, 16, 17)
    monkeypatch.setattr(band_gram, "BAND_LIMIT_BYTES", 0)
    with pytest.raises(ArpackNoConvergence):
        frame_bounds(layer, shape, single_tile_limit=0, maxiter=1)


def test_lanczos_no_convergence_names_the_default_gram_operator(monkeypatch):
    from scipy.sparse.linalg import ArpackNoConvergence, aslinearoperator
    from theory import frames as frames_mod

    real = frames_mod.eigsh

    def eigsh(*args, **kwargs):
        if kwargs.get("which") == "SA":
            raise ArpackNoConvergence("planted: no convergence", np.zeros(0), np.zeros((0, 0)))
        return real(*args, **kwargs)

    monkeypatch.setattr(frames_mod, "eigsh", eigsh)
    a = np.random.default_rng(12).standard_normal((30, 10))
    with pytest.raises(RuntimeError, match=r"smallest eigenvalue of A\^T A did not converge"):
        frames_mod.lanczos_bounds(aslinearoperator(a.T @ a), 30)


# Killers of the mutants that survived the seed-3 mutation sample (docs/dev/mutation.md).
def test_dense_bounds_the_cholesky_proof_cannot_reach_are_the_uncertified_svd():
    """A = 2^511 diag(1, 1, 1, 1, 1, 1/2): sigma^2 = 2^1022 and 2^1020 (closed form, a
    diagonal matrix), finite, but the entries of A^T A sum to 5.25 * 2^1022 > 2^1024, past
    binary64, so no Cholesky proof can be carried out. The SVD values are still returned,
    exact to rounding, not certified, with no margin and the reason in the note."""
    import warnings

    from theory.frames import certified_dense_bounds

    a = np.ldexp(np.diag([1.0, 1.0, 1.0, 1.0, 1.0, 0.5]), 511)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fb = certified_dense_bounds(a)
    tol = 4 * 6 * EPS                                   # the SVD's relative rounding of sigma^2
    assert fb.lower == pytest.approx(2.0 ** 1020, rel=tol, abs=0)
    assert fb.upper == pytest.approx(2.0 ** 1022, rel=tol, abs=0)
    assert fb.exact and fb.method == "dense" and not fb.certified and fb.margin == 0.0
    assert fb.note == "svd (the Cholesky proof of the upper bound failed)"
    assert fb.injective and fb.cond == pytest.approx(2.0, rel=tol, abs=0)


def test_auto_lanczos_fallback_uses_the_requested_tolerance_and_says_why(monkeypatch):
    """As in the maxiter test: the band is over its memory limit and the tiles prove only
    [0, b], so `auto` runs Lanczos on A^T A. A loose `tol=1e-2` must reach `eigsh` (the
    resolution `rtol = sqrt(tol)` says so; the default 1e-10 would give 1e-5), the note
    must say that the estimate stands in for the tiles certificate and what that proved,
    and both ends must lie within their
    Ritz residual of the extreme eigenvalues of the definition's Gram matrix (LAPACK;
    absolute rounding ~ D eps b, with a factor 4)."""
    import scipy.linalg

    from theory import band_gram
    from theory.testing import reference_matrix

    w = 0.1 * np.random.default_rng(0).standard_normal((4, 4, 3, 3))
    w[:, :, 1, 1] += np.eye(4)                      # square and well conditioned
    layer, shape = ConvLayer(w, padding=1), (4, 16, 17)
    d = 4 * 16 * 17
    monkeypatch.setattr(band_gram, "BAND_LIMIT_BYTES", 0)
    tiles = frame_bounds(layer, shape, "tiles", single_tile_limit=0)
    assert tiles.lower == 0.0 and not tiles.details["conclusive"]
    fb = frame_bounds(layer, shape, single_tile_limit=0, tol=1e-2)
    assert fb.method == "iterative" and not fb.exact and not fb.certified
    assert fb.rtol == np.sqrt(1e-2)
    assert fb.note.startswith("iterative estimate: the tiles certificate proved only ")
    assert f"[0, {tiles.upper:.6g}]" in fb.note and f"({tiles.note})" in fb.note
    # the oracle: A^T A of the definition's matrix, pixels in (y, x, c) order, where it is
    # banded (bandwidth ((k - 1) W + k - 1) C + C - 1 = 147): LAPACK's banded eigensolver
    a = reference_matrix(layer, shape)
    perm = np.arange(d).reshape(shape).transpose(1, 2, 0).ravel()
    g = a[:, perm].T @ a[:, perm]
    beta = 147
    rows, cols = np.nonzero(g)
    assert np.max(np.abs(rows - cols)) == beta
    band = np.zeros((beta + 1, d))
    for k in range(beta + 1):
        band[k, :d - k] = np.diagonal(g, -k)
    lo, hi = (float(scipy.linalg.eig_banded(band, lower=True, eigvals_only=True, select="i",
                                            select_range=(i, i))[0]) for i in (0, d - 1))
    slack = fb.residual + 4 * d * EPS * hi
    assert abs(fb.lower - lo) <= slack and abs(fb.upper - hi) <= slack
    assert fb.injective


# Killers of the mutants that survived the seed-4 mutation sample (docs/dev/mutation.md).
def test_certified_polyphase_and_tile_bounds_have_no_ritz_residual():
    """`residual` is the Ritz residual of an estimate and 0 for the exact methods: a
    certificate (polyphase, tiles) is no eigensolver output, so it reports 0, in the
    bounds and in their JSON dict, and its bounds hold against the dense SVD oracle."""
    from theory.frames import polyphase_bounds, tile_bounds

    rng = np.random.default_rng(0)
    for layer, shape, bound in (
            (ConvLayer(rng.standard_normal((12, 2, 3, 3)), stride=2, padding=1,
                       padding_mode="circular"), (2, 8, 8), polyphase_bounds),
            (ConvLayer(rng.standard_normal((16, 2, 3, 3)), stride=2, padding=1),
             (2, 8, 8), tile_bounds)):
        fb = bound(layer.at(shape))
        lo, hi, slack = _oracle(layer, shape)
        assert fb.certified and fb.lower > 0
        assert fb.lower <= lo + slack and hi - slack <= fb.upper
        assert fb.residual == 0.0 and fb.as_dict()["residual"] == 0.0


def _seed4_selection():
    """A zero-padded max-pooled CReLU selection, 90 x 64 (D = 64 >= LANCZOS_MIN_DIM)."""
    from theory.pooling import crelu_maxpool, selection

    rng = np.random.default_rng(3)
    layer = ConvLayer(rng.standard_normal((4, 1, 3, 3)), padding=1)
    x = rng.random((1, 8, 8))
    f, s = crelu_maxpool(x, layer, 2)
    sel = selection(f, s, layer, x.shape)
    assert sel.shape == (90, 64)
    sv = np.linalg.svd(sel.sparse().toarray(), compute_uv=False)
    return sel, float(sv[-1]) ** 2, float(sv[0]) ** 2, 4 * 90 * EPS * float(sv[0]) ** 2


def test_banded_bounds_are_labelled_banded():
    """`method="banded"` returns exact bounds named by their method (the `method` field and
    the JSON dict), equal to the dense SVD's within the Gram route's rounding D eps b."""
    sel, lo, hi, slack = _seed4_selection()
    fb = frame_bounds(sel, method="banded")
    assert fb.method == "banded" and fb.as_dict()["method"] == "banded" and fb.exact
    tol = slack + 4 * 64 * EPS * hi
    assert abs(fb.lower - lo) <= tol and abs(fb.upper - hi) <= tol


def test_shift_invert_through_frame_bounds_obeys_tol():
    """`tol` reaches the shift-invert eigensolver: tol=0 (ARPACK: machine precision) gives a
    Ritz residual of rounding size, tol=0.1 a looser one; both estimates lie within their
    residual of the dense SVD's extreme eigenvalues."""
    sel, lo, hi, slack = _seed4_selection()
    tight = frame_bounds(sel, method="shift-invert", tol=0.0)
    loose = frame_bounds(sel, method="shift-invert", tol=0.1)
    for fb in (tight, loose):
        assert fb.method == "shift-invert" and not fb.exact
        assert abs(fb.lower - lo) <= fb.residual + slack
        assert abs(fb.upper - hi) <= fb.residual + slack
    assert tight.residual <= 1e-12 * hi < loose.residual


def test_shift_invert_bounds_are_reproducible_bit_for_bit():
    """Same matrix, same bounds and residual, bit for bit: both Lanczos runs start from a
    seeded vector, not from an unseeded random one (eigsh's default)."""
    from theory.frames import shift_invert_bounds

    sel, *_ = _seed4_selection()
    runs = [shift_invert_bounds(sel.sparse()) for _ in range(3)]
    assert len({(fb.lower, fb.upper, fb.residual) for fb in runs}) == 1


def test_svd_below_the_gram_resolution_is_returned_uncertified_saying_why():
    """diag(1, 1e-9): sigma_min/sigma_max = 1e-9 is below sqrt(n u) ~ 1e-8, where a Gram
    matrix cannot resolve it, yet above the SVD's rank threshold: the exact SVD values
    (closed form 1e-18 and 1) come back uncertified, without a margin, and the note says
    why."""
    from theory.frames import certified_dense_bounds

    fb = certified_dense_bounds(np.diag([1.0, 1e-9]))
    assert fb.injective and not fb.certified and fb.margin == 0.0
    assert fb.lower == pytest.approx(1e-18, rel=4 * EPS, abs=0) and fb.upper == 1.0
    assert fb.note == ("svd; not certified: sigma_min/sigma_max is below the resolution "
                       "sqrt(n u) of a Gram certificate")
    assert fb.as_dict()["note"] == fb.note
