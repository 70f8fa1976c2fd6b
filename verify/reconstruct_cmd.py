"""crelu reconstruct IMAGE --out OUT.png: image -> deep CReLU features -> image.

Reads a PNG/JPEG, passes it through a stack of conv -> CReLU -> 2x2 max-pool stages, and
reconstructs it three ways from the same features: the exact stage-by-stage inverse with
switches (CReLU), the same algorithm on the ReLU stack, and a Mahendran-Vedaldi-style
optimisation baseline with a total-variation prior. Writes one panel (original and the three
reconstructions, PSNR in the captions; written to a temporary file and renamed, so OUT.png is
either the old panel or the new one) and prints the numbers.
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


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS,
               multiple: int = 1) -> np.ndarray:
    """An RGB image as float64 (3, H, W) in [0, 1], cropped to a multiple of ``multiple``.

    Raises FileNotFoundError (missing), ValueError (unreadable, too large or too small).
    """
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image {path} does not exist")
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ValueError(
                    f"image {path} is {w}x{h} = {w * h} pixels, more than the {max_pixels} "
                    "this command holds in memory (the deep features and solver vectors are "
                    "~100x the image); crop or resize it, or raise --max-pixels")
            arr = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
        raise ValueError(f"cannot read {path} as an image: {exc}") from exc
    hh, ww = arr.shape[0] // multiple * multiple, arr.shape[1] // multiple * multiple
    if hh == 0 or ww == 0:
        raise ValueError(f"image {path} is {arr.shape[1]}x{arr.shape[0]}, smaller than the "
                         f"{multiple}x{multiple} the stack's pooling needs")
    return np.ascontiguousarray(arr[:hh, :ww].transpose(2, 0, 1))


def _weights(spec: str, stages: int, seed: int):
    import numpy as np

    from verify.deep import load_weights, random_weights, stage_widths, trained_weights_path

    if stages < 1:
        raise ValueError(f"--stages must be >= 1, got {stages}")
    if spec == "random":
        return random_weights(np.random.default_rng(seed), 3, stage_widths(stages)), "random"
    path = trained_weights_path() if spec == "trained" else Path(spec)
    weights = load_weights(path)
    if len(weights) < stages:
        raise ValueError(f"{path} holds {len(weights)} stage(s); --stages {stages} asked")
    if weights[0].shape[1] not in (1, 3):
        raise ValueError(f"{path}: stage 1 has {weights[0].shape[1]} input channels; expected "
                         "3 (RGB) or 1 (greyscale)")
    return weights[:stages], str(path)


def run(args: argparse.Namespace) -> int:
    """Read, reconstruct three ways, write the panel, print the numbers."""
    from tqdm import tqdm

    from verify import deep, figures

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out must end in .png, got {out}")
    if not out.parent.exists():
        raise FileNotFoundError(f"output folder {out.parent} does not exist")
    pool = 1 if args.no_pool else 2
    if not 0 < args.tol < 1 or args.maxiter < 1:
        raise ValueError(f"--tol must be in (0, 1) and --maxiter >= 1, got {args.tol}, "
                         f"{args.maxiter}")
    if args.baseline_steps < 0:
        raise ValueError(f"--baseline-steps must be >= 0, got {args.baseline_steps}")
    image = read_image(args.image, args.max_pixels, pool ** args.stages)
    weights, source = _weights(args.weights, args.stages, args.seed)
    if weights[0].shape[1] == 1:  # greyscale filters (e.g. trained on Fashion-MNIST)
        image = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
    total = 4 * args.stages + args.baseline_steps
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
        methods = ("crelu", "relu") + (("optimisation",) if args.baseline_steps > 0 else ())
        results = deep.reconstruct_all(image, weights, pool, args.baseline_steps, methods=methods,
                                  progress=progress, tol=args.tol, maxiter=args.maxiter)
    finally:
        bar.close()
    widths = ",".join(str(w.shape[0]) for w in weights)
    title = (f"{Path(args.image).name} {image.shape[2]}x{image.shape[1]}, {args.stages} stage(s) "
             f"conv{'' if args.no_pool else ' + 2x2 max-pool'}, filters {widths} ({source})")
    figures.reconstruction_panel(out, image, results, title)
    print(title)
    print(f"{'method':<14}{'PSNR dB':>10}{'rel. error':>13}{'seconds':>10}  measurements/unknowns per stage")
    for r in results:
        frames = ""
        if "stages" in r.info:
            frames = " ".join(f"s{s['stage']}:{s['n_selected']}/{s['unknowns']}"
                              for s in r.info["stages"])
        print(f"{r.name:<14}{r.psnr:>10.2f}{r.relative_error:>13.3g}{r.seconds:>10.1f}  {frames}")
    for r in results:
        for s in r.info.get("stages", []):
            print(f"  {r.name} stage {s['stage']}: {s['n_selected']} measurements "
                  f"({s['zero_window_rows']} from zero windows) for {s['unknowns']} "
                  f"unknowns, LSMR {s['lsmr_iterations']} it., residual "
                  f"{s['relative_residual']:.2g}, cond est. {s['cond_estimate']:.3g} "
                  f"({s['stop']})")
    print(f"panel written to {out}")
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
    p.add_argument("--baseline-steps", type=at_least(0), default=300, metavar="N",
                   help="Adam steps of the optimisation baseline; 0 skips it "
                        "(default: %(default)s)")
    p.add_argument("--tol", type=open_interval(0, 1), default=1e-10,
                   help="LSMR atol = btol per stage, in (0, 1) (default: %(default)s; looser "
                        "tolerances are faster but break two-stage inversion: the recovered "
                        "stage-1 features lose their zero pattern)")
    p.add_argument("--maxiter", type=at_least(1), default=3000, metavar="N",
                   help="LSMR iterations per stage, at most (default: %(default)s)")
    p.add_argument("--max-pixels", type=at_least(1), default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse larger images (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
