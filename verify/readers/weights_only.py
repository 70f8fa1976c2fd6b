"""Conv layers from a file that holds weights only (a state_dict, a safetensors file).

Such a file has tensors and names but no stride, padding, dilation, groups or graph, so the
geometry must be given (`geometry`), never guessed:

* ``"same"``: every 4-D weight is a conv with stride 1, dilation 1 and the zero padding
  ``(k - 1) / 2`` that keeps the size (an even kernel is skipped: that padding is asymmetric);
* ``"valid"``: the same with no padding;
* a JSON file (or a dict) ``{"default": {...}, "layers": {"NAME": {...}}}`` whose entries
  may set ``stride``, ``padding`` (an int, two ints, ``"same"`` or ``"valid"``),
  ``dilation``, ``padding_mode`` (``zeros``/``circular``), ``groups``, ``transposed`` and
  ``input_shape`` ``[C, H, W]``. ``NAME`` is the weight's key without ``.weight``.

Every 4-D floating-point tensor whose key ends in ``weight`` is a conv layer. The first one
(file order for torch files; natural order of the names for safetensors, which stores keys
sorted) reads the image of shape ``input_shape``; a later one takes its ``input_shape``
from the geometry file, or else the previous conv's output shape when the channel counts
agree (``chained``: this assumes nothing between the two convs changes the spatial size,
e.g. no pooling; the report says so), or else it is skipped with the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from verify.readers.spec import (
    ConvSpec,
    ModelReadError,
    ModelSpec,
    output_shape,
    pair,
    parse_shape,
    same_padding,
)

_KEYS = {"stride", "padding", "dilation", "padding_mode", "groups", "transposed", "input_shape"}
GEOMETRY_HELP = ("pass the geometry: --geometry same (stride 1, size-keeping zero padding), "
                 "--geometry valid (no padding), or --geometry FILE.json with per-layer stride, "
                 "padding, dilation, padding_mode, groups, transposed and input_shape (docs: "
                 "Inspect your own network); or inspect the nn.Module or an ONNX export, "
                 "which carry their geometry")


def natural_key(name: str):
    """Sort key that puts `layer.10` after `layer.9`."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def load_geometry(geometry) -> tuple[dict, dict, str]:
    """`(default, per-layer, description)` from "same", "valid", a JSON path or a dict."""
    if isinstance(geometry, str) and geometry in ("same", "valid"):
        return {"padding": geometry}, {}, f"assumed: --geometry {geometry}"
    if isinstance(geometry, (str, Path)):
        path = Path(geometry)
        if not path.is_file():
            raise ModelReadError(f"geometry {geometry!r} is neither 'same', 'valid' nor an "
                                 "existing JSON file")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelReadError(f"cannot read the geometry file {path}: {exc}") from exc
        where = f"geometry file {path}"
    elif isinstance(geometry, dict):
        data, where = geometry, "geometry dict"
    else:
        raise ModelReadError(f"geometry must be 'same', 'valid', a JSON file or a dict, got "
                             f"{type(geometry).__name__}")
    if not isinstance(data, dict) or set(data) - {"default", "layers"}:
        raise ModelReadError(f"{where}: expected an object with keys 'default' and/or "
                             f"'layers', got {sorted(data) if isinstance(data, dict) else data!r}")
    default, layers = data.get("default", {}), data.get("layers", {})
    for name, entry in [("default", default), *layers.items()]:
        if not isinstance(entry, dict):
            raise ModelReadError(f"{where}: entry {name!r} must be an object")
        bad = set(entry) - _KEYS
        if bad:
            raise ModelReadError(f"{where}: entry {name!r} has unknown key(s) {sorted(bad)}; "
                                 f"allowed: {sorted(_KEYS)}")
    return default, layers, where


