"""One writer at a time for each experiment folder: an advisory lock, waited for."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import ConfigWriterError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer at a time is then the user's care
    fcntl = None  # type: ignore[assignment]

# How long a writer waits for another one of the same folder before giving up.
LOCK_TIMEOUT_SECONDS = 120.0


@contextlib.contextmanager
def writing(folders: Iterable[Path], timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """Hold the advisory lock of each folder's experiment folder: one writer at a time.

    The lock is ``flock`` on the experiment folder itself, so nothing is left behind. It is
    taken before the experiment is read and held until its files are swapped in, so a second
    writer waits and then reads what the first one wrote. Folders are locked in one order, so
    two writers of several experiments cannot wait on each other.

    Raises:
        ConfigWriterError: another writer held a folder longer than ``timeout`` seconds.
    """
    with contextlib.ExitStack() as stack:
        for parent in sorted({os.path.realpath(folder.parent) for folder in folders}):
            stack.enter_context(_locked(Path(parent), timeout))
        yield


@contextlib.contextmanager
def _locked(folder: Path, timeout: float) -> Iterator[None]:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except FileNotFoundError:
        yield  # nothing there to write yet: the error comes from what needs it
        return
    if fcntl is None:
        os.close(descriptor)
        yield
        return
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ConfigWriterError(
                        f"another torchtune-config-writer has been writing here for "
                        f"{timeout:.0f} s: wait for it to finish, then run this again",
                        folder,
                    ) from None
                time.sleep(0.01)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock
