"""mkdocs hook: serve MathJax from the site itself, never from the internet.

The docs typeset their formulas with MathJax 3 (``pymdownx.arithmatex`` in generic mode
marks them up; ``docs/javascripts/mathjax-config.js`` configures MathJax). MathJax is not
committed to this repository: the ``docs`` extra installs the PyPI package
``django-static-mathjax``, which ships MathJax's own ``es5`` build unmodified (Apache-2.0;
the package has no dependencies and needs no Django to be installed or read). This hook adds
two of its files to the site:

* ``javascripts/mathjax/tex-svg-full.js``: TeX input with every TeX extension built in (so
  MathJax never loads an extension at run time) and SVG output (glyphs are paths: no web
  fonts to load, which also makes the pages work when opened from ``file://``);
* ``javascripts/mathjax/LICENSE``: MathJax's licence, shipped beside it.

It works for ``mkdocs build`` and ``mkdocs serve`` alike (the files are added in
``on_files``, before either writes or serves anything).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

#: The MathJax release the docs are written against (the es5 component names below are
#: MathJax 3's; MathJax 4 renamed them).
MATHJAX_VERSION = "3.2.2"
#: Where the files land in the site; ``mkdocs.yml``'s ``extra_javascript`` names the script.
SITE_DIR = "javascripts/mathjax"
FILES = ("es5/tex-svg-full.js", "LICENSE")


def mathjax_root() -> Path:
    """The folder of the installed MathJax distribution (with its ``package.json``).

    Raises
    ------
    PluginError
        If ``django-static-mathjax`` is not installed or ships another MathJax version.
    """
    spec = importlib.util.find_spec("mathjax")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        root = Path(location) / "static" / "mathjax"
        package = root / "package.json"
        if package.is_file():
            version = json.loads(package.read_text()).get("version")
            if version != MATHJAX_VERSION:
                raise PluginError(
                    f"MathJax {version} found at {root}, but the docs need {MATHJAX_VERSION}: "
                    'reinstall the docs extra (pip install -e ".[docs]")')
            return root
    raise PluginError(
        "MathJax is not installed: the docs typeset math with the MathJax copy that the PyPI "
        'package django-static-mathjax ships; install the docs extra: pip install -e ".[docs]"')


def on_files(files: Files, config, **kwargs) -> Files:
    root = mathjax_root()
    for name in FILES:
        path = root / name
        if not path.is_file():
            raise PluginError(f"the MathJax distribution at {root} has no {name}")
        files.append(File.generated(config, f"{SITE_DIR}/{Path(name).name}",
                                    abs_src_path=str(path)))
    return files
