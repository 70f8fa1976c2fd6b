"""Run the registered claims and write report.json, report.md and figures/ atomically.

The whole report folder is built in a temporary folder beside ``out_dir``
(:func:`verify.atomic.atomic_directory`) and renamed onto ``out_dir`` once report.json and
report.md are written: an interrupted or failed run leaves the previous report as it was.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Iterable

from tqdm import tqdm

from verify.atomic import atomic_directory
from verify.claims import Context, all_claims
from verify.report_md import render_markdown as render_markdown

#: The statuses the tally counts per claim kind ("error": the check raised).
TALLY_KEYS = {"theorem": ("pass", "fail", "error"),
              "replication": ("pass", "fail", "inconclusive", "error")}


def versions() -> dict[str, str]:
    """Versions of the interpreter and the numerical libraries a report depends on."""
    import numpy
    import scipy
    import torch

    from theory import __version__

    return {
        "crelu-theory": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
    }


def check_report_folder(out: Path) -> None:
    """Refuse an ``out_dir`` that is a file, or a non-empty folder that holds no report.

    The run replaces ``out_dir`` as a whole, so it must be new, empty, or an earlier report
    (it has a report.json).
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "report.json").is_file():
        raise ValueError(f"--out {out} is a folder that holds no earlier report (no "
                         "report.json); the report replaces its folder as a whole, so choose a "
                         "new or empty folder")


def run_suite(
    profile: str = "quick",
    out_dir: str | Path = "crelu-report",
    seed: int = 0,
    only: Iterable[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every claim of ``profile`` (or those whose id starts with one of ``only``)."""
    if profile not in ("quick", "full"):
        raise ValueError(f"unknown profile {profile!r}; expected 'quick' or 'full'")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    out = Path(out_dir)
    check_report_folder(out)
    claims = [c for c in all_claims() if profile in c.profiles]
    if only:
        prefixes = tuple(only)
        claims = [c for c in claims if c.id.startswith(prefixes)]
        if not claims:
            raise ValueError(f"no claim id starts with any of {list(prefixes)}")
    with atomic_directory(out) as stage:
        ctx = Context(profile=profile, seed=int(seed), out_dir=stage, final_dir=out)
        t0 = time.perf_counter()
        records = []
        bar = tqdm(claims, desc="claims", unit="claim", disable=not progress)
        for claim in bar:
            bar.set_postfix_str(claim.id)
            records.append(claim.run(ctx))
        report = {
            "claims": records,
            "profile": profile,
            "seed": int(seed),
            "elapsed_s": round(time.perf_counter() - t0, 2),
            "tally": tally(records),
            "versions": versions(),
        }
        (stage / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (stage / "report.md").write_text(render_markdown(report, report_dir=out))
    return report


def tally(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Claims per kind and status; a claim whose check raised counts as ``error``, not fail."""
    counts = {kind: dict.fromkeys(keys, 0) for kind, keys in TALLY_KEYS.items()}
    for c in records:
        row = counts.setdefault(c["kind"], {})
        key = "error" if "error" in c["measured"] else c["status"]
        row[key] = row.get(key, 0) + 1
    if not counts["replication"]["error"]:
        del counts["replication"]["error"]
    return counts


def failed_theorems(report: dict[str, Any]) -> list[str]:
    """Ids of theorem claims whose status is not ``pass``."""
    return [c["id"] for c in report["claims"] if c["kind"] == "theorem" and c["status"] != "pass"]