def specs_from_tensors(tensors: dict, *, source: str, fmt: str, input_shape, geometry,
                       sort_names: bool = False) -> ModelSpec:
    """The `ModelSpec` of a weight-only file: `tensors` maps keys to torch tensors."""
    import torch

    input_shape = parse_shape(input_shape, "--input-shape")
    weights = [k for k, v in tensors.items() if isinstance(v, torch.Tensor) and v.ndim == 4
               and k.split(".")[-1].endswith("weight")]
    if sort_names:
        weights.sort(key=natural_key)
    if not weights:
        raise ModelReadError(f"{source} holds no 4-D weight tensor (no conv layer); keys: "
                             f"{sorted(tensors)[:12]}")
    names = [k[: -len(".weight")] if k.endswith(".weight") else k for k in weights]
    if geometry is None:
        raise ModelReadError(f"{source} is a {fmt} (weights only): it does not record the "
                             f"stride, padding or dilation of its {len(names)} conv weight(s) "
                             f"({', '.join(names[:6])}{', ...' if len(names) > 6 else ''}); "
                             + GEOMETRY_HELP)
    if input_shape is None:
        raise ModelReadError(f"{source} is a {fmt} (weights only): give --input-shape C,H,W, "
                             "the shape of the images its first conv reads")
    default, per_layer, where = load_geometry(geometry)
    unknown = set(per_layer) - set(names)
    if unknown:
        raise ModelReadError(f"{where} names layer(s) {sorted(unknown)} that {source} does "
                             f"not hold; its conv layers are {names}")
    convs, skipped = [], []
    prev: ConvSpec | None = None
    for key, name in zip(weights, names):
        t = tensors[key]
        g = {"stride": 1, "padding": 0, "dilation": 1, "padding_mode": "zeros", "groups": 1,
             "transposed": False, **default, **per_layer.get(name, {})}
        why = None
        if not t.is_floating_point():
            why = f"weight dtype {t.dtype} is not floating point (a quantised layer?)"
        elif g["transposed"]:
            why = f"transposed conv ({where}): the theory covers ordinary convs"
        elif int(g["groups"]) != 1:
            why = (f"grouped conv (groups={g['groups']}, {where}): the theory covers "
                   "groups=1 only")
        elif g["padding_mode"] not in ("zeros", "circular"):
            why = f"padding_mode {g['padding_mode']!r}: the theory covers zeros and circular"
        if why:
            skipped.append({"name": name, "reason": why})
            prev = None
            continue
        w = t.detach().to(torch.float64).numpy().copy()
        dilation = pair(g["dilation"], f"{name}: dilation")
        pad = g["padding"]
        if pad == "same":
            padding = same_padding(w.shape[2:], dilation)
            if padding is None:
                skipped.append({"name": name, "reason": f"asymmetric padding: 'same' padding "
                                f"of the even kernel {w.shape[2]}x{w.shape[3]}"})
                prev = None
                continue
        elif pad == "valid":
            padding = (0, 0)
        else:
            padding = pair(pad, f"{name}: padding")
        bias_t = tensors.get(f"{name}.bias")
        bias = (bias_t.detach().to(torch.float64).numpy().copy()
                if isinstance(bias_t, torch.Tensor) and tuple(bias_t.shape) == (w.shape[0],)
                else None)
        spec = ConvSpec(name, w, bias, pair(g["stride"], f"{name}: stride"), padding, dilation,
                        g["padding_mode"], None, "", str(t.dtype).replace("torch.", ""))
        if "input_shape" in per_layer.get(name, {}):
            shape = parse_shape(g["input_shape"], f"{where}: input_shape of {name}")
            spec = spec.with_input_shape(shape, where)
        elif not convs and not skipped:
            spec = spec.with_input_shape(input_shape, "given (--input-shape)")
        elif prev is not None and prev.weight.shape[0] == w.shape[1]:
            spec = spec.with_input_shape(output_shape(prev, prev.input_shape),
                                         f"chained: the output shape of {prev.name}, assuming "
                                         "nothing between them changes the size")
        else:
            before = (f"the previous conv {prev.name} outputs {prev.weight.shape[0]} channels"
                      if prev is not None else "the previous conv was skipped")
            skipped.append({"name": name, "reason": f"input shape unknown: it reads "
                            f"{w.shape[1]} channels and {before} (a grouped conv, or convs "
                            "that do not form a chain?); give 'groups' or 'input_shape' for it "
                            "in a geometry file"})
            prev = None
            continue
        if spec.input_shape[0] != w.shape[1]:
            raise ModelReadError(f"input shape {list(spec.input_shape)} of {name} "
                                 f"({spec.shape_source}) has {spec.input_shape[0]} channel(s), "
                                 f"but its weight {list(w.shape)} reads {w.shape[1]}")
        convs.append(spec)
        prev = spec
    return ModelSpec(source, fmt, input_shape, convs, skipped, where, tracer=None,
                     notes=[f"{fmt}: weights only, so the geometry is {where} and no graph can "
                            "be run (no traced activations: deeper layers get no sample "
                            "patches and the reconstruction covers the first conv only)"])

