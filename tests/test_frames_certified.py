"""Certified frame bounds (polyphase, tiles, certified dense/fft) against the dense SVD oracle.

The oracle is `theory.testing.reference_matrix` (the matrix from the definition of the conv,
numpy index arithmetic, no conv routine) or, for inputs too large for a dense M x D matrix,
`reference_gram`: the same index arithmetic into a sparse matrix, whose Gram matrix is
diagonalised densely. Containment allows only the oracle's own rounding
(`4 max(M, D) eps sigma_max^2`, LAPACK's backward error), never a tolerance on the bound.
Planted bugs (a wrong stride, the boundary term dropped, a partition of unity summing to 2, a
rounding margin that is too small, plain Cholesky without Rump's shift) must break it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg as sl
import scipy.sparse
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from theory import ConvLayer, frame_bounds, invert_crelu, crelu_features
from theory import certified as certified_mod
from theory import band_gram as band_gram_mod, rigour, symbol as symbol_mod, tiles as tiles_mod
from theory.polyphase import coarse_form
from theory.rigour import certify_lower, certify_lower_banded, certify_upper
from theory.symbol import symbol_bounds
from theory.testing import reference_matrix
from theory.tiles import TileCertifier, partition_1d

EPS = float(np.finfo(np.float64).eps)
WEIGHTS = Path(__file__).resolve().parents[1] / "verify" / "weights" / "crelu-fashion-mnist.safetensors"


# ----------------------------------------------------------------------------- oracles
def truth(layer: ConvLayer, shape):
    """(a, b, slack) from the SVD of the reference matrix; slack = the oracle's rounding."""
    a = reference_matrix(layer, shape)
    s = np.linalg.svd(a, compute_uv=False)
    lo = float(s[-1]) ** 2 if a.shape[0] >= a.shape[1] else 0.0
    return lo, float(s[0]) ** 2, 4 * max(a.shape) * EPS * float(s[0]) ** 2


def reference_gram(layer: ConvLayer, shape) -> np.ndarray:
    """A^T A from the definition (sparse index arithmetic as in `reference_matrix`)."""
    w = layer.weight.double().numpy()
    k, c, kh, kw = w.shape
    _, h, wd = shape
    _, ho, wo = layer.output_shape(shape)
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    o, i, j, ci, ta, tb = np.meshgrid(np.arange(k), np.arange(ho), np.arange(wo), np.arange(c),
                                      np.arange(kh), np.arange(kw), indexing="ij")
    r, q = sh * i + dh * ta - ph, sw * j + dw * tb - pw
    if layer.padding_mode == "circular":
        keep = np.ones(r.shape, bool)
        r, q = r % h, q % wd
    else:
        keep = (r >= 0) & (r < h) & (q >= 0) & (q < wd)
    rows = ((o * ho + i) * wo + j)[keep]
    cols = ((ci * h + r) * wd + q)[keep]
    a = scipy.sparse.csr_matrix((w[o[keep], ci[keep], ta[keep], tb[keep]], (rows, cols)),
                                shape=(k * ho * wo, c * h * wd))
    return (a.T @ a).toarray()


def gram_truth(layer, shape):
    lam = np.linalg.eigvalsh(reference_gram(layer, shape))
    m = int(np.prod(layer.output_shape(shape)))
    d = int(np.prod(shape))
    return (max(float(lam[0]), 0.0) if m >= d else 0.0), float(lam[-1]), 4 * d * EPS * lam[-1]


def contains(fb, lo, hi, slack) -> bool:
    return fb.lower <= lo + slack and hi <= fb.upper + slack


