"""``check [PATH...] [--fix]``: the drift check, as diffs and one line per drifted folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..check import check
from ..drift import describe
from ..errors import display_path
from . import EXIT_OK, add_max_runs, check_mark, plural


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "check",
        help="regenerate in memory and compare with the generated folders on disk",
        description="Regenerate in memory and compare with disk; exit 1 on drift, fixed or not.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="an experiment, a file in a generated folder, or a base config file that "
        "experiments use (default: every experiment in the git repository)",
    )
    parser.add_argument(
        "--fix", action="store_true", help="write the regenerated folders (still exits 1)"
    )
    add_max_runs(parser)


def run(args: argparse.Namespace) -> int:
    result = check(args.paths, fix=args.fix, max_runs=args.max_runs)
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    drifted = [drift for drift in result.drifts if drift.drifted]
    for drift in drifted:
        sys.stdout.writelines(describe(drift))
    for drift in drifted:
        print(
            f"drift: {display_path(drift.folder)}/ differs from "
            f"{display_path(drift.plan.experiment.path)} in {plural(len(drift.files), 'file')}"
        )
    for fixed in result.fixed:
        folder = display_path(fixed.folder)
        print(
            f"fixed: wrote {folder}/ ({len(fixed.changed)} written, {len(fixed.removed)} "
            f"removed): review it and `git add {folder}`"
        )
    if drifted and not result.fixed:
        hint = "after fixing the errors above, " if result.errors else ""
        print(f"{hint}run `torchtune-config-writer check --fix` to regenerate")
    if result.exit_code == EXIT_OK:
        print(f"{check_mark()} {plural(len(result.drifts), 'experiment')} up to date")
    return result.exit_code
