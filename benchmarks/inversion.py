"""Benchmark: inverting conv + CReLU, in units of one forward conv + CReLU, measured in one run.

(a) circular padding, stride 1, 3x224x224 input, 64 filters 7x7, float64:
    fft inverse (first call incl. the per-layer plan; further images; a batch), LSMR to
    relative error <= 1e-8, and gradient descent (Adam on ||conv(x) - z||^2, Mahendran &
    Vedaldi without prior) given the same wall time as LSMR.
(b) AlexNet conv1's shape: zero padding, stride 4, 96 filters 3x11x11 on 3x227x227: LSMR
    iterations, time in forward units, relative error, frame bounds (Lanczos estimates).
(c) accuracy of the fft inverse against cond (two near-parallel filters), against
    the dense least-squares oracle and the bound c cond eps (2x16x16 input).
(d) certified frame bounds (issue 13) at 3x224x224 for the AlexNet conv1 (96x3x11x11, s4, p2),
    ResNet conv1 (64x3x7x7, s2, p3) and VGG conv1 (64x3x3x3, s1, p1) shapes with random banks
    (Gaussian / sqrt(fan-in), seeds 0, 1, 2), zero and circular padding, and the shipped
    trained first layer (verify/weights, 16x1x7x7) on 1x224x224 at its own geometry (s1, p3)
    and at the three shapes' strides/paddings: method `tiles` (zeros) or `polyphase`
    (circular), time in forward units, the certified interval.
(f) fast general inversion (issue 13, item 4): LSMR with each right preconditioner (none,
    Jacobi, circulant symbol; `theory.preconditioner`), and CGLS on the im2col operator with
    Jacobi scaling, float64 and mixed products, on the zero-padded shapes of (d) at
    3x224x224 and the trained bank (native s1 p3 and at ResNet's s2 p3) on 1x224x224, to
    atol = btol = 1e-13: iterations, time in forward units (setup included), relative error.
(e) the comparison table of docs/theory/frame-bounds.md at --compare-size (default 64): the
    certified bounds, Gram iteration's upper bound (Delattre et al., ICML 2023; on the
    polyphase canvas symbol and on the stride-1 layer) and the Lanczos estimate.

Usage: python benchmarks/inversion.py [--quick] [--threads N] [--skip-b] [--json PATH]
       [--parts a,b,c,d,e,f] [--compare-size N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _timing import timeit, write_rows
from theory import ConvLayer, crelu, crelu_features, frame_bounds, invert_crelu

#: name -> (K, kernel, stride, padding) of the first layers of issue 13
SHAPES = {"AlexNet conv1": (96, 11, 4, 2), "ResNet conv1": (64, 7, 2, 3),
          "VGG conv1": (64, 3, 1, 1)}
TRAINED = "verify/weights/crelu-fashion-mnist.safetensors"


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


def trained_bank() -> np.ndarray:
    """The first 4-D tensor of the shipped trained model (16 x 1 x 7 x 7)."""
    from pathlib import Path

    from safetensors.numpy import load_file

    path = Path(__file__).resolve().parents[1] / TRAINED
    tensors = load_file(str(path))
    return next(v for _, v in sorted(tensors.items()) if v.ndim == 4).astype(np.float64)


def certified_layers(size: int):
    """(label, layer, input shape) of part (d): random banks and the trained bank."""
    out = []
    for seed, (name, (k, ks, s, p)) in enumerate(SHAPES.items()):
        w = np.random.default_rng(seed).standard_normal((k, 3, ks, ks)) / np.sqrt(3 * ks * ks)
        for mode in ("zeros", "circular"):
            out.append((f"{name} random, {mode}", ConvLayer(w, stride=s, padding=p,
                                                           padding_mode=mode), (3, size, size)))
    wt = trained_bank()
    for label, (s, p) in [("trained native s1 p3", (1, 3)), ("trained @AlexNet s4 p2", (4, 2)),
                          ("trained @ResNet s2 p3", (2, 3)), ("trained @VGG s1 p1", (1, 1))]:
        for mode in ("zeros", "circular"):
            out.append((f"{label}, {mode}", ConvLayer(wt, stride=s, padding=p, padding_mode=mode),
                        (1, size, size)))
    return out


def part_d(rows: list, size: int = 224, repeat: int = 3):
    """Each certificate `repeat` times, each time against the forward unit measured right
    before and after it (the machine's load drifts); the row gives the median units and the
    spread (min-max) in the notes."""
    cases = [(label, layer, shape, {}) for label, layer, shape in certified_layers(size)]
    alex = next(c for c in cases if c[0] == "AlexNet conv1 random, zeros")
    # the tiles that do certify AlexNet conv1 (larger than the default tile_limit allows)
    cases.insert(1, (alex[0] + ", tiles P8 R4", alex[1], alex[2],
                     {"tiles": ((8, 8), (4, 4)), "tile_limit": 10 ** 5}))
    for label, layer, shape, opts in cases:
        x = np.random.default_rng(0).random(shape)
        method = "tiles" if layer.padding_mode == "zeros" else "polyphase"
        units, secs = [], []
        for _ in range(repeat):
            unit0 = forward_unit(layer, x)
            t0 = time.perf_counter()
            fb = frame_bounds(layer, shape, method, **opts)
            t = time.perf_counter() - t0
            unit = 0.5 * (unit0 + forward_unit(layer, x))
            units.append(t / unit)
            secs.append(t)
        proved = fb.certified and fb.lower > 0
        g_poly, g_one = gram_iteration_upper(layer, shape)
        rows.append(("d", f"{label} {shape}: {method} [{fb.lower:.4g}, {fb.upper:.4g}]",
                     float(np.median(secs)), float(np.median(units)), "",
                     f"units {min(units):.1f}-{max(units):.1f} over {repeat}; {fb.note}; "
                     f"exact={fb.exact}; Gram iteration upper {g_poly:.4g} (polyphase) / "
                     f"{g_one:.4g} (stride 1)", bool(proved)))


def gram_iteration_upper(layer, shape, iters: int = 6) -> tuple[float, float]:
    """Gram iteration (Delattre et al. 2023) upper bounds on b: on the polyphase canvas
    symbol, and on the stride-1 layer's canvas (the usual treatment of a strided layer, a row
    superset). Rounding is not bounded (a baseline)."""
    import math

    from theory.polyphase import coarse_form
    from theory.symbol import symbol

    def on(lay):
        cf = coarse_form(lay.at(shape))
        n = (cf.h.torus, cf.w.torus) if lay.padding_mode == "circular" else (
            cf.h.min_canvas(), cf.w.min_canvas())
        sym = symbol(cf, *n, half=False)
        w = sym.complex.reshape(-1, *sym.complex.shape[2:])
        log_scale = 0.0
        for _ in range(iters):
            w = np.conj(np.swapaxes(w, 1, 2)) @ w
            f = math.sqrt(float((np.abs(w) ** 2).sum()))
            w = w / f
            log_scale = 2 * log_scale + math.log(f)
        fro = math.sqrt(float((np.abs(w) ** 2).sum()))
        return math.exp((math.log(fro) + log_scale) * 2.0 / 2 ** iters)

    one = ConvLayer(layer.weight, stride=1, padding=layer.padding, padding_mode=layer.padding_mode)
    return on(layer), on(one)


def part_e(rows: list, size: int, table: list):
    for label, layer, shape in certified_layers(size):
        if layer.padding_mode != "zeros":
            continue
        x = np.random.default_rng(0).random(shape)
        unit = forward_unit(layer, x)
        if label.startswith("AlexNet"):    # the default tiles prove nothing: force P8 R4
            t0 = time.perf_counter()
            fb8 = frame_bounds(layer, shape, "tiles", tiles=((8, 8), (4, 4)), tile_limit=10 ** 5)
            t8 = time.perf_counter() - t0
            rows.append(("e", f"{label}, tiles P8 R4 {shape}: [{fb8.lower:.4g}, {fb8.upper:.4g}]",
                         t8, t8 / unit, "", fb8.note, bool(fb8.certified and fb8.lower > 0)))
        t0 = time.perf_counter()
        fb = frame_bounds(layer, shape, "tiles")
        tc = time.perf_counter() - t0
        t0 = time.perf_counter()
        g_poly, g_one = gram_iteration_upper(layer, shape)
        tg = time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            est = frame_bounds(layer, shape, "iterative", tol=1e-6, maxiter=50000)
        except RuntimeError as exc:     # ARPACK found no smallest eigenvalue
            est = None
            print(f"{label}: Lanczos did not converge ({exc})")
        tl = time.perf_counter() - t0
        table.append((label, shape, fb, tc / unit, g_poly, g_one, tg / unit, est, tl / unit))
        rows.append(("e", f"{label} {shape}: tiles [{fb.lower:.4g}, {fb.upper:.4g}]", tc,
                     tc / unit, "", fb.note, bool(fb.certified and fb.lower > 0)))
        rows.append(("e", f"{label} {shape}: Gram iteration upper {g_poly:.4g} (polyphase), "
                          f"{g_one:.4g} (stride 1)", tg, tg / unit, "", "upper only", False))
        rows.append(("e", f"{label} {shape}: Lanczos estimate " + (
            f"[{est.lower:.4g}, {est.upper:.4g}]" if est else "did not converge"),
            tl, tl / unit, "", f"residual {est.residual:.1e}" if est else "", False))


def part_f(rows: list, size: int = 224, repeat: int = 1):
    """Preconditioned LSMR and Jacobi-scaled CGLS (float64 and mixed products) inverses; each
    against the forward unit measured right before and after it. Frame bounds are not computed (certify=False; they are part (d)'s subject), so
    the preconditioner is named explicitly."""
    cases = [(label, layer, shape) for label, layer, shape in certified_layers(size)
             if label.endswith("zeros") and ("random" in label or "native" in label
                                             or "ResNet" in label)]
    for label, layer, shape in cases:
        x = np.random.default_rng(5).random(shape)
        h = crelu_features(x, layer)
        runs = [("lsmr", pre, {}) for pre in ("none", "jacobi", "circulant")]
        runs += [("cgls", "jacobi", {"precision": p}) for p in ("float64", "mixed")]
        for solver, pre, extra in runs:
            units, times = [], []
            for _ in range(repeat):
                u0 = forward_unit(layer, x)
                t0 = time.perf_counter()
                res = invert_crelu(h, layer, shape, solver, certify=False, precondition=pre,
                                   atol=1e-13, btol=1e-13, maxiter=5000, **extra)
                t = time.perf_counter() - t0
                u1 = forward_unit(layer, x)
                times.append(t)
                units.append(t / (0.5 * (u0 + u1)))
            med = float(np.median(units))
            spread = f" ({min(units):.0f}-{max(units):.0f})" if repeat > 1 else ""
            name = f"{solver}, {pre}" + (f", {extra['precision']}" if extra else "")
            rows.append(("f", f"{label[:-7]}: {name}", float(np.median(times)), med,
                         rel(res.x, x), f"{res.iterations} it{spread}, "
                         f"{res.stopping['reason']}"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="64x64 instead of 224x224 in (a); skip (b)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--eig-maxiter", type=int, default=3000)
    ap.add_argument("--skip-b", action="store_true", help="skip part (b)")
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON (part, "
                    "method, forward_units, relative_error, certified)")
    ap.add_argument("--parts", default="a,b,c,d,f", help="parts to run (default a,b,c,d,f; e "
                    "is the docs comparison table, slow: Lanczos)")
    ap.add_argument("--compare-size", type=int, default=64, help="input size of part (e)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions in parts (d) and (f)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = set(args.parts.split(","))
    rows: list = []
    fba = part_a(64 if args.quick else 224, rows) if "a" in parts else None
    fbb = None if (args.quick or args.skip_b or "b" not in parts) else part_b(rows,
                                                                               args.eig_maxiter)
    if "c" in parts:
        part_c(rows)
    if "d" in parts:
        part_d(rows, 64 if args.quick else 224, args.repeat)
    if "f" in parts:
        part_f(rows, 64 if args.quick else 224, args.repeat)
    table: list = []
    if "e" in parts:
        part_e(rows, args.compare_size, table)
    rows = [r if len(r) == 7 else (*r, None) for r in rows]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64\n")
    print(f"| part | method | seconds | x forward | relative error | notes |")
    print(f"|---|---|---|---|---|---|")
    for part, name, sec, units, err, note, cert in rows:
        err_s = f"{err:.2e}" if err != "" else ""
        cert_s = "" if cert is None else f" certified lower > 0: {cert}"
        print(f"| {part} | {name} | {sec:.4f} | {units:.2f} | {err_s} | {note}{cert_s} |")
    if args.json:
        write_rows(args.json, [{"part": p, "method": n, "seconds": sec, "forward_units": u,
                                "relative_error": (e if e != "" else None), "notes": note,
                                "certified": c}
                               for p, n, sec, u, e, note, c in rows])
    if table:
        print("\n| layer | input | certified lower | certified upper | units | Gram iteration "
              "upper (polyphase / stride-1) | Lanczos estimate (lower / upper) | units |")
        print("|---|---|---|---|---|---|---|---|")
        for label, shape, fb, uc, gp, g1, ug, est, ul in table:
            lz = f"{est.lower:.4g} / {est.upper:.4g}" if est else "no convergence"
            print(f"| {label} | {'x'.join(map(str, shape))} | {fb.lower:.4g} | {fb.upper:.4g} | "
                  f"{uc:.0f} | {gp:.4g} / {g1:.4g} | {lz} | {ul:.0f} |")
    if fba is not None:
        print(f"\n(a) frame bounds (FFT): lower {fba.lower:.4e}, upper {fba.upper:.4e}, "
              f"cond {fba.cond:.3f}, injective {fba.injective}, certified {fba.certified}")
    if fbb is not None:
        print(f"(b) frame bounds (Lanczos estimate, exact=False): lower {fbb.lower:.4e}, upper "
              f"{fbb.upper:.4e}, cond ~ {fbb.cond:.2f}, Ritz residual {fbb.residual:.1e}, "
              f"injective {fbb.injective}")


if __name__ == "__main__":
    main()
