"""theory.pairing: pairing filters, mu, and the random baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from theory.pairing import (
    Pairing,
    normalise_filters,
    pairing,
    random_pairing_baseline,
    sign_flip_baseline,
)
from theory.testing import filter_bank_arrays, antipodal_banks


def _oracle(bank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    phi = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    mu, pair = [], []
    for i in range(len(phi)):
        sims = [(float(phi[i] @ phi[j]), j) for j in range(len(phi)) if j != i]
        best = min(sims)
        mu.append(best[0])
        pair.append(best[1])
    return np.array(mu), np.array(pair)


@given(filter_bank_arrays())
def test_pairing_matches_brute_force_oracle(bank):
    res = pairing(bank)
    mu, _ = _oracle(bank)
    np.testing.assert_allclose(res.mu, mu, atol=1e-12)
    assert np.all(res.pair != np.arange(len(bank)))
    phi = normalise_filters(bank)
    np.testing.assert_allclose(np.sum(phi * phi[res.pair], axis=1), res.mu, atol=1e-12)
    assert np.all(np.abs(res.mu) <= 1.0)


@given(antipodal_banks())
def test_antipodal_bank_pairs_exactly(bank):
    res = pairing(bank)
    np.testing.assert_allclose(res.mu, -1.0, atol=1e-12)


@given(filter_bank_arrays(), st.integers(0, 2**32 - 1))
def test_invariant_to_positive_scale_and_covariant_to_permutation(bank, seed):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.1, 10.0, size=(len(bank), 1))
    perm = rng.permutation(len(bank))
    ref = pairing(bank)
    np.testing.assert_allclose(pairing(scale * bank).mu, ref.mu, atol=1e-12)
    np.testing.assert_allclose(pairing(bank[perm]).mu, ref.mu[perm], atol=1e-12)


def test_torch_and_4d_shapes_agree_with_numpy():
    w = torch.randn(6, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    a, b = pairing(w), pairing(w.numpy().reshape(6, -1))
    np.testing.assert_allclose(a.mu, b.mu, atol=1e-6)
    assert a.dim == 18 and a.n_filters == 6


@pytest.mark.parametrize("bad, match", [
    (np.ones((1, 3, 3, 3)), "at least 2 filters"),
    (np.array([[1.0, 2.0], [0.0, 0.0], [1.0, 0.0]]), "all zero"),
    (np.array([[1.0, np.nan], [1.0, 0.0]]), "NaN"),
    (np.array([[1.0, np.inf], [1.0, 0.0]]), "NaN or Inf"),
    (np.ones(5), "shape"),
    (np.zeros((0, 3)), "empty"),
])
def test_bad_banks_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        pairing(bad)


def test_non_array_refused():
    with pytest.raises(TypeError):
        pairing([[1.0, 0.0], [0.0, 1.0]])


def _hoeffding(reps: int, value_range: float, delta: float = 1e-6) -> float:
    """Half-width of a Hoeffding interval for the mean of ``reps`` values in a range."""
    return value_range * math.sqrt(math.log(2 / delta) / (2 * reps))


@pytest.mark.parametrize("n", [2, 3, 5])
def test_baseline_mean_in_one_dimension_matches_closed_form(n):
    # d = 1: phi_i = sign(w_i); mu_i = -1 iff some other filter has the opposite sign,
    # probability 1 - 2^-(n-1); so E[mu_i] = -1 + 2^(2-n), and the bank mean has that mean.
    reps = 4000
    base = random_pairing_baseline(n, 1, repetitions=reps, seed=1)
    assert abs(base.mean - (-1 + 2.0 ** (2 - n))) <= _hoeffding(reps, 2.0)


def test_baseline_two_filters_has_mean_zero_and_variance_one_over_d():
    # n = 2: both mu equal the cosine of two independent directions: mean 0, variance 1/d.
    d, reps = 25, 4000
    base = random_pairing_baseline(2, (1, 5, 5), repetitions=reps, seed=2)
    assert abs(base.mean) <= _hoeffding(reps, 2.0)
    # the sample variance of a [-1,1]-bounded variable: relative error well within 20 % here
    assert abs(base.bank_means.var() * d - 1.0) < 0.2
    assert base.dim == d and base.kind == "iid"


def test_baseline_summary_is_consistent_and_seeded():
    a = random_pairing_baseline(16, (1, 7, 7), repetitions=50, seed=3)
    b = random_pairing_baseline(16, 49, repetitions=50, seed=3)
    np.testing.assert_array_equal(a.bank_means, b.bank_means)
    lo, hi = a.interval
    assert lo <= a.mean <= hi
    assert abs(np.sum(a.density * np.diff(a.edges)) - 1.0) < 1e-12
    assert a.tail_probability(-1.0) == 1 / 51 and a.tail_probability(1.0) == 1.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_filters=1, shape=4), "at least 2"),
    (dict(n_filters=4, shape=4, repetitions=1), "repetitions"),
    (dict(n_filters=4, shape=(0, 3)), "positive"),
    (dict(n_filters=4, shape=4, level=1.0), "level"),
])
def test_baseline_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        random_pairing_baseline(**kwargs)


def test_sign_flip_baseline_detects_antipodal_pairs():
    # [V; -V] with 8 pairs: a random sign pattern keeps every pair antipodal with prob 2^-8,
    # so the observed mean mu = -1 sits in the far tail of the sign-flipped means.
    rng = np.random.default_rng(4)
    half = rng.standard_normal((8, 12))
    bank = np.concatenate([half, -half])
    base = sign_flip_baseline(bank, repetitions=2000, seed=5)
    assert base.kind == "sign-flip"
    assert base.tail_probability(pairing(bank).mean) < 0.02


def test_sign_flip_baseline_of_two_filters_is_plus_minus_the_cosine():
    bank = np.array([[1.0, 0.0], [0.6, 0.8]])
    base = sign_flip_baseline(bank, repetitions=200, seed=0)
    assert set(np.round(base.bank_means, 12)) == {0.6, -0.6}


def test_sign_flip_test_is_not_fooled_by_low_rank_banks():
    # Filters confined to a 2-D subspace of R^20 pair strongly by chance: the i.i.d. baseline
    # in 20 dimensions calls that pairing, the sign-flip test (signs are symmetric) does not.
    ps, iid_tail = [], []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        bank = rng.standard_normal((12, 2)) @ rng.standard_normal((2, 20))
        mean = pairing(bank).mean
        iid_tail.append(random_pairing_baseline(12, 20, repetitions=200, seed=seed)
                        .tail_probability(mean))
        ps.append(sign_flip_baseline(bank, repetitions=200, seed=seed).tail_probability(mean))
    assert max(iid_tail) < 0.01
    # valid p-values: P(p <= 0.05) <= 0.05 + 1/201; 5 or more of 20 has probability < 0.02
    assert sum(p <= 0.05 for p in ps) < 5


# ----------------------------------------------------------------- the claims' checks and controls
from verify.claims.pairing import (  # noqa: E402
    EFFECT_MIN,
    _inversion_check,
    closer_status,
    fades_status,
    layer_effect,
    more_than_random_status,
    signflip_status,
)


def _paired_bank(rng, k=16, d=49, noise=0.3):
    """k/2 random filters and their noisy negatives: strong, known pairing."""
    half = rng.standard_normal((k // 2, d))
    return np.concatenate([half, -half + noise * rng.standard_normal((k // 2, d))])


def test_more_than_random_check_passes_on_pairs_and_fails_on_random_banks():
    rng = np.random.default_rng(0)
    paired = layer_effect(_paired_bank(rng), rng, reps=300, boot=500, signflip=False)
    assert more_than_random_status(paired) == "pass"
    assert paired["delta_ci95"][1] < -EFFECT_MIN
    # negative control: an i.i.d. bank (like an untrained initialisation) must not pass
    statuses = [more_than_random_status(layer_effect(rng.standard_normal((16, 49)), rng,
                                                     reps=300, boot=500, signflip=False))
                for _ in range(5)]
    assert "pass" not in statuses
    uniform_init = rng.uniform(-1, 1, (16, 49))  # torch's default (Kaiming-uniform) shape
    assert more_than_random_status(layer_effect(uniform_init, rng, reps=300, boot=500,
                                                signflip=False)) != "pass"


def test_fades_check_directions():
    rng = np.random.default_rng(1)
    strong = layer_effect(_paired_bank(rng, 16, 49), rng, reps=300, boot=500, signflip=False)
    rand = layer_effect(rng.standard_normal((32, 144)), rng, reps=300, boot=500, signflip=False)
    assert fades_status([strong, rand])[0] == "pass"
    assert fades_status([rand, strong])[0] == "fail"           # pairing grows with depth
    rand1 = layer_effect(rng.standard_normal((16, 49)), rng, reps=300, boot=500, signflip=False)
    assert fades_status([rand1, rand])[0] != "pass"            # the control: untrained banks


def test_closer_check_directions_and_self_control():
    rng = np.random.default_rng(2)
    paired = layer_effect(_paired_bank(rng), rng, reps=300, boot=500, signflip=False)
    rand = layer_effect(rng.standard_normal((16, 49)), rng, reps=300, boot=500, signflip=False)
    assert closer_status(paired, rand)[0] == "pass"
    assert closer_status(rand, paired)[0] == "fail"
    again = layer_effect(_paired_bank(np.random.default_rng(0)), rng, reps=300, boot=500,
                         signflip=False)
    assert closer_status(again, again)[0] == "inconclusive"    # ReLU in place of CReLU


def test_inversion_check_passes_on_crelu_features_and_fails_on_relu_only():
    from theory import ConvLayer, crelu

    rng = np.random.default_rng(3)
    layer = ConvLayer(rng.standard_normal((6, 1, 5, 5)), padding=2)
    x = rng.random((1, 12, 12))
    z = np.asarray(layer.forward(x))
    assert _inversion_check(layer, x, crelu(z, axis=0)).status == "pass"
    relu_only = np.concatenate([np.maximum(z, 0), np.zeros_like(z)])
    out = _inversion_check(layer, x, relu_only)
    assert out.status == "fail" and out.measured["relative_error"] > 1e-3
    # it fails on the residual: ReLU features are not consistent with any input
    assert out.measured["relative_residual"] > 1e3 * out.measured["residual_tolerance"]
    assert out.measured["error_tolerance"] < 1e-6     # not widened by the residual


def test_inversion_check_reports_a_non_injective_layer():
    from theory import ConvLayer, crelu_features

    rng = np.random.default_rng(4)
    w = np.zeros((2, 2, 3, 3))
    w[:, 0] = rng.standard_normal((2, 3, 3))   # ignores input channel 1: not injective
    layer = ConvLayer(w, padding=1)
    x = rng.random((2, 6, 6))
    out = _inversion_check(layer, x, crelu_features(x, layer))
    assert out.status == "pass" and out.measured["reported_non_injective"]


def test_signflip_check_passes_on_pairs_and_not_on_sign_symmetric_banks():
    rng = np.random.default_rng(5)
    paired = layer_effect(_paired_bank(rng, noise=0.1), rng, reps=500, boot=200)
    assert signflip_status(paired) == "pass"
    smooth = rng.standard_normal((16, 3)) @ rng.standard_normal((3, 49))  # low rank, random signs
    assert signflip_status(layer_effect(smooth, rng, reps=500, boot=200)) != "pass"


def test_inversion_image_falls_back_without_the_debian_files(monkeypatch, tmp_path):
    import verify.data.fashion_mnist as fm
    from verify.claims.base import Context
    from verify.claims.pairing import _test_image

    monkeypatch.setattr(fm, "fashion_mnist_available", lambda root=None: False)
    x, source = _test_image(Context("quick", 0, tmp_path))
    assert x.shape == (1, 28, 28) and x.dtype == np.float64
    assert "foolbox" in source or "camera" in source


# ---------------------------------------------------------------------------------------------
# Killers of the mutants that survived the seed-1 mutation sample (docs/dev/mutation.md).

def _rounding_unit_vector(sign: float) -> np.ndarray:
    """A vector v for which the computed cosine of v/|v| with sign * v/|v| leaves [-1, 1]."""
    rng = np.random.default_rng(0)
    for _ in range(10_000):
        v = rng.standard_normal(5)
        u = v / np.linalg.norm(v)
        c = float(u @ (sign * u))
        if abs(c) > 1.0:
            return v
    raise AssertionError("no vector whose rounded self-cosine leaves [-1, 1]")


def test_mu_of_identical_filters_is_clipped_to_one():
    """Two identical filters: the rounded cosine can be 1 + 2^-52; mu must stay <= 1."""
    v = _rounding_unit_vector(1.0)
    p = pairing(np.stack([v, v]))
    assert (p.mu <= 1.0).all() and np.allclose(p.mu, 1.0)


def test_histogram_counts_antipodal_pairs_whose_cosine_rounds_below_minus_one():
    """An antipodal pair whose rounded cosine is -1 - 2^-52 still lands in the first bin, both
    through `pairing` (which clips mu) and for a `Pairing` built from unclipped cosines (the
    histogram clips them itself)."""
    v = _rounding_unit_vector(-1.0)
    p = pairing(np.stack([v, -v]))
    edges = np.array([-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(p.histogram(edges), [1.0, 0.0])
    u = v / np.linalg.norm(v)
    raw = Pairing(mu=np.array([u @ -u, u @ -u]), pair=np.array([1, 0]), n_filters=2, dim=5)
    assert raw.mu.min() < -1.0                         # the premise: unclipped, below -1
    np.testing.assert_array_equal(raw.histogram(edges), [1.0, 0.0])


def test_zero_filter_dimension_is_refused_with_a_message():
    with pytest.raises(ValueError, match="filter dimension must be >= 1, got 0"):
        random_pairing_baseline(4, 0)


def test_baseline_in_several_chunks_matches_a_direct_oracle():
    """A bank large enough that the baseline is drawn in several chunks (4M values each):
    the bank means equal a direct computation from the same seeded stream, one bank at a time
    (numpy's normal stream is consumed value by value, so chunking does not change it)."""
    n, d, reps = 64, 147 * 3, 150          # 28224 values per bank: chunks of 141 banks
    base = random_pairing_baseline(n, d, repetitions=reps, seed=5)
    rng = np.random.default_rng(5)
    direct = []
    for _ in range(reps):
        w = rng.standard_normal((n, d))
        u = w / np.linalg.norm(w, axis=1, keepdims=True)
        g = u @ u.T
        np.fill_diagonal(g, np.inf)
        direct.append(np.clip(g.min(axis=1), -1.0, 1.0).mean())
    np.testing.assert_allclose(base.bank_means, direct, rtol=0, atol=1e-12)


# Killers of the mutants that survived the seed-2 mutation sample (docs/dev/mutation.md).
def test_too_few_filters_error_counts_the_filters_not_their_size():
    """A (1, 5) bank has one filter of dimension 5: the error must say 1, not 5."""
    with pytest.raises(ValueError, match=r"weight has 1 \(shape \(1, 5\)\)"):
        pairing(np.ones((1, 5)))


def test_random_bank_with_a_zero_filter_is_refused_by_name():
    """`_batched_mu` refuses a bank with an all-zero filter (direction undefined) by name."""
    from theory.pairing import _batched_mu
    with np.errstate(invalid="ignore", divide="ignore"):
        with pytest.raises(FloatingPointError, match="all-zero filter"):
            _batched_mu(lambda m: np.zeros((m, 3, 4)), 2, 12)


def test_antipodal_pair_mu_is_clipped_to_minus_one():
    """mu is a cosine, so it lies in [-1, 1] even where rounding makes <phi, -phi> < -1.

    For this w the float64 Gram entry of (w, -w) is -1 - 4e-16 (checked below, so the test
    keeps exercising the clip); the reported mu must be exactly -1.
    """
    w = np.random.default_rng(1).standard_normal((1, 7))
    bank = np.concatenate([w, -w])
    phi = normalise_filters(bank)
    assert (phi @ phi.T)[0, 1] < -1.0
    p = pairing(bank)
    assert np.all(p.mu >= -1.0)
    assert np.all(p.mu == -1.0)


# Killers of the mutants that survived the seed-3 mutation sample (docs/dev/mutation.md).
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_tensors_are_paired_in_float64(dtype):
    """A float32, float16 or bfloat16 filter bank is converted exactly to float64 and paired
    there: mu equals a float64 oracle on the same values (unit rows, Gram matrix, min over
    j != i) to float64 rounding, not to the rounding of the tensor's own dtype."""
    w = torch.randn(6, 2, 3, 3, generator=torch.Generator().manual_seed(1)).to(dtype)
    v = w.to(torch.float64).numpy().reshape(6, -1)                   # exact: a wider format
    u = v / np.linalg.norm(v, axis=1, keepdims=True)
    g = u @ u.T
    np.fill_diagonal(g, np.inf)
    p = pairing(w)
    assert p.mu.dtype == np.float64
    np.testing.assert_array_equal(p.pair, g.argmin(axis=1))
    np.testing.assert_allclose(p.mu, g.min(axis=1), rtol=0, atol=32 * np.finfo(np.float64).eps)


def test_level_zero_is_refused_by_name():
    """level is the coverage of an open interval (0, 1); 0 would ask for an empty interval."""
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), got 0\.0"):
        random_pairing_baseline(4, 3, level=0.0)
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), got 0\.0"):
        sign_flip_baseline(np.eye(4, 3) + 0.1, level=0.0)


