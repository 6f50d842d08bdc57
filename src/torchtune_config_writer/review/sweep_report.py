"""What the runs of a sweep change, in two forms: a text table for the terminal (``show``) and
JSON for tools (``show --format json``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config_diff import MISSING, change_json, json_value
from ..json_output import json_text
from ..keypaths import KeyPath, dotted
from ..yaml_write import dump_inline
from .sweep_changes import SweepChanges

DEFAULT_CELL_WIDTH = 60
_GAP = "  "


def render_text(
    changes: SweepChanges, *, cell_width: int | None = DEFAULT_CELL_WIDTH, unicode: bool = True
) -> str:
    """The runs and what each changes relative to its base config.

    Args:
        changes: What the runs change.
        cell_width: Cut longer values to this many characters, ending with an ellipsis;
            ``None`` shows every value whole.
        unicode: Write ``→`` and ``…``; ``False`` writes ``->`` and ``...`` instead, for terminals
            that cannot show them.

    Returns:
        The text, ending with a newline: a title line, the key paths every run sets to one
        value (base value → value), then a table of the key paths that differ between runs,
        with a ``(base)`` row. Keys the base does not have show as ``(new)``, keys a run does
        not have as ``-``.
    """
    arrow, ellipsis = ("→", "…") if unicode else ("->", "...")

    def cut(text: str) -> str:
        if cell_width is None or len(text) <= cell_width:
            return text
        return text[: max(cell_width - len(ellipsis), 0)] + ellipsis

    def cut_middle(text: str) -> str:
        # The start and the end: lists of modules often differ only in their last items.
        if cell_width is None or len(text) <= cell_width:
            return text
        keep = max(cell_width - len(ellipsis), 2)
        return text[: keep - keep // 2] + ellipsis + text[len(text) - keep // 2 :]

    def cell(value: Any, missing: str) -> str:
        return cut(missing if value is MISSING else dump_inline(value))

    count = len(changes.run_ids)
    runs = "1 run" if count == 1 else f"{count} runs"
    lines = [f"{changes.experiment}: {runs} of {changes.base}", *changes.design, ""]
    if changes.shared:
        lines.append("Every run changes:" if count > 1 else "The run changes:")
        rows = [
            (_display_path(change.keypath), cell(change.before, "(new)"), cell(change.after, "-"))
            for change in changes.shared
        ]
        path_width = max(len(path) for path, _, _ in rows)
        old_width = max(len(old) for _, old, _ in rows)
        for path, old, new in rows:
            lines.append(f"{_GAP}{path:<{path_width}}{_GAP}{old:<{old_width}} {arrow} {new}")
    elif count > 1:
        lines.append("No change is shared by every run.")
    else:
        lines.append("The run is the base config, unchanged.")
    if changes.columns:
        table = [
            ["run", *(_display_path(column.keypath) for column in changes.columns)],
            ["(base)", *(cell(column.before, "(new)") for column in changes.columns)],
        ]
        for index, run_id in enumerate(changes.run_ids):
            texts = [dump_inline(v) if (v := column.values[index]) is not MISSING else "-"
                     for column in changes.columns]  # fmt: skip
            table.append([run_id, *texts])
        lines.append("")
        lines.extend(_align(_cut_columns(table, (cut, cut_middle))))
    return "\n".join(lines) + "\n"


def _display_path(path: KeyPath) -> str:
    """``model.lora_rank``; a key a terminal cannot show on one line is written as YAML."""
    return ".".join(str(key) if str(key).isprintable() else dump_inline(key) for key in path)


def _cut_columns(table: list[list[str]], cuts: tuple[Callable[[str], str], ...]) -> list[list[str]]:
    """The runs' cells cut to the cell width at their end, or where that makes two different
    values read alike, at their middle, or else whole: runs must be told apart."""
    header, base, *runs = table
    for column in range(1, len(header)):
        whole = {row[column] for row in runs}
        for cut in cuts:
            if len({cut(text) for text in whole}) == len(whole):
                for row in runs:
                    row[column] = cut(row[column])
                break
    return [header, base, *runs]


def _align(rows: list[list[str]]) -> list[str]:
    """Rows of cells as lines, each column as wide as its widest cell, no trailing spaces."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        _GAP.join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def render_json(changes: SweepChanges) -> str:
    """Everything the table shows, whole, for tools (docs/commands.md shows the shape).

    ``experiment``, ``base``, ``design`` (lines), ``runs`` (the ids, in order); ``shared``: each
    key path every run sets to one value, with ``key`` (dotted), ``path`` (its keys and list
    indexes), ``before`` (the base's value) and ``after``, and ``absent_before`` or
    ``absent_after`` true (the value ``null``) where the key is not there, as ``diff --format
    json`` writes a change; ``columns``: each key path that differs between runs, with ``key``,
    ``path``, ``before``, ``absent_before`` and ``values``, each run's value by run id (a run
    that has no value there is left out). ASCII, with no workflow command
    (:func:`~torchtune_config_writer.json_output.json_text`).
    """

    document = {
        "experiment": changes.experiment,
        "base": changes.base,
        "design": list(changes.design),
        "runs": list(changes.run_ids),
        "shared": [change_json(c.keypath, c.before, c.after) for c in changes.shared],
        "columns": [
            {
                "key": dotted(column.keypath),
                "path": list(column.keypath),
                "before": json_value(column.before),
                "absent_before": column.before is MISSING,
                "values": {
                    run_id: item
                    for run_id, item in zip(changes.run_ids, column.values, strict=True)
                    if item is not MISSING
                },
            }
            for column in changes.columns
        ],
    }
    return json_text(document)
