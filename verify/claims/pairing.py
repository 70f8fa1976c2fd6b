"""Pairing filters in trained networks (paper Sec. 2.1, 4.3) and inversion of a trained layer.

Replication claims use the suite models (``verify.train.SUITE``): a ReLU and a CReLU network
of the same filter counts trained on Fashion-MNIST. The quick profile reads the shipped
weights (verify/weights); ``--profile full`` retrains them (seeded) into the report folder.

Statistics, fixed before any run (docs/theory/pairing.md):

* per layer, the bank mean :math:`\\bar\\mu` against ``REPS`` i.i.d. Gaussian banks of the same
  shape: effect :math:`\\Delta = \\bar\\mu - E[\\bar\\mu_{\\rm rand}]`, its 95 % percentile
  bootstrap interval over filters (``BOOT`` resamples), the Monte Carlo tail probability
  :math:`p = P(\\bar\\mu_{\\rm rand} \\le \\bar\\mu)`, and the pairing strength
  :math:`r = \\Delta / (-1 - E[\\bar\\mu_{\\rm rand}])` (0: random, 1: every filter has its exact
  negative), comparable across layers of different shapes;
* the stricter sign-flip test (the same bank with random filter signs; an exact
  randomisation test of "signs are independent of directions") is its own claim,
  ``pairing-relu-beyond-sign-symmetry``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from theory import ConvLayer, crelu_features, invert_crelu
from theory.pairing import pairing, random_pairing_baseline, sign_flip_baseline
from verify import figures
from verify.claims.base import Claim, Context, Outcome

REPS = 1000        # random banks per baseline
BOOT = 2000        # bootstrap resamples over filters
EFFECT_MIN = 0.05  # a "material" effect: Delta at most -0.05 (mu-bar units)
P_MAX = 0.01       # Monte Carlo tail probability for "more than random"
RELU, CRELU = "relu-fashion-mnist", "crelu-fashion-mnist"


# ----------------------------------------------------------------------------- models
def _models(ctx: Context, stem: str) -> tuple[list[torch.Tensor], list[torch.Tensor], dict]:
    """Trained and initial conv weights of a suite model, and its card."""
    from verify.train import initial_model, suite_model

    model, card = suite_model(stem, retrain=ctx.profile == "full", out_dir=ctx.out_dir / "weights")
    return model.conv_weights(), initial_model(card).conv_weights(), card


# ----------------------------------------------------------------------------- statistics
def layer_effect(weight: np.ndarray | torch.Tensor, rng: np.random.Generator,
                 reps: int = REPS, boot: int = BOOT, signflip: bool = True) -> dict[str, Any]:
    """Pairing of one bank against the i.i.d. Gaussian baseline (and the sign-flip test).

    Returns mean mu, baseline mean and interval, Delta with its bootstrap interval, the tail
    probability, the pairing strength r with its bootstrap interval, and (``signflip``) the
    sign-flip baseline: its mean, interval and p-value. ``_boot_r`` holds the bootstrap draws
    of r (for comparisons).
    """
    p = pairing(weight)
    seed = int(rng.integers(2**31))
    base = random_pairing_baseline(p.n_filters, p.dim, repetitions=reps, seed=seed)
    idx = rng.integers(0, p.n_filters, size=(boot, p.n_filters))
    boot_means = p.mu[idx].mean(axis=1)
    gap = -1.0 - base.mean
    boot_delta = boot_means - base.mean
    out: dict[str, Any] = {
        "n_filters": p.n_filters, "dim": p.dim, "mean_mu": p.mean,
        "random_mean": base.mean, "random_interval95": list(base.interval),
        "delta": p.mean - base.mean,
        "delta_ci95": np.quantile(boot_delta, [0.025, 0.975]).tolist(),
        "tail_p": base.tail_probability(p.mean),
        "strength_r": (p.mean - base.mean) / gap,
        "strength_r_ci95": np.quantile(boot_delta / gap, [0.025, 0.975]).tolist(),
        "frac_mu_below_-0.9": float((p.mu < -0.9).mean()),
        "_boot_r": boot_delta / gap, "_mu": p.mu, "_pair": p.pair, "_base": base,
    }
    if signflip:
        sf = sign_flip_baseline(weight, repetitions=reps, seed=seed + 1)
        out.update({"signflip_mean": sf.mean, "signflip_interval95": list(sf.interval),
                    "delta_vs_signflip": p.mean - sf.mean,
                    "p_signflip": sf.tail_probability(p.mean), "_signflip": sf})
    return out


def more_than_random_status(eff: dict[str, Any]) -> str:
    """pass: CI of Delta below -EFFECT_MIN and p <= P_MAX; fail: CI reaches 0; else inconclusive."""
    lo, hi = eff["delta_ci95"]
    if hi < -EFFECT_MIN and eff["tail_p"] <= P_MAX:
        return "pass"
    if hi >= 0:
        return "fail"
    return "inconclusive"


def public(eff: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able part of a layer effect (drops the private ``_`` entries)."""
    return {k: v for k, v in eff.items() if not k.startswith("_")}


