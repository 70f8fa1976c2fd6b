"""Tests of theory.fft's CirculantPlan against independent oracles.

The oracle is the layer's dense matrix (`ConvLayer.dense`), applied with a plain matrix-vector
product in float64: no FFT, no Parseval weights, no normalising exponent.
"""

from __future__ import annotations

import numpy as np
import pytest

from theory import CirculantPlan, ConvLayer
from theory.conv import normalising_exponent

EPS = float(np.finfo(np.float64).eps)
SHAPE = (2, 6, 6)


def _dense_residual(layer: ConvLayer, x: np.ndarray, z: np.ndarray) -> float:
    """||A x - z||_2 over a batch, with A the dense (K H W, C H W) matrix."""
    a = layer.dense(SHAPE)
    x64 = np.asarray(x, dtype=np.float64).reshape(-1, a.shape[1])
    return float(np.linalg.norm(x64 @ a.T - np.reshape(z, (-1, a.shape[0]))))


# Killers of the mutants that survived the seed-1 mutation sample (docs/dev/mutation.md).
@pytest.mark.parametrize("exponent", [-80, 70])
def test_residual_norm_of_a_normalised_plan_matches_the_dense_residual(exponent):
    """Weights at 2^-80 or 2^70 are factored as 2^-e times a unit-scale bank; `residual_norm`
    must scale z the same way. x is not a solution, z not in the range: the residual is
    O(||z||), and both sides are float64 sums of a few hundred terms (rounding ~1e-13
    relative), so rtol 1e-10 leaves a wide margin and catches any wrong power of two."""
    rng = np.random.default_rng(11)
    w = np.ldexp(rng.standard_normal((4, *SHAPE[:1], 3, 3)), exponent)
    assert normalising_exponent(float(np.abs(w).max())) != 0     # the normalised path
    layer = ConvLayer(w, padding=1, padding_mode="circular")
    plan = CirculantPlan(layer, SHAPE)
    x = rng.standard_normal((3, *SHAPE))
    z = np.ldexp(rng.standard_normal((3, 4, *SHAPE[1:])), exponent)
    direct = _dense_residual(layer, x, z)
    assert direct > 0
    # abs=0: pytest.approx's default abs=1e-12 would swallow any residual at 2^-80 scale
    assert plan.residual_norm(x, z) == pytest.approx(direct, rel=1e-10, abs=0)
    one = plan.residual_norm(x[0], z[0])                          # a single (C, H, W) input
    assert one == pytest.approx(_dense_residual(layer, x[0], z[0]), rel=1e-10, abs=0)


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_residual_norm_of_low_precision_images_is_computed_in_float64(dtype):
    """A float32 or integer image is promoted to float64, not transformed in single precision.

    z = A x exactly in float64 (dense oracle), so the residual is rounding only: the FFT's
    forward error is O(log2(H W) eps) relative to ||A|| ||x|| and the dense product's
    O(C k^2 eps); 64 eps ||A||_2 ||x|| covers both (log2 36 < 6, C k^2 = 18). A transform in
    single precision (eps32 = 1.2e-7 = 5e8 eps64) would be far above it."""
    rng = np.random.default_rng(12)
    layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
    plan = CirculantPlan(layer, SHAPE)
    if dtype is np.float32:
        x = rng.standard_normal((3, *SHAPE)).astype(np.float32)
    else:
        x = rng.integers(-50, 51, (3, *SHAPE)).astype(np.int64)
    a = layer.dense(SHAPE)
    x64 = x.astype(np.float64)
    z = (x64.reshape(3, -1) @ a.T).reshape(3, 4, *SHAPE[1:])
    sigma_max = float(np.linalg.svd(a, compute_uv=False)[0])
    tol = 64 * EPS * sigma_max * float(np.linalg.norm(x64))
    assert plan.residual_norm(x, z) <= tol
    # off the range the residual is the float64 one: |(||r'|| - ||r||)| <= ||r' - r||, the sum
    # of the two computations' errors, each within tol
    z2 = z + 1e-3
    assert abs(plan.residual_norm(x, z2) - _dense_residual(layer, x64, z2)) <= 2 * tol


