"""The LSMR right preconditioners (`theory.preconditioner`) against the dense oracle.

Oracles: the matrix built from the definition (`theory.testing.reference_matrix`), its column
norms and its SVD; for a circular stride-1 layer the circulant preconditioner is exactly
$(A^TA)^{-1/2}$, so $AM$ has orthonormal columns. Planted bugs: a singular preconditioner must be
caught by `invert_crelu`'s residual check; a wrong symbol convention (the conjugate, which is
what a cross-correlation read as a convolution gives) must lose the exactness above.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import ConvLayer, crelu_features, frame_bounds, invert_crelu
from theory import preconditioner as pc
from theory.checks import InconsistentFeaturesWarning
from theory.inversion import NonInjectiveWarning
from theory.testing import reference_matrix


@st.composite
def layers(draw):
    """Any stride (1-3), dilation (1-2), zero or circular padding (0-2); D <= 300."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    c = draw(st.integers(1, 3))
    s = draw(st.integers(1, 3))
    k = draw(st.integers(1, 4))
    d = draw(st.integers(1, 2))
    p = draw(st.integers(0, 2))
    mode = draw(st.sampled_from(["zeros", "circular"]))
    low = max(3, d * (k - 1) + 1 - 2 * p, p + 1)
    h = draw(st.integers(low, 10))
    w = draw(st.integers(low, 10))
    kk = draw(st.integers(1, 2 * c * s * s + 2))
    layer = ConvLayer(rng.standard_normal((kk, c, k, k)), stride=s, padding=p, dilation=d,
                      padding_mode=mode)
    return layer, (c, h, w)


def dense_of(lin, d):
    return lin.matmat(np.eye(d))


@settings(max_examples=40, deadline=None)
@given(layers())
def test_column_norms_and_jacobi_match_the_dense_matrix(case):
    layer, shape = case
    a = reference_matrix(layer, shape)
    norms = np.linalg.norm(a, axis=0)
    got = pc.column_norms(layer, shape)
    (rh, rw), (_, h, w) = layer.receptive_field, shape
    if layer.padding_mode == "zeros" or (rh <= h and rw <= w):
        np.testing.assert_allclose(got, norms, rtol=1e-12, atol=0)
    else:   # two taps of one window wrap onto the same pixel: counted as two entries
        assert np.all((got > 0) | (norms == 0))
    m = dense_of(pc.jacobi(layer.at(shape)), a.shape[1])
    expect = np.where(got > 0, 1 / np.where(got > 0, got, 1), 1.0)
    np.testing.assert_array_equal(np.diag(m), expect)
    assert np.count_nonzero(m - np.diag(np.diag(m))) == 0


@settings(max_examples=40, deadline=None)
@given(layers())
def test_circulant_preconditioner_is_nonsingular_and_its_adjoint_is_exact(case):
    layer, shape = case
    op = layer.at(shape)
    M = pc.CirculantPreconditioner(op)
    m = dense_of(M, op.d)
    mt = M.rmatmat(np.eye(op.d))
    np.testing.assert_allclose(mt, m.T, rtol=0, atol=1e-12 * np.abs(m).max())   # dot test
    s = np.linalg.svd(m, compute_uv=False)
    # nonsingular, so the same solutions: M = D_s E^T R E with cond(R) <= floor^(-1/2) and
    # E^T R E a principal submatrix of R (interlacing), hence cond(M) <= cond(D_s) floor^(-1/2)
    ds = M.border_scale
    assert s[-1] >= s[0] * np.sqrt(pc.EIGEN_FLOOR) * ds.min() / ds.max() * (1 - 1e-6)
    a = reference_matrix(layer, shape)
    am = a @ m
    # the computed product is within about max(shape) u ||A|| ||M|| of A M (entrywise
    # gamma_n |A||M|), which for a non-injective A and a steep M (eigenvalues raised to
    # the floor) exceeds matrix_rank's default max(shape) u ||AM||: count a singular
    # value of A M only above that rounding level
    noise = max(am.shape) * np.finfo(np.float64).eps * np.linalg.norm(a, 2) * s[0]
    assert np.linalg.matrix_rank(am, tol=noise) == np.linalg.matrix_rank(a)


