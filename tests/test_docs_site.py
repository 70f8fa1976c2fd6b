"""The built docs site: self-contained, every link resolves, every formula typeset offline.

The site is the one ``mkdocs build --strict -d site`` wrote (``.ci/run`` builds it before
the tests; ``$CRELU_DOCS_SITE`` names another folder, and where it is set a missing site is a
failure, not a skip). The browser tests need Debian's ``chromium`` (``$CHROMIUM`` names
another binary); they load each page from ``file://`` with the network cut off. Screenshots
of the home page and two theory pages go to ``$CRELU_SCREENSHOTS`` (default
``ci-logs/screenshots/``).

Each check is also run on a small planted site with the defect it looks for (raw TeX, a TeX
error, a script from a CDN, a missing page or anchor), where it must report it.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import docs_site

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("CRELU_DOCS_SITE", ROOT / "site"))
SCREENSHOTS = Path(os.environ.get("CRELU_SCREENSHOTS", ROOT / "ci-logs" / "screenshots"))
THEORY_PAGES = 7
#: Pages known to show raw TeX, with the reason; the test below fails once they are fixed,
#: so that the entry is removed with the fix.
KNOWN_RAW_TEX: dict[str, str] = {}   # pages allowed to show raw TeX (none)
SHOTS = {"home.png": "index.html", "theory-rademacher.png": "theory/rademacher.html",
         "theory-maxpool.png": "theory/maxpool.html"}


@pytest.fixture(scope="module")
def site() -> Path:
    if not (SITE / "index.html").is_file():
        reason = (f"no built docs site at {SITE}: build it with "
                  "`mkdocs build --strict -d site` (the README's docs command)")
        if "CRELU_DOCS_SITE" in os.environ:
            pytest.fail(reason)
        pytest.skip(reason)
    return SITE


needs_chromium = pytest.mark.skipif(
    docs_site.chromium() is None,
    reason="no chromium: install Debian's package (apt-get install -y chromium, as root) "
           "to run the browser tests")


# ---------------------------------------------------------------------------- static


def test_no_external_resources(site):
    found = {str(p.relative_to(site)): docs_site.external_resources(p.read_text())
             for p in docs_site.site_pages(site)}
    assert {k: v for k, v in found.items() if v} == {}


def test_every_internal_link_resolves(site):
    assert docs_site.broken_links(site) == []


def test_site_has_the_pages_it_promises(site):
    theory = sorted((site / "theory").glob("*.html"))
    assert len(theory) == THEORY_PAGES, theory
    examples = sorted((site / "generated" / "examples").glob("plot_*.html"))
    assert 4 <= len(examples) <= 6, examples
    for page in examples:  # every example page shows at least one figure that its code made
        html = page.read_text()
        assert "images/mkd_glr_" in html, page
    index = (site / "index.html").read_text()
    for page in theory:
        assert f'href="theory/{page.name}"' in index, f"home page does not list {page.name}"
    assert (site / "javascripts" / "mathjax" / "tex-svg-full.js").stat().st_size > 1_000_000


# ---------------------------------------------------------------------------- browser


def _load_all(pages: list[Path], tmp: Path) -> dict[Path, tuple[str, list[str]]]:
    def one(item):
        i, page = item
        return page, docs_site.load(page.resolve().as_uri(), tmp / f"p{i}")

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, enumerate(pages)))


@pytest.fixture(scope="module")
def loaded(site, tmp_path_factory):
    if docs_site.chromium() is None:
        pytest.skip("no chromium")
    return _load_all(docs_site.site_pages(site), tmp_path_factory.mktemp("chromium"))


@needs_chromium
def test_formulas_typeset_on_every_page(site, loaded):
    problems = {str(p.relative_to(site)): docs_site.math_problems(dom)
                for p, (dom, _) in loaded.items()}
    assert {k: v for k, v in problems.items() if v and k not in KNOWN_RAW_TEX} == {}
    for page in sorted((site / "theory").glob("*.html")):
        assert docs_site.count_typeset(loaded[page][0]) > 0, f"no typeset formula on {page}"


@needs_chromium
@pytest.mark.parametrize("page", sorted(KNOWN_RAW_TEX))
def test_known_raw_tex_pages_still_broken(site, loaded, page):
    """Each entry of KNOWN_RAW_TEX still shows raw TeX; once fixed, delete the entry."""
    problems = docs_site.math_problems(loaded[site / page][0])
    assert problems, f"{page} renders its math now: remove it from KNOWN_RAW_TEX"
    pytest.xfail(f"{page}: {KNOWN_RAW_TEX[page]}: {problems[0][:160]}")


@needs_chromium
def test_pages_make_no_network_request(site, loaded):
    requests = {str(p.relative_to(site)): urls for p, (_, urls) in loaded.items() if urls}
    assert requests == {}


@needs_chromium
def test_screenshots(site, tmp_path):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, page in SHOTS.items():
        out = SCREENSHOTS / name
        out.unlink(missing_ok=True)
        docs_site.load((site / page).resolve().as_uri(), tmp_path / name, screenshot=out)
        assert out.stat().st_size > 10_000, out
    print(f"screenshots in {SCREENSHOTS}")


# ---------------------------------------------------------------------------- controls


def _planted_site(tmp_path: Path, site: Path | None) -> Path:
    planted = tmp_path / "planted"
    (planted / "js").mkdir(parents=True)
    mathjax = '<script src="js/config.js"></script><script src="js/tex-svg-full.js"></script>'
    if site is None:  # the static checks need the files to exist, not to work
        for name in ("config.js", "tex-svg-full.js"):
            (planted / "js" / name).write_text("")
    else:
        shutil.copy(site / "javascripts" / "mathjax" / "tex-svg-full.js", planted / "js")
        shutil.copy(site / "javascripts" / "mathjax-config.js", planted / "js" / "config.js")
        # the site's configuration expects Material's document$; a stand-in for it
        (planted / "js" / "config.js").write_text(
            "var document$ = {subscribe: function () {}};\n"
            + (planted / "js" / "config.js").read_text())
    pages = {
        "good.html": f'{mathjax}<p><span class="arithmatex">\\(x^2\\)</span></p>'
                     '<a href="raw.html#top">raw</a>',
        "raw.html": '<p id="top"><span class="arithmatex">\\(x^2\\)</span> and \\[ y \\]</p>'
                    '<p>delimiters that Markdown ate: [ \\frac{1}{2} ]</p>',
        "error.html": f'{mathjax}<p><span class="arithmatex">\\(\\frac{{1}}\\)</span></p>',
        "cdn.html": '<script src="https://cdn.example.org/mathjax.js"></script>'
                    '<link rel="stylesheet" href="//fonts.example.org/css">'
                    '<img srcset="a.png, https://img.example.org/b.png 2x">'
                    '<a href="https://example.org/">a link is not a resource</a>',
        "links.html": '<a href="missing.html">x</a><a href="good.html#nowhere">y</a>'
                      '<a href="js/">z</a><a href="/good.html">w</a><img src="good.html">',
    }
    for name, html in pages.items():
        (planted / name).write_text(f"<!doctype html><html><body>{html}</body></html>")
    return planted


def test_static_checks_catch_planted_defects(tmp_path):
    planted = _planted_site(tmp_path, None)
    ext = docs_site.external_resources((planted / "cdn.html").read_text())
    assert ext == ["<script> https://cdn.example.org/mathjax.js",
                   "<link> //fonts.example.org/css", "<img> https://img.example.org/b.png"]
    broken = docs_site.broken_links(planted)
    assert sorted(broken) == sorted([
        "links.html: missing.html (no such file)",
        "links.html: good.html#nowhere (no anchor #nowhere)",
        "links.html: js/ (a folder, not a page: breaks under file://)",
        "links.html: /good.html (root-absolute: breaks under file://)",
        "cdn.html: a.png (no such file)",
    ])
    raw = docs_site.math_problems((planted / "raw.html").read_text())
    assert raw[0] == "1 of 1 formulas not typeset" and "raw TeX delimiters" in raw[1]
    assert raw[2].startswith("1 TeX commands in the visible text")


@needs_chromium
def test_browser_checks_catch_planted_defects(site, tmp_path):
    planted = _planted_site(tmp_path, site)
    loaded = _load_all([planted / n for n in ("good.html", "raw.html", "error.html",
                                              "cdn.html")], tmp_path / "chromium")
    (good, good_req), (raw, _), (error, _), (_, cdn_req) = loaded.values()
    assert docs_site.math_problems(good) == [] and docs_site.count_typeset(good) == 1
    assert good_req == []
    assert docs_site.math_problems(raw)[0] == "1 of 1 formulas not typeset"
    assert any("MathJax errors" in p for p in docs_site.math_problems(error))
    assert "https://cdn.example.org/mathjax.js" in cdn_req
