"""Every claim module's checks run on a deliberately broken implementation do not pass.

Each test plants one bug a referee could suspect (a solver stopped after 2 iterations, a
wrong supremum, perturbed frame bounds, shuffled switches, a mislabelled table, a decision
rule with its sign lost, ...) by monkeypatching the code the claim calls, runs the claim as
the runner does, and asserts that it is not reported as passing: a theorem claim fails, a
replication claim fails or is ``error`` (its planted controls caught the bug). Where a claim
runs many cases the test restricts it to the cases the bug affects, to keep the suite fast.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from verify.claims import Context
from verify.claims import certified, identities, invariance, operators, pairing, pooling
from verify.claims import rademacher
from verify.claims import reconstruction, table


@pytest.fixture
def ctx(tmp_path):
    return Context(profile="quick", seed=0, out_dir=tmp_path)


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch):
    """The claim modules cache expensive results per report; a planted bug needs its own."""
    for module, names in ((pooling, ("_BOUNDS_CACHE", "_LINEAR_CACHE", "_PATCH_CACHE",
                                     "_SELECTION_BOUNDS", "_DEEP_CACHE")),
                          (pairing, ("_EFFECTS", "_BOUNDS")), (invariance, ("_CACHE",)),
                          (table, ("_CACHE",))):
        for name in names:
            monkeypatch.setattr(module, name, {})


def claim(module, cid):
    return next(c for c in module.CLAIMS if c.id == cid)


def not_passing(module, cid, ctx, allowed=("fail", "error")):
    record = claim(module, cid).run(ctx)
    assert record["status"] in allowed, (record["status"], record["notes"])
    return record


# ----------------------------------------------------------------------------- identities
def test_identities_with_a_crelu_that_flushes_small_values(monkeypatch, ctx):
    real = identities.crelu

    def flushing(z, axis=1):
        out = real(z, axis=axis)
        return out * (abs(out) > 1e-3) if isinstance(out, np.ndarray) else out * (out.abs() > 1e-3)

    monkeypatch.setattr(identities, "crelu", flushing)
    record = not_passing(identities, "crelu-identities", ctx, ("fail",))
    assert record["measured"]["max_error_difference"] > 0


# ----------------------------------------------------------------------------- certified
def test_certified_zeros_with_a_partition_of_unity_summing_to_two(monkeypatch, ctx):
    """Theorem T's hypothesis broken: every tile weight doubled, so sum_b G_b = 2 A^T A."""
    from theory import tiles

    real = tiles.partition_1d
    monkeypatch.setattr(tiles, "partition_1d",
                        lambda n, P, R: [(s0, 2.0 * w) for s0, w in real(n, P, R)])
    record = not_passing(certified, "certified-bounds-zeros", ctx, ("fail",))
    assert not all(c["contains_truth"] for c in record["measured"]["cases"])


def test_certified_circular_with_the_rounding_margin_dropped(monkeypatch, ctx):
    """The symbol certificate reporting its eigenvalue estimates shrunk by 1e-12 relative,
    with no rounding margin: the claimed interval no longer contains the truth."""
    from theory import certified as cert

    real = cert.symbol_bounds

    def sloppy(*a, **k):
        sb = real(*a, **k)
        sb.upper, sb.lower = sb.est_upper * (1 - 1e-10), sb.est_lower * (1 + 1e-10)
        return sb

    monkeypatch.setattr(cert, "symbol_bounds", sloppy)
    not_passing(certified, "certified-bounds-circular", ctx, ("fail",))


# ----------------------------------------------------------------------------- operators
def test_adjoint_with_a_cropped_adjoint(monkeypatch, ctx):
    from theory.conv import ConvLayer

    real = ConvLayer._apply_adjoint

    def cropped(self, y, shape):    # an off-by-one in the crop: the last column is lost
        x = real(self, y, shape).clone()
        x[..., -1] = 0
        return x

    monkeypatch.setattr(ConvLayer, "_apply_adjoint", cropped)
    not_passing(operators, "operator-adjoint", ctx, ("fail",))


