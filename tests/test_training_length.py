"""verify.training_length: checkpoints of the suite, their statistics, freshness, figures."""

from __future__ import annotations

import dataclasses
import json

import pytest

from verify import training_length as tl
from verify.data.fashion_mnist import fashion_mnist_available

needs_fmnist = pytest.mark.skipif(not fashion_mnist_available(),
                                  reason="dataset-fashion-mnist not installed")


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory):
    """The suite's two models trained for 12 steps on 540 images, checkpoints at 3 and 12."""
    import verify.train as vt

    folder = tmp_path_factory.mktemp("suite")
    cfg = vt.TrainConfig(data="fashion-mnist", steps=12, batch_size=32, width=4, kernel1=5,
                         n_train=540, n_test=270, head="dense", shift=1, checkpoints=(3, 12))
    suite = {f"{m}-fashion-mnist": dataclasses.replace(cfg, model=m) for m in ("relu", "crelu")}
    data = vt.load_dataset("fashion-mnist", n_train=540, n_test=270)
    for stem, c in suite.items():
        vt.train(c, out_dir=folder, stem=stem, dataset=data, progress=False)
    return folder, suite


@needs_fmnist
def test_training_length_measures_every_checkpoint(tiny_suite, monkeypatch, tmp_path):
    import verify.train as vt

    folder, suite = tiny_suite
    monkeypatch.setattr(vt, "SUITE", suite)
    res = tl.run_training_length(folder, reps=50, boot=50, n_images=200, out=tmp_path / "r.json",
                                 say=lambda _m: None)
    again = tl.read_results(tmp_path / "r.json")
    assert again["models"] == json.loads(json.dumps(res["models"]))
    for short in ("relu", "crelu"):
        rows = res["models"][short]
        assert [r["step"] for r in rows] == [0, 3, 12]
        assert rows[0]["label"] == "init" and rows[-1]["file"] == f"{short}-fashion-mnist.safetensors"
        for r in rows:
            assert r["gap"] == pytest.approx(r["train_accuracy"] - r["test_accuracy"])
            assert len(r["pairing"]) == 3 and set(r["invariance"]) == {"translation", "rotation",
                                                                        "scaling"}
            p = r["pairing"][0]
            assert p["iid_interval95"][0] <= p["iid_mean"] <= p["iid_interval95"][1]
            assert 0 < p["signflip_p"] <= 1 and 0 < p["iid_tail_p"] <= 1
        # the initial model is what the card's seed rebuilds, at chance level here
        assert rows[0]["test_accuracy"] < 0.5
    assert len(res["invariance_difference"]) == 3
    # the stored pairing numbers are the library's (an independent recomputation)
    from theory.pairing import pairing
    from verify.train import load_trained

    model, _ = load_trained(folder / "checkpoints" / "crelu-fashion-mnist-step3.safetensors")
    assert res["models"]["crelu"][1]["pairing"][1]["mean_mu"] == \
        pytest.approx(pairing(model.conv_weights()[1]).mean)
    # freshness: passes on the weights the numbers came from, fails on changed weights
    tl.check_fresh(res, folder)
    path = folder / "checkpoints" / "relu-fashion-mnist-step3.safetensors"
    good = path.read_bytes()
    from safetensors.torch import load_file, save_file

    state = load_file(str(path))
    state["body.0.weight"] = state["body.0.weight"] + 1e-3
    save_file(state, str(path), metadata={"format": "pt"})
    try:
        with pytest.raises(ValueError, match="other weights"):
            tl.check_fresh(res, folder)
    finally:
        path.write_bytes(good)
    figs = tl.figures(res, tmp_path / "figs")
    assert [p.rsplit("/", 1)[-1] for p in figs] == list(tl.FIGURES.values())
    assert "sign-flip p" in tl.markdown(res)


def test_checkpoint_points_refuses_a_suite_without_checkpoints(tmp_path):
    import verify.train as vt

    data = vt.load_dataset("photos-grey", n_train=270, n_test=54)
    cfg = vt.TrainConfig(model="relu", data="photos-grey", steps=2, batch_size=32, width=4)
    vt.train(cfg, out_dir=tmp_path, stem="relu-fashion-mnist", dataset=data, progress=False)
    with pytest.raises(ValueError, match="no checkpoints"):
        tl.checkpoint_points("relu-fashion-mnist", tmp_path)


@needs_fmnist
def test_committed_training_length_results_match_the_shipped_weights():
    if not tl.RESULTS_FILE.is_file():
        pytest.skip("verify/results/training_length.json not generated yet")
    res = tl.read_results()
    tl.check_fresh(res)
    for short in ("relu", "crelu"):
        rows = res["models"][short]
        assert [r["label"] for r in rows][0] == "init" and rows[-1]["test_accuracy"] >= 0.91


def test_command_defaults_are_the_experiment_defaults():
    """`crelu train-length` repeats the experiment's defaults so that --help stays light."""
    from verify import train_length_cmd as cmd

    assert (cmd.REPS, cmd.BOOT) == (tl.REPS, tl.BOOT)
    assert tl.RESULTS_FILE.as_posix().endswith(cmd.RESULTS)
