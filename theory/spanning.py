r"""Local ReLU injectivity: do the active filters of an input patch span the patch space?

Notes
-----
A conv layer with filters $w_1, \dots, w_K \in \mathbb{R}^d$ ($d = C k_h k_w$,
flattened in `(c, a, b)` order) and biases $b_k$ sees its input through receptive-field
windows (patches) $p \in \mathbb{R}^d$. Under ReLU the output at one window is
$\max(\langle w_k, p\rangle + b_k, 0)$; its *active set* is

$$
S(p) = \{k : \langle w_k, p \rangle + b_k > 0\}.
$$

The active outputs are the linear measurements $\langle w_k, p\rangle = h_k - b_k$,
$k \in S(p)$; an inactive output only says $\langle w_k, p\rangle \le -b_k$. The
patch is determined by its active outputs alone exactly when the active filters span
$\mathbb{R}^d$, i.e. $\operatorname{rank} W_{S(p)} = d$, with $W_S$ the $|S| \times d$
matrix of the active filters: this is the condition of Bruna, Szlam and LeCun (ICLR 2014)
for the injectivity of a ReLU layer at an input, applied to one window.

**Sufficiency for the layer (proof).** Suppose every window that the layer evaluates on an
input $x$ passes (windows that touch zero padding included, with the padded zeros as
coordinates of $p$), and every pixel of $x$ lies in at least one window. Let $x'$ give the
same ReLU output. The output reveals the active sets ($h_k > 0$ iff $k \in S$), so
$x'$ has the same $S(p)$ at every window, and there $W_S p' = h_S - b_S = W_S p$; full
column rank gives $p' = p$, and since the windows cover the input, $x' = x$: the ReLU
layer is injective at $x$. The condition is not necessary (a window that fails it may be
pinned down by overlapping windows), so the *fraction* of sample windows that pass is a
conservative, local statistic.

**The rank test and its tolerance.** Let $\sigma_d$ and $\sigma_1$ be the smallest and
largest of the $d$ singular values of $W_S$ (computed in float64). The windows pass when

$$
\sigma_d(W_S) > \tau = \max\bigl(u_s \|W_S\|_F,\; \max(|S|, d)\, \varepsilon\, \sigma_1(W_S)\bigr),
$$

with $u_s$ the unit roundoff of the dtype the weights were *stored* in ($2^{-24}$ for
float32, $2^{-11}$ for float16, $2^{-8}$ for bfloat16, $2^{-53}$ for float64) and
$\varepsilon = 2^{-52}$. The first term: rounding the weights to their storage precision
moves each entry by at most $u_s$ relatively, hence $W_S$ by at most $u_s\|W_S\|_F$ in the
2-norm, which moves $\sigma_d$ by at most as much (Weyl); a smaller $\sigma_d$ cannot be
told from 0 by the stored weights. The second term is numpy's `matrix_rank` threshold, the
rounding error of the float64 SVD itself. With $|S| < d$ the rank is $< d$ and no SVD is
needed.

Examples
--------
>>> import numpy as np
>>> from theory.spanning import active_span
>>> w = np.concatenate([np.eye(2), -np.eye(2)]).reshape(4, 1, 1, 2)   # +-e1, +-e2
>>> span = active_span(w, np.array([[1.0, 2.0], [1.0, 0.0]]))
>>> span.spans.tolist(), span.n_active.tolist(), span.fraction
([True, False], [2, 1], 0.5)
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from theory.conv import ConvLayer, as_tensor

_EPS = float(np.finfo(np.float64).eps)
#: Unit roundoff of the storage dtypes (half the machine epsilon).
STORAGE_ROUNDOFF = {"float64": 2.0 ** -53, "float32": 2.0 ** -24, "float16": 2.0 ** -11,
                    "bfloat16": 2.0 ** -8}


@dataclasses.dataclass(frozen=True)
class ActiveSpan:
    """Result of `active_span`: which patches have active filters that span the patch space.

    Attributes
    ----------
    spans : bool array (n,)
        `rank W_S(p) = d` by the test of the module notes.
    n_active : int array (n,)
        `|S(p)|`.
    sigma_min : float array (n,)
        $\\sigma_d(W_{S(p)})$ (0 where `|S(p)| < d`).
    threshold : float array (n,)
        The tolerance $\\tau$ it is compared with (0 where `|S(p)| < d`).
    dim : int
        `d`.
    storage : str
        The storage dtype whose roundoff sets the tolerance.
    """

    spans: np.ndarray
    n_active: np.ndarray
    sigma_min: np.ndarray
    threshold: np.ndarray
    dim: int
    storage: str

    @property
    def fraction(self) -> float:
        """Fraction of the patches that pass."""
        return float(np.mean(self.spans))


def active_span(weight: np.ndarray | torch.Tensor, patches: np.ndarray,
                bias: np.ndarray | None = None, storage: str = "float64") -> ActiveSpan:
    """For each patch, whether the filters active on it (ReLU) span the patch space.

    Parameters
    ----------
    weight : array (K, C, kh, kw) or (K, d)
    patches : array (n, d)
        Receptive-field windows, flattened in the filters' `(c, a, b)` order
        (`receptive_patches`).
    bias : array (K,), optional
        The layer's bias (zero if omitted): it decides which filters are active.
    storage : {"float64", "float32", "float16", "bfloat16"}
        The dtype the weights were stored in (sets the tolerance, module notes).

    Returns
    -------
    ActiveSpan
    """
    w = as_tensor(weight, "weight", dtype=torch.float64).detach().numpy()
    w = w.reshape(w.shape[0], -1)
    k, d = w.shape
    p = as_tensor(patches, "patches", dtype=torch.float64).detach().numpy()
    if p.ndim != 2 or p.shape[1] != d:
        raise ValueError(f"patches must be (n, {d}) for filters of {d} values, got {p.shape}")
    b = np.zeros(k) if bias is None else as_tensor(bias, "bias", torch.float64).numpy().ravel()
    if b.shape != (k,):
        raise ValueError(f"bias must have {k} values (one per filter), got {b.shape}")
    if storage not in STORAGE_ROUNDOFF:
        raise ValueError(f"unknown storage dtype {storage!r}; expected one of "
                         f"{', '.join(STORAGE_ROUNDOFF)}")
    u = STORAGE_ROUNDOFF[storage]
    active = (p @ w.T + b) > 0                                   # (n, K)
    n_active = active.sum(axis=1)
    n = len(p)
    sigma = np.zeros(n)
    tau = np.zeros(n)
    todo = np.flatnonzero(n_active >= d)
    row_sq = np.sum(w * w, axis=1)
    chunk = max(1, 4_000_000 // max(k * d, 1))
    for start in range(0, len(todo), chunk):
        idx = todo[start:start + chunk]
        masked = active[idx][:, :, None] * w[None]                # inactive rows zeroed
        s = np.linalg.svd(masked, compute_uv=False)               # (m, min(K, d)) descending
        sigma[idx] = s[:, d - 1]
        fro = np.sqrt(active[idx] @ row_sq)
        tau[idx] = np.maximum(u * fro, np.maximum(n_active[idx], d) * _EPS * s[:, 0])
    spans = sigma > tau
    spans[n_active < d] = False
    return ActiveSpan(spans, n_active.astype(np.int64), sigma, tau, d, storage)


def receptive_patches(x: np.ndarray | torch.Tensor, layer: ConvLayer, interior: bool = True
                      ) -> np.ndarray:
    """Every receptive-field window the layer evaluates on `x`, flattened: (n, d) float64.

    Parameters
    ----------
    x : array (C, H, W) or (N, C, H, W)
    layer : ConvLayer
        Its padding, stride and dilation select the windows; `d = C kh kw`.
    interior : bool
        Keep only the windows that do not touch zero padding (circular padding wraps real
        pixels, so all its windows are kept).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.spanning import receptive_patches
    >>> layer = ConvLayer(np.ones((2, 1, 2, 2)), padding=1)
    >>> receptive_patches(np.arange(9.0).reshape(1, 3, 3), layer).tolist()
    [[0.0, 1.0, 3.0, 4.0], [1.0, 2.0, 4.0, 5.0], [3.0, 4.0, 6.0, 7.0], [4.0, 5.0, 7.0, 8.0]]
    """
    t = as_tensor(x, "x", dtype=torch.float64).detach()
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4:
        raise ValueError(f"x must be (C, H, W) or (N, C, H, W), got shape {tuple(t.shape)}")
    layer.check_input_shape(tuple(t.shape[1:]))
    (kh, kw), (ph, pw) = layer.kernel_size, layer.padding
    mode = "circular" if layer.padding_mode == "circular" else "constant"
    padded = F.pad(t, (pw, pw, ph, ph), mode=mode) if (ph or pw) else t
    cols = F.unfold(padded, (kh, kw), dilation=layer.dilation, stride=layer.stride)  # (N, d, L)
    patches = cols.transpose(1, 2).reshape(-1, cols.shape[1])
    if interior and layer.padding_mode == "zeros" and (ph or pw):
        ones = F.pad(torch.ones(1, 1, *t.shape[2:], dtype=torch.float64), (pw, pw, ph, ph))
        inside = F.unfold(ones, (kh, kw), dilation=layer.dilation, stride=layer.stride)
        keep = (inside[0].sum(dim=0) == kh * kw).repeat(t.shape[0])
        patches = patches[keep]
    return patches.numpy()


__all__ = ["ActiveSpan", "STORAGE_ROUNDOFF", "active_span", "receptive_patches"]
