"""``check``'s result for tools: one JSON document (``check --format json``)."""

from __future__ import annotations

from typing import Any

from ..errors import relative_path
from ..json_output import json_text
from .check import CheckResult
from .drift import FileDrift


def _state(file: FileDrift) -> str:
    if file.on_disk is None:
        return "missing"
    if file.generated is None:
        return "stale"
    return "line endings" if file.line_endings_only else "changed"


def check_json(result: CheckResult) -> str:
    """Every experiment checked with its folder's state, the folders whose experiment is gone,
    what ``--fix`` wrote and the errors; paths as the user would type them, exactly."""
    document: dict[str, Any] = {
        "exit_code": int(result.exit_code),
        "experiments": [
            {
                "experiment": relative_path(drift.plan.experiment.path),
                "folder": relative_path(drift.folder),
                "drifted": drift.drifted,
                "files": [{"name": file.name, "state": _state(file)} for file in drift.files],
            }
            for drift in result.drifts
        ],
        "stale_folders": [relative_path(orphan) for orphan in result.orphans],
        "fixed": [
            {
                "folder": relative_path(fixed.folder),
                "written": fixed.changed,
                "removed": fixed.removed,
            }
            for fixed in result.fixed
        ],
        "errors": [str(one) for found in result.errors for one in found.errors],
    }
    return json_text(document)
