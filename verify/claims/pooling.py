"""Claims: reconstruction through max-pooling with switches (docs/theory/maxpool.md).

The theorem (our formalisation of the paper's Figure 3 / Section 2.3, docs/theory/maxpool.md):
CReLU + max-pooling keeps the largest *and* smallest response of every pool; with known
switches the non-zero pooled values are linear measurements by selected, signed, shifted
filters, so x is recovered exactly when they form a frame, and the one-step frame
algorithm has relative error at most (b-a)/(b+a).
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from theory import ConvLayer, recovery_tolerance
from theory.inversion import NonInjectiveWarning
from theory.checks import InconsistentFeaturesWarning
from theory.pooling import crelu_maxpool, invert_crelu_maxpool, selection
from verify import figures
from verify.claims.base import Claim, Context, Outcome, status_from
from verify.data import load_photo, natural_patches
from verify.deep import random_bank, random_weights, reconstruct_all, solver_environment

EPS = float(np.finfo(np.float64).eps)


def _blas1(fn):
    """Run a check with single-threaded BLAS (small SVDs and LSMR vectors on a shared CPU)."""
    def wrapped(ctx: Context) -> Outcome:
        with solver_environment():
            return fn(ctx)
    return wrapped


def wrong_switches(s: np.ndarray, conv_width: int) -> np.ndarray:
    """Move every switch to the diagonally opposite position of its 2x2 window."""
    i, j = np.divmod(s, conv_width)
    return ((i // 2) * 2 + (1 - i % 2)) * conv_width + (j // 2) * 2 + (1 - j % 2)


# ---------------------------------------------------------------------------- exact recovery
def _exact_cases(ctx: Context):
    rng = ctx.rng("maxpool-exact")
    cases = [
        ("random 36 filters 1x3x3, 8x8", ConvLayer(random_bank(rng, 36, 1, 3), padding=1),
         rng.standard_normal((1, 8, 8))),
        ("random 24 filters 3x3x3, 12x12", ConvLayer(random_bank(rng, 24, 3, 3), padding=1),
         rng.standard_normal((3, 12, 12))),
        ("random 16 filters 3x3x3, astronaut 16x16", ConvLayer(random_bank(rng, 16, 3, 3),
                                                               padding=1),
         load_photo("astronaut", size=16)),
    ]
    if ctx.profile == "full":
        cases.append(("random 16 filters 3x3x3, chelsea 32x32 (LSMR)",
                      ConvLayer(random_bank(rng, 16, 3, 3), padding=1),
                      load_photo("chelsea", size=32)))
        cases.append(("random 16 filters 3x3x3, coffee 64x64 (LSMR)",
                      ConvLayer(random_bank(rng, 16, 3, 3), padding=1),
                      load_photo("coffee", size=64)))
    return cases


_BOUNDS_CACHE: dict = {}


def _exact_check(ctx: Context, broken: bool) -> Outcome:
    rows, ok = [], True
    for name, layer, x in _exact_cases(ctx):
        f, s = crelu_maxpool(x, layer, 2)
        key = (ctx.seed, ctx.profile, name)  # the control reuses the true set's bounds
        if key not in _BOUNDS_CACHE:
            _BOUNDS_CACHE[key] = selection(f, s, layer, x.shape, 2).frame_bounds()
        fb = _BOUNDS_CACHE[key]
        if broken:
            s = wrong_switches(s, layer.output_shape(x.shape)[2])
        with warnings.catch_warnings():   # wrong switches are inconsistent, by design
            if broken:
                warnings.simplefilter("ignore", InconsistentFeaturesWarning)
            res = invert_crelu_maxpool(f, s, layer, x.shape, 2, bounds=fb,
                                       on_non_injective="ignore")
        err = float(np.linalg.norm(res.x - x) / np.linalg.norm(x))
        tol = recovery_tolerance(layer, fb)
        if res.solver.startswith("lsmr") or res.solver == "cgls":   # iterative: + cond * residual
            tol += res.error_bound()
        passed = bool(fb.injective) and err <= tol
        ok &= passed
        rows.append({"case": name, "D": int(x.size), "n_selected": res.n_selected,
                     "is_frame": bool(fb.injective), "cond": fb.cond, "bounds": fb.method,
                     "solver": res.solver, "relative_error": err, "tolerance": tol,
                     "error_over_cond_eps": err / (fb.cond * EPS), "pass": passed})
    return Outcome(status_from(ok), {"cases": rows})


# ---------------------------------------------------------------------------- linear map
def _linear_inputs(ctx: Context):
    rng = ctx.rng("maxpool-linear")
    n_random = 8 if ctx.profile == "quick" else 60
    out = []
    for i in range(n_random):  # random banks and Gaussian inputs of random shapes
        c = int(rng.integers(1, 3))
        k = int(rng.integers(4, 24))
        h = int(rng.integers(4, 10))
        layer = ConvLayer(random_bank(rng, k, c, 3), padding=int(rng.integers(0, 2)))
        out.append((f"random #{i}: {k} filters {c}x3x3, {h}x{h}", layer,
                    rng.standard_normal((c, h, h))))
    patches = natural_patches(4 if ctx.profile == "quick" else 20, size=16, seed=ctx.seed)
    for i, p in enumerate(patches):
        out.append((f"natural patch #{i} 3x16x16", ConvLayer(random_bank(rng, 16, 3, 3),
                                                             padding=1), p))
    return out


_LINEAR_CACHE: dict = {}


def _linear_runs(ctx: Context):
    """(name, D, error, bound) per input; computed once, checked at each bound scale."""
    key = (ctx.seed, ctx.profile)
    if key not in _LINEAR_CACHE:
        runs = []
        for name, layer, x in _linear_inputs(ctx):
            f, s = crelu_maxpool(x, layer, 2)
            res = invert_crelu_maxpool(f, s, layer, x.shape, 2, "linear", on_non_injective="ignore")
            err = float(np.linalg.norm(res.x - x) / np.linalg.norm(x))
            runs.append((name, x.size, err, res.error_bound()))
        _LINEAR_CACHE[key] = runs
    return _LINEAR_CACHE[key]


def _linear_check(ctx: Context, scale: float) -> Outcome:
    ratios, rows, ok = [], [], True
    for name, size, err, bound in _linear_runs(ctx):
        slack = 10 * size * EPS  # rounding in S x and in the bounds: O(D eps)
        passed = err <= scale * bound + slack
        ok &= passed
        ratios.append(err / bound if bound > 0 else 0.0)
        rows.append({"case": name, "error": err, "bound": bound, "pass": passed})
    figs = []
    if scale == 1.0:
        figs.append(figures.maxpool_linear_bound([r["bound"] for r in rows],
                                                 [r["error"] for r in rows],
                                                 ctx.figures_dir / "maxpool-linear-bound.png"))
    return Outcome(status_from(ok), {"bound_scale": scale, "n_inputs": len(rows),
                                     "violations": int(sum(not r["pass"] for r in rows)),
                                     "max_error_over_bound": float(max(ratios)),
                                     "median_error_over_bound": float(np.median(ratios)),
                                     "cases": rows[:8]}, figs)


# ---------------------------------------------------------------------------- patches
def _wilson(k: int, n: int, z: float = 2.576) -> tuple[float, float]:
    """Wilson score interval (99%) for a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(centre - half), float(centre + half)


