"""Benchmark: would block-Jacobi on the image's border ring speed up the zero-padded inverse?

Issue 13's inversion target (relative error <= 1e-10 in <= 50 forward units) is not met for
AlexNet conv1 (96x3x11x11, stride 4, padding 2, 3x224x224): the package's CGLS with Jacobi
scaling needs about 160 iterations, because A^T A's smallest eigenvalues live on the pixels
near the border, which fewer windows read (docs/theory/proposition-2-1.md). This script
measures one candidate for the step left, outside the package:

* ``jacobi``: M = diag(A^T A)^(-1/2) (the package's column scaling;
  ``theory.preconditioner.column_norms``);
* ``ring r x L``: the image cut into tiles, a ring of tiles ``r`` pixels deep along the
  border (``L`` pixels long, all channels of a tile together) and one pixel per tile
  inside; on each ring tile T, M_T = R_T^(-1) with R_T^T R_T = (A^T A)_TT (Cholesky), and
  Jacobi inside. Right preconditioning: CG on (AM)^T (AM) y = (AM)^T z, x = M y.
* ``tiles t``: every tile t x t (no Jacobi part), for comparison.

The diagonal blocks (A^T A)_TT are built from the weights (the local columns of A: the
windows that meet the tile, the taps that land in it); tiles whose windows meet them at the
same offsets share one block, so a translation-invariant interior needs only one. The block
builder is checked in the same run against the dense A^T A (``ConvLayer.dense``) on a small
input; the script stops if they differ by more than 1e-12 relative.

Measured, per random bank (Gaussian / sqrt(fan-in), seeds as given), consistent data
z = A x with x uniform in [0, 1): the iterations of the package's CGLS
(``theory.solvers.solve_cgls``, float64 products, atol = btol = 1e-13 as in
``inversion.py --parts f``) on A M from 0, whether it converged, the relative error of
x = M y, the number of distinct blocks and of unknowns in blocks, the block setup time, and
one application of M (float64, gather and scatter included), in the unit of
``inversion.py`` (``forward_unit``: one plain torch conv + CReLU of the layer on the same
input), all in this run. ``invert_crelu`` itself is not used: its CGLS takes only a diagonal
scaling, so M is applied here as part of the operator A M.

Usage: python benchmarks/border_blocks.py [--size 224] [--seeds 0,1,2]
       [--configs jacobi,ring12x16,ring16x16,tiles16] [--check-size 32] [--json PATH]
"""

from __future__ import annotations

import argparse
import re
import time

import numpy as np
import torch

from scipy.sparse.linalg import LinearOperator

from _timing import timeit, write_rows
from inversion import forward_unit
from theory import ConvLayer
from theory.preconditioner import column_norms
from theory.solvers import solve_cgls

K, C, KS, STRIDE, PAD = 96, 3, 11, 4, 2      # AlexNet conv1
ATOL = 1e-13                                # atol = btol, as in inversion.py --parts f


def windows(a0: int, a1: int, n_out: int) -> np.ndarray:
    """Output indices i (0 <= i < n_out) whose window s i - p ... s i - p + k - 1 meets [a0, a1)."""
    i = np.arange(n_out)
    start = STRIDE * i - PAD
    return i[(start <= a1 - 1) & (start + KS - 1 >= a0)]


def block_key(ya, xa, h_out, w_out):
    """Tiles with the same key have the same diagonal block of A^T A."""
    iy, ix = windows(*ya, h_out), windows(*xa, w_out)
    return (tuple(STRIDE * iy - PAD - ya[0]), ya[1] - ya[0],
            tuple(STRIDE * ix - PAD - xa[0]), xa[1] - xa[0])


