"""CReLU/ReLU + max-pooling with switches: operator vs dense oracle, recovery, linear bound."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given


from theory import ConvLayer, recovery_tolerance
from theory.testing import dot_test, orthonormal_bank as _bank, pooled_cases
from theory.deep import Stage, deep_forward, invert_deep
from theory.checks import InconsistentFeaturesWarning
from theory.inversion import NonInjectiveError, NonInjectiveWarning
from theory.pooling import crelu_maxpool, invert_crelu_maxpool, selection

EPS = float(np.finfo(np.float64).eps)


def _selection(case):
    layer, x, pool, act = case
    f, s = crelu_maxpool(x, layer, pool, act)
    return selection(f, s, layer, x.shape, pool, act), f, s


@given(pooled_cases())
def test_operator_matches_dense_oracle_and_sparse(case):
    sel, _, _ = _selection(case)
    x = case[1]
    a = sel.dense()
    assert np.array_equal(sel.sparse().toarray() != 0, a != 0) or np.allclose(
        sel.sparse().toarray(), a, rtol=0, atol=0)
    op = sel.operator()
    y = np.random.default_rng(1).standard_normal(sel.n_selected)
    scale = np.linalg.norm(a, "fro") * EPS * (a.shape[1] + 10)
    assert np.abs(op.matvec(x.ravel()) - a @ x.ravel()).max(initial=0.0) <= scale * np.linalg.norm(x)
    assert np.abs(op.rmatvec(y) - a.T @ y).max(initial=0.0) <= scale * np.linalg.norm(y)
    # the features' non-zero values are exactly the selected responses (same float64 sums)
    assert np.allclose(a @ x.ravel(), sel.values, rtol=0,
                       atol=scale * np.linalg.norm(x))


@given(pooled_cases())
def test_dot_test_normalised(case):
    """The package's one dot test (ODL-normalised, theory.diagnostics) on W_x^T."""
    sel, _, _ = _selection(case)
    err, tol = dot_test(sel.operator(), np.random.default_rng(2))
    assert err <= tol


def test_dot_test_catches_a_wrong_adjoint():
    """Negative control: a sign error in the adjoint fails the same dot test."""
    rng = np.random.default_rng(0)
    layer = ConvLayer(_bank(rng, 6, 2, 3), padding=1)
    x = rng.standard_normal((2, 6, 6))
    sel, _, _ = _selection((layer, x, 2, "crelu"))
    op = sel.operator()
    err, tol = dot_test(op, rng, rmatvec=lambda v: -op.rmatvec(v))
    assert err > tol


@given(pooled_cases(frame_rich=True))
def test_exact_recovery_or_projection(case):
    """Frame regime: x recovered to 4 sqrt(T K) cond eps; otherwise the projection onto span."""
    layer, x, pool, act = case
    sel, f, s = _selection(case)
    fb = sel.frame_bounds("dense")
    res = invert_crelu_maxpool(f, s, layer, x.shape, pool, "exact", act, solver="dense",
                               bounds=fb, on_non_injective="ignore")
    a = sel.dense()
    if res.is_frame:
        err = np.linalg.norm(res.x - x) / np.linalg.norm(x)
        assert err <= recovery_tolerance(layer, fb)
    else:
        proj = np.linalg.pinv(a) @ a
        expect = proj @ x.ravel()
        assert np.linalg.norm(res.x.ravel() - expect) <= 1e3 * EPS * a.shape[1] * np.linalg.norm(x)


def test_frame_rich_banks_usually_give_frames():
    """The frame-rich strategy is not vacuous: CReLU gives frames on most seeded draws."""
    rng = np.random.default_rng(5)
    frames = 0
    for _ in range(10):
        layer = ConvLayer(_bank(rng, 40, 1, 3), padding=1)
        x = rng.standard_normal((1, 6, 6))
        sel, _, _ = _selection((layer, x, 2, "crelu"))
        frames += sel.frame_bounds("dense").injective
    assert frames >= 8


@given(pooled_cases())
def test_linear_map_bound_holds(case):
    layer, x, pool, act = case
    sel, f, s = _selection(case)
    res = invert_crelu_maxpool(f, s, layer, x.shape, pool, "linear", act, certify="dense",
                               on_non_injective="ignore")
    err = np.linalg.norm(res.x - x) / np.linalg.norm(x)
    bound = res.error_bound()
    assert 0 <= bound <= 1
    assert err <= bound + 1e3 * EPS * sel.dim


def test_linear_bound_halved_is_violated_somewhere():
    """Negative control: 0.5 * (b-a)/(b+a) fails the same check on some seeded input."""
    rng = np.random.default_rng(3)
    violated = 0
    for _ in range(20):
        layer = ConvLayer(_bank(rng, 12, 1, 3), padding=1)
        x = rng.standard_normal((1, 6, 6))
        f, s = crelu_maxpool(x, layer, 2)
        res = invert_crelu_maxpool(f, s, layer, x.shape, 2, "linear", certify="dense",
                                   on_non_injective="ignore")
        err = np.linalg.norm(res.x - x) / np.linalg.norm(x)
        violated += err > 0.5 * res.error_bound() + 1e3 * EPS * 36
    assert violated >= 1


