"""``crelu train MODEL --data DATASET ...``: train one model, or ``suite`` for the shipped set."""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import multiprocessing

from verify.models import HEADS, MODEL_NAMES
from verify.train import DATASETS, SUITE, WEIGHTS_DIR, TrainConfig, train


def _suite_job(stem: str, cfg: TrainConfig, out: str, root: str | None,
               progress: bool) -> dict:
    res = train(cfg, out_dir=out, stem=stem, root=root, progress=progress)
    return {"card": res.card, "weights": str(res.weights_path), "card_path": str(res.card_path)}


def _cmd_train(args: argparse.Namespace) -> int:
    progress = not args.no_progress
    if args.model == "suite":
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
                       description="Train one model of verify.models, or `suite` to regenerate "
                                   "the weights the verification suite ships (verify/weights, "
                                   "with their checkpoints in verify/weights/checkpoints) with "
                                   "the configs of verify.train.SUITE (the hyper-parameter "
                                   "options are then ignored; --threads, --workers, --root and "
                                   "--out are used).")
    p.add_argument("model", choices=list(MODEL_NAMES) + ["suite"])
    p.add_argument("--data", choices=DATASETS, default=d.data)
    p.add_argument("--root", default=None,
                   help="data folder (cifar10: the cifar-10-batches-py folder; fashion-mnist: "
                        "default /usr/share/datasets/fashion-mnist)")
    p.add_argument("--steps", type=int, default=None, help=f"optimiser steps (default {d.steps})")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps,
                   help="linear learning-rate warm-up before the cosine decay")
    p.add_argument("--shift", type=int, default=d.shift,
                   help="augmentation: random translations by up to this many pixels")
    p.add_argument("--hflip", action="store_true", help="augmentation: random left-right flips")
    p.add_argument("--width", type=int, default=d.width, help="first-layer filters of `relu`")
    p.add_argument("--kernel1", type=int, default=d.kernel1, help="first-layer kernel size")
    p.add_argument("--head", choices=HEADS, default=d.head,
                   help="classifier: gap (1x1 conv + global average) or dense (linear map of "
                        "the last feature map)")
    p.add_argument("--depth-mult", type=int, default=d.depth_mult,
                   help="filters of conv2 and conv3 as a multiple of conv1's")
    p.add_argument("--init-scale1", type=float, default=d.init_scale1,
                   help="factor on conv1's default initial weights")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--shuffle-labels", action="store_true", help="train on permuted labels")
    p.add_argument("--n-train", type=int, default=None, help="seeded training subset size")
    p.add_argument("--n-test", type=int, default=d.n_test, help="seeded test subset size")
    p.add_argument("--checkpoints", type=int, nargs="*", default=[],
                   help="steps after which to save a checkpoint (OUT/checkpoints/)")
    p.add_argument("--threads", type=int, default=None,
                   help=f"torch CPU threads (default {d.threads}; suite: each config's own)")
    p.add_argument("--workers", type=int, default=2,
                   help="suite only: models trained at the same time, one process each")
    p.add_argument("--out", default=None,
                   help="output folder (default crelu-weights; for `suite` the package's "
                        "verify/weights folder)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_train)
