"""Seeded CPU training of the :mod:`verify.models` family, with safetensors weights and a card.

A run writes two files into ``out_dir``: ``<stem>.safetensors`` (the ``state_dict``, float32)
and ``<stem>.json``, the *card*: data set, steps, batch size, optimiser settings, seed, thread
count, test accuracy, parameter count, wall time, the input normalisation, the model config
and an early log of loss and accuracy. :func:`load_trained` rebuilds the model from the two.

Reproducibility: the data order, the augmentation draws, the initialisation and the label
shuffling all come from ``seed``; with the same torch version and thread count a run writes
byte-identical files in any fresh process on the same CPU (the card records both; tested in
tests/test_train.py). The default is one thread: see docs/howto/train.md for why two
single-threaded runs side by side beat one two-threaded run on a shared 2-core machine.

Examples
--------
>>> from verify.train import TrainConfig, load_dataset, train
>>> data = load_dataset("photos-grey", n_train=270, n_test=54)
>>> res = train(TrainConfig(data="photos-grey", steps=2, batch_size=32, width=4),
...             dataset=data, progress=False)
>>> sorted(k for k in res.card if k.endswith("accuracy"))
['test_accuracy', 'train_accuracy']
"""

from __future__ import annotations

import copy
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

from verify.configs import DATASETS as DATASETS
from verify.configs import FASHION_MNIST_EPOCH as FASHION_MNIST_EPOCH
from verify.configs import FASHION_MNIST_SCHEDULE as FASHION_MNIST_SCHEDULE
from verify.configs import SUITE as SUITE
from verify.configs import SUITE_CHECKPOINTS as SUITE_CHECKPOINTS
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
    """The trained model (NCHW layout, eval mode), its card, the files written, and the
    checkpoints (``{"step": s, "state": state_dict, "card": card}``, in step order)."""

    model: AllConvNet
    card: dict[str, Any]
    weights_path: Path | None
    card_path: Path | None
    checkpoints: list[dict[str, Any]] = dataclasses.field(default_factory=list)


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


def shifted(x: np.ndarray, rng: np.random.Generator, shift: int, hflip: bool,
            fill: float) -> np.ndarray:
    """Random translations by up to ``shift`` pixels (each axis, uniform on ``-shift..shift``;
    the uncovered border takes the value ``fill``) and, with ``hflip``, random left-right
    flips (probability 1/2), one draw per image of the batch ``x`` (N, C, H, W)."""
    n, _, h, w = x.shape
    out = x
    if shift > 0:
        pad = np.pad(x, ((0, 0), (0, 0), (shift, shift), (shift, shift)), constant_values=fill)
        dy = rng.integers(0, 2 * shift + 1, n)
        dx = rng.integers(0, 2 * shift + 1, n)
        rows = dy[:, None] + np.arange(h)[None, :]            # (N, H)
        cols = dx[:, None] + np.arange(w)[None, :]            # (N, W)
        out = pad[np.arange(n)[:, None, None, None], np.arange(x.shape[1])[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]
    if hflip:
        flip = rng.random(n) < 0.5
        out = out.copy() if out is x else out
        out[flip] = out[flip, :, :, ::-1]
    return np.ascontiguousarray(out, dtype=np.float32)


def train(config: TrainConfig, out_dir: str | os.PathLike | None = None, stem: str | None = None,
          root: str | os.PathLike | None = None, progress: bool = True,
          dataset: Dataset | None = None, log: Callable[[str], None] | None = None) -> TrainResult:
    """Train one model on the CPU; save weights + card in ``out_dir`` if given.

    Parameters
    ----------
    config : TrainConfig
    out_dir : folder for ``<stem>.safetensors`` and ``<stem>.json`` (none saved if None); the
        checkpoints of ``config.checkpoints`` go to ``out_dir/checkpoints/<stem>-step<N>.*``
    stem : file stem, default ``<model>-<data>-s<seed>``
    root : data folder for file-based data sets
    progress : tqdm bar
    dataset : a preloaded :class:`Dataset` (skips loading; its name must match ``config.data``)
    log : called with each early log line (default: ``tqdm.write`` when ``progress``)

    Notes
    -----
    AdamW; the learning rate follows :meth:`TrainConfig.lr_factor` (linear warm-up, then a
    cosine decay to 0). Inputs are standardised by the training set's scalar mean and standard
    deviation (recorded in the card, applied again by :func:`load_trained` users through
    ``card["normalisation"]``). Augmentation (``shift``, ``hflip``) acts on the standardised
    batch; shifted-in borders take the standardised value of a raw 0 (Fashion-MNIST's
    background). An epoch is ``n_train // batch_size`` steps (a fresh permutation each epoch;
    the remainder is dropped). The data order, the augmentation draws and the initialisation
    come from three seeded streams, so checkpoints (evaluated on an NCHW copy, exactly as
    :func:`load_trained` rebuilds them) and augmentation settings do not move one another.
    Train and test accuracy are measured after training, in eval mode, without augmentation.
    """
    t0, c0 = time.perf_counter(), time.process_time()
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
    if config.batch_size > len(xtr):
        raise ValueError(f"batch_size {config.batch_size} exceeds the {len(xtr)} training images")
    rng = np.random.default_rng([config.seed, 2])
    aug_rng = np.random.default_rng([config.seed, 3])
    fill = float((0.0 - mean) / std)
    if config.shuffle_labels:
        ytr = rng.permutation(ytr)
    torch.manual_seed(config.seed)
    model = AllConvNet(config.model, in_channels=xtr.shape[1], n_classes=dataset.n_classes,
                       width=config.width, kernel1=config.kernel1, init_scale1=config.init_scale1,
                       head=config.head, depth_mult=config.depth_mult,
                       image_size=xtr.shape[-1])
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, config.lr_factor)
    say = log or (tqdm.write if progress else (lambda _msg: None))
    steps_per_epoch = len(xtr) // config.batch_size
    history: list[dict[str, float]] = []
    checkpoints: list[dict[str, Any]] = []
    base_card = {
        "model": config.model, "data": config.data,
        "n_train": int(len(xtr)), "n_test": int(len(xte)),
        "batch_size": config.batch_size, "steps_per_epoch": steps_per_epoch,
        "optimizer": "AdamW + linear warm-up + cosine schedule" if config.warmup_steps
        else "AdamW + cosine schedule",
        "lr": config.lr, "weight_decay": config.weight_decay, "warmup_steps": config.warmup_steps,
        "augmentation": {"shift": config.shift, "hflip": config.hflip},
        "channels_last": config.channels_last, "seed": config.seed,
        "shuffle_labels": config.shuffle_labels, "threads": config.threads,
        "torch": torch.__version__, "normalisation": {"mean": mean, "std": std},
    }
    folder = Path(out_dir) if out_dir is not None else None
    stem = stem or f"{config.model}-{config.data}-s{config.seed}"
    order = rng.permutation(len(xtr))
    pos, running, n_run, correct = 0, 0.0, 0, 0
    bar = tqdm(range(config.steps), desc=f"train {config.model}", unit="step", disable=not progress)
    for step in bar:
        if pos + config.batch_size > len(order):
            order, pos = rng.permutation(len(xtr)), 0
        idx = order[pos:pos + config.batch_size]
        pos += config.batch_size
        xb = xtr[idx]
        if config.shift or config.hflip:
            xb = shifted(xb, aug_rng, config.shift, config.hflip, fill)
        xb, yb = torch.from_numpy(xb).contiguous(memory_format=fmt), torch.from_numpy(ytr[idx])
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
        if step + 1 in config.checkpoints and step + 1 < config.steps:
            snap = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
            checkpoints.append(_checkpoint(snap, step + 1, base_card, xtr, ytr, xte, dataset,
                                           steps_per_epoch, folder, stem))
            say(f"checkpoint at step {step + 1}: test acc {checkpoints[-1]['test_accuracy']:.4f}")
    model = model.to(memory_format=torch.contiguous_format)
    test_acc = evaluate(model, xte, dataset.y_test)
    train_acc = evaluate(model, xtr, ytr)
    card = {
        **base_card, "model_config": model.config, "steps": config.steps,
        "epochs": round(config.steps / steps_per_epoch, 4),
        "test_accuracy": test_acc, "train_accuracy": train_acc,
        "parameter_count": parameter_count(model),
        "seconds": round(time.perf_counter() - t0, 2),
        "cpu_seconds": round(time.process_time() - c0, 2), "log": history,
    }
    if config.steps in config.checkpoints:
        checkpoints.append({"step": config.steps, "epoch": card["epochs"], "final": True,
                            "test_accuracy": test_acc, "train_accuracy": train_acc,
                            "state": {k: v.clone() for k, v in model.state_dict().items()},
                            "file": f"{stem}.safetensors" if folder is not None else None})
    card["checkpoints"] = [{k: c[k] for k in ("step", "epoch", "file", "test_accuracy",
                                               "train_accuracy")} for c in checkpoints]
    wpath = cpath = None
    if folder is not None:
        wpath, cpath = _save(folder, stem, model.state_dict(), card)
    return TrainResult(model.eval(), card, wpath, cpath, checkpoints)


