"""theory.spanning: the ReLU rank test against brute force, with its tolerance and controls."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from theory import ConvLayer
from theory.spanning import STORAGE_ROUNDOFF, active_span, receptive_patches


def brute_force(w, patches, bias):
    """Active rows by the definition, rank by numpy.linalg.matrix_rank (independent code)."""
    w = w.reshape(len(w), -1)
    out = []
    for p in patches:
        rows = [w[k] for k in range(len(w)) if w[k] @ p + bias[k] > 0]
        out.append(bool(rows) and np.linalg.matrix_rank(np.array(rows)) == w.shape[1])
    return np.array(out)


@pytest.mark.parametrize("k,d", [(6, 3), (12, 5), (20, 8), (9, 9)])
def test_matches_brute_force(k, d):
    rng = np.random.default_rng(k * 100 + d)
    w = rng.standard_normal((k, d))
    b = 0.3 * rng.standard_normal(k)
    p = rng.standard_normal((200, d))
    span = active_span(w, p, b, storage="float64")
    expected = brute_force(w, p, b)
    assert np.array_equal(span.spans, expected)
    assert 0 < span.fraction < 1 or k == d  # the cases are chosen to be non-trivial
    assert np.array_equal(span.n_active, ((p @ w.T + b) > 0).sum(axis=1))


def test_bias_decides_the_active_set():
    """Negative control: the same patches with the bias ignored give another answer."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((10, 4))
    b = rng.standard_normal(10)
    p = rng.standard_normal((300, 4))
    with_bias = active_span(w, p, b).spans
    assert np.array_equal(with_bias, brute_force(w, p, b))
    assert not np.array_equal(active_span(w, p).spans, with_bias)


def test_fewer_filters_than_dimensions_never_span():
    rng = np.random.default_rng(2)
    span = active_span(rng.standard_normal((5, 2, 3, 1)), rng.standard_normal((50, 6)))
    assert span.fraction == 0.0 and (span.sigma_min == 0).all()


def test_tolerance_follows_the_storage_precision():
    """A rank-deficient bank moved by float32 rounding-size noise: rank d in float64 terms,
    not distinguishable from rank d-1 at float32 storage precision."""
    rng = np.random.default_rng(3)
    d = 6
    base = rng.standard_normal((40, d - 1)) @ rng.standard_normal((d - 1, d))   # rank d-1
    w = base * (1 + 2.0 ** -26 * rng.standard_normal(base.shape))              # below u32
    p = rng.standard_normal((100, d))
    f64 = active_span(w, p, storage="float64")
    f32 = active_span(w, p, storage="float32")
    assert f64.fraction > 0.5          # full rank at float64 resolution
    assert f32.fraction == 0.0         # no: the perturbation is below float32 rounding
    assert (f32.threshold[f32.n_active >= d] >=
            STORAGE_ROUNDOFF["float32"] * f32.sigma_min[f32.n_active >= d]).all()


def test_receptive_patches_are_the_layer_windows():
    """The patches times the filters are the layer's own outputs (stride, dilation, circular)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 9, 10))
    for kw in ({"padding": 2, "padding_mode": "circular", "dilation": 2},
               {"stride": 2, "padding": 0}, {"stride": (1, 2), "padding": 0, "dilation": (2, 1)}):
        layer = ConvLayer(rng.standard_normal((4, 3, 3, 3)), **kw)
        patches = receptive_patches(x, layer)
        y = layer.forward(x)                               # (2, 4, H', W')
        got = patches @ layer.weight.numpy().reshape(4, -1).T
        want = y.transpose(0, 2, 3, 1).reshape(-1, 4)
        assert np.allclose(got, want, atol=1e-12)


def test_interior_drops_windows_touching_zero_padding():
    layer = ConvLayer(np.ones((1, 1, 3, 3)), padding=1)
    x = np.ones((1, 5, 5))
    assert receptive_patches(x, layer, interior=False).shape == (25, 9)
    inner = receptive_patches(x, layer)
    assert inner.shape == (9, 9) and (inner == 1).all()
    # the torch reference: windows of the zero-padded image with no zero in them
    cols = F.unfold(F.pad(torch.ones(1, 1, 5, 5), (1, 1, 1, 1)), 3)[0].T
    assert int((cols.sum(dim=1) == 9).sum()) == 9


def test_bad_input_is_refused():
    w = np.ones((3, 4))
    with pytest.raises(ValueError, match="patches must be"):
        active_span(w, np.ones((2, 5)))
    with pytest.raises(ValueError, match="bias must have 3"):
        active_span(w, np.ones((2, 4)), bias=np.ones(2))
    with pytest.raises(ValueError, match="storage dtype"):
        active_span(w, np.ones((2, 4)), storage="int8")
    with pytest.raises(ValueError, match="NaN"):
        active_span(w, np.full((2, 4), np.nan))
