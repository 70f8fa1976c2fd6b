"""Checks of a built docs site: static (links, external resources) and in headless Chromium.

Used by ``tests/test_docs_site.py``. The static checks read the HTML and CSS files; the
browser checks load a page from ``file://`` in Debian's Chromium with its network cut off,
record every request the page makes (Chromium's net log) and read the DOM after MathJax ran.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: Flags for a headless Chromium as root with no network: no sandbox (root), no background
#: services that phone home, and every host name resolving to nothing, so that a request the
#: page makes fails at once instead of leaving the machine (the net log still records it).
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND",
)
#: Milliseconds of page time Chromium lets pass before it dumps the DOM or takes the
#: screenshot; MathJax typesets the longest page in well under a second of that.
VIRTUAL_TIME_MS = 20000

_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
_NOT_FILES = ("mailto:", "javascript:", "data:", "tel:", "blob:")
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""", re.IGNORECASE)
#: Elements and attributes that make the browser fetch something.
_RESOURCE_ATTRS = {
    "script": ("src",), "img": ("src", "srcset"), "source": ("src", "srcset"),
    "iframe": ("src",), "video": ("src", "poster"), "audio": ("src",), "embed": ("src",),
    "object": ("data",), "track": ("src",), "input": ("src",), "link": ("href",),
}
#: ``<link rel=...>`` values that name a related page rather than load anything.
_LINK_RELS_NOT_LOADED = {"canonical", "alternate", "author", "license", "next", "prev"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
         "source", "track", "wbr"}
#: Elements whose text is not prose: code, scripts, and MathJax's own output.
_NOT_PROSE = {"script", "style", "code", "pre", "textarea", "svg", "mjx-container", "noscript"}
_RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$")
#: A TeX command in prose: math whose delimiters Markdown ate (``\[`` at the end of a
#: paragraph becomes ``[``), so MathJax never saw it.
_TEX_COMMAND = re.compile(r"\\[A-Za-z]{2,}")


def is_external(url: str) -> bool:
    return bool(_EXTERNAL.match(url.strip()))


def _srcset_urls(value: str) -> list[str]:
    return [part.split()[0] for part in value.split(",") if part.strip()]


