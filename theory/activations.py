"""ReLU, CReLU and AVR for numpy arrays and torch tensors, and a CReLU `nn.Module`.

Notes
-----
With $[t]_+ = \\max(t, 0)$,

$$
\\operatorname{CReLU}(z) = ([z]_+, [-z]_+), \\qquad
\\operatorname{AVR}(z) = |z| = [z]_+ + [-z]_+ .
$$

CReLU concatenates its two halves along `axis` (the channel axis by default), so the
channel count doubles. The identities $[z]_+ - [-z]_+ = z$,
$[z]_+ + [-z]_+ = |z|$ and $\\|\\operatorname{CReLU}(z)\\|_2 = \\|z\\|_2$ hold
exactly in floating point for the first two (each entry is either copied or zero), and to
summation rounding for the norm.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _check(z: Array, name: str) -> None:
    if not isinstance(z, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} expects a numpy array or torch tensor, got {type(z).__name__}")
    if isinstance(z, np.ndarray):
        if z.dtype.kind not in "fiu":
            raise TypeError(f"{name} expects a real numeric array, got dtype {z.dtype}")
    elif z.dtype == torch.bool or z.is_complex():
        raise TypeError(f"{name} expects a real numeric tensor, got dtype {z.dtype}")


def _negative_part(z: Array) -> Array:
    """$[-z]_+$ in `z`'s dtype, exactly: no integer wrap-around.

    Unsigned integers have no negative part (all zeros); for signed integers the most
    negative value has no negation in its dtype, which is refused by name.
    """
    if isinstance(z, torch.Tensor):
        if not z.dtype.is_signed:       # unsigned integers: no negative part
            return torch.zeros_like(z)
        if not z.is_floating_point() and z.numel() and int(z.min()) == torch.iinfo(z.dtype).min:
            raise OverflowError(f"{z.dtype} value {int(z.min())} has no negation in {z.dtype}; "
                                "cast to a wider dtype first")
        return torch.relu(-z)
    if z.dtype.kind == "u":
        return np.zeros_like(z)
    if z.dtype.kind == "i" and z.size and z.min() == np.iinfo(z.dtype).min:
        raise OverflowError(f"{z.dtype} value {z.min()} has no negation in {z.dtype}; cast to a "
                            "wider dtype first")
    return np.maximum(-z, 0).astype(z.dtype, copy=False)


def relu(z: Array) -> Array:
    """Rectified linear unit $[z]_+$, elementwise; same type and dtype out.

    Parameters
    ----------
    z : numpy.ndarray or torch.Tensor

    Returns
    -------
    numpy.ndarray or torch.Tensor

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from theory import relu
    >>> relu(np.array([-1.5, 0.0, 2.0]))
    array([0., 0., 2.])
    >>> relu(torch.tensor([-1, 3]))
    tensor([0, 3])
    """
    _check(z, "relu")
    if isinstance(z, torch.Tensor):
        return torch.relu(z)
    return np.maximum(z, 0).astype(z.dtype, copy=False)


def crelu(z: Array, axis: int = 1) -> Array:
    """Concatenated ReLU: `concat([z]_+, [-z]_+)` along `axis` (default: channels).

    Parameters
    ----------
    z : numpy.ndarray or torch.Tensor
        Pre-activations, e.g. of shape `(N, K, H, W)`.
    axis : int
        Axis to concatenate along; for a 3-D `(K, H, W)` input pass `axis=0`.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Same type as `z`, with `z.shape[axis]` doubled: the first half is the positive
        part, the second half the negative part.

    Notes
    -----
    $\\operatorname{CReLU}(Wx) = \\operatorname{ReLU}([W; -W]x)$: a CReLU layer is a
    ReLU layer in which every filter appears with its negative.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import crelu
    >>> z = np.array([[[[1.0, -2.0]]]])          # (N, K, H, W) = (1, 1, 1, 2)
    >>> h = crelu(z)
    >>> h.shape                                  # the channel count doubles
    (1, 2, 1, 2)
    >>> h[0, :, 0]                               # positive half, then negative half
    array([[1., 0.],
           [0., 2.]])
    >>> crelu(np.array([[[1.0, -2.0]]]), axis=0).shape   # one (K, H, W) input
    (2, 1, 2)
    >>> x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    >>> bool(np.isclose(np.linalg.norm(crelu(x)), np.linalg.norm(x)))   # norm preserved
    True
    """
    _check(z, "crelu")
    _axis_ok(z, axis)
    if isinstance(z, torch.Tensor):
        return torch.cat([torch.relu(z), _negative_part(z)], dim=axis)
    return np.concatenate([relu(z), _negative_part(z)], axis=axis)


def avr(z: Array) -> Array:
    """Absolute value rectification $|z| = [z]_+ + [-z]_+$ (keeps magnitude, loses sign).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import avr, crelu
    >>> avr(np.array([-3, 0, 2]))
    array([3, 0, 2])
    >>> z = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    >>> h = crelu(z)
    >>> bool(np.array_equal(avr(z), h[:, :3] + h[:, 3:]))   # |z| = [z]_+ + [-z]_+
    True
    """
    _check(z, "avr")
    if isinstance(z, torch.Tensor):
        return relu(z) + _negative_part(z)
    return relu(z) + _negative_part(z) if z.dtype.kind in "iu" else np.abs(z)


def split_crelu(h: Array, axis: int = 1) -> tuple[Array, Array]:
    """Split CReLU features into the positive and negative halves along `axis`.

    Raises
    ------
    ValueError
        If the channel count along `axis` is odd (not CReLU features).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import crelu, split_crelu
    >>> z = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    >>> pos, neg = split_crelu(crelu(z))
    >>> pos.shape, neg.shape
    ((2, 3, 4, 4), (2, 3, 4, 4))
    >>> bool((pos * neg == 0).all())             # at most one half is non-zero
    True
    >>> try:
    ...     split_crelu(np.ones((1, 3, 2, 2)))
    ... except ValueError as err:
    ...     print(err)
    CReLU features must have an even number of channels along axis 1; got 3
    """
    _check(h, "split_crelu")
    _axis_ok(h, axis)
    n = h.shape[axis]
    if n % 2:
        raise ValueError(
            f"CReLU features must have an even number of channels along axis {axis}; got {n}"
        )
    k = n // 2
    if isinstance(h, torch.Tensor):
        return h.narrow(axis, 0, k), h.narrow(axis, k, k)
    index = [slice(None)] * h.ndim
    index[axis] = slice(0, k)
    pos = h[tuple(index)]
    index[axis] = slice(k, n)
    return pos, h[tuple(index)]  # views, no copies


def crelu_preactivation(h: Array, axis: int = 1) -> Array:
    """Recover the pre-activation exactly: $z = h_+ - h_-$.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import crelu, crelu_preactivation
    >>> z = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    >>> bool(np.array_equal(crelu_preactivation(crelu(z)), z))   # exact, bit for bit
    True
    >>> crelu_preactivation(crelu(z[0], axis=0), axis=0).shape
    (3, 4, 4)
    """
    pos, neg = split_crelu(h, axis)
    return pos - neg


def _axis_ok(z: Array, axis: int) -> None:
    if not -z.ndim <= axis < z.ndim:
        raise ValueError(f"axis {axis} is out of range for an array of {z.ndim} dimensions")


class CReLU(torch.nn.Module):
    """CReLU as a torch module; doubles the channel dimension `dim` (default 1).

    Examples
    --------
    >>> import torch
    >>> from theory import CReLU
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), CReLU())
    >>> net(torch.zeros(2, 3, 8, 8)).shape       # 4 filters, 8 channels out
    torch.Size([2, 8, 8, 8])
    >>> net[1]
    CReLU(dim=1)
    """

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # noqa: D102
        """`crelu(z, axis=self.dim)` of a tensor.

        Examples
        --------
        >>> import torch
        >>> from theory import CReLU
        >>> CReLU().forward(torch.tensor([[1.0, -2.0]]))
        tensor([[1., 0., 0., 2.]])
        >>> CReLU(dim=0).forward(torch.tensor([1.0, -2.0]))
        tensor([1., 0., 0., 2.])
        """
        return crelu(z, axis=self.dim)

    def extra_repr(self) -> str:  # noqa: D102
        """The module's settings as printed in its repr, `dim=...`.

        Examples
        --------
        >>> from theory import CReLU
        >>> CReLU(dim=0).extra_repr()
        'dim=0'
        """
        return f"dim={self.dim}"


class AVR(torch.nn.Module):
    """Absolute value rectification as a torch module.

    Examples
    --------
    >>> import torch
    >>> from theory import AVR
    >>> AVR()(torch.tensor([[-1.0, 0.5]]))
    tensor([[1.0000, 0.5000]])
    """

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # noqa: D102
        """$|z|$ of a tensor, elementwise.

        Examples
        --------
        >>> import torch
        >>> from theory import AVR, CReLU
        >>> z = torch.tensor([[-1.0, 2.0, -0.5]])
        >>> AVR().forward(z)
        tensor([[1.0000, 2.0000, 0.5000]])
        >>> h = CReLU().forward(z)
        >>> bool(torch.equal(AVR().forward(z), h[:, :3] + h[:, 3:]))
        True
        """
        return z.abs()
