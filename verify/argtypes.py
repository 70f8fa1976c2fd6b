"""Checked argument types for the ``crelu`` subcommands: a bad value is a usage error.

Each factory returns a function for ``argparse``'s ``type=``: it converts the text and checks
the range, raising :class:`argparse.ArgumentTypeError` with a message that names the bound,
which argparse prints as ``crelu CMD: error: argument --seed: must be an integer >= 0, got
-1`` (exit status 2), never a traceback.

Examples
--------
>>> at_least(1)("3")
3
>>> open_interval(0, 1)("1e-10")
1e-10
"""

from __future__ import annotations

import argparse
import math
from typing import Callable


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _real(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def at_least(low: int) -> Callable[[str], int]:
    """An integer ``>= low``."""
    def parse(text: str) -> int:
        value = _integer(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def odd_positive() -> Callable[[str], int]:
    """An odd integer ``>= 1`` (a kernel size with a centre)."""
    def parse(text: str) -> int:
        value = _integer(text)
        if value < 1 or value % 2 == 0:
            raise argparse.ArgumentTypeError(f"must be an odd integer >= 1, got {value}")
        return value
    parse.__name__ = "odd integer >= 1"
    return parse


def positive_real() -> Callable[[str], float]:
    """A finite number ``> 0``."""
    def parse(text: str) -> float:
        value = _real(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be a number > 0, got {value:g}")
        return value
    parse.__name__ = "number > 0"
    return parse


def non_negative_real() -> Callable[[str], float]:
    """A finite number ``>= 0``."""
    def parse(text: str) -> float:
        value = _real(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be a number >= 0, got {value:g}")
        return value
    parse.__name__ = "number >= 0"
    return parse


def open_interval(low: float, high: float) -> Callable[[str], float]:
    """A number strictly between ``low`` and ``high``."""
    def parse(text: str) -> float:
        value = _real(text)
        if not low < value < high:
            raise argparse.ArgumentTypeError(
                f"must be a number in the open interval ({low:g}, {high:g}), got {value:g}")
        return value
    parse.__name__ = f"number in ({low:g}, {high:g})"
    return parse
