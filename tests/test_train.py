"""verify.models, verify.train and `crelu train`: smoke runs, cards, reproducibility, bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from verify.cli import main
from verify.data.fashion_mnist import fashion_mnist_available
from verify.models import MODEL_NAMES, AllConvNet, parameter_count
from verify.train import (
    SUITE,
    WEIGHTS_DIR,
    Dataset,
    TrainConfig,
    evaluate,
    initial_model,
    load_dataset,
    load_trained,
    train,
)

SMALL = dict(steps=16, batch_size=32, width=4, kernel1=5, n_train=540, n_test=270, log_every=8)


@pytest.fixture(scope="module")
def photos():
    return load_dataset("photos-grey", seed=0, n_train=540, n_test=270)


def test_model_family_shapes_and_parameter_order():
    x = torch.zeros(2, 1, 28, 28)
    counts = {}
    for name in MODEL_NAMES:
        model = AllConvNet(name, width=8)
        assert model(x).shape == (2, 10)
        assert len(model.conv_weights()) == 3
        counts[name] = parameter_count(model)
    # the paper's variants: half-filter CReLU is the smallest, doubled ReLU the largest
    assert counts["crelu_half"] < counts["relu"] == counts["avr"] < counts["crelu"]
    assert counts["crelu"] < counts["relu_double"]
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        AllConvNet("relu")(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="unknown model"):
        AllConvNet("tanh")
    torch.manual_seed(0)
    ref = AllConvNet("relu", width=4).conv_weights()[0]
    torch.manual_seed(0)
    small = AllConvNet("relu", width=4, init_scale1=0.1)
    torch.testing.assert_close(small.conv_weights()[0], 0.1 * ref)
    assert small.config["init_scale1"] == 0.1
    with pytest.raises(ValueError, match="init_scale1"):
        AllConvNet("relu", init_scale1=0.0)


@pytest.mark.parametrize("name", ["relu", "crelu"])
def test_smoke_training_saves_a_reloadable_model_and_card(tmp_path, photos, name):
    cfg = TrainConfig(model=name, data="photos-grey", **SMALL)
    res = train(cfg, out_dir=tmp_path, dataset=photos, progress=False)
    card = json.loads(res.card_path.read_text())
    for key in ("data", "steps", "seed", "test_accuracy", "parameter_count", "seconds", "log",
                "normalisation", "model_config", "threads", "torch"):
        assert key in card
    assert card["steps"] == 16 and card["parameter_count"] == parameter_count(res.model)
    assert card["log"][0]["step"] == 8 and np.isfinite(card["log"][-1]["loss"])
    model, card2 = load_trained(res.weights_path)
    x = torch.from_numpy(photos.x_test[:8])
    torch.testing.assert_close(model(x), res.model.eval()(x), rtol=0, atol=0)
    assert card2 == card
    # the card's seed reproduces the initial weights the run started from
    init = initial_model(card)
    assert init.conv_weights()[0].shape == res.model.conv_weights()[0].shape


def test_training_is_bit_for_bit_reproducible(photos):
    cfg = TrainConfig(model="relu", data="photos-grey", **{**SMALL, "steps": 8})
    a = train(cfg, dataset=photos, progress=False).model.state_dict()
    b = train(cfg, dataset=photos, progress=False).model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_shuffled_labels_change_the_training_labels(photos):
    cfg = TrainConfig(model="relu", data="photos-grey", shuffle_labels=True, **{**SMALL, "steps": 4})
    assert train(cfg, dataset=photos, progress=False).card["shuffle_labels"] is True


@pytest.mark.parametrize("kwargs, match", [
    (dict(model="tanh"), "unknown model"),
    (dict(steps=0), ">= 1"),
    (dict(lr=-1.0), "lr > 0"),
    (dict(lr=float("nan")), "lr > 0"),
])
def test_bad_configs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_bad_datasets_are_refused(tmp_path):
    x = np.zeros((4, 1, 8, 8), np.float32)
    y = np.zeros(4, np.int64)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        Dataset("d", x[:, 0], y, x, y, 2)
    with pytest.raises(ValueError, match="NaN"):
        Dataset("d", np.full_like(x, np.nan), y, x, y, 2)
    with pytest.raises(ValueError, match="labels must be in"):
        Dataset("d", x, y + 5, x, y, 2)
    with pytest.raises(ValueError, match="differ in shape"):
        Dataset("d", x, y, np.zeros((4, 1, 9, 9), np.float32), y, 2)
    with pytest.raises(ValueError, match="empty"):
        Dataset("d", x[:0], y[:0], x, y, 2)
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="--root"):
        load_dataset("cifar10")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset("cifar10", root=tmp_path / "nowhere")
    const = Dataset("photos-grey", np.ones((4, 1, 8, 8), np.float32), y, x, y, 2)
    with pytest.raises(ValueError, match="constant"):
        train(TrainConfig(data="photos-grey", steps=1), dataset=const, progress=False)


def test_load_trained_refuses_missing_corrupt_and_mismatched_files(tmp_path, photos):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_trained(tmp_path / "none.safetensors")
    res = train(TrainConfig(model="relu", data="photos-grey", **{**SMALL, "steps": 2}),
                out_dir=tmp_path, stem="m", dataset=photos, progress=False)
    good = res.weights_path.read_bytes()
    res.weights_path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_trained(res.weights_path)
    res.weights_path.write_bytes(good)
    card = json.loads(res.card_path.read_text())
    card["model_config"]["width"] = 8
    res.card_path.write_text(json.dumps(card))
    with pytest.raises(ValueError, match="do not match"):
        load_trained(res.weights_path)
    res.card_path.write_text("{not json")
    with pytest.raises(ValueError, match="not a training card"):
        load_trained(res.weights_path)


def test_cli_train_and_its_errors(tmp_path, capsys):
    rc = main(["train", "relu", "--data", "photos-grey", "--steps", "3", "--width", "4",
               "--n-train", "270", "--n-test", "54", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    assert (tmp_path / "relu-photos-grey-s0.safetensors").is_file()
    assert "test accuracy" in capsys.readouterr().out
    rc = main(["train", "relu", "--data", "cifar10", "--root", str(tmp_path / "nowhere"),
               "--no-progress"])
    assert rc == 2 and "does not exist" in capsys.readouterr().err


@pytest.mark.skipif(not fashion_mnist_available(), reason="dataset-fashion-mnist not installed")
def test_shipped_weights_reproduce_their_cards():
    for stem, cfg in SUITE.items():
        path = WEIGHTS_DIR / f"{stem}.safetensors"
        if not path.is_file():
            pytest.skip(f"{path} not generated yet (crelu train suite)")
        model, card = load_trained(path)
        assert card["model"] == cfg.model and card["steps"] == cfg.steps
        assert card["model_config"]["kernel1"] == cfg.kernel1
        data = load_dataset(card["data"], seed=card["seed"], n_test=card["n_test"])
        norm = card["normalisation"]
        x = ((data.x_test - norm["mean"]) / norm["std"]).astype(np.float32)
        torch.set_num_threads(card["threads"])
        assert evaluate(model, x, data.y_test) == card["test_accuracy"]
        for ck in card.get("checkpoints", []):       # every shipped checkpoint, too
            m, c = load_trained(WEIGHTS_DIR / ck["file"])
            assert c["steps"] == ck["step"] and c["test_accuracy"] == ck["test_accuracy"]
            assert evaluate(m, x, data.y_test) == ck["test_accuracy"], ck["file"]


@pytest.mark.skipif(not fashion_mnist_available(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_smoke_training(tmp_path):
    cfg = TrainConfig(model="crelu", data="fashion-mnist", **{**SMALL, "steps": 8})
    res = train(cfg, out_dir=tmp_path, progress=False)
    assert res.card["n_train"] == 540 and 0.0 <= res.card["test_accuracy"] <= 1.0


def test_full_profile_retrains_the_suite_once_per_report(tmp_path, monkeypatch):
    import verify.train as vt

    tiny = {"tiny": TrainConfig(model="relu", data="photos-grey", **{**SMALL, "steps": 2})}
    monkeypatch.setattr(vt, "SUITE", tiny)
    model, card = vt.suite_model("tiny", retrain=True, out_dir=tmp_path)
    assert (tmp_path / "tiny.safetensors").is_file() and card["steps"] == 2
    again, _ = vt.suite_model("tiny", retrain=True, out_dir=tmp_path)
    assert again is model                       # cached: one training run per report folder
    with pytest.raises(ValueError, match="unknown suite model"):
        vt.suite_model("nope")


# ----------------------------------------------------------------------------- new features
def test_lr_factor_warms_up_linearly_then_decays_by_a_cosine():
    cfg = TrainConfig(steps=10, warmup_steps=4)
    assert [cfg.lr_factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    # cosine over the remaining 6 steps: 1 at step 4, 0.5 halfway, 0 at the end
    assert cfg.lr_factor(4) == 1.0 and cfg.lr_factor(7) == pytest.approx(0.5)
    assert cfg.lr_factor(10) == pytest.approx(0.0, abs=1e-15)
    old = TrainConfig(steps=10)          # no warm-up: the previous schedule exactly
    assert [old.lr_factor(s) for s in range(10)] == \
        [0.5 * (1 + np.cos(np.pi * s / 10)) for s in range(10)]
    for bad, match in ((dict(steps=4, warmup_steps=4), "warmup_steps"),
                       (dict(shift=-1), "shift"), (dict(steps=5, checkpoints=(6,)), "checkpoint")):
        with pytest.raises(ValueError, match=match):
            TrainConfig(**bad)


def test_shifted_matches_a_brute_force_translation_and_flip():
    from verify.train import shifted

    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 2, 5, 7)).astype(np.float32)
    out = shifted(x, np.random.default_rng(1), 2, True, fill=-9.0)
    # the same draws, replayed: dy, dx per image, then the flip coin per image
    r = np.random.default_rng(1)
    dy, dx, flip = r.integers(0, 5, 6), r.integers(0, 5, 6), r.random(6) < 0.5
    for i in range(6):
        want = np.full((2, 5, 7), -9.0, np.float32)
        for a in range(5):
            for b in range(7):
                sa, sb = a + dy[i] - 2, b + dx[i] - 2          # source pixel
                if 0 <= sa < 5 and 0 <= sb < 7:
                    want[:, a, b] = x[i, :, sa, sb]
        if flip[i]:
            want = want[:, :, ::-1]
        np.testing.assert_array_equal(out[i], want)
    assert out.flags.c_contiguous and out.dtype == np.float32
    np.testing.assert_array_equal(shifted(x, rng, 0, False, 0.0), x)


def test_checkpoints_do_not_change_the_training_run(tmp_path, photos):
    cfg = TrainConfig(model="crelu", data="photos-grey", **{**SMALL, "steps": 10})
    plain = train(cfg, dataset=photos, progress=False)
    ck = train(dataclasses.replace(cfg, checkpoints=(2, 5, 10)), out_dir=tmp_path, stem="m",
               dataset=photos, progress=False)
    for k, v in plain.model.state_dict().items():
        assert torch.equal(v, ck.model.state_dict()[k]), k
    assert [c["step"] for c in ck.card["checkpoints"]] == [2, 5, 10]
    assert ck.card["checkpoints"][-1]["file"] == "m.safetensors"
    # a saved checkpoint reloads to the state it had, and its card's accuracy is reproduced
    model, card = load_trained(tmp_path / "checkpoints" / "m-step5.safetensors")
    for k, v in ck.checkpoints[1]["state"].items():
        assert torch.equal(v, model.state_dict()[k]), k
    norm = card["normalisation"]
    x = ((photos.x_test - norm["mean"]) / norm["std"]).astype(np.float32)
    assert card["steps"] == 5 and evaluate(model, x, photos.y_test) == card["test_accuracy"]
    # the checkpoint after 5 steps is not the final model (the check can tell them apart)
    assert not all(torch.equal(v, ck.model.state_dict()[k]) for k, v in model.state_dict().items())


def test_dense_head_and_depth_multiplier():
    x = torch.zeros(2, 1, 28, 28)
    m = AllConvNet("crelu", width=4, head="dense", depth_mult=3)
    assert m(x).shape == (2, 10)
    assert m.classifier.weight.shape == (10, 2 * 12 * 7 * 7)   # CReLU doubles conv3's 12 filters
    assert m.config["head"] == "dense" and m.config["depth_mult"] == 3
    assert "head" not in AllConvNet("relu", width=4).config     # old cards stay as they were
    with pytest.raises(ValueError, match="unknown head"):
        AllConvNet("relu", head="mlp")
    with pytest.raises(ValueError, match="depth_mult"):
        AllConvNet("relu", depth_mult=0)


def _sha256(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_training_is_bit_for_bit_reproducible_in_fresh_processes(tmp_path, photos):
    """Two `crelu train` runs in two fresh interpreters (at the same time) write byte-identical
    weights and checkpoints, identical to the same config trained in this process."""
    import subprocess
    import sys

    args = ["-m", "verify.cli", "train", "crelu", "--data", "photos-grey", "--steps", "12",
            "--batch-size", "32", "--width", "4", "--kernel1", "5", "--n-train", "540",
            "--n-test", "270", "--shift", "1", "--hflip", "--warmup-steps", "2",
            "--checkpoints", "3", "12", "--threads", "1", "--no-progress"]
    procs = [subprocess.Popen([sys.executable, *args, "--out", str(tmp_path / d)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for d in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    files = ["crelu-photos-grey-s0.safetensors", "checkpoints/crelu-photos-grey-s0-step3.safetensors"]
    for f in files:
        assert _sha256(tmp_path / "a" / f) == _sha256(tmp_path / "b" / f), f
    cfg = TrainConfig(model="crelu", data="photos-grey", steps=12, batch_size=32, width=4,
                      kernel1=5, n_train=540, n_test=270, shift=1, hflip=True, warmup_steps=2,
                      checkpoints=(3, 12), threads=1)
    train(cfg, out_dir=tmp_path / "here", dataset=photos, progress=False)
    for f in files:
        assert _sha256(tmp_path / "here" / f) == _sha256(tmp_path / "a" / f), f
    # the comparison can fail: one more step gives other bytes
    train(dataclasses.replace(cfg, steps=13, checkpoints=(3,)), out_dir=tmp_path / "other",
          dataset=photos, progress=False)
    assert _sha256(tmp_path / "other" / files[0]) != _sha256(tmp_path / "a" / files[0])


@pytest.mark.slow
@pytest.mark.skipif(not fashion_mnist_available(), reason="dataset-fashion-mnist not installed")
def test_suite_command_regenerates_the_shipped_weights_bit_for_bit(tmp_path):
    """`crelu train suite` in a fresh process reproduces verify/weights byte for byte
    (about 15 minutes on 2 free cores; the card records torch version and threads)."""
    import subprocess
    import sys

    out = tmp_path / "suite"
    subprocess.run([sys.executable, "-m", "verify.cli", "train", "suite", "--out", str(out),
                    "--no-progress"], check=True)
    for stem in SUITE:
        card = json.loads((WEIGHTS_DIR / f"{stem}.json").read_text())
        if card["torch"] != torch.__version__:
            pytest.skip(f"shipped weights were trained with torch {card['torch']}")
        names = [f"{stem}.safetensors"] + [c["file"] for c in card["checkpoints"]
                                            if c["file"] != f"{stem}.safetensors"]
        for name in names:
            assert _sha256(out / name) == _sha256(WEIGHTS_DIR / name), name
