"""The change table in three forms: text for the terminal, Markdown for GitHub, JSON for tools."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..config_diff import MISSING, change_json
from ..json_output import json_text
from ..keypaths import dotted
from ..markdown import code
from ..terminal import printable
from ..wording import plural
from ..yaml_write import dump_inline
from .changes import FolderChange, Review, ValueChange

MARKER = "<!-- torchtune-config-writer: run changes -->"
_SHOWN_RUNS = 6
_LISTED_RUNS = 20  # added or removed runs listed one by one, then counted


# How a text from the repository is shown: as it is in the text table (each whole line is made
# printable), as a code span in Markdown (no HTML, no mention, no table break inside one).
Show = Callable[[str], str]


def _as_is(text: str) -> str:
    return text


def _span(text: str) -> str:
    return code(text, in_table=False)


def _value(value: Any, show: Show) -> str:
    return "(absent)" if value is MISSING else show(dump_inline(value))


def _params(params: dict[str, Any], show: Show) -> str:
    return ", ".join(show(f"{name}={dump_inline(value)}") for name, value in params.items()) or "-"


def _runs(runs: tuple[str, ...], folder: FolderChange, show: Show) -> str:
    """``all 4 runs``, or the ids (the first few, then how many more)."""
    kept = folder.runs_after - len(folder.added)
    if len(runs) == kept and kept > 1:
        return f"all {kept} runs"
    shown = ", ".join(map(show, runs[:_SHOWN_RUNS]))
    more = f" and {len(runs) - _SHOWN_RUNS} more" if len(runs) > _SHOWN_RUNS else ""
    return f"{shown}{more}"


def _grouped(folder: FolderChange, show: Show) -> Iterator[tuple[str, str, str, str]]:
    """Each changed key once: (key, before, after, runs). A key whose value changed differently in
    each run (its own ``output_dir``) is one line with the first run's values as the example."""
    by_key: dict[tuple[Any, ...], list[ValueChange]] = {}
    for change in folder.changes:
        by_key.setdefault(change.keypath, []).append(change)
    for keypath, changes in by_key.items():
        runs = tuple(run for change in changes for run in change.runs)
        first = changes[0]
        before, after = _value(first.old, show), _value(first.new, show)
        if len(changes) > 1:
            before, after = f"{before}, …", f"{after}, …"  # each run its own value
        yield show(dotted(keypath)), before, after, _runs(runs, folder, show)


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


def _base(folder: FolderChange, show: Show) -> str | None:
    before, after = folder.base
    if folder.status in ("added", "deleted") or (before is None and after is None):
        return None
    now = show(str(after))
    if not folder.base_changed:
        return f"base {now}: unchanged"
    if before == after:
        return f"base {now}: its recorded bytes changed (generate --refresh-base)"
    return f"base changed: {show(str(before))} → {now}"


def render_text(review: Review) -> str:
    """The table for the terminal or a log: each line made printable (a value's line break or
    escape sequence is written as an escape), whether or not it goes through the escaping
    stream (``--output``)."""
    lines = [f"Runs compared with {review.base_ref} ({review.base_commit[:12]}):"]
    if not review.changed:
        lines.append("  no generated folder changed")
    for folder in review.changed:
        lines += _text_lines(folder)
    return "".join(printable(line) + "\n" for line in lines)


def _text_lines(folder: FolderChange) -> Iterator[str]:
    if folder.error is not None:
        yield f"{folder.folder}: unreadable, not compared: {folder.error}"
        return
    yield f"{folder.folder}: {_summary(folder)}"
    base = _base(folder, _as_is)
    if base:
        yield f"  {base}"
    for mark, listed in (("+", folder.added), ("-", folder.removed)):
        for ident, params in listed[:_LISTED_RUNS]:
            yield f"  {mark} {ident}  {_params(params, _as_is)}"
        if len(listed) > _LISTED_RUNS:
            yield f"  {mark} … and {len(listed) - _LISTED_RUNS} more"
    for was, now in folder.renamed:
        yield f"  renamed {was} → {now}"
    for key, before, after, runs in _grouped(folder, _as_is):
        yield f"  ~ {key}: {before} → {after}  ({runs})"


def _more(kind: str, runs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, ...]]:
    extra = len(runs) - _LISTED_RUNS
    return [(kind, f"… and {extra} more", "", "", "")] if extra > 0 else []


def render_markdown(review: Review) -> str:
    """The table for a job summary or a pull-request comment.

    Every text from the repository (folder, run ids, keys, values, base labels, the reason a
    folder is unreadable) and the ref as given is a code span: a pull request's text cannot
    close a fence, open HTML, break the table or mention anyone.
    """
    commit = _span(review.base_commit[:12])
    lines = [
        "## What this change does to the runs\n\n",
        f"Generated configs compared with {_span(review.base_ref)} ({commit}).\n\n",
    ]
    if not review.changed:
        return "".join([*lines, "No generated folder changed.\n"])
    for folder in review.changed:
        lines += _markdown_folder(folder)
    return "".join(lines)


def _markdown_folder(folder: FolderChange) -> Iterator[str]:
    name = _span(folder.folder)
    if folder.error is not None:
        yield f"### {name}: unreadable, not compared\n\nReason: {_span(folder.error)}\n\n"
        return
    yield f"### {name}: {_summary(folder)}\n\n"
    base = _base(folder, _span)
    if base:
        yield f"{base[0].upper()}{base[1:]}.\n\n"
    rows = [
        *(
            ("added", code(ident), "", "", _params(p, code))
            for ident, p in folder.added[:_LISTED_RUNS]
        ),
        *_more("added", folder.added),
        *(
            ("removed", code(ident), "", _params(p, code), "")
            for ident, p in folder.removed[:_LISTED_RUNS]
        ),
        *_more("removed", folder.removed),
        *(("renamed", f"{code(was)} → {code(now)}", "", "", "") for was, now in folder.renamed),
        *(
            ("changed", runs, key, before, after)
            for key, before, after, runs in _grouped(folder, code)
        ),
    ]
    if rows:
        yield "| | runs | key | before | after |\n|---|---|---|---|---|\n"
        yield from (f"| {' | '.join(row)} |\n" for row in rows)
        yield "\n"


def render_json(review: Review) -> str:
    """Everything, for tools (docs/commands.md shows the shape): each folder's runs added,
    removed and renamed, and each changed key with its value before and after (``null`` and
    ``absent_before`` or ``absent_after`` where the key is not there) and the runs it changed
    in; ASCII, with no workflow command (:func:`~torchtune_config_writer.json_output.json_text`).
    """

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
                "error": folder.error,
                "added": [{"id": ident, "params": params} for ident, params in folder.added],
                "removed": [{"id": ident, "params": params} for ident, params in folder.removed],
                "renamed": [{"from": was, "to": now} for was, now in folder.renamed],
                "changes": [
                    {
                        **change_json(change.keypath, change.old, change.new),
                        "runs": list(change.runs),
                    }
                    for change in folder.changes
                ],
            }
            for folder in review.folders
        ],
    }
    return json_text(data)
