"""Swapping a staged folder in for ``configs/``, so that it never holds a mix of old and new.

``configs/`` is replaced by renames, so a write interrupted at any point (even by SIGKILL) leaves
the complete old set of generated files or the complete new one, never a mix:

1. our files are written to ``.configs.tcw-new``, with a marker file ``.tcw-new`` (interrupted
   here: the next write discards it);
2. it is renamed ``.configs.tcw-ready``: from here on the new folder is complete;
3. files we did not write are moved from ``configs/`` into it;
4. ``configs/`` and ``.configs.tcw-ready`` are exchanged in one step (Linux ``renameat2``), so
   ``configs/`` never goes missing; elsewhere two renames do it;
5. the old folder (now without the marker) is removed, then the marker in ``configs/``.

The next write first finishes an interrupted one (:mod:`.recovery`): the marker tells a staged
new folder from an old one that was already exchanged out. Until then ``configs/`` holds the
complete old files, and they are what ``check`` compares with. Between steps 3 and 4 the user's
own files are in the staged folder.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigWriterError
from ..workspace.layout import STAGED_MARK, is_owned

if TYPE_CHECKING:
    import ctypes


def check_movable(folder: Path) -> None:
    """Refuse, before anything moves, a write that could not finish: the folder must take new
    entries and give up old ones, and the user's sub-folders must move with it (moving a folder
    to another parent needs write permission on it).

    Raises:
        ConfigWriterError: what cannot be written, and how to make it writable.
    """
    for place in (folder.parent, folder):
        if not os.access(place, os.W_OK | os.X_OK):
            raise ConfigWriterError(
                "is read-only for this user, and regenerating replaces the folder: make it "
                f"writable (chmod u+w {place.name}) or generate as its owner; nothing was changed",
                place,
            )
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink() and not os.access(entry, os.W_OK):
            raise ConfigWriterError(
                "is a read-only folder of yours inside the generated folder, which regenerating "
                "moves: make it writable (chmod u+w) or move it out; nothing was changed",
                entry,
            )


def swap_in(folder: Path, ready: Path, old: Path) -> None:
    """Steps 3 to 5: the complete staged folder ``ready`` becomes ``folder``, with the user's
    files of the old one, and the old one is removed by way of ``old``."""
    if folder.exists():
        moved: list[str] = []
        try:
            for entry in sorted(folder.iterdir()):
                if not is_owned(entry):
                    entry.rename(ready / entry.name)
                    moved.append(entry.name)
        except OSError:
            # Put the user's files back and drop the new folder: configs/ is the old one.
            for name in moved:
                (ready / name).rename(folder / name)
            shutil.rmtree(ready, ignore_errors=True)
            raise
        if _exchange(ready, folder):
            ready.rename(old)
        else:
            folder.rename(old)
            ready.rename(folder)
    else:
        ready.rename(folder)
    finish(folder, old)


def finish(folder: Path, old: Path) -> None:
    """Step 5: the old folder removed, then the marker of the folder swapped in."""
    if old.exists():
        shutil.rmtree(old)
    (folder / STAGED_MARK).unlink(missing_ok=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


# Kept for the guarantee, not for speed: it costs 4 ms (ctypes) a write that two os.rename do not.
def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the system cannot (then the caller renames)."""
    import ctypes  # only for the swap itself (4 ms)

    renameat2 = getattr(_libc(), "renameat2", None) if sys.platform == "linux" else None
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # a file system that cannot swap
        return False
    raise OSError(code, os.strerror(code), str(a))


@cache
def _libc() -> ctypes.CDLL:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)
