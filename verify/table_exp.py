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

(the command is :mod:`verify.table_cmd`, the figure :func:`verify.figures.table_figure`). The
training schedule (:data:`TABLE_CONFIGS`) is the converged one of the shipped suite: 15 epochs of the
whole Fashion-MNIST training set (batch 128, width 16, 7x7 first layer, dense head), and 15
epochs of 20 000 crops for the photo task in grey and in colour; the runs are trained two at a
time in single-threaded worker processes. ``crelu table --data cifar10 --root PATH`` runs the
same table on a CIFAR-10 folder the user provides (docs/howto/train.md).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from verify.atomic import write_text
from verify.configs import MODEL_NAMES, TrainConfig
from verify.configs import RESULTS_DIR as RESULTS_DIR
from verify.configs import TABLE_CONFIGS as TABLE_CONFIGS
from verify.configs import TABLE_DEFAULT_DATA as DEFAULT_DATA
from verify.configs import TABLE_LABELS as LABELS
from verify.configs import TABLE_REGENERATE as REGENERATE
from verify.configs import TABLE_RESULTS as RESULTS_FILE
from verify.configs import TABLE_SEEDS as SEEDS
from verify.configs import TABLE_VARIANTS as VARIANTS
from verify.freshness import stamp, table_fingerprint
from verify.models import parameter_count
from verify.results_io import read_results_json
from verify.train import Dataset, evaluate, initial_model, load_dataset, train

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
    _, xte, _, _ = _standardised(dataset)
    init = initial_model(res.card)          # the initialisation train() started from
    return {
        "variant": model, "seed": seed, "data": dataset.name,
        "test_error": 1.0 - res.card["test_accuracy"],
        "train_error": 1.0 - res.card["train_accuracy"],
        "parameters": parameter_count(res.model), "seconds": res.card["seconds"],
        "cpu_seconds": res.card["cpu_seconds"], "steps": res.card["steps"],
        "epochs": res.card["epochs"], "threads": threads,
        "untrained_test_error": 1.0 - evaluate(init, xte, dataset.y_test),
        "final_train_loss": res.card["log"][-1]["loss"] if res.card["log"] else None,
    }


_WORKER_DATA: dict[tuple, Dataset] = {}


def _job(name: str, n_train: int | None, n_test: int | None, root: str | None,
         template: TrainConfig, model: str, seed: int, threads: int) -> dict[str, Any]:
    """One table run in a worker process (its data set loaded once per process)."""
    key = (name, n_train, n_test, root)
    if key not in _WORKER_DATA:
        _WORKER_DATA.clear()
        _WORKER_DATA[key] = load_dataset(name, seed=0, root=root, n_train=n_train, n_test=n_test)
    return run_one(_WORKER_DATA[key], template, model, seed, threads)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_table(data: Sequence[str] = DEFAULT_DATA, seeds: Sequence[int] = SEEDS,
              variants: Sequence[str] = VARIANTS, threads: int = 1, steps: int | None = None,
              progress: bool = True, out: str | os.PathLike | None = None,
              say: Callable[[str], None] = print, workers: int = 2,
              root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train every (data set, variant, seed) and return (and optionally write) the records.

    Parameters
    ----------
    data : keys of :data:`TABLE_CONFIGS`
    seeds, variants : which runs
    threads : torch CPU threads per run
    steps : override the configured optimiser steps (smoke tests only)
    out : JSON file to write (parents created, atomically); written after every run, so a
        partial table survives an interruption
    workers : runs trained at the same time, each in its own process (``spawn``); 1 trains
        in this process. The records do not depend on it (every run is seeded and
        single-process); ``workers * threads`` should not exceed the CPU count.
    root : data folder for file-based data sets (``cifar10``: the cifar-10-batches-py folder)

    Notes
    -----
    Besides the records, the result holds the wall time (``total_seconds``), the CPU time of
    this process and its workers (``cpu_seconds``) and the load average sampled at the start
    and after every run (``load_average``: 1, 5 and 15 minute averages), which shows whether
    other processes shared the machine.
    """
    for v in variants:
        if v not in MODEL_NAMES:
            raise ValueError(f"unknown variant {v!r}; choose from {MODEL_NAMES}")
    if not seeds:
        raise ValueError("need at least one seed")
    if workers < 1 or threads < 1:
        raise ValueError(f"need workers >= 1 and threads >= 1; got {workers}, {threads}")
    for name in data:
        if name not in TABLE_CONFIGS:
            raise ValueError(f"no table config for data set {name!r}; choose from "
                             f"{sorted(TABLE_CONFIGS)}")
    t0 = time.perf_counter()
    cpu0 = _cpu_seconds()
    result: dict[str, Any] = {
        "regenerate": REGENERATE, "seeds": list(seeds), "variants": list(variants),
        "threads": threads, "workers": workers, "cpu_count": os.cpu_count(),
        "machine": platform.machine(), "torch": torch.__version__, "configs": {}, "runs": [],
        "load_average": [{"at_seconds": 0.0, "load": _load()}],
    }
    jobs = []
    root_s = None if root is None else str(root)
    for name in data:
        spec = TABLE_CONFIGS[name]
        template = spec["config"]
        if steps is not None:
            template = dataclasses.replace(template, steps=steps, warmup_steps=0,
                                           checkpoints=())
        dataset = load_dataset(name, seed=0, root=root, n_train=spec["n_train"],
                               n_test=spec["n_test"])
        result["configs"][name] = {**dataclasses.asdict(template), "n_train": len(dataset.x_train),
                                   "n_test": len(dataset.x_test), "n_classes": dataset.n_classes}
        if workers == 1:        # train in this process, on the data set loaded here
            _WORKER_DATA[(name, spec["n_train"], spec["n_test"], root_s)] = dataset
        del dataset
        jobs += [(name, spec["n_train"], spec["n_test"], root_s, template, m, s, threads)
                 for m in variants for s in seeds]
    done: dict[int, dict[str, Any]] = {}

    def finish(i: int, rec: dict[str, Any]) -> None:
        done[i] = rec
        result["runs"] = [done[j] for j in sorted(done)]
        result["total_seconds"] = round(time.perf_counter() - t0, 1)
        result["load_average"].append({"at_seconds": result["total_seconds"], "load": _load()})
        say(f"[table] {rec['data']} {rec['variant']} seed {rec['seed']}: test error "
            f"{rec['test_error']:.4f}, train error {rec['train_error']:.4f}, "
            f"{rec['parameters']} parameters, {rec['seconds']:.1f} s "
            f"({len(done)}/{len(jobs)} runs, {result['total_seconds']:.0f} s, load "
            f"{result['load_average'][-1]['load'][0]})")
        if out is not None:
            write_results(result, out)

    if workers == 1:
        for i, job in enumerate(tqdm(jobs, desc="table", unit="run", disable=not progress)):
            finish(i, _job(*job))
    else:
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futures = {pool.submit(_job, *job): i for i, job in enumerate(jobs)}
            for fut in tqdm(concurrent.futures.as_completed(futures), total=len(jobs),
                            desc="table", unit="run", disable=not progress):
                finish(futures[fut], fut.result())
    result["runs"] = [done[j] for j in sorted(done)]
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    result["cpu_seconds"] = round(_cpu_seconds() - cpu0, 1)
    result["load_average"].append({"at_seconds": result["total_seconds"], "load": _load()})
    # only the complete table is fingerprinted: a partial file written above is never fresh
    stamp(result, table_fingerprint(data, seeds, variants, steps))
    if out is not None:
        write_results(result, out)
    return result


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def write_results(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the records as JSON (parents created; temp file, then rename)."""
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
