"""Tests of theory.invariance: constructed units of known invariance, properties, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from theory.invariance import (
    bootstrap_layer_scores,
    firing_thresholds,
    invariance_scores,
    layer_score,
    rotation,
    rotations,
    scaling,
    scalings,
    translation,
    translations,
)
from theory.testing import linear_unit_problems, response_matrices


# ----------------------------------------------------------------------------- constructions
def dot_images(n: int = 2000, size: int = 9, seed: int = 0) -> torch.Tensor:
    """Black images with one bright dot; dot positions cycle through every pixel.

    Each position holds floor(n / size^2) >= 21 dots (so the centre pixel unit has more than
    round(0.01 n) = 20 inputs above zero), intensities are distinct by construction.
    """
    rng = np.random.default_rng(seed)
    x = torch.zeros(n, 1, size, size, dtype=torch.float64)
    pos = np.arange(n) % (size * size)
    intensity = 0.5 + 0.5 * (rng.permutation(n) + 1) / (n + 1)   # distinct values in (0.5, 1)
    x[np.arange(n), 0, pos // size, pos % size] = torch.as_tensor(intensity)
    return x


def global_mean(x: torch.Tensor) -> torch.Tensor:
    """A unit that ignores translation: the global average of the channel."""
    return x.mean(dim=(2, 3))


def centre_pixel(x: torch.Tensor) -> torch.Tensor:
    """A unit tied to one pixel."""
    h, w = x.shape[-2:]
    return x[:, 0, h // 2, w // 2][:, None]


def both_units(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([global_mean(x), centre_pixel(x)], dim=1)


def rot90(k: int):
    return lambda x: torch.rot90(x, k, dims=(-2, -1))


# ----------------------------------------------------------------------------- known invariance
def test_translation_invariant_unit_scores_the_maximum_and_pixel_unit_zero():
    x = dot_images()
    res = invariance_scores(both_units, x, translations(3, mode="circular"))
    n, k = x.shape[0], 20
    assert np.allclose(res.global_rate, k / n)          # distinct responses: exactly k fire
    assert res.valid.all()
    # global mean: every shifted top input still fires -> L = 1, S = 1/G = N/k exactly
    assert res.local_rate[0] == 1.0
    assert res.score[0] == pytest.approx(n / k, rel=1e-12)
    assert res.score[0] == pytest.approx(res.max_score[0], rel=1e-12)
    # centre pixel: its top inputs have the dot at the centre; every shift moves it away
    assert res.local_rate[1] == 0.0 and res.score[1] == 0.0


def test_rotation_by_quarter_turns_keeps_the_global_mean_at_the_maximum():
    x = dot_images(size=9, seed=1)
    res = invariance_scores(both_units, x, [rot90(1), rot90(2), rot90(3)])
    assert res.score[0] == pytest.approx(1 / res.global_rate[0], rel=1e-12)
    # the centre pixel is the rotation centre: quarter turns keep it -> also maximal
    assert res.score[1] == pytest.approx(1 / res.global_rate[1], rel=1e-12)


def test_pixel_unit_on_noise_scores_at_chance_by_an_exact_binomial_test():
    """i.i.d. uniform pixels: a shifted top input fires w.p. 1 - t, independently.

    The count of firing (input, shift) pairs is Binomial(k T, 1 - t) given the threshold t,
    so a two-sided tail probability below 1e-6 would be a bug, not bad luck.
    """
    rng = np.random.default_rng(3)
    n, size = 4000, 8
    x = torch.as_tensor(rng.random((n, 1, size, size)))
    moves = translations(3, mode="circular")
    res = invariance_scores(centre_pixel, x, moves)
    k, t = res.top_inputs.shape[1], float(res.threshold[0])
    trials = k * len(moves)
    count = int(round(res.local_rate[0] * trials))
    p = 1.0 - t
    assert stats.binom.cdf(count, trials, p) > 1e-6
    assert stats.binom.sf(count - 1, trials, p) > 1e-6
    # chance level S ~ (1 - t) / G ~ 1, far below the maximum 1/G = 100
    assert res.score[0] < 0.05 * res.max_score[0]


def test_identity_transformation_gives_every_unit_the_maximum():
    rng = np.random.default_rng(4)
    x = torch.as_tensor(rng.standard_normal((600, 2, 5, 5)))
    w = torch.as_tensor(rng.standard_normal((50, 7)))
    res = invariance_scores(lambda b: b.flatten(1) @ w, x, [lambda b: b.clone()])
    assert np.all(res.local_rate == 1.0)
    assert np.allclose(res.score, 1 / res.global_rate)
    assert res.layer_score == pytest.approx(100.0)


def test_bootstrap_without_resampling_returns_the_layer_score():
    x = dot_images()
    res = invariance_scores(both_units, x, translations(2, mode="circular"))
    draws = bootstrap_layer_scores(res, np.random.default_rng(0), reps=5, units=False, images=False)
    assert np.allclose(draws, res.layer_score)
    draws = bootstrap_layer_scores(res, np.random.default_rng(0), reps=200)
    assert draws.min() >= 0 and draws.max() <= 100 + 1e-9


def test_transformations_do_what_they_say():
    x = torch.zeros(1, 1, 7, 7)
    x[0, 0, 3, 3] = 1.0
    assert translation(2, -1)(x)[0, 0, 2, 5] == 1.0
    assert translation(9, 0)(x).sum() == 0.0                     # shifted out
    assert torch.equal(translation(7, 0, "circular")(x), x)      # full wrap
    # the centre is fixed by rotations and scalings
    assert torch.allclose(rotation(90)(x), x, atol=1e-6)
    assert torch.allclose(scaling(1.0)(x), x, atol=1e-6)
    y = torch.zeros(1, 1, 8, 8)
    y[0, 0, 1, 3] = 1.0                                           # off-centre
    r = rotation(90)(y)[0, 0]
    assert r.argmax() != y[0, 0].argmax() and r.sum() == pytest.approx(1.0, abs=1e-5)
    assert len(translations(3)) == 12 and len(rotations()) == 6 and len(scalings()) == 4


# ----------------------------------------------------------------------------- properties
@given(response_matrices(), st.sampled_from([0.01, 0.05, 0.1, 0.3]))
def test_thresholds_fire_on_exactly_round_rate_n_inputs(r, rate):
    n = r.shape[0]
    k = math.floor(rate * n + 0.5)
    if k < 1:
        with pytest.raises(ValueError, match="needs at least"):
            firing_thresholds(r, rate)
        return
    thr = firing_thresholds(r, rate)
    assert thr.n_firing == k
    assert np.all((r > thr.threshold).sum(axis=0) == k)
    assert np.allclose(thr.global_rate, k / n)


@given(linear_unit_problems(), st.sampled_from([1, 2, 3]))
def test_scores_lie_between_zero_and_one_over_g(problem, shift):
    x, w = problem
    res = invariance_scores(lambda b: b.flatten(1) @ w, x, translations(shift))
    assert np.all((res.local_firing >= 0) & (res.local_firing <= 1))
    assert np.all(res.score >= 0)
    assert np.all(res.score <= res.max_score * (1 + 1e-12))


@given(linear_unit_problems(), st.sampled_from([0.25, 0.5, 2.0, 8.0]))
def test_scores_unchanged_by_positive_rescaling_and_unit_permutation(problem, a):
    x, w = problem
    moves = translations(1)
    base = invariance_scores(lambda b: b.flatten(1) @ w, x, moves)
    scaled = invariance_scores(lambda b: a * (b.flatten(1) @ w), x, moves)
    np.testing.assert_array_equal(base.score, scaled.score)
    perm = np.random.default_rng(0).permutation(w.shape[1])
    permuted = invariance_scores(lambda b: b.flatten(1) @ w[:, perm], x, moves)
    np.testing.assert_array_equal(base.score[perm], permuted.score)


@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=40),
       st.floats(0.01, 1.0), st.floats(0.01, 1.0))
def test_layer_score_is_a_decreasing_top_mean(scores, f1, f2):
    lo, hi = sorted((f1, f2))
    s = np.asarray(scores)
    assert s.min() - 1e-9 <= layer_score(s, hi) <= layer_score(s, lo) + 1e-9 <= s.max() + 2e-9
    assert layer_score(s, 1.0) == pytest.approx(s.mean())


# ----------------------------------------------------------------------------- bad input
def _x(n=200):
    return torch.as_tensor(np.random.default_rng(0).standard_normal((n, 1, 5, 5)))


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_rate_outside_open_unit_interval_is_refused(rate):
    with pytest.raises(ValueError, match=r"rate must lie in the open interval \(0, 1\)"):
        invariance_scores(global_mean, _x(), translations(1), rate=rate)
    with pytest.raises(ValueError, match="open interval"):
        firing_thresholds(np.ones((10, 2)), rate)


def test_no_units_is_refused():
    with pytest.raises(ValueError, match="no units"):
        invariance_scores(lambda b: b.flatten(1)[:, :0], _x(), translations(1))
    with pytest.raises(ValueError, match="no units"):
        firing_thresholds(np.zeros((10, 0)))


def test_empty_transformation_set_is_refused():
    with pytest.raises(ValueError, match="transformation set is empty"):
        invariance_scores(global_mean, _x(), [])
    with pytest.raises(ValueError, match="no rotation angles"):
        rotations(())


def test_nan_is_refused():
    x = _x()
    x[3, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="images contain NaN"):
        invariance_scores(global_mean, x, translations(1))
    with pytest.raises(ValueError, match="NaN or Inf"):
        invariance_scores(lambda b: global_mean(b) * float("nan"), _x(), translations(1))
    with pytest.raises(ValueError, match="NaN or Inf"):
        firing_thresholds(np.array([[1.0], [np.nan], [2.0]]), 0.4)


def test_other_bad_input_is_refused():
    with pytest.raises(ValueError, match="needs at least 50 natural inputs"):
        invariance_scores(global_mean, _x(20), translations(1))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        invariance_scores(global_mean, torch.zeros(10, 5, 5), translations(1))
    with pytest.raises(ValueError, match="same shape"):
        invariance_scores(global_mean, _x(), [lambda b: b[..., :4]])
    with pytest.raises(ValueError, match="n_top"):
        invariance_scores(global_mean, _x(), translations(1), n_top=0)
    with pytest.raises(ValueError, match="top_fraction"):
        invariance_scores(global_mean, _x(), translations(1), top_fraction=0.0)
    with pytest.raises(ValueError, match=r"\(batch, units\)"):
        invariance_scores(lambda b: b.mean(), _x(), translations(1))
    with pytest.raises(ValueError, match="no unit has a finite"):
        layer_score(np.array([np.nan, np.nan]))
    with pytest.raises(ValueError, match="mode"):
        translation(1, 0, mode="reflect")
    with pytest.raises(ValueError, match="positive"):
        scaling(0.0)


def test_units_that_never_reach_the_rate_are_not_scored():
    """A dead unit (always 0) and a unit positive on 0.25 % of inputs: ties at threshold 0."""
    x = _x(2000)

    def units(b):
        dead = torch.zeros(b.shape[0], 1, dtype=b.dtype)
        rare = torch.relu(b[:, 0, 2, 2] - 2.8)[:, None]       # P(N(0,1) > 2.8) ~ 0.26 %
        return torch.cat([dead, rare, global_mean(b)], dim=1)

    res = invariance_scores(units, x, translations(1))
    assert res.global_rate[0] == 0 and res.global_rate[1] < 0.005
    assert list(res.valid) == [False, False, True]
    assert np.isnan(res.score[:2]).all() and np.isfinite(res.score[2])
    assert res.layer_score == res.score[2]


# ----------------------------------------------------------------------------- the experiment and claims
def test_compare_layers_passes_fails_and_stays_inconclusive_on_the_null():
    from verify.claims.invariance import compare_layers

    rng = np.random.default_rng(0)
    layers = ["a", "b", "c"]
    est = [50.0, 60.0, 70.0]
    draws = [e + rng.normal(0, 2, 2000) for e in est]
    higher = [e + 20 for e in est]
    draws_h = [d + 20 + rng.normal(0, 2, 2000) for d in draws]
    assert compare_layers(higher, draws_h, est, draws, layers)[0] == "pass"
    assert compare_layers(est, draws, higher, draws_h, layers)[0] == "fail"
    # a model against itself, independent bootstraps: never "higher at every layer"
    again = [e + rng.normal(0, 2, 2000) for e in est]
    assert compare_layers(est, draws, est, again, layers)[0] == "inconclusive"


def test_centre_units_and_stored_scores_round_trip():
    from verify.invariance_exp import LAYERS, centre_units, scores_of, score_model
    from verify.models import AllConvNet

    torch.manual_seed(0)
    model = AllConvNet("crelu", width=2, kernel1=3).eval()
    units, slices = centre_units(model, 0.0, 1.0)
    x = torch.rand(150, 1, 28, 28)
    out = units(x)
    assert list(slices) == list(LAYERS)
    assert [s.stop - s.start for s in slices.values()] == [4, 4, 8, 8, 8]   # CReLU doubles
    assert out.shape == (150, 32)
    card = {"normalisation": {"mean": 0.0, "std": 1.0}}
    stored = score_model(model, card, x)
    result = {"models": {"m": stored}, "rate": 0.01, "top_fraction": 0.2}
    direct = invariance_scores(units, x, translations(3))
    for layer, sl in slices.items():
        s = scores_of(result, "m", "translation", layer)
        np.testing.assert_allclose(s.score, direct.score[sl], equal_nan=True)


def test_invariance_claims_on_committed_results_and_their_controls(tmp_path):
    from verify.claims import Context
    from verify.claims.invariance import CLAIMS

    ctx = Context(profile="quick", seed=0, out_dir=tmp_path)
    by_id = {c.id: c for c in CLAIMS}
    rec = by_id["invariance-score-extremes"].run(ctx)
    assert rec["status"] == "pass" and rec["negative_control"]["status"] == "fail"
    for cid in ("invariance-crelu-above-relu-translation", "invariance-pooling-raises-translation"):
        rec = by_id[cid].run(ctx)
        positive, null = rec["controls"]
        assert positive["kind"] == "planted_positive" and positive["status"] == "pass"
        assert null["kind"] == "planted_null" and null["status"] != "pass"
        assert rec["status"] in ("pass", "fail", "inconclusive")
        assert "error" not in rec["measured"]
    assert (tmp_path / "figures" / "invariance-per-layer.png").is_file()


def test_stale_committed_results_are_refused():
    from verify.invariance_exp import check_fresh, read_results

    result = read_results()
    check_fresh(result)                      # the committed file matches the shipped weights
    result["models"]["relu"]["weights_sha256"] = "0" * 64
    with pytest.raises(ValueError, match="regenerate"):
        check_fresh(result)


def test_planted_model_scores_are_the_factor_times_the_real_ones():
    from verify.claims.invariance import planted_model
    from verify.invariance_exp import read_results, scores_of

    result = read_results()
    planted = {**result, "models": {"p": planted_model(result["models"]["relu"], 2.0)}}
    for layer in result["layers"]:
        real = scores_of(result, "relu", "rotation", layer)
        twice = scores_of(planted, "p", "rotation", layer)
        np.testing.assert_allclose(twice.score, 2.0 * real.score, equal_nan=True)
        np.testing.assert_array_equal(twice.local_firing, real.local_firing)


# Killers of the mutants that survived the seed-1 mutation sample (docs/dev/mutation.md).
def test_responses_with_no_inputs_are_refused_by_name():
    """Zero natural inputs is its own problem, not a rate that needs more inputs."""
    with pytest.raises(ValueError, match=r"responses has no inputs \(shape \(0, 3\)\)"):
        firing_thresholds(np.zeros((0, 3)))


def test_bad_responses_name_the_images_they_came_from():
    """NaN responses say whether the natural or the k-th transformed images produced them."""
    with pytest.raises(ValueError, match="responses to natural images contain NaN or Inf"):
        invariance_scores(lambda b: global_mean(b) * float("nan"), _x(), translations(1))

    def blow_up(b):                          # a transformation whose output the unit maps to Inf
        return b * float("inf")

    with pytest.raises(ValueError, match=r"responses to transformed images \(transformation 1\) "
                                         "contain NaN or Inf"):
        invariance_scores(global_mean, _x(), [lambda b: b.clone(), blow_up])


def test_numpy_images_score_exactly_like_the_same_tensor():
    """`images` may be a numpy array (documented): same scores as the torch tensor."""
    x = _x(400)
    w = torch.as_tensor(np.random.default_rng(1).standard_normal((25, 3)))

    def units(b):
        return b.flatten(1) @ w

    from_tensor = invariance_scores(units, x, translations(1), rate=0.05)
    from_numpy = invariance_scores(units, x.numpy(), translations(1), rate=0.05)
    np.testing.assert_array_equal(from_numpy.top_inputs, from_tensor.top_inputs)
    np.testing.assert_array_equal(from_numpy.score, from_tensor.score)


def test_top_inputs_break_ties_by_index():
    """Quantised responses tie massively at the top; the top inputs must be the tied inputs of
    lowest index (a stable order), so that results do not depend on the machine's sort.

    Oracle: Python's `sorted` on the key (-response, index), input by input."""
    rng = np.random.default_rng(6)
    x = torch.as_tensor(rng.integers(0, 4, (1000, 1, 2, 2)).astype(np.float64))

    def units(b):                            # 4 pixel units with values in {0, 1, 2, 3}
        return b.flatten(1)

    res = invariance_scores(units, x, [lambda b: b.flip(-1)], rate=0.01)
    h = x.flatten(1).numpy()
    assert res.top_inputs.shape == (4, 10)
    for unit in range(4):
        expected = sorted(range(h.shape[0]), key=lambda i: (-h[i, unit], i))[:10]
        assert (h[expected, unit] == 3).all()          # ~250 inputs tie at the top value
        assert res.top_inputs[unit].tolist() == expected