def test_shuffled_switches_break_exact_recovery():
    """Negative control: wrong switches (same windows) give a large error on a frame."""
    rng = np.random.default_rng(4)
    layer = ConvLayer(_bank(rng, 36, 1, 3), padding=1)
    x = rng.standard_normal((1, 8, 8))
    f, s = crelu_maxpool(x, layer, 2)
    good = invert_crelu_maxpool(f, s, layer, x.shape, 2, solver="dense")
    fb = good.frame_bounds
    assert good.is_frame
    assert np.linalg.norm(good.x - x) / np.linalg.norm(x) <= recovery_tolerance(layer, fb)
    # move every switch to another position of its 2x2 window
    i, j = np.divmod(s, 8)
    bad = ((i // 2) * 2 + (1 - i % 2)) * 8 + (j // 2) * 2 + (1 - j % 2)
    with pytest.warns(InconsistentFeaturesWarning, match="not consistent"):
        wrong = invert_crelu_maxpool(f, bad, layer, x.shape, 2, solver="dense",
                                     on_non_injective="ignore")
    assert np.linalg.norm(wrong.x - x) / np.linalg.norm(x) > recovery_tolerance(layer, fb)
    assert wrong.checks["relative_residual"] > wrong.checks["residual_tolerance"]


def test_relu_keeps_a_subset_and_fails_where_crelu_is_a_frame():
    rng = np.random.default_rng(6)
    layer = ConvLayer(_bank(rng, 10, 3, 3), padding=1)
    x = rng.random((3, 8, 8))  # non-negative, like images; ReLU has <= 160 < 192 values
    fc, sc = crelu_maxpool(x, layer, 2, "crelu")
    fr, sr = crelu_maxpool(x, layer, 2, "relu")
    assert np.array_equal(fr, fc[:10]) and np.array_equal(sr, sc[:10])
    rc = invert_crelu_maxpool(fc, sc, layer, x.shape, 2)
    with pytest.warns(NonInjectiveWarning):
        rr = invert_crelu_maxpool(fr, sr, layer, x.shape, 2, activation="relu")
    assert rc.is_frame and not rr.is_frame
    assert np.linalg.norm(rc.x - x) < 1e-9 * np.linalg.norm(x)
    assert np.linalg.norm(rr.x - x) > 1e-3 * np.linalg.norm(x)
    with pytest.raises(NonInjectiveError):
        invert_crelu_maxpool(fr, sr, layer, x.shape, 2, activation="relu", on_non_injective="raise")


def test_lsmr_and_banded_agree_with_dense():
    rng = np.random.default_rng(7)
    layer = ConvLayer(_bank(rng, 16, 3, 3), padding=1)
    x = rng.random((3, 12, 12))
    f, s = crelu_maxpool(x, layer, 2)
    sel = selection(f, s, layer, x.shape, 2)
    fd, fbd = sel.frame_bounds("dense"), sel.frame_bounds("banded")
    assert abs(fd.upper - fbd.upper) <= 1e-9 * fd.upper
    assert abs(fd.lower - fbd.lower) <= x.size * EPS * fd.upper * 10
    res = invert_crelu_maxpool(f, s, layer, x.shape, 2, solver="lsmr", bounds=fd)
    err = np.linalg.norm(res.x - x) / np.linalg.norm(x)
    assert res.solver == "lsmr-sparse"
    assert err <= recovery_tolerance(layer, fd) + res.error_bound()


def test_operator_path_used_for_large_selections(monkeypatch):
    import theory.pooling as tp

    monkeypatch.setattr(tp, "SPARSE_LIMIT", 10)
    rng = np.random.default_rng(8)
    layer = ConvLayer(_bank(rng, 16, 3, 3), padding=1)
    x = rng.random((3, 12, 12))
    f, s = crelu_maxpool(x, layer, 2)
    res = invert_crelu_maxpool(f, s, layer, x.shape, 2, solver="lsmr", certify=False)
    assert res.solver == "lsmr-operator"
    assert res.is_frame is None
    assert np.linalg.norm(res.x - x) / np.linalg.norm(x) < 1e-9


def test_torch_in_torch_out_and_batches():
    rng = np.random.default_rng(9)
    layer = ConvLayer(_bank(rng, 8, 1, 3), padding=1)
    xb = torch.from_numpy(rng.standard_normal((3, 1, 6, 6)))
    f, s = crelu_maxpool(xb, layer, 2)
    assert isinstance(f, torch.Tensor) and f.shape == (3, 16, 3, 3) and s.dtype == torch.int64
    res = invert_crelu_maxpool(f, s, layer, (1, 6, 6), 2, solver="dense", on_non_injective="ignore")
    assert res.x.shape == (3, 1, 6, 6) and len(res) == 3
    # one result per input, each the same as inverting that input alone
    for i, r in enumerate(res):
        one = invert_crelu_maxpool(f[i], s[i], layer, (1, 6, 6), 2, solver="dense",
                                   on_non_injective="ignore")
        assert np.array_equal(r.x, one.x) and r.is_frame == one.is_frame
        assert r.n_selected == one.n_selected and r.relative_residual == one.relative_residual


@pytest.mark.parametrize("bad, message", [
    (lambda f, s: (-f, s), "negative"),
    (lambda f, s: (f[:-1], s[:-1]), "shape"),
    (lambda f, s: (f, s[..., :-1]), "switches have shape"),
    (lambda f, s: (f, s + 1000), "outside"),
    (lambda f, s: (f * np.nan, s), "NaN"),
    (lambda f, s: (f, s.astype(float)), "integer"),
])
def test_bad_input_is_refused(bad, message):
    rng = np.random.default_rng(10)
    layer = ConvLayer(_bank(rng, 8, 1, 3), padding=1)
    x = rng.standard_normal((1, 6, 6))
    f, s = crelu_maxpool(x, layer, 2)
    f, s = bad(f, s)
    with pytest.raises((ValueError, TypeError), match=message):
        invert_crelu_maxpool(f, s, layer, x.shape, 2)


def test_bad_arguments():
    layer = ConvLayer(np.ones((2, 1, 3, 3)), padding=1)
    x = np.ones((1, 4, 4))
    with pytest.raises(ValueError, match="activation"):
        crelu_maxpool(x, layer, 2, "tanh")
    with pytest.raises(ValueError, match="pool"):
        crelu_maxpool(x, layer, 0)
    with pytest.raises(ValueError, match="smaller than the pooling"):
        crelu_maxpool(x, layer, 5)
    f, s = crelu_maxpool(x, layer, 2)
    with pytest.raises(ValueError, match="unknown inverse 'magic'"):
        invert_crelu_maxpool(f, s, layer, x.shape, 2, inverse="magic")
    with pytest.warns(DeprecationWarning, match="'method' is deprecated"):
        with pytest.raises(ValueError, match="unknown inverse 'magic'"):
            invert_crelu_maxpool(f, s, layer, x.shape, 2, method="magic")
    with pytest.raises(ValueError, match="float64"):
        invert_crelu_maxpool(f, s, ConvLayer(np.ones((2, 1, 3, 3), np.float32), padding=1),
                             x.shape, 2)


def test_deep_two_stages_exact_for_crelu_and_not_for_relu():
    rng = np.random.default_rng(11)
    w1 = _bank(rng, 12, 3, 3)
    w2 = _bank(rng, 96, 24, 3)
    x = rng.random((3, 8, 8))  # ReLU stage 1 keeps <= 12 * 16 = 192 = D values: no frame
    crelu_st = [Stage(ConvLayer(w1, padding=1)), Stage(ConvLayer(w2, padding=1))]
    relu_st = [Stage(ConvLayer(w1, padding=1)),
               Stage(ConvLayer(np.ascontiguousarray(w2[:, :12]), padding=1))]
    out = {}
    for act, stages in (("crelu", crelu_st), ("relu", relu_st)):
        fwd = deep_forward(x, stages, act)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NonInjectiveWarning)
            res = invert_deep(fwd.last, fwd.switches, stages, x.shape, act, certify="dense")
        out[act] = (np.linalg.norm(res.x - x) / np.linalg.norm(x), res.all_frames)
    assert out["crelu"][1] is True and out["crelu"][0] < 1e-8
    assert out["relu"][1] is False and out["relu"][0] > 1e-2


@given(pooled_cases())
def test_column_norms_match_the_sparse_matrix(case):
    sel, _, _ = _selection(case)
    layer, x = case[0], case[1]
    exact = np.sqrt(np.asarray(sel.sparse().multiply(sel.sparse()).sum(0))).ravel()
    got = sel.column_norms()
    wraps = layer.padding_mode == "circular" and (layer.kernel_size[0] > x.shape[1]
                                                   or layer.kernel_size[1] > x.shape[2])
    if not wraps:  # documented exception: a tap wrapping onto a coordinate already covered
        assert np.allclose(got, exact, rtol=1e-12, atol=1e-14)
    assert np.array_equal(got == 0, exact == 0) or wraps


def test_jacobi_and_zero_windows_near_black():
    rng = np.random.default_rng(12)
    layer = ConvLayer(_bank(rng, 16, 3, 3), padding=1)
    x = rng.random((3, 20, 20))
    x[:, :, :8] = 0.0  # a black region: coordinates next to it are measured unevenly
    f, s = crelu_maxpool(x, layer, 2)
    kw = dict(solver="lsmr", certify=False, atol=1e-12, btol=1e-12, on_non_injective="ignore")
    runs = {(pre, zw): invert_crelu_maxpool(f, s, layer, x.shape, 2, precondition=pre,
                                            zero_windows=zw, **kw)
            for pre in ("none", "jacobi") for zw in (False, True)}
    a, b = runs["none", False], runs["jacobi", False]
    assert b.stopping["preconditioner"].startswith("jacobi")
    assert a.stopping["preconditioner"] == "none"
    # paper's measurements: black pixels away from the edge are untouched and come back 0
    assert np.abs(b.x[:, :, :4]).max() == 0.0 and np.abs(a.x[:, :, :4]).max() == 0.0
    for r in runs.values():
        assert np.linalg.norm(r.x - x) / np.linalg.norm(x) < 1e-6
    assert b.iterations < a.iterations
    # zero windows measure the black region: every coordinate is determined, the set is a
    # frame (dense SVD), and LSMR needs fewer iterations than with the paper's measurements
    sel0 = selection(f, s, layer, x.shape, 2, zero_windows=False)
    sel1 = selection(f, s, layer, x.shape, 2)
    assert sel1.n_zero_window > 0 and sel0.n_zero_window == 0
    assert np.all(sel1.column_norms() > 0) and not np.all(sel0.column_norms() > 0)
    assert sel1.frame_bounds("dense").injective and not sel0.frame_bounds("dense").injective
    assert np.allclose(sel1.values[sel1.zero_window], 0.0)
    assert np.abs(sel1.operator().matvec(x.ravel())[sel1.zero_window]).max() == 0.0
    assert runs["jacobi", True].iterations < b.iterations


def test_zero_windows_are_crelu_only_and_exact():
    rng = np.random.default_rng(14)
    layer = ConvLayer(_bank(rng, 8, 1, 3), padding=1)
    x = rng.standard_normal((1, 10, 10))
    x[:, 3:9, 3:9] = 0.0
    f, s = crelu_maxpool(x, layer, 2, "relu")
    assert selection(f, s, layer, x.shape, 2, "relu").n_zero_window == 0
    f, s = crelu_maxpool(x, layer, 2)
    sel = selection(f, s, layer, x.shape, 2)
    assert sel.n_zero_window > 0 and sel.n_zero_window % 4 == 0
    # negative control: a window with one non-zero half is not a zero window
    f2 = f.copy()
    k, i, j = np.argwhere((f[:8] == 0) & (f[8:] == 0))[0]
    f2[k, i, j] = 0.5
    assert selection(f2, s, layer, x.shape, 2).n_zero_window == sel.n_zero_window - 4


def test_jacobi_is_not_the_projection_on_a_non_frame_so_auto_leaves_it_off():
    rng = np.random.default_rng(13)
    layer = ConvLayer(_bank(rng, 1, 1, 3), padding=1)  # 2 values per 4 unknowns: no frame
    x = rng.standard_normal((1, 12, 12))
    f, s = crelu_maxpool(x, layer, 2)
    sel = selection(f, s, layer, x.shape, 2)
    proj = np.linalg.pinv(sel.dense()) @ sel.values
    kw = dict(solver="lsmr", certify="dense", atol=1e-14, btol=1e-14, on_non_injective="ignore")
    auto = invert_crelu_maxpool(f, s, layer, x.shape, 2, **kw)
    jac = invert_crelu_maxpool(f, s, layer, x.shape, 2, precondition="jacobi", **kw)
    assert auto.is_frame is False and auto.stopping["preconditioner"] == "none"
    assert np.allclose(auto.x.ravel(), proj, atol=1e-8)
    assert not np.allclose(jac.x.ravel(), proj, atol=1e-4)  # another least-squares solution
    assert np.allclose(sel.operator().matvec(jac.x.ravel()), sel.values, atol=1e-8)
    with pytest.raises(ValueError, match="precondition"):
        invert_crelu_maxpool(f, s, layer, x.shape, 2, precondition="ilu")


def test_solver_environment_restores_and_nests():
    from verify.deep import solver_environment

    with solver_environment():
        with solver_environment():
            pass
        y = np.ones(10**6).sum()  # allocations still work inside
    assert y == 10**6


# Killers of the mutants that survived the seed-1 mutation sample (docs/dev/mutation.md).


def _second_extreme_switches(x, layer, pool=2):
    """Features of `x` read at the wrong switches: the second-largest (positive channel)
    and second-smallest (negative channel) response of each window, so that every value
    is exactly a response of `x` but no switch is an extreme of its window. Also returns
    the smallest gap, over the windows, between the extreme and the value read."""
    z = np.asarray(layer.forward(x), dtype=np.float64)           # (K, H, W)
    k, h, w = z.shape
    hp, wp = h // pool, w // pool
    win = (z[:, :hp * pool, :wp * pool].reshape(k, hp, pool, wp, pool)
           .transpose(0, 1, 3, 2, 4).reshape(k, hp, wp, pool * pool))
    order = np.argsort(win, axis=-1)
    srt = np.take_along_axis(win, order, axis=-1)

    def flat(local):                    # window-local index -> index into the H x W map
        di, dj = np.divmod(local, pool)
        return ((np.arange(hp)[:, None] * pool + di) * w + np.arange(wp)[None, :] * pool + dj)

    f = np.concatenate([np.maximum(srt[..., -2], 0.0), np.maximum(-srt[..., 1], 0.0)])
    s = np.concatenate([flat(order[..., -2]), flat(order[..., 1])])
    gap = min((srt[..., -1] - srt[..., -2]).min(), (srt[..., 1] - srt[..., 0]).min())
    return f, s.astype(np.int64), float(gap / np.abs(z).max())


def test_values_consistent_with_x_at_wrong_switches_are_caught_by_the_switch_check():
    """The residual check cannot see switches that are wrong but consistent (every value a
    response of x at its switch): the switch check must, with its documented slack of
    2 cond max(rel, tol) times the peak response, and `on_inconsistent="raise"` must raise
    InconsistentFeaturesError for it."""
    from theory.checks import InconsistentFeaturesError

    rng = np.random.default_rng(20)
    layer = ConvLayer(_bank(rng, 18, 1, 3), padding=1)
    x = rng.standard_normal((1, 6, 6))
    f, s, gap = _second_extreme_switches(x, layer)
    assert gap > 1e-6                   # every wrong switch misses its extreme by that much
    kw = dict(solver="dense", zero_windows=False)
    with pytest.warns(InconsistentFeaturesWarning, match="switch") as caught:
        res = invert_crelu_maxpool(f, s, layer, x.shape, 2, **kw)
    assert not any("not consistent" in str(c.message) for c in caught)  # values are consistent
    assert res.is_frame
    assert np.linalg.norm(res.x - x) / np.linalg.norm(x) <= recovery_tolerance(layer,
                                                                                res.frame_bounds)
    assert res.checks["relative_residual"] <= res.checks["residual_tolerance"]
    # brute force: every selected (non-zero) value sits at a non-extreme position
    assert res.checks["switch_violations"] == np.count_nonzero(f) == res.n_selected
    with pytest.raises(InconsistentFeaturesError, match="switch"):
        invert_crelu_maxpool(f, s, layer, x.shape, 2, on_inconsistent="raise", **kw)
    # negative control: the true switches of the same x give no violation
    ft, st = crelu_maxpool(x, layer, 2)
    good = invert_crelu_maxpool(ft, st, layer, x.shape, 2, on_inconsistent="raise", **kw)
    assert good.checks["switch_violations"] == 0


def test_lsmr_residual_tolerance_counts_the_taps_of_the_layer():
    """Without a certificate the LSMR path checks the residual against LSMR's guarantee
    alone (`theory.checks.lsmr_residual_tolerance`), whose rounding term grows with the
    n = C kh kw terms of each response (100 here, not 1)."""
    from theory.checks import lsmr_residual_tolerance
    from theory.solvers import solve_lsmr

    rng = np.random.default_rng(21)
    layer = ConvLayer(_bank(rng, 16, 4, 5), padding=2)
    x = rng.standard_normal((4, 8, 8))
    f, s = crelu_maxpool(x, layer, 2)
    res = invert_crelu_maxpool(f, s, layer, x.shape, 2, solver="lsmr", certify=False,
                               precondition="none", on_non_injective="ignore")
    assert res.solver == "lsmr-sparse" and res.converged
    sel = selection(f, s, layer, x.shape, 2)
    sol = solve_lsmr(sel.sparse(), sel.rhs, atol=1e-14, btol=1e-14,
                     maxiter=10 * min(sel.n_selected, sel.dim))  # the same (deterministic) run
    assert sol.iterations == res.iterations
    args = (1e-14, 1e-14, sol.a_norm_estimate, sol.x_norm_estimate,
            float(np.linalg.norm(sel.rhs)), sol.iterations)
    expect = lsmr_residual_tolerance(*args, taps=4 * 5 * 5)
    assert expect > 1.01 * lsmr_residual_tolerance(*args, taps=1)   # the count matters
    assert res.checks["residual_tolerance"] == pytest.approx(expect, rel=1e-12, abs=0)


def test_linear_inverse_with_given_bounds_is_scale_free_far_from_unit_scale():
    """`inverse="linear"` with user-given bounds (no `unit_lower`/`unit_upper`) on weights
    2^-70 (outside the normalisation range): the frame step is that of the unit-scale
    layer, by the oracle x' = 2/(a+b) W_x g with a, b from numpy's SVD."""
    from theory import FrameBounds

    rng = np.random.default_rng(22)
    w = _bank(rng, 12, 1, 3)
    x = rng.standard_normal((1, 6, 6))
    small = ConvLayer(np.ldexp(w, -70), padding=1)
    f, s = crelu_maxpool(x, small, 2)
    sel = selection(f, s, small, x.shape, 2)
    sv = np.linalg.svd(sel.dense(), compute_uv=False)
    given = FrameBounds(float(sv[-1] ** 2), float(sv[0] ** 2), True, "dense")
    assert given.unit_lower is None and given.unit_upper is None and given.injective
    res = invert_crelu_maxpool(f, s, small, x.shape, 2, "linear", bounds=given)
    assert res.solver == "frame-step"
    # the oracle at unit scale (powers of two scale exactly: same switches, values * 2^70)
    unit = ConvLayer(w, padding=1)
    fu, su = crelu_maxpool(x, unit, 2)
    assert np.array_equal(su, s) and np.array_equal(fu, np.ldexp(f, 70))
    su_sel = selection(fu, su, unit, x.shape, 2)
    a_mat = su_sel.dense()
    svu = np.linalg.svd(a_mat, compute_uv=False)
    a, b = svu[-1] ** 2, svu[0] ** 2
    expect = (2.0 / (a + b)) * a_mat.T @ su_sel.values
    assert np.allclose(res.x.ravel(), expect, rtol=0, atol=1e-12 * np.linalg.norm(expect))
    assert np.linalg.norm(res.x - x) / np.linalg.norm(x) <= (b - a) / (b + a) + 1e-12


def test_warm_start_of_a_batch_is_one_start_per_input():
    """x0 of shape (N, *input_shape) warm-starts each input of a batch from its own start
    (the same result as inverting that input alone from it); a start of one input's shape
    for a batch of 2 is refused, naming both shapes."""
    rng = np.random.default_rng(23)
    layer = ConvLayer(_bank(rng, 16, 1, 3), padding=1)
    xb = rng.standard_normal((2, 1, 6, 6))
    f, s = crelu_maxpool(xb, layer, 2)
    x0 = xb + 1e-3 * rng.standard_normal(xb.shape)
    kw = dict(solver="cgls", on_non_injective="ignore")
    res = invert_crelu_maxpool(f, s, layer, (1, 6, 6), 2, x0=x0, **kw)
    assert len(res) == 2 and res.x.shape == xb.shape
    for i, r in enumerate(res):
        one = invert_crelu_maxpool(f[i], s[i], layer, (1, 6, 6), 2, x0=x0[i], **kw)
        assert np.array_equal(r.x, one.x) and r.iterations == one.iterations
        assert r.is_frame and np.linalg.norm(r.x - xb[i]) / np.linalg.norm(xb[i]) < 1e-9
    with pytest.raises(ValueError, match=r"x0 has shape \(1, 6, 6\); expected \(2, 1, 6, 6\)"):
        invert_crelu_maxpool(f, s, layer, (1, 6, 6), 2, x0=x0[0], **kw)


# Killers of the mutants that survived the seed-1 mutation sample (docs/dev/mutation.md).

def test_pooled_features_that_are_not_arrays_or_not_finite_are_refused_by_name():
    layer = ConvLayer(np.ones((2, 1, 3, 3)), padding=1)
    x = np.ones((1, 4, 4))
    f, s = crelu_maxpool(x, layer, 2)
    with pytest.raises(TypeError, match=r"^features must be a numpy array or torch tensor, "
                                        r"got list$"):
        selection(f.tolist(), s, layer, x.shape)
    bad = f.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"^features contains 1 NaN or Inf value\(s\)$"):
        selection(bad, s, layer, x.shape)


