"""ONNX models (the optional extra ``pip install 'crelu-theory[onnx]'``).

An ONNX file is a protobuf message: no code is run to read it. Every ``Conv`` node is read
with its ``strides``, ``pads``, ``dilations``, ``group`` and ``auto_pad``; its weight (and
bias) must be constants of the graph (initializers, ``Constant`` or ``Identity`` of them).
The input shape of each conv comes from ONNX shape inference on the model with its input
fixed to ``(1, C, H, W)``. Covered: ``group = 1``, symmetric pads (``pads`` with equal
begin and end per axis, or ``auto_pad`` ``SAME_*`` whose total padding is even). Listed in
``skipped`` with the reason: grouped and depthwise convs, ``ConvTranspose``, quantised convs
(``QLinearConv``, ``ConvInteger``), asymmetric pads, 1-D/3-D convs, weights computed at run
time, convs whose input shape inference cannot fix.

The tracer runs the graph with ONNX's reference evaluator (`onnx.reference`, pure numpy)
and returns the input and output of every conv.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from verify.readers.spec import ConvSpec, ModelReadError, ModelSpec, parse_shape

QUANTISED = ("QLinearConv", "ConvInteger")


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ModelReadError("reading ONNX models needs the onnx package: "
                             "pip install 'crelu-theory[onnx]' (or pip install onnx)") from None
    return onnx


def _dims(value_info) -> list[int | None]:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]


def _constants(graph) -> dict:
    from onnx import numpy_helper

    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(a.t)
        elif node.op_type == "Identity" and node.input[0] in consts:
            consts[node.output[0]] = consts[node.input[0]]
    return consts


def _auto_pads(mode: str, size: int, kernel: int, stride: int, dilation: int) -> int | None:
    """Symmetric per-side padding of `auto_pad` SAME_*/VALID, or None if asymmetric."""
    if mode == "VALID":
        return 0
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return None if total % 2 else total // 2


def read_onnx(path: Path, input_shape) -> ModelSpec:
    onnx = _import_onnx()
    from google.protobuf.message import DecodeError
    from onnx import helper, shape_inference

    try:
        model = onnx.load(str(path))
    except (DecodeError, OSError, ValueError, RuntimeError) as exc:
        raise ModelReadError(f"cannot read {path} as an ONNX model (truncated or corrupt?): "
                             f"{exc}") from None
    graph = model.graph
    if not graph.node:
        raise ModelReadError(f"{path} has an empty graph (not an ONNX model?)")
    consts = _constants(graph)
    data_inputs = [i for i in graph.input if i.name not in consts]
    if len(data_inputs) != 1:
        raise ModelReadError(f"{path} has {len(data_inputs)} data inputs "
                             f"({[i.name for i in data_inputs]}); crelu inspect needs one image "
                             "input")
    inp = data_inputs[0]
    dims = _dims(inp)
    if len(dims) != 4:
        raise ModelReadError(f"the ONNX input {inp.name!r} has shape {dims}; expected "
                             "(N, C, H, W)")
    given = parse_shape(input_shape, "--input-shape")
    if given is not None:
        bad = [(g, s) for g, s in zip(given, dims[1:]) if s is not None and s != g]
        if bad:
            raise ModelReadError(f"--input-shape {','.join(map(str, given))} does not match "
                                 f"the ONNX model's input {inp.name!r} of shape "
                                 f"{['N' if d is None else d for d in dims]}")
        shape = given
    else:
        if None in dims[1:]:
            raise ModelReadError(f"the ONNX input {inp.name!r} has dynamic dimensions "
                                 f"{['?' if d is None else d for d in dims]}; pass "
                                 "--input-shape C,H,W")
        shape = tuple(dims[1:])

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for vi in fixed.graph.input:
        if vi.name == inp.name:
            for d, v in zip(vi.type.tensor_type.shape.dim, (1, *shape)):
                d.Clear()
                d.dim_value = v
    try:
        inferred = shape_inference.infer_shapes(fixed, data_prop=True)
    except Exception as exc:  # onnx raises its own InferenceError / ValidationError types
        raise ModelReadError(f"ONNX shape inference failed on {path} with input shape "
                             f"{[1, *shape]}: {str(exc).splitlines()[0][:300]}") from None
    shapes = {vi.name: _dims(vi) for vi in (*inferred.graph.value_info, *inferred.graph.input,
                                            *inferred.graph.output)}
    convs, skipped = [], []
    for i, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{i}"
        if node.op_type == "ConvTranspose":
            skipped.append({"name": name, "reason": "transposed conv (ConvTranspose): the "
                            "theory covers ordinary convs"})
            continue
        if node.op_type in QUANTISED:
            skipped.append({"name": name, "reason": f"quantised conv ({node.op_type})"})
            continue
        if node.op_type != "Conv":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        w = consts.get(node.input[1])
        if w is None:
            skipped.append({"name": name, "reason": f"weight {node.input[1]!r} is computed "
                            "in the graph, not a constant"})
            continue
        if w.ndim != 4:
            skipped.append({"name": name, "reason": f"{w.ndim - 2}-D conv (weight "
                            f"{list(w.shape)}): the theory covers 2-D convs"})
            continue
        group = int(attrs.get("group", 1))
        in_dims = shapes.get(node.input[0], [])
        if group != 1:
            kind = ("depthwise" if len(in_dims) == 4 and in_dims[1] == group else "grouped")
            skipped.append({"name": name, "reason": f"{kind} conv (group={group}): the "
                            "theory covers group=1 only"})
            continue
        if len(in_dims) != 4 or None in in_dims[1:]:
            skipped.append({"name": name, "reason": f"input shape unknown (ONNX shape "
                            f"inference gave {in_dims or 'nothing'} for {node.input[0]!r})"})
            continue
        kh, kw = w.shape[2:]
        strides = tuple(int(v) for v in attrs.get("strides", (1, 1)))
        dilations = tuple(int(v) for v in attrs.get("dilations", (1, 1)))
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
        if auto_pad in ("NOTSET", ""):
            pads = tuple(int(v) for v in attrs.get("pads", (0, 0, 0, 0)))
            if pads[:2] != pads[2:]:
                skipped.append({"name": name, "reason": f"asymmetric pads {list(pads)} "
                                "(begin != end)"})
                continue
            padding = pads[:2]
        else:
            per = [_auto_pads(auto_pad, in_dims[2 + a], (kh, kw)[a], strides[a], dilations[a])
                   for a in range(2)]
            if None in per:
                skipped.append({"name": name, "reason": f"asymmetric pads: auto_pad "
                                f"{auto_pad} with an odd total padding on input "
                                f"{in_dims[2:]}"})
                continue
            padding = tuple(per)
        bias = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        convs.append(ConvSpec(
            name, np.asarray(w, dtype=np.float64).copy(),
            None if bias is None else np.asarray(bias, dtype=np.float64).ravel().copy(),
            strides, padding, dilations, "zeros", tuple(int(v) for v in in_dims[1:]),
            "onnx shape inference", str(w.dtype)))
    if not convs and not skipped:
        raise ModelReadError(f"{path} has no Conv node")
    dtype = helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type)
    names = {c.name: c for c in convs}
    nodes = {(n.name or f"{n.op_type}_{i}"): n for i, n in enumerate(graph.node)}

    def tracer(images: np.ndarray) -> dict:
        from onnx.reference import ReferenceEvaluator

        ref = ReferenceEvaluator(model)
        out: dict = {}
        for x in images:
            res = ref.run(None, {inp.name: x[None].astype(dtype)}, intermediate=True)
            for name in names:
                node = nodes[name]
                pair_ = (np.asarray(res[node.input[0]], dtype=np.float64),
                         np.asarray(res[node.output[0]], dtype=np.float64))
                out.setdefault(name, []).append(pair_)
        return {k: (np.concatenate([a for a, _ in v]), np.concatenate([b for _, b in v]))
                for k, v in out.items()}

    return ModelSpec(str(path), "onnx", shape, convs, skipped, "the ONNX Conv attributes",
                     tracer=tracer)
