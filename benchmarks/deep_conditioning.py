"""Why the deep stack's widths matter: conditioning of each stage's selected filters.

Two measurements on the astronaut photo, random orthonormal 3x3 banks, padding 1, 2x2
max-pooling, CReLU, seed 0 (the numbers quoted in docs/theory/maxpool.md, "Deep stacks"):

1. For each architecture (filters per stage), on a ``--crop`` x ``--crop`` crop: each stage's
   number of selected values n, unknowns D, the fraction of pooled CReLU units that are 0,
   and the exact singular values of W_x^T (dense SVD), cond = s_max / s_min over the non-zero
   singular values; also with Jacobi column scaling.
2. LSMR iterations (atol = btol = 1e-10) with and without CReLU's zero windows and Jacobi
   preconditioning, on a crop away from the black background and on a crop that contains
   black pixels (each stage solved from its exact features).

3. ``--allocator plain|env``: one application of W_x^T and W_x for stage 2 of the 512x512
   stack (16, 224 filters), median of 7, in a process that runs plain or entirely inside
   ``verify.deep.solver_environment`` (glibc: large buffers from the heap instead of fresh
   mmap pages). Run both, alternating, in separate processes.

Usage: python benchmarks/deep_conditioning.py [--crop 32] [--archs 12,96 16,224]
       [--lsmr-crop 128] [--skip-svd] [--skip-lsmr] [--allocator plain|env]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from theory.deep import deep_forward
from theory.pooling import invert_crelu_maxpool, selection
from verify.data import load_photo
from verify.deep import build_stacks, random_weights, solver_environment


def _crop(size: int, top: int, left: int) -> np.ndarray:
    img = load_photo("astronaut")
    return np.ascontiguousarray(img[:, top:top + size, left:left + size])


def _stack(img: np.ndarray, widths):
    """The seed-0 random CReLU stack of these widths and its forward pass on ``img``."""
    stages, _ = build_stacks(random_weights(np.random.default_rng(0), 3, widths))
    return stages, deep_forward(img, stages, "crelu")


def _cond(mat: np.ndarray) -> float:
    s = np.linalg.svd(mat, compute_uv=False)
    nz = s[s > 1e-12 * s[0]]
    return float(nz[0] / nz[-1])


def conditioning(widths, size: int) -> list[dict]:
    img = _crop(size, 0, 0)
    stages, fwd = _stack(img, widths)
    rows = []
    for i, st in enumerate(stages):
        sel = selection(fwd.features[i], fwd.switches[i], st.layer, fwd.input_shapes[i], 2)
        mat = sel.sparse().toarray()
        cn = np.linalg.norm(mat, axis=0)
        keep = cn > 0
        rows.append({"stage": i + 1, "n": sel.n_selected, "D": sel.dim,
                     "zero_units": float((fwd.features[i] == 0).mean()),
                     "cond": _cond(mat), "cond_jacobi": _cond(mat[:, keep] / cn[keep])})
    return rows


def lsmr_iterations(widths, size: int, top: int, left: int) -> list[dict]:
    img = _crop(size, top, left)
    stages, fwd = _stack(img, widths)
    inputs = [img] + fwd.features[:-1]
    rows = []
    for i, st in enumerate(stages):
        for zw, pre in ((False, "none"), (False, "jacobi"), (True, "none"), (True, "jacobi")):
            t0 = time.perf_counter()
            res = invert_crelu_maxpool(fwd.features[i], fwd.switches[i], st.layer,
                                       fwd.input_shapes[i], 2, solver="lsmr", certify=False,
                                       atol=1e-10, btol=1e-10, maxiter=20000,
                                       precondition=pre, zero_windows=zw,
                                       on_non_injective="ignore")
            err = float(np.linalg.norm(res.x - inputs[i]) / np.linalg.norm(inputs[i]))
            rows.append({"stage": i + 1, "precondition": pre, "zero_windows": zw,
                         "iterations": res.iterations,
                         "seconds": time.perf_counter() - t0, "error": err,
                         "black": float((img.max(0) == 0).mean())})
    return rows


def allocator(mode: str) -> None:
    import contextlib

    from _timing import timeit

    ctx = solver_environment() if mode == "env" else contextlib.nullcontext()
    with ctx:  # the whole process, from the first large allocation on
        img = load_photo("astronaut")
        stages, fwd = _stack(img, (16, 224))
        sel = selection(fwd.features[1], fwd.switches[1], stages[1].layer,
                        fwd.input_shapes[1], 2)
        op = sel.operator()
        v = fwd.features[0].ravel()
        pair = timeit(lambda: op.rmatvec(op.matvec(v)), repeat=7)
    print(f"3. stage 2 of the 512x512 stack, {sel.n_selected} x {sel.dim} operator, "
          f"{'inside solver_environment' if mode == 'env' else 'plain'}: W^T and W once "
          f"{pair:.3f} s (median of 7)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crop", type=int, default=32)
    ap.add_argument("--archs", nargs="+", default=["12,96", "16,224"])
    ap.add_argument("--lsmr-crop", type=int, default=128)
    ap.add_argument("--skip-svd", action="store_true")
    ap.add_argument("--skip-lsmr", action="store_true")
    ap.add_argument("--allocator", choices=["plain", "env"], default=None)
    args = ap.parse_args()
    if args.allocator:
        allocator(args.allocator)
        return
    archs = [tuple(int(v) for v in a.split(",")) for a in args.archs]
    with solver_environment():
        if not args.skip_svd:
            print(f"1. exact conditioning, astronaut crop {args.crop}x{args.crop} (top-left), "
                  "dense SVD")
            print(f"{'filters':<10}{'stage':>6}{'n':>8}{'D':>8}{'n/D':>7}{'zero units':>12}"
                  f"{'cond':>9}{'cond Jacobi':>13}")
        for w in archs if not args.skip_svd else ():
            for r in conditioning(w, args.crop):
                print(f"{','.join(map(str, w)):<10}{r['stage']:>6}{r['n']:>8}{r['D']:>8}"
                      f"{r['n'] / r['D']:>7.2f}{r['zero_units']:>12.2f}{r['cond']:>9.1f}"
                      f"{r['cond_jacobi']:>13.1f}")
        if args.skip_lsmr:
            return
        size = args.lsmr_crop
        print(f"\n2. LSMR (atol = btol = 1e-10), filters {args.archs[-1]}, "
              f"{size}x{size} crops")
        print(f"{'crop':<22}{'black px':>9}{'stage':>6}{'zero win.':>10}{'precond.':>9}"
              f"{'iters':>7}"
              f"{'seconds':>9}{'rel. error':>12}")
        for name, top, left in (("top-left", 0, 0), ("rows 256+, cols 320+", 256, 320)):
            for r in lsmr_iterations(archs[-1], size, top, left):
                print(f"{name:<22}{r['black']:>9.2f}{r['stage']:>6}"
                      f"{'yes' if r['zero_windows'] else 'no':>10}{r['precondition']:>9}"
                      f"{r['iterations']:>7}{r['seconds']:>9.1f}{r['error']:>12.2e}")


if __name__ == "__main__":
    main()