def test_negative_features_are_counted_in_the_error():
    """The message counts the negative values only, not the small non-negative ones."""
    rng = np.random.default_rng(30)
    layer = ConvLayer(_bank(rng, 4, 1, 3), padding=1)
    x = rng.random((1, 6, 6))
    f, s = crelu_maxpool(x, layer, 2)
    f = f.copy()
    f[0, 0, 0], f[1, 0, 0], f[2, 0, 0], f[3, 0, 0] = -0.25, -3.0, 0.5, 0.0
    assert int((f < 0).sum()) == 2 and int(((f >= 0) & (f < 1)).sum()) >= 2
    with pytest.raises(ValueError, match=r"^features contain 2 negative value\(s\); pooled "
                                         r"crelu features are non-negative$"):
        selection(f, s, layer, x.shape)


def test_pooled_features_of_lower_precision_are_converted_to_float64_exactly():
    """float32 arrays and bfloat16 tensors (a half-precision model's features) are checked
    and returned as float64 with the same values; a bfloat16 tensor has no numpy form."""
    from theory.selection import validate_pooled

    rng = np.random.default_rng(31)
    layer = ConvLayer(_bank(rng, 4, 1, 3), padding=1)
    x = rng.random((1, 6, 6))
    f, s = crelu_maxpool(x, layer, 2)
    f32 = f.astype(np.float32)
    out, sw, shape, pool = validate_pooled(f32, s, layer, x.shape, 2, "crelu")
    assert out.dtype == np.float64 and np.array_equal(out, f32.astype(np.float64))
    assert sw.dtype == np.int64 and shape == (1, 6, 6) and pool == 2
    bf = torch.from_numpy(f).to(torch.bfloat16)
    out, *_ = validate_pooled(bf, torch.from_numpy(s), layer, x.shape, 2, "crelu")
    as64 = bf.to(torch.float64).numpy()
    assert out.dtype == np.float64 and np.array_equal(out, as64)
    sel = selection(bf, torch.from_numpy(s), layer, x.shape)
    ref = selection(as64, s, layer, x.shape)
    assert sel.values.dtype == np.float64 and np.array_equal(sel.values, ref.values)
    assert np.array_equal(sel.position, ref.position) and np.array_equal(sel.sign, ref.sign)


