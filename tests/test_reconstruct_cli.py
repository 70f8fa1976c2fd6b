"""``crelu reconstruct``: panel, numbers, weights, and clear errors with nothing half-written."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from verify import cli
from verify import deep as vdeep
from verify import reconstruct_cmd


@pytest.fixture
def photo(tmp_path):
    from verify.data import load_photo

    img = (load_photo("astronaut", size=16).transpose(1, 2, 0) * 255).round().astype(np.uint8)
    path = tmp_path / "crop.png"
    Image.fromarray(img).save(path)
    return path


def _run(*args):
    return cli.main(["reconstruct", *map(str, args), "--no-progress", "--baseline-steps", "5"])


def test_writes_panel_and_prints_numbers(photo, tmp_path, capsys):
    out = tmp_path / "panel.png"
    assert _run(photo, "--out", out) == 0
    text = capsys.readouterr().out
    assert out.is_file() and Image.open(out).size[0] > 0
    rows = {line.split()[0]: line.split() for line in text.splitlines()
            if line[:1].isalpha() and line.split()[0] in ("crelu", "relu", "optimisation")}
    assert "crelu stage 1:" in text  # per-stage LSMR details
    assert set(rows) == {"crelu", "relu", "optimisation"}
    psnr = {k: float(v[1]) for k, v in rows.items()}
    assert psnr["crelu"] >= 40 and psnr["crelu"] > psnr["relu"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".crelu-")]


def test_jpeg_no_pool_and_one_stage(photo, tmp_path):
    jpg = tmp_path / "crop.jpg"
    Image.open(photo).save(jpg, quality=95)
    assert _run(jpg, "--out", tmp_path / "a.png", "--no-pool", "--stages", "1") == 0
    assert (tmp_path / "a.png").is_file()


def test_weights_from_a_safetensors_path(photo, tmp_path, capsys):
    from safetensors.numpy import save_file

    w = vdeep.random_weights(np.random.default_rng(1), 3, (12, 96))
    path = tmp_path / "w.safetensors"
    save_file({"stage1.weight": w[0], "stage2.weight": w[1]}, str(path))
    assert _run(photo, "--out", tmp_path / "p.png", "--weights", path) == 0
    assert str(path) in capsys.readouterr().out


@pytest.mark.parametrize("setup, message", [
    ("missing", "does not exist"),
    ("garbage", "cannot read"),
    ("large", "more than"),
    ("no-folder", "does not exist"),
    ("bad-weights", "not a readable safetensors"),
    ("trained-absent", "no trained weights"),
])
def test_errors_are_clear_and_write_nothing(photo, tmp_path, capsys, monkeypatch, setup,
                                           message):
    out = tmp_path / "panel.png"
    extra: list = []
    image = photo
    if setup == "missing":
        image = tmp_path / "nope.png"
    elif setup == "garbage":
        image = tmp_path / "garbage.png"
        image.write_bytes(b"not an image at all")
    elif setup == "large":
        extra = ["--max-pixels", "100"]
    elif setup == "no-folder":
        out = tmp_path / "missing" / "panel.png"
    elif setup == "bad-weights":
        bad = tmp_path / "w.safetensors"
        bad.write_bytes(b"\x00" * 20)
        extra = ["--weights", bad]
    elif setup == "trained-absent":
        monkeypatch.setattr(vdeep, "WEIGHTS_DIR", tmp_path / "empty")
        extra = ["--weights", "trained"]
    assert _run(image, "--out", out, *extra) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".crelu-")]


def test_failure_mid_run_leaves_no_file(photo, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise ValueError("solver exploded")

    monkeypatch.setattr(vdeep, "reconstruct_all", boom)
    out = tmp_path / "panel.png"
    assert _run(photo, "--out", out) == 2
    assert not out.exists()


def test_stage_widths_and_read_image(photo):
    from verify.deep import stage_widths

    assert stage_widths(2) == (16, 224) and stage_widths(3, first=2, factor=3) == (2, 6, 18)
    with pytest.raises(ValueError):
        stage_widths(0)
    img, notes = reconstruct_cmd.read_image(photo, multiple=3)
    assert img.shape == (3, 15, 15) and 0 <= img.min() and img.max() <= 1
    assert any("cropped from 16x16 to 15x15" in n for n in notes)


def _grey16(tmp_path):
    a = (np.arange(16 * 16).reshape(16, 16) * 200).astype(np.uint16)   # values up to 51000
    path = tmp_path / "g16.png"
    Image.fromarray(a).save(path)
    return path, a / 65535.0


def test_16_bit_png_is_scaled_by_its_depth_not_clipped(tmp_path):
    path, expected = _grey16(tmp_path)
    img, notes = reconstruct_cmd.read_image(path)
    assert img.shape == (1, 16, 16)                      # greyscale stays one channel
    assert np.allclose(img[0], expected, rtol=0, atol=1e-12)
    assert any("16-bit" in n or "integer greyscale" in n for n in notes)
    # negative control: the earlier 8-bit conversion saturates (the silent wrong answer)
    with Image.open(path) as im:
        saturated = np.asarray(im.convert("RGB"), dtype=float)[..., 0] / 255.0
    assert not np.allclose(saturated, expected, atol=1e-3)


@pytest.mark.parametrize("mode, note", [("P", "palette"), ("RGBA", "alpha dropped"),
                                        ("CMYK", "CMYK"), ("LA", "alpha dropped"),
                                        ("L", None)])
def test_image_modes_are_converted_and_said(photo, tmp_path, mode, note):
    path = tmp_path / f"m.{'jpg' if mode == 'CMYK' else 'png'}"
    with Image.open(photo) as im:
        im.convert(mode).save(path)
    img, notes = reconstruct_cmd.read_image(path)
    assert img.shape[0] == (1 if mode in ("L", "LA") else 3)
    assert 0 <= img.min() and img.max() <= 1
    if note:
        assert any(note in n for n in notes)


def test_greyscale_image_runs_as_one_channel(tmp_path, capsys):
    path, _ = _grey16(tmp_path)
    assert _run(path, "--out", tmp_path / "p.png", "--stages", "1") == 0
    text = capsys.readouterr().out
    assert "16x16" in text and "kept as one channel" in text
    assert "CReLU column: CReLU with switches (frames not certified)" in text


def test_all_black_image_has_no_nan(tmp_path, capsys):
    path = tmp_path / "black.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path)
    assert _run(path, "--out", tmp_path / "p.png", "--stages", "1") == 0
    text = capsys.readouterr().out
    assert "nan" not in text.lower() and "abs. error" in text and "all zero" in text


def test_zero_weights_are_reported_and_exit_1(photo, tmp_path, capsys):
    from safetensors.numpy import save_file

    path = tmp_path / "zero.safetensors"
    save_file({"stage1.weight": np.zeros((16, 3, 3, 3))}, str(path))
    assert _run(photo, "--out", tmp_path / "p.png", "--weights", path, "--stages", "1") == 1
    captured = capsys.readouterr()
    assert "NOT a frame" in captured.out and "did not do what was asked" in captured.err


def test_maxiter_1_is_reported_and_exits_1(tmp_path, capsys):
    from verify.data import load_photo

    img = (load_photo("astronaut", size=32).transpose(1, 2, 0) * 255).round().astype(np.uint8)
    path = tmp_path / "crop32.png"      # 3x32x32 = 3072 unknowns: CGLS, not the dense solve
    Image.fromarray(img).save(path)
    assert _run(path, "--out", tmp_path / "p.png", "--stages", "1", "--maxiter", "1") == 1
    assert "did not converge" in capsys.readouterr().err


def test_certify_labels_the_column_exact(photo, tmp_path, capsys):
    assert _run(photo, "--out", tmp_path / "p.png", "--stages", "1", "--certify") == 0
    assert "CReLU column: CReLU, exact with switches (certified frames)" in capsys.readouterr().out


def test_unwritable_output_is_refused_before_any_work(photo, tmp_path, monkeypatch, capsys):
    import os

    called = []
    monkeypatch.setattr(vdeep, "reconstruct_all", lambda *a, **k: called.append(1))
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    assert _run(photo, "--out", tmp_path / "p.png") == 2
    assert "cannot write" in capsys.readouterr().err and not called


def test_budget_caps_relu_at_crelus_iterations_and_times_the_baseline():
    """--budget crelu (the default): each ReLU stage is capped at the CReLU column's
    iterations of that stage (times the ratio of the input channels) and the baseline stops
    on the CReLU column's wall time (not on its step cap); control, budget off: ReLU runs
    past those caps and the baseline runs exactly its steps."""
    from verify.data import load_photo

    image = load_photo("astronaut", size=32)
    weights = vdeep.random_weights(np.random.default_rng(0), 3)
    on = {r.name: r for r in vdeep.reconstruct_all(image, weights, 2, 3000, budget=True)}
    crelu_its = [s["iterations"] for s in reversed(on["crelu"].info["stages"])]
    relu = on["relu"].info
    # stage 1: the same channels (RGB); stage 2: half (16 ReLU vs 32 CReLU channels)
    assert relu["capped_at"] == [max(1, crelu_its[0]), max(1, 2 * crelu_its[1])]
    assert all(s["iterations"] <= c for s, c in
               zip(reversed(relu["stages"]), relu["capped_at"]))
    opt = on["optimisation"].info
    assert opt["budget_seconds"] == on["crelu"].seconds and 0 < opt["steps"] < 3000
    per_step = on["optimisation"].seconds / max(opt["steps"], 1)
    assert on["optimisation"].seconds <= on["crelu"].seconds + 3 * per_step + 0.5
    assert all(np.isfinite(r.info["forward_units"]) for r in on.values())

    off = {r.name: r for r in vdeep.reconstruct_all(image, weights, 2, 7, budget=False)}
    assert "capped_at" not in off["relu"].info and off["optimisation"].info["steps"] == 7
    assert any(s["iterations"] > c for s, c in
               zip(reversed(off["relu"].info["stages"]), relu["capped_at"]))


def test_budget_is_said_in_the_output(tmp_path, capsys):
    from verify.data import load_photo

    img = (load_photo("astronaut", size=32).transpose(1, 2, 0) * 255).round().astype(np.uint8)
    path = tmp_path / "crop32.png"
    Image.fromarray(img).save(path)
    assert cli.main(["reconstruct", str(path), "--out", str(tmp_path / "p.png"),
                     "--no-progress", "--baseline-steps", "20"]) == 0
    text = capsys.readouterr().out
    assert "the ReLU projection was capped at the CReLU column's iterations" in text
    assert "the optimisation baseline ran" in text and "units" in text
    assert cli.main(["reconstruct", str(path), "--out", str(tmp_path / "q.png"),
                     "--no-progress", "--baseline-steps", "3", "--budget", "none"]) == 0
    assert "budget:" not in capsys.readouterr().out
