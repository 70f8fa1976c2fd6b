"""Benchmark of theory.rademacher, timed against a baseline in the same run.

1. ``linear_class`` with L = 10,000 samples, feature dimension 4,096 and 1,000 sign draws,
   as a ratio to ONE float64 matrix product of the same shapes, (1000 x 10000) @ (10000 x 4096)
   (target: <= 2x). Best of ``--repeats`` runs for both.
2. ``two_layer_class`` (CReLU) in two stated settings: 2-d inputs with the exact arc-sweep
   supremum (L = 10,000, 1,000 draws), and 48-d inputs with the searched supremum
   (L = 1,000, 100 draws, 8 starts, 12 iterations).

Run: ``python benchmarks/rademacher.py`` (prints a table; use ``--small`` for a quick look).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from theory import rademacher as rad


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="L = 2,000, dim 1,024 (smoke run)")
    args = parser.parse_args()
    L, dim, draws = (2000, 1024, 200) if args.small else (10_000, 4096, 1000)
    rng = np.random.default_rng(0)
    features = rng.standard_normal((L, dim))
    signs = rad.sign_draws(L, draws, 1)

    t_base = best_of(lambda: signs @ features, args.repeats)
    t_lin = best_of(lambda: rad.linear_class(features, 1.0, draws, 1), args.repeats)

    X2 = rng.standard_normal((L, 2))
    t_arc = best_of(lambda: rad.two_layer_class(X2, 1, 1.0, "crelu", draws, 2), 1)
    L_s, dim_s, draws_s = (1000, 48, 100) if not args.small else (300, 48, 30)
    X48 = rng.standard_normal((L_s, dim_s))
    t_search = best_of(lambda: rad.two_layer_class(X48, 1, 1.0, "crelu", draws_s, 3), 1)

    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"# theory.rademacher benchmark  ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={threads}, numpy {np.__version__})")
    rows = [
        ("baseline: float64 matmul", f"({draws} x {L}) @ ({L} x {dim})", t_base, 1.0),
        ("linear_class", f"L={L}, dim={dim}, {draws} draws", t_lin, t_lin / t_base),
        ("two_layer_class crelu, exact sup", f"2-d, L={L}, {draws} draws", t_arc, None),
        ("two_layer_class crelu, searched sup",
         f"{dim_s}-d, L={L_s}, {draws_s} draws, 8 starts x 12 it", t_search, None),
    ]
    print(f"| {'routine':<36} | {'setting':<40} | {'time (s)':>9} | {'ratio':>6} |")
    print(f"|{'-' * 38}|{'-' * 42}|{'-' * 11}|{'-' * 8}|")
    for name, setting, t, ratio in rows:
        r = f"{ratio:6.2f}" if ratio is not None else "     -"
        print(f"| {name:<36} | {setting:<40} | {t:9.3f} | {r} |")
    verdict = "met" if t_lin / t_base <= 2.0 else "NOT met"
    print(f"\nlinear_class / matmul = {t_lin / t_base:.2f} (target <= 2): {verdict}")


if __name__ == "__main__":
    main()
