"""safetensors files: named tensors and a JSON header, no code (weights only).

Read with `safetensors.torch.load_file` (so bfloat16 and float16 tensors keep their
dtype, which sets the tolerance of the ReLU rank test). The geometry is not in the file:
see `verify.readers.weights_only`. The file stores its tensors sorted by name, so the convs
are taken in the natural order of their names (``layer.9`` before ``layer.10``).
"""

from __future__ import annotations

from pathlib import Path

from verify.readers.spec import ModelReadError, ModelSpec
from verify.readers.weights_only import specs_from_tensors


def read_safetensors(path: Path, input_shape, geometry) -> ModelSpec:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelReadError(f"cannot read {path} as a safetensors file (truncated or "
                             f"corrupt?): {exc}") from None
    return specs_from_tensors(tensors, source=str(path), fmt="safetensors",
                              input_shape=input_shape, geometry=geometry, sort_names=True)