def test_adjoint_with_a_scaled_layer_is_caught_by_the_reference_matrix(monkeypatch, ctx):
    """Forward and adjoint scaled alike: the dot test still passes, only the oracle sees it."""
    from theory.conv import ConvLayer

    fwd, adj = ConvLayer._apply, ConvLayer._apply_adjoint
    monkeypatch.setattr(ConvLayer, "_apply", lambda self, x: fwd(self, x) * (1 + 1e-9))
    monkeypatch.setattr(ConvLayer, "_apply_adjoint",
                        lambda self, y, shape: adj(self, y, shape) * (1 + 1e-9))
    record = not_passing(operators, "operator-adjoint", ctx, ("fail",))
    rows = record["measured"]["configurations"]
    assert all(r["max_normalised_error"] <= r["tolerance"] for r in rows)  # dot test blind
    assert not any(r["matches_dense"] for r in rows)


def test_frame_bounds_all_methods_perturbed_alike(monkeypatch, ctx):
    """A wrong certificate that every method shares: only the SVD oracle can see it."""
    real = operators.frame_bounds

    def perturbed(layer, shape, method, **kw):
        fb = real(layer, shape, method, **kw)
        return dataclasses.replace(fb, lower=fb.lower * 0.99, unit_lower=None)

    monkeypatch.setattr(operators, "frame_bounds", perturbed)
    monkeypatch.setattr(operators, "spectrum_figure", lambda ctx: "no-figure.png")
    record = not_passing(operators, "frame-bounds-agree", ctx, ("fail",))
    cases = record["measured"]["cases"]
    assert all(not any(c["agree_with_reference"].values()) for c in cases
               if "svd_of_reference_matrix" in c)


def test_certificate_that_calls_every_layer_injective(monkeypatch, ctx):
    from theory.frames import FrameBounds

    monkeypatch.setattr(FrameBounds, "injective", property(lambda self: True))
    not_passing(operators, "frame-certificate", ctx, ("fail", "error"))


# ----------------------------------------------------------------------------- reconstruction
def _only(monkeypatch, method):
    real = reconstruction.random_cases

    def cases(c):
        rng, found = real(c)
        return rng, [case for case in found if case[3] == method]

    monkeypatch.setattr(reconstruction, "random_cases", cases)


@pytest.mark.parametrize("solver", ["lsmr", "cgls"])
def test_prop21_with_the_iterative_solver_stopped_after_two_iterations(monkeypatch, ctx, solver):
    from theory import inversion

    name = f"solve_{solver}"
    real = getattr(inversion, name)
    monkeypatch.setattr(inversion, name, lambda op, b, **kw: real(op, b, **{**kw, "maxiter": 2}))
    _only(monkeypatch, solver)
    record = not_passing(reconstruction, "prop21-random-banks", ctx, ("fail",))
    for case in record["measured"]["cases"]:
        assert case["solver"] == solver and not case["converged"] and not case["pass"]
        if solver == "lsmr":   # the old tolerance, recovery_tolerance + cond * residual,
            # would have let it pass
            assert case["relative_error"] <= case["cond"] * case["relative_residual"] * 1.01


def test_prop21_with_a_cgls_solve_off_by_a_part_in_a_billion(monkeypatch, ctx):
    """A converged CGLS whose answer is then scaled by 1 + 1e-9: the residual check sees it
    (1e-9 is far above the rounding level of these layers)."""
    from theory import inversion

    real = inversion.solve_cgls

    def off(*args, **kw):
        sol = real(*args, **kw)
        return dataclasses.replace(sol, x=sol.x * (1 + 1e-9))

    monkeypatch.setattr(inversion, "solve_cgls", off)
    _only(monkeypatch, "cgls")
    not_passing(reconstruction, "prop21-random-banks", ctx, ("fail",))


