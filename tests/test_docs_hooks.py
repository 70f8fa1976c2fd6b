"""The mkdocs hooks of docs_hooks/: the report snapshot and its tables, the gallery links."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

# The docs extra (pip install -e ".[docs]") brings these; without it there are no docs to test.
markdown = pytest.importorskip("markdown", reason="the docs extra is not installed")
yaml = pytest.importorskip("yaml", reason="the docs extra is not installed")
pytest.importorskip("mkdocs", reason="the docs extra is not installed")

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_hooks_{name}",
                                                  ROOT / "docs_hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report_table = _load("report_table")
gallery_links = _load("gallery_links")


@pytest.fixture(scope="module")
def snapshot():
    return report_table.load_snapshot()


def _report(snapshot) -> dict:
    """A report.json with the snapshot's claims (what --check compares)."""
    return {"profile": snapshot["profile"], "seed": snapshot["seed"],
            "elapsed_s": snapshot["elapsed_s"], "versions": snapshot["versions"],
            "claims": [{"id": c["id"], "kind": c["kind"], "statement": c["statement"],
                        "status": c["status"], "source": "not in the snapshot",
                        "negative_control": {"status": c["control"]}}
                       for c in snapshot["claims"]]}


def test_snapshot_has_every_quick_claim_of_the_registry(snapshot):
    """A new, renamed or reworded claim needs a refreshed snapshot (the command is named)."""
    from verify.claims import all_claims

    registry = [(c.id, c.kind, c.statement) for c in all_claims() if "quick" in c.profiles]
    snap = [(c["id"], c["kind"], c["statement"]) for c in snapshot["claims"]]
    assert snap == registry, "refresh: python docs_hooks/report_table.py --refresh"


def test_snapshot_cites_no_background_file(snapshot):
    text = json.dumps(snapshot)
    import re

    assert not re.search(r"(THEORY|DESIGN)[.]md", text)


def test_every_claim_is_named_by_a_theory_page(snapshot):
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    pages = report_table.theory_pages(nav)
    assert len(pages) == 7
    where = report_table.claim_pages([c["id"] for c in snapshot["claims"]], pages,
                                     ROOT / "docs")
    assert [c["id"] for c in snapshot["claims"] if c["id"] not in where] == []
    assert where["prop21-photos"][1] == "theory/proposition-2-1.md"
    # a name with the placeholder D (invariance.md) stands for the data set's name
    assert where["table-fashion-mnist-crelu-beats-relu"][1] == "theory/invariance.md"


def test_claim_pages_does_not_match_a_prefix(tmp_path):
    (tmp_path / "a.md").write_text("Checked by `maxpool-exact`.")
    assert report_table.claim_pages(["maxpool-exact-recovery"], [("A", "a.md")], tmp_path) == {}


def test_check_passes_on_the_same_claims_and_names_each_difference(snapshot, tmp_path):
    report = _report(snapshot)
    assert report_table.differences(snapshot, report) == []
    changed = copy.deepcopy(report)
    first, second = changed["claims"][0], changed["claims"][1]
    first["status"] = "fail" if first["status"] != "fail" else "pass"
    second["negative_control"]["status"] = "pass"
    changed["claims"].append(dict(first, id="a-new-claim"))
    del changed["claims"][2]
    diff = report_table.differences(snapshot, changed)
    assert len(diff) == 4, diff
    assert diff[0] == "a-new-claim: in the report, not in the snapshot"
    assert diff[1].startswith(f"{snapshot['claims'][2]['id']}: in the snapshot, not in")
    assert any(d.startswith(f"{first['id']}: status is") for d in diff)
    assert any(d.startswith(f"{second['id']}: control is") for d in diff)
    reordered = copy.deepcopy(report)
    reordered["claims"].reverse()
    assert report_table.differences(snapshot, reordered) == ["the claims are in another order"]

    same, other = tmp_path / "same.json", tmp_path / "other.json"
    same.write_text(json.dumps(report))
    other.write_text(json.dumps(changed))
    assert report_table.main(["--check", str(same)]) == 0
    assert report_table.main(["--check", str(other)]) == 1


