"""The command line: a thin shell over the Python API that turns errors into exit codes."""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from . import __version__
from .check import check
from .drift import describe
from .errors import ConfigWriterError, display_path
from .experiment import DEFAULT_MAX_RUNS
from .generate import Generated, generate_many
from .recipes import format_listing, list_configs

EXIT_OK = 0
EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other error of the tool.
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="torchtune-config-writer",
        description="Write one complete torchtune config per combination of an experiment's "
        "variables.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    gen = commands.add_parser("generate", help="write each experiment's generated folder")
    gen.add_argument(
        "experiments",
        nargs="+",
        type=Path,
        metavar="EXP",
        help="an experiment.yaml, or the folder holding one",
    )
    gen.add_argument(
        "--max-runs",
        type=_positive_int,
        default=DEFAULT_MAX_RUNS,
        metavar="N",
        help=f"refuse sweeps of more runs than N (default {DEFAULT_MAX_RUNS:,})",
    )
    gen.add_argument(
        "--refresh-base",
        action="store_true",
        help="re-read a recipe base from the installed torchtune instead of the "
        "one recorded in configs/",
    )
    gen.add_argument(
        "--output-base-dir",
        type=Path,
        metavar="DIR",
        help="write a new timestamped folder in DIR instead of configs/ beside "
        "the experiment (like output.base_dir)",
    )

    chk = commands.add_parser(
        "check",
        help="regenerate in memory and compare with the generated folders on disk",
        description="Regenerate in memory and compare with disk; exit 1 on drift, fixed or not.",
    )
    chk.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="an experiment, a file in a generated folder, or a base config file that "
        "experiments use (default: every experiment in the git repository)",
    )
    chk.add_argument(
        "--fix", action="store_true", help="write the regenerated folders (still exits 1)"
    )
    chk.add_argument(
        "--max-runs",
        type=_positive_int,
        default=DEFAULT_MAX_RUNS,
        metavar="N",
        help=f"refuse sweeps of more runs than N (default {DEFAULT_MAX_RUNS:,})",
    )

    recipes = commands.add_parser("recipes", help="list torchtune's built-in configs (tune ls)")
    recipes.add_argument(
        "pattern",
        nargs="?",
        metavar="PATTERN",
        help="only configs or recipes containing this text or matching this glob",
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit code: 0 success, 1 drift (``check``), 2 bad input.
    """
    for stream in (sys.stdout, sys.stderr):  # a path the terminal cannot show is escaped
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "generate":
            return _generate(args)
        if args.command == "check":
            return _check(args)
        return _recipes(args)
    except ConfigWriterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _generate(args: argparse.Namespace) -> int:
    results = generate_many(
        args.experiments,
        output_base_dir=args.output_base_dir,
        max_runs=args.max_runs,
        refresh_base=args.refresh_base,
    )
    for generated in results:
        _report(generated)
    return EXIT_OK


def _report(generated: Generated) -> None:
    mark = _check_mark()
    base = generated.plan.base
    source = ""
    if base.recipe is not None:
        source = (
            f" (recorded, torchtune {base.torchtune_version})"
            if base.recorded
            else (f" (torchtune {base.torchtune_version})")
        )
    count = generated.plan.run_count
    notes = []
    if generated.write is not None:
        if generated.write.unchanged:
            notes.append("unchanged")
        if generated.write.removed:
            notes.append(f"removed {len(generated.write.removed)} stale")
    note = f" ({', '.join(notes)})" if notes else ""
    print(f"{mark} Loaded base config: {base.label}{source}")
    print(
        f"{mark} Generated {count} config{'s' if count != 1 else ''} in "
        f"{display_path(generated.folder)}/{note}"
    )
    shown = generated.run_mapping.name if generated.write else display_path(generated.run_mapping)
    verb = "Kept" if generated.write and generated.write.unchanged else "Created"
    print(f"{mark} {verb} {shown}")


def _check_mark() -> str:
    # The seed's ✓, unless the terminal's encoding cannot show it.
    try:
        "✓".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "*"
    return "✓"


def _check(args: argparse.Namespace) -> int:
    result = check(args.paths, fix=args.fix, max_runs=args.max_runs)
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    drifted = [drift for drift in result.drifts if drift.drifted]
    for drift in drifted:
        sys.stdout.writelines(describe(drift))
    for drift in drifted:
        folder = display_path(drift.folder)
        count = len(drift.files)
        print(
            f"drift: {folder}/ differs from {display_path(drift.plan.experiment.path)} in "
            f"{count} file{'s' if count != 1 else ''}"
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
        count = len(result.drifts)
        print(f"{_check_mark()} {count} experiment{'s' if count != 1 else ''} up to date")
    return result.exit_code


def _recipes(args: argparse.Namespace) -> int:
    sys.stdout.write(format_listing(list_configs(args.pattern)))
    return EXIT_OK
