"""``results``' reports: the table of runs and metrics as text, Markdown, CSV and JSON, and the
best run as text and JSON."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..json_output import json_text
from ..markdown import code
from ..terminal import printable
from ..yaml_write import dump_inline
from .metrics import Metric
from .results import (
    MIN,
    Best,
    Results,
    RunResult,
    better,
    checkpoint_exists,
)
from .status import STATUSES

_GAP = "  "


# The table: the same columns for every format; the text form shortens numbers.


@dataclass(frozen=True)
class _Column:
    title: str
    value: Callable[[RunResult], Any]  # None where the run has nothing


def _columns(results: Results, names: tuple[str, ...]) -> list[_Column]:
    def param(name: str) -> Callable[[RunResult], Any]:
        return lambda run: run.record.params.get(name)

    def final(name: str) -> Callable[[RunResult], Any]:
        def value(run: RunResult) -> float | None:
            metric = run.metrics.metrics.get(name)
            return None if metric is None else metric.final

        return value

    def best(name: str) -> Callable[[RunResult], Any]:
        return lambda run: run.best_value(name)

    columns = [_Column("run", lambda run: run.record.id)]
    columns += [_Column(name, param(name)) for name in results.variables]
    columns.append(_Column("status", lambda run: run.status))
    columns.append(_Column("steps", lambda run: run.metrics.steps_done))
    for name in names:
        columns.append(_Column(name, final(name)))
        direction = better(name)
        if direction is not None and not _single_value(results, name):
            columns.append(_Column(f"{name} ({direction})", best(name)))
    return columns


def _single_value(results: Results, name: str) -> bool:
    """Whether no run has more than one value of ``name`` (an evaluation's): best is final."""
    return all(
        len(metric.steps) <= 1
        for run in results.runs
        if (metric := run.metrics.metrics.get(name)) is not None
    )


def _text(value: Any, *, short: bool) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if short else repr(value)
    if isinstance(value, str):
        return value
    return dump_inline(value)


def render_text(results: Results, names: tuple[str, ...], width: int | None = None) -> str:
    """A title, the table (numbers to 4 significant digits, ``-`` where there is nothing), then
    the notes; the columns of a metric are its final value and, where better is known, its best
    value over the steps (``loss (min)``).

    Args:
        results: The runs.
        names: The metrics to show, in order.
        width: The terminal's width: the metric columns past it are left out, with a note
            (the run, its values, status and steps are always shown); ``None`` shows all.
    """
    columns = _columns(results, names)
    table = [
        [printable(column.title)]
        + [printable(_text(column.value(run), short=True)) for run in results.runs]
        for column in columns
    ]  # column by column
    widths = [max(len(cell) for cell in cells) for cells in table]
    shown = len(columns)
    fixed = 3 + len(results.variables)  # run, the variables, status and steps
    if width is not None:
        while shown > fixed and sum(widths[:shown]) + len(_GAP) * (shown - 1) > width:
            shown -= 1
    lines = [f"{results.experiment}: {_summary(results)}", ""]
    for row in range(len(results.runs) + 1):
        cells = [table[index][row].ljust(widths[index]) for index in range(shown)]
        lines.append(_GAP.join(cells).rstrip())
    left_out = len(columns) - shown
    notes = _notes(results, names)
    if left_out:
        cut = (
            f"note: {left_out} more column{'s' if left_out > 1 else ''} past the terminal's "
            "width (--metrics chooses; --format csv has them all)"
        )
        notes = notes + [cut] if notes else ["", cut]
    return "\n".join(lines + notes) + "\n"


def _summary(results: Results) -> str:
    found = [run.status for run in results.runs]
    words = [status.split(" (")[0] for status in STATUSES]
    counts = {word: found.count(word) for word in words if word in found}
    total = len(results.runs)
    runs = "1 run" if total == 1 else f"{total} runs"
    return f"{runs}, " + ", ".join(f"{count} {status}" for status, count in counts.items())


def _notes(results: Results, names: tuple[str, ...]) -> list[str]:
    lines = [f"note: {note}" for note in results.notes]
    if not results.metric_names:
        lines.append("note: no run has logged a metric yet")
    hidden = len(results.metric_names) - len(set(names) & set(results.metric_names))
    if hidden:
        lines.append(f"note: {hidden} more metrics not shown (--metrics chooses)")
    return [""] + lines if lines else []


def render_markdown(results: Results, names: tuple[str, ...]) -> str:
    """The table for a pull request or a job summary: names and values as code spans."""
    columns = _columns(results, names)
    lines = [f"**{code(results.experiment)}**: {_summary(results)}", ""]
    lines.append("| " + " | ".join(code(column.title) for column in columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for run in results.runs:
        cells = []
        for column in columns:
            value = column.value(run)
            text = _text(value, short=True)
            cells.append(text if value is None or isinstance(value, (int, float)) else code(text))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [f"- {printable(line)}" if line else "" for line in _notes(results, names)]
    return "\n".join(lines) + "\n"


def render_csv(results: Results, names: tuple[str, ...]) -> str:
    """One header row and a row per run, numbers whole, empty where there is nothing."""
    columns = _columns(results, names)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(column.title for column in columns)
    for run in results.runs:
        row = []
        for column in columns:
            value = column.value(run)
            row.append("" if value is None else _text(value, short=False))
        writer.writerow(row)
    return out.getvalue()


def render_json(results: Results, names: tuple[str, ...]) -> str:
    """Everything read, for tools: ``experiment``, ``variables``, ``metrics`` (the names),
    ``notes`` and ``runs``, each with ``id``, ``params``, ``status``, ``steps``,
    ``final_checkpoint``, ``config_file`` and ``metrics``: by name, ``final``, ``min``, ``max``,
    ``last_step``, ``count`` (values logged) and ``source``."""
    document = {
        "experiment": results.experiment,
        "variables": list(results.variables),
        "metrics": list(names),
        "notes": list(results.notes),
        "runs": [
            {
                "id": run.record.id,
                "params": run.record.params,
                "status": run.status,
                "steps": run.metrics.steps_done,
                "final_checkpoint": _path(run.record.final_checkpoint),
                "config_file": str(run.record.config_file),
                "metrics": {
                    name: _metric_json(metric)
                    for name in names
                    if (metric := run.metrics.metrics.get(name)) is not None
                },
            }
            for run in results.runs
        ],
    }
    return json_text(document)


def _metric_json(metric: Metric) -> dict[str, Any]:
    return {
        "final": metric.final,
        "min": metric.minimum,
        "max": metric.maximum,
        "last_step": metric.last_step,
        "count": len(metric.steps),
        "source": metric.source,
    }


def _path(path: Path | None) -> str | None:
    return None if path is None else str(path)


def render_best_text(best: Best, results: Results) -> str:
    """Who won, their values and final checkpoints (and whether each exists); a tie names every
    run tied, and runs without the metric are listed."""
    word = "lowest" if best.direction == MIN else "highest"
    lines = []
    if not best.winners:
        lines.append(f"no run has a final {best.metric} yet")
    else:
        value = _text(best.value, short=False)
        of = f"of {best.compared} run{'s' if best.compared != 1 else ''} with it"
        if len(best.winners) > 1:
            ids = ", ".join(run.record.id for run in best.winners)
            lines.append(
                f"tie: {ids} share the {word} final {best.metric}, {value} ({of}); none is chosen"
            )
        else:
            lines.append(
                f"best: {best.winners[0].record.id}, {word} final {best.metric} {value} ({of})"
            )
        for run in best.winners:
            if len(best.winners) > 1:
                lines.append(f"{run.record.id}:")
            for name in results.variables:
                lines.append(f"  {name}: {_text(run.record.params.get(name), short=False)}")
            lines.append(f"  status: {run.status}")
            lines.append(f"  config: {run.record.config_file}")
            lines.append(f"  checkpoint: {_checkpoint(run.record.final_checkpoint)}")
    if best.missing:
        ids = ", ".join(f"{run.record.id} ({run.status})" for run in best.missing)
        lines.append(f"without a final {best.metric}: {ids}")
    return printable("\n".join(lines), keep_lines=True) + "\n"


def _checkpoint(path: Path | None) -> str:
    if path is None:
        return "unknown (the config has no checkpointer.output_dir or epochs)"
    if checkpoint_exists(path):
        return f"{path} (exists)"
    return f"{path} (does not exist yet)"


def render_best_json(best: Best, results: Results) -> str:
    """``metric``, ``direction``, ``value``, ``tie``, ``winners`` (each with ``id``, ``params``,
    ``status``, ``final_checkpoint``, ``checkpoint_exists``) and ``missing`` (run ids)."""

    document = {
        "metric": best.metric,
        "direction": best.direction,
        "value": best.value,
        "tie": len(best.winners) > 1,
        "winners": [
            {
                "id": run.record.id,
                "params": run.record.params,
                "status": run.status,
                "config_file": str(run.record.config_file),
                "final_checkpoint": _path(run.record.final_checkpoint),
                "checkpoint_exists": checkpoint_exists(run.record.final_checkpoint),
            }
            for run in best.winners
        ],
        "missing": [run.record.id for run in best.missing],
    }
    return json_text(document)
