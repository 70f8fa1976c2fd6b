"""``crelu train MODEL --data DATASET ...``: train one model, or ``suite`` for the shipped set."""

from __future__ import annotations

import argparse
import dataclasses

from verify.argtypes import at_least, non_negative_real, odd_positive, positive_real
from verify.configs import DATASETS, HEADS, MODEL_NAMES, TrainConfig


def _suite_job(stem: str, cfg: TrainConfig, out: str, root: str | None,
               progress: bool) -> dict:
    """Train one suite model (in a worker process when ``--workers`` > 1)."""
    from verify.train import train

    res = train(cfg, out_dir=out, stem=stem, root=root, progress=progress)
    return {"card": res.card, "weights": str(res.weights_path), "card_path": str(res.card_path)}


def run(args: argparse.Namespace) -> int:
    """Train (one model, or every model of the suite) and print a summary per model."""
    from verify.train import SUITE, WEIGHTS_DIR, train

    progress = not args.no_progress
    if args.model == "suite":
        import concurrent.futures
        import multiprocessing

        out = str(args.out or WEIGHTS_DIR)
        jobs = []
        for stem, cfg in SUITE.items():
            cfg = dataclasses.replace(cfg, threads=args.threads) if args.threads else cfg
            print(f"[suite] {stem}: {cfg}")
            jobs.append((stem, cfg, out, args.root, progress and args.workers == 1))
        if args.workers == 1:
            results = [_suite_job(*job) for job in jobs]
        else:   # one process per model: the runs are independent and each is single-threaded
            ctx = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
                results = list(pool.map(_suite_job, *zip(*jobs)))
        for r in results:
            _summary(r["card"], r["weights"], r["card_path"])
        return 0
    defaults = TrainConfig()
    cfg = TrainConfig(
        model=args.model, data=args.data, steps=args.steps or defaults.steps,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        width=args.width, kernel1=args.kernel1, init_scale1=args.init_scale1, seed=args.seed,
        shuffle_labels=args.shuffle_labels, n_train=args.n_train, n_test=args.n_test,
        threads=args.threads or defaults.threads, warmup_steps=args.warmup_steps,
        shift=args.shift, hflip=args.hflip, head=args.head, depth_mult=args.depth_mult,
        checkpoints=tuple(args.checkpoints))
    res = train(cfg, out_dir=args.out or "crelu-weights", root=args.root, progress=progress)
    _summary(res.card, res.weights_path, res.card_path)
    return 0


def _summary(c: dict, weights, card_path) -> None:
    print(f"{c['model']} on {c['data']}: test accuracy {c['test_accuracy']:.4f} (train "
          f"{c['train_accuracy']:.4f}), {c['parameter_count']} parameters, {c['steps']} steps "
          f"({c['epochs']} epochs) in {c['seconds']} s ({c['cpu_seconds']} s CPU); wrote "
          f"{weights} and {card_path}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``crelu train``."""
    d = TrainConfig()
    p = sub.add_parser("train", help="train a small CNN (ReLU, CReLU, AVR family) on the CPU",
                       description="Train one model of verify.models, or 'suite' to regenerate "
                                   "the weights the verification suite ships (verify/weights, "
                                   "with their checkpoints in verify/weights/checkpoints) with "
                                   "the configs of verify.train.SUITE (the hyper-parameter "
                                   "options are then ignored; --threads, --workers, --root and "
                                   "--out are used).")
    p.add_argument("model", choices=list(MODEL_NAMES) + ["suite"],
                   help="the variant to train (see verify.models), or 'suite'")
    p.add_argument("--data", choices=DATASETS, default=d.data,
                   help="training data (default: %(default)s)")
    p.add_argument("--root", default=None, metavar="DIR",
                   help="data folder (cifar10: the cifar-10-batches-py folder; fashion-mnist: "
                        "default /usr/share/datasets/fashion-mnist)")
    p.add_argument("--steps", type=at_least(1), default=None, metavar="N",
                   help=f"optimiser steps, >= 1 (default: {d.steps})")
    p.add_argument("--batch-size", type=at_least(1), default=d.batch_size, metavar="N",
                   help="images per step, >= 1 (default: %(default)s)")
    p.add_argument("--lr", type=positive_real(), default=d.lr,
                   help="AdamW learning rate, > 0 (default: %(default)s)")
    p.add_argument("--weight-decay", type=non_negative_real(), default=d.weight_decay,
                   help="AdamW weight decay, >= 0 (default: %(default)s)")
    p.add_argument("--warmup-steps", type=at_least(0), default=d.warmup_steps, metavar="N",
                   help="linear learning-rate warm-up before the cosine decay, < steps "
                        "(default: %(default)s)")
    p.add_argument("--shift", type=at_least(0), default=d.shift, metavar="PX",
                   help="augmentation: random translations by up to PX pixels "
                        "(default: %(default)s)")
    p.add_argument("--hflip", action="store_true", help="augmentation: random left-right flips")
    p.add_argument("--width", type=at_least(2), default=d.width, metavar="W",
                   help="first-layer filters of the relu baseline, >= 2 (default: %(default)s)")
    p.add_argument("--kernel1", type=odd_positive(), default=d.kernel1, metavar="K",
                   help="first-layer kernel size, odd (default: %(default)s)")
    p.add_argument("--head", choices=HEADS, default=d.head,
                   help="classifier: gap (1x1 conv + global average) or dense (linear map of "
                        "the last feature map) (default: %(default)s)")
    p.add_argument("--depth-mult", type=at_least(1), default=d.depth_mult, metavar="M",
                   help="filters of conv2 and conv3 as a multiple of conv1's "
                        "(default: %(default)s)")
    p.add_argument("--init-scale1", type=positive_real(), default=d.init_scale1, metavar="S",
                   help="factor on conv1's default initial weights, > 0 (default: %(default)s)")
    p.add_argument("--seed", type=at_least(0), default=d.seed, metavar="N",
                   help="seed of data order, initialisation and label shuffling, >= 0 "
                        "(default: %(default)s)")
    p.add_argument("--shuffle-labels", action="store_true",
                   help="train on randomly permuted labels (a memorisation control)")
    p.add_argument("--n-train", type=at_least(1), default=None, metavar="N",
                   help="train on a seeded subset of N images (default: all)")
    p.add_argument("--n-test", type=at_least(1), default=d.n_test, metavar="N",
                   help="evaluate on a seeded subset of N test images (default: all)")
    p.add_argument("--checkpoints", type=at_least(1), nargs="*", default=[], metavar="STEP",
                   help="also save the model after these steps (OUT/checkpoints/)")
    p.add_argument("--threads", type=at_least(1), default=None, metavar="N",
                   help=f"torch CPU threads, >= 1 (default: {d.threads}; suite: each config's "
                        "own)")
    p.add_argument("--workers", type=at_least(1), default=2, metavar="N",
                   help="suite only: models trained at the same time, one process each "
                        "(default: %(default)s)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: crelu-weights; for 'suite' the package's "
                        "verify/weights folder)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