def test_sign_flip_baseline_has_one_bank_mean_per_repetition_from_the_sign_patterns():
    """Oracle: enumerate all 2^K sign patterns s and run `pairing` on the flipped bank s_i w_i.
    Every bank mean of the baseline is one of these values, and there are exactly
    `repetitions` of them (the p-value (count + 1) / (repetitions + 1) counts on them)."""
    rng = np.random.default_rng(2)
    bank = rng.standard_normal((4, 5))
    patterns = np.array([[1.0 if (c >> i) & 1 else -1.0 for i in range(4)] for c in range(16)])
    possible = np.array([pairing(s[:, None] * bank).mean for s in patterns])
    for reps in (2, 7, 30):
        base = sign_flip_baseline(bank, repetitions=reps, seed=3)
        assert base.repetitions == reps and base.bank_means.shape == (reps,)
        gap = np.abs(base.bank_means[:, None] - possible[None]).min(axis=1)
        assert np.all(gap <= 1e-12)
        assert base.tail_probability(np.inf) == 1.0                    # (reps + 1) / (reps + 1)


def test_sign_flip_baseline_reports_the_shape_of_the_bank():
    base = sign_flip_baseline(np.random.default_rng(0).standard_normal((5, 2, 3, 3)),
                              repetitions=10, seed=4)
    assert (base.kind, base.n_filters, base.dim, base.repetitions, base.seed) == \
        ("sign-flip", 5, 18, 10, 4)


# Killers of the mutants that survived the seed-4 mutation sample (docs/dev/mutation.md).
def test_random_pairing_baseline_defaults_are_200_banks_from_seed_0():
    """The documented defaults: 200 random banks, seed 0, a central 95 % interval; the default
    call is the explicit one (same banks, so the same bank means)."""
    base = random_pairing_baseline(4, 3)
    assert (base.kind, base.repetitions, base.seed, base.level) == ("iid", 200, 0, 0.95)
    assert base.bank_means.shape == (200,)
    explicit = random_pairing_baseline(4, 3, repetitions=200, seed=0, level=0.95)
    np.testing.assert_array_equal(base.bank_means, explicit.bank_means)
