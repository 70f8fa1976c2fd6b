"""``crelu train MODEL --data DATASET ...``: train one model, or ``suite`` for the shipped set."""

from __future__ import annotations

import argparse
import dataclasses

from verify.models import MODEL_NAMES
from verify.train import DATASETS, SUITE, WEIGHTS_DIR, TrainConfig, train


def _cmd_train(args: argparse.Namespace) -> int:
    progress = not args.no_progress
    if args.model == "suite":
        out = args.out or WEIGHTS_DIR
        for stem, cfg in SUITE.items():
            cfg = dataclasses.replace(cfg, threads=args.threads)
            print(f"[suite] {stem}: {cfg}")
            res = train(cfg, out_dir=out, stem=stem, root=args.root, progress=progress)
            _summary(res)
        return 0
    defaults = TrainConfig()
    cfg = TrainConfig(
        model=args.model, data=args.data, steps=args.steps or defaults.steps,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        width=args.width, kernel1=args.kernel1, init_scale1=args.init_scale1, seed=args.seed,
        shuffle_labels=args.shuffle_labels, n_train=args.n_train, n_test=args.n_test,
        threads=args.threads)
    res = train(cfg, out_dir=args.out or "crelu-weights", root=args.root, progress=progress)
    _summary(res)
    return 0


def _summary(res) -> None:
    c = res.card
    print(f"{c['model']} on {c['data']}: test accuracy {c['test_accuracy']:.4f}, "
          f"{c['parameter_count']} parameters, {c['steps']} steps in {c['seconds']} s; "
          f"wrote {res.weights_path} and {res.card_path}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``crelu train``."""
    d = TrainConfig()
    p = sub.add_parser("train", help="train a small CNN (ReLU, CReLU, AVR family) on the CPU",
                       description="Train one model of verify.models, or `suite` to regenerate "
                                   "the weights the verification suite ships (verify/weights) with the "
                                   "configs of verify.train.SUITE (the hyper-parameter options "
                                   "are then ignored; --threads and --root are used).")
    p.add_argument("model", choices=list(MODEL_NAMES) + ["suite"])
    p.add_argument("--data", choices=DATASETS, default=d.data)
    p.add_argument("--root", default=None,
                   help="data folder (cifar10: the cifar-10-batches-py folder; fashion-mnist: "
                        "default /usr/share/datasets/fashion-mnist)")
    p.add_argument("--steps", type=int, default=None, help=f"optimiser steps (default {d.steps})")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--width", type=int, default=d.width, help="first-layer filters of `relu`")
    p.add_argument("--kernel1", type=int, default=d.kernel1, help="first-layer kernel size")
    p.add_argument("--init-scale1", type=float, default=d.init_scale1,
                   help="factor on conv1's default initial weights")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--shuffle-labels", action="store_true", help="train on permuted labels")
    p.add_argument("--n-train", type=int, default=None, help="seeded training subset size")
    p.add_argument("--n-test", type=int, default=d.n_test, help="seeded test subset size")
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads")
    p.add_argument("--out", default=None,
                   help="output folder (default crelu-weights; for `suite` the package's "
                        "verify/weights folder)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_train)