def test_auto_bounds_method_leaves_shift_invert_above_the_sparse_limit():
    """`shift-invert` while n * taps <= SPARSE_LIMIT, `iterative` from one measurement more
    (ReLU features, so no zero-window rows: n is the number of non-zero values)."""
    from theory.selection import SPARSE_LIMIT

    layer = ConvLayer(np.ones((40, 8, 5, 5)), padding=2)
    shape = (8, 64, 64)                               # D = 32768: above the dense range
    taps = 8 * 5 * 5
    n_max = SPARSE_LIMIT // taps
    k, ho, wo = layer.output_shape(shape)
    hp, wp = ho // 2, wo // 2
    assert k * hp * wp > n_max and 1024 < 8 * 64 * 64 <= 200_000
    # every switch at the top-left of its 2x2 window
    s = np.broadcast_to(2 * np.arange(hp)[:, None] * wo + 2 * np.arange(wp)[None, :],
                        (k, hp, wp)).astype(np.int64)
    for n, want in ((n_max, "shift-invert"), (n_max + 1, "iterative")):
        f = np.zeros((k, hp, wp))
        f.reshape(-1)[:n] = 1.0
        sel = selection(f, s, layer, shape, activation="relu")
        assert sel.n_selected == n and sel.auto_bounds_method() == want


