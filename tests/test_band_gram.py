"""The whole-image banded certificate (`theory.band_gram`) against the dense SVD oracle.

Layers with as many outputs as inputs per coarse pixel (``K = C s_h s_w``) have no injective
local tile, so only the whole image can certify them; the oracle is the SVD of the matrix built
from the definition (`theory.testing.reference_matrix`). Planted bugs: an estimate that is too
high must be refused by the Cholesky proof, and a proof that accepts everything must be caught
by the claim's oracle comparison.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import ConvLayer, frame_bounds
from theory import band_gram
from theory.polyphase import coarse_form
from theory.testing import reference_matrix
from theory.tiles import TileCertifier
from verify.claims import certified as certified_claims
from verify.claims.base import Context

EPS = float(np.finfo(np.float64).eps)


def truth(layer, shape):
    a = reference_matrix(layer, shape)
    s = np.linalg.svd(a, compute_uv=False)
    return float(s[-1]) ** 2, float(s[0]) ** 2, 4 * max(a.shape) * EPS * float(s[0]) ** 2


def whole(layer, shape):
    op = layer.at(shape)
    return band_gram.certify_whole_band(TileCertifier(coarse_form(op)), op)


@st.composite
def square_layers(draw):
    """Zero-padded layers with K = C s^2 filters (square coarse kernel), D <= 400."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    c = draw(st.integers(1, 3))
    s = draw(st.integers(1, 2))
    k = draw(st.integers(2, 4))
    d = draw(st.integers(1, 2))
    p = draw(st.integers(0, 2))
    extra = draw(st.integers(0, 1))
    low = max(4, s * 3, d * (k - 1) + 1 - 2 * p)          # the dilated kernel fits
    h = draw(st.integers(low, 12))
    w = draw(st.integers(low, 12))
    layer = ConvLayer(rng.standard_normal((c * s * s + extra, c, k, k)) / k, stride=s, padding=p,
                      dilation=d)
    return layer, (c, h, w)


@settings(max_examples=40, deadline=None)
@given(square_layers())
def test_certified_lower_bound_contains_the_truth(case):
    layer, shape = case
    if int(np.prod(layer.output_shape(shape))) < int(np.prod(shape)):
        return                                   # fewer outputs than inputs: a = 0, no proof
    res = whole(layer, shape)
    a, b, slack = truth(layer, shape)
    assert res.lower <= a + slack                # never above the truth
    if res.reason == "verified":
        assert res.lower >= 0.5 * a - slack      # the tightness target of the certificate
    if a > 1e-6 * b:                             # a well-resolved smallest eigenvalue
        assert abs(res.estimate - a) <= 1e-6 * a + slack
        assert res.residual <= 1e-6 * b


def test_square_layers_are_certified_where_tiles_cannot_be():
    rng = np.random.default_rng(3)
    layer = ConvLayer(rng.standard_normal((8, 2, 4, 4)) / 4, stride=2, padding=1)   # K = C s^2
    shape = (2, 16, 16)
    a, b, slack = truth(layer, shape)
    tiles_only = frame_bounds(layer, shape, "tiles", single_tile_limit=0, tile_limit=10 ** 6)
    assert tiles_only.certified and "band" in tiles_only.note
    assert 0.5 * a <= tiles_only.lower <= a + slack and b <= tiles_only.upper + slack


def test_an_inflated_estimate_is_refused_by_the_proof(monkeypatch):
    """Planted bug: the estimate is 3 a. Every t tried is above a: the proof must fail."""
    rng = np.random.default_rng(1)
    layer = ConvLayer(rng.standard_normal((4, 4, 3, 3)) / 3, padding=1)
    shape = (4, 10, 10)
    honest = whole(layer, shape)
    assert honest.reason == "verified"
    real = band_gram.band_min_eigenpair
    monkeypatch.setattr(band_gram, "band_min_eigenpair",
                        lambda ab, dv: (3 * real(ab, dv)[0], real(ab, dv)[1]))
    bad = whole(layer, shape)
    assert bad.lower == 0.0 and "failed" in bad.reason


def test_a_proof_that_accepts_everything_is_caught_by_the_claim(monkeypatch, tmp_path):
    """Planted bug: Cholesky proofs always succeed and the estimate is 3 a. The certified
    lower bound then exceeds the oracle's a, and `certified-bounds-zeros` must not pass."""
    real = band_gram.band_min_eigenpair
    monkeypatch.setattr(band_gram, "band_min_eigenpair",
                        lambda ab, dv: (3 * real(ab, dv)[0], real(ab, dv)[1]))
    monkeypatch.setattr(band_gram, "certify_lower_band", lambda ab, t: True)
    out = certified_claims.check_zeros(Context(profile="quick", seed=0, out_dir=tmp_path))
    band_rows = [r for r in out.measured["cases"] if "band" in r["bounds"]]
    assert band_rows and not any(r["contains_truth"] for r in band_rows)
    assert out.status == "fail"


