"""``crelu train-length``: pairing, invariance and the train-test gap at the suite's checkpoints.

The experiment is :mod:`verify.training_length`; this module is its command line.
"""

from __future__ import annotations

import argparse

from verify.argtypes import at_least

#: Defaults of the experiment, repeated here so that ``crelu --help`` stays light
#: (tests/test_training_length.py checks that they agree).
RESULTS = "verify/results/training_length.json"
REPS = 1000
BOOT = 2000


def run(args: argparse.Namespace) -> int:
    """Measure every checkpoint, write the results (and the figures if asked), print a table."""
    from verify.training_length import figures, markdown, run_training_length

    result = run_training_length(args.weights_dir, args.seed, args.out, reps=args.reps,
                                 boot=args.boot)
    print(markdown(result))
    if args.figures:
        for f in figures(result, args.figures):
            print(f"wrote {f}")
    print(f"wrote {args.out} ({result['seconds']} s)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``crelu train-length``."""
    p = sub.add_parser("train-length", help="pairing, invariance and train-test gap at the "
                                            "suite's checkpoints",
                       description="Effect versus training length, at the initial weights and "
                                   "every checkpoint of the suite models. Regenerate the "
                                   "committed results with: crelu train-length --out "
                                   f"{RESULTS} --figures docs/figures")
    p.add_argument("--out", default=RESULTS, metavar="FILE.json",
                   help="results file (default: %(default)s)")
    p.add_argument("--figures", default=None, metavar="DIR", help="folder for the three figures")
    p.add_argument("--weights-dir", default=None, metavar="DIR",
                   help="folder with the suite weights and checkpoints/ (default: shipped)")
    p.add_argument("--seed", type=at_least(0), default=0, metavar="N",
                   help="seed of the images and baselines (default: %(default)s)")
    p.add_argument("--reps", type=at_least(1), default=REPS, metavar="N",
                   help="pairing baseline repetitions (default: %(default)s)")
    p.add_argument("--boot", type=at_least(1), default=BOOT, metavar="N",
                   help="invariance bootstrap draws (default: %(default)s)")
    p.set_defaults(func=run)
