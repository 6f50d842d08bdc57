"""Drift: how a committed generated folder differs from what the experiment generates now."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import display_path
from ..generation.plan import Plan
from ..generation.render import render_files
from ..wording import plural
from ..workspace.layout import CONFIGS_DIR, latest_complete_folder
from .ownership import FolderFiles, read_folder_files, stale_files


@dataclass(frozen=True)
class FileDrift:
    """One file that differs.

    Attributes:
        name: The file name in the generated folder.
        on_disk: Its bytes on disk, or ``None`` when it is missing.
        generated: What generating gives, or ``None`` when it is stale (no longer produced).
    """

    name: str
    on_disk: bytes | None
    generated: bytes | None

    @property
    def line_endings_only(self) -> bool:
        """Whether the file differs only by CRLF line endings (a ``core.autocrlf`` checkout)."""
        return (
            self.on_disk is not None
            and self.generated is not None
            and b"\r\n" in self.on_disk
            and self.on_disk.replace(b"\r\n", b"\n") == self.generated
        )


@dataclass
class Drift:
    """The differences of one experiment's generated folder.

    Attributes:
        plan: The experiment, checked.
        folder: Its generated folder.
        files: The files that differ, in the order generating produces them, stale ones last.
    """

    plan: Plan
    folder: Path
    files: list[FileDrift] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        """Whether anything differs."""
        return bool(self.files)


def find_drift(plan: Plan, listed: FolderFiles | None = None) -> Drift:
    """Generate in memory and compare with the experiment's ``configs/`` on disk.

    Only the files that differ are kept, so a large sweep is compared run by run.

    Args:
        plan: The experiment, checked.
        listed: Its generated folder's files, when they were read already.
    """
    folder = plan.experiment.folder / CONFIGS_DIR
    # configs/ itself, unless an interrupted write (without an atomic swap) left none.
    current = latest_complete_folder(folder)
    if listed is None or listed.folder != current:
        listed = read_folder_files(current)
    drift = Drift(plan, folder)
    produced = set()
    for name, content in render_files(plan):
        produced.add(name)
        on_disk = listed.content(name)
        if on_disk != content:
            drift.files.append(FileDrift(name, on_disk, content))
    for name in stale_files(current, produced, listed):
        drift.files.append(FileDrift(name, listed.content(name), None))
    return drift


def describe(drift: Drift) -> Iterator[str]:
    """Lines that show the drift: a unified diff per changed file, one line per missing or stale.

    The files that differ only in line endings get no diff (every line would show, looking
    alike): the folder's ``drift:`` line in the report says which they are. A change that repeats
    across files (one control of a 2,000-run sweep) is shown once, then the files it also applies
    to, so that the report stays short: the same lines removed and added, whatever the lines
    around them (a run's own ``lora_rank`` beside a changed ``lora_alpha``). Every line ends with
    a newline.
    """
    # The change of each diff (its removed and added lines, hunk by hunk) → the first file's
    # diff and the files that have it, in the order first met (a dict keeps it).
    groups: dict[tuple[str, ...], tuple[tuple[str, ...], list[str]]] = {}
    for file in drift.files:
        shown = display_path(drift.folder / file.name)
        if file.line_endings_only:
            continue
        if file.on_disk is None:
            yield from _flush(drift, groups)
            yield f"missing: {shown}\n"
        elif file.generated is None:
            yield from _flush(drift, groups)
            yield f"stale: {shown} (the experiment no longer produces it)\n"
        else:
            body = tuple(_diff_body(file.on_disk, file.generated))
            change = tuple("@@" if line[:2] == "@@" else line for line in body if line[0] != " ")
            groups.setdefault(change, (body, []))[1].append(file.name)
    yield from _flush(drift, groups)


def _diff_body(on_disk: bytes, generated: bytes) -> Iterator[str]:
    import difflib  # only drift is shown as a diff (2 ms)

    # CRLF from the checkout is said once per folder: the diff shows what else changed.
    old = on_disk.replace(b"\r\n", b"\n").decode("utf-8", "replace").splitlines(keepends=True)
    new = generated.decode("utf-8", "replace").splitlines(keepends=True)
    for number, line in enumerate(difflib.unified_diff(old, new)):
        if number >= 2:  # the ---/+++ lines: each file's own names are put in when shown
            yield line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"


def _flush(
    drift: Drift, groups: dict[tuple[str, ...], tuple[tuple[str, ...], list[str]]]
) -> Iterator[str]:
    """Each distinct change once, in the order first met, with the other files that have it."""
    for body, names in groups.values():
        shown = display_path(drift.folder / names[0])
        yield f"--- {shown} (on disk)\n"
        yield f"+++ {shown} (generated)\n"
        yield from body
        others = names[1:]
        if others:
            listed = ", ".join(others) if len(others) <= 3 else f"{others[0]} … {others[-1]}"
            count = plural(len(others), "more file", grouped=True)
            yield f"the same change in {count}: {listed}\n"
    groups.clear()
