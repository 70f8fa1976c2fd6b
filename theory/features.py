r"""Features of a conv layer: convolve, rectify (CReLU or ReLU), and optionally max-pool.

Notes
-----
For one input $x$ of shape `(C, H, W)` (or a batch `(N, C, H, W)`),
`crelu_features` returns $\operatorname{CReLU}(Ax)$ with the two halves stacked
on the channel axis, whatever the batch dimension (the channel axis is the third from
last). `conv_crelu_maxpool` adds non-overlapping `pool x pool` max-pooling and
returns the pooling switches as well. Pooling commutes with the monotone ReLU,
$\max_j [z_j]_+ = [\max_j z_j]_+$, so the switches are the argmax of $z$
(positive channel) and of $-z$ (negative channel), defined even where the pooled value
is 0.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from theory.activations import crelu, relu
from theory.conv import ConvLayer, as_tensor

Activation = Literal["crelu", "relu"]


def _check_activation(activation: str) -> None:
    if activation not in ("crelu", "relu"):
        raise ValueError(f"activation must be 'crelu' or 'relu', got {activation!r}")


def check_pool(pool) -> int:
    """`pool` as a positive int, or a ValueError naming it.

    Examples
    --------
    >>> from theory.features import check_pool
    >>> check_pool(2)
    2
    >>> for bad in (0, 2.0, True):
    ...     try:
    ...         check_pool(bad)
    ...     except ValueError as err:
    ...         print(err)
    pool must be a positive int, got 0
    pool must be a positive int, got 2.0
    pool must be a positive int, got True
    """
    if isinstance(pool, (bool, np.bool_)) or not isinstance(pool, (int, np.integer)) \
            or int(pool) < 1:
        raise ValueError(f"pool must be a positive int, got {pool!r}")
    return int(pool)


def crelu_features(x: np.ndarray | torch.Tensor, layer: ConvLayer,
                   activation: Activation = "crelu"):
    """$\\operatorname{CReLU}(Ax)$ (or $[Ax]_+$) of `(C, H, W)` or `(N, C, H, W)`.

    Parameters
    ----------
    x : numpy array or torch tensor
    layer : ConvLayer (or a `ConvOperator`: its `forward` is used)
    activation : {"crelu", "relu"}

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Same type as `x`: `(2K, H', W')` for CReLU (positive half, then negative half) or
        `(K, H', W')` for ReLU, with the batch axis kept.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, crelu_features
    >>> layer = ConvLayer(np.ones((1, 1, 1, 1)))
    >>> crelu_features(np.array([[[1.0, -2.0]]]), layer)
    array([[[1., 0.]],
    <BLANKLINE>
           [[0., 2.]]])
    """
    _check_activation(activation)
    z = layer.forward(x)
    if activation == "relu":
        return relu(z)
    return crelu(z, axis=z.ndim - 3)


def check_bias(bias, layer: ConvLayer) -> np.ndarray | None:
    """A known conv bias as a float64 array `(K,)`, or `None`; a clear error otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer
    >>> from theory.features import check_bias
    >>> layer = ConvLayer(np.ones((3, 1, 2, 2)))
    >>> check_bias([0.5, 0, -1], layer)
    array([ 0.5,  0. , -1. ])
    >>> try:
    ...     check_bias(np.zeros(4), layer)
    ... except ValueError as err:
    ...     print(err)
    bias must have one entry per filter (3), got shape (4,)
    """
    if bias is None:
        return None
    if not isinstance(bias, (np.ndarray, torch.Tensor)):
        bias = np.asarray(bias, dtype=np.float64)
    b = as_tensor(bias, "bias", dtype=torch.float64).detach().numpy().copy()  # finite or error
    if b.shape != (layer.out_channels,):
        raise ValueError(f"bias must have one entry per filter ({layer.out_channels}), got "
                         f"shape {b.shape}")
    return b


def conv_crelu_maxpool(x: np.ndarray | torch.Tensor, layer: ConvLayer, pool: int = 2,
                       activation: Activation = "crelu", bias=None):
    """Conv, then CReLU (or ReLU), then non-overlapping `pool x pool` max-pooling.

    Parameters
    ----------
    x : array of shape (C, H, W) or (N, C, H, W)
    layer : ConvLayer
    pool : int
        Window and stride of the max-pooling (floor mode: trailing rows/columns that do not
        fill a window are dropped, as in `torch.nn.functional.max_pool2d`).
    activation : {"crelu", "relu"}
    bias : array (K,), optional
        A bias added to every response of filter $k$, $z = Ax + \\beta$, before the
        activation (trained layers). The inverses take the same `bias`
        (`theory.selection.selection`).

    Returns
    -------
    features : same type as `x`, shape ([N,] C_f, H'//pool, W'//pool)
        `C_f = 2K` for CReLU (positive half, then negative half), `K` for ReLU.
    switches : int64 array/tensor, same shape as `features`
        The pooling switches: for each pooled unit, the flat index `i * W' + j` in its
        channel's `H' x W'` conv output of the response that was kept (torch's
        `max_pool2d(return_indices=True)` convention). For the negative CReLU channel it
        is the position of the *smallest* response.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, conv_crelu_maxpool
    >>> g, s = conv_crelu_maxpool(np.array([[[1.0, -3.0], [2.0, 0.5]]]),
    ...                           ConvLayer(np.ones((1, 1, 1, 1))))
    >>> g.ravel().tolist(), s.ravel().tolist()
    ([2.0, 3.0], [2, 1])
    """
    from theory.selection import pooled_shape

    _check_activation(activation)
    pool = check_pool(pool)
    is_np = isinstance(x, np.ndarray)
    t = as_tensor(x, "x")
    if t.ndim not in (3, 4):
        raise ValueError(f"x must be (C, H, W) or (N, C, H, W), got shape {tuple(t.shape)}")
    pooled_shape(layer, t.shape[-3:], pool, activation)
    b = check_bias(bias, layer)
    z = layer.forward(t.reshape(-1, *t.shape[-3:]))
    if b is not None:
        z = z + torch.from_numpy(b).to(z.dtype)[None, :, None, None]
    vp, ip = F.max_pool2d(z, pool, stride=pool, return_indices=True)
    if activation == "crelu":
        vn, inn = F.max_pool2d(-z, pool, stride=pool, return_indices=True)
        feats = torch.relu(torch.cat([vp, vn], dim=1))
        sw = torch.cat([ip, inn], dim=1)
    else:
        feats, sw = torch.relu(vp), ip
    feats = feats.reshape(*t.shape[:-3], *feats.shape[1:])
    sw = sw.reshape(*t.shape[:-3], *sw.shape[1:])
    if is_np:
        return feats.numpy(), sw.numpy()
    return feats, sw


#: The earlier name of `conv_crelu_maxpool` (kept: it is the same function).
crelu_maxpool = conv_crelu_maxpool

__all__ = ["Activation", "check_bias", "check_pool", "conv_crelu_maxpool", "crelu_features",
           "crelu_maxpool"]
