"""Seeded CPU training of the :mod:`verify.models` family, with safetensors weights and a card.

A run writes two files into ``out_dir``: ``<stem>.safetensors`` (the ``state_dict``, float32)
and ``<stem>.json``, the *card*: data set, steps, batch size, optimiser settings, seed, thread
count, test accuracy, parameter count, wall time, the input normalisation, the model config
and an early log of loss and accuracy. :func:`load_trained` rebuilds the model from the two.

Reproducibility: the data order, initialisation and label shuffling all come from ``seed``;
with the same torch version and thread count a run is repeatable bit-for-bit on the CPU
(the card records both).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from verify.atomic import atomic_path, write_text
from verify.configs import DATASETS as DATASETS
from verify.configs import TrainConfig as TrainConfig
from verify.models import AllConvNet, parameter_count


@dataclasses.dataclass
class Dataset:
    """Train/test arrays plus a name; images float32 (N, C, H, W), labels int64."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if x.ndim != 4:
                raise ValueError(f"{self.name} {split} images must be (N, C, H, W), got {x.shape}")
            if len(x) == 0:
                raise ValueError(f"{self.name} {split} split is empty")
            if y.shape != (len(x),):
                raise ValueError(f"{self.name} {split}: {y.shape} labels for {len(x)} images")
            if not np.isfinite(x).all():
                raise ValueError(f"{self.name} {split} images contain NaN or Inf")
            if y.min() < 0 or y.max() >= self.n_classes:
                raise ValueError(f"{self.name} {split} labels must be in 0..{self.n_classes - 1}")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(f"{self.name}: train images {self.x_train.shape[1:]} and test images "
                             f"{self.x_test.shape[1:]} differ in shape")


def load_dataset(name: str, seed: int = 0, root: str | os.PathLike | None = None,
                 n_train: int | None = None, n_test: int | None = None) -> Dataset:
    """A data set by name (see :data:`DATASETS`); ``root`` is the folder for file-based sets.

    ``fashion-mnist`` (Debian files, 10 classes), ``cifar10`` (python-format folder given by
    ``root``), ``photos-grey`` / ``photos-grey-white`` / ``photos-colour`` (which bundled photo
    a 28x28 crop came from; grey, grey + ZCA-whitened, colour). ``n_train`` / ``n_test`` keep a
    seeded random subset.
    """
    if name == "fashion-mnist":
        from verify.data.fashion_mnist import load_fashion_mnist

        xtr, ytr = load_fashion_mnist("train", root)
        xte, yte = load_fashion_mnist("test", root)
        k = 10
    elif name == "cifar10":
        from verify.data.cifar import load_cifar10

        if root is None:
            raise ValueError("cifar10 needs --root: the unpacked cifar-10-batches-py folder")
        xtr, ytr = load_cifar10(root, "train")
        xte, yte = load_cifar10(root, "test")
        k = 10
    elif name.startswith("photos-"):
        from verify.data.images import ALL_COLOUR_PHOTOS
        from verify.data.photo_task import photo_task

        variant = name[len("photos-"):]
        if variant not in ("grey", "grey-white", "colour"):
            raise ValueError(f"unknown data set {name!r}; choose one of {DATASETS}")
        xtr, ytr, xte, yte = photo_task(n_train or 20000, n_test or 4000, size=28,
                                        grey=variant != "colour", whiten=variant == "grey-white",
                                        seed=seed)
        k = len(ALL_COLOUR_PHOTOS)
    else:
        raise ValueError(f"unknown data set {name!r}; choose one of {DATASETS}")
    rng = np.random.default_rng([seed, 1])
    if n_train is not None and n_train < len(xtr):
        idx = np.sort(rng.choice(len(xtr), n_train, replace=False))
        xtr, ytr = xtr[idx], ytr[idx]
    if n_test is not None and n_test < len(xte):
        idx = np.sort(rng.choice(len(xte), n_test, replace=False))
        xte, yte = xte[idx], yte[idx]
    return Dataset(name, xtr, ytr, xte, yte, k)


@dataclasses.dataclass
class TrainResult:
    model: AllConvNet
    card: dict[str, Any]
    weights_path: Path | None
    card_path: Path | None


