"""Atomic outputs: a file or a folder appears complete, or the old one stays as it was.

Every output is written under a temporary name in the folder of its final path (the same file
system, so the final rename is atomic) and renamed onto that path only once it is complete.
If the write fails, the temporary is removed and the old output is untouched; if the process
is killed, the old output is untouched and a hidden ``.crelu-tmp-*`` entry may be left beside
it.

A folder is replaced with Linux's ``renameat2(RENAME_EXCHANGE)`` where the C library offers it
(one atomic step); elsewhere the old folder is first renamed aside, so a kill between the two
renames leaves it complete under ``.crelu-tmp-old-*`` rather than at its path.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_text(folder / "a.txt", "complete")
>>> (folder / "a.txt").read_text()
'complete'
>>> with atomic_directory(folder / "report") as stage:
...     _ = (stage / "report.json").write_text("{}")
>>> sorted(p.name for p in (folder / "report").iterdir())
['report.json']
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

PREFIX = ".crelu-tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file path beside ``path`` (same suffix); renamed onto ``path`` on success.

    The body writes the temporary file (any way it likes: ``savefig``, ``save_file``, ...).
    On an exception the temporary is removed and ``path`` keeps its old content.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=PREFIX, suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def savefig(fig: Any, path: str | os.PathLike, **kwargs: Any) -> str:
    """``fig.savefig(path, **kwargs)`` atomically; the format follows the suffix of ``path``."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)
    return str(path)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary folder beside ``path``; on success it replaces ``path`` as a whole.

    Parents of ``path`` are created. On an exception (or ``KeyboardInterrupt``) the temporary
    folder is removed and ``path`` is untouched.
    """
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{path.name}-", dir=path.parent))
    try:
        os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes 0700
        yield stage
        replace_directory(stage, path)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def replace_directory(src: Path, dst: Path) -> None:
    """Move folder ``src`` onto ``dst`` (which may exist: it is then deleted), same parent."""
    if not os.path.lexists(dst):
        os.rename(src, dst)
        return
    if not dst.is_dir() or dst.is_symlink():
        raise ValueError(f"{dst} exists and is not a folder")
    if _exchange(src, dst):  # dst now holds the new folder, src the old one
        shutil.rmtree(src)
        return
    old = Path(tempfile.mkdtemp(prefix=f"{PREFIX}old-{dst.name}-", dir=dst.parent))
    os.rmdir(old)
    os.rename(dst, old)
    os.rename(src, dst)
    shutil.rmtree(old)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with ``renameat2``; False where that is not available."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # old kernel or a file system without exchange: use the fallback
    raise OSError(err, os.strerror(err), str(b))
