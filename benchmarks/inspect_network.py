"""Benchmark: `crelu inspect` on a CIFAR-size and an ImageNet-size network, in one run.

(a) a 5-conv network at 3x32x32 (conv 3->32, 32->64 stride 2, 64->64, 64->128 stride 2,
    128->128; 3x3, zero padding 1, ReLU between), the whole network with the command's
    defaults (2 photos, reconstruction through 2 convs, 200 baseline steps).
    Target (issue 14): <= 60 s on the 2-core machine.
(b) the first conv of an ImageNet-size network (64 filters 3x7x7, stride 2, zero padding 3)
    at 3x224x224, --layers conv1, with the command's defaults. Target: <= 2 minutes.

Each phase's time is printed per layer, and a unit of work measured in the same run (one
torch conv2d of (b)'s layer plus a 512x512 float64 SVD, one thread, median of 7) so that runs
on a loaded machine can be compared: report seconds and seconds / unit.

(Not benchmarks/inspect.py: run as a script from benchmarks/, that name would shadow the
standard library's inspect module.)

Usage: python benchmarks/inspect_network.py [--only cifar|imagenet] [--images N] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from _timing import timeit
from verify.inspect import inspect_model


def cifar_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(128, 128, 3, padding=1), nn.ReLU())


class Stem(nn.Module):
    """A ResNet-style stem: conv1 7x7 stride 2, ReLU, 3x3 max-pool stride 2, one more conv."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.pool(torch.relu(self.conv1(x))))


def unit() -> float:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    x = torch.randn(1, 3, 224, 224, dtype=torch.float64)
    w = torch.randn(64, 3, 7, 7, dtype=torch.float64)
    a = np.random.default_rng(0).standard_normal((512, 512))
    try:
        with threadpool_limits(1, user_api="blas"):
            return timeit(lambda: (torch.nn.functional.conv2d(x, w, stride=2, padding=3),
                                   np.linalg.svd(a, compute_uv=False)), repeat=7)
    finally:
        torch.set_num_threads(before)


def run(name, model, shape, layers, images, threads, u0):
    t0 = time.perf_counter()
    insp = inspect_model(model, shape, layers=layers, images=images, threads=threads,
                         progress=True, return_inspection=True)
    total = time.perf_counter() - t0
    print(f"\n({name}) {shape}: {total:.1f} s total = {total / u0:.0f} units")
    for L, art in zip(insp.report["layers"], insp.layers):
        fb = L["frame_bounds"]
        phases = ", ".join(f"{k} {v:.1f}" for k, v in art["seconds"].items())
        lower = "undecided" if fb["lower"] is None else f"{fb['lower']:.4g}"
        print(f"  {L['name']:<8} {fb['method']:<9} a={lower} b={fb['upper']:.4g} "
              f"relu_span={L['relu_injective_fraction']} psnr={L['reconstruction_psnr_db']}")
        print(f"           seconds: {phases}")
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=["cifar", "imagenet"])
    ap.add_argument("--images", type=int, default=2, help="bundled photos (default 2)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    images = ("astronaut", "coffee", "chelsea", "rocket")[: args.images] or None
    u0 = unit()
    print(f"unit (conv2d 3x224x224 by 64x3x7x7 stride 2 + 512x512 SVD, 1 thread): {u0:.4f} s")
    if args.only in (None, "cifar"):
        t = run("a", cifar_net(), (3, 32, 32), None, images, args.threads, u0)
        print(f"  target 60 s: {'met' if t <= 60 else 'NOT met'}")
    if args.only in (None, "imagenet"):
        t = run("b", Stem(), (3, 224, 224), "conv1", images, args.threads, u0)
        print(f"  target 120 s: {'met' if t <= 120 else 'NOT met'}")
    print(f"unit again: {unit():.4f} s (the load may have changed during the run)")


if __name__ == "__main__":
    main()
