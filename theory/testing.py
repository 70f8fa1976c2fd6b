"""Public testing helpers: hypothesis strategies for conv layers by regime, and the dot test.

Users testing their own operators or filters can draw from the same strategies the
package's tests use (`pip install crelu-theory[test]` brings hypothesis):

```python
from hypothesis import given
from theory.testing import injective_layers, dot_test

@given(injective_layers())
def test_my_inverse(case):
    ...  # case.layer, case.input_shape, case.certified_lower, case.certified_upper
```

Regimes and what each strategy promises:

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
import torch
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from theory import ConvLayer, conv_crelu_maxpool
from theory.diagnostics import dot_test

__all__ = ["LayerCase", "PooledCase", "antipodal_banks", "conv_layers", "dot_test",
           "feature_sets", "filter_bank_arrays", "images", "injective_layers",
           "linear_unit_problems", "orthonormal_bank", "planar_samples", "pooled_cases",
           "rank_deficient_layers", "response_matrices", "sample_sets", "schur_bound"]


@dataclasses.dataclass
class LayerCase:
    """A conv layer, its input shape and what is proven about it (drawn by the strategies below).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.testing import LayerCase
    >>> case = LayerCase(ConvLayer(np.eye(2).reshape(2, 2, 1, 1)), (2, 4, 4), certified_lower=1.0,
    ...                  certified_upper=1.0)
    >>> fb = case.layer.at(case.input_shape).frame_bounds()
    >>> bool(case.certified_lower <= fb.lower + fb.margin + 1e-12
    ...      and fb.upper - fb.margin <= case.certified_upper + 1e-12)
    True
    >>> print(case.projector)                               # no projector: injective by design
    None
    """
    layer: ConvLayer
    input_shape: tuple[int, int, int]
    certified_lower: float = 0.0          # a proven lower bound on sigma_min(A)^2
    certified_upper: float = math.inf     # a proven upper bound on sigma_max(A)^2
    projector: Callable[[np.ndarray], np.ndarray] | None = None  # onto the row space

    def __repr__(self) -> str:
        return f"LayerCase({self.layer!r}, input_shape={self.input_shape})"


def schur_bound(layer: ConvLayer, input_shape) -> float:
    """Upper bound on ||A||_2 by sqrt(||A||_1 ||A||_inf) from the weights and the geometry.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.testing import schur_bound
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((4, 2, 3, 3)), stride=2,
    ...                   padding=1)
    >>> sigma_max = np.linalg.svd(layer.dense((2, 7, 7)), compute_uv=False)[0]
    >>> bool(sigma_max <= schur_bound(layer, (2, 7, 7)))    # a proven upper bound on ||A||_2
    True
    """
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
def injective_layers(draw, circulant: bool = False, max_channels: int = 3, max_size: int = 8):
    """Injective conv layers (as `LayerCase`) with a certified lower frame bound.

    `case.certified_lower <= sigma_min(A)^2` and `case.certified_upper >= sigma_max(A)^2`
    are proven by construction (module notes); `circulant=True` draws circular, stride-1
    layers (the FFT regime).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> fast = settings(max_examples=5, derandomize=True, database=None, deadline=None)
    >>> seen = []
    >>> from theory.testing import injective_layers
    >>> @fast
    ... @given(injective_layers())
    ... def check(case):
    ...     fb = case.layer.at(case.input_shape).frame_bounds("dense")
    ...     seen.append(case.certified_lower <= fb.lower * (1 + 1e-9) and fb.injective
    ...                 and fb.upper <= case.certified_upper * (1 + 1e-9))
    >>> check()
    >>> len(seen) > 0, all(seen)
    (True, True)
    """
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


def conv_layers(max_channels: int = 3, max_size: int = 8, dilation: bool = True):
    """Any conv layer (random weights, any stride/padding/mode/dilation): for operator tests.

    No promise about injectivity: use it for adjoint (dot) tests and dense comparisons.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> fast = settings(max_examples=5, derandomize=True, database=None, deadline=None)
    >>> seen = []
    >>> import numpy as np
    >>> from theory.testing import conv_layers, dot_test
    >>> @fast
    ... @given(conv_layers())
    ... def check(case):
    ...     err, tol = dot_test(case.layer.operator(case.input_shape), np.random.default_rng(0))
    ...     seen.append(err <= tol)                     # the adjoint of any geometry is exact
    >>> check()
    >>> len(seen) > 0, all(seen)
    (True, True)
    """
    @st.composite
    def build(draw):
        rng = _seeded(draw)
        c, kf = draw(st.integers(1, max_channels)), draw(st.integers(1, 5))
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        dh, dw = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
        mode = draw(st.sampled_from(["zeros", "circular"]))
        h = draw(st.integers(max(1, ph, dh * (kh - 1) + 1 - 2 * ph), max_size))
        w = draw(st.integers(max(1, pw, dw * (kw - 1) + 1 - 2 * pw), max_size))
        layer = ConvLayer(rng.standard_normal((kf, c, kh, kw)), stride=(sh, sw),
                          padding=(ph, pw), padding_mode=mode, dilation=(dh, dw))
        return LayerCase(layer, (c, h, w))
    return build()


@st.composite
def rank_deficient_layers(draw, circulant: bool = False):
    """Non-injective layers with a known projector onto the row space of A.

    Two kinds: a bank that ignores one input channel (the projector zeroes that channel)
    and a wide bank with fewer filters than input channels (projector from a dense
    pseudo-inverse). `case.projector(x)` is the orthogonal projection of `x` onto the
    row space, i.e. what a minimum-norm inverse must return.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> fast = settings(max_examples=5, derandomize=True, database=None, deadline=None)
    >>> seen = []
    >>> import numpy as np
    >>> from theory import crelu_features, invert_crelu
    >>> from theory.testing import rank_deficient_layers
    >>> @fast
    ... @given(rank_deficient_layers())
    ... def check(case):
    ...     x = np.random.default_rng(0).standard_normal(case.input_shape)
    ...     res = invert_crelu(crelu_features(x, case.layer), case.layer, case.input_shape,
    ...                        on_non_injective="ignore")
    ...     seen.append(res.injective is False and np.allclose(res.x, case.projector(x)))
    >>> check()
    >>> len(seen) > 0, all(seen)
    (True, True)
    """
    kind = draw(st.sampled_from(["dead-channel", "wide"]))
    if kind == "dead-channel":
        base = draw(injective_layers(circulant=circulant, max_channels=2))
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
    """Batches of two Gaussian inputs of the given (C, H, W) shape.

    Examples
    --------
    >>> from theory.testing import images
    >>> from hypothesis import given, settings
    >>> shapes = []
    >>> @settings(max_examples=3, derandomize=True, database=None)
    ... @given(images((3, 5, 5)))
    ... def check(x):
    ...     shapes.append(x.shape)
    >>> check()
    >>> shapes[0]
    (2, 3, 5, 5)
    """
    return seed_strategy.map(lambda s: np.random.default_rng(s).standard_normal((2, *shape)))


def orthonormal_bank(rng: np.random.Generator, k: int, c: int, ks: int) -> np.ndarray:
    """`k` random filters `c x ks x ks` with orthonormal rows (`k <= c ks^2`) or
    orthonormal columns (`k > c ks^2`), from the QR factor of a Gaussian matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from theory.testing import orthonormal_bank
    >>> w = orthonormal_bank(np.random.default_rng(0), k=4, c=2, ks=3)     # 4 <= 2 * 3 * 3
    >>> f = w.reshape(4, -1)
    >>> w.shape, bool(np.allclose(f @ f.T, np.eye(4)))                       # orthonormal rows
    ((4, 2, 3, 3), True)
    >>> g = orthonormal_bank(np.random.default_rng(0), k=36, c=2, ks=3).reshape(36, -1)
    >>> bool(np.allclose(g.T @ g, np.eye(18)))                               # orthonormal columns
    True
    """
    g = rng.standard_normal((k, c * ks * ks))
    q, _ = np.linalg.qr(g.T if k <= c * ks * ks else g)
    w = q.T if k <= c * ks * ks else q
    return w.reshape(k, c, ks, ks)


@dataclasses.dataclass
class PooledCase:
    """A conv layer, an input, a pooling size and an activation (`pooled_cases()`).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.testing import PooledCase
    >>> case = PooledCase(ConvLayer(np.ones((2, 1, 3, 3))), np.ones((1, 6, 6)), 2, "crelu")
    >>> layer, x, pool, activation = case                   # unpacks as a 4-tuple
    >>> pool, activation, case[1].shape
    (2, 'crelu', (1, 6, 6))
    """

    layer: ConvLayer
    x: np.ndarray
    pool: int
    activation: str

    def __iter__(self):  # unpacks as (layer, x, pool, activation)
        return iter((self.layer, self.x, self.pool, self.activation))

    def __getitem__(self, i):
        return (self.layer, self.x, self.pool, self.activation)[i]

    def features(self):
        """`conv_crelu_maxpool(x, layer, pool, activation)`: (features, switches).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer
        >>> from theory.testing import PooledCase
        >>> case = PooledCase(ConvLayer(np.ones((2, 1, 3, 3))), np.ones((1, 6, 6)), 2, "crelu")
        >>> g, s = case.features()
        >>> g.shape, s.shape, g[:2, 0, 0].tolist()              # 9 taps of 1 on ones: 9
        ((4, 2, 2), (4, 2, 2), [9.0, 9.0])
        """
        return conv_crelu_maxpool(self.x, self.layer, self.pool, self.activation)


@st.composite
def pooled_cases(draw, frame_rich: bool = False):
    """(layer, x, pool, activation) with any stride/padding/mode; `frame_rich`: many filters.

    `frame_rich=True` draws 4-6 times as many orthonormal filters as one filter has
    coefficients, the regime in which the selected filters usually form a frame; the
    default draws 1-6 filters (usually not a frame). Nothing is promised about the frame
    property itself: tests must compute it (`selection(...).frame_bounds("dense")`).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> fast = settings(max_examples=5, derandomize=True, database=None, deadline=None)
    >>> seen = []
    >>> from theory import selection
    >>> from theory.testing import pooled_cases
    >>> @fast
    ... @given(pooled_cases(frame_rich=True))
    ... def check(case):
    ...     g, s = case.features()
    ...     sel = selection(g, s, case.layer, case.x.shape, case.pool, case.activation)
    ...     seen.append(sel.dim == case.x.size and sel.n_selected > 0)
    >>> check()
    >>> len(seen) > 0, all(seen)
    (True, True)
    """
    rng = _seeded(draw)
    c = draw(st.integers(1, 2))
    ks = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2))
    pad = draw(st.integers(0, ks - 1))
    mode = draw(st.sampled_from(["zeros", "circular"]))
    pool = draw(st.integers(1, 2))
    k = draw(st.integers(4 * c * ks * ks, 6 * c * ks * ks)) if frame_rich else draw(
        st.integers(1, 6))
    h = draw(st.integers(max(ks, 2) + 2, 7))
    w = draw(st.integers(max(ks, 2) + 2, 7))
    layer = ConvLayer(orthonormal_bank(rng, k, c, ks), stride=stride, padding=pad,
                      padding_mode=mode)
    act = draw(st.sampled_from(["crelu", "relu"]))
    x = rng.standard_normal((c, h, w))
    return PooledCase(layer, x, pool, act)


def reference_matrix(layer: ConvLayer, input_shape) -> np.ndarray:
    """The `M x D` matrix of `layer` from the definition, independently of torch.

    Entry `[(o, i, j), (c, r, q)]` sums `w[o, c, a, b]` over the taps that read input
    pixel `(r, q)` for output `(i, j)`: `r = s_h i + d_h a - p_h` and
    `q = s_w j + d_w b - p_w`, dropped outside the image for zero padding and wrapped
    modulo `(H, W)` for circular padding. The oracle for operator tests (numpy
    arithmetic only; no conv routine is called).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.testing import reference_matrix
    >>> layer = ConvLayer(np.random.default_rng(0).standard_normal((3, 2, 3, 2)), stride=(2, 1),
    ...                   padding=(1, 2), padding_mode="circular", dilation=(1, 2))
    >>> a = reference_matrix(layer, (2, 5, 6))               # from the definition, no conv2d
    >>> a.shape, bool(np.allclose(a, layer.dense((2, 5, 6))))
    ((72, 60), True)
    """
    w = layer.weight.double().numpy()
    k, c, kh, kw = w.shape
    _, h, wd = (int(v) for v in input_shape)
    _, ho, wo = layer.output_shape(input_shape)
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    a = np.zeros((k, ho, wo, c, h, wd))
    for i in range(ho):
        for j in range(wo):
            for ta in range(kh):
                for tb in range(kw):
                    r, q = sh * i + dh * ta - ph, sw * j + dw * tb - pw
                    if layer.padding_mode == "circular":
                        r, q = r % h, q % wd
                    elif not (0 <= r < h and 0 <= q < wd):
                        continue
                    a[:, i, j, :, r, q] += w[:, :, ta, tb]
    return a.reshape(k * ho * wo, c * h * wd)


__all__ += ["reference_matrix"]


# ---------------------------------------------------------------------------- pairing
@st.composite
def filter_bank_arrays(draw, min_filters: int = 2, max_filters: int = 12, max_dim: int = 10):
    """Banks (K, d) with rows bounded away from zero by construction (a unit spike added).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> fast = settings(max_examples=5, derandomize=True, database=None, deadline=None)
    >>> seen = []
    >>> import numpy as np
    >>> from theory.testing import filter_bank_arrays
    >>> @fast
    ... @given(filter_bank_arrays())
    ... def check(bank):
    ...     seen.append(bank.ndim == 2 and bool(np.all(np.abs(bank).max(axis=1) >= 1.0)))
    >>> check()
    >>> len(seen) > 0, all(seen)
    (True, True)
    """
    k = draw(st.integers(min_filters, max_filters))
    d = draw(st.integers(1, max_dim))
    base = draw(arrays(np.float64, (k, d), elements=st.floats(-1, 1)))
    spike = np.zeros((k, d))
    spike[np.arange(k), np.arange(k) % d] = 2.0  # |row| >= 2 - sqrt(d-1)*... ensure nonzero:
    bank = base + spike                           # the spiked entry lies in [1, 3]
    return bank


@st.composite
def antipodal_banks(draw, max_half: int = 6, max_dim: int = 8):
    """Banks [V; -c V] (positive c per row): every filter's negative is in the bank.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> fast = settings(max_examples=5, derandomize=True, database=None, deadline=None)
    >>> seen = []
    >>> import numpy as np
    >>> from theory import pairing
    >>> from theory.testing import antipodal_banks
    >>> @fast
    ... @given(antipodal_banks())
    ... def check(bank):
    ...     seen.append(bool(np.allclose(pairing(bank).mu, -1.0)))   # every filter paired
    >>> check()
    >>> len(seen) > 0, all(seen)
    (True, True)
    """
    half = draw(filter_bank_arrays(min_filters=1, max_filters=max_half, max_dim=max_dim))
    scale = draw(arrays(np.float64, (len(half), 1), elements=st.floats(0.25, 4.0)))
    return np.concatenate([half, -scale * half])


# ---------------------------------------------------------------------------- Rademacher
@st.composite
def feature_sets(draw, max_L: int = 10, max_p: int = 5) -> np.ndarray:
    """Features (L, p): N(0, 1) rows times per-row scales in [0.1, 10] (nonzero by construction).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> fast = settings(max_examples=5, derandomize=True, database=None, deadline=None)
    >>> seen = []
    >>> from theory.rademacher import linear_bounds, linear_class
    >>> from theory.testing import feature_sets
    >>> @fast
    ... @given(feature_sets())
    ... def check(phi):
    ...     lower, upper = linear_bounds(phi)
    ...     exact = linear_class(phi, exact=True).value
    ...     seen.append(lower * (1 - 1e-12) <= exact <= upper * (1 + 1e-12))
    >>> check()
    >>> len(seen) > 0, all(seen)
    (True, True)
    """
    L = draw(st.integers(1, max_L))
    p = draw(st.integers(1, max_p))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((L, p))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    exponents = np.asarray(draw(st.lists(st.floats(-1, 1), min_size=L, max_size=L)))
    return rows * (10.0 ** exponents)[:, None]


@st.composite
def planar_samples(draw, max_L: int = 9) -> np.ndarray:
    """2-d inputs (L, 2): unit directions at drawn angles with radii in [0.2, 5].

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> fast = settings(max_examples=5, derandomize=True, database=None, deadline=None)
    >>> seen = []
    >>> from theory.rademacher import two_layer_class
    >>> from theory.testing import planar_samples
    >>> @fast
    ... @given(planar_samples(max_L=6))
    ... def check(X):
    ...     seen.append(two_layer_class(X, exact=True).sup == "exact")   # rank <= 2: exact sup
    >>> check()
    >>> len(seen) > 0, all(seen)
    (True, True)
    """
    L = draw(st.integers(1, max_L))
    angles = draw(st.lists(st.floats(0, 2 * math.pi), min_size=L, max_size=L))
    radii = draw(st.lists(st.floats(0.2, 5.0), min_size=L, max_size=L))
    a, r = np.asarray(angles), np.asarray(radii)
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


@st.composite
def sample_sets(draw, max_L: int = 24, max_dim: int = 6) -> np.ndarray:
    """Gaussian inputs (L, dim) of any rank, for the searched supremum.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> fast = settings(max_examples=5, derandomize=True, database=None, deadline=None)
    >>> seen = []
    >>> from theory.rademacher import two_layer_classes
    >>> from theory.testing import sample_sets
    >>> @fast
    ... @given(sample_sets(max_L=8))
    ... def check(X):
    ...     est = two_layer_classes(X, n_draws=20, seed=0, activations=("relu", "crelu"))
    ...     seen.append(est["relu"].value <= est["crelu"].value * (1 + 1e-12))
    >>> check()
    >>> len(seen) > 0, all(seen)
    (True, True)
    """
    L = draw(st.integers(2, max_L))
    dim = draw(st.integers(1, max_dim))
    return np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1))).standard_normal((L, dim))


# ---------------------------------------------------------------------------- invariance
@st.composite
def linear_unit_problems(draw):
    """(images, weight) for linear units of random images; continuous, hence no ties a.s.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> fast = settings(max_examples=5, derandomize=True, database=None, deadline=None)
    >>> seen = []
    >>> from theory.invariance import firing_thresholds
    >>> from theory.testing import linear_unit_problems
    >>> @fast
    ... @given(linear_unit_problems())
    ... def check(problem):
    ...     x, w = problem
    ...     thr = firing_thresholds(x.reshape(len(x), -1) @ w, rate=0.05)
    ...     seen.append(bool((thr.global_rate == thr.n_firing / len(x)).all()))  # no ties
    >>> check()
    >>> len(seen) > 0, all(seen)
    (True, True)
    """
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(200, 600))
    c = draw(st.integers(1, 2))
    size = draw(st.integers(4, 7))
    u = draw(st.integers(1, 12))
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.standard_normal((n, c, size, size)))
    w = torch.as_tensor(rng.standard_normal((c * size * size, u)))
    return x, w


@st.composite
def response_matrices(draw):
    """(N, U) responses whose columns are permutations of distinct integers (no ties).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> fast = settings(max_examples=5, derandomize=True, database=None, deadline=None)
    >>> seen = []
    >>> from theory.invariance import firing_thresholds
    >>> from theory.testing import response_matrices
    >>> @fast
    ... @given(response_matrices())
    ... def check(r):
    ...     thr = firing_thresholds(r, rate=0.1)
    ...     seen.append(bool((thr.global_rate == thr.n_firing / len(r)).all()))
    >>> check()
    >>> len(seen) > 0, all(seen)
    (True, True)
    """
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(50, 400))
    u = draw(st.integers(1, 10))
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n).astype(float) for _ in range(u)], axis=1)