@pytest.mark.parametrize("c,k,n", [(1, 3, 8), (2, 3, 7), (3, 5, 9)])
def test_circulant_stride1_preconditioner_is_the_inverse_square_root(c, k, n):
    """Circular, stride 1, injective: M = (A^T A)^{-1/2}, so A M has orthonormal columns
    (oracle: the SVD of the definition-built matrix)."""
    rng = np.random.default_rng(c * 10 + k)
    layer = ConvLayer(rng.standard_normal((2 * c + 2, c, k, k)), padding=k // 2,
                      padding_mode="circular")
    shape = (c, n, n)
    a = reference_matrix(layer, shape)
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    inv_root = vt.T @ np.diag(1 / s) @ vt
    m = dense_of(pc.CirculantPreconditioner(layer.at(shape)), a.shape[1])
    np.testing.assert_allclose(m, inv_root, rtol=0, atol=1e-10 * np.abs(inv_root).max())


def test_planted_bug_conjugate_symbol_is_not_the_inverse_square_root(monkeypatch):
    """The symbol of a cross-correlation is sum W_q e^{+i w q}; with the conjugate (numpy's FFT
    of the kernel) G(w) becomes its transpose, and for several channels M is wrong."""
    rng = np.random.default_rng(3)
    layer = ConvLayer(rng.standard_normal((6, 2, 3, 3)), padding=1, padding_mode="circular")
    shape = (2, 7, 7)
    a = reference_matrix(layer, shape)
    real = pc.symbol

    def conjugated(*args, **kwargs):
        sym = real(*args, **kwargs)
        sym.Ai = -sym.Ai
        return sym

    monkeypatch.setattr(pc, "symbol", conjugated)
    m = dense_of(pc.CirculantPreconditioner(layer.at(shape)), a.shape[1])
    gram = (a @ m).T @ (a @ m)
    assert np.abs(gram - np.eye(a.shape[1])).max() > 1e-2


def _border_heavy_case():
    """AlexNet conv1's geometry, scaled down: stride 4, padding 2, 11x11 kernels."""
    rng = np.random.default_rng(0)
    layer = ConvLayer(rng.standard_normal((96, 3, 11, 11)) / np.sqrt(363), stride=4, padding=2)
    shape = (3, 23, 23)
    x = rng.random(shape)
    return layer, shape, x


@pytest.mark.parametrize("pre", ["none", "jacobi", "circulant"])
def test_each_preconditioner_recovers_the_input_exactly(pre):
    layer, shape, x = _border_heavy_case()
    fb = frame_bounds(layer, shape, "dense")
    assert fb.injective and fb.certified
    r = invert_crelu(crelu_features(x, layer), layer, shape, "lsmr", bounds=fb,
                     precondition=pre, atol=1e-13, btol=1e-13, on_inconsistent="raise",
                     on_not_converged="raise")
    assert r.stopping["preconditioner"] == pre
    oracle = np.linalg.lstsq(reference_matrix(layer, shape), layer.at(shape).forward(x).ravel(),
                             rcond=None)[0]
    assert np.linalg.norm(r.x.ravel() - oracle) <= 1e-10 * np.linalg.norm(oracle)


def test_preconditioners_cut_the_iterations_on_a_strided_zero_padded_layer():
    """The point of preconditioning: fewer LSMR iterations to the same tolerance
    (measured here: none 172, jacobi 117, circulant 104 iterations)."""
    layer, shape, x = _border_heavy_case()
    h = crelu_features(x, layer)
    fb = frame_bounds(layer, shape, "dense")
    its = {pre: invert_crelu(h, layer, shape, "lsmr", bounds=fb, precondition=pre).iterations
           for pre in ("none", "jacobi", "circulant")}
    assert its["jacobi"] < 0.8 * its["none"]
    assert its["circulant"] < its["jacobi"]


def test_auto_preconditions_only_injective_layers():
    layer, shape, x = _border_heavy_case()
    h = crelu_features(x, layer)
    r = invert_crelu(h, layer, shape, "lsmr", bounds=frame_bounds(layer, shape, "dense"))
    assert r.stopping["preconditioner"] == "jacobi"
    r = invert_crelu(h, layer, shape, "lsmr", certify=False)
    assert r.stopping["preconditioner"] == "none"      # injectivity not established