def test_banded_bounds_of_a_circular_selection_are_refused_naming_the_padding():
    rng = np.random.default_rng(32)
    layer = ConvLayer(_bank(rng, 4, 1, 3), padding=1, padding_mode="circular")
    x = rng.random((1, 6, 6))
    f, s = crelu_maxpool(x, layer, 2)
    sel = selection(f, s, layer, x.shape)
    with pytest.raises(ValueError, match=r"method='banded' needs zero padding \(circular"):
        sel.frame_bounds("banded")


def test_residual_of_a_float32_layer_is_float64():
    """The a-posteriori check returns float64 responses whatever the layer's dtype (the
    float32 conv's values, exactly)."""
    rng = np.random.default_rng(33)
    layer = ConvLayer(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), padding=1)
    x = rng.random((1, 6, 6))
    f, s = crelu_maxpool(x, layer, 2)
    r, z = selection(f, s, layer, x.shape).residual(x)
    assert r.dtype == np.float64 and z.dtype == np.float64
    assert np.array_equal(z, np.asarray(layer.forward(x), dtype=np.float64))


# Killers of the mutants that survived the seed-2 mutation sample (docs/dev/mutation.md).


def test_the_switch_check_says_the_switches_are_not_those_of_the_features():
    """The switch check's message names the problem in words (wrong but consistent
    switches, the case of the test above)."""
    from theory.checks import InconsistentFeaturesError

    rng = np.random.default_rng(20)
    layer = ConvLayer(_bank(rng, 18, 1, 3), padding=1)
    x = rng.standard_normal((1, 6, 6))
    f, s, _ = _second_extreme_switches(x, layer)
    with pytest.raises(InconsistentFeaturesError,
                       match="the switches are not those of these features"):
        invert_crelu_maxpool(f, s, layer, x.shape, 2, solver="dense", zero_windows=False,
                             on_inconsistent="raise")