#: The planted positive's pairing: half of the filters are noisy negatives of the other half,
#: partner = -(w + PLANTED_NOISE * ||w|| / sqrt(d) * n) (cosine about -1/sqrt(1 + 0.3^2)).
PLANTED_NOISE = 0.3


def planted_bank(shape: tuple[int, ...], rng: np.random.Generator,
                 paired_fraction: float = 0.5) -> np.ndarray:
    """An i.i.d. Gaussian bank of ``shape`` in which pairing is built in.

    The first ``round(paired_fraction * K / 2)`` filters get a partner among the next ones:
    a noisy negative (``PLANTED_NOISE``); the other filters stay i.i.d. Gaussian.
    """
    k, d = shape[0], int(np.prod(shape[1:]))
    w = rng.standard_normal((k, d))
    pairs = int(round(paired_fraction * k / 2))
    for i in range(pairs):
        noise = rng.standard_normal(d)
        w[pairs + i] = -(w[i] + PLANTED_NOISE * np.linalg.norm(w[i]) / np.sqrt(d) * noise)
    return w.reshape(shape)


def _shapes(ctx: Context, stem: str) -> list[tuple[int, ...]]:
    return [tuple(w.shape) for w in _models(ctx, stem)[0]]


def fades_status(effects: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Pairing fades with depth: strength r of conv1 above that of the deepest conv layer.

    pass: conv1 pairs more than random (``more_than_random_status`` = pass) and the 95 %
    bootstrap interval of r1 - r_last lies above 0; fail: that interval lies below 0 (pairing
    grows with depth); inconclusive otherwise.
    """
    diff = effects[0]["_boot_r"] - effects[-1]["_boot_r"]
    lo, hi = np.quantile(diff, [0.025, 0.975])
    measured = {"strength_r_per_layer": [e["strength_r"] for e in effects],
                "r1_minus_rlast": effects[0]["strength_r"] - effects[-1]["strength_r"],
                "r1_minus_rlast_ci95": [float(lo), float(hi)],
                "conv1_more_than_random": more_than_random_status(effects[0])}
    if hi < 0:
        return "fail", measured
    if lo > 0 and measured["conv1_more_than_random"] == "pass":
        return "pass", measured
    return "inconclusive", measured


def closer_status(relu_eff: dict[str, Any], crelu_eff: dict[str, Any]) -> tuple[str, dict]:
    """CReLU conv1 closer to random than ReLU conv1: r_relu - r_crelu > 0.

    pass: the 95 % bootstrap interval of r_relu - r_crelu (independent resamples of the two
    banks) lies above 0; fail: it lies below 0; inconclusive otherwise.
    """
    diff = relu_eff["_boot_r"] - crelu_eff["_boot_r"]
    lo, hi = np.quantile(diff, [0.025, 0.975])
    measured = {"r_relu": relu_eff["strength_r"], "r_crelu": crelu_eff["strength_r"],
                "r_relu_minus_r_crelu": relu_eff["strength_r"] - crelu_eff["strength_r"],
                "r_relu_minus_r_crelu_ci95": [float(lo), float(hi)],
                "crelu_ci_of_delta_contains_0": bool(crelu_eff["delta_ci95"][0] <= 0
                                                     <= crelu_eff["delta_ci95"][1])}
    if lo > 0:
        return "pass", measured
    if hi < 0:
        return "fail", measured
    return "inconclusive", measured


# ----------------------------------------------------------------------------- claim 1
_EFFECTS: dict[tuple, list[dict[str, Any]]] = {}


def _effects(ctx: Context, stem: str, trained: bool = True) -> list[dict[str, Any]]:
    """Layer effects of a suite model's three conv banks (trained or initial), computed once
    per report (every claim sees the same numbers)."""
    key = (str(ctx.out_dir.resolve()), ctx.profile, ctx.seed, stem, trained)
    if key not in _EFFECTS:
        weights = _models(ctx, stem)[0 if trained else 1]
        rng = ctx.rng(f"pairing-{stem}-{'trained' if trained else 'initial'}")
        _EFFECTS[key] = [layer_effect(w, rng) for w in weights]
    return _EFFECTS[key]


def _relu_lower(ctx: Context) -> Outcome:
    effects = _effects(ctx, RELU)
    c_effects = _effects(ctx, CRELU)
    card = _models(ctx, RELU)[2]
    measured: dict[str, Any] = {"model": RELU, "test_accuracy": card["test_accuracy"],
                                "status_per_layer": [more_than_random_status(e) for e in effects]}
    for i, e in enumerate(effects):
        measured[f"conv{i + 1}"] = public(e)
    trained, init, _ = _models(ctx, RELU)
    measured["relative_change_from_init"] = [float((w - w0).norm() / w0.norm())
                                             for w, w0 in zip(trained, init)]
    banks = {"ReLU": _models(ctx, RELU)[0][0], "CReLU": _models(ctx, CRELU)[0][0]}
    banks = {k: w.detach().double().numpy() for k, w in banks.items()}
    figs = [figures.pairing_histograms({"ReLU": effects, "CReLU": c_effects},
                                       ctx.figures_dir / "pairing-histograms.png"),
            figures.pairing_mosaic({k: (w, pairing(w)) for k, w in banks.items()},
                                   ctx.figures_dir / "pairing-mosaic.png")]
    return Outcome(more_than_random_status(effects[0]), measured, figs)


def _relu_lower_null(ctx: Context) -> Outcome:
    eff = _effects(ctx, RELU, trained=False)[0]
    return Outcome(more_than_random_status(eff), {"conv1_untrained": public(eff)})


def _planted_effect(ctx: Context, shape: tuple[int, ...], salt: str, signflip: bool = True,
                    paired_fraction: float = 0.5):
    """layer_effect of a planted bank of ``shape`` (computed once per report)."""
    key = (str(ctx.out_dir.resolve()), ctx.profile, ctx.seed, "planted", shape, salt,
           paired_fraction)
    if key not in _EFFECTS:
        bank = planted_bank(shape, ctx.rng(f"pairing-planted-{salt}"), paired_fraction)
        _EFFECTS[key] = [layer_effect(bank, ctx.rng(f"pairing-planted-stats-{salt}"),
                                      signflip=signflip)]
    return _EFFECTS[key][0]


def _relu_lower_positive(ctx: Context) -> Outcome:
    eff = _planted_effect(ctx, _shapes(ctx, RELU)[0], "conv1")
    return Outcome(more_than_random_status(eff), {"planted_conv1": public(eff)})


# ----------------------------------------------------------------------------- claim 1b
P_SIGNFLIP = 0.01
P_SIGNFLIP_FAIL = 0.1


def signflip_status(eff: dict[str, Any]) -> str:
    """pass: sign-flip p <= P_SIGNFLIP; fail: p > P_SIGNFLIP_FAIL; inconclusive between."""
    p = eff["p_signflip"]
    return "pass" if p <= P_SIGNFLIP else "fail" if p > P_SIGNFLIP_FAIL else "inconclusive"


def _beyond_signs(ctx: Context) -> Outcome:
    effects = _effects(ctx, RELU)
    measured = {f"conv{i + 1}": {k: public(e)[k] for k in ("mean_mu", "signflip_mean",
                                                         "signflip_interval95", "p_signflip",
                                                         "random_mean")}
                for i, e in enumerate(effects)}
    measured["status_per_layer"] = [signflip_status(e) for e in effects]
    measured["crelu_conv1_p_signflip"] = _effects(ctx, CRELU)[0]["p_signflip"]
    return Outcome(signflip_status(effects[0]), measured)


def _beyond_signs_positive(ctx: Context) -> Outcome:
    # every filter paired: with P pairs among the filters, random signs keep all P antipodal
    # with probability 2^-P, so the sign-flip p-value cannot fall below ~2^-P; half the
    # filters paired (4 pairs of 16) cannot reach P_SIGNFLIP = 0.01, all of them (8) can
    eff = _planted_effect(ctx, _shapes(ctx, RELU)[0], "conv1-all", paired_fraction=1.0)
    return Outcome(signflip_status(eff), {"planted_conv1_p_signflip": eff["p_signflip"],
                                          "mean_mu": eff["mean_mu"],
                                          "signflip_mean": eff["signflip_mean"]})


#: Dimension of the planted null's filter subspace (lowest spatial frequencies).
SMOOTH_DIM = 6


def smooth_bank(shape: tuple[int, ...], rng: np.random.Generator, dim: int = SMOOTH_DIM
                ) -> np.ndarray:
    """A bank of ``shape`` (K, C, kh, kw) whose filters are i.i.d. Gaussian combinations of the
    ``dim`` lowest-frequency 2-d DCT atoms (channel by channel, lowest u + v first).

    Its law is invariant under flipping filter signs (no sign structure), but it spans only
    ``dim`` of the C kh kw dimensions: against i.i.d. Gaussian filters of full dimension it
    looks strongly "paired", against its own sign flips it does not.

    Examples
    --------
    >>> import numpy as np
    >>> b = smooth_bank((16, 1, 7, 7), np.random.default_rng(0))
    >>> b.shape, int(np.linalg.matrix_rank(b.reshape(16, -1)))
    ((16, 1, 7, 7), 6)
    """
    k, c, kh, kw = shape
    atoms = []
    for ch in range(c):
        for u in range(kh):
            for v in range(kw):
                atoms.append((u + v, ch, u, v))
    atoms.sort()
    basis = np.zeros((dim, c, kh, kw))
    for i, (_, ch, u, v) in enumerate(atoms[:dim]):
        cu = np.cos(np.pi * (np.arange(kh) + 0.5) * u / kh)
        cv = np.cos(np.pi * (np.arange(kw) + 0.5) * v / kw)
        basis[i, ch] = np.outer(cu, cv) / np.linalg.norm(np.outer(cu, cv))
    coeffs = rng.standard_normal((k, dim))
    return np.tensordot(coeffs, basis, axes=1)


def _beyond_signs_null(ctx: Context) -> Outcome:
    """A smooth bank of conv1's shape (filters in the span of its 6 lowest-frequency DCT atoms,
    Gaussian coefficients): low-dimensional like learned filters, no sign structure."""
    bank = smooth_bank(_shapes(ctx, RELU)[0], ctx.rng("pairing-smooth-null"))
    eff = layer_effect(bank, ctx.rng("pairing-random-signs-stats"))
    return Outcome(signflip_status(eff), {"smooth_bank_p_signflip": eff["p_signflip"],
                                          "mean_mu": eff["mean_mu"],
                                          "signflip_mean": eff["signflip_mean"],
                                          "random_mean": eff["random_mean"]})


# ----------------------------------------------------------------------------- claim 2
def _fades(ctx: Context) -> Outcome:
    effects = _effects(ctx, RELU)
    status, measured = fades_status(effects)
    measured["delta_per_layer"] = [e["delta"] for e in effects]
    return Outcome(status, measured)


def _fades_planted(ctx: Context, reversed_: bool) -> Outcome:
    """Untrained banks of the three layers, with a planted paired bank at conv1 (positive) or
    at the deepest layer (reversed)."""
    effects = list(_effects(ctx, RELU, trained=False))
    i = len(effects) - 1 if reversed_ else 0
    shape = _shapes(ctx, RELU)[i]
    effects[i] = _planted_effect(ctx, shape, f"conv{i + 1}", signflip=False)
    status, measured = fades_status(effects)
    measured["planted_at"] = f"conv{i + 1}"
    return Outcome(status, measured)


# ----------------------------------------------------------------------------- claim 3
def _closer(ctx: Context) -> Outcome:
    r_eff, c_eff = _effects(ctx, RELU)[0], _effects(ctx, CRELU)[0]
    status, measured = closer_status(r_eff, c_eff)
    measured.update({"relu_conv1": public(r_eff), "crelu_conv1": public(c_eff),
                     "relu_test_accuracy": _models(ctx, RELU)[2]["test_accuracy"],
                     "crelu_test_accuracy": _models(ctx, CRELU)[2]["test_accuracy"],
                     "crelu_conv1_more_than_random": more_than_random_status(c_eff)})
    return Outcome(status, measured)


def _closer_planted(ctx: Context, reversed_: bool) -> Outcome:
    """A planted paired bank against an untrained (i.i.d.) bank of the same shape: in the ReLU
    slot (positive: the ReLU bank pairs more) or in the CReLU slot (reversed)."""
    planted = _planted_effect(ctx, _shapes(ctx, RELU)[0], "conv1")
    untrained = _effects(ctx, CRELU if not reversed_ else RELU, trained=False)[0]
    relu_eff, crelu_eff = (untrained, planted) if reversed_ else (planted, untrained)
    status, measured = closer_status(relu_eff, crelu_eff)
    measured["relu_slot"] = "untrained ReLU conv1" if reversed_ else "planted paired bank"
    measured["crelu_slot"] = "planted paired bank" if reversed_ else "untrained CReLU conv1"
    return Outcome(status, measured)


# ----------------------------------------------------------------------------- claim 4
def _first_layer(ctx: Context) -> ConvLayer:
    w = _models(ctx, CRELU)[0][0].double()
    return ConvLayer(w, stride=1, padding=w.shape[-1] // 2)


def _test_image(ctx: Context) -> tuple[np.ndarray, str]:
    """A Fashion-MNIST test image (1, 28, 28); where the Debian files are absent, one of
    foolbox's bundled Fashion-MNIST samples, else a 28x28 grey crop of a bundled photo."""
    from verify.data.fashion_mnist import fashion_mnist_available, load_fashion_mnist
    from verify.data.foolbox_data import foolbox_available, foolbox_image

    rng = ctx.rng("pairing-trained-inversion")
    if fashion_mnist_available():
        x, _ = load_fashion_mnist("test")
        i = int(rng.integers(len(x)))
        return x[i].astype(np.float64), f"fashion-mnist test image {i}"
    if foolbox_available():
        i = int(rng.integers(20))
        img, _ = foolbox_image("fashionMNIST", i)
        return (img.astype(np.float64) / 255.0)[None], f"foolbox fashionMNIST sample {i}"
    from verify.data.images import load_photo

    return load_photo("camera", size=28), "skimage camera, central 28x28 crop"