def _hand_made_scores(u: int, top_fraction: float):
    """`u` valid units with known scores L / G (and one invalid unit, to be left out)."""
    from theory.invariance import InvarianceScores

    rng = np.random.default_rng(2)
    k = 4
    local_firing = rng.integers(0, 5, (u + 1, k)) / 4.0          # fractions of 4 transforms
    global_rate = np.full(u + 1, 0.05)
    valid = np.ones(u + 1, dtype=bool)
    valid[-1] = False
    global_rate[-1] = 0.0
    local_rate = local_firing.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(valid, local_rate / global_rate, np.nan)
    return InvarianceScores(np.zeros(u + 1), global_rate, np.zeros((u + 1, k), dtype=int),
                            local_firing, local_rate, score, valid, 0.01, top_fraction)


@pytest.mark.parametrize("u, top_fraction, m", [(10, 0.2, 2), (10, 0.35, 4), (7, 1.0, 7),
                                                (3, 0.2, 1)])
def test_bootstrap_without_resampling_is_the_top_fraction_mean(u, top_fraction, m):
    """Closed form: with nothing resampled every draw is the mean of the m = ceil(f U') best
    scores of the U' valid units."""
    res = _hand_made_scores(u, top_fraction)
    best = sorted((s for s in res.score if np.isfinite(s)), reverse=True)[:m]
    draws = bootstrap_layer_scores(res, np.random.default_rng(0), reps=3, units=False,
                                   images=False)
    np.testing.assert_allclose(draws, sum(best) / m, rtol=1e-12)
    assert res.layer_score == pytest.approx(sum(best) / m, rel=1e-12)


