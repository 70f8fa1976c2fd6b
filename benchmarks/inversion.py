"""Benchmark: inverting conv + CReLU, in units of one forward conv + CReLU, measured in one run.

(a) circular padding, stride 1, 3x224x224 input, 64 filters 7x7, float64:
    fft inverse (first call incl. the per-layer plan; further images; a batch), LSMR to
    relative error <= 1e-8, and gradient descent (Adam on ||conv(x) - z||^2, Mahendran &
    Vedaldi without prior) given the same wall time as LSMR.
(b) AlexNet conv1's shape: zero padding, stride 4, 96 filters 3x11x11 on 3x227x227: LSMR
    iterations, time in forward units, relative error, frame bounds (Lanczos estimates).
(c) accuracy of the fft inverse against cond (two near-parallel filters), against
    the dense least-squares oracle and the bound c cond eps (2x16x16 input).

Usage: python benchmarks/inversion.py [--quick] [--threads N] [--skip-b] [--json PATH]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _timing import timeit, write_rows
from theory import ConvLayer, crelu, crelu_features, frame_bounds, invert_crelu


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def forward_unit(layer, x):
    """Median time of one plain torch conv2d (+ circular pad) + CReLU: the unit of time.

    Plain torch, without the package's input checks, so that the unit is not inflated.
    """
    xt = torch.from_numpy(x)[None]
    w = layer.weight

    def fwd():
        xin = xt
        if layer.padding_mode == "circular":
            ph, pw = layer.padding
            xin = torch.nn.functional.pad(xt, (pw, pw, ph, ph), mode="circular")
            return crelu(torch.nn.functional.conv2d(xin, w, stride=layer.stride), axis=1)
        return crelu(torch.nn.functional.conv2d(xin, w, stride=layer.stride,
                                                padding=layer.padding), axis=1)
    fwd()  # warm-up
    return timeit(fwd, repeat=7)


def adam_inversion(layer, z, shape, seconds, lr=0.05):
    """Gradient descent on ||A x - z||^2 with Adam for a fixed wall time; returns (x, steps)."""
    zt = torch.from_numpy(z)
    x = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([x], lr=lr)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        opt.zero_grad()
        loss = ((layer.forward(x) - zt) ** 2).sum()
        loss.backward()
        opt.step()
        steps += 1
    return x.detach().numpy(), steps


def part_a(size: int, rows: list):
    rng = np.random.default_rng(0)
    layer = ConvLayer(rng.standard_normal((64, 3, 7, 7)) / np.sqrt(147), padding=3,
                      padding_mode="circular")
    shape = (3, size, size)
    x = rng.random(shape)
    unit = forward_unit(layer, x)
    h = crelu_features(x, layer)

    # first call on a new layer object (plan built, then cached on that object): median of 3
    first = timeit(lambda: invert_crelu(h, ConvLayer(layer.weight, padding=3,
                                                     padding_mode="circular"), shape, "fft"),
                   repeat=3)
    res = invert_crelu(h, layer, shape, "fft")  # builds and caches the plan of `layer`
    again = timeit(lambda: invert_crelu(h, layer, shape, "fft"))
    batch = 8
    xb = rng.random((batch, *shape))
    hb = crelu_features(xb, layer)
    tb = timeit(lambda: invert_crelu(hb, layer, shape, "fft"), repeat=3) / batch
    resb = invert_crelu(hb, layer, shape, "fft")
    fb = res.frame_bounds
    rows += [
        ("a", "forward conv+CReLU (the unit)", unit, 1.0, "", ""),
        ("a", "fft, first call incl. plan (new layer)", first, first / unit, rel(res.x, x), ""),
        ("a", "fft, each further image", again, again / unit, rel(res.x, x), ""),
        ("a", f"fft, batch of {batch}, per image", tb, tb / unit, rel(resb.x, xb), ""),
    ]

    t0 = time.perf_counter()
    rl = invert_crelu(h, layer, shape, "lsmr", atol=1e-9, btol=1e-9, maxiter=500, bounds=fb)
    tl = time.perf_counter() - t0
    rows.append(("a", "lsmr (atol=btol=1e-9)", tl, tl / unit, rel(rl.x, x), f"{rl.iterations} it"))
    xg, steps = adam_inversion(layer, res.z, shape, tl)
    rows.append(("a", "Adam on ||Ax - z||^2, same time as lsmr", tl, tl / unit, rel(xg, x),
                 f"{steps} steps"))
    return fb


def part_b(rows: list, eig_maxiter: int):
    rng = np.random.default_rng(1)
    layer = ConvLayer(rng.standard_normal((96, 3, 11, 11)) / np.sqrt(363), stride=4)
    shape = (3, 227, 227)
    x = rng.random(shape)
    unit = forward_unit(layer, x)
    h = crelu_features(x, layer)
    t0 = time.perf_counter()
    fb = frame_bounds(layer, shape, "iterative", tol=1e-8, maxiter=eig_maxiter)
    tf = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = invert_crelu(h, layer, shape, "lsmr", atol=1e-10, btol=1e-10, maxiter=3000, bounds=fb)
    tl = time.perf_counter() - t0
    rows.append(("b", "forward conv+CReLU (the unit)", unit, 1.0, "", ""))
    rows.append(("b", "lsmr (atol=btol=1e-10)", tl, tl / unit, rel(res.x, x),
                 f"{res.iterations} it, {res.stopping['reason']}"))
    rows.append(("b", "frame bounds (Lanczos on A^T A)", tf, tf / unit, "", ""))
    return fb


def part_c(rows: list, size: int = 16):
    """FFT accuracy against cond: two near-parallel filters on two channels, circular,
    relative error against the dense least-squares oracle and c cond eps."""
    from theory import recovery_tolerance

    eps = float(np.finfo(np.float64).eps)
    for delta in (1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12):
        rng = np.random.default_rng(0)
        w = rng.standard_normal((1, 2, 3, 3))
        layer = ConvLayer(np.concatenate([w, w + delta * rng.standard_normal(w.shape)]),
                          padding=1, padding_mode="circular")
        shape = (2, size, size)
        x = np.random.default_rng(1).standard_normal(shape)
        fb = frame_bounds(layer, shape, "dense")
        h = crelu_features(x, layer)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the near-singular cases warn by design
            ef = rel(invert_crelu(h, layer, shape, "fft", bounds=fb).x, x)
            ed = rel(invert_crelu(h, layer, shape, "dense", bounds=fb).x, x)
        tol = recovery_tolerance(layer, fb)
        rows.append(("c", f"fft at cond {fb.cond:.1e} (dense lstsq {ed:.1e}; "
                          f"error/(cond eps) {ef / (fb.cond * eps):.2f})", float("nan"),
                     float("nan"), ef, f"<= c cond eps: {ef <= tol}"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="64x64 instead of 224x224 in (a); skip (b)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--eig-maxiter", type=int, default=3000)
    ap.add_argument("--skip-b", action="store_true", help="skip part (b)")
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON (part, "
                    "method, forward_units, relative_error, certified)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows: list = []
    fba = part_a(64 if args.quick else 224, rows)
    fbb = None if (args.quick or args.skip_b) else part_b(rows, args.eig_maxiter)
    part_c(rows)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64\n")
    print(f"| part | method | seconds | x forward | relative error | notes |")
    print(f"|---|---|---|---|---|---|")
    for part, name, sec, units, err, note in rows:
        err_s = f"{err:.2e}" if err != "" else ""
        print(f"| {part} | {name} | {sec:.4f} | {units:.2f} | {err_s} | {note} |")
    if args.json:
        write_rows(args.json, [{"part": p, "method": n, "seconds": sec, "forward_units": u,
                                "relative_error": (e if e != "" else None), "notes": note,
                                "certified": None}
                               for p, n, sec, u, e, note in rows])
    print(f"\n(a) frame bounds (exact, FFT): lower {fba.lower:.4e}, upper {fba.upper:.4e}, "
          f"cond {fba.cond:.3f}, injective {fba.injective}")
    if fbb is not None:
        print(f"(b) frame bounds (Lanczos estimate, exact=False): lower {fbb.lower:.4e}, upper "
              f"{fbb.upper:.4e}, cond ~ {fbb.cond:.2f}, Ritz residual {fbb.residual:.1e}, "
              f"injective {fbb.injective}")


if __name__ == "__main__":
    main()
