"""The home page's claim tables, rendered from a committed snapshot of a real report.

The tables of ``docs/index.md`` are not typed by hand. ``docs/reports/quick.json`` is a
snapshot of the ``report.json`` that ``crelu verify --profile quick`` wrote: for every claim
its id, kind, statement, status and the status of its negative control, plus the run's
profile, seed, duration, library versions and the commit it ran on. As an mkdocs hook this
module replaces the markers ``<!-- report:NAME -->`` of ``index.md`` with tables rendered from
that snapshot, and ``<!-- nav:theory -->`` with the list of theory pages from ``mkdocs.yml``.
A marker missing from the page stops the build, so the tables cannot silently disappear.

Each claim links to the theory page that names it: the page whose text contains the claim id
in backticks; a name with a segment ``D`` or ``*`` (``table-D-crelu-beats-relu``) stands for
any run of segments there.

As a command (run from the repository root)::

    python docs_hooks/report_table.py --refresh           # run the quick profile, snapshot it
    python docs_hooks/report_table.py --refresh --from crelu-report/report.json
    python docs_hooks/report_table.py --check crelu-report/report.json

``--check`` exits with status 1, naming each difference, when a report's claims (ids, kinds,
statements, statuses, control statuses) differ from the snapshot; CI runs it on the report
its own quick run wrote, so a committed snapshot cannot go stale unnoticed.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import fnmatch
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "docs" / "reports" / "quick.json"
#: The fields of a claim that the tables show and that --check compares.
CLAIM_KEYS = ("id", "kind", "statement", "status", "control")
#: The markers of docs/index.md that the hook replaces.
MARKERS = tuple(f"<!-- report:{name} -->" for name in
                ("summary", "theorems", "replication", "provenance")) + ("<!-- nav:theory -->",)
_BACKTICKED = re.compile(r"`([a-z0-9*][a-z0-9*-]*)`", re.IGNORECASE)


# ---------------------------------------------------------------------------- snapshot


def snapshot_from_report(report: dict[str, Any], commit: str | None) -> dict[str, Any]:
    """The snapshot of a ``report.json``: the run's metadata and five fields per claim.

    The claims' ``source`` fields are left out on purpose: the tables do not show them.
    """
    if not report.get("claims"):
        raise ValueError("the report has no claims")
    claims = []
    for c in report["claims"]:
        try:
            claims.append({"id": c["id"], "kind": c["kind"], "statement": c["statement"],
                           "status": c["status"], "control": control_status(c)})
        except KeyError as exc:
            raise ValueError(f"claim {c.get('id', '?')!r} of the report lacks {exc}") from None
    return {
        "about": ("Snapshot of the report.json of `crelu verify --profile quick`, rendered into "
                  "docs/index.md by docs_hooks/report_table.py; refresh with "
                  "`python docs_hooks/report_table.py --refresh`."),
        "profile": report["profile"],
        "seed": report["seed"],
        "elapsed_s": report["elapsed_s"],
        "versions": report["versions"],
        "commit": commit,
        "refreshed": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "claims": claims,
    }


#: Short names of a replication claim's controls in the tables.
_SHORT = {"negative": "negative", "planted_positive": "positive", "planted_null": "null"}


def control_status(claim: dict[str, Any]) -> str:
    """The status of a theorem claim's negative control (``negative_control.status``), or a
    replication claim's two controls as ``"positive pass, null fail"`` (its ``controls``)."""
    if claim["kind"] == "theorem" or "controls" not in claim:
        return claim["negative_control"]["status"]
    return ", ".join(f"{_SHORT.get(k['kind'], k['kind'])} {k['status']}"
                     for k in claim["controls"])


