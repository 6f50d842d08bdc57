"""``results``: every run of an experiment with its values, its status and its metrics, and the
best run by one metric; the table as text, Markdown, CSV or JSON."""

from __future__ import annotations

import csv
import difflib
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigWriterError
from ..json_output import json_text
from ..markdown import code
from ..terminal import printable
from ..yaml_write import dump_inline
from .catalog import RunRecord, read_catalog
from .metrics import EVALUATION, Metric, RunMetrics, read_run_metrics

FINISHED, STARTED, NOT_STARTED = "finished", "started", "not started"
MIN, MAX = "min", "max"
# Which way is better, by words in a metric's name (its last part: `hellaswag/acc` → `acc`).
# A metric named by neither has no best in the table, and `--best` asks for --min or --max.
_LOWER_IS_BETTER = ("loss", "perplexity", "ppl")
# Throughput is left out: its final value is the one that says how fast the run went.
_HIGHER_IS_BETTER = ("acc", "f1", "exact_match", "bleu", "rouge", "mc1", "mc2")
_GAP = "  "


def file_status(record: RunRecord, metrics: RunMetrics) -> str:
    """The simplest status the files give: ``finished`` when the final checkpoint's folder holds
    something, ``started`` when the metric logger wrote a log, else ``not started``.

    A stand-in for the status of ``status`` (which also reads the launch's jobs).
    """
    if checkpoint_exists(record.final_checkpoint):
        return FINISHED
    return STARTED if metrics.logged else NOT_STARTED


def checkpoint_exists(path: Path | None) -> bool:
    """Whether the checkpoint folder ``path`` exists and holds something."""
    return path is not None and path.is_dir() and any(path.iterdir())


def better(name: str) -> str | None:
    """``min`` or ``max``, which way the metric ``name`` is better, or ``None`` when unknown."""
    last = name.rsplit("/", 1)[-1].lower()
    if "stderr" in last:
        return None
    if any(word in last for word in _LOWER_IS_BETTER):
        return MIN
    if any(word in last for word in _HIGHER_IS_BETTER):
        return MAX
    return None


@dataclass(frozen=True)
class RunResult:
    """One run: its record (id, values, folders), its status and what it logged."""

    record: RunRecord
    status: str
    metrics: RunMetrics

    def best_value(self, name: str) -> float | None:
        """The best value of metric ``name`` over its steps, where its direction is known."""
        metric = self.metrics.metrics.get(name)
        direction = better(name)
        if metric is None or direction is None:
            return None
        return metric.minimum if direction == MIN else metric.maximum


@dataclass(frozen=True)
class Results:
    """Every run of an experiment and what it logged.

    Attributes:
        experiment: The experiment's name.
        variables: The names of its variables, in order.
        runs: Each run, in run id order.
        metric_names: Every metric some run logged: training metrics first (in the order first
            logged), then evaluation metrics (sorted).
        notes: What could not be read, once each, with the runs concerned.
    """

    experiment: str
    variables: tuple[str, ...]
    runs: tuple[RunResult, ...]
    metric_names: tuple[str, ...]
    notes: tuple[str, ...]


def read_results(path: Path | str) -> Results:
    """The runs of the experiment at ``path`` with their metrics.

    Raises:
        ConfigWriterError: the experiment cannot be read (as ``generate`` says).
    """
    catalog = read_catalog(path)
    runs = []
    for record in catalog.runs:
        metrics = read_run_metrics(record.log_dir, record.eval_dir)
        runs.append(RunResult(record, file_status(record, metrics), metrics))
    training: dict[str, None] = {}
    evaluation: set[str] = set()
    by_note: dict[str, list[str]] = {}
    for run in runs:
        for name, metric in run.metrics.metrics.items():
            if metric.source == EVALUATION:
                evaluation.add(name)
            else:
                training.setdefault(name)
        for note in run.metrics.notes:
            by_note.setdefault(note, []).append(run.record.id)
    notes = tuple(f"{note} ({_listed(ids)})" for note, ids in by_note.items())
    variables: dict[str, None] = {}
    for run in runs:
        variables.update(dict.fromkeys(run.record.params))
    return Results(
        catalog.plan.experiment.name,
        tuple(variables),
        tuple(runs),
        (*training, *sorted(evaluation)),
        notes,
    )


def _listed(ids: list[str], most: int = 5) -> str:
    shown = ", ".join(ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


def choose_metrics(results: Results, names: list[str] | None) -> tuple[str, ...]:
    """The metric columns: ``names`` in their order, or every metric.

    Raises:
        ConfigWriterError: a name no run logged (with the closest one).
    """
    if not names:
        return results.metric_names
    for name in names:
        known_metric(results, name)
    return tuple(dict.fromkeys(names))


def known_metric(results: Results, name: str) -> None:
    """Refuse a metric no run logged, naming the closest one that exists.

    Raises:
        ConfigWriterError: ``name`` is not among ``results.metric_names``.
    """
    if name in results.metric_names:
        return
    if not results.metric_names:
        raise ConfigWriterError(
            f"no metric {name!r}: no run of {results.experiment} has logged a metric yet "
            "(are its metric_logger.log_dir files where its configs say?)"
        )
    close = difflib.get_close_matches(name, results.metric_names, n=1, cutoff=0.5)
    guess = f": did you mean {close[0]}?" if close else ""
    listed = ", ".join(results.metric_names[:12])
    raise ConfigWriterError(f"no run logged a metric {name!r}{guess} (the metrics: {listed})")


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
    counts = {FINISHED: 0, STARTED: 0, NOT_STARTED: 0}
    for run in results.runs:
        counts[run.status] += 1
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


# The winner.


@dataclass(frozen=True)
class Best:
    """The best run by one metric's final value.

    Attributes:
        metric: The metric's name.
        direction: ``min`` or ``max``.
        winners: The runs with the best final value: more than one is a tie.
        value: That value (``None`` when no run logged the metric).
        missing: The runs without the metric (not started, or not logging it), and those whose
            final value is NaN.
    """

    metric: str
    direction: str
    winners: tuple[RunResult, ...]
    value: float | None
    missing: tuple[RunResult, ...]
    compared: int


def best_run(results: Results, metric: str, direction: str | None = None) -> Best:
    """The run whose final value of ``metric`` is best: the final value, because the final
    checkpoint is what the run leaves for the next step.

    Args:
        results: The runs.
        metric: A metric some run logged.
        direction: ``min`` or ``max``; ``None`` for the metric's known direction.

    Raises:
        ConfigWriterError: no run logged ``metric``, or its direction is unknown and not given.
    """
    known_metric(results, metric)
    direction = direction or better(metric)
    if direction is None:
        raise ConfigWriterError(
            f"which is better for {metric!r}, lower or higher? add --min or --max "
            "(only loss and accuracy-like names have a default)"
        )
    values: list[tuple[float, RunResult]] = []
    missing = []
    for run in results.runs:
        found = run.metrics.metrics.get(metric)
        if found is None or math.isnan(found.final):
            missing.append(run)
        else:
            values.append((found.final, run))
    if not values:
        return Best(metric, direction, (), None, tuple(missing), 0)
    choose = min if direction == MIN else max
    value = choose(final for final, _ in values)
    winners = tuple(run for final, run in values if final == value)
    return Best(metric, direction, winners, value, tuple(missing), len(values))


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