def test_snapshot_rejects_a_report_without_claims():
    with pytest.raises(ValueError, match="no claims"):
        report_table.snapshot_from_report({"claims": []}, None)
    with pytest.raises(ValueError, match="lacks 'negative_control'"):
        report_table.snapshot_from_report({"claims": [{"id": "x", "kind": "theorem",
                                                       "statement": "s", "status": "pass"}]},
                                          None)


def test_rendered_tables_are_tables_of_the_claims(snapshot):
    """Rendered by Python-Markdown (the docs' renderer): one row per claim, five cells each,
    the statement's text intact although it contains |, *, _, [ ] and <."""
    html = markdown.markdown(report_table.render(snapshot, {}, [])["<!-- report:theorems -->"],
                             extensions=["tables"])
    theorems = [c for c in snapshot["claims"] if c["kind"] == "theorem"]
    assert html.count("<tr>") == len(theorems) + 1
    assert html.count("<td>") == 4 * len(theorems)
    identities = next(c for c in theorems if c["id"] == "crelu-identities")
    assert "|" in identities["statement"]
    escaped = (identities["statement"].replace("&", "&amp;").replace("<", "&lt;")
               .replace(">", "&gt;"))
    assert escaped in html


def test_cell_survives_markup():
    text = "a | b *c* _d_ [e](f) <script>x</script> `g` $h$ \\(i\\)"
    html = markdown.markdown(f"| x |\n|---|\n| {report_table._cell(text)} |",
                             extensions=["tables"])
    assert html.count("<td>") == 1
    assert "<script>" not in html and "<em>" not in html and "<a " not in html
    assert "<code>" not in html


def test_fill_markers_needs_every_marker():
    blocks = {m: "X" for m in report_table.MARKERS}
    page = "\n".join(report_table.MARKERS)
    assert report_table.fill_markers(page, blocks) == "\n".join("X" for _ in blocks)
    with pytest.raises(ValueError, match="lost its marker <!-- report:theorems -->"):
        report_table.fill_markers(page.replace("<!-- report:theorems -->", ""), blocks)
    # an indented marker (inside a list item) indents its whole block
    nav = "<!-- nav:theory -->"
    assert report_table.fill_markers(f"1. x\n    {nav}\n", {nav: "a. p\nb. q"}) == \
        "1. x\n    a. p\n    b. q\n"


def test_index_has_every_marker():
    index = (ROOT / "docs" / "index.md").read_text()
    assert [m for m in report_table.MARKERS if m not in index] == []


def test_gallery_links_for_pages_served_as_html():
    generated = (
        '![a](./images/mkd_glr_x_001.png){: .mkd-glr-single-img '
        'srcset="../images/mkd_glr_x_001.png"}\n'
        '    * ![b](../images/mkd_glr_x_002.png){: .mkd-glr-multi-img '
        'srcset="../images/mkd_glr_x_002.png"}\n'
        '<div class="mkd-glr-thumbcontainer" tooltip="Math \\(x\\) and \\[y\\]...">\n'
        '<a class="reference internal" href="plot_x">\n'
        '<a class="reference internal" href="plot_y.html">\n'
        '<img alt="x" src="../images/mkd_glr_x_003.png" srcset="../images/mkd_glr_x_003.png" />\n'
        '[theory](../../theory/maxpool.md)'
    )
    fixed = gallery_links.fix_gallery_markdown(generated)
    assert fixed == (
        '![a](./images/mkd_glr_x_001.png){: .mkd-glr-single-img '
        'srcset="images/mkd_glr_x_001.png"}\n'
        '    * ![b](images/mkd_glr_x_002.png){: .mkd-glr-multi-img '
        'srcset="images/mkd_glr_x_002.png"}\n'
        '<div class="mkd-glr-thumbcontainer" tooltip="Math x and y...">\n'
        '<a class="reference internal" href="plot_x.html">\n'
        '<a class="reference internal" href="plot_y.html">\n'
        '<img alt="x" src="images/mkd_glr_x_003.png" srcset="images/mkd_glr_x_003.png" />\n'
        '[theory](../../theory/maxpool.md)'
    )


def test_mathjax_hook_finds_the_pinned_release():
    mathjax = _load("mathjax")
    root = mathjax.mathjax_root()
    assert json.loads((root / "package.json").read_text())["version"] == "3.2.2"
    assert all((root / name).is_file() for name in mathjax.FILES)
