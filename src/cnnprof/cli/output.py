"""Files the user names on the command line (``--output``, ``--plot``): checked early, written
with one error.

A path cnnprof cannot write is a usage error (exit 2, docs/exit-codes.md) in every command.
Left to escape, the ``OSError`` would exit 1, which ``cnnprof check`` uses for "over budget":
CI would read a typo in ``--output`` as a budget failure. ``check_writable`` runs before the
slow work (building and profiling models), so the mistake costs no run; ``write_output`` (and
``writing`` around other writers) still turns what the cheap check cannot foresee (a full
disk, a race) into the same message.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cnnprof.errors import UsageError


def _refused(path: Path, option: str, reason: str) -> UsageError:
    return UsageError(f"cannot write {option} {path}: {reason}")


def _nearest_existing(directory: Path) -> Path:
    """``directory`` or its closest ancestor that exists (``mkdir(parents=True)`` starts
    there). A relative path ends at ``.``, which exists."""
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            return candidate
    return directory  # unreachable in practice: "." and "/" exist


def check_writable(path: Path, option: str = "--output") -> None:
    """Refuse ``path`` now if writing it later must fail; creates nothing.

    The reasons read like the ``OSError`` the write would raise, so the early and the late
    message look alike. ``os.access`` is always true for root: there only the "is a
    directory" / "not a directory" cases are caught early.
    """
    if path.is_dir():
        raise _refused(path, option, os.strerror(errno.EISDIR))
    if path.exists():
        if not os.access(path, os.W_OK):
            raise _refused(path, option, os.strerror(errno.EACCES))
        return
    ancestor = _nearest_existing(path.parent)
    if not ancestor.is_dir():
        raise _refused(path, option, f"{os.strerror(errno.ENOTDIR)} ({ancestor} is a file)")
    # creating an entry (a file, or the missing directories) needs write and search rights
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise _refused(path, option, f"{os.strerror(errno.EACCES)} ({ancestor})")


@contextmanager
def writing(path: Path, option: str = "--output") -> Iterator[None]:
    """Turn an ``OSError`` raised while writing ``path`` into the usage error."""
    try:
        yield
    except OSError as exc:
        raise _refused(path, option, exc.strerror or str(exc)) from None


@contextmanager
def replacing(path: Path, option: str = "--output") -> Iterator[Path]:
    """The one way cnnprof writes a file: the block writes the temporary path it is given
    (in ``path``'s directory, same suffix), which then replaces ``path`` in one rename. A
    write that fails half-way (a full disk, ``ulimit -f``, Ctrl-C) leaves the old file as
    it was and no temporary behind."""
    with writing(path, option):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                    suffix=f".tmp{path.suffix}")
        os.close(fd)
        temporary = Path(name)
        try:
            yield temporary
            os.chmod(temporary, _mode_for(path))
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def _mode_for(path: Path) -> int:
    """An existing file keeps its permissions; a new one gets what ``open()`` would give."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_output(path: Path, text: str, option: str = "--output") -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, creating its missing directories."""
    with replacing(path, option) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
