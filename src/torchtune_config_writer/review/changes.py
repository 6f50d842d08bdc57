"""What a change does to the runs: the generated folders at a commit against the working tree.

The committed folders are compared, not regenerated: they are what a pull request changes and
what the cluster runs. The other commit's files are read straight from git objects with
gitpython (imported only here, so the hook never pays for it). A run is known by its values
(``run_mapping.yaml``'s ``params``): the same values under another id is a renamed run, new
values an added run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigWriterError
from ..generation.run_ids import combination_key
from ..reading import read_bounded
from ..workspace.affected import git_listed
from ..workspace.layout import CONFIGS_DIR, LOCK_FILE, RUN_MAPPING, run_file
from ..workspace.repository import repository_root
from ..yaml_io import KeyPath

ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "(absent)"})()
_LOCK_FIELD = re.compile(r"# (recipe|torchtune|sha256): (.*)")

Read = Callable[[str], bytes | None]


@dataclass(frozen=True)
class ValueChange:
    """One key of the runs' configs that changed, and the runs it changed in.

    Attributes:
        keypath: Where in the config.
        old: Its value before (:data:`ABSENT` where the key was not there).
        new: Its value after (:data:`ABSENT` where it is gone).
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
        status: ``added``, ``deleted``, ``changed`` or ``unchanged``.
        base: The recorded base before and after (``llama3_2/1B_lora_single_device (torchtune
            0.6.1)``), or ``None`` where there is no recorded base.
        base_changed: Whether the recorded base's bytes changed.
        added: The runs only the working tree has, with their values.
        removed: The runs only the commit has, with their values.
        renamed: ``(old id, new id)`` of runs with the same values under another id.
        changes: Each changed key once, with the runs it changed in.
        runs_before: How many runs the commit has.
        runs_after: How many runs the working tree has.
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
        base_ref: A commit, branch or tag of the repository around ``start``.
        start: A folder inside the repository.

    Raises:
        ConfigWriterError: not a git repository, or ``base_ref`` is not a commit in it.
    """
    root = repository_root(start)
    if root is None:
        raise ConfigWriterError("not inside a git repository: diff compares with a commit", start)
    import git  # only here: the hook and generating never need it

    repo = git.Repo(root)
    try:
        commit = repo.commit(base_ref)
    except (git.BadName, ValueError, git.GitCommandError):
        raise ConfigWriterError(
            f"{base_ref} is not a commit of this repository: fetch it first (in a GitHub "
            "workflow, actions/checkout with fetch-depth: 0, or git fetch origin BASE_SHA)"
        ) from None
    blobs: dict[str, Any] = {
        str(item.path): item for item in commit.tree.traverse() if isinstance(item, git.Blob)
    }

    def old(name: str) -> bytes | None:
        blob = blobs.get(name)
        return None if blob is None else bytes(blob.data_stream.read())

    def new(name: str) -> bytes | None:
        try:
            return read_bounded(root / name)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    suffix = f"{CONFIGS_DIR}/{RUN_MAPPING}"
    before = {name[: -len(suffix)].rstrip("/") for name in blobs if _is_mapping(name, suffix)}
    listed = git_listed(root, [f":(glob)**/{suffix}", suffix])
    after = {name[: -len(suffix)].rstrip("/") for name in listed if (root / name).is_file()}
    folders = [
        _folder_change(folder, old if folder in before else None, new if folder in after else None)
        for folder in sorted(before | after)
    ]
    return Review(base_ref, commit.hexsha, folders)


def _is_mapping(name: str, suffix: str) -> bool:
    return name == suffix or name.endswith(f"/{suffix}")


def _folder_change(folder: str, old: Read | None, new: Read | None) -> FolderChange:
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
        listing.extend((ident, params) for ident, (params, _) in side.runs.items())
        return change
    change.base_changed = before.lock != after.lock
    old_ids = {combination_key(params): ident for ident, (params, _) in before.runs.items()}
    matched: set[str] = set()
    grouped: dict[tuple[KeyPath, str, str], ValueChange] = {}
    for ident, (params, raw) in after.runs.items():
        previous = old_ids.get(combination_key(params))
        if previous is None:
            change.added.append((ident, params))
            continue
        matched.add(previous)
        if previous != ident:
            change.renamed.append((previous, ident))
        was_raw, now_raw = before.runs[previous][1](), raw()
        if was_raw == now_raw:
            continue  # the same bytes: nothing to parse (most runs of most pull requests)
        was_config = _load(was_raw, f"{before.prefix}{run_file(previous)}")
        now_config = _load(now_raw, f"{after.prefix}{run_file(ident)}")
        for keypath, was, now in _value_changes(was_config, now_config):
            key = (keypath, repr(was), repr(now))
            found = grouped.get(key)
            runs = (*found.runs, ident) if found else (ident,)
            grouped[key] = ValueChange(keypath, was, now, runs)
    change.removed.extend(
        (ident, params) for ident, (params, _) in before.runs.items() if ident not in matched
    )
    change.changes = sorted(grouped.values(), key=lambda c: (_id_order(c.runs[0]), c.keypath))
    if not (change.changes or change.added or change.removed or change.renamed):
        change.status = "changed" if change.base_changed else "unchanged"
    return change


@dataclass(frozen=True)
class _Folder:
    """One side's generated folder: each run's values and its config file's bytes (read when
    asked for)."""

    prefix: str
    runs: dict[str, tuple[dict[str, Any], Callable[[], bytes | None]]]
    lock: bytes | None
    base: str | None


def _read_folder(prefix: str, read: Read) -> _Folder:
    mapping = _load(read(prefix + RUN_MAPPING), prefix + RUN_MAPPING)
    runs: dict[str, tuple[dict[str, Any], Callable[[], bytes | None]]] = {}
    entries = mapping.get("runs") if isinstance(mapping, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        ident = entry["id"]
        params = entry["params"] if isinstance(entry.get("params"), dict) else {}
        runs[ident] = (params, partial(read, prefix + run_file(ident)))
    lock = read(prefix + LOCK_FILE)
    return _Folder(prefix, runs, lock, _lock_label(lock))


def _load(raw: bytes | None, name: str) -> Any:
    if raw is None:
        return {}
    try:
        return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        raise ConfigWriterError("not valid YAML: regenerate it", name) from None


def _lock_label(lock: bytes | None) -> str | None:
    """``llama3_2/1B_lora_single_device (torchtune 0.6.1)`` from a lock's header."""
    if lock is None:
        return None
    fields = dict(_LOCK_FIELD.findall(lock[:2048].decode("utf-8", "replace")))
    recipe = fields.get("recipe", "?")
    version = fields.get("torchtune")
    return f"{recipe} (torchtune {version})" if version else recipe


def _value_changes(old: Any, new: Any) -> Iterator[tuple[KeyPath, Any, Any]]:
    """Every leaf key path whose value differs, in the new config's order, then removed ones."""
    before, after = dict(_flat(old)), dict(_flat(new))
    for keypath, value in after.items():
        was = before.get(keypath, ABSENT)
        if was is ABSENT or type(was) is not type(value) or was != value:
            yield keypath, was, value
    for keypath, value in before.items():
        if keypath not in after:
            yield keypath, value, ABSENT


def _flat(node: Any, keypath: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    """The config's values by key path, as a reviewer reads them: a list of plain values
    (``[q_proj, v_proj]``) and an empty mapping are one value; mappings and lists of mappings
    are looked into."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _flat(value, (*keypath, key))
    elif isinstance(node, list) and any(isinstance(item, (dict, list)) for item in node):
        for index, value in enumerate(node):
            yield from _flat(value, (*keypath, index))
    else:
        yield keypath, node


def _id_order(run_id: str) -> tuple[int, str]:
    return (len(run_id), run_id)
