"""``results EXP``: every run of an experiment with its values, status and metrics, read from
the files the runs wrote; ``--best METRIC`` names the best run; ``--plot`` draws the metrics.
Writes nothing else."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ..errors import ConfigWriterError, ExitCode
from .common import (
    STANDARD_OUTPUT,
    add_experiment,
    is_standard_output,
    writable_output,
    write_output,
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str) -> None:
    parser = commands.add_parser("results", help=summary)
    add_experiment(parser)
    parser.add_argument(
        "--format",
        choices=("text", "markdown", "csv", "json"),
        default="text",
        help="text, a table for the terminal (default); markdown for GitHub; csv for a "
        "spreadsheet; json, every value whole, for tools",
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="write the report to FILE instead of standard output (-: standard output)",
    )
    parser.add_argument(
        "--metrics",
        metavar="NAME,...",
        help="show only these metrics, in this order (default: every metric a run logged)",
    )
    parser.add_argument(
        "--best",
        metavar="METRIC",
        help="name the run with the best final value of METRIC, its values and its final "
        "checkpoint (text or json)",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE",
        help="also draw the metrics (--metrics, else every training metric) over the steps, a "
        "line per run, into FILE (.png, .svg, .pdf; needs matplotlib)",
    )
    direction = parser.add_mutually_exclusive_group()
    direction.add_argument(
        "--min",
        dest="direction",
        action="store_const",
        const="min",
        help="with --best: lower is better (the default for names with loss or perplexity)",
    )
    direction.add_argument(
        "--max",
        dest="direction",
        action="store_const",
        const="max",
        help="with --best: higher is better (the default for accuracy-like names: acc, f1, "
        "exact_match, ...; other names need --min or --max)",
    )


def run(args: argparse.Namespace) -> int:
    # Imported here: only this command reads runs' files.
    from ..runs import results as report
    from ..runs import results_report as reports

    if args.direction is not None and args.best is None:
        raise ConfigWriterError("--min and --max choose the direction of --best METRIC: add it")
    if args.best is not None and args.format in ("markdown", "csv"):
        raise ConfigWriterError(
            f"--best writes text or json, not {args.format}: drop --format, or use json"
        )
    output = args.output or Path(STANDARD_OUTPUT)
    writable_output(output)
    if args.plot is not None:
        from ..runs.plots import require_matplotlib

        require_matplotlib()
        writable_output(args.plot)
    results = report.read_results(args.experiment)
    chosen = [name.strip() for name in (args.metrics or "").split(",") if name.strip()]
    names = report.choose_metrics(results, chosen)
    # Every refusal before the plot is written: bad input leaves the disk as it was.
    best = None if args.best is None else report.best_run(results, args.best, args.direction)
    if args.plot is not None:
        from ..runs.plots import plot_metrics

        plot = plot_metrics(results, names, args.plot)
        if not args.quiet:  # on stderr: the table or document goes to stdout, maybe a pipe
            against = f" and against {', '.join(plot.variables)}" if plot.variables else ""
            print(
                f"✓ Plotted {', '.join(plot.metrics)} over the steps{against}: {args.plot}",
                file=sys.stderr,
            )
    if best is not None:
        render_best = (
            reports.render_best_json if args.format == "json" else reports.render_best_text
        )
        write_output(output, render_best(best, results))
        return ExitCode.OK
    if args.format == "text":
        # On a terminal the table fits it; to a file or a pipe it is whole.
        width = None
        if is_standard_output(output) and sys.stdout.isatty():
            width = shutil.get_terminal_size().columns
        write_output(output, reports.render_text(results, names, width))
        return ExitCode.OK
    render = {
        "markdown": reports.render_markdown,
        "csv": reports.render_csv,
        "json": reports.render_json,
    }[args.format]
    write_output(output, render(results, names))
    return ExitCode.OK
