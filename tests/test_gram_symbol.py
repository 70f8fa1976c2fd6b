"""The Gram symbol from the kernel's autocorrelation (Lemma R) and the screened certificate.

Oracles: the spectrum of ``M^T M`` for the definition-built matrix ``M``
(`theory.testing.reference_matrix`) of circular layers whose outputs cover the coarse torus
exactly once (then the eigenvalues of ``A^T A`` are the union of those of ``G(w)`` over the
torus), and ``A(w)`` written out from the coarse kernel with complex exponentials (numpy,
no code shared with `theory.symbol`). Planted bugs: a dropped lag, a lag with the wrong
transpose, a rounding bound set to zero on a perturbed Gram, and a screen that never
diagonalises the frequencies whose proof failed.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import ConvLayer
from theory import gram_symbol as gram_mod
from theory import symbol as symbol_mod
from theory.gram_symbol import gram_symbol
from theory.polyphase import coarse_form
from theory.symbol import symbol_bounds
from theory.testing import reference_matrix

EPS = float(np.finfo(np.float64).eps)


def exact_gram(cf, Nh: int, Nw: int, side: str = "C") -> np.ndarray:
    """A(w)^H A(w) (side "C"), or conj(A A^H) = the Gram of the transposed kernel (side "K"),
    from complex exponentials, half plane, (F, n, n)."""
    W = cf.kernel
    K, C, kh, kw = W.shape
    fh = np.arange(Nh)[:, None, None, None]
    fw = np.arange(Nw // 2 + 1)[None, :, None, None]
    qh = np.arange(kh)[None, None, :, None]
    qw = np.arange(kw)[None, None, None, :]
    ph = np.exp(2j * np.pi * (fh * qh / Nh + fw * qw / Nw))          # (Fh, Fw, kh, kw)
    A = np.einsum("hwab,kcab->hwkc", ph, W).reshape(-1, K, C)
    AH = np.conj(np.swapaxes(A, 1, 2))
    return AH @ A if side == "C" else np.conj(A @ AH)


def torus_spectrum(gs) -> np.ndarray:
    """Eigenvalues of G~ on the half plane, (Fh, Fw, n) (the caller counts conjugates)."""
    Fh, Fw = gs.shape
    lam = np.linalg.eigvalsh(gs.complex()).reshape(Fh, Fw, -1)
    return lam


LAYERS = st.tuples(
    st.integers(1, 6),                    # filters
    st.integers(1, 2),                    # channels
    st.sampled_from([1, 2, 3]),           # kernel
    st.sampled_from([1, 2]),              # stride
    st.integers(0, 2 ** 31 - 1),
)


@settings(max_examples=25, deadline=None)
@given(LAYERS, st.sampled_from(["C", "K"]))
def test_gram_within_lemma_r_of_the_exact_gram(params, side):
    k, c, ks, s, seed = params
    w = np.random.default_rng(seed).standard_normal((k, c, ks, ks))
    layer = ConvLayer(w, stride=s, padding=ks // 2, padding_mode="circular")
    cf = coarse_form(layer.at((c, 4 * s, 4 * s)))
    for Nh, Nw in [(4, 4), (5, 7)]:
        gs = gram_symbol(cf, Nh, Nw, side)
        G = gs.complex()
        assert np.array_equal(G, np.conj(np.swapaxes(G, 1, 2)))  # exactly Hermitian
        X = gs.real_embedding()
        assert np.array_equal(X, np.swapaxes(X, 1, 2))          # its embedding symmetric
        ref = exact_gram(cf, Nh, Nw, side)
        err = np.linalg.norm(gs.complex() - ref, ord=2, axis=(1, 2)).max()
        assert err <= gs.eps                                      # Lemma R holds
        scale = float(np.abs(np.linalg.eigvalsh(ref)).max())
        assert gs.eps <= 1e-11 * max(scale, 1e-300)               # and is not vacuous


@pytest.mark.parametrize("k,c,ks,s,n", [(6, 1, 3, 2, 8), (8, 2, 5, 2, 10), (5, 1, 4, 2, 8),
                                        (12, 3, 3, 2, 8)])
def test_gram_spectrum_is_the_dense_layer_spectrum(k, c, ks, s, n):
    """Outputs cover the torus once: eig(A^T A) = union over w of eig(G(w))."""
    w = np.random.default_rng(k * 100 + ks).standard_normal((k, c, ks, ks))
    layer = ConvLayer(w, stride=s, padding=(ks - 1) // 2, padding_mode="circular")
    shape = (c, n, n)
    cf = coarse_form(layer.at(shape))
    assert cf.h.multiplicity().min() == cf.h.multiplicity().max() == 1
    Nh, Nw = cf.h.torus, cf.w.torus
    gs = gram_symbol(cf, Nh, Nw, "C")
    lam = torus_spectrum(gs)
    mult = np.array([1 if (f == 0 or 2 * f == Nw) else 2 for f in range(Nw // 2 + 1)])
    ours = np.sort(np.repeat(lam.reshape(-1, lam.shape[-1]),
                             np.tile(mult, Nh), axis=0).ravel())
    M = reference_matrix(layer, shape)
    dense = np.linalg.eigvalsh(M.T @ M)
    assert ours.shape == dense.shape
    tol = 4 * M.size ** 0.5 * EPS * dense.max() + gs.eps
    assert np.abs(ours - dense).max() <= tol


def test_planted_dropped_lag_breaks_the_spectrum(monkeypatch):
    w = np.random.default_rng(3).standard_normal((6, 1, 3, 3))
    layer = ConvLayer(w, stride=2, padding=1, padding_mode="circular")
    cf = coarse_form(layer.at((1, 8, 8)))
    good = gram_symbol(cf, 4, 4)
    real_lags = gram_mod._lags

    def dropped(W):
        out = real_lags(W)
        key = next(k for k in out if k != (0, 0))
        out[key] = (np.zeros_like(out[key][0]), out[key][1])
        out[(-key[0], -key[1])] = (np.zeros_like(out[key][0]), out[key][1])
        return out

    def untransposed(W):
        out = real_lags(W)
        for key in out:
            if key[0] < 0 or (key[0] == 0 and key[1] < 0):
                out[key] = out[(-key[0], -key[1])]          # R_{-d} = R_d, not R_d^T
        return out

    ref = exact_gram(cf, 4, 4)
    for bug in (dropped, untransposed):
        monkeypatch.setattr(gram_mod, "_lags", bug)
        bad = gram_symbol(cf, 4, 4)
        err = np.linalg.norm(bad.complex() - ref, ord=2, axis=(1, 2)).max()
        assert err > 1e3 * bad.eps, bug.__name__
    err = np.linalg.norm(good.complex() - ref, ord=2, axis=(1, 2)).max()
    assert err <= good.eps


def test_planted_zero_rounding_bound_is_caught():
    """The negative control: a perturbed Gram with eps forced to 0 misses the truth."""
    w = np.random.default_rng(4).standard_normal((6, 1, 3, 3))
    cf = coarse_form(ConvLayer(w, stride=2, padding=1, padding_mode="circular").at((1, 8, 8)))
    gs = gram_symbol(cf, 4, 4)
    ref = exact_gram(cf, 4, 4)
    lam_true = np.linalg.eigvalsh(ref)
    lam = np.linalg.eigvalsh(gs.complex())
    assert np.all(np.abs(lam - lam_true) <= gs.eps)             # the real bound holds
    gs.G += 50 * gs.eps * np.eye(gs.n)                          # a Gram off by 50 eps
    lam_bad = np.linalg.eigvalsh(gs.complex())
    assert not np.all(np.abs(lam_bad - lam_true) <= gs.eps)     # eps no longer covers it


def _screen_case():
    """A layer whose extremes fall between subgrid frequencies of a 64 x 64 torus."""
    w = np.random.default_rng(1).standard_normal((12, 2, 3, 3))
    cf = coarse_form(ConvLayer(w, stride=2, padding=1, padding_mode="circular").at((2, 8, 8)))
    return cf, 67, 61


def test_screened_bounds_equal_full_grid_bounds(monkeypatch):
    cf, Nh, Nw = _screen_case()
    lam = np.linalg.eigvalsh(exact_gram(cf, Nh, Nw))
    lo, hi = float(lam[:, 0].min()), float(lam[:, -1].max())
    F = Nh * (Nw // 2 + 1)
    assert F > symbol_mod.SCREEN_ALL
    sub = lam.reshape(Nh, -1, lam.shape[-1])[::symbol_mod.SCREEN_STEP, ::symbol_mod.SCREEN_STEP]
    assert sub[..., 0].min() > lo * (1 + 1e-6) and sub[..., -1].max() < hi * (1 - 1e-6)
    sb = symbol_bounds(cf, Nh, Nw)
    assert sb.certified and sb.n_estimated < F
    assert sb.lower <= lo <= sb.lower * (1 + 1e-10)              # tight to the margin
    assert sb.upper * (1 - 1e-10) <= hi <= sb.upper
    monkeypatch.setattr(symbol_mod, "SCREEN_ALL", 10 ** 9)      # every frequency estimated
    full = symbol_bounds(cf, Nh, Nw)
    assert full.n_estimated == F
    assert abs(full.lower - sb.lower) <= 1e-12 * hi and abs(full.upper - sb.upper) <= 1e-12 * hi


def test_planted_screen_without_refinement_is_loose(monkeypatch):
    """A screen that learns nothing from the failed frequencies (their eigenvalues replaced by
    those of the first one) can only widen its margin: the bound is then visibly loose or not
    proved, so the refinement is what makes the screened bound tight."""
    cf, Nh, Nw = _screen_case()
    lam = np.linalg.eigvalsh(exact_gram(cf, Nh, Nw))
    lo = float(lam[:, 0].min())
    good = symbol_bounds(cf, Nh, Nw)
    assert good.lower <= lo <= good.lower * (1 + 1e-10)
    real_eigvalsh = np.linalg.eigvalsh
    calls = []

    def blind(a):
        calls.append(len(a))
        out = real_eigvalsh(a)
        return out if len(calls) == 1 else np.repeat(out[:1], len(a), axis=0)

    monkeypatch.setattr(symbol_mod.np.linalg, "eigvalsh", blind)
    bad = symbol_bounds(cf, Nh, Nw)
    assert len(calls) > 1                                       # the refinement was reached
    assert (not bad.certified) or bad.lower < lo * (1 - 1e-6)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_eps_is_lemma_r_written_out(k):
    """Lemma R's bound from its statement, with the lags' sums written as loops over taps
    (independent of `_lags`' slicing and storage): the code's eps must equal it. A wrong
    term count (e.g. n_R without the tree's ceil(log2 K)) or a misplaced lag changes it."""
    import math

    from theory.rigour import gamma
    from theory.symbol import TAU

    w = np.random.default_rng(k).standard_normal((k, 2, 3, 3))
    cf = coarse_form(ConvLayer(w, stride=2, padding=1, padding_mode="circular").at((2, 8, 8)))
    W = cf.kernel
    K, C, kh, kw = W.shape
    absR = np.zeros((C, C))
    P = np.zeros((C, C))
    for dh in range(-(kh - 1), kh):
        for dw in range(-(kw - 1), kw):
            r = np.zeros((C, C))
            p = np.zeros((C, C))
            for qh in range(kh):
                for qw in range(kw):
                    if 0 <= qh + dh < kh and 0 <= qw + dw < kw:
                        r += W[:, :, qh, qw].T @ W[:, :, qh + dh, qw + dw]
                        p += np.abs(W[:, :, qh, qw]).T @ np.abs(W[:, :, qh + dh, qw + dw])
            absR += np.abs(r)
            P += p
    beta = 4.01 * TAU + 1.01 * gamma((2 * kw - 1) + 2 * (2 * kh - 1))
    n_r = kh * kw + (math.ceil(math.log2(K)) if K > 1 else 0)
    E = math.sqrt(2) * beta * absR + gamma(n_r) * P
    expected = float(np.sqrt((E ** 2).sum())) * (1 + 1e-6)
    assert abs(gram_symbol(cf, 4, 4).eps - expected) <= 1e-9 * expected
