r"""Inspect a user's network: frame bounds, ReLU injectivity, pairing and reconstruction per conv.

`inspect_model` reads a model (`verify.readers`: a PyTorch state_dict or checkpoint, a
safetensors file, an ONNX model, or an `nn.Module`) and, for every conv layer the theory
covers, computes

* the frame bounds of the conv on its input shape (`theory.frame_bounds`, method `auto`):
  under CReLU the layer is injective iff the lower bound is positive (Proposition 2.1);
* the fraction of sample patches whose active filters span the patch space under ReLU (the
  Bruna-Szlam-LeCun condition, `theory.spanning`), on the layer's real inputs when the model
  can be run on the bundled photos;
* the pairing statistic $\bar\mu$ with its i.i.d. Gaussian and sign-flip baselines
  (`theory.pairing`);
* for the first layers that read the image (conv -> activation -> optional max-pool, found
  by running the model), reconstructions of the photos from the features through those layers:
  exact with switches under CReLU and under ReLU (`theory.deep.invert_deep`) and the
  optimisation baseline (`verify.deep.optimisation_inversion`), as PSNR.

The report is a JSON-ready dict; with `out` it is also written as ``inspect.json``,
``inspect.md`` and figures (`verify.inspect_report`). The meaning of every field is in
docs/howto/inspect.md.

Examples
--------
>>> import torch
>>> from verify.inspect import inspect_model
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU())
>>> report = inspect_model(net, (3, 12, 12), images=("astronaut",), baseline_steps=5)
>>> layer = report["layers"][0]
>>> layer["name"], layer["frame_bounds"]["method"], layer["crelu_injective"]
('0', 'dense', True)
"""

from __future__ import annotations

import dataclasses
import fnmatch
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from verify.inspect_chain import PSNR_CAP_DB, image_chain, reconstruct_prefix
from verify.readers import ConvSpec, ModelReadError, ModelSpec, read_model

#: Bundled photos used by default (verify.data.images).
DEFAULT_IMAGES = ("astronaut", "coffee")
#: Work budget (multiply-adds) of one i.i.d. pairing baseline; big banks get fewer banks.
PAIRING_BUDGET = 2e9
#: Fewest random banks of the i.i.d. baseline.
PAIRING_MIN_REPETITIONS = 20
#: Default time budget (seconds) of one layer's frame bounds (`layer_bounds`).
BOUNDS_BUDGET_S = 60.0
#: Lanczos tolerance of the upper bound computed alone once the budget is spent (a relative
#: accuracy of about this on b; the number reported is a lower estimate of b).
UPPER_ONLY_TOL = 1e-6


@dataclasses.dataclass
class Inspection:
    """The report and the arrays the figures need (not JSON)."""

    report: dict
    images: np.ndarray | None
    image_names: list[str]
    layers: list[dict] = dataclasses.field(default_factory=list)   # per layer: artefacts
    reconstructions: list[dict] = dataclasses.field(default_factory=list)


# ---------------------------------------------------------------------------- images
def load_images(images: Sequence[str] | None, input_shape) -> tuple[np.ndarray | None,
                                                                    list[str], list[str]]:
    """Photos (bundled names or image files) at the model's input size: (N, C, H, W) in [0, 1].

    Centre-cropped to a square, resized with anti-aliasing, converted to grey for C = 1.
    Returns `(images or None, names, notes)`; no images for C not in (1, 3).
    """
    if not images:
        return None, [], ["no images given: no sample patches from photos, no reconstruction"]
    c, h, w = input_shape
    if c not in (1, 3):
        return None, [], [f"the model reads {c} channels; photos have 1 or 3, so no sample "
                          "patches from photos and no reconstruction"]
    from skimage.transform import resize

    from verify.data.images import PHOTOS, load_photo
    from verify.reconstruct_cmd import read_image

    out, names, notes = [], [], []
    for item in images:
        if item in PHOTOS:
            img = load_photo(item)
        else:
            path = Path(item)
            if not path.is_file():
                raise ValueError(f"image {item!r} is neither a bundled photo "
                                 f"({', '.join(sorted(PHOTOS)[:8])}, ...) nor a file")
            img, how = read_image(path)
            notes.extend(f"image {path.name}: {n}" for n in how)
        if img.shape[0] == 1 and c == 3:
            img = np.repeat(img, 3, axis=0)
        if c == 1 and img.shape[0] == 3:
            img = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]
        side = min(img.shape[1:])
        top, left = (img.shape[1] - side) // 2, (img.shape[2] - side) // 2
        img = img[:, top:top + side, left:left + side]
        img = resize(img.transpose(1, 2, 0), (h, w), anti_aliasing=True, order=3)
        out.append(np.clip(img, 0.0, 1.0).transpose(2, 0, 1))
        names.append(Path(item).name)
    return np.ascontiguousarray(np.stack(out)), names, notes