@pytest.mark.parametrize("method", ["fft", "dense"])
def test_prop21_with_a_solve_off_by_a_part_in_a_billion(monkeypatch, ctx, method):
    from theory import inversion

    name = {"fft": "solve_fft", "dense": "solve_dense"}[method]
    real = getattr(inversion, name)

    def off(*args, **kw):
        sol = real(*args, **kw)
        return dataclasses.replace(sol, x=sol.x * (1 + 1e-9))

    monkeypatch.setattr(inversion, name, off)
    _only(monkeypatch, method)
    not_passing(reconstruction, "prop21-random-banks", ctx, ("fail",))


def test_prop21_photos_with_a_wrong_fft_solve(monkeypatch, ctx):
    from theory import inversion

    real = inversion.solve_fft

    def off(plan, z):
        sol = real(plan, z)
        return dataclasses.replace(sol, x=sol.x * (1 + 1e-9))

    monkeypatch.setattr(inversion, "solve_fft", off)
    monkeypatch.setattr(reconstruction, "PHOTO_NAMES", ("astronaut",))
    monkeypatch.setattr(reconstruction, "photo_panel", lambda *a: "no-figure.png")
    not_passing(reconstruction, "prop21-photos", ctx, ("fail",))


# ----------------------------------------------------------------------------- rademacher
def _six_directions(X, signs, which):
    """A 'supremum' over 6 fixed directions in place of the exact arc sweep."""
    t = np.arange(6) * np.pi / 3
    a = signs @ np.maximum(X @ np.stack([np.cos(t), np.sin(t)], 1).T, 0.0)
    b = np.roll(a, -3, axis=1)
    vals = {"relu": np.abs(a).max(1), "crelu": np.sqrt(a * a + b * b).max(1),
            "avr": np.abs(a + b).max(1), "linear": np.abs(a - b).max(1)}
    return {k: vals[k] for k in which}


@pytest.mark.parametrize("cid", ["rademacher-mc-vs-enumeration", "rademacher-ratio-sandwich"])
def test_rademacher_with_a_supremum_over_six_directions(monkeypatch, ctx, cid):
    from theory import rademacher as rad

    monkeypatch.setattr(rad, "_stats_2d", _six_directions)
    monkeypatch.setattr(rademacher, "_ratio_figure", lambda ctx: "no-figure.png")
    record = not_passing(rademacher, cid, ctx, ("fail",))
    if cid == "rademacher-ratio-sandwich":   # the sandwich alone would not have seen it
        for name in ("gaussian 2-d", "natural pixel pairs"):
            row = record["measured"][name]
            assert row["lower_holds"] and row["upper_holds"]
            assert not (row["relu_matches_oracle"] or row["crelu_matches_oracle"])


def test_rademacher_sandwich_with_an_l1_crelu(monkeypatch, ctx):
    """A CReLU statistic |a(u)| + |a(-u)| (too large): above the brute-force R_ReLU(2)."""
    from theory import rademacher as rad

    real = rad._stats_2d

    def l1(X, signs, which):
        out = real(X, signs, which)
        if "crelu" in out:
            both = real(X, signs, ["relu", "avr"])
            out["crelu"] = both["relu"] + 0.5 * both["avr"]
        return out

    monkeypatch.setattr(rad, "_stats_2d", l1)
    monkeypatch.setattr(rademacher, "_ratio_figure", lambda ctx: "no-figure.png")
    not_passing(rademacher, "rademacher-ratio-sandwich", ctx, ("fail",))


def test_counterexample_with_crelu_computed_like_relu(monkeypatch, ctx):
    from theory import rademacher as rad

    real = rad._stats_1d

    def relu_like(x, signs):
        out = real(x, signs)
        out["crelu"] = out["relu"]
        return out

    monkeypatch.setattr(rad, "_stats_1d", relu_like)
    not_passing(rademacher, "rademacher-theorem41-counterexample", ctx, ("fail",))


@pytest.mark.parametrize("cid", ["rademacher-theorem41-corrected-gaussian",
                                 "rademacher-theorem41-corrected-patches"])
