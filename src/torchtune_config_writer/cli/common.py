"""One module per command: each adds its arguments and runs with them, returning the exit code."""

from __future__ import annotations

import argparse

from ..experiment.load import DEFAULT_MAX_RUNS


def add_max_runs(parser: argparse.ArgumentParser) -> None:
    """The run limit option shared by the commands that generate."""
    parser.add_argument(
        "--max-runs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="refuse sweeps of more runs than N (default: the experiment's experiment.max_runs, "
        f"else {DEFAULT_MAX_RUNS:,})",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
