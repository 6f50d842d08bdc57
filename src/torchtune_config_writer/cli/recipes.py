"""``recipes [PATTERN]``: torchtune's built-in configs, like ``tune ls``."""

from __future__ import annotations

import argparse
import sys

from ..errors import ExitCode
from ..generation.builtin_configs import (
    format_listing,
    list_configs,
    listing_json,
    require_torchtune,
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str) -> None:
    parser = commands.add_parser("recipes", help=summary)
    parser.add_argument(
        "pattern",
        nargs="?",
        metavar="PATTERN",
        help="only configs or recipes containing this text or matching this glob",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text, as tune ls (default), or json: every config with its recipe and files",
    )


def run(args: argparse.Namespace) -> int:
    configs = list_configs(args.pattern)
    if args.format == "json":
        version = require_torchtune("listing recipes").version
        sys.stdout.write(listing_json(configs, version))
    else:
        sys.stdout.write(format_listing(configs))
    return ExitCode.OK
