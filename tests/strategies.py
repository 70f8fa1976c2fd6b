"""Hypothesis strategies for conv layers, by regime.

Injective layers are built *by construction* with a certified lower frame bound, never by
filtering: a "polyphase delta" bank D (one filter per channel c and stride phase (a, b),
a single unit tap) has D^T D = diag(coverage), with every pixel covered by the choice of
padding; a perturbation P is scaled so that the Schur bound sqrt(||P||_1 ||P||_inf) is at most
rho * sqrt(min coverage), rho <= 1/2; extra random filters only add to A^T A. Hence
sigma_min(A) >= (1 - rho) sqrt(min coverage) >= sqrt(min coverage) / 2.

Rank-deficient layers come in two kinds with a known projector: a bank that ignores one input
channel (null space = that channel) and a wide bank with fewer filters than input channels.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
from hypothesis import strategies as st

from theory import ConvLayer


@dataclasses.dataclass
class LayerCase:
    layer: ConvLayer
    input_shape: tuple[int, int, int]
    certified_lower: float = 0.0          # a proven lower bound on sigma_min(A)^2
    certified_upper: float = math.inf     # a proven upper bound on sigma_max(A)^2
    projector: Callable[[np.ndarray], np.ndarray] | None = None  # onto the row space

    def __repr__(self) -> str:
        return f"LayerCase({self.layer!r}, input_shape={self.input_shape})"


def schur_bound(layer: ConvLayer, input_shape) -> float:
    """Upper bound on ||A||_2 by sqrt(||A||_1 ||A||_inf) from the weights and the geometry."""
    w = np.abs(layer.weight.double().numpy())
    _, h, wd = input_shape
    _, ho, wo = layer.output_shape(input_shape)
    (sh, sw) = layer.stride
    # a tap touches one pixel at most ceil(s*H'/H) times (circular wrap), once for zero padding
    mh = math.ceil(sh * ho / h) if layer.padding_mode == "circular" else 1
    mw = math.ceil(sw * wo / wd) if layer.padding_mode == "circular" else 1
    col = mh * mw * w.sum(axis=(0, 2, 3)).max()   # over outputs touching one input value
    row = w.sum(axis=(1, 2, 3)).max()             # over inputs of one output value
    return float(math.sqrt(col * row))


def _seeded(draw) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


@st.composite
def filter_banks(draw, circulant: bool = False, max_channels: int = 3, max_size: int = 8):
    """Injective conv layers (as LayerCase) with a certified lower frame bound."""
    rng = _seeded(draw)
    c = draw(st.integers(1, max_channels))
    if circulant:
        s, k = 1, draw(st.sampled_from([1, 3, 5]))
        p, mode = (k - 1) // 2, "circular"
    else:
        s = draw(st.integers(1, 3))
        k = draw(st.integers(s, s + 3))
        p_min = max(math.ceil((k - 1) / 2), s - 1)
        p = draw(st.integers(p_min, p_min + 1))
        mode = draw(st.sampled_from(["zeros", "circular"]))
    h = draw(st.integers(max(s, p, 1), max_size))
    w = draw(st.integers(max(s, p, 1), max_size))
    off_lo, off_hi = max(k - p - 1, 0), min(p, k - s)
    off_h, off_w = draw(st.integers(off_lo, off_hi)), draw(st.integers(off_lo, off_hi))
    delta = np.zeros((c * s * s, c, k, k))
    for f, (ch, a, b) in enumerate(np.ndindex(c, s, s)):
        delta[f, ch, a + off_h, b + off_w] = 1.0
    shape = (c, h, w)
    dlayer = ConvLayer(delta, stride=s, padding=p, padding_mode=mode)
    coverage = dlayer.adjoint(np.ones(dlayer.output_shape(shape)), shape)
    assert coverage.min() >= 1, "construction must cover every pixel"  # by construction
    pert = rng.standard_normal(delta.shape)
    rho = draw(st.floats(0.0, 0.5))
    beta = schur_bound(ConvLayer(pert, stride=s, padding=p, padding_mode=mode), shape)
    pert *= rho * math.sqrt(coverage.min()) / beta
    extra = rng.standard_normal((draw(st.integers(0, 3)), c, k, k))
    weight = np.concatenate([delta + pert, extra])[rng.permutation(len(delta) + len(extra))]
    layer = ConvLayer(weight, stride=s, padding=p, padding_mode=mode)
    lower = ((1 - rho) * math.sqrt(coverage.min())) ** 2
    return LayerCase(layer, shape, certified_lower=lower,
                     certified_upper=schur_bound(layer, shape) ** 2,
                     projector=lambda x: x)


def conv_layers(max_channels: int = 3, max_size: int = 8):
    """Any conv layer (random weights, any stride/padding/mode): for operator tests."""
    @st.composite
    def build(draw):
        rng = _seeded(draw)
        c, kf = draw(st.integers(1, max_channels)), draw(st.integers(1, 5))
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        mode = draw(st.sampled_from(["zeros", "circular"]))
        h = draw(st.integers(max(1, ph, kh - 2 * ph), max_size))
        w = draw(st.integers(max(1, pw, kw - 2 * pw), max_size))
        layer = ConvLayer(rng.standard_normal((kf, c, kh, kw)), stride=(sh, sw),
                          padding=(ph, pw), padding_mode=mode)
        return LayerCase(layer, (c, h, w))
    return build()


@st.composite
def rank_deficient_layers(draw, circulant: bool = False):
    """Non-injective layers with a known projector onto the row space of A."""
    kind = draw(st.sampled_from(["dead-channel", "wide"]))
    if kind == "dead-channel":
        base = draw(filter_banks(circulant=circulant, max_channels=2))
        w = base.layer.weight.numpy()
        dead = draw(st.integers(0, w.shape[1]))
        w = np.insert(w, dead, 0.0, axis=1)  # the layer ignores input channel `dead`
        layer = ConvLayer(w, stride=base.layer.stride, padding=base.layer.padding,
                          padding_mode=base.layer.padding_mode)
        c, h, wd = base.input_shape
        shape = (c + 1, h, wd)

        def project(x, dead=dead):
            x = np.array(x, copy=True)
            x[..., dead, :, :] = 0.0
            return x
        return LayerCase(layer, shape, projector=project)
    rng = _seeded(draw)
    c = draw(st.integers(2, 4))
    kf = draw(st.integers(1, c - 1))
    k = draw(st.sampled_from([1, 3])) if circulant else draw(st.integers(1, 3))
    layer = ConvLayer(rng.standard_normal((kf, c, k, k)), padding=(k - 1) // 2,
                      padding_mode="circular" if circulant else draw(st.sampled_from(["zeros", "circular"])))
    h = draw(st.integers(max(2, k), 6))
    shape = (c, h, h)
    a = layer.dense(shape)
    proj = np.linalg.pinv(a) @ a

    def project(x, proj=proj, shape=shape):
        x = np.asarray(x)
        return (x.reshape(-1, proj.shape[0]) @ proj.T).reshape(x.shape)
    return LayerCase(layer, shape, projector=project)


def images(shape, seed_strategy=st.integers(0, 2**32 - 1)):
    """Batches of Gaussian inputs of the given (C, H, W) shape."""
    return seed_strategy.map(lambda s: np.random.default_rng(s).standard_normal((2, *shape)))