_PATCH_CACHE: dict = {}
#: Patches per arm: quick / full. The full profile's thousands are the issue's scale.
PATCH_COUNTS = {"quick": 40, "full": 2000}
#: Random bank widths per profile (16 filters on 12 unknowns per window: ReLU's at most 16
#: positive values per window can hardly cover them, CReLU's up to 32 can).
PATCH_WIDTHS = {"quick": (16,), "full": (16,)}


def _patch_arm(key, layer: ConvLayer, act: str, patches: np.ndarray):
    """(frames, errors, conds) of one filter bank and activation on every patch; cached.

    ``errors``: relative reconstruction errors of the patches that are not all zero (an
    all-black patch has no relative error; CReLU's zero windows recover it exactly).
    ``conds``: condition numbers of the selected filters on the patches where they form a
    frame.
    """
    if key not in _PATCH_CACHE:
        frames, errs, conds = 0, [], []
        for p in patches:
            f, s = crelu_maxpool(p, layer, 2, act)
            sel = selection(f, s, layer, p.shape, 2, act)
            fb = sel.frame_bounds("shift-invert") if sel.n_selected >= p.size else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NonInjectiveWarning)
                res = invert_crelu_maxpool(f, s, layer, p.shape, 2, activation=act,
                                           solver="lsmr", bounds=fb, certify=False,
                                           atol=1e-12, btol=1e-12, maxiter=20000)
            frames += bool(res.is_frame)
            if res.is_frame:
                conds.append(fb.cond)
            if np.any(p):
                errs.append(float(np.linalg.norm(res.x - p) / np.linalg.norm(p)))
        _PATCH_CACHE[key] = (frames, np.array(errs), np.array(conds))
    return _PATCH_CACHE[key]