class _Page(HTMLParser):
    """One pass over a page: references, ids, prose text and the math elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.resources: list[tuple[str, str]] = []  # (tag, url) that the browser fetches
        self.links: list[str] = []  # every href/src/srcset target, resources included
        self.ids: set[str] = set()
        self.prose: list[str] = []
        self.math_total = 0
        self.math_untypeset = 0
        self.errors = 0
        self.styles: list[str] = []
        self._stack: list[tuple[str, bool]] = []  # (tag, is an arithmatex element)
        self._skip = 0
        self._math_open: list[bool] = []  # per open arithmatex element: typeset inside?

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        for key in ("id", "name"):
            if key in a and tag != "meta":
                self.ids.add(a[key])
        if "style" in a:
            self.styles.append(a["style"])
        for attr in ("href", "src", "srcset", "poster", "data"):
            if attr not in a:
                continue
            urls = _srcset_urls(a[attr]) if attr == "srcset" else [a[attr]]
            self.links += urls
            loaded = attr in _RESOURCE_ATTRS.get(tag, ())
            if tag == "link" and set(a.get("rel", "").lower().split()) & _LINK_RELS_NOT_LOADED:
                loaded = False
            if loaded:
                self.resources += [(tag, u) for u in urls]
        if "data-mjx-error" in a and tag != "merror":  # an SVG error box (its MathML twin
            self.errors += 1                          # in mjx-assistive-mml is not counted)
        if tag == "mjx-container":
            for i in range(len(self._math_open)):
                self._math_open[i] = True
        if tag in _VOID:
            return
        is_math = "arithmatex" in a.get("class", "").split()
        if is_math:
            self.math_total += 1
            self._math_open.append(False)
        self._stack.append((tag, is_math))
        if tag in _NOT_PROSE:
            self._skip += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or not any(t == tag for t, _ in self._stack):
            return
        while self._stack:
            open_tag, is_math = self._stack.pop()
            if open_tag in _NOT_PROSE:
                self._skip -= 1
            if is_math and not self._math_open.pop():
                self.math_untypeset += 1
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._stack and self._stack[-1][0] == "style":
            self.styles.append(data)
        elif self._skip == 0:
            self.prose.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def external_resources(html: str) -> list[str]:
    """The URLs outside the site that a page makes the browser fetch (tags and inline CSS)."""
    page = parse(html)
    out = [f"<{tag}> {url}" for tag, url in page.resources if is_external(url)]
    out += [f"CSS {url}" for css in page.styles for url in css_references(css) if is_external(url)]
    return out


def css_references(css: str) -> list[str]:
    return [m.group(1) or m.group(2) for m in _CSS_URL.finditer(css)]


def site_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def broken_links(site: Path) -> list[str]:
    """Every reference between files of the site whose target file, or anchor, is missing."""
    site = site.resolve()
    ids: dict[Path, set[str]] = {}
    problems = []

    def anchors(path: Path) -> set[str]:
        if path not in ids:
            ids[path] = parse(path.read_text(errors="replace")).ids
        return ids[path]

    for page_path in site_pages(site):
        page = parse(page_path.read_text(errors="replace"))
        ids[page_path.resolve()] = page.ids
        for url in page.links:
            url = url.strip()
            if not url or is_external(url) or url.lower().startswith(_NOT_FILES):
                continue
            parts = urlsplit(url)
            where = f"{page_path.relative_to(site)}: {url}"
            if parts.path.startswith("/"):
                # Root-absolute links break under file://. Only the 404 page has them, by
                # design: a web server serves it at any URL, so its links start at the root.
                if page_path.name != "404.html":
                    problems.append(f"{where} (root-absolute: breaks under file://)")
                    continue
                target = site / unquote(parts.path).lstrip("/")
            elif parts.path:
                target = page_path.parent / unquote(parts.path)
            else:
                target = page_path
            target = target.resolve()
            if site not in target.parents and target != site:
                problems.append(f"{where} (points outside the site)")
            elif target.is_dir():
                problems.append(f"{where} (a folder, not a page: breaks under file://)")
            elif not target.is_file():
                problems.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html" and \
                    unquote(parts.fragment) not in anchors(target):
                problems.append(f"{where} (no anchor #{parts.fragment})")
    for css in sorted(site.rglob("*.css")):
        for url in css_references(css.read_text(errors="replace")):
            if is_external(url):
                problems.append(f"{css.relative_to(site)}: {url} (external)")
            elif not url.lower().startswith(_NOT_FILES) and \
                    not (css.parent / unquote(urlsplit(url).path)).is_file():
                problems.append(f"{css.relative_to(site)}: {url} (no such file)")
    return problems


def math_problems(dom: str) -> list[str]:
    """What is wrong with the math of a page's DOM after MathJax ran (empty: nothing)."""
    page = parse(dom)
    out = []
    if page.math_untypeset:
        out.append(f"{page.math_untypeset} of {page.math_total} formulas not typeset")
    if page.errors:
        out.append(f"{page.errors} MathJax errors (TeX that MathJax could not parse)")
    text = " ".join("".join(page.prose).split())
    raw = [text[max(0, m.start() - 30):m.end() + 30] for m in _RAW_TEX.finditer(text)]
    if raw:
        out.append(f"{len(raw)} raw TeX delimiters in the visible text, e.g. {raw[:3]}")
    commands = [text[max(0, m.start() - 30):m.end() + 30] for m in _TEX_COMMAND.finditer(text)]
    if commands:
        out.append(f"{len(commands)} TeX commands in the visible text, e.g. {commands[:3]}")
    return out


def count_typeset(dom: str) -> int:
    return dom.count("<mjx-container")


# ---------------------------------------------------------------------------- Chromium


def chromium() -> str | None:
    """Path of a Chromium binary: ``$CHROMIUM``, else ``chromium`` on the PATH."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def load(url: str, workdir: Path, *, screenshot: Path | None = None,
         window: tuple[int, int] = (1280, 1800)) -> tuple[str, list[str]]:
    """Load ``url`` in headless Chromium; return the DOM and the page's network requests.

    The requests are those of Chromium's net log that the page itself started (not the
    browser's own background traffic): ``URL_REQUEST_START_JOB`` events with the page as
    initiator or top frame. ``file://`` loads never reach the net log, so for a page of a
    self-contained site the list is empty.
    """
    binary = chromium()
    if binary is None:
        raise FileNotFoundError("no chromium binary")
    workdir.mkdir(parents=True, exist_ok=True)
    netlog = workdir / "netlog.json"
    cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={workdir / 'profile'}",
           f"--log-net-log={netlog}", f"--virtual-time-budget={VIRTUAL_TIME_MS}",
           f"--window-size={window[0]},{window[1]}"]
    cmd += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    done = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode} on {url}: {done.stderr[-2000:]}")
    if screenshot and not screenshot.is_file():
        raise RuntimeError(f"chromium wrote no screenshot for {url}: {done.stderr[-2000:]}")
    return done.stdout, page_requests(netlog)


def page_requests(netlog: Path) -> list[str]:
    """URLs of the requests a page started, from a Chromium net log (see :func:`load`)."""
    text = netlog.read_text()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a log cut short at exit lacks its closing brackets
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log.get("events", []):
        params = event.get("params", {})
        if event.get("type") != start_job or "url" not in params:
            continue
        initiator = params.get("initiator", "")
        top_frame = params.get("network_isolation_key", "")
        if initiator not in ("", "not an origin") or top_frame.startswith("file://"):
            urls.append(params["url"])
    return sorted(set(urls))
