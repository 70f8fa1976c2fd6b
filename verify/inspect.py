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
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from verify.readers import ConvSpec, ModelReadError, ModelSpec, read_model

#: Bundled photos used by default (verify.data.images).
DEFAULT_IMAGES = ("astronaut", "coffee")
#: An exact float64 reconstruction (mean squared error below eps^2) reads as this many dB.
PSNR_CAP_DB = float(10.0 * np.log10(1.0 / np.finfo(np.float64).eps ** 2))
#: Work budget (multiply-adds) of one i.i.d. pairing baseline; big banks get fewer banks.
PAIRING_BUDGET = 2e9
#: Fewest random banks of the i.i.d. baseline.
PAIRING_MIN_REPETITIONS = 20


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

    out, names = [], []
    for item in images:
        if item in PHOTOS:
            img = load_photo(item)
        else:
            path = Path(item)
            if not path.is_file():
                raise ValueError(f"image {item!r} is neither a bundled photo "
                                 f"({', '.join(sorted(PHOTOS)[:8])}, ...) nor a file")
            img = read_image(path)
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
    return np.ascontiguousarray(np.stack(out)), names, []


# ---------------------------------------------------------------------------- the chain
ACTIVATIONS = ("relu", "crelu")


def _match(z: np.ndarray, u: np.ndarray) -> tuple[str, int] | None:
    """`(activation, pool)` with `u = maxpool_pool(activation(z))`, or None."""
    import torch
    import torch.nn.functional as F

    zt = torch.from_numpy(z)
    scale = max(float(np.abs(u).max()), float(np.abs(z).max()), 1e-30)
    pools = [1]
    if u.shape[2] and z.shape[2] // u.shape[2] >= 2 and z.shape[2] // u.shape[2] == \
            z.shape[3] // max(u.shape[3], 1):
        pools.append(z.shape[2] // u.shape[2])
    for act in ACTIVATIONS:
        a = torch.relu(zt) if act == "relu" else torch.cat([torch.relu(zt), torch.relu(-zt)], 1)
        for p in pools:
            g = F.max_pool2d(a, p, stride=p) if p > 1 else a
            if tuple(g.shape) == u.shape and np.allclose(g.numpy(), u, rtol=1e-4,
                                                         atol=1e-5 * scale):
                return act, p
    return None


def image_chain(spec: ModelSpec, trace: dict | None, images: np.ndarray | None,
                ) -> tuple[list[tuple[ConvSpec, str | None, int]], str]:
    """The first convs that read the image through conv -> activation -> max-pool stages.

    Returns `[(conv, activation after it or None, pool after it)]` and a sentence saying
    how far the chain goes and why it stops.
    """
    if images is None or not spec.convs:
        return [], "no images"
    first = spec.convs[0]
    if trace is None:
        if first.shape_source.startswith("given"):
            return [(first, None, 1)], ("weights only: the first conv reads the image; no graph "
                                        "to follow further")
        return [], "weights only, and the first conv's input is not the image"
    if first.name not in trace:
        return [], f"the first conv {first.name} was not reached by the trace"
    u0 = trace[first.name][0]
    if u0.shape != images.shape or not np.allclose(u0, images, rtol=1e-5, atol=1e-6):
        return [], (f"the first conv {first.name} does not read the image directly (the model "
                    "transforms it first)")
    chain: list = [(first, None, 1)]
    why = "the network ends"
    for nxt in spec.convs[1:]:
        prev = chain[-1][0]
        if nxt.name not in trace or prev.name not in trace:
            why = f"{nxt.name} was not reached by the trace"
            break
        found = _match(trace[prev.name][1], trace[nxt.name][0])
        if found is None:
            why = (f"the input of {nxt.name} is not ReLU or CReLU (then optional max-pooling) "
                   f"of the output of {prev.name}")
            break
        chain[-1] = (prev, *found)
        chain.append((nxt, None, 1))
    else:
        why = "all the convs the theory covers are in it"
    return chain, why


def _stacks(chain, depth: int):
    """CReLU and ReLU stacks (or None where undefined) of the first `depth` convs."""
    from theory import ConvLayer, Stage

    convs = [c for c, _, _ in chain[:depth]]
    acts = [a for _, a, _ in chain[:depth - 1]]
    pools = [p for _, _, p in chain[:depth]]
    crelu_ok = all(a == "crelu" for a in acts)
    crelu, relu = [], []
    for j, conv in enumerate(convs):
        layer = conv.layer()
        crelu.append(Stage(layer, pools[j]))
        w = conv.weight
        if j and acts[j - 1] == "crelu":   # the ReLU stack keeps the positive-half channels
            w = np.ascontiguousarray(w[:, : convs[j - 1].weight.shape[0]])
        relu.append(Stage(ConvLayer(w, stride=conv.stride, padding=conv.padding,
                                    padding_mode=conv.padding_mode, dilation=conv.dilation),
                          pools[j]))
    return (crelu if crelu_ok else None), relu


def reconstruct_prefix(chain, depth: int, images: np.ndarray, baseline_steps: int,
                       tol: float = 1e-10, maxiter: int = 3000, seed: int = 0) -> dict:
    """PSNR (dB) of each reconstruction of `images` from the features after `depth` convs."""
    from theory import deep_forward, invert_deep
    from verify.deep import optimisation_inversion, psnr

    crelu, relu = _stacks(chain, depth)
    out = {"crelu": None, "relu": None, "optimisation": None, "recon": [], "notes": []}
    per = {"crelu": [], "relu": [], "optimisation": []}
    for x in images:
        recon = {}
        for act, stages in (("crelu", crelu), ("relu", relu)):
            if stages is None:
                continue
            fwd = deep_forward(x, stages, act)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = invert_deep(fwd.last, fwd.switches, stages, x.shape, act, atol=tol,
                                  btol=tol, maxiter=maxiter)
            for w in caught:
                msg = f"{act}: {w.category.__name__}: {str(w.message)[:160]}"
                if msg not in out["notes"]:
                    out["notes"].append(msg)
            recon[act] = res.x
        base_act, base = ("crelu", crelu) if crelu is not None else ("relu", relu)
        if baseline_steps > 0:
            fwd = deep_forward(x, base, base_act)
            recon["optimisation"] = optimisation_inversion(fwd.last, base, x.shape, base_act,
                                                           steps=baseline_steps, seed=seed)
        for k, xr in recon.items():
            per[k].append(min(psnr(xr, x), PSNR_CAP_DB))
        out["recon"].append(recon)
    for k, v in per.items():
        if v:
            out[k] = float(np.mean(v))
    if crelu is None:
        out["notes"].append(f"no CReLU reconstruction through {depth} convs: the network's "
                            "activations are ReLU, so its later convs read K channels, not the "
                            "2K that CReLU gives")
    if baseline_steps > 0:
        out["notes"].append(f"optimisation baseline: {baseline_steps} Adam steps with a TV prior "
                            f"on the {'ReLU' if base_act == 'relu' else 'CReLU'} "
                            "features, no switches")
    return out


# ---------------------------------------------------------------------------- per layer
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
    bounds_method: str = "auto", bounds_tol: float = 1e-10, patches: int = 1024,
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


def _inspect(model, input_shape, *, layers, images, geometry, out, bounds_method, bounds_tol,
             patches, pairing_repetitions, sign_flip_repetitions, recon_depth, baseline_steps,
             seed, figures, progress, fmt, return_inspection, threads):
    from tqdm import tqdm

    from theory.spanning import STORAGE_ROUNDOFF, active_span

    t_start = time.perf_counter()
    for name, v, lo in (("patches", patches, 1), ("recon_depth", recon_depth, 0),
                        ("baseline_steps", baseline_steps, 0),
                        ("pairing_repetitions", pairing_repetitions, 2),
                        ("sign_flip_repetitions", sign_flip_repetitions, 2)):
        if int(v) != v or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if not 0 < bounds_tol < 1:
        raise ValueError(f"bounds_tol must be in (0, 1), got {bounds_tol}")
    spec = read_model(model, input_shape, geometry, fmt=fmt)
    if not spec.convs:
        raise ModelReadError(f"{spec.source}: no conv layer the theory covers; skipped: "
                             + "; ".join(f"{s['name']}: {s['reason']}" for s in spec.skipped))
    selected = _select(spec, layers)
    todo = [c for c in spec.convs if c.name in selected]
    shape = spec.input_shape or spec.convs[0].input_shape
    imgs, names, notes = load_images(images, shape)
    rng = np.random.default_rng(seed)
    bar = tqdm(total=1 + 4 * len(todo) + (1 if out is not None else 0), desc="inspect",
               unit="step", disable=not progress, leave=False)

    def step(label: str) -> None:
        bar.set_postfix_str(label[:50], refresh=True)

    try:
        step("tracing the model on the photos")
        trace = spec.tracer(imgs) if (spec.tracer is not None and imgs is not None) else None
        chain, chain_why = image_chain(spec, trace, imgs)
        bar.update(1)
        insp = Inspection(report={}, images=imgs, image_names=names)
        layer_reports = []
        for conv in todo:
            layer = conv.layer()
            op = layer.at(conv.input_shape)
            lnotes = [f"input shape: {conv.shape_source}"]
            art: dict = {"name": conv.name, "weight": conv.weight}
            # frame bounds
            step(f"{conv.name}: frame bounds ({bounds_method}, D={op.d})")
            t0 = time.perf_counter()
            fb = op.frame_bounds(bounds_method, tol=bounds_tol)
            art["bounds_seconds"] = time.perf_counter() - t0
            if not fb.certified:
                lnotes.append("frame bounds " + (
                    "exact to rounding, not certified" if fb.exact else
                    f"are Lanczos estimates (residual {fb.residual:.2g}), not certified"))
            if op.m < op.d:
                lnotes.append(f"fewer outputs ({op.m}) than inputs ({op.d}): not injective "
                              "by counting")
            if op.is_circulant:
                art["spectrum"] = op.plan.full_spectrum()
            bar.update(1)
            # pairing
            step(f"{conv.name}: pairing")
            pairing_out = None
            try:
                p, iid, flip = _pairing(conv.weight, pairing_repetitions,
                                        sign_flip_repetitions, seed)
            except ValueError as exc:
                lnotes.append(f"no pairing statistic: {exc}")
            else:
                art.update(pairing=p, iid=iid, flip=flip)
                pairing_out = {"mean_mu": p.mean, "iid_baseline_mean": iid.mean,
                               "sign_flip_p": flip.tail_probability(p.mean)}
                lnotes.append(f"pairing baselines: {iid.repetitions} i.i.d. banks, "
                              f"{flip.repetitions} sign flips")
            bar.update(1)
            # ReLU: active filters span the patch space
            step(f"{conv.name}: ReLU rank test")
            fraction = None
            source = None
            if trace is not None and conv.name in trace:
                source, what = trace[conv.name][0], "its inputs on the photos (traced)"
            elif chain and chain[0][0].name == conv.name:
                source, what = imgs, "the photos"
            if source is None:
                lnotes.append("no ReLU rank test: the layer's inputs on real images are not "
                              "known (weights only, or no images)")
            elif conv.storage not in STORAGE_ROUNDOFF:
                lnotes.append(f"no ReLU rank test: unknown storage dtype {conv.storage}")
            else:
                sample = _sample_patches(source, layer, patches, rng)
                if len(sample) == 0:
                    lnotes.append("no ReLU rank test: no window lies inside the input")
                else:
                    span = active_span(conv.weight, sample, conv.bias, conv.storage)
                    fraction = span.fraction
                    art["span"] = span
                    lnotes.append(f"ReLU rank test on {len(sample)} interior patches of "
                                  f"{what}, bias {'included' if conv.bias is not None else 'none'}"
                                  f", tolerance from {conv.storage} storage")
            bar.update(1)
            # reconstruction through the first convs
            step(f"{conv.name}: reconstruction")
            recon_out = None
            depth = next((i + 1 for i, (c, _, _) in enumerate(chain) if c.name == conv.name),
                         None)
            if depth is not None and depth <= recon_depth:
                r = reconstruct_prefix(chain, depth, imgs, baseline_steps, seed=seed)
                recon_out = {k: r[k] for k in ("crelu", "relu", "optimisation")}
                lnotes.append(f"reconstruction of {len(imgs)} photo(s) through the first "
                              f"{depth} conv(s) (bias-free; pooling after each as in the "
                              f"network: {[p for _, _, p in chain[:depth]]}); mean PSNR")
                lnotes.extend(r["notes"])
                insp.reconstructions.append({"layer": conv.name, "depth": depth,
                                             "recon": r["recon"],
                                             "psnr": recon_out})
            elif depth is None:
                lnotes.append(f"no reconstruction: not in the chain of convs that read the "
                              f"image ({chain_why})")
            else:
                lnotes.append(f"no reconstruction: depth {depth} > recon_depth {recon_depth}")
            bar.update(1)
            k, c, kh, kw = conv.weight.shape
            layer_reports.append({
                "name": conv.name,
                "weight_shape": [k, c, kh, kw],
                "stride": list(conv.stride),
                "padding": list(conv.padding),
                "padding_mode": conv.padding_mode,
                "dilation": list(conv.dilation),
                "input_shape": list(conv.input_shape),
                "frame_bounds": {"lower": _finite(fb.lower), "upper": _finite(fb.upper),
                                 "certified": bool(fb.certified), "method": fb.method},
                "crelu_injective": bool(fb.injective),
                "relu_injective_fraction": fraction,
                "pairing": None if pairing_out is None else
                {k_: _finite(v) for k_, v in pairing_out.items()},
                "reconstruction_psnr_db": None if recon_out is None else
                {k_: (None if v is None else _finite(v)) for k_, v in recon_out.items()},
                "notes": lnotes,
            })
            art["fb"] = fb
            insp.layers.append(art)
        report = {
            "model": {
                "source": spec.source, "format": spec.format,
                "input_shape": None if spec.input_shape is None else list(spec.input_shape),
                "geometry": spec.geometry_source,
                "images": names,
                "image_chain": {"layers": [c.name for c, _, _ in chain],
                                "activations": [a for _, a, _ in chain[:-1]],
                                "pools": [p for _, _, p in chain], "ends": chain_why},
                "settings": {"bounds_method": bounds_method, "bounds_tol": bounds_tol,
                             "patches": patches, "pairing_repetitions": pairing_repetitions,
                             "sign_flip_repetitions": sign_flip_repetitions,
                             "recon_depth": recon_depth, "baseline_steps": baseline_steps,
                             "seed": seed, "psnr_cap_db": PSNR_CAP_DB},
                "notes": spec.notes + notes,
                "seconds": None,
            },
            "layers": layer_reports,
            "skipped": [{"name": s["name"], "reason": s["reason"]} for s in spec.skipped],
        }
        report["model"]["seconds"] = round(time.perf_counter() - t_start, 3)
        insp.report = report
        if out is not None:
            from verify.inspect_report import write_inspection

            step("writing the report and figures")
            write_inspection(Path(out), insp, figures=figures)
            bar.update(1)
    finally:
        bar.close()
    return insp if return_inspection else report


__all__ = ["DEFAULT_IMAGES", "Inspection", "PSNR_CAP_DB", "image_chain", "inspect_model",
           "load_images", "reconstruct_prefix"]
