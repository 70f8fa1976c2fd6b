"""verify.atomic: a write that fails midway leaves the old output intact and no temporary.

Each check is also run on a plain, non-atomic write with the same injected failure, which
must break the old output: otherwise the check could not tell atomic from non-atomic.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from verify import atomic


class Boom(RuntimeError):
    pass


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(atomic.PREFIX)]


def _half_then_fail(self, data, *args, **kwargs):
    """A write_text that writes half of its data and then fails."""
    with open(self, "w") as fh:
        fh.write(data[: len(data) // 2])
    raise Boom("disk full")


def test_write_text_replaces_and_sets_the_usual_mode(tmp_path):
    path = tmp_path / "report.json"
    atomic.write_text(path, "old")
    atomic.write_text(path, "new")
    assert path.read_text() == "new" and not _leftovers(tmp_path)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("writer, survives", [
    (atomic.write_text, True),
    (lambda p, text: Path(p).write_text(text), False),  # the non-atomic control
])
def test_a_write_failing_midway_leaves_the_old_file(tmp_path, monkeypatch, writer, survives):
    path = tmp_path / "report.md"
    path.write_text("old complete report")
    monkeypatch.setattr(Path, "write_text", _half_then_fail)
    with pytest.raises(Boom):
        writer(path, "new report " * 10)
    assert (path.read_text() == "old complete report") is survives
    assert not _leftovers(tmp_path)


def test_savefig_failing_midway_leaves_the_old_png(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    path = tmp_path / "panel.png"
    fig = plt.figure()
    atomic.savefig(fig, path)
    old = path.read_bytes()

    def half_then_fail(self, fname, *args, **kwargs):
        Path(fname).write_bytes(old[: len(old) // 2])
        raise Boom("killed while writing")

    monkeypatch.setattr(Figure, "savefig", half_then_fail)
    with pytest.raises(Boom):
        atomic.savefig(fig, path)
    plt.close(fig)
    assert path.read_bytes() == old and not _leftovers(tmp_path)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_atomic_directory_replaces_or_keeps_the_old_folder(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    out = tmp_path / "crelu-report"
    with atomic.atomic_directory(out) as stage:
        (stage / "report.json").write_text("old")
        (stage / "stale.png").write_text("x")
    assert (out / "report.json").read_text() == "old"
    with pytest.raises(Boom):
        with atomic.atomic_directory(out) as stage:
            (stage / "report.json").write_text("half")
            raise Boom("killed midway")
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "stale.png"]
    assert (out / "report.json").read_text() == "old" and not _leftovers(tmp_path)
    with atomic.atomic_directory(out) as stage:
        (stage / "report.json").write_text("new")
    # the new folder replaces the old one as a whole: nothing stale survives
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert (out / "report.json").read_text() == "new" and not _leftovers(tmp_path)


def test_reconstruction_panel_failing_midway_keeps_the_old_panel(tmp_path, monkeypatch):
    import numpy as np
    from matplotlib.figure import Figure

    from verify import figures

    class R:  # a reconstruction result as verify.deep returns them
        name, psnr, relative_error = "crelu", 150.0, 1e-8

    image = np.random.default_rng(0).random((3, 8, 12))
    R.x = image
    path = tmp_path / "panel.png"
    figures.reconstruction_panel(path, image, [R()], "title")
    old = path.read_bytes()

    def half_then_fail(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")
        raise Boom("killed while writing")

    monkeypatch.setattr(Figure, "savefig", half_then_fail)
    with pytest.raises(Boom):
        figures.reconstruction_panel(path, image, [R()], "title")
    assert path.read_bytes() == old and not _leftovers(tmp_path)


def test_the_examples_in_the_docstrings_run():
    import doctest

    from verify import argtypes

    for module in (atomic, argtypes):
        failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert attempted > 0 and failed == 0, module.__name__
