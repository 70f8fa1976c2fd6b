"""``crelu verify``: run the verification suite and write report.json, report.md and figures/."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any

from verify.argtypes import at_least

CONTROL_NOTE = ("negative control: the same check run on a deliberately broken input (ReLU in "
                "place of CReLU, a rank-deficient bank, a wrong adjoint, a bound scaled down, "
                "...). It is expected to fail (a replication's control may also be "
                "inconclusive); a control that passes marks its claim failed, because a check "
                "that accepts the broken input could not have failed.")


def run(args: argparse.Namespace) -> int:
    """Run the suite, print one line per claim and the tally; exit 1 if a theorem fails."""
    from verify.runner import failed_theorems, run_suite

    report = run_suite(profile=args.profile, out_dir=args.out, seed=args.seed,
                       only=args.only or None, progress=not args.no_progress)
    print_summary(report, args.out)
    failed = failed_theorems(report)
    if failed:
        print(f"FAILED theorem claims: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def print_summary(report: dict[str, Any], out: str) -> None:
    """One line per claim, the tally per kind, and what the control column means."""
    claims = report["claims"]
    width = max([len(c["id"]) for c in claims] + [5])
    print(f"{'claim':<{width}}  {'kind':<11}  {'status':<12}  negative control (expected to fail)")
    for c in claims:
        print(f"{c['id']:<{width}}  {c['kind']:<11}  {c['status']:<12}  "
              f"{c['negative_control']['status']}")
    print()
    for kind, counts in report["tally"].items():
        print(f"{kind + ':':<13}" + ", ".join(f"{n} {status}" for status, n in counts.items()))
    print("\n" + textwrap.fill(CONTROL_NOTE, width=95))
    print(f"\n{len(claims)} claims in {report['elapsed_s']} s; report written to "
          f"{out}/report.json and report.md")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``crelu verify``."""
    p = sub.add_parser(
        "verify", help="run the verification suite and write a report",
        description="Run every registered claim (theorem claims must pass; replication claims "
                    "report pass, fail or inconclusive from data) with its negative control, "
                    "and write DIR/report.json, DIR/report.md and DIR/figures/ (DIR: --out). The "
                    "report folder is written beside DIR and renamed into place at the end, so an "
                    "interrupted run leaves the previous report intact. Exit status 1 if a "
                    "theorem claim does not pass.")
    p.add_argument("--profile", choices=["quick", "full"], default="quick",
                   help="quick: minutes on two cores, from the shipped weights and results; "
                        "full: larger sizes, retraining and the slow experiments "
                        "(default: %(default)s)")
    p.add_argument("--out", default="crelu-report", metavar="DIR",
                   help="report folder; replaced as a whole if it holds an earlier report, "
                        "refused if it holds anything else (default: %(default)s)")
    p.add_argument("--seed", type=at_least(0), default=0, metavar="N",
                   help="run seed, an integer >= 0; the same seed gives the same report, "
                        "timings aside (default: %(default)s)")
    p.add_argument("--only", action="append", metavar="PREFIX",
                   help="run only the claims whose id starts with PREFIX (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
