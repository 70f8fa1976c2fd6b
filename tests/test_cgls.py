"""CGLS on the im2col operator: the fast pooled inverse against the dense oracle.

Oracles: the dense matrix of the selected rows (theory.testing.reference_matrix, numpy loops
from the definition) with numpy's SVD-based least squares, and the true input for consistent
data. Every guarantee has a control that fails when it is tightened or when a bug is planted.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from theory import ConvLayer, conv_crelu_maxpool, invert_crelu_maxpool, selection
from theory.checks import (
    InconsistentFeaturesWarning,
    NotConvergedWarning,
    cgls_residual_tolerance,
)
from theory.solvers import solve_cgls
from theory.testing import orthonormal_bank, reference_matrix

EPS = float(np.finfo(np.float64).eps)


def _case(seed=0, k=16, c=3, h=12, w=12, kernel=3, stride=1, padding=1, pool=2,
          mode="zeros", dilation=1):
    rng = np.random.default_rng(seed)
    x = rng.random((c, h, w))
    layer = ConvLayer(orthonormal_bank(rng, k, c, kernel), stride=stride, padding=padding,
                      padding_mode=mode, dilation=dilation)
    f, s = conv_crelu_maxpool(x, layer, pool)
    sel = selection(f, s, layer, x.shape, pool)
    a = reference_matrix(layer, x.shape)[sel._rows] * sel.sign[:, None]
    return x, layer, f, s, sel, a


GEOMETRIES = [dict(), dict(stride=2, h=14, w=14, k=24, pool=1), dict(padding=0, h=14, w=10),
              dict(mode="circular"), dict(mode="circular", stride=2, h=12, w=10, k=24, pool=1),
              dict(kernel=2, dilation=2, padding=1, k=30), dict(c=1, k=12, pool=3, h=12, w=12)]


def _scale(sel):
    cn = sel.column_norms()
    return np.where(cn > 0, 1.0 / np.where(cn > 0, cn, 1.0), 1.0)


@pytest.mark.parametrize("geo", GEOMETRIES)
@pytest.mark.parametrize("precision", ["float64", "mixed"])
def test_cgls_matches_dense_least_squares(geo, precision):
    x, layer, f, s, sel, a = _case(**geo)
    sv = np.linalg.svd(a, compute_uv=False)
    assert a.shape[0] >= a.shape[1] and sv[-1] > 1e-6 * sv[0], "the case must be a frame"
    cond = sv[0] / sv[-1]
    oracle = np.linalg.lstsq(a, sel.rhs, rcond=None)[0]
    tol = 1e-12
    sol = solve_cgls(sel.rows_operator.linear_operator, sel.rhs, atol=tol, btol=tol,
                     maxiter=2000, column_scale=_scale(sel), precision=precision,
                     a_norm=sel.abs_norm_bound())
    assert sol.converged and sol.stopping["istop"] == 1, sol.stopping
    rel = np.linalg.norm(a @ sol.x - sel.rhs) / np.linalg.norm(sel.rhs)
    # the stopping guarantee, evaluated independently (the oracle's matrix product)
    bound = cgls_residual_tolerance(tol, tol, sol.a_norm_estimate, sol.x_norm_estimate,
                                    np.linalg.norm(sel.rhs), sel._taps,
                                    abs_norm=sel.abs_norm_bound(),
                                    solution_norm=np.linalg.norm(sol.x))
    assert rel <= bound
    # theorem (a): error <= cond * residual, plus the oracle's own rounding cond * sqrt(D) u
    err = np.linalg.norm(sol.x - oracle) / np.linalg.norm(oracle)
    assert err <= cond * (rel + 10 * np.sqrt(a.shape[1]) * EPS)
    assert np.linalg.norm(sol.x - x.ravel()) / np.linalg.norm(x) <= cond * bound * 1.01


def test_the_stopping_guarantee_is_tight_somewhere():
    """Negative control: the guarantee divided by 100 is violated for some tolerance (the
    bound is not vacuous); every stop satisfies the bound itself."""
    x, layer, f, s, sel, a = _case(seed=3)
    op, b = sel.rows_operator.linear_operator, sel.rhs
    ratios = []
    for tol in 10.0 ** -np.arange(2, 13):
        sol = solve_cgls(op, b, atol=0.0, btol=tol, maxiter=2000, column_scale=_scale(sel),
                         a_norm=sel.abs_norm_bound())
        rel = np.linalg.norm(a @ sol.x - b) / np.linalg.norm(b)
        bound = cgls_residual_tolerance(0.0, tol, sol.a_norm_estimate, sol.x_norm_estimate,
                                        np.linalg.norm(b), sel._taps,
                                        abs_norm=sel.abs_norm_bound(),
                                        solution_norm=np.linalg.norm(sol.x))
        assert sol.converged and rel <= bound
        ratios.append(rel / bound)
    assert max(ratios) > 0.01


def test_cond_estimate_lies_below_the_truth_and_near_it():
    x, layer, f, s, sel, a = _case(seed=1)
    scale = _scale(sel)
    sv = np.linalg.svd(a * scale, compute_uv=False)
    sol = solve_cgls(sel.rows_operator.linear_operator, sel.rhs, atol=1e-12, btol=1e-12,
                     maxiter=2000, column_scale=scale)
    true = sv[0] / sv[-1]
    assert 0.5 * true <= sol.cond_estimate <= true * (1 + 1e-6)


def test_iteration_cap_is_not_convergence():
    x, layer, f, s, sel, a = _case(seed=2)
    sol = solve_cgls(sel.rows_operator.linear_operator, sel.rhs, atol=1e-12, btol=1e-12,
                     maxiter=3)
    assert not sol.converged and sol.iterations == 3 and sol.stopping["istop"] == 7
    # the reported residual is the true one, not the recurrence's
    rel = np.linalg.norm(a @ sol.x - sel.rhs) / np.linalg.norm(sel.rhs)
    assert np.isclose(sol.stopping["relative_residual"], rel, rtol=1e-10)


def test_inconsistent_data_stop_on_the_least_squares_rule():
    """Rule 2 on data outside the range: converged to the least-squares solution (dense
    oracle), and the pooled inverse's residual check flags the data."""
    x, layer, f, s, sel, a = _case(seed=4)
    b = sel.rhs + 0.05 * np.random.default_rng(0).standard_normal(sel.rhs.size)
    sol = solve_cgls(sel.rows_operator.linear_operator, b, atol=1e-10, btol=1e-10,
                     maxiter=5000)
    assert sol.converged and sol.stopping["istop"] == 2
    ls = np.linalg.lstsq(a, b, rcond=None)[0]
    assert np.linalg.norm(sol.x - ls) / np.linalg.norm(ls) < 1e-6