def tile_gram(w: np.ndarray, ya, xa, h_out: int, w_out: int) -> np.ndarray:
    """(A^T A)_TT for the tile rows ya = (y0, y1), columns xa, unknowns ordered (c, y, x)."""
    iy, ix = windows(*ya, h_out), windows(*xa, w_out)
    ty = ya[0] + np.arange(ya[1] - ya[0])[None, :] - (STRIDE * iy - PAD)[:, None]   # (na, ly)
    tx = xa[0] + np.arange(xa[1] - xa[0])[None, :] - (STRIDE * ix - PAD)[:, None]   # (nb, lx)
    ty = np.where((ty >= 0) & (ty < KS), ty, KS)         # KS: the zero tap appended below
    tx = np.where((tx >= 0) & (tx < KS), tx, KS)
    wz = np.zeros((w.shape[0], w.shape[1], KS + 1, KS + 1))
    wz[:, :, :KS, :KS] = w
    loc = wz[:, :, ty[:, None, :, None], tx[None, :, None, :]]    # (K, C, na, nb, ly, lx)
    loc = loc.transpose(0, 2, 3, 1, 4, 5).reshape(-1, w.shape[1] * ty.shape[1] * tx.shape[1])
    return loc.T @ loc


def segments(n: int, depth: int, length: int) -> list[tuple[int, int]]:
    """[0, depth), then pieces of `length` up to n - depth, then [n - depth, n)."""
    out, a = [(0, depth)], depth
    while a < n - depth:
        out.append((a, min(a + length, n - depth)))
        a += length
    return out + [(n - depth, n)]


class BlockPreconditioner:
    """M = blockdiag(R_T^-1) on the chosen tiles, Jacobi elsewhere (prototype, float64)."""

    def __init__(self, layer, shape, ys, xs, ring_only: bool, jacobi: torch.Tensor):
        w = layer.weight.numpy()
        _, h_out, w_out = layer.output_shape(shape)
        flat = np.arange(np.prod(shape)).reshape(shape)
        t0 = time.perf_counter()
        inv, members = {}, {}
        for a, ya in enumerate(ys):
            for b, xa in enumerate(xs):
                if ring_only and 0 < a < len(ys) - 1 and 0 < b < len(xs) - 1:
                    continue
                key = block_key(ya, xa, h_out, w_out)
                if key not in inv:
                    L = np.linalg.cholesky(tile_gram(w, ya, xa, h_out, w_out))
                    inv[key] = torch.from_numpy(np.linalg.inv(L).T.copy())   # R^-1, R = L^T
                members.setdefault(key, []).append(flat[:, ya[0]:ya[1], xa[0]:xa[1]].ravel())
        self.setup_s = time.perf_counter() - t0
        self.groups = [(inv[k], torch.from_numpy(np.stack(v))) for k, v in members.items()]
        self.distinct = len(inv)
        self.in_blocks = sum(int(ix.numel()) for _, ix in self.groups)
        self.jacobi = jacobi

    def apply(self, v: torch.Tensor, transpose: bool = False) -> torch.Tensor:
        out = self.jacobi * v
        for m, ix in self.groups:
            out[ix] = v[ix] @ (m if transpose else m.T)
        return out


def solve(layer, shape, z, m, mt, x_true):
    """The package's CGLS (`theory.solvers.solve_cgls`, float64) on min ||A M y - z||, x = M y."""
    out_shape = layer.output_shape(shape)
    n, n_out = int(np.prod(shape)), int(np.prod(out_shape))

    def am(v):
        y = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64))
        return layer.forward(m(y).reshape(1, *shape)).reshape(-1).numpy()

    def amt(u):
        r = torch.from_numpy(np.ascontiguousarray(u, dtype=np.float64)).reshape(1, *out_shape)
        return mt(layer.adjoint(r, shape).reshape(-1)).numpy()

    op = LinearOperator((n_out, n), matvec=am, rmatvec=amt, dtype=np.float64)
    sol = solve_cgls(op, z.numpy(), atol=ATOL, btol=ATOL, maxiter=3000)
    x = m(torch.from_numpy(sol.x))
    return sol.iterations, sol.converged, float((x - x_true).norm() / x_true.norm())


def parse_config(name: str) -> tuple[str, int, int]:
    """``jacobi``, ``ring<depth>x<length>`` or ``tiles<t>`` -> (kind, first, second)."""
    m = re.fullmatch(r"jacobi|ring(\d+)x(\d+)|tiles(\d+)", name)
    if m is None:
        raise SystemExit(f"unknown config {name!r}: use jacobi, ring<depth>x<length> or tiles<t>")
    if name == "jacobi":
        return "jacobi", 0, 0
    return ("ring", int(m[1]), int(m[2])) if m[1] else ("tiles", int(m[3]), int(m[3]))