_BOUNDS: dict[tuple, Any] = {}
LSMR_TOL = 1e-15   # atol = btol of the LSMR solve
LSMR_MAXITER = None  # scipy's default, min(M, D)


def _inversion_check(layer: ConvLayer, x: np.ndarray, features: np.ndarray,
                     key: tuple | None = None) -> Outcome:
    import warnings

    from theory.activations import crelu_preactivation
    from verify.claims.exact import exact_verdict

    bounds = _BOUNDS.get(key) if key is not None else None
    if bounds is None:
        # exact to sqrt(max(M, D) eps) from the dense Gram matrix: cheaper than the SVD of
        # the M x D matrix when M >> D (theory.frames.gram_eigen_bounds)
        bounds = layer.at(x.shape).frame_bounds("dense-gram")
        if key is not None:
            _BOUNDS[key] = bounds
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = invert_crelu(features, layer, x.shape, "lsmr", bounds=bounds,
                           atol=LSMR_TOL, btol=LSMR_TOL, maxiter=LSMR_MAXITER)
    fb = res.frame_bounds
    d, m = x.size, int(np.prod(layer.output_shape(x.shape)))
    z = crelu_preactivation(np.asarray(features), axis=0)
    rel = float(np.linalg.norm(np.asarray(layer.forward(res.x)) - z) / np.linalg.norm(z))
    measured = {"frame_bounds": fb.as_dict(), "method": res.solver, "stopping": res.stopping,
                "a_posteriori_error_bound": res.error_bound(),
                "input_shape": list(x.shape), "D": d, "M": m,
                "warnings": [str(w.message)[:200] for w in caught]}
    if not fb.injective:
        # the theorem's other branch: the layer is reported non-injective with its frame bound
        measured["reported_non_injective"] = bool(res.injective is False and caught)
        return Outcome("pass" if measured["reported_non_injective"] else "fail", measured)
    v = exact_verdict(layer, fb, res, x, rel)
    measured.update(v)
    return Outcome("pass" if v["pass"] else "fail", measured)