def differences(snapshot: dict[str, Any], report: dict[str, Any]) -> list[str]:
    """What differs between the snapshot's claims and a report's, one line per difference."""
    fresh = snapshot_from_report(report, commit=None)
    out = []
    if snapshot["profile"] != fresh["profile"]:
        out.append(f"profile: snapshot {snapshot['profile']!r}, report {fresh['profile']!r}")
    old = {c["id"]: c for c in snapshot["claims"]}
    new = {c["id"]: c for c in fresh["claims"]}
    out += [f"{cid}: in the report, not in the snapshot" for cid in new if cid not in old]
    out += [f"{cid}: in the snapshot, not in the report" for cid in old if cid not in new]
    for cid in new.keys() & old.keys():
        for key in CLAIM_KEYS[1:]:
            if old[cid][key] != new[cid][key]:
                out.append(f"{cid}: {key} is {old[cid][key]!r} in the snapshot, "
                           f"{new[cid][key]!r} in the report")
    if not out and [c["id"] for c in snapshot["claims"]] != [c["id"] for c in fresh["claims"]]:
        out.append("the claims are in another order")
    return out


def _git_commit() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "theory", "verify"],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + (" (with uncommitted changes in theory/ or verify/)" if dirty.strip() else "")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_snapshot(path: Path = SNAPSHOT) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"no report snapshot at {path}; create it with "
                                "`python docs_hooks/report_table.py --refresh`")
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------- rendering


