"""Reading and writing results files (verify/results/*.json): clear errors, atomic writes."""

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


def write_results_json(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``result`` as indented JSON to ``path`` (parents created; temp file, then rename).

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> out = Path(tempfile.mkdtemp()) / "sub" / "r.json"
    >>> write_results_json({"runs": [1]}, out) == out, json.loads(out.read_text())
    (True, {'runs': [1]})
    """
    from verify.atomic import write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(result, indent=1) + "\n")
    return path