def test_corrected_bound_with_the_papers_constant(monkeypatch, ctx, cid):
    from theory import rademacher as rad

    monkeypatch.setitem(rad.BOUND_CONSTANTS, "corrected", {"crelu": 1.0, "relu": 1.0})
    monkeypatch.setattr(rademacher, "_complexity_figure", lambda ctx: "no-figure.png")
    not_passing(rademacher, cid, ctx, ("fail",))


@pytest.mark.parametrize("cid", ["rademacher-paper-bound-gaussian",
                                 "rademacher-paper-bound-patches"])
def test_paper_bound_with_a_verdict_that_always_holds(monkeypatch, ctx, cid):
    monkeypatch.setattr(rademacher, "bound_verdict", lambda c, b: "pass")
    record = not_passing(rademacher, cid, ctx, ("error",))
    assert record["controls"][1]["status"] == "pass"      # the planted null caught it


# ----------------------------------------------------------------------------- pairing
def test_pairing_against_a_baseline_of_the_wrong_dimension(monkeypatch, ctx):
    """Random banks of 4x the dimension pair less: every real bank would look paired."""
    real = pairing.random_pairing_baseline
    monkeypatch.setattr(pairing, "random_pairing_baseline",
                        lambda k, d, **kw: real(k, 4 * int(np.prod(d)), **kw))
    monkeypatch.setattr(pairing.figures, "pairing_histograms", lambda *a: "no-figure.png")
    monkeypatch.setattr(pairing.figures, "pairing_mosaic", lambda *a: "no-figure.png")
    record = not_passing(pairing, "pairing-relu-lower-layers", ctx, ("error",))
    assert record["controls"][1]["status"] == "pass"      # the untrained bank "paired"


def test_signflip_test_that_draws_iid_banks(monkeypatch, ctx):
    """The i.i.d. baseline in place of the sign-flip one: a smooth bank with random signs
    (the planted null) then looks paired."""
    from theory.pairing import random_pairing_baseline

    def iid(weight, repetitions=1000, seed=0, level=0.95):
        w = np.asarray(weight)
        return random_pairing_baseline(w.shape[0], w.shape[1:], repetitions=repetitions,
                                       seed=seed, level=level)

    monkeypatch.setattr(pairing, "sign_flip_baseline", iid)
    record = not_passing(pairing, "pairing-relu-beyond-sign-symmetry", ctx, ("error",))
    assert record["controls"][1]["status"] == "pass"


def test_fades_with_the_layers_in_reverse_order(monkeypatch, ctx):
    real = pairing.fades_status
    monkeypatch.setattr(pairing, "fades_status", lambda effects: real(effects[::-1]))
    not_passing(pairing, "pairing-fades-with-depth", ctx, ("error",))


def test_closer_with_its_sign_lost(monkeypatch, ctx):
    real = pairing.closer_status

    def unsigned(a, b):
        status, measured = real(a, b)
        if status == "fail":
            status = "pass"
        return status, measured

    monkeypatch.setattr(pairing, "closer_status", unsigned)
    record = not_passing(pairing, "pairing-crelu-closer-to-random", ctx, ("error",))
    assert record["controls"][1]["status"] == "pass"


def test_trained_inversion_with_lsmr_stopped_after_two_iterations(monkeypatch, ctx):
    from theory import inversion

    real = inversion.solve_lsmr
    monkeypatch.setattr(inversion, "solve_lsmr",
                        lambda op, b, **kw: real(op, b, **{**kw, "maxiter": 2}))
    record = not_passing(pairing, "pairing-trained-inversion", ctx, ("fail",))
    assert record["measured"]["converged"] is False


# ----------------------------------------------------------------------------- pooling
def _exact_only(monkeypatch, solver):
    real = pooling._exact_cases
    monkeypatch.setattr(pooling, "_exact_cases",
                        lambda c: [case for case in real(c) if case[3] == solver][:2])


