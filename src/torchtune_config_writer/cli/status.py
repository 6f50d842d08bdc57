"""``status EXP``: one line per run of an experiment (finished, running, queued, failed, ...,
not started), with the reason and its log, then the counts; or JSON. Writes nothing."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import ExitCode
from ..json_output import json_text
from ..runs.catalog import read_catalog
from ..runs.status import StudyStatus, catalog_status
from ..terminal import printable
from ..wording import plural
from .common import add_experiment, add_max_runs


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str) -> None:
    parser = commands.add_parser("status", help=summary)
    add_experiment(parser)
    add_max_runs(parser)
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text, a line per run and the counts (default), or json, for tools",
    )


def run(args: argparse.Namespace) -> int:
    catalog = read_catalog(args.experiment, max_runs=args.max_runs)
    status = catalog_status(catalog)
    name = catalog.plan.experiment.name
    sys.stdout.write(render_json(name, status) if args.format == "json" else render_text(status))
    return ExitCode.OK


def render_text(status: StudyStatus) -> str:
    """A line per run (id, status, reason, log), the counts, then the notes."""
    width = max((len(run.status) for run in status.runs), default=0)
    lines = []
    for run in status.runs:
        # A reason may quote a task's output: one line, whatever it holds.
        log = f" (log: {printable(str(run.log))})" if run.log is not None else ""
        lines.append(f"{run.id}  {run.status.ljust(width)}  {printable(run.reason)}{log}")
    counts = ", ".join(f"{count} {name}" for name, count in status.counts().items())
    lines.append(f"{plural(len(status.runs), 'run')}: {counts}" if counts else "no runs")
    lines.extend(f"note: {note}" for note in status.notes)
    return "\n".join(lines) + "\n"


def render_json(experiment: str, status: StudyStatus) -> str:
    """``{"experiment", "runs": [{id, status, reason, log, task}], "counts", "notes"}``."""
    document: dict[str, Any] = {
        "experiment": experiment,
        "runs": [
            {
                "id": run.id,
                "status": run.status,
                "reason": run.reason,
                "log": None if run.log is None else str(run.log),
                "task": run.task,
            }
            for run in status.runs
        ],
        "counts": status.counts(),
        "notes": list(status.notes),
    }
    return json_text(document)
