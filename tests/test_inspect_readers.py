"""verify.readers on real files written here: geometry read right, bad files refused clearly."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

import inspect_models as im
from verify.readers import ModelReadError, UnsafeModelError, read_model

onnx = pytest.importorskip("onnx")

EXPECTED = {name: ((s, s), (p, p), (d, d), shape) for name, (s, p, d, shape) in im.GEOMETRY.items()}


@pytest.fixture(scope="module")
def net():
    return im.network()


@pytest.fixture(scope="module")
def files(net, tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {"state_dict": im.write_state_dict(net, d / "net.pt"),
            "safetensors": im.write_safetensors(net, d / "net.safetensors"),
            "onnx": im.write_onnx(net, d / "net.onnx"),
            "geometry": im.geometry_file(d / "geometry.json"), "dir": d}


def geometry_of(spec):
    return {c.name: (c.stride, c.padding, c.dilation, c.input_shape) for c in spec.convs}


def test_module(net):
    spec = read_model(net, im.INPUT)
    assert geometry_of(spec) == EXPECTED
    assert [s["name"] for s in spec.skipped] == ["7"]
    assert "grouped conv (groups=4)" in spec.skipped[0]["reason"]
    for c in spec.convs:  # weights and biases are the module's, as float64
        m = net[int(c.name)]
        assert np.array_equal(c.weight, m.weight.detach().double().numpy())
        assert np.array_equal(c.bias, m.bias.detach().double().numpy())
        assert c.storage == "float32"


@pytest.mark.parametrize("kind", ["state_dict", "safetensors"])
def test_weight_only_with_geometry_file(files, kind, net):
    spec = read_model(files[kind], "3,8,8", files["geometry"])
    assert geometry_of(spec) == EXPECTED
    assert spec.skipped == [{"name": "7", "reason": spec.skipped[0]["reason"]}]
    assert "grouped conv (groups=4" in spec.skipped[0]["reason"]
    assert spec.tracer is None
    assert np.array_equal(spec.convs[1].weight, net[3].weight.detach().double().numpy())


@pytest.mark.parametrize("kind", ["state_dict", "safetensors"])
def test_weight_only_needs_geometry(files, kind):
    with pytest.raises(ModelReadError, match="weights only.*--geometry same"):
        read_model(files[kind], "3,8,8")
    with pytest.raises(ModelReadError, match="--input-shape"):
        read_model(files[kind], None, "same")


def test_geometry_same_chains_and_says_so(files):
    spec = read_model(files["state_dict"], "3,8,8", "same")
    assert [c.padding for c in spec.convs] == [(1, 1)] * 3
    assert spec.convs[1].shape_source.startswith("chained")
    assert "input shape unknown" in spec.skipped[0]["reason"]   # the grouped conv: 4 != 16


def test_geometry_file_typos_are_refused(files, tmp_path):
    bad = tmp_path / "g.json"
    bad.write_text('{"layers": {"conv_typo": {"stride": 2}}}')
    with pytest.raises(ModelReadError, match="conv_typo"):
        read_model(files["state_dict"], "3,8,8", bad)
    bad.write_text('{"layers": {"3": {"strides": 2}}}')
    with pytest.raises(ModelReadError, match="unknown key"):
        read_model(files["state_dict"], "3,8,8", bad)


def test_checkpoint_dict(net, tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "state_dict": net.state_dict(), "lr": 0.1}, path)
    spec = read_model(path, "3,8,8", "same")
    assert "state_dict under 'state_dict'" in spec.format


def test_onnx(files):
    spec = read_model(files["onnx"])
    assert [c.name for c in spec.convs] == ["conv0", "conv3", "conv5"]
    assert list(geometry_of(spec).values()) == list(EXPECTED.values())
    reasons = {s["name"]: s["reason"] for s in spec.skipped}
    assert set(reasons) == {"grouped", "asym", "up"}
    assert "grouped conv (group=4)" in reasons["grouped"]
    assert "asymmetric pads [0, 0, 1, 1]" in reasons["asym"]
    assert "transposed" in reasons["up"]
    assert spec.convs[2].padding == (2, 2)  # from auto_pad SAME_UPPER with dilation 2


def test_onnx_tracer_gives_conv_inputs(files, net):
    spec = read_model(files["onnx"])
    x = np.random.default_rng(0).random((2, *im.INPUT))
    trace = spec.tracer(x)
    with torch.no_grad():
        z0 = net[0](torch.from_numpy(x).float()).double().numpy()
    assert np.allclose(trace["conv0"][0], x, atol=1e-7)
    assert np.allclose(trace["conv0"][1], z0, atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_export_from_torch(net, tmp_path):
    path = tmp_path / "exported.onnx"
    try:
        torch.onnx.export(net, (torch.zeros(1, *im.INPUT),), str(path), dynamo=False)
    except Exception as exc:  # pragma: no cover - exporter unavailable in this torch build
        pytest.skip(f"torch.onnx.export is unavailable here: {exc}")
    spec = read_model(path)
    assert list(geometry_of(spec).values()) == list(EXPECTED.values())
    assert len(spec.skipped) == 1 and "group=4" in spec.skipped[0]["reason"]


# ---------------------------------------------------------------------------- refusals
class Payload:
    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "PWNED"
    Payload.marker = str(marker)
    inside = tmp_path / "evil.pt"
    torch.save({"conv.weight": torch.zeros(4, 3, 3, 3), "x": Payload()}, inside)
    raw = tmp_path / "evil_raw.pth"
    raw.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(UnsafeModelError, match=r"refused .*needs pickle code .*posix.system"):
        read_model(inside, "3,8,8", "same")
    with pytest.raises(UnsafeModelError, match=r"refused .*needs pickle code"):
        read_model(raw, "3,8,8", "same")
    assert not marker.exists()


def test_whole_module_pickle_is_refused(net, tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(net, path)
    with pytest.raises(UnsafeModelError, match="state_dict"):
        read_model(path, "3,8,8", "same")


@pytest.mark.parametrize("kind", ["state_dict", "safetensors", "onnx"])
def test_truncated_files(files, kind, tmp_path):
    data = open(files[kind], "rb").read()
    path = tmp_path / ("cut" + os.path.splitext(files[kind])[1])
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelReadError, match="truncated or corrupt"):
        read_model(path, "3,8,8", None if kind == "onnx" else "same")


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(ModelReadError, match="does not exist"):
        read_model(tmp_path / "nope.pt")
    odd = tmp_path / "model.xyz"
    odd.write_bytes(b"hello world, not a model")
    with pytest.raises(ModelReadError, match="cannot tell the format"):
        read_model(odd)


def test_mismatched_input_shape(files, net):
    with pytest.raises(ModelReadError, match="does not run on input shape.*channels"):
        read_model(net, (1, 8, 8))
    with pytest.raises(ModelReadError, match="has 1 channel.*reads 3"):
        read_model(files["state_dict"], "1,8,8", "same")
    with pytest.raises(ModelReadError, match=r"--input-shape 3,16,16 does not match .*\[1, 3, 8, 8\]"):
        read_model(files["onnx"], "3,16,16")
    with pytest.raises(ModelReadError, match="larger than the padded input"):
        read_model(files["state_dict"], "3,1,1", "valid")
    with pytest.raises(ModelReadError, match="three positive integers"):
        read_model(files["state_dict"], "3,8", "same")


def test_batchnorm_after_a_conv_is_folded():
    """conv -> BatchNorm2d (eval) is one affine layer: the folded spec reproduces the module's
    BatchNorm output, and the note says so. Control: the unfolded conv does not."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.BatchNorm2d(6),
                              torch.nn.ReLU())
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
        net[1].weight.uniform_(0.5, 2)
        net[1].bias.uniform_(-1, 1)
    spec = read_model(net, (3, 8, 8))
    conv = spec.convs[0]
    x = np.random.default_rng(0).random((2, 3, 8, 8))
    with torch.no_grad():
        want = net[:2].eval()(torch.from_numpy(x).float()).double().numpy()
    got = conv.layer().forward(x) + conv.bias[None, :, None, None]
    assert np.allclose(got, want, atol=1e-5)
    assert np.allclose(spec.tracer(x)["0"][1], want, atol=1e-6)
    assert any("folded" in n for n in spec.notes)
    plain = net[0].weight.detach().double().numpy()
    assert not np.allclose(conv.weight, plain)


def test_onnx_dynamic_input_needs_and_takes_input_shape(net, tmp_path):
    path = im.write_onnx(net, tmp_path / "dyn.onnx", extra_unsupported=False, dynamic=True)
    with pytest.raises(ModelReadError, match="dynamic dimensions.*--input-shape"):
        read_model(path)
    with pytest.raises(ModelReadError, match="does not match"):
        read_model(path, "1,8,8")            # the channel count is static: 3
    spec = read_model(path, "3,16,16")
    assert [c.input_shape for c in spec.convs] == [(3, 16, 16), (8, 8, 8), (16, 4, 4)]
