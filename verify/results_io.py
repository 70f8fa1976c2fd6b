"""Reading committed results files (verify/results/*.json) with clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_results_json(path: str | os.PathLike, key: str, what: str, regenerate: str
                      ) -> dict[str, Any]:
    """Load a results JSON whose ``key`` must hold a non-empty collection.

    Raises
    ------
    FileNotFoundError
        The file is missing (the message names the command that regenerates it).
    ValueError
        Not JSON, no ``key``, or an empty ``key``: "<path>: not a <what> results file (...)".
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; regenerate it with `{regenerate}`")
    try:
        result = json.loads(path.read_text())
        if not result[key]:
            raise ValueError(f"no {key}")
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a{'n' if what[0] in 'aeiou' else ''} {what} results file "
                         f"({exc})") from exc
    return result