def test_bootstrap_resamples_the_top_inputs_by_default():
    """Documented default `images=True`: with the units held fixed the draws still vary (the
    top inputs are resampled), and they are the draws of an explicit `images=True`."""
    res = _hand_made_scores(10, 0.2)
    default = bootstrap_layer_scores(res, np.random.default_rng(0), reps=200, units=False)
    explicit = bootstrap_layer_scores(res, np.random.default_rng(0), reps=200, units=False,
                                      images=True)
    np.testing.assert_array_equal(default, explicit)
    assert default.std() > 0
    # one unit: a draw is the mean of its k local firing fractions resampled, over G; the
    # resampled mean is unbiased with variance var(lf) / k, so the mean of n draws lies within
    # 5 standard errors of the score (a false alarm has probability below 1e-6)
    one = _hand_made_scores(1, 1.0)
    lf, g = one.local_firing[0], one.global_rate[0]
    assert lf.std() > 0
    n = 2000
    draws = bootstrap_layer_scores(one, np.random.default_rng(1), reps=n, units=False)
    se = lf.std() / math.sqrt(lf.size) / g / math.sqrt(n)
    assert abs(draws.mean() - one.score[0]) < 5 * se


def test_bootstrap_with_no_draws_is_refused_by_name():
    res = _hand_made_scores(3, 0.2)
    with pytest.raises(ValueError, match=r"reps must be >= 1; got 0"):
        bootstrap_layer_scores(res, np.random.default_rng(0), reps=0)