def test_dense_solver_accepts_d_at_the_limit_and_refuses_d_above_it(monkeypatch):
    """solver="dense" refuses D > DENSE_LIMIT, so D == DENSE_LIMIT is solved (the limit
    lowered to this small D so the boundary is cheap to reach)."""
    import theory.pooling as pooling

    rng = np.random.default_rng(0)
    layer = ConvLayer(_bank(rng, 9, 1, 3), padding=1)
    x = rng.random((1, 6, 6))
    f, s = crelu_maxpool(x, layer, 2)
    monkeypatch.setattr(pooling, "DENSE_LIMIT", x.size)
    res = invert_crelu_maxpool(f, s, layer, x.shape, solver="dense")
    assert res.solver == "dense" and np.allclose(res.x, x, rtol=0, atol=1e-10)
    monkeypatch.setattr(pooling, "DENSE_LIMIT", x.size - 1)
    with pytest.raises(ValueError, match=f"refuses D = {x.size} > {x.size - 1}"):
        invert_crelu_maxpool(f, s, layer, x.shape, solver="dense")


def test_a_certified_non_frame_is_explained_by_its_bounds():
    """With a certificate, the non-frame message gives its lower and upper bound and the
    method (not a count of untouched values, which is the uncertified explanation)."""
    w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
    few = ConvLayer(w[:2].reshape(2, 1, 3, 3), padding=1)      # 2 filters: not a frame
    x = np.random.default_rng(1).random((1, 6, 6))
    f, s = crelu_maxpool(x, few, 2)
    with pytest.raises(NonInjectiveError, match=r"lower bound .*, upper .* \(dense\)") as err:
        invert_crelu_maxpool(f, s, few, x.shape, certify="dense", on_non_injective="raise")
    assert "untouched" not in str(err.value) and "no selected filter" not in str(err.value)


def test_direct_solves_report_zero_iterations():
    """The dense least squares, the one frame step and the empty selection are direct:
    they take no iterations (control: CGLS reports its positive count)."""
    rng = np.random.default_rng(0)
    layer = ConvLayer(_bank(rng, 9, 1, 3), padding=1)
    x = rng.random((1, 6, 6))
    f, s = crelu_maxpool(x, layer, 2)
    dense = invert_crelu_maxpool(f, s, layer, x.shape, solver="dense")
    linear = invert_crelu_maxpool(f, s, layer, x.shape, inverse="linear")
    empty = invert_crelu_maxpool(np.zeros_like(f), s, layer, x.shape, zero_windows=False,
                                 on_non_injective="ignore")
    assert (dense.solver, linear.solver, empty.solver) == ("dense", "frame-step", "none")
    assert dense.iterations == linear.iterations == empty.iterations == 0
    cgls = invert_crelu_maxpool(f, s, layer, x.shape, solver="cgls")
    assert cgls.iterations > 0


def test_on_non_frame_is_the_deprecated_name_of_on_non_injective():
    """The deprecation warning names both keywords; the old keyword still acts; given
    both with different values, the TypeError names both."""
    w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
    few = ConvLayer(w[:2].reshape(2, 1, 3, 3), padding=1)
    x = np.random.default_rng(1).random((1, 6, 6))
    f, s = crelu_maxpool(x, few, 2)
    with pytest.warns(DeprecationWarning,
                      match="the keyword 'on_non_frame' is deprecated; use 'on_non_injective'"):
        with pytest.raises(NonInjectiveError):
            invert_crelu_maxpool(f, s, few, x.shape, on_non_frame="raise")
    with pytest.warns(DeprecationWarning, match="'on_non_frame'"):
        with pytest.raises(TypeError, match="on_non_frame='ignore' and on_non_injective='raise'"):
            invert_crelu_maxpool(f, s, few, x.shape, on_non_frame="ignore",
                                 on_non_injective="raise")


# Killers of the mutants that survived the seed-3 mutation sample (docs/dev/mutation.md).


def test_a_selection_records_its_activation_and_the_non_frame_warning_names_it():
    """`MaxPoolSelection.activation` is the activation the features came from, and the
    non-frame warning of the pooled inverse says which (2 filters: not a frame)."""
    w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
    few = ConvLayer(w[:2].reshape(2, 1, 3, 3), padding=1)
    x = np.random.default_rng(1).random((1, 6, 6))
    for act in ("crelu", "relu"):
        f, s = crelu_maxpool(x, few, 2, act)
        assert selection(f, s, few, x.shape, 2, act).activation == act
        with pytest.warns(NonInjectiveWarning, match=rf"\({act} \+ 2x2 max-pooling\)"):
            invert_crelu_maxpool(f, s, few, x.shape, 2, activation=act, solver="dense")


def test_a_layer_that_is_not_a_conv_layer_is_refused_naming_its_type():
    x = np.ones((1, 4, 4))
    layer = ConvLayer(np.ones((2, 1, 3, 3)), padding=1)
    f, s = crelu_maxpool(x, layer, 2)
    with pytest.raises(TypeError, match=r"^layer must be a theory\.ConvLayer, got Conv2d$"):
        selection(f, s, torch.nn.Conv2d(1, 2, 3, padding=1), x.shape)


