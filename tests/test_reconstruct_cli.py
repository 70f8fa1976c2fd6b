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
    img = reconstruct_cmd.read_image(photo, multiple=3)
    assert img.shape == (3, 15, 15) and 0 <= img.min() and img.max() <= 1
