"""Read the conv layers of a user's model: PyTorch, safetensors, ONNX, or an `nn.Module`.

`read_model` picks the reader by the object's type or the file's extension (and, for
unknown extensions, its first bytes) and returns a `ModelSpec`. None of the readers
unpickles arbitrary objects: PyTorch files go through ``torch.load(weights_only=True)``,
safetensors and ONNX files are data formats.

Examples
--------
>>> import torch
>>> from verify.readers import read_model
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
...                           torch.nn.Conv2d(8, 8, 3, stride=2, groups=2))
>>> spec = read_model(net, input_shape=(3, 16, 16))
>>> [(c.name, c.input_shape) for c in spec.convs], spec.skipped[0]["reason"][:12]
([('0', (3, 16, 16))], 'grouped conv')
"""

from __future__ import annotations

from pathlib import Path

from verify.readers.spec import (
    ConvSpec,
    ModelReadError,
    ModelSpec,
    UnsafeModelError,
    parse_shape,
)

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")
FORMATS = ("torch", "safetensors", "onnx")


def detect_format(path: Path) -> str:
    """`torch`, `safetensors` or `onnx` from the extension, else from the first bytes."""
    suffix = path.suffix.lower()
    if suffix in TORCH_SUFFIXES:
        return "torch"
    if suffix == ".safetensors":
        return "safetensors"
    if suffix == ".onnx":
        return "onnx"
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":  # torch's zip, or a legacy pickle
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{":  # 8-byte header length, then the JSON header
        return "safetensors"
    raise ModelReadError(f"cannot tell the format of {path}: name it .pt/.pth (PyTorch), "
                         ".safetensors or .onnx")


def read_model(model, input_shape=None, geometry=None, fmt: str | None = None) -> ModelSpec:
    """The conv layers of `model` with their geometry and input shapes.

    Parameters
    ----------
    model : str, Path or torch.nn.Module
    input_shape : "C,H,W" or (C, H, W), optional
        Needed for an `nn.Module`, a weight-only file, or an ONNX model with dynamic
        dimensions; checked against the ONNX model's own input otherwise.
    geometry : "same", "valid", path or dict, optional
        The geometry of a weight-only file (`verify.readers.weights_only`).
    fmt : {"torch", "safetensors", "onnx"}, optional
        Overrides the detection from the file name.

    Returns
    -------
    ModelSpec
        Each conv validated against its input shape: one whose kernel does not fit its input
        is refused (the first conv: `ModelReadError`, the input shape is wrong) or skipped.

    Raises
    ------
    ModelReadError
        Missing, truncated or corrupt file, a shape that does not fit, missing geometry.
    UnsafeModelError
        A PyTorch file that needs pickle code.
    """
    try:
        import torch
        is_module = isinstance(model, torch.nn.Module)
    except ImportError:  # pragma: no cover - torch is a dependency
        is_module = False
    if is_module:
        from verify.readers.torch_reader import read_module

        if geometry is not None:
            raise ModelReadError("geometry is for weight-only files; an nn.Module has its own")
        spec = read_module(model, input_shape)
    else:
        if not isinstance(model, (str, Path)):
            raise ModelReadError(f"model must be a file path or a torch.nn.Module, got "
                                 f"{type(model).__name__}")
        path = Path(model)
        if not path.exists():
            raise ModelReadError(f"model file {path} does not exist")
        if not path.is_file():
            raise ModelReadError(f"{path} is not a file")
        fmt = fmt or detect_format(path)
        if fmt not in FORMATS:
            raise ModelReadError(f"unknown format {fmt!r}; expected one of {FORMATS}")
        if fmt == "onnx":
            from verify.readers.onnx_reader import read_onnx

            if geometry is not None:
                raise ModelReadError("geometry is for weight-only files; an ONNX model has "
                                     "its own")
            spec = read_onnx(path, input_shape)
        elif fmt == "safetensors":
            from verify.readers.safetensors_reader import read_safetensors

            spec = read_safetensors(path, input_shape, geometry)
        else:
            from verify.readers.torch_reader import read_torch_file

            spec = read_torch_file(path, input_shape, geometry)
    return validate(spec)


def validate(spec: ModelSpec) -> ModelSpec:
    """Check every conv against its input shape; the first one's failure is an error."""
    keep = []
    for i, conv in enumerate(spec.convs):
        try:
            conv.layer().at(conv.input_shape)
        except (ValueError, TypeError) as exc:
            if i == 0:
                raise ModelReadError(f"conv {conv.name!r} (weight {list(conv.weight.shape)}) "
                                     f"cannot read its input of shape {list(conv.input_shape)} "
                                     f"({conv.shape_source}): {exc}") from None
            spec.skipped.append({"name": conv.name, "reason": f"does not fit its input "
                                 f"{list(conv.input_shape)} ({conv.shape_source}): {exc}"})
            continue
        keep.append(conv)
    spec.convs = keep
    return spec


__all__ = ["ConvSpec", "ModelReadError", "ModelSpec", "UnsafeModelError", "detect_format",
           "parse_shape", "read_model", "validate"]
