"""``results``: every run of an experiment with its values, its status and its metrics, and the
best run by one metric (the reports are :mod:`~torchtune_config_writer.runs.results_report`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigWriterError
from ..wording import closest
from .catalog import RunRecord, read_catalog
from .metrics import EVALUATION, RunMetrics, read_run_metrics
from .status import catalog_status

MIN, MAX = "min", "max"
# Which way is better, by words in a metric's name (its last part: `hellaswag/acc` → `acc`).
# A metric named by neither has no best in the table, and `--best` asks for --min or --max.
_LOWER_IS_BETTER = ("loss", "perplexity", "ppl")
# Throughput is left out: its final value is the one that says how fast the run went.
_HIGHER_IS_BETTER = ("acc", "f1", "exact_match", "bleu", "rouge", "mc1", "mc2")


def checkpoint_exists(path: Path | None) -> bool:
    """Whether the checkpoint folder ``path`` exists and holds something."""
    if path is None:
        return False
    try:
        return path.is_dir() and any(path.iterdir())
    except OSError:  # a folder this user may not read: not known to hold it
        return False


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
    statuses = catalog_status(catalog).runs  # as `status` says: its files and Slurm's states
    runs = []
    for record, status in zip(catalog.runs, statuses, strict=True):
        metrics = read_run_metrics(record.log_dir, record.eval_dir, record.log_file)
        # The status's word alone (stopped, not "stopped (no final checkpoint)"): a table column.
        runs.append(RunResult(record, status.status.split(" (")[0], metrics))
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
    close = closest(name, results.metric_names, cutoff=0.5)
    guess = f": did you mean {close}?" if close else ""
    listed = ", ".join(results.metric_names[:12])
    raise ConfigWriterError(f"no run logged a metric {name!r}{guess} (the metrics: {listed})")


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
