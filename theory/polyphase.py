r"""Polyphase (coarse-grid) form of a strided, dilated conv: ``A = S C E``.

Notes
-----
Fix an axis with stride ``s``, dilation ``d``, padding ``p``, kernel ``k`` and a *coarse step*
``g`` (``g = s`` for zero padding; ``g = gcd(s, H)`` for circular padding). Each tap ``a``
reads input position ``s i + d a - p``; write ``d a - p = g q_a + r_a`` with
``0 <= r_a < g`` (floor division). Grouping input pixels by phase,
``x'[(c, r), m] = x[c, g m + r]``, the layer becomes

    (A x)[o, i] = sum_{c, a} w[o, c, a] x'[(c, r_a), u_i + q_a],     u_i = (s / g) i,

a stride-1 cross-correlation on the coarse grid with ``C g_h g_w`` input channels and the
coarse kernel ``W'[o, (c, r_h, r_w), q_h - q_min, q_w - q_min] = w[o, c, a, b]`` (the map
``a -> (q_a, r_a)`` is injective, so no two taps collide). Hence ``A = S C E`` with

* ``C`` the stride-1 *circulant* coarse conv on a torus ``Z_N`` (its symbol below),
* ``E`` the embedding of the image's coarse pixels into the torus (zero padding: a box, with
  the phases ``g m + r >= H`` of the last coarse pixel absent; circular: the whole torus),
* ``S`` the selection of the output positions ``u_i`` (with repetition for circular layers
  whose outputs wrap around the torus more than once).

For zero padding any torus size ``N >= max(M - q_min, H' + q_max)`` (``M = ceil(H/s)``
coarse rows) makes ``A = S C E`` exact: the image plus every window fits without
wrap-around. For circular padding ``N = H / g``.
"""

from __future__ import annotations

import dataclasses
import math

import torch

import numpy as np



@dataclasses.dataclass(frozen=True)
class Axis:
    """One spatial axis of the coarse form."""

    g: int                 # coarse step
    s: int                 # stride
    q: np.ndarray          # coarse tap offset of every tap a (length k)
    r: np.ndarray          # phase of every tap a (length k)
    qmin: int
    kq: int                # coarse kernel length q_max - q_min + 1
    n_in: int              # coarse input positions: M = ceil(H / g) (zeros) or N (circular)
    n_out: int             # H'
    torus: int | None      # circular: N = H / g; zeros: None (any large enough canvas)
    out_pos: np.ndarray    # coarse position u_i of every output i (mod torus for circular)
    phase_exists: np.ndarray  # (g, n_in) bool: does pixel g m + r lie in the image

    @property
    def qmax(self) -> int:
        return self.qmin + self.kq - 1

    def min_canvas(self) -> int:
        """Smallest zero-padding torus size without wrap-around (see module notes)."""
        return max(self.n_in, self.n_in - self.qmin, self.n_out + self.qmax)

    def all_windows_present(self) -> bool:
        """Zero padding: is every coarse output whose window can reach the image an output?

        Outputs ``u`` read ``u + q``, ``q in [q_min, q_max]``; those that can meet
        ``[0, M)`` are ``u in [-q_max, M - 1 - q_min]``; the layer has ``u in [0, H')``.
        """
        return self.torus is None and self.qmax <= 0 and self.n_out >= self.n_in - self.qmin

    def multiplicity(self) -> np.ndarray:
        """Circular: how many outputs sit at each torus position (length N)."""
        assert self.torus is not None
        return np.bincount(self.out_pos, minlength=self.torus)


