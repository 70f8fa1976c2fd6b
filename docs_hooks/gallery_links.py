"""mkdocs hook: make mkdocs-gallery's pages correct for ``use_directory_urls: false``.

mkdocs-gallery (0.10) writes its links as if every page were a folder (``.../page/``):
image ``srcset`` attributes and multi-figure images start with ``../``, and the thumbnails
of the gallery index link to ``plot_x`` without a suffix. The docs use
``use_directory_urls: false`` (pages are ``page.html``, so that the site opens from
``file://``), where those links point one folder too high or at no file. This hook rewrites
them in the generated Markdown of the gallery pages only, and takes the TeX delimiters out of
the thumbnails' hover texts (attributes that MathJax never typesets). The browser test
(``tests/test_docs_site.py``) checks that every link of the built site resolves.
"""

from __future__ import annotations

import re

#: Where mkdocs-gallery writes its pages (``gallery_dirs`` in mkdocs.yml, below docs/).
GALLERY_PREFIX = "generated/"

_SRCSET = re.compile(r'srcset="\.\./')
_SRC = re.compile(r'src="\.\./(images/)')
_MULTI_IMAGE = re.compile(r"\]\(\.\./(images/)")
_THUMB_LINK = re.compile(r'(<a class="reference internal" href=")([^"/#.:]+)(")')
_TOOLTIP = re.compile(r'tooltip="([^"]*)"')
_TEX_DELIMITERS = re.compile(r"\\[()\[\]]")


def fix_gallery_markdown(markdown: str) -> str:
    """Rewrite one generated gallery page for pages served as ``name.html``."""
    markdown = _SRCSET.sub('srcset="', markdown)
    markdown = _SRC.sub(r'src="\1', markdown)   # figures written as <img> (several per cell)
    markdown = _MULTI_IMAGE.sub(r"](\1", markdown)
    markdown = _THUMB_LINK.sub(r"\1\2.html\3", markdown)
    return _TOOLTIP.sub(lambda m: f'tooltip="{_TEX_DELIMITERS.sub("", m.group(1))}"', markdown)


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    if config.use_directory_urls or not page.file.src_uri.startswith(GALLERY_PREFIX):
        return markdown
    return fix_gallery_markdown(markdown)
