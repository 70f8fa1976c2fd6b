"""Benchmark: exact reconstruction through CReLU + 2x2 max-pooling, in forward-pass units.

One stage (3xNxN central crop of the astronaut photo, zero padding 1, random orthonormal
3x3 filters from ``verify.deep.random_bank`` with seed 0, float64): the forward pass
``crelu_maxpool`` (conv + CReLU + 2x2 max-pool with switches) is the unit. Every inverse is
timed from the features and switches (the selection included), without frame bounds, and
the unit is timed right before and after each method (``unit_spread`` in the rows is their
relative difference: the noise of a shared machine). Methods, in one run:

* ``lsmr+jacobi`` (before): scipy LSMR on the matrix-free operator W_x^T with Jacobi
  column scaling, atol = btol = 1e-10 (the solver of ``invert_crelu_maxpool`` before CGLS);
* ``cgls+jacobi``: CGLS on the im2col operator, float64 products, same tolerances;
* ``cgls+jacobi/mixed``: the same with float32 products and float64 residual replacement
  (``precision="auto"``, the default, is mixed);
* with ``--parts ...,extra``: LSMR and CGLS without preconditioning, and the ReLU column
  (not a frame: LSMR's projection, capped at ``--relu-maxiter``).

``--parts primitives`` times one application of the conv by torch's float64
``unfold``/``fold`` and ``conv2d`` against ``theory.im2col.Im2colConv``'s slices and the
bare GEMM they contain, and the float32 forward by the slices against ``conv2d`` (which
``Im2colConv`` uses in float32). ``--parts adjoint32`` times the float32 adjoint of
zero-padded 3x3 layers with 3 to 48 input channels, slices against torch's transposed conv
(the rule of ``theory.im2col.ADJOINT_CONV_CHANNELS``).

Usage: python benchmarks/pooling.py [--filters 16,64] [--size 224] [--threads N]
       [--parts crelu,extra,primitives,adjoint32] [--repeat R] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from _timing import timeit, write_rows
from theory import ConvLayer
from theory.im2col import Im2colConv
from theory.pooling import crelu_maxpool, invert_crelu_maxpool
from verify.data import load_photo
from verify.deep import random_bank, solver_environment

TOL = 1e-10


def _methods(extra: bool, relu_maxiter: int):
    """(name, activation, keyword arguments of invert_crelu_maxpool)."""
    base = dict(certify=False, atol=TOL, btol=TOL, on_non_injective="ignore")
    out = [("lsmr+jacobi", "crelu", dict(base, solver="lsmr", precondition="jacobi")),
           ("cgls+jacobi", "crelu", dict(base, solver="cgls", precondition="jacobi",
                                         precision="float64")),
           ("cgls+jacobi/mixed", "crelu", dict(base, solver="cgls", precondition="jacobi",
                                               precision="mixed"))]
    if extra:
        out += [("lsmr", "crelu", dict(base, solver="lsmr", precondition="none")),
                ("cgls", "crelu", dict(base, solver="cgls", precondition="none")),
                ("relu: lsmr projection", "relu",
                 dict(base, solver="lsmr", precondition="none", maxiter=relu_maxiter,
                      on_not_converged="ignore"))]
    return out


def _crelu_rows(x: np.ndarray, filters: int, extra: bool, repeat: int, relu_maxiter: int
                ) -> list[dict]:
    layer = ConvLayer(random_bank(np.random.default_rng(0), filters, 3, 3), padding=1)
    unit = lambda: crelu_maxpool(x, layer, 2)  # noqa: E731
    rows = []
    for name, act, kw in _methods(extra, relu_maxiter):
        f, s = crelu_maxpool(x, layer, 2, act)
        for rep in range(repeat):
            before = timeit(unit, repeat=7)
            t0 = time.perf_counter()
            res = invert_crelu_maxpool(f, s, layer, x.shape, 2, activation=act, **kw)
            sec = time.perf_counter() - t0
            after = timeit(unit, repeat=7)
            fwd = 0.5 * (before + after)
            rows.append(dict(
                part=f"crelu-pooled K={filters}" if act == "crelu" else f"relu-pooled K={filters}",
                method=name, forward_units=sec / fwd,
                relative_error=float(np.linalg.norm(res.x - x) / np.linalg.norm(x)),
                relative_residual=res.relative_residual, iterations=res.iterations,
                converged=res.converged, solver=res.solver, seconds=sec, unit_ms=fwd * 1e3,
                unit_spread=abs(after - before) / fwd, repeat=rep, filters=filters,
                size=x.shape[-1], n_selected=res.n_selected, unknowns=x.size,
                threads=torch.get_num_threads(), load_average=os.getloadavg()[0]))
    return rows


def _primitive_rows(x: np.ndarray, filters: int) -> list[dict]:
    """One conv application (forward and adjoint) three ways, in units of the GEMM."""
    layer = ConvLayer(random_bank(np.random.default_rng(0), filters, 3, 3), padding=1)
    conv = Im2colConv(layer, x.shape, (torch.float64, torch.float32))
    t = torch.from_numpy(np.ascontiguousarray(x))
    w4 = layer._weight.to(torch.float64)
    w = w4.reshape(filters, -1)
    cols = F.unfold(t[None], 3, padding=1)[0]
    z = w @ cols
    gemm = timeit(lambda: w @ cols, repeat=9)
    times = {
        "unfold + GEMM (forward)": timeit(lambda: w @ F.unfold(t[None], 3, padding=1)[0], 9),
        "GEMM + fold (adjoint)": timeit(lambda: F.fold((w.t() @ z)[None], x.shape[1:], 3,
                                                       padding=1), 9),
        "im2col slices + GEMM (forward)": timeit(lambda: conv.forward_slices(t), 9),
        "GEMM + slices (adjoint)": timeit(lambda: conv.adjoint(z), 9),
        "torch conv2d (forward)": timeit(lambda: F.conv2d(t[None], w4, padding=1), 9),
        "im2col slices + GEMM (forward, float32)":
            timeit(lambda: conv.forward_slices(t, torch.float32), 9),
        "torch conv2d (forward, float32)":
            timeit(lambda: F.conv2d(t[None].float(), w4.float(), padding=1), 9),
        "GEMM + slices (adjoint, float32)": timeit(lambda: conv.adjoint(z, torch.float32), 9),
        "torch transposed conv (adjoint, float32)": timeit(
            lambda: conv._layer32._apply_adjoint(z.reshape(1, filters, *x.shape[1:]).float(),
                                                 x.shape), 9),
    }
    return [dict(part=f"primitives K={filters}", method=k, forward_units=float("nan"),
                 relative_error=float("nan"), gemm_units=v / gemm, seconds=v,
                 threads=torch.get_num_threads()) for k, v in times.items()]


def _adjoint32_rows() -> list[dict]:
    """The float32 adjoint of a zero-padded 3x3 conv, slices + GEMM against torch's
    transposed conv, by input channels (the rule of theory.im2col.ADJOINT_CONV_CHANNELS)."""
    rows = []
    for k, c, n in [(16, 3, 224), (32, 8, 128), (64, 16, 128), (32, 32, 128), (128, 32, 128),
                    (224, 32, 64), (224, 32, 256), (96, 48, 64)]:
        w = np.random.default_rng(0).standard_normal((k, c, 3, 3))
        shape = (c, n, n)
        conv = Im2colConv(ConvLayer(w, padding=1), shape, (torch.float64, torch.float32))
        z = torch.rand(k * n * n, dtype=torch.float64)
        slices = timeit(lambda: _adjoint_slices(conv, z), 5)
        transposed = timeit(lambda: conv._layer32._apply_adjoint(
            z.reshape(1, k, n, n).float(), shape), 5)
        rows.append(dict(part="adjoint float32", method=f"K={k} C={c} {n}x{n}",
                         forward_units=float("nan"), relative_error=float("nan"),
                         slices_ms=slices * 1e3, transposed_ms=transposed * 1e3,
                         ratio=transposed / slices))
        print(f"adjoint32 K={k:3d} C={c:2d} {n}x{n}: slices {slices * 1e3:6.1f} ms, "
              f"transposed conv {transposed * 1e3:6.1f} ms, ratio {transposed / slices:.2f}",
              flush=True)
    return rows


def _adjoint_slices(conv: Im2colConv, z: torch.Tensor) -> torch.Tensor:
    """The float32 adjoint by the slices, whatever the channel rule would pick."""
    from theory import im2col

    keep = im2col.ADJOINT_CONV_CHANNELS
    im2col.ADJOINT_CONV_CHANNELS = 10 ** 9
    try:
        return conv.adjoint(z, torch.float32)
    finally:
        im2col.ADJOINT_CONV_CHANNELS = keep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--filters", default="16,64", help="comma-separated filter counts")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--parts", default="crelu", help="crelu, extra, primitives, adjoint32")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--relu-maxiter", type=int, default=2000)
    ap.add_argument("--json", default=None, help="write the rows here (atomically)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    known = {"crelu", "extra", "primitives", "adjoint32"}
    if not parts <= known:
        ap.error(f"unknown part(s) {sorted(parts - known)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    x = load_photo("astronaut", size=args.size)
    rows = []
    with solver_environment():
        for k in (int(v) for v in args.filters.split(",")):
            if "primitives" in parts:
                rows += _primitive_rows(x, k)
            if parts & {"crelu", "extra"}:
                rows += _crelu_rows(x, k, "extra" in parts, args.repeat, args.relu_maxiter)
        if "adjoint32" in parts:
            rows += _adjoint32_rows()
    print(f"3x{args.size}x{args.size} astronaut crop, random orthonormal 3x3 filters (seed 0), "
          f"padding 1, 2x2 max-pool, float64, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}; 1 unit = crelu_maxpool, timed around each "
          "method")
    print(f"{'part':<22}{'method':<24}{'units':>8}{'iters':>7}{'rel. error':>11}"
          f"{'rel. resid.':>12}{'unit ms':>9}{'spread':>8}")
    for r in rows:
        if r["part"] == "adjoint float32":
            continue                       # printed as measured
        if r["part"].startswith("primitives"):
            print(f"{r['part']:<22}{r['method']:<34}{r['gemm_units']:>8.2f} GEMMs "
                  f"({r['seconds'] * 1e3:.1f} ms)")
            continue
        print(f"{r['part']:<22}{r['method']:<24}{r['forward_units']:>8.1f}{r['iterations']:>7}"
              f"{r['relative_error']:>11.2e}{r['relative_residual']:>12.2e}"
              f"{r['unit_ms']:>9.1f}{r['unit_spread']:>8.2f}"
              + ("" if r["converged"] else "  (not converged)"))
    if args.json:
        write_rows(args.json, rows)
        print(f"rows written to {args.json}")


if __name__ == "__main__":
    main()
