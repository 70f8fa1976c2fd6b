"""Tightness of the certified bounds against the dense oracle (docs/theory/frame-bounds.md).

Run from the repository root: OMP_NUM_THREADS=1 python benchmarks/certified_tightness.py
"""
import sys
import numpy as np
sys.path.insert(0, "tests")
from test_frames_certified import gram_truth, _bank, _trained, SHAPES
from theory import ConvLayer, frame_bounds
from theory import certified as cm
from theory.polyphase import coarse_form

rows = []
for seed, name in enumerate(sorted(SHAPES)):
    k, ks, s, p = SHAPES[name]
    w = _bank(np.random.default_rng(seed), k, 3, ks)
    for size in (32, 35):
        rows.append((f"{name} random", ConvLayer(w, stride=s, padding=p), (3, size, size)))
wt = _trained()
for label, (s, p) in [("trained native s1 p3", (1, 3)), ("trained @AlexNet s4 p2", (4, 2)),
                      ("trained @ResNet s2 p3", (2, 3)), ("trained @VGG s1 p1", (1, 1))]:
    for size in (28, 32):
        rows.append((label, ConvLayer(wt, stride=s, padding=p), (wt.shape[1], size, size)))
print("| layer | input | a (oracle) | auto: lower/a | auto: upper/b | auto method | certified | tiles@224: lower/a | tiles@224: upper/b |")
print("|---|---|---|---|---|---|---|---|---|")
for label, layer, shape in rows:
    lo, hi, slack = gram_truth(layer, shape)
    fb = frame_bounds(layer, shape)
    assert fb.lower <= lo + slack and hi <= fb.upper + slack
    big = cm._tile_params(None, coarse_form(layer.at((shape[0], 224, 224))), cm.TILE_LIMIT)
    t = "–", "–"
    if big is not None:
        ft = frame_bounds(layer, shape, "tiles", tiles=big[:2], tile_limit=10 ** 6)
        assert ft.lower <= lo + slack and hi <= ft.upper + slack
        t = (f"{ft.lower / lo:.3f}" if lo > 0 else "a = 0"), f"{ft.upper / hi:.3f}"
    print(f"| {label} | {'x'.join(map(str, shape))} | {lo:.4g} | "
          f"{(fb.lower / lo if lo > 0 else float('nan')):.3f} | {fb.upper / hi:.3f} | "
          f"{fb.method} ({fb.note.split(';')[0]}) | {fb.certified} | {t[0]} | {t[1]} |", flush=True)
