"""What a change does to the runs: the generated folders at a commit against the working tree.

The committed folders are compared, not regenerated: they are what a pull request changes and
what the cluster runs. The other commit's files are read straight from git objects with
gitpython (imported only here, so the hook never pays for it). A run is known by its values
(``run_mapping.yaml``'s ``params``): the same values under another id is a renamed run, new
values an added run. A run's two configs are compared as ``show`` compares a run with its base
(:mod:`~torchtune_config_writer.config_diff`).

Both sides are a pull request's input, read as ``check`` reads the working tree: regular files
only (no symlink is followed, none committed is read), of bounded size, through the guarded YAML
reader, and only run ids that are plain names. A folder that breaks these rules is reported as
unreadable, and the others are compared all the same.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config_diff import differences
from ..errors import ConfigWriterError
from ..generation.run_ids import combination_key, run_number
from ..keypaths import KeyPath
from ..reading import MAX_FILE_BYTES, NotReadable, read_bounded
from ..workspace.affected import git_listed
from ..workspace.layout import CONFIGS_DIR, LOCK_FILE, RUN_MAPPING, run_file
from ..workspace.repository import (
    FETCH_HINT,
    repository_root,
    resolve_commit,
    through_symlink,
)
from ..yaml_read import Document, parse_yaml, plain

_LOCK_FIELD = re.compile(r"# (recipe|torchtune|sha256): (.*)")

_SUFFIX = f"{CONFIGS_DIR}/{RUN_MAPPING}"
_SYMLINK_MODE = 0o120000  # a git tree entry that is a symlink
_SYMLINK = (
    "is a symlink, or lies in a folder that is one: generated files are read only as the "
    "regular files the tool writes; replace the link with the file (generate writes it)"
)


@dataclass(frozen=True)
class ValueChange:
    """One key of the runs' configs that changed, and the runs it changed in.

    Attributes:
        keypath: Where in the config.
        old: Its value before (:data:`~torchtune_config_writer.config_diff.MISSING` where the
            key was not there).
        new: Its value after (``MISSING`` where it is gone).
        runs: The ids of the runs it changed in (their new ids).
    """

    keypath: KeyPath
    old: Any
    new: Any
    runs: tuple[str, ...]


@dataclass
class FolderChange:
    """How one generated folder changed.

    Attributes:
        folder: The experiment's folder, relative to the repository.
        status: ``added``, ``deleted``, ``changed``, ``unchanged`` or ``unreadable`` (a file
            of either side broke the rules: see ``error``).
        base: The recorded base before and after (``llama3_2/1B_lora_single_device (torchtune
            0.6.1)``), or ``None`` where there is no recorded base.
        base_changed: Whether the recorded base's bytes changed.
        added: The runs only the working tree has, with their values.
        removed: The runs only the commit has, with their values.
        renamed: ``(old id, new id)`` of runs with the same values under another id.
        changes: Each changed key once, with the runs it changed in.
        runs_before: How many runs the commit has.
        runs_after: How many runs the working tree has.
        error: Why the folder could not be compared (``unreadable``), else ``None``.
    """

    folder: str
    status: str
    base: tuple[str | None, str | None] = (None, None)
    base_changed: bool = False
    added: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    removed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    changes: list[ValueChange] = field(default_factory=list)
    runs_before: int = 0
    runs_after: int = 0
    error: str | None = None

    @property
    def changed_runs(self) -> list[str]:
        """The ids of the runs whose configs changed, in order."""
        return sorted({run for change in self.changes for run in change.runs}, key=_id_order)


@dataclass(frozen=True)
class Review:
    """The change of every generated folder between a commit and the working tree.

    Attributes:
        base_ref: The commit compared against, as given.
        base_commit: Its full hash.
        folders: Every generated folder on either side, by folder.
    """

    base_ref: str
    base_commit: str
    folders: list[FolderChange]

    @property
    def changed(self) -> list[FolderChange]:
        """The folders that are not unchanged."""
        return [folder for folder in self.folders if folder.status != "unchanged"]


def review_changes(base_ref: str, start: Path) -> Review:
    """Compare the generated folders of commit ``base_ref`` with the working tree.

    Args:
        base_ref: Anything git names a commit by (a branch, a tag, ``main~3``, a short hash).
        start: A folder inside the repository.

    Raises:
        ConfigWriterError: not a git repository, ``base_ref`` is not a commit in it, or its
            objects cannot be read.
    """
    root = repository_root(start)
    if root is None:
        raise ConfigWriterError("not inside a git repository: diff compares with a commit", start)
    commit = resolve_commit(root, base_ref)
    import git  # only here: the hook and generating never need it

    # Every gitpython failure ends here or in _Commit.read, as bad input: never a traceback.
    try:
        repo = git.Repo(root)
        old = _Commit(repo, commit, base_ref)
    except _git_errors() as exc:
        raise ConfigWriterError(
            f"{base_ref} cannot be read from git objects ({exc}): {FETCH_HINT}"
        ) from None
    try:
        new = _WorkTree(root)
        before, after = old.folders(), new.folders()
        folders = [
            _compared(folder, old if folder in before else None, new if folder in after else None)
            for folder in sorted(before | after)
        ]
    finally:
        repo.close()  # its cat-file processes
    return Review(base_ref, commit, folders)


def _git_errors() -> tuple[type[Exception], ...]:
    import git

    return (git.GitError, git.ODBError, ValueError)


class _Side(ABC):
    """One side of the comparison: its files by their names in the repository."""

    @abstractmethod
    def read(self, name: str) -> bytes | None:
        """The bytes of the regular file ``name``, ``None`` where there is none.

        Raises:
            ConfigWriterError: a symlink, no regular file, or past the size limit.
        """

    @abstractmethod
    def where(self, name: str) -> Path:
        """What to call the file ``name`` in a message."""

    @abstractmethod
    def folders(self) -> set[str]:
        """The experiment folders (``""`` for the top) holding a generated folder."""

    def document(self, name: str) -> Document | None:
        """The file ``name`` parsed by the guarded reader (aliases, depth, tags), or ``None``."""
        raw = self.read(name)
        return None if raw is None else parse_yaml(raw, self.where(name))


class _WorkTree(_Side):
    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, name: str) -> bytes | None:
        path = self.root / name
        if through_symlink(self.root, name):
            raise ConfigWriterError(_SYMLINK, path)
        try:
            return read_bounded(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise ConfigWriterError(f"cannot read: {exc.strerror or exc}", path) from None

    def where(self, name: str) -> Path:
        return self.root / name

    def folders(self) -> set[str]:
        listed = git_listed(self.root, [f":(glob)**/{_SUFFIX}", _SUFFIX])
        # lexists: a mapping that is a dangling symlink is reported, not taken for deleted.
        present = [name for name in listed if os.path.lexists(self.root / name)]
        return {_folder_of(name) for name in present}


class _Commit(_Side):
    def __init__(self, repo: Any, commit: str, label: str) -> None:
        import git

        self.label = label
        tree = repo.commit(commit).tree
        self.blobs: dict[str, Any] = {
            str(item.path): item for item in tree.traverse() if isinstance(item, git.Blob)
        }

    def read(self, name: str) -> bytes | None:
        blob = self.blobs.get(name)
        if blob is None:
            return None
        if blob.mode == _SYMLINK_MODE:
            raise ConfigWriterError(_SYMLINK, self.where(name))
        try:
            size = blob.size  # from the object's header: nothing past the limit is read
            if size > MAX_FILE_BYTES:
                raise NotReadable(_too_large(size), self.where(name))
            return bytes(blob.data_stream.read())
        except _git_errors() as exc:
            raise ConfigWriterError(
                f"cannot be read from git objects ({exc}): {FETCH_HINT}", self.where(name)
            ) from None

    def where(self, name: str) -> Path:
        return Path(f"{self.label}:{name}")  # git's own way to name a commit's file

    def folders(self) -> set[str]:
        return {_folder_of(name) for name in self.blobs if _is_mapping(name)}


def _too_large(size: int) -> str:
    return (
        f"is {size / 2**20:.1f} MiB, more than the {MAX_FILE_BYTES // 2**20} MiB a file the tool "
        "reads may be: it is no generated file (or it is an attack)"
    )


def _is_mapping(name: str) -> bool:
    return name == _SUFFIX or name.endswith(f"/{_SUFFIX}")


def _folder_of(mapping: str) -> str:
    return mapping[: -len(_SUFFIX)].rstrip("/")


def _compared(folder: str, old: _Side | None, new: _Side | None) -> FolderChange:
    """The folder's change; an unreadable folder (either side) is said, not fatal."""
    try:
        return _folder_change(folder, old, new)
    except ConfigWriterError as error:
        return FolderChange(folder or ".", "unreadable", error=str(error))


