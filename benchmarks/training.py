"""Benchmark: training throughput of the verify.models family on this CPU, as ratios.

One training step (forward, cross-entropy, backward, AdamW) on random 1x28x28 inputs, for
each variant and each setting; reported as CPU time and wall time per image, the median over
interleaved rounds (every round runs every setting once, so a burst of load from other
processes hits all settings alike) with the min-max spread, and as the ratio of each setting
to the old default (NCHW, batch 64, 2 threads) measured in the same run.

Settings (``--settings``, default all but ``compile``):

* ``old``: NCHW, batch 64, 2 threads (the previous training default);
* ``b64-1t``, ``b128-1t``, ``b256-1t``: channels-last, 1 thread, batch 64 / 128 / 256;
* ``nchw-b128-1t``: NCHW, batch 128, 1 thread (the effect of channels-last alone);
* ``b128-2t``: channels-last, batch 128, 2 threads;
* ``compile``: ``b128-1t`` through ``torch.compile`` (its compile time is printed apart).

Then ``--pair`` measures what a table of independent runs gets from the two cores: the wall
time of ``--pair-steps`` steps of batch 128 of two single-threaded processes running at the
same time, against one process with 2 threads running the same steps twice in a row.

Usage: python benchmarks/training.py [--variants relu,crelu] [--rounds 8] [--pair]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch

from verify.models import MODEL_NAMES, AllConvNet

SETTINGS = {  # name: (channels_last, batch, threads, compile)
    "old": (False, 64, 2, False),
    "b64-1t": (True, 64, 1, False),
    "b128-1t": (True, 128, 1, False),
    "b256-1t": (True, 256, 1, False),
    "nchw-b128-1t": (False, 128, 1, False),
    "b128-2t": (True, 128, 2, False),
    "compile": (True, 128, 1, True),
}


def make_step(variant: str, channels_last: bool, batch: int, compile_: bool):
    """A closure running one training step; warmed up (and compiled) before it returns."""
    torch.manual_seed(0)
    model = AllConvNet(variant, width=16, kernel1=7)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, 28, 28).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))
    fwd = torch.compile(model) if compile_ else model

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(fwd(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    for _ in range(3):
        step()
    if compile_:
        print(f"  [compile] {variant}: first 3 steps (compilation) {time.perf_counter() - t0:.1f} s")
    return step


def measure(variants: list[str], settings: list[str], rounds: int) -> None:
    rows: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    steps = {}
    for v in variants:
        for s in settings:
            cl, batch, threads, comp = SETTINGS[s]
            torch.set_num_threads(threads)
            steps[v, s] = make_step(v, cl, batch, comp)
            rows[v, s] = ([], [])
    for _ in range(rounds):
        for (v, s), step in steps.items():
            _, batch, threads, _ = SETTINGS[s]
            torch.set_num_threads(threads)
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(2):
                step()
            rows[v, s][0].append((time.process_time() - c0) / (2 * batch) * 1e6)
            rows[v, s][1].append((time.perf_counter() - w0) / (2 * batch) * 1e6)
    print(f"{'variant':<12}{'setting':<14}{'cpu us/img':>12}{'[min, max]':>16}"
          f"{'wall us/img':>13}{'[min, max]':>16}{'wall vs old':>13}")
    for v in variants:
        base = statistics.median(rows[v, "old"][1]) if (v, "old") in rows else None
        for s in settings:
            cpu, wall = rows[v, s]
            ratio = f"{base / statistics.median(wall):.2f}x" if base else "-"
            print(f"{v:<12}{s:<14}{statistics.median(cpu):>12.0f}"
                  f"{f'[{min(cpu):.0f}, {max(cpu):.0f}]':>16}{statistics.median(wall):>13.0f}"
                  f"{f'[{min(wall):.0f}, {max(wall):.0f}]':>16}{ratio:>13}")


_CHILD = """
import sys, time, torch
sys.path.insert(0, {root!r})
from training import make_step
torch.set_num_threads({threads})
step = make_step({variant!r}, True, 128, False)
t0 = time.perf_counter()
for _ in range({steps}):
    step()
print(time.perf_counter() - t0)
"""


def pair(variant: str, steps: int) -> None:
    root = os.path.dirname(os.path.abspath(__file__))

    def launch(threads: int, n: int) -> subprocess.Popen:
        code = _CHILD.format(root=root, threads=threads, variant=variant, steps=n)
        return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)

    t0 = time.perf_counter()
    procs = [launch(1, steps), launch(1, steps)]
    inner = [float(p.communicate()[0]) for p in procs]
    two_procs = time.perf_counter() - t0
    t0 = time.perf_counter()
    one = launch(2, 2 * steps)
    inner2 = float(one.communicate()[0])
    one_proc = time.perf_counter() - t0
    print(f"{variant}: 2 x {steps} steps of batch 128 - two 1-thread processes at once: "
          f"{two_procs:.1f} s wall (steps {inner[0]:.1f} s, {inner[1]:.1f} s); one 2-thread "
          f"process, one after the other: {one_proc:.1f} s wall (steps {inner2:.1f} s); "
          f"ratio {one_proc / two_procs:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="relu,crelu")
    ap.add_argument("--settings", default=",".join(s for s in SETTINGS if s != "compile"))
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--pair", action="store_true")
    ap.add_argument("--pair-steps", type=int, default=60)
    args = ap.parse_args()
    variants = args.variants.split(",")
    for v in variants:
        if v not in MODEL_NAMES:
            ap.error(f"unknown variant {v!r}; choose from {MODEL_NAMES}")
    settings = args.settings.split(",")
    for s in settings:
        if s not in SETTINGS:
            ap.error(f"unknown setting {s!r}; choose from {list(SETTINGS)}")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    measure(variants, settings, args.rounds)
    if args.pair:
        for v in variants:
            pair(v, args.pair_steps)
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
