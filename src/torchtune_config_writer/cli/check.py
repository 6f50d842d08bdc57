"""``check [PATH...] [--fix]``: the drift check, reported as text (diffs and one line per drifted
folder) or as JSON: two reporters of one report (``output/check_report.py``)."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import ExitCode
from ..terminal import check_mark
from ..workspace.deletions import deleted_files
from .common import add_max_runs


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str) -> None:
    parser = commands.add_parser(
        "check",
        help=summary,
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
    parser.add_argument(
        "--deletions",
        action="store_true",
        help="also check what the files deleted by the staged changes leave behind (or, under "
        "`pre-commit run --from-ref/--to-ref`, by those commits), read from git: pre-commit "
        "passes only files that exist; with no PATH, only that (the pre-commit hooks use it)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text (diffs and one line per folder) or json (the same report whole, for tools "
        "such as the GitHub Action)",
    )
    add_max_runs(parser)


def run(args: argparse.Namespace) -> int:
    deleted = deleted_files(Path(".")) if args.deletions else []
    # The hook on a commit that changes no YAML file and deletes none: nothing can have drifted.
    nothing = args.deletions and not args.paths and not deleted
    if nothing and args.format == "text":
        # One `git diff` was the cost, and nothing else is imported (the text report's line for
        # an empty check; the generator's import alone is 54 ms).
        if not args.quiet:
            print(f"{check_mark()} 0 experiments up to date")
        return ExitCode.OK
    from ..output.check_report import CheckReport, check_report, render_json, write_text

    if nothing:
        report = CheckReport()
    else:
        from ..output.checking import check

        result = check(args.paths, fix=args.fix, max_runs=args.max_runs, deleted=deleted)
        report = check_report(result, fix=args.fix, fix_command=fix_command())
    if args.format == "json":  # the whole report, errors and notes too, on standard output
        sys.stdout.write(render_json(report))
    else:
        write_text(
            report,
            sys.stdout,
            sys.stderr,
            mark=check_mark(),
            quiet=args.quiet,
            verbose=args.verbose,
        )
    return report.exit_code


def fix_command() -> str:
    """The command that regenerates, as the user can run it where this check runs.

    pre-commit (which sets PRE_COMMIT=1 for its hooks) installs the tool into an environment of
    its own, not on the user's PATH: there the hint names this tool by its absolute path.
    """
    if os.environ.get("PRE_COMMIT") != "1":
        return "torchtune-config-writer check --fix"
    # The console script beside this interpreter (a venv's bin/ or Scripts/), else `-m`.
    script = shutil.which("torchtune-config-writer", path=str(Path(sys.executable).parent))
    words = [script] if script else [sys.executable, "-m", "torchtune_config_writer"]
    quoted = subprocess.list2cmdline(words) if os.name == "nt" else shlex.join(words)
    return f"{quoted} check --fix"
