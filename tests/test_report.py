"""report.json and report.md: docs links, the tally, readable tables, atomic replacement."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from verify import report_md, runner
from verify.claims import Claim, Outcome, all_claims

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _anchors(page: Path) -> set[str]:
    """Heading ids of a docs page as mkdocs' toc extension makes them."""
    markdown = pytest.importorskip("markdown")
    md = markdown.Markdown(extensions=["toc"])
    md.convert(page.read_text())

    def walk(tokens):
        for t in tokens:
            yield t["id"]
            yield from walk(t["children"])
    return set(walk(md.toc_tokens))


def test_every_claim_links_an_existing_docs_section():
    for claim in all_claims():
        page, _, anchor = claim.docs.partition("#")
        assert page and anchor, f"{claim.id}: docs must be 'page.md#section', got {claim.docs!r}"
        assert (DOCS / page).is_file(), f"{claim.id}: no docs/{page}"
        assert anchor in _anchors(DOCS / page), f"{claim.id}: no section #{anchor} in {page}"
        # the background notes are not part of the repository: never cite them
        assert not re.search(r"(THEORY|DESIGN)[.]md", claim.source + claim.statement), claim.id


def test_the_anchor_check_can_fail():
    assert "no-such-section" not in _anchors(DOCS / "theory" / "maxpool.md")
    assert "theorem-our-formalisation" in _anchors(DOCS / "theory" / "maxpool.md")


NESTED = {
    "d_in": 4,
    "cases": [{"layer": "ConvLayer(8 filters)", "dense": [1.0, 2.0], "pass": True},
              {"layer": "ConvLayer(16 filters)", "dense": [0.5, 3.0], "pass": False}],
    "gaussian": {"L": 200, "R": {"value": 0.16, "ci": [0.15, 0.18]}, "sup": "exact",
                 "a": 1, "b": 2, "c": 3, "d": 4},
    "pixels": {"L": 12, "R": {"value": 0.03, "ci": [0.02, 0.04]}, "sup": "exact",
               "a": 1, "b": 2, "c": 3, "d": 4},
    "table": {"relu": {"err": 0.2, "params": 100}, "crelu": {"err": 0.1, "params": 200}},
    "long_list": list(range(50)),
}


def test_nested_measured_values_become_tables_not_dicts():
    text = "\n".join(report_md.render_measured(NESTED))
    assert "{'" not in text and "{\"" not in text
    assert "- d_in: 4" in text and "- long_list: 50 values in [0, 49]" in text
    assert "| layer | dense | pass |" in text
    assert "| ConvLayer(8 filters) | [1, 2] | True |" in text
    # two records with the same fields share one transposed table (a column each)
    assert "| field | gaussian | pixels |" in text and "| R.ci | [0.15, 0.18] | [0.02, 0.04] |" in text
    assert "|  | err | params |" in text and "| crelu | 0.1 | 200 |" in text
    assert not list(report_md.long_lines(text))


def test_the_old_renderer_would_fail_the_line_check():
    # the check above is not vacuous: one raw dict line of the size claims measure is caught
    raw = f"- cases: {[{'layer': 'x' * 20, 'value': i / 7} for i in range(6)]}"
    assert "{'" in raw and list(report_md.long_lines(raw))


def test_paths_in_the_staging_folder_are_reported_where_they_will_be(tmp_path):
    from verify.claims import Context

    stage, final = tmp_path / ".crelu-tmp-report-x", tmp_path / "report"
    ctx = Context(profile="full", seed=0, out_dir=stage, final_dir=final)
    assert ctx.report_path(stage / "results" / "table.json") == str(final / "results" / "table.json")
    outside = tmp_path / "elsewhere" / "table.json"
    assert ctx.report_path(outside) == str(outside)
    assert Context(profile="quick", seed=0, out_dir=stage).report_path(outside) == str(outside)


def _record(kind, status, error=False):
    measured = {"error": "Traceback ..."} if error else {"x": 1.0}
    return {"kind": kind, "status": status, "measured": measured}


def test_tally_counts_errors_apart_from_failures():
    records = [_record("theorem", "pass"), _record("theorem", "fail"),
               _record("theorem", "fail", error=True), _record("replication", "inconclusive"),
               _record("replication", "pass")]
    assert runner.tally(records) == {
        "theorem": {"pass": 1, "fail": 1, "error": 1},
        "replication": {"pass": 1, "fail": 0, "inconclusive": 1}}


def _claim(cid="toy", status="pass", measured=None):
    def check(ctx):
        return Outcome(status, dict(measured or {"nested": {"a": [1.5, 2.5], "b": "x"}}))
    return Claim(id=cid, kind="theorem", statement="s", source="ours", threshold="t",
                 tolerance_rationale="r", check=check,
                 negative_control=lambda ctx: Outcome("fail"), negative_control_description="d",
                 docs="theory/maxpool.md#theorem-our-formalisation")


def _run(monkeypatch, out, claims):
    monkeypatch.setattr(runner, "all_claims", lambda: claims)
    monkeypatch.setattr(runner, "versions", lambda: {"python": "3"})
    return runner.run_suite(out_dir=out, progress=False)


def test_report_records_docs_and_tally_and_links_the_page(tmp_path, monkeypatch):
    out = tmp_path / "report"
    report = _run(monkeypatch, out, [_claim()])
    saved = json.loads((out / "report.json").read_text())
    assert saved["claims"][0]["docs"] == "theory/maxpool.md#theorem-our-formalisation"
    assert saved["tally"] == report["tally"]
    md = (out / "report.md").read_text()
    link = next(line for line in md.splitlines() if line.startswith("*Docs:*"))
    target = link.split("](")[1].split("#")[0]
    assert (out / target).resolve() == (DOCS / "theory" / "maxpool.md").resolve()


def test_a_run_that_fails_midway_leaves_the_old_report(tmp_path, monkeypatch):
    out = tmp_path / "report"
    _run(monkeypatch, out, [_claim("old")])
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(report, report_dir=None):
        raise OSError("disk full while writing report.md")

    monkeypatch.setattr(runner, "render_markdown", broken)
    with pytest.raises(OSError, match="disk full"):
        _run(monkeypatch, out, [_claim("new")])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temporary folder left


def test_an_interrupted_run_leaves_the_old_report(tmp_path, monkeypatch):
    out = tmp_path / "report"
    _run(monkeypatch, out, [_claim("old")])
    before = (out / "report.json").read_bytes()

    def interrupted(ctx):
        raise KeyboardInterrupt

    claim = _claim("new")
    claim.check = interrupted  # KeyboardInterrupt is not caught by the claim guard
    with pytest.raises(KeyboardInterrupt):
        _run(monkeypatch, out, [_claim("first"), claim])
    assert (out / "report.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
