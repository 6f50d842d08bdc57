"""Writing generated folders all or nothing, leaving files the tool did not write alone.

``configs/`` is replaced by renames, so a write interrupted at any point (even by SIGKILL) leaves
the complete old set of generated files or the complete new one, never a mix:

1. our files are written to ``.configs.tcw-new``, with a marker file ``.tcw-new`` (interrupted
   here: the next write discards it);
2. it is renamed ``.configs.tcw-ready``: from here on the new folder is complete;
3. files we did not write are moved from ``configs/`` into it;
4. ``configs/`` and ``.configs.tcw-ready`` are exchanged in one step (Linux ``renameat2``), so
   ``configs/`` never goes missing; elsewhere two renames do it;
5. the old folder (now without the marker) is removed, then the marker in ``configs/``.

The next write first finishes an interrupted one: the marker tells a staged new folder from an
old one that was already exchanged out. Until then ``configs/`` holds the complete old files, and
they are what ``check`` compares with. Between steps 3 and 4 the user's own files are in the
staged folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigWriterError
from ..launchers import LaunchBackend, owner_of
from ..reading import NotReadable, read_bounded

if TYPE_CHECKING:
    import ctypes

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer at a time is then the user's care
    fcntl = None  # type: ignore[assignment]
from ..workspace.layout import (
    STAGED_MARK,
    has_generated_name,
    has_tool_header,
    is_owned,
    staging_folders,
)
from ..workspace.repository import symlink_escape


@dataclass
class WriteResult:
    """What a write changed.

    Attributes:
        folder: The folder written.
        changed: Files written with new content (added or modified), sorted.
        removed: Our files that the new sweep no longer produces, sorted.
        replaced: Those of ``changed`` that were there before, with other content.
    """

    folder: Path
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)

    @property
    def unchanged(self) -> bool:
        """Nothing on disk needed to change."""
        return not self.changed and not self.removed


def _recover_interrupted_write(folder: Path) -> None:
    """Finish or discard a write of ``folder`` that was interrupted."""
    new, ready, old = staging_folders(folder)
    if new.exists():
        shutil.rmtree(new)
    if ready.exists() and not (ready / STAGED_MARK).exists():
        ready.rename(old)  # the old folder, already exchanged out of configs/
    if ready.exists():
        _swap_in(folder, ready, old)
    _finish(folder, old)


def _swap_in(folder: Path, ready: Path, old: Path) -> None:
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
    _finish(folder, old)


def _finish(folder: Path, old: Path) -> None:
    if old.exists():
        shutil.rmtree(old)
    (folder / STAGED_MARK).unlink(missing_ok=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the system cannot (then the caller renames)."""
    import ctypes  # only for the swap itself

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


@dataclass(frozen=True)
class FolderFiles:
    """The entries of a generated folder under the tool's names, each file read once: the drift
    check needs every file's bytes, and their header says whether the tool wrote it.

    Attributes:
        folder: The folder read.
        files: Each regular file under one of the tool's names, with its bytes.
        others: The tool's names held by anything else (a symlink, a folder, an unreadable file).
    """

    folder: Path
    files: dict[str, bytes]
    others: frozenset[str]

    def owned(self, name: str) -> bool:
        """Whether the file ``name`` is one the tool wrote (as :func:`is_owned` says)."""
        content = self.files.get(name)
        return content is not None and has_tool_header(content)

    def content(self, name: str) -> bytes | None:
        """The bytes of ``name`` as :func:`read_or_none` reads them."""
        if name in self.files:
            return self.files[name]
        return read_or_none(self.folder / name) if name in self.others else None


def read_folder_files(folder: Path) -> FolderFiles:
    """List ``folder`` once and read every regular file under a name the tool writes."""
    files: dict[str, bytes] = {}
    others = set()
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        entries = []
    for entry in entries:
        if not has_generated_name(entry.name):
            continue
        if entry.is_file(follow_symlinks=False):
            try:
                files[entry.name] = read_bounded(entry.path)
                continue
            except (OSError, NotReadable):
                pass  # not a file the tool could have written: not ours
        others.add(entry.name)
    return FolderFiles(folder, files, frozenset(others))


def check_generated_folder(
    folder: Path,
    *,
    launching: Collection[LaunchBackend] = (),
    listed: FolderFiles | None = None,
) -> None:
    """Refuse to write ``folder`` if it is a symlink or a file, or holds what is not ours under
    a name the tool writes.

    Args:
        folder: The generated folder.
        launching: The launch back ends the generation writes files for (a script of the
            user's under the name of another back end's file, ``slurm_array.sh``, is theirs to
            keep until the experiment launches with that one).
        listed: The folder's files, when they were read already.

    Raises:
        ConfigWriterError: the folder cannot be a generated folder, or writing it would replace
            or remove something the tool did not write.
    """
    if folder.is_symlink():
        raise ConfigWriterError(
            "is a symlink: generated folders are written only as real folders; remove the link",
            folder,
        )
    if folder.exists() and not folder.is_dir():
        raise ConfigWriterError("is a file where the generated folder goes: move it away", folder)
    for sibling in staging_folders(folder):
        if sibling.is_symlink():
            raise ConfigWriterError(
                "is a symlink where the tool stages a generated folder: remove it", sibling
            )
    escape = symlink_escape(folder.parent)
    if escape is not None:
        raise ConfigWriterError(
            f"leads out of the repository through a symlink (to {escape}): generated files are "
            "written only inside it",
            folder.parent,
        )
    for name, owned in _ownership(folder, listed).items():
        if not owned:
            owner = owner_of(name)
            if owner is not None and owner not in launching:
                continue
            raise _not_ours(folder / name)