@pytest.mark.parametrize("mode", ["circular", "zeros"])
def test_translation_shifts_rows_and_columns_of_any_leading_shape(mode):
    """A single image (H, W) or (C, H, W) shifts like the batch (N, C, H, W): along its last
    two axes. Oracle: numpy's roll (circular) and a pixel-by-pixel copy (zeros)."""
    img = np.arange(2 * 5 * 6, dtype=np.float64).reshape(2, 5, 6) + 1.0
    for dx, dy in [(2, 1), (-1, 3), (0, -2), (4, 0)]:
        if mode == "circular":
            expected = np.roll(img, shift=(dy, dx), axis=(-2, -1))
        else:
            expected = np.zeros_like(img)
            for i in range(5):
                for j in range(6):
                    if 0 <= i - dy < 5 and 0 <= j - dx < 6:
                        expected[:, i, j] = img[:, i - dy, j - dx]
        t = translation(dx, dy, mode)
        x = torch.as_tensor(img)
        np.testing.assert_array_equal(t(x[None]).numpy()[0], expected)        # (1, C, H, W)
        np.testing.assert_array_equal(t(x).numpy(), expected)                 # (C, H, W)
        np.testing.assert_array_equal(t(x[0]).numpy(), expected[0])           # (H, W)


# Killers of the mutants that survived the seed-2 mutation sample (docs/dev/mutation.md).
def _brightness_units(x):
    """Unit 0: total brightness; unit 1: one pixel (distinct responses on random images)."""
    return torch.stack([x.sum(dim=(1, 2, 3)), x[:, 0, 1, 1]], dim=1)


def test_no_natural_images_is_refused_by_name():
    with pytest.raises(ValueError, match="no natural images given"):
        invariance_scores(_brightness_units, torch.zeros((0, 1, 4, 4)), [lambda x: x])


def test_a_response_equal_to_the_threshold_does_not_fire():
    """A unit fires iff h(x) > t. Under the identity transformation the top k inputs
    (k = n_firing) fire and the (k+1)-th, whose response *is* the threshold, does not:
    with n_top = k + 1 the local rate is exactly k / (k + 1)."""
    images = torch.as_tensor(np.random.default_rng(0).random((20, 1, 4, 4)))
    res = invariance_scores(_brightness_units, images, [lambda x: x], rate=0.1, n_top=3)
    k = 2                                                  # round(0.1 * 20)
    assert np.all(res.local_firing[:, :k] == 1.0)
    assert np.all(res.local_firing[:, k] == 0.0)
    assert res.local_rate.tolist() == [k / (k + 1)] * 2


def test_global_rate_exactly_at_min_rate_fraction_is_valid():
    """`valid` means the global rate *reached* min_rate_fraction * rate: with distinct
    responses, rate = 0.1 and 20 images, G = 2/20 = 0.1 = 1.0 * rate, so the unit is scored."""
    images = torch.as_tensor(np.random.default_rng(0).random((20, 1, 4, 4)))
    res = invariance_scores(_brightness_units, images, [lambda x: x], rate=0.1,
                            min_rate_fraction=1.0)
    assert res.global_rate.tolist() == [0.1, 0.1]
    assert res.valid.tolist() == [True, True]
    assert np.all(np.isfinite(res.score))


