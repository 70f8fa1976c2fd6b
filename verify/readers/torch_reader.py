"""PyTorch: files saved with `torch.save` (read with `weights_only=True`), and `nn.Module`s.

A file is loaded with ``torch.load(path, weights_only=True)``: torch's restricted unpickler,
which builds tensors and plain containers only. A file that needs any other pickle code (a
whole module saved with ``torch.save(model)``, or a planted ``os.system``) is refused with
`UnsafeModelError`; it is never unpickled. The state_dict is the file itself or, in a
checkpoint, the first of the entries `CHECKPOINT_KEYS` that holds tensors. A state_dict has
weights only: see `verify.readers.weights_only` for the geometry.

An `nn.Module` carries its geometry: every `nn.Conv2d` is read with its stride, padding,
dilation, groups and padding mode, and one forward pass on an input of the given shape
records the input shape of each conv (forward hooks) in call order. A `BatchNorm2d` that
reads a conv's output directly is folded into it with its running statistics (eval mode:
`w' = w g / sqrt(v + eps)`, `b' = (b - m) g / sqrt(v + eps) + beta`), so that the layer
analysed is the affine map the network applies before its activation.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from verify.readers.spec import (
    ConvSpec,
    ModelReadError,
    ModelSpec,
    UnsafeModelError,
    pair,
    parse_shape,
    same_padding,
)
from verify.readers.weights_only import specs_from_tensors

#: Where a checkpoint usually keeps its state_dict (searched in this order).
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "module",
                   "ema", "weights")


def load_torch_file(path: Path) -> object:
    """`torch.load(path, weights_only=True)`, with refusals and errors that name the problem."""
    import torch

    try:
        with warnings.catch_warnings():  # torch's note on the pickle protocol of the file
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        op = re.search(r"Unsupported operand \d+", str(exc))
        what = (f" (it references {found.group(1)})" if found else
                f" (torch's restricted unpickler stopped at: {op.group(0)})" if op else "")
        raise UnsafeModelError(
            f"refused {path}: it needs pickle code to load{what}. crelu inspect reads PyTorch "
            "files with torch.load(weights_only=True) only, which builds tensors and plain "
            "containers and never runs code from the file. Save model.state_dict() instead of "
            "the whole model (or convert to safetensors or ONNX), or pass the nn.Module from "
            "Python: verify.inspect.inspect_model(model, input_shape)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
        raise ModelReadError(f"cannot read {path} as a PyTorch file (truncated or corrupt?): "
                             f"{str(exc).splitlines()[0][:200]}") from None


def find_state_dict(obj: object, path: Path) -> tuple[dict, str]:
    """The tensors of a state_dict or checkpoint, and which it was."""
    import torch

    def tensors_of(d):
        return {k: v for k, v in d.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}

    if isinstance(obj, dict):
        direct = tensors_of(obj)
        if direct:
            return direct, "torch state_dict"
        for key in CHECKPOINT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and tensors_of(inner):
                return tensors_of(inner), f"torch checkpoint (state_dict under {key!r})"
        raise ModelReadError(f"{path} is a dict with keys {sorted(map(str, obj))[:12]} but no "
                             f"tensors, nor a state_dict under any of {list(CHECKPOINT_KEYS)}")
    raise ModelReadError(f"{path} holds a {type(obj).__name__}, not a state_dict (a dict of "
                         "tensors) or a checkpoint dict")


def read_torch_file(path: Path, input_shape, geometry) -> ModelSpec:
    tensors, fmt = find_state_dict(load_torch_file(path), path)
    return specs_from_tensors(tensors, source=str(path), fmt=fmt, input_shape=input_shape,
                              geometry=geometry)


# ---------------------------------------------------------------------------- nn.Module
def _module_geometry(name: str, m) -> tuple[dict | None, str | None]:
    """Geometry of an nn.Conv2d, or the reason it is not covered."""
    from torch import nn

    if isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        return None, f"transposed conv ({type(m).__name__}): the theory covers ordinary convs"
    if isinstance(m, (nn.Conv1d, nn.Conv3d)):
        return None, f"{type(m).__name__}: the theory covers 2-D convs"
    if m.groups != 1:
        kind = "depthwise" if m.groups == m.in_channels else "grouped"
        return None, f"{kind} conv (groups={m.groups}): the theory covers groups=1 only"
    if m.padding_mode not in ("zeros", "circular"):
        return None, (f"padding_mode {m.padding_mode!r}: the theory covers zeros and circular "
                      "padding")
    dilation = pair(m.dilation, "dilation")
    if m.padding == "same":
        padding = same_padding(tuple(m.kernel_size), dilation)
        if padding is None:
            return None, (f"asymmetric padding: padding='same' with the kernel "
                          f"{tuple(m.kernel_size)} and dilation {dilation}")
    elif m.padding == "valid":
        padding = (0, 0)
    else:
        padding = pair(m.padding, "padding")
    return {"stride": pair(m.stride, "stride"), "padding": padding, "dilation": dilation,
            "padding_mode": m.padding_mode}, None


def read_module(model, input_shape) -> ModelSpec:
    """The conv layers of an `nn.Module`, their input shapes from one traced forward pass."""
    import torch
    from torch import nn

    input_shape = parse_shape(input_shape, "input_shape")
    if input_shape is None:
        raise ModelReadError("an nn.Module needs input_shape (C, H, W): the input shape of "
                             "each conv is found by running the model on it")
    conv_types = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                  nn.ConvTranspose3d)
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, conv_types)]
    if not found:
        raise ModelReadError(f"the {type(model).__name__} has no conv module")
    geoms, skipped = {}, []
    for name, m in found:
        g, why = _module_geometry(name, m)
        if why:
            skipped.append({"name": name, "reason": why})
        else:
            geoms[name] = g
    mods = {n: m for n, m in found if n in geoms}
    param = next(iter(model.parameters()))
    dtype = param.dtype if param.is_floating_point() else torch.float32

    bns = {n: m for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}

    def run(x: np.ndarray) -> tuple[list[str], dict, dict]:
        """Forward `x`; each conv's (input, output) in call order, the output being that of
        the BatchNorm2d that reads it directly when there is one (folded: see below)."""
        seen: dict = {}
        order: list[str] = []
        outs: dict = {}       # conv name -> its output tensor (kept alive: compared with `is`)
        after: dict = {}      # conv name -> (bn name, bn output)

        def hook(name):
            def fn(mod, args, out):
                if name not in seen:
                    order.append(name)
                    outs[name] = out
                    seen[name] = (args[0].detach().double().numpy().copy(),
                                  out.detach().double().numpy().copy())
            return fn

        def bn_hook(name):
            def fn(mod, args, out):
                for conv, t in outs.items():
                    if args[0] is t and conv not in after:
                        after[conv] = (name, out.detach().double().numpy().copy())
            return fn

        handles = [m.register_forward_hook(hook(n)) for n, m in mods.items()]
        handles += [m.register_forward_hook(bn_hook(n)) for n, m in bns.items()]
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(torch.from_numpy(np.ascontiguousarray(x)).to(dtype))
        except Exception as exc:  # the model's own error, on the shape we chose
            raise ModelReadError(f"the model does not run on input shape "
                                 f"{list(x.shape[1:])}: {type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:300]}") from None
        finally:
            model.train(was_training)
            for h in handles:
                h.remove()
        for conv, (_, bn_out) in after.items():
            seen[conv] = (seen[conv][0], bn_out)
        return order, seen, {c: b for c, (b, _) in after.items()}

    probe = np.random.default_rng(0).random((1, *input_shape))
    order, seen, folded = run(probe)
    convs, notes = [], []
    for name in order:
        m = mods[name]
        w = m.weight.detach().to(torch.float64).numpy().copy()
        bias = None if m.bias is None else m.bias.detach().to(torch.float64).numpy().copy()
        if name in folded:  # eval-mode BatchNorm right after the conv: one affine layer
            bn = bns[folded[name]]
            scale = (bn.weight.detach().double() if bn.affine else torch.ones(w.shape[0],
                     dtype=torch.float64)) / torch.sqrt(bn.running_var.double() + bn.eps)
            shift = bn.bias.detach().double() if bn.affine else torch.zeros(w.shape[0],
                                                                             dtype=torch.float64)
            scale, shift = scale.numpy(), shift.numpy()
            mean = bn.running_mean.double().numpy()
            w = w * scale[:, None, None, None]
            bias = ((0.0 if bias is None else bias) - mean) * scale + shift
            notes.append(f"BatchNorm2d {folded[name]!r} folded into conv {name!r} (eval mode: "
                         "running statistics): the layer analysed is conv then BatchNorm")
        shape = tuple(int(s) for s in seen[name][0].shape[1:])
        convs.append(ConvSpec(name, w, bias, **geoms[name], input_shape=shape,
                              shape_source="traced (forward hook)",
                              storage=str(m.weight.dtype).replace("torch.", "")))
    for name in mods:
        if name not in seen:
            skipped.append({"name": name, "reason": "not called in the forward pass"})

    def tracer(images: np.ndarray) -> dict:
        return run(images)[1]

    return ModelSpec(f"{type(model).__name__} (nn.Module)", "nn.Module", input_shape, convs,
                     skipped, "the nn.Conv2d modules", tracer=tracer, notes=notes)
