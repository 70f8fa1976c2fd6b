"""The classification table (paper Table 1, Sec. 4.1) at a scale a 2-core CPU allows.

Five variants of :mod:`verify.models` (ReLU baseline, ReLU with double the filters, CReLU,
CReLU with half the filters, AVR), each trained with several seeds by
:func:`verify.train.train` on a fixed training subset; per run we record the test error,
the train error (on the whole training subset, after training), the parameter count and the
training time, and the errors of the *untrained* model of the same seed (the chance-level
reference the negative controls use).

The raw per-run records are written to a JSON file; :func:`summarise` turns them into the
table (mean and standard deviation over seeds). The committed results that the quick
profile of ``crelu verify`` reads are regenerated with::

    crelu table --out verify/results/table.json

(the command is :mod:`verify.table_cmd`, the figure :func:`verify.figures.table_figure`).
The training budget is deliberately small (:data:`TABLE_CONFIGS`, fixed in
:mod:`verify.configs`: 1000 steps (Fashion-MNIST) or 500 steps (photo task) of batch 64 on a
10 000-image subset, width 16) so that all runs fit 30 minutes on a shared 2-core CPU; the
numbers are therefore far from the paper's and only the *comparisons* are replicated.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from verify.atomic import write_text
from verify.configs import MODEL_NAMES, TrainConfig
from verify.configs import RESULTS_DIR as RESULTS_DIR
from verify.configs import TABLE_CONFIGS as TABLE_CONFIGS
from verify.configs import TABLE_LABELS as LABELS
from verify.configs import TABLE_REGENERATE as REGENERATE
from verify.configs import TABLE_RESULTS as RESULTS_FILE
from verify.configs import TABLE_SEEDS as SEEDS
from verify.configs import TABLE_VARIANTS as VARIANTS
from verify.models import AllConvNet, parameter_count
from verify.results_io import read_results_json
from verify.train import Dataset, evaluate, load_dataset, train


def _standardised(dataset: Dataset) -> tuple[np.ndarray, np.ndarray, float, float]:
    mean, std = float(dataset.x_train.mean()), float(dataset.x_train.std())
    xtr = ((dataset.x_train - mean) / std).astype(np.float32)
    xte = ((dataset.x_test - mean) / std).astype(np.float32)
    return xtr, xte, mean, std


def run_one(dataset: Dataset, template: TrainConfig, model: str, seed: int, threads: int,
            progress: bool = False) -> dict[str, Any]:
    """Train one variant with one seed; return its record (errors, parameters, seconds)."""
    cfg = dataclasses.replace(template, model=model, seed=seed, threads=threads)
    res = train(cfg, dataset=dataset, progress=progress, log=lambda _m: None)
    xtr, xte, _, _ = _standardised(dataset)
    train_acc = evaluate(res.model, xtr, dataset.y_train)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)             # the initialisation train() started from
        init = AllConvNet(model, in_channels=xtr.shape[1], n_classes=dataset.n_classes,
                          width=cfg.width, kernel1=cfg.kernel1)
    return {
        "variant": model, "seed": seed, "data": dataset.name,
        "test_error": 1.0 - res.card["test_accuracy"], "train_error": 1.0 - train_acc,
        "parameters": parameter_count(res.model), "seconds": res.card["seconds"],
        "untrained_test_error": 1.0 - evaluate(init, xte, dataset.y_test),
        "final_train_loss": res.card["log"][-1]["loss"] if res.card["log"] else None,
    }


def run_table(data: Sequence[str] = ("fashion-mnist",), seeds: Sequence[int] = SEEDS,
              variants: Sequence[str] = VARIANTS, threads: int = 2, steps: int | None = None,
              progress: bool = True, out: str | os.PathLike | None = None,
              say: Callable[[str], None] = print) -> dict[str, Any]:
    """Train every (data set, variant, seed) and return (and optionally write) the records.

    Parameters
    ----------
    data : keys of :data:`TABLE_CONFIGS`
    seeds, variants : which runs
    threads : torch CPU threads per run
    steps : override the configured optimiser steps (smoke tests only)
    out : JSON file to write (parents created); written after every run, so a partial
        table survives an interruption
    """
    for v in variants:
        if v not in MODEL_NAMES:
            raise ValueError(f"unknown variant {v!r}; choose from {MODEL_NAMES}")
    if not seeds:
        raise ValueError("need at least one seed")
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "regenerate": REGENERATE, "seeds": list(seeds), "variants": list(variants),
        "threads": threads, "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "torch": torch.__version__, "configs": {}, "runs": [],
    }
    for name in data:
        if name not in TABLE_CONFIGS:
            raise ValueError(f"no table config for data set {name!r}; choose from "
                             f"{sorted(TABLE_CONFIGS)}")
        spec = TABLE_CONFIGS[name]
        template = spec["config"]
        if steps is not None:
            template = dataclasses.replace(template, steps=steps)
        dataset = load_dataset(name, seed=0, n_train=spec["n_train"], n_test=spec["n_test"])
        result["configs"][name] = {**dataclasses.asdict(template), "n_train": len(dataset.x_train),
                                   "n_test": len(dataset.x_test), "n_classes": dataset.n_classes}
        for model in variants:
            for seed in seeds:
                rec = run_one(dataset, template, model, seed, threads, progress=progress)
                result["runs"].append(rec)
                say(f"[table] {name} {model} seed {seed}: test error {rec['test_error']:.4f}, "
                    f"train error {rec['train_error']:.4f}, {rec['parameters']} parameters, "
                    f"{rec['seconds']:.1f} s")
                result["total_seconds"] = round(time.perf_counter() - t0, 1)
                if out is not None:
                    write_results(result, out)
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    if out is not None:
        write_results(result, out)
    return result


def write_results(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the records as JSON (parents created; atomically: the old file or the new one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(result, indent=1) + "\n")
    return path


def read_results(path: str | os.PathLike = RESULTS_FILE) -> dict[str, Any]:
    """Read a results JSON written by :func:`run_table` (clear errors if missing or corrupt)."""
    return read_results_json(path, "runs", "table", REGENERATE)


# ----------------------------------------------------------------------------- summary
def errors(result: dict[str, Any], data: str, variant: str, key: str = "test_error") -> np.ndarray:
    """The per-seed values of ``key`` for one (data set, variant)."""
    vals = [r[key] for r in result["runs"] if r["data"] == data and r["variant"] == variant]
    if not vals:
        raise ValueError(f"no runs of {variant!r} on {data!r} in the results")
    return np.asarray(vals, dtype=float)


def summarise(result: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """data -> variant -> mean/std (ddof=1) of test and train error, gap, parameters, seconds."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for data in dict.fromkeys(r["data"] for r in result["runs"]):
        table[data] = {}
        for v in dict.fromkeys(r["variant"] for r in result["runs"] if r["data"] == data):
            te, tr = errors(result, data, v), errors(result, data, v, "train_error")
            sec = errors(result, data, v, "seconds")
            ddof = 1 if len(te) > 1 else 0
            table[data][v] = {
                "n_seeds": len(te), "test_error_mean": te.mean(), "test_error_std": te.std(ddof=ddof),
                "train_error_mean": tr.mean(), "train_error_std": tr.std(ddof=ddof),
                "gap_mean": (te - tr).mean(), "gap_std": (te - tr).std(ddof=ddof),
                "parameters": int(errors(result, data, v, "parameters")[0]),
                "seconds_mean": sec.mean(),
            }
    return table


def markdown_table(result: dict[str, Any]) -> str:
    """The table as markdown, one block per data set."""
    lines: list[str] = []
    for data, rows in summarise(result).items():
        lines += [f"**{data}** ({result['configs'][data]['steps']} steps, "
                  f"{result['configs'][data]['n_train']} training images, "
                  f"{len(result['seeds'])} seeds)", "",
                  "| model | parameters | test error % | train error % | gap % | train s |",
                  "|---|---|---|---|---|---|"]
        for v, s in rows.items():
            lines.append(f"| {LABELS.get(v, v)} | {s['parameters']} | "
                         f"{100 * s['test_error_mean']:.2f} ± {100 * s['test_error_std']:.2f} | "
                         f"{100 * s['train_error_mean']:.2f} ± {100 * s['train_error_std']:.2f} | "
                         f"{100 * s['gap_mean']:.2f} ± {100 * s['gap_std']:.2f} | "
                         f"{s['seconds_mean']:.0f} |")
        lines.append("")
    return "\n".join(lines)