def _inversion(ctx: Context) -> Outcome:
    (layer, (x, source)) = _first_layer(ctx), _test_image(ctx)
    feats = crelu_features(x, layer)
    out = _inversion_check(layer, x, feats, _bounds_key(ctx))
    out.measured["image"] = source
    return out


def _inversion_control(ctx: Context) -> Outcome:
    layer, (x, _) = _first_layer(ctx), _test_image(ctx)
    z = np.asarray(layer.forward(x))
    relu_only = np.concatenate([np.maximum(z, 0), np.zeros_like(z)], axis=0)
    return _inversion_check(layer, x, relu_only, _bounds_key(ctx))


def _bounds_key(ctx: Context) -> tuple:
    return (str(ctx.out_dir.resolve()), ctx.profile, CRELU)


# ----------------------------------------------------------------------------- registry
_RANDOM_RULE = (f"pass iff the 95% bootstrap interval (over filters, {BOOT} resamples) of "
                f"Delta = mean mu - mean mu(random) lies below -{EFFECT_MIN} AND the Monte Carlo "
                f"tail probability over {REPS} i.i.d. N(0,1) banks of the same shape is <= {P_MAX}; "
                "fail iff that interval reaches 0 or above; inconclusive otherwise")

_PLANTED_SHORT = (f"a planted bank of conv1's shape (i.i.d. Gaussian, half of its filters "
                  f"noisy negatives of the other half, noise {PLANTED_NOISE})")