def test_linear_inverse_far_below_unit_scale_uses_the_unit_scale_bounds():
    """Weights 2^-600: the frame bounds of W_x (about 2^-1200) underflow to 0, and only
    the scale-free `unit_lower`/`unit_upper` of the normalised selection keep a. The
    frame step is then that of the unit-scale layer, x' = 2/(a+b) W_x g with a, b from
    numpy's SVD (oracle), and obeys the first-iterate bound (b-a)/(b+a)."""
    rng = np.random.default_rng(22)
    w = _bank(rng, 12, 1, 3)
    x = rng.standard_normal((1, 6, 6))
    tiny = ConvLayer(np.ldexp(w, -600), padding=1)
    f, s = crelu_maxpool(x, tiny, 2)
    res = invert_crelu_maxpool(f, s, tiny, x.shape, 2, "linear", certify="dense")
    fb = res.frame_bounds
    assert res.solver == "frame-step" and fb.lower == 0.0 and fb.unit_lower > 0
    unit = ConvLayer(w, padding=1)
    fu, su = crelu_maxpool(x, unit, 2)      # powers of two scale exactly: same switches
    assert np.array_equal(su, s) and np.array_equal(fu, np.ldexp(f, 600))
    unit_sel = selection(fu, su, unit, x.shape, 2)
    a_mat = unit_sel.dense()
    sv = np.linalg.svd(a_mat, compute_uv=False)
    a, b = sv[-1] ** 2, sv[0] ** 2
    assert a > 0.1 * b                      # a dropped would change the step visibly
    expect = (2.0 / (a + b)) * a_mat.T @ unit_sel.values
    assert np.allclose(res.x.ravel(), expect, rtol=0, atol=1e-12 * np.linalg.norm(expect))
    assert np.linalg.norm(res.x - x) / np.linalg.norm(x) <= (b - a) / (b + a) + 1e-12


def test_lsmr_stopping_record_names_the_operator_it_iterated_with(monkeypatch):
    """`stopping["solver"]` of an LSMR solve says which form of W_x^T it ran on: the
    sparse matrix, or (above SPARSE_LIMIT) the matrix-free operator, as `solver` does."""
    import theory.pooling as tp

    rng = np.random.default_rng(8)
    layer = ConvLayer(_bank(rng, 9, 1, 3), padding=1)
    x = rng.random((1, 6, 6))
    f, s = crelu_maxpool(x, layer, 2)
    kw = dict(solver="lsmr", certify=False, on_non_injective="ignore")
    res = invert_crelu_maxpool(f, s, layer, x.shape, 2, **kw)
    assert res.solver == "lsmr-sparse"
    assert res.stopping["solver"] == "scipy.sparse.linalg.lsmr (lsmr-sparse)"
    monkeypatch.setattr(tp, "SPARSE_LIMIT", 10)
    res = invert_crelu_maxpool(f, s, layer, x.shape, 2, **kw)
    assert res.solver == "lsmr-operator"
    assert res.stopping["solver"] == "scipy.sparse.linalg.lsmr (lsmr-operator)"


# Killers of the mutants that survived the seed-4 mutation sample (docs/dev/mutation.md).


def test_uncertified_dense_solve_takes_the_residual_tolerance_from_its_exact_spectrum():
    """certify=False, the dense solver, a frame: without bounds, the residual tolerance is
    `rounding_residual_tolerance(C kh kw, K, cond)` with cond = sigma_max / sigma_min of
    W_x^T, the spectrum the dense solve computed anyway (oracle: numpy's SVD of the dense
    matrix; the two LAPACK SVDs agree to a few cond * eps relative, allowed 64 cond eps)."""
    from theory.checks import rounding_residual_tolerance

    rng = np.random.default_rng(31)
    layer = ConvLayer(rng.standard_normal((9, 1, 3, 3)), padding=1)   # not orthonormal
    x = rng.random((1, 6, 6))
    f, s = crelu_maxpool(x, layer, 2)
    res = invert_crelu_maxpool(f, s, layer, x.shape, 2, solver="dense", certify=False)
    assert res.solver == "dense" and res.frame_bounds is None
    sv = np.linalg.svd(selection(f, s, layer, x.shape, 2).dense(), compute_uv=False)
    cond = float(sv[0] / sv[-1])
    assert 1.5 < cond < 1e6                  # a finite cond that is not 1: it shows
    expect = rounding_residual_tolerance(9, 9, cond)
    assert res.checks["residual_tolerance"] == pytest.approx(expect, rel=64 * cond * EPS, abs=0)
    assert res.relative_residual <= expect


def test_the_frame_step_records_the_bounds_it_used():
    """`inverse="linear"`: the stopping record names the one frame-algorithm step and the
    bounds a, b of its step size 2 / (a + b), those of the result's certificate."""
    rng = np.random.default_rng(0)
    layer = ConvLayer(_bank(rng, 9, 1, 3), padding=1)
    x = rng.random((1, 6, 6))
    f, s = crelu_maxpool(x, layer, 2)
    res = invert_crelu_maxpool(f, s, layer, x.shape, 2, "linear", certify="dense")
    fb = res.frame_bounds
    assert res.solver == "frame-step" and fb.lower > 0
    assert res.stopping == {"solver": "one frame-algorithm step", "a": fb.lower, "b": fb.upper}


def test_given_bounds_are_used_as_given_and_not_recomputed():
    """`bounds=` is used as given: valid but loose bounds a' = a/2, b' = 2b (a, b from numpy's
    SVD of W_x^T) are the result's certificate and set the frame step 2/(a'+b') W_x g
    (oracle: the dense matrix), which obeys the first-iterate bound (b'-a')/(b'+a') and
    differs from the step with the tight bounds."""
    from theory import FrameBounds

    rng = np.random.default_rng(32)
    layer = ConvLayer(_bank(rng, 12, 1, 3), padding=1)
    x = rng.standard_normal((1, 6, 6))
    f, s = crelu_maxpool(x, layer, 2)
    sel = selection(f, s, layer, x.shape, 2)
    w = sel.dense()
    sv = np.linalg.svd(w, compute_uv=False)
    a, b = float(sv[-1] ** 2) / 2, float(sv[0] ** 2) * 2
    given = FrameBounds(a, b, True, "given")
    res = invert_crelu_maxpool(f, s, layer, x.shape, 2, "linear", bounds=given)
    assert res.frame_bounds is given and res.stopping["a"] == a and res.stopping["b"] == b
    expect = (2.0 / (a + b)) * w.T @ sel.values
    tight = (2.0 / (2 * a + b / 2)) * w.T @ sel.values     # the step with the SVD's a, b
    assert np.linalg.norm(expect - tight) > 0.1 * np.linalg.norm(expect)
    assert np.allclose(res.x.ravel(), expect, rtol=0, atol=1e-12 * np.linalg.norm(expect))
    assert np.linalg.norm(res.x - x) / np.linalg.norm(x) <= (b - a) / (b + a) + 1e-12


