"""Reading the files a repository holds: regular files only, of bounded size, checked first.

A pull request can commit a symlink to ``/dev/zero`` or a named pipe under a name the tool reads
(``configs/base.lock.yaml``), or a file of gigabytes: each would make a commit or a CI job read
for ever. Every file is opened without blocking, looked at (``fstat``), and read only when it is
a regular file no larger than the limit, which every command shares.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import ConfigWriterError

# Far above any config, base, run_mapping.yaml of 10,000 runs or recipe file (about 2 MB).
MAX_FILE_BYTES = 32 * 1024 * 1024


class NotReadable(ConfigWriterError):
    """A path that is no regular file, or one past the size limit."""


def read_bounded(
    path: Path | str, limit: int = MAX_FILE_BYTES, *, start: int | None = None
) -> bytes:
    """The bytes of the regular file at ``path`` (its first ``start`` bytes, if given).

    Raises:
        FileNotFoundError, IsADirectoryError, PermissionError, OSError: as ``open`` does.
        NotReadable: a device, a pipe or a socket, or a file larger than ``limit``.
    """
    # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    descriptor = os.open(path, flags)
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise NotReadable(
                "is not a regular file (a device, a pipe or a socket): the tool reads files only; "
                "replace it with the file itself",
                Path(path),
            )
        wanted = limit if start is None else min(start, limit)
        if start is None and info.st_size > limit:
            raise NotReadable(_too_large(info.st_size, limit), Path(path))
        chunks, left = [], wanted + 1
        while left > 0:
            chunk = os.read(descriptor, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(descriptor)
    if start is not None:
        return data[:start]
    if len(data) > limit:  # it grew while being read
        raise NotReadable(_too_large(len(data), limit), Path(path))
    return data


def _too_large(size: int, limit: int) -> str:
    return (
        f"is {size / 2**20:.1f} MiB, more than the {limit // 2**20} MiB a file the tool reads may "
        "be: it is no config (or it is an attack); remove it"
    )
