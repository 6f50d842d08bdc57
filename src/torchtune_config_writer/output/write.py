"""Writing generated folders all or nothing, leaving files the tool did not write alone.

``configs/`` is staged beside itself and swapped in (the steps, and why no moment lacks a
complete ``configs/``, are in :mod:`.swap`); a timestamped generation's new folder is staged
under a temporary name and renamed into the name it claimed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigWriterError
from ..workspace.layout import STAGED_MARK, is_owned, staging_folders
from .ownership import check_generated_folder, not_ours, read_or_none, stale_files
from .recovery import recover_interrupted_write
from .staging import claim_folder, keep_metadata, write_file
from .swap import check_movable, swap_in


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
        recover_interrupted_write(folder)
        new, ready, old = staging_folders(folder)
        existed = folder.is_dir()
        if existed:
            check_movable(folder)
        result = WriteResult(folder)
        written = set()
        try:
            # Inside the try: a Ctrl-C that lands just after the folder exists removes it too.
            new.mkdir()
            (new / STAGED_MARK).touch()
            for name, content in files:
                target = folder / name
                if existed and (target.exists() or target.is_symlink()) and not is_owned(target):
                    raise not_ours(target)
                write_file(new / name, content)
                written.add(name)
                before = read_or_none(folder / name) if existed else None
                if before != content:
                    result.changed.append(name)
                    if before is not None:
                        result.replaced.append(name)
            result.removed = stale_files(folder, written)
            result.changed.sort()
            if not result.unchanged:
                keep_metadata(folder, new)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
        if result.unchanged:
            shutil.rmtree(new)
            return result
        new.rename(ready)
        swap_in(folder, ready, old)
    except OSError as exc:
        # The staging folders are ours to know of: name the folder the user asked for.
        where = exc.filename if exc.filename and ".tcw-" not in str(exc.filename) else folder
        raise ConfigWriterError(
            f"cannot write the generated folder: {exc.strerror or exc}", where
        ) from None
    return result


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
            folder = claim_folder(parent, name)  # first: the files name the folder they are in
            created.append(folder)
            import tempfile  # 4 ms: only a timestamped generation writes a new folder

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
