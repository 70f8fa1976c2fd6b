"""verify.inspect and `crelu inspect`: every layer's numbers against independent oracles."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import inspect_models as im
from theory import CReLU
from verify import cli
from verify.inspect import inspect_model

LAYER_KEYS = {"name", "weight_shape", "stride", "padding", "padding_mode", "dilation",
              "input_shape", "frame_bounds", "crelu_injective", "relu_injective_fraction",
              "pairing", "reconstruction_psnr_db", "notes"}
FAST = {"pairing_repetitions": 20, "sign_flip_repetitions": 50, "baseline_steps": 0}
EPS = float(np.finfo(np.float64).eps)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The oracles (torch convs, SVDs) on one thread: on a shared 2-core machine two threads
    were several times slower (the inspection itself does the same)."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def net():
    return im.network()


@pytest.fixture(scope="module")
def files(net, tmp_path_factory):
    d = tmp_path_factory.mktemp("inspect")
    out = {"module": net, "state_dict": im.write_state_dict(net, d / "net.pt"),
           "safetensors": im.write_safetensors(net, d / "net.safetensors"),
           "geometry": im.geometry_file(d / "geometry.json"), "dir": d}
    if pytest.importorskip("onnx"):
        out["onnx"] = im.write_onnx(net, d / "net.onnx")
    return out


def _report(files, kind, **kw):
    args = {"module": (files["module"], im.INPUT, None), "onnx": (files.get("onnx"), None, None),
            "state_dict": (files["state_dict"], "3,8,8", files["geometry"]),
            "safetensors": (files["safetensors"], "3,8,8", files["geometry"])}[kind]
    return inspect_model(args[0], args[1], geometry=args[2], **{**FAST, **kw})


def _bounds_agree(fb: dict, oracle: tuple[float, float], m: int, d: int) -> bool:
    """Both are SVDs of the same matrix in float64 (backward stable): squared singular values
    agree to a few max(M, D) * eps * b."""
    # certified values lie outside the computed ones by at most their proved margin
    tol = 8 * max(m, d) * EPS * oracle[1] + fb.get("margin", 0.0)
    return abs(fb["lower"] - oracle[0]) <= tol and abs(fb["upper"] - oracle[1]) <= tol


@pytest.mark.parametrize("kind", ["module", "state_dict", "safetensors", "onnx"])
def test_frame_bounds_match_dense_svd_of_the_torch_module(files, net, kind):
    report = _report(files, kind, images=None, recon_depth=0)
    assert len(report["layers"]) == 3
    for layer, index in zip(report["layers"], (0, 3, 5)):
        shape = tuple(layer["input_shape"])
        oracle = im.oracle_bounds(net, index, shape)
        a = im.dense_oracle(net, index, shape)
        assert _bounds_agree(layer["frame_bounds"], oracle, *a.shape), (kind, layer["name"])
        assert layer["crelu_injective"] == (oracle[0] > max(a.shape) * EPS * oracle[1])
        assert layer["frame_bounds"]["method"] == "dense"
        assert layer["frame_bounds"]["certified"] is True    # dense SVD + Cholesky proof
        assert layer["frame_bounds"]["margin"] <= 1e-8 * oracle[1]


def test_oracle_catches_a_misread_geometry(files, net, tmp_path):
    """Planted bug: the dilated conv read with dilation 1 (and the padding that keeps its
    size); the dense-SVD comparison must fail for that layer and only that one."""
    wrong = json.loads(open(files["geometry"]).read())
    wrong["layers"]["5"].update(dilation=1, padding=1)
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(wrong))
    report = inspect_model(files["state_dict"], "3,8,8", geometry=str(path), images=None,
                           recon_depth=0, **FAST)
    ok = []
    for layer, index in zip(report["layers"], (0, 3, 5)):
        shape = tuple(layer["input_shape"])
        ok.append(_bounds_agree(layer["frame_bounds"], im.oracle_bounds(net, index, shape),
                                *im.dense_oracle(net, index, shape).shape))
    assert ok == [True, True, False]


def test_report_schema(files):
    report = _report(files, "module", images=("astronaut",), recon_depth=1)
    assert set(report) == {"model", "layers", "skipped"}
    assert report["skipped"] == [{"name": "7", "reason": report["skipped"][0]["reason"]}]
    for layer in report["layers"]:
        assert set(layer) == LAYER_KEYS
        assert set(layer["frame_bounds"]) == {"lower", "upper", "certified", "method", "margin"}
        assert set(layer["pairing"]) == {"mean_mu", "iid_baseline_mean", "sign_flip_p"}
        assert len(layer["weight_shape"]) == 4 and len(layer["input_shape"]) == 3
    first = report["layers"][0]
    assert set(first["reconstruction_psnr_db"]) == {"crelu", "relu", "optimisation"}
    assert report["layers"][1]["reconstruction_psnr_db"] is None   # recon_depth=1
    json.dumps(report, allow_nan=False)


def test_pairing_fields_are_the_theory_routines(files, net):
    from theory import pairing, random_pairing_baseline, sign_flip_baseline

    layer = _report(files, "module", images=None, recon_depth=0)["layers"][1]
    w = net[3].weight.detach().double().numpy()
    p = pairing(w)
    assert layer["pairing"]["mean_mu"] == pytest.approx(p.mean, abs=1e-15)
    iid = random_pairing_baseline(16, (8, 3, 3), repetitions=20, seed=0)
    assert layer["pairing"]["iid_baseline_mean"] == pytest.approx(iid.mean, abs=1e-15)
    flip = sign_flip_baseline(w, repetitions=50, seed=0)
    assert layer["pairing"]["sign_flip_p"] == pytest.approx(flip.tail_probability(p.mean))


def test_planted_pairs_are_detected():
    """A bank made of opposite pairs has mean mu = -1 and a tiny sign-flip p-value; the same
    bank with its signs randomised (the negative control) does not."""
    rng = np.random.default_rng(0)
    half = rng.standard_normal((8, 3, 3, 3))
    paired = nn.Conv2d(3, 16, 3, padding=1, bias=False)
    with torch.no_grad():
        paired.weight.copy_(torch.from_numpy(np.concatenate([half, -half])))
    r = inspect_model(nn.Sequential(paired), (3, 8, 8), images=None, recon_depth=0,
                      sign_flip_repetitions=200, pairing_repetitions=20, baseline_steps=0)
    pr = r["layers"][0]["pairing"]
    assert pr["mean_mu"] == pytest.approx(-1.0) and pr["sign_flip_p"] < 0.02
    control = nn.Conv2d(3, 16, 3, padding=1, bias=False)
    with torch.no_grad():
        control.weight.copy_(torch.from_numpy(rng.standard_normal((16, 3, 3, 3))))
    r = inspect_model(nn.Sequential(control), (3, 8, 8), images=None, recon_depth=0,
                      sign_flip_repetitions=200, pairing_repetitions=20, baseline_steps=0)
    assert r["layers"][0]["pairing"]["sign_flip_p"] > 0.02
    assert r["layers"][0]["pairing"]["mean_mu"] > -0.9


def test_relu_fraction_against_brute_force():
    """A conv with 6 filters on 2x2 grey windows: the reported fraction equals the fraction
    of interior windows of the photos whose active rows have full rank (numpy matrix_rank)."""
    torch.manual_seed(1)
    conv = nn.Conv2d(1, 6, 2, padding=1)
    r = inspect_model(nn.Sequential(conv), (1, 10, 10), images=("camera", "coins"),
                      recon_depth=0, **FAST)
    frac = r["layers"][0]["relu_injective_fraction"]
    from verify.inspect import load_images

    imgs, _, _ = load_images(("camera", "coins"), (1, 10, 10))
    cols = F.unfold(torch.from_numpy(imgs), 2).transpose(1, 2).reshape(-1, 4).numpy()  # interior
    w = conv.weight.detach().double().numpy().reshape(6, 4)
    b = conv.bias.detach().double().numpy()
    full = [np.linalg.matrix_rank(w[(w @ p + b) > 0]) == 4 if ((w @ p + b) > 0).sum() else False
            for p in cols]
    assert 0 < frac < 1
    assert frac == pytest.approx(np.mean(full))


def test_chain_of_the_relu_network(files):
    r = _report(files, "module", images=("astronaut",), recon_depth=2, baseline_steps=3)
    chain = r["model"]["image_chain"]
    assert chain["layers"] == ["0", "3", "5"]
    assert chain["activations"] == ["relu", "relu"] and chain["pools"] == [2, 1, 1]
    first, second = (L["reconstruction_psnr_db"] for L in r["layers"][:2])
    assert None not in first.values()                 # conv + max-pool: all three methods
    assert second["crelu"] is None and second["relu"] is not None   # ReLU network: no 2K input


def test_reconstruction_exact_for_an_injective_first_layer():
    """Proposition 2.1: an injective conv (no pooling after it) is inverted exactly from its
    CReLU features; ReLU from the same 4 filters (about 2 active of 4 per window, 3x3x3 unknowns) is not; a non-injective conv (2 filters on 3
    channels) is not inverted exactly either (the negative control)."""
    torch.manual_seed(0)
    good = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    r = inspect_model(good, (3, 8, 8), images=("astronaut",), **FAST)["layers"][0]
    assert r["crelu_injective"] and r["reconstruction_psnr_db"]["crelu"] > 200
    assert r["reconstruction_psnr_db"]["relu"] < r["reconstruction_psnr_db"]["crelu"] - 100
    bad = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU())
    r = inspect_model(bad, (3, 8, 8), images=("astronaut",), **FAST)["layers"][0]
    assert not r["crelu_injective"] and r["reconstruction_psnr_db"]["crelu"] < 40


def test_chain_crelu_network():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), CReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(12, 40, 3, padding=1), CReLU())
    r = inspect_model(net, (1, 8, 8), images=("camera",), recon_depth=2, **FAST)
    assert r["model"]["image_chain"]["activations"] == ["crelu"]
    second = r["layers"][1]["reconstruction_psnr_db"]
    assert second["crelu"] is not None and second["relu"] is not None


def test_no_chain_when_the_model_transforms_the_image():
    class Normalised(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            return self.conv((x - 0.5) / 0.25)

    r = inspect_model(Normalised(), (3, 8, 8), images=("astronaut",), **FAST)
    assert r["model"]["image_chain"]["layers"] == []
    assert r["layers"][0]["reconstruction_psnr_db"] is None
    assert r["layers"][0]["relu_injective_fraction"] is not None   # traced inputs still used


def test_circular_layer_uses_fft_and_draws_its_spectrum(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="circular"))
    r = inspect_model(net, (3, 8, 8), images=None, out=tmp_path / "rep", **FAST)
    fb = r["layers"][0]["frame_bounds"]
    a = im.dense_oracle(net, 0, (3, 8, 8))
    s = np.linalg.svd(a, compute_uv=False)
    assert fb["method"] == "fft"
    assert _bounds_agree(fb, (s[-1] ** 2, s[0] ** 2), *a.shape)
    assert list((tmp_path / "rep" / "figures").glob("*spectrum.png"))


def test_layers_pattern(files):
    r = _report(files, "module", images=None, layers="3,5*")
    assert [L["name"] for L in r["layers"]] == ["3", "5"] and r["skipped"] == []
    with pytest.raises(ValueError, match="no conv layer matches"):
        _report(files, "module", images=None, layers="conv*")


# ---------------------------------------------------------------------------- the command
def test_cli_writes_report_and_figures(files, tmp_path, capsys):
    out = tmp_path / "report"
    model = files.get("onnx") or files["state_dict"]
    extra = [] if "onnx" in files else ["--input-shape", "3,8,8", "--geometry",
                                        files["geometry"]]
    assert cli.main(["inspect", str(model), *extra, "--out", str(out), "--images", "astronaut",
                     "--baseline-steps", "3", "--no-progress"]) == 0
    report = json.loads((out / "inspect.json").read_text())
    assert [L["name"] for L in report["layers"]] == (["conv0", "conv3", "conv5"]
                                                     if "onnx" in files else ["0", "3", "5"])
    md = (out / "inspect.md").read_text()
    assert "| layer |" in md and "## Skipped layers" in md
    figs = sorted(p.name for p in (out / "figures").iterdir())
    assert "reconstruction.png" in figs and sum(f.endswith("_filters.png") for f in figs) == 3
    assert sum(f.endswith("_mu.png") for f in figs) == 3
    for f in figs:  # every figure is linked from the Markdown
        assert f"figures/{f}" in md
    assert "report written to" in capsys.readouterr().out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".crelu-tmp")]


def test_cli_errors_are_one_line_and_exit_2(files, tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save(im.network(), evil)
    assert cli.main(["inspect", str(evil), "--input-shape", "3,8,8", "--geometry", "same",
                     "--no-progress", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "pickle" in err
    assert cli.main(["inspect", files["state_dict"], "--input-shape", "1,8,8", "--geometry",
                     "same", "--no-progress", "--out", str(tmp_path / "o")]) == 2
    assert "channel" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_output_folder_is_replaced_atomically(files, tmp_path, monkeypatch):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(ValueError, match="holds other files"):
        _report(files, "module", images=None, out=out)
    assert (out / "mine.txt").read_text() == "keep"
    (out / "mine.txt").unlink()
    _report(files, "module", images=None, out=out, figures=False)
    before = (out / "inspect.json").read_text()

    import verify.inspect_report as ir

    def broken(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(ir, "render_markdown", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        _report(files, "module", images=None, out=out, figures=False, layers="3")
    assert (out / "inspect.json").read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".crelu-tmp")]


def test_optimisation_baseline_forward_keeps_the_layer_geometry():
    """The baseline's differentiable forward is the theory's forward for dilated, circular and
    strided layers (it used to drop dilation and the padding mode). Control: the same weights
    with the dilation dropped give other features."""
    from theory import ConvLayer, Stage, deep_forward
    from verify.deep import _torch_forward

    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 3, 3, 3))
    x = rng.random((3, 12, 12))
    for kw in ({"padding": 2, "dilation": 2, "padding_mode": "circular"},
               {"padding": 1, "stride": 2}):
        stages = [Stage(ConvLayer(w, **kw), 2)]
        want = deep_forward(x, stages, "crelu").last
        got = _torch_forward(torch.from_numpy(x)[None], stages, "crelu")[0].numpy()
        assert np.allclose(got, want, atol=1e-12)
    dropped = [Stage(ConvLayer(w, padding=2, padding_mode="circular"), 2)]
    got = _torch_forward(torch.from_numpy(x)[None], dropped, "crelu")[0].numpy()
    want = deep_forward(x, [Stage(ConvLayer(w, padding=2, dilation=2,
                                            padding_mode="circular"), 2)], "crelu").last
    assert got.shape != want.shape or not np.allclose(got, want, atol=1e-6)


def test_iterative_bounds_and_the_time_budget():
    """D = 1200 > 1024: auto gives certified bounds (tiles) containing the dense SVD of the
    torch module; the Lanczos estimates agree within their residual; with a budget too small
    to finish them, the lower bound is undecided (null) and the upper bound is still the
    Lanczos estimate."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1))
    shape = (3, 20, 20)
    a = im.dense_oracle(net, 0, shape)
    s = np.linalg.svd(a, compute_uv=False)
    lo, hi = s[-1] ** 2, s[0] ** 2
    from verify.inspect import _WithDeadline, layer_bounds
    from theory import ConvLayer

    op = ConvLayer(net[0].weight.detach().double(), padding=1).at(shape)
    fb, up, why = layer_bounds(op, "auto", 1e-10, 1e-9)      # auto: certified, no Lanczos
    slack = 4 * max(a.shape) * EPS * hi
    assert fb.method == "tiles" and fb.certified and why is None
    assert fb.lower <= lo + slack and hi <= fb.upper + slack
    fb, up, why = layer_bounds(op, "iterative", 1e-10, None)
    assert fb.method == "iterative" and up is None and why is None
    assert abs(fb.lower - lo) <= 10 * fb.residual + 1e-9 * hi
    assert abs(fb.upper - hi) <= 10 * fb.residual + 1e-9 * hi
    fb, up, why = layer_bounds(op, "iterative", 1e-10, 1e-9)
    assert fb is None and "did not finish within the budget" in why
    from verify.inspect import UPPER_ONLY_TOL
    assert abs(up - hi) <= UPPER_ONLY_TOL * hi / (1 - UPPER_ONLY_TOL)   # ARPACK: |r| <= tol |theta|
    r = inspect_model(net, shape, images=None, bounds_budget=1e-9, bounds_method="iterative",
                      **FAST)["layers"][0]
    assert r["frame_bounds"]["lower"] is None and r["crelu_injective"] is None
    assert abs(r["frame_bounds"]["upper"] - hi) <= UPPER_ONLY_TOL * hi / (1 - UPPER_ONLY_TOL)
    # the proxy hands everything else to the operator
    assert _WithDeadline(op, 10).shape == op.shape


def test_images_from_files_and_none(tmp_path, capsys):
    from PIL import Image

    from verify.data import load_photo

    img = (load_photo("chelsea", size=40).transpose(1, 2, 0) * 255).round().astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "cat.png")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1))
    r = inspect_model(net, (3, 10, 10), images=(str(tmp_path / "cat.png"),), **FAST)
    assert r["model"]["images"] == ["cat.png"] and r["layers"][0]["relu_injective_fraction"] == 0
    with pytest.raises(ValueError, match="neither a bundled photo"):
        inspect_model(net, (3, 10, 10), images=(str(tmp_path / "nope.png"),), **FAST)
    r = inspect_model(net, (3, 10, 10), images=None, **FAST)
    assert r["layers"][0]["reconstruction_psnr_db"] is None
    assert r["layers"][0]["relu_injective_fraction"] is None