def _folder_change(folder: str, old: _Side | None, new: _Side | None) -> FolderChange:
    prefix = f"{folder}/{CONFIGS_DIR}/" if folder else f"{CONFIGS_DIR}/"
    before = _read_folder(prefix, old) if old else None
    after = _read_folder(prefix, new) if new else None
    status = "added" if before is None else "deleted" if after is None else "changed"
    change = FolderChange(
        folder or ".",
        status,
        (before.base if before else None, after.base if after else None),
        runs_before=len(before.runs) if before else 0,
        runs_after=len(after.runs) if after else 0,
    )
    if before is None or after is None:
        side = after or before
        assert side is not None
        listing = change.added if before is None else change.removed
        listing.extend(side.runs.items())
        return change
    change.base_changed = before.lock != after.lock
    old_ids = {combination_key(params): ident for ident, params in before.runs.items()}
    matched: set[str] = set()
    grouped: dict[tuple[KeyPath, str, str], ValueChange] = {}
    for ident, params in after.runs.items():
        previous = old_ids.get(combination_key(params))
        if previous is None:
            change.added.append((ident, params))
            continue
        matched.add(previous)
        if previous != ident:
            change.renamed.append((previous, ident))
        was_raw, now_raw = before.raw(previous), after.raw(ident)
        if was_raw == now_raw:
            continue  # the same bytes: nothing to parse (most runs of most pull requests)
        was, now = before.config(previous, was_raw), after.config(ident, now_raw)
        for difference in differences(was, now):
            key = (difference.keypath, repr(difference.old), repr(difference.new))
            found = grouped.get(key)
            runs = (*found.runs, ident) if found else (ident,)
            grouped[key] = ValueChange(difference.keypath, difference.old, difference.new, runs)
    change.removed.extend(
        (ident, params) for ident, params in before.runs.items() if ident not in matched
    )
    change.changes = sorted(grouped.values(), key=lambda c: (_id_order(c.runs[0]), c.keypath))
    if not (change.changes or change.added or change.removed or change.renamed):
        change.status = "changed" if change.base_changed else "unchanged"
    return change


