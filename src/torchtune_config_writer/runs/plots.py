"""``results --plot FILE``: drawn by matplotlib (an optional package, imported only here).

A row per metric: on the left its value over the steps, a line per run labelled with the run's
values; then a panel per swept variable, each run's final value against its value of that
variable, in the colour of its line. An evaluation's metric (one value, no steps) has only the
panels against the variables.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigWriterError
from ..yaml_write import dump_inline
from .metrics import EVALUATION
from .results import Results, RunResult

NO_MATPLOTLIB = "--plot draws with matplotlib, which is not installed here: pip install matplotlib"


_LEGEND_RUNS = 20


def require_matplotlib() -> None:
    """Refuse ``--plot`` before any work where matplotlib is missing.

    Raises:
        ConfigWriterError: matplotlib is not installed.
    """
    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigWriterError(NO_MATPLOTLIB)


def plotted_metrics(results: Results, names: tuple[str, ...]) -> tuple[str, ...]:
    """The metrics of ``names`` that some run has a value of."""
    return tuple(name for name in names if any(name in run.metrics.metrics for run in results.runs))


@dataclass(frozen=True)
class Plot:
    """What a plot drew.

    Attributes:
        metrics: A row each, in order.
        variables: A column each after the steps, in order.
        lines: Each metric's lines over the steps, by metric: the runs' labels.
    """

    metrics: tuple[str, ...]
    variables: tuple[str, ...]
    lines: dict[str, tuple[str, ...]]


def plot_metrics(results: Results, names: tuple[str, ...], path: Path) -> Plot:
    """Draw ``names`` into ``path`` (its extension chooses the format: .png, .svg, .pdf).

    Raises:
        ConfigWriterError: matplotlib is missing, nothing can be drawn, or the file cannot be
            written.
    """
    require_matplotlib()
    drawn = plotted_metrics(results, names)
    if not drawn:
        raise ConfigWriterError("--plot has nothing to draw: no run has logged a metric yet")
    import matplotlib

    matplotlib.use("Agg")  # a file, never a window: runs on a cluster's login node
    import matplotlib.pyplot as plt

    # A variable every run has one value of; a linked group's names each get a column.
    variables = tuple(
        name for name in results.variables if any(name in run.record.params for run in results.runs)
    )
    steps_width, panel_width, row_height = 7.0, 3.6, 3.2
    figure, axes = plt.subplots(
        len(drawn),
        1 + len(variables),
        figsize=(steps_width + panel_width * len(variables), row_height * len(drawn)),
        squeeze=False,
        gridspec_kw={"width_ratios": [steps_width] + [panel_width] * len(variables)},
    )
    # A run keeps one colour in every panel.
    colours = {run.record.id: f"C{index % 10}" for index, run in enumerate(results.runs)}
    lines: dict[str, tuple[str, ...]] = {}
    for row, name in enumerate(drawn):
        lines[name] = _over_steps(axes[row, 0], results, name, colours)
        for column, variable in enumerate(variables, start=1):
            _against(axes[row, column], results, name, variable, colours)
            if row == 0:
                axes[row, column].set_title(f"final value vs {variable}", fontsize="medium")
            if row == len(drawn) - 1:
                axes[row, column].set_xlabel(variable)
    axes[0, 0].set_title(f"{results.experiment}: {len(results.runs)} runs")
    axes[-1, 0].set_xlabel("step")
    legend_row = next((row for row, name in enumerate(drawn) if lines[name]), None)
    if legend_row is not None and len(results.runs) <= _LEGEND_RUNS:
        # Past that many runs a legend would cover the lines.
        axes[legend_row, 0].legend(fontsize="small", loc="best")
    figure.tight_layout()
    try:
        figure.savefig(path)
    except (OSError, ValueError) as exc:  # ValueError: an extension matplotlib cannot write
        raise ConfigWriterError(f"cannot write the plot: {exc}", path) from None
    finally:
        plt.close(figure)
    return Plot(drawn, variables, lines)


def _label(run: RunResult) -> str:
    values = ", ".join(f"{k}={dump_inline(v)}" for k, v in run.record.params.items())
    return f"{run.record.id} ({values})" if values else run.record.id


def _over_steps(
    panel: Any, results: Results, name: str, colours: dict[str, str]
) -> tuple[str, ...]:
    """A line per run that logged ``name`` over steps; the lines' labels."""
    labels = []
    for run in results.runs:
        metric = run.metrics.metrics.get(name)
        if metric is None or metric.source == EVALUATION:
            continue
        steps, points = zip(*metric.steps, strict=True)
        labels.append(_label(run))
        panel.plot(steps, points, label=labels[-1], color=colours[run.record.id])
    panel.set_ylabel(name)
    panel.grid(alpha=0.3)
    if not labels:  # an evaluation's metric: one value a run, drawn against the variables
        panel.text(0.5, 0.5, "one value a run (evaluation)", ha="center", va="center")
        panel.set_xticks([])
    return tuple(labels)


def _against(
    panel: Any, results: Results, name: str, variable: str, colours: dict[str, str]
) -> None:
    """Each run's final value of ``name`` at its value of ``variable``: numbers on a numeric
    axis (logarithmic where they span a hundredfold, as learning rates do), anything else as
    categories in the order the runs have them."""
    points = [
        (run.record.params[variable], metric.final, colours[run.record.id])
        for run in results.runs
        if variable in run.record.params and (metric := run.metrics.metrics.get(name))
    ]
    values = [value for value, _, _ in points]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric and values:
        xs = [float(value) for value in values]
        positive = min(xs) > 0
        if positive and max(xs) / min(xs) >= 100:
            panel.set_xscale("log")
        panel.set_xticks(sorted(set(xs)), [dump_inline(v) for v in sorted(set(values))])
    else:
        categories = list(dict.fromkeys(dump_inline(v) for v in values))
        xs = [float(categories.index(dump_inline(v))) for v in values]
        panel.set_xticks(range(len(categories)), categories)
    panel.scatter(xs, [y for _, y, _ in points], c=[c for _, _, c in points], zorder=3)
    panel.tick_params(axis="x", labelrotation=30 if len(set(xs)) > 4 else 0)
    panel.grid(alpha=0.3)