def test_select_picks_every_per_unit_field():
    images = torch.as_tensor(np.random.default_rng(0).random((40, 1, 4, 4)))
    res = invariance_scores(_brightness_units, images, translations(1, mode="circular"),
                            rate=0.1)
    for units in ([1], slice(1, 2)):
        one = res.select(units)
        assert one.n_units == 1
        for field in ("threshold", "global_rate", "top_inputs", "local_firing", "local_rate",
                      "score", "valid"):
            assert np.array_equal(getattr(one, field), getattr(res, field)[[1]],
                                  equal_nan=field in ("score",)), field


# Killers of the mutants that survived the seed-4 mutation sample (docs/dev/mutation.md).
def test_a_rate_that_fires_on_every_input_is_refused_by_name():
    """round(rate * N) = N inputs firing leaves no response below the threshold v_{k+1}
    (there is none): 0.96 of 10 inputs is refused with a message naming the problem, while
    0.94 of 10 (k = 9) is the largest rate allowed, whose threshold is each unit's smallest
    response (oracle: the column minimum; distinct responses fire on 9 of 10)."""
    r = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match=r"^a firing rate of 0\.96 with 10 inputs leaves no "
                                         r"input below the threshold"):
        firing_thresholds(r, rate=0.96)
    thr = firing_thresholds(r, rate=0.94)
    assert thr.n_firing == 9
    np.testing.assert_array_equal(thr.threshold, r.min(axis=0))
    assert thr.global_rate.tolist() == [0.9, 0.9]


def test_no_natural_images_message_is_exactly_the_problem():
    """The empty-batch error is the plain sentence, for a tensor and for an array (a search
    for the phrase would also accept it buried in other text)."""
    for empty in (torch.zeros((0, 1, 4, 4)), np.zeros((0, 1, 4, 4))):
        with pytest.raises(ValueError, match=r"^no natural images given$"):
            invariance_scores(_brightness_units, empty, [lambda x: x])
