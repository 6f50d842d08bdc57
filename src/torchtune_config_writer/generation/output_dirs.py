"""Where runs write, kept apart: within an experiment by splitting, across a repository by error.

torchtune writes under every key named ``output_dir`` (the top-level one, the checkpointer's,
the profiler's) and ``log_dir`` (the metric logger's): checkpoints land in
``checkpointer.output_dir/epoch_N``, so two runs that resolve one of these to the same folder
overwrite each other. A location is compared after its ``${...}`` references are filled in, as
OmegaConf will fill them when the run starts; a relative one is relative to the experiment's
folder, where the commands of ``run_mapping.yaml`` and the SLURM script run.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config_diff import MISSING
from ..keypaths import KeyPath, dotted, leaves
from .placement import lookup

OUTPUT_DIR = "output_dir"
OUTPUT_KEYS = frozenset({OUTPUT_DIR, "log_dir"})
# ``${output_dir}``, ``${checkpointer.output_dir}``, ``${dataset[0].x}``: absolute references.
# Resolver calls (``${oc.env:SCRATCH}``) have a colon and stay as written: the same text is the
# same place on the machine that trains.
_REFERENCE = re.compile(r"\$\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+|\[\d+\])*)\s*\}")
_MAX_DEPTH = 8  # references of references; a cycle is OmegaConf's to report


@dataclass(frozen=True)
class OutputLayout:
    """Where each run of an experiment writes.

    Attributes:
        split: The output keys whose values the runs would share, so each run gets its run id
            appended (``/scratch/study/run_002``), in config order.
        names: Every output key, dotted, top-level ``output_dir`` first.
        values: Each run's id and the values its output keys and their references have (runs
            that do not differ there share one mapping, so a large sweep costs little).
    """

    split: tuple[KeyPath, ...]
    names: tuple[str, ...]
    values: tuple[tuple[str, dict[str, Any]], ...]

    def roots(self) -> tuple[KeyPath, ...]:
        """The output keys that refer to no other one (``checkpointer.output_dir:
        ${output_dir}`` follows ``output_dir``): a folder put there moves the others too."""
        found = []
        for name in self.names:
            texts = {str(known.get(name)) for _, known in self.values}
            follows = any(ref in self.names for text in texts for ref in _REFERENCE.findall(text))
            if not follows:
                found.append(_keypath(name))
        return tuple(found)

    def locations(self) -> Iterator[tuple[str, dict[str, str]]]:
        """Each run's id and its output folders, ``{dotted key: folder}``, references filled in
        and the split applied; relative folders as written."""
        split = [dotted(key) for key in self.split]
        for ident, known in self.values:
            yield (
                ident,
                {
                    name: folder
                    for name in self.names
                    if (folder := _resolve(name, known, split, ident)) is not None
                },
            )

    def run_ids(self) -> list[str]:
        """Every run's id, in order."""
        return [ident for ident, _ in self.values]

    def relative_keys(self) -> list[str]:
        """The output keys that some run gives a relative folder, in config order."""
        keys: dict[str, None] = {}
        for _, located in self.locations():
            keys.update((key, None) for key, folder in located.items() if not is_absolute(folder))
        return list(keys)


def output_keys(config: Any, keypath: KeyPath = ()) -> Iterator[KeyPath]:
    """Every key path in ``config`` (at ``keypath``) whose last key is an output key."""
    if keypath and keypath[-1] in OUTPUT_KEYS:
        yield keypath
    items: Iterable[tuple[Any, Any]] = (
        config.items()
        if isinstance(config, dict)
        else enumerate(config)
        if isinstance(config, list)
        else ()
    )
    for key, value in items:
        yield from output_keys(value, (*keypath, key))


def references(node: Any) -> Iterator[str]:
    """The first key of every ``${...}`` reference in the strings of ``node``."""
    for _, value in leaves(node):
        if isinstance(value, str) and "${" in value:
            yield from (match.split(".")[0].split("[")[0] for match in _REFERENCE.findall(value))


def plan_outputs(
    keys: tuple[KeyPath, ...],
    runs: Iterable[tuple[str, dict[str, Any]]],
    folder: Path = Path("."),
) -> OutputLayout:
    """Decide which output keys to split per run.

    Args:
        keys: The output key paths of the sweep, top-level ``output_dir`` first (the others
            usually refer to it).
        runs: Each run's id and its merged config before any split (it need hold only what
            the output keys and their references are set to).
        folder: The experiment's folder, where relative folders are.

    Returns:
        The layout; two runs may still meet where one run's key resolves to another run's
        folder under a different key (see :func:`shared_locations`).
    """
    names = [dotted(key) for key in keys]
    values: list[tuple[str, dict[str, Any]]] = []
    # Runs given the very same config share one mapping (it is held, so it stays the same).
    last: tuple[dict[str, Any], dict[str, Any]] | None = None
    for ident, config in runs:
        if last is None or last[0] is not config:
            last = (config, _referenced(config, names))
        values.append((ident, last[1]))
    split: list[str] = []
    for name in names:
        seen: set[str] = set()
        for ident, known in values:
            located = _resolve(name, known, split, ident)
            if located is None:
                continue
            if (normal := location_of(folder, located)) in seen:
                split.append(name)
                break
            seen.add(normal)
    return OutputLayout(
        tuple(key for key in keys if dotted(key) in split), tuple(names), tuple(values)
    )