def test_the_claim_passes_its_band_cases(tmp_path):
    out = certified_claims.check_zeros(Context(profile="quick", seed=0, out_dir=tmp_path))
    band_rows = [r for r in out.measured["cases"] if "band" in r["bounds"]]
    assert band_rows and all(r["pass"] for r in band_rows)


def test_auto_returns_the_labelled_estimate_for_a_singular_square_layer():
    """Two identical filters in a square layer: A is singular. No proof is possible; `auto`
    reports the shift-invert estimate (about 0), not certified, with its residual."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 4, 3, 3)) / 3
    w[1] = w[0]
    layer = ConvLayer(w, padding=1)
    shape = (4, 20, 20)
    fb = frame_bounds(layer, shape, single_tile_limit=0)
    a, b, slack = truth(layer, shape)
    assert a <= slack                             # the oracle agrees: singular
    assert fb.method == "shift-invert" and not fb.certified and not fb.exact
    assert "not certified" in fb.note and fb.lower <= 1e-8 * b and not fb.injective
    assert b <= fb.upper + slack                  # the upper bound is still the certified one


def test_a_zero_column_is_reported_as_such():
    w = np.zeros((4, 4, 1, 1))
    w[:, :3, 0, 0] = np.random.default_rng(0).standard_normal((4, 3))   # channel 3 unread
    res = whole(ConvLayer(w), (4, 6, 6))
    assert res.lower == 0.0 and "zero column" in res.reason


def test_band_size_matches_the_assembled_band():
    layer = ConvLayer(np.random.default_rng(0).standard_normal((6, 3, 3, 5)), stride=(1, 2),
                      padding=(1, 2), dilation=(2, 1))
    tc = TileCertifier(coarse_form(layer.at((3, 11, 12))))
    n, beta = band_gram.band_size(tc)
    ab, _, _ = tc.local_band(0, np.ones(tc.cf.h.n_out), 0, np.ones(tc.cf.w.n_out))
    assert ab.shape == (beta + 1, n)


@pytest.mark.parametrize("limit_bytes, limit_flops, expected", [
    (band_gram.BAND_LIMIT_BYTES, band_gram.BAND_FLOP_LIMIT, True),
    (1000, band_gram.BAND_FLOP_LIMIT, False),
    (band_gram.BAND_LIMIT_BYTES, 1000, False),
])
def test_affordability_limits(limit_bytes, limit_flops, expected):
    layer = ConvLayer(np.ones((4, 4, 3, 3)), padding=1)
    tc = TileCertifier(coarse_form(layer.at((4, 16, 16))))
    assert band_gram.band_affordable(tc, limit_bytes, limit_flops) is expected


def test_the_band_is_not_cut_short_by_the_inspect_budget():
    """`crelu inspect` puts Lanczos under a time budget through `gram_operator`; the band
    route has bounded cost and must not lose its result to it (its residual is one conv and
    one adjoint, through `linear_operator`). A budget that is already spent still gets the
    band's estimate, not 'budget exceeded'."""
    from verify.inspect import layer_bounds

    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 4, 3, 3)) / 3
    w[1] = w[0]                                   # singular: no proof, only the estimate
    op = ConvLayer(w, padding=1).at((4, 32, 32))   # above the single dense tile's limit
    fb, upper_only, why = layer_bounds(op, "auto", 1e-10, 1e-9)
    assert fb is not None and upper_only is None and why is None
    assert fb.method == "shift-invert" and np.isfinite(fb.residual)


def test_the_estimate_finds_the_smallest_eigenvalue_where_a_constant_start_did_not():
    """The case the hypothesis property found in CI (its weights, to 8 digits): with a constant
    Lanczos start vector the estimate was another eigenvalue of A^T A (residual 6e-16, 4.6e-4
    above a); a seeded random start finds the smallest."""
    layer = ConvLayer(np.array([[[[0.06286511, -0.06605243], [0.32021133, 0.05245006]]],
                                [[[-0.26783469, 0.18079753], [0.65200002, 0.47354048]]]]),
                      padding=1)
    shape = (1, 6, 10)
    res = whole(layer, shape)
    a, b, slack = truth(layer, shape)
    assert abs(res.estimate - a) <= 1e-6 * a + slack


def test_a_proof_that_runs_out_of_positive_shifts_says_so(monkeypatch):
    """Every Cholesky proof fails and the shift ladder reaches t <= 0: lower 0, with a reason."""
    rng = np.random.default_rng(1)
    layer = ConvLayer(rng.standard_normal((4, 4, 3, 3)) / 3, padding=1)
    monkeypatch.setattr(band_gram, "certify_lower_band", lambda ab, t: False)
    monkeypatch.setattr(band_gram, "TRIES", ((1e-5, 1.1), (2.0, 8.0)))   # the last t is < 0
    res = whole(layer, (4, 10, 10))
    assert res.lower == 0.0 and "failed at every positive t" in res.reason