_PLANTED = ("the same check on " + _PLANTED_SHORT)
_PLANTED_LAYER = (f"a planted bank of that layer's shape (i.i.d. Gaussian, half of its filters "
                  f"noisy negatives of the other half, noise {PLANTED_NOISE})")

CLAIMS = [
    Claim(
        id="pairing-relu-lower-layers",
        kind="replication",
        statement="In a ReLU CNN trained on natural images the first-layer filters pair more "
                  "than random: mean mu_i is below that of i.i.d. Gaussian banks of the same "
                  "count and shape (ReLU model trained on Fashion-MNIST; conv2, conv3 reported).",
        source="Shang et al. 2016, Sec. 2.1, Fig. 2; docs/theory/pairing.md",
        docs="theory/pairing.md#what-the-claims-compute-fixed-before-any-run",
        threshold=_RANDOM_RULE + "; status from conv1",
        tolerance_rationale=(
            f"{REPS} random banks pin the baseline mean to about sd/sqrt({REPS}) (<0.002 here) "
            "and resolve tail probabilities down to 1/1001; the bootstrap interval reflects "
            "which filters the bank happened to learn; 0.05 in mean mu is a fixed minimum "
            "effect (the paper's histograms differ by far more), chosen before the run."),
        check=_relu_lower,
        planted_positive=_relu_lower_positive,
        planted_positive_description=_PLANTED + "; must pass",
        planted_null=_relu_lower_null,
        planted_null_description="the same check on the untrained conv1 bank the ReLU model "
                                 "started from (its seeded i.i.d. initialisation): must not pass",
    ),
    Claim(
        id="pairing-relu-beyond-sign-symmetry",
        kind="replication",
        statement="The ReLU model's conv1 pairing is antipodal structure, not an artefact of the "
                  "filters' subspace or smoothness: its mean mu is below that of the same bank "
                  "with the sign of every filter flipped at random (our stricter test).",
        source="our formalisation of Shang et al. 2016, Sec. 2.1 (docs/theory/pairing.md, "
               "Proposition 2)",
        docs="theory/pairing.md#the-random-baseline",
        threshold=f"pass iff the sign-flip randomisation p-value ({REPS} sign patterns, "
                  f"(count+1)/(R+1)) is <= {P_SIGNFLIP}; fail iff it is > {P_SIGNFLIP_FAIL}; "
                  "inconclusive otherwise; status from conv1",
        tolerance_rationale="for a bank whose law is invariant under flipping filter signs the "
                            "p-value is exact (valid) by exchangeability; 0.01 and 0.1 are the "
                            "usual strong / no-evidence levels, fixed before the run.",
        check=_beyond_signs,
        planted_positive=_beyond_signs_positive,
        planted_positive_description=(
            "the same test on a planted bank of conv1's shape in which every filter has a noisy "
            f"negative (i.i.d. Gaussian, noise {PLANTED_NOISE}; random signs break its pairs; "
            "with P pairs the p-value cannot fall below about 2^-P, so all 8 pairs are needed "
            "for p <= 0.01); must pass"),
        planted_null=_beyond_signs_null,
        planted_null_description=f"a smooth bank of conv1's shape: Gaussian combinations of "
                                 f"its {SMOOTH_DIM} lowest-frequency DCT atoms (low-dimensional "
                                 "like learned filters, no sign structure; far below the "
                                 "i.i.d. baseline, so a test against i.i.d. filters would pass "
                                 "it); must not pass",
    ),
    Claim(
        id="pairing-fades-with-depth",
        kind="replication",
        statement="The pairing fades with depth: the pairing strength r = Delta/(-1 - mean "
                  "mu(random)) of the ReLU model's conv1 exceeds that of its deepest conv layer.",
        source="Shang et al. 2016, Sec. 2.1 (conv1-conv5 histograms); docs/theory/pairing.md",
        docs="theory/pairing.md#what-the-claims-compute-fixed-before-any-run",
        threshold="pass iff conv1 pairs more than random (rule of pairing-relu-lower-layers) AND "
                  f"the 95% bootstrap interval of r1 - r3 ({BOOT} resamples) lies above 0; fail "
                  "iff that interval lies below 0; inconclusive otherwise",
        tolerance_rationale="r rescales Delta by the distance from the random mean to perfect "
                            "pairing, so layers of different shapes are comparable; the interval "
                            "is the bootstrap over filters of both layers (independent).",
        check=_fades,
        planted_positive=lambda ctx: _fades_planted(ctx, reversed_=False),
        planted_positive_description="the untrained banks of the three layers with conv1 "
                                     "replaced by " + _PLANTED_LAYER + "; must pass",
        planted_null=lambda ctx: _fades_planted(ctx, reversed_=True),
        planted_null_description="the reversed effect: the untrained banks with the deepest "
                                 "layer replaced by " + _PLANTED_LAYER + " (pairing grows "
                                 "with depth); must not pass",
    ),
    Claim(
        id="pairing-crelu-closer-to-random",
        kind="replication",
        statement="With CReLU the first-layer pairing is closer to random than with ReLU: r "
                  "of the CReLU model's conv1 is below r of the ReLU model's conv1 (same filter "
                  "count and shape, same data, steps and seed).",
        source="Shang et al. 2016, Sec. 4.3; docs/theory/pairing.md",
        docs="theory/pairing.md#the-experiment-and-the-confound",
        threshold=f"pass iff the 95% bootstrap interval ({BOOT} resamples per bank) of r_relu - "
                  "r_crelu lies above 0; fail iff it lies below 0; inconclusive otherwise",
        tolerance_rationale="both banks have the same shape, so they share one random baseline "
                            "scale; the bootstrap resamples the two banks independently.",
        check=_closer,
        planted_positive=lambda ctx: _closer_planted(ctx, reversed_=False),
        planted_positive_description=_PLANTED_SHORT + " in the ReLU slot against the "
                                     "untrained CReLU conv1 (i.i.d.) in the CReLU slot; must "
                                     "pass",
        planted_null=lambda ctx: _closer_planted(ctx, reversed_=True),
        planted_null_description="the reversed effect: the untrained ReLU conv1 in the ReLU "
                                 "slot against " + _PLANTED_SHORT + " in the CReLU slot; must "
                                 "not pass",
    ),
    Claim(
        id="pairing-trained-inversion",
        kind="theorem",
        statement="Proposition 2.1 on trained filters: theory.invert_crelu recovers a Fashion-MNIST "
                  "test image (foolbox's bundled sample where the Debian files are absent) exactly from the CReLU features of the trained CReLU model's first "
                  "layer (zero padding, stride 1, no bias), or reports with its frame bound that "
                  "the layer is not injective.",
        source="Shang et al. 2016, Sec. 2.3, Proposition 2.1; docs/theory/proposition-2-1.md",
        docs="theory/proposition-2-1.md#proposition",
        threshold="injective layer: LSMR converged (not stopped on maxiter), relative residual "
                  "||Ax' - z||/||z|| <= tau and ||x' - x||/||x|| <= cond * tau, tau = "
                  "4 sqrt(C kh kw K) cond(A) u (theory.checks.rounding_residual_tolerance) or "
                  "LSMR's stopping guarantee if larger (theory.checks.lsmr_residual_tolerance); "
                  "non-injective: a NonInjectiveWarning and injective=False",
        tolerance_rationale="CReLU features are consistent (z = Ax), so the residual is rounding "
                            "only: the float64 features carry a backward error ~ 4 sqrt(C kh kw "
                            "K) u (Higham & Mary 2019), amplified by cond(A); LSMR with atol = "
                            "btol = 1e-15 guarantees btol + (atol + drift) ||A|| ||x'|| / ||z||; "
                            "for an injective A, err <= cond * residual. The tolerance is fixed "
                            "by the layer, never by the measured residual (verify.claims.exact). "
                            "Frame bounds: exact eigenvalues of the dense Gram matrix A^T A.",
        check=_inversion,
        negative_control=_inversion_control,
        negative_control_description="ReLU-only features: the negative half of the CReLU "
                                     "features zeroed (what a ReLU layer keeps), same inverse",
    ),
]