def _not_ours(entry: Path) -> ConfigWriterError:
    """What to say of something of the user's under a name the tool writes."""
    if entry.is_symlink():
        kind = "a symlink"
    elif entry.is_dir():
        kind = "a folder"
    else:
        kind = "it has not the tool's header"
    return ConfigWriterError(
        f"{entry.name} was not written by torchtune-config-writer ({kind}), which writes a file "
        "of that name here: rename yours or move it out of the folder, and generate again "
        "(nothing was changed)",
        entry,
    )


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _ownership(folder: Path, listed: FolderFiles | None) -> dict[str, bool]:
    """Each entry of ``folder`` under one of the tool's names, sorted, and whether the tool wrote
    it: from ``listed`` when it is of this folder, else reading only each file's header (a write
    of 10,000 runs need not hold the old ones)."""
    if listed is not None and listed.folder == folder:
        names = sorted(listed.files.keys() | listed.others)
        return {name: listed.owned(name) for name in names}
    return {e.name: is_owned(e) for e in _entries(folder) if has_generated_name(e.name)}


def stale_files(folder: Path, produced: set[str], listed: FolderFiles | None = None) -> list[str]:
    """Files in ``folder`` that the tool writes but this generation did not produce, sorted."""
    return [
        name for name, owned in _ownership(folder, listed).items() if owned and name not in produced
    ]


def write_generated_folder(folder: Path, files: Iterable[tuple[str, bytes]]) -> WriteResult:
    """Make our files in ``folder`` exactly ``files``, all or nothing.

    Files that the new set does not contain but the tool wrote (a run a smaller sweep no longer
    produces) are removed; other files are kept as they are. Nothing is written when nothing
    changed.

    Args:
        folder: The generated folder, e.g. ``<experiment>/configs``.
        files: (name, bytes) pairs; names are plain file names.

    Raises:
        ConfigWriterError: the folder is a symlink, or the disk refuses the write.
    """
    check_generated_folder(folder)
    try:
        _recover_interrupted_write(folder)
        new, ready, old = staging_folders(folder)
        existed = folder.is_dir()
        if existed:
            _check_movable(folder)
        result = WriteResult(folder)
        written = set()
        try:
            # Inside the try: a Ctrl-C that lands just after the folder exists removes it too.
            new.mkdir()
            (new / STAGED_MARK).touch()
            for name, content in files:
                target = folder / name
                if existed and (target.exists() or target.is_symlink()) and not is_owned(target):
                    raise _not_ours(target)
                _write_file(new / name, content)
                written.add(name)
                before = read_or_none(folder / name) if existed else None
                if before != content:
                    result.changed.append(name)
                    if before is not None:
                        result.replaced.append(name)
            result.removed = stale_files(folder, written)
            result.changed.sort()
            if not result.unchanged:
                _keep_metadata(folder, new)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
        if result.unchanged:
            shutil.rmtree(new)
            return result
        new.rename(ready)
        _swap_in(folder, ready, old)
    except OSError as exc:
        # The staging folders are ours to know of: name the folder the user asked for.
        where = exc.filename if exc.filename and ".tcw-" not in str(exc.filename) else folder
        raise ConfigWriterError(
            f"cannot write the generated folder: {exc.strerror or exc}", where
        ) from None
    return result


def _check_movable(folder: Path) -> None:
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


def _keep_metadata(folder: Path, new: Path) -> None:
    """Give the new folder the old one's mode and group (a lab's shared, setgid folder stays
    so), as far as this user may."""
    try:
        info = os.stat(folder)
    except FileNotFoundError:
        return
    with contextlib.suppress(PermissionError):
        os.chown(new, -1, info.st_gid)
    os.chmod(new, stat.S_IMODE(info.st_mode))


def write_new_folder(
    parent: Path, name: str, render: Callable[[str], Iterable[tuple[str, bytes]]]
) -> Path:
    """Write a new folder ``parent/name`` (``name_2``, ... if taken), all or nothing.

    Args:
        parent: Where the folder goes; created if missing.
        name: The folder's name.
        render: Given the name the folder gets, its files as (relative path, bytes) pairs;
            paths may name sub-folders.

    Returns:
        The folder written.
    """
    # The folders this write makes, outermost first: a failed write takes them away again.
    created = [p for p in reversed((parent, *parent.parents)) if not p.exists()]
    staging: Path | None = None
    try:
        try:
            parent.mkdir(parents=True, exist_ok=True)
            folder = _claim(parent, name)  # first: the files name the folder they are in
            created.append(folder)
            import tempfile  # only a timestamped generation writes a new folder

            staging = Path(tempfile.mkdtemp(prefix=f".{name}.tcw-", dir=parent))
            for relative, content in render(folder.name):
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            staging.rename(folder)  # replaces the empty folder that claimed the name
            return folder
        except BaseException:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            for made in reversed(created):
                with contextlib.suppress(OSError):
                    os.rmdir(made)  # only when empty: never what another writer put there
            raise
    except OSError as exc:
        raise ConfigWriterError(
            f"cannot write the output folder: {exc.strerror or exc}", exc.filename or parent
        ) from None


def _claim(parent: Path, name: str) -> Path:
    for attempt in range(1, 1000):
        folder = parent / (name if attempt == 1 else f"{name}_{attempt}")
        try:
            os.mkdir(folder)
        except FileExistsError:
            continue
        return folder
    raise ConfigWriterError(f"too many folders named {name}_*", parent)


def _write_file(path: Path, content: bytes) -> None:
    # os-level calls: a large sweep writes thousands of files, and Path.write_bytes spends two
    # more system calls on each (a terminal check and a seek).
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)


def read_or_none(path: Path) -> bytes | None:
    """A file's bytes, or ``None`` if it cannot be read (missing, a folder)."""
    try:
        return read_bounded(path)
    except (OSError, NotReadable):
        return None