# Killers of the mutants that survived the seed-3 mutation sample (docs/dev/mutation.md).
def _one_by_one():
    """A 1 x 1 conv without padding is A = I_(H W) (x) W: sigma(A) = sigma(W), every pixel read
    by exactly one tap (so D = 1 and diag(A^T A) = the column norms of W, exactly, for
    integer W). W is circulant: the eigenvalues of W^T W are |2 + w^k|^2, w = e^(2 pi i / 3),
    so a = 3 (k = 1, 2) and b = 9 (k = 0)."""
    W = np.array([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 2.0]])
    return W, ConvLayer(W.reshape(3, 3, 1, 1)), (3, 4, 5)


def test_a_verified_whole_band_bound_is_corollary_b_at_the_first_shift():
    """docs/theory/frame-bounds.md, Corollary B: a completed Cholesky at
    t = min(a^(1 - delta), a^ - kappa f), (delta, kappa) = (1e-5, 1.1) first, with
    f = gamma'_(beta+2) n max g_ii + eps_G, proves a >= t min D (1 - gamma_2)(1 - 4u); the
    floor is the same shift with min g_ii. Recomputed from the reported estimate, exactly
    (the same float operations), and below the closed-form a = 3 (sigma_min(W)^2)."""
    from theory.rigour import U, gamma, gamma_prime

    W, layer, shape = _one_by_one()
    res = whole(layer, shape)
    a = float(np.linalg.svd(W, compute_uv=False)[-1]) ** 2
    assert a == pytest.approx(3.0, rel=1e-15, abs=0)
    assert res.reason == "verified" and res.n == 3 * 4 * 5
    col = (W ** 2).sum(axis=0)                        # diag(A^T A) per channel: 5, 5, 5
    f = gamma_prime(res.beta + 2) * res.n * float(col.max()) + res.eps_G
    assert res.floor == gamma_prime(res.beta + 2) * res.n * float(col.min()) + res.eps_G
    assert abs(res.estimate - a) <= 1e-8 * a          # the estimate's tolerance
    t = min(res.estimate * (1 - 1e-5), res.estimate - 1.1 * f)
    assert res.lower == t * (1.0 * (1 - gamma(2))) * (1 - 4 * U)
    assert 0.9999 * a <= res.lower <= a


def test_the_whole_band_result_is_reproducible():
    """Same layer, same result, bit for bit: the Lanczos start vector is seeded, not drawn
    from ARPACK's generator (whose state moves on from call to call)."""
    rng = np.random.default_rng(1)
    layer = ConvLayer(rng.standard_normal((4, 4, 3, 3)) / 3, padding=1)
    shape = (4, 10, 10)                               # n = 400 > 16: the Lanczos path
    first, second = whole(layer, shape), whole(layer, shape)
    assert first.reason == "verified"
    assert (first.lower, first.estimate, first.residual) == (
        second.lower, second.estimate, second.residual)


def test_a_gram_matrix_that_overflows_proves_nothing_and_does_not_crash():
    """Weights at 2^600 (frame_bounds would normalise them first; certify_whole_band does
    not): every entry of A^T A overflows, D = inf / inf is no number, no pixel is left to
    factorise. The result must be lower = 0 with a reason, never a certificate."""
    W, _, shape = _one_by_one()
    layer = ConvLayer(np.ldexp(W, 600).reshape(3, 3, 1, 1))
    with np.errstate(over="ignore", invalid="ignore"):
        res = whole(layer, shape)
    assert res.lower == 0.0 and res.reason.startswith("no positive bound provable")
    assert "overflows binary64" in res.reason and "scale the layer" in res.reason


def test_the_whole_band_timings_are_per_phase_and_add_up():
    """`seconds` (carried into the tiles certificate's `details["band"]`) records each phase,
    assemble, estimate and verify, and the total: non-negative, the phases within the
    total, the total within the wall time of the call."""
    import time

    _, layer, shape = _one_by_one()
    t0 = time.perf_counter()
    res = whole(layer, shape)
    wall = time.perf_counter() - t0
    secs = res.seconds
    assert set(secs) == {"assemble", "estimate", "verify", "total"}
    assert all(v >= 0 for v in secs.values())
    assert secs["assemble"] + secs["estimate"] + secs["verify"] <= secs["total"] <= wall