def test_non_injective_layer_with_a_preconditioner_says_it_is_not_the_projection():
    rng = np.random.default_rng(1)
    layer = ConvLayer(rng.standard_normal((2, 3, 3, 3)), padding=1)    # 2 filters, 3 channels
    shape = (3, 6, 6)
    h = crelu_features(rng.random(shape), layer)
    with pytest.warns(NonInjectiveWarning, match=r"projection of the input onto the row"):
        r = invert_crelu(h, layer, shape, "lsmr")
    assert r.stopping["preconditioner"] == "none"
    with pytest.warns(NonInjectiveWarning,
                      match=r"minimum \|\|M\^-1 x\|\| one for the jacobi preconditioner M\), not "
                            r"the projection"):
        r = invert_crelu(h, layer, shape, "lsmr", precondition="jacobi")
    a = reference_matrix(layer, shape)
    assert np.linalg.norm(a @ r.x.ravel() - r.z.ravel()) <= 1e-9 * np.linalg.norm(r.z)


def test_planted_bug_singular_preconditioner_is_caught_by_the_residual_check(monkeypatch):
    """A preconditioner that zeroes one pixel (a singular M) restricts LSMR to a subspace that
    misses the solution: the residual check must report the features as unexplained."""
    import theory.inversion as inversion

    layer, shape, x = _border_heavy_case()
    real = pc.jacobi

    def broken(op):
        good = real(op)
        mask = np.ones(op.d)
        mask[op.d // 2] = 0.0
        return scipy.sparse.linalg.LinearOperator(
            good.shape, matvec=lambda v: mask * good.matvec(v),
            rmatvec=lambda v: good.rmatvec(mask * np.ravel(v)), dtype=np.float64)

    monkeypatch.setattr(inversion, "jacobi", broken)
    fb = frame_bounds(layer, shape, "dense")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = invert_crelu(crelu_features(x, layer), layer, shape, "lsmr", bounds=fb)
    assert r.stopping["preconditioner"] == "jacobi"
    assert r.checks["relative_residual"] > r.checks["residual_tolerance"]
    assert any(issubclass(w.category, InconsistentFeaturesWarning) for w in caught)


def test_circulant_preconditioner_refuses_by_size(monkeypatch):
    layer, shape, _ = _border_heavy_case()
    monkeypatch.setattr(pc, "CIRCULANT_LIMIT_BYTES", 1000)
    with pytest.raises(MemoryError, match=r"6x4 matrices of 48x48 complex values .*use the "
                                          r"Jacobi preconditioner"):
        pc.CirculantPreconditioner(layer.at(shape))


def test_unknown_preconditioner_is_refused_before_any_work():
    layer, shape, x = _border_heavy_case()
    with pytest.raises(ValueError, match=r"precondition"):
        invert_crelu(crelu_features(x, layer), layer, shape, "lsmr", precondition="ilu")


def test_auto_takes_the_circulant_where_the_interior_is_ill_conditioned():
    """One channel, a smooth (low-pass) bank: the symbol's Gram has cond >= 10, so `auto`
    takes the circulant, and it needs fewer iterations than Jacobi to the same tolerance."""
    rng = np.random.default_rng(4)
    w = np.ones((4, 1, 5, 5)) + 0.3 * rng.standard_normal((4, 1, 5, 5))
    layer = ConvLayer(w, padding=2)
    shape = (1, 24, 24)
    x = rng.random(shape)
    h = crelu_features(x, layer)
    fb = frame_bounds(layer, shape, "dense")
    assert fb.injective
    m = pc.CirculantPreconditioner(layer.at(shape))
    assert m.symbol_cond >= 10
    auto = invert_crelu(h, layer, shape, "lsmr", bounds=fb, on_inconsistent="raise")
    jac = invert_crelu(h, layer, shape, "lsmr", bounds=fb, precondition="jacobi")
    assert auto.stopping["preconditioner"] == "circulant"
    assert auto.iterations < jac.iterations
    assert np.linalg.norm(auto.x - x) <= 1e-9 * np.linalg.norm(x)


@pytest.mark.parametrize("exponent", [520, -560])
@pytest.mark.parametrize("pre", ["auto", "jacobi", "circulant"])
def test_preconditioners_work_far_from_unit_scale(pre, exponent):
    """The preconditioners square the weights: they are built from the normalised operator
    (2^e A), so a layer at 2^520 (squares overflow) or 2^-560 (squares underflow to 0) inverts
    as at unit scale, with the same preconditioner and the same iterations."""
    rng = np.random.default_rng(6)
    w = rng.standard_normal((16, 2, 3, 3))
    shape = (2, 9, 9)
    x = rng.random(shape)
    unit = ConvLayer(w, stride=2, padding=1)
    far = ConvLayer(np.ldexp(w, exponent), stride=2, padding=1)
    fb = frame_bounds(unit, shape, "dense")
    ref = invert_crelu(crelu_features(x, unit), unit, shape, "lsmr", bounds=fb, precondition=pre)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = invert_crelu(crelu_features(x, far), far, shape, "lsmr", precondition=pre)
    assert got.stopping["preconditioner"] == ref.stopping["preconditioner"] != "none"
    assert got.iterations == ref.iterations
    assert np.linalg.norm(got.x - x) <= 1e-9 * np.linalg.norm(x)


# Killers of the mutants that survived the seed-5 mutation sample (docs/dev/mutation.md).
@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
def test_column_norms_of_selected_rows_match_the_dense_rows(padding_mode):
    """`rows`: the norms of the columns of the selected (or weighted) rows of the dense A."""
    rng = np.random.default_rng(5)
    layer = ConvLayer(rng.standard_normal((3, 2, 3, 3)), stride=2, padding=1,
                      padding_mode=padding_mode)
    shape = (2, 7, 7)
    a = reference_matrix(layer, shape)
    out = layer.output_shape(shape)
    mask = (rng.random(out) < 0.4).astype(np.float64)
    np.testing.assert_allclose(pc.column_norms(layer, shape, rows=mask),
                               np.linalg.norm(a[mask.ravel() > 0], axis=0), rtol=1e-12, atol=0)
    weights = rng.random(out)
    np.testing.assert_allclose(pc.column_norms(layer, shape, rows=weights),
                               np.sqrt((a ** 2).T @ weights.ravel()), rtol=1e-12, atol=0)


def test_circulant_counts_the_eigenvalues_it_clips():
    """Binomial 3x3 filter [1,2,1]^T [1,2,1], circular, stride 1, 8x8: G(w) = |h(w)|^2 with
    h(w) = (1 + e^{-i w1})^2 (1 + e^{-i w2})^2, zero exactly where w1 = pi or w2 = pi (and at
    least (2 - 2 cos(3 pi / 4))^2 * 16 > 5 elsewhere, top 256: far above the floor). On the
    half spectrum (8 x 5 frequencies) that is row w1 = pi (5) plus column w2 = pi (8) less
    their common one: 12 clipped; a generic injective filter clips none."""
    box = ConvLayer(np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0])[None, None], padding=1,
                    padding_mode="circular")
    op = box.at((1, 8, 8))
    assert pc.CirculantPreconditioner(op).clipped == 12
    generic = ConvLayer(np.random.default_rng(0).standard_normal((8, 1, 3, 3)), padding=1,
                        padding_mode="circular")
    assert pc.CirculantPreconditioner(generic.at((1, 8, 8))).clipped == 0


def test_circulant_refuses_exactly_above_the_size_of_its_matrices(monkeypatch):
    """The limit is on the complex128 per-frequency matrices it stores: at exactly their size
    it builds, one byte less and it refuses."""
    layer = ConvLayer(np.random.default_rng(0).standard_normal((4, 2, 3, 3)), stride=2,
                      padding=1)
    shape = (2, 8, 8)
    need = pc.CirculantPreconditioner(layer.at(shape))._root.numpy().nbytes
    monkeypatch.setattr(pc, "CIRCULANT_LIMIT_BYTES", need)
    pc.CirculantPreconditioner(layer.at(shape))
    monkeypatch.setattr(pc, "CIRCULANT_LIMIT_BYTES", need - 1)
    with pytest.raises(MemoryError, match=r"use the Jacobi preconditioner"):
        pc.CirculantPreconditioner(layer.at(shape))