# ---------------------------------------------------------------------------- per layer
class BoundsBudgetExceeded(Exception):
    """The frame-bound computation ran past its time budget (raised from inside a matvec)."""


class _WithDeadline:
    """A shape-bound operator whose Gram operator stops at a deadline.

    `theory.frame_bounds` takes any operator with the frame-bound protocol; this proxy hands
    everything to the wrapped `ConvOperator` except `gram_operator`, whose matvec raises
    `BoundsBudgetExceeded` once the deadline has passed (the Lanczos methods stop there; the
    exact methods do not use it)."""

    def __init__(self, op, seconds: float):
        self._op = op
        self._deadline = time.perf_counter() + seconds

    def __getattr__(self, name):
        return getattr(self._op, name)

    def gram_operator(self):
        from scipy.sparse.linalg import LinearOperator

        gram = self._op.gram_operator()
        deadline = self._deadline

        def mv(v):
            if time.perf_counter() > deadline:
                raise BoundsBudgetExceeded
            return gram.matvec(v)

        return LinearOperator(gram.shape, matvec=mv, rmatvec=mv, dtype=gram.dtype)


def layer_bounds(op, method: str, tol: float, budget: float | None):
    """`(FrameBounds or None, upper estimate or None, note or None)` within `budget` s.

    Past the budget (only the Lanczos method can take that long) the smallest eigenvalue is
    given up: `lower` is unknown, and the upper bound is the Lanczos estimate of the largest
    eigenvalue alone (`theory.frames.lanczos_bounds` with no rows asked for the smallest).
    """
    from theory.frames import lanczos_bounds

    if not budget:
        return op.frame_bounds(method, tol=tol), None, None
    try:
        from theory import frame_bounds

        return frame_bounds(_WithDeadline(op, budget), method=method, tol=tol), None, None
    except BoundsBudgetExceeded:
        loose = max(tol, UPPER_ONLY_TOL)
        up = lanczos_bounds(op.gram_operator(), 0, tol=loose)
        return None, up.upper, (
            f"frame bounds: the Lanczos estimates of A^T A (D = {op.d}) did not finish within "
            f"the budget of {budget:g} s, so the lower bound (and CReLU injectivity) is not "
            f"decided; the upper bound is the Lanczos estimate of the largest eigenvalue alone "
            f"(tol {loose:g}, residual {up.residual:.2g}). Raise --bounds-budget (0: no "
            "limit); certified methods for zero-padded layers will make this fast")


