"""Benchmark: exact reconstruction through CReLU + 2x2 max-pooling, in forward-pass units.

One stage (3x224x224 natural image crop, zero padding 1, 3x3 filters, float64): the forward
pass ``crelu_maxpool`` (conv + CReLU + 2x2 max-pool with switches) is the unit. Measured in
one run: the exact inverse (LSMR on the matrix-free operator W_x^T, atol = btol = 1e-10),
its iterations and the time of one operator application pair, the relative error, without
and with Jacobi (column-norm) preconditioning; and the same for ReLU + max-pooling (not a
frame: the projection). Run inside ``verify.deep.solver_environment`` as the CLI and the
claims do. Printed as a table.

Usage: python benchmarks/pooling.py [--filters K] [--size N] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _timing import timeit
from theory import ConvLayer
from theory.pooling import crelu_maxpool, invert_crelu_maxpool, selection
from verify.data import load_photo
from verify.deep import random_bank, solver_environment


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--filters", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x = load_photo("astronaut", size=args.size)
    layer = ConvLayer(random_bank(np.random.default_rng(0), args.filters, 3, 3), padding=1)
    fwd = timeit(lambda: crelu_maxpool(x, layer, 2), repeat=7)
    rows = []
    with solver_environment():
        for act, pre in (("crelu", "none"), ("crelu", "jacobi"), ("relu", "none")):
            f, s = crelu_maxpool(x, layer, 2, act)
            sel = selection(f, s, layer, x.shape, 2, act)
            op = sel.operator()
            v = np.random.default_rng(1).standard_normal(op.shape[1])
            pair = timeit(lambda: op.rmatvec(op.matvec(v)), repeat=3)
            t0 = time.perf_counter()
            res = invert_crelu_maxpool(f, s, layer, x.shape, 2, activation=act, solver="lsmr",
                                       certify=False, atol=1e-10, btol=1e-10,
                                       precondition=pre, on_non_injective="ignore")
            sec = time.perf_counter() - t0
            err = float(np.linalg.norm(res.x - x) / np.linalg.norm(x))
            rows.append((f"{act}/{pre}", sel.n_selected, x.size, res.solver, res.iterations, pair / fwd,
                         sec, sec / fwd, err))
    print(f"3x{args.size}x{args.size} astronaut crop, {args.filters} random orthonormal 3x3 "
          f"filters, padding 1, 2x2 max-pool, float64, torch threads {torch.get_num_threads()}")
    print(f"forward pass (conv + activation + max-pool with switches): {fwd * 1e3:.1f} ms "
          "= 1 unit")
    print(f"{'act./prec.':<14}{'n sel.':>9}{'D':>9}  {'solver':<14}{'iters':>7}"
          f"{'W^T+W [u]':>11}{'exact [s]':>11}{'exact [u]':>11}{'rel. error':>12}")
    for act, n, d, solver, it, pair_u, sec, units, err in rows:
        print(f"{act:<14}{n:>9}{d:>9}  {solver:<14}{it:>7}{pair_u:>11.2f}{sec:>11.2f}"
              f"{units:>11.0f}{err:>12.2e}")


if __name__ == "__main__":
    main()