def test_warm_start():
    x, layer, f, s, sel, a = _case(seed=5)
    op, b = sel.rows_operator.linear_operator, sel.rhs
    kw = dict(atol=1e-12, btol=1e-12, maxiter=2000, column_scale=_scale(sel))
    assert solve_cgls(op, b, x0=x.ravel(), **kw).iterations == 0
    part = solve_cgls(op, b, **{**kw, "maxiter": 15})
    warm = solve_cgls(op, b, x0=part.x, **kw)
    cold = solve_cgls(op, b, **kw)
    assert warm.converged and cold.converged and warm.iterations < cold.iterations


def test_bad_arguments_are_refused():
    x, layer, f, s, sel, a = _case()
    op, b = sel.rows_operator.linear_operator, sel.rhs
    with pytest.raises(ValueError, match="matvec32"):
        solve_cgls(a, b, atol=1e-10, btol=1e-10, maxiter=10, precision="mixed")
    with pytest.raises(ValueError, match="precision"):
        solve_cgls(op, b, atol=1e-10, btol=1e-10, maxiter=10, precision="half")
    with pytest.raises(ValueError, match="rows"):
        solve_cgls(op, b[:-1], atol=1e-10, btol=1e-10, maxiter=10)
    with pytest.raises(ValueError, match="x0"):
        solve_cgls(op, b, atol=1e-10, btol=1e-10, maxiter=10, x0=np.zeros(3))
    with pytest.raises(ValueError, match="maxiter"):
        solve_cgls(op, b, atol=1e-10, btol=1e-10, maxiter=-1)
    with pytest.raises(ValueError, match="precision"):
        invert_crelu_maxpool(f, s, layer, x.shape, 2, solver="cgls", precision="half")


# ---------------------------------------------------------------------------- the inverse
def test_auto_picks_cgls_above_the_dense_limit_and_checks_it(monkeypatch):
    from theory import pooling

    monkeypatch.setattr(pooling, "AUTO_DENSE_POOLED", 300)   # small cases, same code path
    rng = np.random.default_rng(6)
    x = rng.random((3, 12, 12))                         # D = 432 > 300
    layer = ConvLayer(orthonormal_bank(rng, 16, 3, 3), padding=1)
    f, s = conv_crelu_maxpool(x, layer)
    res = invert_crelu_maxpool(f, s, layer, x.shape, 2, certify="dense")
    assert res.solver == "cgls" and res.converged and res.is_frame
    assert res.relative_residual <= res.checks["residual_tolerance"]
    assert res.checks["switch_violations"] == 0
    assert np.linalg.norm(res.x - x) / np.linalg.norm(x) <= res.error_bound()
    assert res.stopping["preconditioner"].startswith("jacobi")
    xs = x[:, :8, :8]                                   # D = 192 <= 300: the dense solve
    fs, ss = conv_crelu_maxpool(xs, layer)
    assert invert_crelu_maxpool(fs, ss, layer, xs.shape, 2).solver == "dense"