def _pairing(weight: np.ndarray, repetitions: int, sign_flips: int, seed: int):
    from theory import pairing, random_pairing_baseline, sign_flip_baseline

    k = weight.shape[0]
    d = int(np.prod(weight.shape[1:]))
    reps = int(max(PAIRING_MIN_REPETITIONS,
                   min(repetitions, PAIRING_BUDGET // max(k * k * d, 1))))
    p = pairing(weight)
    iid = random_pairing_baseline(k, weight.shape[1:], repetitions=reps, seed=seed)
    flip = sign_flip_baseline(weight, repetitions=sign_flips, seed=seed)
    return p, iid, flip


def _sample_patches(source: np.ndarray, layer, n: int, rng) -> np.ndarray:
    from theory.spanning import receptive_patches

    patches = receptive_patches(source, layer, interior=True)
    if len(patches) > n:
        patches = patches[np.sort(rng.choice(len(patches), size=n, replace=False))]
    return patches


def _select(spec: ModelSpec, patterns: str | Sequence[str] | None) -> set[str]:
    """Names of the convs matching one of the glob patterns (all without patterns); the
    skipped entries are filtered the same way."""
    if not patterns:
        return {c.name for c in spec.convs}
    pats = [p.strip() for p in (patterns.split(",") if isinstance(patterns, str) else patterns)
            if p.strip()]
    keep = [c for c in spec.convs if any(fnmatch.fnmatchcase(c.name, p) for p in pats)]
    if not keep:
        raise ValueError(f"no conv layer matches {','.join(pats)!r}; the layers are "
                         f"{[c.name for c in spec.convs]}")
    spec.skipped = [s for s in spec.skipped
                    if any(fnmatch.fnmatchcase(s["name"], p) for p in pats)]
    return {c.name for c in keep}


def _finite(x: float) -> float | str:
    """A JSON number; `inf` becomes the string "inf" (never NaN: that is a bug here)."""
    x = float(x)
    if np.isnan(x):
        raise FloatingPointError("a NaN reached the inspect report")
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def inspect_model(
    model, input_shape=None, *, layers: str | Sequence[str] | None = None,
    images: Sequence[str] | None = DEFAULT_IMAGES, geometry=None, out: str | Path | None = None,
    bounds_method: str = "auto", bounds_tol: float = 1e-10,
    bounds_budget: float | None = BOUNDS_BUDGET_S, patches: int = 1024,
    pairing_repetitions: int = 200, sign_flip_repetitions: int = 1000, recon_depth: int = 2,
    baseline_steps: int = 200, seed: int = 0, figures: bool = True, progress: bool = False,
    fmt: str | None = None, threads: int = 1, return_inspection: bool = False,
) -> dict:
    """Certify and analyse every conv layer of a model.

    Parameters
    ----------
    model : path or torch.nn.Module
        `.pt`/`.pth` (state_dict or checkpoint), `.safetensors`, `.onnx`, or a module.
    input_shape : "C,H,W" or (C, H, W), optional
        The image shape (needed for modules, weight-only files and dynamic ONNX inputs).
    layers : glob pattern(s), optional
        Only the convs whose names match (comma-separated or a list).
    images : names of bundled photos or image files, optional
        Sample inputs: the patches of the ReLU test and the reconstructions.
    geometry : "same", "valid", a JSON file or dict
        Stride/padding/dilation of a weight-only file (`verify.readers.weights_only`).
    out : folder, optional
        Write `inspect.json`, `inspect.md` and figures there (atomically).
    bounds_method, bounds_tol : passed to `theory.frame_bounds` (`tol` for Lanczos).
    bounds_budget : float or None
        Seconds per layer for the frame bounds (None or 0: no limit). Past it the lower bound
        is left undecided (`null`) and the upper bound is the Lanczos estimate alone
        (`layer_bounds`): until certified methods cover zero-padded layers at image size, the
        Lanczos estimate of the smallest eigenvalue can take hours for D ~ 10^4.
    patches : int
        Most sample patches per layer for the ReLU rank test.
    pairing_repetitions, sign_flip_repetitions : int
        Random banks of the i.i.d. baseline (fewer for large banks, at least
        `PAIRING_MIN_REPETITIONS`: the work is capped at `PAIRING_BUDGET`) and sign
        flips of the randomisation test.
    recon_depth : int
        Reconstruct through at most this many convs (0: none).
    baseline_steps : int
        Adam steps of the optimisation baseline (0: none).
    seed : int
    figures : bool
        With `out`: also write the figures.
    progress : bool
        A tqdm progress bar on stderr.
    fmt : {"torch", "safetensors", "onnx"}, optional
        The file format, if the name does not tell.
    threads : int
        Torch and BLAS threads meanwhile (restored afterwards). Default 1: on a shared
        2-core machine more threads were 2-17x *slower* (oversubscription; docs/howto/
        inspect.md); on a dedicated machine 2 may be faster.
    return_inspection : bool
        Return the `Inspection` (report and the arrays of the figures) instead of the dict.

    Returns
    -------
    dict
        `{"model": ..., "layers": [...], "skipped": [...]}` (docs/howto/inspect.md).
    """
    args = dict(locals())
    import torch
    from threadpoolctl import threadpool_limits

    if int(threads) != threads or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        with threadpool_limits(int(threads), user_api="blas"):
            return _inspect(**args)
    finally:
        torch.set_num_threads(before)


@dataclasses.dataclass
class _Run:
    """What every layer of one inspection shares."""

    settings: dict
    images: np.ndarray | None
    trace: dict | None
    chain: list
    chain_why: str
    step: object


def _inspect(model, input_shape, *, layers, images, geometry, out, bounds_method, bounds_tol,
             bounds_budget, patches, pairing_repetitions, sign_flip_repetitions, recon_depth,
             baseline_steps, seed, figures, progress, fmt, return_inspection, threads):
    from tqdm import tqdm

    t_start = time.perf_counter()
    for name, v, lo in (("patches", patches, 1), ("recon_depth", recon_depth, 0),
                        ("baseline_steps", baseline_steps, 0),
                        ("pairing_repetitions", pairing_repetitions, 2),
                        ("sign_flip_repetitions", sign_flip_repetitions, 2)):
        if int(v) != v or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if not 0 < bounds_tol < 1:
        raise ValueError(f"bounds_tol must be in (0, 1), got {bounds_tol}")
    if bounds_budget is not None and not bounds_budget >= 0:
        raise ValueError(f"bounds_budget must be >= 0 seconds (0: no limit), got {bounds_budget}")
    settings = {"bounds_method": bounds_method, "bounds_tol": bounds_tol,
                "bounds_budget_s": bounds_budget, "patches": patches,
                "pairing_repetitions": pairing_repetitions,
                "sign_flip_repetitions": sign_flip_repetitions, "recon_depth": recon_depth,
                "baseline_steps": baseline_steps, "seed": seed, "threads": threads,
                "psnr_cap_db": PSNR_CAP_DB}
    spec = read_model(model, input_shape, geometry, fmt=fmt)
    if not spec.convs:
        raise ModelReadError(f"{spec.source}: no conv layer the theory covers; skipped: "
                             + "; ".join(f"{s['name']}: {s['reason']}" for s in spec.skipped))
    selected = _select(spec, layers)
    todo = [(i, c) for i, c in enumerate(spec.convs) if c.name in selected]
    imgs, names, notes = load_images(images, spec.input_shape or spec.convs[0].input_shape)
    bar = tqdm(total=1 + 4 * len(todo) + (1 if out is not None else 0), desc="inspect",
               unit="step", disable=not progress, leave=False)

    def step(label: str | None) -> None:
        """Label the step now starting; None: one step done."""
        if label is None:
            bar.update(1)
        else:
            bar.set_postfix_str(label[:50], refresh=True)

    try:
        step("tracing the model on the photos")
        trace = spec.tracer(imgs) if (spec.tracer is not None and imgs is not None) else None
        chain, chain_why = image_chain(spec, trace, imgs)
        step(None)
        run = _Run(settings, imgs, trace, chain, chain_why, step)
        insp = Inspection(report={}, images=imgs, image_names=names)
        layer_reports = []
        for index, conv in todo:
            layer_report, art, recon = _inspect_layer(conv, index, run)
            layer_reports.append(layer_report)
            insp.layers.append(art)
            if recon is not None:
                insp.reconstructions.append(recon)
        insp.report = {
            "model": {
                "source": spec.source, "format": spec.format,
                "input_shape": None if spec.input_shape is None else list(spec.input_shape),
                "geometry": spec.geometry_source,
                "images": names,
                "image_chain": {"layers": [c.name for c, _, _ in chain],
                                "activations": [a for _, a, _ in chain[:-1]],
                                "pools": [p for _, _, p in chain], "ends": chain_why},
                "settings": settings,
                "notes": spec.notes + notes,
                "seconds": round(time.perf_counter() - t_start, 3),
            },
            "layers": layer_reports,
            "skipped": [{"name": s["name"], "reason": s["reason"]} for s in spec.skipped],
        }
        if out is not None:
            from verify.inspect_report import write_inspection

            step("writing the report and figures")
            write_inspection(Path(out), insp, figures=figures)
            step(None)
    finally:
        bar.close()
    return insp if return_inspection else insp.report


def _inspect_layer(conv: ConvSpec, index: int, run: _Run) -> tuple[dict, dict, dict | None]:
    """One conv: its report entry, the arrays of its figures, its reconstructions (or None)."""
    from theory.spanning import STORAGE_ROUNDOFF, active_span

    st = run.settings
    layer = conv.layer()
    op = layer.at(conv.input_shape)
    notes = [f"input shape: {conv.shape_source}"]
    art: dict = {"name": conv.name, "weight": conv.weight, "seconds": {}}
    clock = time.perf_counter()

    def done(what: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        art["seconds"][what] = now - clock
        clock = now
        run.step(None)

    # frame bounds: CReLU injectivity (Proposition 2.1)
    budget = st["bounds_budget_s"]
    run.step(f"{conv.name}: frame bounds ({st['bounds_method']}, D={op.d}"
             + (f", budget {budget:g} s)" if budget else ")"))
    fb, upper_only, why = layer_bounds(op, st["bounds_method"], st["bounds_tol"], budget)
    if why:
        notes.append(why)
    if fb is not None and not fb.certified:
        notes.append("frame bounds " + (
            "exact to rounding, not certified" if fb.exact else
            f"are estimates, not certified: {fb.note}" if fb.note else
            f"are Lanczos estimates (residual {fb.residual:.2g}), not certified"))
    if op.m < op.d:
        notes.append(f"fewer outputs ({op.m}) than inputs ({op.d}): not injective by counting")
    if op.is_circulant:
        art["spectrum"] = op.plan.full_spectrum()
    art["fb"] = fb
    done("frame_bounds")

    # pairing against the i.i.d. and sign-flip baselines
    run.step(f"{conv.name}: pairing")
    pairing_out = None
    try:
        p, iid, flip = _pairing(conv.weight, st["pairing_repetitions"],
                                st["sign_flip_repetitions"], st["seed"])
    except ValueError as exc:
        notes.append(f"no pairing statistic: {exc}")
    else:
        art.update(pairing=p, iid=iid, flip=flip)
        pairing_out = {"mean_mu": _finite(p.mean), "iid_baseline_mean": _finite(iid.mean),
                       "sign_flip_p": _finite(flip.tail_probability(p.mean))}
        notes.append(f"pairing baselines: {iid.repetitions} i.i.d. banks, "
                     f"{flip.repetitions} sign flips")
    done("pairing")

    # ReLU: do the active filters of sample patches span the patch space?
    run.step(f"{conv.name}: ReLU rank test")
    fraction, source = None, None
    if run.trace is not None and conv.name in run.trace:
        source, what = run.trace[conv.name][0], "its inputs on the photos (traced)"
    elif run.chain and run.chain[0][0].name == conv.name:
        source, what = run.images, "the photos"
    if source is None:
        notes.append("no ReLU rank test: the layer's inputs on real images are not known "
                     "(weights only, or no images)")
    elif conv.storage not in STORAGE_ROUNDOFF:
        notes.append(f"no ReLU rank test: unknown storage dtype {conv.storage}")
    else:
        rng = np.random.default_rng([st["seed"], index])   # per layer: same with --layers
        sample = _sample_patches(source, layer, st["patches"], rng)
        if len(sample) == 0:
            notes.append("no ReLU rank test: no window lies inside the input")
        else:
            span = active_span(conv.weight, sample, conv.bias, conv.storage)
            fraction = span.fraction
            art["span"] = span
            notes.append(f"ReLU rank test on {len(sample)} interior patches of {what}, bias "
                         f"{'included' if conv.bias is not None else 'none'}, tolerance from "
                         f"{conv.storage} storage")
    done("relu_span")

    # reconstruction of the photos through the first convs
    run.step(f"{conv.name}: reconstruction")
    recon_out, recon = None, None
    depth = next((i + 1 for i, (c, _, _) in enumerate(run.chain) if c.name == conv.name), None)
    if depth is not None and depth <= st["recon_depth"]:
        r = reconstruct_prefix(run.chain, depth, run.images, st["baseline_steps"],
                               seed=st["seed"])
        recon_out = {k: (None if r[k] is None else _finite(r[k]))
                     for k in ("crelu", "relu", "optimisation")}
        notes.append(f"reconstruction of {len(run.images)} photo(s) through the first {depth} "
                     f"conv(s) (bias-free; pooling after each as in the network: "
                     f"{[p for _, _, p in run.chain[:depth]]}); mean PSNR")
        notes.extend(r["notes"])
        recon = {"layer": conv.name, "depth": depth, "recon": r["recon"], "psnr": recon_out}
    elif depth is None:
        notes.append(f"no reconstruction: not in the chain of convs that read the image "
                     f"({run.chain_why})")
    else:
        notes.append(f"no reconstruction: depth {depth} > recon_depth {st['recon_depth']}")
    done("reconstruction")

    k, c, kh, kw = conv.weight.shape
    report = {
        "name": conv.name,
        "weight_shape": [k, c, kh, kw],
        "stride": list(conv.stride),
        "padding": list(conv.padding),
        "padding_mode": conv.padding_mode,
        "dilation": list(conv.dilation),
        "input_shape": list(conv.input_shape),
        "frame_bounds": (
            {"lower": _finite(fb.lower), "upper": _finite(fb.upper),
             "certified": bool(fb.certified), "method": fb.method,
             "margin": _finite(fb.margin)} if fb is not None
            else {"lower": None, "upper": _finite(upper_only), "certified": False,
                  "method": "iterative (lower: budget exceeded)", "margin": 0.0}),
        "crelu_injective": None if fb is None else bool(fb.injective),
        "relu_injective_fraction": fraction,
        "pairing": pairing_out,
        "reconstruction_psnr_db": recon_out,
        "notes": notes,
    }
    return report, art, recon


__all__ = ["BOUNDS_BUDGET_S", "BoundsBudgetExceeded", "DEFAULT_IMAGES", "Inspection",
           "PSNR_CAP_DB", "image_chain", "inspect_model", "layer_bounds", "load_images",
           "reconstruct_prefix"]
