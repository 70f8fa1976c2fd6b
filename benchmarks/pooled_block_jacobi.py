"""Benchmark: would a block-Jacobi (or two-tiling additive Schwarz) preconditioner pay off
for the pooled CReLU system of ``invert_crelu_maxpool``?

The system is that of ``benchmarks/pooling.py``: a 3xNxN central crop of the astronaut photo,
random orthonormal 3x3 filters (``verify.deep.random_bank``, seed 0), zero padding 1, 2x2
max-pooling, its selected rows B (zero windows included) as a scipy CSR matrix, the data
g = Bx consistent. Preconditioned CG on the normal equations (CGLS) from 0 to
||g - Bx_k|| <= 1e-10 ||g||, with M one of

* ``jacobi``: diag(B^T B)^-1 (what the package uses);
* ``block b``: the inverse of the b x b pixel tiles' diagonal blocks of B^T B (all channels
  of a tile together, 3 b^2 unknowns);
* ``block b + shifted``: the sum of two such block inverses, the second on the tiling
  shifted by b/2 pixels in both directions (additive Schwarz with overlap b/2).

The blocks are cut from the assembled B^T B (an oracle route, not a fast one: the setup is
not timed). Timed: one application of each block preconditioner as a batched product with
the precomputed inverses (torch ``bmm``, float64 and float32, the tile gather and scatter
included), against the unit of ``benchmarks/pooling.py`` (one ``crelu_maxpool`` forward
pass) and one CGLS iteration of the package (its two products, ``SelectedRows``, in
float64 and in mixed precision), all in this run.

``--modes-size n`` (default 40) first diagonalises the Jacobi-scaled B^T B of the n x n
crop densely and prints, for its five smallest eigenvalues, how many pixels the eigenvector
spreads over (participation ratio 1 / sum_p e_p^2 of its per-pixel energy e) and how many
values the 2x2 windows around its peak keep (16 = one per filter).

Usage: python benchmarks/pooled_block_jacobi.py [--size 224] [--filters 16] [--blocks 2,4,8]
       [--modes-size 40] [--json PATH]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
import torch

from _timing import timeit, write_rows
from theory import ConvLayer
from theory.pooling import crelu_maxpool
from theory.selection import selection
from verify.data import load_photo
from verify.deep import random_bank

TOL = 1e-10


def pcg_iterations(b: sp.csr_matrix, g: np.ndarray, apply_m, maxiter: int = 2000
                   ) -> tuple[int, np.ndarray]:
    """CG on B^T B x = B^T g preconditioned by `apply_m`, from 0, to ||g - Bx|| <= TOL ||g||."""
    d = b.shape[1]
    x = np.zeros(d)
    r = g.copy()
    s = b.T @ r
    z = apply_m(s)
    p = z.copy()
    gamma = s @ z
    gn = np.linalg.norm(g)
    for k in range(1, maxiter + 1):
        q = b @ p
        alpha = gamma / (q @ q)
        x += alpha * p
        r -= alpha * q
        if np.linalg.norm(r) <= TOL * gn:
            return k, x
        s = b.T @ r
        z = apply_m(s)
        gamma_new = s @ z
        p = z + (gamma_new / gamma) * p
        gamma = gamma_new
    return maxiter, x


class Tiles:
    """Block-diagonal preconditioner on b x b pixel tiles (offset `off`), all channels."""

    def __init__(self, normal: sp.coo_matrix, shape, b: int, off: int = 0):
        c, h, w = shape
        ci, ii, jj = np.unravel_index(np.arange(c * h * w), shape)
        ii, jj = ii + off, jj + off
        nh, nw = (h + off + b - 1) // b, (w + off + b - 1) // b
        self.tile = (ii // b) * nw + jj // b
        self.slot = (ci * b + ii % b) * b + jj % b
        self.m, self.n = c * b * b, nh * nw
        keep = self.tile[normal.row] == self.tile[normal.col]
        blocks = np.zeros((self.n, self.m, self.m))
        blocks[self.tile[normal.row[keep]], self.slot[normal.row[keep]],
               self.slot[normal.col[keep]]] = normal.data[keep]
        # slots outside the image (edge tiles of the shifted tiling) get a unit diagonal
        empty = np.einsum("nii->ni", blocks) == 0
        blocks[empty.nonzero()[0], empty.nonzero()[1], empty.nonzero()[1]] = 1.0
        self.inv = {torch.float64: torch.linalg.inv(torch.from_numpy(blocks))}
        self.inv[torch.float32] = self.inv[torch.float64].to(torch.float32)
        self._t, self._s = torch.from_numpy(self.tile), torch.from_numpy(self.slot)

    def apply(self, v: np.ndarray, dtype=torch.float64) -> np.ndarray:
        buf = torch.zeros(self.n, self.m, dtype=dtype)
        buf[self._t, self._s] = torch.from_numpy(v).to(dtype)
        out = torch.bmm(self.inv[dtype], buf[:, :, None])[:, :, 0]
        return out[self._t, self._s].to(torch.float64).numpy()


def slow_modes(size: int, filters: int, count: int = 5) -> list[dict]:
    """The smallest eigenpairs of the Jacobi-scaled normal matrix of a size x size crop."""
    x = np.asarray(load_photo("astronaut", size=size), dtype=np.float64)
    layer = ConvLayer(random_bank(np.random.default_rng(0), filters, 3, 3), padding=1)
    f, s = crelu_maxpool(x, layer, 2)
    sel = selection(f, s, layer, x.shape, 2)
    a = sel.sparse().toarray()
    normal = a.T @ a
    d = np.sqrt(np.diag(normal))
    lam, vec = np.linalg.eigh(normal / d[:, None] / d[None, :])
    per_window = np.zeros((size // 2, size // 2))
    oi, oj = np.divmod(sel.position, sel.conv_shape[2])
    np.add.at(per_window, (oi // 2, oj // 2), 1)
    out = []
    for i in range(count):
        e = (vec[:, i].reshape(x.shape) ** 2).sum(0)
        pi, pj = np.unravel_index(e.argmax(), e.shape)
        around = per_window[max(pi // 2 - 1, 0):pi // 2 + 2, max(pj // 2 - 1, 0):pj // 2 + 2]
        out.append(dict(eigenvalue=float(lam[i]), condition=float(lam[-1] / lam[0]),
                        participation_pixels=float(1.0 / (e ** 2).sum()),
                        values_per_window_around_peak=sorted(set(around.ravel().tolist()))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--filters", type=int, default=16)
    ap.add_argument("--blocks", default="2,4,8")
    ap.add_argument("--modes-size", type=int, default=40)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    modes = slow_modes(args.modes_size, args.filters) if args.modes_size else []
    for i, m in enumerate(modes):
        print(f"{args.modes_size}x{args.modes_size} crop, mode {i}: eigenvalue "
              f"{m['eigenvalue']:.4f} (cond {m['condition']:.1f}), spread over "
              f"{m['participation_pixels']:.1f} pixels, values per window around its peak "
              f"{m['values_per_window_around_peak']}")
    x = np.asarray(load_photo("astronaut", size=args.size), dtype=np.float64)
    layer = ConvLayer(random_bank(np.random.default_rng(0), args.filters, 3, 3), padding=1)
    f, s = crelu_maxpool(x, layer, 2)
    sel = selection(f, s, layer, x.shape, 2)
    b = sp.csr_matrix(sel.sparse())
    g = sel.rhs
    normal = (b.T @ b).tocoo()
    diag = (b.T @ b).diagonal()
    unit = timeit(lambda: crelu_maxpool(x, layer, 2), repeat=9)
    ops = sel.rows_operator.linear_operator
    xv, yv = x.ravel().copy(), g.copy()
    it64 = timeit(lambda: (ops.matvec(xv), ops.rmatvec(yv)), repeat=9)
    it32 = timeit(lambda: (ops.matvec32(xv), ops.rmatvec32(yv)), repeat=9)
    print(f"3x{args.size}x{args.size} astronaut crop, {args.filters} filters: "
          f"{sel.n_selected} rows, {sel.dim} unknowns; unit {unit * 1e3:.1f} ms, CGLS "
          f"products per iteration {it64 / unit:.2f} units (float64), {it32 / unit:.2f} (mixed)")
    cases = [("jacobi", lambda v: v / diag, None)]
    for bs in (int(v) for v in args.blocks.split(",")):
        one = Tiles(normal, x.shape, bs)
        two = Tiles(normal, x.shape, bs, bs // 2)
        cases.append((f"block {bs}", one.apply, [one]))
        cases.append((f"block {bs} + shifted", lambda v, a=one, c=two: a.apply(v) + c.apply(v),
                      [one, two]))
    rows = []
    for name, apply_m, tiles in cases:
        t0 = time.perf_counter()
        its, sol = pcg_iterations(b, g, apply_m)
        sec = time.perf_counter() - t0
        err = float(np.linalg.norm(sol - x.ravel()) / np.linalg.norm(x))
        if tiles is None:
            cost64 = cost32 = 0.0
        else:
            v = np.random.default_rng(1).standard_normal(sel.dim)
            cost64 = sum(timeit(lambda t=t: t.apply(v), repeat=9) for t in tiles) / unit
            cost32 = sum(timeit(lambda t=t: t.apply(v, torch.float32), repeat=9)
                         for t in tiles) / unit
        row = dict(part=f"pooled block preconditioners K={args.filters}", method=name,
                   iterations=its, relative_error=err, apply_units_float64=cost64,
                   apply_units_float32=cost32, cgls_products_units_float64=it64 / unit,
                   cgls_products_units_mixed=it32 / unit, unit_ms=unit * 1e3,
                   pcg_seconds_scipy=sec, forward_units=float("nan"), size=args.size,
                   filters=args.filters)
        rows.append(row)
        print(f"{name:22s} iterations {its:4d}  error {err:.2e}  one application "
              f"{cost64:.2f} units (float64), {cost32:.2f} (float32)", flush=True)
    rows += [dict(part=f"slow modes K={args.filters}", method=f"mode {i}",
                  forward_units=float("nan"), relative_error=float("nan"),
                  size=args.modes_size, **m) for i, m in enumerate(modes)]
    if args.json:
        write_rows(args.json, rows)
        print(f"rows written to {args.json}")


if __name__ == "__main__":
    main()
