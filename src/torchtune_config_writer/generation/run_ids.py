"""Run ids that survive a growing sweep, recorded by the committed ``run_mapping.yaml``.

A run's id names its config file, its output folder and its SLURM array task, so it must not
move to another combination when a value is added. The mapping of the folder being regenerated
is read like a lock: a combination it records keeps its id, a new one takes the next id never
given, and one no longer in the sweep retires. A retired id is never given again (the mapping
lists it under ``retired``): its output folder may hold its checkpoints, which the SLURM script
would take for the new run's and skip training. A folder generated fresh numbers in sweep order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigWriterError
from ..reading import read_bounded
from ..workspace.layout import RUN_MAPPING, is_owned
from ..yaml_read import Document, load_plain, parse_yaml, plain

_RUN_ID = re.compile(r"run_([0-9]{3,})")
RENUMBER_HINT = (
    "restore it from git, or number the runs afresh with `torchtune-config-writer generate "
    "--renumber` (move finished runs' output folders aside first)"
)


def run_id_width(count: int) -> int:
    """The digits of the run ids of a freshly numbered sweep of ``count`` runs."""
    return max(3, len(str(count)))


def run_number(run_id: str) -> int | None:
    """7 for ``run_007``; ``None`` for a name that is no run id."""
    match = _RUN_ID.fullmatch(run_id)
    return int(match[1]) if match else None


def combination_key(params: Mapping[str, Any]) -> str:
    """What identifies a combination: each variable's name (without ``+``) and value.

    Mappings compare without their key order, and ``1``, ``1.0`` and ``true`` stay apart.
    """
    named = ((name.removeprefix("+"), _canonical(plain(value))) for name, value in params.items())
    return repr(sorted(named))


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return ("map", sorted((repr(key), _canonical(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("list", [_canonical(item) for item in value])
    return (type(value).__name__, repr(value))


@dataclass(frozen=True)
class RecordedIds:
    """The ids a committed ``run_mapping.yaml`` gives.

    Attributes:
        numbers: Each recorded combination's key and id number.
        retired: The numbers recorded as retired.
        width: The digits of the recorded ids.
    """

    numbers: dict[str, int]
    retired: frozenset[int]
    width: int


@dataclass(frozen=True)
class RunIds:
    """The id of every run of a sweep.

    Attributes:
        numbers: Each combination's id number, in sweep order (the last variable fastest).
        width: The digits of an id (``run_007`` has 3); a larger number is written in full.
        retired: Numbers no run has and none may get, ascending.
        added: The numbers given to combinations the committed mapping does not record.
        retiring: The numbers of recorded combinations no longer in the sweep.
    """

    numbers: tuple[int, ...]
    width: int
    retired: tuple[int, ...] = ()
    added: tuple[int, ...] = ()
    retiring: tuple[int, ...] = ()

    @property
    def in_sweep_order(self) -> bool:
        """Whether run N is combination N, as in a folder numbered fresh."""
        return not self.retired and all(n == i for i, n in enumerate(self.numbers))

    def name(self, number: int) -> str:
        """``run_007``."""
        return f"run_{number:0{self.width}d}"

    def retired_names(self) -> list[str]:
        """The retired ids, ascending."""
        return [self.name(number) for number in self.retired]


def fresh_ids(count: int) -> RunIds:
    """Ids in sweep order: ``run_000`` to ``run_{count - 1}``."""
    return RunIds(tuple(range(count)), run_id_width(count))


def assign_ids(keys: Sequence[str], recorded: RecordedIds | None) -> RunIds:
    """Each combination's id: its recorded one, else the next never given, in sweep order.

    Args:
        keys: Each combination's :func:`combination_key`, in sweep order.
        recorded: The ids the committed mapping gives, or ``None`` to number fresh.
    """
    if recorded is None:
        return fresh_ids(len(keys))
    known = dict(recorded.numbers)
    given = set(known.values()) | recorded.retired
    following = max(given, default=-1) + 1
    numbers = []
    added = []
    for key in keys:
        number = known.pop(key, None)  # popped: a repeated key cannot take one id twice
        if number is None:
            number, following = following, following + 1
            added.append(number)
        numbers.append(number)
    retired = tuple(sorted(recorded.retired | set(known.values())))
    return RunIds(
        tuple(numbers), recorded.width, retired, tuple(added), tuple(sorted(known.values()))
    )


def read_recorded_mapping(path: Path) -> bytes | None:
    """The bytes of the ``run_mapping.yaml`` at ``path`` when the tool wrote it, else ``None``.

    Raises:
        ConfigWriterError: it cannot be read.
    """
    try:
        if not is_owned(path):
            return None  # none, or a file of the user's, which the writer refuses to replace
    except OSError:
        return None  # a folder this user may not read: the writer's check says so
    try:
        return read_bounded(path)
    except OSError as exc:
        raise ConfigWriterError(f"cannot read: {exc.strerror}", path) from None


def parse_recorded_ids(raw: bytes, path: Path, run_id_filled: bool) -> RecordedIds:
    """The ids a committed ``run_mapping.yaml`` records.

    Args:
        raw: Its bytes (:func:`read_recorded_mapping`).
        path: Where it was read, for messages.
        run_id_filled: Whether variable values hold ``{run_id}``: the recorded values then hold
            their own run's id, which is taken out so that they compare with the sweep's.

    Raises:
        ConfigWriterError: the file is no mapping this tool wrote, at the line that shows it.
    """
    conflict = _conflict_error(path, raw)
    if conflict is not None:
        raise conflict
    fast = _recorded_as_written(raw)
    entries, listed = fast if fast is not None else _recorded_checked(raw, path)
    numbers: dict[str, int] = {}
    given: set[int] = set()
    widths = set()
    for index, (ident, params) in enumerate(entries):
        number = int(ident.removeprefix("run_"))  # both readers give only run ids
        if run_id_filled:
            params = {name: _without_id(value, ident) for name, value in params.items()}
        key = combination_key(params)
        if key in numbers or number in given:
            raise parse_yaml(raw, path).error(
                f"{RUN_MAPPING}: {ident} records a combination or an id a run above has "
                f"already; {RENUMBER_HINT}",
                ("runs", index),
            )
        numbers[key] = number
        given.add(number)
        widths.add(len(ident) - len("run_"))
    retired = {number for number in map(run_number, listed) if number is not None}
    # The width the ids were written with: runs past 999 are written in full (run_1000), so
    # the retired ids may be all that keep the narrower width.
    widths.update(len(name) - len("run_") for name in listed if run_number(name) is not None)
    if retired & given:
        raise parse_yaml(raw, path).error(
            f"{RUN_MAPPING}: an id is both a run's and retired; " + RENUMBER_HINT, ("retired",)
        )
    return RecordedIds(numbers, frozenset(retired), min(widths, default=3))


# The lines the tool writes for each run and for the retired ids (render.py).
_ENTRY = re.compile(rb"^- id: (run_[0-9]{3,})\n  params: (\{.*\})$", re.M)
_RETIRED = re.compile(rb"^retired: \[(run_[0-9]{3,}(?:, run_[0-9]{3,})*)\]$", re.M)


def _recorded_as_written(raw: bytes) -> tuple[list[tuple[str, dict[str, Any]]], list[str]] | None:
    """The runs' ids and params, read from the lines the tool writes, or ``None`` when the file
    is not as it wrote it (then it is read with its positions, for the message)."""
    if b"&" in raw or raw.count(b"\n- ") != len(found := _ENTRY.findall(raw)):
        return None  # an anchor (and its aliases) only the guarded reader reads
    if b"\nruns:\n" not in raw or (b"\nretired:" in raw) != bool(retired := _RETIRED.search(raw)):
        return None
    try:
        params = load_plain(b"[" + b", ".join(flow for _, flow in found) + b"]")
    except yaml.YAMLError:
        return None
    if not all(isinstance(one, dict) for one in params):
        return None
    ids = [ident.decode() for ident, _ in found]
    listed = retired[1].decode().split(", ") if retired else []
    return list(zip(ids, params, strict=True)), listed


def _recorded_checked(raw: bytes, path: Path) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """The runs' ids and params of a mapping not as the tool writes it, read with positions:
    what is wrong is an error at its line."""
    document = parse_yaml(raw, path)
    data = document.data
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise document.error(
            f"{RUN_MAPPING} records no runs (no `runs:` list): it gives the runs their ids; "
            + RENUMBER_HINT
        )
    entries = []
    for index, entry in enumerate(data["runs"]):
        ident = entry.get("id") if isinstance(entry, dict) else None
        params = entry.get("params", {}) if isinstance(entry, dict) else None
        if not isinstance(ident, str) or run_number(ident) is None or not isinstance(params, dict):
            raise document.error(
                f"{RUN_MAPPING}: this entry has no run id (`id: run_007`) and `params:` "
                f"mapping; {RENUMBER_HINT}",
                ("runs", index),
            )
        entries.append((ident, params))
    return entries, _retired(data.get("retired", []), document)


def _retired(listed: Any, document: Document) -> list[str]:
    if listed is None:
        return []
    if not isinstance(listed, list) or not all(
        isinstance(item, str) and run_number(item) is not None for item in listed
    ):
        raise document.error(
            f"{RUN_MAPPING}: retired lists the run ids no run may get again (`[run_002]`); "
            + RENUMBER_HINT,
            ("retired",),
        )
    return listed


def _without_id(value: Any, ident: str) -> Any:
    """``value`` with its run's id put back as the ``{run_id}`` it was filled from."""
    if isinstance(value, str):
        return value.replace(ident, "{run_id}")
    if isinstance(value, dict):
        return {key: _without_id(item, ident) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_id(item, ident) for item in value]
    return value


def _conflict_error(path: Path, raw: bytes) -> ConfigWriterError | None:
    """A merge left its conflict markers: say so, and how to keep the ids of one side."""
    for line_number, line in enumerate(raw.splitlines(), 1):
        if line.startswith(b"<<<<<<<"):
            return ConfigWriterError(
                f"{RUN_MAPPING} holds a merge conflict: keep one side's file "
                f"(`git checkout --theirs {path.name}`: the combinations the other side added "
                "take the next free ids) and run `torchtune-config-writer generate`",
                path,
                line_number,
                1,
            )
    return None
