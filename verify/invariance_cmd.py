"""``crelu invariance``: invariance scores of the suite's networks, layer by layer (Sec. 4.2).

The experiment is :mod:`verify.invariance_exp`; this module is its command line. The default
``--out`` rewrites the committed per-unit results that the quick profile of ``crelu verify``
reads.
"""

from __future__ import annotations

import argparse

from verify.argtypes import at_least
from verify.configs import INVARIANCE_REGENERATE, INVARIANCE_RESULTS


def run(args: argparse.Namespace) -> int:
    """Score every model, write the per-unit data, print the layer scores with intervals."""
    import numpy as np

    from verify.invariance_exp import layer_table, markdown, run_invariance

    res = run_invariance(args.retrain, args.weights_dir, args.seed, args.out)
    tab = layer_table(res, np.random.default_rng(args.seed))
    print(markdown(tab, res["layers"]))
    print(f"wrote {args.out} ({res['seconds']} s)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``crelu invariance``."""
    p = sub.add_parser("invariance", help="invariance scores of the suite's networks (Sec. 4.2)",
                       description="Score the units of every layer of the suite's ReLU and "
                                   "CReLU networks (and their untrained starts) under "
                                   "translation, rotation and scaling of Fashion-MNIST test "
                                   "images, and write the per-unit data. Regenerate the "
                                   f"committed results with: {INVARIANCE_REGENERATE}")
    p.add_argument("--out", default=str(INVARIANCE_RESULTS), metavar="FILE.json",
                   help="results file (default: the committed verify/results/invariance.json)")
    p.add_argument("--retrain", action="store_true",
                   help="retrain the suite models first instead of using the shipped weights")
    p.add_argument("--weights-dir", default=None, metavar="DIR",
                   help="where retrained weights go (default: crelu-weights)")
    p.add_argument("--seed", type=at_least(0), default=0, metavar="N",
                   help="seed of the image subset and the bootstrap, >= 0 (default: %(default)s)")
    p.set_defaults(func=run)
