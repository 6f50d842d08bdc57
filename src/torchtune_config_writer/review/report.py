"""The change table in three forms: text for the terminal, Markdown for GitHub, JSON for tools."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..wording import plural
from ..yaml_io import dotted, dump_inline
from .changes import ABSENT, FolderChange, Review, ValueChange

MARKER = "<!-- torchtune-config-writer: run changes -->"
_SHOWN_RUNS = 6
_LISTED_RUNS = 20  # added or removed runs listed one by one, then counted


def _value(value: Any) -> str:
    return "(absent)" if value is ABSENT else dump_inline(value)


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{name}={dump_inline(value)}" for name, value in params.items()) or "-"


def _runs(runs: tuple[str, ...], folder: FolderChange) -> str:
    """``all 4 runs``, or the ids (the first few, then how many more)."""
    kept = folder.runs_after - len(folder.added)
    if len(runs) == kept and kept > 1:
        return f"all {kept} runs"
    shown = ", ".join(runs[:_SHOWN_RUNS])
    more = f" and {len(runs) - _SHOWN_RUNS} more" if len(runs) > _SHOWN_RUNS else ""
    return f"{shown}{more}"


def _grouped(folder: FolderChange) -> Iterator[tuple[str, str, str, str]]:
    """Each changed key once: (key, before, after, runs). A key whose value changed differently in
    each run (its own ``output_dir``) is one line with the first run's values as the example."""
    by_key: dict[tuple[Any, ...], list[ValueChange]] = {}
    for change in folder.changes:
        by_key.setdefault(change.keypath, []).append(change)
    for keypath, changes in by_key.items():
        runs = tuple(run for change in changes for run in change.runs)
        first = changes[0]
        before, after = _value(first.old), _value(first.new)
        if len(changes) > 1:
            before, after = f"{before}, …", f"{after}, …"  # each run its own value
        yield dotted(keypath), before, after, _runs(runs, folder)


def _summary(folder: FolderChange) -> str:
    counts = {
        "added": len(folder.added),
        "removed": len(folder.removed),
        "renamed": len(folder.renamed),
        "changed": len(folder.changed_runs),
    }
    parts = [f"{count} {word}" for word, count in counts.items() if count]
    runs = f"{folder.runs_before} → {plural(folder.runs_after, 'run')}"
    if folder.status == "added":
        runs = f"new experiment, {plural(folder.runs_after, 'run')}"
    elif folder.status == "deleted":
        runs = f"deleted, had {plural(folder.runs_before, 'run')}"
    elif parts:
        runs += f" ({', '.join(parts)})"
    return runs


def _base(folder: FolderChange) -> str | None:
    before, after = folder.base
    if folder.status in ("added", "deleted") or (before is None and after is None):
        return None
    if not folder.base_changed:
        return f"base {after}: unchanged"
    if before == after:
        return f"base {after}: its recorded bytes changed (generate --refresh-base)"
    return f"base changed: {before} → {after}"


def render_text(review: Review) -> str:
    """The table for the terminal."""
    head = f"Runs compared with {review.base_ref} ({review.base_commit[:12]}):\n"
    if not review.changed:
        return head + "  no generated folder changed\n"
    lines = [head]
    for folder in review.changed:
        lines.append(f"{folder.folder}: {_summary(folder)}\n")
        base = _base(folder)
        if base:
            lines.append(f"  {base}\n")
        for mark, listed in (("+", folder.added), ("-", folder.removed)):
            lines += [f"  {mark} {ident}  {_params(p)}\n" for ident, p in listed[:_LISTED_RUNS]]
            if len(listed) > _LISTED_RUNS:
                lines.append(f"  {mark} … and {len(listed) - _LISTED_RUNS} more\n")
        for was, now in folder.renamed:
            lines.append(f"  renamed {was} → {now}\n")
        for key, before, after, runs in _grouped(folder):
            lines.append(f"  ~ {key}: {before} → {after}  ({runs})\n")
    return "".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _more(kind: str, runs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, ...]]:
    extra = len(runs) - _LISTED_RUNS
    return [(kind, f"… and {extra} more", "", "", "")] if extra > 0 else []


def render_markdown(review: Review) -> str:
    """The table for a job summary or a pull-request comment."""
    lines = [
        "## What this change does to the runs\n\n",
        f"Generated configs compared with `{review.base_ref}` (`{review.base_commit[:12]}`).\n\n",
    ]
    if not review.changed:
        return "".join([*lines, "No generated folder changed.\n"])
    for folder in review.changed:
        lines.append(f"### `{folder.folder}`: {_cell(_summary(folder))}\n\n")
        base = _base(folder)
        if base:
            lines.append(f"{_cell(base[0].upper() + base[1:])}.\n\n")
        rows = [
            *(("added", ident, "", "", _params(p)) for ident, p in folder.added[:_LISTED_RUNS]),
            *_more("added", folder.added),
            *(("removed", ident, "", _params(p), "") for ident, p in folder.removed[:_LISTED_RUNS]),
            *_more("removed", folder.removed),
            *(("renamed", f"{was} → {now}", "", "", "") for was, now in folder.renamed),
            *(
                ("changed", runs, key, before, after)
                for key, before, after, runs in _grouped(folder)
            ),
        ]
        if rows:
            lines.append("| | runs | key | before | after |\n|---|---|---|---|---|\n")
            for kind, runs, key, before, after in rows:
                key_cell = f"`{_cell(key)}`" if key else ""
                lines.append(
                    f"| {kind} | {_cell(runs)} | {key_cell} | {_cell(before)} | {_cell(after)} |\n"
                )
            lines.append("\n")
    return "".join(lines)


def render_json(review: Review) -> str:
    """Everything, for tools."""

    def value(item: Any) -> Any:
        return None if item is ABSENT else item

    data = {
        "base_ref": review.base_ref,
        "base_commit": review.base_commit,
        "folders": [
            {
                "folder": folder.folder,
                "status": folder.status,
                "runs_before": folder.runs_before,
                "runs_after": folder.runs_after,
                "base_before": folder.base[0],
                "base_after": folder.base[1],
                "base_changed": folder.base_changed,
                "added": [{"id": ident, "params": params} for ident, params in folder.added],
                "removed": [{"id": ident, "params": params} for ident, params in folder.removed],
                "renamed": [{"from": was, "to": now} for was, now in folder.renamed],
                "changes": [
                    {
                        "key": dotted(change.keypath),
                        "before": value(change.old),
                        "after": value(change.new),
                        "absent_before": change.old is ABSENT,
                        "absent_after": change.new is ABSENT,
                        "runs": list(change.runs),
                    }
                    for change in folder.changes
                ],
            }
            for folder in review.folders
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
