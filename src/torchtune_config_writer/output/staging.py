"""Building a new folder beside where it goes, before it is swapped or renamed into place: its
files written, the old folder's mode and group kept, a free name claimed for a new one."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from ..errors import ConfigWriterError


def write_file(path: Path, content: bytes) -> None:
    """Create the file ``path`` (it must not exist) holding ``content``."""
    # os-level calls: a large sweep writes thousands of files, and Path.write_bytes spends two
    # more system calls on each (a terminal check and a seek).
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)


def keep_metadata(folder: Path, new: Path) -> None:
    """Give the new folder the old one's mode and group (a lab's shared, setgid folder stays
    so), as far as this user may."""
    try:
        info = os.stat(folder)
    except FileNotFoundError:
        return
    with contextlib.suppress(PermissionError):
        os.chown(new, -1, info.st_gid)
    os.chmod(new, stat.S_IMODE(info.st_mode))


def claim_folder(parent: Path, name: str) -> Path:
    """Create the empty folder ``parent/name`` (``name_2``, ... if taken) and return it: the
    name is then this writer's, whoever else writes there.

    Raises:
        ConfigWriterError: every name up to ``name_999`` is taken.
    """
    for attempt in range(1, 1000):
        folder = parent / (name if attempt == 1 else f"{name}_{attempt}")
        try:
            os.mkdir(folder)
        except FileExistsError:
            continue
        return folder
    raise ConfigWriterError(f"too many folders named {name}_*", parent)
