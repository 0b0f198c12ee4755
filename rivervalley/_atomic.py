"""Atomic file writes: a file is written all at once or not at all.

Every file the package writes (figures, their cache and manifest, saved results, the laws CLI's
parameters, predictions and plots, explorer snapshots) goes through :func:`write_atomic`: the
content goes to a temporary file in the same folder, is flushed to disk, and is renamed over the
target with ``os.replace`` (atomic on POSIX and Windows), so a reader never sees a partial file
and an interrupted write leaves the old file as it was.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], object] | bytes) -> None:
    """Write ``path`` all at once or not at all: ``write(file)`` (or the bytes) goes to a
    temporary file in the same folder, flushed to disk, then renamed over ``path``.

    An exception (or Ctrl-C) part way removes the temporary file and leaves ``path`` as it was.
    The file gets the usual permissions (0o666 less the umask), like ``open(path, "wb")``.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_atomic(folder / "a.txt", b"one")
    >>> def fail(f):
    ...     f.write(b"half")
    ...     raise RuntimeError("interrupted")
    >>> try:
    ...     write_atomic(folder / "a.txt", fail)
    ... except RuntimeError:
    ...     pass
    >>> (folder / "a.txt").read_bytes(), sorted(p.name for p in folder.iterdir())
    (b'one', ['a.txt'])
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(write, (bytes, bytearray)):
                f.write(write)
            else:
                write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
