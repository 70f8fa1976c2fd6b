"""Invariance scores of the trained ReLU and CReLU networks, layer by layer (paper Sec. 4.2).

For each model of the suite (``verify.train.SUITE``: ReLU and CReLU on Fashion-MNIST, and
AVR if the suite ships it) and the untrained models they started from (a reference), we
score the units of every layer after its activation and after each pooling (``conv1, pool1,
conv2, pool2, conv3``); a *unit* is one channel at the centre of the feature map, a CReLU
layer has twice the units of the ReLU layer (its positive and negative halves). Thresholds
come from :data:`N_IMAGES` Fashion-MNIST test images (1 % firing rate, so the 20 most
exciting images of each unit are transformed); transformations act on the raw images
(background 0, so zero fill is the natural border):

* translation: horizontal and vertical shifts by 1, 2, 3 pixels (12);
* rotation: -30, -20, -10, 10, 20, 30 degrees (6);
* scaling: 0.8, 0.9, 1.1, 1.25 (4).

The per-unit data (global rate, local firing counts) are stored in a JSON file; layer scores
and two-stage bootstrap intervals (over units, and over each unit's top images) are computed
from it. The committed results the quick profile reads are regenerated from the shipped
weights with::

    crelu invariance --out verify/results/invariance.json

(the command is :mod:`verify.invariance_cmd`, the figure :func:`verify.figures.invariance_figure`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from theory.invariance import (
    InvarianceScores,
    bootstrap_layer_scores,
    invariance_scores,
    rotations,
    scalings,
    translations,
)
from verify.atomic import write_text
from verify.configs import INVARIANCE_REGENERATE as REGENERATE
from verify.configs import INVARIANCE_RESULTS as RESULTS_FILE
from verify.results_io import read_results_json

LAYERS = ("conv1", "pool1", "conv2", "pool2", "conv3")
N_IMAGES = 2000          # natural images: Fashion-MNIST test subset (seeded)
RATE = 0.01              # global firing rate (Goodfellow et al.)
TOP_FRACTION = 0.2       # layer score: mean of the top 20 % of units
FAMILIES: dict[str, Callable[[], list]] = {
    "translation": lambda: translations(3, mode="zeros"),
    "rotation": lambda: rotations((-30, -20, -10, 10, 20, 30)),
    "scaling": lambda: scalings((0.8, 0.9, 1.1, 1.25)),
}


# ----------------------------------------------------------------------------- units
def centre_units(model: nn.Module, mean: float, std: float
                 ) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, slice]]:
    """A unit function for every layer of an :class:`verify.models.AllConvNet`.

    Returns ``(units, slices)``: ``units`` maps raw images (B, C, H, W) to the centre value of
    every channel after each activation and each pooling, concatenated; ``slices[layer]``
    picks the units of one layer.
    """
    model.eval()
    body = list(model.body)
    names, conv = [], 0
    for m in body:
        if isinstance(m, nn.Conv2d):
            conv += 1
        else:
            names.append(f"pool{conv}" if isinstance(m, nn.MaxPool2d) else f"conv{conv}")
    if tuple(names) != LAYERS:
        raise ValueError(f"expected the layers {LAYERS}, found {names}")

    def units(x: torch.Tensor) -> torch.Tensor:
        h = (x.float() - mean) / std
        feats = []
        for m in body:
            h = m(h)
            if not isinstance(m, nn.Conv2d):
                feats.append(h[:, :, h.shape[2] // 2, h.shape[3] // 2])
        return torch.cat(feats, dim=1)

    with torch.no_grad():
        counts = [0]
        h = torch.zeros(1, model.config["in_channels"], 28, 28)
        for m in body:
            h = m(h)
            if not isinstance(m, nn.Conv2d):
                counts.append(counts[-1] + h.shape[1])
    slices = {name: slice(a, b) for name, a, b in zip(LAYERS, counts[:-1], counts[1:])}
    return units, slices


def natural_images(seed: int = 0, n: int = N_IMAGES) -> torch.Tensor:
    """A seeded subset of the Fashion-MNIST test images, raw values in [0, 1]."""
    from verify.data.fashion_mnist import load_fashion_mnist

    x, _ = load_fashion_mnist("test")
    idx = np.sort(np.random.default_rng([seed, 6]).choice(len(x), n, replace=False))
    return torch.from_numpy(x[idx])


# ----------------------------------------------------------------------------- experiment
def score_model(model: nn.Module, card: dict[str, Any], images: torch.Tensor
                ) -> dict[str, Any]:
    """Per-unit invariance data of one model for every transformation family."""
    norm = card["normalisation"]
    units, slices = centre_units(model, norm["mean"], norm["std"])
    out: dict[str, Any] = {"layers": {k: [s.start, s.stop] for k, s in slices.items()},
                           "families": {}}
    torch.set_num_threads(min(2, torch.get_num_threads()))
    for fam, make in FAMILIES.items():
        moves = make()
        res = invariance_scores(units, images, moves, rate=RATE, top_fraction=TOP_FRACTION)
        out["families"][fam] = {
            "n_transforms": len(moves),
            "global_rate": res.global_rate.tolist(),
            "valid": res.valid.astype(int).tolist(),
            "fired": np.rint(res.local_firing * len(moves)).astype(int).tolist(),
        }
    return out


def weights_digest(model: nn.Module) -> str:
    """sha256 of a model's parameters (names, shapes and float32 bytes), to detect stale results."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def check_fresh(result: dict[str, Any]) -> None:
    """Raise if the shipped weights differ from those the stored results were computed from."""
    if result.get("weights") != "shipped":
        return
    for name, (model, _card) in model_set(False).items():
        stored = result["models"].get(name, {}).get("weights_sha256")
        if stored is None or stored != weights_digest(model):
            raise ValueError(f"the stored invariance results of {name!r} were computed from other "
                             f"weights than the shipped ones; regenerate them with `{REGENERATE}`")


