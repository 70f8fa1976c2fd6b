"""Fixed configurations of the experiments, and where their committed results live.

This module imports nothing heavy (no torch, numpy or matplotlib): the ``crelu`` command line
builds its parsers from these names and defaults, so ``crelu --help`` answers without loading
the numerical stack. The experiments re-export what they use (``verify.train.TrainConfig``,
``verify.models.MODEL_NAMES``, ``verify.table_exp.TABLE_CONFIGS``, ...).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

#: The variants of :class:`verify.models.AllConvNet`.
MODEL_NAMES = ("relu", "relu_double", "crelu", "crelu_half", "avr")

#: Data sets :func:`verify.train.load_dataset` knows by name.
DATASETS = ("fashion-mnist", "photos-grey", "photos-grey-white", "photos-colour", "cifar10")

#: Committed results read by the quick profile of ``crelu verify`` (package data).
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclasses.dataclass
class TrainConfig:
    """Hyper-parameters of one run (all recorded in the card)."""

    model: str = "relu"
    data: str = "fashion-mnist"
    steps: int = 1000
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    width: int = 16
    kernel1: int = 7
    init_scale1: float = 1.0
    seed: int = 0
    shuffle_labels: bool = False
    n_train: int | None = None
    n_test: int | None = 5000
    threads: int = 2
    log_every: int = 100

    def __post_init__(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.model!r}; choose one of {MODEL_NAMES}")
        if self.steps < 1 or self.batch_size < 1 or self.threads < 1 or self.log_every < 1:
            raise ValueError("steps, batch_size, threads and log_every must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)) or self.weight_decay < 0:
            raise ValueError(f"need lr > 0 and weight_decay >= 0; got {self.lr}, {self.weight_decay}")


# ----------------------------------------------------------------------------- table
#: Where the classification table's per-run records live, and the command that rewrites them.
TABLE_RESULTS = RESULTS_DIR / "table.json"
TABLE_REGENERATE = "crelu table --out verify/results/table.json"
#: Seeds of every variant.
TABLE_SEEDS = (0, 1, 2)
#: Variants in the paper's order, with the labels of its Table 1.
TABLE_VARIANTS = ("relu", "relu_double", "crelu", "crelu_half", "avr")
TABLE_LABELS = {"relu": "ReLU (baseline)", "relu_double": "ReLU, double filters",
                "crelu": "CReLU", "crelu_half": "CReLU, half filters", "avr": "AVR"}
#: Data set -> (subset sizes, training config template). Fixed before any run.
TABLE_CONFIGS: dict[str, dict[str, Any]] = {
    "fashion-mnist": {"n_train": 10000, "n_test": 5000,
                      "config": TrainConfig(data="fashion-mnist", steps=1000, batch_size=64,
                                            width=16, kernel1=7, n_test=5000)},
    "photos-grey": {"n_train": 10000, "n_test": 2000,
                    "config": TrainConfig(data="photos-grey", steps=500, batch_size=64,
                                          width=16, kernel1=7, n_test=2000)},
}

# ----------------------------------------------------------------------------- invariance
#: Where the invariance scores' per-unit data live, and the command that rewrites them.
INVARIANCE_RESULTS = RESULTS_DIR / "invariance.json"
INVARIANCE_REGENERATE = "crelu invariance --out verify/results/invariance.json"