def _random_arms(ctx: Context, arms: tuple[str, str]):
    """Random orthonormal 3x3x3 banks on colour patches; the same bank for both arms."""
    n = PATCH_COUNTS[ctx.profile]
    widths = PATCH_WIDTHS[ctx.profile]
    patches = natural_patches(n, size=32, seed=ctx.seed)
    out = {}
    for k in widths:
        layer = ConvLayer(random_bank(np.random.default_rng([ctx.seed, k]), k, 3, 3), padding=1)
        for arm, act in zip(("A", "B"), arms):
            out.setdefault(f"{k} random filters 3x3x3", {})[arm] = (act, *_patch_arm(
                ("random", ctx.seed, ctx.profile, k, act), layer, act, patches))
    return n, out, "colour 3x32x32 (verify.data.natural_patches)"


def trained_first_layer(model: str) -> tuple[ConvLayer, dict]:
    """The first conv layer of the project's trained Fashion-MNIST network (bias dropped)."""
    from verify.train import load_trained
    from verify.deep import WEIGHTS_DIR

    net, card = load_trained(WEIGHTS_DIR / f"{model}-fashion-mnist.safetensors")
    w = net.conv_weights()[0].double()
    return ConvLayer(w, padding=w.shape[-1] // 2), card


def _grey_patches(n: int, seed: int, norm: dict) -> np.ndarray:
    """Grey 1x32x32 patches (ITU-R 601 luma), standardised as the training images were."""
    rgb = natural_patches(n, size=32, seed=seed)
    grey = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    return ((grey - norm["mean"]) / norm["std"])[:, None]


def _trained_arms(ctx: Context, arms: tuple[str, str]):
    """Each trained network's own first layer with its own activation on grey patches.

    Arm ``crelu`` uses the CReLU network's conv1, arm ``relu`` the ReLU network's (both
    16 filters 1x7x7); the control runs the ReLU network's conv1 under ReLU twice.
    """
    n = PATCH_COUNTS[ctx.profile]
    out = {}
    for arm, act in zip(("A", "B"), arms):
        layer, card = trained_first_layer(act)
        patches = _grey_patches(n, ctx.seed, card["normalisation"])
        out.setdefault("trained conv1 16x1x7x7 (own network per activation)", {})[arm] = (
            act, *_patch_arm(("trained", ctx.seed, ctx.profile, act), layer, act, patches))
    return n, out, "grey 1x32x32, standardised like Fashion-MNIST training (bias dropped)"


def _quantiles(errors: np.ndarray) -> list[float] | None:
    """5%, 50% and 95% quantiles, or None when no patch has a relative error."""
    return np.quantile(errors, [0.05, 0.5, 0.95]).tolist() if errors.size else None


def _patch_check(ctx: Context, arms: tuple[str, str], trained: bool = False) -> Outcome:
    n, out, patch_desc = (_trained_arms if trained else _random_arms)(ctx, arms)
    measured, ok = {"patches": n, "patch": patch_desc, "arms": list(arms)}, True
    panels = []
    for bank, pair in out.items():
        (act_a, fa, ea, ca), (act_b, fb_, eb, cb) = pair["A"], pair["B"]
        lo_a, _ = _wilson(fa, n)
        _, hi_b = _wilson(fb_, n)
        separated = lo_a > hi_b  # 99% intervals do not overlap
        ok &= separated
        measured[bank] = {
            f"{act_a}_frame_fraction": fa / n, f"{act_a}_frame_ci99": _wilson(fa, n),
            f"{act_b}_frame_fraction": fb_ / n, f"{act_b}_frame_ci99": _wilson(fb_, n),
            f"{act_a}_error_quantiles_5_50_95": _quantiles(ea),
            f"{act_b}_error_quantiles_5_50_95": _quantiles(eb),
            "patches_with_error": [int(ea.size), int(eb.size)],
            f"{act_a}_median_cond_of_frames": float(np.median(ca)) if ca.size else None,
            f"{act_b}_median_cond_of_frames": float(np.median(cb)) if cb.size else None,
            "intervals_separated": separated}
        panels.append({"bank": bank, "arms": [(act_a, fa, ea), (act_b, fb_, eb)]})
    tag = "-".join(arms) + ("-trained" if trained else "")
    path = figures.maxpool_patches(panels, n, ctx.figures_dir / f"maxpool-patches-{tag}.png")
    status = "pass" if ok else "inconclusive"
    return Outcome(status, measured, [path])


# ---------------------------------------------------------------------------- deep
_DEEP_CACHE: dict = {}


def _deep_results(ctx: Context):
    key = (ctx.profile, ctx.seed, str(ctx.out_dir))
    if key not in _DEEP_CACHE:
        size = None if ctx.profile == "full" else 32
        image = load_photo("astronaut", size=size)
        weights = random_weights(ctx.rng("maxpool-deep"), 3)
        steps = 150 if ctx.profile == "full" else 100
        tol = 1e-10
        t0 = time.perf_counter()
        results = reconstruct_all(image, weights, 2, steps, tol=tol, maxiter=5000)
        _DEEP_CACHE[key] = (image, weights, results, time.perf_counter() - t0)
    return _DEEP_CACHE[key]


def _deep_check(ctx: Context, subject: str) -> Outcome:
    image, weights, results, _ = _deep_results(ctx)
    by = {r.name: r for r in results}
    s = by[subject]
    others = [by[n] for n in ("crelu", "relu", "optimisation") if n != subject]
    ok = s.psnr >= 40.0 and all(s.psnr > o.psnr for o in others)
    measured = {"image": f"astronaut {image.shape[1]}x{image.shape[2]} colour",
                "filters": ", ".join(f"{w.shape[0]}x{w.shape[1]}x3x3" for w in weights)
                + " random orthonormal banks, padding 1, 2x2 max-pool",
                "subject": subject}
    for r in results:
        measured[r.name] = {"psnr_db": r.psnr, "relative_error": r.relative_error,
                            "seconds": r.seconds, **r.info}
    figs = []
    if subject == "crelu":
        figs.append(figures.reconstruction_panel(
            ctx.figures_dir / "maxpool-deep-astronaut.png", image, results,
            f"astronaut {image.shape[1]}x{image.shape[2]}, 2 stages conv+CReLU+2x2 max-pool, "
            "random filters"))
    return Outcome(status_from(ok), measured, figs)


CLAIMS = [
    Claim(
        id="maxpool-exact-recovery",
        kind="theorem",
        statement=("With known pooling switches, the non-zero values of CReLU + 2x2 max-pooling "
                   "are W_x^T x for the selected signed shifted filters; when these form a "
                   "frame (certified lower bound a > 0), x = (W_x^T)^+ g(x) is recovered "
                   "exactly, on random banks and on real photos."),
        source="paper Sec. 2.3 / Fig. 3; our formalisation (docs/theory/maxpool.md, Theorem (a))",
        docs="theory/maxpool.md#theorem-our-formalisation",
        threshold=("every case a frame (dense SVD, or shift-invert eigenvalues with residual) and relative error "
                   "<= 4 sqrt(C k^2 K) cond u (+ LSMR's a-posteriori cond * residual)"),
        tolerance_rationale=("same rounding model as Proposition 2.1 (theory.recovery_tolerance: "
                             "Higham-Mary probabilistic bound for the length-C k^2 dot products "
                             "of the features, amplified by cond(W_x)); an iterative solve adds "
                             "its certified a-posteriori bound cond * ||W_x^T x' - g|| / ||g||"),
        check=_blas1(lambda ctx: _exact_check(ctx, broken=False)),
        negative_control=_blas1(lambda ctx: _exact_check(ctx, broken=True)),
        negative_control_description=("the same check with every switch moved to the opposite "
                                      "corner of its 2x2 window (wrong switches)"),
    ),
    Claim(
        id="maxpool-linear-bound",
        kind="theorem",
        statement=("The one-step frame algorithm x' = 2/(a+b) W_x g(x) on CReLU + 2x2 max-pool "
                   "features satisfies ||x - x'|| / ||x|| <= (b-a)/(b+a) on every tested input "
                   "(random banks and shapes, Gaussian inputs, natural patches)."),
        source=("Christensen's frame algorithm, first step; our formalisation "
                "(docs/theory/maxpool.md, Theorem (b))"),
        docs="theory/maxpool.md#theorem-our-formalisation",
        threshold="error <= (b-a)/(b+a) + 10 D u on every input",
        tolerance_rationale=("exact dense frame bounds; the slack 10 D u covers rounding in "
                             "forming S x (D-term sums) and in the eigenvalues (D u ||S||)"),
        check=_blas1(lambda ctx: _linear_check(ctx, 1.0)),
        negative_control=_blas1(lambda ctx: _linear_check(ctx, 0.5)),
        negative_control_description="the same check with the bound multiplied by 0.5",
    ),
    Claim(
        id="maxpool-crelu-vs-relu-patches",
        kind="replication",
        statement=("Through 2x2 max-pooling, CReLU's selected filters form a frame on natural "
                   "32x32 patches far more often than ReLU's (ReLU keeps a subset), and its "
                   "exact reconstruction errors are correspondingly smaller. Random "
                   "orthonormal 3x3x3 banks (same bank for both; trained filters: the next "
                   "claim)."),
        source=("the paper's qualitative reconstructions (Sec. 2.3); docs/theory/maxpool.md, "
                "'CReLU against ReLU on natural patches'"),
        docs="theory/maxpool.md#crelu-against-relu-on-natural-patches",
        threshold=("99% Wilson intervals of the frame fractions do not overlap (CReLU above "
                   "ReLU) for every bank width; else inconclusive"),
        tolerance_rationale=("a binomial proportion over n patches: Wilson score interval at "
                             "99%; frame decided by the smallest eigenvalue of W_x W_x^T (shift-invert Lanczos, "
                             "Ritz residual ~ u b), rtol sqrt(D u) on sigma_min/sigma_max"),
        check=_blas1(lambda ctx: _patch_check(ctx, ("crelu", "relu"))),
        negative_control=_blas1(lambda ctx: _patch_check(ctx, ("relu", "relu"))),
        negative_control_description="the same comparison with ReLU in place of CReLU",
    ),
    Claim(
        id="maxpool-crelu-vs-relu-trained-patches",
        kind="replication",
        statement=("With trained first layers (the project's Fashion-MNIST CReLU and ReLU "
                   "networks, 16 filters 1x7x7 each, bias dropped), the CReLU network's "
                   "filters through CReLU + 2x2 max-pooling form a frame on natural grey "
                   "32x32 patches more often than the ReLU network's through ReLU + 2x2 "
                   "max-pooling."),
        source=("the paper's qualitative reconstructions (Sec. 2.3); docs/theory/maxpool.md, "
                "'CReLU against ReLU on natural patches'"),
        docs="theory/maxpool.md#crelu-against-relu-on-natural-patches",
        threshold=("99% Wilson intervals of the frame fractions do not overlap (CReLU above "
                   "ReLU); else inconclusive"),
        tolerance_rationale=("as for the random banks: a binomial proportion over n patches, "
                             "Wilson score interval at 99%"),
        check=_blas1(lambda ctx: _patch_check(ctx, ("crelu", "relu"), trained=True)),
        negative_control=_blas1(lambda ctx: _patch_check(ctx, ("relu", "relu"), trained=True)),
        negative_control_description=("the ReLU network's filters under ReLU on both sides of "
                                      "the comparison"),
    ),
    Claim(
        id="maxpool-deep-reconstruction",
        kind="replication",
        statement=("Two stages conv -> CReLU -> 2x2 max-pool with random filter banks: the "
                   "stage-by-stage exact inverse with switches reconstructs the astronaut "
                   "photo at PSNR >= 40 dB, above the same algorithm on the ReLU stack and "
                   "above a Mahendran-Vedaldi optimisation baseline with a TV prior. Quick "
                   "profile: 32x32 crop; full: 512x512."),
        source=("the paper's Fig. 3 / Sec. 2.3; Mahendran & Vedaldi 2015 (the optimisation "
                "baseline); docs/theory/maxpool.md, 'Deep stacks'"),
        docs="theory/maxpool.md#deep-stacks",
        threshold="subject PSNR >= 40 dB and above both other methods",
        tolerance_rationale=("40 dB is the issue's target fixed before the run (visually "
                             "lossless); exact recovery reaches rounding level, so PSNR is "
                             "limited only by LSMR's stopping rule (atol = btol = 1e-10; 1e-6 is "
                             "too loose: the recovered stage-1 features lose their zero pattern)"),
        check=lambda ctx: _deep_check(ctx, "crelu"),
        negative_control=lambda ctx: _deep_check(ctx, "relu"),
        negative_control_description="the same check with the ReLU stack as the subject",
    ),
]
