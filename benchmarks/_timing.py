"""Shared timing helper for the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def timeit(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of ``repeat`` calls of ``fn`` (seconds)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def write_rows(path, rows: list[dict]) -> None:
    """Write benchmark rows as JSON (NaN as null), atomically (temp file, then rename)."""
    import json
    import math
    import os
    import tempfile

    def clean(v):
        return None if isinstance(v, float) and not math.isfinite(v) else v

    data = [{k: clean(v) for k, v in r.items()} for r in rows]
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump({"rows": data}, fh, indent=1)
    os.replace(tmp, path)
