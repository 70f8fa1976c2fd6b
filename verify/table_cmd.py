"""``crelu table``: train the five variants with several seeds (paper Table 1 at small scale).

The experiment is :mod:`verify.table_exp`; this module is its command line. The default
``--out`` rewrites the committed results that the quick profile of ``crelu verify`` reads.
"""

from __future__ import annotations

import argparse

from verify.argtypes import at_least
from verify.configs import (TABLE_CONFIGS, TABLE_DEFAULT_DATA, TABLE_REGENERATE, TABLE_RESULTS,
                            TABLE_SEEDS)


def run(args: argparse.Namespace) -> int:
    """Train every (data set, variant, seed), write the records, print the table."""
    from verify.table_exp import markdown_table, run_table

    if "cifar10" in args.data and args.root is None:
        raise ValueError("--data cifar10 needs --root: the unpacked cifar-10-batches-py folder")
    result = run_table(data=args.data, seeds=args.seeds, threads=args.threads, steps=args.steps,
                       progress=not args.no_progress, out=args.out, workers=args.workers,
                       root=args.root)
    print(markdown_table(result))
    print(f"wrote {args.out} ({result['total_seconds']} s wall, {result['cpu_seconds']} s CPU)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``crelu table``."""
    p = sub.add_parser("table", help="train the five variants with several seeds (paper Table 1)",
                       description="Train the five variants of verify.models (ReLU, ReLU with "
                                   "double filters, CReLU, CReLU with half filters, AVR) with "
                                   "several seeds on each data set and write the per-run "
                                   "records (test and train error, parameters, seconds). "
                                   f"Regenerate the committed table with: {TABLE_REGENERATE}")
    p.add_argument("--data", nargs="+", default=list(TABLE_DEFAULT_DATA),
                   choices=list(TABLE_CONFIGS),
                   help=f"data sets (default: {' '.join(TABLE_DEFAULT_DATA)}; cifar10 needs "
                        "--root)")
    p.add_argument("--root", default=None, metavar="DIR",
                   help="data folder (cifar10: the unpacked cifar-10-batches-py folder)")
    p.add_argument("--seeds", nargs="+", type=at_least(0), default=list(TABLE_SEEDS),
                   metavar="N", help="training seeds of every variant, integers >= 0 "
                                     "(default: %(default)s)")
    p.add_argument("--workers", type=at_least(1), default=2, metavar="N",
                   help="runs trained at the same time, one process each (default: %(default)s)")
    p.add_argument("--threads", type=at_least(1), default=1, metavar="N",
                   help="torch CPU threads per run (default: %(default)s)")
    p.add_argument("--steps", type=at_least(1), default=None, metavar="N",
                   help="override the configured optimiser steps (smoke tests only)")
    p.add_argument("--out", default=str(TABLE_RESULTS), metavar="FILE.json",
                   help="results file, rewritten after every run (default: the committed "
                        "verify/results/table.json)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