# Killers of the mutants that survived the seed-2 mutation sample (docs/dev/mutation.md).
def _frequency_matrix(dense: np.ndarray, shape, k: int, l: int) -> np.ndarray:
    """A(w) at w = (k, l), from the dense matrix alone: A maps v (x) f to (A(w) v) (x) f for
    the Fourier mode f[i, j] = exp(2 pi i (k i / H + l j / W)) / sqrt(H W)."""
    c, h, w = shape
    f = np.exp(2j * np.pi * (np.outer(np.arange(h), np.full(w, k)) / h
                             + np.outer(np.ones(h), l * np.arange(w)) / w)) / np.sqrt(h * w)
    cols = []
    for ci in range(c):
        x = np.zeros(shape, dtype=complex)
        x[ci] = f
        out = (dense @ x.ravel()).reshape(-1, h, w)
        cols.append(np.sum(np.conj(f) * out, axis=(1, 2)))
    return np.stack(cols, axis=1)


def test_full_spectrum_puts_each_singular_value_at_its_frequency():
    """full_spectrum()[k, l] are the singular values of A(w) at w = (k, l), for every (k, l)
    of the full H x W grid (also l > W // 2, filled by conjugate symmetry), against A(w) read
    off the dense matrix. The kernel has no symmetry, so sigma(k, l) != sigma(k, -l)."""
    rng = np.random.default_rng(11)
    shape = (2, 5, 6)
    layer = ConvLayer(rng.standard_normal((3, 2, 3, 3)), padding=1, padding_mode="circular")
    full = CirculantPlan(layer, shape).full_spectrum()
    dense = layer.dense(shape)
    smax = float(np.linalg.svd(dense, compute_uv=False)[0])
    oracle = np.array([[np.linalg.svd(_frequency_matrix(dense, shape, k, l), compute_uv=False)
                        for l in range(shape[2])] for k in range(shape[1])])
    assert full.shape == oracle.shape == (5, 6, 2)
    assert np.max(np.abs(full - oracle)) <= 1e3 * EPS * smax
    # no symmetry hides a wrong mirror: sigma(k, l) and sigma(k, -l) differ
    assert np.max(np.abs(oracle[:, 1:] - oracle[:, :0:-1])) > 0.1 * smax


def test_frequencies_that_vanish_in_exact_arithmetic_are_rank_deficient():
    """Filters a_k (x) [1, 1, 0] vanish at the Nyquist column l = W/2 (1 + e^{i pi} = 0, to
    rounding ~1e-16): those H frequencies are rank deficient (dense oracle: rank D - H), and
    the solve is the minimum-norm least-squares solution pinv(A) z, not 1/1e-16 noise."""
    rng = np.random.default_rng(2)
    shape = (1, 5, 6)
    weight = np.zeros((2, 1, 3, 3))
    weight[:, 0, :, :2] = rng.standard_normal((2, 3, 1))
    layer = ConvLayer(weight, padding=1, padding_mode="circular")
    plan = CirculantPlan(layer, shape)
    dense = layer.dense(shape)
    d = int(np.prod(shape))
    assert d - np.linalg.matrix_rank(dense) == shape[1]
    assert plan.rank_deficient_frequencies == shape[1]
    z = dense @ rng.standard_normal(d)
    x = plan.solve(z.reshape(plan.output_shape))
    ref = np.linalg.pinv(dense) @ z
    assert np.linalg.norm(x.ravel() - ref) <= 1e3 * EPS * np.linalg.norm(ref)


# Killers of the mutants that survived the seed-3 mutation sample (docs/dev/mutation.md).
@pytest.mark.parametrize("exponent", [-80, 70])
def test_forward_of_a_normalised_plan_matches_the_dense_product(exponent):
    """Weights at 2^-80 or 2^70 are factored as 2^-e times a unit-scale bank; `forward` must
    undo that factor once (y = A x, at the layer's own scale), against the dense matrix.
    Both sides are float64 sums of C k^2 = 18 products (the FFT adds O(log2(H W) eps)), so
    rtol 1e-10 relative to ||A x|| is a wide margin and any wrong power of two is far off."""
    rng = np.random.default_rng(13)
    w = np.ldexp(rng.standard_normal((4, *SHAPE[:1], 3, 3)), exponent)
    assert normalising_exponent(float(np.abs(w).max())) != 0     # the normalised path
    layer = ConvLayer(w, padding=1, padding_mode="circular")
    plan = CirculantPlan(layer, SHAPE)
    a = layer.dense(SHAPE)
    x = rng.standard_normal((3, *SHAPE))
    ref = (x.reshape(3, -1) @ a.T).reshape(3, 4, *SHAPE[1:])
    y = plan.forward(x)
    assert y.shape == ref.shape
    assert np.linalg.norm(y - ref) <= 1e-10 * np.linalg.norm(ref)
    one = plan.forward(x[0])                                      # a single (C, H, W) input
    assert one.shape == ref[0].shape
    assert np.linalg.norm(one - ref[0]) <= 1e-10 * np.linalg.norm(ref[0])
