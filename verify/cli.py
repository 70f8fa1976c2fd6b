"""The ``crelu`` command line: ``crelu verify`` (and further subcommands)."""

from __future__ import annotations

import argparse
import sys


def _cmd_verify(args: argparse.Namespace) -> int:
    from verify.runner import failed_theorems, run_suite

    report = run_suite(
        profile=args.profile, out_dir=args.out, seed=args.seed, only=args.only or None,
        progress=not args.no_progress,
    )
    width = max(len(c["id"]) for c in report["claims"])
    for c in report["claims"]:
        print(f"{c['id']:<{width}}  {c['kind']:<11}  {c['status']:<12}  "
              f"negative control: {c['negative_control']['status']}")
    failed = failed_theorems(report)
    print(f"\n{len(report['claims'])} claims in {report['elapsed_s']} s; "
          f"report written to {args.out}/report.json and report.md")
    if failed:
        print(f"FAILED theorem claims: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crelu", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verify", help="run the verification suite and write a report")
    p.add_argument("--profile", choices=["quick", "full"], default="quick")
    p.add_argument("--out", default="crelu-report", help="output folder (default: crelu-report)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", action="append", metavar="PREFIX",
                   help="run only claims whose id starts with PREFIX (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_verify)

    # Further subcommands register themselves here: module.add_parser(sub).
    for module_name in _SUBCOMMAND_MODULES:
        module = __import__(module_name, fromlist=["add_parser"])
        module.add_parser(sub)
    return parser


_SUBCOMMAND_MODULES: list[str] = [
    "verify.train_cmd",
    "verify.reconstruct_cmd",
    "verify.table_exp",
    "verify.training_length",
]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"crelu {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
