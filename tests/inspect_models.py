"""A small torch network and the files the inspect tests read (written by the tests).

The network has a padded, a strided and a dilated conv (the theory covers them), then a
grouped conv (it does not). `write_*` save it as a state_dict, a safetensors file and an
ONNX model; `dense_oracle` is the independent matrix of one of its convs: the torch module
itself (float64 copy) applied to the unit basis.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import torch
from torch import nn

INPUT = (3, 8, 8)
#: name -> (stride, padding, dilation, input shape), as built in `network`.
GEOMETRY = {"0": (1, 1, 1, (3, 8, 8)), "3": (2, 1, 1, (8, 4, 4)), "5": (1, 2, 2, (16, 2, 2))}


def network(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),                    # padded
        nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),         # strided
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=2, dilation=2),      # dilated
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=4),        # grouped: not covered
    )


def geometry_file(path) -> str:
    layers = {name: {"stride": s, "padding": p, "dilation": d, "input_shape": list(shape)}
              for name, (s, p, d, shape) in GEOMETRY.items()}
    layers["7"] = {"groups": 4}
    path.write_text(json.dumps({"layers": layers}))
    return str(path)


def write_state_dict(net, path) -> str:
    torch.save(net.state_dict(), path)
    return str(path)


def write_safetensors(net, path) -> str:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return str(path)


def write_onnx(net, path, extra_unsupported: bool = True, dynamic: bool = False) -> str:
    """The network as an ONNX graph built with onnx.helper (c3 with auto_pad SAME_UPPER);
    with `extra_unsupported`, an asymmetric-pad Conv and a ConvTranspose follow; `dynamic`:
    the input's batch, height and width are symbolic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    inits = [numpy_helper.from_array(v, name=k) for k, v in sd.items()]
    nodes = [
        helper.make_node("Conv", ["x", "0.weight", "0.bias"], ["z0"], name="conv0",
                         pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["z0"], ["r0"], name="relu0"),
        helper.make_node("MaxPool", ["r0"], ["p0"], name="pool0", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Conv", ["p0", "3.weight", "3.bias"], ["z3"], name="conv3",
                         pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["z3"], ["r3"], name="relu3"),
        helper.make_node("Conv", ["r3", "5.weight", "5.bias"], ["z5"], name="conv5",
                         auto_pad="SAME_UPPER", dilations=[2, 2]),
        helper.make_node("Relu", ["z5"], ["r5"], name="relu5"),
        helper.make_node("Conv", ["r5", "7.weight", "7.bias"], ["z7"], name="grouped",
                         pads=[1, 1, 1, 1], group=4),
    ]
    last = "z7"
    if extra_unsupported:
        rng = np.random.default_rng(0)
        inits += [numpy_helper.from_array(rng.standard_normal((4, 16, 2, 2)).astype(np.float32),
                                          name="asym.weight"),
                  numpy_helper.from_array(rng.standard_normal((4, 4, 2, 2)).astype(np.float32),
                                          name="up.weight")]
        nodes += [helper.make_node("Conv", ["z7", "asym.weight"], ["za"], name="asym",
                                   pads=[0, 0, 1, 1]),
                  helper.make_node("ConvTranspose", ["za", "up.weight"], ["zu"], name="up",
                                   strides=[2, 2])]
        last = "zu"
    graph = helper.make_graph(
        nodes, "inspect-test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                       ["N", INPUT[0], "H", "W"] if dynamic else [1, *INPUT])],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, [1, 4, None, None])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def dense_oracle(net, index: int, shape) -> np.ndarray:
    """The M x D matrix of conv `net[index]` on inputs of `shape`: the module's own forward
    (a float64 copy) applied to every unit vector."""
    m = copy.deepcopy(net[index]).double()
    m.bias = None
    d = int(np.prod(shape))
    with torch.no_grad():
        cols = m(torch.eye(d, dtype=torch.float64).reshape(d, *shape))
    return cols.reshape(d, -1).numpy().T


def oracle_bounds(net, index: int, shape) -> tuple[float, float]:
    """(sigma_min^2, sigma_max^2) by numpy.linalg.svd (0 lower bound for a wide matrix)."""
    a = dense_oracle(net, index, shape)
    s = np.linalg.svd(a, compute_uv=False)
    return (float(s[-1]) ** 2 if a.shape[0] >= a.shape[1] else 0.0), float(s[0]) ** 2
