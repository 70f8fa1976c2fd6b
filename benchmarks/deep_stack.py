"""Benchmark: a deep CReLU stack (conv 3x3 + CReLU + 2x2 max-pool per stage) inverted with
switches, stage by stage (``theory.invert_deep``), on a photo: PSNR, iterations and time.

Issue 17's third target: four stages on a 256x256 photo at >= 60 dB with random frame banks.
The photo is the central ``--size`` crop of the astronaut photo; the banks are
``verify.deep.random_weights`` (orthonormal 3x3 filters, padding 1, seed ``--seed``) with
``verify.deep.stage_widths(stages, first, factor)`` filters per stage. Each stage with
``2K`` input channels has ``8K`` unknowns per pooling window of its output and measures at
most ``2K'`` of them, about 60% of which are non-zero on photos: ``factor`` 8 gives about
1.1-1.3 non-zero measurements per unknown (printed per stage), the default 14 of
``crelu reconstruct`` about 1.9 but a fourth stage of 43,904 filters (18.6 GiB of float64
weights), which this machine cannot hold.

Rows (``--json PATH``): one per stage (``part`` = ``stage``: measurements, unknowns, share of
pooled units that are 0, solver, iterations, relative residual, seconds) and one for the
whole inverse (``part`` = ``deep``: PSNR of the reconstruction, relative error,
``forward_units`` = seconds / one forward pass of the whole stack, and ``stage1_units`` =
seconds / one forward pass of stage 1 alone, both timed in the same run).

Usage: python benchmarks/deep_stack.py [--stages 4] [--size 256] [--factor 8] [--first 16]
       [--seed 0] [--tol 1e-10] [--maxiter 3000] [--json PATH]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _timing import timeit, write_rows
from theory.deep import deep_forward, invert_deep
from verify.data import load_photo
from verify.deep import build_stacks, psnr, random_weights, solver_environment, stage_widths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stages", type=int, default=4)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--factor", type=int, default=8)
    ap.add_argument("--first", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=float, default=1e-10)
    ap.add_argument("--maxiter", type=int, default=3000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    img = load_photo("astronaut", size=args.size)
    widths = stage_widths(args.stages, args.first, args.factor)
    weights = random_weights(np.random.default_rng(args.seed), img.shape[0], widths)
    stages, _ = build_stacks(weights, 2)
    print(f"{args.size}x{args.size} astronaut crop, {args.stages} stages, filters {widths}, "
          f"{sum(w.size for w in weights) * 8 / 2 ** 30:.2f} GiB of float64 weights", flush=True)
    rows: list[dict] = []
    with solver_environment():
        t0 = time.perf_counter()
        fwd = deep_forward(img, stages, "crelu")
        unit = time.perf_counter() - t0
        unit1 = timeit(lambda: deep_forward(img, stages[:1], "crelu"), repeat=5)
        for i, (f, shape) in enumerate(zip(fwd.features, fwd.input_shapes)):
            print(f"stage {i + 1}: input {shape}, features {f.shape}, pooled units = 0: "
                  f"{np.mean(f == 0):.3f}, non-zero measurements / unknowns "
                  f"{np.count_nonzero(f) / np.prod(shape):.2f}", flush=True)
        clock = [time.perf_counter()]

        def done(n, r):
            now = time.perf_counter()
            rows.append({"part": "stage", "stage": n, "method": r.solver,
                         "measurements": int(r.n_selected), "unknowns": int(r.x.size),
                         "zero_share": float(np.mean(fwd.features[n - 1] == 0)),
                         "iterations": int(r.iterations),
                         "relative_residual": float(r.relative_residual),
                         "stop": r.stopping.get("reason", ""), "seconds": now - clock[0]})
            print(f"stage {n}: {r.solver} {r.iterations} it., relative residual "
                  f"{r.relative_residual:.2e} ({r.stopping.get('reason', '')}), "
                  f"{now - clock[0]:.1f} s", flush=True)
            clock[0] = now

        t0 = time.perf_counter()
        res = invert_deep(fwd.last, fwd.switches, stages, img.shape, atol=args.tol,
                          btol=args.tol, maxiter=args.maxiter, callback=done)
        sec = time.perf_counter() - t0
    err = float(np.linalg.norm(res.x - img) / np.linalg.norm(img))
    rows.append({"part": "deep", "method": f"invert_deep, {args.stages} stages",
                 "widths": list(widths), "size": args.size, "psnr": psnr(res.x, img),
                 "relative_error": err, "seconds": sec, "forward_units": sec / unit,
                 "stage1_units": sec / unit1, "unit_seconds": unit,
                 "stage1_unit_seconds": unit1,
                 "feature_mismatch": res.checks["feature_mismatch"],
                 "switch_agreement": res.checks["switch_agreement"]})
    print(f"PSNR {psnr(res.x, img):.1f} dB, relative error {err:.2e}, {sec:.1f} s = "
          f"{sec / unit:.1f} units of the stack's forward pass ({unit:.2f} s) = "
          f"{sec / unit1:.0f} units of stage 1's ({unit1 * 1e3:.1f} ms); end to end: "
          f"{res.checks}")
    if args.json:
        write_rows(args.json, rows)


if __name__ == "__main__":
    main()
