"""verify.models, verify.train and `crelu train`: smoke runs, cards, reproducibility, bad input."""

from __future__ import annotations

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
        assert evaluate(model, x, data.y_test) == card["test_accuracy"]


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
