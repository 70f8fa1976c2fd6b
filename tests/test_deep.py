"""The deep inverse on the fast solver: known biases, adaptive per-stage tolerance, warm
starts. Oracles: the input itself (consistent data) and torch's own biased conv2d for the
forward pass, independent of theory.features."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from theory import ConvLayer
from theory.checks import NotConvergedError, NotConvergedWarning
from theory.deep import Stage, deep_forward, invert_deep
from verify.deep import random_weights


def _stack(seed=0, size=24, bias=0.1):
    rng = np.random.default_rng(seed)
    ws = random_weights(rng, 3, (16, 224))
    x = rng.random((3, size, size))
    betas = [rng.normal(0.0, bias, w.shape[0]) for w in ws] if bias else [None, None]
    return x, ws, betas, [Stage(ConvLayer(w, padding=1), bias=b) for w, b in zip(ws, betas)]


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_biased_forward_is_torchs_biased_conv():
    x, ws, betas, stages = _stack()
    fwd = deep_forward(x, stages)
    u = torch.from_numpy(x)[None]
    for w, b, f, s in zip(ws, betas, fwd.features, fwd.switches):
        z = F.conv2d(u, torch.from_numpy(w), torch.from_numpy(b), padding=1)
        vp, ip = F.max_pool2d(z, 2, return_indices=True)
        vn, inn = F.max_pool2d(-z, 2, return_indices=True)
        u = torch.relu(torch.cat([vp, vn], 1))
        assert np.allclose(f, u[0].numpy(), rtol=0, atol=1e-13)
        assert np.array_equal(s, torch.cat([ip, inn], 1)[0].numpy())


@pytest.mark.parametrize("precision", ["float64", "mixed"])
def test_known_biases_are_inverted_exactly(precision):
    """Two stages with biases: the input comes back; negative control: the same features
    inverted with the biases forgotten are far off, and the end-to-end check says so."""
    x, ws, betas, stages = _stack()
    fwd = deep_forward(x, stages)
    res = invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="cgls",
                      precision=precision)
    assert all(r.converged for r in res.stages)
    assert _rel(res.x, x) < 1e-8 and res.checks["feature_mismatch"] < 1e-9
    assert res.checks["switch_agreement"] == [1.0, 1.0]
    plain = [Stage(st.layer) for st in stages]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotConvergedWarning)
        wrong = invert_deep(fwd.last, fwd.switches, plain, x.shape, solver="cgls")
    assert _rel(wrong.x, x) > 1e-2 and wrong.checks["feature_mismatch"] > 1e-2


def test_bias_of_the_wrong_length_is_refused():
    x, ws, betas, stages = _stack()
    with pytest.raises(ValueError, match="one entry per filter"):
        Stage(stages[0].layer, bias=np.zeros(5))


def test_adaptive_tolerance_trades_accuracy_for_iterations():
    """adaptive_tol: stage 1 stops by rule 1 at btol = 10 kappa rho of stage 2 (above the
    given 1e-10) in fewer iterations than with the fixed btol, and its error stays within
    the bound that tolerance implies; the fixed tolerance (the default) is more accurate:
    the bound kappa rho is pessimistic, the data of stage 1 are better than it says."""
    x, ws, betas, stages = _stack(seed=2)
    fwd = deep_forward(x, stages)
    kw = dict(solver="cgls", atol=1e-10, btol=1e-10)
    ada = invert_deep(fwd.last, fwd.switches, stages, x.shape, adaptive_tol=True, **kw)
    fixed = invert_deep(fwd.last, fwd.switches, stages, x.shape, **kw)
    one, one_fixed = ada.stages[1], fixed.stages[1]
    assert one.converged and one.stopping["istop"] == 1 and one.stopping["btol"] > 1e-10
    assert one_fixed.converged and one_fixed.stopping["btol"] == 1e-10
    assert one.iterations < one_fixed.iterations
    kappa = one.cond_estimate * one.stopping["scale_spread"]
    assert _rel(ada.x, x) <= 10 * kappa * (one.relative_residual + one.stopping["btol"])
    assert _rel(fixed.x, x) < _rel(ada.x, x)


def test_warm_start_retries_continue_a_capped_stage():
    """A cap below what a stage needs: with a retry the stage goes on from its last iterate
    and converges, the iterations adding up to about a cold solve's; without (control) it
    is reported not converged."""
    x, ws, betas, stages = _stack(seed=2)
    fwd = deep_forward(x, stages)
    cold = invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="cgls")
    need = max(r.iterations for r in cold.stages)
    cap = need // 2 + 5
    warm = invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="cgls", maxiter=cap,
                       retries=2)
    assert all(r.converged for r in warm.stages)
    assert any(r.stopping.get("retries") for r in warm.stages)
    for w, c in zip(warm.stages, cold.stages):
        assert w.iterations <= c.iterations + 5
    assert _rel(warm.x, x) < 1e-8
    with pytest.warns(NotConvergedWarning, match="did not converge"):
        capped = invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="cgls",
                             maxiter=cap, retries=0)
    assert not all(r.converged for r in capped.stages)
    with pytest.raises(ValueError, match="retries"):
        invert_deep(fwd.last, fwd.switches, stages, x.shape, retries=-1)


def test_x0_needs_an_iterative_start_and_the_right_shape():
    from theory import conv_crelu_maxpool, invert_crelu_maxpool

    x, ws, betas, stages = _stack(bias=0)
    layer = stages[0].layer
    f, s = conv_crelu_maxpool(x, layer)
    with pytest.raises(ValueError, match="x0"):
        invert_crelu_maxpool(f, s, layer, x.shape, solver="lsmr", x0=x)
    with pytest.raises(ValueError, match="x0 has shape"):
        invert_crelu_maxpool(f, s, layer, x.shape, solver="cgls", x0=x[:, :4])
    res = invert_crelu_maxpool(f, s, layer, x.shape, solver="cgls", certify=False, x0=x)
    assert res.iterations == 0 and res.converged


def test_callbacks_get_each_stage_and_its_iterations_and_converged_stages_are_silent():
    """`callback(stage, result)` once per stage, last stage first, with the stage's result;
    `iteration_callback(stage, k)` with the stage number and CGLS's iteration count; a stack
    whose stages all converge raises no NotConvergedWarning."""
    x, ws, betas, stages = _stack(seed=1)
    fwd = deep_forward(x, stages)
    seen, iters = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotConvergedWarning)
        res = invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="cgls",
                          callback=lambda n, r: seen.append((n, r)),
                          iteration_callback=lambda n, k: iters.append((n, k)))
    assert [n for n, _ in seen] == [2, 1]
    assert [r for _, r in seen] == [res.stages[0], res.stages[1]]
    assert all(r.converged for _, r in seen)
    assert {n for n, _ in iters} == {1, 2}
    for n, r in seen:
        ks = [k for m, k in iters if m == n]
        assert ks and max(ks) <= r.iterations


def test_a_capped_stage_is_reported_once():
    """A stage stopped by its cap: exactly one NotConvergedWarning, from the deep inverse
    (the stage solves themselves stay quiet), naming the stage."""
    x, ws, betas, stages = _stack(seed=1)
    fwd = deep_forward(x, stages)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="cgls", maxiter=[None, 3],
                    retries=0)
    msgs = [str(w.message) for w in caught if issubclass(w.category, NotConvergedWarning)]
    assert len(msgs) == 1 and msgs[0].startswith("stage 2"), msgs


# Killers of the mutants that survived the seed-1 mutation sample (docs/dev/mutation.md).


def test_bad_arguments_are_refused_by_name():
    """A NaN image, an unknown `on_not_converged` and a switch list of the wrong length each
    get a ValueError that names the argument and the problem (not another name, not None)."""
    x, ws, betas, stages = _stack(size=8, bias=0)
    bad = x.copy()
    bad[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match=r"^x contains 1 NaN"):
        deep_forward(bad, stages)
    fwd = deep_forward(x, stages)
    with pytest.raises(ValueError, match=r"^unknown on_not_converged 'loud'"):
        invert_deep(fwd.last, fwd.switches, stages, x.shape, on_not_converged="loud")
    with pytest.raises(ValueError, match=r"^got 1 switch arrays for 2 stages$"):
        invert_deep(fwd.last, fwd.switches[:1], stages, x.shape)


def test_adaptive_tolerance_is_the_documented_bound():
    """adaptive_tol: stage 1 stops at btol_1 = max(btol, c kappa_2 rho_2) (`invert_deep`'s
    docstring), kappa_2 = LSMR/CGLS's cond estimate of stage 2 times its Jacobi spread (no
    certificate); rho_2 = stage 2's relative residual. Checked for two factors c, and the
    bound is above the given btol so the max picks it. (kappa_2 ~ 7 here: a bound with
    rho / kappa in place of kappa rho would be ~50 times smaller.)"""
    x, ws, betas, stages = _stack(seed=2, size=12)
    fwd = deep_forward(x, stages)
    for c in (10.0, 100.0):
        res = invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="cgls", atol=1e-10,
                          btol=1e-10, adaptive_tol=True, zero_tol_factor=c)
        two, one = res.stages
        kappa = two.cond_estimate * two.stopping["scale_spread"]
        assert kappa > 2.0 and two.stopping["btol"] == 1e-10     # the top stage: btol itself
        bound = c * kappa * two.relative_residual
        assert bound > 1e-10
        assert one.stopping["btol"] == pytest.approx(bound, rel=1e-12)


def test_the_requested_precision_reaches_every_stage():
    """precision="float64" runs every stage's CGLS in float64 (as each stage's
    `stopping["precision"]` reports), "mixed" in mixed precision, and the default ("auto")
    is mixed."""
    x, ws, betas, stages = _stack(seed=1, size=8)
    fwd = deep_forward(x, stages)
    for precision, kw in (("float64", {"precision": "float64"}),
                          ("mixed", {"precision": "mixed"}), ("mixed", {})):
        res = invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="cgls", **kw)
        assert [r.solver for r in res.stages] == ["cgls", "cgls"]
        assert [r.stopping["precision"] for r in res.stages] == [precision, precision]


def test_a_capped_stage_raises_on_request_and_says_why():
    """on_not_converged="raise": a stage stopped by its cap raises NotConvergedError naming
    the stage, the solver's own reason (the iteration limit) and the iteration count;
    "ignore" is silent and the result's stopping record holds that same reason."""
    from theory.checks import NotConvergedError

    x, ws, betas, stages = _stack(seed=1, size=8)
    fwd = deep_forward(x, stages)
    kw = dict(solver="cgls", maxiter=[None, 3], retries=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotConvergedWarning)
        quiet = invert_deep(fwd.last, fwd.switches, stages, x.shape, on_not_converged="ignore",
                            **kw)
    top = quiet.stages[0]
    assert not top.converged and top.iterations == 3 and top.stopping["istop"] == 7
    reason = top.stopping["reason"]
    assert "iteration limit" in reason
    with pytest.raises(NotConvergedError) as err:
        invert_deep(fwd.last, fwd.switches, stages, x.shape, on_not_converged="raise", **kw)
    msg = str(err.value)
    assert msg.startswith("stage 2: ") and f"{reason} after 3 iterations" in msg, msg


