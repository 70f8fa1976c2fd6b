"""report.md: the report.json of ``crelu verify`` as a page a person reads.

Measured values are nested dicts and lists; they are rendered as bullet lists (scalars and
short lists) and markdown tables (lists of records, dicts of records, and runs of records
that share their fields), never as a raw Python ``dict`` on one line. A record's nested
fields are flattened into dotted names (``R_crelu.ci``, ``stages[1].n_selected``). A table
with many fields and few records is transposed (one column per record) so that its lines stay
short. Every number is printed with 4 significant digits; report.json holds the full values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

#: Lists longer than this are summarised (count, min, max) instead of printed.
MAX_LIST = 8
#: Table cells (and row names) longer than this are cut (report.json has them in full).
MAX_CELL = 60
MAX_NAME = 90
#: A table with more fields than this (and at most MAX_TRANSPOSED records) gets one column
#: per record.
MAX_FIELDS = 6
MAX_TRANSPOSED = 8
#: The repository's docs folder, where a claim's ``docs`` page lives (absent in a wheel).
DOCS_DIR = Path(__file__).resolve().parents[1] / "docs"

CONTROL_NOTE = ("Each claim's *negative control* runs the same check on a deliberately broken "
                "input; it is expected to fail (a replication's control may also be "
                "inconclusive). A control that passes marks its claim failed: a check that "
                "accepts the broken input could not have failed.")


# ----------------------------------------------------------------------------- values
def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _is_leaf(v: Any) -> bool:
    """A scalar, or a list (of lists) of scalars: printed inline."""
    if _is_scalar(v):
        return True
    return isinstance(v, list) and all(_is_leaf(x) for x in v)


def fmt(v: Any) -> str:
    """One value as short text: floats to 4 significant digits, long lists summarised."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        if len(v) > MAX_LIST:
            nums = [x for x in v if isinstance(x, (int, float)) and not isinstance(x, bool)]
            if len(nums) == len(v):
                return f"{len(v)} values in [{fmt(min(nums))}, {fmt(max(nums))}]"
            return "[" + ", ".join(fmt(x) for x in v[:3]) + f", ... ({len(v)} items)]"
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    return str(v)


