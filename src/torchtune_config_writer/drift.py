"""Drift: how a committed generated folder differs from what the experiment generates now."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import display_path
from .layout import CONFIGS_DIR
from .plan import Plan, render_files
from .write import latest_complete_folder, read_or_none, stale_files


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


def find_drift(plan: Plan) -> Drift:
    """Generate in memory and compare with the experiment's ``configs/`` on disk.

    Only the files that differ are kept, so a large sweep is compared run by run.
    """
    folder = plan.experiment.folder / CONFIGS_DIR
    # configs/ itself, unless an interrupted write (without an atomic swap) left none.
    current = latest_complete_folder(folder)
    drift = Drift(plan, folder)
    produced = set()
    for name, content in render_files(plan):
        produced.add(name)
        on_disk = read_or_none(current / name)
        if on_disk != content:
            drift.files.append(FileDrift(name, on_disk, content))
    for name in stale_files(current, produced):
        drift.files.append(FileDrift(name, read_or_none(current / name), None))
    return drift


def describe(drift: Drift) -> Iterator[str]:
    """Lines that show the drift: a unified diff per changed file, one line per missing or stale.

    Every line ends with a newline.
    """
    for file in drift.files:
        shown = display_path(drift.folder / file.name)
        if file.on_disk is None:
            yield f"missing: {shown}\n"
        elif file.generated is None:
            yield f"stale: {shown} (the experiment no longer produces it)\n"
        else:
            old = file.on_disk.decode("utf-8", "replace").splitlines(keepends=True)
            new = file.generated.decode("utf-8", "replace").splitlines(keepends=True)
            lines = difflib.unified_diff(old, new, f"{shown} (on disk)", f"{shown} (generated)")
            for line in lines:
                yield line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