# ----------------------------------------------------------------------------- strategies
@st.composite
def layers(draw, modes=("zeros", "circular"), max_d: int = 300):
    """(layer, shape): random kernel, stride 1-3, dilation 1-2, padding 0-3, D <= max_d."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    mode = draw(st.sampled_from(modes))
    c = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    h = draw(st.integers(max(1, d[0] * (kh - 1) + 1 - 2 * p[0], p[0]), 12))
    wd = draw(st.integers(max(1, d[1] * (kw - 1) + 1 - 2 * p[1], p[1]), 12))
    while c * h * wd > max_d:
        h, wd = max(1, h - 1), max(1, wd - 1)
    kind = draw(st.sampled_from(["gauss", "gauss", "sparse", "nearly-equal"]))
    k = draw(st.integers(1, 3 * c * s[0] * s[1] + 2))
    w = rng.standard_normal((k, c, kh, kw)) / math.sqrt(c * kh * kw)
    if kind == "sparse":
        w *= rng.random(w.shape) < 0.4
    elif kind == "nearly-equal" and k > 1:
        w[-1] = 0.999 * w[0] + 1e-3 * w[-1]          # two nearly equal filters: ill-conditioned
    layer = ConvLayer(w, stride=s, padding=p, dilation=d, padding_mode=mode)
    try:
        layer.at((c, h, wd))
    except ValueError:
        assume(False)
    return layer, (c, h, wd)


# ----------------------------------------------------------------------------- containment
@given(layers())
def test_auto_bounds_are_certified_and_contain_the_truth(case):
    layer, shape = case
    fb = frame_bounds(layer, shape)
    lo, hi, slack = truth(layer, shape)
    if fb.certified:
        assert contains(fb, lo, hi, slack), (fb, lo, hi)
    else:   # only a Gram-resolution failure may leave the exact method uncertified
        assert fb.method in ("dense", "fft") and "resolution" in fb.note, fb


@given(layers())
def test_polyphase_and_tiles_contain_the_truth(case):
    layer, shape = case
    method = "polyphase" if layer.padding_mode == "circular" else "tiles"
    fb = frame_bounds(layer, shape, method)
    lo, hi, slack = truth(layer, shape)
    assert fb.certified and fb.method == method
    assert contains(fb, lo, hi, slack), (fb.lower, lo, hi, fb.upper, fb.note)
    if fb.exact:    # exact sub-methods: the interval is the truth up to its rounding margin
        assert fb.upper <= hi * (1 + 1e-6) + 1e-12
        assert fb.lower >= lo - 1e-6 * hi


@given(layers(modes=("zeros",)), st.sampled_from([(1, 1), (2, 1), (2, 2), (3, 2), (4, 4), (5, 4)]),
       st.sampled_from([(1, 1), (2, 2), (4, 2), (4, 4)]))
def test_every_tiling_contains_the_truth(case, period, ramp):
    layer, shape = case
    p2 = lambda n: 1 << (n.bit_length() - 1)          # noqa: E731 (largest power of 2 <= n)
    ramp = (min(ramp[0], p2(period[0])), min(ramp[1], p2(period[1])))
    fb = frame_bounds(layer, shape, "tiles", tiles=(period, ramp), tile_limit=10 ** 6)
    lo, hi, slack = truth(layer, shape)
    assert fb.certified and contains(fb, lo, hi, slack), (fb.lower, lo, fb.details.get("tiles"))


def test_circular_strided_dilated_layers_are_exact():
    rng = np.random.default_rng(5)
    for (k, c, ks, s, p, d, h) in [(16, 2, 3, 2, 1, 1, 12), (40, 3, 5, 2, 2, 1, 10),
                                   (24, 2, 3, 1, 2, 2, 9), (20, 1, 7, 3, 3, 1, 12),
                                   (12, 1, 3, 2, 2, 2, 10)]:
        layer = ConvLayer(rng.standard_normal((k, c, ks, ks)) / math.sqrt(c * ks * ks), stride=s,
                          padding=p, dilation=d, padding_mode="circular")
        fb = frame_bounds(layer, (c, h, h))
        lo, hi, _ = truth(layer, (c, h, h))
        assert fb.method in ("polyphase", "fft") and fb.certified and fb.exact, fb.note
        assert lo - 1e-9 * hi <= fb.lower <= lo and hi <= fb.upper <= hi * (1 + 1e-9)


def test_circular_row_subset_uses_wrapping_tiles():
    """Circular layers whose outputs miss a coarse row (AlexNet-like): tiles fold the torus."""
    rng = np.random.default_rng(7)
    for (k, c, ks, s, p, h) in [(20, 1, 5, 2, 1, 14), (30, 2, 5, 2, 1, 12), (12, 1, 3, 2, 0, 16)]:
        layer = ConvLayer(rng.standard_normal((k, c, ks, ks)) / math.sqrt(c * ks * ks), stride=s,
                          padding=p, padding_mode="circular")
        lo, hi, slack = truth(layer, (c, h, h))
        for tiles in [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((4, 4), (4, 4))]:
            fb = frame_bounds(layer, (c, h, h), "polyphase", tiles=tiles, tile_limit=10 ** 6)
            assert fb.note.startswith("circulant+tiles"), fb.note
            assert fb.certified and contains(fb, lo, hi, slack), (tiles, fb.lower, lo)


def test_non_injective_layers_get_a_proved_zero():
    rng = np.random.default_rng(2)
    layer = ConvLayer(rng.standard_normal((3, 2, 3, 3)), stride=2, padding=1)   # M < D
    fb = frame_bounds(layer, (2, 40, 40))
    assert fb.method == "tiles" and fb.certified and fb.lower == 0.0 and not fb.injective
    w = np.zeros((4, 2, 3, 3))
    w[:, 0] = rng.standard_normal((4, 3, 3))          # channel 1 is never read
    fb = frame_bounds(ConvLayer(w, padding=1), (2, 30, 30), "tiles")
    assert fb.certified and fb.lower == 0.0


def test_bad_method_and_option_requests_are_refused_by_name():
    layer = ConvLayer(np.ones((4, 1, 3, 3)), stride=2, padding=1)
    with pytest.raises(ValueError, match="'tiles' needs zero padding"):
        frame_bounds(ConvLayer(np.ones((4, 1, 3, 3)), padding=1, padding_mode="circular"),
                     (1, 8, 8), "tiles")
    with pytest.raises(ValueError, match="'polyphase' needs circular padding"):
        frame_bounds(layer, (1, 8, 8), "polyphase")
    with pytest.raises(TypeError, match="apply only to the 'polyphase' and 'tiles'"):
        frame_bounds(layer, (1, 8, 8), "dense", tiles=((2, 2), (2, 2)))
    with pytest.raises(ValueError, match="power of two"):
        frame_bounds(layer, (1, 16, 16), "tiles", tiles=((4, 4), (3, 3)))


def test_auto_falls_back_to_the_labelled_estimate_when_no_tile_is_injective(monkeypatch):
    rng = np.random.default_rng(3)
    # K = C s^2: every finite tile is underdetermined (docs: where the tiles fail)
    layer = ConvLayer(rng.standard_normal((4, 1, 3, 3)), stride=2, padding=1)
    shape = (1, 40, 40)
    lo, hi, slack = truth(layer, shape)
    # the whole image as one banded tile (theory.band_gram): a certificate or an estimate,
    # either way the truth is respected
    band = frame_bounds(layer, shape, single_tile_limit=10)
    assert "band" in band.note
    if band.certified:
        assert 0.5 * lo <= band.lower <= lo + slack and hi <= band.upper + slack
    else:
        assert band.method == "shift-invert" and abs(band.lower - lo) <= 1e-6 * hi
    # without the band (too large for its limits): the tiles prove only the upper bound, and
    # auto returns the Lanczos estimate, labelled
    monkeypatch.setattr(band_gram_mod, "BAND_LIMIT_BYTES", 0)
    tiles = frame_bounds(layer, shape, "tiles", single_tile_limit=10)
    assert tiles.certified and tiles.lower == 0.0 and not tiles.details["conclusive"]
    auto = frame_bounds(layer, shape, single_tile_limit=10)
    assert not auto.certified and auto.method == "iterative" and "estimate" in auto.note


def test_invert_crelu_verdict_uses_the_certified_bounds():
    rng = np.random.default_rng(4)
    layer = ConvLayer(rng.standard_normal((24, 2, 3, 3)) / 4, stride=2, padding=1,
                      padding_mode="circular")
    x = rng.random((2, 12, 12))
    res = invert_crelu(crelu_features(x, layer), layer, x.shape)
    assert res.frame_bounds.certified and res.frame_bounds.method == "polyphase"
    assert res.injective and np.linalg.norm(res.x - x) < 1e-9 * np.linalg.norm(x)


# ----------------------------------------------------------------------------- tightness
def _bank(rng, k, c, ks):
    return rng.standard_normal((k, c, ks, ks)) / math.sqrt(c * ks * ks)


def _trained():
    from safetensors.numpy import load_file

    tensors = load_file(str(WEIGHTS))
    return next(v for _, v in sorted(tensors.items()) if v.ndim == 4).astype(np.float64)


SHAPES = {"alexnet": (96, 11, 4, 2), "resnet": (64, 7, 2, 3), "vgg": (64, 3, 1, 1)}


@pytest.mark.parametrize("name", sorted(SHAPES))
@pytest.mark.parametrize("size", [32, pytest.param(35, marks=pytest.mark.slow)])
def test_tightness_random_banks(name, size):
    """lower >= 0.5 a and upper <= 2 b on 3 x size x size, auto and the 224-size tiles."""
    k, ks, s, p = SHAPES[name]
    layer = ConvLayer(_bank(np.random.default_rng(sorted(SHAPES).index(name)), k, 3, ks),
                      stride=s, padding=p)
    shape = (3, size, size)
    lo, hi, slack = gram_truth(layer, shape)
    fb = frame_bounds(layer, shape)
    assert fb.certified and contains(fb, lo, hi, slack)
    assert fb.lower >= 0.5 * lo and fb.upper <= 2 * hi, (fb.lower / lo, fb.upper / hi)
    if name != "alexnet":    # the tile sizes auto uses at 224 (AlexNet: none fits, see docs)
        big = certified_mod._tile_params(None, coarse_form(layer.at((3, 224, 224))),
                                         certified_mod.TILE_LIMIT)
        fb = frame_bounds(layer, shape, "tiles", tiles=big[:2], tile_limit=10 ** 6)
        assert fb.certified and contains(fb, lo, hi, slack)
        assert fb.lower >= 0.5 * lo and fb.upper <= 2 * hi, (fb.lower / lo, fb.upper / hi)


@pytest.mark.parametrize("geometry", [(1, 3), (2, 3), (1, 1)])
def test_tightness_trained_bank(geometry):
    """The shipped trained first layer (16 x 1 x 7 x 7) at its own and other geometries."""
    s, p = geometry
    layer = ConvLayer(_trained(), stride=s, padding=p)
    shape = (1, 32, 32)
    lo, hi, slack = gram_truth(layer, shape)
    fb = frame_bounds(layer, shape)
    assert fb.certified and contains(fb, lo, hi, slack)
    assert fb.lower >= 0.5 * lo and fb.upper <= 2 * hi, (fb.lower / lo, fb.upper / hi)


# ----------------------------------------------------------------------------- planted bugs
def _cases(n=30, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        c, ks, s = int(rng.integers(1, 3)), int(rng.integers(2, 5)), int(rng.integers(2, 4))
        k, h, p = int(c * s * s + rng.integers(1, 6)), int(rng.integers(2 * ks, 12)), int(
            rng.integers(0, ks))
        out.append((ConvLayer(_bank(rng, k, c, ks), stride=s, padding=p), (c, h, h)))
    return out


def test_planted_wrong_stride_breaks_containment():
    failures = 0
    for layer, shape in _cases():
        lo, hi, slack = truth(layer, shape)
        wrong = ConvLayer(layer.weight, stride=1, padding=layer.padding)
        failures += not contains(frame_bounds(wrong, shape, "tiles"), lo, hi, slack)
    assert failures > 0


def test_planted_dropped_boundary_term_breaks_containment():
    """The circulant embedding without its boundary rows: the canvas symbol minimum."""
    failures = 0
    for layer, shape in _cases():
        lo, _, slack = truth(layer, shape)
        cf = coarse_form(layer.at(shape))
        failures += symbol_bounds(cf, cf.h.min_canvas(), cf.w.min_canvas()).lower > lo + slack
    assert failures > 0


def test_planted_partition_not_of_unity_breaks_containment(monkeypatch):
    real = tiles_mod.partition_1d
    monkeypatch.setattr(tiles_mod, "partition_1d",
                        lambda n, P, R: [(s0, 2.0 * w) for s0, w in real(n, P, R)])
    failures = 0
    for layer, shape in _cases(15):
        lo, hi, slack = truth(layer, shape)
        fb = frame_bounds(layer, shape, "tiles", tiles=((2, 2), (2, 2)), tile_limit=10 ** 6)
        failures += not contains(fb, lo, hi, slack)
    assert failures > 0


def test_planted_small_rounding_margin_accepts_a_singular_matrix(monkeypatch):
    """Lemma C's margin shrunk 1e6-fold: the certificate then 'proves' a singular Gram
    positive definite, which the true margin refuses (Rump's control)."""
    found = 0
    for seed in range(200):
        x = _integer_gram(seed)
        try:
            sl.cholesky(x, lower=True)                # the unguarded test accepts it
        except np.linalg.LinAlgError:
            continue
        found += 1
        assert not certify_lower(x, 0.0)
    assert found > 0
    _shrink_margin(monkeypatch)
    assert sum(bool(certify_lower(_integer_gram(s), 0.0)) for s in range(200)) > 0


def _integer_gram(seed: int, n: int = 12):
    """``B^T B`` with ``B`` of integers, ``(n-1) x n``: exact in float, singular."""
    b = np.random.default_rng(seed).integers(-3, 4, size=(n - 1, n)).astype(float)
    return b.T @ b


def _gaussian_integer_gram(seed: int, n: int = 12):
    """``B^H B`` with ``B`` of Gaussian integers, ``(n-1) x n``: exact in float, singular."""
    rng = np.random.default_rng(seed)
    b = rng.integers(-3, 4, size=(n - 1, n)) + 1j * rng.integers(-3, 4, size=(n - 1, n))
    return np.conj(b.T) @ b


def _shrink_margin(monkeypatch, factor: float = 1e-6):
    """The planted bug: Lemma C's (and C_C's) rounding margin shrunk `factor`-fold."""
    real = rigour._margin
    monkeypatch.setattr(rigour, "_margin", lambda *a, **k: real(*a, **k) * factor)


def test_complex_certificate_refuses_singular_hermitian_grams(monkeypatch):
    """Rump's control for Lemma C_C: complex Cholesky (torch, LAPACK zpotrf) runs to
    completion on exactly singular Hermitian integer Grams; the certificate refuses every
    one. With the margin shrunk 1e6-fold (the planted bug) it 'proves' some of them."""
    found = 0
    for seed in range(200):
        x = _gaussian_integer_gram(seed)
        assert np.array_equal(x, np.conj(x.T))
        if int(torch.linalg.cholesky_ex(torch.from_numpy(x))[1]) != 0:
            continue
        found += 1
        assert not certify_lower(x, 0.0)
    assert found > 0
    _shrink_margin(monkeypatch)
    assert sum(bool(certify_lower(_gaussian_integer_gram(s), 0.0)) for s in range(200)) > 0


@given(st.integers(0, 2 ** 32 - 1), st.integers(1, 30))
def test_complex_certificate_proves_below_and_refuses_above(seed, n):
    """Lemma C_C against the dense oracle (`eigvalsh`), both sides, on random Hermitian
    matrices (a batch, with per-matrix shifts)."""
    rng = np.random.default_rng(seed)
    m = n + int(rng.integers(0, 5))
    b = rng.standard_normal((3, m, n)) + 1j * rng.standard_normal((3, m, n))
    x = np.conj(np.swapaxes(b, 1, 2)) @ b
    x = (x + np.conj(np.swapaxes(x, 1, 2))) / 2
    x.imag[:, range(n), range(n)] = 0.0
    lam = np.linalg.eigvalsh(x)
    gap = 1e-6 * lam[:, -1]
    ok = lam[:, 0] > gap
    assert np.array_equal(certify_lower(x, lam[:, 0] - gap) & ok, ok)
    assert not certify_lower(x, lam[:, 0] + gap).any()
    assert certify_upper(x, lam[:, -1] + gap).all()
    assert not certify_upper(x, lam[:, -1] - gap).any()


def test_complex_certificate_needs_exactly_hermitian_input():
    x = _gaussian_integer_gram(0) + 5 * np.eye(12)
    y = x.copy()
    y[0, 1] += 1e-12                                   # no longer Hermitian
    z = x.copy()
    z[2, 2] += 1e-300j                                 # a diagonal that is not real
    for bad in (y, z):
        with pytest.raises(ValueError, match="Hermitian"):
            certify_lower(bad, 0.0)


def test_planted_symbol_margin_breaks_exact_containment(monkeypatch):
    """Dropping the twiddle/Gram error terms and the shift (eps = 0, upper = estimate) in
    the symbol certificate: the proved interval no longer contains a perturbed truth."""
    rng = np.random.default_rng(11)
    layer = ConvLayer(_bank(rng, 8, 2, 3), padding=1, padding_mode="circular")
    shape = (2, 8, 8)
    lo, hi, _ = truth(layer, shape)
    fb = frame_bounds(layer, shape, "polyphase")
    assert fb.lower <= lo and hi <= fb.upper          # strict containment, no slack
    real = symbol_mod.symbol_bounds

    def sloppy(*a, **k):
        sb = real(*a, **k)
        sb.upper, sb.lower = sb.est_upper * (1 - 1e-12), sb.est_lower * (1 + 1e-12)
        return sb

    monkeypatch.setattr(certified_mod, "symbol_bounds", sloppy)
    bad = frame_bounds(layer, shape, "polyphase")
    assert not (bad.lower <= lo and hi <= bad.upper)


# ----------------------------------------------------------------------------- machinery
@given(st.integers(1, 60), st.sampled_from([(1, 1), (2, 1), (2, 2), (4, 2), (4, 4), (8, 4), (5, 4)]))
def test_partition_is_exactly_one(n, pr):
    total = np.zeros(n)
    for start, wts in partition_1d(n, *pr):
        assert (wts > 0).all()
        total[start:start + len(wts)] += wts
    assert np.array_equal(total, np.ones(n))          # exact, not approximate


def test_partition_refuses_bad_ramps():
    with pytest.raises(ValueError, match="power of two"):
        partition_1d(10, 4, 3)
    with pytest.raises(ValueError, match="exceed"):
        partition_1d(10, 2, 4)


@pytest.mark.parametrize("geom", [(1, 1, 3, 1), (2, 3, 7, 1), (1, 2, 3, 2)])
def test_every_placement_equals_its_class_representative(geom):
    s, p, ks, d = geom
    rng = np.random.default_rng(0)
    layer = ConvLayer(_bank(rng, 3 * s * s + 4, 3, ks), stride=s, padding=p, dilation=d)
    cf = coarse_form(layer.at((3, 30, 27)))
    tc = TileCertifier(cf)
    res = tc.certify((4, 4), (2, 2), max_local=10 ** 6)
    reps = {tt.key: tt for tt in res.types}
    n = 0
    for sh, ph in partition_1d(cf.h.n_out, 4, 2):
        _, exh = tc._rows(cf.h, sh, len(ph) + tc.kh - 1)
        for sw, pw in partition_1d(cf.w.n_out, 4, 2):
            _, exw = tc._rows(cf.w, sw, len(pw) + tc.kw - 1)
            ab, _, _ = tc.local_band(sh, ph, sw, pw)
            assert np.array_equal(ab, reps[(ph.tobytes(), exh.tobytes(), pw.tobytes(),
                                            exw.tobytes())].ab)
            n += 1
    assert n == res.n_tiles and len(res.types) < n


@given(layers(modes=("zeros", "circular"), max_d=200))
def test_coarse_form_reproduces_the_reference_matrix(case):
    layer, shape = case
    op = layer.at(shape)
    cf = coarse_form(op)
    eye = np.eye(op.d).reshape(op.d, *shape)
    a = cf.apply(cf.to_coarse(eye)).reshape(op.d, -1).T
    assert np.allclose(a, reference_matrix(layer, shape), rtol=0, atol=1e-12)
    assert np.array_equal(cf.from_coarse(cf.to_coarse(eye)), eye)


@given(st.integers(0, 2 ** 32 - 1), st.integers(2, 50))
def test_cholesky_certificate_proves_below_and_refuses_above(seed, n):
    rng = np.random.default_rng(seed)
    b = rng.standard_normal((n, n + int(rng.integers(0, 5))))
    x = b @ b.T
    x = (x + x.T) / 2
    lam = np.linalg.eigvalsh(x)
    gap = 1e-6 * lam[-1]
    if lam[0] > gap:
        assert certify_lower(x, lam[0] - gap)
    assert not certify_lower(x, lam[0] + gap)
    assert certify_upper(x, lam[-1] + gap) and not certify_upper(x, lam[-1] - gap)
    beta = int(rng.integers(1, 4))
    xb = np.triu(np.tril(x, beta), -beta)
    lamb = np.linalg.eigvalsh(xb)
    if lamb[0] > gap:
        assert certify_lower_banded(xb, lamb[0] - gap, beta)
    assert not certify_lower_banded(xb, lamb[0] + gap, beta)


@pytest.mark.parametrize("geom", [(2, 1, 4, 20, 12), (1, 1, 3, 5, 30), (2, 3, 7, 40, 30)])
def test_screened_tile_verification_equals_the_unscreened(geom, monkeypatch):
    """The tile screen (estimate the interior class, the others only when their proof
    fails) certifies the same lower bound as estimating every class up front, with fewer
    estimates; both contain the dense truth."""
    s, p, ks, k, n = geom
    rng = np.random.default_rng(5)
    layer = ConvLayer(_bank(rng, k, 2, ks), stride=s, padding=p)
    shape = (2, n, n)
    cf = coarse_form(layer.at(shape))
    screened = TileCertifier(cf).certify((4, 4), (2, 2), max_local=10 ** 6)
    monkeypatch.setattr(tiles_mod, "SCREEN", False)
    full = TileCertifier(cf).certify((4, 4), (2, 2), max_local=10 ** 6)
    assert full.verified and screened.verified and full.lower > 0
    assert abs(screened.lower - full.lower) <= 1e-4 * full.lower
    assert sum(not math.isnan(tt.est) for tt in screened.types) < len(full.types)
    lo, _, slack = truth(layer, shape)
    assert screened.lower <= lo + slack and full.lower <= lo + slack


def test_planted_screen_that_skips_failed_classes_breaks_containment(monkeypatch):
    """Negative control: if the classes whose proof fails were accepted (only the interior
    class decides t), the bound exceeds the dense truth: the boundary classes are what limit
    it, and only their proofs catch it."""
    rng = np.random.default_rng(5)
    layer = ConvLayer(_bank(rng, 20, 2, 4), stride=2, padding=1)
    shape = (2, 20, 20)
    cf = coarse_form(layer.at(shape))
    lo, _, slack = truth(layer, shape)
    good = TileCertifier(cf).certify((4, 4), (2, 2), max_local=10 ** 6)
    assert good.verified and good.lower <= lo + slack
    monkeypatch.setattr(tiles_mod, "certify_lower_band", lambda ab, t: True)
    bad = TileCertifier(cf).certify((4, 4), (2, 2), max_local=10 ** 6)
    assert bad.lower > lo + slack