def test_uncertified_non_frame_with_fewer_values_than_unknowns_is_reported():
    """certify=False: fewer selected values than unknowns (ReLU, 2 filters on 1 x 6 x 6:
    at most 2 * 9 = 18 < 36) decide it without bounds: the result is not a frame and the
    warning says n < D."""
    w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
    few = ConvLayer(w[:2].reshape(2, 1, 3, 3), padding=1)
    x = np.random.default_rng(1).random((1, 6, 6))
    f, s = crelu_maxpool(x, few, 2, "relu")
    n = int((f > 0).sum())
    assert 0 < n < 36
    with pytest.warns(NonInjectiveWarning, match=rf"{n} < 36 measurements"):
        res = invert_crelu_maxpool(f, s, few, x.shape, 2, activation="relu", certify=False)
    assert res.is_frame is False and res.frame_bounds is None


def test_uncertified_non_frame_with_untouched_input_values_is_reported():
    """certify=False with more values than unknowns: an input value that no selected filter
    touches (a zero column of W_x^T) still decides it. A black 5 x 5 corner and no zero
    windows leave the pixels of the 3 x 3 corner untouched; the warning counts them
    (oracle: the zero columns of the dense matrix) and the result is not a frame."""
    rng = np.random.default_rng(33)
    layer = ConvLayer(rng.standard_normal((16, 1, 3, 3)), padding=1)
    x = rng.random((1, 8, 8))
    x[:, :5, :5] = 0.0
    f, s = crelu_maxpool(x, layer, 2)
    sel = selection(f, s, layer, x.shape, 2, zero_windows=False)
    untouched = int(np.sum(np.abs(sel.dense()).sum(axis=0) == 0))
    assert sel.n_selected >= sel.dim and untouched >= 9
    with pytest.warns(NonInjectiveWarning,
                      match=rf": {untouched} input value\(s\) no selected filter touches;"):
        res = invert_crelu_maxpool(f, s, layer, x.shape, 2, certify=False, zero_windows=False)
    assert res.is_frame is False


def test_the_zero_image_is_recovered_with_relative_residual_zero_and_no_warning():
    """x = 0: every pooled value is 0, only the zero windows measure (g = 0, n > 0). The
    reconstruction is 0 and its relative residual is 0 (0 / 0 defined as 0: nothing is
    inconsistent), so no warning is raised."""
    rng = np.random.default_rng(0)
    layer = ConvLayer(_bank(rng, 9, 1, 3), padding=1)
    x = np.zeros((1, 6, 6))
    f, s = crelu_maxpool(x, layer, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = invert_crelu_maxpool(f, s, layer, x.shape, 2)
    assert res.n_selected > 0 and res.n_zero_window == res.n_selected and res.is_frame
    assert np.array_equal(res.x, x)
    assert res.relative_residual == 0.0 and res.checks["relative_residual"] == 0.0


def test_a_warm_start_for_lsmr_is_refused_saying_which_solvers_take_one():
    layer = ConvLayer(_bank(np.random.default_rng(0), 9, 1, 3), padding=1)
    x = np.random.default_rng(1).random((1, 6, 6))
    f, s = crelu_maxpool(x, layer, 2)
    with pytest.raises(ValueError, match=r"^x0 \(a warm start\) needs solver='cgls' or "
                                         r"'auto'; LSMR starts at 0$"):
        invert_crelu_maxpool(f, s, layer, x.shape, 2, solver="lsmr", x0=x)


# Killers of the mutants that survived the seed-5 mutation sample (docs/dev/mutation.md).
def _uneven_pooled_case():
    """A pooled CReLU case whose filters have very different norms (uneven column norms)."""
    rng = np.random.default_rng(11)
    w = rng.standard_normal((6, 2, 3, 3)) * rng.uniform(0.2, 3.0, (6, 1, 1, 1))
    layer = ConvLayer(w, padding=1)
    x = rng.random((2, 6, 6))
    f, s = crelu_maxpool(x, layer, 2)
    return layer, x, f, s


def test_lsmr_stops_at_the_maxiter_it_was_given():
    """`maxiter` reaches LSMR: a cap of 3 stops it after 3 iterations, not converged, and
    `on_not_converged="raise"` says so (uncapped, the same system needs > 100 iterations)."""
    from theory.checks import NotConvergedError

    layer, x, f, s = _uneven_pooled_case()
    kw = dict(solver="lsmr", certify=False, on_non_injective="ignore")
    full = invert_crelu_maxpool(f, s, layer, x.shape, 2, **kw)
    assert full.converged and full.iterations > 10
    capped = invert_crelu_maxpool(f, s, layer, x.shape, 2, maxiter=3, on_not_converged="ignore",
                                  **kw)
    assert capped.iterations == 3 and not capped.converged
    assert capped.stopping["maxiter"] == 3
    with pytest.raises(NotConvergedError, match="maxiter"):
        invert_crelu_maxpool(f, s, layer, x.shape, 2, maxiter=3, on_not_converged="raise", **kw)


def test_jacobi_scale_spread_is_the_spread_of_the_selected_column_norms():
    """`stopping["scale_spread"]` of a Jacobi-preconditioned solve is max/min of the column
    norms of W_x^T, the oracle built from the layer's dense matrix (its selected signed rows)."""
    from theory.testing import reference_matrix

    layer, x, f, s = _uneven_pooled_case()
    sel = selection(f, s, layer, x.shape, 2)
    w_sel = reference_matrix(layer, x.shape)[sel._rows] * np.asarray(sel.sign)[:, None]
    cn = np.linalg.norm(w_sel, axis=0)
    assert cn.min() > 0
    spread = cn.max() / cn.min()
    assert spread > 2.0                       # uneven: a spread of 1 would be visible
    res = invert_crelu_maxpool(f, s, layer, x.shape, 2, solver="lsmr", precondition="jacobi",
                               certify=False)
    assert res.stopping["preconditioner"].startswith("jacobi")
    assert res.stopping["scale_spread"] == pytest.approx(spread, rel=1e-12, abs=0)