# Killers of the mutants that survived the seed-4 mutation sample (docs/dev/mutation.md).
def test_a_singular_gram_whose_cholesky_breaks_down_reports_the_rounding_floor():
    """K = C = 2, 1 x 1 taps: filter 0 is (1, 1), filter 1 is zero, so A = I (x) [[1, 1],
    [0, 0]] and A^T A = I (x) [[1, 1], [1, 1]], exactly singular (a = 0, the dense SVD) and
    stored exactly, with every diagonal entry 1: the banded Cholesky meets the pivot
    1 - 1 * 1 = 0 and breaks down. Then some eigenvalue lies within about
    gamma'_(beta+2) n max g_ii + eps_G of 0 (Demmel); with a constant diagonal that is the
    floor itself (min g_ii = max g_ii), and it is the residual and the number the reason
    quotes. Nothing is certified."""
    W = np.array([[1.0, 1.0], [0.0, 0.0]])
    layer, shape = ConvLayer(W.reshape(2, 2, 1, 1)), (2, 3, 4)
    s = np.linalg.svd(reference_matrix(layer, shape), compute_uv=False)
    assert s[-1] == 0.0                                # the oracle: singular
    res = whole(layer, shape)
    assert res.lower == 0.0 and res.estimate == 0.0
    assert res.reason.startswith("the banded Cholesky of A^T A broke down")
    assert res.eps_G > 0 and res.floor > res.eps_G
    assert res.residual == res.floor
    assert f"within about {res.floor:.3e} of 0" in res.reason


def test_the_bandwidth_of_a_one_by_one_conv_is_that_of_its_channel_blocks():
    """A 1 x 1 conv is A = I (x) W, so A^T A = I (x) W^T W: 3 x 3 blocks on the diagonal,
    W^T W = circulant (5, 2, 2) without zeros, so bandwidth 2 exactly, one row per input
    value (n = 3 * 4 * 5, no padding ring), and no more than the footprint's `band_size`.
    The floor is Lemma C's shift at that bandwidth, with min g_ii = 5."""
    from theory.rigour import gamma_prime

    W, layer, shape = _one_by_one()
    assert np.count_nonzero(W.T @ W) == 9
    op = layer.at(shape)
    n_max, beta_max = band_gram.band_size(TileCertifier(coarse_form(op)))
    res = whole(layer, shape)
    assert (res.n, res.beta) == (60, 2) and res.n <= n_max and res.beta <= beta_max
    assert res.floor == gamma_prime(2 + 2) * 60 * 5.0 + res.eps_G


def test_an_overflowing_gram_matrix_reports_no_estimate_and_no_floor():
    """As in the overflow test above: nothing was factorised, so the refusal carries no
    numbers: lower, estimate, residual and the floor are 0, as for the zero-column refusal,
    not a made-up floor."""
    W, _, shape = _one_by_one()
    layer = ConvLayer(np.ldexp(W, 600).reshape(3, 3, 1, 1))
    with np.errstate(over="ignore", invalid="ignore"):
        res = whole(layer, shape)
    assert "overflows binary64" in res.reason
    assert (res.lower, res.estimate, res.residual, res.floor) == (0.0, 0.0, 0.0, 0.0)


def test_compress_band_copies_the_diagonal_of_the_kept_rows_exactly():
    """Entries are copied, not recomputed: every kept row's diagonal entry comes out as it
    went in, a zero (and its sign) included; a dropped row takes its entries with it."""
    ab = np.array([[-0.0, 2.0, 0.0, 3.0], [1.0, 0.0, 5.0, 0.0]])
    out = band_gram.compress_band(ab, np.array([True, True, False, True]))
    assert out.shape == (2, 3)
    assert np.array_equal(out[0], [-0.0, 2.0, 3.0])
    assert np.array_equal(np.signbit(out[0]), [True, False, False])
    assert np.array_equal(out[1], [1.0, 0.0, 0.0])


# Killers of the mutants that survived the seed-5 mutation sample (docs/dev/mutation.md).
def test_min_eigenpair_at_sixteen_pixels_is_exact_with_a_close_pair():
    """Up to n = 16 pixels the eigenpair comes from the dense factor, exact to rounding even
    when the two smallest eigenvalues are 1e-7 apart (Lanczos at tol 1e-8 would mix their
    vectors). Oracle, closed form: G = diag(d) has the pair (d_0 = 1, +-e_0)."""
    n = 16
    d = np.concatenate([[1.0, 1.0 + 1e-7], np.linspace(2.0, 3.0, n - 2)])
    ab = np.vstack([d, np.zeros(n)])                     # lower band storage, bandwidth 1
    lam, v = band_gram.band_min_eigenpair(ab, np.ones(n))
    assert lam == pytest.approx(1.0, rel=10 * n * EPS, abs=0)
    assert v.shape == (n,)
    assert abs(abs(v[0]) - 1.0) <= 10 * n * EPS
    assert np.abs(v[1:]).max() <= 10 * n * EPS
