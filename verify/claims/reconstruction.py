"""Claims: Proposition 2.1, exact recovery of x from CReLU(Ax), on random banks and photos."""

from __future__ import annotations

import warnings

import numpy as np

from theory import ConvLayer, crelu_features, invert_crelu
from theory.activations import crelu_preactivation
from theory.checks import InconsistentFeaturesWarning
from verify import figures
from verify.claims.base import Claim, Context, Outcome, status_from
from verify.claims.exact import exact_verdict
from verify.data import load_photo


def relu_only(h: np.ndarray) -> np.ndarray:
    """Negative control: keep the positive half, zero the negative half (ReLU features)."""
    h = h.copy()
    k = h.shape[-3] // 2
    h[..., k:, :, :] = 0.0
    return h


#: LSMR's stopping rule in these claims (atol = btol; maxiter): tight enough that LSMR's own
#: guarantee is at the rounding level of the data, with room for the iterations it needs.
LSMR_TOL, LSMR_MAXITER = 1e-14, 5000


def recover(layer, x, method, broken=False):
    """Invert CReLU features of x; return (the verdict of theory's bounds, the result).

    Every warning of the inverse is recorded; an inverse that warns does not pass (for
    CReLU features of an injective layer it must not warn; ReLU features are not a CReLU
    output, and the inverse says so, by design).
    """
    h = crelu_features(x, layer)
    if broken:
        h = relu_only(h)
    kwargs = (dict(atol=LSMR_TOL, btol=LSMR_TOL, maxiter=LSMR_MAXITER)
              if method in ("lsmr", "cgls") else {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = invert_crelu(h, layer, x.shape[-3:], method, **kwargs)
    v = verdicts(layer, h, x, res)
    v["warnings"] = sorted({w.category.__name__ for w in caught})
    v["pass"] = v["pass"] and not caught
    return v, res


def verdicts(layer, h, x, res) -> dict:
    """The worst case over the inputs of a batch: every input must pass (exact.exact_verdict).

    The residual is measured here, with the layer's forward pass on the reconstruction
    against z = h+ - h- (not taken from the inverse).
    """
    z = crelu_preactivation(h, axis=h.ndim - 3)
    xs, zs = np.asarray(res.x).reshape(-1, *x.shape[-3:]), z.reshape(-1, *z.shape[-3:])
    items = list(res) if hasattr(res, "__len__") else [res]
    rows = []
    for xi, x_true, zi, ri in zip(xs, x.reshape(-1, *x.shape[-3:]), zs, items):
        rel = float(np.linalg.norm(np.asarray(layer.forward(xi)) - zi) / np.linalg.norm(zi))
        rows.append(exact_verdict(layer, ri.frame_bounds, ri, x_true, rel))
    worst = max(rows, key=lambda r: (not r["pass"], r["relative_error"] / r["error_tolerance"]))
    return {**worst, "pass": all(r["pass"] for r in rows), "inputs": len(rows)}


def random_cases(ctx: Context):
    rng = ctx.rng("prop21-random")
    g = lambda *s: rng.standard_normal(s) / np.sqrt(np.prod(s[1:]))  # noqa: E731
    cases = [
        ("circular s=1, 16 filters 3x5x5", ConvLayer(g(16, 3, 5, 5), padding=2, padding_mode="circular"), (3, 32, 32), "fft"),
        ("circular s=1, 8 filters 3x3x3", ConvLayer(g(8, 3, 3, 3), padding=1, padding_mode="circular"), (3, 20, 24), "fft"),
        ("zeros s=1, 8 filters 3x3x3", ConvLayer(g(8, 3, 3, 3), padding=1), (3, 16, 16), "dense"),
        ("zeros s=2, 16 filters 3x4x4", ConvLayer(g(16, 3, 4, 4), stride=2, padding=1), (3, 16, 18), "dense"),
        ("zeros s=2, 24 filters 3x5x5", ConvLayer(g(24, 3, 5, 5), stride=2, padding=2), (3, 16, 16), "lsmr"),
        ("circular s=3, 40 filters 3x5x5", ConvLayer(g(40, 3, 5, 5), stride=3, padding=1, padding_mode="circular"), (3, 18, 18), "lsmr"),
        ("zeros s=2, 24 filters 3x5x5", ConvLayer(g(24, 3, 5, 5), stride=2, padding=2), (3, 20, 20), "cgls"),
    ]
    if ctx.profile == "full":
        cases.append(("zeros s=2, 24 filters 3x5x5", ConvLayer(g(24, 3, 5, 5), stride=2, padding=2), (3, 64, 64), "lsmr"))
        cases.append(("circular s=1, 64 filters 3x7x7", ConvLayer(g(64, 3, 7, 7), padding=3, padding_mode="circular"), (3, 224, 224), "fft"))
    return rng, cases


def check_random(ctx: Context, broken: bool = False) -> Outcome:
    rng, cases = random_cases(ctx)
    rows, ok = [], True
    for name, layer, shape, method in cases:
        x = rng.standard_normal((2, *shape))
        v, res = recover(layer, x, method, broken)
        ok &= v["pass"]
        rows.append({"layer": name, "input": shape, **v,
                     "lower_frame_bound": res.frame_bounds.lower})
    return Outcome(status_from(ok), {
        "cases": rows,
        "worst_error_over_tolerance": max(r["relative_error"] / r["error_tolerance"] for r in rows),
        "worst_residual_over_tolerance": max(r["relative_residual"] / r["residual_tolerance"]
                                             for r in rows),
        "solvers": sorted({r["solver"] for r in rows})})


PHOTO_NAMES = ("astronaut", "chelsea", "coffee", "china")


def photo_layer(ctx: Context) -> ConvLayer:
    rng = ctx.rng("prop21-photos")
    return ConvLayer(rng.standard_normal((24, 3, 7, 7)) / np.sqrt(147), padding=3,
                     padding_mode="circular")


def check_photos(ctx: Context, broken: bool = False) -> Outcome:
    layer = photo_layer(ctx)
    # quick: the central 128 x 128 crops; full: every photo whole, at its own size (300 x 451
    # to 512 x 512: a square crop of 384 does not fit chelsea, the first full run found)
    size = 128 if ctx.profile == "quick" else None
    rows, ok, recon = [], True, {}
    for name in PHOTO_NAMES:
        x = load_photo(name, size=size)
        v, res = recover(layer, x, "fft", broken)
        ok &= v["pass"]
        recon[name] = res.x
        rows.append({"photo": name, "size": list(x.shape[1:]), **v, "seconds": res.seconds})
    figs = [] if broken else [photo_panel(ctx, layer, size)]
    return Outcome(status_from(ok), {"photos": rows}, figs)


def photo_panel(ctx: Context, layer: ConvLayer, size: int | None) -> str:
    """Original / CReLU reconstruction / ReLU-only reconstruction (same linear inverse)."""
    x = load_photo("astronaut", size=size)
    h = crelu_features(x, layer)
    panels = [("original", x)]
    for title, feats in [("from CReLU features", h), ("from ReLU features (positive half only)", relu_only(h))]:
        with warnings.catch_warnings():   # the ReLU panel is inconsistent by design
            warnings.simplefilter("ignore", InconsistentFeaturesWarning)
            res = invert_crelu(feats, layer, x.shape, "fft")
        err = np.linalg.norm(res.x - x) / np.linalg.norm(x)
        mse = np.mean((res.x - x) ** 2)
        psnr = 10 * np.log10(1.0 / mse) if mse > 0 else float("inf")
        panels.append((f"{title}\nrel. error {err:.1e}, PSNR {psnr:.1f} dB", res.x))
    return figures.prop21_panel(panels, "Proposition 2.1 on a photo: 24 random filters 3x7x7, "
                                "circular padding, x' = A^+ (h+ - h-)",
                                ctx.figures_dir / "prop21_astronaut.png")


_STATEMENT = ("For h = CReLU(Ax), z = h+ - h- = Ax exactly and x' = A^+ z = x whenever A is "
              "injective (lower frame bound a > 0).")
_THRESHOLD = ("every input: relative residual ||Ax' - z|| / ||z|| <= tau and relative error "
              "<= recovery_tolerance (fft, dense) or <= cond * tau (lsmr, cgls, which must also "
              "have converged, not stopped on maxiter); tau = 4 sqrt(C kh kw K) cond u "
              "(theory.checks.rounding_residual_tolerance), or for LSMR and CGLS their stopping "
              "guarantee if larger (theory.checks.lsmr_residual_tolerance, "
              "cgls_residual_tolerance)")
_RATIONALE = ("CReLU features are consistent (z = Ax exactly), so the residual of an exact "
              "inverse is rounding only: Higham-Mary probabilistic bound 4 sqrt(n) u for the "
              "length-n = C kh kw K sums, amplified by cond(A) (theory.checks); a backward-"
              "stable solve has forward error <= that (theory.recovery_tolerance: the same "
              "number); for an injective A, err <= cond * residual. The tolerance is fixed "
              "by the layer, never by the measured residual (verify.claims.exact)")

CLAIMS = [
    Claim(
        id="prop21-random-banks",
        kind="theorem",
        statement=_STATEMENT + " Checked on random Gaussian banks: circular and zero padding, "
                  "strides 1-3, with the fft, dense, lsmr and cgls solvers.",
        source="Shang et al. 2016, Sec. 2.3 (Proposition 2.1); docs/theory/proposition-2-1.md",
        docs="theory/proposition-2-1.md#proposition",
        threshold=_THRESHOLD,
        tolerance_rationale=_RATIONALE,
        check=check_random,
        negative_control=lambda ctx: check_random(ctx, broken=True),
        negative_control_description="ReLU in place of CReLU: the negative half of the features zeroed",
    ),
    Claim(
        id="prop21-photos",
        kind="theorem",
        statement=_STATEMENT + " Checked on real photos (scikit-image astronaut, chelsea, coffee; "
                  "scikit-learn china) through a circular layer of 24 random 3x7x7 filters.",
        source="Shang et al. 2016, Sec. 2.3 (Proposition 2.1); docs/theory/proposition-2-1.md",
        docs="theory/proposition-2-1.md#proposition",
        threshold=_THRESHOLD,
        tolerance_rationale=_RATIONALE,
        check=check_photos,
        negative_control=lambda ctx: check_photos(ctx, broken=True),
        negative_control_description="ReLU in place of CReLU: the negative half of the features zeroed",
    ),
]