def evaluate(model: AllConvNet, x: np.ndarray, y: np.ndarray, batch: int = 1000) -> float:
    """Accuracy of ``model`` on (x, y)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = model(torch.from_numpy(x[i:i + batch]))
            correct += int((out.argmax(1).numpy() == y[i:i + batch]).sum())
    model.train()
    return correct / len(x)


def train(config: TrainConfig, out_dir: str | os.PathLike | None = None, stem: str | None = None,
          root: str | os.PathLike | None = None, progress: bool = True,
          dataset: Dataset | None = None, log: Callable[[str], None] | None = None) -> TrainResult:
    """Train one model on the CPU; save weights + card in ``out_dir`` if given.

    Parameters
    ----------
    config : TrainConfig
    out_dir : folder for ``<stem>.safetensors`` and ``<stem>.json`` (none saved if None)
    stem : file stem, default ``<model>-<data>-s<seed>``
    root : data folder for file-based data sets
    progress : tqdm bar
    dataset : a preloaded :class:`Dataset` (skips loading; its name must match ``config.data``)
    log : called with each early log line (default: ``tqdm.write`` when ``progress``)

    Notes
    -----
    AdamW with a cosine learning-rate schedule; inputs standardised by the training set's
    scalar mean and standard deviation (recorded in the card, applied again by
    :func:`load_trained` users through ``card["normalisation"]``).
    """
    t0 = time.perf_counter()
    torch.set_num_threads(config.threads)
    if dataset is None:
        dataset = load_dataset(config.data, seed=config.seed, root=root, n_train=config.n_train,
                               n_test=config.n_test)
    elif dataset.name != config.data:
        raise ValueError(f"dataset {dataset.name!r} does not match config.data {config.data!r}")
    mean, std = float(dataset.x_train.mean()), float(dataset.x_train.std())
    if not std > 0:
        raise ValueError(f"{dataset.name}: training images are constant; cannot standardise")
    xtr = ((dataset.x_train - mean) / std).astype(np.float32)
    xte = ((dataset.x_test - mean) / std).astype(np.float32)
    ytr = dataset.y_train.copy()
    rng = np.random.default_rng([config.seed, 2])
    if config.shuffle_labels:
        ytr = rng.permutation(ytr)
    torch.manual_seed(config.seed)
    model = AllConvNet(config.model, in_channels=xtr.shape[1], n_classes=dataset.n_classes,
                       width=config.width, kernel1=config.kernel1, init_scale1=config.init_scale1)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, config.steps) / config.steps)))
    say = log or (tqdm.write if progress else (lambda _msg: None))
    history: list[dict[str, float]] = []
    order = rng.permutation(len(xtr))
    pos, running, n_run, correct = 0, 0.0, 0, 0
    bar = tqdm(range(config.steps), desc=f"train {config.model}", unit="step", disable=not progress)
    for step in bar:
        if pos + config.batch_size > len(order):
            order, pos = rng.permutation(len(xtr)), 0
        idx = order[pos:pos + config.batch_size]
        pos += config.batch_size
        xb, yb = torch.from_numpy(xtr[idx]), torch.from_numpy(ytr[idx])
        out = model(xb)
        loss = torch.nn.functional.cross_entropy(out, yb)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training diverged at step {step} (loss {loss.item()}); "
                                     "lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running += float(loss.detach()) * len(idx)
        correct += int((out.argmax(1) == yb).sum())
        n_run += len(idx)
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            entry = {"step": step + 1, "loss": running / n_run, "train_acc": correct / n_run}
            history.append(entry)
            bar.set_postfix(loss=f"{entry['loss']:.3f}", acc=f"{entry['train_acc']:.3f}")
            if len(history) <= 5 or step + 1 == config.steps:
                say(f"step {entry['step']}: loss {entry['loss']:.4f}, "
                    f"train acc {entry['train_acc']:.4f}")
            running, n_run, correct = 0.0, 0, 0
    test_acc = evaluate(model, xte, dataset.y_test)
    card = {
        "model": config.model, "model_config": model.config, "data": config.data,
        "n_train": int(len(xtr)), "n_test": int(len(xte)), "steps": config.steps,
        "batch_size": config.batch_size, "optimizer": "AdamW + cosine schedule",
        "lr": config.lr, "weight_decay": config.weight_decay, "seed": config.seed,
        "shuffle_labels": config.shuffle_labels, "threads": config.threads,
        "test_accuracy": test_acc, "parameter_count": parameter_count(model),
        "seconds": round(time.perf_counter() - t0, 2), "torch": torch.__version__,
        "normalisation": {"mean": mean, "std": std}, "log": history,
    }
    wpath = cpath = None
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = stem or f"{config.model}-{config.data}-s{config.seed}"
        wpath, cpath = out / f"{stem}.safetensors", out / f"{stem}.json"
        with atomic_path(wpath) as tmp:  # the old weights, or the new ones; never half
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp),
                      metadata={"format": "pt", "card": f"{stem}.json"})
        write_text(cpath, json.dumps(card, indent=1) + "\n")
    return TrainResult(model, card, wpath, cpath)


def load_trained(weights: str | os.PathLike) -> tuple[AllConvNet, dict[str, Any]]:
    """Rebuild a trained model from ``X.safetensors`` and its card ``X.json``.

    Raises
    ------
    FileNotFoundError
        Either file is missing.
    ValueError
        A corrupt weights file or card, or weights that do not fit the card's model.
    """
    wpath = Path(weights)
    cpath = wpath.with_suffix(".json")
    for p in (wpath, cpath):
        if not p.is_file():
            raise FileNotFoundError(f"{p} does not exist (train it with `crelu train`)")
    try:
        card = json.loads(cpath.read_text())
        cfg = card["model_config"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{cpath}: not a training card ({exc})") from exc
    try:
        state = load_file(str(wpath))
    except Exception as exc:  # safetensors raises its own error types
        raise ValueError(f"{wpath}: not a readable safetensors file ({exc})") from exc
    model = AllConvNet(**_model_kwargs(cfg))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{wpath}: weights do not match the model in its card ({exc})") from exc
    model.eval()
    return model, card


# ----------------------------------------------------------------------------- shipped weights
#: Folder of the weights the verification suite ships (package data).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: The models ``crelu verify`` uses: file stem -> training config. Regenerate all of them with
#: ``crelu train suite`` (writes verify/weights/<stem>.safetensors and <stem>.json).
SUITE: dict[str, TrainConfig] = {
    "relu-fashion-mnist": TrainConfig(model="relu", data="fashion-mnist", steps=1000, kernel1=7),
    "crelu-fashion-mnist": TrainConfig(model="crelu", data="fashion-mnist", steps=1000, kernel1=7),
}

_SUITE_CACHE: dict[tuple[str, str], tuple[AllConvNet, dict[str, Any]]] = {}


def suite_model(stem: str, retrain: bool = False, out_dir: str | os.PathLike | None = None,
                progress: bool = False) -> tuple[AllConvNet, dict[str, Any]]:
    """A suite model: the shipped weights, or (``retrain=True``) freshly trained into ``out_dir``.

    Retrained models are cached per ``out_dir`` for the life of the process, so several claims
    of one ``crelu verify --profile full`` run share one training run.
    """
    if stem not in SUITE:
        raise ValueError(f"unknown suite model {stem!r}; choose one of {sorted(SUITE)}")
    if not retrain:
        key = ("shipped", stem)
        if key not in _SUITE_CACHE:
            _SUITE_CACHE[key] = load_trained(WEIGHTS_DIR / f"{stem}.safetensors")
        return _SUITE_CACHE[key]
    folder = Path(out_dir if out_dir is not None else "crelu-weights")
    key = (str(folder.resolve()), stem)
    if key not in _SUITE_CACHE:
        res = train(SUITE[stem], out_dir=folder, stem=stem, progress=progress)
        _SUITE_CACHE[key] = (res.model.eval(), res.card)
    return _SUITE_CACHE[key]


def initial_model(card: dict[str, Any]) -> AllConvNet:
    """The untrained model a card's run started from (same seed, same config)."""
    cfg = card["model_config"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(card["seed"]))
        return AllConvNet(**_model_kwargs(cfg))


def _model_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    """AllConvNet keyword arguments from a card's ``model_config``."""
    try:
        return {"name": cfg["name"], "in_channels": cfg["in_channels"],
                "n_classes": cfg["n_classes"], "width": cfg["width"], "kernel1": cfg["kernel1"],
                "init_scale1": cfg.get("init_scale1", 1.0)}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"model_config {cfg!r} lacks {exc}") from exc
