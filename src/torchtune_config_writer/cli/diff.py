"""``diff --base REF``: what the working tree's generated folders change, run by run, against a
commit (the pull request's base); writes nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ExitCode
from .common import STANDARD_OUTPUT, write_output


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str) -> None:
    parser = commands.add_parser(
        "diff",
        help=summary,
    )
    parser.add_argument(
        "--base",
        required=True,
        metavar="REF",
        help="the commit to compare with (a pull request's base): whatever git names a commit "
        "by, such as a branch, a tag, a hash, main~3 or HEAD@{1}",
    )
    parser.add_argument(
        "--format",
        choices=("text", "markdown", "json"),
        default="text",
        help="text for the terminal (default), markdown for GitHub, json for tools",
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="write the table to FILE instead of standard output (-: standard output)",
    )


def run(args: argparse.Namespace) -> int:
    # Imported here: gitpython is for this command only, never the hook's path.
    from ..review.changes import review_changes
    from ..review.changes_report import render_json, render_markdown, render_text

    review = review_changes(args.base, Path.cwd())
    render = {"text": render_text, "markdown": render_markdown, "json": render_json}[args.format]
    write_output(args.output or Path(STANDARD_OUTPUT), render(review))
    return ExitCode.OK
