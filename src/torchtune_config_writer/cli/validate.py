"""``validate [PATH...]``: every generated config checked in one process, reported four ways."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigWriterError, ExitCode, display_path
from ..terminal import announce, check_mark
from ..wording import plural
from .common import is_standard_output, writable_output, write_output

if TYPE_CHECKING:  # validation's modules load only when validating: the hook never needs them
    from ..validation.findings import ValidationResult


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str) -> None:
    parser = commands.add_parser(
        "validate",
        help=summary,
        description="Validate generated configs: torchtune's `tune validate` check, then "
        "components at any depth, interpolations, value types and unread keys, then each "
        "config's recipe run on this machine (no GPU, weights or data needed).",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="an experiment, a folder of experiments, or a config file "
        "(default: every experiment in the git repository)",
    )
    parser.add_argument(
        "--affected",
        action="store_true",
        help="read the paths as changed files, as `check` does: validate the experiments they "
        "affect (for the pre-commit hook)",
    )
    parser.add_argument(
        "--preflight",
        action="store_true",
        help="also check, on the machine that will train, that the files a config reads exist "
        "and its output locations are writable",
    )
    parser.add_argument(
        "--recipe",
        metavar="NAME",
        help="the recipe that runs config files no experiment generated (a torchtune recipe "
        "name, or a .py file)",
    )
    parser.add_argument(
        "--no-execute",
        dest="execute",
        action="store_false",
        help="skip running each config's recipe (the static checks only)",
    )
    parser.add_argument(
        "--execute-each",
        type=int,
        default=None,
        metavar="N",
        help="run every config when there are at most N distinct ones (default 32); past that, "
        "configs whose values are of the same classes share one run",
    )
    parser.add_argument(
        "--text", type=Path, metavar="FILE", help="also write the text report (- prints it alone)"
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="FILE",
        help="write a Markdown report (-: print it instead of the text report)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="write a JSON report (-: print it instead of the text report)",
    )
    parser.add_argument(
        "--annotations",
        action="store_true",
        help="print GitHub workflow-command annotations instead of the text report",
    )
    add_failure_options(parser)


def add_failure_options(parser: argparse.ArgumentParser) -> None:
    """What besides errors makes validation fail (shared with ``generate --validate``)."""
    parser.add_argument(
        "--warnings-fail", action="store_true", help="fail on warnings (e.g. unread keys)"
    )
    parser.add_argument(
        "--unverified-fails",
        action="store_true",
        help="fail when a component could not be checked here (an optional package missing)",
    )


def run(args: argparse.Namespace) -> int:
    printed = _report_on_standard_output(args)  # before validating: a mistake costs nothing
    for path in (args.text, args.markdown, args.json):
        if path is not None:
            writable_output(path)
    from ..validation.execution.stage import EXECUTE_EACH
    from ..validation.reports import (
        REPORT_FILE,
        render_annotations,
        render_json,
        render_markdown,
        render_text,
    )
    from ..validation.validating import validate
    from .progress import progress_display

    progress = progress_display(args.quiet)
    try:
        result = validate(
            args.paths,
            affected=args.affected,
            progress=progress,
            preflight=args.preflight,
            recipe=args.recipe,
            execute=args.execute,
            execute_each=EXECUTE_EACH if args.execute_each is None else args.execute_each,
        )
    finally:
        if progress is not None:
            progress.close()
    # The notes of cut reports point at the text report by the name it is written under.
    written = args.text is not None and not is_standard_output(args.text)
    report = display_path(args.text) if written else REPORT_FILE
    for path, text in (
        (args.text, render_text(result)),
        (args.markdown, render_markdown(result, report=report)),
        (args.json, render_json(result)),
    ):
        if path is not None:
            write_output(path, text)
    if args.annotations:  # workflow commands on purpose, their values escaped as GitHub says
        announce(render_annotations(result, report=report))
    elif printed is None:  # the text report, unless another report was asked for here
        sys.stdout.write(console_report(result, args))
    return exit_code(result, args)


def console_report(result: ValidationResult, args: argparse.Namespace) -> str:
    """The text report as the terminal or CI log shows it: each finding once with its configs;
    ``-v`` lists every config, ``-q`` only the findings (nothing when there are none)."""
    from ..validation.reports import render_text

    return render_text(result, verbose=args.verbose, findings_only=args.quiet)


def _report_on_standard_output(args: argparse.Namespace) -> str | None:
    """The report option given ``-``, if any: standard output then carries that report alone.

    Raises:
        ConfigWriterError: two reports, or a report and the annotations, would share it.
    """
    chosen = [
        name for name in ("text", "markdown", "json") if is_standard_output(getattr(args, name))
    ]
    if len(chosen) > 1:
        raise ConfigWriterError(
            f"--{chosen[0]} - and --{chosen[1]} - both write to standard output: one report can "
            "go there (-), give the others a file"
        )
    if chosen and args.annotations:
        raise ConfigWriterError(
            f"--annotations and --{chosen[0]} - both write to standard output: give --{chosen[0]} "
            "a file"
        )
    return chosen[0] if chosen else None


def exit_code(result: ValidationResult, args: argparse.Namespace) -> int:
    """1 when validation fails under the chosen options, else 0."""
    failed = result.failed(warnings_fail=args.warnings_fail, unverified_fails=args.unverified_fails)
    return ExitCode.FAILED if failed else ExitCode.OK


def summary(result: ValidationResult, report: Path | None = None) -> str:
    """One line: ``✓ Validated 4 configs: 4 valid`` (and where the report is)."""
    from ..validation.findings import Status

    counts = [f"{result.count(status)} {status}" for status in Status if result.count(status)]
    where = f" ({display_path(report)})" if report is not None else ""
    mark = check_mark() if not result.count(Status.INVALID) else "!"
    return f"{mark} Validated {plural(len(result.configs), 'config')}: {', '.join(counts)}{where}"