# Killers of the mutants that survived the seed-2 mutation sample (docs/dev/mutation.md).


def _small_certified_stack(seed=0, size=4, zero_corner=False):
    """Two stages of non-orthogonal filters (cond > 1), input 1 x size x size."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((9, 1, 3, 3))
    w2 = rng.standard_normal((162, 18, 3, 3))
    stages = [Stage(ConvLayer(w1, padding=1)), Stage(ConvLayer(w2, padding=1))]
    x = rng.random((1, size, size))
    if zero_corner:
        x[:, :4, :4] = 0.0          # black pixels: windows where both pooled values are 0
    return x, stages


def test_intermediate_zero_threshold_is_the_documented_one(monkeypatch):
    """Module notes of theory.deep: a recovered intermediate u is clipped at 0 and entries
    <= tau = max(zero_tol_rel max|u|, c kappa rho ||u||_2) are zeroed, with the default
    c = zero_tol_factor = 10, kappa the previous stage's certified cond and rho its relative
    residual; tau reaches the stage's selection as `zero_tol` (0 at the top stage). Spied on
    the calls of invert_crelu_maxpool; zero_tol_rel = 0 so the kappa rho term decides."""
    import theory.deep as deep

    calls = []
    real = deep.invert_crelu_maxpool

    def spy(u, *args, **kw):
        res = real(u, *args, **kw)
        calls.append((np.array(u, copy=True), kw.get("zero_tol"), res))
        return res

    monkeypatch.setattr(deep, "invert_crelu_maxpool", spy)
    x, stages = _small_certified_stack()
    fwd = deep_forward(x, stages)
    invert_deep(fwd.last, fwd.switches, stages, x.shape, certify="dense", solver="dense",
                zero_tol_rel=0.0)
    (_, tol2, top), (u1, tol1, _) = calls
    assert tol2 == 0.0
    kappa, rho = top.frame_bounds.cond, top.relative_residual
    assert kappa > 1.5 and rho > 0       # kappa rho and rho / kappa differ; tau is not 0
    clipped = np.maximum(top.x, 0.0)
    tau = 10.0 * kappa * rho * float(np.linalg.norm(clipped))
    assert tol1 == pytest.approx(tau, rel=1e-12, abs=0)
    assert np.array_equal(u1, np.where(clipped > tau, clipped, 0.0))


def test_zero_windows_are_used_by_default():
    """invert_deep's default uses CReLU's zero windows, as zero_windows=True does
    (control: zero_windows=False selects none); one stage on an 8x8 input with a black
    corner."""
    x, stages = _small_certified_stack(size=8, zero_corner=True)
    stages = stages[:1]
    fwd = deep_forward(x, stages)
    default = invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="dense")
    on = invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="dense",
                     zero_windows=True)
    off = invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="dense",
                      zero_windows=False)
    counts = [r.n_zero_window for r in default.stages]
    assert sum(counts) > 0 and counts == [r.n_zero_window for r in on.stages]
    assert all(r.n_zero_window == 0 for r in off.stages)


def test_retries_is_the_largest_number_of_warm_restarts():
    """retries=1 and a cap far below what a stage needs: each stage is solved at most twice
    (the solve, one warm restart), so it reports retries == 1 and twice the cap in
    iterations, and stays not converged. A budget on the iteration callback stops a run
    that restarts more often than that."""
    x, ws, betas, stages = _stack(seed=2, size=8)
    fwd = deep_forward(x, stages)
    cap, seen = 2, []

    def budget(stage, k):
        seen.append(stage)
        if len(seen) > 100:
            raise RuntimeError("more iterations than retries=1 allows")

    with pytest.warns(NotConvergedWarning, match="did not converge"):
        res = invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="cgls",
                          maxiter=cap, retries=1, iteration_callback=budget)
    for r in res.stages:
        assert r.stopping.get("retries") == 1 and r.iterations == 2 * cap
        assert not r.converged
    assert len(seen) == 2 * cap * len(stages)


# Killers of the mutants that survived the seed-3 mutation sample (docs/dev/mutation.md).


def test_the_requested_atol_reaches_every_stage():
    """atol is every stage's stopping rule (each stage's `stopping["atol"]`), not
    invert_crelu_maxpool's default 1e-14; a looser atol stops the top stage, whose data
    are the same in both runs, after fewer iterations (control: the default atol)."""
    x, ws, betas, stages = _stack(seed=1, size=8)
    fwd = deep_forward(x, stages)
    kw = dict(solver="cgls", on_not_converged="ignore")
    loose = invert_deep(fwd.last, fwd.switches, stages, x.shape, atol=1e-6, **kw)
    default = invert_deep(fwd.last, fwd.switches, stages, x.shape, **kw)
    assert [r.stopping["atol"] for r in loose.stages] == [1e-6, 1e-6]
    assert [r.stopping["atol"] for r in default.stages] == [1e-14, 1e-14]
    assert loose.stages[0].converged and loose.stages[0].iterations < default.stages[0].iterations


# Killers of the mutants that survived the seed-4 mutation sample (docs/dev/mutation.md).


def test_a_stage_that_is_not_a_frame_is_reported_in_the_result_not_warned_per_stage():
    """invert_deep solves every stage with on_non_injective="ignore": a stage whose selected
    filters cannot form a frame (ReLU, 2 filters on 1 x 6 x 6: at most 18 values for 36
    unknowns) says so in `is_frame` and `all_frames`, and no warning is raised (control:
    the same stage through invert_crelu_maxpool warns)."""
    from theory.inversion import NonInjectiveWarning
    from theory.pooling import invert_crelu_maxpool

    w = np.linalg.qr(np.random.default_rng(0).standard_normal((9, 9)))[0]
    stages = [Stage(ConvLayer(w[:2].reshape(2, 1, 3, 3), padding=1))]
    x = np.random.default_rng(1).random((1, 6, 6))
    fwd = deep_forward(x, stages, "relu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = invert_deep(fwd.last, fwd.switches, stages, x.shape, "relu", solver="dense")
    assert res.stages[0].is_frame is False and res.all_frames is False
    with pytest.warns(NonInjectiveWarning, match="do not form a frame"):
        invert_crelu_maxpool(fwd.last, fwd.switches[0], stages[0].layer, x.shape, 2,
                             activation="relu", solver="dense", certify=False)


def test_the_reported_seconds_are_the_wall_time_of_the_whole_inversion():
    """`DeepInversionResult.seconds` is a float between the total time of its stages (each
    stage's own `seconds`; they run one after the other) and the wall time around the call."""
    import time

    x, stages = _small_certified_stack()
    fwd = deep_forward(x, stages)
    t0 = time.perf_counter()
    res = invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="dense")
    wall = time.perf_counter() - t0
    assert isinstance(res.seconds, float)
    assert 0 < sum(r.seconds for r in res.stages) <= res.seconds <= wall


