"""Whose each entry of a generated folder is: the tool's files (read once, for their bytes and
their header), and what of the user's a write must keep or refuse to replace."""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigWriterError
from ..launchers import LaunchBackend, owner_of
from ..reading import NotReadable, read_bounded
from ..workspace.layout import (
    has_generated_name,
    has_tool_header,
    is_owned,
    staging_folders,
)
from ..workspace.repository import symlink_escape


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
            raise not_ours(folder / name)


def not_ours(entry: Path) -> ConfigWriterError:
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


def read_or_none(path: Path) -> bytes | None:
    """A file's bytes, or ``None`` if it cannot be read (missing, a folder)."""
    try:
        return read_bounded(path)
    except (OSError, NotReadable):
        return None
