"""The crelu command line: verify the theory, train the small CNNs, reconstruct images,
inspect your own network.

Each subcommand lives in its own module (verify/<name>_cmd.py) with ``add_parser(sub)`` and
``run(args)``; building the parser imports only those light modules, and each ``run`` imports
the numerical stack (torch, scipy, matplotlib, the claims) when it is called, so ``crelu
--help`` answers without loading it.
"""

from __future__ import annotations

import argparse
import sys

from verify import (
    inspect_cmd,
    invariance_cmd,
    reconstruct_cmd,
    table_cmd,
    train_cmd,
    train_length_cmd,
    verify_cmd,
)

#: The subcommands, in the order ``crelu --help`` lists them.
SUBCOMMANDS = (verify_cmd, train_cmd, train_length_cmd, reconstruct_cmd, table_cmd, invariance_cmd,
               inspect_cmd)


class _VersionAction(argparse.Action):
    """``--version``: the installed distribution's version, looked up only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="print the version of crelu-theory and exit"):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog} {version()}")
        parser.exit()


def version() -> str:
    """The version of the installed ``crelu-theory`` distribution (package metadata)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("crelu-theory")
    except PackageNotFoundError:
        return "unknown (crelu-theory is not installed; pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    """The ``crelu`` parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="crelu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the subcommand; bad input is a one-line error with exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, ArithmeticError, OSError) as exc:  # FileNotFoundError is an OSError
        print(f"crelu {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"crelu {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