def check_blocks(size: int) -> float:
    """Largest relative difference of the tile blocks from the dense A^T A (seed 99)."""
    w = np.random.default_rng(99).standard_normal((K, C, KS, KS)) / np.sqrt(C * KS * KS)
    layer = ConvLayer(w, stride=STRIDE, padding=PAD)
    shape = (C, size, size)
    A = layer.dense(shape, force=True)
    G = A.T @ A
    _, h_out, _ = layer.output_shape(shape)
    flat = np.arange(np.prod(shape)).reshape(shape)
    worst = 0.0
    for ya in segments(size, 6, 8):
        for xa in segments(size, 5, 7):
            ix = flat[:, ya[0]:ya[1], xa[0]:xa[1]].ravel()
            blk = tile_gram(w, ya, xa, h_out, h_out)
            worst = max(worst, float(np.abs(blk - G[np.ix_(ix, ix)]).max() / np.abs(G).max()))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--configs", default="jacobi,ring8x16,ring12x16,ring16x16,tiles16")
    ap.add_argument("--check-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="write the rows here (atomically)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    err = check_blocks(args.check_size)
    print(f"tile blocks against the dense A^T A at 3x{args.check_size}x{args.check_size}: "
          f"max relative difference {err:.1e}")
    if not err <= 1e-12:
        raise SystemExit("the block builder disagrees with the dense oracle; nothing measured")

    shape = (C, args.size, args.size)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        rng = np.random.default_rng(seed)
        w = rng.standard_normal((K, C, KS, KS)) / np.sqrt(C * KS * KS)
        layer = ConvLayer(w, stride=STRIDE, padding=PAD)
        x_true = torch.from_numpy(rng.random(int(np.prod(shape))))
        unit = forward_unit(layer, x_true.reshape(shape).numpy())
        z = layer.forward(x_true.reshape(1, *shape)).reshape(-1)
        jac = torch.from_numpy(1.0 / column_norms(layer, shape))
        for name in args.configs.split(","):
            kind, a, b = parse_config(name)
            if kind == "jacobi":
                m = mt = (lambda v: jac * v)
                info = {"distinct_blocks": 0, "unknowns_in_blocks": 0, "setup_s": 0.0}
                apply_s = timeit(lambda: jac * x_true, repeat=5)
            else:
                if kind == "ring":
                    ys = xs = segments(args.size, a, b)
                else:
                    ys = xs = [(i, min(i + a, args.size)) for i in range(0, args.size, a)]
                P = BlockPreconditioner(layer, shape, ys, xs, kind == "ring", jac)
                m, mt = P.apply, (lambda v, P=P: P.apply(v, True))
                info = {"distinct_blocks": P.distinct, "unknowns_in_blocks": P.in_blocks,
                        "setup_s": P.setup_s}
                apply_s = timeit(lambda: P.apply(x_true), repeat=5)
            t0 = time.perf_counter()
            its, converged, rel = solve(layer, shape, z, m, mt, x_true)
            row = {"seed": seed, "config": name, "iterations": its, "converged": converged,
                   "relative_error": rel, "solve_s": time.perf_counter() - t0, "unit_s": unit,
                   "apply_units": apply_s / unit, "setup_units": info["setup_s"] / unit, **info}
            rows.append(row)
            print(f"seed {seed} {name:10s} {its:4d} it{'' if converged else ' (NOT converged)'}  "
                  f"err {rel:.1e}  blocks {info['distinct_blocks']:3d} "
                  f"({info['unknowns_in_blocks']:6d} unknowns)  setup {row['setup_units']:6.1f} units  "
                  f"one M {row['apply_units']:.2f} units  (unit {unit * 1e3:.1f} ms)", flush=True)
    if args.json:
        write_rows(args.json, rows)


if __name__ == "__main__":
    main()