def test_a_threshold_above_every_recovered_feature_is_reported_not_inverted_to_zero():
    """A zero threshold that removes every recovered intermediate feature (a previous stage
    solved too loosely for its condition number; planted here by zero_tol_factor = 1e30)
    left nothing to invert: stage 1 then returned x = 0 as 'the exact solution', silently
    (seen on a four-stage stack with a wrong condition estimate). It is reported like an
    unconverged stage, and the result records the threshold and what it removed; with the
    default factor only the solve's spurious values are removed (control)."""
    x, stages = _small_certified_stack()
    fwd = deep_forward(x, stages)
    with pytest.warns(NotConvergedWarning, match="above every one of the"):
        bad = invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="dense",
                          zero_tol_factor=1e30)
    assert not bad.x.any()
    # every recovered positive value, the true ones and the solve's small spurious ones
    assert bad.stages[1].stopping["zeroed_below_threshold"] >= np.count_nonzero(
        fwd.features[0])
    with pytest.raises(NotConvergedError, match="above every one of the"):
        invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="dense",
                    zero_tol_factor=1e30, on_not_converged="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        good = invert_deep(fwd.last, fwd.switches, stages, x.shape, solver="dense")
    # exactly the solve's spurious positive values are removed, every true one is kept
    spurious = (np.count_nonzero(np.maximum(good.stages[0].x, 0.0))
                - np.count_nonzero(fwd.features[0]))
    assert good.stages[1].stopping["zeroed_below_threshold"] == spurious
    assert good.stages[1].stopping["zero_threshold"] > 0
    assert _rel(good.x, x) < 1e-8
