"""What a reader returns: the conv layers of a model, what was skipped and why, a tracer.

Every reader (`verify.readers.torch_reader`, `safetensors_reader`, `onnx_reader`)
returns a `ModelSpec`. A `ConvSpec` is one ordinary 2-D conv layer that the theory
covers (groups 1, symmetric padding, zeros or circular padding, not transposed); anything
else goes to `ModelSpec.skipped` with its reason, never silently.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np


class ModelReadError(ValueError):
    """The model file or object cannot be read as asked (the message names the problem)."""


class UnsafeModelError(ModelReadError):
    """The file needs pickle code to load; it is refused (never unpickled)."""


#: Tracer: images (N, C, H, W) float64 -> {conv name: (its input, its output)}, float64,
#: both as the model computes them (bias included), for every conv of the spec it reached.
Tracer = Callable[[np.ndarray], dict]


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """One conv layer read from a model.

    Attributes
    ----------
    name : str
        The layer's name in the model (module path, state_dict prefix, ONNX node name).
    weight : numpy.ndarray, float64 (K, C, kh, kw)
    bias : numpy.ndarray (K,) or None
    stride, padding, dilation : (int, int)
    padding_mode : {"zeros", "circular"}
    input_shape : (C, H, W) or None
    shape_source : str
        How `input_shape` is known (`traced`, `onnx shape inference`, `given`,
        `geometry file`, `chained`, ...).
    storage : str
        The dtype the weights were stored in (`float32`, ...).
    """

    name: str
    weight: np.ndarray
    bias: np.ndarray | None
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    padding_mode: str
    input_shape: tuple[int, int, int] | None
    shape_source: str
    storage: str = "float32"

    def layer(self):
        """The `theory.ConvLayer` of this spec (bias-free, float64)."""
        from theory import ConvLayer

        return ConvLayer(self.weight, stride=self.stride, padding=self.padding,
                         padding_mode=self.padding_mode, dilation=self.dilation)

    def with_input_shape(self, shape, source: str) -> "ConvSpec":
        return dataclasses.replace(self, input_shape=tuple(int(s) for s in shape),
                                   shape_source=source)


@dataclasses.dataclass
class ModelSpec:
    """The conv layers of a model (in forward order), the skipped ones, and a tracer.

    Attributes
    ----------
    source : str
    format : str
        `nn.Module`, `torch state_dict`, `torch checkpoint`, `safetensors`, `onnx`.
    input_shape : (C, H, W) or None
    convs : list of ConvSpec
    skipped : list of {"name", "reason"}
    geometry_source : str
        Where stride/padding/dilation came from.
    tracer : Tracer or None
        Runs images through the model and returns every conv's input and output (None for
        weight-only files: there is no graph to run).
    notes : list of str
    """

    source: str
    format: str
    input_shape: tuple[int, int, int] | None
    convs: list[ConvSpec]
    skipped: list[dict]
    geometry_source: str
    tracer: Tracer | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


def parse_shape(value, what: str = "input shape") -> tuple[int, int, int] | None:
    """`"C,H,W"`, `(C, H, W)` or None -> a tuple of three positive ints (clear errors)."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace("x", ",").split(",") if p.strip()]
    else:
        parts = list(value)
    try:
        shape = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        raise ModelReadError(f"{what} must be C,H,W (three positive integers), got "
                             f"{value!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ModelReadError(f"{what} must be C,H,W (three positive integers), got {value!r}")
    return shape  # type: ignore[return-value]


def pair(value, name: str) -> tuple[int, int]:
    """An int or a pair of ints (the geometry of one conv)."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    items = list(value)
    if len(items) != 2:
        raise ModelReadError(f"{name} must be an int or two ints, got {value!r}")
    return int(items[0]), int(items[1])


def same_padding(kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int] | None:
    """Symmetric padding that keeps the size at stride 1, or None when that padding would be
    asymmetric (the total `d (k - 1)` is odd: even kernels)."""
    out = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        if total % 2:
            return None
        out.append(total // 2)
    return out[0], out[1]


def output_shape(spec: ConvSpec, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """`(K, H', W')` of the conv on `shape` (torch's floor rule)."""
    k, _, kh, kw = spec.weight.shape
    _, h, w = shape
    (sh, sw), (ph, pw), (dh, dw) = spec.stride, spec.padding, spec.dilation
    return (k, (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1,
            (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1)
