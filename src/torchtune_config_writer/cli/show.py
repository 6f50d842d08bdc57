"""``show EXP``: what each run of an experiment changes in its base config, as a plain text table
or as JSON; writes nothing."""

from __future__ import annotations

import argparse
import sys

from ..errors import ExitCode
from ..generation.inputs import read_inputs
from ..generation.plan import Plan, plan_experiment
from ..review.sweep_changes import sweep_changes
from ..review.sweep_report import DEFAULT_CELL_WIDTH, render_json, render_text
from .common import add_experiment, add_max_runs


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str) -> None:
    parser = commands.add_parser("show", help=summary)
    add_experiment(parser)
    add_max_runs(parser)
    parser.add_argument(
        "--wide",
        action="store_true",
        help=f"show every value whole (by default values are cut at {DEFAULT_CELL_WIDTH} "
        "characters)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text, a table for the terminal (default), or json: every value whole, for tools",
    )


def run(args: argparse.Namespace) -> int:
    changes = sweep_changes(plan_experiment(read_inputs(args.experiment, max_runs=args.max_runs)))
    if args.format == "json":
        sys.stdout.write(render_json(changes))
        return ExitCode.OK
    cell_width = None if args.wide else DEFAULT_CELL_WIDTH
    sys.stdout.write(render_text(changes, cell_width=cell_width, unicode=_can_show("→…")))
    return ExitCode.OK


def format_runs(
    plan: Plan, *, cell_width: int | None = DEFAULT_CELL_WIDTH, unicode: bool = True
) -> str:
    """The text ``show`` prints for ``plan``
    (:func:`~torchtune_config_writer.review.sweep_report.render_text`)."""
    return render_text(sweep_changes(plan), cell_width=cell_width, unicode=unicode)


def _can_show(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