def _checkpoint(snap: AllConvNet, step: int, base_card: dict[str, Any], xtr: np.ndarray,
                ytr: np.ndarray, xte: np.ndarray, dataset: Dataset, steps_per_epoch: int,
                folder: Path | None, stem: str) -> dict[str, Any]:
    """Evaluate (and save) the model after ``step`` steps."""
    test_acc = evaluate(snap, xte, dataset.y_test)
    train_acc = evaluate(snap, xtr, ytr)
    state = {k: v.clone() for k, v in snap.state_dict().items()}
    name = f"{stem}-step{step}"
    entry = {"step": step, "epoch": round(step / steps_per_epoch, 4), "final": False,
             "test_accuracy": test_acc, "train_accuracy": train_acc, "state": state,
             "file": f"checkpoints/{name}.safetensors" if folder is not None else None}
    if folder is not None:
        card = {**base_card, "model_config": snap.config, "steps": step,
                "epochs": entry["epoch"], "test_accuracy": test_acc, "train_accuracy": train_acc,
                "parameter_count": parameter_count(snap), "checkpoint_of": stem}
        _save(folder / "checkpoints", name, state, card)
    return entry


def _save(folder: Path, stem: str, state: dict[str, torch.Tensor], card: dict[str, Any]
          ) -> tuple[Path, Path]:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` atomically (temp file, then rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    wpath, cpath = folder / f"{stem}.safetensors", folder / f"{stem}.json"
    tmp_w, tmp_c = wpath.with_name(wpath.name + ".tmp"), cpath.with_name(cpath.name + ".tmp")
    # one metadata key only: safetensors writes the metadata map in a per-process random
    # order, so two keys made the bytes of identical weights differ between processes
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_w),
              metadata={"format": "pt"})
    tmp_c.write_text(json.dumps(card, indent=1) + "\n")
    os.replace(tmp_w, wpath)
    os.replace(tmp_c, cpath)
    return wpath, cpath


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
                "init_scale1": cfg.get("init_scale1", 1.0), "head": cfg.get("head", "gap"),
                "depth_mult": cfg.get("depth_mult", 2), "image_size": cfg.get("image_size", 28)}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"model_config {cfg!r} lacks {exc}") from exc