def model_set(retrain: bool = False, out_dir: str | os.PathLike | None = None
              ) -> dict[str, tuple[nn.Module, dict[str, Any]]]:
    """The suite models (shipped, or retrained into ``out_dir``) and their untrained starts."""
    from verify.train import SUITE, initial_model, suite_model

    models = {}
    for short in ("relu", "crelu", "avr"):
        stem = f"{short}-fashion-mnist"
        if stem not in SUITE:
            continue
        model, card = suite_model(stem, retrain=retrain, out_dir=out_dir)
        models[short] = (model, card)
        models[f"{short} (untrained)"] = (initial_model(card).eval(), card)
    return models


def run_invariance(retrain: bool = False, weights_dir: str | os.PathLike | None = None,
                   seed: int = 0, out: str | os.PathLike | None = None,
                   say: Callable[[str], None] = print) -> dict[str, Any]:
    """Score every model of :func:`model_set`; optionally write the JSON results."""
    t0 = time.perf_counter()
    images = natural_images(seed)
    result: dict[str, Any] = {
        "regenerate": REGENERATE, "n_images": int(images.shape[0]), "rate": RATE,
        "top_fraction": TOP_FRACTION, "image_seed": seed, "layers": list(LAYERS),
        "weights": "retrained" if retrain else "shipped", "models": {},
    }
    for name, (model, card) in model_set(retrain, weights_dir).items():
        t1 = time.perf_counter()
        result["models"][name] = score_model(model, card, images)
        result["models"][name]["weights_sha256"] = weights_digest(model)
        result["models"][name]["test_accuracy"] = card.get("test_accuracy") \
            if "untrained" not in name else None
        say(f"[invariance] {name}: {time.perf_counter() - t1:.1f} s")
    result["seconds"] = round(time.perf_counter() - t0, 1)
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(result, separators=(",", ":")) + "\n")
    return result


def read_results(path: str | os.PathLike = RESULTS_FILE) -> dict[str, Any]:
    """Read results written by :func:`run_invariance` (clear errors if missing or corrupt)."""
    return read_results_json(path, "models", "invariance", REGENERATE)


# ----------------------------------------------------------------------------- statistics
def scores_of(result: dict[str, Any], model: str, family: str, layer: str) -> InvarianceScores:
    """Rebuild the :class:`InvarianceScores` of one layer from the stored per-unit data."""
    m = result["models"][model]
    fam = m["families"][family]
    a, b = m["layers"][layer]
    g = np.asarray(fam["global_rate"], float)[a:b]
    valid = np.asarray(fam["valid"], bool)[a:b]
    local = np.asarray(fam["fired"], float)[a:b] / fam["n_transforms"]
    local_rate = local.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(valid, local_rate / g, np.nan)
    return InvarianceScores(threshold=np.full(b - a, np.nan), global_rate=g,
                            top_inputs=np.full(local.shape, -1), local_firing=local,
                            local_rate=local_rate, score=score, valid=valid,
                            rate=result["rate"], top_fraction=result["top_fraction"])


def basic_interval(estimate: float, draws: np.ndarray, level: float = 0.95) -> list[float]:
    """Basic (reverse-percentile) bootstrap interval ``[2 e - q_hi, 2 e - q_lo]``.

    The top-fraction mean is biased upwards under resampling (selecting the largest of noisy
    unit scores); the basic interval reflects that bias back instead of copying it, as the
    percentile interval would.
    """
    lo, hi = np.quantile(np.asarray(draws), [(1 - level) / 2, (1 + level) / 2])
    return [float(2 * estimate - hi), float(2 * estimate - lo)]


def layer_table(result: dict[str, Any], rng: np.random.Generator, reps: int = 2000,
                level: float = 0.95) -> dict[str, dict[str, dict[str, Any]]]:
    """family -> model -> {layer scores, basic bootstrap intervals, draws} for every model."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for fam in FAMILIES:
        table[fam] = {}
        for model in result["models"]:
            rows = {"score": [], "ci": [], "draws": [], "n_valid": []}
            for layer in result["layers"]:
                s = scores_of(result, model, fam, layer)
                draws = bootstrap_layer_scores(s, rng, reps=reps)
                rows["score"].append(s.layer_score)
                rows["ci"].append(basic_interval(s.layer_score, draws, level))
                rows["draws"].append(draws)
                rows["n_valid"].append(int(s.valid.sum()))
            table[fam][model] = rows
    return table


def markdown(table: dict[str, dict[str, dict[str, Any]]], layers: list[str]) -> str:
    """Layer scores with 95 % intervals as a markdown table per transformation."""
    lines: list[str] = []
    for fam, models in table.items():
        lines += [f"**{fam}**", "", "| model | " + " | ".join(layers) + " |",
                  "|---|" + "---|" * len(layers)]
        for model, rows in models.items():
            cells = [f"{s:.1f} [{lo:.1f}, {hi:.1f}]" for s, (lo, hi) in zip(rows["score"], rows["ci"])]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