def test_wrong_switches_are_flagged_by_the_independent_residual():
    x, layer, f, s, sel, a = _case(seed=7, h=16, w=16)
    _, ho, wo = layer.output_shape(x.shape)
    i, j = np.divmod(s, wo)
    bad = ((i // 2) * 2 + (1 - i % 2)) * wo + (j // 2) * 2 + (1 - j % 2)
    with pytest.warns(InconsistentFeaturesWarning, match="not consistent"):
        res = invert_crelu_maxpool(f, bad, layer, x.shape, 2, solver="cgls", certify=False,
                                   precondition="jacobi", atol=1e-10, btol=1e-10)
    assert res.relative_residual > 1e3 * res.checks["residual_tolerance"]
    good = invert_crelu_maxpool(f, s, layer, x.shape, 2, solver="cgls", certify=False,
                                precondition="jacobi", atol=1e-10, btol=1e-10)
    assert good.converged and good.relative_residual <= good.checks["residual_tolerance"]


def test_planted_bug_in_the_fast_operator_is_caught_by_the_independent_check():
    """A wrong forward map in the im2col operator (one tap's weights zeroed) makes CGLS
    converge to the wrong x with a small residual *under that operator*; the check, which
    recomputes the residual with the layer's own conv, flags it."""
    x, layer, f, s, sel, a = _case(seed=8, h=16, w=16)
    sel = selection(f, s, layer, x.shape, 2)
    wmat = sel.rows_operator.conv._wmat
    wmat[torch.float64][:, :3] = 0.0
    wmat[torch.float32][:, :3] = 0.0
    sol = solve_cgls(sel.rows_operator.linear_operator, sel.rhs, atol=1e-12, btol=1e-12,
                     maxiter=3000)
    r, _ = sel.residual(sol.x)
    assert np.linalg.norm(r) / np.linalg.norm(sel.rhs) > 1e-4


def test_not_converged_is_reported_and_the_residual_is_not_called_inconsistent():
    x, layer, f, s, sel, a = _case(seed=9, h=16, w=16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = invert_crelu_maxpool(f, s, layer, x.shape, 2, solver="cgls", certify=False,
                                   maxiter=2)
    kinds = {w.category for w in caught}
    assert NotConvergedWarning in kinds and InconsistentFeaturesWarning not in kinds
    assert not res.converged and "CGLS" in str([str(w.message) for w in caught])


@pytest.mark.parametrize("solver", ["cgls", "lsmr", "dense"])
def test_known_bias_only_shifts_the_values(solver):
    """Forward pass: torch's biased conv2d (independent of our code); the inverse with the
    bias recovers x; the negative control (bias ignored) is flagged as inconsistent."""
    rng = np.random.default_rng(10)
    x = rng.random((3, 10, 10))
    w = orthonormal_bank(rng, 16, 3, 3)
    beta = rng.normal(0.0, 0.3, 16)
    z = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), torch.from_numpy(beta),
                 padding=1)
    ref = torch.relu(torch.cat([F.max_pool2d(z, 2), F.max_pool2d(-z, 2)], 1))[0].numpy()
    layer = ConvLayer(w, padding=1)
    f, s = conv_crelu_maxpool(x, layer, 2, bias=beta)
    assert np.allclose(f, ref, rtol=0, atol=1e-14)
    kw = dict(solver=solver, certify="dense", atol=1e-12, btol=1e-12)
    res = invert_crelu_maxpool(f, s, layer, x.shape, 2, bias=beta, **kw)
    assert res.converged and res.is_frame
    assert np.linalg.norm(res.x - x) / np.linalg.norm(x) <= res.error_bound() + 1e-12
    with pytest.warns(InconsistentFeaturesWarning):
        wrong = invert_crelu_maxpool(f, s, layer, x.shape, 2, **kw)   # bias forgotten
    assert np.linalg.norm(wrong.x - x) / np.linalg.norm(x) > 1e-3
    assert wrong.relative_residual > 1e3 * wrong.checks["residual_tolerance"]


def test_bias_of_the_wrong_length_is_refused():
    x, layer, f, s, sel, a = _case()
    with pytest.raises(ValueError, match="one entry per filter"):
        invert_crelu_maxpool(f, s, layer, x.shape, 2, bias=np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        conv_crelu_maxpool(x, layer, 2, bias=np.full(16, np.nan))


# ---------------------------------------------------------------------------- stagnation
def test_stagnation_stops_at_the_rounding_floor_not_converged():
    """Rule 2 switched off (atol = 0) on inconsistent data: nothing can satisfy a rule, so
    CGLS stops on stagnation (code 9, not converged) long before its cap; the control with
    the stagnation stop disabled runs to the cap, and the same data with a reachable atol
    converge by rule 2 (the stop is not what makes inconsistent data fail)."""
    x, layer, f, s, sel, a = _case(seed=11)
    op = sel.rows_operator.linear_operator
    b = sel.rhs + 0.01 * np.random.default_rng(1).standard_normal(sel.rhs.size)
    kw = dict(btol=1e-12, maxiter=3000, column_scale=_scale(sel), a_norm=sel.abs_norm_bound())
    stuck = solve_cgls(op, b, atol=0.0, **kw)
    assert not stuck.converged and stuck.stopping["istop"] == 9 and stuck.iterations < 1000
    ls = np.linalg.lstsq(a, b, rcond=None)[0]   # it did stop at the least-squares solution
    assert np.linalg.norm(stuck.x - ls) / np.linalg.norm(ls) < 1e-8
    capped = solve_cgls(op, b, atol=0.0, stall_window=0, **{**kw, "maxiter": 1200})
    assert capped.stopping["istop"] == 7 and capped.iterations == 1200
    assert solve_cgls(op, b, atol=1e-10, **kw).stopping["istop"] == 2


def test_consistent_frames_do_not_stagnate():
    """Control: the stop never fires on a consistent frame down to btol = 1e-13 (every
    geometry, both precisions)."""
    for geo in GEOMETRIES:
        x, layer, f, s, sel, a = _case(**geo)
        for precision in ("float64", "mixed"):
            sol = solve_cgls(sel.rows_operator.linear_operator, sel.rhs, atol=0.0, btol=1e-13,
                             maxiter=3000, column_scale=_scale(sel), precision=precision,
                             a_norm=sel.abs_norm_bound())
            assert sol.stopping["istop"] == 1, (geo, precision, sol.stopping["reason"])


# ---------------------------------------------------------------------------- planted bugs
def test_planted_bug_truncated_solver_claiming_convergence_is_caught(monkeypatch):
    """A solver that stops after 5 iterations but claims convergence: the a-posteriori
    residual of the pooled inverse (the layer's own conv) flags the result."""
    from theory import pooling

    real = pooling.solve_cgls

    def truncated(*args, **kwargs):
        sol = real(*args, **{**kwargs, "maxiter": 5})
        return dataclasses.replace(sol, converged=True, stopping={
            **sol.stopping, "istop": 1, "reason": "(planted) claims rule 1"})

    monkeypatch.setattr(pooling, "solve_cgls", truncated)
    x, layer, f, s, sel, a = _case(seed=12, h=16, w=16)
    with pytest.warns(InconsistentFeaturesWarning, match="not consistent"):
        res = invert_crelu_maxpool(f, s, layer, x.shape, 2, solver="cgls", certify=False,
                                   precondition="jacobi", atol=1e-12, btol=1e-12)
    assert res.relative_residual > 1e3 * res.checks["residual_tolerance"]
    monkeypatch.setattr(pooling, "solve_cgls", real)   # control: the honest solver passes
    good = invert_crelu_maxpool(f, s, layer, x.shape, 2, solver="cgls", certify=False,
                                precondition="jacobi", atol=1e-12, btol=1e-12)
    assert good.converged and good.relative_residual <= good.checks["residual_tolerance"]


def test_planted_bug_singular_preconditioner_is_reported_not_converged(monkeypatch):
    """Column norms that are wrong (a block of them infinite, so their scale is 0): those
    unknowns are frozen at 0, CGLS cannot reach rule 1 and says it did not converge; the
    reconstruction is wrong and the result says so. A wrong but regular scaling (control)
    only changes the speed: the inverse is still exact."""
    from theory.selection import MaxPoolSelection

    x, layer, f, s, sel, a = _case(seed=13, h=16, w=16)
    real = MaxPoolSelection.column_norms

    def frozen(self, *args, **kwargs):
        cn = real(self, *args, **kwargs).copy()
        cn[: cn.size // 10] = np.inf
        return cn

    monkeypatch.setattr(MaxPoolSelection, "column_norms", frozen)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = invert_crelu_maxpool(f, s, layer, x.shape, 2, solver="cgls", certify=False,
                                   precondition="jacobi", atol=1e-12, btol=1e-12)
    assert NotConvergedWarning in {w.category for w in caught}
    assert not res.converged and res.stopping["istop"] in (8, 9)
    assert np.linalg.norm(res.x - x) / np.linalg.norm(x) > 1e-3

    def skewed(self, *args, **kwargs):
        cn = real(self, *args, **kwargs)
        return cn * np.random.default_rng(0).uniform(0.2, 5.0, cn.size)

    monkeypatch.setattr(MaxPoolSelection, "column_norms", skewed)
    ok = invert_crelu_maxpool(f, s, layer, x.shape, 2, solver="cgls", certify="dense",
                              precondition="jacobi", atol=1e-12, btol=1e-12)
    assert ok.converged and np.linalg.norm(ok.x - x) / np.linalg.norm(x) <= ok.error_bound()


def test_rule_two_with_its_rounding_floor_on_almost_consistent_data():
    """Data 1e-7 off the range (as a lower stage of a deep inverse sees): the plain rule 2
    (atol = 1e-10) asks for a gradient below float64's rounding, and the solve ends on
    stagnation, not converged (control); with the floor (taps given) it converges by rule 2
    to the least-squares solution of the dense oracle."""
    x, layer, f, s, sel, a = _case(seed=11, h=16, w=16)
    op = sel.rows_operator.linear_operator
    noise = np.random.default_rng(1).standard_normal(sel.rhs.size)
    b = sel.rhs + 1e-7 * np.linalg.norm(sel.rhs) * noise / np.linalg.norm(noise)
    ls = np.linalg.lstsq(a, b, rcond=None)[0]
    kw = dict(atol=1e-10, btol=1e-12, maxiter=3000, column_scale=_scale(sel),
              a_norm=sel.abs_norm_bound())
    plain = solve_cgls(op, b, **kw)
    assert not plain.converged and plain.stopping["istop"] == 9
    floor = solve_cgls(op, b, taps=sel._taps, **kw)
    assert floor.converged and floor.stopping["istop"] == 2
    assert floor.iterations < plain.iterations
    sv = np.linalg.svd(a, compute_uv=False)
    assert np.linalg.norm(floor.x - ls) / np.linalg.norm(ls) < 1e3 * sv[0] / sv[-1] * EPS


@pytest.mark.parametrize("precision", ["float64", "mixed"])
def test_ritz_values_stay_inside_the_spectrum_when_residuals_are_replaced_at_the_floor(
        precision):
    """The a_norm and cond estimates (Ritz values of CG's Lanczos tridiagonal) against the
    dense SVD of the scaled matrix A S, on the almost consistent data above, where the solve
    runs into the rounding floor and replaces its residual: each replacement there ends the
    Lanczos run. Planted bug (the old code, on one machine): coefficients taken across those
    replacements gave a 'largest Ritz value' of 6.7e3 against the true 2.81, i.e. an a_norm 49
    times too large in the stopping rule (which then stopped 'by rule 2' where it should
    stagnate) and in the tolerance built from `a_norm_estimate`."""
    x, layer, f, s, sel, a = _case(seed=11, h=16, w=16)
    op = sel.rows_operator.linear_operator
    noise = np.random.default_rng(1).standard_normal(sel.rhs.size)
    b = sel.rhs + 1e-7 * np.linalg.norm(sel.rhs) * noise / np.linalg.norm(noise)
    scale = _scale(sel)   # x = S y: the scaled matrix is A S
    sv = np.linalg.svd(a * scale[None, :], compute_uv=False)
    for taps in (None, sel._taps):
        sol = solve_cgls(op, b, atol=1e-10, btol=1e-12, maxiter=3000, column_scale=scale,
                         a_norm=sel.abs_norm_bound(), taps=taps, precision=precision)
        assert sol.stopping["replacements"] >= 1   # the case exercises the replacements
        lo, hi = sol.stopping["ritz"]
        assert sv[-1] ** 2 * (1 - 1e-4) <= lo <= hi <= sv[0] ** 2 * (1 + 1e-4), (lo, hi, sv)
        assert sol.a_norm_estimate <= sv[0] * (1 + 1e-4)
        assert sol.cond_estimate <= sv[0] / sv[-1] * (1 + 1e-4)


def test_without_the_floor_test_the_ritz_values_leave_the_spectrum(monkeypatch):
    """Planted bug for the test above: with the floor test off (LANCZOS_FLOOR = 0), the
    mixed-precision run keeps CG's coefficients past the float32 floor of its gradients and
    its Ritz values leave the dense spectrum of A S (here [1.7e-5, 7.81] against
    [0.0698, 2.81]). The garbage is rounding, so it depends on the CPU: where it does not
    show, the test skips and says so."""
    import theory.solvers as solvers

    x, layer, f, s, sel, a = _case(seed=11, h=16, w=16)
    op = sel.rows_operator.linear_operator
    noise = np.random.default_rng(1).standard_normal(sel.rhs.size)
    b = sel.rhs + 1e-7 * np.linalg.norm(sel.rhs) * noise / np.linalg.norm(noise)
    scale = _scale(sel)
    sv = np.linalg.svd(a * scale[None, :], compute_uv=False)
    monkeypatch.setattr(solvers, "LANCZOS_FLOOR", 0.0)
    sol = solve_cgls(op, b, atol=1e-10, btol=1e-12, maxiter=3000, column_scale=scale,
                     a_norm=sel.abs_norm_bound(), precision="mixed")
    lo, hi = sol.stopping["ritz"]
    inside = sv[-1] ** 2 * (1 - 1e-4) <= lo <= hi <= sv[0] ** 2 * (1 + 1e-4)
    if inside:
        pytest.skip(f"the planted bug gives Ritz values inside the spectrum on this CPU "
                    f"({lo:.3g}, {hi:.3g})")
    assert not inside

# Killers of the mutants that survived the seed-1 mutation sample (docs/dev/mutation.md).
def _skewed_columns(seed=0):
    """A dense 30 x 6 system whose column norms spread over 300x (Jacobi matters)."""
    a = np.random.default_rng(seed).standard_normal((30, 6))
    return a * np.array([1.0, 10.0, 0.1, 3.0, 0.3, 30.0])


def test_zero_data_is_solved_by_zero_with_lsmrs_code():
    """b = 0 from the default start: x = 0 exactly, no iteration, and the code LSMR gives
    the same system (istop 0, "x = 0 is the exact solution"), not rule 1's."""
    from scipy.sparse.linalg import lsmr

    a = _skewed_columns()
    b = np.zeros(a.shape[0])
    sol = solve_cgls(a, b, atol=1e-12, btol=1e-12, maxiter=100)
    oracle = lsmr(a, b, atol=1e-12, btol=1e-12)
    assert int(oracle[1]) == 0 and not oracle[0].any()
    assert sol.converged and sol.iterations == 0 and not sol.x.any()
    assert sol.stopping["istop"] == int(oracle[1]) == 0
    assert sol.stopping["reason"] == "x = 0 is the exact solution"


def test_the_default_label_is_cgls_and_a_given_label_is_reported():
    a = _skewed_columns()
    b = a @ np.arange(1.0, 7.0)
    kw = dict(atol=1e-12, btol=1e-12, maxiter=100)
    assert solve_cgls(a, b, **kw).stopping["solver"] == "cgls"
    assert solve_cgls(a, b, label="cgls (test)", **kw).stopping["solver"] == "cgls (test)"


def test_column_scale_s_is_cgls_on_a_times_s():
    """column_scale = s means CGLS on A diag(s) (preconditioner M = s^2): the estimates of
    ||AS||, kappa(AS) and ||S^-1 x|| match numpy's SVD of A diag(s) and the true x. After
    D = 6 iterations the Lanczos tridiagonal has the spectrum of (AS)^T AS, so its extreme
    Ritz values are the extreme squared singular values up to rounding (cond(AS)^2 eps,
    about 1e-15 here; 1e-8 is a wide margin). The control: A diag(s^1.5) has other norms
    (the test could fail)."""
    a = _skewed_columns()
    s = 1.0 / np.linalg.norm(a, axis=0)
    x = np.arange(1.0, 7.0)
    sol = solve_cgls(a, a @ x, atol=1e-14, btol=1e-14, maxiter=200, column_scale=s)
    assert sol.converged and sol.iterations >= a.shape[1]
    assert np.linalg.norm(sol.x - x) / np.linalg.norm(x) < 1e-10
    sv = np.linalg.svd(a * s, compute_uv=False)
    assert sol.a_norm_estimate == pytest.approx(sv[0], rel=1e-8, abs=0)
    assert sol.cond_estimate == pytest.approx(sv[0] / sv[-1], rel=1e-8, abs=0)
    assert sol.x_norm_estimate == pytest.approx(np.linalg.norm(x / s), rel=1e-8, abs=0)
    other = np.linalg.svd(a * s ** 1.5, compute_uv=False)   # control
    assert abs(other[0] - sv[0]) > 0.05 * sv[0]
    assert abs(other[0] / other[-1] - sv[0] / sv[-1]) > 0.05 * sv[0] / sv[-1]


def test_the_recurrence_residual_is_reported_relative_to_b():
    """stopping["recursive_relative_residual"] is ||r_rec|| / ||b||: in float64 after 3
    iterations the recurrence agrees with the true residual to rounding, so both match the
    oracle ||Ax - b|| / ||b|| (dense product); ||b|| ~ 1e5 here, so a wrong scaling shows."""
    a = _skewed_columns()
    b = 1000.0 * (a @ np.arange(1.0, 7.0))
    assert np.linalg.norm(b) > 1e4
    sol = solve_cgls(a, b, atol=1e-14, btol=1e-14, maxiter=3)
    assert sol.stopping["istop"] == 7
    oracle = np.linalg.norm(a @ sol.x - b) / np.linalg.norm(b)
    assert sol.stopping["relative_residual"] == pytest.approx(oracle, rel=1e-10, abs=0)
    assert sol.stopping["recursive_relative_residual"] == pytest.approx(oracle, rel=1e-8,
                                                                         abs=0)
    done = solve_cgls(a, b, atol=1e-12, btol=1e-12, maxiter=200)   # rule 1: r is the true one
    assert done.stopping["istop"] == 1
    assert done.stopping["recursive_relative_residual"] == done.stopping["relative_residual"]


def test_a_stall_window_of_one_judges_each_iteration():
    """stall_window = 1 is allowed (>= 1): the stop compares each iteration with the one
    before. With stall_drop = 0.99 the first step, which cuts neither ||r|| nor ||A^T r|| by
    99% (checked on the closed form of one CGLS step from 0: x1 = alpha A^T b, alpha =
    ||A^T b||^2 / ||A A^T b||^2), ends the solve there: code 9, not converged, x = x1."""
    a = _skewed_columns()
    b = a @ np.arange(1.0, 7.0) + np.random.default_rng(1).standard_normal(a.shape[0])
    g0 = a.T @ b
    x1 = (g0 @ g0) / np.linalg.norm(a @ g0) ** 2 * g0
    r1 = b - a @ x1
    assert np.linalg.norm(r1) > 0.01 * np.linalg.norm(b)
    assert min(np.linalg.norm(a.T @ r1), np.linalg.norm(g0)) > 0.01 * np.linalg.norm(g0)
    sol = solve_cgls(a, b, atol=0.0, btol=1e-12, maxiter=100, stall_window=1, stall_drop=0.99)
    assert not sol.converged and sol.stopping["istop"] == 9 and sol.iterations == 1
    assert np.linalg.norm(sol.x - x1) / np.linalg.norm(x1) < 1e-12
    assert sol.stopping["relative_residual"] == pytest.approx(
        np.linalg.norm(r1) / np.linalg.norm(b), rel=1e-10, abs=0)


# Killers of the mutants that survived the seed-3 mutation sample (docs/dev/mutation.md).
class _CountingMatrix:
    """A dense matrix as an operator that counts its products with A and with A^T."""

    def __init__(self, a):
        from scipy.sparse.linalg import LinearOperator

        self.a, self.products, self.adjoints = a, 0, 0

        def mv(v):
            self.products += 1
            return a @ np.ravel(v)

        def rmv(v):
            self.adjoints += 1
            return a.T @ np.ravel(v)

        self.op = LinearOperator(a.shape, matvec=mv, rmatvec=rmv, dtype=np.float64)


def test_a_rule_two_stop_costs_one_float64_residual_and_reports_it():
    """Inconsistent data stopped by rule 2 in float64, before the Krylov space is exhausted
    (16 iterations < D = 20): each iteration costs one product with A and one with A^T, the
    start one A^T b, and the stop one float64 true residual b - Ax (one more product of
    each) to confirm rule 2. stopping["replacements"] counts those true residuals (1 here),
    the final residual is the confirmed one (no further product), and it is the true
    residual ||b - Ax|| / ||b|| of the dense product."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((60, 20))
    b = a @ rng.standard_normal(20) + 0.1 * rng.standard_normal(60)
    counted = _CountingMatrix(a)
    sol = solve_cgls(counted.op, b, atol=1e-4, btol=1e-12, maxiter=200)
    assert sol.converged and sol.stopping["istop"] == 2 and sol.iterations < a.shape[1]
    assert sol.stopping["replacements"] == 1
    assert counted.products == sol.iterations + sol.stopping["replacements"]
    assert counted.adjoints == sol.iterations + 1 + sol.stopping["replacements"]
    oracle = np.linalg.norm(b - a @ sol.x) / np.linalg.norm(b)
    assert sol.stopping["relative_residual"] == pytest.approx(oracle, rel=1e-12, abs=0)


class _GainError:
    """A = e_1 (2 x 1) whose float32 products (`matvec32`, `rmatvec32`) carry a planted
    gain c: a model of float32 products gone wrong."""

    def __init__(self, c):
        from scipy.sparse.linalg import aslinearoperator

        self.a, self.c = np.array([[1.0], [0.0]]), c
        lin = aslinearoperator(self.a)
        self.shape, self.dtype = lin.shape, lin.dtype
        self.matvec, self.rmatvec = lin.matvec, lin.rmatvec

    def matvec32(self, v):
        return self.c * (self.a @ np.ravel(v))

    def rmatvec32(self, v):
        return self.c * (self.a.T @ np.ravel(v))


@pytest.mark.parametrize("ratio, switches", [(9.5, False), (10.5, True)])
def test_mixed_precision_finishes_in_float64_when_the_recurrence_is_ten_times_off(
        ratio, switches):
    """The documented factor 10 of `precision="mixed"`. Closed form of the first step from
    0 on A = e_1, b = (1, t) with both float32 products scaled by c = 2: s = c, p = c,
    q = c^2 e_1, alpha = 1/c^2, so x_1 = 1/c and the recurrence r_1 = b - alpha q = (0, t),
    while the true residual is (1 - 1/c, t): ||r_true|| / ||r_1|| =
    sqrt(1 + (1 - 1/c)^2 / t^2), set to 9.5 or 10.5 by t. btol = 2 t / ||b|| (atol = 0)
    makes rule 1 hold for the recurrence but not for the true residual, so the first
    replacement sees that ratio: at 10.5 the solve finishes in float64 from iteration 1
    (then one exact step gives x = 1, the least-squares solution), at 9.5 it stays mixed."""
    c = 2.0
    t = (1 - 1 / c) / np.sqrt(ratio ** 2 - 1)
    b = np.array([1.0, t])
    op = _GainError(c)
    sol = solve_cgls(op, b, atol=0.0, btol=2 * t / np.linalg.norm(b), maxiter=50,
                     precision="mixed")
    assert sol.converged and sol.stopping["istop"] == 1
    assert sol.stopping["relative_residual"] * np.linalg.norm(b) <= 2 * t
    if switches:
        assert sol.stopping["float64_from_iteration"] == 1
        assert sol.iterations == 2 and sol.x == pytest.approx([1.0], rel=1e-12, abs=0)
    else:
        assert "float64_from_iteration" not in sol.stopping


def test_mixed_precision_reaches_least_squares_on_inconsistent_data_by_finishing_in_float64():
    """Inconsistent data (wrong switches) and atol = 1e-10: the float32 gradient cannot fall
    below about u_32 ||A|| ||r|| = 6e-8 ||A|| ||r||, so rule 2 never holds in float32. The
    mixed solve stalls, finishes in float64 and stops on rule 2 (the least-squares
    solution, as the float64 solve does: control), instead of stopping as 'not converged'
    (stagnation, code 9), which would hide the inconsistency from the residual check."""
    x, layer, f, s, sel, a = _case(seed=7, h=16, w=16)
    _, ho, wo = layer.output_shape(x.shape)
    i, j = np.divmod(s, wo)
    bad = ((i // 2) * 2 + (1 - i % 2)) * wo + (j // 2) * 2 + (1 - j % 2)
    wrong = selection(f, bad, layer, x.shape)
    op, g, scale = wrong.rows_operator.linear_operator, wrong.rhs, _scale(wrong)
    runs = {p: solve_cgls(op, g, atol=1e-10, btol=1e-10, maxiter=2000, column_scale=scale,
                          precision=p) for p in ("float64", "mixed")}
    for p, sol in runs.items():
        assert sol.converged and sol.stopping["istop"] == 2, (p, sol.stopping["reason"])
    assert "float64_from_iteration" in runs["mixed"].stopping
    assert "float64_from_iteration" not in runs["float64"].stopping
    lsq = np.linalg.lstsq(wrong.dense(), g, rcond=None)[0]      # the dense oracle
    for sol in runs.values():
        assert np.linalg.norm(sol.x - lsq) <= 1e-6 * np.linalg.norm(lsq)
    with pytest.warns(InconsistentFeaturesWarning, match="not consistent"):   # the default
        res = invert_crelu_maxpool(f, bad, layer, x.shape, 2, solver="cgls", certify=False,
                                   precondition="jacobi", atol=1e-10, btol=1e-10)
    assert res.stopping["precision"] == "mixed" and res.converged


# Killers of the mutants that survived the seed-4 mutation sample (docs/dev/mutation.md).
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_start_with_nan_or_inf_is_refused_by_name(bad):
    """A non-finite start `x0` is refused before any product, with a message that names the
    argument and the problem spelled as numpy and the package's other messages spell it."""
    a = np.random.default_rng(0).standard_normal((8, 3))
    x0 = np.zeros(3)
    x0[1] = bad
    with pytest.raises(ValueError, match=r"^x0 contains NaN/Inf$"):
        solve_cgls(a, a @ np.ones(3), atol=1e-10, btol=1e-10, maxiter=10, x0=x0)


def test_cgls_stopping_record_holds_the_rule_it_was_given_and_that_rule_holds():
    """`stopping` records atol, btol and maxiter as passed (three distinct values, so that a
    lost or swapped entry shows), and the record alone re-checks the stop: rule 1,
    ||b - Ax|| <= btol ||b|| + atol ||A|| ||x||, with the solver's own estimates of ||A||
    and ||x|| and its true (float64) residual. Columns scaled from 1 to 100 (60 unknowns)
    make the convergence gradual, so btol = 1e-6 dominates and the solve stops well before
    the one with btol = 1e-12 does."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 60)) * np.logspace(0, 2, 60)
    b = a @ np.ones(60)
    sol = solve_cgls(a, b, atol=1e-9, btol=1e-6, maxiter=500)
    st = sol.stopping
    assert (st["atol"], st["btol"], st["maxiter"]) == (1e-9, 1e-6, 500)
    assert sol.converged and st["istop"] == 1
    bn = np.linalg.norm(b)
    rn = np.linalg.norm(b - a @ sol.x)
    assert rn <= st["btol"] * bn + st["atol"] * sol.a_norm_estimate * sol.x_norm_estimate
    assert rn > 1e-12 * bn   # the loose btol is the one that stopped it
    tight = solve_cgls(a, b, atol=1e-9, btol=1e-12, maxiter=500)
    assert tight.converged and tight.iterations > sol.iterations


# Killers of the mutants that survived the seed-5 mutation sample (docs/dev/mutation.md).
@pytest.mark.parametrize("atol, btol", [(1e-10, -1e-10), (1e-10, np.inf), (1e-10, np.nan),
                                        (-1e-10, 1e-10), (np.inf, 1e-10)])
def test_each_bad_stopping_tolerance_is_refused_on_its_own(atol, btol):
    """Either tolerance negative or not finite is refused even when the other one is valid."""
    a = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match=r"atol and btol must be finite and >= 0"):
        solve_cgls(a, np.ones(3), atol=atol, btol=btol, maxiter=10)


def test_callback_gets_every_iteration_count_up_to_a_least_squares_stop():
    """Inconsistent data stopped by rule 2: the callback sees 1, 2, ..., iterations."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((12, 5))
    b = a @ np.arange(1.0, 6.0) + rng.standard_normal(12)   # not in the range of A
    seen = []
    sol = solve_cgls(a, b, atol=1e-10, btol=1e-14, maxiter=100, callback=seen.append)
    assert sol.stopping["istop"] == 2 and sol.iterations >= 2
    assert seen == list(range(1, sol.iterations + 1))
    x_ls = np.linalg.lstsq(a, b, rcond=None)[0]     # oracle: the dense least-squares solution
    assert np.linalg.norm(sol.x - x_ls) <= 1e-6 * np.linalg.norm(x_ls)


@pytest.mark.parametrize("scale", [None, np.ones(1)])
def test_a_step_lost_to_underflow_stops_unconverged_instead_of_crashing(scale):
    """A = 1e-160: gamma = ||A^T b||^2 = 1e-320 is still a (subnormal) positive float64,
    but ||A p||^2 = 1e-640 underflows to 0, so the first step has no curvature. The solve
    must stop, not converged (code 8), with x still 0, rather than raise."""
    a = np.array([[1e-160]])
    assert a[0, 0] ** 2 > 0.0 and (a[0, 0] ** 2) ** 2 == 0.0   # the premise
    sol = solve_cgls(a, np.ones(1), atol=1e-12, btol=1e-12, maxiter=10, column_scale=scale)
    assert not sol.converged and sol.stopping["istop"] == 8 and sol.iterations == 0
    assert np.array_equal(sol.x, np.zeros(1))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_rule2_stop_on_consistent_data_meets_the_rule2_tolerance(seed):
    """btol below the rounding floor: CGLS stops on rule 2 (istop 2) although the data are
    consistent. The rule-2 tolerance, with the exact kappa(AS) of the dense SVD (the oracle)
    and with the solver's Ritz estimate, holds for the residual evaluated by the oracle's
    matrix product. (The rule-1 tolerance does not apply to such a stop; on these four cases
    the residual exceeds it by 1.1-1.6x, which was the false alarm.)"""
    x, layer, f, s, sel, a = _case(seed=seed)
    b = sel.rhs
    scale = _scale(sel)
    sol = solve_cgls(sel.rows_operator.linear_operator, b, atol=1e-14, btol=1e-16,
                     maxiter=2000, column_scale=scale, a_norm=sel.abs_norm_bound(),
                     taps=sel._taps)
    assert sol.stopping["istop"] == 2, sol.stopping
    rel = np.linalg.norm(a @ sol.x - b) / np.linalg.norm(b)
    sv = np.linalg.svd(a * scale, compute_uv=False)
    kw = dict(abs_norm=sel.abs_norm_bound(), solution_norm=np.linalg.norm(sol.x), istop=2)
    args = (1e-14, 1e-16, sol.a_norm_estimate, sol.x_norm_estimate, np.linalg.norm(b),
            sel._taps)
    exact = cgls_residual_tolerance(*args, cond=sv[0] / sv[-1], **kw)
    ritz = cgls_residual_tolerance(*args, cond=sol.cond_estimate, **kw)
    assert sol.cond_estimate <= (sv[0] / sv[-1]) * (1 + 1e-8)      # Ritz: from below
    assert rel <= ritz <= exact
    # negative control: features altered by 1e-6 (inconsistent) are far above the tolerance
    bad = b * (1 + 1e-6 * (np.arange(b.size) % 3))
    sol_bad = solve_cgls(sel.rows_operator.linear_operator, bad, atol=1e-14, btol=1e-16,
                         maxiter=2000, column_scale=scale, a_norm=sel.abs_norm_bound(),
                         taps=sel._taps)
    rel_bad = np.linalg.norm(a @ sol_bad.x - bad) / np.linalg.norm(bad)
    tol_bad = cgls_residual_tolerance(1e-14, 1e-16, sol_bad.a_norm_estimate,
                                      sol_bad.x_norm_estimate, np.linalg.norm(bad), sel._taps,
                                      abs_norm=sel.abs_norm_bound(),
                                      solution_norm=np.linalg.norm(sol_bad.x),
                                      istop=sol_bad.stopping["istop"],
                                      cond=sol_bad.cond_estimate)
    assert rel_bad > 100 * tol_bad


def test_rule2_tolerance_falls_back_to_rule1_without_a_condition_number():
    base = cgls_residual_tolerance(1e-14, 1e-14, 3.0, 2.0, 6.0, taps=27)
    for cond in (None, float("nan"), float("inf"), 1e14):     # kappa * atol >= 1/2 at 1e14
        assert cgls_residual_tolerance(1e-14, 1e-14, 3.0, 2.0, 6.0, taps=27, istop=2,
                                       cond=cond) == base


def test_pooled_cgls_rule2_stop_is_no_false_alarm():
    """The false alarm this tolerance removes: a consistent pooled case whose CGLS solve
    (Jacobi, no certificate) stops on rule 2 was reported inconsistent (1.33e-13 > 9.54e-14,
    the rule-1 tolerance); altering the values by 1e-6 is still reported."""
    import warnings

    from test_pooling import _uneven_pooled_case

    from theory import invert_crelu_maxpool
    from theory.checks import InconsistentFeaturesWarning

    layer, x, f, s = _uneven_pooled_case()
    kw = dict(solver="cgls", precondition="jacobi", certify=False, on_non_injective="ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentFeaturesWarning)
        res = invert_crelu_maxpool(f, s, layer, x.shape, 2, **kw)
    assert res.stopping["istop"] == 2
    assert res.stopping["relative_residual"] <= res.checks["residual_tolerance"]
    altered = np.asarray(f) * (1 + 1e-6 * (np.arange(np.asarray(f).size) % 3)).reshape(
        np.asarray(f).shape)
    with pytest.warns(InconsistentFeaturesWarning, match="not consistent"):
        invert_crelu_maxpool(altered, s, layer, x.shape, 2, **kw)
