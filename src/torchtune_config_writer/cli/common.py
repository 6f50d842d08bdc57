"""One module per command: each adds its arguments and runs with them, returning the exit code."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import ConfigWriterError, file_system_error
from ..experiment.load import DEFAULT_MAX_RUNS

STANDARD_OUTPUT = "-"  # an output FILE of ``-`` is standard output (``./-`` is a file named -)


def is_standard_output(path: Path | None) -> bool:
    """Whether an output FILE option names standard output (``-``)."""
    return path is not None and str(path) == STANDARD_OUTPUT


def write_output(path: Path, text: str) -> None:
    """Write ``text`` to the file ``path``, or to standard output for ``-``.

    Raises:
        ConfigWriterError: the file cannot be written.
    """
    if is_standard_output(path):
        sys.stdout.write(text)
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        found = file_system_error(exc)  # the reason, what to do, and the folder that blocks
        message = f"cannot write the report: {found.message}"
        raise ConfigWriterError(message, found.path or path) from None


def writable_output(path: Path) -> None:
    """Refuse an output file that cannot be written, before the work whose result it takes
    (validating can take minutes): its folder is missing or read-only, or it is a folder.

    Raises:
        ConfigWriterError: it cannot be written; what to do.
    """
    if is_standard_output(path):
        return
    folder = path.parent
    if path.is_dir():
        reason = "it is a folder: give a file name"
    elif not folder.is_dir():
        reason = f"the folder {folder} does not exist: create it or write elsewhere"
    elif not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        reason = "permission denied: write elsewhere, or make it writable"
    else:
        return
    raise ConfigWriterError(f"cannot write the report: {reason}", path)


def add_experiment(parser: argparse.ArgumentParser) -> None:
    """The one experiment a command reads (``show``, ``status``, ``resubmit``, ``results``)."""
    parser.add_argument(
        "experiment", type=Path, metavar="EXP", help="an experiment.yaml, or the folder holding one"
    )


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
