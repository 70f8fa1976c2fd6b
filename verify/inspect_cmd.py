"""crelu inspect MODEL: certify and analyse the conv layers of your own network.

Reads a PyTorch state_dict or checkpoint (torch.load with weights_only=True; files that need
pickle code are refused), a safetensors file or an ONNX model, and writes DIR/inspect.json,
DIR/inspect.md and figures: per conv layer its frame bounds (CReLU injectivity), the
fraction of sample patches whose active filters span the input under ReLU, the pairing
statistic with its baselines, and reconstructions of photos through the first layers.
Field meanings: docs/howto/inspect.md.
"""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from verify.inspect import inspect_model

    images = None if args.images.strip().lower() == "none" else [
        s.strip() for s in args.images.split(",") if s.strip()]
    report = inspect_model(
        args.model, args.input_shape, layers=args.layers, images=images,
        geometry=args.geometry, out=args.out, bounds_method=args.bounds_method,
        bounds_tol=args.bounds_tol, bounds_budget=args.bounds_budget or None,
        threads=args.threads, patches=args.patches, recon_depth=args.recon_depth,
        baseline_steps=args.baseline_steps, seed=args.seed, figures=not args.no_figures,
        progress=not args.no_progress, fmt=args.format)
    for L in report["layers"]:
        fb = L["frame_bounds"]
        frac = L["relu_injective_fraction"]
        rc = L["reconstruction_psnr_db"] or {}
        lower = "?" if fb["lower"] is None else f"{fb['lower']:.4g}"
        inj = {True: "yes", False: "no", None: "?"}[L["crelu_injective"]]
        print(f"{L['name']:<24} a={lower:<10} b={fb['upper']:<10.4g} {fb['method']:<9}"
              f" certified={'yes' if fb['certified'] else 'no ':<3} CReLU-injective="
              f"{inj:<3} ReLU-span="
              f"{'—' if frac is None else f'{frac:.3f}':<6}"
              + ("" if rc.get("crelu") is None else f" PSNR CReLU {rc['crelu']:.1f} dB"))
    for s in report["skipped"]:
        print(f"skipped {s['name']}: {s['reason']}")
    print(f"report written to {args.out}/inspect.json and inspect.md "
          f"({report['model']['seconds']} s)")
    return 0


def add_parser(sub) -> None:
    """Register ``crelu inspect`` on the ``crelu`` subparsers."""
    from verify.argtypes import at_least, non_negative_real, open_interval

    p = sub.add_parser("inspect", help="certify and analyse the conv layers of your network",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model file: .pt/.pth (state_dict or checkpoint), "
                   ".safetensors or .onnx")
    p.add_argument("--input-shape", metavar="C,H,W",
                   help="image shape (needed for weight-only files and dynamic ONNX inputs; "
                        "checked against a static ONNX input)")
    p.add_argument("--layers", metavar="PATTERN",
                   help="only the convs whose names match these glob patterns (comma-separated)")
    p.add_argument("--images", default="astronaut,coffee",
                   help="bundled photo names or image files, comma-separated, or 'none' "
                        "(default astronaut,coffee)")
    p.add_argument("--geometry", metavar="same|valid|FILE.json",
                   help="stride/padding/dilation of a weight-only file (docs: Inspect your "
                        "own network)")
    p.add_argument("--format", choices=["torch", "safetensors", "onnx"],
                   help="file format, if the extension does not tell")
    p.add_argument("--out", default="crelu-inspect", help="output folder (default "
                   "crelu-inspect; replaced as a whole, refused if it holds other files)")
    p.add_argument("--bounds-method", default="auto",
                   help="theory.frame_bounds method (default auto)")
    p.add_argument("--bounds-tol", type=open_interval(0, 1), default=1e-10,
                   help="Lanczos tolerance of the iterative frame bounds (default 1e-10)")
    p.add_argument("--bounds-budget", type=non_negative_real(), default=60.0, metavar="SECONDS",
                   help="time per layer for the frame bounds (default 60; 0: no limit); past "
                        "it the lower bound is left undecided and only the upper is reported")
    p.add_argument("--threads", type=at_least(1), default=1,
                   help="torch and BLAS threads (default 1: faster on a shared machine)")
    p.add_argument("--patches", type=at_least(1), default=1024,
                   help="sample patches per layer for the ReLU rank test (default 1024)")
    p.add_argument("--recon-depth", type=at_least(0), default=2,
                   help="reconstruct through at most this many convs (default 2; 0: none)")
    p.add_argument("--baseline-steps", type=at_least(0), default=200,
                   help="Adam steps of the optimisation baseline (default 200; 0: none)")
    p.add_argument("--seed", type=at_least(0), default=0,
                   help="seed of the patch sampling and the random baselines (default 0)")
    p.add_argument("--no-figures", action="store_true", help="JSON and Markdown only")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