def test_maxpool_exact_with_shuffled_switches(monkeypatch, ctx):
    """Every switch moved to a random position of its own 2x2 window (valid, but wrong)."""
    real = pooling.crelu_maxpool

    def shuffled(x, layer, pool, *args):
        f, s = real(x, layer, pool, *args)
        width = layer.output_shape(x.shape)[2]
        i, j = np.divmod(s, width)
        rng = np.random.default_rng(0)
        di, dj = rng.integers(0, 2, size=(2, *s.shape))
        return f, ((i // 2) * 2 + di) * width + (j // 2) * 2 + dj

    monkeypatch.setattr(pooling, "crelu_maxpool", shuffled)
    _exact_only(monkeypatch, "dense")
    not_passing(pooling, "maxpool-exact-recovery", ctx, ("fail",))


def test_maxpool_exact_with_lsmr_stopped_after_two_iterations(monkeypatch, ctx):
    from theory import pooling as theory_pooling

    real = theory_pooling.solve_lsmr
    monkeypatch.setattr(theory_pooling, "solve_lsmr",
                        lambda op, b, **kw: real(op, b, **{**kw, "maxiter": 2}))
    _exact_only(monkeypatch, "lsmr")
    record = not_passing(pooling, "maxpool-exact-recovery", ctx, ("fail",))
    assert not record["measured"]["cases"][0]["converged"]


def test_maxpool_linear_bound_with_perturbed_frame_bounds(monkeypatch, ctx):
    from theory.selection import MaxPoolSelection

    real = MaxPoolSelection.frame_bounds

    def narrowed(self, method="auto", **kw):    # a lower bound raised towards the upper one
        fb = real(self, method, **kw)
        lo = 0.9 * fb.upper
        return dataclasses.replace(fb, lower=lo, unit_lower=None if fb.unit_lower is None
                                   else fb.unit_lower * lo / fb.lower)

    monkeypatch.setattr(MaxPoolSelection, "frame_bounds", narrowed)
    monkeypatch.setattr(pooling.figures, "maxpool_linear_bound", lambda *a: "no-figure.png")
    not_passing(pooling, "maxpool-linear-bound", ctx, ("fail",))


@pytest.mark.parametrize("cid", ["maxpool-crelu-vs-relu-patches",
                                 "maxpool-crelu-vs-relu-trained-patches"])
def test_patches_with_an_unsigned_comparison(monkeypatch, ctx, cid):
    real = pooling.patch_status

    def unsigned(fa, fb, n):
        status = real(fa, fb, n)
        return "pass" if status == "fail" else status

    monkeypatch.setattr(pooling, "patch_status", unsigned)
    monkeypatch.setitem(pooling.PATCH_COUNTS, "quick", 8)
    record = claim(pooling, cid).run(ctx)
    assert record["status"] != "pass" or record["controls"][1]["status"] == "pass"
    if record["controls"][1]["status"] == "pass":
        assert record["status"] == "error"


def test_deep_reconstruction_with_a_truncated_inverse(monkeypatch, ctx):
    real = pooling.reconstruct_all
    monkeypatch.setattr(pooling, "reconstruct_all",
                        lambda image, weights, pool, steps, **kw:
                        real(image, weights, pool, 2, **{**kw, "maxiter": 2}))
    monkeypatch.setattr(pooling.figures, "reconstruction_panel", lambda *a: "no-figure.png")
    record = not_passing(pooling, "maxpool-deep-reconstruction", ctx, ("fail", "error"))
    assert record["measured"]["crelu"]["psnr_db"] < 40


# ----------------------------------------------------------------------------- invariance
def test_invariance_extremes_with_zero_filled_shifts(monkeypatch, ctx):
    from theory.invariance import translations as real

    monkeypatch.setattr(invariance, "translations", lambda n, mode: real(n, mode="zeros"))
    not_passing(invariance, "invariance-score-extremes", ctx, ("fail",))


@pytest.mark.parametrize("cid", ["invariance-crelu-above-relu-translation",
                                 "invariance-pooling-raises-translation"])
def test_invariance_with_an_unsigned_comparison(monkeypatch, ctx, cid):
    real = invariance.compare_layers

    def unsigned(*args, **kw):
        status, measured = real(*args, **kw)
        return ("pass" if status == "fail" else status), measured

    monkeypatch.setattr(invariance, "compare_layers", unsigned)
    monkeypatch.setattr(invariance, "BOOT", 200)
    monkeypatch.setattr(invariance.figures, "invariance_figure", lambda *a: "no-figure.png")
    record = not_passing(invariance, cid, ctx, ("error",))
    assert record["controls"][1]["status"] == "pass"


def test_invariance_with_the_models_mislabelled(monkeypatch, ctx, tmp_path):
    from verify import invariance_exp as ie

    result = json.loads(ie.RESULTS_FILE.read_text())
    result["models"]["relu"], result["models"]["crelu"] = (result["models"]["crelu"],
                                                           result["models"]["relu"])
    path = tmp_path / "invariance.json"
    path.write_text(json.dumps(result))
    monkeypatch.setattr(ie, "RESULTS_FILE", path)
    record = not_passing(invariance, "invariance-crelu-above-relu-translation", ctx, ("error",))
    assert "other weights" in record["measured"]["error"]


# ----------------------------------------------------------------------------- table
@pytest.fixture
def fresh_table(monkeypatch, tmp_path):
    """The committed table, fingerprinted by the checked-out code (as `crelu table` would)."""
    from verify import freshness
    from verify import table_exp as te

    result = json.loads(te.RESULTS_FILE.read_text())
    freshness.stamp(result, freshness.table_expected(result))
    path = tmp_path / "table.json"

    def write(r):
        path.write_text(json.dumps(r))
        return path

    write(result)
    monkeypatch.setattr(te, "RESULTS_FILE", path)
    monkeypatch.setattr(table.figures, "table_figure", lambda *a: "no-figure.png")
    return result, write


def test_table_claims_run_on_a_fresh_table(fresh_table, ctx):
    for c in table.CLAIMS:
        record = c.run(ctx)
        assert record["status"] in ("pass", "fail", "inconclusive"), (c.id, record["notes"])
        assert [k["status"] for k in record["controls"]][0] == "pass", c.id


def test_table_mislabelled(fresh_table, ctx):
    result, write = fresh_table
    for r in result["runs"]:
        r["variant"] = {"crelu": "relu", "relu": "crelu"}.get(r["variant"], r["variant"])
    write(result)
    record = not_passing(table, "table-fashion-mnist-crelu-beats-relu", ctx, ("error",))
    assert "mislabelled" in record["measured"]["error"]


def test_table_stale_after_a_config_change(fresh_table, ctx, monkeypatch):
    from verify.configs import TABLE_CONFIGS

    spec = TABLE_CONFIGS["fashion-mnist"]
    monkeypatch.setitem(TABLE_CONFIGS, "fashion-mnist",
                        {**spec, "config": dataclasses.replace(spec["config"], steps=2000)})
    record = not_passing(table, "table-fashion-mnist-crelu-gap-below-relu", ctx, ("error",))
    assert "stale" in record["measured"]["error"] and "crelu table" in record["measured"]["error"]
    assert "steps" in record["measured"]["error"]


@pytest.mark.parametrize("cid", ["table-fashion-mnist-crelu-beats-relu",
                                 "table-photos-grey-crelu-gap-below-relu"])
def test_table_sign_rule_reversed(fresh_table, ctx, monkeypatch, cid):
    real = table.sign_status
    monkeypatch.setattr(table, "sign_status", lambda a, b, label: real(b, a, label))
    record = not_passing(table, cid, ctx, ("fail", "error"))
    assert record["status"] == "error" and record["controls"][0]["status"] == "fail"


def test_table_half_rule_that_always_matches(fresh_table, ctx, monkeypatch):
    real = table.matches_status

    def always(half, base, ph, pb):
        return "pass", real(half, base, ph, pb)[1]

    monkeypatch.setattr(table, "matches_status", always)
    record = not_passing(table, "table-photos-grey-crelu-half-matches-baseline", ctx,
                         ("error",))
    assert record["controls"][1]["status"] == "pass"   # the untrained models "matched"