def flatten(v: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists of dicts as one level of dotted names -> leaf values."""
    if isinstance(v, dict):
        out: dict[str, Any] = {}
        for k, x in v.items():
            out.update(flatten(x, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        out = {}
        for i, x in enumerate(v, start=1):
            out.update(flatten(x, f"{prefix}[{i}]"))
        return out
    return {prefix: v}


def _cell(v: Any, limit: int = MAX_CELL) -> str:
    text = fmt(v).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def table(records: list[tuple[str, dict[str, Any]]], name_header: str = "") -> list[str]:
    """Markdown table of (name, flat record) pairs; transposed when fields are many."""
    fields: list[str] = list(dict.fromkeys(k for _, r in records for k in r))
    if len(fields) > MAX_FIELDS and len(records) <= MAX_TRANSPOSED:
        lines = ["| " + " | ".join([name_header or "field"] + [_cell(n) for n, _ in records])
                 + " |", "|---" * (len(records) + 1) + "|"]
        for f in fields:
            lines.append("| " + " | ".join([_cell(f)] + [_cell(r[f]) if f in r else ""
                                                          for _, r in records]) + " |")
        return lines
    lines = ["| " + " | ".join([name_header] + [_cell(f) for f in fields]) + " |",
             "|---" * (len(fields) + 1) + "|"]
    for n, r in records:
        lines.append("| " + " | ".join([_cell(n, MAX_NAME)] + [_cell(r[f]) if f in r else ""
                                                               for f in fields]) + " |")
    return lines


def _records_of_list(items: list[dict[str, Any]]) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """(name header, rows) of a list of dicts, named by their first field if it is a string."""
    rows = [flatten(x) for x in items]
    first = next(iter(items[0]), None)
    if first is not None and all(isinstance(x.get(first), str) for x in items):
        return str(first), [(str(x[first]), {k: v for k, v in r.items() if k != first})
                            for x, r in zip(items, rows)]
    return "", [(f"#{i}", r) for i, r in enumerate(rows, start=1)]


def render_measured(measured: dict[str, Any]) -> list[str]:
    """Scalars as a bullet list, then one table per group of records (see module notes)."""
    lines: list[str] = []
    scalars = [(k, v) for k, v in measured.items() if k != "error" and _is_leaf(v)]
    lines += [f"- {k}: {fmt(v)}" for k, v in scalars]
    if "error" in measured:
        lines += ["", "```", str(measured["error"]).rstrip(), "```"]
    # (title, name header, records); title "" marks a run of single records
    groups: list[tuple[str, str, list[tuple[str, dict[str, Any]]]]] = []
    for k, v in measured.items():
        if k == "error" or _is_leaf(v):
            continue
        if isinstance(v, list):  # a list of records (dicts), or of mixed values
            if all(isinstance(x, dict) for x in v):
                groups.append((k, *_records_of_list(v)))
            else:
                groups.append((k, "", [(f"#{i}", flatten(x)) for i, x in enumerate(v, start=1)]))
        elif isinstance(v, dict) and len(v) > 1 and all(isinstance(x, dict) for x in v.values()):
            groups.append((k, "", [(str(n), flatten(x)) for n, x in v.items()]))
        else:  # one record; runs of records with the same fields share a table
            rec = flatten(v)
            if groups and groups[-1][0] == "" and set(groups[-1][2][-1][1]) == set(rec):
                groups[-1][2].append((k, rec))
            else:
                groups.append(("", "", [(k, rec)]))
    for title, header, records in groups:
        lines += ["", f"*{title}*", ""] if title else [""]
        lines += table(records, header)
    return lines


# ----------------------------------------------------------------------------- page
def docs_link(page: str, report_dir: str | os.PathLike | None) -> str:
    """``docs/<page>`` as a link relative to the report folder when the docs are at hand."""
    if not page:
        return "none"
    path, _, anchor = page.partition("#")
    text = f"docs/{page}"
    target = DOCS_DIR / path
    if report_dir is None or not target.is_file():
        return f"`{text}`"
    rel = os.path.relpath(target, Path(report_dir).resolve())
    return f"[{text}]({Path(rel).as_posix()}{'#' + anchor if anchor else ''})"


def tally_line(tally: dict[str, dict[str, int]]) -> str:
    return "; ".join(f"{kind}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                     for kind, counts in tally.items())


def render_markdown(report: dict[str, Any], report_dir: str | os.PathLike | None = None) -> str:
    """A human-readable report: summary table and tally, then one section per claim."""
    lines = [
        "# crelu-theory verification report",
        "",
        f"Profile `{report['profile']}`, seed {report['seed']}, {report['elapsed_s']} s. "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        "",
    ]
    if "tally" in report:
        lines += [f"**Tally:** {tally_line(report['tally'])}.", ""]
    lines += [CONTROL_NOTE, "",
              "| claim | kind | status | negative control (expected to fail) |",
              "|---|---|---|---|"]
    for c in report["claims"]:
        lines.append(f"| [`{c['id']}`](#{c['id']}) | {c['kind']} | **{c['status']}** | "
                     f"{c['negative_control']['status']} |")
    for c in report["claims"]:
        lines += _claim_section(c, report_dir)
    return "\n".join(lines) + "\n"


def _claim_section(c: dict[str, Any], report_dir: str | os.PathLike | None) -> list[str]:
    nc = c["negative_control"]
    lines = [
        "",
        f'<a id="{c["id"]}"></a>',
        "",
        f"## `{c['id']}` — {c['status']}",
        "",
        c["statement"],
        "",
        f"*Source:* {c['source']}  ",
        f"*Docs:* {docs_link(c.get('docs', ''), report_dir)}  ",
        f"*Threshold:* {c['threshold']}  ",
        f"*Why this tolerance:* {c['tolerance_rationale']}",
        "",
        "**Measured**",
        "",
    ]
    lines += render_measured(c["measured"]) or ["(nothing)"]
    lines += ["", f"**Negative control** (expected to fail): {nc['description']} → "
                  f"**{nc['status']}**", ""]
    lines += render_measured(nc["measured"]) or ["(nothing)"]
    for note in c["notes"]:
        lines.append(f"\n> {note}")
    for fig in c["figures"]:
        lines += ["", f"![{c['id']}]({fig})"]
    return lines


def long_lines(text: str, limit: int = 200) -> Iterable[str]:
    """Lines of ``text`` longer than ``limit`` that are not prose (tables, lists, code)."""
    for line in text.splitlines():
        if len(line) > limit and line[:1] in "|-`" :
            yield line
