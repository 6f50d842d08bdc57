"""``results --plot FILE``: each chosen metric over the steps, a line per run, drawn by
matplotlib (an optional package, imported only here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import ConfigWriterError
from ..yaml_write import dump_inline
from .metrics import EVALUATION
from .results import Results

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
    """The metrics of ``names`` that have steps to draw: an evaluation's one value has none."""
    return tuple(
        name
        for name in names
        if any(
            (metric := run.metrics.metrics.get(name)) is not None and metric.source != EVALUATION
            for run in results.runs
        )
    )


def plot_metrics(results: Results, names: tuple[str, ...], path: Path) -> tuple[str, ...]:
    """Draw each of ``names`` over the steps, one panel a metric and a line a run labelled by
    its id and values, into ``path`` (its extension chooses the format: .png, .svg, .pdf).

    Returns:
        The metrics drawn.

    Raises:
        ConfigWriterError: matplotlib is missing, nothing can be drawn, or the file cannot be
            written.
    """
    require_matplotlib()
    drawn = plotted_metrics(results, names)
    if not drawn:
        raise ConfigWriterError(
            "--plot has nothing to draw: no run has logged a training metric over steps yet"
        )
    import matplotlib

    matplotlib.use("Agg")  # a file, never a window: runs on a cluster's login node
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(drawn), 1, figsize=(8, 3.2 * len(drawn)), squeeze=False, sharex=True
    )
    for panel, name in zip(axes[:, 0], drawn, strict=True):
        for run in results.runs:
            metric = run.metrics.metrics.get(name)
            if metric is None or metric.source == EVALUATION:
                continue
            values = ", ".join(f"{k}={dump_inline(v)}" for k, v in run.record.params.items())
            steps, points = zip(*metric.steps, strict=True)
            panel.plot(
                steps, points, label=f"{run.record.id} ({values})" if values else run.record.id
            )
        panel.set_ylabel(name)
        panel.grid(alpha=0.3)
    axes[0, 0].set_title(f"{results.experiment}: {len(results.runs)} runs")
    axes[-1, 0].set_xlabel("step")
    if len(results.runs) <= _LEGEND_RUNS:  # past that, a legend would cover the lines
        axes[0, 0].legend(fontsize="small", loc="best")
    figure.tight_layout()
    try:
        figure.savefig(path)
    except (OSError, ValueError) as exc:  # ValueError: an extension matplotlib cannot write
        raise ConfigWriterError(f"cannot write the plot: {exc}", path) from None
    finally:
        plt.close(figure)
    return drawn
