"""Docstrings hold no control characters: a TeX command such as \\beta or \\frac written in a
non-raw string becomes a backspace or a form feed, and the API page then shows a MathJax error
(found by the browser test: eight of them on api.html)."""

import importlib
import inspect
import pkgutil
import re

import pytest

import theory
import verify

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _modules():
    for pkg in (theory, verify):
        for m in pkgutil.iter_modules(pkg.__path__):
            if not m.ispkg:
                yield f"{pkg.__name__}.{m.name}"


def _documented(mod):
    objs = [mod]
    for _, obj in inspect.getmembers(mod):
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == mod.__name__:
            objs.append(obj)
            if inspect.isclass(obj):
                objs += [f for _, f in inspect.getmembers(obj)
                         if inspect.isfunction(f) or isinstance(f, property)]
    return objs


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_control_characters_in_docstrings(name):
    mod = importlib.import_module(name)
    bad = [getattr(o, "__qualname__", name) for o in _documented(mod)
           if _CONTROL.search(getattr(o, "__doc__", None) or "")]
    assert bad == [], f"{name}: docstrings with control characters (a TeX command in a non-raw string?): {bad}"


def test_the_check_sees_a_backspace():
    def f():
        """z = Ax + \beta"""  # noqa: D300 - the planted bug: \b is a backspace here

    assert _CONTROL.search(f.__doc__)
