"""crelu reconstruct IMAGE --out OUT.png: image -> deep CReLU features -> image.

Reads a PNG/JPEG, passes it through a stack of conv -> CReLU -> 2x2 max-pool stages, and
reconstructs it three ways from the same features: the exact stage-by-stage inverse with
switches (CReLU), the same algorithm on the ReLU stack, and a Mahendran-Vedaldi-style
optimisation baseline with a total-variation prior. Writes one panel (original and the three
reconstructions, PSNR in the captions; written to a temporary file and renamed, so OUT.png is
either the old panel or the new one) and prints the numbers. The CReLU column is labelled
exact only when every stage's selected filters are certified a frame (--certify); the exit
status is 1 when a stage is certified not to be a frame or its solver did not converge.
Every conversion of the image (bit depth, palette, alpha, greyscale, crop) is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from verify.argtypes import at_least, open_interval

if TYPE_CHECKING:
    import numpy as np

#: Refuse images with more pixels than this unless --max-pixels is raised.
DEFAULT_MAX_PIXELS = 1024 * 1024
#: Refuse random stacks whose float64 weights exceed this (four stages would need 18.6 GiB).
MAX_RANDOM_WEIGHT_BYTES = 2 * 2 ** 30


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS,
               multiple: int = 1) -> tuple["np.ndarray", list[str]]:
    """An image as float64 ``(C, H, W)`` in [0, 1] and the notes on how it was read.

    Colour images give ``C = 3`` and greyscale ones ``C = 1`` (kept as one channel). Each
    mode is converted explicitly and the conversion is noted: 16- and 32-bit integer images
    are scaled by their bit depth (never clipped to 8 bits), floating-point images must lie
    in [0, 1], palette images are expanded, CMYK is converted to RGB, an alpha channel is
    dropped. The image is cropped to a multiple of ``multiple`` (the stack's pooling), which
    is noted too.

    Raises FileNotFoundError (missing), ValueError (unreadable, too large or too small,
    unsupported mode, values out of range).
    """
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image {path} does not exist")
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    notes: list[str] = []
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ValueError(
                    f"image {path} is {w}x{h} = {w * h} pixels, more than the {max_pixels} "
                    "this command holds in memory (the deep features and solver vectors are "
                    "~100x the image); crop or resize it, or raise --max-pixels")
            arr = _image_array(im, notes)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
        raise ValueError(f"cannot read {path} as an image: {exc}") from exc
    hh, ww = arr.shape[1] // multiple * multiple, arr.shape[2] // multiple * multiple
    if hh == 0 or ww == 0:
        raise ValueError(f"image {path} is {arr.shape[2]}x{arr.shape[1]}, smaller than the "
                         f"{multiple}x{multiple} the stack's pooling needs")
    if (hh, ww) != arr.shape[1:]:
        notes.append(f"cropped from {arr.shape[2]}x{arr.shape[1]} to {ww}x{hh} (a multiple of "
                     f"{multiple}, the pooling of all stages)")
    return np.ascontiguousarray(arr[:, :hh, :ww]), notes


def _image_array(im, notes: list[str]) -> "np.ndarray":
    """``(C, H, W)`` float64 in [0, 1] from a PIL image, every conversion noted."""
    import numpy as np

    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        notes.append(f"16-bit greyscale ({mode}): scaled by 1/65535, kept as one channel")
        return (np.asarray(im, dtype=np.float64) / 65535.0)[None]
    if mode == "I":
        a = np.asarray(im, dtype=np.float64)
        if a.min() < 0:
            raise ValueError(f"32-bit integer image with negative values (min {a.min():g}); "
                             "expected non-negative intensities")
        depth = 8 if a.max() <= 255 else 16 if a.max() <= 65535 else 32
        notes.append(f"integer greyscale (mode I, values up to {a.max():g}): scaled by "
                     f"1/(2^{depth} - 1), kept as one channel")
        return (a / (2.0 ** depth - 1))[None]
    if mode == "F":
        a = np.asarray(im, dtype=np.float64)
        if a.min() < 0 or a.max() > 1:
            raise ValueError(f"floating-point image with values in [{a.min():g}, {a.max():g}]; "
                             "expected [0, 1]")
        notes.append("floating-point greyscale, kept as one channel")
        return a[None]
    if mode in ("1", "L"):
        if mode == "1":
            notes.append("1-bit image: read as 0/1 greyscale, one channel")
        return (np.asarray(im.convert("L"), dtype=np.float64) / 255.0)[None]
    if mode in ("LA", "La"):
        notes.append(f"greyscale with alpha ({mode}): alpha dropped, kept as one channel")
        return (np.asarray(im.convert("L"), dtype=np.float64) / 255.0)[None]
    if mode == "P":
        has_alpha = "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
        notes.append("palette image: expanded to RGB" + (", alpha dropped" if has_alpha else ""))
        if im.mode == "RGBA":
            im = im.convert("RGB")
    elif mode in ("RGBA", "RGBa"):
        notes.append("RGBA: alpha dropped")
        im = im.convert("RGB")
    elif mode == "CMYK":
        notes.append("CMYK: converted to RGB by PIL's standard conversion")
        im = im.convert("RGB")
    elif mode in ("YCbCr", "LAB", "HSV"):
        notes.append(f"{mode}: converted to RGB")
        im = im.convert("RGB")
    elif mode != "RGB":
        raise ValueError(f"unsupported image mode {mode!r}; save the image as 8- or 16-bit "
                         "greyscale or RGB")
    return np.asarray(im, dtype=np.float64).transpose(2, 0, 1) / 255.0


def _weights(spec: str, stages: int, seed: int, channels: int = 3):
    import numpy as np

    from verify.deep import load_weights, random_weights, stage_widths, trained_weights_path

    if stages < 1:
        raise ValueError(f"--stages must be >= 1, got {stages}")
    if spec == "random":
        widths = stage_widths(stages)
        ins = (channels,) + tuple(2 * k for k in widths[:-1])   # CReLU doubles the channels
        size = sum(8 * k * c * 9 for k, c in zip(widths, ins))
        if size > MAX_RANDOM_WEIGHT_BYTES:
            raise ValueError(
                f"--stages {stages} with the random banks needs filters {widths}: "
                f"{size / 2 ** 30:.1f} GiB of float64 weights (the Gaussian draw and its QR "
                f"need several times that), more than the "
                f"{MAX_RANDOM_WEIGHT_BYTES / 2 ** 30:.0f} GiB this command builds; each "
                "stage needs about 14 times the filters of the one before to stay well "
                "conditioned (docs/theory/maxpool.md, 'Deep stacks'): use at most 3 stages, "
                "or --weights PATH with a stack of your own")
        return random_weights(np.random.default_rng(seed), channels, widths), "random"
    path = trained_weights_path() if spec == "trained" else Path(spec)
    weights = load_weights(path)
    if len(weights) < stages:
        raise ValueError(f"{path} holds {len(weights)} stage(s); --stages {stages} asked")
    if weights[0].shape[1] not in (1, 3):
        raise ValueError(f"{path}: stage 1 has {weights[0].shape[1]} input channels; expected "
                         "3 (RGB) or 1 (greyscale)")
    return weights[:stages], str(path)


def check_writable(out: Path) -> None:
    """Refuse an output path that cannot be written, before any work."""
    import os

    folder = out.parent if str(out.parent) else Path(".")
    if not folder.exists():
        raise FileNotFoundError(f"output folder {folder} does not exist")
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write into {folder} (permission denied)")
    if out.exists() and (out.is_dir() or not os.access(out, os.W_OK)):
        raise PermissionError(f"cannot overwrite {out}")


def crelu_verdict(result) -> tuple[str, str | None]:
    """The CReLU column's label and, when the inverse did not do what was asked, why.

    ``exact`` only when every stage's selected filters were *certified* a frame
    (``--certify``); a stage certified not to be a frame, or a solve (CGLS or LSMR) that
    did not converge, is a failure (the command then exits with status 1).
    """
    stages = result.info.get("stages", [])
    bad = [s for s in stages if s["is_frame"] is False]
    unconverged = [s for s in stages if not s["converged"]]
    if bad or unconverged:
        why = "; ".join([f"stage {s['stage']}: not a frame ({s['why']})" for s in bad]
                        + [f"stage {s['stage']}: the {s['solver']} solve did not converge "
                           f"({s['stop']})"
                           for s in unconverged])
        return "CReLU with switches: NOT exact", why
    if stages and all(s["is_frame"] is True for s in stages):
        return "CReLU, exact with switches (certified frames)", None
    return "CReLU with switches (frames not certified)", None


def run(args: argparse.Namespace) -> int:
    """Read, reconstruct three ways, write the panel, print the numbers."""
    from tqdm import tqdm

    from verify import deep, figures

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out must end in .png, got {out}")
    check_writable(out)
    pool = 1 if args.no_pool else 2
    image, notes = read_image(args.image, args.max_pixels, pool ** args.stages)
    weights, source = _weights(args.weights, args.stages, args.seed, image.shape[0])
    if weights[0].shape[1] == 1 and image.shape[0] == 3:   # greyscale filters
        image = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
        notes.append("RGB converted to luminance (0.299 R + 0.587 G + 0.114 B): the "
                     "filters have one input channel")
    elif weights[0].shape[1] == 3 and image.shape[0] == 1:
        image = image.repeat(3, axis=0)
        notes.append("greyscale repeated on 3 channels: the filters have three input channels")
    for note in notes:
        print(f"note: {note}")
    budget = args.budget == "crelu"
    steps = args.baseline_steps if args.baseline_steps is not None else (
        10000 if budget else 300)
    total = None if budget and steps else 4 * args.stages + steps
    bar = tqdm(total=total, desc="reconstruct", unit="step", disable=args.no_progress,
               file=sys.stderr)

    def progress(msg: str, steps: int | None = None) -> None:
        if steps == 0:  # an LSMR iteration: refresh the label now and then
            if msg.endswith("0"):
                bar.set_postfix_str(msg[:30])
            return
        bar.set_postfix_str(msg[:30])
        bar.update(2 if "stage" in msg else 1)

    try:
        methods = ("crelu", "relu") + (("optimisation",) if steps > 0 else ())
        results = deep.reconstruct_all(image, weights, pool, steps,
                                       methods=methods, progress=progress, tol=args.tol,
                                       maxiter=args.maxiter, certify=args.certify,
                                       budget=budget)
    finally:
        bar.close()
    label, failure = crelu_verdict(results[0])
    widths = ",".join(str(w.shape[0]) for w in weights)
    title = (f"{Path(args.image).name} {image.shape[2]}x{image.shape[1]}, {args.stages} stage(s) "
             f"conv{'' if args.no_pool else ' + 2x2 max-pool'}, filters {widths} ({source})")
    labels = {"crelu": label}
    by = {r.name: r for r in results}
    if budget:
        units = by["crelu"].info["forward_units"]
        if "relu" in by and "capped_at" in by["relu"].info:
            caps = ", ".join(f"s{i + 1} {c}" for i, c in enumerate(by["relu"].info["capped_at"]))
            labels["relu"] = f"ReLU, same algorithm\n(CReLU's budget: at most {caps} it.)"
        if "optimisation" in by:
            labels["optimisation"] = (f"optimisation + TV, {by['optimisation'].info['steps']} "
                                      f"steps\n(CReLU's budget, {units:.0f} forward units)")
    figures.reconstruction_panel(out, image, results, title, labels=labels)
    print(title)
    zero = not image.any()
    err_head = "abs. error" if zero else "rel. error"
    print(f"{'method':<14}{'PSNR dB':>10}{err_head:>13}{'seconds':>10}{'units':>8}  "
          "measurements/unknowns per stage")
    for r in results:
        frames = ""
        if "stages" in r.info:
            frames = " ".join(f"s{s['stage']}:{s['n_selected']}/{s['unknowns']}"
                              for s in r.info["stages"])
        print(f"{r.name:<14}{r.psnr:>10.2f}{r.relative_error:>13.3g}{r.seconds:>10.1f}"
              f"{r.info.get('forward_units', float('nan')):>8.1f}  {frames}")
    unit = results[0].info.get("unit_seconds") if results else None
    if unit:
        print(f"units: forward passes of the CReLU stack ({unit:.2f} s each, timed in this run)")
    if budget and "relu" in by and "capped_at" in by["relu"].info:
        print("budget: the ReLU projection was capped at the CReLU column's iterations per "
              "stage, scaled by the cost of an iteration "
              f"({by['relu'].info['capped_at']}, first stage first; --budget none lifts it)")
    if budget and "optimisation" in by:
        o = by["optimisation"].info
        print(f"budget: the optimisation baseline ran {o['steps']} Adam steps in the CReLU "
              f"column's {o['budget_seconds']:.1f} s (at most {o['max_steps']}; --budget none "
              "runs --baseline-steps)")
    if zero:
        print("note: the image is all zero: errors are absolute (no relative error exists)")
    for r in results:
        for s in r.info.get("stages", []):
            frame = {True: "certified frame", False: "NOT a frame", None: "frame not certified"}
            iterative = s["solver"].startswith("lsmr") or s["solver"] == "cgls"
            solve = (f"{s['solver'].split('-')[0].upper()} {s['iterations']} it., cond est. "
                     f"{s['cond_estimate']:.3g} ({s['stop']})" if iterative else
                     f"{s['solver']} solve" + (f" ({s['stop']})" if s["stop"] else ""))
            print(f"  {r.name} stage {s['stage']}: {s['n_selected']} measurements "
                  f"({s['zero_window_rows']} from zero windows) for {s['unknowns']} "
                  f"unknowns, {frame[s['is_frame']]}, residual "
                  f"{s['relative_residual']:.2g}, {solve}")
    print(f"CReLU column: {label}")
    print(f"panel written to {out}")
    if failure:
        print(f"crelu reconstruct: the CReLU inverse did not do what was asked: {failure}",
              file=sys.stderr)
        return 1
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``crelu reconstruct`` on the ``crelu`` subparsers."""
    p = sub.add_parser("reconstruct", help="reconstruct an image from deep CReLU features",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", help="PNG or JPEG file")
    p.add_argument("--out", required=True, metavar="OUT.png", help="output panel (.png)")
    p.add_argument("--stages", type=at_least(1), default=2, metavar="N",
                   help="conv+CReLU+pool stages, >= 1 (default: %(default)s)")
    p.add_argument("--weights", default="random", metavar="random|trained|PATH",
                   help="random (seeded orthonormal banks), trained (verify/weights/), or a "
                        "safetensors PATH with keys stage1.weight, stage2.weight, ... "
                        "(default: %(default)s)")
    p.add_argument("--no-pool", action="store_true", help="no max-pooling (conv + CReLU only)")
    p.add_argument("--seed", type=at_least(0), default=0, metavar="N",
                   help="seed of the random banks, >= 0 (default: %(default)s)")
    p.add_argument("--baseline-steps", type=at_least(0), default=None, metavar="N",
                   help="Adam steps of the optimisation baseline, at most (with --budget "
                        "crelu; default 10000) or exactly (--budget none; default 300); 0 "
                        "skips it")
    p.add_argument("--budget", choices=("crelu", "none"), default="crelu",
                   help="crelu (default): the ReLU projection is capped at the CReLU "
                        "column's iterations per stage and the optimisation baseline runs "
                        "for the CReLU column's wall time, so that neither costs more; none: "
                        "ReLU runs to --maxiter, the baseline --baseline-steps steps")
    p.add_argument("--tol", type=open_interval(0, 1), default=1e-10,
                   help="atol = btol of every stage's solve, in (0, 1) (default: "
                        "%(default)s; looser "
                        "tolerances are faster but break two-stage inversion: the recovered "
                        "stage-1 features lose their zero pattern)")
    p.add_argument("--maxiter", type=at_least(1), default=3000, metavar="N",
                   help="iterations per stage, at most (default: %(default)s)")
    p.add_argument("--certify", action="store_true",
                   help="compute the frame bounds of every stage's selected filters (slow on "
                        "large images), so that the CReLU column can be labelled exact")
    p.add_argument("--max-pixels", type=at_least(1), default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse larger images (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