@dataclass(frozen=True)
class _Folder:
    """One side's generated folder: each run's values, its recorded base; the runs' config
    files are read when asked for."""

    side: _Side
    prefix: str
    runs: dict[str, dict[str, Any]]
    lock: bytes | None
    base: str | None

    def raw(self, ident: str) -> bytes | None:
        return self.side.read(self.prefix + run_file(ident))

    def config(self, ident: str, raw: bytes | None) -> Any:
        if raw is None:
            return {}
        return plain(parse_yaml(raw, self.side.where(self.prefix + run_file(ident))).data)


def _read_folder(prefix: str, side: _Side) -> _Folder:
    """The folder's runs as its ``run_mapping.yaml`` records them.

    Raises:
        ConfigWriterError: the mapping is unreadable, records no runs, or an id is no run id
            (``../x`` would name a file outside the folder).
    """
    name = prefix + RUN_MAPPING
    document = side.document(name)
    data = document.data if document else None
    entries = data.get("runs") if isinstance(data, dict) else None
    if document is None or not isinstance(entries, list):
        raise ConfigWriterError(
            f"{RUN_MAPPING} records no `runs:` list: regenerate it", side.where(name)
        )
    runs: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(entries):
        ident = entry.get("id") if isinstance(entry, dict) else None
        params = entry.get("params", {}) if isinstance(entry, dict) else None
        if not isinstance(ident, str) or run_number(ident) is None or ident in runs:
            raise document.error(
                f"{RUN_MAPPING}: this entry's id is no run id of its own (`id: run_007`): "
                "regenerate it",
                ("runs", index),
            )
        runs[ident] = plain(params) if isinstance(params, dict) else {}
    lock = side.read(prefix + LOCK_FILE)
    return _Folder(side, prefix, runs, lock, _lock_label(lock))


def _lock_label(lock: bytes | None) -> str | None:
    """``llama3_2/1B_lora_single_device (torchtune 0.6.1)`` from a lock's header."""
    if lock is None:
        return None
    fields = dict(_LOCK_FIELD.findall(lock[:2048].decode("utf-8", "replace")))
    recipe = fields.get("recipe", "?")
    version = fields.get("torchtune")
    return f"{recipe} (torchtune {version})" if version else recipe


def _id_order(run_id: str) -> tuple[int, str]:
    return (len(run_id), run_id)
