"""Run the registered claims and write report.json and report.md."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Iterable

from tqdm import tqdm

from verify.claims import Context, all_claims


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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(profile=profile, seed=int(seed), out_dir=out)
    claims = [c for c in all_claims() if profile in c.profiles]
    if only:
        prefixes = tuple(only)
        claims = [c for c in claims if c.id.startswith(prefixes)]
        if not claims:
            raise ValueError(f"no claim id starts with any of {list(prefixes)}")
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
        "versions": versions(),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(render_markdown(report))
    return report


def failed_theorems(report: dict[str, Any]) -> list[str]:
    """Ids of theorem claims whose status is not ``pass``."""
    return [c["id"] for c in report["claims"] if c["kind"] == "theorem" and c["status"] != "pass"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and len(value) > 8:
        return f"[{len(value)} values]"
    return str(value)


def render_markdown(report: dict[str, Any]) -> str:
    """A human-readable report: summary table, then one section per claim with figures."""
    lines = [
        "# crelu-theory verification report",
        "",
        f"Profile `{report['profile']}`, seed {report['seed']}, {report['elapsed_s']} s. "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        "",
        "| claim | kind | status | negative control (expected fail) |",
        "|---|---|---|---|",
    ]
    for c in report["claims"]:
        lines.append(
            f"| `{c['id']}` | {c['kind']} | **{c['status']}** | {c['negative_control']['status']} |"
        )
    for c in report["claims"]:
        lines += [
            "",
            f"## `{c['id']}` — {c['status']}",
            "",
            c["statement"],
            "",
            f"*Source:* {c['source']}  ",
            f"*Threshold:* {c['threshold']}  ",
            f"*Why this tolerance:* {c['tolerance_rationale']}",
            "",
        ]
        for key, value in c["measured"].items():
            if key == "error":
                lines += ["```", str(value), "```"]
            else:
                lines.append(f"- {key}: {_fmt(value)}")
        nc = c["negative_control"]
        lines += ["", f"*Negative control:* {nc['description']} → **{nc['status']}**"]
        for key, value in nc["measured"].items():
            lines.append(f"  - {key}: {_fmt(value)}")
        for note in c["notes"]:
            lines.append(f"\n> {note}")
        for fig in c["figures"]:
            lines += ["", f"![{c['id']}]({fig})"]
    return "\n".join(lines) + "\n"