def split_value(value: str, run_id: str) -> str:
    """An output folder of one run: the shared folder with the run id appended."""
    return f"{value.rstrip('/')}/{run_id}"


def shared_locations(
    layouts: Iterable[tuple[Path, OutputLayout]],
) -> Iterator[tuple[str, tuple[Path, str, str], tuple[Path, str, str]]]:
    """Folders that two runs write to, each with the first and the second (experiment, run,
    key) that write there.

    Args:
        layouts: Each experiment's folder (relative locations are joined to it) and layout.
    """
    first: dict[str, tuple[Path, str, str]] = {}
    for folder, layout in layouts:
        for ident, located in layout.locations():
            for key, location in located.items():
                writer = (folder, ident, key)
                seen = first.setdefault(location_of(folder, location), writer)
                if seen[:2] != writer[:2]:
                    yield location, seen, writer


def folder_in(config: dict[str, Any], key: str) -> str | None:
    """The folder at dotted ``key`` of a run's config, its ``${...}`` references filled in, or
    ``None`` when there is none."""
    return _resolve(key, _referenced(config, [key]), [], "")


def location_of(folder: Path, location: str) -> str:
    """A run's folder as one string to compare, however it is spelt: relative ones under the
    experiment's folder, ``//``, ``.``, ``..`` and a trailing ``/`` taken out.

    A folder under ``${oc.env:VAR}`` is compared by its text after the variable: it is a folder
    of the machine that trains, which two spellings of it may or may not be.
    """
    if location.startswith("${"):
        head, brace, rest = location.partition("}")
        return head + brace + (posixpath.normpath(rest) if rest.strip("/") else "")
    path = location if location.startswith("/") else str(Path(os.path.abspath(folder)) / location)
    normal = posixpath.normpath(path)
    return "/" + normal.lstrip("/")  # POSIX may keep a leading //; Linux reads it as /


# The longest name a Linux file system takes for one folder (NAME_MAX, in bytes).
NAME_MAX = 255
_SHELL_VARIABLE = re.compile(r"\$[A-Za-z_{]")


def location_problem(location: str) -> str | None:
    """Why torchtune would not write where ``location`` seems to say, or ``None``."""
    if location.startswith("~"):
        return (
            "starts with ~, which torchtune does not expand (it would make a folder named ~ "
            "where the run starts): write the absolute path, or ${oc.env:HOME}/..."
        )
    if _SHELL_VARIABLE.search(location.replace("${", "")):
        return (
            "holds a shell variable ($NAME), which OmegaConf does not expand (it would make a "
            "folder of that name): write ${oc.env:NAME}"
        )
    for part in location.split("/"):
        if len(part.encode("utf-8")) > NAME_MAX:
            return (
                f"has a folder name of {len(part.encode('utf-8'))} bytes, more than the "
                f"{NAME_MAX} a file system takes: shorten it"
            )
    return None


def is_absolute(folder: str) -> bool:
    """An absolute folder, or one under ``${oc.env:VAR}`` (a folder of the machine that trains).
    torchtune expands no ``~``: ``~/x`` would be made where ``tune run`` runs."""
    return folder.startswith(("/", "${"))


def _referenced(config: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The values of ``names`` and of every key their strings refer to, by dotted name."""
    known: dict[str, Any] = {}
    todo = list(reversed(names))
    while todo and len(known) < 64:
        name = todo.pop()
        if name in known:
            continue
        value = lookup(config, _keypath(name))
        known[name] = value
        if isinstance(value, str):
            todo.extend(_REFERENCE.findall(value))
    return known


def _resolve(
    name: str, known: dict[str, Any], split: list[str], ident: str, depth: int = 0
) -> str | None:
    """The folder at ``name`` with references filled in, or ``None`` when it is no folder."""
    value = known.get(name, MISSING)
    if value is MISSING or value is None or isinstance(value, (bool, dict, list)):
        return None
    text = str(value)
    if depth < _MAX_DEPTH and "${" in text:
        text = _REFERENCE.sub(
            lambda match: _resolve(match[1], known, split, ident, depth + 1) or match[0], text
        )
    return split_value(text, ident) if name in split else text


def _keypath(name: str) -> KeyPath:
    return tuple(int(part) if part.isdigit() else part for part in re.findall(r"[^.\[\]]+", name))