def _axis(k: int, s: int, p: int, d: int, n: int, n_out: int, circular: bool) -> Axis:
    g = math.gcd(s, n) if circular else s
    offs = d * np.arange(k) - p
    q, r = np.divmod(offs, g)
    if circular:
        torus = n // g
        n_in = torus
        out_pos = ((s // g) * np.arange(n_out)) % torus
        exists = np.ones((g, n_in), bool)
    else:
        torus = None
        n_in = -(-n // g)
        out_pos = np.arange(n_out)
        exists = (g * np.arange(n_in)[None, :] + np.arange(g)[:, None]) < n
    return Axis(g, s, q, r, int(q.min()), int(q.max() - q.min() + 1), n_in, n_out, torus,
                out_pos, exists)


@dataclasses.dataclass(frozen=True)
class Coarse:
    """The coarse form of a layer: kernel ``(K, C', kq_h, kq_w)``, axes, pixel mask."""

    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    kernel: np.ndarray         # (K, C', kq_h, kq_w), C' = C g_h g_w, channel = (c, r_h, r_w)
    h: Axis
    w: Axis

    @property
    def channels(self) -> int:
        return int(self.kernel.shape[1])

    def pixel_mask(self) -> np.ndarray:
        """(C', n_in_h, n_in_w) bool: which coarse pixels are image pixels."""
        c = self.input_shape[0]
        m = self.h.phase_exists[:, None, :, None] & self.w.phase_exists[None, :, None, :]
        return np.broadcast_to(m[None], (c, *m.shape)).reshape(
            c * self.h.g * self.w.g, self.h.n_in, self.w.n_in)

    def to_coarse(self, x: np.ndarray) -> np.ndarray:
        """(N, C, H, W) -> (N, C', n_in_h, n_in_w), zeros at absent pixels."""
        n, c, H, W = x.shape
        gh, gw = self.h.g, self.w.g
        xp = np.zeros((n, c, self.h.n_in * gh, self.w.n_in * gw))
        xp[:, :, :H, :W] = x
        xp = xp.reshape(n, c, self.h.n_in, gh, self.w.n_in, gw).transpose(0, 1, 3, 5, 2, 4)
        return xp.reshape(n, c * gh * gw, self.h.n_in, self.w.n_in)

    def from_coarse(self, xc: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_coarse` on image pixels (absent pixels dropped)."""
        n = xc.shape[0]
        c, H, W = self.input_shape
        gh, gw = self.h.g, self.w.g
        x = xc.reshape(n, c, gh, gw, self.h.n_in, self.w.n_in).transpose(0, 1, 4, 2, 5, 3)
        return x.reshape(n, c, self.h.n_in * gh, self.w.n_in * gw)[:, :, :H, :W]

    def apply(self, xc: np.ndarray) -> np.ndarray:
        """The coarse conv ``S C E`` applied to coarse inputs (N, C', n_in_h, n_in_w) (numpy).

        An independent route to ``A x`` (used to test the decomposition against torch).
        """
        K, _, kh, kw = self.kernel.shape
        n = xc.shape[0]
        out = np.zeros((n, K, self.h.n_out, self.w.n_out))
        for a in range(kh):
            for b in range(kw):
                rows = self.h.out_pos + self.h.qmin + a
                cols = self.w.out_pos + self.w.qmin + b
                if self.h.torus is not None:
                    rows = rows % self.h.torus
                if self.w.torus is not None:
                    cols = cols % self.w.torus
                okr = (rows >= 0) & (rows < self.h.n_in)
                okc = (cols >= 0) & (cols < self.w.n_in)
                patch = np.zeros((n, xc.shape[1], len(rows), len(cols)))
                patch[:, :, okr[:, None] & okc[None, :]] = xc[:, :, rows[okr]][:, :, :, cols[okc]].reshape(
                    n, xc.shape[1], -1)
                out += np.einsum("oc,ncij->noij", self.kernel[:, :, a, b], patch)
        return out


def coarse_form(op) -> Coarse:
    """The coarse (polyphase) form `A = S C E` of a shape-bound conv layer.

    Parameters
    ----------
    op : theory.ConvOperator
        `layer.at(input_shape)`; any stride, padding, dilation and padding mode.

    Returns
    -------
    Coarse
        The coarse kernel `(K, C', kq_h, kq_w)` with `C' = C g_h g_w`, and per axis the
        coarse step, tap offsets, output positions and (circular) torus size.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.polyphase import coarse_form
    >>> rng = np.random.default_rng(0)
    >>> op = ConvLayer(rng.standard_normal((4, 2, 3, 3)), stride=2, padding=1).at((2, 8, 8))
    >>> cf = coarse_form(op)
    >>> cf.kernel.shape, cf.h.g                # a stride-1 conv with 2 * 2 * 2 channels
    ((4, 8, 2, 2), 2)
    >>> x = rng.standard_normal((1, 2, 8, 8))
    >>> bool(np.allclose(cf.apply(cf.to_coarse(x)), op.forward(x)))   # S C E = A
    True
    """
    layer = op.layer
    circ = layer.padding_mode == "circular"
    weight = layer.weight.detach().to(dtype=torch.float64).numpy()
    K, C, kh, kw = weight.shape
    _, H, W = op.input_shape
    _, Ho, Wo = op.output_shape
    ah = _axis(kh, layer.stride[0], layer.padding[0], layer.dilation[0], H, Ho, circ)
    aw = _axis(kw, layer.stride[1], layer.padding[1], layer.dilation[1], W, Wo, circ)
    ker = np.zeros((K, C, ah.g, aw.g, ah.kq, aw.kq))
    for a in range(kh):
        for b in range(kw):
            ker[:, :, ah.r[a], aw.r[b], ah.q[a] - ah.qmin, aw.q[b] - aw.qmin] += weight[:, :, a, b]
    # (a, b) -> (q, r) is injective, so "+=" never adds two taps; on a circular torus
    # shorter than the kernel, taps that alias mod N add up in C, which apply() and the
    # symbol both reproduce through the "mod N".
    return Coarse(tuple(op.input_shape), tuple(op.output_shape),
                  ker.reshape(K, C * ah.g * aw.g, ah.kq, aw.kq), ah, aw)


__all__ = ["Axis", "Coarse", "coarse_form"]