def _cell(text: str) -> str:
    """Text for one Markdown table cell: no markup, no HTML, no cell break."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"([\\`*_\[\]{}|])", r"\\\1", text).replace("$", "&#36;")
    return " ".join(text.split())


def theory_pages(nav: Iterable[Any]) -> list[tuple[str, str]]:
    """``(title, path)`` of the pages of the nav section ``Theory`` of ``mkdocs.yml``."""
    for entry in nav or []:
        if isinstance(entry, dict) and "Theory" in entry:
            return [next(iter(item.items())) for item in entry["Theory"]]
    raise ValueError("mkdocs.yml's nav has no section 'Theory'")


def claim_pages(claim_ids: Iterable[str], pages: list[tuple[str, str]],
                docs_dir: Path) -> dict[str, tuple[str, str]]:
    """Claim id -> ``(title, path)`` of the first theory page that names it in backticks."""
    names = {path: set(_BACKTICKED.findall((docs_dir / path).read_text())) for _, path in pages}
    found: dict[str, tuple[str, str]] = {}
    for cid in claim_ids:
        for title, path in pages:
            patterns = ["-".join("*" if s in ("D", "*") else s for s in n.split("-"))
                        for n in names[path]]
            if cid in names[path] or any(fnmatch.fnmatchcase(cid, p) for p in patterns):
                found[cid] = (title, path)
                break
    return found


def _claim_table(claims: list[dict[str, Any]], where: dict[str, tuple[str, str]],
                 status: str, controls: str) -> str:
    rows = [f"| claim (its page) | what is checked | {status} | {controls} |",
            "|---|---|---|---|"]
    for c in claims:
        title, path = where.get(c["id"], ("", ""))
        claim = f"[`{c['id']}`]({path} \"{_cell(title)}\")" if path else f"`{c['id']}` (no page)"
        rows.append(f"| {claim} | {_cell(c['statement'])} | **{c['status']}** | {c['control']} |")
    return "\n".join(rows)


def _count(claims: list[dict[str, Any]], statuses: Iterable[str]) -> str:
    return ", ".join(f"{sum(c['status'] == s for c in claims)} {s}" for s in statuses)


def render(snapshot: dict[str, Any], where: dict[str, tuple[str, str]],
           pages: list[tuple[str, str]]) -> dict[str, str]:
    """Markdown for each marker of ``MARKERS``."""
    theorems = [c for c in snapshot["claims"] if c["kind"] == "theorem"]
    replication = [c for c in snapshot["claims"] if c["kind"] == "replication"]
    order = {"pass": 0, "fail": 1, "inconclusive": 2, "error": 3}
    replication.sort(key=lambda c: order.get(c["status"], 3))
    versions = ", ".join(f"{k} {v}" for k, v in snapshot["versions"].items())
    blocks = {
        "summary": (f"{len(snapshot['claims'])} claims in the `{snapshot['profile']}` profile: "
                    f"**{len(theorems)} theorem claims** "
                    f"({_count(theorems, ['pass', 'fail', 'error'])}) "
                    f"and **{len(replication)} replication claims** "
                    f"({_count(replication, ['pass', 'fail', 'inconclusive', 'error'])})."),
        "theorems": _claim_table(theorems, where, "status", "negative control (must fail)"),
        "replication": _claim_table(replication, where, "replicated? (status)",
                                    "controls (positive must pass, null must not)"),
        "provenance": (f"Rendered from `docs/reports/quick.json`, the snapshot of one run of "
                       f"`crelu verify --profile {snapshot['profile']} --seed {snapshot['seed']}`"
                       f" ({snapshot['elapsed_s']} s; {versions}; commit "
                       f"`{snapshot['commit'] or 'unknown'}`; snapshot taken "
                       f"{snapshot['refreshed']})."),
    }
    out = {f"<!-- report:{name} -->": text for name, text in blocks.items()}
    out["<!-- nav:theory -->"] = "\n".join(
        f"{i}. [{title}]({path})" for i, (title, path) in enumerate(pages, 1))
    return out


def fill_markers(markdown: str, blocks: dict[str, str]) -> str:
    """Replace each marker by ``blocks[marker]``; every marker must be in the page."""
    for marker, text in blocks.items():
        # A marker indented (inside a list item) indents every line of its block alike.
        found = re.search(rf"^([ \t]*){re.escape(marker)}[ \t]*$", markdown, re.MULTILINE)
        if not found:
            raise ValueError(f"docs/index.md lost its marker {marker} (alone on a line)")
        indented = "\n".join(found.group(1) + line if line else line
                              for line in text.split("\n"))
        markdown = markdown[:found.start()] + indented + markdown[found.end():]
    return markdown


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    if page.file.src_uri != "index.md":
        return markdown
    from mkdocs.exceptions import PluginError

    try:
        snapshot = load_snapshot()
        pages = theory_pages(config.nav)
        where = claim_pages([c["id"] for c in snapshot["claims"]], pages, Path(config.docs_dir))
        return fill_markers(markdown, render(snapshot, where, pages))
    except (ValueError, FileNotFoundError) as exc:
        raise PluginError(f"docs_hooks/report_table.py: {exc}") from exc


# ---------------------------------------------------------------------------- command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--refresh", action="store_true",
                       help="write docs/reports/quick.json from a quick run")
    group.add_argument("--check", metavar="REPORT",
                       help="exit 1 if REPORT's claims differ from the snapshot")
    parser.add_argument("--from", dest="source", metavar="REPORT",
                        help="with --refresh: snapshot this report.json instead of running "
                             "the quick profile (the commit recorded is the one checked out)")
    args = parser.parse_args(argv)
    if args.check:
        report = json.loads(Path(args.check).read_text())
        diff = differences(load_snapshot(), report)
        if diff:
            print(f"docs/reports/quick.json does not match {args.check}:", file=sys.stderr)
            for line in diff:
                print(f"  {line}", file=sys.stderr)
            print("refresh it: python docs_hooks/report_table.py --refresh --from "
                  f"{args.check}", file=sys.stderr)
            return 1
        print(f"docs/reports/quick.json matches {args.check} "
              f"({len(report['claims'])} claims)")
        return 0
    if args.source:
        report = json.loads(Path(args.source).read_text())
    else:
        with tempfile.TemporaryDirectory() as out:
            cmd = ["crelu", "verify", "--profile", "quick", "--no-progress", "--out", out]
            print("running", " ".join(cmd))
            done = subprocess.run(cmd, cwd=ROOT)
            if done.returncode not in (0, 1):  # 1: a theorem failed, which the table shows
                return done.returncode
            report = json.loads((Path(out) / "report.json").read_text())
    write_json_atomic(SNAPSHOT, snapshot_from_report(report, _git_commit()))
    print(f"wrote {SNAPSHOT.relative_to(ROOT)} ({len(report['claims'])} claims)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
