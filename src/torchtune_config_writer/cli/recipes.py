"""``recipes [PATTERN]``: torchtune's built-in configs, like ``tune ls``."""

from __future__ import annotations

import argparse
import sys

from ..errors import ExitCode
from ..generation.recipes import format_listing, list_configs


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str) -> None:
    parser = commands.add_parser("recipes", help=summary)
    parser.add_argument(
        "pattern",
        nargs="?",
        metavar="PATTERN",
        help="only configs or recipes containing this text or matching this glob",
    )


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(format_listing(list_configs(args.pattern)))
    return ExitCode.OK
