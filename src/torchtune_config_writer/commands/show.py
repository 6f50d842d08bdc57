"""``show EXP``: the runs of an experiment and what each changes in its base; writes nothing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..plan import plan_experiment
from ..show import DEFAULT_CELL_WIDTH, format_runs
from . import EXIT_OK, add_max_runs


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "show", help="show each run's changes to the base config as a table (writes nothing)"
    )
    parser.add_argument(
        "experiment", type=Path, metavar="EXP", help="an experiment.yaml, or the folder holding one"
    )
    add_max_runs(parser)
    parser.add_argument(
        "--wide",
        action="store_true",
        help=f"show every value whole (by default values are cut at {DEFAULT_CELL_WIDTH} "
        "characters)",
    )


def run(args: argparse.Namespace) -> int:
    plan = plan_experiment(args.experiment, max_runs=args.max_runs)
    cell_width = None if args.wide else DEFAULT_CELL_WIDTH
    sys.stdout.write(format_runs(plan, cell_width=cell_width, unicode=_can_show("→…")))
    return EXIT_OK


def _can_show(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
